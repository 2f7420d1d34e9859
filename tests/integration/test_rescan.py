# SPDX-License-Identifier: Apache-2.0
"""TailSource's periodic rescan (`scan.interval.ms`) on a filesystem where inotify is
silent, end to end against a real Apache Kafka broker.

The silent filesystem is real, not a knob: a FUSE mount made by bindfs. ringtail watches
MNT/*.log while the test writes, appends and renames through SRC, the directory bindfs
mirrors. Changes made below a FUSE filesystem reach no inotify watch on the mount (the
kernel only raises events for operations that go through the mount itself), exactly as
on NFS (changes from other clients) and on some bind/FUSE/overlay set-ups. Every test
first proves that premise on its own mount with an inotify watch of its own (libc through
ctypes): a file created, appended, renamed and recreated through SRC must raise no event
on MNT, while a file created through MNT must (so the watch itself works). A second watch
stays open on MNT for the whole test and must have seen nothing at its end: whatever
ringtail found, it found by rescanning.

bindfs options (BINDFS_OPTS), chosen so that the FUSE layer never shows stale data:
- `-f`: foreground, so the test owns the bindfs process (its PID) and can stop it;
- `attr_timeout=0`: no attribute caching in the kernel: every stat()/fstat() asks bindfs,
  so the sizes ringtail's rescan compares are always the current ones;
- `entry_timeout=0`, `negative_timeout=0`: no cached name lookups, positive or negative:
  a file created or renamed through SRC is visible under its new name at once, and a
  name looked up while it was missing is not remembered as missing;
- `direct_io`: reads bypass the kernel page cache and go to bindfs (which preads the
  underlying file), so bytes appended through SRC are never hidden behind cached pages
  or a cached end of file;
- nothing else: bindfs' own defaults already mirror inode numbers (use_ino,
  readdir_ino), keep file handles open on the underlying file (a renamed file stays
  readable through the fd ringtail holds), and run single-threaded. `--enable-ioctl`,
  lock forwarding and the permission options do not touch what a tailer sees.

ringtail runs with `io.backend=poll` here (poll(2) + pread(2)): on the kernel these tests
were written on (6.18), an io_uring IORING_OP_READ of a FUSE file opened with direct_io
completes with a wrong length (1548 for a 12-byte file, the full request size for a
10,100-byte one; pread(2) of the same fd returns 12 and 10,100), so ringtail would ship
stale buffer bytes. Without direct_io io_uring is right, but then the kernel page cache
of a path (see below) may serve one file's pages for another.

What bindfs cannot hide: it is a path-based FUSE filesystem (libfuse's high-level API,
like sshfs and most FUSE filesystems), and the kernel asks it for the attributes of an
open file by path, not by file handle. After `mv app.log app.log.1` through SRC,
fstat() of an fd opened as MNT/app.log fails with ENOENT, then, once a new app.log
exists, reports the NEW file's inode and size; read() through the fd still returns the
renamed file's bytes. test_rescan_rename_rotation depends on how ringtail copes with that:
it uses an fstat() size only when the inode is still the one it opened (io/tail.c,
tail_fstat()), and otherwise reads until read() says the end (before that check it
took the new file's size for a truncation of the renamed one and sent it again and
again).

Each test compares the multiset of lines written with the multiset of records kcat reads
back (no loss, no duplicate) and each file's order within the partition. The only
deadline is a generous wait for the record count; nothing asserts how fast the rescan
is (the times are printed)."""
import ctypes
import os
import select
import shutil
import struct
import subprocess
import time
from pathlib import Path

import pytest

import harness
from harness import Ringtail, kcat_consume, values
from logwriter import LineWriter, assert_same_lines, shift_rotate, topic_count
from test_tailsource import finish, start, wait_lines

pytestmark = pytest.mark.usefixtures("ringtail_bin")

LINE = 100  # bytes of a writer line, newline excluded
SCAN_MS = 500  # scan.interval.ms of every test here
WAIT = 60  # seconds: the generous deadline of every wait for records

BINDFS_OPTS = "attr_timeout=0,entry_timeout=0,negative_timeout=0,direct_io"

# <sys/inotify.h>
IN_MODIFY = 0x002
IN_ATTRIB = 0x004
IN_CLOSE_WRITE = 0x008
IN_MOVED_FROM = 0x040
IN_MOVED_TO = 0x080
IN_CREATE = 0x100
IN_DELETE = 0x200
IN_DELETE_SELF = 0x400
IN_MOVE_SELF = 0x800
IN_UNMOUNT = 0x2000
IN_Q_OVERFLOW = 0x4000
IN_IGNORED = 0x8000
IN_NONBLOCK = os.O_NONBLOCK
IN_CLOEXEC = os.O_CLOEXEC
# What ringtail's watches ask for (io/watch.c WATCH_MASK, without IN_ONLYDIR).
WATCH_MASK = (IN_MODIFY | IN_ATTRIB | IN_CLOSE_WRITE | IN_CREATE | IN_DELETE | IN_MOVED_FROM |
              IN_MOVED_TO | IN_DELETE_SELF | IN_MOVE_SELF)
_NAMES = {IN_MODIFY: "IN_MODIFY", IN_ATTRIB: "IN_ATTRIB", IN_CLOSE_WRITE: "IN_CLOSE_WRITE",
          IN_MOVED_FROM: "IN_MOVED_FROM", IN_MOVED_TO: "IN_MOVED_TO", IN_CREATE: "IN_CREATE",
          IN_DELETE: "IN_DELETE", IN_DELETE_SELF: "IN_DELETE_SELF",
          IN_MOVE_SELF: "IN_MOVE_SELF", IN_UNMOUNT: "IN_UNMOUNT",
          IN_Q_OVERFLOW: "IN_Q_OVERFLOW", IN_IGNORED: "IN_IGNORED"}

_libc = ctypes.CDLL(None, use_errno=True)
_libc.inotify_init1.argtypes = [ctypes.c_int]
_libc.inotify_add_watch.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_uint32]


class Inotify:
    """An inotify instance (libc's inotify_init1/inotify_add_watch, read(2))."""

    def __init__(self):
        self.fd = _libc.inotify_init1(IN_NONBLOCK | IN_CLOEXEC)
        if self.fd < 0:
            e = ctypes.get_errno()
            raise OSError(e, f"inotify_init1: {os.strerror(e)}")
        self.wds = {}

    def watch(self, path, mask=WATCH_MASK):
        wd = _libc.inotify_add_watch(self.fd, os.fsencode(path), mask)
        if wd < 0:
            e = ctypes.get_errno()
            raise OSError(e, f"inotify_add_watch({path}): {os.strerror(e)}")
        self.wds[wd] = str(path)
        return wd

    def events(self, wait=0.0):
        """Every event queued now, after waiting up to `wait` s for the first one, as
        readable strings 'PATH[/NAME] FLAG|FLAG'."""
        out = []
        r, _, _ = select.select([self.fd], [], [], wait)
        while r:
            try:
                buf = os.read(self.fd, 65536)
            except BlockingIOError:
                break
            i = 0
            while i + 16 <= len(buf):
                wd, mask, _cookie, n = struct.unpack_from("iIII", buf, i)
                name = buf[i + 16:i + 16 + n].rstrip(b"\0").decode(errors="replace")
                i += 16 + n
                flags = "|".join(v for k, v in _NAMES.items() if mask & k) or hex(mask)
                where = self.wds.get(wd, f"wd {wd}") + (f"/{name}" if name else "")
                out.append(f"{where} {flags}")
            r, _, _ = select.select([self.fd], [], [], 0)
        return out

    def close(self):
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


# ---------------------------------------------------------------------------
# The mount


def _mounted(path):
    """The filesystem type mounted at path, or None (from /proc/self/mountinfo)."""
    want = os.path.realpath(path)
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        left, _, right = line.partition(" - ")
        point = left.split()[4].encode().decode("unicode_escape")  # \040 for a space
        if point == want:
            return right.split()[0]
    return None


class Mount:
    def __init__(self, src, mnt):
        self.src = src
        self.mnt = mnt


@pytest.fixture
def bindfs_mount(tmp_path):
    """A bindfs mount of tmp_path/src at tmp_path/mnt (BINDFS_OPTS), run in the
    foreground by this fixture. Unmounted at the end whatever happened: ringtail (the
    harness's instances, by PID) is stopped first so nothing holds files on the mount,
    then fusermount -u (lazy as a last resort); the bindfs process, which exits once
    unmounted, is killed by PID if it does not."""
    bindfs = shutil.which("bindfs")
    fusermount = shutil.which("fusermount") or shutil.which("fusermount3")
    if not bindfs or not fusermount:
        pytest.fail("bindfs and fusermount are needed (Debian package bindfs, installed by "
                    "packaging/setup.sh)", pytrace=False)
    if not os.path.exists("/dev/fuse"):
        pytest.fail("/dev/fuse is missing: FUSE is not available here", pytrace=False)
    src = tmp_path / "src"
    mnt = tmp_path / "mnt"
    src.mkdir()
    mnt.mkdir()
    log_path = tmp_path / "bindfs.log"
    log = open(log_path, "wb")
    proc = subprocess.Popen([bindfs, "-f", "-o", BINDFS_OPTS, str(src), str(mnt)],
                            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        try:
            harness.wait_until(lambda: _mounted(mnt) or proc.poll() is not None, 15,
                               f"bindfs to mount {mnt}")
        except AssertionError:
            pass
        fstype = _mounted(mnt)
        if not fstype or not fstype.startswith("fuse"):
            pytest.fail(f"bindfs did not mount {mnt} (mounted: {fstype}; bindfs "
                        f"{'exited ' + str(proc.returncode) if proc.poll() is not None else 'runs'}"
                        f"):\n{log_path.read_text(errors='replace')}", pytrace=False)
        yield Mount(src, mnt)
    finally:
        Ringtail.reap_all()
        LineWriter.stop_all()
        deadline = time.monotonic() + 15
        last = None
        while _mounted(mnt) and time.monotonic() < deadline:
            last = subprocess.run([fusermount, "-u", str(mnt)], capture_output=True, text=True)
            if last.returncode != 0:
                time.sleep(0.2)  # busy: a process that just died is still closing files
        if _mounted(mnt):
            subprocess.run([fusermount, "-u", "-z", str(mnt)], capture_output=True)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
        if _mounted(mnt):
            raise AssertionError(f"{mnt} is still mounted after fusermount -u "
                                 f"({last.stderr if last else ''})")


def prove_inotify_silent(m):
    """The premise of every test here: an inotify watch on MNT (ringtail's event mask),
    one on the directory and one on a file, sees no event for a file created, appended,
    renamed and recreated through SRC, even while the changes are looked at through MNT
    (stat and read, as ringtail does); and the same watch does see a file created
    through MNT (so its silence is the filesystem's, not a broken watch). Also checks
    that MNT shows SRC's changes at once (no stale FUSE cache). Cleans up after itself."""
    src, mnt = m.src, m.mnt
    ino = Inotify()
    try:
        ino.watch(mnt)
        a, a1 = src / "premise.log", src / "premise.log.1"
        with open(a, "ab") as f:
            f.write(b"one\n")
        assert (mnt / "premise.log").read_bytes() == b"one\n", "MNT does not show SRC's file"
        ino.watch(mnt / "premise.log")
        with open(a, "ab") as f:
            f.write(b"two\n")
        st = os.stat(mnt / "premise.log")
        assert st.st_size == 8, f"MNT shows a stale size ({st.st_size}, not 8)"
        assert (mnt / "premise.log").read_bytes() == b"one\ntwo\n", "MNT shows stale content"
        os.rename(a, a1)
        with open(a, "ab") as f:
            f.write(b"three\n")
        os.chmod(a, 0o640)
        assert (mnt / "premise.log").read_bytes() == b"three\n", "MNT shows a stale name"
        assert os.stat(mnt / "premise.log.1").st_ino == os.stat(a1).st_ino, \
            "bindfs does not mirror inode numbers"
        os.unlink(a)
        os.unlink(a1)
        assert not (mnt / "premise.log").exists()
        seen = ino.events(wait=1.0)
        if seen:
            pytest.fail(f"the premise does not hold: an inotify watch on the bindfs mount "
                        f"{mnt} saw {len(seen)} events for changes made through {src} "
                        f"only, so this filesystem is not inotify-silent and the tests "
                        f"here would not show the rescan at work:\n  " + "\n  ".join(seen),
                        pytrace=False)
        # Control: the watch works (a change made through the mount is reported).
        (mnt / "control.txt").write_bytes(b"x\n")
        seen = ino.events(wait=5.0)
        if not any("control.txt" in e and "IN_CREATE" in e for e in seen):
            pytest.fail(f"the inotify watch on {mnt} saw no IN_CREATE for a file created "
                        f"through the mount (events: {seen}): the premise check itself is "
                        f"broken", pytrace=False)
        os.unlink(src / "control.txt")
    finally:
        ino.close()


@pytest.fixture
def silence(bindfs_mount):
    """Proves the premise, then keeps a watch on MNT for the whole test: `check()` at
    the end asserts it saw nothing."""
    prove_inotify_silent(bindfs_mount)
    ino = Inotify()
    ino.watch(bindfs_mount.mnt)

    def check():
        seen = ino.events(wait=0.2)
        assert not seen, (f"inotify reported events on {bindfs_mount.mnt} during the test, so "
                          f"ringtail may have found changes by inotify, not by rescanning:\n  " +
                          "\n  ".join(seen))
    ino.check = check
    try:
        yield ino
    finally:
        ino.close()


@pytest.fixture(autouse=True)
def stop_writers():
    yield
    LineWriter.stop_all()


def rescan_start(tmp_path, bootstrap, topic, m):
    """ringtail on MNT/*.log with scan.interval.ms=SCAN_MS and io.backend=poll (see
    the module's docstring: io_uring reads of a FUSE direct_io file return wrong
    lengths on this kernel)."""
    return start(tmp_path, bootstrap, topic, f"{m.mnt}/*.log", worker={"io.backend": "poll"},
                 **{"scan.interval.ms": str(SCAN_MS)})


def timed_wait(bootstrap, topic, lines, rt, what):
    """Waits (deadline WAIT) until the topic holds len(lines) records, then checks that
    they are exactly `lines` (a count reached through duplicates is not progress)."""
    t0 = time.monotonic()
    wait_lines(bootstrap, topic, lines, rt, timeout=WAIT, what=what)
    took = time.monotonic() - t0
    if topic_count(bootstrap, topic) != len(lines):
        # Duplicates: stop ringtail (by PID) at once, so the diff below reads a topic
        # of bounded size even if ringtail is sending the same lines in a loop.
        rt.kill()
    assert_same_lines(lines, values(kcat_consume(bootstrap, topic)), what, log=rt.output())
    print(f"{what}: {len(lines)} records in Kafka after {took:.2f} s")
    return took


# ---------------------------------------------------------------------------
# a) new files, b) appends, c) rename rotation


def test_rescan_finds_new_files(tmp_path, bootstrap, topic, bindfs_mount, silence):
    """ringtail starts with no file matching MNT/*.log; files created through SRC
    afterwards (one written whole, one written in batches while ringtail is already
    reading it) are found by the rescan alone and shipped completely, read from their
    first line."""
    m = bindfs_mount
    rt = rescan_start(tmp_path, bootstrap, topic, m)
    rt.wait_for_log(r"no file matches yet")
    a = LineWriter(m.src / "new.log", "new", line_bytes=LINE)
    a.write_now(500)
    timed_wait(bootstrap, topic, a.lines, rt, "new.log found")
    b = LineWriter(m.src / "later.log", "later", line_bytes=LINE)
    b.write_now(50)
    b.write_now(150)
    timed_wait(bootstrap, topic, a.lines + b.lines, rt, "later.log found")
    b.write_now(300)
    a_lines, b_lines = a.stop(), b.stop()
    for name in ("new.log", "later.log"):
        rt.wait_for_log(rf"reading '{m.mnt}/{name}' \(inode \d+\) from the start", timeout=5)
    finish(rt, bootstrap, topic, a_lines + b_lines, groups=[a_lines, b_lines], timeout=WAIT)
    silence.check()


def test_rescan_follows_appends(tmp_path, bootstrap, topic, bindfs_mount, silence):
    """Two files exist when ringtail starts; 10 rounds of appends through SRC of
    different sizes (one line to 700 lines, one file or both) reach Kafka with no
    inotify event: the rescan sees their sizes grow and wakes their readers."""
    m = bindfs_mount
    x = LineWriter(m.src / "x.log", "x", line_bytes=LINE)
    y = LineWriter(m.src / "y.log", "y", line_bytes=LINE)
    x.write_now(100)
    y.write_now(100)
    rt = rescan_start(tmp_path, bootstrap, topic, m)
    timed_wait(bootstrap, topic, x.lines + y.lines, rt, "initial content")
    sizes = [1, 700, 37, 250, 2, 500, 100, 3, 64, 333]
    for i, n in enumerate(sizes):
        x.write_now(n)
        if i % 2:
            y.write_now(n)
        timed_wait(bootstrap, topic, x.lines + y.lines, rt, f"append round {i + 1} ({n} lines)")
    x_lines, y_lines = x.stop(), y.stop()
    finish(rt, bootstrap, topic, x_lines + y_lines, groups=[x_lines, y_lines], timeout=WAIT)
    silence.check()


def test_rescan_rename_rotation(tmp_path, bootstrap, topic, bindfs_mount, silence):
    """5 rename rotations done through SRC (app.log.k -> app.log.k+1, app.log ->
    app.log.1, then a new app.log) while the writer keeps its fd: 300 lines go into
    app.log right before each rotation (ringtail has not read them yet when the rename
    happens), 20 more into the renamed file after it, then the writer reopens app.log
    and writes 150. Only app.log matches the glob; the renamed files are read to their
    end by identity. Between rotations the test waits until every line is in Kafka: with
    no inotify rename pairing, a file created and renamed away within one scan interval
    could never be found (README: files are found by a rescan on such filesystems).
    Nothing is lost or duplicated, and each file's lines keep their order.

    On bindfs, fstat() of the fd ringtail holds on the renamed file answers for the new
    app.log (module docstring): ringtail must not take that file's size for the
    renamed one's (a new app.log smaller than what was read of the old one is not a
    truncation of the old one, and one of equal size does not mean it was read to its
    end). The new app.log gets 150 lines, so its size never equals the offset ringtail
    read the old file up to."""
    m = bindfs_mount
    app = m.src / "app.log"
    w = LineWriter(app, "r", line_bytes=LINE)
    w.write_now(100)
    rt = rescan_start(tmp_path, bootstrap, topic, m)
    timed_wait(bootstrap, topic, w.lines, rt, "initial app.log")
    for r in range(5):
        w.write_now(300)
        shift_rotate(app)  # through SRC: no event on MNT
        w.write_now(20)  # still into the renamed file
        w.reopen()  # a new app.log
        w.write_now(150)
        timed_wait(bootstrap, topic, w.lines, rt, f"rotation {r + 1}")
    w.write_now(50)
    lines = w.stop()
    assert len(w.by_file) == 6
    assert sorted(p.name for p in m.mnt.iterdir()) == \
        ["app.log"] + [f"app.log.{k}" for k in range(1, 6)]
    finish(rt, bootstrap, topic, lines, groups=w.by_file.values(), timeout=WAIT)
    silence.check()
