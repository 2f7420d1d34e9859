#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Runs Apache Kafka Connect's own standalone worker (org.apache.kafka.connect.cli.
# ConnectStandalone) for the bench's `connect` contender (bench/peer_connect.py), with
# the FileStream connectors on the class path. The jars are resolved from Maven Central
# with Maven on first use, for the Kafka version tests/kafka/kafka.sh uses, and cached
# outside the repo; after that no network and no Maven are needed. See bench/README.md.
#
#   connect.sh resolve                 only resolve/cache the jars, print the libs dir
#   connect.sh classpath               print the class path (resolving first if needed)
#   connect.sh run WORKER CONNECTOR    exec ConnectStandalone WORKER CONNECTOR (foreground)
#   connect.sh version                 print the Kafka version used
#
# Environment:
#   CONNECT_KAFKA_VERSION  Kafka release (default: `tests/kafka/kafka.sh version`)
#   RINGTAIL_CACHE         cache root (default ${XDG_CACHE_HOME:-$HOME/.cache}/ringtail)
#   KAFKA_MAVEN_REPO       Maven local repository used for resolving (default
#                          $RINGTAIL_CACHE/m2, the one kafka.sh uses)
#   KAFKA_LOG4J_VERSION    log4j2 version put on the class path (default: tests/kafka/maven.sh's)
#   CONNECT_HEAP_OPTS      worker heap (default "-Xms256m -Xmx1g", as the test broker)
#   CONNECT_OPTS           extra JVM options for the worker
#   JAVA_HOME              Java to use (default: java on PATH); Kafka 4.x needs 17+
set -euo pipefail

readonly MAIN_CLASS=org.apache.kafka.connect.cli.ConnectStandalone

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
prog=connect.sh

# cache_root, log4j_version (default: the one kafka.sh uses), maven_repo, java;
# check_java_for and maven_resolve: the same as tests/kafka/kafka.sh's
# shellcheck source=../../tests/kafka/maven.sh
source "$root/tests/kafka/maven.sh"

tmp_paths=()      # removed on exit, whatever happens

die() {
        echo "$prog: $*" >&2
        exit 1
}

on_exit() {
        local rc=$?
        trap - EXIT INT TERM
        if [[ ${#tmp_paths[@]} -gt 0 ]]; then
                rm -rf -- "${tmp_paths[@]}"
        fi
        exit "$rc"
}
trap on_exit EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---------------------------------------------------------------------------- version

kafka_version() {
        if [[ -n ${CONNECT_KAFKA_VERSION:-} ]]; then
                echo "$CONNECT_KAFKA_VERSION"
        else
                bash "$root/tests/kafka/kafka.sh" version
        fi
}

version=$(kafka_version) || die "could not get the Kafka version from tests/kafka/kafka.sh"
[[ $version =~ ^[0-9]+\.[0-9]+\.[0-9]+([.-][A-Za-z0-9.-]+)?$ ]] ||
        die "bad Kafka version '$version'"
connect_home=$cache_root/connect-$version
libs=$connect_home/libs

# ---------------------------------------------------------------------------- java

check_java() {
        check_java_for "Kafka Connect $version needs"
}

# ---------------------------------------------------------------------------- resolve

is_resolved() {
        [[ -f $libs/connect-runtime-$version.jar && -f $libs/connect-file-$version.jar &&
                -f $connect_home/VERSION ]]
}

# Resolves connect-runtime, connect-file, connect-json and log4j2 with their runtime
# dependencies into $libs, atomically, as kafka.sh does (tests/kafka/maven.sh). A
# resolved version never runs Maven again.
resolve() {
        maven_resolve "$connect_home" "Kafka Connect $version" is_resolved "$here/pom.xml.in" \
                "connect-runtime-$version.jar" "connect-file-$version.jar"
}

# ---------------------------------------------------------------------------- commands

cmd_resolve() {
        [[ $# -eq 0 ]] || die "usage: $prog resolve"
        check_java
        resolve
        echo "$libs"
}

cmd_classpath() {
        [[ $# -eq 0 ]] || die "usage: $prog classpath"
        resolve
        local jars=("$libs"/*.jar)
        (IFS=:; echo "${jars[*]}")
}

# Execs the worker in the foreground, so that the caller's PID is the JVM's: signals
# reach it directly, and /proc/PID is the worker's. Its shutdown hook stops the
# connector, commits the offsets and closes the producer on SIGTERM or SIGINT.
cmd_run() {
        [[ $# -eq 2 ]] || die "usage: $prog run WORKER CONNECTOR"
        local worker=$1 connector=$2
        [[ -f $worker ]] || die "no worker properties file $worker"
        [[ -f $connector ]] || die "no connector properties file $connector"
        check_java
        resolve
        local heap
        heap=${CONNECT_HEAP_OPTS:--Xms256m -Xmx1g}
        # JVM options as kafka-run-class.sh's defaults (KAFKA_JVM_PERFORMANCE_OPTS) and
        # kafka.sh's broker; logging as bin/connect-standalone.sh, but to stderr only.
        trap - EXIT INT TERM
        # shellcheck disable=SC2086 # CONNECT_HEAP_OPTS and CONNECT_OPTS are word lists
        exec "$java" $heap ${CONNECT_OPTS:-} \
                -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35 \
                -XX:+ExplicitGCInvokesConcurrent -Djava.awt.headless=true \
                -Dlog4j2.configurationFile="$here/log4j2-connect.properties" \
                -cp "$libs/*" "$MAIN_CLASS" "$worker" "$connector"
}

usage() {
        sed -n '/^#   connect.sh/s/^#   //p' "${BASH_SOURCE[0]}" >&2
        exit 2
}

main() {
        [[ $# -ge 1 ]] || usage
        local cmd=$1
        shift
        case "$cmd" in
        resolve) cmd_resolve "$@" ;;
        classpath) cmd_classpath "$@" ;;
        run) cmd_run "$@" ;;
        version) echo "$version" ;;
        -h | --help | help) usage ;;
        *) echo "$prog: unknown command '$cmd'" >&2 && usage ;;
        esac
}

main "$@"
