//  A segment: the rows of one collection shard in columnar form, with insert and
//  delete timestamps for snapshot reads; growing (appended to), then sealed, then
//  flushed to a checksummed segment object.
#ifndef QV_SEGMENT_H_INCLUDED
#define QV_SEGMENT_H_INCLUDED

#include "qv_batch.h"
#include "qv_index.h"
#include "qv_scalar.h"
#include "qv_topk.h"

#include <czmq.h>
#include <stdatomic.h>

//  The top bit of a segment id marks one a compaction made (the segment manager
//  numbers the others from 1 up).
#define QV_SEG_COMPACTED (1ull << 63)

typedef enum {
    QV_SEG_GROWING = 0,
    QV_SEG_SEALED = 1,              //  no more appends; flush pending
    QV_SEG_FLUSHED = 2              //  in the object store and a manifest
} qv_seg_state_t;

//  A built index of one segment field, shared by the searches using it: a vector
//  index, or a scalar one (of the segment's flushed, immutable column). Both may read
//  the segment's column (a vector index borrows its vectors: qv_index.h), so whoever
//  searches one holds its segment too (a snapshot links both), and an index goes
//  only into the indexes of the segment it was built or loaded on (or, after
//  qv_index_rebind, of an equal copy: the compactor's).
typedef struct {
    atomic_int refs;
    qv_index_t *index;              //  vector index, or NULL
    qv_scalar_t *scalar;            //  scalar index, or NULL
    uint64_t version;               //  the index definition it was built for
    uint64_t manifest;              //  first manifest naming it (0: loaded from one)
    uint64_t epoch;                 //  the writer epoch in its object's key (0: none)
} qv_segidx_t;

//  Takes the index (nulls *index_p). NULL on out of memory (the index is destroyed).
qv_segidx_t *
    qv_segidx_new (qv_index_t **index_p, uint64_t version);
//  The same for a scalar index.
qv_segidx_t *
    qv_segidx_new_scalar (qv_scalar_t **scalar_p, uint64_t version);
//  A vector index kept as a record only (its version, manifest and epoch), its graph
//  and codes not in memory: what a writer whose reads go to searcher processes keeps
//  of an index once a durable manifest names it. Searches of the segment scan it
//  exactly (a snapshot does not take a record-only index).
qv_segidx_t *
    qv_segidx_new_record (uint64_t version, uint64_t manifest, uint64_t epoch);
qv_segidx_t *
    qv_segidx_link (qv_segidx_t *self);
void
    qv_segidx_unlink (qv_segidx_t **self_p);

typedef struct {
    atomic_int refs;
    uint64_t id;
    uint32_t coll_id;
    uint32_t shard;
    uint32_t partition;             //  the partition its rows belong to (0: `_default`)
    qv_schema_t *schema;            //  own copy
    qv_batch_t *batch;              //  columns, cap rows allocated
    uint64_t *ts;                   //  insert timestamp per row
    //  Delete timestamp per row (0 while live), cap of them, allocated at the segment's
    //  first delete: NULL while no row is deleted. Read it with qv_segment_deleted_at.
    _Atomic uint64_t *_Atomic del_ts;
    float *norms [QV_FIELDS_MAX];   //  per-row vector norms of COSINE fields
    atomic_uint rows;               //  rows visible to readers (release/acquire)
    uint32_t cap;
    qv_seg_state_t state;           //  owned by the searcher's thread
    uint64_t first_seq;             //  WAL seq of its first rows (checkpoint floor)
    uint64_t epoch;                 //  flushed: the writer epoch in its object's key
                                    //  (0: none, as before writer epochs); set by the
                                    //  flusher before it writes, read after WRITTEN
    uint64_t manifest;              //  flushed: the first manifest version naming it (0:
                                    //  recovered from one); searcher's thread
    uint32_t deleted;               //  rows with del_ts set (searcher's thread)
    //  Rows inserted before this hybrid timestamp have expired (the collection's
    //  ttl_seconds, qv_collection_expire): invisible as if deleted. 0: none. Raised by
    //  whichever thread takes a snapshot; read by every reader.
    _Atomic uint64_t expire_ts;
    qv_segidx_t *indexes [QV_FIELDS_MAX];   //  built indexes (searcher's thread sets)
} qv_segment_t;

//  A new, empty, growing segment for cap rows (memory is committed as rows arrive).
qv_segment_t *
    qv_segment_new (const qv_schema_t *schema, uint64_t id, uint32_t coll_id,
                    uint32_t shard, uint32_t cap);

//  Reference counting: sealed segments are read by several threads.
qv_segment_t *
    qv_segment_link (qv_segment_t *self);
void
    qv_segment_unlink (qv_segment_t **self_p);

//  Appends the batch's rows with insert timestamp ts (var values are moved out of the
//  batch). Rows become visible to readers only once written. Only the owner thread
//  appends; the caller ensures rows + batch->n <= cap, except during recovery when
//  no reader exists (the segment then grows). Returns the first new row, or -1.
int64_t
    qv_segment_append (qv_segment_t *self, qv_batch_t *batch, uint64_t ts);

//  The delete timestamp of row, 0 while it is live.
static inline uint64_t
qv_segment_deleted_at (qv_segment_t *self, uint32_t row)
{
    _Atomic uint64_t *del = atomic_load_explicit (&self->del_ts, memory_order_acquire);
    return del ? atomic_load_explicit (&del [row], memory_order_relaxed) : 0;
}

//  Whether row has expired (its collection's TTL, as of the last qv_collection_expire).
static inline bool
qv_segment_expired (qv_segment_t *self, uint32_t row)
{
    return self->ts [row] < atomic_load_explicit (&self->expire_ts, memory_order_relaxed);
}

//  Whether row is visible at snapshot ts: inserted at or before it, not deleted at or
//  before it, and not expired.
static inline bool
qv_segment_visible (qv_segment_t *self, uint32_t row, uint64_t snap_ts)
{
    uint64_t del = qv_segment_deleted_at (self, row);
    return self->ts [row] <= snap_ts && (del == 0 || del > snap_ts)
        && !qv_segment_expired (self, row);
}

//  Marks row deleted at ts (a segment's first delete allocates its delete timestamps).
//  Owner thread only. 0, or QV_ENOMEM.
int
    qv_segment_delete (qv_segment_t *self, uint32_t row, uint64_t ts);

//  Range search: only scores (smaller is better: squared L2, or the negated
//  similarity) in [lo, hi) are kept. NULL: no range.
typedef struct {
    float lo;
    float hi;
} qv_range_t;

static inline bool
qv_range_keeps (const qv_range_t *range, float score)
{
    return !range || (score >= range->lo && score < range->hi);
}

//  Exact scan of rows [from, to) for nq queries (nq x dim floats) on vector field fi,
//  pushing (score, (tag << 32) | row) into tops [q] for rows visible at snap_ts (and in
//  allowed, when not NULL). Scores are smaller-is-better (similarities negated).
//  qnorms: query norms (COSINE). Batches of QV_BLOCKSCAN_MIN_NQ queries or more are
//  scanned block by block in matrix-multiply form (qv_blockscan.h), with the same pushes.
void
    qv_segment_scan (qv_segment_t *self, int fi, const float *queries, const float *qnorms,
                     uint32_t nq, uint32_t from, uint32_t to, uint64_t snap_ts, uint32_t tag,
                     const roaring_bitmap_t *allowed, const qv_range_t *range, qv_topk_t **tops);

//  Searches the segment's index for field fi (installed in idx) for one query, pushing
//  up to k visible rows as (score, (tag << 32) | row) into top; ids/dists: k entries of
//  scratch. ef/nprobe: 0 for defaults. allowed: rows the filter lets through, or NULL.
void
    qv_segment_search_index (qv_segment_t *self, qv_segidx_t *idx, const float *query,
                             uint32_t k, uint32_t ef, uint32_t nprobe, uint64_t snap_ts,
                             uint32_t tag, const roaring_bitmap_t *allowed,
                             const qv_range_t *range, uint32_t *ids, float *dists, qv_topk_t *top);

//  Bytes of memory held for the visible rows.
size_t
    qv_segment_bytes (qv_segment_t *self);

//  The primary key of row as a pk-index key (hash for varchar), and its bytes.
uint64_t
    qv_segment_pk_hash (qv_segment_t *self, uint32_t row);

#endif
