//  Searcher actor: owns the catalog; applies logged writes in log order (and replies
//  to the clients of DDL); resolves deletes before they are logged; answers reads
//  (searches on worker threads) once it has applied the shard up to their guarantee
//  timestamp; tells the metadata coordinator (qv_meta) what the catalog needs
//  written, built and recorded, and takes the outcomes into the catalog.
//
//  @interface (messages: schemas/qv_msg.h)
//    pipe  $TERM                       stop
//    pipe  QUIET                       send the coordinator nothing more (shutdown), stop
//                                      the backups being written; signals
//    pipe  SEGMGR-STOPS                meta_remote: send the segment manager and the feed
//                                      publisher nothing more (shutdown); signals
//  takes (inbox, PULL inproc "searcher"):
//    APPLY {job, seq, wal_index, wal_last, acked}   from the segment manager, in log
//                                      order (the committed feed)
//    TICK {shard, ts}                  from the segment manager: the shard has got to ts
//    SEAL {coll, seg}                  from the segment manager: flush the segment
//    FLUSH {coll, job}                 from the segment manager: handed to the coordinator
//    READ {job, guarantee_ts}          from the proxy: answered once tsafe >= guarantee_ts,
//                                      TIMEOUT at job->deadline
//  takes (PULL inproc "searched", its own search workers', actors/qv_search.c):
//    SEARCHED {task}                   a search's parts are all done
//    WRITTEN {seg, rc, error} (rc 0), BUILT {build}, MANIFESTED {version, rc, error},
//    FLUSH_DONE {coll, job}            from the coordinator
//  sends:
//    REPLY {job, ts}, RESOLVED {job}   to the proxy (ts: of an applied DDL record;
//                                      RESOLVED: a delete's keys and job->deleted)
//    STORE_SEGMENT {seg}, BUILD {build}, MANIFEST {version, manifest, checkpoint},
//    FLUSHED {seg}, FLUSH {coll, job}  to the coordinator (inproc "meta")
//    CHANGE {event}                    to the change-feed publisher (inproc "cdc"),
//                                      without waiting
//
//  In a searcher process (--roles searcher, actors/qv_replica.c) APPLY and TICK come
//  from the follower (actors/qv_follower.c), which also forwards strong READs with the
//  writer's timestamp; the searcher is then quiet from the start (it writes nothing).
//  There it also takes
//    MANIFEST_SEEN {version, body}     from the adopter (actors/qv_adopt.c): the writer's
//                                      newest manifest; its complete segments become
//                                      flushed here (qv_manifest_adopt)
//    BUILT {build}                     from the adopter: an index object loaded
//  and sends
//    BUILD {build}                     to the adopter (inproc "adopt"): load the index
//                                      object the manifest lists for a segment
//  A segment manager without meta (--roles segment-manager: meta_remote) takes the
//  meta process's manifests the same way (it writes nothing either), and sends
//    FLUSHED {seg}, CHECKPOINT {seq}   to the segment manager (inproc "segmgr"): an
//                                      adopted manifest flushed a sealed segment; its
//                                      checkpoint
//    FEED_MANIFEST {shard, version}    with --nats, to the feed publisher: a manifest
//                                      adopted (searcher processes read it now)
//  and answers a FLUSH once an adopted manifest holds every sealed segment of its
//  collection (UNAVAILABLE after 120 s).
//  In a meta process (--roles meta,flusher: meta_process) APPLY and TICK come from the
//  follower, and the seals as APPLYs of the log's SEAL records: it writes segments,
//  builds indexes and asks for manifests as the embedded server does.
//
//  DESIGN
//  The segment manager acknowledges inserts and upserts itself once they are durable,
//  so a client's next read can arrive here before the record does. Every read carries
//  a guarantee timestamp (the proxy's, from its consistency level); tsafe is the
//  largest timestamp of the records applied and the ticks taken (qv_tsafe). A read
//  whose guarantee is above it is parked, not blocking this loop, and answered as
//  soon as tsafe reaches it, or TIMEOUT at its deadline: never a stale answer.
//  DDL is still answered here, after the apply. A delete is resolved here before it
//  is logged (s_resolve: a filter to keys, and the live rows its keys name counted
//  with the key index here), and the segment manager acknowledges it once durable;
//  its apply replies only if the segment manager could not (acked false).
//  A search takes a snapshot and splits its rows across the worker threads
//  (qv_search.c); the stats reply is qv_searcher_stats.c (the state these files share
//  is in qv_searcher_self.h).
//  Flushes, segment writes, index builds and manifests are the metadata
//  coordinator's (qv_meta) to schedule and follow; this actor, which owns the
//  catalog, names what needs them (a sealed segment, a missing index, a changed
//  catalog's manifest) and takes their outcomes into the catalog. A written segment
//  is marked flushed and a manifest asked for before the coordinator hears FLUSHED,
//  on the same socket, so the manifest it waits for covers the segment.
//  With --nats, each applied record also becomes a change event, handed by pointer to
//  the change-feed publisher (inproc "cdc") without waiting: if it is behind, the event
//  is dropped and counted, never slowing the write path.
#include "qv_searcher_self.h"
#include "qv_actor.h"
#include "qv_bufpool.h"
#include "qv_manifest.h"
#include "qv_builder.h"
#include "qv_cdc.h"
#include "qv_compactor.h"

//  A message of the committed feed held back by the fault hook until due.
typedef struct {
    int64_t due;
    qv_msg_t *msg;
} s_delayed_t;

static void s_request_manifest (self_t *self);
static void s_send_write (self_t *self, qv_segment_t *seg);

static void s_index_todo (void *arg, qv_collection_t *c, qv_segment_t *seg, int fi);
static void s_reply (self_t *self, qv_job_t *job);

//  Sends job's reply to the proxy; ts: the commit timestamp of the write it
//  acknowledges, 0 if none.
static void
s_reply_ts (self_t *self, qv_job_t *job, uint64_t ts)
{
    qv_msg_reply_t *msg = qv_msg_reply_new ();
    msg->job = job;
    msg->ts = ts;
    if (qv_msg_post (self->proxy, &msg) != 0)
        qv_msg_free (&msg);         //  the proxy is gone: no client to answer
}

static void
s_reply (self_t *self, qv_job_t *job)
{
    s_reply_ts (self, job, 0);
}

static void
s_fail (self_t *self, qv_job_t *job, int rc)
{
    qv_job_fail (job, rc, qv_err_msg ());
    s_reply (self, job);
}

void
qv_searcher_reply (self_t *self, qv_job_t *job)
{
    s_reply (self, job);
}

void
qv_searcher_fail (self_t *self, qv_job_t *job, int rc)
{
    s_fail (self, job, rc);
}

//  Applies a logged record and replies (unless the segment manager has: acked);
//  returns the outcome (the job is gone). tsafe rises to the record's timestamp.
static int
s_apply (self_t *self, qv_job_t *job, uint64_t seq, bool wal_last, bool acked)
{
    qv_record_t *rec = job->rec;
    uint64_t ts = rec->ts;
    const qv_val_t *rid = job->req.f [QV_F_rid];
    //  An insert's reply is encoded first: applying moves the rows into the segment.
    qv_job_t *ok = rec->type == QV_REC_INSERT && !acked ? qv_job_insert_ack (job) : NULL;
    qv_apply_t res = qv_catalog_apply (self->catalog, rec, seq, self->config->seg_max_bytes);
    //  Flusher messages come between a WAL object's records: until its last is applied,
    //  a manifest must not let the log drop the object.
    qv_catalog_set_partial (self->catalog, !wal_last);
    qv_tsafe_advance (self->tsafe, ts);
    if (rec->type == QV_REC_COMPACT) {
        //  The searcher's own record (or, in a searcher process, the writer's): no
        //  client waits for it
        qv_searcher_compact_applied (self, rec, res.rc);
        qv_job_destroy (&job);
        return res.rc;
    }
    if (rec->type == QV_REC_SEAL) {
        //  From the committed feed (the segment manager in another process): written
        //  by this process's coordinator, if it has one (s_to_meta)
        qv_collection_t *c = qv_catalog_find_id (self->catalog, rec->coll_id);
        for (size_t i = 0; c && i < c->nsegs; i++)
            if (c->segs [i]->id == rec->seg_id && c->segs [i]->state == QV_SEG_SEALED)
                s_send_write (self, c->segs [i]);
    }
    if (acked) {
        if (res.rc)                 //  durable and acknowledged: replay at restart applies it
            qv_error ("an acknowledged write (WAL object %llu) could not be applied in memory: %s",
                      (unsigned long long) seq, qv_err_msg ());
        qv_job_destroy (&job);
        return res.rc;
    }
    qv_wr_t *w = qv_wr_new ();
    if (ok && !res.rc) {
        job->reply = ok->reply, job->reply_size = ok->reply_size;
        ok->reply = NULL;
    }
    qv_job_destroy (&ok);
    if (res.rc) {
        qv_wr_reset (w);
        qv_reply_error (w, rid, res.rc, qv_err_msg ());
    }
    else
    if (rec->type == QV_REC_DELETE) {
        qv_reply_open (w, rid);
        qv_wr_key (w, "deleted");
        qv_wr_uint (w, res.count);
        qv_wr_key (w, "ts");
        qv_wr_uint (w, rec->ts);
        qv_reply_close (w);
    }
    else
    if (rec->type != QV_REC_INSERT) {
        qv_reply_open (w, rid);
        qv_reply_close (w);
    }
    if (rec->type != QV_REC_INSERT || res.rc)
        qv_job_reply (job, w, res.rc);
    qv_wr_destroy (&w);
    //  The proxy keeps its catalog copy from DDL records; row data is no longer needed.
    if (rec->type == QV_REC_INSERT || rec->type == QV_REC_DELETE)
        qv_record_destroy (&job->rec);
    s_reply_ts (self, job, res.rc ? 0 : ts);
    return res.rc;
}

//  The change event of a record about to be applied, or NULL without a change feed.
static qv_cdc_t *
s_cdc_event (self_t *self, const qv_msg_apply_t *msg)
{
    if (!self->cdc)
        return NULL;
    return qv_catalog_change_event (self->catalog, msg->job->rec,
                                    QV_CDC_SEQ (msg->seq, (uint32_t) msg->wal_index),
                                    self->config->cdc_rows);
}

//  Hands a change event to the change-feed publisher (CHANGE), without waiting unless
//  `wait`; an event it has no room for is dropped and counted.
static void
s_cdc_send (self_t *self, qv_cdc_t **ev_p, bool wait)
{
    if (!*ev_p)
        return;
    qv_msg_change_t *msg = qv_msg_change_new ();
    msg->event = *ev_p;
    if ((wait ? qv_msg_post (self->cdc, &msg) : qv_msg_send_nowait (self->cdc, (qv_msg_t **) &msg)) == 0)
        *ev_p = NULL;               //  the publisher owns it now
    else {
        qv_msg_free (&msg);
        atomic_fetch_add (&self->config->nats_stats->cdc_dropped, 1);
        qv_cdc_destroy (ev_p);
    }
}

//  Hands msg to the metadata coordinator; false (msg freed, its handles not) if it is
//  gone or the searcher is shutting down.
static bool
s_to_meta (self_t *self, void *msg_p)
{
    if (!self->quiet && qv_msg_send (self->meta, (qv_msg_t **) msg_p) == 0)
        return true;
    return false;
}

//  Asks the coordinator to have a sealed segment written (it keeps one write per
//  segment in flight).
static void
s_send_write (self_t *self, qv_segment_t *seg)
{
    qv_msg_store_segment_t *msg = qv_msg_store_segment_new ();
    msg->seg = qv_segment_link (seg);
    if (!s_to_meta (self, &msg)) {
        qv_segment_t *link = msg->seg;
        qv_segment_unlink (&link);
        qv_msg_free (&msg);
    }
}

//  The coordinator says coll's sealed segments are in a durable manifest: the flush's
//  reply names the collection's flushed segments.
static void
s_flush_done (self_t *self, uint32_t coll_id, qv_job_t *job)
{
    qv_collection_t *c = qv_catalog_find_id (self->catalog, coll_id);
    qv_wr_t *w = qv_wr_new ();
    qv_reply_open (w, job->req.f [QV_F_rid]);
    qv_wr_key (w, "segments");
    size_t n = 0;
    for (size_t i = 0; c && i < c->nsegs; i++)
        n += c->segs [i]->state == QV_SEG_FLUSHED;
    qv_wr_array (w, n);
    for (size_t i = 0; c && i < c->nsegs; i++)
        if (c->segs [i]->state == QV_SEG_FLUSHED)
            qv_wr_uint (w, c->segs [i]->id);
    qv_reply_close (w);
    qv_job_reply (job, w, 0);
    qv_wr_destroy (&w);
    s_reply (self, job);
}

//  A flush waiting for a manifest of the meta process (meta_remote): for the sealed
//  segments its collection had when it came (those sealed later do not hold it up).
typedef struct {
    qv_job_t *job;
    uint32_t coll_id;
    int64_t since;                  //  msec clock
    uint64_t *segs;                 //  the segments it waits for
    size_t nsegs;
} s_parked_flush_t;

//  A flush the meta process has not completed in this long is answered UNAVAILABLE.
#define S_FLUSH_LIMIT_MS 120000

//  Whether segment seg_id of coll_id is still sealed, not yet flushed (a dropped one
//  is not waited for).
static bool
s_still_sealed (self_t *self, uint32_t coll_id, uint64_t seg_id)
{
    qv_collection_t *c = qv_catalog_find_id (self->catalog, coll_id);
    for (size_t i = 0; c && i < c->nsegs; i++)
        if (c->segs [i]->id == seg_id)
            return c->segs [i]->state == QV_SEG_SEALED;
    return false;
}

static void
s_parked_free (s_parked_flush_t **f_p)
{
    free ((*f_p)->segs);
    free (*f_p);
    *f_p = NULL;
}

//  meta_remote: flushes whose segments an adopted manifest holds (or that were
//  dropped) are answered; those waiting too long fail.
static void
s_check_flushes (self_t *self)
{
    int64_t now = qv_clock_msec ();
    //  Detached at the cursor, which then stands on the one before (never zlistx_find
    //  in such a walk: it moves the cursor)
    s_parked_flush_t *f = zlistx_first (self->flushes);
    while (f) {
        bool done = true;
        for (size_t i = 0; i < f->nsegs && done; i++)
            done = !s_still_sealed (self, f->coll_id, f->segs [i]);
        if (done || now - f->since >= S_FLUSH_LIMIT_MS) {
            zlistx_detach_cur (self->flushes);
            if (done)
                s_flush_done (self, f->coll_id, f->job);
            else {
                qv_job_fail (f->job, QV_EUNAVAIL, "flush failed: no manifest of the meta process "
                             "(`quiver serve --roles meta,flusher`) recorded the collection's "
                             "sealed segments within 120 s; the rows are safe in the WAL, flush "
                             "again later");
                s_reply (self, f->job);
            }
            s_parked_free (&f);
        }
        f = zlistx_next (self->flushes);
    }
}

static void
s_park_flush (self_t *self, uint32_t coll_id, qv_job_t *job)
{
    s_parked_flush_t *f = calloc (1, sizeof *f);
    f->job = job;
    f->coll_id = coll_id;
    f->since = qv_clock_msec ();
    qv_collection_t *c = qv_catalog_find_id (self->catalog, coll_id);
    f->segs = calloc (c && c->nsegs ? c->nsegs : 1, sizeof (uint64_t));
    for (size_t i = 0; c && i < c->nsegs; i++)
        if (c->segs [i]->state == QV_SEG_SEALED)
            f->segs [f->nsegs++] = c->segs [i]->id;
    zlistx_add_end (self->flushes, f);
    s_check_flushes (self);
}

//  At shutdown: every parked flush answered.
static void
s_fail_parked (self_t *self)
{
    s_parked_flush_t *f;
    while (self->flushes && (f = zlistx_detach (self->flushes, NULL))) {
        qv_job_fail (f->job, QV_EUNAVAIL, "the server is shutting down before the flush completed");
        s_reply (self, f->job);
        s_parked_free (&f);
    }
}

//  Asks the coordinator for a manifest of the catalog as it is now.
void
qv_searcher_request_manifest (self_t *self)
{
    s_request_manifest (self);
}

static void
s_request_manifest (self_t *self)
{
    if (self->quiet)
        return;
    qv_msg_manifest_t *msg = qv_msg_manifest_new ();
    zchunk_t *chunk = qv_catalog_manifest (self->catalog, &msg->version);
    uint64_t version = msg->version;
    msg->manifest.size = zchunk_size (chunk);
    msg->manifest.data = malloc (msg->manifest.size ? msg->manifest.size : 1);
    memcpy (msg->manifest.data, zchunk_data (chunk), msg->manifest.size);
    zchunk_destroy (&chunk);
    msg->checkpoint = qv_catalog_checkpoint (self->catalog);   //  as written in chunk
    self->manifest_requested = version;
    if (!s_to_meta (self, &msg))
        qv_msg_free (&msg);         //  the coordinator is gone (shutdown)
}

//  A segment is written: flushed in the catalog, recorded in the next manifest; then
//  the coordinator learns it (FLUSHED), after that manifest was asked for.
static void
s_written (self_t *self, qv_segment_t *seg)
{
    qv_collection_t *c = qv_catalog_find_id (self->catalog, seg->coll_id);
    if (c && seg->state == QV_SEG_SEALED) {
        seg->state = QV_SEG_FLUSHED;
        s_request_manifest (self);
        seg->manifest = self->manifest_requested;
        qv_catalog_index_todo (self->catalog, s_index_todo, self);
        //  The insert path's memory is what a flushed segment leaves behind: the
        //  buffer pool's kept buffers, given back once per segment (the next requests
        //  map a few buffers again), so resident memory is the data's, not the data's
        //  plus the last inserts'. The drain also trims malloc when quiver serve runs
        //  on one malloc arena (qv_bufpool_set_give_back): with an arena per thread,
        //  a trim here took up to 19 ms and moved VmRSS by nothing measurable (glibc
        //  trims only the main arena's top; the freed request buffers were in the
        //  threads' arenas), README "Compaction and garbage collection".
        qv_bufpool_drain ();
    }
    qv_msg_flushed_t *msg = qv_msg_flushed_new ();
    msg->seg = seg->id;
    if (!s_to_meta (self, &msg))
        qv_msg_free (&msg);         //  the coordinator is gone (shutdown)
    qv_segment_unlink (&seg);
}

//  Sends sock (the coordinator's, or a searcher process's adopter) a BUILD of seg's
//  index for field fi, unless one is in flight; nothing if sock is NULL or gone.
static void
s_send_build (self_t *self, zsock_t *sock, qv_collection_t *c, qv_segment_t *seg, int fi,
              uint64_t epoch)
{
    char key [48];
    snprintf (key, sizeof key, "%llu/%d", (unsigned long long) seg->id, fi);
    if (!sock || zhashx_lookup (self->building, key))
        return;
    zhashx_insert (self->building, key, (void *) 1);
    qv_build_t *b = calloc (1, sizeof *b);
    b->coll_id = c->id;
    b->seg = qv_segment_link (seg);
    b->field = fi;
    b->def = *c->index_defs [fi];
    b->version = c->index_versions [fi];
    b->epoch = epoch;
    qv_msg_build_t *msg = qv_msg_build_new ();
    msg->build = b;
    if (qv_msg_post (sock, &msg) != 0) {
        qv_segment_t *link = b->seg;    //  the receiver is gone (shutdown)
        qv_segment_unlink (&link);
        free (b);
        qv_msg_free (&msg);
        zhashx_delete (self->building, key);
    }
}

//  Asks the coordinator to build the index of a flushed segment lacking it.
static void
s_index_todo (void *arg, qv_collection_t *c, qv_segment_t *seg, int fi)
{
    self_t *self = arg;
    if (!self->quiet && !c->index_errors [fi][0])
        s_send_build (self, self->meta, c, seg, fi, 0);
}

void
qv_searcher_built (self_t *self, qv_build_t *b)
{
    qv_segment_t *seg = b->seg;
    char key [48];
    snprintf (key, sizeof key, "%llu/%d", (unsigned long long) seg->id, b->field);
    zhashx_delete (self->building, key);
    qv_collection_t *c = qv_catalog_find_id (self->catalog, b->coll_id);
    qv_index_t *index = b->index;
    qv_scalar_t *scalar = b->scalar;
    bool loaded = self->adopts;     //  by the adopter, from the writer's manifest
    if (c && c->index_defs [b->field] && c->index_versions [b->field] == b->version) {
        if (b->rc && loaded)
            ;                       //  the adopter logged why; the next manifest retries
        else
        if (b->rc)
            snprintf (c->index_errors [b->field], sizeof c->index_errors [b->field], "%s", b->error);
        else {
            qv_info ("index %s of segment %llu (%u rows) %s in %lld ms", b->def.type,
                     (unsigned long long) seg->id, atomic_load (&seg->rows),
                     loaded ? "loaded from the writer's manifest" : "built", (long long) b->msec);
            self->indexes_adopted += loaded;
            qv_segidx_unlink (&seg->indexes [b->field]);
            //  A FLAT index would hold a second copy of the segment's vectors, and
            //  searches scan the segment itself: only its record is kept
            if (index && qv_index_type (index) == QV_INDEX_FLAT)
                seg->indexes [b->field] = qv_segidx_new_record (b->version, 0, b->epoch);
            else
                seg->indexes [b->field] = scalar ? qv_segidx_new_scalar (&scalar, b->version)
                                                 : qv_segidx_new (&index, b->version);
            if (seg->indexes [b->field])
                seg->indexes [b->field]->epoch = b->epoch;
            s_request_manifest (self);
            if (seg->indexes [b->field])
                seg->indexes [b->field]->manifest = self->manifest_requested;
        }
    }
    qv_index_destroy (&index);
    qv_scalar_destroy (&scalar);
    qv_segment_unlink (&seg);
    free (b);
}

//  A writer whose reads go to searcher processes (--roles without searcher) builds
//  each index and stores it, and the searchers load it from the store; it searches
//  nothing itself, so once a durable manifest names an index it keeps only its record
//  (version, manifest, epoch: what describe_index, the manifests and the build
//  schedule read), not its graph and codes, which often hold the vectors once more.
//  Searches running on the index keep it until they end (it is reference-counted).
static void
s_release_indexes (self_t *self)
{
    if (self->adopts || !(self->config->remote_reads || self->config->meta_process))
        return;
    size_t n;
    qv_collection_t **list = qv_catalog_list (self->catalog, &n);
    for (size_t i = 0; i < n; i++) {
        qv_collection_t *c = list [i];
        for (size_t j = 0; j < c->nsegs; j++) {
            qv_segment_t *seg = c->segs [j];
            for (int fi = 0; fi < c->schema->nfields; fi++) {
                qv_segidx_t *idx = seg->indexes [fi];
                if (!idx || !idx->index || idx->manifest > self->manifest_done)
                    continue;
                qv_segidx_t *record = qv_segidx_new_record (idx->version, idx->manifest,
                                                            idx->epoch);
                if (!record)
                    continue;       //  out of memory: keep it
                qv_segidx_unlink (&seg->indexes [fi]);
                seg->indexes [fi] = record;
                self->indexes_released++;
            }
        }
    }
    free (list);
}

//  qv_manifest_adopt's callback: asks the adopter to load an index object the
//  writer's manifest lists (one load per segment and field in flight).
static void
s_adopt_todo (void *arg, qv_collection_t *c, qv_segment_t *seg, int fi, uint64_t epoch)
{
    self_t *self = arg;
    if (self->config->meta_remote && self->config->remote_reads) {
        //  A segment manager whose reads go to searcher processes searches nothing:
        //  the index's record (describe_index) without its graph
        qv_segidx_t *record = qv_segidx_new_record (c->index_versions [fi],
                                                    self->adopting_version, epoch);
        if (record) {
            qv_segidx_unlink (&seg->indexes [fi]);
            seg->indexes [fi] = record;
        }
        return;
    }
    if (!self->adopt_stopped)
        s_send_build (self, self->adopter, c, seg, fi, epoch);
}

//  Sends msg to the segment manager, without waiting (meta_remote); dropped if it
//  cannot take it (stopping).
static void
s_to_segmgr (self_t *self, void *msg_p)
{
    if (!self->segmgr || qv_msg_send_nowait (self->segmgr, (qv_msg_t **) msg_p) != 0)
        qv_msg_free ((qv_msg_t **) msg_p);
}

//  A segment manager without meta (meta_remote): the segments an adopted manifest made
//  flushed release their memory there, and searcher processes hear of the manifest at
//  once. The WAL below a manifest's checkpoint goes only once a later manifest of the
//  same writer epoch is adopted: a deposed meta process's manifest that landed late
//  (its write stalled past its lease) is superseded by its successor's fence, whose
//  checkpoint may be lower, and must not have the log cut at its own.
static void
s_adopted (self_t *self, zlistx_t *unflushed, bool newer)
{
    for (qv_segment_t *seg = zlistx_first (unflushed); seg; seg = zlistx_next (unflushed))
        if (seg->state == QV_SEG_FLUSHED) {
            qv_msg_flushed_t *msg = qv_msg_flushed_new ();
            msg->seg = seg->id;
            s_to_segmgr (self, &msg);
        }
    if (!newer)
        return;
    uint64_t epoch = qv_manifest_body_uint (self->adopting.data, self->adopting.size, "epoch");
    if (self->adopted_cp > 0 && epoch == self->adopted_epoch) {
        qv_msg_checkpoint_t *cp = qv_msg_checkpoint_new ();
        cp->seq = self->adopted_cp;
        s_to_segmgr (self, &cp);
    }
    self->adopted_epoch = epoch;
    self->adopted_cp = qv_manifest_body_uint (self->adopting.data, self->adopting.size,
                                              "checkpoint");
    if (self->feedpub) {
        qv_msg_feed_manifest_t *fm = qv_msg_feed_manifest_new ();
        fm->version = self->manifest_done;
        if (qv_msg_send_nowait (self->feedpub, (qv_msg_t **) &fm) != 0)
            qv_msg_free (&fm);
    }
}

//  The segments of the catalog not flushed yet (linked), to see which a manifest
//  flushes: sealed ones, and growing ones whose seal is still on its way here.
static zlistx_t *
s_unflushed_list (self_t *self)
{
    zlistx_t *list = zlistx_new ();
    size_t n;
    qv_collection_t **colls = qv_catalog_list (self->catalog, &n);
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < colls [i]->nsegs; j++)
            if (colls [i]->segs [j]->state != QV_SEG_FLUSHED)
                zlistx_add_end (list, qv_segment_link (colls [i]->segs [j]));
    free (colls);
    return list;
}

static void
s_segment_list_free (zlistx_t **list_p)
{
    qv_segment_t *seg;
    while (*list_p && (seg = zlistx_detach (*list_p, NULL)))
        qv_segment_unlink (&seg);
    zlistx_destroy (list_p);
}

static void s_check_flushes (self_t *self);

//  Takes the writer's manifest (a searcher process): complete segments become
//  flushed, their listed indexes are loaded. Kept while this searcher is behind it,
//  and taken again each second until it is not (or a newer one comes).
static void
s_adopt (self_t *self)
{
    if (!self->adopting.data)
        return;
    zlistx_t *unflushed = self->config->meta_remote ? s_unflushed_list (self) : NULL;
    int behind = qv_manifest_adopt (self->catalog, self->adopting.data, self->adopting.size,
                                    s_adopt_todo, self);
    bool newer = behind == 0 && self->adopting_version > self->manifest_done;
    if (newer)
        self->manifest_done = self->adopting_version;
    if (unflushed && behind >= 0)
        s_adopted (self, unflushed, newer);
    s_segment_list_free (&unflushed);
    if (self->flushes)
        s_check_flushes (self);
    if (behind > 0)
        return;
    free (self->adopting.data);
    self->adopting.data = NULL;
    self->adopting.size = 0;
}

//  Calls fn for each row of c visible now that the request's filter matches, in
//  segment and row order, until fn returns false. Only rows of the partitions in
//  parts (NULL: all; taken) are read, fewer when the filter pins the partition key.
typedef bool (s_row_fn) (void *arg, qv_segment_t *seg, uint32_t row);

static int
s_each_match (self_t *self, qv_collection_t *c, const qv_req_t *req, roaring_bitmap_t *parts,
              s_row_fn *fn, void *arg)
{
    qv_schema_t *schema = NULL;
    qv_expr_t *expr = NULL;
    int rc = qv_search_parse_filter (c, req, &schema, &expr);
    if (!rc)
        rc = qv_collection_prune (c, expr, &parts);
    if (rc) {
        if (parts)
            roaring_bitmap_free (parts);
        qv_expr_destroy (&expr);
        qv_schema_destroy (&schema);
        return rc;
    }
    qv_snapshot_t *snap = qv_snapshot_new (c, qv_catalog_max_ts (self->catalog), c->schema->vec, parts);
    if (parts)
        roaring_bitmap_free (parts);
    if (snap)
        self->segments_read += snap->nsegs;
    roaring_bitmap_t *bm = roaring_bitmap_create ();
    uint64_t mask = 0;
    if (expr)
        qv_expr_fields (expr, &mask);
    bool more = true;
    for (size_t i = 0; snap && more && i < snap->nsegs; i++) {
        qv_segment_t *seg = snap->segs [i];
        uint32_t rows = snap->rows [i];
        if (expr) {
            //  This thread owns the segments' indexes: no links needed
            qv_segidx_t *idx [QV_FIELDS_MAX];
            qv_scalar_t *scalars [QV_FIELDS_MAX];
            qv_collection_scalars (c, seg, mask, idx);
            for (int fi = 0; fi < QV_FIELDS_MAX; fi++)
                scalars [fi] = idx [fi] ? idx [fi]->scalar : NULL;
            roaring_bitmap_clear (bm);
            if ((rc = qv_expr_eval_indexed (expr, seg->batch, 0, rows, scalars, QV_EXPR_INDEX_SHARE, bm)) < 0)
                break;
            rc = 0;
            roaring_uint32_iterator_t *it = roaring_create_iterator (bm);
            while (more && it->has_value) {
                if (qv_segment_visible (seg, it->current_value, snap->ts))
                    more = fn (arg, seg, it->current_value);
                roaring_advance_uint32_iterator (it);
            }
            roaring_free_uint32_iterator (it);
        }
        else
            for (uint32_t r = 0; more && r < rows; r++)
                if (qv_segment_visible (seg, r, snap->ts))
                    more = fn (arg, seg, r);
    }
    roaring_bitmap_free (bm);
    qv_snapshot_destroy (&snap);
    qv_expr_destroy (&expr);
    qv_schema_destroy (&schema);
    return rc;
}

typedef struct {
    qv_collection_t *coll;
    uint64_t count;
    uint64_t skip;
    uint64_t limit;
    qv_segment_t **segs;
    uint32_t *rows;
    size_t n;
    bool count_only;
} s_query_t;

static bool
s_query_row (void *arg, qv_segment_t *seg, uint32_t row)
{
    s_query_t *q = arg;
    q->count++;
    if (q->count_only)
        return true;
    if (q->count <= q->skip)
        return true;
    q->segs [q->n] = seg;
    q->rows [q->n++] = row;
    return q->n < q->limit;
}

static void
s_query (self_t *self, qv_job_t *job)
{
    qv_req_t *req = &job->req;
    qv_collection_t *c = qv_catalog_find (self->catalog, req->collection);
    int rc = 0;
    if (!c)
        rc = qv_err (QV_ENOTFOUND, "collection '%s' does not exist", req->collection);
    roaring_bitmap_t *parts = NULL;
    if (!rc)
        rc = qv_collection_read_partitions (c, req->f [QV_F_partitions], &parts);
    s_query_t q = { c, 0, 0, QV_LIMIT_TOPK, NULL, NULL, 0, false };
    const qv_val_t *of = req->f [QV_F_output_fields];
    q.count_only = of && qv_val_len (of) == 1 && qv_val_is (qv_val_at (of, 0), "count(*)");
    qv_output_t out = { .nfids = 0 };
    if (!rc && !q.count_only)
        rc = qv_collection_check_fields (c, of, &out);
    if (!rc && req->f [QV_F_limit])
        qv_val_uint (req->f [QV_F_limit], &q.limit);
    if (!rc && req->f [QV_F_offset])
        qv_val_uint (req->f [QV_F_offset], &q.skip);
    if (!rc && !q.count_only && (q.limit < 1 || q.limit > QV_LIMIT_TOPK || q.skip > QV_LIMIT_TOPK
                                 || q.limit + q.skip > QV_LIMIT_TOPK))
        rc = qv_err (QV_EINVAL, "limit must be 1..%d and offset + limit at most %d (page with offset)",
                     QV_LIMIT_TOPK, QV_LIMIT_TOPK);
    if (!rc) {
        q.segs = malloc ((size_t) q.limit * sizeof (qv_segment_t *));
        q.rows = malloc ((size_t) q.limit * sizeof (uint32_t));
        rc = s_each_match (self, c, req, parts, s_query_row, &q);
        parts = NULL;
    }
    if (parts)
        roaring_bitmap_free (parts);
    if (rc) {
        free (q.segs);
        free (q.rows);
        s_fail (self, job, rc);
        return;
    }
    //  Segments stay alive: this thread does not drop them while it runs.
    qv_wr_t *w = qv_wr_new ();
    qv_reply_open (w, req->f [QV_F_rid]);
    qv_wr_key (w, "rows");
    if (q.count_only) {
        qv_wr_array (w, 1);
        qv_wr_map_open (w);
        qv_wr_key (w, "count(*)");
        qv_wr_uint (w, q.count);
        qv_wr_map_close (w);
    }
    else {
        qv_wr_array (w, q.n);
        for (size_t i = 0; i < q.n; i++)
            qv_collection_write_row (c, q.segs [i], q.rows [i], &out, true, w);
    }
    qv_reply_close (w);
    free (q.segs);
    free (q.rows);
    qv_job_reply (job, w, 0);
    qv_wr_destroy (&w);
    s_reply (self, job);
}

typedef struct {
    qv_keys_t *keys;
    uint32_t cap;
    bool varchar;
    int pk;
} s_resolve_t;

static bool
s_resolve_row (void *arg, qv_segment_t *seg, uint32_t row)
{
    s_resolve_t *r = arg;
    qv_keys_t *k = r->keys;
    if (k->n == r->cap) {
        r->cap = r->cap ? r->cap * 2 : 1024;
        if (r->varchar)
            k->strs = realloc (k->strs, r->cap * sizeof (qv_bytes_t));
        else
            k->ints = realloc (k->ints, r->cap * sizeof (int64_t));
    }
    const qv_col_t *col = &seg->batch->cols [r->pk];
    if (r->varchar) {
        const qv_bytes_t *v = qv_col_var (col, row);
        k->strs [k->n].len = v->len;
        k->strs [k->n].ptr = malloc (v->len + 1);
        if (v->len)
            memcpy (k->strs [k->n].ptr, v->ptr, v->len);
    }
    else
        k->ints [k->n] = qv_col_i64 (col, row);
    k->n++;
    return true;
}

//  A delete, before it is logged: a filter is resolved to the primary keys of the
//  rows it matches at the current snapshot, and the live rows the keys name are
//  counted (job->deleted, which the segment manager's acknowledgement reports); the
//  proxy then logs a delete of those keys. A delete by ids keeps every id it lists:
//  applied in log order, it removes whatever row holds one then.
static void
s_resolve (self_t *self, qv_job_t *job)
{
    qv_req_t *req = &job->req;
    qv_collection_t *c = qv_catalog_find (self->catalog, req->collection);
    int rc = 0;
    if (!c)
        rc = qv_err (QV_ENOTFOUND, "collection '%s' does not exist", req->collection);
    else
    if (!req->f [QV_F_filter])
        job->deleted = (int64_t) qv_catalog_live_keys (self->catalog, job->rec);
    else {
        //  The keys start empty, of the primary key's type (a record decoded from
        //  another process may hold an empty list of the other type)
        qv_keys_free (&job->rec->keys);
        s_resolve_t r = { &job->rec->keys, 0, c->schema->fields [c->schema->pk].type == QV_VARCHAR,
                          c->schema->pk };
        roaring_bitmap_t *parts = NULL;
        if (job->rec->in_partition) {
            parts = roaring_bitmap_create ();
            roaring_bitmap_add (parts, job->rec->partition);
        }
        rc = s_each_match (self, c, req, parts, s_resolve_row, &r);
        if (!rc && !r.varchar && !job->rec->keys.ints)
            job->rec->keys.ints = malloc (sizeof (int64_t));
        if (!rc && r.varchar && !job->rec->keys.strs)
            job->rec->keys.strs = calloc (1, sizeof (qv_bytes_t));
        if (!rc)
            job->deleted = job->rec->keys.n;
    }
    if (rc)
        qv_job_fail (job, rc, qv_err_msg ());
    qv_msg_resolved_t *msg = qv_msg_resolved_new ();
    msg->job = job;
    if (qv_msg_post (self->proxy, &msg) != 0)
        qv_msg_free (&msg);         //  the proxy is gone: no client to answer
}

static void
s_read (self_t *self, qv_job_t *job)
{
    qv_req_t *req = &job->req;
    const qv_val_t *rid = req->f [QV_F_rid];
    if (req->op == QV_OP_search) {
        qv_search_start (self, job);
        return;
    }
    if (req->op == QV_OP_query) {
        s_query (self, job);
        return;
    }
    if (req->op == QV_OP_delete) {
        s_resolve (self, job);
        return;
    }
    if (req->op == QV_OP_stats) {
        qv_searcher_stats (self, job);
        return;
    }
    if (req->op == QV_OP_compact) {
        qv_searcher_compact (self, job);
        return;
    }
    if (req->op == QV_OP_get_compaction_state) {
        qv_searcher_compaction_state (self, job);
        return;
    }
    if (req->op == QV_OP_backup) {
        qv_searcher_backup (self, job);
        return;
    }
    if (req->op == QV_OP_get_backup_state) {
        qv_searcher_backup_state (self, job);
        return;
    }
    qv_wr_t *w = qv_wr_new ();
    int rc = 0;
    qv_collection_t *c = req->collection [0] ? qv_catalog_find (self->catalog, req->collection) : NULL;
    if (req->op == QV_OP_has_collection) {
        qv_reply_open (w, rid);
        qv_wr_key (w, "exists");
        qv_wr_bool (w, c != NULL);
        qv_reply_close (w);
    }
    else
    if (req->op == QV_OP_list_collections) {
        size_t n;
        qv_collection_t **list = qv_catalog_list (self->catalog, &n);
        qv_reply_open (w, rid);
        qv_wr_key (w, "collections");
        qv_wr_array (w, n);
        for (size_t i = 0; i < n; i++)
            qv_wr_str (w, list [i]->name);
        qv_reply_close (w);
        free (list);
    }
    else
    if (!c)
        rc = qv_err (QV_ENOTFOUND, "collection '%s' does not exist", req->collection);
    else
    if (req->op == QV_OP_describe_collection) {
        qv_reply_open (w, rid);
        qv_wr_map_add (w, QV_DESCRIBE_FIELDS);  //  the pairs qv_collection_describe writes
        qv_collection_describe (c, self->manifest_done, w);
        qv_reply_close (w);
    }
    else
    if (req->op == QV_OP_list_partitions) {
        qv_reply_open (w, rid);
        qv_wr_key (w, "partitions");
        qv_wr_array (w, c->nparts);
        for (uint32_t i = 0; i < c->nparts; i++)
            qv_wr_str (w, c->parts [i].name);
        qv_reply_close (w);
    }
    else
    if (req->op == QV_OP_describe_index) {
        int fi = -1;
        if (req->f [QV_F_field]) {
            char name [QV_NAME_MAX + 1];
            fi = qv_val_strcpy (req->f [QV_F_field], name, sizeof name) ? -1 : qv_schema_find (c->schema, name);
        }
        else
            for (int i = 0; i < c->schema->nfields && fi < 0; i++)
                if (c->index_defs [i])
                    fi = i;
        if (fi < 0 || !c->index_defs [fi])
            rc = qv_err (QV_ENOTFOUND, "collection '%s' has no index%s", c->name,
                         req->f [QV_F_field] ? " on that field" : "");
        else {
            qv_reply_open (w, rid);
            qv_wr_map_add (w, QV_DESCRIBE_INDEX_FIELDS);    //  written by the helper
            qv_collection_describe_index (c, fi, self->manifest_done, w);
            qv_reply_close (w);
        }
    }
    else
    if (req->op == QV_OP_get) {
        qv_output_t out;
        qv_keys_t keys;
        roaring_bitmap_t *parts = NULL;
        rc = qv_collection_read_partitions (c, req->f [QV_F_partitions], &parts);
        if (!rc)
            rc = qv_collection_check_fields (c, req->f [QV_F_output_fields], &out);
        if (!rc)
            rc = qv_keys_from_request (&c->schema->fields [c->schema->pk], req->f [QV_F_ids],
                                       QV_LIMIT_TOPK, &keys);
        if (!rc) {
            qv_reply_open (w, rid);
            qv_wr_key (w, "rows");
            rc = qv_collection_get (c, &keys, parts, &out, w);
            if (!rc)
                qv_reply_close (w);
            qv_keys_free (&keys);
        }
        if (parts)
            roaring_bitmap_free (parts);
    }
    if (rc) {
        qv_wr_destroy (&w);
        s_fail (self, job, rc);
        return;
    }
    qv_job_reply (job, w, 0);
    qv_wr_destroy (&w);
    s_reply (self, job);
}

//  Answers the parked reads whose guarantee tsafe has reached.
static void
s_release (self_t *self)
{
    qv_job_t *job;
    while ((job = qv_tsafe_next_ready (self->tsafe)))
        s_read (self, job);
}

//  A read: answered now if the shard is applied up to its guarantee, else parked.
static void
s_read_at (self_t *self, qv_job_t *job, uint64_t guarantee)
{
    if (qv_tsafe_ready (self->tsafe, guarantee)) {
        s_read (self, job);
        return;
    }
    int64_t deadline = job->deadline ? job->deadline
                                     : qv_clock_msec () + self->config->read_wait_ms;
    if (qv_tsafe_park (self->tsafe, job, guarantee, deadline)) {
        qv_job_fail (job, QV_ENOMEM, "out of memory");
        s_reply (self, job);
    }
}

//  Parked reads past their deadline get TIMEOUT, naming how far the shard has got.
static void
s_expire (self_t *self)
{
    uint64_t want;
    qv_job_t *job;
    int64_t now = qv_clock_msec ();
    while ((job = qv_tsafe_next_expired (self->tsafe, now, &want))) {
        uint64_t at = qv_tsafe_get (self->tsafe);
        char msg [400];
        snprintf (msg, sizeof msg, "the read's consistency level needs every write up to "
                  "timestamp %llu, but the searcher has applied the shard only up to %llu "
                  "(%lld ms behind) after waiting %d ms (--read-wait-ms); retry, or read with "
                  "consistency 'bounded' or 'eventually'", (unsigned long long) want,
                  (unsigned long long) at, (long long) ((want >> QV_TS_LOGICAL_BITS)
                                                        - (at >> QV_TS_LOGICAL_BITS)),
                  self->config->read_wait_ms);
        qv_job_fail (job, QV_ETIMEOUT, msg);
        s_reply (self, job);
    }
}

//  An APPLY is taken, its record freed: a searcher process's follower may free the
//  schema it was decoded with (qv_follower_free_retired).
static void
s_taken (self_t *self)
{
    if (self->config->feed_stats)
        atomic_fetch_add (&self->config->feed_stats->applies_taken, 1);
}

//  Takes the typed messages of the @interface block.
static void
s_handle_msg (self_t *self, qv_msg_t *msg)
{
    switch (msg->id) {
        case QV_MSG_TICK:
            qv_tsafe_advance (self->tsafe, ((qv_msg_tick_t *) msg)->ts);
            s_release (self);
            break;
        case QV_MSG_APPLY: {
            qv_msg_apply_t *m = (qv_msg_apply_t *) msg;
            bool index_ddl = m->job->rec->type == QV_REC_CREATE_INDEX
                          || m->job->rec->type == QV_REC_DROP_INDEX;
            qv_cdc_t *ev = s_cdc_event (self, m);
            if (s_apply (self, qv_msg_take_job (msg), m->seq, m->wal_last, m->acked) == 0)
                s_cdc_send (self, &ev, false);
            qv_cdc_destroy (&ev);
            s_taken (self);
            if (index_ddl) {
                qv_catalog_index_todo (self->catalog, s_index_todo, self);
                s_request_manifest (self);
            }
            s_release (self);
            break;
        }
        case QV_MSG_COMPACTED:
            qv_searcher_compacted (self, ((qv_msg_compacted_t *) msg)->task);
            break;
        case QV_MSG_GC_CHECK:
            qv_searcher_gc_check (self, ((qv_msg_gc_check_t *) msg)->keys);
            break;
        case QV_MSG_BUILT:
            qv_searcher_built (self, ((qv_msg_built_t *) msg)->build);
            break;
        case QV_MSG_READ: {
            uint64_t guarantee = ((qv_msg_read_t *) msg)->guarantee_ts;
            s_read_at (self, qv_msg_take_job (msg), guarantee);
            break;
        }
        case QV_MSG_SEARCHED:
            qv_search_parts_done (self, ((qv_msg_searched_t *) msg)->task);
            break;
        case QV_MSG_SEAL: {
            qv_msg_seal_t *m = (qv_msg_seal_t *) msg;
            qv_segment_t *seg = qv_catalog_seal (self->catalog, (uint32_t) m->coll, m->seg);
            if (seg && seg->state == QV_SEG_SEALED)
                s_send_write (self, seg);
            break;
        }
        case QV_MSG_FLUSH: {
            if (self->flushes && !self->adopt_stopped) {
                //  After the SEALs before it: done once a manifest of the meta process
                //  holds every sealed segment of the collection
                s_park_flush (self, (uint32_t) ((qv_msg_flush_t *) msg)->coll, qv_msg_take_job (msg));
                break;
            }
            //  After the SEALs before it: the coordinator knows the sealed segments.
            qv_msg_flush_t *m = qv_msg_flush_new ();
            m->coll = ((qv_msg_flush_t *) msg)->coll;
            m->job = qv_msg_take_job (msg);
            if (!s_to_meta (self, &m)) {
                qv_job_t *job = qv_msg_take_job ((qv_msg_t *) m);
                qv_msg_free (&m);
                qv_job_fail (job, QV_EUNAVAIL, "the server is shutting down before the flush completed");
                s_reply (self, job);
            }
            break;
        }
        case QV_MSG_FLUSH_DONE: {
            qv_msg_flush_done_t *m = (qv_msg_flush_done_t *) msg;
            s_flush_done (self, (uint32_t) m->coll, qv_msg_take_job (msg));
            break;
        }
        case QV_MSG_WRITTEN:
            s_written (self, ((qv_msg_written_t *) msg)->seg);
            break;
        case QV_MSG_MANIFEST_SEEN: {
            qv_msg_manifest_seen_t *m = (qv_msg_manifest_seen_t *) msg;
            free (self->adopting.data);
            self->adopting = m->body;
            self->adopting_version = m->version;
            m->body.data = NULL;
            m->body.size = 0;
            s_adopt (self);
            break;
        }
        case QV_MSG_MANIFESTED: {
            qv_msg_manifested_t *m = (qv_msg_manifested_t *) msg;
            if (m->rc == 0 && m->version > self->manifest_done) {
                self->manifest_done = m->version;
                s_release_indexes (self);
            }
            break;
        }
        default:
            qv_error ("protocol error: the searcher does not take %s; dropped", qv_msg_name (msg->id));
    }
}

//  Whether msg is part of the segment manager's committed feed (which the fault hook
//  QV_FAULT_APPLY_DELAY_MS holds back, keeping its order).
static bool
s_is_feed (const qv_msg_t *msg)
{
    return msg->id == QV_MSG_APPLY || msg->id == QV_MSG_TICK || msg->id == QV_MSG_SEAL
        || msg->id == QV_MSG_FLUSH;
}

//  Takes the held-back feed messages that are due, in order.
static void
s_delayed_due (self_t *self)
{
    int64_t now = qv_clock_msec ();
    s_delayed_t *d;
    while ((d = zlistx_first (self->delayed)) && d->due <= now) {
        zlistx_detach (self->delayed, NULL);
        qv_msg_t *msg = d->msg;
        free (d);
        s_handle_msg (self, msg);
        qv_msg_destroy (&msg);
    }
}

static int
s_handle_inbox (qv_loop_t *loop, zsock_t *reader, void *arg)
{
    (void) loop;
    self_t *self = arg;
    //  The messages already queued are taken in this turn (QV_ACTOR_DRAIN)
    for (int n = 0; n < QV_ACTOR_DRAIN; n++) {
        qv_msg_t *msg = n == 0? qv_msg_recv (reader): qv_msg_recv_nowait (reader);
        if (!msg)
            break;
        if (self->config->fault_apply_delay_ms > 0 && s_is_feed (msg)) {
            s_delayed_t *d = calloc (1, sizeof *d);
            d->due = qv_clock_msec () + self->config->fault_apply_delay_ms;
            d->msg = msg;
            zlistx_add_end (self->delayed, d);
            continue;
        }
        s_handle_msg (self, msg);
        qv_msg_destroy (&msg);
    }
    return 0;
}

//  Every 10 ms: parked reads past their deadline; the fault hook's due messages.
static int
s_handle_wait_timer (qv_loop_t *loop, int timer_id, void *arg)
{
    (void) loop;
    (void) timer_id;
    self_t *self = arg;
    s_delayed_due (self);
    s_expire (self);
    return 0;
}

//  Names every sealed segment to the coordinator, which writes those not written or
//  being written (a write that failed is retried so; the flusher logged why).
static void
s_sealed_todo (self_t *self)
{
    size_t n;
    qv_collection_t **list = qv_catalog_list (self->catalog, &n);
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < list [i]->nsegs; j++)
            if (list [i]->segs [j]->state == QV_SEG_SEALED)
                s_send_write (self, list [i]->segs [j]);
    free (list);
}

//  What the catalog holds in memory (rows, vector indexes, key indexes), for the
//  segment manager's --memory-mb check.
static void
s_measure_memory (self_t *self)
{
    qv_write_stats_t *ws = self->config->write_stats;
    if (!ws)
        return;
    size_t n;
    qv_collection_t **list = qv_catalog_list (self->catalog, &n);
    uint64_t bytes = 0;
    for (size_t i = 0; i < n; i++)
        bytes += qv_collection_memory (list [i], NULL);
    free (list);
    atomic_store (&ws->resident, bytes);
}

//  Every second: sealed segments to write, indexes to build.
static int
s_handle_timer (qv_loop_t *loop, int timer_id, void *arg)
{
    (void) loop;
    (void) timer_id;
    self_t *self = arg;
    s_sealed_todo (self);
    qv_catalog_index_todo (self->catalog, s_index_todo, self);
    s_adopt (self);
    if (self->flushes)
        s_check_flushes (self);
    qv_searcher_compact_tick (self);
    s_measure_memory (self);
    return 0;
}

//  At $TERM: what is still queued is answered, so nothing in flight is lost or leaked.
//  Logged writes are applied (they are durable: their ok is the truth); reads and
//  flushes are refused; segment links coming back from the coordinator are dropped.
static void
s_drain (self_t *self)
{
    qv_msg_t *msg;
    s_delayed_t *d;
    while ((d = zlistx_detach (self->delayed, NULL)) || (msg = qv_msg_recv_nowait (self->inbox))) {
        if (d) {
            msg = d->msg;
            free (d);
        }
        if (msg->id == QV_MSG_APPLY) {
            qv_msg_apply_t *m = (qv_msg_apply_t *) msg;
            s_apply (self, qv_msg_take_job (msg), m->seq, m->wal_last, m->acked);
            s_taken (self);
        }
        else
        if (msg->id == QV_MSG_FLUSH_DONE) {
            qv_msg_flush_done_t *m = (qv_msg_flush_done_t *) msg;
            s_flush_done (self, (uint32_t) m->coll, qv_msg_take_job (msg));
        }
        else
        if (msg->id == QV_MSG_READ || msg->id == QV_MSG_FLUSH) {
            qv_job_t *job = qv_msg_take_job (msg);
            qv_job_fail (job, QV_EUNAVAIL, "the server is shutting down; retry when it is back");
            s_reply (self, job);
        }
        else
        if (msg->id == QV_MSG_WRITTEN) {
            qv_segment_t *seg = ((qv_msg_written_t *) msg)->seg;
            qv_segment_unlink (&seg);
        }
        else
        if (msg->id == QV_MSG_BUILT)
            qv_build_destroy ((qv_build_t **) &((qv_msg_built_t *) msg)->build);
        else
        if (msg->id == QV_MSG_COMPACTED)
            qv_compact_destroy ((qv_compact_t **) &((qv_msg_compacted_t *) msg)->task);
        else
        if (msg->id == QV_MSG_GC_CHECK)
            zlist_destroy ((zlist_t **) &((qv_msg_gc_check_t *) msg)->keys);
        qv_msg_destroy (&msg);
    }
}

static int
s_handle_pipe (qv_loop_t *loop, zsock_t *reader, void *arg)
{
    (void) loop;
    self_t *self = arg;
    char *cmd = zstr_recv (reader);
    if (cmd && streq (cmd, "QUIET")) {
        //  Shutdown: no more work for the coordinator, which stops next and frees what
        //  it still holds; nothing sent after its inbox closed could be lost.
        self->quiet = true;
        self->adopt_stopped = true;         //  the adopter stops next
        qv_searcher_backups_cancel (self);
        zstr_free (&cmd);
        zsock_signal (reader, 0);
        return 0;
    }
    if (cmd && streq (cmd, "SEGMGR-STOPS")) {
        //  meta_remote: the segment manager and the feed publisher stop next; what is
        //  sent to them after their last read would be lost in the closing pipes
        zsock_destroy (&self->segmgr);
        zsock_destroy (&self->feedpub);
        zsock_destroy (&self->segmgr_write);
        zstr_free (&cmd);
        zsock_signal (reader, 0);
        return 0;
    }
    zstr_free (&cmd);
    return -1;
}

void
qv_searcher_actor (zsock_t *pipe, void *args_)
{
    qv_searcher_args_t *args = args_;
    self_t *self = calloc (1, sizeof *self);
    self->config = args->config;
    self->catalog = args->catalog;
    self->manifest_done = self->manifest_requested = qv_catalog_manifest_version (self->catalog);
    self->building = zhashx_new ();
    self->filter_cache = zhashx_new ();
    zhashx_set_destructor (self->filter_cache, qv_search_bitmap_free);
    self->searches = zlistx_new ();
    self->tsafe = qv_tsafe_new (qv_catalog_max_ts (self->catalog));
    self->delayed = zlistx_new ();
    self->compactions = qv_compactions_new ();
    //  A searcher process and a segment manager without meta write nothing: they
    //  take the manifests another process writes (a meta process writes them)
    self->adopts = (self->config->follower && !self->config->meta_process)
                || self->config->meta_remote;
    self->quiet = self->adopts;
    qv_searcher_backups_new (self);    //  after adopts: whether it records states
    s_release_indexes (self);      //  those recovery loaded (a writer without the role)
    char ep [256];
    qv_config_endpoint (self->config, "searcher", ep, sizeof ep);
    self->inbox = zsock_new_pull (ep);
    self->proxy = qv_config_push (self->config, "proxy");
    self->meta = qv_config_push (self->config, "meta");
    if (self->adopts)
        self->adopter = qv_config_push (self->config, "adopt");
    if (!self->adopts && !self->config->follower && !self->config->meta_process
    &&  !self->config->meta_remote)
        self->segmgr_write = qv_config_push (self->config, "segmgr");
    if (self->config->meta_remote) {
        self->segmgr = qv_config_push (self->config, "segmgr");
        self->flushes = zlistx_new ();
        if (self->config->feed_stats && self->config->nats_url [0]) {
            qv_config_endpoint (self->config, "feedpub", ep, sizeof ep);
            self->feedpub = zsock_new (ZMQ_PUSH);
            zsock_set_linger (self->feedpub, 0);
            zsock_connect (self->feedpub, "%s", ep);
        }
    }
    if (self->config->nats_stats && !self->config->follower) {
        qv_config_endpoint (self->config, "cdc", ep, sizeof ep);
        self->cdc = zsock_new (ZMQ_PUSH);
        zsock_set_sndhwm (self->cdc, 100000);
        zsock_set_linger (self->cdc, 0);
        zsock_connect (self->cdc, "%s", ep);
    }
    self->nworkers = self->config->search_threads > 0 ? self->config->search_threads : 1;
    self->workers = calloc ((size_t) self->nworkers, sizeof (zactor_t *));
    qv_loop_t *loop = qv_loop_new ();
    //  Stop on $TERM only: SIGINT/SIGTERM belong to main, which stops the actors in order
    //  (the segment manager first, so that the write in flight reaches the searcher).
    qv_loop_set_nonstop (loop, true);
    //  One socket for every worker's SEARCHED, beside the inbox (not behind its
    //  queue of applies), polled once however many workers there are
    qv_config_endpoint (self->config, "searched", ep, sizeof ep);
    self->searched = zsock_new_pull (ep);
    for (int i = 0; i < self->nworkers; i++)
        self->workers [i] = zactor_new (qv_search_worker_actor, (void *) self->config);
    //  args lives in the caller's stack frame, which is gone once the signal below lets
    //  zactor_new return: take everything from it first. (Reading cdc_replay after the
    //  signal crashed freshly started servers in zlist_pop, or wrote into main's stack,
    //  whenever the caller ran ahead of this thread, as on a loaded machine.)
    zlist_t *cdc_replay = args->cdc_replay;
    args->cdc_replay = NULL;
    args = NULL;
    zsock_signal (pipe, 0);
    //  Change events of the replayed WAL tail go out again, ahead of any new one, so
    //  an event lost in a crash is published (consumers drop repeats by shard and seq).
    //  Blocking sends: the change-feed publisher is running and drains them.
    qv_cdc_t *ev;
    while (cdc_replay && (ev = zlist_pop (cdc_replay))) {
        if (self->cdc)
            s_cdc_send (self, &ev, true);
        qv_cdc_destroy (&ev);
    }
    zlist_destroy (&cdc_replay);
    //  Sealed segments of the recovered catalog, before any FLUSH can ask about them.
    s_sealed_todo (self);
    qv_loop_reader (loop, pipe, s_handle_pipe, self);
    //  Only s_handle_pipe reads or answers the pipe (no other handler holds it): it is
    //  asked for events only when its fd fires or after s_handle_pipe
    qv_loop_reader_set_private (loop, pipe);
    qv_loop_reader (loop, self->inbox, s_handle_inbox, self);
    qv_loop_reader (loop, self->searched, s_handle_inbox, self);
    qv_loop_timer (loop, 1000, 0, s_handle_timer, self);
    qv_loop_timer (loop, 10, 0, s_handle_wait_timer, self);
    qv_loop_set_nonstop (loop, true);
    qv_loop_start (loop);
    qv_loop_destroy (&loop);
    //  The workers first, then what they posted while stopping (their searches are
    //  answered below)
    for (int i = 0; i < self->nworkers; i++)
        zactor_destroy (&self->workers [i]);
    qv_msg_t *searched;
    while ((searched = qv_msg_recv_nowait (self->searched)))
        qv_msg_destroy (&searched);
    zsock_destroy (&self->searched);
    s_drain (self);
    s_fail_parked (self);
    zlistx_destroy (&self->flushes);
    //  Searches the workers had not finished: answer them, free their state.
    s_search_t *search;
    while ((search = zlistx_detach (self->searches, NULL))) {
        qv_job_t *job = search->job;
        qv_search_free (&search);
        qv_job_fail (job, QV_EUNAVAIL, "the server is shutting down; retry when it is back");
        s_reply (self, job);
    }
    zlistx_destroy (&self->searches);
    qv_job_t *parked;
    while ((parked = qv_tsafe_drain (self->tsafe))) {
        qv_job_fail (parked, QV_EUNAVAIL, "the server is shutting down; retry when it is back");
        s_reply (self, parked);
    }
    qv_tsafe_destroy (&self->tsafe, NULL);
    zlistx_destroy (&self->delayed);
    free (self->workers);
    zhashx_destroy (&self->building);
    zhashx_destroy (&self->filter_cache);
    qv_catalog_destroy (&self->catalog);
    zsock_destroy (&self->inbox);
    zsock_destroy (&self->proxy);
    zsock_destroy (&self->meta);
    zsock_destroy (&self->cdc);
    zsock_destroy (&self->adopter);
    zsock_destroy (&self->segmgr);
    zsock_destroy (&self->segmgr_write);
    zsock_destroy (&self->feedpub);
    qv_compactions_destroy (&self->compactions);
    qv_searcher_backups_destroy (self);
    free (self->adopting.data);
    free (self);
}
