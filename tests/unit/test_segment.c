//  Segments: append and snapshot visibility by insert/delete timestamps, growth during
//  recovery, exact scan for L2/IP/COSINE against brute force, save/load round trip
//  (version 3: delta-coded timestamps and int64 keys; version 2 objects still load),
//  and corrupted/truncated segment objects refused as QV_ECORRUPT naming the object.
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qv_crc.h"
#include "qv_pkindex.h"
#include "qv_envelope.h"
#include "qv_expr.h"
#include "qv_le.h"
#include "qv_merge.h"
#include "qv_segfile.h"
#include "qv_test_fixture.h"
#include "qv_test_json.h"
#include "qv_varint.h"

enum { DIM = 17 };

static qv_schema_t *
s_schema (const char *metric, const char *pk_type)
{
    char json [512];
    snprintf (json, sizeof json,
              "[{\"name\": \"id\", \"type\": \"%s\", \"primary\": true},"
              " {\"name\": \"v\", \"type\": \"float_vector\", \"dim\": %d, \"metric\": \"%s\"},"
              " {\"name\": \"tag\", \"type\": \"varchar\", \"nullable\": true}]",
              pk_type, DIM, metric);
    return qv_test_schema (json);
}

//  n rows with ids first_id.., random vectors from seed (row `zero_row` all zeros if
//  < n), tag "t<id>" or null every 7th row.
static qv_batch_t *
s_batch (const qv_schema_t *schema, uint32_t n, int64_t first_id, unsigned seed, int64_t zero_row)
{
    qv_batch_t *b = qv_batch_new (schema, n);
    assert_non_null (b);
    bool varchar = schema->fields [0].type == QV_VARCHAR;
    for (uint32_t r = 0; r < n; r++) {
        int64_t id = first_id + r;
        char s [32];
        snprintf (s, sizeof s, "t%lld", (long long) id);
        if (varchar) {
            b->cols [0].var [r].ptr = (uint8_t *) strdup (s);
            b->cols [0].var [r].len = (uint32_t) strlen (s);
        }
        else
            ((int64_t *) b->cols [0].data) [r] = id;
        float *v = (float *) b->cols [1].data + (size_t) r * DIM;
        for (int d = 0; d < DIM; d++)
            v [d] = (int64_t) r == zero_row ? 0 : (float) rand_r (&seed) / RAND_MAX * 2 - 1;
        if (id % 7 == 0) {
            if (!b->cols [2].valid) {
                b->cols [2].valid = malloc (n);
                memset (b->cols [2].valid, 1, n);
            }
            b->cols [2].valid [r] = 0;
        }
        else {
            b->cols [2].var [r].ptr = (uint8_t *) strdup (s);
            b->cols [2].var [r].len = (uint32_t) strlen (s);
        }
    }
    b->n = n;
    return b;
}

static void
test_append_and_visibility (void **state)
{
    (void) state;
    qv_schema_t *schema = s_schema ("L2", "int64");
    qv_segment_t *seg = qv_segment_new (schema, 11, 3, 1, 100);
    assert_non_null (seg);
    qv_schema_destroy (&schema);                //  the segment has its own copy
    assert_int_equal (seg->id, 11);
    assert_int_equal (seg->coll_id, 3);
    assert_int_equal (seg->shard, 1);
    assert_int_equal (seg->state, QV_SEG_GROWING);
    assert_int_equal (atomic_load (&seg->rows), 0);

    qv_batch_t *b1 = s_batch (seg->schema, 10, 0, 1, -1);
    qv_batch_t *b2 = s_batch (seg->schema, 5, 10, 2, -1);
    assert_int_equal (qv_segment_append (seg, b1, 100), 0);
    assert_int_equal (qv_segment_append (seg, b2, 200), 10);
    assert_int_equal (atomic_load (&seg->rows), 15);
    //  Var values moved out of the batch into the segment
    assert_null (b1->cols [2].var [1].ptr);
    assert_int_equal (seg->batch->cols [2].var [1].len, 2);
    assert_memory_equal (seg->batch->cols [2].var [1].ptr, "t1", 2);
    assert_memory_equal (seg->batch->cols [2].var [11].ptr, "t11", 3);
    //  Nulls carried over: ids 0, 7, 14 are null
    assert_non_null (seg->batch->cols [2].valid);
    for (uint32_t r = 0; r < 15; r++)
        assert_int_equal (seg->batch->cols [2].valid [r], r % 7 != 0);
    assert_true (qv_col_i64 (&seg->batch->cols [0], 12) == 12);
    assert_true (qv_segment_pk_hash (seg, 12) == 12);
    assert_true (qv_segment_bytes (seg) >= 15 * (8 + DIM * 4));
    //  Snapshot visibility by insert timestamp
    assert_false (qv_segment_visible (seg, 0, 99));
    assert_true (qv_segment_visible (seg, 0, 100));
    assert_false (qv_segment_visible (seg, 10, 199));
    assert_true (qv_segment_visible (seg, 10, 200));
    assert_true (qv_segment_visible (seg, 10, UINT64_MAX));
    //  ... and by delete timestamp: a delete at ts hides the row from snapshots >= ts
    qv_segment_delete (seg, 3, 300);
    assert_int_equal (seg->deleted, 1);
    assert_true (qv_segment_visible (seg, 3, 299));
    assert_false (qv_segment_visible (seg, 3, 300));
    assert_false (qv_segment_visible (seg, 3, 1000));
    assert_false (qv_segment_visible (seg, 3, 99));     //  not inserted yet then
    //  The first delete stands
    qv_segment_delete (seg, 3, 400);
    assert_int_equal (seg->deleted, 1);
    assert_true (qv_segment_visible (seg, 3, 350) == false);
    qv_segment_delete (seg, 12, 250);
    assert_int_equal (seg->deleted, 2);
    assert_true (qv_segment_visible (seg, 12, 249));
    assert_false (qv_segment_visible (seg, 12, 250));

    qv_batch_destroy (&b1);         //  they borrow the segment's schema
    qv_batch_destroy (&b2);
    //  Reference counting: a link keeps it alive after the owner lets go
    qv_segment_t *other = qv_segment_link (seg);
    assert_ptr_equal (other, seg);
    qv_segment_unlink (&seg);
    assert_null (seg);
    assert_int_equal (atomic_load (&other->rows), 15);
    qv_segment_unlink (&other);
    qv_segment_unlink (&other);
}

//  During recovery a segment grows past its capacity and keeps every value.
static void
test_growth (void **state)
{
    (void) state;
    qv_schema_t *schema = s_schema ("COSINE", "varchar");
    qv_segment_t *seg = qv_segment_new (schema, 1, 1, 0, 4);
    uint64_t ts = 10;
    int64_t id = 1;
    for (int i = 0; i < 20; i++) {
        uint32_t n = (uint32_t) (1 + i % 9);
        qv_batch_t *b = s_batch (schema, n, id, (unsigned) i, -1);
        assert_int_equal (qv_segment_append (seg, b, ts), id - 1);
        qv_batch_destroy (&b);
        id += n;
        ts += 10;
    }
    uint32_t rows = atomic_load (&seg->rows);
    assert_int_equal (rows, id - 1);
    assert_true (seg->cap >= rows);
    for (uint32_t r = 0; r < rows; r++) {
        char s [32];
        snprintf (s, sizeof s, "t%u", r + 1);
        const qv_bytes_t *k = &seg->batch->cols [0].var [r];
        assert_int_equal (k->len, strlen (s));
        assert_memory_equal (k->ptr, s, k->len);
        assert_true (qv_segment_pk_hash (seg, r) == qv_pkindex_hash (s, strlen (s)));
        assert_int_equal (seg->batch->cols [2].valid [r], (r + 1) % 7 != 0);
        //  Norms kept for COSINE match the vectors
        const float *v = qv_col_vec (&schema->fields [1], &seg->batch->cols [1], r);
        assert_true (fabsf (seg->norms [1][r] - qv_dist_norm (v, DIM)) < 1e-5f);
    }
    qv_segment_unlink (&seg);
    qv_schema_destroy (&schema);
}

typedef struct {
    double score;
    int64_t id;
} ref_t;

static int
s_ref_cmp (const void *a, const void *b)
{
    const ref_t *x = a, *y = b;
    if (x->score != y->score)
        return x->score < y->score ? -1 : 1;
    return x->id < y->id ? -1 : x->id > y->id;
}

//  Smaller-is-better score of vector v for query q under metric, in double.
static double
s_score (qv_metric_t metric, const float *q, const float *v)
{
    double l2 = 0, ip = 0, qn = 0, vn = 0;
    for (int d = 0; d < DIM; d++) {
        l2 += ((double) q [d] - v [d]) * ((double) q [d] - v [d]);
        ip += (double) q [d] * v [d];
        qn += (double) q [d] * q [d];
        vn += (double) v [d] * v [d];
    }
    if (metric == QV_METRIC_L2)
        return l2;
    if (metric == QV_METRIC_IP)
        return -ip;
    return qn * vn > 0 ? -ip / sqrt (qn * vn) : 0;
}

//  Scans rows [from, to) of seg at snap and checks the top-k against brute force.
static void
s_check_scan (qv_segment_t *seg, const float *queries, uint32_t nq, uint32_t k,
              uint32_t from, uint32_t to, uint64_t snap)
{
    const qv_field_t *f = &seg->schema->fields [1];
    float qnorms [16];
    qv_topk_t *tops [16];
    for (uint32_t q = 0; q < nq; q++) {
        qnorms [q] = qv_dist_norm (queries + q * DIM, DIM);
        tops [q] = qv_topk_new (k);
    }
    const uint32_t tag = 5;
    qv_segment_scan (seg, 1, queries, qnorms, nq, from, to, snap, tag, NULL, NULL, tops);
    ref_t *ref = malloc ((to - from + 1) * sizeof *ref);
    for (uint32_t q = 0; q < nq; q++) {
        const float *qv = queries + q * DIM;
        uint32_t m = 0;
        for (uint32_t r = from; r < to; r++)
            if (qv_segment_visible (seg, r, snap))
                ref [m++] = (ref_t) { s_score (f->metric, qv, qv_col_vec (f, &seg->batch->cols [1], r)), r };
        qsort (ref, m, sizeof *ref, s_ref_cmp);
        int64_t ids [64];
        float scores [64];
        uint32_t got = qv_topk_extract (tops [q], ids, scores);
        assert_int_equal (got, m < k ? m : k);
        for (uint32_t i = 0; i < got; i++) {
            assert_int_equal (ids [i] >> 32, tag);
            uint32_t row = (uint32_t) (ids [i] & 0xffffffff);
            assert_true (row >= from && row < to);
            assert_true (qv_segment_visible (seg, row, snap));
            //  The reported score is the row's true score, and the i-th best
            double truth = s_score (f->metric, qv, qv_col_vec (f, &seg->batch->cols [1], row));
            if (fabs (scores [i] - truth) > 1e-4 * (1 + fabs (truth))
            ||  fabs (scores [i] - ref [i].score) > 1e-4 * (1 + fabs (ref [i].score)))
                fail_msg ("metric %s q %u rank %u: row %u score %g, true %g, rank-%u reference %g (row %lld)",
                          qv_metric_name (f->metric), q, i, row, scores [i], truth, i, ref [i].score,
                          (long long) ref [i].id);
        }
        qv_topk_destroy (&tops [q]);
    }
    free (ref);
}

static void
test_scan_vs_brute_force (void **state)
{
    (void) state;
    const char *metrics [] = { "L2", "IP", "COSINE" };
    for (int m = 0; m < 3; m++) {
        qv_schema_t *schema = s_schema (metrics [m], "int64");
        qv_segment_t *seg = qv_segment_new (schema, 1, 1, 0, 3000);
        //  Three appends at ts 100, 200, 300; a zero vector at row 5
        qv_batch_t *b = s_batch (schema, 1000, 0, 11, 5);
        qv_segment_append (seg, b, 100);
        qv_batch_destroy (&b);
        b = s_batch (schema, 777, 1000, 12, -1);
        qv_segment_append (seg, b, 200);
        qv_batch_destroy (&b);
        b = s_batch (schema, 523, 1777, 13, -1);
        qv_segment_append (seg, b, 300);
        qv_batch_destroy (&b);
        //  Deletes of every 10th row at 250
        for (uint32_t r = 0; r < 2300; r += 10)
            qv_segment_delete (seg, r, 250);
        float queries [13 * DIM];
        unsigned seed = 77;
        for (int i = 0; i < 13 * DIM; i++)
            queries [i] = (float) rand_r (&seed) / RAND_MAX * 2 - 1;
        //  Close to row 123 for the first query, so the best hit is known
        memcpy (queries, qv_col_vec (&schema->fields [1], &seg->batch->cols [1], 123), DIM * 4);
        uint64_t snaps [] = { 50, 100, 150, 249, 250, 300, UINT64_MAX };
        for (size_t s = 0; s < sizeof snaps / sizeof snaps [0]; s++) {
            s_check_scan (seg, queries, 8, 10, 0, 2300, snaps [s]);
            s_check_scan (seg, queries, 3, 1, 0, 2300, snaps [s]);
            s_check_scan (seg, queries, 3, 50, 257, 1999, snaps [s]);     //  a sub-range
            s_check_scan (seg, queries, 13, 50, 257, 1999, snaps [s]);    //  blocked, odd nq
        }
        //  k larger than the visible rows
        s_check_scan (seg, queries, 2, 64, 0, 30, 100);
        //  The exact row itself ranks first for its own vector (L2 and COSINE)
        if (m != 1) {
            qv_topk_t *top = qv_topk_new (1);
            float qn = qv_dist_norm (queries, DIM);
            qv_segment_scan (seg, 1, queries, &qn, 1, 0, 2300, 300, 0, NULL, NULL, &top);
            int64_t id;
            assert_int_equal (qv_topk_extract (top, &id, NULL), 1);
            assert_int_equal (id, 123);
            qv_topk_destroy (&top);
        }
        qv_segment_unlink (&seg);
        qv_schema_destroy (&schema);
    }
}

static zchunk_t *
s_saved_segment (qv_segment_t **seg_p)
{
    qv_schema_t *schema = s_schema ("COSINE", "varchar");
    qv_segment_t *seg = qv_segment_new (schema, 42, 9, 2, 500);
    qv_batch_t *b = s_batch (schema, 300, 1, 5, 7);
    qv_segment_append (seg, b, 1000);
    qv_batch_destroy (&b);
    b = s_batch (schema, 33, 301, 6, -1);
    qv_segment_append (seg, b, 2000);
    qv_batch_destroy (&b);
    qv_segment_delete (seg, 4, 1500);
    seg->state = QV_SEG_SEALED;
    size_t size;
    void *object = qv_segment_save (seg, &size);
    assert_non_null (object);
    zchunk_t *chunk = zchunk_new (object, size);
    free (object);
    qv_schema_destroy (&schema);
    *seg_p = seg;
    return chunk;
}

//  Loads the object of chunk: as a view, or (owned) from a malloc'd copy that the
//  segment takes, keeping it as its vector column's memory.
static qv_segment_t *
s_load_chunk (zchunk_t *chunk, bool owned)
{
    qv_segment_t *loaded = NULL;
    if (!owned) {
        assert_int_equal (qv_segment_load ("segments/9/42", zchunk_data (chunk),
                                           zchunk_size (chunk), &loaded), 0);
        return loaded;
    }
    void *copy = malloc (zchunk_size (chunk));
    assert_non_null (copy);
    memcpy (copy, zchunk_data (chunk), zchunk_size (chunk));
    assert_int_equal (qv_segment_load_owned ("segments/9/42", copy, zchunk_size (chunk), &loaded), 0);
    //  The vectors (most of the object) were moved, not copied: the column is the buffer
    assert_ptr_equal (loaded->batch->cols [1].data, copy);
    return loaded;
}

static void
test_save_load (void **state)
{
    (void) state;
    for (int owned = 0; owned < 2; owned++) {
        qv_segment_t *seg;
        zchunk_t *chunk = s_saved_segment (&seg);
        qv_segment_t *loaded = s_load_chunk (chunk, owned);
        assert_non_null (loaded);
        assert_int_equal (loaded->id, 42);
        assert_int_equal (loaded->coll_id, 9);
        assert_int_equal (loaded->shard, 2);
        assert_int_equal (loaded->state, QV_SEG_FLUSHED);
        assert_int_equal (atomic_load (&loaded->rows), 333);
        assert_int_equal (loaded->schema->nfields, 3);
        assert_int_equal (loaded->schema->fields [1].metric, QV_METRIC_COSINE);
        for (uint32_t r = 0; r < 333; r++) {
            assert_true (loaded->ts [r] == (r < 300 ? 1000u : 2000u));
            assert_true (qv_segment_pk_hash (loaded, r) == qv_segment_pk_hash (seg, r));
            assert_memory_equal (qv_col_vec (&loaded->schema->fields [1], &loaded->batch->cols [1], r),
                                 qv_col_vec (&seg->schema->fields [1], &seg->batch->cols [1], r), DIM * 4);
            assert_int_equal (loaded->batch->cols [2].valid [r], seg->batch->cols [2].valid [r]);
            assert_true (loaded->norms [1][r] == seg->norms [1][r]);
            //  Deletes live in manifests, not in segment objects
            assert_true (qv_segment_deleted_at (loaded, r) == 0);
        }
        //  Saving the loaded segment gives the same object
        size_t again_size;
        void *again = qv_segment_save (loaded, &again_size);
        assert_int_equal (again_size, zchunk_size (chunk));
        assert_memory_equal (again, zchunk_data (chunk), zchunk_size (chunk));
        free (again);
        //  Scans of the loaded copy agree with brute force
        float q [DIM];
        for (int d = 0; d < DIM; d++)
            q [d] = (float) d - 8;
        s_check_scan (loaded, q, 1, 10, 0, 333, UINT64_MAX);
        qv_segment_unlink (&loaded);
        //  An empty segment saves and loads
        qv_segment_t *empty = qv_segment_new (seg->schema, 1, 1, 0, 10);
        size_t ec_size;
        void *ec = qv_segment_save (empty, &ec_size);
        assert_int_equal (qv_segment_load ("empty", ec, ec_size, &loaded), 0);
        assert_int_equal (atomic_load (&loaded->rows), 0);
        qv_segment_unlink (&loaded);
        qv_segment_unlink (&empty);
        free (ec);
        zchunk_destroy (&chunk);
        qv_segment_unlink (&seg);
    }
}

//  n rows of the dynamic-field schema from a request: ids first_id.., `$meta` keys only
//  on row keyed_row (< n, or none): {"color": "red"}.
static qv_batch_t *
s_meta_batch (const qv_schema_t *schema, uint32_t n, int64_t first_id, int64_t keyed_row)
{
    qv_wr_t *w = qv_wr_new ();
    qv_wr_map (w, 1);
    qv_wr_str (w, "rows");
    qv_wr_array (w, n);
    for (uint32_t r = 0; r < n; r++) {
        qv_wr_map (w, (int64_t) r == keyed_row ? 3 : 2);
        qv_wr_str (w, "id");
        qv_wr_int (w, first_id + r);
        qv_wr_str (w, "v");
        qv_wr_array (w, DIM);
        for (int d = 0; d < DIM; d++)
            qv_wr_float (w, (float) (r + d));
        if ((int64_t) r == keyed_row) {
            qv_wr_str (w, "color");
            qv_wr_str (w, "red");
        }
    }
    size_t size;
    const void *data = qv_wr_data (w, &size);
    int rc;
    qv_doc_t *doc = qv_doc_parse (data, size, size, &rc);
    assert_non_null (doc);
    qv_batch_t *b = NULL;
    assert_int_equal (qv_batch_from_request (schema, qv_val_get (qv_doc_root (doc), "rows"),
                                             NULL, n, &b), 0);
    qv_doc_destroy (&doc);
    qv_wr_destroy (&w);
    return b;
}

//  Rows of seg matching filter text.
static uint64_t
s_matches (qv_segment_t *seg, const char *text)
{
    int rc;
    qv_expr_t *e = qv_expr_parse (seg->schema, text, strlen (text), &rc);
    assert_non_null (e);
    roaring_bitmap_t *out = roaring_bitmap_create ();
    assert_int_equal (qv_expr_eval (e, seg->batch, atomic_load (&seg->rows), out), 0);
    uint64_t n = roaring_bitmap_get_cardinality (out);
    roaring_bitmap_free (out);
    qv_expr_destroy (&e);
    return n;
}

//  `$meta` of a row as written in query output.
static void
s_check_meta_out (qv_segment_t *seg, uint32_t row, const uint8_t *want, size_t want_len)
{
    int meta = qv_schema_meta (seg->schema);
    qv_wr_t *w = qv_wr_new ();
    qv_col_write_value (&seg->schema->fields [meta], &seg->batch->cols [meta], row, w);
    size_t size;
    const void *data = qv_wr_data (w, &size);
    assert_int_equal (size, want_len);
    assert_memory_equal (data, want, want_len);
    qv_wr_destroy (&w);
}

//  A segment of a dynamic-field collection whose rows have no dynamic keys holds no
//  `$meta` slots (nor delete marks before its first delete) growing, saved, loaded and
//  compacted; the first keyed row or delete allocates them, and every reader (filters,
//  output, the object, the merge) sees the same rows as before.
static void
test_empty_meta_and_lazy_deletes (void **state)
{
    (void) state;
    qv_schema_t *schema = qv_test_schema (
        "[{\"name\": \"id\", \"type\": \"int64\", \"primary\": true},"
        " {\"name\": \"v\", \"type\": \"float_vector\", \"dim\": 17, \"metric\": \"L2\"}]");
    assert_int_equal (qv_schema_add_meta (schema), 0);
    int meta = qv_schema_meta (schema);
    assert_int_equal (meta, 2);
    static const uint8_t empty_map [] = { 0x80 };
    static const uint8_t red [] = { 0x81, 0xa5, 'c', 'o', 'l', 'o', 'r', 0xa3, 'r', 'e', 'd' };

    //  Growing: no keyed row, no slots and no delete marks
    qv_segment_t *seg = qv_segment_new (schema, 5, 1, 0, 1000);
    qv_batch_t *b = s_meta_batch (seg->schema, 100, 0, -1);
    assert_int_equal (qv_segment_append (seg, b, 100), 0);
    qv_batch_destroy (&b);
    assert_null (seg->batch->cols [meta].var);
    assert_null (atomic_load (&seg->del_ts));
    assert_int_equal (qv_segment_bytes (seg), 100 * (8 + 8 + DIM * 4));
    s_check_meta_out (seg, 7, empty_map, sizeof empty_map);
    assert_int_equal (s_matches (seg, "color == \"red\""), 0);
    assert_int_equal (s_matches (seg, "id >= 0"), 100);

    //  Saved and loaded (view and owned): still nothing, the object as before (each
    //  empty `$meta` written as {}), and saving the loaded copy gives the same bytes
    size_t size;
    void *obj = qv_segment_save (seg, &size);
    assert_non_null (obj);
    for (int owned = 0; owned < 2; owned++) {
        qv_segment_t *loaded = NULL;
        void *copy = malloc (size);
        memcpy (copy, obj, size);
        if (owned)
            assert_int_equal (qv_segment_load_owned ("segments/1/5", copy, size, &loaded), 0);
        else
            assert_int_equal (qv_segment_load ("segments/1/5", copy, size, &loaded), 0);
        assert_null (loaded->batch->cols [meta].var);
        assert_null (atomic_load (&loaded->del_ts));
        assert_int_equal (loaded->deleted, 0);
        s_check_meta_out (loaded, 99, empty_map, sizeof empty_map);
        size_t again_size;
        void *again = qv_segment_save (loaded, &again_size);
        assert_int_equal (again_size, size);
        assert_memory_equal (again, obj, size);
        free (again);
        //  A delete after the load allocates the marks; the row hides at its ts
        assert_int_equal (qv_segment_delete (loaded, 10, 500), 0);
        assert_non_null (atomic_load (&loaded->del_ts));
        assert_int_equal (loaded->deleted, 1);
        assert_true (qv_segment_deleted_at (loaded, 10) == 500);
        assert_true (qv_segment_deleted_at (loaded, 11) == 0);
        assert_true (qv_segment_visible (loaded, 10, 499));
        assert_false (qv_segment_visible (loaded, 10, 500));
        assert_true (qv_segment_visible (loaded, 11, 500));
        //  A compaction at 600 drops row 10 and keeps no `$meta` slots nor marks;
        //  one at 400 keeps the row and its later delete
        qv_segment_t *olds [1] = { loaded };
        qv_segment_t *merged = qv_segment_merge (olds, 1, 77, 600, 0);
        assert_non_null (merged);
        assert_int_equal (atomic_load (&merged->rows), 99);
        assert_null (merged->batch->cols [meta].var);
        assert_null (atomic_load (&merged->del_ts));
        assert_true (qv_col_i64 (&merged->batch->cols [0], 10) == 11);
        qv_segment_unlink (&merged);
        merged = qv_segment_merge (olds, 1, 78, 400, 0);
        assert_int_equal (atomic_load (&merged->rows), 100);
        assert_true (qv_segment_deleted_at (merged, 10) == 500);
        assert_int_equal (merged->deleted, 1);
        assert_false (qv_segment_visible (merged, 10, 500));
        qv_segment_unlink (&merged);
        if (!owned)
            free (copy);
        qv_segment_unlink (&loaded);
    }

    //  A keyed row allocates the column: it reads its map, the others {}
    b = s_meta_batch (seg->schema, 10, 100, 3);
    assert_int_equal (qv_segment_append (seg, b, 200), 100);
    qv_batch_destroy (&b);
    assert_non_null (seg->batch->cols [meta].var);
    s_check_meta_out (seg, 103, red, sizeof red);
    s_check_meta_out (seg, 7, empty_map, sizeof empty_map);
    s_check_meta_out (seg, 104, empty_map, sizeof empty_map);
    assert_int_equal (s_matches (seg, "color == \"red\""), 1);
    assert_int_equal (s_matches (seg, "color != \"red\""), 0);
    free (obj);
    //  ... and survives a save and load, the other rows still holding nothing
    obj = qv_segment_save (seg, &size);
    qv_segment_t *loaded = NULL;
    assert_int_equal (qv_segment_load ("segments/1/5", obj, size, &loaded), 0);
    assert_non_null (loaded->batch->cols [meta].var);
    assert_int_equal (loaded->batch->cols [meta].var [104].len, 0);
    s_check_meta_out (loaded, 103, red, sizeof red);
    s_check_meta_out (loaded, 50, empty_map, sizeof empty_map);
    assert_int_equal (s_matches (loaded, "color == \"red\""), 1);
    qv_segment_unlink (&loaded);
    free (obj);
    qv_segment_unlink (&seg);
    qv_schema_destroy (&schema);
}

//  Loads bytes expecting QV_ECORRUPT with the object's name in the message.
static void
s_expect_corrupt (const uint8_t *data, size_t size, const char *what)
{
    uint8_t *exact = malloc (size ? size : 1);
    memcpy (exact, data, size);
    qv_segment_t *seg = (qv_segment_t *) 1;
    int rc = qv_segment_load ("segments/9/00000000000000000042", exact, size, &seg);
    if (rc != QV_ECORRUPT)
        fail_msg ("%s: got %s", what, qv_rc_name (rc));
    assert_null (seg);
    if (!strstr (qv_err_msg (), "segments/9/00000000000000000042"))
        fail_msg ("%s: message '%s' does not name the object", what, qv_err_msg ());
    //  The owned load refuses it the same way and frees the buffer (ASan: no leak)
    rc = qv_segment_load_owned ("segments/9/00000000000000000042", exact, size, &seg);
    if (rc != QV_ECORRUPT)
        fail_msg ("%s (owned): got %s", what, qv_rc_name (rc));
    assert_null (seg);
}

//  Seals the edited object again (a valid envelope around the edited payload).
static void
s_fix_crc (uint8_t *data, size_t size)
{
    qv_envelope_seal (data, size, QV_ENVELOPE_SEGMENT, 3);
}

static void
test_load_corrupt (void **state)
{
    (void) state;
    qv_segment_t *seg;
    zchunk_t *chunk = s_saved_segment (&seg);
    size_t size = zchunk_size (chunk);
    uint8_t *orig = zchunk_data (chunk);
    uint8_t *buf = malloc (size);
    //  Truncations
    for (size_t cut = 0; cut < size; cut += cut < 100 ? 1 : 301)
        s_expect_corrupt (orig, cut, "truncated");
    //  Any flipped bit fails the checksum
    for (size_t at = 0; at < size; at += 37) {
        memcpy (buf, orig, size);
        buf [at] ^= 0x10;
        s_expect_corrupt (buf, size, "bit flip");
    }
    //  Header fields with a valid checksum
    memcpy (buf, orig, size);
    buf [0] = 'X';                  //  neither an envelope nor a version 1 object
    s_expect_corrupt (buf, size, "magic");
    memcpy (buf, orig, size);
    qv_envelope_seal (buf, size, QV_ENVELOPE_SEGMENT, 1);     //  no version 1 payload
    s_expect_corrupt (buf, size, "version");
    memcpy (buf, orig, size);
    qv_envelope_seal (buf, size, QV_ENVELOPE_WAL, 2);         //  not a segment
    s_expect_corrupt (buf, size, "kind");
    memcpy (buf, orig, size);
    buf [48] ^= 1;                  //  row count differs from the body's
    s_fix_crc (buf, size);
    s_expect_corrupt (buf, size, "rows");
    memcpy (buf, orig, size);
    buf [51] = 0xff;                //  row count 2^31+: no huge allocation either
    s_fix_crc (buf, size);
    s_expect_corrupt (buf, size, "huge rows");
    memcpy (buf, orig, size);
    buf [52] ^= 4;                  //  body size
    s_fix_crc (buf, size);
    s_expect_corrupt (buf, size, "body size");
    //  Random body mutations behind a valid checksum: refused or loaded, never a crash
    unsigned seed = 5;
    int loaded = 0, refused = 0;
    for (int iter = 0; iter < 3000; iter++) {
        memcpy (buf, orig, size);
        int edits = 1 + rand_r (&seed) % 3;
        for (int e = 0; e < edits; e++) {
            size_t at = 60 + (size_t) rand_r (&seed) % (size - 60);
            buf [at] = rand_r (&seed) % 2 ? (uint8_t) rand_r (&seed) : (uint8_t) (0xc0 + rand_r (&seed) % 32);
        }
        s_fix_crc (buf, size);
        qv_segment_t *out = NULL;
        int rc = qv_segment_load ("m", buf, size, &out);
        assert_true (rc == 0 || rc == QV_ECORRUPT);
        if (rc == 0) {
            loaded++;
            //  A loaded segment is usable
            qv_topk_t *top = qv_topk_new (3);
            float q [DIM] = { 1 }, qn = 1;
            uint32_t rows = atomic_load (&out->rows);
            if (out->schema->vec >= 0 && out->schema->fields [out->schema->vec].dim == DIM)
                qv_segment_scan (out, out->schema->vec, q, &qn, 1, 0, rows, UINT64_MAX, 0, NULL, NULL, &top);
            qv_topk_destroy (&top);
            qv_segment_unlink (&out);
        }
        else {
            refused++;
            assert_null (out);
        }
    }
    assert_true (refused > 100);
    free (buf);
    zchunk_destroy (&chunk);
    qv_segment_unlink (&seg);
}

//  --------------------------------------------------------------------------
//  Version 3: timestamps and int64 keys as zigzag delta varints

//  The row-r timestamp / id of the patterns the round trip covers.
static uint64_t
s_ts_at (int pattern, uint32_t r, unsigned *seed)
{
    switch (pattern) {
        case 0: return 1000 + (uint64_t) r / 100 * 7;          //  rising, in inserts
        case 1: return 123456789;                               //  equal
        case 2: return UINT64_MAX - (uint64_t) r * 1000003;     //  falling from the top
        default:                                                //  anything, 0 and max
            return r % 3 == 0 ? 0 : r % 3 == 1 ? UINT64_MAX
                 : (uint64_t) rand_r (seed) << 40 ^ (uint64_t) rand_r (seed);
    }
}

static int64_t
s_id_at (int pattern, uint32_t r, unsigned *seed)
{
    static const int64_t extremes [] = { INT64_MIN, INT64_MAX, 0, -1, INT64_MIN + 1, 1 };
    switch (pattern) {
        case 0: return 1 + (int64_t) r;                         //  consecutive
        case 1: return (int64_t) ((uint64_t) rand_r (seed) << 33 ^ (uint64_t) rand_r (seed) << 2);
        case 2: return -1 - (int64_t) r * 3;                    //  negative, falling
        default: return extremes [r % 6];                       //  INT64_MIN/MAX: wrapping deltas
    }
}

//  The bin under key in the body of segment object obj (a view into obj).
static size_t
s_body_bin (const uint8_t *obj, size_t size, const char *key, const uint8_t **p)
{
    size_t fields = QV_ENVELOPE_HEADER_SIZE + 28;
    int rc;
    qv_doc_t *doc = qv_doc_parse_view (obj + fields, size - fields, SIZE_MAX, &rc);
    assert_non_null (doc);
    const qv_val_t *v = qv_val_get (qv_doc_root (doc), key);
    const void *data = NULL;
    size_t len = SIZE_MAX;
    if (v)
        assert_int_equal (qv_val_bin (v, &data, &len), 0);
    qv_doc_destroy (&doc);
    *p = data;
    return len;
}

static void
test_coded_round_trip (void **state)
{
    (void) state;
    qv_schema_t *schema = s_schema ("L2", "int64");
    static const uint32_t sizes [] = { 0, 1, 1000 };
    for (int si = 0; si < 3; si++)
    for (int tp = 0; tp < 4; tp++)
    for (int ip = 0; ip < 4; ip++) {
        uint32_t n = sizes [si];
        unsigned seed = 11 + (unsigned) (tp * 4 + ip);
        qv_segment_t *seg = qv_segment_new (schema, 42, 9, 2, n ? n : 1);
        assert_non_null (seg);
        if (n) {
            qv_batch_t *b = s_batch (schema, n, 1, seed, -1);
            for (uint32_t r = 0; r < n; r++)
                ((int64_t *) b->cols [0].data) [r] = s_id_at (ip, r, &seed);
            assert_int_equal (qv_segment_append (seg, b, 1000), 0);
            qv_batch_destroy (&b);
            for (uint32_t r = 0; r < n; r++)
                seg->ts [r] = s_ts_at (tp, r, &seed);
        }
        size_t size;
        uint8_t *obj = qv_segment_save (seg, &size);
        assert_non_null (obj);
        qv_envelope_t env;
        assert_int_equal (qv_envelope_open ("o", obj, size, QV_ENVELOPE_SEGMENT, 3, &env), 0);
        assert_int_equal (env.version, 3);
        //  The raw columns are gone: ts entirely, the key's values from the batch
        const uint8_t *p;
        assert_int_equal (s_body_bin (obj, size, "ts", &p), SIZE_MAX);
        size_t tsd = s_body_bin (obj, size, "tsd", &p), pkd = s_body_bin (obj, size, "pkd", &p);
        assert_true (tsd >= n && tsd <= (size_t) n * QV_VARINT_MAX);
        assert_true (pkd >= n && pkd <= (size_t) n * QV_VARINT_MAX);
        if (n && tp == 1)
            assert_int_equal (tsd, 4 + n - 1);      //  123456789 x 2: 4 bytes, then 0s
        if (n && ip == 0)
            assert_int_equal (pkd, n);              //  1, then deltas of 1: a byte each
        for (int owned = 0; owned < 2; owned++) {
            qv_segment_t *loaded = NULL;
            if (owned) {
                uint8_t *copy = malloc (size);
                memcpy (copy, obj, size);
                assert_int_equal (qv_segment_load_owned ("segments/9/42", copy, size, &loaded), 0);
                if (n == 1000)          //  the vectors are the buffer, not a copy
                    assert_ptr_equal (loaded->batch->cols [1].data, copy);
            }
            else
                assert_int_equal (qv_segment_load ("segments/9/42", obj, size, &loaded), 0);
            assert_int_equal (atomic_load (&loaded->rows), n);
            for (uint32_t r = 0; r < n; r++) {
                if (loaded->ts [r] != seg->ts [r] || qv_col_i64 (&loaded->batch->cols [0], r)
                                                     != qv_col_i64 (&seg->batch->cols [0], r))
                    fail_msg ("rows %u ts %d ids %d row %u: ts %llu id %lld, saved %llu %lld", n, tp, ip, r,
                              (unsigned long long) loaded->ts [r],
                              (long long) qv_col_i64 (&loaded->batch->cols [0], r),
                              (unsigned long long) seg->ts [r], (long long) qv_col_i64 (&seg->batch->cols [0], r));
                assert_memory_equal (qv_col_vec (&schema->fields [1], &loaded->batch->cols [1], r),
                                     qv_col_vec (&schema->fields [1], &seg->batch->cols [1], r), DIM * 4);
                assert_true (qv_segment_pk_hash (loaded, r) == qv_segment_pk_hash (seg, r));
            }
            //  Saved again: the same bytes
            size_t again_size;
            void *again = qv_segment_save (loaded, &again_size);
            assert_int_equal (again_size, size);
            assert_memory_equal (again, obj, size);
            free (again);
            qv_segment_unlink (&loaded);
        }
        free (obj);
        qv_segment_unlink (&seg);
    }
    qv_schema_destroy (&schema);
}

//  A version 3 object of seg with the given "tsd" and "pkd" bins (pkd NULL: no such
//  key), its batch without the key's values when omit_pk, and `rows` in its fields.
static uint8_t *
s_v3_object (qv_segment_t *seg, uint32_t rows, const void *tsd, size_t tsd_len,
             const void *pkd, size_t pkd_len, bool omit_pk, size_t *size)
{
    qv_wr_t *w = qv_wr_new ();
    uint8_t header [QV_ENVELOPE_HEADER_SIZE + 28] = { 0 };
    qv_wr_raw (w, header, sizeof header);
    qv_wr_map (w, pkd ? 4 : 3);
    qv_wr_str (w, "schema");
    qv_schema_write (seg->schema, w);
    qv_wr_str (w, "tsd");
    qv_wr_bin (w, tsd, tsd_len);
    if (pkd) {
        qv_wr_str (w, "pkd");
        qv_wr_bin (w, pkd, pkd_len);
    }
    qv_wr_str (w, "batch");
    seg->batch->n = atomic_load (&seg->rows);
    qv_batch_write_but (seg->batch, w, omit_pk ? seg->schema->pk : -1);
    uint8_t *obj = qv_wr_detach (w, size);
    qv_wr_destroy (&w);
    uint8_t *f = obj + QV_ENVELOPE_HEADER_SIZE;
    qv_le_put32 (f, seg->coll_id);
    qv_le_put64 (f + 4, seg->id);
    qv_le_put32 (f + 12, seg->shard);
    qv_le_put32 (f + 16, rows);
    qv_le_put64 (f + 20, *size - sizeof header);
    qv_envelope_seal (obj, *size, QV_ENVELOPE_SEGMENT, 3);
    return obj;
}

//  s_v3_object with tsd / pkd given as bytes; expects QV_ECORRUPT naming the object,
//  and when varint, a message about the coded columns.
static void
s_expect_coded_corrupt (qv_segment_t *seg, uint32_t rows, const uint8_t *tsd, size_t tsd_len,
                        const uint8_t *pkd, size_t pkd_len, bool omit_pk, bool varint,
                        const char *what)
{
    size_t size;
    uint8_t *obj = s_v3_object (seg, rows, tsd, tsd_len, pkd, pkd_len, omit_pk, &size);
    s_expect_corrupt (obj, size, what);
    if (varint && !strstr (qv_err_msg (), "delta-coded"))
        fail_msg ("%s: message '%s' does not say what is wrong", what, qv_err_msg ());
    free (obj);
}

static void
test_coded_corrupt (void **state)
{
    (void) state;
    qv_schema_t *schema = s_schema ("L2", "int64");
    qv_segment_t *seg = qv_segment_new (schema, 42, 9, 2, 5);
    qv_batch_t *b = s_batch (schema, 5, 1, 3, -1);
    assert_int_equal (qv_segment_append (seg, b, 1000), 0);
    qv_batch_destroy (&b);
    seg->ts [4] = 1000 + 100;               //  a delta of 100: two bytes (zigzag 200)
    //  ts 1000 x 4, 1100: zigzag deltas 2000 (d0 0f), 0, 0, 0, 200 (c8 01)
    const uint8_t tsd [] = { 0xd0, 0x0f, 0, 0, 0, 0xc8, 0x01 };
    //  ids 1..5: zigzag deltas 2 each
    const uint8_t pkd [] = { 2, 2, 2, 2, 2 };
    //  The helper writes what qv_segment_save writes
    size_t size, want_size;
    uint8_t *obj = s_v3_object (seg, 5, tsd, sizeof tsd, pkd, sizeof pkd, true, &size);
    uint8_t *want = qv_segment_save (seg, &want_size);
    assert_int_equal (size, want_size);
    assert_memory_equal (obj, want, size);
    free (want);
    qv_segment_t *loaded = NULL;
    assert_int_equal (qv_segment_load ("ok", obj, size, &loaded), 0);
    assert_true (loaded->ts [3] == 1000 && loaded->ts [4] == 1100);
    assert_int_equal (qv_col_i64 (&loaded->batch->cols [0], 4), 5);
    qv_segment_unlink (&loaded);
    free (obj);

    uint8_t bad [32];
    //  Timestamps: truncated inside the last varint, one short, one too many,
    //  a trailing byte, over-long (11 bytes; 10 with bits past 64), padded
    s_expect_coded_corrupt (seg, 5, tsd, sizeof tsd - 1, pkd, sizeof pkd, true, true, "ts truncated");
    s_expect_coded_corrupt (seg, 5, tsd, sizeof tsd - 2, pkd, sizeof pkd, true, true, "ts one short");
    memcpy (bad, tsd, sizeof tsd);
    bad [sizeof tsd] = 0;
    s_expect_coded_corrupt (seg, 5, bad, sizeof tsd + 1, pkd, sizeof pkd, true, true, "ts one too many");
    bad [sizeof tsd] = 0x80;
    s_expect_coded_corrupt (seg, 5, bad, sizeof tsd + 1, pkd, sizeof pkd, true, true, "ts trailing byte");
    memcpy (bad, tsd, 5);
    memset (bad + 5, 0x80, 10);
    bad [15] = 0;
    s_expect_coded_corrupt (seg, 5, bad, 16, pkd, sizeof pkd, true, true, "ts over-long");
    memset (bad + 5, 0xff, 9);
    bad [14] = 2;
    s_expect_coded_corrupt (seg, 5, bad, 15, pkd, sizeof pkd, true, true, "ts past 64 bits");
    bad [5] = 0xc8; bad [6] = 0x81; bad [7] = 0;
    s_expect_coded_corrupt (seg, 5, bad, 8, pkd, sizeof pkd, true, true, "ts padded");
    //  The same for the keys
    s_expect_coded_corrupt (seg, 5, tsd, sizeof tsd, pkd, sizeof pkd - 1, true, true, "ids one short");
    memcpy (bad, pkd, sizeof pkd);
    bad [sizeof pkd] = 2;
    s_expect_coded_corrupt (seg, 5, tsd, sizeof tsd, bad, sizeof pkd + 1, true, true, "ids one too many");
    bad [4] = 0x82;
    s_expect_coded_corrupt (seg, 5, tsd, sizeof tsd, bad, sizeof pkd, true, true, "ids truncated");
    memset (bad + 4, 0x80, 11);
    s_expect_coded_corrupt (seg, 5, tsd, sizeof tsd, bad, 15, true, true, "ids over-long");
    //  The keys missing, given twice (coded and in the batch), or not coded at all
    s_expect_coded_corrupt (seg, 5, tsd, sizeof tsd, NULL, 0, true, false, "no pkd");
    s_expect_coded_corrupt (seg, 5, tsd, sizeof tsd, pkd, sizeof pkd, false, false, "pk in the batch");
    s_expect_coded_corrupt (seg, 5, tsd, sizeof tsd, NULL, 0, false, false, "raw pk only");
    //  A row count past the coded values, small or huge (no allocation of it either)
    s_expect_coded_corrupt (seg, 6, tsd, sizeof tsd, pkd, sizeof pkd, true, false, "rows + 1");
    s_expect_coded_corrupt (seg, 0x80000005u, tsd, sizeof tsd, pkd, sizeof pkd, true, false, "huge rows");
    //  Raw timestamps ("ts") in a version 3 object
    {
        qv_wr_t *w = qv_wr_new ();
        uint8_t header [QV_ENVELOPE_HEADER_SIZE + 28] = { 0 };
        qv_wr_raw (w, header, sizeof header);
        qv_wr_map (w, 3);
        qv_wr_str (w, "schema");
        qv_schema_write (seg->schema, w);
        qv_wr_str (w, "ts");
        qv_wr_bin (w, seg->ts, 5 * 8);
        qv_wr_str (w, "batch");
        qv_batch_write (seg->batch, w);
        obj = qv_wr_detach (w, &size);
        qv_wr_destroy (&w);
        qv_le_put32 (obj + QV_ENVELOPE_HEADER_SIZE + 16, 5);
        qv_le_put64 (obj + QV_ENVELOPE_HEADER_SIZE + 20, size - sizeof header);
        qv_envelope_seal (obj, size, QV_ENVELOPE_SEGMENT, 3);
        s_expect_corrupt (obj, size, "raw ts in version 3");
        //  ... which is version 2 (the body and fields as version 2 wrote them)
        qv_envelope_seal (obj, size, QV_ENVELOPE_SEGMENT, 2);
        assert_int_equal (qv_segment_load ("v2", obj, size, &loaded), 0);
        assert_true (loaded->ts [4] == 1100);
        qv_segment_unlink (&loaded);
        free (obj);
    }
    qv_segment_unlink (&seg);
    qv_schema_destroy (&schema);

    //  A varchar key is not coded: a "pkd" beside it is refused
    schema = s_schema ("L2", "varchar");
    seg = qv_segment_new (schema, 42, 9, 2, 5);
    b = s_batch (schema, 5, 1, 3, -1);
    assert_int_equal (qv_segment_append (seg, b, 1000), 0);
    qv_batch_destroy (&b);
    seg->ts [4] = 1100;
    obj = s_v3_object (seg, 5, tsd, sizeof tsd, NULL, 0, false, &size);
    want = qv_segment_save (seg, &want_size);
    assert_int_equal (size, want_size);
    assert_memory_equal (obj, want, size);
    free (want);
    free (obj);
    s_expect_coded_corrupt (seg, 5, tsd, sizeof tsd, pkd, sizeof pkd, false, false, "pkd of a varchar key");
    qv_segment_unlink (&seg);
    qv_schema_destroy (&schema);
}

//  The fixture's rows, as make_v2_segment.py inserted them (two inserts: 3 + 4 rows).
static void
s_check_v2_rows (qv_segment_t *seg)
{
    static const int64_t ids [7] = { 10, 11, 12, -5, INT64_MAX, INT64_MIN, 7 };
    assert_int_equal (atomic_load (&seg->rows), 7);
    assert_int_equal (seg->schema->nfields, 3);
    assert_int_equal (seg->schema->fields [0].type, QV_INT64);
    for (uint32_t r = 0; r < 7; r++) {
        assert_true (qv_col_i64 (&seg->batch->cols [0], r) == ids [r]);
        float i = (float) r, v [4] = { i + 0.5f, (0 - i) / 4, 1, i * i / 8 };   //  +0 as python's -0 / 4.0
        assert_memory_equal (qv_col_vec (&seg->schema->fields [1], &seg->batch->cols [1], r), v, sizeof v);
        const qv_col_t *tag = &seg->batch->cols [2];
        if (ids [r] < 0)
            assert_int_equal (tag->valid [r], 0);
        else {
            char want [32];
            snprintf (want, sizeof want, "t%lld", (long long) ids [r]);
            assert_true (tag->valid [r] == 1 && qv_col_var (tag, r)->len == strlen (want));
            assert_memory_equal (qv_col_var (tag, r)->ptr, want, strlen (want));
        }
    }
    //  One timestamp an insert, the second later
    assert_true (seg->ts [0] > 0 && seg->ts [0] == seg->ts [1] && seg->ts [1] == seg->ts [2]);
    assert_true (seg->ts [3] > seg->ts [2]);
    for (uint32_t r = 4; r < 7; r++)
        assert_true (seg->ts [r] == seg->ts [3]);
}

//  tests/fixtures/segment-v2 (made by tests/fixtures/make_v2_segment.py): a version 2
//  object written by Quiver 3aee65e loads, and saves as version 3 to the same rows.
static void
test_v2_object (void **state)
{
    (void) state;
    size_t size;
    uint8_t *v2 = qv_test_fixture ("segment-v2", &size);
    qv_envelope_t env;
    assert_int_equal (qv_envelope_open ("v2", v2, size, QV_ENVELOPE_SEGMENT, 3, &env), 0);
    assert_int_equal (env.version, 2);
    qv_segment_t *seg = NULL;
    assert_int_equal (qv_segment_load ("segments/1/1", v2, size, &seg), 0);
    s_check_v2_rows (seg);
    //  Saved again it is version 3, smaller by the raw timestamps and keys, and loads
    //  to the same rows
    size_t v3_size;
    uint8_t *v3 = qv_segment_save (seg, &v3_size);
    assert_int_equal (qv_envelope_open ("v3", v3, v3_size, QV_ENVELOPE_SEGMENT, 3, &env), 0);
    assert_int_equal (env.version, 3);
    assert_true (v3_size < size);
    qv_segment_t *again = NULL;
    assert_int_equal (qv_segment_load ("v3", v3, v3_size, &again), 0);
    s_check_v2_rows (again);
    for (uint32_t r = 0; r < 7; r++)
        assert_true (again->ts [r] == seg->ts [r]);
    qv_segment_unlink (&again);
    free (v3);
    qv_segment_unlink (&seg);
    //  Owned (the buffer handed over and freed or kept: ASan checks either)
    assert_int_equal (qv_segment_load_owned ("segments/1/1", v2, size, &seg), 0);
    s_check_v2_rows (seg);
    qv_segment_unlink (&seg);
    //  A damaged version 2 object is refused
    v2 = qv_test_fixture ("segment-v2", &size);
    v2 [size - 40] ^= 1;
    s_expect_corrupt (v2, size, "v2 bit flip");
    free (v2);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_append_and_visibility),
        cmocka_unit_test (test_growth),
        cmocka_unit_test (test_scan_vs_brute_force),
        cmocka_unit_test (test_save_load),
        cmocka_unit_test (test_load_corrupt),
        cmocka_unit_test (test_empty_meta_and_lazy_deletes),
        cmocka_unit_test (test_coded_round_trip),
        cmocka_unit_test (test_coded_corrupt),
        cmocka_unit_test (test_v2_object),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
