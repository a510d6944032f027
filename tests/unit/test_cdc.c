//  Change events (qv_cdc): built from records, split under a payload limit, encoded;
//  the stream sequence of a record survives the WAL encoding; NATS subject overlap.
#include "qv_bridge.h"
#include "qv_cdc.h"
#include "qv_rc.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

static qv_schema_t *
s_schema (int dim)
{
    qv_wr_t *w = qv_wr_new ();
    qv_wr_array (w, 2);
    qv_wr_map (w, 3);
    qv_wr_str (w, "name"); qv_wr_str (w, "id");
    qv_wr_str (w, "type"); qv_wr_str (w, "int64");
    qv_wr_str (w, "primary"); qv_wr_bool (w, true);
    qv_wr_map (w, 3);
    qv_wr_str (w, "name"); qv_wr_str (w, "vec");
    qv_wr_str (w, "type"); qv_wr_str (w, "float_vector");
    qv_wr_str (w, "dim"); qv_wr_uint (w, (uint64_t) dim);
    size_t size;
    const void *data = qv_wr_data (w, &size);
    int rc;
    qv_doc_t *doc = qv_doc_parse (data, size, SIZE_MAX, &rc);
    qv_schema_t *schema = qv_schema_parse (qv_doc_root (doc), &rc);
    qv_doc_destroy (&doc);
    qv_wr_destroy (&w);
    return schema;
}

static qv_record_t *
s_insert (const qv_schema_t *schema, uint32_t n, int dim)
{
    qv_record_t *rec = qv_record_new (QV_REC_INSERT);
    rec->schema = qv_schema_dup (schema);
    rec->batch = qv_batch_new (rec->schema, n);
    for (uint32_t r = 0; r < n; r++) {
        ((int64_t *) rec->batch->cols [0].data) [r] = 100 + r;
        for (int d = 0; d < dim; d++)
            ((float *) rec->batch->cols [1].data) [(size_t) r * dim + d] = (float) r + (float) d / 1000;
    }
    rec->batch->n = n;
    rec->ts = 12345;
    rec->shard = 2;
    rec->sseq = 77;
    return rec;
}

//  Splitting a big event keeps every id and row once, in order, each part under the
//  limit, with the same seq and part/parts.
static void
test_split_and_encode (void **state)
{
    (void) state;
    qv_schema_t *schema = s_schema (64);
    qv_record_t *rec = s_insert (schema, 1000, 64);
    qv_cdc_t *ev = qv_cdc_from_record (rec, "docs", QV_CDC_SEQ (5, 3), true);
    assert_non_null (ev);
    assert_string_equal (ev->op, "insert");
    assert_int_equal (ev->seq, ((5ull << 24) | 3) + 1);
    uint32_t *bounds = NULL;
    size_t limit = 64 << 10;
    uint32_t parts = qv_cdc_split (ev, limit, &bounds);
    assert_true (parts > 1);
    int64_t next = 100;
    qv_wr_t *w = qv_wr_new ();
    for (uint32_t p = 0; p < parts; p++) {
        qv_wr_reset (w);
        qv_cdc_write (ev, bounds [p], bounds [p + 1], p + 1, parts, w);
        size_t size;
        const void *data = qv_wr_data (w, &size);
        assert_true (size <= limit);
        int rc;
        qv_doc_t *doc = qv_doc_parse (data, size, SIZE_MAX, &rc);
        assert_non_null (doc);
        const qv_val_t *root = qv_doc_root (doc), *ids = qv_val_get (root, "ids"),
                       *rows = qv_val_get (root, "rows");
        uint64_t u;
        assert_int_equal (qv_val_uint (qv_val_get (root, "part"), &u), 0);
        assert_int_equal (u, p + 1);
        assert_int_equal (qv_val_uint (qv_val_get (root, "parts"), &u), 0);
        assert_int_equal (u, parts);
        assert_int_equal (qv_val_uint (qv_val_get (root, "seq"), &u), 0);
        assert_int_equal (u, ev->seq);
        assert_int_equal (qv_val_uint (qv_val_get (root, "shard"), &u), 0);
        assert_int_equal (u, 2);
        assert_int_equal (qv_val_len (ids), qv_val_len (rows));
        for (size_t i = 0; i < qv_val_len (ids); i++) {
            int64_t id;
            assert_int_equal (qv_val_int (qv_val_at (ids, i), &id), 0);
            assert_int_equal (id, next);
            int64_t rid;
            assert_int_equal (qv_val_int (qv_val_get (qv_val_at (rows, i), "id"), &rid), 0);
            assert_int_equal (rid, next);
            assert_int_equal (qv_val_len (qv_val_get (qv_val_at (rows, i), "vec")), 64);
            next++;
        }
        qv_doc_destroy (&doc);
    }
    assert_int_equal (next, 1100);
    //  Without rows and under the limit: one part, no part/parts keys.
    qv_cdc_destroy (&ev);
    free (bounds);
    ev = qv_cdc_from_record (rec, "docs", 9, false);
    assert_int_equal (qv_cdc_split (ev, 1 << 20, &bounds), 1);
    qv_wr_reset (w);
    qv_cdc_write (ev, bounds [0], bounds [1], 1, 1, w);
    size_t size;
    const void *data = qv_wr_data (w, &size);
    int rc;
    qv_doc_t *doc = qv_doc_parse (data, size, SIZE_MAX, &rc);
    assert_null (qv_val_get (qv_doc_root (doc), "part"));
    assert_null (qv_val_get (qv_doc_root (doc), "rows"));
    assert_int_equal (qv_val_len (qv_val_get (qv_doc_root (doc), "ids")), 1000);
    qv_doc_destroy (&doc);
    free (bounds);
    qv_cdc_destroy (&ev);
    qv_cdc_destroy (&ev);
    qv_wr_destroy (&w);
    qv_record_destroy (&rec);
    qv_schema_destroy (&schema);
}

static const qv_schema_t *
s_lookup (void *arg, uint32_t coll_id)
{
    (void) coll_id;
    return arg;
}

//  The stream sequence is logged with insert and delete records; records without one
//  encode without the key.
static void
test_record_stream_seq (void **state)
{
    (void) state;
    qv_schema_t *schema = s_schema (4);
    qv_record_t *rec = s_insert (schema, 3, 4);
    qv_wr_t *w = qv_wr_new ();
    qv_record_write (rec, w);
    size_t size;
    const void *data = qv_wr_data (w, &size);
    qv_record_t *back = NULL;
    assert_int_equal (qv_record_read (data, size, s_lookup, schema, &back), 0);
    assert_int_equal (back->sseq, 77);
    assert_int_equal (back->batch->n, 3);
    qv_record_destroy (&back);
    //  Unknown collection: NOT_FOUND, but the sequence is still read.
    assert_int_equal (qv_record_read (data, size, s_lookup, NULL, &back), QV_ENOTFOUND);
    assert_int_equal (back->sseq, 77);
    qv_record_destroy (&back);
    rec->sseq = 0;
    qv_wr_reset (w);
    qv_record_write (rec, w);
    data = qv_wr_data (w, &size);
    int rc;
    qv_doc_t *doc = qv_doc_parse (data, size, SIZE_MAX, &rc);
    assert_null (qv_val_get (qv_doc_root (doc), "ss"));
    qv_doc_destroy (&doc);
    qv_record_t *del = qv_record_new (QV_REC_DELETE);
    del->keys.n = 2;
    del->keys.ints = malloc (16);
    del->keys.ints [0] = 5;
    del->keys.ints [1] = 6;
    del->sseq = 9;
    qv_wr_reset (w);
    qv_record_write (del, w);
    data = qv_wr_data (w, &size);
    assert_int_equal (qv_record_read (data, size, s_lookup, schema, &back), 0);
    assert_int_equal (back->sseq, 9);
    assert_int_equal (back->keys.n, 2);
    qv_record_destroy (&back);
    qv_record_destroy (&del);
    qv_wr_destroy (&w);
    qv_record_destroy (&rec);
    qv_schema_destroy (&schema);
}

static void
test_subject_overlap (void **state)
{
    (void) state;
    assert_true (qv_subjects_overlap ("quiver.>", "quiver.insert.docs"));
    assert_true (qv_subjects_overlap ("quiver.>", "*.insert.docs"));
    assert_true (qv_subjects_overlap ("quiver.>", ">"));
    assert_true (qv_subjects_overlap ("quiver.>", "quiver.*"));
    assert_false (qv_subjects_overlap ("quiver.>", "quiver"));
    assert_false (qv_subjects_overlap ("quiver.>", "ingest.>"));
    assert_false (qv_subjects_overlap ("quiver.>", "quiverx.insert.a"));
    assert_false (qv_subjects_overlap ("quiver.>", "ingest.quiver.a"));
    assert_true (qv_subjects_overlap ("a.*.c", "a.b.*"));
    assert_false (qv_subjects_overlap ("a.*.c", "a.b.d"));
    assert_false (qv_subjects_overlap ("a.*", "a.b.c"));
    const char *ok [] = { "ingest.>", "events.*" }, *bad [] = { "ingest.>", "quiver.insert.*" };
    assert_int_equal (qv_bridge_check_subjects ("quiver", "S", ok, 2), 0);
    assert_int_equal (qv_bridge_check_subjects ("quiver", "S", bad, 2), QV_EINVAL);
    assert_non_null (strstr (qv_err_msg (), "quiver.insert.*"));
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_split_and_encode),
        cmocka_unit_test (test_record_stream_seq),
        cmocka_unit_test (test_subject_overlap),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
