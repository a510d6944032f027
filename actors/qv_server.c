//  The embedded server: every actor in one process, wired by inproc sockets.
#include "qv_server.h"
#include "qv_actor.h"
#include "qv_adopt.h"
#include "qv_auth.h"
#include "qv_bridge.h"
#include "qv_catalog.h"
#include "qv_manifest.h"
#include "qv_cdc.h"
#include "qv_cdcpub.h"
#include "qv_builder.h"
#include "qv_compactor.h"
#include "qv_fanout.h"
#include "qv_feedpub.h"
#include "qv_recover.h"
#include "qv_flusher.h"
#include "qv_member.h"
#include "qv_members.h"
#include "qv_meta.h"
#include "qv_http.h"
#include "qv_metrics.h"
#include "qv_intake.h"
#include "qv_link.h"
#include "qv_proxy.h"
#include "qv_rc.h"
#include "qv_searcher.h"
#include "qv_segmgr.h"
#include "qv_shard_lease.h"
#include "qv_store.h"
#include "qv_users.h"

#include <signal.h>

//  meta_remote: how often the meta process's manifests are listed (a flush waits for
//  the one that holds its segments)
#define S_META_REMOTE_POLL_MS 300

struct _qv_server_t {
    qv_config_t config;
    qv_store_t *store;              //  the object store: data directory or S3
    qv_store_t *local;              //  with S3: the data directory, for its process lock
    zactor_t *proxy;
    zactor_t *segmgr;
    zactor_t *searcher;
    zactor_t *flusher;
    zactor_t *builder;
    zactor_t *compactor;
    zactor_t *meta;
    zactor_t *adopter;              //  meta_remote: reads the meta process's manifests
    zactor_t *bridge;               //  NATS bridge, with --nats
    qv_shard_lease_t *lease;        //  shard 0's write lease, with --nats
    zactor_t *feedpub;              //  committed-feed publisher, with --nats
    zactor_t *cdcpub;               //  change-feed publisher, with --nats
    zactor_t *fanout;               //  reads to searcher processes (--roles without searcher)
    zactor_t *link;                 //  a proxy process: to the writer core (--writer)
    zactor_t *member;               //  a writer core with --nats: its entry for proxies
    qv_feed_stats_t *feed_stats;
    qv_http_t *http;                //  REST gateway, with --http
    qv_metrics_t *metrics;          //  Prometheus /metrics, /healthz, /readyz, with --metrics
    qv_nats_stats_t *nats_stats;
    qv_write_stats_t *write_stats;
    char recovery_error [512];
    char refused [600];             //  a proxy process that refuses to serve: why
    atomic_bool stopping;           //  set first thing on destroy: cancels index builds
};

//  With --nats: waits for shard 0's write lease (the proxy answers UNAVAILABLE saying
//  so meanwhile), whose epoch is above every epoch in the WAL, then takes the
//  filesystem's flock (which a kill -9'd holder's kernel released). On S3 the lease is
//  the only lock (no lock object). 0, or -1 with the reason in qv_err_msg ().
static int
s_take_lease (qv_server_t *self)
{
    uint64_t top = 0;
    qv_wal_t *probe = qv_wal_new (self->store, 0);
    int rc = probe ? qv_wal_top_epoch (probe, &top) : QV_ENOMEM;
    qv_wal_destroy (&probe);
    if (rc)
        return -1;
    char url [sizeof self->config.nats_url], why [sizeof url + 256];
    qv_redact (self->config.nats_url, url, sizeof url);
    snprintf (why, sizeof why, "this server waits for the write lease of shard 0 in NATS "
              "%s (connecting to NATS, or another server holds the lease: see the log); "
              "retry later", url);
    zsock_send (self->proxy, "sp8", "WAITING", strdup (why), (uint64_t) 0);
    self->lease = qv_shard_lease_new (&self->config, self->store, 0, false, top + 1,
                                      qv_actor_stop_pending, NULL);
    if (!self->lease)
        return -1;
    zsock_send (self->proxy, "sp8", "WAITING",
                strdup ("the server is recovering its data; retry shortly"), (uint64_t) 0);
    if (!self->config.s3_endpoint [0] && qv_store_lock (self->store))
        return -1;
    return 0;
}

//  Starts the NATS bridge (JetStream ingestion resumes after stream_seq); it makes a
//  first attempt and says whether the configuration stands. 0, or -1 with the reason
//  in qv_err_msg ().
static int
s_start_bridge (qv_server_t *self, uint64_t stream_seq)
{
    qv_bridge_args_t bargs = { &self->config, stream_seq };
    self->bridge = zactor_new (qv_bridge_actor, &bargs);
    char *status = NULL, *reason = NULL;
    int rc = 0;
    if (!self->bridge || zsock_recv (self->bridge, "ss", &status, &reason) != 0
    ||  !status || !streq (status, "OK"))
        rc = qv_err (QV_EINVAL, "%s", reason && *reason ? reason : "the NATS bridge did not start");
    zstr_free (&status);
    zstr_free (&reason);
    return rc ? -1 : 0;
}

//  A proxy process (--roles proxy): the proxy, the link to the writer core (which
//  hands the proxy the catalog, and then its replies), the fan-out to searcher
//  processes, and the doors clients use (REST, NATS). It opens no store.
static qv_server_t *
s_proxy_process (qv_server_t *self)
{
    const qv_config_t *config = &self->config;
    //  A writer core has the intake where the proxy would be: the same commands
    self->proxy = zactor_new (config->writer_core ? qv_intake_actor : qv_proxy_actor,
                              &self->config);
    char *status = self->proxy ? zstr_recv (self->proxy) : NULL;
    if (!status || !streq (status, "OK")) {
        qv_err (QV_EUNAVAIL, "cannot bind %s: %s", config->bind, status ? status : "actor failed");
        zstr_free (&status);
        qv_server_destroy (&self);
        return NULL;
    }
    zstr_free (&status);
    //  Test hook: QV_FAULT_LINK_BLIP=N makes the link drop its connection to the writer
    //  core once, right after it sent the Nth stream write, and connect again: the
    //  writes in flight are answered UNAVAILABLE while the core goes on logging them.
    const char *blip = getenv ("QV_FAULT_LINK_BLIP");
    if (blip && atoi (blip) > 0) {
        qv_warn ("QV_FAULT_LINK_BLIP=%s: the connection to the writer core drops once after "
                 "stream write %s (fault injection)", blip, blip);
        self->config.fault_link_blip = atoi (blip);
    }
    //  Test hook: QV_FAULT_LINK_REPLY_LIMIT_MS=N: the link answers a job unanswered by the
    //  writer core for N ms UNAVAILABLE (default 60 s)
    const char *limit = getenv ("QV_FAULT_LINK_REPLY_LIMIT_MS");
    if (limit && atoi (limit) > 0) {
        qv_warn ("QV_FAULT_LINK_REPLY_LIMIT_MS=%s: requests without a reply from the writer "
                 "core for %s ms are answered UNAVAILABLE (fault injection)", limit, limit);
        self->config.link_reply_limit_ms = atoi (limit);
    }
    self->fanout = zactor_new (qv_fanout_actor, &self->config);
    self->link = zactor_new (qv_link_actor, &self->config);
    if ((config->http [0] && !(self->http = qv_http_new (&self->config)))
    ||  (config->metrics [0] && !(self->metrics = qv_metrics_new (&self->config)))) {
        qv_server_destroy (&self);
        return NULL;
    }
    if (s_start_bridge (self, 0)) {
        qv_server_destroy (&self);
        return NULL;
    }
    return self;
}

qv_server_t *
qv_server_new (const qv_config_t *config)
{
    qv_server_t *self = calloc (1, sizeof *self);
    self->config = *config;
    if (config->nats_url [0]) {
        self->config.nats_stats = self->nats_stats = calloc (1, sizeof (qv_nats_stats_t));
        self->config.feed_stats = self->feed_stats = qv_feed_stats_new ();
    }
    if (config->proxy_process)
        return s_proxy_process (self);
    char url [PATH_MAX + 1024];
    if (qv_config_store_url (config, url, sizeof url)) {
        free (self->nats_stats);
        qv_feed_stats_destroy (&self->feed_stats);
        free (self);
        return NULL;
    }
    if (config->s3_endpoint [0]) {
        //  The data directory holds only local files; its lock keeps two processes of
        //  this machine off it (the bucket's own lock is the S3 store's)
        self->local = qv_store_new (config->data);
        if (!self->local || qv_store_lock (self->local)) {
            qv_store_destroy (&self->local);
            free (self->nats_stats);
            qv_feed_stats_destroy (&self->feed_stats);
            free (self);
            return NULL;
        }
    }
    self->store = qv_store_new (url);
    if (!self->store) {
        qv_store_destroy (&self->local);
        free (self->nats_stats);
        qv_feed_stats_destroy (&self->feed_stats);
        free (self);
        return NULL;
    }
    if (config->s3_endpoint [0] && config->cache_mb > 0) {
        char dir [sizeof config->cache_dir + sizeof config->data + 16];
        if (config->cache_dir [0])
            snprintf (dir, sizeof dir, "%s", config->cache_dir);
        else
            snprintf (dir, sizeof dir, "%s/cache", config->data);
        if (qv_store_set_cache (self->store, dir, (uint64_t) config->cache_mb << 20)) {
            qv_error ("--cache-dir: %s", qv_err_msg ());
            qv_store_destroy (&self->store);
            qv_store_destroy (&self->local);
            free (self->nats_stats);
            qv_feed_stats_destroy (&self->feed_stats);
            free (self);
            return NULL;
        }
        qv_info ("segment cache: %s, at most %ld MiB", dir, config->cache_mb);
    }
    //  Test hook: QV_FAULT_PUT=N makes the next N object writes fail with an I/O error.
    const char *fault = getenv ("QV_FAULT_PUT");
    if (fault && atoi (fault) > 0) {
        qv_warn ("QV_FAULT_PUT=%s: the next %s object writes will fail (fault injection)", fault, fault);
        qv_store_inject_fault (self->store, "put", QV_EIO, atoi (fault));
    }
    qv_config_fault_apply_delay (&self->config);
    //  Test hook: QV_FAULT_BUILD_DELAY_MS=N makes every index build take N ms longer
    //  (a long build, to show that segment writes and flushes do not wait for it).
    const char *build_delay = getenv ("QV_FAULT_BUILD_DELAY_MS");
    if (build_delay && atoi (build_delay) > 0) {
        qv_warn ("QV_FAULT_BUILD_DELAY_MS=%s: every index build takes %s ms longer "
                 "(fault injection)", build_delay, build_delay);
        self->config.fault_build_delay_ms = atoi (build_delay);
    }
    self->config.stopping = &self->stopping;
    //  Test hook: QV_FAULT_BACKUP_DELAY_MS=N makes a backup wait N ms after each file it
    //  writes (a long backup, to kill it in the middle)
    const char *backup_delay = getenv ("QV_FAULT_BACKUP_DELAY_MS");
    if (backup_delay && atoi (backup_delay) > 0) {
        qv_warn ("QV_FAULT_BACKUP_DELAY_MS=%s: a backup waits %s ms after each file "
                 "(fault injection)", backup_delay, backup_delay);
        self->config.fault_backup_delay_ms = atoi (backup_delay);
    }
    //  Test hook: QV_FAULT_MANIFEST_DELAY_MS=N makes the flusher wait N ms before each
    //  manifest write (objects stay unnamed by any manifest that long: garbage
    //  collection must still leave them alone).
    const char *manifest_delay = getenv ("QV_FAULT_MANIFEST_DELAY_MS");
    if (manifest_delay && atoi (manifest_delay) > 0) {
        qv_warn ("QV_FAULT_MANIFEST_DELAY_MS=%s: every manifest write waits %s ms "
                 "(fault injection)", manifest_delay, manifest_delay);
        self->config.fault_manifest_delay_ms = atoi (manifest_delay);
    }
    //  Test hook: QV_FAULT_FEED_DROP=1 makes the feed publisher drop every WAL object
    //  (ticks still go): followers must read every object from the store, as after a
    //  NATS outage or a full publisher queue.
    const char *feed_drop = getenv ("QV_FAULT_FEED_DROP");
    if (feed_drop && atoi (feed_drop) > 0) {
        qv_warn ("QV_FAULT_FEED_DROP=%s: the committed feed carries ticks only (fault "
                 "injection)", feed_drop);
        self->config.fault_feed_drop = true;
    }
    //  Test hook: QV_FAULT_DROP_STREAM_REPLY=N makes a writer core's intake drop its
    //  reply to the Nth stream write (as when a proxy's queue is full): the proxy's
    //  link must answer it in time, or the stream stalls.
    const char *drop = getenv ("QV_FAULT_DROP_STREAM_REPLY");
    if (drop && atoi (drop) > 0 && config->writer_core) {
        qv_warn ("QV_FAULT_DROP_STREAM_REPLY=%s: the reply to stream write %s is dropped "
                 "(fault injection)", drop, drop);
        self->config.fault_drop_stream_reply = atoi (drop);
    }
    //  Test hook: QV_FAULT_NO_DDL_BROADCAST=1 makes a writer core answer DDL only to the
    //  proxy that asked: the others must find out by asking for the catalog.
    const char *no_bcast = getenv ("QV_FAULT_NO_DDL_BROADCAST");
    if (no_bcast && atoi (no_bcast) > 0 && config->writer_core) {
        qv_warn ("QV_FAULT_NO_DDL_BROADCAST=%s: DDL answers go to the asking proxy only "
                 "(fault injection)", no_bcast);
        self->config.fault_no_ddl_broadcast = true;
    }
    //  Test hook: QV_CRASH_BEFORE_PUT=PREFIX makes the process exit before it writes
    //  the first object whose key starts with PREFIX (e.g. meta/manifest/).
    const char *crash = getenv ("QV_CRASH_BEFORE_PUT");
    if (crash && *crash) {
        qv_warn ("QV_CRASH_BEFORE_PUT=%s: the process exits before writing such an object "
                 "(fault injection)", crash);
        qv_store_inject_crash (self->store, crash);
    }
    //  Test hook: QV_STALL_BEFORE_PUT=PREFIX[@N][,...] stops the process (SIGSTOP)
    //  once a put of each prefix is under way (qv_store_inject_stall).
    const char *stall = getenv ("QV_STALL_BEFORE_PUT");
    if (stall && *stall) {
        qv_warn ("QV_STALL_BEFORE_PUT=%s: the process stops itself with such puts under "
                 "way (fault injection)", stall);
        qv_store_inject_stall (self->store, stall);
    }
    //  With --nats the writer lock is shard 0's lease, taken below once the API
    //  answers (UNAVAILABLE, saying why, while waiting for it)
    if (!config->nats_url [0] && qv_store_lock (self->store)) {
        qv_store_destroy (&self->store);
        qv_store_destroy (&self->local);
        free (self->nats_stats);
        qv_feed_stats_destroy (&self->feed_stats);
        free (self);
        return NULL;
    }
    self->config.store = self->store;
    self->config.write_stats = self->write_stats = calloc (1, sizeof (qv_write_stats_t));
    //  A writer core has the intake where the proxy would be: the same commands
    self->proxy = zactor_new (config->writer_core ? qv_intake_actor : qv_proxy_actor,
                              &self->config);
    char *status = self->proxy ? zstr_recv (self->proxy) : NULL;
    if (!status || !streq (status, "OK")) {
        qv_err (QV_EUNAVAIL, "cannot bind %s: %s", config->bind, status ? status : "actor failed");
        zstr_free (&status);
        zactor_destroy (&self->proxy);
        qv_store_destroy (&self->store);
        qv_store_destroy (&self->local);
        free (self->nats_stats);
        qv_feed_stats_destroy (&self->feed_stats);
        free (self->write_stats);
        free (self);
        return NULL;
    }
    zstr_free (&status);
    //  The REST gateway answers from now on, like the ZeroMQ socket (UNAVAILABLE
    //  while recovering).
    if ((config->http [0] && !(self->http = qv_http_new (&self->config)))
    ||  (config->metrics [0] && !(self->metrics = qv_metrics_new (&self->config)))) {
        zsock_send (self->proxy, "sp8", "STOP", NULL, (uint64_t) 0);
        zsock_wait (self->proxy);
        qv_http_destroy (&self->http);
        qv_metrics_destroy (&self->metrics);
        zactor_destroy (&self->proxy);
        qv_store_destroy (&self->store);
        qv_store_destroy (&self->local);
        free (self->nats_stats);
        qv_feed_stats_destroy (&self->feed_stats);
        free (self->write_stats);
        free (self);
        return NULL;
    }

    if (config->nats_url [0] && s_take_lease (self)) {
        zsock_send (self->proxy, "sp8", "STOP", NULL, (uint64_t) 0);
        zsock_wait (self->proxy);
        qv_http_destroy (&self->http);
        qv_metrics_destroy (&self->metrics);
        zactor_destroy (&self->proxy);
        qv_store_destroy (&self->store);
        qv_shard_lease_destroy (&self->lease, NULL);
        qv_store_destroy (&self->local);
        free (self->nats_stats);
        qv_feed_stats_destroy (&self->feed_stats);
        free (self->write_stats);
        free (self);
        return NULL;
    }

    int64_t started = qv_clock_msec ();
    qv_catalog_t *catalog = qv_catalog_new ();
    qv_wal_t *wal = qv_wal_new (self->store, 0);
    qv_replay_t replay = { catalog, config->seg_max_bytes, 0,
                          config->nats_url [0] ? zlist_new () : NULL, config->cdc_rows };
    qv_catalog_set_index_records (catalog, config->remote_reads);
    int rc = qv_catalog_recover (catalog, self->store);
    if (rc == 0)
        rc = qv_wal_open (wal, qv_catalog_replay_from (catalog), qv_replay_record, &replay);
    //  The S3 backend's lock is read back before the first write, while recovery read:
    //  a server that lost it to one started at the same moment writes nothing
    if (rc == 0 && !config->nats_url [0])
        rc = qv_store_lock_check (self->store);
    uint64_t lease_epoch = self->lease ? qv_shard_lease_epoch (self->lease) : 0;
    //  Above the recovered manifest's epoch too: a meta process (--roles meta,flusher)
    //  writes manifests with an epoch of its own, and this writer's manifests must not
    //  pass for a deposed writer's after it (qv_manifest.c, s_man_select)
    uint64_t min_epoch = lease_epoch;
    if (rc == 0 && qv_catalog_manifest_epoch (catalog) + 1 > min_epoch)
        min_epoch = qv_catalog_manifest_epoch (catalog) + 1;
    if (rc == 0 && qv_wal_fence (wal, min_epoch) != 0) {
        //  The writer's epoch: a deposed writer's late objects are ignored from the
        //  fence on (qv_wal.c, "Fencing"). Written before the first append if not now.
        qv_warn ("cannot write the WAL fence object yet (%s); the first write retries it",
                 qv_err_msg ());
        qv_err_clear ();
    }
    if (rc == 0) {
        //  Manifests (and every later object) carry the WAL's epoch
        self->config.writer_epoch = qv_wal_epoch (wal);
        qv_catalog_set_epoch (catalog, self->config.writer_epoch);
        if (self->lease && !config->meta_remote)
            qv_manifest_fence (self->store, catalog, self->config.writer_epoch);
        if (lease_epoch && self->config.writer_epoch != lease_epoch)
            qv_warn ("the lease %s has epoch %llu, but the WAL or the manifests already "
                     "hold a higher one: this server writes as epoch %llu (was the KV "
                     "bucket recreated, or a meta process written manifests?)",
                     qv_shard_lease_name (self->lease),
                     (unsigned long long) lease_epoch,
                     (unsigned long long) self->config.writer_epoch);
    }
    //  --auth needs a root user: stored, or its first password from the environment
    bool no_root = rc == 0 && config->auth && !config->writer_core
                && qv_auth_root_check (qv_catalog_users (catalog));
    if (no_root)
        rc = QV_EINVAL;
    if (rc) {
        snprintf (self->recovery_error, sizeof self->recovery_error, "%s", qv_err_msg ());
        qv_error ("recovery failed: %s", self->recovery_error);
        zsock_send (self->proxy, "sp8", "FAILED", strdup (self->recovery_error), (uint64_t) 0);
        qv_cdc_t *ev;
        while (replay.cdc && (ev = zlist_pop (replay.cdc)))
            qv_cdc_destroy (&ev);
        zlist_destroy (&replay.cdc);
        qv_wal_destroy (&wal);
        qv_catalog_destroy (&catalog);
        if (no_root) {              //  refused to start, not waiting
            char why [sizeof self->recovery_error];
            snprintf (why, sizeof why, "%s", self->recovery_error);
            qv_server_destroy (&self);
            qv_err (QV_EINVAL, "%s", why);
            return NULL;
        }
        return self;
    }
    //  Segments rebuilt from the WAL are sealed and flushed; new rows start new segments.
    qv_segmgr_args_t sargs = { &self->config, wal, qv_catalog_next_coll_id (catalog),
                               qv_catalog_next_seg_id (catalog), 0, zlist_new (),
                               qv_catalog_max_ts (catalog), qv_catalog_stream_seq (catalog) };
    zlist_autofree (sargs.seal);
    zlist_t *views = qv_recover_views (catalog);
    //  The proxy's copy of the user store, taken before the searcher owns the catalog
    qv_users_t *users = qv_users_dup (qv_catalog_users (catalog));
    size_t n;
    qv_collection_t **list = qv_catalog_list (catalog, &n);
    uint64_t unflushed_rows = 0;
    for (size_t i = 0; i < n; i++) {
        qv_collection_t *c = list [i];
        for (size_t j = 0; j < c->nsegs; j++)
            if (c->segs [j]->state != QV_SEG_FLUSHED) {
                char s [96];
                size_t bytes = qv_segment_bytes (c->segs [j]);
                snprintf (s, sizeof s, "%u/%llu/%zu/%u", c->id, (unsigned long long) c->segs [j]->id,
                          bytes, c->segs [j]->partition);
                zlist_append (sargs.seal, s);
                sargs.unflushed_bytes += bytes;
                unflushed_rows += atomic_load (&c->segs [j]->rows);
            }
    }
    free (list);
    uint64_t max_ts = qv_catalog_max_ts (catalog);
    qv_info ("recovered %zu collections in %lld ms: %llu WAL records replayed, %llu unflushed rows",
             n, (long long) (qv_clock_msec () - started), (unsigned long long) replay.records,
             (unsigned long long) unflushed_rows);
    uint64_t stream_seq = qv_catalog_stream_seq (catalog);
    if (config->meta_remote) {
        //  Segments, indexes and manifests are a meta process's: its manifests are read
        //  (often: a flush waits for them) and adopted
        self->config.adopt_poll_ms = S_META_REMOTE_POLL_MS;
        qv_adopt_args_t aargs = { &self->config, self->store, qv_catalog_manifest_version (catalog) };
        self->adopter = zactor_new (qv_adopt_actor, &aargs);
    }
    else {
        qv_meta_args_t margs = { &self->config, qv_catalog_manifest_version (catalog) };
        self->meta = zactor_new (qv_meta_actor, &margs);
        qv_flusher_args_t fargs = { &self->config, self->store };
        self->flusher = zactor_new (qv_flusher_actor, &fargs);
        qv_builder_args_t bdargs = { &self->config, self->store, &self->stopping };
        self->builder = zactor_new (qv_builder_actor, &bdargs);
        qv_compactor_args_t cpargs = { &self->config, self->store, &self->stopping };
        self->compactor = zactor_new (qv_compactor_actor, &cpargs);
    }
    if (config->nats_url [0])       //  before the searcher, which feeds it
        self->cdcpub = zactor_new (qv_cdcpub_actor, &self->config);
    qv_searcher_args_t rargs = { &self->config, catalog, replay.cdc };
    self->searcher = zactor_new (qv_searcher_actor, &rargs);
    if (config->nats_url [0])       //  before the segment manager, which feeds it
        self->feedpub = zactor_new (qv_feedpub_actor, &self->config);
    self->segmgr = zactor_new (qv_segmgr_actor, &sargs);
    if (config->remote_reads && !config->writer_core)   //  before the proxy routes reads to it
        self->fanout = zactor_new (qv_fanout_actor, &self->config);
    zsock_send (self->proxy, "sp8", "USERS", users, (uint64_t) 0);   //  proxy or intake
    zsock_send (self->proxy, "sp8", "READY", views, max_ts);
    if (config->writer_core && self->lease) {
        //  Proxy processes without --writer find the core by this entry: put while
        //  the lease is ours, with its epoch (the newest holder wins)
        qv_member_args_t margs = { &self->config, QV_MEMBERS_CORE, self->config.writer_epoch,
                                   qv_shard_lease_held, self->lease };
        self->member = zactor_new (qv_member_actor, &margs);
    }
    if (config->nats_url [0] && !config->writer_core) {
        //  The bridge makes a first attempt and says whether the configuration stands.
        if (stream_seq)
            qv_info ("JetStream ingestion resumes after stream message %llu",
                     (unsigned long long) stream_seq);
        if (s_start_bridge (self, stream_seq)) {
            qv_server_destroy (&self);
            return NULL;
        }
    }
    return self;
}

void
qv_server_destroy (qv_server_t **self_p)
{
    qv_server_t *self = *self_p;
    if (!self)
        return;
    atomic_store (&self->stopping, true);   //  a build in progress is not waited for
    qv_http_destroy (&self->http);
    qv_metrics_destroy (&self->metrics);
    zactor_destroy (&self->bridge);
    zactor_destroy (&self->member);     //  proxies stop choosing this core first
    //  The proxy stops routing first: a request must not be sent to an actor that is gone.
    if (self->proxy) {
        zsock_send (self->proxy, "sp8", "STOP", NULL, (uint64_t) 0);
        zsock_wait (self->proxy);
    }
    //  Reads on searcher processes are answered (UNAVAILABLE) while the proxy listens
    zactor_destroy (&self->fanout);
    zactor_destroy (&self->link);
    //  Then the writers of the log, of segment objects and indexes, the searcher, which
    //  answers whatever the others left in its inbox, and the coordinator, which frees
    //  what its workers handed back; the proxy, which sends the answers, last. The
    //  coordinator first stops informing the segment manager: a message it posted
    //  after the segment manager's last read would be lost in the closing pipe.
    if (self->meta) {
        zstr_send (self->meta, "SEGMGR-STOPS");
        zsock_wait (self->meta);
    }
    if (self->searcher) {
        zstr_send (self->searcher, "SEGMGR-STOPS");
        zsock_wait (self->searcher);
    }
    zactor_destroy (&self->segmgr);
    zactor_destroy (&self->feedpub);
    if (self->searcher) {
        zstr_send (self->searcher, "QUIET");
        zsock_wait (self->searcher);
    }
    if (self->meta) {
        zstr_send (self->meta, "QUIET");
        zsock_wait (self->meta);
    }
    zactor_destroy (&self->flusher);
    zactor_destroy (&self->builder);
    zactor_destroy (&self->compactor);
    zactor_destroy (&self->adopter);
    zactor_destroy (&self->searcher);
    zactor_destroy (&self->cdcpub);
    zactor_destroy (&self->meta);
    zactor_destroy (&self->proxy);
    qv_store_destroy (&self->store);
    qv_shard_lease_destroy (&self->lease, NULL);  //  released once nothing writes
    qv_store_destroy (&self->local);
    free (self->nats_stats);
    qv_feed_stats_destroy (&self->feed_stats);
    free (self->write_stats);
    free (self);
    *self_p = NULL;
}

const char *
qv_server_recovery_error (qv_server_t *self)
{
    return self->recovery_error [0] ? self->recovery_error : NULL;
}

const char *
qv_server_refused (qv_server_t *self)
{
    //  The proxy's pipe carries nothing else unasked (its STOP signal is waited for)
    while (!self->refused [0] && self->config.proxy_process && self->proxy
    &&     (zsock_events (self->proxy) & ZMQ_POLLIN)) {
        char *what = NULL, *why = NULL;
        if (zstr_recvx (self->proxy, &what, &why, NULL) < 0)
            break;
        if (what && streq (what, "REFUSED"))
            snprintf (self->refused, sizeof self->refused, "%s", why ? why : "");
        zstr_free (&what);
        zstr_free (&why);
    }
    return self->refused [0] ? self->refused : NULL;
}
