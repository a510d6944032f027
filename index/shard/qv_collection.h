//  A collection's in-memory state, as the actors share it: its schema, segments
//  (growing to flushed), primary-key index, partitions and index definitions; the
//  partition and scalar-index questions asked of it, and search snapshots over it.
//  The catalog (actors/qv_catalog.h) holds the collections and applies records to them.
#ifndef QV_COLLECTION_H_INCLUDED
#define QV_COLLECTION_H_INCLUDED

#include "qv_expr.h"
#include "qv_pkindex.h"
#include "qv_record.h"
#include "qv_segment.h"

#include <roaring/roaring.h>

typedef struct {
    uint32_t id;
    char name [QV_NAME_MAX + 1];
    qv_schema_t *schema;
    uint32_t shards;
    char consistency [16];
    char *description;
    uint64_t ttl_seconds;
    uint64_t created_ts;
    qv_segment_t **segs;            //  every segment, growing to flushed
    size_t nsegs;
    size_t segs_cap;
    qv_pkindex_t *pk;
    uint64_t live_rows;
    qv_index_def_t *index_defs [QV_FIELDS_MAX];   //  per vector field, NULL if none
    uint64_t index_versions [QV_FIELDS_MAX];     //  ts of the create_index record
    char index_errors [QV_FIELDS_MAX][160];     //  last build failure, "" if none
    qv_partition_t *parts;          //  in creation order; `_default` (id 0) first
    uint32_t nparts;
    uint32_t next_part;             //  id of the next partition created (ids never reused)
    int part_key;                   //  partition-key field, or -1 (also for a key flag
                                    //  from before partitions: num_partitions 0)
    uint32_t num_partitions;        //  internal partitions of a partition-key collection
    //  Segments a compaction replaced (QV_REC_COMPACT): inserts logged into them are
    //  in the segment that replaced them, so replay skips them as it skips inserts
    //  into flushed segments
    uint64_t *retired;
    size_t nretired;
} qv_collection_t;

//  The capacity in rows of a new segment of schema receiving a batch of n rows; the
//  segment manager and the searcher use the same rule.
uint32_t
    qv_segment_cap_rows (const qv_schema_t *schema, uint32_t n, size_t max_bytes);

//  The scalar indexes of seg (a segment of coll) built for the current definitions of
//  the fields in mask, into out [QV_FIELDS_MAX] (NULL elsewhere; borrowed: link one
//  to hand it to another thread). Returns how many. Owner thread only.
int
    qv_collection_scalars (qv_collection_t *coll, qv_segment_t *seg, uint64_t mask,
                           qv_segidx_t **out);

//  Memory a collection holds, by component (bytes).
typedef struct {
    uint64_t growing;               //  rows of growing and sealed segments
    uint64_t flushed;               //  rows of flushed segments
    uint64_t indexes;               //  vector indexes
    uint64_t pk;                    //  the primary-key index
} qv_memory_t;

//  Adds coll's memory into *by (NULL: not wanted); returns its sum. Owner thread.
uint64_t
    qv_collection_memory (qv_collection_t *coll, qv_memory_t *by);

//  The partition of coll named name, or NULL.
const qv_partition_t *
    qv_collection_partition (qv_collection_t *coll, const char *name);
bool
    qv_collection_has_partition (qv_collection_t *coll, uint32_t id);

//  The partitions a read is restricted to, from its `partitions` list: *parts_p is a
//  new bitmap of partition ids, or NULL when the list is absent or empty (all).
//  NOT_FOUND naming an unknown partition; INVALID_ARGUMENT on a partition-key collection.
int
    qv_collection_read_partitions (qv_collection_t *coll, const qv_val_t *names,
                                   roaring_bitmap_t **parts_p);

//  Partition-key pruning: when expr (may be NULL) constrains coll's partition key to a
//  finite set of values (==, in), *parts_p becomes the set of partitions they hash to
//  (intersected with *parts_p if that was not NULL). Otherwise *parts_p is unchanged.
int
    qv_collection_prune (qv_collection_t *coll, const qv_expr_t *expr,
                         roaring_bitmap_t **parts_p);

//  Search over a snapshot of one collection at ts. results: one topk per query,
//  ids are (slot << 32 | row) into snap->segs.
typedef struct {
    qv_segment_t **segs;            //  linked
    uint32_t *rows;                 //  visible rows of each at snapshot time
    size_t nsegs;
    uint64_t ts;
    int field;                      //  vector field searched
    qv_segidx_t **idx;              //  linked index of each segment, or NULL
    roaring_bitmap_t **allowed;     //  rows a filter allows, per segment; NULL: no filter
    qv_range_t range;               //  range search bounds, when has_range
    bool has_range;
} qv_snapshot_t;

//  Makes the rows of coll older than its ttl_seconds at wall-clock time now_ms
//  (qv_clock_wall_msec) invisible to every read (qv_segment_visible) from now on; with
//  ttl_seconds 0, none. qv_snapshot_new calls it; call it before reading rows outside a
//  snapshot (get by key). Rows expire by their insert timestamp, whose physical part is
//  the writer's wall clock; they stay in memory and in their segment objects.
void
    qv_collection_expire (qv_collection_t *coll, int64_t now_ms);
//  The insert timestamp below which coll's rows have expired at wall-clock time now_ms
//  (0: none expire).
uint64_t
    qv_collection_expire_floor (const qv_collection_t *coll, int64_t now_ms);

//  Only segments of the partitions in parts are taken (NULL: all).
qv_snapshot_t *
    qv_snapshot_new (qv_collection_t *coll, uint64_t ts, int field, const roaring_bitmap_t *parts);
void
    qv_snapshot_destroy (qv_snapshot_t **self_p);
//  Whether qv_snapshot_scan searches segment i through its index: not when it has
//  none, nor when the filter (self->allowed) allows so few of its rows that the index
//  would only scan those exactly, nor for a FLAT index (the segment scan is the same
//  search); the scan does that for all queries at once, split
//  across the parts, as for a segment without an index.
bool
    qv_snapshot_uses_index (qv_snapshot_t *self, size_t i, uint32_t k, uint32_t ef, uint32_t nprobe);
//  Searches part `part` of `parts` for nq queries: rows of segments without an index
//  (or whose index would only scan the few rows the filter allows, see
//  qv_index_scans_exact) are split evenly across parts and scanned exactly; indexed
//  segments are split by query (when nq >= parts) or by segment. k = the top-k size; ef/nprobe 0 = defaults.
void
    qv_snapshot_scan (qv_snapshot_t *self, const float *queries, const float *qnorms,
                      uint32_t nq, uint32_t k, uint32_t ef, uint32_t nprobe,
                      uint32_t part, uint32_t parts, qv_topk_t **tops);

#endif
