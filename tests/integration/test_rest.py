# SPDX-License-Identifier: Apache-2.0
"""The REST API (Kafka Connect's shapes, plus /metrics and /health) against the real
broker: what a connector's status, config, tasks, topics and offsets say, the counters
of /metrics (each long-line policy counted exactly), a failed task's status next to a
running one, and the `listeners` key (port 0, empty, in use, invalid)."""
import random
import socket

import harness
from harness import Ringtail, write_props
from test_tailsource import append, lines_of, tail_source, wait_lines

LONG = 300  # max.line.bytes below
SHORT_LINES, LONG_LINES = 40, 7


def started(tmp_path, bootstrap, connectors, **worker):
    w = harness.worker_props(tmp_path, bootstrap,
                             **{"offset.flush.interval.ms": "500", **worker})
    return Ringtail(["standalone", w, *connectors], tmp_path)


def test_status_config_offsets_and_metrics(tmp_path, bootstrap, topic):
    """Three TailSources, one per long.line.policy, each on its own file of 40 short and
    7 long lines (1,000 bytes, max.line.bytes=300). Each one's status is RUNNING; its
    config is its file's; /metrics counts exactly 7 lines split, truncated or skipped,
    and exactly the records Kafka holds; the offsets endpoint says each file was read to
    its end once the checkpoint is flushed."""
    expected, conns, files = [], [], {}
    rng = random.Random(3)
    for policy in ("split", "truncate", "skip"):
        path = tmp_path / f"{policy}.log"
        lines = lines_of(policy, SHORT_LINES)
        longs = [bytes(rng.choice(b"abcdef") for _ in range(1000)) for _ in range(LONG_LINES)]
        for i, l in enumerate(longs):
            lines.insert(5 * i + 3, l)
        append(path, lines)
        files[policy] = path
        for l in lines:
            if len(l) <= LONG:
                expected.append(l)
            elif policy == "split":
                expected += [l[i:i + LONG] for i in range(0, len(l), LONG)]
            elif policy == "truncate":
                expected.append(l[:LONG])
        conns.append(tail_source(tmp_path, topic, str(path), name=f"c-{policy}",
                                 **{"max.line.bytes": str(LONG), "long.line.policy": policy}))
    rt = started(tmp_path, bootstrap, conns)
    wait_lines(bootstrap, topic, expected, rt)

    status, names = rt.rest("/connectors")
    assert status == 200 and sorted(names) == ["c-skip", "c-split", "c-truncate"]
    for policy, path in files.items():
        name = f"c-{policy}"
        status, st = rt.rest(f"/connectors/{name}/status")
        assert status == 200, st
        wid = rt.rest_address()
        assert st == {"name": name, "type": "source",
                      "connector": {"state": "RUNNING", "worker_id": wid},
                      "tasks": [{"id": 0, "state": "RUNNING", "worker_id": wid}]}, st
        status, cfg = rt.rest(f"/connectors/{name}/config")
        assert cfg == {"name": name, "connector.class": "TailSource", "topic": topic,
                       "files": str(path), "max.line.bytes": str(LONG),
                       "long.line.policy": policy}, cfg
        assert rt.rest(f"/connectors/{name}")[1] == {
            "name": name, "config": cfg, "type": "source",
            "tasks": [{"connector": name, "task": 0}]}
        assert rt.rest(f"/connectors/{name}/tasks/0/status")[1]["state"] == "RUNNING"
        assert rt.rest(f"/connectors/{name}/topics")[1] == {name: {"topics": [topic]}}
    m = rt.metrics()
    for policy, action in (("split", "split"), ("truncate", "truncate"), ("skip", "skip")):
        for other in ("split", "truncate", "skip"):
            key = f'ringtail_long_lines_total{{connector="c-{policy}",action="{other}"}}'
            assert m[key] == (LONG_LINES if other == action else 0), (key, m[key])
    sent = sum(v for k, v in m.items() if k.startswith("ringtail_records_sent_total"))
    acked = sum(v for k, v in m.items() if k.startswith("ringtail_records_acked_total"))
    assert sent == acked == len(expected), (sent, acked, len(expected))
    assert m['ringtail_files_opened_total{connector="c-split"}'] == 1
    assert m['ringtail_kafka_error{connector="c-split"}'] == 0
    assert m["ringtail_checkpoint_error"] == 0

    def read_to_end():
        for policy, path in files.items():
            _, off = rt.rest(f"/connectors/c-{policy}/offsets")
            ends = [o["offset"]["offset"] for o in off["offsets"]
                    if o["partition"]["path"] == str(path)]
            if ends != [path.stat().st_size]:
                return False
        return True
    harness.wait_until(read_to_end, 30, "offsets at the end of every file")
    _, off = rt.rest("/connectors/c-split/offsets")
    st = files["split"].stat()
    assert off == {"offsets": [{"partition": {"path": str(files["split"]), "dev": st.st_dev,
                                              "ino": st.st_ino},
                                "offset": {"offset": st.st_size}}]}
    assert rt.metrics()["ringtail_checkpoint_writes_total"] >= 1
    assert rt.stop() == 0, rt.output()


def test_expand_health_plugins_and_errors(tmp_path, bootstrap, topic):
    app = tmp_path / "app.log"
    append(app, lines_of("a", 3))
    rt = started(tmp_path, bootstrap, [tail_source(tmp_path, topic, str(app), name="one")])
    status, body = rt.rest("/connectors?expand=status&expand=info")
    assert status == 200 and list(body) == ["one"]
    assert body["one"]["status"]["tasks"][0]["state"] == "RUNNING"
    assert body["one"]["info"]["config"]["files"] == str(app)
    assert rt.rest("/health") == (200, {"status": "healthy", "message": "Worker has completed "
                                        "startup and is ready to handle requests."})
    status, root = rt.rest("/")
    assert status == 200 and "version" in root and "kafka_cluster_id" in root
    classes = [p["class"] for p in rt.rest("/connector-plugins")[1]]
    assert classes == ["org.apache.kafka.connect.file.FileStreamSourceConnector", "TailSource"]
    assert rt.rest("/connectors/nope/status") == (
        404, {"error_code": 404, "message": "Connector nope not found"})
    assert rt.rest("/connectors/one/tasks/1/status")[0] == 404
    assert rt.rest("/no/such/path")[0] == 404
    for method, path in (("POST", "/connectors"), ("PUT", "/connectors/one/pause"),
                         ("DELETE", "/connectors/one"), ("PUT", "/connectors/one/config"),
                         ("POST", "/connectors/one/restart")):
        status, body = rt.rest(path, method=method, body=b"{}")
        assert status == 501 and body["error_code"] == 501, (method, path, body)
        assert "not supported" in body["message"]
    # A body over 1 MiB is refused without being buffered.
    assert rt.rest("/connectors", method="POST", body=b"x" * (2 << 20))[0] == 413
    assert rt.stop() == 0, rt.output()


def test_failed_task_status_next_to_a_running_one(tmp_path, kafka_broker, topic):
    """A record larger than the topic's max.message.bytes fails connector `bad`; the
    worker goes on with `good`. bad's status is FAILED with a trace naming the file and
    the error; good's is RUNNING and its lines keep flowing; /metrics agrees."""
    bootstrap = kafka_broker["bootstrap"]
    small = f"{topic}-small"
    harness.kafka("create-topic", small, "1", "max.message.bytes=2000", env=kafka_broker["env"])
    bad_log, good_log = tmp_path / "bad.log", tmp_path / "good.log"
    rng = random.Random(7)
    append(bad_log, lines_of("p", 5) +
           [bytes(rng.choice(b"abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(50000))])
    good = append(good_log, lines_of("g", 50))
    rt = started(tmp_path, bootstrap, [
        tail_source(tmp_path, small, str(bad_log), name="bad",
                    **{"producer.override.linger.ms": "0"}),
        tail_source(tmp_path, topic, str(good_log), name="good")])

    def bad_failed():
        return rt.rest("/connectors/bad/status")[1]["tasks"][0]["state"] == "FAILED"
    harness.wait_until(bad_failed, 60, "connector bad FAILED")
    _, st = rt.rest("/connectors/bad/status")
    trace = st["tasks"][0]["trace"]
    assert f"Kafka did not acknowledge a record of '{bad_log}'" in trace, trace
    assert st["connector"]["state"] == "RUNNING"
    assert rt.rest("/connectors/good/status")[1]["tasks"][0]["state"] == "RUNNING"
    good += append(good_log, lines_of("g", 50, first=50))
    wait_lines(bootstrap, topic, good, rt)
    m = rt.metrics()
    assert m['ringtail_task_failed{connector="bad"}'] == 1
    assert m['ringtail_task_failed{connector="good"}'] == 0
    assert m['ringtail_records_acked_total{connector="good"}'] == 100
    assert rt.stop() == 1, rt.output()  # a task failed: exit status 1


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_listeners(tmp_path, bootstrap, topic):
    """Empty: no API. A port in use: exit 1 naming it, nothing started. Invalid: exit 2
    naming the key and value (as every config error)."""
    app = tmp_path / "app.log"
    append(app, lines_of("a", 3))
    conn = tail_source(tmp_path, topic, str(app))
    rt = started(tmp_path, bootstrap, [conn], listeners="")
    rt.wait_for_log("REST API off")
    assert "REST API on" not in rt.output()
    assert rt.stop() == 0, rt.output()

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        rt = started(tmp_path, bootstrap, [conn], listeners=f"http://127.0.0.1:{port}")
        assert rt.wait(30) == 1, rt.output()
    assert f"cannot listen on 127.0.0.1:{port}: Address already in use" in rt.output()

    port = free_port()
    rt = started(tmp_path, bootstrap, [conn], listeners=f"http://127.0.0.1:{port}")
    assert rt.rest_address() == f"127.0.0.1:{port}"
    assert rt.rest("/connectors")[1] == ["tail"]
    assert rt.stop() == 0, rt.output()

    w = write_props(tmp_path / "bad.properties", {
        "bootstrap.servers": bootstrap, "offset.storage.file.filename": str(tmp_path / "o"),
        "key.converter": "StringConverter", "value.converter": "StringConverter",
        "listeners": "https://127.0.0.1:8443"})
    rt = Ringtail(["standalone", w, conn], tmp_path)
    assert rt.wait(30) == 2, rt.output()
    assert "listeners='https://127.0.0.1:8443' is not valid" in rt.output()
