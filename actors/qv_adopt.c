//  Adopter actor: in a searcher process (--roles searcher), the reader of the writer's
//  manifests and the loader of the index objects they name; in a segment manager
//  without meta (--roles segment-manager), the reader of the meta process's manifests.
//
//  @interface (messages: schemas/qv_msg.h)
//    pipe  $TERM                         stop (after the load in progress)
//  takes (inbox, PULL inproc "adopt"):
//    BUILD {build}                       from the searcher: load a segment's index
//                                        object (the manifest listed it), not build it
//    FEED_MANIFEST {shard, version}      from the follower: the writer announced a
//                                        durable manifest; read the newest now
//  sends (to the searcher, inproc "searcher"):
//    MANIFEST_SEEN {version, body}       a live manifest newer than the last one sent
//    BUILT {build}                       after BUILD: the index, or the error
//
//  DESIGN
//  A searcher process applies every record of the committed feed, so it holds the
//  rows of every segment; what it lacks is what the writer does after a segment is
//  sealed: the segment is flushed and its indexes are built, and a manifest says so.
//  This actor reads the newest manifest (qv_manifest_read_newest: the fencing rule
//  applies) when the writer announces one on the committed feed (FEED_MANIFEST), and
//  every 5 s in case an announcement was lost, and hands a newer one's body to the
//  searcher, which owns the catalog:
//  a segment the manifest lists with the rows the searcher holds becomes flushed there
//  too (qv_manifest_adopt), and each index object listed for it comes back here as a
//  BUILD, loaded on this thread (a large index takes seconds to fetch and decode; the
//  searcher goes on answering meanwhile, the segment searched exactly until BUILT).
//  Nothing is rebuilt here: an object that cannot be loaded (the writer replaced the
//  index since) is reported, and the next manifest names the one to load.
#include "qv_adopt.h"
#include "qv_actor.h"
#include "qv_builder.h"
#include "qv_catalog.h"
#include "qv_manifest.h"
#include "qv_msg.h"
#include "qv_rc.h"
#include "qv_segment.h"

//  How often the manifests are listed when no FEED_MANIFEST says a newer one is there
//  (the writer's announcement lost, or NATS down), unless config->adopt_poll_ms says.
#define S_POLL_MS 5000

typedef struct {
    qv_store_t *store;
    zsock_t *inbox;
    zsock_t *searcher;
    uint64_t seen;                  //  the newest manifest version sent
    int64_t error_logged_ms;
    qv_feed_stats_t *stats;
} self_t;

static void s_poll (self_t *self);

static void
s_load_index (self_t *self, qv_build_t *b)
{
    qv_segment_t *seg = b->seg;
    const qv_field_t *f = &seg->schema->fields [b->field];
    int64_t started = qv_clock_msec ();
    uint32_t rows = atomic_load (&seg->rows);
    char key [128], where [512];
    qv_index_object_key (seg->coll_id, seg->id, b->field, b->epoch, key, sizeof key);
    qv_store_describe (self->store, key, where, sizeof where);
    void *data = NULL;
    size_t size = 0;
    qv_index_t *index = NULL;
    qv_scalar_t *scalar = NULL;
    int rc = qv_store_get (self->store, key, &data, &size);
    if (rc == 0 && qv_scalar_is_type (b->def.type))
        rc = qv_scalar_load (data, size, f->type, &seg->batch->cols [b->field], rows, &scalar);
    else
    if (rc == 0) {
        //  The index borrows the segment's vectors (qv_index.h); seg keeps them and
        //  takes the index into its indexes (the searcher's BUILT)
        rc = qv_index_load_owned_borrowed (data, size, qv_col_vec (f, &seg->batch->cols [b->field], 0),
                                           rows, f->dim, &index);
        data = NULL;
    }
    free (data);
    if (rc) {
        qv_warn ("searcher: index object %s cannot be loaded: %s; segment %llu is searched "
                 "exactly until a manifest names one that loads", where, qv_err_msg (),
                 (unsigned long long) seg->id);
        snprintf (b->error, sizeof b->error, "%s", qv_err_msg ());
        qv_index_destroy (&index);
        qv_scalar_destroy (&scalar);
    }
    b->rc = rc;
    b->index = index;
    b->scalar = scalar;
    b->msec = qv_clock_msec () - started;
    qv_build_post (self->searcher, b);
}

static int
s_handle_inbox (qv_loop_t *loop, zsock_t *reader, void *arg)
{
    (void) loop;
    self_t *self = arg;
    qv_msg_t *msg = qv_msg_recv (reader);
    if (!msg)
        return 0;
    if (msg->id == QV_MSG_BUILD)
        s_load_index (self, ((qv_msg_build_t *) msg)->build);
    else
    if (msg->id == QV_MSG_FEED_MANIFEST) {
        atomic_fetch_add (&self->stats->manifests_announced, 1);
        if (((qv_msg_feed_manifest_t *) msg)->version > self->seen)
            s_poll (self);
    }
    else
        qv_error ("protocol error: the adopter does not take %s; dropped", qv_msg_name (msg->id));
    qv_msg_destroy (&msg);
    return 0;
}

//  A newer live manifest goes to the searcher.
static void
s_poll (self_t *self)
{
    qv_manifest_t *man = NULL;
    if (qv_manifest_read_newest (self->store, self->seen, &man)) {
        //  A manifest deleted between the listing and the read (the writer keeps two),
        //  or the store unreachable: the next poll tries again.
        int64_t now = qv_clock_msec ();
        if (now - self->error_logged_ms > 60000) {
            self->error_logged_ms = now;
            qv_warn ("searcher: cannot read the writer's newest manifest: %s; trying "
                     "again at the next announcement or within 5 s", qv_err_msg ());
        }
        return;
    }
    if (!man)
        return;
    uint64_t version = man->version;
    qv_msg_manifest_seen_t *msg = qv_msg_manifest_seen_new ();
    msg->version = version;
    msg->body.size = man->body_size;
    msg->body.data = malloc (man->body_size ? man->body_size : 1);
    memcpy (msg->body.data, man->body, man->body_size);
    qv_manifest_destroy (&man);
    if (qv_msg_post (self->searcher, &msg) == 0)
        self->seen = version;
    else
        qv_msg_free (&msg);         //  the searcher is gone (shutdown)
}

static int
s_handle_timer (qv_loop_t *loop, int timer_id, void *arg)
{
    (void) loop;
    (void) timer_id;
    s_poll ((self_t *) arg);
    return 0;
}

void
qv_adopt_actor (zsock_t *pipe, void *args_)
{
    qv_adopt_args_t *args = args_;
    self_t self = { args->store, NULL, NULL, args->seen, 0, args->config->feed_stats };
    char ep [256];
    qv_config_endpoint (args->config, "adopt", ep, sizeof ep);
    self.inbox = zsock_new_pull (ep);
    self.searcher = qv_config_push (args->config, "searcher");
    int poll_ms = args->config->adopt_poll_ms > 0 ? args->config->adopt_poll_ms : S_POLL_MS;
    args = NULL;                    //  in the caller's stack frame: gone after the signal
    zsock_signal (pipe, 0);
    qv_loop_t *loop = qv_loop_new ();
    qv_loop_set_nonstop (loop, true);
    qv_loop_reader (loop, pipe, qv_actor_on_term, &self);
    //  No handler but the pipe's touches the pipe (only $TERM comes on it): it is
    //  asked for events only when its fd fires
    qv_loop_reader_set_private (loop, pipe);
    qv_loop_reader (loop, self.inbox, s_handle_inbox, &self);
    qv_loop_timer (loop, poll_ms, 0, s_handle_timer, &self);
    qv_loop_start (loop);
    qv_loop_destroy (&loop);
    //  Drop what is still queued: the segment links the loads hold
    qv_msg_t *msg;
    while ((msg = qv_msg_recv_nowait (self.inbox))) {
        if (msg->id == QV_MSG_BUILD)
            qv_build_destroy ((qv_build_t **) &((qv_msg_build_t *) msg)->build);
        qv_msg_destroy (&msg);
    }
    zsock_destroy (&self.inbox);
    zsock_destroy (&self.searcher);
}
