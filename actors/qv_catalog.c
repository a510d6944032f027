//  The catalog: collections, segments, primary keys; record application (live and
//  replay share it) and manifests. Snapshots are index/shard/qv_collection.c, replies
//  actors/qv_coll_reply.c.
//
//  DESIGN
//  Every change arrives as a WAL record, live or replayed, and goes through
//  qv_catalog_apply. Replay is idempotent against the loaded manifest: a create of a
//  known id is skipped, an insert into a flushed segment is skipped (its rows are in
//  the segment object), and deletes compare timestamps. A primary key is live at most
//  once: an insert of a live key marks the old row deleted at the new row's timestamp.
//  Readers use snapshots (segments linked, visible row counts, a timestamp), so the
//  owner thread appends and deletes while workers scan.
#include "qv_catalog.h"
#include "qv_manifest.h"
#include "qv_merge.h"
#include "qv_envelope.h"
#include "qv_rc.h"
#include "qv_segfile.h"
#include "qv_segload.h"
#include "qv_store.h"
#include "qv_users.h"

#include <stdlib.h>
#include <string.h>

struct _qv_catalog_t {
    zlistx_t *colls;                //  qv_collection_t *, owned
    uint32_t next_coll_id;
    uint64_t next_seg_id;
    uint64_t applied_seq;           //  last WAL seq applied
    bool partial;                   //  ... of which records are still to be applied
    uint64_t max_ts;
    uint32_t manifest_next_coll;    //  next_coll_id of the loaded manifest
    uint64_t manifest_version;      //  last manifest written or loaded
    uint64_t replay_from;           //  checkpoint recorded in the loaded manifest
    uint64_t stream_seq;            //  highest JetStream stream sequence applied
    uint64_t epoch;                 //  the writer epoch manifests are written with
    uint64_t manifest_epoch;        //  the writer epoch of the manifest recovered
    bool index_records;             //  recovery keeps vector indexes as records only
    qv_users_t *users;              //  users, roles, privileges (QV_REC_USER)
};

static int
s_pk_equal (void *arg, qv_pkloc_t loc, const void *key, size_t len)
{
    (void) arg;
    qv_segment_t *seg = loc.seg;
    const qv_bytes_t *b = qv_col_var (&seg->batch->cols [seg->schema->pk], loc.row);
    return b->len == len && memcmp (b->ptr, key, len) == 0;
}

static void
s_collection_destroy (qv_collection_t **self_p)
{
    qv_collection_t *self = *self_p;
    if (!self)
        return;
    for (size_t i = 0; i < self->nsegs; i++)
        qv_segment_unlink (&self->segs [i]);
    free (self->segs);
    qv_pkindex_destroy (&self->pk);
    qv_schema_destroy (&self->schema);
    free (self->description);
    for (int i = 0; i < QV_FIELDS_MAX; i++)
        free (self->index_defs [i]);
    free (self->parts);
    free (self->retired);
    free (self);
    *self_p = NULL;
}

static void
s_collection_free (void **item)
{
    s_collection_destroy ((qv_collection_t **) item);
}

qv_catalog_t *
qv_catalog_new (void)
{
    qv_catalog_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    self->colls = zlistx_new ();
    zlistx_set_destructor (self->colls, s_collection_free);
    self->users = qv_users_new ();
    if (!self->users) {
        zlistx_destroy (&self->colls);
        free (self);
        return NULL;
    }
    self->next_coll_id = 1;
    self->next_seg_id = 1;
    return self;
}

void
qv_catalog_destroy (qv_catalog_t **self_p)
{
    if (*self_p) {
        zlistx_destroy (&(*self_p)->colls);
        qv_users_destroy (&(*self_p)->users);
        free (*self_p);
        *self_p = NULL;
    }
}

qv_collection_t *
qv_catalog_find (qv_catalog_t *self, const char *name)
{
    for (qv_collection_t *c = zlistx_first (self->colls); c; c = zlistx_next (self->colls))
        if (strcmp (c->name, name) == 0)
            return c;
    return NULL;
}

qv_collection_t *
qv_catalog_find_id (qv_catalog_t *self, uint32_t id)
{
    for (qv_collection_t *c = zlistx_first (self->colls); c; c = zlistx_next (self->colls))
        if (c->id == id)
            return c;
    return NULL;
}

static int
s_cmp_name (const void *a, const void *b)
{
    return strcmp ((*(qv_collection_t **) a)->name, (*(qv_collection_t **) b)->name);
}

qv_collection_t **
qv_catalog_list (qv_catalog_t *self, size_t *n)
{
    *n = zlistx_size (self->colls);
    qv_collection_t **list = malloc ((*n + 1) * sizeof *list);
    size_t i = 0;
    for (qv_collection_t *c = zlistx_first (self->colls); c; c = zlistx_next (self->colls))
        list [i++] = c;
    qsort (list, *n, sizeof *list, s_cmp_name);
    return list;
}

const qv_schema_t *
qv_catalog_schema_of (void *arg, uint32_t coll_id)
{
    qv_collection_t *c = qv_catalog_find_id ((qv_catalog_t *) arg, coll_id);
    return c ? c->schema : NULL;
}

qv_cdc_t *
qv_catalog_change_event (qv_catalog_t *self, const qv_record_t *rec, uint64_t seq, bool with_rows)
{
    if (rec->type == QV_REC_SEAL || rec->type == QV_REC_COMPACT)
        return NULL;                //  the log's own bookkeeping, no change to the data
    qv_collection_t *c = qv_catalog_find_id (self, rec->coll_id);
    const char *name = rec->type == QV_REC_CREATE_COLLECTION ? rec->name : c ? c->name : NULL;
    qv_cdc_t *ev = name ? qv_cdc_from_record (rec, name, seq, with_rows) : NULL;
    bool named = (rec->type == QV_REC_INSERT && rec->partition != 0 && rec->npsegs == 0)
              || (rec->type == QV_REC_DELETE && rec->in_partition);
    for (uint32_t i = 0; ev && c && named && i < c->nparts; i++)
        if (c->parts [i].id == rec->partition)
            snprintf (ev->partition, sizeof ev->partition, "%s", c->parts [i].name);
    return ev;
}

static int
s_add_partition (qv_collection_t *c, uint32_t id, const char *name)
{
    qv_partition_t *parts = realloc (c->parts, (c->nparts + 1) * sizeof *parts);
    if (!parts)
        return qv_err (QV_ENOMEM, "out of memory");
    c->parts = parts;
    parts [c->nparts].id = id;
    snprintf (parts [c->nparts].name, sizeof parts [c->nparts].name, "%s", name);
    c->nparts++;
    if (id >= c->next_part)
        c->next_part = id + 1;
    return 0;
}



//  The partitions a new collection starts with: `_default`, or for a partition-key
//  collection its internal partitions `_default_<i>`, whose ids are the hash values.
static int
s_initial_partitions (qv_collection_t *c)
{
    if (c->part_key < 0)
        return s_add_partition (c, 0, QV_PARTITION_DEFAULT);
    for (uint32_t i = 0; i < c->num_partitions; i++) {
        char name [32];
        qv_partition_keyed_name (i, name, sizeof name);
        if (s_add_partition (c, i, name))
            return QV_ENOMEM;
    }
    return 0;
}

//  alter_collection: the properties the record names take its values.
static int
s_apply_alter (qv_collection_t *c, const qv_record_t *rec)
{
    if (rec->alters & QV_ALTER_DESCRIPTION) {
        char *desc = strdup (rec->description ? rec->description : "");
        if (!desc)
            return qv_err (QV_ENOMEM, "out of memory");
        free (c->description);
        c->description = desc;
    }
    if (rec->alters & QV_ALTER_TTL)
        c->ttl_seconds = rec->ttl_seconds;
    if (rec->alters & QV_ALTER_CONSISTENCY)
        memcpy (c->consistency, rec->consistency, sizeof c->consistency);
    return 0;
}

static qv_collection_t *
s_collection_new (const qv_record_t *rec)
{
    qv_collection_t *c = calloc (1, sizeof *c);
    if (!c)
        return NULL;
    c->id = rec->coll_id;
    memcpy (c->name, rec->name, sizeof c->name);
    c->schema = qv_schema_dup (rec->schema);
    c->shards = rec->shards;
    memcpy (c->consistency, rec->consistency, sizeof c->consistency);
    c->description = strdup (rec->description ? rec->description : "");
    c->ttl_seconds = rec->ttl_seconds;
    c->created_ts = rec->ts;
    c->pk = qv_pkindex_new (s_pk_equal, NULL);
    if (!c->schema || !c->description || !c->pk) {
        s_collection_destroy (&c);
        return NULL;
    }
    //  Only a create carrying num_partitions makes a partition-key collection: one
    //  logged before partitions existed keeps its rows in `_default`.
    c->part_key = rec->num_partitions ? qv_partition_key_field (c->schema) : -1;
    if (c->part_key >= 0)
        c->num_partitions = rec->num_partitions;
    if (s_initial_partitions (c))
        s_collection_destroy (&c);
    return c;
}

static int
s_add_segment (qv_collection_t *c, qv_segment_t *seg)
{
    if (c->nsegs == c->segs_cap) {
        size_t cap = c->segs_cap ? c->segs_cap * 2 : 8;
        qv_segment_t **segs = realloc (c->segs, cap * sizeof *segs);
        if (!segs)
            return QV_ENOMEM;
        c->segs = segs;
        c->segs_cap = cap;
    }
    c->segs [c->nsegs++] = seg;
    return 0;
}

static qv_segment_t *
s_find_segment (qv_collection_t *c, uint64_t seg_id)
{
    for (size_t i = c->nsegs; i-- > 0; )
        if (c->segs [i]->id == seg_id)
            return c->segs [i];
    return NULL;
}

static bool
s_retired (qv_collection_t *c, uint64_t seg_id)
{
    for (size_t i = 0; i < c->nretired; i++)
        if (c->retired [i] == seg_id)
            return true;
    return false;
}

static int
s_retire (qv_collection_t *c, uint64_t seg_id)
{
    uint64_t *retired = realloc (c->retired, (c->nretired + 1) * sizeof *retired);
    if (!retired)
        return QV_ENOMEM;
    c->retired = retired;
    c->retired [c->nretired++] = seg_id;
    return 0;
}

//  The pk-index key of row r of batch b.
static uint64_t
s_batch_key (const qv_batch_t *b, uint32_t r, const void **str, size_t *len)
{
    const qv_col_t *col = &b->cols [b->schema->pk];
    if (b->schema->fields [b->schema->pk].type == QV_INT64) {
        *str = NULL;
        *len = 0;
        return (uint64_t) qv_col_i64 (col, r);
    }
    *str = qv_col_var (col, r)->ptr;
    *len = qv_col_var (col, r)->len;
    return qv_pkindex_hash (*str, *len);
}

//  Appends batch b (rows of one partition, logged at ts) to segment seg_id.
static int
s_insert_rows (qv_catalog_t *self, qv_collection_t *c, qv_batch_t *b, uint64_t ts,
               uint64_t seg_id, uint32_t shard, uint32_t partition, uint64_t seq,
               size_t seg_max_bytes)
{
    qv_segment_t *seg = s_find_segment (c, seg_id);
    if ((seg && seg->state == QV_SEG_FLUSHED) || (!seg && s_retired (c, seg_id)))
        return 0;                   //  replay of rows already in a flushed segment
    if (seg && seg->state == QV_SEG_SEALED && seg->first_seq > 0 && seq == 0)
        return qv_err (QV_ERR, "segment %llu is sealed", (unsigned long long) seg_id);
    if (seg && seg->partition != partition)
        return qv_err (QV_ERR, "segment %llu belongs to another partition", (unsigned long long) seg_id);
    if (!seg) {
        seg = qv_segment_new (c->schema, seg_id, c->id, shard,
                              qv_segment_cap_rows (c->schema, b->n, seg_max_bytes));
        if (!seg || s_add_segment (c, seg)) {
            qv_segment_unlink (&seg);
            return qv_err (QV_ENOMEM, "out of memory for a new segment");
        }
        seg->partition = partition;
        seg->first_seq = seq;
        if (seg_id >= self->next_seg_id)
            self->next_seg_id = seg_id + 1;
    }
    //  Keys before the append: var values move into the segment.
    uint64_t *keys = malloc ((size_t) b->n * sizeof (uint64_t));
    if (!keys)
        return qv_err (QV_ENOMEM, "out of memory");
    for (uint32_t r = 0; r < b->n; r++) {
        const void *str;
        size_t len;
        keys [r] = s_batch_key (b, r, &str, &len);
    }
    int64_t first = qv_segment_append (seg, b, ts);
    if (first < 0) {
        free (keys);
        return qv_err (QV_ENOMEM, "out of memory appending %u rows", b->n);
    }
    bool varchar = c->schema->fields [c->schema->pk].type == QV_VARCHAR;
    const qv_col_t *pkcol = &seg->batch->cols [c->schema->pk];
    for (uint32_t r = 0; r < b->n; r++) {
        uint32_t row = (uint32_t) first + r;
        const void *str = varchar ? qv_col_var (pkcol, row)->ptr : NULL;
        size_t len = varchar ? qv_col_var (pkcol, row)->len : 0;
        qv_pkloc_t old;
        if (qv_pkindex_find (c->pk, keys [r], str, len, &old)) {
            qv_segment_t *os = old.seg;
            if (os->ts [old.row] > ts) {
                //  A newer row already holds the key (replay across partitions).
                if (qv_segment_delete (seg, row, os->ts [old.row])) {
                    free (keys);
                    return QV_ENOMEM;
                }
                continue;
            }
            if (qv_segment_delete (os, old.row, ts)) {
                free (keys);
                return QV_ENOMEM;
            }
        }
        else
            c->live_rows++;
        qv_pkloc_t loc = { seg, row };
        if (qv_pkindex_put (c->pk, keys [r], str, len, loc)) {
            free (keys);
            return qv_err (QV_ENOMEM, "out of memory in the primary-key index");
        }
    }
    free (keys);
    return 0;
}

//  An insert into a partition-key collection: each row goes to the partition its key
//  hashes to, in the segment the record names for that partition. The record stays
//  one WAL entry, so the batch is applied whole (replay redoes the same split).
static int
s_insert_keyed (qv_catalog_t *self, qv_collection_t *c, qv_record_t *rec, uint64_t seq,
                size_t seg_max_bytes)
{
    qv_batch_t *b = rec->batch;
    uint32_t *part = malloc ((b->n + 1) * sizeof (uint32_t));
    if (!part)
        return qv_err (QV_ENOMEM, "out of memory");
    int rc = 0;
    for (uint32_t r = 0; r < b->n && rc == 0; r++) {
        part [r] = qv_partition_of_row (b, c->part_key, r, c->num_partitions);
        bool named = false;
        for (uint32_t i = 0; i < rec->npsegs && !named; i++)
            named = rec->psegs [i].partition == part [r];
        if (!named)
            rc = qv_err (QV_ERR, "insert record names no segment for partition %u of row %u", part [r], r);
    }
    for (uint32_t i = 0; i < rec->npsegs && rc == 0; i++) {
        uint32_t p = rec->psegs [i].partition, n = 0;
        for (uint32_t r = 0; r < b->n; r++)
            n += part [r] == p;
        qv_batch_t *sub = n ? qv_batch_new (b->schema, n) : NULL;
        if (n && !sub) {
            rc = qv_err (QV_ENOMEM, "out of memory");
            break;
        }
        for (uint32_t r = 0; r < b->n && rc == 0; r++)
            if (part [r] == p && qv_batch_copy_row (sub, sub->n++, b, r, true))
                rc = qv_err (QV_ENOMEM, "out of memory");
        if (n && rc == 0)
            rc = s_insert_rows (self, c, sub, rec->ts, rec->psegs [i].seg_id, rec->shard, p,
                                seq, seg_max_bytes);
        qv_batch_destroy (&sub);
    }
    free (part);
    return rc;
}

//  Deletes the live row of a key at ts, unless a newer write holds the key or the row
//  lives outside partition (-1: any). 1 if a row was deleted, 0 if not, or QV_ENOMEM.
static int
s_delete_key (qv_collection_t *c, uint64_t h, const void *str, size_t len, uint64_t ts,
              int64_t partition)
{
    qv_pkloc_t loc;
    if (!qv_pkindex_find (c->pk, h, str, len, &loc))
        return 0;
    qv_segment_t *seg = loc.seg;
    if (seg->ts [loc.row] > ts || (partition >= 0 && seg->partition != partition))
        return 0;
    if (qv_segment_delete (seg, loc.row, ts))
        return QV_ENOMEM;
    qv_pkindex_remove (c->pk, h, str, len);
    c->live_rows--;
    return 1;
}

static int
s_loc_cmp (const void *a, const void *b)
{
    const qv_pkloc_t *x = a, *y = b;
    if (x->seg != y->seg)
        return (uintptr_t) x->seg < (uintptr_t) y->seg ? -1 : 1;
    return x->row < y->row ? -1 : x->row > y->row;
}

uint64_t
qv_catalog_live_keys (qv_catalog_t *self, const qv_record_t *rec)
{
    qv_collection_t *c = qv_catalog_find_id (self, rec->coll_id);
    if (!c || !rec->keys.n)
        return 0;
    bool varchar = rec->keys.strs != NULL;
    if (!varchar && c->schema->fields [c->schema->pk].type != QV_INT64)
        return 0;
    qv_pkloc_t *locs = malloc ((size_t) rec->keys.n * sizeof *locs);
    if (!locs)
        return 0;
    uint32_t n = 0;
    for (uint32_t i = 0; i < rec->keys.n; i++) {
        const void *str = varchar ? rec->keys.strs [i].ptr : NULL;
        size_t len = varchar ? rec->keys.strs [i].len : 0;
        uint64_t h = str ? qv_pkindex_hash (str, len) : (uint64_t) rec->keys.ints [i];
        qv_pkloc_t loc;
        if (qv_pkindex_find (c->pk, h, str, len, &loc)
        &&  (!rec->in_partition || ((qv_segment_t *) loc.seg)->partition == rec->partition))
            locs [n++] = loc;
    }
    //  A key listed twice names its row twice
    qsort (locs, n, sizeof *locs, s_loc_cmp);
    uint64_t live = 0;
    for (uint32_t i = 0; i < n; i++)
        live += i == 0 || s_loc_cmp (&locs [i - 1], &locs [i]) != 0;
    free (locs);
    return live;
}

static int
s_apply_insert (qv_catalog_t *self, qv_collection_t *c, qv_record_t *rec, uint64_t seq,
                size_t seg_max_bytes, uint32_t *count)
{
    *count = rec->batch->n;
    if (c->part_key >= 0)
        return s_insert_keyed (self, c, rec, seq, seg_max_bytes);
    if (!qv_collection_has_partition (c, rec->partition)) {
        //  Replay, after a manifest written since, of rows written into a partition
        //  dropped later (nothing is logged into a partition after its drop, and ids
        //  are never reused): the rows went with the partition, but the rows of their
        //  keys they replaced in other partitions stay replaced, or a key moved into
        //  the partition before its drop would come back.
        for (uint32_t r = 0; r < rec->batch->n; r++) {
            const void *str;
            size_t len;
            uint64_t h = s_batch_key (rec->batch, r, &str, &len);
            if (s_delete_key (c, h, str, len, rec->ts, -1) < 0)
                return QV_ENOMEM;
        }
        return qv_err (QV_ENOTFOUND, "partition was dropped");
    }
    return s_insert_rows (self, c, rec->batch, rec->ts, rec->seg_id, rec->shard, rec->partition,
                          seq, seg_max_bytes);
}

static int
s_apply_delete (qv_collection_t *c, qv_record_t *rec, uint32_t *count)
{
    *count = 0;
    for (uint32_t i = 0; i < rec->keys.n; i++) {
        const void *str = rec->keys.strs ? rec->keys.strs [i].ptr : NULL;
        size_t len = rec->keys.strs ? rec->keys.strs [i].len : 0;
        uint64_t h = str ? qv_pkindex_hash (str, len) : (uint64_t) rec->keys.ints [i];
        if (!str && c->schema->fields [c->schema->pk].type != QV_INT64)
            continue;
        int rc = s_delete_key (c, h, str, len, rec->ts, rec->in_partition ? (int64_t) rec->partition : -1);
        if (rc < 0)
            return rc;
        *count += (uint32_t) rc;
    }
    return 0;
}

static int
s_apply_create_partition (qv_collection_t *c, qv_record_t *rec)
{
    if (c->part_key >= 0)
        return qv_err (QV_EINVAL, "collection '%s' uses partition key '%s'; its partitions are internal",
                       c->name, c->schema->fields [c->part_key].name);
    if (qv_collection_has_partition (c, rec->partition))
        return 0;                   //  replay of a create the manifest has
    if (rec->partition < c->next_part)
        return qv_err (QV_ENOTFOUND, "partition was dropped");   //  replay of a create dropped since
    if (qv_collection_partition (c, rec->name))
        return qv_err (QV_EEXIST, "partition '%s' already exists in collection '%s'", rec->name, c->name);
    if (c->nparts >= QV_PARTITIONS_MAX)
        return qv_err (QV_ELIMIT, "collection '%s' has %u partitions, the limit", c->name, c->nparts);
    return s_add_partition (c, rec->partition, rec->name);
}

//  Forgets the live rows of a segment leaving the collection: primary keys and counts.
static void
s_forget_rows (qv_collection_t *c, qv_segment_t *seg)
{
    bool varchar = c->schema->fields [c->schema->pk].type == QV_VARCHAR;
    const qv_col_t *pkcol = &seg->batch->cols [c->schema->pk];
    uint32_t rows = atomic_load (&seg->rows);
    for (uint32_t r = 0; r < rows; r++) {
        if (qv_segment_deleted_at (seg, r))
            continue;
        const void *str = varchar ? qv_col_var (pkcol, r)->ptr : NULL;
        size_t len = varchar ? qv_col_var (pkcol, r)->len : 0;
        uint64_t h = qv_segment_pk_hash (seg, r);
        qv_pkloc_t loc;
        if (qv_pkindex_find (c->pk, h, str, len, &loc) && loc.seg == seg && loc.row == r) {
            qv_pkindex_remove (c->pk, h, str, len);
            c->live_rows--;
        }
    }
}

//  Drops a partition: its segments leave the collection (readers holding a snapshot
//  keep their links); their objects are left to garbage collection, as a dropped
//  collection's are.
static int
s_apply_drop_partition (qv_collection_t *c, qv_record_t *rec)
{
    if (c->part_key >= 0)
        return qv_err (QV_EINVAL, "collection '%s' uses partition key '%s'; its partitions are internal",
                       c->name, c->schema->fields [c->part_key].name);
    if (rec->partition == 0)
        return qv_err (QV_EINVAL, "the '_default' partition cannot be dropped");
    uint32_t i = 0;
    while (i < c->nparts && c->parts [i].id != rec->partition)
        i++;
    if (i == c->nparts)
        return qv_err (QV_ENOTFOUND, "partition '%s' does not exist in collection '%s'", rec->name, c->name);
    size_t keep = 0;
    for (size_t j = 0; j < c->nsegs; j++) {
        qv_segment_t *seg = c->segs [j];
        if (seg->partition != rec->partition) {
            c->segs [keep++] = seg;
            continue;
        }
        s_forget_rows (c, seg);
        qv_segment_unlink (&seg);
    }
    c->nsegs = keep;
    memmove (&c->parts [i], &c->parts [i + 1], (c->nparts - i - 1) * sizeof *c->parts);
    c->nparts--;
    return 0;
}

static int
s_apply_index (qv_collection_t *c, qv_record_t *rec)
{
    int fi = qv_schema_find (c->schema, rec->index.field);
    if (fi < 0)
        return qv_err (QV_EINVAL, "collection '%s' has no field '%s'", c->name, rec->index.field);
    if (rec->type == QV_REC_CREATE_INDEX) {
        int rc = qv_scalar_check (rec->index.type, &c->schema->fields [fi]);
        if (rc)
            return rc;
        if (c->index_defs [fi]) {
            if (c->index_versions [fi] == rec->ts)
                return 0;           //  replay of a create the manifest has
            return qv_err (QV_EEXIST, "field '%s' of collection '%s' already has a %s index; drop it first",
                           rec->index.field, c->name, c->index_defs [fi]->type);
        }
        if (rec->ts <= c->index_versions [fi])
            return 0;               //  replay of a create dropped since
        c->index_defs [fi] = malloc (sizeof (qv_index_def_t));
        if (!c->index_defs [fi])
            return qv_err (QV_ENOMEM, "out of memory");
        *c->index_defs [fi] = rec->index;
        c->index_versions [fi] = rec->ts;
        c->index_errors [fi][0] = 0;
        return 0;
    }
    if (!c->index_defs [fi])
        return qv_err (QV_ENOTFOUND, "field '%s' of collection '%s' has no index", rec->index.field, c->name);
    free (c->index_defs [fi]);
    c->index_defs [fi] = NULL;
    c->index_versions [fi] = rec->ts;   //  later replays of older creates are stale
    for (size_t i = 0; i < c->nsegs; i++)
        qv_segidx_unlink (&c->segs [i]->indexes [fi]);
    return 0;
}

//  A compaction: the flushed segments rec->olds leave the collection for the segment
//  merged from the rows the compaction keeps (qv_segment_merge, the same rows in the
//  same order as the compactor that wrote its object), which takes the first one's
//  place. Keys whose live row moved point to its new place; rows the compaction drops
//  because they expired are no longer live. Readers holding a snapshot keep their
//  links to the old segments.
static int
s_apply_compact (qv_collection_t *c, qv_record_t *rec)
{
    bool done = s_find_segment (c, rec->seg_id) != NULL;
    for (uint32_t i = 0; i < rec->nolds && !done; i++)
        done = s_retired (c, rec->olds [i]);
    if (done)
        return 0;                   //  replay of a compaction the manifest has
    qv_segment_t **olds = calloc (rec->nolds, sizeof *olds);
    if (!olds)
        return qv_err (QV_ENOMEM, "out of memory");
    size_t first = c->nsegs;
    for (uint32_t i = 0; i < rec->nolds; i++) {
        for (size_t j = 0; j < c->nsegs && !olds [i]; j++)
            if (c->segs [j]->id == rec->olds [i]) {
                olds [i] = c->segs [j];
                first = j < first ? j : first;
            }
        //  (Flushed where the record was made; a replay that starts before the manifest
        //  holding it has its rows all the same: every insert into it came before)
        if (!olds [i] || olds [i]->partition != rec->partition || olds [i]->shard != rec->shard) {
            free (olds);
            return qv_err (QV_ENOTFOUND, "compaction %llu names segment %llu, which is not a "
                           "segment of collection '%s' in its shard and partition",
                           (unsigned long long) rec->seg_id, (unsigned long long) rec->olds [i], c->name);
        }
    }
    qv_segment_t *merged = qv_segment_merge (olds, rec->nolds, rec->seg_id, rec->snap_ts,
                                             rec->expire_cut);
    if (!merged) {
        free (olds);
        return qv_err (QV_ENOMEM, "out of memory merging %u segments", rec->nolds);
    }
    if (atomic_load (&merged->rows) != rec->rows) {
        qv_segment_unlink (&merged);
        free (olds);
        return qv_err (QV_ECORRUPT, "compaction %llu keeps %llu rows here, %llu where it was made",
                       (unsigned long long) rec->seg_id, (unsigned long long) atomic_load (&merged->rows),
                       (unsigned long long) rec->rows);
    }
    merged->state = QV_SEG_FLUSHED;
    merged->epoch = rec->epoch;
    //  Keys follow their rows (the merge's order)
    bool varchar = c->schema->fields [c->schema->pk].type == QV_VARCHAR;
    uint32_t out = 0;
    for (uint32_t i = 0; i < rec->nolds; i++) {
        qv_segment_t *old = olds [i];
        const qv_col_t *pkcol = &old->batch->cols [c->schema->pk];
        uint32_t rows = atomic_load (&old->rows);
        for (uint32_t r = 0; r < rows; r++) {
            bool kept = qv_merge_keeps (old, r, rec->snap_ts, rec->expire_cut);
            const void *str = varchar ? qv_col_var (pkcol, r)->ptr : NULL;
            size_t len = varchar ? qv_col_var (pkcol, r)->len : 0;
            uint64_t h = qv_segment_pk_hash (old, r);
            qv_pkloc_t loc;
            if (qv_pkindex_find (c->pk, h, str, len, &loc) && loc.seg == old && loc.row == r) {
                if (kept) {
                    const qv_col_t *ncol = &merged->batch->cols [c->schema->pk];
                    qv_pkloc_t moved = { merged, out };
                    //  Varchar keys are compared against the stored bytes: the new ones
                    if (qv_pkindex_remove (c->pk, h, str, len) != 1
                    ||  qv_pkindex_put (c->pk, h, varchar ? qv_col_var (ncol, out)->ptr : NULL, len, moved)) {
                        qv_segment_unlink (&merged);
                        free (olds);
                        return qv_err (QV_ENOMEM, "out of memory in the primary-key index");
                    }
                }
                else {
                    qv_pkindex_remove (c->pk, h, str, len);
                    c->live_rows--;
                }
            }
            out += kept;
        }
    }
    //  The merged segment takes the first old one's place; the others leave
    size_t keep = 0;
    for (size_t j = 0; j < c->nsegs; j++) {
        qv_segment_t *seg = c->segs [j];
        bool old = false;
        for (uint32_t i = 0; i < rec->nolds && !old; i++)
            old = seg == olds [i];
        if (!old)
            c->segs [keep++] = seg;
        else {
            if (j == first && rec->rows > 0)
                c->segs [keep++] = merged;
            if (s_retire (c, seg->id))
                qv_warn ("out of memory noting compacted segment %llu", (unsigned long long) seg->id);
            qv_segment_unlink (&seg);
        }
    }
    c->nsegs = keep;
    if (rec->rows == 0)
        qv_segment_unlink (&merged);    //  every row went: nothing replaces them
    free (olds);
    return 0;
}

void
qv_segment_object_key (uint32_t coll_id, uint64_t seg_id, uint64_t epoch, char *out, size_t size)
{
    if (epoch)
        snprintf (out, size, "segments/%u/%020llu-%020llu", coll_id, (unsigned long long) seg_id,
                  (unsigned long long) epoch);
    else
        snprintf (out, size, "segments/%u/%020llu", coll_id, (unsigned long long) seg_id);
}

void
qv_index_object_key (uint32_t coll_id, uint64_t seg_id, int fi, uint64_t epoch, char *out,
                     size_t size)
{
    char seg [96];
    qv_segment_object_key (coll_id, seg_id, epoch, seg, sizeof seg);
    snprintf (out, size, "%s.index%d", seg, fi);
}

int
qv_segment_object_parse (const char *key, uint32_t *coll_id, uint64_t *seg_id)
{
    const char *p = key;
    if (strncmp (p, "segments/", 9))
        return -1;
    p += 9;
    char *end;
    unsigned long long coll = strtoull (p, &end, 10);
    if (end == p || *end != '/' || coll > UINT32_MAX)
        return -1;
    p = end + 1;
    if (strspn (p, "0123456789") != 20)
        return -1;
    unsigned long long seg = strtoull (p, &end, 10);
    if (*end && *end != '-' && *end != '.')
        return -1;
    *coll_id = (uint32_t) coll;
    *seg_id = seg;
    return 0;
}

bool
qv_catalog_has_segment (qv_catalog_t *self, uint32_t coll_id, uint64_t seg_id)
{
    qv_collection_t *c = qv_catalog_find_id (self, coll_id);
    return c && s_find_segment (c, seg_id) != NULL;
}

void
qv_catalog_index_todo (qv_catalog_t *self, qv_index_todo_fn *fn, void *arg)
{
    for (qv_collection_t *c = zlistx_first (self->colls); c; c = zlistx_next (self->colls))
        for (int fi = 0; fi < c->schema->nfields; fi++) {
            if (!c->index_defs [fi])
                continue;
            for (size_t i = 0; i < c->nsegs; i++) {
                qv_segment_t *seg = c->segs [i];
                if (seg->state == QV_SEG_FLUSHED
                &&  (!seg->indexes [fi] || seg->indexes [fi]->version != c->index_versions [fi]))
                    fn (arg, c, seg, fi);
            }
        }
}

qv_apply_t
qv_catalog_apply (qv_catalog_t *self, qv_record_t *rec, uint64_t seq, size_t seg_max_bytes)
{
    qv_apply_t res = { 0, 0, NULL };
    if (seq > self->applied_seq)
        self->applied_seq = seq;
    if (rec->ts > self->max_ts)
        self->max_ts = rec->ts;
    qv_catalog_note_stream_seq (self, rec->sseq);
    qv_collection_t *c = qv_catalog_find_id (self, rec->coll_id);
    res.coll = c;
    switch (rec->type) {
        case QV_REC_CREATE_COLLECTION:
            if (rec->coll_id >= self->next_coll_id)
                self->next_coll_id = rec->coll_id + 1;
            if (c)
                break;              //  replay of a create the manifest has
            if (rec->coll_id < self->manifest_next_coll) {
                res.rc = qv_err (QV_ENOTFOUND, "collection was dropped");
                break;              //  replay of a create dropped since
            }
            if (qv_catalog_find (self, rec->name)) {
                res.rc = qv_err (QV_EEXIST, "collection '%s' already exists", rec->name);
                break;
            }
            c = s_collection_new (rec);
            if (!c) {
                res.rc = qv_err (QV_ENOMEM, "out of memory");
                break;
            }
            zlistx_add_end (self->colls, c);
            res.coll = c;
            break;
        case QV_REC_DROP_COLLECTION:
            if (!c) {
                res.rc = qv_err (QV_ENOTFOUND, "collection does not exist");
                break;
            }
            zlistx_delete (self->colls, zlistx_find (self->colls, c));
            res.coll = NULL;
            break;
        case QV_REC_INSERT:
            if (!c || !rec->batch)
                res.rc = qv_err (QV_ENOTFOUND, "collection was dropped");
            else
                res.rc = s_apply_insert (self, c, rec, seq, seg_max_bytes, &res.count);
            break;
        case QV_REC_DELETE:
            if (!c)
                res.rc = qv_err (QV_ENOTFOUND, "collection was dropped");
            else
                res.rc = s_apply_delete (c, rec, &res.count);
            break;
        case QV_REC_CREATE_INDEX:
        case QV_REC_DROP_INDEX:
            if (!c)
                res.rc = qv_err (QV_ENOTFOUND, "collection was dropped");
            else
                res.rc = s_apply_index (c, rec);
            break;
        case QV_REC_CREATE_PARTITION:
        case QV_REC_DROP_PARTITION:
            if (!c)
                res.rc = qv_err (QV_ENOTFOUND, "collection was dropped");
            else
            if (rec->type == QV_REC_CREATE_PARTITION)
                res.rc = s_apply_create_partition (c, rec);
            else
                res.rc = s_apply_drop_partition (c, rec);
            break;
        case QV_REC_SEAL:
            qv_catalog_seal (self, rec->coll_id, rec->seg_id);
            break;
        case QV_REC_ALTER_COLLECTION:
            if (!c)
                res.rc = qv_err (QV_ENOTFOUND, "collection was dropped");
            else
                res.rc = s_apply_alter (c, rec);
            break;
        case QV_REC_COMPACT:
            if (!c)
                res.rc = qv_err (QV_ENOTFOUND, "collection was dropped");
            else
                res.rc = s_apply_compact (c, rec);
            break;
        case QV_REC_USER:
            res.rc = rec->user ? qv_users_apply (self->users, rec->user)
                               : qv_err (QV_EINVAL, "a user record without its change");
            break;
    }
    return res;
}

qv_segment_t *
qv_catalog_seal (qv_catalog_t *self, uint32_t coll_id, uint64_t seg_id)
{
    qv_collection_t *c = qv_catalog_find_id (self, coll_id);
    qv_segment_t *seg = c ? s_find_segment (c, seg_id) : NULL;
    if (seg && seg->state == QV_SEG_GROWING)
        seg->state = QV_SEG_SEALED;
    return seg;
}

uint64_t
qv_catalog_checkpoint (qv_catalog_t *self)
{
    uint64_t cp = self->partial ? self->applied_seq : self->applied_seq + 1;
    for (qv_collection_t *c = zlistx_first (self->colls); c; c = zlistx_next (self->colls))
        for (size_t i = 0; i < c->nsegs; i++)
            if (c->segs [i]->state != QV_SEG_FLUSHED && c->segs [i]->first_seq < cp)
                cp = c->segs [i]->first_seq;
    return cp;
}

void
qv_catalog_set_partial (qv_catalog_t *self, bool partial)
{
    self->partial = partial;
}

uint64_t qv_catalog_applied_seq (qv_catalog_t *self) { return self->applied_seq; }
uint64_t qv_catalog_max_ts (qv_catalog_t *self) { return self->max_ts; }
uint32_t qv_catalog_next_coll_id (qv_catalog_t *self) { return self->next_coll_id; }
uint64_t qv_catalog_next_seg_id (qv_catalog_t *self) { return self->next_seg_id; }
uint64_t qv_catalog_manifest_version (qv_catalog_t *self) { return self->manifest_version; }
uint64_t qv_catalog_manifest_epoch (qv_catalog_t *self) { return self->manifest_epoch; }
uint64_t qv_catalog_stream_seq (qv_catalog_t *self) { return self->stream_seq; }

void
qv_catalog_note_stream_seq (qv_catalog_t *self, uint64_t sseq)
{
    if (sseq > self->stream_seq)
        self->stream_seq = sseq;
}

uint64_t
qv_catalog_replay_from (qv_catalog_t *self)
{
    //  Rows of segments that were growing when the manifest was written are only in
    //  the WAL, from the manifest's checkpoint on.
    return self->manifest_version ? self->replay_from : 0;
}

//  The manifest's format: qv_manifest.c.

static void
s_write_deletes (qv_segment_t *seg, qv_wr_t *w)
{
    uint32_t rows = atomic_load (&seg->rows);
    size_t n = 0;
    for (uint32_t r = 0; r < rows; r++)
        n += qv_segment_deleted_at (seg, r) != 0;
    uint8_t *buf = malloc (n * 12 + 1), *p = buf;
    for (uint32_t r = 0; r < rows; r++) {
        uint64_t ts = qv_segment_deleted_at (seg, r);
        if (ts) {
            memcpy (p, &r, 4);
            memcpy (p + 4, &ts, 8);
            p += 12;
        }
    }
    qv_wr_bin (w, buf, n * 12);
    free (buf);
}

void
qv_catalog_set_epoch (qv_catalog_t *self, uint64_t epoch)
{
    self->epoch = epoch;
}

void
qv_catalog_set_index_records (qv_catalog_t *self, bool records_only)
{
    self->index_records = records_only;
}

zchunk_t *
qv_catalog_manifest (qv_catalog_t *self, uint64_t *version)
{
    qv_wr_t *w = qv_wr_new ();
    *version = ++self->manifest_version;
    qv_wr_map (w, 10);
    qv_wr_str (w, "version"); qv_wr_uint (w, *version);
    qv_wr_str (w, "users"); qv_users_write (self->users, w);
    qv_wr_str (w, "epoch"); qv_wr_uint (w, self->epoch);
    qv_wr_str (w, "stream_seq"); qv_wr_uint (w, self->stream_seq);
    qv_wr_str (w, "next_coll"); qv_wr_uint (w, self->next_coll_id);
    qv_wr_str (w, "next_seg"); qv_wr_uint (w, self->next_seg_id);
    qv_wr_str (w, "applied"); qv_wr_uint (w, self->applied_seq);
    qv_wr_str (w, "checkpoint"); qv_wr_uint (w, qv_catalog_checkpoint (self));
    qv_wr_str (w, "max_ts"); qv_wr_uint (w, self->max_ts);
    qv_wr_str (w, "collections");
    qv_wr_array (w, zlistx_size (self->colls));
    for (qv_collection_t *c = zlistx_first (self->colls); c; c = zlistx_next (self->colls)) {
        qv_wr_map (w, 14);
        qv_wr_str (w, "id"); qv_wr_uint (w, c->id);
        qv_wr_str (w, "retired");
        qv_wr_array (w, c->nretired);
        for (size_t i = 0; i < c->nretired; i++)
            qv_wr_uint (w, c->retired [i]);
        qv_wr_str (w, "parts");
        qv_wr_array (w, c->nparts);
        for (uint32_t i = 0; i < c->nparts; i++) {
            qv_wr_map (w, 2);
            qv_wr_str (w, "id"); qv_wr_uint (w, c->parts [i].id);
            qv_wr_str (w, "name"); qv_wr_str (w, c->parts [i].name);
        }
        qv_wr_str (w, "next_part"); qv_wr_uint (w, c->next_part);
        qv_wr_str (w, "np"); qv_wr_uint (w, c->num_partitions);
        qv_wr_str (w, "name"); qv_wr_str (w, c->name);
        size_t ndefs = 0;
        for (int fi = 0; fi < c->schema->nfields; fi++)
            ndefs += c->index_versions [fi] != 0;
        //  Dropped definitions stay as a version with no type, so older creates in
        //  the WAL tail are recognised as stale on replay.
        qv_wr_str (w, "indexes");
        qv_wr_array (w, ndefs);
        for (int fi = 0; fi < c->schema->nfields; fi++) {
            if (!c->index_versions [fi])
                continue;
            qv_wr_map (w, 4);
            qv_wr_str (w, "field"); qv_wr_uint (w, (uint64_t) fi);
            qv_wr_str (w, "version"); qv_wr_uint (w, c->index_versions [fi]);
            qv_wr_str (w, "type"); qv_wr_str (w, c->index_defs [fi] ? c->index_defs [fi]->type : "");
            qv_wr_str (w, "params");
            if (c->index_defs [fi])
                qv_index_def_write_params (c->index_defs [fi], w);
            else
                qv_wr_map (w, 0);
        }
        qv_wr_str (w, "schema"); qv_schema_write (c->schema, w);
        qv_wr_str (w, "shards"); qv_wr_uint (w, c->shards);
        qv_wr_str (w, "consistency"); qv_wr_str (w, c->consistency);
        qv_wr_str (w, "desc"); qv_wr_str (w, c->description);
        qv_wr_str (w, "ttl"); qv_wr_uint (w, c->ttl_seconds);
        qv_wr_str (w, "created"); qv_wr_uint (w, c->created_ts);
        size_t nflushed = 0;
        for (size_t i = 0; i < c->nsegs; i++)
            nflushed += c->segs [i]->state == QV_SEG_FLUSHED;
        qv_wr_str (w, "segments");
        qv_wr_array (w, nflushed);
        for (size_t i = 0; i < c->nsegs; i++) {
            qv_segment_t *seg = c->segs [i];
            if (seg->state != QV_SEG_FLUSHED)
                continue;
            qv_wr_map (w, 7);
            qv_wr_str (w, "id"); qv_wr_uint (w, seg->id);
            qv_wr_str (w, "epoch"); qv_wr_uint (w, seg->epoch);
            qv_wr_str (w, "part"); qv_wr_uint (w, seg->partition);
            qv_wr_str (w, "shard"); qv_wr_uint (w, seg->shard);
            qv_wr_str (w, "rows"); qv_wr_uint (w, atomic_load (&seg->rows));
            qv_wr_str (w, "deletes"); s_write_deletes (seg, w);
            size_t nidx = 0;
            for (int fi = 0; fi < seg->schema->nfields; fi++)
                nidx += seg->indexes [fi] != NULL;
            qv_wr_str (w, "indexes");
            qv_wr_array (w, nidx);
            for (int fi = 0; fi < seg->schema->nfields; fi++)
                if (seg->indexes [fi]) {
                    qv_wr_map (w, 3);
                    qv_wr_str (w, "field"); qv_wr_uint (w, (uint64_t) fi);
                    qv_wr_str (w, "version"); qv_wr_uint (w, seg->indexes [fi]->version);
                    qv_wr_str (w, "epoch"); qv_wr_uint (w, seg->indexes [fi]->epoch);
                }
        }
    }
    size_t body_size;
    const void *body = qv_wr_data (w, &body_size);
    zchunk_t *chunk = zchunk_new (NULL, QV_ENVELOPE_HEADER_SIZE + body_size);
    uint8_t header [QV_ENVELOPE_HEADER_SIZE] = { 0 };
    zchunk_append (chunk, header, sizeof header);
    zchunk_append (chunk, body, body_size);
    qv_envelope_seal (zchunk_data (chunk), zchunk_size (chunk), QV_ENVELOPE_MANIFEST,
                      QV_MANIFEST_VERSION);
    qv_wr_destroy (&w);
    return chunk;
}

//  Recovery loads segments on this many threads (the S3 store's default connections).
#define S_LOAD_THREADS 8

//  What the loader fetches for a manifest's segment entry: the segment object and the
//  index objects of the collection's current index versions. Adds the entry's live
//  rows to *keys.
static int
s_segload_prepare (qv_collection_t *c, const qv_val_t *sv, bool index_records,
                   qv_segload_job_t *job, size_t *keys)
{
    uint64_t id, rows;
    const qv_val_t *v;
    const void *del;
    size_t dlen;
    if (!(v = qv_val_get (sv, "id")) || qv_val_uint (v, &id)
    ||  !(v = qv_val_get (sv, "rows")) || qv_val_uint (v, &rows)
    ||  !(v = qv_val_get (sv, "deletes")) || qv_val_bin (v, &del, &dlen) || dlen % 12)
        return QV_ECORRUPT;
    *keys += rows > dlen / 12 ? (size_t) (rows - dlen / 12) : 0;
    job->coll_id = c->id;
    job->seg_id = id;
    if ((v = qv_val_get (sv, "epoch")) && qv_val_uint (v, &job->epoch))
        return QV_ECORRUPT;         //  absent: written before epochs, 0
    const qv_val_t *idxs = qv_val_get (sv, "indexes");
    for (size_t i = 0; idxs && i < qv_val_len (idxs) && job->nidx < QV_FIELDS_MAX; i++) {
        uint64_t fi, version;
        const qv_val_t *iv = qv_val_at (idxs, i);
        if (!(v = qv_val_get (iv, "field")) || qv_val_uint (v, &fi) || fi >= (uint64_t) c->schema->nfields
        ||  !(v = qv_val_get (iv, "version")) || qv_val_uint (v, &version))
            continue;
        if (!c->index_defs [fi] || c->index_versions [fi] != version)
            continue;
        uint64_t epoch = 0;
        if ((v = qv_val_get (iv, "epoch")) && qv_val_uint (v, &epoch))
            continue;
        qv_segload_idx_t *x = &job->idx [job->nidx++];
        x->field = (int) fi;
        x->epoch = epoch;
        x->is_scalar = qv_scalar_is_type (c->index_defs [fi]->type);
        //  (A FLAT index is never searched, the segment's own scan is the same: only
        //  its record is kept, not a second copy of the vectors)
        x->record_only = (index_records && !x->is_scalar)
                      || strcmp (c->index_defs [fi]->type, "FLAT") == 0;
        x->type = c->schema->fields [fi].type;
    }
    return 0;
}

//  Adds a manifest's segment entry, its objects loaded by the loader (job).
static int
s_load_segment (qv_store_t *store, qv_collection_t *c, const qv_val_t *sv, qv_segload_job_t *job)
{
    uint64_t rows;
    const qv_val_t *v;
    const void *del;
    size_t dlen;
    if (!(v = qv_val_get (sv, "rows")) || qv_val_uint (v, &rows)
    ||  !(v = qv_val_get (sv, "deletes")) || qv_val_bin (v, &del, &dlen) || dlen % 12)
        return QV_ECORRUPT;
    if (job->rc)
        return qv_err (job->rc == QV_ENOTFOUND ? QV_ECORRUPT : job->rc, "%s", job->error);
    qv_segment_t *seg = job->seg;
    job->seg = NULL;
    uint64_t id = job->seg_id;
    char key [96], where [512];
    qv_segment_object_key (c->id, id, job->epoch, key, sizeof key);
    qv_store_describe (store, key, where, sizeof where);
    seg->epoch = job->epoch;
    uint64_t part = 0;
    if ((v = qv_val_get (sv, "part")) && (qv_val_uint (v, &part) || part > UINT32_MAX))
        part = UINT64_MAX;
    if (atomic_load (&seg->rows) != rows || seg->id != id || seg->coll_id != c->id
    ||  !qv_collection_has_partition (c, (uint32_t) part)) {
        qv_segment_unlink (&seg);
        return qv_err (QV_ECORRUPT, "segment object %s does not match the manifest", where);
    }
    seg->partition = (uint32_t) part;
    const uint8_t *p = del;
    for (size_t i = 0; i < dlen / 12; i++) {
        uint32_t row;
        uint64_t ts;
        memcpy (&row, p + i * 12, 4);
        memcpy (&ts, p + i * 12 + 4, 8);
        if (row >= rows) {
            qv_segment_unlink (&seg);
            return qv_err (QV_ECORRUPT, "manifest deletes row %u of segment %s beyond its %llu rows",
                           row, where, (unsigned long long) rows);
        }
        if (qv_segment_delete (seg, row, ts)) {
            qv_segment_unlink (&seg);
            return QV_ENOMEM;
        }
    }
    bool varchar = c->schema->fields [c->schema->pk].type == QV_VARCHAR;
    const qv_col_t *pkcol = &seg->batch->cols [c->schema->pk];
    for (uint32_t r = 0; r < rows; r++) {
        if (qv_segment_deleted_at (seg, r))
            continue;
        qv_pkloc_t loc = { seg, r };
        const void *str = varchar ? qv_col_var (pkcol, r)->ptr : NULL;
        size_t len = varchar ? qv_col_var (pkcol, r)->len : 0;
        if (qv_pkindex_put (c->pk, qv_segment_pk_hash (seg, r), str, len, loc)) {
            qv_segment_unlink (&seg);
            return qv_err (QV_ENOMEM, "out of memory");
        }
        c->live_rows++;
    }
    //  Indexes are loaded, not rebuilt; a bad one is reported and rebuilt later,
    //  the segment being scanned exactly meanwhile.
    for (int i = 0; i < job->nidx; i++) {
        qv_segload_idx_t *x = &job->idx [i];
        int fi = x->field;
        const qv_field_t *f = &c->schema->fields [fi];
        char ikey [128], iwhere [512];
        qv_index_object_key (c->id, seg->id, fi, x->epoch, ikey, sizeof ikey);
        qv_store_describe (store, ikey, iwhere, sizeof iwhere);
        if (x->record_only) {
            seg->indexes [fi] = qv_segidx_new_record (c->index_versions [fi], 0, x->epoch);
            continue;
        }
        const char *why = x->error;
        if (x->rc == 0 && !x->is_scalar
        &&  (qv_index_count (x->index) != rows || qv_index_dim (x->index) != f->dim))
            why = "does not match its segment";
        if (why) {
            qv_warn ("index object %s cannot be used (%s); the segment is %s until it is rebuilt",
                     iwhere, why, x->is_scalar ? "scanned" : "searched exactly");
            continue;               //  what was loaded is freed with the loader
        }
        seg->indexes [fi] = x->is_scalar ? qv_segidx_new_scalar (&x->scalar, c->index_versions [fi])
                                      : qv_segidx_new (&x->index, c->index_versions [fi]);
        if (seg->indexes [fi])
            seg->indexes [fi]->epoch = x->epoch;
    }
    if (s_add_segment (c, seg)) {
        qv_segment_unlink (&seg);
        return qv_err (QV_ENOMEM, "out of memory");
    }
    return 0;
}

//  Loads a collection's segments (the manifest's entries segs) on the loader's
//  threads, adding them in the manifest's order.
static int
s_load_segments (qv_store_t *store, qv_collection_t *c, const qv_val_t *segs,
                 bool index_records)
{
    size_t n = qv_val_len (segs);
    qv_segload_job_t *jobs = calloc (n ? n : 1, sizeof *jobs);
    if (!jobs)
        return qv_err (QV_ENOMEM, "out of memory");
    int rc = 0;
    size_t keys = qv_pkindex_size (c->pk);
    for (size_t j = 0; j < n && rc == 0; j++)
        rc = s_segload_prepare (c, qv_val_at (segs, j), index_records, &jobs [j], &keys);
    //  The key index sized once for every live row of the segments, not grown by half
    //  again and again as they are added
    if (rc == 0)
        rc = qv_pkindex_reserve (c->pk, keys);
    if (rc) {
        free (jobs);
        return rc;
    }
    qv_segload_t *loader = qv_segload_new (store, jobs, n, S_LOAD_THREADS);
    if (!loader) {
        free (jobs);
        return qv_err (QV_ENOMEM, "out of memory");
    }
    for (size_t j = 0; j < n && rc == 0; j++) {
        qv_segload_wait (loader, j);
        rc = s_load_segment (store, c, qv_val_at (segs, j), &jobs [j]);
    }
    char what [QV_NAME_MAX + 32];
    snprintf (what, sizeof what, "collection %s", c->name);
    qv_segload_destroy (&loader, what);
    free (jobs);
    return rc;
}

//  The partitions of a manifest's collection entry (absent: the initial ones).
static int
s_load_partitions (qv_collection_t *c, const qv_val_t *cv)
{
    const qv_val_t *parts = qv_val_get (cv, "parts"), *v;
    if (!parts)
        return 0;
    if (qv_val_type (parts) != QV_V_ARRAY || qv_val_len (parts) > QV_PARTITIONS_MAX)
        return QV_ECORRUPT;
    c->nparts = 0;
    for (size_t i = 0; i < qv_val_len (parts); i++) {
        const qv_val_t *pv = qv_val_at (parts, i);
        uint64_t id;
        char name [QV_NAME_MAX + 1];
        if (!(v = qv_val_get (pv, "id")) || qv_val_uint (v, &id) || id > UINT32_MAX
        ||  !(v = qv_val_get (pv, "name")) || qv_val_strcpy (v, name, sizeof name)
        ||  s_add_partition (c, (uint32_t) id, name))
            return QV_ECORRUPT;
    }
    uint64_t next;
    if ((v = qv_val_get (cv, "next_part"))) {
        if (qv_val_uint (v, &next) || next > UINT32_MAX || next < c->next_part)
            return QV_ECORRUPT;
        c->next_part = (uint32_t) next;
    }
    return 0;
}

int
qv_catalog_recover (qv_catalog_t *self, qv_store_t *store)
{
    qv_manifest_t *man;
    int rc = qv_manifest_read_newest (store, 0, &man);
    if (rc || !man)
        return rc;                  //  an error, or a new database
    const char *where = man->where;
    uint64_t key_epoch = man->epoch;
    bool has_epoch = man->has_epoch;
    qv_doc_t *doc = NULL;
    doc = qv_doc_parse_view (man->body, man->body_size, SIZE_MAX, &rc);
    if (!doc) {
        rc = qv_err (QV_ECORRUPT, "manifest %s does not decode", where);
        goto done;
    }
    const qv_val_t *root = qv_doc_root (doc), *v, *colls;
    uint64_t version, next_coll, next_seg, applied, checkpoint, max_ts;
    if (!(v = qv_val_get (root, "version")) || qv_val_uint (v, &version)
    ||  !(v = qv_val_get (root, "next_coll")) || qv_val_uint (v, &next_coll)
    ||  !(v = qv_val_get (root, "next_seg")) || qv_val_uint (v, &next_seg)
    ||  !(v = qv_val_get (root, "applied")) || qv_val_uint (v, &applied)
    ||  !(v = qv_val_get (root, "checkpoint")) || qv_val_uint (v, &checkpoint)
    ||  checkpoint > applied + 1
    ||  !(v = qv_val_get (root, "max_ts")) || qv_val_uint (v, &max_ts)
    ||  !(v = qv_val_get (root, "checkpoint")) || qv_val_uint (v, &self->replay_from)
    ||  !(colls = qv_val_get (root, "collections")) || qv_val_type (colls) != QV_V_ARRAY)
        goto corrupt;
    uint64_t epoch = 0;
    if (has_epoch && (!(v = qv_val_get (root, "epoch")) || qv_val_uint (v, &epoch)))
        goto corrupt;
    if (epoch != key_epoch) {
        rc = qv_err (QV_ECORRUPT, "manifest %s: holds writer epoch %llu, its key says %llu",
                     where, (unsigned long long) epoch, (unsigned long long) key_epoch);
        goto done;
    }
    self->manifest_version = version;
    self->manifest_epoch = epoch;
    self->next_coll_id = self->manifest_next_coll = (uint32_t) next_coll;
    self->next_seg_id = next_seg;
    //  Rows of segments that were not flushed when this manifest was written are only in
    //  the WAL from the manifest's checkpoint on: replay starts there (records of flushed
    //  segments are skipped by apply), not after `applied`. (Checkpoint 0: the manifest
    //  was written while the log's first object was applied in part.)
    self->applied_seq = checkpoint ? checkpoint - 1 : 0;
    self->max_ts = max_ts;
    //  Optional: manifests written before JetStream ingestion have none.
    if ((v = qv_val_get (root, "stream_seq")) && qv_val_uint (v, &self->stream_seq))
        goto corrupt;
    //  Optional too: manifests written before the user store have none
    if ((v = qv_val_get (root, "users")) && (rc = qv_users_read (self->users, v)))
        goto done;
    for (size_t i = 0; i < qv_val_len (colls); i++) {
        const qv_val_t *cv = qv_val_at (colls, i), *segs;
        qv_record_t *rec = qv_record_new (QV_REC_CREATE_COLLECTION);
        uint64_t id, shards, created;
        const char *s;
        size_t n;
        if (!(v = qv_val_get (cv, "id")) || qv_val_uint (v, &id)
        ||  !(v = qv_val_get (cv, "name")) || qv_val_strcpy (v, rec->name, sizeof rec->name)
        ||  !(v = qv_val_get (cv, "schema")) || !(rec->schema = qv_schema_parse (v, &rc))
        ||  !(v = qv_val_get (cv, "shards")) || qv_val_uint (v, &shards)
        ||  !(v = qv_val_get (cv, "consistency")) || qv_val_strcpy (v, rec->consistency, sizeof rec->consistency)
        ||  !(v = qv_val_get (cv, "desc")) || qv_val_str (v, &s, &n)
        ||  !(v = qv_val_get (cv, "ttl")) || qv_val_uint (v, &rec->ttl_seconds)
        ||  !(v = qv_val_get (cv, "created")) || qv_val_uint (v, &created)
        ||  !(segs = qv_val_get (cv, "segments")) || qv_val_type (segs) != QV_V_ARRAY) {
            qv_record_destroy (&rec);
            goto corrupt;
        }
        rec->coll_id = (uint32_t) id;
        rec->shards = (uint32_t) shards;
        rec->ts = created;
        rec->description = strndup (s, n);
        uint64_t np = 0;
        if ((v = qv_val_get (cv, "np")) && (qv_val_uint (v, &np) || np > QV_PARTITIONS_MAX)) {
            qv_record_destroy (&rec);
            goto corrupt;
        }
        rec->num_partitions = (uint32_t) np;
        qv_collection_t *c = s_collection_new (rec);
        qv_record_destroy (&rec);
        if (!c) {
            rc = qv_err (QV_ENOMEM, "out of memory");
            goto done;
        }
        zlistx_add_end (self->colls, c);
        if ((rc = s_load_partitions (c, cv)))
            goto corrupt;
        const qv_val_t *retired = qv_val_get (cv, "retired");
        for (size_t j = 0; retired && j < qv_val_len (retired); j++) {
            uint64_t seg_id;
            if (qv_val_uint (qv_val_at (retired, j), &seg_id) || s_retire (c, seg_id))
                goto corrupt;
        }
        const qv_val_t *defs = qv_val_get (cv, "indexes");
        for (size_t j = 0; defs && j < qv_val_len (defs); j++) {
            const qv_val_t *dv = qv_val_at (defs, j), *tv;
            uint64_t fi, version;
            if (!(v = qv_val_get (dv, "field")) || qv_val_uint (v, &fi) || fi >= (uint64_t) c->schema->nfields
            ||  !(v = qv_val_get (dv, "version")) || qv_val_uint (v, &version)
            ||  !(tv = qv_val_get (dv, "type")))
                goto corrupt;
            c->index_versions [fi] = version;
            if (qv_val_len (tv) == 0)
                continue;
            c->index_defs [fi] = calloc (1, sizeof (qv_index_def_t));
            snprintf (c->index_defs [fi]->field, sizeof c->index_defs [fi]->field, "%s",
                      c->schema->fields [fi].name);
            if (qv_index_def_from_request (tv, qv_val_get (dv, "params"), c->index_defs [fi]))
                goto corrupt;
        }
        if ((rc = s_load_segments (store, c, segs, self->index_records))) {
            if (rc == QV_ECORRUPT && !strstr (qv_err_msg (), "segment"))
                goto corrupt;
            goto done;
        }
    }
    qv_info ("recovered manifest %s (writer epoch %llu): %zu collections, WAL applied up "
             "to %llu, checkpoint %llu", where, (unsigned long long) epoch,
             zlistx_size (self->colls), (unsigned long long) applied,
             (unsigned long long) checkpoint);
    rc = 0;
    goto done;
corrupt:
    rc = qv_err (QV_ECORRUPT, "manifest %s does not match the format", where);
done:
    qv_doc_destroy (&doc);
    qv_manifest_destroy (&man);
    return rc;
}

qv_users_t *
qv_catalog_users (qv_catalog_t *self)
{
    return self->users;
}
