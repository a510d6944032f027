//  A client of the public ZeroMQ API: one request and its reply, with a timeout, or
//  pipelined requests matched by `rid`. Used by qvctl, tests and benchmarks.
//
//  DESIGN
//  The client holds one DEALER socket, so a caller can keep several requests in
//  flight (qv_client_send / qv_client_recv) or make one call at a time
//  (qv_client_call). Requests made with qv_client_request carry a `rid` the client
//  chose; a reply whose `rid` is not the awaited one (a late answer to a request that
//  timed out) is dropped. After a timeout the socket is replaced, so nothing stale
//  can ever be read as the answer to a later request. A client belongs to one thread.
#ifndef QV_CLIENT_H_INCLUDED
#define QV_CLIENT_H_INCLUDED

#include "qv_codec.h"

#include <stdint.h>

#define QV_CLIENT_TIMEOUT_MS 5000   //  default time to wait for a reply

typedef struct _qv_client_t qv_client_t;

//  A client of the server at endpoint ("tcp://127.0.0.1:19530"). Connecting is
//  asynchronous: an unreachable server shows as a timeout on the first call. NULL if
//  the endpoint is not a valid ZeroMQ endpoint (message in qv_err_msg ()).
qv_client_t *
    qv_client_new (const char *endpoint);
//  The same to a server that encrypts with ZeroMQ CURVE (`quiver serve
//  --curve-secret-key`): server_key is its public key, 40 characters of Z85 (`quiver
//  keygen` prints it). The client makes a key pair of its own for the connection. A
//  server whose key differs never answers (the handshake fails): calls time out. NULL
//  with the reason if server_key is not a Z85 key.
qv_client_t *
    qv_client_new_curve (const char *endpoint, const char *server_key);
//  The same with this client's own key pair from client_key, a secret key file of
//  `quiver keygen` (NULL: a new pair per connection, as qv_client_new_curve): for a
//  server that admits only listed client keys (`quiver serve --curve-clients`). A
//  server that does not list its public key never answers: calls time out. NULL with
//  the reason if client_key is not a secret key file.
qv_client_t *
    qv_client_new_curve_key (const char *endpoint, const char *server_key,
                             const char *client_key);
//  The same with a ZeroMQ routing id of routing_id followed by "#" and a count of the
//  process's (at most 199 bytes of it kept): how an in-process gateway names, to the proxy, the
//  client it speaks for (qv_http.c: "http:ADDRESS").
qv_client_t *
    qv_client_new_as (const char *endpoint, const char *routing_id);
//  Whether text is a CURVE key as Z85: 40 characters of its alphabet.
bool
    qv_curve_key_valid (const char *text);
//  A public key given as the key itself (40 characters of Z85) or as a key file
//  written by `quiver keygen` (its public half, or the secret file): into out. 0, or
//  -1 if text is neither.
int
    qv_curve_key_read (const char *text, char out [41]);
void
    qv_client_destroy (qv_client_t **self_p);

//  How long qv_client_call and qv_client_recv wait for a reply; msec > 0.
void
    qv_client_set_timeout (qv_client_t *self, int msec);
const char *
    qv_client_endpoint (qv_client_t *self);

//  The token ("user:password", PROTOCOL.md) every request made with qv_client_request
//  carries from now on; NULL or "" for none. 0, or QV_ENOMEM.
int
    qv_client_set_token (qv_client_t *self, const char *token);

//  Starts a request {"op": op, "rid": <next rid>, ["token",] ...} in a new writer that
//  the caller owns; the caller then writes exactly nfields key/value pairs. The rid is
//  given in *rid_p when rid_p is not NULL.
qv_wr_t *
    qv_client_request (qv_client_t *self, const char *op, size_t nfields, uint64_t *rid_p);

//  Sends request (borrowed) and waits for its reply. Returns 0 when the reply says
//  ok; the code mapped from the reply's `code` (QV_EINVAL for INVALID_ARGUMENT, ...)
//  when it says not ok; QV_ETIMEOUT when no reply came within the timeout; QV_EPROTO
//  for an undecodable reply. *reply receives the decoded reply whenever one arrived
//  (also an error reply; the caller destroys it), else NULL. On failure
//  qv_client_error () holds a message a person can act on, also in qv_err_msg ().
int
    qv_client_call (qv_client_t *self, qv_wr_t *request, qv_doc_t **reply);

//  Pipelining: sends request (borrowed) without waiting. 0, or QV_EUNAVAIL if the
//  socket refused it.
int
    qv_client_send (qv_client_t *self, qv_wr_t *request);

//  Waits for the next reply to any request in flight. Returns as qv_client_call;
//  *rid_p receives the reply's `rid` (an unsigned integer) or UINT64_MAX if it has
//  none. The caller matches the reply to its request by that rid.
int
    qv_client_recv (qv_client_t *self, qv_doc_t **reply, uint64_t *rid_p);

//  The message and protocol code ("INVALID_ARGUMENT", "TIMEOUT", ...) of the last
//  failed call, "" after a success.
const char *
    qv_client_error (qv_client_t *self);
const char *
    qv_client_code (qv_client_t *self);

//  The protocol code name ("NOT_FOUND", ...) -> qv_rc_t; QV_ERR for an unknown name.
int
    qv_client_rc_of (const char *code);

#endif
