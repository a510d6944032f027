//  The searcher's side of online backup: `backup` takes a snapshot of a collection
//  on this thread (which owns the catalog) and hands it to a writer thread
//  (actors/qv_backup.c); `get_backup_state` reports its progress. Part of the
//  searcher actor (its thread, its state).
//
//  A backup is a read at strong consistency: the proxy sends it with its newest
//  acknowledged timestamp as the guarantee, so it runs once every write acknowledged
//  before it is applied here. Its snapshot timestamp is tsafe then: every write at or
//  before it is applied, and the backup holds exactly the rows visible at it. Writes
//  go on meanwhile; the backup never waits for them nor they for it.
//  The states of the backups this process runs are recorded in its data directory
//  (qv_backup_state.h) and loaded when it starts, so an id answers after a restart.
#include "qv_searcher_self.h"
#include "qv_backup.h"
#include "qv_backup_state.h"

#include <stdlib.h>

static char *
s_key (uint64_t id, char *buf, size_t size)
{
    snprintf (buf, size, "%llu", (unsigned long long) id);
    return buf;
}

static void
s_backup_free (void **item)
{
    qv_backup_destroy ((qv_backup_t **) item);
}

void
qv_searcher_backups_new (self_t *self)
{
    self->backups = zhashx_new ();
    assert (self->backups);
    zhashx_set_destructor (self->backups, s_backup_free);
    self->backup_last_id = (uint64_t) qv_clock_wall_msec ();
    //  A searcher that writes its own manifests (the embedded server, a writer with
    //  its meta role) records its backups' states; one that adopts another process's
    //  manifests (a searcher process, a segment manager whose meta runs apart) keeps
    //  them in memory
    if (!self->adopts && !(self->backup_states = qv_backup_records_open (self->config->data)))
        qv_warn ("backup states: kept in memory only: cannot open %s/%s: %s",
                 self->config->data, QV_BACKUP_RECORDS_DIR, qv_err_msg ());
    self->backup_records = self->backup_states ? qv_backup_records_load (self->backup_states)
                                               : zhashx_new ();
    assert (self->backup_records);
    //  Ids go on from the newest recorded one, should the clock have gone back
    for (qv_backup_record_t *r = zhashx_first (self->backup_records); r;
         r = zhashx_next (self->backup_records))
        if (r->id > self->backup_last_id)
            self->backup_last_id = r->id;
}

void
qv_searcher_backups_cancel (self_t *self)
{
    for (qv_backup_t *b = zhashx_first (self->backups); b; b = zhashx_next (self->backups))
        qv_backup_cancel (b);
}

void
qv_searcher_backups_destroy (self_t *self)
{
    zhashx_destroy (&self->backups);    //  stops the writers still running
    zhashx_destroy (&self->backup_records);
    qv_store_destroy (&self->backup_states);    //  after the writers that record in it
}

void
qv_searcher_backup (self_t *self, qv_job_t *job)
{
    qv_req_t *req = &job->req;
    qv_collection_t *c = qv_catalog_find (self->catalog, req->collection);
    char to [1024];
    int rc = 0;
    if (!c)
        rc = qv_err (QV_ENOTFOUND, "collection '%s' does not exist", req->collection);
    else
    if (qv_val_strcpy (req->f [QV_F_to], to, sizeof to) || !to [0])
        rc = qv_err (QV_EINVAL, "`to` must name a directory (or an object-store URL) of at "
                     "most %zu bytes on the server's machine", sizeof to - 1);
    else
    if (self->quiet && !self->adopts)
        rc = qv_err (QV_EUNAVAIL, "the server is shutting down");
    uint64_t id = ++self->backup_last_id;
    uint64_t ts = qv_tsafe_get (self->tsafe);
    qv_backup_t *b = NULL;
    if (!rc && !(b = qv_backup_new (c, ts, id, to, self->manifest_done,
                                    self->config->fault_backup_delay_ms,
                                    self->config->stopping, self->backup_states)))
        rc = qv_err (QV_ENOMEM, "out of memory taking the snapshot");
    if (rc) {
        qv_searcher_fail (self, job, rc);
        return;
    }
    char key [32];
    zhashx_insert (self->backups, s_key (id, key, sizeof key), b);
    qv_backup_start (b);            //  a failure to start shows in its state
    uint64_t done, total;
    char error [8];
    qv_backup_state (b, &done, &total, error, sizeof error);
    qv_info ("backup %llu of collection '%s' to %s: %llu rows at ts %llu",
             (unsigned long long) id, c->name, to, (unsigned long long) total,
             (unsigned long long) ts);
    qv_wr_t *w = qv_wr_new ();
    qv_reply_open (w, req->f [QV_F_rid]);
    qv_wr_key (w, "backup_id"); qv_wr_uint (w, id);
    qv_wr_key (w, "ts"); qv_wr_uint (w, ts);
    qv_wr_key (w, "rows_total"); qv_wr_uint (w, total);
    qv_reply_close (w);
    qv_job_reply (job, w, 0);
    qv_wr_destroy (&w);
    qv_searcher_reply (self, job);
}

void
qv_searcher_backup_state (self_t *self, qv_job_t *job)
{
    qv_req_t *req = &job->req;
    uint64_t id = 0;
    qv_val_uint (req->f [QV_F_backup_id], &id);
    char key [32];
    s_key (id, key, sizeof key);
    qv_backup_record_t live;
    const qv_backup_record_t *rec = NULL;
    qv_backup_t *b = zhashx_lookup (self->backups, key);
    if (b) {
        qv_backup_record_of (b, &live);
        rec = &live;
    }
    else
        rec = zhashx_lookup (self->backup_records, key);
    if (!rec) {
        qv_err (QV_ENOTFOUND, "backup %llu is not known here (a server keeps the states of "
                "the last %d backups it ran)", (unsigned long long) id, QV_BACKUP_RECORDS_KEPT);
        qv_searcher_fail (self, job, QV_ENOTFOUND);
        return;
    }
    qv_wr_t *w = qv_wr_new ();
    qv_reply_open (w, req->f [QV_F_rid]);
    qv_backup_record_write (rec, w);
    qv_reply_close (w);
    qv_job_reply (job, w, 0);
    qv_wr_destroy (&w);
    qv_searcher_reply (self, job);
}
