//  siftsmall through a real server: exact search has recall@10 == 1.0 against the
//  ground truth, before and after flush and restart, with one segment or several.
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qv_codec.h"
#include "qv_it_server.h"

#define DIM 128
#define NB 10000
#define NQ 100
#define GT_K 100
#define K 10
#define BATCH 1000

static float *s_base;               //  NB x DIM
static float *s_query;              //  NQ x DIM
static int32_t *s_gt;               //  NQ x GT_K ids
static float *s_gt_dist;            //  NQ x GT_K squared L2

//  Reads a .fvecs / .ivecs file (each row: int32 dim, then dim 4-byte values) of
//  exactly n rows of dim values into a new array. NULL on any mismatch.
static void *
s_read_vecs (const char *name, size_t n, size_t dim)
{
    const char *dir = getenv ("QV_DATA_DIR");
    char path [4096];
    snprintf (path, sizeof path, "%s/siftsmall/%s", dir ? dir : "../../shared/data", name);
    FILE *f = fopen (path, "rb");
    if (!f) {
        fprintf (stderr, "cannot open %s (set QV_DATA_DIR)\n", path);
        return NULL;
    }
    uint8_t *out = malloc (n * dim * 4);
    for (size_t i = 0; i < n; i++) {
        int32_t d;
        if (fread (&d, 4, 1, f) != 1 || (size_t) d != dim
        ||  fread (out + i * dim * 4, 4, dim, f) != dim) {
            fprintf (stderr, "%s: row %zu is not %zu values\n", path, i, dim);
            free (out);
            fclose (f);
            return NULL;
        }
    }
    fclose (f);
    return out;
}

static int
s_group_setup (void **state)
{
    (void) state;
    s_base = s_read_vecs ("base.fvecs", NB, DIM);
    s_query = s_read_vecs ("query.fvecs", NQ, DIM);
    s_gt = s_read_vecs ("gt.ivecs", NQ, GT_K);
    s_gt_dist = s_read_vecs ("gt_dist.fvecs", NQ, GT_K);
    return s_base && s_query && s_gt && s_gt_dist ? 0 : -1;
}

static int
s_group_teardown (void **state)
{
    (void) state;
    free (s_base);
    free (s_query);
    free (s_gt);
    free (s_gt_dist);
    return 0;
}

static void
s_create (qv_it_client_t *c)
{
    qv_doc_t *r = qv_it_callf (c, "{op: 'create_collection', collection: 'sift', fields: ["
                                  "{name: 'id', type: 'int64', primary: true},"
                                  "{name: 'v', type: 'float_vector', dim: %d, metric: 'L2'}]}", DIM);
    assert_true (qv_it_ok (r));
    qv_doc_destroy (&r);
}

//  Inserts base rows [from, to) as columnar batches of BATCH with the vectors in a bin.
static void
s_load (qv_it_client_t *c, uint32_t from, uint32_t to)
{
    qv_wr_t *w = qv_wr_new ();
    for (uint32_t start = from; start < to; start += BATCH) {
        uint32_t n = to - start < BATCH ? to - start : BATCH;
        qv_wr_map (w, 3);
        qv_wr_str (w, "op"); qv_wr_str (w, "insert");
        qv_wr_str (w, "collection"); qv_wr_str (w, "sift");
        qv_wr_str (w, "columns"); qv_wr_map (w, 2);
        qv_wr_str (w, "id"); qv_wr_array (w, n);
        for (uint32_t i = 0; i < n; i++)
            qv_wr_int (w, start + i);
        qv_wr_str (w, "v"); qv_wr_bin (w, s_base + (size_t) start * DIM, (size_t) n * DIM * 4);
        qv_doc_t *r = qv_it_call (c, w);
        if (!qv_it_ok (r))
            fail_msg ("insert of rows %u..%u: %s %s", start, start + n, qv_it_code (r), qv_it_error (r));
        assert_int_equal (qv_it_int (qv_it_path (r, "count")), n);
        qv_doc_destroy (&r);
    }
    qv_wr_destroy (&w);
}

static int64_t
s_describe (qv_it_client_t *c, const char *what)
{
    qv_doc_t *r = qv_it_callf (c, "{op: 'describe_collection', collection: 'sift'}");
    assert_true (qv_it_ok (r));
    int64_t v = qv_it_int (qv_it_path (r, what));
    qv_doc_destroy (&r);
    return v;
}

//  Searches all queries in one request; asserts recall@10 == 1.0 and that each
//  distance is the ground truth's.
static void
s_check_recall (qv_it_client_t *c, const char *when)
{
    qv_wr_t *w = qv_wr_new ();
    qv_wr_map (w, 5);
    qv_wr_str (w, "op"); qv_wr_str (w, "search");
    qv_wr_str (w, "collection"); qv_wr_str (w, "sift");
    qv_wr_str (w, "vectors"); qv_wr_bin (w, s_query, (size_t) NQ * DIM * 4);
    qv_wr_str (w, "dim"); qv_wr_uint (w, DIM);
    qv_wr_str (w, "limit"); qv_wr_uint (w, K);
    qv_doc_t *r = qv_it_call (c, w);
    qv_wr_destroy (&w);
    if (!qv_it_ok (r))
        fail_msg ("%s: search: %s %s", when, qv_it_code (r), qv_it_error (r));
    const qv_val_t *results = qv_it_path (r, "results");
    assert_int_equal (qv_val_len (results), NQ);
    uint32_t found = 0;
    for (uint32_t q = 0; q < NQ; q++) {
        const qv_val_t *hits = qv_val_at (results, q);
        assert_int_equal (qv_val_len (hits), K);
        for (uint32_t i = 0; i < K; i++) {
            const qv_val_t *hit = qv_val_at (hits, i);
            int64_t id = qv_it_int (qv_it_vpath (hit, "id"));
            double dist = qv_it_num (qv_it_vpath (hit, "distance"));
            double want = s_gt_dist [q * GT_K + i];
            if (fabs (dist - want) > 1e-5 * want + 1e-3)
                fail_msg ("%s: query %u rank %u: distance %.3f, ground truth %.3f", when, q, i,
                          dist, want);
            for (uint32_t j = 0; j < K; j++)
                if (s_gt [q * GT_K + j] == id) {
                    found++;
                    break;
                }
        }
    }
    qv_doc_destroy (&r);
    double recall = (double) found / (NQ * K);
    if (found != NQ * K)
        fail_msg ("%s: recall@%d = %.4f, exact search must give 1.0", when, K, recall);
}

static void
s_restart (qv_it_server_t *server, qv_it_client_t **c)
{
    qv_it_client_destroy (c);
    assert_int_equal (qv_it_server_kill (server), 0);
    assert_int_equal (qv_it_server_restart (server), 0);
    *c = qv_it_client_new (server->endpoint, QV_IT_CALL_MS);
    assert_non_null (*c);
}

//  Default segment size: everything in one growing segment, then one flushed segment.
static void
test_sift_one_segment (void **state)
{
    (void) state;
    qv_it_server_t *server = qv_it_server_new (NULL);
    assert_non_null (server);
    assert_int_equal (qv_it_server_start (server), 0);
    qv_it_client_t *c = qv_it_client_new (server->endpoint, QV_IT_CALL_MS);
    s_create (c);
    s_load (c, 0, NB);
    assert_int_equal (s_describe (c, "rows"), NB);
    s_check_recall (c, "growing");

    qv_doc_t *r = qv_it_callf (c, "{op: 'flush', collection: 'sift'}");
    assert_true (qv_it_ok (r));
    assert_true (qv_val_len (qv_it_path (r, "segments")) >= 1);
    qv_doc_destroy (&r);
    s_check_recall (c, "flushed");

    s_restart (server, &c);
    assert_int_equal (s_describe (c, "rows"), NB);
    s_check_recall (c, "after flush and kill -9");

    qv_it_client_destroy (&c);
    qv_it_server_destroy (&server);
}

//  --segment-mb 1: several segments; part flushed, part only in the WAL when killed.
static void
test_sift_several_segments (void **state)
{
    (void) state;
    const char *extra [] = { "--segment-mb", "1", NULL };
    qv_it_server_t *server = qv_it_server_new (extra);
    assert_non_null (server);
    assert_int_equal (qv_it_server_start (server), 0);
    qv_it_client_t *c = qv_it_client_new (server->endpoint, QV_IT_CALL_MS);
    s_create (c);
    s_load (c, 0, NB / 2);
    qv_doc_t *r = qv_it_callf (c, "{op: 'flush', collection: 'sift'}");
    assert_true (qv_it_ok (r));
    qv_doc_destroy (&r);
    s_load (c, NB / 2, NB);
    //  10000 x 128 floats is 5 MB: at 1 MB a segment there are at least 5
    assert_true (s_describe (c, "segments") >= 5);
    assert_int_equal (s_describe (c, "rows"), NB);
    s_check_recall (c, "several segments");

    //  Half the rows were never flushed by request (some may be, by size)
    s_restart (server, &c);
    assert_int_equal (s_describe (c, "rows"), NB);
    assert_true (s_describe (c, "segments") >= 5);
    s_check_recall (c, "after kill -9 with unflushed rows");

    r = qv_it_callf (c, "{op: 'flush', collection: 'sift'}");
    assert_true (qv_it_ok (r));
    assert_true (qv_val_len (qv_it_path (r, "segments")) >= 5);
    qv_doc_destroy (&r);
    s_check_recall (c, "flushed");
    s_restart (server, &c);
    assert_int_equal (s_describe (c, "rows"), NB);
    s_check_recall (c, "after flush and kill -9");

    qv_it_client_destroy (&c);
    qv_it_server_destroy (&server);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_sift_one_segment),
        cmocka_unit_test (test_sift_several_segments),
    };
    if (getenv ("QV_IT_ONLY"))      //  e.g. QV_IT_ONLY=test_sigterm
        cmocka_set_test_filter (getenv ("QV_IT_ONLY"));
    return cmocka_run_group_tests (tests, s_group_setup, s_group_teardown);
}
