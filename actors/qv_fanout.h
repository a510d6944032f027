//  Fan-out actor: in a writer process without the searcher role, sends reads to the
//  store's searcher processes over ZeroMQ TCP (see qv_fanout.c).
#ifndef QV_FANOUT_H_INCLUDED
#define QV_FANOUT_H_INCLUDED

#include "qv_config.h"
#include <czmq.h>

//  args: the const qv_config_t * (with nats_url). Signals once started.
void
    qv_fanout_actor (zsock_t *pipe, void *args);

#endif
