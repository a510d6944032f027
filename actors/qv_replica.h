//  A searcher process (`quiver serve --roles searcher`): opens the writer's store
//  read-only, recovers, follows the committed feed and answers reads.
#ifndef QV_REPLICA_H_INCLUDED
#define QV_REPLICA_H_INCLUDED

#include "qv_config.h"

typedef struct _qv_replica_t qv_replica_t;

//  Binds the API (UNAVAILABLE until caught up), opens the store read-only (no lock, no
//  write of any kind), recovers from the newest manifest and the WAL tail, and starts
//  the proxy, the searcher and the follower. config->nats_url is required. NULL with
//  the reason in qv_err_msg () if the store cannot be opened, the API not bound, or
//  recovery fails five times (a writer checkpointing while it reads is retried).
qv_replica_t *
    qv_replica_new (const qv_config_t *config);

void
    qv_replica_destroy (qv_replica_t **self_p);

//  How long (ms) its follower has been unable to read WAL objects it needs (the writer
//  checkpointed them away while it was cut off, or the store fails), 0 if it is not.
int64_t
    qv_replica_behind_ms (qv_replica_t *self);

#endif
