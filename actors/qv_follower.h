//  Follower actor: in a searcher process (`quiver serve --roles searcher`), follows the
//  writer's committed feed on NATS and hands its records to the local searcher.
#ifndef QV_FOLLOWER_H_INCLUDED
#define QV_FOLLOWER_H_INCLUDED

#include "qv_config.h"
#include "qv_wal.h"
#include <czmq.h>

typedef struct {
    const qv_config_t *config;      //  with nats_url and feed_stats
    qv_wal_t *wal;                  //  read-only WAL, opened at recovery: the actor owns it
    zhashx_t *schemas;              //  "coll id" -> qv_schema_t * of the recovered
                                    //  collections (owning, with a destructor): the
                                    //  actor owns it, and keeps it from the feed's DDL
} qv_follower_args_t;

//  Signals once started; takes everything from args before.
void
    qv_follower_actor (zsock_t *pipe, void *args);

#endif
