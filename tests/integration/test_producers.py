# SPDX-License-Identifier: Apache-2.0
"""Several producers per task (`producers`, kfk.c): each librdkafka producer owns the
partitions p with p % producers == its index, and records go to one partition for
`sticky_records` (10,000) records in a row, round robin. Against the real broker: every
line exactly once, each file's lines in order within every partition, every partition
used, and a partition written by one producer only (the broker assigns one producer id
per producer; a partition's batches all carry the same one)."""
import collections
import re

import pytest

import harness
from test_tailsource import append, finish, lines_of, start


def producer_ids(kafka_broker, topic, partition):
    """The producer ids of a partition's record batches (DumpLogSegments)."""
    out = harness.kafka("dump-log", topic, str(partition), env=kafka_broker["env"]).stdout
    return set(re.findall(r"producerId: (\d+)", out))


def test_three_producers_share_six_partitions(tmp_path, kafka_broker, topic):
    bootstrap = kafka_broker["bootstrap"]
    harness.kafka("create-topic", topic, "6", env=kafka_broker["env"])
    logs = tmp_path / "logs"
    logs.mkdir()
    groups = []
    for name in ("a", "b", "c"):
        groups.append(append(logs / f"{name}.log", lines_of(name, 30000)))
    rt = start(tmp_path, bootstrap, topic, str(logs / "*.log"), producers="3")
    rt.wait_for_log(r"3 producers, each owning the partitions p of '\S+' with p mod 3 equal")
    msgs = finish(rt, bootstrap, topic, [l for g in groups for l in g], groups=groups)
    per_part = collections.Counter(p for p, _, _, _ in msgs)
    assert sorted(per_part) == list(range(6)), per_part
    ids = [producer_ids(kafka_broker, topic, p) for p in range(6)]
    for p in range(6):
        assert len(ids[p]) == 1, f"partition {p} written by producer ids {ids[p]}"
    # Partitions of one producer (p % 3 alike) share its id; the three differ.
    for p in range(3):
        assert ids[p] == ids[p + 3], (p, ids[p], ids[p + 3])
    assert len(set().union(*ids)) == 3, ids


def test_keyed_records_use_one_producer(tmp_path, bootstrap, topic):
    """key.mode=path: a keyed record's partition is librdkafka's (murmur2, as Java's),
    so one producer sends everything, whatever `producers` says."""
    app = tmp_path / "app.log"
    lines = append(app, lines_of("k", 2000))
    rt = start(tmp_path, bootstrap, topic, str(app), producers="3", **{"key.mode": "path"})
    msgs = finish(rt, bootstrap, topic, lines, groups=[lines])
    assert "producers, each owning" not in rt.output()
    assert {k for _, _, k, _ in msgs} == {str(app).encode()}


@pytest.mark.parametrize("sticky_ms", ["0", "600000"])
def test_slow_source_sticky_linger(tmp_path, kafka_broker, topic, sticky_ms):
    """A slow source stays on a partition for librdkafka's sticky.partitioning.linger.ms
    (2 x linger.ms unless set, as librdkafka's own sticky partitioner), then moves to the
    next: with 0 every read goes to the next partition, with ten minutes a few reads all
    go to one. Each line is appended once the previous one is in Kafka, so it is a read of
    its own. (The first line goes to partition 0 before the partition count is known.)"""
    bootstrap = kafka_broker["bootstrap"]
    harness.kafka("create-topic", topic, "6", env=kafka_broker["env"])
    app = tmp_path / "app.log"
    app.write_bytes(b"")
    rt = start(tmp_path, bootstrap, topic, str(app), producers="2",
               worker={"producer.sticky.partitioning.linger.ms": sticky_ms})
    rt.wait_for_log(r"2 producers, each owning the partitions p of '\S+' with p mod 2 equal")
    lines = []
    for i in range(6):
        lines += append(app, lines_of("s", 1, first=i))
        harness.wait_for_count(bootstrap, topic, i + 1, rt=rt)
    msgs = finish(rt, bootstrap, topic, lines, groups=[lines])
    part_of = {v: p for p, _, _, v in msgs}
    parts = [part_of[l] for l in lines]
    if sticky_ms == "0":
        assert all(b == (a + 1) % 6 for a, b in zip(parts[1:], parts[2:])), parts
    else:
        assert len(set(parts)) == 1, parts
