//  The catalog (the metadata coordinator's registry): collections by name and id, id
//  allocation, application of WAL records to the collections (index/shard/qv_collection.h),
//  index build scheduling, and manifests (written and recovered from the object store).
#ifndef QV_CATALOG_H_INCLUDED
#define QV_CATALOG_H_INCLUDED

#include "qv_cdc.h"
#include "qv_collection.h"
#include "qv_expr.h"
#include "qv_pkindex.h"
#include "qv_proto.h"
#include "qv_record.h"
#include "qv_segment.h"
#include "qv_store.h"

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

//  The user store (borrowed), kept by QV_REC_USER records and the manifest.
struct _qv_users_t;
struct _qv_users_t *
    qv_catalog_users (qv_catalog_t *self);

//  The schema of a collection id, for qv_record_read (qv_schema_lookup_fn).
const qv_schema_t *
    qv_catalog_schema_of (void *self, uint32_t coll_id);

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

//  The live rows a delete record's keys name now, in its partition if it names one
//  (each row once, however often its key is listed): what the delete would remove if
//  it were applied at once. Owner thread only.
uint64_t
    qv_catalog_live_keys (qv_catalog_t *self, const qv_record_t *rec);

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
//  The writer epoch manifests are written with from now on (the WAL's, after its
//  fence; 0 until set). Recovery takes, like the WAL's replay, at each version the
//  manifest of the highest epoch and only if that epoch is at least the highest taken
//  at a lower version: a deposed writer's late manifest is ignored.
void
    qv_catalog_set_epoch (qv_catalog_t *self, uint64_t epoch);
//  Recovery then keeps each vector index a manifest lists as a record only (version
//  and epoch; qv_segidx_new_record), without loading its object: a writer whose reads
//  go to searcher processes, which load them.
void
    qv_catalog_set_index_records (qv_catalog_t *self, bool records_only);
int
    qv_catalog_recover (qv_catalog_t *self, qv_store_t *store);
uint64_t
    qv_catalog_manifest_version (qv_catalog_t *self);
//  The writer epoch of the manifest recovered (0: none, or one written before epochs).
uint64_t
    qv_catalog_manifest_epoch (qv_catalog_t *self);
//  Where WAL replay starts after qv_catalog_recover: the loaded manifest's checkpoint
//  (0 for a new database).
uint64_t
    qv_catalog_replay_from (qv_catalog_t *self);

//  Object keys of a segment, "segments/<coll>/<seg, 20 digits>", and of its index for
//  field fi, the same + ".index<fi>"; written by a writer of epoch > 0, the segment
//  number is followed by "-<epoch, 20 digits>": a deposed writer's late segment or
//  index write never replaces the object a newer writer's manifest names (manifests
//  name each object's epoch; 0 for the keys written before epochs).
void
    qv_segment_object_key (uint32_t coll_id, uint64_t seg_id, uint64_t epoch, char *out,
                           size_t size);
void
    qv_index_object_key (uint32_t coll_id, uint64_t seg_id, int fi, uint64_t epoch, char *out,
                         size_t size);

//  The collection and segment ids a segment or index object key names (the keys
//  above); 0 or -1 if key is not one.
int
    qv_segment_object_parse (const char *key, uint32_t *coll_id, uint64_t *seg_id);
//  Whether the catalog holds segment seg_id of collection coll_id (in any state).
bool
    qv_catalog_has_segment (qv_catalog_t *self, uint32_t coll_id, uint64_t seg_id);

//  Flushed segments of coll whose index for its defined fields is missing or stale:
//  calls fn (arg, coll, seg, fi) for each.
typedef void (qv_index_todo_fn) (void *arg, qv_collection_t *coll, qv_segment_t *seg, int fi);
void
    qv_catalog_index_todo (qv_catalog_t *self, qv_index_todo_fn *fn, void *arg);

#endif
