//  A searcher process: the proxy (reads only), the searcher, the follower of the
//  writer's committed feed, over the writer's object store opened read-only, the
//  adopter, which takes the writer's newer manifests (flushed segments, their
//  indexes), and the member actor, which announces it to writer processes once it has
//  caught up.
//
//  DESIGN
//  Nothing here writes to the store: qv_store_new_readonly refuses put, delete and
//  lock, the WAL replay leaves objects below the checkpoint to the writer, and the
//  searcher runs quiet (no segment writes, index builds or manifests). Recovery is the
//  embedded server's (newest manifest, its segments, the WAL tail); a WAL object the
//  writer deletes while this reads it (it wrote a newer manifest meanwhile) makes the
//  replay fail, and recovery starts again from the newest manifest.
#include "qv_replica.h"
#include "qv_adopt.h"
#include "qv_catalog.h"
#include "qv_follower.h"
#include "qv_member.h"
#include "qv_members.h"
#include "qv_proxy.h"
#include "qv_recover.h"
#include "qv_rc.h"
#include "qv_searcher.h"
#include "qv_store.h"

#define S_RECOVERY_TRIES 5

struct _qv_replica_t {
    qv_config_t config;
    qv_store_t *store;
    zactor_t *proxy;
    zactor_t *searcher;
    zactor_t *follower;
    zactor_t *adopter;
    zactor_t *member;
    qv_feed_stats_t *feed_stats;
    zhashx_t *schemas;              //  the follower's schema registry: the records it
    zlistx_t *retired;              //  sends point into it, so it outlives the searcher
};

//  The follower's schema registry: coll id -> a copy of its schema.
static zhashx_t *
s_schemas (qv_catalog_t *catalog)
{
    zhashx_t *schemas = zhashx_new ();
    size_t n;
    qv_collection_t **list = qv_catalog_list (catalog, &n);
    for (size_t i = 0; i < n; i++) {
        char key [16];
        snprintf (key, sizeof key, "%u", list [i]->id);
        zhashx_update (schemas, key, qv_schema_dup (list [i]->schema));
    }
    free (list);
    return schemas;
}

static void
s_free (qv_replica_t *self)
{
    qv_store_destroy (&self->store);
    if (self->schemas) {
        for (qv_schema_t *s = zhashx_first (self->schemas); s; s = zhashx_next (self->schemas))
            qv_schema_destroy (&s);
        zhashx_destroy (&self->schemas);
    }
    if (self->retired) {
        qv_follower_free_retired (self->retired, UINT64_MAX);
        zlistx_destroy (&self->retired);
    }
    qv_feed_stats_destroy (&self->feed_stats);
    free (self);
}

qv_replica_t *
qv_replica_new (const qv_config_t *config)
{
    if (!config->nats_url [0]) {
        qv_err (QV_EINVAL, "a searcher process follows the writer's committed feed over NATS: "
                "give --nats URL");
        return NULL;
    }
    qv_replica_t *self = calloc (1, sizeof *self);
    self->config = *config;
    qv_config_new_instance (&self->config);     //  a start-over's actors: endpoints of their own
    self->config.follower = true;
    self->config.nats_stats = NULL;     //  no NATS bridge here: no change events either
    self->config.feed_stats = self->feed_stats = qv_feed_stats_new ();
    qv_config_fault_apply_delay (&self->config);
    char url [PATH_MAX + 1024];
    if (qv_config_store_url (config, url, sizeof url)) {
        s_free (self);
        return NULL;
    }
    self->store = qv_store_new_readonly (url);
    if (!self->store) {
        s_free (self);
        return NULL;
    }
    if (config->s3_endpoint [0] && config->cache_mb > 0 && config->cache_dir [0]) {
        if (qv_store_set_cache (self->store, config->cache_dir, (uint64_t) config->cache_mb << 20)) {
            qv_error ("--cache-dir: %s", qv_err_msg ());
            s_free (self);
            return NULL;
        }
    }
    self->config.store = self->store;
    self->proxy = zactor_new (qv_proxy_actor, &self->config);
    char *status = self->proxy ? zstr_recv (self->proxy) : NULL;
    if (!status || !streq (status, "OK")) {
        qv_err (QV_EUNAVAIL, "cannot bind %s: %s", config->bind, status ? status : "actor failed");
        zstr_free (&status);
        zactor_destroy (&self->proxy);
        s_free (self);
        return NULL;
    }
    zstr_free (&status);
    int64_t started = qv_clock_msec ();
    qv_catalog_t *catalog = NULL;
    qv_wal_t *wal = NULL;
    qv_replay_t replay = { NULL, config->seg_max_bytes, 0, NULL, false };
    int rc = 0;
    for (int attempt = 1; attempt <= S_RECOVERY_TRIES; attempt++) {
        qv_catalog_destroy (&catalog);
        qv_wal_destroy (&wal);
        catalog = qv_catalog_new ();
        wal = qv_wal_new (self->store, 0);
        replay.catalog = catalog;
        replay.records = 0;
        rc = qv_catalog_recover (catalog, self->store);
        if (rc == 0)
            rc = qv_wal_open (wal, qv_catalog_replay_from (catalog), qv_replay_record, &replay);
        if (rc == 0)
            break;
        qv_warn ("searcher: recovery attempt %d of %d failed: %s", attempt, S_RECOVERY_TRIES,
                 qv_err_msg ());
        zclock_sleep (200 * attempt);
    }
    if (rc) {
        char why [600];
        snprintf (why, sizeof why, "recovery failed: %s", qv_err_msg ());
        qv_catalog_destroy (&catalog);
        qv_wal_destroy (&wal);
        qv_replica_destroy (&self);
        qv_err (rc, "%s", why);
        return NULL;
    }
    size_t n;
    free (qv_catalog_list (catalog, &n));
    qv_info ("searcher: recovered %zu collections in %lld ms (%llu WAL records replayed, up to "
             "WAL object %llu); following the committed feed on %s", n,
             (long long) (qv_clock_msec () - started), (unsigned long long) replay.records,
             (unsigned long long) qv_wal_next_seq (wal), config->nats_url);
    zlist_t *views = qv_recover_views (catalog);
    uint64_t max_ts = qv_catalog_max_ts (catalog);
    qv_adopt_args_t aargs = { &self->config, self->store, qv_catalog_manifest_version (catalog) };
    self->schemas = s_schemas (catalog);
    self->retired = zlistx_new ();
    qv_follower_args_t fargs = { &self->config, wal, self->schemas, self->retired };
    qv_searcher_args_t rargs = { &self->config, catalog, NULL };
    self->searcher = zactor_new (qv_searcher_actor, &rargs);
    zsock_send (self->proxy, "sp8", "READY", views, max_ts);
    self->follower = zactor_new (qv_follower_actor, &fargs);
    self->adopter = zactor_new (qv_adopt_actor, &aargs);
    qv_member_args_t margs = { &self->config, QV_MEMBERS_SEARCHER, 0, NULL, NULL };
    self->member = zactor_new (qv_member_actor, &margs);
    return self;
}

void
qv_replica_destroy (qv_replica_t **self_p)
{
    qv_replica_t *self = *self_p;
    if (!self)
        return;
    zactor_destroy (&self->member);     //  writers stop sending reads first
    if (self->proxy) {
        zsock_send (self->proxy, "sp8", "STOP", NULL, (uint64_t) 0);
        zsock_wait (self->proxy);
    }
    zactor_destroy (&self->follower);
    if (self->searcher) {
        //  Nothing more to the adopter, which then drops the loads still queued; what
        //  it sends back meanwhile the searcher's last drain frees.
        zstr_send (self->searcher, "QUIET");
        zsock_wait (self->searcher);
    }
    zactor_destroy (&self->adopter);
    zactor_destroy (&self->searcher);
    zactor_destroy (&self->proxy);
    s_free (self);
    *self_p = NULL;
}

int64_t
qv_replica_behind_ms (qv_replica_t *self)
{
    int64_t since = atomic_load (&self->feed_stats->behind_since_ms);
    return since ? qv_clock_msec () - since : 0;
}
