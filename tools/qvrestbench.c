//  qvrestbench: search through the REST gateway (Milvus REST v2 over HTTP keep-alive)
//  against the same search over the ZeroMQ API, in one run on one server. Prints one
//  table: queries/s, p50 and p99 latency at nq=1, and the REST overhead.
//
//  qvrestbench [--base B.fvecs --query Q.fvecs] [--nq N] [--runs 5] [--seconds 1] [--tmp DIR]
//
//  DESIGN
//  One `quiver serve --http` (the binary next to this program) on a temporary data
//  directory and free loopback ports. The base vectors go into the quick-setup
//  collection `bench` (id + vector, L2), which is flushed and given HNSW (M=16,
//  efConstruction=200) so that a search costs little next to the transport. Then
//  each run times one client doing one request at a time for --seconds: over ZeroMQ
//  (qv_client, DEALER over TCP, msgpack; the reply decoded) and over HTTP (libcurl,
//  one kept-alive connection, the JSON body of Milvus's /entities/search; the reply
//  parsed with jansson), cycling through the queries, limit 10, ef 64. The two paths
//  alternate within a run (odd runs REST first) so machine noise hits both; the table
//  shows the median over the runs. Request texts are made before timing for both.
//  The first query's ids must match between the two paths (said if not). A
//  benchmark, never a test: no threshold is checked.
#include "qv_bench.h"
#include "qv_client.h"
#include "qv_rc.h"
#include "qv_vecs.h"

#include <curl/curl.h>
#include <czmq.h>
#include <getopt.h>
#include <jansson.h>
#include <libgen.h>

#define S_K 10
#define S_EF 64
#define S_RUNS_MAX 16

typedef struct {
    float *base, *queries;
    uint32_t n, nq, dim;
    char **bodies;                  //  per query: the REST search body
} s_data_t;

typedef struct {
    double qps, p50, p99;           //  p50 / p99 in ms
} s_fig_t;

static int
s_cmp_double (const void *a, const void *b)
{
    double x = *(const double *) a, y = *(const double *) b;
    return x < y ? -1 : x > y;
}

static double
s_pct (double *v, size_t n, double p)
{
    qsort (v, n, sizeof *v, s_cmp_double);
    size_t i = (size_t) (p * (double) (n - 1) + 0.5);
    return n ? v [i] : 0;
}

static double
s_median (double *v, size_t n)
{
    qsort (v, n, sizeof *v, s_cmp_double);
    return n % 2 ? v [n / 2] : (v [n / 2 - 1] + v [n / 2]) / 2;
}

//  ---------------------------------------------------------------------------------
//  Loading

static qv_doc_t *
s_native (qv_client_t *client, qv_wr_t *w)
{
    return qv_bench_call (client, &w);
}

static void
s_load (const char *endpoint, const s_data_t *data)
{
    qv_client_t *client = qv_client_new (endpoint);
    qv_client_set_timeout (client, 600000);
    qv_wr_t *w = qv_client_request (client, "create_collection", 3, NULL);
    qv_wr_str (w, "collection"); qv_wr_str (w, "bench");
    qv_wr_str (w, "dimension"); qv_wr_uint (w, data->dim);
    qv_wr_str (w, "metric"); qv_wr_str (w, "L2");
    qv_doc_destroy ((qv_doc_t *[]) { s_native (client, w) });
    for (uint32_t at = 0; at < data->n; at += 1000) {
        uint32_t m = data->n - at < 1000 ? data->n - at : 1000;
        w = qv_client_request (client, "insert", 2, NULL);
        qv_wr_str (w, "collection"); qv_wr_str (w, "bench");
        qv_wr_str (w, "columns");
        qv_wr_map (w, 2);
        qv_wr_str (w, "id");
        qv_wr_array (w, m);
        for (uint32_t i = 0; i < m; i++)
            qv_wr_int (w, at + i);
        qv_wr_str (w, "vector");
        qv_wr_bin (w, data->base + (size_t) at * data->dim, (size_t) m * data->dim * sizeof (float));
        qv_doc_destroy ((qv_doc_t *[]) { s_native (client, w) });
    }
    w = qv_client_request (client, "flush", 1, NULL);
    qv_wr_str (w, "collection"); qv_wr_str (w, "bench");
    qv_doc_destroy ((qv_doc_t *[]) { s_native (client, w) });
    w = qv_client_request (client, "create_index", 4, NULL);
    qv_wr_str (w, "collection"); qv_wr_str (w, "bench");
    qv_wr_str (w, "field"); qv_wr_str (w, "vector");
    qv_wr_str (w, "index_type"); qv_wr_str (w, "HNSW");
    qv_wr_str (w, "params");
    qv_wr_map (w, 2);
    qv_wr_str (w, "M"); qv_wr_uint (w, 16);
    qv_wr_str (w, "efConstruction"); qv_wr_uint (w, 200);
    qv_doc_destroy ((qv_doc_t *[]) { s_native (client, w) });
    int64_t deadline = qv_clock_msec () + 1800000;
    while (true) {
        w = qv_client_request (client, "describe_index", 2, NULL);
        qv_wr_str (w, "collection"); qv_wr_str (w, "bench");
        qv_wr_str (w, "field"); qv_wr_str (w, "vector");
        qv_doc_t *reply = s_native (client, w);
        bool done = qv_val_is (qv_val_get (qv_doc_root (reply), "state"), "finished");
        bool failed = qv_val_is (qv_val_get (qv_doc_root (reply), "state"), "failed");
        qv_doc_destroy (&reply);
        if (done)
            break;
        if (failed || qv_clock_msec () > deadline)
            qv_bench_die ("the HNSW build %s (see the server log)", failed ? "failed" : "took over 30 minutes");
        usleep (100000);
    }
    qv_client_destroy (&client);
}

//  ---------------------------------------------------------------------------------
//  The two paths

static qv_wr_t *
s_zmq_request (qv_client_t *client, const s_data_t *data, uint32_t q)
{
    qv_wr_t *w = qv_client_request (client, "search", 4, NULL);
    qv_wr_str (w, "collection"); qv_wr_str (w, "bench");
    qv_wr_str (w, "vectors");
    qv_wr_array (w, 1);
    qv_wr_array (w, data->dim);
    for (uint32_t d = 0; d < data->dim; d++)
        qv_wr_float (w, data->queries [(size_t) q * data->dim + d]);
    qv_wr_str (w, "limit"); qv_wr_uint (w, S_K);
    qv_wr_str (w, "params");
    qv_wr_map (w, 1);
    qv_wr_str (w, "ef"); qv_wr_uint (w, S_EF);
    return w;
}

//  The first hit's id of a ZeroMQ reply, or -1.
static int64_t
s_zmq_first (qv_doc_t *reply)
{
    const qv_val_t *hit = qv_val_at (qv_val_at (qv_val_get (qv_doc_root (reply), "results"), 0), 0);
    int64_t id = -1;
    if (hit)
        qv_val_int (qv_val_get (hit, "id"), &id);
    return id;
}

typedef struct {
    CURL *curl;
    struct curl_slist *headers;
    char url [128];
    char *buf;
    size_t size, cap;
} s_http_t;

static size_t
s_http_write (char *data, size_t size, size_t n, void *arg)
{
    s_http_t *h = arg;
    if (h->size + size * n + 1 > h->cap) {
        h->cap = (h->size + size * n + 1) * 2;
        h->buf = realloc (h->buf, h->cap);
    }
    memcpy (h->buf + h->size, data, size * n);
    h->size += size * n;
    h->buf [h->size] = 0;
    return size * n;
}

//  Sends body; returns the parsed reply (dies on a transport error or a non-zero code).
static json_t *
s_http_search (s_http_t *h, const char *body)
{
    h->size = 0;
    curl_easy_setopt (h->curl, CURLOPT_POSTFIELDS, body);
    CURLcode rc = curl_easy_perform (h->curl);
    if (rc != CURLE_OK)
        qv_bench_die ("REST search: %s", curl_easy_strerror (rc));
    json_error_t err;
    json_t *reply = json_loadb (h->buf, h->size, 0, &err);
    if (!reply || json_integer_value (json_object_get (reply, "code")) != 0)
        qv_bench_die ("REST search failed: %.300s", h->size ? h->buf : "(empty reply)");
    return reply;
}

//  One timed run of one path: one request at a time for seconds.
static s_fig_t
s_timed (bool rest, qv_client_t *client, s_http_t *h, const s_data_t *data, double seconds)
{
    size_t cap = 1 << 20, n = 0;
    double *lat = malloc (cap * sizeof *lat);
    int64_t t0 = qv_clock_usec (), end = t0 + (int64_t) (seconds * 1e6);
    uint32_t q = 0;
    int64_t now = t0;
    while (now < end && n < cap) {
        int64_t t = qv_clock_usec ();
        if (rest)
            json_decref (s_http_search (h, data->bodies [q]));
        else {
            qv_wr_t *w = s_zmq_request (client, data, q);
            qv_doc_destroy ((qv_doc_t *[]) { s_native (client, w) });
        }
        now = qv_clock_usec ();
        lat [n++] = (double) (now - t) / 1000.0;
        q = (q + 1) % data->nq;
    }
    s_fig_t fig = { n / ((now - t0) / 1e6), s_pct (lat, n, 0.5), s_pct (lat, n, 0.99) };
    free (lat);
    return fig;
}

static void
s_usage (FILE *out)
{
    fprintf (out,
        "Usage: qvrestbench [options]\n"
        "Search at nq=1 through the REST gateway (HTTP keep-alive) and the ZeroMQ API of\n"
        "one server it starts itself; prints queries/s, p50 and p99 of both.\n"
        "  --base FILE     base vectors (.fvecs; default siftsmall)\n"
        "  --query FILE    query vectors (.fvecs; default siftsmall)\n"
        "  --nq N          queries cycled through (default 100)\n"
        "  --runs N        timed runs per path, median shown (default 5, at most %d)\n"
        "  --seconds S     length of one timed run (default 1)\n"
        "  --tmp DIR       where to make the temporary data directory (default $TMPDIR or /tmp)\n",
        S_RUNS_MAX);
}

int
main (int argc, char *argv [])
{
    const char *base_path = "/work/shared/data/siftsmall/base.fvecs";
    const char *query_path = "/work/shared/data/siftsmall/query.fvecs";
    const char *tmpdir = getenv ("TMPDIR");
    long nq = 100;
    int runs = 5;
    double seconds = 1;
    static struct option longopts [] = {
        { "base", required_argument, 0, 'b' }, { "query", required_argument, 0, 'Q' },
        { "nq", required_argument, 0, 'n' }, { "runs", required_argument, 0, 'r' },
        { "seconds", required_argument, 0, 's' }, { "tmp", required_argument, 0, 't' },
        { "help", no_argument, 0, 'h' }, { 0, 0, 0, 0 }
    };
    int c;
    while ((c = getopt_long (argc, argv, "h", longopts, NULL)) != -1)
        switch (c) {
            case 'b': base_path = optarg; break;
            case 'Q': query_path = optarg; break;
            case 'n': nq = atol (optarg); break;
            case 'r': runs = atoi (optarg); break;
            case 's': seconds = atof (optarg); break;
            case 't': tmpdir = optarg; break;
            case 'h': s_usage (stdout); return 0;
            default: s_usage (stderr); return 2;
        }
    if (optind < argc || runs < 1 || runs > S_RUNS_MAX || seconds <= 0 || nq < 1 || nq > 10000) {
        s_usage (stderr);
        return 2;
    }
    char self [4096];
    ssize_t len = readlink ("/proc/self/exe", self, sizeof self - 1);
    if (len <= 0)
        qv_bench_die ("cannot read /proc/self/exe: %s", strerror (errno));
    self [len] = 0;
    char quiver [4200];
    snprintf (quiver, sizeof quiver, "%s/quiver", dirname (self));
    char tmp [4200];
    snprintf (tmp, sizeof tmp, "%s/qvrestbench-XXXXXX", tmpdir && *tmpdir ? tmpdir : "/tmp");
    if (!mkdtemp (tmp))
        qv_bench_die ("cannot make a temporary directory %s: %s", tmp, strerror (errno));
    zsys_init ();
    zsys_set_linger (0);
    zsys_handler_set (NULL);
    qv_bench_init ("qvrestbench");
    curl_global_init (CURL_GLOBAL_DEFAULT);

    s_data_t data = { 0 };
    uint32_t qdim;
    data.base = qv_vecs_read (base_path, 0, &data.dim, &data.n);
    data.queries = data.base ? qv_vecs_read (query_path, (uint32_t) nq, &qdim, &data.nq) : NULL;
    if (!data.base || !data.queries)
        qv_bench_die ("%s", qv_err_msg ());
    if (qdim != data.dim)
        qv_bench_die ("%s has %u dimensions, %s has %u", base_path, data.dim, query_path, qdim);
    data.bodies = calloc (data.nq, sizeof (char *));
    for (uint32_t q = 0; q < data.nq; q++) {
        size_t cap = 256 + (size_t) data.dim * 20, at = 0;
        char *b = data.bodies [q] = malloc (cap);
        at += (size_t) snprintf (b + at, cap - at, "{\"collectionName\": \"bench\", \"data\": [[");
        for (uint32_t d = 0; d < data.dim; d++)
            at += (size_t) snprintf (b + at, cap - at, "%s%.9g", d ? "," : "",
                                     (double) data.queries [(size_t) q * data.dim + d]);
        snprintf (b + at, cap - at, "]], \"limit\": %d, \"searchParams\": {\"params\": {\"ef\": %d}}}", S_K, S_EF);
    }

    int http_port = qv_bench_free_port ();
    char http_arg [64], data_dir [4300];
    snprintf (http_arg, sizeof http_arg, "127.0.0.1:%d", http_port);
    snprintf (data_dir, sizeof data_dir, "%s/data", tmp);
    char *extra [] = { "--http", http_arg, NULL };
    qv_bench_server_t srv;
    qv_bench_server_start (&srv, quiver, data_dir, extra);
    fprintf (stderr, "  loading %u x %u vectors, HNSW M=16 efConstruction=200 ...\n", data.n, data.dim);
    s_load (srv.endpoint, &data);

    qv_client_t *client = qv_client_new (srv.endpoint);
    qv_client_set_timeout (client, 60000);
    s_http_t h = { .curl = curl_easy_init () };
    snprintf (h.url, sizeof h.url, "http://127.0.0.1:%d/v2/vectordb/entities/search", http_port);
    h.headers = curl_slist_append (NULL, "Content-Type: application/json");
    curl_easy_setopt (h.curl, CURLOPT_URL, h.url);
    curl_easy_setopt (h.curl, CURLOPT_HTTPHEADER, h.headers);
    curl_easy_setopt (h.curl, CURLOPT_WRITEFUNCTION, s_http_write);
    curl_easy_setopt (h.curl, CURLOPT_WRITEDATA, &h);
    curl_easy_setopt (h.curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt (h.curl, CURLOPT_TCP_NODELAY, 1L);

    //  Same answer both ways, and warm-up
    json_t *r = s_http_search (&h, data.bodies [0]);
    int64_t rest_first = json_integer_value (json_object_get (json_array_get (json_object_get (r, "data"), 0), "id"));
    json_decref (r);
    qv_doc_t *reply = s_native (client, s_zmq_request (client, &data, 0));
    int64_t zmq_first = s_zmq_first (reply);
    qv_doc_destroy (&reply);
    if (rest_first != zmq_first)
        fprintf (stderr, "qvrestbench: odd: query 0's first hit is %lld over REST, %lld over ZeroMQ\n",
                 (long long) rest_first, (long long) zmq_first);
    s_timed (false, client, &h, &data, 0.3);
    s_timed (true, client, &h, &data, 0.3);

    double qps [2][S_RUNS_MAX], p50 [2][S_RUNS_MAX], p99 [2][S_RUNS_MAX];
    for (int run = 0; run < runs; run++)
        for (int k = 0; k < 2; k++) {
            int path = run % 2 ? 1 - k : k;         //  0 ZeroMQ, 1 REST
            s_fig_t f = s_timed (path == 1, client, &h, &data, seconds);
            qps [path][run] = f.qps;
            p50 [path][run] = f.p50;
            p99 [path][run] = f.p99;
        }
    double load [3] = { 0, 0, 0 };
    FILE *lf = fopen ("/proc/loadavg", "r");
    if (lf) {
        if (fscanf (lf, "%lf %lf %lf", &load [0], &load [1], &load [2]) != 3)
            load [0] = load [1] = load [2] = 0;
        fclose (lf);
    }
    double m [2][3];
    for (int p = 0; p < 2; p++) {
        m [p][0] = s_median (qps [p], (size_t) runs);
        m [p][1] = s_median (p50 [p], (size_t) runs);
        m [p][2] = s_median (p99 [p], (size_t) runs);
    }
    printf ("\nqvrestbench: search at nq=1, k=%d, HNSW ef=%d, %u x %u vectors, one client, one request\n"
            "at a time; medians of %d runs of %.1f s (load average %.2f %.2f %.2f)\n\n",
            S_K, S_EF, data.n, data.dim, runs, seconds, load [0], load [1], load [2]);
    printf ("| path                              | q/s     | p50 ms | p99 ms |\n");
    printf ("|-----------------------------------|---------|--------|--------|\n");
    printf ("| ZeroMQ (DEALER, msgpack)          | %7.0f | %6.3f | %6.3f |\n", m [0][0], m [0][1], m [0][2]);
    printf ("| REST v2 (HTTP keep-alive, JSON)   | %7.0f | %6.3f | %6.3f |\n", m [1][0], m [1][1], m [1][2]);
    printf ("\nREST p50 overhead: %+.3f ms (goal: at most 0.3 ms); REST q/s %.2fx ZeroMQ's\n",
            m [1][1] - m [0][1], m [0][0] > 0 ? m [1][0] / m [0][0] : 0);

    curl_easy_cleanup (h.curl);
    curl_slist_free_all (h.headers);
    free (h.buf);
    qv_client_destroy (&client);
    qv_bench_server_stop (&srv, SIGTERM);
    qv_bench_rm_rf (tmp);
    for (uint32_t q = 0; q < data.nq; q++)
        free (data.bodies [q]);
    free (data.bodies);
    free (data.base);
    free (data.queries);
    return 0;
}
