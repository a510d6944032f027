//  Catalog: applying create/insert/delete/drop records (a live key replaced on
//  insert, delete counts, snapshots), replay idempotence across a manifest, manifest
//  + segment objects recovered from a real filesystem store, and corrupted
//  manifests / segment objects refused as QV_ECORRUPT naming the object.
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <msgpack.h>

#include "qv_catalog.h"
#include "qv_manifest.h"
#include "qv_crc.h"
#include "qv_envelope.h"
#include "qv_segfile.h"
#include "qv_coll_reply.h"
#include "qv_store.h"
#include "qv_test_json.h"

#define SEG_BYTES (1 << 20)

static const char *s_int_schema =
    "[{\"name\": \"id\", \"type\": \"int64\", \"primary\": true},"
    " {\"name\": \"v\", \"type\": \"float_vector\", \"dim\": 2},"
    " {\"name\": \"tag\", \"type\": \"varchar\", \"nullable\": true}]";

static const char *s_str_schema =
    "[{\"name\": \"k\", \"type\": \"varchar\", \"primary\": true, \"max_length\": 32},"
    " {\"name\": \"v\", \"type\": \"float_vector\", \"dim\": 2, \"metric\": \"COSINE\"},"
    " {\"name\": \"n\", \"type\": \"int32\", \"default\": 0}]";

//  The WAL of a test: encoded records in order, each with its seq.
typedef struct {
    void *data [256];
    size_t size [256];
    uint64_t seq [256];
    int n;
    bool join;                      //  the next record goes into the last one's object
} wal_t;

typedef struct {
    char dir [64];
    qv_store_t *store;
    wal_t wal;
} fixture_t;

static int
s_rm_entry (const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void) st; (void) flag; (void) ftw;
    return remove (path);
}

static int
s_setup (void **state)
{
    fixture_t *f = calloc (1, sizeof *f);
    strcpy (f->dir, "/tmp/qv_test_catalog_XXXXXX");
    if (!mkdtemp (f->dir))
        return -1;
    f->store = qv_store_new (f->dir);
    if (!f->store)
        return -1;
    *state = f;
    return 0;
}

static int
s_teardown (void **state)
{
    fixture_t *f = *state;
    qv_store_destroy (&f->store);
    nftw (f->dir, s_rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    for (int i = 0; i < f->wal.n; i++)
        free (f->wal.data [i]);
    free (f);
    return 0;
}

//  Reads record i of the WAL as recovery does and applies it.
static qv_apply_t
s_replay_one (qv_catalog_t *cat, wal_t *wal, int i)
{
    qv_record_t *rec = NULL;
    int rc = qv_record_read (wal->data [i], wal->size [i], qv_catalog_schema_of, cat, &rec);
    qv_apply_t res = { rc, 0, NULL };
    if (rc == 0)
        res = qv_catalog_apply (cat, rec, wal->seq [i], SEG_BYTES);
    else
        assert_int_equal (rc, QV_ENOTFOUND);        //  a collection dropped since
    qv_record_destroy (&rec);
    return res;
}

//  Logs rec (takes it) as the next WAL record and applies it to cat.
static qv_apply_t
s_log_apply (qv_catalog_t *cat, wal_t *wal, qv_record_t *rec)
{
    qv_wr_t *w = qv_wr_new ();
    qv_record_write (rec, w);
    int i = wal->n++;
    wal->data [i] = qv_wr_detach (w, &wal->size [i]);
    wal->seq [i] = wal->join && i > 0 ? wal->seq [i - 1] : (uint64_t) i + 1;
    qv_wr_destroy (&w);
    qv_record_destroy (&rec);
    return s_replay_one (cat, wal, i);
}

static qv_apply_t
s_create (qv_catalog_t *cat, wal_t *wal, uint32_t id, const char *name, const char *schema_json,
          uint64_t ts)
{
    qv_record_t *rec = qv_record_new (QV_REC_CREATE_COLLECTION);
    rec->ts = ts;
    rec->coll_id = id;
    snprintf (rec->name, sizeof rec->name, "%s", name);
    qv_doc_t *doc = qv_test_doc (schema_json);
    int rc;
    rec->schema = qv_schema_parse (qv_doc_root (doc), &rc);
    qv_doc_destroy (&doc);
    assert_non_null (rec->schema);
    rec->shards = 1;
    strcpy (rec->consistency, "strong");
    rec->description = strdup ("test");
    return s_log_apply (cat, wal, rec);
}

//  rows: {"a": [row maps]}, into partition part.
static qv_apply_t
s_insert_part (qv_catalog_t *cat, wal_t *wal, uint32_t coll, uint32_t part, uint64_t seg,
               uint64_t ts, const char *rows)
{
    const qv_schema_t *schema = qv_catalog_schema_of (cat, coll);
    assert_non_null (schema);
    qv_record_t *rec = qv_record_new (QV_REC_INSERT);
    rec->ts = ts;
    rec->coll_id = coll;
    rec->seg_id = seg;
    rec->partition = part;
    qv_doc_t *doc = qv_test_doc (rows);
    int rc = qv_batch_from_request (schema, qv_val_get (qv_doc_root (doc), "a"), NULL, 1000, &rec->batch);
    qv_doc_destroy (&doc);
    assert_int_equal (rc, 0);
    return s_log_apply (cat, wal, rec);
}

static qv_apply_t
s_insert (qv_catalog_t *cat, wal_t *wal, uint32_t coll, uint64_t seg, uint64_t ts, const char *rows)
{
    return s_insert_part (cat, wal, coll, 0, seg, ts, rows);
}

//  create_partition / drop_partition record of partition (id, name).
static qv_apply_t
s_partition (qv_catalog_t *cat, wal_t *wal, qv_rec_type_t type, uint32_t coll, uint32_t id,
             const char *name, uint64_t ts)
{
    qv_record_t *rec = qv_record_new (type);
    rec->ts = ts;
    rec->coll_id = coll;
    rec->partition = id;
    rec->in_partition = true;
    snprintf (rec->name, sizeof rec->name, "%s", name);
    return s_log_apply (cat, wal, rec);
}

static qv_apply_t
s_delete (qv_catalog_t *cat, wal_t *wal, uint32_t coll, uint64_t ts, const char *ids)
{
    const qv_schema_t *schema = qv_catalog_schema_of (cat, coll);
    assert_non_null (schema);
    qv_record_t *rec = qv_record_new (QV_REC_DELETE);
    rec->ts = ts;
    rec->coll_id = coll;
    qv_doc_t *doc = qv_test_doc (ids);
    assert_int_equal (qv_keys_from_request (&schema->fields [schema->pk], qv_doc_root (doc), 1000, &rec->keys), 0);
    qv_doc_destroy (&doc);
    return s_log_apply (cat, wal, rec);
}

static qv_apply_t
s_drop (qv_catalog_t *cat, wal_t *wal, uint32_t coll, uint64_t ts)
{
    qv_record_t *rec = qv_record_new (QV_REC_DROP_COLLECTION);
    rec->ts = ts;
    rec->coll_id = coll;
    return s_log_apply (cat, wal, rec);
}

//  The `get` reply rows for ids (JSON list) as msgpack, in a malloc'd buffer.
static void *
s_get (qv_collection_t *c, const char *ids, size_t *size)
{
    qv_doc_t *doc = qv_test_doc (ids);
    qv_keys_t keys;
    assert_int_equal (qv_keys_from_request (&c->schema->fields [c->schema->pk], qv_doc_root (doc), 1000, &keys), 0);
    qv_doc_destroy (&doc);
    qv_output_t out;
    qv_doc_t *of = qv_test_doc ("[\"*\"]");
    assert_int_equal (qv_collection_check_fields (c, qv_doc_root (of), &out), 0);
    qv_wr_t *w = qv_wr_new ();
    assert_int_equal (qv_collection_get (c, &keys, NULL, &out, w), 0);
    qv_doc_destroy (&of);
    void *data = qv_wr_detach (w, size);
    qv_wr_destroy (&w);
    qv_keys_free (&keys);
    return data;
}

//  Asserts get (ids) gives exactly the rows in `want` (JSON list of row maps).
static void
s_assert_get (qv_collection_t *c, const char *ids, const char *want, int line)
{
    size_t got_size, want_size;
    void *got = s_get (c, ids, &got_size);
    void *exp = qv_test_mp (want, &want_size);
    if (got_size != want_size || memcmp (got, exp, got_size)) {
        int rc;
        qv_doc_t *doc = qv_doc_parse (got, got_size, SIZE_MAX, &rc);
        print_error ("line %d: get %s gave %zu rows of %zu bytes, expected %s\n", line, ids,
                     doc ? qv_val_len (qv_doc_root (doc)) : 0, got_size, want);
        qv_doc_destroy (&doc);
        fail ();
    }
    free (got);
    free (exp);
}
#define ASSERT_GET(c, ids, want) s_assert_get ((c), (ids), (want), __LINE__)

//  describe_collection's "rows".
static uint64_t
s_described_rows (qv_collection_t *c)
{
    qv_wr_t *w = qv_wr_new ();
    qv_wr_map (w, QV_DESCRIBE_FIELDS);
    qv_collection_describe (c, UINT64_MAX, w);
    size_t size;
    const void *data = qv_wr_data (w, &size);
    int rc;
    qv_doc_t *doc = qv_doc_parse (data, size, SIZE_MAX, &rc);
    assert_non_null (doc);
    uint64_t rows = 0;
    assert_int_equal (qv_val_uint (qv_val_get (qv_doc_root (doc), "rows"), &rows), 0);
    qv_doc_destroy (&doc);
    qv_wr_destroy (&w);
    return rows;
}

//  Rows visible in a snapshot of c at ts, counted by an exact scan with a large k.
static uint32_t
s_visible (qv_collection_t *c, uint64_t ts)
{
    qv_snapshot_t *snap = qv_snapshot_new (c, ts, c->schema->vec, NULL);
    assert_non_null (snap);
    qv_topk_t *top = qv_topk_new (QV_TOPK_MAX);
    float q [2] = { 1, 0 }, qn = 1;
    qv_snapshot_scan (snap, q, &qn, 1, QV_TOPK_MAX, 0, 0, 0, 1, &top);
    uint32_t n = qv_topk_size (top);
    qv_topk_destroy (&top);
    qv_snapshot_destroy (&snap);
    return n;
}

static void
test_apply (void **state)
{
    fixture_t *f = *state;
    qv_catalog_t *cat = qv_catalog_new ();
    qv_apply_t res = s_create (cat, &f->wal, 1, "docs", s_int_schema, 10);
    assert_int_equal (res.rc, 0);
    assert_non_null (res.coll);
    qv_collection_t *c = qv_catalog_find (cat, "docs");
    assert_ptr_equal (c, res.coll);
    assert_ptr_equal (qv_catalog_find_id (cat, 1), c);
    assert_null (qv_catalog_find (cat, "nope"));
    assert_int_equal (qv_catalog_next_coll_id (cat), 2);
    //  The same name again is ALREADY_EXISTS
    res = s_create (cat, &f->wal, 2, "docs", s_str_schema, 11);
    assert_int_equal (res.rc, QV_EEXIST);
    assert_null (qv_catalog_find_id (cat, 2));

    res = s_insert (cat, &f->wal, 1, 1, 100,
                    "{\"a\": [{\"id\": 1, \"v\": [1, 0], \"tag\": \"one\"}, {\"id\": 2, \"v\": [0, 1], \"tag\": \"two\"},"
                    " {\"id\": 3, \"v\": [1, 1]}]}");
    assert_int_equal (res.rc, 0);
    assert_int_equal (res.count, 3);
    assert_int_equal (c->live_rows, 3);
    assert_int_equal (s_described_rows (c), 3);
    ASSERT_GET (c, "[1, 3]", "[{\"id\": 1, \"v\": [1.0f, 0.0f], \"tag\": \"one\"}, {\"id\": 3, \"v\": [1.0f, 1.0f], \"tag\": null}]");

    //  A live key inserted again replaces the row: still 3 rows, get gives the new one
    res = s_insert (cat, &f->wal, 1, 1, 200, "{\"a\": [{\"id\": 2, \"v\": [2, 2], \"tag\": \"TWO\"}]}");
    assert_int_equal (res.rc, 0);
    assert_int_equal (c->live_rows, 3);
    assert_int_equal (s_described_rows (c), 3);
    ASSERT_GET (c, "[2]", "[{\"id\": 2, \"v\": [2.0f, 2.0f], \"tag\": \"TWO\"}]");
    //  Snapshots: before the replace the old row is the visible one, after it the new
    assert_int_equal (s_visible (c, 99), 0);
    assert_int_equal (s_visible (c, 150), 3);
    assert_int_equal (s_visible (c, 200), 3);
    //  Within one batch the last row of a key wins
    res = s_insert (cat, &f->wal, 1, 1, 300, "{\"a\": [{\"id\": 5, \"v\": [1, 2], \"tag\": \"a\"}, {\"id\": 5, \"v\": [1, 2], \"tag\": \"b\"}]}");
    assert_int_equal (res.rc, 0);
    assert_int_equal (c->live_rows, 4);
    ASSERT_GET (c, "[5]", "[{\"id\": 5, \"v\": [1.0f, 2.0f], \"tag\": \"b\"}]");
    assert_int_equal (s_visible (c, 300), 4);

    //  Deletes count the keys that were live
    res = s_delete (cat, &f->wal, 1, 400, "[1, 99, 5, 1]");
    assert_int_equal (res.rc, 0);
    assert_int_equal (res.count, 2);
    assert_int_equal (c->live_rows, 2);
    assert_int_equal (s_described_rows (c), 2);
    res = s_delete (cat, &f->wal, 1, 410, "[1, 5]");
    assert_int_equal (res.count, 0);
    ASSERT_GET (c, "[1, 2, 3, 5, 99]", "[{\"id\": 2, \"v\": [2.0f, 2.0f], \"tag\": \"TWO\"}, {\"id\": 3, \"v\": [1.0f, 1.0f], \"tag\": null}]");
    ASSERT_GET (c, "[]", "[]");
    assert_int_equal (s_visible (c, 399), 4);
    assert_int_equal (s_visible (c, 400), 2);
    //  Re-inserting a deleted key makes it live again
    res = s_insert (cat, &f->wal, 1, 2, 500, "{\"a\": [{\"id\": 1, \"v\": [3, 3]}]}");
    assert_int_equal (c->live_rows, 3);
    assert_int_equal (c->nsegs, 2);
    assert_true (qv_catalog_next_seg_id (cat) >= 3);
    ASSERT_GET (c, "[1]", "[{\"id\": 1, \"v\": [3.0f, 3.0f], \"tag\": null}]");

    //  A varchar-keyed collection
    res = s_create (cat, &f->wal, 3, "words", s_str_schema, 600);
    assert_int_equal (res.rc, 0);
    qv_collection_t *w = res.coll;
    s_insert (cat, &f->wal, 3, 10, 700, "{\"a\": [{\"k\": \"x\", \"v\": [1, 0]}, {\"k\": \"y\", \"v\": [0, 1], \"n\": 4}]}");
    s_insert (cat, &f->wal, 3, 10, 710, "{\"a\": [{\"k\": \"x\", \"v\": [1, 1], \"n\": 9}]}");
    assert_int_equal (w->live_rows, 2);
    ASSERT_GET (w, "[\"x\", \"y\", \"z\"]", "[{\"k\": \"x\", \"v\": [1.0f, 1.0f], \"n\": 9}, {\"k\": \"y\", \"v\": [0.0f, 1.0f], \"n\": 4}]");
    res = s_delete (cat, &f->wal, 3, 720, "[\"y\", \"x\", \"\"]");
    assert_int_equal (res.count, 2);
    assert_int_equal (w->live_rows, 0);

    //  Listing is by name
    size_t n;
    qv_collection_t **list = qv_catalog_list (cat, &n);
    assert_int_equal (n, 2);
    assert_string_equal (list [0]->name, "docs");
    assert_string_equal (list [1]->name, "words");
    free (list);
    assert_true (qv_catalog_max_ts (cat) == 720);
    assert_true (qv_catalog_applied_seq (cat) == (uint64_t) f->wal.n);

    //  Drop: gone; later records for it are NOT_FOUND
    res = s_drop (cat, &f->wal, 3, 800);
    assert_int_equal (res.rc, 0);
    assert_null (qv_catalog_find (cat, "words"));
    assert_null (qv_catalog_schema_of (cat, 3));
    res = s_drop (cat, &f->wal, 3, 810);
    assert_int_equal (res.rc, QV_ENOTFOUND);
    qv_catalog_destroy (&cat);
    assert_null (cat);
    qv_catalog_destroy (&cat);
}

//  Flushes every growing segment of every collection the way the searcher and the
//  flusher do (seal, write segments/<coll>/<seg>, mark flushed), then writes the
//  manifest to meta/manifest/<version>. Returns the manifest version.
static uint64_t
s_flush_some (qv_catalog_t *cat, qv_store_t *store, const uint64_t *only, int nonly);

static uint64_t
s_flush_all (qv_catalog_t *cat, qv_store_t *store)
{
    return s_flush_some (cat, store, NULL, 0);
}

//  As s_flush_all, for the segment ids in only [] (all when only is NULL).
static uint64_t
s_flush_some (qv_catalog_t *cat, qv_store_t *store, const uint64_t *only, int nonly)
{
    size_t n;
    qv_collection_t **list = qv_catalog_list (cat, &n);
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < list [i]->nsegs; j++) {
            bool chosen = !only;
            for (int k = 0; k < nonly; k++)
                chosen |= only [k] == list [i]->segs [j]->id;
            if (!chosen)
                continue;
            qv_segment_t *seg = qv_catalog_seal (cat, list [i]->id, list [i]->segs [j]->id);
            assert_non_null (seg);
            if (seg->state == QV_SEG_FLUSHED)
                continue;
            size_t size;
            void *object = qv_segment_save (seg, &size);
            char key [96];
            snprintf (key, sizeof key, "segments/%u/%020llu", seg->coll_id, (unsigned long long) seg->id);
            assert_int_equal (qv_store_put (store, key, object, size), 0);
            free (object);
            seg->state = QV_SEG_FLUSHED;
        }
    free (list);
    uint64_t version;
    zchunk_t *chunk = qv_catalog_manifest (cat, &version);
    assert_non_null (chunk);
    char key [64];
    snprintf (key, sizeof key, "meta/manifest/%020llu", (unsigned long long) version);
    assert_int_equal (qv_store_put (store, key, zchunk_data (chunk), zchunk_size (chunk)), 0);
    zchunk_destroy (&chunk);
    return version;
}

//  Both catalogs answer the same: collections, live rows, get of every key 0..19,
//  and snapshot visibility at several timestamps.
static void
s_assert_same_state (qv_catalog_t *a, qv_catalog_t *b)
{
    size_t na, nb;
    qv_collection_t **la = qv_catalog_list (a, &na), **lb = qv_catalog_list (b, &nb);
    assert_int_equal (na, nb);
    for (size_t i = 0; i < na; i++) {
        assert_string_equal (la [i]->name, lb [i]->name);
        assert_int_equal (la [i]->id, lb [i]->id);
        if (la [i]->live_rows != lb [i]->live_rows)
            fail_msg ("collection %s: %llu live rows, recovered %llu", la [i]->name,
                      (unsigned long long) la [i]->live_rows, (unsigned long long) lb [i]->live_rows);
        const char *ids = la [i]->schema->fields [la [i]->schema->pk].type == QV_INT64
            ? "[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19]"
            : "[\"a\", \"b\", \"c\", \"d\", \"e\", \"f\"]";
        size_t sa, sb;
        void *ga = s_get (la [i], ids, &sa), *gb = s_get (lb [i], ids, &sb);
        if (sa != sb || memcmp (ga, gb, sa))
            fail_msg ("collection %s: get differs after recovery", la [i]->name);
        free (ga);
        free (gb);
        uint64_t ts [] = { 150, 250, 350, 450, 10000 };
        for (int t = 0; t < 5; t++)
            assert_int_equal (s_visible (la [i], ts [t]), s_visible (lb [i], ts [t]));
        //  The same partitions, and every segment in the same one
        assert_int_equal (la [i]->nparts, lb [i]->nparts);
        assert_int_equal (la [i]->next_part, lb [i]->next_part);
        assert_int_equal (la [i]->num_partitions, lb [i]->num_partitions);
        for (uint32_t p = 0; p < la [i]->nparts; p++) {
            assert_int_equal (la [i]->parts [p].id, lb [i]->parts [p].id);
            assert_string_equal (la [i]->parts [p].name, lb [i]->parts [p].name);
        }
        assert_int_equal (la [i]->nsegs, lb [i]->nsegs);
        for (size_t j = 0; j < la [i]->nsegs; j++) {
            bool found = false;
            for (size_t k = 0; k < lb [i]->nsegs; k++)
                if (lb [i]->segs [k]->id == la [i]->segs [j]->id) {
                    assert_int_equal (lb [i]->segs [k]->partition, la [i]->segs [j]->partition);
                    found = true;
                }
            assert_true (found);
        }
    }
    free (la);
    free (lb);
}

//  A compaction record of segments olds [0..n) of coll into new_id at snap_ts.
static qv_apply_t
s_compact (qv_catalog_t *cat, wal_t *wal, uint32_t coll, uint64_t ts, uint64_t new_id,
           const uint64_t *olds, uint32_t n, uint64_t snap_ts, uint64_t cut, uint64_t rows)
{
    qv_record_t *rec = qv_record_new (QV_REC_COMPACT);
    rec->ts = ts;
    rec->coll_id = coll;
    rec->in_partition = true;
    rec->seg_id = new_id;
    rec->olds = calloc (n, sizeof (uint64_t));
    memcpy (rec->olds, olds, n * sizeof (uint64_t));
    rec->nolds = n;
    rec->snap_ts = snap_ts;
    rec->expire_cut = cut;
    rec->epoch = 3;
    rec->rows = rows;
    return s_log_apply (cat, wal, rec);
}

static qv_segment_t *
s_seg (qv_catalog_t *cat, uint32_t coll, uint64_t id)
{
    qv_collection_t *c = qv_catalog_find_id (cat, coll);
    for (size_t i = 0; c && i < c->nsegs; i++)
        if (c->segs [i]->id == id)
            return c->segs [i];
    return NULL;
}

//  Compaction records: the segments a record names give way to the rows it keeps
//  (deleted and replaced rows at or before its snapshot, and expired ones, dropped;
//  deletes after the snapshot carried over), keys follow their rows, later deletes and
//  replacements find them; replay from a manifest before the record, from one after
//  it (the WAL tail still holding inserts into the replaced segments) and of the
//  whole WAL gives the same state, and applies the record once.
static void
test_compact (void **state)
{
    fixture_t *f = *state;
    wal_t *wal = &f->wal;
    qv_catalog_t *live = qv_catalog_new ();
    qv_catalog_t *plain = qv_catalog_new ();   //  the same history without compactions
    wal_t plain_wal = { 0 };
    for (int k = 0; k < 2; k++) {
        qv_catalog_t *cat = k ? plain : live;
        wal_t *w = k ? &plain_wal : wal;
        s_create (cat, w, 1, "docs", s_int_schema, 100);
        s_create (cat, w, 2, "words", s_str_schema, 101);
        //  A segment that stays growing: the checkpoint stays before everything below
        s_insert (cat, w, 1, 9, 105, "{\"a\": [{\"id\": 19, \"v\": [9, 9]}]}");
        s_insert (cat, w, 1, 1, 110, "{\"a\": [{\"id\": 0, \"v\": [0, 1]}, {\"id\": 1, \"v\": [1, 1]},"
                                     " {\"id\": 2, \"v\": [2, 1]}, {\"id\": 3, \"v\": [3, 1]}, {\"id\": 4, \"v\": [4, 1]}]}");
        s_insert (cat, w, 1, 2, 120, "{\"a\": [{\"id\": 5, \"v\": [5, 1]}, {\"id\": 6, \"v\": [6, 1]},"
                                     " {\"id\": 7, \"v\": [7, 1]}, {\"id\": 2, \"v\": [2, 2], \"tag\": \"new\"}]}");
        s_insert (cat, w, 2, 3, 130, "{\"a\": [{\"k\": \"a\", \"v\": [1, 0]}, {\"k\": \"b\", \"v\": [0, 1]},"
                                     " {\"k\": \"c\", \"v\": [1, 1]}]}");
        s_insert (cat, w, 2, 4, 140, "{\"a\": [{\"k\": \"d\", \"v\": [1, 2]}, {\"k\": \"e\", \"v\": [2, 1]},"
                                     " {\"k\": \"a\", \"v\": [3, 3], \"n\": 5}]}");
        s_delete (cat, w, 1, 150, "[0, 6]");
        s_delete (cat, w, 2, 160, "[\"b\"]");
    }
    const uint64_t first [] = { 1, 2, 3, 4 };
    uint64_t v1 = s_flush_some (live, f->store, first, 4);
    uint64_t cp1 = qv_catalog_checkpoint (live);
    assert_true (cp1 == 3);                     //  segment 9's insert
    //  A delete after the snapshot the compaction will be made at, before its record
    s_delete (live, wal, 1, 180, "[1]");
    s_delete (plain, &plain_wal, 1, 180, "[1]");
    const uint64_t olds1 [] = { 1, 2 }, olds2 [] = { 3, 4 };
    uint64_t m1 = QV_SEG_COMPACTED | 1, m2 = QV_SEG_COMPACTED | 2;
    //  docs: 1, 3, 4 of segment 1 (0 deleted, 2 replaced), 5, 7, 2 of 2 (6 deleted); 1
    //  is deleted at 180, after the snapshot: kept, deleted
    qv_apply_t res = s_compact (live, wal, 1, 190, m1, olds1, 2, 175, 0, 6);
    assert_int_equal (res.rc, 0);
    //  words: every row inserted before 135 expired (c); a replaced, b deleted
    res = s_compact (live, wal, 2, 191, m2, olds2, 2, 175, 135ull, 3);
    assert_int_equal (res.rc, 0);
    qv_collection_t *docs = qv_catalog_find_id (live, 1), *words = qv_catalog_find_id (live, 2);
    assert_int_equal (docs->nsegs, 2);          //  9 and the merged one
    assert_non_null (s_seg (live, 1, m1));
    assert_null (s_seg (live, 1, 1));
    assert_null (s_seg (live, 1, 2));
    assert_int_equal (atomic_load (&s_seg (live, 1, m1)->rows), 6);
    assert_int_equal (s_seg (live, 1, m1)->state, QV_SEG_FLUSHED);
    assert_true (s_seg (live, 1, m1)->epoch == 3);
    assert_int_equal (words->nsegs, 1);
    assert_int_equal (atomic_load (&s_seg (live, 2, m2)->rows), 3);
    //  A record naming segments it does not have is refused; the same again is a no-op
    const uint64_t none [] = { 77 };
    assert_int_equal (s_compact (live, wal, 1, 192, QV_SEG_COMPACTED | 3, none, 1, 175, 0, 0).rc,
                      QV_ENOTFOUND);
    assert_int_equal (s_compact (live, wal, 1, 193, m1, olds1, 2, 175, 0, 6).rc, 0);
    assert_int_equal (docs->nsegs, 2);
    //  docs reads as the same history without the compaction
    const char *ids = "[0, 1, 2, 3, 4, 5, 6, 7, 8, 19]";
    size_t sa, sb;
    void *ga = s_get (docs, ids, &sa), *gb = s_get (qv_catalog_find_id (plain, 1), ids, &sb);
    assert_true (sa == sb && memcmp (ga, gb, sa) == 0);
    free (ga);
    free (gb);
    assert_int_equal (s_visible (docs, 10000), s_visible (qv_catalog_find_id (plain, 1), 10000));
    assert_int_equal (s_visible (docs, 185), 6);     //  19, 3, 4, 5, 7, 2 (1 gone at 180)
    assert_true (docs->live_rows == qv_catalog_find_id (plain, 1)->live_rows);
    //  words: c expired and went with the compaction
    s_assert_get (words, "[\"a\", \"b\", \"c\", \"d\", \"e\"]",
                  "[{\"k\": \"a\", \"v\": [3.0f, 3.0f], \"n\": 5}, {\"k\": \"d\", \"v\": [1.0f, 2.0f], \"n\": 0},"
                  " {\"k\": \"e\", \"v\": [2.0f, 1.0f], \"n\": 0}]", __LINE__);
    assert_true (words->live_rows == 3);
    //  Keys found in their new places: a delete and a replacement after the compaction
    s_delete (live, wal, 1, 200, "[3]");
    s_delete (plain, &plain_wal, 1, 200, "[3]");
    s_insert (live, wal, 1, 9, 210, "{\"a\": [{\"id\": 4, \"v\": [4, 4], \"tag\": \"late\"}]}");
    s_insert (plain, &plain_wal, 1, 9, 210, "{\"a\": [{\"id\": 4, \"v\": [4, 4], \"tag\": \"late\"}]}");
    ga = s_get (docs, ids, &sa);
    gb = s_get (qv_catalog_find_id (plain, 1), ids, &sb);
    assert_true (sa == sb && memcmp (ga, gb, sa) == 0);
    free (ga);
    free (gb);
    assert_true (docs->live_rows == qv_catalog_find_id (plain, 1)->live_rows);

    //  Recovery from the manifest before the records, replaying from its checkpoint
    qv_catalog_t *rec = qv_catalog_new ();
    assert_int_equal (qv_catalog_recover (rec, f->store), 0);
    assert_true (qv_catalog_manifest_version (rec) == v1);
    for (int i = (int) cp1 - 1; i < wal->n; i++)
        s_replay_one (rec, wal, i);
    s_assert_same_state (live, rec);
    //  A manifest after the records (segment 9 still growing: replay starts before the
    //  inserts into the replaced segments, which it must skip)
    const uint64_t merged [] = { m1, m2 };
    for (int k = 0; k < 2; k++) {
        //  The compactor's objects (the same rows), written before its record
        qv_segment_t *seg = s_seg (live, k + 1, merged [k]);
        size_t size;
        void *object = qv_segment_save (seg, &size);
        char key [96];
        qv_segment_object_key (seg->coll_id, seg->id, seg->epoch, key, sizeof key);
        assert_int_equal (qv_store_put (f->store, key, object, size), 0);
        free (object);
    }
    s_flush_some (live, f->store, merged, 2);
    assert_true (qv_catalog_checkpoint (live) == cp1);
    qv_catalog_t *after = qv_catalog_new ();
    assert_int_equal (qv_catalog_recover (after, f->store), 0);
    assert_int_equal (qv_catalog_find_id (after, 1)->nretired, 2);
    for (int i = (int) cp1 - 1; i < wal->n; i++)
        s_replay_one (after, wal, i);
    s_assert_same_state (live, after);
    assert_null (s_seg (after, 1, 1));
    //  The whole WAL into an empty catalog: the replaced segments are never flushed
    //  there, the records merge them all the same
    qv_catalog_t *all = qv_catalog_new ();
    for (int i = 0; i < wal->n; i++)
        s_replay_one (all, wal, i);
    s_assert_same_state (live, all);

    qv_catalog_destroy (&all);
    qv_catalog_destroy (&after);
    qv_catalog_destroy (&rec);
    qv_catalog_destroy (&plain);
    qv_catalog_destroy (&live);
    for (int i = 0; i < plain_wal.n; i++)
        free (plain_wal.data [i]);
}

//  Builds a history in four parts with a flush + manifest after part 2; a fresh
//  catalog recovers the manifest and replays the WAL; the result must equal the
//  catalog that applied everything once.
static void
test_recover_and_replay (void **state)
{
    fixture_t *f = *state;
    wal_t *wal = &f->wal;
    qv_catalog_t *live = qv_catalog_new ();
    //  Part 1: two collections and inserts
    s_create (live, wal, 1, "docs", s_int_schema, 100);
    s_create (live, wal, 2, "words", s_str_schema, 101);
    s_create (live, wal, 3, "gone", s_int_schema, 102);
    s_insert (live, wal, 1, 1, 110, "{\"a\": [{\"id\": 1, \"v\": [1, 0]}, {\"id\": 2, \"v\": [0, 1], \"tag\": \"t2\"},"
                                    " {\"id\": 3, \"v\": [1, 1]}, {\"id\": 4, \"v\": [2, 1]}]}");
    s_insert (live, wal, 2, 2, 120, "{\"a\": [{\"k\": \"a\", \"v\": [1, 0]}, {\"k\": \"b\", \"v\": [0, 1], \"n\": 2}]}");
    s_insert (live, wal, 3, 3, 125, "{\"a\": [{\"id\": 1, \"v\": [1, 0]}]}");
    //  Part 2: replace and delete inside what will be flushed
    s_insert (live, wal, 1, 1, 200, "{\"a\": [{\"id\": 2, \"v\": [5, 5], \"tag\": \"t2b\"}]}");
    s_delete (live, wal, 1, 210, "[3]");
    s_delete (live, wal, 2, 220, "[\"a\"]");
    uint64_t version = s_flush_all (live, f->store);
    assert_true (version >= 1);
    uint64_t checkpoint = qv_catalog_checkpoint (live);
    assert_true (checkpoint == (uint64_t) wal->n + 1);      //  everything flushed
    int manifest_at = wal->n;
    //  Part 3: after the manifest, into new growing segments, touching flushed rows
    s_insert (live, wal, 1, 4, 300, "{\"a\": [{\"id\": 4, \"v\": [4, 4], \"tag\": \"t4b\"}, {\"id\": 5, \"v\": [0, 5]}]}");
    s_delete (live, wal, 1, 310, "[1]");
    s_insert (live, wal, 2, 5, 320, "{\"a\": [{\"k\": \"c\", \"v\": [1, 2]}, {\"k\": \"b\", \"v\": [3, 3], \"n\": 7}]}");
    s_drop (live, wal, 3, 330);
    //  Part 4: a new collection after the manifest
    s_create (live, wal, 4, "late", s_str_schema, 400);
    s_insert (live, wal, 4, 6, 410, "{\"a\": [{\"k\": \"d\", \"v\": [1, 0]}]}");
    assert_true (qv_catalog_checkpoint (live) == (uint64_t) manifest_at + 1);

    //  Recovery from the store, then replay from the checkpoint
    qv_catalog_t *rec = qv_catalog_new ();
    int rc = qv_catalog_recover (rec, f->store);
    if (rc)
        fail_msg ("recover: %s: %s", qv_rc_name (rc), qv_err_msg ());
    assert_true (qv_catalog_manifest_version (rec) == version);
    assert_true (qv_catalog_checkpoint (rec) == checkpoint);
    assert_true (qv_catalog_applied_seq (rec) == (uint64_t) manifest_at);
    for (int i = (int) checkpoint - 1; i < wal->n; i++)
        s_replay_one (rec, wal, i);
    s_assert_same_state (live, rec);
    assert_true (qv_catalog_max_ts (rec) == qv_catalog_max_ts (live));
    assert_int_equal (qv_catalog_next_coll_id (rec), qv_catalog_next_coll_id (live));
    assert_true (qv_catalog_next_seg_id (rec) == qv_catalog_next_seg_id (live));

    //  Idempotence: recovering again and replaying the whole WAL from the start
    //  (records the manifest already holds included) gives the same state too
    qv_catalog_t *again = qv_catalog_new ();
    assert_int_equal (qv_catalog_recover (again, f->store), 0);
    for (int i = 0; i < wal->n; i++)
        s_replay_one (again, wal, i);
    s_assert_same_state (live, again);
    //  ... and so does replaying the whole WAL into a catalog without a manifest
    qv_catalog_t *twice = qv_catalog_new ();
    for (int i = 0; i < wal->n; i++)
        s_replay_one (twice, wal, i);
    s_assert_same_state (live, twice);

    //  A second flush and manifest: recover sees everything without replay
    s_flush_all (live, f->store);
    qv_catalog_t *last = qv_catalog_new ();
    assert_int_equal (qv_catalog_recover (last, f->store), 0);
    assert_true (qv_catalog_checkpoint (last) == (uint64_t) wal->n + 1);
    s_assert_same_state (live, last);

    qv_catalog_destroy (&last);
    qv_catalog_destroy (&twice);
    qv_catalog_destroy (&again);
    qv_catalog_destroy (&rec);
    qv_catalog_destroy (&live);
}

//  A manifest written while other segments are still growing: the checkpoint lies
//  before records the manifest already holds, so replay meets inserts into flushed
//  segments, deletes of rows the manifest already deleted, and a key whose newer row
//  is in a flushed segment of another shard.
static void
test_partial_manifest (void **state)
{
    fixture_t *f = *state;
    wal_t *wal = &f->wal;
    qv_catalog_t *live = qv_catalog_new ();
    s_create (live, wal, 1, "docs", s_int_schema, 100);
    s_create (live, wal, 2, "words", s_str_schema, 101);
    s_insert (live, wal, 2, 2, 105, "{\"a\": [{\"k\": \"a\", \"v\": [1, 0]}, {\"k\": \"b\", \"v\": [0, 1]}]}");
    s_insert (live, wal, 1, 1, 110, "{\"a\": [{\"id\": 1, \"v\": [1, 0]}, {\"id\": 2, \"v\": [0, 1]},"
                                    " {\"id\": 3, \"v\": [1, 1]}, {\"id\": 4, \"v\": [2, 1]}]}");
    s_delete (live, wal, 1, 120, "[2]");
    //  Segment 9 (another shard) gets key 5 first, then segment 1 a newer key 5
    s_insert (live, wal, 1, 9, 130, "{\"a\": [{\"id\": 5, \"v\": [5, 0], \"tag\": \"old\"}, {\"id\": 3, \"v\": [3, 3], \"tag\": \"new3\"}]}");
    s_insert (live, wal, 1, 1, 140, "{\"a\": [{\"id\": 5, \"v\": [5, 5], \"tag\": \"new\"}, {\"id\": 6, \"v\": [6, 6]}]}");
    s_delete (live, wal, 1, 150, "[6]");
    s_delete (live, wal, 2, 155, "[\"b\"]");
    //  Only segment 1 is flushed; segments 2 and 9 are still growing
    uint64_t only [] = { 1 };
    s_flush_some (live, f->store, only, 1);
    uint64_t checkpoint = qv_catalog_checkpoint (live);
    assert_true (checkpoint == 3);          //  segment 2's first record
    s_insert (live, wal, 1, 10, 200, "{\"a\": [{\"id\": 1, \"v\": [9, 9], \"tag\": \"after\"}]}");
    s_delete (live, wal, 1, 210, "[4, 5]");

    qv_catalog_t *rec = qv_catalog_new ();
    assert_int_equal (qv_catalog_recover (rec, f->store), 0);
    for (int i = (int) checkpoint - 1; i < wal->n; i++)
        s_replay_one (rec, wal, i);
    s_assert_same_state (live, rec);
    ASSERT_GET (qv_catalog_find (rec, "docs"), "[1, 2, 3, 4, 5, 6]",
                "[{\"id\": 1, \"v\": [9.0f, 9.0f], \"tag\": \"after\"}, {\"id\": 3, \"v\": [3.0f, 3.0f], \"tag\": \"new3\"}]");
    ASSERT_GET (qv_catalog_find (rec, "words"), "[\"a\", \"b\"]", "[{\"k\": \"a\", \"v\": [1.0f, 0.0f], \"n\": 0}]");
    qv_catalog_destroy (&rec);
    qv_catalog_destroy (&live);
}

//  A WAL object's records are applied one at a time (the searcher's messages), and a
//  segment flush may complete between two of them: the manifest it writes holds the
//  records before and not those after, so its checkpoint keeps the object and replay
//  brings back the rest (a delete, here) instead of skipping it.
static void
test_manifest_inside_object (void **state)
{
    fixture_t *f = *state;
    wal_t *wal = &f->wal;
    qv_catalog_t *live = qv_catalog_new ();
    s_create (live, wal, 1, "docs", s_int_schema, 100);
    s_insert (live, wal, 1, 1, 110, "{\"a\": [{\"id\": 1, \"v\": [1, 0]}, {\"id\": 2, \"v\": [0, 1]},"
                                    " {\"id\": 3, \"v\": [1, 1]}]}");
    s_delete (live, wal, 1, 120, "[1]");
    qv_catalog_set_partial (live, true);
    uint64_t object = wal->seq [wal->n - 1];
    s_flush_all (live, f->store);
    uint64_t checkpoint = qv_catalog_checkpoint (live);
    assert_true (checkpoint == object);     //  not past the object half applied
    wal->join = true;
    s_delete (live, wal, 1, 130, "[2]");
    wal->join = false;
    assert_true (wal->seq [wal->n - 1] == object);
    qv_catalog_set_partial (live, false);
    assert_true (qv_catalog_checkpoint (live) == object + 1);

    qv_catalog_t *rec = qv_catalog_new ();
    assert_int_equal (qv_catalog_recover (rec, f->store), 0);
    assert_true (qv_catalog_replay_from (rec) == checkpoint);
    for (int i = 0; i < wal->n; i++)
        if (wal->seq [i] >= checkpoint)
            s_replay_one (rec, wal, i);
    s_assert_same_state (live, rec);
    ASSERT_GET (qv_catalog_find (rec, "docs"), "[1, 2, 3]", "[{\"id\": 3, \"v\": [1.0f, 1.0f], \"tag\": null}]");
    qv_catalog_destroy (&rec);
    qv_catalog_destroy (&live);
}

//  Rows get (ids) finds in partitions parts (NULL: all).
static size_t
s_get_count (qv_collection_t *c, const char *ids, const roaring_bitmap_t *parts)
{
    qv_doc_t *doc = qv_test_doc (ids);
    qv_keys_t keys;
    assert_int_equal (qv_keys_from_request (&c->schema->fields [c->schema->pk], qv_doc_root (doc), 1000, &keys), 0);
    qv_doc_destroy (&doc);
    qv_wr_t *w = qv_wr_new ();
    qv_output_t none = { .nfids = 0 };
    assert_int_equal (qv_collection_get (c, &keys, parts, &none, w), 0);
    size_t size;
    const void *data = qv_wr_data (w, &size);
    int rc;
    qv_doc_t *got = qv_doc_parse (data, size, SIZE_MAX, &rc);
    assert_non_null (got);
    size_t n = qv_val_len (qv_doc_root (got));
    qv_doc_destroy (&got);
    qv_wr_destroy (&w);
    qv_keys_free (&keys);
    return n;
}

static roaring_bitmap_t *
s_parts (uint32_t a, int64_t b)
{
    roaring_bitmap_t *bm = roaring_bitmap_create ();
    roaring_bitmap_add (bm, a);
    if (b >= 0)
        roaring_bitmap_add (bm, (uint32_t) b);
    return bm;
}

//  Named partitions: create / drop rules, inserts and deletes in a partition, a key
//  replaced across partitions, reads restricted to partitions, a drop removing rows
//  and keys; then recovery from manifests before and after the drop, with replay of
//  the WAL (whole or from the checkpoint), always equal to the live catalog.
static void
test_partitions (void **state)
{
    fixture_t *f = *state;
    wal_t *wal = &f->wal;
    qv_catalog_t *live = qv_catalog_new ();
    s_create (live, wal, 1, "docs", s_int_schema, 100);
    qv_collection_t *c = qv_catalog_find (live, "docs");
    assert_int_equal (c->nparts, 1);
    assert_int_equal (c->parts [0].id, 0);
    assert_string_equal (c->parts [0].name, "_default");
    assert_int_equal (s_partition (live, wal, QV_REC_CREATE_PARTITION, 1, 1, "p1", 101).rc, 0);
    assert_int_equal (s_partition (live, wal, QV_REC_CREATE_PARTITION, 1, 2, "p2", 102).rc, 0);
    assert_int_equal (s_partition (live, wal, QV_REC_CREATE_PARTITION, 1, 3, "p1", 103).rc, QV_EEXIST);
    assert_int_equal (s_partition (live, wal, QV_REC_DROP_PARTITION, 1, 0, "_default", 104).rc, QV_EINVAL);
    assert_int_equal (s_partition (live, wal, QV_REC_DROP_PARTITION, 1, 7, "p7", 105).rc, QV_ENOTFOUND);
    assert_int_equal (c->nparts, 3);
    assert_true (qv_collection_partition (c, "p2")->id == 2);
    s_insert_part (live, wal, 1, 0, 1, 110, "{\"a\": [{\"id\": 1, \"v\": [1, 0]}, {\"id\": 2, \"v\": [0, 1]}]}");
    s_insert_part (live, wal, 1, 1, 2, 111, "{\"a\": [{\"id\": 3, \"v\": [1, 1]}, {\"id\": 4, \"v\": [2, 1]},"
                                            " {\"id\": 5, \"v\": [3, 1]}]}");
    s_insert_part (live, wal, 1, 2, 3, 112, "{\"a\": [{\"id\": 6, \"v\": [1, 6]}, {\"id\": 7, \"v\": [1, 7]}]}");
    assert_int_equal (s_insert_part (live, wal, 1, 9, 4, 113, "{\"a\": [{\"id\": 8, \"v\": [1, 8]}]}").rc, QV_ENOTFOUND);
    //  Key 3 lives in p1; inserted into _default it moves there
    s_insert_part (live, wal, 1, 0, 1, 114, "{\"a\": [{\"id\": 3, \"v\": [3, 3], \"tag\": \"moved\"}]}");
    assert_true (c->live_rows == 7);
    const char *all = "[1, 2, 3, 4, 5, 6, 7, 8]";
    roaring_bitmap_t *p1 = s_parts (1, -1), *p02 = s_parts (0, 2);
    assert_int_equal (s_get_count (c, all, NULL), 7);
    assert_int_equal (s_get_count (c, all, p1), 2);         //  4, 5
    assert_int_equal (s_get_count (c, all, p02), 5);        //  1, 2, 3, 6, 7
    qv_snapshot_t *snap = qv_snapshot_new (c, 10000, c->schema->vec, p1);
    assert_int_equal (snap->nsegs, 1);
    assert_int_equal (snap->segs [0]->partition, 1);
    qv_snapshot_destroy (&snap);
    //  A delete restricted to p2 deletes only keys living there
    qv_record_t *del = qv_record_new (QV_REC_DELETE);
    del->ts = 120;
    del->coll_id = 1;
    del->partition = 2;
    del->in_partition = true;
    del->keys.n = 2;
    del->keys.ints = malloc (16);
    del->keys.ints [0] = 4;
    del->keys.ints [1] = 6;
    assert_int_equal (s_log_apply (live, wal, del).count, 1);
    assert_int_equal (s_get_count (c, all, NULL), 6);
    assert_int_equal (s_get_count (c, "[4, 6]", NULL), 1);

    uint64_t version = s_flush_all (live, f->store);
    int manifest_at = wal->n;
    //  After the manifest: p1 goes with its rows and keys; inserts into it fail
    assert_int_equal (s_partition (live, wal, QV_REC_DROP_PARTITION, 1, 1, "p1", 200).rc, 0);
    assert_int_equal (c->nparts, 2);
    assert_true (c->live_rows == 4);                         //  1, 2, 3, 7
    assert_int_equal (s_get_count (c, all, NULL), 4);
    for (size_t i = 0; i < c->nsegs; i++)
        assert_int_not_equal (c->segs [i]->partition, 1);
    assert_int_equal (s_insert_part (live, wal, 1, 1, 2, 210, "{\"a\": [{\"id\": 9, \"v\": [1, 9]}]}").rc, QV_ENOTFOUND);
    //  A new partition never reuses an id; a new name for the old one is fine
    assert_int_equal (s_partition (live, wal, QV_REC_CREATE_PARTITION, 1, 4, "p1", 220).rc, 0);
    s_insert_part (live, wal, 1, 4, 5, 230, "{\"a\": [{\"id\": 4, \"v\": [4, 4]}, {\"id\": 10, \"v\": [1, 10]}]}");
    assert_int_equal (c->next_part, 5);

    //  Recovery from the manifest written before the drop, replay from its checkpoint
    qv_catalog_t *rec = qv_catalog_new ();
    assert_int_equal (qv_catalog_recover (rec, f->store), 0);
    assert_true (qv_catalog_manifest_version (rec) == version);
    assert_true (qv_catalog_checkpoint (rec) == (uint64_t) manifest_at + 1);
    for (int i = manifest_at; i < wal->n; i++)
        s_replay_one (rec, wal, i);
    s_assert_same_state (live, rec);
    //  ... and replaying the whole WAL over it, or into an empty catalog
    qv_catalog_t *again = qv_catalog_new ();
    assert_int_equal (qv_catalog_recover (again, f->store), 0);
    for (int i = 0; i < wal->n; i++)
        s_replay_one (again, wal, i);
    s_assert_same_state (live, again);
    qv_catalog_t *bare = qv_catalog_new ();
    for (int i = 0; i < wal->n; i++)
        s_replay_one (bare, wal, i);
    s_assert_same_state (live, bare);
    //  A manifest after the drop: the whole WAL replayed over it (creates, inserts and
    //  the drop of the partition it no longer has are skipped) changes nothing
    s_flush_all (live, f->store);
    qv_catalog_t *last = qv_catalog_new ();
    assert_int_equal (qv_catalog_recover (last, f->store), 0);
    s_assert_same_state (live, last);
    for (int i = 0; i < wal->n; i++)
        s_replay_one (last, wal, i);
    s_assert_same_state (live, last);

    //  Reads name partitions: unknown ones are NOT_FOUND, an empty list is all
    roaring_bitmap_t *parts = NULL;
    qv_doc_t *names = qv_test_doc ("[\"p2\", \"_default\"]");
    assert_int_equal (qv_collection_read_partitions (c, qv_doc_root (names), &parts), 0);
    assert_int_equal (roaring_bitmap_get_cardinality (parts), 2);
    assert_true (roaring_bitmap_contains (parts, 0) && roaring_bitmap_contains (parts, 2));
    roaring_bitmap_free (parts);
    qv_doc_destroy (&names);
    names = qv_test_doc ("[\"p2\", \"gone\"]");
    assert_int_equal (qv_collection_read_partitions (c, qv_doc_root (names), &parts), QV_ENOTFOUND);
    assert_non_null (strstr (qv_err_msg (), "'gone'"));
    assert_null (parts);
    qv_doc_destroy (&names);
    names = qv_test_doc ("[]");
    assert_int_equal (qv_collection_read_partitions (c, qv_doc_root (names), &parts), 0);
    assert_null (parts);
    qv_doc_destroy (&names);

    roaring_bitmap_free (p1);
    roaring_bitmap_free (p02);
    qv_catalog_destroy (&last);
    qv_catalog_destroy (&bare);
    qv_catalog_destroy (&again);
    qv_catalog_destroy (&rec);
    qv_catalog_destroy (&live);
}

static const char *s_keyed_schema =
    "[{\"name\": \"id\", \"type\": \"int64\", \"primary\": true},"
    " {\"name\": \"v\", \"type\": \"float_vector\", \"dim\": 2},"
    " {\"name\": \"t\", \"type\": \"varchar\", \"partition_key\": true}]";

//  An insert into the partition-key collection 1 of rows {id, t: "k<id % 7>"} for ids
//  [from, to): one segment per partition touched (base + partition), or missing the
//  segment of one partition when skip >= 0.
static qv_apply_t
s_insert_keyed (qv_catalog_t *cat, wal_t *wal, int from, int to, uint64_t ts, uint64_t base,
                int64_t skip)
{
    const qv_schema_t *schema = qv_catalog_schema_of (cat, 1);
    qv_collection_t *c = qv_catalog_find_id (cat, 1);
    qv_record_t *rec = qv_record_new (QV_REC_INSERT);
    rec->ts = ts;
    rec->coll_id = 1;
    char *rows = malloc (64 * (size_t) (to - from) + 16), *p = rows;
    p += sprintf (p, "{\"a\": [");
    for (int i = from; i < to; i++)
        p += sprintf (p, "%s{\"id\": %d, \"v\": [%d, 1], \"t\": \"k%d\"}", i > from ? ", " : "", i, i, i % 7);
    sprintf (p, "]}");
    qv_doc_t *doc = qv_test_doc (rows);
    free (rows);
    assert_int_equal (qv_batch_from_request (schema, qv_val_get (qv_doc_root (doc), "a"), NULL, 1000, &rec->batch), 0);
    qv_doc_destroy (&doc);
    rec->psegs = calloc (c->num_partitions, sizeof (qv_pseg_t));
    for (uint32_t part = 0; part < c->num_partitions; part++)
        if (part != skip)
            rec->psegs [rec->npsegs++] = (qv_pseg_t) { part, base + part };
    return s_log_apply (cat, wal, rec);
}

//  A partition-key collection: internal partitions, rows placed by the hash of their
//  key (replay places them the same), pruning of filters on the key, and partition
//  names refused in reads.
static void
test_partition_key (void **state)
{
    fixture_t *f = *state;
    wal_t *wal = &f->wal;
    qv_catalog_t *live = qv_catalog_new ();
    qv_record_t *create = qv_record_new (QV_REC_CREATE_COLLECTION);
    create->ts = 100;
    create->coll_id = 1;
    strcpy (create->name, "keyed");
    qv_doc_t *doc = qv_test_doc (s_keyed_schema);
    int rc;
    create->schema = qv_schema_parse (qv_doc_root (doc), &rc);
    qv_doc_destroy (&doc);
    assert_int_equal (qv_partition_check_schema (create->schema), 0);
    create->shards = 1;
    strcpy (create->consistency, "strong");
    create->num_partitions = 4;
    assert_int_equal (s_log_apply (live, wal, create).rc, 0);
    qv_collection_t *c = qv_catalog_find (live, "keyed");
    assert_int_equal (c->part_key, 2);
    assert_int_equal (c->nparts, 4);
    for (uint32_t i = 0; i < 4; i++) {
        char name [32];
        snprintf (name, sizeof name, "_default_%u", i);
        assert_string_equal (c->parts [i].name, name);
        assert_int_equal (c->parts [i].id, i);
    }
    //  A collection whose create carries no num_partitions (logged before partitions
    //  existed) ignores the key flag: one `_default`, rows inserted as before
    s_create (live, wal, 2, "legacy", s_keyed_schema, 105);
    qv_collection_t *legacy = qv_catalog_find (live, "legacy");
    assert_int_equal (legacy->part_key, -1);
    assert_int_equal (legacy->nparts, 1);
    assert_string_equal (legacy->parts [0].name, "_default");
    assert_int_equal (s_insert (live, wal, 2, 50, 106, "{\"a\": [{\"id\": 1, \"v\": [1, 0], \"t\": \"x\"}]}").rc, 0);
    assert_true (legacy->live_rows == 1);
    assert_int_equal (s_insert_keyed (live, wal, 0, 40, 110, 100, -1).rc, 0);
    //  A record naming no segment for one of its rows' partitions applies nothing
    uint32_t p3 = qv_partition_of_str ("k3", 2, 4);
    assert_int_equal (s_insert_keyed (live, wal, 40, 50, 120, 100, p3).rc, QV_ERR);
    assert_true (c->live_rows == 40);
    //  Every row sits in the partition its key hashes to, in that partition's segment
    uint32_t total = 0;
    for (size_t i = 0; i < c->nsegs; i++) {
        qv_segment_t *seg = c->segs [i];
        assert_true (seg->id == 100 + seg->partition);
        for (uint32_t r = 0; r < atomic_load (&seg->rows); r++, total++) {
            const qv_bytes_t *t = &seg->batch->cols [2].var [r];
            assert_int_equal (qv_partition_of_str (t->ptr, t->len, 4), seg->partition);
            int64_t id = qv_col_i64 (&seg->batch->cols [0], r);
            char want [8];
            snprintf (want, sizeof want, "k%d", (int) (id % 7));
            assert_int_equal (t->len, strlen (want));
            assert_memory_equal (t->ptr, want, t->len);
        }
    }
    assert_int_equal (total, 40);
    //  The hash is CRC32C of the bytes (int64: 8 bytes little-endian) modulo n
    assert_int_equal (qv_partition_of_str ("k3", 2, 4), qv_crc32c ("k3", 2) % 4);
    uint8_t le [8] = { 0x39, 0x30, 0, 0, 0, 0, 0, 0 };
    assert_int_equal (qv_partition_of_int (12345, 1000), qv_crc32c (le, 8) % 1000);

    //  Pruning: == and in give the partitions of their values; a range gives none
    qv_expr_t *e = qv_expr_parse (c->schema, "t in [\"k3\", \"k5\"] and id > 2", 28, &rc);
    assert_non_null (e);
    roaring_bitmap_t *parts = NULL;
    assert_int_equal (qv_collection_prune (c, e, &parts), 0);
    assert_non_null (parts);
    roaring_bitmap_t *want = s_parts (qv_partition_of_str ("k3", 2, 4), qv_partition_of_str ("k5", 2, 4));
    assert_true (roaring_bitmap_equals (parts, want));
    roaring_bitmap_free (want);
    roaring_bitmap_free (parts);
    qv_expr_destroy (&e);
    e = qv_expr_parse (c->schema, "t > \"k3\"", 8, &rc);
    assert_non_null (e);
    parts = NULL;
    assert_int_equal (qv_collection_prune (c, e, &parts), 0);
    assert_null (parts);
    qv_expr_destroy (&e);
    //  ... and the pruned snapshot holds exactly the segments of those partitions
    e = qv_expr_parse (c->schema, "t == \"k4\"", 9, &rc);
    assert_int_equal (qv_collection_prune (c, e, &parts), 0);
    qv_snapshot_t *snap = qv_snapshot_new (c, 10000, c->schema->vec, parts);
    assert_int_equal (snap->nsegs, 1);
    assert_int_equal (snap->segs [0]->partition, qv_partition_of_str ("k4", 2, 4));
    qv_snapshot_destroy (&snap);
    roaring_bitmap_free (parts);
    qv_expr_destroy (&e);

    //  Partition names are not for reads of a partition-key collection
    doc = qv_test_doc ("[\"_default_0\"]");
    assert_int_equal (qv_collection_read_partitions (c, qv_doc_root (doc), &parts), QV_EINVAL);
    qv_doc_destroy (&doc);

    //  Recovery: the same placement from a manifest plus replay, and from replay alone
    assert_int_equal (s_insert_keyed (live, wal, 50, 60, 130, 100, -1).rc, 0);
    s_flush_all (live, f->store);
    assert_int_equal (s_insert_keyed (live, wal, 60, 80, 140, 200, -1).rc, 0);
    assert_true (c->live_rows == 70);
    qv_catalog_t *rec = qv_catalog_new ();
    assert_int_equal (qv_catalog_recover (rec, f->store), 0);
    for (int i = (int) qv_catalog_checkpoint (rec) - 1; i < wal->n; i++)
        s_replay_one (rec, wal, i);
    s_assert_same_state (live, rec);
    qv_catalog_t *bare = qv_catalog_new ();
    for (int i = 0; i < wal->n; i++)
        s_replay_one (bare, wal, i);
    s_assert_same_state (live, bare);
    qv_catalog_destroy (&bare);
    qv_catalog_destroy (&rec);
    qv_catalog_destroy (&live);
}

static void
test_recover_empty_store (void **state)
{
    fixture_t *f = *state;
    qv_catalog_t *cat = qv_catalog_new ();
    assert_int_equal (qv_catalog_recover (cat, f->store), 0);
    size_t n;
    free (qv_catalog_list (cat, &n));
    assert_int_equal (n, 0);
    assert_true (qv_catalog_checkpoint (cat) == 1);
    qv_catalog_destroy (&cat);
}

//  Writes the next manifest of cat at epoch under its key; returns its version.
static uint64_t
s_put_manifest (qv_catalog_t *cat, qv_store_t *store, uint64_t epoch)
{
    qv_catalog_set_epoch (cat, epoch);
    uint64_t version;
    zchunk_t *chunk = qv_catalog_manifest (cat, &version);
    char key [64];
    qv_manifest_key (version, epoch, key, sizeof key);
    assert_int_equal (qv_store_put (store, key, zchunk_data (chunk), zchunk_size (chunk)), 0);
    zchunk_destroy (&chunk);
    return version;
}

//  The version recovery loads from the store (asserting it succeeds).
static uint64_t
s_recovered_version (qv_store_t *store)
{
    qv_catalog_t *cat = qv_catalog_new ();
    assert_int_equal (qv_catalog_recover (cat, store), 0);
    uint64_t version = qv_catalog_manifest_version (cat);
    qv_catalog_destroy (&cat);
    return version;
}

//  Manifests are fenced like WAL objects: at each version the highest epoch, and
//  only if not below an epoch taken at a lower version. A deposed writer's manifest
//  (here garbage: taking it would fail the recovery) is never read.
static void
test_manifest_fencing (void **state)
{
    fixture_t *f = *state;
    char key [64];
    qv_manifest_key (7, 0, key, sizeof key);
    assert_string_equal (key, "meta/manifest/00000000000000000007");
    qv_manifest_key (7, 3, key, sizeof key);
    assert_string_equal (key, "meta/manifest/00000000000000000007-00000000000000000003");

    qv_catalog_t *a = qv_catalog_new ();            //  writer A: epoch 1
    assert_int_equal (s_put_manifest (a, f->store, 0), 1);  //  written before fencing
    assert_int_equal (s_put_manifest (a, f->store, 1), 2);
    assert_int_equal (s_recovered_version (f->store), 2);
    //  Writer B (epoch 2) fences at version 3; A's late manifests land at 3 and 4
    qv_catalog_t *b = qv_catalog_new ();
    assert_int_equal (qv_catalog_recover (b, f->store), 0);
    assert_int_equal (s_put_manifest (b, f->store, 2), 3);
    const char *late [] = { "meta/manifest/00000000000000000003-00000000000000000001",
                            "meta/manifest/00000000000000000004-00000000000000000001" };
    for (int i = 0; i < 2; i++)
        assert_int_equal (qv_store_put (f->store, late [i], "garbage", 7), 0);
    assert_int_equal (s_recovered_version (f->store), 3);
    //  B writes on: version 4 of epoch 2 wins over A's 4 of epoch 1
    assert_int_equal (s_put_manifest (b, f->store, 2), 4);
    assert_int_equal (s_recovered_version (f->store), 4);
    //  A key whose epoch is not its payload's is corrupt
    qv_catalog_set_epoch (b, 5);
    uint64_t version;
    zchunk_t *chunk = qv_catalog_manifest (b, &version);
    qv_manifest_key (version, 6, key, sizeof key);
    assert_int_equal (qv_store_put (f->store, key, zchunk_data (chunk), zchunk_size (chunk)), 0);
    zchunk_destroy (&chunk);
    qv_catalog_t *c = qv_catalog_new ();
    assert_int_equal (qv_catalog_recover (c, f->store), QV_ECORRUPT);
    assert_non_null (strstr (qv_err_msg (), "holds writer epoch 5, its key says 6"));
    qv_catalog_destroy (&c);
    qv_catalog_destroy (&b);
    qv_catalog_destroy (&a);
}

//  Rewrites an object in the store through fn (which may change its size).
static void
s_rewrite (qv_store_t *store, const char *key, void (*fn) (uint8_t *, size_t *, int), int arg)
{
    void *data;
    size_t size;
    assert_int_equal (qv_store_get (store, key, &data, &size), 0);
    data = realloc (data, size + 16);
    fn (data, &size, arg);
    assert_int_equal (qv_store_put (store, key, data, size), 0);
    free (data);
}

static void s_flip (uint8_t *d, size_t *size, int at) { d [at < 0 ? (int) *size + at : at] ^= 0x20; }
static void s_cut (uint8_t *d, size_t *size, int keep) { (void) d; *size = (size_t) keep; }
static void
s_body_byte_fixed_crc (uint8_t *d, size_t *size, int at)
{
    d [at] = 0xc1;
    uint32_t crc = qv_crc32c (d, *size - 4);
    memcpy (d + *size - 4, &crc, 4);
}

//  Expects recovery to fail with QV_ECORRUPT and a message naming `name`.
static void
s_expect_corrupt (qv_store_t *store, const char *name, const char *what)
{
    qv_catalog_t *cat = qv_catalog_new ();
    int rc = qv_catalog_recover (cat, store);
    if (rc != QV_ECORRUPT)
        fail_msg ("%s: recover gave %s (%s)", what, qv_rc_name (rc), qv_err_msg ());
    if (!strstr (qv_err_msg (), name))
        fail_msg ("%s: message '%s' does not name %s", what, qv_err_msg (), name);
    qv_catalog_destroy (&cat);
}

//  Copies obj into pk, leaving out "epoch" in every map below the root (the segment
//  and index object epochs that manifest format 4 added).
static void
s_pack_without_epochs (msgpack_packer *pk, const msgpack_object *obj, int depth)
{
    if (obj->type == MSGPACK_OBJECT_MAP) {
        const msgpack_object_map *m = &obj->via.map;
        uint32_t n = 0;
        for (uint32_t i = 0; i < m->size; i++)
            n += !(depth > 0 && m->ptr [i].key.type == MSGPACK_OBJECT_STR
                   && m->ptr [i].key.via.str.size == 5
                   && memcmp (m->ptr [i].key.via.str.ptr, "epoch", 5) == 0);
        msgpack_pack_map (pk, n);
        for (uint32_t i = 0; i < m->size; i++) {
            const msgpack_object *k = &m->ptr [i].key;
            if (depth > 0 && k->type == MSGPACK_OBJECT_STR && k->via.str.size == 5
            &&  memcmp (k->via.str.ptr, "epoch", 5) == 0)
                continue;
            msgpack_pack_object (pk, *k);
            s_pack_without_epochs (pk, &m->ptr [i].val, depth + 1);
        }
    }
    else
    if (obj->type == MSGPACK_OBJECT_ARRAY) {
        msgpack_pack_array (pk, obj->via.array.size);
        for (uint32_t i = 0; i < obj->via.array.size; i++)
            s_pack_without_epochs (pk, &obj->via.array.ptr [i], depth + 1);
    }
    else
        msgpack_pack_object (pk, *obj);
}

//  A catalog with collection 1 'docs' whose segment 7 holds rows 1 and 2, row 2
//  deleted, flushed into f's store; *version: the manifest written.
static qv_catalog_t *
s_one_segment_flushed (fixture_t *f, uint64_t *version)
{
    qv_catalog_t *cat = qv_catalog_new ();
    s_create (cat, &f->wal, 1, "docs", s_int_schema, 100);
    s_insert (cat, &f->wal, 1, 7, 110, "{\"a\": [{\"id\": 1, \"v\": [1, 0]}, {\"id\": 2, \"v\": [0, 1]}]}");
    s_delete (cat, &f->wal, 1, 120, "[2]");
    *version = s_flush_all (cat, f->store);
    return cat;
}

//  A manifest of format 3 (written before segment and index objects carried an epoch
//  in their key: no "epoch" in its segment and index entries) recovers as format 4
//  does, reading the objects by their keys without an epoch.
static void
test_manifest_format_3 (void **state)
{
    fixture_t *f = *state;
    uint64_t version;
    qv_catalog_t *cat = s_one_segment_flushed (f, &version);
    char man [64];
    snprintf (man, sizeof man, "meta/manifest/%020llu", (unsigned long long) version);
    void *data;
    size_t size;
    assert_int_equal (qv_store_get (f->store, man, &data, &size), 0);
    qv_envelope_t env;
    assert_int_equal (qv_envelope_open (man, data, size, QV_ENVELOPE_MANIFEST, 4, &env), 0);
    assert_int_equal (env.version, 4);
    assert_non_null (memmem (env.payload, env.size, "\xa5" "epoch", 6));
    msgpack_unpacked up;
    msgpack_unpacked_init (&up);
    assert_int_equal (msgpack_unpack_next (&up, (const char *) env.payload, env.size, NULL),
                      MSGPACK_UNPACK_SUCCESS);
    msgpack_sbuffer sb;
    msgpack_sbuffer_init (&sb);
    uint8_t header [QV_ENVELOPE_HEADER_SIZE] = { 0 };
    msgpack_sbuffer_write (&sb, (const char *) header, sizeof header);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &sb, msgpack_sbuffer_write);
    s_pack_without_epochs (&pk, &up.data, 0);
    msgpack_unpacked_destroy (&up);
    free (data);
    qv_envelope_seal (sb.data, sb.size, QV_ENVELOPE_MANIFEST, 3);
    //  Only the root keeps its "epoch" (the writer's): one occurrence left
    const char *first = memmem (sb.data, sb.size, "\xa5" "epoch", 6);
    assert_non_null (first);
    assert_null (memmem (first + 6, sb.size - (size_t) (first + 6 - sb.data), "\xa5" "epoch", 6));
    assert_int_equal (qv_store_put (f->store, man, sb.data, sb.size), 0);
    msgpack_sbuffer_destroy (&sb);
    qv_catalog_t *rec = qv_catalog_new ();
    assert_int_equal (qv_catalog_recover (rec, f->store), 0);
    s_assert_same_state (cat, rec);
    qv_catalog_destroy (&rec);
    qv_catalog_destroy (&cat);
}

static void
test_corrupt_manifest (void **state)
{
    fixture_t *f = *state;
    uint64_t version;
    qv_catalog_t *cat = s_one_segment_flushed (f, &version);
    char man [64], seg [96];
    snprintf (man, sizeof man, "meta/manifest/%020llu", (unsigned long long) version);
    snprintf (seg, sizeof seg, "segments/1/%020llu", 7ull);
    void *man_orig, *seg_orig;
    size_t man_size, seg_size;
    assert_int_equal (qv_store_get (f->store, man, &man_orig, &man_size), 0);
    assert_int_equal (qv_store_get (f->store, seg, &seg_orig, &seg_size), 0);
    //  Sanity: the untouched store recovers
    qv_catalog_t *ok = qv_catalog_new ();
    assert_int_equal (qv_catalog_recover (ok, f->store), 0);
    s_assert_same_state (cat, ok);
    qv_catalog_destroy (&ok);

    s_rewrite (f->store, man, s_flip, 30);
    s_expect_corrupt (f->store, man, "manifest body byte");
    qv_store_put (f->store, man, man_orig, man_size);
    s_rewrite (f->store, man, s_flip, -1);
    s_expect_corrupt (f->store, man, "manifest checksum");
    qv_store_put (f->store, man, man_orig, man_size);
    s_rewrite (f->store, man, s_flip, 2);
    s_expect_corrupt (f->store, man, "manifest magic");
    qv_store_put (f->store, man, man_orig, man_size);
    s_rewrite (f->store, man, s_cut, (int) man_size / 2);
    s_expect_corrupt (f->store, man, "manifest truncated");
    s_rewrite (f->store, man, s_cut, 3);
    s_expect_corrupt (f->store, man, "manifest of 3 bytes");
    s_rewrite (f->store, man, s_cut, 0);
    s_expect_corrupt (f->store, man, "empty manifest");
    qv_store_put (f->store, man, man_orig, man_size);
    s_rewrite (f->store, man, s_body_byte_fixed_crc, 21);
    s_expect_corrupt (f->store, man, "manifest body with a valid checksum");
    qv_store_put (f->store, man, man_orig, man_size);

    //  Segment objects: damaged or missing, named in the message
    s_rewrite (f->store, seg, s_flip, 100);
    s_expect_corrupt (f->store, seg, "segment byte");
    qv_store_put (f->store, seg, seg_orig, seg_size);
    s_rewrite (f->store, seg, s_cut, (int) seg_size - 1);
    s_expect_corrupt (f->store, seg, "segment truncated");
    assert_int_equal (qv_store_delete (f->store, seg), 0);
    s_expect_corrupt (f->store, seg, "segment missing");
    qv_store_put (f->store, seg, seg_orig, seg_size);

    //  Random manifest body mutations behind a valid checksum never crash
    unsigned seed = 1;
    for (int iter = 0; iter < 300; iter++) {
        uint8_t *d = malloc (man_size);
        memcpy (d, man_orig, man_size);
        for (int e = 0; e < 2; e++)
            d [20 + rand_r (&seed) % (man_size - 24)] = (uint8_t) rand_r (&seed);
        uint32_t crc = qv_crc32c (d, man_size - 4);
        memcpy (d + man_size - 4, &crc, 4);
        qv_store_put (f->store, man, d, man_size);
        qv_catalog_t *c2 = qv_catalog_new ();
        int rc = qv_catalog_recover (c2, f->store);
        assert_true (rc == 0 || rc == QV_ECORRUPT);
        qv_catalog_destroy (&c2);
        free (d);
    }
    qv_store_put (f->store, man, man_orig, man_size);
    ok = qv_catalog_new ();
    assert_int_equal (qv_catalog_recover (ok, f->store), 0);
    qv_catalog_destroy (&ok);
    free (man_orig);
    free (seg_orig);
    qv_catalog_destroy (&cat);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test_setup_teardown (test_apply, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_recover_and_replay, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_partial_manifest, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_manifest_inside_object, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_recover_empty_store, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_partitions, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_partition_key, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_manifest_format_3, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_corrupt_manifest, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_manifest_fencing, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_compact, s_setup, s_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
