//  SQ8: each SIMD kernel against the serial reference, encode/decode error bound, query scans, bad input.
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "qv_sq8.h"
#include "qv_rc.h"

static const size_t s_dims [] = { 1, 3, 17, 128, 768, 1536 };
#define S_NDIMS (sizeof s_dims / sizeof s_dims [0])

typedef struct {
    const char *isa;
    float (*l2) (const float *a, const float *step, const uint8_t *code, size_t dim);
    float (*ip) (const float *a, const uint8_t *code, size_t dim);
} variant_t;

static const variant_t s_variants [] = {
    { "avx2", qv_sq8_l2_avx2, qv_sq8_ip_avx2 },
    { "avx512", qv_sq8_l2_avx512, qv_sq8_ip_avx512 },
};

static uint64_t s_seed = 7;

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

//  |got - want| within 1e-5 of the summed magnitudes (float vs float, different order).
static void
s_check_close (const char *what, const char *isa, size_t dim, float got, float want, double scale)
{
    double tol = 1e-5 * scale + 1e-30;
    if (fabs ((double) got - want) > tol) {
        fprintf (stderr, "%s %s dim=%zu: got %.9g want %.9g (tol %.3g)\n",
                 what, isa, dim, got, want, tol);
        fail ();
    }
}

//  case 0: random codes; 1: all 0; 2: all 255; 3: alternating 0 / 255 with large values.
static void
s_fill (int which, size_t dim, float *a, float *step, uint8_t *code)
{
    for (size_t d = 0; d < dim; d++) {
        a [d] = which == 3 ? 1e3f * (s_uniform () - 0.5f) : s_uniform () * 4 - 2;
        step [d] = which == 3 ? 10 * s_uniform () : s_uniform () / 64;
        code [d] = which == 0 ? (uint8_t) s_rand () : which == 1 ? 0 : which == 2 ? 255
                              : (d & 1) ? 255 : 0;
    }
}

static void
test_kernels_match_serial (void **state)
{
    (void) state;
    for (size_t v = 0; v < sizeof s_variants / sizeof s_variants [0]; v++) {
        const variant_t *var = &s_variants [v];
        if (!qv_dist_cpu_has (var->isa)) {
            fprintf (stderr, "skip %s: CPU lacks it\n", var->isa);
            continue;
        }
        for (size_t t = 0; t < S_NDIMS; t++) {
            size_t dim = s_dims [t];
            float *a = malloc (dim * sizeof (float));
            float *step = malloc (dim * sizeof (float));
            //  The code sits at the very end of an allocation, so a read past it trips ASan.
            uint8_t *code = malloc (dim);
            for (int which = 0; which < 4; which++)
                for (int rep = 0; rep < 5; rep++) {
                    s_fill (which, dim, a, step, code);
                    float want = qv_sq8_l2_serial (a, step, code, dim);
                    s_check_close ("l2", var->isa, dim, var->l2 (a, step, code, dim), want, want);
                    double scale = 0;
                    for (size_t d = 0; d < dim; d++)
                        scale += fabs ((double) a [d] * code [d]);
                    s_check_close ("ip", var->isa, dim, var->ip (a, code, dim),
                                   qv_sq8_ip_serial (a, code, dim), scale);
                }
            free (a);
            free (step);
            free (code);
        }
    }
}

static void
test_dispatch_follows_dist (void **state)
{
    (void) state;
    const qv_sq8_kernels_t *k = qv_sq8_kernels ();
    assert_string_equal (k->isa, qv_dist_kernels ()->isa);
    assert_true (k == qv_sq8_kernels ());
}

static void
test_encode_decode_bound (void **state)
{
    (void) state;
    size_t dim = 37, n = 200;
    float *x = malloc (n * dim * sizeof (float));
    float *y = malloc (n * dim * sizeof (float));
    uint8_t *codes = malloc (n * dim);
    for (size_t i = 0; i < n; i++)
        for (size_t d = 0; d < dim; d++)
            //  Dimension 5 is constant; the others span different ranges.
            x [i * dim + d] = d == 5 ? 3.25f : (s_uniform () - 0.5f) * (float) (d + 1);
    qv_sq8_t *sq = qv_sq8_new (dim);
    assert_non_null (sq);
    assert_int_equal (qv_sq8_train (sq, x, n), 0);
    qv_sq8_encode (sq, x, n, codes);
    qv_sq8_decode (sq, codes, n, y);
    const float *step = qv_sq8_step (sq);
    assert_true (step [5] == 0);
    for (size_t i = 0; i < n; i++)
        for (size_t d = 0; d < dim; d++)
            assert_true (fabsf (x [i * dim + d] - y [i * dim + d]) <= step [d] * 0.5f + 1e-5f);

    //  Out-of-range values saturate instead of wrapping.
    float far [37];
    uint8_t code [37];
    for (size_t d = 0; d < dim; d++)
        far [d] = (d & 1) ? 1e9f : -1e9f;
    qv_sq8_encode (sq, far, 1, code);
    for (size_t d = 0; d < dim; d++)
        if (d != 5)
            assert_int_equal (code [d], (d & 1) ? 255 : 0);

    //  Query scans equal the exact distance to the decoded vector.
    float q [37], buffer [37], out [200];
    for (size_t d = 0; d < dim; d++)
        q [d] = s_uniform () - 0.5f;
    qv_sq8_query_t query;
    qv_sq8_query_prepare (sq, QV_METRIC_L2, q, buffer, &query);
    qv_sq8_query_scan (&query, codes, n, out);
    for (size_t i = 0; i < n; i++) {
        float want = 0;
        for (size_t d = 0; d < dim; d++)
            want += (q [d] - y [i * dim + d]) * (q [d] - y [i * dim + d]);
        assert_float_equal (out [i], want, 1e-4f * (1 + want));
    }
    qv_sq8_query_prepare (sq, QV_METRIC_IP, q, buffer, &query);
    qv_sq8_query_scan (&query, codes, n, out);
    for (size_t i = 0; i < n; i++) {
        float want = 0, scale = 1;
        for (size_t d = 0; d < dim; d++) {
            want += q [d] * y [i * dim + d];
            scale += fabsf (q [d] * y [i * dim + d]);
        }
        assert_float_equal (out [i], want, 1e-4f * scale);
    }
    qv_sq8_destroy (&sq);
    assert_null (sq);
    qv_sq8_destroy (&sq);
    free (x);
    free (y);
    free (codes);
}

static void
test_bad_input (void **state)
{
    (void) state;
    assert_null (qv_sq8_new (0));
    qv_sq8_t *sq = qv_sq8_new (3);
    float x [6] = { 1, 2, 3, 4, NAN, 6 };
    assert_int_equal (qv_sq8_train (sq, x, 0), QV_EINVAL);
    assert_int_equal (qv_sq8_train (sq, x, 2), QV_EINVAL);
    x [4] = INFINITY;
    assert_int_equal (qv_sq8_train (sq, x, 2), QV_EINVAL);
    qv_sq8_destroy (&sq);

    float vmin [3] = { 0, 0, 0 }, step [3] = { 1, -1, 1 };
    assert_null (qv_sq8_new_from (3, vmin, step));
    step [1] = NAN;
    assert_null (qv_sq8_new_from (3, vmin, step));
    step [1] = 0.5f;
    sq = qv_sq8_new_from (3, vmin, step);
    assert_non_null (sq);
    assert_memory_equal (qv_sq8_step (sq), step, sizeof step);
    qv_sq8_destroy (&sq);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_kernels_match_serial),
        cmocka_unit_test (test_dispatch_follows_dist),
        cmocka_unit_test (test_encode_decode_bound),
        cmocka_unit_test (test_bad_input),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
