//  PQ: each table-scan and table-sum kernel against the serial reference, training quality, LUT distances, bad input.
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "qv_pq.h"
#include "qv_rc.h"

//  Code sizes (m) to scan: the dims list of the other kernels where it fits a code, plus
//  the sizes an index uses.
static const size_t s_ms [] = { 1, 3, 8, 16, 17, 32, 48, 64, 128, 768, 1536 };
#define S_NMS (sizeof s_ms / sizeof s_ms [0])

typedef struct {
    const char *isa;
    qv_pq_scan_fn scan;
    qv_pq_lut_add_fn lut_add;
} variant_t;

static const variant_t s_variants [] = {
    { "avx2", qv_pq_scan_avx2, qv_pq_lut_add_avx2 },
    { "avx512", qv_pq_scan_avx512, qv_pq_lut_add_avx512 },
};

static uint64_t s_seed = 11;

static uint32_t
s_rand (void)
{
    s_seed = s_seed * 6364136223846793005ull + 1442695040888963407ull;
    return (uint32_t) (s_seed >> 33);
}

static float
s_uniform (void)
{
    return (float) (s_rand () & 0xFFFFFF) / (float) 0x1000000;
}

static void
test_scan_kernels_match_serial (void **state)
{
    (void) state;
    size_t n = 37;
    for (size_t v = 0; v < sizeof s_variants / sizeof s_variants [0]; v++) {
        const variant_t *var = &s_variants [v];
        if (!qv_dist_cpu_has (var->isa)) {
            fprintf (stderr, "skip %s: CPU lacks it\n", var->isa);
            continue;
        }
        for (size_t t = 0; t < S_NMS; t++) {
            size_t m = s_ms [t];
            float *lut = malloc (m * QV_PQ_KSUB * sizeof (float));
            uint8_t *codes = malloc (n * m);     //  ends exactly at the last code for ASan
            float *want = malloc (n * sizeof (float)), *got = malloc (n * sizeof (float));
            for (int which = 0; which < 3; which++) {
                //  0: random; 1: all codes 0; 2: all codes 255 (the table's last column).
                for (size_t i = 0; i < m * QV_PQ_KSUB; i++)
                    lut [i] = s_uniform () * 100 - 10;
                for (size_t i = 0; i < n * m; i++)
                    codes [i] = which == 0 ? (uint8_t) s_rand () : which == 1 ? 0 : 255;
                qv_pq_scan_serial (lut, codes, n, m, want);
                var->scan (lut, codes, n, m, got);
                for (size_t i = 0; i < n; i++) {
                    double scale = 0;
                    for (size_t j = 0; j < m; j++)
                        scale += fabs (lut [j * QV_PQ_KSUB + codes [i * m + j]]);
                    if (fabs ((double) got [i] - want [i]) > 1e-5 * scale) {
                        fprintf (stderr, "scan %s m=%zu row %zu: got %.9g want %.9g\n",
                                 var->isa, m, i, got [i], want [i]);
                        fail ();
                    }
                }
            }
            free (lut);
            free (codes);
            free (want);
            free (got);
        }
    }
    assert_string_equal (qv_pq_kernels ()->isa, qv_dist_kernels ()->isa);
}

//  Table sums on the dims list and on table sizes (m * 256).
static void
test_lut_add_kernels_match_serial (void **state)
{
    (void) state;
    static const size_t sizes [] = { 1, 3, 17, 128, 768, 1536, 256, 4096, 16384 };
    for (size_t v = 0; v < sizeof s_variants / sizeof s_variants [0]; v++) {
        const variant_t *var = &s_variants [v];
        if (!qv_dist_cpu_has (var->isa)) {
            fprintf (stderr, "skip %s: CPU lacks it\n", var->isa);
            continue;
        }
        for (size_t t = 0; t < sizeof sizes / sizeof sizes [0]; t++) {
            size_t n = sizes [t];
            float *a = malloc (n * sizeof (float)), *b = malloc (n * sizeof (float));
            float *want = malloc (n * sizeof (float)), *got = malloc (n * sizeof (float));
            for (size_t e = 0; e < n; e++) {
                a [e] = s_uniform () * 1000 - 500;
                b [e] = s_uniform () * 2000 - 1000;
            }
            qv_pq_lut_add_serial (a, b, -2.0f, n, want);
            var->lut_add (a, b, -2.0f, n, got);
            for (size_t e = 0; e < n; e++) {
                //  FMA rounds once: within an ulp of the terms' magnitude.
                double scale = fabs (a [e]) + fabs (2.0 * b [e]);
                if (fabs ((double) got [e] - want [e]) > 1e-6 * scale) {
                    fprintf (stderr, "lut_add %s n=%zu [%zu]: got %.9g want %.9g\n",
                             var->isa, n, e, got [e], want [e]);
                    fail ();
                }
            }
            free (a);
            free (b);
            free (want);
            free (got);
        }
    }
}

//  Clustered data: PQ reconstruction error must be far below the data's variance, and
//  table distances must equal the exact distance to the decoded vector.
static void
test_train_encode_lut (void **state)
{
    (void) state;
    size_t dim = 32, m = 8, n = 3000, nc = 20;
    float *centres = malloc (nc * dim * sizeof (float));
    float *x = malloc (n * dim * sizeof (float));
    float *y = malloc (n * dim * sizeof (float));
    uint8_t *codes = malloc (n * m);
    for (size_t i = 0; i < nc * dim; i++)
        centres [i] = s_uniform () * 10;
    for (size_t i = 0; i < n; i++)
        for (size_t d = 0; d < dim; d++)
            x [i * dim + d] = centres [(i % nc) * dim + d] + (s_uniform () - 0.5f) * 0.5f;

    qv_pq_t *pq = qv_pq_new (dim, m);
    assert_non_null (pq);
    assert_int_equal (qv_pq_m (pq), m);
    assert_int_equal (qv_pq_train (pq, x, n, NULL), 0);
    assert_int_equal (qv_pq_encode (pq, x, n, codes), 0);
    qv_pq_decode (pq, codes, n, y);
    double err = 0, var = 0, mean [32] = { 0 };
    for (size_t i = 0; i < n; i++)
        for (size_t d = 0; d < dim; d++)
            mean [d] += x [i * dim + d] / (double) n;
    for (size_t i = 0; i < n * dim; i++) {
        err += (x [i] - y [i]) * (x [i] - y [i]);
        var += (x [i] - mean [i % dim]) * (x [i] - mean [i % dim]);
    }
    assert_true (err < 0.01 * var);

    float q [32];
    for (size_t d = 0; d < dim; d++)
        q [d] = s_uniform () * 10;
    float *lut = malloc (m * QV_PQ_KSUB * sizeof (float));
    float *out = malloc (n * sizeof (float));
    for (int metric = QV_METRIC_L2; metric <= QV_METRIC_IP; metric++) {
        qv_pq_lut (pq, (qv_metric_t) metric, q, lut);
        qv_pq_kernels ()->scan (lut, codes, n, m, out);
        for (size_t i = 0; i < n; i++) {
            float want = 0, scale = 1;
            for (size_t d = 0; d < dim; d++) {
                float t = metric == QV_METRIC_L2 ? (q [d] - y [i * dim + d]) * (q [d] - y [i * dim + d])
                                                 : q [d] * y [i * dim + d];
                want += t;
                scale += fabsf (t);
            }
            assert_float_equal (out [i], want, 1e-4f * scale);
        }
    }
    //  A quantizer rebuilt from the codebooks encodes identically.
    qv_pq_t *copy = qv_pq_new_from (dim, m, qv_pq_codebooks (pq));
    assert_non_null (copy);
    uint8_t *codes2 = malloc (n * m);
    assert_int_equal (qv_pq_encode (copy, x, n, codes2), 0);
    assert_memory_equal (codes, codes2, n * m);
    qv_pq_destroy (&copy);
    qv_pq_destroy (&pq);
    assert_null (pq);
    qv_pq_destroy (&pq);
    free (codes2);
    free (lut);
    free (out);
    free (centres);
    free (x);
    free (y);
    free (codes);
}

static void
test_bad_input (void **state)
{
    (void) state;
    assert_null (qv_pq_new (10, 3));
    assert_null (qv_pq_new (10, 0));
    assert_null (qv_pq_new (0, 1));
    qv_pq_t *pq = qv_pq_new (4, 2);
    float x [4 * 100] = { 0 };
    assert_int_equal (qv_pq_train (pq, x, 100, NULL), QV_EINVAL);
    qv_pq_destroy (&pq);
    float *books = calloc (2 * QV_PQ_KSUB * 2, sizeof (float));
    books [17] = NAN;
    assert_null (qv_pq_new_from (4, 2, books));
    free (books);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_scan_kernels_match_serial),
        cmocka_unit_test (test_lut_add_kernels_match_serial),
        cmocka_unit_test (test_train_encode_lut),
        cmocka_unit_test (test_bad_input),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
