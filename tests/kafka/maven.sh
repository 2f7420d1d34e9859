# SPDX-License-Identifier: Apache-2.0
#
# Sourced by tests/kafka/kafka.sh and bench/connect/connect.sh: where the jars are
# cached, which Java runs them, and their Maven resolution, which both scripts do
# alike (see tests/kafka/README.md). Not a command of its own.
#
# Sets cache_root, log4j_version, maven_repo and java from the environment
# (RINGTAIL_CACHE, KAFKA_LOG4J_VERSION, KAFKA_MAVEN_REPO, JAVA_HOME). The functions
# use what the sourcing script defines: die(), prog, version (the Kafka version) and
# the array tmp_paths, which its EXIT trap removes.

# The log4j2 version Kafka 4.3.1 itself depends on (through kafka-server).
# connect-runtime logs through slf4j-api 1.7.36 and brings no binding of its own.
readonly DEFAULT_LOG4J_VERSION=2.25.4

cache_root=${RINGTAIL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/ringtail}
log4j_version=${KAFKA_LOG4J_VERSION:-$DEFAULT_LOG4J_VERSION}
maven_repo=${KAFKA_MAVEN_REPO:-$cache_root/m2}
if [[ -n ${JAVA_HOME:-} ]]; then
        java=$JAVA_HOME/bin/java
else
        java=java
fi

# check_java_for WHO: dies unless $java runs and, for Kafka 4.x, is Java 17 or newer. WHO
# says what needs it ("Kafka 4.3.1 brokers need").
check_java_for() {
        local line major
        command -v "$java" >/dev/null 2>&1 || die "no java ($java); run packaging/setup.sh"
        line=$("$java" -version 2>&1 | head -n 1) || die "'$java -version' failed"
        if [[ $line =~ \"([0-9]+)(\.([0-9]+))? ]]; then
                major=${BASH_REMATCH[1]}
                if [[ $major -eq 1 ]]; then
                        major=${BASH_REMATCH[3]}
                fi
        else
                die "cannot tell the Java version from: $line"
        fi
        if [[ ${version%%.*} -ge 4 && $major -lt 17 ]]; then
                die "$1 Java 17 or newer; $java is $line"
        fi
}

# maven_resolve HOME WHAT IS_RESOLVED POM_TEMPLATE JAR...
# Resolves the runtime dependencies of POM_TEMPLATE (@KAFKA_VERSION@ and @LOG4J_VERSION@
# filled in) with Maven into HOME/libs, the cache entry of WHAT ("Kafka 4.3.1"), unless
# the command IS_RESOLVED says it is there; every JAR must be in libs then. Atomic:
# Maven writes into a temporary dir beside the cache entry which is renamed into place
# only when complete; concurrent resolvers of the same entry serialize on a lock file.
# A resolved entry never runs Maven again.
maven_resolve() {
        local home=$1 what=$2 is_resolved=$3 pom=$4
        shift 4
        "$is_resolved" && return 0
        command -v mvn >/dev/null 2>&1 || die "no mvn; run packaging/setup.sh"
        mkdir -p -- "$cache_root"
        local entry=${home##*/} lock_fd
        exec {lock_fd}>"$cache_root/.$entry.lock"
        flock -w 1800 "$lock_fd" || die "timed out waiting for another resolve of $what"
        if "$is_resolved"; then
                exec {lock_fd}>&-
                return 0
        fi
        # Leftovers of interrupted runs: nobody else holds the lock, so they are dead.
        rm -rf -- "$cache_root/.$entry.tmp."*
        local tmp jar
        tmp=$(mktemp -d "$cache_root/.$entry.tmp.XXXXXX")
        tmp_paths+=("$tmp")
        chmod 755 -- "$tmp"
        sed -e "s/@KAFKA_VERSION@/$version/g" -e "s/@LOG4J_VERSION@/$log4j_version/g" \
                "$pom" >"$tmp/pom.xml"
        echo "$prog: resolving $what from Maven Central into $home" >&2
        # Maven reports errors on stdout: keep our stdout for the result alone. Debian's
        # Maven 3.8 prints bare colour resets even with -B -q: drop them.
        if ! mvn -q -B -Dstyle.color=never -f "$tmp/pom.xml" -Dmaven.repo.local="$maven_repo" \
                dependency:copy-dependencies 2>&1 |
                sed -e 's/\x1b\[[0-9;]*m//g' -e '/^$/d' >&2; then
                die "Maven could not resolve $what (see above)"
        fi
        for jar in "$@"; do
                [[ -f $tmp/libs/$jar ]] || die "Maven left no $jar"
        done
        echo "$version" >"$tmp/VERSION"
        rm -rf -- "$home"   # an incomplete entry made by hand, if any
        mv -T -- "$tmp" "$home"
        exec {lock_fd}>&-
}
