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
#   KAFKA_LOG4J_VERSION    log4j2 version put on the class path (default below)
#   CONNECT_HEAP_OPTS      worker heap (default "-Xms256m -Xmx1g", as the test broker)
#   CONNECT_OPTS           extra JVM options for the worker
#   JAVA_HOME              Java to use (default: java on PATH); Kafka 4.x needs 17+
set -euo pipefail

# The log4j2 version Kafka 4.3.1 itself depends on (as in tests/kafka/kafka.sh).
# connect-runtime logs through slf4j-api 1.7.36 and brings no binding of its own.
readonly DEFAULT_LOG4J_VERSION=2.25.4
readonly MAIN_CLASS=org.apache.kafka.connect.cli.ConnectStandalone

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
prog=connect.sh

cache_root=${RINGTAIL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/ringtail}
log4j_version=${KAFKA_LOG4J_VERSION:-$DEFAULT_LOG4J_VERSION}
maven_repo=${KAFKA_MAVEN_REPO:-$cache_root/m2}
if [[ -n ${JAVA_HOME:-} ]]; then
        java=$JAVA_HOME/bin/java
else
        java=java
fi

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
        local line major
        command -v "$java" >/dev/null 2>&1 || die "no java ($java); run packaging/setup.sh"
        line=$("$java" -version 2>&1 | head -n 1) || die "'$java -version' failed"
        if [[ $line =~ \"([0-9]+)(\.([0-9]+))? ]]; then
                major=${BASH_REMATCH[1]}
                if [[ $major == 1 ]]; then
                        major=${BASH_REMATCH[3]}
                fi
        else
                die "cannot tell the Java version from: $line"
        fi
        if [[ ${version%%.*} -ge 4 && $major -lt 17 ]]; then
                die "Kafka Connect $version needs Java 17 or newer; $java is $line"
        fi
}

# ---------------------------------------------------------------------------- resolve

is_resolved() {
        [[ -f $libs/connect-runtime-$version.jar && -f $libs/connect-file-$version.jar &&
                -f $connect_home/VERSION ]]
}

# Resolves connect-runtime, connect-file, connect-json and log4j2 with their runtime
# dependencies into $libs. Atomic, as kafka.sh's resolve: Maven writes into a temporary
# dir beside the cache entry which is renamed into place only when complete; concurrent
# resolvers of the same version serialize on a lock file. A resolved version never
# runs Maven again.
resolve() {
        is_resolved && return 0
        command -v mvn >/dev/null 2>&1 || die "no mvn; run packaging/setup.sh"
        mkdir -p -- "$cache_root"
        local lock_fd
        exec {lock_fd}>"$cache_root/.connect-$version.lock"
        flock -w 1800 "$lock_fd" || die "timed out waiting for another resolve of Connect $version"
        if is_resolved; then
                exec {lock_fd}>&-
                return 0
        fi
        # Leftovers of interrupted runs: nobody else holds the lock, so they are dead.
        rm -rf -- "$cache_root/.connect-$version.tmp."*
        local tmp
        tmp=$(mktemp -d "$cache_root/.connect-$version.tmp.XXXXXX")
        tmp_paths+=("$tmp")
        chmod 755 -- "$tmp"
        sed -e "s/@KAFKA_VERSION@/$version/g" -e "s/@LOG4J_VERSION@/$log4j_version/g" \
                "$here/pom.xml.in" >"$tmp/pom.xml"
        echo "$prog: resolving Kafka Connect $version from Maven Central into $connect_home" >&2
        # Maven reports errors on stdout: keep our stdout for the result alone. Debian's
        # Maven 3.8 prints bare colour resets even with -B -q: drop them.
        if ! mvn -q -B -Dstyle.color=never -f "$tmp/pom.xml" -Dmaven.repo.local="$maven_repo" \
                dependency:copy-dependencies 2>&1 |
                sed -e 's/\x1b\[[0-9;]*m//g' -e '/^$/d' >&2; then
                die "Maven could not resolve Kafka Connect $version (see above)"
        fi
        [[ -f $tmp/libs/connect-runtime-$version.jar ]] ||
                die "Maven left no connect-runtime-$version.jar"
        [[ -f $tmp/libs/connect-file-$version.jar ]] ||
                die "Maven left no connect-file-$version.jar"
        echo "$version" >"$tmp/VERSION"
        rm -rf -- "$connect_home"   # an incomplete entry made by hand, if any
        mv -T -- "$tmp" "$connect_home"
        exec {lock_fd}>&-
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
