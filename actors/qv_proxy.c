//  Proxy actor: decodes and checks requests against the schema, assigns auto ids,
//  routes writes to the segment manager and reads, with their guarantee timestamps,
//  to the searcher, and sends each reply back to its client.
//
//  @interface
//  pipe (from the server, "sp8"):
//    USERS users                 the recovered user store (qv_users_t *, taken)
//    READY views max_ts          recovery done: serve (views: the recovered catalog,
//                                a zlist_t of qv_coll_view_t *, actors/qv_recover.h)
//    FAILED reason               recovery failed: answer UNAVAILABLE with the reason
//    WAITING reason              not serving yet: answer UNAVAILABLE with the reason
//    STOP                        shutting down: answer UNAVAILABLE, route nothing;
//                                signals when done
//    $TERM                       stop
//  sends on the pipe (to the server):
//    REFUSED reason              a proxy process with --auth whose writer core's user
//                                store has no root user, and no QUIVER_ROOT_PASSWORD
//                                here: it answers UNAVAILABLE with the reason, and the
//                                server ends the process (qv_server_refused)
//  takes (inbox, PULL inproc "proxy"; messages: schemas/qv_msg.h):
//    REPLY {job, ts}             from any actor (and itself): job->reply goes to its
//                                client; ts > 0: the commit timestamp of a write
//                                acknowledged (strong reads wait for the largest)
//    RESOLVED {job}              from the searcher: a delete, now of keys and with the
//                                live rows they name counted (or answered, if
//                                job->reply is set)
//    LIVE {}                     from the NATS bridge: its subscriptions are set up
//    VIEWS {max_ts, views}       in a proxy process, from the link: the writer core's
//                                catalog (on each connection to it): serve
//    WRITER_DOWN {reason}        in a proxy process, from the link: the writer core is
//                                not reachable; refuse all but search, query and get
//  sends:
//    WRITE {job}, FLUSH {coll, job}    to the segment manager (in a proxy process,
//                                the link, actors/qv_link.c, stands in for it and for
//                                the searcher)
//    READ {job, guarantee_ts}    to the searcher (job->deadline: when it gives up);
//                                in a proxy process a strong search, query or get
//                                goes to the link (see there);
//                                in a searcher process (--roles searcher) a strong
//                                read goes to the follower instead, which asks the
//                                writer for its newest commit timestamp first; in a
//                                writer without the searcher role a search, query or
//                                get goes to the fan-out actor (searcher processes)
//  The public ROUTER sockets (tcp, and inproc "api" for the bridge) speak PROTOCOL.md.
//
//  DESIGN
//  The ROUTER socket is the only public socket. A request frame is decoded once
//  (qv_req_parse) and travels as a job by pointer; whoever knows the outcome encodes
//  the reply, and the proxy only forwards it. The proxy keeps its own copy of each
//  collection's schema and partition names, updated from the create/drop records whose
//  replies pass through it. It assigns partition ids (it sees every create first, in
//  log order); an id is never reused, even by a create that then failed. Auto ids are
//  hybrid timestamps (physical ms << 18 | logical) from the proxy's own clock, never
//  going backwards, starting above the largest timestamp recovered; the record carries
//  the last one given as its proposed timestamp, which the segment manager's commit
//  timestamp (the one the client sees) goes above, so ids stay unique across restarts.
//
//  Consistency: every read gets a guarantee timestamp when it goes to the searcher,
//  from its `consistency` (else the collection's): strong = the largest commit
//  timestamp of the writes acknowledged so far (every ack passes through here);
//  session = its `guarantee_ts` (strong without one); bounded = now minus
//  --bounded-staleness-ms; eventually = 0. Its deadline is its arrival plus
//  --read-wait-ms.
//
//  The NATS bridge is a client like any other, over a second ROUTER bound on the
//  inproc endpoint "api": its requests take exactly the same path. Its envelope holds
//  one extra frame, the bridge's context: {void *ctx; uint64_t sseq; uint64_t sgen},
//  where sseq is the JetStream stream sequence of the message (0 if none), which goes
//  into the record, and sgen the bridge's consumer generation (the job's sgen); for a
//  NATS message, followed by "op\0collection\0" from its subject, and the body is the
//  message's payload as it came (qv_req_parse_named), never re-encoded.
//  Job ids of bridge requests have their top bit set, so replies find their socket.
//  Stream order: the segment manager logs JetStream writes in stream order, so they
//  leave here in that order, and a delete by filter from the stream must see every
//  earlier message of the stream applied. Stream writes queue in stream_held; a delete
//  by filter leaves the queue only once every stream write sent before it is answered
//  (so its resolution, at the newest acknowledged timestamp, sees them), and the writes
//  behind it wait until its keys have gone to the segment manager. If its resolution
//  fails for now (TIMEOUT, UNAVAILABLE: the bridge rewinds and sends it again), the
//  writes behind it are refused, and so are later ones of the same consumer generation
//  until it comes again (s_stream_hold), so none is logged before it. Writes of other
//  clients are not held: their order between clients is arrival order, as before.
//  With --nats, requests are refused (UNAVAILABLE) until the bridge reports "LIVE"
//  (in a searcher process: the follower, once it has caught up with the feed). A
//  searcher process refuses every write (INVALID_ARGUMENT naming the writer role).
#include "qv_proxy.h"
#include "qv_auth.h"
#include "qv_opstats.h"
#include "qv_actor.h"
#include "qv_stream_hold.h"
#include "qv_bridge.h"
#include "qv_fair.h"
#include "qv_rate.h"
#include "qv_fanout.h"
#include "qv_msg.h"
#include "qv_rc.h"
#include "qv_index.h"
#include "qv_record.h"
#include "qv_recover.h"
#include "qv_scalar.h"
#include "qv_schema_req.h"

#include <sys/time.h>

typedef struct {
    uint32_t id;
    qv_schema_t *schema;
    uint32_t shards;
    uint32_t next_shard;
    zhashx_t *parts;                //  partition name -> id + 1 (applied creates)
    char consistency [16];          //  the collection's default level
    uint32_t next_part;
    int part_key;                   //  partition-key field, or -1
    uint32_t num_partitions;        //  of a partition-key collection
} s_coll_t;

typedef struct {
    const qv_config_t *config;
    zsock_t *pipe;
    zsock_t *router;
    zsock_t *bus;                   //  ROUTER for the NATS bridge (inproc "api")
    zsock_t *inbox;
    zsock_t *inbox_self;            //  PUSH to our own inbox (replies made here)
    zsock_t *segmgr;
    zsock_t *searcher;
    zhashx_t *colls;                //  name -> s_coll_t
    zhashx_t *pending;              //  job id -> s_pending_t
    qv_fair_t *fair;                //  per-client caps and the read window
    qv_rate_t *rate;                //  insert and search rate limits
    qv_auth_t *auth;                //  tokens and privileges (--auth), the user store
    uint64_t next_id;
    uint64_t last_ts;
    uint64_t acked_ts;              //  largest commit timestamp acknowledged to a client
    bool ready;
    bool nats_live;                 //  the bridge is subscribed (or there is no NATS)
    zsock_t *follower;              //  a searcher process: PUSH of strong reads
    zsock_t *fanout;                //  a writer without the searcher role: PUSH of
                                    //  search, query and get (actors/qv_fanout.c)
    char unavailable [512];         //  why requests are refused
    char refused [512];             //  a proxy process that cannot serve (REFUSED): why
    char writer [256];              //  a proxy process: the writer core's endpoint
    char writer_down [512];         //  a proxy process: why the writer core is not
                                    //  reachable ("": it is); only searches, queries
                                    //  and gets (searcher processes) are served then
    //  Stream order (DESIGN): JetStream writes held back, in stream order
    zlistx_t *stream_held;          //  qv_job_t *, tracked in pending
    bool stream_resolving;          //  a stream delete by filter is being resolved:
    uint64_t stream_resolving_id;   //  ... this job (its reply may come without its
                                    //  record: the link frees it when it fails a READ)
    qv_stream_hold_t hold;          //  its resolution failed for now: later ones refused
    uint32_t stream_unacked;        //  stream writes sent on, not yet answered
    //  A proxy process (DESIGN)
    zlistx_t *parked;               //  s_parked_t *: requests waiting for the catalog
    bool refreshing;                //  the catalog was asked for, not yet received
    zlistx_t *retired;              //  qv_schema_t *: schemas of collections reloaded
                                    //  away, which records in flight may point into
} self_t;

static void
    s_dispatch (self_t *self, zsock_t *sock, qv_job_t *job, zmsg_t *env, bool refreshed);

#define S_BUS_JOB (1ull << 63)      //  job id bit: the request came from the bridge
//  A proxy process parks at most this many requests while it asks for the catalog.
#define S_PARKED_MAX 1024

//  A request waiting for the writer core's catalog (a proxy process, DESIGN).
typedef struct {
    zsock_t *sock;
    qv_job_t *job;
    zmsg_t *env;
} s_parked_t;

//  A request waiting for its reply: where the reply goes, and whether it holds a slot
//  of the read window.
typedef struct {
    zmsg_t *env;                    //  the client's envelope (routing id first)
    bool read;                      //  scheduled through the read window
    bool stream;                    //  a stream write counted in stream_unacked
    int op;                         //  the request's op and arrival (its metrics)
    int64_t arrived;
} s_pending_t;

static void
s_coll_free (void **item)
{
    s_coll_t *c = *item;
    if (c) {
        qv_schema_destroy (&c->schema);
        zhashx_destroy (&c->parts);
        free (c);
        *item = NULL;
    }
}

static uint64_t
s_next_ts (self_t *self)
{
    struct timeval tv;
    gettimeofday (&tv, NULL);
    uint64_t phys = ((uint64_t) tv.tv_sec * 1000 + tv.tv_usec / 1000) << 18;
    self->last_ts = phys > self->last_ts ? phys : self->last_ts + 1;
    return self->last_ts;
}

//  Sends reply bytes to the client whose envelope is env (destroyed).
static void
s_send (zsock_t *sock, zmsg_t **env, const void *data, size_t size)
{
    zmsg_addmem (*env, data, size);
    zmsg_send (env, sock);
}

static void
s_send_error (zsock_t *sock, zmsg_t **env, const qv_val_t *rid, int rc, const char *message)
{
    qv_wr_t *w = qv_wr_new ();
    qv_reply_error (w, rid, rc, message);
    size_t size;
    const void *data = qv_wr_data (w, &size);
    s_send (sock, env, data, size);
    qv_wr_destroy (&w);
}

//  The routing id of the client whose envelope is env.
static zframe_t *
s_client_of (zmsg_t *env)
{
    return zmsg_first (env);
}

//  Remembers where the reply of an admitted job goes.
static void
s_track (self_t *self, qv_job_t *job, zmsg_t **env, bool read)
{
    char key [32];
    snprintf (key, sizeof key, "%llu", (unsigned long long) job->id);
    s_pending_t *p = calloc (1, sizeof *p);
    p->env = *env;
    p->read = read;
    p->op = job->req.op;
    p->arrived = job->arrived;
    zhashx_insert (self->pending, key, p);
    *env = NULL;
}

//  Sends a read to the searcher now, or queues it for its turn (qv_fair).
//  Sends a job in a message of kind id (WRITE, READ) to sock.
static void
s_send_job (zsock_t *sock, qv_msg_id_t id, qv_job_t *job)
{
    qv_msg_t *msg = qv_msg_new (id);
    if (id == QV_MSG_WRITE)
        ((qv_msg_write_t *) msg)->job = job;
    else
        ((qv_msg_read_t *) msg)->job = job;
    if (qv_msg_send (sock, &msg) != 0)
        qv_msg_destroy (&msg);      //  stopping: the actor is gone
}

//  The guarantee timestamp of a read (DESIGN above); *strong_p: it is the newest
//  acknowledged write's.
static uint64_t
s_guarantee (self_t *self, const qv_req_t *req, bool *strong_p)
{
    *strong_p = true;
    if (req->op == QV_OP_delete)    //  a delete by filter deletes every acknowledged match
        return self->acked_ts;
    *strong_p = false;
    char level [16] = "strong";
    if (req->f [QV_F_consistency])
        qv_val_strcpy (req->f [QV_F_consistency], level, sizeof level);
    else {
        s_coll_t *c = req->collection [0] ? zhashx_lookup (self->colls, req->collection) : NULL;
        if (c && c->consistency [0])
            memcpy (level, c->consistency, sizeof level);
    }
    if (streq (level, "eventually"))
        return 0;
    if (streq (level, "bounded")) {
        int64_t ms = qv_clock_wall_msec () - self->config->bounded_staleness_ms;
        return ms > 0 ? (uint64_t) ms << QV_TS_LOGICAL_BITS : 0;
    }
    uint64_t ts = 0;
    if (streq (level, "session") && req->f [QV_F_guarantee_ts]
    &&  qv_val_uint (req->f [QV_F_guarantee_ts], &ts) == 0)
        return ts;
    *strong_p = true;
    return self->acked_ts;
}

//  Sends a read to the searcher with its guarantee timestamp.
static void
s_send_read (self_t *self, qv_job_t *job)
{
    qv_msg_read_t *msg = qv_msg_read_new ();
    msg->job = job;
    bool strong;
    msg->guarantee_ts = s_guarantee (self, &job->req, &strong);
    //  A searcher process learns the writer's newest commit timestamp from the writer.
    zsock_t *to = strong && self->follower ? self->follower : self->searcher;
    //  A writer without the searcher role sends reads of data to searcher processes.
    qv_op_t op = job->req.op;
    //  In a proxy process a strong one goes through the link, which asks the writer
    //  core for its newest commit timestamp first: writes acknowledged through other
    //  proxy processes count too.
    if (self->fanout && (op == QV_OP_search || op == QV_OP_query || op == QV_OP_get))
        to = strong && self->config->proxy_process ? self->searcher : self->fanout;
    if (qv_msg_post (to, &msg) != 0)
        qv_msg_free (&msg);         //  stopping: the actor is gone
}

static void
s_schedule_read (self_t *self, qv_job_t *job, zframe_t *client)
{
    job->deadline = qv_clock_msec () + self->config->read_wait_ms;
    job = qv_fair_submit (self->fair, zframe_data (client), zframe_size (client), job);
    if (job)
        s_send_read (self, job);
}

//  The pending entry of a tracked job.
static s_pending_t *
s_pending_of (self_t *self, const qv_job_t *job)
{
    char key [32];
    snprintf (key, sizeof key, "%llu", (unsigned long long) job->id);
    return zhashx_lookup (self->pending, key);
}

//  True for a delete the searcher resolves before it is logged (not yet done): one
//  by filter, to its keys, and one by ids, to the count of live rows its reply
//  reports. A JetStream message's delete by ids is not resolved: its reply only says
//  whether it is durable, and waiting for the writes ahead of it would stall the
//  stream.
static bool
s_resolves (const qv_job_t *job)
{
    return job->rec && job->rec->type == QV_REC_DELETE && job->deleted < 0
        && (job->req.f [QV_F_filter] || !job->sseq);
}

//  A tracked write goes on: a delete to be resolved by the searcher (at the newest
//  acknowledged write), anything else to the segment manager.
static void
s_write_go (self_t *self, qv_job_t *job)
{
    if (s_resolves (job)) {
        job->deadline = qv_clock_msec () + self->config->read_wait_ms;
        if (job->sseq) {
            self->stream_resolving = true;
            self->stream_resolving_id = job->id;
        }
        s_send_read (self, job);
        return;
    }
    if (job->sseq) {
        job->rec->sseq = job->sseq;
        s_pending_t *p = s_pending_of (self, job);
        if (p && !p->stream) {
            p->stream = true;
            self->stream_unacked++;
        }
    }
    s_send_job (self->segmgr, QV_MSG_WRITE, job);
}

//  Sends on the stream writes that may go now (DESIGN: stream order).
static void
s_stream_pump (self_t *self)
{
    qv_job_t *job;
    while (!self->stream_resolving && (job = zlistx_first (self->stream_held))) {
        if (s_resolves (job) && self->stream_unacked > 0)
            break;                  //  resolved once every earlier stream write is answered
        zlistx_detach_cur (self->stream_held);
        s_write_go (self, job);
    }
}

//  A stream write arriving while the stream is held (s_stream_hold): QV_EUNAVAIL if it
//  comes after the failed one in the same consumer generation; else 0, ending the
//  hold (the failed message came again, or the bridge rewound).
static int
s_stream_held_back (self_t *self, const qv_job_t *job)
{
    if (qv_stream_hold_blocks (&self->hold, job->sseq, job->sgen))
        return qv_err (QV_EUNAVAIL, "stream message %llu failed here; this one waits until "
                       "it is sent again", (unsigned long long) self->hold.sseq);
    return 0;
}

static void s_finish (self_t *self, qv_job_t *job);
static void s_users_load (self_t *self, const qv_msg_bin_t *bin);

//  A stream delete by filter whose resolution failed for now (it comes again, when the
//  bridge rewinds): the stream writes held behind it must not be logged before it, so
//  they are refused (UNAVAILABLE), and so are the later ones of the same consumer
//  generation that arrive until it is sent again (s_stream_held_back). A delete the
//  bridge skips (refused for good: a bad filter, a dropped collection) holds nothing:
//  the writes behind it go on.
static void
s_stream_hold (self_t *self, const qv_job_t *failed)
{
    char code [32], error [1024];
    qv_reply_status (failed->reply, failed->reply_size, code, sizeof code, error, sizeof error);
    if (!qv_reply_retryable (code, error))
        return;                     //  refused for good: the bridge skips it
    self->hold = (qv_stream_hold_t) { failed->sseq, failed->sgen };
    zlistx_t *refused = zlistx_new ();
    for (qv_job_t *job = zlistx_first (self->stream_held); job; job = zlistx_next (self->stream_held))
        if (job->sgen == failed->sgen && job->sseq > failed->sseq)
            zlistx_add_end (refused, zlistx_detach_cur (self->stream_held));
    qv_job_t *job;
    while ((job = zlistx_detach (refused, NULL))) {
        s_stream_held_back (self, job);     //  refused: the hold's message recorded
        qv_job_fail (job, QV_EUNAVAIL, qv_err_msg ());
        s_finish (self, job);
    }
    zlistx_destroy (&refused);
}

//  The id of the partition a write names in `partition` (absent: `_default`).
static int
s_partition_of (s_coll_t *c, const qv_req_t *req, uint32_t *part)
{
    const qv_val_t *v = req->f [QV_F_partition];
    *part = 0;
    if (!v)
        return 0;
    if (c->part_key >= 0)
        return qv_err (QV_EINVAL, "collection '%s' uses partition key '%s': rows go to the partition "
                       "their key hashes to; leave out 'partition'", req->collection,
                       c->schema->fields [c->part_key].name);
    char name [QV_NAME_MAX + 1];    //  a valid name (qv_req_parse checked it)
    qv_val_strcpy (v, name, sizeof name);
    uintptr_t id = (uintptr_t) zhashx_lookup (c->parts, name);
    if (!id)
        return qv_err (QV_ENOTFOUND, "partition '%s' does not exist in collection '%s'",
                       name, req->collection);
    *part = (uint32_t) (id - 1);
    return 0;
}

//  Builds the record of a write request (its stream sequence is set as it leaves,
//  s_write_go); 0, or QV_* on a bad request.
static int
s_prepare_write (self_t *self, qv_job_t *job)
{
    qv_req_t *req = &job->req;
    s_coll_t *c = zhashx_lookup (self->colls, req->collection);
    int rc;
    switch (req->op) {
        case QV_OP_create_collection: {
            if (c)
                return qv_err (QV_EEXIST, "collection '%s' already exists", req->collection);
            qv_record_t *rec = job->rec = qv_record_new (QV_REC_CREATE_COLLECTION);
            snprintf (rec->name, sizeof rec->name, "%s", req->collection);
            rec->schema = qv_schema_from_request (req, &rc);
            if (!rec->schema)
                return rc;
            if ((rc = qv_batch_check_defaults (rec->schema))
            ||  (rc = qv_partition_check_schema (rec->schema)))
                return rc;
            //  A partition-key collection's record always carries num_partitions: that is
            //  what makes its key hash rows (collections logged before partitions existed
            //  may carry the flag, and keep ignoring it).
            bool keyed = qv_partition_key_field (rec->schema) >= 0;
            if (keyed)
                rec->num_partitions = QV_PARTITIONS_KEYED;
            if (req->f [QV_F_num_partitions]) {
                uint64_t np = 0;
                qv_val_uint (req->f [QV_F_num_partitions], &np);
                if (!keyed)
                    return qv_err (QV_EINVAL, "num_partitions applies to a collection with a partition_key field");
                if (np < 1 || np > QV_PARTITIONS_MAX)
                    return qv_err (QV_EINVAL, "num_partitions must be 1..%d", QV_PARTITIONS_MAX);
                rec->num_partitions = (uint32_t) np;
            }
            uint64_t shards = 1;
            if (req->f [QV_F_shards])
                qv_val_uint (req->f [QV_F_shards], &shards);
            if (shards < 1 || shards > 64)
                return qv_err (QV_EINVAL, "shards must be 1..64");
            rec->shards = (uint32_t) shards;
            snprintf (rec->consistency, sizeof rec->consistency, "strong");
            //  qv_req_parse has checked that it is one of the four levels
            if (req->f [QV_F_consistency]
            &&  qv_val_strcpy (req->f [QV_F_consistency], rec->consistency, sizeof rec->consistency))
                return qv_err (QV_EINVAL, "consistency must be strong, bounded, session or eventually");
            if (req->f [QV_F_description]) {
                const char *s;
                size_t n;
                qv_val_str (req->f [QV_F_description], &s, &n);
                rec->description = strndup (s, n);
            }
            if (req->f [QV_F_ttl_seconds])
                qv_val_uint (req->f [QV_F_ttl_seconds], &rec->ttl_seconds);
            break;
        }
        case QV_OP_drop_collection:
            if (!c)
                return qv_err (QV_ENOTFOUND, "collection '%s' does not exist", req->collection);
            job->rec = qv_record_new (QV_REC_DROP_COLLECTION);
            job->rec->coll_id = c->id;
            break;
        case QV_OP_alter_collection: {
            if (!c)
                return qv_err (QV_ENOTFOUND, "collection '%s' does not exist", req->collection);
            qv_record_t *rec = job->rec = qv_record_new (QV_REC_ALTER_COLLECTION);
            rec->coll_id = c->id;
            //  qv_req_parse has checked ttl_seconds' range and consistency's level
            if (req->f [QV_F_ttl_seconds]) {
                qv_val_uint (req->f [QV_F_ttl_seconds], &rec->ttl_seconds);
                rec->alters |= QV_ALTER_TTL;
            }
            if (req->f [QV_F_consistency]) {
                if (qv_val_strcpy (req->f [QV_F_consistency], rec->consistency, sizeof rec->consistency))
                    return qv_err (QV_EINVAL, "consistency must be strong, bounded, session or eventually");
                rec->alters |= QV_ALTER_CONSISTENCY;
            }
            if (req->f [QV_F_description]) {
                const char *s;
                size_t n;
                qv_val_str (req->f [QV_F_description], &s, &n);
                if (!(rec->description = strndup (s, n)))
                    return qv_err (QV_ENOMEM, "out of memory");
                rec->alters |= QV_ALTER_DESCRIPTION;
            }
            if (!rec->alters)
                return qv_err (QV_EINVAL, "alter_collection needs at least one of ttl_seconds, "
                               "consistency, description");
            break;
        }
        case QV_OP_insert:
        case QV_OP_upsert: {
            if (!c)
                return qv_err (QV_ENOTFOUND, "collection '%s' does not exist", req->collection);
            uint32_t part;
            if ((rc = s_partition_of (c, req, &part)))
                return rc;
            const qv_field_t *pk = &c->schema->fields [c->schema->pk];
            if (req->op == QV_OP_upsert && pk->auto_id)
                return qv_err (QV_EINVAL, "upsert needs primary keys, but '%s' is auto_id", pk->name);
            qv_record_t *rec = job->rec = qv_record_new (QV_REC_INSERT);
            rec->schema = qv_schema_dup (c->schema);
            if (!rec->schema)
                return qv_err (QV_ENOMEM, "out of memory");
            //  keep_ids: the rows bring the auto_id keys a server assigned before (a
            //  restore): read as given, the field keeps auto_id
            bool keep_ids = false;
            if (req->f [QV_F_keep_ids])
                qv_val_bool (req->f [QV_F_keep_ids], &keep_ids);
            keep_ids = keep_ids && pk->auto_id;
            rec->schema->fields [c->schema->pk].auto_id = !keep_ids && pk->auto_id;
            rc = qv_batch_from_request (rec->schema, req->f [QV_F_rows], req->f [QV_F_columns],
                                        1u << 20, &rec->batch);
            rec->schema->fields [c->schema->pk].auto_id = pk->auto_id;
            if (rc)
                return rc;
            rec->coll_id = c->id;
            rec->partition = part;
            rec->num_partitions = c->num_partitions;    //  the segment manager splits by key
            rec->upsert = req->op == QV_OP_upsert;
            rec->shard = c->next_shard++ % c->shards;
            rec->ts = s_next_ts (self);
            if (keep_ids) {
                //  Auto ids are timestamps: a kept one at or above the clock could
                //  come again (and would push the clock ahead if taken as one)
                const int64_t *ids = (const int64_t *) rec->batch->cols [c->schema->pk].data;
                for (uint32_t r = 0; r < rec->batch->n; r++)
                    if (ids [r] <= 0 || (uint64_t) ids [r] >= rec->ts)
                        return qv_err (QV_EINVAL, "keep_ids: row %u's key %lld is not an id this "
                                       "server could have assigned (auto_id keys are timestamps, "
                                       "above 0 and below the clock's %llu)", r,
                                       (long long) ids [r], (unsigned long long) rec->ts);
            }
            else
            if (pk->auto_id) {
                int64_t *ids = (int64_t *) rec->batch->cols [c->schema->pk].data;
                ids [0] = (int64_t) rec->ts;
                for (uint32_t r = 1; r < rec->batch->n; r++)
                    ids [r] = (int64_t) s_next_ts (self);
                rec->ts = self->last_ts;    //  the commit timestamp goes above every id
            }
            job->bytes = qv_batch_bytes (rec->batch);
            return 0;
        }
        case QV_OP_delete: {
            if (!c)
                return qv_err (QV_ENOTFOUND, "collection '%s' does not exist", req->collection);
            if ((req->f [QV_F_filter] != NULL) == (req->f [QV_F_ids] != NULL))
                return qv_err (QV_EINVAL, "delete needs either 'ids' or 'filter'");
            uint32_t part;
            if ((rc = s_partition_of (c, req, &part)))
                return rc;
            qv_record_t *rec = job->rec = qv_record_new (QV_REC_DELETE);
            rec->coll_id = c->id;
            rec->partition = part;
            rec->in_partition = req->f [QV_F_partition] != NULL;
            if (req->f [QV_F_filter]) {
                if (qv_val_len (req->f [QV_F_filter]) == 0)
                    return qv_err (QV_EINVAL, "an empty filter would delete every row; give a condition");
                return 0;           //  keys and ts come once resolved (s_resolves)
            }
            rc = qv_keys_from_request (&c->schema->fields [c->schema->pk], req->f [QV_F_ids],
                                       1u << 20, &rec->keys);
            if (rc)
                return rc;
            job->bytes = rec->keys.n * 16;
            break;
        }
        case QV_OP_create_partition:
        case QV_OP_drop_partition: {
            if (!c)
                return qv_err (QV_ENOTFOUND, "collection '%s' does not exist", req->collection);
            if (c->part_key >= 0)
                return qv_err (QV_EINVAL, "collection '%s' uses partition key '%s': its partitions are "
                               "internal", req->collection, c->schema->fields [c->part_key].name);
            const char *s;          //  a valid name (qv_req_parse checked it)
            size_t n;
            qv_val_str (req->f [QV_F_partition], &s, &n);
            qv_record_t *rec = job->rec = qv_record_new (req->op == QV_OP_create_partition
                                                         ? QV_REC_CREATE_PARTITION : QV_REC_DROP_PARTITION);
            rec->coll_id = c->id;
            rec->in_partition = true;
            memcpy (rec->name, s, n);
            uintptr_t id = (uintptr_t) zhashx_lookup (c->parts, rec->name);
            if (req->op == QV_OP_create_partition) {
                if (id)
                    return qv_err (QV_EEXIST, "partition '%s' already exists in collection '%s'",
                                   rec->name, req->collection);
                if (zhashx_size (c->parts) >= QV_PARTITIONS_MAX)
                    return qv_err (QV_ELIMIT, "collection '%s' has %d partitions, the limit",
                                   req->collection, QV_PARTITIONS_MAX);
                rec->partition = c->next_part++;
            }
            else {
                if (!id)
                    return qv_err (QV_ENOTFOUND, "partition '%s' does not exist in collection '%s'",
                                   rec->name, req->collection);
                if (id == 1)
                    return qv_err (QV_EINVAL, "the '%s' partition cannot be dropped", QV_PARTITION_DEFAULT);
                rec->partition = (uint32_t) (id - 1);
                //  Gone for the requests that follow, before the drop is logged: a write
                //  into it would be logged after the drop, into a partition no longer
                //  there (s_handle_inbox puts it back if the drop fails).
                zhashx_delete (c->parts, rec->name);
            }
            break;
        }
        case QV_OP_create_index:
        case QV_OP_drop_index: {
            if (!c)
                return qv_err (QV_ENOTFOUND, "collection '%s' does not exist", req->collection);
            qv_record_t *rec = job->rec = qv_record_new (req->op == QV_OP_create_index
                                                         ? QV_REC_CREATE_INDEX : QV_REC_DROP_INDEX);
            rec->coll_id = c->id;
            int fi = -1;
            if (req->f [QV_F_field]) {
                if (qv_val_strcpy (req->f [QV_F_field], rec->index.field, sizeof rec->index.field) == 0)
                    fi = qv_schema_find (c->schema, rec->index.field);
                if (fi < 0) {
                    const char *s;
                    size_t n;
                    qv_val_str (req->f [QV_F_field], &s, &n);
                    return qv_err (QV_EINVAL, "collection '%s' has no field '%.*s'", req->collection,
                                   (int) (n > 64 ? 64 : n), s);
                }
            }
            else {
                for (int i = c->schema->nfields - 1; i >= 0; i--)
                    if (c->schema->fields [i].type == QV_FLOAT_VECTOR)
                        fi = i;
                snprintf (rec->index.field, sizeof rec->index.field, "%s", c->schema->fields [fi].name);
            }
            if (req->op == QV_OP_drop_index)
                break;
            const qv_field_t *f = &c->schema->fields [fi];
            rc = qv_index_def_from_request (req->f [QV_F_index_type], req->f [QV_F_params], &rec->index);
            if (rc || (rc = qv_scalar_check (rec->index.type, f)))
                return rc;
            if (qv_scalar_is_type (rec->index.type)) {
                if (req->f [QV_F_metric])
                    return qv_err (QV_EINVAL, "metric applies to vector indexes, not to %s on field '%s'",
                                   rec->index.type, f->name);
                break;
            }
            if (req->f [QV_F_metric]) {
                char metric [16];
                if (qv_val_strcpy (req->f [QV_F_metric], metric, sizeof metric)
                ||  qv_metric_parse (metric) != (int) f->metric)
                    return qv_err (QV_EINVAL, "metric must equal field '%s''s metric %s (it is set on the field)",
                                   f->name, qv_metric_name (f->metric));
            }
            //  Let the index library judge the parameters (e.g. IVF_PQ's m must divide dim).
            qv_index_params_t params = { rec->index.M, rec->index.ef_construction, rec->index.nlist,
                                         rec->index.pq_m, rec->index.pq_nbits, 0, 0, 0 };
            qv_index_t *probe = qv_index_new (rec->index.type, f->metric, f->dim, &params);
            if (!probe)
                return QV_EINVAL;
            qv_index_destroy (&probe);
            break;
        }
        default:
            if (!qv_users_op_changes (req->op))
                return qv_err (QV_ERR, "not a write");
            qv_user_change_t *change;
            if ((rc = qv_users_change_from_request (qv_auth_users (self->auth), req, &change)))
                return rc;
            job->rec = qv_record_new (QV_REC_USER);
            job->rec->user = change;
            break;
    }
    job->rec->ts = s_next_ts (self);
    return 0;
}

//  A searcher process answers reads only.
static int
s_refuse_write (int op)
{
    return qv_err (QV_EINVAL, "%s is a write, and this is a searcher process (quiver serve "
                   "--roles searcher), which answers reads only: send writes to the writer "
                   "(the process running the segment-manager role; today the embedded server)",
                   qv_op_name ((qv_op_t) op));
}

static void
s_frame_release (void *owner)
{
    zframe_t *frame = owner;
    zframe_destroy (&frame);
}

//  The query vectors of a search, counted against its collection's vector field (the
//  request's dim when it gives one); 1 if they cannot be counted (the searcher says why).
static size_t
s_nq (self_t *self, const qv_req_t *req)
{
    uint64_t dim = 0;
    if (req->f [QV_F_dim])
        qv_val_uint (req->f [QV_F_dim], &dim);
    s_coll_t *c = zhashx_lookup (self->colls, req->collection);
    if (!dim && c && c->schema && c->schema->vec >= 0)
        dim = c->schema->fields [c->schema->vec].dim;
    size_t nq = dim <= UINT32_MAX ? qv_req_nq (req, (uint32_t) dim) : 0;
    return nq ? nq : 1;
}

//  One request from a client of sock (the public ROUTER, or the bridge's).
static int
s_handle_request (self_t *self, zsock_t *sock, zmsg_t *msg)
{
    //  Envelope: every frame but the last (routing id, and REQ's empty delimiter).
    zframe_t *body = zmsg_last (msg);
    zmsg_remove (msg, body);
    zmsg_t *env = msg;
    qv_job_t *job = qv_job_new (++self->next_id | (sock == self->bus ? S_BUS_JOB : 0));
    job->arrived = qv_clock_usec ();
    qv_req_t *req = &job->req;
    //  A NATS payload names its op and collection in the bridge's context: "op\0coll\0"
    const char *op_name = NULL, *coll_name = NULL, *header_token = NULL;
    if (sock == self->bus && zmsg_size (env) == 2) {
        zmsg_first (env);           //  the bridge's routing id, then its context
        zframe_t *ctx = zmsg_next (env);
        size_t n = ctx ? zframe_size (ctx) : 0, head = sizeof (void *) + 16;
        if (n >= head) {
            memcpy (&job->sseq, zframe_data (ctx) + sizeof (void *), 8);
            memcpy (&job->sgen, zframe_data (ctx) + sizeof (void *) + 8, 8);
        }
        const char *names = n > head ? (const char *) zframe_data (ctx) + head : NULL;
        const char *end = names ? memchr (names, 0, n - head) : NULL;
        const char *stop = names ? names + (n - head) : NULL;
        const char *coll_end = end && end + 1 < stop ? memchr (end + 1, 0, (size_t) (stop - end - 1)) : NULL;
        if (coll_end) {
            op_name = names;
            coll_name = end + 1;
            //  and the token of the message's Authorization header, if it had one
            if (coll_end + 1 < stop && memchr (coll_end + 1, 0, (size_t) (stop - coll_end - 1)))
                header_token = coll_end + 1;
        }
    }
    int rc = 0;
    size_t body_size = zframe_size (body);
    //  The client's address, for slowing down repeated authentication failures: a
    //  ZeroMQ client's, or on the in-process socket the one the REST gateway names in
    //  its connection's routing id ("http:ADDRESS#n", qv_client_new_as). NATS does not
    //  say who published a message, so the NATS bridge's requests count as one peer,
    //  "NATS": failures there slow down new tokens over NATS only (tokens verified
    //  before go on), and a flood of bad tokens cannot hold the proxy's thread in
    //  crypto_pwhash nor guess at full speed. Not its stream messages (sseq): a
    //  refusal there is final (the bridge acknowledges and drops the message), so a
    //  slow-down would drop good rows that follow a few stale tokens, and a stream
    //  publisher never sees a reply to guess from
    char peer [64] = "";
    const char *addr = sock == self->bus ? NULL : zframe_meta (body, "Peer-Address");
    if (addr)
        snprintf (peer, sizeof peer, "%s", addr);
    else
    if (sock == self->bus && zmsg_size (env) == 2) {
        if (!job->sseq)
            snprintf (peer, sizeof peer, "NATS");
    }
    else
    if (sock == self->bus && zmsg_size (env) == 1) {
        zframe_t *id = zmsg_first (env);
        size_t n = zframe_size (id);
        const char *text = (const char *) zframe_data (id);
        const char *hash = n > 5 ? memchr (text, '#', n) : NULL;
        if (hash && memcmp (text, "http:", 5) == 0 && (size_t) (hash - text - 5) < sizeof peer)
            memcpy (peer, text + 5, (size_t) (hash - text - 5));
    }
    if (zframe_size (body) > self->config->max_request) {
        rc = qv_err (QV_ELIMIT, "request of %zu bytes exceeds the limit of %zu bytes",
                     zframe_size (body), self->config->max_request);
        zframe_destroy (&body);
    }
    else
    if (op_name)
        rc = qv_req_parse_named (zframe_data (body), zframe_size (body), self->config->max_elems,
                                 op_name, coll_name, s_frame_release, body, req);
    else        //  decoded in the frame, which the request keeps: its vectors are not copied
        rc = qv_req_parse_owned (zframe_data (body), zframe_size (body), self->config->max_elems,
                                 s_frame_release, body, req);
    const qv_val_t *rid = req->doc ? req->f [QV_F_rid] : NULL;
    int op_parsed = rc == 0 ? (int) req->op : QV_OP_COUNT;     //  unknown until parsed
    if (rc == 0 && self->refused [0])
        rc = qv_err (QV_EUNAVAIL, "%s", self->refused);
    if (rc == 0 && !self->ready)
        rc = qv_err (QV_EUNAVAIL, "%s", self->unavailable);
    if (rc == 0 && !self->nats_live && self->follower)
        rc = qv_err (QV_EUNAVAIL, "this searcher process is catching up with the writer's "
                     "committed feed (NATS %s, and the WAL in the object store); retry shortly",
                     self->config->nats_url);
    //  (`stats` is answered meanwhile: a proxy process's bridge asks it where the
    //  writer core's log is before it starts its stream consumer)
    if (rc == 0 && !self->nats_live && req->op != QV_OP_stats)
        rc = qv_err (QV_EUNAVAIL, "the server is connecting to NATS (%s) and setting up its "
                     "subscriptions%s; retry shortly", self->config->nats_url,
                     self->config->ingest_stream [0] ? " and stream consumer" : "");
    char user [QV_NAME_MAX + 1] = "";
    if (rc == 0)
        rc = qv_auth_check (self->auth, req, header_token, peer, qv_clock_msec (), user,
                            sizeof user);
    snprintf (req->user, sizeof req->user, "%s", user);     //  a grant's grantor
    //  A proxy process without its writer core still sends reads of data to
    //  searcher processes
    qv_op_t op = req->op;
    if (rc == 0 && self->writer_down [0] && op != QV_OP_ping && op != QV_OP_search
    &&  op != QV_OP_query && op != QV_OP_get)
        rc = qv_err (QV_EUNAVAIL, "%s", self->writer_down);
    //  Every request but ping counts against its client's cap until its reply is sent
    //  (the bridge bounds its own requests in flight: S_CORE_HIGH, the stream window).
    zframe_t *client = s_client_of (env);
    //  Rate limits (not on a stream's messages: the bridge paces those)
    if (rc == 0 && !job->sseq && (op == QV_OP_insert || op == QV_OP_upsert))
        rc = qv_rate_take (self->rate, QV_RATE_INSERT_BYTES, zframe_data (client),
                           zframe_size (client), user, (double) body_size, job->arrived);
    if (rc == 0 && op == QV_OP_search)
        rc = qv_rate_take (self->rate, QV_RATE_SEARCHES, zframe_data (client),
                           zframe_size (client), user, (double) s_nq (self, req), job->arrived);
    if (rc == 0 && req->op != QV_OP_ping)
        rc = qv_fair_admit (self->fair, zframe_data (client), zframe_size (client), sock != self->bus);
    if (rc) {
        qv_opstats_record (op_parsed, rc, qv_clock_usec () - job->arrived);
        s_send_error (sock, &env, rid, rc, qv_err_msg ());
        qv_job_destroy (&job);
        return 0;
    }
    s_dispatch (self, sock, job, env, false);
    return 0;
}

//  Requests that name a collection the proxy must know (it builds their records).
static bool
s_names_collection (qv_op_t op)
{
    return op == QV_OP_insert || op == QV_OP_upsert || op == QV_OP_delete
        || op == QV_OP_create_index || op == QV_OP_drop_index || op == QV_OP_create_partition
        || op == QV_OP_drop_partition || op == QV_OP_flush || op == QV_OP_drop_collection
        || op == QV_OP_alter_collection;
}

//  True if the proxy knows what req names: its collection and, if it names one, its
//  partition (a proxy process learns DDL made through other proxies a moment late).
static bool
s_knows (self_t *self, const qv_req_t *req)
{
    s_coll_t *c = zhashx_lookup (self->colls, req->collection);
    if (!c)
        return false;
    const qv_val_t *part = req->f [QV_F_partition];
    if (!part || c->part_key >= 0 || req->op == QV_OP_create_partition)
        return true;
    char name [QV_NAME_MAX + 1];
    return qv_val_strcpy (part, name, sizeof name) != 0
        || zhashx_lookup (c->parts, name) != NULL;
}

//  An admitted request (job, its client's envelope env: taken): route it, or answer it.
//  refreshed: the catalog was asked for again because of it (a proxy process).
static void
s_dispatch (self_t *self, zsock_t *sock, qv_job_t *job, zmsg_t *env, bool refreshed)
{
    qv_req_t *req = &job->req;
    const qv_val_t *rid = req->f [QV_F_rid];
    zframe_t *client = s_client_of (env);
    int rc = 0;
    //  A proxy process learns of DDL made through other proxy processes a moment after
    //  it is answered there: a request naming a collection or partition it does not
    //  know waits for the writer core's catalog once before it is refused
    if (self->config->proxy_process && !refreshed && s_names_collection (req->op)
    &&  req->collection [0] && !s_knows (self, req)
    &&  zlistx_size (self->parked) < S_PARKED_MAX) {
        s_parked_t *p = calloc (1, sizeof *p);
        assert (p);
        p->sock = sock;
        p->job = job;
        p->env = env;
        zlistx_add_end (self->parked, p);
        if (!self->refreshing) {
            self->refreshing = true;
            qv_msg_hello_t *hello = qv_msg_hello_new ();
            if (qv_msg_post (self->segmgr, &hello) != 0)
                qv_msg_free (&hello);
        }
        return;
    }
    switch (req->op) {
        case QV_OP_ping: {
            qv_wr_t *w = qv_wr_new ();
            qv_reply_open (w, rid);
            qv_wr_key (w, "version");
            qv_wr_str (w, QV_PROTO_VERSION);
            qv_reply_close (w);
            size_t size;
            const void *data = qv_wr_data (w, &size);
            qv_opstats_record (QV_OP_ping, 0, qv_clock_usec () - job->arrived);
            s_send (sock, &env, data, size);
            qv_wr_destroy (&w);
            qv_job_destroy (&job);
            return;
        }
        case QV_OP_list_users:
        case QV_OP_list_roles:
        case QV_OP_describe_user:
        case QV_OP_describe_role: {
            qv_wr_t *w = qv_wr_new ();
            qv_reply_open (w, rid);
            qv_users_t *users = qv_auth_users (self->auth);
            if (req->op == QV_OP_list_users)
                qv_users_write_users (users, w);
            else
            if (req->op == QV_OP_list_roles)
                qv_users_write_roles (users, w);
            else {
                char name [QV_NAME_MAX + 1] = "";
                bool role = req->op == QV_OP_describe_role;
                qv_val_strcpy (req->f [role ? QV_F_role : QV_F_user], name, sizeof name);
                rc = role ? qv_users_describe_role (users, name, w)
                          : qv_users_describe (users, name, w);
            }
            qv_reply_close (w);
            if (rc == 0) {
                size_t size;
                const void *data = qv_wr_data (w, &size);
                qv_fair_release (self->fair, zframe_data (client), zframe_size (client));
                qv_opstats_record (req->op, 0, qv_clock_usec () - job->arrived);
                s_send (sock, &env, data, size);
                qv_job_destroy (&job);
            }
            qv_wr_destroy (&w);
            if (rc == 0)
                return;
            break;
        }
        case QV_OP_create_user:
        case QV_OP_drop_user:
        case QV_OP_update_password:
        case QV_OP_create_role:
        case QV_OP_drop_role:
        case QV_OP_grant_role:
        case QV_OP_revoke_role:
        case QV_OP_grant_privilege:
        case QV_OP_revoke_privilege:
        case QV_OP_create_collection:
        case QV_OP_drop_collection:
        case QV_OP_insert:
        case QV_OP_upsert:
        case QV_OP_delete:
        case QV_OP_create_index:
        case QV_OP_drop_index:
        case QV_OP_create_partition:
        case QV_OP_drop_partition:
        case QV_OP_alter_collection:
            if (self->follower) {
                rc = s_refuse_write (req->op);
                break;
            }
            rc = s_prepare_write (self, job);
            if (rc == 0 && job->sseq)
                rc = s_stream_held_back (self, job);
            if (rc)
                break;
            s_track (self, job, &env, false);
            if (job->sseq) {
                zlistx_add_end (self->stream_held, job);
                s_stream_pump (self);
            }
            else
                s_write_go (self, job);
            return;
        case QV_OP_flush: {
            if (self->follower) {
                rc = s_refuse_write (req->op);
                break;
            }
            s_coll_t *c = zhashx_lookup (self->colls, req->collection);
            if (!c) {
                rc = qv_err (QV_ENOTFOUND, "collection '%s' does not exist", req->collection);
                break;
            }
            qv_msg_flush_t *flush = qv_msg_flush_new ();
            flush->coll = c->id;
            flush->job = job;
            s_track (self, job, &env, false);
            if (qv_msg_post (self->segmgr, &flush) != 0)
                qv_msg_free (&flush);
            return;
        }
        default:
            //  Tracked first: once sent, the job may be answered, and in a proxy
            //  process freed by the link, before this line would run
            s_track (self, job, &env, true);
            s_schedule_read (self, job, client);
            return;
    }
    qv_fair_release (self->fair, zframe_data (client), zframe_size (client));
    qv_opstats_record (req->op, rc, qv_clock_usec () - job->arrived);
    s_send_error (sock, &env, rid, rc, qv_err_msg ());
    qv_job_destroy (&job);
}

static int
s_handle_router (qv_loop_t *loop, zsock_t *reader, void *arg)
{
    (void) loop;
    //  Never waiting (see qv_actor.h); the requests already queued are taken in this
    //  turn (QV_ACTOR_DRAIN)
    for (int n = 0; n < QV_ACTOR_DRAIN; n++) {
        zmsg_t *msg = qv_actor_recv (reader);
        if (!msg)
            break;
        if (s_handle_request ((self_t *) arg, reader, msg) == -1)
            return -1;
    }
    return 0;
}

static void
s_job_free (void *item)
{
    qv_job_t *job = item;
    qv_job_destroy (&job);
}

static void
s_job_free_item (void **item)
{
    qv_job_destroy ((qv_job_t **) item);
}

static s_coll_t *
s_coll_by_id (self_t *self, uint32_t id)
{
    for (s_coll_t *c = zhashx_first (self->colls); c; c = zhashx_next (self->colls))
        if (c->id == id)
            return c;
    return NULL;
}

static void
s_add_partition (s_coll_t *c, uint32_t id, const char *name)
{
    zhashx_update (c->parts, name, (void *) (uintptr_t) (id + 1));
    if (id >= c->next_part)
        c->next_part = id + 1;
}

//  A new collection in the proxy's copy (schema: taken).
static s_coll_t *
s_coll_add (self_t *self, uint32_t id, const char *name, qv_schema_t **schema_p,
            uint32_t shards, uint32_t num_partitions, const char *consistency)
{
    s_coll_t *c = calloc (1, sizeof *c);
    assert (c);
    c->id = id;
    c->schema = *schema_p;
    *schema_p = NULL;
    c->shards = shards ? shards : 1;
    c->parts = zhashx_new ();
    snprintf (c->consistency, sizeof c->consistency, "%s", consistency);
    c->part_key = num_partitions ? qv_partition_key_field (c->schema) : -1;
    if (c->part_key >= 0) {
        //  Internal partitions: never named in requests, so not in parts.
        c->num_partitions = num_partitions;
        c->next_part = c->num_partitions;
    }
    else
        s_add_partition (c, 0, QV_PARTITION_DEFAULT);
    zhashx_update (self->colls, name, c);
    return c;
}

//  A recovered collection (the READY command's views, actors/qv_recover.h).
static void
s_catalog_load (self_t *self, qv_coll_view_t *view)
{
    s_coll_t *c = s_coll_add (self, view->id, view->name, &view->schema, view->shards,
                              view->num_partitions, view->consistency);
    for (uint32_t p = 0; p < view->nparts; p++)
        s_add_partition (c, view->parts [p].id, view->parts [p].name);
    if (view->next_part > c->next_part)
        c->next_part = view->next_part;
}

//  A record that changes the catalog, applied: keep the proxy's copy in step.
static void
s_catalog_update (self_t *self, qv_record_t *rec)
{
    if (rec->type == QV_REC_CREATE_COLLECTION)
        s_coll_add (self, rec->coll_id, rec->name, &rec->schema, rec->shards,
                    rec->num_partitions, rec->consistency);
    else
    if (rec->type == QV_REC_CREATE_PARTITION || rec->type == QV_REC_DROP_PARTITION) {
        s_coll_t *c = s_coll_by_id (self, rec->coll_id);
        if (c && rec->type == QV_REC_CREATE_PARTITION)
            s_add_partition (c, rec->partition, rec->name);
        if (c && rec->type == QV_REC_DROP_PARTITION)
            zhashx_delete (c->parts, rec->name);
    }
    else
    if (rec->type == QV_REC_ALTER_COLLECTION) {
        s_coll_t *c = s_coll_by_id (self, rec->coll_id);
        if (c && (rec->alters & QV_ALTER_CONSISTENCY))
            snprintf (c->consistency, sizeof c->consistency, "%s", rec->consistency);
    }
    else
    if (rec->type == QV_REC_DROP_COLLECTION) {
        for (s_coll_t *c = zhashx_first (self->colls); c; c = zhashx_next (self->colls))
            if (c->id == rec->coll_id) {
                zhashx_delete (self->colls, zhashx_cursor (self->colls));
                break;
            }
    }
    else
    if (rec->type == QV_REC_USER && rec->user
    &&  qv_users_apply (qv_auth_users (self->auth), rec->user))
        qv_warn ("a user change acknowledged by the log does not apply to the proxy's "
                 "copy: %s", qv_err_msg ());
}

//  Removes a collection from the proxy's copy; its schema is kept until the proxy
//  stops (a record in flight may point into it).
static void
s_coll_retire (self_t *self, const char *name)
{
    s_coll_t *c = zhashx_lookup (self->colls, name);
    if (c) {
        zlistx_add_end (self->retired, c->schema);
        c->schema = NULL;
        zhashx_delete (self->colls, name);
    }
}

//  The catalog (views, destroyed here) and newest timestamp: serve. A collection
//  already known with the same id keeps its entry (its partitions as the views say);
//  the others are replaced, and those no longer there retired.
static void
s_views_load (self_t *self, zlist_t *views, uint64_t max_ts)
{
    zlistx_t *names = zhashx_keys (self->colls);
    for (char *name = zlistx_first (names); name; name = zlistx_next (names)) {
        s_coll_t *c = zhashx_lookup (self->colls, name);
        qv_coll_view_t *v;
        for (v = zlist_first (views); v; v = zlist_next (views))
            if (streq (v->name, name) && v->id == c->id)
                break;
        if (!v)
            s_coll_retire (self, name);
    }
    zlistx_destroy (&names);
    for (qv_coll_view_t *v = zlist_first (views); v; v = zlist_next (views)) {
        s_coll_t *c = zhashx_lookup (self->colls, v->name);
        if (!c) {
            s_catalog_load (self, v);
            continue;
        }
        snprintf (c->consistency, sizeof c->consistency, "%s", v->consistency);
        zhashx_purge (c->parts);
        if (c->part_key < 0)
            s_add_partition (c, 0, QV_PARTITION_DEFAULT);
        for (uint32_t p = 0; p < v->nparts; p++)
            s_add_partition (c, v->parts [p].id, v->parts [p].name);
        if (v->next_part > c->next_part)
            c->next_part = v->next_part;
    }
    zlist_destroy (&views);
    if (max_ts > self->last_ts)
        self->last_ts = max_ts;
    if (max_ts > self->acked_ts)
        self->acked_ts = max_ts;
    self->ready = true;
}

//  A proxy process's `stats`: the writer core's figures, with this process's role,
//  its fan-out's table of searcher processes and its NATS bridge's figures (requests,
//  stream ingestion) in place of the core's.
static void
s_stats_merge (self_t *self, qv_job_t *job)
{
    static const char *ours [] = { "role", "instance", "searchers", "searchers_ready",
                                   "searcher_processes", "writer", "nats_connected",
                                   "nats_live", "nats_requests", "nats_failed", "nats_dropped",
                                   "ingest_applied", "ingest_bad", "ingest_retries",
                                   "ingest_lag", "ingest_leading" };
    int rc = 0;
    qv_doc_t *doc = qv_doc_parse (job->reply, job->reply_size, 1u << 20, &rc);
    const qv_val_t *root = doc ? qv_doc_root (doc) : NULL;
    if (!root || qv_val_type (root) != QV_V_MAP) {
        qv_doc_destroy (&doc);
        return;
    }
    qv_wr_t *w = qv_wr_new ();
    qv_wr_map_open (w);
    for (size_t i = 0; i < qv_val_len (root); i++) {
        char key [64];
        if (qv_val_strcpy (qv_val_key (root, i), key, sizeof key) != 0)
            continue;
        bool skip = false;
        for (size_t o = 0; o < sizeof ours / sizeof ours [0]; o++)
            skip |= streq (key, ours [o]);
        if (!skip) {
            qv_wr_key (w, key);
            qv_wr_val (w, qv_val_value (root, i));
        }
    }
    qv_wr_key (w, "role"); qv_wr_str (w, "proxy");
    qv_wr_key (w, "instance"); qv_wr_str (w, self->config->instance);
    qv_wr_key (w, "writer"); qv_wr_str (w, self->writer);
    if (self->config->feed_stats)
        qv_fanout_write_stats (self->config->feed_stats, w);
    if (self->config->nats_stats)
        qv_bridge_write_stats (self->config->nats_stats, w);
    qv_wr_map_close (w);
    free (job->reply);
    job->reply = qv_wr_detach (w, &job->reply_size);
    qv_wr_destroy (&w);
    qv_doc_destroy (&doc);
}

//  Every parked request answered UNAVAILABLE (why).
static void
s_parked_fail (self_t *self, const char *why)
{
    s_parked_t *p;
    while ((p = zlistx_detach (self->parked, NULL))) {
        zframe_t *client = s_client_of (p->env);
        qv_fair_release (self->fair, zframe_data (client), zframe_size (client));
        qv_opstats_record (p->job->req.op, QV_EUNAVAIL, qv_clock_usec () - p->job->arrived);
        s_send_error (p->sock, &p->env, p->job->req.f [QV_F_rid], QV_EUNAVAIL, why);
        qv_job_destroy (&p->job);
        free (p);
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
    if (msg->id == QV_MSG_LIVE) {
        //  From the NATS bridge: its subscriptions and consumer are set up.
        self->nats_live = true;
        qv_msg_destroy (&msg);
        return 0;
    }
    if (msg->id == QV_MSG_VIEWS) {
        //  From the link (a proxy process): the writer core's catalog, on every
        //  (re)connection; it replaces ours, which may have missed DDL meanwhile
        qv_msg_views_t *v = (qv_msg_views_t *) msg;
        s_views_load (self, v->views, v->max_ts);
        v->views = NULL;
        s_users_load (self, &v->users);
        //  --auth with no root user stored and none from our environment: nobody could
        //  ever act as root through this process (an embedded server so configured
        //  refuses to start; this one learns it only now, from the writer core)
        if (self->config->auth && !self->refused [0]
        &&  qv_auth_root_check (qv_auth_users (self->auth))) {
            snprintf (self->refused, sizeof self->refused, "%s (this proxy process "
                      "refuses to serve: the writer core's user store has no root user)",
                      qv_err_msg ());
            qv_error ("%s", self->refused);
            zstr_sendx (self->pipe, "REFUSED", self->refused, NULL);
        }
        snprintf (self->writer, sizeof self->writer, "%s", v->writer ? v->writer : "");
        self->writer_down [0] = 0;
        qv_msg_destroy (&msg);
        //  Requests that waited for it go on, refused NOT_FOUND if still unknown
        self->refreshing = false;
        s_parked_t *p;
        while ((p = zlistx_detach (self->parked, NULL))) {
            s_dispatch (self, p->sock, p->job, p->env, true);
            free (p);
        }
        return 0;
    }
    if (msg->id == QV_MSG_WRITER_DOWN) {
        snprintf (self->writer_down, sizeof self->writer_down, "%s",
                  ((qv_msg_writer_down_t *) msg)->reason);
        if (!self->ready)
            snprintf (self->unavailable, sizeof self->unavailable, "%s", self->writer_down);
        qv_msg_destroy (&msg);
        self->refreshing = false;
        s_parked_fail (self, self->writer_down);
        return 0;
    }
    if (msg->id != QV_MSG_REPLY && msg->id != QV_MSG_RESOLVED) {
        qv_error ("protocol error: the proxy does not take %s; dropped", qv_msg_name (msg->id));
        qv_msg_destroy (&msg);
        return 0;
    }
    bool resolved = msg->id == QV_MSG_RESOLVED;
    if (!resolved && ((qv_msg_reply_t *) msg)->ts > self->acked_ts)
        self->acked_ts = ((qv_msg_reply_t *) msg)->ts;
    qv_job_t *job = qv_msg_take_job (msg);
    qv_msg_destroy (&msg);
    if (job->sseq && self->stream_resolving && job->id == self->stream_resolving_id) {
        //  The stream's delete by filter, back from its resolution
        self->stream_resolving = false;
        if (job->reply)
            s_stream_hold (self, job);
    }
    if (resolved && !job->reply) {
        //  A delete by filter, now a delete of keys: log it.
        job->rec->ts = s_next_ts (self);
        job->bytes = job->rec->keys.n * 16;
        s_write_go (self, job);
        s_stream_pump (self);
        return 0;
    }
    s_finish (self, job);
    s_stream_pump (self);
    return 0;
}

//  The writer core's user store (a proxy process; bytes of qv_users_write) replaces
//  ours; kept if it does not decode (said in the log).
static void
s_users_load (self_t *self, const qv_msg_bin_t *bin)
{
    int rc = 0;
    qv_doc_t *doc = bin->size ? qv_doc_parse_view (bin->data, bin->size, SIZE_MAX, &rc) : NULL;
    qv_users_t *users = doc ? qv_users_new () : NULL;
    if (users && qv_users_read (users, qv_doc_root (doc)) == 0)
        qv_auth_set_users (self->auth, &users);
    else
        qv_error ("the writer core's user store cannot be read (%s); this proxy keeps its own",
                  bin->size ? qv_err_msg () : "none sent");
    qv_users_destroy (&users);
    qv_doc_destroy (&doc);
}

//  A job's reply to its client (the job is gone): the catalog copy kept in step with a
//  DDL record, the pending entry settled, the reply sent.
static void
s_finish (self_t *self, qv_job_t *job)
{
    if (job->rc == 0 && job->rec)
        s_catalog_update (self, job->rec);
    else
    if (job->rec && job->rec->type == QV_REC_DROP_PARTITION) {
        s_coll_t *c = s_coll_by_id (self, job->rec->coll_id);
        if (c && !zhashx_lookup (c->parts, job->rec->name))
            s_add_partition (c, job->rec->partition, job->rec->name);
    }
    char key [32];
    snprintf (key, sizeof key, "%llu", (unsigned long long) job->id);
    s_pending_t *p = zhashx_lookup (self->pending, key);
    if (p && p->stream) {
        p->stream = false;
        self->stream_unacked--;
    }
    if (p && self->config->proxy_process && job->req.op == QV_OP_stats && job->rc == 0
    &&  job->reply)
        s_stats_merge (self, job);
    if (p) {
        qv_opstats_record (p->op, job->rc, qv_clock_usec () - p->arrived);
        zhashx_delete (self->pending, key);     //  no destructor: p is ours now
        zframe_t *client = s_client_of (p->env);
        qv_fair_release (self->fair, zframe_data (client), zframe_size (client));
        s_send ((job->id & S_BUS_JOB) ? self->bus : self->router, &p->env, job->reply, job->reply_size);
        if (p->read) {
            qv_job_t *next = qv_fair_done (self->fair);
            if (next)
                s_send_read (self, next);
        }
        free (p);
    }
    qv_job_destroy (&job);
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
        qv_auth_set_users (self->auth, &users);
        qv_users_destroy (&users);
    }
    else
    if (streq (cmd, "READY"))
        s_views_load (self, ptr, ts);
    else
    if (streq (cmd, "STOP")) {
        //  Shutting down: the other actors are about to go; answer, don't route.
        self->ready = false;
        snprintf (self->unavailable, sizeof self->unavailable,
                  "the server is shutting down; retry when it is back");
        //  Reads still waiting for their turn, and stream writes held back, are
        //  answered now
        qv_job_t *job;
        while ((job = zlistx_detach (self->stream_held, NULL))) {
            qv_job_fail (job, QV_EUNAVAIL, self->unavailable);
            qv_msg_reply_t *reply = qv_msg_reply_new ();
            reply->job = job;
            qv_msg_post (self->inbox_self, &reply);
        }
        s_parked_fail (self, self->unavailable);
        while ((job = qv_fair_drain (self->fair))) {
            qv_job_fail (job, QV_EUNAVAIL, self->unavailable);
            qv_msg_reply_t *reply = qv_msg_reply_new ();
            reply->job = job;
            qv_msg_post (self->inbox_self, &reply);
        }
        zsock_signal (reader, 0);
    }
    else
    if (streq (cmd, "WAITING")) {
        char *reason = ptr;
        snprintf (self->unavailable, sizeof self->unavailable, "%s", reason);
        free (reason);
    }
    else
    if (streq (cmd, "FAILED")) {
        char *reason = ptr;
        snprintf (self->unavailable, sizeof self->unavailable, "recovery failed: %s", reason);
        free (reason);
    }
    zstr_free (&cmd);
    return rc;
}

void
qv_proxy_actor (zsock_t *pipe, void *args)
{
    self_t *self = calloc (1, sizeof *self);
    self->config = args;
    self->pipe = pipe;
    snprintf (self->unavailable, sizeof self->unavailable,
              "the server is recovering its data; retry shortly");
    self->router = zsock_new (ZMQ_ROUTER);
    zsock_set_maxmsgsize (self->router, (int64_t) self->config->max_request * 2 > INT32_MAX
                          ? -1 : (int) (self->config->max_request * 2));
    zsock_set_sndhwm (self->router, 10000);
    zsock_set_rcvhwm (self->router, 10000);
    zsock_set_linger (self->router, 0);
    //  Encrypted: every client must know the server's public key (quiver.c has checked
    //  that the file holds a key pair); a searcher process's socket, which writers and
    //  proxy processes reach, admits only the key of --curve-peer-key then
    if (qv_actor_curve_server (self->router, self->config, self->config->follower,
                               self->config->follower ? "this searcher process's socket"
                                                      : "the API")) {
        zsock_destroy (&self->router);
        free (self);
        zsock_signal (pipe, 0);
        zstr_send (pipe, "the CURVE key file (--curve-secret-key) cannot be read");
        return;
    }
    if (zsock_bind (self->router, "%s", self->config->bind) < 0) {
        zsock_destroy (&self->router);
        free (self);
        zsock_signal (pipe, 0);
        zstr_send (pipe, zmq_strerror (zmq_errno ()));
        return;
    }
    char ep [256];
    qv_config_endpoint (self->config, "api", ep, sizeof ep);
    self->bus = zsock_new (ZMQ_ROUTER);
    zsock_set_sndhwm (self->bus, 0);
    zsock_set_rcvhwm (self->bus, 0);
    int bound = zsock_bind (self->bus, "%s", ep);
    qv_config_endpoint (self->config, "proxy", ep, sizeof ep);
    self->inbox = bound < 0 ? NULL : zsock_new_pull (ep);
    if (!self->inbox) {
        char why [300];
        snprintf (why, sizeof why, "%s: %s", ep, zmq_strerror (zmq_errno ()));
        zsock_destroy (&self->bus);
        zsock_destroy (&self->router);
        free (self);
        zsock_signal (pipe, 0);
        zstr_send (pipe, why);
        return;
    }
    self->nats_live = self->config->nats_url [0] == 0;
    self->segmgr = qv_config_push (self->config, "segmgr");
    self->searcher = qv_config_push (self->config, "searcher");
    if (self->config->follower)
        self->follower = qv_config_push (self->config, "follower");
    if (self->config->remote_reads)
        self->fanout = qv_config_push (self->config, "fanout");
    self->colls = zhashx_new ();
    zhashx_set_destructor (self->colls, s_coll_free);
    self->pending = zhashx_new ();
    self->stream_held = zlistx_new ();
    self->parked = zlistx_new ();
    self->retired = zlistx_new ();
    zlistx_set_destructor (self->stream_held, s_job_free_item);
    int window = 2 * (self->config->search_threads > 0 ? self->config->search_threads : 1);
    //  Reads that go to searcher processes run on their threads, not this machine's:
    //  each of those processes has its own queue, so more may be out at once.
    if (self->config->remote_reads && window < 64)
        window = 64;
    self->fair = qv_fair_new (self->config->max_inflight, (size_t) (window < 4 ? 4 : window));
    const double server [QV_RATE_KINDS] = { self->config->max_insert_bps, self->config->max_searches_ps };
    const double client [QV_RATE_KINDS] = { self->config->client_insert_bps, self->config->client_searches_ps };
    const char *const server_opts [QV_RATE_KINDS] = { "--max-insert-mb-per-sec", "--max-searches-per-sec" };
    const char *const client_opts [QV_RATE_KINDS] = { "--max-client-insert-mb-per-sec",
                                                      "--max-client-searches-per-sec" };
    self->rate = qv_rate_new (server, client, server_opts, client_opts);
    const double user [QV_RATE_KINDS] = { self->config->user_insert_bps, self->config->user_searches_ps };
    const char *const user_opts [QV_RATE_KINDS] = { "--max-user-insert-mb-per-sec",
                                                    "--max-user-searches-per-sec" };
    if (self->rate)
        qv_rate_set_user_limits (self->rate, user, user_opts);
    self->auth = qv_auth_new (self->config->auth);
    assert (self->auth);
    assert (self->rate);
    self->inbox_self = qv_config_push (self->config, "proxy");
    zsock_signal (pipe, 0);
    zstr_send (pipe, "OK");

    qv_loop_t *loop = qv_loop_new ();
    //  Stop on $TERM only: SIGINT/SIGTERM belong to main, which stops the actors in order
    //  (the segment manager first, so that the write in flight reaches the searcher).
    qv_loop_set_nonstop (loop, true);
    //  The pipe is not private to its handler (qv_loop_reader_set_private):
    //  s_handle_inbox sends REFUSED on it, so the loop asks it after every handler
    qv_loop_reader (loop, pipe, s_handle_pipe, self);
    qv_loop_reader (loop, self->router, s_handle_router, self);
    //  The bridge's and the REST gateway's socket, polled only when one of them runs
    //  (every socket a loop polls costs system calls on each of its turns)
    if (self->config->nats_url [0] || self->config->http [0] || self->config->metrics [0])
        qv_loop_reader (loop, self->bus, s_handle_router, self);
    qv_loop_reader (loop, self->inbox, s_handle_inbox, self);
    qv_loop_set_nonstop (loop, true);
    qv_loop_start (loop);
    qv_loop_destroy (&loop);
    //  Replies the other actors sent while they stopped still go to their clients
    while (zsock_events (self->inbox) & ZMQ_POLLIN)
        s_handle_inbox (NULL, self->inbox, self);

    zhashx_destroy (&self->colls);
    for (s_pending_t *p = zhashx_first (self->pending); p; p = zhashx_next (self->pending)) {
        zmsg_destroy (&p->env);
        free (p);
    }
    zhashx_destroy (&self->pending);
    zlistx_destroy (&self->stream_held);
    s_parked_t *p;
    while ((p = zlistx_detach (self->parked, NULL))) {
        zmsg_destroy (&p->env);
        qv_job_destroy (&p->job);
        free (p);
    }
    zlistx_destroy (&self->parked);
    qv_schema_t *schema;
    while ((schema = zlistx_detach (self->retired, NULL)))
        qv_schema_destroy (&schema);
    zlistx_destroy (&self->retired);
    qv_fair_destroy (&self->fair, s_job_free);
    qv_rate_destroy (&self->rate);
    qv_auth_destroy (&self->auth);
    zsock_destroy (&self->inbox_self);
    zsock_destroy (&self->follower);
    zsock_destroy (&self->fanout);
    zsock_destroy (&self->router);
    zsock_destroy (&self->bus);
    zsock_destroy (&self->inbox);
    zsock_destroy (&self->segmgr);
    zsock_destroy (&self->searcher);
    free (self);
}
