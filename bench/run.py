#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""ringtail's bench suite: contenders ship the same corpus into the same Kafka broker.

    python3 bench/run.py [--smoke] [--contenders ringtail,kcat] [--kind access]
                         [--size 1G] [--runs 3] [--partitions 6] [--out DIR]
                         [--bootstrap HOST:PORT]
    python3 bench/run.py --mode live [--rates 10000,50000,200000] [--duration 30] [--smoke]
    python3 bench/run.py --mode idle [--files 10000] [--idle-seconds 60] [--smoke]
    python3 bench/run.py --mode backlog [--size 10G] [--down-seconds 60] [--smoke]
    python3 bench/run.py --broker mock ...    (librdkafka's mock cluster; not --mode live)

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

LIVE MODE. Per rate and contender: a new topic with message.timestamp.type=
LogAppendTime and a new file holding one line; the contender follows the file
(Contender.live_argv); once that line is in Kafka, bench/appender.py appends lines
stamped with their CLOCK_REALTIME µs at the rate for --duration s. Latency = record
timestamp (the broker's append time, ms) - stamp, over the lines after the first --skip
seconds; the contender's CPU is read from /proc/PID/stat at the start and the end of
that window. Exactly once as above: the multiset digest of the consumed values must be
that of the lines written, rebuilt from the writer's batch log.

IDLE MODE. Per contender: --files files of one line in a new directory, followed as
DIR/*.log (Contender.glob_argv; None: not available); once all lines are in Kafka, its
CPU over --idle-seconds of nothing happening. Exactly once as above.

BACKLOG MODE. Per contender: a new topic, then the broker is stopped (Broker.down():
kafka.sh stop --keep-data, or the mock's `down -1`) and the contender starts on the
complete corpus (Contender.backlog_argv); its VmHWM/VmRSS are sampled for
--down-seconds, then the broker comes back (Broker.up()) and the time to full delivery
is measured from there. Exactly once as above.

BROKERS. Broker (below) runs kafka.sh's real broker; mockbroker.MockBroker runs
librdkafka's mock cluster (tests/kafka/mockcluster.c), a new process per topic. The
mock keeps only the last 5 MiB of batches per partition, so there a tap process follows
each topic during the run and verification decodes what it fetched (Broker.tap(),
consume_values()); see mockbroker.py.

SHARED PIECES. Every mode runs its cases through one loop (run_cases(): rotation of the
contenders, one topic and scratch directory per run, the results by case and
contender); each run starts alike (new_run(), tapped()), runs its contender as a
Running, and ends in the same statuses (not_exactly_once(), delivered_status()); the
reports share their head, tables (contender_table(), runs_table()) and tail
(write_results()). What each mode measures stays in its run_*() and write_*_report().
KafkaWire's socket and framing (bench/kafkawire.py) are also the mock tap's.

Everything started here is stopped here, by PID, in finally blocks (Ctrl-C and
SIGTERM included). Only 127.0.0.1 is contacted unless --bootstrap says otherwise.
Standard library only; the chart (bench/chart.py) needs matplotlib and is skipped
without it.
"""
import argparse
import collections
import contextlib
import datetime
import json
import math
import operator
import os
import platform
import shlex
import shutil
import signal
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
APPENDER = HERE / "appender.py"
sys.path.insert(0, str(HERE))
import appender  # noqa: E402
import corpus  # noqa: E402
import kafkawire  # noqa: E402

GIB = 1 << 30
POLL_S = 0.02
CLK_TCK = os.sysconf("SC_CLK_TCK")
# The broker's JIT is taken as settled once its compiler threads use less than this in
# a warm-up round (Broker.warm_up).
JIT_QUIET_S = 0.2

# Producer settings every contender gets on top of its own defaults: the baselines
# of issue 6 (librdkafka's linger.ms is 5 in 2.0; batch.num.messages 10000 is its
# default, stated so the report says it), and ringtail's default zstd level (1; the
# others would compress at librdkafka's 3), so that all compress alike.
DEFAULT_SHARED_PRODUCER = "linger.ms=20,batch.num.messages=10000,compression.level=1"

# What ringtail sets itself (agent/kfk.c producer_defaults); kcat gets the first three
# explicitly, the rest stay librdkafka's defaults there (reported as such).
RINGTAIL_PRODUCER_DEFAULTS = {"enable.idempotence": "true", "acks": "all",
                              "compression.type": "zstd", "compression.level": "1",
                              "message.timeout.ms": "0",
                              "queue.buffering.max.kbytes": "12288 shared by the producers "
                                                              "(the connector's buffer.memory)",
                              "queue.buffering.max.messages": "25000 per producer",
                              "reconnect.backoff.max.ms": "1000"}


def log(msg):
    print(f"bench: {msg}", file=sys.stderr, flush=True)


class BenchError(Exception):
    pass


class NotVerified(BenchError):
    """The topic's content could not be checked (the run is not counted, and it is not
    the contender's fault): e.g. the mock cluster dropped batches before the tap got
    them."""


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


def proc_cpu_split(pid, stat_path=None):
    """(user, sys) seconds of a live process (all its threads), from /proc/PID/stat, or
    of one thread from the /proc/PID/task/TID/stat given as stat_path; None if gone."""
    try:
        stat = Path(stat_path or f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2:].split()
    return int(fields[11]) / CLK_TCK, int(fields[12]) / CLK_TCK     # utime, stime


def proc_cpu_seconds(pid, stat_path=None):
    """user+sys, as proc_cpu_split(), rounded to hundredths (Linux's tick is 1/100 s;
    the sum of two tick counts over CLK_TCK is not exact in binary: 54.699999999999996)."""
    split = proc_cpu_split(pid, stat_path)
    return round(sum(split), 2) if split else None


def proc_hwm_mib(pid):
    return proc_mem_mib(pid)[0]


def proc_mem_mib(pid):
    """(VmHWM, VmRSS) in MiB from /proc/PID/status; None for what cannot be read."""
    hwm = rss = None
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                hwm = int(line.split()[1]) / 1024
            elif line.startswith("VmRSS:"):
                rss = int(line.split()[1]) / 1024
    except (OSError, ValueError, IndexError):
        pass
    return hwm, rss


def proc_rchar(pid):
    """Bytes the process has read with read(2) and the like (/proc/PID/io rchar)."""
    try:
        for line in Path(f"/proc/{pid}/io").read_text().splitlines():
            if line.startswith("rchar:"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return None


def proc_cmdline(pid):
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return []


def proc_ppid(pid):
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return int(stat[stat.rindex(")") + 2:].split()[1])
    except (OSError, ValueError, IndexError):
        return None


def run_text(argv, timeout=120, env=None, check=True):
    r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=env)
    if check and r.returncode != 0:
        raise BenchError(f"{shlex.join(argv)} failed ({r.returncode}):\n{r.stdout}{r.stderr}")
    return r


# ------------------------------------------------------------------------ Kafka wire

class KafkaWire(kafkawire.Connection):
    """Just enough of Kafka's protocol for the harness: end offsets (ListOffsets v1)
    and topic creation (CreateTopics v4) against one broker, cheaply enough to poll
    every 20 ms (a kcat -Q process costs ~20 ms of wall time and a few ms of CPU). The
    socket and the framing are kafkawire.Connection's (shared with mockbroker's tap)."""

    def __init__(self, bootstrap, timeout=10.0):
        super().__init__(bootstrap, "ringtail-bench", timeout=timeout)

    def end_offsets(self, topic, partitions):
        """{partition: end offset}; raises on any partition error (e.g. no leader yet)."""
        body = struct.pack(">i", -1) + struct.pack(">i", 1) + kafkawire.kstr(topic)
        body += struct.pack(">i", partitions)
        for p in range(partitions):
            body += struct.pack(">iq", p, -1)
        r = self.request(2, 1, body)
        out = {}
        for part, err, _ts, off in kafkawire.topic_partitions(
                r, 0, lambda buf, pos: (struct.unpack_from(">ihqq", buf, pos), pos + 22)):
            if err:
                raise BenchError(f"ListOffsets {topic}[{part}]: Kafka error {err}")
            out[part] = off
        if len(out) != partitions:
            raise BenchError(f"ListOffsets {topic}: {len(out)} of {partitions} partitions")
        return out

    def create_topic(self, topic, partitions, configs=None):
        body = struct.pack(">i", 1) + kafkawire.kstr(topic)
        body += struct.pack(">ih", partitions, -1)          # replication: broker default
        body += struct.pack(">i", 0)                        # no manual assignment
        configs = configs or {}
        body += struct.pack(">i", len(configs))
        for k, v in configs.items():
            body += kafkawire.kstr(k) + kafkawire.kstr(v)
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
            msg = bytes(r[pos + 2:pos + 2 + mlen]).decode(errors="replace") if mlen > 0 else ""
            pos += 2 + max(mlen, 0)
            if err:
                raise BenchError(f"CreateTopics {topic}: Kafka error {err} {msg}")


class OffsetCounter:
    """Sum of a topic's end offsets; the socket client, or kcat -Q if that fails."""

    def __init__(self, bootstrap):
        self.bootstrap = bootstrap
        self.wire = None
        self.fallback_reason = None
        self.kcat_counts = 0
        try:
            self.wire = KafkaWire(bootstrap)
        except OSError as e:
            self.fallback_reason = f"socket: {e}"

    def close(self):
        if self.wire:
            self.wire.close()
            self.wire = None

    def retarget(self, bootstrap):
        """A new broker address (the mock: one cluster per topic), or the same broker
        restarted (backlog mode): a new connection."""
        self.close()
        self.bootstrap = bootstrap
        try:
            self.wire = KafkaWire(bootstrap)
        except OSError as e:
            self.fallback_reason = f"socket: {e}"

    def count(self, topic, partitions):
        for attempt in (1, 2):      # a broken connection (a broker restart) gets one retry
            if not self.wire:
                try:
                    self.wire = KafkaWire(self.bootstrap)
                except OSError as e:
                    self.fallback_reason = f"socket: {e}"
                    break
            try:
                return sum(self.wire.end_offsets(topic, partitions).values())
            except (OSError, struct.error) as e:
                self.close()
                if attempt == 2:
                    self.fallback_reason = f"ListOffsets v1 failed ({e}); used kcat -Q"
                    log(self.fallback_reason)
        self.kcat_counts += 1
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
    """Our own kafka.sh broker in a private KAFKA_STATE_DIR, or an external one. The
    mock cluster's counterpart is mockbroker.MockBroker (same methods)."""

    name = "kafka"

    def __init__(self, bootstrap=None):
        self.external = bootstrap
        self.bootstrap = bootstrap
        self.parent = None
        self.env = None
        self.version = "external (unknown)"
        self.pid = None
        self.process = None     # what cpu_seconds() measures, for results.json

    def describe(self):
        if self.external:
            return f"external broker at {self.external} (--bootstrap); its CPU is not measured"
        return (f"Apache Kafka {self.version}, one KRaft node (tests/kafka/kafka.sh, own "
                f"KAFKA_STATE_DIR); broker CPU = its JVM's user+sys")

    def find_jvm(self):
        """The broker's JVM, whose CPU is reported. kafka.sh writes the PID of
        `setsid java ... kafka.Kafka PROPS &` to kafka.pid; setsid only forks when it is
        a process-group leader, which a background child of a non-interactive shell
        never is, so that PID is the JVM's (checked here: its cmdline must run
        kafka.Kafka). Should it ever be a wrapper, the JVM is looked for among its
        descendants. None if not found (the broker CPU is then left out)."""
        try:
            pid = int(Path(self.env["KAFKA_STATE_DIR"], "kafka.pid").read_text())
        except (OSError, ValueError):
            return None

        def is_jvm(p):
            argv = proc_cmdline(p)
            return bool(argv) and b"kafka.Kafka" in argv and os.path.basename(argv[0]) == b"java"

        if is_jvm(pid):
            return pid
        for d in Path("/proc").iterdir():
            if not d.name.isdigit() or not is_jvm(int(d.name)):
                continue
            q = int(d.name)
            while q and q != 1:         # a descendant of the PID in kafka.pid?
                q = proc_ppid(q)
                if q == pid:
                    return int(d.name)
        log(f"the broker's JVM was not found (kafka.pid: {pid}); its CPU is not reported")
        return None

    def _note_process(self):
        self.pid = self.find_jvm()
        if self.pid:
            argv = proc_cmdline(self.pid)
            self.process = {"pid": self.pid, "exe": argv[0].decode(errors="replace"),
                            "main_class": "kafka.Kafka"}
        else:
            self.process = None

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
        self._note_process()
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

    def sys_seconds(self):
        """The JVM's system time so far: the kernel's work for it (page cache writes,
        sockets), which varied from 0.2 to 0.9 CPU-s per GiB between runs minutes apart
        here, with the same producer; reported per run."""
        split = proc_cpu_split(self.pid) if self.pid else None
        return split[1] if split else None

    def down(self):
        """Backlog mode: stops the broker, keeping its data (`kafka.sh stop --keep-data`:
        SIGTERM, a controlled shutdown, then the JVM is gone)."""
        if self.external:
            raise BenchError("backlog mode needs a broker of its own: not with --bootstrap")
        run_text(["bash", str(KAFKA_SH), "stop", "--keep-data"], timeout=180, env=self.env)
        self.pid = None

    def up(self):
        """Starts the stopped broker again (same state dir, same ports); returns once it
        answers a metadata request listing itself (kafka.sh's wait_ready)."""
        run_text(["bash", str(KAFKA_SH), "start"], timeout=900, env=self.env)
        self._note_process()

    def tap(self, topic, partitions, workdir, logpath):
        """The mock's tap; a real broker keeps the topic and needs none."""
        return None

    def create_topic(self, name, partitions, counter, configs=None, logdir=None):
        if self.external or configs:
            w = KafkaWire(self.bootstrap)
            try:
                w.create_topic(name, partitions, configs)
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

    def jit_seconds(self):
        """user+sys so far of the broker JVM's JIT compiler threads (HotSpot names them
        "C1 CompilerThre..." and "C2 CompilerThre..."), or None without a JVM."""
        if not self.pid:
            return None
        total = 0.0
        try:
            tasks = list(Path(f"/proc/{self.pid}/task").iterdir())
        except OSError:
            return None
        for t in tasks:
            try:
                if not (t / "comm").read_text().startswith(("C1 Compiler", "C2 Compiler")):
                    continue
            except OSError:
                continue                # a compiler thread that just ended
            total += proc_cpu_seconds(self.pid, t / "stat") or 0.0
        return total

    def warm_up(self, workdir, corpus_paths, nbytes, rounds, settings=None):
        """Produces the first nbytes of each corpus (kcat, idempotent, zstd, plus the
        producer settings every contender gets, so that the broker compiles for the
        batches the measured runs send) into a topic
        of its own, round after round, until the broker's JIT compilers are quiet (under
        JIT_QUIET_S of CPU in a round) or `rounds` rounds are done. Measured: after one
        round of 100 MB the compilers still used 0.2-1.3 CPU-s in each of the next eight
        1 GiB runs, CPU taken from whichever contender was running, most from one that
        uses both cores (ringtail) rather than one thread (kcat); with 1 GiB of each of
        three corpora per round they were quiet (< 0.1 s) from the fifth round on."""
        parts = []
        for i, path in enumerate(corpus_paths):
            src = Path(path)
            if src.stat().st_size > nbytes:
                part = workdir / f"warmup-{i}.log"
                with open(src, "rb") as f, open(part, "wb") as out:
                    left = nbytes
                    while left > 0 and (block := f.read(min(left, 1 << 20))):
                        left -= len(block)
                        if left <= 0:
                            block = block[:block.rfind(b"\n") + 1]
                        out.write(block)
                    out.write(b"" if out.tell() else b"warm-up\n")
                src = part
            parts.append(src)
        t0 = time.monotonic()
        jit = []
        for r in range(rounds):
            before = self.jit_seconds()
            for src in parts:
                run_text(Kcat(settings or {}).argv(self.bootstrap, "bench-warmup", src, None),
                         timeout=600)
            after = self.jit_seconds()
            if before is None or after is None:
                break                   # no JVM to watch: one round
            jit.append(after - before)
            if jit[-1] < JIT_QUIET_S:
                break
        produced = sum(p.stat().st_size for p in parts) * max(1, len(jit))
        quiet = "" if not jit else (
            f"; JIT compilers' CPU per round: {', '.join(f'{j:.2f}' for j in jit)} s"
            + ("" if jit[-1] < JIT_QUIET_S else f" (not yet under {JIT_QUIET_S} s)"))
        log(f"warm-up: {produced / 1e6:.0f} MB produced in {time.monotonic() - t0:.1f} s, "
            f"{max(1, len(jit))} round(s){quiet}")
        self.warmup = {"rounds": max(1, len(jit)), "max_rounds": rounds,
                       "mb": round(produced / 1e6),
                       "jit_seconds": [round(j, 2) for j in jit]}
        for p in parts:
            if p.parent == workdir:
                p.unlink()


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
        """Throughput mode: the command that ships the file corpus_path (complete before
        the start) into topic. workdir is the run's own scratch directory."""
        raise NotImplementedError

    def live_argv(self, bootstrap, topic, path, workdir):
        """Live-append mode: the command that follows path, a file that already holds
        one line when the command starts and keeps growing by appends, shipping every
        line into topic until it is stopped. Either one argv (a list of str), or a
        pipeline: a list of argvs, stdout of each into stdin of the next; the last
        one is the contender whose CPU and RSS are measured, the others are feeders
        (their CPU is reported apart). Stopping: a pipeline's feeders get SIGTERM and
        the last stage must exit on end of input; one argv gets SIGTERM. The default
        is argv(): right for tailers (ringtail, rsyslog's imfile, syslog-ng's file()
        source, Connect's FileStreamSource follow the file they read)."""
        return self.argv(bootstrap, topic, path, workdir)

    def backlog_argv(self, bootstrap, topic, corpus_path, workdir):
        """Backlog mode: the command that ships the complete file corpus_path, started
        while the broker is down. Default: argv()."""
        return self.argv(bootstrap, topic, corpus_path, workdir)

    def glob_argv(self, bootstrap, topic, glob, workdir):
        """Idle mode: the command that follows every file matching glob (an absolute
        'DIR/*.log'; 10,000 files of one line each exist when it starts) into topic,
        stopped with SIGTERM. None: not available, the report says "does not follow a
        glob". Modules of other contenders override it (rsyslog imfile and
        syslog-ng wildcard-file() take a glob; Connect's FileStreamSource does not)."""
        return None


def is_pipeline(argv):
    """live_argv() gave a pipeline (a list of argvs), not one argv."""
    return bool(argv) and isinstance(argv[0], (list, tuple))


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
            self.bin, self.why_bin = Path(binary).absolute(), "--ringtail"
        elif os.environ.get("RINGTAIL_BIN"):
            # Absolute: contenders run in their own work directories.
            self.bin = Path(os.environ["RINGTAIL_BIN"]).absolute()
            self.why_bin = "RINGTAIL_BIN"
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
             "offset.flush.interval.ms": "10000",
             # empty: no REST API, so parallel runs never compete for 127.0.0.1:8083
             "listeners": ""}
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

    def glob_argv(self, bootstrap, topic, glob, workdir):
        return self.argv(bootstrap, topic, glob, workdir)     # files=GLOB


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

    def backlog_argv(self, bootstrap, topic, corpus_path, workdir):
        """-E: kcat's error callback exits on ALL_BROKERS_DOWN ("All broker connections
        are down: terminating", exit 1) unless told not to exit on non-fatal errors."""
        a = self.argv(bootstrap, topic, corpus_path, workdir)
        return a[:2] + ["-E"] + a[2:]

    def live_argv(self, bootstrap, topic, path, workdir):
        """kcat cannot follow a file: GNU tail does (-F: by name, from byte 1), into
        kcat -P on stdin (one message per line). Two processes, so that kcat's CPU is
        measured without tail's; tail gets SIGTERM at the end and kcat exits at EOF
        once its messages are acknowledged."""
        k = ["kcat", "-P", "-b", bootstrap, "-t", topic]
        for key, v in self.settings().items():
            k += ["-X", f"{key}={v}"]
        return [["tail", "-c", "+1", "-F", str(path)], k]


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


def consume_argv(bootstrap, topic, fmt="%s\n"):
    return ["kcat", "-C", "-b", bootstrap, "-t", topic, "-o", "beginning", "-e", "-q",
            "-f", fmt]


def consume_to_file(bootstrap, topic, fmt, out, logf):
    """The whole topic, each record as kcat's -f fmt says, into the file out."""
    with open(out, "wb") as f:
        k = Procs.popen(consume_argv(bootstrap, topic, fmt), stdout=f, stderr=logf)
        if k.wait() != 0:
            raise BenchError(f"kcat -C exited {k.returncode} (see {logf.name})")
        Procs.forget(k)


def consume_values(broker, tap, topic, out, logf):
    """The topic's record values, one per line, into the file out: from the mock's tap
    (mockbroker.Tap, which raises NotVerified if it missed records), or consumed from
    Kafka with kcat. Returns the tap's summary, or None."""
    if tap:
        return tap.consume(out)
    consume_to_file(broker.bootstrap, topic, "%s\n", out, logf)
    return None


def verify(broker, tap, topic, meta, expected, tmpdir, logf):
    """Consumes the whole topic into a file and compares its multiset digest with the
    corpus'. Returns a dict with ok, consumed lines and bytes, seconds, and on a mismatch
    lost / duplicated / foreign line counts. (Into a file, not a pipe: a Python reader
    on the pipe made kcat stall, 7-9 s per GiB instead of 3.5.) Raises NotVerified if
    the topic's content cannot be known (the mock's tap missed records)."""
    t0 = time.monotonic()
    out = Path(tmpdir) / "topic.out"
    try:
        tap_summary = consume_values(broker, tap, topic, out, logf)
        t1 = time.monotonic()
        d = multiset_digest(out)
        res = {"consumed_lines": d["lines"], "consumed_bytes": d["bytes"],
               "consume_s": round(t1 - t0, 3), "hash_s": round(time.monotonic() - t1, 3)}
        if tap_summary:
            res["tap"] = tap_summary
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


DIAGNOSIS = ("lost_lines", "duplicated_lines", "extra_copies", "foreign_lines")


def not_exactly_once(d, consumed, expected):
    """The status of a run whose digest differs: diagnose()'s counts (in d), else the
    line counts; expected says how many lines there should be, e.g. '100 written'."""
    parts = [f"{d[k]} {k.replace('_', ' ')}" for k in DIAGNOSIS if d.get(k)]
    return "NOT exactly once: " + (", ".join(parts) or
                                   f"{consumed} lines consumed, {expected}, digest differs")


def delivered_status(res, contender, logpath):
    """The status of a run whose every line arrived exactly once: "ok", unless the
    contender exited with a code it should not have, or had to be killed (stop_note)."""
    if res["exit_code"] not in getattr(contender, "sigterm_exit_codes", (0,)):  # JVM: 143
        return f"delivered exactly once, but exited {res['exit_code']} (see {logpath})"
    return res.get("stop_note") or "ok"


def check_exactly_once(res, contender, broker, tap, topic, meta, expected, workdir, logf,
                       logpath):
    """Throughput and backlog: verify() the topic against the corpus and set the run's
    status from it. Returns verify()'s dict (also res["verify"]), or None if the topic's
    content could not be known (status "not verified: ...")."""
    try:
        v = verify(broker, tap, topic, meta, expected, workdir, logf)
    except NotVerified as e:
        res["status"] = f"not verified: {e}"
        return None
    res["verify"] = v
    if not v["ok"]:
        res["status"] = not_exactly_once(v, v["consumed_lines"], f"{meta['lines']} expected")
    else:
        res["status"] = delivered_status(res, contender, logpath)
    return v


# ------------------------------------------------------------------------ one run

STOP_GRACE_S = 60


def read_through(path):
    """Reads a file once, so that it is in the page cache for every contender."""
    with open(path, "rb") as f:
        while f.read(8 << 20):
            pass


def new_run(res, broker, counter, topic, partitions, logdir, configs=None, corpus_path=None):
    """What every run starts with: its log file (returned, and named in res["log"]), its
    new topic, for a run on a corpus file that file read once, and then every dirty
    page written out (sync): the broker's data of the runs before, the warm-up's and
    the consumed copies would otherwise be written back by the kernel's flusher
    threads during the run, on the same cores, 30 s after they were written."""
    logpath = logdir / f"{topic}.log"
    res["log"] = str(logpath)
    broker.create_topic(topic, partitions, counter, configs=configs, logdir=logdir)
    if corpus_path:
        read_through(corpus_path)
    os.sync()
    return logpath


@contextlib.contextmanager
def tapped(broker, topic, partitions, workdir, logdir):
    """The broker's tap on the topic for the run (the mock's; None with Kafka), closed
    at the end whatever happens."""
    tap = broker.tap(topic, partitions, workdir, logdir / f"{topic}.tap.log")
    try:
        yield tap
    finally:
        if tap:
            tap.close()


class Running:
    """A contender started for a run: one process, or (live mode) a pipeline whose last
    stage is the contender (measured) and whose other stages are feeders (their CPU is
    kept apart). Every stage is in Procs, stopped by PID; as a context manager, any
    stage still running at the end of the block (an error) is killed."""

    def __init__(self, argv, workdir, logf):
        stages = [list(s) for s in argv] if is_pipeline(argv) else [list(argv)]
        self.procs = []
        prev = subprocess.DEVNULL
        for i, st in enumerate(stages):
            last = i == len(stages) - 1
            p = Procs.popen(st, cwd=workdir, stdin=prev,
                            stdout=logf if last else subprocess.PIPE, stderr=logf,
                            start_new_session=True)
            if prev is not subprocess.DEVNULL:
                prev.close()            # the reader's end stays with the next stage only
            prev = p.stdout if not last else None
            self.procs.append(p)
        self.main = self.procs[-1]
        self.feeders = self.procs[:-1]
        self.exits = {}                 # pid -> (status, rusage)
        self.peak = 0.0

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if any(p.returncode is None for p in self.procs):
            Procs.kill_all()
        return False

    def sample(self):
        hwm = proc_hwm_mib(self.main.pid)
        if hwm is not None and hwm > self.peak:
            self.peak = hwm

    def _reap(self, p, block=False):
        if p.pid in self.exits:
            return True
        if block:
            _, status, ru = os.wait4(p.pid, 0)
            p.returncode = os.waitstatus_to_exitcode(status)
            Procs.forget(p)
            self.exits[p.pid] = (status, ru)
            return True
        got = wait4_nohang(p)
        if got:
            self.exits[p.pid] = got
        return got is not None

    def exited(self):
        """The contender (last stage) has exited (reaped: its rusage is kept)."""
        return self._reap(self.main)

    def cpu(self):
        return proc_cpu_seconds(self.main.pid)

    def cpu_total(self):
        """user+sys of the contender up to its exit (wait4()'s rusage)."""
        ru = self.exits[self.main.pid][1]
        return ru.ru_utime + ru.ru_stime

    def feeders_cpu(self):
        vals = [proc_cpu_seconds(p.pid) for p in self.feeders]
        return sum(vals) if vals and None not in vals else None

    def stop(self, terminate=True):
        """SIGTERM to the feeders (the contender then ends at EOF), or to the contender
        (not with terminate=False: one that exits by itself); SIGKILL after STOP_GRACE_S.
        Returns a note if it had to be killed. (os.kill, not Popen.send_signal(): that one
        reaps a child that just exited, and its rusage would be lost. Unreaped, the PID
        cannot be reused.)"""
        note = None
        targets = (self.feeders or [self.main]) if terminate else []
        for p in targets:
            if not self._reap(p):
                os.kill(p.pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE_S
        for p in self.procs:
            while not self._reap(p):
                if p is self.main:
                    self.sample()
                if time.monotonic() > deadline:
                    os.kill(p.pid, signal.SIGKILL)
                    self._reap(p, block=True)
                    note = f"did not stop within {STOP_GRACE_S} s"
                    break
                time.sleep(0.01)
        return note

    def results(self, res):
        """Exit code, CPU to exit and ru_maxrss of the contender; feeders' CPU."""
        status, ru = self.exits[self.main.pid]
        res["exit_code"] = self.main.returncode
        res["cpu_total_s"] = round(ru.ru_utime + ru.ru_stime, 3)
        res["peak_rss_mib"] = round(self.peak, 1)
        # ru_maxrss also counts the harness' own pages the child had before exec (Linux
        # keeps the pre-exec hiwater in signal->maxrss), so it is only kept for reference.
        res["ru_maxrss_mib"] = round(ru.ru_maxrss / 1024, 1)
        if self.feeders:
            res["feeders"] = [{"argv": p.args, "exit_code": p.returncode,
                               "cpu_total_s": round(self.exits[p.pid][1].ru_utime +
                                                    self.exits[p.pid][1].ru_stime, 3)}
                              for p in self.feeders]


def wait_for_count(counter, topic, partitions, want, deadline, running, retry_errors=False,
                   late="timed out: {n} of {want} lines in Kafka"):
    """Polls the end offsets every POLL_S until they sum to want. Returns (count, the
    monotonic time it was reached or None, why not). retry_errors: a failed poll (no
    leader yet after a broker restart) counts as no progress. late: the reason given at
    the deadline, with {n} and {want}."""
    n = 0
    while True:
        running.sample()
        try:
            n = counter.count(topic, partitions)
        except BenchError:
            if not retry_errors:
                raise
        if n >= want:
            return n, time.monotonic(), None
        if running.exited():
            return n, None, f"exited {running.main.returncode} with {n} of {want} lines in Kafka"
        if time.monotonic() > deadline:
            return n, None, late.format(n=n, want=want)
        time.sleep(POLL_S)


def sleep_sampling(until, running, step, also_stop=None):
    """Sleeps until `until`, sampling the contender's VmHWM every step; returns early if
    it exits or also_stop() says so."""
    while (left := until - time.monotonic()) > 0:
        running.sample()
        if running.exited() or (also_stop and also_stop()):
            return
        time.sleep(min(step, left))


def broker_counters(broker):
    """The broker's CPU so far, keyed as a run's result reports the difference: all of
    it, its system time and its JIT compilers' (None where not known)."""
    return {"broker_cpu_s": broker.cpu_seconds(), "broker_sys_s": broker.sys_seconds(),
            "broker_jit_s": broker.jit_seconds()}


def run_one(contender, broker, counter, meta, partitions, topic, workdir, logdir, timeout,
            expected_digest):
    """Throughput mode: runs one contender on one topic; returns its result dict."""
    res = {"contender": contender.name, "topic": topic, "status": "failed"}
    logpath = new_run(res, broker, counter, topic, partitions, logdir,
                      corpus_path=meta["path"])
    argv = contender.argv(broker.bootstrap, topic, meta["path"], workdir)
    with tapped(broker, topic, partitions, workdir, logdir) as tap:
        return run_one_tapped(contender, broker, counter, meta, partitions, topic, workdir,
                              timeout, expected_digest, res, logpath, argv, tap)


def run_one_tapped(contender, broker, counter, meta, partitions, topic, workdir, timeout,
                   expected_digest, res, logpath, argv, tap):
    res["argv"] = argv
    lines = meta["lines"]
    delivered = 0
    cpu_at_delivery = None
    with open(logpath, "wb") as logf:
        own0 = time.process_time()
        broker0 = broker_counters(broker)
        t0 = time.monotonic()
        with Running(argv, workdir, logf) as run:
            t_done = None
            deadline = t0 + timeout
            while True:
                run.sample()   # VmHWM while the contender lives (see peak RSS in README)
                exited = run.exited()
                now = time.monotonic()
                if exited:
                    delivered = counter.count(topic, partitions)
                    if delivered >= lines:
                        t_done = now
                    break
                delivered = counter.count(topic, partitions)
                if delivered >= lines:
                    t_done = time.monotonic()
                    cpu_at_delivery = run.cpu()
                    break
                if now > deadline:
                    res["status"] = f"timed out after {timeout:.0f} s: {delivered} of {lines} lines"
                    break
                time.sleep(POLL_S)
            broker1 = broker_counters(broker)
            own1 = time.process_time()
            if tap:
                res["tap_cpu_s"] = tap.cpu_seconds()
            if not exited:
                # A contender that exits by itself once done (kcat) is given the time.
                note = run.stop(terminate=not (contender.exits_when_done and
                                               t_done is not None))
                if note:
                    res["status"] = note
    run.results(res)
    res["delivered_at_stop"] = delivered
    res["harness_cpu_s"] = round(own1 - own0, 3)
    res.update({k: round(broker1[k] - v, 2) for k, v in broker0.items()
                if v is not None and broker1[k] is not None})
    if t_done is None:
        if res["status"] == "failed":
            res["status"] = (f"exited {run.main.returncode} with {delivered} of {lines} lines "
                             f"delivered (log: {logpath})")
        return res
    wall = t_done - t0
    cpu = cpu_at_delivery if cpu_at_delivery is not None else run.cpu_total()
    res.update({"wall_s": round(wall, 3), "cpu_s": round(cpu, 3),
                "mb_s": round(meta["bytes"] / 1e6 / wall, 2),
                "lines_s": round(lines / wall),
                "cpu_s_per_gib": round(cpu / (meta["bytes"] / GIB), 2)})
    final = counter.count(topic, partitions)
    res["final_lines"] = final
    with open(logpath, "ab") as logf:
        check_exactly_once(res, contender, broker, tap, topic, meta, expected_digest, workdir,
                           logf, logpath)
    return res


# ------------------------------------------------------------------------ live and idle

LIVE_TOPIC_CONFIGS = {"message.timestamp.type": "LogAppendTime"}
# kcat -P reads its input with blocking fread()s of 1024 bytes (kcat 1.7.1, measured:
# from a pipe, lines reach Kafka only as the stream passes each multiple of 1024 bytes),
# so a line whose end is not at such a multiple waits for more input, or for EOF. So the
# file's first line is 1024 bytes long, and the closing line written after the writer
# stops pads the file to a multiple of 1024 bytes: otherwise kcat would sit on them
# until tail exits. During the run a line waits at most for the writer's next batch.
KCAT_READ = 1024
LIVE_SAMPLE_S = 0.1         # VmHWM and liveness while the writer runs
IDLE_SAMPLE_S = 1.0         # the same during the idle window (the harness idles too)
READY_TIMEOUT_S = 180       # start-up: until the file's first line (or file) is in Kafka
TS_KEY = operator.itemgetter(slice(0, 30))      # b"<%T: 13 digits> <stamp µs: 16 digits>"
TS_VALUE = operator.itemgetter(slice(14, None))  # the line as written


def live_expected(batches_path, sentinel, closer):
    """Multiset digest of every line the writer wrote (rebuilt from its batch log and
    the pool, as appender.py built them) plus the first and the closing line; hash() of
    this process."""
    info = json.loads(Path(batches_path).read_text())
    pool, offsets = appender.load_pool(info["pool"], info["pool_lines"])
    if len(offsets) - 1 != info["pool_lines"]:
        raise BenchError(f"the writer's pool changed: {info['pool']}")
    total = hash(sentinel) + hash(closer)
    lines, nbytes = 2, len(sentinel) + len(closer) + 2
    for us, nb, first, n in info["batches"]:
        data = appender.batch_bytes(pool, offsets, first, n).replace(
            appender.PLACEHOLDER, appender.stamp(us, nb))
        parts = data.split(b"\n")
        parts.pop()
        total += sum(map(hash, parts))
        lines += len(parts)
        nbytes += len(data)
    return {"lines": lines, "bytes": nbytes, "hash": total % (1 << 64)}, info


def write_live_expected(batches_path, sentinel, closer, out):
    """The lines written, as a file (only to diagnose a failed run)."""
    info = json.loads(Path(batches_path).read_text())
    pool, offsets = appender.load_pool(info["pool"], info["pool_lines"])
    with open(out, "wb") as f:
        f.write(sentinel + b"\n")
        for us, nb, first, n in info["batches"]:
            f.write(appender.batch_bytes(pool, offsets, first, n).replace(
                appender.PLACEHOLDER, appender.stamp(us, nb)))
        f.write(closer + b"\n")


def read_live_topic(path):
    """From kcat's '%T %s\\n' output: the multiset digest of the values (the prefix
    '<13-digit timestamp> ' cut off) and a Counter of (record timestamp, line stamp)
    prefixes. Slicing, hashing and counting run in C (itemgetter, map, Counter)."""
    keys = collections.Counter()
    total = lines = nbytes = 0
    rest = b""
    with open(path, "rb", buffering=0) as f:
        while True:
            block = f.read(1 << 20)
            if block:
                block = rest + block
                cut = block.rfind(b"\n") + 1
                rest = block[cut:]
                parts = block[:cut].split(b"\n")
                parts.pop()
            elif rest:
                parts, rest = [rest], b""
            else:
                break
            keys.update(map(TS_KEY, parts))
            vals = list(map(TS_VALUE, parts))
            total += sum(map(hash, vals))
            nbytes += sum(map(len, vals)) + len(vals)
            lines += len(parts)
    return {"lines": lines, "bytes": nbytes, "hash": total % (1 << 64)}, keys


def latency_stats(keys, steady_from_us):
    """p50, p99, max (and min) of record timestamp (ms) - line stamp (µs), in ms, over
    the lines stamped at or after steady_from_us; nearest-rank percentiles."""
    samples = []
    malformed = 0
    for key, c in keys.items():
        if len(key) != 30 or key[13:14] != b" " or not key[:13].isdigit():
            malformed += c
            continue
        stamp = key[14:30]
        if not stamp.isdigit():
            continue                    # the first line (no stamp)
        us = int(stamp)
        if us >= steady_from_us:
            samples.append((int(key[:13]) * 1000 - us, c))
    samples.sort()
    n = sum(c for _, c in samples)
    out = {"steady_lines": n, "malformed_lines": malformed}
    if not n:
        return out

    def pct(q):
        rank = max(1, math.ceil(q * n))
        acc = 0
        for lat, c in samples:
            acc += c
            if acc >= rank:
                return lat
        return samples[-1][0]

    out.update({"p50_ms": round(pct(0.50) / 1000, 1), "p99_ms": round(pct(0.99) / 1000, 1),
                "max_ms": round(samples[-1][0] / 1000, 1),
                "min_ms": round(samples[0][0] / 1000, 1)})
    return out


def exactly_once_status(got, expected, diag_fn, tmpdir):
    """(ok, status text) comparing multiset digests; on a mismatch diag_fn() gives the
    (expected file, consumed file) to count lost, duplicated and foreign lines."""
    if got == expected:
        return True, "ok"
    exp_file, got_file = diag_fn()
    try:
        d = diagnose(exp_file, got_file, tmpdir)
    finally:
        for f in (exp_file, got_file):
            Path(f).unlink(missing_ok=True)
    return False, not_exactly_once(d, got["lines"], f"{expected['lines']} written")


def verify_written(res, workdir, read, diag_files):
    """Live and idle: the topic against the lines written. read(out) consumes the topic
    into the file out and returns (its multiset digest, the lines written's);
    diag_files(out) writes the files diagnose() compares if they differ. Sets
    consumed_lines and verify_s in res; returns exactly_once_status()'s (ok, status)."""
    t_v = time.monotonic()
    out = workdir / "topic.out"
    try:
        got, expected = read(out)
        res["consumed_lines"] = got["lines"]
        ok_status = exactly_once_status(got, expected, lambda: diag_files(out), workdir)
    finally:
        out.unlink(missing_ok=True)
    res["verify_s"] = round(time.monotonic() - t_v, 3)
    return ok_status


def padded_line(text, size):
    """text, padded with '.' to size bytes with the newline that follows it."""
    b = text.encode()
    if len(b) >= size:
        raise BenchError(f"line '{text}' is longer than {size - 1} bytes")
    return b + b"." * (size - 1 - len(b))


def run_live(contender, broker, counter, a, rate, pool_path, topic, workdir, logdir):
    """One contender following one file that the writer (appender.py) grows at rate
    lines/s for a.duration s. Returns its result dict."""
    res = {"contender": contender.name, "topic": topic, "rate": rate, "status": "failed"}
    logpath = new_run(res, broker, counter, topic, a.partitions, logdir,
                      configs=LIVE_TOPIC_CONFIGS)
    path = workdir / "live.log"
    sentinel = padded_line(f"ringtail-bench {topic}: the first line, there before the start",
                           KCAT_READ)
    closer = None
    path.write_bytes(sentinel + b"\n")
    argv = contender.live_argv(broker.bootstrap, topic, path, workdir)
    res["argv"] = argv
    batches_path = workdir / "batches.json"
    with open(logpath, "wb") as logf:
        t0 = time.monotonic()
        t_all = None
        with Running(argv, workdir, logf) as run:
            _, t_ready, why = wait_for_count(counter, topic, a.partitions, 1,
                                             t0 + READY_TIMEOUT_S, run)
            if t_ready is None:
                res["status"] = f"start-up: the file's first line not shipped: {why}"
                res["stop_note"] = run.stop()
                run.results(res)
                return res
            res["ready_s"] = round(t_ready - t0, 3)
            w = Procs.popen([sys.executable, str(APPENDER), "--path", str(path),
                             "--pool", str(pool_path), "--rate", str(rate),
                             "--duration", str(a.duration), "--batch-ms", str(a.batch_ms),
                             "--batches", str(batches_path)],
                            stdout=subprocess.PIPE, stderr=logf)
            first = len(sentinel) + 1
            deadline = time.monotonic() + 30
            while os.stat(path).st_size <= first and w.poll() is None:
                if time.monotonic() > deadline:
                    raise BenchError("the writer did not start within 30 s")
                time.sleep(0.0005)
            tw0 = time.monotonic()
            sleep_sampling(tw0 + a.skip, run, LIVE_SAMPLE_S, lambda: w.poll() is not None)
            c0, f0, b0, ts0 = run.cpu(), run.feeders_cpu(), broker.cpu_seconds(), time.monotonic()
            own0 = time.process_time()
            while w.poll() is None and not run.exited():
                run.sample()
                time.sleep(LIVE_SAMPLE_S)
            c1, f1, b1, ts1 = run.cpu(), run.feeders_cpu(), broker.cpu_seconds(), time.monotonic()
            own1 = time.process_time()
            if w.wait() != 0:
                raise BenchError(f"the writer exited {w.returncode} (see {logpath})")
            wsum = json.loads(w.stdout.read())
            w.stdout.close()
            Procs.forget(w)
            res["writer"] = wsum
            res["lines_written"] = wsum["lines"]
            if run.exited():
                res["status"] = (f"exited {run.main.returncode} while the writer ran "
                                 f"(log: {logpath})")
                run.stop()
                run.results(res)
                return res
            win = ts1 - ts0
            res["steady_window_s"] = round(win, 3)
            res["cpu_pct"] = round(100 * (c1 - c0) / win, 1) if None not in (c0, c1) else None
            if f0 is not None and f1 is not None:
                res["feeders_cpu_pct"] = round(100 * (f1 - f0) / win, 1)
            if b0 is not None and b1 is not None:
                res["broker_cpu_pct"] = round(100 * (b1 - b0) / win, 1)
            res["harness_cpu_pct"] = round(100 * (own1 - own0) / win, 1)
            text = f"ringtail-bench {topic}: the closing line"
            pad = KCAT_READ - os.stat(path).st_size % KCAT_READ
            while pad <= len(text) + 1:
                pad += KCAT_READ
            closer = padded_line(text, pad)
            with open(path, "ab") as f:
                f.write(closer + b"\n")
            want = wsum["lines"] + 2
            n, t_all, why = wait_for_count(counter, topic, a.partitions, want,
                                           ts1 + a.timeout, run)
            res["delivered_at_stop"] = n
            if t_all is not None:
                res["drain_s"] = round(max(0.0, t_all - ts1), 3)
            res["stop_note"] = run.stop()
        run.results(res)
        if t_all is None:
            res["status"] = f"not all lines delivered: {why} (log: {logpath})"
            return res

        def read(out):
            consume_to_file(broker.bootstrap, topic, "%T %s\n", out, logf)
            got, keys = read_live_topic(out)
            expected, info = live_expected(batches_path, sentinel, closer)
            steady_from = info["batches"][0][0] + int(a.skip * 1e6) if info["batches"] else 0
            res.update(latency_stats(keys, steady_from))
            return got, expected

        def files(out):
            exp, vals = workdir / "expected.lines", workdir / "values.lines"
            write_live_expected(batches_path, sentinel, closer, exp)
            with open(out, "rb") as f, open(vals, "wb") as g:
                for line in f:
                    g.write(line[14:])
            return exp, vals

        ok, status = verify_written(res, workdir, read, files)
    if not ok:
        res["status"] = status
        for k in ("p50_ms", "p99_ms", "max_ms", "min_ms"):
            res.pop(k, None)            # not shown as latency
    elif res.get("malformed_lines"):
        res["status"] = f"{res['malformed_lines']} records without a 13-digit timestamp"
    else:
        res["status"] = delivered_status(res, contender, logpath)
    return res


def run_idle(contender, broker, counter, a, pool, topic, workdir, logdir):
    """One contender following a.files files of one line each (glob DIR/*.log): time
    until all are in Kafka, then CPU over a.idle_seconds of nothing happening."""
    res = {"contender": contender.name, "topic": topic, "files": a.files, "status": "failed"}
    logpath = new_run(res, broker, counter, topic, a.partitions, logdir)
    with tapped(broker, topic, a.partitions, workdir, logdir) as tap:
        return run_idle_tapped(contender, broker, counter, a, pool, topic, workdir, res,
                               logpath, tap)


def run_idle_tapped(contender, broker, counter, a, pool, topic, workdir, res, logpath, tap):
    d = workdir / "files"
    d.mkdir()
    total = nbytes = 0
    for i in range(a.files):
        line = b"f%07d " % i + pool[i % len(pool)]
        (d / f"f{i:07d}.log").write_bytes(line)
        total += hash(line[:-1])
        nbytes += len(line)
    expected = {"lines": a.files, "bytes": nbytes, "hash": total % (1 << 64)}
    argv = contender.glob_argv(broker.bootstrap, topic, str(d / "*.log"), workdir)
    res["argv"] = argv
    with open(logpath, "wb") as logf:
        t0 = time.monotonic()
        t_all = None
        with Running(argv, workdir, logf) as run:
            n, t_all, why = wait_for_count(counter, topic, a.partitions, a.files,
                                           t0 + a.timeout, run)
            if t_all is not None:
                c0, b0, ts0 = run.cpu(), broker.cpu_seconds(), time.monotonic()
                own0 = time.process_time()
                res["discovery_s"] = round(t_all - t0, 3)
                res["discovery_cpu_s"] = round(c0, 3) if c0 is not None else None
                sleep_sampling(ts0 + a.idle_seconds, run, IDLE_SAMPLE_S)
                c1, b1, ts1 = run.cpu(), broker.cpu_seconds(), time.monotonic()
                own1 = time.process_time()
                if not run.exited():
                    win = ts1 - ts0
                    res["idle_window_s"] = round(win, 3)
                    res["idle_cpu_pct"] = round(100 * (c1 - c0) / win, 2)
                    res["idle_cpu_s"] = round(c1 - c0, 3)
                    if b0 is not None and b1 is not None:
                        res["broker_cpu_pct"] = round(100 * (b1 - b0) / win, 1)
                    res["harness_cpu_pct"] = round(100 * (own1 - own0) / win, 2)
                    n = counter.count(topic, a.partitions)
            res["delivered_at_stop"] = n
            res["stop_note"] = run.stop()
        run.results(res)
        if t_all is None:
            res["status"] = f"not all files' lines delivered: {why} (log: {logpath})"
            return res
        if "idle_cpu_pct" not in res:
            res["status"] = f"exited {res['exit_code']} in the idle window (log: {logpath})"
            return res

        def read(out):
            consume_values(broker, tap, topic, out, logf)
            return corpus.multiset_digest(out), expected

        def files(out):
            exp = workdir / "expected.lines"
            with open(exp, "wb") as f:
                for p in sorted(d.iterdir()):
                    f.write(p.read_bytes())
            return exp, out

        try:
            ok, status = verify_written(res, workdir, read, files)
        except NotVerified as e:
            res["status"] = f"not verified: {e}"
            res.pop("idle_cpu_pct", None)
            return res
    if not ok:
        res["status"] = status
        res.pop("idle_cpu_pct", None)
    else:
        res["status"] = delivered_status(res, contender, logpath)
    return res


# ------------------------------------------------------------------------ backlog

BACKLOG_SAMPLE_S = 0.1      # VmHWM/VmRSS while the broker is down
BACKLOG_SERIES_S = 1.0      # one (time, VmRSS) point per second kept in results.json


def run_backlog(contender, broker, counter, a, meta, topic, workdir, logdir, expected):
    """One contender started on the complete corpus while the broker is down: its memory
    over a.down_seconds, then the time to full delivery once the broker is back, and
    exactly once. Returns its result dict."""
    res = {"contender": contender.name, "topic": topic, "status": "failed",
           "down_seconds": a.down_seconds}
    logpath = new_run(res, broker, counter, topic, a.partitions, logdir,
                      corpus_path=meta["path"])
    with tapped(broker, topic, a.partitions, workdir, logdir) as tap:
        return run_backlog_tapped(contender, broker, counter, a, meta, topic, workdir,
                                  expected, res, logpath, tap)


def run_backlog_tapped(contender, broker, counter, a, meta, topic, workdir, expected, res,
                       logpath, tap):
    lines = meta["lines"]
    argv = contender.backlog_argv(broker.bootstrap, topic, meta["path"], workdir)
    res["argv"] = argv
    with open(logpath, "wb") as logf:
        t = time.monotonic()
        broker.down()
        res["broker_stop_s"] = round(time.monotonic() - t, 3)
        t0 = time.monotonic()
        t_all = None
        with Running(argv, workdir, logf) as run:
            series = []
            rss_max = 0.0
            next_point = t0
            while (now := time.monotonic()) < t0 + a.down_seconds:
                hwm, rss = proc_mem_mib(run.main.pid)
                if run.exited():
                    break
                if hwm is not None and hwm > run.peak:
                    run.peak = hwm
                if rss is not None:
                    rss_max = max(rss_max, rss)
                    if now >= next_point:
                        series.append([round(now - t0, 1), round(rss, 1)])
                        next_point += BACKLOG_SERIES_S
                time.sleep(BACKLOG_SAMPLE_S)
            hwm, rss = proc_mem_mib(run.main.pid)
            if run.exited():
                res["status"] = (f"exited {run.main.returncode} while the broker was down "
                                 f"(log: {logpath})")
            else:
                res["peak_rss_down_mib"] = round(max(hwm or 0, run.peak), 1)
                res["rss_end_down_mib"] = round(rss, 1) if rss is not None else None
                res["max_sampled_rss_down_mib"] = round(rss_max, 1)
                # read(2)-family bytes only: io_uring reads (ringtail) are not in rchar
                rchar = proc_rchar(run.main.pid)
                res["rchar_while_down_mb"] = round(rchar / 1e6, 1) if rchar is not None else None
                res["cpu_down_s"] = run.cpu()
                res["rss_series_down"] = series
            t = time.monotonic()
            broker.up()
            t_up = time.monotonic()
            res["broker_start_s"] = round(t_up - t, 3)
            counter.retarget(broker.bootstrap)
            if "peak_rss_down_mib" in res:
                b0, own0 = broker.cpu_seconds(), time.process_time()
                # A failed poll is retried: leaders are not elected yet after the restart.
                n, t_all, why = wait_for_count(
                    counter, topic, a.partitions, lines, t_up + a.timeout, run,
                    retry_errors=True, late=f"timed out {a.timeout:.0f} s after the broker's "
                                            f"return: {{n}} of {{want}} lines")
                res["delivered_at_stop"] = n
                if t_all is not None:
                    res["delivery_after_up_s"] = round(t_all - t_up, 3)
                    c = run.cpu()
                    res["cpu_at_delivery_s"] = c
                    b1 = broker.cpu_seconds()
                    if b0 is not None and b1 is not None:
                        res["broker_cpu_s"] = round(b1 - b0, 2)
                    res["harness_cpu_s"] = round(time.process_time() - own0, 3)
                    if tap:
                        res["tap_cpu_s"] = tap.cpu_seconds()
                    if contender.exits_when_done:       # kcat: its own flush and exit
                        end = time.monotonic() + STOP_GRACE_S
                        while not run.exited() and time.monotonic() < end:
                            run.sample()
                            time.sleep(0.01)
                else:
                    res["status"] = f"not all lines delivered: {why} (log: {logpath})"
            res["stop_note"] = run.stop()
        run.results(res)
        if t_all is None:
            return res
        v = check_exactly_once(res, contender, broker, tap, topic, meta, expected, workdir,
                               logf, logpath)
    if v:
        res["lost_lines"] = v.get("lost_lines", 0)
        res["duplicated_lines"] = v.get("duplicated_lines", 0)
    return res


# ------------------------------------------------------------------------ report

THROUGHPUT_METRICS = ("mb_s", "lines_s", "cpu_s_per_gib", "peak_rss_mib", "wall_s")


def summarize(results, metrics=THROUGHPUT_METRICS):
    """{(case, contender): {metric: {median, min, max}}, runs, ok_runs, failures};
    case is the corpus kind (throughput), the rate (live) or the file count (idle)."""
    out = {}
    for (kind, name), runs in results.items():
        ok = [r for r in runs if r["status"] == "ok"]
        s = {"runs": len(runs), "ok_runs": len(ok),
             "failures": [r["status"] for r in runs if r["status"] != "ok"]}
        for m in metrics:
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


def report_setup(ctx, names, unavailable):
    """The report's sections on the contenders' settings and the environment."""
    L = ["## Contenders and their settings\n"]
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
    return L


def md_row(cells):
    """One row of a Markdown table; an empty cell is a single space: '| a | | b |'."""
    return "|" + "|".join(f" {c} " if c else " " for c in map(str, cells)) + "|"


def md_table(header, rows=()):
    return [md_row(header), "|---" * len(header) + "|"] + [md_row(r) for r in rows]


def report_head(ctx):
    """The first lines of every results.md: title, time and command, broker."""
    w = ctx.get("warmup")
    warm = "" if not w else (
        f" Warmed up with kcat (with the shared producer settings) before the measured runs: "
        f"{w['mb']:,} MB in {w['rounds']} of at "
        f"most {w['max_rounds']} round(s), which stop once the broker's JIT compilers use "
        f"under {JIT_QUIET_S} CPU-s in one (their CPU per round: "
        f"{', '.join(f'{j:.2f}' for j in w['jit_seconds'])} s).")
    wr = ctx.get("warmup_runs")
    if wr:
        warm += (f" {'Then, not' if w else 'Not'} counted, {wr[0]['of']} run(s) of each "
                 f"contender on the `{wr[0]['kind']}` corpus"
                 + (", because a contender's first run after the warm-up found the broker's "
                    "JIT compilers busy again (bench/README.md)" if w else "") + ": "
                 + "; ".join(f"{r['contender']} {r['status']}"
                             + (f" {r['mb_s']:.1f} MB/s, broker CPU {r.get('broker_cpu_s')} s"
                                if r.get("mb_s") else "")
                             + (f" (JIT {r['broker_jit_s']} s)"
                                if r.get("broker_jit_s") is not None else "")
                             for r in wr) + ".")
    return [f"# ringtail bench: {ctx['title']}\n", f"{ctx['finished']} · `{ctx['command']}`\n",
            f"Broker: {ctx['broker_description']}.{warm}\n"]


def failure_note(name, status):
    return f"- {name}: a run **failed** (not counted): {status}"


def contender_table(header, names, unavailable, summary, case, cells, failed=None,
                    notes=False):
    """The table of one case (a corpus kind, a rate...): a row per contender, its name
    first and its verified runs ('N of M') last. In between: cells(name, s) for one
    with verified runs (s: its summary), 'not available: why', or for one whose runs
    all failed '**failed**: why' and empty cells (failed(name, s) gives other cells).
    notes: each failed run of a contender with verified ones gets a line below its row."""
    L = md_table(header)
    for name in names:
        if name in unavailable:
            L.append(md_row([name, f"not available: {unavailable[name]}"] +
                            [""] * (len(header) - 2)))
            continue
        s = summary.get((case, name))
        if not s:
            continue
        if not s["ok_runs"]:
            mid = (failed(name, s) if failed else
                   [f"**failed**: {'; '.join(s['failures'])}"] + [""] * (len(header) - 3))
            L.append(md_row([name, *mid, f"0 of {s['runs']}"]))
            continue
        L.append(md_row([name, *cells(name, s), f"{s['ok_runs']} of {s['runs']}"]))
        if notes:
            L += [f"\n{failure_note(name, f)}\n" for f in s["failures"]]
    return L


def _case(case, name, r):
    return case


def _contender(case, name, r):
    return name


def _verify_s(case, name, r):
    return r.get("verify", {}).get("seconds", "—")


def runs_table(results, columns):
    """The 'Runs' section: a row per run. columns: (header, what), what being a key of
    the run's result dict ('—' where it has none) or a function of (case, contender,
    result dict)."""
    rows = [[what(case, name, r) if callable(what) else r.get(what, "—")
             for _, what in columns]
            for (case, name), runs in results.items() for r in runs]
    return ["## Runs\n"] + md_table([h for h, _ in columns], rows) + [""]


def dump_json(out_dir, ctx, results, unavailable, summary, case_key="case"):
    data = {"context": ctx, "unavailable": unavailable,
            "summary": [{case_key: k, "contender": n, **s} for (k, n), s in summary.items()],
            "runs": [r for runs in results.values() for r in runs]}
    (out_dir / "results.json").write_text(json.dumps(data, indent=1, default=str) + "\n")


def write_results(out_dir, ctx, results, unavailable, summary, L, method, case_key="case"):
    """results.md (L, the contenders' settings, the environment, then '## Method' and
    the lines of method) and results.json."""
    L += report_setup(ctx, ctx["contenders"], unavailable)
    L.append("## Method\n")
    L += method
    L.append("")
    (out_dir / "results.md").write_text("\n".join(L))
    dump_json(out_dir, ctx, results, unavailable, summary, case_key)


THROUGHPUT_HEADER = ("contender", "MB/s", "lines/s", "CPU-s/GiB", "peak RSS MiB",
                     "MB/s vs ringtail", "CPU vs ringtail", "RSS vs ringtail", "verified runs")
THROUGHPUT_RUNS = (("corpus", _case), ("run", "run"), ("contender", _contender),
                   ("status", "status"), ("wall s", "wall_s"), ("MB/s", "mb_s"),
                   ("CPU s (at delivery)", "cpu_s"), ("CPU s (to exit)", "cpu_total_s"),
                   ("peak RSS MiB", "peak_rss_mib"), ("broker CPU s", "broker_cpu_s"),
                   ("of it sys s", "broker_sys_s"), ("of it JIT s", "broker_jit_s"),
                   ("verify s", _verify_s))


def write_report(out_dir, ctx, results, unavailable):
    names = ctx["contenders"]
    summary = summarize(results)
    L = report_head(ctx)
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
        rt = summary.get((kind, "ringtail"), {})

        def cells(name, s):
            return [fmt_stat(s.get('mb_s')), fmt_stat(s.get('lines_s'), 0),
                    fmt_stat(s.get('cpu_s_per_gib'), 2), fmt_stat(s.get('peak_rss_mib')),
                    ratio(s.get('mb_s'), rt.get('mb_s')),
                    ratio(s.get('cpu_s_per_gib'), rt.get('cpu_s_per_gib')),
                    ratio(s.get('peak_rss_mib'), rt.get('peak_rss_mib'))]

        L += contender_table(THROUGHPUT_HEADER, names, unavailable, summary, kind, cells)
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
            L += [failure_note(name, f) for name, f in failures]
        L.append("")
    L += runs_table(results, THROUGHPUT_RUNS)
    write_results(out_dir, ctx, results, unavailable, summary, L, [
        f"- Topics: a new one per run and contender, {ctx['partitions']} partitions, "
        f"created before the contender starts; the contenders' order rotates per run.",
        f"- Delivery: end offsets summed over the partitions every {POLL_S * 1000:.0f} ms "
        f"({ctx['offsets_method']}); the clock stops when they reach the corpus' line "
        f"count, or when the contender exits if that comes first (kcat exits after its "
        f"final flush). Its CPU is read then from /proc/PID/stat (from wait4() if it has "
        f"exited); a contender that keeps running (ringtail) then gets SIGTERM.",
        "- Exactly once: " + ctx["verify_method"] + " Cost per run is in the "
        "'verify s' column; the corpus' own digest is computed once and cached."],
        case_key="kind")
    return summary


LIVE_METRICS = ("p50_ms", "p99_ms", "max_ms", "cpu_pct", "feeders_cpu_pct", "peak_rss_mib",
                "ready_s", "drain_s", "writer_rate", "writer_cpu_pct", "broker_cpu_pct")
LIVE_HEADER = ("contender", "writer lines/s (its CPU %)", "p50 ms", "p99 ms", "max ms",
               "CPU % of a core", "peak RSS MiB", "start-up s", "drain s", "verified runs")
LIVE_RUNS = (("rate", lambda rate, name, r: f"{rate:,}"), ("run", "run"),
             ("contender", _contender), ("status", "status"),
             ("lines written", "lines_written"), ("writer lines/s", "writer_rate"),
             ("writer CPU %", "writer_cpu_pct"), ("steady lines", "steady_lines"),
             ("p50 ms", "p50_ms"), ("p99 ms", "p99_ms"), ("max ms", "max_ms"),
             ("CPU %", "cpu_pct"), ("tail CPU %", "feeders_cpu_pct"),
             ("peak RSS MiB", "peak_rss_mib"), ("broker CPU %", "broker_cpu_pct"),
             ("start-up s", "ready_s"), ("drain s", "drain_s"), ("verify s", "verify_s"))


def write_live_report(out_dir, ctx, results, unavailable):
    names = ctx["contenders"]
    for runs in results.values():
        for r in runs:
            w = r.get("writer", {})
            r["writer_rate"] = w.get("achieved_rate")
            r["writer_cpu_pct"] = w.get("cpu_pct")
    summary = summarize(results, LIVE_METRICS)
    kind = ctx["kinds"][0]
    m = ctx["corpora"][kind]
    L = report_head(ctx)
    L.append(f"A writer appends `{kind}` lines to a new file at a fixed rate while the contender "
             f"follows the file into a new topic created with "
             f"`message.timestamp.type=LogAppendTime`. Latency = the record's timestamp (the "
             f"broker's append time, ms) − the append time written into the line "
             f"(CLOCK_REALTIME, µs), over the lines appended after the first "
             f"{ctx['skip_s']:g} s of each {ctx['duration_s']:g} s run (the steady window); "
             f"resolution 1 ms (the broker's timestamp is truncated to the ms, so a figure can "
             f"be up to 1 ms low, and a sub-ms latency can show as negative). Writer, "
             f"contender and broker share this host's clock. CPU = the contender's user+sys "
             f"(/proc/PID/stat, all threads) over the steady window, in % of one core; peak "
             f"RSS = VmHWM over the whole run. Only runs in which every line written arrived "
             f"exactly once (checked) count; medians over them, (min–max) when they "
             f"differ.\n")

    def cells(name, s):
        cpu = fmt_stat(s.get("cpu_pct"))
        if s.get("feeders_cpu_pct"):
            cpu += f" (+ tail {fmt_stat(s['feeders_cpu_pct'])})"
        return [f"{fmt_stat(s.get('writer_rate'), 0)} ({fmt_stat(s.get('writer_cpu_pct'))})",
                fmt_stat(s.get('p50_ms')), fmt_stat(s.get('p99_ms')), fmt_stat(s.get('max_ms')),
                cpu, fmt_stat(s.get('peak_rss_mib')), fmt_stat(s.get('ready_s'), 2),
                fmt_stat(s.get('drain_s'), 2)]

    for rate in ctx["rates"]:
        L.append(f"## {rate:,} lines/s\n")
        L += contender_table(LIVE_HEADER, names, unavailable, summary, rate, cells, notes=True)
        L.append("")
    L += runs_table(results, LIVE_RUNS)
    write_results(out_dir, ctx, results, unavailable, summary, L, [
        f"- Lines: the first 65,536 lines of the `{kind}` corpus "
        f"`{Path(m['path']).name}` (seed {m['seed']}), cycled, each behind a 27-byte "
        f"stamp `<CLOCK_REALTIME µs, 16 digits> b<batch, 8 digits> ` (a line is unique by "
        f"batch and corpus line); mean line length in the runs table's JSON "
        f"(`writer.mean_line_bytes`).",
        f"- Writer (`bench/appender.py`, its own process): every {ctx['batch_ms']:g} ms "
        f"it appends the lines due (rate × elapsed time) with one write() to an "
        f"O_APPEND descriptor, all stamped with the clock read just before that batch "
        f"was built; it never skips a line, and falls behind with bigger batches if it "
        f"must. 'writer lines/s' is lines over the time from its start to its last "
        f"write.",
        f"- Per run: a new topic ({ctx['partitions']} partitions, "
        f"`message.timestamp.type=LogAppendTime`), a new file holding one line; the "
        f"contender starts; once that line is in Kafka (start-up s) the writer starts, "
        f"for {ctx['duration_s']:g} s. The contender's CPU is read from /proc/PID/stat "
        f"{ctx['skip_s']:g} s after the writer's first append and when the writer exits. "
        f"Then end offsets are polled every {POLL_S * 1000:.0f} ms until every line is "
        f"in Kafka (drain s: after the writer's exit; at most "
        f"{ctx['drain_timeout_s']:g} s), and the contender is stopped (SIGTERM; for "
        f"kcat SIGTERM to tail, and kcat exits at the end of its input).",
        "- kcat cannot follow a file: `tail -c +1 -F FILE | kcat -P ...`, two processes; "
        "kcat's CPU and RSS are kcat's alone, tail's CPU is shown apart.",
        "- Exactly once and latency: the topic is consumed with `kcat -C -o beginning -e "
        "-f '%T %s\\n'`; the multiset digest of the values (line count, bytes, sum of "
        "the lines' SipHash mod 2^64) must equal that of the lines written, rebuilt from "
        "the writer's batch log, or the run is reported as `NOT exactly once` with "
        "lost/duplicated/foreign counts and no latency. Percentiles are nearest-rank "
        "over every line of the steady window."])
    return summary


IDLE_METRICS = ("discovery_s", "idle_cpu_pct", "peak_rss_mib", "broker_cpu_pct")
IDLE_HEADER = ("contender", "discovery s", "idle CPU % of a core", "peak RSS MiB",
               "broker CPU % (idle window)", "verified runs")
IDLE_RUNS = (("run", "run"), ("contender", _contender), ("status", "status"),
             ("discovery s", "discovery_s"), ("CPU s to discovery", "discovery_cpu_s"),
             ("idle window s", "idle_window_s"), ("idle CPU s", "idle_cpu_s"),
             ("idle CPU %", "idle_cpu_pct"), ("peak RSS MiB", "peak_rss_mib"),
             ("broker CPU %", "broker_cpu_pct"), ("verify s", "verify_s"))


def write_idle_report(out_dir, ctx, results, unavailable):
    names = ctx["contenders"]
    summary = summarize(results, IDLE_METRICS)
    n = ctx["files"]
    L = report_head(ctx)
    L.append(f"{n:,} files of one line each exist in one directory when the contender starts, "
             f"following the glob `DIR/*.log`. Discovery = from its start until all {n:,} "
             f"lines are in Kafka. Idle CPU = its user+sys (/proc/PID/stat, all threads) over "
             f"the next {ctx['idle_s']:g} s, in which nothing is written, in % of one core. "
             f"Peak RSS = VmHWM over the whole run. Only runs in which every line arrived "
             f"exactly once (checked) count; medians, (min–max) when they differ.\n")

    def cells(name, s):
        return [fmt_stat(s.get('discovery_s'), 2), fmt_stat(s.get('idle_cpu_pct'), 2),
                fmt_stat(s.get('peak_rss_mib')), fmt_stat(s.get('broker_cpu_pct'))]

    L += contender_table(IDLE_HEADER, names, unavailable, summary, n, cells)
    L.append("")
    L += runs_table(results, IDLE_RUNS)
    method = ctx["verify_method"].replace("equal the corpus'", "equal that of the files' lines")
    write_results(out_dir, ctx, results, unavailable, summary, L, [
        f"- Per run: a new topic ({ctx['partitions']} partitions) and a new directory of "
        f"{n:,} files `fNNNNNNN.log`, each one line: `fNNNNNNN ` and a line of the "
        f"`{ctx['kinds'][0]}` corpus. The contender gets the glob (`glob_argv()`; a "
        f"contender without one is `not available: does not follow a glob`).",
        f"- End offsets are polled every {POLL_S * 1000:.0f} ms until they sum to {n:,} "
        f"(at most {ctx['timeout_s']:g} s); the CPU read from /proc/PID/stat then and "
        f"{ctx['idle_s']:g} s later gives the idle CPU. The harness samples VmHWM once a "
        f"second in that window and polls nothing. Then SIGTERM.",
        "- Exactly once: " + method])
    return summary


BACKLOG_METRICS = ("peak_rss_down_mib", "rss_end_down_mib", "peak_rss_mib",
                   "delivery_after_up_s", "cpu_at_delivery_s")
BACKLOG_HEADER = ("contender", "peak RSS while down MiB", "RSS at end of down MiB",
                  "peak RSS overall MiB", "delivery after return s", "CPU s to delivery",
                  "lost lines", "duplicated lines", "verified runs")
BACKLOG_RUNS = (("run", "run"), ("contender", _contender), ("status", "status"),
                ("peak RSS while down MiB", "peak_rss_down_mib"),
                ("RSS at end of down MiB", "rss_end_down_mib"),
                ("CPU s while down", "cpu_down_s"), ("broker stop s", "broker_stop_s"),
                ("broker start s", "broker_start_s"),
                ("delivery after return s", "delivery_after_up_s"),
                ("CPU s to delivery", "cpu_at_delivery_s"), ("CPU s to exit", "cpu_total_s"),
                ("peak RSS overall MiB", "peak_rss_mib"),
                ("broker CPU s after return", "broker_cpu_s"), ("verify s", _verify_s))


def write_backlog_report(out_dir, ctx, results, unavailable):
    names = ctx["contenders"]
    summary = summarize(results, BACKLOG_METRICS)
    kind = ctx["kinds"][0]
    m = ctx["corpora"][kind]
    down = ctx["down_s"]
    L = report_head(ctx)
    L.append(f"Per run: a new topic ({ctx['partitions']} partitions) is created, the broker is "
             f"stopped with {ctx['down_method']}, and the contender starts on the complete "
             f"`{kind}` corpus ({m['bytes']:,} bytes, {m['lines']:,} lines). For {down:g} s "
             f"its VmHWM and VmRSS (/proc/PID/status) are sampled every "
             f"{BACKLOG_SAMPLE_S * 1000:.0f} ms; **peak RSS while down** is VmHWM at the end "
             f"of that window. Then the broker is started again with "
             f"{ctx['up_method']}; **delivery after return** is the time from then until "
             f"the topic's end offsets sum to the line count (polled every "
             f"{POLL_S * 1000:.0f} ms). **Peak RSS overall** is VmHWM until the contender "
             f"exited. Only runs in which every line arrived exactly once (checked) count; "
             f"medians, (min–max) when they differ.\n")

    def lost_dup(name):
        runs = results[(kind, name)]
        return [sum(r.get("lost_lines", 0) or 0 for r in runs),
                sum(r.get("duplicated_lines", 0) or 0 for r in runs)]

    def cells(name, s):
        return [fmt_stat(s.get('peak_rss_down_mib')), fmt_stat(s.get('rss_end_down_mib')),
                fmt_stat(s.get('peak_rss_mib')), fmt_stat(s.get('delivery_after_up_s'), 2),
                fmt_stat(s.get('cpu_at_delivery_s'), 2), *lost_dup(name)]

    def failed(name, s):
        peak = max((r.get("peak_rss_down_mib") or 0 for r in results[(kind, name)]), default=0)
        return ([f"**failed**: {'; '.join(s['failures'])}" +
                 (f" (peak RSS while down {peak:.1f} MiB)" if peak else "")] +
                [""] * 4 + lost_dup(name))

    L += contender_table(BACKLOG_HEADER, names, unavailable, summary, kind, cells, failed,
                         notes=True)
    rt = summary.get((kind, "ringtail"), {})
    if rt.get("peak_rss_down_mib"):
        L.append("")
        L.append(f"ringtail peak RSS while the broker was down: "
                 f"{rt['peak_rss_down_mib']['median']:.1f} MiB with a {m['bytes'] / 1e9:.2f} GB "
                 f"backlog (issue 6 target: ≤ 64 MiB with a 10 GB backlog).")
    L.append("")
    L += runs_table(results, BACKLOG_RUNS)
    write_results(out_dir, ctx, results, unavailable, summary, L, [
        "- The contenders run their throughput-mode command on the corpus "
        "(`backlog_argv()`, by default `argv()`), which is complete and in the page "
        "cache before they start. kcat gets `-E`: without it kcat exits 1 (\"All "
        "broker connections are down: terminating\") as soon as it finds no broker.",
        f"- Broker down: {ctx['down_method']}. Back: {ctx['up_method']}. A producer "
        f"that backs off between reconnection attempts (librdkafka: "
        f"`reconnect.backoff.max.ms`, 10 s by default, 1 s in ringtail) may take that "
        f"long to notice the return: it is part of the delivery time.",
        f"- A run fails if not every line is in Kafka {ctx['timeout_s']:g} s after the "
        f"broker's return. Then a contender that keeps running gets SIGTERM; kcat "
        f"exits by itself once its last batch is acknowledged.",
        "- Exactly once: " + ctx["verify_method"]])
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

MODES = ("throughput", "live", "idle", "backlog")
BROKERS = ("kafka", "mock")


def parse_args(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--mode", choices=MODES, default="throughput",
                    help="throughput (default): ship a complete corpus; live: follow a file "
                         "appended at fixed rates; idle: follow --files quiet files; "
                         "backlog: memory with a corpus to ship while the broker is down")
    ap.add_argument("--broker", choices=BROKERS, default="kafka",
                    help="kafka (default): a real Apache Kafka broker (tests/kafka/kafka.sh, "
                         "or --bootstrap); mock: librdkafka's mock cluster "
                         "(tests/mockcluster of the build, $RINGTAIL_MOCKCLUSTER), a new one "
                         "per run; not with --mode live")
    ap.add_argument("--smoke", action="store_true",
                    help="keeps the harness working: throughput 2M corpus, 1 run; live one "
                         "rate of 2000 lines/s for 5 s; idle 200 files, 3 s; backlog 200M, "
                         "5 s down")
    ap.add_argument("--contenders", default="ringtail,kcat",
                    help=f"comma-separated, of {','.join(CONTENDERS)}")
    ap.add_argument("--kind", default="access",
                    help="corpus kind(s), comma-separated: access,json,java (live and idle: "
                         "one, the shape of the lines written)")
    ap.add_argument("--size", default=None,
                    help="corpus size (default 1G; live and idle 128M, of which the first "
                         "65536 lines are written; backlog 10G; --smoke 2M, backlog 200M)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--runs", type=int, default=None,
                    help="runs per case (default 3; --smoke 1)")
    ap.add_argument("--partitions", type=int, default=6)
    ap.add_argument("--out", default=None,
                    help="results directory (default bench/out, bench/out/MODE for the other "
                         "modes, bench/out/mock/... with --broker mock; under bench/out/smoke "
                         "with --smoke)")
    ap.add_argument("--corpus-dir", default=None,
                    help=f"corpus cache (default {corpus.default_dir()})")
    ap.add_argument("--bootstrap", help="use this broker instead of starting one")
    ap.add_argument("--ringtail", help="ringtail binary (default build/release, else build/dev)")
    ap.add_argument("--producer", default=DEFAULT_SHARED_PRODUCER,
                    help="librdkafka settings for every contender, k=v,... "
                         f"(default {DEFAULT_SHARED_PRODUCER}; '' for none)")
    ap.add_argument("--warmup", type=float, default=None,
                    help="MB of each corpus produced with kcat per warm-up round before the "
                         "measured runs (default 1000; --smoke 100)")
    ap.add_argument("--warmup-rounds", type=int, default=None,
                    help="warm-up rounds at most; they stop once the broker's JIT compilers "
                         f"used under {JIT_QUIET_S} CPU-s in one (default 8; --smoke 1)")
    ap.add_argument("--warmup-runs", type=int, default=None,
                    help="throughput mode: runs of each contender on the first corpus before "
                         "the measured ones, reported but not counted (default 1; --smoke 0)")
    ap.add_argument("--timeout", type=float, default=None,
                    help="seconds a run may take to deliver (default 120 + 1 s per 5 MB; "
                         "live: after the writer stopped, 60; idle: 120 + 1 s per 100 files; "
                         "backlog: after the broker's return, 300 + 1 s per 2 MB)")
    live = ap.add_argument_group("live mode")
    live.add_argument("--rates", default=None,
                      help="lines per second, comma-separated (default 10000,50000,200000; "
                           "--smoke 2000)")
    live.add_argument("--duration", type=float, default=None,
                      help="seconds the writer appends at each rate (default 30; --smoke 5)")
    live.add_argument("--skip", type=float, default=None,
                      help="first seconds of each run left out of latency and CPU "
                           "(default 5; --smoke 1)")
    live.add_argument("--batch-ms", type=float, default=2.0,
                      help="the writer appends every this many ms (default 2)")
    idle = ap.add_argument_group("idle mode")
    idle.add_argument("--files", type=int, default=None,
                      help="files of one line each (default 10000; --smoke 200)")
    idle.add_argument("--idle-seconds", type=float, default=None,
                      help="the idle window (default 60; --smoke 3)")
    backlog = ap.add_argument_group("backlog mode")
    backlog.add_argument("--down-seconds", type=float, default=None,
                         help="seconds the contender runs with the broker down (default 60; "
                              "--smoke 5)")
    a = ap.parse_args(argv)
    tp = a.mode == "throughput"
    if a.mode == "backlog":
        a.size = a.size or ("200M" if a.smoke else "10G")
    a.size = a.size or ("2M" if a.smoke else "1G" if tp else "128M")
    a.runs = a.runs or (1 if a.smoke else 3)
    a.warmup = a.warmup if a.warmup is not None else (100 if a.smoke else 1000)
    a.warmup_rounds = a.warmup_rounds or (1 if a.smoke else 8)
    if a.warmup_runs is None:
        a.warmup_runs = 0 if a.smoke else 1
    if a.warmup_runs < 0:
        ap.error("--warmup-runs must be 0 or more")
    if a.out:
        a.out = Path(a.out)
    else:
        a.out = (HERE / "out" / ("smoke" if a.smoke else "") /
                 ("mock" if a.broker == "mock" else "") / ("" if tp else a.mode))
    if a.broker == "mock" and a.mode == "live":
        ap.error("--mode live measures latency with the broker's LogAppendTime, which "
                 "librdkafka's mock cluster does not set (its records keep the producer's "
                 "CreateTime): use --broker kafka")
    if a.broker == "mock" and a.bootstrap:
        ap.error("--bootstrap names a broker of its own: not with --broker mock")
    if a.mode == "backlog" and a.bootstrap:
        ap.error("--mode backlog stops and starts the broker: it needs one of its own, "
                 "not --bootstrap")
    a.contenders = [c.strip() for c in a.contenders.split(",") if c.strip()]
    for c in a.contenders:
        if c not in CONTENDERS:
            ap.error(f"unknown contender '{c}' (known: {', '.join(CONTENDERS)})")
    a.kinds = [k.strip() for k in a.kind.split(",") if k.strip()]
    for k in a.kinds:
        if k not in corpus.KINDS:
            ap.error(f"unknown kind '{k}' (known: {', '.join(corpus.KINDS)})")
    if not tp and len(a.kinds) != 1:
        ap.error(f"--mode {a.mode} takes one --kind")
    try:
        corpus.parse_size(a.size)
        a.shared = parse_settings(a.producer)
        a.rates = [int(float(r)) for r in (a.rates or ("2000" if a.smoke else
                                                         "10000,50000,200000")).split(",")
                   if r.strip()]
    except ValueError as e:
        ap.error(f"--rates: {e}")
    except argparse.ArgumentTypeError as e:
        ap.error(str(e))
    a.duration = a.duration or (5.0 if a.smoke else 30.0)
    a.skip = a.skip if a.skip is not None else (1.0 if a.smoke else 5.0)
    a.files = a.files or (200 if a.smoke else 10000)
    a.idle_seconds = a.idle_seconds or (3.0 if a.smoke else 60.0)
    if a.mode == "live":
        a.timeout = a.timeout or 60.0
    elif a.mode == "idle":
        a.timeout = a.timeout or 120 + a.files / 100
    elif a.mode == "backlog":
        a.timeout = a.timeout or 300 + corpus.parse_size(a.size) / 2e6
    a.down_seconds = a.down_seconds or (5.0 if a.smoke else 60.0)
    if a.runs < 1 or a.partitions < 1:
        ap.error("--runs and --partitions must be at least 1")
    if not a.rates or min(a.rates) < 1 or a.skip >= a.duration or a.files < 1:
        ap.error("--rates must be positive, --skip below --duration, --files at least 1")
    return a


def on_sigterm(signum, frame):
    log("terminated; stopping what was started")
    raise SystemExit(128 + signum)


def rotated(contenders, run):
    """The contenders in run's order: rotated by one per run."""
    if not contenders:
        return []
    k = run % len(contenders)
    return contenders[k:] + contenders[:k]


def run_cases(a, contenders, work, plan, one, measured, of=None):
    """The loop every mode runs. plan: (case, run, shift, infix, what, fields) in the
    order to run them; for each, every contender in the order rotated(contenders,
    shift) gets a new topic bench-TAG-INFIX-NAME-RUN and a scratch directory, and
    one(contender, case, topic, workdir) runs it and returns its result dict, to which
    the run's number and fields are added. The log says what (its first words), the
    run's number of `of` (default --runs) and the status, with measured(result) if that
    says more ("" when it does not). Returns
    ({(case, contender name): [result, ...]}, 0 if every run was ok else 1)."""
    results = {}
    rc = 0
    tag = datetime.datetime.now().strftime("%H%M%S")
    for case, run, shift, infix, what, fields in plan:
        for c in rotated(contenders, shift):
            topic = f"bench-{tag}-{infix}-{c.name}-{run + 1}"
            rwork = work / topic
            rwork.mkdir()
            log(f"{what} run {run + 1}/{of or a.runs}: {c.name} -> {topic}")
            r = one(c, case, topic, rwork)
            r["run"] = run + 1
            r.update(fields)
            results.setdefault((case, c.name), []).append(r)
            log(f"  {r['status']}: " + measured(r))
            if r["status"] != "ok":
                rc = 1
            shutil.rmtree(rwork, ignore_errors=True)
    return results, rc


def corpus_meta(ctx, kind):
    path = ctx["corpora"][kind]["path"]
    return {**corpus.read_meta(path), "path": path}


def throughput_mode(a, ctx, contenders, broker, counter, work, logdir):
    metas = {kind: corpus_meta(ctx, kind) for kind in a.kinds}

    def one(c, kind, topic, rwork):
        meta = metas[kind]
        return run_one(c, broker, counter, meta, a.partitions, topic, rwork, logdir,
                       a.timeout or 120 + meta["bytes"] / 5e6, meta["multiset_digest"])

    def measured(r):
        if "wall_s" not in r:
            return ""
        return (f"{r['wall_s']:.2f} s, {r['mb_s']:.1f} MB/s, {r['lines_s']:,} lines/s, "
                f"{r['cpu_s_per_gib']:.2f} CPU-s/GiB, peak RSS {r['peak_rss_mib']} MiB, "
                f"verified in {r.get('verify', {}).get('seconds', 0):.1f} s")

    kind0 = a.kinds[0]
    plan = [(kind0, run, run, "warm", "warm-up (not counted)", {"kind": kind0})
            for run in range(a.warmup_runs)]
    warm, warm_rc = run_cases(a, contenders, work, plan, one, measured, of=a.warmup_runs)
    ctx["warmup_runs"] = [{"contender": name, "kind": kind0, "of": a.warmup_runs,
                           **{k: r[k] for k in ("status", "mb_s", "broker_cpu_s",
                                                "broker_jit_s") if k in r}}
                          for (_, name), rs in warm.items() for r in rs]
    plan = [(kind, run, run, kind, kind, {"kind": kind})
            for kind in a.kinds for run in range(a.runs)]
    results, rc = run_cases(a, contenders, work, plan, one, measured)
    # A warm-up run that lost or duplicated lines is not counted, but it is a failure.
    return results, rc or warm_rc


def live_mode(a, ctx, contenders, broker, counter, work, logdir):
    pool_path = ctx["corpora"][a.kinds[0]]["path"]

    def one(c, rate, topic, rwork):
        return run_live(c, broker, counter, a, rate, pool_path, topic, rwork, logdir)

    def measured(r):
        if "p99_ms" not in r:
            return ""
        w = r.get("writer", {})
        return (f"writer {w['achieved_rate']:,.0f} lines/s ({w['cpu_pct']}% CPU), latency "
                f"p50 {r['p50_ms']} ms, p99 {r['p99_ms']} ms, max {r['max_ms']} ms over "
                f"{r['steady_lines']:,} lines; CPU {r['cpu_pct']}% of a core, peak RSS "
                f"{r['peak_rss_mib']} MiB")

    # the order rotates per run and per rate
    plan = [(rate, run, run + i, f"live-{rate}",
             f"live {rate:,} lines/s for {a.duration:g} s,", {})
            for run in range(a.runs) for i, rate in enumerate(a.rates)]
    return run_cases(a, contenders, work, plan, one, measured)


def idle_mode(a, ctx, contenders, broker, counter, work, logdir):
    pool = []
    with open(ctx["corpora"][a.kinds[0]]["path"], "rb") as f:
        for line in f:
            pool.append(line)
            if len(pool) == 4096:
                break

    def one(c, files, topic, rwork):
        return run_idle(c, broker, counter, a, pool, topic, rwork, logdir)

    def measured(r):
        if "idle_cpu_pct" not in r:
            return ""
        return (f"all {a.files:,} lines in Kafka after {r['discovery_s']} s; idle CPU "
                f"{r['idle_cpu_pct']}% of a core, peak RSS {r['peak_rss_mib']} MiB")

    plan = [(a.files, run, run, "idle",
             f"idle, {a.files:,} files, {a.idle_seconds:g} s,", {}) for run in range(a.runs)]
    return run_cases(a, contenders, work, plan, one, measured)


def backlog_mode(a, ctx, contenders, broker, counter, work, logdir):
    kind = a.kinds[0]
    meta = corpus_meta(ctx, kind)

    def one(c, kind, topic, rwork):
        return run_backlog(c, broker, counter, a, meta, topic, rwork, logdir,
                           meta["multiset_digest"])

    def measured(r):
        if "delivery_after_up_s" not in r:
            return ""
        return (f"peak RSS while down {r['peak_rss_down_mib']} MiB, overall "
                f"{r['peak_rss_mib']} MiB; delivered "
                f"{r['delivery_after_up_s']} s after the broker's return")

    plan = [(kind, run, run, "backlog",
             f"backlog, {meta['bytes'] / 1e6:,.0f} MB, broker down {a.down_seconds:g} s,", {})
            for run in range(a.runs)]
    return run_cases(a, contenders, work, plan, one, measured)


# Space the broker needs per corpus byte shipped: zstd batches of the corpora came to
# 0.18 (access) of the corpus' size in the mock's tap; 0.35 leaves room for the json and
# java corpora and Kafka's indexes.
BROKER_BYTES_PER_CORPUS_BYTE = 0.35
DISK_MARGIN = 1 << 30


def check_disk(a, cdir, n_contenders):
    """Fails clearly, before a corpus is generated, if the file systems of the corpus
    directory and of the broker's data cannot hold what the invocation will write: the
    corpora not made yet, the consumed copy of one run's topic (as big as the corpus),
    and the broker's data (Kafka keeps every run's topic until the end; the mock's tap
    keeps one run's batches) at BROKER_BYTES_PER_CORPUS_BYTE, plus 1 GiB."""
    size = corpus.parse_size(a.size)
    need = {}                           # st_dev -> [bytes, path]

    def add(path, nbytes, what):
        path = Path(path)
        while not path.exists():
            path = path.parent
        dev = os.stat(path).st_dev
        entry = need.setdefault(dev, [0, path, []])
        entry[0] += nbytes
        entry[2].append(f"{what} {nbytes / 1e9:.1f} GB")

    for kind in a.kinds:
        if not corpus.is_reusable(corpus.corpus_path(cdir, kind, a.size, a.seed)):
            add(cdir, size, f"{kind} corpus")
    if a.mode in ("throughput", "backlog"):
        add(cdir, size, "consumed copy of one run")
        runs = len(a.kinds) * a.runs + (a.warmup_runs if a.mode == "throughput" else 0)
        shipped = size * runs * max(n_contenders, 1)
        if a.broker == "mock":
            add(cdir, int(size * BROKER_BYTES_PER_CORPUS_BYTE), "mock tap (one run)")
        elif not a.bootstrap:
            add(tempfile.gettempdir(), int(shipped * BROKER_BYTES_PER_CORPUS_BYTE),
                "Kafka data (every run)")
    if a.broker != "mock" and not a.bootstrap:
        warm = min(int(a.warmup * 1e6), size) * len(a.kinds) * a.warmup_rounds
        add(tempfile.gettempdir(), int(warm * BROKER_BYTES_PER_CORPUS_BYTE),
            "Kafka data (warm-up, at most)")
    for nbytes, path, what in need.values():
        st = os.statvfs(path)
        free = st.f_bavail * st.f_frsize
        if free < nbytes + DISK_MARGIN:
            raise BenchError(f"not enough disk space on the file system of {path}: "
                             f"{free / 1e9:.1f} GB free, {(nbytes + DISK_MARGIN) / 1e9:.1f} GB "
                             f"needed ({', '.join(what)}, 1.1 GB margin); free some, or use "
                             f"--corpus-dir / TMPDIR elsewhere, or a smaller --size")
        log(f"disk: {free / 1e9:.1f} GB free on the file system of {path}, "
            f"{nbytes / 1e9:.1f} GB needed ({', '.join(what)})")


# Each mode's loop over runs and contenders, and its report.
MODE_FUNCS = {"throughput": (throughput_mode, write_report),
              "live": (live_mode, write_live_report),
              "idle": (idle_mode, write_idle_report),
              "backlog": (backlog_mode, write_backlog_report)}
CHART_MODES = ("throughput", "live", "backlog")     # results.png (chart.py)


def make_chart(mode, out_dir, ctx, summary, unavailable):
    """results.png beside results.md; skipped, saying why, without matplotlib."""
    try:
        import chart
        path = chart.draw(mode, out_dir / "results.png", ctx, summary, unavailable)
    except ImportError as e:
        log(f"no chart: {e} (Debian: apt-get install python3-matplotlib; run.py runs "
            f"with {sys.executable})")
        return None
    except Exception as e:     # a chart must not cost the measured results
        log(f"no chart: drawing it failed: {type(e).__name__}: {e}")
        return None
    if path:
        log(f"wrote {path}")
    return path


def main(argv=None):
    a = parse_args(argv)
    signal.signal(signal.SIGTERM, on_sigterm)
    started = time.monotonic()
    contenders = []
    unavailable = {}
    for name in a.contenders:
        c = Ringtail(a.shared, a.ringtail) if name == "ringtail" else CONTENDERS[name](a.shared)
        why = c.unavailable()
        if not why and a.mode == "idle" and type(c).glob_argv is Contender.glob_argv:
            why = "does not follow a glob"
        if not why and a.broker == "mock":
            why = getattr(c, "mock_unavailable", None)
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
    smoke = " (smoke)" if a.smoke else ""
    if a.mode == "throughput":
        title = (f"{', '.join(a.kinds)} corpus, {a.size}, {a.runs} run(s), "
                 f"{a.partitions} partitions{smoke}")
    elif a.mode == "live":
        title = (f"live append of {a.kinds[0]} lines at "
                 f"{', '.join(f'{r:,}' for r in a.rates)} lines/s, {a.duration:g} s each, "
                 f"{a.runs} run(s), {a.partitions} partitions{smoke}")
    elif a.mode == "idle":
        title = (f"idle, {a.files:,} files of one {a.kinds[0]} line, {a.idle_seconds:g} s, "
                 f"{a.runs} run(s), {a.partitions} partitions{smoke}")
    else:
        title = (f"backlog, {a.kinds[0]} corpus {a.size} while the broker is down for "
                 f"{a.down_seconds:g} s, {a.runs} run(s), {a.partitions} partitions{smoke}")
    title += ", mock cluster" if a.broker == "mock" else ""
    ctx = {"title": title, "mode": a.mode,
           "command": shlex.join([sys.executable, "bench/run.py", *(argv or sys.argv[1:])]),
           "contenders": a.contenders, "kinds": a.kinds, "partitions": a.partitions,
           "smoke": a.smoke,
           "shared_producer": a.producer, "corpora": {}, "versions": {}, "describe": {}}
    if a.mode == "live":
        ctx.update({"rates": a.rates, "duration_s": a.duration, "skip_s": a.skip,
                    "batch_ms": a.batch_ms, "drain_timeout_s": a.timeout,
                    "topic_configs": LIVE_TOPIC_CONFIGS})
    elif a.mode == "idle":
        ctx.update({"files": a.files, "idle_s": a.idle_seconds, "timeout_s": a.timeout})
    elif a.mode == "backlog":
        ctx.update({"down_s": a.down_seconds, "timeout_s": a.timeout})
    ctx["broker"] = a.broker
    if a.broker == "mock":
        ctx.update({
            "down_method": "`down -1` on mockcluster's stdin (its connections are closed, new "
                           "ones refused)",
            "up_method": "`up -1`",
            "verify_method": "the mock keeps only the last 5 MiB of batches per partition, "
                             "so a tap process (bench/mockbroker.py) fetches the topic from "
                             "offset 0 while the contender runs (raw batches, not "
                             "decompressed; its CPU is `tap_cpu_s` in results.json); after "
                             "the run the batches are decompressed into the values, one per "
                             "line, whose multiset digest (line count, bytes, sum of the "
                             "lines' SipHash mod 2^64) must equal the corpus', so any lost, "
                             "duplicated or altered line fails the run. A run whose records "
                             "the mock dropped before the tap got them is `not verified`, "
                             "not counted."})
    else:
        ctx.update({
            "down_method": "`tests/kafka/kafka.sh stop --keep-data` (SIGTERM, the JVM's "
                           "controlled shutdown; returns once it is gone)",
            "up_method": "`tests/kafka/kafka.sh start` (the same state dir and ports; "
                         "returns once the broker answers a metadata request)",
            "verify_method": "the topic is consumed with `" + shlex.join(
                consume_argv("BOOTSTRAP", "TOPIC")).replace("\n", "\\n") + "` into a file "
                "whose multiset digest (line count, bytes, sum of the lines' SipHash mod "
                "2^64) must equal the corpus', so any lost, duplicated or altered line "
                "fails the run."})
    results = {}
    if a.broker == "mock":
        rt = next((c for c in contenders if isinstance(c, Ringtail)), None)
        broker = MockBroker(sys.modules[__name__], rt.bin if rt else a.ringtail or
                            os.environ.get("RINGTAIL_BIN"))
    else:
        broker = Broker(a.bootstrap)
    counter = None
    rc = 0
    try:
        check_disk(a, cdir, len(contenders))
        for kind in a.kinds:
            m = corpus.generate(kind, a.size, a.seed, cdir)
            ctx["corpora"][kind] = {k: m[k] for k in ("path", "bytes", "lines", "sha256", "seed")}
            if a.mode in ("throughput", "backlog"):
                digest, took = corpus_digest(m)
                if took is not None:
                    ctx["corpora"][kind]["digest_seconds"] = round(took, 2)
        broker.start()
        counter = OffsetCounter(broker.bootstrap)
        broker.warm_up(work, [ctx["corpora"][k]["path"] for k in a.kinds], int(a.warmup * 1e6),
                       a.warmup_rounds, a.shared)
        ctx["warmup"] = getattr(broker, "warmup", None)
        for c in contenders:
            ctx["versions"][c.name] = c.version()
            ctx["describe"][c.name] = c.describe()
        runner, writer = MODE_FUNCS[a.mode]
        results, rc = runner(a, ctx, contenders, broker, counter, work, logdir)
        ctx["offsets_method"] = "ListOffsets v1 over a socket" + (
            f"; kcat -Q for {counter.kcat_counts} polls ({counter.fallback_reason})"
            if counter.kcat_counts else "")
        ctx["versions"][a.broker] = broker.version
        ctx["broker_description"] = broker.describe()
        ctx["broker_process"] = broker.process
        if a.broker == "mock":
            broker.stop()               # its last process' VmHWM is noted on the way
            ctx["mock_peak_rss_mib"] = round(broker.peak_rss_mib, 1)
            ctx["broker_description"] += (f"; its largest VmHWM in this invocation "
                                          f"{broker.peak_rss_mib:.0f} MiB")
        ctx["environment"] = {
            **machine_info(),
            "broker": ("librdkafka's mock cluster, " + broker.describe()) if a.broker == "mock"
            else f"Kafka {broker.version} (" + (
                f"external --bootstrap {a.bootstrap}" if a.bootstrap
                else "tests/kafka/kafka.sh, own KAFKA_STATE_DIR") + ")",
            "python": platform.python_version(),
            "bench wall time": f"{time.monotonic() - started:.0f} s"}
        ctx["finished"] = datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
        summary = writer(a.out, ctx, results, unavailable)
        log(f"wrote {a.out / 'results.md'} and results.json "
            f"({time.monotonic() - started:.0f} s in all)")
        if a.mode in CHART_MODES:
            make_chart(a.mode, a.out, ctx, summary, unavailable)
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


# Contenders in modules of their own import this one as `run` (for Contender): the
# same module object, also when this file runs as __main__.
sys.modules.setdefault("run", sys.modules[__name__])
from peer_connect import Connect  # noqa: E402
CONTENDERS["connect"] = Connect
from peers_syslog import Rsyslog, SyslogNg  # noqa: E402
CONTENDERS["rsyslog"] = Rsyslog
CONTENDERS["syslog-ng"] = SyslogNg
from mockbroker import MockBroker  # noqa: E402


if __name__ == "__main__":
    sys.exit(main())
