//  Member actor: keeps a process's entry in the membership bucket (bus/qv_members.h):
//  a searcher process's, so writer processes send it reads; a writer core's, so proxy
//  processes find it.
#ifndef QV_MEMBER_H_INCLUDED
#define QV_MEMBER_H_INCLUDED

#include "qv_config.h"
#include <czmq.h>

//  Whether the process may be sent work now (called on the member's thread).
typedef bool (qv_member_ready_fn) (void *arg);

typedef struct {
    const qv_config_t *config;      //  nats_url, the store, --advertise / --bind
    const char *role;               //  QV_MEMBERS_SEARCHER or QV_MEMBERS_CORE
    uint64_t epoch;                 //  a writer core's lease epoch (0 for a searcher)
    qv_member_ready_fn *ready;      //  NULL: the follower's caught_up (feed_stats)
    void *ready_arg;
} qv_member_args_t;

//  args: a qv_member_args_t *, read before the actor signals. Signals once started.
void
    qv_member_actor (zsock_t *pipe, void *args);

#endif
