#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Fetches the bench's syslog-daemon contenders from Debian's archive into private
# prefixes, without installing them: Debian 12's rsyslog and syslog-ng-core conflict
# (both provide system-log-daemon), and installing either would start a daemon that
# takes /dev/log. bench/peers_syslog.py calls this on first use.
#
#   fetch.sh [rsyslog] [syslog-ng]     default: both; prints "NAME PREFIX" per peer
#
# For each peer, `apt-get download` fetches its packages and the library packages
# they depend on that are not installed here (one level of Depends at a time, until
# nothing new is needed), and `dpkg-deb -x` unpacks them into
#   ${RINGTAIL_BENCH_DIR:-~/.cache/ringtail/bench}/peers/NAME/root/
# Nothing is configured, started or registered with dpkg. Then every binary and
# module the bench loads is checked with ldd against that prefix plus the system's
# libraries; a library that is still missing fails the fetch, naming it.
#
# Files per peer: debs/ (the .deb files), root/ (the unpacked tree),
# root/.ld-library-path (the prefix's library directories relative to root/, one a
# line, for LD_LIBRARY_PATH), root/.packages ("package version" lines), root/.fetched (stamp,
# written last). A peer whose stamp exists and whose ldd check passes is not fetched
# again (delete peers/NAME to refetch). If a download fails for lack of package lists,
# `apt-get update` is run once (as root) and the download retried. Concurrent
# invocations serialize on peers/.lock.
set -euo pipefail

prog=fetch.sh
bench_dir=${RINGTAIL_BENCH_DIR:-$HOME/.cache/ringtail/bench}
peers_dir=$bench_dir/peers

die() {
        echo "$prog: $*" >&2
        exit 1
}

# Packages of a peer, and the files (globs, relative to the prefix) the bench runs.
peer_packages() {
        case $1 in
        rsyslog) echo "rsyslog rsyslog-kafka" ;;
        syslog-ng) echo "syslog-ng-core syslog-ng-mod-rdkafka" ;;
        *) die "unknown peer '$1' (known: rsyslog syslog-ng)" ;;
        esac
}

peer_files() {
        case $1 in
        rsyslog) echo "usr/sbin/rsyslogd usr/lib/*/rsyslog/imfile.so usr/lib/*/rsyslog/omkafka.so" ;;
        syslog-ng) echo "usr/sbin/syslog-ng usr/lib/syslog-ng/3.*/libaffile.so usr/lib/syslog-ng/3.*/libkafka.so" ;;
        esac
}

is_installed() {
        [[ $(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null) == installed ]]
}

updated=0
download() {    # download DIR PKG...
        local dir=$1
        shift
        local sandbox=()
        # _apt cannot enter a directory under root's home; say so rather than warn.
        [[ $(id -u) -eq 0 ]] && sandbox=(-o APT::Sandbox::User=root)
        if (cd "$dir" && apt-get -q "${sandbox[@]}" download "$@") >"$dir/.apt.log" 2>&1; then
                return 0
        fi
        if [[ $updated -eq 0 && $(id -u) -eq 0 ]]; then
                echo "$prog: apt-get download $* failed; running apt-get update once" >&2
                updated=1
                apt-get -q update >"$dir/.apt-update.log" 2>&1 ||
                        die "apt-get update failed: $(tail -n 3 "$dir/.apt-update.log")"
                if (cd "$dir" && apt-get -q "${sandbox[@]}" download "$@") >"$dir/.apt.log" 2>&1; then
                        return 0
                fi
        fi
        die "apt-get download $* failed: $(grep -E '^(E|W):' "$dir/.apt.log" | head -n 3)"
}

# First alternative of every Depends entry of the given .debs, name only.
deb_depends() {
        local deb
        for deb in "$@"; do
                dpkg-deb -f "$deb" Depends | tr ',' '\n' | sed -E 's/\|.*//; s/\(.*//; s/:.*//; s/[[:space:]]//g'
        done | sed '/^$/d' | sort -u
}

# Directories of the prefix holding shared libraries (not the modules' directories),
# relative to it, one a line.
lib_dirs() {
        (cd "$1" && find . \( -type f -o -type l \) -name 'lib*.so.*' -printf '%h\n') |
                sed 's|^\./||' | sort -u
}

# ldd check of the peer's binaries and modules; prints what is missing.
missing_libs() {
        local name=$1 root=$2 f pattern
        local llp
        llp=$(sed "s|^|$root/|" "$root/.ld-library-path" | paste -sd:)
        for pattern in $(peer_files "$name"); do
                # shellcheck disable=SC2086 # the pattern is a glob on purpose
                for f in "$root"/$pattern; do
                        if [[ ! -e $f ]]; then
                                echo "$pattern (not in the packages)"
                                continue
                        fi
                        LD_LIBRARY_PATH=$llp ldd "$f" 2>&1 | awk '/not found/ {print $1}'
                done
        done | sort -u
}

fetch_peer() {
        local name=$1
        local dir=$peers_dir/$name
        local root=$dir/root
        if [[ -f $root/.fetched ]] && [[ -z $(missing_libs "$name" "$root") ]]; then
                echo "$name $root"
                return 0
        fi
        echo "$prog: fetching $name into $dir" >&2
        rm -rf -- "$dir/debs" "$dir/root.new"
        mkdir -p -- "$dir/debs" "$dir/root.new"
        local want have
        read -r -a want <<<"$(peer_packages "$name")"
        local -A seen=()
        local p
        for p in "${want[@]}"; do
                seen[$p]=1
        done
        while [[ ${#want[@]} -gt 0 ]]; do
                download "$dir/debs" "${want[@]}"
                local debs=()
                for p in "${want[@]}"; do
                        debs+=("$dir/debs/${p}"_*.deb)
                done
                want=()
                for p in $(deb_depends "${debs[@]}"); do
                        [[ -n ${seen[$p]:-} ]] && continue
                        seen[$p]=1
                        # Only libraries: the rest (init scripts' helpers) is not run.
                        [[ $p == lib* ]] || continue
                        is_installed "$p" && continue
                        want+=("$p")
                done
        done
        : >"$dir/root.new/.packages"
        for p in "$dir"/debs/*.deb; do
                dpkg-deb -x "$p" "$dir/root.new"
                dpkg-deb -f "$p" Package Version | paste -sd' ' | sed 's/Package: //; s/Version: //' \
                        >>"$dir/root.new/.packages"
        done
        lib_dirs "$dir/root.new" >"$dir/root.new/.ld-library-path"
        rm -rf -- "$root"
        mv -- "$dir/root.new" "$root"
        have=$(missing_libs "$name" "$root")
        [[ -z $have ]] || die "$name: still missing after the fetch: $(echo "$have" | paste -sd' ')"
        date -u +%FT%TZ >"$root/.fetched"
        echo "$name $root"
}

command -v apt-get >/dev/null && command -v dpkg-deb >/dev/null ||
        die "needs apt-get and dpkg-deb (Debian)"
peers=("$@")
[[ ${#peers[@]} -gt 0 ]] || peers=(rsyslog syslog-ng)
for p in "${peers[@]}"; do
        peer_packages "$p" >/dev/null
done
mkdir -p -- "$peers_dir"
exec 9>"$peers_dir/.lock"
flock 9
for p in "${peers[@]}"; do
        fetch_peer "$p"
done
