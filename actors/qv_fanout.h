//  Fan-out actor: in a writer process without the searcher role, sends reads to the
//  store's searcher processes over ZeroMQ TCP (see qv_fanout.c).
#ifndef QV_FANOUT_H_INCLUDED
#define QV_FANOUT_H_INCLUDED

#include "qv_codec.h"
#include "qv_config.h"
#include <czmq.h>

//  args: the const qv_config_t * (with nats_url). Signals once started.
void
    qv_fanout_actor (zsock_t *pipe, void *args);

//  The fan-out's figures in a `stats` reply (inside an open map, qv_wr_map_open):
//  searchers, searchers_ready, and searcher_processes, the table of searcher
//  processes it keeps in fs: for each, its endpoint, the incarnation it announced,
//  whether reads go to it now (routed: caught up, heard from lately, reachable), its
//  announced position and catch-up, how long ago it was heard from, and the reads in
//  flight on it.
void
    qv_fanout_write_stats (qv_feed_stats_t *fs, qv_wr_t *w);

#endif
