//  Adopter actor (searcher processes): follows the writer's manifests and loads the
//  index objects they name for segments the searcher holds, so a searcher process
//  searches flushed segments by their indexes as the writer does.
#ifndef QV_ADOPT_H_INCLUDED
#define QV_ADOPT_H_INCLUDED

#include "qv_config.h"
#include "qv_store.h"

typedef struct {
    const qv_config_t *config;
    qv_store_t *store;              //  borrowed; thread-safe (read-only)
    uint64_t seen;                  //  the manifest version the searcher started from
} qv_adopt_args_t;

void
    qv_adopt_actor (zsock_t *pipe, void *args);

#endif
