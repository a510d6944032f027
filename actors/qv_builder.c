//  Index-builder actor: a worker of the metadata coordinator (qv_meta). It builds a
//  segment's vector or scalar index and writes it to the object store, one build at a
//  time, on its own thread: a build (minutes for a large HNSW) never holds up a
//  segment write or a manifest, which the flusher does.
//
//  @interface (messages: schemas/qv_msg.h)
//    pipe  $TERM                         stop (a build in progress is cancelled once
//                                        the server's stopping flag is up: it is not
//                                        in a manifest, and the next start builds it)
//  takes (inbox, PULL inproc "builder", from the coordinator):
//    BUILD {build}                       build a segment's index and write it
//  sends (to the coordinator, inproc "meta"):
//    BUILT {build}                       after BUILD (the build goes back, with the
//                                        index or the error)
#include "qv_builder.h"
#include "qv_bufpool.h"
#include "qv_hist.h"
#include "qv_actor.h"
#include "qv_catalog.h"
#include "qv_msg.h"
#include "qv_rc.h"
#include "qv_segment.h"

#include <strings.h>

typedef struct {
    zsock_t *inbox;
    zsock_t *meta;
    const qv_config_t *config;
    qv_store_t *store;
    int delay_ms;                   //  test hook: each build takes this much longer
    uint64_t epoch;                 //  the writer epoch, in each index object's key
    const atomic_bool *stopping;    //  qv_builder_args_t
} self_t;

static bool
s_stopping (const atomic_bool *stopping)
{
    return stopping && atomic_load (stopping);
}

void
qv_build_run (qv_store_t *store, qv_build_t *b, uint64_t epoch, const atomic_bool *stopping,
              int delay_ms)
{
    qv_segment_t *seg = b->seg;
    const qv_field_t *f = &seg->schema->fields [b->field];
    int64_t started = qv_clock_msec ();
    //  Test hook QV_FAULT_BUILD_DELAY_MS, cancelled as a build is
    for (int64_t until = started + delay_ms; qv_clock_msec () < until && !s_stopping (stopping); )
        zclock_sleep (10);
    //  The index reads the segment's sealed column instead of a copy where it can
    //  (qv_index.h): b->seg, which keeps the column, goes with it into the segment's
    //  indexes (qv_segidx_t)
    qv_index_params_t params = { b->def.M, b->def.ef_construction, b->def.nlist, b->def.pq_m,
                                 b->def.pq_nbits, b->threads, 0, 1 };
    uint32_t rows = atomic_load (&seg->rows);
    qv_index_t *index = NULL;
    qv_scalar_t *scalar = NULL;
    int rc;
    if (qv_scalar_is_type (b->def.type)) {
        scalar = qv_scalar_new (f->type, &seg->batch->cols [b->field], rows);
        rc = scalar ? 0 : qv_err (QV_ENOMEM, "out of memory");
    }
    else {
        index = qv_index_new (b->def.type, f->metric, f->dim, &params);
        if (index)
            qv_index_set_cancel (index, stopping);
        rc = !index ? QV_EINVAL
           : s_stopping (stopping) ? qv_err (QV_EUNAVAIL, "cancelled: the server is stopping")
           : qv_index_build (index, qv_col_vec (f, &seg->batch->cols [b->field], 0), rows);
        if (index)
            qv_index_set_cancel (index, NULL);
    }
    if (rc == 0)
        qv_hist_record (QV_HIST_INDEX_BUILD_SECONDS, (qv_clock_msec () - started) / 1e3);
    zchunk_t *chunk = NULL;
    char key [128];
    b->epoch = epoch;
    qv_index_object_key (seg->coll_id, seg->id, b->field, b->epoch, key, sizeof key);
    if (rc == 0)
        rc = scalar ? qv_scalar_serialize (scalar, &chunk) : qv_index_serialize (index, &chunk);
    if (rc == 0)
        rc = qv_store_put (store, key, zchunk_data (chunk), zchunk_size (chunk));
    zchunk_destroy (&chunk);
    qv_bufpool_give_back ();        //  the build's scratch and object, not left resident
    if (rc) {
        snprintf (b->error, sizeof b->error, "%s", qv_err_msg ());
        if (s_stopping (stopping))
            qv_info ("index %s (%s): build cancelled, the server is stopping (%s); the "
                     "next start builds it", key, b->def.type, b->error);
        else
            qv_error ("index %s (%s) was not built: %s", key, b->def.type, b->error);
        qv_index_destroy (&index);
        qv_scalar_destroy (&scalar);
    }
    b->rc = rc;
    b->index = index;
    b->scalar = scalar;
    b->msec = qv_clock_msec () - started;
}

void
qv_build_destroy (qv_build_t **self_p)
{
    qv_build_t *b = *self_p;
    if (!b)
        return;
    qv_index_t *index = b->index;
    qv_scalar_t *scalar = b->scalar;
    qv_segment_t *seg = b->seg;
    qv_index_destroy (&index);
    qv_scalar_destroy (&scalar);
    qv_segment_unlink (&seg);
    free (b);
    *self_p = NULL;
}

void
qv_build_post (zsock_t *sock, qv_build_t *build)
{
    qv_msg_built_t *built = qv_msg_built_new ();
    built->build = build;
    if (qv_msg_post (sock, &built) != 0) {
        qv_build_destroy (&build);  //  the receiver is gone (shutdown)
        qv_msg_free (&built);
    }
}

//  True (and b failed QV_ELIMIT, saying why) if b's vector index, added to the memory
//  the server holds (measured every second), would pass --memory-mb. A FLAT index is
//  let through: only its record is kept (searches scan the segment).
static bool
s_over_budget (self_t *self, qv_build_t *b)
{
    size_t budget = self->config->memory_budget;
    qv_write_stats_t *ws = self->config->write_stats;
    qv_segment_t *seg = b->seg;
    if (!budget || !ws || qv_scalar_is_type (b->def.type) || !strcasecmp (b->def.type, "FLAT"))
        return false;
    const qv_field_t *f = &seg->schema->fields [b->field];
    qv_index_params_t params = { b->def.M, b->def.ef_construction, b->def.nlist, b->def.pq_m,
                                 b->def.pq_nbits, 0, 0, 1 };
    size_t need = qv_index_estimate_bytes (b->def.type, f->metric, f->dim, &params,
                                           atomic_load (&seg->rows));
    uint64_t held = atomic_load (&ws->resident);
    if (held + need <= budget)
        return false;
    b->rc = QV_ELIMIT;
    snprintf (b->error, sizeof b->error, "the index needs about %zu MiB and %llu MiB are "
              "held: over the memory budget of %zu MiB (--memory-mb)", (need + (1u << 20) - 1) >> 20,
              (unsigned long long) (held >> 20), budget >> 20);
    qv_error ("index %s of segment %llu was not built: %s", b->def.type,
              (unsigned long long) seg->id, b->error);
    return true;
}

static int
s_handle_inbox (qv_loop_t *loop, zsock_t *reader, void *arg)
{
    (void) loop;
    self_t *self = arg;
    qv_msg_t *msg = qv_msg_recv (reader);
    if (!msg)
        return 0;
    if (msg->id == QV_MSG_BUILD) {
        qv_build_t *b = ((qv_msg_build_t *) msg)->build;
        if (!s_over_budget (self, b))
            qv_build_run (self->store, b, self->epoch, self->stopping, self->delay_ms);
        qv_build_post (self->meta, b);
    }
    else
        qv_error ("protocol error: the index builder does not take %s; dropped", qv_msg_name (msg->id));
    qv_msg_destroy (&msg);
    return 0;
}

void
qv_builder_actor (zsock_t *pipe, void *args_)
{
    qv_builder_args_t *args = args_;
    self_t self = { NULL, NULL, args->config, args->store, args->config->fault_build_delay_ms,
                    args->config->writer_epoch, args->stopping };
    //  Background work: a build (minutes of both cores for a large HNSW) must not
    //  slow the inserts and searches going on meanwhile. This thread and the build
    //  threads it starts run at a lower priority; on an idle machine they still get
    //  every core.
    qv_actor_background ("index builder");
    char ep [256];
    qv_config_endpoint (args->config, "builder", ep, sizeof ep);
    self.inbox = zsock_new_pull (ep);
    self.meta = qv_config_push (args->config, "meta");
    zsock_signal (pipe, 0);
    qv_loop_t *loop = qv_loop_new ();
    //  Stop on $TERM only: SIGINT/SIGTERM belong to main, which stops the actors in order.
    qv_loop_set_nonstop (loop, true);
    qv_loop_reader (loop, pipe, qv_actor_on_term, &self);
    //  No handler but the pipe's touches the pipe (only $TERM comes on it): it is
    //  asked for events only when its fd fires
    qv_loop_reader_set_private (loop, pipe);
    qv_loop_reader (loop, self.inbox, s_handle_inbox, &self);
    qv_loop_start (loop);
    qv_loop_destroy (&loop);
    //  Drop what is still queued: the segment links the builds hold
    qv_msg_t *msg;
    while ((msg = qv_msg_recv_nowait (self.inbox))) {
        if (msg->id == QV_MSG_BUILD)
            qv_build_destroy ((qv_build_t **) &((qv_msg_build_t *) msg)->build);
        qv_msg_destroy (&msg);
    }
    zsock_destroy (&self.inbox);
    zsock_destroy (&self.meta);
}
