//  Distance kernels: every SIMD variant against the serial reference, and dispatch.
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "qv_dist.h"

static const size_t s_dims [] = { 1, 3, 17, 128, 768, 1536 };
#define S_NDIMS (sizeof s_dims / sizeof s_dims [0])

typedef struct {
    const char *isa;
    qv_dist_fn l2sq, ip;
    qv_dist_batch_fn l2sq_batch, ip_batch;
} variant_t;

static const variant_t s_variants [] = {
    { "serial", qv_dist_l2sq_f32_serial, qv_dist_ip_f32_serial,
      qv_dist_l2sq_f32_batch_serial, qv_dist_ip_f32_batch_serial },
    { "avx2", qv_dist_l2sq_f32_avx2, qv_dist_ip_f32_avx2,
      qv_dist_l2sq_f32_batch_avx2, qv_dist_ip_f32_batch_avx2 },
    { "avx512", qv_dist_l2sq_f32_avx512, qv_dist_ip_f32_avx512,
      qv_dist_l2sq_f32_batch_avx512, qv_dist_ip_f32_batch_avx512 },
};

//  Reference in double precision, so float kernels are judged against the truth.
static double
s_ref_l2 (const float *a, const float *b, size_t dim)
{
    double s = 0;
    for (size_t i = 0; i < dim; i++) {
        double d = (double) a [i] - b [i];
        s += d * d;
    }
    return s;
}

static double
s_ref_ip (const float *a, const float *b, size_t dim, double *abs_sum)
{
    double s = 0, t = 0;
    for (size_t i = 0; i < dim; i++) {
        s += (double) a [i] * b [i];
        t += fabs ((double) a [i] * b [i]);
    }
    *abs_sum = t;
    return s;
}

//  Relative tolerance against the magnitude of the summed terms (cancellation in IP
//  makes a plain relative error meaningless near zero).
static void
s_check_close (const char *what, const char *isa, size_t dim, double got, double want, double scale)
{
    double tol = 1e-5 * scale + 1e-30;
    if (fabs (got - want) > tol) {
        fprintf (stderr, "%s %s dim=%zu: got %.9g want %.9g (scale %.3g)\n",
                 what, isa, dim, got, want, scale);
        fail ();
    }
}

//  Fills v with one of the input kinds: 0 random in [-1,1), 1 zeros, 2 large values,
//  3 all negative, 4 mixed magnitudes.
static void
s_fill (float *v, size_t n, int kind, unsigned *seed)
{
    for (size_t i = 0; i < n; i++) {
        float r = (float) rand_r (seed) / (float) RAND_MAX * 2.0f - 1.0f;
        switch (kind) {
            case 0: v [i] = r; break;
            case 1: v [i] = 0; break;
            case 2: v [i] = r * 1e15f; break;
            case 3: v [i] = -fabsf (r) - 0.5f; break;
            default: v [i] = r * powf (10.0f, (float) (rand_r (seed) % 9) - 4); break;
        }
    }
}

static void
test_pairs_vs_reference (void **state)
{
    (void) state;
    unsigned seed = 42;
    float *a = malloc (1536 * sizeof (float));
    float *b = malloc (1536 * sizeof (float));
    for (size_t v = 0; v < sizeof s_variants / sizeof s_variants [0]; v++) {
        const variant_t *var = &s_variants [v];
        if (!qv_dist_cpu_has (var->isa)) {
            fprintf (stderr, "skip %s: CPU lacks it\n", var->isa);
            continue;
        }
        for (size_t d = 0; d < S_NDIMS; d++) {
            size_t dim = s_dims [d];
            for (int ka = 0; ka < 5; ka++)
            for (int kb = 0; kb < 5; kb++)
            for (int rep = 0; rep < 3; rep++) {
                s_fill (a, dim, ka, &seed);
                s_fill (b, dim, kb, &seed);
                double want = s_ref_l2 (a, b, dim);
                s_check_close ("l2sq", var->isa, dim, var->l2sq (a, b, dim), want, want);
                double scale;
                want = s_ref_ip (a, b, dim, &scale);
                s_check_close ("ip", var->isa, dim, var->ip (a, b, dim), want, scale);
            }
            //  Identical vectors: distance exactly zero
            s_fill (a, dim, 0, &seed);
            assert_true (var->l2sq (a, a, dim) == 0.0f);
        }
    }
    free (a);
    free (b);
}

//  Batch kernels on rows that start at unaligned addresses and counts that do not
//  divide by the unroll factor; each row must equal the pair kernel's answer.
static void
test_batch_vs_reference (void **state)
{
    (void) state;
    unsigned seed = 7;
    size_t counts [] = { 0, 1, 3, 4, 5, 17, 64 };
    for (size_t v = 0; v < sizeof s_variants / sizeof s_variants [0]; v++) {
        const variant_t *var = &s_variants [v];
        if (!qv_dist_cpu_has (var->isa))
            continue;
        for (size_t d = 0; d < S_NDIMS; d++) {
            size_t dim = s_dims [d];
            for (size_t c = 0; c < sizeof counts / sizeof counts [0]; c++) {
                size_t n = counts [c];
                //  +1 float offset: rows not 32/64-byte aligned
                float *buf = malloc ((n * dim + 1) * sizeof (float));
                float *base = buf + 1;
                float *q = malloc (dim * sizeof (float));
                float *out = malloc ((n + 1) * sizeof (float));
                s_fill (q, dim, (int) (c % 5), &seed);
                for (size_t i = 0; i < n; i++)
                    s_fill (base + i * dim, dim, (int) ((i + c) % 5), &seed);
                out [n] = 12345.0f;        //  sentinel: no write past n
                var->l2sq_batch (q, base, n, dim, out);
                for (size_t i = 0; i < n; i++) {
                    double want = s_ref_l2 (q, base + i * dim, dim);
                    s_check_close ("l2sq_batch", var->isa, dim, out [i], want, want);
                }
                assert_true (out [n] == 12345.0f);
                var->ip_batch (q, base, n, dim, out);
                for (size_t i = 0; i < n; i++) {
                    double scale;
                    double want = s_ref_ip (q, base + i * dim, dim, &scale);
                    s_check_close ("ip_batch", var->isa, dim, out [i], want, scale);
                }
                assert_true (out [n] == 12345.0f);
                free (buf);
                free (q);
                free (out);
            }
        }
    }
}

static void
test_dispatch_and_names (void **state)
{
    (void) state;
    const qv_dist_kernels_t *k = qv_dist_kernels ();
    assert_non_null (k);
    assert_ptr_equal (k, qv_dist_kernels ());
    assert_true (qv_dist_cpu_has (k->isa));
    const char *cap = getenv ("QV_SIMD");
    if (cap && strcmp (cap, "serial") == 0)
        assert_string_equal (k->isa, "serial");
    if (!cap && qv_dist_cpu_has ("avx2"))
        assert_string_not_equal (k->isa, "serial");
    fprintf (stderr, "chosen kernels: %s (avx2 %d, avx512 %d)\n", k->isa,
             qv_dist_cpu_has ("avx2"), qv_dist_cpu_has ("avx512"));

    assert_string_equal (qv_metric_name (QV_METRIC_L2), "L2");
    assert_string_equal (qv_metric_name (QV_METRIC_IP), "IP");
    assert_string_equal (qv_metric_name (QV_METRIC_COSINE), "COSINE");
    assert_int_equal (qv_metric_parse ("L2"), QV_METRIC_L2);
    assert_int_equal (qv_metric_parse ("ip"), QV_METRIC_IP);
    assert_int_equal (qv_metric_parse ("COSINE"), QV_METRIC_COSINE);
    assert_int_equal (qv_metric_parse ("L1"), -1);
    assert_int_equal (qv_metric_parse (""), -1);
    assert_int_equal (qv_metric_parse (NULL), -1);

    float v [3] = { 3, 4, 0 };
    assert_float_equal (qv_dist_norm (v, 3), 5.0f, 1e-6);
    float z [17] = { 0 };
    assert_true (qv_dist_norm (z, 17) == 0.0f);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_pairs_vs_reference),
        cmocka_unit_test (test_batch_vs_reference),
        cmocka_unit_test (test_dispatch_and_names),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
