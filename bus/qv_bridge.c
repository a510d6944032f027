//  NATS bridge actor: NATS requests and stream messages in, replies and acks out.
//  It is a client of the proxy like any ZeroMQ client. (The change feed goes out
//  through its own actor, actors/qv_cdcpub.c.)
//
//  @interface
//    pipe      $TERM                 stop
//    msgs      natsMsg *             (PULL, inproc "natsmsg") from NATS delivery threads
//    api       [ctx][reply]          (DEALER to the proxy's inproc "api" ROUTER)
//    sends LIVE {} (schemas/qv_msg.h) to the proxy's inbox once subscribed
//    ingest    "MSG" ptr gen | "STARTED" gen | "ERROR" reason   (the fetcher's pipe)
//
//  DESIGN
//  A request on quiver.<op>.<collection> goes to the proxy over an inproc DEALER as the
//  NATS payload itself, zero-copy (the proxy decodes it where nats.c received it and
//  lets go of the message when it is done with it, s_held_t), after a context frame
//  {s_ctx_t *, stream sequence, consumer generation, "op\0collection\0[token\0]"} that
//  the proxy echoes back; it checks the payload as it checks a ZeroMQ client's request
//  (token: the message's header "Authorization: Bearer user:password", which the proxy
//  takes as the request's token, before one in the payload). The
//  reply is published on the message's reply subject, or, fire-and-forget, counted
//  and logged if it is an error. Writes are answered by the searcher only after
//  the WAL write is durable, so an answer means durable.
//
//  JetStream ingestion: a fetcher thread owns a pull subscription on a durable consumer
//  and fetches only as many messages as the bridge grants (credits): that bounds the
//  messages and bytes in flight, so fetching stops when the WAL or memory cannot keep
//  up. On start the consumer is recreated to deliver from the recovered stream
//  sequence + 1, so no redelivery timer is waited for. Stream messages go to the proxy
//  in stream order, each carrying its stream sequence, which is logged in the WAL with
//  its rows. In a proxy process (--roles proxy) the WAL is the writer core's: the
//  recovered sequence is not known here, so the bridge first asks `stats` for the
//  core's `ingest_seq` (the proxy answers `stats` before the bridge is live) and
//  starts from the one after it; a message whose first copy may have been logged (the
//  connection to the core dropped with it in flight) is sent again, and the core's
//  segment manager answers it without logging it twice. Replies come back in log
//  order; a message is acked when its reply says it is durable. A message the server
//  refuses for good (bad payload, unknown collection) is acked, counted, and reported on <prefix>.errors. A transient failure (storage,
//  memory) stops the flow: once every message in flight has answered, the consumer is
//  recreated from the last message done + 1 (the segment manager refuses stream writes
//  after a failed one, so nothing after it was logged). A gap in the consumer's
//  delivery sequence (a delivery lost over a reconnect) rewinds the same way, so the
//  order is never broken. Messages at or below the applied sequence are acked and
//  skipped: each is applied exactly once. A consumer that stops delivering (deliveries
//  lost at the end of the stream over a reconnect, or a pull that keeps failing or
//  timing out while the consumer holds messages) is found by the fetcher, which asks
//  the server after S_STALL_MSEC of fetching nothing, and rewinds the same way.
#include "qv_bridge.h"
#include "qv_bus.h"
#include "qv_ingest_lease.h"
#include "qv_loop.h"
#include "qv_msg.h"
#include "qv_proto.h"
#include "qv_rc.h"

#include <strings.h>

#define S_TOKEN_MAX 520             //  longest header token passed on (user:password)
#define S_WINDOW_MSGS 256           //  stream messages in flight at most
#define S_WINDOW_BYTES (64u << 20)  //  ... and their bytes
#define S_CORE_HIGH 4096            //  core NATS requests in flight before we stop reading
#define S_CORE_LOW 1024
#define S_CORE_HIGH_BYTES (64u << 20)   //  ... or their payload bytes
#define S_CORE_LOW_BYTES (16u << 20)

typedef enum { S_PING, S_REQUEST, S_FIRE, S_STREAM, S_POSITION } s_kind_t;

//  A NATS message shared by the bridge (a request's context) and the proxy (the
//  request decoded where its payload lies): destroyed when both let go, on either
//  thread (a zmq_free_fn, the payload's frame's destructor).
typedef struct {
    atomic_int refs;
    natsMsg *msg;
} s_held_t;

static void
s_held_drop (void *data, void *hint)
{
    (void) data;
    s_held_t *held = hint;
    if (held && atomic_fetch_sub (&held->refs, 1) == 1) {
        natsMsg_Destroy (held->msg);
        free (held);
    }
}

//  One request in flight at the proxy.
typedef struct {
    s_kind_t kind;
    natsMsg *msg;                   //  the NATS message (NULL for the bridge's own)
    s_held_t *held;                 //  ... shared with the proxy's request
    uint64_t sseq;                  //  stream sequence (S_STREAM); lease turn (S_POSITION)
    size_t bytes;
    void *handle;                   //  in self->inflight
} s_ctx_t;

typedef struct {
    const qv_config_t *config;
    qv_nats_stats_t *stats;
    zsock_t *pipe;
    qv_loop_t *loop;
    qv_bus_t *bus;
    zsock_t *msgs;                  //  PULL of natsMsg * from delivery threads
    zsock_t *api;                   //  DEALER to the proxy
    zsock_t *proxy;                 //  PUSH to the proxy's inbox ("LIVE")
    zactor_t *ingest;               //  the fetcher, NULL without an ingest stream
    zactor_t *lease;                //  remote: whether this proxy consumes the stream
                                    //  (bus/qv_ingest_lease.c)
    bool leading;                   //  remote: the lease is ours (always true otherwise)
    atomic_bool lease_held;         //  remote: the same, set by the lease actor's thread
                                    //  at once (the fetcher reads it)
    uint64_t lease_turn;            //  remote: HELD and LOST seen; a position asked in
                                    //  an earlier turn is stale
    void *fetch_args;               //  s_fetch_args_t of the fetcher
    zlistx_t *inflight;             //  s_ctx_t *
    char prefix [64];
    char errors_subject [96];
    bool subscribed;
    bool fatal;                     //  a configuration error: stop trying
    bool live;                      //  LIVE sent to the proxy
    bool proxy_ready;               //  the proxy answered a ping
    bool ping_out;
    bool reading_msgs;              //  msgs is in the loop
    size_t core_inflight;
    size_t core_bytes;              //  payload bytes of the core requests in flight
    int64_t next_setup;             //  msec clock of the next setup attempt
    //  Stream ingestion
    bool consumer_ready;            //  the fetcher has a consumer for generation `gen`
    bool starting;                  //  START sent, STARTED not yet seen
    uint64_t gen;                   //  consumer generation; older messages are dropped
    uint64_t done;                  //  every stream sequence up to this one is finished
    uint64_t finished_max;          //  the highest finished (done, or above a gap)
    uint64_t fail_min;              //  the lowest failed in this generation (0: none)
    uint64_t sent;                  //  highest stream sequence sent to the proxy
    uint64_t last_cseq;             //  last consumer delivery sequence seen
    bool rewinding;                 //  a failure: wait for in-flight, then restart
    int64_t rewind_at;
    uint32_t stream_inflight;
    size_t stream_bytes;
    uint32_t credits_out;           //  credits granted to the fetcher, not yet used
    bool remote;                    //  a proxy process: the WAL is the writer core's
    bool positioned;                //  remote: the core's stream position is known
    bool position_out;              //  remote: its `stats` request is in flight
    int64_t position_at;            //  remote: when to ask again
    //  Rate-limited logging of refused fire-and-forget messages
    int64_t log_window;
    int log_count;
    uint64_t log_suppressed;
} self_t;

// --------------------------------------------------------------------- subjects

bool
qv_subjects_overlap (const char *a, const char *b)
{
    while (true) {
        if (*a == 0 || *b == 0)
            return *a == 0 && *b == 0;
        size_t la = strcspn (a, "."), lb = strcspn (b, ".");
        if ((la == 1 && *a == '>') || (lb == 1 && *b == '>'))
            return true;            //  '>' matches one or more tokens, and both have one
        bool star = (la == 1 && *a == '*') || (lb == 1 && *b == '*');
        if (!star && (la != lb || memcmp (a, b, la) != 0))
            return false;
        a += la + (a [la] == '.');
        b += lb + (b [lb] == '.');
    }
}

int
qv_bridge_check_subjects (const char *prefix, const char *stream, const char **subjects, int n)
{
    char own [96];
    snprintf (own, sizeof own, "%s.>", prefix);
    for (int i = 0; i < n; i++)
        if (qv_subjects_overlap (subjects [i], own))
            return qv_err (QV_EINVAL, "JetStream stream '%s' takes subject '%s', which overlaps "
                           "Quiver's own subjects %s; give the stream subjects outside %s "
                           "(for example ingest.>)", stream, subjects [i], own, own);
    return 0;
}

// --------------------------------------------------------------------- fetcher

typedef struct {
    natsConnection *nc;
    char stream [64];
    char durable [96];
    atomic_bool *may_consume;       //  a proxy process: the stream's lease is ours (read
                                    //  before each START and fetch); NULL otherwise
    qv_nats_stats_t *stats;         //  ingest_lag is written here
} s_fetch_args_t;

#define S_LAG_MSEC 1000             //  how often the consumer's lag is read

#define S_FETCH_BYTES (8u << 20)    //  bytes one pull asks for (at least the largest message)
#define S_FETCH_MSEC 200            //  how long one pull waits for messages
#define S_STALL_MSEC 5000           //  fetching nothing this long while wanting: check why

//  Subscriptions the fetcher is done with. nats.c 3.4 (Debian's) frees a subscription
//  that its read loop may be delivering a message to at that moment (nats.c issue 637,
//  fixed in 3.6), and a pull subscription keeps receiving until the server's pull
//  request expires. So a subscription is unsubscribed first and destroyed only after a
//  flush has come back: the read loop handles messages in order, so once the flush's
//  PONG is processed it holds no pointer to a subscription no longer in its table.
static void
s_retire (zlistx_t *retired, natsSubscription **sub_p)
{
    if (!*sub_p)
        return;
    natsSubscription_Unsubscribe (*sub_p);
    zlistx_add_end (retired, *sub_p);
    *sub_p = NULL;
}

static void
s_bury (natsConnection *nc, zlistx_t *retired, bool anyway)
{
    if (zlistx_size (retired) == 0)
        return;
    if (natsConnection_FlushTimeout (nc, 1000) != NATS_OK && !anyway)
        return;                     //  disconnected: the next attempt, after reconnecting
    natsSubscription *sub;
    while ((sub = zlistx_detach (retired, NULL)))
        natsSubscription_Destroy (sub);
}

//  Fetching has given nothing for S_STALL_MSEC while the bridge wants messages: asks the
//  server whether that is right. Returns a reason for the bridge to recreate the
//  consumer, or NULL if the stream simply has nothing new. got: messages received from
//  this consumer (so its delivery sequence, if none was lost).
static char *
s_stalled (jsCtx *js, const s_fetch_args_t *args, uint64_t got, const char *failure)
{
    char reason [300];
    jsConsumerInfo *ci = NULL;
    jsErrCode jerr = 0;
    natsStatus s = js_GetConsumerInfo (&ci, js, args->stream, args->durable, NULL, &jerr);
    if (s != NATS_OK)
        snprintf (reason, sizeof reason, "fetching failed for %d s (%s) and the consumer %s cannot be "
                  "read (%s, %d)", S_STALL_MSEC / 1000, failure ? failure : "timeouts", args->durable,
                  natsStatus_GetText (s), (int) jerr);
    else
    if (ci->Delivered.Consumer > got)
        snprintf (reason, sizeof reason, "the consumer delivered %llu messages and %llu arrived "
                  "(deliveries lost over a reconnect)", (unsigned long long) ci->Delivered.Consumer,
                  (unsigned long long) got);
    else
    if (ci->NumPending > 0)
        snprintf (reason, sizeof reason, "no message fetched for %d s (%s) while the consumer has "
                  "%llu to deliver", S_STALL_MSEC / 1000, failure ? failure : "timeouts",
                  (unsigned long long) ci->NumPending);
    else
        reason [0] = 0;             //  nothing new in the stream: idle is right
    jsConsumerInfo_Destroy (ci);
    return reason [0] ? strdup (reason) : NULL;
}

//  Reads how far the consumer is behind its stream: messages not delivered yet plus
//  those delivered and not acknowledged (an ack follows the durable write), into
//  stats->ingest_lag. Left as it was if the server does not answer within 500 ms.
static void
s_read_lag (jsCtx *js, const s_fetch_args_t *args)
{
    jsOptions o;
    jsOptions_Init (&o);
    o.Wait = 500;
    jsConsumerInfo *ci = NULL;
    jsErrCode jerr = 0;
    if (js_GetConsumerInfo (&ci, js, args->stream, args->durable, &o, &jerr) == NATS_OK && ci)
        atomic_store (&args->stats->ingest_lag, (uint64_t) ci->NumPending
                                                + (uint64_t) ci->NumAckPending);
    jsConsumerInfo_Destroy (ci);
}

//  The fetcher thread: owns the pull subscription; fetches as many messages as it has
//  credits for and passes them to the bridge. A pull asks for at most S_FETCH_BYTES
//  (or the largest message NATS allows, if more): asked for 256 messages of 300 KB at
//  once, nats-server queued more than its 64 MB per-client limit for a reader slowed
//  by the machine, cut the connection as a slow consumer, and every reconnect did the
//  same. Fetching that gives nothing while the bridge wants messages is checked every
//  S_STALL_MSEC (s_stalled); a consumer that lost deliveries or does not deliver what
//  it holds is reported as an ERROR, and the bridge recreates it from the applied
//  sequence + 1.
//    in:  "START" seq gen     recreate the consumer to deliver from seq; credits = 0
//         "CREDIT" n gen      may fetch n more messages for generation gen
//         "PAUSE"             fetch nothing more; answers "PAUSED" after its last MSG
//         $TERM
//    out: "STARTED" gen | "ERROR" reason gen | "MSG" natsMsg * gen | "PAUSED"
static void
s_fetch_actor (zsock_t *pipe, void *args_)
{
    s_fetch_args_t *args = args_;
    jsCtx *js = NULL;
    natsSubscription *sub = NULL;
    zlistx_t *retired = zlistx_new ();
    natsConnection_JetStream (&js, args->nc, NULL);
    zsock_signal (pipe, 0);
    zpoller_t *poller = zpoller_new (pipe, NULL);
    uint64_t credits = 0, gen = 0;
    uint64_t got = 0;               //  messages received from this consumer
    int64_t wanting_since = 0;      //  since when fetches gave nothing (0: they did)
    int64_t buried_at = 0, lag_at = 0;
    while (true) {
        bool consuming = sub && (!args->may_consume || atomic_load (args->may_consume));
        bool can_fetch = consuming && credits > 0;
        if (!can_fetch)
            wanting_since = 0;
        int64_t now = qv_clock_msec ();
        if (now - lag_at >= S_LAG_MSEC) {
            lag_at = now;
            if (consuming)
                s_read_lag (js, args);
            else
                atomic_store (&args->stats->ingest_lag, 0);
        }
        if (zlistx_size (retired) && now - buried_at >= 1000) {
            buried_at = now;
            s_bury (args->nc, retired, false);
        }
        if (zpoller_wait (poller, can_fetch ? 0 : 500) == pipe) {
            char *cmd = NULL;
            uint64_t a = 0, g = 0;
            if (zsock_recv (pipe, "s88", &cmd, &a, &g) != 0 || !cmd)
                break;
            bool term = streq (cmd, "$TERM");
            if (streq (cmd, "START") && args->may_consume && !atomic_load (args->may_consume)) {
                //  The lease went meanwhile: the consumer is the new holder's to recreate
                s_retire (retired, &sub);
                credits = 0;
                zsock_send (pipe, "sp8", "ERROR", strdup ("this proxy no longer holds the "
                            "stream's lease"), g);
            }
            else
            if (streq (cmd, "START")) {
                s_retire (retired, &sub);       //  keeps the durable consumer
                credits = 0;
                got = 0;
                gen = g;
                jsErrCode jerr = 0;
                js_DeleteConsumer (js, args->stream, args->durable, NULL, &jerr);
                jsConsumerConfig cc;
                jsConsumerConfig_Init (&cc);
                cc.Durable = args->durable;
                cc.Description = "Quiver ingestion (recreated at each start from the applied sequence)";
                cc.AckPolicy = js_AckExplicit;
                cc.AckWait = (int64_t) 60 * 1000000000;
                cc.MaxAckPending = 100000;
                cc.DeliverPolicy = a > 1 ? js_DeliverByStartSequence : js_DeliverAll;
                cc.OptStartSeq = a > 1 ? a : 0;
                jsConsumerInfo *ci = NULL;
                natsStatus s = js_AddConsumer (&ci, js, args->stream, &cc, NULL, &jerr);
                jsConsumerInfo_Destroy (ci);
                if (s == NATS_OK) {
                    jsSubOptions so;
                    jsSubOptions_Init (&so);
                    so.Stream = args->stream;
                    so.Consumer = args->durable;
                    s = js_PullSubscribe (&sub, js, NULL, args->durable, NULL, &so, &jerr);
                }
                if (s == NATS_OK)
                    zsock_send (pipe, "sp8", "STARTED", NULL, gen);
                else {
                    char reason [256];
                    snprintf (reason, sizeof reason, "cannot create the consumer %s on stream %s: %s (%d)",
                              args->durable, args->stream, nats_GetLastError (&s), (int) jerr);
                    s_retire (retired, &sub);
                    zsock_send (pipe, "sp8", "ERROR", strdup (reason), gen);
                }
            }
            else
            if (streq (cmd, "CREDIT") && g == gen)
                credits += a;
            else
            if (streq (cmd, "PAUSE")) {
                credits = 0;
                zsock_send (pipe, "sp8", "PAUSED", NULL, (uint64_t) 0);
            }
            zstr_free (&cmd);
            if (term)
                break;
            continue;
        }
        if (zpoller_terminated (poller))
            break;
        if (!can_fetch)
            continue;
        //  What is there now, without waiting; if nothing, a pull that waits for it
        int64_t max_bytes = natsConnection_GetMaxPayload (args->nc) + (64 << 10);   //  + subject, headers
        if (max_bytes < S_FETCH_BYTES)
            max_bytes = S_FETCH_BYTES;
        //  nats.c 3.4's fetch writes past its array when it takes more than half of the
        //  batch, but not all of it, from messages already queued (late answers to an
        //  earlier pull): with messages queued, they are taken one per fetch.
        int batch = credits > 256 ? 256 : (int) credits, queued = 0, queued_bytes = 0;
        if (natsSubscription_GetPending (sub, &queued, &queued_bytes) == NATS_OK && queued > 0)
            batch = 1;
        natsMsgList list = { 0 };
        natsStatus s = NATS_NOT_FOUND;
        for (int attempt = 0; attempt < 2 && s == NATS_NOT_FOUND; attempt++) {
            jsFetchRequest req;
            jsFetchRequest_Init (&req);
            req.Batch = batch;
            req.MaxBytes = max_bytes;
            req.NoWait = attempt == 0;
            req.Expires = (int64_t) S_FETCH_MSEC * 1000000;
            s = natsSubscription_FetchRequest (&list, sub, &req);
        }
        for (int i = 0; i < list.Count; i++) {
            zsock_send (pipe, "sp8", "MSG", list.Msgs [i], gen);
            list.Msgs [i] = NULL;
            credits--;
            got++;
        }
        natsMsgList_Destroy (&list);
        const char *failure = NULL;
        if (s != NATS_OK && s != NATS_TIMEOUT && s != NATS_NOT_FOUND) {
            //  Said (repeats are counted by the log) so that a fetch that never
            //  recovers after a NATS restart shows in the log with its cause.
            failure = natsStatus_GetText (s);
            qv_warn ("NATS stream %s: fetch failed: %s (%s); retrying", args->stream, failure,
                     nats_GetLastError (NULL));
            zclock_sleep (100);     //  disconnected: nats.c reconnects; try again
        }
        now = qv_clock_msec ();
        if (s == NATS_OK)
            wanting_since = 0;
        else
        if (!wanting_since)
            wanting_since = now;
        else
        if (now - wanting_since >= S_STALL_MSEC) {
            wanting_since = now;
            char *reason = s_stalled (js, args, got, failure);
            if (reason) {
                credits = 0;        //  until the bridge starts a new consumer
                zsock_send (pipe, "sp8", "ERROR", reason, gen);
            }
        }
    }
    zpoller_destroy (&poller);
    s_retire (retired, &sub);
    s_bury (args->nc, retired, true);
    zlistx_destroy (&retired);
    jsCtx_Destroy (js);
    nats_ReleaseThreadMemory ();    //  this thread's nats.c error state (as the bridge's)
}

// --------------------------------------------------------------------- requests

static void
s_grant (self_t *self)
{
    if (!self->ingest || !self->consumer_ready || !self->proxy_ready || self->rewinding)
        return;
    uint32_t used = self->stream_inflight + self->credits_out;
    if (used >= S_WINDOW_MSGS / 2 || self->stream_bytes >= S_WINDOW_BYTES)
        return;
    uint32_t n = S_WINDOW_MSGS - used;
    self->credits_out += n;
    zsock_send (self->ingest, "s88", "CREDIT", (uint64_t) n, self->gen);
}

static void
s_free_body (void *data, void *hint)
{
    (void) hint;
    free (data);
}

//  Frees a request's context and lets go of its NATS message.
static void
s_ctx_free (s_ctx_t *ctx)
{
    s_held_drop (NULL, ctx->held);
    free (ctx);
}

//  Sends a request to the proxy with ctx: the frame {ctx, stream sequence, consumer
//  generation[, op, collection]}, then the body, data, as it lies: released with
//  release (data, hint) once the proxy is done with it. op and collection (NULL for a
//  body that names them) are the subject's: the body is then the NATS payload itself,
//  which the proxy decodes where nats.c received it, neither re-encoded nor copied.
static void
s_send_api (self_t *self, s_ctx_t *ctx, const char *op, const char *collection,
            const char *token, void *data, size_t size, zmq_free_fn *release, void *hint)
{
    uint8_t frame [sizeof (void *) + 16 + 32 + 256 + S_TOKEN_MAX + 1];
    size_t n = sizeof (void *) + 16;
    memcpy (frame, &ctx, sizeof (void *));
    memcpy (frame + sizeof (void *), &ctx->sseq, 8);
    memcpy (frame + sizeof (void *) + 8, &self->gen, 8);
    if (op) {
        size_t a = strlen (op) + 1, b = strlen (collection) + 1;
        memcpy (frame + n, op, a);
        memcpy (frame + n + a, collection, b);
        n += a + b;
        if (token && strlen (token) <= S_TOKEN_MAX) {
            memcpy (frame + n, token, strlen (token) + 1);
            n += strlen (token) + 1;
        }
    }
    ctx->handle = zlistx_add_end (self->inflight, ctx);
    void *api = zsock_resolve (self->api);
    //  An empty payload (refused by the proxy as undecodable) still has its message
    //  released through release
    zmq_msg_t body;
    if (zmq_msg_init_data (&body, data, size, release, hint) != 0) {
        release (data, hint);
        zmq_msg_init (&body);
    }
    //  Both frames or neither: inproc to a live proxy does not refuse a message
    if (zmq_send (api, frame, n, ZMQ_SNDMORE) == (int) n)
        zmq_msg_send (&body, api, 0);
    zmq_msg_close (&body);
}

static void s_finish (self_t *self, s_ctx_t *ctx, const void *reply, size_t size);
static void s_start_consumer (self_t *self);
static int s_handle_msgs (qv_loop_t *loop, zsock_t *reader, void *arg);

//  Takes a NATS message whose last two subject tokens are <op>.<collection>.
static void
s_request (self_t *self, natsMsg *msg, s_kind_t kind, uint64_t sseq)
{
    const char *subject = natsMsg_GetSubject (msg);
    char op [32] = "", collection [256] = "";
    const char *last = strrchr (subject, '.');
    const char *before = last;
    while (before && before > subject && before [-1] != '.')
        before--;
    if (last && before && before < last && (size_t) (last - before) < sizeof op)
        snprintf (op, sizeof op, "%.*s", (int) (last - before), before);
    if (last)
        snprintf (collection, sizeof collection, "%s", last + 1);
    s_ctx_t *ctx = calloc (1, sizeof *ctx);
    ctx->kind = kind;
    ctx->msg = msg;
    ctx->held = calloc (1, sizeof *ctx->held);
    ctx->held->msg = msg;
    atomic_init (&ctx->held->refs, 1);
    ctx->sseq = sseq;
    ctx->bytes = (size_t) natsMsg_GetDataLength (msg);
    bool allowed = streq (op, "insert") || streq (op, "upsert") || streq (op, "delete")
                || (kind != S_STREAM && streq (op, "search"));
    if (kind == S_STREAM) {
        self->stream_inflight++;
        self->stream_bytes += ctx->bytes;
        self->sent = sseq;
    }
    else {
        self->core_inflight++;
        self->core_bytes += ctx->bytes;
    }
    if (allowed) {
        atomic_fetch_add (&ctx->held->refs, 1);     //  the proxy's
        const char *auth = NULL, *token = NULL;
        if (natsMsgHeader_Get (msg, "Authorization", &auth) == NATS_OK && auth
        &&  strncasecmp (auth, "Bearer ", 7) == 0)
            for (token = auth + 7; *token == ' '; token++)
                ;
        s_send_api (self, ctx, op, collection, token, (void *) natsMsg_GetData (msg),
                    (size_t) natsMsg_GetDataLength (msg), s_held_drop, ctx->held);
        return;
    }
    //  Refused here: the error reply the proxy would give (with the payload's rid)
    qv_err (QV_EINVAL, "subject %s: the last two tokens must be <op>.<collection> with op "
            "insert, upsert or delete%s", subject, kind != S_STREAM ? " or search" : "");
    char message [512];
    snprintf (message, sizeof message, "%s", qv_err_msg ());
    int rc;
    qv_doc_t *doc = qv_doc_parse_view (natsMsg_GetData (msg), (size_t) natsMsg_GetDataLength (msg),
                                       self->config->max_elems, &rc);
    const qv_val_t *rid = doc && qv_val_type (qv_doc_root (doc)) == QV_V_MAP
                        ? qv_val_get (qv_doc_root (doc), "rid") : NULL;
    if (rid && qv_val_check_strict (rid))
        rid = NULL;
    qv_wr_t *w = qv_wr_new ();
    qv_reply_error (w, rid, QV_EINVAL, message);
    qv_doc_destroy (&doc);          //  a view into the message, which s_finish frees
    size_t size;
    const void *data = qv_wr_data (w, &size);
    ctx->handle = zlistx_add_end (self->inflight, ctx);
    s_finish (self, ctx, data, size);
    qv_wr_destroy (&w);
}

static void
s_log_refused (self_t *self, const char *subject, const char *code, const char *error)
{
    int64_t now = qv_clock_msec ();
    if (now - self->log_window >= 1000) {
        if (self->log_suppressed)
            qv_warn ("NATS: %llu more refused messages not logged in the last second",
                     (unsigned long long) self->log_suppressed);
        self->log_window = now;
        self->log_count = 0;
        self->log_suppressed = 0;
    }
    if (self->log_count++ < 10)
        qv_warn ("NATS %s refused (no reply subject to tell): %s: %s", subject, code, error);
    else
        self->log_suppressed++;
}

static void
s_report_bad (self_t *self, s_ctx_t *ctx, const char *code, const char *error)
{
    qv_wr_t *w = qv_wr_new ();
    qv_wr_map_open (w);
    qv_wr_key (w, "stream"); qv_wr_str (w, self->config->ingest_stream);
    qv_wr_key (w, "seq"); qv_wr_uint (w, ctx->sseq);
    qv_wr_key (w, "subject"); qv_wr_str (w, natsMsg_GetSubject (ctx->msg));
    qv_wr_key (w, "code"); qv_wr_str (w, code);
    qv_wr_key (w, "error"); qv_wr_str (w, error);
    qv_wr_map_close (w);
    size_t size;
    const void *data = qv_wr_data (w, &size);
    qv_bus_publish (self->bus, self->errors_subject, data, size);
    qv_wr_destroy (&w);
    qv_warn ("stream %s message %llu (%s) refused, acked and reported on %s: %s: %s",
             self->config->ingest_stream, (unsigned long long) ctx->sseq,
             natsMsg_GetSubject (ctx->msg), self->errors_subject, code, error);
}

static void
s_rewind (self_t *self, const char *why)
{
    if (!self->rewinding) {
        qv_warn ("stream %s: %s; resuming from message %llu once the messages in flight are answered",
                 self->config->ingest_stream, why, (unsigned long long) self->done + 1);
        atomic_fetch_add (&self->stats->ingest_retries, 1);
    }
    self->rewinding = true;
    self->consumer_ready = false;
    self->rewind_at = qv_clock_msec () + 500;
}

//  done moves up to the highest sequence below which every message is finished: none
//  in flight and none failed. (Replies may come back out of stream order: a message
//  the proxy refuses at once overtakes those being logged, and one after a failure
//  must not let the rewind skip it.)
static void
s_advance (self_t *self)
{
    uint64_t lim = self->finished_max;
    for (s_ctx_t *c = zlistx_first (self->inflight); c; c = zlistx_next (self->inflight))
        if (c->kind == S_STREAM && c->sseq - 1 < lim)
            lim = c->sseq - 1;
    if (self->fail_min && self->fail_min - 1 < lim)
        lim = self->fail_min - 1;
    if (lim > self->done)
        self->done = lim;
}

//  A request is answered (reply bytes): reply, ack, count; frees ctx.
static void
s_finish (self_t *self, s_ctx_t *ctx, const void *reply, size_t size)
{
    zlistx_delete (self->inflight, ctx->handle);
    char code [32], error [512];
    bool ok = qv_reply_status (reply, size, code, sizeof code, error, sizeof error);
    switch (ctx->kind) {
        case S_PING:
            self->ping_out = false;
            if (ok && !self->proxy_ready) {
                self->proxy_ready = true;
                qv_info ("NATS bridge live: %s.{insert,upsert,delete,search}.*%s%s",
                         self->prefix, self->ingest ? ", ingesting stream " : "",
                         self->ingest ? self->config->ingest_stream : "");
            }
            break;
        case S_REQUEST: {
            const char *to = natsMsg_GetReply (ctx->msg);
            if (qv_bus_publish (self->bus, to, reply, size) == QV_ELIMIT) {
                qv_wr_t *w = qv_wr_new ();
                qv_reply_error (w, NULL, QV_ELIMIT, qv_err_msg ());
                size_t n;
                const void *d = qv_wr_data (w, &n);
                qv_bus_publish (self->bus, to, d, n);
                qv_wr_destroy (&w);
            }
            self->core_inflight--;
            self->core_bytes -= ctx->bytes;
            break;
        }
        case S_FIRE:
            if (!ok) {
                atomic_fetch_add (&self->stats->failed, 1);
                s_log_refused (self, natsMsg_GetSubject (ctx->msg), code, error);
            }
            self->core_inflight--;
            self->core_bytes -= ctx->bytes;
            break;
        case S_POSITION: {
            self->position_out = false;
            uint64_t seq = 0;
            int rc = 0;
            qv_doc_t *doc = ok ? qv_doc_parse (reply, size, SIZE_MAX, &rc) : NULL;
            const qv_val_t *v = doc ? qv_val_get (qv_doc_root (doc), "ingest_seq") : NULL;
            if (v && qv_val_uint (v, &seq) == 0 && (!self->leading || ctx->sseq != self->lease_turn))
                ;                   //  the lease went meanwhile: ask again when it is back
            else
            if (v && qv_val_uint (v, &seq) == 0) {
                self->positioned = true;
                if (seq > self->done)
                    self->done = seq;
                qv_info ("stream %s: the writer core has logged it up to message %llu",
                         self->config->ingest_stream, (unsigned long long) seq);
                s_start_consumer (self);
            }
            else {
                self->position_at = qv_clock_msec () + 1000;
                static int64_t s_said;
                if (qv_clock_msec () - s_said > 10000) {
                    s_said = qv_clock_msec ();
                    qv_warn ("stream %s: cannot learn how far the writer core has logged it "
                             "yet (%s: %s); retrying", self->config->ingest_stream, code,
                             ok ? "no ingest_seq in its stats" : error);
                }
            }
            qv_doc_destroy (&doc);
            break;
        }
        case S_STREAM: {
            self->stream_inflight--;
            self->stream_bytes -= ctx->bytes;
            bool transient = qv_reply_retryable (code, error);
            if (ok || !transient) {
                if (self->rewinding && ctx->sseq > self->done + 1 && ok)
                    qv_error ("stream %s message %llu applied after a failed one (bug)",
                              self->config->ingest_stream, (unsigned long long) ctx->sseq);
                natsMsg_Ack (ctx->msg, NULL);
                if (ctx->sseq > self->finished_max)
                    self->finished_max = ctx->sseq;
                if (ok)
                    atomic_fetch_add (&self->stats->ingested, 1);
                else {
                    atomic_fetch_add (&self->stats->ingest_bad, 1);
                    s_report_bad (self, ctx, code, error);
                }
            }
            else {
                if (self->fail_min == 0 || ctx->sseq < self->fail_min)
                    self->fail_min = ctx->sseq;
                char why [600];
                snprintf (why, sizeof why, "message %llu failed (%s: %s)",
                          (unsigned long long) ctx->sseq, code, error);
                s_rewind (self, why);
            }
            s_advance (self);
            s_grant (self);
            break;
        }
    }
    s_ctx_free (ctx);
    if (!self->reading_msgs && self->core_inflight <= S_CORE_LOW && self->core_bytes <= S_CORE_LOW_BYTES) {
        qv_loop_reader (self->loop, self->msgs, s_handle_msgs, self);
        self->reading_msgs = true;
    }
}

// --------------------------------------------------------------------- handlers

static int
s_handle_msgs (qv_loop_t *loop, zsock_t *reader, void *arg)
{
    (void) loop;
    self_t *self = arg;
    natsMsg *msg;
    if (zmq_recv (zsock_resolve (reader), &msg, sizeof msg, 0) != sizeof msg)
        return 0;
    qv_bus_taken (self->bus, (size_t) natsMsg_GetDataLength (msg));
    atomic_fetch_add (&self->stats->requests, 1);
    const char *reply = natsMsg_GetReply (msg);
    s_request (self, msg, reply && *reply ? S_REQUEST : S_FIRE, 0);
    if ((self->core_inflight >= S_CORE_HIGH || self->core_bytes >= S_CORE_HIGH_BYTES)
    &&  self->reading_msgs) {
        qv_loop_reader_end (self->loop, self->msgs);
        self->reading_msgs = false;
    }
    return 0;
}

static int
s_handle_api (qv_loop_t *loop, zsock_t *reader, void *arg)
{
    (void) loop;
    self_t *self = arg;
    zmsg_t *msg = zmsg_recv (reader);
    if (!msg)
        return 0;
    zframe_t *ctxf = zmsg_first (msg), *body = zmsg_next (msg);
    if (ctxf && body && zframe_size (ctxf) >= sizeof (void *) + 16) {
        s_ctx_t *ctx;
        memcpy (&ctx, zframe_data (ctxf), sizeof ctx);
        s_finish (self, ctx, zframe_data (body), zframe_size (body));
    }
    zmsg_destroy (&msg);
    return 0;
}


static void
s_start_consumer (self_t *self)
{
    self->gen++;
    self->starting = true;
    self->consumer_ready = false;
    self->credits_out = 0;
    self->last_cseq = 0;
    self->sent = self->done;
    self->finished_max = self->done;
    self->fail_min = 0;
    zsock_send (self->ingest, "s88", "START", self->done + 1, self->gen);
}

static void
s_go_live (self_t *self)
{
    if (self->live)
        return;
    self->live = true;
    atomic_store (&self->stats->live, true);
    qv_msg_live_t *msg = qv_msg_live_new ();
    if (qv_msg_post (self->proxy, &msg) != 0)
        qv_msg_free (&msg);
}

static int
s_handle_ingest (qv_loop_t *loop, zsock_t *reader, void *arg)
{
    (void) loop;
    self_t *self = arg;
    char *cmd = NULL;
    void *ptr = NULL;
    uint64_t gen = 0;
    if (zsock_recv (reader, "sp8", &cmd, &ptr, &gen) != 0 || !cmd)
        return 0;
    if (streq (cmd, "MSG")) {
        natsMsg *msg = ptr;
        jsMsgMetaData *meta = NULL;
        if (gen != self->gen || self->rewinding)
            natsMsg_Destroy (msg);      //  an older consumer's; it comes again
        else
        if (natsMsg_GetMetaData (&meta, msg) != NATS_OK) {
            natsMsg_Destroy (msg);
            s_rewind (self, "a message without JetStream metadata");
        }
        else {
            self->credits_out -= self->credits_out > 0;
            uint64_t sseq = meta->Sequence.Stream, cseq = meta->Sequence.Consumer;
            if (cseq != self->last_cseq + 1) {
                char why [128];
                snprintf (why, sizeof why, "delivery %llu arrived after %llu (a delivery was lost)",
                          (unsigned long long) cseq, (unsigned long long) self->last_cseq);
                natsMsg_Destroy (msg);
                s_rewind (self, why);
            }
            else {
                self->last_cseq = cseq;
                if (sseq <= self->sent) {
                    //  Already applied (or in flight): never apply twice.
                    if (sseq <= self->done)
                        natsMsg_Ack (msg, NULL);
                    natsMsg_Destroy (msg);
                }
                else
                    s_request (self, msg, S_STREAM, sseq);
                s_grant (self);
            }
        }
        jsMsgMetaData_Destroy (meta);
    }
    else
    if (streq (cmd, "STARTED") && gen == self->gen) {
        self->starting = false;
        self->consumer_ready = true;
        self->rewinding = false;
        s_go_live (self);
        s_grant (self);
    }
    else
    if (streq (cmd, "ERROR") && gen == self->gen) {
        self->starting = false;
        self->consumer_ready = false;
        qv_warn ("stream %s: %s; retrying", self->config->ingest_stream, (char *) ptr);
        self->rewinding = true;
        self->rewind_at = qv_clock_msec () + 1000;
    }
    if (streq (cmd, "ERROR"))
        free (ptr);
    zstr_free (&cmd);
    return 0;
}

//  The ingest lease's news (remote): HELD, consume (positioned first by the timer);
//  LOST, fetch nothing more. Messages of the fetcher already on their way are dropped
//  unacknowledged (the next holder's consumer delivers them); writes in flight at the
//  core are answered as usual.
static int
s_handle_lease (qv_loop_t *loop, zsock_t *reader, void *arg)
{
    (void) loop;
    self_t *self = arg;
    char *cmd = NULL;
    uint64_t epoch = 0;
    if (zsock_recv (reader, "s8", &cmd, &epoch) != 0 || !cmd)
        return 0;
    if (streq (cmd, "HELD")) {
        self->leading = true;
        self->position_at = 0;
        self->lease_turn++;
    }
    else
    if (streq (cmd, "LOST") && self->leading) {
        self->leading = false;
        self->lease_turn++;
        self->positioned = false;
        self->consumer_ready = false;
        self->starting = false;
        self->gen++;                //  what the fetcher still passes is dropped
        self->credits_out = 0;
        zsock_send (self->ingest, "s88", "PAUSE", (uint64_t) 0, (uint64_t) 0);
    }
    atomic_store (&self->stats->ingest_leading, self->leading);
    zstr_free (&cmd);
    return 0;
}

//  One attempt at subscribing and checking the stream: 0 (done or pending), QV_EINVAL
//  for a configuration error, QV_EUNAVAIL to try again later (message recorded).
static int
s_setup (self_t *self)
{
    if (!qv_bus_connected (self->bus))
        return qv_err (QV_EUNAVAIL, "NATS server %s is not reachable yet", self->config->nats_url);
    natsConnection *nc = qv_bus_nats (self->bus);
    if (self->config->ingest_stream [0] && !self->ingest) {
        jsCtx *js = NULL;
        jsStreamInfo *si = NULL;
        jsErrCode jerr = 0;
        natsStatus s = natsConnection_JetStream (&js, nc, NULL);
        if (s == NATS_OK)
            s = js_GetStreamInfo (&si, js, self->config->ingest_stream, NULL, &jerr);
        int rc = 0;
        if (s != NATS_OK)
            rc = qv_err (QV_EUNAVAIL, "JetStream stream '%s' is not available (%s%s); create it with "
                         "subjects outside %s.> (for example ingest.>)", self->config->ingest_stream,
                         natsStatus_GetText (s), jerr == JSStreamNotFoundErr ? ": not found" : "",
                         self->prefix);
        else
            rc = qv_bridge_check_subjects (self->prefix, self->config->ingest_stream,
                                           (const char **) si->Config->Subjects,
                                           si->Config->SubjectsLen);
        jsStreamInfo_Destroy (si);
        jsCtx_Destroy (js);
        if (rc)
            return rc;
    }
    if (!self->subscribed) {
        char ep [256], subject [128];
        qv_config_endpoint (self->config, "natsmsg", ep, sizeof ep);
        const char *ops [] = { "insert", "upsert", "delete", "search" };
        for (int i = 0; i < 4; i++) {
            snprintf (subject, sizeof subject, "%s.%s.*", self->prefix, ops [i]);
            int rc = qv_bus_subscribe (self->bus, subject, ep);
            if (rc)
                return rc;
        }
        self->subscribed = true;
    }
    //  The server has the subscriptions once a flush comes back.
    natsStatus s = natsConnection_FlushTimeout (nc, 2000);
    if (s != NATS_OK)
        return qv_err (QV_EUNAVAIL, "NATS flush: %s", natsStatus_GetText (s));
    if (self->config->ingest_stream [0]) {
        if (!self->ingest) {
            s_fetch_args_t *fa = self->fetch_args = calloc (1, sizeof *fa);
            fa->nc = nc;
            fa->may_consume = self->remote ? &self->lease_held : NULL;
            fa->stats = self->stats;
            snprintf (fa->stream, sizeof fa->stream, "%s", self->config->ingest_stream);
            snprintf (fa->durable, sizeof fa->durable, "quiver_%s", self->config->ingest_stream);
            self->ingest = zactor_new (s_fetch_actor, fa);
            qv_loop_reader (self->loop, zactor_sock (self->ingest), s_handle_ingest, self);
            if (!self->remote)
                s_start_consumer (self);    //  a remote one once it leads and is positioned
            else {
                qv_ingest_lease_args_t la = { self->config, nc, &self->lease_held };
                self->lease = zactor_new (qv_ingest_lease_actor, &la);
                qv_loop_reader (self->loop, zactor_sock (self->lease), s_handle_lease, self);
            }
        }
        //  A proxy process serves its clients whether it consumes the stream or not
        if (self->remote)
            s_go_live (self);
    }
    else
        s_go_live (self);
    return 0;
}

//  Sends the bridge's own request {op} to the proxy (a ping, the stats that say where
//  the writer core's log is), answered as kind. A position is asked in a lease turn
//  (ctx->sseq), and its answer is used in that turn only.
static void
s_send_own (self_t *self, s_kind_t kind, const char *op)
{
    s_ctx_t *ctx = calloc (1, sizeof *ctx);
    ctx->kind = kind;
    if (kind == S_POSITION)
        ctx->sseq = self->lease_turn;
    qv_wr_t *w = qv_wr_new ();
    qv_wr_map_open (w);
    qv_wr_key (w, "op"); qv_wr_str (w, op);
    qv_wr_map_close (w);
    size_t size;
    void *data = qv_wr_detach (w, &size);
    s_send_api (self, ctx, NULL, NULL, NULL, data, size, s_free_body, NULL);
    qv_wr_destroy (&w);
}

static int
s_handle_timer (qv_loop_t *loop, int timer_id, void *arg)
{
    (void) loop;
    (void) timer_id;
    self_t *self = arg;
    int64_t now = qv_clock_msec ();
    atomic_store (&self->stats->connected, qv_bus_connected (self->bus));
    atomic_store (&self->stats->dropped, qv_bus_dropped (self->bus));
    bool set_up = self->subscribed && (!self->config->ingest_stream [0] || self->ingest);
    if (!set_up && !self->fatal && now >= self->next_setup) {
        int rc = s_setup (self);
        if (rc == QV_EINVAL) {
            self->fatal = true;
            qv_error ("NATS bridge: %s", qv_err_msg ());
        }
        else
        if (rc) {
            self->next_setup = now + 1000;
            static int64_t s_said;
            if (now - s_said > 10000) {
                s_said = now;
                qv_warn ("NATS bridge: %s; retrying", qv_err_msg ());
            }
        }
    }
    if (self->live && !self->proxy_ready && !self->ping_out) {
        self->ping_out = true;
        s_send_own (self, S_PING, "ping");
    }
    if (self->ingest && self->remote && self->leading && !self->positioned
    &&  !self->position_out && self->stream_inflight == 0 && now >= self->position_at) {
        self->position_out = true;
        s_send_own (self, S_POSITION, "stats");
    }
    if (self->ingest && self->rewinding && !self->starting && self->stream_inflight == 0
    &&  now >= self->rewind_at && (!self->remote || self->positioned))
        s_start_consumer (self);
    s_grant (self);
    return 0;
}

static int
s_handle_pipe (qv_loop_t *loop, zsock_t *reader, void *arg)
{
    (void) loop;
    (void) arg;
    char *cmd = zstr_recv (reader);
    zstr_free (&cmd);
    return -1;                      //  $TERM (or the pipe is gone)
}

//  Destroys every natsMsg * still queued on a PULL socket.
static void
s_drain (zsock_t *sock)
{
    void *ptr;
    while (zmq_recv (zsock_resolve (sock), &ptr, sizeof ptr, ZMQ_DONTWAIT) == sizeof ptr)
        natsMsg_Destroy ((natsMsg *) ptr);
}

void
qv_bridge_actor (zsock_t *pipe, void *args_)
{
    qv_bridge_args_t *args = args_;
    self_t *self = calloc (1, sizeof *self);
    self->config = args->config;
    self->stats = args->config->nats_stats;
    self->pipe = pipe;
    self->done = self->sent = args->stream_seq;
    self->remote = self->config->proxy_process;
    self->leading = !self->remote && self->config->ingest_stream [0];
    atomic_store (&self->stats->ingest_leading, self->leading);
    snprintf (self->prefix, sizeof self->prefix, "%s", self->config->nats_prefix);
    snprintf (self->errors_subject, sizeof self->errors_subject, "%s.errors", self->prefix);
    self->inflight = zlistx_new ();
    char ep [256];
    qv_config_endpoint (self->config, "natsmsg", ep, sizeof ep);
    self->msgs = zsock_new (ZMQ_PULL);
    zsock_set_rcvhwm (self->msgs, 10000);
    zsock_bind (self->msgs, "%s", ep);
    qv_config_endpoint (self->config, "api", ep, sizeof ep);
    self->api = zsock_new (ZMQ_DEALER);
    zsock_set_sndhwm (self->api, 0);
    zsock_set_rcvhwm (self->api, 0);
    zsock_set_linger (self->api, 0);
    zsock_connect (self->api, "%s", ep);
    qv_config_endpoint (self->config, "proxy", ep, sizeof ep);
    self->proxy = zsock_new (ZMQ_PUSH);
    zsock_set_linger (self->proxy, 0);
    zsock_connect (self->proxy, "%s", ep);
    self->loop = qv_loop_new ();
    char name [96];
    snprintf (name, sizeof name, "quiver-%s", self->config->instance);
    self->bus = qv_bus_new (self->config->nats_url, name, true);
    zsock_signal (pipe, 0);

    //  First attempt, for the server's start-up: wait a little for the connection.
    int rc = QV_EUNAVAIL;
    if (self->bus) {
        for (int i = 0; i < 300 && !qv_bus_connected (self->bus); i++)
            zclock_sleep (10);
        rc = s_setup (self);
    }
    if (!self->bus || rc == QV_EINVAL) {
        zsock_send (pipe, "ss", "FATAL", qv_err_msg ());
        self->fatal = true;
    }
    else {
        if (rc)
            qv_warn ("NATS bridge: %s; retrying in the background (requests get UNAVAILABLE meanwhile)",
                     qv_err_msg ());
        self->next_setup = rc ? qv_clock_msec () + 1000 : 0;
        zsock_send (pipe, "ss", "OK", "");
    }
    qv_loop_reader (self->loop, pipe, s_handle_pipe, self);
    //  Only s_handle_pipe reads or answers the pipe (no other handler holds it): it is
    //  asked for events only when its fd fires or after s_handle_pipe
    qv_loop_reader_set_private (self->loop, pipe);
    if (self->bus) {
        qv_loop_reader (self->loop, self->msgs, s_handle_msgs, self);
        self->reading_msgs = true;
        qv_loop_reader (self->loop, self->api, s_handle_api, self);
        qv_loop_timer (self->loop, 100, 0, s_handle_timer, self);
    }
    qv_loop_set_nonstop (self->loop, true);
    qv_loop_start (self->loop);
    qv_loop_destroy (&self->loop);

    if (self->ingest) {
        //  Take back the messages the fetcher passed but we have not read.
        zsock_send (self->ingest, "s88", "PAUSE", (uint64_t) 0, (uint64_t) 0);
        zsock_set_rcvtimeo (zactor_sock (self->ingest), 5000);
        while (true) {
            char *cmd = NULL;
            void *ptr = NULL;
            uint64_t gen;
            if (zsock_recv (self->ingest, "sp8", &cmd, &ptr, &gen) != 0 || !cmd)
                break;
            bool paused = streq (cmd, "PAUSED");
            if (streq (cmd, "MSG"))
                natsMsg_Destroy ((natsMsg *) ptr);
            if (streq (cmd, "ERROR"))
                free (ptr);
            zstr_free (&cmd);
            if (paused)
                break;
        }
    }
    zactor_destroy (&self->ingest);
    zactor_destroy (&self->lease);  //  released after the fetcher stopped: a standby takes over
    free (self->fetch_args);
    qv_bus_destroy (&self->bus);
    s_drain (self->msgs);
    s_ctx_t *ctx;
    while ((ctx = zlistx_detach (self->inflight, NULL)))
        s_ctx_free (ctx);
    zlistx_destroy (&self->inflight);
    zsock_destroy (&self->msgs);
    zsock_destroy (&self->api);
    zsock_destroy (&self->proxy);
    free (self);
    //  nats.c keeps a thread's last error in thread-local memory, freed when the thread
    //  ends: the process may exit first (LeakSanitizer saw it), so free it here
    nats_ReleaseThreadMemory ();
}

void
qv_bridge_write_stats (qv_nats_stats_t *ns, qv_wr_t *w)
{
    qv_wr_key (w, "nats_connected"); qv_wr_bool (w, atomic_load (&ns->connected));
    qv_wr_key (w, "nats_live"); qv_wr_bool (w, atomic_load (&ns->live));
    qv_wr_key (w, "nats_requests"); qv_wr_uint (w, atomic_load (&ns->requests));
    qv_wr_key (w, "nats_failed"); qv_wr_uint (w, atomic_load (&ns->failed));
    qv_wr_key (w, "nats_dropped"); qv_wr_uint (w, atomic_load (&ns->dropped));
    qv_wr_key (w, "ingest_applied"); qv_wr_uint (w, atomic_load (&ns->ingested));
    qv_wr_key (w, "ingest_bad"); qv_wr_uint (w, atomic_load (&ns->ingest_bad));
    qv_wr_key (w, "ingest_retries"); qv_wr_uint (w, atomic_load (&ns->ingest_retries));
    qv_wr_key (w, "ingest_lag"); qv_wr_uint (w, atomic_load (&ns->ingest_lag));
    qv_wr_key (w, "ingest_leading"); qv_wr_bool (w, atomic_load (&ns->ingest_leading));
}
