//  NATS transport over nats.c: connection with endless reconnect, subscriptions that
//  hand messages to inproc sockets from their own delivery threads, publishing.
//
//  DESIGN
//  nats.c calls a subscription's callback on that subscription's delivery thread
//  (one thread per subscription, the library's default). The callback creates a PUSH
//  socket on its first message and keeps it: the socket lives and dies on that one
//  thread (the on-complete callback, which nats.c runs on the same thread after the
//  last message, closes it). A message crosses to the actor as a pointer; the actor
//  owns it from then on. A PUSH that cannot deliver within a second (the actor is
//  gone or stuck) drops the message and counts it.
#include "qv_bus.h"
#include "qv_rc.h"

#include <errno.h>
#include <stdatomic.h>
#include <unistd.h>

#define S_MAX_SUBS 16
#define S_QUEUED_MAX (64u << 20)   //  payload bytes handed over and not yet taken


typedef struct {
    qv_bus_t *bus;
    natsSubscription *sub;
    char endpoint [256];
    zsock_t *push;                  //  owned by the delivery thread
    atomic_bool complete;           //  the delivery thread is done with this sub
    atomic_uint_fast64_t dropped;   //  messages the PUSH could not deliver
} s_sub_t;

struct _qv_bus_t {
    natsConnection *nc;
    natsOptions *opts;
    s_sub_t *subs [S_MAX_SUBS];
    int nsubs;
    atomic_bool closing;            //  our own close: not worth a warning
    atomic_bool closed;             //  nats.c ran its last connection callback
    atomic_size_t queued;           //  payload bytes in the PUSH pipes (qv_bus_taken)
};

//  The last callback nats.c makes for a connection: after it, self may be freed.
static void
s_on_closed (natsConnection *nc, void *closure)
{
    (void) nc;
    qv_bus_t *self = closure;
    atomic_store (&self->closed, true);
}

static void
s_on_disconnected (natsConnection *nc, void *closure)
{
    (void) nc;
    qv_bus_t *self = closure;
    if (!atomic_load (&self->closing))
        qv_warn ("NATS connection lost; reconnecting (publishes are buffered meanwhile)");
}

static void
s_on_reconnected (natsConnection *nc, void *closure)
{
    (void) closure;
    char url [256] = "";
    natsConnection_GetConnectedUrl (nc, url, sizeof url);
    qv_info ("NATS connected to %s", url);
}

static void
s_on_error (natsConnection *nc, natsSubscription *sub, natsStatus err, void *closure)
{
    (void) nc;
    (void) sub;
    (void) closure;
    //  Slow-consumer drops are counted (qv_bus_dropped); say so once in a while.
    static _Thread_local int64_t s_last;
    int64_t now = qv_clock_msec ();
    if (now - s_last >= 5000) {
        s_last = now;
        qv_warn ("NATS client: %s", natsStatus_GetText (err));
    }
}

static struct {
    char ca [512], cert [512], key [512], creds [512];
} s_security;

int
qv_bus_set_security (const char *ca, const char *cert, const char *key, const char *creds)
{
    const char *files [4] = { ca, cert, key, creds };
    const char *options [4] = { "--nats-tls-ca", "--nats-tls-cert", "--nats-tls-key",
                                "--nats-creds" };
    for (int i = 0; i < 4; i++)
        if (files [i] && *files [i] && access (files [i], R_OK) != 0)
            return qv_err (QV_EINVAL, "%s %s: %s", options [i], files [i], strerror (errno));
    if ((cert && *cert) != (key && *key))
        return qv_err (QV_EINVAL, "--nats-tls-cert and --nats-tls-key go together");
    snprintf (s_security.ca, sizeof s_security.ca, "%s", ca ? ca : "");
    snprintf (s_security.cert, sizeof s_security.cert, "%s", cert ? cert : "");
    snprintf (s_security.key, sizeof s_security.key, "%s", key ? key : "");
    snprintf (s_security.creds, sizeof s_security.creds, "%s", creds ? creds : "");
    return 0;
}

natsStatus
qv_bus_secure (natsOptions *opts)
{
    natsStatus s = NATS_OK;
    if (s_security.ca [0] || s_security.cert [0])
        s = natsOptions_SetSecure (opts, true);
    if (s == NATS_OK && s_security.ca [0])
        s = natsOptions_LoadCATrustedCertificates (opts, s_security.ca);
    if (s == NATS_OK && s_security.cert [0])
        s = natsOptions_LoadCertificatesChain (opts, s_security.cert, s_security.key);
    if (s == NATS_OK && s_security.creds [0])
        s = natsOptions_SetUserCredentialsFromFiles (opts, s_security.creds, NULL);
    return s;
}

qv_bus_t *
qv_bus_new (const char *url, const char *name, bool asap)
{
    qv_bus_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    natsStatus s = natsOptions_Create (&self->opts);
    if (s == NATS_OK) s = natsOptions_SetServers (self->opts, (const char *[]) { url }, 1);
    if (s == NATS_OK) s = natsOptions_SetName (self->opts, name);
    if (s == NATS_OK) s = natsOptions_SetMaxReconnect (self->opts, -1);
    if (s == NATS_OK) s = natsOptions_SetReconnectWait (self->opts, 250);
    if (s == NATS_OK) s = natsOptions_SetReconnectJitter (self->opts, 100, 0);
    if (s == NATS_OK) s = natsOptions_SetReconnectBufSize (self->opts, 64 << 20);
    if (s == NATS_OK) s = natsOptions_SetPingInterval (self->opts, 5000);
    if (s == NATS_OK) s = natsOptions_SetMaxPingsOut (self->opts, 2);
    if (s == NATS_OK) s = natsOptions_SetTimeout (self->opts, 2000);
    //  nats.c 3.4 holds every buffered publish for 1 ms before its flusher thread
    //  writes it: a connection that answers requests sends each publish at once
    if (s == NATS_OK && asap) s = natsOptions_SetSendAsap (self->opts, true);
    //  A server that stops reading (frozen, or a partition without a reset) fails a
    //  write after 10 s instead of blocking it, and the connection, for good
    if (s == NATS_OK) s = natsOptions_SetWriteDeadline (self->opts, 10000);
    if (s == NATS_OK) s = natsOptions_SetMaxPendingMsgs (self->opts, 1 << 20);
    if (s == NATS_OK) s = natsOptions_SetDisconnectedCB (self->opts, s_on_disconnected, self);
    if (s == NATS_OK) s = natsOptions_SetReconnectedCB (self->opts, s_on_reconnected, NULL);
    if (s == NATS_OK) s = natsOptions_SetErrorHandler (self->opts, s_on_error, NULL);
    if (s == NATS_OK) s = natsOptions_SetClosedCB (self->opts, s_on_closed, self);
    if (s == NATS_OK) s = natsOptions_SetRetryOnFailedConnect (self->opts, true, s_on_reconnected, NULL);
    if (s == NATS_OK) s = qv_bus_secure (self->opts);
    if (s == NATS_OK) {
        s = natsConnection_Connect (&self->nc, self->opts);
        if (s == NATS_NOT_YET_CONNECTED)
            s = NATS_OK;            //  keeps trying in the background
    }
    if (s != NATS_OK) {
        qv_err (QV_EINVAL, "NATS URL '%s': %s", url, natsStatus_GetText (s));
        qv_bus_destroy (&self);
        return NULL;
    }
    return self;
}

static void
s_sub_close (s_sub_t *s)
{
    if (s->sub) {
        natsSubscription_Unsubscribe (s->sub);
        //  The on-complete callback runs on the delivery thread once no message
        //  callback can run any more; wait for it (bounded: a callback may be sending).
        for (int i = 0; i < 3000 && !atomic_load (&s->complete); i++)
            zclock_sleep (1);
        natsSubscription_Destroy (s->sub);
        s->sub = NULL;
    }
}

void
qv_bus_destroy (qv_bus_t **self_p)
{
    qv_bus_t *self = *self_p;
    if (!self)
        return;
    atomic_store (&self->closing, true);
    for (int i = 0; i < self->nsubs; i++)
        s_sub_close (self->subs [i]);
    if (self->nc) {
        natsConnection_Close (self->nc);
        //  Connection callbacks run on nats.c's own thread, after Close returns;
        //  the closed callback comes last (bounded wait: it is queued already).
        for (int i = 0; i < 5000 && !atomic_load (&self->closed); i++)
            zclock_sleep (1);
        natsConnection_Destroy (self->nc);
    }
    //  A delivery thread that never completed (it could not: the connection closed
    //  first) leaves its socket; zsys closes it at exit. Free our records only.
    for (int i = 0; i < self->nsubs; i++) {
        if (atomic_load (&self->subs [i]->complete))
            free (self->subs [i]);
    }
    natsOptions_Destroy (self->opts);
    free (self);
    *self_p = NULL;
}

void
qv_bus_taken (qv_bus_t *self, size_t bytes)
{
    atomic_fetch_sub (&self->queued, bytes);
}

natsMsg *
qv_bus_recv (qv_bus_t *self, zsock_t *sock)
{
    zframe_t *frame = zframe_recv (sock);
    if (!frame)
        return NULL;
    natsMsg *m = NULL;
    if (zframe_size (frame) == sizeof m)
        memcpy (&m, zframe_data (frame), sizeof m);
    zframe_destroy (&frame);
    if (m && self)
        qv_bus_taken (self, (size_t) natsMsg_GetDataLength (m));
    return m;
}

void
qv_bus_purge (zsock_t *sock)
{
    zframe_t *frame;
    while ((frame = zframe_recv_nowait (sock))) {
        natsMsg *m = NULL;
        if (zframe_size (frame) == sizeof m)
            memcpy (&m, zframe_data (frame), sizeof m);
        natsMsg_Destroy (m);
        zframe_destroy (&frame);
    }
}

bool
qv_bus_connected (qv_bus_t *self)
{
    return self->nc && natsConnection_Status (self->nc) == NATS_CONN_STATUS_CONNECTED;
}

static void
s_on_msg (natsConnection *nc, natsSubscription *sub, natsMsg *msg, void *closure)
{
    (void) nc;
    (void) sub;
    s_sub_t *s = closure;
    if (!s->push) {
        s->push = zsock_new (ZMQ_PUSH);
        if (s->push) {
            zsock_set_sndhwm (s->push, 10000);
            zsock_set_sndtimeo (s->push, 1000);
            zsock_set_linger (s->push, 0);
            zsock_connect (s->push, "%s", s->endpoint);
        }
    }
    //  The pipes to the actor hold at most S_QUEUED_MAX payload bytes: beyond, messages
    //  are dropped and counted like nats.c's own slow-consumer drops.
    size_t len = (size_t) natsMsg_GetDataLength (msg);
    if (atomic_fetch_add (&s->bus->queued, len) + len > S_QUEUED_MAX) {
        atomic_fetch_sub (&s->bus->queued, len);
        natsMsg_Destroy (msg);
        atomic_fetch_add (&s->dropped, 1);
        return;
    }
    if (!s->push || zmq_send (zsock_resolve (s->push), &msg, sizeof msg, 0) != sizeof msg) {
        atomic_fetch_sub (&s->bus->queued, len);
        natsMsg_Destroy (msg);
        atomic_fetch_add (&s->dropped, 1);
    }
}

static void
s_on_complete (void *closure)
{
    s_sub_t *s = closure;
    zsock_destroy (&s->push);
    atomic_store (&s->complete, true);
}

int
qv_bus_subscribe (qv_bus_t *self, const char *subject, const char *endpoint)
{
    if (self->nsubs == S_MAX_SUBS)
        return qv_err (QV_ELIMIT, "too many NATS subscriptions");
    s_sub_t *s = calloc (1, sizeof *s);
    if (!s)
        return qv_err (QV_ENOMEM, "out of memory");
    snprintf (s->endpoint, sizeof s->endpoint, "%s", endpoint);
    s->bus = self;
    natsStatus st = natsConnection_Subscribe (&s->sub, self->nc, subject, s_on_msg, s);
    if (st == NATS_OK)
        st = natsSubscription_SetPendingLimits (s->sub, 1 << 16, 64 << 20);
    if (st == NATS_OK)
        st = natsSubscription_SetOnCompleteCB (s->sub, s_on_complete, s);
    if (st != NATS_OK) {
        natsSubscription_Destroy (s->sub);
        free (s);
        return qv_err (QV_EUNAVAIL, "cannot subscribe to NATS subject %s: %s", subject,
                       natsStatus_GetText (st));
    }
    self->subs [self->nsubs++] = s;
    return 0;
}

int
qv_bus_publish (qv_bus_t *self, const char *subject, const void *data, size_t size)
{
    if (size > qv_bus_max_payload (self))
        return qv_err (QV_ELIMIT, "message of %zu bytes exceeds the NATS payload limit of %zu bytes",
                       size, qv_bus_max_payload (self));
    natsStatus s = natsConnection_Publish (self->nc, subject, data, (int) size);
    if (s == NATS_MAX_PAYLOAD)
        return qv_err (QV_ELIMIT, "message of %zu bytes exceeds the NATS payload limit", size);
    if (s != NATS_OK)
        return qv_err (QV_EUNAVAIL, "cannot publish on %s: %s", subject, natsStatus_GetText (s));
    return 0;
}

size_t
qv_bus_max_payload (qv_bus_t *self)
{
    int64_t max = self->nc ? natsConnection_GetMaxPayload (self->nc) : 0;
    return max > 0 ? (size_t) max : (size_t) 1 << 20;
}

uint64_t
qv_bus_dropped (qv_bus_t *self)
{
    uint64_t n = 0;
    for (int i = 0; i < self->nsubs; i++) {
        int64_t d = 0;
        if (self->subs [i]->sub && natsSubscription_GetDropped (self->subs [i]->sub, &d) == NATS_OK)
            n += (uint64_t) d;
        n += atomic_load (&self->subs [i]->dropped);
    }
    return n;
}

natsConnection *
qv_bus_nats (qv_bus_t *self)
{
    return self->nc;
}

int
qv_bus_publish_request (qv_bus_t *self, const char *subject, const char *reply,
                        const void *data, size_t size)
{
    if (!self->nc)
        return qv_err (QV_EUNAVAIL, "cannot publish on %s: not connected to NATS yet", subject);
    natsStatus s = natsConnection_PublishRequest (self->nc, subject, reply, data, (int) size);
    if (s != NATS_OK)
        return qv_err (QV_EUNAVAIL, "cannot publish on %s: %s", subject, natsStatus_GetText (s));
    return 0;
}

int
qv_bus_ensure_stream (qv_bus_t *self, const char *name, const char *subject,
                      int64_t max_age_sec, int64_t max_bytes)
{
    if (!self->nc)
        return qv_err (QV_EUNAVAIL, "cannot set up stream %s: not connected to NATS yet", name);
    jsCtx *js = NULL;
    natsStatus s = natsConnection_JetStream (&js, self->nc, NULL);
    if (s != NATS_OK)
        return qv_err (QV_EUNAVAIL, "cannot set up stream %s: %s", name, natsStatus_GetText (s));
    jsStreamConfig cfg;
    jsStreamConfig_Init (&cfg);
    cfg.Name = name;
    const char *subjects [1] = { subject };
    cfg.Subjects = subjects;
    cfg.SubjectsLen = 1;
    cfg.Storage = js_FileStorage;
    cfg.Retention = js_LimitsPolicy;
    cfg.Discard = js_DiscardOld;
    cfg.MaxAge = max_age_sec * 1000000000LL;
    cfg.MaxBytes = max_bytes;
    jsStreamInfo *si = NULL;
    jsErrCode jerr = 0;
    s = js_AddStream (&si, js, &cfg, NULL, &jerr);
    if (s != NATS_OK && jerr == JSStreamNameExistErr) {
        //  There already: make its limits ours (they may have been changed)
        jerr = 0;
        s = js_UpdateStream (&si, js, &cfg, NULL, &jerr);
    }
    jsStreamInfo_Destroy (si);
    jsCtx_Destroy (js);
    if (s != NATS_OK)
        return qv_err (QV_EUNAVAIL, "cannot set up JetStream stream %s on %s: %s (JetStream "
                       "error %d; is the server started with -js?)", name, subject,
                       natsStatus_GetText (s), (int) jerr);
    return 0;
}

int
qv_bus_kv_open (natsConnection *nc, const char *bucket, int64_t ttl_ms, jsCtx **js_p,
                kvStore **kv_p)
{
    *js_p = NULL;
    *kv_p = NULL;
    natsStatus s = natsConnection_JetStream (js_p, nc, NULL);
    if (s == NATS_OK) {
        s = js_KeyValue (kv_p, *js_p, bucket);
        if (s == NATS_NOT_FOUND) {
            kvConfig cfg;
            kvConfig_Init (&cfg);
            cfg.Bucket = bucket;
            cfg.History = 1;
            cfg.TTL = ttl_ms * 1000000;   //  nanoseconds in nats.c 3.4
            cfg.StorageType = js_FileStorage;
            cfg.Replicas = 1;
            s = js_CreateKeyValue (kv_p, *js_p, &cfg);
            if (s != NATS_OK)       //  created by someone else meanwhile
                s = js_KeyValue (kv_p, *js_p, bucket);
        }
    }
    if (s != NATS_OK) {
        jsCtx_Destroy (*js_p);
        *js_p = NULL;
        return qv_err (QV_EUNAVAIL, "KV bucket %s: %s (%s; is the NATS server started with "
                       "-js?)", bucket, natsStatus_GetText (s), nats_GetLastError (NULL));
    }
    return 0;
}
