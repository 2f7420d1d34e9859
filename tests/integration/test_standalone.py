# SPDX-License-Identifier: Apache-2.0
"""Issue 2: the standalone walkthrough of Kafka's quickstart, end to end, against a
real broker, checked with kcat: every line exactly once across SIGTERM restarts, none
lost across SIGKILL."""
import collections
import json
import os
import re
import signal
import threading
import time
from pathlib import Path

import pytest

import harness
from harness import Ringtail, kcat_consume, values, wait_for_count, write_props

FIXTURES = harness.ROOT / "tests" / "data" / "props"


def envelope(line: bytes) -> bytes:
    """What Connect's JsonConverter (schemas.enable=true) makes of a plain ASCII line."""
    return (b'{"schema":{"type":"string","optional":false},"payload":' +
            json.dumps(line.decode()).encode() + b"}")


def quickstart_worker(tmp_path, bootstrap, **extra):
    """The quickstart's worker file: JsonConverter with schemas, 10 s flushes."""
    return harness.worker_props(tmp_path, bootstrap, **{
        "key.converter": "org.apache.kafka.connect.json.JsonConverter",
        "value.converter": "org.apache.kafka.connect.json.JsonConverter",
        "key.converter.schemas.enable": "true",
        "value.converter.schemas.enable": "true",
        "offset.flush.interval.ms": "10000",
        **extra})


def quickstart_source(tmp_path, topic, file="test.txt", **extra):
    entries = {
        "name": "local-file-source",
        "connector.class": "FileStreamSource",
        "tasks.max": "1",
        "file": file,
        "topic": topic,
    }
    entries.update(extra)
    return write_props(tmp_path / "connect-file-source.properties", entries)


def append(path, lines):
    with open(path, "ab") as f:
        for line in lines:
            f.write(line + b"\n")


def test_quickstart_walkthrough(tmp_path, bootstrap, topic, ringtail_bin):
    worker = quickstart_worker(tmp_path, bootstrap)
    source = quickstart_source(tmp_path, topic)  # file=test.txt, relative, as in the quickstart
    data = tmp_path / "test.txt"
    data.write_bytes(b"")

    # 1. lines appended while ringtail runs arrive exactly, in order.
    rt = Ringtail(["standalone", worker, source], tmp_path)
    rt.wait_for_log(r"reading '\S*test.txt' \(inode \d+\) from the start")
    first = [f"foo {i}".encode() for i in range(60)] + [f"bar {i}".encode() for i in range(40)]
    for i in range(0, len(first), 25):
        append(data, first[i:i + 25])
    got = wait_for_count(bootstrap, topic, len(first))
    assert values(got) == [envelope(l) for l in first]
    assert all(m[2] is None for m in got), "FileStreamSource records have no key"

    # 2. SIGTERM: drained, checkpointed, exit 0; lines written while stopped come after.
    assert rt.stop(signal.SIGTERM) == 0, rt.output()
    assert "final offsets written" in rt.output()
    second = [f"while stopped {i}".encode() for i in range(50)]
    append(data, second)
    rt = Ringtail(["standalone", worker, source], tmp_path)
    rt.wait_for_log(r"reading '\S*test.txt' \(inode \d+\) from offset \d+ \(checkpoint\)")
    third = [f"after restart {i}".encode() for i in range(30)]
    append(data, third)
    expect = first + second + third
    got = wait_for_count(bootstrap, topic, len(expect))
    time.sleep(0.5)  # nothing more may follow: no duplicate after a clean restart
    got = kcat_consume(bootstrap, topic)
    assert values(got) == [envelope(l) for l in expect]

    # 3. SIGKILL mid-stream: restart, and no line is missing.
    stop = threading.Event()
    written = []

    total = 60000

    def writer():  # about 10,000 lines/s for 6 s: the kill and the restart happen meanwhile
        n = 0
        with open(data, "ab") as f:
            while not stop.is_set() and n < total:
                batch = [f"stream {n + k}".encode() for k in range(100)]
                f.write(b"".join(l + b"\n" for l in batch))
                f.flush()
                written.extend(batch)
                n += len(batch)
                time.sleep(0.01)

    t = threading.Thread(target=writer)
    t.start()
    try:
        mid = len(expect) + 5000
        harness.wait_until(lambda: len(kcat_consume(bootstrap, topic, limit=mid)) >= mid,
                           60, "ringtail to be mid-stream")
        rt.kill()
        at_kill = len(written)
        rt = Ringtail(["standalone", worker, source], tmp_path)
        rt.wait_for_log(r"reading '\S*test.txt' \(inode \d+\) from offset \d+ \(checkpoint\)")
        t.join(60)
    finally:
        stop.set()
        t.join()
    assert at_kill < total, "the writer had finished before the kill: not mid-stream"
    assert len(written) == total
    expect_all = expect + written
    got = wait_for_count(bootstrap, topic, len(expect_all), timeout=120)
    counts = collections.Counter(values(got))
    missing = [l for l in expect_all if counts[envelope(l)] == 0]
    assert not missing, f"{len(missing)} lines lost after SIGKILL, first: {missing[:3]}"
    unexpected = set(counts) - {envelope(l) for l in expect_all}
    assert not unexpected, f"unexpected records: {list(unexpected)[:3]}"
    dups = sum(c - 1 for c in counts.values())
    # Duplicates are only lines acknowledged after the last checkpoint before the kill:
    # here the SIGTERM one (the 10 s flush interval did not pass since), after `first`.
    after_ckpt = second + third + written
    assert dups <= len(after_ckpt), dups
    assert all(counts[envelope(l)] <= 2 for l in after_ckpt)
    # The lines the clean stop checkpointed are never sent twice.
    assert all(counts[envelope(l)] == 1 for l in first)
    print(f"SIGKILL after {at_kill} of {total} streamed lines: {dups} duplicates of "
          f"{len(after_ckpt)} lines after the last checkpoint")
    assert rt.stop() == 0, rt.output()


BYTES_LINES = [
    b"plain ascii",
    b'tab\there "quoted" back\\slash /slash',
    b"",
    b"caf\xc3\xa9 \xe2\x82\xac",
    b"emoji \xf0\x9f\x98\x80",
    b"bad \xff byte and \xed\xa0\x80 surrogate",
    b"ctl \x01\x1f\x7f end",
]
# What Connect's JsonConverter writes for each (checked against connect-json 3.7/4.0).
JSON_VALUES = [
    b'"plain ascii"',
    b'"tab\\there \\"quoted\\" back\\\\slash /slash"',
    b'""',
    b'"caf\xc3\xa9 \xe2\x82\xac"',
    b'"emoji \\uD83D\\uDE00"',
    b'"bad \xef\xbf\xbd byte and \xef\xbf\xbd surrogate"',
    b'"ctl \\u0001\\u001F\x7f end"',
]


@pytest.mark.parametrize("converter,schemas,expect", [
    ("org.apache.kafka.connect.storage.StringConverter", "false", BYTES_LINES),
    ("org.apache.kafka.connect.converters.ByteArrayConverter", "false", BYTES_LINES),
    ("org.apache.kafka.connect.json.JsonConverter", "false", JSON_VALUES),
    ("org.apache.kafka.connect.json.JsonConverter", "true",
     [b'{"schema":{"type":"string","optional":false},"payload":' + v + b"}" for v in JSON_VALUES]),
])
def test_converter_bytes(tmp_path, bootstrap, topic, converter, schemas, expect):
    worker = quickstart_worker(tmp_path, bootstrap, **{
        "value.converter": converter, "value.converter.schemas.enable": schemas})
    source = quickstart_source(tmp_path, topic, file=str(tmp_path / "in.log"))
    # CRLF endings are stripped like LF ones.
    (tmp_path / "in.log").write_bytes(b"".join(
        l + (b"\r\n" if i % 2 else b"\n") for i, l in enumerate(BYTES_LINES)))
    rt = Ringtail(["standalone", worker, source], tmp_path)
    got = wait_for_count(bootstrap, topic, len(expect))
    assert values(got) == expect
    assert rt.stop() == 0, rt.output()


def test_embedded_cluster(tmp_path, ringtail_bin):
    worker = write_props(tmp_path / "w.properties", {
        "bootstrap.servers": "embedded",
        "key.converter": "StringConverter",
        "value.converter": "StringConverter",
        "offset.storage.file.filename": str(tmp_path / "offsets"),
        "listeners": "http://127.0.0.1:0",
    })
    source = quickstart_source(tmp_path, "embedded-test", file=str(tmp_path / "in.log"))
    lines = [f"embedded {i}".encode() for i in range(20)]
    append(tmp_path / "in.log", lines)
    rt = Ringtail(["standalone", worker, source], tmp_path)
    m = rt.wait_for_log(r"(?m)^embedded bootstrap\.servers=(127\.0\.0\.1:\d+(,127\.0\.0\.1:\d+)*)$")
    bs = m.group(1)
    got = wait_for_count(bs, "embedded-test", len(lines))
    assert sorted(values(got)) == sorted(lines)
    assert rt.stop(signal.SIGINT) == 0, rt.output()  # SIGINT drains like SIGTERM
    assert "Interrupt received: stopping" in rt.output()
    assert "20 lines sent, 20 acknowledged" in rt.output()
    assert "final offsets written" in rt.output()


def test_quickstart_files_load_unchanged(ringtail_bin):
    files = [FIXTURES / "worker-quickstart.properties",
             FIXTURES / "worker-quickstart-legacy.properties"]
    for w in files:
        r = harness.subprocess.run([ringtail_bin, "validate", str(w),
                                    str(FIXTURES / "file-source-quickstart.properties")],
                                   capture_output=True, text=True)
        assert r.returncode == 0, r.stdout + r.stderr
        assert "error" not in r.stdout
        assert "unknown key" not in r.stdout


def test_bad_config_starts_nothing(tmp_path, bootstrap, topic):
    worker = quickstart_worker(tmp_path, bootstrap, **{
        "offset.flush.interval.ms": "10s", "no.such.key": "1"})
    source = quickstart_source(tmp_path, topic, **{"batch.size": "0"})
    rt = Ringtail(["standalone", worker, source], tmp_path)
    assert rt.wait(30) == 2
    out = rt.output()
    assert "offset.flush.interval.ms='10s' is not valid: expected a whole number" in out
    assert "batch.size='0' is not valid: expected a whole number from 1 to" in out
    assert "unknown key 'no.such.key'" in out
    assert "nothing started" in out
    assert not (tmp_path / "connect.offsets").exists()
    assert kcat_consume(bootstrap, topic) == []


def test_corrupt_checkpoint_stops_startup(tmp_path, bootstrap, topic):
    worker = quickstart_worker(tmp_path, bootstrap)
    source = quickstart_source(tmp_path, topic, file=str(tmp_path / "in.log"))
    append(tmp_path / "in.log", [b"a", b"b"])
    rt = Ringtail(["standalone", worker, source], tmp_path)
    wait_for_count(bootstrap, topic, 2)
    assert rt.stop() == 0
    store = tmp_path / "connect.offsets"
    blob = bytearray(store.read_bytes())
    blob[len(blob) // 2] ^= 0x40
    store.write_bytes(bytes(blob))
    rt = Ringtail(["standalone", worker, source], tmp_path)
    assert rt.wait(30) == 1
    assert str(store) in rt.output() and "does not start over silently" in rt.output()
    assert store.read_bytes() == bytes(blob), "a corrupt checkpoint must not be rewritten"
    assert len(kcat_consume(bootstrap, topic)) == 2


@pytest.mark.parametrize("backend", ["io_uring", "poll"])
def test_waits_for_file_and_holds_partial_line(tmp_path, bootstrap, topic, backend):
    worker = quickstart_worker(tmp_path, bootstrap, **{
        "value.converter": "StringConverter", "offset.flush.interval.ms": "500",
        "io.backend": backend})
    path = tmp_path / "later" / "app.log"  # neither the file nor its directory exist yet
    source = quickstart_source(tmp_path, topic, file=str(path))
    rt = Ringtail(["standalone", worker, source], tmp_path)
    rt.wait_for_log(f"file reads through {backend}")
    rt.wait_for_log("waiting for '.*app.log' to appear")
    path.parent.mkdir()
    path.write_bytes(b"first\nsecond\npart")
    got = wait_for_count(bootstrap, topic, 2)
    with open(path, "ab") as f:
        f.write(b"ial")
    time.sleep(1.0)  # give ringtail the chance to (wrongly) send the partial line
    assert values(kcat_consume(bootstrap, topic)) == [b"first", b"second"]
    with open(path, "ab") as f:
        f.write(b"\n")
    got = wait_for_count(bootstrap, topic, 3)
    assert values(got) == [b"first", b"second", b"partial"]
    assert rt.stop() == 0
    # The checkpoint is exactly the end of the last line.
    r = harness.subprocess.run([harness.ringtail_bin(), "offsets", "show",
                                str(tmp_path / "connect.offsets")], capture_output=True, text=True)
    rec = json.loads(r.stdout)
    assert rec["offset"] == len(b"first\nsecond\npartial\n")
    assert rec["path"] == str(path)


def test_cli(ringtail_bin):
    run = harness.subprocess.run
    r = run([ringtail_bin, "--help"], capture_output=True, text=True)
    assert r.returncode == 0 and "standalone WORKER.properties CONNECTOR.properties" in r.stdout
    r = run([ringtail_bin, "--version"], capture_output=True, text=True)
    assert r.returncode == 0 and re.match(r"ringtail \d+\.\d+\.\d+ \(librdkafka ", r.stdout)
    for args in ([], ["nope"], ["standalone", "only-one.properties"], ["--bad-flag"]):
        r = run([ringtail_bin, *args], capture_output=True, text=True)
        assert r.returncode == 2, (args, r.stderr)
        assert "Try 'ringtail --help'" in r.stderr
    r = run([ringtail_bin, "standalone", "/nonexistent/w.properties", "/nonexistent/c.properties"],
            capture_output=True, text=True)
    assert r.returncode == 2
    assert "/nonexistent/w.properties" in r.stderr


def test_checkpoint_never_moves_back_under_backpressure(tmp_path, bootstrap, topic):
    """A producer queue of 50 records keeps refusing lines (backpressure); the
    checkpoint, sampled all along, only ever moves forward and ends at the file's end."""
    worker = quickstart_worker(tmp_path, bootstrap, **{
        "value.converter": "StringConverter", "offset.flush.interval.ms": "50",
        "producer.queue.buffering.max.messages": "50", "producer.linger.ms": "1"})
    path = tmp_path / "in.log"
    lines = [f"backpressure {i}".encode() for i in range(20000)]
    path.write_bytes(b"".join(l + b"\n" for l in lines))
    rt = Ringtail(["standalone", worker, quickstart_source(tmp_path, topic, file=str(path))],
                  tmp_path)
    store = str(tmp_path / "connect.offsets")
    seen = []

    def sample():
        r = harness.subprocess.run([harness.ringtail_bin(), "offsets", "show", store],
                                   capture_output=True, text=True)
        if r.returncode == 0 and r.stdout:
            seen.append(json.loads(r.stdout)["offset"])
        return seen and seen[-1] == path.stat().st_size

    harness.wait_until(sample, 120, "the checkpoint to reach the end of the file", interval=0.02)
    assert rt.stop() == 0, rt.output()
    assert seen == sorted(seen), f"checkpoint moved backwards: {seen}"
    assert values(kcat_consume(bootstrap, topic)) == lines


def string_worker(tmp_path, bootstrap, **extra):
    return quickstart_worker(tmp_path, bootstrap, **{
        "value.converter": "StringConverter", "offset.flush.interval.ms": "200", **extra})


def test_truncation_reads_again_from_start(tmp_path, bootstrap, topic):
    path = tmp_path / "app.log"
    append(path, [b"one", b"two", b"three"])
    rt = Ringtail(["standalone", string_worker(tmp_path, bootstrap),
                   quickstart_source(tmp_path, topic, file=str(path))], tmp_path)
    wait_for_count(bootstrap, topic, 3)
    with open(path, "r+b") as f:  # : > app.log
        f.truncate(0)
    append(path, [b"after"])  # shorter than what was read: the truncation shows
    rt.wait_for_log("'.*app.log' was truncated \\(it was read up to offset 14\\)")
    append(path, [b"more"])
    got = wait_for_count(bootstrap, topic, 5)
    assert values(got) == [b"one", b"two", b"three", b"after", b"more"]
    assert rt.stop() == 0
    r = harness.subprocess.run([harness.ringtail_bin(), "offsets", "show",
                                str(tmp_path / "connect.offsets")], capture_output=True, text=True)
    assert json.loads(r.stdout)["offset"] == len(b"after\nmore\n")


def test_rename_rotation_loses_nothing(tmp_path, bootstrap, topic):
    """20 rename rotations back to back, as fast as Python goes: the writer keeps
    appending to the renamed file for a while (it has not reopened yet), then writes to
    a new file at the path. Some files live under the path for less than a millisecond
    and are renamed before ringtail looks (inotify's rename cookie tells it where they
    went). Every line arrives exactly once."""
    path = tmp_path / "app.log"
    path.write_bytes(b"")
    rt = Ringtail(["standalone", string_worker(tmp_path, bootstrap),
                   quickstart_source(tmp_path, topic, file=str(path))], tmp_path)
    rt.wait_for_log("reading '.*app.log' \\(inode \\d+\\) from the start")
    expect = []
    f = open(path, "ab", buffering=0)
    for rot in range(20):
        lines = [f"gen {rot} line {i}".encode() for i in range(300)]
        f.write(b"".join(l + b"\n" for l in lines))
        expect += lines
        os.rename(path, tmp_path / f"app.log.{rot}")
        late = [f"gen {rot} late {i}".encode() for i in range(100)]
        f.write(b"".join(l + b"\n" for l in late))  # still writing to the renamed file
        expect += late
        f.close()
        f = open(path, "ab", buffering=0)  # the writer reopens: a new file at the path
    final = [f"final {i}".encode() for i in range(50)]
    f.write(b"".join(l + b"\n" for l in final))
    expect += final
    f.close()
    got = wait_for_count(bootstrap, topic, len(expect), timeout=60, rt=rt)
    time.sleep(0.5)
    got = kcat_consume(bootstrap, topic)
    assert sorted(values(got)) == sorted(expect), rt.output()
    assert rt.stop() == 0, rt.output()


def test_deleted_then_recreated(tmp_path, bootstrap, topic):
    path = tmp_path / "app.log"
    append(path, [b"a1", b"a2"])
    rt = Ringtail(["standalone", string_worker(tmp_path, bootstrap),
                   quickstart_source(tmp_path, topic, file=str(path))], tmp_path)
    wait_for_count(bootstrap, topic, 2)
    path.unlink()
    rt.wait_for_log("'.*app.log' was deleted")
    append(path, [b"b1"])
    got = wait_for_count(bootstrap, topic, 3)
    assert values(got) == [b"a1", b"a2", b"b1"]
    assert rt.stop() == 0


def test_file_replaced_while_stopped_is_read_from_start(tmp_path, bootstrap, topic):
    """A checkpoint is trusted only for the file it was taken on: a new file at the
    path (same name, maybe the same inode reused) is read from its start."""
    path = tmp_path / "app.log"
    append(path, [f"old {i}".encode() for i in range(10)])
    w = string_worker(tmp_path, bootstrap)
    src = quickstart_source(tmp_path, topic, file=str(path))
    rt = Ringtail(["standalone", w, src], tmp_path)
    wait_for_count(bootstrap, topic, 10)
    assert rt.stop() == 0
    # Same inode, content rewritten past the old offset: only the hashes can tell.
    with open(path, "r+b") as f:
        f.truncate(0)
        f.write(b"".join(f"NEW {i:03d}\n".encode() for i in range(20)))
    rt = Ringtail(["standalone", w, src], tmp_path)
    rt.wait_for_log("no longer holds what was read of it")
    got = wait_for_count(bootstrap, topic, 30)
    assert values(got)[10:] == [f"NEW {i:03d}".encode() for i in range(20)]
    assert rt.stop() == 0


def test_producer_keys_trimmed_and_passed_through(tmp_path):
    """producer.* values are trimmed as Connect trims them (a .properties file keeps
    trailing whitespace) and handed to librdkafka; one it rejects names key and value."""
    (tmp_path / "w.properties").write_text(
        "bootstrap.servers=embedded\nkey.converter=StringConverter\n"
        "value.converter=StringConverter\n"
        f"offset.storage.file.filename={tmp_path}/offsets\nlisteners=http://127.0.0.1:0\n"
        "producer.linger.ms = 7   \nproducer.compression.type=lz4\t\n")
    source = quickstart_source(tmp_path, "trim-test", file=str(tmp_path / "in.log"))
    rt = Ringtail(["standalone", str(tmp_path / "w.properties"), source], tmp_path)
    rt.wait_for_log("waiting for '.*in.log' to appear")
    assert rt.stop() == 0, rt.output()
    (tmp_path / "w.properties").write_text(
        (tmp_path / "w.properties").read_text() + "producer.linger.ms=soon\n")
    rt = Ringtail(["standalone", str(tmp_path / "w.properties"), source], tmp_path)
    assert rt.wait(30) == 2
    assert "producer.linger.ms='soon' is not valid: librdkafka: " in rt.output()
