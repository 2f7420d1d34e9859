# SPDX-License-Identifier: Apache-2.0
"""Issue 5: at-least-once under faults, against a real Apache Kafka broker.

- test_kill_loop: ringtail is SIGKILLed 60 times at random moments while an
  application appends and rotates its log; every line arrives, duplicates are only
  re-sends from a checkpoint, bounded by what the checkpoints on disk did not cover.
- test_broker_down_and_up: a broker of its own is stopped for ~10 s in the middle of
  a stream and started again; ringtail waits it out, and every line arrives exactly
  once, in order (the idempotent producer's retries add nothing).

Waits poll with deadlines. The sleeps here are the faults' timing (how long ringtail
runs before a kill, how long the broker stays down), never a synchronisation."""
import collections
import json
import os
import random
import re
import shutil
import time

import pytest

import harness
from faults_support import (Stream, checkpoint_lines, offsets_show, vm_hwm_kib,
                            wait_all_present)
from harness import kcat_consume, values
from logwriter import LineWriter, settle, shift_rotate, topic_count
from test_tailsource import LINE, finish, start, wait_lines

pytestmark = pytest.mark.usefixtures("ringtail_bin")


@pytest.fixture(autouse=True)
def stop_writers():
    """No writer thread outlives its test."""
    yield
    LineWriter.stop_all()


def _log_tail(text, n=40):
    lines = text.splitlines()
    return f"\n--- ringtail's log (last {min(n, len(lines))} lines) ---\n" + "\n".join(lines[-n:])


# ---------------------------------------------------------------------------
# 1: SIGKILL loop

KILLS = 60
RATE = 2000  # lines/s
FLUSH_MS = 200  # offset.flush.interval.ms
SEED = 20261124
AGE_MAX_S = FLUSH_MS / 1000 + 0.3  # a flush interval, and time to write and fsync


def test_kill_loop(tmp_path, bootstrap, topic, record_property):
    """60 SIGKILLs of ringtail, each after it ran a random 0.05-0.6 s (seeded), each
    followed at once by a restart with the same config and checkpoint file
    (offset.flush.interval.ms=200). Meanwhile a writer appends 2,000 lines/s to
    app.log, opening it for every batch, and app.log is rename-rotated (app.log.k ->
    app.log.k+1, app.log -> app.log.1; nothing deleted) every 1-2 s: half of the
    rotations while ringtail runs, half while it is dead between a kill and the
    restart. files= names only app.log: rotated files are found by their checkpoint.

    A rotation waits until the live app.log is in the checkpoint file. A file that no
    checkpoint names and that is renamed outside the glob while ringtail is dead cannot
    be found again (README: "Not recoverable"); such a file does not exist while
    ringtail runs steadily (its first checkpoint follows within one flush interval),
    but a kill loop that kills several runs in a row before their first checkpoint
    would produce it and lose it by design.

    After the last kill the writer stops, ringtail runs until every line is in Kafka,
    then SIGTERM (exit 0). Asserted:
    - no loss: every line written is in the topic;
    - the at-least-once shape (faults_support.Stream): per file, each record is the
      line after the previous record of that file or a step back to where a run
      started, so first occurrences keep the file's order and nothing is passed over;
      every step back lands on a line a checkpoint on disk held after a kill (or 0),
      and these starts never move back;
    - duplicates <= sum over the kills of the lines written but not covered by the
      checkpoint on disk when ringtail was killed (the most any restart can re-send),
      and also <= kills x (2,000 lines/s x 0.2 s flush interval + 0.1 s in flight), an
      average over the kills (see the comment at the bounds);
    - a run that had written a checkpoint left one at most 0.5 s old when killed;
    - a restart after the SIGTERM, with nothing new written, sends nothing."""
    logs = tmp_path / "logs"
    logs.mkdir()
    app = logs / "app.log"
    ckpt = tmp_path / "connect.offsets"
    snaps = tmp_path / "snapshots"
    snaps.mkdir()
    worker = {"offset.flush.interval.ms": str(FLUSH_MS)}
    rng = random.Random(SEED)

    started = []

    def run():
        started.append(time.time())
        return start(tmp_path, bootstrap, topic, str(app), worker)

    w = LineWriter(app, "k", line_bytes=LINE, rate=RATE, batch=20, reopen=True)
    w.write_now(200)
    rt = run()
    wait_lines(bootstrap, topic, w.lines, rt)
    w.start()
    t0 = time.monotonic()

    rotations = {"running": 0, "stopped": 0}
    deferred = 0

    def try_rotate():
        """Rotates if the live app.log is in the checkpoint file (see the docstring)."""
        nonlocal deferred
        try:
            st = os.stat(app)
        except FileNotFoundError:  # rotated, and no batch has created it again yet
            deferred += 1
            return False
        if (st.st_dev, st.st_ino) not in {(e["dev"], e["ino"]) for e in offsets_show(ckpt)}:
            deferred += 1
            return False
        shift_rotate(app)
        return True

    kills = []  # one dict per kill
    next_rotation = time.monotonic() + rng.uniform(1.0, 2.0)
    for k in range(KILLS):
        run_for = rng.uniform(0.05, 0.6)
        where = None
        if time.monotonic() >= next_rotation:
            where = "running" if (rotations["running"] + rotations["stopped"]) % 2 else "stopped"
        rotated = False
        if where == "running":
            before = rng.uniform(0, run_for)
            time.sleep(before)
            rotated = try_rotate()
            time.sleep(run_for - before)
        else:
            time.sleep(run_for)
        if rt.proc.poll() is not None:
            raise AssertionError(f"ringtail exited ({rt.proc.returncode}) on its own before "
                                 f"kill {k + 1}{_log_tail(rt.output())}")
        rt.kill()
        t_kill = time.time()
        written = w.count  # at least what the dead run could have read
        snap = snaps / f"kill-{k + 1:03d}"
        mtime = None
        if ckpt.exists():  # nobody writes it now: ringtail is dead
            mtime = os.stat(ckpt).st_mtime_ns / 1e9
            shutil.copyfile(ckpt, snap)
        kills.append({"written": written, "snap": snap if mtime else None, "uptime":
                      t_kill - started[-1], "ckpt_age": t_kill - mtime if mtime else None,
                      "run_checkpointed": bool(mtime and mtime > started[-1])})
        if where == "stopped":
            rotated = try_rotate()
        if rotated:
            rotations[where] += 1
            next_rotation = time.monotonic() + rng.uniform(1.0, 2.0)
        rt = run()
    loop_s = time.monotonic() - t0

    lines = w.stop()
    vals = wait_all_present(bootstrap, topic, lines, rt, timeout=120)
    log = rt.output()
    assert set(lines) <= set(vals), \
        f"the last run did not deliver every line:\n{Stream(vals, w.by_file.values()).missing()}" \
        f"{_log_tail(log)}"
    rc = rt.stop()
    assert rc == 0, f"ringtail exited {rc} on SIGTERM{_log_tail(rt.output())}"
    msgs = kcat_consume(bootstrap, topic)
    assert {m[0] for m in msgs} == {0}, "the topic was expected to have one partition"
    vals = values(msgs)

    # The shape of the stream.
    files = {key: i for i, key in enumerate(w.by_file)}
    groups = list(w.by_file.values())
    starts = collections.defaultdict(set)
    uncovered = []  # per kill: lines written but not covered by the checkpoint on disk
    for kl in kills:
        covered = {}
        if kl["snap"]:
            covered = checkpoint_lines(offsets_show(kl["snap"]), files, LINE)
        for g, n in covered.items():
            starts[g].add(n)
        uncovered.append(kl["written"] - sum(covered.values()))
        kl["uncovered"] = uncovered[-1]
    (tmp_path / "kills.json").write_text(json.dumps(
        [{**kl, "snap": str(kl["snap"])} for kl in kills], indent=1))
    s = Stream(vals, groups)
    problems = s.problems(starts)
    assert not problems, "the stream is not an at-least-once stream:\n  " + \
        "\n  ".join(problems) + _log_tail(rt.output())
    dups = len(vals) - len(set(vals))
    assert dups == s.dups

    # The bounds. A restart re-sends at most what the checkpoint on disk did not cover
    # when ringtail was killed: `strict` is exact, with no constant in it. A run that
    # has written checkpoints leaves one at most a flush interval old (plus the time to
    # write it: checked), so what it leaves uncovered is ~2,000 lines/s x 0.2 s; a run
    # killed before its first checkpoint (it ran < ~0.22 s here) leaves the previous
    # one, so a few short runs in a row leave more. Hence the per-kill allowance
    # holds on average over the seeded kill times, not at every kill.
    strict = sum(uncovered)
    allowance = RATE * FLUSH_MS // 1000 + RATE // 10  # + 0.1 s in flight
    loose = KILLS * allowance
    ckpt_ages = [kl["ckpt_age"] for kl in kills if kl["run_checkpointed"]]
    stale = [kl for kl in kills if kl["run_checkpointed"] and kl["ckpt_age"] > AGE_MAX_S]
    stats = {
        "kills": KILLS, "lines": len(lines), "files": len(groups), "records": len(vals),
        "duplicates": dups, "lines_duplicated": len(s.dup_copies),
        "max_copies": 1 + max(s.dup_copies.values(), default=0),
        "bound_uncovered_at_kills": strict, "bound_kills_x_allowance": loose,
        "mean_uncovered_per_kill": round(strict / KILLS), "max_uncovered": max(uncovered),
        "runs_killed_before_a_checkpoint": sum(not kl["run_checkpointed"] for kl in kills),
        "max_checkpoint_age_at_kill_s": round(max(ckpt_ages), 3),
        "rotations_while_running": rotations["running"],
        "rotations_while_stopped": rotations["stopped"], "rotations_deferred": deferred,
        "loop_seconds": round(loop_s, 1),
    }
    for key, v in stats.items():
        record_property(key, v)
    print("kill loop: " + ", ".join(f"{k}={v}" for k, v in stats.items()))
    assert dups <= strict, \
        f"{dups} duplicates, more than the {strict} lines the checkpoints on disk did not " \
        f"cover when ringtail was killed (per kill: {tmp_path / 'kills.json'})"
    assert not stale, \
        f"{len(stale)} runs were killed with a checkpoint older than {AGE_MAX_S} s on disk " \
        f"(offset.flush.interval.ms={FLUSH_MS}): {stale[:5]}"
    assert dups <= loose, \
        f"{dups} duplicates, more than {KILLS} kills x {allowance} lines ({RATE} lines/s x " \
        f"({FLUSH_MS} ms flush interval + 100 ms in flight))"
    assert min(rotations.values()) >= 3, f"too few rotations to test them: {rotations}"

    # SIGTERM checkpointed everything: a restart with nothing new sends nothing.
    count = topic_count(bootstrap, topic)
    assert count == len(vals)
    entries = offsets_show(ckpt)
    assert entries, "no checkpoint after SIGTERM"
    rt = run()
    harness.wait_until(
        lambda: len(re.findall(r"reading '[^']*' \(inode \d+\) from offset \d+ \(checkpoint\)",
                               rt.output())) >= len(entries) or rt.proc.poll() is not None,
        30, f"ringtail to open the {len(entries)} checkpointed files")
    time.sleep(1.0)  # a window for anything it would send
    rc = rt.stop()
    log = rt.output()
    assert rc == 0, f"ringtail exited {rc} on SIGTERM{_log_tail(log)}"
    assert re.search(r"task 'tail': 0 lines sent", log), \
        f"the run after a clean stop sent lines again{_log_tail(log)}"
    assert topic_count(bootstrap, topic) == count


# ---------------------------------------------------------------------------
# 2: the broker goes down and comes back


@pytest.fixture
def own_broker(tmp_path_factory):
    """A broker of this test's own (not the session's: other tests must not see it go
    down), in its own state dir; stopped and removed at the end, whatever happened."""
    state = tmp_path_factory.mktemp("own-kafka") / "broker"
    env = {"KAFKA_STATE_DIR": str(state)}
    try:
        r = harness.kafka("start", env=env)
        yield {"bootstrap": r.stdout.strip().splitlines()[-1], "env": env, "state": state}
    finally:
        harness.kafka("stop", env=env, check=False)


BROKER_LINES = 30000
BROKER_RATE = 4000  # lines/s: the writer is done while the broker is still down
OUTAGE_S = 10.0


@pytest.mark.parametrize("how", ["stop", "kill"])
def test_broker_down_and_up(tmp_path, own_broker, topic, how, record_property):
    """A writer appends 30,000 lines at 4,000 lines/s. Once ringtail has delivered a
    few thousand, the broker goes down (stop: SIGTERM, a clean shutdown; kill:
    SIGKILL) with its data kept, for 10 s (longer if the writer is not done by then);
    then it is started again on the same ports with the same data. librdkafka retries what it
    had in flight and sends what waited (message.timeout.ms=0: records never expire).

    Asserted: ringtail ran throughout; every line exactly once (the broker kept the
    idempotent producer's state, so a retried batch it had already written is not
    written again) and in file order; ringtail logged the outage as a few warnings
    (kfk_error_cb passes an error on only when its text differs from the previous
    one, and librdkafka suppresses repeated connection errors), < 30; SIGTERM
    exits 0. Recorded: ringtail's peak RSS (VmHWM) and the time from the broker being
    back (kafka.sh start returned) until every line was in Kafka."""
    bs = own_broker["bootstrap"]
    env = own_broker["env"]
    logs = tmp_path / "logs"
    logs.mkdir()
    app = logs / "app.log"
    w = LineWriter(app, "b", line_bytes=LINE, rate=BROKER_RATE, batch=30)
    w.write_now(300)
    rt = start(tmp_path, bs, topic, str(app))
    wait_lines(bs, topic, w.lines, rt)
    w.start()
    settle(bs, topic, 3000, 60, rt)
    before = topic_count(bs, topic)

    t_down = time.monotonic()
    if how == "stop":
        harness.kafka("stop", "--keep-data", env=env)
    else:
        harness.kafka("kill", env=env)
    at_down = w.count
    w.wait_written(BROKER_LINES)
    lines = w.stop()
    time.sleep(max(0.0, OUTAGE_S - (time.monotonic() - t_down)))  # the outage
    assert rt.proc.poll() is None, \
        f"ringtail exited ({rt.proc.returncode}) while the broker was down{_log_tail(rt.output())}"
    log_at_back = rt.output()
    harness.kafka("start", env=env)
    t_back = time.monotonic()
    outage_total = t_back - t_down
    got = settle(bs, topic, len(lines), 120, rt)
    resume = time.monotonic() - t_back
    assert rt.proc.poll() is None, \
        f"ringtail exited ({rt.proc.returncode}) after the broker came back" \
        f"{_log_tail(rt.output())}"
    hwm = vm_hwm_kib(rt.proc.pid)
    msgs = finish(rt, bs, topic, lines, groups=w.by_file.values(), timeout=5)
    log = rt.output()
    warns = [l for l in log.splitlines() if " WARN " in l and "kafka:" in l]
    down_warns = [l for l in log_at_back.splitlines() if " WARN " in l and "kafka:" in l]
    stats = {"mode": how, "lines": len(lines), "in_kafka_before_outage": before,
             "written_when_down": at_down, "outage_s": round(outage_total, 1),
             "resume_s": round(resume, 2), "peak_rss_kib": hwm,
             "kafka_warnings": len(warns), "kafka_warnings_while_down": len(down_warns)}
    for key, v in stats.items():
        record_property(key, v)
    print(f"broker {how}: " + ", ".join(f"{k}={v}" for k, v in stats.items()))
    print("warnings:\n  " + "\n  ".join(warns))
    assert got >= len(lines) and len(msgs) == len(lines)
    assert down_warns, f"ringtail did not log the outage{_log_tail(log)}"
    assert len(warns) < 30, f"{len(warns)} 'kafka:' warnings for one outage:\n" + \
        "\n".join(warns[:40])
