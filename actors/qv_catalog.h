//  The database state a searcher holds: collections, their segments and primary-key
//  indexes; applies WAL records; answers searches and gets; writes and reads manifests.
#ifndef QV_CATALOG_H_INCLUDED
#define QV_CATALOG_H_INCLUDED

#include "qv_cdc.h"
#include "qv_expr.h"
#include "qv_pkindex.h"
#include "qv_proto.h"
#include "qv_record.h"
#include "qv_segment.h"
#include "qv_store.h"

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
} qv_collection_t;

typedef struct _qv_catalog_t qv_catalog_t;

qv_catalog_t *
    qv_catalog_new (void);
void
    qv_catalog_destroy (qv_catalog_t **self_p);

qv_collection_t *
    qv_catalog_find (qv_catalog_t *self, const char *name);
qv_collection_t *
    qv_catalog_find_id (qv_catalog_t *self, uint32_t id);
//  Collections in name order (borrowed pointers); *n set.
qv_collection_t **
    qv_catalog_list (qv_catalog_t *self, size_t *n);

//  The change event of rec (see qv_cdc_from_record), naming its collection and the
//  partition it writes to when that is not `_default` (a delete restricted to a
//  partition names it always); NULL if the collection is unknown or out of memory.
qv_cdc_t *
    qv_catalog_change_event (qv_catalog_t *self, const qv_record_t *rec, uint64_t seq, bool with_rows);

//  The schema of a collection id, for qv_record_read (qv_schema_lookup_fn).
const qv_schema_t *
    qv_catalog_schema_of (void *self, uint32_t coll_id);

//  The capacity in rows of a new segment of schema receiving a batch of n rows; the
//  segment manager and the searcher use the same rule.
uint32_t
    qv_segment_cap_rows (const qv_schema_t *schema, uint32_t n, size_t max_bytes);

//  Result of applying one record.
typedef struct {
    int rc;                         //  0 or a qv_rc_t
    uint32_t count;                 //  rows inserted / keys deleted
    qv_collection_t *coll;          //  the collection concerned, if it exists
} qv_apply_t;

//  Applies a record logged at WAL position seq. Replay and live traffic use this same
//  path; records already covered by the loaded manifest are skipped. seg_max_bytes
//  sizes new segments. Owner thread only.
qv_apply_t
    qv_catalog_apply (qv_catalog_t *self, qv_record_t *rec, uint64_t seq, size_t seg_max_bytes);

//  Seals a growing segment (no more appends). Returns it (borrowed) or NULL.
qv_segment_t *
    qv_catalog_seal (qv_catalog_t *self, uint32_t coll_id, uint64_t seg_id);

//  The WAL position from which replay must start so nothing outside the manifest is
//  lost: the first seq of any segment not yet flushed, else applied + 1, or applied
//  while that object is applied only in part (qv_catalog_set_partial).
uint64_t
    qv_catalog_checkpoint (qv_catalog_t *self);

//  Says whether records of WAL object applied_seq are still to be applied (false until
//  said; replay applies whole objects). The searcher applies a live object's records
//  one at a time, and a manifest may be written between two of them: it has the
//  records before and not those after, so replay must start at that object again.
void
    qv_catalog_set_partial (qv_catalog_t *self, bool partial);
uint64_t
    qv_catalog_applied_seq (qv_catalog_t *self);
uint64_t
    qv_catalog_max_ts (qv_catalog_t *self);
uint32_t
    qv_catalog_next_coll_id (qv_catalog_t *self);
uint64_t
    qv_catalog_next_seg_id (qv_catalog_t *self);
//  The highest JetStream stream sequence applied (recorded in insert/delete records,
//  kept in manifests, recovered by replay); 0 if none. note_ raises it (replay of a
//  record whose collection was dropped since still counts as applied).
uint64_t
    qv_catalog_stream_seq (qv_catalog_t *self);
void
    qv_catalog_note_stream_seq (qv_catalog_t *self, uint64_t sseq);

//  Manifest: the catalog, flushed segments with their deletes, and the checkpoint.
//  qv_catalog_manifest encodes the next version (a new zchunk, *version set).
//  qv_catalog_recover loads the newest readable manifest and its segments from store;
//  an unreadable newest manifest or a bad segment object is QV_ECORRUPT naming it.
zchunk_t *
    qv_catalog_manifest (qv_catalog_t *self, uint64_t *version);
int
    qv_catalog_recover (qv_catalog_t *self, qv_store_t *store);
uint64_t
    qv_catalog_manifest_version (qv_catalog_t *self);
//  Where WAL replay starts after qv_catalog_recover: the loaded manifest's checkpoint
//  (0 for a new database).
uint64_t
    qv_catalog_replay_from (qv_catalog_t *self);

//  Object key of a segment's index for field fi.
void
    qv_index_object_key (uint32_t coll_id, uint64_t seg_id, int fi, char *out, size_t size);

//  Flushed segments of coll whose index for its defined fields is missing or stale:
//  calls fn (arg, coll, seg, fi) for each.
typedef void (qv_index_todo_fn) (void *arg, qv_collection_t *coll, qv_segment_t *seg, int fi);
void
    qv_catalog_index_todo (qv_catalog_t *self, qv_index_todo_fn *fn, void *arg);

//  The scalar indexes of seg (a segment of coll) built for the current definitions of
//  the fields in mask, into out [QV_FIELDS_MAX] (NULL elsewhere; borrowed: link one
//  to hand it to another thread). Returns how many. Owner thread only.
int
    qv_collection_scalars (qv_collection_t *coll, qv_segment_t *seg, uint64_t mask,
                           qv_segidx_t **out);

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
