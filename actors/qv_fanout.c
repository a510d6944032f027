//  Fan-out actor: in a writer process without the searcher role
//  (`quiver serve --roles proxy,segment-manager,meta,flusher`), sends reads to the
//  searcher processes of the store over ZeroMQ TCP and hands their replies to the proxy.
//
//  @interface (messages: schemas/qv_msg.h)
//    pipe  $TERM                 stop (reads in flight are answered UNAVAILABLE)
//  takes (inbox, PULL inproc "fanout"):
//    READ {job, guarantee_ts}    from the proxy: a search, query or get
//  takes (NATS "$KV.quiver_members.<store>.searcher.*", bus/qv_members.h):
//    {endpoint, ready, applied_seq}   searcher entries, put every second; deletes
//  takes (a DEALER per searcher, ZeroMQ TCP): [tag][reply]   PROTOCOL.md replies
//  sends:
//    [tag][request]              to a searcher: the client's request (PROTOCOL.md) with
//                                the proxy's guarantee as `consistency: "session"`
//                                and `guarantee_ts` (0: `eventually`)
//    REPLY {job, ts: 0}          to the proxy: the searcher's reply bytes, or an error
//
//  DESIGN
//  Every searcher process holds the whole shard, so a read goes to one of them: the
//  ready one (caught up, heard from within QV_MEMBERS_STALE_MS, not cooling down) with
//  the fewest reads in flight. The guarantee is computed by the writer's proxy, which
//  sees every acknowledgement: a strong read then needs no question to the writer, and
//  a bounded one is measured on the writer's clock. A searcher that answers
//  UNAVAILABLE (catching up, stopping) cools down for a second and the read goes to
//  another; so does every read in flight on a searcher that stops announcing itself
//  (kill -9), or whose connection drops (a socket monitor sees it at once): reads are
//  idempotent. The DEALERs are ZMQ_IMMEDIATE, so a read is never queued for a searcher
//  that is not connected; their monitors also say when one connects. A read that no
//  searcher can take now waits up to S_PARK_MS (within its deadline) for one to
//  connect, catch up or come back, and is then answered UNAVAILABLE naming what each
//  known searcher is doing; with no searcher known at all it is answered at once. A read still unanswered
//  S_GRACE_MS after its deadline is answered TIMEOUT.
#include "qv_fanout.h"
#include "qv_actor.h"
#include "qv_bus.h"
#include "qv_job.h"
#include "qv_members.h"
#include "qv_msg.h"
#include "qv_rc.h"

//  A searcher that answered UNAVAILABLE is not sent reads for this long.
#define S_COOL_MS 1000
//  A read is tried on at most this many searchers.
#define S_MAX_TRIES 4
//  A read unanswered this long after its deadline is answered TIMEOUT.
#define S_GRACE_MS 30000
//  A read no searcher can take now waits this long for one (a searcher connecting,
//  catching up, or taking over from one that died) before it is answered UNAVAILABLE.
#define S_PARK_MS 2000

typedef struct {
    char endpoint [256];
    char instance [32];             //  the process incarnation it announced
    zsock_t *dealer;
    zsock_t *monitor;               //  the DEALER's disconnects (zmq_socket_monitor)
    bool ready;
    uint64_t applied_seq;
    int64_t seen_ms;
    int64_t cool_until_ms;
    size_t inflight;
    bool unreachable_logged;        //  said once until it connects again
} s_member_t;

typedef struct {
    uint64_t tag;
    qv_job_t *job;
    void *body;                     //  the request as sent (kept for a retry)
    size_t size;
    s_member_t *member;             //  where it is in flight (NULL: parked)
    int tries;
    int64_t parked_ms;              //  when it began to wait for a searcher, or 0
} s_read_t;

typedef struct {
    const qv_config_t *config;
    qv_loop_t *loop;
    qv_bus_t *bus;
    bool subscribed;
    char subject [256];
    zsock_t *inbox;
    zsock_t *entries;               //  natsMsg * of membership updates
    zsock_t *proxy;
    zhashx_t *members;              //  endpoint -> s_member_t
    zhashx_t *reads;                //  tag -> s_read_t
    zlistx_t *parked;               //  s_read_t waiting for a searcher
    uint64_t next_tag;
    unsigned rotor;                 //  spreads ties between searchers
    uint64_t monitors;              //  monitor endpoints made
    int64_t warned_ms;
} self_t;

static int s_handle_dealer (qv_loop_t *loop, zsock_t *reader, void *arg);
static bool s_usable (const s_member_t *m, int64_t now, bool ready);

//  What `stats` shows: searcher processes known, of those caught up, and the table of
//  them (endpoint, incarnation, routed or not, position, reads in flight).
static void
s_count_members (self_t *self)
{
    qv_feed_stats_t *fs = self->config->feed_stats;
    if (!fs)
        return;
    uint64_t ready = 0;
    int64_t now = qv_clock_msec ();
    pthread_mutex_lock (&fs->members_lock);
    fs->nmembers = 0;
    for (s_member_t *m = zhashx_first (self->members); m; m = zhashx_next (self->members)) {
        ready += m->ready;
        if (fs->nmembers == QV_FEED_MEMBERS_MAX)
            continue;
        qv_feed_member_t *e = &fs->members [fs->nmembers++];
        snprintf (e->endpoint, sizeof e->endpoint, "%s", m->endpoint);
        snprintf (e->instance, sizeof e->instance, "%s", m->instance);
        e->ready = s_usable (m, now, true);
        e->caught_up = m->ready;
        e->applied_seq = m->applied_seq;
        e->seen_ms = m->seen_ms;
        e->inflight = m->inflight;
    }
    pthread_mutex_unlock (&fs->members_lock);
    atomic_store (&fs->searchers, zhashx_size (self->members));
    atomic_store (&fs->searchers_ready, ready);
}

static void
s_post_reply (self_t *self, qv_job_t *job)
{
    qv_msg_reply_t *reply = qv_msg_reply_new ();
    reply->job = job;
    if (qv_msg_post (self->proxy, &reply) != 0)
        qv_msg_free (&reply);       //  stopping: the proxy is gone
}

static void
s_read_free (s_read_t **read_p)
{
    s_read_t *read = *read_p;
    if (read) {
        free (read->body);
        free (read);
        *read_p = NULL;
    }
}

//  Answers a read with an error and forgets it.
static void
s_fail (self_t *self, s_read_t *read, int rc, const char *message)
{
    char key [32];
    snprintf (key, sizeof key, "%llu", (unsigned long long) read->tag);
    if (read->member && read->member->inflight)
        read->member->inflight--;
    qv_job_fail (read->job, rc, message);
    s_post_reply (self, read->job);
    zhashx_delete (self->reads, key);
    s_read_free (&read);
}

//  The client's request with the proxy's guarantee in place of its own.
static void *
s_encode (const qv_req_t *req, uint64_t guarantee_ts, size_t *size)
{
    qv_wr_t *w = qv_wr_new ();
    qv_wr_map_open (w);
    qv_req_write_pairs (req, w, QV_F (consistency) | QV_F (guarantee_ts));
    qv_wr_key (w, "consistency");
    qv_wr_str (w, guarantee_ts ? "session" : "eventually");
    if (guarantee_ts) {
        qv_wr_key (w, "guarantee_ts");
        qv_wr_uint (w, guarantee_ts);
    }
    qv_wr_map_close (w);
    void *data = qv_wr_detach (w, size);
    qv_wr_destroy (&w);
    return data;
}

static bool
s_usable (const s_member_t *m, int64_t now, bool ready)
{
    return m->dealer && m->ready == ready && now - m->seen_ms <= QV_MEMBERS_STALE_MS
        && now >= m->cool_until_ms;
}

//  Sends a read to the usable searcher with the fewest reads in flight (not `avoid`);
//  true if one took it. Without a caught-up one, one still catching up may have caught
//  up since its last entry (it answers UNAVAILABLE if not).
static bool
s_dispatch (self_t *self, s_read_t *read, s_member_t *avoid)
{
    int64_t now = qv_clock_msec ();
    size_t n = zhashx_size (self->members);
    s_member_t **list = calloc (n ? n : 1, sizeof *list);
    size_t count = 0;
    for (int pass = 0; pass < 2 && count == 0; pass++)
        for (s_member_t *m = zhashx_first (self->members); m; m = zhashx_next (self->members))
            if (m != avoid && s_usable (m, now, pass == 0))
                list [count++] = m;
    self->rotor++;
    bool sent = false;
    while (count && !sent) {
        size_t best = self->rotor % count;
        for (size_t i = 0; i < count; i++)
            if (list [i]->inflight < list [best]->inflight)
                best = i;
        s_member_t *m = list [best];
        list [best] = list [--count];
        zframe_t *tag = zframe_new (&read->tag, sizeof read->tag);
        zframe_t *body = zframe_new (read->body, read->size);
        void *sock = zsock_resolve (m->dealer);
        if (zframe_send (&tag, sock, ZFRAME_MORE | ZFRAME_DONTWAIT) == 0
        &&  zframe_send (&body, sock, ZFRAME_DONTWAIT) == 0) {
            read->member = m;
            read->tries++;
            m->inflight++;
            sent = true;
        }
        else {
            //  Not connected (ZMQ_IMMEDIATE), or its queue is full: another one
            zframe_destroy (&tag);
            zframe_destroy (&body);
            if (!m->unreachable_logged)
                qv_info ("fan-out: searcher process %s is not connected (%s); reads go to the "
                         "others until it is", m->endpoint, zmq_strerror (zmq_errno ()));
            m->unreachable_logged = true;
            m->cool_until_ms = now + S_COOL_MS;
        }
    }
    free (list);
    return sent;
}

static void
s_no_searcher (self_t *self, s_read_t *read)
{
    size_t known = zhashx_size (self->members), ready = 0;
    char states [600] = "";
    size_t len = 0;
    int64_t now = qv_clock_msec ();
    for (s_member_t *m = zhashx_first (self->members); m; m = zhashx_next (self->members)) {
        ready += m->ready;
        if (len < sizeof states - 120)
            len += (size_t) snprintf (states + len, sizeof states - len, "%s%s (%s, heard %lld ms "
                                      "ago%s)", len ? "; " : ": ", m->endpoint,
                                      m->ready ? "caught up" : "catching up",
                                      (long long) (now - m->seen_ms),
                                      now < m->cool_until_ms ? ", unreachable or refusing" : "");
    }
    char why [1024];
    snprintf (why, sizeof why, "no searcher process can take the read: %zu known (%zu caught up) "
              "for this store on NATS %s%s; start one with `quiver serve --roles searcher "
              "--nats URL` on the same store, or retry shortly", known, ready,
              self->config->nats_url, states);
    s_fail (self, read, QV_EUNAVAIL, why);
}

//  No searcher can take the read now: it waits (S_PARK_MS) unless none is known.
static void
s_park (self_t *self, s_read_t *read)
{
    read->member = NULL;
    if (zhashx_size (self->members) == 0 || read->tries >= S_MAX_TRIES) {
        s_no_searcher (self, read);
        return;
    }
    if (!read->parked_ms)
        read->parked_ms = qv_clock_msec ();
    zlistx_add_end (self->parked, read);
}

//  Parked reads go to a searcher that can take them now; those that waited too long
//  are answered UNAVAILABLE.
static void
s_retry_parked (self_t *self)
{
    size_t n = zlistx_size (self->parked);
    int64_t now = qv_clock_msec ();
    while (n--) {
        s_read_t *read = zlistx_detach (self->parked, NULL);
        if (s_dispatch (self, read, NULL))
            read->parked_ms = 0;
        else
        if (now - read->parked_ms >= S_PARK_MS || now >= read->job->deadline)
            s_no_searcher (self, read);
        else
            zlistx_add_end (self->parked, read);
    }
}

static int
s_handle_inbox (qv_loop_t *loop, zsock_t *reader, void *arg)
{
    (void) loop;
    self_t *self = arg;
    qv_msg_t *msg = qv_msg_recv (reader);
    if (!msg)
        return 0;
    if (msg->id != QV_MSG_READ) {
        qv_error ("protocol error: the fan-out actor does not take %s; dropped", qv_msg_name (msg->id));
        qv_msg_destroy (&msg);
        return 0;
    }
    uint64_t guarantee_ts = ((qv_msg_read_t *) msg)->guarantee_ts;
    s_read_t *read = calloc (1, sizeof *read);
    read->job = qv_msg_take_job (msg);
    qv_msg_destroy (&msg);
    read->tag = ++self->next_tag;
    read->body = s_encode (&read->job->req, guarantee_ts, &read->size);
    char key [32];
    snprintf (key, sizeof key, "%llu", (unsigned long long) read->tag);
    zhashx_insert (self->reads, key, read);
    if (!s_dispatch (self, read, NULL))
        s_park (self, read);
    return 0;
}

//  The code of an error reply ("" for a success or what is not a reply).
static void
s_reply_code (const void *data, size_t size, char *code, size_t codesize)
{
    code [0] = 0;
    //  Our replies start {"ok": true|false, ...}: a success needs no decoding
    const uint8_t *b = data;
    if (size > 4 && (b [0] & 0xf0) == 0x80 && memcmp (b + 1, "\xa2ok\xc3", 4) == 0)
        return;
    int rc = 0;
    qv_doc_t *doc = qv_doc_parse (data, size, SIZE_MAX, &rc);
    if (!doc)
        return;
    const qv_val_t *c = qv_val_get (qv_doc_root (doc), "code");
    if (c)
        qv_val_strcpy (c, code, codesize);
    qv_doc_destroy (&doc);
}

static int
s_handle_dealer (qv_loop_t *loop, zsock_t *reader, void *arg)
{
    (void) loop;
    self_t *self = arg;
    zmsg_t *msg = qv_actor_recv (reader);     //  never waiting: see qv_actor.h
    if (!msg)
        return 0;
    zframe_t *tag = zmsg_first (msg);
    zframe_t *body = zmsg_next (msg);
    uint64_t t = 0;
    s_read_t *read = NULL;
    if (zmsg_size (msg) == 2 && zframe_size (tag) == sizeof t) {
        memcpy (&t, zframe_data (tag), sizeof t);
        char key [32];
        snprintf (key, sizeof key, "%llu", (unsigned long long) t);
        read = zhashx_lookup (self->reads, key);
    }
    //  A reply from another searcher than the one the read is on is late: the read
    //  was sent again meanwhile
    s_member_t *from = read ? read->member : NULL;
    if (!read || !from || from->dealer != reader) {
        zmsg_destroy (&msg);
        return 0;
    }
    if (from->inflight)
        from->inflight--;
    char code [32];
    s_reply_code (zframe_data (body), zframe_size (body), code, sizeof code);
    if (streq (code, "UNAVAILABLE") && read->tries < S_MAX_TRIES) {
        if (qv_clock_msec () >= from->cool_until_ms)
            qv_info ("fan-out: searcher process %s refuses reads for now (UNAVAILABLE); "
                     "they go to the others for %d ms", from->endpoint, S_COOL_MS);
        from->cool_until_ms = qv_clock_msec () + S_COOL_MS;
        read->member = NULL;
        if (!s_dispatch (self, read, from))
            s_park (self, read);
        zmsg_destroy (&msg);
        return 0;
    }
    //  The searcher's answer (or its UNAVAILABLE, when no other can take the read)
    qv_job_t *job = read->job;
    free (job->reply);
    job->reply_size = zframe_size (body);
    job->reply = malloc (job->reply_size ? job->reply_size : 1);
    memcpy (job->reply, zframe_data (body), job->reply_size);
    s_post_reply (self, job);
    char key [32];
    snprintf (key, sizeof key, "%llu", (unsigned long long) t);
    zhashx_delete (self->reads, key);
    s_read_free (&read);
    zmsg_destroy (&msg);
    return 0;
}

//  Reads in flight on m go to another searcher (or are answered UNAVAILABLE).
static void
s_reroute (self_t *self, s_member_t *m)
{
    zlistx_t *moved = zlistx_new ();
    for (s_read_t *r = zhashx_first (self->reads); r; r = zhashx_next (self->reads))
        if (r->member == m)
            zlistx_add_end (moved, r);
    s_read_t *r;
    while ((r = zlistx_detach (moved, NULL))) {
        r->member = NULL;
        if (r->tries >= S_MAX_TRIES || !s_dispatch (self, r, m))
            s_park (self, r);
    }
    zlistx_destroy (&moved);
    m->inflight = 0;
}

static void
s_member_close (s_member_t *m)
{
    if (m->dealer && m->monitor)
        zmq_socket_monitor (zsock_resolve (m->dealer), NULL, 0);
    zsock_destroy (&m->monitor);
    zsock_destroy (&m->dealer);
}

static void
s_member_drop (self_t *self, s_member_t *m, const char *why)
{
    qv_info ("fan-out: searcher process %s %s; reads go to the others", m->endpoint, why);
    if (m->dealer)
        qv_loop_reader_end (self->loop, m->dealer);
    if (m->monitor)
        qv_loop_reader_end (self->loop, m->monitor);
    s_member_close (m);
    s_reroute (self, m);
    zhashx_delete (self->members, m->endpoint);
    s_count_members (self);
}

static void
s_member_free (void **item)
{
    s_member_t *m = *item;
    if (m) {
        s_member_close (m);
        free (m);
        *item = NULL;
    }
}

//  The DEALER of m lost its connection (the searcher died, or its host): the reads in
//  flight on it will not be answered, so they go to another searcher now rather than
//  when the searcher's entry goes stale.
static int
s_handle_monitor (qv_loop_t *loop, zsock_t *reader, void *arg)
{
    (void) loop;
    self_t *self = arg;
    uint16_t id = qv_actor_monitor_event (reader);
    s_member_t *m;
    for (m = zhashx_first (self->members); m; m = zhashx_next (self->members))
        if (m->monitor == reader)
            break;
    if (m && id == ZMQ_EVENT_CONNECTED) {
        m->cool_until_ms = 0;       //  reads may go to it at once
        m->unreachable_logged = false;
        s_retry_parked (self);
    }
    else
    if (m && id == ZMQ_EVENT_DISCONNECTED) {
        if (m->inflight)
            qv_info ("fan-out: lost the connection to searcher process %s; its %zu reads "
                     "in flight go to another", m->endpoint, m->inflight);
        m->cool_until_ms = qv_clock_msec () + S_COOL_MS;
        s_reroute (self, m);
    }
    return 0;
}

static int
s_handle_entries (qv_loop_t *loop, zsock_t *reader, void *arg)
{
    (void) loop;
    self_t *self = arg;
    qv_member_t entry;
    char key [600];
    if (qv_members_recv (self->bus, reader, "fan-out", &entry, key, sizeof key) != 0)
        return 0;
    s_member_t *member = NULL;
    if (entry.gone) {
        //  A delete names its key only ($KV.<bucket>.<key>): find the member by it
        char mkey [512];
        for (s_member_t *x = zhashx_first (self->members); x; x = zhashx_next (self->members)) {
            qv_members_key (self->config, x->endpoint, mkey, sizeof mkey);
            if (key [0] && streq (key, mkey)) {
                member = x;
                break;
            }
        }
        if (member)
            s_member_drop (self, member, "stopped");
        return 0;
    }
    member = zhashx_lookup (self->members, entry.endpoint);
    if (!member) {
        member = calloc (1, sizeof *member);
        snprintf (member->endpoint, sizeof member->endpoint, "%s", entry.endpoint);
        char ep [300];
        qv_config_endpoint (self->config, "fanout-monitor", ep, sizeof ep - 32);
        snprintf (ep + strlen (ep), 32, "-%llu", (unsigned long long) ++self->monitors);
        member->dealer = qv_actor_dealer (self->config, ep,
                                          ZMQ_EVENT_CONNECTED | ZMQ_EVENT_DISCONNECTED,
                                          &member->monitor);
        if (!member->dealer || zsock_connect (member->dealer, "%s", member->endpoint) != 0) {
            qv_warn ("fan-out: searcher entry with endpoint '%s' ignored: cannot connect (%s)",
                     member->endpoint, zmq_strerror (zmq_errno ()));
            s_member_close (member);
            free (member);
            return 0;
        }
        qv_loop_reader (self->loop, member->dealer, s_handle_dealer, self);
        if (member->monitor)
            qv_loop_reader (self->loop, member->monitor, s_handle_monitor, self);
        zhashx_insert (self->members, member->endpoint, member);
        qv_info ("fan-out: searcher process %s joined (%s)", member->endpoint,
                 entry.ready ? "caught up" : "catching up");
    }
    else
    if (entry.ready && !member->ready)
        qv_info ("fan-out: searcher process %s caught up", member->endpoint);
    if (!streq (member->instance, entry.instance) && member->instance [0])
        qv_info ("fan-out: searcher process %s is a new incarnation (%s, was %s)",
                 member->endpoint, entry.instance, member->instance);
    snprintf (member->instance, sizeof member->instance, "%s", entry.instance);
    member->ready = entry.ready;
    member->applied_seq = entry.applied_seq;
    member->seen_ms = qv_clock_msec ();
    s_count_members (self);
    if (member->ready)
        s_retry_parked (self);
    return 0;
}

static int
s_handle_timer (qv_loop_t *loop, int timer_id, void *arg)
{
    (void) loop;
    (void) timer_id;
    self_t *self = arg;
    char ep [256];
    qv_config_endpoint (self->config, "fanout-members", ep, sizeof ep);
    qv_members_follow (self->bus, self->subject, ep, &self->subscribed, &self->warned_ms,
                       "fan-out", "searcher membership");
    int64_t now = qv_clock_msec ();
    zlistx_t *stale = zlistx_new ();
    for (s_member_t *m = zhashx_first (self->members); m; m = zhashx_next (self->members))
        if (now - m->seen_ms > QV_MEMBERS_STALE_MS)
            zlistx_add_end (stale, m);
    s_member_t *m;
    while ((m = zlistx_detach (stale, NULL)))
        s_member_drop (self, m, "stopped announcing itself");
    zlistx_destroy (&stale);
    s_count_members (self);         //  reads in flight and cool-downs change all the time
    zlistx_t *late = zlistx_new ();
    for (s_read_t *r = zhashx_first (self->reads); r; r = zhashx_next (self->reads))
        if (r->member && now > r->job->deadline + S_GRACE_MS)
            zlistx_add_end (late, r);
    s_read_t *r;
    while ((r = zlistx_detach (late, NULL))) {
        char why [512];
        snprintf (why, sizeof why, "searcher process %s did not answer within %d ms",
                  r->member ? r->member->endpoint : "?", self->config->read_wait_ms + S_GRACE_MS);
        s_fail (self, r, QV_ETIMEOUT, why);
    }
    zlistx_destroy (&late);
    s_retry_parked (self);
    return 0;
}

void
qv_fanout_actor (zsock_t *pipe, void *args)
{
    self_t *self = calloc (1, sizeof *self);
    self->config = args;
    qv_members_subject (self->config, self->subject, sizeof self->subject);
    char ep [256];
    qv_config_endpoint (self->config, "fanout", ep, sizeof ep);
    self->inbox = zsock_new_pull (ep);
    qv_config_endpoint (self->config, "fanout-members", ep, sizeof ep);
    self->entries = zsock_new_pull (ep);
    self->proxy = qv_config_push (self->config, "proxy");
    self->members = zhashx_new ();
    zhashx_set_destructor (self->members, s_member_free);
    self->reads = zhashx_new ();
    self->parked = zlistx_new ();
    self->bus = qv_bus_new (self->config->nats_url, "quiver fan-out", false);
    zsock_signal (pipe, 0);
    self->loop = qv_loop_new ();
    qv_loop_set_nonstop (self->loop, true);
    qv_loop_reader (self->loop, pipe, qv_actor_on_term, self);
    //  No handler but the pipe's touches the pipe (only $TERM comes on it): it is
    //  asked for events only when its fd fires
    qv_loop_reader_set_private (self->loop, pipe);
    qv_loop_reader (self->loop, self->inbox, s_handle_inbox, self);
    qv_loop_reader (self->loop, self->entries, s_handle_entries, self);
    if (self->bus) {
        qv_loop_timer (self->loop, 50, 0, s_handle_timer, self);
        s_handle_timer (self->loop, 0, self);
    }
    else
        qv_error ("fan-out: %s; reads cannot reach searcher processes", qv_err_msg ());
    qv_loop_start (self->loop);
    qv_loop_destroy (&self->loop);
    qv_bus_destroy (&self->bus);    //  no more membership messages after this
    //  Reads in flight or queued: answered, not lost
    qv_msg_t *msg;
    while ((msg = qv_msg_recv_nowait (self->inbox))) {
        qv_job_t *job = qv_msg_take_job (msg);
        if (job) {
            qv_job_fail (job, QV_EUNAVAIL, "the server is shutting down; retry when it is back");
            s_post_reply (self, job);
        }
        qv_msg_destroy (&msg);
    }
    s_read_t *r;
    while ((r = zhashx_first (self->reads))) {
        r->member = NULL;
        s_fail (self, r, QV_EUNAVAIL, "the server is shutting down; retry when it is back");
    }
    qv_bus_purge (self->entries);
    zlistx_destroy (&self->parked);     //  its reads were answered above
    zhashx_destroy (&self->reads);
    zhashx_destroy (&self->members);
    zsock_destroy (&self->inbox);
    zsock_destroy (&self->entries);
    zsock_destroy (&self->proxy);
    free (self);
    //  nats.c keeps this thread's last error in thread-local memory, freed when the
    //  thread ends, which the process may not wait for (LeakSanitizer saw it)
    nats_ReleaseThreadMemory ();
}

void
qv_fanout_write_stats (qv_feed_stats_t *fs, qv_wr_t *w)
{
    qv_wr_key (w, "searchers"); qv_wr_uint (w, atomic_load (&fs->searchers));
    qv_wr_key (w, "searchers_ready"); qv_wr_uint (w, atomic_load (&fs->searchers_ready));
    int64_t now = qv_clock_msec ();
    qv_wr_key (w, "searcher_processes");
    pthread_mutex_lock (&fs->members_lock);
    qv_wr_array (w, fs->nmembers);
    for (size_t i = 0; i < fs->nmembers; i++) {
        const qv_feed_member_t *e = &fs->members [i];
        qv_wr_map (w, 7);
        qv_wr_str (w, "endpoint"); qv_wr_str (w, e->endpoint);
        qv_wr_str (w, "instance"); qv_wr_str (w, e->instance);
        qv_wr_str (w, "routed"); qv_wr_bool (w, e->ready);
        qv_wr_str (w, "caught_up"); qv_wr_bool (w, e->caught_up);
        qv_wr_str (w, "applied_seq"); qv_wr_uint (w, e->applied_seq);
        qv_wr_str (w, "heard_ms_ago"); qv_wr_uint (w, (uint64_t) (now > e->seen_ms ? now - e->seen_ms : 0));
        qv_wr_str (w, "reads_in_flight"); qv_wr_uint (w, e->inflight);
    }
    pthread_mutex_unlock (&fs->members_lock);
}
