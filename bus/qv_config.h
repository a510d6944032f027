//  Server configuration shared by the actors (validated before any actor starts).
#ifndef QV_CONFIG_H_INCLUDED
#define QV_CONFIG_H_INCLUDED

#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "qv_store.h"

//  Figures of the NATS bridge, written by the bridge and read by `stats` (atomics,
//  never a lock). Allocated by the server; all zero without --nats.
typedef struct {
    atomic_bool connected;          //  the NATS connection is up
    atomic_bool live;               //  subscriptions and stream consumer are set up
    atomic_uint_fast64_t requests;  //  messages taken from quiver.<op>.* subjects
    atomic_uint_fast64_t failed;    //  fire-and-forget messages that were refused
    atomic_uint_fast64_t dropped;   //  messages the NATS client dropped (slow consumer)
    atomic_uint_fast64_t ingested;  //  stream messages applied
    atomic_uint_fast64_t ingest_bad;//  stream messages refused, acked and reported
    atomic_uint_fast64_t ingest_retries;  //  consumer rewinds after a transient failure
    atomic_uint_fast64_t ingest_lag;      //  stream messages not yet durably logged by this
                                          //  server (its consumer's pending + unacked, read
                                          //  every second; 0 while it does not consume)
    atomic_bool ingest_leading;     //  this process consumes the ingest stream (a proxy
                                    //  process may be a standby: bus/qv_ingest_lease.c)
    atomic_uint_fast64_t cdc_published;   //  change events (parts) published
    atomic_uint_fast64_t cdc_dropped;     //  change events dropped (NATS down or behind)
} qv_nats_stats_t;

//  Figures of the write path, written by the segment manager and read by `stats`.
typedef struct {
    atomic_uint_fast64_t unflushed;       //  bytes of rows not yet in flushed segments
    atomic_uint_fast64_t unflushed_peak;  //  the most that ever was (bounded by max_unflushed)
    atomic_uint_fast64_t waited;          //  inserts that waited for memory
    atomic_uint_fast64_t refused;         //  inserts refused RESOURCE_EXHAUSTED for memory
    atomic_uint_fast64_t stream_again;    //  stream writes sent again after they were
                                          //  logged, answered without logging them twice
    atomic_uint_fast64_t resident;        //  bytes of segments, vector indexes and primary-key
                                          //  indexes in memory (the searcher, every second)
    atomic_uint_fast64_t gc_deleted;      //  objects garbage collection deleted (the compactor)
    atomic_uint_fast64_t gc_unused;       //  objects found unused, not deleted yet (grace)
} qv_write_stats_t;

//  A searcher process as a writer without the searcher role knows it (actors/qv_fanout.c
//  keeps the table; `stats` lists it).
#define QV_FEED_MEMBERS_MAX 32
typedef struct {
    char endpoint [256];
    char instance [32];             //  the process incarnation it announced ("" if none)
    bool ready;                     //  caught up, heard from lately, not cooling down
    bool caught_up;                 //  as it announced
    uint64_t applied_seq;           //  as it announced
    int64_t seen_ms;                //  msec clock of its last announcement
    uint64_t inflight;              //  reads sent to it, not yet answered
} qv_feed_member_t;

//  Figures of the committed feed (actors/qv_feedpub.c on the writer, actors/qv_follower.c
//  on a searcher process), atomics read by `stats`, and the writer's table of searcher
//  processes (under members_lock). Made by qv_feed_stats_new with --nats.
typedef struct {
    atomic_uint_fast64_t committed_ts;    //  writer: the newest commit timestamp of a
                                          //  durable WAL object (the segment manager's)
    atomic_uint_fast64_t max_payload;     //  writer: NATS payload limit (0 until known)
    atomic_uint_fast64_t published;       //  writer: feed messages published
    atomic_uint_fast64_t dropped;         //  writer: feed messages dropped (queue full or
                                          //  NATS down: followers read the WAL instead)
    atomic_uint_fast64_t queued_bytes;    //  writer: WAL bytes queued to the publisher
    atomic_uint_fast64_t applied_seq;     //  follower: the next WAL object it applies
    atomic_uint_fast64_t wal_reads;       //  follower: WAL objects read from the store
    atomic_bool caught_up;                //  follower: has applied the feed's position
    atomic_int_fast64_t behind_since_ms;  //  follower: since when (msec clock) it cannot
                                          //  read WAL objects it needs, or 0
    atomic_uint_fast64_t searchers;       //  writer without the searcher role: searcher
    atomic_uint_fast64_t searchers_ready; //  processes it knows of, and of those caught up
    atomic_uint_fast64_t manifests_announced; //  adopter: FEED_MANIFEST messages taken
    atomic_uint_fast64_t applies_taken;   //  searcher: APPLY messages taken (a follower
                                          //  frees a replaced schema once the records
                                          //  decoded with it are taken)
    pthread_mutex_t members_lock;
    qv_feed_member_t members [QV_FEED_MEMBERS_MAX];
    size_t nmembers;                      //  searcher processes the fan-out knows of
} qv_feed_stats_t;

qv_feed_stats_t *
    qv_feed_stats_new (void);
void
    qv_feed_stats_destroy (qv_feed_stats_t **self_p);

typedef struct {
    char data [PATH_MAX];           //  data directory (filesystem object store)
    char bind [256];                //  ZeroMQ ROUTER endpoint of the public API
    char instance [32];             //  unique suffix of this server's inproc endpoints
    size_t max_request;             //  request size limit in bytes (default 64 MiB)
    size_t max_elems;               //  msgpack element limit per request
    size_t max_unflushed;           //  memory for unflushed rows before backpressure
    size_t seg_max_bytes;           //  a growing segment is sealed at this size
    int seal_age_sec;               //  ... or this age
    int backpressure_ms;            //  --write-wait-ms: how long a write waits for memory
    int bounded_staleness_ms;       //  --bounded-staleness-ms: how stale `bounded` may be
    int read_wait_ms;               //  --read-wait-ms: how long a read waits for its
                                    //  consistency guarantee before TIMEOUT
    int fault_apply_delay_ms;       //  test hook QV_FAULT_APPLY_DELAY_MS (qv_config_fault_apply_delay)
    int fault_build_delay_ms;       //  test hook QV_FAULT_BUILD_DELAY_MS (qv_server.c)
    int fault_backup_delay_ms;      //  test hook QV_FAULT_BACKUP_DELAY_MS (qv_server.c)
    const atomic_bool *stopping;    //  the embedded server's flag, up once it stops (a
                                    //  backup being written stops then), or NULL
    int fault_manifest_delay_ms;    //  test hook QV_FAULT_MANIFEST_DELAY_MS (qv_server.c)
    bool fault_feed_drop;           //  test hook QV_FAULT_FEED_DROP (qv_server.c)
    bool fault_no_ddl_broadcast;    //  test hook QV_FAULT_NO_DDL_BROADCAST (qv_server.c)
    int fault_link_blip;            //  test hook QV_FAULT_LINK_BLIP (qv_server.c)
    int fault_drop_stream_reply;    //  test hook QV_FAULT_DROP_STREAM_REPLY (qv_server.c)
    int link_reply_limit_ms;        //  test hook QV_FAULT_LINK_REPLY_LIMIT_MS (0: 60 s)
    int search_threads;             //  worker threads for searches
    size_t max_inflight;            //  requests in flight per client (--max-inflight)
    //  Rate limits (0: none): insert bytes/s and searches (query vectors)/s, for the
    //  whole server (--max-insert-mb-per-sec, --max-searches-per-sec) and per client
    //  (--max-client-insert-mb-per-sec, --max-client-searches-per-sec)
    double max_insert_bps, max_searches_ps, client_insert_bps, client_searches_ps;
    //  ... and per authenticated user, with --auth (--max-user-insert-mb-per-sec,
    //  --max-user-searches-per-sec)
    double user_insert_bps, user_searches_ps;
    //  Compaction: the compactor's write rate in bytes/s (--compaction-mb-per-sec; 0:
    //  no limit); the fraction of a segment's rows deleted or expired past which the
    //  coordinator compacts it on its own (--auto-compaction-ratio; 0: only on request);
    //  how long an object no manifest names is kept before garbage collection deletes it
    //  (--gc-grace-sec)
    double compaction_bps;
    double compaction_ratio;
    int gc_grace_sec;
    //  --memory-mb: inserts and upserts are refused RESOURCE_EXHAUSTED once the rows,
    //  vector indexes and key indexes held in memory would pass this (0: no budget)
    size_t memory_budget;
    size_t group_max_bytes;         //  most bytes in one WAL object
    int wal_window;                 //  --wal-window: WAL objects in flight at most
                                    //  (0: QV_WAL_WINDOW on S3, 1 on the filesystem)
    char nats_url [256];            //  --nats: NATS server URL, "" without NATS
    char nats_prefix [64];          //  --nats-prefix: subject prefix (default "quiver")
    char ingest_stream [64];        //  --ingest-stream: JetStream stream to consume, or ""
    bool cdc_rows;                  //  --cdc-rows: change events carry the rows
    char http [256];                //  --http HOST:PORT: Milvus REST v2 gateway, or ""
    char metrics [256];             //  --metrics HOST:PORT: Prometheus /metrics, or ""
    char curve_secret_key [512];    //  --curve-secret-key FILE: CURVE on the API (and on
                                    //  this process's links, with curve_peer_key), or ""
    char curve_peer_key [41];       //  --curve-peer-key: the Z85 public key of the writer
                                    //  core and searcher processes this one connects to,
                                    //  and the only client key their sockets admit; ""
    char curve_clients [512];       //  --curve-clients FILE: the client keys the API
                                    //  admits (qv_zap.h), or "" for any
    bool auth;                      //  --auth: every request's token is checked
    qv_nats_stats_t *nats_stats;    //  set by the server when nats_url is given
    char s3_endpoint [256];         //  --s3-endpoint HOST:PORT: objects in S3, "" = in data
    char s3_bucket [64];            //  --s3-bucket NAME
    char s3_prefix [256];           //  --s3-prefix P: keys under P/ in the bucket
    bool s3_https;                  //  --s3-https
    int s3_connections;             //  --s3-connections: concurrent S3 requests
    int s3_lock_ms;                 //  --s3-lock-ms: lock renewal period
    int lease_ttl_ms;               //  --lease-ttl-ms: with --nats, the write lease is
                                    //  taken over this long after its last renewal
    int lease_wait_ms;              //  --lease-wait-ms: how long a start waits for the
                                    //  lease held by another server (0: as long as it lives)
    uint64_t writer_epoch;          //  the fencing epoch this server writes as (set by
                                    //  the server before the writers start, then read-only)
    char cache_dir [1024];          //  --cache-dir: local copies of S3 segments ("": DATA/cache)
    long cache_mb;                  //  --cache-mb: its size limit, 0 = no cache
    qv_store_t *store;              //  the server's object store, for `stats` (set by the server)
    qv_write_stats_t *write_stats;  //  set by the server
    char roles [128];               //  --roles: "" or every role = embedded
    bool follower;                  //  --roles searcher: a searcher process following a
                                    //  writer's committed feed (actors/qv_replica.c)
    qv_feed_stats_t *feed_stats;    //  set by the server with --nats
    bool remote_reads;              //  --roles without searcher: search, query and get
                                    //  go to searcher processes (actors/qv_fanout.c)
    bool proxy_process;             //  --roles proxy: a proxy process, whose writes go to
                                    //  the writer core at --writer (actors/qv_link.c)
    bool writer_core;               //  --roles segment-manager,meta,flusher: a writer
                                    //  without the proxy, whose requests come from proxy
                                    //  processes at --bind (actors/qv_intake.c)
    bool meta_remote;               //  --roles with segment-manager, without meta,flusher:
                                    //  segments, indexes and manifests are written by a
                                    //  meta process, whose manifests this one adopts
    bool meta_process;              //  --roles meta,flusher: follows the committed feed
                                    //  (as a searcher process does: follower set too) and
                                    //  writes the segments, indexes and manifests
                                    //  (actors/qv_replica.c)
    int adopt_poll_ms;              //  how often the adopter lists the manifests without
                                    //  an announcement (0: every 5 s)
    char writer [256];              //  --writer: the writer core's endpoint (its --bind)
    char advertise [256];           //  --advertise: the endpoint other processes reach
                                    //  --bind at ("": --bind, see qv_config_advertise)
} qv_config_t;

//  Fills defaults.
void
    qv_config_defaults (qv_config_t *config);

//  The object store url the server opens: the data directory, or with --s3-endpoint
//  s3://HOST:PORT/BUCKET[/PREFIX]?options. Checks the S3 options' syntax; 0, or
//  QV_EINVAL with a message naming the option.
int
    qv_config_store_url (const qv_config_t *config, char *out, size_t size);

//  The store this server opens, for people (the S3 endpoint, bucket and prefix, or the
//  data directory's real path), and as a NATS-safe name (KV keys, subjects) that is the
//  same for every process opening that store.
void
    qv_config_store_identity (const qv_config_t *config, char *out, size_t size);
void
    qv_config_store_key (const qv_config_t *config, char *out, size_t size);

//  The endpoint other processes connect to for this server's --bind: --advertise, else
//  --bind with a wildcard host (`*`, 0.0.0.0) replaced by this machine's host name.
void
    qv_config_advertise (const qv_config_t *config, char *out, size_t size);

//  Gives config a new instance suffix: the actors of a server started again in the same
//  process (a searcher process starting over) bind inproc endpoints of their own, not
//  the ones the previous actors' sockets may still hold while ZeroMQ closes them.
void
    qv_config_new_instance (qv_config_t *config);

//  Inproc endpoint of an actor's inbox ("inproc://qv-<instance>-<name>").
void
    qv_config_endpoint (const qv_config_t *config, const char *name, char *out, size_t size);

//  A PUSH socket connected to an actor's inbox, for handing it messages: its queue is
//  unbounded (backpressure is the segment manager's job) and a send fails only when
//  the actor is gone. NULL on failure.
#include <czmq.h>
zsock_t *
    qv_config_push (const qv_config_t *config, const char *name);

//  Test hook: QV_FAULT_APPLY_DELAY_MS=N holds every record, seal and tick the
//  searcher takes (from the segment manager, or a searcher process's follower) N ms
//  before it applies it (reads are not held): the committed feed lags, as a busy or
//  remote searcher's would. Sets config->fault_apply_delay_ms, with a warning.
void
    qv_config_fault_apply_delay (qv_config_t *config);

#endif
