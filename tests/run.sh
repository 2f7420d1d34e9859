#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# The whole test suite, on a fresh Debian 12 machine or a used one: README's second
# command, and what CI runs (.ci/run). Steps:
#   1. set-up: Debian packages (packaging/setup.sh)
#   2. clang-format check of every C file
#   3. dev build: unit tests (cmocka) and fuzz corpus replays (ctest)
#   4. asan build (ASan + UBSan): the same tests
#   5. fuzz build (clang, libFuzzer): each target fuzzes RINGTAIL_FUZZ_SECONDS (15)
#   6. bench smoke runs (ringtail and kcat, every line verified; no timing is judged):
#      bench/run.py --smoke (2 MiB corpus, ~10 s), --mode live --smoke (2000 lines/s
#      for 5 s, ~17 s), --mode idle --smoke (200 files, 3 s idle, ~9 s); each starts
#      and stops its own broker
#   7. integration tests (pytest) of the asan binary against a real Apache Kafka
#      broker started by tests/kafka/kafka.sh (jars from Maven Central, cached)
# Extra arguments go to pytest (e.g. -k walkthrough).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

step() {
        printf '\n==> %s\n' "$*"
}

step "set-up"
bash packaging/setup.sh

step "format (clang-format --dry-run -Werror)"
dirs=()
for d in agent io offsets config tests bench packaging; do
        [ -d "$d" ] && dirs+=("$d")
done
find "${dirs[@]}" -name '*.[ch]' -print0 | xargs -0 clang-format --dry-run -Werror

for preset in dev asan; do
        step "$preset build and unit tests"
        cmake --preset "$preset" >/dev/null
        cmake --build --preset "$preset"
        ctest --preset "$preset"
done

step "fuzz targets (libFuzzer, ${RINGTAIL_FUZZ_SECONDS:-15} s each)"
cmake --preset fuzz -DRINGTAIL_FUZZ_SECONDS="${RINGTAIL_FUZZ_SECONDS:-15}" >/dev/null
cmake --build --preset fuzz
ctest --preset fuzz

step "Kafka broker jars (Maven Central, cached)"
time bash tests/kafka/kafka.sh resolve

step "bench smoke runs (the harness works end to end; no timing is judged)"
# (a relative RINGTAIL_BIN, and one unmeasured warm-up run per contender, as full runs do)
RINGTAIL_BIN=build/dev/ringtail /usr/bin/python3 bench/run.py --smoke --warmup-runs 1
RINGTAIL_BIN=$PWD/build/dev/ringtail /usr/bin/python3 bench/run.py --mode live --smoke
RINGTAIL_BIN=$PWD/build/dev/ringtail /usr/bin/python3 bench/run.py --mode idle --smoke

step "integration tests against a real Kafka broker"
RINGTAIL_BIN=$PWD/build/asan/ringtail /usr/bin/python3 -m pytest tests/integration -v -rA \
        --durations=10 "$@"
