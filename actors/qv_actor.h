//  What every actor's loop shares.
#ifndef QV_ACTOR_H_INCLUDED
#define QV_ACTOR_H_INCLUDED

#include <czmq.h>

//  A zloop reader for the pipe of an actor whose only command is $TERM: reads the
//  command and ends the loop.
int
    qv_actor_on_term (zloop_t *loop, zsock_t *pipe, void *arg);

#endif
