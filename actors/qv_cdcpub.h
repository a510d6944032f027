//  Change-feed publisher actor: publishes the searcher's change events on NATS
//  (<prefix>.cdc.<collection>, PROTOCOL.md "NATS subjects"), see qv_cdcpub.c.
#ifndef QV_CDCPUB_H_INCLUDED
#define QV_CDCPUB_H_INCLUDED

#include "qv_config.h"
#include <czmq.h>

//  args: the const qv_config_t * (nats_url, nats_prefix, nats_stats). Signals once
//  its inbox is bound.
void
    qv_cdcpub_actor (zsock_t *pipe, void *args);

#endif
