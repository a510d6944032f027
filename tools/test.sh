#!/usr/bin/env bash
#  tools/test.sh: the whole Quiver test suite, from a fresh Debian 12 machine.
#
#  Installs missing packages (apt-get; s3rver and the Node examples' packages from
#  npm, cached), builds Release
#  in build/ and ASan+UBSan in build-asan/, starts nats-server and s3rver on
#  free loopback ports for each suite, runs ctest in both builds, prints a
#  summary, stops the servers (also on failure or Ctrl-C) and exits non-zero if
#  any step failed.
#
#  Usage: tools/test.sh [--quick] [--no-install]
#      --quick        Release build only (no ASan+UBSan build, no fuzzing)
#      --no-install   never call apt-get or npm (fail if the npm packages are not cached)
#  Environment:
#      QV_JOBS        parallel build jobs and ctest jobs (default 2)
#      QV_S3RVER_DIR  where s3rver is installed (default ~/.cache/quiver/...)
#      QV_NODE_EXAMPLES_DIR  where the examples' npm packages are (same default)
#      QV_FUZZ_SECONDS  how long tools/fuzz.sh runs each harness (default 30)
#
#  Tests find the servers through QV_NATS_URL (nats://127.0.0.1:PORT) and
#  QV_S3_ENDPOINT (127.0.0.1:PORT, credentials S3RVER/S3RVER, plain http).
#  Server logs are kept in BUILD/test-servers/ after the run.
set -euo pipefail

usage () { sed -n '2,/^set -euo/{/^#/s/^# \{0,2\}//p}' "$0"; }

quick=0
install=1
for arg in "$@"; do
    case $arg in
        --quick)      quick=1 ;;
        --no-install) install=0 ;;
        -h|--help)    usage; exit 0 ;;
        *)            echo "test.sh: unknown option $arg" >&2; usage >&2; exit 2 ;;
    esac
done

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
. tools/deps.sh

JOBS=${QV_JOBS:-2}
S3RVER_VERSION=3.7.1
CACHE=${XDG_CACHE_HOME:-${HOME:-$ROOT/build}/.cache}
S3RVER_DIR=${QV_S3RVER_DIR:-$CACHE/quiver/s3rver-$S3RVER_VERSION}
S3RVER=$S3RVER_DIR/node_modules/.bin/s3rver

# ---------------------------------------------------------------- bookkeeping
summary=()
failed=0
T0=$SECONDS

section () { printf '\n==> %s\n' "$*"; }

#  record STATUS NAME SECONDS [DETAIL]: one line of the final summary.
record () {
    local status=$1 name=$2 secs=$3 detail=${4:-}
    [ "$status" = ok ] || failed=1
    summary+=("$(printf '  %-16s %-5s %5ss  %s' "$name" "$status" "$secs" "$detail")")
}

# ---------------------------------------------------------------- servers
WORK=$(mktemp -d "${TMPDIR:-/tmp}/quiver-test.XXXXXX")
server_pids=()
server_names=()
used_ports=" "

stop_servers () {
    local i pid deadline
    for i in "${!server_pids[@]}"; do
        kill -TERM "${server_pids[$i]}" 2>/dev/null || true
    done
    for i in "${!server_pids[@]}"; do
        pid=${server_pids[$i]}
        deadline=$((SECONDS + 10))
        while kill -0 "$pid" 2>/dev/null && [ $SECONDS -lt $deadline ]; do
            sleep 0.1
        done
        if kill -0 "$pid" 2>/dev/null; then
            echo "test.sh: ${server_names[$i]} (pid $pid) ignored SIGTERM; killing" >&2
            kill -KILL "$pid" 2>/dev/null || true
        fi
        wait "$pid" 2>/dev/null || true
    done
    server_pids=()
    server_names=()
}

#  run_killable LOG CMD...: run CMD (output to the terminal and LOG) in its own
#  session and wait for it.  Unlike a foreground command, `wait` returns at
#  once on SIGINT/SIGTERM, and cleanup can then end the whole test tree.
job_pid=
run_killable () {
    local log=$1 rc=0; shift
    setsid bash -c 'set -o pipefail; log=$1; shift; "$@" </dev/null 2>&1 | tee "$log"' \
        run_killable "$log" "$@" &
    job_pid=$!
    wait "$job_pid" || rc=$?
    job_pid=
    return $rc
}

stop_job () {
    [ -n "$job_pid" ] || return 0
    local deadline=$((SECONDS + 10))
    kill -TERM -- "-$job_pid" 2>/dev/null || true
    while kill -0 -- "-$job_pid" 2>/dev/null && [ $SECONDS -lt $deadline ]; do
        sleep 0.1
    done
    kill -KILL -- "-$job_pid" 2>/dev/null || true
    wait "$job_pid" 2>/dev/null || true
    job_pid=
}

cleanup () {
    local rc=$?
    set +e
    trap - EXIT INT TERM
    stop_job
    stop_servers
    rm -rf "$WORK"
    case $rc in 130|143) echo "RESULT: INTERRUPTED (servers stopped)" >&2 ;; esac
    exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

#  A loopback port nobody listens on: the kernel picks one (python3 when
#  present), else random probing.  Never hands out the same port twice.
#  Sets FREE_PORT (not printed: a $(...) subshell would lose used_ports).
free_port () {
    local port i
    for i in $(seq 1 50); do
        if [ -x /usr/bin/python3 ]; then
            port=$(/usr/bin/python3 -c 'import socket
s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
        else
            port=$((20000 + RANDOM % 30000))
            (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && continue
        fi
        case $used_ports in *" $port "*) continue ;; esac
        used_ports+="$port "
        FREE_PORT=$port
        return 0
    done
    echo "test.sh: found no free port" >&2
    return 1
}

#  Readiness probes: the server answers its own protocol, not just accepts.
nats_answers () {
    ( exec 3<>"/dev/tcp/127.0.0.1/$1" && read -r -t 2 line <&3 \
        && [[ $line == INFO* ]] ) 2>/dev/null
}
s3rver_answers () {
    ( exec 3<>"/dev/tcp/127.0.0.1/$1" \
        && printf 'GET / HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' >&3 \
        && read -r -t 2 line <&3 && [[ $line == HTTP/1.* ]] ) 2>/dev/null
}

#  start_server NAME PROBE LOG CMD... (CMD contains the literal word @PORT):
#  start on a free port, wait until PROBE succeeds (deadline 60 s), retry on
#  another port if the server dies (e.g. someone took the port meanwhile).
#  Sets STARTED_PORT.
start_server () {
    local name=$1 probe=$2 log=$3; shift 3
    local attempt port pid deadline arg
    local -a cmd
    for attempt in 1 2 3; do
        free_port || return 1
        port=$FREE_PORT
        cmd=()
        for arg in "$@"; do cmd+=("${arg//@PORT/$port}"); done
        echo "+ ${cmd[*]}" >>"$log"
        "${cmd[@]}" </dev/null >>"$log" 2>&1 &
        pid=$!
        deadline=$((SECONDS + 60))
        while :; do
            if ! kill -0 "$pid" 2>/dev/null; then
                wait "$pid" 2>/dev/null || true
                echo "test.sh: $name exited at start (attempt $attempt, port $port)" >&2
                break
            fi
            if "$probe" "$port"; then
                server_pids+=("$pid")
                server_names+=("$name")
                STARTED_PORT=$port
                echo "$name: pid $pid, 127.0.0.1:$port ($((SECONDS - deadline + 60))s to answer)"
                return 0
            fi
            if [ $SECONDS -ge $deadline ]; then
                echo "test.sh: $name did not answer on port $port within 60 s" >&2
                kill -KILL "$pid" 2>/dev/null || true
                wait "$pid" 2>/dev/null || true
                break
            fi
            sleep 0.1
        done
    done
    echo "test.sh: could not start $name; log: $log" >&2
    tail -n 20 "$log" >&2 || true
    return 1
}

#  start_servers LOGDIR: fresh nats-server + s3rver with data under $WORK;
#  exports what the tests read.
start_servers () {
    local logdir=$1 data
    rm -rf "$logdir"
    mkdir -p "$logdir"
    data=$(mktemp -d "$WORK/data.XXXXXX")
    mkdir -p "$data/nats" "$data/s3"
    start_server nats-server nats_answers "$logdir/nats-server.log" \
        nats-server -a 127.0.0.1 -p @PORT -js -sd "$data/nats" || return 1
    export QV_NATS_URL="nats://127.0.0.1:$STARTED_PORT"
    start_server s3rver s3rver_answers "$logdir/s3rver.log" \
        "$S3RVER" -d "$data/s3" -a 127.0.0.1 -p @PORT -s \
        --allow-mismatched-signatures || return 1
    export QV_S3_ENDPOINT="127.0.0.1:$STARTED_PORT"
    export QV_S3_ACCESS_KEY=S3RVER QV_S3_SECRET_KEY=S3RVER QV_S3RVER="$S3RVER"
    echo "QV_NATS_URL=$QV_NATS_URL QV_S3_ENDPOINT=$QV_S3_ENDPOINT"
}

# ---------------------------------------------------------------- dependencies
section "dependencies"
t=$SECONDS
if [ $install -eq 1 ]; then
    if qv_install_deps test; then
        record ok "apt packages" $((SECONDS - t))
    else
        record FAIL "apt packages" $((SECONDS - t)) "apt-get failed"
    fi
else
    mapfile -t missing < <(qv_missing_packages "${QV_APT_BUILD[@]}" "${QV_APT_TEST[@]}")
    if [ ${#missing[@]} -gt 0 ]; then
        echo "test.sh: --no-install, but missing: ${missing[*]}" >&2
        record FAIL "apt packages" 0 "missing: ${missing[*]}"
    else
        record ok "apt packages" 0 "all present (--no-install)"
    fi
fi

#  npm packages: each set installed once per machine into a cache outside the repo;
#  a set that is present is reused.  Installed into a temporary folder and renamed,
#  so an interrupted install never looks like a good one.
#  npm_cached LABEL DIR HAVE_FN PKG...: HAVE_FN says whether DIR holds them all.
npm_cached () {
    local label=$1 dir=$2 have=$3 t=$SECONDS tmp
    shift 3
    if $have; then
        record ok "$label" 0 "cached in $dir"
    elif [ $install -eq 0 ]; then
        record FAIL "$label" 0 "not in $dir (--no-install)"
    else
        echo "npm: installing $* into $dir"
        rm -rf "$dir"
        mkdir -p "$(dirname "$dir")"
        tmp=$(mktemp -d "$dir.tmp.XXXXXX")
        if npm install --no-save --no-audit --no-fund --no-update-notifier \
                --loglevel=error --prefix "$tmp" "$@" </dev/null \
            && mv -T "$tmp" "$dir" && $have; then
            record ok "$label" $((SECONDS - t)) "installed into $dir"
        else
            rm -rf "$tmp"
            record FAIL "$label" $((SECONDS - t)) "npm install failed"
        fi
    fi
}
#  s3rver, the S3 test server.
s3rver_have () {
    [ -x "$S3RVER" ] && grep -q "\"version\": \"$S3RVER_VERSION\"" \
        "$S3RVER_DIR/node_modules/s3rver/package.json" 2>/dev/null
}
npm_cached "s3rver" "$S3RVER_DIR" s3rver_have "s3rver@$S3RVER_VERSION"
#  The npm packages of the stream-processing examples (tools/examples/package.json,
#  exact versions); the tests find them through QV_NODE_MODULES.
EXAMPLES_DIR=${QV_NODE_EXAMPLES_DIR:-$CACHE/quiver/node-examples-1}
export QV_NODE_MODULES=$EXAMPLES_DIR/node_modules
mapfile -t example_pkgs < <(/usr/bin/python3 -c 'import json, sys
deps = json.load(open(sys.argv[1]))["dependencies"]
print("\n".join("%s@%s" % kv for kv in sorted(deps.items())))' tools/examples/package.json)
examples_have () {
    local pkg
    [ ${#example_pkgs[@]} -gt 0 ] || return 1
    for pkg in "${example_pkgs[@]}"; do
        grep -q "\"version\": \"${pkg##*@}\"" \
            "$QV_NODE_MODULES/${pkg%@*}/package.json" 2>/dev/null || return 1
    done
}
npm_cached "npm examples" "$EXAMPLES_DIR" examples_have "${example_pkgs[@]}"
echo "cmake: $(cmake --version 2>/dev/null | head -n 1)," \
     "nats-server: $(nats-server --version 2>/dev/null)," \
     "node: $(node --version 2>/dev/null)"

# ---------------------------------------------------------------- suites
#  run_suite LABEL BUILDDIR ENV-ASSIGNMENTS... -- CMAKE-ARGS...
run_suite () {
    local label=$1 dir=$2; shift 2
    local -a envs=() cargs=()
    while [ $# -gt 0 ] && [ "$1" != -- ]; do envs+=("$1"); shift; done
    [ $# -gt 0 ] && shift
    cargs=("$@")
    local t rc line

    section "build $label ($dir)"
    t=$SECONDS
    if cmake -S . -B "$dir" "${cargs[@]}" && cmake --build "$dir" -j "$JOBS"; then
        record ok "build $label" $((SECONDS - t))
    else
        record FAIL "build $label" $((SECONDS - t)) "see the compiler output above"
        return 0
    fi

    section "test $label ($dir)"
    t=$SECONDS
    if ! start_servers "$dir/test-servers"; then
        stop_servers
        record FAIL "test $label" $((SECONDS - t)) "servers did not start; logs in $dir/test-servers/"
        return 0
    fi
    rc=0
    run_killable "$dir/ctest.log" env "${envs[@]}" ctest --test-dir "$dir" \
        --output-on-failure --no-tests=error -j "$JOBS" || rc=$?
    stop_servers
    line=$(grep -E 'tests passed|No tests were found|Errors while running' \
           "$dir/ctest.log" | head -n 1 || true)
    if [ $rc -eq 0 ]; then
        record ok "test $label" $((SECONDS - t)) "$line"
    else
        record FAIL "test $label" $((SECONDS - t)) "${line:-ctest exit $rc}; log $dir/ctest.log"
    fi
}

if [ $failed -eq 0 ]; then
    run_suite Release build -- -DCMAKE_BUILD_TYPE=Release
    if [ $quick -eq 0 ]; then
        run_suite ASan+UBSan build-asan \
            ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
            LSAN_OPTIONS="suppressions=$ROOT/tests/lsan.supp:print_suppressions=0" \
            UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
            -- -DQV_SANITIZE=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo
    fi
    if [ $quick -eq 0 ]; then
        section "fuzz (tools/fuzz.sh, build-fuzz)"
        t=$SECONDS
        fuzz_seconds=${QV_FUZZ_SECONDS:-30}
        mkdir -p build-fuzz
        if run_killable "$ROOT/build-fuzz/fuzz.log" tools/fuzz.sh "$fuzz_seconds"; then
            record ok "fuzz" $((SECONDS - t)) "each harness ${fuzz_seconds}s"
        else
            record FAIL "fuzz" $((SECONDS - t)) "see build-fuzz/fuzz_*.log and build-fuzz/artifacts/"
        fi
    fi
else
    echo "test.sh: dependencies missing; not building" >&2
fi

# ---------------------------------------------------------------- summary
section "summary"
printf '%s\n' "${summary[@]}"
[ $quick -eq 1 ] && echo "  (--quick: ASan+UBSan build and fuzzing skipped)"
if [ $failed -eq 0 ]; then
    echo "RESULT: PASS ($((SECONDS - T0))s)"
else
    echo "RESULT: FAIL ($((SECONDS - T0))s)"
fi
exit $failed
