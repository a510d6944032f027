//  A collection served by a `quiver serve` child, searched through the public API
//  (see qv_bench_service.h).
#include "qv_bench_service.h"
#include "qv_rc.h"

#include <czmq.h>
#include <math.h>
#include <signal.h>
#include <unistd.h>

struct _qv_bench_service_t {
    qv_bench_server_t srv;
    qv_client_t *client;
    uint32_t dim;
};

#define S_COLL "ann"
#define S_LOAD_BATCH_BYTES (4u << 20)   //  rows per insert: about 4 MiB of vectors

static void
s_call (qv_client_t *client, qv_wr_t *w)
{
    qv_doc_t *reply = qv_bench_call (client, &w);
    qv_doc_destroy (&reply);
}

//  Inserts the rows, four requests in flight.
static void
s_insert (qv_client_t *client, const float *base, uint32_t n, uint32_t dim)
{
    size_t batch = S_LOAD_BATCH_BYTES / ((size_t) dim * 4);
    batch = batch ? batch : 1;
    size_t sent = 0, acked = 0;
    int inflight = 0;
    int64_t shown = qv_clock_usec ();
    while (acked < n) {
        while (sent < n && inflight < 4) {
            size_t m = n - sent < batch ? n - sent : batch;
            qv_wr_t *w = qv_bench_insert_request (client, S_COLL, (int64_t) sent, base + sent * dim,
                                                  m, dim, NULL);
            if (qv_client_send (client, w))
                qv_bench_die ("insert: %s", qv_client_error (client));
            qv_wr_destroy (&w);
            sent += m;
            inflight++;
        }
        qv_doc_t *reply;
        uint64_t rid, count = 0;
        if (qv_client_recv (client, &reply, &rid))
            qv_bench_die ("insert: %s: %s", qv_client_code (client), qv_client_error (client));
        const qv_val_t *v = qv_val_get (qv_doc_root (reply), "count");
        if (v)
            qv_val_uint (v, &count);
        qv_doc_destroy (&reply);
        acked += count;
        inflight--;
        if (qv_clock_usec () - shown > 2000000) {
            fprintf (stderr, "  service: inserted %zu/%u rows\n", acked, n);
            shown = qv_clock_usec ();
        }
    }
}

qv_bench_service_t *
qv_bench_service_new (const char *quiver, const char *tmp, int threads, const char *metric,
                      const char *index_type, uint32_t M, uint32_t efc,
                      const float *base, uint32_t n, uint32_t dim)
{
    qv_bench_service_t *self = calloc (1, sizeof *self);
    self->dim = dim;
    char data [4200], nthreads [16];
    snprintf (data, sizeof data, "%s/service", tmp);
    snprintf (nthreads, sizeof nthreads, "%d", threads);
    char *extra [] = { "--search-threads", nthreads, NULL };
    qv_bench_server_start (&self->srv, quiver, data, extra);
    self->client = qv_client_new (self->srv.endpoint);
    qv_client_set_timeout (self->client, 600000);
    qv_bench_create (self->client, S_COLL, dim, metric);
    int64_t t0 = qv_clock_usec ();
    s_insert (self->client, base, n, dim);
    fprintf (stderr, "  service: %u rows inserted in %.1f s\n", n, (qv_clock_usec () - t0) / 1e6);
    if (strcmp (index_type, "FLAT") != 0) {
        qv_wr_t *w = qv_client_request (self->client, "create_index", 4, NULL);
        qv_wr_str (w, "collection"); qv_wr_str (w, S_COLL);
        qv_wr_str (w, "field"); qv_wr_str (w, "vector");
        qv_wr_str (w, "index_type"); qv_wr_str (w, index_type);
        qv_wr_str (w, "params");
        qv_wr_map (w, 2);
        qv_wr_str (w, "M"); qv_wr_uint (w, M);
        qv_wr_str (w, "efConstruction"); qv_wr_uint (w, efc);
        s_call (self->client, w);
    }
    t0 = qv_clock_usec ();
    qv_wr_t *w = qv_client_request (self->client, "flush", 1, NULL);
    qv_wr_str (w, "collection"); qv_wr_str (w, S_COLL);
    s_call (self->client, w);
    if (strcmp (index_type, "FLAT") != 0)
        qv_bench_wait_indexed (self->srv.endpoint, S_COLL, "vector", 1800);
    fprintf (stderr, "  service: flushed%s in %.1f s\n", strcmp (index_type, "FLAT") ? " and indexed" : "",
             (qv_clock_usec () - t0) / 1e6);
    return self;
}

void
qv_bench_service_destroy (qv_bench_service_t **self_p)
{
    qv_bench_service_t *self = *self_p;
    if (!self)
        return;
    qv_client_destroy (&self->client);
    qv_bench_server_stop (&self->srv, SIGTERM);
    qv_bench_rm_rf (self->srv.data);
    free (self);
    *self_p = NULL;
}

//  A search request of the batch queries from first (wrapping around nq).
static qv_wr_t *
s_search_request (qv_bench_service_t *self, const float *queries, uint32_t nq, uint32_t first,
                  uint32_t batch, uint32_t k, uint32_t ef, float *buf, uint64_t *rid)
{
    const float *vecs = queries + (size_t) first * self->dim;
    if (first + batch > nq) {
        for (uint32_t i = 0; i < batch; i++)
            memcpy (buf + (size_t) i * self->dim, queries + (size_t) ((first + i) % nq) * self->dim,
                    self->dim * sizeof (float));
        vecs = buf;
    }
    qv_wr_t *w = qv_client_request (self->client, "search", ef ? 5 : 4, rid);
    qv_wr_str (w, "collection"); qv_wr_str (w, S_COLL);
    qv_wr_str (w, "vectors"); qv_wr_bin (w, vecs, (size_t) batch * self->dim * sizeof (float));
    qv_wr_str (w, "dim"); qv_wr_uint (w, self->dim);
    qv_wr_str (w, "limit"); qv_wr_uint (w, k);
    if (ef) {
        qv_wr_str (w, "params");
        qv_wr_map (w, 1);
        qv_wr_str (w, "ef"); qv_wr_uint (w, ef);
    }
    return w;
}

//  Copies a reply's ids into ids (k per query, from query first).
static void
s_reply_ids (qv_doc_t *reply, uint32_t first, uint32_t nq, uint32_t k, int64_t *ids)
{
    const qv_val_t *results = qv_val_get (qv_doc_root (reply), "results");
    for (size_t q = 0; results && q < qv_val_len (results); q++) {
        if (first + q >= nq)
            break;
        const qv_val_t *hits = qv_val_at (results, q);
        for (uint32_t i = 0; i < k; i++) {
            int64_t id = -1;
            if (i < qv_val_len (hits))
                qv_val_int (qv_val_get (qv_val_at (hits, i), "id"), &id);
            ids [(first + q) * (size_t) k + i] = id;
        }
    }
}

double
qv_bench_service_qps (qv_bench_service_t *self, const float *queries, uint32_t nq, uint32_t batch,
                      int window, uint32_t k, uint32_t ef, double seconds, int64_t *ids)
{
    float *buf = malloc ((size_t) batch * self->dim * sizeof (float));
    //  Each request in flight: its rid and the count of queries sent before it.
    uint64_t rids [64], offs [64];
    window = window < 1 ? 1 : window > 64 ? 64 : window;
    uint64_t sent = 0, done = 0;         //  queries
    int inflight = 0;
    int64_t t0 = qv_clock_usec (), end = t0 + (int64_t) (seconds * 1e6);
    bool stop = false;
    while (!stop || inflight > 0) {
        while (!stop && inflight < window) {
            uint32_t first = (uint32_t) (sent % nq);
            qv_wr_t *w = s_search_request (self, queries, nq, first, batch, k, ef, buf, &rids [inflight]);
            offs [inflight] = sent;
            if (qv_client_send (self->client, w))
                qv_bench_die ("search: %s", qv_client_error (self->client));
            qv_wr_destroy (&w);
            sent += batch;
            inflight++;
        }
        qv_doc_t *reply;
        uint64_t rid;
        if (qv_client_recv (self->client, &reply, &rid))
            qv_bench_die ("search: %s: %s", qv_client_code (self->client), qv_client_error (self->client));
        int at = 0;
        while (at < inflight && rids [at] != rid)
            at++;
        if (at == inflight)
            qv_bench_die ("search: a reply to request %llu, which is not in flight", (unsigned long long) rid);
        if (ids && offs [at] < nq)
            s_reply_ids (reply, (uint32_t) offs [at], nq, k, ids);
        qv_doc_destroy (&reply);
        rids [at] = rids [inflight - 1];
        offs [at] = offs [inflight - 1];
        inflight--;
        done += batch;
        stop = qv_clock_usec () >= end && sent >= nq;
    }
    double secs = (qv_clock_usec () - t0) / 1e6;
    free (buf);
    return (double) done / secs;
}

void
qv_bench_service_latency (qv_bench_service_t *self, const float *queries, uint32_t nq,
                          uint32_t k, uint32_t ef, double seconds, double *p50_us, double *p99_us)
{
    size_t cap = 4096, n = 0;
    double *lat = malloc (cap * sizeof (double));
    int64_t end = qv_clock_usec () + (int64_t) (seconds * 1e6);
    while (qv_clock_usec () < end || n < 10) {
        qv_wr_t *w = s_search_request (self, queries, nq, (uint32_t) (n % nq), 1, k, ef, NULL, NULL);
        int64_t t0 = qv_clock_usec ();
        qv_doc_t *reply = qv_bench_call (self->client, &w);
        double us = (double) (qv_clock_usec () - t0);
        qv_doc_destroy (&reply);
        if (n == cap)
            lat = realloc (lat, (cap *= 2) * sizeof (double));
        lat [n++] = us;
    }
    *p50_us = qv_bench_quantile (lat, n, 0.5);
    *p99_us = qv_bench_quantile (lat, n, 0.99);
    free (lat);
}

double
qv_bench_service_cpu_s (qv_bench_service_t *self)
{
    double secs = qv_bench_cpu_s (self->srv.pid);
    return secs < 0 ? 0 : secs;
}

double
qv_bench_service_ping_us (qv_bench_service_t *self, double seconds)
{
    size_t cap = 4096, n = 0;
    double *lat = malloc (cap * sizeof (double));
    int64_t end = qv_clock_usec () + (int64_t) (seconds * 1e6);
    while (qv_clock_usec () < end || n < 10) {
        qv_wr_t *w = qv_client_request (self->client, "ping", 0, NULL);
        int64_t t0 = qv_clock_usec ();
        qv_doc_t *reply = qv_bench_call (self->client, &w);
        if (n == cap)
            lat = realloc (lat, (cap *= 2) * sizeof (double));
        lat [n++] = (double) (qv_clock_usec () - t0);
        qv_doc_destroy (&reply);
    }
    double p50 = qv_bench_quantile (lat, n, 0.5);
    free (lat);
    return p50;
}

