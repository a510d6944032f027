//  The ZAP handler (ZeroMQ's authentication protocol, RFC 27) of a process that
//  admits CURVE clients by their keys:
//  - with --curve-peer-key (the links between the processes of a split deployment),
//    the sockets of the domain QV_ZAP_PEERS (a writer core's, a searcher process's)
//    admit only clients whose public key is that key;
//  - with --curve-clients FILE, the API socket (domain QV_ZAP_CLIENTS, an embedded
//    server's or a proxy process's) admits only clients whose public keys FILE lists.
//    The handler reads FILE again when it changes (at the next handshake), so keys are
//    added and withdrawn without a restart; connections already made stay. A FILE that
//    cannot be read or parsed then keeps the keys read before, and says why in the log.
//  Every other socket admits any client key, as without a handler.
#ifndef QV_ZAP_H_INCLUDED
#define QV_ZAP_H_INCLUDED

#include <czmq.h>

#define QV_ZAP_PEERS "quiver-peers"
#define QV_ZAP_CLIENTS "quiver-clients"

typedef struct {
    const char *key;                //  the admitted peer's public key (40 characters
                                    //  of Z85), or "" for none
    const char *who;                //  this process, for the log ("the writer core")
    const char *clients;            //  --curve-clients FILE, or NULL / "" for none
    bool bound;                     //  out: the handler is bound (set before
                                    //  zactor_new returns)
} qv_zap_args_t;

//  The client keys that the file at path admits, as a hash of their Z85 text (40
//  characters; the items mean nothing). The file holds one key a line: the key
//  itself, or a `public-key = "..."` line as `quiver keygen` writes (so a client's
//  public key file may be appended as it is); blank lines and lines that start with
//  '#' (and the sections of a key file: "metadata", "curve") are skipped. NULL with
//  the reason (qv_err_msg, naming the file and the line) if it cannot be read, or a
//  line is none of those.
zhashx_t *
    qv_zap_clients_read (const char *path);

//  zactor_new (qv_zap_actor, &args) (its strings copied at start). Binds
//  inproc://zeromq.zap.01 in czmq's context and sets args.bound before zactor_new
//  returns. If it cannot (logged), libzmq would admit every client of a socket with a
//  ZAP domain unless the socket enforces it (ZMQ_ZAP_ENFORCE_DOMAIN, which
//  qv_actor_curve_server sets where libzmq takes it): the process must not serve then
//  (quiver serve exits).
void
    qv_zap_actor (zsock_t *pipe, void *args);

#endif
