#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Runs a real, single-node Apache Kafka broker (KRaft, combined broker+controller) on
# 127.0.0.1 for ringtail's tests and benchmarks. No manual steps: the broker's jars are
# resolved from Maven Central with Maven on first use and cached outside the repo.
# See tests/kafka/README.md.
#
#   kafka.sh start                     start (or find running) instance, print bootstrap
#   kafka.sh stop [--keep-data]        stop it; remove its state dir unless --keep-data
#   kafka.sh kill                      SIGKILL the broker, keep its data
#   kafka.sh status                    "running 127.0.0.1:PORT" (exit 0) or "stopped" (3)
#   kafka.sh env                       "export RINGTAIL_KAFKA_BOOTSTRAP=..." (exit 3 if down)
#   kafka.sh create-topic NAME PARTITIONS [key=value ...]
#   kafka.sh dump-log TOPIC PARTITION [DumpLogSegments options, e.g. --print-data-log]
#   kafka.sh resolve                   only resolve/cache the jars, print the libs dir
#   kafka.sh version                   print the Kafka version used
#
# Environment:
#   KAFKA_VERSION        Kafka release to use (default below)
#   KAFKA_STATE_DIR      instance state dir (default /tmp/ringtail-kafka-$UID)
#   RINGTAIL_CACHE       cache root (default ${XDG_CACHE_HOME:-$HOME/.cache}/ringtail)
#   KAFKA_START_TIMEOUT  seconds to wait for the broker to answer (default 90)
#   KAFKA_STOP_TIMEOUT   seconds to wait after SIGTERM before SIGKILL (default 60)
#   KAFKA_HEAP_OPTS      broker heap (default "-Xms256m -Xmx1g")
#   KAFKA_OPTS           extra JVM options for the broker
#   KAFKA_LOG4J_VERSION  log4j2 version put on the class path (default 2.25.4, in maven.sh)
#   KAFKA_MAVEN_REPO     Maven local repository used for resolving
#                        (default $RINGTAIL_CACHE/m2)
#   JAVA_HOME            Java to use (default: java on PATH); Kafka 4.x needs 17+
set -euo pipefail

# Newest release verified here on Java 17 with everything this script needs on Maven
# Central (4.4.0's kafka-tools artifact, with TopicCommand and DumpLogSegments, is not
# published there). See README.md.
readonly DEFAULT_KAFKA_VERSION=4.3.1

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
prog=kafka.sh

# cache_root, log4j_version (default 2.25.4), maven_repo, java; check_java_for and
# maven_resolve, shared with bench/connect/connect.sh
# shellcheck source=maven.sh
source "$here/maven.sh"
state=${KAFKA_STATE_DIR:-/tmp/ringtail-kafka-$(id -u)}
state=$(realpath -m -- "$state")
start_timeout=${KAFKA_START_TIMEOUT:-90}
stop_timeout=${KAFKA_STOP_TIMEOUT:-60}

# Files of an instance, all inside its state dir.
marker=$state/.ringtail-kafka   # says "this dir is ours", so stop may rm -rf it
pid_file=$state/kafka.pid
port_file=$state/broker.port
cport_file=$state/controller.port
version_file=$state/kafka.version
props=$state/server.properties
log_file=$state/logs/server.log
data_dir=$state/data

# Set by the commands; used by the EXIT trap.
tmp_paths=()      # removed on exit, whatever happens
started_pid=""    # a broker this invocation launched; killed if we exit non-zero
started_fresh=0   # 1 if it created the state dir: removed if we exit non-zero

die() {
        echo "$prog: $*" >&2
        exit 1
}

on_exit() {
        local rc=$?
        trap - EXIT INT TERM
        if [[ $rc -ne 0 && -n $started_pid ]]; then
                echo "$prog: stopping the broker it started (pid $started_pid)" >&2
                terminate "$started_pid" 10 || true
                rm -f -- "$pid_file"
        fi
        if [[ $rc -ne 0 && $started_fresh -eq 1 ]]; then
                remove_state_dir || true
        fi
        if [[ ${#tmp_paths[@]} -gt 0 ]]; then
                rm -rf -- "${tmp_paths[@]}"
        fi
        exit "$rc"
}
trap on_exit EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---------------------------------------------------------------------------- version

requested_version=${KAFKA_VERSION:-$DEFAULT_KAFKA_VERSION}

# The Kafka version of the instance in $state (whose tools must match its data), or
# the requested one if there is none.
instance_version() {
        local stored=""
        if [[ -f $version_file ]]; then
                stored=$(<"$version_file")
        fi
        echo "${stored:-$requested_version}"
}

use_version() {
        version=$1
        [[ $version =~ ^[0-9]+\.[0-9]+\.[0-9]+([.-][A-Za-z0-9.-]+)?$ ]] ||
                die "bad Kafka version '$version'"
        kafka_home=$cache_root/kafka-$version
        libs=$kafka_home/libs
        classpath="$libs/*"
}

use_version "$(instance_version)"

# ---------------------------------------------------------------------------- java

check_java() {
        check_java_for "Kafka $version brokers need"
}

# ---------------------------------------------------------------------------- resolve

is_resolved() {
        [[ -f $libs/kafka_2.13-$version.jar ]]
}

# Resolves org.apache.kafka:kafka_2.13:$version, kafka-tools and log4j2 with their
# runtime dependencies into $libs, atomically (maven.sh). A resolved version never
# runs Maven.
resolve() {
        maven_resolve "$kafka_home" "Kafka $version" is_resolved "$here/pom.xml.in" \
                "kafka_2.13-$version.jar"
}

# Prints the first of the given class names found in $libs. Class names are stored
# uncompressed in a jar's directory, so a byte search finds them without unpacking;
# candidates go from the most to the least specific name.
find_class() {
        local c
        for c in "$@"; do
                if LC_ALL=C grep -F -q -a -- "${c//.//}.class" "$libs"/*.jar; then
                        echo "$c"
                        return 0
                fi
        done
        die "none of $* is in $libs"
}

# Runs a Kafka command-line tool class: warnings on stderr, output on stdout.
run_tool() {
        local cls=$1
        shift
        "$java" -Xmx512m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -Djava.awt.headless=true \
                -Dlog4j2.configurationFile="$here/log4j2-tools.properties" \
                -cp "$classpath" "$cls" "$@"
}

# ---------------------------------------------------------------------------- process

# Succeeds if PID exists and is neither a zombie nor dead.
alive() {
        local stat
        stat=$(cat -- "/proc/$1/stat" 2>/dev/null) || return 1
        stat=${stat##*) }
        [[ ${stat:0:1} != [ZX] ]]
}

# Succeeds if PID is alive and is the broker of this state dir (not a recycled PID, not
# a zombie: a zombie's cmdline is empty). The broker this invocation has just forked
# counts before it has exec'd java, too.
is_our_broker() {
        local pid=$1 cmd
        [[ $pid =~ ^[0-9]+$ ]] || return 1
        if [[ $pid == "$started_pid" ]]; then
                # (No bare `return` here: in the EXIT trap it would return the status
                # the script is exiting with.)
                alive "$pid" && return 0
                return 1
        fi
        cmd=$(tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline") || return 1
        [[ $cmd == *" kafka.Kafka $props"* ]]
}

# Prints the PID of this state dir's running broker, or fails.
running_pid() {
        local pid
        [[ -f $pid_file ]] || return 1
        pid=$(<"$pid_file")
        is_our_broker "$pid" || return 1
        echo "$pid"
}

# Waits up to SECONDS for PID to be gone (or no longer our broker).
wait_gone() {
        local pid=$1 secs=$2 i
        for ((i = 0; i < secs * 5; i++)); do
                is_our_broker "$pid" || return 0
                sleep 0.2
        done
        ! is_our_broker "$pid"
}

# SIGTERM, bounded wait, then SIGKILL.
terminate() {
        local pid=$1 secs=$2
        is_our_broker "$pid" || return 0
        kill -TERM "$pid" 2>/dev/null || true
        wait_gone "$pid" "$secs" && return 0
        echo "$prog: broker $pid still running ${secs}s after SIGTERM; sending SIGKILL" >&2
        kill -KILL "$pid" 2>/dev/null || true
        wait_gone "$pid" 10 || die "broker $pid did not die after SIGKILL"
}

bootstrap() {
        echo "127.0.0.1:$(<"$port_file")"
}

# Takes an exclusive lock for this state dir's start/stop. The lock is on the parent
# directory itself, so nothing is left behind when the state dir is removed; it is
# only held for the short critical sections (never while waiting for the broker).
lock_state() {
        local parent
        parent=$(dirname -- "$state")
        mkdir -p -- "$parent"
        exec {state_lock_fd}<"$parent"
        flock -w 300 "$state_lock_fd" || die "timed out waiting for the lock on $parent"
}

unlock_state() {
        exec {state_lock_fd}<&-
}

remove_state_dir() {
        [[ -e $state ]] || return 0
        if [[ ! -f $marker ]] && [[ -n $(ls -A -- "$state") ]]; then
                die "not removing $state: it was not made by $prog"
        fi
        rm -rf -- "$state"
}

# ---------------------------------------------------------------------------- start

# Prints two free TCP ports on 127.0.0.1 from 20000-32767 (below Linux's ephemeral
# range, so outgoing connections do not take them between the check and the bind).
pick_ports() {
        python3 - <<'EOF'
import random, socket
ports = []
for _ in range(1000):
    p = random.randint(20000, 32767)
    if p in ports:
        continue
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind(("127.0.0.1", p))
    except OSError:
        continue
    finally:
        s.close()
    ports.append(p)
    if len(ports) == 2:
        break
if len(ports) != 2:
    raise SystemExit("no free ports")
print(*ports)
EOF
}

port_free() {
        python3 -c '
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
try:
    s.bind(("127.0.0.1", int(sys.argv[1])))
except OSError:
    sys.exit(1)
' "$1"
}

write_props() {
        local port=$1 cport=$2
        cat >"$props" <<EOF
# Written by tests/kafka/kafka.sh: single-node KRaft, combined broker+controller.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$cport
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$cport
advertised.listeners=PLAINTEXT://127.0.0.1:$port
inter.broker.listener.name=PLAINTEXT
controller.listener.names=CONTROLLER
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$data_dir

auto.create.topics.enable=true
num.partitions=1
default.replication.factor=1
min.insync.replicas=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
share.coordinator.state.topic.num.partitions=1
group.initial.rebalance.delay.ms=0

# After a SIGKILL (kafka.sh kill) the restarted broker cannot register until the
# controller expires the dead one's session: 4 s instead of the default 9 s.
broker.heartbeat.interval.ms=1000
broker.session.timeout.ms=4000
EOF
}

# A KRaft cluster id: 16 random bytes, URL-safe base64 without padding. One that
# starts with '-' (1 in 64) would be read by StorageTool as an option: draw again.
cluster_id() {
        local id
        while :; do
                id=$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')
                [ "${id#-}" = "$id" ] && break
        done
        printf '%s' "$id"
}

format_storage() {
        local cls out
        cls=$(find_class org.apache.kafka.tools.StorageTool kafka.tools.StorageTool)
        if ! out=$(run_tool "$cls" format -t "$(cluster_id)" -c "$props" 2>&1); then
                echo "$out" >&2
                die "formatting $data_dir failed"
        fi
        echo "$out" >>"$log_file"
}

launch() {
        local heap
        heap=${KAFKA_HEAP_OPTS:--Xms256m -Xmx1g}
        echo "[$(date '+%F %T')] $prog: starting Kafka $version" >>"$log_file"
        # setsid: its own session, so the caller's Ctrl-C or process-group kill does not
        # reach it; all standard streams redirected, so $(kafka.sh start) returns.
        # shellcheck disable=SC2086 # KAFKA_HEAP_OPTS and KAFKA_OPTS are word lists
        setsid "$java" $heap ${KAFKA_OPTS:-} \
                -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35 \
                -XX:+ExplicitGCInvokesConcurrent -Djava.awt.headless=true \
                -Dlog4j2.configurationFile="$here/log4j2-broker.properties" \
                -Dkafka.logs.dir="$state/logs" \
                -cp "$classpath" kafka.Kafka "$props" \
                </dev/null >>"$log_file" 2>&1 {state_lock_fd}<&- &
        started_pid=$!
        echo "$started_pid" >"$pid_file"
}

fail_start() {
        echo "$prog: $*" >&2
        if [[ -f $log_file ]]; then
                echo "$prog: last 40 lines of $log_file:" >&2
                tail -n 40 -- "$log_file" >&2
        fi
        exit 1
}

# Waits until the broker answers a metadata request listing itself.
wait_ready() {
        local pid=$1 port deadline md re
        port=$(<"$port_file")
        re="broker [0-9]+ at 127\.0\.0\.1:$port( |\$)"
        deadline=$((SECONDS + start_timeout))
        while ((SECONDS < deadline)); do
                if ! is_our_broker "$pid"; then
                        fail_start "the broker (pid $pid) exited during startup"
                fi
                # A cheap TCP probe first: kcat would wait its whole timeout on a port
                # that does not listen yet.
                if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
                        if md=$(kcat -L -b "127.0.0.1:$port" -m 2 2>/dev/null) &&
                                [[ $md =~ $re ]]; then
                                return 0
                        fi
                fi
                sleep 0.2
        done
        fail_start "the broker (pid $pid) did not answer on 127.0.0.1:$port within ${start_timeout}s"
}

cmd_start() {
        [[ $# -eq 0 ]] || die "usage: $prog start"
        if [[ -n ${KAFKA_VERSION:-} && $KAFKA_VERSION != "$version" ]]; then
                die "$state holds Kafka $version data but KAFKA_VERSION=$KAFKA_VERSION;" \
                        "run '$prog stop' (without --keep-data) first, or use another KAFKA_STATE_DIR"
        fi
        command -v kcat >/dev/null 2>&1 || die "no kcat; run packaging/setup.sh"
        command -v python3 >/dev/null 2>&1 || die "no python3; run packaging/setup.sh"
        check_java
        resolve

        lock_state
        local pid port cport ports
        if pid=$(running_pid); then
                unlock_state
                wait_ready "$pid"
                bootstrap
                return 0
        fi
        rm -f -- "$pid_file"
        if [[ -f $marker && -f $props && -f $port_file && -f $cport_file && -d $data_dir ]]; then
                # A stopped instance (stop --keep-data, kill, crash): same ports, same data.
                port=$(<"$port_file")
                cport=$(<"$cport_file")
                port_free "$port" || fail_start "cannot restart: port $port (broker) is taken"
                port_free "$cport" || fail_start "cannot restart: port $cport (controller) is taken"
                echo "$prog: restarting the stopped instance in $state" >&2
        else
                remove_state_dir
                mkdir -p -- "$state/logs" "$data_dir"
                started_fresh=1
                touch -- "$marker"
                echo "$version" >"$version_file"
                ports=$(pick_ports) || fail_start "could not find free ports"
                read -r port cport <<<"$ports"
                echo "$port" >"$port_file"
                echo "$cport" >"$cport_file"
                write_props "$port" "$cport"
                format_storage
        fi
        launch
        unlock_state
        wait_ready "$started_pid"
        started_pid=""
        bootstrap
}

# ---------------------------------------------------------------------------- commands

cmd_stop() {
        local keep=0
        case "${1:-}" in
        "") ;;
        --keep-data) keep=1 ;;
        *) die "usage: $prog stop [--keep-data]" ;;
        esac
        lock_state
        local pid
        if pid=$(running_pid); then
                terminate "$pid" "$stop_timeout"
        fi
        rm -f -- "$pid_file"
        if [[ $keep -eq 0 ]]; then
                remove_state_dir
        fi
        unlock_state
}

cmd_kill() {
        [[ $# -eq 0 ]] || die "usage: $prog kill"
        lock_state
        local pid
        if pid=$(running_pid); then
                kill -KILL "$pid" 2>/dev/null || true
                wait_gone "$pid" 10 || die "broker $pid did not die after SIGKILL"
        fi
        rm -f -- "$pid_file"
        unlock_state
}

cmd_status() {
        if running_pid >/dev/null; then
                echo "running $(bootstrap)"
                return 0
        fi
        if [[ -d $data_dir ]]; then
                echo "stopped (data kept in $state)"
        else
                echo "stopped"
        fi
        exit 3
}

cmd_env() {
        if running_pid >/dev/null; then
                echo "export RINGTAIL_KAFKA_BOOTSTRAP=$(bootstrap)"
                return 0
        fi
        echo "$prog: no broker running in $state" >&2
        exit 3
}

cmd_create_topic() {
        [[ $# -ge 2 ]] || die "usage: $prog create-topic NAME PARTITIONS [key=value ...]"
        local name=$1 parts=$2
        shift 2
        [[ $parts =~ ^[0-9]+$ ]] || die "PARTITIONS must be a number, not '$parts'"
        running_pid >/dev/null || die "no broker running in $state"
        local args=(--bootstrap-server "$(bootstrap)" --create --topic "$name"
                --partitions "$parts" --replication-factor 1)
        local kv
        for kv in "$@"; do
                [[ $kv == *=* ]] || die "topic config '$kv' is not key=value"
                args+=(--config "$kv")
        done
        local cls
        cls=$(find_class org.apache.kafka.tools.TopicCommand kafka.admin.TopicCommand)
        # TopicCommand prints its errors on stdout: move them to stderr.
        local out
        if ! out=$(run_tool "$cls" "${args[@]}"); then
                [[ -z $out ]] || echo "$out" >&2
                die "creating topic '$name' failed"
        fi
        [[ -z $out ]] || echo "$out"
}

cmd_dump_log() {
        [[ $# -ge 2 ]] || die "usage: $prog dump-log TOPIC PARTITION [--print-data-log ...]"
        local topic=$1 part=$2
        shift 2
        local dir=$data_dir/$topic-$part
        [[ -d $dir ]] || die "no partition directory $dir"
        local files=() f
        for f in "$dir"/*.log; do
                [[ -f $f ]] && files+=("$f")
        done
        [[ ${#files[@]} -gt 0 ]] || die "no .log segment in $dir"
        local list
        list=$(IFS=,; echo "${files[*]}")
        local cls
        cls=$(find_class org.apache.kafka.tools.DumpLogSegments kafka.tools.DumpLogSegments)
        run_tool "$cls" --files "$list" "$@"
}

cmd_resolve() {
        [[ $# -eq 0 ]] || die "usage: $prog resolve"
        use_version "$requested_version"
        check_java
        resolve
        echo "$libs"
}

usage() {
        sed -n '/^#   kafka.sh/s/^#   //p' "${BASH_SOURCE[0]}" >&2
        exit 2
}

main() {
        [[ $# -ge 1 ]] || usage
        local cmd=$1
        shift
        case "$cmd" in
        start) cmd_start "$@" ;;
        stop) cmd_stop "$@" ;;
        kill) cmd_kill "$@" ;;
        status) cmd_status "$@" ;;
        env) cmd_env "$@" ;;
        create-topic) resolve && cmd_create_topic "$@" ;;
        dump-log) resolve && cmd_dump_log "$@" ;;
        resolve) cmd_resolve "$@" ;;
        version) echo "$version" ;;
        -h | --help | help) usage ;;
        *) echo "$prog: unknown command '$cmd'" >&2 && usage ;;
        esac
}

main "$@"
