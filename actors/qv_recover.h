//  What a process rebuilds from the store at start, shared by the embedded server
//  (actors/qv_server.c) and a searcher process (actors/qv_replica.c): the WAL tail's
//  records applied to the catalog recovered from the newest manifest, and the proxy's
//  copy of that catalog.
#ifndef QV_RECOVER_H_INCLUDED
#define QV_RECOVER_H_INCLUDED

#include "qv_catalog.h"
#include <czmq.h>

typedef struct {
    qv_catalog_t *catalog;
    size_t seg_max_bytes;
    uint64_t records;               //  records applied
    zlist_t *cdc;                   //  change events of the records applied, or NULL
    bool cdc_rows;                  //  the events carry the rows
} qv_replay_t;

//  A qv_wal_replay_fn over a qv_replay_t: decodes one record of a WAL object and
//  applies it (a record of a collection dropped since is skipped).
int
    qv_replay_record (void *arg, uint64_t seq, uint32_t index, const void *data, size_t size);

//  The proxy's catalog copy (the READY command's list of qv_record_t *): a create per
//  collection (its `partition` the next partition id the proxy gives), each followed
//  by creates of its named partitions.
zlist_t *
    qv_recover_creates (qv_catalog_t *catalog);

#endif
