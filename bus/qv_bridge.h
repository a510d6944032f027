//  NATS bridge actor: serves the quiver.<op>.<collection> subjects and consumes the
//  JetStream ingest stream (PROTOCOL.md "NATS subjects"); the change feed has its own
//  actor (actors/qv_cdcpub.c).
#ifndef QV_BRIDGE_H_INCLUDED
#define QV_BRIDGE_H_INCLUDED

#include "qv_codec.h"
#include "qv_config.h"

#include <czmq.h>

typedef struct {
    const qv_config_t *config;      //  nats_url, nats_prefix, ingest_stream, nats_stats
    uint64_t stream_seq;            //  highest stream sequence applied (recovered)
} qv_bridge_args_t;

//  Refuses a stream whose subjects overlap Quiver's own (prefix.>): 0, or QV_EINVAL
//  with a message naming the subject. Subjects are NATS patterns (*, > wildcards).
int
    qv_bridge_check_subjects (const char *prefix, const char *stream, const char **subjects,
                              int n);

//  True if some subject matches both patterns a and b.
bool
    qv_subjects_overlap (const char *a, const char *b);

//  @interface
//    After the handshake the actor makes a first attempt to set up, then sends one
//    string on its pipe: "OK" (live, or still trying in the background, e.g. NATS not
//    reachable yet), or "FATAL" followed by a reason frame (a configuration the server
//    must refuse, such as an ingest stream overlapping prefix.>).
//    $TERM                 stop: unsubscribe, keep the durable consumer, close
//  It tells the proxy "LIVE" (proxy inbox) once its subscriptions and the stream
//  consumer are set up, and sends requests to the proxy's inproc "api" ROUTER.
void
    qv_bridge_actor (zsock_t *pipe, void *args);

//  Writes the bridge's figures into a `stats` reply: nats_connected, nats_live,
//  nats_requests, nats_failed, nats_dropped, ingest_applied, ingest_bad, ingest_retries,
//  ingest_lag, ingest_leading.
void
    qv_bridge_write_stats (qv_nats_stats_t *ns, qv_wr_t *w);

#endif
