# SPDX-License-Identifier: Apache-2.0
"""TailSource (connector.class=TailSource) end to end against a real Apache Kafka broker:
globs, real logrotate (create and copytruncate), scripted rename rotations, deletion,
truncation and inode reuse, rotations while stopped, thousands of files, long lines,
multiline records, Kubernetes-style symlinks, source headers and keys, read.from=end.

Every test compares the multiset of lines written with the multiset of records kcat
reads back (no loss, no duplicate) and, where a file has a defined order, the order of
each file's lines within each partition. Waits poll Kafka with deadlines; a test that
times out still reports exactly which lines are missing or duplicated. Nothing here
depends on how fast ringtail is: the numbers test_5000_files reports are only
recorded."""
import collections
import os
import random
import socket
import subprocess
import time

import pytest

import harness
from harness import Ringtail, kcat_consume, values, write_props
from logwriter import (LineWriter, Logrotate, assert_file_order, assert_same_lines,
                       file_lines, kcat_consume_json, make_line, multiset_diff, open_paths,
                       proc_cpu_seconds, rotated_names, settle, shift_rotate, show,
                       topic_count)

pytestmark = pytest.mark.usefixtures("ringtail_bin")

LINE = 100  # bytes of a writer line, newline excluded
MAX_LINE_DEFAULT = 934464  # max.line.bytes default


@pytest.fixture(autouse=True)
def stop_writers():
    """No writer thread outlives its test."""
    yield
    LineWriter.stop_all()


def tail_source(tmp_path, topic, files, name="tail", **extra):
    entries = {"name": name, "connector.class": "TailSource", "topic": topic, "files": files}
    entries.update(extra)
    return write_props(tmp_path / f"{name}.properties", entries)


def start(tmp_path, bootstrap, topic, files, worker=None, **extra):
    """ringtail standalone with a StringConverter worker (values are the raw line bytes)
    and one TailSource; extra connector keys as **{"read.from": "end"}."""
    w = harness.worker_props(tmp_path, bootstrap,
                             **{"offset.flush.interval.ms": "500", **(worker or {})})
    return Ringtail(["standalone", w, tail_source(tmp_path, topic, files, **extra)], tmp_path)


def _log_tail(rt, n=60):
    lines = rt.output().splitlines()
    return f"\n--- ringtail's log (last {min(n, len(lines))} lines) ---\n" + "\n".join(lines[-n:])


def wait_lines(bootstrap, topic, expected, rt, timeout=60, what="records"):
    """Waits until the topic holds len(expected) records. On a timeout it fails with the
    exact difference and ringtail's log (for waits that the test's next step needs)."""
    n = len(expected)
    c = settle(bootstrap, topic, n, timeout, rt)
    if c < n:
        got = values(kcat_consume(bootstrap, topic))
        dead = "" if rt.proc.poll() is None else f" (ringtail exited {rt.proc.returncode})"
        raise AssertionError(f"{what}: the topic holds {c} of {n} records{dead}\n"
                             f"{multiset_diff(expected, got)}{_log_tail(rt)}")


def wait_last_value(bootstrap, topic, value, rt, timeout=60):
    """Waits until the last record of the (single-partition) topic is `value`."""
    def last():
        r = subprocess.run(["kcat", "-C", "-b", bootstrap, "-t", topic, "-o", "-1", "-e", "-q",
                            "-f", "%s"], capture_output=True, timeout=60)
        return r.returncode == 0 and r.stdout == value or rt.proc.poll() is not None
    harness.wait_until(last, timeout, f"{value[:40]!r} to be the last record", interval=0.2)


def wait_closed(rt, path, timeout=30):
    """Waits until no fd of ringtail points at path (a deleted file shows as
    'PATH (deleted)' in /proc/PID/fd): its disk space is freed."""
    def closed():
        if rt.proc.poll() is not None:
            raise AssertionError(f"ringtail exited ({rt.proc.returncode}){_log_tail(rt)}")
        return not any(p == str(path) or p.startswith(f"{path} ") for p in open_paths(rt.proc.pid))
    try:
        harness.wait_until(closed, timeout, f"ringtail to close {path}")
    except AssertionError as e:
        raise AssertionError(f"{e}{_log_tail(rt)}") from None


def finish(rt, bootstrap, topic, expected, groups=(), timeout=60, what="records"):
    """Waits for len(expected) records, stops ringtail with SIGTERM (it drains, so the
    topic is final), then asserts: exactly the multiset `expected`; within every
    partition, the lines of each group (one file's lines in written order) in order;
    exit status 0. Returns the messages."""
    settle(bootstrap, topic, len(expected), timeout, rt)
    rc = rt.stop()
    msgs = kcat_consume(bootstrap, topic)
    log = rt.output()
    assert_same_lines(expected, values(msgs), what, log=log)
    parts = collections.defaultdict(list)
    for p, _, _, v in msgs:
        parts[p].append(v)
    groups = list(groups)
    for p, vs in sorted(parts.items()):
        assert_file_order(vs, groups, f"{what}, partition {p}", log=log)
    assert rc == 0, f"ringtail exited {rc} on SIGTERM{_log_tail(rt)}"
    return msgs


def append(path, lines):
    with open(path, "ab") as f:
        f.write(b"".join(l + b"\n" for l in lines))
    return list(lines)


def lines_of(tag, n, line_bytes=LINE, first=0):
    return [make_line(tag, i, line_bytes) for i in range(first, first + n)]


# ---------------------------------------------------------------------------
# 1-3: rotation schemes


def test_logrotate_create_20_rotations(tmp_path, bootstrap, topic):
    """Real logrotate in `create` mode (rotate 5: the oldest file is deleted from the 6th
    run on) run 20 times while a writer appends 4,000 lines/s. files= names only the live
    app.log: the rotated files are finished by identity. The writer keeps its fd and
    writes on into app.log.1 for a while after each run, then reopens app.log, like an
    application that logrotate's postrotate sends SIGHUP. (A writer that reopened per
    batch could create app.log between logrotate's rename and its create; logrotate
    then moves that file aside as app.log-YYYYMMDDHH.backup, outside every glob.)"""
    logs = tmp_path / "logs"
    logs.mkdir()
    app = logs / "app.log"
    lr = Logrotate(app, tmp_path, mode="create", rotate=5)
    w = LineWriter(app, "c", line_bytes=LINE, rate=4000, batch=40)
    first = w.write_now(200)
    rt = start(tmp_path, bootstrap, topic, str(app))
    # Rotations start once ringtail has the file: one renamed away before ringtail ever
    # saw it under a name the glob matches could not be found.
    wait_lines(bootstrap, topic, first, rt)
    w.start()
    for _ in range(20):
        w.wait_written(w.count + 400)
        lr.run()  # .4 -> .5, ..., app.log -> app.log.1, new app.log; .6 deleted
        w.wait_written(w.count + 40)  # still into the renamed file
        w.reopen()  # postrotate's SIGHUP
    w.wait_written(w.count + 400)
    lines = w.stop()
    assert lr.runs == 20
    assert sorted(rotated_names(app)) == [1, 2, 3, 4, 5], sorted(rotated_names(app))
    finish(rt, bootstrap, topic, lines, groups=w.by_file.values())


def test_logrotate_copytruncate_20_rotations(tmp_path, bootstrap, topic):
    """Real logrotate in `copytruncate` mode run 20 times; the writer keeps one O_APPEND
    fd for the whole test (after each truncation it writes at the new end, offset 0).

    copytruncate loses data by design, so the test removes those windows to be exact:
    - lines written between logrotate's copy and its truncate exist only in the copy
      (app.log.1): the writer is paused while logrotate runs;
    - lines ringtail had not read before the truncation also exist only in the copy,
      which files= leaves out (reading copies would send every line twice): before each
      run the test waits until Kafka holds every line written so far;
    - after the truncation the writer first writes one line and the test waits for it:
      the file stays smaller than the offset ringtail had read up to until ringtail
      notices the truncation (a file refilled past that offset before ringtail looks is
      test_truncated_and_rewritten_longer's case).
    Then: zero loss and zero duplicates."""
    logs = tmp_path / "logs"
    logs.mkdir()
    app = logs / "app.log"
    lr = Logrotate(app, tmp_path, mode="copytruncate", rotate=5)
    w = LineWriter(app, "t", line_bytes=LINE, rate=4000, batch=40)
    w.write_now(200)
    inode = app.stat().st_ino
    rt = start(tmp_path, bootstrap, topic, str(app))
    wait_lines(bootstrap, topic, w.lines, rt)
    w.start()
    for i in range(20):
        w.wait_written(w.count + 400)
        w.pause()
        wait_lines(bootstrap, topic, w.lines, rt, what=f"before rotation {i + 1}")
        lr.run()
        assert app.stat().st_size == 0
        w.write_now(1)
        wait_lines(bootstrap, topic, w.lines, rt, what=f"after truncation {i + 1}")
        w.resume()
    w.wait_written(w.count + 400)
    lines = w.stop()
    assert app.stat().st_ino == inode and len(w.by_file) == 1
    assert sorted(rotated_names(app)) == [1, 2, 3, 4, 5]
    finish(rt, bootstrap, topic, lines, groups=w.by_file.values())


def test_rename_rotation_100_times(tmp_path, bootstrap, topic):
    """A scripted rename rotation (app.log.k -> app.log.k+1 from the highest k down,
    then app.log -> app.log.1; nothing deleted) 100 times in a row while a writer that
    opens the path for every batch appends 10,000 lines/s: its next batch creates the new
    app.log. Every rotation happens after at least 100 more lines; each file is renamed
    again at every later rotation, and some live under app.log for ~10 ms only."""
    logs = tmp_path / "logs"
    logs.mkdir()
    app = logs / "app.log"
    w = LineWriter(app, "r", line_bytes=LINE, rate=10000, batch=20, reopen=True)
    w.write_now(100)
    rt = start(tmp_path, bootstrap, topic, str(app))
    wait_lines(bootstrap, topic, w.lines, rt)
    w.start()
    for _ in range(100):
        w.wait_written(w.count + 100)
        shift_rotate(app)
    w.wait_written(w.count + 100)
    lines = w.stop()
    assert sorted(rotated_names(app)) == list(range(1, 101))
    finish(rt, bootstrap, topic, lines, groups=w.by_file.values(), timeout=90)


# ---------------------------------------------------------------------------
# 4-5: deletion, truncation, inode reuse


def test_deleted_while_unread(tmp_path, bootstrap, topic):
    """A 50 MiB file is deleted as soon as its first record is in Kafka; buffer.memory of
    1 MiB keeps ringtail far behind. The open fd still reads it all: every line arrives,
    in order. Afterwards (close.inactive.ms=1000) ringtail closes the deleted file, so
    its space is freed."""
    logs = tmp_path / "logs"
    logs.mkdir()
    big = logs / "big.log"
    lines = lines_of("d", 50 * 1024, line_bytes=1023)  # 1 KiB with the newline
    big.write_bytes(b"".join(l + b"\n" for l in lines))
    rt = start(tmp_path, bootstrap, topic, f"{logs}/*.log",
               **{"buffer.memory": str(1 << 20), "close.inactive.ms": "1000"})
    harness.wait_until(lambda: topic_count(bootstrap, topic) > 0 or rt.proc.poll() is not None,
                       60, "the first record")
    big.unlink()
    at_unlink = topic_count(bootstrap, topic)
    assert at_unlink < len(lines), \
        "ringtail had sent the whole file before it was deleted: the test did not test"
    settle(bootstrap, topic, len(lines), 120, rt)
    wait_closed(rt, big)
    finish(rt, bootstrap, topic, lines, groups=[lines])
    print(f"deleted after {at_unlink} of {len(lines)} lines were in Kafka")


def test_truncation_reads_new_content_from_start(tmp_path, bootstrap, topic):
    """`: > app.log`, then 5 new lines (fewer bytes than were read), then 100 more (more
    bytes than were read): the new content is read from offset 0, nothing old again."""
    logs = tmp_path / "logs"
    logs.mkdir()
    app = logs / "app.log"
    old = append(app, lines_of("old", 50))  # 5 KiB, more than fingerprint.bytes
    rt = start(tmp_path, bootstrap, topic, f"{logs}/*.log")
    wait_lines(bootstrap, topic, old, rt)
    with open(app, "wb"):  # : > app.log (O_TRUNC, same inode)
        pass
    new = append(app, lines_of("new", 5))
    wait_lines(bootstrap, topic, old + new, rt)
    new += append(app, lines_of("new", 100, first=5))
    finish(rt, bootstrap, topic, old + new, groups=[old, new])


def test_truncated_and_rewritten_longer(tmp_path, bootstrap, topic):
    """Truncated and at once rewritten with more bytes than were read (one open(O_TRUNC)
    and one write): ringtail may look only when the file is already longer than its
    offset, so the size tells nothing; the first fingerprint.bytes bytes changed, and
    the file must be read again from offset 0 with nothing old repeated."""
    logs = tmp_path / "logs"
    logs.mkdir()
    app = logs / "app.log"
    old = append(app, lines_of("old", 50))
    rt = start(tmp_path, bootstrap, topic, f"{logs}/*.log")
    wait_lines(bootstrap, topic, old, rt)
    new = lines_of("new", 200)
    with open(app, "wb") as f:
        f.write(b"".join(l + b"\n" for l in new))
    finish(rt, bootstrap, topic, old + new, groups=[old, new])


def _recreate_with_inode(path, ino, content, tries=5000):
    """Puts a new file holding `content` at `path` with inode `ino` if this filesystem
    hands that inode out again, and returns whether it did. ext4 gives a new file the
    lowest free inode of its directory's block group: empty candidates (named outside
    every glob) are created until one gets `ino`, filling any lower free inode first;
    misses are kept so those inodes are not handed back. tmpfs never reuses an inode
    number. The file is written under the candidate's name and renamed to `path`."""
    for i in range(tries):
        cand = path.with_name(f"{path.name}.cand{time.monotonic_ns()}-{i}")
        fd = os.open(cand, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            if os.fstat(fd).st_ino != ino:
                continue
            os.write(fd, content)
        finally:
            os.close(fd)
        os.rename(cand, path)
        print(f"inode {ino} reused by candidate {i}")
        return True
    return False


def test_inode_reuse_is_a_new_file(tmp_path, bootstrap, topic):
    """A file is deleted and a new file with the same inode (and more bytes than the old
    offset) appears at its path: it is read from its start, nothing old again. Once
    while ringtail runs (after it closed the deleted file: close.inactive.ms=500; the
    inode is only freed then), once while it is stopped (the checkpoint holds the old
    file's dev+inode+fingerprint). No periodic checkpoint while it runs: each one is a
    new file that could take the freed inode first."""
    logs = tmp_path / "logs"
    logs.mkdir()
    app = logs / "app.log"
    extra = {"close.inactive.ms": "500"}
    worker = {"offset.flush.interval.ms": "3600000"}
    old = append(app, lines_of("old", 50))
    rt = start(tmp_path, bootstrap, topic, f"{logs}/*.log", worker, **extra)
    wait_lines(bootstrap, topic, old, rt)
    ino = app.stat().st_ino
    app.unlink()
    wait_closed(rt, app)
    new1 = lines_of("new1", 200)
    if not _recreate_with_inode(app, ino, b"".join(l + b"\n" for l in new1)):
        pytest.skip(f"this filesystem ({logs}) did not hand inode {ino} out again")
    wait_lines(bootstrap, topic, old + new1, rt, what="inode reused while running")
    assert rt.stop() == 0, _log_tail(rt)

    ino = app.stat().st_ino
    app.unlink()
    new2 = lines_of("new2", 300)
    if not _recreate_with_inode(app, ino, b"".join(l + b"\n" for l in new2)):
        pytest.skip(f"this filesystem ({logs}) did not hand inode {ino} out again")
    rt = start(tmp_path, bootstrap, topic, f"{logs}/*.log", worker, **extra)
    finish(rt, bootstrap, topic, old + new1 + new2, groups=[old, new1, new2])


# ---------------------------------------------------------------------------
# 6: restarts


@pytest.mark.parametrize("glob", ["live", "all"])
def test_rotations_while_stopped(tmp_path, bootstrap, topic, glob):
    """ringtail reads app.log and stops (SIGTERM). While it is stopped, app.log is
    rotated 3 times (app.log -> .1 -> .2 -> .3), with lines appended before each rotation
    and some after it through the writer's open fd. Restarted, it sends every line
    exactly once.

    live: files=app.log only. The writer does not reopen between rotations, so the
    checkpointed file itself goes app.log -> .1 -> .2 -> .3 and its unread tail is found
    by identity under a name outside the glob; then the writer reopens: a new app.log.
    all: files=app.log*. The writer reopens after each rotation, so .2 and .1 are files
    ringtail never saw (no checkpoint, read from the start) and the checkpointed file,
    now app.log.3, must be resumed at its checkpoint, not read again from 0."""
    logs = tmp_path / "logs"
    logs.mkdir()
    app = logs / "app.log"
    files = str(app) if glob == "live" else f"{app}*"
    w = LineWriter(app, "s", line_bytes=LINE)
    w.write_now(100)
    rt = start(tmp_path, bootstrap, topic, files)
    wait_lines(bootstrap, topic, w.lines, rt)
    assert rt.stop() == 0, _log_tail(rt)
    for _ in range(3):
        w.write_now(50)
        shift_rotate(app)
        w.write_now(10)  # into the renamed file
        if glob == "all":
            w.reopen()
    if glob == "live":
        w.reopen()
    w.write_now(50)
    lines = w.stop()
    assert sorted(rotated_names(app)) == ([3] if glob == "live" else [1, 2, 3])
    rt = start(tmp_path, bootstrap, topic, files)
    finish(rt, bootstrap, topic, lines, groups=w.by_file.values())


# ---------------------------------------------------------------------------
# 7: many files


def test_5000_files(tmp_path, bootstrap, topic, record_property):
    """5,000 files under two globs (d*/f*.log, and deep/**/f*.log over 4 levels), 3
    lines each, more than max.open.files (1024 by default); 20 excluded files and one
    that no glob matches contribute nothing. Then 2 lines appended to each of 500 random
    files (seeded) and a file in a directory created after start: every line exactly
    once, each file's lines in order. Recorded, not asserted: the time from start until
    all initial lines were in Kafka (discovery) and ringtail's CPU use over a 5 s idle
    window afterwards."""
    base = tmp_path / "x"
    paths = []
    for d in range(8):
        sub = base / f"d{d}"
        sub.mkdir(parents=True)
        paths += [sub / f"f{i:04d}.log" for i in range(500)]
    deep = base / "deep"
    for level in ("a", "a/b", "a/b/c", "a/b/c/d"):
        sub = deep / level
        sub.mkdir(parents=True)
        paths += [sub / f"f{i:04d}.log" for i in range(250)]
    assert len(paths) == 5000
    content = {}  # every line names its file: lines are unique across files

    def tag(p):
        return str(p.relative_to(base)).encode()

    for p in paths:
        content[p] = [b"%s line %d %s" % (tag(p), i, b"x" * 40) for i in range(3)]
        p.write_bytes(b"".join(l + b"\n" for l in content[p]))
    for i in range(20):  # excluded: under both globs, matching the exclude glob
        sub = base / "d0" if i % 2 else deep / "a/b"
        (sub / f"f{i:04d}-skip.log").write_bytes(b"excluded %d\n" % i)
    (base / "d1" / "notes.txt").write_bytes(b"no glob matches this\n")
    initial = [l for p in paths for l in content[p]]

    t0 = time.monotonic()
    rt = start(tmp_path, bootstrap, topic, f"{base}/d*/f*.log,{deep}/**/f*.log",
               exclude=f"{base}/**/*-skip.log")
    wait_lines(bootstrap, topic, initial, rt, timeout=180, what="initial lines of 5,000 files")
    discovery = time.monotonic() - t0

    rng = random.Random(20261124)
    for p in rng.sample(paths, 500):
        content[p] += append(p, [b"%s appended %d" % (tag(p), i) for i in range(2)])
    later = deep / "new" / "x" / "f9999.log"
    later.parent.mkdir(parents=True)
    content[later] = append(later, [b"later %d" % i for i in range(5)])
    expected = [l for p in content for l in content[p]]
    assert len(set(expected)) == len(expected)
    wait_lines(bootstrap, topic, expected, rt, timeout=120, what="appended lines")

    pid = rt.proc.pid
    c0 = proc_cpu_seconds(pid)
    time.sleep(5.0)  # a measurement window, not a synchronisation
    idle = (proc_cpu_seconds(pid) - c0) / 5.0
    with open(f"/proc/{pid}/status") as st:
        hwm = next(int(l.split()[1]) for l in st if l.startswith("VmHWM:"))
    record_property("discovery_seconds", round(discovery, 3))
    record_property("idle_cpu_fraction", round(idle, 4))
    record_property("peak_rss_kib", hwm)
    print(f"5,000 files: all initial lines in Kafka {discovery:.2f} s after start; "
          f"idle CPU {idle * 100:.2f}% of a core over 5 s; peak RSS {hwm // 1024} MiB")
    finish(rt, bootstrap, topic, expected, groups=content.values())


# ---------------------------------------------------------------------------
# 8-9: line framing


def _ten_mib_line():
    # 10-byte counters: a piece out of place or missing shows in the concatenation.
    return b"".join(b"%010d" % i for i in range(1 << 20))


@pytest.mark.parametrize("policy", ["split", "truncate", "skip"])
def test_10mib_line(tmp_path, bootstrap, topic, policy):
    """One 10 MiB line between ordinary lines, default max.line.bytes (934464, under the
    topic's max.message.bytes and librdkafka's message.max.bytes). split: pieces of at
    most max.line.bytes, in order, concatenating to the line; truncate: one record, its
    first max.line.bytes bytes; skip: nothing. The lines around it arrive exactly once,
    in order."""
    logs = tmp_path / "logs"
    logs.mkdir()
    app = logs / "app.log"
    big = _ten_mib_line()
    assert len(big) == 10 << 20
    before, after = lines_of("b", 3), lines_of("a", 3)
    app.write_bytes(b"".join(l + b"\n" for l in before + [big] + after))
    rt = start(tmp_path, bootstrap, topic, f"{logs}/*.log", **{"long.line.policy": policy})
    wait_last_value(bootstrap, topic, after[-1], rt)
    rc = rt.stop()
    got = values(kcat_consume(bootstrap, topic))
    assert got[:3] == before and got[-3:] == after, \
        f"{[show(v, 40) for v in got[:4] + got[-4:]]}{_log_tail(rt)}"
    middle = got[3:-3]
    sizes = [len(v) for v in middle]
    if policy == "split":
        assert all(0 < s <= MAX_LINE_DEFAULT for s in sizes), sizes
        assert len(middle) >= -(-len(big) // MAX_LINE_DEFAULT), sizes
        assert b"".join(middle) == big, f"pieces of {sizes} bytes do not concatenate to the line"
    elif policy == "truncate":
        assert sizes == [MAX_LINE_DEFAULT] and middle[0] == big[:MAX_LINE_DEFAULT], sizes
    else:
        assert sizes == [], "the long line was not skipped"
    assert rc == 0, _log_tail(rt)


# Java stack trace lines as a JVM prints them; the properties file needs the
# backslashes doubled (java.util.Properties escapes), the regex is ^\d{4}-\d{2}-\d{2} .
MULTILINE_PATTERN_PROPS = r"^\\d{4}-\\d{2}-\\d{2} "


def _stack_trace(n_frames, tag):
    lines = [b"2026-11-24 06:00:01.000 ERROR [http-nio-8080-exec-7] c.e.Handler - %s failed"
             % tag, b"java.lang.IllegalStateException: %s" % tag]
    lines += [b"\tat com.example.layer%03d.Service%03d.call(Service%03d.java:%d)"
              % (i, i, i, 40 + i) for i in range(n_frames)]
    lines += [b"Caused by: java.io.IOException: Broken pipe",
              b"\tat sun.nio.ch.FileDispatcherImpl.write0(Native Method)",
              b"\t... %d more" % n_frames]
    return lines


def test_multiline_java_stack_trace(tmp_path, bootstrap, topic):
    """multiline.start.pattern=^\\d{4}-\\d{2}-\\d{2} : a 200-line stack trace after an
    ERROR line is one record, its lines joined with "\\n", between one-line records. A
    second trace is appended while ringtail runs, in 4 writes (it may read between them):
    still one record. The last record is complete once multiline.timeout.ms passes."""
    logs = tmp_path / "logs"
    logs.mkdir()
    app = logs / "app.log"

    def info(i):
        return b"2026-11-24 06:00:%02d.%03d INFO  [main] c.e.App - request %d ok" % (i % 60, i, i)

    trace1 = _stack_trace(196, b"first")  # the ERROR line and 200 more
    trace2 = _stack_trace(196, b"second")
    assert len(trace1) == 201
    part1 = [info(i) for i in range(5)]
    append(app, part1 + trace1 + [info(5), info(6)])
    rt = start(tmp_path, bootstrap, topic, f"{logs}/*.log",
               **{"multiline.start.pattern": MULTILINE_PATTERN_PROPS})
    expected = part1 + [b"\n".join(trace1), info(5), info(6)]
    wait_lines(bootstrap, topic, expected, rt)
    for k in range(0, len(trace2), 51):
        append(app, trace2[k:k + 51])
    append(app, [info(7), info(8)])
    expected += [b"\n".join(trace2), info(7), info(8)]
    msgs = finish(rt, bootstrap, topic, expected)
    assert values(msgs) == expected


# ---------------------------------------------------------------------------
# 10: Kubernetes-style symlinks


def test_kubernetes_symlinks(tmp_path, bootstrap, topic):
    """containers/*.log are symlinks to pods/<pod>/<container>/0.log, as kubelet lays
    them out. Lines appended to the targets arrive; kubelet's rotation of a target
    (rename 0.log -> 0.log.<timestamp>, the runtime writes on into it until it reopens,
    then a new 0.log) 3 times loses nothing; a symlink re-pointed to another file (with
    content) is a new file read from its start."""
    base = tmp_path / "k8s"
    containers = base / "containers"
    containers.mkdir(parents=True)
    web_dir = base / "pods" / "default_web-7d4b9_1111" / "nginx"
    api_dir = base / "pods" / "default_api-5f6c8_2222" / "app"
    web_dir.mkdir(parents=True)
    api_dir.mkdir(parents=True)
    web_link = containers / "web-7d4b9_default_nginx-aaaa.log"
    api_link = containers / "api-5f6c8_default_app-bbbb.log"
    os.symlink(web_dir / "0.log", web_link)
    os.symlink(api_dir / "0.log", api_link)
    web = LineWriter(web_dir / "0.log", "web", line_bytes=LINE)
    api = LineWriter(api_dir / "0.log", "api", line_bytes=LINE)
    web.write_now(50)
    api.write_now(50)
    rt = start(tmp_path, bootstrap, topic, f"{containers}/*.log", **{"scan.interval.ms": "1000"})
    wait_lines(bootstrap, topic, web.lines + api.lines, rt)
    web.write_now(100)
    api.write_now(100)
    wait_lines(bootstrap, topic, web.lines + api.lines, rt)

    for r in range(3):
        web.write_now(200)
        os.rename(web_dir / "0.log", web_dir / f"0.log.20261124-0600{r:02d}")
        web.write_now(20)  # the runtime still has the renamed file open
        web.reopen()  # ReopenContainerLog: a new 0.log
        web.write_now(100)
    assert len(web.by_file) == 4

    # All of api's 0.log is in Kafka before its symlink moves away from it.
    wait_lines(bootstrap, topic, web.lines + api.lines, rt)
    api_lines = api.stop()
    new_target = api_dir / "1.log"
    api1 = LineWriter(new_target, "api1", line_bytes=LINE)
    api1.write_now(30)  # content before the symlink points to it
    tmp_link = containers / "api.tmp"
    os.symlink(new_target, tmp_link)
    os.replace(tmp_link, api_link)
    api1.write_now(10)
    web_lines = web.stop()
    api1_lines = api1.stop()
    finish(rt, bootstrap, topic, web_lines + api_lines + api1_lines,
           groups=list(web.by_file.values()) + [api_lines, api1_lines])


# ---------------------------------------------------------------------------
# 11: headers and keys


@pytest.mark.parametrize("key_mode", ["none", "path", "host"])
def test_source_headers_and_keys(tmp_path, kafka_broker, topic, key_mode):
    """headers.source=true: every record has exactly the headers file.path (the path the
    file was found at, also after it was renamed), file.offset (decimal byte offset of
    the line's first byte) and host.name (socket.gethostname()). key.mode sets the key:
    none (null), path, host. Three partitions: with key.mode=path each file's records
    share one partition; in every mode each file's offsets increase within a partition."""
    bootstrap = kafka_broker["bootstrap"]
    harness.kafka("create-topic", topic, "3", env=kafka_broker["env"])
    logs = tmp_path / "logs"
    logs.mkdir()
    a, b = logs / "a.log", logs / "b.log"
    # Lines of varying length, an empty one (empty.lines=keep) and a CRLF one.
    a_lines = [b"a %d %s" % (i, b"=" * (i * 7 % 50)) for i in range(20)]
    a_data = b"".join(l + b"\n" for l in a_lines[:10]) + b"\n" + \
        b"".join(l + b"\n" for l in a_lines[10:])
    a.write_bytes(a_data)
    b_lines = [b"b %d, with a comma=and equals %s" % (i, b"-" * (i * 13 % 70)) for i in range(15)]
    b.write_bytes(b"".join(l + b"\r\n" if i == 3 else l + b"\n" for i, l in enumerate(b_lines)))
    rt = start(tmp_path, bootstrap, topic, f"{logs}/*.log",
               **{"headers.source": "true", "key.mode": key_mode})
    wait_lines(bootstrap, topic, a_lines + [b""] + b_lines, rt)
    # a.log is renamed out of the glob and written to through an fd opened before: its
    # records keep file.path=a.log, offsets go on.
    fd = os.open(a, os.O_WRONLY | os.O_APPEND)
    os.rename(a, logs / "a.log.1")
    late = [b"a late %d" % i for i in range(5)]
    os.write(fd, b"".join(l + b"\n" for l in late))
    os.close(fd)

    expect = {}  # value -> (file.path, file.offset)
    for path, found_at in ((logs / "a.log.1", a), (b, b)):
        for off, line in file_lines(path):
            expect[line.rstrip(b"\r")] = (str(found_at).encode(), str(off).encode())
    assert len(expect) == 20 + 1 + 15 + 5
    settle(bootstrap, topic, len(expect), 60, rt)
    rc = rt.stop()
    msgs = kcat_consume_json(bootstrap, topic)
    log = rt.output()
    assert_same_lines(list(expect), [m["value"] for m in msgs], log=log)
    host = socket.gethostname().encode()
    bad = []
    for m in msgs:
        path, off = expect[m["value"]]
        want_h = sorted([("file.path", path), ("file.offset", off), ("host.name", host)])
        want_k = {"none": None, "path": path, "host": host}[key_mode]
        got_h = sorted(m["headers"], key=lambda h: (h[0], h[1] or b""))
        if got_h != want_h or m["key"] != want_k:
            bad.append(f"{m['value']!r}: key {m['key']!r}, headers {m['headers']} "
                       f"(want key {want_k!r}, headers {want_h})")
    assert not bad, (f"{len(bad)} records with wrong key or headers (the 'a late' lines were "
                     f"written after a.log became a.log.1: file.path is still the path the "
                     f"file was found at):\n" + "\n".join(bad[:10]))
    by_path = collections.defaultdict(set)
    seq = collections.defaultdict(list)
    for m in msgs:
        h = dict(m["headers"])
        by_path[h["file.path"]].add(m["partition"])
        seq[(m["partition"], h["file.path"])].append(int(h["file.offset"]))
    for k, offs in seq.items():
        assert offs == sorted(offs), f"partition {k[0]}, {k[1]!r}: offsets out of order {offs}"
    if key_mode == "path":
        assert all(len(ps) == 1 for ps in by_path.values()), dict(by_path)
    if key_mode == "host":
        assert len({m["partition"] for m in msgs}) == 1
    assert rc == 0, log[-3000:]


# ---------------------------------------------------------------------------
# 12: read.from=end


def _append_markers_until_seen(bootstrap, topic, path, tag, rt, timeout=60):
    """Appends one marker line to path every 0.2 s until one of them is in Kafka; returns
    all the markers written. ringtail took the file's end at some point while they were
    being written, so the markers that arrive are a suffix of them."""
    markers = []
    deadline = time.monotonic() + timeout
    while True:
        markers += append(path, [b"%s marker %d" % (tag, len(markers))])
        got = set(values(kcat_consume(bootstrap, topic)))
        if got & set(markers):
            return markers
        if rt.proc.poll() is not None or time.monotonic() > deadline:
            raise AssertionError(f"no marker of {path} arrived{_log_tail(rt)}")
        time.sleep(0.2)


def _arrived_suffix(bootstrap, topic, markers):
    got = set(values(kcat_consume(bootstrap, topic)))
    first = min(i for i, m in enumerate(markers) if m in got)
    return markers[first:]


def test_read_from_end(tmp_path, bootstrap, topic):
    """read.from=end (files relative to ringtail's working directory): a file with
    content at start contributes none of it, only what is appended after ringtail took
    its end; a file created after start is read from its beginning. After a restart
    the checkpoints win: lines appended while stopped arrive; a file that appeared while
    stopped (no checkpoint, there at start) again contributes only what follows."""
    logs = tmp_path / "logs"
    logs.mkdir()
    old = logs / "old.log"
    append(old, lines_of("before-start", 100))
    extra = {"read.from": "end"}
    rt = start(tmp_path, bootstrap, topic, "logs/*.log", **extra)
    markers = _append_markers_until_seen(bootstrap, topic, old, b"old", rt)
    expected = _arrived_suffix(bootstrap, topic, markers)
    # ringtail is reading old.log: its initial scan of logs/ is done; new.log is new.
    new = logs / "new.log"
    expected += append(new, lines_of("new", 10))  # created and written at once
    expected += append(old, lines_of("old-after", 20))
    expected += append(new, lines_of("new", 5, first=10))
    wait_lines(bootstrap, topic, expected, rt)
    assert rt.stop() == 0, _log_tail(rt)

    expected += append(old, lines_of("old-stopped", 7))
    expected += append(new, lines_of("new-stopped", 8))
    later = logs / "later.log"
    append(later, lines_of("later-before-start", 30))
    rt = start(tmp_path, bootstrap, topic, "logs/*.log", **extra)
    wait_lines(bootstrap, topic, expected, rt)
    markers = _append_markers_until_seen(bootstrap, topic, later, b"later", rt)
    expected += _arrived_suffix(bootstrap, topic, markers)
    expected += append(later, lines_of("later-after", 10))
    finish(rt, bootstrap, topic, expected)
