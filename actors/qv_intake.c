//  Intake actor: in a writer core (`quiver serve --roles segment-manager,meta,flusher`),
//  the door proxy processes come through. It takes their messages over ZeroMQ TCP,
//  hands them to the segment manager and the searcher as the embedded proxy would,
//  and sends the replies back to the proxy that asked.
//
//  @interface (messages: schemas/qv_msg.h)
//  pipe (from the server, "sp8"): USERS users (the user store, taken), READY views max_ts,
//  WAITING reason, FAILED reason,
//    STOP (signals when done), $TERM: as the proxy's (actors/qv_proxy.h)
//  takes (ROUTER on --bind, ZeroMQ TCP; one msgpack message per frame, qv_msg_encode):
//    HELLO {}                    a proxy process connected: CATALOG goes back, or
//                                WRITER_DOWN while this process recovers
//    WRITE {job}, FLUSH {coll, job}    for the segment manager
//    READ {job, guarantee_ts}    for the searcher (a delete to resolve; a read of the
//                                catalog, stats ...)
//    WRITER_TS {shard, ts: 0, ask}   answered at once (ask echoed) with the newest commit timestamp
//                                acknowledged (a proxy's strong reads)
//    a client's request (PROTOCOL.md): `ping` answered (a health check of the core),
//                                any other op INVALID_ARGUMENT naming the proxy
//  takes (inbox, PULL inproc "proxy"): REPLY {job, ts}, RESOLVED {job}
//  sends:
//    WRITE, FLUSH                to the segment manager; READ to the searcher
//    CATALOG {max_ts, views}, WRITER_DOWN {reason}, REPLY, RESOLVED   to proxy processes
//
//  DESIGN
//  The actors behind this one are those of the embedded server, unchanged: they send
//  what they would send the proxy to inproc "proxy", which this actor binds. Job ids
//  are the proxies' own, so each job gets a local id on the way in (kept with its
//  proxy's routing id and its own id, which the reply gets back). A job's deadline
//  travels as the milliseconds left (clocks of two machines are not comparable).
//  Inserts are decoded against the schemas of this process's catalog copy: the
//  recovered views, kept in step from the DDL replies passing through (whose records
//  the searcher has applied); a schema stays until the actor stops, since decoded
//  records point into it. Every successful DDL reply also goes, as a reply to no job
//  (id 0), to every other proxy that said HELLO, whose catalog copy it keeps in step.
//  A new partition's id is given here (the proxy's is a proposal), so proxies creating
//  partitions of one collection at once never give two the same.
//  JetStream stream writes (job->sseq) are taken from the newest connection that sent
//  one: a late one of a replaced connection is refused, so the stream's order in the
//  WAL survives a proxy's reconnection (actors/qv_link.c).
//  Sends never wait (a proxy that stops reading loses messages, never stalls the
//  core); the ROUTER is mandatory-routing, so a send to a proxy that disconnected
//  fails, and that proxy is forgotten until it says HELLO again.
#include "qv_intake.h"
#include "qv_actor.h"
#include "qv_msg.h"
#include "qv_rc.h"
#include "qv_recover.h"
#include "qv_users.h"

typedef struct {
    zframe_t *peer;                 //  the proxy's routing id
    uint64_t id;                    //  the job's id at the proxy
    uint64_t sseq;                  //  its stream sequence (0: not a stream write)
    zmsg_t *client;                 //  or a client of inproc "api" (the metrics
                                    //  endpoint's `stats`): its envelope
} s_route_t;

typedef struct {
    const qv_config_t *config;
    zsock_t *router;
    zsock_t *api;                   //  ROUTER on inproc "api": `ping` and `stats` for this
                                    //  process's metrics endpoint (bus/qv_metrics.c)
    zsock_t *inbox;
    zsock_t *segmgr;
    zsock_t *searcher;
    zlist_t *views;                 //  the catalog copy (qv_coll_view_t *)
    qv_users_t *users;              //  the user store's copy (for proxy processes)
    zhashx_t *schemas;              //  coll id -> qv_schema_t * (until the actor stops)
    zhashx_t *routes;               //  local job id -> s_route_t *
    zhashx_t *peers;                //  routing id (hex) -> zframe_t *: proxies that said HELLO
    int stream_replies;             //  replies to stream writes (test hook)
    zhashx_t *gone;                 //  routing ids (hex) found disconnected, to forget
    char *stream_peer;              //  routing id (hex) of the connection stream writes
                                    //  come from (the newest to send one)
    zhashx_t *stream_retired;       //  routing ids (hex) it came from before
    uint64_t next_id;
    uint64_t max_ts;
    bool ready;
    char unavailable [512];
} self_t;

static void
s_route_free (void **item)
{
    s_route_t *r = *item;
    if (r) {
        zframe_destroy (&r->peer);
        zmsg_destroy (&r->client);
        free (r);
        *item = NULL;
    }
}

static void
s_frame_free (void **item)
{
    zframe_destroy ((zframe_t **) item);
}

static void
s_schema_free (void **item)
{
    qv_schema_destroy ((qv_schema_t **) item);
}

static const qv_schema_t *
s_lookup (void *arg, uint32_t coll_id)
{
    self_t *self = arg;
    char key [16];
    snprintf (key, sizeof key, "%u", coll_id);
    return zhashx_lookup (self->schemas, key);
}

static void
s_schema_add (self_t *self, uint32_t coll_id, const qv_schema_t *schema)
{
    char key [16];
    snprintf (key, sizeof key, "%u", coll_id);
    if (!zhashx_lookup (self->schemas, key))
        zhashx_insert (self->schemas, key, qv_schema_dup (schema));
}

//  A new partition's id comes from here, the one place every proxy's creates pass:
//  two proxy processes creating partitions of one collection at once would otherwise
//  give them the same id. Never reused, even by a create that then fails.
static void
s_number_partition (self_t *self, qv_record_t *rec)
{
    for (qv_coll_view_t *v = zlist_first (self->views); v; v = zlist_next (self->views))
        if (v->id == rec->coll_id) {
            if (v->next_part > rec->partition)
                rec->partition = v->next_part;
            v->next_part = rec->partition + 1;
            return;
        }
}

//  Sends msg (encoded) to peer, without waiting: a proxy whose queue is full (it does
//  not read) loses the message rather than stop the intake, and one that disconnected
//  (ROUTER_MANDATORY says so) is marked gone, to be forgotten by s_prune after
//  the loop over the peers. The message
//  stays the caller's.
static void
s_send_to (self_t *self, zframe_t *peer, const qv_msg_t *msg)
{
    qv_wr_t *w = qv_wr_new ();
    if (qv_msg_encode (msg, w) != 0) {
        qv_error ("intake: cannot encode %s for a proxy process: %s", qv_msg_name (msg->id),
                  qv_err_msg ());
        qv_wr_destroy (&w);
        return;
    }
    size_t size;
    const void *data = qv_wr_data (w, &size);
    void *router = zsock_resolve (self->router);
    if (zmq_send (router, zframe_data (peer), zframe_size (peer), ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0
    ||  zmq_send (router, data, size, ZMQ_DONTWAIT) < 0) {
        if (zmq_errno () == EHOSTUNREACH) {
            char *hex = zframe_strhex (peer);
            zhashx_update (self->gone, hex, (void *) 1);
            free (hex);
        }
        else
            qv_warn ("intake: a proxy process does not take its messages (%s): %s dropped",
                     zmq_strerror (zmq_errno ()), qv_msg_name (msg->id));
    }
    qv_wr_destroy (&w);
}

//  Forgets the proxies found disconnected (a restarted proxy is a new peer: without
//  this the list of proxies told about DDL would grow with every restart).
static void
s_prune (self_t *self)
{
    if (zhashx_size (self->gone) == 0)
        return;
    for (void *v = zhashx_first (self->gone); v; v = zhashx_next (self->gone)) {
        const char *hex = zhashx_cursor (self->gone);
        if (zhashx_lookup (self->peers, hex)) {
            zhashx_delete (self->peers, hex);
            qv_info ("intake: a proxy process went away (%zu connected)",
                     zhashx_size (self->peers));
        }
    }
    zhashx_purge (self->gone);
}


//  The catalog for a proxy: CATALOG when serving, else WRITER_DOWN saying why.
static void
s_send_catalog (self_t *self, zframe_t *peer)
{
    if (self->ready) {
        qv_msg_catalog_t *m = qv_msg_catalog_new ();
        m->max_ts = self->max_ts;
        qv_wr_t *w = qv_wr_new ();
        qv_coll_views_write (self->views, w);
        m->views.data = qv_wr_detach (w, &m->views.size);
        qv_wr_reset (w);
        qv_users_write (self->users, w);
        m->users.data = qv_wr_detach (w, &m->users.size);
        qv_wr_destroy (&w);
        s_send_to (self, peer, (qv_msg_t *) m);
        qv_msg_free (&m);
    }
    else {
        qv_msg_writer_down_t *m = qv_msg_writer_down_new ();
        free (m->reason);
        m->reason = strdup (self->unavailable);
        s_send_to (self, peer, (qv_msg_t *) m);
        qv_msg_free (&m);
    }
}

//  The reply to a job refused here (not serving, stopping), straight back to peer.
static void
s_refuse (self_t *self, zframe_t *peer, qv_job_t *job, const char *why)
{
    //  An insert's answer goes without its rows (the link decodes answers schema-less)
    if (job->rec && job->rec->type == QV_REC_INSERT)
        qv_record_destroy (&job->rec);
    qv_job_fail (job, QV_EUNAVAIL, why);
    qv_msg_reply_t *reply = qv_msg_reply_new ();
    reply->job = job;
    s_send_to (self, peer, (qv_msg_t *) reply);
    qv_msg_free (&reply);
}

//  Sends env (the frames before a reply: routing id, and a REQ socket's empty
//  delimiter) and then size bytes of reply through ROUTER sock, never waiting.
static void
s_send_reply (zsock_t *sock, zmsg_t *env, const void *data, size_t size)
{
    zmsg_addmem (env, data, size);
    void *router = zsock_resolve (sock);
    for (zframe_t *f = zmsg_first (env); f; ) {
        zframe_t *next = zmsg_next (env);
        if (zmq_send (router, zframe_data (f), zframe_size (f),
                      (next ? ZMQ_SNDMORE : 0) | ZMQ_DONTWAIT) < 0)
            break;                  //  the client went away, or does not read
        f = next;
    }
}

//  A client's request (PROTOCOL.md) sent here by mistake, or a health check: `ping`
//  is answered as a server answers it while this core serves (UNAVAILABLE saying why
//  while it does not), anything else INVALID_ARGUMENT naming the door to use. env: the
//  frames before the body; sock: the ROUTER it came in on.
static void
s_answer_client (self_t *self, zsock_t *sock, zmsg_t *env, const qv_req_t *req)
{
    const qv_val_t *rid = req->f [QV_F_rid];
    qv_wr_t *w = qv_wr_new ();
    if (req->op == QV_OP_ping && self->ready) {
        qv_reply_open (w, rid);
        qv_wr_key (w, "version");
        qv_wr_str (w, QV_PROTO_VERSION);
        qv_wr_key (w, "role");
        qv_wr_str (w, "writer core");
        qv_reply_close (w);
    }
    else
    if (req->op == QV_OP_ping)
        qv_reply_error (w, rid, QV_EUNAVAIL, self->unavailable);
    else {
        char why [400];
        snprintf (why, sizeof why, "this is a writer core (`quiver serve --roles "
                  "segment-manager,meta,flusher`): it answers proxy processes only; send %s "
                  "to a proxy process (`quiver serve --roles proxy`)",
                  req->op < QV_OP_COUNT ? qv_op_name (req->op) : "requests");
        qv_reply_error (w, rid, QV_EINVAL, why);
    }
    size_t size;
    const void *data = qv_wr_data (w, &size);
    s_send_reply (sock, env, data, size);
    qv_wr_destroy (&w);
}

//  A request of this process's metrics endpoint on inproc "api": `stats` goes to the
//  searcher as a proxy's read would (the reply comes back to the envelope, through
//  s_handle_inbox); anything else as s_answer_client answers it.
static int
s_handle_api (qv_loop_t *loop, zsock_t *reader, void *arg)
{
    (void) loop;
    self_t *self = arg;
    zmsg_t *env = qv_actor_recv (reader);
    if (!env)
        return 0;
    zframe_t *body = zmsg_size (env) > 1 ? zmsg_last (env) : NULL;
    if (!body) {
        zmsg_destroy (&env);
        return 0;
    }
    zmsg_remove (env, body);
    qv_req_t req = { 0 };
    int rc = qv_req_parse (zframe_data (body), zframe_size (body), self->config->max_elems, &req);
    zframe_destroy (&body);
    if (rc == 0 && req.op == QV_OP_stats && self->ready) {
        qv_job_t *job = qv_job_new (++self->next_id);
        job->req = req;             //  the job owns the request now
        s_route_t *route = calloc (1, sizeof *route);
        assert (route);
        route->client = env;
        char key [32];
        snprintf (key, sizeof key, "%llu", (unsigned long long) job->id);
        zhashx_insert (self->routes, key, route);
        qv_msg_read_t *msg = qv_msg_read_new ();
        msg->job = job;
        if (qv_msg_send (self->searcher, (qv_msg_t **) &msg) != 0)
            qv_msg_destroy ((qv_msg_t **) &msg);
        return 0;
    }
    if (rc)
        req.op = QV_OP_COUNT;
    s_answer_client (self, self->api, env, &req);
    qv_req_free (&req);
    zmsg_destroy (&env);
    return 0;
}

//  True if a stream write from peer comes late: from a connection the stream's writes
//  came from before a newer one sent one (its proxy lost that connection and answered
//  its writes UNAVAILABLE; the bridge sends them again, in order, on the new one).
static bool
s_stream_late (self_t *self, zframe_t *peer)
{
    char *hex = zframe_strhex (peer);
    bool late = false;
    if (self->stream_peer && streq (hex, self->stream_peer))
        ;
    else
    if (zhashx_lookup (self->stream_retired, hex))
        late = true;
    else {
        if (self->stream_peer) {
            qv_info ("intake: stream writes come from a new connection now");
            zhashx_update (self->stream_retired, self->stream_peer, (void *) 1);
            free (self->stream_peer);
        }
        self->stream_peer = strdup (hex);
    }
    free (hex);
    return late;
}

static int
s_handle_router (qv_loop_t *loop, zsock_t *reader, void *arg)
{
    (void) loop;
    self_t *self = arg;
    zmsg_t *in = qv_actor_recv (reader);      //  never waiting: see qv_actor.h
    if (!in)
        return 0;
    zframe_t *peer = zmsg_first (in);
    zframe_t *body = zmsg_size (in) > 1 ? zmsg_last (in) : NULL;
    qv_msg_t *msg = NULL;
    int rc = body ? qv_msg_decode (zframe_data (body), zframe_size (body), s_lookup, self, &msg)
                  : qv_err (QV_EPROTO, "an empty message");
    if (rc) {
        //  Not a proxy's message: a client's request, or garbage
        char why [512];
        snprintf (why, sizeof why, "%s", qv_err_msg ());
        qv_req_t req = { 0 };
        int prc = body ? qv_req_parse (zframe_data (body), zframe_size (body),
                                       self->config->max_elems, &req) : QV_EPROTO;
        //  A client's request (a map with an op), valid or not, is answered
        const qv_val_t *op = req.doc ? qv_val_get (qv_doc_root (req.doc), "op") : NULL;
        if (prc == 0 || (op && !qv_val_get (qv_doc_root (req.doc), "msg"))) {
            if (prc)
                req.op = QV_OP_COUNT;   //  not ping: refused, naming the proxy
            zmsg_remove (in, body);
            zframe_destroy (&body);
            s_answer_client (self, self->router, in, &req);
        }
        else
            qv_error ("intake: protocol error from a peer: %s; dropped", why);
        qv_req_free (&req);
        zmsg_destroy (&in);
        return 0;
    }
    peer = zmsg_pop (in);
    zmsg_destroy (&in);
    if (msg->id == QV_MSG_HELLO) {
        char *hex = zframe_strhex (peer);
        if (!zhashx_lookup (self->peers, hex)) {
            qv_info ("intake: a proxy process connected");
            zhashx_insert (self->peers, hex, zframe_dup (peer));
        }
        free (hex);
        s_send_catalog (self, peer);
        qv_msg_destroy (&msg);
        zframe_destroy (&peer);
        return 0;
    }
    if (msg->id == QV_MSG_WRITER_TS) {
        //  The newest commit timestamp acknowledged, for a proxy's strong reads
        ((qv_msg_writer_ts_t *) msg)->ts = self->max_ts;
        s_send_to (self, peer, msg);
        qv_msg_destroy (&msg);
        zframe_destroy (&peer);
        return 0;
    }
    if (msg->id != QV_MSG_WRITE && msg->id != QV_MSG_FLUSH && msg->id != QV_MSG_READ) {
        qv_error ("intake: protocol error: a proxy process sent %s, which the writer core "
                  "does not take; dropped", qv_msg_name (msg->id));
        qv_msg_destroy (&msg);
        zframe_destroy (&peer);
        return 0;
    }
    qv_job_t *job = msg->id == QV_MSG_WRITE ? ((qv_msg_write_t *) msg)->job
                  : msg->id == QV_MSG_FLUSH ? ((qv_msg_flush_t *) msg)->job
                  : ((qv_msg_read_t *) msg)->job;
    if (!self->ready) {
        s_refuse (self, peer, qv_msg_take_job (msg), self->unavailable);
        qv_msg_destroy (&msg);
        zframe_destroy (&peer);
        return 0;
    }
    if (job->sseq && s_stream_late (self, peer)) {
        s_refuse (self, peer, qv_msg_take_job (msg), "a stream write of a connection that "
                  "was replaced (it arrived after the new connection's); not logged");
        qv_msg_destroy (&msg);
        zframe_destroy (&peer);
        return 0;
    }
    if (msg->id == QV_MSG_WRITE && job->rec && job->rec->type == QV_REC_CREATE_PARTITION)
        s_number_partition (self, job->rec);
    s_route_t *route = calloc (1, sizeof *route);
    assert (route);
    route->peer = peer;
    route->id = job->id;
    route->sseq = job->sseq;
    job->id = ++self->next_id;
    if (job->deadline)
        job->deadline += qv_clock_msec ();
    char key [32];
    snprintf (key, sizeof key, "%llu", (unsigned long long) job->id);
    zhashx_insert (self->routes, key, route);
    //  A read here (catalog, stats, a delete to resolve) that waits for anything waits
    //  for every write acknowledged, through whichever proxy
    if (msg->id == QV_MSG_READ && ((qv_msg_read_t *) msg)->guarantee_ts
    &&  ((qv_msg_read_t *) msg)->guarantee_ts < self->max_ts)
        ((qv_msg_read_t *) msg)->guarantee_ts = self->max_ts;
    if (qv_msg_send (msg->id == QV_MSG_READ ? self->searcher : self->segmgr, &msg) != 0)
        qv_msg_destroy (&msg);      //  stopping: the actor is gone
    return 0;
}

//  A DDL record the searcher applied: keep the catalog copy in step.
static void
s_catalog_update (self_t *self, const qv_record_t *rec)
{
    qv_coll_views_apply (self->views, rec);
    if (rec->type == QV_REC_USER && rec->user && qv_users_apply (self->users, rec->user))
        qv_warn ("intake: a logged user change does not apply to the copy for proxy "
                 "processes: %s", qv_err_msg ());
    if (rec->type == QV_REC_CREATE_COLLECTION && rec->schema)
        s_schema_add (self, rec->coll_id, rec->schema);
}

static bool
s_is_ddl (const qv_record_t *rec)
{
    return rec->type == QV_REC_CREATE_COLLECTION || rec->type == QV_REC_DROP_COLLECTION
        || rec->type == QV_REC_CREATE_PARTITION || rec->type == QV_REC_DROP_PARTITION
        || rec->type == QV_REC_ALTER_COLLECTION || rec->type == QV_REC_USER;
}

static int
s_handle_inbox (qv_loop_t *loop, zsock_t *reader, void *arg)
{
    (void) loop;
    self_t *self = arg;
    qv_msg_t *msg = qv_msg_recv (reader);
    if (!msg)
        return 0;
    if (msg->id != QV_MSG_REPLY && msg->id != QV_MSG_RESOLVED) {
        qv_error ("protocol error: the intake does not take %s; dropped", qv_msg_name (msg->id));
        qv_msg_destroy (&msg);
        return 0;
    }
    qv_job_t *job = msg->id == QV_MSG_REPLY ? ((qv_msg_reply_t *) msg)->job
                                            : ((qv_msg_resolved_t *) msg)->job;
    if (msg->id == QV_MSG_REPLY && ((qv_msg_reply_t *) msg)->ts > self->max_ts)
        self->max_ts = ((qv_msg_reply_t *) msg)->ts;
    char key [32];
    snprintf (key, sizeof key, "%llu", (unsigned long long) job->id);
    s_route_t *route = zhashx_lookup (self->routes, key);
    bool ddl = msg->id == QV_MSG_REPLY && job->rc == 0 && job->rec && s_is_ddl (job->rec);
    if (ddl) {
        s_catalog_update (self, job->rec);
        //  The other proxies learn it as a reply to no job of theirs
        job->id = 0;
        bool others = !self->config->fault_no_ddl_broadcast;   //  test hook
        for (zframe_t *p = zhashx_first (self->peers); others && p; p = zhashx_next (self->peers))
            if (!route || !zframe_eq (p, route->peer))
                s_send_to (self, p, msg);
        s_prune (self);
    }
    //  A failed insert's answer holds its rows, which the proxy does not need back (and
    //  cannot decode without their schema)
    if (job->rec && job->rec->type == QV_REC_INSERT)
        qv_record_destroy (&job->rec);
    if (route && route->client) {
        //  The metrics endpoint's `stats`: its reply as the client wants it
        if (job->reply)
            s_send_reply (self->api, route->client, job->reply, job->reply_size);
        zhashx_delete (self->routes, key);
    }
    else
    if (route) {
        job->id = route->id;
        if (job->deadline) {
            int64_t left = job->deadline - qv_clock_msec ();
            job->deadline = left != 0 ? left : -1;
        }
        if (route->sseq && msg->id == QV_MSG_REPLY
        &&  ++self->stream_replies == self->config->fault_drop_stream_reply)
            qv_warn ("intake: the reply to stream message %llu dropped "
                     "(QV_FAULT_DROP_STREAM_REPLY)", (unsigned long long) route->sseq);
        else
            s_send_to (self, route->peer, msg);
        zhashx_delete (self->routes, key);
    }
    qv_msg_destroy (&msg);
    return 0;
}

static void
s_load (self_t *self, zlist_t *views, uint64_t max_ts)
{
    zlist_destroy (&self->views);
    self->views = views;
    for (qv_coll_view_t *v = zlist_first (views); v; v = zlist_next (views))
        s_schema_add (self, v->id, v->schema);
    if (max_ts > self->max_ts)
        self->max_ts = max_ts;
    self->ready = true;
    for (zframe_t *p = zhashx_first (self->peers); p; p = zhashx_next (self->peers))
        s_send_catalog (self, p);
    s_prune (self);
}

static int
s_handle_pipe (qv_loop_t *loop, zsock_t *reader, void *arg)
{
    (void) loop;
    self_t *self = arg;
    char *cmd;
    void *ptr;
    uint64_t ts;
    if (zsock_recv (reader, "sp8", &cmd, &ptr, &ts) != 0)
        return -1;
    int rc = 0;
    if (streq (cmd, "$TERM"))
        rc = -1;
    else
    if (streq (cmd, "USERS")) {
        qv_users_t *users = ptr;
        if (users) {
            qv_users_destroy (&self->users);
            self->users = users;
        }
    }
    else
    if (streq (cmd, "READY"))
        s_load (self, ptr, ts);
    else
    if (streq (cmd, "STOP")) {
        self->ready = false;
        snprintf (self->unavailable, sizeof self->unavailable,
                  "the writer core is shutting down; retry when it is back");
        for (zframe_t *p = zhashx_first (self->peers); p; p = zhashx_next (self->peers))
            s_send_catalog (self, p);
        s_prune (self);
        zsock_signal (reader, 0);
    }
    else
    if (streq (cmd, "WAITING") || streq (cmd, "FAILED")) {
        char *reason = ptr;
        snprintf (self->unavailable, sizeof self->unavailable, "%s%s",
                  streq (cmd, "FAILED") ? "the writer core's recovery failed: " : "", reason);
        free (reason);
        for (zframe_t *p = zhashx_first (self->peers); p; p = zhashx_next (self->peers))
            s_send_catalog (self, p);
        s_prune (self);
    }
    zstr_free (&cmd);
    return rc;
}

void
qv_intake_actor (zsock_t *pipe, void *args)
{
    self_t *self = calloc (1, sizeof *self);
    self->config = args;
    snprintf (self->unavailable, sizeof self->unavailable,
              "the writer core is recovering its data; retry shortly");
    self->router = zsock_new (ZMQ_ROUTER);
    zsock_set_router_mandatory (self->router, 1);
    zsock_set_sndhwm (self->router, 10000);
    zsock_set_rcvhwm (self->router, 10000);
    zsock_set_linger (self->router, 0);
    //  With --curve-secret-key, encrypted; with --curve-peer-key too, only proxy
    //  processes that hold the deployment's key pair get in
    bool keyless = qv_actor_curve_server (self->router, self->config, true,
                                          "the writer core's socket") != 0;
    if (keyless || zsock_bind (self->router, "%s", self->config->bind) < 0) {
        zsock_destroy (&self->router);
        free (self);
        zsock_signal (pipe, 0);
        zstr_send (pipe, keyless ? "the CURVE key file (--curve-secret-key) cannot be read"
                                 : zmq_strerror (zmq_errno ()));
        return;
    }
    char ep [256];
    qv_config_endpoint (self->config, "proxy", ep, sizeof ep);
    self->inbox = zsock_new_pull (ep);
    if (!self->inbox) {
        char why [300];
        snprintf (why, sizeof why, "%s: %s", ep, zmq_strerror (zmq_errno ()));
        zsock_destroy (&self->router);
        free (self);
        zsock_signal (pipe, 0);
        zstr_send (pipe, why);
        return;
    }
    qv_config_endpoint (self->config, "api", ep, sizeof ep);
    self->api = zsock_new (ZMQ_ROUTER);
    if (self->api && zsock_bind (self->api, "%s", ep) < 0)
        zsock_destroy (&self->api);
    if (!self->api)
        qv_warn ("intake: cannot bind %s (%s): no metrics endpoint", ep, zmq_strerror (zmq_errno ()));
    self->segmgr = qv_config_push (self->config, "segmgr");
    self->searcher = qv_config_push (self->config, "searcher");
    self->views = zlist_new ();
    self->users = qv_users_new ();
    assert (self->users);
    self->schemas = zhashx_new ();
    zhashx_set_destructor (self->schemas, s_schema_free);
    self->routes = zhashx_new ();
    zhashx_set_destructor (self->routes, s_route_free);
    self->peers = zhashx_new ();
    zhashx_set_destructor (self->peers, s_frame_free);
    self->gone = zhashx_new ();
    self->stream_retired = zhashx_new ();
    zsock_signal (pipe, 0);
    zstr_send (pipe, "OK");

    qv_loop_t *loop = qv_loop_new ();
    qv_loop_set_nonstop (loop, true);
    qv_loop_reader (loop, pipe, s_handle_pipe, self);
    //  Only s_handle_pipe reads or answers the pipe (no other handler holds it): it is
    //  asked for events only when its fd fires or after s_handle_pipe
    qv_loop_reader_set_private (loop, pipe);
    qv_loop_reader (loop, self->router, s_handle_router, self);
    qv_loop_reader (loop, self->inbox, s_handle_inbox, self);
    if (self->api)
        qv_loop_reader (loop, self->api, s_handle_api, self);
    qv_loop_start (loop);
    qv_loop_destroy (&loop);
    //  Replies the other actors sent while they stopped still go to their proxies
    while (zsock_events (self->inbox) & ZMQ_POLLIN)
        s_handle_inbox (NULL, self->inbox, self);

    zlist_destroy (&self->views);
    qv_users_destroy (&self->users);
    zhashx_destroy (&self->routes);
    zhashx_destroy (&self->peers);
    zhashx_destroy (&self->gone);
    zhashx_destroy (&self->stream_retired);
    free (self->stream_peer);
    zhashx_destroy (&self->schemas);
    zsock_destroy (&self->segmgr);
    zsock_destroy (&self->searcher);
    zsock_destroy (&self->inbox);
    zsock_destroy (&self->api);
    zsock_destroy (&self->router);
    free (self);
}
