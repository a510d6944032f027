//  Member actor: in a searcher process, keeps the process's entry in the searcher
//  membership bucket (bus/qv_members.h) so writer processes send it reads.
#ifndef QV_MEMBER_H_INCLUDED
#define QV_MEMBER_H_INCLUDED

#include "qv_config.h"
#include <czmq.h>

//  args: the const qv_config_t * (with nats_url and feed_stats). Signals once started.
void
    qv_member_actor (zsock_t *pipe, void *args);

#endif
