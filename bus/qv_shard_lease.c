//  The write lease of one shard of a store, held in NATS: see qv_shard_lease.h.
//
//  DESIGN
//  The lease itself is bus/qv_lease.c (revision-checked updates of a KV key, a fencing
//  epoch per tenure). This file names the key after the store, keeps a NATS connection
//  of its own for it (the bridge's connection comes and goes with its actor), waits
//  for it at start, and makes it the store's write guard: qv_lease_confirm before every
//  put and delete, and after each WAL put (qv_store_lock_check), so a server that lost
//  the lease writes nothing more and acknowledges nothing it wrote after losing it.
#include "qv_shard_lease.h"
#include "qv_bus.h"
#include "qv_rc.h"

#include <czmq.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define S_CONNECT_RETRY_MS 500

struct _qv_shard_lease_t {
    natsOptions *opts;
    natsConnection *nc;
    qv_lease_t *lease;
    char name [256];                //  bucket/key
};

static natsStatus
s_options (qv_shard_lease_t *self, const char *url)
{
    natsStatus s = natsOptions_Create (&self->opts);
    if (s == NATS_OK) s = natsOptions_SetServers (self->opts, (const char *[]) { url }, 1);
    if (s == NATS_OK) s = natsOptions_SetName (self->opts, "quiver shard lease");
    if (s == NATS_OK) s = natsOptions_SetMaxReconnect (self->opts, -1);
    if (s == NATS_OK) s = natsOptions_SetReconnectWait (self->opts, 250);
    if (s == NATS_OK) s = natsOptions_SetTimeout (self->opts, 2000);
    //  As qv_bus.c: a stalled server fails writes (10 s) and is found stale by pings
    if (s == NATS_OK) s = natsOptions_SetWriteDeadline (self->opts, 10000);
    if (s == NATS_OK) s = natsOptions_SetPingInterval (self->opts, 2000);
    if (s == NATS_OK) s = natsOptions_SetMaxPingsOut (self->opts, 2);
    if (s == NATS_OK) s = qv_bus_secure (self->opts);
    return s;
}

static int
s_guard (void *arg)
{
    return qv_lease_confirm (((qv_shard_lease_t *) arg)->lease);
}

qv_shard_lease_t *
qv_shard_lease_new (const qv_config_t *config, qv_store_t *store, uint32_t shard,
                    bool meta, uint64_t min_epoch, qv_lease_stop_fn *stop, void *arg)
{
    const char *what = meta ? "meta" : "write";
    qv_shard_lease_t *self = calloc (1, sizeof *self);
    if (!self) {
        qv_err (QV_ENOMEM, "out of memory");
        return NULL;
    }
    int wait_ms = config->lease_wait_ms > 0 ? config->lease_wait_ms : INT_MAX;
    int64_t started = qv_clock_msec ();
    natsStatus s = s_options (self, config->nats_url);
    if (s != NATS_OK) {
        qv_err (QV_EINVAL, "--nats %s: %s", config->nats_url, natsStatus_GetText (s));
        goto failed;
    }
    //  NATS may come up after us: keep trying as long as we would wait for a holder
    int64_t warned = 0;
    while ((s = natsConnection_Connect (&self->nc, self->opts)) != NATS_OK) {
        int64_t now = qv_clock_msec ();
        if (now - started >= wait_ms || (stop && stop (arg))) {
            qv_err (QV_EUNAVAIL, "cannot take the %s lease of shard %u: NATS %s does not "
                    "answer (%s)", what, shard, config->nats_url, natsStatus_GetText (s));
            goto failed;
        }
        if (now - warned >= 10000) {
            warned = now;
            qv_warn ("the %s lease of shard %u is kept in NATS %s, which does not answer "
                     "(%s); retrying", what, shard, config->nats_url, natsStatus_GetText (s));
        }
        zclock_sleep (S_CONNECT_RETRY_MS);
    }
    char identity [PATH_MAX + 600], storekey [96], key [128], holder [128], host [64] = "?";
    qv_config_store_identity (config, identity, sizeof identity);
    qv_config_store_key (config, storekey, sizeof storekey);
    snprintf (key, sizeof key, "%s.%s-%u", storekey, meta ? "meta" : "shard", shard);
    gethostname (host, sizeof host - 1);
    snprintf (holder, sizeof holder, "%.40s:%d (quiver serve --bind %.60s)", host, (int) getpid (),
              config->bind);
    snprintf (self->name, sizeof self->name, "%s/%s", QV_SHARD_LEASE_BUCKET, key);
    self->lease = qv_lease_new (self->nc, QV_SHARD_LEASE_BUCKET, key, holder,
                                config->lease_ttl_ms);
    if (!self->lease)
        goto failed;
    int left = wait_ms == INT_MAX ? INT_MAX : wait_ms - (int) (qv_clock_msec () - started);
    if (qv_lease_acquire_until (self->lease, left > 0 ? left : 0, min_epoch, stop, arg) != 0)
        goto failed;
    qv_info ("holding the %s lease %s of shard %u of %s: epoch %llu (renewed every %d ms)",
             what, self->name, shard, identity, (unsigned long long) qv_lease_epoch (self->lease),
             config->lease_ttl_ms / 3);
    qv_store_set_guard (store, s_guard, self);
    return self;
failed: ;
    //  The destroy below must not lose why
    char msg [1024];
    snprintf (msg, sizeof msg, "%s", qv_err_msg ());
    qv_shard_lease_destroy (&self, NULL);
    qv_err (QV_EUNAVAIL, "%s", msg);
    return NULL;
}

void
qv_shard_lease_destroy (qv_shard_lease_t **self_p, qv_store_t *store)
{
    qv_shard_lease_t *self = *self_p;
    if (!self)
        return;
    if (store)
        qv_store_set_guard (store, NULL, NULL);
    qv_lease_destroy (&self->lease);
    if (self->nc) {
        natsConnection_Close (self->nc);
        natsConnection_Destroy (self->nc);
    }
    natsOptions_Destroy (self->opts);
    free (self);
    *self_p = NULL;
}

uint64_t
qv_shard_lease_epoch (qv_shard_lease_t *self)
{
    return qv_lease_epoch (self->lease);
}

const char *
qv_shard_lease_name (qv_shard_lease_t *self)
{
    return self->name;
}

bool
qv_shard_lease_held (void *arg)
{
    return qv_lease_held (((qv_shard_lease_t *) arg)->lease);
}
