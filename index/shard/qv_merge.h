//  Compaction's merge: the rows of several flushed segments that a compaction keeps,
//  as one new segment. Every process that applies a compaction record computes the
//  same segment from the same rows (the writer's compactor before logging the record,
//  each catalog when it applies it), so row numbers agree everywhere and an index built
//  by one serves all.
#ifndef QV_MERGE_H_INCLUDED
#define QV_MERGE_H_INCLUDED

#include "qv_segment.h"

//  Whether a compaction at snap_ts with expiry cut expire_cut keeps row of seg: not
//  deleted (or replaced) at or before snap_ts, and not inserted before expire_cut.
static inline bool
qv_merge_keeps (qv_segment_t *seg, uint32_t row, uint64_t snap_ts, uint64_t expire_cut)
{
    uint64_t del = qv_segment_deleted_at (seg, row);
    return (del == 0 || del > snap_ts) && seg->ts [row] >= expire_cut;
}

//  The rows of olds [0..n) (segments of one collection, shard and partition, all rows
//  applied) that the compaction keeps, segment by segment and row by row in order, as
//  a new growing segment `id` (the caller sets its state): insert timestamps and
//  cosine norms copied, and the delete timestamps of rows deleted after snap_ts. NULL
//  on out of memory.
qv_segment_t *
    qv_segment_merge (qv_segment_t **olds, size_t n, uint64_t id, uint64_t snap_ts,
                      uint64_t expire_cut);

//  Rows the compaction would keep of olds [0..n), and rows it would drop.
void
    qv_merge_count (qv_segment_t **olds, size_t n, uint64_t snap_ts, uint64_t expire_cut,
                    uint64_t *kept, uint64_t *dropped);

#endif
