//  Segments: columnar rows with MVCC timestamps, exact scan, and the segment object format.
#include "qv_segment.h"
#include "qv_blockscan.h"
#include "qv_crc.h"
#include "qv_envelope.h"
#include "qv_le.h"
#include "qv_rc.h"
#include "qv_pkindex.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static int
s_alloc_meta (qv_segment_t *self, uint32_t cap)
{
    self->ts = calloc (cap ? cap : 1, sizeof (uint64_t));
    self->del_ts = calloc (cap ? cap : 1, sizeof (uint64_t));
    if (!self->ts || !self->del_ts)
        return QV_ENOMEM;
    for (int i = 0; i < self->schema->nfields; i++) {
        const qv_field_t *f = &self->schema->fields [i];
        if (f->type == QV_FLOAT_VECTOR && f->metric == QV_METRIC_COSINE) {
            self->norms [i] = calloc (cap ? cap : 1, sizeof (float));
            if (!self->norms [i])
                return QV_ENOMEM;
        }
    }
    self->cap = cap;
    return 0;
}

static qv_segment_t *
s_new (const qv_schema_t *schema, uint64_t id, uint32_t coll_id, uint32_t shard)
{
    qv_segment_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    atomic_init (&self->refs, 1);
    self->id = id;
    self->coll_id = coll_id;
    self->shard = shard;
    self->schema = qv_schema_dup (schema);
    if (!self->schema) {
        free (self);
        return NULL;
    }
    return self;
}

qv_segment_t *
qv_segment_new (const qv_schema_t *schema, uint64_t id, uint32_t coll_id, uint32_t shard,
                uint32_t cap)
{
    qv_segment_t *self = s_new (schema, id, coll_id, shard);
    if (!self)
        return NULL;
    self->batch = qv_batch_new (self->schema, cap);
    if (!self->batch || s_alloc_meta (self, cap)) {
        qv_segment_unlink (&self);
        return NULL;
    }
    return self;
}

qv_segment_t *
qv_segment_link (qv_segment_t *self)
{
    atomic_fetch_add (&self->refs, 1);
    return self;
}

void
qv_segment_unlink (qv_segment_t **self_p)
{
    qv_segment_t *self = *self_p;
    if (!self)
        return;
    *self_p = NULL;
    if (atomic_fetch_sub (&self->refs, 1) != 1)
        return;
    qv_batch_destroy (&self->batch);
    free (self->ts);
    free ((void *) self->del_ts);
    for (int i = 0; i < QV_FIELDS_MAX; i++) {
        free (self->norms [i]);
        qv_segidx_unlink (&self->indexes [i]);
    }
    qv_schema_destroy (&self->schema);
    free (self);
}

static qv_segidx_t *
s_segidx_new (uint64_t version)
{
    qv_segidx_t *self = calloc (1, sizeof *self);
    if (self) {
        atomic_init (&self->refs, 1);
        self->version = version;
    }
    return self;
}

qv_segidx_t *
qv_segidx_new (qv_index_t **index_p, uint64_t version)
{
    qv_segidx_t *self = s_segidx_new (version);
    if (self)
        self->index = *index_p;
    else
        qv_index_destroy (index_p);
    *index_p = NULL;
    return self;
}

qv_segidx_t *
qv_segidx_new_scalar (qv_scalar_t **scalar_p, uint64_t version)
{
    qv_segidx_t *self = s_segidx_new (version);
    if (self)
        self->scalar = *scalar_p;
    else
        qv_scalar_destroy (scalar_p);
    *scalar_p = NULL;
    return self;
}

qv_segidx_t *
qv_segidx_link (qv_segidx_t *self)
{
    if (self)
        atomic_fetch_add (&self->refs, 1);
    return self;
}

void
qv_segidx_unlink (qv_segidx_t **self_p)
{
    qv_segidx_t *self = *self_p;
    if (!self)
        return;
    *self_p = NULL;
    if (atomic_fetch_sub (&self->refs, 1) == 1) {
        qv_index_destroy (&self->index);
        qv_scalar_destroy (&self->scalar);
        free (self);
    }
}

typedef struct {
    qv_segment_t *seg;
    uint64_t snap_ts;
} s_visible_t;

static int
s_allow_visible (uint32_t row, void *arg)
{
    s_visible_t *v = arg;
    return qv_segment_visible (v->seg, row, v->snap_ts);
}

void
qv_segment_search_index (qv_segment_t *self, qv_segidx_t *idx, const float *query,
                         uint32_t k, uint32_t ef, uint32_t nprobe, uint64_t snap_ts,
                         uint32_t tag, const roaring_bitmap_t *allowed,
                         const qv_range_t *range, uint32_t *ids, float *dists, qv_topk_t *top)
{
    s_visible_t vis = { self, snap_ts };
    qv_search_params_t params = { ef, nprobe, allowed, NULL, NULL };
    //  Rows deleted (or replaced) so far are skipped by the walk, not dropped after it.
    if (__atomic_load_n (&self->deleted, __ATOMIC_RELAXED) > 0) {
        params.allow_fn = s_allow_visible;
        params.allow_arg = &vis;
    }
    int n = qv_index_search (idx->index, query, k, &params, ids, dists);
    bool similarity = qv_index_metric (idx->index) != QV_METRIC_L2;
    for (int i = 0; i < n; i++) {
        float score = similarity ? -dists [i] : dists [i];
        if (qv_range_keeps (range, score))
            qv_topk_push (top, score, ((int64_t) tag << 32) | ids [i]);
    }
}

//  Grows a segment that is not yet shared (recovery only).
static int
s_grow (qv_segment_t *self, uint32_t need)
{
    uint32_t cap = self->cap * 2 > need ? self->cap * 2 : need;
    qv_batch_t *batch = qv_batch_new (self->schema, cap);
    uint64_t *ts = calloc (cap, sizeof (uint64_t));
    uint64_t *del = calloc (cap, sizeof (uint64_t));
    if (!batch || !ts || !del) {
        qv_batch_destroy (&batch);
        free (ts);
        free (del);
        return QV_ENOMEM;
    }
    uint32_t rows = atomic_load (&self->rows);
    for (uint32_t r = 0; r < rows; r++)
        qv_batch_copy_row (batch, r, self->batch, r, true);
    batch->n = rows;
    memcpy (ts, self->ts, rows * sizeof (uint64_t));
    memcpy (del, (void *) self->del_ts, rows * sizeof (uint64_t));
    qv_batch_destroy (&self->batch);
    free (self->ts);
    free ((void *) self->del_ts);
    self->batch = batch;
    self->ts = ts;
    self->del_ts = (_Atomic uint64_t *) del;
    for (int i = 0; i < QV_FIELDS_MAX; i++)
        if (self->norms [i]) {
            float *n = calloc (cap, sizeof (float));
            if (!n)
                return QV_ENOMEM;
            memcpy (n, self->norms [i], rows * sizeof (float));
            free (self->norms [i]);
            self->norms [i] = n;
        }
    self->cap = cap;
    return 0;
}

int64_t
qv_segment_append (qv_segment_t *self, qv_batch_t *batch, uint64_t ts)
{
    uint32_t first = atomic_load_explicit (&self->rows, memory_order_relaxed);
    if ((uint64_t) first + batch->n > self->cap && s_grow (self, first + batch->n))
        return -1;
    const qv_schema_t *schema = self->schema;
    for (int i = 0; i < schema->nfields; i++) {
        const qv_field_t *f = &schema->fields [i];
        size_t width = qv_field_width (f);
        qv_col_t *dc = &self->batch->cols [i], *sc = &batch->cols [i];
        if (width)
            memcpy (dc->data + width * first, sc->data, width * batch->n);
        else
            for (uint32_t r = 0; r < batch->n; r++) {
                dc->var [first + r] = sc->var [r];
                sc->var [r].ptr = NULL;
                sc->var [r].len = 0;
            }
        if (sc->valid) {
            if (!dc->valid) {
                dc->valid = malloc (self->cap);
                if (!dc->valid)
                    return -1;
                memset (dc->valid, 1, self->cap);
            }
            memcpy (dc->valid + first, sc->valid, batch->n);
        }
        if (self->norms [i])
            for (uint32_t r = 0; r < batch->n; r++)
                self->norms [i][first + r] = qv_dist_norm (qv_col_vec (f, dc, first + r), f->dim);
    }
    for (uint32_t r = 0; r < batch->n; r++)
        self->ts [first + r] = ts;
    self->batch->n = first + batch->n;
    atomic_store_explicit (&self->rows, first + batch->n, memory_order_release);
    return first;
}

void
qv_segment_delete (qv_segment_t *self, uint32_t row, uint64_t ts)
{
    if (atomic_load_explicit (&self->del_ts [row], memory_order_relaxed) == 0) {
        atomic_store_explicit (&self->del_ts [row], ts, memory_order_relaxed);
        __atomic_fetch_add (&self->deleted, 1, __ATOMIC_RELAXED);
    }
}

#define S_BLOCK 256

//  Score of a raw kernel value for the field's metric, smaller is better.
static inline float
s_score (qv_metric_t metric, float d, float qnorm, float xnorm)
{
    if (metric == QV_METRIC_L2)
        return d;
    if (metric == QV_METRIC_IP)
        return -d;
    float denom = qnorm * xnorm;
    return denom > 0 ? -d / denom : 0.0f;
}

//  What the blocked scan asks of a candidate row: the per-query scan's tests.
typedef struct {
    qv_segment_t *seg;
    uint64_t snap_ts;
    const roaring_bitmap_t *allowed;
    const qv_range_t *range;
} s_keep_t;

static int
s_keep (void *arg, uint32_t row, float score)
{
    s_keep_t *k = arg;
    return qv_range_keeps (k->range, score) && qv_segment_visible (k->seg, row, k->snap_ts)
        && (!k->allowed || roaring_bitmap_contains (k->allowed, row));
}

void
qv_segment_scan (qv_segment_t *self, int fi, const float *queries, const float *qnorms,
                 uint32_t nq, uint32_t from, uint32_t to, uint64_t snap_ts, uint32_t tag,
                 const roaring_bitmap_t *allowed, const qv_range_t *range, qv_topk_t **tops)
{
    const qv_field_t *f = &self->schema->fields [fi];
    const qv_dist_kernels_t *k = qv_dist_kernels ();
    qv_dist_batch_fn fn = f->metric == QV_METRIC_L2 ? k->l2sq_batch : k->ip_batch;
    qv_dist_fn pair = f->metric == QV_METRIC_L2 ? k->l2sq : k->ip;
    const float *base = qv_col_vec (f, &self->batch->cols [fi], 0);
    const float *norms = self->norms [fi];
    if (allowed && from < to
    &&  roaring_bitmap_range_cardinality (allowed, from, to) * 4 < (uint64_t) (to - from)) {
        //  A selective filter: visit only the allowed rows.
        roaring_uint32_iterator_t *it = roaring_create_iterator (allowed);
        roaring_move_uint32_iterator_equalorlarger (it, from);
        while (it->has_value && it->current_value < to) {
            uint32_t row = it->current_value;
            if (qv_segment_visible (self, row, snap_ts)) {
                const float *x = base + (size_t) row * f->dim;
                for (uint32_t q = 0; q < nq; q++) {
                    float s = s_score (f->metric, pair (queries + (size_t) q * f->dim, x, f->dim),
                                       qnorms ? qnorms [q] : 0, norms ? norms [row] : 0);
                    if (qv_range_keeps (range, s))
                        qv_topk_push (tops [q], s, ((int64_t) tag << 32) | row);
                }
            }
            roaring_advance_uint32_iterator (it);
        }
        roaring_free_uint32_iterator (it);
        return;
    }
    if (nq >= QV_BLOCKSCAN_MIN_NQ) {
        //  A batch: distances block by block in matrix-multiply form
        s_keep_t keep = { self, snap_ts, allowed, range };
        qv_blockscan_t scan = {
            .metric = f->metric, .dim = f->dim, .rows = base, .rnorms = norms,
            .queries = queries, .qnorms = qnorms, .nq = nq,
            .keep = s_keep, .keep_arg = &keep, .id_base = (int64_t) tag << 32
        };
        if (qv_blockscan_run (&scan, from, to, tops) == 0)
            return;
        //  Out of memory for the blocks: the per-query scan needs none
    }
    float dist [S_BLOCK];
    for (uint32_t r0 = from; r0 < to; r0 += S_BLOCK) {
        uint32_t n = to - r0 < S_BLOCK ? to - r0 : S_BLOCK;
        for (uint32_t q = 0; q < nq; q++) {
            const float *qv = queries + (size_t) q * f->dim;
            fn (qv, base + (size_t) r0 * f->dim, n, f->dim, dist);
            qv_topk_t *top = tops [q];
            float thr = qv_topk_threshold (top);
            for (uint32_t i = 0; i < n; i++) {
                float s = s_score (f->metric, dist [i], qnorms ? qnorms [q] : 0,
                                   norms ? norms [r0 + i] : 0);
                if (s <= thr && qv_range_keeps (range, s) && qv_segment_visible (self, r0 + i, snap_ts)
                &&  (!allowed || roaring_bitmap_contains (allowed, r0 + i))) {
                    qv_topk_push (top, s, ((int64_t) tag << 32) | (r0 + i));
                    thr = qv_topk_threshold (top);
                }
            }
        }
    }
}

size_t
qv_segment_bytes (qv_segment_t *self)
{
    uint32_t rows = atomic_load (&self->rows);
    return qv_batch_bytes (self->batch) + (size_t) rows * 16;
}

uint64_t
qv_segment_pk_hash (qv_segment_t *self, uint32_t row)
{
    const qv_col_t *c = &self->batch->cols [self->schema->pk];
    if (self->schema->fields [self->schema->pk].type == QV_INT64)
        return (uint64_t) qv_col_i64 (c, row);
    return qv_pkindex_hash (c->var [row].ptr, c->var [row].len);
}

//  Segment object layout: the stored-object envelope (qv_envelope.h) of kind SEGMENT,
//  format version 2, around (integers little-endian):
//    coll_id u32 | seg_id u64 | shard u32 | rows u32 | body size u64 |
//    body: msgpack {"schema": field maps, "ts": bin of rows x u64 (host order, x86
//    and arm64 are little-endian), "batch": qv_batch_write}.
//  Version 1 (before the envelope, Quiver <= 06906df) is still read:
//    magic "QVSEG\0\0\0" (8) | version u32 (=1) | the same fields and body |
//    crc32c u32 of everything before it.
#define S_MAGIC "QVSEG\0\0\0"
#define S_V1_VERSION 1
#define S_V1_HEADER 12                  //  magic + version, before the fields
#define S_VERSION 2                     //  the envelope's payload version
#define S_FIELDS 28                     //  coll_id .. body size

zchunk_t *
qv_segment_save (qv_segment_t *self)
{
    uint32_t rows = atomic_load (&self->rows);
    qv_wr_t *w = qv_wr_new ();
    if (!w)
        return NULL;
    qv_wr_map (w, 3);
    qv_wr_str (w, "schema");
    qv_schema_write (self->schema, w);
    qv_wr_str (w, "ts");
    qv_wr_bin (w, self->ts, rows * sizeof (uint64_t));
    qv_wr_str (w, "batch");
    self->batch->n = rows;
    qv_batch_write (self->batch, w);
    size_t body_size;
    const void *body = qv_wr_data (w, &body_size);
    size_t total = QV_ENVELOPE_HEADER_SIZE + S_FIELDS + body_size;
    zchunk_t *chunk = zchunk_new (NULL, total);
    if (!chunk) {
        qv_wr_destroy (&w);
        return NULL;
    }
    uint8_t header [QV_ENVELOPE_HEADER_SIZE + S_FIELDS] = { 0 };
    uint8_t *f = header + QV_ENVELOPE_HEADER_SIZE;
    qv_le_put32 (f, self->coll_id);
    qv_le_put64 (f + 4, self->id);
    qv_le_put32 (f + 12, self->shard);
    qv_le_put32 (f + 16, rows);
    qv_le_put64 (f + 20, body_size);
    zchunk_append (chunk, header, sizeof header);
    zchunk_append (chunk, body, body_size);
    qv_envelope_seal (zchunk_data (chunk), total, QV_ENVELOPE_SEGMENT, S_VERSION);
    qv_wr_destroy (&w);
    return chunk;
}

int
qv_segment_load (const char *name, const void *data, size_t size, qv_segment_t **out)
{
    *out = NULL;
    const uint8_t *p = data;
    //  f: the fields (coll_id .. body size) then the body, flen bytes in all
    const uint8_t *f;
    size_t flen;
    if (qv_envelope_is (p, size)) {
        qv_envelope_t env;
        int erc = qv_envelope_open (name, p, size, QV_ENVELOPE_SEGMENT, S_VERSION, &env);
        if (erc)
            return erc;
        if (env.version != S_VERSION || env.size < S_FIELDS)
            return qv_err (QV_ECORRUPT, "segment object %s: a %zu-byte version %u payload, "
                           "expected version %d of at least %d bytes", name, env.size,
                           env.version, S_VERSION, S_FIELDS);
        f = env.payload;
        flen = env.size;
    }
    else {
        //  Version 1, written before the envelope
        if (!p || size < S_V1_HEADER + S_FIELDS + 4 || memcmp (p, S_MAGIC, 8) != 0)
            return qv_err (QV_ECORRUPT, "segment object %s: not a segment (bad magic or truncated)", name);
        uint32_t version = qv_le_get32 (p + 8);
        if (version != S_V1_VERSION)
            return qv_err (QV_ECORRUPT, "segment object %s: unsupported format version %u", name, version);
        if (qv_crc32c (p, size - 4) != qv_le_get32 (p + size - 4))
            return qv_err (QV_ECORRUPT, "segment object %s: checksum mismatch", name);
        f = p + S_V1_HEADER;
        flen = size - S_V1_HEADER - 4;
    }
    uint32_t coll_id = qv_le_get32 (f), shard = qv_le_get32 (f + 12), rows = qv_le_get32 (f + 16);
    uint64_t seg_id = qv_le_get64 (f + 4), body_size = qv_le_get64 (f + 20);
    if (body_size != flen - S_FIELDS)
        return qv_err (QV_ECORRUPT, "segment object %s: truncated (body of %zu bytes, header says %llu)",
                       name, flen - S_FIELDS, (unsigned long long) body_size);
    int rc;
    qv_doc_t *doc = qv_doc_parse_view (f + S_FIELDS, body_size, SIZE_MAX, &rc);
    if (!doc)
        return qv_err (QV_ECORRUPT, "segment object %s: body does not decode", name);
    const qv_val_t *root = qv_doc_root (doc);
    const qv_val_t *vs = qv_val_get (root, "schema"), *vts = qv_val_get (root, "ts"),
                   *vb = qv_val_get (root, "batch");
    qv_schema_t *schema = vs ? qv_schema_parse (vs, &rc) : NULL;
    qv_segment_t *self = NULL;
    const void *tsp;
    size_t tslen;
    if (!schema || !vts || qv_val_bin (vts, &tsp, &tslen) || tslen != (size_t) rows * 8 || !vb)
        goto corrupt;
    self = s_new (schema, seg_id, coll_id, shard);
    if (!self)
        goto corrupt;
    if (qv_batch_read (self->schema, vb, &self->batch) || self->batch->n != rows)
        goto corrupt;
    if (s_alloc_meta (self, rows))
        goto corrupt;
    memcpy (self->ts, tsp, tslen);
    for (int i = 0; i < schema->nfields; i++)
        if (self->norms [i])
            for (uint32_t r = 0; r < rows; r++)
                self->norms [i][r] = qv_dist_norm (qv_col_vec (&schema->fields [i],
                                                   &self->batch->cols [i], r), schema->fields [i].dim);
    atomic_store (&self->rows, rows);
    self->state = QV_SEG_FLUSHED;
    qv_schema_destroy (&schema);
    qv_doc_destroy (&doc);
    *out = self;
    return 0;
corrupt:
    qv_segment_unlink (&self);
    qv_schema_destroy (&schema);
    qv_doc_destroy (&doc);
    return qv_err (QV_ECORRUPT, "segment object %s: contents do not match the format", name);
}
