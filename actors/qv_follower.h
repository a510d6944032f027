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
                                    //  collections, kept from the feed's DDL by the
                                    //  actor; the caller's (no destructor): the records
                                    //  the actor sends point into them, so the caller
                                    //  frees them after the searcher has stopped
    zlistx_t *retired;              //  the caller's, empty: schemas the actor replaced
                                    //  or dropped (qv_follower_retired_t *); freed by the
                                    //  actor once the searcher took every record decoded
                                    //  with them, the rest by the caller as above
} qv_follower_args_t;

//  A schema replaced or dropped, and how many APPLY messages had been sent (or were
//  queued to be) when it was: it is freed once the searcher has taken that many.
typedef struct {
    void *schema;                   //  qv_schema_t *, owned
    uint64_t stamp;
} qv_follower_retired_t;

//  Frees the retired schemas in list whose stamp is at most taken (all: UINT64_MAX).
void
    qv_follower_free_retired (zlistx_t *list, uint64_t taken);

//  Signals once started; takes everything from args before.
void
    qv_follower_actor (zsock_t *pipe, void *args);

#endif
