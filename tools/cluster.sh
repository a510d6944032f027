#!/usr/bin/env bash
#  tools/cluster.sh: a split Quiver cluster on one machine, one `quiver` process per
#  role in the background: a writer and N searcher processes on one data directory,
#  talking over NATS (the committed feed, the write lease). Tests and users script
#  against it.
#
#  Usage: tools/cluster.sh COMMAND DIR [OPTIONS]   (tools/cluster.sh COMMAND --help)
#      up DIR --nats URL --api tcp://127.0.0.1:PORT [--searchers N] [--proxy] [--meta]
#             [--ingest-stream NAME] [--quiver PATH] [--timeout S] [-- EXTRA quiver options]
#                          start the writer (with --proxy: the writer core and a
#                          proxy process in front of it; with --meta: the meta and
#                          flusher roles in a process of their own) and N searchers;
#                          returns once all answer and the writer sends reads to
#                          every searcher
#      start DIR ROLE [--timeout S]
#                          start one role again (writer, core, meta, proxy, searcher-1, ...)
#                          with its saved command line; returns once it answers
#      down DIR [--timeout S]
#                          SIGTERM to every role (searchers first), wait, remove pid files
#      status DIR          each role: pid, running or not, endpoint, answers ping or not
#
#  DIR holds: data/ (the --data directory of every role), pids/ROLE.pid, logs/ROLE.log,
#  cmd/ROLE (the role's exact command line, one argument per line: `start` runs it
#  again) and endpoints/ROLE. Only processes whose /proc/PID/cmdline is exactly the
#  saved command line are ever signalled.
set -euo pipefail

#  The writer's --roles: every role but searcher, so its proxy sends searches, queries
#  and gets to the searcher processes (over ZeroMQ TCP, those caught up, as listed in
#  NATS KV bucket quiver_members). Empty would run every role in the writer (the
#  embedded server, answering reads itself).
WRITER_ROLES="proxy,segment-manager,meta,flusher"
#  With --proxy the writer is two processes: the writer core (these roles), which only
#  proxy processes reach, and a proxy process (--roles proxy) bound to --api, which
#  finds the core in NATS. docker-compose.yml's split profile runs this topology
#  (tests/compose/test_compose.py checks it).
CORE_ROLES="segment-manager,meta,flusher"
#  With --meta the meta and flusher roles run as a process of their own (`meta`), which
#  follows the committed feed and writes segments, indexes and manifests; the writer
#  (or the core) keeps the segment manager.
META_ROLES="meta,flusher"
META_WRITER_ROLES="proxy,segment-manager"
META_CORE_ROLES="segment-manager"

PROG=cluster.sh
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

die () { echo "$PROG: $*" >&2; exit 1; }
usage_error () { echo "$PROG: $*" >&2; echo "(see $PROG ${CMD:-} --help)" >&2; exit 2; }
main_usage () { sed -n '2,/^set -euo/{/^#/s/^# \{0,2\}//p}' "${BASH_SOURCE[0]}"; }

up_usage () { cat <<'EOF'
Usage: tools/cluster.sh up DIR --nats URL --api tcp://HOST:PORT [OPTIONS] [-- EXTRA]

Starts a cluster in DIR: the writer (`quiver serve --roles proxy,segment-manager,meta,
flusher`), bound to --api, then N searcher processes (`quiver serve --roles searcher`),
each bound to a free loopback port the script picks and records in DIR/endpoints/.
Every role uses --data DIR/data and --nats URL. Clients use --api: the writer takes
writes and sends reads to the searchers (with --searchers 0 reads fail UNAVAILABLE);
each searcher also answers reads on its own endpoint. Returns (exit 0) once the
writer answers ping, every searcher answers ping (a searcher answers UNAVAILABLE
until it has caught up with the writer's committed feed) and the writer sends it
reads (the writer's `stats` lists the searcher, as the incarnation now running, routed
under searcher_processes). If a role exits or the timeout passes, prints the end of
its log, stops the roles this command started and exits 1.
Refuses a DIR whose roles still run (`down` first). An existing DIR/data is kept: the
cluster serves it again.

  --nats URL          NATS server with JetStream (nats-server -js), e.g. nats://127.0.0.1:4222
  --api ENDPOINT      the writer's ZeroMQ endpoint, e.g. tcp://127.0.0.1:19530
  --searchers N       searcher processes (default 2; 0 runs the writer alone)
  --proxy             the writer as two processes: `core` (`quiver serve --roles
                      segment-manager,meta,flusher`, on a free loopback port) and
                      `proxy` (`quiver serve --roles proxy`, which finds the core
                      in NATS while it holds the write lease) bound to --api,
                      which clients use as the writer's endpoint
  --meta              the meta and flusher roles as a process of their own: `meta`
                      (`quiver serve --roles meta,flusher`, on a free loopback
                      port, holding the meta lease in NATS), started after the
                      writer (or core), which then runs without them
  --ingest-stream NAME  consume JetStream stream NAME (`quiver serve --ingest-stream`):
                      given to the proxy with --proxy, else to the writer (never to
                      the core or the searchers, which refuse it)
  --quiver PATH       the quiver binary (default: build/quiver beside this script,
                      else quiver on PATH); qvctl (for ping) is taken beside it, else from PATH
  --timeout S         seconds each role may take to answer ping (default 60)
  -- EXTRA           further `quiver serve` options for every role (e.g. --s3-*)
  -h, --help          this help
EOF
}
start_usage () { cat <<'EOF'
Usage: tools/cluster.sh start DIR ROLE [--timeout S]

Starts ROLE (writer, core, meta, proxy, searcher-1, searcher-2, ...) of the cluster in DIR
again, after it was stopped or killed, with the command line `up` saved in
DIR/cmd/ROLE; its log is appended to DIR/logs/ROLE.log. Returns once it answers ping
(a searcher: once it has caught up; the core, which answers only proxies: once the
proxy's `stats`, which the core answers, do) and, with a running writer, once the
writer sends it reads (the writer or the proxy: once it sends reads to the running
searchers); exits 1 with the end of its log if it exits or the timeout passes.
Refuses a ROLE that is still running.

  --timeout S         seconds it may take to answer ping (default 60)
  -h, --help          this help
EOF
}
down_usage () { cat <<'EOF'
Usage: tools/cluster.sh down DIR [--timeout S]

Stops every role of the cluster in DIR with SIGTERM, the searchers first, then the
writer (the proxy, then the core), then the meta process, and waits for each to exit; one still running after the timeout gets SIGKILL
(and the script says so). Removes the pid files; keeps data, logs and command lines.
A pid file whose process is gone, or is not the saved command line, is only removed.

  --timeout S         seconds to wait for each group after SIGTERM (default 30)
  -h, --help          this help
EOF
}
status_usage () { cat <<'EOF'
Usage: tools/cluster.sh status DIR

One line per role of the cluster in DIR: role, pid, running or stopped, endpoint, and
whether it answers ping (`serving`, or the error it answers). Exits 0 if every role
runs and answers, 1 otherwise.

  -h, --help          this help
EOF
}

# ---------------------------------------------------------------- helpers

#  need_value OPT ARGC: an option's value is present.
need_value () { [ "$2" -ge 2 ] || usage_error "$1 needs a value"; }

#  check_seconds OPT VALUE: a positive whole number of seconds.
check_seconds () {
    [[ $2 =~ ^[0-9]+$ ]] && [ "$2" -ge 1 ] && [ "$2" -le 86400 ] \
        || usage_error "$1 $2: expected whole seconds, 1 to 86400"
}

#  set_dir DIR [MAKE]: DIR as an absolute path (made if MAKE), or an error.
set_dir () {
    [ -n "$1" ] || usage_error "no DIR given"
    if [ "${2:-}" = make ]; then
        mkdir -p "$1" || die "cannot create $1"
    elif [ ! -d "$1/cmd" ]; then
        die "$1 holds no cluster (no $1/cmd/; start one with: $PROG up $1 ...)"
    fi
    DIR=$(cd "$1" && pwd)
}

#  lock_dir: one cluster.sh at a time per DIR (the fd is closed in the roles).
lock_dir () {
    exec 9>"$DIR/cluster.lock"
    flock -n 9 || die "another $PROG is working on $DIR (lock $DIR/cluster.lock)"
}

#  roles: the roles of DIR (DIR/cmd/*), the writer (or the core and the proxy) first,
#  then searchers by number.
roles () {
    local f
    [ -e "$DIR/cmd/writer" ] && echo writer
    [ -e "$DIR/cmd/core" ] && echo core
    [ -e "$DIR/cmd/meta" ] && echo meta
    [ -e "$DIR/cmd/proxy" ] && echo proxy
    for f in "$DIR"/cmd/searcher-*; do
        [ -e "$f" ] && basename "$f"
    done | sort -t- -k2,2n
}

#  ours PID ROLE: PID runs exactly the command line saved for ROLE (not a zombie, not
#  a recycled pid).
ours () {
    local pid=$1 role=$2 got want
    [[ $pid =~ ^[0-9]+$ ]] || return 1
    got=$(tr '\0' '\n' 2>/dev/null <"/proc/$pid/cmdline") || return 1
    want=$(cat "$DIR/cmd/$role" 2>/dev/null) || return 1
    [ -n "$got" ] && [ "$got" = "$want" ]
}

#  role_pid ROLE: prints the live pid of ROLE, or fails.
role_pid () {
    local pid
    pid=$(cat "$DIR/pids/$1.pid" 2>/dev/null) || return 1
    ours "$pid" "$1" || return 1
    echo "$pid"
}

#  child_alive PID: a process this script started has not exited (zombies excluded;
#  its cmdline may still be the fork's before exec).
child_alive () {
    local state
    state=$(awk '{ print $3 }' "/proc/$1/stat" 2>/dev/null) || return 1
    [ -n "$state" ] && [ "$state" != Z ] && [ "$state" != X ]
}

#  find_qvctl QUIVER: sets QVCTL, the qvctl beside QUIVER or on PATH.
find_qvctl () {
    if [ -x "$(dirname "$1")/qvctl" ]; then
        QVCTL=$(dirname "$1")/qvctl
    elif command -v qvctl >/dev/null 2>&1; then
        QVCTL=$(command -v qvctl)
    else
        die "no qvctl beside $1 or on PATH (it pings the roles)"
    fi
}

#  ping_ok ENDPOINT: 0 if it answers ping ok; PING_ERR holds the last failure.
PING_ERR=
ping_ok () {
    local out
    if out=$("$QVCTL" --server "$1" --timeout 1 ping 2>&1); then
        PING_ERR=
        return 0
    fi
    PING_ERR=$(printf '%s' "$out" | tail -n 1)
    return 1
}

#  free_port: prints a free loopback port not in USED_PORTS (the kernel picks it).
USED_PORTS=" "
free_port () {
    local port i py
    py=$(command -v /usr/bin/python3 || command -v python3 || true)
    for i in $(seq 1 50); do
        if [ -n "$py" ]; then
            port=$("$py" -c 'import socket
s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
        else
            port=$((20000 + RANDOM % 30000))
            (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && continue
        fi
        case $USED_PORTS in *" $port "*) continue ;; esac
        echo "$port"
        return 0
    done
    die "found no free loopback port"
}

#  launch ROLE: starts ROLE's saved command line in the background (SIGHUP ignored,
#  so it outlives the terminal), log appended; sets LAUNCHED_PID and writes the pid file.
launch () {
    local role=$1 log="$DIR/logs/$1.log"
    local -a cmd
    mapfile -t cmd <"$DIR/cmd/$role"
    { printf '%s %s: starting %s:' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$PROG" "$role"
      printf ' %q' "${cmd[@]}"; echo; } >>"$log"
    ( trap '' HUP; exec "${cmd[@]}" </dev/null >>"$log" 2>&1 9>&- ) &
    LAUNCHED_PID=$!
    echo "$LAUNCHED_PID" >"$DIR/pids/$role.pid.tmp"
    mv -f "$DIR/pids/$role.pid.tmp" "$DIR/pids/$role.pid"
}

#  log_tail ROLE: what ROLE logged since its last start, on stderr, indented: all of
#  it when short, else its first 5 lines (where a refused option is named) and its
#  last 25.
log_tail () {
    local log="$DIR/logs/$1.log" from total
    from=$(grep -n "^[^ ]* $PROG: starting " "$log" 2>/dev/null | tail -n 1 | cut -d: -f1)
    total=$(wc -l <"$log" 2>/dev/null || echo 0)
    from=$(( ${from:-0} + 1 ))
    echo "--- $log since its start:" >&2
    if [ $((total - from + 1)) -le 35 ]; then
        tail -n "+$from" "$log" | sed 's/^/    /' >&2 || true
    else
        sed -n "${from},$((from + 4))p" "$log" | sed 's/^/    /' >&2 || true
        echo "    [...]" >&2
        tail -n 25 "$log" | sed 's/^/    /' >&2 || true
    fi
}

#  await ROLE PID DEADLINE [WATCH_PID [WATCH_ROLE]]: waits until ROLE answers ping. 0;
#  1 when the process exited (EXITED=1), WATCH_PID (the writer or the core, while
#  searchers catch up with it) exited (EXITED=1, FAILED=WATCH_ROLE, default writer) or
#  DEADLINE (in $SECONDS) passed (EXITED=0). FAILED names the role that failed.
await () {
    local role=$1 pid=$2 deadline=$3 watch=${4:-} watch_role=${5:-writer} ep
    ep=$(cat "$DIR/endpoints/$role")
    FAILED=$role
    WAITED=$role
    while :; do
        if ! child_alive "$pid"; then
            wait "$pid" 2>/dev/null && EXIT_STATUS=0 || EXIT_STATUS=$?
            EXITED=1
            return 1
        fi
        if [ -n "$watch" ] && ! child_alive "$watch"; then
            wait "$watch" 2>/dev/null && EXIT_STATUS=0 || EXIT_STATUS=$?
            EXITED=1
            FAILED=$watch_role
            return 1
        fi
        ping_ok "$ep" && return 0
        if [ $SECONDS -ge "$deadline" ]; then
            EXITED=0
            return 1
        fi
        sleep 0.2
    done
}

#  split_writer: the saved writer command runs without the searcher role (its reads
#  go to the searcher processes), or the writer is a core and a proxy.
split_writer () {
    [ -e "$DIR/cmd/proxy" ] || grep -qx -- '--roles' "$DIR/cmd/writer" 2>/dev/null
}

#  front: the role clients use as the writer (bound to --api): proxy or writer.
front () { if [ -e "$DIR/cmd/proxy" ]; then echo proxy; else echo writer; fi; }

#  await_core PID DEADLINE: waits until the core (PID) serves the proxy: the proxy's
#  `stats`, which the core answers, come back. 0, or 1 as await.
await_core () {
    local pid=$1 deadline=$2 pep
    pep=$(cat "$DIR/endpoints/proxy")
    FAILED=core
    WAITED=core
    PING_ERR="the proxy's stats (answered by the core) do not come back yet"
    while :; do
        if ! child_alive "$pid"; then
            wait "$pid" 2>/dev/null && EXIT_STATUS=0 || EXIT_STATUS=$?
            EXITED=1
            return 1
        fi
        [ -z "$(stat_of "$pep" rows)" ] || return 0
        if [ $SECONDS -ge "$deadline" ]; then
            EXITED=0
            return 1
        fi
        sleep 0.2
    done
}

#  stat_of ENDPOINT KEY: the value of KEY in ENDPOINT's `qvctl stats` (as qvctl prints it:
#  JSON), or nothing.
stat_of () {
    "$QVCTL" --server "$1" --timeout 1 stats 2>/dev/null | sed -n "s/^$2: //p"
}

#  await_routed ROLE PID DEADLINE: with a split writer, waits until the writer sends
#  reads to the searcher ROLE (already answering ping): the writer's `stats` lists,
#  under searcher_processes, ROLE's endpoint with the incarnation ROLE's own `stats`
#  reports (so an entry left from before a restart does not count) and routed true.
#  No-op with an embedded writer. 0 or 1 as await (EXITED, FAILED, EXIT_STATUS).
await_routed () {
    local role=$1 pid=$2 deadline=$3 ep wep instance=
    split_writer || return 0
    ep=$(cat "$DIR/endpoints/$role")
    wep=$(cat "$DIR/endpoints/$(front)")
    FAILED=$role
    WAITED=$role
    PING_ERR="answers ping, but the writer's stats (searcher_processes) do not show it routed yet"
    while :; do
        if ! child_alive "$pid"; then
            wait "$pid" 2>/dev/null && EXIT_STATUS=0 || EXIT_STATUS=$?
            EXITED=1
            return 1
        fi
        [ -n "$instance" ] || instance=$(stat_of "$ep" instance | tr -d '"')
        if [ -n "$instance" ] && stat_of "$wep" searcher_processes \
                | grep -qF "{\"endpoint\": \"$ep\", \"instance\": \"$instance\", \"routed\": true"; then
            return 0
        fi
        if [ $SECONDS -ge "$deadline" ]; then
            EXITED=0
            return 1
        fi
        sleep 0.1
    done
}

#  report_failure ROLE TIMEOUT: says why ROLE did not come up, with its log.
report_failure () {
    if [ "$EXITED" = 1 ] && [ "$1" != "$WAITED" ]; then
        echo "$PROG: $1 exited with status $EXIT_STATUS while $WAITED was catching up" >&2
    elif [ "$EXITED" = 1 ]; then
        echo "$PROG: $1 exited with status $EXIT_STATUS before it answered ping" >&2
    else
        echo "$PROG: $1 (pid $(cat "$DIR/pids/$1.pid")) did not answer ping on" \
             "$(cat "$DIR/endpoints/$1") within $2 s (last answer: ${PING_ERR:-none})" >&2
    fi
    log_tail "$1"
}

#  stop_roles TIMEOUT ROLE...: SIGTERM to the live ones, wait up to TIMEOUT seconds,
#  then SIGKILL, saying so; removes their pid files.
stop_roles () {
    local timeout=$1 role pid deadline i
    shift
    local -a live_roles=() live_pids=()
    for role in "$@"; do
        if pid=$(role_pid "$role"); then
            kill -TERM "$pid" 2>/dev/null || true
            live_roles+=("$role")
            live_pids+=("$pid")
            echo "$role: SIGTERM to pid $pid"
        elif [ -e "$DIR/pids/$role.pid" ]; then
            echo "$role: not running (pid file $DIR/pids/$role.pid removed)"
            rm -f "$DIR/pids/$role.pid"
        fi
    done
    deadline=$((SECONDS + timeout))
    for i in "${!live_roles[@]}"; do
        role=${live_roles[$i]}
        pid=${live_pids[$i]}
        while ours "$pid" "$role" && [ $SECONDS -lt $deadline ]; do
            sleep 0.1
        done
        if ours "$pid" "$role"; then
            echo "$PROG: $role (pid $pid) still runs $timeout s after SIGTERM; sending SIGKILL" >&2
            kill -KILL "$pid" 2>/dev/null || true
            while ours "$pid" "$role"; do sleep 0.1; done
        fi
        wait "$pid" 2>/dev/null || true
        rm -f "$DIR/pids/$role.pid"
        echo "$role: stopped"
    done
}

# ---------------------------------------------------------------- commands

cmd_up () {
    local dir='' nats='' api='' searchers=2 quiver='' timeout=60 proxy=0 meta=0
    local -a extra=() ingest=()
    while [ $# -gt 0 ]; do
        case $1 in
            -h|--help)    up_usage; exit 0 ;;
            --nats)       need_value "$1" $#; nats=$2; shift 2 ;;
            --api)        need_value "$1" $#; api=$2; shift 2 ;;
            --searchers)  need_value "$1" $#; searchers=$2; shift 2 ;;
            --proxy)      proxy=1; shift ;;
            --meta)       meta=1; shift ;;
            --ingest-stream) need_value "$1" $#; ingest=(--ingest-stream "$2"); shift 2 ;;
            --quiver)     need_value "$1" $#; quiver=$2; shift 2 ;;
            --timeout)    need_value "$1" $#; timeout=$2; shift 2 ;;
            --)           shift; extra=("$@"); break ;;
            -*)           usage_error "up: unknown option $1" ;;
            *)            [ -z "$dir" ] || usage_error "up: one DIR only (got $dir and $1)"
                          dir=$1; shift ;;
        esac
    done
    [ -n "$dir" ] || usage_error "up: no DIR given"
    [ -n "$nats" ] || usage_error "up: --nats URL is required (a nats-server with -js)"
    [[ $nats =~ ^(nats|tls)://. ]] || usage_error "up: --nats $nats: expected nats://HOST:PORT"
    [ -n "$api" ] || usage_error "up: --api tcp://HOST:PORT is required (the writer's endpoint)"
    [[ $api =~ ^tcp://[^:/]+:[0-9]+$ ]] || usage_error "up: --api $api: expected tcp://HOST:PORT"
    [[ $searchers =~ ^[0-9]+$ ]] && [ "$searchers" -le 64 ] \
        || usage_error "up: --searchers $searchers: expected 0 to 64"
    check_seconds --timeout "$timeout"
    local a
    for a in "${extra[@]}"; do
        case $a in *$'\n'*) usage_error "up: a quiver option contains a newline" ;; esac
    done
    if [ -z "$quiver" ]; then
        if [ -x "$HERE/../build/quiver" ]; then
            quiver=$HERE/../build/quiver
        else
            quiver=$(command -v quiver) \
                || die "no quiver binary: none in $HERE/../build/ or on PATH (use --quiver PATH)"
        fi
    fi
    [ -x "$quiver" ] && [ -f "$quiver" ] || die "--quiver $quiver: not an executable file"
    quiver=$(cd "$(dirname "$quiver")" && pwd)/$(basename "$quiver")
    find_qvctl "$quiver"

    set_dir "$dir" make
    lock_dir
    if [ -d "$DIR/cmd" ]; then
        local role pid
        for role in $(roles); do
            if pid=$(role_pid "$role"); then
                die "$DIR: $role still runs (pid $pid); stop the cluster first: $PROG down $DIR"
            fi
        done
    fi
    rm -rf "$DIR/cmd" "$DIR/endpoints" "$DIR/pids"
    mkdir -p "$DIR/data" "$DIR/logs" "$DIR/pids" "$DIR/cmd" "$DIR/endpoints"

    local port=${api##*:}
    USED_PORTS+="$port "
    #  write_loopback NAME ROLES: the command line and endpoint of role NAME (--roles
    #  ROLES) on a free loopback port, which it sets in ep
    local ep
    write_loopback () {
        local name=$1 roles=$2 port
        port=$(free_port)
        USED_PORTS+="$port "
        ep=tcp://127.0.0.1:$port
        {
            printf '%s\n' "$quiver" serve --roles "$roles" --nats "$nats" --data "$DIR/data" \
                --bind "$ep"
            [ ${#extra[@]} -eq 0 ] || printf '%s\n' "${extra[@]}"
        } >"$DIR/cmd/$name"
        echo "$ep" >"$DIR/endpoints/$name"
    }
    local core_ep='' meta_ep='' writer_roles=$WRITER_ROLES core_roles=$CORE_ROLES
    if [ $meta = 1 ]; then
        writer_roles=$META_WRITER_ROLES
        core_roles=$META_CORE_ROLES
        write_loopback meta "$META_ROLES"
        meta_ep=$ep
    fi
    if [ $proxy = 1 ]; then
        #  the core, then the proxy in front of it
        write_loopback core "$core_roles"
        core_ep=$ep
        {
            printf '%s\n' "$quiver" serve --roles proxy --nats "$nats" \
                --data "$DIR/data" --bind "$api"
            [ ${#ingest[@]} -eq 0 ] || printf '%s\n' "${ingest[@]}"
            [ ${#extra[@]} -eq 0 ] || printf '%s\n' "${extra[@]}"
        } >"$DIR/cmd/proxy"
        echo "$api" >"$DIR/endpoints/proxy"
    else
        {
            printf '%s\n' "$quiver" serve
            [ -z "$writer_roles" ] || printf '%s\n' --roles "$writer_roles"
            printf '%s\n' --nats "$nats" --data "$DIR/data" --bind "$api"
            [ ${#ingest[@]} -eq 0 ] || printf '%s\n' "${ingest[@]}"
            [ ${#extra[@]} -eq 0 ] || printf '%s\n' "${extra[@]}"
        } >"$DIR/cmd/writer"
        echo "$api" >"$DIR/endpoints/writer"
    fi

    local -a started=()
    #  fail ROLE: report, stop what this command started, exit 1.
    fail () {
        report_failure "$1" "$timeout"
        if [ ${#started[@]} -gt 0 ]; then
            echo "$PROG: stopping the roles this command started (logs kept in $DIR/logs)" >&2
            stop_roles 30 "${started[@]}" >&2
        fi
        exit 1
    }

    local writer_pid META_PID=''
    #  launch_meta: the meta process, after the writer or the core
    launch_meta () {
        launch meta
        started+=(meta)
        META_PID=$LAUNCHED_PID
        echo "meta: pid $LAUNCHED_PID, $meta_ep ($META_ROLES), log $DIR/logs/meta.log"
    }
    if [ $proxy = 1 ]; then
        launch core
        started=(core)
        writer_pid=$LAUNCHED_PID
        echo "core: pid $LAUNCHED_PID, $core_ep ($core_roles), log $DIR/logs/core.log"
        [ $meta = 0 ] || launch_meta
        launch proxy
        started+=(proxy)
        echo "proxy: pid $LAUNCHED_PID, $api (proxy, writes to the core), log $DIR/logs/proxy.log"
        #  The proxy answers once it holds the core's catalog
        await proxy "$LAUNCHED_PID" $((SECONDS + timeout)) "$writer_pid" core || fail "$FAILED"
    else
        launch writer
        started=(writer)
        echo "writer: pid $LAUNCHED_PID, $api (${writer_roles:-every role}), log $DIR/logs/writer.log"
        await writer "$LAUNCHED_PID" $((SECONDS + timeout)) || fail writer
        writer_pid=$LAUNCHED_PID
        [ $meta = 0 ] || launch_meta
    fi
    if [ $meta = 1 ]; then
        #  It answers ping once it holds the meta lease and has caught up
        await meta "$META_PID" $((SECONDS + timeout)) || fail "$FAILED"
        echo "meta: answers ping (holds the meta lease, caught up)"
    fi

    #  searchers: write each command line, start all, then wait for each; a searcher
    #  whose port was taken meanwhile ("cannot bind") is started on another port.
    local i name
    local -a spids=()
    write_searcher () { write_loopback "$1" searcher; }
    for i in $(seq 1 "$searchers"); do
        name=searcher-$i
        write_searcher "$name"
        launch "$name"
        started+=("$name")
        spids[i]=$LAUNCHED_PID
        echo "$name: pid $LAUNCHED_PID, $ep, log $DIR/logs/$name.log"
    done
    local deadline=$((SECONDS + timeout)) attempt
    for i in $(seq 1 "$searchers"); do
        name=searcher-$i
        for attempt in 1 2 3; do
            await "$name" "${spids[$i]}" "$deadline" "$writer_pid" \
                "$( [ $proxy = 1 ] && echo core || echo writer)" \
                && await_routed "$name" "${spids[$i]}" "$deadline" && break
            if [ "$FAILED" = "$name" ] && [ "$EXITED" = 1 ] && [ $attempt -lt 3 ] \
                && tail -n 5 "$DIR/logs/$name.log" | grep -q "cannot bind"; then
                write_searcher "$name"
                echo "$name: its port was taken; again on $ep"
                launch "$name"
                spids[i]=$LAUNCHED_PID
                deadline=$((SECONDS + timeout))
                continue
            fi
            fail "$FAILED"
        done
        echo "$name: answers ping (caught up)$(split_writer && echo ', the writer sends it reads')"
    done
    echo "cluster up in $DIR: $( [ $proxy = 1 ] && echo "proxy $api, core $core_ep" \
        || echo "writer $api")$( [ $meta = 1 ] && echo ", meta $meta_ep"), $searchers searcher(s); stop it with: $PROG down $DIR"
}

cmd_start () {
    local dir='' role='' timeout=60
    while [ $# -gt 0 ]; do
        case $1 in
            -h|--help)    start_usage; exit 0 ;;
            --timeout)    need_value "$1" $#; timeout=$2; shift 2 ;;
            -*)           usage_error "start: unknown option $1" ;;
            *)            if [ -z "$dir" ]; then dir=$1
                          elif [ -z "$role" ]; then role=$1
                          else usage_error "start: unexpected argument $1"; fi
                          shift ;;
        esac
    done
    [ -n "$dir" ] || usage_error "start: no DIR given"
    [ -n "$role" ] || usage_error "start: no ROLE given (writer, core, meta, proxy, searcher-1, ...)"
    check_seconds --timeout "$timeout"
    set_dir "$dir"
    lock_dir
    [[ $role =~ ^(writer|core|meta|proxy|searcher-[0-9]+)$ ]] && [ -e "$DIR/cmd/$role" ] \
        || die "$DIR has no role '$role' (roles: $(roles | tr '\n' ' '))"
    local pid first
    if pid=$(role_pid "$role"); then
        die "$role still runs (pid $pid); stop it first (kill $pid, or $PROG down $DIR)"
    fi
    first=$(head -n 1 "$DIR/cmd/$role")
    [ -x "$first" ] || die "$role: $first (its saved quiver binary) is gone"
    find_qvctl "$first"
    mkdir -p "$DIR/pids" "$DIR/logs"
    local deadline=$((SECONDS + timeout))
    launch "$role"
    echo "$role: pid $LAUNCHED_PID, $(cat "$DIR/endpoints/$role"), log $DIR/logs/$role.log"
    if [ "$role" = core ]; then
        #  The core answers proxies only: it serves once the proxy's stats come back
        if role_pid proxy >/dev/null && ! await_core "$LAUNCHED_PID" "$deadline"; then
            report_failure core "$timeout"
            exit 1
        fi
        echo "core: serves the proxy"
        return 0
    fi
    if ! await "$role" "$LAUNCHED_PID" "$deadline"; then
        report_failure "$role" "$timeout"
        exit 1
    fi
    local fr
    fr=$(front)
    if [ "$role" = meta ]; then
        echo "meta: answers ping (holds the meta lease, caught up)"
        return 0
    fi
    if [ "$role" != "$fr" ] && role_pid "$fr" >/dev/null \
        && ! await_routed "$role" "$LAUNCHED_PID" "$deadline"; then
        report_failure "$role" "$timeout"
        exit 1
    fi
    if [ "$role" = "$fr" ]; then
        #  a new writer learns the running searchers from their next announcement
        local s spid
        for s in $(roles | grep '^searcher-' || true); do
            spid=$(role_pid "$s") || continue
            if ! await_routed "$s" "$spid" "$deadline"; then
                report_failure "$s" "$timeout"
                exit 1
            fi
        done
    fi
    echo "$role: answers ping$([ "$role" != "$fr" ] && split_writer && echo ', the writer sends it reads')"
}

cmd_down () {
    local dir='' timeout=30
    while [ $# -gt 0 ]; do
        case $1 in
            -h|--help)    down_usage; exit 0 ;;
            --timeout)    need_value "$1" $#; timeout=$2; shift 2 ;;
            -*)           usage_error "down: unknown option $1" ;;
            *)            [ -z "$dir" ] || usage_error "down: one DIR only (got $dir and $1)"
                          dir=$1; shift ;;
        esac
    done
    [ -n "$dir" ] || usage_error "down: no DIR given"
    check_seconds --timeout "$timeout"
    set_dir "$dir"
    lock_dir
    local -a searchers
    mapfile -t searchers < <(roles | grep '^searcher-' || true)
    [ ${#searchers[@]} -eq 0 ] || stop_roles "$timeout" "${searchers[@]}"
    [ ! -e "$DIR/cmd/writer" ] || stop_roles "$timeout" writer
    [ ! -e "$DIR/cmd/proxy" ] || stop_roles "$timeout" proxy
    [ ! -e "$DIR/cmd/core" ] || stop_roles "$timeout" core
    [ ! -e "$DIR/cmd/meta" ] || stop_roles "$timeout" meta
    echo "cluster in $DIR is down"
}

cmd_status () {
    local dir=''
    while [ $# -gt 0 ]; do
        case $1 in
            -h|--help)    status_usage; exit 0 ;;
            -*)           usage_error "status: unknown option $1" ;;
            *)            [ -z "$dir" ] || usage_error "status: one DIR only (got $dir and $1)"
                          dir=$1; shift ;;
        esac
    done
    [ -n "$dir" ] || usage_error "status: no DIR given"
    set_dir "$dir"
    find_qvctl "$(head -n 1 "$DIR/cmd/$(front)" 2>/dev/null || echo quiver)"
    local role pid ep state answer all=0
    printf '%-12s %-8s %-8s %-26s %s\n' ROLE PID STATE ENDPOINT PING
    for role in $(roles); do
        ep=$(cat "$DIR/endpoints/$role" 2>/dev/null || echo '?')
        if pid=$(role_pid "$role"); then
            state=running
            if [ "$role" = core ]; then
                #  it answers proxies only: serving when the proxy's stats come back
                if [ -n "$(stat_of "$(cat "$DIR/endpoints/proxy")" rows)" ]; then
                    answer="serving (through the proxy)"
                else
                    answer="the proxy's stats do not come back"; all=1
                fi
            elif ping_ok "$ep"; then answer=serving; else answer=${PING_ERR:-no answer}; all=1; fi
        else
            pid=$(cat "$DIR/pids/$role.pid" 2>/dev/null || echo -)
            state=stopped
            answer=-
            all=1
        fi
        printf '%-12s %-8s %-8s %-26s %s\n' "$role" "$pid" "$state" "$ep" "$answer"
    done
    return $all
}

CMD=${1:-}
[ $# -eq 0 ] || shift
case $CMD in
    up)           cmd_up "$@" ;;
    start)        cmd_start "$@" ;;
    down)         cmd_down "$@" ;;
    status)       cmd_status "$@" ;;
    -h|--help)    main_usage ;;
    "")           main_usage >&2; exit 2 ;;
    *)            echo "$PROG: unknown command '$CMD'" >&2; main_usage >&2; exit 2 ;;
esac
