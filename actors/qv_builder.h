//  Index-builder actor: a worker of the metadata coordinator (qv_meta) that builds
//  segment indexes on its own thread.
#ifndef QV_BUILDER_H_INCLUDED
#define QV_BUILDER_H_INCLUDED

#include "qv_config.h"
#include "qv_store.h"

typedef struct {
    const qv_config_t *config;
    qv_store_t *store;              //  borrowed; thread-safe
} qv_builder_args_t;

void
    qv_builder_actor (zsock_t *pipe, void *args);

#endif
