//  The searcher's `stats` reply: the catalog's figures (collections, rows, segments,
//  the WAL position and manifest), the store's and its cache's counters, the write
//  admission figures, NATS ingest and change-feed counters, and the committed feed's
//  role-specific figures. Part of the searcher actor (its thread, its state).
#include "qv_searcher_self.h"
#include "qv_bridge.h"
#include "qv_fanout.h"
#include "qv_store.h"

//  The committed feed's figures in a stats reply: the writer's (published, dropped; role
//  "writer" without the searcher role, with the searcher processes it knows of) or
//  a searcher process's (role "searcher", its WAL position, objects read from the store,
//  whether it has caught up).
static void
s_feed_stats (self_t *self, qv_wr_t *w)
{
    qv_feed_stats_t *fs = self->config->feed_stats;
    qv_wr_key (w, "instance");      //  this process's incarnation (a restart changes it)
    qv_wr_str (w, self->config->instance);
    qv_wr_key (w, "role");
    qv_wr_str (w, self->config->meta_process ? "meta" : self->config->follower ? "searcher"
                 : self->config->remote_reads ? "writer" : "embedded");
    if (!fs)
        return;
    if (self->config->follower) {
        qv_wr_key (w, "feed_applied_seq"); qv_wr_uint (w, atomic_load (&fs->applied_seq));
        qv_wr_key (w, "feed_wal_reads"); qv_wr_uint (w, atomic_load (&fs->wal_reads));
        qv_wr_key (w, "feed_caught_up"); qv_wr_uint (w, atomic_load (&fs->caught_up));
    }
    else {
        qv_wr_key (w, "feed_published"); qv_wr_uint (w, atomic_load (&fs->published));
        qv_wr_key (w, "feed_dropped"); qv_wr_uint (w, atomic_load (&fs->dropped));
        if (self->config->remote_reads && !self->config->writer_core)
            qv_fanout_write_stats (fs, w);
    }
}

void
qv_searcher_stats (self_t *self, qv_job_t *job)
{
    qv_req_t *req = &job->req;
    qv_wr_t *w = qv_wr_new ();
    size_t n;
    qv_collection_t **list = qv_catalog_list (self->catalog, &n);
    qv_collection_t *only = NULL;
    if (req->f [QV_F_collection]) {
        only = qv_catalog_find (self->catalog, req->collection);
        if (!only) {
            free (list);
            qv_wr_destroy (&w);
            qv_err (QV_ENOTFOUND, "collection '%s' does not exist", req->collection);
            qv_searcher_fail (self, job, QV_ENOTFOUND);
            return;
        }
    }
    uint64_t rows = 0, segs = 0, bytes = 0, growing = 0;
    //  Memory by component: rows of growing and sealed segments, of flushed ones, vector
    //  indexes, primary-key indexes
    qv_memory_t mem = { 0, 0, 0, 0 };
    for (size_t i = 0; i < n; i++) {
        if (only && list [i] != only)
            continue;
        rows += list [i]->live_rows;
        segs += list [i]->nsegs;
        qv_collection_memory (list [i], &mem);
        for (size_t j = 0; j < list [i]->nsegs; j++) {
            bytes += qv_segment_bytes (list [i]->segs [j]);
            growing += list [i]->segs [j]->state != QV_SEG_FLUSHED;
        }
    }
    uint64_t mem_filter_cache = 0;
    for (roaring_bitmap_t *b = zhashx_first (self->filter_cache); b; b = zhashx_next (self->filter_cache))
        mem_filter_cache += roaring_bitmap_size_in_bytes (b);
    qv_nats_stats_t *ns = self->config->nats_stats;
    qv_store_t *store = self->config->store;
    qv_write_stats_t *ws = self->config->write_stats;
    qv_cache_stats_t cs;
    bool cached = store && qv_store_cache_stats (store, &cs);
    qv_reply_open (w, req->f [QV_F_rid]);
    qv_wr_key (w, "collections"); qv_wr_uint (w, only ? 1 : n);
    qv_wr_key (w, "rows"); qv_wr_uint (w, rows);
    qv_wr_key (w, "segments"); qv_wr_uint (w, segs);
    qv_wr_key (w, "unflushed_segments"); qv_wr_uint (w, growing);
    qv_wr_key (w, "bytes"); qv_wr_uint (w, bytes);
    qv_wr_key (w, "memory");
    qv_wr_map_open (w);
    qv_wr_key (w, "growing_segments"); qv_wr_uint (w, mem.growing);
    qv_wr_key (w, "flushed_segments"); qv_wr_uint (w, mem.flushed);
    qv_wr_key (w, "vector_indexes"); qv_wr_uint (w, mem.indexes);
    qv_wr_key (w, "primary_key_index"); qv_wr_uint (w, mem.pk);
    qv_wr_key (w, "filter_cache"); qv_wr_uint (w, mem_filter_cache);
    if (self->config->memory_budget) {
        qv_wr_key (w, "budget"); qv_wr_uint (w, self->config->memory_budget);
    }
    qv_wr_map_close (w);
    qv_searcher_compact_stats (self, w);
    qv_wr_key (w, "wal_applied"); qv_wr_uint (w, qv_catalog_applied_seq (self->catalog));
    qv_wr_key (w, "wal_checkpoint"); qv_wr_uint (w, qv_catalog_checkpoint (self->catalog));
    qv_wr_key (w, "manifest_version"); qv_wr_uint (w, self->manifest_done);
    if (self->config->remote_reads || self->config->meta_process) {
        qv_wr_key (w, "indexes_released"); qv_wr_uint (w, self->indexes_released);
    }
    if (self->config->follower) {
        qv_wr_key (w, "indexes_adopted"); qv_wr_uint (w, self->indexes_adopted);
        qv_wr_key (w, "manifests_announced");
        qv_wr_uint (w, self->config->feed_stats
                       ? atomic_load (&self->config->feed_stats->manifests_announced) : 0);
    }
    qv_wr_key (w, "segments_read"); qv_wr_uint (w, self->segments_read);
    qv_wr_key (w, "store"); qv_wr_str (w, store ? qv_store_backend_name (store) : "");
    if (store) {
        uint64_t requests, retried;
        qv_store_counters (store, &requests, &retried);
        qv_wr_key (w, "store_requests"); qv_wr_uint (w, requests);
        qv_wr_key (w, "store_retries"); qv_wr_uint (w, retried);
    }
    if (ws) {
        qv_wr_key (w, "unflushed_bytes"); qv_wr_uint (w, atomic_load (&ws->unflushed));
        qv_wr_key (w, "unflushed_peak_bytes"); qv_wr_uint (w, atomic_load (&ws->unflushed_peak));
        qv_wr_key (w, "writes_waited"); qv_wr_uint (w, atomic_load (&ws->waited));
        qv_wr_key (w, "writes_refused"); qv_wr_uint (w, atomic_load (&ws->refused));
        qv_wr_key (w, "writes_stream_again"); qv_wr_uint (w, atomic_load (&ws->stream_again));
        qv_wr_key (w, "gc_deleted_objects"); qv_wr_uint (w, atomic_load (&ws->gc_deleted));
        qv_wr_key (w, "gc_unused_objects"); qv_wr_uint (w, atomic_load (&ws->gc_unused));
    }
    if (cached) {
        qv_wr_key (w, "cache_hits"); qv_wr_uint (w, cs.hits);
        qv_wr_key (w, "cache_misses"); qv_wr_uint (w, cs.misses);
        qv_wr_key (w, "cache_bytes_downloaded"); qv_wr_uint (w, cs.bytes_downloaded);
        qv_wr_key (w, "cache_corrupt"); qv_wr_uint (w, cs.corrupt);
        qv_wr_key (w, "cache_stale"); qv_wr_uint (w, cs.stale);
        qv_wr_key (w, "cache_evictions"); qv_wr_uint (w, cs.evictions);
        qv_wr_key (w, "cache_bytes"); qv_wr_uint (w, cs.bytes);
        qv_wr_key (w, "cache_max_bytes"); qv_wr_uint (w, cs.max_bytes);
    }
    if (only) {
        qv_wr_key (w, "partitions");
        qv_collection_partition_stats (only, w);
    }
    if (ns) {
        qv_bridge_write_stats (ns, w);
        qv_wr_key (w, "ingest_seq"); qv_wr_uint (w, qv_catalog_stream_seq (self->catalog));
        qv_wr_key (w, "cdc_published"); qv_wr_uint (w, atomic_load (&ns->cdc_published));
        qv_wr_key (w, "cdc_dropped"); qv_wr_uint (w, atomic_load (&ns->cdc_dropped));
    }
    s_feed_stats (self, w);
    qv_reply_close (w);
    free (list);
    qv_job_reply (job, w, 0);
    qv_wr_destroy (&w);
    qv_searcher_reply (self, job);
}
