# SPDX-License-Identifier: Apache-2.0
"""Helpers for ringtail's integration tests: the ringtail process, kcat, configs.

Everything talks to 127.0.0.1 only, waits with deadlines (never a bare sleep as a
synchronisation), and stops only the processes it started, by PID.
"""
import os
import re
import signal
import subprocess
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
KAFKA_SH = ROOT / "tests" / "kafka" / "kafka.sh"


def ringtail_bin():
    return os.environ.get("RINGTAIL_BIN", str(ROOT / "build" / "dev" / "ringtail"))


def wait_until(pred, timeout, what, interval=0.05):
    """Polls pred() until it returns a true value (returned) or timeout seconds pass."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def worker_props(tmp_path, bootstrap, name="connect-standalone.properties", **extra):
    """A standalone worker file: StringConverter, checkpoints in tmp_path, flushed
    every second; extra keys override (dots and all: pass them as **{...})."""
    entries = {
        "bootstrap.servers": bootstrap,
        "key.converter": "org.apache.kafka.connect.storage.StringConverter",
        "value.converter": "org.apache.kafka.connect.storage.StringConverter",
        "offset.storage.file.filename": str(tmp_path / "connect.offsets"),
        "offset.flush.interval.ms": "1000",
        # The REST API on a free port (logged), so that instances never collide on 8083.
        "listeners": "http://127.0.0.1:0",
    }
    entries.update(extra)
    return write_props(tmp_path / name, entries)


def write_props(path, entries, header="# written by the ringtail test suite\n"):
    text = header + "".join(f"{k}={v}\n" for k, v in entries.items())
    Path(path).write_text(text)
    return str(path)


class Ringtail:
    """One ringtail process; stderr goes to a file we can search. Every instance is
    registered in `started` so a test's teardown kills what a failed test left."""

    started = []

    def __init__(self, args, workdir, env=None):
        self.workdir = Path(workdir)
        self.log_path = self.workdir / f"ringtail-{time.monotonic_ns()}.log"
        self.log = open(self.log_path, "wb")
        e = dict(os.environ)
        e.pop("JOURNAL_STREAM", None)
        if env:
            e.update(env)
        self.proc = subprocess.Popen([ringtail_bin()] + list(args), cwd=workdir,
                                     stdout=self.log, stderr=subprocess.STDOUT, env=e)
        Ringtail.started.append(self)

    @classmethod
    def reap_all(cls):
        """Kills (by PID) every instance still running; returns how many were."""
        left = [r for r in cls.started if r.proc.poll() is None]
        for r in left:
            r.proc.kill()
            r.proc.wait()
        for r in cls.started:
            if not r.log.closed:
                r.log.close()
        cls.started.clear()
        return len(left)

    def output(self):
        if not self.log.closed:
            self.log.flush()
        return self.log_path.read_text(errors="replace")

    def wait_for_log(self, pattern, timeout=30):
        rx = re.compile(pattern)
        try:
            return wait_until(lambda: rx.search(self.output()) or self._dead(pattern),
                              timeout, f"ringtail log /{pattern}/")
        except AssertionError as e:
            raise AssertionError(f"{e}; ringtail's log:\n{self.output()}") from None

    def _dead(self, pattern):
        if self.proc.poll() is not None and not re.search(pattern, self.output()):
            raise AssertionError(
                f"ringtail exited ({self.proc.returncode}) before /{pattern}/:\n{self.output()}")
        return None

    def rest_address(self, timeout=30):
        """host:port of the REST API, from the log line that announces it."""
        return self.wait_for_log(r"REST API on http://(\S+)", timeout).group(1)

    def rest(self, path, method="GET", body=None, timeout=10):
        """(HTTP status, body) of a request to the REST API; a JSON body is parsed."""
        import http.client
        import json
        host, port = self.rest_address().rsplit(":", 1)
        c = http.client.HTTPConnection(host.strip("[]"), int(port), timeout=timeout)
        try:
            c.request(method, path, body=body)
            r = c.getresponse()
            data = r.read()
            ctype = r.getheader("Content-Type", "")
        finally:
            c.close()
        return r.status, json.loads(data) if ctype.startswith("application/json") else data

    def metrics(self):
        """GET /metrics as {'name{labels}': value}."""
        status, text = self.rest("/metrics")
        assert status == 200, (status, text)
        out = {}
        for line in text.decode().splitlines():
            if line and not line.startswith("#"):
                k, v = line.rsplit(" ", 1)
                out[k] = float(v)
        return out

    def send(self, sig):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)

    def stop(self, sig=signal.SIGTERM, timeout=30):
        self.send(sig)
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(f"ringtail did not stop within {timeout}s:\n{self.output()}")
        self.log.close()
        return rc

    def kill(self):
        self.proc.kill()
        self.proc.wait()
        self.log.close()

    def wait(self, timeout=30):
        rc = self.proc.wait(timeout)
        self.log.close()
        return rc


def kcat_consume(bootstrap, topic, extra=(), limit=None):
    """Every message of the topic as (partition, offset, key, value) with exact bytes;
    None for a null key or value. Reads to the end of every partition (kcat -e keeps
    reading while messages keep coming), or only the first `limit` messages."""
    fmt = "%p\t%o\t%K\t%k%S\t%s\n"
    if limit is not None:
        extra = ("-c", str(limit), *extra)
    r = subprocess.run(["kcat", "-C", "-b", bootstrap, "-t", topic, "-e", "-q", "-o", "beginning",
                        "-f", fmt, *extra], capture_output=True, timeout=60)
    if r.returncode != 0:
        err = r.stderr.decode(errors="replace")
        if "Unknown topic" in err or "unknown topic" in err.lower():
            return []
        raise AssertionError(f"kcat failed ({r.returncode}): {err}")
    out = r.stdout
    msgs = []
    i = 0

    def field():  # an integer up to the next tab
        nonlocal i
        j = out.index(b"\t", i)
        v = int(out[i:j])
        i = j + 1
        return v

    def blob(n):  # n bytes, or None for -1 (null)
        nonlocal i
        if n < 0:
            return None
        i += n
        return out[i - n:i]

    while i < len(out):
        # partition \t offset \t keylen \t key valuelen \t value \n
        part, off = field(), field()
        key = blob(field())
        value = blob(field())
        assert out[i:i + 1] == b"\n", f"kcat output framing broken at byte {i}"
        i += 1
        msgs.append((part, off, key, value))
    msgs.sort(key=lambda m: (m[0], m[1]))
    return msgs


def values(msgs):
    return [m[3] for m in msgs]


def wait_for_count(bootstrap, topic, n, timeout=60, rt=None):
    """Waits until the topic holds at least n messages; returns them. With rt (a
    Ringtail), a timeout shows its log."""
    box = {}

    def enough():
        box["m"] = kcat_consume(bootstrap, topic)
        return len(box["m"]) >= n

    try:
        wait_until(enough, timeout, f"{n} messages in '{topic}'", interval=0.2)
    except AssertionError:
        log = f"; ringtail's log:\n{rt.output()}" if rt else ""
        raise AssertionError(f"topic '{topic}' holds {len(box.get('m', []))} messages, "
                             f"expected {n}{log}") from None
    return box["m"]


def kafka(*args, env=None, check=True):
    e = dict(os.environ)
    if env:
        e.update(env)
    r = subprocess.run(["bash", str(KAFKA_SH), *args], capture_output=True, text=True, env=e,
                       timeout=600)
    if check and r.returncode != 0:
        raise AssertionError(f"kafka.sh {' '.join(args)} failed ({r.returncode}):\n"
                             f"{r.stdout}\n{r.stderr}")
    return r
