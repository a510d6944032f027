//  Flusher actor: writes sealed segments and manifests to the object store.
#ifndef QV_FLUSHER_H_INCLUDED
#define QV_FLUSHER_H_INCLUDED

#include "qv_config.h"
#include "qv_store.h"

typedef struct {
    const qv_config_t *config;
    qv_store_t *store;              //  borrowed; thread-safe
} qv_flusher_args_t;

void
    qv_flusher_actor (zsock_t *pipe, void *args);

#endif
