//  The ZAP handler (ZeroMQ's authentication protocol, RFC 27) of a process whose links
//  to the other processes of a split deployment run CURVE with --curve-peer-key: the
//  sockets of the domain QV_ZAP_PEERS (a writer core's, a searcher process's) admit
//  only clients whose public key is that key; every other socket (the API of an
//  embedded server or a proxy process) admits any client key, as without a handler.
#ifndef QV_ZAP_H_INCLUDED
#define QV_ZAP_H_INCLUDED

#include <czmq.h>

#define QV_ZAP_PEERS "quiver-peers"

typedef struct {
    const char *key;                //  the admitted client's public key (40 characters
                                    //  of Z85)
    const char *who;                //  this process, for the log ("the writer core")
} qv_zap_args_t;

//  zactor_new (qv_zap_actor, &args) (args copied at start). Binds inproc://zeromq.zap.01 in czmq's
//  context before it returns; if it cannot, every CURVE handshake of a socket with a
//  ZAP domain then fails (libzmq refuses without a handler), which is logged.
void
    qv_zap_actor (zsock_t *pipe, void *args);

#endif
