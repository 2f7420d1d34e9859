# SPDX-License-Identifier: Apache-2.0
"""librdkafka's mock cluster in a process of its own (tests/kafka/mockcluster.c), so a
test can inject faults while ringtail runs against it: produce errors, brokers going
down and up, slow brokers, leader moves.

    with MockCluster(brokers=3, topics={"t": 3}) as mc:
        ... bootstrap.servers=mc.bootstrap ...
        mc.cmd("errors Produce NOT_ENOUGH_REPLICAS NOT_ENOUGH_REPLICAS")  # cluster-wide
        mc.cmd("broker-errors 2 Produce REQUEST_TIMED_OUT")  # broker 2 only
        mc.cmd("down 1")
        ...
        assert mc.pending(2) == 0  # broker 2 returned its error (cluster-wide: not countable)

or the `mock_cluster` fixture (a factory; everything it started is closed at the end of
the test). Every instance is registered in MockCluster.running, so close_all() stops
whatever a failed test left; processes are stopped by PID, never by name. The program
is found at $RINGTAIL_MOCKCLUSTER, or next to $RINGTAIL_BIN as tests/mockcluster (the
build tree's layout: build/<preset>/ringtail, build/<preset>/tests/mockcluster).

Nothing here sleeps as a synchronisation: replies are awaited with deadlines."""
import os
import select
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

import harness


def mockcluster_bin():
    given = os.environ.get("RINGTAIL_MOCKCLUSTER")
    if given:
        return given
    return str(Path(harness.ringtail_bin()).parent / "tests" / "mockcluster")


class MockCluster:
    """One mockcluster process. `bootstrap` is its bootstrap.servers list; cmd() sends
    one command and asserts the answer is `ok` (ask() returns the answer); close() ends
    it (quit, then kill). The commands are listed in tests/kafka/mockcluster.c."""

    running = []

    def __init__(self, brokers=3, topics=None, timeout=30):
        path = mockcluster_bin()
        if not os.access(path, os.X_OK):
            raise AssertionError(f"{path} is not built (cmake --build --preset asan builds "
                                 f"tests/mockcluster; or set RINGTAIL_MOCKCLUSTER)")
        args = [path, "-b", str(brokers)]
        for name, partitions in (topics or {}).items():
            args += ["-p", str(partitions), "-t", name]
        self.args = args
        self.log = tempfile.TemporaryFile(prefix="mockcluster-")  # librdkafka's stderr
        self._buf = b""
        self.proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=self.log)
        MockCluster.running.append(self)
        first = self._readline(timeout, "the bootstrap line")
        if not first.startswith("bootstrap="):
            self.close()
            raise AssertionError(f"{' '.join(args)}: expected bootstrap=..., got {first!r}"
                                 f"{self._stderr()}")
        self.bootstrap = first[len("bootstrap="):]

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _stderr(self):
        try:
            self.log.seek(0)
            text = self.log.read().decode(errors="replace").strip()
        except (OSError, ValueError):
            return ""
        return f"\nmockcluster's stderr:\n{text}" if text else ""

    def _readline(self, timeout, what):
        """One line of the program's stdout (without the newline), or AssertionError
        after timeout seconds or if it exits first."""
        deadline = time.monotonic() + timeout
        fd = self.proc.stdout.fileno()
        while b"\n" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"mockcluster: no {what} within {timeout}s{self._stderr()}")
            ready, _, _ = select.select([fd], [], [], left)
            if not ready:
                continue
            chunk = os.read(fd, 65536)
            if not chunk:
                self.proc.wait(timeout=10)
                raise AssertionError(f"mockcluster exited ({self.proc.returncode}) before "
                                     f"{what}{self._stderr()}")
            self._buf += chunk
        line, self._buf = self._buf.split(b"\n", 1)
        return line.decode()

    def ask(self, line, timeout=10):
        """Sends one command line; returns the answer line (`ok` or `error: ...`)."""
        if self.proc.poll() is not None:
            raise AssertionError(f"mockcluster exited ({self.proc.returncode}) before "
                                 f"{line!r}{self._stderr()}")
        self.proc.stdin.write(line.encode() + b"\n")
        self.proc.stdin.flush()
        return self._readline(timeout, f"answer to {line!r}")

    def cmd(self, line, timeout=10):
        """Sends one command line and asserts it was done."""
        answer = self.ask(line, timeout)
        assert answer == "ok", f"mockcluster: {line!r}: {answer}"

    def pending(self, broker, api="Produce"):
        """How many errors pushed with `broker-errors` on the broker are still to be
        returned: 0 once requests consumed them all."""
        answer = self.ask(f"pending {broker} {api}")
        assert answer.startswith("ok "), f"mockcluster: pending {broker} {api}: {answer}"
        return int(answer[3:])

    def close(self, timeout=10):
        """Ends the process (quit; killed by PID if it does not exit in time). Returns
        its exit status; idempotent."""
        if self.proc.poll() is None:
            try:
                self.proc.stdin.write(b"quit\n")
                self.proc.stdin.close()
            except (BrokenPipeError, ValueError):
                pass
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for f in (self.proc.stdin, self.proc.stdout):
            try:
                f.close()
            except (BrokenPipeError, ValueError, OSError):
                pass
        self.log.close()
        if self in MockCluster.running:
            MockCluster.running.remove(self)
        return self.proc.returncode

    @classmethod
    def close_all(cls):
        """Closes every instance still registered; returns how many there were."""
        left = list(cls.running)
        for m in left:
            m.close()
        return len(left)


@pytest.fixture
def mock_cluster():
    """A factory: mock_cluster(brokers=3, topics={"t": 3}) -> MockCluster. Whatever it
    started is closed after the test (MockCluster.close_all() also stops them)."""
    made = []

    def make(**kwargs):
        m = MockCluster(**kwargs)
        made.append(m)
        return m

    yield make
    for m in made:
        m.close()
