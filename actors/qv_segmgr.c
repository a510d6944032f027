//  Segment manager actor: logs writes to the WAL with group commit, assigns rows to
//  growing segments and seals them, and holds writers back when memory is full.
//
//  @interface (messages: schemas/qv_msg.h)
//    pipe  $TERM                 finish the WAL writes in flight, then stop
//  takes (inbox, PULL inproc "segmgr"):
//    WRITE {job}                 from the proxy: log job->rec, then APPLY it
//    FLUSH {coll, job}           from the proxy: seal coll's growing segments, then
//                                pass the FLUSH on to the searcher in log order
//    FLUSHED {seg}               from the metadata coordinator: a segment is written; release its
//                                memory
//    CHECKPOINT {seq}            from the metadata coordinator: a durable manifest made WAL objects
//                                below seq unneeded
//  sends:
//    APPLY {job, seq, wal_index, wal_last, acked}, SEAL {coll, seg}, FLUSH {coll, job}
//                                to the searcher, in log order (the committed feed)
//    TICK {shard, ts}            to the searcher, when no write is in flight, every
//                                100 ms: every record below ts was sent
//    REPLY {job, ts}             to the proxy: an insert, upsert or delete is durable
//                                (its acknowledgement, ts = its commit timestamp); or
//                                a write refused or not logged (ts 0)
//    FEED {shard, seq, epoch, ts, wal}, FEED_TICK {shard, ts, next_seq}
//                                with --nats, to the feed publisher (inproc "feedpub",
//                                without waiting; dropped when it is behind): each
//                                durable WAL object with its bytes, and the idle tick
//
//  DESIGN
//  Jobs queue in arrival order (the proxy's timestamp order). Whenever the WAL writer
//  thread has room in its window (`window` groups in flight: QV_WAL_WINDOW on S3,
//  where one put's latency is the limit; 1 on the filesystem, unless --wal-window),
//  the whole queue (up to group_max_bytes) goes to it as one group and becomes one WAL
//  object: while writes are in flight the next group forms, so concurrent clients
//  share puts and fsyncs. The writer answers groups strictly in log order, each once
//  every object up to it is durable (qv_wal.c, "Pipelining"). When the group is
//  durable its jobs go to the searcher in order ("APPLY"), with seal markers and flush
//  jobs in their places, so the searcher sees exactly the log's order. A failed write
//  answers every job of the group, and of every group after it still in flight,
//  UNAVAILABLE; nothing of them was acknowledged or applied. No group goes to the
//  writer until all of those are answered (`halted`); then their seals go first in the
//  queue again, the writer is told (RESUME), and the timer writes again.
//
//  The segment manager owns the commit timestamps (physical ms << 18 | logical, as
//  DESIGN.md says): each record gets its timestamp when it joins the queue, so
//  timestamp order is log order. They start above the largest one recovered and above
//  the proxy's proposal (rec->ts on arrival, which is above the auto ids the proxy gave
//  the rows), so they increase across restarts and stay above every auto id. It
//  acknowledges an insert, upsert or delete itself once its WAL object is durable (a
//  delete's count of live rows came with it from the searcher, which resolved it
//  before it was logged: job->deleted); DDL (whose replies keep the proxy's catalog
//  copy) is answered by the searcher once applied. Reads wait for
//  their guarantee timestamp in the searcher, which learns how far the shard has got
//  from the APPLYs and, when no write is in flight, from a TICK every 100 ms.
//
//  Writes from a JetStream stream (rec->sseq set) must be logged in stream order with
//  none skipped. When one fails (its group's write, or its wait for memory), every
//  later stream write of the same consumer generation (job->sgen: the bridge starts a
//  new one each time it rewinds) is refused too (`hold`, qv_stream_hold.h), those
//  already queued or waiting for memory at once, until the bridge sends again from the
//  failed message or an earlier one, or starts a new generation: it then resumes
//  exactly there. A
//  stream write queues behind any write waiting for memory, whatever its kind, so the
//  stream's order holds. And each is logged once: the ledger (qv_stream_ledger.h)
//  knows which stream sequences are in the WAL; one sent again after it was logged is
//  answered as done (`again`) without being logged twice, and one sent again while its
//  first copy is still on its way to the WAL is refused UNAVAILABLE (holding the later
//  ones) until that copy's outcome is known. Only a proxy process sends a message
//  again whose first copy may have been logged (its connection to the writer core
//  dropped, and it answered UNAVAILABLE, outcome unknown).
#include "qv_segmgr.h"
#include "qv_loop.h"
#include "qv_catalog.h"
#include "qv_hist.h"
#include "qv_stream_hold.h"
#include "qv_stream_ledger.h"
#include "qv_msg.h"
#include "qv_rc.h"

typedef struct {
    uint64_t seg_id;
    uint32_t rows;
    uint32_t cap;
    size_t bytes;
    int64_t created_ms;
} s_growing_t;

//  A sealed segment not flushed yet: its memory, released by FLUSHED or by the drop of
//  its collection or partition (then no manifest will ever hold it).
typedef struct {
    size_t bytes;
    uint32_t coll;
    uint32_t partition;
} s_sealed_t;

typedef struct {
    zlistx_t *msgs;                 //  APPLY, SEAL and FLUSH messages, in log order
    int rc;
    uint64_t seq;
    char error [256];
    qv_feed_stats_t *feed;          //  with --nats: the writer thread keeps a copy of the
    void *wal_bytes;                //  object's bytes here for the committed feed (NULL
    size_t wal_size;                //  if over the payload limit), handed over to the
    uint64_t epoch;                 //  FEED message, and its writer epoch
    size_t nsseq;                   //  its stream sequences in writing_sseq
} s_group_t;

typedef struct {
    const qv_config_t *config;
    zsock_t *pipe;
    zsock_t *inbox;
    zsock_t *searcher;              //  PUSH to the searcher's inbox
    zsock_t *proxy;                 //  PUSH to the proxy's inbox
    zactor_t *writer;               //  WAL writer thread
    qv_wal_t *wal;
    int inflight;                   //  groups with the writer, not answered yet
    int window;                     //  the most groups in flight (WAL puts at once)
    bool halted;                    //  a group failed: no more until all are answered
    zlistx_t *unlogged;             //  seals of failed groups, in order, queued again
    zlistx_t *queue;                //  messages waiting for the next group
    zlistx_t *waiting;              //  inserts held back by memory pressure
    zhashx_t *growing;              //  "coll/shard" -> s_growing_t
    zhashx_t *sealed_bytes;         //  "seg_id" -> s_sealed_t: sealed, unflushed segments
    zhashx_t *dropped;              //  "coll/part" and "coll/*" dropped since start
    uint32_t next_coll_id;
    uint64_t next_seg_id;
    size_t unflushed;               //  bytes of rows not yet in flushed segments
    uint64_t truncate_to;           //  pending WAL truncation
    qv_stream_hold_t hold;          //  a stream write failed: the later ones refused
    qv_stream_ledger_t *ledger;     //  the stream sequences in the WAL
    uint64_t *writing_sseq;         //  stream sequences of the groups in flight, in
    size_t writing_n;               //  order (each group's nsseq of them)
    uint64_t last_ts;               //  the last timestamp given out
    bool terminating;
    zsock_t *feedpub;               //  PUSH to the feed publisher, with --nats
    uint64_t feed_next;             //  the WAL seq after the last durable object
} self_t;

//  Feed messages queued to the publisher at most (then dropped: followers read the WAL).
#define S_FEED_HWM 10000
//  Bytes of WAL objects queued to the publisher at most (then FEEDs go without them).
#define S_FEED_QUEUED_MAX (64u << 20)

//  On the writer thread, after a durable append: a copy of the object's bytes (as
//  written) for the committed feed, if they fit in a NATS message and the publisher
//  is not too far behind.
static void
s_feed_keep (s_group_t *group, uint64_t epoch, const void *object, size_t size)
{
    qv_feed_stats_t *fs = group->feed;
    uint64_t max = atomic_load (&fs->max_payload);
    group->epoch = epoch;
    if (max == 0 || size + 1024 > max
    ||  atomic_load (&fs->queued_bytes) > S_FEED_QUEUED_MAX)
        return;
    group->wal_bytes = malloc (size);
    if (group->wal_bytes) {
        memcpy (group->wal_bytes, object, size);
        group->wal_size = size;
    }
}

//  Hands a feed message to the publisher without waiting; counted as dropped if it
//  has no room (the followers find the gap and read the WAL).
static void
s_feed_post (self_t *self, qv_msg_t *msg)
{
    size_t bytes = msg->id == QV_MSG_FEED ? ((qv_msg_feed_t *) msg)->wal.size : 0;
    atomic_fetch_add (&self->config->feed_stats->queued_bytes, bytes);
    if (qv_msg_send_nowait (self->feedpub, &msg) != 0) {
        atomic_fetch_sub (&self->config->feed_stats->queued_bytes, bytes);
        atomic_fetch_add (&self->config->feed_stats->dropped, 1);
        qv_msg_destroy (&msg);
    }
}

//  A durable group on the committed feed: its position, largest timestamp and bytes.
//  The strong-read timestamp goes up first: it is answered to followers from now on.
static void
s_feed_group (self_t *self, s_group_t *group)
{
    uint64_t ts = 0;
    bool logged = false;
    for (qv_msg_t *m = zlistx_first (group->msgs); m; m = zlistx_next (group->msgs)) {
        logged |= m->id == QV_MSG_APPLY || m->id == QV_MSG_SEAL;
        if (m->id == QV_MSG_APPLY && ((qv_msg_apply_t *) m)->job->rec->ts > ts)
            ts = ((qv_msg_apply_t *) m)->job->rec->ts;
    }
    if (!logged)
        return;                     //  nothing logged (a group of flushes)
    if (ts == 0)                    //  seals only: no write below the last one published
        ts = atomic_load (&self->config->feed_stats->committed_ts);
    self->feed_next = group->seq + 1;
    if (ts > atomic_load (&self->config->feed_stats->committed_ts))
        atomic_store (&self->config->feed_stats->committed_ts, ts);
    qv_msg_feed_t *feed = qv_msg_feed_new ();
    feed->seq = group->seq;
    feed->epoch = group->epoch;
    feed->ts = ts;
    if (group->wal_bytes) {
        feed->wal.data = group->wal_bytes;
        feed->wal.size = group->wal_size;
        group->wal_bytes = NULL;
    }
    s_feed_post (self, (qv_msg_t *) feed);
}

//  One WAL object of the writer's window: its group and records, and where its put is.
typedef struct {
    s_group_t *group;               //  NULL: the slot is free
    qv_wr_t *w;                     //  the WAL object, its records encoded in place
    size_t n, total;                //  (kept for the slot's next object)
    uint64_t seq, epoch;
    bool reserved;                  //  seq is reserved (qv_wal_reserve)
    int64_t started;                //  when (qv_clock_usec), for the commit histogram
    bool busy;                      //  its put is under way on the slot's put thread
    bool done;                      //  group->rc is its outcome (put, or refused)
    zactor_t *putter;               //  the slot's put thread
} s_slot_t;

typedef struct {
    qv_wal_t *wal;
    int window;                     //  WAL objects in flight at most (1..QV_WAL_WINDOW)
} s_writer_args_t;

//  A put thread: writes the object of each slot it is given ("PUT", slot) with
//  qv_wal_put and signals when done; the outcome is in the slot's group.
static void
s_putter_actor (zsock_t *pipe, void *args)
{
    qv_wal_t *wal = args;
    zsock_signal (pipe, 0);
    while (true) {
        char *cmd = NULL;
        void *ptr = NULL;
        if (zsock_recv (pipe, "sp", &cmd, &ptr) != 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        bool term = streq (cmd, "$TERM");
        zstr_free (&cmd);
        if (term)
            break;
        s_slot_t *slot = ptr;
        s_group_t *group = slot->group;
        size_t size;
        //  The slot's buffer is the object: its head is filled in here
        void *object = (void *) qv_wr_data (slot->w, &size);
        group->rc = qv_wal_put_object (wal, slot->seq, slot->epoch, object, size, slot->n);
        if (group->rc)
            snprintf (group->error, sizeof group->error, "the write was not logged: %s",
                      qv_err_msg ());
        zsock_signal (pipe, 0);
    }
}

//  A slot's buffer past this size after an object is let go (not kept for the next).
#define S_SLOT_KEEP_MAX (64u << 20)

//  Encodes a group's logged messages (APPLY and SEAL) as the records of a WAL object
//  built in place in slot's buffer (qv_wal_put_object); sets wal_index and wal_last
//  of its APPLYs. Returns the number of records.
static size_t
s_encode_group (s_slot_t *slot)
{
    s_group_t *group = slot->group;
    size_t n = 0, napply = 0;
    for (qv_msg_t *m = zlistx_first (group->msgs); m; m = zlistx_next (group->msgs)) {
        n += m->id == QV_MSG_APPLY || m->id == QV_MSG_SEAL;
        napply += m->id == QV_MSG_APPLY;
    }
    slot->n = n;
    slot->total = 0;
    if (n == 0)
        return 0;
    static const uint8_t room [QV_WAL_OBJECT_HEAD];
    size_t i = 0, applies = 0;
    uint64_t ts = 0;
    qv_wr_reset (slot->w);
    qv_wr_raw (slot->w, room, QV_WAL_OBJECT_HEAD);
    for (qv_msg_t *m = zlistx_first (group->msgs); m; m = zlistx_next (group->msgs)) {
        if (m->id != QV_MSG_APPLY && m->id != QV_MSG_SEAL)
            continue;
        qv_wr_raw (slot->w, room, QV_WAL_RECORD_HEAD);
        size_t start;
        qv_wr_data (slot->w, &start);
        if (m->id == QV_MSG_APPLY) {
            //  wal_index counts every record, as a follower's decoding does
            qv_msg_apply_t *apply = (qv_msg_apply_t *) m;
            apply->wal_index = i;
            apply->wal_last = ++applies == napply;
            ts = apply->job->rec->ts;
            qv_record_write (apply->job->rec, slot->w);
        }
        else {
            //  Logged for followers that write segments (a metadata coordinator in
            //  its own process): no rows, no reply; the timestamp of the record before it
            qv_msg_seal_t *seal = (qv_msg_seal_t *) m;
            qv_record_t rec = { .type = QV_REC_SEAL, .ts = ts,
                                .coll_id = (uint32_t) seal->coll, .seg_id = seal->seg };
            qv_record_write (&rec, slot->w);
        }
        size_t end;
        uint8_t *base = (uint8_t *) qv_wr_data (slot->w, &end);
        //  A record over 4 GiB is left for qv_wal_put_object to refuse
        qv_wal_object_record (base + start - QV_WAL_RECORD_HEAD, end - start);
        i++;
    }
    qv_wr_data (slot->w, &slot->total);
    return n;
}

//  The WAL writer thread: each group becomes one WAL object, written by the put
//  threads with up to `window` puts in flight; groups are answered (DONE) strictly in
//  log order, each once every object up to it is durable and confirmed (the writer
//  lock, qv_wal_confirm). After a failure (a put, its confirmation, or a reserve)
//  every group not yet answered and every one that comes before RESUME is answered
//  failed, and once no put is under way the log is told (qv_wal_abort): the next
//  object takes the failed one's number, after the window's leftovers are deleted.
//  The segment manager sends RESUME once it has its answers for every group it sent.
static void
s_writer_actor (zsock_t *pipe, void *args_)
{
    s_writer_args_t *args = args_;
    qv_wal_t *wal = args->wal;
    int window = args->window;
    s_slot_t slots [QV_WAL_WINDOW];
    memset (slots, 0, sizeof slots);
    for (int i = 0; i < window; i++) {
        slots [i].w = qv_wr_new ();
        slots [i].putter = zactor_new (s_putter_actor, wal);
    }
    int head = 0, count = 0;        //  the window: slots [head ..] in log order
    bool halted = false;            //  a failure: refuse until RESUME
    bool abort_due = false;         //  qv_wal_abort (abort_seq) once no put is under way
    uint64_t abort_seq = 0;
    char why [256] = "";            //  the failure, for the groups refused after it
    bool stopping = false;
    zsock_signal (pipe, 0);
    while (!stopping || count > 0) {
        zmq_pollitem_t items [QV_WAL_WINDOW + 1];
        int which [QV_WAL_WINDOW + 1];
        int nitems = 0;
        if (count < window && !stopping) {
            items [nitems] = (zmq_pollitem_t) { zsock_resolve (pipe), 0, ZMQ_POLLIN, 0 };
            which [nitems++] = -1;
        }
        for (int i = 0; i < window; i++)
            if (slots [i].busy) {
                items [nitems] = (zmq_pollitem_t) { zsock_resolve (zactor_sock (slots [i].putter)),
                                                    0, ZMQ_POLLIN, 0 };
                which [nitems++] = i;
            }
        if (nitems == 0)
            break;                  //  stopping, nothing under way (cannot hold a group)
        if (zmq_poll (items, nitems, -1) < 0) {
            if (errno == EINTR)
                continue;           //  a signal for main; $TERM stops us
            break;
        }
        for (int k = 0; k < nitems; k++) {
            if (!(items [k].revents & ZMQ_POLLIN) || which [k] < 0)
                continue;
            s_slot_t *slot = &slots [which [k]];
            zsock_wait (zactor_sock (slot->putter));
            slot->busy = false;
            slot->done = true;
        }
        if (nitems > 0 && which [0] == -1 && (items [0].revents & ZMQ_POLLIN)) {
            char *cmd;
            void *ptr = NULL;
            uint64_t seq = 0;
            if (zsock_recv (pipe, "sp8", &cmd, &ptr, &seq) != 0) {
                if (errno != EINTR)
                    stopping = true;
            }
            else
            if (streq (cmd, "$TERM"))
                stopping = true;    //  after the window's puts are answered
            else
            if (streq (cmd, "RESUME"))
                halted = false;
            else
            if (streq (cmd, "TRUNCATE")) {
                if (qv_wal_truncate (wal, seq))
                    qv_warn ("WAL truncation below %llu failed: %s", (unsigned long long) seq,
                             qv_err_msg ());
            }
            else
            if (streq (cmd, "APPEND")) {
                s_slot_t *slot = &slots [(head + count++) % window];
                slot->group = ptr;
                slot->group->rc = 0;
                if (s_encode_group (slot) == 0)
                    slot->done = true;          //  flushes only: nothing to log
                else
                if (halted) {
                    slot->group->rc = QV_EUNAVAIL;
                    snprintf (slot->group->error, sizeof slot->group->error, "%s", why);
                    slot->done = true;
                }
                else
                if ((slot->group->rc = qv_wal_reserve (wal, &slot->seq, &slot->epoch)) != 0) {
                    snprintf (slot->group->error, sizeof slot->group->error,
                              "the write was not logged: %s", qv_err_msg ());
                    slot->done = true;
                }
                else {
                    slot->group->seq = slot->seq;
                    slot->reserved = true;
                    slot->started = qv_clock_usec ();
                    slot->busy = true;
                    zsock_send (zactor_sock (slot->putter), "sp", "PUT", slot);
                }
            }
            zstr_free (&cmd);
        }
        //  Answer the window's head in log order: a run of durable objects is
        //  confirmed by one lock check, then acknowledged
        while (count > 0 && slots [head].done) {
            int run = 0;
            s_slot_t *last = NULL;
            for (int k = 0; k < count; k++) {
                s_slot_t *sl = &slots [(head + k) % window];
                if (!sl->done || sl->group->rc || halted)
                    break;
                run++;
                if (sl->n)
                    last = sl;
            }
            int crc = last ? qv_wal_confirm (wal, last->seq) : 0;
            if (crc) {
                //  Not confirmed: nothing of the run is acknowledged
                snprintf (slots [head].group->error, sizeof slots [head].group->error,
                          "the write was not logged: %s", qv_err_msg ());
                slots [head].group->rc = crc;
                run = 0;
            }
            for (int k = 0; k < (run ? run : 1); k++) {
                s_slot_t *sl = &slots [head];
                s_group_t *group = sl->group;
                if (!run && !halted && group->rc) {
                    //  The first failure: this and everything after it fail, and the
                    //  log goes back to the first object of the window not confirmed
                    halted = true;
                    snprintf (why, sizeof why, "%s", group->error);
                    for (int j = 0; j < count && !abort_due; j++) {
                        s_slot_t *o = &slots [(head + j) % window];
                        if (o->reserved) {
                            abort_seq = o->seq;
                            abort_due = true;
                        }
                    }
                }
                else
                if (!run && group->rc == 0) {
                    group->rc = QV_EUNAVAIL;
                    snprintf (group->error, sizeof group->error, "%s", why);
                }
                if (group->rc == 0 && sl->n) {
                    //  What qv_wal_append records: reserve to acknowledgement
                    qv_hist_record (QV_HIST_WAL_COMMIT_SECONDS,
                                    (qv_clock_usec () - sl->started) / 1e6);
                    qv_hist_record (QV_HIST_WAL_COMMIT_RECORDS, (double) sl->n);
                }
                if (group->rc == 0 && group->feed && sl->n) {
                    size_t size;
                    const void *object = qv_wr_data (sl->w, &size);
                    s_feed_keep (group, sl->epoch, object, size);
                }
                if (sl->total > S_SLOT_KEEP_MAX) {
                    qv_wr_destroy (&sl->w);
                    sl->w = qv_wr_new ();
                }
                sl->group = NULL;
                sl->done = false;
                sl->reserved = false;
                sl->n = 0;
                head = (head + 1) % window;
                count--;
                zsock_send (pipe, "sp", "DONE", group);
            }
        }
        if (abort_due) {
            bool under_way = false;
            for (int i = 0; i < window; i++)
                under_way |= slots [i].busy;
            if (!under_way) {
                qv_wal_abort (wal, abort_seq);
                abort_due = false;
            }
        }
    }
    for (int i = 0; i < window; i++) {
        zactor_destroy (&slots [i].putter);
        qv_wr_destroy (&slots [i].w);
    }
}

//  Publishes the unflushed bytes for `stats` (the segment manager owns the figure).
static void
s_publish (self_t *self)
{
    qv_write_stats_t *ws = self->config->write_stats;
    if (!ws)
        return;
    atomic_store (&ws->unflushed, self->unflushed);
    if (self->unflushed > atomic_load (&ws->unflushed_peak))
        atomic_store (&ws->unflushed_peak, self->unflushed);
}

//  The next commit timestamp: physical ms << 18 | logical, strictly increasing.
static uint64_t
s_next_ts (self_t *self)
{
    uint64_t phys = (uint64_t) qv_clock_wall_msec () << QV_TS_LOGICAL_BITS;
    self->last_ts = phys > self->last_ts ? phys : self->last_ts + 1;
    return self->last_ts;
}

static void
s_item_free (void **item)
{
    free (*item);
    *item = NULL;
}

static void
s_send_reply_ts (self_t *self, qv_job_t *job, uint64_t ts)
{
    qv_msg_reply_t *msg = qv_msg_reply_new ();
    msg->job = job;
    msg->ts = ts;
    if (qv_msg_post (self->proxy, &msg) != 0)
        qv_msg_free (&msg);         //  the proxy is gone: no client to answer
}

static void
s_send_reply (self_t *self, qv_job_t *job)
{
    s_send_reply_ts (self, job, 0);
}

//  Passes a message on to the searcher (at shutdown, when it cannot, drops it).
static void
s_send_searcher (self_t *self, qv_msg_t *msg)
{
    if (qv_msg_send (self->searcher, &msg) != 0)
        qv_msg_destroy (&msg);
}

//  A seal of segment seg of collection coll, in the queue's log order.
static void
s_queue_seal (self_t *self, uint32_t coll, uint64_t seg)
{
    qv_msg_seal_t *msg = qv_msg_seal_new ();
    msg->coll = coll;
    msg->seg = seg;
    zlistx_add_end (self->queue, msg);
}

static void s_stream_failed (self_t *self, qv_job_t *job);

//  True (and the job answered RESOURCE_EXHAUSTED) if an insert would take the memory
//  held past --memory-mb: what the searcher measured last (every second) and the
//  rows not yet applied, with this batch.
static bool
s_over_budget (self_t *self, qv_job_t *job)
{
    qv_write_stats_t *ws = self->config->write_stats;
    size_t budget = self->config->memory_budget;
    if (!budget || !ws)
        return false;
    uint64_t held = atomic_load (&ws->resident);
    if (held + job->bytes <= budget)
        return false;
    char msg [400];
    snprintf (msg, sizeof msg, "the server holds %llu MiB of rows and indexes in memory and this "
              "batch needs %zu MiB more, over the budget of %zu MiB (--memory-mb): delete rows "
              "and compact, drop indexes or collections, or raise --memory-mb",
              (unsigned long long) (held >> 20), (job->bytes + (1u << 20) - 1) >> 20, budget >> 20);
    s_stream_failed (self, job);
    qv_job_fail (job, QV_ELIMIT, msg);
    s_send_reply (self, job);
    atomic_fetch_add (&ws->refused, 1);
    return true;
}

//  Bytes a queued message adds to a WAL object.
static size_t
s_msg_bytes (qv_msg_t *msg)
{
    return msg->id == QV_MSG_APPLY ? ((qv_msg_apply_t *) msg)->job->bytes : 0;
}

//  Stream sequence of a job's record, 0 if it is not from a stream.
static uint64_t
s_sseq (const qv_job_t *job)
{
    return job->rec ? job->rec->sseq : 0;
}

//  True (and the job answered) if job is a stream write after a failed one of its
//  consumer generation. counted: its bytes are in unflushed (it was queued).
static bool
s_stream_refuse (self_t *self, qv_job_t *job, bool counted)
{
    if (!qv_stream_hold_covers (&self->hold, s_sseq (job), job->sgen))
        return false;
    char msg [160];
    snprintf (msg, sizeof msg, "stream message %llu failed before this one; the write was not "
              "logged (ingestion resumes from %llu)", (unsigned long long) self->hold.sseq,
              (unsigned long long) self->hold.sseq);
    if (counted && job->rec->type == QV_REC_INSERT)
        self->unflushed -= job->bytes < self->unflushed ? job->bytes : self->unflushed;
    qv_job_fail (job, QV_EUNAVAIL, msg);
    s_send_reply (self, job);
    return true;
}

//  Stream write job was not logged (it failed, or came again too early): every later
//  one of its generation is refused until it comes again, those queued or waiting now.
static void
s_stream_failed (self_t *self, qv_job_t *job)
{
    uint64_t sseq = s_sseq (job);
    if (!sseq)
        return;
    qv_stream_hold_set (&self->hold, sseq, job->sgen);
    for (qv_msg_t *msg = zlistx_first (self->queue); msg; msg = zlistx_next (self->queue))
        if (msg->id == QV_MSG_APPLY && s_stream_refuse (self, ((qv_msg_apply_t *) msg)->job, true)) {
            ((qv_msg_apply_t *) msg)->job = NULL;   //  answered
            zlistx_detach_cur (self->queue);
            qv_msg_destroy (&msg);
        }
    for (qv_job_t *w = zlistx_first (self->waiting); w; w = zlistx_next (self->waiting)) {
        if (qv_stream_hold_covers (&self->hold, s_sseq (w), w->sgen)) {
            zlistx_detach_cur (self->waiting);
            s_stream_refuse (self, w, false);
        }
    }
}

//  True if stream sequence sseq is on its way to the WAL: in the group being written,
//  queued, or waiting for memory.
static bool
s_stream_in_flight (self_t *self, uint64_t sseq)
{
    for (size_t i = 0; i < self->writing_n; i++)
        if (self->writing_sseq [i] == sseq)
            return true;
    for (qv_msg_t *msg = zlistx_first (self->queue); msg; msg = zlistx_next (self->queue))
        if (msg->id == QV_MSG_APPLY && s_sseq (((qv_msg_apply_t *) msg)->job) == sseq)
            return true;
    for (qv_job_t *w = zlistx_first (self->waiting); w; w = zlistx_next (self->waiting))
        if (s_sseq (w) == sseq)
            return true;
    return false;
}

//  True (and the job answered) if job is a stream write logged before, or on its way
//  to the WAL: see "each is logged once" above.
static bool
s_stream_again (self_t *self, qv_job_t *job)
{
    uint64_t sseq = s_sseq (job);
    if (!sseq)
        return false;
    if (qv_stream_ledger_has (self->ledger, sseq)) {
        qv_job_t *ack = qv_job_again_ack (job);
        if (ack) {
            s_send_reply (self, ack);
            qv_job_destroy (&job);
        }
        else {
            qv_job_fail (job, QV_ENOMEM, "out of memory answering a stream write sent again");
            s_send_reply (self, job);
        }
        if (self->config->write_stats)
            atomic_fetch_add (&self->config->write_stats->stream_again, 1);
        return true;
    }
    if (!s_stream_in_flight (self, sseq))
        return false;
    char msg [200];
    snprintf (msg, sizeof msg, "stream message %llu was sent again while its first copy is "
              "being logged; send it again once that is answered", (unsigned long long) sseq);
    s_stream_failed (self, job);
    qv_job_fail (job, QV_EUNAVAIL, msg);
    s_send_reply (self, job);
    return true;
}

static void
s_sealed_add (self_t *self, uint64_t seg_id, size_t bytes, uint32_t coll, uint32_t partition)
{
    s_sealed_t *sealed = calloc (1, sizeof *sealed);
    assert (sealed);
    sealed->bytes = bytes;
    sealed->coll = coll;
    sealed->partition = partition;
    char segkey [32];
    snprintf (segkey, sizeof segkey, "%llu", (unsigned long long) seg_id);
    zhashx_update (self->sealed_bytes, segkey, sealed);
}

//  Releases the memory of a sealed segment (written, or dropped).
static void
s_sealed_release (self_t *self, const char *segkey)
{
    s_sealed_t *sealed = zhashx_lookup (self->sealed_bytes, segkey);
    if (!sealed)
        return;
    self->unflushed -= sealed->bytes < self->unflushed ? sealed->bytes : self->unflushed;
    zhashx_delete (self->sealed_bytes, segkey);
}

//  Ends the current growing segment of key, queueing a seal marker in log order.
static void
s_seal (self_t *self, const char *key, uint32_t coll_id)
{
    s_growing_t *g = zhashx_lookup (self->growing, key);
    if (!g)
        return;
    s_queue_seal (self, coll_id, g->seg_id);
    unsigned coll, shard, part;
    if (sscanf (key, "%u/%u/%u", &coll, &shard, &part) != 3)
        part = 0;
    s_sealed_add (self, g->seg_id, g->bytes, coll_id, part);
    zhashx_delete (self->growing, key);
}

//  The growing segment of (collection, shard, partition) that takes n more rows of an
//  insert, sealing the current one if they don't fit.
static uint64_t
s_growing_for (self_t *self, const qv_record_t *rec, uint32_t partition, uint32_t n, size_t bytes)
{
    char key [48];
    snprintf (key, sizeof key, "%u/%u/%u", rec->coll_id, rec->shard, partition);
    s_growing_t *g = zhashx_lookup (self->growing, key);
    if (g && (uint64_t) g->rows + n > g->cap) {
        s_seal (self, key, rec->coll_id);
        g = NULL;
    }
    if (!g) {
        g = calloc (1, sizeof *g);
        g->seg_id = self->next_seg_id++;
        g->cap = qv_segment_cap_rows (rec->batch->schema, n, self->config->seg_max_bytes);
        g->created_ms = qv_clock_msec ();
        zhashx_insert (self->growing, key, g);
    }
    g->rows += n;
    g->bytes += bytes;
    return g->seg_id;
}

//  Assigns segments to an insert: one, in its partition; or, in a partition-key
//  collection, one per partition its rows hash to (the searcher redoes the hash).
static void
s_assign (self_t *self, qv_job_t *job)
{
    qv_record_t *rec = job->rec;
    const qv_batch_t *b = rec->batch;
    int key = qv_partition_key_field (b->schema);
    if (key < 0 || rec->num_partitions == 0) {
        rec->seg_id = s_growing_for (self, rec, rec->partition, b->n, job->bytes);
        return;
    }
    uint32_t np = rec->num_partitions, *count = calloc (np, sizeof (uint32_t));
    for (uint32_t r = 0; r < b->n; r++)
        count [qv_partition_of_row (b, key, r, np)]++;
    rec->psegs = calloc (np, sizeof (qv_pseg_t));
    uint64_t before = 0;
    for (uint32_t p = 0; p < np; p++) {
        if (!count [p])
            continue;
        //  Bytes split in proportion to rows, summing exactly to the job's.
        size_t bytes = (size_t) ((job->bytes * (before + count [p])) / b->n - (job->bytes * before) / b->n);
        before += count [p];
        rec->psegs [rec->npsegs].partition = p;
        rec->psegs [rec->npsegs++].seg_id = s_growing_for (self, rec, p, count [p], bytes);
    }
    free (count);
}

//  The key of a dropped partition (partition < 0: of a dropped collection).
static void
s_dropped_key (uint32_t coll_id, int64_t partition, char *key, size_t size)
{
    if (partition < 0)
        snprintf (key, size, "%u/*", coll_id);
    else
        snprintf (key, size, "%u/%u", coll_id, (uint32_t) partition);
}

//  Forgets the growing segments of a collection (partition < 0) or of one of its
//  partitions, which are being dropped, and remembers the drop: an insert into it that
//  comes later (it waited for memory while the drop went ahead) would otherwise open a
//  growing segment that no collection holds, whose memory is never released.
static void
s_drop_growing (self_t *self, uint32_t coll_id, int64_t partition)
{
    char dkey [32];
    s_dropped_key (coll_id, partition, dkey, sizeof dkey);
    zhashx_update (self->dropped, dkey, (void *) 1);
    zlistx_t *keys = zhashx_keys (self->growing);
    for (char *k = zlistx_first (keys); k; k = zlistx_next (keys)) {
        unsigned coll, shard, part;
        if (sscanf (k, "%u/%u/%u", &coll, &shard, &part) != 3 || coll != coll_id
        ||  (partition >= 0 && part != partition))
            continue;
        s_growing_t *g = zhashx_lookup (self->growing, k);
        self->unflushed -= g->bytes < self->unflushed ? g->bytes : self->unflushed;
        zhashx_delete (self->growing, k);
    }
    zlistx_destroy (&keys);
    //  Its sealed segments too: no manifest will hold them, so no FLUSHED comes
    keys = zhashx_keys (self->sealed_bytes);
    for (char *k = zlistx_first (keys); k; k = zlistx_next (keys)) {
        s_sealed_t *sealed = zhashx_lookup (self->sealed_bytes, k);
        if (sealed->coll == coll_id && (partition < 0 || sealed->partition == partition))
            s_sealed_release (self, k);
    }
    zlistx_destroy (&keys);
}

//  Whether an insert goes to a partition or collection dropped before it was logged.
static bool
s_into_dropped (self_t *self, const qv_record_t *rec)
{
    char key [32];
    s_dropped_key (rec->coll_id, -1, key, sizeof key);
    if (zhashx_lookup (self->dropped, key))
        return true;
    s_dropped_key (rec->coll_id, rec->partition, key, sizeof key);
    return rec->num_partitions == 0 && zhashx_lookup (self->dropped, key);
}

static void
s_enqueue (self_t *self, qv_job_t *job)
{
    qv_record_t *rec = job->rec;
    if (rec && rec->type == QV_REC_INSERT && s_into_dropped (self, rec)) {
        char msg [400];
        snprintf (msg, sizeof msg, "the partition of collection '%s' this insert names was dropped "
                  "before the insert was logged; nothing was written", job->req.collection);
        qv_job_fail (job, QV_ENOTFOUND, msg);
        s_send_reply (self, job);
        return;
    }
    if (rec) {                      //  its commit timestamp, in log order
        if (rec->ts > self->last_ts)
            self->last_ts = rec->ts;
        rec->ts = s_next_ts (self);
    }
    if (rec && rec->type == QV_REC_CREATE_COLLECTION)
        rec->coll_id = self->next_coll_id++;
    if (rec && rec->type == QV_REC_INSERT)
        s_assign (self, job);
    //  Growing segments go with their collection or partition.
    if (rec && rec->type == QV_REC_DROP_COLLECTION)
        s_drop_growing (self, rec->coll_id, -1);
    if (rec && rec->type == QV_REC_DROP_PARTITION)
        s_drop_growing (self, rec->coll_id, rec->partition);
    if (rec && rec->type == QV_REC_INSERT)
        self->unflushed += job->bytes;  //  released when its segment is flushed
    qv_msg_apply_t *msg = qv_msg_apply_new ();
    msg->job = job;
    zlistx_add_end (self->queue, msg);
}

static void
s_kick_one (self_t *self);

//  Hands the queue to the writer while its window has room (none after a failure
//  until every group in flight is answered).
static void
s_kick (self_t *self)
{
    while (!self->halted && self->inflight < self->window && zlistx_size (self->queue) > 0) {
        int was = self->inflight;
        s_kick_one (self);
        if (self->inflight == was)
            break;
    }
}

//  Hands the next group of the queue to the writer.
static void
s_kick_one (self_t *self)
{
    s_group_t *group = calloc (1, sizeof *group);
    group->msgs = zlistx_new ();
    group->feed = self->feedpub ? self->config->feed_stats : NULL;
    size_t bytes = 0;
    qv_msg_t *msg;
    while ((msg = zlistx_first (self->queue))) {
        if (bytes > 0 && bytes + s_msg_bytes (msg) > self->config->group_max_bytes)
            break;
        zlistx_detach (self->queue, NULL);
        if (msg->id == QV_MSG_APPLY && s_stream_refuse (self, ((qv_msg_apply_t *) msg)->job, true)) {
            ((qv_msg_apply_t *) msg)->job = NULL;   //  answered
            qv_msg_destroy (&msg);
            continue;
        }
        bytes += s_msg_bytes (msg);
        zlistx_add_end (group->msgs, msg);
    }
    if (zlistx_size (group->msgs) == 0) {
        zlistx_destroy (&group->msgs);
        free (group);
        return;
    }
    self->inflight++;
    //  The stream sequences on their way to the WAL (s_stream_in_flight)
    for (qv_msg_t *m = zlistx_first (group->msgs); m; m = zlistx_next (group->msgs))
        if (m->id == QV_MSG_APPLY && s_sseq (((qv_msg_apply_t *) m)->job)) {
            uint64_t *grown = realloc (self->writing_sseq, (self->writing_n + 1) * sizeof (uint64_t));
            if (!grown)
                break;
            self->writing_sseq = grown;
            self->writing_sseq [self->writing_n++] = s_sseq (((qv_msg_apply_t *) m)->job);
            group->nsseq++;
        }
    zsock_send (self->writer, "sp8", "APPEND", group, (uint64_t) 0);
}

//  Admits held-back writes while memory allows; fails those past their deadline.
static void
s_admit (self_t *self)
{
    int64_t now = qv_clock_msec ();
    //  Only ever the head: zlistx_find + zlistx_detach move the list's cursor, and a
    //  walk with zlistx_next after them met the same job twice (it was logged and
    //  applied twice, and its reply freed it under the searcher: a crash).
    qv_job_t *job;
    while ((job = zlistx_first (self->waiting))) {
        if (job->rec->type != QV_REC_INSERT
        ||  self->unflushed + job->bytes <= self->config->max_unflushed) {
            zlistx_detach (self->waiting, NULL);
            s_enqueue (self, job);
        }
        else
        if (now >= job->deadline) {
            zlistx_detach (self->waiting, NULL);
            s_stream_failed (self, job);
            char msg [200];
            snprintf (msg, sizeof msg, "memory for unflushed rows is full (%zu MiB); the write was not logged, retry later",
                      self->config->max_unflushed >> 20);
            qv_job_fail (job, QV_ELIMIT, msg);
            s_send_reply (self, job);
            if (self->config->write_stats)
                atomic_fetch_add (&self->config->write_stats->refused, 1);
        }
        else
            break;                  //  keep arrival order
    }
}

//  Under memory pressure, seal the largest growing segment so a flush frees memory.
static void
s_relieve (self_t *self)
{
    if (self->unflushed < self->config->max_unflushed / 2)
        return;
    const char *best = NULL;
    size_t best_bytes = 0;
    for (s_growing_t *g = zhashx_first (self->growing); g; g = zhashx_next (self->growing))
        if (g->bytes > best_bytes) {
            best_bytes = g->bytes;
            best = zhashx_cursor (self->growing);
        }
    //  Writers waiting and nothing sealed on its way to the flusher (every growing
    //  segment small: many shards or partitions): seal the largest anyway, or they
    //  would wait in vain until the seal age.
    bool stuck = zlistx_size (self->waiting) > 0 && zhashx_size (self->sealed_bytes) == 0;
    if (best && (best_bytes > self->config->max_unflushed / 8 || stuck)) {
        char key [32];
        snprintf (key, sizeof key, "%s", best);
        s_seal (self, key, (uint32_t) atoi (key));
    }
}

static int
s_handle_writer (qv_loop_t *loop, zsock_t *reader, void *arg)
{
    (void) loop;
    self_t *self = arg;
    char *cmd;
    void *ptr;
    if (zsock_recv (reader, "sp", &cmd, &ptr) != 0)
        return 0;
    zstr_free (&cmd);
    s_group_t *group = ptr;
    if (self->feedpub && group->rc == 0)
        s_feed_group (self, group);
    free (group->wal_bytes);
    group->wal_bytes = NULL;
    qv_msg_t *msg;
    while ((msg = zlistx_detach (group->msgs, NULL))) {
        if (msg->id == QV_MSG_SEAL && group->rc) {
            //  Not logged: sealed once it is (followers learn seals from the log only)
            zlistx_add_end (self->unlogged, msg);
            continue;
        }
        if (msg->id == QV_MSG_FLUSH && group->rc) {
            qv_job_t *job = qv_msg_take_job (msg);
            qv_msg_destroy (&msg);
            char why [400];
            snprintf (why, sizeof why, "flush failed: the seal of its segments %s", group->error);
            qv_job_fail (job, QV_EUNAVAIL, why);
            s_send_reply (self, job);
            continue;
        }
        if (msg->id != QV_MSG_APPLY) {
            s_send_searcher (self, msg);    //  SEAL, FLUSH
            continue;
        }
        if (group->rc) {
            qv_job_t *job = qv_msg_take_job (msg);
            qv_msg_destroy (&msg);
            s_stream_failed (self, job);
            if (job->rec->type == QV_REC_DROP_PARTITION || job->rec->type == QV_REC_DROP_COLLECTION) {
                //  Not dropped after all (its growing segments stay forgotten).
                char dkey [32];
                s_dropped_key (job->rec->coll_id, job->rec->type == QV_REC_DROP_COLLECTION
                               ? -1 : (int64_t) job->rec->partition, dkey, sizeof dkey);
                zhashx_delete (self->dropped, dkey);
            }
            if (job->rec->type == QV_REC_INSERT)
                self->unflushed -= job->bytes < self->unflushed ? job->bytes : self->unflushed;
            qv_job_fail (job, QV_EUNAVAIL, group->error);
            s_send_reply (self, job);
        }
        else {
            qv_msg_apply_t *apply = (qv_msg_apply_t *) msg;
            apply->seq = group->seq;
            if (s_sseq (apply->job)
            &&  qv_stream_ledger_add (self->ledger, s_sseq (apply->job)) != 0)
                qv_error ("out of memory in the stream ledger: stream message %llu, if sent "
                          "again, would be logged again", (unsigned long long) s_sseq (apply->job));

            uint64_t ts = apply->job->rec->ts;
            qv_job_t *ack = apply->job->rec->type == QV_REC_INSERT ? qv_job_insert_ack (apply->job)
                          : apply->job->rec->type == QV_REC_DELETE ? qv_job_delete_ack (apply->job)
                          : NULL;
            apply->acked = ack != NULL;
            //  The record goes first, so it is on its way to the searcher before the
            //  client can read (a read waits for it anyway: its guarantee timestamp).
            s_send_searcher (self, msg);
            if (ack)                //  durable: the client has its answer now
                s_send_reply_ts (self, ack, ts);
        }
    }
    int group_rc = group->rc;
    if (group->rc) {
        qv_error ("%s", group->error);
        self->halted = true;
    }
    //  Its stream sequences are the first in flight
    if (group->nsseq) {             //  (writing_sseq is NULL until the first)
        memmove (self->writing_sseq, self->writing_sseq + group->nsseq,
                 (self->writing_n - group->nsseq) * sizeof (uint64_t));
        self->writing_n -= group->nsseq;
    }
    zlistx_destroy (&group->msgs);
    free (group);
    self->inflight--;
    if (self->halted && self->inflight == 0) {
        //  Every group of the failed window is answered: the seals go first in the
        //  queue again, in their order, and the writer takes groups again
        while ((msg = zlistx_last (self->unlogged))) {
            zlistx_detach_cur (self->unlogged);
            zlistx_add_start (self->queue, msg);
        }
        self->halted = false;
        zsock_send (self->writer, "sp8", "RESUME", NULL, (uint64_t) 0);
    }
    if (self->truncate_to) {
        zsock_send (self->writer, "sp8", "TRUNCATE", NULL, self->truncate_to);
        self->truncate_to = 0;
    }
    if (!self->terminating) {       //  at $TERM the queue is answered, not written
        s_admit (self);
        if (!group_rc)              //  after a failure the timer writes again
            s_kick (self);
    }
    s_publish (self);
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
    if (msg->id == QV_MSG_FLUSH) {
        uint32_t coll = (uint32_t) ((qv_msg_flush_t *) msg)->coll;
        char prefix [16];
        snprintf (prefix, sizeof prefix, "%u/", coll);
        zlistx_t *keys = zhashx_keys (self->growing);
        for (char *k = zlistx_first (keys); k; k = zlistx_next (keys))
            if (strncmp (k, prefix, strlen (prefix)) == 0)
                s_seal (self, k, coll);
        zlistx_destroy (&keys);
        zlistx_add_end (self->queue, msg);  //  to the searcher after the seals
        msg = NULL;
        s_kick (self);
    }
    else
    if (msg->id == QV_MSG_WRITE) {
        qv_job_t *job = qv_msg_take_job (msg);
        qv_stream_hold_arrive (&self->hold, s_sseq (job), job->sgen);
        if (s_stream_again (self, job) || s_stream_refuse (self, job, false))
            ;
        else
        if (self->terminating) {
            qv_job_fail (job, QV_EUNAVAIL, "the server is shutting down");
            s_send_reply (self, job);
        }
        else
        if (job->rec->type == QV_REC_INSERT && job->bytes > self->config->max_unflushed) {
            //  It would never fit: no use waiting
            char msg [200];
            snprintf (msg, sizeof msg, "the batch takes %zu MiB in memory, more than the %zu MiB for "
                      "unflushed rows (--max-unflushed-mb); send smaller batches",
                      (job->bytes + (1u << 20) - 1) >> 20, self->config->max_unflushed >> 20);
            s_stream_failed (self, job);
            qv_job_fail (job, QV_ELIMIT, msg);
            s_send_reply (self, job);
            if (self->config->write_stats)
                atomic_fetch_add (&self->config->write_stats->refused, 1);
        }
        else
        if (job->rec->type == QV_REC_INSERT && s_over_budget (self, job))
            ;                       //  refused: the memory budget
        else
        if ((job->rec->type == QV_REC_INSERT
         &&  (zlistx_size (self->waiting) > 0
          ||  self->unflushed + job->bytes > self->config->max_unflushed))
        ||  (s_sseq (job) && zlistx_size (self->waiting) > 0)) {
            //  (a stream write of another kind waits behind them, in stream order; it
            //  needs no memory, so it goes on as soon as it is first in line)
            job->deadline = qv_clock_msec () + self->config->backpressure_ms;
            zlistx_add_end (self->waiting, job);
            if (self->config->write_stats)
                atomic_fetch_add (&self->config->write_stats->waited, 1);
            s_relieve (self);
        }
        else
            s_enqueue (self, job);
        s_kick (self);
    }
    else
    if (msg->id == QV_MSG_FLUSHED) {
        char seg [32];
        snprintf (seg, sizeof seg, "%llu", (unsigned long long) ((qv_msg_flushed_t *) msg)->seg);
        s_sealed_release (self, seg);
        s_admit (self);
        s_kick (self);
    }
    else
    if (msg->id == QV_MSG_CHECKPOINT) {
        uint64_t cp = ((qv_msg_checkpoint_t *) msg)->seq;
        zsock_send (self->writer, "sp8", "TRUNCATE", NULL, cp);
    }
    else
        qv_error ("protocol error: the segment manager does not take %s; dropped",
                  qv_msg_name (msg->id));
    qv_msg_destroy (&msg);
    s_publish (self);
    return 0;
}

static int
s_handle_timer (qv_loop_t *loop, int timer_id, void *arg)
{
    (void) loop;
    (void) timer_id;
    self_t *self = arg;
    int64_t now = qv_clock_msec ();
    zlistx_t *keys = zhashx_keys (self->growing);
    for (char *k = zlistx_first (keys); k; k = zlistx_next (keys)) {
        s_growing_t *g = zhashx_lookup (self->growing, k);
        if (now - g->created_ms >= (int64_t) self->config->seal_age_sec * 1000)
            s_seal (self, k, (uint32_t) atoi (k));
    }
    zlistx_destroy (&keys);
    s_admit (self);
    s_relieve (self);
    s_kick (self);
    s_publish (self);
    //  Idle: tell the searcher how far the shard has got (a write in flight holds
    //  records with timestamps below the next one, not yet sent).
    if (self->inflight == 0 && zlistx_size (self->queue) == 0) {
        qv_msg_tick_t *tick = qv_msg_tick_new ();
        tick->shard = 0;
        tick->ts = s_next_ts (self);
        if (self->feedpub) {
            qv_msg_feed_tick_t *ft = qv_msg_feed_tick_new ();
            ft->ts = tick->ts;
            ft->next_seq = self->feed_next;
            s_feed_post (self, (qv_msg_t *) ft);
        }
        s_send_searcher (self, (qv_msg_t *) tick);
    }
    return 0;
}

static int
s_handle_pipe (qv_loop_t *loop, zsock_t *reader, void *arg)
{
    (void) loop;
    self_t *self = arg;
    char *cmd = zstr_recv (reader);
    int rc = 0;
    if (!cmd || streq (cmd, "$TERM"))
        rc = -1;
    zstr_free (&cmd);
    if (rc == -1)
        self->terminating = true;
    return rc;
}

void
qv_segmgr_actor (zsock_t *pipe, void *args_)
{
    qv_segmgr_args_t *args = args_;
    self_t *self = calloc (1, sizeof *self);
    self->config = args->config;
    self->pipe = pipe;
    self->wal = args->wal;
    self->next_coll_id = args->next_coll_id;
    self->next_seg_id = args->next_seg_id;
    self->last_ts = args->max_ts;
    self->ledger = qv_stream_ledger_new (args->stream_seq);
    assert (self->ledger);
    self->unflushed = args->unflushed_bytes;
    self->queue = zlistx_new ();
    self->waiting = zlistx_new ();
    self->growing = zhashx_new ();
    zhashx_set_destructor (self->growing, s_item_free);
    self->sealed_bytes = zhashx_new ();
    zhashx_set_destructor (self->sealed_bytes, s_item_free);
    self->dropped = zhashx_new ();
    char ep [256];
    qv_config_endpoint (self->config, "segmgr", ep, sizeof ep);
    self->inbox = zsock_new_pull (ep);
    self->searcher = qv_config_push (self->config, "searcher");
    self->proxy = qv_config_push (self->config, "proxy");
    if (self->config->feed_stats) {
        qv_config_endpoint (self->config, "feedpub", ep, sizeof ep);
        self->feedpub = zsock_new (ZMQ_PUSH);
        zsock_set_sndhwm (self->feedpub, S_FEED_HWM);
        zsock_set_linger (self->feedpub, 0);
        zsock_connect (self->feedpub, "%s", ep);
        self->feed_next = qv_wal_next_seq (self->wal);
    }
    //  Several WAL puts in flight pay where a put's latency is the limit (S3); on
    //  the filesystem one at a time (README, "S3")
    self->window = self->config->wal_window ? self->config->wal_window
                 : self->config->s3_endpoint [0] ? QV_WAL_WINDOW : 1;
    self->unlogged = zlistx_new ();
    s_writer_args_t writer_args = { self->wal, self->window };
    self->writer = zactor_new (s_writer_actor, &writer_args);
    //  Recovered segments are sealed first, so the flusher writes them.
    for (char *s = zlist_first (args->seal); s; s = zlist_next (args->seal)) {
        unsigned coll, part;
        unsigned long long seg, bytes;
        if (sscanf (s, "%u/%llu/%llu/%u", &coll, &seg, &bytes, &part) == 4) {
            s_queue_seal (self, coll, seg);
            s_sealed_add (self, seg, (size_t) bytes, coll, part);
        }
    }
    zlist_destroy (&args->seal);
    zsock_signal (pipe, 0);
    s_kick (self);
    s_publish (self);

    qv_loop_t *loop = qv_loop_new ();
    //  Stop on $TERM only: SIGINT/SIGTERM belong to main, which stops the actors in order
    //  (the segment manager first, so that the write in flight reaches the searcher).
    qv_loop_set_nonstop (loop, true);
    qv_loop_reader (loop, pipe, s_handle_pipe, self);
    //  Only s_handle_pipe reads or answers the pipe (no other handler holds it): it is
    //  asked for events only when its fd fires or after s_handle_pipe
    qv_loop_reader_set_private (loop, pipe);
    qv_loop_reader (loop, self->inbox, s_handle_inbox, self);
    qv_loop_reader (loop, zactor_sock (self->writer), s_handle_writer, self);
    qv_loop_timer (loop, 100, 0, s_handle_timer, self);
    qv_loop_set_nonstop (loop, true);
    qv_loop_start (loop);
    qv_loop_destroy (&loop);

    //  Finish the group in flight so nothing acknowledged is half-done.
    zsock_set_rcvtimeo (zactor_sock (self->writer), 25000);
    while (self->inflight > 0) {
        int was = self->inflight;
        s_handle_writer (NULL, zactor_sock (self->writer), self);
        if (self->inflight == was)
            break;                  //  no answer in 25 s
    }
    zactor_destroy (&self->writer);
    //  Requests the proxy routed before it stopped routing: refused, not lost
    qv_msg_t *msg;
    while ((msg = qv_msg_recv_nowait (self->inbox)) || (msg = zlistx_detach (self->queue, NULL))) {
        qv_job_t *job = qv_msg_take_job (msg);     //  WRITE, FLUSH, APPLY
        if (job) {
            qv_job_fail (job, QV_EUNAVAIL, "the server is shutting down; the write was not logged");
            s_send_reply (self, job);
        }
        qv_msg_destroy (&msg);
    }
    qv_job_t *job;
    while ((job = zlistx_detach (self->waiting, NULL))) {
        qv_job_fail (job, QV_EUNAVAIL, "the server is shutting down; the write was not logged");
        s_send_reply (self, job);
    }
    zlistx_destroy (&self->queue);
    zlistx_destroy (&self->waiting);
    while ((msg = zlistx_detach (self->unlogged, NULL)))
        qv_msg_destroy (&msg);
    zlistx_destroy (&self->unlogged);
    zhashx_destroy (&self->growing);
    qv_stream_ledger_destroy (&self->ledger);
    free (self->writing_sseq);
    zhashx_destroy (&self->sealed_bytes);
    zhashx_destroy (&self->dropped);
    qv_wal_destroy (&self->wal);
    zsock_destroy (&self->inbox);
    zsock_destroy (&self->searcher);
    zsock_destroy (&self->proxy);
    zsock_destroy (&self->feedpub);
    free (self);
}
