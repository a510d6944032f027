//  Flusher actor: turns sealed segments into segment objects, and writes manifests.
//
//  @interface (messages: schemas/qv_msg.h)
//    pipe  $TERM                         stop (after the object in progress)
//  takes (inbox, PULL inproc "flusher"):
//    STORE_SEGMENT {seg}                 write segments/<coll>/<seg>
//    BUILD {build}                       build a segment's index and write it
//    MANIFEST {version, manifest}        write meta/manifest/<version>-<epoch>, drop manifests
//                                        older than the previous one
//  sends (to the searcher):
//    WRITTEN {seg, rc, error}            after STORE_SEGMENT (the link goes back)
//    BUILT {build}                       after BUILD (the build goes back)
//    MANIFESTED {version, rc, error}     after MANIFEST
//  Its loop does only this, one object at a time, so it is its own worker thread.
#include "qv_flusher.h"
#include "qv_catalog.h"
#include "qv_msg.h"
#include "qv_rc.h"
#include "qv_segfile.h"
#include "qv_segment.h"

typedef struct {
    zsock_t *inbox;
    zsock_t *searcher;
    qv_store_t *store;
    uint64_t epoch;                 //  the writer epoch, in each manifest's key
} self_t;

static void
s_write_segment (self_t *self, qv_segment_t *seg)
{
    char key [96];
    snprintf (key, sizeof key, "segments/%u/%020llu", seg->coll_id, (unsigned long long) seg->id);
    zchunk_t *chunk = qv_segment_save (seg);
    int rc = chunk ? qv_store_put (self->store, key, zchunk_data (chunk), zchunk_size (chunk))
                   : qv_err (QV_ENOMEM, "out of memory encoding segment %s", key);
    const char *msg = rc ? qv_err_msg () : "";
    if (rc)
        qv_error ("flush of segment %s failed: %s", key, msg);
    zchunk_destroy (&chunk);
    qv_msg_written_t *written = qv_msg_written_new ();
    written->seg = seg;
    written->rc = rc;
    free (written->error);
    written->error = strdup (msg);
    if (qv_msg_post (self->searcher, &written) != 0) {
        qv_segment_unlink (&seg);   //  the searcher is gone (shutdown): drop our link
        qv_msg_free (&written);
    }
}

static void
s_build_index (self_t *self, qv_build_t *b)
{
    qv_segment_t *seg = b->seg;
    const qv_field_t *f = &seg->schema->fields [b->field];
    int64_t started = qv_clock_msec ();
    qv_index_params_t params = { b->def.M, b->def.ef_construction, b->def.nlist, b->def.pq_m,
                                 b->def.pq_nbits, 0, 0 };
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
        rc = index ? qv_index_build (index, qv_col_vec (f, &seg->batch->cols [b->field], 0), rows)
                   : QV_EINVAL;
    }
    zchunk_t *chunk = NULL;
    char key [128];
    qv_index_object_key (seg->coll_id, seg->id, b->field, key, sizeof key);
    if (rc == 0)
        rc = scalar ? qv_scalar_serialize (scalar, &chunk) : qv_index_serialize (index, &chunk);
    if (rc == 0)
        rc = qv_store_put (self->store, key, zchunk_data (chunk), zchunk_size (chunk));
    zchunk_destroy (&chunk);
    if (rc) {
        snprintf (b->error, sizeof b->error, "%s", qv_err_msg ());
        qv_error ("index %s (%s) was not built: %s", key, b->def.type, b->error);
        qv_index_destroy (&index);
        qv_scalar_destroy (&scalar);
    }
    b->rc = rc;
    b->index = index;
    b->scalar = scalar;
    b->msec = qv_clock_msec () - started;
    qv_msg_built_t *built = qv_msg_built_new ();
    built->build = b;
    if (qv_msg_post (self->searcher, &built) != 0) {
        //  The searcher is gone (shutdown): drop what the build holds
        qv_index_destroy (&index);
        qv_scalar_destroy (&scalar);
        qv_segment_unlink (&seg);
        free (b);
        qv_msg_free (&built);
    }
}

static void
s_write_manifest (self_t *self, const qv_msg_bin_t *manifest, uint64_t version)
{
    char key [64];
    qv_catalog_manifest_key (version, self->epoch, key, sizeof key);
    int rc = qv_store_put (self->store, key, manifest->data, manifest->size);
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
        if (qv_store_list (self->store, "meta/manifest/", &keys) == 0) {
            for (char *k = zlist_first (keys); k; k = zlist_next (keys)) {
                uint64_t v = strtoull (k + strlen ("meta/manifest/"), NULL, 10);
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
    if (qv_msg_post (self->searcher, &done) != 0)
        qv_msg_free (&done);        //  the searcher is gone (shutdown)
}

static int
s_handle_inbox (zloop_t *loop, zsock_t *reader, void *arg)
{
    (void) loop;
    self_t *self = arg;
    qv_msg_t *msg = qv_msg_recv (reader);
    if (!msg)
        return 0;
    if (msg->id == QV_MSG_STORE_SEGMENT)
        s_write_segment (self, ((qv_msg_store_segment_t *) msg)->seg);
    else
    if (msg->id == QV_MSG_BUILD)
        s_build_index (self, ((qv_msg_build_t *) msg)->build);
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

static int
s_handle_pipe (zloop_t *loop, zsock_t *reader, void *arg)
{
    (void) loop;
    (void) arg;
    char *cmd = zstr_recv (reader);
    zstr_free (&cmd);
    return -1;                      //  $TERM (the only command)
}

void
qv_flusher_actor (zsock_t *pipe, void *args_)
{
    qv_flusher_args_t *args = args_;
    self_t self = { NULL, NULL, args->store, args->config->writer_epoch };
    char ep [256];
    qv_config_endpoint (args->config, "flusher", ep, sizeof ep);
    self.inbox = zsock_new_pull (ep);
    self.searcher = qv_config_push (args->config, "searcher");
    zsock_signal (pipe, 0);
    zloop_t *loop = zloop_new ();
    //  Stop on $TERM only: SIGINT/SIGTERM belong to main, which stops the actors in order
    //  (the segment manager first, so that the write in flight reaches the searcher).
    zloop_set_nonstop (loop, true);
    zloop_reader (loop, pipe, s_handle_pipe, &self);
    zloop_reader (loop, self.inbox, s_handle_inbox, &self);
    zloop_set_nonstop (loop, true);
    zloop_start (loop);
    zloop_destroy (&loop);
    //  Drop what is still queued: the segment links and manifest chunks it carries
    qv_msg_t *msg;
    while ((msg = qv_msg_recv_nowait (self.inbox))) {
        if (msg->id == QV_MSG_STORE_SEGMENT) {
            qv_segment_t *seg = ((qv_msg_store_segment_t *) msg)->seg;
            qv_segment_unlink (&seg);
        }
        else
        if (msg->id == QV_MSG_BUILD) {
            qv_build_t *b = ((qv_msg_build_t *) msg)->build;
            qv_segment_t *seg = b->seg;
            qv_segment_unlink (&seg);
            free (b);
        }
        qv_msg_destroy (&msg);
    }
    zsock_destroy (&self.inbox);
    zsock_destroy (&self.searcher);
}
