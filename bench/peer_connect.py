# SPDX-License-Identifier: Apache-2.0
"""The bench's `connect` contender: Apache Kafka Connect's own FileStreamSourceConnector
in a standalone worker (org.apache.kafka.connect.cli.ConnectStandalone), run with
bench/connect/connect.sh from jars resolved from Maven Central for the Kafka version of
tests/kafka/kafka.sh.

FileStreamSourceTask (connect-file) opens the file, and with no stored offset reads it
from the beginning through a BufferedReader(InputStreamReader(UTF-8)) into a 1024-char
buffer, splits lines at '\\n', '\\r\\n' or '\\r', and returns up to `batch.size` records
per poll(); at the end of the file it waits 1 s and polls again, so it keeps running
until run.py sends SIGTERM (the worker's shutdown hook stops the task, commits offsets
and closes the producer). Its offsets count chars, not bytes, and it decodes UTF-8
(malformed bytes become U+FFFD): the bench corpora are ASCII, so neither matters here.

Producer settings: Connect's worker defaults (Worker.baseProducerConfigs: acks=all,
max.in.flight.requests.per.connection=1, delivery.timeout.ms and max.block.ms at their
maximum, idempotence off), overridden through `producer.*` worker keys with the bench's
enable.idempotence=true, acks=all, compression.type=zstd and the shared librdkafka
settings mapped to the Java producer's (see JAVA_EQUIVALENT, map_shared()).
"""
import os
import re
import subprocess
from pathlib import Path

import run

CONNECT_SH = run.HERE / "connect" / "connect.sh"

# What the bench sets on every contender's producer.
BASE_PRODUCER = {"enable.idempotence": "true", "acks": "all", "compression.type": "zstd"}

# Connect's own producer defaults that the bench leaves alone (Worker.baseProducerConfigs
# in connect-runtime 4.3.1), stated in the report.
CONNECT_PRODUCER_DEFAULTS = {
    "max.in.flight.requests.per.connection": "1 (Connect worker default, kept)",
    "delivery.timeout.ms": "2147483647 (Connect worker default)",
    "max.block.ms": "9223372036854775807 (Connect worker default)",
    "buffer.memory": "33554432 (Java producer default)",
    "partitioner": "built-in sticky partitioner for null keys (Java producer default)",
}

# librdkafka batch.size default: the byte bound of a librdkafka batch (uncompressed),
# which binds before batch.num.messages=10000 for lines longer than 100 bytes (all the
# bench corpora: 161-494 B mean). The Java producer has no message-count bound; its
# batch.size (default 16384) is compared with an estimate of the *compressed* batch size.
JAVA_BATCH_SIZE_FOR_BATCH_NUM_MESSAGES = "1000000"

# librdkafka names -> Java producer names with the same meaning.
JAVA_EQUIVALENT = {
    "linger.ms": "linger.ms",
    "queue.buffering.max.ms": "linger.ms",
    "batch.size": "batch.size",
    "acks": "acks",
    "request.required.acks": "acks",
    "enable.idempotence": "enable.idempotence",
    "compression.type": "compression.type",
    "compression.codec": "compression.type",
    "compression.level": "compression.zstd.level",
    "max.in.flight.requests.per.connection": "max.in.flight.requests.per.connection",
    "max.in.flight": "max.in.flight.requests.per.connection",
    "request.timeout.ms": "request.timeout.ms",
    "retry.backoff.ms": "retry.backoff.ms",
    "retries": "retries",
    "client.id": "client.id",
}

# FileStreamSourceConnector batch.size: records returned per poll(). 2000 is the
# connector's default; the Java producer batches on its own (linger.ms, batch.size).
TASK_BATCH_SIZE = "2000"

HEAP = os.environ.get("CONNECT_HEAP_OPTS", "-Xms256m -Xmx1g")


def map_shared(shared):
    """(Java producer settings, {librdkafka key: why it is not applicable}) for the
    shared librdkafka settings."""
    java, na = {}, {}
    for k, v in shared.items():
        if k == "batch.num.messages":
            if "batch.size" not in shared:
                java["batch.size"] = JAVA_BATCH_SIZE_FOR_BATCH_NUM_MESSAGES
            else:
                na[k] = "not applicable (the Java producer bounds batches by bytes only)"
        elif k in JAVA_EQUIVALENT:
            java[JAVA_EQUIVALENT[k]] = v
        else:
            na[k] = "not applicable (no Java producer equivalent)"
    return java, na


def prop_escape(value):
    return str(value).replace("\\", "\\\\").replace("\n", "\\n")


def write_props(path, entries):
    path.write_text("# written by bench/peer_connect.py\n" +
                    "".join(f"{k}={prop_escape(v)}\n" for k, v in entries.items()))


class Connect(run.Contender):
    name = "connect"
    exits_when_done = False     # FileStreamSource keeps polling the file at its end
    # On SIGTERM the JVM runs its shutdown hooks (Connect's: stop the task, commit the
    # offsets, close the producer) and then exits 128+15, as any JVM does (systemd units
    # of Java services say SuccessExitStatus=143 for the same reason).
    sigterm_exit_codes = (0, 143)
    # Seen with --broker mock (librdkafka 2.0.2): the mock's ApiVersions answer offers
    # Metadata v0-v2 and no DescribeCluster; the worker's AdminClient (Java 4.3.1) never
    # gets the cluster's metadata ("Timed out waiting for a node assignment. Call:
    # listNodes", rebootstrapping every 100 ms) and the worker stops after 60 s with
    # "Failed to connect to and describe Kafka cluster".
    mock_unavailable = ("the Java 4.3.1 clients get no metadata from librdkafka 2.0.2's mock "
                        "(it offers Metadata v0-v2 only, no DescribeCluster): the worker's "
                        "AdminClient times out and the worker stops after 60 s")

    def __init__(self, shared):
        super().__init__(shared)
        self._why = None
        self._checked = False
        self._java = None

    # ------------------------------------------------------------------ availability

    def java_bin(self):
        home = os.environ.get("JAVA_HOME")
        return str(Path(home) / "bin" / "java") if home else "java"

    def java_version(self):
        """(major, first line of `java -version`) or (None, why)."""
        try:
            r = subprocess.run([self.java_bin(), "-version"], capture_output=True, text=True,
                               timeout=60)
        except (OSError, subprocess.TimeoutExpired) as e:
            return None, f"no java ({self.java_bin()}: {e}); run packaging/setup.sh"
        line = (r.stderr or r.stdout).strip().splitlines()[:1]
        line = line[0] if line else ""
        m = re.search(r'"(\d+)(?:\.(\d+))?', line)
        if r.returncode != 0 or not m:
            return None, f"cannot tell the Java version from '{line}'"
        major = int(m.group(2) if m.group(1) == "1" else m.group(1))
        return major, line

    def unavailable(self):
        if self._checked:
            return self._why
        self._checked = True
        major, line = self.java_version()
        if major is None:
            self._why = line
        elif major < 17:
            self._why = f"Kafka Connect 4.x needs Java 17 or newer; {self.java_bin()} is {line}"
        else:
            self._java = line
            # First use: resolve the jars (Maven, cached outside the repo); later a no-op.
            try:
                r = subprocess.run(["bash", str(CONNECT_SH), "resolve"], capture_output=True,
                                   text=True, timeout=1800)
            except subprocess.TimeoutExpired:
                self._why = "connect.sh resolve did not finish within 1800 s"
                return self._why
            if r.returncode != 0:
                # connect.sh's own last word, and Maven's first error (the reason).
                err = [ln.strip() for ln in r.stderr.splitlines() if ln.strip()
                       and ln.strip() != "[ERROR]"]
                first = next((ln for ln in err if ln.startswith("[ERROR]")), "")
                self._why = "bench/connect/connect.sh resolve failed: " + (
                    " ".join(filter(None, [err[-1] if err else f"exit {r.returncode}",
                                           first[:300]])))
            else:
                for ln in r.stderr.strip().splitlines():
                    run.log(ln)
        return self._why

    def libs_dir(self):
        r = run.run_text(["bash", str(CONNECT_SH), "resolve"], check=False)
        return r.stdout.strip() or "?"

    def version(self):
        v = run.run_text(["bash", str(CONNECT_SH), "version"], check=False).stdout.strip()
        java = self._java or self.java_version()[1]
        return f"Kafka Connect {v} (ConnectStandalone, FileStreamSourceConnector; {java})"

    # ------------------------------------------------------------------ settings

    def producer_entries(self):
        java, _ = map_shared(self.shared)
        return {**BASE_PRODUCER, **java}

    def worker_entries(self, bootstrap, workdir):
        e = {"bootstrap.servers": bootstrap,
             "key.converter": "org.apache.kafka.connect.storage.StringConverter",
             "value.converter": "org.apache.kafka.connect.storage.StringConverter",
             "offset.storage.file.filename": str(Path(workdir) / "connect.offsets"),
             "offset.flush.interval.ms": "10000",
             # Port 0: the REST server binds a port the kernel picks (logged as "REST
             # server listening at ..."), so it never collides with 8083 or another run.
             "listeners": "http://127.0.0.1:0",
             # What the worker itself advises when every plugin on the class path has a
             # ServiceLoader manifest (it logs a WARN otherwise); the default,
             # hybrid_warn, also scans every class reflectively: 3.2 s of start-up here.
             "plugin.discovery": "service_load"}
        for k, v in self.producer_entries().items():
            e[f"producer.{k}"] = v
        return e

    def connector_entries(self, topic, corpus_path):
        return {"name": "bench",
                "connector.class": "org.apache.kafka.connect.file.FileStreamSourceConnector",
                "tasks.max": "1",
                "file": str(corpus_path),
                "topic": topic,
                "batch.size": TASK_BATCH_SIZE}

    def describe(self):
        java, na = map_shared(self.shared)
        producer = {**BASE_PRODUCER}
        for k, v in java.items():
            src = [s for s, d in JAVA_EQUIVALENT.items() if d == k and s in self.shared]
            if k == "batch.size" and "batch.num.messages" in self.shared and not src:
                producer[k] = (f"{v} bytes (for batch.num.messages="
                               f"{self.shared['batch.num.messages']}: librdkafka's batch.size "
                               f"default, its binding byte bound here; Java counts estimated "
                               f"compressed bytes, no message count)")
            else:
                producer[k] = f"{v} (shared" + (f" {src[0]})" if src[0] != k else ")")
        producer.update({k: v for k, v in CONNECT_PRODUCER_DEFAULTS.items() if k not in producer})
        d = {"command": "bench/connect/connect.sh run connect-worker.properties "
                        "connect-connector.properties; SIGTERM once every line is in Kafka",
             "JVM": f"exec java {HEAP} -XX:+UseG1GC -XX:MaxGCPauseMillis=20 "
                    f"-XX:InitiatingHeapOccupancyPercent=35 -XX:+ExplicitGCInvokesConcurrent "
                    f"-Djava.awt.headless=true -cp '{self.libs_dir()}/*' "
                    f"org.apache.kafka.connect.cli.ConnectStandalone WORKER CONNECTOR "
                    f"(log4j2 INFO to stderr)",
             "worker": self.worker_entries("BOOTSTRAP", "WORKDIR"),
             "connector": self.connector_entries("TOPIC", "CORPUS"),
             "producer": producer}
        if na:
            d["shared settings not applied"] = na
        d["notes"] = ("jars on the class path, plugin.path unset; FileStreamSourceTask reads "
                      "with a BufferedReader decoding UTF-8 (the corpora are ASCII) and splits "
                      "lines at \\n, \\r\\n and \\r; wall time includes the JVM's and the "
                      "worker's start-up")
        return d

    def argv(self, bootstrap, topic, corpus_path, workdir):
        workdir = Path(workdir)
        w = workdir / "connect-worker.properties"
        c = workdir / "connect-connector.properties"
        write_props(w, self.worker_entries(bootstrap, workdir))
        write_props(c, self.connector_entries(topic, corpus_path))
        return ["bash", str(CONNECT_SH), "run", str(w), str(c)]
