//  Searcher actor: holds the collections in memory, applies logged writes, answers reads.
#ifndef QV_SEARCHER_H_INCLUDED
#define QV_SEARCHER_H_INCLUDED

#include "qv_catalog.h"
#include "qv_config.h"

typedef struct {
    const qv_config_t *config;
    qv_catalog_t *catalog;          //  ownership moves to the actor
    zlist_t *cdc_replay;            //  qv_cdc_t * of the replayed WAL tail, published
                                    //  again before any new event (ownership moves)
} qv_searcher_args_t;

//  args may live in the caller's stack frame: the actor reads it only before it
//  signals the pipe (before zactor_new returns).
void
    qv_searcher_actor (zsock_t *pipe, void *args);

#endif
