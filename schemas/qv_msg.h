//  The messages between actors, defined once: one table (name, fields, field types),
//  one msgpack codec for crossing processes, and a send/receive pair that passes a
//  message by pointer inside one process.
#ifndef QV_MSG_H_INCLUDED
#define QV_MSG_H_INCLUDED

#include "qv_job.h"

//  Field types, and the C type of each in a message struct:
//    U64   uint64_t
//    I64   int64_t
//    BOOL  bool
//    STR   char *          owned, NUL-terminated; never NULL in a decoded message
//    BIN   qv_msg_bin_t    owned bytes
//    JOB   qv_job_t *      owned: a client request, its record and reply (qv_job.h)
//    PTR   void *          an in-process handle (a linked segment, an index build):
//                          what owns it is said in the message's comment; it cannot
//                          cross processes, and qv_msg_encode refuses it (QV_EINVAL)
typedef struct {
    void *data;                     //  malloc'd, or NULL when size is 0
    size_t size;
} qv_msg_bin_t;

#define QV_MT_C_U64  uint64_t
#define QV_MT_C_I64  int64_t
#define QV_MT_C_BOOL bool
#define QV_MT_C_STR  char *
#define QV_MT_C_BIN  qv_msg_bin_t
#define QV_MT_C_JOB  qv_job_t *
#define QV_MT_C_PTR  void *

typedef enum {
    QV_MT_U64, QV_MT_I64, QV_MT_BOOL, QV_MT_STR, QV_MT_BIN, QV_MT_JOB, QV_MT_PTR
} qv_mtype_t;

//  THE TABLE. Every message that one actor sends another: M (NAME, name, route), and
//  its fields, QV_MSG_F_name (F, T): F (T, TYPE, field). The route says who sends it
//  to whom; an actor's @interface block lists the ones it takes and sends.
#define QV_MSG_TABLE(M)                                                                 \
    M (WRITE,      write,      "proxy -> segmgr: log job->rec (insert, upsert, delete, DDL)")   \
    M (FLUSH,      flush,      "proxy -> segmgr -> searcher -> meta: seal coll's growing "      \
                               "segments; meta has the reply sent once they are in a durable " \
                               "manifest")                                                     \
    M (FLUSH_DONE, flush_done, "meta -> searcher: coll's sealed segments are in a durable "     \
                               "manifest: reply to the FLUSH with its flushed segments")      \
    M (READ,       read,       "proxy -> searcher: answer a read, or resolve a delete's filter") \
    M (SEARCHED,   searched,   "search worker -> its searcher: every part of a search (or of "   \
                               "its filter phase) is done; task is the last part's")            \
    M (APPLY,      apply,      "segmgr -> searcher: job->rec is logged; apply it, then reply "  \
                               "(unless the segment manager has: acked)")                      \
    M (SEAL,       seal,       "segmgr -> searcher: a growing segment is complete; flush it")  \
    M (REPLY,      reply,      "segmgr, searcher, meta, proxy -> proxy: job->reply goes to its " \
                               "client")                                                       \
    M (TICK,       tick,       "segmgr -> searcher: the shard is idle; every record up to ts "  \
                               "is committed and was sent")                                    \
    M (RESOLVED,   resolved,   "searcher -> proxy: a delete by filter now names its keys")     \
    M (LIVE,       live,       "bridge -> proxy: NATS subscriptions and consumer are set up")  \
    M (FLUSHED,    flushed,    "searcher -> meta -> segmgr: a segment is written and marked "   \
                               "flushed; release its memory")                                  \
    M (CHECKPOINT, checkpoint, "meta -> segmgr: a durable manifest makes WAL objects below "    \
                               "seq unneeded")                                                 \
    M (STORE_SEGMENT, store_segment, "searcher -> meta -> flusher: write a sealed segment")   \
    M (WRITTEN,    written,    "flusher -> meta -> searcher: the segment write's outcome")     \
    M (BUILD,      build,      "searcher -> meta -> builder: build and write a segment's index") \
    M (BUILT,      built,      "builder -> meta -> searcher: the build's outcome")             \
    M (MANIFEST,   manifest,   "searcher -> meta -> flusher: write this manifest")             \
    M (MANIFESTED, manifested, "flusher -> meta -> searcher: the manifest write's outcome")    \
    M (CHANGE,     change,     "searcher -> NATS bridge: a committed change to publish on "  \
                               "the change feed")                                          \
    M (FEED,       feed,       "segmgr -> feed publisher -> NATS -> followers: a WAL object "  \
                               "is durable (the committed feed, bus/NATS.md)")                \
    M (FEED_TICK,  feed_tick,  "segmgr -> feed publisher -> NATS -> followers: the shard is "  \
                               "idle; every record below ts is in WAL objects below next_seq") \
    M (WRITER_TS,  writer_ts,  "follower -> NATS -> feed publisher, and back: the shard's "   \
                               "newest commit timestamp (asked with ts 0)")                   \
    M (FEED_MANIFEST, feed_manifest, "meta -> feed publisher -> NATS -> follower -> adopter: " \
                               "a newer manifest is durable; read it now")                    \
    M (HELLO,      hello,      "link -> ZeroMQ TCP -> intake: a proxy process connects; send "  \
                               "the catalog")                                                  \
    M (CATALOG,    catalog,    "intake -> ZeroMQ TCP -> link: the writer's catalog views and " \
                               "newest commit timestamp")                                      \
    M (VIEWS,      views,      "link -> proxy (proxy processes): the writer's catalog; serve") \
    M (WRITER_DOWN, writer_down, "link -> proxy (proxy processes): the writer is not "        \
                               "reachable; answer UNAVAILABLE until the next VIEWS")          \
    M (MANIFEST_SEEN, manifest_seen, "adopter -> searcher (searcher processes): the writer's " \
                               "newest manifest; take its flushed segments and indexes")   \
    M (COMPACT,    compact,    "searcher -> meta -> compactor: merge segments, write the "     \
                               "merged segment and its indexes")                              \
    M (COMPACTED,  compacted,  "compactor -> meta -> searcher: the compaction's outcome")    \
    M (GC_CHECK,   gc_check,   "compactor -> meta -> searcher: which of these segment and "  \
                               "index objects does the catalog still use?")                  \
    M (GC_CHECKED, gc_checked, "searcher -> meta -> compactor: those the catalog does not use")

#define QV_MSG_F_write(F, T)        F (T, JOB, job)
#define QV_MSG_F_flush(F, T)        F (T, U64, coll) F (T, JOB, job)
#define QV_MSG_F_flush_done(F, T)   F (T, U64, coll) F (T, JOB, job)
//  guarantee_ts: the searcher answers once it has applied the shard up to it (0: at
//  once), or TIMEOUT at job->deadline
#define QV_MSG_F_read(F, T)         F (T, JOB, job) F (T, U64, guarantee_ts)
#define QV_MSG_F_searched(F, T)     F (T, PTR, task)
//  seq: the WAL object holding the record; wal_index: the record's index in it;
//  wal_last: whether it is that object's last record; acked: the segment manager has
//  answered the client (an insert or upsert): apply it, reply nothing
#define QV_MSG_F_apply(F, T)        F (T, JOB, job) F (T, U64, seq) F (T, U64, wal_index)  \
                                    F (T, BOOL, wal_last) F (T, BOOL, acked)
#define QV_MSG_F_seal(F, T)         F (T, U64, coll) F (T, U64, seg)
//  ts: the commit timestamp of the write this acknowledges (0: not a successful write)
#define QV_MSG_F_reply(F, T)        F (T, JOB, job) F (T, U64, ts)
//  shard: the segment manager's shard (one WAL; 0 in one process); ts: a timestamp above
//  every record it has sent, and below every record it will send
#define QV_MSG_F_tick(F, T)         F (T, U64, shard) F (T, U64, ts)
#define QV_MSG_F_resolved(F, T)     F (T, JOB, job)
#define QV_MSG_F_live(F, T)
#define QV_MSG_F_flushed(F, T)      F (T, U64, seg)
#define QV_MSG_F_checkpoint(F, T)   F (T, U64, seq)
//  seg: a qv_segment_t link, owned by the message (WRITTEN hands it back)
#define QV_MSG_F_store_segment(F, T) F (T, PTR, seg)
#define QV_MSG_F_written(F, T)      F (T, PTR, seg) F (T, I64, rc) F (T, STR, error)
//  build: a qv_build_t (qv_job.h), owned by the message (BUILT hands it back)
#define QV_MSG_F_build(F, T)        F (T, PTR, build)
#define QV_MSG_F_built(F, T)        F (T, PTR, build)
//  checkpoint: the WAL checkpoint written in the manifest (WAL objects below it may go
//  once it is durable; 0: none)
#define QV_MSG_F_manifest(F, T)     F (T, U64, version) F (T, BIN, manifest) F (T, U64, checkpoint)
#define QV_MSG_F_manifested(F, T)   F (T, U64, version) F (T, I64, rc) F (T, STR, error)
//  event: a qv_cdc_t (qv_cdc.h), owned by the message's receiver
#define QV_MSG_F_change(F, T)       F (T, PTR, event)
//  seq, epoch: the WAL object's position and writer epoch; ts: the largest commit
//  timestamp in it; wal: the object's bytes as stored (objstore/qv_wal.h), or empty
//  when over the NATS payload limit (a follower then reads it from the store)
#define QV_MSG_F_feed(F, T)         F (T, U64, shard) F (T, U64, seq) F (T, U64, epoch)     \
                                    F (T, U64, ts) F (T, BIN, wal)
#define QV_MSG_F_feed_tick(F, T)    F (T, U64, shard) F (T, U64, ts) F (T, U64, next_seq)
//  ask: the asker's question number, echoed in the answer (questions are sent again
//  when an answer is late or lost; an answer to an older question must not pass for
//  the newer one's, which reads that arrived since are waiting on)
#define QV_MSG_F_writer_ts(F, T)    F (T, U64, shard) F (T, U64, ts) F (T, U64, ask)
#define QV_MSG_F_feed_manifest(F, T) F (T, U64, shard) F (T, U64, version)
#define QV_MSG_F_hello(F, T)
//  max_ts: the writer's newest commit timestamp; views: qv_coll_views_write
//  (actors/qv_recover.h); users: the user store, qv_users_write (actors/qv_users.h)
#define QV_MSG_F_catalog(F, T)      F (T, U64, max_ts) F (T, BIN, views) F (T, BIN, users)
//  views: a zlist_t of qv_coll_view_t * (actors/qv_recover.h), owned by the message's
//  receiver; writer: the writer core's endpoint; users: as CATALOG's
#define QV_MSG_F_views(F, T)        F (T, U64, max_ts) F (T, PTR, views) F (T, STR, writer) \
                                    F (T, BIN, users)
#define QV_MSG_F_writer_down(F, T)  F (T, STR, reason)
//  version: the manifest's; body: its msgpack body (actors/qv_manifest.c)
#define QV_MSG_F_manifest_seen(F, T) F (T, U64, version) F (T, BIN, body)
//  task: a qv_compact_t (qv_job.h), owned by the message (COMPACTED hands it back)
#define QV_MSG_F_compact(F, T)      F (T, PTR, task)
#define QV_MSG_F_compacted(F, T)    F (T, PTR, task)
//  keys: a zlist_t of object keys (autofree strings), owned by the message
#define QV_MSG_F_gc_check(F, T)     F (T, PTR, keys)
#define QV_MSG_F_gc_checked(F, T)   F (T, PTR, keys)

typedef enum {
    QV_MSG_NONE = 0,
#define QV_MSG_ENUM(NAME, name, route) QV_MSG_##NAME,
    QV_MSG_TABLE (QV_MSG_ENUM)
#undef QV_MSG_ENUM
    QV_MSG_COUNT
} qv_msg_id_t;

//  Every message struct starts with this header.
typedef struct {
    qv_msg_id_t id;
} qv_msg_t;

//  One struct per message: qv_msg_<name>_t, e.g. qv_msg_seal_t { hdr; coll; seg; }.
#define QV_MSG_DECL(T, TYPE, field) QV_MT_C_##TYPE field;
#define QV_MSG_STRUCT(NAME, name, route)                                                \
    typedef struct { qv_msg_t hdr; QV_MSG_F_##name (QV_MSG_DECL, _) } qv_msg_##name##_t;
QV_MSG_TABLE (QV_MSG_STRUCT)
#undef QV_MSG_STRUCT

//  The table as data: each field's name, type and place in its struct.
typedef struct {
    const char *name;
    qv_mtype_t type;
    size_t offset;
} qv_mfield_t;

typedef struct {
    qv_msg_id_t id;
    const char *name;               //  "SEAL"
    const char *route;              //  who sends it to whom, and what it asks
    size_t size;                    //  sizeof its struct
    const qv_mfield_t *fields;
    size_t nfields;
} qv_mdesc_t;

//  The descriptor of message id, or NULL if id is not a message.
const qv_mdesc_t *
    qv_msg_desc (qv_msg_id_t id);
//  The message's name ("SEAL"), "?" if unknown.
const char *
    qv_msg_name (qv_msg_id_t id);
//  The C name of a field type ("U64").
const char *
    qv_mtype_name (qv_mtype_t type);

//  A new message of kind id, every field zero (STR fields ""), or NULL out of memory.
//  Typed: qv_msg_<name>_new (), e.g. qv_msg_seal_t *m = qv_msg_seal_new ();
qv_msg_t *
    qv_msg_new (qv_msg_id_t id);
#define QV_MSG_NEW(NAME, name, route)                                                   \
    static inline qv_msg_##name##_t *qv_msg_##name##_new (void)                         \
    { return (qv_msg_##name##_t *) qv_msg_new (QV_MSG_##NAME); }
QV_MSG_TABLE (QV_MSG_NEW)
#undef QV_MSG_NEW

//  Frees a message with its STR, BIN and JOB fields; PTR fields are the receiver's
//  (free them, or hand them on, before). Safe twice.
void
    qv_msg_destroy (qv_msg_t **self_p);
#define qv_msg_free(msg_p) qv_msg_destroy ((qv_msg_t **) (msg_p))

//  The message's job, which moves to the caller (the field is NULL after); NULL if
//  the message has no job.
qv_job_t *
    qv_msg_take_job (qv_msg_t *msg);

//  Across processes: one msgpack map {"msg": NAME, field: value, ...}. A JOB is a map
//  {id, request (bin: the request as the client sent it, or nil), record (bin:
//  qv_record_write, or nil), sseq, bytes, deadline, deleted (absent: -1), rc, reply
//  (bin or nil)}.
//  qv_msg_encode returns 0, or QV_EINVAL if the message holds a PTR field (named in
//  qv_err_msg ()).
int
    qv_msg_encode (const qv_msg_t *msg, qv_wr_t *w);
//  Decodes one message. lookup finds the schema of an insert record's collection. Every
//  field must be present with its type, and no other key (but "msg") may be: anything
//  else is QV_EPROTO naming the message and the field (truncated or not msgpack: the
//  codec's QV_EPROTO; a record of a collection lookup does not know: QV_ENOTFOUND).
//  Never crashes on any input. *out is NULL on failure.
int
    qv_msg_decode (const void *data, size_t size, qv_schema_lookup_fn *lookup, void *arg,
                   qv_msg_t **out);

//  Inside one process: qv_msg_send passes the message by pointer (one frame holding
//  the pointer; no copy). 0 and *msg_p NULL: the receiver owns it; -1 (the socket is
//  closed or interrupted): the caller still owns it, and frees its handles. `sock` is
//  a zsock_t * (or a zactor_t *).
int
    qv_msg_send (void *sock, qv_msg_t **msg_p);
#define qv_msg_post(sock, msg_p) qv_msg_send ((sock), (qv_msg_t **) (msg_p))
//  The same without waiting: -1 at once (the caller still owns the message) when the
//  socket's queue is full.
int
    qv_msg_send_nowait (void *sock, qv_msg_t **msg_p);
//  Receives one message sent by qv_msg_send. NULL if interrupted, or if the frame was
//  not a message (a protocol error: logged, the frame dropped).
qv_msg_t *
    qv_msg_recv (void *sock);
//  The same without waiting: NULL at once when nothing is queued.
qv_msg_t *
    qv_msg_recv_nowait (void *sock);

#endif
