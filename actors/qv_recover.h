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

//  The proxy's copy of one recovered collection (the READY command's list holds one
//  per collection): what the proxy checks requests against and routes writes with.
//  From then on the proxy keeps it in step from the DDL records it sees applied.
typedef struct {
    uint32_t id;
    char name [QV_NAME_MAX + 1];
    qv_schema_t *schema;            //  owned
    uint32_t shards;
    uint32_t num_partitions;        //  internal partitions of a partition-key collection
    char consistency [16];          //  the collection's default level
    uint32_t next_part;             //  the id the proxy gives the next partition created
    qv_partition_t *parts;          //  named partitions (none for a partition-key
    uint32_t nparts;                //  collection), `_default` first
} qv_coll_view_t;

//  The views of every collection of catalog: a list of qv_coll_view_t * (its
//  destructor set: zlist_destroy frees them).
zlist_t *
    qv_recover_views (qv_catalog_t *catalog);
void
    qv_coll_view_destroy (qv_coll_view_t **self_p);

//  Keeps views (a list of qv_coll_view_t *, as qv_recover_views makes it) in step with
//  a DDL record the searcher has applied (create / drop of a collection or partition;
//  any other record changes nothing). The record's schema is copied.
void
    qv_coll_views_apply (zlist_t *views, const qv_record_t *rec);

//  Across processes (a proxy process learns the writer's catalog): views as one msgpack
//  array of maps {id, name, schema (field maps), shards, num_partitions, consistency,
//  next_part, parts: [[id, name] ...]}. qv_coll_views_read returns 0 with *views_p a
//  new list, or QV_EPROTO naming what is wrong (never crashes on any input).
void
    qv_coll_views_write (zlist_t *views, qv_wr_t *w);
int
    qv_coll_views_read (const void *data, size_t size, zlist_t **views_p);

#endif
