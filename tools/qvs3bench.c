//  qvs3bench: Quiver on the filesystem and on S3 side by side, in one run.
//
//  For each backend it starts `quiver serve` (found next to this program), measures
//  inserts (4 clients, 1,000-row batches of 128-d vectors, for --seconds: rows/s and
//  the acknowledgement p50/p99), the flush of what was inserted (MB/s of row data to
//  the store), builds an HNSW index, and measures the time to serve after a restart:
//  warm (same data directory: on S3 the segment cache in DATA/cache is warm), on S3
//  also warm without the cache (--cache-mb 0: every segment downloaded) and cold (an
//  empty data directory: everything comes from the bucket, once), each with the bytes
//  it downloaded (the stats counter cache_bytes_downloaded). Beside them it measures the raw PUT and GET bandwidth of the same
//  S3 server (and of the filesystem store) through the object store interface, for
//  the object sizes Quiver writes: the insert run's mean WAL object and a segment,
//  one PUT or GET at a time; and PUT of WAL objects QV_WAL_WINDOW at once, as many
//  as the server's WAL writer has in flight on S3 (the fair comparison for it).
//
//  S3: the server of $QV_S3_ENDPOINT (credentials $QV_S3_ACCESS_KEY / _SECRET_KEY,
//  default S3RVER/S3RVER), bucket qv-bench, a fresh prefix per run. Each figure is the
//  median of --runs runs (raw PUT/GET) or one run (server figures). A benchmark,
//  never a test: it checks no threshold, it prints.
#include "qv_bench.h"
#include "qv_client.h"
#include "qv_rc.h"
#include "qv_store.h"
#include "qv_wal.h"

#include <czmq.h>
#include <getopt.h>
#include <libgen.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>

#define S_XSTR(x) #x
#define S_STR(x) S_XSTR (x)
#define S_DIM 128
#define S_BATCH 1000
#define S_CLIENTS 4
#define S_ROW_BYTES (S_DIM * 4 + 8)

typedef struct {
    double seconds;
    size_t max_rows;                //  the insert run also stops at this many rows
    int runs;
    bool index;
    char index_type [32];
    char keep [2048];               //  --keep DIR: the data set is built there once
    char quiver [4096];
    char tmp [4096];
    char endpoint [256];
    char prefix [64];               //  the data set's S3 prefix
    char scratch [80];              //  reuse: the insert run's throwaway prefix
    char window [16];               //  --wal-window N for the servers, "" = default
} s_opts_t;

//  One backend's figures.
typedef struct {
    double rate, p50, p99;          //  inserts
    size_t rows;
    double flush_mbs;
    double index_s;
    double warm_s, cold_s;          //  cold < 0: not applicable
    double nocache_s;               //  S3: restart with --cache-mb 0
    int64_t warm_dl, cold_dl;       //  S3: bytes the warm / cold start downloaded
    double put_mbs [2], get_mbs [2];
    double put_window_mbs;          //  raw PUT of WAL objects, QV_WAL_WINDOW at once
    size_t wal_objects;             //  WAL objects the insert run wrote
    size_t sizes [2];               //  raw PUT/GET sizes: mean WAL object, segment
    //  Where the starts spent their time (the server's "segments loaded" log line)
    char warm_where [256], cold_where [256];
} s_figures_t;


static int
s_cmp_double (const void *a, const void *b)
{
    double x = *(const double *) a, y = *(const double *) b;
    return x < y ? -1 : x > y;
}

static double
s_quantile (double *v, size_t n, double q)
{
    if (n == 0)
        return 0;
    qsort (v, n, sizeof *v, s_cmp_double);
    size_t i = (size_t) (q * (double) (n - 1) + 0.5);
    return v [i < n ? i : n - 1];
}

static void
s_fill_random (float *v, size_t n, uint64_t *state)
{
    for (size_t i = 0; i < n; i++) {
        *state ^= *state << 13;
        *state ^= *state >> 7;
        *state ^= *state << 17;
        v [i] = (float) (*state >> 40) / (float) (1 << 24);
    }
}

static void
s_call_simple (const char *endpoint, const char *op, int timeout_ms, const char *extra_key,
               const char *extra_val)
{
    qv_client_t *client = qv_client_new (endpoint);
    qv_client_set_timeout (client, timeout_ms);
    qv_wr_t *w = qv_client_request (client, op, extra_key ? 2 : 1, NULL);
    qv_wr_str (w, "collection"); qv_wr_str (w, "bench");
    if (extra_key) {
        qv_wr_str (w, extra_key); qv_wr_str (w, extra_val);
    }
    qv_doc_t *reply = qv_bench_call (client, &w);
    qv_doc_destroy (&reply);
    qv_client_destroy (&client);
}

//  A number of the server's stats (0 if absent).
static int64_t
s_stat (const char *endpoint, const char *name)
{
    qv_client_t *client = qv_client_new (endpoint);
    qv_client_set_timeout (client, 60000);
    qv_wr_t *w = qv_client_request (client, "stats", 0, NULL);
    qv_doc_t *reply = qv_bench_call (client, &w);
    uint64_t v = 0;
    const qv_val_t *val = qv_val_get (qv_doc_root (reply), name);
    if (!val || qv_val_uint (val, &v))
        v = 0;
    qv_doc_destroy (&reply);
    qv_client_destroy (&client);
    return (int64_t) v;
}

static void
s_create (const char *endpoint)
{
    qv_client_t *client = qv_client_new (endpoint);
    qv_bench_create (client, "bench", S_DIM, "L2");
    qv_client_destroy (&client);
}

static atomic_size_t s_rows_total;

typedef struct {
    const char *endpoint;
    int64_t first_id;
    double seconds;
    size_t max_rows;
    pthread_barrier_t *start;
    size_t rows;
    double *lat;
    size_t nlat;
    char *error;
} s_inserter_t;

static void *
s_inserter (void *arg)
{
    s_inserter_t *t = arg;
    qv_client_t *client = qv_client_new (t->endpoint);
    qv_client_set_timeout (client, 120000);
    float *vectors = malloc (S_BATCH * S_DIM * sizeof (float));
    uint64_t state = (uint64_t) t->first_id | 1;
    s_fill_random (vectors, S_BATCH * S_DIM, &state);
    size_t cap = 4096;
    t->lat = malloc (cap * sizeof (double));
    pthread_barrier_wait (t->start);
    int64_t end = qv_clock_usec () + (int64_t) (t->seconds * 1e6);
    while (qv_clock_usec () < end
       &&  atomic_fetch_add (&s_rows_total, S_BATCH) + S_BATCH <= t->max_rows) {
        qv_wr_t *w = qv_client_request (client, "insert", 2, NULL);
        qv_wr_str (w, "collection"); qv_wr_str (w, "bench");
        qv_wr_str (w, "columns");
        qv_wr_map (w, 2);
        qv_wr_str (w, "id");
        qv_wr_array (w, S_BATCH);
        for (size_t i = 0; i < S_BATCH; i++)
            qv_wr_int (w, t->first_id + (int64_t) (t->rows + i));
        qv_wr_str (w, "vector");
        qv_wr_bin (w, vectors, S_BATCH * S_DIM * sizeof (float));
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
        t->rows += S_BATCH;
        s_fill_random (vectors, S_DIM, &state);     //  vary the data a little
    }
    free (vectors);
    qv_client_destroy (&client);
    return NULL;
}

static void
s_insert (const s_opts_t *opts, const char *endpoint, s_figures_t *f)
{
    pthread_t threads [S_CLIENTS];
    s_inserter_t args [S_CLIENTS];
    pthread_barrier_t start;
    pthread_barrier_init (&start, NULL, S_CLIENTS + 1);
    atomic_store (&s_rows_total, 0);
    for (int i = 0; i < S_CLIENTS; i++) {
        args [i] = (s_inserter_t) { endpoint, (int64_t) i << 32, opts->seconds,
                                    opts->max_rows, &start, 0, NULL, 0, NULL };
        pthread_create (&threads [i], NULL, s_inserter, &args [i]);
    }
    pthread_barrier_wait (&start);
    int64_t t0 = qv_clock_usec ();
    size_t nlat = 0;
    f->rows = 0;
    for (int i = 0; i < S_CLIENTS; i++) {
        pthread_join (threads [i], NULL);
        f->rows += args [i].rows;
        nlat += args [i].nlat;
    }
    double secs = (qv_clock_usec () - t0) / 1e6;
    pthread_barrier_destroy (&start);
    double *lat = malloc ((nlat ? nlat : 1) * sizeof (double));
    size_t j = 0;
    for (int i = 0; i < S_CLIENTS; i++) {
        if (args [i].error)
            qv_bench_die ("insert client %d: %s", i, args [i].error);
        memcpy (lat + j, args [i].lat, args [i].nlat * sizeof (double));
        j += args [i].nlat;
        free (args [i].lat);
    }
    f->rate = (double) f->rows / secs;
    f->p50 = s_quantile (lat, nlat, 0.50);
    f->p99 = s_quantile (lat, nlat, 0.99);
    free (lat);
}

//  Waits until the index on bench.vector is finished.
static void
s_wait_index (const char *endpoint)
{
    qv_client_t *client = qv_client_new (endpoint);
    qv_client_set_timeout (client, 60000);
    for (;;) {
        qv_wr_t *w = qv_client_request (client, "describe_index", 2, NULL);
        qv_wr_str (w, "collection"); qv_wr_str (w, "bench");
        qv_wr_str (w, "field"); qv_wr_str (w, "vector");
        qv_doc_t *reply = qv_bench_call (client, &w);
        const qv_val_t *state = qv_val_get (qv_doc_root (reply), "state");
        const char *s = NULL;
        size_t len = 0;
        bool done = state && qv_val_str (state, &s, &len) == 0 && len == 8
                 && memcmp (s, "finished", 8) == 0;
        bool failed = state && s && len == 6 && memcmp (s, "failed", 6) == 0;
        qv_doc_destroy (&reply);
        if (failed)
            qv_bench_die ("the index build failed (see the server log)");
        if (done)
            break;
        usleep (200000);
    }
    qv_client_destroy (&client);
}

typedef struct {
    qv_store_t *store;
    const char *key;
    const char *buf;
    size_t size;
    int rc;
} s_put_job_t;

static void *
s_put_thread (void *arg)
{
    s_put_job_t *j = arg;
    j->rc = qv_store_put (j->store, j->key, j->buf, j->size);
    return NULL;
}

//  Raw PUT MB/s of size-byte objects with QV_WAL_WINDOW puts at once (as Quiver's WAL
//  writer has them on S3): each run puts QV_WAL_WINDOW objects on as many threads
//  and counts their bytes over the time until the last is done. Median of runs.
static double
s_raw_window (const s_opts_t *opts, qv_store_t *store, const char *buf, size_t size)
{
    double mbs [32];
    int runs = opts->runs < 32 ? opts->runs : 32;
    for (int r = 0; r < runs; r++) {
        pthread_t threads [QV_WAL_WINDOW];
        s_put_job_t jobs [QV_WAL_WINDOW];
        char keys [QV_WAL_WINDOW][64];
        int64_t t0 = qv_clock_usec ();
        for (int k = 0; k < QV_WAL_WINDOW; k++) {
            snprintf (keys [k], sizeof keys [k], "raw/w/%d/%d", r, k);
            jobs [k] = (s_put_job_t) { store, keys [k], buf, size, 0 };
            pthread_create (&threads [k], NULL, s_put_thread, &jobs [k]);
        }
        for (int k = 0; k < QV_WAL_WINDOW; k++)
            pthread_join (threads [k], NULL);
        mbs [r] = QV_WAL_WINDOW * size / 1048576.0 / ((qv_clock_usec () - t0) / 1e6);
        for (int k = 0; k < QV_WAL_WINDOW; k++) {
            if (jobs [k].rc)
                qv_bench_die ("raw put %s failed", keys [k]);
            qv_store_delete (store, keys [k]);
        }
    }
    return s_quantile (mbs, (size_t) runs, 0.5);
}

//  Raw PUT/GET MB/s of a store for the two object sizes (median of runs; one PUT or
//  GET at a time), and PUT of WAL objects QV_WAL_WINDOW at once (s_raw_window).
static void
s_raw (const s_opts_t *opts, const char *url, s_figures_t *f)
{
    qv_store_t *store = qv_store_new (url);
    if (!store)
        qv_bench_die ("raw store %s: %s", url, qv_err_msg ());
    for (int s = 0; s < 2; s++) {
        size_t size = f->sizes [s];
        char *buf = malloc (size);
        uint64_t state = 7;
        s_fill_random ((float *) buf, size / 4, &state);
        double put [32], get [32];
        int runs = opts->runs < 32 ? opts->runs : 32;
        for (int r = 0; r < runs; r++) {
            char key [64];
            snprintf (key, sizeof key, "raw/%d/%d", s, r);
            int64_t t0 = qv_clock_usec ();
            if (qv_store_put (store, key, buf, size))
                qv_bench_die ("raw put %s: %s", key, qv_err_msg ());
            put [r] = size / 1048576.0 / ((qv_clock_usec () - t0) / 1e6);
            void *data;
            size_t got;
            t0 = qv_clock_usec ();
            if (qv_store_get (store, key, &data, &got) || got != size)
                qv_bench_die ("raw get %s: %s", key, qv_err_msg ());
            get [r] = size / 1048576.0 / ((qv_clock_usec () - t0) / 1e6);
            free (data);
            qv_store_delete (store, key);
        }
        f->put_mbs [s] = s_quantile (put, (size_t) runs, 0.5);
        if (s == 0)
            f->put_window_mbs = s_raw_window (opts, store, buf, size);
        f->get_mbs [s] = s_quantile (get, (size_t) runs, 0.5);
        free (buf);
    }
    qv_store_destroy (&store);
}

//  The last start's breakdown in the server's log: the loader's line
//  "... N segments loaded in W ms on T threads; segment objects A MB (get B ms,
//  decode C ms), index objects D MB (get E ms, decode F ms) ..." as a short text.
static void
s_where (const char *log, char *out, size_t size)
{
    snprintf (out, size, "(no segments loaded)");
    FILE *file = fopen (log, "r");
    if (!file)
        return;
    char line [2048];
    while (fgets (line, sizeof line, file)) {
        char *p = strstr (line, " segments loaded in ");
        unsigned n = 0, threads = 0;
        double wall, smb, sget, sdec, imb, iget, idec;
        if (p) {
            while (p > line && p [-1] != ' ')
                p--;
            if (sscanf (p, "%u segments loaded in %lf ms on %u threads; segment objects %lf MB "
                        "(get %lf ms, decode %lf ms), index objects %lf MB (get %lf ms, decode %lf ms)",
                        &n, &wall, &threads, &smb, &sget, &sdec, &imb, &iget, &idec) == 9)
                snprintf (out, size, "%u segs %.2f s on %u threads; get %.1f s, decode %.1f s",
                          n, wall / 1000, threads, (sget + iget) / 1000, (sdec + idec) / 1000);
        }
    }
    fclose (file);
}

//  Inserts for --seconds into a new collection of the server at endpoint, flushes
//  and (unless --no-index) builds the index: the insert, flush and build figures.
static void
s_build (const s_opts_t *opts, const char *name, const char *endpoint, const char *url,
         s_figures_t *f)
{
    fprintf (stderr, "%s: inserting for %.0f s (at most %zu rows)\n", name, opts->seconds,
             opts->max_rows);
    s_create (endpoint);
    s_insert (opts, endpoint, f);
    //  The WAL objects group commit wrote for these rows (before the flush, which
    //  may drop them): their mean size is the one raw PUT is measured at
    qv_store_t *store = qv_store_new (url);
    zlist_t *keys = NULL;
    if (!store || qv_store_list (store, "wal/", &keys))
        qv_bench_die ("listing the WAL of %s: %s", url, qv_err_msg ());
    f->wal_objects = zlist_size (keys);
    zlist_destroy (&keys);
    qv_store_destroy (&store);
    f->sizes [0] = f->wal_objects ? f->rows * S_ROW_BYTES / f->wal_objects : S_BATCH * S_ROW_BYTES;
    fprintf (stderr, "%s: %zu rows in %zu WAL objects; flushing\n", name, f->rows, f->wal_objects);
    int64_t t0 = qv_clock_usec ();
    s_call_simple (endpoint, "flush", 600000, NULL, NULL);
    double secs = (qv_clock_usec () - t0) / 1e6;
    f->flush_mbs = (double) f->rows * S_ROW_BYTES / 1048576.0 / secs;
    f->index_s = -1;
    if (!opts->index)
        return;
    fprintf (stderr, "%s: building %s\n", name, opts->index_type);
    t0 = qv_clock_usec ();
    qv_client_t *client = qv_client_new (endpoint);
    qv_client_set_timeout (client, 600000);
    qv_wr_t *w = qv_client_request (client, "create_index", 3, NULL);
    qv_wr_str (w, "collection"); qv_wr_str (w, "bench");
    qv_wr_str (w, "field"); qv_wr_str (w, "vector");
    qv_wr_str (w, "index_type"); qv_wr_str (w, opts->index_type);
    qv_doc_t *reply = qv_bench_call (client, &w);
    qv_doc_destroy (&reply);
    qv_client_destroy (&client);
    s_wait_index (endpoint);
    f->index_s = (qv_clock_usec () - t0) / 1e6;
}

//  --keep: DIR/NAME-built holds what a complete build of the backend's data set
//  measured ("rows N index_s S prefix P type T"); absent, the set is built again.
static bool
s_kept_read (const s_opts_t *opts, const char *name, size_t *rows, double *index_s,
             char *prefix, size_t prefix_size)
{
    char path [2200], type [32] = "", pfx [64] = "";
    snprintf (path, sizeof path, "%s/%s-built", opts->keep, name);
    FILE *file = fopen (path, "r");
    if (!file)
        return false;
    bool ok = fscanf (file, "rows %zu index_s %lf prefix %63s type %31s", rows, index_s,
                      pfx, type) == 4;
    fclose (file);
    if (ok && strcmp (type, opts->index ? opts->index_type : "none"))
        qv_bench_die ("%s holds a data set indexed with %s, not %s: remove it or use "
                      "another --keep directory", path, type, opts->index ? opts->index_type : "none");
    if (ok)
        snprintf (prefix, prefix_size, "%s", pfx);
    return ok;
}

static void
s_kept_write (const s_opts_t *opts, const char *name, const s_figures_t *f, const char *prefix)
{
    char path [2200];
    snprintf (path, sizeof path, "%s/%s-built", opts->keep, name);
    FILE *file = fopen (path, "w");
    if (!file)
        qv_bench_die ("cannot write %s: %s", path, strerror (errno));
    fprintf (file, "rows %zu index_s %.3f prefix %s type %s\n", f->rows, f->index_s, prefix,
             opts->index ? opts->index_type : "none");
    fclose (file);
}

//  The whole sequence for one backend; s3 adds the --s3-* options.
static void
s_backend (const s_opts_t *opts, bool s3, s_figures_t *f)
{
    const char *name = s3 ? "s3" : "fs";
    char data [4200], cold [4200], scratch [4200];
    snprintf (data, sizeof data, "%s/%s-data", opts->keep [0] ? opts->keep : opts->tmp, name);
    snprintf (cold, sizeof cold, "%s/%s-cold", opts->tmp, name);
    snprintf (scratch, sizeof scratch, "%s/%s-insert", opts->tmp, name);
    char prefix [64];
    snprintf (prefix, sizeof prefix, "%s", opts->prefix);
    size_t kept_rows = 0;
    double kept_index_s = -1;
    bool reuse = opts->keep [0]
              && s_kept_read (opts, name, &kept_rows, &kept_index_s, prefix, sizeof prefix);
    //  --wal-window N last when given (NULL ends the list early otherwise)
    char *ww = opts->window [0] ? "--wal-window" : NULL, *wn = (char *) opts->window;
    char *s3args [] = { "--s3-endpoint", (char *) opts->endpoint, "--s3-bucket", "qv-bench",
                        "--s3-prefix", prefix, ww, wn, NULL };
    char *nocache [] = { "--s3-endpoint", (char *) opts->endpoint, "--s3-bucket", "qv-bench",
                         "--s3-prefix", prefix, "--cache-mb", "0", ww, wn, NULL };
    char *s3scratch [] = { "--s3-endpoint", (char *) opts->endpoint, "--s3-bucket", "qv-bench",
                           "--s3-prefix", (char *) opts->scratch, ww, wn, NULL };
    char *noargs [] = { ww, wn, NULL };
    char *const *extra = s3 ? s3args : noargs;
    char url [4600], scratch_url [4600], raw_url [4600];
    if (s3) {
        snprintf (url, sizeof url, "s3://%s/qv-bench/%s", opts->endpoint, prefix);
        snprintf (scratch_url, sizeof scratch_url, "s3://%s/qv-bench/%s", opts->endpoint, opts->scratch);
        snprintf (raw_url, sizeof raw_url, "s3://%s/qv-bench/%s-raw", opts->endpoint, opts->prefix);
    }
    else {
        snprintf (url, sizeof url, "%s", data);
        snprintf (scratch_url, sizeof scratch_url, "%s", scratch);
        snprintf (raw_url, sizeof raw_url, "%s/raw", opts->tmp);
    }
    qv_bench_server_t srv;
    if (reuse) {
        //  The insert and flush figures on a throwaway data set; the starts below on
        //  the kept one.
        s_opts_t o = *opts;
        o.index = false;
        qv_bench_server_start (&srv, opts->quiver, scratch, s3 ? s3scratch : noargs);
        s_build (&o, name, srv.endpoint, scratch_url, f);
        qv_bench_server_stop (&srv, SIGTERM);
        f->rows = kept_rows;
        f->index_s = kept_index_s;
        fprintf (stderr, "%s: reusing the data set in %s (%zu rows)\n", name, data, kept_rows);
    }
    else {
        if (opts->keep [0])
            qv_bench_rm_rf (data);
        qv_bench_server_start (&srv, opts->quiver, data, extra);
        s_build (opts, name, srv.endpoint, url, f);
        qv_bench_server_stop (&srv, SIGTERM);
        if (opts->keep [0])
            s_kept_write (opts, name, f, prefix);
    }
    fprintf (stderr, "%s: warm start\n", name);
    f->warm_s = qv_bench_server_start (&srv, opts->quiver, data, extra) / 1000.0;
    s_where (srv.log, f->warm_where, sizeof f->warm_where);
    f->warm_dl = s3 ? s_stat (srv.endpoint, "cache_bytes_downloaded") : -1;
    qv_bench_server_stop (&srv, SIGTERM);
    f->cold_s = f->nocache_s = -1;
    f->cold_dl = -1;
    if (s3) {
        fprintf (stderr, "%s: warm start without the cache (--cache-mb 0)\n", name);
        f->nocache_s = qv_bench_server_start (&srv, opts->quiver, data, nocache) / 1000.0;
        qv_bench_server_stop (&srv, SIGTERM);
        fprintf (stderr, "%s: cold start (empty data directory)\n", name);
        f->cold_s = qv_bench_server_start (&srv, opts->quiver, cold, extra) / 1000.0;
        s_where (srv.log, f->cold_where, sizeof f->cold_where);
        f->cold_dl = s_stat (srv.endpoint, "cache_bytes_downloaded");
        qv_bench_server_stop (&srv, SIGTERM);
    }
    f->sizes [1] = 64u << 20;
    fprintf (stderr, "%s: raw PUT/GET\n", name);
    s_raw (opts, raw_url, f);
}

static void
s_usage (FILE *out)
{
    fprintf (out,
        "Usage: qvs3bench [--seconds S] [--rows N] [--runs N] [--no-index] [--index-type T]\n"
        "                 [--keep DIR]\n"
        "\n"
        "Quiver on the filesystem and on S3 side by side: insert rows/s and ack p50/p99\n"
        "(4 clients, 1,000-row batches, 128-d), flush MB/s, warm start (on S3 with and\n"
        "without the segment cache) and cold start with the MB downloaded, and the\n"
        "raw PUT/GET MB/s of the same S3 server. S3 server from $QV_S3_ENDPOINT\n"
        "(credentials $QV_S3_ACCESS_KEY / $QV_S3_SECRET_KEY, default S3RVER/S3RVER).\n"
        "\n"
        "  --seconds S   length of the insert run per backend (default 10; the rows it\n"
        "                inserts are the data set of the flush and start figures)\n"
        "  --rows N      ... or until N rows are acknowledged (default 200000)\n"
        "  --runs N      runs per raw PUT/GET figure, median (default 5)\n"
        "  --no-index    skip the index (start figures without it)\n"
        "  --index-type T  the vector index: HNSW (default), HNSW_SQ8, ...\n"
        "  --wal-window N  the servers' --wal-window (default: theirs, 4 on S3, 1 on fs)\n"
        "  --keep DIR    build the data set (inserts, flush, index) in DIR once and keep\n"
        "                it: DIR/fs-data, DIR/s3-data and an S3 prefix named in\n"
        "                DIR/s3-built (the S3 server must keep its bucket too). A later\n"
        "                run with the same DIR starts from it; its insert and flush\n"
        "                figures then come from a throwaway data set of --seconds\n"
        "  -h, --help    this help\n");
}

int
main (int argc, char *argv [])
{
    qv_bench_init ("qvs3bench");
    s_opts_t opts = { .seconds = 10, .max_rows = 200000, .runs = 5, .index = true,
                      .index_type = "HNSW" };
    static struct option longopts [] = {
        { "seconds", required_argument, 0, 's' },
        { "runs", required_argument, 0, 'r' },
        { "rows", required_argument, 0, 'R' },
        { "no-index", no_argument, 0, 'n' },
        { "index-type", required_argument, 0, 'i' },
        { "keep", required_argument, 0, 'k' },
        { "wal-window", required_argument, 0, 'w' },
        { "help", no_argument, 0, 'h' },
        { 0, 0, 0, 0 }
    };
    int c;
    while ((c = getopt_long (argc, argv, "h", longopts, NULL)) != -1) {
        switch (c) {
            case 's': opts.seconds = atof (optarg); break;
            case 'r': opts.runs = atoi (optarg); break;
            case 'R': opts.max_rows = (size_t) atoll (optarg); break;
            case 'n': opts.index = false; break;
            case 'i': snprintf (opts.index_type, sizeof opts.index_type, "%s", optarg); break;
            case 'k': snprintf (opts.keep, sizeof opts.keep, "%s", optarg); break;
            case 'w': snprintf (opts.window, sizeof opts.window, "%s", optarg); break;
            case 'h': s_usage (stdout); return 0;
            default: s_usage (stderr); return 2;
        }
    }
    if (opts.seconds <= 0 || opts.runs <= 0 || opts.max_rows < S_BATCH) {
        fprintf (stderr, "qvs3bench: --seconds and --runs must be positive, --rows at least 1000\n");
        return 2;
    }
    const char *ep = getenv ("QV_S3_ENDPOINT");
    if (!ep || !*ep) {
        fprintf (stderr, "qvs3bench: set QV_S3_ENDPOINT=HOST:PORT (an S3 server: s3rver, MinIO)\n");
        return 2;
    }
    snprintf (opts.endpoint, sizeof opts.endpoint, "%s", ep);
    const char *key = getenv ("QV_S3_ACCESS_KEY"), *secret = getenv ("QV_S3_SECRET_KEY");
    if (!getenv ("QUIVER_S3_ACCESS_KEY"))
        setenv ("QUIVER_S3_ACCESS_KEY", key && *key ? key : "S3RVER", 1);
    if (!getenv ("QUIVER_S3_SECRET_KEY"))
        setenv ("QUIVER_S3_SECRET_KEY", secret && *secret ? secret : "S3RVER", 1);
    char self [4096];
    snprintf (self, sizeof self, "%s", argv [0]);
    snprintf (opts.quiver, sizeof opts.quiver, "%s/quiver", dirname (self));
    snprintf (opts.tmp, sizeof opts.tmp, "/tmp/qvs3bench-XXXXXX");
    if (!mkdtemp (opts.tmp))
        qv_bench_die ("mkdtemp: %s", strerror (errno));
    snprintf (opts.prefix, sizeof opts.prefix, "run-%ld-%lld", (long) getpid (),
              (long long) time (NULL));
    snprintf (opts.scratch, sizeof opts.scratch, "%s-insert", opts.prefix);
    if (opts.keep [0] && mkdir (opts.keep, 0755) && errno != EEXIST)
        qv_bench_die ("cannot create %s: %s", opts.keep, strerror (errno));
    zsys_init ();

    s_figures_t fs, s3;
    s_backend (&opts, false, &fs);
    s_backend (&opts, true, &s3);
    qv_bench_rm_rf (opts.tmp);

    double load [3] = { 0 };
    if (getloadavg (load, 3) < 1)
        load [0] = -1;
    printf ("\nQuiver on the filesystem vs on S3 (%s), 4 clients x 1,000-row batches, 128-d\n",
            opts.endpoint);
    printf ("%-46s %12s %12s\n", "", "filesystem", "S3");
    printf ("%-46s %12.0f %12.0f\n", "insert rows/s (durable acks)", fs.rate, s3.rate);
    printf ("%-46s %12.1f %12.1f\n", "  as MB/s of row data", fs.rate * S_ROW_BYTES / 1048576.0,
            s3.rate * S_ROW_BYTES / 1048576.0);
    printf ("%-46s %12.1f %12.1f\n", "ack latency p50 ms", fs.p50, s3.p50);
    printf ("%-46s %12.1f %12.1f\n", "ack latency p99 ms", fs.p99, s3.p99);
    printf ("%-46s %12zu %12zu\n", "WAL objects written by the insert run", fs.wal_objects, s3.wal_objects);
    printf ("%-46s %12.2f %12.2f\n", "  mean WAL object MB", fs.sizes [0] / 1048576.0,
            s3.sizes [0] / 1048576.0);
    printf ("%-46s %12.1f %12.1f\n", "flush MB/s (row data)", fs.flush_mbs, s3.flush_mbs);
    printf ("%-46s %12zu %12zu\n", "rows in the data set of the starts", fs.rows, s3.rows);
    if (opts.index) {
        char label [64];
        snprintf (label, sizeof label, "%s build s%s", opts.index_type, opts.keep [0] ? " (when built)" : "");
        printf ("%-46s %12.1f %12.1f\n", label, fs.index_s, s3.index_s);
    }
    printf ("%-46s %12.2f %12.2f\n", "warm start s (restart, same data dir)", fs.warm_s, s3.warm_s);
    printf ("%-46s %12s %12.1f\n", "  MB downloaded by the warm start", "n/a", s3.warm_dl / 1048576.0);
    printf ("%-46s %12s %12.2f\n", "warm start s without cache (--cache-mb 0)", "n/a", s3.nocache_s);
    printf ("%-46s %12s %12.2f\n", "cold start s (empty data dir, empty cache)", "n/a", s3.cold_s);
    printf ("%-46s %12s %12.1f\n", "  MB downloaded by the cold start", "n/a", s3.cold_dl / 1048576.0);
    for (int s = 0; s < 2; s++) {
        char label [96];
        if (s == 0)
            snprintf (label, sizeof label, "raw PUT MB/s, WAL objects (fs %.2f / S3 %.2f MB)",
                      fs.sizes [0] / 1048576.0, s3.sizes [0] / 1048576.0);
        else
            snprintf (label, sizeof label, "raw PUT MB/s, segment (64 MB)");
        printf ("%-46s %12.1f %12.1f\n", label, fs.put_mbs [s], s3.put_mbs [s]);
        if (s == 0)
            printf ("%-46s %12.1f %12.1f\n", "  the same, " S_STR (QV_WAL_WINDOW) " PUTs at once",
                    fs.put_window_mbs, s3.put_window_mbs);
        snprintf (label, sizeof label, "raw GET MB/s, %s", s == 0 ? "WAL objects" : "segment (64 MB)");
        printf ("%-46s %12.1f %12.1f\n", label, fs.get_mbs [s], s3.get_mbs [s]);
    }
    printf ("(medians of %d runs for raw PUT/GET; one run for the server figures; load "
            "average %.1f at the end, %ld cores)\n", opts.runs, load [0], sysconf (_SC_NPROCESSORS_ONLN));
    printf ("\nWhere the starts spent their time (segment and index objects loaded on threads;\n"
            "get and decode summed over the threads):\n");
    printf ("  fs warm: %s\n  S3 warm: %s\n  S3 cold: %s\n", fs.warm_where, s3.warm_where,
            s3.cold_where);
    //  The goals of issue 15
    double dl_s = s3.get_mbs [1] > 0 ? s3.cold_dl / 1048576.0 / s3.get_mbs [1] : 0;
    double cold_ratio = dl_s > 0 ? s3.cold_s / dl_s : 0;
    double ins_mbs = s3.rate * S_ROW_BYTES / 1048576.0;
    double ins_ratio = s3.put_mbs [0] > 0 ? ins_mbs / s3.put_mbs [0] : 0;
    printf ("\nGoals (issue 15), %zu rows%s%s:\n", s3.rows, opts.index ? " with " : "",
            opts.index ? opts.index_type : "");
    printf ("  warm start under 3 s:                      fs %.2f s, S3 %.2f s: %s\n",
            fs.warm_s, s3.warm_s, fs.warm_s < 3 && s3.warm_s < 3 ? "met" : "NOT met");
    printf ("  cold start within 1.5x of download time:   %.2f s / (%.1f MB / %.1f MB/s = %.2f s) "
            "= %.2fx: %s\n", s3.cold_s, s3.cold_dl / 1048576.0, s3.get_mbs [1], dl_s, cold_ratio,
            cold_ratio > 0 && cold_ratio <= 1.5 ? "met" : "NOT met");
    printf ("  durable insert at least 50%% of raw PUT:    %.1f MB/s / %.1f MB/s (%.2f MB objects) "
            "= %.0f%%: %s\n", ins_mbs, s3.put_mbs [0], s3.sizes [0] / 1048576.0, ins_ratio * 100,
            ins_ratio >= 0.5 ? "met" : "NOT met");
    //  The server has up to QV_WAL_WINDOW puts in flight: against raw PUT with as many
    double win_ratio = s3.put_window_mbs > 0 ? ins_mbs / s3.put_window_mbs : 0;
    printf ("    ... of raw PUT with " S_STR (QV_WAL_WINDOW) " at once:        %.1f MB/s / "
            "%.1f MB/s = %.0f%%: %s\n", ins_mbs, s3.put_window_mbs, win_ratio * 100,
            win_ratio >= 0.5 ? "met" : "NOT met");
    return 0;
}
