#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""The writer of run.py's live-append mode: appends lines to a file at a fixed rate.

    python3 bench/appender.py --path FILE --pool CORPUS --rate 50000 --duration 30
                              [--pool-lines 65536] [--batch-ms 2] --batches OUT.json

DESIGN. The lines are the first --pool-lines lines of a corpus file (their kind's
shape), each behind a 27-byte NUL placeholder, joined into one bytes object once. Every
--batch-ms the writer computes how many lines are due (rate × elapsed, whole lines),
takes that many consecutive pool lines (wrapping at the end), replaces the placeholder
of each with the stamp "<CLOCK_REALTIME µs, 16 digits> b<batch number, 8 digits> " in
one bytes.replace() (C, one pass), and appends them with one write() to a descriptor
opened O_WRONLY|O_APPEND. The clock is read just before the batch is built, so a
line's stamp is its append time but for the ~10-50 µs of that batch's build and write.
All lines of a batch share the stamp; a line is unique by (batch number, pool line),
as the corpus' own lines are unique (a batch never holds more than half the pool).

A writer that falls behind writes bigger batches (capped at half the pool) and never
skips lines: it writes exactly rate × duration lines, and reports when the last one
went out (achieved rate), its worst backlog in lines, and its own CPU time.

On exit it writes --batches: JSON {"stamp_len", "pool_lines", "batches": [[stamp µs,
batch number, first pool line, lines], ...], plus the summary}, from which run.py
rebuilds every line written (exactly-once check) without the writer hashing them.
The summary also goes to stdout as one JSON line. Standard library only.
"""
import argparse
import json
import os
import resource
import sys
import time

STAMP_LEN = 27          # b"%016d b%08d " % (µs, batch)
PLACEHOLDER = b"\0" * STAMP_LEN


def load_pool(corpus_path, nlines):
    """(pool bytes with a placeholder before each line, line start offsets incl. end)."""
    lines = []
    with open(corpus_path, "rb") as f:
        for line in f:
            if not line.endswith(b"\n") or b"\0" in line:
                break
            lines.append(line)
            if len(lines) == nlines:
                break
    if len(lines) < 2:
        raise SystemExit(f"appender: {corpus_path} has fewer than 2 usable lines")
    offsets = [0]
    for line in lines:
        offsets.append(offsets[-1] + STAMP_LEN + len(line))
    return b"".join(PLACEHOLDER + line for line in lines), offsets


def stamp(us, batch):
    return b"%016d b%08d " % (us, batch)


def batch_bytes(pool, offsets, first, n):
    """Pool lines first .. first+n-1 (wrapping), placeholders still in."""
    p = len(offsets) - 1
    end = first + n
    if end <= p:
        return pool[offsets[first]:offsets[end]]
    return pool[offsets[first]:] + pool[:offsets[end - p]]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--path", required=True)
    ap.add_argument("--pool", required=True, help="corpus file the lines come from")
    ap.add_argument("--pool-lines", type=int, default=65536)
    ap.add_argument("--rate", type=float, required=True, help="lines per second")
    ap.add_argument("--duration", type=float, required=True, help="seconds")
    ap.add_argument("--batch-ms", type=float, default=2.0)
    ap.add_argument("--batches", required=True, help="JSON file written on exit")
    a = ap.parse_args(argv)

    pool, offsets = load_pool(a.pool, a.pool_lines)
    plines = len(offsets) - 1
    max_batch = plines // 2
    total = int(a.rate * a.duration)
    tick = a.batch_ms / 1000
    fd = os.open(a.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    batches = []
    written = pos = nbatch = nbytes = 0
    worst_backlog = 0
    ru0 = resource.getrusage(resource.RUSAGE_SELF)
    t0 = time.monotonic()
    t_last = t0
    next_tick = t0
    monotonic, sleep, time_ns, write = time.monotonic, time.sleep, time.time_ns, os.write
    try:
        while written < total:
            now = monotonic()
            due = total if now - t0 >= a.duration else min(total, int((now - t0) * a.rate))
            backlog = due - written
            if backlog > worst_backlog:
                worst_backlog = backlog
            while backlog > 0:
                n = min(backlog, max_batch)
                us = time_ns() // 1000
                data = batch_bytes(pool, offsets, pos, n).replace(PLACEHOLDER, stamp(us, nbatch))
                view = memoryview(data)
                while view:
                    view = view[write(fd, view):]
                batches.append((us, nbatch, pos, n))
                nbatch += 1
                nbytes += len(data)
                written += n
                backlog -= n
                pos = (pos + n) % plines
                t_last = monotonic()
            if written >= total:
                break
            next_tick += tick
            delay = next_tick - monotonic()
            if delay > 0:
                sleep(delay)
            else:
                next_tick = monotonic()
    finally:
        os.close(fd)
    ru1 = resource.getrusage(resource.RUSAGE_SELF)
    wall = t_last - t0
    cpu = (ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime)
    summary = {"lines": written, "bytes": nbytes, "batches": nbatch,
               "target_rate": a.rate, "duration_s": a.duration, "batch_ms": a.batch_ms,
               "wall_s": round(wall, 4),
               "achieved_rate": round(written / wall, 1) if wall > 0 else None,
               "worst_backlog_lines": worst_backlog,
               "mean_line_bytes": round(nbytes / written, 1) if written else None,
               "cpu_s": round(cpu, 3),
               "cpu_pct": round(100 * cpu / wall, 1) if wall > 0 else None,
               "pool_lines": plines}
    with open(a.batches, "w") as f:
        json.dump({"stamp_len": STAMP_LEN, "pool": a.pool, "pool_lines": plines,
                   "summary": summary, "batches": batches}, f)
    print(json.dumps(summary), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
