//  Compactor actor: a worker of the metadata coordinator (qv_meta). For each
//  compaction the searcher planned (it owns the catalog), it merges the rows of the
//  flushed segments that the compaction keeps into one segment (qv_segment_merge:
//  the same rows in the same order as every catalog that applies the compaction
//  record will compute), writes that segment's object, then builds and writes each
//  index the collection defines for it, all before the record is logged: once the
//  record is applied anywhere, everything it names is in the store. One compaction at
//  a time, on its own thread, so it never holds up a segment write, a manifest or an
//  index build of new data; its writes are paced to --compaction-mb-per-sec.
//
//  It also collects garbage: every pass (every 30 s, more often with a short grace)
//  it lists the segment and index objects in the store and asks the searcher which
//  of them the catalog still uses (GC_CHECK); of the others (GC_CHECKED), those no
//  manifest in the store names either (a recovery may fall back to any of them) are
//  deleted once they have been unused for --gc-grace-sec in a row (readers that
//  loaded them from an older manifest: searcher processes starting up). Ids are never
//  reused, so an object found unused stays unused; an object is listed only once
//  complete, so the segment it belongs to is known to the catalog by then.
//
//  @interface (messages: schemas/qv_msg.h)
//    pipe  $TERM                         stop (a compaction in progress is abandoned once
//                                        the server's stopping flag is up: nothing names
//                                        its objects, garbage collection removes them)
//  takes (inbox, PULL inproc "compactor", from the coordinator):
//    COMPACT {task}                      merge, write, build
//  sends (to the coordinator, inproc "meta"):
//    COMPACTED {task}                    the task back, with the merged segment and its
//                                        built indexes, or the error
//    GC_CHECK {keys}                     the segment and index objects in the store
//  takes (from the coordinator):
//    GC_CHECKED {keys}                   those the catalog does not use
#include "qv_compactor.h"
#include "qv_actor.h"
#include "qv_builder.h"
#include "qv_catalog.h"
#include "qv_manifest.h"
#include "qv_merge.h"
#include "qv_msg.h"
#include "qv_rc.h"
#include "qv_segfile.h"

#include <unistd.h>

typedef struct {
    zsock_t *inbox;
    zsock_t *meta;
    qv_store_t *store;
    double bps;                     //  write rate limit, 0: none
    uint64_t epoch;
    int delay_ms;                   //  test hook QV_FAULT_BUILD_DELAY_MS, as the builder's
    const atomic_bool *stopping;
    int64_t grace_ms;               //  --gc-grace-sec
    zhashx_t *unused;               //  key -> msec clock + 1 when first found unused
    bool checking;                  //  a GC_CHECK is out
    qv_write_stats_t *stats;        //  the server's figures (gc_), or NULL
    uint32_t build_threads;         //  index build threads: all cores but one
} self_t;

static bool
s_stopping (self_t *self)
{
    return self->stopping && atomic_load (self->stopping);
}

//  Paces the writes: after `bytes` written since `started` (usec), waits until the
//  rate allows them (in short steps, so a stop is not held up).
static void
s_pace (self_t *self, int64_t started, uint64_t bytes)
{
    if (self->bps <= 0)
        return;
    int64_t due = started + (int64_t) ((double) bytes / self->bps * 1e6);
    while (qv_clock_usec () < due && !s_stopping (self))
        zclock_sleep (10);
}

void
qv_compact_destroy (qv_compact_t **self_p)
{
    qv_compact_t *t = *self_p;
    if (!t)
        return;
    for (uint32_t i = 0; i < t->nolds; i++) {
        qv_segment_t *seg = t->olds [i];
        qv_segment_unlink (&seg);
    }
    free (t->olds);
    qv_segment_t *merged = t->merged;
    qv_segment_unlink (&merged);
    for (uint32_t i = 0; i < t->nbuilds; i++)
        qv_build_destroy (&t->builds [i]);
    free (t);
    *self_p = NULL;
}

int
qv_compact_post (zsock_t *sock, int msg_id, qv_compact_t *task)
{
    qv_msg_t *msg = qv_msg_new ((qv_msg_id_t) msg_id);
    if (!msg) {
        qv_compact_destroy (&task);
        return -1;
    }
    if (msg_id == QV_MSG_COMPACT)
        ((qv_msg_compact_t *) msg)->task = task;
    else
        ((qv_msg_compacted_t *) msg)->task = task;
    if (qv_msg_post (sock, &msg) != 0) {
        qv_compact_destroy (&task);  //  the receiver is gone (shutdown)
        qv_msg_free (&msg);
        return -1;
    }
    return 0;
}

static int
s_compact (self_t *self, qv_compact_t *t)
{
    int64_t started = qv_clock_usec ();
    qv_segment_t *merged = qv_segment_merge ((qv_segment_t **) t->olds, t->nolds, t->new_id,
                                             t->snap_ts, t->expire_cut);
    if (!merged)
        return qv_err (QV_ENOMEM, "out of memory merging %u segments", t->nolds);
    t->merged = merged;
    t->rows = atomic_load (&merged->rows);
    t->epoch = self->epoch;
    uint64_t total = 0;
    for (uint32_t i = 0; i < t->nolds; i++)
        total += atomic_load (&((qv_segment_t *) t->olds [i])->rows);
    t->dropped = total - t->rows;
    if (t->rows == 0) {
        //  Every row goes: the record retires the old segments, nothing replaces them
        for (uint32_t i = 0; i < t->nbuilds; i++)
            qv_build_destroy (&t->builds [i]);
        t->nbuilds = 0;
        return 0;
    }
    char key [96];
    qv_segment_object_key (merged->coll_id, merged->id, t->epoch, key, sizeof key);
    size_t size;
    void *object = qv_segment_save (merged, &size);
    if (!object)
        return qv_err (QV_ENOMEM, "out of memory encoding segment %s", key);
    int rc = s_stopping (self) ? qv_err (QV_EUNAVAIL, "cancelled: the server is stopping")
                               : qv_store_put (self->store, key, object, size);
    free (object);
    if (rc)
        return rc;
    t->bytes = size;
    s_pace (self, started, t->bytes);
    for (uint32_t i = 0; i < t->nbuilds && rc == 0; i++) {
        qv_build_t *b = t->builds [i];
        b->seg = qv_segment_link (merged);
        b->threads = self->build_threads;
        qv_build_run (self->store, b, self->epoch, self->stopping, self->delay_ms);
        rc = b->rc;
        if (rc)
            rc = qv_err (rc, "index %s of field %d: %s", b->def.type, b->field, b->error);
        else
        if (b->index)
            t->bytes += qv_index_memory_bytes (b->index);
        s_pace (self, started, t->bytes);
    }
    return rc;
}

//  A pass starts: the objects listed go to the searcher to be checked.
static int
s_gc_timer (qv_loop_t *loop, int timer_id, void *arg)
{
    (void) loop;
    (void) timer_id;
    self_t *self = arg;
    if (self->checking || s_stopping (self))
        return 0;
    zlist_t *keys;
    if (qv_store_list (self->store, "segments/", &keys)) {
        qv_warn ("garbage collection: cannot list the segment objects: %s", qv_err_msg ());
        return 0;
    }
    qv_msg_gc_check_t *msg = qv_msg_gc_check_new ();
    msg->keys = keys;
    if (qv_msg_post (self->meta, &msg) != 0) {
        zlist_destroy (&keys);
        qv_msg_free (&msg);
        return 0;
    }
    self->checking = true;
    return 0;
}

//  The objects the catalog does not use: those no manifest names either are deleted
//  once unused for the grace period.
static void
s_gc_checked (self_t *self, zlist_t *keys)
{
    self->checking = false;
    zhashx_t *refs = zhashx_new ();
    if (qv_manifest_referenced (self->store, refs)) {
        qv_warn ("garbage collection: cannot read the manifests (%s); nothing deleted",
                 qv_err_msg ());
        zhashx_destroy (&refs);
        return;
    }
    int64_t now = qv_clock_msec ();
    zhashx_t *still = zhashx_new ();
    uint64_t deleted = 0;
    for (char *key = zlist_first (keys); key && !s_stopping (self); key = zlist_next (keys)) {
        uint32_t coll;
        uint64_t seg;
        char ref [48];
        if (qv_segment_object_parse (key, &coll, &seg))
            continue;
        snprintf (ref, sizeof ref, "%u/%llu", coll, (unsigned long long) seg);
        if (zhashx_lookup (refs, ref))
            continue;
        int64_t first = (int64_t) (intptr_t) zhashx_lookup (self->unused, key);
        if (!first)
            first = now + 1;
        if (now + 1 - first >= self->grace_ms) {
            if (qv_store_delete (self->store, key) == 0)
                deleted++;
            else
                qv_warn ("garbage collection: cannot delete %s: %s", key, qv_err_msg ());
            continue;
        }
        zhashx_update (still, key, (void *) (intptr_t) first);
    }
    zhashx_destroy (&self->unused);
    self->unused = still;           //  only what is still unused keeps its first time
    if (self->stats) {
        atomic_fetch_add (&self->stats->gc_deleted, deleted);
        atomic_store (&self->stats->gc_unused, zhashx_size (still));
    }
    zhashx_destroy (&refs);
    if (deleted)
        qv_info ("garbage collection deleted %llu objects no manifest or segment uses "
                 "(unused for at least %lld s)", (unsigned long long) deleted,
                 (long long) (self->grace_ms / 1000));
}

static int
s_handle_inbox (qv_loop_t *loop, zsock_t *reader, void *arg)
{
    (void) loop;
    self_t *self = arg;
    qv_msg_t *msg = qv_msg_recv (reader);
    if (!msg)
        return 0;
    if (msg->id == QV_MSG_COMPACT) {
        qv_compact_t *t = ((qv_msg_compact_t *) msg)->task;
        int64_t started = qv_clock_msec ();
        t->rc = s_compact (self, t);
        if (t->rc)
            snprintf (t->error, sizeof t->error, "%s", qv_err_msg ());
        t->msec = qv_clock_msec () - started;
        qv_compact_post (self->meta, QV_MSG_COMPACTED, t);
    }
    else
    if (msg->id == QV_MSG_GC_CHECKED) {
        zlist_t *keys = ((qv_msg_gc_checked_t *) msg)->keys;
        s_gc_checked (self, keys);
        zlist_destroy (&keys);
    }
    else
        qv_error ("protocol error: the compactor does not take %s; dropped", qv_msg_name (msg->id));
    qv_msg_destroy (&msg);
    return 0;
}

void
qv_compactor_actor (zsock_t *pipe, void *args_)
{
    qv_compactor_args_t *args = args_;
    self_t self = { NULL, NULL, args->store, args->config->compaction_bps,
                    args->config->writer_epoch, args->config->fault_build_delay_ms,
                    args->stopping, (int64_t) args->config->gc_grace_sec * 1000,
                    zhashx_new (), false, args->config->write_stats, 1 };
    //  Background work: searches and new data come first. This thread (and the index
    //  build threads it starts, which inherit it) runs at a lower priority, and builds
    //  leave one core free.
    long cores = sysconf (_SC_NPROCESSORS_ONLN);
    self.build_threads = cores > 1 ? (uint32_t) cores - 1 : 1;
    qv_actor_background ("compactor");
    char ep [256];
    qv_config_endpoint (args->config, "compactor", ep, sizeof ep);
    self.inbox = zsock_new_pull (ep);
    self.meta = qv_config_push (args->config, "meta");
    zsock_signal (pipe, 0);
    qv_loop_t *loop = qv_loop_new ();
    qv_loop_set_nonstop (loop, true);
    qv_loop_reader (loop, pipe, qv_actor_on_term, &self);
    //  No handler but the pipe's touches the pipe (only $TERM comes on it): it is
    //  asked for events only when its fd fires
    qv_loop_reader_set_private (loop, pipe);
    qv_loop_reader (loop, self.inbox, s_handle_inbox, &self);
    //  A pass every 30 s, or four per grace period when that is shorter (1 s at least)
    int64_t pass_ms = self.grace_ms / 4;
    pass_ms = pass_ms < 1000 ? 1000 : pass_ms > 30000 ? 30000 : pass_ms;
    if (!qv_store_readonly (self.store))
        qv_loop_timer (loop, (size_t) pass_ms, 0, s_gc_timer, &self);
    qv_loop_start (loop);
    qv_loop_destroy (&loop);
    qv_msg_t *msg;
    while ((msg = qv_msg_recv_nowait (self.inbox))) {
        if (msg->id == QV_MSG_COMPACT)
            qv_compact_destroy ((qv_compact_t **) &((qv_msg_compact_t *) msg)->task);
        else
        if (msg->id == QV_MSG_GC_CHECKED)
            zlist_destroy ((zlist_t **) &((qv_msg_gc_checked_t *) msg)->keys);
        qv_msg_destroy (&msg);
    }
    zhashx_destroy (&self.unused);
    zsock_destroy (&self.inbox);
    zsock_destroy (&self.meta);
}
