//  Segments: columnar rows with MVCC timestamps, exact scan. The segment object format
//  is objstore/qv_segfile.c.
#include "qv_segment.h"
#include "qv_segment_alloc.h"
#include "qv_blockscan.h"
#include "qv_rc.h"
#include "qv_pkindex.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

qv_segment_t *
qv_segment_new (const qv_schema_t *schema, uint64_t id, uint32_t coll_id, uint32_t shard,
                uint32_t cap)
{
    qv_segment_t *self = s_new (schema, id, coll_id, shard);
    if (!self)
        return NULL;
    self->batch = qv_batch_new_sparse (self->schema, cap);
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
    free ((void *) atomic_load (&self->del_ts));
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
qv_segidx_new_record (uint64_t version, uint64_t manifest, uint64_t epoch)
{
    qv_segidx_t *self = s_segidx_new (version);
    if (self) {
        self->manifest = manifest;
        self->epoch = epoch;
    }
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
    //  Rows deleted (or replaced) or expired so far are skipped by the walk, not
    //  dropped after it.
    if (__atomic_load_n (&self->deleted, __ATOMIC_RELAXED) > 0
    ||  atomic_load_explicit (&self->expire_ts, memory_order_relaxed) > 0) {
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
    qv_batch_t *batch = qv_batch_new_sparse (self->schema, cap);
    uint64_t *ts = calloc (cap, sizeof (uint64_t));
    _Atomic uint64_t *old_del = atomic_load (&self->del_ts);
    uint64_t *del = old_del ? calloc (cap, sizeof (uint64_t)) : NULL;
    if (!batch || !ts || (old_del && !del)) {
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
    if (del)
        memcpy (del, (void *) old_del, rows * sizeof (uint64_t));
    qv_batch_destroy (&self->batch);
    free (self->ts);
    free ((void *) old_del);
    self->batch = batch;
    self->ts = ts;
    atomic_store (&self->del_ts, (_Atomic uint64_t *) del);
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
            for (uint32_t r = 0; sc->var && r < batch->n; r++) {
                //  A slot holding nothing is left so (a column of such costs nothing)
                if (!sc->var [r].ptr && !sc->var [r].len)
                    continue;
                if (qv_col_var_alloc (dc, self->cap))
                    return -1;
                dc->var [first + r] = sc->var [r];
                sc->var [r].ptr = NULL;
                sc->var [r].len = 0;
            }
        if (!width && batch->n)
            qv_col_var_set (dc, first + batch->n - 1);
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

int
qv_segment_delete (qv_segment_t *self, uint32_t row, uint64_t ts)
{
    //  Only this thread stores the array, so a relaxed load sees its own store
    _Atomic uint64_t *del = atomic_load_explicit (&self->del_ts, memory_order_relaxed);
    if (!del) {
        //  Zeroed before readers may see it (they load the pointer with acquire)
        del = calloc (self->cap ? self->cap : 1, sizeof (uint64_t));
        if (!del)
            return qv_err (QV_ENOMEM, "out of memory for the delete marks of %u rows", self->cap);
        atomic_store_explicit (&self->del_ts, del, memory_order_release);
    }
    if (atomic_load_explicit (&del [row], memory_order_relaxed) == 0) {
        atomic_store_explicit (&del [row], ts, memory_order_relaxed);
        __atomic_fetch_add (&self->deleted, 1, __ATOMIC_RELAXED);
    }
    return 0;
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
    return qv_batch_bytes (self->batch) + (size_t) rows * sizeof (uint64_t)
         + (atomic_load (&self->del_ts) ? (size_t) self->cap * sizeof (uint64_t) : 0);
}

uint64_t
qv_segment_pk_hash (qv_segment_t *self, uint32_t row)
{
    const qv_col_t *c = &self->batch->cols [self->schema->pk];
    if (self->schema->fields [self->schema->pk].type == QV_INT64)
        return (uint64_t) qv_col_i64 (c, row);
    return qv_pkindex_hash (qv_col_var (c, row)->ptr, qv_col_var (c, row)->len);
}
