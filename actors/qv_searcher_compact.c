//  The searcher's side of compaction: it owns the catalog, so it plans compactions
//  (on `compact`, and on its own past --auto-compaction-ratio), hands them to the
//  compactor (through the metadata coordinator), has each finished one logged as a
//  QV_REC_COMPACT record, and once that is applied takes the indexes the compactor
//  built for the merged segment. Part of the searcher actor (its thread, its state).
//
//  DESIGN
//  A compaction is decided here and made durable by the log, like every other change:
//  the compactor writes the merged segment and its indexes first, then the record is
//  logged, then every catalog (this one, searcher processes', a replay after a crash)
//  applies it at the same place in the log and computes the same merged rows from the
//  same old ones (qv_segment_merge). A crash before the record is durable leaves only
//  objects no manifest names (garbage collection removes them); after it, replay redoes
//  the switch. Readers holding a snapshot keep the old segments until they finish, so
//  a search running across the switch sees each row once.
//  The snapshot timestamp is the newest applied: every delete at or before it is
//  applied, and none after it can be, so the rows kept are fixed when the compactor
//  starts; deletes that arrive while it runs are carried over when the record is
//  applied (qv_segment_merge copies their timestamps).
//  The state `get_compaction_state` reports lives in this process, for the ids it gave
//  since it started.
#include "qv_searcher_self.h"
#include "qv_builder.h"
#include "qv_catalog.h"
#include "qv_compactor.h"
#include "qv_merge.h"

#include <stdlib.h>
#include <string.h>

//  A compaction record still waiting for its apply this long is given up (its WAL
//  write failed; the objects are left to garbage collection).
#define S_LOG_WAIT_MS 120000
//  The automatic policy looks every this many seconds.
#define S_AUTO_EVERY_SEC 10
//  Segments under this fraction of --segment-mb count as small; the policy merges
//  them once a shard and partition has S_SMALL_MIN of them (`compact`: any).
#define S_SMALL_FRACTION 0.5
#define S_SMALL_MIN 4

typedef enum { S_EXECUTING, S_COMPLETED, S_FAILED } s_state_t;

static const char *s_state_names [] = { "executing", "completed", "failed" };

//  A compaction as `get_compaction_state` reports it: one `compact` (or one round of
//  the policy), of one or more tasks (one per merged segment).
typedef struct {
    uint64_t id;
    uint32_t coll_id;
    s_state_t state;
    uint32_t tasks;                 //  tasks not finished
    uint64_t *merged;               //  segment ids replaced
    size_t nmerged;
    uint64_t *created;              //  segment ids made
    size_t ncreated;
    uint64_t rows_dropped;
    char error [200];
    int64_t started;                //  msec clock
} s_compaction_t;

//  A task back from the compactor, its record on the way through the log.
typedef struct {
    qv_compact_t *task;
    int64_t logged;                 //  msec clock when it went to the segment manager
} s_pending_t;

struct _qv_compactions_t {
    zhashx_t *all;                  //  "id" -> s_compaction_t
    zhashx_t *pending;              //  "new segment id" -> s_pending_t
    uint64_t last_id;
    int ticks;
    uint64_t completed;             //  since the start (stats)
    uint64_t failed;
    uint64_t rows_dropped;
};

static void
s_compaction_free (void **item)
{
    s_compaction_t *c = *item;
    if (c) {
        free (c->merged);
        free (c->created);
        free (c);
        *item = NULL;
    }
}

static void
s_pending_free (void **item)
{
    s_pending_t *p = *item;
    if (p) {
        qv_compact_destroy (&p->task);
        free (p);
        *item = NULL;
    }
}

qv_compactions_t *
qv_compactions_new (void)
{
    qv_compactions_t *self = calloc (1, sizeof *self);
    assert (self);
    self->all = zhashx_new ();
    zhashx_set_destructor (self->all, s_compaction_free);
    self->pending = zhashx_new ();
    zhashx_set_destructor (self->pending, s_pending_free);
    return self;
}

void
qv_compactions_destroy (qv_compactions_t **self_p)
{
    qv_compactions_t *self = *self_p;
    if (!self)
        return;
    zhashx_destroy (&self->all);
    zhashx_destroy (&self->pending);
    free (self);
    *self_p = NULL;
}

static char *
s_key (uint64_t id, char *buf, size_t size)
{
    snprintf (buf, size, "%llu", (unsigned long long) id);
    return buf;
}

//  A number above every compaction id and compacted segment id given before, in this
//  run or an earlier one (the catalog's newest timestamp only grows).
static uint64_t
s_next_id (self_t *self)
{
    qv_compactions_t *cs = self->compactions;
    uint64_t id = cs->last_id + 1, floor = qv_catalog_max_ts (self->catalog);
    cs->last_id = id > floor ? id : floor;
    return cs->last_id;
}

static bool
s_busy (qv_compactions_t *cs, uint32_t coll_id)
{
    for (s_compaction_t *c = zhashx_first (cs->all); c; c = zhashx_next (cs->all))
        if (c->coll_id == coll_id && c->state == S_EXECUTING)
            return true;
    return false;
}

static int
s_push_id (uint64_t **ids, size_t *n, uint64_t id)
{
    uint64_t *more = realloc (*ids, (*n + 1) * sizeof **ids);
    if (!more)
        return QV_ENOMEM;
    *ids = more;
    more [(*n)++] = id;
    return 0;
}

//  One task done (ok or not): the compaction completes with its last.
static void
s_task_done (self_t *self, uint64_t id, const char *error)
{
    char key [32];
    s_compaction_t *c = zhashx_lookup (self->compactions->all, s_key (id, key, sizeof key));
    if (!c)
        return;
    if (error && !c->error [0])
        snprintf (c->error, sizeof c->error, "%s", error);
    if (c->tasks > 0 && --c->tasks == 0) {
        c->state = c->error [0] ? S_FAILED : S_COMPLETED;
        self->compactions->completed += c->state == S_COMPLETED;
        self->compactions->failed += c->state == S_FAILED;
        self->compactions->rows_dropped += c->rows_dropped;
        qv_info ("compaction %llu %s in %lld ms: %zu segments merged into %zu, %llu rows "
                 "dropped%s%s", (unsigned long long) c->id, s_state_names [c->state],
                 (long long) (qv_clock_msec () - c->started), c->nmerged, c->ncreated,
                 (unsigned long long) c->rows_dropped, c->error [0] ? ": " : "", c->error);
    }
}

//  A new task for segs [0..n) of c: linked, with the index builds its definitions ask.
static qv_compact_t *
s_task_new (self_t *self, qv_collection_t *c, qv_segment_t **segs, size_t n, uint64_t id,
            uint64_t snap_ts, uint64_t cut)
{
    qv_compact_t *t = calloc (1, sizeof *t);
    if (!t)
        return NULL;
    t->olds = calloc (n, sizeof (void *));
    if (!t->olds) {
        free (t);
        return NULL;
    }
    t->id = id;
    t->coll_id = c->id;
    t->shard = segs [0]->shard;
    t->partition = segs [0]->partition;
    t->snap_ts = snap_ts;
    t->expire_cut = cut;
    t->new_id = QV_SEG_COMPACTED | s_next_id (self);
    for (size_t i = 0; i < n; i++)
        t->olds [t->nolds++] = qv_segment_link (segs [i]);
    for (int fi = 0; fi < c->schema->nfields; fi++) {
        if (!c->index_defs [fi])
            continue;
        qv_build_t *b = calloc (1, sizeof *b);
        if (!b) {
            qv_compact_destroy (&t);
            return NULL;
        }
        b->coll_id = c->id;
        b->field = fi;
        b->def = *c->index_defs [fi];
        b->version = c->index_versions [fi];
        t->builds [t->nbuilds++] = b;
    }
    return t;
}

//  Whether seg may be compacted: flushed, and in a durable manifest (a crash can then
//  never bring it back as a segment still to be written, while its rows are merged
//  into another).
static bool
s_compactable (self_t *self, qv_segment_t *seg)
{
    return seg->state == QV_SEG_FLUSHED && seg->manifest <= self->manifest_done;
}

//  Plans the compactions of collection c into comp: for each shard and partition, the
//  flushed segments with at least `ratio` of their rows to drop (any, with ratio 0),
//  and the small ones once there are `small_min` of them (0: any), in groups that fit
//  a segment. Returns how many tasks went to the compactor.
static uint32_t
s_plan (self_t *self, qv_collection_t *c, s_compaction_t *comp, double ratio, size_t small_min)
{
    uint64_t snap_ts = qv_catalog_max_ts (self->catalog);
    uint64_t cut = qv_collection_expire_floor (c, c->ttl_seconds ? qv_clock_wall_msec () : 0);
    size_t target = self->config->seg_max_bytes;
    qv_segment_t **group = calloc (c->nsegs + 1, sizeof *group);
    bool *taken = calloc (c->nsegs + 1, sizeof *taken);
    uint32_t tasks = 0;
    for (size_t i = 0; group && taken && i < c->nsegs; i++) {
        qv_segment_t *lead = c->segs [i];
        if (taken [i] || !s_compactable (self, lead))
            continue;
        //  The candidates of lead's shard and partition, in catalog order
        size_t n = 0, small = 0;
        uint64_t *kept = calloc (c->nsegs, sizeof *kept);
        uint64_t *drop = calloc (c->nsegs, sizeof *drop);
        if (!kept || !drop) {
            free (kept), free (drop);
            break;
        }
        for (size_t j = i; j < c->nsegs; j++) {
            qv_segment_t *seg = c->segs [j];
            if (taken [j] || !s_compactable (self, seg) || seg->shard != lead->shard
            ||  seg->partition != lead->partition)
                continue;
            taken [j] = true;
            uint64_t k, d;
            qv_merge_count (&seg, 1, snap_ts, cut, &k, &d);
            bool dirty = d > 0 && (double) d >= ratio * (double) (k + d);
            bool tiny = qv_segment_bytes (seg) < (size_t) (S_SMALL_FRACTION * (double) target);
            if (!dirty && !tiny)
                continue;
            small += tiny && !dirty;
            group [n] = seg;
            kept [n] = k, drop [n] = d;
            n++;
        }
        //  Small clean segments only count once there are enough of them
        size_t m = 0;
        for (size_t j = 0; j < n; j++) {
            bool dirty = drop [j] > 0 && (double) drop [j] >= ratio * (double) (kept [j] + drop [j]);
            if (dirty || small >= small_min || small_min == 0)
                group [m] = group [j], kept [m] = kept [j], drop [m] = drop [j], m++;
        }
        //  Groups that fit one segment: a group of one only if it drops rows
        size_t from = 0;
        while (from < m) {
            size_t to = from;
            double bytes = 0;
            uint64_t dropped = 0;
            while (to < m) {
                uint64_t rows = kept [to] + drop [to];
                double b = rows ? (double) qv_segment_bytes (group [to]) * kept [to] / rows : 0;
                if (to > from && bytes + b > (double) target)
                    break;
                bytes += b;
                dropped += drop [to];
                to++;
            }
            if (to - from >= 2 || dropped > 0) {
                qv_compact_t *t = s_task_new (self, c, group + from, to - from, comp->id,
                                              snap_ts, cut);
                bool noted = t != NULL;
                for (uint32_t k = 0; t && k < t->nolds && noted; k++)
                    noted = s_push_id (&comp->merged, &comp->nmerged,
                                       ((qv_segment_t *) t->olds [k])->id) == 0;
                if (t && noted && qv_compact_post (self->meta, QV_MSG_COMPACT, t) == 0)
                    tasks++;
                else
                if (t && !noted)
                    qv_compact_destroy (&t);
            }
            from = to;
        }
        free (kept), free (drop);
    }
    free (group);
    free (taken);
    return tasks;
}

//  Starts a compaction of c (policy: ratio and small_min). Returns it, or NULL (out of
//  memory); its state is completed at once when there is nothing to do.
static s_compaction_t *
s_start (self_t *self, qv_collection_t *c, double ratio, size_t small_min)
{
    s_compaction_t *comp = calloc (1, sizeof *comp);
    if (!comp)
        return NULL;
    comp->id = s_next_id (self);
    comp->coll_id = c->id;
    comp->started = qv_clock_msec ();
    char key [32];
    zhashx_insert (self->compactions->all, s_key (comp->id, key, sizeof key), comp);
    comp->tasks = s_plan (self, c, comp, ratio, small_min);
    comp->state = comp->tasks ? S_EXECUTING : S_COMPLETED;
    if (comp->tasks)
        qv_info ("compaction %llu of collection '%s': %zu segments in %u groups",
                 (unsigned long long) comp->id, c->name, comp->nmerged, comp->tasks);
    else {
        free (comp->merged);
        comp->merged = NULL;
        comp->nmerged = 0;
    }
    return comp;
}

//  Why this searcher cannot compact, or NULL: compactions are planned by the searcher
//  that owns the writer's catalog and logs beside the segment manager (the embedded
//  server's, or a writer core's with meta and flusher), not by searcher processes nor
//  by a meta process apart from its segment manager.
static const char *
s_cannot (self_t *self)
{
    if (self->adopts || self->config->follower || self->config->meta_process
    ||  self->config->meta_remote)
        return "compaction runs where the segment manager, meta and flusher roles run "
               "together (the embedded server, or a writer core with all three); this "
               "process holds none of them, or not all three";
    if (self->quiet)
        return "the server is shutting down";
    return NULL;
}

void
qv_searcher_compact (self_t *self, qv_job_t *job)
{
    qv_req_t *req = &job->req;
    qv_collection_t *c = qv_catalog_find (self->catalog, req->collection);
    const char *why = s_cannot (self);
    if (!c) {
        qv_err (QV_ENOTFOUND, "collection '%s' does not exist", req->collection);
        qv_searcher_fail (self, job, QV_ENOTFOUND);
        return;
    }
    if (why) {
        qv_err (QV_EUNAVAIL, "%s", why);
        qv_searcher_fail (self, job, QV_EUNAVAIL);
        return;
    }
    s_compaction_t *comp = NULL;
    //  One compaction of a collection at a time: a second `compact` gets the running one
    for (s_compaction_t *x = zhashx_first (self->compactions->all); x;
         x = zhashx_next (self->compactions->all))
        if (x->coll_id == c->id && x->state == S_EXECUTING)
            comp = x;
    if (!comp)
        comp = s_start (self, c, 0, 0);
    if (!comp) {
        qv_err (QV_ENOMEM, "out of memory");
        qv_searcher_fail (self, job, QV_ENOMEM);
        return;
    }
    qv_wr_t *w = qv_wr_new ();
    qv_reply_open (w, req->f [QV_F_rid]);
    qv_wr_key (w, "compaction_id");
    qv_wr_uint (w, comp->id);
    qv_reply_close (w);
    qv_job_reply (job, w, 0);
    qv_wr_destroy (&w);
    qv_searcher_reply (self, job);
}

void
qv_searcher_compaction_state (self_t *self, qv_job_t *job)
{
    qv_req_t *req = &job->req;
    uint64_t id = 0;
    qv_val_uint (req->f [QV_F_compaction_id], &id);
    char key [32];
    s_compaction_t *comp = zhashx_lookup (self->compactions->all, s_key (id, key, sizeof key));
    qv_collection_t *c = qv_catalog_find (self->catalog, req->collection);
    if (!comp || !c || comp->coll_id != c->id) {
        qv_err (QV_ENOTFOUND, "compaction %llu of collection '%s' is not known here (ids "
                "are kept until the server restarts)", (unsigned long long) id, req->collection);
        qv_searcher_fail (self, job, QV_ENOTFOUND);
        return;
    }
    qv_wr_t *w = qv_wr_new ();
    qv_reply_open (w, req->f [QV_F_rid]);
    qv_wr_key (w, "state");
    qv_wr_str (w, s_state_names [comp->state]);
    qv_wr_key (w, "merged_segments");
    qv_wr_array (w, comp->nmerged);
    for (size_t i = 0; i < comp->nmerged; i++)
        qv_wr_uint (w, comp->merged [i]);
    qv_wr_key (w, "new_segments");
    qv_wr_array (w, comp->ncreated);
    for (size_t i = 0; i < comp->ncreated; i++)
        qv_wr_uint (w, comp->created [i]);
    qv_wr_key (w, "rows_dropped");
    qv_wr_uint (w, comp->rows_dropped);
    if (comp->state == S_FAILED) {
        qv_wr_key (w, "error");
        qv_wr_str (w, comp->error);
    }
    qv_reply_close (w);
    qv_job_reply (job, w, 0);
    qv_wr_destroy (&w);
    qv_searcher_reply (self, job);
}

void
qv_searcher_compacted (self_t *self, qv_compact_t *t)
{
    if (t->rc) {
        qv_error ("compaction %llu: %s", (unsigned long long) t->id, t->error);
        s_task_done (self, t->id, t->error);
        qv_compact_destroy (&t);
        return;
    }
    //  The segments it merged must all still be there (a drop may have taken them)
    qv_collection_t *c = qv_catalog_find_id (self->catalog, t->coll_id);
    bool intact = c != NULL;
    for (uint32_t i = 0; intact && i < t->nolds; i++) {
        bool found = false;
        for (size_t j = 0; j < c->nsegs && !found; j++)
            found = c->segs [j] == t->olds [i];
        intact = found;
    }
    if (!intact || self->quiet) {
        s_task_done (self, t->id, self->quiet ? "the server is shutting down"
                                              : "its segments were dropped meanwhile");
        qv_compact_destroy (&t);
        return;
    }
    qv_record_t *rec = qv_record_new (QV_REC_COMPACT);
    qv_job_t *job = qv_job_new (0);
    uint64_t *olds = rec ? calloc (t->nolds, sizeof (uint64_t)) : NULL;
    if (!rec || !job || !olds) {
        qv_record_destroy (&rec);
        qv_job_destroy (&job);
        free (olds);
        s_task_done (self, t->id, "out of memory");
        qv_compact_destroy (&t);
        return;
    }
    rec->coll_id = t->coll_id;
    rec->shard = t->shard;
    rec->partition = t->partition;
    rec->in_partition = true;
    rec->seg_id = t->new_id;
    for (uint32_t i = 0; i < t->nolds; i++)
        olds [i] = ((qv_segment_t *) t->olds [i])->id;
    rec->olds = olds;
    rec->nolds = t->nolds;
    rec->snap_ts = t->snap_ts;
    rec->expire_cut = t->expire_cut;
    rec->epoch = t->epoch;
    rec->rows = t->rows;
    job->rec = rec;
    job->deadline = qv_clock_msec () + S_LOG_WAIT_MS;
    s_pending_t *p = calloc (1, sizeof *p);
    assert (p);
    p->task = t;
    p->logged = qv_clock_msec ();
    char key [32];
    zhashx_update (self->compactions->pending, s_key (t->new_id, key, sizeof key), p);
    qv_msg_write_t *msg = qv_msg_write_new ();
    msg->job = job;
    if (!self->segmgr_write || qv_msg_send_nowait (self->segmgr_write, (qv_msg_t **) &msg) != 0) {
        qv_msg_free (&msg);
        uint64_t id = t->id;        //  the pending entry's destructor frees t
        zhashx_delete (self->compactions->pending, key);
        s_task_done (self, id, "the segment manager is gone (shutdown)");
    }
}

//  Points b's index, built on the compactor's copy of the merged rows (copy), at
//  seg's vectors instead. Returns nonzero (logged) if they are not the same rows:
//  the index is then not used.
static int
s_rebind (qv_segment_t *seg, qv_segment_t *copy, qv_build_t *b)
{
    if (!qv_index_borrows (b->index))
        return 0;
    const qv_field_t *f = &seg->schema->fields [b->field];
    uint32_t rows = atomic_load (&seg->rows);
    const float *mine = qv_col_vec (f, &seg->batch->cols [b->field], 0);
    const float *theirs = qv_col_vec (f, &copy->batch->cols [b->field], 0);
    if (rows != atomic_load (&copy->rows)
    ||  memcmp (mine, theirs, (size_t) rows * f->dim * sizeof (float)) != 0
    ||  qv_index_rebind (b->index, mine, rows, f->dim) != 0) {
        qv_error ("compaction: segment %llu's rows differ from those its index %s was "
                  "built on; it is searched exactly until the index is rebuilt",
                  (unsigned long long) seg->id, b->def.type);
        return -1;
    }
    return 0;
}

void
qv_searcher_compact_applied (self_t *self, const qv_record_t *rec, int rc)
{
    char key [32];
    s_pending_t *p = zhashx_lookup (self->compactions->pending, s_key (rec->seg_id, key, sizeof key));
    if (!p) {
        if (rc)
            qv_error ("compaction into segment %llu could not be applied: %s",
                      (unsigned long long) rec->seg_id, qv_err_msg ());
        return;                     //  replay, or another process's: nothing to take
    }
    qv_compact_t *t = p->task;
    uint64_t id = t->id;
    qv_collection_t *c = qv_catalog_find_id (self->catalog, rec->coll_id);
    qv_segment_t *seg = NULL;
    for (size_t i = 0; c && !rc && i < c->nsegs && !seg; i++)
        if (c->segs [i]->id == rec->seg_id)
            seg = c->segs [i];
    char error [200] = "";
    if (rc)
        snprintf (error, sizeof error, "%s", qv_err_msg ());
    else {
        char ckey [32];
        s_compaction_t *comp = zhashx_lookup (self->compactions->all, s_key (id, ckey, sizeof ckey));
        if (comp) {
            comp->rows_dropped += t->dropped;
            if (seg)
                s_push_id (&comp->created, &comp->ncreated, seg->id);
        }
        //  The indexes built for the compactor's copy of the rows serve this one: the
        //  same rows in the same order. One that borrows the copy's vectors
        //  (qv_index.h) reads this segment's from now on: the copy goes
        for (uint32_t i = 0; i < t->nbuilds; i++) {
            qv_build_t *b = t->builds [i];
            t->builds [i] = NULL;
            qv_segment_t *mine = b->seg;
            if (seg && b->rc == 0 && b->index && s_rebind (seg, mine, b))
                b->rc = QV_ECORRUPT;
            qv_segment_unlink (&mine);
            b->seg = seg ? qv_segment_link (seg) : NULL;
            if (b->seg && b->rc == 0)
                qv_searcher_built (self, b);
            else
                qv_build_destroy (&b);
        }
        t->nbuilds = 0;
        qv_searcher_request_manifest (self);
        if (seg)
            seg->manifest = self->manifest_requested;
    }
    zhashx_delete (self->compactions->pending, key);
    s_task_done (self, id, rc ? error : NULL);
}

void
qv_searcher_compact_tick (self_t *self)
{
    qv_compactions_t *cs = self->compactions;
    //  Records whose WAL write failed are given up
    int64_t now = qv_clock_msec ();
    s_pending_t *p = zhashx_first (cs->pending);
    while (p) {
        if (now - p->logged > S_LOG_WAIT_MS) {
            uint64_t id = p->task->id;
            zhashx_delete (cs->pending, zhashx_cursor (cs->pending));
            s_task_done (self, id, "its record was not logged (the WAL write failed)");
            p = zhashx_first (cs->pending);
        }
        else
            p = zhashx_next (cs->pending);
    }
    //  Finished compactions are kept an hour for get_compaction_state
    s_compaction_t *c = zhashx_first (cs->all);
    while (c) {
        if (c->state != S_EXECUTING && now - c->started > 3600 * 1000) {
            zhashx_delete (cs->all, zhashx_cursor (cs->all));
            c = zhashx_first (cs->all);
        }
        else
            c = zhashx_next (cs->all);
    }
    if (++cs->ticks < S_AUTO_EVERY_SEC || self->config->compaction_ratio <= 0 || s_cannot (self))
        return;
    cs->ticks = 0;
    size_t n;
    qv_collection_t **list = qv_catalog_list (self->catalog, &n);
    for (size_t i = 0; i < n; i++) {
        if (s_busy (cs, list [i]->id))
            continue;
        s_compaction_t *comp = s_start (self, list [i], self->config->compaction_ratio, S_SMALL_MIN);
        if (comp && comp->state == S_COMPLETED) {
            char key [32];
            zhashx_delete (cs->all, s_key (comp->id, key, sizeof key));
        }
    }
    free (list);
}

void
qv_searcher_gc_check (self_t *self, zlist_t *keys)
{
    //  Every object listed was complete when listed, so the segment it belongs to is
    //  in the catalog already (a flush adds it before its write), or is the merged
    //  segment of a compaction on its way through the log (its COMPACTED came here
    //  before this GC_CHECK, on the same path), or nothing uses it any more.
    zlist_t *unused = zlist_new ();
    zlist_autofree (unused);
    for (char *key = zlist_first (keys); key; key = zlist_next (keys)) {
        uint32_t coll;
        uint64_t seg;
        char pkey [32];
        if (qv_segment_object_parse (key, &coll, &seg)
        ||  qv_catalog_has_segment (self->catalog, coll, seg))
            continue;
        s_pending_t *p = zhashx_lookup (self->compactions->pending, s_key (seg, pkey, sizeof pkey));
        if (p && p->task->coll_id == coll)
            continue;
        zlist_append (unused, key);
    }
    zlist_destroy (&keys);
    qv_msg_gc_checked_t *msg = qv_msg_gc_checked_new ();
    msg->keys = unused;
    if (self->quiet || qv_msg_post (self->meta, &msg) != 0) {
        zlist_destroy (&unused);
        qv_msg_free (&msg);
    }
}

void
qv_searcher_compact_stats (self_t *self, qv_wr_t *w)
{
    qv_compactions_t *cs = self->compactions;
    uint64_t executing = 0;
    for (s_compaction_t *c = zhashx_first (cs->all); c; c = zhashx_next (cs->all))
        executing += c->state == S_EXECUTING;
    qv_wr_key (w, "compactions_executing"); qv_wr_uint (w, executing);
    qv_wr_key (w, "compactions_completed"); qv_wr_uint (w, cs->completed);
    qv_wr_key (w, "compactions_failed"); qv_wr_uint (w, cs->failed);
    qv_wr_key (w, "compaction_rows_dropped"); qv_wr_uint (w, cs->rows_dropped);
}
