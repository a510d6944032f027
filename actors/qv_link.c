//  Link actor: in a proxy process (`quiver serve --roles proxy [--writer ENDPOINT]`),
//  stands where the segment manager and the searcher stand in the embedded server:
//  what the proxy sends them goes to the writer core's intake (actors/qv_intake.c)
//  over ZeroMQ TCP, and what comes back goes to the proxy. Without --writer it finds
//  the core in NATS (the core's entry in the membership bucket) and follows it when
//  another core takes the write lease over.
//
//  @interface (messages: schemas/qv_msg.h)
//    pipe  $TERM                 stop (jobs in flight are answered UNAVAILABLE)
//  takes (PULL inproc "segmgr"): WRITE {job}, FLUSH {coll, job}, HELLO {} (send the
//                                catalog again: a request named a collection the proxy
//                                does not know)   from the proxy
//  takes (PULL inproc "searcher"): READ {job, guarantee_ts}   from the proxy (a
//                                delete to resolve, a read of the catalog, stats ...;
//                                and strong searches, queries and gets, whose
//                                guarantee this actor completes; the others go to
//                                searcher processes directly)
//  takes (DEALER to --writer): CATALOG {max_ts, views}, WRITER_DOWN {reason},
//                                REPLY {job, ts}, RESOLVED {job}
//  takes (NATS "$KV.quiver_members.<store>.core.*", bus/qv_members.h, without
//                                --writer): {endpoint, ready, epoch} of writer cores
//  sends:
//    HELLO {}                    to the writer core, on every connection
//    WRITER_TS {shard, ts: 0, ask}   to the writer core: its newest commit timestamp
//                                (numbered; the same question again after a second
//                                without an answer, whose answer only is taken)
//    READ {job, guarantee_ts}    to the fan-out (inproc "fanout"): a strong read,
//                                with that timestamp as its guarantee
//    WRITE, FLUSH, READ          to the writer core
//    VIEWS {max_ts, views, writer}   to the proxy: the writer core's catalog (serve)
//                                and its endpoint
//    WRITER_DOWN {reason}        to the proxy: the writer core is not reachable, or
//                                not serving
//    REPLY {job, ts}, RESOLVED {job}   to the proxy
//
//  DESIGN
//  The DEALER is ZMQ_IMMEDIATE: a message for a writer core that is not connected is
//  refused at once (UNAVAILABLE), never queued for one that may come back later. A
//  socket monitor sees connections (their handshakes, after which a message can go):
//  on each, HELLO asks for the catalog, which the
//  proxy takes as its own (it may have missed DDL made through another proxy). Every
//  job sent is kept until its reply comes back; when the connection drops, each is
//  answered UNAVAILABLE (its outcome is unknown: the writer may have logged it), and
//  so is one left without a reply for S_REPLY_LIMIT_MS (60 s). ZMTP heartbeats find
//  a core that went silent without closing the connection (qv_actor_dealer). A job's
//  deadline travels as the milliseconds left.
//  The order of a JetStream stream's writes (job->sseq) must survive a lost connection:
//  a stream write that fails here (not sent, or in flight when the connection dropped)
//  holds every later one (UNAVAILABLE) until the bridge sends it again; the intake
//  takes stream writes from the newest connection only, so one of an old connection
//  that arrives late is refused, not logged out of order; and the segment manager
//  answers one it has logged before without logging it twice.
//  Strong reads: a write acknowledged through another proxy process is not in this
//  proxy's newest acknowledged timestamp, so a strong search, query or get waits here
//  for the writer core's (every read waiting when a question leaves shares its
//  answer; reads arriving meanwhile wait for the next question), then goes to the
//  fan-out with it as its guarantee. While the core is not reachable, strong reads are
//  answered UNAVAILABLE.
//  Finding the core (no --writer): a core puts its entry every second while it holds
//  the write lease, with the lease's epoch. The link connects to the ready entry of
//  the highest epoch it has heard of; an entry of a higher epoch (a standby core took
//  the lease over from a dead one) moves it: the old connection is closed (its jobs
//  in flight answered UNAVAILABLE, as on a lost connection) and a new DEALER, with a
//  new monitor, connects to the new endpoint, so no event of the old one is taken for
//  the new one's. Lower epochs (a deposed core still announcing) are ignored.
#include "qv_link.h"
#include "qv_stream_hold.h"
#include "qv_actor.h"
#include "qv_bus.h"
#include "qv_members.h"
#include "qv_msg.h"
#include "qv_rc.h"
#include "qv_recover.h"

typedef struct {
    const qv_config_t *config;
    zsock_t *from_segmgr;
    zsock_t *from_searcher;
    zsock_t *dealer;
    zsock_t *monitor;
    zsock_t *proxy;
    zhashx_t *pending;              //  job id -> s_sent_t *: sent, not yet answered
    bool connected;
    char writer [256];              //  the endpoint ("" while none is known)
    qv_loop_t *loop;
    uint64_t monitors;              //  monitor endpoints made, for unique names
    qv_bus_t *bus;                  //  without --writer: NATS, for the core's entry
    zsock_t *cores;                 //  PULL: natsMsg * of the cores' entries
    char subject [512];
    bool subscribed;
    int64_t warned_ms;
    uint64_t epoch;                 //  the epoch of the core at writer (0: unknown)
    int stream_sent;                //  stream writes sent (test hook QV_FAULT_LINK_BLIP)
    qv_stream_hold_t hold;          //  a stream write failed here: later ones are refused
    zsock_t *fanout;                //  PUSH to the fan-out: strong reads, guaranteed
    zlistx_t *waiting;              //  qv_msg_read_t *: strong reads for the next question
    zlistx_t *asked;                //  ... and those the question out will answer
    bool asking;
    int64_t asked_ms;               //  when the question went (or was last sent again)
    uint64_t ask;                   //  its number (WRITER_TS's ask)
} self_t;

//  A question for the core's newest commit timestamp unanswered this long is sent
//  again (the core drops an answer it cannot send at once).
#define S_ASK_RETRY_MS 1000
//  A job sent to the core and not answered within this long is answered UNAVAILABLE
//  here, its outcome unknown, as on a lost connection: the core drops a reply it
//  cannot send at once (a proxy that stopped reading), and a stream write waiting
//  for one forever would stall its stream for good.
#define S_REPLY_LIMIT_MS 60000

typedef struct {
    qv_job_t *job;
    int64_t sent_ms;
} s_sent_t;

//  A job's deadline as the milliseconds left (0: none; an expired one stays
//  negative), and back.
static int64_t
s_deadline_out (int64_t deadline)
{
    if (deadline == 0)
        return 0;
    int64_t left = deadline - qv_clock_msec ();
    return left != 0 ? left : -1;
}

//  Where the writer core is, for messages.
static const char *
s_where (self_t *self)
{
    return self->writer [0] ? self->writer : "(not announced in NATS yet)";
}

//  Tells the proxy the writer core is not reachable (or not serving), saying why.
static void
s_writer_down (self_t *self, const char *why)
{
    qv_msg_writer_down_t *m = qv_msg_writer_down_new ();
    free (m->reason);
    m->reason = strdup (why);
    if (qv_msg_post (self->proxy, &m) != 0)
        qv_msg_free (&m);
}

//  Answers job rc (why) to the proxy.
static void
s_answer (self_t *self, qv_job_t *job, int rc, const char *why)
{
    qv_job_fail (job, rc, why);
    qv_msg_reply_t *reply = qv_msg_reply_new ();
    reply->job = job;
    if (qv_msg_post (self->proxy, &reply) != 0)
        qv_msg_free (&reply);
}

//  Answers job UNAVAILABLE (why) to the proxy. A stream write's failure holds the later
//  ones (s_handle_local) until the bridge sends it again.
static void
s_fail (self_t *self, qv_job_t *job, const char *why)
{
    qv_stream_hold_set (&self->hold, job->sseq, job->sgen);
    s_answer (self, job, QV_EUNAVAIL, why);
}

//  Every job in flight answered UNAVAILABLE: the connection is gone.
static void
s_fail_pending (self_t *self, const char *why)
{
    zlistx_t *sent = zhashx_values (self->pending);
    zhashx_purge (self->pending);
    for (s_sent_t *s = zlistx_first (sent); s; s = zlistx_next (sent)) {
        s_fail (self, s->job, why);
        free (s);
    }
    zlistx_destroy (&sent);
}

//  Jobs sent S_REPLY_LIMIT_MS ago or more (or the test hook's limit), unanswered:
//  answered UNAVAILABLE.
static void
s_fail_overdue (self_t *self, int64_t now)
{
    int limit = self->config->link_reply_limit_ms > 0 ? self->config->link_reply_limit_ms
                                                      : S_REPLY_LIMIT_MS;
    zlistx_t *keys = NULL;
    for (s_sent_t *s = zhashx_first (self->pending); s; s = zhashx_next (self->pending))
        if (now - s->sent_ms >= limit) {
            if (!keys)
                keys = zlistx_new ();
            zlistx_add_end (keys, strdup ((const char *) zhashx_cursor (self->pending)));
        }
    if (!keys)
        return;
    char why [400];
    snprintf (why, sizeof why, "no reply from the writer core at %s within %d ms: the request "
              "may or may not have been applied", s_where (self), limit);
    qv_warn ("link: %zu requests sent to the writer core at %s had no reply within %d ms; "
             "answered UNAVAILABLE", zlistx_size (keys), s_where (self), limit);
    for (char *key = zlistx_first (keys); key; key = zlistx_next (keys)) {
        s_sent_t *s = zhashx_lookup (self->pending, key);
        zhashx_delete (self->pending, key);
        if (s) {
            s_fail (self, s->job, why);
            free (s);
        }
        free (key);
    }
    zlistx_destroy (&keys);
}

//  Encodes msg and sends it to the writer core. -1 if it cannot go now (not
//  connected): the message stays the caller's.
static int
s_send (self_t *self, const qv_msg_t *msg)
{
    qv_wr_t *w = qv_wr_new ();
    if (qv_msg_encode (msg, w) != 0) {
        qv_error ("link: cannot encode %s: %s", qv_msg_name (msg->id), qv_err_msg ());
        qv_wr_destroy (&w);
        return -1;
    }
    size_t size;
    const void *data = qv_wr_data (w, &size);
    int rc = zmq_send (zsock_resolve (self->dealer), data, size, ZMQ_DONTWAIT) < 0 ? -1 : 0;
    qv_wr_destroy (&w);
    return rc;
}

//  Asks the writer core for its newest commit timestamp, for the strong reads waiting.
//  Sends question number ask for the core's newest commit timestamp; 0 if it went
//  (asked_ms is then now).
static int
s_send_question (self_t *self, uint64_t ask)
{
    qv_msg_writer_ts_t *q = qv_msg_writer_ts_new ();
    q->ask = ask;
    int rc = s_send (self, (qv_msg_t *) q);
    qv_msg_free (&q);
    if (rc == 0)
        self->asked_ms = qv_clock_msec ();
    return rc;
}

static void
s_ask (self_t *self)
{
    if (self->asking || zlistx_size (self->waiting) == 0 || !self->connected)
        return;
    if (s_send_question (self, self->ask + 1) == 0) {
        self->ask++;
        self->asking = true;
        qv_msg_read_t *r;
        while ((r = zlistx_detach (self->waiting, NULL)))
            zlistx_add_end (self->asked, r);
    }
}

//  Strong reads of lists answered UNAVAILABLE (why).
static void
s_strong_fail (self_t *self, zlistx_t *list, const char *why)
{
    qv_msg_read_t *r;
    while ((r = zlistx_detach (list, NULL))) {
        s_fail (self, qv_msg_take_job ((qv_msg_t *) r), why);
        qv_msg_free (&r);
    }
}

//  The request of an insert or upsert without its rows, which its record holds: op,
//  collection and rid (what the writer core answers with). 0, or an error.
static int
s_slim (const qv_req_t *req, qv_req_t *slim)
{
    const qv_val_t *rid = req->f [QV_F_rid];
    qv_wr_t *w = qv_wr_new ();
    qv_wr_map (w, rid ? 3 : 2);
    qv_wr_str (w, "op"); qv_wr_str (w, qv_op_name (req->op));
    qv_wr_str (w, "collection"); qv_wr_str (w, req->collection);
    if (rid) {
        qv_wr_str (w, "rid");
        qv_wr_val (w, rid);
    }
    size_t size;
    const void *data = qv_wr_data (w, &size);
    int rc = qv_req_parse (data, size, 64, slim);
    qv_wr_destroy (&w);
    return rc;
}

static void
s_swap (qv_req_t *a, qv_req_t *b)
{
    qv_req_t t = *a;
    *a = *b;
    *b = t;
}

//  Strong reads of list past their deadline answered TIMEOUT.
static void
s_expire (self_t *self, zlistx_t *list, int64_t now)
{
    for (qv_msg_read_t *r = zlistx_first (list); r; r = zlistx_next (list)) {
        if (r->job->deadline == 0 || r->job->deadline > now)
            continue;
        zlistx_detach_cur (list);
        char why [400];
        snprintf (why, sizeof why, "a strong read waits for the newest commit timestamp of "
                  "the writer core at %s, which did not answer within the request's "
                  "deadline", s_where (self));
        s_answer (self, qv_msg_take_job ((qv_msg_t *) r), QV_ETIMEOUT, why);
        qv_msg_free (&r);
    }
}

//  Every 250 ms: strong reads past their deadline answered TIMEOUT; a question for the
//  newest commit timestamp unanswered for S_ASK_RETRY_MS sent again; reads left
//  waiting by a question that could not be sent asked again.
static int
s_handle_tick (qv_loop_t *loop, int timer_id, void *arg)
{
    (void) loop;
    (void) timer_id;
    self_t *self = arg;
    int64_t now = qv_clock_msec ();
    s_expire (self, self->waiting, now);
    s_expire (self, self->asked, now);
    s_fail_overdue (self, now);
    if (self->asking && self->connected && now - self->asked_ms >= S_ASK_RETRY_MS)
        s_send_question (self, self->ask);  //  the same question again (every read it
                                            //  covers arrived before it first went)
    s_ask (self);
    return 0;
}

static void s_dealer_close (self_t *self);
static void s_dealer_open (self_t *self, const char *endpoint);

//  A message of the proxy's for the writer core.
static int
s_handle_local (qv_loop_t *loop, zsock_t *reader, void *arg)
{
    (void) loop;
    self_t *self = arg;
    qv_msg_t *msg = qv_msg_recv (reader);
    if (!msg)
        return 0;
    qv_job_t *job = msg->id == QV_MSG_WRITE ? ((qv_msg_write_t *) msg)->job
                  : msg->id == QV_MSG_FLUSH ? ((qv_msg_flush_t *) msg)->job
                  : msg->id == QV_MSG_READ ? ((qv_msg_read_t *) msg)->job : NULL;
    if (msg->id == QV_MSG_HELLO) {
        //  The proxy missed a collection: the catalog again
        if (!self->connected || s_send (self, msg) != 0)
            s_writer_down (self, "the writer core is not reachable; retry when it is back");
        qv_msg_destroy (&msg);
        return 0;
    }
    if (!job) {
        qv_error ("protocol error: the link does not take %s; dropped", qv_msg_name (msg->id));
        qv_msg_destroy (&msg);
        return 0;
    }
    if (qv_stream_hold_blocks (&self->hold, job->sseq, job->sgen)) {
        //  The stream's order (qv_stream_hold.h)
        char why [200];
        snprintf (why, sizeof why, "stream message %llu failed on its way to the writer "
                  "core; this one waits until it is sent again",
                  (unsigned long long) self->hold.sseq);
        qv_job_fail (qv_msg_take_job (msg), QV_EUNAVAIL, why);
        qv_msg_reply_t *reply = qv_msg_reply_new ();
        reply->job = job;
        if (qv_msg_post (self->proxy, &reply) != 0)
            qv_msg_free (&reply);
        qv_msg_destroy (&msg);
        return 0;
    }
    qv_op_t op = job->req.op;
    if (msg->id == QV_MSG_READ && (op == QV_OP_search || op == QV_OP_query || op == QV_OP_get)) {
        //  A strong read of data: its guarantee is the writer core's newest commit
        //  timestamp, asked after it arrived (one question serves every read waiting)
        if (!self->connected) {
            char why [600];
            snprintf (why, sizeof why, "a strong read needs the newest commit timestamp of "
                      "the writer core at %s, which is not reachable (reads at consistency "
                      "bounded, session or eventually go on)", s_where (self));
            s_fail (self, qv_msg_take_job (msg), why);
            qv_msg_destroy (&msg);
            return 0;
        }
        zlistx_add_end (self->waiting, msg);
        s_ask (self);
        return 0;
    }
    int64_t deadline = job->deadline;
    job->deadline = s_deadline_out (deadline);
    //  An insert's rows travel in its record: its request goes without them
    qv_req_t slim = { 0 };
    bool slimmed = job->rec && job->rec->type == QV_REC_INSERT && s_slim (&job->req, &slim) == 0;
    if (slimmed)
        s_swap (&job->req, &slim);
    int rc = self->connected ? s_send (self, msg) : -1;
    if (slimmed) {
        s_swap (&job->req, &slim);
        qv_req_free (&slim);
    }
    job->deadline = deadline;
    job = qv_msg_take_job (msg);
    qv_msg_destroy (&msg);
    //  Kept only to be answered if the connection drops: its record (whose rows point
    //  into the proxy's schema, which a drop may free before this job's reply comes
    //  back) is not needed for that
    qv_record_destroy (&job->rec);
    if (rc) {
        char why [400];
        snprintf (why, sizeof why, "the writer core at %s is not reachable; retry when it "
                  "is back", s_where (self));
        s_fail (self, job, why);
        return 0;
    }
    char key [32];
    snprintf (key, sizeof key, "%llu", (unsigned long long) job->id);
    s_sent_t *sent = malloc (sizeof *sent);
    assert (sent);
    *sent = (s_sent_t) { job, qv_clock_msec () };
    zhashx_update (self->pending, key, sent);
    if (job->sseq && ++self->stream_sent == self->config->fault_link_blip) {
        char endpoint [sizeof self->writer];
        snprintf (endpoint, sizeof endpoint, "%s", self->writer);
        qv_warn ("link: dropping the connection to the writer core (QV_FAULT_LINK_BLIP)");
        s_dealer_close (self);
        s_dealer_open (self, endpoint);
    }
    return 0;
}

//  A message of the writer core's.
static int
s_handle_dealer (qv_loop_t *loop, zsock_t *reader, void *arg)
{
    (void) loop;
    self_t *self = arg;
    //  Never a blocking read (qv_actor_recv says why): this one waited forever when the
    //  core was killed with its reply unread, and the link, stuck, never greeted the
    //  core that came back
    zframe_t *frame = zframe_recv_nowait (reader);
    if (!frame)
        return 0;
    qv_msg_t *msg = NULL;
    //  Replies carry no insert records (an insert's acknowledgement holds only its
    //  reply), so no schema is needed to decode them
    int rc = qv_msg_decode (zframe_data (frame), zframe_size (frame), NULL, NULL, &msg);
    zframe_destroy (&frame);
    if (rc) {
        qv_error ("link: protocol error from the writer core at %s: %s; dropped",
                  self->writer, qv_err_msg ());
        return 0;
    }
    if (msg->id == QV_MSG_CATALOG) {
        qv_msg_catalog_t *c = (qv_msg_catalog_t *) msg;
        zlist_t *views;
        if (qv_coll_views_read (c->views.data, c->views.size, &views) != 0) {
            qv_error ("link: the writer core at %s sent a catalog this process cannot "
                      "read: %s", self->writer, qv_err_msg ());
            s_writer_down (self, "the writer core's catalog could not be read (see the log)");
        }
        else {
            qv_info ("link: connected to the writer core at %s (%zu collections)",
                     self->writer, zlist_size (views));
            qv_msg_views_t *v = qv_msg_views_new ();
            v->max_ts = c->max_ts;
            v->views = views;
            free (v->writer);
            v->writer = strdup (self->writer);
            v->users = c->users;        //  moved
            c->users.data = NULL;
            c->users.size = 0;
            if (qv_msg_post (self->proxy, &v) != 0) {
                zlist_destroy (&views);
                qv_msg_free (&v);
            }
        }
        qv_msg_destroy (&msg);
        return 0;
    }
    if (msg->id == QV_MSG_WRITER_DOWN) {
        if (qv_msg_post (self->proxy, &msg) != 0)
            qv_msg_destroy (&msg);
        return 0;
    }
    if (msg->id == QV_MSG_WRITER_TS) {
        uint64_t ts = ((qv_msg_writer_ts_t *) msg)->ts;
        bool ours = self->asking && ((qv_msg_writer_ts_t *) msg)->ask == self->ask;
        qv_msg_destroy (&msg);
        if (!ours)
            return 0;               //  a second answer to a question answered already
        qv_msg_read_t *r;
        while ((r = zlistx_detach (self->asked, NULL))) {
            if (ts > r->guarantee_ts)
                r->guarantee_ts = ts;
            if (qv_msg_post (self->fanout, &r) != 0)
                qv_msg_free (&r);
        }
        self->asking = false;
        s_ask (self);
        return 0;
    }
    if (msg->id != QV_MSG_REPLY && msg->id != QV_MSG_RESOLVED) {
        qv_error ("link: protocol error: the writer core sent %s; dropped", qv_msg_name (msg->id));
        qv_msg_destroy (&msg);
        return 0;
    }
    qv_job_t *job = msg->id == QV_MSG_REPLY ? ((qv_msg_reply_t *) msg)->job
                                            : ((qv_msg_resolved_t *) msg)->job;
    if (job->deadline)
        job->deadline += qv_clock_msec ();
    if (job->id) {
        char key [32];
        snprintf (key, sizeof key, "%llu", (unsigned long long) job->id);
        s_sent_t *sent = zhashx_lookup (self->pending, key);
        if (!sent) {
            //  Already answered UNAVAILABLE (the connection dropped meanwhile, or no
            //  reply came in time)
            qv_msg_destroy (&msg);
            return 0;
        }
        zhashx_delete (self->pending, key);
        qv_job_destroy (&sent->job);
        free (sent);
    }
    if (qv_msg_post (self->proxy, &msg) != 0)
        qv_msg_destroy (&msg);
    return 0;
}

//  The connection to the core is gone (or given up for another core's): every job in
//  flight answered UNAVAILABLE, the proxy told.
static void
s_lost (self_t *self)
{
    self->connected = false;
    char why [400];
    snprintf (why, sizeof why, "the connection to the writer core at %s was lost with "
              "this request in flight: it may or may not have been applied", self->writer);
    size_t n = zhashx_size (self->pending);
    n += zlistx_size (self->waiting) + zlistx_size (self->asked);
    qv_warn ("link: lost the connection to the writer core at %s (%zu requests in "
             "flight answered UNAVAILABLE)", self->writer, n);
    s_fail_pending (self, why);
    s_strong_fail (self, self->asked, why);
    s_strong_fail (self, self->waiting, why);
    self->asking = false;
    snprintf (why, sizeof why, "the writer core at %s is not reachable; retry when it "
              "is back", self->writer);
    s_writer_down (self, why);
}

static int
s_handle_monitor (qv_loop_t *loop, zsock_t *reader, void *arg)
{
    (void) loop;
    self_t *self = arg;
    uint16_t id = qv_actor_monitor_event (reader);
    if (id == ZMQ_EVENT_HANDSHAKE_SUCCEEDED) {
        self->connected = true;
        qv_msg_hello_t *hello = qv_msg_hello_new ();
        if (s_send (self, (qv_msg_t *) hello) != 0)
            qv_warn ("link: cannot greet the writer core at %s", self->writer);
        qv_msg_free (&hello);
    }
    else
    if (id == ZMQ_EVENT_DISCONNECTED && self->connected)
        s_lost (self);
    return 0;
}

//  Closes the connection to the core, if any (its jobs answered as lost).
static void
s_dealer_close (self_t *self)
{
    if (self->connected)
        s_lost (self);
    if (self->monitor) {
        qv_loop_reader_end (self->loop, self->monitor);
        zmq_socket_monitor (zsock_resolve (self->dealer), NULL, 0);
        zsock_destroy (&self->monitor);
    }
    if (self->dealer) {
        qv_loop_reader_end (self->loop, self->dealer);
        zsock_destroy (&self->dealer);
    }
}

//  Connects a new DEALER (and its monitor) to the core at endpoint.
static void
s_dealer_open (self_t *self, const char *endpoint)
{
    snprintf (self->writer, sizeof self->writer, "%s", endpoint);
    char ep [300];
    qv_config_endpoint (self->config, "link-monitor", ep, sizeof ep - 32);
    snprintf (ep + strlen (ep), 32, "-%llu", (unsigned long long) ++self->monitors);
    self->dealer = qv_actor_dealer (self->config, ep,
                                    ZMQ_EVENT_HANDSHAKE_SUCCEEDED | ZMQ_EVENT_DISCONNECTED,
                                    &self->monitor);
    assert (self->dealer);          //  the key file was read at start (quiver.c)
    if (self->monitor)
        qv_loop_reader (self->loop, self->monitor, s_handle_monitor, self);
    qv_loop_reader (self->loop, self->dealer, s_handle_dealer, self);
    if (zsock_connect (self->dealer, "%s", endpoint) != 0)
        qv_error ("link: cannot connect to the writer core at '%s': %s", endpoint,
                  zmq_strerror (zmq_errno ()));
    char why [400];
    snprintf (why, sizeof why, "this proxy process is connecting to the writer core at %s; "
              "retry shortly", endpoint);
    s_writer_down (self, why);
}

//  An update of a writer core's entry: the ready one of the highest epoch is the core.
static int
s_handle_cores (qv_loop_t *loop, zsock_t *reader, void *arg)
{
    (void) loop;
    self_t *self = arg;
    qv_member_t entry;
    if (qv_members_recv (self->bus, reader, "link", &entry, NULL, 0) != 0)
        return 0;
    if (entry.gone || !entry.ready || !entry.endpoint [0] || entry.epoch < self->epoch
    ||  (entry.epoch == self->epoch && self->writer [0]))
        return 0;
    if (streq (entry.endpoint, self->writer)) {
        //  The same endpoint, a newer tenure (the core restarted): the DEALER reconnects
        self->epoch = entry.epoch;
        return 0;
    }
    if (self->writer [0])
        qv_info ("link: the write lease moved to the writer core at %s (epoch %llu, was %s "
                 "at epoch %llu)", entry.endpoint, (unsigned long long) entry.epoch,
                 self->writer, (unsigned long long) self->epoch);
    else
        qv_info ("link: found the writer core at %s in NATS (epoch %llu)", entry.endpoint,
                 (unsigned long long) entry.epoch);
    //  An endpoint ZeroMQ refuses (a malformed entry) must not take us off a good core
    zsock_t *probe = zsock_new (ZMQ_DEALER);
    int ok = probe ? zsock_connect (probe, "%s", entry.endpoint) : -1;
    zsock_destroy (&probe);
    if (ok != 0) {
        qv_warn ("link: a writer core entry with endpoint '%s' was ignored: cannot connect "
                 "there", entry.endpoint);
        return 0;
    }
    self->epoch = entry.epoch;
    s_dealer_close (self);
    s_dealer_open (self, entry.endpoint);
    return 0;
}

//  Subscribes to the cores' entries until it succeeds.
static int
s_handle_timer (qv_loop_t *loop, int timer_id, void *arg)
{
    (void) loop;
    (void) timer_id;
    self_t *self = arg;
    char ep [300];
    qv_config_endpoint (self->config, "link-cores", ep, sizeof ep);
    qv_members_follow (self->bus, self->subject, ep, &self->subscribed, &self->warned_ms,
                       "link", "the writer cores' entries");
    return 0;
}

void
qv_link_actor (zsock_t *pipe, void *args)
{
    self_t *self = calloc (1, sizeof *self);
    self->config = args;
    char ep [300];
    qv_config_endpoint (self->config, "segmgr", ep, sizeof ep);
    self->from_segmgr = zsock_new_pull (ep);
    qv_config_endpoint (self->config, "searcher", ep, sizeof ep);
    self->from_searcher = zsock_new_pull (ep);
    self->proxy = qv_config_push (self->config, "proxy");
    self->pending = zhashx_new ();
    self->fanout = qv_config_push (self->config, "fanout");
    self->waiting = zlistx_new ();
    self->asked = zlistx_new ();
    self->loop = qv_loop_new ();
    qv_loop_set_nonstop (self->loop, true);
    qv_loop_reader (self->loop, pipe, qv_actor_on_term, self);
    //  No handler but the pipe's touches the pipe (only $TERM comes on it): it is
    //  asked for events only when its fd fires
    qv_loop_reader_set_private (self->loop, pipe);
    qv_loop_reader (self->loop, self->from_segmgr, s_handle_local, self);
    qv_loop_reader (self->loop, self->from_searcher, s_handle_local, self);
    qv_loop_timer (self->loop, 250, 0, s_handle_tick, self);
    if (self->config->writer [0])
        s_dealer_open (self, self->config->writer);
    else {
        qv_members_role_subject (self->config, QV_MEMBERS_CORE, self->subject,
                                 sizeof self->subject);
        qv_config_endpoint (self->config, "link-cores", ep, sizeof ep);
        self->cores = zsock_new_pull (ep);
        qv_loop_reader (self->loop, self->cores, s_handle_cores, self);
        self->bus = qv_bus_new (self->config->nats_url, "quiver proxy: writer cores", false);
        if (self->bus) {
            qv_loop_timer (self->loop, 100, 0, s_handle_timer, self);
            s_handle_timer (self->loop, 0, self);
        }
        else
            qv_error ("link: %s; the writer core cannot be found (give --writer)", qv_err_msg ());
        char url [sizeof self->config->nats_url];
        qv_redact (self->config->nats_url, url, sizeof url);
        char why [sizeof url + 300];
        snprintf (why, sizeof why, "this proxy process is looking for the writer core in NATS "
                  "%s (no core holding the write lease has announced itself yet); retry "
                  "shortly", url);
        s_writer_down (self, why);
    }
    zsock_signal (pipe, 0);
    qv_loop_start (self->loop);

    qv_bus_destroy (&self->bus);    //  no more entries after this
    //  What the proxy sent that was not read yet is answered as what is in flight (as
    //  the fan-out does): lost in the closing pipes, its jobs leaked
    zsock_t *inboxes [] = { self->from_segmgr, self->from_searcher };
    for (int i = 0; i < 2; i++) {
        qv_msg_t *msg;
        while ((msg = qv_msg_recv_nowait (inboxes [i]))) {
            qv_job_t *job = qv_msg_take_job (msg);
            if (job)
                s_fail (self, job, "this proxy process is shutting down");
            qv_msg_destroy (&msg);
        }
    }
    s_fail_pending (self, "this proxy process is shutting down");
    s_strong_fail (self, self->asked, "this proxy process is shutting down");
    s_strong_fail (self, self->waiting, "this proxy process is shutting down");
    self->connected = false;
    s_dealer_close (self);
    qv_loop_destroy (&self->loop);
    if (self->cores) {
        qv_bus_purge (self->cores);
        zsock_destroy (&self->cores);
    }
    zlistx_destroy (&self->waiting);
    zlistx_destroy (&self->asked);
    zsock_destroy (&self->fanout);
    zhashx_destroy (&self->pending);
    zsock_destroy (&self->from_segmgr);
    zsock_destroy (&self->from_searcher);
    zsock_destroy (&self->proxy);
    //  nats.c keeps this thread's last error in thread-local memory
    nats_ReleaseThreadMemory ();
    free (self);
}
