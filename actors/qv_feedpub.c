//  Feed publisher actor: the segment manager's committed feed on JetStream.
//
//  @interface (messages: schemas/qv_msg.h)
//    pipe  $TERM                 stop
//  takes (inbox, PULL inproc "feedpub", at most 10,000 queued: the segment manager
//  drops what does not fit):
//    FEED {shard, seq, epoch, ts, wal}, FEED_TICK {shard, ts, next_seq}
//                                from the segment manager, in log order
//    FEED_MANIFEST {shard, version}   from the metadata coordinator: a manifest is
//                                durable
//  takes (NATS, "<prefix>.feed.<store>.<shard>.ts"):
//    WRITER_TS {shard, ts: 0, ask}   a follower's question
//  sends (NATS):
//    FEED, FEED_TICK, FEED_MANIFEST   published on "<prefix>.feed.<store>.<shard>", which the
//                                stream "<PREFIX>_FEED_<store hash>_<shard>" keeps
//                                (qv_msg_encode bytes)
//    WRITER_TS {shard, ts, ask}  the answer (ask echoed): the newest commit timestamp
//                                of a durable WAL object (feed_stats->committed_ts,
//                                the segment manager's)
//
//  DESIGN
//  The write path never waits for NATS: the segment manager hands each durable WAL
//  object here without waiting (a full inbox drops it), and publishing is nats.c's
//  asynchronous publish (buffered while disconnected, then refused: dropped and
//  counted). A follower that misses a message sees a gap in the WAL positions and reads
//  the objects it missed from the store, which stays the source of truth. The stream is
//  created (or its limits set) at start and retried every second until NATS answers.
#include "qv_feedpub.h"
#include "qv_loop.h"
#include "qv_bus.h"
#include "qv_msg.h"
#include "qv_rc.h"

typedef struct {
    const qv_config_t *config;
    qv_feed_stats_t *stats;
    qv_bus_t *bus;
    zsock_t *inbox;
    zsock_t *asks;                  //  PULL of WRITER_TS questions (natsMsg *)
    char subject [256];
    char stream [160];
    bool stream_ok;
    bool asking;                    //  subscribed to the strong-read question
    qv_wr_t *w;
} self_t;

void
qv_feed_subject (const qv_config_t *config, uint32_t shard, char *out, size_t size)
{
    char store [128];
    qv_config_store_key (config, store, sizeof store);
    snprintf (out, size, "%s.feed.%s.%u", config->nats_prefix, store, shard);
}

void
qv_feed_ts_subject (const qv_config_t *config, uint32_t shard, char *out, size_t size)
{
    char subject [256];
    qv_feed_subject (config, shard, subject, sizeof subject);
    snprintf (out, size, "%s.ts", subject);
}

void
qv_feed_stream (const qv_config_t *config, uint32_t shard, char *out, size_t size)
{
    //  The store key ends in 16 hex digits of the store's identity
    char store [128];
    qv_config_store_key (config, store, sizeof store);
    size_t len = strlen (store);
    snprintf (out, size, "%s_FEED_%s_%u", config->nats_prefix, store + (len > 16 ? len - 16 : 0),
              shard);
    for (char *c = out; *c; c++)
        if (isalpha ((unsigned char) *c))
            *c = (char) toupper ((unsigned char) *c);
        else
        if (!isdigit ((unsigned char) *c) && *c != '-')
            *c = '_';
}

//  Subscribes to the followers' question and sets the stream up, once connected.
static void
s_setup_stream (self_t *self)
{
    if (!self->asking && qv_bus_connected (self->bus)) {
        char ep [256], subject [288];
        qv_config_endpoint (self->config, "feedpub-ts", ep, sizeof ep);
        qv_feed_ts_subject (self->config, 0, subject, sizeof subject);
        if (qv_bus_subscribe (self->bus, subject, ep) == 0)
            self->asking = true;
        else
            qv_warn ("committed feed: %s; retrying every second", qv_err_msg ());
    }
    if (self->stream_ok || !qv_bus_connected (self->bus))
        return;
    if (qv_bus_ensure_stream (self->bus, self->stream, self->subject,
                              QV_FEED_MAX_AGE_SEC, QV_FEED_MAX_BYTES) == 0) {
        self->stream_ok = true;
        qv_info ("committed feed: stream %s on %s", self->stream, self->subject);
    }
    else
        qv_warn ("committed feed: %s; retrying every second", qv_err_msg ());
    atomic_store (&self->stats->max_payload, qv_bus_max_payload (self->bus));
}

static void
s_publish (self_t *self, const qv_msg_t *msg)
{
    qv_wr_reset (self->w);
    size_t size = 0;
    const void *data = NULL;
    if (qv_msg_encode (msg, self->w) == 0)
        data = qv_wr_data (self->w, &size);
    if (data && qv_bus_publish (self->bus, self->subject, data, size) == 0)
        atomic_fetch_add (&self->stats->published, 1);
    else
        atomic_fetch_add (&self->stats->dropped, 1);
}

static int
s_handle_inbox (qv_loop_t *loop, zsock_t *reader, void *arg)
{
    (void) loop;
    self_t *self = arg;
    qv_msg_t *msg = qv_msg_recv (reader);
    if (!msg)
        return 0;
    if (msg->id == QV_MSG_FEED) {
        atomic_fetch_sub (&self->stats->queued_bytes, ((qv_msg_feed_t *) msg)->wal.size);
        if (self->config->fault_feed_drop)
            atomic_fetch_add (&self->stats->dropped, 1);
        else
            s_publish (self, msg);
    }
    else
    if (msg->id == QV_MSG_FEED_TICK || msg->id == QV_MSG_FEED_MANIFEST)
        s_publish (self, msg);
    else
        qv_error ("protocol error: the feed publisher does not take %s; dropped",
                  qv_msg_name (msg->id));
    qv_msg_destroy (&msg);
    return 0;
}

static int
s_handle_ask (qv_loop_t *loop, zsock_t *reader, void *arg)
{
    (void) loop;
    self_t *self = arg;
    natsMsg *m = qv_bus_recv (self->bus, reader);
    if (!m)
        return 0;
    const char *reply = natsMsg_GetReply (m);
    qv_msg_t *q = NULL;
    if (reply && *reply
    &&  qv_msg_decode (natsMsg_GetData (m), (size_t) natsMsg_GetDataLength (m), NULL, NULL, &q)) {
        qv_warn ("committed feed: an undecodable question of a follower dropped: %s", qv_err_msg ());
        reply = NULL;
    }
    else
    if (q && q->id != QV_MSG_WRITER_TS) {
        qv_warn ("committed feed: a follower asked with %s, not WRITER_TS; dropped",
                 qv_msg_name (q->id));
        reply = NULL;
    }
    if (reply && *reply) {
        qv_msg_writer_ts_t *ans = qv_msg_writer_ts_new ();
        ans->ts = atomic_load (&self->stats->committed_ts);
        ans->ask = ((qv_msg_writer_ts_t *) q)->ask;
        qv_wr_reset (self->w);
        size_t size = 0;
        if (qv_msg_encode ((qv_msg_t *) ans, self->w) == 0) {
            const void *data = qv_wr_data (self->w, &size);
            if (qv_bus_publish (self->bus, reply, data, size))
                qv_warn ("committed feed: cannot answer a follower: %s", qv_err_msg ());
        }
        qv_msg_free (&ans);
    }
    qv_msg_destroy (&q);
    natsMsg_Destroy (m);
    return 0;
}

static int
s_handle_timer (qv_loop_t *loop, int timer_id, void *arg)
{
    (void) loop;
    (void) timer_id;
    s_setup_stream ((self_t *) arg);
    return 0;
}

static int
s_handle_pipe (qv_loop_t *loop, zsock_t *reader, void *arg)
{
    (void) loop;
    (void) arg;
    char *cmd = zstr_recv (reader);
    zstr_free (&cmd);
    return -1;                      //  $TERM
}

void
qv_feedpub_actor (zsock_t *pipe, void *args)
{
    self_t *self = calloc (1, sizeof *self);
    self->config = args;
    self->stats = self->config->feed_stats;
    self->w = qv_wr_new ();
    qv_feed_subject (self->config, 0, self->subject, sizeof self->subject);
    qv_feed_stream (self->config, 0, self->stream, sizeof self->stream);
    char ep [256];
    qv_config_endpoint (self->config, "feedpub", ep, sizeof ep);
    self->inbox = zsock_new (ZMQ_PULL);
    zsock_set_rcvhwm (self->inbox, 10000);
    zsock_bind (self->inbox, "%s", ep);
    atomic_store (&self->stats->max_payload, (uint64_t) 1 << 20);
    self->bus = qv_bus_new (self->config->nats_url, "quiver feed publisher", true);
    qv_config_endpoint (self->config, "feedpub-ts", ep, sizeof ep);
    self->asks = zsock_new_pull (ep);
    zsock_signal (pipe, 0);
    qv_loop_t *loop = qv_loop_new ();
    qv_loop_set_nonstop (loop, true);
    qv_loop_reader (loop, pipe, s_handle_pipe, self);
    //  Only s_handle_pipe reads or answers the pipe (no other handler holds it): it is
    //  asked for events only when its fd fires or after s_handle_pipe
    qv_loop_reader_set_private (loop, pipe);
    if (self->bus) {
        s_setup_stream (self);
        qv_loop_reader (loop, self->inbox, s_handle_inbox, self);
        qv_loop_reader (loop, self->asks, s_handle_ask, self);
        qv_loop_timer (loop, 1000, 0, s_handle_timer, self);
    }
    else
        qv_error ("committed feed: %s; not published", qv_err_msg ());
    qv_loop_start (loop);
    qv_loop_destroy (&loop);
    qv_bus_destroy (&self->bus);
    //  Messages left (or never read without a bus): free them and their bytes' count.
    qv_msg_t *msg;
    while ((msg = qv_msg_recv_nowait (self->inbox)))
        qv_msg_destroy (&msg);
    qv_bus_purge (self->asks);
    zsock_destroy (&self->inbox);
    zsock_destroy (&self->asks);
    qv_wr_destroy (&self->w);
    free (self);
}
