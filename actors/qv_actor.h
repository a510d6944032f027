//  What every actor's loop shares.
#ifndef QV_ACTOR_H_INCLUDED
#define QV_ACTOR_H_INCLUDED

#include <czmq.h>

//  A zloop reader for the pipe of an actor whose only command is $TERM: reads the
//  command and ends the loop.
int
    qv_actor_on_term (zloop_t *loop, zsock_t *pipe, void *arg);

//  Reads one event of a ZeroMQ socket monitor (zmq_socket_monitor's PAIR): its id
//  (ZMQ_EVENT_*), or 0 if nothing could be read.
uint16_t
    qv_actor_monitor_event (zsock_t *monitor);

#endif
