//  Flusher actor: a worker of the metadata coordinator (qv_meta) that turns sealed
//  segments into segment objects, and writes manifests.
//
//  @interface (messages: schemas/qv_msg.h)
//    pipe  $TERM                         stop (after the object in progress)
//  takes (inbox, PULL inproc "flusher", from the coordinator):
//    STORE_SEGMENT {seg}                 write segments/<coll>/<seg>
//    MANIFEST {version, manifest, checkpoint}   write meta/manifest/<version>-<epoch>,
//                                        drop manifests older than the previous one
//  sends (to the coordinator, inproc "meta"):
//    WRITTEN {seg, rc, error}            after STORE_SEGMENT (the link goes back)
//    MANIFESTED {version, rc, error}     after MANIFEST
//  Its loop does only this, one object at a time, so it is its own worker thread.
//  Index builds, which can take minutes, run on the builder's thread (qv_builder),
//  never ahead of a segment write here.
#include "qv_flusher.h"
#include "qv_hist.h"
#include "qv_actor.h"
#include "qv_catalog.h"
#include "qv_manifest.h"
#include "qv_msg.h"
#include "qv_rc.h"
#include "qv_segfile.h"
#include "qv_segment.h"

typedef struct {
    zsock_t *inbox;
    zsock_t *meta;
    qv_store_t *store;
    uint64_t epoch;                 //  the writer epoch, in each manifest's and segment's key
    int delay_ms;                   //  test hook QV_FAULT_MANIFEST_DELAY_MS
} self_t;

static void
s_write_segment (self_t *self, qv_segment_t *seg)
{
    char key [96];
    int64_t started = qv_clock_usec ();
    seg->epoch = self->epoch;       //  the manifest names it once WRITTEN is back
    qv_segment_object_key (seg->coll_id, seg->id, seg->epoch, key, sizeof key);
    size_t size;
    void *object = qv_segment_save (seg, &size);
    int rc = object ? qv_store_put (self->store, key, object, size)
                    : qv_err (QV_ENOMEM, "out of memory encoding segment %s", key);
    const char *msg = rc ? qv_err_msg () : "";
    if (rc)
        qv_error ("flush of segment %s failed: %s", key, msg);
    else
        qv_hist_record (QV_HIST_SEGMENT_WRITE_SECONDS, (qv_clock_usec () - started) / 1e6);
    free (object);
    qv_msg_written_t *written = qv_msg_written_new ();
    written->seg = seg;
    written->rc = rc;
    free (written->error);
    written->error = strdup (msg);
    if (qv_msg_post (self->meta, &written) != 0) {
        qv_segment_unlink (&seg);   //  the coordinator is gone (shutdown): drop our link
        qv_msg_free (&written);
    }
}

static void
s_write_manifest (self_t *self, const qv_msg_bin_t *manifest, uint64_t version)
{
    char key [64];
    qv_manifest_key (version, self->epoch, key, sizeof key);
    if (self->delay_ms)
        zclock_sleep (self->delay_ms);
    int64_t started = qv_clock_usec ();
    int rc = qv_store_put (self->store, key, manifest->data, manifest->size);
    if (rc == 0)
        qv_hist_record (QV_HIST_MANIFEST_WRITE_SECONDS, (qv_clock_usec () - started) / 1e6);
    if (rc == 0 && (rc = qv_store_lock_check (self->store)) != 0)
        //  Written, but perhaps after another server took over (this process was
        //  paused): its recovery ignores it, and so must this one's checkpoint
        rc = qv_err (rc, "written, but this server cannot confirm it still holds the "
                     "write lock, so it may be ignored: %s", qv_err_msg ());
    const char *msg = rc ? qv_err_msg () : "";
    if (rc)
        qv_error ("manifest %s was not written: %s", key, msg);
    else {
        zlist_t *keys;
        if (qv_store_list (self->store, QV_MANIFEST_PREFIX, &keys) == 0) {
            for (char *k = zlist_first (keys); k; k = zlist_next (keys)) {
                uint64_t v = strtoull (k + strlen (QV_MANIFEST_PREFIX), NULL, 10);
                if (v + 1 < version)
                    qv_store_delete (self->store, k);
            }
            zlist_destroy (&keys);
        }
    }
    qv_msg_manifested_t *done = qv_msg_manifested_new ();
    done->version = version;
    done->rc = rc;
    free (done->error);
    done->error = strdup (msg);
    if (qv_msg_post (self->meta, &done) != 0)
        qv_msg_free (&done);        //  the coordinator is gone (shutdown)
}

static int
s_handle_inbox (qv_loop_t *loop, zsock_t *reader, void *arg)
{
    (void) loop;
    self_t *self = arg;
    qv_msg_t *msg = qv_msg_recv (reader);
    if (!msg)
        return 0;
    if (msg->id == QV_MSG_STORE_SEGMENT)
        s_write_segment (self, ((qv_msg_store_segment_t *) msg)->seg);
    else
    if (msg->id == QV_MSG_MANIFEST) {
        qv_msg_manifest_t *m = (qv_msg_manifest_t *) msg;
        s_write_manifest (self, &m->manifest, m->version);
    }
    else
        qv_error ("protocol error: the flusher does not take %s; dropped", qv_msg_name (msg->id));
    qv_msg_destroy (&msg);
    return 0;
}

void
qv_flusher_actor (zsock_t *pipe, void *args_)
{
    qv_flusher_args_t *args = args_;
    self_t self = { NULL, NULL, args->store, args->config->writer_epoch,
                    args->config->fault_manifest_delay_ms };
    char ep [256];
    qv_config_endpoint (args->config, "flusher", ep, sizeof ep);
    self.inbox = zsock_new_pull (ep);
    self.meta = qv_config_push (args->config, "meta");
    zsock_signal (pipe, 0);
    qv_loop_t *loop = qv_loop_new ();
    //  Stop on $TERM only: SIGINT/SIGTERM belong to main, which stops the actors in order
    //  (the segment manager first, so that the write in flight reaches the searcher).
    qv_loop_set_nonstop (loop, true);
    qv_loop_reader (loop, pipe, qv_actor_on_term, &self);
    //  No handler but the pipe's touches the pipe (only $TERM comes on it): it is
    //  asked for events only when its fd fires
    qv_loop_reader_set_private (loop, pipe);
    qv_loop_reader (loop, self.inbox, s_handle_inbox, &self);
    qv_loop_set_nonstop (loop, true);
    qv_loop_start (loop);
    qv_loop_destroy (&loop);
    //  Drop what is still queued: the segment links and manifest chunks it carries
    qv_msg_t *msg;
    while ((msg = qv_msg_recv_nowait (self.inbox))) {
        if (msg->id == QV_MSG_STORE_SEGMENT) {
            qv_segment_t *seg = ((qv_msg_store_segment_t *) msg)->seg;
            qv_segment_unlink (&seg);
        }
        qv_msg_destroy (&msg);
    }
    zsock_destroy (&self.inbox);
    zsock_destroy (&self.meta);
}
