//  A client of the public ZeroMQ API over one DEALER socket (see qv_client.h).
#include "qv_client.h"
#include "qv_rc.h"

#include <czmq.h>
#include <stdatomic.h>

#define S_MAX_ELEMS ((size_t) 1 << 28)  //  replies come from a server we chose to trust

struct _qv_client_t {
    char *endpoint;
    char server_key [41];           //  CURVE: the server's public key (Z85), or ""
    bool own_pair;                  //  CURVE: this client's key pair from a key file
    uint8_t public_key [32];        //  (else a new pair per connection)
    uint8_t secret_key [32];
    zsock_t *sock;                  //  DEALER, connected to endpoint
    int timeout_ms;
    uint64_t next_rid;
    char code [32];                 //  protocol code of the last failure, "" if none
    char error [512];               //  its message
    char *token;                    //  "user:password" sent with every request, or NULL
    char routing [200];             //  qv_client_new_as: the routing id's prefix, or ""
};

//  Sockets made with a routing id prefix in this process: each id must be new
static atomic_uint s_routings;

static zsock_t *
s_socket_new (const qv_client_t *self, const char *routing_id)
{
    const char *server_key = self->server_key;
    zsock_t *sock = zsock_new (ZMQ_DEALER);
    if (!sock)
        return NULL;
    if (routing_id)
        zsock_set_identity (sock, routing_id);
    if (server_key && *server_key) {
        //  The key pair of the client's key file, else this connection's own
        zcert_t *cert = self->own_pair ? zcert_new_from (self->public_key, self->secret_key)
                                       : zcert_new ();
        if (!cert) {
            zsock_destroy (&sock);
            return NULL;
        }
        zcert_apply (cert, zsock_resolve (sock));
        zcert_destroy (&cert);
        zsock_set_curve_serverkey (sock, server_key);
    }
    zsock_set_linger (sock, 0);
    zsock_set_sndtimeo (sock, 1000);
    zsock_set_rcvhwm (sock, 100000);
    zsock_set_sndhwm (sock, 100000);
    if (zsock_connect (sock, "%s", self->endpoint) < 0)
        zsock_destroy (&sock);
    return sock;
}

qv_client_t *
qv_client_new (const char *endpoint)
{
    return qv_client_new_curve (endpoint, NULL);
}

//  self's socket, new: its routing id, when it has a prefix, is the prefix and a
//  count of this process's (a ROUTER refuses a connection whose id another one
//  still holds, as another client or a socket dropped after a timeout may).
static zsock_t *
s_connect (qv_client_t *self)
{
    char id [sizeof self->routing + 16];
    if (self->routing [0])
        snprintf (id, sizeof id, "%s#%u", self->routing, atomic_fetch_add (&s_routings, 1));
    return s_socket_new (self, self->routing [0] ? id : NULL);
}


bool
qv_curve_key_valid (const char *text)
{
    static const char *alphabet = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                  ".-:+=^!/*?&<>()[]{}@%$#";
    if (!text || strlen (text) != 40)
        return false;
    for (const char *c = text; *c; c++)
        if (!strchr (alphabet, *c))
            return false;
    return true;
}

int
qv_curve_key_read (const char *text, char out [41])
{
    if (qv_curve_key_valid (text)) {
        memcpy (out, text, 41);
        return 0;
    }
    zcert_t *cert = zcert_load (text);
    if (!cert)
        return -1;
    snprintf (out, 41, "%s", zcert_public_txt (cert));
    zcert_destroy (&cert);
    return 0;
}

//  A client of endpoint, CURVE with server_key (NULL: plain) and the key pair of the
//  file client_key (NULL: a new pair per connection), its routing ids prefixed with
//  routing (NULL: libzmq's own).
static qv_client_t *
s_new (const char *endpoint, const char *server_key, const char *client_key,
       const char *routing)
{
    if (server_key && !qv_curve_key_valid (server_key)) {
        qv_err (QV_EINVAL, "the server key must be 40 characters of Z85 (as `quiver keygen` "
                "prints it), not '%.60s'", server_key);
        return NULL;
    }
    zcert_t *cert = client_key ? zcert_load (client_key) : NULL;
    if (client_key && (!cert || streq (zcert_secret_txt (cert),
                                       "0000000000000000000000000000000000000000"))) {
        zcert_destroy (&cert);
        qv_err (QV_EINVAL, "the client key %.300s is not a secret key file (make a pair with "
                "`quiver keygen FILE` and give FILE_secret; the server lists FILE's public "
                "key in --curve-clients)", client_key);
        return NULL;
    }
    qv_client_t *self = calloc (1, sizeof *self);
    if (!self) {
        zcert_destroy (&cert);
        return NULL;
    }
    if (server_key)
        memcpy (self->server_key, server_key, 41);
    if (cert) {
        memcpy (self->public_key, zcert_public_key (cert), 32);
        memcpy (self->secret_key, zcert_secret_key (cert), 32);
        self->own_pair = true;
        zcert_destroy (&cert);
    }
    if (routing)
        snprintf (self->routing, sizeof self->routing, "%s", routing);
    self->endpoint = strdup (endpoint);
    self->sock = self->endpoint ? s_connect (self) : NULL;
    if (!self->endpoint || !self->sock) {
        qv_err (QV_EINVAL, "cannot connect to '%s': %s", endpoint, zmq_strerror (zmq_errno ()));
        qv_client_destroy (&self);
        return NULL;
    }
    self->timeout_ms = QV_CLIENT_TIMEOUT_MS;
    self->next_rid = 1;
    return self;
}

qv_client_t *
qv_client_new_curve (const char *endpoint, const char *server_key)
{
    return s_new (endpoint, server_key, NULL, NULL);
}

qv_client_t *
qv_client_new_curve_key (const char *endpoint, const char *server_key, const char *client_key)
{
    return s_new (endpoint, server_key, client_key, NULL);
}

qv_client_t *
qv_client_new_as (const char *endpoint, const char *routing_id)
{
    return s_new (endpoint, NULL, NULL, routing_id && *routing_id ? routing_id : NULL);
}

void
qv_client_destroy (qv_client_t **self_p)
{
    qv_client_t *self = *self_p;
    if (!self)
        return;
    zsock_destroy (&self->sock);
    free (self->endpoint);
    free (self->token);
    explicit_bzero (self->secret_key, sizeof self->secret_key);
    free (self);
    *self_p = NULL;
}

void
qv_client_set_timeout (qv_client_t *self, int msec)
{
    self->timeout_ms = msec > 0 ? msec : QV_CLIENT_TIMEOUT_MS;
}

const char *
qv_client_endpoint (qv_client_t *self)
{
    return self->endpoint;
}

const char *
qv_client_error (qv_client_t *self)
{
    return self->error;
}

const char *
qv_client_code (qv_client_t *self)
{
    return self->code;
}

int
qv_client_rc_of (const char *code)
{
#define S_RC_MATCH(name, value, wire) if (streq (code, wire)) return value;
    QV_RC_TABLE (S_RC_MATCH)
#undef S_RC_MATCH
    return QV_ERR;
}

//  Records a failure in the client and in this thread's error slot; returns rc.
static int
s_fail (qv_client_t *self, int rc, const char *code, const char *fmt, ...)
{
    va_list ap;
    va_start (ap, fmt);
    vsnprintf (self->error, sizeof self->error, fmt, ap);
    va_end (ap);
    snprintf (self->code, sizeof self->code, "%s", code);
    return qv_err (rc, "%s", self->error);
}

qv_wr_t *
qv_client_request (qv_client_t *self, const char *op, size_t nfields, uint64_t *rid_p)
{
    qv_wr_t *w = qv_wr_new ();
    if (!w)
        return NULL;
    uint64_t rid = self->next_rid++;
    qv_wr_map (w, nfields + 2 + (self->token != NULL));
    qv_wr_str (w, "op");
    qv_wr_str (w, op);
    qv_wr_str (w, "rid");
    qv_wr_uint (w, rid);
    if (self->token) {
        qv_wr_str (w, "token");
        qv_wr_str (w, self->token);
    }
    if (rid_p)
        *rid_p = rid;
    return w;
}

int
qv_client_send (qv_client_t *self, qv_wr_t *request)
{
    size_t size;
    const void *data = qv_wr_data (request, &size);
    //  EAGAIN: no connection within the send timeout. A client without the key of a
    //  server whose API is encrypted ends here too when the server has already
    //  refused its handshake (ZeroMQ then drops the connection), else in the wait
    //  for the answer: both say so
    if (zmq_send (zsock_resolve (self->sock), data, size, 0) < 0)
        return s_fail (self, QV_EUNAVAIL, "UNAVAILABLE", "cannot send to %s: %s%s",
                       self->endpoint, zmq_strerror (zmq_errno ()),
                       zmq_errno () == EAGAIN
                       ? " (is `quiver serve` running, and, if its API is encrypted, is "
                         "the server key right, and this client's key admitted?)" : "");
    return 0;
}

//  The rid of a request we wrote ourselves, or UINT64_MAX if it has none we can read.
static uint64_t
s_request_rid (qv_wr_t *request)
{
    size_t size;
    const void *data = qv_wr_data (request, &size);
    int rc;
    qv_doc_t *doc = qv_doc_parse (data, size, S_MAX_ELEMS, &rc);
    uint64_t rid = UINT64_MAX;
    const qv_val_t *v = doc ? qv_val_get (qv_doc_root (doc), "rid") : NULL;
    if (v && qv_val_uint (v, &rid))
        rid = UINT64_MAX;
    qv_doc_destroy (&doc);
    return rid;
}

int
qv_client_recv (qv_client_t *self, qv_doc_t **reply, uint64_t *rid_p)
{
    *reply = NULL;
    if (rid_p)
        *rid_p = UINT64_MAX;
    self->code [0] = self->error [0] = 0;
    //  The reply is read without waiting: a server that dies between the poll and the
    //  read takes it with it (ZeroMQ drops the pipe), and a waiting read would hang
    //  past the timeout; the poll goes on for the time left
    zmsg_t *msg = NULL;
    int64_t deadline = zclock_mono () + self->timeout_ms;
    int rc = 1;
    while (!msg && rc > 0) {
        int64_t left = deadline - zclock_mono ();
        zmq_pollitem_t item = { zsock_resolve (self->sock), 0, ZMQ_POLLIN, 0 };
        rc = left > 0 ? zmq_poll (&item, 1, left) : 0;
        if (rc > 0)
            msg = zmsg_recv_nowait (self->sock);
    }
    if (rc <= 0) {
        //  A late reply must never pass for the answer to a later request.
        zsock_destroy (&self->sock);
        self->sock = s_connect (self);
        if (rc < 0)
            return s_fail (self, QV_EUNAVAIL, "UNAVAILABLE", "interrupted waiting for %s",
                           self->endpoint);
        return s_fail (self, QV_ETIMEOUT, "TIMEOUT",
                       "no answer from %s within %g s: is `quiver serve` running (and, if its "
                       "API is encrypted, is the server key right, and this client's key admitted)?",
                       self->endpoint, self->timeout_ms / 1000.0);
    }
    zframe_t *body = msg ? zmsg_last (msg) : NULL;
    if (!body) {
        zmsg_destroy (&msg);
        return s_fail (self, QV_EUNAVAIL, "UNAVAILABLE", "interrupted receiving from %s",
                       self->endpoint);
    }
    qv_doc_t *doc = qv_doc_parse (zframe_data (body), zframe_size (body), S_MAX_ELEMS, &rc);
    zmsg_destroy (&msg);
    if (!doc)
        return s_fail (self, QV_EPROTO, "MALFORMED", "undecodable reply from %s: %s",
                       self->endpoint, qv_err_msg ());
    const qv_val_t *root = qv_doc_root (doc);
    const qv_val_t *rid = qv_val_get (root, "rid");
    if (rid && rid_p && qv_val_uint (rid, rid_p))
        *rid_p = UINT64_MAX;
    *reply = doc;
    bool ok = false;
    const qv_val_t *okv = qv_val_get (root, "ok");
    if (!okv || qv_val_bool (okv, &ok))
        return s_fail (self, QV_EPROTO, "MALFORMED", "reply from %s has no boolean 'ok'",
                       self->endpoint);
    if (ok)
        return 0;
    char code [32] = "INTERNAL", error [480] = "(no message)";
    const qv_val_t *v = qv_val_get (root, "code");
    if (v && qv_val_strcpy (v, code, sizeof code))
        snprintf (code, sizeof code, "INTERNAL");
    v = qv_val_get (root, "error");
    if (v) {
        const char *s;
        size_t n;
        if (qv_val_str (v, &s, &n) == 0)
            snprintf (error, sizeof error, "%.*s", (int) n, s);
    }
    return s_fail (self, qv_client_rc_of (code), code, "%s", error);
}

int
qv_client_call (qv_client_t *self, qv_wr_t *request, qv_doc_t **reply)
{
    *reply = NULL;
    uint64_t want = s_request_rid (request);
    int rc = qv_client_send (self, request);
    if (rc)
        return rc;
    int64_t deadline = qv_clock_msec () + self->timeout_ms;
    int timeout = self->timeout_ms;
    while (true) {
        uint64_t rid;
        rc = qv_client_recv (self, reply, &rid);
        if (rc == QV_ETIMEOUT || *reply == NULL || want == UINT64_MAX || rid == want)
            break;
        //  A late answer to an earlier request: drop it and keep waiting.
        qv_doc_destroy (reply);
        int64_t left = deadline - qv_clock_msec ();
        if (left <= 0) {
            rc = QV_ETIMEOUT;
            break;
        }
        self->timeout_ms = (int) left;
    }
    self->timeout_ms = timeout;
    if (rc == QV_ETIMEOUT)          //  say the whole wait, not its last part
        rc = s_fail (self, QV_ETIMEOUT, "TIMEOUT",
                     "no answer from %s within %g s: is `quiver serve` running (and, if its "
                     "API is encrypted, is the server key right, and this client's key admitted)?",
                     self->endpoint, timeout / 1000.0);
    return rc;
}

int
qv_client_set_token (qv_client_t *self, const char *token)
{
    free (self->token);
    self->token = NULL;
    if (token && *token && !(self->token = strdup (token)))
        return qv_err (QV_ENOMEM, "out of memory");
    return 0;
}
