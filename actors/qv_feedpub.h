//  Feed publisher actor: puts the segment manager's committed feed on JetStream, and
//  answers followers' strong reads with the shard's newest commit timestamp.
#ifndef QV_FEEDPUB_H_INCLUDED
#define QV_FEEDPUB_H_INCLUDED

#include "qv_config.h"
#include <czmq.h>

//  The shard's feed subject "<prefix>.feed.<store>.<shard>" (<store>: the store key,
//  qv_config_store_key, so that the writers of different stores sharing a NATS server
//  never mix their feeds), its JetStream stream "<PREFIX>_FEED_<store hash>_<shard>"
//  (the 16 hex digits the store key ends with; upper-cased, other characters than
//  [A-Z0-9_-] as '_'), and the subject answering the newest commit timestamp,
//  "<prefix>.feed.<store>.<shard>.ts" (bus/NATS.md, "Committed feed").
void
    qv_feed_subject (const qv_config_t *config, uint32_t shard, char *out, size_t size);
void
    qv_feed_stream (const qv_config_t *config, uint32_t shard, char *out, size_t size);
void
    qv_feed_ts_subject (const qv_config_t *config, uint32_t shard, char *out, size_t size);

//  Limits of the feed stream: followers older than this read the WAL instead.
#define QV_FEED_MAX_AGE_SEC (15 * 60)
#define QV_FEED_MAX_BYTES   ((int64_t) 1 << 30)

//  args: the server's qv_config_t (with nats_url and feed_stats). Signals when its
//  inbox is bound.
void
    qv_feedpub_actor (zsock_t *pipe, void *args);

#endif
