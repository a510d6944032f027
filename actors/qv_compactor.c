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
//  @interface (messages: schemas/qv_msg.h)
//    pipe  $TERM                         stop (a compaction in progress is abandoned once
//                                        the server's stopping flag is up: nothing names
//                                        its objects, garbage collection removes them)
//  takes (inbox, PULL inproc "compactor", from the coordinator):
//    COMPACT {task}                      merge, write, build
//  sends (to the coordinator, inproc "meta"):
//    COMPACTED {task}                    the task back, with the merged segment and its
//                                        built indexes, or the error
#include "qv_compactor.h"
#include "qv_actor.h"
#include "qv_builder.h"
#include "qv_catalog.h"
#include "qv_merge.h"
#include "qv_msg.h"
#include "qv_rc.h"
#include "qv_segfile.h"

typedef struct {
    zsock_t *inbox;
    zsock_t *meta;
    qv_store_t *store;
    double bps;                     //  write rate limit, 0: none
    uint64_t epoch;
    int delay_ms;                   //  test hook QV_FAULT_BUILD_DELAY_MS, as the builder's
    const atomic_bool *stopping;
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

static int
s_handle_inbox (zloop_t *loop, zsock_t *reader, void *arg)
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
                    args->stopping };
    char ep [256];
    qv_config_endpoint (args->config, "compactor", ep, sizeof ep);
    self.inbox = zsock_new_pull (ep);
    self.meta = qv_config_push (args->config, "meta");
    zsock_signal (pipe, 0);
    zloop_t *loop = zloop_new ();
    zloop_set_nonstop (loop, true);
    zloop_reader (loop, pipe, qv_actor_on_term, &self);
    zloop_reader (loop, self.inbox, s_handle_inbox, &self);
    zloop_start (loop);
    zloop_destroy (&loop);
    qv_msg_t *msg;
    while ((msg = qv_msg_recv_nowait (self.inbox))) {
        if (msg->id == QV_MSG_COMPACT)
            qv_compact_destroy ((qv_compact_t **) &((qv_msg_compact_t *) msg)->task);
        qv_msg_destroy (&msg);
    }
    zsock_destroy (&self.inbox);
    zsock_destroy (&self.meta);
}
