//  Blocked exact scan (qv_blockscan): the same pushes as a per-query scan in row order
//  (ids and scores identical) for L2 / IP / COSINE, odd dims, batches that are not a
//  multiple of the query block, row ranges that cross row blocks, a keep filter, zero
//  vectors and duplicate rows (ties); and the GEMM-form block within its rounding bound
//  of the serial reference kernels.
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "qv_blockscan.h"

static float *
s_random (size_t n, unsigned seed, float offset)
{
    float *v = malloc (n * sizeof (float));
    assert_non_null (v);
    for (size_t i = 0; i < n; i++)
        v [i] = offset + (float) rand_r (&seed) / RAND_MAX * 2 - 1;
    return v;
}

//  Keeps rows not divisible by 5.
static int
s_keep (void *arg, uint32_t row, float score)
{
    (void) arg;
    (void) score;
    return row % 5 != 0;
}

//  The per-query scan the blocked one must match: every row in order, pair kernel,
//  pushed when it beats the threshold and passes keep.
static void
s_reference (const qv_blockscan_t *scan, uint32_t from, uint32_t to, qv_topk_t **tops)
{
    const qv_dist_kernels_t *kern = qv_dist_kernels ();
    qv_dist_fn pair = scan->metric == QV_METRIC_L2? kern->l2sq: kern->ip;
    for (uint32_t q = 0; q < scan->nq; q++) {
        const float *qv = scan->queries + (size_t) q * scan->dim;
        float qn = sqrtf (kern->ip (qv, qv, scan->dim));
        float thr = qv_topk_threshold (tops [q]);
        for (uint32_t r = from; r < to; r++) {
            const float *x = scan->rows + (size_t) r * scan->dim;
            float d = pair (qv, x, scan->dim), s;
            if (scan->metric == QV_METRIC_L2)
                s = d;
            else
            if (scan->metric == QV_METRIC_IP)
                s = -d;
            else {
                float xn = sqrtf (kern->ip (x, x, scan->dim));
                s = qn * xn > 0? -d / (qn * xn): 0.0f;
            }
            if (s <= thr && (!scan->keep || scan->keep (scan->keep_arg, r, s))) {
                qv_topk_push (tops [q], s, scan->id_base | r);
                thr = qv_topk_threshold (tops [q]);
            }
        }
    }
}

static void
s_compare (qv_metric_t metric, uint32_t dim, uint32_t nq, uint32_t n, uint32_t from,
           uint32_t to, uint32_t k, int keep, float offset)
{
    float *rows = s_random ((size_t) n * dim, 1 + dim, offset);
    float *queries = s_random ((size_t) nq * dim, 2 + nq, offset);
    //  A zero row, duplicates of row 7 (ties), and query 1 equal to row 7
    memset (rows + (size_t) 3 * dim, 0, dim * sizeof (float));
    for (uint32_t r = 600; r < n && r < 605; r++)
        memcpy (rows + (size_t) r * dim, rows + (size_t) 7 * dim, dim * sizeof (float));
    memcpy (queries + dim, rows + (size_t) 7 * dim, dim * sizeof (float));
    qv_blockscan_t scan = {
        .metric = metric, .dim = dim, .rows = rows, .queries = queries, .nq = nq,
        .keep = keep? s_keep: NULL, .id_base = (int64_t) 9 << 32
    };
    qv_topk_t **got = calloc (nq, sizeof *got), **want = calloc (nq, sizeof *want);
    for (uint32_t q = 0; q < nq; q++) {
        got [q] = qv_topk_new (k);
        want [q] = qv_topk_new (k);
    }
    assert_int_equal (qv_blockscan_run (&scan, from, to, got), 0);
    s_reference (&scan, from, to, want);
    int64_t *gi = malloc (k * sizeof (int64_t)), *wi = malloc (k * sizeof (int64_t));
    float *gs = malloc (k * sizeof (float)), *ws = malloc (k * sizeof (float));
    for (uint32_t q = 0; q < nq; q++) {
        uint32_t gn = qv_topk_extract (got [q], gi, gs);
        uint32_t wn = qv_topk_extract (want [q], wi, ws);
        assert_int_equal (gn, wn);
        for (uint32_t i = 0; i < gn; i++)
            if (gi [i] != wi [i] || gs [i] != ws [i])
                fail_msg ("%s dim %u nq %u rows [%u, %u) k %u: query %u rank %u got row %lld "
                          "score %.9g, per-query scan row %lld score %.9g",
                          qv_metric_name (metric), dim, nq, from, to, k, q, i,
                          (long long) (gi [i] & 0xffffffff), gs [i],
                          (long long) (wi [i] & 0xffffffff), ws [i]);
        qv_topk_destroy (&got [q]);
        qv_topk_destroy (&want [q]);
    }
    free (gi); free (wi); free (gs); free (ws);
    free (got); free (want);
    free (rows);
    free (queries);
}

static void
test_same_as_per_query_scan (void **state)
{
    (void) state;
    qv_metric_t metrics [] = { QV_METRIC_L2, QV_METRIC_IP, QV_METRIC_COSINE };
    uint32_t dims [] = { 1, 17, 131 };
    for (int m = 0; m < 3; m++)
        for (int d = 0; d < 3; d++) {
            s_compare (metrics [m], dims [d], 8, 1500, 0, 1500, 10, 0, 0);
            s_compare (metrics [m], dims [d], 13, 1500, 257, 1399, 10, 1, 0);
            s_compare (metrics [m], dims [d], 9, 700, 0, 700, 200, 0, 0);
        }
    //  More queries than one sgemm block (256), not a multiple of it
    s_compare (QV_METRIC_L2, 24, 300, 1100, 3, 1100, 5, 1, 0);
    //  Far from the origin: |q|^2 + |x|^2 - 2 q.x cancels
    s_compare (QV_METRIC_L2, 64, 20, 1300, 0, 1300, 10, 0, 100.0f);
    s_compare (QV_METRIC_IP, 64, 20, 1300, 0, 1300, 10, 0, 100.0f);
}

static void
test_block_within_slack (void **state)
{
    (void) state;
    uint32_t dims [] = { 3, 128, 785 };
    for (int d = 0; d < 3; d++)
        for (int is_l2 = 0; is_l2 < 2; is_l2++) {
            uint32_t dim = dims [d], nq = 11, nb = 37;
            float *q = s_random ((size_t) nq * dim, 5, 3.0f), *x = s_random ((size_t) nb * dim, 6, 3.0f);
            float qsq [11], xsq [37], out [11 * 37];
            for (uint32_t i = 0; i < nq; i++)
                qsq [i] = qv_dist_ip_f32_serial (q + (size_t) i * dim, q + (size_t) i * dim, dim);
            for (uint32_t i = 0; i < nb; i++)
                xsq [i] = qv_dist_ip_f32_serial (x + (size_t) i * dim, x + (size_t) i * dim, dim);
            qv_blockscan_block (q, nq, qsq, x, nb, xsq, dim, is_l2, out);
            for (uint32_t i = 0; i < nq; i++)
                for (uint32_t j = 0; j < nb; j++) {
                    const float *a = q + (size_t) i * dim, *b = x + (size_t) j * dim;
                    float ref = is_l2? qv_dist_l2sq_f32_serial (a, b, dim): qv_dist_ip_f32_serial (a, b, dim);
                    float slack = qv_blockscan_slack (dim, is_l2, qsq [i], xsq [j]);
                    if (fabsf (out [i * nb + j] - ref) > slack)
                        fail_msg ("dim %u %s: block %g, serial %g, slack %g", dim,
                                  is_l2? "L2": "IP", out [i * nb + j], ref, slack);
                }
            free (q);
            free (x);
        }
    assert_non_null (strstr (qv_blockscan_backend (), "openblas"));
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_same_as_per_query_scan),
        cmocka_unit_test (test_block_within_slack),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
