//  A job: a client request on its way through the actors (proxy -> segment manager
//  -> searcher -> proxy), owned by one actor at a time. It travels inside the messages
//  of schemas/qv_msg.h (WRITE, FLUSH, READ, APPLY, REPLY, RESOLVED), which say what
//  to do with it; across processes qv_msg encodes it (request bytes, record, reply).
#ifndef QV_JOB_H_INCLUDED
#define QV_JOB_H_INCLUDED

#include "qv_proto.h"
#include "qv_record.h"

typedef struct {
    uint64_t id;                    //  proxy's handle for the client
    qv_req_t req;                   //  decoded request (owns its document)
    qv_record_t *rec;               //  the change to log, if any
    uint64_t sseq;                  //  JetStream stream sequence of the request, 0 if none
    uint64_t sgen;                  //  ... and the bridge's consumer generation it came in
                                    //  (a new one starts after every rewind)
    size_t bytes;                   //  bytes it adds to unflushed memory
    int64_t deadline;               //  msec clock; backpressure waits until then
    int64_t deleted;                //  a delete: the live rows its keys named when the
                                    //  searcher resolved them (RESOLVED), which the
                                    //  segment manager's acknowledgement counts; -1
                                    //  until then
    int rc;                         //  outcome, for the proxy's own bookkeeping
    int64_t arrived;                //  usec clock when the proxy took it (its metrics;
                                    //  not sent between processes)
    void *reply;                    //  encoded reply (malloc'd)
    size_t reply_size;
} qv_job_t;

//  An index build, searcher -> meta -> builder (BUILD) -> meta -> searcher (BUILT), by pointer.
typedef struct {
    uint32_t coll_id;
    void *seg;                      //  qv_segment_t, linked by the searcher
    int field;                      //  indexed field's index in the schema
    qv_index_def_t def;
    uint64_t version;               //  index definition version (create_index ts)
    void *index;                    //  qv_index_t built, or NULL
    void *scalar;                   //  qv_scalar_t built (scalar index types), or NULL
    int rc;
    char error [160];
    int64_t msec;                   //  build time
    uint64_t epoch;                 //  the writer epoch in the index object's key
    uint32_t threads;               //  build threads (0: one per core)
} qv_build_t;

//  A compaction of flushed segments of one collection shard and partition (QV_REC_COMPACT),
//  searcher -> meta -> compactor (COMPACT) -> meta -> searcher (COMPACTED), by pointer:
//  the searcher plans it (which segments, at which snapshot and expiry cut, the new
//  segment's id, the index definitions to build), the compactor merges the rows,
//  writes the new segment's object and builds and writes its indexes; the searcher
//  then has the record logged, and takes the indexes once it is applied.
typedef struct {
    uint64_t id;                    //  the compaction (compact's compaction_id)
    uint32_t coll_id;
    uint32_t shard;
    uint32_t partition;
    void **olds;                    //  qv_segment_t * (linked), in the record's order
    uint32_t nolds;
    uint64_t new_id;                //  the merged segment's id
    uint64_t snap_ts;               //  rows deleted at or before it are dropped
    uint64_t expire_cut;            //  rows inserted before it are dropped (expired)
    qv_build_t *builds [QV_FIELDS_MAX];   //  one per indexed field: def, field and version
    uint32_t nbuilds;               //  set by the searcher, the index by the compactor
    void *merged;                   //  the merged qv_segment_t (the compactor's)
    uint64_t rows;                  //  rows it keeps
    uint64_t dropped;               //  rows it drops
    uint64_t bytes;                 //  the segment object's size
    uint64_t epoch;                 //  the writer epoch in its objects' keys
    int rc;
    char error [160];
    int64_t msec;                   //  time taken
} qv_compact_t;

//  A new job for request number id, and its destructor (frees request, record, reply).
qv_job_t *
    qv_job_new (uint64_t id);
void
    qv_job_destroy (qv_job_t **self_p);

//  Sets the job's reply to an error reply (echoing the request's rid) / takes the
//  bytes of a writer as the reply.
void
    qv_job_fail (qv_job_t *self, int rc, const char *message);
void
    qv_job_reply (qv_job_t *self, qv_wr_t *w, int rc);

//  The acknowledgement of an insert or upsert (job->rec, type QV_REC_INSERT, logged
//  at job->rec->ts): a new job of the same id holding only the success reply {ids, ts,
//  count}, for the client; NULL out of memory.
qv_job_t *
    qv_job_insert_ack (const qv_job_t *self);

//  The acknowledgement of a delete (job->rec, type QV_REC_DELETE, logged at
//  job->rec->ts) whose keys named job->deleted live rows: a new job of the same id
//  holding only the success reply {deleted, ts} ({ts} if the delete was not counted:
//  a JetStream message's, whose reply only says whether it is durable); NULL out of
//  memory.
qv_job_t *
    qv_job_delete_ack (const qv_job_t *self);

//  The acknowledgement of a stream write sent again after it was logged: a new job of
//  the same id holding only {again: true} (the first copy's answer was lost; the
//  bridge, its only reader, needs to know it is durable); NULL out of memory.
qv_job_t *
    qv_job_again_ack (const qv_job_t *self);

#endif
