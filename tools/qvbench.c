//  qvbench: measures a Quiver server it starts itself (insert rate, exact search
//  against the machine's memory bandwidth, restart-to-serving time) and prints tables.
//
//  DESIGN
//  Everything is measured in one run on one machine, so the figures can be compared
//  with each other: the memory bandwidth of a plain read kernel next to the scan rate
//  of the distance kernel called in this process, next to the scan rate a search
//  reaches through the server. The server is `quiver serve` found next to this
//  program, started as a child process on a temporary data directory and a free
//  loopback port, and stopped (or killed with SIGKILL, to measure recovery) by pid.
//  Each figure is the median of several runs; the bandwidth and kernel figures are
//  the best of several passes (what the hardware can do). This is a benchmark, never
//  a test: it checks no threshold, it prints.
#include "qv_bench.h"
#include "qv_client.h"
#include "qv_dist.h"
#include "qv_flat.h"
#include "qv_rc.h"
#include "qv_topk.h"

#include <curl/curl.h>
#include <czmq.h>
#include <dirent.h>
#include <ftw.h>
#include <getopt.h>
#include <immintrin.h>
#include <libgen.h>
#include <math.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>

#define S_DIM 128
#define S_ROW_BYTES (S_DIM * 4 + 8)     //  a row on the wire: vector + int64 id
#define S_K 10

//  Options of this run.
typedef struct {
    bool quick;
    const char *only;               //  the one part to run ("insert", ...) or NULL
    int runs;                       //  runs per figure (median)
    int rounds;                     //  parts f and g: rounds, each on new server processes
    double seconds;                 //  length of one timed run
    char quiver [4096];             //  path of the quiver binary
    char tmp [4096];                //  temporary directory of this run
    bool split;                     //  part d also on a searcher process (--split)
} s_opts_t;

// ---------------------------------------------------------------------------------
//  Small helpers

static uint64_t
s_rand (uint64_t *state)
{
    //  xorshift64*
    uint64_t x = *state;
    x ^= x >> 12; x ^= x << 25; x ^= x >> 27;
    *state = x;
    return x * 0x2545f4914f6cdd1dull;
}

static void
s_fill_random (float *out, size_t n, uint64_t *state)
{
    for (size_t i = 0; i < n; i++)
        out [i] = (float) (s_rand (state) >> 40) / (float) (1 << 24);
}


static double
s_median (double *v, size_t n)
{
    return qv_bench_quantile (v, n, 0.5);
}

static double
s_max (const double *v, size_t n)
{
    double m = 0;
    for (size_t i = 0; i < n; i++)
        m = v [i] > m ? v [i] : m;
    return m;
}

//  Bytes under path.
static size_t s_du_total;
static int
s_du_entry (const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void) path; (void) ftw;
    if (flag == FTW_F)
        s_du_total += (size_t) st->st_size;
    return 0;
}

static double
s_du_mb (const char *path)
{
    s_du_total = 0;
    nftw (path, s_du_entry, 16, FTW_PHYS);
    return s_du_total / 1e6;
}

//  Starts quiver serve on data with search_threads workers (0: its default) and waits
//  until it serves. Returns the ms from fork to the first ok ping.
static double
s_server_start (qv_bench_server_t *srv, const s_opts_t *opts, const char *data, int search_threads)
{
    char threads [16];
    snprintf (threads, sizeof threads, "%d", search_threads);
    char *extra [] = { "--search-threads", threads, NULL };
    return qv_bench_server_start (srv, opts->quiver, data, search_threads ? extra : NULL);
}

//  The server's own figure from the last "recovered ..." line of its log, or "".
static void
s_server_recovered_line (qv_bench_server_t *srv, char *out, size_t size)
{
    out [0] = 0;
    FILE *f = fopen (srv->log, "r");
    if (!f)
        return;
    char line [1024];
    while (fgets (line, sizeof line, f)) {
        char *p = strstr (line, "recovered ");
        if (p) {
            p [strcspn (p, "\n")] = 0;
            snprintf (out, size, "%s", p);
        }
    }
    fclose (f);
}

// ---------------------------------------------------------------------------------
//  Requests

static void
s_create (qv_client_t *client, const char *name)
{
    qv_bench_create (client, name, S_DIM, "L2");
}

static void
s_simple (qv_client_t *client, const char *op, const char *name)
{
    qv_wr_t *w = qv_client_request (client, op, 1, NULL);
    qv_wr_str (w, "collection"); qv_wr_str (w, name);
    qv_doc_t *reply = qv_bench_call (client, &w);
    qv_doc_destroy (&reply);
}

//  An insert request of n rows of S_DIM: ids first_id.., vectors as one bin column.
static qv_wr_t *
s_insert_request (qv_client_t *client, const char *name, int64_t first_id, const float *vectors,
                  size_t n, uint64_t *rid_p)
{
    return qv_bench_insert_request (client, name, first_id, vectors, n, S_DIM, rid_p);
}

//  Inserts n random rows with ids first_id.. through one pipelined client (batches
//  of 1,000, 4 in flight). Returns rows/s.
static double
s_load (const char *endpoint, const char *name, size_t n, int64_t first_id, uint64_t seed)
{
    const size_t batch = 1000;
    const int window = 4;
    qv_client_t *client = qv_bench_client_new (endpoint);
    qv_client_set_timeout (client, 300000);
    float *vectors = malloc (batch * S_DIM * sizeof (float));
    uint64_t state = seed | 1;
    size_t sent = 0, acked = 0;
    int inflight = 0;
    int64_t t0 = qv_clock_usec (), shown = t0;
    while (acked < n) {
        while (sent < n && inflight < window) {
            size_t m = n - sent < batch ? n - sent : batch;
            s_fill_random (vectors, m * S_DIM, &state);
            qv_wr_t *w = s_insert_request (client, name, first_id + (int64_t) sent, vectors, m, NULL);
            if (qv_client_send (client, w))
                qv_bench_die ("%s", qv_client_error (client));
            qv_wr_destroy (&w);
            sent += m;
            inflight++;
        }
        qv_doc_t *reply;
        uint64_t rid;
        if (qv_client_recv (client, &reply, &rid))
            qv_bench_die ("loading '%s': %s: %s", name, qv_client_code (client), qv_client_error (client));
        uint64_t count = 0;
        const qv_val_t *v = qv_val_get (qv_doc_root (reply), "count");
        if (v)
            qv_val_uint (v, &count);
        qv_doc_destroy (&reply);
        acked += count;
        inflight--;
        int64_t now = qv_clock_usec ();
        if (now - shown > 2000000) {
            fprintf (stderr, "  loading '%s': %zu/%zu rows\n", name, acked, n);
            shown = now;
        }
    }
    double secs = (qv_clock_usec () - t0) / 1e6;
    free (vectors);
    qv_client_destroy (&client);
    return n / secs;
}

static double
s_flush (const char *endpoint, const char *name)
{
    qv_client_t *client = qv_bench_client_new (endpoint);
    qv_client_set_timeout (client, 600000);
    int64_t t0 = qv_clock_usec ();
    s_simple (client, "flush", name);
    qv_client_destroy (&client);
    return (qv_clock_usec () - t0) / 1e6;
}

// ---------------------------------------------------------------------------------
//  a. Insert throughput

typedef struct {
    const char *endpoint;
    const char *name;
    size_t batch;
    int64_t first_id;               //  this thread's ids start here
    double seconds;
    pthread_barrier_t *start;
    size_t rows;                    //  out: rows acknowledged
    double *lat;                    //  out: ms per request
    size_t nlat;
    const char *error;              //  out: NULL or what failed
} s_inserter_t;

static void *
s_inserter (void *arg)
{
    s_inserter_t *t = arg;
    qv_client_t *client = qv_bench_client_new (t->endpoint);
    qv_client_set_timeout (client, 60000);
    const size_t pool = 1024;       //  random rows reused round robin
    size_t rows_pool = t->batch > pool ? t->batch : pool;
    float *vectors = malloc (rows_pool * S_DIM * sizeof (float));
    uint64_t state = (uint64_t) t->first_id | 1;
    s_fill_random (vectors, rows_pool * S_DIM, &state);
    size_t cap = 1 << 16;
    t->lat = malloc (cap * sizeof (double));
    pthread_barrier_wait (t->start);
    int64_t end = qv_clock_usec () + (int64_t) (t->seconds * 1e6);
    size_t next = 0;
    while (qv_clock_usec () < end) {
        size_t off = t->batch == 1 ? next % pool : 0;
        qv_wr_t *w = s_insert_request (client, t->name, t->first_id + (int64_t) t->rows,
                                       vectors + off * S_DIM, t->batch, NULL);
        int64_t t0 = qv_clock_usec ();
        qv_doc_t *reply;
        int rc = qv_client_call (client, w, &reply);
        double ms = (qv_clock_usec () - t0) / 1000.0;
        qv_wr_destroy (&w);
        qv_doc_destroy (&reply);
        if (rc) {
            t->error = strdup (qv_client_error (client));
            break;
        }
        if (t->nlat == cap)
            t->lat = realloc (t->lat, (cap *= 2) * sizeof (double));
        t->lat [t->nlat++] = ms;
        t->rows += t->batch;
        next++;
    }
    free (vectors);
    qv_client_destroy (&client);
    return NULL;
}

//  One timed run of nclients threads inserting batches; rows/s, p50, p99 out.
static void
s_insert_run (const char *endpoint, const char *name, int nclients, size_t batch, double seconds,
              int64_t id_base, double *rate, double *p50, double *p99)
{
    pthread_t threads [64];
    s_inserter_t args [64];
    pthread_barrier_t start;
    pthread_barrier_init (&start, NULL, (unsigned) nclients + 1);
    for (int i = 0; i < nclients; i++) {
        args [i] = (s_inserter_t) {
            endpoint, name, batch, id_base + ((int64_t) i << 32), seconds, &start, 0, NULL, 0, NULL
        };
        pthread_create (&threads [i], NULL, s_inserter, &args [i]);
    }
    pthread_barrier_wait (&start);
    int64_t t0 = qv_clock_usec ();
    size_t rows = 0, nlat = 0;
    for (int i = 0; i < nclients; i++) {
        pthread_join (threads [i], NULL);
        rows += args [i].rows;
        nlat += args [i].nlat;
    }
    double secs = (qv_clock_usec () - t0) / 1e6;
    pthread_barrier_destroy (&start);
    double *lat = malloc ((nlat ? nlat : 1) * sizeof (double));
    size_t j = 0;
    for (int i = 0; i < nclients; i++) {
        if (args [i].error)
            qv_bench_die ("insert client %d: %s", i, args [i].error);
        memcpy (lat + j, args [i].lat, args [i].nlat * sizeof (double));
        j += args [i].nlat;
        free (args [i].lat);
    }
    *rate = rows / secs;
    *p50 = qv_bench_quantile (lat, nlat, 0.50);
    *p99 = qv_bench_quantile (lat, nlat, 0.99);
    free (lat);
}

static void
s_bench_insert (const s_opts_t *opts)
{
    char data [4200];
    snprintf (data, sizeof data, "%s/insert", opts->tmp);
    qv_bench_server_t srv;
    s_server_start (&srv, opts, data, 0);
    qv_client_t *client = qv_bench_client_new (srv.endpoint);
    qv_client_set_timeout (client, 60000);
    printf ("\n== a. Insert throughput over ZeroMQ: %d-dim float32 rows, columnar bin inserts, "
            "acknowledged after the WAL write\n", S_DIM);
    printf ("   (each client a thread with its own socket, one request in flight; %.1f s per run, "
            "median of %d runs; MB/s counts %d bytes a row)\n\n", opts->seconds, opts->runs, S_ROW_BYTES);
    printf ("  %7s  %6s  %12s  %9s  %10s  %10s\n", "clients", "batch", "rows/s", "MB/s", "p50 ms", "p99 ms");
    printf ("  %7s  %6s  %12s  %9s  %10s  %10s\n", "-------", "------", "------------", "---------",
            "----------", "----------");
    const int clients [] = { 1, 4, 16 };
    const size_t batches [] = { 1, 1000 };
    for (int b = 0; b < 2; b++)
        for (int c = 0; c < 3; c++) {
            char name [64];
            snprintf (name, sizeof name, "ins_c%d_b%zu", clients [c], batches [b]);
            s_create (client, name);
            double rate [16], p50 [16], p99 [16];
            for (int r = 0; r < opts->runs; r++)
                s_insert_run (srv.endpoint, name, clients [c], batches [b], opts->seconds,
                              (int64_t) (r + 1) << 48, &rate [r], &p50 [r], &p99 [r]);
            double mrate = s_median (rate, (size_t) opts->runs);
            printf ("  %7d  %6zu  %12.0f  %9.1f  %10.3f  %10.3f\n", clients [c], batches [b], mrate,
                    mrate * S_ROW_BYTES / 1e6, s_median (p50, (size_t) opts->runs),
                    s_median (p99, (size_t) opts->runs));
            fflush (stdout);
            s_simple (client, "drop_collection", name);
        }
    qv_client_destroy (&client);
    qv_bench_server_stop (&srv, SIGTERM);
    qv_bench_rm_rf (data);
}

// ---------------------------------------------------------------------------------
//  b. Memory bandwidth and scan kernels in this process

__attribute__ ((target ("avx512f")))
static uint64_t
s_sum_avx512 (const uint64_t *p, size_t n)
{
    __m512i a0 = _mm512_setzero_si512 (), a1 = a0, a2 = a0, a3 = a0;
    for (size_t i = 0; i + 32 <= n; i += 32) {
        a0 = _mm512_add_epi64 (a0, _mm512_load_si512 ((const void *) (p + i)));
        a1 = _mm512_add_epi64 (a1, _mm512_load_si512 ((const void *) (p + i + 8)));
        a2 = _mm512_add_epi64 (a2, _mm512_load_si512 ((const void *) (p + i + 16)));
        a3 = _mm512_add_epi64 (a3, _mm512_load_si512 ((const void *) (p + i + 24)));
    }
    a0 = _mm512_add_epi64 (_mm512_add_epi64 (a0, a1), _mm512_add_epi64 (a2, a3));
    return (uint64_t) _mm512_reduce_add_epi64 (a0);
}

__attribute__ ((target ("avx2")))
static uint64_t
s_sum_avx2 (const uint64_t *p, size_t n)
{
    __m256i a0 = _mm256_setzero_si256 (), a1 = a0, a2 = a0, a3 = a0;
    for (size_t i = 0; i + 16 <= n; i += 16) {
        a0 = _mm256_add_epi64 (a0, _mm256_load_si256 ((const __m256i *) (p + i)));
        a1 = _mm256_add_epi64 (a1, _mm256_load_si256 ((const __m256i *) (p + i + 4)));
        a2 = _mm256_add_epi64 (a2, _mm256_load_si256 ((const __m256i *) (p + i + 8)));
        a3 = _mm256_add_epi64 (a3, _mm256_load_si256 ((const __m256i *) (p + i + 12)));
    }
    a0 = _mm256_add_epi64 (_mm256_add_epi64 (a0, a1), _mm256_add_epi64 (a2, a3));
    uint64_t out [4];
    _mm256_storeu_si256 ((__m256i *) out, a0);
    return out [0] + out [1] + out [2] + out [3];
}

static uint64_t
s_sum_serial (const uint64_t *p, size_t n)
{
    uint64_t a = 0;
    for (size_t i = 0; i < n; i++)
        a += p [i];
    return a;
}

//  What one thread of a parallel pass does.
typedef struct {
    int kind;                       //  0 read-sum, 1 l2sq_batch kernel, 2 qv_flat_scan top-k
    const void *base;
    size_t n;                       //  uint64 words (kind 0) or rows
    const float *query;
    float *out;                     //  distances, S_BLOCK-sized window reused
    qv_topk_t *topk;
    uint64_t sink;
} s_pass_t;

#define S_BLOCK 4096                //  rows per kernel call in the kernel pass

static void *
s_pass (void *arg)
{
    s_pass_t *p = arg;
    if (p->kind == 0) {
        const uint64_t *words = p->base;
        p->sink = qv_dist_cpu_has ("avx512") ? s_sum_avx512 (words, p->n)
                : qv_dist_cpu_has ("avx2") ? s_sum_avx2 (words, p->n)
                : s_sum_serial (words, p->n);
    }
    else
    if (p->kind == 1) {
        const float *base = p->base;
        qv_dist_batch_fn kernel = qv_dist_kernels ()->l2sq_batch;
        for (size_t i = 0; i < p->n; i += S_BLOCK) {
            size_t m = p->n - i < S_BLOCK ? p->n - i : S_BLOCK;
            kernel (p->query, base + i * S_DIM, m, S_DIM, p->out);
            p->sink += (uint64_t) p->out [0];
        }
    }
    else {
        qv_search_params_t params;
        memset (&params, 0, sizeof params);
        qv_topk_reset (p->topk);
        qv_flat_scan (p->query, p->base, (uint32_t) p->n, S_DIM, QV_METRIC_L2, &params, p->topk);
    }
    return NULL;
}

//  Best bytes/s over reps passes of kind over bytes of base split across nthreads.
static double
s_parallel_pass (int kind, const void *base, size_t bytes, int nthreads, int reps, const float *query)
{
    s_pass_t passes [2];
    pthread_t threads [2];
    size_t unit = kind == 0 ? 8 : S_DIM * 4;
    size_t total = bytes / unit;
    for (int t = 0; t < nthreads; t++) {
        size_t from = total * (size_t) t / (size_t) nthreads, to = total * (size_t) (t + 1) / (size_t) nthreads;
        passes [t] = (s_pass_t) { kind, (const char *) base + from * unit, to - from, query,
                                  malloc (S_BLOCK * sizeof (float)), qv_topk_new (S_K), 0 };
    }
    double best = 0;
    for (int r = 0; r < reps; r++) {
        int64_t t0 = qv_clock_usec ();
        for (int t = 0; t < nthreads; t++)
            pthread_create (&threads [t], NULL, s_pass, &passes [t]);
        for (int t = 0; t < nthreads; t++)
            pthread_join (threads [t], NULL);
        double rate = bytes / ((qv_clock_usec () - t0) / 1e6);
        best = rate > best ? rate : best;
    }
    for (int t = 0; t < nthreads; t++) {
        free (passes [t].out);
        qv_topk_destroy (&passes [t].topk);
    }
    return best;
}

//  Measures read bandwidth with 1 and 2 threads into bw [1], bw [2]; prints the
//  in-process kernel table.
static void
s_bench_kernels (const s_opts_t *opts, double bw [3], size_t rows)
{
    const size_t gib = (size_t) 1 << 30;
    const int reps = opts->quick ? 3 : 5;
    uint64_t *buf = aligned_alloc (64, gib);
    if (!buf)
        qv_bench_die ("out of memory for the 1 GiB bandwidth buffer");
    for (size_t i = 0; i < gib / 8; i++)
        buf [i] = i;
    bw [1] = s_parallel_pass (0, buf, gib, 1, reps, NULL);
    bw [2] = s_parallel_pass (0, buf, gib, 2, reps, NULL);
    free (buf);

    size_t bytes = rows * S_DIM * 4;
    float *base = aligned_alloc (64, bytes);
    float query [S_DIM];
    if (!base)
        qv_bench_die ("out of memory for %zu vectors", rows);
    uint64_t state = 42;
    s_fill_random (base, rows * S_DIM, &state);
    s_fill_random (query, S_DIM, &state);
    double kern [3], flat [3];
    for (int t = 1; t <= 2; t++) {
        kern [t] = s_parallel_pass (1, base, bytes, t, reps, query);
        flat [t] = s_parallel_pass (2, base, bytes, t, reps, query);
    }
    free (base);

    printf ("\n== b1. Memory read bandwidth and the exact-scan kernels in this process "
            "(%zu x %d float32 = %.0f MB; best of %d passes)\n\n", rows, S_DIM, bytes / 1e6, reps);
    printf ("  %-52s  %8s  %12s  %8s\n", "what", "threads", "GB/s", "of bw");
    printf ("  %-52s  %8s  %12s  %8s\n", "----------------------------------------------------",
            "-------", "------------", "--------");
    for (int t = 1; t <= 2; t++)
        printf ("  %-52s  %8d  %12.2f  %7.0f%%\n", "read bandwidth: 64-bit sum over a 1 GiB buffer",
                t, bw [t] / 1e9, 100.0);
    char what [96];
    for (int t = 1; t <= 2; t++) {
        snprintf (what, sizeof what, "qv_dist_kernels ()->l2sq_batch (%s), 1 query",
                  qv_dist_kernels ()->isa);
        printf ("  %-52s  %8d  %12.2f  %7.0f%%\n", what, t, kern [t] / 1e9, 100 * kern [t] / bw [t]);
    }
    for (int t = 1; t <= 2; t++)
        printf ("  %-52s  %8d  %12.2f  %7.0f%%\n", "qv_flat_scan (kernel + top-10), 1 query",
                t, flat [t] / 1e9, 100 * flat [t] / bw [t]);
    fflush (stdout);
}

// ---------------------------------------------------------------------------------
//  b. Exact search through the server

//  Runs requests of nq random queries for about seconds (at least min_requests);
//  returns queries/s and the median latency per request in *p50 (and the 99th
//  percentile in *p99 unless NULL).
static double
s_search_run_p (qv_client_t *client, const char *name, uint32_t nq, double seconds,
                int min_requests, uint64_t *state, double *p50, double *p99)
{
    float *queries = malloc ((size_t) nq * S_DIM * sizeof (float));
    size_t cap = 1024, n = 0;
    double *lat = malloc (cap * sizeof (double));
    int64_t t0 = qv_clock_usec ();
    while (n < (size_t) min_requests || (qv_clock_usec () - t0) / 1e6 < seconds) {
        s_fill_random (queries, (size_t) nq * S_DIM, state);
        qv_wr_t *w = qv_client_request (client, "search", 4, NULL);
        qv_wr_str (w, "collection"); qv_wr_str (w, name);
        qv_wr_str (w, "vectors"); qv_wr_bin (w, queries, (size_t) nq * S_DIM * sizeof (float));
        qv_wr_str (w, "dim"); qv_wr_uint (w, S_DIM);
        qv_wr_str (w, "limit"); qv_wr_uint (w, S_K);
        int64_t r0 = qv_clock_usec ();
        qv_doc_t *reply = qv_bench_call (client, &w);
        if (n == cap)
            lat = realloc (lat, (cap *= 2) * sizeof (double));
        lat [n++] = (qv_clock_usec () - r0) / 1000.0;
        qv_doc_destroy (&reply);
    }
    double secs = (qv_clock_usec () - t0) / 1e6;
    if (p99)
        *p99 = qv_bench_quantile (lat, n, 0.99);
    *p50 = s_median (lat, n);
    free (lat);
    free (queries);
    return (double) n * nq / secs;
}

static double
s_search_run (qv_client_t *client, const char *name, uint32_t nq, double seconds,
              int min_requests, uint64_t *state, double *p50)
{
    return s_search_run_p (client, name, nq, seconds, min_requests, state, p50, NULL);
}

static void
s_bench_search (const s_opts_t *opts, const double bw [3])
{
    const size_t sizes_full [] = { 100000, 1000000 }, sizes_quick [] = { 20000, 100000 };
    const size_t *sizes = opts->quick ? sizes_quick : sizes_full;
    printf ("\n== b2. Exact search through the server (%d-dim float32, L2, k=%d, flushed data, "
            "random queries; median of %d runs)\n", S_DIM, S_K, opts->runs);
    printf ("   scan GB/s = rows x %d bytes x queries/s at nq=1; 'of bw' compares it with the read "
            "bandwidth of as many threads\n\n", S_DIM * 4);
    printf ("  %9s  %7s  %4s  %10s  %10s  %9s  %7s\n", "rows", "threads", "nq", "queries/s",
            "p50 ms", "scan GB/s", "of bw");
    printf ("  %9s  %7s  %4s  %10s  %10s  %9s  %7s\n", "---------", "-------", "----", "----------",
            "----------", "---------", "-------");
    for (int s = 0; s < 2; s++) {
        size_t rows = sizes [s];
        char data [4200];
        snprintf (data, sizeof data, "%s/search-%zu", opts->tmp, rows);
        qv_bench_server_t srv;
        s_server_start (&srv, opts, data, 0);
        qv_client_t *client = qv_bench_client_new (srv.endpoint);
        s_create (client, "bench");
        qv_client_destroy (&client);
        double load = s_load (srv.endpoint, "bench", rows, 0, 7 + rows);
        double flush = s_flush (srv.endpoint, "bench");
        qv_bench_server_stop (&srv, SIGTERM);
        fprintf (stderr, "  loaded %zu rows at %.0f rows/s, flushed in %.2f s\n", rows, load, flush);
        for (int t = 1; t <= 2; t++) {
            double up = s_server_start (&srv, opts, data, t);
            fprintf (stderr, "  server with --search-threads %d serving %zu flushed rows after %.0f ms\n",
                     t, rows, up);
            client = qv_bench_client_new (srv.endpoint);
            qv_client_set_timeout (client, 600000);
            uint64_t state = 99;
            double warm;
            s_search_run (client, "bench", 1, 0, 3, &state, &warm);
            const uint32_t nqs [] = { 1, 100 };
            for (int q = 0; q < 2; q++) {
                double qps [16], p50 [16];
                for (int r = 0; r < opts->runs; r++)
                    qps [r] = s_search_run (client, "bench", nqs [q], opts->seconds, nqs [q] == 1 ? 5 : 2,
                                            &state, &p50 [r]);
                double mq = s_median (qps, (size_t) opts->runs);
                double mp = s_median (p50, (size_t) opts->runs);
                if (nqs [q] == 1) {
                    double scan = (double) rows * S_DIM * 4 * mq;
                    printf ("  %9zu  %7d  %4u  %10.1f  %10.3f  %9.2f  %6.0f%%\n", rows, t, nqs [q], mq, mp,
                            scan / 1e9, 100 * scan / bw [t]);
                }
                else
                    printf ("  %9zu  %7d  %4u  %10.1f  %10.3f  %9s  %7s\n", rows, t, nqs [q], mq, mp, "", "");
                fflush (stdout);
            }
            qv_client_destroy (&client);
            qv_bench_server_stop (&srv, SIGTERM);
        }
        qv_bench_rm_rf (data);
    }
}

// ---------------------------------------------------------------------------------
//  c. Restart-to-serving time

//  Kills the server with SIGKILL and restarts it `runs` times; prints the median,
//  min and max ms from fork to the first ok ping. Leaves it running.
static void
s_restart_row (const s_opts_t *opts, qv_bench_server_t *srv, const char *what, size_t flushed, size_t tail)
{
    double ms [16];
    char said [256] = "";
    for (int r = 0; r < opts->runs; r++) {
        qv_bench_server_stop (srv, SIGKILL);
        ms [r] = s_server_start (srv, opts, srv->data, 0);
        s_server_recovered_line (srv, said, sizeof said);
    }
    double mb = s_du_mb (srv->data);
    double med = s_median (ms, (size_t) opts->runs);
    printf ("  %-26s  %9zu  %9zu  %8.0f  %9.0f  %9.0f  %9.0f\n", what, flushed, tail, mb, med, ms [0],
            s_max (ms, (size_t) opts->runs));
    printf ("  %-26s  server log: %s\n", "", said);
    fflush (stdout);
}

static void
s_bench_recovery (const s_opts_t *opts)
{
    size_t tail = opts->quick ? 20000 : 100000;
    size_t big = opts->quick ? 200000 : 1000000;
    printf ("\n== c. Restart-to-serving time after kill -9 (fork of `quiver serve` to the first ok "
            "ping; median, min, max of %d restarts)\n\n", opts->runs);
    printf ("  %-26s  %9s  %9s  %8s  %9s  %9s  %9s\n", "data", "flushed", "unflushed", "disk MB",
            "median ms", "min ms", "max ms");
    printf ("  %-26s  %9s  %9s  %8s  %9s  %9s  %9s\n", "--------------------------", "---------",
            "---------", "--------", "---------", "---------", "---------");
    char data [4200];
    qv_bench_server_t srv;

    snprintf (data, sizeof data, "%s/recovery-empty", opts->tmp);
    s_server_start (&srv, opts, data, 0);
    s_restart_row (opts, &srv, "empty", 0, 0);
    qv_bench_server_stop (&srv, SIGKILL);
    qv_bench_rm_rf (data);

    snprintf (data, sizeof data, "%s/recovery-tail", opts->tmp);
    s_server_start (&srv, opts, data, 0);
    qv_client_t *client = qv_bench_client_new (srv.endpoint);
    s_create (client, "bench");
    qv_client_destroy (&client);
    s_load (srv.endpoint, "bench", tail, 0, 11);
    s_restart_row (opts, &srv, "unflushed tail only", 0, tail);
    qv_bench_server_stop (&srv, SIGKILL);
    qv_bench_rm_rf (data);

    snprintf (data, sizeof data, "%s/recovery-big", opts->tmp);
    s_server_start (&srv, opts, data, 0);
    client = qv_bench_client_new (srv.endpoint);
    s_create (client, "bench");
    qv_client_destroy (&client);
    s_load (srv.endpoint, "bench", big, 0, 13);
    s_flush (srv.endpoint, "bench");
    s_restart_row (opts, &srv, "flushed, no tail", big, 0);
    s_load (srv.endpoint, "bench", tail, (int64_t) big, 17);
    s_restart_row (opts, &srv, "flushed + the same tail", big, tail);
    qv_bench_server_stop (&srv, SIGKILL);
    qv_bench_rm_rf (data);
}

// ---------------------------------------------------------------------------------
//  d. Insert-to-visible latency and the wait a consistency level adds

//  The reader's side of a visibility probe: it polls `get` at consistency level (session:
//  with guarantee_ts, the insert's ts once the writer has it, else none) for the id in
//  target until the row is there, then notes when and clears target.
typedef struct {
    const char *endpoint;
    const char *name;
    const char *level;
    atomic_ullong ts;               //  session: the ts of the insert being probed, 0 before
    atomic_llong target;            //  id to look for; -1 none; -2 stop
    atomic_llong seen_usec;         //  when the reader first got the row
    atomic_llong polls;             //  get requests made
    const char *error;
} s_watch_t;

static void *
s_watcher (void *arg)
{
    s_watch_t *w = arg;
    qv_client_t *client = qv_bench_client_new (w->endpoint);
    qv_client_set_timeout (client, 60000);
    while (true) {
        long long id = atomic_load (&w->target);
        if (id == -2)
            break;
        if (id == -1) {
            zclock_sleep (0);
            continue;
        }
        unsigned long long ts = atomic_load (&w->ts);
        qv_wr_t *r = qv_client_request (client, "get", ts ? 4 : 3, NULL);
        qv_wr_str (r, "collection"); qv_wr_str (r, w->name);
        qv_wr_str (r, "ids"); qv_wr_array (r, 1); qv_wr_int (r, id);
        qv_wr_str (r, "consistency"); qv_wr_str (r, w->level);
        if (ts) {
            qv_wr_str (r, "guarantee_ts"); qv_wr_uint (r, ts);
        }
        qv_doc_t *reply;
        int rc = qv_client_call (client, r, &reply);
        qv_wr_destroy (&r);
        atomic_fetch_add (&w->polls, 1);
        if (rc) {
            w->error = strdup (qv_client_error (client));
            qv_doc_destroy (&reply);
            break;
        }
        const qv_val_t *rows = qv_val_get (qv_doc_root (reply), "rows");
        bool found = rows && qv_val_len (rows) > 0;
        qv_doc_destroy (&reply);
        if (found) {
            atomic_store (&w->seen_usec, (long long) qv_clock_usec ());
            atomic_store (&w->target, -1);
        }
    }
    qv_client_destroy (&client);
    return NULL;
}

//  One search of one random query at a consistency level (session: guarantee_ts).
static double
s_level_search (qv_client_t *client, const char *name, const char *level, uint64_t ts,
                uint64_t *state)
{
    float q [S_DIM];
    s_fill_random (q, S_DIM, state);
    bool session = streq (level, "session");
    qv_wr_t *w = qv_client_request (client, "search", session ? 6 : 5, NULL);
    qv_wr_str (w, "collection"); qv_wr_str (w, name);
    qv_wr_str (w, "vectors"); qv_wr_bin (w, q, sizeof q);
    qv_wr_str (w, "dim"); qv_wr_uint (w, S_DIM);
    qv_wr_str (w, "limit"); qv_wr_uint (w, S_K);
    qv_wr_str (w, "consistency"); qv_wr_str (w, level);
    if (session) {
        qv_wr_str (w, "guarantee_ts"); qv_wr_uint (w, ts);
    }
    int64_t t0 = qv_clock_usec ();
    qv_doc_t *reply = qv_bench_call (client, &w);
    double ms = (qv_clock_usec () - t0) / 1000.0;
    qv_doc_destroy (&reply);
    return ms;
}

//  probes one-row inserts through client, each followed (by a second client on
//  reader) by `get` polls at level until the row is there: the ms from each insert's
//  send (from_send) and from its acknowledgement (from_ack) to the row seen; *watch
//  keeps the poll count.
static void
s_visibility_probes (qv_client_t *client, const char *reader, const char *name,
                     const char *level, int probes, uint64_t *state, int64_t *next_id,
                     float *vec, double *from_send, double *from_ack, uint64_t *last_ts,
                     s_watch_t *watch)
{
    *watch = (s_watch_t) { .endpoint = reader, .name = name, .level = level };
    atomic_store (&watch->target, -1);
    atomic_store (&watch->ts, 0);
    pthread_t thread;
    pthread_create (&thread, NULL, s_watcher, watch);
    for (int i = 0; i < probes; i++) {
        int64_t id = (*next_id)++;
        s_fill_random (vec, S_DIM, state);
        qv_wr_t *w = s_insert_request (client, name, id, vec, 1, NULL);
        atomic_store (&watch->seen_usec, 0);
        atomic_store (&watch->ts, 0);
        int64_t t_send = qv_clock_usec ();
        atomic_store (&watch->target, (long long) id);
        qv_doc_t *reply = qv_bench_call (client, &w);
        int64_t t_ack = qv_clock_usec ();
        const qv_val_t *ts = qv_val_get (qv_doc_root (reply), "ts");
        if (ts)
            qv_val_uint (ts, last_ts);
        atomic_store (&watch->ts, (unsigned long long) *last_ts);
        qv_doc_destroy (&reply);
        int64_t deadline = t_ack + 60 * 1000000LL;
        while (atomic_load (&watch->seen_usec) == 0 && !watch->error && qv_clock_usec () < deadline)
            zclock_sleep (0);
        if (watch->error)
            qv_bench_die ("visibility reader: %s", watch->error);
        long long seen = atomic_load (&watch->seen_usec);
        if (!seen)
            qv_bench_die ("row %lld not visible 60 s after its insert was acknowledged", (long long) id);
        from_send [i] = (seen - t_send) / 1000.0;
        from_ack [i] = (seen - t_ack) / 1000.0;
    }
    atomic_store (&watch->target, -2);
    pthread_join (thread, NULL);
}

static void
s_bench_visibility (const s_opts_t *opts)
{
    const size_t rows = opts->quick ? 10000 : 50000;
    const int probes = opts->quick ? 200 : 1000;
    char data [4200];
    snprintf (data, sizeof data, "%s/visibility", opts->tmp);
    qv_bench_server_t srv, replica;
    pid_t nats = 0;
    char nats_url [64] = "";
    if (opts->split) {
        //  The writer publishes its committed feed on NATS; a searcher process follows it.
        char sd [4200];
        snprintf (sd, sizeof sd, "%s/nats", opts->tmp);
        nats = qv_bench_nats_start (sd, nats_url, sizeof nats_url);
        char *extra [] = { "--nats", nats_url, NULL };
        qv_bench_server_start (&srv, opts->quiver, data, extra);
    }
    else
        s_server_start (&srv, opts, data, 0);
    qv_client_t *client = qv_bench_client_new (srv.endpoint);
    qv_client_set_timeout (client, 60000);
    s_create (client, "vis");
    s_load (srv.endpoint, "vis", rows, 0, 23);
    if (opts->split) {
        char *extra [] = { "--roles", "searcher", "--nats", nats_url, NULL };
        qv_bench_server_start (&replica, opts->quiver, data, extra);
    }
    const char *readers [2] = { srv.endpoint, opts->split ? replica.endpoint : NULL };
    const char *labels [2] = { opts->split ? "embedded " : "", "replica " };

    printf ("\n== d. Insert-to-visible latency and consistency levels (embedded server%s, %zu unflushed "
            "%d-dim rows, exact search, k=%d)\n", opts->split ? " with --nats, and a searcher "
            "process following its feed" : "", rows, S_DIM, S_K);
    printf ("   visibility: %d one-row inserts per level, one at a time; a second client polls "
            "`get` at that level\n   until the row is there (session: with the insert's ts once "
            "acknowledged). Searches: nq=1, the four\n   levels interleaved, session with the ts "
            "of the last insert.\n\n", probes);
    printf ("  %-52s  %9s  %9s  %9s\n", "measure", "p50 ms", "p99 ms", "max ms");
    printf ("  %-52s  %9s  %9s  %9s\n", "----------------------------------------------------",
            "---------", "---------", "---------");

    //  Visibility probes, with the reader at each level in turn
    const char *levels [] = { "strong", "bounded", "session", "eventually" };
    double *from_send = malloc (probes * sizeof (double));
    double *from_ack = malloc (probes * sizeof (double));
    float *vec = malloc (S_DIM * sizeof (float));
    uint64_t state = 31, last_ts = 0;
    int64_t next_id = (int64_t) rows;
    for (int ri = 0; ri < 2 && readers [ri]; ri++)
    for (int l = 0; l < 4; l++) {
        s_watch_t watch;
        s_visibility_probes (client, readers [ri], "vis", levels [l], probes, &state, &next_id,
                             vec, from_send, from_ack, &last_ts, &watch);
        char what [80];
        snprintf (what, sizeof what, "%s%s: insert sent -> visible to another client",
                  labels [ri], levels [l]);
        printf ("  %-52s  %9.3f  %9.3f  %9.3f\n", what,
                qv_bench_quantile (from_send, probes, 0.5), qv_bench_quantile (from_send, probes, 0.99),
                s_max (from_send, probes));
        snprintf (what, sizeof what, "%s%s: acknowledged -> visible (< 0: before)",
                  labels [ri], levels [l]);
        printf ("  %-52s  %9.3f  %9.3f  %9.3f\n", what,
                qv_bench_quantile (from_ack, probes, 0.5), qv_bench_quantile (from_ack, probes, 0.99),
                s_max (from_ack, probes));
        snprintf (what, sizeof what, "%s%s: get polls per probe (mean)", labels [ri], levels [l]);
        printf ("  %-52s  %9.1f\n", what, (double) atomic_load (&watch.polls) / probes);
    }

    //  Search latency per level, interleaved so the machine's noise hits all alike
    const int searches = opts->quick ? 200 : 1000;
    for (int ri = 0; ri < 2 && readers [ri]; ri++) {
        qv_client_t *rc = qv_client_new (readers [ri]);
        qv_client_set_timeout (rc, 60000);
        double *lat [4];
        for (int l = 0; l < 4; l++)
            lat [l] = malloc (searches * sizeof (double));
        for (int i = 0; i < searches; i++)
            for (int l = 0; l < 4; l++)
                lat [l][i] = s_level_search (rc, "vis", levels [l], last_ts, &state);
        double base = qv_bench_quantile (lat [3], searches, 0.5);
        for (int l = 0; l < 4; l++) {
            char what [64];
            snprintf (what, sizeof what, "%ssearch nq=1, consistency %s", labels [ri], levels [l]);
            double p50 = qv_bench_quantile (lat [l], searches, 0.5);
            printf ("  %-52s  %9.3f  %9.3f  %9.3f   p50 - eventually's: %+.3f ms\n", what, p50,
                    qv_bench_quantile (lat [l], searches, 0.99), s_max (lat [l], searches), p50 - base);
            free (lat [l]);
        }
        qv_client_destroy (&rc);
    }
    fflush (stdout);
    free (from_send);
    free (from_ack);
    free (vec);
    qv_client_destroy (&client);
    if (opts->split)
        qv_bench_server_stop (&replica, SIGTERM);
    qv_bench_server_stop (&srv, SIGTERM);
    if (nats > 0) {
        qv_bench_nats_stop (nats);
    }
    qv_bench_rm_rf (data);
}

// ---------------------------------------------------------------------------------
//  e. Split roles (--split): a writer whose reads go to a searcher process, beside
//  an embedded server, both with --nats

//  A number from the server's stats (0 if absent).
static uint64_t
s_stat (const char *endpoint, const char *key)
{
    qv_client_t *client = qv_bench_client_new (endpoint);
    qv_client_set_timeout (client, 60000);
    qv_wr_t *w = qv_client_request (client, "stats", 0, NULL);
    qv_doc_t *reply = qv_bench_call (client, &w);
    uint64_t v = 0;
    const qv_val_t *x = qv_val_get (qv_doc_root (reply), key);
    if (x)
        qv_val_uint (x, &v);
    qv_doc_destroy (&reply);
    qv_client_destroy (&client);
    return v;
}

//  Creates an HNSW index (M 16, efConstruction 100) on name's vector field.
static void
s_create_hnsw (qv_client_t *client, const char *name)
{
    qv_wr_t *w = qv_client_request (client, "create_index", 4, NULL);
    qv_wr_str (w, "collection"); qv_wr_str (w, name);
    qv_wr_str (w, "field"); qv_wr_str (w, "vector");
    qv_wr_str (w, "index_type"); qv_wr_str (w, "HNSW");
    qv_wr_str (w, "params");
    qv_wr_map (w, 2);
    qv_wr_str (w, "M"); qv_wr_uint (w, 16);
    qv_wr_str (w, "efConstruction"); qv_wr_uint (w, 100);
    qv_doc_t *reply = qv_bench_call (client, &w);
    qv_doc_destroy (&reply);
}

//  Part e's search rows: nq=1 and nq=100 on "srch", medians of the runs.
static void
s_split_search_rows (const s_opts_t *opts, qv_client_t *client, const char *label,
                     const char *what, uint64_t *state)
{
    const uint32_t nqs [] = { 1, 100 };
    for (int q = 0; q < 2; q++) {
        double qps [16], p50 [16], p99 [16];
        for (int r = 0; r < opts->runs; r++)
            qps [r] = s_search_run_p (client, "srch", nqs [q], opts->seconds, nqs [q] == 1 ? 5 : 2,
                                      state, &p50 [r], &p99 [r]);
        char row [64];
        snprintf (row, sizeof row, "%s nq=%u", what, nqs [q]);
        printf ("  %-9s  %-24s  %8.1f q/s  %10.3f  %10.3f\n", label, row,
                s_median (qps, (size_t) opts->runs), s_median (p50, (size_t) opts->runs),
                s_median (p99, (size_t) opts->runs));
        fflush (stdout);
    }
}

static void
s_bench_split (const s_opts_t *opts)
{
    const size_t rows = opts->quick ? 20000 : 100000;
    char sd [4200], edata [4200], wdata [4200], pdata [4200], mdata [4200];
    snprintf (sd, sizeof sd, "%s/split-nats", opts->tmp);
    snprintf (edata, sizeof edata, "%s/split-embedded", opts->tmp);
    snprintf (wdata, sizeof wdata, "%s/split-writer", opts->tmp);
    snprintf (pdata, sizeof pdata, "%s/split-core", opts->tmp);
    snprintf (mdata, sizeof mdata, "%s/split-meta", opts->tmp);
    char url [64];
    pid_t nats = qv_bench_nats_start (sd, url, sizeof url);
    qv_bench_server_t emb, wri, sea, core, pro, psea, mcore, meta, mpro, msea;
    char *eargs [] = { "--nats", url, NULL };
    char *wargs [] = { "--roles", "proxy,segment-manager,meta,flusher", "--nats", url, NULL };
    char *sargs [] = { "--roles", "searcher", "--nats", url, NULL };
    char *cargs [] = { "--roles", "segment-manager,meta,flusher", "--nats", url, NULL };
    qv_bench_server_start (&emb, opts->quiver, edata, eargs);
    qv_bench_server_start (&wri, opts->quiver, wdata, wargs);
    qv_bench_server_start (&sea, opts->quiver, wdata, sargs);
    //  The writer as two processes: the core (answers proxies only), a proxy in front
    qv_bench_server_launch (&core, opts->quiver, pdata, cargs);
    char *pargs [] = { "--roles", "proxy", "--writer", core.endpoint, "--nats", url, NULL };
    qv_bench_server_start (&pro, opts->quiver, pdata, pargs);   //  --data names the store
    qv_bench_server_start (&psea, opts->quiver, pdata, sargs);
    //  ... with the core in two: the segment manager and the meta process
    char *smargs [] = { "--roles", "segment-manager", "--nats", url, NULL };
    char *margs [] = { "--roles", "meta,flusher", "--nats", url, NULL };
    qv_bench_server_launch (&mcore, opts->quiver, mdata, smargs);
    char *mpargs [] = { "--roles", "proxy", "--writer", mcore.endpoint, "--nats", url, NULL };
    qv_bench_server_start (&mpro, opts->quiver, mdata, mpargs);   //  once the core serves
    qv_bench_server_start (&meta, opts->quiver, mdata, margs);     //  (it made the store)
    qv_bench_server_start (&msea, opts->quiver, mdata, sargs);
    const char *eps [4] = { emb.endpoint, wri.endpoint, pro.endpoint, mpro.endpoint };
    const char *seps [4] = { NULL, sea.endpoint, psea.endpoint, msea.endpoint };
    const char *labels [4] = { "embedded", "split", "proxied", "meta" };
    for (int m = 1; m < 4; m++) {
        int64_t until = qv_clock_msec () + 30000;
        while (s_stat (eps [m], "searchers_ready") < 1 && qv_clock_msec () < until)
            zclock_sleep (50);
        if (s_stat (eps [m], "searchers_ready") < 1)
            qv_bench_die ("%s did not learn of the searcher process within 30 s", eps [m]);
    }

    printf ("\n== e. Split roles: a writer (--roles proxy,segment-manager,meta,flusher) whose "
            "searches go to one searcher\n   process (--roles searcher) (split), the same writer "
            "as a proxy process (--roles proxy) in front\n   of the writer core (--roles "
            "segment-manager,meta,flusher) (proxied), and that core as the segment manager\n"
            "   (--roles segment-manager) and a meta process (--roles meta,flusher) (meta), "
            "beside an embedded\n   server; all with --nats, same machine (median of %d runs)\n",
            opts->runs);
    printf ("   insert: 4 clients, 1,000-row batches of %d-dim rows; search: %zu unflushed "
            "rows, exact scan, k=%d, one\n   client; visibility: one-row inserts, a second "
            "client polls `get` through the same endpoint;\n   strong vs eventually: nq=1 "
            "searches interleaved; then flushed, an HNSW index (M 16, efConstruction 100)\n"
            "   built by the writer and loaded by the searcher process, and searched again "
            "(default ef)\n\n", S_DIM, rows, S_K);
    printf ("  %-9s  %-24s  %12s  %10s  %10s\n", "mode", "measure", "rate", "p50 ms", "p99 ms");
    printf ("  %-9s  %-24s  %12s  %10s  %10s\n", "---------", "------------------------",
            "------------", "----------", "----------");
    for (int m = 0; m < 4; m++) {
        qv_client_t *client = qv_client_new (eps [m]);
        qv_client_set_timeout (client, 600000);
        s_create (client, "ins");
        double rate [16], p50 [16], p99 [16];
        for (int r = 0; r < opts->runs; r++)
            s_insert_run (eps [m], "ins", 4, 1000, opts->seconds, (int64_t) (r + 1) << 48,
                          &rate [r], &p50 [r], &p99 [r]);
        printf ("  %-9s  %-24s  %8.0f r/s  %10.3f  %10.3f\n", labels [m], "insert 4 x 1,000 rows",
                s_median (rate, (size_t) opts->runs), s_median (p50, (size_t) opts->runs),
                s_median (p99, (size_t) opts->runs));
        fflush (stdout);
        s_simple (client, "drop_collection", "ins");
        s_create (client, "srch");
        s_load (eps [m], "srch", rows, 0, 77);
        uint64_t state = 5;
        double warm;
        s_search_run (client, "srch", 1, 0, 3, &state, &warm);
        s_split_search_rows (opts, client, labels [m], "search", &state);
        //  Insert-to-visible through this endpoint, and what `strong` adds to a search
        const char *levels [] = { "strong", "eventually" };
        const int probes = opts->quick ? 200 : 1000;
        double *from_send = malloc (probes * sizeof (double));
        double *from_ack = malloc (probes * sizeof (double));
        float vec [S_DIM];
        uint64_t last_ts = 0;
        int64_t next_id = (int64_t) rows;
        for (int l = 0; l < 2; l++) {
            s_watch_t watch;
            s_visibility_probes (client, eps [m], "srch", levels [l], probes, &state, &next_id,
                                 vec, from_send, from_ack, &last_ts, &watch);
            char what [64];
            snprintf (what, sizeof what, "ack -> visible, %s", levels [l]);
            printf ("  %-9s  %-24s  %12s  %10.3f  %10.3f\n", labels [m], what, "",
                    qv_bench_quantile (from_ack, probes, 0.5), qv_bench_quantile (from_ack, probes, 0.99));
        }
        double *lat [2];
        for (int l = 0; l < 2; l++)
            lat [l] = malloc (probes * sizeof (double));
        for (int i = 0; i < probes; i++)
            for (int l = 0; l < 2; l++)
                lat [l][i] = s_level_search (client, "srch", levels [l], last_ts, &state);
        double strong = qv_bench_quantile (lat [0], probes, 0.5), eventually = qv_bench_quantile (lat [1], probes, 0.5);
        printf ("  %-9s  %-24s  %12s  %10.3f  %10s   (strong %.3f, eventually %.3f)\n", labels [m],
                "strong search adds", "", strong - eventually, "", strong, eventually);
        fflush (stdout);
        for (int l = 0; l < 2; l++)
            free (lat [l]);
        free (from_send);
        free (from_ack);
        //  Flushed and indexed (HNSW): the searcher process loads the writer's index
        //  objects once a manifest names them
        s_simple (client, "flush", "srch");
        s_create_hnsw (client, "srch");
        int64_t t0 = qv_clock_msec ();
        qv_bench_wait_indexed (eps [m], "srch", "vector", 300);
        int64_t built = qv_clock_msec ();
        if (m > 0)
            qv_bench_wait_indexed (seps [m], "srch", "vector", 300);
        int64_t adopted = qv_clock_msec ();
        printf ("  %-9s  %-24s  %8.1f s     (%s)\n", labels [m], "HNSW index ready",
                (double) (adopted - t0) / 1000.0, m == 3 ? "built by the meta process"
                : m > 0 ? "built on the writer" : "built");
        if (m > 0)
            printf ("  %-9s  %-24s  %8.3f s     (after the writer's, from its manifest)\n",
                    labels [m], "loaded by the searcher", (double) (adopted - built) / 1000.0);
        s_search_run (client, "srch", 1, 0, 3, &state, &warm);
        s_split_search_rows (opts, client, labels [m], "search HNSW", &state);
        qv_client_destroy (&client);
    }
    qv_bench_server_stop (&msea, SIGTERM);
    qv_bench_server_stop (&mpro, SIGTERM);
    qv_bench_server_stop (&mcore, SIGTERM);
    qv_bench_server_stop (&meta, SIGTERM);
    qv_bench_server_stop (&psea, SIGTERM);
    qv_bench_server_stop (&pro, SIGTERM);
    qv_bench_server_stop (&core, SIGTERM);
    qv_bench_server_stop (&sea, SIGTERM);
    qv_bench_server_stop (&wri, SIGTERM);
    qv_bench_server_stop (&emb, SIGTERM);
    qv_bench_nats_stop (nats);
    qv_bench_rm_rf (edata);
    qv_bench_rm_rf (wdata);
    qv_bench_rm_rf (pdata);
    qv_bench_rm_rf (mdata);
}

// ---------------------------------------------------------------------------------
//  f, g. What a server option costs: servers that differ only in it, loaded alike,
//  measured in turn in one run (runs alternate between them)

enum { S_CMP_FIGURES = 12, S_CMP_MODES = 4 };

//  Sets the clients' key and token for mode m (the comparison's own).
typedef void (s_mode_fn) (int m, void *arg);

//  The CPU time process pid has used so far, seconds: the sum over its threads of the
//  scheduler's run time (/proc/PID/task/TID/schedstat, nanoseconds).
static double
s_proc_cpu (pid_t pid)
{
    char path [64];
    snprintf (path, sizeof path, "/proc/%d/task", (int) pid);
    DIR *dir = opendir (path);
    if (!dir)
        return 0;
    double sum = 0;
    for (struct dirent *e; (e = readdir (dir)); ) {
        if (e->d_name [0] == '.')
            continue;
        char stat [384];
        snprintf (stat, sizeof stat, "%s/%.256s/schedstat", path, e->d_name);
        FILE *f = fopen (stat, "r");
        unsigned long long ns = 0;
        if (f && fscanf (f, "%llu", &ns) == 1)
            sum += (double) ns / 1e9;
        if (f)
            fclose (f);
    }
    closedir (dir);
    return sum;
}

//  This process's CPU seconds, threads that have ended included (the insert clients'
//  threads are joined before the figure is read, so /proc's task list misses them).
//  Over an insert run it also counts the clients' start (their row pools, the
//  connections and a CURVE handshake) and their end, a small part of a 3 s run.
static double
s_self_cpu (void)
{
    struct rusage ru;
    getrusage (RUSAGE_SELF, &ru);
    return ru.ru_utime.tv_sec + ru.ru_stime.tv_sec
         + (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

//  The CPU time the server process has used so far, seconds.
static double
s_server_cpu (const qv_bench_server_t *srv)
{
    return s_proc_cpu (srv->pid);
}

//  Waits until the server is idle: its CPU time grows by less than 5% of a core over
//  a quarter of a second, at most 20 s (a wait over a second is reported on stderr).
//  Work the server may still do for the rows an insert run left it (flushing them;
//  more rows on a faster server) is then not charged to the searches that follow.
static void
s_wait_idle (const qv_bench_server_t *srv)
{
    int64_t start = qv_clock_msec (), end = start + 20000;
    double cpu = s_server_cpu (srv), cpu0 = cpu;
    while (qv_clock_msec () < end) {
        usleep (250000);
        double now = s_server_cpu (srv);
        if (now - cpu < 0.0125)
            break;
        cpu = now;
    }
    int64_t waited = qv_clock_msec () - start;
    if (waited > 1000)
        fprintf (stderr, "  waited %.1f s for the server on %s to settle after inserts (%.2f s of its CPU)\n",
                 waited / 1000.0, srv->endpoint, s_server_cpu (srv) - cpu0);
}

//  Loads each server alike: collection "bench" with rows flushed rows, "small" with
//  1,000, and "ins", empty, for the insert runs (searches keep their rows).
static void
s_compare_load (qv_bench_server_t *srv, int modes, size_t rows, s_mode_fn *set_mode, void *arg)
{
    for (int m = 0; m < modes; m++) {
        set_mode (m, arg);
        qv_client_t *client = qv_bench_client_new (srv [m].endpoint);
        s_create (client, "bench");
        s_create (client, "small");
        s_create (client, "ins");
        qv_client_destroy (&client);
        s_load (srv [m].endpoint, "bench", rows, 0, 11);
        s_flush (srv [m].endpoint, "bench");
        s_load (srv [m].endpoint, "small", 1000, 0, 13);
        s_flush (srv [m].endpoint, "small");
    }
}

//  The figures s_compare measures, in its order.
static const char *const s_cmp_what [S_CMP_FIGURES] = {
    "insert rows/s (4 clients x 1,000 rows)", "insert p50 ms",
    "server CPU ms per 1,000-row insert", "search queries/s (nq=1, exact, k=10)",
    "search p50 ms (nq=1)", "server CPU us per search (nq=1)",
    "client CPU us per search (nq=1)", "server+client CPU us per search (nq=1)",
    "search queries/s (nq=100)", "search queries/s (nq=1, 1,000 rows)",
    "server+client CPU us/search (1,000 rows)",
    "server+client CPU ms per 1,000-row insert" };

//  Measures the servers in turn, opts->runs times (every other time in reverse order,
//  so that a drift of the machine's load weighs on each alike), and prints the medians
//  side by side with each mode's ratio to mode 0 (ratio [m] heads its column). The
//  CPU figures are a process's CPU time over the run divided by the requests: the
//  server's, and for searches the client's too (this process, whose only work then is
//  the one client and its ZeroMQ I/O threads), and for inserts the four clients'
//  (getrusage), a figure the machine's load moves far less than a rate.
static void
s_compare (const s_opts_t *opts, qv_bench_server_t *srv, int modes, const char *const *names,
           const char *const *ratio, s_mode_fn *set_mode, void *arg,
           double medians [S_CMP_FIGURES][S_CMP_MODES])
{
    printf ("  %-40s", "");
    for (int m = 0; m < modes; m++)
        printf ("  %12s", names [m]);
    for (int m = 1; m < modes; m++)
        printf ("  %7s", ratio [m]);
    printf ("\n  %-40s", "----------------------------------------");
    for (int m = 0; m < modes; m++)
        printf ("  %12s", "------------");
    for (int m = 1; m < modes; m++)
        printf ("  %7s", "-------");
    printf ("\n");
    static double v [S_CMP_FIGURES][S_CMP_MODES][16];
    uint64_t state = 5;
    for (int r = 0; r < opts->runs; r++)
        for (int k = 0; k < modes; k++) {
            int m = r % 2 ? modes - 1 - k : k;      //  every other run in reverse order
            set_mode (m, arg);
            double p99, p50;
            double cpu = s_server_cpu (&srv [m]);
            double inserters = s_self_cpu ();
            int64_t t0 = qv_clock_usec ();
            s_insert_run (srv [m].endpoint, "ins", 4, 1000, opts->seconds,
                          ((int64_t) r + 1) << 40, &v [0][m][r], &v [1][m][r], &p99);
            double secs = (qv_clock_usec () - t0) / 1e6;
            double requests = v [0][m][r] * secs / 1000;
            v [2][m][r] = requests > 0 ? (s_server_cpu (&srv [m]) - cpu) * 1e3 / requests : 0;
            v [11][m][r] = requests > 0
                ? v [2][m][r] + (s_self_cpu () - inserters) * 1e3 / requests : 0;
            s_wait_idle (&srv [m]);
            qv_client_t *client = qv_bench_client_new (srv [m].endpoint);
            qv_client_set_timeout (client, 600000);
            cpu = s_server_cpu (&srv [m]);
            double self = s_proc_cpu (getpid ());     //  this process: the client and its I/O threads
            t0 = qv_clock_usec ();
            v [3][m][r] = s_search_run (client, "bench", 1, opts->seconds, 5, &state, &v [4][m][r]);
            secs = (qv_clock_usec () - t0) / 1e6;
            requests = v [3][m][r] * secs;
            v [5][m][r] = requests > 0 ? (s_server_cpu (&srv [m]) - cpu) * 1e6 / requests : 0;
            v [6][m][r] = requests > 0 ? (s_proc_cpu (getpid ()) - self) * 1e6 / requests : 0;
            v [7][m][r] = v [5][m][r] + v [6][m][r];
            v [8][m][r] = s_search_run (client, "bench", 100, opts->seconds, 2, &state, &p50);
            cpu = s_server_cpu (&srv [m]) + s_proc_cpu (getpid ());
            t0 = qv_clock_usec ();
            v [9][m][r] = s_search_run (client, "small", 1, opts->seconds, 5, &state, &p50);
            requests = v [9][m][r] * (qv_clock_usec () - t0) / 1e6;
            v [10][m][r] = requests > 0
                ? (s_server_cpu (&srv [m]) + s_proc_cpu (getpid ()) - cpu) * 1e6 / requests : 0;
            qv_client_destroy (&client);
        }
    for (int i = 0; i < S_CMP_FIGURES; i++) {
        double x [S_CMP_MODES];
        printf ("  %-40s", s_cmp_what [i]);
        for (int m = 0; m < modes; m++) {
            x [m] = s_median (v [i][m], (size_t) opts->runs);
            medians [i][m] = x [m];
            printf ("  %12.*f", i == 1 || i == 2 || i == 4 || i == 11 ? 3 : 1, x [m]);
        }
        for (int m = 1; m < modes; m++)
            printf ("  %6.3fx", x [0] > 0 ? x [m] / x [0] : 0);
        printf ("\n");
    }
    fflush (stdout);
}

//  f. The encrypted API (CURVE), and CURVE with authentication (--auth, a user's
//  token on every request), against the plain one

//  Calls op with string fields given as name, value pairs ending with NULL; dies on
//  an error.
static void
s_call_pairs (qv_client_t *client, const char *op, ...)
{
    const char *kv [16];
    uint32_t n = 0;
    va_list ap;
    va_start (ap, op);
    for (const char *k; n < 16 && (k = va_arg (ap, const char *)); )
        kv [n++] = k;
    va_end (ap);
    qv_wr_t *w = qv_client_request (client, op, n / 2, NULL);
    for (uint32_t i = 0; i < n; i++)
        qv_wr_str (w, kv [i]);
    qv_doc_t *reply = qv_bench_call (client, &w);
    qv_doc_destroy (&reply);
}

//  Sets the client key and token of mode m (0 plain, 1 CURVE, 2 CURVE + --auth); arg
//  is the server's public key.
static void
s_curve_mode (int m, void *arg)
{
    qv_bench_set_server_key (m ? arg : NULL);
    qv_bench_set_token (m == 2 ? "bench:benchpass1" : NULL);
}

//  With --rounds above 1: each figure's ratio to mode 0 in every round (each round on
//  new server processes, so that what one process happens to get, its memory's
//  placement, its segments' history, weighs on one round only), and their median.
static void
s_print_rounds (const s_opts_t *opts, double medians [][S_CMP_FIGURES][S_CMP_MODES],
                int modes, const char *const *ratio)
{
    if (opts->rounds < 2)
        return;
    printf ("\n  ratios to plain in each of %d rounds (new server processes each round), and "
            "their median\n", opts->rounds);
    for (int i = 0; i < S_CMP_FIGURES; i++) {
        printf ("  %-40s", s_cmp_what [i]);
        for (int m = 1; m < modes; m++) {
            double x [16];
            for (int r = 0; r < opts->rounds; r++)
                x [r] = medians [r][i][0] > 0 ? medians [r][i][m] / medians [r][i][0] : 0;
            printf ("  %s:", ratio [m]);
            for (int r = 0; r < opts->rounds; r++)
                printf (" %.3f", x [r]);
            printf (" (median %.3f)", s_median (x, (size_t) opts->rounds));
        }
        printf ("\n");
    }
    fflush (stdout);
}

static void
s_bench_curve_round (const s_opts_t *opts, int round, const char *key, const char *secret,
                     double medians [S_CMP_FIGURES][S_CMP_MODES])
{
    const size_t rows = opts->quick ? 20000 : 100000;
    enum { MODES = 3 };
    const char *names [MODES] = { "plain", "CURVE", "auth+CURVE" };
    const char *ratio [MODES] = { "", "CURVE", "auth+C" };
    qv_bench_server_t srv [MODES];
    setenv ("QUIVER_ROOT_PASSWORD", "benchroot1", 1);
    for (int m = 0; m < MODES; m++) {
        char data [4200];
        snprintf (data, sizeof data, "%s/curve-%d-%d", opts->tmp, round, m);
        char *extra [] = { "--search-threads", "2", "--curve-secret-key", (char *) secret, "--auth", NULL };
        if (m < 2)
            extra [4] = NULL;
        if (m == 0)
            extra [2] = NULL;
        s_curve_mode (m, (void *) key);
        qv_bench_set_token (m == 2 ? "root:benchroot1" : NULL);
        qv_bench_server_start (&srv [m], opts->quiver, data, extra);
        if (m == 2) {
            //  A user of its own (not root, whose check is a shortcut): a role with
            //  every privilege on every collection
            qv_client_t *client = qv_bench_client_new (srv [m].endpoint);
            s_call_pairs (client, "create_user", "user", "bench", "password", "benchpass1", NULL);
            s_call_pairs (client, "create_role", "role", "all", NULL);
            s_call_pairs (client, "grant_privilege", "role", "all", "collection", "*",
                          "privilege", "*", NULL);
            s_call_pairs (client, "grant_role", "user", "bench", "role", "all", NULL);
            qv_client_destroy (&client);
        }
    }
    unsetenv ("QUIVER_ROOT_PASSWORD");
    s_compare_load (srv, MODES, rows, s_curve_mode, (void *) key);
    printf ("\n== f. The API encrypted with CURVE (--curve-secret-key), and CURVE with --auth (a "
            "user's token,\n   checked on every request), against plain ZeroMQ: three servers, "
            "--search-threads 2,\n   %zu flushed %d-dim rows each; runs alternate between them, "
            "median of %d; round %d of %d\n\n", rows, S_DIM, opts->runs, round + 1, opts->rounds);
    s_compare (opts, srv, MODES, names, ratio, s_curve_mode, (void *) key, medians);
    printf ("  (ratios to plain; issue 13's goal: auth + CURVE at most 10%% slower, i.e. rates at "
            "least 0.90x)\n");
    fflush (stdout);
    s_curve_mode (0, NULL);
    for (int m = 0; m < MODES; m++) {
        qv_bench_server_stop (&srv [m], SIGTERM);
        qv_bench_rm_rf (srv [m].data);
    }
}

static void
s_bench_curve (const s_opts_t *opts)
{
    char keyfile [4200], secret [4300];
    snprintf (keyfile, sizeof keyfile, "%s/curve.key", opts->tmp);
    snprintf (secret, sizeof secret, "%s_secret", keyfile);
    zcert_t *cert = zcert_new ();
    if (!cert || zcert_save (cert, keyfile))
        qv_bench_die ("cannot write the key pair %s", keyfile);
    char key [41];
    snprintf (key, sizeof key, "%s", zcert_public_txt (cert));
    zcert_destroy (&cert);
    static double medians [16][S_CMP_FIGURES][S_CMP_MODES];
    for (int round = 0; round < opts->rounds; round++)
        s_bench_curve_round (opts, round, key, secret, medians [round]);
    const char *ratio [3] = { "", "CURVE", "auth+C" };
    s_print_rounds (opts, medians, 3, ratio);
}

//  g. Metrics collection (--metrics), scraped every second as Prometheus would,
//  against a server without it

typedef struct {
    char url [96];
    atomic_bool stop;
    int scrapes, failed;
    size_t bytes;                   //  the last scrape's body
    double ms [4096];               //  each scrape's time
} s_scraper_t;

static size_t
s_scrape_take (char *data, size_t size, size_t n, void *arg)
{
    (void) data;
    *(size_t *) arg += size * n;
    return size * n;
}

//  Gets /metrics once a second until told to stop.
static void *
s_scraper (void *arg)
{
    s_scraper_t *s = arg;
    CURL *curl = curl_easy_init ();
    if (!curl)
        qv_bench_die ("cannot make a curl handle");
    curl_easy_setopt (curl, CURLOPT_URL, s->url);
    curl_easy_setopt (curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt (curl, CURLOPT_TIMEOUT_MS, 10000L);
    curl_easy_setopt (curl, CURLOPT_WRITEFUNCTION, s_scrape_take);
    while (!atomic_load (&s->stop)) {
        size_t bytes = 0;
        curl_easy_setopt (curl, CURLOPT_WRITEDATA, &bytes);
        int64_t t0 = qv_clock_usec ();
        long status = 0;
        if (curl_easy_perform (curl) == CURLE_OK)
            curl_easy_getinfo (curl, CURLINFO_RESPONSE_CODE, &status);
        if (status == 200) {
            s->bytes = bytes;
            if (s->scrapes < 4096)
                s->ms [s->scrapes] = (qv_clock_usec () - t0) / 1000.0;
            s->scrapes++;
        }
        else
            s->failed++;
        while (!atomic_load (&s->stop) && qv_clock_usec () < t0 + 1000000)
            usleep (20000);
    }
    curl_easy_cleanup (curl);
    return NULL;
}

static void
s_metrics_mode (int m, void *arg)
{
    (void) m; (void) arg;
}

static void
s_bench_metrics (const s_opts_t *opts)
{
    const size_t rows = opts->quick ? 20000 : 100000;
    enum { MODES = 2 };
    const char *names [MODES] = { "no metrics", "--metrics" };
    const char *ratio [MODES] = { "", "on/off" };
    qv_bench_server_t srv [MODES];
    s_scraper_t *scraper = calloc (1, sizeof *scraper);
    char listen [64];
    snprintf (listen, sizeof listen, "127.0.0.1:%d", qv_bench_free_port ());
    snprintf (scraper->url, sizeof scraper->url, "http://%s/metrics", listen);
    for (int m = 0; m < MODES; m++) {
        char data [4200];
        snprintf (data, sizeof data, "%s/metrics-%d", opts->tmp, m);
        char *extra [] = { "--search-threads", "2", "--metrics", listen, NULL };
        if (m == 0)
            extra [2] = NULL;
        qv_bench_server_start (&srv [m], opts->quiver, data, extra);
    }
    s_compare_load (srv, MODES, rows, s_metrics_mode, NULL);
    curl_global_init (CURL_GLOBAL_DEFAULT);
    pthread_t thread;
    pthread_create (&thread, NULL, s_scraper, scraper);
    //  What the endpoint and its scrapes cost on their own: both servers idle for the
    //  same seconds, one of them scraped; the difference in CPU time is the scrapes'
    const double idle = opts->quick ? 5 : 15;
    int scrapes0 = scraper->scrapes;
    double idle0 [MODES];
    for (int m = 0; m < MODES; m++)
        idle0 [m] = s_server_cpu (&srv [m]);
    usleep ((useconds_t) (idle * 1e6));
    double idle_cpu [MODES];
    for (int m = 0; m < MODES; m++)
        idle_cpu [m] = s_server_cpu (&srv [m]) - idle0 [m];
    int idle_scrapes = scraper->scrapes - scrapes0;
    printf ("\n== g. Metrics collection (--metrics, %s scraped once a second throughout) against "
            "none:\n   two servers, --search-threads 2, %zu flushed %d-dim rows each; runs "
            "alternate between them,\n   median of %d\n\n", scraper->url, rows, S_DIM, opts->runs);
    double medians [S_CMP_FIGURES][S_CMP_MODES];
    s_compare (opts, srv, MODES, names, ratio, s_metrics_mode, NULL, medians);
    atomic_store (&scraper->stop, true);
    pthread_join (thread, NULL);
    int n = scraper->scrapes < 4096 ? scraper->scrapes : 4096;
    printf ("  (ratio metrics on/off; issue 13's goal: at most 2%% slower, i.e. rates at least "
            "0.98x)\n  %d scrapes (%d failed), %zu bytes each, median %.2f ms\n",
            scraper->scrapes, scraper->failed, scraper->bytes,
            n ? qv_bench_quantile (scraper->ms, (size_t) n, 0.5) : 0.0);
    printf ("  idle for %.0f s, side by side: %.1f ms CPU without metrics, %.1f ms with %d "
            "scrapes:\n  %.3f ms CPU per scrape, %.3f%% of one core at one scrape a second\n",
            idle, idle_cpu [0] * 1e3, idle_cpu [1] * 1e3, idle_scrapes,
            idle_scrapes ? (idle_cpu [1] - idle_cpu [0]) * 1e3 / idle_scrapes : 0.0,
            (idle_cpu [1] - idle_cpu [0]) / idle * 100);
    fflush (stdout);
    free (scraper);
    for (int m = 0; m < MODES; m++) {
        qv_bench_server_stop (&srv [m], SIGTERM);
        qv_bench_rm_rf (srv [m].data);
    }
}

static void
s_usage (FILE *out)
{
    fprintf (out,
        "Usage: qvbench [--quick] [--only insert|search|recovery|visibility|split|curve|metrics] [--runs N]\n"
        "               [--seconds S] [--split] [--rounds N]\n"
        "\n"
        "Starts its own `quiver serve` (the binary next to qvbench) on a temporary data\n"
        "directory and a free loopback port, and prints:\n"
        "  a. insert throughput with 1, 4, 16 clients and batches of 1 and 1,000 rows;\n"
        "  b. memory read bandwidth (1 GiB, 1 and 2 threads), the exact-scan kernels called\n"
        "     in this process, and exact search through the server at nq=1 and nq=100 with\n"
        "     --search-threads 1 and 2 (100k and 1M rows; --quick: 20k and 100k);\n"
        "  c. restart-to-serving time after kill -9 with an unflushed tail, with a large\n"
        "     flushed data set, and with both (--quick: smaller sizes);\n"
        "  d. insert-to-visible latency (one-row inserts, a second client polling `get` at\n"
        "     each consistency level) and search latency at each level (50k rows; --quick: 10k);\n"
        "  e. with --split: insert (4 clients x 1,000 rows) and search (nq=1, 100; exact, 100k\n"
        "     rows; --quick: 20k) rates and latencies through a writer whose searches go to a\n"
        "     searcher process, through that writer as a proxy process in front of the\n"
        "     writer core, through a proxy in front of the segment manager with a meta\n"
        "     process, and on an embedded server, all with --nats;\n"
        "  f. insert and search rates with the API encrypted (CURVE) and plain, side by side,\n"
        "     with the server's and the client's CPU per request (100k rows; --quick: 20k);\n"
        "  g. the same with --metrics (scraped once a second) and without.\n"
        "Options:\n"
        "  --quick        smaller data sets and shorter runs\n"
        "  --only PART    run one part: insert, search, recovery, visibility, split, curve or metrics\n"
        "  --runs N       runs per figure, the median is printed (default 3)\n"
        "  --rounds N     part f: N rounds, each on three new server processes, and the\n"
        "                 median of each ratio over the rounds (default 1; 1..16)\n"
        "  --seconds S    length of one timed run (default 3, --quick 1)\n"
        "  --tmp DIR      where to make the temporary data directory (default $TMPDIR or /tmp)\n"
        "  --split        part d also on a searcher process: starts nats-server (on PATH),\n"
        "                 the server with --nats, and `quiver serve --roles searcher` on its\n"
        "                 data; the probes and searches run against both, the same run;\n"
        "                 and part e\n");
}

int
main (int argc, char *argv [])
{
    s_opts_t opts = { .runs = 3, .rounds = 1 };
    double seconds = 0;
    const char *tmpdir = getenv ("TMPDIR");
    static struct option longopts [] = {
        { "quick", no_argument, 0, 'q' }, { "only", required_argument, 0, 'o' },
        { "runs", required_argument, 0, 'r' }, { "seconds", required_argument, 0, 's' },
        { "tmp", required_argument, 0, 't' }, { "help", no_argument, 0, 'h' },
        { "split", no_argument, 0, 'S' }, { "rounds", required_argument, 0, 'R' },
        { 0, 0, 0, 0 }
    };
    int c;
    while ((c = getopt_long (argc, argv, "h", longopts, NULL)) != -1)
        switch (c) {
            case 'q': opts.quick = true; break;
            case 'o': opts.only = optarg; break;
            case 'r': opts.runs = atoi (optarg); break;
            case 's': seconds = atof (optarg); break;
            case 't': tmpdir = optarg; break;
            case 'S': opts.split = true; break;
            case 'R': opts.rounds = atoi (optarg); break;
            case 'h': s_usage (stdout); return 0;
            default: s_usage (stderr); return 2;
        }
    if (optind < argc || opts.runs < 1 || opts.runs > 16 || seconds < 0
    ||  opts.rounds < 1 || opts.rounds > 16
    ||  (opts.only && !streq (opts.only, "insert") && !streq (opts.only, "search")
         && !streq (opts.only, "recovery") && !streq (opts.only, "visibility")
         && !streq (opts.only, "split") && !streq (opts.only, "curve")
         && !streq (opts.only, "metrics"))) {
        s_usage (stderr);
        return 2;
    }
    opts.seconds = seconds > 0 ? seconds : opts.quick ? 1.0 : 3.0;

    char self [4096];
    ssize_t len = readlink ("/proc/self/exe", self, sizeof self - 1);
    if (len <= 0)
        qv_bench_die ("cannot read /proc/self/exe: %s", strerror (errno));
    self [len] = 0;
    snprintf (opts.quiver, sizeof opts.quiver, "%s/quiver", dirname (self));
    if (access (opts.quiver, X_OK))
        qv_bench_die ("no quiver binary next to qvbench: %s", opts.quiver);
    snprintf (opts.tmp, sizeof opts.tmp, "%s/qvbench-XXXXXX", tmpdir && *tmpdir ? tmpdir : "/tmp");
    if (!mkdtemp (opts.tmp))
        qv_bench_die ("cannot make a temporary directory %s: %s", opts.tmp, strerror (errno));

    zsys_init ();
    //  The clients stand for applications on other machines: each of the (up to 4)
    //  client threads gets a ZeroMQ I/O thread, so that CURVE's encryption on the
    //  client side is not funnelled through one (czmq's default)
    if (!getenv ("ZSYS_IO_THREADS"))
        zsys_set_io_threads (4);
    zsys_set_linger (0);
    zsys_handler_set (NULL);
    qv_bench_init ("qvbench");

    char model [256] = "unknown";
    FILE *f = fopen ("/proc/cpuinfo", "r");
    char line [512];
    while (f && fgets (line, sizeof line, f))
        if (strncmp (line, "model name", 10) == 0) {
            char *p = strchr (line, ':');
            snprintf (model, sizeof model, "%.200s", p ? p + 2 : line);
            model [strcspn (model, "\n")] = 0;
            break;
        }
    if (f)
        fclose (f);
    printf ("qvbench: %s, %ld cores online, CPU %s, distance kernels %s%s\n", opts.quiver,
            sysconf (_SC_NPROCESSORS_ONLN), model, qv_dist_kernels ()->isa, opts.quick ? ", --quick" : "");
    printf ("temporary data in %s\n", opts.tmp);
    fflush (stdout);

    if (!opts.only || streq (opts.only, "insert"))
        s_bench_insert (&opts);
    if (!opts.only || streq (opts.only, "search")) {
        double bw [3];
        s_bench_kernels (&opts, bw, 1000000);
        s_bench_search (&opts, bw);
    }
    if (!opts.only || streq (opts.only, "recovery"))
        s_bench_recovery (&opts);
    if (!opts.only || streq (opts.only, "visibility"))
        s_bench_visibility (&opts);
    if (opts.split && (!opts.only || streq (opts.only, "split")))
        s_bench_split (&opts);
    if (!opts.only || streq (opts.only, "curve"))
        s_bench_curve (&opts);
    if (!opts.only || streq (opts.only, "metrics"))
        s_bench_metrics (&opts);
    qv_bench_rm_rf (opts.tmp);
    return 0;
}
