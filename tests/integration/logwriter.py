# SPDX-License-Identifier: Apache-2.0
"""Reusable pieces for the TailSource integration tests: an application-like line
writer, logrotate and scripted rename rotations, exact multiset/order comparisons with
readable diffs, and a few Kafka helpers that kcat offers but harness.py does not
(end offsets, headers).

Nothing here sleeps as a synchronisation: waits poll a condition with a deadline."""
import collections
import json
import os
import re
import shutil
import subprocess
import threading
import time
from pathlib import Path

import harness

# ---------------------------------------------------------------------------
# The writer

# Compressible filler, like real log text; never contains a newline.
_FILLER = b"the quick brown fox jumps over the lazy dog 0123456789 " * 20


def make_line(writer, seq, line_bytes=64):
    """Line `seq` of writer `writer`: b"w<writer>-<seq:08d> " then filler up to
    line_bytes bytes (no newline). Unique across writers and self-describing."""
    head = b"w%s-%08d " % (str(writer).encode(), seq)
    pad = max(0, line_bytes - len(head))
    filler = (_FILLER * (pad // len(_FILLER) + 1))[:pad]
    return head + filler


def parse_line(line):
    """(writer, seq) of a line made by make_line, or None."""
    m = re.match(rb"w([^-\s]+)-(\d{8}) ", line)
    return (m.group(1).decode(), int(m.group(2))) if m else None


class LineWriter:
    """Appends lines to a path the way applications do: O_WRONLY|O_APPEND|O_CREAT.

    - reopen=False: one fd kept open across rotations, like an application that only
      reopens its log when told (SIGHUP from logrotate's postrotate): call reopen().
      After a rename rotation it keeps writing to the renamed file until then; under
      copytruncate it writes at the new end of the truncated file.
    - reopen=True: the path is opened for every batch and closed after it, so after a
      rename rotation the next batch creates a new file at the path.

    start() runs a thread writing `batch` lines at a time at `rate` lines/s (None: as
    fast as possible); write_now(n) writes n lines synchronously from the caller (also
    while paused or never started). pause() returns once no batch is in progress and
    none will start until resume(). stop() joins the thread and returns every line
    written, in order. `by_file` maps (st_dev, st_ino) of the file each batch went to
    (fstat of the fd right after the write) to its lines in written order: the per-file
    order a tailer must keep.
    """

    running = []

    def __init__(self, path, name="0", line_bytes=64, rate=None, batch=50, reopen=False):
        self.path = str(path)
        self.name = str(name)
        self.line_bytes = line_bytes
        self.rate = rate
        self.batch = batch
        self.reopen_each = reopen
        self.lines = []
        self.by_file = collections.OrderedDict()
        self.error = None
        self._fd = None
        self._lock = threading.Lock()  # held while a batch is written
        self._gate = threading.Event()  # set: the thread may write
        self._gate.set()
        self._stop = threading.Event()
        self._thread = None
        LineWriter.running.append(self)

    @property
    def count(self):
        return len(self.lines)

    def counter(self):
        return collections.Counter(self.lines)

    def line(self, seq):
        return make_line(self.name, seq, self.line_bytes)

    def _open(self):
        return os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)

    def _write_batch(self, n):  # the caller holds _lock
        seq0 = len(self.lines)
        lines = [self.line(seq0 + i) for i in range(n)]
        data = memoryview(b"".join(l + b"\n" for l in lines))
        fd = self._fd
        if fd is None:
            fd = self._open()
            if not self.reopen_each:
                self._fd = fd
        try:
            while data:
                k = os.write(fd, data)
                data = data[k:]
            st = os.fstat(fd)
        finally:
            if self.reopen_each:
                os.close(fd)
        self.lines.extend(lines)
        self.by_file.setdefault((st.st_dev, st.st_ino), []).extend(lines)
        return lines

    def write_now(self, n):
        """Writes n lines now from the calling thread; returns them."""
        with self._lock:
            return self._write_batch(n)

    def reopen(self):
        """Closes the fd and opens the path again now (creating the file if it is
        missing), like an application handling SIGHUP after a rotation."""
        with self._lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None
            if not self.reopen_each:
                self._fd = self._open()

    def pause(self):
        self._gate.clear()
        with self._lock:  # waits for a batch in progress to end
            pass

    def resume(self):
        self._next = time.monotonic()
        self._gate.set()

    def start(self):
        assert self._thread is None
        self._next = time.monotonic()
        self._thread = threading.Thread(target=self._run, name=f"writer-{self.name}",
                                        daemon=True)
        self._thread.start()
        return self

    def _run(self):
        try:
            while not self._stop.is_set():
                self._gate.wait()
                with self._lock:
                    if self._stop.is_set() or not self._gate.is_set():
                        continue
                    self._write_batch(self.batch)
                if self.rate:
                    self._next += self.batch / self.rate
                    now = time.monotonic()
                    if self._next > now:
                        self._stop.wait(self._next - now)
                    elif now - self._next > 1.0:
                        self._next = now  # fell behind (paused, loaded machine): no burst
                else:
                    time.sleep(0)
        except BaseException as e:  # reported by stop()
            self.error = e

    def wait_written(self, n, timeout=60):
        """Waits until at least n lines were written in total."""
        harness.wait_until(lambda: self.count >= n or self.error, timeout,
                           f"writer {self.name} to write {n} lines", interval=0.005)
        if self.error:
            raise self.error

    def stop(self):
        """Stops the thread (if started), closes the fd; returns every line written."""
        self._stop.set()
        self._gate.set()
        if self._thread is not None:
            self._thread.join(30)
            assert not self._thread.is_alive(), f"writer {self.name} did not stop"
        with self._lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None
        if self in LineWriter.running:
            LineWriter.running.remove(self)
        if self.error:
            raise AssertionError(f"writer {self.name} failed: {self.error!r}")
        return list(self.lines)

    @classmethod
    def stop_all(cls):
        """Stops every writer still running (test teardown); returns how many were."""
        left = list(cls.running)
        for w in left:
            try:
                w.stop()
            except AssertionError:
                pass
        cls.running.clear()
        return len(left)


# ---------------------------------------------------------------------------
# Rotation

LOGROTATE = "/usr/sbin/logrotate"


def logrotate_bin():
    """The Debian package's logrotate, or a clear failure."""
    if not os.access(LOGROTATE, os.X_OK):
        found = shutil.which("logrotate")
        raise AssertionError(
            f"{LOGROTATE} is missing{f' (found {found} instead)' if found else ''}: these tests "
            f"drive Debian's logrotate; install it with packaging/setup.sh (package 'logrotate')")
    return LOGROTATE


class Logrotate:
    """logrotate for one path, with its own config and state file, run with
    `logrotate -s STATE -f CONF` (forced: every run rotates).

    mode: "create" (rename app.log -> app.log.1 after shifting .1 -> .2 ...; then a new
    empty app.log with the old one's mode and owner) or "copytruncate" (copy app.log to
    app.log.1, then truncate app.log in place). `rotate` files are kept, older ones are
    deleted; no compression unless compress=True (then with delaycompress, so .1 stays
    plain); missingok; ifempty (rotate even an empty file: notifempty is off).

    logrotate run as root ignores a config that is not owned by root or that group or
    others can write (and warns unless its mode is 0600/0400), and refuses to rotate in
    a directory that group or others can write without a `su` line: the config is
    written 0600 and owned by the caller, the log's directory is checked."""

    def __init__(self, path, workdir, mode="create", rotate=5, compress=False, name=None):
        assert mode in ("create", "copytruncate"), mode
        self.bin = logrotate_bin()
        self.path = Path(path)
        workdir = Path(workdir)
        name = name or f"logrotate-{self.path.name}"
        self.conf = workdir / f"{name}.conf"
        self.state = workdir / f"{name}.state"
        self.runs = 0
        parent = self.path.parent.stat()
        if parent.st_mode & 0o022:
            raise AssertionError(f"{self.path.parent} is group- or world-writable (mode "
                                 f"{parent.st_mode & 0o7777:o}): logrotate would refuse it")
        lines = [f"rotate {rotate}", mode, "missingok", "ifempty", "nodateext", "nomail",
                 "noolddir"]
        lines += ["compress", "delaycompress"] if compress else ["nocompress"]
        text = (f"# written by the ringtail test suite\n\"{self.path}\" {{\n" +
                "".join(f"    {l}\n" for l in lines) + "}\n")
        fd = os.open(self.conf, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.chmod(self.conf, 0o600)  # whatever the umask was
        if os.geteuid() == 0:
            os.chown(self.conf, 0, 0)

    def run(self):
        r = subprocess.run([self.bin, "-s", str(self.state), "-f", str(self.conf)],
                           capture_output=True, text=True, timeout=60)
        out = r.stdout + r.stderr
        if r.returncode != 0 or re.search(r"(?i)\berror\b|ignoring|skipping", out):
            raise AssertionError(f"logrotate -s {self.state} -f {self.conf} failed "
                                 f"({r.returncode}):\n{out}\nconfig:\n{self.conf.read_text()}")
        self.runs += 1
        return out


def rotated_names(path):
    """{k: Path} of the existing path.k files (k >= 1)."""
    path = Path(path)
    rx = re.compile(re.escape(path.name) + r"\.(\d+)$")
    out = {}
    for p in path.parent.iterdir():
        m = rx.match(p.name)
        if m:
            out[int(m.group(1))] = p
    return out


def shift_rotate(path, keep=None):
    """A scripted rename rotation: path.k -> path.(k+1) from the highest k down (path.k
    with k >= keep is deleted instead, when keep is given), then path -> path.1. A
    missing path (nobody recreated it since the last rotation) is not an error. The
    writer creates the new file at path (reopen)."""
    path = Path(path)
    for k, p in sorted(rotated_names(path).items(), reverse=True):
        if keep is not None and k >= keep:
            os.unlink(p)
        else:
            os.rename(p, f"{path}.{k + 1}")
    if os.path.lexists(path):
        os.rename(path, f"{path}.1")


# ---------------------------------------------------------------------------
# Comparisons


def show(line, width=90):
    """A short printable form of a (maybe huge) line."""
    if line is None:
        return "None"
    if len(line) <= width:
        return repr(line)
    return f"{line[:width]!r}... ({len(line)} bytes)"


def _log_tail(log, n=60):
    if not log:
        return ""
    lines = log.splitlines()
    return f"\n--- ringtail's log (last {min(n, len(lines))} of {len(lines)} lines) ---\n" + \
        "\n".join(lines[-n:])


def multiset_diff(expected, got, limit=20):
    """'' when `got` holds exactly the lines of `expected` (as multisets), otherwise a
    readable report: counts, missing lines (in expected order), duplicated lines with
    their counts, unexpected lines."""
    expected = list(expected)
    got = list(got)
    e = collections.Counter(expected)
    g = collections.Counter(got)
    if e == g:
        return ""
    missing = e - g
    extra = g - e
    dups = {l: c for l, c in extra.items() if e[l]}
    unexpected = {l: c for l, c in extra.items() if not e[l]}
    out = [f"expected {len(expected)} records ({len(e)} distinct), got {len(got)}: "
           f"{sum(missing.values())} missing, {sum(dups.values())} extra copies of "
           f"{len(dups)} expected lines, {sum(unexpected.values())} unexpected"]
    if missing:
        seen = set()
        order = [l for l in expected if l in missing and not (l in seen or seen.add(l))]
        out.append(f"missing ({len(order)} distinct; first {min(limit, len(order))} in "
                   f"written order):")
        out += [f"  {show(l)}" + (f" x{missing[l]}" if missing[l] > 1 else "")
                for l in order[:limit]]
        seqs = [parse_line(l) for l in order]
        if seqs and all(seqs):
            by_w = collections.defaultdict(list)
            for w, s in seqs:
                by_w[w].append(s)
            out.append("  missing seq ranges: " + "; ".join(
                f"w{w}: {_ranges(v)}" for w, v in sorted(by_w.items())))
    if dups:
        out.append(f"duplicated ({len(dups)} distinct; got/expected):")
        out += [f"  {show(l)}: {g[l]}/{e[l]}" for l in list(dups)[:limit]]
    if unexpected:
        out.append(f"unexpected ({len(unexpected)} distinct):")
        out += [f"  {show(l)}" + (f" x{c}" if c > 1 else "")
                for l, c in list(unexpected.items())[:limit]]
    return "\n".join(out)


def _ranges(nums, limit=12):
    nums = sorted(nums)
    rs = []
    for n in nums:
        if rs and n == rs[-1][1] + 1:
            rs[-1][1] = n
        else:
            rs.append([n, n])
    txt = ", ".join(f"{a}" if a == b else f"{a}-{b}" for a, b in rs[:limit])
    return txt + (f", ... ({len(rs)} ranges)" if len(rs) > limit else "")


def assert_same_lines(expected, got, what="records", log=None):
    """got holds exactly the lines of expected: same multiset, no loss, no duplicate."""
    d = multiset_diff(expected, got)
    if d:
        raise AssertionError(f"{what}: {d}{_log_tail(log)}")


def order_violations(got, groups, limit=5):
    """Checks that the lines of each group (one file's lines, in the order they were
    written) appear in `got` (the values of one partition, in offset order) in that
    order. Lines of got in no group are ignored. Returns descriptions of violations."""
    pos = {}
    for gi, seq in enumerate(groups):
        for i, l in enumerate(seq):
            pos[l] = (gi, i)
    last = {}
    bad = []
    for k, l in enumerate(got):
        p = pos.get(l)
        if p is None:
            continue
        gi, i = p
        if gi in last and i <= last[gi][0]:
            bad.append(f"record {k}: {show(l)} (line {i} of its file) came after line "
                       f"{last[gi][0]} {show(last[gi][1])}")
            if len(bad) >= limit:
                break
        last[gi] = (i, l)
    return bad


def assert_file_order(got, groups, what="records", log=None):
    bad = order_violations(got, list(groups))
    if bad:
        raise AssertionError(f"{what}: per-file order broken:\n  " + "\n  ".join(bad) +
                             _log_tail(log))


# ---------------------------------------------------------------------------
# Kafka helpers (kcat)


def topic_partitions(bootstrap, topic):
    """The topic's partition ids; [] when it does not exist (kcat -L does not create)."""
    r = subprocess.run(["kcat", "-L", "-b", bootstrap, "-t", topic, "-J"], capture_output=True,
                       timeout=60)
    if r.returncode != 0:
        err = r.stderr.decode(errors="replace")
        raise AssertionError(f"kcat -L failed ({r.returncode}): {err}")
    meta = json.loads(r.stdout)
    for t in meta.get("topics", []):
        if t.get("topic") == topic and not t.get("error"):
            return sorted(p["partition"] for p in t.get("partitions", []))
    return []


def topic_count(bootstrap, topic):
    """How many records the topic holds: the sum of its partitions' end offsets (the
    log starts at 0 and an idempotent, non-transactional producer writes no control
    records). Much cheaper than consuming everything."""
    parts = topic_partitions(bootstrap, topic)
    if not parts:
        return 0
    args = []
    for p in parts:
        args += ["-t", f"{topic}:{p}:-1"]
    # A topic just created may not have its leaders everywhere yet: a few retries.
    for attempt in range(50):
        r = subprocess.run(["kcat", "-Q", "-b", bootstrap, *args], capture_output=True,
                           text=True, timeout=60)
        if r.returncode == 0 or not re.search(
                r"Not leader for partition|Leader not available|Unknown topic", r.stderr):
            break
        time.sleep(0.1)
    if r.returncode != 0:
        raise AssertionError(f"kcat -Q failed ({r.returncode}): {r.stderr}")
    ends = [int(m) for m in re.findall(r"\[\d+\] offset (-?\d+)", r.stdout)]
    if len(ends) != len(parts):
        raise AssertionError(f"kcat -Q: unexpected output:\n{r.stdout}\n{r.stderr}")
    return sum(max(0, e) for e in ends)


def settle(bootstrap, topic, n, timeout=60, rt=None, interval=0.1):
    """Waits until the topic holds at least n records, or timeout seconds pass, or rt
    (a harness.Ringtail) exits. Never raises on a timeout: the caller compares what
    arrived and reports exactly what is missing. Returns the count seen last."""
    deadline = time.monotonic() + timeout
    while True:
        c = topic_count(bootstrap, topic)
        if c >= n or time.monotonic() > deadline:
            return c
        if rt is not None and rt.proc.poll() is not None:
            return c
        time.sleep(interval)


def kcat_consume_json(bootstrap, topic):
    """Every message of the topic with its headers, read with kcat -J (harness's
    kcat_consume does not print headers, and kcat's %h format cannot be parsed back when
    a value holds ',' or '='). A list of dicts: partition, offset, key, value (bytes or
    None) and headers (a list of (name, bytes-or-None) in record order), sorted by
    partition and offset. Keys, values and headers must be valid UTF-8 (kcat writes
    them into JSON strings)."""
    r = subprocess.run(["kcat", "-C", "-b", bootstrap, "-t", topic, "-e", "-q", "-o",
                        "beginning", "-J"], capture_output=True, timeout=120)
    if r.returncode != 0:
        err = r.stderr.decode(errors="replace")
        if "unknown topic" in err.lower():
            return []
        raise AssertionError(f"kcat failed ({r.returncode}): {err}")
    enc = lambda s: None if s is None else s.encode("utf-8", "surrogateescape")
    msgs = []
    for line in r.stdout.decode("utf-8", "surrogateescape").splitlines():
        if not line.strip():
            continue
        d = json.loads(line)
        h = d.get("headers") or []
        msgs.append({"partition": d["partition"], "offset": d["offset"],
                     "key": enc(d.get("key")), "value": enc(d.get("payload")),
                     "headers": [(h[i], enc(h[i + 1])) for i in range(0, len(h), 2)]})
    msgs.sort(key=lambda m: (m["partition"], m["offset"]))
    return msgs


# ---------------------------------------------------------------------------
# The process under test


def proc_cpu_seconds(pid):
    """utime + stime of a process, in seconds (/proc/PID/stat fields 14 and 15)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def open_paths(pid):
    """What the process's fds point at (readlink of /proc/PID/fd/*): a deleted file
    shows as 'PATH (deleted)'."""
    out = []
    d = f"/proc/{pid}/fd"
    for fd in os.listdir(d):
        try:
            out.append(os.readlink(f"{d}/{fd}"))
        except OSError:
            pass
    return out


def file_lines(path):
    """(offset, line) of every complete line of a file."""
    data = Path(path).read_bytes()
    out = []
    pos = 0
    while True:
        j = data.find(b"\n", pos)
        if j < 0:
            return out
        out.append((pos, data[pos:j]))
        pos = j + 1


if __name__ == "__main__":  # a self-check run by hand: python3 logwriter.py DIR
    import sys
    import tempfile

    d = Path(sys.argv[1] if len(sys.argv) > 1 else tempfile.mkdtemp(prefix="logwriter-"))
    d.mkdir(parents=True, exist_ok=True)
    print("self-check in", d)
    # keep-open writer, rename rotations, reopen.
    app = d / "keep.log"
    w = LineWriter(app, "k", line_bytes=40, rate=20000, batch=20).start()
    for i in range(5):
        w.wait_written(w.count + 200)
        shift_rotate(app, keep=3)
        w.wait_written(w.count + 20)
        w.reopen()
    lines = w.stop()
    print(f"keep-open: {len(lines)} lines, files {sorted(p.name for p in d.glob('keep.log*'))}, "
          f"{len(w.by_file)} inodes")
    assert len(set(lines)) == len(lines)
    assert [parse_line(l)[1] for l in lines] == list(range(len(lines)))
    on_disk = [l for p in sorted(d.glob("keep.log*")) for _, l in file_lines(p)]
    assert not multiset_diff([l for l in lines if l in set(on_disk)], on_disk)
    # reopen-per-batch writer and rotations: every line on disk exactly once (keep=None).
    app = d / "each.log"
    w = LineWriter(app, "e", rate=None, batch=10, reopen=True).start()
    for i in range(30):
        w.wait_written(w.count + 30)
        shift_rotate(app)
    lines = w.stop()
    on_disk = [l for p in d.glob("each.log*") for _, l in file_lines(p)]
    assert multiset_diff(lines, on_disk) == "", multiset_diff(lines, on_disk)
    for (dev, ino), ls in w.by_file.items():
        files = [p for p in d.glob("each.log*") if p.stat().st_ino == ino]
        assert len(files) == 1 and [l for _, l in file_lines(files[0])] == ls
    print(f"reopen-each: {len(lines)} lines in {len(w.by_file)} files: exact")
    # pause really stops writing.
    app = d / "pause.log"
    w = LineWriter(app, "p", rate=50000, batch=5).start()
    w.wait_written(100)
    w.pause()
    n = w.count
    time.sleep(0.2)
    assert w.count == n and app.stat().st_size == n * 65
    w.write_now(3)
    w.resume()
    w.wait_written(n + 200)
    lines = w.stop()
    assert [l for _, l in file_lines(app)] == lines
    print("pause/resume/write_now: exact")
    # logrotate, both modes.
    for mode in ("create", "copytruncate"):
        sub = d / mode
        sub.mkdir(exist_ok=True)
        app = sub / "app.log"
        lr = Logrotate(app, d, mode=mode, rotate=3)
        w = LineWriter(app, mode[0], rate=None, batch=10)
        w.write_now(1)
        inode = app.stat().st_ino
        for i in range(5):
            w.write_now(10)
            lr.run()
            if mode == "create":
                w.reopen()
        w.write_now(5)
        lines = w.stop()
        names = sorted(p.name for p in sub.iterdir())
        print(f"logrotate {mode}: files {names}; app.log inode "
              f"{'kept' if app.stat().st_ino == inode else 'new'}; "
              f"app.log holds {len(file_lines(app))} lines")
        assert names == ["app.log", "app.log.1", "app.log.2", "app.log.3"], names
        assert [l for _, l in file_lines(sub / "app.log.1")] == lines[-15:-5]
        assert [l for _, l in file_lines(app)] == lines[-5:]
        assert (app.stat().st_ino == inode) == (mode == "copytruncate")
    a, b = [b"x", b"y", b"y", b"z"], [b"y", b"x", b"q", b"x"]
    print("diff sample:\n" + multiset_diff(a, b))
    print("order sample:", order_violations([b"b", b"a"], [[b"a", b"b"]]))
    print("self-check OK")
