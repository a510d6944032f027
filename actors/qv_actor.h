//  What every actor's loop shares.
#ifndef QV_ACTOR_H_INCLUDED
#define QV_ACTOR_H_INCLUDED

#include <czmq.h>
#include "qv_config.h"
#include "qv_loop.h"

//  A loop reader for the pipe of an actor whose only command is $TERM: reads the
//  command and ends the loop. (Such a pipe is private to its handler:
//  qv_loop_reader_set_private, when no other handler sends on it.)
int
    qv_actor_on_term (qv_loop_t *loop, zsock_t *pipe, void *arg);

//  Reads one event of a ZeroMQ socket monitor (zmq_socket_monitor's PAIR): its id
//  (ZMQ_EVENT_*), or 0 if nothing could be read.
uint16_t
    qv_actor_monitor_event (zsock_t *monitor);

//  Reads a message from a socket a poll found readable, without waiting: NULL if it
//  is gone. A reader of a TCP socket must never wait here: ZeroMQ drops a pipe whose
//  peer went away (at once on an immediate DEALER, messages unread and all), so what
//  the poll saw can vanish before the read, and a waiting read would then hang until
//  the peer's next message, which may never come (a core that restarted sends nothing
//  until greeted, and the reader is the one to greet it). czmq's zmsg_recv_nowait
//  (bus/qv_client.c, below the actors, calls it directly).
zmsg_t *
    qv_actor_recv (zsock_t *sock);

//  How many messages a busy actor's reader takes from its socket in one turn of its
//  loop before it lets the loop poll again. Each message read in a loop turn of its
//  own costs a poll() and the asks of ZMQ_EVENTS (two system calls each) of the
//  sockets the handler may have touched (bus/qv_loop.h); under load the messages
//  queue, and taking the queued ones at once spares those calls for each of them.
//  Bounded, so the actor's other sockets and its timers still get their turn.
#define QV_ACTOR_DRAIN 32

//  A DEALER to a peer process (a searcher process, a writer core): immediate (a
//  message for a peer not connected is refused at once, never queued for it), no
//  linger, 10,000 messages queued to send at most, unbounded receive, reconnecting
//  every 100 ms, ZMTP heartbeats every second (a peer silent for 5 s counts as
//  disconnected). With monitor_p, a socket monitor of events (ZMQ_EVENT_*) at the inproc
//  endpoint monitor_ep (unique per socket) and *monitor_p the PAIR reading it (NULL if
//  the monitor could not be set up). With config->curve_peer_key, a CURVE client: this
//  process's key pair (--curve-secret-key), the peer's public key. Not connected yet.
//  NULL if the socket or the key pair cannot be made (said in the log).
zsock_t *
    qv_actor_dealer (const qv_config_t *config, const char *monitor_ep, int events,
                     zsock_t **monitor_p);

//  With config->curve_secret_key, makes sock (not bound yet) a CURVE server with that
//  key pair; peers_only: and, with config->curve_peer_key, admits only clients that
//  present that key (the ZAP domain QV_ZAP_PEERS, actors/qv_zap.h); otherwise, with
//  config->curve_clients, admits only the client keys that file lists (QV_ZAP_CLIENTS).
//  Says so in the log,
//  naming what (e.g. "the API"). 0, or -1 if the key file cannot be read.
int
    qv_actor_curve_server (zsock_t *sock, const qv_config_t *config, bool peers_only,
                           const char *what);

//  A stop signal (SIGINT, SIGTERM: blocked in every thread, taken by main's sigwait)
//  is pending: a start waiting for a lease gives up. (The signature of
//  qv_lease_stop_fn; arg unused.)
bool
    qv_actor_stop_pending (void *arg);

//  Background work (index builds, compaction): lowers the calling thread's priority
//  to nice 10, so that requests and new data get the cores first. Threads the caller
//  starts afterwards (an index build's) inherit it. Logs a warning naming `who` if the
//  system refuses.
void
    qv_actor_background (const char *who);

#endif
