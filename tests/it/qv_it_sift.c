//  Integration-test helpers for siftsmall-based tests: data files, exact distances,
//  search and query requests, index readiness polls.
#include "qv_it_sift.h"

#include <czmq.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_POLL_MS 20                //  interval between describe_index polls

void *
qv_it_sift_read (const char *name, size_t n, size_t dim)
{
    const char *dir = getenv ("QV_DATA_DIR");
    char path [4096];
    snprintf (path, sizeof path, "%s/siftsmall/%s", dir ? dir : "../../shared/data", name);
    FILE *f = fopen (path, "rb");
    if (!f) {
        fprintf (stderr, "cannot open %s (set QV_DATA_DIR)\n", path);
        return NULL;
    }
    uint8_t *out = malloc (n * dim * 4);
    for (size_t i = 0; out && i < n; i++) {
        int32_t d;
        if (fread (&d, 4, 1, f) != 1 || (size_t) d != dim
        ||  fread (out + i * dim * 4, 4, dim, f) != dim) {
            fprintf (stderr, "%s: row %zu is not %zu values\n", path, i, dim);
            free (out);
            out = NULL;
        }
    }
    fclose (f);
    return out;
}

float *
qv_it_dist_matrix (const float *queries, size_t nq, const float *base, size_t nb,
                   size_t dim, bool ip)
{
    float *m = malloc (nq * nb * sizeof (float));
    for (size_t q = 0; m && q < nq; q++) {
        const float *a = queries + q * dim;
        for (size_t i = 0; i < nb; i++) {
            const float *b = base + i * dim;
            double acc = 0;
            for (size_t j = 0; j < dim; j++) {
                if (ip)
                    acc += (double) a [j] * b [j];
                else {
                    double d = (double) a [j] - b [j];
                    acc += d * d;
                }
            }
            m [q * nb + i] = (float) acc;
        }
    }
    return m;
}

qv_doc_t *
qv_it_search (qv_it_client_t *client, const qv_it_search_t *s)
{
    size_t nfields = 5 + (s->offset > 0) + (s->filter != NULL) + (s->ef || s->nprobe)
                   + s->has_radius + s->has_range_filter + (s->output_field != NULL);
    qv_wr_t *w = qv_wr_new ();
    qv_wr_map (w, nfields);
    qv_wr_str (w, "op"); qv_wr_str (w, "search");
    qv_wr_str (w, "collection"); qv_wr_str (w, s->collection);
    qv_wr_str (w, "vectors"); qv_wr_bin (w, s->vectors, (size_t) s->nq * s->dim * 4);
    qv_wr_str (w, "dim"); qv_wr_uint (w, s->dim);
    qv_wr_str (w, "limit"); qv_wr_uint (w, s->limit);
    if (s->offset > 0) {
        qv_wr_str (w, "offset"); qv_wr_uint (w, s->offset);
    }
    if (s->filter) {
        qv_wr_str (w, "filter"); qv_wr_str (w, s->filter);
    }
    if (s->ef || s->nprobe) {
        qv_wr_str (w, "params");
        qv_wr_map (w, (s->ef > 0) + (s->nprobe > 0));
        if (s->ef) {
            qv_wr_str (w, "ef"); qv_wr_uint (w, s->ef);
        }
        if (s->nprobe) {
            qv_wr_str (w, "nprobe"); qv_wr_uint (w, s->nprobe);
        }
    }
    if (s->has_radius) {
        qv_wr_str (w, "radius"); qv_wr_double (w, s->radius);
    }
    if (s->has_range_filter) {
        qv_wr_str (w, "range_filter"); qv_wr_double (w, s->range_filter);
    }
    if (s->output_field) {
        qv_wr_str (w, "output_fields"); qv_wr_array (w, 1); qv_wr_str (w, s->output_field);
    }
    qv_doc_t *reply = qv_it_call (client, w);
    qv_wr_destroy (&w);
    return reply;
}

qv_doc_t *
qv_it_query (qv_it_client_t *client, const char *collection, const char *filter,
             uint32_t limit, uint32_t offset, const char *output_field, bool count_only)
{
    qv_wr_t *w = qv_wr_new ();
    qv_wr_map (w, 3 + (limit > 0) + (offset > 0) + (output_field || count_only));
    qv_wr_str (w, "op"); qv_wr_str (w, "query");
    qv_wr_str (w, "collection"); qv_wr_str (w, collection);
    qv_wr_str (w, "filter"); qv_wr_str (w, filter);
    if (limit) {
        qv_wr_str (w, "limit"); qv_wr_uint (w, limit);
    }
    if (offset) {
        qv_wr_str (w, "offset"); qv_wr_uint (w, offset);
    }
    if (output_field || count_only) {
        qv_wr_str (w, "output_fields");
        qv_wr_array (w, 1);
        qv_wr_str (w, count_only ? "count(*)" : output_field);
    }
    qv_doc_t *reply = qv_it_call (client, w);
    qv_wr_destroy (&w);
    return reply;
}

int
qv_it_wait_index (qv_it_client_t *client, const char *collection, const char *field,
                  uint64_t rows, int timeout_ms, char *why, size_t why_size)
{
    int64_t deadline = zclock_mono () + timeout_ms;
    snprintf (why, why_size, "no reply");
    while (true) {
        qv_doc_t *r = qv_it_callf (client, "{op: 'describe_index', collection: '%s', field: '%s'}",
                                   collection, field);
        if (r && !qv_it_ok (r)) {
            snprintf (why, why_size, "%s %s", qv_it_code (r), qv_it_error (r));
            qv_doc_destroy (&r);
            return -1;
        }
        if (r) {
            const qv_val_t *state = qv_it_path (r, "state");
            int64_t indexed = qv_it_int (qv_it_path (r, "indexed_rows"));
            int64_t total = qv_it_int (qv_it_path (r, "total_rows"));
            const char *s;
            size_t n;
            if (qv_val_str (state, &s, &n))
                s = "(none)", n = 6;
            snprintf (why, why_size, "state %.*s, indexed_rows %lld, total_rows %lld", (int) n, s,
                      (long long) indexed, (long long) total);
            bool failed = qv_it_str_is (state, "failed");
            bool done = qv_it_str_is (state, "finished") && indexed == (int64_t) rows
                     && total == (int64_t) rows;
            qv_doc_destroy (&r);
            if (failed)
                return -1;
            if (done)
                return 0;
        }
        if (zclock_mono () >= deadline)
            return -2;
        zclock_sleep (S_POLL_MS);
    }
}
