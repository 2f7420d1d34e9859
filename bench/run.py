#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""ringtail's bench suite: contenders ship the same corpus into the same Kafka broker.

    python3 bench/run.py [--smoke] [--contenders ringtail,kcat] [--kind access]
                         [--size 1G] [--runs 3] [--partitions 6] [--out DIR]
                         [--bootstrap HOST:PORT]

DESIGN. One invocation is one suite: a broker (the real Apache Kafka of
tests/kafka/kafka.sh in a state dir of our own, stopped and removed at the end; or
--bootstrap), one corpus per kind (bench/corpus.py, cached outside the repo), and for
each run and contender a fresh topic with the same partition count. The order of the
contenders rotates from run to run, so none is always first on a cold broker.

A contender is started with its stdout/stderr in a log file; the harness then polls
the topic's end offsets (ListOffsets over a plain socket, kcat -Q as fallback) every
POLL_S. Delivery is complete when the sum of end offsets equals the corpus' line count
(idempotent, non-transactional producers write no control records, so offsets count
records). Wall time runs from the contender's start to that moment, or to its exit if
that comes first (kcat -P exits once its last batch is acknowledged). Its CPU time is
read from /proc/PID/stat at that moment (wait4()'s rusage if it has exited); then a
contender that keeps running (ringtail) gets SIGTERM, one that exits by itself is
waited for. Peak RSS is VmHWM, sampled at every poll until it exits.

A run counts only if it verifies: after the contender exited, the topic is consumed
(kcat -C -e, values only, one per line) into a file whose multiset digest (line count,
bytes, sum of every line's SipHash mod 2^64: corpus.py --digest) must equal the
corpus' (cached in its .meta). Equal sums mean equal multisets of lines but for a 2^-64
chance, so loss, duplication and alteration all fail, also when a loss and a duplicate
cancel out in the count; on a mismatch sort/uniq/comm count lost, duplicated and
foreign lines. A run that fails is reported as failed, never as a speed.

Everything started here is stopped here, by PID, in finally blocks (Ctrl-C and
SIGTERM included). Only 127.0.0.1 is contacted unless --bootstrap says otherwise.
Standard library only.
"""
import argparse
import datetime
import hashlib
import json
import os
import platform
import shlex
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
KAFKA_SH = ROOT / "tests" / "kafka" / "kafka.sh"
sys.path.insert(0, str(HERE))
import corpus  # noqa: E402

GIB = 1 << 30
POLL_S = 0.02
CLK_TCK = os.sysconf("SC_CLK_TCK")

# Producer settings both contenders get on top of their own defaults: the baselines
# of issue 6 (librdkafka's linger.ms is 5 in 2.0; batch.num.messages 10000 is its
# default, stated so the report says it).
DEFAULT_SHARED_PRODUCER = "linger.ms=20,batch.num.messages=10000"

# What ringtail sets itself (agent/kfk.c producer_defaults); kcat gets the first three
# explicitly, the rest stay librdkafka's defaults there (reported as such).
RINGTAIL_PRODUCER_DEFAULTS = {"enable.idempotence": "true", "acks": "all",
                              "compression.type": "zstd", "message.timeout.ms": "0",
                              "queue.buffering.max.kbytes": "16384 (TailSource buffer.memory)",
                              "reconnect.backoff.max.ms": "1000"}


def log(msg):
    print(f"bench: {msg}", file=sys.stderr, flush=True)


class BenchError(Exception):
    pass


# ------------------------------------------------------------------------ processes

class Procs:
    """Every process this script starts, so that finally blocks can stop them by PID."""

    live = []

    @classmethod
    def popen(cls, argv, **kw):
        p = subprocess.Popen(argv, **kw)
        cls.live.append(p)
        return p

    @classmethod
    def forget(cls, p):
        if p in cls.live:
            cls.live.remove(p)

    @classmethod
    def kill_all(cls):
        for p in list(cls.live):
            if p.returncode is None:
                try:
                    p.kill()
                except ProcessLookupError:
                    pass
                try:
                    os.waitpid(p.pid, 0)
                except ChildProcessError:
                    pass
                p.returncode = -9
            cls.forget(p)


def wait4_nohang(p):
    """(status, rusage) once p exited, else None; reaps it (Popen is told)."""
    pid, status, ru = os.wait4(p.pid, os.WNOHANG)
    if pid == 0:
        return None
    p.returncode = os.waitstatus_to_exitcode(status)
    Procs.forget(p)
    return status, ru


def proc_cpu_seconds(pid):
    """user+sys of a live process (all its threads), from /proc/PID/stat."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK     # utime, stime


def proc_hwm_mib(pid):
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def run_text(argv, timeout=120, env=None, check=True):
    r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=env)
    if check and r.returncode != 0:
        raise BenchError(f"{shlex.join(argv)} failed ({r.returncode}):\n{r.stdout}{r.stderr}")
    return r


# ------------------------------------------------------------------------ Kafka wire

class KafkaWire:
    """Just enough of Kafka's protocol for the harness: end offsets (ListOffsets v1)
    and topic creation (CreateTopics v4) against one broker, cheaply enough to poll
    every 20 ms (a kcat -Q process costs ~20 ms of wall time and a few ms of CPU)."""

    def __init__(self, bootstrap, timeout=10.0):
        host, _, port = bootstrap.split(",")[0].rpartition(":")
        self.sock = socket.create_connection((host, int(port)), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.corr = 0

    def close(self):
        self.sock.close()

    @staticmethod
    def _str(s):
        b = s.encode()
        return struct.pack(">h", len(b)) + b

    def _recv(self, n):
        buf = bytearray()
        while len(buf) < n:
            chunk = self.sock.recv(n - len(buf))
            if not chunk:
                raise ConnectionError("broker closed the connection")
            buf += chunk
        return bytes(buf)

    def request(self, api_key, version, body):
        self.corr += 1
        head = struct.pack(">hhi", api_key, version, self.corr) + self._str("ringtail-bench")
        msg = head + body
        self.sock.sendall(struct.pack(">i", len(msg)) + msg)
        (size,) = struct.unpack(">i", self._recv(4))
        resp = self._recv(size)
        (corr,) = struct.unpack(">i", resp[:4])
        if corr != self.corr:
            raise ConnectionError(f"correlation id {corr}, expected {self.corr}")
        return resp[4:]

    def end_offsets(self, topic, partitions):
        """{partition: end offset}; raises on any partition error (e.g. no leader yet)."""
        body = struct.pack(">i", -1) + struct.pack(">i", 1) + self._str(topic)
        body += struct.pack(">i", partitions)
        for p in range(partitions):
            body += struct.pack(">iq", p, -1)
        r = self.request(2, 1, body)
        pos = 0
        (ntopics,) = struct.unpack_from(">i", r, pos)
        pos += 4
        out = {}
        for _ in range(ntopics):
            (nlen,) = struct.unpack_from(">h", r, pos)
            pos += 2 + nlen
            (nparts,) = struct.unpack_from(">i", r, pos)
            pos += 4
            for _ in range(nparts):
                part, err, _ts, off = struct.unpack_from(">ihqq", r, pos)
                pos += 22
                if err:
                    raise BenchError(f"ListOffsets {topic}[{part}]: Kafka error {err}")
                out[part] = off
        if len(out) != partitions:
            raise BenchError(f"ListOffsets {topic}: {len(out)} of {partitions} partitions")
        return out

    def create_topic(self, topic, partitions, configs=None):
        body = struct.pack(">i", 1) + self._str(topic)
        body += struct.pack(">ih", partitions, -1)          # replication: broker default
        body += struct.pack(">i", 0)                        # no manual assignment
        configs = configs or {}
        body += struct.pack(">i", len(configs))
        for k, v in configs.items():
            body += self._str(k) + self._str(v)
        body += struct.pack(">i?", 30000, False)
        r = self.request(19, 4, body)
        pos = 4                                             # throttle_time_ms
        (n,) = struct.unpack_from(">i", r, pos)
        pos += 4
        for _ in range(n):
            (nlen,) = struct.unpack_from(">h", r, pos)
            pos += 2 + nlen
            (err,) = struct.unpack_from(">h", r, pos)
            pos += 2
            (mlen,) = struct.unpack_from(">h", r, pos)
            msg = r[pos + 2:pos + 2 + mlen].decode(errors="replace") if mlen > 0 else ""
            pos += 2 + max(mlen, 0)
            if err:
                raise BenchError(f"CreateTopics {topic}: Kafka error {err} {msg}")


class OffsetCounter:
    """Sum of a topic's end offsets; the socket client, or kcat -Q if that fails."""

    def __init__(self, bootstrap):
        self.bootstrap = bootstrap
        self.wire = None
        self.fallback_reason = None
        try:
            self.wire = KafkaWire(bootstrap)
        except OSError as e:
            self.fallback_reason = f"socket: {e}"

    def close(self):
        if self.wire:
            self.wire.close()

    def count(self, topic, partitions):
        if self.wire:
            try:
                return sum(self.wire.end_offsets(topic, partitions).values())
            except (OSError, struct.error) as e:
                self.wire.close()
                self.wire = None
                self.fallback_reason = f"ListOffsets v1 failed ({e}); using kcat -Q"
                log(self.fallback_reason)
        return self.count_kcat(topic, partitions)

    def count_kcat(self, topic, partitions):
        argv = ["kcat", "-Q", "-b", self.bootstrap]
        for p in range(partitions):
            argv += ["-t", f"{topic}:{p}:-1"]
        out = run_text(argv, timeout=30).stdout
        total = seen = 0
        for line in out.splitlines():
            # "topic [p] offset N"
            parts = line.split()
            if len(parts) >= 4 and parts[-2] == "offset":
                total += int(parts[-1])
                seen += 1
        if seen != partitions:
            raise BenchError(f"kcat -Q gave {seen} of {partitions} partitions:\n{out}")
        return total


# ------------------------------------------------------------------------ broker

class Broker:
    """Our own kafka.sh broker in a private KAFKA_STATE_DIR, or an external one."""

    def __init__(self, bootstrap=None):
        self.external = bootstrap
        self.bootstrap = bootstrap
        self.parent = None
        self.env = None
        self.version = "external (unknown)"
        self.pid = None

    def start(self):
        if self.external:
            log(f"using the broker at {self.bootstrap}")
            return
        self.parent = tempfile.mkdtemp(prefix="ringtail-bench-kafka-")
        self.env = dict(os.environ, KAFKA_STATE_DIR=os.path.join(self.parent, "broker"))
        t0 = time.monotonic()
        try:
            r = run_text(["bash", str(KAFKA_SH), "start"], timeout=900, env=self.env)
        except BenchError as e:
            # kafka.sh removes what a failed start made, so a second try starts afresh.
            # (A random KRaft cluster id that begins with '-' is taken for an option by
            # StorageTool: one start in 64 fails that way.)
            log(f"the broker did not start, trying once more: {str(e).splitlines()[-1]}")
            r = run_text(["bash", str(KAFKA_SH), "start"], timeout=900, env=self.env)
        self.bootstrap = r.stdout.strip().splitlines()[-1]
        self.version = run_text(["bash", str(KAFKA_SH), "version"], env=self.env).stdout.strip()
        try:
            self.pid = int(Path(self.env["KAFKA_STATE_DIR"], "kafka.pid").read_text())
        except (OSError, ValueError):
            self.pid = None
        log(f"Kafka {self.version} broker at {self.bootstrap} "
            f"(started in {time.monotonic() - t0:.1f} s, state {self.env['KAFKA_STATE_DIR']})")

    def stop(self):
        if self.external or not self.parent:
            return
        r = run_text(["bash", str(KAFKA_SH), "stop"], timeout=180, env=self.env, check=False)
        if r.returncode != 0:
            log(f"kafka.sh stop failed ({r.returncode}): {r.stderr.strip()}")
        shutil.rmtree(self.parent, ignore_errors=True)
        self.parent = None

    def cpu_seconds(self):
        return proc_cpu_seconds(self.pid) if self.pid else None

    def create_topic(self, name, partitions, counter):
        if self.external:
            w = KafkaWire(self.bootstrap)
            try:
                w.create_topic(name, partitions)
            finally:
                w.close()
        else:
            run_text(["bash", str(KAFKA_SH), "create-topic", name, str(partitions)],
                     timeout=120, env=self.env)
        deadline = time.monotonic() + 30
        while True:     # until every partition has a leader that answers
            try:
                if counter.count(name, partitions) == 0:
                    return
                raise BenchError(f"new topic {name} is not empty")
            except BenchError as e:
                if "not empty" in str(e) or time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def warm_up(self, workdir, corpus_path, nbytes):
        """Produces the first nbytes of the corpus (kcat, idempotent, zstd) into a topic
        of its own, so that the first measured run does not pay for the broker's first
        producer id and its JIT warm-up (without it, the first run of an invocation was
        20-25 % slower than the others at 200 MB)."""
        src = Path(corpus_path)
        if src.stat().st_size > nbytes:
            part = workdir / "warmup.log"
            with open(src, "rb") as f, open(part, "wb") as out:
                left = nbytes
                while left > 0 and (block := f.read(min(left, 1 << 20))):
                    left -= len(block)
                    if left <= 0:
                        block = block[:block.rfind(b"\n") + 1]
                    out.write(block)
                out.write(b"" if out.tell() else b"warm-up\n")
            src = part
        t0 = time.monotonic()
        run_text(["kcat", "-P", "-b", self.bootstrap, "-t", "bench-warmup", "-l", str(src),
                  "-X", "enable.idempotence=true", "-X", "acks=all",
                  "-X", "compression.codec=zstd"], timeout=600)
        log(f"warm-up: {min(nbytes, src.stat().st_size) / 1e6:.0f} MB produced in "
            f"{time.monotonic() - t0:.1f} s")
        if src.parent == workdir:
            src.unlink()


# ------------------------------------------------------------------------ contenders

def parse_settings(text):
    out = {}
    for item in filter(None, (s.strip() for s in text.split(","))):
        k, sep, v = item.partition("=")
        if not sep or not k:
            raise argparse.ArgumentTypeError(f"producer setting '{item}' is not key=value")
        out[k.strip()] = v.strip()
    return out


class Contender:
    name = "?"
    exits_when_done = False     # exits by itself once everything is acknowledged

    def __init__(self, shared):
        self.shared = shared    # producer settings given to every contender

    def unavailable(self):
        """None, or why this contender cannot run here."""
        return None

    def version(self):
        return ""

    def describe(self):
        """What it runs with, for the report."""
        return {}

    def argv(self, bootstrap, topic, corpus_path, workdir):
        raise NotImplementedError


def source_newest_mtime():
    newest = 0.0
    for d in ("agent", "config", "io", "offsets"):
        for f in (ROOT / d).rglob("*.[ch]"):
            newest = max(newest, f.stat().st_mtime)
    cm = ROOT / "CMakeLists.txt"
    if cm.exists():
        newest = max(newest, cm.stat().st_mtime)
    return newest


class Ringtail(Contender):
    name = "ringtail"

    def __init__(self, shared, binary=None):
        super().__init__(shared)
        if binary:
            self.bin, self.why_bin = Path(binary), "--ringtail"
        elif os.environ.get("RINGTAIL_BIN"):
            self.bin, self.why_bin = Path(os.environ["RINGTAIL_BIN"]), "RINGTAIL_BIN"
        else:
            self.bin, self.why_bin = self.pick_build()

    @staticmethod
    def pick_build():
        """build/release if it is at least as new as the sources, else build/dev if that
        is, else whichever exists (the report says it is stale)."""
        newest = source_newest_mtime()
        builds = [(ROOT / f"build/{p}/ringtail", p) for p in ("release", "dev")]
        present = [(b, p) for b, p in builds if os.access(b, os.X_OK)]
        for b, p in present:
            if b.stat().st_mtime >= newest:
                return b, f"{p} preset build"
        if present:
            return present[0][0], f"{present[0][1]} preset build"
        return builds[0][0], "release preset build"

    def unavailable(self):
        if not os.access(self.bin, os.X_OK):
            return (f"no executable {self.bin} (cmake --preset release && "
                    f"cmake --build --preset release)")
        return None

    def version(self):
        return run_text([str(self.bin), "--version"], check=False).stdout.strip()

    def build_type(self):
        cache = self.bin.parent / "CMakeCache.txt"
        try:
            for line in cache.read_text().splitlines():
                if line.startswith("CMAKE_BUILD_TYPE:"):
                    return line.split("=", 1)[1]
        except OSError:
            pass
        return "unknown"

    def stale(self):
        try:
            return self.bin.stat().st_mtime < source_newest_mtime()
        except OSError:
            return False

    def worker_entries(self, bootstrap, workdir):
        e = {"bootstrap.servers": bootstrap,
             "key.converter": "org.apache.kafka.connect.storage.StringConverter",
             "value.converter": "org.apache.kafka.connect.storage.StringConverter",
             "offset.storage.file.filename": str(workdir / "connect.offsets"),
             "offset.flush.interval.ms": "10000"}
        for k, v in self.shared.items():
            e[f"producer.{k}"] = v
        return e

    def connector_entries(self, topic, corpus_path):
        return {"name": "bench", "connector.class": "TailSource", "topic": topic,
                "files": str(corpus_path)}

    def describe(self):
        return {"binary": f"{self.bin} ({self.why_bin}, CMAKE_BUILD_TYPE={self.build_type()}"
                          f"{', OLDER THAN THE SOURCES' if self.stale() else ''})",
                "command": "ringtail standalone worker.properties connector.properties; "
                           "SIGTERM once every line is in Kafka",
                "worker": self.worker_entries("BOOTSTRAP", Path("WORKDIR")),
                "connector": self.connector_entries("TOPIC", "CORPUS"),
                "producer": {**RINGTAIL_PRODUCER_DEFAULTS,
                             **{k: f"{v} (shared)" for k, v in self.shared.items()}}}

    def argv(self, bootstrap, topic, corpus_path, workdir):
        w = workdir / "worker.properties"
        c = workdir / "connector.properties"
        for path, entries in ((w, self.worker_entries(bootstrap, workdir)),
                              (c, self.connector_entries(topic, corpus_path))):
            path.write_text("# written by bench/run.py\n" +
                            "".join(f"{k}={v}\n" for k, v in entries.items()))
        return [str(self.bin), "standalone", str(w), str(c)]


class Kcat(Contender):
    name = "kcat"
    exits_when_done = True

    BASE = {"enable.idempotence": "true", "acks": "all", "compression.codec": "zstd"}

    def unavailable(self):
        if not shutil.which("kcat"):
            return "kcat is not installed (apt-get install kcat)"
        return None

    def version(self):
        out = run_text(["kcat", "-V"], check=False).stdout.strip().splitlines()
        return next((ln for ln in out if ln.startswith("Version")), " ".join(out[:1]))

    def settings(self):
        return {**self.BASE, **self.shared}

    def describe(self):
        return {"command": shlex.join(self.argv("BOOTSTRAP", "TOPIC", "CORPUS", None)),
                "producer": {**{k: v for k, v in self.BASE.items()},
                             **{k: f"{v} (shared)" for k, v in self.shared.items()},
                             "message.timeout.ms": "300000 (librdkafka default)",
                             "queue.buffering.max.kbytes": "1048576 (librdkafka default)"}}

    def argv(self, bootstrap, topic, corpus_path, workdir):
        a = ["kcat", "-P", "-b", bootstrap, "-t", topic, "-l", str(corpus_path)]
        for k, v in self.settings().items():
            a += ["-X", f"{k}={v}"]
        return a


CONTENDERS = {"ringtail": Ringtail, "kcat": Kcat}


# ------------------------------------------------------------------------ verification

def multiset_digest(path):
    """corpus.py --digest in a child with a fixed hash seed (ours is random)."""
    r = subprocess.run([sys.executable, str(HERE / "corpus.py"), "--digest", str(path)],
                       capture_output=True, text=True, check=False,
                       env=dict(os.environ, PYTHONHASHSEED="0"))
    if r.returncode != 0:
        raise BenchError(f"corpus.py --digest {path} failed: {r.stderr}")
    return json.loads(r.stdout)


def corpus_digest(meta):
    """The corpus' multiset digest, cached in its .meta under the digest's key."""
    cached = meta.get("multiset_digest")
    key = f"multiset_{sys.hash_info.algorithm}_seed0"     # the child runs sys.executable
    if cached and cached.get("bytes") == meta["bytes"] and cached.get("key") == key:
        return cached, None
    t0 = time.monotonic()
    d = multiset_digest(meta["path"])
    took = time.monotonic() - t0
    if d["lines"] != meta["lines"] or d["bytes"] != meta["bytes"]:
        raise BenchError(f"corpus {meta['path']} changed: {d['lines']} lines, {d['bytes']} bytes")
    stored = {k: v for k, v in meta.items() if k != "path"}
    stored["multiset_digest"] = d
    corpus.write_meta(meta["path"], stored)
    meta["multiset_digest"] = d
    log(f"digest of the corpus in {took:.1f} s (cached in {meta['path']}.meta)")
    return d, took


def consume_argv(bootstrap, topic):
    return ["kcat", "-C", "-b", bootstrap, "-t", topic, "-o", "beginning", "-e", "-q",
            "-f", "%s\n"]


def verify(bootstrap, topic, meta, expected, tmpdir, logf):
    """Consumes the whole topic into a file and compares its multiset digest with the
    corpus'. Returns a dict with ok, consumed lines and bytes, seconds, and on a mismatch
    lost / duplicated / foreign line counts. (Into a file, not a pipe: a Python reader
    on the pipe made kcat stall, 7-9 s per GiB instead of 3.5.)"""
    t0 = time.monotonic()
    out = Path(tmpdir) / "topic.out"
    try:
        with open(out, "wb") as f:
            k = Procs.popen(consume_argv(bootstrap, topic), stdout=f, stderr=logf)
            if k.wait() != 0:
                raise BenchError(f"kcat -C exited {k.returncode} (see {logf.name})")
            Procs.forget(k)
        t1 = time.monotonic()
        d = multiset_digest(out)
        res = {"consumed_lines": d["lines"], "consumed_bytes": d["bytes"],
               "consume_s": round(t1 - t0, 3), "hash_s": round(time.monotonic() - t1, 3)}
        res["ok"] = (d["lines"] == expected["lines"] and d["bytes"] == expected["bytes"]
                     and d["hash"] == expected["hash"])
        if not res["ok"]:
            res.update(diagnose(meta["path"], out, tmpdir))
        res["seconds"] = round(time.monotonic() - t0, 3)
        return res
    finally:
        if out.exists():
            out.unlink()


def diagnose(corpus_path, consumed, tmpdir):
    """Counts lost, duplicated and foreign lines with sort, uniq and comm (slow path,
    only after a failed run)."""
    env = dict(os.environ, LC_ALL="C")
    a = Path(tmpdir) / "corpus.sorted"
    b = Path(tmpdir) / "topic.sorted"
    try:
        for src, dst in ((corpus_path, a), (consumed, b)):
            subprocess.run(["sort", "-S", "25%", "-T", str(tmpdir), "-o", str(dst), str(src)],
                           env=env, check=True)

        def count(cmd):
            return int(subprocess.run(["bash", "-c", cmd + " | wc -l"], env=env, check=True,
                                      capture_output=True, text=True).stdout)

        qa, qb = shlex.quote(str(a)), shlex.quote(str(b))
        return {"lost_lines": count(f"comm -23 {qa} <(uniq {qb})"),
                "duplicated_lines": count(f"uniq -d {qb}"),
                "extra_copies": count(f"cat {qb}") - count(f"uniq {qb}"),
                "foreign_lines": count(f"comm -13 {qa} <(uniq {qb})")}
    finally:
        for f in (a, b):
            if f.exists():
                f.unlink()


# ------------------------------------------------------------------------ one run

def run_one(contender, broker, counter, meta, partitions, topic, workdir, logdir, timeout,
            expected_digest):
    """Runs one contender on one topic; returns its result dict."""
    res = {"contender": contender.name, "topic": topic, "status": "failed"}
    logpath = logdir / f"{topic}.log"
    res["log"] = str(logpath)
    broker.create_topic(topic, partitions, counter)
    with open(meta["path"], "rb") as f:      # the corpus in the page cache for everyone
        while f.read(8 << 20):
            pass
    argv = contender.argv(broker.bootstrap, topic, meta["path"], workdir)
    res["argv"] = argv
    lines = meta["lines"]
    delivered = 0
    cpu_at_delivery = None
    peak = [0.0]     # VmHWM, sampled while the contender lives (see peak RSS in README)
    exit_info = None

    def sample():
        hwm = proc_hwm_mib(p.pid)
        if hwm is not None and hwm > peak[0]:
            peak[0] = hwm

    with open(logpath, "wb") as logf:
        own0 = time.process_time()
        b0 = broker.cpu_seconds()
        t0 = time.monotonic()
        p = Procs.popen(argv, cwd=workdir, stdin=subprocess.DEVNULL, stdout=logf,
                        stderr=subprocess.STDOUT, start_new_session=True)
        try:
            t_done = None
            deadline = t0 + timeout
            while True:
                sample()
                exit_info = wait4_nohang(p)
                now = time.monotonic()
                if exit_info:
                    delivered = counter.count(topic, partitions)
                    if delivered >= lines:
                        t_done = now
                    break
                delivered = counter.count(topic, partitions)
                if delivered >= lines:
                    t_done = time.monotonic()
                    cpu_at_delivery = proc_cpu_seconds(p.pid)
                    break
                if now > deadline:
                    res["status"] = f"timed out after {timeout:.0f} s: {delivered} of {lines} lines"
                    break
                time.sleep(POLL_S)
            b1 = broker.cpu_seconds()
            own1 = time.process_time()
            if exit_info is None:
                # os.kill, not p.send_signal(): that one reaps the child if it just
                # exited, and its rusage would be lost. Unreaped, the PID cannot be reused.
                # A contender that exits by itself once done (kcat) is given the time.
                if not (contender.exits_when_done and t_done is not None):
                    os.kill(p.pid, signal.SIGTERM)
                stop_deadline = time.monotonic() + 60
                while True:
                    sample()
                    if (exit_info := wait4_nohang(p)) is not None:
                        break
                    if time.monotonic() > stop_deadline:
                        os.kill(p.pid, signal.SIGKILL)
                        res["status"] = "did not stop within 60 s"
                        _, status, ru = os.wait4(p.pid, 0)
                        p.returncode = os.waitstatus_to_exitcode(status)
                        Procs.forget(p)
                        exit_info = (status, ru)
                        break
                    time.sleep(0.01)
        finally:
            if p.returncode is None:
                Procs.kill_all()
    status, ru = exit_info
    res["exit_code"] = p.returncode
    res["cpu_total_s"] = round(ru.ru_utime + ru.ru_stime, 3)
    res["peak_rss_mib"] = round(peak[0], 1)
    # ru_maxrss also counts the harness' own pages the child had before exec (Linux keeps
    # the pre-exec hiwater in signal->maxrss), so it is only kept for reference.
    res["ru_maxrss_mib"] = round(ru.ru_maxrss / 1024, 1)
    res["delivered_at_stop"] = delivered
    res["harness_cpu_s"] = round(own1 - own0, 3)
    if b0 is not None and b1 is not None:
        res["broker_cpu_s"] = round(b1 - b0, 2)
    if t_done is None:
        if res["status"] == "failed":
            res["status"] = (f"exited {p.returncode} with {delivered} of {lines} lines "
                             f"delivered (log: {logpath})")
        return res
    wall = t_done - t0
    cpu = cpu_at_delivery if cpu_at_delivery is not None else ru.ru_utime + ru.ru_stime
    res.update({"wall_s": round(wall, 3), "cpu_s": round(cpu, 3),
                "mb_s": round(meta["bytes"] / 1e6 / wall, 2),
                "lines_s": round(lines / wall),
                "cpu_s_per_gib": round(cpu / (meta["bytes"] / GIB), 2)})
    final = counter.count(topic, partitions)
    res["final_lines"] = final
    with open(logpath, "ab") as logf:
        v = verify(broker.bootstrap, topic, meta, expected_digest, workdir, logf)
    res["verify"] = v
    if not v["ok"]:
        parts = [f"{v[k]} {k.replace('_', ' ')}" for k in
                 ("lost_lines", "duplicated_lines", "extra_copies", "foreign_lines")
                 if v.get(k)]
        res["status"] = "NOT exactly once: " + (", ".join(parts) or
                                                f"{v['consumed_lines']} lines consumed, "
                                                f"{lines} expected, digest differs")
    elif p.returncode != 0:
        res["status"] = f"delivered exactly once, but exited {p.returncode} (see {logpath})"
    else:
        res["status"] = "ok"
    return res


# ------------------------------------------------------------------------ report

def summarize(results):
    """{(kind, contender): {metric: (median, min, max)} or failure text}."""
    out = {}
    for (kind, name), runs in results.items():
        ok = [r for r in runs if r["status"] == "ok"]
        s = {"runs": len(runs), "ok_runs": len(ok),
             "failures": [r["status"] for r in runs if r["status"] != "ok"]}
        for m in ("mb_s", "lines_s", "cpu_s_per_gib", "peak_rss_mib", "wall_s"):
            vals = [r[m] for r in ok if r.get(m) is not None]
            if vals:
                s[m] = {"median": statistics.median(vals), "min": min(vals), "max": max(vals)}
        out[(kind, name)] = s
    return out


def fmt_stat(st, digits=1):
    if not st:
        return "—"
    med, lo, hi = st["median"], st["min"], st["max"]
    if lo == hi:
        return f"{med:,.{digits}f}"
    return f"{med:,.{digits}f} ({lo:,.{digits}f}–{hi:,.{digits}f})"


def ratio(a, b):
    if not a or not b or not b.get("median"):
        return "—"
    return f"{a['median'] / b['median']:.2f}×"


def write_report(out_dir, ctx, results, unavailable):
    names = ctx["contenders"]
    summary = summarize(results)
    L = []
    L.append(f"# ringtail bench: {ctx['title']}\n")
    L.append(f"{ctx['finished']} · `{ctx['command']}`\n")
    L.append("Medians over the verified runs, (min–max) when they differ. MB = 10^6 bytes; "
             "CPU-s/GiB is the contender's own user+sys time up to full delivery per 2^30 "
             "corpus bytes; peak RSS is the contender's VmHWM (/proc/PID/status) sampled every "
             f"{POLL_S * 1000:.0f} ms. Ratios are against "
             "ringtail's medians from this same invocation (>1 for MB/s means faster than "
             "ringtail, >1 for CPU and RSS means more than ringtail).\n")
    for kind in ctx["kinds"]:
        m = ctx["corpora"][kind]
        L.append(f"## Corpus `{kind}`: {m['bytes']:,} bytes, {m['lines']:,} lines "
                 f"(mean {m['bytes'] / m['lines']:.0f} B/line), seed {m['seed']}\n")
        L.append("| contender | MB/s | lines/s | CPU-s/GiB | peak RSS MiB | MB/s vs ringtail "
                 "| CPU vs ringtail | RSS vs ringtail | verified runs |")
        L.append("|---|---|---|---|---|---|---|---|---|")
        rt = summary.get((kind, "ringtail"), {})
        for name in names:
            if name in unavailable:
                L.append(f"| {name} | not available: {unavailable[name]} | | | | | | | |")
                continue
            s = summary.get((kind, name))
            if not s:
                continue
            if not s["ok_runs"]:
                L.append(f"| {name} | **failed**: {'; '.join(s['failures'])} | | | | | | | "
                         f"0 of {s['runs']} |")
                continue
            L.append(f"| {name} | {fmt_stat(s.get('mb_s'))} | {fmt_stat(s.get('lines_s'), 0)} | "
                     f"{fmt_stat(s.get('cpu_s_per_gib'), 2)} | {fmt_stat(s.get('peak_rss_mib'))} | "
                     f"{ratio(s.get('mb_s'), rt.get('mb_s'))} | "
                     f"{ratio(s.get('cpu_s_per_gib'), rt.get('cpu_s_per_gib'))} | "
                     f"{ratio(s.get('peak_rss_mib'), rt.get('peak_rss_mib'))} | "
                     f"{s['ok_runs']} of {s['runs']} |")
        kc = summary.get((kind, "kcat"), {})
        if ctx.get("smoke"):
            L.append("")
            L.append("Smoke run: at this size the figures measure start-up, not throughput.")
        elif rt.get("mb_s") and kc.get("mb_s"):
            L.append("")
            L.append(f"ringtail ÷ kcat: throughput {rt['mb_s']['median'] / kc['mb_s']['median']:.2f}× "
                     f"(issue 6 target ≥ 1.5×), CPU-s/GiB "
                     f"{rt['cpu_s_per_gib']['median'] / kc['cpu_s_per_gib']['median']:.2f}× "
                     f"(target ≤ 0.85×); ringtail peak RSS {rt['peak_rss_mib']['median']:.0f} MiB "
                     f"(target ≤ 64 MiB).")
        failures = [(name, f) for name in names for f in summary.get((kind, name), {})
                    .get("failures", [])]
        if failures and any(summary[(kind, n)]["ok_runs"] for n, _ in failures):
            L.append("")
            for name, f in failures:
                L.append(f"- {name}: a run **failed** (not counted): {f}")
        L.append("")
    L.append("## Runs\n")
    L.append("| corpus | run | contender | status | wall s | MB/s | CPU s (at delivery) | "
             "CPU s (to exit) | peak RSS MiB | broker CPU s | verify s |")
    L.append("|---|---|---|---|---|---|---|---|---|---|---|")
    for (kind, name), runs in results.items():
        for r in runs:
            v = r.get("verify", {})
            L.append(f"| {kind} | {r['run']} | {name} | {r['status']} | {r.get('wall_s', '—')} | "
                     f"{r.get('mb_s', '—')} | {r.get('cpu_s', '—')} | {r.get('cpu_total_s', '—')} | "
                     f"{r.get('peak_rss_mib', '—')} | {r.get('broker_cpu_s', '—')} | "
                     f"{v.get('seconds', '—')} |")
    L.append("")
    L.append("## Contenders and their settings\n")
    L.append(f"Producer settings given to every contender (`--producer`): "
             f"`{ctx['shared_producer'] or '(none)'}`.\n")
    for name in names:
        if name in unavailable:
            L.append(f"- **{name}**: not available: {unavailable[name]}")
            continue
        d = ctx["describe"][name]
        L.append(f"- **{name}** {ctx['versions'].get(name, '')}")
        for k, v in d.items():
            if isinstance(v, dict):
                L.append(f"  - {k}: " + ", ".join(f"`{kk}={vv}`" for kk, vv in v.items()))
            else:
                L.append(f"  - {k}: `{v}`" if k == "command" else f"  - {k}: {v}")
    L.append("")
    L.append("## Environment\n")
    for k, v in ctx["environment"].items():
        L.append(f"- {k}: {v}")
    L.append("")
    L.append("## Method\n")
    L.append(f"- Topics: a new one per run and contender, {ctx['partitions']} partitions, "
             f"created before the contender starts; the contenders' order rotates per run.")
    L.append(f"- Delivery: end offsets summed over the partitions every {POLL_S * 1000:.0f} ms "
             f"({ctx['offsets_method']}); the clock stops when they reach the corpus' line "
             f"count, or when the contender exits if that comes first (kcat exits after its "
             f"final flush). Its CPU is read then from /proc/PID/stat (from wait4() if it has "
             f"exited); a contender that keeps running (ringtail) then gets SIGTERM.")
    L.append("- Exactly once: the topic is consumed with `" + shlex.join(
        consume_argv("BOOTSTRAP", "TOPIC")).replace("\n", "\\n") + "` into a file whose "
             "multiset digest (line count, bytes, sum of the lines' SipHash mod 2^64) must "
             "equal the corpus', so any "
             "lost, duplicated or altered line fails the run. Cost per run is in the "
             "'verify s' column; the corpus' own digest is computed once and cached.")
    L.append("")
    (out_dir / "results.md").write_text("\n".join(L))
    data = {"context": ctx, "unavailable": unavailable,
            "summary": [{"kind": k, "contender": n, **s} for (k, n), s in summary.items()],
            "runs": [r for runs in results.values() for r in runs]}
    (out_dir / "results.json").write_text(json.dumps(data, indent=1) + "\n")
    return summary


def machine_info():
    info = {"nproc": os.cpu_count(), "kernel": platform.release()}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
                break
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                info["memory"] = f"{int(line.split()[1]) // 1024} MiB"
        info["load average at start"] = Path("/proc/loadavg").read_text().split()[:3]
    except OSError:
        pass
    try:
        info["os"] = Path("/etc/debian_version").read_text().strip()
    except OSError:
        pass
    return info


# ------------------------------------------------------------------------ main

def parse_args(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--smoke", action="store_true",
                    help="2M corpus, 1 run, both contenders: keeps the harness working")
    ap.add_argument("--contenders", default="ringtail,kcat",
                    help=f"comma-separated, of {','.join(CONTENDERS)}")
    ap.add_argument("--kind", default="access",
                    help="corpus kind(s), comma-separated: access,json,java")
    ap.add_argument("--size", default=None, help="corpus size (default 1G; --smoke 2M)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--runs", type=int, default=None, help="runs per case (default 3)")
    ap.add_argument("--partitions", type=int, default=6)
    ap.add_argument("--out", default=None,
                    help="results directory (default bench/out, bench/out/smoke with --smoke)")
    ap.add_argument("--corpus-dir", default=None,
                    help=f"corpus cache (default {corpus.default_dir()})")
    ap.add_argument("--bootstrap", help="use this broker instead of starting one")
    ap.add_argument("--ringtail", help="ringtail binary (default build/release, else build/dev)")
    ap.add_argument("--producer", default=DEFAULT_SHARED_PRODUCER,
                    help="librdkafka settings for every contender, k=v,... "
                         f"(default {DEFAULT_SHARED_PRODUCER}; '' for none)")
    ap.add_argument("--warmup", type=float, default=100,
                    help="MB of the corpus produced with kcat before the measured runs "
                         "(default 100)")
    ap.add_argument("--timeout", type=float, default=None,
                    help="seconds a run may take to deliver (default 120 + 1 s per 5 MB)")
    a = ap.parse_args(argv)
    a.size = a.size or ("2M" if a.smoke else "1G")
    a.runs = a.runs or (1 if a.smoke else 3)
    a.out = Path(a.out) if a.out else HERE / "out" / ("smoke" if a.smoke else "")
    a.contenders = [c.strip() for c in a.contenders.split(",") if c.strip()]
    for c in a.contenders:
        if c not in CONTENDERS:
            ap.error(f"unknown contender '{c}' (known: {', '.join(CONTENDERS)})")
    a.kinds = [k.strip() for k in a.kind.split(",") if k.strip()]
    for k in a.kinds:
        if k not in corpus.KINDS:
            ap.error(f"unknown kind '{k}' (known: {', '.join(corpus.KINDS)})")
    try:
        corpus.parse_size(a.size)
        a.shared = parse_settings(a.producer)
    except argparse.ArgumentTypeError as e:
        ap.error(str(e))
    if a.runs < 1 or a.partitions < 1:
        ap.error("--runs and --partitions must be at least 1")
    return a


def on_sigterm(signum, frame):
    log("terminated; stopping what was started")
    raise SystemExit(128 + signum)


def main(argv=None):
    a = parse_args(argv)
    signal.signal(signal.SIGTERM, on_sigterm)
    started = time.monotonic()
    contenders = []
    unavailable = {}
    for name in a.contenders:
        c = Ringtail(a.shared, a.ringtail) if name == "ringtail" else CONTENDERS[name](a.shared)
        why = c.unavailable()
        if why:
            unavailable[name] = why
            log(f"{name}: not available: {why}")
        else:
            contenders.append(c)
    for c in contenders:
        if isinstance(c, Ringtail) and c.stale():
            log(f"warning: {c.bin} is older than the sources")
    a.out.mkdir(parents=True, exist_ok=True)
    logdir = a.out / "logs"
    logdir.mkdir(exist_ok=True)
    cdir = Path(a.corpus_dir) if a.corpus_dir else corpus.default_dir()
    cdir.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="work-", dir=cdir))
    ctx = {"title": f"{', '.join(a.kinds)} corpus, {a.size}, {a.runs} run(s), "
                    f"{a.partitions} partitions" + (" (smoke)" if a.smoke else ""),
           "command": shlex.join([sys.executable, "bench/run.py", *(argv or sys.argv[1:])]),
           "contenders": a.contenders, "kinds": a.kinds, "partitions": a.partitions,
           "smoke": a.smoke,
           "shared_producer": a.producer, "corpora": {}, "versions": {}, "describe": {}}
    results = {}
    broker = Broker(a.bootstrap)
    counter = None
    rc = 0
    try:
        for kind in a.kinds:
            m = corpus.generate(kind, a.size, a.seed, cdir)
            digest, took = corpus_digest(m)
            ctx["corpora"][kind] = {k: m[k] for k in ("path", "bytes", "lines", "sha256", "seed")}
            if took is not None:
                ctx["corpora"][kind]["digest_seconds"] = round(took, 2)
        broker.start()
        counter = OffsetCounter(broker.bootstrap)
        broker.warm_up(work, ctx["corpora"][a.kinds[0]]["path"], int(a.warmup * 1e6))
        for c in contenders:
            ctx["versions"][c.name] = c.version()
            ctx["describe"][c.name] = c.describe()
        timeout = a.timeout
        tag = datetime.datetime.now().strftime("%H%M%S")
        for kind in a.kinds:
            path = ctx["corpora"][kind]["path"]
            meta = {**corpus.read_meta(path), "path": path}
            digest = meta["multiset_digest"]
            t_out = timeout or 120 + meta["bytes"] / 5e6
            for run in range(a.runs):
                order = contenders[run % len(contenders):] + contenders[:run % len(contenders)] \
                    if contenders else []
                for c in order:
                    topic = f"bench-{tag}-{kind}-{c.name}-{run + 1}"
                    rwork = work / topic
                    rwork.mkdir()
                    log(f"{kind} run {run + 1}/{a.runs}: {c.name} -> {topic}")
                    r = run_one(c, broker, counter, meta, a.partitions, topic, rwork, logdir,
                                t_out, digest)
                    r["run"] = run + 1
                    r["kind"] = kind
                    results.setdefault((kind, c.name), []).append(r)
                    v = r.get("verify", {})
                    log(f"  {r['status']}: " + (
                        f"{r['wall_s']:.2f} s, {r['mb_s']:.1f} MB/s, {r['lines_s']:,} lines/s, "
                        f"{r['cpu_s_per_gib']:.2f} CPU-s/GiB, peak RSS {r['peak_rss_mib']} MiB, "
                        f"verified in {v.get('seconds', 0):.1f} s" if "wall_s" in r else ""))
                    if r["status"] != "ok":
                        rc = 1
                    shutil.rmtree(rwork, ignore_errors=True)
        ctx["offsets_method"] = ("ListOffsets v1 over a socket" if counter.wire else
                                 f"kcat -Q ({counter.fallback_reason})")
        ctx["versions"]["kafka"] = broker.version
        ctx["environment"] = {
            **machine_info(),
            "Kafka": f"{broker.version} (" + (f"external --bootstrap {a.bootstrap}" if a.bootstrap
                                              else "tests/kafka/kafka.sh, own KAFKA_STATE_DIR") + ")",
            "python": platform.python_version(),
            "bench wall time": f"{time.monotonic() - started:.0f} s"}
        ctx["finished"] = datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
        write_report(a.out, ctx, results, unavailable)
        log(f"wrote {a.out / 'results.md'} and results.json "
            f"({time.monotonic() - started:.0f} s in all)")
    except BenchError as e:
        log(f"error: {e}")
        rc = 1
    except KeyboardInterrupt:
        log("interrupted; stopping what was started")
        rc = 130
    finally:
        Procs.kill_all()
        if counter:
            counter.close()
        broker.stop()
        shutil.rmtree(work, ignore_errors=True)
    return rc


if __name__ == "__main__":
    sys.exit(main())
