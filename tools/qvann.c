//  qvann: ANN benchmark of Quiver's indexes (and hnswlib beside them when built with
//  -DQV_PEERS=ON) on .fvecs/.ivecs data; also the exact-scan bandwidth figure and the
//  filtered-search crossover that sets QV_HNSW_FILTER_EXACT_FACTOR.
//
//  qvann --base B.fvecs --query Q.fvecs [--gt G.ivecs] [--metric L2|IP|COSINE]
//        [--M 16] [--efc 200] [--ef 16,32,64,128,256] [--k 10] [--runs 5]
//        [--threads 2] [--no-peer] [--build-runs N] [--limit ROWS] [--types HNSW,HNSW_SQ8]
//        (a type spelled TYPE/b reads the data's vectors instead of a copy: borrowed)
//  qvann --synth ROWS [--dim D] [--nq Q] [...]      the same on generated clustered data
//  qvann --scan ROWS [--dim 128] [--runs 5]          exact scan vs memory bandwidth
//  qvann --scan-batch ROWS [--nq 100] [--threads 2]  batched exact scan, blocked vs per query
//  qvann --filter-sweep --base B.fvecs --query Q.fvecs [--ef 64]
//  qvann --codes --base B.fvecs --query Q.fvecs      SQ8 against 4-bit PQ as walk codes
//  qvann ... --service [--batch 100] [--window 8]     also through `quiver serve` (below)
//
//  Every figure is measured in this process, ours and the peer's interleaved run by
//  run, and the median of --runs runs is printed. Index memory is the heap growth
//  (glibc mallinfo2) across the build, less the n x dim x 4 bytes of vectors, the same
//  way for both libraries.
#include "qv_index.h"
#include "qv_flat.h"
#include "qv_hnsw.h"
#include "qv_vecs.h"
#include "qv_blockscan.h"
#include "qv_isq8.h"
#include "qv_kmeans.h"
#include "qv_topk.h"

#include <malloc.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#if defined(__x86_64__)
#   include <immintrin.h>
#endif

#ifdef QV_HAVE_HNSWLIB
#   include "qv_peer_hnswlib.h"
#endif
#include "qv_bench_service.h"

#include <czmq.h>
#include <libgen.h>
#include <unistd.h>

typedef struct {
    const char *base_path, *query_path, *gt_path;
    qv_metric_t metric;
    uint32_t M, efc, k, runs, threads;
    uint32_t build_runs;        //  builds to time (default: runs)
    uint32_t limit;             //  use the first limit base rows (exact truth recomputed)
    uint32_t efs [16], nef;
    uint64_t scan_rows;
    uint32_t dim;
    uint32_t synth, synth_nq;   //  --synth ROWS: generated clustered data, --nq queries
    uint64_t scan_batch_rows;   //  --scan-batch ROWS: blocked vs per-query exact scan
    const char *types [4];      //  --types: Quiver index types to measure
    int ntypes;
    int peer, filter_sweep;
    int codes;                  //  --codes: SQ8 against 4-bit PQ walk codes
    int service;                //  --service: the same indexes through quiver serve
    uint32_t batch, window;     //  --batch: queries per request, --window: requests in flight
} s_opts_t;

typedef struct {
    float *base, *queries;
    int32_t *gt;
    uint32_t n, nq, dim, gt_k;
} s_data_t;

//  A searcher under test: ours or the peer's.
typedef int (s_search_fn) (void *self, const float *query, uint32_t k, uint32_t ef, uint32_t *ids);

static int
s_quiver_search (void *self, const float *query, uint32_t k, uint32_t ef, uint32_t *ids)
{
    float d [1024];
    qv_search_params_t params = { .ef = ef };
    return qv_index_search (self, query, k, &params, ids, d);
}

#ifdef QV_HAVE_HNSWLIB
static int
s_hnswlib_search (void *self, const float *query, uint32_t k, uint32_t ef, uint32_t *ids)
{
    (void) ef;                  //  set once per series with qv_peer_hnswlib_set_ef
    return qv_peer_hnswlib_search (self, query, k, ids);
}
#endif

static size_t
s_heap_bytes (void)
{
    struct mallinfo2 mi = mallinfo2 ();
    return mi.uordblks + mi.hblkhd;
}

static int
s_cmp_double (const void *a, const void *b)
{
    double x = *(const double *) a, y = *(const double *) b;
    return x < y? -1: x > y;
}

static double
s_median (double *v, uint32_t n)
{
    qsort (v, n, sizeof *v, s_cmp_double);
    return n % 2? v [n / 2]: (v [n / 2 - 1] + v [n / 2]) / 2;
}

//  --------------------------------------------------------------------------
//  Timed query loops

typedef struct {
    s_search_fn *fn;
    void *self;
    const s_data_t *data;
    uint32_t k, ef, first, stride, reps;
    double cpu_s;               //  CPU time the thread spent
} s_loop_t;

static double
s_thread_cpu (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_THREAD_CPUTIME_ID, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void *
s_loop (void *arg)
{
    s_loop_t *l = arg;
    uint32_t ids [1024];
    double c0 = s_thread_cpu ();
    for (uint32_t r = 0; r < l->reps; r++)
        for (uint32_t q = l->first; q < l->data->nq; q += l->stride)
            l->fn (l->self, l->data->queries + (size_t) q * l->data->dim, l->k, l->ef, ids);
    l->cpu_s = s_thread_cpu () - c0;
    return NULL;
}

//  Queries per second with threads threads sharing reps passes over the queries, by
//  the wall clock; *per_cpu_s gets queries per CPU second of the searching threads
//  (the figure a busy shared machine disturbs least).
static double
s_qps_cpu (s_search_fn *fn, void *self, const s_data_t *data, uint32_t k, uint32_t ef,
           uint32_t threads, uint32_t reps, double *per_cpu_s)
{
    s_loop_t loops [8];
    pthread_t tids [8];
    int64_t t0 = qv_clock_usec ();
    for (uint32_t t = 0; t < threads; t++) {
        loops [t] = (s_loop_t) { fn, self, data, k, ef, t, threads, reps, 0 };
        if (t)
            pthread_create (&tids [t], NULL, s_loop, &loops [t]);
    }
    s_loop (&loops [0]);
    for (uint32_t t = 1; t < threads; t++)
        pthread_join (tids [t], NULL);
    double secs = (qv_clock_usec () - t0) / 1e6;
    double cpu = 0;
    for (uint32_t t = 0; t < threads; t++)
        cpu += loops [t].cpu_s;
    if (per_cpu_s)
        *per_cpu_s = (double) reps * data->nq / cpu;
    return (double) reps * data->nq / secs;
}

static double
s_qps (s_search_fn *fn, void *self, const s_data_t *data, uint32_t k, uint32_t ef,
       uint32_t threads, uint32_t reps)
{
    return s_qps_cpu (fn, self, data, k, ef, threads, reps, NULL);
}

//  Repetitions so one timed pass lasts about 0.2 s at this ef.
static uint32_t
s_reps_for (s_search_fn *fn, void *self, const s_data_t *data, uint32_t k, uint32_t ef)
{
    double qps = s_qps (fn, self, data, k, ef, 1, 1);
    double reps = 0.2 * qps / data->nq;
    return reps < 1? 1: (uint32_t) reps;
}

static double
s_recall (s_search_fn *fn, void *self, const s_data_t *data, uint32_t k, uint32_t ef)
{
    uint32_t ids [1024];
    double sum = 0;
    for (uint32_t q = 0; q < data->nq; q++) {
        int got = fn (self, data->queries + (size_t) q * data->dim, k, ef, ids);
        const int32_t *want = data->gt + (size_t) q * data->gt_k;
        int hits = 0;
        for (uint32_t i = 0; i < k; i++)
            for (int j = 0; j < got; j++)
                if (ids [j] == (uint32_t) want [i]) {
                    hits++;
                    break;
                }
        sum += (double) hits / k;
    }
    return sum / data->nq;
}

//  --------------------------------------------------------------------------
//  Data

//  A standard normal deviate (Box-Muller) from seed.
static float
s_gauss (unsigned *seed)
{
    double u = (rand_r (seed) + 1.0) / ((double) RAND_MAX + 2.0);
    double v = (rand_r (seed) + 1.0) / ((double) RAND_MAX + 2.0);
    return (float) (sqrt (-2 * log (u)) * cos (2 * M_PI * v));
}

//  Clustered synthetic data for --synth: n base rows and nq queries of dim floats, drawn
//  around n / 100 random centres (each point is its centre plus noise as wide as the
//  centres' spread, so clusters overlap and the set is about as hard as glove-100 for
//  a graph; then scaled by a random length in [0.5, 2) so that cosine and L2
//  orders differ). Queries come from the same distribution; ground truth is computed
//  exactly afterwards, as for --limit.
static void
s_synth (uint32_t n, uint32_t nq, uint32_t dim, s_data_t *data)
{
    unsigned seed = 12345;
    uint32_t ncent = n / 100 > 1? n / 100: 1;
    float *cent = malloc ((size_t) ncent * dim * sizeof (float));
    for (size_t i = 0; i < (size_t) ncent * dim; i++)
        cent [i] = s_gauss (&seed);
    data->dim = dim;
    data->n = n;
    data->nq = nq;
    data->base = malloc ((size_t) n * dim * sizeof (float));
    data->queries = malloc ((size_t) nq * dim * sizeof (float));
    for (uint32_t r = 0; r < n + nq; r++) {
        float *v = r < n? data->base + (size_t) r * dim: data->queries + (size_t) (r - n) * dim;
        const float *c = cent + (size_t) (rand_r (&seed) % ncent) * dim;
        float scale = 0.5f + 1.5f * (float) rand_r (&seed) / RAND_MAX;
        for (uint32_t i = 0; i < dim; i++)
            v [i] = scale * (c [i] + s_gauss (&seed));
    }
    free (cent);
}

static int
s_load (const s_opts_t *o, s_data_t *data)
{
    uint32_t qdim;
    if (o->synth) {
        s_synth (o->synth, o->synth_nq, o->dim, data);
        qdim = data->dim;
    }
    else {
        data->base = qv_vecs_read (o->base_path, o->limit, &data->dim, &data->n);
        data->queries = data->base? qv_vecs_read (o->query_path, 0, &qdim, &data->nq): NULL;
    }
    if (!data->base || !data->queries) {
        fprintf (stderr, "qvann: %s\n", qv_err_msg ());
        return -1;
    }
    if (qdim != data->dim) {
        fprintf (stderr, "qvann: queries have dim %u, base %u\n", qdim, data->dim);
        return -1;
    }
    if (o->gt_path && !o->limit && !o->synth) {
        uint32_t gn;
        data->gt = qv_vecs_read (o->gt_path, 0, &data->gt_k, &gn);
        if (!data->gt || gn != data->nq || data->gt_k < o->k) {
            fprintf (stderr, "qvann: bad ground truth %s\n", o->gt_path);
            return -1;
        }
    }
    else {
        //  Exact answers by FLAT
        qv_index_t *flat = qv_index_new ("FLAT", o->metric, data->dim, NULL);
        if (!flat || qv_index_build (flat, data->base, data->n))
            return -1;
        data->gt_k = o->k;
        data->gt = malloc ((size_t) data->nq * o->k * sizeof (int32_t));
        uint32_t ids [1024];
        float d [1024];
        for (uint32_t q = 0; q < data->nq; q++) {
            int got = qv_index_search (flat, data->queries + (size_t) q * data->dim, o->k, NULL, ids, d);
            for (uint32_t i = 0; i < o->k; i++)
                data->gt [(size_t) q * o->k + i] = (int) i < got? (int32_t) ids [i]: -1;
        }
        qv_index_destroy (&flat);
    }
    return 0;
}

//  --------------------------------------------------------------------------
//  The ANN table

typedef struct {
    const char *name;
    s_search_fn *fn;
    void *self;
    double build_s, mem_mb;
} s_contender_t;

#define S_MAX_WHO 4

//  One row of the table: a contender at one ef.
typedef struct {
    double recall, qps1, cpu1, qps2;
} s_row_t;

static void
    s_service (const s_opts_t *o, const s_data_t *data, s_contender_t *who, int ntypes);

static int
s_ann (const s_opts_t *o)
{
    s_data_t data = { 0 };
    if (s_load (o, &data))
        return 1;
    printf ("# data: %s%u base x %u dim, %u queries, metric %s, k %u; runs %u (medians)\n",
            o->synth? "synthetic clustered (exact truth computed here), ": "", data.n, data.dim, data.nq,
            qv_metric_name (o->metric), o->k, o->runs);
#ifndef QV_PEER_ARCH
#   define QV_PEER_ARCH "-march=native"
#endif
    printf ("# CPU: avx2 %s, avx512 %s; kernels run: float %s, HNSW_SQ8 codes %s, hnswlib -O3 %s\n",
            qv_dist_cpu_has ("avx2")? "yes": "no", qv_dist_cpu_has ("avx512")? "yes": "no",
            qv_dist_kernels ()->isa, qv_isq8_isa (), QV_PEER_ARCH);
    size_t vec_bytes = (size_t) data.n * data.dim * sizeof (float);

    s_contender_t who [S_MAX_WHO];
    int nwho = 0;
    qv_index_t *index [S_MAX_WHO] = { NULL };
    int ntypes = 0;

    //  Builds, alternated run by run; the last build of each is kept for searching
    double builds [S_MAX_WHO][16], mem [S_MAX_WHO] = { 0 };
#ifdef QV_HAVE_HNSWLIB
    qv_peer_hnswlib_t *peer = NULL;
#endif
    uint32_t build_runs = o->build_runs? o->build_runs: o->runs;
    for (uint32_t r = 0; r < build_runs; r++) {
        ntypes = 0;
        for (int t = 0; t < o->ntypes; t++, ntypes++) {
            qv_index_destroy (&index [t]);
            //  TYPE/b: the index reads data.base (borrowed vectors, qv_index.h)
            char type [32];
            snprintf (type, sizeof type, "%s", o->types [t]);
            char *slash = strchr (type, '/');
            if (slash)
                *slash = 0;
            qv_index_params_t params = { .M = o->M, .ef_construction = o->efc, .threads = o->threads,
                                         .borrow = slash && !strcmp (slash + 1, "b") };
            size_t before = s_heap_bytes ();
            int64_t t0 = qv_clock_usec ();
            index [t] = qv_index_new (type, o->metric, data.dim, &params);
            if (!index [t] || qv_index_build (index [t], data.base, data.n)) {
                fprintf (stderr, "qvann: %s build failed: %s\n", o->types [t], qv_err_msg ());
                return 1;
            }
            builds [t][r] = (qv_clock_usec () - t0) / 1e6;
            mem [t] = ((double) (s_heap_bytes () - before)
                       - (qv_index_borrows (index [t])? 0: (double) vec_bytes)) / 1048576.0;
        }
#ifdef QV_HAVE_HNSWLIB
        if (o->peer) {
            qv_peer_hnswlib_destroy (&peer);
            size_t before = s_heap_bytes ();
            int64_t t0 = qv_clock_usec ();
            peer = qv_peer_hnswlib_new (data.dim, data.n, o->M, o->efc, (int) o->metric);
            if (!peer || qv_peer_hnswlib_build (peer, data.base, data.n, (int) o->threads)) {
                fprintf (stderr, "qvann: hnswlib build failed\n");
                return 1;
            }
            builds [ntypes][r] = (qv_clock_usec () - t0) / 1e6;
            mem [ntypes] = ((double) (s_heap_bytes () - before) - (double) vec_bytes) / 1048576.0;
        }
#endif
    }
    for (int t = 0; t < ntypes; t++) {
        who [nwho] = (s_contender_t) { o->types [t], s_quiver_search, index [t],
                                       s_median (builds [t], build_runs), mem [t] };
        nwho++;
        printf ("# %s index reports %.1f MB total, %.1f MB of it float vectors\n", o->types [t],
                qv_index_memory_bytes (index [t]) / 1048576.0, qv_index_vector_bytes (index [t]) / 1048576.0);
    }
    int peer_at = -1;
#ifdef QV_HAVE_HNSWLIB
    if (o->peer) {
        peer_at = nwho;
        who [nwho] = (s_contender_t) { "hnswlib", s_hnswlib_search, peer, s_median (builds [ntypes], build_runs),
                                       mem [ntypes] };
        nwho++;
    }
#endif

    s_row_t rows [S_MAX_WHO][16];
    printf ("%-9s %3s %4s %4s %9s %10s %10s %10s %9s %8s %9s %9s\n", "index", "M", "efC", "ef",
            "recall@10", "QPS_1t", "QPS_1t_cpu", "QPS_2t", "build_s", "mem_MB", "QPS_1t_x", "cpu_x");
    for (uint32_t e = 0; e < o->nef; e++) {
        uint32_t ef = o->efs [e];
        double q1 [S_MAX_WHO][16], c1 [S_MAX_WHO][16], q2 [S_MAX_WHO][16];
        uint32_t reps [S_MAX_WHO];
        for (int w = 0; w < nwho; w++) {
#ifdef QV_HAVE_HNSWLIB
            if (who [w].fn == s_hnswlib_search)
                qv_peer_hnswlib_set_ef (who [w].self, ef);
#endif
            rows [w][e].recall = s_recall (who [w].fn, who [w].self, &data, o->k, ef);
            reps [w] = s_reps_for (who [w].fn, who [w].self, &data, o->k, ef);
        }
        for (uint32_t r = 0; r < o->runs; r++)
            for (int w = 0; w < nwho; w++) {
#ifdef QV_HAVE_HNSWLIB
                if (who [w].fn == s_hnswlib_search)
                    qv_peer_hnswlib_set_ef (who [w].self, ef);
#endif
                q1 [w][r] = s_qps_cpu (who [w].fn, who [w].self, &data, o->k, ef, 1, reps [w], &c1 [w][r]);
                q2 [w][r] = s_qps (who [w].fn, who [w].self, &data, o->k, ef, o->threads, reps [w]);
            }
        for (int w = 0; w < nwho; w++) {
            rows [w][e].qps1 = s_median (q1 [w], o->runs);
            rows [w][e].cpu1 = s_median (c1 [w], o->runs);
            rows [w][e].qps2 = s_median (q2 [w], o->runs);
        }
        for (int w = 0; w < nwho; w++) {
            char ratio [16] = "", cratio [16] = "";
            if (peer_at >= 0 && w != peer_at) {
                snprintf (ratio, sizeof ratio, "%.2f", rows [w][e].qps1 / rows [peer_at][e].qps1);
                snprintf (cratio, sizeof cratio, "%.2f", rows [w][e].cpu1 / rows [peer_at][e].cpu1);
            }
            printf ("%-9s %3u %4u %4u %9.4f %10.0f %10.0f %10.0f %9.3f %8.2f %9s %9s\n", who [w].name,
                    o->M, o->efc, ef, rows [w][e].recall, rows [w][e].qps1, rows [w][e].cpu1,
                    rows [w][e].qps2, who [w].build_s, who [w].mem_mb, ratio, cratio);
        }
        fflush (stdout);
    }
    printf ("# QPS_1t: one thread, one query at a time, wall clock; QPS_1t_cpu: the same per CPU second\n"
            "# of the searching thread; QPS_2t: %u threads, wall clock; build_s: %u threads, wall clock;\n"
            "# mem_MB: heap growth over the build less the float vectors (graph + codes); _x: / hnswlib at the same ef\n",
            o->threads, o->threads);

    //  At each recall target: every contender's row at the smallest ef that reaches it
    //  (q/s falls with ef; the smallest ef is less noisy than the largest q/s), and the
    //  ratio to hnswlib's
    double targets [] = { 0.90, 0.95 };
    printf ("\n%-7s %-9s %4s %9s %10s %10s %10s\n", "target", "index", "ef", "recall@10", "QPS_1t", "QPS_1t_cpu", "cpu_x");
    for (int t = 0; t < 2; t++) {
        int best [S_MAX_WHO];
        for (int w = 0; w < nwho; w++) {
            best [w] = -1;
            for (uint32_t e = 0; e < o->nef; e++)
                if (rows [w][e].recall >= targets [t]
                &&  (best [w] < 0 || o->efs [e] < o->efs [best [w]]))
                    best [w] = (int) e;
        }
        for (int w = 0; w < nwho; w++) {
            if (best [w] < 0) {
                printf ("%-7.2f %-9s %4s %9s %10s %10s %10s\n", targets [t], who [w].name, "-", "not reached", "", "", "");
                continue;
            }
            const s_row_t *row = &rows [w][best [w]];
            char x [16] = "";
            if (peer_at >= 0 && w != peer_at && best [peer_at] >= 0)
                snprintf (x, sizeof x, "%.2f", row->cpu1 / rows [peer_at][best [peer_at]].cpu1);
            printf ("%-7.2f %-9s %4u %9.4f %10.0f %10.0f %10s\n", targets [t], who [w].name,
                    o->efs [best [w]], row->recall, row->qps1, row->cpu1, x);
        }
    }
    printf ("# each index's smallest ef with recall@10 at or above the target; cpu_x: QPS_1t_cpu / hnswlib's\n");
    if (o->service)
        s_service (o, &data, who, ntypes);
    for (int t = 0; t < ntypes; t++)
        qv_index_destroy (&index [t]);
#ifdef QV_HAVE_HNSWLIB
    qv_peer_hnswlib_destroy (&peer);
#endif
    free (data.base);
    free (data.queries);
    free (data.gt);
    return 0;
}

//  --------------------------------------------------------------------------
//  The same indexes through the service

//  For each Quiver index type: `quiver serve` (found next to this program) with
//  --search-threads o->threads serves the same rows, built with the same parameters.
//  At each ef, run by run alternately: the library in this process with o->threads
//  threads against the service answering requests of o->batch queries with o->window
//  in flight; then one thread, one query at a time, against the service's median
//  latency for requests of one query. The client runs on the same cores.
static void
s_service (const s_opts_t *o, const s_data_t *data, s_contender_t *who, int ntypes)
{
    zsys_init ();
    zsys_set_linger (0);
    zsys_handler_set (NULL);
    qv_bench_init ("qvann");
    char self_path [4096], quiver [4200], tmp [4200];
    ssize_t len = readlink ("/proc/self/exe", self_path, sizeof self_path - 1);
    if (len <= 0)
        qv_bench_die ("cannot read /proc/self/exe");
    self_path [len] = 0;
    snprintf (quiver, sizeof quiver, "%s/quiver", dirname (self_path));
    if (access (quiver, X_OK))
        qv_bench_die ("--service: no quiver binary next to qvann: %s", quiver);
    const char *tmpdir = getenv ("TMPDIR");
    snprintf (tmp, sizeof tmp, "%s/qvann-XXXXXX", tmpdir && *tmpdir? tmpdir: "/tmp");
    if (!mkdtemp (tmp))
        qv_bench_die ("cannot make a temporary directory %s", tmp);
    int64_t *ids = malloc ((size_t) data->nq * o->k * sizeof (int64_t));
    printf ("\n# through the service: quiver serve --search-threads %u on this machine, %u queries per "
            "request, %u requests in flight, one client thread on the same cores; lib = this process, "
            "%u threads\n", o->threads, o->batch, o->window, o->threads);
    printf ("%-9s %4s %9s %9s %10s %10s %6s %8s %8s %6s %8s %8s %8s %8s\n", "index", "ef", "lib_rec",
            "svc_rec", "lib_QPS", "svc_QPS", "svc_x", "lib_cpu", "svc_cpu", "cpu_x", "lib_us", "svc_p50",
            "svc_p99", "added");
    double echo = 0, ping = 0;
    for (int t = 0; t < ntypes; t++) {
        bool flat = strcmp (who [t].name, "FLAT") == 0;
        qv_bench_service_t *svc = qv_bench_service_new (quiver, tmp, (int) o->threads,
                                                        qv_metric_name (o->metric), who [t].name,
                                                        o->M, o->efc, data->base, data->n, data->dim);
        if (t == 0) {
            echo = qv_bench_zmq_echo_us ((size_t) data->dim * 4, 1.0);
            ping = qv_bench_service_ping_us (svc, 1.0);
        }
        for (uint32_t e = 0; e < (flat? 1: o->nef); e++) {
            uint32_t ef = flat? 0: o->efs [e];
            double lib_rec = s_recall (who [t].fn, who [t].self, data, o->k, ef);
            qv_bench_service_qps (svc, data->queries, data->nq, o->batch, o->window, o->k, ef, 0, ids);
            double hits = 0;
            for (uint32_t q = 0; q < data->nq; q++)
                for (uint32_t i = 0; i < o->k; i++)
                    for (uint32_t j = 0; j < o->k; j++)
                        if (ids [(size_t) q * o->k + j] == data->gt [(size_t) q * data->gt_k + i]) {
                            hits++;
                            break;
                        }
            double svc_rec = hits / ((double) data->nq * o->k);
            uint32_t reps = s_reps_for (who [t].fn, who [t].self, data, o->k, ef);
            double lq [16], sq [16], lc [16], sc [16], lus [16], p50 [16], p99 [16];
            for (uint32_t r = 0; r < o->runs; r++) {
                double per_cpu_s;
                lq [r] = s_qps_cpu (who [t].fn, who [t].self, data, o->k, ef, o->threads, reps, &per_cpu_s);
                lc [r] = 1e6 / per_cpu_s;
                double c0 = qv_bench_service_cpu_s (svc);
                int64_t t0 = qv_clock_usec ();
                sq [r] = qv_bench_service_qps (svc, data->queries, data->nq, o->batch, o->window,
                                               o->k, ef, 1.0, NULL);
                double queries = sq [r] * (double) (qv_clock_usec () - t0) / 1e6;
                sc [r] = (qv_bench_service_cpu_s (svc) - c0) * 1e6 / queries;
                lus [r] = 1e6 / s_qps (who [t].fn, who [t].self, data, o->k, ef, 1, reps);
                qv_bench_service_latency (svc, data->queries, data->nq, o->k, ef, 0.5, &p50 [r], &p99 [r]);
            }
            double mlq = s_median (lq, o->runs), msq = s_median (sq, o->runs);
            double mlc = s_median (lc, o->runs), msc = s_median (sc, o->runs);
            double mlus = s_median (lus, o->runs), mp50 = s_median (p50, o->runs);
            printf ("%-9s %4u %9.4f %9.4f %10.0f %10.0f %6.2f %8.1f %8.1f %6.2f %8.1f %8.1f %8.1f %8.1f\n",
                    who [t].name, ef, lib_rec, svc_rec, mlq, msq, msq / mlq, mlc, msc, mlc / msc, mlus, mp50,
                    s_median (p99, o->runs), mp50 - mlus);
            fflush (stdout);
        }
        qv_bench_service_destroy (&svc);
    }
    printf ("# lib_QPS: the index in this process, %u threads, one query per call; svc_QPS: through the\n"
            "# service (goal: svc_x >= 0.90); lib_cpu / svc_cpu: CPU microseconds per query of the searching\n"
            "# threads / of the whole server process (the client's excluded); lib_us: one thread's time per\n"
            "# query; svc_p50/p99: microseconds per request of one query; added = svc_p50 - lib_us (goal: <= 60);\n"
            "# recall@%u against exact truth\n", o->threads, o->k);
    printf ("# floors on this machine, p50 of one request at a time: a bare ZeroMQ echo over loopback TCP "
            "with a %u-byte request %.1f us; ping through quiver serve %.1f us\n", data->dim * 4, echo, ping);
    free (ids);
    qv_bench_rm_rf (tmp);
}

//  --------------------------------------------------------------------------
//  Exact scan against memory bandwidth

#if defined(__x86_64__)
__attribute__ ((target ("avx2"))) static float
s_read_all (const float *p, size_t n)
{
    __m256 s0 = _mm256_setzero_ps (), s1 = _mm256_setzero_ps ();
    __m256 s2 = _mm256_setzero_ps (), s3 = _mm256_setzero_ps ();
    for (size_t i = 0; i + 32 <= n; i += 32) {
        s0 = _mm256_add_ps (s0, _mm256_load_ps (p + i));
        s1 = _mm256_add_ps (s1, _mm256_load_ps (p + i + 8));
        s2 = _mm256_add_ps (s2, _mm256_load_ps (p + i + 16));
        s3 = _mm256_add_ps (s3, _mm256_load_ps (p + i + 24));
    }
    float out [8];
    _mm256_storeu_ps (out, _mm256_add_ps (_mm256_add_ps (s0, s1), _mm256_add_ps (s2, s3)));
    return out [0] + out [7];
}
#else
static float
s_read_all (const float *p, size_t n)
{
    float s = 0;
    for (size_t i = 0; i < n; i++)
        s += p [i];
    return s;
}
#endif

static int
s_scan (const s_opts_t *o)
{
    uint32_t n = (uint32_t) o->scan_rows, dim = o->dim;
    size_t floats = (size_t) n * dim;
    float *base = aligned_alloc (64, floats * sizeof (float));
    if (!base)
        return 1;
    unsigned seed = 1;
    for (size_t i = 0; i < floats; i++)
        base [i] = (float) rand_r (&seed) / RAND_MAX;
    qv_index_t *flat = qv_index_new ("FLAT", QV_METRIC_L2, dim, NULL);
    if (!flat || qv_index_build (flat, base, n))
        return 1;
    float *query = base + (size_t) (n / 2) * dim;
    double bytes = (double) floats * sizeof (float);
    double read_gbs [16], scan_gbs [16], batch_gbs [16];
    float sink = 0;
    float *out = malloc ((size_t) n * sizeof (float));
    for (uint32_t r = 0; r < o->runs; r++) {
        int64_t t0 = qv_clock_usec ();
        sink += s_read_all (base, floats);
        int64_t t1 = qv_clock_usec ();
        uint32_t ids [10];
        float d [10];
        qv_index_search (flat, query, 10, NULL, ids, d);
        int64_t t2 = qv_clock_usec ();
        qv_dist_kernels ()->l2sq_batch (query, base, n, dim, out);
        int64_t t3 = qv_clock_usec ();
        read_gbs [r] = bytes / ((t1 - t0) / 1e6) / 1e9;
        scan_gbs [r] = bytes / ((t2 - t1) / 1e6) / 1e9;
        batch_gbs [r] = bytes / ((t3 - t2) / 1e6) / 1e9;
    }
    double read = s_median (read_gbs, o->runs), scan = s_median (scan_gbs, o->runs);
    double batch = s_median (batch_gbs, o->runs);
    printf ("# exact scan, %u x %u float32 (%.0f MB), one query, one thread, kernels %s, medians of %u\n",
            n, dim, bytes / 1e6, qv_dist_kernels ()->isa, o->runs);
    printf ("%-34s %8s %10s\n", "what", "GB/s", "of_read");
    printf ("%-34s %8.2f %9.0f%%\n", "read-only AVX2 sum (bandwidth)", read, 100.0);
    printf ("%-34s %8.2f %9.0f%%\n", "l2sq batch kernel alone", batch, 100 * batch / read);
    printf ("%-34s %8.2f %9.0f%%\n", "FLAT search k=10 (kernel + top-k)", scan, 100 * scan / read);
    printf ("# (checksum %g)\n", sink + out [0]);
    free (out);
    qv_index_destroy (&flat);
    free (base);
    return 0;
}

//  --------------------------------------------------------------------------
//  Batched exact scan: nq queries over n rows, per-query kernel scan (the path every
//  batch took before qv_blockscan) against the blocked GEMM-form scan, on 1 and on
//  --threads threads (rows split between them as the searcher's parts split them).

typedef struct {
    const float *base, *queries;
    uint32_t from, to, nq, dim, k;
    int blocked;
    qv_topk_t **tops;
} s_bscan_t;

static void *
s_bscan (void *arg)
{
    s_bscan_t *b = arg;
    for (uint32_t q = 0; q < b->nq; q++)
        qv_topk_reset (b->tops [q]);
    if (b->blocked) {
        qv_blockscan_t scan = { .metric = QV_METRIC_L2, .dim = b->dim, .rows = b->base,
                                .queries = b->queries, .nq = b->nq };
        qv_blockscan_run (&scan, b->from, b->to, b->tops);
    }
    else
        for (uint32_t q = 0; q < b->nq; q++)
            qv_flat_scan (b->queries + (size_t) q * b->dim, b->base + (size_t) b->from * b->dim,
                          b->to - b->from, b->dim, QV_METRIC_L2, NULL, b->tops [q]);
    return NULL;
}

//  Seconds for one batch on threads threads; results of the first part in tops0.
static double
s_bscan_time (const float *base, const float *queries, uint32_t n, uint32_t nq, uint32_t dim,
              uint32_t k, int blocked, uint32_t threads, qv_topk_t ***tops)
{
    s_bscan_t parts [8];
    pthread_t tids [8];
    int64_t t0 = qv_clock_usec ();
    for (uint32_t t = 0; t < threads; t++) {
        parts [t] = (s_bscan_t) { base, queries, (uint32_t) ((uint64_t) n * t / threads),
                                  (uint32_t) ((uint64_t) n * (t + 1) / threads), nq, dim, k,
                                  blocked, tops [t] };
        if (t)
            pthread_create (&tids [t], NULL, s_bscan, &parts [t]);
    }
    s_bscan (&parts [0]);
    for (uint32_t t = 1; t < threads; t++)
        pthread_join (tids [t], NULL);
    return (qv_clock_usec () - t0) / 1e6;
}

static int
s_scan_batch (const s_opts_t *o)
{
    uint32_t n = (uint32_t) o->scan_batch_rows, dim = o->dim, nq = o->synth_nq, k = o->k;
    float *base = aligned_alloc (64, ((size_t) n * dim * sizeof (float) + 63) / 64 * 64);
    float *queries = malloc ((size_t) nq * dim * sizeof (float));
    if (!base || !queries)
        return 1;
    unsigned seed = 3;
    for (size_t i = 0; i < (size_t) n * dim; i++)
        base [i] = (float) rand_r (&seed) / RAND_MAX;
    for (size_t i = 0; i < (size_t) nq * dim; i++)
        queries [i] = (float) rand_r (&seed) / RAND_MAX;
    qv_topk_t **tops [2][8];
    for (int b = 0; b < 2; b++)
        for (uint32_t t = 0; t < o->threads; t++) {
            tops [b][t] = calloc (nq, sizeof (qv_topk_t *));
            for (uint32_t q = 0; q < nq; q++)
                tops [b][t][q] = qv_topk_new (k);
        }
    printf ("# batched exact scan, synthetic uniform %u x %u (%.0f MB), nq %u, k %u, L2; "
            "kernels %s; blocked: %s, OpenBLAS threads 1; medians of %u\n",
            n, dim, (double) n * dim * 4 / 1e6, nq, k, qv_dist_kernels ()->isa,
            qv_blockscan_backend (), o->runs);
    printf ("%-30s %8s %10s %10s\n", "path", "threads", "QPS", "x_per_query");
    for (uint32_t threads = 1; threads <= o->threads; threads = threads == 1 && o->threads > 1? o->threads: threads + 99) {
        double secs [2][16];
        for (uint32_t r = 0; r < o->runs; r++)
            for (int b = 0; b < 2; b++)
                secs [b][r] = s_bscan_time (base, queries, n, nq, dim, k, b, threads, tops [b]);
        //  Same answers: the first part's top-k of both paths
        uint32_t mismatch = 0;
        for (uint32_t t = 0; t < threads; t++)
            for (uint32_t q = 0; q < nq; q++) {
                int64_t ia [1024], ib [1024];
                uint32_t na = qv_topk_extract (tops [0][t][q], ia, NULL);
                uint32_t nb = qv_topk_extract (tops [1][t][q], ib, NULL);
                for (uint32_t i = 0; i < na; i++)       //  qv_flat_scan numbers from the part's start
                    ia [i] += (int64_t) ((uint64_t) n * t / threads);
                mismatch += na != nb || memcmp (ia, ib, na * sizeof (int64_t)) != 0;
            }
        double per = s_median (secs [0], o->runs), blk = s_median (secs [1], o->runs);
        printf ("%-30s %8u %10.1f %10s\n", "per-query kernel scan", threads, nq / per, "1.00");
        char x [16];
        snprintf (x, sizeof x, "%.2f", per / blk);
        printf ("%-30s %8u %10.1f %10s\n", "blocked sgemm scan", threads, nq / blk, x);
        if (mismatch)
            printf ("# %u query parts differ between the two paths (ties?)\n", mismatch);
    }
    free (base);
    free (queries);
    return 0;
}

//  --------------------------------------------------------------------------
//  Filtered search: graph walk against exact scan of the allowed rows

static int
s_filter_sweep (const s_opts_t *o)
{
    s_data_t data = { 0 };
    s_opts_t o2 = *o;
    if (s_load (&o2, &data))
        return 1;
    qv_index_params_t params = { .M = o->M, .ef_construction = o->efc, .threads = o->threads };
    qv_index_t *index = qv_index_new ("HNSW", o->metric, data.dim, &params);
    qv_index_t *flat = qv_index_new ("FLAT", o->metric, data.dim, NULL);
    if (!index || qv_index_build (index, data.base, data.n) || qv_index_build (flat, data.base, data.n))
        return 1;
    uint32_t ef = o->nef? o->efs [0]: 64;
    double fractions [] = { 0.5, 0.2, 0.1, 0.05, 0.03, 0.02, 0.01, 0.005, 0.002 };
    printf ("# filtered search on %u rows, ef %u, k %u: HNSW walk vs exact scan of allowed rows\n",
            data.n, ef, o->k);
    printf ("%9s %8s %12s %12s %12s %8s\n", "allowed", "rows", "walk_us", "exact_us", "walk_recall", "faster");
    for (size_t f = 0; f < sizeof fractions / sizeof fractions [0]; f++) {
        roaring_bitmap_t *bm = roaring_bitmap_create ();
        unsigned seed = 77;
        for (uint32_t i = 0; i < data.n; i++)
            if ((double) rand_r (&seed) / RAND_MAX < fractions [f])
                roaring_bitmap_add (bm, i);
        qv_search_params_t sp = { .ef = ef, .allowed = bm };
        double us [2][16];
        double recall = 0;
        for (uint32_t r = 0; r < o->runs; r++)
            for (int mode = 0; mode < 2; mode++) {
                qv_hnsw_set_filter_exact_factor (index, mode? 1e30: 0.0);
                uint32_t ids [1024], want [1024];
                float d [1024];
                int64_t t0 = qv_clock_usec ();
                for (uint32_t q = 0; q < data.nq; q++)
                    qv_index_search (index, data.queries + (size_t) q * data.dim, o->k, &sp, ids, d);
                us [mode][r] = (double) (qv_clock_usec () - t0) / data.nq;
                if (r == 0 && mode == 0)
                    for (uint32_t q = 0; q < data.nq; q++) {
                        const float *query = data.queries + (size_t) q * data.dim;
                        int got = qv_index_search (index, query, o->k, &sp, ids, d);
                        int want_n = qv_index_search (flat, query, o->k, &sp, want, d);
                        int hits = 0;
                        for (int i = 0; i < want_n; i++)
                            for (int j = 0; j < got; j++)
                                hits += ids [j] == want [i];
                        recall += want_n? (double) hits / want_n: 1;
                    }
            }
        double walk = s_median (us [0], o->runs), exact = s_median (us [1], o->runs);
        printf ("%9.3f %8llu %12.1f %12.1f %12.4f %8s\n", fractions [f],
                (unsigned long long) roaring_bitmap_get_cardinality (bm), walk, exact,
                recall / data.nq, walk < exact? "walk": "exact");
        roaring_bitmap_free (bm);
    }
    qv_index_destroy (&index);
    qv_index_destroy (&flat);
    free (data.base);
    free (data.queries);
    free (data.gt);
    return 0;
}

//  --------------------------------------------------------------------------
//  Walk codes compared: SQ8 (what HNSW_SQ8 walks on) against 4-bit PQ

//  Normalizes n vectors of dim in place (COSINE: the codes of both kinds are learnt on
//  unit vectors, as HNSW_SQ8 does).
static void
s_normalize (float *x, size_t n, uint32_t dim)
{
    for (size_t i = 0; i < n; i++) {
        float *v = x + i * dim;
        double s = 0;
        for (uint32_t d = 0; d < dim; d++)
            s += (double) v [d] * v [d];
        float inv = s > 0? (float) (1 / sqrt (s)): 0;
        for (uint32_t d = 0; d < dim; d++)
            v [d] *= inv;
    }
}

//  How many of a query's true top k are among the best R of dist [0..n): for each R in
//  rs, hits [r] grows by that count.
static void
s_code_hits (const float *dist, uint32_t n, const int32_t *truth, uint32_t k,
             const uint32_t *rs, int nr, double *hits)
{
    qv_topk_t *top = qv_topk_new (rs [nr - 1]);
    for (uint32_t i = 0; i < n; i++)
        qv_topk_push (top, dist [i], i);
    int64_t ids [1024];
    float scores [1024];
    uint32_t got = qv_topk_extract (top, ids, scores);
    for (int r = 0; r < nr; r++)
        for (uint32_t t = 0; t < k; t++)
            for (uint32_t j = 0; j < rs [r] && j < got; j++)
                if (ids [j] == truth [t]) {
                    hits [r]++;
                    break;
                }
    qv_topk_destroy (&top);
}

//  For SQ8 (qv_isq8.h) and PQ with 16 centroids per pair of dimensions (4-bit codes,
//  the fast-scan layout's unit), on the same data: bytes per vector, the recall@k of
//  re-ranking the best R by code distance (exhaustively, so the codes alone are
//  judged, not a walk), and the cost of one distance at random nodes as a graph walk
//  pays it (SQ8: the walk's own kernel; PQ4: one table lookup per pair, the per-vector
//  form a walk can use unless neighbour codes are stored in blocks of 32).
static int
s_codes (const s_opts_t *o)
{
    s_data_t data = { 0 };
    if (s_load (o, &data))
        return 1;
    uint32_t n = data.n, dim = data.dim, k = o->k;
    uint32_t nq = data.nq < 200? data.nq: 200;
    if (dim % 2) {
        fprintf (stderr, "qvann: --codes needs an even dim\n");
        return 1;
    }
    if (o->metric == QV_METRIC_COSINE) {
        s_normalize (data.base, n, dim);
        s_normalize (data.queries, data.nq, dim);
    }
    //  SQ8
    uint32_t cdim = qv_isq8_cdim (dim);
    float *vmin = malloc (dim * sizeof (float)), step;
    uint8_t *sq = aligned_alloc (64, (size_t) n * cdim);
    int16_t *q16 = aligned_alloc (64, (size_t) cdim * 2);
    if (qv_isq8_train (data.base, n, dim, vmin, &step))
        return 1;
    qv_isq8_encode (vmin, step, data.base, n, dim, sq);
    //  PQ4: m pairs, 16 centroids each
    uint32_t m = dim / 2;
    float *cent = malloc ((size_t) m * 16 * 2 * sizeof (float));
    float *sub = malloc ((size_t) n * 2 * sizeof (float));
    uint32_t *label = malloc ((size_t) n * sizeof (uint32_t));
    uint8_t *pq = malloc ((size_t) n * m);
    qv_kmeans_params_t kp;
    qv_kmeans_params_default (&kp);
    kp.nthreads = (int) o->threads;
    for (uint32_t j = 0; j < m; j++) {
        for (uint32_t i = 0; i < n; i++)
            memcpy (sub + (size_t) i * 2, data.base + (size_t) i * dim + 2 * j, 2 * sizeof (float));
        if (qv_kmeans_train (sub, n, 2, 16, &kp, cent + (size_t) j * 32)
        ||  qv_kmeans_assign (cent + (size_t) j * 32, 16, 2, sub, n, 1, label, NULL))
            return 1;
        for (uint32_t i = 0; i < n; i++)
            pq [(size_t) i * m + j] = (uint8_t) label [i];
    }
    free (sub);
    free (label);
    //  Recall of the codes' best R
    uint32_t rs [] = { 10, 20, 40, 80, 160 };
    int nr = 5;
    double hits [2][5] = { { 0 } };
    float *dist = malloc ((size_t) n * sizeof (float));
    float *lut = malloc ((size_t) m * 16 * sizeof (float));
    const char *isa = qv_isq8_isa ();
    int32_t (*qc) (const int16_t *, const uint8_t *, uint32_t) =
        strncmp (isa, "avx512", 6) == 0? qv_isq8_l2_qc_avx512:
        strcmp (isa, "avx2") == 0? qv_isq8_l2_qc_avx2: qv_isq8_l2_qc_serial;
    isa = strncmp (isa, "avx512", 6) == 0? "int16 AVX-512BW": strcmp (isa, "avx2") == 0? "int16 AVX2": "serial";
    for (uint32_t q = 0; q < nq; q++) {
        const float *query = data.queries + (size_t) q * dim;
        const int32_t *truth = data.gt + (size_t) q * data.gt_k;
        qv_isq8_query (vmin, step, query, dim, q16);
        for (uint32_t i = 0; i < n; i++)
            dist [i] = (float) qc (q16, sq + (size_t) i * cdim, cdim);
        s_code_hits (dist, n, truth, k, rs, nr, hits [0]);
        for (uint32_t j = 0; j < m; j++)
            for (uint32_t c = 0; c < 16; c++) {
                const float *ce = cent + (size_t) j * 32 + c * 2;
                float a = query [2 * j] - ce [0], b = query [2 * j + 1] - ce [1];
                lut [j * 16 + c] = a * a + b * b;
            }
        for (uint32_t i = 0; i < n; i++) {
            const uint8_t *code = pq + (size_t) i * m;
            float d = 0;
            for (uint32_t j = 0; j < m; j++)
                d += lut [j * 16 + code [j]];
            dist [i] = d;
        }
        s_code_hits (dist, n, truth, k, rs, nr, hits [1]);
    }
    //  Cost per distance at random nodes (a walk's access pattern), 2M distances each
    uint32_t draws = 2000000;
    uint32_t *ids = malloc ((size_t) draws * sizeof (uint32_t));
    unsigned seed = 9;
    for (uint32_t i = 0; i < draws; i++)
        ids [i] = (uint32_t) rand_r (&seed) % n;
    double ns [2];
    volatile float sink = 0;
    qv_isq8_query (vmin, step, data.queries, dim, q16);
    double t0 = s_thread_cpu ();
    int64_t acc = 0;
    for (uint32_t i = 0; i < draws; i++)
        acc += qc (q16, sq + (size_t) ids [i] * cdim, cdim);
    ns [0] = (s_thread_cpu () - t0) * 1e9 / draws;
    t0 = s_thread_cpu ();
    float facc = 0;
    for (uint32_t i = 0; i < draws; i++) {
        const uint8_t *code = pq + (size_t) ids [i] * m;
        float d = 0;
        for (uint32_t j = 0; j < m; j++)
            d += lut [j * 16 + code [j]];
        facc += d;
    }
    ns [1] = (s_thread_cpu () - t0) * 1e9 / draws;
    sink = facc + (float) acc;
    (void) sink;
    printf ("# walk codes on %u x %u (%s), %u queries, recall@%u of re-ranking the codes' best R\n"
            "# (exhaustive: the codes judged alone); ns per distance at random nodes, one thread,\n"
            "# SQ8 kernel %s; PQ4 one table lookup per dimension pair (bytes as stored packed, two codes\n"
            "# a byte; the timing reads one code a byte, which favours PQ4)\n",
            n, dim, qv_metric_name (o->metric), nq, k, isa);
    printf ("%-18s %9s %8s %8s %8s %8s %8s %10s\n", "codes", "bytes/vec", "R=10", "R=20", "R=40",
            "R=80", "R=160", "ns/dist");
    const char *names [2] = { "SQ8", "PQ4 (dim/2 x 16)" };
    uint32_t bytes [2] = { dim, m / 2 };
    for (int c = 0; c < 2; c++) {
        printf ("%-18s %9u", names [c], bytes [c]);
        for (int r = 0; r < nr; r++)
            printf (" %8.4f", hits [c][r] / ((double) nq * k));
        printf (" %10.1f\n", ns [c]);
    }
    free (ids);
    free (dist);
    free (lut);
    free (cent);
    free (pq);
    free (sq);
    free (q16);
    free (vmin);
    free (data.base);
    free (data.queries);
    free (data.gt);
    return 0;
}

//  --------------------------------------------------------------------------

static void
s_usage (void)
{
    fprintf (stderr,
        "usage: qvann --base B.fvecs --query Q.fvecs [--gt G.ivecs] [--metric L2|IP|COSINE]\n"
        "             [--M 16] [--efc 200] [--ef 16,32,64,128,256] [--k 10] [--runs 5]\n"
        "             [--threads 2] [--no-peer] [--build-runs N] [--limit ROWS]\n"
        "             [--types HNSW,HNSW_SQ8]   Quiver index types to measure (up to 3)\n"
        "       qvann --synth ROWS [--dim 100] [--nq 1000] [--metric COSINE] [same options]\n"
        "             generated clustered data (ROWS / 100 centres), exact ground truth computed here\n"
        "       qvann --scan ROWS [--dim 128] [--runs 5]\n"
        "       qvann --scan-batch ROWS [--dim 128] [--nq 1000] [--k 10] [--threads 2] [--runs 5]\n"
        "             batched exact scan: per-query kernel scan vs blocked sgemm scan\n"
        "       qvann --filter-sweep --base B.fvecs --query Q.fvecs [--ef 64]\n"
        "       qvann --codes (--base B.fvecs --query Q.fvecs [--gt G.ivecs] | --synth ROWS) [--metric M]\n"
        "             SQ8 against 4-bit PQ codes: recall of re-ranking the codes' best R, ns per distance\n"
        "  --service [--batch 100] [--window 8]   (with --base or --synth) also serve the same rows with\n"
        "             `quiver serve` next to qvann and print its q/s and latency beside this process's\n");
}

int
main (int argc, char **argv)
{
    s_opts_t o = { .metric = QV_METRIC_L2, .M = 16, .efc = 200, .k = 10, .runs = 5,
                   .threads = 2, .dim = 128, .peer = 1, .synth_nq = 1000, .batch = 100, .window = 8,
                   .types = { "HNSW", "HNSW_SQ8" }, .ntypes = 2,
                   .efs = { 16, 32, 64, 128, 256 }, .nef = 5 };
    for (int i = 1; i < argc; i++) {
        const char *a = argv [i];
        const char *v = i + 1 < argc? argv [i + 1]: NULL;
        if (strcmp (a, "--help") == 0 || strcmp (a, "-h") == 0) { s_usage (); return 0; }
        if (strcmp (a, "--no-peer") == 0) { o.peer = 0; continue; }
        if (strcmp (a, "--filter-sweep") == 0) { o.filter_sweep = 1; continue; }
        if (strcmp (a, "--codes") == 0) { o.codes = 1; continue; }
        if (strcmp (a, "--service") == 0) { o.service = 1; continue; }
        if (!v) { s_usage (); return 2; }
        i++;
        if (strcmp (a, "--base") == 0) o.base_path = v;
        else if (strcmp (a, "--query") == 0) o.query_path = v;
        else if (strcmp (a, "--gt") == 0) o.gt_path = v;
        else if (strcmp (a, "--metric") == 0) {
            int m = qv_metric_parse (v);
            if (m < 0) { s_usage (); return 2; }
            o.metric = (qv_metric_t) m;
        }
        else if (strcmp (a, "--M") == 0) o.M = (uint32_t) atoi (v);
        else if (strcmp (a, "--efc") == 0) o.efc = (uint32_t) atoi (v);
        else if (strcmp (a, "--k") == 0) o.k = (uint32_t) atoi (v);
        else if (strcmp (a, "--runs") == 0) o.runs = (uint32_t) atoi (v);
        else if (strcmp (a, "--threads") == 0) o.threads = (uint32_t) atoi (v);
        else if (strcmp (a, "--build-runs") == 0) o.build_runs = (uint32_t) atoi (v);
        else if (strcmp (a, "--limit") == 0) o.limit = (uint32_t) atoi (v);
        else if (strcmp (a, "--scan") == 0) o.scan_rows = strtoull (v, NULL, 10);
        else if (strcmp (a, "--types") == 0) {
            o.ntypes = 0;
            char *copy = strdup (v), *save = NULL;
            for (char *t = strtok_r (copy, ",", &save); t && o.ntypes < 3; t = strtok_r (NULL, ",", &save))
                o.types [o.ntypes++] = t;       //  copy kept for the run
        }
        else if (strcmp (a, "--scan-batch") == 0) o.scan_batch_rows = strtoull (v, NULL, 10);
        else if (strcmp (a, "--dim") == 0) o.dim = (uint32_t) atoi (v);
        else if (strcmp (a, "--batch") == 0) o.batch = (uint32_t) atoi (v);
        else if (strcmp (a, "--window") == 0) o.window = (uint32_t) atoi (v);
        else if (strcmp (a, "--synth") == 0) o.synth = (uint32_t) atoi (v);
        else if (strcmp (a, "--nq") == 0) o.synth_nq = (uint32_t) atoi (v);
        else if (strcmp (a, "--ef") == 0) {
            o.nef = 0;
            char *copy = strdup (v), *save = NULL;
            for (char *t = strtok_r (copy, ",", &save); t && o.nef < 16; t = strtok_r (NULL, ",", &save))
                o.efs [o.nef++] = (uint32_t) atoi (t);
            free (copy);
        }
        else { s_usage (); return 2; }
    }
    //  A value out of range is named, then the usage
    const char *bad = o.batch < 1 || o.batch > 1024 ? "--batch must be 1..1024"
                    : o.window < 1 || o.window > 64 ? "--window must be 1..64"
                    : o.runs < 1 || o.runs > 16 ? "--runs must be 1..16"
                    : o.build_runs > 16 ? "--build-runs must be 0..16"
                    : o.threads < 1 || o.threads > 8 ? "--threads must be 1..8"
                    : o.k < 1 || o.k > 1024 ? "--k must be 1..1024"
                    : NULL;
    if (!bad && !o.scan_rows && !o.scan_batch_rows) {
        if (o.synth && !o.synth_nq)
            bad = "--nq must be at least 1";
        else
        if (o.synth && (o.dim < 1 || o.dim > 4096))
            bad = "--dim must be 1..4096";
        else
        if (!o.synth && (!o.base_path || !o.query_path))
            bad = "give --base and --query, or --synth ROWS";
    }
    if (bad) {
        fprintf (stderr, "qvann: %s\n", bad);
        s_usage ();
        return 2;
    }
    if (o.scan_rows)
        return s_scan (&o);
    if (o.scan_batch_rows)
        return s_scan_batch (&o);
    if (o.filter_sweep)
        return s_filter_sweep (&o);
    if (o.codes)
        return s_codes (&o);
#ifndef QV_HAVE_HNSWLIB
    if (o.peer)
        fprintf (stderr, "qvann: built without -DQV_PEERS=ON: no hnswlib column\n");
    o.peer = 0;
#endif
    return s_ann (&o);
}
