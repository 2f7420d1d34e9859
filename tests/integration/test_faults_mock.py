# SPDX-License-Identifier: Apache-2.0
"""Faults injected with librdkafka's mock cluster (tests/kafka/mockcluster.c, run by
mock.py) while ringtail tails a file into it: produce requests failing with broker
errors, a partition leader going down and coming back, every broker down while 100 MiB
wait in the file.

Every test writes unique lines to a TailSource `files=` path, stops ringtail with
SIGTERM once the topic holds as many records as were written (it drains, so the topic
is final), reads the whole topic back with kcat and asserts: exactly the lines written
(no loss, no duplicate) and, within every partition, the file's lines in written order.
The numbers these tests report (peak RSS, time to catch up after an outage) are only
recorded: timing belongs to bench/. The real broker is not needed here.

Producer settings used: reconnect.backoff.max.ms=1000 where brokers go down, so that
librdkafka retries a down broker every second instead of backing off to 10 s (it only
shortens the outage ringtail sees). message.timeout.ms stays 0 (ringtail's default):
a finite one would turn an outage into given-up records."""
import collections
import re
import subprocess
import time
from pathlib import Path

import pytest

import harness
from harness import Ringtail
from logwriter import LineWriter, multiset_diff, settle
from mock import MockCluster, mock_cluster  # noqa: F401 (a fixture)
from test_tailsource import _log_tail, append, finish, lines_of, start, wait_lines

pytestmark = pytest.mark.usefixtures("ringtail_bin")

TOPIC = "t"
PARTITIONS = 3
BROKERS = 3
LINE = 100  # bytes of a writer line, newline excluded
# The outage tests' producer: retry a down broker every second (librdkafka's default
# backs off up to 10 s).
FAST_RECONNECT = {"producer.reconnect.backoff.max.ms": "1000"}


@pytest.fixture(autouse=True)
def stop_all():
    """No writer thread, ringtail or mockcluster outlives its test; ringtail is stopped
    before the cluster it talks to (conftest's reap_ringtail would do it afterwards)."""
    yield
    LineWriter.stop_all()
    Ringtail.reap_all()
    MockCluster.close_all()


def cluster(mock_cluster):  # noqa: F811
    """Three brokers, topic t with three partitions led by brokers 1, 2 and 3: every
    broker leads one partition, so every broker receives produce requests."""
    mc = mock_cluster(brokers=BROKERS, topics={TOPIC: PARTITIONS})
    for p in range(PARTITIONS):
        mc.cmd(f"leader {TOPIC} {p} {p % BROKERS + 1}")
    return mc


def vm_kib(pid, field):
    """A VmXXX field of /proc/PID/status in KiB (VmHWM: peak resident set size)."""
    m = re.search(rf"^{field}:\s+(\d+) kB$", Path(f"/proc/{pid}/status").read_text(), re.M)
    assert m, f"no {field} in /proc/{pid}/status"
    return int(m.group(1))


def kafka_warnings(log):
    """ringtail's WARN/ERROR lines about Kafka (task_kafka_error's 'kafka:' lines and
    anything else naming Kafka or the producer)."""
    return [l for l in log.splitlines()
            if re.search(r"Z (WARN|ERROR) ", l) and re.search(r"(?i)kafka|producer|broker", l)]


def outage_status(rt):
    """The task's status if its warnings report the outage and the paused reading."""
    task = rt.rest("/connectors/tail/status")[1]["tasks"][0]
    warns = task.get("warnings", [])
    if (any(w.startswith("Kafka: ") and "reading is paused" in w for w in warns)):
        return task
    return None


def assert_outage_reported(rt, brokers_down, outage):
    """ringtail reported an outage of `brokers_down` brokers lasting `outage` seconds,
    a bounded number of times. librdkafka reports a broker's disconnection and its first
    failed reconnects, then suppresses an identical error for 30 s; ringtail passes a
    report on unless it repeats the previous one verbatim. Measured: 3 warnings for one
    broker down 4 s, 10 for three down 5 s (one is '3/3 brokers are down'). Logging per
    reconnect attempt (every second here, reconnect.backoff.max.ms=1000) or per record
    would exceed 6 per broker. Returns the warnings."""
    warns = kafka_warnings(rt.output())
    limit = 6 * brokers_down + 2
    assert warns, f"ringtail did not report a {outage:.1f} s broker outage{_log_tail(rt)}"
    assert len(warns) < limit, (f"ringtail logged {len(warns)} Kafka warnings (limit {limit}) "
                                f"for {brokers_down} broker(s) down {outage:.1f} s:\n" +
                                "\n".join(warns[:40]))
    return warns


# ---------------------------------------------------------------------------
# Produce errors

# Per code: what librdkafka 2.0.2's idempotent producer does with it, and the errors
# injected: {broker: how many of its next produce requests fail} (counted by the mock:
# the test proves they were all returned) and how many cluster-wide ones follow
# (returned by whichever brokers come next; the mock cannot count those).
#  - NOT_LEADER_OR_FOLLOWER (6, NOT_LEADER_FOR_PARTITION in librdkafka's names):
#    retriable; metadata is refreshed and the batch retried with the same sequence.
#  - REQUEST_TIMED_OUT (7): retriable; the broker may or may not have written the
#    batch, the idempotent retry makes it exactly once either way.
#  - NOT_ENOUGH_REPLICAS (19): retriable.
#  - OUT_OF_ORDER_SEQUENCE_NUMBER (45): on the first batch in flight of a partition
#    librdkafka cannot tell whether records were lost: a fatal error ("sequence
#    desynchronization"), the producer is unusable. ringtail keeps what that producer
#    did not deliver and hands it to a new producer, each record to its partition in
#    its order, before any new record (kfk.c, kfk_rebuild()): it keeps running, and
#    nothing is lost or repeated. One error is injected, on broker 1, which also
#    answers 300 ms late (so that the other partitions' later records are
#    acknowledged before the failure, as they would be behind one slow broker: the
#    case where a restart from the checkpoint would send them again).
CODES = {
    "NOT_LEADER_OR_FOLLOWER": (False, {1: 3, 2: 3, 3: 3}, 6),
    "REQUEST_TIMED_OUT": (False, {1: 3, 2: 3, 3: 3}, 6),
    "OUT_OF_ORDER_SEQUENCE_NUMBER": (True, {1: 1}, 0),  # fatal for librdkafka
    "NOT_ENOUGH_REPLICAS": (False, {1: 3, 2: 3, 3: 3}, 6),
}


@pytest.mark.parametrize("code", list(CODES))
def test_produce_errors(tmp_path, mock_cluster, code):  # noqa: F811
    """1,000 lines are in Kafka; then produce requests fail with `code` (retriable
    codes: the next 3 on each leader, then 6 more anywhere; the fatal one: the next on
    broker 1, 300 ms late) while a writer appends 10,000 more lines at 5,000 lines/s.
    Zero loss, zero duplicates, the file's order in every partition; every per-broker
    error was returned to ringtail's producer; ringtail keeps running. A retriable
    code: no error logged. The fatal one: a new producer took over (log and
    /metrics), the task is RUNNING."""
    fatal, per_broker, cluster_wide = CODES[code]
    mc = cluster(mock_cluster)
    app = tmp_path / "app.log"
    w = LineWriter(app, "p", line_bytes=LINE, rate=5000, batch=50)
    w.write_now(1000)
    rt = start(tmp_path, mc.bootstrap, TOPIC, str(app))
    wait_lines(mc.bootstrap, TOPIC, w.lines, rt)
    if fatal:
        mc.cmd("rtt 1 300")
    for b, n in per_broker.items():
        mc.cmd(f"broker-errors {b} Produce " + " ".join([code] * n))
    if cluster_wide:
        mc.cmd("errors Produce " + " ".join([code] * cluster_wide))
    w.start()
    w.wait_written(w.count + 10000)
    lines = w.stop()

    settle(mc.bootstrap, TOPIC, len(lines), 60, rt)
    assert rt.proc.poll() is None, f"{code}: ringtail exited ({rt.proc.returncode}){_log_tail(rt)}"
    if fatal:
        m = rt.metrics()
        assert m['ringtail_producer_rebuilds_total{connector="tail"}'] == 1, m
        assert m['ringtail_records_resent_total{connector="tail"}'] > 0, m
        assert "a new producer took over after a fatal error" in rt.output()
        assert rt.rest("/connectors/tail/status")[1]["tasks"][0]["state"] == "RUNNING"
    log = rt.output()
    finish(rt, mc.bootstrap, TOPIC, lines, groups=[lines], what=code)
    left = {b: mc.pending(b) for b in per_broker}
    assert not any(left.values()), \
        f"{code}: injected errors never returned (per broker): {left}: the test did not test"
    errors = [l for l in log.splitlines() if re.search(r"Z ERROR ", l)]
    assert not errors, f"{code}: ringtail logged errors:\n" + "\n".join(errors)


# ---------------------------------------------------------------------------
# Brokers down


def test_leader_down_then_up(tmp_path, mock_cluster, record_property):  # noqa: F811
    """A writer appends 50,000 lines at 10,000 lines/s. After 10,000, broker 1 (leader
    of partition 0; bootstrap server) goes down; it stays down until the writer is done
    and at least 4 s, then comes back (partitions 1 and 2 keep flowing meanwhile). Zero
    loss, zero duplicates, per-file order in every partition. ringtail reported the
    outage, a bounded number of times (assert_outage_reported). Recorded: ringtail's
    peak RSS and the time from `up` until all lines were in the topic."""
    mc = cluster(mock_cluster)
    app = tmp_path / "app.log"
    w = LineWriter(app, "d", line_bytes=LINE, rate=10000, batch=50)
    w.write_now(500)
    rt = start(tmp_path, mc.bootstrap, TOPIC, str(app), worker=FAST_RECONNECT)
    wait_lines(mc.bootstrap, TOPIC, w.lines, rt)
    w.start()
    w.wait_written(10000)
    mc.cmd("down 1")
    t_down = time.monotonic()
    w.wait_written(50000, timeout=60)
    lines = w.stop()
    left = t_down + 4 - time.monotonic()
    if left > 0:
        time.sleep(left)  # the outage's length, not a synchronisation
    assert rt.proc.poll() is None, f"ringtail exited during the outage{_log_tail(rt)}"
    outage = time.monotonic() - t_down
    mc.cmd("up 1")
    t_up = time.monotonic()
    c = settle(mc.bootstrap, TOPIC, len(lines), 60, rt)
    resume = time.monotonic() - t_up
    hwm = vm_kib(rt.proc.pid, "VmHWM")
    finish(rt, mc.bootstrap, TOPIC, lines, groups=[lines])
    warns = assert_outage_reported(rt, 1, outage)
    assert c >= len(lines)
    record_property("outage_seconds", round(outage, 2))
    record_property("resume_seconds", round(resume, 2))
    record_property("peak_rss_kib", hwm)
    record_property("kafka_warnings", len(warns))
    print(f"outage {outage:.1f} s; all {len(lines)} lines in Kafka {resume:.2f} s after `up`; "
          f"ringtail peak RSS {hwm / 1024:.1f} MiB; {len(warns)} Kafka warnings:\n" +
          "\n".join(warns))


BIG_LINE = 1023  # + newline: 1 KiB
BIG_LINES = 100 * 1024  # 100 MiB
# Allowed growth of ringtail's peak RSS while every broker is down and 100 MiB wait in
# the file, over its peak once the first records were delivered. What may legitimately
# be held: librdkafka's queue (buffer.memory = 1 MiB of payload, plus per-message
# overhead: ~1,000 records of 1 KiB here), one 256 KiB read buffer, acknowledgement
# batches for those records, and ASan's redzones and quarantine of what was freed
# meanwhile (the suite runs the ASan build). Measured with the ASan build: +1.8 MiB;
# with buffer.memory=512 MiB instead (the whole file queued in memory): +165 MiB within
# the 5 s. 32 MiB leaves room for the first and catches the second.
RSS_GROWTH_KIB = 32 * 1024


def test_memory_bounded_while_all_brokers_down(tmp_path, mock_cluster,  # noqa: F811
                                                record_property):
    """buffer.memory=1048576. After 1,000 lines are in Kafka every broker goes down and
    100 MiB of 1 KiB lines are appended; for 5 s ringtail can only read until its
    1 MiB queue is full. Its peak RSS grows by less than RSS_GROWTH_KIB. Then the brokers
    come back: every line arrives exactly once, in order. Recorded: the peak RSS during
    the outage and overall, and the time from `up` until all lines were in Kafka. The
    outage was reported a bounded number of times (assert_outage_reported)."""
    mc = cluster(mock_cluster)
    app = tmp_path / "big.log"
    w = LineWriter(app, "m", line_bytes=BIG_LINE)
    w.write_now(1000)
    rt = start(tmp_path, mc.bootstrap, TOPIC, str(app), worker=FAST_RECONNECT,
               **{"buffer.memory": "1048576"})
    wait_lines(mc.bootstrap, TOPIC, w.lines, rt)
    base = vm_kib(rt.proc.pid, "VmHWM")
    mc.cmd("down -1")
    t_down = time.monotonic()
    for _ in range(BIG_LINES // 1024):
        w.write_now(1024)
    lines = w.stop()
    samples = []
    while time.monotonic() < t_down + 5:  # the outage's length, not a synchronisation
        assert rt.proc.poll() is None, f"ringtail exited during the outage{_log_tail(rt)}"
        samples.append(vm_kib(rt.proc.pid, "VmRSS"))
        time.sleep(0.1)
    peak_down = vm_kib(rt.proc.pid, "VmHWM")
    # The status says so while it lasts: the Kafka error, and reading paused at the cap.
    task = harness.wait_until(lambda: outage_status(rt), 10, "the outage in the status")
    m = rt.metrics()
    assert m['ringtail_kafka_error{connector="tail"}'] == 1, m
    assert m['ringtail_reading_paused{connector="tail"}'] == 1, m
    assert task["state"] == "RUNNING", task
    outage = time.monotonic() - t_down
    mc.cmd("up -1")
    t_up = time.monotonic()
    c = settle(mc.bootstrap, TOPIC, len(lines), 90, rt)
    resume = time.monotonic() - t_up
    peak_all = vm_kib(rt.proc.pid, "VmHWM")
    # Acknowledged again: the warnings are gone.
    task = rt.rest("/connectors/tail/status")[1]["tasks"][0]
    assert "warnings" not in task, task
    m = rt.metrics()
    assert m['ringtail_kafka_error{connector="tail"}'] == 0, m
    assert m['ringtail_reading_paused{connector="tail"}'] == 0, m
    assert "Kafka acknowledges records again" in rt.output()
    finish(rt, mc.bootstrap, TOPIC, lines, groups=[lines])
    warns = assert_outage_reported(rt, BROKERS, outage)
    record_property("rss_before_outage_kib", base)
    record_property("peak_rss_outage_kib", peak_down)
    record_property("peak_rss_kib", peak_all)
    record_property("resume_seconds", round(resume, 2))
    record_property("kafka_warnings", len(warns))
    print(f"peak RSS {base / 1024:.1f} MiB before the outage, {peak_down / 1024:.1f} MiB "
          f"during it (+{(peak_down - base) / 1024:.1f} MiB; RSS samples "
          f"{min(samples) / 1024:.1f}-{max(samples) / 1024:.1f} MiB), "
          f"{peak_all / 1024:.1f} MiB overall; {len(lines)} lines "
          f"({len(lines) * (BIG_LINE + 1) >> 20} MiB) in Kafka {resume:.2f} s after `up`; "
          f"{len(warns)} Kafka warnings for the {outage:.1f} s outage")
    assert peak_down - base < RSS_GROWTH_KIB, (
        f"ringtail's peak RSS grew by {(peak_down - base) / 1024:.1f} MiB while every broker "
        f"was down (bound {RSS_GROWTH_KIB / 1024:.0f} MiB, buffer.memory 1 MiB)")
    assert c >= len(lines)


SLOW_LINES = 300_000  # of LINE + 1 bytes: 29 MiB
SLOW_MAX_LINE = 65536
HELD = 'ringtail_read_buffer_bytes{connector="tail"}'


def test_read_buffers_bounded_behind_a_slow_partition(tmp_path, mock_cluster):  # noqa: F811
    """Lines go to librdkafka without a copy, so a read buffer stays in memory until
    every record in it is acknowledged (io/rbuf.h). Here 6 partitions: broker 3, leader
    of partition 5 only, answers every request 3 s late, while brokers 1 and 2
    acknowledge partitions 0-4 at once; so a buffer whose lines went partly to
    partition 5 waits for it, and the buffers kept span up to 6 times what partition 5
    has queued. One producer, buffer.memory=2 MiB, max.line.bytes=64 KiB (buffers of
    320 KiB); 300,000 lines are in the file before ringtail starts. Sampled every
    20 ms until Kafka acknowledged every line, ringtail_read_buffer_bytes never
    exceeds ringtail_read_buffer_limit_bytes (1.5 x buffer.memory) by more than one
    buffer (the one a read retires before the next line meets the bound), and comes
    within one buffer of it (the test tested). Every buffer is let go at the end;
    every line exactly once, in order."""
    mc = mock_cluster(brokers=3, topics={TOPIC: 6})
    for p in range(6):
        mc.cmd(f"leader {TOPIC} {p} {3 if p == 5 else p % 2 + 1}")
    mc.cmd("rtt 3 3000")
    app = tmp_path / "app.log"
    w = LineWriter(app, "s", line_bytes=LINE)
    w.write_now(SLOW_LINES)
    lines = w.stop()
    rt = start(tmp_path, mc.bootstrap, TOPIC, str(app), producers="1",
               **{"buffer.memory": str(2 << 20), "max.line.bytes": str(SLOW_MAX_LINE)})
    cap = SLOW_MAX_LINE + 256 * 1024 + 1  # a read buffer (io/frame.c; READ_SIZE)
    held = []
    deadline = time.monotonic() + 120
    while True:
        assert rt.proc.poll() is None, f"ringtail exited{_log_tail(rt)}"
        m = rt.metrics()
        held.append(m[HELD])
        acked = m['ringtail_records_acked_total{connector="tail"}']
        if acked >= len(lines):
            break
        assert time.monotonic() < deadline, \
            f"{acked} of {len(lines)} lines acknowledged in 120 s{_log_tail(rt)}"
        time.sleep(0.02)
    limit = m['ringtail_read_buffer_limit_bytes{connector="tail"}']
    assert limit == (2 << 20) * 3 // 2, m
    print(f"read buffers kept: at most {max(held) / 2**20:.2f} MiB in {len(held)} samples, "
          f"limit {limit / 2**20:.2f} MiB")
    assert max(held) <= limit + cap, (
        f"read buffers kept by records in flight reached {max(held)} bytes, over the "
        f"limit {limit} plus one buffer ({cap}){_log_tail(rt)}")
    assert max(held) >= limit - cap, (
        f"read buffers kept reached only {max(held)} bytes (limit {limit}): the slow "
        f"partition did not make them pile up; the test did not test")
    # Every record acknowledged: every buffer let go.
    harness.wait_until(lambda: rt.metrics()[HELD] == 0, 10, "no read buffer kept")
    mc.cmd("rtt 3 0")  # kcat's offset queries (finish) would time out
    finish(rt, mc.bootstrap, TOPIC, lines, groups=[lines])


# ---------------------------------------------------------------------------
# Producer settings


def test_first_of_several_producers_keeps_topic_settings(tmp_path, mock_cluster):  # noqa: F811
    """librdkafka keeps some producer settings per topic handle (message.timeout.ms,
    compression.level, request.timeout.ms): with several producers the first one's
    handle used to be made from librdkafka's defaults, so it never saw ringtail's
    message.timeout.ms=0 (its records failed after librdkafka's 300 s) nor zstd level 1
    (it compressed at level 3), nor the user's producer.* settings of that kind. Here
    every broker is down from the start, so ringtail never learns the partition count
    and every record goes to the first producer (kfk.c, kfk_route()). With
    producer.delivery.timeout.ms=2000 its records fail after 2 s: the task fails
    naming the error and the process exits 1. With librdkafka's 300 s the process
    would still be waiting when rt.wait() gives up."""
    mc = cluster(mock_cluster)
    mc.cmd("down -1")
    app = tmp_path / "app.log"
    append(app, lines_of("d", 10))
    rt = start(tmp_path, mc.bootstrap, TOPIC, str(app),
               worker={**FAST_RECONNECT, "producer.delivery.timeout.ms": "2000"},
               producers="2")
    try:
        rc = rt.wait(60)
    except subprocess.TimeoutExpired:
        rc = None
    assert rc == 1, f"ringtail did not give up on its records in 60 s{_log_tail(rt)}"
    out = rt.output()
    assert "2 producers" in out, _log_tail(rt)
    assert f"Kafka did not acknowledge a record of '{app}'" in out, _log_tail(rt)
    assert "Message timed out" in out, _log_tail(rt)


def partition_end(bootstrap, topic, partition):
    """The end offset of one partition (kcat -Q asks only that partition's leader)."""
    r = subprocess.run(["kcat", "-Q", "-b", bootstrap, "-t", f"{topic}:{partition}:-1"],
                       capture_output=True, text=True, timeout=60)
    m = re.search(rf"\[{partition}\] offset (-?\d+)", r.stdout)
    return max(0, int(m.group(1))) if m else 0


def test_full_producer_does_not_hold_up_the_others(tmp_path, mock_cluster):  # noqa: F811
    """Two producers: the first owns partition 0 (led by broker 1), the second
    partition 1 (broker 2); buffer.memory=1048576, 512 KiB each. Broker 1 goes down and
    50,000 lines of 100 bytes are appended. The first producer's queue fills with at
    most 512 KiB of them (5,242 lines); every other line goes to partition 1 while
    broker 1 is still down (kfk.c, kfk_pending_reroute()). Before, reading waited for
    the full producer: partition 1 got at most the sticky runs read before it filled
    (~10,000 lines). Broker 1 comes back: every line exactly once, in file order within
    each partition."""
    mc = mock_cluster(brokers=2, topics={TOPIC: 2})
    for p in range(2):
        mc.cmd(f"leader {TOPIC} {p} {p + 1}")
    app = tmp_path / "app.log"
    w = LineWriter(app, "r", line_bytes=LINE)
    w.write_now(1000)
    rt = start(tmp_path, mc.bootstrap, TOPIC, str(app), worker=FAST_RECONNECT,
               producers="2", **{"buffer.memory": "1048576"})
    wait_lines(mc.bootstrap, TOPIC, w.lines, rt)
    before = partition_end(mc.bootstrap, TOPIC, 1)
    mc.cmd("down 1")
    w.write_now(50000)
    lines = w.stop()
    stuck = (1048576 // 2) // LINE  # the first producer's queue, in lines
    want = before + 50000 - stuck
    deadline = time.monotonic() + 60
    while (got := partition_end(mc.bootstrap, TOPIC, 1)) < want and rt.proc.poll() is None \
            and time.monotonic() < deadline:
        time.sleep(0.2)
    assert rt.proc.poll() is None, f"ringtail exited while broker 1 was down{_log_tail(rt)}"
    assert got >= want, (f"with broker 1 down, partition 1 holds {got - before} of the 50,000 "
                         f"new lines; at least {50000 - stuck} expected (all but what the "
                         f"first producer's queue holds){_log_tail(rt)}")
    assert "2 producers" in rt.output(), _log_tail(rt)
    mc.cmd("up 1")
    finish(rt, mc.bootstrap, TOPIC, lines, groups=[lines])
