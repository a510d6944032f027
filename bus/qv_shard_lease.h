//  The write lease of one shard of a store, held in NATS (--nats): which server may
//  write the shard's WAL, and the fencing epoch it writes with.
#ifndef QV_SHARD_LEASE_H_INCLUDED
#define QV_SHARD_LEASE_H_INCLUDED

#include "qv_config.h"
#include "qv_lease.h"
#include "qv_store.h"

//  The JetStream KV bucket of the leases (created if missing).
#define QV_SHARD_LEASE_BUCKET "quiver_leases"

typedef struct _qv_shard_lease_t qv_shard_lease_t;

//  Connects to config->nats_url and takes the lease of `shard` of the store the
//  configuration names (key "<store>-<hash>.shard-<N>" in QV_SHARD_LEASE_BUCKET: one
//  per bucket+prefix on S3, per data directory on the filesystem, so two databases on
//  one NATS never share a lease), waiting while another server holds it (logging the
//  holder) for config->lease_wait_ms (0: as long as it lives), and taking it over
//  config->lease_ttl_ms after its holder's last renewal. The epoch taken is at least
//  min_epoch (one more than the store's WAL epoch). stop (arg) is asked while
//  waiting: true gives up. Then installs the lease as the store's write guard
//  (qv_store_set_guard): every put and delete is refused once the lease is lost.
//  NULL with the reason in qv_err_msg () (the holder, NATS unreachable, stopped).
//  Called by the server before recovery, on the main thread.
//  meta: the shard's meta lease instead (key "<store>-<hash>.meta-<N>"): which meta
//  process (--roles meta,flusher) may write its segments, indexes and manifests, and
//  the epoch they carry.
qv_shard_lease_t *
    qv_shard_lease_new (const qv_config_t *config, qv_store_t *store, uint32_t shard,
                        bool meta, uint64_t min_epoch, qv_lease_stop_fn *stop, void *arg);

//  Removes the store's guard (if the store is still there: pass NULL once it is
//  destroyed), releases the lease (a successor takes it at once), disconnects, frees.
void
    qv_shard_lease_destroy (qv_shard_lease_t **self_p, qv_store_t *store);

//  The lease's fencing epoch: the WAL epoch this server writes.
uint64_t
    qv_shard_lease_epoch (qv_shard_lease_t *self);

//  "bucket/key", for messages.
const char *
    qv_shard_lease_name (qv_shard_lease_t *self);

//  True while the lease is ours (qv_lease_held), from any thread. arg: the
//  qv_shard_lease_t * (the signature of qv_member_ready_fn).
bool
    qv_shard_lease_held (void *arg);

#endif
