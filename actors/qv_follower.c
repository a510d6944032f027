//  Follower actor: in a searcher process, applies the writer's committed feed.
//
//  @interface (messages: schemas/qv_msg.h)
//    pipe  $TERM                 stop
//  takes (NATS "<prefix>.feed.<store>.<shard>", bus/NATS.md "Committed feed"):
//    FEED {shard, seq, epoch, ts, wal}, FEED_TICK {shard, ts, next_seq},
//    FEED_MANIFEST {shard, version}
//  takes (inbox, PULL inproc "follower"):
//    READ {job, guarantee_ts}    from the proxy: a strong read, which needs the
//                                writer's newest commit timestamp
//  takes (NATS, this actor's reply inbox):
//    WRITER_TS {shard, ts, ask}  the writer's answer (only the latest question's is taken)
//  sends:
//    APPLY {job, seq, wal_index, wal_last, acked}, TICK {shard, ts}, READ {job,
//                                guarantee_ts}   to the searcher, in log order
//    WRITER_TS {shard, ts: 0, ask}   on "<prefix>.feed.<store>.<shard>.ts" (NATS request)
//    FEED_MANIFEST {shard, version}   to the adopter (inproc "adopt"): read it now (not
//                                in a meta process, which has none)
//    LIVE {}                     to the proxy, once caught up (until then it answers
//                                UNAVAILABLE, "catching up")
//    REPLY {job, ts: 0}          to the proxy: a strong read that timed out here
//
//  DESIGN
//  Recovery (actors/qv_replica.c) left the searcher's catalog at the newest manifest
//  plus the WAL tail and this actor at the next WAL position. Each feed message names
//  its WAL object's position: one already applied is skipped; the next one is applied
//  from the message's bytes (or read from the store when it came without them); one
//  further on means messages were missed (a NATS reconnect, a publisher that dropped
//  them), so the objects between are read from the store first (qv_wal_open on the
//  read-only store: the same replay rules as a restart, deposed writers' objects
//  ignored). A tick advances the searcher's tsafe only once every object below its
//  next_seq is applied. Without feed messages for 3 s the store is polled the same way
//  (every 3 s; also while the store lacks objects it needs).
//  Records become APPLY messages with a job of id 0 (no client): inserts and seals go
//  as acked (nothing to answer), deletes and DDL not, so the searcher's reply carries the
//  record to the proxy, which keeps its catalog copy from it.
//  Strong reads: the proxy sends them here; every read waiting when a question leaves
//  shares its answer (the writer answers after they arrived, so it covers every write
//  acknowledged before them); reads that arrive meanwhile wait for the next question.
#include "qv_follower.h"
#include "qv_loop.h"
#include "qv_bus.h"
#include "qv_feedpub.h"
#include "qv_msg.h"
#include "qv_rc.h"

//  A strong read waits this long for the writer's answer before asking again.
#define S_ASK_RETRY_MS 1000
//  Without feed messages for this long, the store is polled for new WAL objects.
#define S_POLL_MS 3000

typedef struct {
    const qv_config_t *config;
    qv_feed_stats_t *stats;
    qv_wal_t *wal;
    zhashx_t *schemas;              //  borrowed (qv_follower_args_t)
    zlistx_t *retired;              //  borrowed: qv_follower_retired_t *
    uint64_t applies_sent;          //  APPLY messages sent to the searcher
    uint64_t next_seq;              //  the next WAL object to apply
    uint64_t epoch;                 //  the highest writer epoch seen on the feed
    bool caught_up;
    bool behind;                    //  objects it needs were checkpointed away
    int64_t last_feed_ms;           //  when the last feed message came
    int64_t last_poll_ms;           //  when the store was last read for new objects
    int64_t behind_logged_ms;
    qv_bus_t *bus;
    bool feed_subscribed;
    bool answers_subscribed;
    char feed_subject [256];
    char ts_subject [288];
    char reply_subject [128];
    zsock_t *inbox;                 //  READs from the proxy
    zsock_t *feed;                  //  natsMsg * of the feed subscription
    zsock_t *answers;               //  natsMsg * of WRITER_TS answers
    zsock_t *searcher;
    zsock_t *adopter;               //  PUSH of FEED_MANIFEST to the adopter
    zsock_t *proxy;
    zlistx_t *batch;                //  APPLY messages of the WAL object being decoded
    uint64_t batch_seq;
    zlistx_t *waiting;              //  strong reads for the next question
    zlistx_t *asked;                //  strong reads whose question is out
    int64_t asked_ms;
    uint64_t ask;                   //  the question out (numbered: WRITER_TS's ask)
    qv_wr_t *w;
} self_t;

static const qv_schema_t *
s_schema_of (void *arg, uint32_t coll_id)
{
    self_t *self = arg;
    char key [16];
    snprintf (key, sizeof key, "%u", coll_id);
    return zhashx_lookup (self->schemas, key);
}

static void
s_post (zsock_t *sock, qv_msg_t *msg)
{
    if (qv_msg_send (sock, &msg) != 0)
        qv_msg_destroy (&msg);      //  stopping
}

//  Sends the decoded WAL object's records to the searcher, the last marked as such.
static void
s_flush_batch (self_t *self)
{
    qv_msg_apply_t *last = zlistx_last (self->batch);
    if (last) {
        last->wal_last = true;
        if (self->batch_seq + 1 > self->next_seq)
            self->next_seq = self->batch_seq + 1;   //  that object is applied
    }
    qv_msg_t *msg;
    while ((msg = zlistx_detach (self->batch, NULL))) {
        s_post (self->searcher, msg);
        self->applies_sent++;
    }
}

void
qv_follower_free_retired (zlistx_t *list, uint64_t taken)
{
    //  In stamp order (retired as APPLY messages went out), but for dropped batches
    qv_follower_retired_t *r;
    while ((r = zlistx_first (list)) && r->stamp <= taken) {
        zlistx_detach (list, NULL);
        qv_schema_t *schema = r->schema;
        qv_schema_destroy (&schema);
        free (r);
    }
}

//  Takes coll's schema out of the registry (a drop, or a create replacing it); it is
//  freed once the searcher has taken every record decoded with it, queued ones too.
static void
s_retire (self_t *self, const char *key)
{
    qv_schema_t *old = zhashx_lookup (self->schemas, key);
    if (!old)
        return;
    zhashx_delete (self->schemas, key);
    qv_follower_retired_t *r = calloc (1, sizeof *r);
    r->schema = old;
    r->stamp = self->applies_sent + zlistx_size (self->batch);
    zlistx_add_end (self->retired, r);
}

static void
s_drop_batch (self_t *self)
{
    qv_msg_t *msg;
    while ((msg = zlistx_detach (self->batch, NULL)))
        qv_msg_destroy (&msg);
}

//  One record of a WAL object (qv_wal_replay_fn): decoded with this actor's schemas,
//  which follow the DDL records, and queued as an APPLY.
static int
s_record (void *arg, uint64_t seq, uint32_t index, const void *data, size_t size)
{
    self_t *self = arg;
    if (zlistx_size (self->batch) && self->batch_seq != seq)
        s_flush_batch (self);       //  the previous object is complete
    self->batch_seq = seq;
    qv_record_t *rec;
    int rc = qv_record_read (data, size, s_schema_of, self, &rec);
    if (rc == QV_ENOTFOUND) {
        qv_record_destroy (&rec);   //  a collection dropped since
        return 0;
    }
    if (rc)
        return qv_err (rc, "WAL object %llu record %u: %s", (unsigned long long) seq, index,
                       qv_err_msg ());
    char key [16];
    snprintf (key, sizeof key, "%u", rec->coll_id);
    if (rec->type == QV_REC_CREATE_COLLECTION && rec->schema) {
        s_retire (self, key);
        zhashx_insert (self->schemas, key, qv_schema_dup (rec->schema));
    }
    else
    if (rec->type == QV_REC_DROP_COLLECTION)
        s_retire (self, key);
    qv_msg_apply_t *apply = qv_msg_apply_new ();
    apply->job = qv_job_new (0);
    apply->job->rec = rec;
    apply->seq = seq;
    apply->wal_index = index;
    apply->acked = rec->type == QV_REC_INSERT || rec->type == QV_REC_SEAL;   //  no reply
    zlistx_add_end (self->batch, apply);
    return 0;
}

//  Reads every WAL object from next_seq on from the store and applies it.
static void
s_catch_up (self_t *self)
{
    uint64_t from = self->next_seq;
    self->last_poll_ms = qv_clock_msec ();
    int rc = qv_wal_open (self->wal, from, s_record, self);
    if (rc == 0) {
        s_flush_batch (self);
        self->next_seq = qv_wal_next_seq (self->wal);
        atomic_fetch_add (&self->stats->wal_reads, self->next_seq - from);
        atomic_store (&self->stats->applied_seq, self->next_seq);
        self->behind = false;
        atomic_store (&self->stats->behind_since_ms, 0);
        return;
    }
    //  The objects read before the failure were applied (s_flush_batch moved the
    //  position past each); the records of the one it stopped in are dropped.
    s_drop_batch (self);
    atomic_store (&self->stats->applied_seq, self->next_seq);
    int64_t now = qv_clock_msec ();
    if (now - self->behind_logged_ms > 60000) {
        self->behind_logged_ms = now;
        qv_error ("searcher: cannot read the WAL from object %llu: %s%s",
                  (unsigned long long) self->next_seq, qv_err_msg (),
                  rc == QV_ECORRUPT ? " (if the writer checkpointed those objects away, this "
                  "searcher fell behind its manifests: it starts over from the newest "
                  "manifest if that lasts; until then strong and bounded reads wait)" : "");
    }
    if (!self->behind)
        atomic_store (&self->stats->behind_since_ms, now);
    self->behind = true;
}

static void
s_caught_up (self_t *self)
{
    if (self->caught_up || self->behind)
        return;
    self->caught_up = true;
    atomic_store (&self->stats->caught_up, true);
    qv_info ("searcher: caught up with the committed feed at WAL object %llu",
             (unsigned long long) self->next_seq);
    qv_msg_live_t *live = qv_msg_live_new ();
    s_post (self->proxy, (qv_msg_t *) live);
}

static void
s_on_feed (self_t *self, const qv_msg_t *msg)
{
    self->last_feed_ms = qv_clock_msec ();
    if (self->behind)
        return;                     //  the store poll retries (a listing per message would not)
    if (msg->id == QV_MSG_FEED) {
        const qv_msg_feed_t *f = (const qv_msg_feed_t *) msg;
        if (f->epoch < self->epoch) {
            qv_warn ("searcher: feed message of WAL object %llu from deposed writer epoch %llu "
                     "ignored (current %llu)", (unsigned long long) f->seq,
                     (unsigned long long) f->epoch, (unsigned long long) self->epoch);
            return;
        }
        self->epoch = f->epoch;
        if (f->seq > self->next_seq)
            s_catch_up (self);      //  missed messages: the store has them
        if (f->seq == self->next_seq) {
            char name [64];
            snprintf (name, sizeof name, "feed message of WAL object %llu", (unsigned long long) f->seq);
            uint64_t epoch = f->epoch;
            if (f->wal.size == 0
            ||  qv_wal_decode_epoch (name, f->wal.data, f->wal.size, 0, f->seq, &epoch,
                                     s_record, self) != 0) {
                if (f->wal.size)
                    qv_warn ("searcher: %s; reading it from the store", qv_err_msg ());
                s_drop_batch (self);
                s_catch_up (self);
            }
            else {
                s_flush_batch (self);
                self->next_seq = f->seq + 1;
                atomic_store (&self->stats->applied_seq, self->next_seq);
            }
        }
        if (self->next_seq > f->seq)
            s_caught_up (self);
    }
    else
    if (msg->id == QV_MSG_FEED_MANIFEST && self->adopter) {
        //  The adopter reads it now (it polls the store too, should this be lost)
        qv_msg_feed_manifest_t *fm = qv_msg_feed_manifest_new ();
        fm->shard = ((const qv_msg_feed_manifest_t *) msg)->shard;
        fm->version = ((const qv_msg_feed_manifest_t *) msg)->version;
        s_post (self->adopter, (qv_msg_t *) fm);
    }
    else
    if (msg->id == QV_MSG_FEED_TICK) {
        const qv_msg_feed_tick_t *t = (const qv_msg_feed_tick_t *) msg;
        if (t->next_seq > self->next_seq)
            s_catch_up (self);
        if (self->next_seq >= t->next_seq) {
            qv_msg_tick_t *tick = qv_msg_tick_new ();
            tick->shard = t->shard;
            tick->ts = t->ts;
            s_post (self->searcher, (qv_msg_t *) tick);
            s_caught_up (self);
        }
    }
}

//  Decodes a message of the one codec from a NATS message, or NULL (logged).
static qv_msg_t *
s_decode (natsMsg *m, const char *what)
{
    qv_msg_t *msg = NULL;
    if (qv_msg_decode (natsMsg_GetData (m), (size_t) natsMsg_GetDataLength (m), NULL, NULL, &msg))
        qv_warn ("searcher: undecodable %s message dropped: %s", what, qv_err_msg ());
    return msg;
}

static int
s_handle_feed (qv_loop_t *loop, zsock_t *reader, void *arg)
{
    (void) loop;
    self_t *self = arg;
    natsMsg *m = qv_bus_recv (self->bus, reader);
    qv_msg_t *msg = m ? s_decode (m, "feed") : NULL;
    natsMsg_Destroy (m);
    if (msg)
        s_on_feed (self, msg);
    qv_msg_destroy (&msg);
    return 0;
}

//  Asks the writer for its newest commit timestamp for every strong read waiting.
static void
s_ask (self_t *self)
{
    if (zlistx_size (self->asked) || !zlistx_size (self->waiting) || !self->answers_subscribed)
        return;
    qv_msg_writer_ts_t *ask = qv_msg_writer_ts_new ();
    ask->ask = self->ask + 1;
    qv_wr_reset (self->w);
    qv_msg_encode ((qv_msg_t *) ask, self->w);
    qv_msg_free (&ask);
    size_t size;
    const void *data = qv_wr_data (self->w, &size);
    if (qv_bus_publish_request (self->bus, self->ts_subject, self->reply_subject, data, size))
        return;                     //  retried by the timer; deadlines still apply
    self->ask++;
    zlistx_t *swap = self->asked;
    self->asked = self->waiting;
    self->waiting = swap;
    self->asked_ms = qv_clock_msec ();
}

static int
s_handle_answer (qv_loop_t *loop, zsock_t *reader, void *arg)
{
    (void) loop;
    self_t *self = arg;
    natsMsg *m = qv_bus_recv (self->bus, reader);
    qv_msg_t *msg = m ? s_decode (m, "writer timestamp") : NULL;
    natsMsg_Destroy (m);
    //  Only the answer to the question out: an earlier one's (asked again since) may
    //  predate reads that arrived after it
    if (msg && msg->id == QV_MSG_WRITER_TS && zlistx_size (self->asked)
    &&  ((qv_msg_writer_ts_t *) msg)->ask == self->ask) {
        uint64_t ts = ((qv_msg_writer_ts_t *) msg)->ts;
        qv_job_t *job;
        while ((job = zlistx_detach (self->asked, NULL))) {
            qv_msg_read_t *read = qv_msg_read_new ();
            read->job = job;
            read->guarantee_ts = ts;
            s_post (self->searcher, (qv_msg_t *) read);
        }
        s_ask (self);
    }
    qv_msg_destroy (&msg);
    return 0;
}

static int
s_handle_inbox (qv_loop_t *loop, zsock_t *reader, void *arg)
{
    (void) loop;
    self_t *self = arg;
    qv_msg_t *msg = qv_msg_recv (reader);
    if (!msg)
        return 0;
    if (msg->id == QV_MSG_READ) {
        zlistx_add_end (self->waiting, qv_msg_take_job (msg));
        s_ask (self);
    }
    else
        qv_error ("protocol error: the follower does not take %s; dropped", qv_msg_name (msg->id));
    qv_msg_destroy (&msg);
    return 0;
}

//  Strong reads past their deadline: TIMEOUT, naming what they waited for.
static void
s_expire (self_t *self, zlistx_t **list_p, int64_t now)
{
    zlistx_t *keep = zlistx_new ();
    qv_job_t *job;
    while ((job = zlistx_detach (*list_p, NULL))) {
        if (!job->deadline || now < job->deadline) {
            zlistx_add_end (keep, job);
            continue;
        }
        char why [600];
        snprintf (why, sizeof why, "strong read on a searcher process: the writer (segment "
                  "manager) did not say its newest commit timestamp on NATS subject %s "
                  "within --read-wait-ms %d", self->ts_subject, self->config->read_wait_ms);
        qv_job_fail (job, QV_ETIMEOUT, why);
        qv_msg_reply_t *reply = qv_msg_reply_new ();
        reply->job = job;
        s_post (self->proxy, (qv_msg_t *) reply);
    }
    zlistx_destroy (list_p);
    *list_p = keep;
}

//  Subscriptions (retried until NATS answers), strong-read deadlines and re-asks, and
//  the store poll when the feed is silent.
static int
s_handle_timer (qv_loop_t *loop, int timer_id, void *arg)
{
    (void) loop;
    (void) timer_id;
    self_t *self = arg;
    char ep [256];
    if (!self->feed_subscribed && qv_bus_connected (self->bus)) {
        qv_config_endpoint (self->config, "follower-feed", ep, sizeof ep);
        self->feed_subscribed = qv_bus_subscribe (self->bus, self->feed_subject, ep) == 0;
    }
    if (!self->answers_subscribed && qv_bus_connected (self->bus)) {
        qv_config_endpoint (self->config, "follower-ts", ep, sizeof ep);
        self->answers_subscribed = qv_bus_subscribe (self->bus, self->reply_subject, ep) == 0;
    }
    int64_t now = qv_clock_msec ();
    s_expire (self, &self->asked, now);
    s_expire (self, &self->waiting, now);
    if (zlistx_size (self->asked) && now - self->asked_ms > S_ASK_RETRY_MS) {
        //  The answer was lost: ask again for all of them, the oldest first.
        qv_job_t *job;
        while ((job = zlistx_detach (self->waiting, NULL)))
            zlistx_add_end (self->asked, job);
        zlistx_t *swap = self->waiting;
        self->waiting = self->asked;
        self->asked = swap;
    }
    s_ask (self);
    if (zlistx_size (self->retired))
        qv_follower_free_retired (self->retired, atomic_load (&self->stats->applies_taken));
    if ((self->behind || now - self->last_feed_ms > S_POLL_MS)
    &&  now - self->last_poll_ms > S_POLL_MS)
        s_catch_up (self);
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

static void
s_job_list_fail (self_t *self, zlistx_t *list)
{
    qv_job_t *job;
    while ((job = zlistx_detach (list, NULL))) {
        qv_job_fail (job, QV_EUNAVAIL, "the server is shutting down; retry when it is back");
        qv_msg_reply_t *reply = qv_msg_reply_new ();
        reply->job = job;
        s_post (self->proxy, (qv_msg_t *) reply);
    }
    zlistx_destroy (&list);
}

void
qv_follower_actor (zsock_t *pipe, void *args_)
{
    qv_follower_args_t *args = args_;
    self_t *self = calloc (1, sizeof *self);
    self->config = args->config;
    self->stats = self->config->feed_stats;
    self->wal = args->wal;
    self->schemas = args->schemas;
    self->retired = args->retired;
    args->wal = NULL;
    self->next_seq = qv_wal_next_seq (self->wal);
    atomic_store (&self->stats->applied_seq, self->next_seq);
    self->batch = zlistx_new ();
    self->waiting = zlistx_new ();
    self->asked = zlistx_new ();
    self->w = qv_wr_new ();
    qv_feed_subject (self->config, 0, self->feed_subject, sizeof self->feed_subject);
    qv_feed_ts_subject (self->config, 0, self->ts_subject, sizeof self->ts_subject);
    natsInbox *inbox = NULL;
    natsInbox_Create (&inbox);
    snprintf (self->reply_subject, sizeof self->reply_subject, "%s", inbox ? inbox : "_INBOX.quiver");
    natsInbox_Destroy (inbox);
    char ep [256];
    qv_config_endpoint (self->config, "follower", ep, sizeof ep);
    self->inbox = zsock_new_pull (ep);
    qv_config_endpoint (self->config, "follower-feed", ep, sizeof ep);
    self->feed = zsock_new_pull (ep);
    qv_config_endpoint (self->config, "follower-ts", ep, sizeof ep);
    self->answers = zsock_new_pull (ep);
    self->searcher = qv_config_push (self->config, "searcher");
    if (!self->config->meta_process)   //  a meta process writes the manifests: no adopter
        self->adopter = qv_config_push (self->config, "adopt");
    self->proxy = qv_config_push (self->config, "proxy");
    self->bus = qv_bus_new (self->config->nats_url, "quiver searcher", true);
    self->last_feed_ms = qv_clock_msec ();
    zsock_signal (pipe, 0);
    qv_loop_t *loop = qv_loop_new ();
    qv_loop_set_nonstop (loop, true);
    qv_loop_reader (loop, pipe, s_handle_pipe, self);
    //  Only s_handle_pipe reads or answers the pipe (no other handler holds it): it is
    //  asked for events only when its fd fires or after s_handle_pipe
    qv_loop_reader_set_private (loop, pipe);
    if (self->bus) {
        qv_loop_reader (loop, self->inbox, s_handle_inbox, self);
        qv_loop_reader (loop, self->feed, s_handle_feed, self);
        qv_loop_reader (loop, self->answers, s_handle_answer, self);
        qv_loop_timer (loop, 20, 0, s_handle_timer, self);
        s_handle_timer (loop, 0, self);
    }
    else
        qv_error ("searcher: %s; cannot follow the committed feed", qv_err_msg ());
    qv_loop_start (loop);
    qv_loop_destroy (&loop);
    qv_bus_destroy (&self->bus);
    s_drop_batch (self);
    zlistx_destroy (&self->batch);
    qv_msg_t *msg;
    while ((msg = qv_msg_recv_nowait (self->inbox))) {
        qv_job_t *job = qv_msg_take_job (msg);
        if (job)
            zlistx_add_end (self->waiting, job);
        qv_msg_destroy (&msg);
    }
    s_job_list_fail (self, self->asked);
    s_job_list_fail (self, self->waiting);
    qv_bus_purge (self->feed);
    qv_bus_purge (self->answers);
    zsock_destroy (&self->inbox);
    zsock_destroy (&self->feed);
    zsock_destroy (&self->answers);
    zsock_destroy (&self->searcher);
    zsock_destroy (&self->adopter);
    zsock_destroy (&self->proxy);
    qv_wal_destroy (&self->wal);
    qv_wr_destroy (&self->w);
    free (self);
}
