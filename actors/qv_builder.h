//  Index-builder actor: a worker of the metadata coordinator (qv_meta) that builds
//  segment indexes on its own thread.
#ifndef QV_BUILDER_H_INCLUDED
#define QV_BUILDER_H_INCLUDED

#include "qv_config.h"
#include "qv_job.h"
#include "qv_store.h"

typedef struct {
    const qv_config_t *config;
    qv_store_t *store;              //  borrowed; thread-safe
    const atomic_bool *stopping;    //  borrowed: true once the server stops, which
                                    //  cancels the build in progress (or NULL)
} qv_builder_args_t;

void
    qv_builder_actor (zsock_t *pipe, void *args);

//  Builds b's index of b->seg and writes it to store, keyed with epoch (the work of a
//  BUILD, also the compactor's for a merged segment): b->rc, error, index or scalar,
//  epoch and msec set. A build stops early (QV_EUNAVAIL) once *stopping turns true.
//  delay_ms: a test hook, each build takes this much longer.
void
    qv_build_run (qv_store_t *store, qv_build_t *b, uint64_t epoch, const atomic_bool *stopping,
                  int delay_ms);

//  Frees a build (qv_job.h) and what it holds: the index or scalar index built, the
//  segment link.
void
    qv_build_destroy (qv_build_t **self_p);

//  Sends BUILT {build} to sock; the build is destroyed if sock is gone (shutdown).
void
    qv_build_post (zsock_t *sock, qv_build_t *build);

#endif
