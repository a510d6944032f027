//  qvfbench: filtered search through a Quiver server it starts itself: exact scan and
//  HNSW, filters `x < T` of selectivity 100% .. 0.1%, queries/s and recall@10 against
//  the filtered ground truth computed here. Prints one table.
//
//  qvfbench [--base B.fvecs --query Q.fvecs | --fashion[=DIR]] [--nq N] [--limit ROWS]
//           [--runs 3] [--seconds 2] [--quick] [--tmp DIR]
//
//  DESIGN
//  Data: the base vectors with ids 0..n-1 and an int64 column x = a hash of the id
//  mod 100,000, uniform, so `x < T` allows T / 100,000 of the rows. The same rows go
//  into two collections of one server: `flat` (no index: exact search) and `hnsw`
//  (HNSW M=16, efConstruction=200, built after a flush; describe_index is polled until
//  it says finished). The ground truth of every filter is computed here by brute
//  force in double precision over the allowed rows; recall@10 counts a returned row
//  as a hit when it is allowed and no farther than the 10th true neighbour (so ties
//  at the 10th distance do not count as misses), out of min (10, allowed rows).
//  Every variant (collection x ef x filter) is measured once per run, all variants in
//  the same run one after the other (odd runs in reverse order), so machine noise
//  hits them alike; the table shows the median of the runs. Queries/s are from one
//  client, one request at a time: nq=1 cycles through the queries, nq=100 sends them
//  100 per request. The server is `quiver serve` found next to this program, started
//  on a temporary data directory and a free loopback port and stopped by pid. The
//  server helpers are the ones of tools/qvbench.c (each tool is one file). This is a
//  benchmark, never a test: it checks no threshold, it prints (and says so when a
//  reply looks wrong: a row the filter excludes, too few rows, a distance unlike the
//  one computed here).
#include "qv_bench.h"
#include "qv_client.h"
#include "qv_rc.h"
#include "qv_vecs.h"

#include <czmq.h>
#include <ftw.h>
#include <getopt.h>
#include <libgen.h>
#include <math.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>

#define S_K 10
#define S_XMOD 100000               //  x is in [0, S_XMOD)
#define S_NSEL 5
#define S_NEF 2
#define S_NQ_BATCH 100              //  queries per request in the batched figure
#define S_RUNS_MAX 16

//  Filters x < S_SEL_T [s]: 100%, 50%, 10%, 1%, 0.1% of the rows.
static const int64_t S_SEL_T [S_NSEL] = { 100000, 50000, 10000, 1000, 100 };
static const uint32_t S_EF [S_NEF] = { 64, 128 };

//  Options of this run.
typedef struct {
    const char *base_path;
    const char *query_path;
    uint32_t nq;                    //  queries used (the first nq of the file)
    uint32_t limit;                 //  base rows used (the first limit; 0: all)
    int runs;                       //  runs per figure (median)
    double seconds;                 //  length of one timed run
    bool quick;
    char quiver [4096];             //  path of the quiver binary
    char tmp [4096];                //  temporary directory of this run
} s_opts_t;

//  The data set and its filtered ground truth.
typedef struct {
    float *base;                    //  n x dim
    float *queries;                 //  nq x dim
    int64_t *x;                     //  the filter column, n values
    uint32_t n, nq, dim;
    uint32_t allowed [S_NSEL];      //  rows with x < S_SEL_T [s]
    uint32_t gt_n [S_NSEL];         //  min (S_K, allowed)
    int64_t *gt_id [S_NSEL];        //  nq x S_K, best first
    double *gt_d [S_NSEL];          //  nq x S_K squared L2
} s_data_t;

//  One measured line of the table: a collection searched with or without a filter.
typedef struct {
    const char *coll;               //  "flat" or "hnsw"
    uint32_t ef;                    //  0: no search params
    int sel;                        //  index into S_SEL_T, or -1: no filter
    double qps1 [S_RUNS_MAX];       //  per run, nq=1
    double qps100 [S_RUNS_MAX];     //  per run, nq=S_NQ_BATCH
    double p50 [S_RUNS_MAX];        //  per run, median ms per request at nq=1
    double recall1, recall100;      //  mean recall@10 over the queries
    uint64_t excluded;              //  returned rows the filter excludes
    uint64_t short_lists;           //  result lists shorter than min (limit, allowed)
    uint64_t bad_dist;              //  distances unlike the ones computed here
    uint64_t bad_ids;               //  ids outside the data, or repeated in a list
} s_variant_t;

// ---------------------------------------------------------------------------------
//  Small helpers

//  splitmix64: the x value of row id, and nothing else.
static uint64_t
s_mix (uint64_t z)
{
    z += 0x9e3779b97f4a7c15ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static int
s_cmp_double (const void *a, const void *b)
{
    double x = *(const double *) a, y = *(const double *) b;
    return x < y ? -1 : x > y;
}

//  The median of n values (sorted in place); the lower middle for even n.
static double
s_median (double *v, size_t n)
{
    if (n == 0)
        return 0;
    qsort (v, n, sizeof *v, s_cmp_double);
    return v [(n - 1) / 2];
}

// ---------------------------------------------------------------------------------
//  Data and ground truth

//  Inserts (d, id) into the best-first list top of *n <= S_K entries; ties go to the
//  smaller id, as the server's exact scan breaks them.
static void
s_top_push (int64_t *ids, double *ds, uint32_t *n, int64_t id, double d)
{
    if (*n == S_K && (d > ds [S_K - 1] || (d == ds [S_K - 1] && id > ids [S_K - 1])))
        return;
    uint32_t i = *n < S_K ? (*n)++ : S_K - 1;
    while (i > 0 && (ds [i - 1] > d || (ds [i - 1] == d && ids [i - 1] > id))) {
        ds [i] = ds [i - 1];
        ids [i] = ids [i - 1];
        i--;
    }
    ds [i] = d;
    ids [i] = id;
}

static double
s_l2 (const float *a, const float *b, uint32_t dim)
{
    double sum = 0;
    for (uint32_t j = 0; j < dim; j++) {
        double t = (double) a [j] - (double) b [j];
        sum += t * t;
    }
    return sum;
}

static void
s_data_load (s_data_t *data, const s_opts_t *opts)
{
    uint32_t bdim, qdim;
    data->base = qv_vecs_read (opts->base_path, opts->limit, &bdim, &data->n);
    if (!data->base)
        qv_bench_die ("%s: %s", opts->base_path, qv_err_msg ());
    data->queries = qv_vecs_read (opts->query_path, opts->nq, &qdim, &data->nq);
    if (!data->queries)
        qv_bench_die ("%s: %s", opts->query_path, qv_err_msg ());
    if (bdim != qdim)
        qv_bench_die ("%s has %u dimensions, %s has %u", opts->base_path, bdim, opts->query_path, qdim);
    data->dim = bdim;
    data->x = malloc (data->n * sizeof (int64_t));
    for (uint32_t i = 0; i < data->n; i++)
        data->x [i] = (int64_t) (s_mix (i) % S_XMOD);

    //  Each query's distances to every row once, then each filter's top-k of them.
    double *dist = malloc (data->n * sizeof (double));
    for (int s = 0; s < S_NSEL; s++) {
        data->gt_id [s] = malloc ((size_t) data->nq * S_K * sizeof (int64_t));
        data->gt_d [s] = malloc ((size_t) data->nq * S_K * sizeof (double));
        data->allowed [s] = 0;
        for (uint32_t i = 0; i < data->n; i++)
            data->allowed [s] += data->x [i] < S_SEL_T [s];
        data->gt_n [s] = data->allowed [s] < S_K ? data->allowed [s] : S_K;
    }
    for (uint32_t q = 0; q < data->nq; q++) {
        const float *query = data->queries + (size_t) q * data->dim;
        for (uint32_t i = 0; i < data->n; i++)
            dist [i] = s_l2 (query, data->base + (size_t) i * data->dim, data->dim);
        for (int s = 0; s < S_NSEL; s++) {
            int64_t *ids = data->gt_id [s] + (size_t) q * S_K;
            double *ds = data->gt_d [s] + (size_t) q * S_K;
            uint32_t n = 0;
            for (uint32_t i = 0; i < data->n; i++)
                if (data->x [i] < S_SEL_T [s])
                    s_top_push (ids, ds, &n, i, dist [i]);
        }
    }
    free (dist);
}

// ---------------------------------------------------------------------------------
//  Requests

static void
s_create (qv_client_t *client, const char *name, uint32_t dim)
{
    qv_wr_t *w = qv_client_request (client, "create_collection", 2, NULL);
    qv_wr_str (w, "collection"); qv_wr_str (w, name);
    qv_wr_str (w, "fields");
    qv_wr_array (w, 3);
    qv_wr_map (w, 3);
    qv_wr_str (w, "name"); qv_wr_str (w, "id");
    qv_wr_str (w, "type"); qv_wr_str (w, "int64");
    qv_wr_str (w, "primary"); qv_wr_bool (w, true);
    qv_wr_map (w, 2);
    qv_wr_str (w, "name"); qv_wr_str (w, "x");
    qv_wr_str (w, "type"); qv_wr_str (w, "int64");
    qv_wr_map (w, 4);
    qv_wr_str (w, "name"); qv_wr_str (w, "vector");
    qv_wr_str (w, "type"); qv_wr_str (w, "float_vector");
    qv_wr_str (w, "dim"); qv_wr_uint (w, dim);
    qv_wr_str (w, "metric"); qv_wr_str (w, "L2");
    qv_doc_t *reply = qv_bench_call (client, &w);
    qv_doc_destroy (&reply);
}

//  Inserts every row (id, x, vector) through one pipelined client: batches of 1,000,
//  4 in flight. Returns rows/s.
static double
s_load (const char *endpoint, const char *name, const s_data_t *data)
{
    const uint32_t batch = 1000;
    const int window = 4;
    qv_client_t *client = qv_client_new (endpoint);
    qv_client_set_timeout (client, 300000);
    uint32_t sent = 0;
    uint64_t acked = 0;
    int inflight = 0;
    int64_t t0 = qv_clock_usec ();
    while (acked < data->n) {
        while (sent < data->n && inflight < window) {
            uint32_t m = data->n - sent < batch ? data->n - sent : batch;
            qv_wr_t *w = qv_client_request (client, "insert", 2, NULL);
            qv_wr_str (w, "collection"); qv_wr_str (w, name);
            qv_wr_str (w, "columns");
            qv_wr_map (w, 3);
            qv_wr_str (w, "id");
            qv_wr_array (w, m);
            for (uint32_t i = 0; i < m; i++)
                qv_wr_int (w, sent + i);
            qv_wr_str (w, "x");
            qv_wr_array (w, m);
            for (uint32_t i = 0; i < m; i++)
                qv_wr_int (w, data->x [sent + i]);
            qv_wr_str (w, "vector");
            qv_wr_bin (w, data->base + (size_t) sent * data->dim, (size_t) m * data->dim * sizeof (float));
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
        if (!v || qv_val_uint (v, &count))
            qv_bench_die ("loading '%s': an insert reply without a count", name);
        qv_doc_destroy (&reply);
        acked += count;
        inflight--;
    }
    double secs = (qv_clock_usec () - t0) / 1e6;
    qv_client_destroy (&client);
    return data->n / secs;
}

//  Flushes, then builds HNSW on the vector field and polls describe_index every
//  100 ms until it says finished (at most 30 minutes). Returns the build seconds.
static double
s_build_hnsw (const char *endpoint, const char *name)
{
    qv_client_t *client = qv_client_new (endpoint);
    qv_client_set_timeout (client, 600000);
    qv_wr_t *w = qv_client_request (client, "flush", 1, NULL);
    qv_wr_str (w, "collection"); qv_wr_str (w, name);
    qv_doc_t *reply = qv_bench_call (client, &w);
    qv_doc_destroy (&reply);

    int64_t t0 = qv_clock_usec ();
    w = qv_client_request (client, "create_index", 5, NULL);
    qv_wr_str (w, "collection"); qv_wr_str (w, name);
    qv_wr_str (w, "field"); qv_wr_str (w, "vector");
    qv_wr_str (w, "index_type"); qv_wr_str (w, "HNSW");
    qv_wr_str (w, "metric"); qv_wr_str (w, "L2");
    qv_wr_str (w, "params");
    qv_wr_map (w, 2);
    qv_wr_str (w, "M"); qv_wr_uint (w, 16);
    qv_wr_str (w, "efConstruction"); qv_wr_uint (w, 200);
    reply = qv_bench_call (client, &w);
    qv_doc_destroy (&reply);

    int64_t deadline = qv_clock_msec () + 1800000;
    while (true) {
        w = qv_client_request (client, "describe_index", 2, NULL);
        qv_wr_str (w, "collection"); qv_wr_str (w, name);
        qv_wr_str (w, "field"); qv_wr_str (w, "vector");
        reply = qv_bench_call (client, &w);
        const qv_val_t *root = qv_doc_root (reply);
        char state [32] = "";
        uint64_t indexed = 0, total = 0;
        const qv_val_t *v = qv_val_get (root, "state");
        if (!v || qv_val_strcpy (v, state, sizeof state))
            qv_bench_die ("describe_index of '%s': a reply without a state", name);
        if ((v = qv_val_get (root, "indexed_rows")))
            qv_val_uint (v, &indexed);
        if ((v = qv_val_get (root, "total_rows")))
            qv_val_uint (v, &total);
        qv_doc_destroy (&reply);
        if (streq (state, "finished")) {
            if (indexed != total)
                fprintf (stderr, "qvfbench: odd: describe_index says finished with %llu of %llu rows "
                         "indexed\n", (unsigned long long) indexed, (unsigned long long) total);
            break;
        }
        if (streq (state, "failed"))
            qv_bench_die ("the HNSW build of '%s' failed (see the server log)", name);
        if (qv_clock_msec () > deadline)
            qv_bench_die ("the HNSW build of '%s' did not finish in 30 minutes (%llu of %llu rows)", name,
                   (unsigned long long) indexed, (unsigned long long) total);
        usleep (100000);
    }
    double secs = (qv_clock_usec () - t0) / 1e6;
    qv_client_destroy (&client);
    return secs;
}

//  A search request for queries first .. first + nq - 1 as one bin.
static qv_wr_t *
s_search_request (qv_client_t *client, const s_variant_t *v, const s_data_t *data, uint32_t first,
                  uint32_t nq)
{
    size_t nfields = 4 + (v->sel >= 0) + (v->ef > 0);
    qv_wr_t *w = qv_client_request (client, "search", nfields, NULL);
    qv_wr_str (w, "collection"); qv_wr_str (w, v->coll);
    qv_wr_str (w, "vectors");
    qv_wr_bin (w, data->queries + (size_t) first * data->dim, (size_t) nq * data->dim * sizeof (float));
    qv_wr_str (w, "dim"); qv_wr_uint (w, data->dim);
    qv_wr_str (w, "limit"); qv_wr_uint (w, S_K);
    if (v->sel >= 0) {
        char filter [64];
        snprintf (filter, sizeof filter, "x < %lld", (long long) S_SEL_T [v->sel]);
        qv_wr_str (w, "filter"); qv_wr_str (w, filter);
    }
    if (v->ef > 0) {
        qv_wr_str (w, "params");
        qv_wr_map (w, 1);
        qv_wr_str (w, "ef"); qv_wr_uint (w, v->ef);
    }
    return w;
}

//  Scores the result lists of a reply to queries first.. against the ground truth;
//  returns the sum of their recalls and counts what looks wrong in v.
static double
s_score (s_variant_t *v, const s_data_t *data, qv_doc_t *reply, uint32_t first, uint32_t nq)
{
    int s = v->sel >= 0 ? v->sel : 0;         //  no filter: the 100% truth
    int64_t limit_x = v->sel >= 0 ? S_SEL_T [v->sel] : S_XMOD;
    const qv_val_t *results = qv_val_get (qv_doc_root (reply), "results");
    if (!results || qv_val_type (results) != QV_V_ARRAY || qv_val_len (results) != nq)
        qv_bench_die ("search on '%s': a reply without %u result lists", v->coll, nq);
    double sum = 0;
    for (uint32_t i = 0; i < nq; i++) {
        uint32_t q = first + i;
        const qv_val_t *list = qv_val_at (results, i);
        size_t len = qv_val_type (list) == QV_V_ARRAY ? qv_val_len (list) : 0;
        if (len < data->gt_n [s])
            v->short_lists++;
        const float *query = data->queries + (size_t) q * data->dim;
        double d10 = data->gt_n [s] ? data->gt_d [s] [(size_t) q * S_K + data->gt_n [s] - 1] : 0;
        int64_t seen [S_K];
        uint32_t hits = 0, nseen = 0;
        for (size_t j = 0; j < len && j < S_K; j++) {
            const qv_val_t *hit = qv_val_at (list, j);
            const qv_val_t *idv = qv_val_get (hit, "id"), *dv = qv_val_get (hit, "distance");
            int64_t id;
            double dist;
            if (!idv || !dv || qv_val_int (idv, &id) || qv_val_double (dv, &dist)
            ||  id < 0 || id >= (int64_t) data->n) {
                v->bad_ids++;
                continue;
            }
            bool repeated = false;
            for (uint32_t r = 0; r < nseen; r++)
                repeated |= seen [r] == id;
            if (repeated) {
                v->bad_ids++;
                continue;
            }
            seen [nseen++] = id;
            if (data->x [id] >= limit_x) {
                v->excluded++;
                continue;
            }
            double truth = s_l2 (query, data->base + (size_t) id * data->dim, data->dim);
            if (fabs (dist - truth) > 1e-4 * (1 + truth))
                v->bad_dist++;
            if (truth <= d10 * (1 + 1e-9))
                hits++;
        }
        if (hits > data->gt_n [s])
            hits = data->gt_n [s];
        sum += data->gt_n [s] ? (double) hits / data->gt_n [s] : 1;
    }
    return sum;
}

//  One pass over every query, nq at a time: the recall of variant v at that batch
//  size (also warms the server up).
static double
s_recall (qv_client_t *client, s_variant_t *v, const s_data_t *data, uint32_t nq)
{
    double sum = 0;
    for (uint32_t first = 0; first < data->nq; first += nq) {
        uint32_t m = data->nq - first < nq ? data->nq - first : nq;
        qv_wr_t *w = s_search_request (client, v, data, first, m);
        qv_doc_t *reply = qv_bench_call (client, &w);
        sum += s_score (v, data, reply, first, m);
        qv_doc_destroy (&reply);
    }
    return sum / data->nq;
}

//  Sends requests of nq queries (cycling through the data's queries) for about
//  seconds, at least min_requests; returns queries/s and the median ms per request
//  in *p50 (when not NULL).
static double
s_timed (qv_client_t *client, const s_variant_t *v, const s_data_t *data, uint32_t nq, double seconds,
         int min_requests, double *p50)
{
    size_t cap = 1024, n = 0, queries = 0;
    double *lat = malloc (cap * sizeof (double));
    uint32_t first = 0;
    int64_t t0 = qv_clock_usec ();
    while (n < (size_t) min_requests || (qv_clock_usec () - t0) / 1e6 < seconds) {
        uint32_t m = data->nq - first < nq ? data->nq - first : nq;
        qv_wr_t *w = s_search_request (client, v, data, first, m);
        int64_t r0 = qv_clock_usec ();
        qv_doc_t *reply = qv_bench_call (client, &w);
        if (n == cap)
            lat = realloc (lat, (cap *= 2) * sizeof (double));
        lat [n++] = (qv_clock_usec () - r0) / 1000.0;
        qv_doc_destroy (&reply);
        queries += m;
        first = (first + m) % data->nq;
    }
    double secs = (qv_clock_usec () - t0) / 1e6;
    if (p50)
        *p50 = s_median (lat, n);
    free (lat);
    return (double) queries / secs;
}

// ---------------------------------------------------------------------------------

static void
s_usage (FILE *out)
{
    fprintf (out,
        "Usage: qvfbench [--base B.fvecs --query Q.fvecs | --fashion[=DIR]] [--nq N] [--limit ROWS]\n"
        "                [--runs N] [--seconds S] [--quick] [--tmp DIR]\n"
        "\n"
        "Filtered search through a Quiver server that qvfbench starts itself (the `quiver`\n"
        "next to it, on a temporary data directory and a free loopback port). Loads the base\n"
        "vectors with an int64 column x = hash (id) mod 100000 into a collection without an\n"
        "index and one with HNSW (M=16, efConstruction=200), and prints for the filters\n"
        "`x < T` of selectivity 100%%, 50%%, 10%%, 1%%, 0.1%% and for no filter: queries/s at\n"
        "nq=1 and nq=100 per request (one client), and recall@10 against the filtered exact\n"
        "top-10 computed here; exact search, HNSW at ef=64 and ef=128; the ratio of each\n"
        "filtered figure to the unfiltered one and to exact search. Medians of --runs runs,\n"
        "all variants measured in every run.\n"
        "Options:\n"
        "  --base PATH    base vectors (.fvecs; default /work/shared/data/siftsmall/base.fvecs)\n"
        "  --query PATH   query vectors (.fvecs; default /work/shared/data/siftsmall/query.fvecs)\n"
        "  --fashion[=DIR] Fashion-MNIST as made by tools/fashion_mnist.sh (DIR default\n"
        "                 data/fashion-mnist beside qvfbench, i.e. build/data/fashion-mnist)\n"
        "  --nq N         use the first N queries (default 100)\n"
        "  --limit ROWS   use the first ROWS base vectors (default all)\n"
        "  --runs N       runs per figure, the median is printed (default 3, at most %d)\n"
        "  --seconds S    length of one timed run (default 2, --quick 0.5)\n"
        "  --quick        shorter timed runs\n"
        "  --tmp DIR      where to make the temporary data directory (default $TMPDIR or /tmp)\n",
        S_RUNS_MAX);
}

//  The first three fields of /proc/loadavg, or "?".
static void
s_loadavg (char *out, size_t size)
{
    double a = 0, b = 0, c = 0;
    FILE *f = fopen ("/proc/loadavg", "r");
    if (f && fscanf (f, "%lf %lf %lf", &a, &b, &c) == 3)
        snprintf (out, size, "%.2f %.2f %.2f", a, b, c);
    else
        snprintf (out, size, "?");
    if (f)
        fclose (f);
}

static void
s_fmt_ratio (char *out, size_t size, double num, double den)
{
    if (den > 0)
        snprintf (out, size, "%.2f", num / den);
    else
        snprintf (out, size, "-");
}

int
main (int argc, char *argv [])
{
    s_opts_t opts = {
        .base_path = "/work/shared/data/siftsmall/base.fvecs",
        .query_path = "/work/shared/data/siftsmall/query.fvecs",
        .nq = 100, .runs = 3
    };
    double seconds = 0;
    const char *tmpdir = getenv ("TMPDIR");
    const char *fashion = NULL;
    static char fashion_base [4200], fashion_query [4200];
    static struct option longopts [] = {
        { "base", required_argument, 0, 'b' }, { "query", required_argument, 0, 'Q' },
        { "fashion", optional_argument, 0, 'f' }, { "nq", required_argument, 0, 'n' },
        { "limit", required_argument, 0, 'l' }, { "quick", no_argument, 0, 'q' },
        { "runs", required_argument, 0, 'r' }, { "seconds", required_argument, 0, 's' },
        { "tmp", required_argument, 0, 't' }, { "help", no_argument, 0, 'h' }, { 0, 0, 0, 0 }
    };
    int c;
    long nq = opts.nq, limit = 0;
    while ((c = getopt_long (argc, argv, "h", longopts, NULL)) != -1)
        switch (c) {
            case 'b': opts.base_path = optarg; break;
            case 'Q': opts.query_path = optarg; break;
            case 'f': fashion = optarg ? optarg : ""; break;
            case 'n': nq = atol (optarg); break;
            case 'l': limit = atol (optarg); break;
            case 'q': opts.quick = true; break;
            case 'r': opts.runs = atoi (optarg); break;
            case 's': seconds = atof (optarg); break;
            case 't': tmpdir = optarg; break;
            case 'h': s_usage (stdout); return 0;
            default: s_usage (stderr); return 2;
        }
    if (optind < argc || opts.runs < 1 || opts.runs > S_RUNS_MAX || seconds < 0 || nq < 1
    ||  nq > 16384 || limit < 0 || limit > UINT32_MAX) {
        s_usage (stderr);
        return 2;
    }
    opts.nq = (uint32_t) nq;
    opts.limit = (uint32_t) limit;
    opts.seconds = seconds > 0 ? seconds : opts.quick ? 0.5 : 2.0;

    char self [4096];
    ssize_t len = readlink ("/proc/self/exe", self, sizeof self - 1);
    if (len <= 0)
        qv_bench_die ("cannot read /proc/self/exe: %s", strerror (errno));
    self [len] = 0;
    char *dir = dirname (self);
    snprintf (opts.quiver, sizeof opts.quiver, "%s/quiver", dir);
    if (access (opts.quiver, X_OK))
        qv_bench_die ("no quiver binary next to qvfbench: %s", opts.quiver);
    if (fashion) {
        if (*fashion)
            snprintf (fashion_base, sizeof fashion_base, "%s/base.fvecs", fashion);
        else
            snprintf (fashion_base, sizeof fashion_base, "%s/data/fashion-mnist/base.fvecs", dir);
        snprintf (fashion_query, sizeof fashion_query, "%.*s/query.fvecs",
                  (int) (strlen (fashion_base) - strlen ("/base.fvecs")), fashion_base);
        opts.base_path = fashion_base;
        opts.query_path = fashion_query;
        if (access (fashion_base, R_OK))
            qv_bench_die ("no %s: make it with tools/fashion_mnist.sh", fashion_base);
    }
    snprintf (opts.tmp, sizeof opts.tmp, "%s/qvfbench-XXXXXX", tmpdir && *tmpdir ? tmpdir : "/tmp");
    if (!mkdtemp (opts.tmp))
        qv_bench_die ("cannot make a temporary directory %s: %s", opts.tmp, strerror (errno));

    zsys_init ();
    zsys_set_linger (0);
    zsys_handler_set (NULL);
    qv_bench_init ("qvfbench");

    char load_before [128];
    s_loadavg (load_before, sizeof load_before);
    s_data_t data = { 0 };
    int64_t t0 = qv_clock_usec ();
    s_data_load (&data, &opts);
    fprintf (stderr, "  %u x %u base vectors, %u queries, filtered ground truth in %.1f s\n", data.n,
             data.dim, data.nq, (qv_clock_usec () - t0) / 1e6);

    char path [4200];
    snprintf (path, sizeof path, "%s/data", opts.tmp);
    qv_bench_server_t srv;
    qv_bench_server_start (&srv, opts.quiver, path, NULL);
    qv_client_t *client = qv_client_new (srv.endpoint);
    qv_client_set_timeout (client, 600000);
    s_create (client, "flat", data.dim);
    s_create (client, "hnsw", data.dim);
    double load_flat = s_load (srv.endpoint, "flat", &data);
    double load_hnsw = s_load (srv.endpoint, "hnsw", &data);
    qv_wr_t *w = qv_client_request (client, "flush", 1, NULL);
    qv_wr_str (w, "collection"); qv_wr_str (w, "flat");
    qv_doc_t *reply = qv_bench_call (client, &w);
    qv_doc_destroy (&reply);
    double build = s_build_hnsw (srv.endpoint, "hnsw");
    fprintf (stderr, "  loaded at %.0f and %.0f rows/s, HNSW built in %.1f s\n", load_flat, load_hnsw, build);

    //  The variants, in table order: exact, then HNSW per ef; each unfiltered first.
    s_variant_t vars [(1 + S_NEF) * (1 + S_NSEL)];
    int nvars = 0;
    for (int e = -1; e < S_NEF; e++)
        for (int s = -1; s < S_NSEL; s++)
            vars [nvars++] = (s_variant_t) {
                .coll = e < 0 ? "flat" : "hnsw", .ef = e < 0 ? 0 : S_EF [e], .sel = s
            };
    uint32_t batch = data.nq < S_NQ_BATCH ? data.nq : S_NQ_BATCH;
    for (int i = 0; i < nvars; i++) {
        vars [i].recall1 = s_recall (client, &vars [i], &data, 1);
        vars [i].recall100 = s_recall (client, &vars [i], &data, batch);
    }
    for (int r = 0; r < opts.runs; r++) {
        fprintf (stderr, "  run %d of %d\n", r + 1, opts.runs);
        //  Odd runs go backwards, so load that drifts during a run weighs on the
        //  first and the last variants alike.
        for (int j = 0; j < nvars; j++) {
            s_variant_t *v = &vars [r % 2 ? nvars - 1 - j : j];
            v->qps1 [r] = s_timed (client, v, &data, 1, opts.seconds, 5, &v->p50 [r]);
            v->qps100 [r] = s_timed (client, v, &data, batch, opts.seconds, 2, NULL);
        }
    }
    qv_client_destroy (&client);
    qv_bench_server_stop (&srv, SIGTERM);

    //  The table.
    double q1 [sizeof vars / sizeof vars [0]], q100 [sizeof vars / sizeof vars [0]];
    for (int i = 0; i < nvars; i++) {
        double p50 [S_RUNS_MAX];
        memcpy (p50, vars [i].p50, sizeof p50);
        q1 [i] = s_median (vars [i].qps1, (size_t) opts.runs);
        q100 [i] = s_median (vars [i].qps100, (size_t) opts.runs);
        vars [i].p50 [0] = s_median (p50, (size_t) opts.runs);
    }
    printf ("qvfbench: %s (%u x %u, L2), %u queries, k=%d, x < T filters; HNSW M=16 "
            "efConstruction=200 built in %.1f s; %ld cores; median of %d runs of %.1f s%s\n",
            opts.base_path, data.n, data.dim, data.nq, S_K, build, sysconf (_SC_NPROCESSORS_ONLN), opts.runs,
            opts.seconds, opts.quick ? ", --quick" : "");
    char load_after [128];
    s_loadavg (load_after, sizeof load_after);
    printf ("  load average (1, 5, 15 min) at start %s, at end %s\n", load_before, load_after);
    printf ("  q/s: one client, one request at a time; /unfilt: filtered q/s over the same search "
            "unfiltered; /exact: over exact search with the same filter\n\n");
    printf ("  %-6s  %4s  %6s  %8s  %9s  %8s  %10s  %6s  %6s  %6s  %8s  %6s  %7s\n", "search", "ef",
            "select", "allowed", "q/s nq=1", "p50 ms", "q/s nq=" "100", "rec@10", "rec100",
            "/unf 1", "/unf 100", "/ex 1", "/ex 100");
    printf ("  %-6s  %4s  %6s  %8s  %9s  %8s  %10s  %6s  %6s  %6s  %8s  %6s  %7s\n", "--------", "----",
            "------", "--------", "---------", "--------", "----------", "------", "------", "------",
            "--------", "------", "-------");
    for (int i = 0; i < nvars; i++) {
        const s_variant_t *v = &vars [i];
        int unf = i - 1 - v->sel;                   //  this block's unfiltered row
        int exact = 1 + v->sel;                     //  the exact row with the same filter
        char sel [16], ef [8], allowed [16], ru1 [16], ru100 [16], re1 [16], re100 [16];
        if (v->sel < 0)
            snprintf (sel, sizeof sel, "none");
        else
            snprintf (sel, sizeof sel, "%g%%", 100.0 * S_SEL_T [v->sel] / S_XMOD);
        snprintf (ef, sizeof ef, v->ef ? "%u" : "-", v->ef);
        snprintf (allowed, sizeof allowed, "%u", v->sel < 0 ? data.n : data.allowed [v->sel]);
        bool filtered = v->sel >= 0, hnsw = v->ef > 0;
        s_fmt_ratio (ru1, sizeof ru1, q1 [i], filtered ? q1 [unf] : 0);
        s_fmt_ratio (ru100, sizeof ru100, q100 [i], filtered ? q100 [unf] : 0);
        s_fmt_ratio (re1, sizeof re1, q1 [i], hnsw ? q1 [exact] : 0);
        s_fmt_ratio (re100, sizeof re100, q100 [i], hnsw ? q100 [exact] : 0);
        printf ("  %-6s  %4s  %6s  %8s  %9.1f  %8.3f  %10.1f  %6.3f  %6.3f  %6s  %8s  %6s  %7s\n",
                hnsw ? "HNSW" : "exact", ef, sel, allowed, q1 [i], v->p50 [0], q100 [i], v->recall1,
                v->recall100, ru1, ru100, re1, re100);
    }
    bool odd = false;
    for (int i = 0; i < nvars; i++) {
        const s_variant_t *v = &vars [i];
        if (v->excluded || v->short_lists || v->bad_dist || v->bad_ids) {
            if (!odd)
                printf ("\n  replies that look wrong (over both recall passes):\n");
            odd = true;
            printf ("  %s ef=%u filter x < %lld: %llu rows the filter excludes, %llu lists shorter than "
                    "min (k, allowed), %llu distances unlike the exact ones, %llu bad or repeated ids\n",
                    v->coll, v->ef, v->sel < 0 ? (long long) S_XMOD : (long long) S_SEL_T [v->sel],
                    (unsigned long long) v->excluded,
                    (unsigned long long) v->short_lists, (unsigned long long) v->bad_dist,
                    (unsigned long long) v->bad_ids);
        }
    }
    qv_bench_rm_rf (opts.tmp);
    return 0;
}
