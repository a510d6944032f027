//  Compactor actor: a worker of the metadata coordinator (qv_meta) that merges flushed
//  segments into one, writes it and builds its indexes (see qv_compactor.c).
#ifndef QV_COMPACTOR_H_INCLUDED
#define QV_COMPACTOR_H_INCLUDED

#include "qv_config.h"
#include "qv_job.h"
#include "qv_store.h"

typedef struct {
    const qv_config_t *config;
    qv_store_t *store;              //  borrowed; thread-safe
    const atomic_bool *stopping;    //  borrowed: true once the server stops (cancels the
                                    //  compaction in progress), or NULL
} qv_compactor_args_t;

void
    qv_compactor_actor (zsock_t *pipe, void *args);

//  Frees a compaction (qv_job.h) with what it holds: the old segments' links, the
//  merged segment, the builds.
void
    qv_compact_destroy (qv_compact_t **self_p);

//  Sends msg_id (QV_MSG_COMPACT or QV_MSG_COMPACTED) {task} to sock; the task is
//  destroyed if sock is gone (shutdown). Returns 0 if sent.
int
    qv_compact_post (zsock_t *sock, int msg_id, qv_compact_t *task);

#endif
