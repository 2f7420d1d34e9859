# SPDX-License-Identifier: Apache-2.0
"""Helpers for test_faults.py: reading ringtail's checkpoint file through its own CLI
(`ringtail offsets show`), and checking the shape of an at-least-once stream, that is
what order and which duplicates are allowed when ringtail is killed and restarted.

Nothing here sleeps as a synchronisation: waits poll a condition with a deadline."""
import collections
import json
import subprocess
import time

import harness
from logwriter import show, topic_count


def offsets_show(path):
    """The entries of a checkpoint file, as `ringtail offsets show` prints them (dicts
    with connector, path, offset, dev, ino, ...). [] when the file does not exist."""
    r = subprocess.run([harness.ringtail_bin(), "offsets", "show", str(path)],
                       capture_output=True, text=True, timeout=60)
    if r.returncode != 0:
        if "No such file" in r.stderr:
            return []
        raise AssertionError(f"ringtail offsets show {path} failed ({r.returncode}): {r.stderr}")
    return [json.loads(l) for l in r.stdout.splitlines() if l.strip()]


def checkpoint_lines(entries, files, line_bytes):
    """{file id: lines covered} for the checkpoint entries of files we wrote. `files`
    maps (dev, ino) to a file id; every line of a file is line_bytes + 1 bytes, so an
    offset covers offset / (line_bytes + 1) lines (an offset inside a line is a bug and
    raises)."""
    out = {}
    for e in entries:
        fid = files.get((e["dev"], e["ino"]))
        if fid is None:
            continue
        n, rest = divmod(e["offset"], line_bytes + 1)
        assert rest == 0, f"checkpoint offset {e['offset']} is not at a line end: {e}"
        out[fid] = n
    return out


class Stream:
    """The shape of one partition's records against the files they came from.

    A ringtail run reads each file from its checkpoint (the on-disk offset it starts
    with) and sends the lines from there on, in order, without a gap (the idempotent
    producer keeps them in order and delivers a prefix of what it was given). A run
    killed with SIGKILL leaves the checkpoint somewhere at or before the last line it
    had delivered; the next run starts there. So, per file, the records are a series of
    contiguous ascending segments, one per run, and:

    - each record is either the line after the previous record of that file, or a
      step back to where some run started (a re-send): never a step forward, so no
      line of a file is passed over, and first occurrences are in the file's order;
    - the lines a run starts at (the targets of the steps back) never decrease, as
      checkpoints never move back; each is an offset a checkpoint held;
    - a duplicate is a record of a line that an earlier record already delivered: only
      the first segments' overlap with what was delivered before it.
    """

    def __init__(self, values, groups):
        self.groups = [list(g) for g in groups]
        pos = {}
        for gi, seq in enumerate(self.groups):
            for i, l in enumerate(seq):
                pos[l] = (gi, i)
        self.unexpected = collections.Counter()
        self.forward = []  # (record, file, index, previous index of that file)
        self.steps_back = collections.defaultdict(list)  # file -> [(record, index)]
        self.dups = 0
        self.dup_copies = collections.Counter()  # line -> copies beyond the first
        last = {}
        maxseen = {}
        for k, v in enumerate(values):
            p = pos.get(v)
            if p is None:
                self.unexpected[v] += 1
                continue
            g, i = p
            prev = last.get(g, -1)
            if i > prev + 1:
                self.forward.append((k, g, i, prev))
            elif i != prev + 1:
                self.steps_back[g].append((k, i))
            if i <= maxseen.get(g, -1):
                self.dups += 1
                self.dup_copies[v] += 1
            maxseen[g] = max(maxseen.get(g, -1), i)
            last[g] = i
        self.maxseen = maxseen

    def missing(self):
        """(file, first missing index, how many) of every file not delivered whole."""
        out = []
        for g, seq in enumerate(self.groups):
            n = self.maxseen.get(g, -1) + 1
            if n < len(seq):
                out.append((g, n, len(seq) - n))
        return out

    def problems(self, starts_allowed, limit=10):
        """Descriptions of every way the records break the shape above. starts_allowed
        maps a file to the set of line indexes a run may start it at (the checkpoints
        seen, and 0)."""
        bad = []
        if self.unexpected:
            bad.append(f"{sum(self.unexpected.values())} records of no file written, e.g. "
                       f"{[show(v) for v in list(self.unexpected)[:3]]}")
        for g, n, left in self.missing():
            bad.append(f"file {g}: lines {n}.. ({left} lines) never arrived: "
                       f"{show(self.groups[g][n])} first")
        for k, g, i, prev in self.forward[:limit]:
            bad.append(f"record {k}: line {i} of file {g} {show(self.groups[g][i])} came right "
                       f"after line {prev} of that file (a step forward: lines skipped or "
                       f"reordered)")
        for g, steps in sorted(self.steps_back.items()):
            targets = [i for _, i in steps]
            down = [(steps[j], steps[j + 1]) for j in range(len(steps) - 1)
                    if targets[j + 1] < targets[j]]
            for (k0, i0), (k1, i1) in down[:limit]:
                bad.append(f"file {g}: a re-send at record {k1} restarted at line {i1}, before "
                           f"an earlier re-send's start (line {i0}, record {k0}): the "
                           f"checkpoint went back")
            allowed = starts_allowed.get(g, set()) | {0}
            odd = [(k, i) for k, i in steps if i not in allowed]
            for k, i in odd[:limit]:
                near = sorted(allowed, key=lambda a: abs(a - i))[:3]
                bad.append(f"file {g}: a re-send at record {k} restarted at line {i}, which no "
                           f"checkpoint held (nearest checkpoints: lines {sorted(near)})")
        return bad


def wait_all_present(bootstrap, topic, lines, rt, timeout=120):
    """Waits until every line of `lines` is in the topic (at least once), or ringtail
    exits, or timeout seconds pass. Returns the values read last, in offset order (one
    partition)."""
    want = set(lines)
    deadline = time.monotonic() + timeout
    vals = []
    while True:
        if topic_count(bootstrap, topic) >= len(want):
            vals = harness.values(harness.kcat_consume(bootstrap, topic))
            if want <= set(vals):
                return vals
        if rt.proc.poll() is not None or time.monotonic() > deadline:
            return vals or harness.values(harness.kcat_consume(bootstrap, topic))
        time.sleep(0.3)


def vm_hwm_kib(pid):
    """Peak resident set size of a process (VmHWM), in KiB."""
    with open(f"/proc/{pid}/status") as st:
        return next(int(l.split()[1]) for l in st if l.startswith("VmHWM:"))
