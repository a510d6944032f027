//  quiver: the Quiver server. `quiver serve` runs every component embedded.
#include "qv_rc.h"
#include "qv_bufpool.h"
#include "qv_bus.h"
#include "qv_client.h"
#include "qv_http.h"
#include "qv_server.h"
#include "qv_replica.h"
#include "qv_users.h"
#include "qv_wal.h"
#include "qv_zap.h"

#include <czmq.h>
#include <nats/nats.h>
#include <ctype.h>
#include <execinfo.h>
#include <getopt.h>
#include <malloc.h>
#include <poll.h>
#include <stdatomic.h>
#include <pthread.h>
#include <netinet/in.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

//  ---------------------------------------------------------------------------------
//  Every way `quiver serve` ends leaves a line in its log. SIGINT/SIGTERM are taken by
//  main with sigwait ("quiver stopping"); a crash is written by s_on_fatal; only
//  SIGKILL (and the OOM killer, which the kernel log names) goes unsaid.

static pthread_t s_main_thread;

//  Writes s to stderr (async-signal-safe).
static void
s_say (const char *s)
{
    if (write (2, s, strlen (s)) < 0)
        return;
}

//  The same, for the last words of a process about to _exit: never waits more than
//  200 ms for stderr (a pipe whose reader stalled must not keep a process alive that
//  is ending because something stalled). Async-signal-safe.
static void
s_say_last (const char *s)
{
    struct pollfd out = { 2, POLLOUT, 0 };
    if (poll (&out, 1, 200) == 1 && (out.revents & POLLOUT))
        s_say (s);
}

//  A crash (SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT): says so with the stack, then
//  dies by the same signal (SA_RESETHAND restored the default), so whoever waits for
//  the process still sees the signal and a core dump can still be taken.
static void
s_on_fatal (int sig)
{
    char num [4] = { (char) ('0' + sig / 10 % 10), (char) ('0' + sig % 10), 0 };
    const char *abbrev = sigabbrev_np (sig);
    s_say ("F quiver: fatal signal ");
    s_say (sig < 10 ? num + 1 : num);
    s_say (" (SIG");
    s_say (abbrev ? abbrev : "?");
    s_say ("); the process dies; stack of the thread that got it:\n");
    void *frames [64];
    backtrace_symbols_fd (frames, backtrace (frames, 64), 2);
    raise (sig);
}

//  SIGINT/SIGTERM are blocked in every thread quiver starts, but a library may start
//  threads before main (OpenBLAS does, at load time) with the signals open; the kernel
//  gives them a signal main cannot take yet (during recovery, before sigwait), and the
//  default action would end the process without a word. This handler, which runs only
//  in such a thread, passes the signal on to main, which stops in order.
static volatile sig_atomic_t s_stop_begun;
static volatile sig_atomic_t s_stop_forwarded;     //  a stop signal passed on to main

static void
s_forward_to_main (int sig)
{
    s_stop_forwarded = 1;
    if (s_stop_begun) {
        //  A second stop signal, which main will not take again (s_stop_watchdog)
        char line [160] = "E quiver: signal ";
        size_t n = strlen (line);
        if (sig >= 10)
            line [n++] = (char) ('0' + sig / 10 % 10);
        line [n++] = (char) ('0' + sig % 10);
        line [n] = 0;
        strcat (line, " while stopping: exiting now, without finishing the stop "
                      "(acknowledged writes are in the WAL)\n");
        s_say_last (line);
        _exit (1);
    }
    pthread_kill (s_main_thread, sig);
}

//  A stop must end. An actor stuck by a bug once held a stopping process forever; now,
//  --stop-timeout-s (default 60) after the stop signal, or at a second one, the
//  process exits (status 1) without finishing the stop, saying so. Nothing
//  acknowledged is lost: every acknowledged write is in the WAL, which the next start
//  replays. The second signal comes here (sigtimedwait), or, when a thread
//  with the signal open takes it, to s_forward_to_main, which exits the same way.
static int s_stop_limit_s = 60;
static sigset_t s_stop_signals;

static void *
s_stop_watchdog (void *arg)
{
    (void) arg;
    struct timespec limit = { s_stop_limit_s, 0 };
    int sig;
    while ((sig = sigtimedwait (&s_stop_signals, NULL, &limit)) < 0 && errno == EINTR)
        ;
    //  Not qv_error: a stuck logger (stderr blocked, its lock held) is one of the
    //  things this must get past
    char line [512];
    struct timespec ts;
    clock_gettime (CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r (&ts.tv_sec, &tm);
    int n = snprintf (line, sizeof line, "E %04d-%02d-%02dT%02d:%02d:%02d.%03ldZ quiver: ",
                      tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                      tm.tm_sec, ts.tv_nsec / 1000000);
    if (sig > 0)
        snprintf (line + n, sizeof line - n, "signal %d while stopping: exiting now, "
                  "without finishing the stop (acknowledged writes are in the WAL)\n", sig);
    else
        snprintf (line + n, sizeof line - n, "the stop did not finish within %d s (a slow "
                  "object store, or a part of the server stuck, which is a bug: see the log "
                  "above); exiting without finishing it (acknowledged writes are in the "
                  "WAL)\n", s_stop_limit_s);
    s_say_last (line);
    _exit (1);
}

//  A stop signal during the start (recovery, WAL replay, segment loads, which do not
//  look for it; only the wait for the write lease does) is taken once the start is
//  done, and the stop then runs in order. A start that goes on --stop-timeout-s
//  after the signal ends the process instead (status 1): nothing is served yet, and
//  the WAL is as it was. s_started: main reached its sigwait.
static atomic_bool s_started;

static void *
s_start_watchdog (void *arg)
{
    (void) arg;
    int64_t asked = 0;
    while (!atomic_load (&s_started)) {
        sigset_t pending;
        bool stop = s_stop_forwarded
                 || (sigpending (&pending) == 0 && (sigismember (&pending, SIGINT) == 1
                                                 || sigismember (&pending, SIGTERM) == 1));
        int64_t now = zclock_mono ();
        if (stop && !asked)
            asked = now;
        if (asked && now - asked >= (int64_t) s_stop_limit_s * 1000) {
            char line [256];
            snprintf (line, sizeof line, "E quiver: stopped during the start, which did not "
                      "end within %d s of the signal; exiting without finishing it\n",
                      s_stop_limit_s);
            s_say_last (line);
            _exit (1);
        }
        zclock_sleep (100);
    }
    return NULL;
}

//  Starts the start's watchdog (s_start_watchdog). Test hook QV_FAULT_START_STALL_MS:
//  the start then takes that much longer (as a long recovery would).
static void
s_starting (void)
{
    pthread_t watchdog;
    if (pthread_create (&watchdog, NULL, s_start_watchdog, NULL) == 0)
        pthread_detach (watchdog);
    const char *stall = getenv ("QV_FAULT_START_STALL_MS");
    if (stall && atoi (stall) > 0) {
        qv_warn ("QV_FAULT_START_STALL_MS=%s: the start takes that much longer (fault "
                 "injection)", stall);
        zclock_sleep (atoi (stall));
    }
}

//  The stop signal sig came: says so, and starts the watchdog that ends a stuck stop.
//  Test hook QV_FAULT_STOP_STALL_MS: the stop then waits that long before it begins.
static void
s_stopping (int sig)
{
    if (sig > 0)
        qv_info ("quiver stopping (signal %d)", sig);
    else
        qv_info ("quiver stopping (it refuses to serve)");
    s_stop_begun = 1;
    pthread_t watchdog;
    if (pthread_create (&watchdog, NULL, s_stop_watchdog, NULL) == 0)
        pthread_detach (watchdog);
    const char *stall = getenv ("QV_FAULT_STOP_STALL_MS");
    if (stall && atoi (stall) > 0) {
        qv_warn ("QV_FAULT_STOP_STALL_MS=%s: the stop waits that long first (fault "
                 "injection)", stall);
        zclock_sleep (atoi (stall));
    }
}

static void
s_install_signal_handlers (void)
{
    s_main_thread = pthread_self ();
    void *frames [1];
    backtrace (frames, 1);          //  loads libgcc now, not in a crashing thread
    struct sigaction sa;
    memset (&sa, 0, sizeof sa);
    sigemptyset (&sa.sa_mask);
    sa.sa_handler = s_on_fatal;
    sa.sa_flags = SA_RESETHAND;
    int fatal [] = { SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT };
    for (size_t i = 0; i < sizeof fatal / sizeof fatal [0]; i++) {
        struct sigaction old;
        //  A sanitizer's handler (ASan's for SIGSEGV) says more: leave it
        if (sigaction (fatal [i], NULL, &old) == 0 && !(old.sa_flags & SA_SIGINFO)
        &&  old.sa_handler == SIG_DFL)
            sigaction (fatal [i], &sa, NULL);
    }
    sa.sa_handler = s_forward_to_main;
    sa.sa_flags = SA_RESTART;
    sigaction (SIGINT, &sa, NULL);
    sigaction (SIGTERM, &sa, NULL);
}

//  quiver keygen FILE: a CURVE key pair, FILE (public) and FILE_secret (both keys, mode
//  0600), for `quiver serve --curve-secret-key FILE_secret`; prints the public key,
//  which clients give as their server key.
static int
s_keygen (int argc, char *argv [])
{
    if (argc != 3 || streq (argv [2], "-h") || streq (argv [2], "--help")) {
        fprintf (argc == 3 ? stdout : stderr,
                 "Usage: quiver keygen FILE\n\n"
                 "Writes a new CURVE key pair: FILE holds the public key, FILE_secret both\n"
                 "keys (readable by its owner only). Serve with `quiver serve\n"
                 "--curve-secret-key FILE_secret`; clients give the public key printed here\n"
                 "(qvctl --server-key KEY, QuiverClient(server_key=KEY)).\n"
                 "A client's own pair, for a server that admits listed client keys\n"
                 "(`quiver serve --curve-clients LIST`): append FILE to LIST, and the client\n"
                 "gives FILE_secret (qvctl --client-key, QuiverClient(client_key=...)).\n");
        return argc == 3 ? 0 : 2;
    }
    zsys_init ();
    zcert_t *cert = zcert_new ();
    char secret [PATH_MAX];
    snprintf (secret, sizeof secret, "%s_secret", argv [2]);
    mode_t old = umask (077);
    int rc = cert ? zcert_save (cert, argv [2]) : -1;
    umask (old);
    if (rc) {
        fprintf (stderr, "quiver keygen: cannot write %s and %s: %s\n", argv [2], secret,
                 strerror (errno));
        zcert_destroy (&cert);
        return 1;
    }
    chmod (argv [2], 0644);         //  the public half may be shared
    printf ("%s\n", zcert_public_txt (cert));
    fprintf (stderr, "quiver keygen: wrote %s (public) and %s (secret). A server's pair: serve "
             "with --curve-secret-key %s, and clients give the key above. A client's pair: "
             "the server lists %s in --curve-clients, the client gives --client-key %s\n",
             argv [2], secret, secret, argv [2], secret);
    zcert_destroy (&cert);
    return 0;
}

static void
s_usage (FILE *out)
{
    fprintf (out,
        "Usage: quiver serve [options]\n"
        "\n"
        "Runs Quiver with every component in this process: the ZeroMQ API, the WAL and\n"
        "segments in a local data directory, or in an S3 bucket (MinIO, AWS S3) with\n"
        "--s3-endpoint. No other server is needed.\n"
        "\n"
        "Options:\n"
        "  --data DIR              data directory (default ./quiver-data)\n"
        "  --bind ENDPOINT         ZeroMQ API endpoint (default tcp://127.0.0.1:19530)\n"
        "  --max-request-mb N      request size limit in MiB (default 64)\n"
        "  --max-unflushed-mb N    memory for unflushed rows before writers wait (default 2048)\n"
        "  --write-wait-ms N       how long a write waits for that memory before it is\n"
        "                          refused RESOURCE_EXHAUSTED (default 5000)\n"
        "  --segment-mb N          seal growing segments at this size (default 256)\n"
        "  --seal-age-sec N        ... or this age (default 600)\n"
        "  --wal-window N          WAL objects written at once, 1 to 4 (default: 4 on S3,\n"
        "                          1 on the filesystem); acknowledged in log order\n"
        "  --search-threads N      search worker threads (default: number of cores)\n"
        "  --max-inflight N        requests one client may have in flight; more are refused\n"
        "                          RESOURCE_EXHAUSTED until it reads replies (default 64)\n"
        "  --max-insert-mb-per-sec N    rate limit on insert and upsert request bytes, for\n"
        "                          the whole server (default 0: none); past it requests\n"
        "                          are refused RESOURCE_EXHAUSTED naming the limit\n"
        "  --max-searches-per-sec N     the same for searches, counting each query vector\n"
        "                          (a search of nq vectors counts nq, as Milvus does)\n"
        "  --max-client-insert-mb-per-sec N, --max-client-searches-per-sec N\n"
        "                          the same limits for each client connection (all NATS\n"
        "                          requests count as one client; stream messages are\n"
        "                          not limited: the bridge paces them)\n"
        "  --max-user-insert-mb-per-sec N, --max-user-searches-per-sec N\n"
        "                          the same limits for each user, with --auth\n"
        "  --compaction-mb-per-sec N    how fast compactions write merged segments and\n"
        "                          their indexes (default 64; 0: no limit)\n"
        "  --auto-compaction-ratio R    compact a segment on its own once this fraction of\n"
        "                          its rows is deleted, replaced or expired, and merge\n"
        "                          small segments (default 0.2; 0: only on `compact`)\n"
        "  --gc-grace-sec N        keep an object no manifest names this long before\n"
        "                          garbage collection deletes it (default 600)\n"
        "  --memory-mb N           refuse inserts and upserts RESOURCE_EXHAUSTED once the\n"
        "                          rows, vector indexes and key indexes in memory would\n"
        "                          pass N MiB (default 0: no budget; measured every second)\n"
        "  --bounded-staleness-ms N  a read at consistency `bounded` sees every write\n"
        "                          acknowledged more than N ms before it (default 5000)\n"
        "  --read-wait-ms N        how long a read waits for the writes its consistency\n"
        "                          level needs to become visible before it is answered\n"
        "                          TIMEOUT (default 10000)\n"
        "  --nats URL              serve NATS subjects and publish the change feed\n"
        "                          (nats://HOST:PORT; reconnects forever)\n"
        "  --nats-tls-ca FILE      trust the NATS server's certificate when signed by one in\n"
        "                          FILE (PEM), and connect with TLS (as tls:// URLs do)\n"
        "  --nats-tls-cert FILE --nats-tls-key FILE   a client certificate for a NATS\n"
        "                          server that verifies its clients\n"
        "  --nats-creds FILE       NATS credentials file (user JWT and NKey seed); a user\n"
        "                          and password or a token go in the URL\n"
        "  --nats-prefix P         subject prefix (default quiver: quiver.insert.<coll>, ...)\n"
        "  --ingest-stream NAME    consume JetStream stream NAME (subjects <op>.<collection>\n"
        "                          at the end, outside P.>), each message exactly once;\n"
        "                          proxy processes given the same NAME: one consumes\n"
        "                          (a lease in NATS KV), the others wait as standbys\n"
        "  --cdc-rows              change events carry the inserted rows, not only ids\n"
        "  --lease-ttl-ms N        with --nats, shard 0's write lease lives in the NATS KV\n"
        "                          bucket quiver_leases, renewed every N/3 ms; a server\n"
        "                          that finds it held waits, and takes it over N ms after\n"
        "                          its holder's last renewal (default 10000). Its epoch is\n"
        "                          the WAL's fencing epoch. On S3 it replaces the bucket's\n"
        "                          lock object (--s3-lock-ms is then unused)\n"
        "  --lease-wait-ms N       how long a start waits for a lease another server holds\n"
        "                          before it exits (default: as long as that server lives)\n"
        "  --s3-endpoint HOST:PORT keep the WAL, segments and manifests in S3 (path-style,\n"
        "                          AWS signature V2); --data then holds only local files.\n"
        "                          Credentials only from the environment:\n"
        "                          QUIVER_S3_ACCESS_KEY and QUIVER_S3_SECRET_KEY\n"
        "  --s3-bucket NAME        bucket (created if missing)\n"
        "  --s3-prefix P           keep every object under P/ in the bucket (default: none)\n"
        "  --s3-https              use HTTPS (default plain HTTP)\n"
        "  --s3-connections N      concurrent S3 requests (default 8)\n"
        "  --s3-lock-ms N          renewal period of the bucket's lock object (default 3000;\n"
        "                          a crashed holder's lock is taken over after 3 periods);\n"
        "                          without --nats only: with it, the lease is the lock\n"
        "  --cache-dir DIR         with S3: local copies of segment and index objects\n"
        "                          (default DATA/cache), checked by checksum and against the\n"
        "                          bucket's ETag before use\n"
        "  --cache-mb N            size limit of --cache-dir in MiB, least recently used\n"
        "                          objects evicted (default 10240; 0 turns the cache off)\n"
        "  --roles LIST            the roles this process runs, a comma list of proxy,\n"
        "                          segment-manager,meta,flusher,searcher (default: all, the\n"
        "                          embedded server). Built today: all of them;\n"
        "                          `searcher` alone: a searcher process that opens --data\n"
        "                          (or the S3 bucket) read-only, follows the writer's\n"
        "                          committed feed on --nats, answers reads on --bind and\n"
        "                          announces itself in NATS KV bucket quiver_members;\n"
        "                          `proxy,segment-manager,meta,flusher`: a writer whose\n"
        "                          searches, queries and gets go to those searcher\n"
        "                          processes over ZeroMQ TCP (needs --nats); or that\n"
        "                          writer in two processes: `proxy` (the API on --bind)\n"
        "                          and `segment-manager,meta,flusher` (the writer core:\n"
        "                          proxy processes connect to its --bind, or find it in\n"
        "                          NATS KV bucket quiver_members while it holds the lease);\n"
        "                          or the core in two: `segment-manager` (the WAL, ids,\n"
        "                          seals, acknowledgements) and `meta,flusher` (follows the\n"
        "                          committed feed, writes segments, indexes and manifests,\n"
        "                          holds the meta lease in NATS KV bucket quiver_leases)\n"
        "  --advertise ENDPOINT    with --roles searcher or the writer core's roles: the\n"
        "                          endpoint other processes connect to (default: --bind,\n"
        "                          a wildcard host replaced by this machine's host name)\n"
        "  --writer ENDPOINT       with --roles proxy: the writer core's --bind (default:\n"
        "                          the core holding the write lease, found in NATS and\n"
        "                          followed when another core takes the lease over)\n"
        "  --check-config          check the options and exit (0 if they are valid)\n"
        "  --http HOST:PORT        serve Milvus's REST API v2 (/v2/vectordb/...) there,\n"
        "                          e.g. 127.0.0.1:19531 (off by default)\n"
        "  --curve-secret-key FILE encrypt the API with ZeroMQ CURVE, with the key pair in\n"
        "                          FILE (made by `quiver keygen`); clients need its public\n"
        "                          key. On a writer core or a searcher process: the\n"
        "                          socket other processes reach (see --curve-peer-key)\n"
        "  --curve-peer-key KEY    encrypt the links between the processes of a split\n"
        "                          deployment with CURVE: every process holds one key pair\n"
        "                          (--curve-secret-key FILE_secret) and gives its public\n"
        "                          key here (40 characters or the public key file): proxy\n"
        "                          processes and writers reach the writer core and the\n"
        "                          searcher processes with it, whose sockets then admit\n"
        "                          no other client key (clients then reach the proxies)\n"
        "  --curve-clients FILE    with --curve-secret-key: admit on the API only the\n"
        "                          clients whose public keys FILE lists, one a line (the\n"
        "                          key, or a key file's public-key line: `quiver keygen`\n"
        "                          makes clients' pairs too; # comments). Read again when\n"
        "                          it changes, at the next connection: no restart\n"
        "  --io-threads N          ZeroMQ I/O threads (default 1; with --curve-secret-key\n"
        "                          one per core, at most 4: they encrypt every frame)\n"
        "  --auth                  require a token (\"user:password\") on every request and\n"
        "                          check its privileges; root's first password comes from\n"
        "                          the environment variable QUIVER_ROOT_PASSWORD; with no\n"
        "                          root stored and no such variable the server (a proxy or\n"
        "                          searcher process too) refuses to serve and exits 1 (a\n"
        "                          proxy process once its writer core shows the store)\n"
        "  --metrics HOST:PORT     serve Prometheus text at /metrics (requests by op and\n"
        "                          code, latency histograms, the stats figures) and\n"
        "                          /healthz, /readyz there, e.g. 127.0.0.1:9091 (off by\n"
        "                          default; every role)\n"
        "  --stop-timeout-s N      a stop (SIGTERM, SIGINT) not done within N s (default\n"
        "                          60), or a second signal, exits at once with status 1\n"
        "                          (acknowledged writes are in the WAL; index builds in\n"
        "                          progress are cancelled at once in any case); so does\n"
        "                          a start (recovery) still running N s after the signal\n"
        "  -h, --help              this help\n"
        "Environment: quiver serve runs itself again with\n"
        "GLIBC_TUNABLES=glibc.malloc.hugetlb=1 (huge pages for the memory a start fills);\n"
        "set GLIBC_TUNABLES (even empty) to keep your own. It runs on one malloc arena\n"
        "and gives malloc's free memory back after each flushed segment and index build\n"
        "(about 27 MB per 1M x 128 rows inserted); QV_MALLOC_ARENAS=0 keeps glibc's arena\n"
        "per thread (README, \"Compaction and garbage collection\").\n");
}

//  glibc's malloc backs its large blocks with transparent huge pages only when asked
//  by the tunable glibc.malloc.hugetlb=1, which it reads from the environment at
//  exec. A start copies every segment and index into fresh memory, and on a VM a 4 KiB
//  page fault each time was half of that time (a 1M-row start: 11.7 s -> 5.9 s). So
//  `quiver serve` runs itself again once with it set, unless GLIBC_TUNABLES is
//  already set, even empty (the operator's choice is kept), the process runs under
//  valgrind (whose tools would not follow the exec), or the exec fails (then it runs
//  as is).
static void
s_exec_with_hugepages (char *argv [])
{
    const char *preload = getenv ("LD_PRELOAD");
    if (getenv ("GLIBC_TUNABLES") || (preload && strstr (preload, "vgpreload")))
        return;
    setenv ("GLIBC_TUNABLES", "glibc.malloc.hugetlb=1", 1);
    execv ("/proc/self/exe", argv);
    unsetenv ("GLIBC_TUNABLES");
}

//  One malloc arena for every thread (before any thread starts), so that what the
//  inserts free can be given back: glibc trims (malloc_trim) only the main arena's
//  top, and a thread arena keeps a freed top of up to twice its dynamic mmap
//  threshold (up to 64 MB) resident. A 1M x 128 fill left 39 MB free in two thread
//  arenas, measured; on one arena, the trim after each flushed segment
//  (qv_bufpool_set_give_back) gave back 27 MB of it. Small blocks come from each
//  thread's cache (tcache) without the arena's lock either way. QV_MALLOC_ARENAS=0 in
//  the environment keeps glibc's arena per thread (for comparisons).
static void
s_one_arena (void)
{
    const char *env = getenv ("QV_MALLOC_ARENAS");
    if (env && strcmp (env, "0") == 0)
        return;
    if (mallopt (M_ARENA_MAX, 1) == 1)
        qv_bufpool_set_give_back (1);
}

#define S_HALT_POLL_NS "/sys/module/haltpoll/parameters/guest_halt_poll_ns"

//  A KVM guest whose cpuidle driver is haltpoll but whose halt polling is off (0 ns, as
//  some cloud images ship it) halts an idle vCPU at once, and every thread a request
//  wakes then waits for its vCPU to come back: on the 2-vCPU development VM that was
//  about half of a one-query search's round trip (README, "Latency on virtual
//  machines"). Like redis's start-up warnings, this says so once; it changes nothing.
static void
s_note_vm_idle (void)
{
    char driver [32] = "", poll_ns [32] = "";
    FILE *f = fopen ("/sys/devices/system/cpu/cpuidle/current_driver", "r");
    if (f) {
        if (!fgets (driver, sizeof driver, f))
            driver [0] = 0;
        fclose (f);
    }
    f = fopen (S_HALT_POLL_NS, "r");
    if (f) {
        if (!fgets (poll_ns, sizeof poll_ns, f))
            poll_ns [0] = 0;
        fclose (f);
    }
    if (strncmp (driver, "haltpoll", 8) == 0 && atol (poll_ns) == 0 && poll_ns [0] == '0')
        qv_info ("latency: this virtual machine halts an idle vCPU at once (%s is 0), so "
                 "each thread a request wakes waits for its vCPU; as root, `echo 200000 > "
                 "%s` halved one-query search latency on a 2-vCPU KVM guest (README, "
                 "\"Latency on virtual machines\")", S_HALT_POLL_NS, S_HALT_POLL_NS);
}

//  --roles: a comma list of the five roles. Every role (the default) is the embedded
//  server; `searcher` alone is a searcher process (config->follower); every role but
//  searcher is a writer whose searches, queries and gets go to searcher processes
//  (config->remote_reads). Any other combination is not built yet: 0, or -1 with the
//  reason on stderr.
static int
s_parse_roles (qv_config_t *config)
{
    static const char *names [] = { "proxy", "segment-manager", "meta", "flusher", "searcher" };
    unsigned seen = 0;
    char list [sizeof config->roles];
    snprintf (list, sizeof list, "%s", config->roles);
    char *save = NULL;
    for (char *r = strtok_r (list, ",", &save); r; r = strtok_r (NULL, ",", &save)) {
        size_t i = 0;
        while (i < 5 && !streq (r, names [i]))
            i++;
        if (i == 5) {
            fprintf (stderr, "quiver: --roles: unknown role '%s' (roles: proxy, segment-manager, "
                     "meta, flusher, searcher)\n", r);
            return -1;
        }
        seen |= 1u << i;
    }
    if (seen == 0x1f)
        return 0;                   //  every role: the embedded server
    if (seen == 1u << 4) {
        config->follower = true;
        return 0;
    }
    if (seen == 0x0f) {
        config->remote_reads = true;
        return 0;
    }
    if (seen == 0x01) {
        config->proxy_process = true;
        config->remote_reads = true;
        return 0;
    }
    if (seen == 0x0e) {
        config->writer_core = true;
        config->remote_reads = true;
        return 0;
    }
    //  The segment manager without meta,flusher: a meta process writes the segments
    if (seen == 0x02 || seen == 0x03) {
        config->writer_core = seen == 0x02;
        config->remote_reads = true;
        config->meta_remote = true;
        return 0;
    }
    if (seen == 0x0c) {
        config->follower = true;
        config->meta_process = true;
        return 0;
    }
    fprintf (stderr, "quiver: --roles %s is not built yet: this release runs every role in one "
             "process (the default, or all five listed), `--roles searcher` alone (a searcher "
             "process), `--roles proxy,segment-manager,meta,flusher` (a writer whose reads "
             "go to searcher processes), that writer in two processes: `--roles proxy` "
             "and `--roles segment-manager,meta,flusher`, or in three: `--roles proxy`, "
             "`--roles segment-manager` and `--roles meta,flusher` (meta and flusher go "
             "together)\n", config->roles);
    return -1;
}

//  Tears nats.c down once every connection is gone, waiting (at most 2 s) for its
//  threads to release what they still hold: nats_Close returns at once and frees
//  later, so a process exiting right after a connection closed (a searcher process
//  that started over, then was stopped) left a connection's memory behind.
//  ZeroMQ goes first: a closed socket's queued messages are freed later by libzmq's
//  own threads, and a request frame that lies in a NATS message's payload (the
//  bridge's zero-copy hand-off) destroys that message when freed: after nats.c's
//  teardown that aborted the process (seen as SIGABRT in natsGC_collect at a proxy
//  process's stop). Terminating the context waits for every such free. Called last,
//  once every actor and socket is gone (the ZAP handler's too).
static void
s_nats_close (void)
{
    zsys_shutdown ();
    natsStatus s = nats_CloseAndWait (2000);
    if (s != NATS_OK && s != NATS_NOT_INITIALIZED)
        qv_warn ("NATS library teardown: %s", natsStatus_GetText (s));
}

//  A searcher process that has been behind the writer's checkpoint this long starts
//  over from the newest manifest. An object it needs that is missing while a later
//  one is there is gone for good (checkpointed away, or the hole a killed writer
//  leaves: its successor starts above the write it interrupted, and flushes what it
//  recovered at once), so the wait is short: strong reads fail while it lasts. 10 s
//  made every kill -9 of a writer core cost its searchers that long.
#define S_RESYNC_MS 2000

//  A searcher process: serves until SIGINT/SIGTERM. When its follower cannot read the
//  WAL objects it needs for S_RESYNC_MS (the writer flushed and checkpointed them away
//  while this process was cut off from the feed), it starts over in this process: the
//  same recovery as a start, from the newest manifest (writers send it no reads
//  meanwhile: it leaves the membership bucket and joins again once caught up).
static int
s_serve_searcher (qv_config_t *config, sigset_t *stop)
{
    qv_replica_t *replica = qv_replica_new (config);
    atomic_store (&s_started, true);
    if (!replica) {
        qv_error ("quiver: %s", qv_err_msg ());
        return 1;
    }
    if (config->meta_process)
        qv_info ("quiver meta process serving %s, following the committed feed on %s, "
                 "writing segments, indexes and manifests to %s", config->bind,
                 config->nats_url, config->s3_endpoint [0] ? config->s3_endpoint : config->data);
    else
        qv_info ("quiver searcher process serving %s, following the committed feed on %s, "
                 "data in %s (read-only)", config->bind, config->nats_url,
                 config->s3_endpoint [0] ? config->s3_endpoint : config->data);
    s_note_vm_idle ();
    int sig = 0;
    while (sig <= 0) {
        struct timespec tick = { 1, 0 };
        sig = sigtimedwait (stop, NULL, &tick);
        if (sig > 0 || !replica || qv_replica_behind_ms (replica) < S_RESYNC_MS)
            continue;
        qv_warn ("searcher: behind the writer's WAL checkpoint for %d s; starting over from "
                 "the newest manifest", S_RESYNC_MS / 1000);
        qv_replica_destroy (&replica);
        while (!(replica = qv_replica_new (config)) && sig <= 0) {
            qv_error ("searcher: starting over failed: %s; retrying in 5 s", qv_err_msg ());
            struct timespec later = { 5, 0 };
            sig = sigtimedwait (stop, NULL, &later);
        }
        if (replica)
            qv_info ("searcher: started over from the newest manifest");
    }
    s_stopping (sig);
    qv_replica_destroy (&replica);
    return 0;
}

int
main (int argc, char *argv [])
{
    if (argc < 2 || streq (argv [1], "-h") || streq (argv [1], "--help")) {
        fprintf (argc < 2 ? stderr : stdout,
                 "Usage: quiver serve [options]   (quiver serve --help for options)\n"
                 "       quiver keygen FILE       (a CURVE key pair for --curve-secret-key)\n");
        return argc < 2 ? 2 : 0;
    }
    if (streq (argv [1], "keygen"))
        return s_keygen (argc, argv);
    if (!streq (argv [1], "serve")) {
        fprintf (stderr, "quiver: unknown command '%s'; try 'quiver serve --help'\n", argv [1]);
        return 2;
    }
    s_exec_with_hugepages (argv);
    s_one_arena ();
    qv_config_t config;
    qv_config_defaults (&config);
    static struct option opts [] = {
        { "data", required_argument, 0, 'd' },
        { "bind", required_argument, 0, 'b' },
        { "max-request-mb", required_argument, 0, 'r' },
        { "max-unflushed-mb", required_argument, 0, 'u' },
        { "write-wait-ms", required_argument, 0, 'w' },
        { "segment-mb", required_argument, 0, 's' },
        { "seal-age-sec", required_argument, 0, 'a' },
        { "search-threads", required_argument, 0, 't' },
        { "max-inflight", required_argument, 0, 'F' },
        { "max-insert-mb-per-sec", required_argument, 0, 1001 },
        { "max-searches-per-sec", required_argument, 0, 1002 },
        { "max-client-insert-mb-per-sec", required_argument, 0, 1003 },
        { "max-client-searches-per-sec", required_argument, 0, 1004 },
        { "nats-tls-ca", required_argument, 0, 1005 },
        { "nats-tls-cert", required_argument, 0, 1006 },
        { "nats-tls-key", required_argument, 0, 1007 },
        { "nats-creds", required_argument, 0, 1008 },
        { "compaction-mb-per-sec", required_argument, 0, 1010 },
        { "auto-compaction-ratio", required_argument, 0, 1011 },
        { "gc-grace-sec", required_argument, 0, 1012 },
        { "memory-mb", required_argument, 0, 1013 },
        { "max-user-insert-mb-per-sec", required_argument, 0, 1014 },
        { "max-user-searches-per-sec", required_argument, 0, 1015 },
        { "wal-window", required_argument, 0, 1016 },
        { "bounded-staleness-ms", required_argument, 0, 'S' },
        { "read-wait-ms", required_argument, 0, 'R' },
        { "nats", required_argument, 0, 'N' },
        { "nats-prefix", required_argument, 0, 'P' },
        { "ingest-stream", required_argument, 0, 'I' },
        { "cdc-rows", no_argument, 0, 'C' },
        { "s3-endpoint", required_argument, 0, 'E' },
        { "s3-bucket", required_argument, 0, 'B' },
        { "s3-prefix", required_argument, 0, 'X' },
        { "s3-https", no_argument, 0, 'H' },
        { "s3-connections", required_argument, 0, 'c' },
        { "s3-lock-ms", required_argument, 0, 'L' },
        { "cache-dir", required_argument, 0, 'D' },
        { "cache-mb", required_argument, 0, 'M' },
        { "check-config", no_argument, 0, 'K' },
        { "roles", required_argument, 0, 'O' },
        { "advertise", required_argument, 0, 'V' },
        { "writer", required_argument, 0, 'G' },
        { "http", required_argument, 0, 'W' },
        { "metrics", required_argument, 0, 'Y' },
        { "curve-secret-key", required_argument, 0, 'Q' },
        { "curve-peer-key", required_argument, 0, 1103 },
        { "curve-clients", required_argument, 0, 1104 },
        { "auth", no_argument, 0, 1101 },
        { "io-threads", required_argument, 0, 1102 },
        { "lease-ttl-ms", required_argument, 0, 'T' },
        { "lease-wait-ms", required_argument, 0, 'A' },
        { "stop-timeout-s", required_argument, 0, 'Z' },
        { "help", no_argument, 0, 'h' },
        { 0, 0, 0, 0 }
    };
    int c;
    bool check_config = false;
    bool lease_opt = false;
    const char *nats_sec [4] = { NULL, NULL, NULL, NULL };     //  ca, cert, key, creds
    int io_threads = 0;             //  --io-threads, 0: the default below
    optind = 2;
    int li = 0;
    while ((c = getopt_long (argc, argv, "h", opts, &li)) != -1) {
        long v = optarg ? atol (optarg) : 0;
        switch (c) {
            case 'd': snprintf (config.data, sizeof config.data, "%s", optarg); break;
            case 'b': snprintf (config.bind, sizeof config.bind, "%s", optarg); break;
            case 'r': config.max_request = (size_t) v << 20; break;
            case 'u': config.max_unflushed = (size_t) v << 20; break;
            case 'w': config.backpressure_ms = (int) v; break;
            case 's': config.seg_max_bytes = (size_t) v << 20; break;
            case 'a': config.seal_age_sec = (int) v; break;
            case 't': config.search_threads = (int) v; break;
            case 'F': config.max_inflight = (size_t) v; break;
            case 1005: case 1006: case 1007: case 1008:
                nats_sec [c - 1005] = optarg;
                break;
            case 1001: case 1002: case 1003: case 1004: {
                char *end = NULL;
                double rate = strtod (optarg, &end);
                if (!end || *end || end == optarg || !(rate >= 0) || rate > 1e12) {
                    fprintf (stderr, "quiver: --%s '%s': give a number of at least 0 "
                             "(0: no limit)\n", opts [li].name, optarg);
                    return 2;
                }
                if (c == 1001) config.max_insert_bps = rate * 1048576;
                if (c == 1002) config.max_searches_ps = rate;
                if (c == 1003) config.client_insert_bps = rate * 1048576;
                if (c == 1004) config.client_searches_ps = rate;
                break;
            }
            case 1010: case 1011: case 1012: case 1013: case 1014: case 1015: {
                char *end = NULL;
                double x = strtod (optarg, &end);
                double most = c == 1011 ? 1 : 1e9;
                if (!end || *end || end == optarg || !(x >= 0) || x > most) {
                    fprintf (stderr, "quiver: --%s '%s': give a number from 0 to %g\n",
                             opts [li].name, optarg, most);
                    return 2;
                }
                if (c == 1010) config.compaction_bps = x * 1048576;
                if (c == 1011) config.compaction_ratio = x;
                if (c == 1012) config.gc_grace_sec = (int) x;
                if (c == 1013) config.memory_budget = (size_t) (x * 1048576);
                if (c == 1014) config.user_insert_bps = x * 1048576;
                if (c == 1015) config.user_searches_ps = x;
                break;
            }
            case 1016:
                if (v < 1 || v > QV_WAL_WINDOW) {
                    fprintf (stderr, "quiver: --wal-window '%s': give 1 to %d\n", optarg,
                             QV_WAL_WINDOW);
                    return 2;
                }
                config.wal_window = (int) v;
                break;
            case 'S': config.bounded_staleness_ms = (int) v; break;
            case 'R': config.read_wait_ms = (int) v; break;
            case 'N': snprintf (config.nats_url, sizeof config.nats_url, "%s", optarg); break;
            case 'P': snprintf (config.nats_prefix, sizeof config.nats_prefix, "%s", optarg); break;
            case 'I': snprintf (config.ingest_stream, sizeof config.ingest_stream, "%s", optarg); break;
            case 'C': config.cdc_rows = true; break;
            case 'E': snprintf (config.s3_endpoint, sizeof config.s3_endpoint, "%s", optarg); break;
            case 'B': snprintf (config.s3_bucket, sizeof config.s3_bucket, "%s", optarg); break;
            case 'X': snprintf (config.s3_prefix, sizeof config.s3_prefix, "%s", optarg); break;
            case 'H': config.s3_https = true; break;
            case 'c': config.s3_connections = (int) v; break;
            case 'L': config.s3_lock_ms = (int) v; break;
            case 'D': snprintf (config.cache_dir, sizeof config.cache_dir, "%s", optarg); break;
            case 'M':
                if (v < 0 || !isdigit ((unsigned char) optarg [0])) {
                    fprintf (stderr, "quiver: --cache-mb needs a number of MiB (0 turns the cache off)\n");
                    return 2;
                }
                config.cache_mb = v;
                break;
            case 'K': check_config = true; break;
            case 'T': config.lease_ttl_ms = (int) v; lease_opt = true; break;
            case 'A': config.lease_wait_ms = (int) v; lease_opt = true; break;
            case 'O': snprintf (config.roles, sizeof config.roles, "%s", optarg); break;
            case 'V': snprintf (config.advertise, sizeof config.advertise, "%s", optarg); break;
            case 'G': snprintf (config.writer, sizeof config.writer, "%s", optarg); break;
            case 'W': snprintf (config.http, sizeof config.http, "%s", optarg); break;
            case 'Y': snprintf (config.metrics, sizeof config.metrics, "%s", optarg); break;
            case 'Q': snprintf (config.curve_secret_key, sizeof config.curve_secret_key, "%s", optarg); break;
            case 1104: snprintf (config.curve_clients, sizeof config.curve_clients, "%s", optarg); break;
            case 1101: config.auth = true; break;
            case 1103:
                if (qv_curve_key_read (optarg, config.curve_peer_key)) {
                    fprintf (stderr, "quiver: --curve-peer-key: '%.60s' is neither a 40-character "
                             "key nor a key file written by `quiver keygen`\n", optarg);
                    return 2;
                }
                break;
            case 1102: {
                char *end = NULL;
                long n = strtol (optarg, &end, 10);
                if (!end || *end || end == optarg || n < 1 || n > 64) {
                    fprintf (stderr, "quiver: --io-threads '%s': give a number from 1 to 64\n", optarg);
                    return 2;
                }
                io_threads = (int) n;
                break;
            }
            case 'Z': s_stop_limit_s = (int) v; break;
            case 'h': s_usage (stdout); return 0;
            default: s_usage (stderr); return 2;
        }
        if (c < 256 && !strchr ("dbhNPICEBXHKWDMOVGYQ", c) && v <= 0) {
            fprintf (stderr, "quiver: --%s needs a positive number\n", opts [li].name);
            return 2;
        }
    }
    if (lease_opt && !config.nats_url [0]) {
        fprintf (stderr, "quiver: --lease-ttl-ms and --lease-wait-ms need --nats URL (the "
                 "lease lives in NATS)\n");
        return 2;
    }
    if (config.lease_ttl_ms < 300) {
        fprintf (stderr, "quiver: --lease-ttl-ms %d: use at least 300\n", config.lease_ttl_ms);
        return 2;
    }
    if (config.roles [0] && s_parse_roles (&config))
        return 2;
    if (config.remote_reads && !config.nats_url [0]) {
        fprintf (stderr, "quiver: --roles %s sends reads to searcher processes, which it "
                 "finds over NATS: give --nats URL\n", config.roles);
        return 2;
    }
    if (!config.proxy_process && config.writer [0]) {
        fprintf (stderr, "quiver: --writer is the writer core's endpoint for a proxy process: "
                 "it needs --roles proxy\n");
        return 2;
    }
    if (config.writer_core && config.ingest_stream [0]) {
        fprintf (stderr, "quiver: --ingest-stream belongs to a proxy process (it consumes the "
                 "stream and sends its writes to the writer core): give it to one `quiver "
                 "serve --roles proxy`\n");
        return 2;
    }
    if (config.writer_core && config.http [0]) {
        fprintf (stderr, "quiver: --http belongs to the process clients reach: with --roles "
                 "segment-manager,meta,flusher give it to the proxy process\n");
        return 2;
    }
    if (config.curve_peer_key [0] && !config.curve_secret_key [0]) {
        fprintf (stderr, "quiver: --curve-peer-key encrypts the links between the processes "
                 "of a split deployment, which all hold one key pair: give this process's "
                 "--curve-secret-key FILE_secret too\n");
        return 2;
    }
    if (config.curve_peer_key [0] && !config.remote_reads && !config.follower) {
        fprintf (stderr, "quiver: --curve-peer-key is for the processes of a split deployment "
                 "(--roles): an embedded server has no links to other processes\n");
        return 2;
    }
    if (config.curve_clients [0] && !config.curve_secret_key [0]) {
        fprintf (stderr, "quiver: --curve-clients admits clients by their CURVE keys: give "
                 "the API's --curve-secret-key FILE_secret too\n");
        return 2;
    }
    if (config.curve_clients [0] && (config.writer_core || config.follower)) {
        fprintf (stderr, "quiver: --curve-clients belongs to the process clients reach (an "
                 "embedded server or --roles proxy); the links between processes admit "
                 "--curve-peer-key\n");
        return 2;
    }
    if (config.curve_clients [0]) {
        zhashx_t *keys = qv_zap_clients_read (config.curve_clients);
        if (!keys) {
            fprintf (stderr, "quiver: %s\n", qv_err_msg ());
            return 2;
        }
        if (zhashx_size (keys) == 0)
            fprintf (stderr, "quiver: warning: --curve-clients %s lists no key: the API admits "
                     "no client until one is added\n", config.curve_clients);
        zhashx_destroy (&keys);
    }
    if (config.curve_secret_key [0]) {
        zsys_init ();
        zcert_t *cert = zcert_load (config.curve_secret_key);
        bool secret = cert && strcmp (zcert_secret_txt (cert),
                                      "0000000000000000000000000000000000000000") != 0;
        zcert_destroy (&cert);
        if (!secret) {
            fprintf (stderr, "quiver: --curve-secret-key %s: not a secret key file (make one "
                     "with `quiver keygen FILE` and give FILE_secret)\n", config.curve_secret_key);
            return 2;
        }
    }
    const char *root_password = getenv ("QUIVER_ROOT_PASSWORD");
    if (config.auth && root_password
    &&  (strlen (root_password) < QV_PASSWORD_MIN || strlen (root_password) > QV_PASSWORD_MAX)) {
        fprintf (stderr, "quiver: QUIVER_ROOT_PASSWORD must have %d to %d bytes\n",
                 QV_PASSWORD_MIN, QV_PASSWORD_MAX);
        return 2;
    }
    if (config.advertise [0] && !config.follower && !config.writer_core) {
        fprintf (stderr, "quiver: --advertise is the endpoint other processes reach a searcher "
                 "process or a writer core at: it needs --roles searcher or --roles "
                 "segment-manager,meta,flusher\n");
        return 2;
    }
    if (config.follower && !config.nats_url [0]) {
        fprintf (stderr, "quiver: --roles %s follows the writer's committed feed over "
                 "NATS: give --nats URL (the writer's)\n", config.roles);
        return 2;
    }
    if (config.follower && (config.ingest_stream [0] || config.http [0])) {
        fprintf (stderr, "quiver: --roles %s takes no --ingest-stream (writes go to the "
                 "writer) and no --http (not built for this process yet)\n", config.roles);
        return 2;
    }
    if (config.meta_remote && !config.nats_url [0]) {
        fprintf (stderr, "quiver: --roles %s leaves the segments to a `--roles meta,flusher` "
                 "process, which follows the committed feed over NATS: give --nats URL\n",
                 config.roles);
        return 2;
    }
    if (config.ingest_stream [0] && !config.nats_url [0]) {
        fprintf (stderr, "quiver: --ingest-stream needs --nats URL\n");
        return 2;
    }
    if (!config.nats_prefix [0] || strpbrk (config.nats_prefix, " *>\t") || config.nats_prefix [0] == '.'
    ||  config.nats_prefix [strlen (config.nats_prefix) - 1] == '.') {
        fprintf (stderr, "quiver: --nats-prefix must be a subject without wildcards (e.g. quiver)\n");
        return 2;
    }
    if (config.ingest_stream [0] && strpbrk (config.ingest_stream, " .*>\t/\\")) {
        fprintf (stderr, "quiver: --ingest-stream must be a JetStream stream name (no '.', '*', '>', spaces)\n");
        return 2;
    }
    if (optind < argc) {
        fprintf (stderr, "quiver: unexpected argument '%s'\n", argv [optind]);
        return 2;
    }
    char url [PATH_MAX + 1024];
    if (qv_config_store_url (&config, url, sizeof url)) {
        fprintf (stderr, "quiver: %s\n", qv_err_msg ());
        return 2;
    }
    if ((nats_sec [0] || nats_sec [1] || nats_sec [2] || nats_sec [3]) && !config.nats_url [0]) {
        fprintf (stderr, "quiver: --nats-tls-ca, --nats-tls-cert, --nats-tls-key and "
                 "--nats-creds secure the NATS connection: give --nats URL too\n");
        return 2;
    }
    if (qv_bus_set_security (nats_sec [0], nats_sec [1], nats_sec [2], nats_sec [3])) {
        fprintf (stderr, "quiver: %s\n", qv_err_msg ());
        return 2;
    }
    struct sockaddr_in addr;
    if ((config.http [0] && qv_http_parse_addr ("--http", config.http, &addr))
    ||  (config.metrics [0] && qv_http_parse_addr ("--metrics", config.metrics, &addr))) {
        fprintf (stderr, "quiver: %s\n", qv_err_msg ());
        return 2;
    }
    if (check_config) {
        if (config.s3_endpoint [0]
        &&  (!getenv ("QUIVER_S3_ACCESS_KEY") || !getenv ("QUIVER_S3_SECRET_KEY")))
            printf ("quiver: note: QUIVER_S3_ACCESS_KEY / QUIVER_S3_SECRET_KEY are not set "
                    "here; the serving process needs them\n");
        if (config.meta_process)
            printf ("quiver: configuration OK (a meta process: follows the committed feed on "
                    "%s and writes segments, indexes and manifests to %s)\n", config.nats_url,
                    config.s3_endpoint [0] ? config.s3_endpoint : config.data);
        else
        if (config.follower)
            printf ("quiver: configuration OK (a searcher process: reads only, following the "
                    "committed feed on %s; the store opened read-only)\n", config.nats_url);
        else
        if (config.proxy_process)
            printf ("quiver: configuration OK (a proxy process: writes to the writer core %s%s, "
                    "searches, queries and gets to the searcher processes announced on %s; "
                    "no store)\n", config.writer [0] ? "at " : "announced on ",
                    config.writer [0] ? config.writer : config.nats_url, config.nats_url);
        else
        if (config.writer_core)
            printf ("quiver: configuration OK (a writer core: requests from proxy processes "
                    "at %s, reads to the searcher processes announced on %s; data in %s%s)\n",
                    config.bind, config.nats_url,
                    config.s3_endpoint [0] ? config.s3_endpoint : config.data,
                    config.meta_remote ? "; segments written by a `--roles meta,flusher` "
                    "process" : "");
        else
        if (config.remote_reads)
            printf ("quiver: configuration OK (a writer whose searches, queries and gets go to "
                    "the searcher processes announced on %s; data in %s)\n", config.nats_url,
                    config.s3_endpoint [0] ? config.s3_endpoint : config.data);
        else
        if (config.s3_endpoint [0])
            printf ("quiver: configuration OK (objects in s3://%s/%s on %s, local files in %s)\n",
                    config.s3_bucket, config.s3_prefix, config.s3_endpoint, config.data);
        else
            printf ("quiver: configuration OK (data in %s)\n", config.data);
        return 0;
    }
    //  SIGINT/SIGTERM are blocked in every thread (threads inherit the mask) and taken
    //  here with sigwait, so no ZeroMQ call in an actor is ever interrupted and the
    //  shutdown runs in order: writes in flight finish, then the actors stop.
    sigset_t stop;
    sigemptyset (&stop);
    sigaddset (&stop, SIGINT);
    sigaddset (&stop, SIGTERM);
    pthread_sigmask (SIG_BLOCK, &stop, NULL);
    s_stop_signals = stop;
    zsys_handler_set (NULL);
    zsys_init ();
    //  ZeroMQ's I/O threads (set before any socket). One carries plain traffic at
    //  memory speed; CURVE encrypts and decrypts every frame on them, so with it each
    //  core gets one (measured: 4 clients inserting 1,000-row batches went from 0.51x
    //  to 0.83x of plain with 2 I/O threads on 2 cores). ZSYS_IO_THREADS, czmq's own
    //  variable, still sets the default when given.
    if (!io_threads && config.curve_secret_key [0] && !getenv ("ZSYS_IO_THREADS")) {
        long cores = sysconf (_SC_NPROCESSORS_ONLN);
        io_threads = cores < 1 ? 1 : cores > 4 ? 4 : (int) cores;
    }
    if (io_threads)
        zsys_set_io_threads ((size_t) io_threads);
    s_install_signal_handlers ();
    zsys_set_linger (0);
    s_starting ();
    //  A writer core's and a searcher process's sockets admit only the deployment's
    //  key with --curve-peer-key: libzmq asks this handler at each CURVE handshake
    //  (and an API with --curve-clients only the keys that file lists)
    qv_zap_args_t zargs = { config.curve_peer_key, config.writer_core ? "the writer core"
                            : config.meta_process ? "the meta process" : "the searcher process",
                            config.curve_clients, false };
    bool zap_needed = (config.curve_peer_key [0] && (config.writer_core || config.follower))
                   || config.curve_clients [0];
    zactor_t *zap = zap_needed ? zactor_new (qv_zap_actor, &zargs) : NULL;
    if (zap_needed && !zargs.bound) {
        //  Without the handler libzmq would admit any client key: fail closed
        qv_error ("quiver: the ZAP handler that checks CURVE client keys did not start; "
                  "not serving");
        zactor_destroy (&zap);
        s_nats_close ();
        return 1;
    }
    if (config.follower) {
        int rc = s_serve_searcher (&config, &stop);
        zactor_destroy (&zap);
        s_nats_close ();
        qv_info ("quiver stopped");
        return rc;
    }
    qv_server_t *server = qv_server_new (&config);
    if (!server) {
        qv_error ("quiver: %s", qv_err_msg ());
        zactor_destroy (&zap);
        return 1;
    }
    const char *nats_sep = config.nats_url [0] ? "; NATS " : "";
    const char *http_sep = config.http [0] ? "; REST http://" : "";
    if (config.s3_endpoint [0])
        qv_info ("quiver serving %s with objects in s3://%s/%s on %s, local files in %s%s%s%s%s",
                 config.bind, config.s3_bucket, config.s3_prefix, config.s3_endpoint,
                 config.data, nats_sep, config.nats_url, http_sep, config.http);
    else
        qv_info ("quiver serving %s with data in %s%s%s%s%s", config.bind, config.data,
                 nats_sep, config.nats_url, http_sep, config.http);
    s_note_vm_idle ();
    if (config.remote_reads)
        qv_info ("roles %s: searches, queries and gets go to the searcher processes of this "
                 "store (`quiver serve --roles searcher --nats %s`)", config.roles, config.nats_url);
    int sig = 0;
    atomic_store (&s_started, true);
    //  Until a stop signal, or a proxy process's refusal to serve (known once its
    //  writer core's user store came: qv_server_refused), looked at every second
    char refused [600] = "";
    while (sig <= 0 && !refused [0]) {
        struct timespec tick = { 1, 0 };
        sig = sigtimedwait (&stop, NULL, &tick);
        const char *why = qv_server_refused (server);
        if (sig <= 0 && why)
            snprintf (refused, sizeof refused, "%s", why);
    }
    if (refused [0])
        qv_error ("quiver: %s; exiting", refused);
    s_stopping (sig);
    qv_server_destroy (&server);
    zactor_destroy (&zap);
    s_nats_close ();
    qv_info ("quiver stopped");
    return refused [0] ? 1 : 0;
}
