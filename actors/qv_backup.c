//  Online backup: the snapshot, its writer thread, and restore's checks (qv_backup.h).
//
//  DESIGN
//  The snapshot is taken on the searcher's thread at its tsafe: every write at or
//  before it is applied, none after it is visible at it. It links the collection's
//  segments (growing ones too: rows are only appended to them, and rows past the count
//  read now are not read), so neither a compaction, which replaces segments in the
//  catalog, nor garbage collection, which deletes the objects of replaced ones, takes
//  a row from under the writer; the writer reads memory, never the store. A row is
//  written if it was visible at the snapshot timestamp (inserted at or before it, not
//  deleted at or before it, not expired by the collection's TTL then), so writes,
//  deletes and expiries that come while the backup runs do not change it.
#include "qv_backup.h"
#include "qv_backup_state.h"
#include "qv_actor.h"
#include "qv_coll_reply.h"
#include "qv_crc.h"
#include "qv_envelope.h"
#include "qv_merge.h"
#include "qv_rc.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#define S_FILE_BYTES (4u << 20)     //  a rows file closes past this (an insert's size)
#define S_FILE_ROWS 10000           //  ... or this many rows
#define S_MAX_ELEMS (1u << 28)      //  decoding limit of a backup's documents

struct _qv_backup_t {
    uint64_t id;
    uint64_t ts;
    uint64_t cut;                   //  rows inserted before it had expired (TTL) at the
                                    //  snapshot; 0: none
    char collection [QV_NAME_MAX + 1];
    char *to;
    qv_store_t *states;             //  where its state is recorded (borrowed), or NULL
    qv_schema_t *schema;            //  own copy
    qv_segment_t **segs;            //  linked
    uint32_t *rows;                 //  rows of each at the snapshot
    const char **part_of;           //  partition name of each (into parts)
    size_t nsegs;
    char (*parts) [QV_NAME_MAX + 1];
    uint32_t nparts;
    void *describe;                 //  msgpack map: describe_collection at the snapshot
    size_t describe_size;
    int delay_ms;                   //  test hook QV_FAULT_BACKUP_DELAY_MS: per file
    uint64_t total;                 //  rows visible at the snapshot (set before the writer)
    atomic_uint_fast64_t done;
    atomic_int state;               //  qv_backup_state_t; error is set before it fails
    char error [300];
    atomic_bool cancel;
    const atomic_bool *stopping;    //  the server's flag, or NULL
    pthread_t thread;
    bool started;
};

static const char *s_state_names [] = { "executing", "completed", "failed" };

const char *
qv_backup_state_name (qv_backup_state_t state)
{
    return s_state_names [state];
}

//  Whether row of seg is in the snapshot: inserted at or before its ts, not deleted at
//  or before it, not expired then (a row expiring while the backup runs is in it).
static bool
s_in_snapshot (qv_backup_t *self, qv_segment_t *seg, uint32_t row)
{
    return seg->ts [row] <= self->ts && qv_merge_keeps (seg, row, self->ts, self->cut);
}

qv_backup_t *
qv_backup_new (qv_collection_t *c, uint64_t ts, uint64_t id, const char *to,
               uint64_t durable, int delay_ms, const atomic_bool *stopping,
               qv_store_t *states)
{
    qv_backup_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    self->id = id;
    self->ts = ts;
    self->delay_ms = delay_ms;
    self->stopping = stopping;
    snprintf (self->collection, sizeof self->collection, "%s", c->name);
    self->to = strdup (to);
    self->states = states;
    self->schema = qv_schema_dup (c->schema);
    self->segs = calloc (c->nsegs + 1, sizeof *self->segs);
    self->rows = calloc (c->nsegs + 1, sizeof *self->rows);
    self->part_of = calloc (c->nsegs + 1, sizeof *self->part_of);
    self->parts = calloc (c->nparts + 1, sizeof *self->parts);
    qv_wr_t *w = qv_wr_new ();
    if (!self->to || !self->schema || !self->segs || !self->rows || !self->part_of
    ||  !self->parts || !w) {
        qv_wr_destroy (&w);
        qv_backup_destroy (&self);
        return NULL;
    }
    self->nparts = c->nparts;
    for (uint32_t i = 0; i < c->nparts; i++)
        snprintf (self->parts [i], sizeof self->parts [i], "%s", c->parts [i].name);
    self->cut = qv_collection_expire_floor (c, c->ttl_seconds ? qv_clock_wall_msec () : 0);
    for (size_t i = 0; i < c->nsegs; i++) {
        qv_segment_t *seg = c->segs [i];
        uint32_t rows = atomic_load_explicit (&seg->rows, memory_order_acquire);
        self->part_of [i] = self->parts [0];
        for (uint32_t p = 0; p < c->nparts; p++)
            if (c->parts [p].id == seg->partition)
                self->part_of [i] = self->parts [p];
        self->segs [i] = qv_segment_link (seg);
        self->rows [i] = rows;
        for (uint32_t r = 0; r < rows; r++)
            self->total += s_in_snapshot (self, seg, r);
    }
    self->nsegs = c->nsegs;
    qv_wr_map (w, QV_DESCRIBE_FIELDS);
    qv_collection_describe (c, durable, w);
    self->describe = qv_wr_detach (w, &self->describe_size);
    qv_wr_destroy (&w);
    if (!self->describe)
        qv_backup_destroy (&self);
    return self;
}

static bool
s_cancelled (qv_backup_t *self)
{
    return atomic_load (&self->cancel) || (self->stopping && atomic_load (self->stopping));
}

static void
s_fail (qv_backup_t *self, const char *fmt, const char *detail)
{
    snprintf (self->error, sizeof self->error, fmt, self->to, detail);
    atomic_store (&self->state, QV_BACKUP_FAILED);
    qv_error ("backup %llu of collection '%s': %s", (unsigned long long) self->id,
              self->collection, self->error);
}

//  Seals w (its first QV_ENVELOPE_HEADER_SIZE bytes reserved; destroyed) as an object
//  of kind and puts it under key; appends its entry to files (when not NULL). 0 or the
//  code.
static int
s_put (qv_store_t *store, qv_wr_t **w_p, qv_envelope_kind_t kind, const char *key,
       const char *partition, uint64_t rows, qv_wr_t *files)
{
    size_t size;
    void *data = qv_wr_detach (*w_p, &size);
    qv_wr_destroy (w_p);
    if (!data)
        return qv_err (QV_ENOMEM, "out of memory");
    qv_envelope_seal (data, size, kind, QV_BACKUP_VERSION);
    int rc = qv_store_put (store, key, data, size);
    if (rc == 0 && files) {
        qv_wr_map (files, 5);
        qv_wr_str (files, "key"); qv_wr_str (files, key);
        qv_wr_str (files, "partition"); qv_wr_str (files, partition);
        qv_wr_str (files, "rows"); qv_wr_uint (files, rows);
        qv_wr_str (files, "bytes"); qv_wr_uint (files, size);
        qv_wr_str (files, "crc32c"); qv_wr_uint (files, qv_crc32c (data, size));
    }
    free (data);
    return rc;
}

//  A new object's writer: the envelope's room first.
static qv_wr_t *
s_object_new (void)
{
    static const uint8_t room [QV_ENVELOPE_HEADER_SIZE] = { 0 };
    qv_wr_t *w = qv_wr_new ();
    qv_wr_raw (w, room, sizeof room);
    return w;
}

//  Where the rows files go: their count, and the manifest's list of them.
typedef struct {
    qv_store_t *store;
    uint32_t nfiles;
    qv_wr_t *files;                 //  the entries, back to back
} s_out_t;

//  Writes the n rows in rows (msgpack maps back to back) as the next file of
//  partition, and empties rows. 0 or the code.
static int
s_flush (qv_backup_t *self, s_out_t *out, const char *partition, qv_wr_t *rows, uint64_t *n)
{
    if (s_cancelled (self))
        return qv_err (QV_EUNAVAIL, "cancelled: the server is stopping");
    char key [32];
    snprintf (key, sizeof key, "rows/%08u", ++out->nfiles);
    size_t size;
    const void *data = qv_wr_data (rows, &size);
    qv_wr_t *w = s_object_new ();
    qv_wr_map (w, 2);
    qv_wr_str (w, "partition"); qv_wr_str (w, partition);
    qv_wr_str (w, "rows"); qv_wr_array (w, *n);
    qv_wr_raw (w, data, size);
    int rc = s_put (out->store, &w, QV_ENVELOPE_BACKUP_ROWS, key, partition, *n, out->files);
    atomic_fetch_add (&self->done, *n);
    qv_wr_reset (rows);
    *n = 0;
    if (self->delay_ms > 0)
        zclock_sleep (self->delay_ms);
    return rc;
}

//  Writes the rows of partition visible at the snapshot, in files of at most
//  S_FILE_ROWS rows or about S_FILE_BYTES. 0 or the code.
static int
s_write_partition (qv_backup_t *self, s_out_t *out, const char *partition)
{
    qv_collection_t view = { .schema = self->schema };
    qv_output_t fields = { .nfids = 0 };
    int meta = qv_schema_meta (self->schema);
    for (int f = 0; f < self->schema->nfields; f++)
        if (f != meta)
            fields.fids [fields.nfids++] = f;
    fields.meta_all = meta >= 0;
    fields.vectors_bin = true;      //  format 2
    qv_wr_t *rows = qv_wr_new ();
    uint64_t n = 0;
    int rc = 0;
    for (size_t i = 0; i < self->nsegs && rc == 0; i++) {
        if (self->part_of [i] != partition)
            continue;
        for (uint32_t r = 0; r < self->rows [i] && rc == 0; r++) {
            if (!s_in_snapshot (self, self->segs [i], r))
                continue;
            qv_collection_write_row (&view, self->segs [i], r, &fields, true, rows);
            size_t size;
            qv_wr_data (rows, &size);
            if (++n >= S_FILE_ROWS || size >= S_FILE_BYTES)
                rc = s_flush (self, out, partition, rows, &n);
        }
    }
    if (rc == 0 && n > 0)
        rc = s_flush (self, out, partition, rows, &n);
    qv_wr_destroy (&rows);
    return rc;
}

//  Writes the rows files, then the manifest.
static void
s_write (qv_backup_t *self)
{
    qv_store_t *store = qv_store_new (self->to);
    if (!store) {
        s_fail (self, "cannot open %s: %s", qv_err_msg ());
        return;
    }
    void *old;
    size_t old_size;
    if (qv_store_get (store, QV_BACKUP_MANIFEST, &old, &old_size) == 0) {
        free (old);
        s_fail (self, "%s already holds a backup (its manifest exists)%s; back up to a new "
                "directory", "");
        qv_store_destroy (&store);
        return;
    }
    s_out_t out = { store, 0, qv_wr_new () };
    int rc = 0;
    for (uint32_t p = 0; p < self->nparts && rc == 0; p++)
        rc = s_write_partition (self, &out, self->parts [p]);
    if (rc == 0 && s_cancelled (self))
        rc = qv_err (QV_EUNAVAIL, "cancelled: the server is stopping");
    if (rc == 0) {
        //  The manifest, last: a backup without one is incomplete
        qv_wr_t *w = s_object_new ();
        size_t fsize;
        const void *fdata = qv_wr_data (out.files, &fsize);
        qv_wr_map (w, 9);
        qv_wr_str (w, "format"); qv_wr_str (w, QV_BACKUP_FORMAT);
        qv_wr_str (w, "version"); qv_wr_uint (w, QV_BACKUP_VERSION);
        qv_wr_str (w, "collection"); qv_wr_str (w, self->collection);
        qv_wr_str (w, "snapshot_ts"); qv_wr_uint (w, self->ts);
        qv_wr_str (w, "rows"); qv_wr_uint (w, atomic_load (&self->done));
        qv_wr_str (w, "created_ms"); qv_wr_int (w, qv_clock_wall_msec ());
        qv_wr_str (w, "describe"); qv_wr_raw (w, self->describe, self->describe_size);
        qv_wr_str (w, "partitions"); qv_wr_array (w, self->nparts);
        for (uint32_t p = 0; p < self->nparts; p++)
            qv_wr_str (w, self->parts [p]);
        qv_wr_str (w, "files"); qv_wr_array (w, out.nfiles);
        qv_wr_raw (w, fdata, fsize);
        rc = s_put (store, &w, QV_ENVELOPE_BACKUP, QV_BACKUP_MANIFEST, NULL, 0, NULL);
    }
    qv_wr_destroy (&out.files);
    qv_store_destroy (&store);
    if (rc)
        s_fail (self, "writing %s: %s", qv_err_msg ());
    else {
        atomic_store (&self->state, QV_BACKUP_COMPLETED);
        qv_info ("backup %llu of collection '%s' completed: %llu rows at ts %llu in %s",
                 (unsigned long long) self->id, self->collection,
                 (unsigned long long) atomic_load (&self->done), (unsigned long long) self->ts,
                 self->to);
    }
}

//  Records the backup's state in states (if not NULL); a failure is logged: the backup
//  goes on, its state kept in memory only.
static void
s_record (qv_backup_t *self, qv_store_t *states)
{
    if (!states)
        return;
    qv_backup_record_t rec;
    qv_backup_record_of (self, &rec);
    if (qv_backup_record_put (states, &rec))
        qv_warn ("backup %llu: cannot record its state (%s): %s", (unsigned long long) self->id,
                 qv_backup_state_name (rec.state), qv_err_msg ());
}

//  The writer's thread. The snapshot's segments go when it ends, not when the state is
//  forgotten: segments retired meanwhile would stay in memory until the server stops.
static void *
s_run (void *arg)
{
    qv_backup_t *self = arg;
    qv_actor_background ("backup");
    //  Its state recorded before and after, so that get_backup_state answers for it
    //  after a restart (a record left `executing` is read back as failed)
    s_record (self, self->states);
    s_write (self);
    s_record (self, self->states);
    for (size_t i = 0; i < self->nsegs; i++)
        qv_segment_unlink (&self->segs [i]);
    return NULL;
}

int
qv_backup_start (qv_backup_t *self)
{
    if (pthread_create (&self->thread, NULL, s_run, self) != 0) {
        s_fail (self, "%s: %s", "cannot start a thread");
        return QV_ENOMEM;
    }
    self->started = true;
    return 0;
}

void
qv_backup_cancel (qv_backup_t *self)
{
    atomic_store (&self->cancel, true);
}

void
qv_backup_destroy (qv_backup_t **self_p)
{
    qv_backup_t *self = *self_p;
    if (!self)
        return;
    atomic_store (&self->cancel, true);
    if (self->started)
        pthread_join (self->thread, NULL);
    for (size_t i = 0; self->segs && i < self->nsegs; i++)
        qv_segment_unlink (&self->segs [i]);
    free (self->segs);
    free (self->rows);
    free (self->part_of);
    free (self->parts);
    free (self->describe);
    qv_schema_destroy (&self->schema);
    free (self->to);
    free (self);
    *self_p = NULL;
}

qv_backup_state_t
qv_backup_state (qv_backup_t *self, uint64_t *done, uint64_t *total, char *error, size_t size)
{
    qv_backup_state_t state = (qv_backup_state_t) atomic_load (&self->state);
    *done = atomic_load (&self->done);
    *total = state == QV_BACKUP_COMPLETED ? *done : self->total;
    snprintf (error, size, "%s", state == QV_BACKUP_FAILED ? self->error : "");
    return state;
}

void
qv_backup_record_of (qv_backup_t *self, qv_backup_record_t *rec)
{
    memset (rec, 0, sizeof *rec);
    rec->id = self->id;
    snprintf (rec->collection, sizeof rec->collection, "%s", self->collection);
    snprintf (rec->to, sizeof rec->to, "%s", self->to);
    rec->ts = self->ts;
    rec->state = qv_backup_state (self, &rec->done, &rec->total, rec->error, sizeof rec->error);
    rec->updated_ms = qv_clock_wall_msec ();
}

uint64_t
qv_backup_ts (const qv_backup_t *self)
{
    return self->ts;
}

const char *
qv_backup_collection (const qv_backup_t *self)
{
    return self->collection;
}

//  Reads key of store and opens its envelope of kind; *doc gets the payload's
//  document. With entry, the object's size and CRC32C must be the entry's.
static int
s_read_object (qv_store_t *store, const char *where, const char *key,
               qv_envelope_kind_t kind, const qv_val_t *entry, qv_doc_t **doc)
{
    void *data;
    size_t size;
    int rc = qv_store_get (store, key, &data, &size);
    if (rc == QV_ENOTFOUND)
        return qv_err (QV_ENOTFOUND, "backup %s: %s is missing%s", where, key,
                       kind == QV_ENVELOPE_BACKUP ? " (not a backup, or an incomplete one: "
                       "a backup writes its manifest last)" : "");
    if (rc)
        return qv_err (rc, "backup %s: cannot read %s: %s", where, key, qv_err_msg ());
    if (entry) {
        uint64_t bytes = 0, crc = 0;
        qv_val_uint (qv_val_get (entry, "bytes"), &bytes);
        qv_val_uint (qv_val_get (entry, "crc32c"), &crc);
        if (bytes != size) {
            free (data);
            return qv_err (QV_ECORRUPT, "backup %s: file %s is damaged: %zu bytes, the "
                           "manifest says %llu", where, key, size, (unsigned long long) bytes);
        }
        if (crc != qv_crc32c (data, size)) {
            free (data);
            return qv_err (QV_ECORRUPT, "backup %s: file %s is damaged: its CRC32C does not "
                           "match the manifest's", where, key);
        }
    }
    char name [300];
    snprintf (name, sizeof name, "backup %s: file %s", where, key);
    qv_envelope_t env;
    rc = qv_envelope_open (name, data, size, kind, QV_BACKUP_VERSION, &env);
    if (rc == 0) {
        *doc = qv_doc_parse (env.payload, env.size, S_MAX_ELEMS, &rc);
        if (!*doc)
            rc = qv_err (QV_ECORRUPT, "backup %s: file %s is damaged: %s", where, key,
                         qv_err_msg ());
    }
    free (data);
    return rc;
}

int
qv_backup_verify (qv_store_t *store, const char *where, qv_doc_t **manifest)
{
    qv_doc_t *doc = NULL;
    int rc = s_read_object (store, where, QV_BACKUP_MANIFEST, QV_ENVELOPE_BACKUP, NULL, &doc);
    if (rc)
        return rc;
    const qv_val_t *root = qv_doc_root (doc);
    const qv_val_t *files = qv_val_get (root, "files");
    if (!qv_val_is (qv_val_get (root, "format"), QV_BACKUP_FORMAT)
    ||  !qv_val_get (root, "describe") || qv_val_type (files) != QV_V_ARRAY) {
        qv_doc_destroy (&doc);
        return qv_err (QV_ECORRUPT, "backup %s: its manifest is not a Quiver backup's", where);
    }
    for (size_t i = 0; i < qv_val_len (files) && rc == 0; i++) {
        const qv_val_t *entry = qv_val_at (files, i);
        qv_doc_t *rows = NULL;
        rc = qv_backup_read (store, where, entry, &rows);
        qv_doc_destroy (&rows);
    }
    if (rc)
        qv_doc_destroy (&doc);
    *manifest = doc;
    return rc;
}

int
qv_backup_read (qv_store_t *store, const char *where, const qv_val_t *entry, qv_doc_t **rows)
{
    char key [64];
    if (qv_val_strcpy (qv_val_get (entry, "key"), key, sizeof key))
        return qv_err (QV_ECORRUPT, "backup %s: its manifest lists a file without a key", where);
    int rc = s_read_object (store, where, key, QV_ENVELOPE_BACKUP_ROWS, entry, rows);
    if (rc == 0 && qv_val_type (qv_val_get (qv_doc_root (*rows), "rows")) != QV_V_ARRAY) {
        qv_doc_destroy (rows);
        rc = qv_err (QV_ECORRUPT, "backup %s: file %s is damaged: no rows", where, key);
    }
    return rc;
}
