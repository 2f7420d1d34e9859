# SPDX-License-Identifier: Apache-2.0
"""The bench's syslog-daemon contenders: `rsyslog` (imfile -> omkafka) and `syslog-ng`
(file() -> kafka-c()), Debian 12's packages run from private prefixes.

DESIGN. Debian's rsyslog and syslog-ng-core conflict (both provide system-log-daemon),
and installing either starts a system daemon on /dev/log. So neither is installed:
bench/peers/fetch.sh downloads the packages (and the libraries they need that are not
installed) with `apt-get download` and unpacks them with `dpkg-deb -x` into
${RINGTAIL_BENCH_DIR:-~/.cache/ringtail/bench}/peers/NAME/root/. unavailable() runs it
(a no-op once fetched) and reports its error if it fails.

Each run writes the daemon's own config into the run's workdir and starts the daemon in
the foreground through /usr/bin/env, which execs it with LD_LIBRARY_PATH pointing into
the prefix (rsyslog through /bin/sh first, which execs env with stdout reopened for
appending), so the PID run.py measures is the daemon's. All state (rsyslog's work
directory and pid file; syslog-ng's persist file, pid file and control socket) is in
the workdir, which is fresh per run: both read the corpus from its first byte. Neither
opens /dev/log, /var/log or /etc: no imuxsock/imklog, no system() source, rsyslog's
internal messages go to its stdout (the run's log), syslog-ng's with --stderr. Both stop
on run.py's SIGTERM and exit 0.

Exactness: each line becomes one Kafka message of exactly the line's bytes.
rsyslog: the template is `%rawmsg%` (imfile's line, newline stripped; imfile does not
run the parser, and parser.escapeControlCharactersOnReceive is off all the same, so a
TAB stays a TAB). syslog-ng: flags(no-parse) puts the whole line in $MSG, the message()
template is "$MSG". Both use librdkafka's partitioner on a null key, like kcat and
ringtail: omkafka with partitions.auto="on" (without it omkafka picks partitions
itself, round-robin over partitions.number, default 1), kafka-c sets murmur2_random.

Producer settings: enable.idempotence=true, acks=all, zstd and the shared --producer
settings, as librdkafka properties. omkafka gives its topic handle a topic conf of its
own (rd_kafka_topic_conf_new()), so topic-level properties go in topicConfParam, the
others in confParam; kafka-c takes every property in config() (its topic handle uses
the default topic conf).
"""
import os
import re
import subprocess
from pathlib import Path

import corpus
import run

FETCH_SH = run.HERE / "peers" / "fetch.sh"

# What the bench sets on every contender's producer (librdkafka names).
BASE_PRODUCER = {"enable.idempotence": "true", "acks": "all", "compression.codec": "zstd"}

# librdkafka's topic-level producer properties. omkafka creates its topic handle with a
# topic conf of its own, which does not see these when they are set on the global conf:
# they go in topicConfParam.
TOPIC_LEVEL = {"acks", "request.required.acks", "request.timeout.ms", "message.timeout.ms",
               "delivery.timeout.ms", "partitioner", "compression.level", "queuing.strategy",
               "produce.offset.report", "msg_order_cmp"}

# librdkafka 2.0 defaults that stay, stated in the report (as for kcat).
LIBRDKAFKA_DEFAULTS = {"message.timeout.ms": "300000 (librdkafka default)",
                       "queue.buffering.max.messages": "100000 (librdkafka default)",
                       "queue.buffering.max.kbytes": "1048576 (librdkafka default)"}

# Longest line the daemons accept unsplit; the corpora's longest is under 1 KiB.
MAX_MESSAGE = 65536


def conf_str(s):
    """A string constant for either config language (both escape \\ and \" alike)."""
    return '"' + str(s).replace("\\", "\\\\").replace('"', '\\"') + '"'


class Peer(run.Contender):
    """A daemon run from its prefix under peers/NAME/root (see fetch.sh)."""
    exits_when_done = False     # both keep following the file; stopped with SIGTERM
    peer = "?"                  # fetch.sh's name for it

    def __init__(self, shared):
        super().__init__(shared)
        self.root = corpus.default_dir() / "peers" / self.peer / "root"
        self._why = None
        self._checked = False

    def unavailable(self):
        if self._checked:
            return self._why
        self._checked = True
        env = dict(os.environ, RINGTAIL_BENCH_DIR=str(corpus.default_dir()))
        try:
            r = subprocess.run(["bash", str(FETCH_SH), self.peer], capture_output=True,
                               text=True, timeout=600, env=env)
        except subprocess.TimeoutExpired:
            self._why = f"bench/peers/fetch.sh {self.peer} did not finish within 600 s"
            return self._why
        for ln in r.stderr.strip().splitlines():
            run.log(ln)
        if r.returncode != 0:
            err = [ln for ln in r.stderr.strip().splitlines() if ln.strip()]
            self._why = (f"bash bench/peers/fetch.sh {self.peer} failed: " +
                         (" / ".join(err[-2:]) if err else f"exit {r.returncode}"))
        return self._why

    def path(self, pattern):
        """The one file of the prefix matching pattern (a glob relative to root)."""
        found = sorted(self.root.glob(pattern))
        if not found:
            raise run.BenchError(f"{self.name}: no {pattern} in {self.root} "
                                 f"(bash bench/peers/fetch.sh {self.peer})")
        return found[-1]

    def ld_library_path(self):
        dirs = (self.root / ".ld-library-path").read_text().split()
        return ":".join(str(self.root / d) for d in dirs)

    def env_argv(self):
        """/usr/bin/env execs the daemon (same PID) with the prefix' libraries."""
        return ["/usr/bin/env", f"LD_LIBRARY_PATH={self.ld_library_path()}"]

    def packages(self):
        """{package: version} of what fetch.sh unpacked."""
        out = {}
        try:
            for line in (self.root / ".packages").read_text().splitlines():
                name, _, ver = line.partition(" ")
                out[name] = ver
        except OSError:
            pass
        return out

    def librdkafka(self):
        """Version of the librdkafka the daemon loads (the system's, unless fetched)."""
        ver = self.packages().get("librdkafka1")
        if ver:
            return f"librdkafka {ver} (fetched)"
        r = run.run_text(["dpkg-query", "-W", "-f=${Version}", "librdkafka1"], check=False)
        return f"librdkafka {r.stdout.strip() or '?'} (the system's librdkafka1)"

    def run_version(self, argv):
        env = dict(os.environ, LD_LIBRARY_PATH=self.ld_library_path())
        r = subprocess.run(argv, capture_output=True, text=True, timeout=30, env=env)
        return (r.stdout or r.stderr).strip().splitlines()

    def settings(self):
        """librdkafka properties: the bench's base, then the shared ones."""
        return {**BASE_PRODUCER, **self.shared}

    def producer_description(self, where):
        d = {}
        for k, v in self.settings().items():
            src = "shared" if k in self.shared else "bench"
            d[k] = f"{v} ({src}; {where(k)})"
        for k, v in LIBRDKAFKA_DEFAULTS.items():
            d.setdefault(k, v)
        return d

    def fetched(self):
        pk = self.packages()
        return (f"Debian packages {', '.join(f'{n} {v}' for n, v in pk.items())}, unpacked "
                f"by bench/peers/fetch.sh into {self.root}")


# ------------------------------------------------------------------------ rsyslog

class Rsyslog(Peer):
    name = "rsyslog"
    peer = "rsyslog"

    def moddir(self):
        return self.path("usr/lib/*/rsyslog/imfile.so").parent

    def version(self):
        lines = self.run_version([str(self.path("usr/sbin/rsyslogd")), "-v"])
        first = " ".join(lines[0].split()[:2]) if lines else "rsyslogd ?"
        deb = self.packages().get("rsyslog", "?")
        return f"{first} (Debian {deb}), imfile + omkafka, {self.librdkafka()}"

    def conf_params(self):
        """(confParam, topicConfParam) lists of 'key=value'."""
        glob, topic = [], []
        for k, v in self.settings().items():
            (topic if k in TOPIC_LEVEL else glob).append(f"{k}={v}")
        return glob, topic

    def config(self, bootstrap, topic, files, workdir):
        moddir = self.moddir()
        glob, tconf = self.conf_params()
        brokers = ", ".join(conf_str(b) for b in str(bootstrap).split(","))
        return "\n".join([
            "# written by bench/peers_syslog.py",
            "# All state in the run's workdir; internal messages to stdout (the run's log),",
            "# never to syslog(3)/dev/log.",
            f"global(workDirectory={conf_str(workdir)} maxMessageSize=\"{MAX_MESSAGE}\"",
            "       parser.escapeControlCharactersOnReceive=\"off\"",
            "       processInternalMessages=\"on\")",
            f"module(load={conf_str(moddir / 'imfile.so')} mode=\"inotify\")",
            f"module(load={conf_str(moddir / 'omkafka.so')})",
            "template(name=\"bench_line\" type=\"string\" string=\"%rawmsg%\")",
            "ruleset(name=\"bench_kafka\") {",
            f"  action(type=\"omkafka\" broker=[{brokers}] topic={conf_str(topic)}",
            "         template=\"bench_line\" partitions.auto=\"on\"",
            "         confParam=[" + ", ".join(conf_str(p) for p in glob) + "]",
            "         topicConfParam=[" + ", ".join(conf_str(p) for p in tconf) + "]",
            "         action.resumeRetryCount=\"-1\")",
            "}",
            f"input(type=\"imfile\" file={conf_str(files)} tag=\"bench\"",
            "      ruleset=\"bench_kafka\" freshStartTail=\"off\")",
            "action(type=\"omfile\" file=\"/dev/stdout\")",
            ""])

    def describe(self):
        def where(k):
            return "topicConfParam" if k in TOPIC_LEVEL else "confParam"
        return {
            "command": "sh -c 'exec \"$@\" >>/dev/stdout 2>&1' rsyslogd "
                       "env LD_LIBRARY_PATH=PREFIX/usr/lib/x86_64-linux-gnu "
                       "PREFIX/usr/sbin/rsyslogd -n -f WORKDIR/rsyslog.conf "
                       "-i WORKDIR/rsyslogd.pid -M PREFIX/usr/lib/x86_64-linux-gnu/rsyslog; "
                       "SIGTERM once every line is in Kafka",
            "config": "`" + " ".join(ln.strip() for ln in self.config(
                "BOOTSTRAP", "TOPIC", "CORPUS", "WORKDIR").splitlines()
                if ln.strip() and not ln.startswith("#")).replace(
                str(self.moddir()), "PREFIX/usr/lib/x86_64-linux-gnu/rsyslog") + "`",
            "input": "imfile, inotify mode (its default), from the first byte (no state file "
                     "in the fresh workdir, freshStartTail off), one message per line, the "
                     "line's bytes in %rawmsg%; the main message queue's defaults (in-memory, "
                     "100,000 messages; rsyslog adds a second worker thread under load)",
            "output": "omkafka, partitions.auto on (librdkafka's partitioner, null key); "
                      "action.resumeRetryCount -1 (a suspended action is retried forever, "
                      "every action.resumeInterval, default 30 s, instead of dropping); "
                      "resubmitOnFailure off (its default: a message whose delivery report "
                      "fails is written to no errorFile and lost)",
            "producer": self.producer_description(where),
            "fetched": self.fetched(),
        }

    def write(self, bootstrap, topic, files, workdir):
        workdir = Path(workdir)
        conf = workdir / "rsyslog.conf"
        conf.write_text(self.config(bootstrap, topic, files, workdir))
        # sh reopens stdout (the run's log) with O_APPEND and execs: omfile's own open of
        # /dev/stdout appends, and rsyslogd's stderr must too, or it writes at offset 0
        # over omfile's lines.
        return (["/bin/sh", "-c", 'exec "$@" >>/dev/stdout 2>&1', "rsyslogd"] +
                self.env_argv() +
                [str(self.path("usr/sbin/rsyslogd")), "-n", "-f", str(conf),
                 "-i", str(workdir / "rsyslogd.pid"), "-M", str(self.moddir())])

    def argv(self, bootstrap, topic, corpus_path, workdir):
        return self.write(bootstrap, topic, corpus_path, workdir)

    def glob_argv(self, bootstrap, topic, glob, workdir):
        return self.write(bootstrap, topic, glob, workdir)      # imfile takes wildcards


# ------------------------------------------------------------------------ syslog-ng

class SyslogNg(Peer):
    name = "syslog-ng"
    peer = "syslog-ng"

    # Files a wildcard-file() source follows at most (its default is 100).
    MAX_FILES = 20000

    def moddir(self):
        return self.path("usr/lib/syslog-ng/3.*/libkafka.so").parent

    def version(self):
        lines = self.run_version([str(self.path("usr/sbin/syslog-ng")), "--version",
                                  "--module-path", str(self.moddir())])
        m = re.search(r"\(([\d.]+)\)", lines[0]) if lines else None      # "syslog-ng 3 (3.38.1)"
        first = f"syslog-ng {m.group(1)}" if m else (lines[0] if lines else "syslog-ng ?")
        deb = self.packages().get("syslog-ng-core", "?")
        return f"{first} (Debian {deb}), file() + kafka-c(), {self.librdkafka()}"

    def config(self, bootstrap, topic, source):
        props = " ".join(f"{conf_str(k)} => {conf_str(v)}" for k, v in self.settings().items())
        return "\n".join([
            "@version: 3.38",
            "# written by bench/peers_syslog.py",
            f"options {{ stats-freq(0); log-msg-size({MAX_MESSAGE}); }};",
            f"source s_bench {{ {source} }};",
            "destination d_kafka {",
            f"  kafka-c(bootstrap-servers({conf_str(bootstrap)}) topic({conf_str(topic)})",
            "          message(\"$MSG\")",
            f"          config({props}));",
            "};",
            "log { source(s_bench); destination(d_kafka); flags(flow-control); };",
            ""])

    @staticmethod
    def file_source(path):
        return f"file({conf_str(path)} flags(no-parse) follow-freq(1));"

    def describe(self):
        return {
            "command": "env LD_LIBRARY_PATH=PREFIX/usr/lib/x86_64-linux-gnu:PREFIX/lib/"
                       "x86_64-linux-gnu:PREFIX/usr/lib/syslog-ng PREFIX/usr/sbin/syslog-ng -F "
                       "--no-caps --stderr -f WORKDIR/syslog-ng.conf --module-path "
                       "PREFIX/usr/lib/syslog-ng/3.38 --persist-file WORKDIR/syslog-ng.persist "
                       "--pidfile WORKDIR/syslog-ng.pid --control WORKDIR/syslog-ng.ctl; "
                       "SIGTERM once every line is in Kafka",
            "config": "`" + " ".join(ln.strip() for ln in self.config(
                "BOOTSTRAP", "TOPIC", self.file_source("CORPUS")).splitlines()[2:]
                if ln.strip()) + "`",
            "input": "file() with flags(no-parse) (the whole line is $MSG, nothing parsed), "
                     "follow-freq(1) (file() polls a plain file; its default), from the first "
                     "byte (fresh persist file); log-fetch-limit, log-iw-size (100 each) and "
                     "the other source options at their defaults",
            "output": "kafka-c(), message(\"$MSG\"), no key; its partitioner murmur2_random "
                      "(random for a null key); one worker (its default), which on librdkafka's "
                      "'Queue full' retries the message twice at once, then pauses "
                      "poll-timeout (1 s) and starts again; flags(flow-control) "
                      "on the log path, without which syslog-ng drops messages once the "
                      "destination's queue (log-fifo-size, 10,000) is full",
            "producer": self.producer_description(lambda k: "config()"),
            "fetched": self.fetched(),
        }

    def write(self, bootstrap, topic, source, workdir):
        workdir = Path(workdir)
        conf = workdir / "syslog-ng.conf"
        conf.write_text(self.config(bootstrap, topic, source))
        return self.env_argv() + [
            str(self.path("usr/sbin/syslog-ng")), "-F", "--no-caps", "--stderr",
            "-f", str(conf), "--module-path", str(self.moddir()),
            "--persist-file", str(workdir / "syslog-ng.persist"),
            "--pidfile", str(workdir / "syslog-ng.pid"),
            "--control", str(workdir / "syslog-ng.ctl")]

    def argv(self, bootstrap, topic, corpus_path, workdir):
        return self.write(bootstrap, topic, self.file_source(corpus_path), workdir)

    def glob_argv(self, bootstrap, topic, glob, workdir):
        base, _, pattern = str(glob).rpartition("/")
        src = (f"wildcard-file(base-dir({conf_str(base)}) filename-pattern({conf_str(pattern)}) "
               f"flags(no-parse) max-files({self.MAX_FILES}));")
        return self.write(bootstrap, topic, src, workdir)


CONTENDERS = {"rsyslog": Rsyslog, "syslog-ng": SyslogNg}
