//  Compaction's merge of flushed segments (see qv_merge.h).
#include "qv_merge.h"
#include "qv_rc.h"

#include <string.h>

void
qv_merge_count (qv_segment_t **olds, size_t n, uint64_t snap_ts, uint64_t expire_cut,
                uint64_t *kept, uint64_t *dropped)
{
    *kept = *dropped = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t rows = atomic_load (&olds [i]->rows);
        for (uint32_t r = 0; r < rows; r++)
            if (qv_merge_keeps (olds [i], r, snap_ts, expire_cut))
                (*kept)++;
            else
                (*dropped)++;
    }
}

qv_segment_t *
qv_segment_merge (qv_segment_t **olds, size_t n, uint64_t id, uint64_t snap_ts,
                  uint64_t expire_cut)
{
    if (n == 0)
        return NULL;
    uint64_t kept, dropped;
    qv_merge_count (olds, n, snap_ts, expire_cut, &kept, &dropped);
    if (kept > UINT32_MAX - 1)
        return NULL;
    qv_segment_t *first = olds [0];
    qv_segment_t *seg = qv_segment_new (first->schema, id, first->coll_id, first->shard,
                                        kept ? (uint32_t) kept : 1);
    if (!seg)
        return NULL;
    seg->partition = first->partition;
    const qv_schema_t *schema = seg->schema;
    uint32_t out = 0;
    for (size_t i = 0; i < n; i++) {
        qv_segment_t *old = olds [i];
        uint32_t rows = atomic_load (&old->rows);
        for (uint32_t r = 0; r < rows; r++) {
            if (!qv_merge_keeps (old, r, snap_ts, expire_cut))
                continue;
            if (qv_batch_copy_row (seg->batch, out, old->batch, r, false)) {
                qv_segment_unlink (&seg);
                return NULL;
            }
            seg->ts [out] = old->ts [r];
            for (int f = 0; f < schema->nfields; f++)
                if (seg->norms [f] && old->norms [f])
                    seg->norms [f][out] = old->norms [f][r];
            uint64_t del = qv_segment_deleted_at (old, r);
            if (del && qv_segment_delete (seg, out, del)) {
                qv_segment_unlink (&seg);
                return NULL;
            }
            out++;
        }
    }
    seg->batch->n = out;
    atomic_store_explicit (&seg->rows, out, memory_order_release);
    return seg;
}
