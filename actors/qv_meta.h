//  Metadata coordinator actor: schedules segment writes, index builds and manifests
//  (its workers: the flusher and the index builder), tracks which manifest is durable,
//  checkpoints the WAL, and answers flushes once their segments are in a durable
//  manifest.
#ifndef QV_META_H_INCLUDED
#define QV_META_H_INCLUDED

#include "qv_config.h"

typedef struct {
    const qv_config_t *config;
    uint64_t manifest_version;      //  the newest durable manifest at start (0: none)
} qv_meta_args_t;

//  args may live in the caller's stack frame: the actor reads it only before it
//  signals the pipe.
void
    qv_meta_actor (zsock_t *pipe, void *args);

#endif
