//  Which proxy process consumes a JetStream ingest stream: the holder of a lease in
//  NATS KV. See qv_ingest_lease.c.
#ifndef QV_INGEST_LEASE_H_INCLUDED
#define QV_INGEST_LEASE_H_INCLUDED

#include "qv_config.h"
#include <czmq.h>
#include <stdatomic.h>
#include <nats/nats.h>

typedef struct {
    const qv_config_t *config;      //  ingest_stream, lease_ttl_ms, bind, the store
    natsConnection *nc;             //  borrowed: the bridge's connection
    atomic_bool *held;              //  borrowed: kept true while the lease is ours, set
                                    //  false the moment it is not (the fetcher reads it
                                    //  before each fetch: no wait for the pipe)
} qv_ingest_lease_args_t;

//  The actor (zactor_new (qv_ingest_lease_actor, &args)). Sends on its pipe
//  "HELD" epoch (uint64) when this process may consume the stream, "LOST" 0 when it
//  must stop; $TERM releases the lease (a standby takes it at once).
void
    qv_ingest_lease_actor (zsock_t *pipe, void *args);

//  The lease's key in bucket quiver_leases: "<store key>.ingest-<stream>" (characters a
//  key may not hold become '_').
void
    qv_ingest_lease_key (const qv_config_t *config, char *out, size_t size);

#endif
