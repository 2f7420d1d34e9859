#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Installs, from Debian's packages, everything ringtail needs to build, test and
# benchmark on a fresh Debian 12 machine. Idempotent: packages already present are
# not touched and `apt-get update` runs at most once per invocation, only when
# something is missing. Needs root (or sudo).
set -euo pipefail

pkgs=(
        # build
        build-essential cmake ninja-build pkg-config clang clang-format libclang-rt-14-dev
        # libraries (DESIGN.md "Real components")
        librdkafka-dev liburing-dev libzstd-dev libxxhash-dev libmicrohttpd-dev
        libjansson-dev libpcre2-dev libsystemd-dev libcmocka-dev
        # tests: independent Kafka client, python harness, broker (JDK + Maven)
        kcat python3 python3-pytest openjdk-17-jdk-headless maven
        # tests: rotation
        logrotate
        # bench: charts
        python3-matplotlib
        # tests: rescan on an inotify-silent filesystem (a FUSE mount, test_rescan.py)
        bindfs
)

missing=()
for p in "${pkgs[@]}"; do
        if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
                missing+=("$p")
        fi
done

if [ ${#missing[@]} -eq 0 ]; then
        exit 0
fi

sudo=""
if [ "$(id -u)" -ne 0 ]; then
        sudo="sudo"
fi
echo "setup: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -q
$sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
