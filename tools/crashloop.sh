#!/usr/bin/env bash
#  tools/crashloop.sh: the long crash loop. Runs test_crash_loop of
#  tests/it/test_server_recovery.c for ROUNDS rounds (default 20): each round streams
#  concurrent inserts, upserts, deletes and flushes into a real `quiver serve`, kills
#  it with kill -9 at a random moment, restarts it and checks every acknowledged row,
#  upsert and delete. ctest runs the same test with 5 rounds.
#
#  Usage: tools/crashloop.sh [ROUNDS] [BUILD_DIR]
#  Environment: QV_IT_SEED replays a failed run (the seed is printed at the start).
set -euo pipefail

rounds=${1:-20}
case $rounds in -h|--help) sed -n '2,/^set -euo/{/^#/s/^# \{0,2\}//p}' "$0"; exit 0 ;; esac
cd "$(dirname "${BASH_SOURCE[0]}")/.."
build=${2:-build}
[ -x "$build/test_server_recovery" ] || {
    echo "crashloop.sh: build first: cmake -S . -B $build && cmake --build $build -j2" >&2
    exit 2
}
QV_BIN_DIR=$PWD/$build QV_IT_CRASH_ROUNDS=$rounds QV_IT_ONLY=test_crash_loop \
    exec "$build/test_server_recovery"
