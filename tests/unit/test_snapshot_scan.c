//  Snapshot search over an HNSW-indexed segment with a filter, split across parts as
//  the searcher's workers do: a filter that allows few rows is answered by the
//  batched exact scan (qv_index_scans_exact) and must equal brute force exactly, for
//  every query and however many parts; a broad filter goes through the graph and must
//  return only allowed, visible rows with high recall.
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qv_catalog.h"
#include "qv_hnsw.h"
#include "qv_test_json.h"

enum { DIM = 24, ROWS = 4000, NQ = 12, K = 10 };

static qv_schema_t *
s_schema (const char *metric)
{
    char json [512];
    snprintf (json, sizeof json,
              "[{\"name\": \"id\", \"type\": \"int64\", \"primary\": true},"
              " {\"name\": \"v\", \"type\": \"float_vector\", \"dim\": %d, \"metric\": \"%s\"}]",
              DIM, metric);
    return qv_test_schema (json);
}

//  A segment of ROWS random rows appended at ts 100, every 13th deleted at ts 200,
//  with an HNSW index over its vectors; a snapshot of it at ts 300.
static qv_snapshot_t *
s_snapshot (const char *metric)
{
    qv_schema_t *schema = s_schema (metric);
    qv_segment_t *seg = qv_segment_new (schema, 1, 1, 0, ROWS);
    qv_batch_t *b = qv_batch_new (schema, ROWS);
    unsigned seed = 5;
    for (uint32_t r = 0; r < ROWS; r++) {
        ((int64_t *) b->cols [0].data) [r] = r;
        float *v = (float *) b->cols [1].data + (size_t) r * DIM;
        for (int d = 0; d < DIM; d++)
            v [d] = (float) rand_r (&seed) / RAND_MAX * 2 - 1;
    }
    b->n = ROWS;
    assert_int_equal (qv_segment_append (seg, b, 100), 0);
    qv_batch_destroy (&b);
    for (uint32_t r = 0; r < ROWS; r += 13)
        qv_segment_delete (seg, r, 200);
    qv_index_t *index = qv_index_new ("HNSW", qv_metric_parse (metric), DIM, NULL);
    assert_non_null (index);
    assert_int_equal (qv_index_build (index, qv_col_vec (&schema->fields [1], &seg->batch->cols [1], 0),
                                      ROWS), 0);
    qv_snapshot_t *snap = calloc (1, sizeof *snap);
    snap->segs = calloc (1, sizeof (qv_segment_t *));
    snap->rows = calloc (1, sizeof (uint32_t));
    snap->idx = calloc (1, sizeof (qv_segidx_t *));
    snap->allowed = calloc (1, sizeof (roaring_bitmap_t *));
    snap->segs [0] = seg;
    snap->rows [0] = ROWS;
    snap->idx [0] = qv_segidx_new (&index, 1);
    assert_non_null (snap->idx [0]);
    snap->nsegs = 1;
    snap->ts = 300;
    snap->field = 1;
    qv_schema_destroy (&schema);
    return snap;
}

//  The snapshot searched in parts (each into its own top-k lists, merged as the
//  searcher does): ids of the best k per query in ids [q * K ..], count in n [q].
static void
s_search (qv_snapshot_t *snap, const float *queries, const float *qnorms, uint32_t parts,
          int64_t *ids, uint32_t *n)
{
    qv_topk_t *tops [8][NQ];
    for (uint32_t p = 0; p < parts; p++) {
        for (int q = 0; q < NQ; q++)
            tops [p][q] = qv_topk_new (K);
        qv_snapshot_scan (snap, queries, qnorms, NQ, K, 64, 0, p, parts, tops [p]);
    }
    for (int q = 0; q < NQ; q++) {
        for (uint32_t p = 1; p < parts; p++) {
            qv_topk_merge (tops [0][q], &tops [p][q], 1);
            qv_topk_destroy (&tops [p][q]);
        }
        n [q] = qv_topk_extract (tops [0][q], ids + q * K, NULL);
        qv_topk_destroy (&tops [0][q]);
    }
}

static void
test_filtered_parts (void **state)
{
    (void) state;
    const char *metrics [] = { "L2", "IP", "COSINE" };
    for (int m = 0; m < 3; m++) {
        qv_snapshot_t *snap = s_snapshot (metrics [m]);
        qv_segment_t *seg = snap->segs [0];
        float queries [NQ * DIM], qnorms [NQ];
        unsigned seed = 9;
        for (int i = 0; i < NQ * DIM; i++)
            queries [i] = (float) rand_r (&seed) / RAND_MAX * 2 - 1;
        for (int q = 0; q < NQ; q++)
            qnorms [q] = qv_dist_norm (queries + q * DIM, DIM);
        //  1% of the rows (the index scans those exactly) and 50% (it walks)
        uint32_t steps [] = { 97, 2 };
        for (int s = 0; s < 2; s++) {
            roaring_bitmap_t *allowed = roaring_bitmap_create ();
            for (uint32_t r = 3; r < ROWS; r += steps [s])
                roaring_bitmap_add (allowed, r);
            qv_search_params_t params = { .ef = 64, .allowed = allowed };
            bool exact = qv_index_scans_exact (snap->idx [0]->index, K, &params);
            assert_int_equal (exact, s == 0);
            snap->allowed [0] = allowed;
            //  Brute force: the segment's exact scan of every row
            qv_topk_t *want_tops [NQ];
            for (int q = 0; q < NQ; q++)
                want_tops [q] = qv_topk_new (K);
            qv_segment_scan (seg, 1, queries, qnorms, NQ, 0, ROWS, snap->ts, 0, allowed, NULL, want_tops);
            int64_t want [NQ * K];
            uint32_t want_n [NQ];
            for (int q = 0; q < NQ; q++) {
                want_n [q] = qv_topk_extract (want_tops [q], want + q * K, NULL);
                qv_topk_destroy (&want_tops [q]);
            }
            for (uint32_t parts = 1; parts <= 3; parts++) {
                int64_t got [NQ * K];
                uint32_t got_n [NQ];
                s_search (snap, queries, qnorms, parts, got, got_n);
                double hits = 0;
                for (int q = 0; q < NQ; q++) {
                    assert_int_equal (got_n [q], want_n [q]);
                    for (uint32_t i = 0; i < got_n [q]; i++) {
                        uint32_t row = (uint32_t) got [q * K + i];
                        assert_true (roaring_bitmap_contains (allowed, row));
                        assert_true (qv_segment_visible (seg, row, snap->ts));
                        if (exact)
                            assert_int_equal (got [q * K + i], want [q * K + i]);
                        for (uint32_t j = 0; j < want_n [q]; j++)
                            hits += got [q * K + i] == want [q * K + j];
                    }
                }
                if (!exact)
                    assert_true (hits / (NQ * K) >= 0.9);
            }
            snap->allowed [0] = NULL;
            roaring_bitmap_free (allowed);
        }
        qv_snapshot_destroy (&snap);
    }
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_filtered_parts),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
