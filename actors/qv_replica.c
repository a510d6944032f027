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
#include "qv_users.h"
#include "qv_actor.h"
#include "qv_auth.h"
#include "qv_adopt.h"
#include "qv_builder.h"
#include "qv_catalog.h"
#include "qv_flusher.h"
#include "qv_follower.h"
#include "qv_manifest.h"
#include "qv_meta.h"
#include "qv_shard_lease.h"
#include "qv_member.h"
#include "qv_members.h"
#include "qv_metrics.h"
#include "qv_proxy.h"
#include "qv_recover.h"
#include "qv_rc.h"
#include "qv_searcher.h"
#include "qv_store.h"

#define S_RECOVERY_TRIES 5

struct _qv_replica_t {
    qv_config_t config;
    qv_store_t *store;              //  read-only: the WAL (and everything, in a searcher)
    qv_store_t *writes;             //  a meta process: segments, indexes, manifests
    qv_shard_lease_t *lease;        //  a meta process: the shard's meta lease
    zactor_t *proxy;
    qv_metrics_t *metrics;          //  --metrics: asks the proxy, as in the embedded server
    zactor_t *searcher;
    zactor_t *follower;
    zactor_t *adopter;
    zactor_t *member;
    zactor_t *meta;                 //  a meta process: the coordinator and its workers
    zactor_t *flusher;
    zactor_t *builder;
    atomic_bool stopping;           //  a meta process: cancels index builds at stop
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
    qv_metrics_destroy (&self->metrics);
    qv_shard_lease_destroy (&self->lease, self->writes);   //  once nothing writes
    qv_store_destroy (&self->writes);
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

//  A meta process: waits for the shard's meta lease (the proxy answers UNAVAILABLE
//  saying so meanwhile), whose epoch is above every manifest's, and makes it the
//  write store's guard. 0, or -1 with the reason in qv_err_msg ().
static int
s_take_lease (qv_replica_t *self)
{
    qv_manifest_t *man = NULL;
    uint64_t top = 0;
    if (qv_manifest_read_newest (self->store, 0, &man))
        return -1;
    if (man)
        top = man->epoch;
    qv_manifest_destroy (&man);
    char url [sizeof self->config.nats_url], why [sizeof url + 256];
    qv_redact (self->config.nats_url, url, sizeof url);
    snprintf (why, sizeof why, "this meta process waits for the meta lease of shard 0 in "
              "NATS %s (connecting to NATS, or another meta process holds it: see the log); "
              "retry later", url);
    zsock_send (self->proxy, "sp8", "WAITING", strdup (why), (uint64_t) 0);
    self->lease = qv_shard_lease_new (&self->config, self->writes, 0, true, top + 1,
                                      qv_actor_stop_pending, NULL);
    if (!self->lease)
        return -1;
    zsock_send (self->proxy, "sp8", "WAITING",
                strdup ("the meta process is recovering its data; retry shortly"), (uint64_t) 0);
    return 0;
}

//  A meta process, recovered: its epoch on the manifests and segment objects, the
//  manifest fence, then the coordinator and its workers (before the searcher, which
//  sends them work).
static void
s_start_meta (qv_replica_t *self, qv_catalog_t *catalog)
{
    self->config.writer_epoch = qv_shard_lease_epoch (self->lease);
    qv_catalog_set_epoch (catalog, self->config.writer_epoch);
    qv_manifest_fence (self->writes, catalog, self->config.writer_epoch);
    qv_meta_args_t margs = { &self->config, qv_catalog_manifest_version (catalog) };
    self->meta = zactor_new (qv_meta_actor, &margs);
    qv_flusher_args_t fargs = { &self->config, self->writes };
    self->flusher = zactor_new (qv_flusher_actor, &fargs);
    qv_builder_args_t bargs = { &self->config, self->writes, &self->stopping };
    self->builder = zactor_new (qv_builder_actor, &bargs);
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
    if (config->meta_process) {
        self->writes = qv_store_new (url);
        if (!self->writes) {
            s_free (self);
            return NULL;
        }
    }
    self->config.store = self->writes ? self->writes : self->store;
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
    //  /metrics and /readyz answer from now on (503 while recovering)
    if (config->metrics [0] && !(self->metrics = qv_metrics_new (&self->config))) {
        char why [400];
        snprintf (why, sizeof why, "%s", qv_err_msg ());
        qv_replica_destroy (&self);
        qv_err (QV_EINVAL, "%s", why);
        return NULL;
    }
    if (config->meta_process && s_take_lease (self)) {
        qv_replica_destroy (&self);
        return NULL;
    }
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
    //  --auth needs a root user, as the embedded server does: a searcher without one
    //  would refuse root's reads that a proxy holding root's password let through
    bool no_root = rc == 0 && config->auth && qv_auth_root_check (qv_catalog_users (catalog));
    if (rc || no_root) {
        char why [600];
        snprintf (why, sizeof why, "%s%s", no_root ? "" : "recovery failed: ", qv_err_msg ());
        qv_catalog_destroy (&catalog);
        qv_wal_destroy (&wal);
        qv_replica_destroy (&self);
        qv_err (rc ? rc : QV_EINVAL, "%s", why);
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
    if (config->meta_process)
        s_start_meta (self, catalog);
    //  The proxy's copy of the user store (later changes come with the feed's records,
    //  through the searcher's replies), taken before the searcher owns the catalog
    zsock_send (self->proxy, "sp8", "USERS", qv_users_dup (qv_catalog_users (catalog)),
                (uint64_t) 0);
    qv_searcher_args_t rargs = { &self->config, catalog, NULL };
    self->searcher = zactor_new (qv_searcher_actor, &rargs);
    zsock_send (self->proxy, "sp8", "READY", views, max_ts);
    self->follower = zactor_new (qv_follower_actor, &fargs);
    if (config->meta_process)
        return self;                //  it writes the manifests: nothing to adopt or announce
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
    qv_metrics_destroy (&self->metrics);    //  before the proxy it asks
    if (self->proxy) {
        zsock_send (self->proxy, "sp8", "STOP", NULL, (uint64_t) 0);
        zsock_wait (self->proxy);
    }
    atomic_store (&self->stopping, true);   //  a build in progress is not waited for
    zactor_destroy (&self->follower);
    if (self->searcher) {
        //  Nothing more to the adopter, which then drops the loads still queued; what
        //  it sends back meanwhile the searcher's last drain frees. (A meta process:
        //  nothing more to the coordinator, which then gives its workers nothing more.)
        zstr_send (self->searcher, "QUIET");
        zsock_wait (self->searcher);
    }
    if (self->meta) {
        zstr_send (self->meta, "QUIET");
        zsock_wait (self->meta);
    }
    zactor_destroy (&self->flusher);
    zactor_destroy (&self->builder);
    zactor_destroy (&self->adopter);
    zactor_destroy (&self->searcher);
    zactor_destroy (&self->meta);
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
