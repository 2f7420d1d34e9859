# SPDX-License-Identifier: Apache-2.0
"""Issue 3: what ringtail puts on the wire of a real Apache Kafka broker: zstd record
batches, an idempotent producer (a producer id; a forced retry adds no duplicate),
auto-created and explicitly created multi-partition topics."""
import collections
import os
import re
import signal
import time

import harness
from harness import Ringtail, kcat_consume, values, wait_for_count, write_props


def worker(tmp_path, bootstrap, **extra):
    return harness.worker_props(tmp_path, bootstrap, "worker.properties", **extra)


def source(tmp_path, topic, name="src"):
    return write_props(tmp_path / f"{name}.properties", {
        "name": name, "connector.class": "FileStreamSource",
        "file": str(tmp_path / f"{name}.log"), "topic": topic})


def access_log_lines(n, tag="x"):
    # Compressible, like real logs: librdkafka leaves a batch uncompressed when zstd
    # would not make it smaller.
    return [f'127.0.0.1 - - [24/Nov/2026:06:00:{i % 60:02d} +0000] "GET /api/v1/items/{i} '
            f'HTTP/1.1" 200 {512 + i % 100} "-" "curl/7.88.1" {tag}'.encode() for i in range(n)]


def dump_batches(broker, topic, partition=0):
    r = harness.kafka("dump-log", topic, str(partition), env=broker["env"])
    return [l for l in r.stdout.splitlines() if l.startswith("baseOffset:")]


def test_batches_are_zstd_and_idempotent(tmp_path, kafka_broker, topic):
    bs = kafka_broker["bootstrap"]
    lines = access_log_lines(5000)
    (tmp_path / "src.log").write_bytes(b"".join(l + b"\n" for l in lines))
    rt = Ringtail(["standalone", worker(tmp_path, bs), source(tmp_path, topic)], tmp_path)
    got = wait_for_count(bs, topic, len(lines))
    assert values(got) == lines
    assert rt.stop() == 0, rt.output()

    batches = dump_batches(kafka_broker, topic)
    assert batches, "no record batch in the partition's log"
    codecs = collections.Counter(re.search(r"compresscodec: (\w+)", b).group(1) for b in batches)
    assert codecs == {"zstd": len(batches)}, codecs
    pids = {int(re.search(r"producerId: (-?\d+)", b).group(1)) for b in batches}
    assert len(pids) == 1 and min(pids) >= 0, f"not an idempotent producer: producerId {pids}"
    assert all("isTransactional: false" in b for b in batches)
    # Sequence numbers of an idempotent producer are contiguous across batches.
    seqs = [(int(re.search(r"baseSequence: (\d+)", b).group(1)),
             int(re.search(r"lastSequence: (\d+)", b).group(1))) for b in batches]
    assert seqs[0][0] == 0
    assert all(seqs[i + 1][0] == seqs[i][1] + 1 for i in range(len(seqs) - 1))
    assert seqs[-1][1] == len(lines) - 1


def test_forced_retry_adds_no_duplicate(tmp_path, kafka_broker, topic):
    """The broker is frozen (SIGSTOP) longer than the producer's request timeout while
    requests are in flight: librdkafka times them out and sends them again; the broker
    then sees some batches twice and the idempotent producer's sequence numbers make it
    keep one copy."""
    bs = kafka_broker["bootstrap"]
    pid = int((kafka_broker["state"] / "kafka.pid").read_text())
    harness.kafka("create-topic", topic, "1", env=kafka_broker["env"])
    # socket.timeout.ms is librdkafka's client-side request timeout (request.timeout.ms
    # is only the ack timeout the broker enforces).
    w = worker(tmp_path, bs, **{"producer.socket.timeout.ms": "1000",
                                "producer.linger.ms": "50"})
    log = tmp_path / "src.log"
    log.write_bytes(b"")
    rt = Ringtail(["standalone", w, source(tmp_path, topic)], tmp_path, env=None)
    rt.wait_for_log(r"reading '.*src.log' \(inode \d+\) from the start")
    first = access_log_lines(2000, "before")
    with open(log, "ab") as f:
        f.write(b"".join(l + b"\n" for l in first))
    wait_for_count(bs, topic, len(first))

    frozen = access_log_lines(3000, "frozen")
    os.kill(pid, signal.SIGSTOP)
    try:
        with open(log, "ab") as f:
            for i in range(0, len(frozen), 100):  # produce requests go out while it is frozen
                f.write(b"".join(l + b"\n" for l in frozen[i:i + 100]))
                f.flush()
                time.sleep(0.02)
        harness.wait_until(lambda: re.search(r"Timed out ProduceRequest in flight", rt.output()),
                           20, "librdkafka to time out a produce request")
    finally:
        os.kill(pid, signal.SIGCONT)
    expect = first + frozen
    got = wait_for_count(bs, topic, len(expect), timeout=120)
    time.sleep(2)  # any duplicate would be in by now: the retries were sent at once
    got = kcat_consume(bs, topic)
    assert values(got) == expect, (len(got), len(expect))
    assert rt.stop() == 0, rt.output()


def test_auto_created_and_three_partition_topics(tmp_path, kafka_broker):
    bs = kafka_broker["bootstrap"]
    auto = f"auto-{os.getpid()}-{time.monotonic_ns()}"
    three = f"three-{os.getpid()}-{time.monotonic_ns()}"
    harness.kafka("create-topic", three, "3", env=kafka_broker["env"])
    n = 30000
    a_lines = [f"auto {i}".encode() for i in range(n)]
    t_lines = [f"three {i}".encode() for i in range(n)]
    (tmp_path / "a.log").write_bytes(b"".join(l + b"\n" for l in a_lines))
    (tmp_path / "t.log").write_bytes(b"".join(l + b"\n" for l in t_lines))
    rt = Ringtail(["standalone", worker(tmp_path, bs, **{"producer.linger.ms": "5"}),
                   source(tmp_path, auto, "a"), source(tmp_path, three, "t")], tmp_path)
    got_a = wait_for_count(bs, auto, n)
    got_t = wait_for_count(bs, three, n)
    assert rt.stop() == 0, rt.output()

    assert values(got_a) == a_lines  # auto-created with the broker's num.partitions=1
    assert {m[0] for m in got_a} == {0}
    # Three partitions: each line once, file order kept within each partition (null
    # keys: librdkafka's sticky partitioner picks a partition per batch at random).
    meta = harness.subprocess.run(["kcat", "-L", "-b", bs, "-t", three], capture_output=True,
                                  text=True, timeout=30).stdout
    assert "with 3 partitions" in meta, meta
    assert sorted(values(got_t)) == sorted(t_lines)
    parts = collections.defaultdict(list)
    for p, _, _, v in got_t:
        parts[p].append(int(v.split()[1]))
    assert set(parts) <= {0, 1, 2}
    for p, seq in parts.items():
        assert seq == sorted(seq), f"partition {p} out of file order"
