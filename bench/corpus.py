#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Deterministic log corpora for ringtail's bench suite.

    python3 bench/corpus.py --kind access|json|java --size 100M --seed 1 [--out DIR]

writes DIR/<kind>-<size>-<seed>.log (DIR defaults to ${RINGTAIL_BENCH_DIR:-~/.cache/
ringtail/bench}, outside the repo) and DIR/<kind>-<size>-<seed>.log.meta (JSON: bytes,
lines, sha256 of the file, generator version). The file is the first line end at or
after SIZE bytes (K/M/G are powers of 1024). An existing file whose size matches its
meta file is reused, not regenerated (--verify also rechecks its sha256); a missing
or mismatching one is regenerated.

Kinds, each line ending in '\\n' and unique (every line carries its own sequence number,
so lost or duplicated lines can be named):
  access  nginx "combined" lines plus request time and request id, ~200 B
  json    structured application logs (one JSON object a line), 300-600 B
  java    Spring-Boot style lines, ~150 B, with a stack trace of 20-200 lines
          ('\\tat ...', 'Caused by: ...') after about one event in 500

Same kind, size and seed give the same bytes on any machine: only random.Random's
Mersenne Twister (getrandbits, random) is used, whose output Python keeps stable.

`corpus.py --digest FILE` prints FILE's multiset digest (run.py's exactly-once check).

Speed: lines are built from pools of pre-rendered fragments picked with the bits of
one getrandbits() call, joined and written in chunks of ~8 MiB; the MB/s reached is
printed on stderr.
"""
import argparse
import datetime
import hashlib
import json
import os
import random
import sys
import time
from pathlib import Path

GENERATOR_VERSION = 1
KINDS = ("access", "json", "java")
CHUNK_BYTES = 8 << 20


def default_dir():
    return Path(os.environ.get("RINGTAIL_BENCH_DIR")
                or Path.home() / ".cache" / "ringtail" / "bench")


def parse_size(text):
    """'100M' -> 104857600; K, M, G, T are powers of 1024; a plain number is bytes."""
    t = text.strip().upper().removesuffix("B").removesuffix("I")
    mult = 1
    for i, suffix in enumerate("KMGT"):
        if t.endswith(suffix):
            mult = 1024 ** (i + 1)
            t = t[:-1]
            break
    try:
        value = float(t)
    except ValueError:
        raise argparse.ArgumentTypeError(f"bad size '{text}' (e.g. 2M, 100M, 1G)") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"size must be positive, not '{text}'")
    return int(value * mult)


def corpus_path(out_dir, kind, size_text, seed):
    return Path(out_dir) / f"{kind}-{size_text}-{seed}.log"


# ------------------------------------------------------------------------ fragment pools

BASE_EPOCH = int(datetime.datetime(2024, 5, 1, tzinfo=datetime.timezone.utc).timestamp())
LINES_PER_SECOND = 2000

WORDS = ("order payment customer invoice cart session token request response cache "
         "retry timeout upstream downstream shard replica lease lock queue batch "
         "record offset commit rollback index query user account profile inventory "
         "shipment warehouse price discount coupon refund ledger balance").split()
PACKAGES = ("com.example.orders", "com.example.payments", "com.example.catalog",
            "com.example.gateway", "org.springframework.web.servlet",
            "org.hibernate.engine.jdbc", "io.netty.channel", "org.apache.kafka.clients",
            "com.zaxxer.hikari.pool", "org.eclipse.jetty.server")
CLASSES = ("OrderService", "PaymentController", "CatalogRepository", "RetryTemplate",
           "DispatcherServlet", "SqlExceptionHelper", "NioEventLoop", "KafkaProducer",
           "HikariPool", "HttpChannel", "InventoryClient", "PriceCalculator",
           "SessionFilter", "AuditLogger", "CheckoutFacade", "LedgerWriter")
METHODS = ("process", "handle", "doFilter", "invoke", "execute", "apply", "lambda$run$0",
           "placeOrder", "authorize", "findById", "send", "getConnection", "call", "run")
EXCEPTIONS = ("java.lang.IllegalStateException", "java.net.SocketTimeoutException",
              "org.springframework.dao.DataAccessResourceFailureException",
              "java.sql.SQLTransientConnectionException", "java.lang.NullPointerException",
              "org.apache.kafka.common.errors.TimeoutException",
              "java.util.concurrent.CompletionException", "java.io.IOException")
USER_AGENTS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like "
    "Gecko) Version/17.4 Safari/605.1.15",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15",
    "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0",
    "curl/8.5.0", "Go-http-client/1.1", "kube-probe/1.29", "okhttp/4.12.0",
    "python-requests/2.31.0", "Apache-HttpClient/4.5.14 (Java/17.0.10)",
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    "Prometheus/2.51.0", "ELB-HealthChecker/2.0",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.6367.82 Mobile Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:125.0) Gecko/20100101 Firefox/125.0",
    "Wget/1.21.4")


class Pools:
    """Pre-rendered fragments, drawn once from the seeded generator."""

    def __init__(self, rng):
        self.rng = rng

    def pick(self, seq):
        return seq[int(self.rng.random() * len(seq))]

    def words(self, lo, hi):
        n = lo + int(self.rng.random() * (hi - lo + 1))
        return " ".join(self.pick(WORDS) for _ in range(n))

    def hexs(self, nbits):
        return f"{self.rng.getrandbits(nbits):0{nbits // 4}x}"

    def table(self, n, make):
        return [make() for _ in range(n)]


class Clock:
    """Formatted timestamps that advance with the line number, cached per second."""

    def __init__(self, fmt):
        self.fmt = fmt
        self.sec = -1
        self.text = ""

    def at(self, seq):
        sec = seq // LINES_PER_SECOND
        if sec != self.sec:
            self.sec = sec
            dt = datetime.datetime.fromtimestamp(BASE_EPOCH + sec, datetime.timezone.utc)
            self.text = dt.strftime(self.fmt)
        return self.text


def millis(seq):
    return (seq % LINES_PER_SECOND) * 1000 // LINES_PER_SECOND


# ------------------------------------------------------------------------ generators
#
# Each generator yields lists of str lines (a chunk), endlessly; the writer stops at
# the size. seq is the 0-based line number in the file: it makes every line unique.

def gen_access(rng):
    p = Pools(rng)
    ips = p.table(4096, lambda: f"{10 + int(rng.random() * 200)}.{int(rng.random() * 256)}."
                               f"{int(rng.random() * 256)}.{1 + int(rng.random() * 254)}")
    routes = ("/api/v1/orders/{}", "/api/v1/orders/{}/items?expand=product,price",
              "/api/v2/catalog/products/{}?locale=en_US&currency=EUR", "/static/js/app.{}.js",
              "/healthz", "/api/v1/users/{}/sessions", "/search?q={}&page=2&sort=relevance",
              "/images/products/{}/thumb_320x320.webp", "/api/v1/cart/{}/checkout",
              "/metrics", "/login?next=%2Faccount%2Forders%2F{}")
    paths = p.table(1024, lambda: p.pick(routes).format(int(rng.random() * 10 ** 7)))
    methods = ("GET",) * 12 + ("POST",) * 3 + ("PUT", "DELETE")
    statuses = ("200",) * 48 + ("201", "204", "301", "302", "304", "304", "400", "401",
                                "403", "404", "404", "429", "499", "500", "502", "503")
    refs = ["-"] * 24 + p.table(40, lambda: f"https://shop.example.com/{p.pick(WORDS)}/"
                                            f"{int(rng.random() * 100000)}")
    users = ["-"] * 28 + p.table(4, lambda: f"user{int(rng.random() * 9999)}")
    reqs = [f'"{m} ' for m in methods]
    clock = Clock("%d/%b/%Y:%H:%M:%S +0000")
    seq = 0
    while True:
        out = []
        for _ in range(16384):
            r = rng.getrandbits(80)
            out.append(f'{ips[r & 4095]} - {users[(r >> 12) & 31]} [{clock.at(seq)}] '
                       f'{reqs[(r >> 17) & 15]}'
                       f'{paths[(r >> 21) & 1023]} HTTP/1.1" {statuses[(r >> 31) & 63]} '
                       f'{(r >> 37) & 0x1ffff} "{refs[(r >> 54) & 63]}" '
                       f'"{USER_AGENTS[(r >> 60) & 15]}" 0.{(r >> 64) & 511:03d} '
                       f'rid={seq:010d}\n')
            seq += 1
        yield out


def gen_json(rng):
    p = Pools(rng)
    loggers = p.table(64, lambda: f"{p.pick(PACKAGES)}.{p.pick(CLASSES)}")
    threads = [f"http-nio-8080-exec-{i}" for i in range(1, 33)] + \
              [f"kafka-producer-network-thread-{i}" for i in range(4)] + \
              [f"scheduling-{i}" for i in range(1, 5)] + ["main"] * 24
    levels = ("INFO",) * 20 + ("DEBUG",) * 6 + ("WARN",) * 4 + ("ERROR", "TRACE")
    msgs = p.table(512, lambda: json.dumps(p.words(2, 16).capitalize()))
    hosts = p.table(16, lambda: f"orders-{p.hexs(40)[:10]}-{p.hexs(20)}")
    paths = p.table(256, lambda: f"/api/v1/{p.pick(WORDS)}s/{int(rng.random() * 10 ** 6)}")
    ctx = p.table(64, lambda: ",".join(
        f'"{p.pick(WORDS)}_{i}":{json.dumps(p.words(1, 4))}'
        for i in range(1 + int(rng.random() * 6))))
    clock = Clock("%Y-%m-%dT%H:%M:%S")
    seq = 0
    while True:
        out = []
        for _ in range(8192):
            r = rng.getrandbits(64)
            t = rng.getrandbits(192)
            line = (f'{{"@timestamp":"{clock.at(seq)}.{millis(seq):03d}Z",'
                    f'"level":"{levels[r & 31]}","logger":"{loggers[(r >> 5) & 63]}",'
                    f'"thread":"{threads[(r >> 11) & 63]}","message":{msgs[(r >> 17) & 511]},'
                    f'"service":"orders","env":"prod","host":"{hosts[(r >> 26) & 15]}",'
                    f'"trace_id":"{t & ((1 << 128) - 1):032x}","span_id":"{t >> 128:016x}",'
                    f'"seq":{seq}')
            if (r >> 30) & 1:
                line += (f',"http":{{"method":"GET","path":"{paths[(r >> 31) & 255]}",'
                         f'"status":{(200, 200, 404, 503)[(r >> 39) & 3]},'
                         f'"duration_ms":{(r >> 41) & 4095}.{(r >> 53) & 7}}}')
            if (r >> 56) & 1:
                line += f',"user":{{"id":"u-{(r >> 41) & 0xfffff}","tier":"gold"}}'
            if (r >> 57) & 1:
                line += f',"context":{{{ctx[(r >> 58) & 63]}}}'
            out.append(line + "}\n")
            seq += 1
        yield out


def gen_java(rng):
    p = Pools(rng)
    loggers = p.table(64, lambda: f"{'.'.join(s[0] for s in p.pick(PACKAGES).split('.')[:-1])}"
                                  f".{p.pick(PACKAGES).split('.')[-1]}.{p.pick(CLASSES)}")
    loggers = [f"{lg:<40.40}" for lg in loggers]
    threads = [f"{'nio-8080-exec-' + str(i):>15}" for i in range(1, 33)]
    levels = ("INFO",) * 22 + ("DEBUG",) * 6 + ("WARN",) * 3 + ("ERROR",)
    levels = [f"{lv:>5}" for lv in levels]
    msgs = p.table(512, lambda: p.words(3, 14).capitalize())
    frames = p.table(1024, lambda: (
        f"\tat {p.pick(PACKAGES)}.{p.pick(CLASSES)}.{p.pick(METHODS)}"
        f"({p.pick(CLASSES)}.java:{10 + int(rng.random() * 900)}) "
        f"~[{p.pick(('app', 'spring-web-6.1.6', 'hibernate-core-6.4.4.Final', 'netty-transport-4.1.109.Final', 'kafka-clients-3.7.0'))}.jar:?]"))
    clock = Clock("%Y-%m-%d %H:%M:%S")
    seq = 0
    while True:
        out = []
        n = 0
        while n < 16384:
            r = rng.getrandbits(64)
            out.append(f"{clock.at(seq)}.{millis(seq):03d} {levels[r & 31]} 1 --- "
                       f"[{threads[(r >> 5) & 31]}] {loggers[(r >> 10) & 63]} : "
                       f"{msgs[(r >> 16) & 511]} (id {seq})\n")
            seq += 1
            n += 1
            if (r >> 25) & 511 == 0:    # about one event in 512 carries a stack trace
                depth = 20 + int(rng.random() * 181)
                exc = EXCEPTIONS[(r >> 34) & 7]
                out.append(f"{exc}: {msgs[(r >> 37) & 511]} (id {seq})\n")
                seq += 1
                cause_at = depth // 2 if (r >> 46) & 1 else -1
                for i in range(1, depth):
                    if i == cause_at:
                        line = (f"Caused by: {EXCEPTIONS[(r >> 47) & 7]}: "
                                f"{msgs[(r >> 50) & 511]} (id {seq})\n")
                    elif i == depth - 1 and cause_at > 0:
                        line = f"\t... {depth // 3} common frames omitted (id {seq})\n"
                    else:
                        line = f"{frames[rng.getrandbits(10)]} #{seq}\n"
                    out.append(line)
                    seq += 1
                n += depth
        yield out


GENERATORS = {"access": gen_access, "json": gen_json, "java": gen_java}


# ------------------------------------------------------------------------ writer

def read_meta(path):
    try:
        return json.loads(Path(str(path) + ".meta").read_text())
    except (OSError, ValueError):
        return None


def is_reusable(path, verify=False):
    """The meta of an existing, complete corpus file, or None."""
    meta = read_meta(path)
    if not meta or meta.get("generator_version") != GENERATOR_VERSION:
        return None
    try:
        if os.stat(path).st_size != meta["bytes"]:
            return None
    except OSError:
        return None
    if verify:
        h = hashlib.sha256()
        with open(path, "rb") as f:
            while block := f.read(CHUNK_BYTES):
                h.update(block)
        if h.hexdigest() != meta["sha256"]:
            return None
    return meta


def write_meta(path, meta):
    tmp = Path(str(path) + ".meta.tmp")
    tmp.write_text(json.dumps(meta, indent=1, sort_keys=True) + "\n")
    os.replace(tmp, str(path) + ".meta")


def generate(kind, size_text, seed, out_dir=None, verify=False, log=sys.stderr):
    """Makes (or reuses) the corpus; returns its meta dict (with 'path')."""
    if kind not in GENERATORS:
        raise ValueError(f"unknown kind '{kind}' (one of {', '.join(KINDS)})")
    size = parse_size(size_text)
    out_dir = Path(out_dir) if out_dir else default_dir()
    out_dir.mkdir(parents=True, exist_ok=True)
    path = corpus_path(out_dir, kind, size_text, seed)
    meta = is_reusable(path, verify)
    if meta:
        print(f"corpus: reusing {path} ({meta['bytes']} bytes, {meta['lines']} lines)",
              file=log)
        meta["path"] = str(path)
        return meta

    rng = random.Random(f"ringtail-bench/{kind}/{seed}")
    tmp = Path(str(path) + f".tmp.{os.getpid()}")
    h = hashlib.sha256()
    written = lines = 0
    t0 = time.monotonic()
    try:
        with open(tmp, "wb") as f:
            for chunk_lines in GENERATORS[kind](rng):
                data = "".join(chunk_lines).encode()
                n = len(chunk_lines)
                if written + len(data) >= size:
                    # Keep lines up to the first line end at or after size.
                    need = size - written
                    cut = data.find(b"\n", max(need - 1, 0)) + 1
                    n = data.count(b"\n", 0, cut)
                    data = data[:cut]
                f.write(data)
                h.update(data)
                written += len(data)
                lines += n
                if written >= size:
                    break
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    took = time.monotonic() - t0
    meta = {"kind": kind, "size": size_text, "seed": seed, "bytes": written, "lines": lines,
            "sha256": h.hexdigest(), "generator_version": GENERATOR_VERSION,
            "generate_seconds": round(took, 3)}
    write_meta(path, meta)
    print(f"corpus: wrote {path}: {written} bytes, {lines} lines, mean "
          f"{written / max(lines, 1):.0f} B/line, in {took:.2f} s "
          f"({written / 1e6 / max(took, 1e-9):.1f} MB/s)", file=log)
    meta["path"] = str(path)
    return meta


def multiset_digest(path):
    """{lines, bytes, hash}: hash is the sum mod 2^64 of Python's hash() (SipHash) of
    every line, without its newline; equal multisets of lines give equal sums, a lost,
    duplicated or altered line changes it (a collision has probability ~2^-64). Only
    comparable between processes with the same PYTHONHASHSEED and hash algorithm: run
    it through `corpus.py --digest FILE` with PYTHONHASHSEED=0. Reads 1 MiB blocks and
    hashes with map(), so the loop runs in C: about 1 GB/s."""
    total = lines = nbytes = 0
    rest = b""
    with open(path, "rb", buffering=0) as f:
        while block := f.read(1 << 20):
            nbytes += len(block)
            block = rest + block
            cut = block.rfind(b"\n") + 1
            rest = block[cut:]
            parts = block[:cut].split(b"\n")
            parts.pop()
            lines += len(parts)
            total += sum(map(hash, parts))
    if rest:        # a last line without a newline still counts
        lines += 1
        total += hash(rest)
    return {"lines": lines, "bytes": nbytes, "hash": total % (1 << 64)}


def digest_key():
    """Names the digest's definition: hash algorithm and seed."""
    return f"multiset_{sys.hash_info.algorithm}_seed{os.environ.get('PYTHONHASHSEED', '?')}"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kind", choices=KINDS, default="access")
    ap.add_argument("--size", default="100M", help="e.g. 2M, 100M, 1G (powers of 1024)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out", help=f"directory (default {default_dir()})")
    ap.add_argument("--verify", action="store_true",
                    help="recheck an existing file's sha256 before reusing it")
    ap.add_argument("--digest", metavar="FILE",
                    help="print FILE's multiset digest as JSON (run with PYTHONHASHSEED=0)")
    a = ap.parse_args(argv)
    if a.digest:
        print(json.dumps({**multiset_digest(a.digest), "key": digest_key()}))
        return 0
    parse_size(a.size)
    meta = generate(a.kind, a.size, a.seed, a.out, a.verify)
    print(meta["path"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
