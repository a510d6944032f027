//  Integration-test helpers for the storage and fencing suites: see qv_it_docs.h.
#include "qv_it_docs.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

bool
qv_it_need_s3 (void)
{
    const char *ep = getenv ("QV_S3_ENDPOINT");
    if (!ep || !*ep) {
        printf ("QV_S3_ENDPOINT is not set (tools/test.sh sets it): skipped\n");
        return false;
    }
    setenv ("QV_IT_S3", "1", 1);    //  every server of the test runs on S3
    const char *key = getenv ("QV_S3_ACCESS_KEY");
    const char *secret = getenv ("QV_S3_SECRET_KEY");
    setenv ("QUIVER_S3_ACCESS_KEY", key && *key ? key : "S3RVER", 1);
    setenv ("QUIVER_S3_SECRET_KEY", secret && *secret ? secret : "S3RVER", 1);
    return true;
}

const char *
qv_it_need_nats (void)
{
    const char *url = getenv ("QV_NATS_URL");
    if (!url || !*url) {
        printf ("QV_NATS_URL is not set (tools/test.sh sets it): skipped\n");
        return NULL;
    }
    return url;
}

qv_store_t *
qv_it_server_store (qv_it_server_t *server)
{
    char url [PATH_MAX + 512];
    if (qv_it_s3 ()) {
        setenv ("QUIVER_S3_ACCESS_KEY", "S3RVER", 0);
        setenv ("QUIVER_S3_SECRET_KEY", "S3RVER", 0);
        snprintf (url, sizeof url, "s3://%s/" QV_IT_S3_BUCKET "/%s", getenv ("QV_S3_ENDPOINT"),
                  server->s3_prefix);
    }
    else
        snprintf (url, sizeof url, "%s", server->dir);
    return qv_store_new (url);
}

char *
qv_it_store_keys (qv_it_server_t *server, const char *prefix)
{
    qv_store_t *store = qv_it_server_store (server);
    zlist_t *keys = NULL;
    if (!store || qv_store_list (store, prefix, &keys) != 0) {
        qv_store_destroy (&store);
        return NULL;
    }
    size_t cap = 1, plen = strlen (prefix);
    for (char *k = zlist_first (keys); k; k = zlist_next (keys))
        cap += strlen (k) + 1;
    char *joined = calloc (1, cap);
    for (char *k = zlist_first (keys); k; k = zlist_next (keys)) {
        if (*joined)
            strcat (joined, ",");
        strcat (joined, k + plen);
    }
    zlist_destroy (&keys);
    qv_store_destroy (&store);
    return joined;
}

qv_it_server_t *
qv_it_server_same_store (qv_it_server_t *like, const char *const *extra)
{
    qv_it_server_t *server = qv_it_server_new (extra);
    if (server)
        snprintf (server->s3_prefix, sizeof server->s3_prefix, "%s", like->s3_prefix);
    return server;
}

bool
qv_it_server_stopped (qv_it_server_t *server)
{
    char path [64], text [512];
    snprintf (path, sizeof path, "/proc/%d/stat", (int) server->pid);
    FILE *f = server->pid ? fopen (path, "r") : NULL;
    if (!f)
        return false;
    size_t n = fread (text, 1, sizeof text - 1, f);
    fclose (f);
    text [n] = 0;
    const char *paren = strrchr (text, ')');    //  "pid (comm) S ..."
    return paren && paren [1] == ' ' && (paren [2] == 'T' || paren [2] == 't');
}

bool
qv_it_docs_create (qv_it_client_t *c, int dim)
{
    qv_doc_t *r = qv_it_callf (c, "{op: 'create_collection', collection: 'docs', fields: ["
                                  "{name: 'id', type: 'int64', primary: true},"
                                  "{name: 'v', type: 'float_vector', dim: %d}]}", dim);
    bool ok = r && qv_it_ok (r);
    if (!ok)
        fprintf (stderr, "create_collection docs: %s %s\n", r ? qv_it_code (r) : "no reply",
                 r ? qv_it_error (r) : "");
    qv_doc_destroy (&r);
    return ok;
}

qv_doc_t *
qv_it_docs_insert (qv_it_client_t *c, uint32_t b, uint32_t batch, int dim)
{
    size_t cap = 64 + (size_t) batch * (32 + (size_t) dim * 16);
    char *text = malloc (cap);
    size_t n = (size_t) snprintf (text, cap, "{op: 'insert', collection: 'docs', rows: [");
    for (uint32_t i = 0; i < batch; i++) {
        uint32_t id = b * batch + i;
        n += (size_t) snprintf (text + n, cap - n, "%s{id: %u, v: [", i ? "," : "", id);
        for (int j = 0; j < dim; j++) {
            //  4-d: [id % 97, id % 13 + .5, 1, id % 7 + .25], then id % (j + 3)
            double x = j == 0 ? id % 97 : j == 1 ? id % 13 + 0.5 : j == 2 ? 1.0
                     : j == 3 ? id % 7 + 0.25 : (double) (id % (uint32_t) (j + 3));
            n += (size_t) snprintf (text + n, cap - n, "%s%.2f", j ? ", " : "", x);
        }
        n += (size_t) snprintf (text + n, cap - n, "]}");
    }
    snprintf (text + n, cap - n, "]}");
    qv_doc_t *r = qv_it_callf (c, "%s", text);
    free (text);
    return r;
}

bool
qv_it_docs_insert_ok (qv_it_client_t *c, uint32_t b, uint32_t batch, int dim)
{
    qv_doc_t *r = qv_it_docs_insert (c, b, batch, dim);
    bool ok = r && qv_it_ok (r);
    if (!ok)
        fprintf (stderr, "insert of batch %u: %s %s\n", b, r ? qv_it_code (r) : "no reply",
                 r ? qv_it_error (r) : "");
    qv_doc_destroy (&r);
    return ok;
}

int64_t
qv_it_docs_batch_rows (qv_it_client_t *c, uint32_t b, uint32_t batch)
{
    size_t cap = 64 + (size_t) batch * 12;
    char *ids = malloc (cap);
    size_t n = 0;
    ids [0] = 0;
    for (uint32_t i = 0; i < batch; i++)
        n += (size_t) snprintf (ids + n, cap - n, "%s%u", i ? "," : "", b * batch + i);
    qv_doc_t *r = qv_it_callf (c, "{op: 'get', collection: 'docs', ids: [%s]}", ids);
    free (ids);
    int64_t rows = r && qv_it_ok (r) ? (int64_t) qv_val_len (qv_it_path (r, "rows")) : -1;
    qv_doc_destroy (&r);
    return rows;
}

int64_t
qv_it_docs_rows (qv_it_client_t *c)
{
    qv_doc_t *r = qv_it_callf (c, "{op: 'describe_collection', collection: 'docs'}");
    int64_t rows = r && qv_it_ok (r) ? qv_it_int (qv_it_path (r, "rows")) : -1;
    qv_doc_destroy (&r);
    return rows;
}

void
qv_it_docs_top10 (qv_it_client_t *c, char *out, size_t size)
{
    qv_doc_t *r = qv_it_callf (c, "{op: 'search', collection: 'docs', vectors: [[3.0, 2.5, 1.0, "
                                  "0.25]], limit: 10}");
    size_t n = 0;
    out [0] = 0;
    const qv_val_t *hits = r && qv_it_ok (r) ? qv_it_path (r, "results.0") : NULL;
    for (size_t i = 0; hits && i < qv_val_len (hits) && n < size; i++)
        n += (size_t) snprintf (out + n, size - n, "%lld ",
                                (long long) qv_it_int (qv_it_vpath (qv_val_at (hits, i), "id")));
    qv_doc_destroy (&r);
}
