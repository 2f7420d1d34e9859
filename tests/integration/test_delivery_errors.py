# SPDX-License-Identifier: Apache-2.0
"""A delivery Kafka refuses for good (here: a record larger than the topic's
max.message.bytes) stops the task with a message naming the file and the error; the
process exits 1 (its only task failed), and the checkpoint stops at the start of the
refused line, even though lines after it may have been acknowledged."""
import json
import random
import subprocess

import harness
from test_tailsource import append, lines_of, start


def offsets(path):
    r = subprocess.run([harness.ringtail_bin(), "offsets", "show", str(path)],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    return {e["path"]: e["offset"] for e in map(json.loads, r.stdout.splitlines())}


def test_record_too_large_stops_the_task(tmp_path, kafka_broker, topic):
    harness.kafka("create-topic", topic, "1", "max.message.bytes=2000",
                  env=kafka_broker["env"])
    bootstrap = kafka_broker["bootstrap"]
    logs = tmp_path / "logs"
    logs.mkdir()
    app = logs / "app.log"
    before = append(app, lines_of("p", 20))
    big_at = app.stat().st_size
    # Random letters and digits: zstd cannot bring 50,000 of them under 2,000 bytes.
    rng = random.Random(7)
    big = bytes(rng.choice(b"abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(50000))
    append(app, [big])
    append(app, lines_of("q", 20))
    # batch.size=1: every line is its own acknowledgement batch, so the checkpoint can
    # stop exactly at the refused line; one record per request, so no other line shares
    # the refused request.
    rt = start(tmp_path, bootstrap, topic, str(app), **{
        "batch.size": "1",
        "producer.override.linger.ms": "0",
        "producer.override.batch.num.messages": "1"})
    assert rt.wait(60) == 1, rt.output()
    out = rt.output()
    assert f"Kafka did not acknowledge a record of '{app}'" in out, out
    assert "task 'tail': failed" in out and "every task has failed" in out, out
    got = harness.values(harness.kcat_consume(bootstrap, topic))
    assert got[:len(before)] == before
    assert big not in got
    assert offsets(tmp_path / "connect.offsets")[str(app)] == big_at
