//  Searcher actor: owns the catalog; applies logged writes in log order and replies to
//  their clients; answers searches (on worker threads), gets, describes and stats;
//  drives flushes and manifests.
//
//  @interface
//    $TERM                             stop
//  inbox (PULL, inproc "searcher"):
//    "APPLY" job                       from the segment manager, in log order
//    "SEAL" coll seg                   a segment is complete: flush it
//    "FLUSH" job                       reply when the collection's sealed segments are
//                                      in a manifest
//    "READ" job                        from the proxy
//    "WRITTEN" seg rc msg              from the flusher
//    "MANIFESTED" version rc msg       from the flusher
//
//  DESIGN
//  Applying a record and replying happen on this thread, so a client that got its
//  acknowledgement and then searches is served after the apply: reads are strong.
//  A search takes a snapshot (segments linked, row counts, the last applied
//  timestamp) and splits its rows across the worker threads; each worker keeps a
//  top-k per query; this thread merges them and encodes the reply.
#include "qv_searcher.h"
#include "qv_job.h"
#include "qv_rc.h"

#include <math.h>

typedef struct s_search_t s_search_t;

typedef struct {
    s_search_t *search;
    uint32_t part;
    qv_topk_t **tops;               //  one per query
} s_task_t;

struct s_search_t {
    qv_job_t *job;
    qv_snapshot_t *snap;
    qv_collection_t *coll;          //  valid while this thread has not applied a drop
    uint32_t coll_id;
    float *queries;
    float *qnorms;
    uint32_t nq;
    uint32_t limit;
    uint32_t offset;
    uint32_t ef;
    uint32_t nprobe;
    int fids [QV_FIELDS_MAX];
    int nfids;
    uint32_t parts;
    uint32_t pending;
    s_task_t *tasks;
};

typedef struct {
    qv_job_t *job;
    uint32_t coll_id;
    uint64_t target;                //  manifest version to wait for, 0 until known
} s_flush_t;

typedef struct {
    const qv_config_t *config;
    qv_catalog_t *catalog;
    zsock_t *inbox;
    zsock_t *proxy;
    zsock_t *segmgr;
    zsock_t *flusher;
    zactor_t **workers;
    int nworkers;
    int next_worker;
    zlistx_t *flushes;              //  s_flush_t *
    zhashx_t *writing;              //  seg ids being written by the flusher
    zhashx_t *building;             //  "seg/field" index builds in flight
    uint64_t manifest_requested;
    uint64_t manifest_done;
} self_t;

//  A worker: scans its part of a snapshot for every query.
static void
s_worker_actor (zsock_t *pipe, void *args)
{
    (void) args;
    zsock_signal (pipe, 0);
    while (true) {
        char *cmd;
        void *ptr;
        if (zsock_recv (pipe, "sp", &cmd, &ptr) != 0)
            break;
        bool term = streq (cmd, "$TERM");
        zstr_free (&cmd);
        if (term)
            break;
        s_task_t *task = ptr;
        s_search_t *s = task->search;
        qv_snapshot_scan (s->snap, s->queries, s->qnorms, s->nq, s->limit + s->offset, s->ef,
                          s->nprobe, task->part, s->parts, task->tops);
        zsock_send (pipe, "sp", "DONE", task);
    }
}

static void s_request_manifest (self_t *self);
static void s_index_todo (void *arg, qv_collection_t *c, qv_segment_t *seg, int fi);

static void
s_reply (self_t *self, qv_job_t *job)
{
    zsock_send (self->proxy, "sp", "REPLY", job);
}

static void
s_fail (self_t *self, qv_job_t *job, int rc)
{
    qv_job_fail (job, rc, qv_err_msg ());
    s_reply (self, job);
}

//  Writes the ids of a batch's primary-key column.
static void
s_write_ids (const qv_batch_t *b, qv_wr_t *w)
{
    const qv_field_t *pk = &b->schema->fields [b->schema->pk];
    qv_wr_array (w, b->n);
    for (uint32_t r = 0; r < b->n; r++)
        qv_col_write_value (pk, &b->cols [b->schema->pk], r, w);
}

static void
s_apply (self_t *self, qv_job_t *job)
{
    qv_record_t *rec = job->rec;
    qv_wr_t *w = qv_wr_new ();
    const qv_val_t *rid = job->req.f [QV_F_rid];
    //  Ids are encoded first: applying moves the rows into the segment.
    if (rec->type == QV_REC_INSERT) {
        qv_reply_ok (w, rid, 3);
        qv_wr_str (w, "ids");
        s_write_ids (rec->batch, w);
        qv_wr_str (w, "ts");
        qv_wr_uint (w, rec->ts);
        qv_wr_str (w, "count");
        qv_wr_uint (w, rec->batch->n);
    }
    qv_apply_t res = qv_catalog_apply (self->catalog, rec, job->seq, self->config->seg_max_bytes);
    if (res.rc) {
        qv_wr_reset (w);
        qv_reply_error (w, rid, res.rc, qv_err_msg ());
    }
    else
    if (rec->type == QV_REC_DELETE) {
        qv_reply_ok (w, rid, 2);
        qv_wr_str (w, "deleted");
        qv_wr_uint (w, res.count);
        qv_wr_str (w, "ts");
        qv_wr_uint (w, rec->ts);
    }
    else
    if (rec->type != QV_REC_INSERT)
        qv_reply_ok (w, rid, 0);
    qv_job_reply (job, w, res.rc);
    qv_wr_destroy (&w);
    //  The proxy keeps its catalog copy from DDL records; row data is no longer needed.
    if (rec->type == QV_REC_INSERT || rec->type == QV_REC_DELETE)
        qv_record_destroy (&job->rec);
    s_reply (self, job);
}

static void
s_send_write (self_t *self, qv_segment_t *seg)
{
    char key [32];
    snprintf (key, sizeof key, "%llu", (unsigned long long) seg->id);
    if (zhashx_lookup (self->writing, key))
        return;
    zhashx_insert (self->writing, key, (void *) 1);
    zsock_send (self->flusher, "sp8", "WRITE", qv_segment_link (seg), (uint64_t) 0);
}

static void
s_check_flushes (self_t *self)
{
    s_flush_t *f = zlistx_first (self->flushes);
    while (f) {
        s_flush_t *next = zlistx_next (self->flushes);
        qv_collection_t *c = qv_catalog_find_id (self->catalog, f->coll_id);
        bool sealed = false;
        for (size_t i = 0; c && i < c->nsegs; i++)
            sealed |= c->segs [i]->state == QV_SEG_SEALED;
        if (!sealed && f->target == 0)
            f->target = self->manifest_requested;
        if (!sealed && self->manifest_done >= f->target) {
            qv_wr_t *w = qv_wr_new ();
            qv_reply_ok (w, f->job->req.f [QV_F_rid], 1);
            qv_wr_str (w, "segments");
            size_t n = 0;
            for (size_t i = 0; c && i < c->nsegs; i++)
                n += c->segs [i]->state == QV_SEG_FLUSHED;
            qv_wr_array (w, n);
            for (size_t i = 0; c && i < c->nsegs; i++)
                if (c->segs [i]->state == QV_SEG_FLUSHED)
                    qv_wr_uint (w, c->segs [i]->id);
            qv_job_reply (f->job, w, 0);
            qv_wr_destroy (&w);
            s_reply (self, f->job);
            zlistx_delete (self->flushes, zlistx_find (self->flushes, f));
            free (f);
        }
        f = next;
    }
}

static void
s_written (self_t *self, qv_segment_t *seg, int rc)
{
    char key [32];
    snprintf (key, sizeof key, "%llu", (unsigned long long) seg->id);
    zhashx_delete (self->writing, key);
    qv_collection_t *c = qv_catalog_find_id (self->catalog, seg->coll_id);
    if (rc == 0 && c && seg->state == QV_SEG_SEALED) {
        seg->state = QV_SEG_FLUSHED;
        s_request_manifest (self);
        zstr_sendx (self->segmgr, "FLUSHED", key, NULL);
        qv_catalog_index_todo (self->catalog, s_index_todo, self);
    }
    qv_segment_unlink (&seg);
}

static void
s_request_manifest (self_t *self)
{
    uint64_t version;
    zchunk_t *chunk = qv_catalog_manifest (self->catalog, &version);
    self->manifest_requested = version;
    zsock_send (self->flusher, "sp8", "MANIFEST", chunk, version);
}

//  Starts an index build for a flushed segment lacking its index.
static void
s_index_todo (void *arg, qv_collection_t *c, qv_segment_t *seg, int fi)
{
    self_t *self = arg;
    char key [48];
    snprintf (key, sizeof key, "%llu/%d", (unsigned long long) seg->id, fi);
    if (zhashx_lookup (self->building, key) || c->index_errors [fi][0])
        return;
    zhashx_insert (self->building, key, (void *) 1);
    qv_build_t *b = calloc (1, sizeof *b);
    b->coll_id = c->id;
    b->seg = qv_segment_link (seg);
    b->field = fi;
    b->def = *c->index_defs [fi];
    b->version = c->index_versions [fi];
    zsock_send (self->flusher, "sp8", "BUILD", b, (uint64_t) 0);
}

static void
s_built (self_t *self, qv_build_t *b)
{
    qv_segment_t *seg = b->seg;
    char key [48];
    snprintf (key, sizeof key, "%llu/%d", (unsigned long long) seg->id, b->field);
    zhashx_delete (self->building, key);
    qv_collection_t *c = qv_catalog_find_id (self->catalog, b->coll_id);
    qv_index_t *index = b->index;
    if (c && c->index_defs [b->field] && c->index_versions [b->field] == b->version) {
        if (b->rc)
            snprintf (c->index_errors [b->field], sizeof c->index_errors [b->field], "%s", b->error);
        else {
            qv_info ("index %s of segment %llu (%u rows) built in %lld ms", b->def.type,
                     (unsigned long long) seg->id, atomic_load (&seg->rows), (long long) b->msec);
            qv_segidx_unlink (&seg->indexes [b->field]);
            seg->indexes [b->field] = qv_segidx_new (&index, b->version);
            s_request_manifest (self);
        }
    }
    qv_index_destroy (&index);
    qv_segment_unlink (&seg);
    free (b);
}

static void
s_manifested (self_t *self, uint64_t version, int rc)
{
    if (rc == 0) {
        if (version > self->manifest_done)
            self->manifest_done = version;
        //  The checkpoint written in that manifest is now durable.
        char cp [32];
        snprintf (cp, sizeof cp, "%llu", (unsigned long long) qv_catalog_checkpoint (self->catalog));
        zstr_sendx (self->segmgr, "CHECKPOINT", cp, NULL);
    }
    else
        s_request_manifest (self);  //  ask again with the current state
    s_check_flushes (self);
}

//  Reads the `vectors` of a search into nq x dim floats.
static int
s_read_vectors (const qv_req_t *req, const qv_field_t *f, float **out, uint32_t *nq_p)
{
    const qv_val_t *v = req->f [QV_F_vectors];
    uint64_t dim = f->dim;
    if (req->f [QV_F_dim]) {
        qv_val_uint (req->f [QV_F_dim], &dim);
        if (dim != f->dim)
            return qv_err (QV_EINVAL, "dim %llu does not match field '%s' (dim %u)",
                           (unsigned long long) dim, f->name, f->dim);
    }
    size_t nq;
    if (qv_val_type (v) == QV_V_BIN) {
        size_t len = qv_val_len (v);
        if (len == 0 || len % ((size_t) f->dim * 4))
            return qv_err (QV_EINVAL, "'vectors' bin of %zu bytes is not a multiple of dim %u x 4",
                           len, f->dim);
        nq = len / ((size_t) f->dim * 4);
    }
    else
        nq = qv_val_len (v);
    if (nq == 0 || nq > QV_LIMIT_TOPK)
        return qv_err (QV_EINVAL, "a search takes 1..%d query vectors, got %zu", QV_LIMIT_TOPK, nq);
    float *q = malloc (nq * f->dim * sizeof (float));
    if (!q)
        return qv_err (QV_ENOMEM, "out of memory");
    if (qv_val_type (v) == QV_V_BIN) {
        const void *p;
        size_t len;
        qv_val_bin (v, &p, &len);
        memcpy (q, p, len);
    }
    else
        for (size_t i = 0; i < nq; i++) {
            const qv_val_t *vi = qv_val_at (v, i);
            const void *p;
            size_t len;
            if (qv_val_bin (vi, &p, &len) == 0) {
                if (len != (size_t) f->dim * 4) {
                    free (q);
                    return qv_err (QV_EINVAL, "query vector %zu: bin of %zu bytes, expected dim %u x 4",
                                   i, len, f->dim);
                }
                memcpy (q + i * f->dim, p, len);
                continue;
            }
            if (qv_val_type (vi) != QV_V_ARRAY) {
                free (q);
                return qv_err (QV_EPROTO, "query vector %zu must be a list of numbers or a bin", i);
            }
            if (qv_val_len (vi) != f->dim) {
                free (q);
                return qv_err (QV_EINVAL, "query vector %zu has %zu values, field '%s' has dim %u",
                               i, qv_val_len (vi), f->name, f->dim);
            }
            for (uint32_t d = 0; d < f->dim; d++) {
                double x;
                if (qv_val_double (qv_val_at (vi, d), &x)) {
                    free (q);
                    return qv_err (QV_EPROTO, "query vector %zu element %u is not a number", i, d);
                }
                q [i * f->dim + d] = (float) x;
            }
        }
    for (size_t i = 0; i < nq * f->dim; i++)
        if (!isfinite (q [i])) {
            free (q);
            return qv_err (QV_EINVAL, "query vector %zu has a value that is not finite", i / f->dim);
        }
    *out = q;
    *nq_p = (uint32_t) nq;
    return 0;
}

static void
s_search_free (s_search_t **s_p)
{
    s_search_t *s = *s_p;
    if (!s)
        return;
    for (uint32_t p = 0; s->tasks && p < s->parts; p++) {
        for (uint32_t q = 0; s->tasks [p].tops && q < s->nq; q++)
            qv_topk_destroy (&s->tasks [p].tops [q]);
        free (s->tasks [p].tops);
    }
    free (s->tasks);
    qv_snapshot_destroy (&s->snap);
    free (s->queries);
    free (s->qnorms);
    free (s);
    *s_p = NULL;
}

static int
s_check_partitions (const qv_req_t *req)
{
    const qv_val_t *parts = req->f [QV_F_partitions];
    for (size_t i = 0; parts && i < qv_val_len (parts); i++)
        if (!qv_val_is (qv_val_at (parts, i), "_default"))
            return qv_err (QV_ENOTFOUND, "partition not found: only '_default' exists in this version");
    return 0;
}

static void
s_search (self_t *self, qv_job_t *job)
{
    qv_req_t *req = &job->req;
    qv_collection_t *c = qv_catalog_find (self->catalog, req->collection);
    if (!c) {
        qv_err (QV_ENOTFOUND, "collection '%s' does not exist", req->collection);
        s_fail (self, job, QV_ENOTFOUND);
        return;
    }
    int rc = 0;
    int fi = c->schema->vec;
    if (req->f [QV_F_field]) {
        char name [QV_NAME_MAX + 1];
        fi = qv_val_strcpy (req->f [QV_F_field], name, sizeof name) ? -1 : qv_schema_find (c->schema, name);
        if (fi < 0 || c->schema->fields [fi].type != QV_FLOAT_VECTOR)
            rc = qv_err (QV_EINVAL, "collection '%s' has no vector field by that name", c->name);
    }
    else {
        int nvec = 0;
        for (int i = 0; i < c->schema->nfields; i++)
            nvec += c->schema->fields [i].type == QV_FLOAT_VECTOR;
        if (nvec > 1)
            rc = qv_err (QV_EINVAL, "collection '%s' has %d vector fields: name one in 'field'", c->name, nvec);
    }
    uint64_t limit = 10, offset = 0;
    if (!rc && req->f [QV_F_limit])
        qv_val_uint (req->f [QV_F_limit], &limit);
    if (!rc && req->f [QV_F_offset])
        qv_val_uint (req->f [QV_F_offset], &offset);
    if (!rc && (limit < 1 || limit > QV_LIMIT_TOPK || offset + limit > QV_LIMIT_TOPK))
        rc = qv_err (QV_EINVAL, "limit must be 1..%d and offset + limit at most %d",
                     QV_LIMIT_TOPK, QV_LIMIT_TOPK);
    if (!rc && req->f [QV_F_filter])
        rc = qv_err (QV_EINVAL, "filter expressions are not supported by this server version yet");
    if (!rc && (req->f [QV_F_radius] || req->f [QV_F_range_filter]))
        rc = qv_err (QV_EINVAL, "range search (radius, range_filter) is not supported by this server version yet");
    if (!rc)
        rc = s_check_partitions (req);
    s_search_t *s = calloc (1, sizeof *s);
    const qv_val_t *params = req->f [QV_F_params];
    for (size_t i = 0; !rc && params && i < qv_val_len (params); i++) {
        const qv_val_t *key = qv_val_key (params, i);
        uint64_t u;
        bool is_ef = qv_val_is (key, "ef"), is_nprobe = qv_val_is (key, "nprobe");
        if (!is_ef && !is_nprobe)
            continue;               //  other engines' tuning knobs are ignored
        if (qv_val_uint (qv_val_value (params, i), &u) || u < 1 || u > 65536)
            rc = qv_err (QV_EINVAL, "params.%s must be an integer 1..65536", is_ef ? "ef" : "nprobe");
        else
        if (is_ef)
            s->ef = (uint32_t) u;
        else
            s->nprobe = (uint32_t) u;
    }
    if (!rc)
        rc = qv_collection_check_fields (c, req->f [QV_F_output_fields], s->fids, &s->nfids);
    if (!rc)
        rc = s_read_vectors (req, &c->schema->fields [fi], &s->queries, &s->nq);
    if (rc) {
        s_search_free (&s);
        s_fail (self, job, rc);
        return;
    }
    const qv_field_t *f = &c->schema->fields [fi];
    s->job = job;
    s->coll = c;
    s->coll_id = c->id;
    s->limit = (uint32_t) limit;
    s->offset = (uint32_t) offset;
    s->qnorms = calloc (s->nq, sizeof (float));
    for (uint32_t q = 0; q < s->nq; q++)
        s->qnorms [q] = qv_dist_norm (s->queries + (size_t) q * f->dim, f->dim);
    s->snap = qv_snapshot_new (c, qv_catalog_max_ts (self->catalog), fi);
    uint64_t rows = 0;
    size_t indexed = 0;
    for (size_t i = 0; i < s->snap->nsegs; i++) {
        rows += s->snap->idx [i] ? 0 : s->snap->rows [i];
        indexed += s->snap->idx [i] != NULL;
    }
    //  Small scans are not worth splitting; index searches split by query or segment.
    bool split = rows >= 20000 || (indexed > 0 && (s->nq > 1 || indexed > 1));
    s->parts = split ? (uint32_t) self->nworkers : 1;
    s->pending = s->parts;
    s->tasks = calloc (s->parts, sizeof (s_task_t));
    for (uint32_t p = 0; p < s->parts; p++) {
        s->tasks [p].search = s;
        s->tasks [p].part = p;
        s->tasks [p].tops = calloc (s->nq, sizeof (qv_topk_t *));
        for (uint32_t q = 0; q < s->nq; q++)
            s->tasks [p].tops [q] = qv_topk_new ((uint32_t) (limit + offset));
        zsock_send (self->workers [self->next_worker], "sp", "SCAN", &s->tasks [p]);
        self->next_worker = (self->next_worker + 1) % self->nworkers;
    }
}

//  All parts of a search are in: merge, encode, reply.
static void
s_search_done (self_t *self, s_search_t *s)
{
    qv_job_t *job = s->job;
    qv_collection_t *c = qv_catalog_find_id (self->catalog, s->coll_id);
    if (!c) {
        qv_err (QV_ENOTFOUND, "collection '%s' was dropped during the search", job->req.collection);
        s_search_free (&s);
        s_fail (self, job, QV_ENOTFOUND);
        return;
    }
    const qv_field_t *f = &s->snap->segs [0]->schema->fields [s->snap->field];
    bool similarity = f->metric != QV_METRIC_L2;
    uint32_t k = s->limit + s->offset;
    int64_t *ids = malloc (k * sizeof (int64_t));
    float *scores = malloc (k * sizeof (float));
    qv_wr_t *w = qv_wr_new ();
    qv_reply_ok (w, job->req.f [QV_F_rid], 1);
    qv_wr_str (w, "results");
    qv_wr_array (w, s->nq);
    for (uint32_t q = 0; q < s->nq; q++) {
        qv_topk_t *top = s->tasks [0].tops [q];
        for (uint32_t p = 1; p < s->parts; p++)
            qv_topk_merge (top, &s->tasks [p].tops [q], 1);
        uint32_t n = qv_topk_extract (top, ids, scores);
        uint32_t first = n < s->offset ? n : s->offset;
        qv_wr_array (w, n - first);
        for (uint32_t i = first; i < n; i++) {
            qv_segment_t *seg = s->snap->segs [ids [i] >> 32];
            uint32_t row = (uint32_t) (ids [i] & 0xffffffff);
            const qv_field_t *pk = &seg->schema->fields [seg->schema->pk];
            qv_wr_map (w, 3);
            qv_wr_str (w, "id");
            qv_col_write_value (pk, &seg->batch->cols [seg->schema->pk], row, w);
            qv_wr_str (w, "distance");
            qv_wr_float (w, similarity ? -scores [i] : scores [i]);
            qv_wr_str (w, "fields");
            qv_collection_write_row (c, seg, row, s->fids, s->nfids, false, w);
        }
    }
    free (ids);
    free (scores);
    qv_job_reply (job, w, 0);
    qv_wr_destroy (&w);
    s_search_free (&s);
    s_reply (self, job);
}

static void
s_stats (self_t *self, qv_job_t *job)
{
    qv_req_t *req = &job->req;
    qv_wr_t *w = qv_wr_new ();
    size_t n;
    qv_collection_t **list = qv_catalog_list (self->catalog, &n);
    qv_collection_t *only = NULL;
    if (req->f [QV_F_collection]) {
        only = qv_catalog_find (self->catalog, req->collection);
        if (!only) {
            free (list);
            qv_wr_destroy (&w);
            qv_err (QV_ENOTFOUND, "collection '%s' does not exist", req->collection);
            s_fail (self, job, QV_ENOTFOUND);
            return;
        }
    }
    uint64_t rows = 0, segs = 0, bytes = 0, growing = 0;
    for (size_t i = 0; i < n; i++) {
        if (only && list [i] != only)
            continue;
        rows += list [i]->live_rows;
        segs += list [i]->nsegs;
        for (size_t j = 0; j < list [i]->nsegs; j++) {
            bytes += qv_segment_bytes (list [i]->segs [j]);
            growing += list [i]->segs [j]->state != QV_SEG_FLUSHED;
        }
    }
    qv_reply_ok (w, req->f [QV_F_rid], 8);
    qv_wr_str (w, "collections"); qv_wr_uint (w, only ? 1 : n);
    qv_wr_str (w, "rows"); qv_wr_uint (w, rows);
    qv_wr_str (w, "segments"); qv_wr_uint (w, segs);
    qv_wr_str (w, "unflushed_segments"); qv_wr_uint (w, growing);
    qv_wr_str (w, "bytes"); qv_wr_uint (w, bytes);
    qv_wr_str (w, "wal_applied"); qv_wr_uint (w, qv_catalog_applied_seq (self->catalog));
    qv_wr_str (w, "wal_checkpoint"); qv_wr_uint (w, qv_catalog_checkpoint (self->catalog));
    qv_wr_str (w, "manifest_version"); qv_wr_uint (w, self->manifest_done);
    free (list);
    qv_job_reply (job, w, 0);
    qv_wr_destroy (&w);
    s_reply (self, job);
}

static void
s_read (self_t *self, qv_job_t *job)
{
    qv_req_t *req = &job->req;
    const qv_val_t *rid = req->f [QV_F_rid];
    if (req->op == QV_OP_search) {
        s_search (self, job);
        return;
    }
    if (req->op == QV_OP_stats) {
        s_stats (self, job);
        return;
    }
    qv_wr_t *w = qv_wr_new ();
    int rc = 0;
    qv_collection_t *c = req->collection [0] ? qv_catalog_find (self->catalog, req->collection) : NULL;
    if (req->op == QV_OP_has_collection) {
        qv_reply_ok (w, rid, 1);
        qv_wr_str (w, "exists");
        qv_wr_bool (w, c != NULL);
    }
    else
    if (req->op == QV_OP_list_collections) {
        size_t n;
        qv_collection_t **list = qv_catalog_list (self->catalog, &n);
        qv_reply_ok (w, rid, 1);
        qv_wr_str (w, "collections");
        qv_wr_array (w, n);
        for (size_t i = 0; i < n; i++)
            qv_wr_str (w, list [i]->name);
        free (list);
    }
    else
    if (!c)
        rc = qv_err (QV_ENOTFOUND, "collection '%s' does not exist", req->collection);
    else
    if (req->op == QV_OP_describe_collection) {
        qv_reply_ok (w, rid, QV_DESCRIBE_FIELDS);
        qv_collection_describe (c, w);
    }
    else
    if (req->op == QV_OP_describe_index) {
        int fi = -1;
        if (req->f [QV_F_field]) {
            char name [QV_NAME_MAX + 1];
            fi = qv_val_strcpy (req->f [QV_F_field], name, sizeof name) ? -1 : qv_schema_find (c->schema, name);
        }
        else
            for (int i = 0; i < c->schema->nfields && fi < 0; i++)
                if (c->index_defs [i])
                    fi = i;
        if (fi < 0 || !c->index_defs [fi])
            rc = qv_err (QV_ENOTFOUND, "collection '%s' has no index%s", c->name,
                         req->f [QV_F_field] ? " on that field" : "");
        else {
            qv_reply_ok (w, rid, QV_DESCRIBE_INDEX_FIELDS);
            qv_collection_describe_index (c, fi, w);
        }
    }
    else
    if (req->op == QV_OP_get) {
        int fids [QV_FIELDS_MAX], nfids;
        qv_keys_t keys;
        rc = s_check_partitions (req);
        if (!rc)
            rc = qv_collection_check_fields (c, req->f [QV_F_output_fields], fids, &nfids);
        if (!rc)
            rc = qv_keys_from_request (&c->schema->fields [c->schema->pk], req->f [QV_F_ids],
                                       QV_LIMIT_TOPK, &keys);
        if (!rc) {
            qv_reply_ok (w, rid, 1);
            qv_wr_str (w, "rows");
            rc = qv_collection_get (c, &keys, fids, nfids, w);
            qv_keys_free (&keys);
        }
    }
    if (rc) {
        qv_wr_destroy (&w);
        s_fail (self, job, rc);
        return;
    }
    qv_job_reply (job, w, 0);
    qv_wr_destroy (&w);
    s_reply (self, job);
}

static int
s_handle_inbox (zloop_t *loop, zsock_t *reader, void *arg)
{
    (void) loop;
    self_t *self = arg;
    zmsg_t *msg = zmsg_recv (reader);
    if (!msg)
        return 0;
    char *cmd = zmsg_popstr (msg);
    zframe_t *f = zmsg_pop (msg);
    void *ptr = f && zframe_size (f) == sizeof (void *) ? *(void **) zframe_data (f) : NULL;
    if (!cmd) {
    }
    else
    if (streq (cmd, "APPLY")) {
        qv_job_t *job = ptr;
        bool index_ddl = job->rec->type == QV_REC_CREATE_INDEX || job->rec->type == QV_REC_DROP_INDEX;
        s_apply (self, job);
        if (index_ddl) {
            qv_catalog_index_todo (self->catalog, s_index_todo, self);
            s_request_manifest (self);
        }
    }
    else
    if (streq (cmd, "BUILT"))
        s_built (self, ptr);
    else
    if (streq (cmd, "READ"))
        s_read (self, ptr);
    else
    if (streq (cmd, "SEAL")) {
        //  zsock_send sends numbers as decimal strings.
        char *coll = zframe_strdup (f), *seg_id = zmsg_popstr (msg);
        qv_segment_t *seg = qv_catalog_seal (self->catalog, (uint32_t) strtoul (coll, NULL, 10),
                                             seg_id ? strtoull (seg_id, NULL, 10) : 0);
        zstr_free (&coll);
        zstr_free (&seg_id);
        if (seg && seg->state == QV_SEG_SEALED)
            s_send_write (self, seg);
    }
    else
    if (streq (cmd, "FLUSH")) {
        qv_job_t *job = ptr;
        s_flush_t *fl = calloc (1, sizeof *fl);
        fl->job = job;
        fl->coll_id = job->seal_coll;
        zlistx_add_end (self->flushes, fl);
        s_check_flushes (self);
    }
    else
    if (streq (cmd, "WRITTEN")) {
        char *rc = zmsg_popstr (msg);
        s_written (self, ptr, rc ? atoi (rc) : -1);
        zstr_free (&rc);
    }
    else
    if (streq (cmd, "MANIFESTED")) {
        char *version = zframe_strdup (f), *rc = zmsg_popstr (msg);
        s_manifested (self, strtoull (version, NULL, 10), rc ? atoi (rc) : -1);
        zstr_free (&version);
        zstr_free (&rc);
    }
    zframe_destroy (&f);
    zstr_free (&cmd);
    zmsg_destroy (&msg);
    return 0;
}

static int
s_handle_worker (zloop_t *loop, zsock_t *reader, void *arg)
{
    (void) loop;
    self_t *self = arg;
    char *cmd;
    void *ptr;
    if (zsock_recv (reader, "sp", &cmd, &ptr) != 0)
        return 0;
    zstr_free (&cmd);
    s_task_t *task = ptr;
    s_search_t *s = task->search;
    if (--s->pending == 0)
        s_search_done (self, s);
    return 0;
}

//  Retries segment writes that failed (the flusher logged why).
static int
s_handle_timer (zloop_t *loop, int timer_id, void *arg)
{
    (void) loop;
    (void) timer_id;
    self_t *self = arg;
    size_t n;
    qv_collection_t **list = qv_catalog_list (self->catalog, &n);
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < list [i]->nsegs; j++)
            if (list [i]->segs [j]->state == QV_SEG_SEALED)
                s_send_write (self, list [i]->segs [j]);
    free (list);
    qv_catalog_index_todo (self->catalog, s_index_todo, self);
    return 0;
}

static int
s_handle_pipe (zloop_t *loop, zsock_t *reader, void *arg)
{
    (void) loop;
    (void) arg;
    char *cmd = zstr_recv (reader);
    zstr_free (&cmd);
    return -1;
}

void
qv_searcher_actor (zsock_t *pipe, void *args_)
{
    qv_searcher_args_t *args = args_;
    self_t *self = calloc (1, sizeof *self);
    self->config = args->config;
    self->catalog = args->catalog;
    self->manifest_done = self->manifest_requested = qv_catalog_manifest_version (self->catalog);
    self->flushes = zlistx_new ();
    self->writing = zhashx_new ();
    self->building = zhashx_new ();
    char ep [256];
    qv_config_endpoint (self->config, "searcher", ep, sizeof ep);
    self->inbox = zsock_new_pull (ep);
    qv_config_endpoint (self->config, "proxy", ep, sizeof ep);
    self->proxy = zsock_new (ZMQ_PUSH);
    zsock_set_sndhwm (self->proxy, 0);
    zsock_connect (self->proxy, "%s", ep);
    qv_config_endpoint (self->config, "segmgr", ep, sizeof ep);
    self->segmgr = zsock_new (ZMQ_PUSH);
    zsock_set_sndhwm (self->segmgr, 0);
    zsock_connect (self->segmgr, "%s", ep);
    qv_config_endpoint (self->config, "flusher", ep, sizeof ep);
    self->flusher = zsock_new (ZMQ_PUSH);
    zsock_set_sndhwm (self->flusher, 0);
    zsock_connect (self->flusher, "%s", ep);
    self->nworkers = self->config->search_threads > 0 ? self->config->search_threads : 1;
    self->workers = calloc ((size_t) self->nworkers, sizeof (zactor_t *));
    zloop_t *loop = zloop_new ();
    for (int i = 0; i < self->nworkers; i++) {
        self->workers [i] = zactor_new (s_worker_actor, NULL);
        zloop_reader (loop, zactor_sock (self->workers [i]), s_handle_worker, self);
    }
    zsock_signal (pipe, 0);
    zloop_reader (loop, pipe, s_handle_pipe, self);
    zloop_reader (loop, self->inbox, s_handle_inbox, self);
    zloop_timer (loop, 1000, 0, s_handle_timer, self);
    zloop_set_nonstop (loop, true);
    zloop_start (loop);
    zloop_destroy (&loop);
    for (int i = 0; i < self->nworkers; i++)
        zactor_destroy (&self->workers [i]);
    free (self->workers);
    s_flush_t *fl;
    while ((fl = zlistx_detach (self->flushes, NULL))) {
        qv_job_fail (fl->job, QV_EUNAVAIL, "the server is shutting down before the flush completed");
        s_reply (self, fl->job);
        free (fl);
    }
    zlistx_destroy (&self->flushes);
    zhashx_destroy (&self->writing);
    zhashx_destroy (&self->building);
    qv_catalog_destroy (&self->catalog);
    zsock_destroy (&self->inbox);
    zsock_destroy (&self->proxy);
    zsock_destroy (&self->segmgr);
    zsock_destroy (&self->flusher);
    free (self);
}
