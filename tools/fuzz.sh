#!/usr/bin/env bash
#  tools/fuzz.sh: builds the libFuzzer harnesses (tests/fuzz/fuzz_*.c) with clang in
#  build-fuzz/ (-DQV_FUZZ=ON: ASan + UBSan + coverage) and runs each for SECONDS.
#
#  Usage: tools/fuzz.sh [--only NAME] [--update-corpus] SECONDS
#         tools/fuzz.sh [--only NAME] --make-seeds
#      --only NAME       run one harness, tests/fuzz/fuzz_NAME.c (every one by default)
#      --update-corpus   merge what the run found into tests/fuzz/corpus/NAME (the
#                        corpora kept in the tree; commit them when they grow coverage)
#      --make-seeds      rewrite the seeds (seed-*) of the harnesses that make their own
#                        with the real serializers (WAL, segment and index objects; see
#                        tests/fuzz/qv_fuzz_seeds.h): run it after changing a format
#                        (seeds of older formats, v1-* and v2-*, are kept: no serializer
#                        writes them any more, and the readers of them stay fuzzed)
#  Each harness fuzz_NAME starts from tests/fuzz/corpus/NAME (and tests/fuzz/NAME.dict
#  or fuzz_NAME.dict when present); new inputs go to build-fuzz/corpus/NAME, so a run
#  leaves the tree clean. A crash, leak, sanitizer report or timeout stops that harness:
#  the input is kept in build-fuzz/artifacts/ and the script exits non-zero after the
#  others ran. Needs clang and libclang-rt-14-dev (tools/deps.sh installs them).
set -euo pipefail

usage () { sed -n '2,/^set -euo/{/^#/s/^# \{0,2\}//p}' "$0"; }

only=
update=0
make_seeds=0
seconds=
while [ $# -gt 0 ]; do
    case $1 in
        --only)          only=${2:?--only needs a name}; shift ;;
        --update-corpus) update=1 ;;
        --make-seeds)    make_seeds=1; seconds=0 ;;
        -h|--help)       usage; exit 0 ;;
        -*)              echo "fuzz.sh: unknown option $1" >&2; usage >&2; exit 2 ;;
        *)               seconds=$1 ;;
    esac
    shift
done
case $seconds in
    ''|*[!0-9]*) echo "fuzz.sh: give the seconds each harness runs" >&2; usage >&2; exit 2 ;;
esac

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
BUILD=$ROOT/build-fuzz
JOBS=${QV_JOBS:-2}

names=()
for src in tests/fuzz/fuzz_*.c; do
    name=$(basename "$src" .c)
    name=${name#fuzz_}
    [ -z "$only" ] || [ "$only" = "$name" ] && names+=("$name")
done
[ ${#names[@]} -gt 0 ] || { echo "fuzz.sh: no harness named '$only'" >&2; exit 2; }

targets=()
for name in "${names[@]}"; do targets+=("fuzz_$name"); done
CC=clang CXX=clang++ cmake -S . -B "$BUILD" -DQV_FUZZ=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$BUILD" -j "$JOBS" --target "${targets[@]}"

if [ $make_seeds -eq 1 ]; then
    for name in "${names[@]}"; do
        seeds=$ROOT/tests/fuzz/corpus/$name
        fresh=$BUILD/seeds/$name
        rm -rf "$fresh"
        mkdir -p "$fresh" "$seeds"
        #  A harness without a seed writer just runs no input and writes nothing
        QV_FUZZ_SEEDS=$fresh "$BUILD/fuzz_$name" -runs=0 >"$BUILD/fuzz_$name.seeds.log" 2>&1 \
            || { echo "fuzz.sh: fuzz_$name failed to write seeds; see $BUILD/fuzz_$name.seeds.log" >&2; exit 1; }
        if [ -n "$(ls "$fresh")" ]; then
            rm -f "$seeds"/seed-*
            mv "$fresh"/seed-* "$seeds"/
            echo "fuzz_$name: $(ls "$seeds"/seed-* | wc -l) seeds written to tests/fuzz/corpus/$name"
        fi
    done
    exit 0
fi

mkdir -p "$BUILD/artifacts"
failed=()
for name in "${names[@]}"; do
    seeds=$ROOT/tests/fuzz/corpus/$name
    work=$BUILD/corpus/$name
    mkdir -p "$seeds" "$work"
    args=(-max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1
          -artifact_prefix="$BUILD/artifacts/$name-")
    for dict in "tests/fuzz/$name.dict" "tests/fuzz/fuzz_$name.dict"; do
        [ -f "$dict" ] && args+=(-dict="$ROOT/$dict")
    done
    echo "==> fuzz_$name for ${seconds}s (seeds: $(ls "$seeds" | wc -l) in tests/fuzz/corpus/$name)"
    if ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
        "$BUILD/fuzz_$name" "${args[@]}" "$work" "$seeds" >"$BUILD/fuzz_$name.log" 2>&1; then
        grep -E '^stat::(number_of_executed_units|peak_rss_mb|new_units_added)' "$BUILD/fuzz_$name.log" \
            | tr '\n' ' '; echo
    else
        echo "fuzz.sh: fuzz_$name FAILED; log $BUILD/fuzz_$name.log, input in $BUILD/artifacts/" >&2
        grep -E 'ERROR|SUMMARY|runtime error' "$BUILD/fuzz_$name.log" | head -n 5 >&2 || true
        failed+=("$name")
        continue
    fi
    if [ $update -eq 1 ]; then
        "$BUILD/fuzz_$name" -merge=1 "$seeds" "$work" >>"$BUILD/fuzz_$name.log" 2>&1
        echo "    corpus tests/fuzz/corpus/$name: $(ls "$seeds" | wc -l) inputs"
    fi
done
if [ ${#failed[@]} -gt 0 ]; then
    echo "fuzz.sh: FAILED: ${failed[*]}" >&2
    exit 1
fi
echo "fuzz.sh: ${#names[@]} harnesses ran ${seconds}s each without a finding"
