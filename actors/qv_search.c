//  Vector searches of the searcher actor (its thread; state in qv_searcher_self.h):
//  a search takes a snapshot (segments linked, row counts, the last applied
//  timestamp) and splits its rows (or queries, or indexed segments) across the worker
//  threads; each worker keeps a top-k per query (or, first, evaluates the filter on
//  its slice of each segment), and the last one done posts SEARCHED; this thread
//  merges the parts and encodes the reply. A small search while the workers have none
//  runs in this thread instead (qv_search_start).
#include "qv_searcher_self.h"

#define S_INLINE_BYTES (256u << 10)     //  vectors a search run in the searcher thread may scan

static void s_dispatch (self_t *self, s_search_t *s);
static void s_filter_done (self_t *self, s_search_t *s);
static void s_search_done (self_t *self, s_search_t *s);

//  A worker: scans its part of a snapshot for every query. The last part of a search
//  done is posted (SEARCHED) to the searcher's "searched" socket, which every worker
//  shares, not answered on this pipe: the searcher's loop polls three sockets, not
//  two plus one per worker (each socket polled costs system calls on every turn).
void
qv_search_worker_actor (zsock_t *pipe, void *args)
{
    const qv_config_t *config = args;
    zsock_t *searcher = qv_config_push (config, "searched");
    zsock_signal (pipe, 0);
    while (true) {
        char *cmd;
        void *ptr;
        if (zsock_recv (pipe, "sp", &cmd, &ptr) != 0) {
            if (errno == EINTR)
                continue;           //  a signal for main; $TERM stops us
            break;
        }
        bool term = streq (cmd, "$TERM");
        zstr_free (&cmd);
        if (term)
            break;
        s_task_t *task = ptr;
        s_search_t *s = task->search;
        if (s->filtering) {
            //  This part's slice of each segment's rows.
            qv_snapshot_t *snap = s->snap;
            task->matched = calloc (snap->nsegs + 1, sizeof (roaring_bitmap_t *));
            for (size_t i = 0; i < snap->nsegs; i++) {
                if (s->cached [i])
                    continue;       //  known from an earlier search
                uint64_t rows = snap->rows [i];
                uint32_t from = (uint32_t) (rows * task->part / s->parts);
                uint32_t to = (uint32_t) (rows * (task->part + 1) / s->parts);
                task->matched [i] = roaring_bitmap_create ();
                qv_scalar_t *scalars [QV_FIELDS_MAX];
                for (int fi = 0; fi < QV_FIELDS_MAX; fi++) {
                    qv_segidx_t *idx = s->scalars ? s->scalars [i * QV_FIELDS_MAX + fi] : NULL;
                    scalars [fi] = idx ? idx->scalar : NULL;
                }
                if (from < to)
                    qv_expr_eval_indexed (s->expr, snap->segs [i]->batch, from, to, scalars,
                                          QV_EXPR_INDEX_SHARE, task->matched [i]);
            }
        }
        else
            qv_snapshot_scan (s->snap, s->queries, s->qnorms, s->nq, s->limit + s->offset, s->ef,
                              s->nprobe, task->part, s->parts, task->tops);
        //  The last part done says so, once for the search (s may be freed after it)
        if (atomic_fetch_sub (&s->pending, 1) == 1) {
            qv_msg_searched_t *done = qv_msg_searched_new ();
            done->task = task;
            if (qv_msg_post (searcher, &done) != 0) {
                //  Only when the process is stopping (the context is terminated): the
                //  searcher answers its unfinished searches as it stops
                qv_msg_free (&done);
                qv_warn ("search worker: cannot post to the searcher: %s", zmq_strerror (zmq_errno ()));
            }
        }
    }
    zsock_destroy (&searcher);
}

//  Parses a request's `filter` (absent or empty: none) against a copy of the schema.
int
qv_search_parse_filter (qv_collection_t *c, const qv_req_t *req, qv_schema_t **schema_p, qv_expr_t **expr_p)
{
    *expr_p = NULL;
    const qv_val_t *f = req->f [QV_F_filter];
    const char *text;
    size_t len;
    if (!f || qv_val_str (f, &text, &len) || len == 0)
        return 0;
    *schema_p = qv_schema_dup (c->schema);
    if (!*schema_p)
        return qv_err (QV_ENOMEM, "out of memory");
    int rc;
    *expr_p = qv_expr_parse (*schema_p, text, len, &rc);
    return *expr_p ? 0 : rc;
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
    size_t nq = qv_req_nq (req, f->dim);
    if (qv_val_type (v) == QV_V_BIN && nq == 0)
        return qv_err (QV_EINVAL, "'vectors' bin of %zu bytes is not a multiple of dim %u x 4",
                       qv_val_len (v), f->dim);
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

void
qv_search_free (s_search_t **s_p)
{
    s_search_t *s = *s_p;
    if (!s)
        return;
    qv_expr_destroy (&s->expr);
    qv_schema_destroy (&s->schema);
    for (size_t i = 0; s->cached && s->snap && i < s->snap->nsegs; i++)
        if (s->cached [i])
            roaring_bitmap_free (s->cached [i]);
    free (s->cached);
    for (size_t i = 0; s->scalars && i < s->snap->nsegs * QV_FIELDS_MAX; i++)
        qv_segidx_unlink (&s->scalars [i]);
    free (s->scalars);
    free (s->filter_text);
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

void
qv_search_start (self_t *self, qv_job_t *job)
{
    qv_req_t *req = &job->req;
    qv_collection_t *c = qv_catalog_find (self->catalog, req->collection);
    if (!c) {
        qv_err (QV_ENOTFOUND, "collection '%s' does not exist", req->collection);
        qv_searcher_fail (self, job, QV_ENOTFOUND);
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
    //  offset is checked alone first: offset + limit must not wrap around
    if (!rc && (limit < 1 || limit > QV_LIMIT_TOPK || offset > QV_LIMIT_TOPK
                || offset + limit > QV_LIMIT_TOPK))
        rc = qv_err (QV_EINVAL, "limit must be 1..%d and offset + limit at most %d",
                     QV_LIMIT_TOPK, QV_LIMIT_TOPK);
    double radius = 0, range_filter = 0;
    if (!rc && req->f [QV_F_range_filter] && !req->f [QV_F_radius])
        rc = qv_err (QV_EINVAL, "range_filter needs radius");
    if (!rc && req->f [QV_F_radius]) {
        qv_val_double (req->f [QV_F_radius], &radius);
        if (req->f [QV_F_range_filter])
            qv_val_double (req->f [QV_F_range_filter], &range_filter);
        bool l2 = c->schema->fields [fi].metric == QV_METRIC_L2;
        //  Milvus' annulus: L2 keeps range_filter <= d < radius; IP and COSINE keep
        //  radius < s <= range_filter.
        if (req->f [QV_F_range_filter] && (l2 ? range_filter >= radius : range_filter <= radius))
            rc = qv_err (QV_EINVAL, l2 ? "for L2, range_filter must be smaller than radius"
                                       : "for IP and COSINE, range_filter must be larger than radius");
    }
    roaring_bitmap_t *parts = NULL;
    if (!rc)
        rc = qv_collection_read_partitions (c, req->f [QV_F_partitions], &parts);
    s_search_t *s = calloc (1, sizeof *s);
    const qv_val_t *params = req->f [QV_F_params];
    for (size_t i = 0; !rc && params && i < qv_val_len (params); i++) {
        const qv_val_t *key = qv_val_key (params, i);
        uint64_t u;
        bool is_ef = qv_val_is (key, "ef"), is_nprobe = qv_val_is (key, "nprobe");
        if (!is_ef && !is_nprobe)
            continue;               //  qv_req_parse refused other keys
        qv_vtype_t t = qv_val_type (qv_val_value (params, i));
        if (t != QV_V_UINT && t != QV_V_INT)
            rc = qv_err (QV_EPROTO, "params.%s must be an integer", is_ef ? "ef" : "nprobe");
        else
        if (qv_val_uint (qv_val_value (params, i), &u) || u < 1 || u > 65536)
            rc = qv_err (QV_EINVAL, "params.%s must be an integer 1..65536", is_ef ? "ef" : "nprobe");
        else
        if (is_ef)
            s->ef = (uint32_t) u;
        else
            s->nprobe = (uint32_t) u;
    }
    if (!rc)
        rc = qv_collection_check_fields (c, req->f [QV_F_output_fields], &s->out);
    if (!rc)
        rc = s_read_vectors (req, &c->schema->fields [fi], &s->queries, &s->nq);
    if (!rc)
        rc = qv_search_parse_filter (c, req, &s->schema, &s->expr);
    if (!rc)
        rc = qv_collection_prune (c, s->expr, &parts);
    if (rc) {
        if (parts)
            roaring_bitmap_free (parts);
        qv_search_free (&s);
        qv_searcher_fail (self, job, rc);
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
    s->snap = qv_snapshot_new (c, qv_catalog_max_ts (self->catalog), fi, parts);
    if (parts)
        roaring_bitmap_free (parts);
    self->segments_read += s->snap->nsegs;
    if (req->f [QV_F_radius]) {
        bool l2 = f->metric == QV_METRIC_L2, has_inner = req->f [QV_F_range_filter] != NULL;
        s->snap->has_range = true;
        s->snap->range.hi = l2 ? (float) radius : (float) -radius;
        s->snap->range.lo = !has_inner ? -INFINITY : l2 ? (float) range_filter : (float) -range_filter;
        if (!l2 && has_inner)       //  similarity <= range_filter is score >= -range_filter
            s->snap->range.lo = (float) -range_filter;
    }
    //  With a filter, the workers first evaluate it over their slices of the rows,
    //  except in flushed segments (immutable columns) that met the same filter before.
    s->filtering = s->expr != NULL;
    if (s->expr) {
        const char *text;
        size_t len;
        qv_val_str (req->f [QV_F_filter], &text, &len);
        s->filter_text = strndup (text, len);
        s->cached = calloc (s->snap->nsegs + 1, sizeof (roaring_bitmap_t *));
        s->scalars = calloc (s->snap->nsegs * QV_FIELDS_MAX + 1, sizeof (qv_segidx_t *));
        uint64_t mask = 0;
        qv_expr_fields (s->expr, &mask);
        for (size_t i = 0; i < s->snap->nsegs; i++) {
            if (s->snap->segs [i]->state != QV_SEG_FLUSHED)
                continue;
            qv_segidx_t **sc = s->scalars + i * QV_FIELDS_MAX;
            if (qv_collection_scalars (c, s->snap->segs [i], mask, sc))
                for (int fi = 0; fi < QV_FIELDS_MAX; fi++)
                    qv_segidx_link (sc [fi]);
            char *key = zsys_sprintf ("%llu|%s", (unsigned long long) s->snap->segs [i]->id, s->filter_text);
            roaring_bitmap_t *hit = zhashx_lookup (self->filter_cache, key);
            if (hit)
                s->cached [i] = roaring_bitmap_copy (hit);
            zstr_free (&key);
        }
    }
    size_t hits = 0;
    while (s->cached && hits < s->snap->nsegs && s->cached [hits])
        hits++;
    bool filter_phase = s->expr && hits < s->snap->nsegs;
    if (s->expr && !filter_phase)
        s_filter_done (self, s);    //  every segment's matches cached: no filter phase
    uint64_t rows = 0;
    size_t indexed = 0;
    for (size_t i = 0; i < s->snap->nsegs; i++) {
        bool by_index = s->snap->idx [i]
                     && (filter_phase || qv_snapshot_uses_index (s->snap, i, (uint32_t) (limit + offset),
                                                                 s->ef, s->nprobe));
        rows += by_index ? 0 : s->snap->rows [i];
        indexed += by_index;
    }
    //  Small scans are not worth splitting (each part is a round trip to a worker);
    //  index searches split by query or segment; a filter to evaluate is split by rows.
    bool split = rows >= 20000 || (indexed > 0 && (s->nq > 1 || indexed > 1)) || filter_phase;
    s->parts = split ? (uint32_t) self->nworkers : 1;
    s->tasks = calloc (s->parts, sizeof (s_task_t));
    for (uint32_t p = 0; p < s->parts; p++) {
        s->tasks [p].search = s;
        s->tasks [p].part = p;
        s->tasks [p].tops = calloc (s->nq, sizeof (qv_topk_t *));
        for (uint32_t q = 0; q < s->nq; q++)
            s->tasks [p].tops [q] = qv_topk_new ((uint32_t) (limit + offset));
    }
    //  A small search while no other is out at the workers runs in this thread: one
    //  part, at most one index searched with a modest ef / nprobe, and at most
    //  S_INLINE_BYTES of vectors scanned; a worker's round trip (two thread wake-ups)
    //  would cost more than the search. Under load the workers take every search, so
    //  small searches still run side by side and this thread stays free for writes.
    bool inline_ok = !split && zlistx_size (self->searches) == 0
                  && (uint64_t) s->nq * rows * f->dim * sizeof (float) <= S_INLINE_BYTES
                  && (indexed == 0 || (s->ef <= 256 && s->nprobe <= 32));
    zlistx_add_end (self->searches, s);
    if (inline_ok) {
        qv_snapshot_scan (s->snap, s->queries, s->qnorms, s->nq, s->limit + s->offset, s->ef,
                          s->nprobe, 0, 1, s->tasks [0].tops);
        s_search_done (self, s);
    }
    else
        s_dispatch (self, s);
}

static void
s_dispatch (self_t *self, s_search_t *s)
{
    atomic_store (&s->pending, s->parts);
    for (uint32_t p = 0; p < s->parts; p++) {
        zsock_send (self->workers [self->next_worker], "sp", "SCAN", &s->tasks [p]);
        self->next_worker = (self->next_worker + 1) % self->nworkers;
    }
}

//  The filter phase is over: join the parts' matches into each segment's allowed rows.
//  (With every segment's matches cached, it runs before the search has any parts.)
void
qv_search_bitmap_free (void **item)
{
    roaring_bitmap_free ((roaring_bitmap_t *) *item);
    *item = NULL;
}

static void
s_filter_done (self_t *self, s_search_t *s)
{
    qv_snapshot_t *snap = s->snap;
    snap->allowed = calloc (snap->nsegs + 1, sizeof (roaring_bitmap_t *));
    for (size_t i = 0; i < snap->nsegs; i++) {
        if (s->cached [i]) {
            snap->allowed [i] = s->cached [i];
            s->cached [i] = NULL;
            continue;
        }
        snap->allowed [i] = roaring_bitmap_create ();
        for (uint32_t p = 0; p < s->parts; p++) {
            roaring_bitmap_or_inplace (snap->allowed [i], s->tasks [p].matched [i]);
            roaring_bitmap_free (s->tasks [p].matched [i]);
        }
        roaring_bitmap_run_optimize (snap->allowed [i]);
        if (snap->segs [i]->state == QV_SEG_FLUSHED && snap->rows [i] >= 4096) {
            //  A small bounded cache: cleared when full.
            if (zhashx_size (self->filter_cache) >= 1024)
                zhashx_purge (self->filter_cache);
            char *key = zsys_sprintf ("%llu|%s", (unsigned long long) snap->segs [i]->id, s->filter_text);
            zhashx_update (self->filter_cache, key, roaring_bitmap_copy (snap->allowed [i]));
            zstr_free (&key);
        }
    }
    for (uint32_t p = 0; p < s->parts; p++) {
        free (s->tasks [p].matched);
        s->tasks [p].matched = NULL;
    }
    s->filtering = false;
}

//  All parts of a search are in: merge, encode, reply.
static void
s_search_done (self_t *self, s_search_t *s)
{
    zlistx_delete (self->searches, zlistx_find (self->searches, s));
    qv_job_t *job = s->job;
    qv_collection_t *c = qv_catalog_find_id (self->catalog, s->coll_id);
    if (!c) {
        qv_err (QV_ENOTFOUND, "collection '%s' was dropped during the search", job->req.collection);
        qv_search_free (&s);
        qv_searcher_fail (self, job, QV_ENOTFOUND);
        return;
    }
    //  From the collection: a snapshot may hold no segment (an empty partition).
    const qv_field_t *f = &c->schema->fields [s->snap->field];
    bool similarity = f->metric != QV_METRIC_L2;
    uint32_t k = s->limit + s->offset;
    int64_t *ids = malloc (k * sizeof (int64_t));
    float *scores = malloc (k * sizeof (float));
    qv_wr_t *w = qv_wr_new ();
    //  One allocation for the usual reply: about 40 bytes a hit without output fields
    //  (a writer growing by doubling copies the reply over and over)
    qv_wr_reserve (w, 64 + (size_t) s->nq * (4 + (size_t) s->limit * (44 + 24 * (size_t) s->out.nfids)));
    qv_reply_open (w, job->req.f [QV_F_rid]);
    qv_wr_key (w, "results");
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
            qv_wr_map_open (w);
            qv_wr_key (w, "id");
            qv_col_write_value (pk, &seg->batch->cols [seg->schema->pk], row, w);
            qv_wr_key (w, "distance");
            qv_wr_float (w, similarity ? -scores [i] : scores [i]);
            qv_wr_key (w, "fields");
            qv_collection_write_row (c, seg, row, &s->out, false, w);
            qv_wr_map_close (w);
        }
    }
    qv_reply_close (w);
    free (ids);
    free (scores);
    qv_job_reply (job, w, 0);
    qv_wr_destroy (&w);
    qv_search_free (&s);
    qv_searcher_reply (self, job);
}

void
qv_search_parts_done (self_t *self, void *task_)
{
    s_task_t *task = task_;
    s_search_t *s = task->search;       //  every part of it is done
    if (s->filtering) {
        s_filter_done (self, s);
        s_dispatch (self, s);
    }
    else
        s_search_done (self, s);
}

