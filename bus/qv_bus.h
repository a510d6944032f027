//  NATS transport: one client connection that outlives NATS server restarts,
//  subscriptions that hand their messages to an actor's inproc socket, publishing.
#ifndef QV_BUS_H_INCLUDED
#define QV_BUS_H_INCLUDED

#include <czmq.h>
#include <nats/nats.h>

typedef struct _qv_bus_t qv_bus_t;

//  Connects to url (a comma-separated list is allowed) as client `name`. The
//  connection reconnects forever (buffering publishes while it is down) and, if the
//  server is not reachable now, keeps trying in the background: that is not an error.
//  asap: every publish is written at once (a connection whose publishes someone waits
//  for: replies, acks, JetStream pull requests, answers to questions); otherwise
//  nats.c batches them, writing each up to 1 ms later (nats.c 3.4's flusher thread).
//  NULL with the reason in qv_err_msg () for a URL nats.c refuses.
qv_bus_t *
    qv_bus_new (const char *url, const char *name, bool asap);

//  How every NATS connection of this process authenticates and encrypts, set once at
//  start-up before any connection (the --nats-* options; each NULL or "" when not
//  given): ca, the PEM certificates trusted to sign the server's (turns TLS on, as a
//  tls:// URL does); cert and key, a client certificate for servers that verify
//  clients; creds, a NATS credentials file (user JWT and NKey seed). User and password
//  (or a token) go in the URL. 0, or QV_EINVAL naming a file that cannot be read.
int
    qv_bus_set_security (const char *ca, const char *cert, const char *key, const char *creds);
//  Applies them to opts (every NATS connection's options go through this).
natsStatus
    qv_bus_secure (natsOptions *opts);

//  Unsubscribes, waits for message callbacks to finish, closes the connection. Safe twice.
void
    qv_bus_destroy (qv_bus_t **self_p);

//  True while the connection is up.
bool
    qv_bus_connected (qv_bus_t *self);

//  Subscribes to subject (wildcards allowed). Every message is sent, as one frame
//  holding a natsMsg * that the receiver owns (natsMsg_Destroy), to the PULL socket
//  bound at endpoint. The send happens on the NATS delivery thread of this
//  subscription through a PUSH socket created and closed on that thread, so no actor
//  socket is ever touched from a foreign thread. Returns 0 or QV_EUNAVAIL.
int
    qv_bus_subscribe (qv_bus_t *self, const char *subject, const char *endpoint);

//  Publishes data to subject (buffered by the client unless asap). QV_ELIMIT when
//  size exceeds the server's payload limit, QV_EUNAVAIL when the client cannot take it
//  (disconnected and its reconnect buffer is full).
int
    qv_bus_publish (qv_bus_t *self, const char *subject, const void *data, size_t size);

//  Publishes data to subject with reply as its reply subject (a request whose answer
//  arrives on a subscription to reply). QV_EUNAVAIL when it cannot be sent.
int
    qv_bus_publish_request (qv_bus_t *self, const char *subject, const char *reply,
                            const void *data, size_t size);

//  Creates JetStream stream name capturing subject (file storage, limits retention,
//  oldest messages discarded past max_age_sec or max_bytes), or updates an existing
//  one to those limits. 0, or QV_EUNAVAIL (not connected, no JetStream, refused).
int
    qv_bus_ensure_stream (qv_bus_t *self, const char *name, const char *subject,
                          int64_t max_age_sec, int64_t max_bytes);

//  The server's payload limit (1 MiB when unknown).
size_t
    qv_bus_max_payload (qv_bus_t *self);

//  The actor took a message of bytes payload from a subscription's socket (it is no
//  longer queued there). Called by the one actor that reads the sockets.
void
    qv_bus_taken (qv_bus_t *self, size_t bytes);

//  The natsMsg * a subscription handed to sock (one frame holding the pointer), for the
//  one actor that reads sock, counted as taken; the caller destroys it. NULL if no
//  frame could be read or it held no message.
natsMsg *
    qv_bus_recv (qv_bus_t *self, zsock_t *sock);

//  Destroys every natsMsg * still queued on sock (an actor stopping; the bus may be
//  gone).
void
    qv_bus_purge (zsock_t *sock);

//  Messages the client dropped for subscriptions that fell behind (slow consumer).
uint64_t
    qv_bus_dropped (qv_bus_t *self);

//  Opens JetStream KV bucket on nc, creating it if missing (history 1, file storage,
//  entries expire ttl_ms after their last put; 0 = never). 0 with *js_p and *kv_p (the
//  caller destroys both: kvStore_Destroy, jsCtx_Destroy), or QV_EUNAVAIL with the reason.
int
    qv_bus_kv_open (natsConnection *nc, const char *bucket, int64_t ttl_ms, jsCtx **js_p,
                    kvStore **kv_p);

//  The connection, for JetStream calls (thread-safe in nats.c).
natsConnection *
    qv_bus_nats (qv_bus_t *self);

#endif
