//  A collection's in-memory state (qv_collection.h): partitions, scalar indexes,
//  read restrictions and search snapshots.
#include "qv_collection.h"
#include "qv_rc.h"

#include <stdlib.h>
#include <string.h>

uint32_t
qv_segment_cap_rows (const qv_schema_t *schema, uint32_t n, size_t max_bytes)
{
    size_t row = 16;
    for (int i = 0; i < schema->nfields; i++) {
        size_t w = qv_field_width (&schema->fields [i]);
        row += w ? w : 32;
    }
    size_t cap = max_bytes / row;
    if (cap < 1024)
        cap = 1024;
    if (cap > (1u << 22))
        cap = 1u << 22;
    return cap < n ? n : (uint32_t) cap;
}

//  Adds partition (id, name); QV_ENOMEM.
const qv_partition_t *
qv_collection_partition (qv_collection_t *c, const char *name)
{
    for (uint32_t i = 0; i < c->nparts; i++)
        if (strcmp (c->parts [i].name, name) == 0)
            return &c->parts [i];
    return NULL;
}

bool
qv_collection_has_partition (qv_collection_t *c, uint32_t id)
{
    for (uint32_t i = 0; i < c->nparts; i++)
        if (c->parts [i].id == id)
            return true;
    return false;
}

int
qv_collection_scalars (qv_collection_t *c, qv_segment_t *seg, uint64_t mask, qv_segidx_t **out)
{
    int n = 0;
    for (int fi = 0; fi < QV_FIELDS_MAX; fi++) {
        qv_segidx_t *idx = seg->indexes [fi];
        bool current = fi < c->schema->nfields && (mask >> fi & 1) && idx && idx->scalar
                    && c->index_defs [fi] && idx->version == c->index_versions [fi];
        out [fi] = current ? idx : NULL;
        n += current;
    }
    return n;
}

uint64_t
qv_collection_memory (qv_collection_t *coll, qv_memory_t *by)
{
    qv_memory_t m = { 0, 0, 0, qv_pkindex_bytes (coll->pk) };
    for (size_t j = 0; j < coll->nsegs; j++) {
        qv_segment_t *seg = coll->segs [j];
        size_t b = qv_segment_bytes (seg);
        if (seg->state == QV_SEG_FLUSHED)
            m.flushed += b;
        else
            m.growing += b;
        for (int fi = 0; fi < seg->schema->nfields; fi++)
            if (seg->indexes [fi] && seg->indexes [fi]->index)
                m.indexes += qv_index_memory_bytes (seg->indexes [fi]->index);
    }
    if (by) {
        by->growing += m.growing;
        by->flushed += m.flushed;
        by->indexes += m.indexes;
        by->pk += m.pk;
    }
    return m.growing + m.flushed + m.indexes + m.pk;
}

uint64_t
qv_collection_expire_floor (const qv_collection_t *coll, int64_t now_ms)
{
    uint64_t ttl_ms = coll->ttl_seconds * 1000;
    if (coll->ttl_seconds && now_ms > 0 && (uint64_t) now_ms > ttl_ms)
        return ((uint64_t) now_ms - ttl_ms) << QV_TS_LOGICAL_BITS;
    return 0;
}

void
qv_collection_expire (qv_collection_t *coll, int64_t now_ms)
{
    uint64_t floor = qv_collection_expire_floor (coll, now_ms);
    for (size_t i = 0; i < coll->nsegs; i++)
        atomic_store_explicit (&coll->segs [i]->expire_ts, floor, memory_order_relaxed);
}

qv_snapshot_t *
qv_snapshot_new (qv_collection_t *coll, uint64_t ts, int field, const roaring_bitmap_t *parts)
{
    qv_snapshot_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    self->segs = calloc (coll->nsegs + 1, sizeof (qv_segment_t *));
    self->rows = calloc (coll->nsegs + 1, sizeof (uint32_t));
    if (!self->segs || !self->rows) {
        qv_snapshot_destroy (&self);
        return NULL;
    }
    self->idx = calloc (coll->nsegs + 1, sizeof (qv_segidx_t *));
    if (!self->idx) {
        qv_snapshot_destroy (&self);
        return NULL;
    }
    qv_collection_expire (coll, coll->ttl_seconds ? qv_clock_wall_msec () : 0);
    size_t n = 0;
    for (size_t i = 0; i < coll->nsegs; i++) {
        qv_segment_t *seg = coll->segs [i];
        if (parts && !roaring_bitmap_contains (parts, seg->partition))
            continue;
        self->segs [n] = qv_segment_link (seg);
        self->rows [n] = atomic_load_explicit (&seg->rows, memory_order_acquire);
        qv_segidx_t *idx = seg->indexes [field];
        if (idx && idx->version == coll->index_versions [field] && (idx->index || idx->scalar))
            self->idx [n] = qv_segidx_link (idx);
        n++;
    }
    self->nsegs = n;
    self->ts = ts;
    self->field = field;
    return self;
}

void
qv_snapshot_destroy (qv_snapshot_t **self_p)
{
    qv_snapshot_t *self = *self_p;
    if (!self)
        return;
    for (size_t i = 0; i < self->nsegs; i++) {
        //  The index first: it may borrow the segment's vectors
        if (self->idx)
            qv_segidx_unlink (&self->idx [i]);
        qv_segment_unlink (&self->segs [i]);
    }
    for (size_t i = 0; self->allowed && i < self->nsegs; i++)
        if (self->allowed [i])
            roaring_bitmap_free (self->allowed [i]);
    free (self->allowed);
    free (self->segs);
    free (self->rows);
    free (self->idx);
    free (self);
    *self_p = NULL;
}

//  Decided on the filter's bitmap alone, so every part decides the same.
bool
qv_snapshot_uses_index (qv_snapshot_t *self, size_t i, uint32_t k, uint32_t ef, uint32_t nprobe)
{
    if (!self->idx [i])
        return false;
    //  A FLAT index holds the segment's own vectors: the segment's exact scan is the
    //  same search, and it takes a batch of queries block by block (qv_blockscan.h)
    if (qv_index_type (self->idx [i]->index) == QV_INDEX_FLAT)
        return false;
    if (!self->allowed || !self->allowed [i])
        return true;
    qv_search_params_t params = { ef, nprobe, self->allowed [i], NULL, NULL };
    return !qv_index_scans_exact (self->idx [i]->index, k, &params);
}

void
qv_snapshot_scan (qv_snapshot_t *self, const float *queries, const float *qnorms,
                  uint32_t nq, uint32_t k, uint32_t ef, uint32_t nprobe,
                  uint32_t part, uint32_t parts, qv_topk_t **tops)
{
    bool *by_index = malloc ((self->nsegs + 1) * sizeof (bool));
    uint64_t total = 0;
    size_t nindexed = 0;
    for (size_t i = 0; i < self->nsegs; i++) {
        by_index [i] = qv_snapshot_uses_index (self, i, k, ef, nprobe);
        if (by_index [i])
            nindexed++;
        else
            total += self->rows [i];
    }
    //  Exact scan of the segments not searched by index, rows split evenly.
    uint64_t lo = total * part / parts, hi = total * (part + 1) / parts, base = 0;
    for (size_t i = 0; i < self->nsegs; i++) {
        if (by_index [i])
            continue;
        uint64_t s0 = base, s1 = base + self->rows [i];
        base = s1;
        uint64_t a = lo > s0 ? lo : s0, b = hi < s1 ? hi : s1;
        if (a < b)
            qv_segment_scan (self->segs [i], self->field, queries, qnorms, nq,
                             (uint32_t) (a - s0), (uint32_t) (b - s0), self->ts,
                             (uint32_t) i, self->allowed ? self->allowed [i] : NULL,
                             self->has_range ? &self->range : NULL, tops);
    }
    if (nindexed == 0) {
        free (by_index);
        return;
    }
    //  Indexed segments: split by query, or by segment when there are few queries.
    uint32_t *ids = malloc (k * sizeof (uint32_t));
    float *dists = malloc (k * sizeof (float));
    uint32_t dim = self->segs [0]->schema->fields [self->field].dim;
    size_t nth = 0;
    for (size_t i = 0; i < self->nsegs; i++) {
        if (!by_index [i])
            continue;
        bool by_query = nq >= parts;
        bool mine_seg = by_query || nth++ % parts == part;
        if (!mine_seg)
            continue;
        for (uint32_t q = 0; q < nq; q++)
            if (!by_query || q % parts == part)
                qv_segment_search_index (self->segs [i], self->idx [i], queries + (size_t) q * dim,
                                         k, ef, nprobe, self->ts, (uint32_t) i,
                                         self->allowed ? self->allowed [i] : NULL,
                                         self->has_range ? &self->range : NULL, ids, dists, tops [q]);
    }
    free (ids);
    free (dists);
    free (by_index);
}

int
qv_collection_read_partitions (qv_collection_t *c, const qv_val_t *names, roaring_bitmap_t **parts_p)
{
    *parts_p = NULL;
    if (!names || qv_val_len (names) == 0)
        return 0;
    if (c->part_key >= 0)
        return qv_err (QV_EINVAL, "collection '%s' uses partition key '%s': its partitions are chosen "
                       "by the key, not named in requests", c->name, c->schema->fields [c->part_key].name);
    roaring_bitmap_t *parts = roaring_bitmap_create ();
    for (size_t i = 0; i < qv_val_len (names); i++) {
        char name [QV_NAME_MAX + 1];
        const char *s;
        size_t n;
        int rc = qv_val_str (qv_val_at (names, i), &s, &n)
               ? qv_err (QV_EPROTO, "'partitions' must be a list of strings")
               : qv_name_check ("partition", s, n);
        const qv_partition_t *p = NULL;
        if (rc == 0) {
            memcpy (name, s, n);
            name [n] = 0;
            if (!(p = qv_collection_partition (c, name)))
                rc = qv_err (QV_ENOTFOUND, "partition '%s' does not exist in collection '%s'", name, c->name);
        }
        if (rc) {
            roaring_bitmap_free (parts);
            return rc;
        }
        roaring_bitmap_add (parts, p->id);
    }
    *parts_p = parts;
    return 0;
}

int
qv_collection_prune (qv_collection_t *c, const qv_expr_t *expr, roaring_bitmap_t **parts_p)
{
    if (c->part_key < 0 || !expr)
        return 0;
    qv_expr_value_t *values;
    size_t n;
    int rc = qv_expr_equal_values (expr, c->part_key, &values, &n);
    if (rc != 1)
        return rc;
    roaring_bitmap_t *hit = roaring_bitmap_create ();
    for (size_t i = 0; i < n; i++)
        roaring_bitmap_add (hit, values [i].type == QV_VARCHAR
                                 ? qv_partition_of_str (values [i].s, values [i].len, c->num_partitions)
                                 : qv_partition_of_int (values [i].i, c->num_partitions));
    free (values);
    if (*parts_p) {
        roaring_bitmap_and_inplace (*parts_p, hit);
        roaring_bitmap_free (hit);
    }
    else
        *parts_p = hit;
    return 0;
}
