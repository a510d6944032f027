//  The ZAP handler: see qv_zap.h.
//
//  DESIGN
//  One REP socket on inproc://zeromq.zap.01 (libzmq asks it, from its I/O threads,
//  once per CURVE handshake of any socket of the context): request frames version,
//  request id, domain, address, routing id, mechanism, credentials (CURVE: the
//  client's 32-byte public key); reply version, request id, status code, status text,
//  user id, metadata. A refused client is logged with its address, the first time and
//  then every 100th (a peer with the wrong key reconnects every 100 ms).
#include "qv_zap.h"
#include "qv_rc.h"

#include <string.h>

static void
s_reply (zsock_t *handler, zframe_t *version, zframe_t *id, bool ok)
{
    zmsg_t *rep = zmsg_new ();
    zmsg_append (rep, &version);
    zmsg_append (rep, &id);
    zmsg_addstr (rep, ok ? "200" : "400");
    zmsg_addstr (rep, ok ? "OK" : "client key not admitted (--curve-peer-key)");
    zmsg_addstr (rep, "");
    zmsg_addmem (rep, NULL, 0);
    zmsg_send (&rep, handler);
}

void
qv_zap_actor (zsock_t *pipe, void *args)
{
    const qv_zap_args_t *za = args;
    uint8_t admitted [32];
    char text [41], who [64];
    snprintf (text, sizeof text, "%s", za->key);
    snprintf (who, sizeof who, "%s", za->who);
    zsock_t *handler = zsock_new (ZMQ_REP);
    if (!handler || !zmq_z85_decode (admitted, text) || zsock_bind (handler, "inproc://zeromq.zap.01") != 0) {
        qv_error ("the ZAP handler cannot start (%s): CURVE clients of the links between "
                  "processes will be refused", zmq_strerror (zmq_errno ()));
        zsock_destroy (&handler);
        zsock_signal (pipe, 0);
        char *cmd = zstr_recv (pipe);   //  $TERM
        zstr_free (&cmd);
        return;
    }
    zsock_signal (pipe, 0);
    zpoller_t *poller = zpoller_new (pipe, handler, NULL);
    uint64_t refused = 0;
    while (true) {
        void *which = zpoller_wait (poller, -1);
        if (which != handler)
            break;                      //  $TERM, or interrupted
        zmsg_t *req = zmsg_recv (handler);
        if (!req)
            break;
        zframe_t *version = zmsg_pop (req), *id = zmsg_pop (req);
        if (!version)
            version = zframe_new ("1.0", 3);
        if (!id)
            id = zframe_new (NULL, 0);
        char *domain = zmsg_popstr (req), *address = zmsg_popstr (req);
        zframe_t *routing = zmsg_pop (req);
        char *mechanism = zmsg_popstr (req);
        zframe_t *key = zmsg_pop (req);
        bool peers = domain && streq (domain, QV_ZAP_PEERS);
        bool ok = !peers
               || (mechanism && streq (mechanism, "CURVE") && key && zframe_size (key) == 32
                   && memcmp (zframe_data (key), admitted, 32) == 0);
        if (!ok && refused++ % 100 == 0)
            qv_warn ("%s refused a client from %s with another CURVE key than "
                     "--curve-peer-key (%llu so far)", who, address ? address : "?",
                     (unsigned long long) refused);
        s_reply (handler, version, id, ok);
        zframe_destroy (&routing);
        zframe_destroy (&key);
        zstr_free (&domain);
        zstr_free (&address);
        zstr_free (&mechanism);
        zmsg_destroy (&req);
    }
    zpoller_destroy (&poller);
    zsock_destroy (&handler);
}
