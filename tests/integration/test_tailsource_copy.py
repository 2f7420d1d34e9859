# SPDX-License-Identifier: Apache-2.0
"""copytruncate's copy, recognised by its fingerprint: the part of the original that
ringtail had not read when logrotate copied and truncated it is read from the copy
(app.log.1, a name outside the glob), once, whether ringtail was frozen during the
rotation or stopped. Also the line-handling keys that test_tailsource.py leaves out:
partial.line.flush.ms, empty.lines=skip, close.inactive.ms, a small max.open.files,
and config errors."""
import os
import signal
import subprocess

import harness
from harness import Ringtail
from logwriter import LineWriter, Logrotate, open_paths, settle
from test_tailsource import LINE, append, finish, lines_of, start, tail_source, wait_lines


def test_copytruncate_copy_holds_the_unread_rest(tmp_path, bootstrap, topic):
    """3 times: ringtail is frozen (SIGSTOP) while lines are written and logrotate copies
    and truncates app.log; after SIGCONT it finds the truncation,
    recognises app.log.1 as the copy and ships what it had not read of it. Every line
    exactly once, each file's lines in order."""
    logs = tmp_path / "logs"
    logs.mkdir()
    app = logs / "app.log"
    lr = Logrotate(app, tmp_path, mode="copytruncate", rotate=5)
    w = LineWriter(app, "k", line_bytes=LINE)
    w.write_now(300)
    rt = start(tmp_path, bootstrap, topic, str(app))
    wait_lines(bootstrap, topic, w.lines, rt)
    for i in range(3):
        rt.send(signal.SIGSTOP)
        unread = w.write_now(500)  # only in the copy after the rotation
        lr.run()
        assert app.stat().st_size == 0
        rt.send(signal.SIGCONT)
        rt.wait_for_log(rf"is a copy of '.*app\.log' as it was read up to offset \d+", timeout=30)
        w.write_now(100)  # the truncated original, read again from 0
        wait_lines(bootstrap, topic, w.lines, rt, what=f"after copytruncate {i + 1}")
        assert unread[0] in harness.values(harness.kcat_consume(bootstrap, topic))
    assert rt.output().count("is a copy of") == 3
    finish(rt, bootstrap, topic, w.stop())


def test_copytruncate_while_stopped(tmp_path, bootstrap, topic):
    """ringtail stopped (SIGTERM), lines written, logrotate copytruncate, more lines,
    restart: the checkpoint of app.log no longer matches it (truncated), its copy
    app.log.1 is found by fingerprint in the directory and read from the checkpoint's
    offset, and app.log is read from 0. Every line exactly once."""
    logs = tmp_path / "logs"
    logs.mkdir()
    app = logs / "app.log"
    lr = Logrotate(app, tmp_path, mode="copytruncate", rotate=5)
    w = LineWriter(app, "s", line_bytes=LINE)
    w.write_now(200)
    rt = start(tmp_path, bootstrap, topic, str(app))
    wait_lines(bootstrap, topic, w.lines, rt)
    assert rt.stop() == 0, rt.output()
    w.write_now(300)
    lr.run()
    w.write_now(50)
    rt = start(tmp_path, bootstrap, topic, str(app))
    rt.wait_for_log(r"is a copy of '.*app\.log' as it was read up to offset 20200")
    finish(rt, bootstrap, topic, w.stop())


def test_partial_line_flush(tmp_path, bootstrap, topic):
    """partial.line.flush.ms=300: a last line without newline is sent after 300 ms; the
    bytes that follow start a new line. Without the key (0) it waits for the newline."""
    logs = tmp_path / "logs"
    logs.mkdir()
    held, flushed = logs / "held.log", logs / "flushed.log"
    held.write_bytes(b"h1\nh2-no-newline")
    flushed.write_bytes(b"f1\nf2-no-newline")
    rt = start(tmp_path, bootstrap, topic, f"{logs}/flushed.log",
               **{"partial.line.flush.ms": "300"})
    rt2 = Ringtail(["standalone",
                    harness.worker_props(tmp_path, bootstrap, name="w2.properties",
                                         **{"offset.storage.file.filename":
                                            str(tmp_path / "off2")}),
                    tail_source(tmp_path, topic, f"{logs}/held.log", name="held")], tmp_path)
    settle(bootstrap, topic, 3, 30, rt)
    with open(flushed, "ab") as f:
        f.write(b"-rest\n")
    with open(held, "ab") as f:
        f.write(b"-rest\n")
    expect = [b"f1", b"f2-no-newline", b"-rest", b"h1", b"h2-no-newline-rest"]
    settle(bootstrap, topic, len(expect), 30, rt2)
    assert rt2.stop() == 0
    finish(rt, bootstrap, topic, expect)


def test_empty_lines_skip_and_keep(tmp_path, bootstrap, topic):
    """empty.lines=skip drops empty lines (and CRLF-only ones) and keeps the rest."""
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "a.log").write_bytes(b"a1\n\n\r\na2\r\n\n")
    rt = start(tmp_path, bootstrap, topic, f"{logs}/*.log", **{"empty.lines": "skip"})
    finish(rt, bootstrap, topic, [b"a1", b"a2"])
    assert "empty lines skipped: 3" in rt.output()


def test_close_inactive_and_reopen(tmp_path, bootstrap, topic):
    """close.inactive.ms=500: an idle file's descriptor is closed; an append opens it
    again and is read from where reading stopped."""
    logs = tmp_path / "logs"
    logs.mkdir()
    app = logs / "app.log"
    first = append(app, lines_of("c", 10))
    rt = start(tmp_path, bootstrap, topic, f"{logs}/*.log", **{"close.inactive.ms": "500"})
    wait_lines(bootstrap, topic, first, rt)
    harness.wait_until(lambda: str(app) not in open_paths(rt.proc.pid), 30,
                       "the idle file to be closed")
    more = append(app, lines_of("c", 10, first=10))
    finish(rt, bootstrap, topic, first + more, groups=[first + more])


def test_small_max_open_files(tmp_path, bootstrap, topic):
    """max.open.files=4 with 40 files written in 3 rounds: never more than 4 of them
    open (checked while they are read), every line once, each file in order."""
    logs = tmp_path / "logs"
    logs.mkdir()
    files = [logs / f"f{i:02d}.log" for i in range(40)]
    content = {p: append(p, lines_of(p.stem, 20)) for p in files}
    rt = start(tmp_path, bootstrap, topic, f"{logs}/*.log", **{"max.open.files": "4"})
    peak = 0
    for r in range(1, 3):
        for p in files[::3]:
            content[p] += append(p, lines_of(p.stem, 5, first=20 * r))
        peak = max(peak, sum(1 for x in open_paths(rt.proc.pid) if x.startswith(str(logs))))
    expected = [l for v in content.values() for l in v]
    wait_lines(bootstrap, topic, expected, rt)
    peak = max(peak, sum(1 for x in open_paths(rt.proc.pid) if x.startswith(str(logs))))
    assert peak <= 4, f"{peak} files open"
    finish(rt, bootstrap, topic, expected, groups=content.values())


def test_bad_tailsource_config_starts_nothing(tmp_path, bootstrap, topic):
    """Each bad value is an error naming key, value and what is allowed; exit 2."""
    props = tail_source(tmp_path, topic, "relative/../*.log/", **{
        "long.line.policy": "wrap", "read.from": "middle",
        "multiline.start.pattern": "^(unclosed", "key.mode": "file"})
    worker = harness.worker_props(tmp_path, bootstrap)
    r = subprocess.run([harness.ringtail_bin(), "standalone", worker, props],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 2, r.stderr
    for want in ["files='relative/../*.log/' is not valid",
                 "long.line.policy='wrap' is not valid: expected split, truncate or skip",
                 "read.from='middle' is not valid: expected beginning or end",
                 "multiline.start.pattern='^(unclosed' is not valid: expected a PCRE2",
                 "key.mode='file' is not valid: expected none, path or host"]:
        assert want in r.stderr, r.stderr
    assert not os.path.exists(tmp_path / "connect.offsets")
