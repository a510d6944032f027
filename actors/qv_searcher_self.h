//  The searcher actor's state, shared by its files (one thread): qv_searcher.c
//  (the actor: applying the log, reads, the catalog's side of flushes and builds),
//  qv_search.c (vector searches split across worker threads) and qv_searcher_stats.c
//  (the stats reply). Not for other files.
#ifndef QV_SEARCHER_SELF_H_INCLUDED
#define QV_SEARCHER_SELF_H_INCLUDED

#include "qv_searcher.h"
#include "qv_coll_reply.h"
#include "qv_expr.h"
#include "qv_msg.h"
#include "qv_rc.h"
#include "qv_tsafe.h"

#include <math.h>
#include <stdatomic.h>

typedef struct s_search_t s_search_t;
typedef struct _qv_compactions_t qv_compactions_t;

typedef struct {
    s_search_t *search;
    uint32_t part;
    qv_topk_t **tops;               //  one per query
    roaring_bitmap_t **matched;     //  filter phase: this part's matches per segment
} s_task_t;

struct s_search_t {
    qv_job_t *job;
    qv_snapshot_t *snap;
    qv_collection_t *coll;          //  valid while this thread has not applied a drop
    uint32_t coll_id;
    float *queries;
    float *qnorms;
    uint32_t nq;
    uint32_t limit;
    uint32_t offset;
    uint32_t ef;
    uint32_t nprobe;
    qv_output_t out;                //  output_fields
    uint32_t parts;
    atomic_uint pending;            //  parts not done: the worker ending the last one
                                    //  posts SEARCHED (one message a search)
    s_task_t *tasks;
    qv_schema_t *schema;            //  own copy: the filter refers to it
    qv_expr_t *expr;                //  filter, or NULL
    bool filtering;                 //  tasks are evaluating the filter
    char *filter_text;              //  the filter as given (cache key)
    roaring_bitmap_t **cached;      //  per segment: matches from the cache, or NULL
    qv_segidx_t **scalars;          //  per segment, QV_FIELDS_MAX each: linked scalar
                                    //  indexes of the fields the filter reads, or NULL
};

typedef struct {
    const qv_config_t *config;
    qv_catalog_t *catalog;
    zsock_t *inbox;
    zsock_t *searched;              //  PULL of the search workers' SEARCHED
    zsock_t *proxy;
    zsock_t *meta;                  //  PUSH to the metadata coordinator
    zsock_t *cdc;                   //  PUSH of change events to the bridge, or NULL
    zsock_t *adopter;               //  searcher processes: PUSH of index loads to the
                                    //  adopter (actors/qv_adopt.c), or NULL
    bool adopt_stopped;             //  shutting down: nothing more to the adopter
    bool adopts;                    //  takes the manifests another process writes (a
                                    //  searcher process; a segment manager without meta)
    zsock_t *segmgr;                //  meta_remote: PUSH of FLUSHED and CHECKPOINT, as
                                    //  adopted manifests say, to the segment manager
    zsock_t *feedpub;               //  meta_remote with --nats: PUSH of FEED_MANIFEST
    zlistx_t *flushes;              //  meta_remote: flushes waiting for their
                                    //  collection's sealed segments in a manifest
    uint64_t adopted_epoch;         //  meta_remote: the writer epoch and WAL checkpoint
    uint64_t adopted_cp;            //  of the last manifest adopted (not acted on yet)
    qv_msg_bin_t adopting;          //  the writer's manifest body not yet adopted whole
    uint64_t adopting_version;      //  (this searcher was behind it), its version
    uint64_t indexes_adopted;       //  index objects loaded from the writer's manifests
    uint64_t indexes_released;      //  a writer without the searcher role: vector indexes
                                    //  dropped from memory once durable (records kept)
    zactor_t **workers;
    int nworkers;
    int next_worker;
    zhashx_t *building;             //  "seg/field" index builds in flight
    zhashx_t *filter_cache;         //  "seg id|filter" -> roaring_bitmap_t * of matching
                                    //  rows of a flushed (immutable) segment
    zlistx_t *searches;             //  s_search_t * whose tasks are with the workers
    bool quiet;                     //  shutting down, or a searcher process (--roles
                                    //  searcher, which never writes): send the
                                    //  coordinator nothing
    uint64_t manifest_requested;
    uint64_t manifest_done;         //  the newest durable manifest (from the coordinator)
    uint64_t segments_read;         //  segments taken by searches, queries and deletes by
                                    //  filter (stats: shows partition pruning at work)
    qv_tsafe_t *tsafe;              //  how far the shard is applied; reads parked on it
    zlistx_t *delayed;              //  QV_FAULT_APPLY_DELAY_MS: s_delayed_t of the feed
    qv_compactions_t *compactions;  //  qv_searcher_compact.c
    zsock_t *segmgr_write;          //  the embedded server: PUSH of compaction records
                                    //  (WRITE) to the segment manager, or NULL
    zhashx_t *backups;              //  "id" -> qv_backup_t (qv_searcher_backup.c)
    zhashx_t *backup_records;       //  "id" -> qv_backup_record_t: those recorded before
                                    //  this process started (qv_backup_state.h)
    qv_store_t *backup_states;      //  where the writers record states, or NULL
    uint64_t backup_last_id;
} self_t;

//  Sends job's reply to the proxy / fails it with rc and the recorded message.
void
    qv_searcher_reply (self_t *self, qv_job_t *job);
void
    qv_searcher_fail (self_t *self, qv_job_t *job, int rc);

//  Takes a build's outcome (BUILT) into the catalog: the index installed on b->seg
//  if its definition is still current (b is freed).
void
    qv_searcher_built (self_t *self, qv_build_t *b);
//  Asks the coordinator to write the catalog's manifest (not when quiet).
void
    qv_searcher_request_manifest (self_t *self);

//  qv_searcher_compact.c
qv_compactions_t *
    qv_compactions_new (void);
void
    qv_compactions_destroy (qv_compactions_t **self_p);
//  `compact`: plans a compaction of the request's collection and answers its id.
void
    qv_searcher_compact (self_t *self, qv_job_t *job);
//  `get_compaction_state`.
void
    qv_searcher_compaction_state (self_t *self, qv_job_t *job);
//  COMPACTED: a compaction is written; its record goes to the segment manager.
void
    qv_searcher_compacted (self_t *self, qv_compact_t *task);
//  A compaction record was applied (rc: the outcome): the indexes built for it are
//  taken, its compaction's state moves on.
void
    qv_searcher_compact_applied (self_t *self, const qv_record_t *rec, int rc);
//  GC_CHECK: the keys (taken) of objects the catalog and the compactions being logged
//  do not use go back to the compactor (GC_CHECKED).
void
    qv_searcher_gc_check (self_t *self, zlist_t *keys);
//  Writes the compaction figures of a stats reply (compactions_executing, _completed,
//  _failed, compaction_rows_dropped).
void
    qv_searcher_compact_stats (self_t *self, qv_wr_t *w);
//  Every second: records never logged are given up; the automatic policy.
void
    qv_searcher_compact_tick (self_t *self);

//  qv_searcher_backup.c
void
    qv_searcher_backups_new (self_t *self);
//  Shutdown: the backups still being written stop before their next file (they stay
//  without a manifest); _destroy waits for them.
void
    qv_searcher_backups_cancel (self_t *self);
void
    qv_searcher_backups_destroy (self_t *self);
//  `backup`: takes a snapshot of the request's collection, starts its writer, answers
//  its id and snapshot timestamp.
void
    qv_searcher_backup (self_t *self, qv_job_t *job);
//  `get_backup_state`.
void
    qv_searcher_backup_state (self_t *self, qv_job_t *job);

//  qv_searcher_stats.c
//  Answers a `stats` request (or fails it: an unknown collection).
void
    qv_searcher_stats (self_t *self, qv_job_t *job);

//  qv_search.c
//  A search worker thread (args: the config): scans its part of a snapshot for every
//  query; posts SEARCHED (inproc "searched") when a search's last part is done.
void
    qv_search_worker_actor (zsock_t *pipe, void *args);
//  Parses a request's `filter` (absent or empty: none) against a copy of the schema.
int
    qv_search_parse_filter (qv_collection_t *c, const qv_req_t *req, qv_schema_t **schema_p,
                            qv_expr_t **expr_p);
//  Starts a search: its parts go to the workers (or it is answered at once, an error).
void
    qv_search_start (self_t *self, qv_job_t *job);
void
    qv_search_free (s_search_t **s_p);
//  SEARCHED: every part of the search of task (an s_task_t) is done: the filter
//  phase's parts go out again to search, or the parts are merged and answered.
void
    qv_search_parts_done (self_t *self, void *task);
//  The filter cache's destructor.
void
    qv_search_bitmap_free (void **item);

#endif
