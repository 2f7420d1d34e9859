# SPDX-License-Identifier: Apache-2.0
"""Exactly-once (exactly.once.source.support=enabled): records and their file offsets
commit together in Kafka transactions, the offsets in offset.storage.topic; a
read_committed consumer sees every line exactly once across SIGTERM, SIGKILL (50 times,
while files rotate), the loss of the local checkpoint file, and fencing by a second
instance with the same transactional.id."""
import json
import random
import signal
import subprocess
import time

import harness
from harness import Ringtail
from logwriter import LineWriter, assert_same_lines, settle, shift_rotate
from test_tailsource import append, lines_of, start, tail_source


def eos_worker(tmp_path, offsets_topic, **extra):
    return {"exactly.once.source.support": "enabled",
            "offset.storage.topic": offsets_topic,
            "offset.storage.partitions": "3",
            "offset.flush.interval.ms": "200", **extra}


def committed(bootstrap, topic):
    """Every record a read_committed consumer sees."""
    return harness.values(harness.kcat_consume(bootstrap, topic,
                                               extra=["-X", "isolation.level=read_committed"]))


def committed_count(bootstrap, topic):
    return len(committed(bootstrap, topic))


def wait_committed(bootstrap, topic, n, rt, timeout=60):
    harness.wait_until(lambda: committed_count(bootstrap, topic) >= n or rt.proc.poll() is not None,
                       timeout, f"{n} committed records")
    got = committed(bootstrap, topic)
    assert len(got) >= n, f"{len(got)} of {n} committed records; {rt.output()[-3000:]}"
    return got


def test_restart_and_lost_local_checkpoint(tmp_path, bootstrap, topic):
    """SIGTERM, more lines, restart; then the local checkpoint file deleted, more
    lines, restart: the offsets topic alone says where to go on. Exactly once, in order;
    the offsets topic holds this file's offset as JSON."""
    logs = tmp_path / "logs"
    logs.mkdir()
    app = logs / "app.log"
    otopic = topic + "-offsets"
    worker = eos_worker(tmp_path, otopic)
    lines = append(app, lines_of("e", 500))
    rt = start(tmp_path, bootstrap, topic, str(app), worker=worker)
    wait_committed(bootstrap, topic, len(lines), rt)
    assert rt.stop() == 0, rt.output()
    lines += append(app, lines_of("e", 300, first=500))
    rt = start(tmp_path, bootstrap, topic, str(app), worker=worker)
    rt.wait_for_log(r"exactly-once \(transactional.id 'ringtail-tail-0'\): 1 file offsets")
    wait_committed(bootstrap, topic, len(lines), rt)
    assert rt.stop() == 0, rt.output()
    (tmp_path / "connect.offsets").unlink()
    lines += append(app, lines_of("e", 200, first=800))
    rt = start(tmp_path, bootstrap, topic, str(app), worker=worker)
    got = wait_committed(bootstrap, topic, len(lines), rt)
    time.sleep(1.0)  # a duplicate would come now
    assert rt.stop() == 0, rt.output()
    got = committed(bootstrap, topic)
    assert got == lines, "not exactly the lines, once, in order"
    offs = [json.loads(v) for v in harness.values(
        harness.kcat_consume(bootstrap, otopic, extra=["-X", "isolation.level=read_committed"]))]
    assert offs and offs[-1]["offset"] == app.stat().st_size, offs[-1:]


def test_kill_loop_exactly_once(tmp_path, bootstrap, topic):
    """50 SIGKILLs at random moments while a writer appends 1,000 lines/s and the file
    is rotated (rename) every ~1.5 s; ringtail restarted after each. A read_committed
    consumer then sees every line exactly once."""
    logs = tmp_path / "logs"
    logs.mkdir()
    app = logs / "app.log"
    worker = eos_worker(tmp_path, topic + "-offsets")
    w = LineWriter(app, "x", line_bytes=80, rate=1000, batch=20, reopen=True)
    w.write_now(100)
    rng = random.Random(20261124)
    w.start()
    last_rotation = time.monotonic()
    kills = 0
    for _ in range(50):
        rt = start(tmp_path, bootstrap, topic, str(app), worker=worker)
        time.sleep(rng.uniform(0.3, 1.2))
        if time.monotonic() - last_rotation > 1.5:
            shift_rotate(app)
            last_rotation = time.monotonic()
        assert rt.proc.poll() is None, rt.output()
        rt.kill()
        kills += 1
    lines = w.stop()
    rt = start(tmp_path, bootstrap, topic, str(app), worker=worker)
    harness.wait_until(lambda: committed_count(bootstrap, topic) >= len(lines) or
                       rt.proc.poll() is not None, 120, "every line committed")
    assert rt.stop() == 0, rt.output()
    assert kills == 50
    assert_same_lines(lines, committed(bootstrap, topic), "read_committed records",
                      log=rt.output())


def test_second_instance_fences_the_first(tmp_path, bootstrap, topic):
    """Two instances with the same transactional.id: the one started second fences the
    first, which stops with a message saying so (exit 1); the second goes on, and the
    lines arrive once."""
    logs = tmp_path / "logs"
    logs.mkdir()
    app = logs / "app.log"
    otopic = topic + "-offsets"
    lines = append(app, lines_of("f", 100))
    a = start(tmp_path, bootstrap, topic, str(app), worker=eos_worker(tmp_path, otopic))
    wait_committed(bootstrap, topic, len(lines), a)
    wb = harness.worker_props(tmp_path, bootstrap, name="w-b.properties", **{
        **eos_worker(tmp_path, otopic),
        "offset.storage.file.filename": str(tmp_path / "b.offsets")})
    b = Ringtail(["standalone", wb, tail_source(tmp_path, topic, str(app), name="tail")],
                 tmp_path)
    b.wait_for_log(r"exactly-once \(transactional.id 'ringtail-tail-0'\)")
    lines += append(app, lines_of("f", 50, first=100))
    assert a.wait(60) == 1, a.output()
    assert "fenced" in a.output(), a.output()
    wait_committed(bootstrap, topic, len(lines), b)
    assert b.stop() == 0, b.output()
    assert_same_lines(lines, committed(bootstrap, topic), "read_committed records")
