# SPDX-License-Identifier: Apache-2.0
"""`run.py --broker mock`: librdkafka's mock cluster (tests/kafka/mockcluster.c) as the
bench's broker, and the tap that makes exactly-once verification possible against it.

    python3 bench/mockbroker.py tap --bootstrap HOST:PORT --topic T --partitions N --dir D
    python3 bench/mockbroker.py decode --dir D --out FILE

DESIGN. One mockcluster process (one mock broker: every partition's leader, as the one
real broker of kafka.sh is) per topic: MockBroker.create_topic() ends the previous one
and starts `mockcluster -b 1 -p PARTITIONS -t TOPIC`, so each run has a fresh cluster,
its own bootstrap address, and the mock's CPU (Broker.cpu_seconds()) is that run's
alone. `down` and `up` go to its stdin command protocol (backlog mode).

The mock does not keep what it is given: each partition's log holds at most 5 MiB of
record batches as they arrived (compressed) and 100,000 batches
(rd_kafka_mock_partition_init(): max_size, max_cnt; not settable through any API), and
older batches are dropped as new ones arrive. A 200 MB access corpus already loses its
first batches (measured: consuming from the beginning after kcat -P gave 642,751 of
1,006,882 lines), and the mock process stays at 30-40 MiB however much it was given.
So the topic cannot be consumed after the run as it is from Kafka.

Instead a tap process (`tap`) follows the topic from offset 0 while the contender runs:
a Fetch v5 loop over one socket that appends each record batch's payload, still
compressed, to DIR/<codec>.bin as (length, record count, payload), and advances by the
batch's last offset. It does not decompress, so it keeps up with little CPU (0.2-0.5
CPU-s for 1 GiB here; measured and reported): the mock answers a Fetch with one batch per
partition, and the tap asks again at once. (kcat -C as the follower was tried: at ~3
CPU-s/GiB it competed with the contender for the 2 cores and fell behind the mock's
retention in one of two 1 GiB runs.) If the tap falls behind anyway, the mock answers
OFFSET_OUT_OF_RANGE: the tap counts the records it never saw (up to the log start
offset) and the run is reported as not verified, never as the contender's loss. Once
the contender has stopped, the harness writes a line to the tap's stdin; the tap goes
on until every partition's fetch offset has reached its high watermark, prints a JSON
summary and exits. `decode` (run by the harness after that, outside the timed part)
decompresses the payloads (zstd through libzstd with ctypes, gzip with zlib;
librdkafka sends a batch uncompressed when compression does not pay) and writes every
record's value and a newline to a file, which run.py then hashes as it hashes kcat's
output from Kafka: 4-8 s per GiB here, a pure-Python record parser.

Standard library only (ctypes loads libzstd.so.1, which librdkafka depends on).
"""
import argparse
import ctypes
import ctypes.util
import json
import os
import resource
import select
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path

from kafkawire import Connection, kstr, topic_partitions

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

CODECS = {0: "none", 1: "gzip", 2: "snappy", 3: "lz4", 4: "zstd"}
ERR_OFFSET_OUT_OF_RANGE = 1
FETCH_MAX_WAIT_MS = 100     # the mock holds an empty answer this long
BATCH_HEADER = 61           # RecordBatch v2 header, up to and including the record count


# ------------------------------------------------------------------------ the tap

class Fetcher:
    """Fetch v5 against one broker (the mock's only one, leader of every partition), over
    kafkawire.Connection (the socket and framing run.py's KafkaWire uses too)."""

    def __init__(self, bootstrap, topic, partitions):
        self.bootstrap = bootstrap
        self.topic = kstr(topic)
        self.partitions = partitions
        self.conn = None

    def connect(self):
        self.close()
        self.conn = Connection(self.bootstrap, "ringtail-bench-tap", timeout=5,
                               rcvbuf=4 << 20)

    def close(self):
        if self.conn:
            self.conn.close()
            self.conn = None

    def fetch(self, offsets, part_max_bytes=64 << 20):
        """{partition: (error, high watermark, log start offset, records bytes)}."""
        body = struct.pack(">iiiib", -1, FETCH_MAX_WAIT_MS, 1, 256 << 20, 0)
        body += struct.pack(">i", 1) + self.topic
        body += struct.pack(">i", self.partitions)
        for p in range(self.partitions):
            body += struct.pack(">iqqi", p, offsets[p], -1, part_max_bytes)
        r = self.conn.request(1, 5, body)
        return dict(topic_partitions(r, 4, self._partition))    # after throttle_time_ms

    @staticmethod
    def _partition(r, pos):
        part, err, hw, _lso, log_start, naborted = struct.unpack_from(">ihqqqi", r, pos)
        pos += 34 + max(naborted, 0) * 16
        (rlen,) = struct.unpack_from(">i", r, pos)
        pos += 4
        rec = bytes(r[pos:pos + rlen]) if rlen > 0 else b""
        return (part, (err, hw, log_start, rec)), pos + max(rlen, 0)


def tap_main(a):
    """Follows the topic from offset 0 into a.dir until told to finish (a line or EOF on
    stdin) and caught up; prints a JSON summary."""
    d = Path(a.dir)
    d.mkdir(parents=True, exist_ok=True)
    files = {}

    def payload_file(codec):
        if codec not in files:
            files[codec] = open(d / f"{CODECS.get(codec, codec)}.bin", "wb")
        return files[codec]

    f = Fetcher(a.bootstrap, a.topic, a.partitions)
    offsets = [0] * a.partitions
    hws = [0] * a.partitions
    records = {}
    batches = control = dropped = misaligned = reconnects = requests = 0
    unsupported = set()
    finishing = False
    finish_deadline = None
    t0 = time.monotonic()
    stdin_open = True
    status = "ok"
    while True:
        if stdin_open and not finishing:
            ready, _, _ = select.select([sys.stdin], [], [], 0)
            if ready:
                sys.stdin.readline()
                finishing = True
                finish_deadline = time.monotonic() + a.finish_timeout
        if finishing and time.monotonic() > finish_deadline:
            status = f"not caught up within {a.finish_timeout:g} s of the finish request"
            break
        if f.conn is None:
            try:
                f.connect()
            except OSError:
                time.sleep(0.05)
                continue
        try:
            resp = f.fetch(offsets)
            requests += 1
        except (OSError, ConnectionError, struct.error):
            # The mock broker is down (backlog mode) or restarting: try again.
            f.close()
            reconnects += 1
            time.sleep(0.05)
            continue
        got = 0
        complete = len(resp) == a.partitions
        for p, (err, hw, log_start, rec) in resp.items():
            if err == ERR_OFFSET_OUT_OF_RANGE and log_start > offsets[p]:
                # The mock dropped batches this tap never fetched.
                dropped += log_start - offsets[p]
                offsets[p] = log_start
                complete = False
                continue
            if err:
                complete = False
                continue
            hws[p] = hw
            pos = 0
            while pos + BATCH_HEADER <= len(rec):
                base, blen = struct.unpack_from(">qi", rec, pos)
                end = pos + 12 + blen
                if end > len(rec):
                    break                   # a partial batch at the end: fetched again
                magic = rec[pos + 16]
                attrs, last_delta = struct.unpack_from(">hi", rec, pos + 21)
                (count,) = struct.unpack_from(">i", rec, pos + 57)
                nxt = base + last_delta + 1
                if magic != 2:
                    unsupported.add(f"magic {magic}")
                elif base != offsets[p]:
                    misaligned += 1         # never expected: batches start where we asked
                elif attrs & 0x20:
                    control += count        # transaction markers: none here
                else:
                    codec = attrs & 7
                    if codec not in (0, 1, 4):
                        unsupported.add(CODECS.get(codec, str(codec)))
                    else:
                        payload = rec[pos + BATCH_HEADER:end]
                        pf = payload_file(codec)
                        pf.write(struct.pack(">ii", len(payload), count))
                        pf.write(payload)
                        records[codec] = records.get(codec, 0) + count
                        batches += 1
                if nxt > offsets[p]:
                    offsets[p] = nxt
                got += 1
                pos = end
        if finishing and complete and not got and all(o >= h for o, h in zip(offsets, hws)):
            break
    f.close()
    for pf in files.values():
        pf.close()
    ru = resource.getrusage(resource.RUSAGE_SELF)
    if unsupported:
        status = "unsupported record batches: " + ", ".join(sorted(unsupported))
    elif misaligned:
        status = f"{misaligned} batches did not start at the offset asked for"
    summary = {"status": status, "records": sum(records.values()),
               "records_by_codec": {CODECS[c]: n for c, n in records.items()},
               "batches": batches, "control_records": control, "dropped_records": dropped,
               "end_offsets": offsets, "high_watermarks": hws, "requests": requests,
               "reconnects": reconnects, "seconds": round(time.monotonic() - t0, 3),
               "cpu_s": round(ru.ru_utime + ru.ru_stime, 3),
               "maxrss_mib": round(ru.ru_maxrss / 1024, 1)}
    print(json.dumps(summary), flush=True)
    return 0 if status == "ok" else 1


# ------------------------------------------------------------------------ decoding

class Zstd:
    """ZSTD_decompress() of libzstd.so.1 through ctypes, into one reused buffer that
    doubles when a frame does not fit (librdkafka's frames do not state their size)."""

    def __init__(self):
        name = ctypes.util.find_library("zstd") or "libzstd.so.1"
        lib = ctypes.CDLL(name)
        lib.ZSTD_decompress.restype = ctypes.c_size_t
        lib.ZSTD_decompress.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_char_p,
                                        ctypes.c_size_t)
        lib.ZSTD_isError.restype = ctypes.c_uint
        lib.ZSTD_isError.argtypes = (ctypes.c_size_t,)
        lib.ZSTD_getErrorName.restype = ctypes.c_char_p
        lib.ZSTD_getErrorName.argtypes = (ctypes.c_size_t,)
        self.lib = lib
        self.cap = 8 << 20
        self.buf = ctypes.create_string_buffer(self.cap)

    def decompress(self, frame):
        while True:
            r = self.lib.ZSTD_decompress(self.buf, self.cap, frame, len(frame))
            if not self.lib.ZSTD_isError(r):
                return ctypes.string_at(self.buf, r)
            if self.cap >= 1 << 31:
                raise ValueError(f"zstd: {self.lib.ZSTD_getErrorName(r).decode()}")
            self.cap *= 2
            self.buf = ctypes.create_string_buffer(self.cap)


def varint_rest(buf, pos, v):
    """(value, next position) of an unsigned varint whose first byte v (continuation bit
    set) has been read; pos is the position of its second byte."""
    v &= 0x7f
    sh = 7
    while True:
        b = buf[pos]
        pos += 1
        v |= (b & 0x7f) << sh
        if not b & 0x80:
            return v, pos
        sh += 7


def record_values(buf):
    """The values of the records in buf (a batch's decompressed records); a null value
    gives b"" as kcat's %s does. The varints' one-byte case is decoded inline, longer
    ones by varint_rest() (the hot loop of decoding: 4-8 s per GiB)."""
    n = len(buf)
    pos = 0
    out = []
    app = out.append
    rest = varint_rest
    while pos < n:
        v = buf[pos]                        # record length
        pos += 1
        if v & 0x80:
            v, pos = rest(buf, pos, v)
        end = pos + ((v >> 1) ^ -(v & 1))
        p = pos + 1                         # attributes
        while buf[p] & 0x80:                # timestampDelta
            p += 1
        p += 1
        while buf[p] & 0x80:                # offsetDelta
            p += 1
        p += 1
        v = buf[p]                          # key length
        p += 1
        if v & 0x80:
            v, p = rest(buf, p, v)
        kl = (v >> 1) ^ -(v & 1)
        if kl > 0:
            p += kl
        v = buf[p]                          # value length
        p += 1
        if v & 0x80:
            v, p = rest(buf, p, v)
        vl = (v >> 1) ^ -(v & 1)
        app(buf[p:p + vl] if vl > 0 else b"")
        pos = end
    if pos != n:
        raise ValueError("a record runs past the end of its batch")
    return out


def batches(path):
    """(record count, payload) of each batch in a file the tap wrote."""
    with open(path, "rb") as f:
        while head := f.read(8):
            length, count = struct.unpack(">ii", head)
            payload = f.read(length)
            if len(payload) != length:
                raise ValueError(f"{path} ends in the middle of a batch")
            yield count, payload


def decode(dir_, out_path):
    """Writes the value of every record the tap fetched, one per line, to out_path.
    Returns {records}."""
    d = Path(dir_)
    n = 0
    inflate = {"none": bytes, "gzip": lambda b: zlib.decompress(b, 47)}
    with open(out_path, "wb") as out:
        for codec in ("none", "gzip", "zstd"):
            path = d / f"{codec}.bin"
            if not path.exists():
                continue
            if codec == "zstd":
                inflate["zstd"] = Zstd().decompress
            fn = inflate[codec]
            for count, payload in batches(path):
                vals = record_values(fn(payload))
                if len(vals) != count:
                    raise ValueError(f"a {codec} batch of {count} records held {len(vals)}")
                if vals:
                    out.write(b"\n".join(vals))
                    out.write(b"\n")
                n += count
    return {"records": n}


# ------------------------------------------------------------------------ the broker

def find_mockcluster(ringtail_bin=None):
    """$RINGTAIL_MOCKCLUSTER, else tests/mockcluster next to the ringtail binary (the build
    tree's layout), else build/dev's, else build/release's. None if none is there."""
    given = os.environ.get("RINGTAIL_MOCKCLUSTER")
    if given:
        return Path(given)
    cands = []
    if ringtail_bin:
        cands.append(Path(ringtail_bin).parent / "tests" / "mockcluster")
    cands += [ROOT / "build" / p / "tests" / "mockcluster" for p in ("dev", "release")]
    for c in cands:
        if os.access(c, os.X_OK):
            return c
    return None


class MockBroker:
    """The Broker interface of run.py (start, stop, create_topic, cpu_seconds, warm_up,
    down, up, tap, consume) over mockcluster processes, one per topic."""

    name = "mock"
    external = None

    def __init__(self, run, ringtail_bin=None):
        self.run = run                  # the run module (Procs, BenchError, log)
        self.bin = find_mockcluster(ringtail_bin)
        self.proc = None
        self.stderr = None
        self.bootstrap = None
        self.pid = None
        self.buf = b""
        self.librdkafka = "?"
        self.peak_rss_mib = 0.0        # over every mockcluster process of the invocation
        self.version = "librdkafka mock cluster"
        self.process = None

    def describe(self):
        return (f"librdkafka {self.librdkafka} mock cluster: {self.bin} -b 1 -p PARTITIONS "
                f"-t TOPIC, a new process per run (1 broker; each partition keeps at most "
                f"5 MiB of batches, see bench/README.md)")

    def start(self):
        if not self.bin:
            raise self.run.BenchError(
                "no mockcluster program: build it with `cmake --preset dev && cmake --build "
                "--preset dev` (build/dev/tests/mockcluster), or set RINGTAIL_MOCKCLUSTER")
        try:
            out = subprocess.run(["ldd", str(self.bin)], capture_output=True, text=True,
                                 check=False).stdout
            lib = next((ln.split("=>")[1].split("(")[0].strip() for ln in out.splitlines()
                        if "librdkafka.so" in ln and "=>" in ln), None)
            if lib:
                r = ctypes.CDLL(lib)
                r.rd_kafka_version_str.restype = ctypes.c_char_p
                self.librdkafka = r.rd_kafka_version_str().decode()
        except (OSError, IndexError):
            pass
        self.version = f"librdkafka {self.librdkafka} mock cluster"
        self._spawn([])
        self.run.log(f"mock cluster ({self.bin}, librdkafka {self.librdkafka}) at "
                     f"{self.bootstrap}; a new one per topic")

    def _spawn(self, topic_args, logpath=None):
        self._quit()
        argv = [str(self.bin), "-b", "1", *topic_args]
        self.stderr = open(logpath, "ab") if logpath else subprocess.DEVNULL
        self.proc = self.run.Procs.popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                         stderr=self.stderr)
        self.pid = self.proc.pid
        self.buf = b""
        line = self._readline(30, "its bootstrap line")
        if not line.startswith("bootstrap="):
            raise self.run.BenchError(f"{' '.join(argv)}: expected bootstrap=..., got {line!r}")
        self.bootstrap = line[len("bootstrap="):]
        self.process = {"pid": self.pid, "argv": argv}

    def _readline(self, timeout, what):
        deadline = time.monotonic() + timeout
        fd = self.proc.stdout.fileno()
        while b"\n" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise self.run.BenchError(f"mockcluster: no {what} within {timeout} s")
            ready, _, _ = select.select([fd], [], [], left)
            if ready:
                chunk = os.read(fd, 4096)
                if not chunk:
                    raise self.run.BenchError(f"mockcluster exited before {what}")
                self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return line.decode()

    def cmd(self, line):
        self.proc.stdin.write(line.encode() + b"\n")
        self.proc.stdin.flush()
        answer = self._readline(10, f"answer to {line!r}")
        if answer != "ok":
            raise self.run.BenchError(f"mockcluster: {line!r}: {answer}")

    def _note_rss(self):
        if self.pid:
            hwm = self.run.proc_hwm_mib(self.pid)
            if hwm and hwm > self.peak_rss_mib:
                self.peak_rss_mib = hwm

    def _quit(self):
        p = self.proc
        if not p:
            return
        self._note_rss()
        if p.poll() is None:
            try:
                p.stdin.write(b"quit\n")
                p.stdin.close()
            except (BrokenPipeError, ValueError):
                pass
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        for f in (p.stdin, p.stdout):
            try:
                f.close()
            except (OSError, ValueError):
                pass
        if self.stderr not in (None, subprocess.DEVNULL):
            self.stderr.close()
        self.run.Procs.forget(p)
        self.proc = self.pid = None

    def stop(self):
        self._quit()

    def cpu_seconds(self):
        return self.run.proc_cpu_seconds(self.pid) if self.pid else None

    def sys_seconds(self):
        split = self.run.proc_cpu_split(self.pid) if self.pid else None
        return split[1] if split else None

    def jit_seconds(self):
        return None     # no JVM

    def rss_mib(self):
        """(VmHWM, VmRSS) of the current mockcluster process."""
        return self.run.proc_mem_mib(self.pid) if self.pid else (None, None)

    def create_topic(self, name, partitions, counter, configs=None, logdir=None):
        if configs:
            raise self.run.BenchError(f"the mock cluster takes no topic configs ({configs})")
        self._spawn(["-p", str(partitions), "-t", name],
                    logdir / f"{name}.mockcluster.log" if logdir else None)
        counter.retarget(self.bootstrap)
        deadline = time.monotonic() + 30
        while True:
            try:
                if counter.count(name, partitions) == 0:
                    return
                raise self.run.BenchError(f"new topic {name} is not empty")
            except (self.run.BenchError, OSError) as e:
                if "not empty" in str(e) or time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def warm_up(self, workdir, corpus_paths, nbytes, rounds, settings=None):
        self.run.log("no warm-up against the mock cluster (no JIT, a new process per run)")

    def down(self):
        self.cmd("down -1")

    def up(self):
        self.cmd("up -1")

    def tap(self, topic, partitions, workdir, logpath):
        return Tap(self.run, self.bootstrap, topic, partitions, Path(workdir) / "tap", logpath)


class Tap:
    """A tap process following one topic of the mock (see DESIGN)."""

    def __init__(self, run, bootstrap, topic, partitions, dir_, logpath, finish_timeout=120):
        self.run = run
        self.dir = Path(dir_)
        self.log = open(logpath, "ab")
        self.proc = run.Procs.popen(
            [sys.executable, str(Path(__file__)), "tap", "--bootstrap", bootstrap,
             "--topic", topic, "--partitions", str(partitions), "--dir", str(self.dir),
             "--finish-timeout", str(finish_timeout)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log)
        self.summary = None

    def cpu_seconds(self):
        return self.run.proc_cpu_seconds(self.proc.pid)

    def finish(self, timeout=300):
        """Tells the tap the contender has stopped; waits for its summary."""
        if self.summary is not None:
            return self.summary
        try:
            out, _ = self.proc.communicate(b"finish\n", timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise self.run.BenchError(f"the mock tap did not finish within {timeout} s")
        finally:
            self.run.Procs.forget(self.proc)
            self.log.close()
        try:
            self.summary = json.loads(out.decode().strip().splitlines()[-1])
        except (ValueError, IndexError):
            raise self.run.BenchError(f"the mock tap exited {self.proc.returncode} without a "
                                      f"summary (see {self.log.name})")
        return self.summary

    def consume(self, out_path):
        """Finishes the tap and writes the topic's values to out_path ('%s\\n'). Raises
        run.NotVerified if the tap missed records (the mock dropped them first)."""
        s = self.finish()
        if s["dropped_records"]:
            raise self.run.NotVerified(
                f"the mock dropped {s['dropped_records']} records before the tap fetched "
                f"them (it keeps 5 MiB per partition); nothing is known about them")
        if s["status"] != "ok":
            raise self.run.NotVerified(f"the mock tap: {s['status']}")
        try:
            got = decode(self.dir, out_path)
        except ValueError as e:
            raise self.run.NotVerified(f"decoding the tapped batches: {e}")
        if got["records"] != s["records"]:
            raise self.run.NotVerified(f"decoded {got['records']} records of the "
                                       f"{s['records']} the tap fetched")
        return s

    def close(self):
        if self.proc.returncode is None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
            self.run.Procs.forget(self.proc)
        if not self.log.closed:
            self.log.close()
        for p in self.dir.glob("*.bin"):
            p.unlink(missing_ok=True)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("tap", help="follow a topic of the mock from offset 0")
    t.add_argument("--bootstrap", required=True)
    t.add_argument("--topic", required=True)
    t.add_argument("--partitions", type=int, required=True)
    t.add_argument("--dir", required=True)
    t.add_argument("--finish-timeout", type=float, default=120)
    dc = sub.add_parser("decode", help="write the tapped records' values, one per line")
    dc.add_argument("--dir", required=True)
    dc.add_argument("--out", required=True)
    a = ap.parse_args(argv)
    if a.cmd == "tap":
        return tap_main(a)
    print(json.dumps(decode(a.dir, a.out)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
