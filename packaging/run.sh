#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# README's first command: sets up and builds ringtail, then runs the main job, a
# standalone worker with a FileStreamSource tailing FILE into topic connect-test, and
# shows what reaches Kafka (read back with kcat).
#
#   packaging/run.sh [-b BROKERS] [FILE]
#
# Without -b, Kafka is embedded: librdkafka's mock cluster in the ringtail process.
# Without FILE, a demo log is written to (one line a second) under $RINGTAIL_DEMO_DIR
# (default /tmp/ringtail-demo). Ctrl-C stops everything; ringtail drains, writes its
# checkpoint and exits. RINGTAIL_DEMO_SECONDS=N stops by itself after N seconds.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

brokers=embedded
while getopts "b:h" opt; do
        case $opt in
        b) brokers=$OPTARG ;;
        h)
                sed -n '3,13p' "$0" | sed 's/^# \{0,1\}//'
                exit 0
                ;;
        *) exit 2 ;;
        esac
done
shift $((OPTIND - 1))

bash packaging/setup.sh
cmake --preset release >/dev/null
cmake --build --preset release >/dev/null
bin=$PWD/build/release/ringtail

dir=${RINGTAIL_DEMO_DIR:-/tmp/ringtail-demo}
mkdir -p "$dir"
file=${1:-$dir/app.log}
file=$(realpath -m -- "$file")

sed -e "s|^bootstrap.servers=.*|bootstrap.servers=$brokers|" \
        -e "s|^offset.storage.file.filename=.*|offset.storage.file.filename=$dir/connect.offsets|" \
        -e "s|^offset.flush.interval.ms=.*|offset.flush.interval.ms=1000|" \
        packaging/examples/connect-standalone.properties >"$dir/connect-standalone.properties"
sed -e "s|^file=.*|file=$file|" \
        packaging/examples/connect-file-source.properties >"$dir/connect-file-source.properties"

pids=()
cleanup() {
        for p in "${pids[@]}"; do
                kill "$p" 2>/dev/null || true
        done
}
trap cleanup EXIT

if [ $# -eq 0 ]; then
        (
                n=0
                while :; do
                        n=$((n + 1))
                        echo "$(date -u +%FT%TZ) demo line $n" >>"$file"
                        sleep 1
                done
        ) &
        pids+=($!)
        echo "run.sh: appending a line a second to $file" >&2
fi

"$bin" standalone "$dir/connect-standalone.properties" "$dir/connect-file-source.properties" \
        2> >(tee "$dir/ringtail.log" >&2) &
rt=$!
trap 'kill -TERM $rt 2>/dev/null || true' INT TERM

if [ "$brokers" = embedded ]; then
        for _ in $(seq 100); do
                bs=$(sed -n 's/^embedded bootstrap.servers=//p' "$dir/ringtail.log" 2>/dev/null || true)
                [ -n "$bs" ] && break
                sleep 0.1
        done
else
        bs=$brokers
fi
if [ -n "${bs:-}" ]; then
        echo "run.sh: reading topic connect-test back from $bs with kcat" >&2
        kcat -C -b "$bs" -t connect-test -o beginning -u -q -f 'kafka> %s\n' 2>/dev/null &
        pids+=($!)
fi
if [ -n "${RINGTAIL_DEMO_SECONDS:-}" ]; then
        (sleep "$RINGTAIL_DEMO_SECONDS" && kill -TERM $rt 2>/dev/null) &
        pids+=($!)
fi

status=0
wait $rt || status=$?
# wait returns early when a trapped signal arrives: wait for ringtail itself.
while kill -0 $rt 2>/dev/null; do
        wait $rt || status=$?
done
exit $status
