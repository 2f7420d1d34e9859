# SPDX-License-Identifier: Apache-2.0
"""Checkpoint storage faults: the state directory full (a small tmpfs filled up) or
read-only (the tmpfs remounted read-only). The checkpoint flush fails loudly (once, not
at every flush), ringtail goes on shipping, the checkpoint file on disk stays the last
one written, intact; when the fault goes away the checkpoint moves again. A fault still
there at SIGTERM is exit status 1 with a message, and the restart sends again exactly the
lines after the intact checkpoint: nothing lost.

These tests mount tmpfs file systems (root, as on the CI machine); a machine that does
not allow mounts fails them with the reason, it does not skip them."""
import json
import os
import subprocess
import time

import pytest

import harness
from logwriter import settle
from test_tailsource import append, finish, lines_of, start, wait_lines


@pytest.fixture
def state_fs(tmp_path):
    """A 256 KiB tmpfs for the checkpoint file; unmounted at the end."""
    mnt = tmp_path / "state"
    mnt.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k,mode=0700", "tmpfs", str(mnt)],
                       capture_output=True, text=True)
    assert r.returncode == 0, f"cannot mount a tmpfs for the checkpoint tests: {r.stderr}"
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


def fill(mnt):
    """Fills the file system; returns the filler's path. A second pass takes the page
    a checkpoint write in progress may have given back (its temp file is removed)."""
    filler = mnt / "filler"
    with open(filler, "ab", buffering=0) as f:
        for _ in range(2):
            try:
                while True:
                    f.write(b"\0" * 4096)
            except OSError:
                pass
            time.sleep(0.5)
    assert os.statvfs(mnt).f_bavail == 0
    return filler


def offsets(path):
    """The checkpoint as `ringtail offsets show` reads it: {path: offset}. Fails if the
    file is damaged."""
    r = subprocess.run([harness.ringtail_bin(), "offsets", "show", str(path)],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, f"checkpoint unreadable: {r.stderr}"
    return {e["path"]: e["offset"] for e in map(json.loads, r.stdout.splitlines())}


def worker(mnt):
    return {"offset.storage.file.filename": str(mnt / "connect.offsets"),
            "offset.flush.interval.ms": "200"}


def started(tmp_path, bootstrap, topic, state_fs, tag, n):
    """app.log with n lines, ringtail running with its checkpoint in state_fs, the lines
    in Kafka and checkpointed. Returns (app, store, lines, rt)."""
    logs = tmp_path / "logs"
    logs.mkdir()
    app = logs / "app.log"
    store = state_fs / "connect.offsets"
    lines = append(app, lines_of(tag, n))
    rt = start(tmp_path, bootstrap, topic, str(app), worker=worker(state_fs))
    wait_lines(bootstrap, topic, lines, rt)
    size = app.stat().st_size
    harness.wait_until(lambda: store.exists() and offsets(store).get(str(app)) == size, 30,
                       "the first checkpoint")
    return app, store, lines, rt


def assert_reported(rt, store, error):
    """The failing flush is in the task's status (still RUNNING) and in /metrics."""
    task = rt.rest("/connectors/tail/status")[1]["tasks"][0]
    assert task["state"] == "RUNNING", task
    assert any(w.startswith(f"checkpoint: cannot write '{store}': {error}")
               for w in task.get("warnings", [])), task
    m = rt.metrics()
    assert m["ringtail_checkpoint_error"] == 1, m
    assert m["ringtail_checkpoint_failures_total"] >= 5, m  # 200 ms flushes, 1 s and more


def assert_cleared(rt):
    task = rt.rest("/connectors/tail/status")[1]["tasks"][0]
    assert "warnings" not in task, task
    assert rt.metrics()["ringtail_checkpoint_error"] == 0


def test_disk_full_then_space_again(tmp_path, bootstrap, topic, state_fs):
    app, store, first, rt = started(tmp_path, bootstrap, topic, state_fs, "a", 100)
    filler = fill(state_fs)
    good = store.read_bytes()

    more = append(app, lines_of("a", 100, first=100))
    wait_lines(bootstrap, topic, first + more, rt)
    rt.wait_for_log(r"checkpoint: cannot write '.*connect\.offsets': No space left on device")
    time.sleep(1.0)  # five more flushes: each fails, none is logged again
    assert store.read_bytes() == good, "the checkpoint on disk changed while the disk was full"
    assert offsets(store)[str(app)] == 10100
    assert rt.output().count("No space left on device") == 1, rt.output()
    assert not (state_fs / "connect.offsets.tmp").exists()
    assert_reported(rt, store, "No space left on device")

    filler.unlink()
    rt.wait_for_log(r"checkpoint: '.*connect\.offsets' written again")
    assert_cleared(rt)
    harness.wait_until(lambda: offsets(store)[str(app)] == 20200, 30, "the checkpoint to move")
    finish(rt, bootstrap, topic, first + more, groups=[first + more])


def test_disk_full_at_shutdown(tmp_path, bootstrap, topic, state_fs):
    """Still full at SIGTERM: exit 1 with a message; the restart resends exactly the lines
    after the intact checkpoint (at-least-once: duplicates, no loss)."""
    app, store, first, rt = started(tmp_path, bootstrap, topic, state_fs, "b", 50)
    filler = fill(state_fs)
    more = append(app, lines_of("b", 30, first=50))
    wait_lines(bootstrap, topic, first + more, rt)
    rc = rt.stop()
    assert rc == 1, f"exit {rc}: {rt.output()}"
    assert "the final offsets could not be written" in rt.output()
    assert offsets(store)[str(app)] == 5050

    filler.unlink()
    rt = start(tmp_path, bootstrap, topic, str(app), worker=worker(state_fs))
    expected = first + more + more  # the 30 lines after the checkpoint, once more
    settle(bootstrap, topic, len(expected), 60, rt)
    finish(rt, bootstrap, topic, expected)
    assert offsets(store)[str(app)] == 8080


def test_read_only_state_directory(tmp_path, bootstrap, topic, state_fs):
    app, store, first, rt = started(tmp_path, bootstrap, topic, state_fs, "c", 40)
    subprocess.run(["mount", "-o", "remount,ro", str(state_fs)], check=True)
    good = store.read_bytes()
    more = append(app, lines_of("c", 40, first=40))
    wait_lines(bootstrap, topic, first + more, rt)
    rt.wait_for_log(r"checkpoint: cannot write '.*connect\.offsets': Read-only file system")
    time.sleep(1.0)
    assert store.read_bytes() == good
    assert rt.output().count("Read-only file system") == 1, rt.output()
    assert_reported(rt, store, "Read-only file system")
    subprocess.run(["mount", "-o", "remount,rw", str(state_fs)], check=True)
    rt.wait_for_log(r"checkpoint: '.*connect\.offsets' written again")
    assert_cleared(rt)
    harness.wait_until(lambda: offsets(store)[str(app)] == 8080, 30, "the checkpoint to move")
    finish(rt, bootstrap, topic, first + more, groups=[first + more])
