//  Metadata coordinator actor (Milvus's DataCoord, in part): schedules segment writes
//  and index builds on its workers, the flusher and the index builder; has manifests
//  written in the order the searcher asks for them, and knows which one is durable;
//  checkpoints the WAL once a manifest is; answers flushes once their segments are in
//  a durable manifest.
//
//  @interface (messages: schemas/qv_msg.h)
//    pipe  $TERM                       stop
//    pipe  QUIET                       give the workers nothing more (shutdown); signals
//    pipe  SEGMGR-STOPS                send the segment manager and the feed publisher
//                                      nothing more: they are about to stop
//                                      (shutdown); signals
//  takes (inbox, PULL inproc "meta"):
//    STORE_SEGMENT {seg}               from the searcher: a sealed segment to write
//                                      (again every second until written; one write
//                                      at a time per segment)
//    BUILD {build}                     from the searcher: an index to build
//    MANIFEST {version, manifest, checkpoint}   from the searcher: the catalog's
//                                      manifest to write (versions rise)
//    FLUSHED {seg}                     from the searcher: a written segment is marked
//                                      flushed, and a manifest holding it was asked for
//    FLUSH {coll, job}                 from the searcher, after coll's SEALs
//    WRITTEN {seg, rc, error}, MANIFESTED {version, rc, error}   from the flusher
//    BUILT {build}                     from the builder
//    COMPACT {task}                    from the searcher: a compaction it planned
//    COMPACTED {task}, GC_CHECK {keys} from the compactor
//    GC_CHECKED {keys}                 from the searcher
//  sends:
//    STORE_SEGMENT {seg}, MANIFEST {version, manifest, checkpoint}   to the flusher
//    BUILD {build}                     to the builder
//    COMPACT {task}                    to the compactor (actors/qv_compactor.c)
//    COMPACTED {task}, GC_CHECK {keys} to the searcher
//    GC_CHECKED {keys}                 to the compactor
//    WRITTEN {seg, rc, error} (rc 0), BUILT {build}, MANIFESTED {version, rc, error},
//    FLUSH_DONE {coll, job}            to the searcher, which owns the catalog
//    FLUSHED {seg}, CHECKPOINT {seq}   to the segment manager
//    REPLY {job, ts}                   to the proxy: a flush that failed
//    FEED_MANIFEST {shard, version}    with --nats, to the feed publisher (inproc
//                                      "feedpub", without waiting: dropped when it
//                                      cannot take it): a manifest is durable
//
//  DESIGN
//  The searcher owns the catalog (it applies the log to it), so it decides what needs
//  writing, building, and which manifest describes it; this actor decides when, keeps
//  one write per segment and one build per index in flight, and follows their outcome.
//  A flush waits here: while its collection has sealed segments that are not yet
//  flushed, then for the manifest asked for after the last of them. A segment counts
//  as flushed once the searcher says so (FLUSHED), which it does after asking for the
//  manifest that records it, on the same socket: the manifest version known here then
//  covers it. A segment write or a manifest write the store refused fails the flushes
//  waiting on it at once (the rows are safe in the WAL); the segment is written again
//  when the searcher names it again, the manifest asked for again by the timer.
//  Index builds run on the builder's thread, so a long build never holds up a segment
//  write or a manifest on the flusher's.
#include "qv_meta.h"
#include "qv_loop.h"
#include "qv_builder.h"
#include "qv_compactor.h"
#include "qv_catalog.h"
#include "qv_msg.h"
#include "qv_rc.h"

typedef struct {
    qv_job_t *job;
    uint32_t coll_id;
    uint64_t target;                //  manifest version to wait for, 0 until known
} s_flush_t;

//  The WAL checkpoint written in a requested manifest: only once that manifest is
//  durable may the WAL below it go.
typedef struct {
    uint64_t version;
    uint64_t checkpoint;
} s_manifest_cp_t;

typedef struct {
    const qv_config_t *config;
    zsock_t *inbox;
    zsock_t *proxy;
    zsock_t *segmgr;
    zsock_t *searcher;
    zsock_t *flusher;
    zsock_t *builder;
    zsock_t *compactor;
    zsock_t *feedpub;               //  PUSH to the feed publisher, with --nats; or NULL
    zlistx_t *flushes;              //  s_flush_t *
    zhashx_t *sealed;               //  "seg id" -> coll id + 1: sealed, not yet flushed
    zhashx_t *writing;              //  "seg id": written by the flusher, or written and
                                    //  not yet marked flushed by the searcher
    bool quiet;                     //  shutting down: give the workers nothing more
    uint64_t manifest_requested;
    uint64_t manifest_done;
    bool manifest_retry;            //  a manifest write failed: write again at the tick
    qv_msg_bin_t last;              //  the newest manifest asked for (a copy, for a retry)
    zlistx_t *manifest_cps;         //  s_manifest_cp_t * of requested manifests, in order
} self_t;

static void
s_reply (self_t *self, qv_job_t *job)
{
    qv_msg_reply_t *msg = qv_msg_reply_new ();
    msg->job = job;
    if (qv_msg_post (self->proxy, &msg) != 0)
        qv_msg_free (&msg);         //  the proxy is gone: no client to answer
}

static void
s_fail (self_t *self, qv_job_t *job, int rc, const char *why)
{
    qv_job_fail (job, rc, why);
    s_reply (self, job);
}

//  Frees a message with the in-process handles (PTR fields) it holds; a flush it
//  carries is answered UNAVAILABLE.
static void
s_drop (self_t *self, qv_msg_t **msg_p)
{
    qv_msg_t *msg = *msg_p;
    if (msg && (msg->id == QV_MSG_STORE_SEGMENT || msg->id == QV_MSG_WRITTEN)) {
        qv_segment_t *seg = msg->id == QV_MSG_WRITTEN ? ((qv_msg_written_t *) msg)->seg
                                                      : ((qv_msg_store_segment_t *) msg)->seg;
        qv_segment_unlink (&seg);
    }
    else
    if (msg && (msg->id == QV_MSG_BUILD || msg->id == QV_MSG_BUILT)) {
        qv_build_t *b = msg->id == QV_MSG_BUILD ? ((qv_msg_build_t *) msg)->build
                                                : ((qv_msg_built_t *) msg)->build;
        qv_build_destroy (&b);
    }
    else
    if (msg && (msg->id == QV_MSG_COMPACT || msg->id == QV_MSG_COMPACTED)) {
        qv_compact_t *t = msg->id == QV_MSG_COMPACT ? ((qv_msg_compact_t *) msg)->task
                                                    : ((qv_msg_compacted_t *) msg)->task;
        qv_compact_destroy (&t);
    }
    else
    if (msg && (msg->id == QV_MSG_GC_CHECK || msg->id == QV_MSG_GC_CHECKED)) {
        zlist_t *keys = msg->id == QV_MSG_GC_CHECK ? ((qv_msg_gc_check_t *) msg)->keys
                                                   : ((qv_msg_gc_checked_t *) msg)->keys;
        zlist_destroy (&keys);
    }
    else
    if (msg && (msg->id == QV_MSG_FLUSH || msg->id == QV_MSG_FLUSH_DONE)) {
        qv_job_t *job = qv_msg_take_job (msg);
        if (job)                    //  not taken: answered here
            s_fail (self, job, QV_EUNAVAIL, "the server is shutting down before the flush completed");
    }
    qv_msg_destroy (msg_p);
}

//  Hands msg on to sock; if that fails (the receiver is gone: shutdown), or while
//  quiet, drops it with its handles.
static void
s_forward (self_t *self, zsock_t *sock, qv_msg_t **msg_p)
{
    if (self->quiet || qv_msg_send (sock, msg_p) != 0)
        s_drop (self, msg_p);
}

//  Whether coll_id has a sealed segment not yet flushed.
static bool
s_has_sealed (self_t *self, uint32_t coll_id)
{
    for (void *v = zhashx_first (self->sealed); v; v = zhashx_next (self->sealed))
        if ((uint32_t) ((uintptr_t) v - 1) == coll_id)
            return true;
    return false;
}

//  The store refused an object a flush waits for: every flush of coll_id (every flush
//  if coll_id is 0) is answered UNAVAILABLE with the cause now, rather than waiting
//  for the store to recover. The rows stay in the WAL; the write is retried.
static void
s_fail_flushes (self_t *self, uint32_t coll_id, const char *what, const char *cause)
{
    //  Detached at the cursor, which then stands on the one before: the next is the
    //  one after. (zlistx_find moves the cursor: with it, a walk that saved the next
    //  item met it twice when two flushes ended at once, and freed it twice.)
    s_flush_t *f = zlistx_first (self->flushes);
    while (f) {
        if (coll_id == 0 || f->coll_id == coll_id) {
            zlistx_detach_cur (self->flushes);
            char msg [600];
            snprintf (msg, sizeof msg, "flush failed: %s was not written: %s; the rows are safe in "
                      "the WAL and the write is retried, flush again later", what, cause);
            s_fail (self, f->job, QV_EUNAVAIL, msg);
            free (f);
        }
        f = zlistx_next (self->flushes);
    }
}

//  Flushes whose segments are all in a durable manifest go back to the searcher,
//  which answers them with the collection's flushed segments.
static void
s_check_flushes (self_t *self)
{
    s_flush_t *f = zlistx_first (self->flushes);
    while (f) {
        bool sealed = s_has_sealed (self, f->coll_id);
        if (!sealed && f->target == 0)
            f->target = self->manifest_requested;
        if (!sealed && self->manifest_done >= f->target) {
            zlistx_detach_cur (self->flushes);      //  as in s_fail_flushes
            qv_msg_flush_done_t *msg = qv_msg_flush_done_new ();
            msg->coll = f->coll_id;
            msg->job = f->job;
            s_forward (self, self->searcher, (qv_msg_t **) &msg);
            free (f);
        }
        f = zlistx_next (self->flushes);
    }
}

static void
s_manifest_cp_free (void **item)
{
    free (*item);
    *item = NULL;
}

//  Has the flusher write a manifest the searcher asked for; a copy is kept, to write
//  again should the store refuse it.
static void
s_request_manifest (self_t *self, qv_msg_manifest_t **msg_p)
{
    qv_msg_manifest_t *msg = *msg_p;
    s_manifest_cp_t *mc = calloc (1, sizeof *mc);
    mc->version = msg->version;
    mc->checkpoint = msg->checkpoint;
    zlistx_add_end (self->manifest_cps, mc);
    self->manifest_requested = msg->version;
    free (self->last.data);
    self->last.size = msg->manifest.size;
    self->last.data = malloc (msg->manifest.size ? msg->manifest.size : 1);
    if (msg->manifest.size)
        memcpy (self->last.data, msg->manifest.data, msg->manifest.size);
    s_forward (self, self->flusher, (qv_msg_t **) msg_p);
}

//  The newest manifest again, after a write of it (or of an older one) failed.
static void
s_retry_manifest (self_t *self)
{
    if (self->manifest_requested <= self->manifest_done || self->quiet)
        return;
    qv_msg_manifest_t *msg = qv_msg_manifest_new ();
    msg->version = self->manifest_requested;
    msg->manifest.size = self->last.size;
    msg->manifest.data = malloc (self->last.size ? self->last.size : 1);
    if (self->last.size)
        memcpy (msg->manifest.data, self->last.data, self->last.size);
    s_forward (self, self->flusher, (qv_msg_t **) &msg);
}

static void
s_send_write (self_t *self, qv_msg_store_segment_t **msg_p)
{
    qv_segment_t *seg = (*msg_p)->seg;
    char key [32];
    snprintf (key, sizeof key, "%llu", (unsigned long long) seg->id);
    if (!zhashx_lookup (self->sealed, key))     //  coll id + 1: a value is never NULL
        zhashx_insert (self->sealed, key, (void *) ((uintptr_t) seg->coll_id + 1));
    if (zhashx_lookup (self->writing, key) || self->quiet) {
        s_drop (self, (qv_msg_t **) msg_p);
        return;
    }
    zhashx_insert (self->writing, key, (void *) 1);
    if (qv_msg_send (self->flusher, (qv_msg_t **) msg_p) != 0) {
        zhashx_delete (self->writing, key);     //  the flusher is gone (shutdown)
        s_drop (self, (qv_msg_t **) msg_p);
    }
}

static void
s_written (self_t *self, qv_msg_written_t **msg_p)
{
    qv_msg_written_t *msg = *msg_p;
    qv_segment_t *seg = msg->seg;
    char key [32];
    snprintf (key, sizeof key, "%llu", (unsigned long long) seg->id);
    if (msg->rc == 0) {
        //  The searcher marks it flushed, asks for a manifest, then says FLUSHED.
        s_forward (self, self->searcher, (qv_msg_t **) msg_p);
        return;
    }
    zhashx_delete (self->writing, key);         //  written again when named again
    char what [96];
    snprintf (what, sizeof what, "segment %llu of collection %u", (unsigned long long) seg->id,
              seg->coll_id);
    s_fail_flushes (self, seg->coll_id, what, msg->error);
    s_drop (self, (qv_msg_t **) msg_p);
}

//  What goes to the segment manager only informs it (memory released, a checkpoint):
//  once it stops, that is freed here, never left in a pipe that closes unread.
static void
s_post_segmgr_msg (self_t *self, qv_msg_t **msg_p)
{
    if (!self->segmgr || qv_msg_post (self->segmgr, msg_p) != 0)
        qv_msg_free (msg_p);
}
#define s_post_segmgr(self, msg_p) s_post_segmgr_msg ((self), (qv_msg_t **) (msg_p))

static void
s_flushed (self_t *self, qv_msg_flushed_t **msg_p)
{
    char key [32];
    snprintf (key, sizeof key, "%llu", (unsigned long long) (*msg_p)->seg);
    zhashx_delete (self->writing, key);
    zhashx_delete (self->sealed, key);
    //  The segment manager releases the memory it counted for the segment.
    s_post_segmgr (self, msg_p);
    s_check_flushes (self);
}

static void
s_manifested (self_t *self, qv_msg_manifested_t **msg_p)
{
    qv_msg_manifested_t *m = *msg_p;
    uint64_t version = m->version;
    if (m->rc == 0) {
        //  Manifests are written in the order requested.
        uint64_t checkpoint = 0;
        s_manifest_cp_t *mc;
        while ((mc = zlistx_first (self->manifest_cps)) && mc->version <= version) {
            if (mc->version == version)
                checkpoint = mc->checkpoint;
            free (zlistx_detach (self->manifest_cps, NULL));
        }
        if (version > self->manifest_done) {
            self->manifest_done = version;
            if (self->feedpub) {
                //  Searcher processes read it now rather than at their next poll
                qv_msg_feed_manifest_t *fm = qv_msg_feed_manifest_new ();
                fm->version = version;
                if (qv_msg_send_nowait (self->feedpub, (qv_msg_t **) &fm) != 0)
                    qv_msg_free (&fm);
            }
        }
        //  The checkpoint written in that manifest is now durable (not the catalog's
        //  current one: segments flushed since are in no durable manifest yet).
        if (checkpoint > 0) {
            qv_msg_checkpoint_t *cp = qv_msg_checkpoint_new ();
            cp->seq = checkpoint;
            s_post_segmgr (self, &cp);
        }
    }
    else {
        //  Written again with the newest state by the timer, not at once: a store that
        //  refuses every write (a full disk) would be asked in a tight loop.
        self->manifest_retry = true;
        char what [64];
        snprintf (what, sizeof what, "manifest %llu", (unsigned long long) version);
        s_fail_flushes (self, 0, what, m->error);
    }
    //  The searcher learns which manifest is durable (describe shows it) before it
    //  answers a flush that waited for it.
    s_forward (self, self->searcher, (qv_msg_t **) msg_p);
    s_check_flushes (self);
}

static void
s_handle_msg (self_t *self, qv_msg_t **msg_p)
{
    qv_msg_t *msg = *msg_p;
    switch (msg->id) {
        case QV_MSG_STORE_SEGMENT:
            s_send_write (self, (qv_msg_store_segment_t **) msg_p);
            break;
        case QV_MSG_WRITTEN:
            s_written (self, (qv_msg_written_t **) msg_p);
            break;
        case QV_MSG_FLUSHED:
            s_flushed (self, (qv_msg_flushed_t **) msg_p);
            break;
        case QV_MSG_BUILD:
            s_forward (self, self->builder, msg_p);
            break;
        case QV_MSG_BUILT:
            s_forward (self, self->searcher, msg_p);
            break;
        case QV_MSG_COMPACT:
            s_forward (self, self->compactor, msg_p);
            break;
        case QV_MSG_COMPACTED:
        case QV_MSG_GC_CHECK:
            s_forward (self, self->searcher, msg_p);
            break;
        case QV_MSG_GC_CHECKED:
            s_forward (self, self->compactor, msg_p);
            break;
        case QV_MSG_MANIFEST:
            s_request_manifest (self, (qv_msg_manifest_t **) msg_p);
            break;
        case QV_MSG_MANIFESTED:
            s_manifested (self, (qv_msg_manifested_t **) msg_p);
            break;
        case QV_MSG_FLUSH: {
            if (self->quiet)
                break;              //  s_drop answers it
            s_flush_t *fl = calloc (1, sizeof *fl);
            fl->coll_id = (uint32_t) ((qv_msg_flush_t *) msg)->coll;
            fl->job = qv_msg_take_job (msg);
            zlistx_add_end (self->flushes, fl);
            s_check_flushes (self);
            break;
        }
        default:
            qv_error ("protocol error: the metadata coordinator does not take %s; dropped",
                      qv_msg_name (msg->id));
    }
    s_drop (self, msg_p);           //  what was not handed on
}

static int
s_handle_inbox (qv_loop_t *loop, zsock_t *reader, void *arg)
{
    (void) loop;
    self_t *self = arg;
    qv_msg_t *msg = qv_msg_recv (reader);
    if (msg)
        s_handle_msg (self, &msg);
    return 0;
}

//  Every second: a manifest whose write failed is written again.
static int
s_handle_timer (qv_loop_t *loop, int timer_id, void *arg)
{
    (void) loop;
    (void) timer_id;
    self_t *self = arg;
    if (self->manifest_retry) {
        self->manifest_retry = false;
        s_retry_manifest (self);
    }
    return 0;
}

static int
s_handle_pipe (qv_loop_t *loop, zsock_t *reader, void *arg)
{
    (void) loop;
    self_t *self = arg;
    char *cmd = zstr_recv (reader);
    if (cmd && streq (cmd, "QUIET")) {
        //  Shutdown: no more work for the workers, which stop next and free what they
        //  still hold; nothing is sent to the searcher, which stops before this actor.
        self->quiet = true;
        s_flush_t *fl;
        while ((fl = zlistx_detach (self->flushes, NULL))) {
            s_fail (self, fl->job, QV_EUNAVAIL, "the server is shutting down before the flush completed");
            free (fl);
        }
        zstr_free (&cmd);
        zsock_signal (reader, 0);
        return 0;
    }
    if (cmd && streq (cmd, "SEGMGR-STOPS")) {
        zsock_destroy (&self->segmgr);
        zsock_destroy (&self->feedpub);     //  the feed publisher stops right after
        zstr_free (&cmd);
        zsock_signal (reader, 0);
        return 0;
    }
    zstr_free (&cmd);
    return -1;
}

void
qv_meta_actor (zsock_t *pipe, void *args_)
{
    qv_meta_args_t *args = args_;
    self_t *self = calloc (1, sizeof *self);
    self->config = args->config;
    self->manifest_done = self->manifest_requested = args->manifest_version;
    args = NULL;
    self->flushes = zlistx_new ();
    self->sealed = zhashx_new ();
    self->writing = zhashx_new ();
    self->manifest_cps = zlistx_new ();
    zlistx_set_destructor (self->manifest_cps, s_manifest_cp_free);
    char ep [256];
    qv_config_endpoint (self->config, "meta", ep, sizeof ep);
    self->inbox = zsock_new_pull (ep);
    self->proxy = qv_config_push (self->config, "proxy");
    //  A meta process (--roles meta,flusher) has no segment manager or feed publisher:
    //  the segment manager learns the manifests it writes from the store
    if (!self->config->meta_process)
        self->segmgr = qv_config_push (self->config, "segmgr");
    self->searcher = qv_config_push (self->config, "searcher");
    self->flusher = qv_config_push (self->config, "flusher");
    self->builder = qv_config_push (self->config, "builder");
    self->compactor = qv_config_push (self->config, "compactor");
    if (self->config->feed_stats && self->config->nats_url [0] && !self->config->meta_process) {
        char fep [256];
        qv_config_endpoint (self->config, "feedpub", fep, sizeof fep);
        self->feedpub = zsock_new (ZMQ_PUSH);
        zsock_set_linger (self->feedpub, 0);
        zsock_connect (self->feedpub, "%s", fep);
    }
    zsock_signal (pipe, 0);
    qv_loop_t *loop = qv_loop_new ();
    //  Stop on $TERM only: SIGINT/SIGTERM belong to main, which stops the actors in order.
    qv_loop_set_nonstop (loop, true);
    qv_loop_reader (loop, pipe, s_handle_pipe, self);
    //  Only s_handle_pipe reads or answers the pipe (no other handler holds it): it is
    //  asked for events only when its fd fires or after s_handle_pipe
    qv_loop_reader_set_private (loop, pipe);
    qv_loop_reader (loop, self->inbox, s_handle_inbox, self);
    qv_loop_timer (loop, 1000, 0, s_handle_timer, self);
    qv_loop_start (loop);
    qv_loop_destroy (&loop);
    //  What is still queued: handles freed, flushes answered.
    self->quiet = true;
    qv_msg_t *msg;
    while ((msg = qv_msg_recv_nowait (self->inbox)))
        s_drop (self, &msg);
    s_flush_t *fl;
    while ((fl = zlistx_detach (self->flushes, NULL))) {
        s_fail (self, fl->job, QV_EUNAVAIL, "the server is shutting down before the flush completed");
        free (fl);
    }
    zlistx_destroy (&self->flushes);
    zhashx_destroy (&self->sealed);
    zhashx_destroy (&self->writing);
    zlistx_destroy (&self->manifest_cps);
    free (self->last.data);
    zsock_destroy (&self->inbox);
    zsock_destroy (&self->proxy);
    zsock_destroy (&self->segmgr);
    zsock_destroy (&self->searcher);
    zsock_destroy (&self->flusher);
    zsock_destroy (&self->builder);
    zsock_destroy (&self->compactor);
    zsock_destroy (&self->feedpub);
    free (self);
}
