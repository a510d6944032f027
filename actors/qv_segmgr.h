//  Segment manager actor: the shard's write path (WAL group commit, segment assignment,
//  sealing, backpressure).
#ifndef QV_SEGMGR_H_INCLUDED
#define QV_SEGMGR_H_INCLUDED

#include "qv_config.h"
#include "qv_wal.h"
#include <czmq.h>

//  Start-up state handed to the actor (it takes ownership of wal and the lists).
typedef struct {
    const qv_config_t *config;
    qv_wal_t *wal;                  //  opened (replayed) WAL
    uint32_t next_coll_id;
    uint64_t next_seg_id;
    size_t unflushed_bytes;         //  memory of recovered, unflushed segments
    zlist_t *seal;                  //  "coll/seg/bytes/partition" strings of recovered
                                    //  segments to seal
    uint64_t max_ts;                //  largest timestamp recovered: new ones start above
    uint64_t stream_seq;            //  highest JetStream sequence in the WAL (recovered)
} qv_segmgr_args_t;

void
    qv_segmgr_actor (zsock_t *pipe, void *args);

#endif
