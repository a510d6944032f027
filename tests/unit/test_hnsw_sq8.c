//  HNSW_SQ8: integer code kernels against their serial reference on every instruction
//  set this CPU has, code and query encoding, recall against exact answers (siftsmall
//  L2, COSINE on random directions at random lengths, filtered), re-ranked distances
//  exact, save/load round trip, corrupted objects refused, parameters refused, the
//  graph renumbered for locality against the same graph in row order.
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "qv_hnsw.h"
#include "qv_isq8.h"
#include "qv_vecs.h"
#include "qv_crc.h"
#include "qv_envelope.h"

#if defined(__SANITIZE_ADDRESS__)
#   define S_SANITIZED 1
#elif defined(__has_feature)
#   if __has_feature(address_sanitizer)
#       define S_SANITIZED 1
#   endif
#endif
#ifndef S_SANITIZED
#   define S_SANITIZED 0
#endif

static const char *
s_data_dir (void)
{
    const char *dir = getenv ("QV_DATA_DIR");
    return dir? dir: "../shared/data";
}

static float *
s_unit_vectors (uint32_t n, uint32_t dim, unsigned seed)
{
    float *v = malloc ((size_t) n * dim * sizeof (float));
    for (uint32_t i = 0; i < n; i++) {
        double norm = 0;
        for (uint32_t j = 0; j < dim; j++) {
            double g = 0;
            for (int t = 0; t < 4; t++)
                g += (double) rand_r (&seed) / RAND_MAX - 0.5;
            v [(size_t) i * dim + j] = (float) g;
            norm += g * g;
        }
        for (uint32_t j = 0; j < dim; j++)
            v [(size_t) i * dim + j] /= (float) sqrt (norm);
    }
    return v;
}

static int32_t *
s_truth (qv_metric_t metric, const float *base, uint32_t n, uint32_t dim, const float *queries,
         uint32_t nq, uint32_t k, const qv_search_params_t *params)
{
    qv_index_t *flat = qv_index_new ("FLAT", metric, dim, NULL);
    assert_int_equal (qv_index_build (flat, base, n), 0);
    int32_t *truth = malloc ((size_t) nq * k * sizeof (int32_t));
    uint32_t ids [100];
    float d [100];
    for (uint32_t q = 0; q < nq; q++) {
        int got = qv_index_search (flat, queries + (size_t) q * dim, k, params, ids, d);
        for (uint32_t i = 0; i < k; i++)
            truth [(size_t) q * k + i] = i < (uint32_t) got? (int32_t) ids [i]: -1;
    }
    qv_index_destroy (&flat);
    return truth;
}

//  recall@k; also checks each returned distance is the exact float distance.
static double
s_recall (qv_index_t *index, const float *base, const float *queries, uint32_t nq, uint32_t dim,
          const int32_t *truth, uint32_t truth_k, uint32_t k, uint32_t ef,
          const roaring_bitmap_t *allowed)
{
    uint32_t ids [100];
    float d [100];
    qv_search_params_t params = { .ef = ef, .allowed = allowed };
    double sum = 0;
    for (uint32_t q = 0; q < nq; q++) {
        const float *qv = queries + (size_t) q * dim;
        int got = qv_index_search (index, qv, k, &params, ids, d);
        assert_int_equal (got, (int) k);
        int hits = 0;
        for (int i = 0; i < got; i++) {
            const float *x = base + (size_t) ids [i] * dim;
            double exact = 0, xn = 0, qn = 0;
            for (uint32_t j = 0; j < dim; j++) {
                if (qv_index_metric (index) == QV_METRIC_L2)
                    exact += ((double) qv [j] - x [j]) * ((double) qv [j] - x [j]);
                else
                    exact += (double) qv [j] * x [j];
                xn += (double) x [j] * x [j];
                qn += (double) qv [j] * qv [j];
            }
            if (qv_index_metric (index) == QV_METRIC_COSINE)
                exact /= sqrt (xn * qn);
            assert_true (fabs (d [i] - exact) <= 1e-4 * (1 + fabs (exact)));
            if (allowed)
                assert_true (roaring_bitmap_contains (allowed, ids [i]));
            if (i)
                assert_true (qv_index_metric (index) == QV_METRIC_L2? d [i - 1] <= d [i]: d [i - 1] >= d [i]);
            for (uint32_t t = 0; t < k; t++)
                hits += truth [(size_t) q * truth_k + t] == (int32_t) ids [i];
        }
        sum += (double) hits / k;
    }
    return sum / nq;
}

static void
test_kernels (void **state)
{
    (void) state;
    unsigned seed = 3;
    uint32_t cdims [] = { 32, 64, 800, 4096 };
    int16_t *q = aligned_alloc (64, 4096 * 2);
    uint8_t *a = aligned_alloc (64, 4096), *b = aligned_alloc (64, 4096);
    int isas = 0;
    for (int c = 0; c < 4; c++)
        for (int round = 0; round < 20; round++) {
            uint32_t cdim = cdims [c];
            for (uint32_t i = 0; i < cdim; i++) {
                //  Round 0: the extremes, where sums are largest
                q [i] = round == 0? QV_ISQ8_QMAX: (int16_t) (rand_r (&seed) % 768 - 256);
                a [i] = round == 0? 0: (uint8_t) rand_r (&seed);
                b [i] = round == 0? 255: (uint8_t) rand_r (&seed);
            }
            int64_t wq = 0, wc = 0;
            for (uint32_t i = 0; i < cdim; i++) {
                wq += (int64_t) (q [i] - a [i]) * (q [i] - a [i]);
                wc += (int64_t) (a [i] - b [i]) * (a [i] - b [i]);
            }
            assert_true (wq == qv_isq8_l2_qc_serial (q, a, cdim));
            assert_true (wc == qv_isq8_l2_cc_serial (a, b, cdim));
            //  Four at once: b in one lane, a in the others, every lane
            int32_t wb = qv_isq8_l2_qc_serial (q, b, cdim);
            __builtin_cpu_init ();
            if (qv_dist_cpu_has ("avx512") && __builtin_cpu_supports ("avx512bw"))
                for (int lane = 0; lane < 4; lane++) {
                    const uint8_t *four [4] = { a, a, a, a };
                    int32_t got [4];
                    four [lane] = b;
                    qv_isq8_l2_qc4_avx512 (q, four, cdim, got);
                    for (int j = 0; j < 4; j++)
                        assert_int_equal (got [j], j == lane? wb: wq);
                }
            if (qv_dist_cpu_has ("avx2")) {
                assert_true (wq == qv_isq8_l2_qc_avx2 (q, a, cdim));
                assert_true (wc == qv_isq8_l2_cc_avx2 (a, b, cdim));
                isas |= 1;
            }
            __builtin_cpu_init ();
            if (qv_dist_cpu_has ("avx512") && __builtin_cpu_supports ("avx512bw")) {
                assert_true (wq == qv_isq8_l2_qc_avx512 (q, a, cdim));
                assert_true (wc == qv_isq8_l2_cc_avx512 (a, b, cdim));
                isas |= 2;
            }
        }
    //  The byte form (queries whose codes fit a byte): serial and VNNI against the
    //  int16 kernel; round 0 the extremes both ways
    int8_t *q8 = aligned_alloc (64, 4096);
    __builtin_cpu_init ();
    int vnni = qv_dist_cpu_has ("avx512") && __builtin_cpu_supports ("avx512bw")
            && __builtin_cpu_supports ("avx512vnni");
    for (int c = 0; c < 4; c++)
        for (int round = 0; round < 20; round++) {
            uint32_t cdim = cdims [c];
            for (uint32_t i = 0; i < cdim; i++) {
                q [i] = round == 0? (i % 2? 255: 0): (int16_t) (rand_r (&seed) % 256);
                a [i] = round == 0? (i % 2? 0: 255): (uint8_t) rand_r (&seed);
            }
            int32_t qq;
            assert_int_equal (qv_isq8_query_s8 (q, cdim, q8, &qq), 1);
            int32_t want = qv_isq8_l2_qc_serial (q, a, cdim);
            int32_t bias = qv_isq8_bias (a, cdim);
            assert_int_equal (qv_isq8_l2_qb_serial (q8, qq, a, bias, cdim), want);
            if (vnni) {
                assert_int_equal (qv_isq8_l2_qb_vnni (q8, qq, a, bias, cdim), want);
                isas |= 4;
            }
            //  The nibble form (AVX2) against the same
            int8_t *qn = aligned_alloc (64, 2 * 4096 + 64);
            qv_isq8_query_nib (q8, qq, cdim, qn);
            if (qv_dist_cpu_has ("avx2"))
                assert_int_equal (qv_isq8_l2_qn_avx2 (qn, a, bias, cdim), want);
            //  Four at once (the walk's batched form) against the one-at-a-time
            //  serial kernel, on four different code vectors in every lane order
            for (uint32_t i = 0; i < cdim; i++)
                b [i] = round == 0? (uint8_t) (i % 3? 255: 0): (uint8_t) rand_r (&seed);
            int32_t bias_b = qv_isq8_bias (b, cdim);
            int32_t want_b = qv_isq8_l2_qb_serial (q8, qq, b, bias_b, cdim);
            for (int lane = 0; lane < 4; lane++) {
                const uint8_t *four [4] = { a, a, a, a };
                int32_t biases [4] = { bias, bias, bias, bias }, got [4];
                four [lane] = b;
                biases [lane] = bias_b;
                qv_isq8_l2_qb4_vnni (q8, qq, four, biases, cdim, got);
                for (int j = 0; j < 4; j++)
                    assert_int_equal (got [j], j == lane? want_b: want);
                if (qv_dist_cpu_has ("avx2")) {
                    qv_isq8_l2_qn4_avx2 (qn, four, biases, cdim, got);
                    for (int j = 0; j < 4; j++)
                        assert_int_equal (got [j], j == lane? want_b: want);
                }
            }
            free (qn);
            //  A code outside a byte, either way, refuses the byte form
            q [cdim / 2] = round % 2? 256: -1;
            assert_int_equal (qv_isq8_query_s8 (q, cdim, q8, &qq), 0);
        }
    fprintf (stderr, "isq8 kernels checked: serial%s%s%s; HNSW_SQ8 runs %s\n",
             isas & 1? " avx2": "", isas & 2? " avx512": "", isas & 4? " avx512vnni": "",
             qv_isq8_isa ());
    free (q8);
    free (q);
    free (a);
    free (b);
}

//  The dot-product form of COSINE queries (qv_isq8_query_ip): values, padding and the
//  zero qq after them; then every kernel that walks it (serial byte form, VNNI, the
//  nibble form, one and four at once) against -2 q8.c computed here, with every bias 0,
//  on random values and on the extremes (q8 = +-127 against codes 255)
static void
test_query_ip (void **state)
{
    (void) state;
    float q [100];
    int8_t *out = aligned_alloc (64, 128 + 64);
    for (uint32_t i = 0; i < 100; i++)
        q [i] = (float) i - 49.5f;
    memset (out, 0x55, 128 + 64);
    qv_isq8_query_ip (q, 100, 128, out);
    assert_int_equal (out [0], -127);
    assert_int_equal (out [99], 127);
    assert_int_equal (out [50], (int) roundf (0.5f * 127 / 49.5f));
    for (uint32_t i = 100; i < 128 + 4; i++)
        assert_int_equal (out [i], 0);
    memset (q, 0, sizeof q);                    //  a zero query: all zeros
    qv_isq8_query_ip (q, 100, 128, out);
    for (uint32_t i = 0; i < 128 + 4; i++)
        assert_int_equal (out [i], 0);
    q [3] = NAN;                                //  not finite: clamped, no trap
    q [4] = 1;
    qv_isq8_query_ip (q, 100, 128, out);
    assert_int_equal (out [4], 127);
    free (out);

    unsigned seed = 17;
    uint32_t cdims [] = { 32, 64, 800, 4096 };
    int8_t *q8 = aligned_alloc (64, 4096 + 64), *qn = aligned_alloc (64, 2 * 4096 + 64);
    uint8_t *a = aligned_alloc (64, 4096), *b = aligned_alloc (64, 4096);
    __builtin_cpu_init ();
    int vnni = qv_dist_cpu_has ("avx512") && __builtin_cpu_supports ("avx512bw")
            && __builtin_cpu_supports ("avx512vnni");
    int avx2 = qv_dist_cpu_has ("avx2");
    for (int c = 0; c < 4; c++)
        for (int round = 0; round < 20; round++) {
            uint32_t cdim = cdims [c];
            float *fq = malloc (cdim * sizeof (float));
            for (uint32_t i = 0; i < cdim; i++) {
                fq [i] = round == 0? (i % 2? 1.0f: -1.0f): (float) rand_r (&seed) / RAND_MAX - 0.5f;
                a [i] = round == 0? 255: (uint8_t) rand_r (&seed);
                b [i] = round == 0? (uint8_t) (i % 3? 255: 0): (uint8_t) rand_r (&seed);
            }
            qv_isq8_query_ip (fq, cdim, cdim, q8);
            int32_t da = 0, db = 0;
            for (uint32_t i = 0; i < cdim; i++) {
                assert_true (q8 [i] >= -127 && q8 [i] <= 127);
                da += q8 [i] * a [i];
                db += q8 [i] * b [i];
            }
            int32_t want = -2 * da, want_b = -2 * db;
            assert_int_equal (qv_isq8_l2_qb_serial (q8, 0, a, 0, cdim), want);
            if (vnni)
                assert_int_equal (qv_isq8_l2_qb_vnni (q8, 0, a, 0, cdim), want);
            qv_isq8_query_nib (q8, 0, cdim, qn);
            if (avx2)
                assert_int_equal (qv_isq8_l2_qn_avx2 (qn, a, 0, cdim), want);
            for (int lane = 0; lane < 4; lane++) {
                const uint8_t *four [4] = { a, a, a, a };
                int32_t zero [4] = { 0, 0, 0, 0 }, got [4];
                four [lane] = b;
                if (vnni) {
                    qv_isq8_l2_qb4_vnni (q8, 0, four, zero, cdim, got);
                    for (int j = 0; j < 4; j++)
                        assert_int_equal (got [j], j == lane? want_b: want);
                }
                if (avx2) {
                    qv_isq8_l2_qn4_avx2 (qn, four, zero, cdim, got);
                    for (int j = 0; j < 4; j++)
                        assert_int_equal (got [j], j == lane? want_b: want);
                }
            }
            free (fq);
        }
    fprintf (stderr, "isq8 dot-product form checked: serial%s%s\n", avx2? " avx2": "",
             vnni? " avx512vnni": "");
    free (q8);
    free (qn);
    free (a);
    free (b);
}

static void
test_encoding (void **state)
{
    (void) state;
    float x [2 * 5] = { -1, 0, 10, 5, 5,     1, 0.5f, 20, 5, 6 };
    float vmin [5], step;
    assert_int_equal (qv_isq8_train (x, 2, 5, vmin, &step), 0);
    assert_true (vmin [0] == -1 && vmin [2] == 10 && vmin [3] == 5);
    assert_true (fabsf (step - 10.0f / 255) < 1e-6f);       //  the widest range, dim 2
    uint8_t codes [2 * 32];
    qv_isq8_encode (vmin, step, x, 2, 5, codes);
    assert_int_equal (codes [0], 0);
    assert_int_equal (codes [2], 0);
    assert_int_equal (codes [32 + 2], 255);
    assert_int_equal (codes [32 + 0], 51);                  //  2 / (10 / 255)
    for (int i = 5; i < 32; i++)
        assert_int_equal (codes [i], 0);                    //  padding
    int16_t qc [32];
    float far [5] = { -1000, 1000, 10, 5, 5 };
    qv_isq8_query (vmin, step, far, 5, qc);
    assert_int_equal (qc [0], QV_ISQ8_QMIN);
    assert_int_equal (qc [1], QV_ISQ8_QMAX);
    float bad [5] = { 0, NAN, 0, 0, 0 };
    assert_int_equal (qv_isq8_train (bad, 1, 5, vmin, &step), QV_EINVAL);
    float flat [3] = { 2, 2, 2 };
    assert_int_equal (qv_isq8_train (flat, 1, 3, vmin, &step), 0);
    assert_true (step == 1.0f);
    //  The widest finite range does not overflow the step, the narrowest does not make
    //  it denormal: 1 / step stays finite, and every code and query code is defined
    //  (UBSan checks the conversions)
    float wide [2 * 2] = { -3e38f, 1, 3e38f, 1 };
    assert_int_equal (qv_isq8_train (wide, 2, 2, vmin, &step), 0);
    assert_true (isfinite (step) && isfinite (1.0f / step));
    qv_isq8_encode (vmin, step, wide, 2, 2, codes);
    assert_int_equal (codes [0], 0);
    assert_int_equal (codes [32], 255);
    float q [2] = { 3e38f, 0 };
    qv_isq8_query (vmin, step, q, 2, qc);
    assert_int_equal (qc [0], 255);
    float narrow [2] = { 1e-44f, 0 };
    assert_int_equal (qv_isq8_train (narrow, 2, 1, vmin, &step), 0);
    assert_true (step > 0 && isfinite (1.0f / step));
    qv_isq8_query (vmin, step, narrow, 1, qc);
    float nan_query [2] = { NAN, 0 };
    qv_isq8_query (vmin, step, nan_query, 1, qc);
    assert_int_equal (qc [0], QV_ISQ8_QMIN);
    //  The inline rounding is libm's round () clamped: random values, exact halves
    //  (both signs) and the clamp edges, against the reference written with round ()
    float rmin [1] = { 0 };
    unsigned seed = 7;
    for (int i = 0; i < 200000; i++) {
        float v;
        if (i < 4000)
            v = (float) (i - 2000) * 0.5f - 0.5f * (i % 3 == 0);    //  halves
        else
        if (i < 4100)
            v = (float) (QV_ISQ8_QMIN - 1) + (float) (i - 4000) * 0.01f;
        else
        if (i < 4200)
            v = (float) (QV_ISQ8_QMAX - 1) + (float) (i - 4100) * 0.01f;
        else
            v = ((float) rand_r (&seed) / RAND_MAX) * 1000.0f - 500.0f;
        float st = i % 2? 1.0f: 0.37f;
        int16_t got;
        qv_isq8_query (rmin, st, &v, 1, qc);
        got = qc [0];
        qv_isq8_query_serial (rmin, st, &v, 1, qc);
        assert_int_equal (qc [0], got);
        double r = round ((double) v * (1.0f / st));
        int16_t want = r >= QV_ISQ8_QMIN? (r <= QV_ISQ8_QMAX? (int16_t) r: QV_ISQ8_QMAX): QV_ISQ8_QMIN;
        if (got != want)
            fail_msg ("query code of %.9g (step %g): %d, round () gives %d", v, st, got, want);
    }
    float tiny = 0.49999997f;                       //  just under a half
    qv_isq8_query (rmin, 1.0f, &tiny, 1, qc);
    assert_int_equal (qc [0], 0);
    //  Whole vectors of every tail length, with NaN, infinities and huge values:
    //  the start-up choice (AVX-512 here if the CPU has it) against the serial one
    float *vq = malloc (800 * sizeof (float)), *vm = malloc (800 * sizeof (float));
    int16_t *ca = aligned_alloc (64, 800 * 2), *cb = aligned_alloc (64, 800 * 2);
    uint32_t dims [] = { 1, 2, 3, 7, 8, 9, 15, 16, 17, 31, 33, 100, 128, 784 };
    for (int t = 0; t < 14; t++)
        for (int r = 0; r < 50; r++) {
            uint32_t dm = dims [t];
            for (uint32_t i = 0; i < dm; i++) {
                vm [i] = ((float) rand_r (&seed) / RAND_MAX) * 20.0f - 10.0f;
                int pick = rand_r (&seed) % 40;
                vq [i] = pick == 0? NAN: pick == 1? INFINITY: pick == 2? -INFINITY
                       : pick == 3? 3e38f: pick == 4? (float) (rand_r (&seed) % 600) * 0.5f * 0.37f
                       : ((float) rand_r (&seed) / RAND_MAX) * 250.0f - 60.0f;
            }
            memset (ca, 0x55, 800 * 2);
            memset (cb, 0x55, 800 * 2);
            qv_isq8_query (vm, 0.37f, vq, dm, ca);
            qv_isq8_query_serial (vm, 0.37f, vq, dm, cb);
            assert_memory_equal (ca, cb, qv_isq8_cdim (dm) * 2);
        }
    free (vq);
    free (vm);
    free (ca);
    free (cb);
}

static void
test_siftsmall (void **state)
{
    (void) state;
    char path [512];
    uint32_t dim, n, qdim, nq;
    snprintf (path, sizeof path, "%s/siftsmall/base.fvecs", s_data_dir ());
    float *base = qv_vecs_read (path, S_SANITIZED? 2000: 0, &dim, &n);
    if (!base)
        fail_msg ("siftsmall is missing (%s): set QV_DATA_DIR to the shared data folder", path);
    snprintf (path, sizeof path, "%s/siftsmall/query.fvecs", s_data_dir ());
    float *queries = qv_vecs_read (path, 0, &qdim, &nq);
    assert_non_null (queries);
    int32_t *truth = s_truth (QV_METRIC_L2, base, n, dim, queries, nq, 10, NULL);
    qv_index_params_t params = { .M = 16, .ef_construction = 200, .threads = 2 };
    qv_index_t *index = qv_index_new ("HNSW_SQ8", QV_METRIC_L2, dim, &params);
    assert_non_null (index);
    assert_int_equal (qv_index_build (index, base, n), 0);
    assert_string_equal (qv_index_type_name (index), "HNSW_SQ8");
    double r64 = s_recall (index, base, queries, nq, dim, truth, 10, 10, 64, NULL);
    double r256 = s_recall (index, base, queries, nq, dim, truth, 10, 10, 256, NULL);
    fprintf (stderr, "siftsmall %u rows HNSW_SQ8 recall@10 ef=64 %.4f ef=256 %.4f\n", n, r64, r256);
    assert_true (r64 >= 0.98);
    assert_true (r256 >= 0.995);
    //  Vectors stay outside the graph's memory: float bytes reported apart
    assert_int_equal (qv_index_vector_bytes (index), (size_t) n * dim * 4);
    qv_index_destroy (&index);
    free (truth);
    free (base);
    free (queries);
}

//  COSINE over random lengths: the walk's L2 codes over unit vectors rank as cosine.
static void
test_cosine_and_filter (void **state)
{
    (void) state;
    uint32_t n = S_SANITIZED? 1500: 5000, dim = 40, nq = 60, k = 10;
    float *base = s_unit_vectors (n, dim, 5);
    float *queries = s_unit_vectors (nq, dim, 6);
    unsigned seed = 8;
    float *scaled = malloc ((size_t) n * dim * sizeof (float));
    for (uint32_t i = 0; i < n; i++) {
        float s = 0.01f + 100.0f * (float) rand_r (&seed) / RAND_MAX;
        for (uint32_t j = 0; j < dim; j++)
            scaled [(size_t) i * dim + j] = base [(size_t) i * dim + j] * s;
    }
    int32_t *truth = s_truth (QV_METRIC_COSINE, scaled, n, dim, queries, nq, k, NULL);
    qv_index_t *cos = qv_index_new ("HNSW_SQ8", QV_METRIC_COSINE, dim, NULL);
    assert_int_equal (qv_index_build (cos, scaled, n), 0);
    double r = s_recall (cos, scaled, queries, nq, dim, truth, k, k, 128, NULL);
    fprintf (stderr, "HNSW_SQ8 COSINE %u x %u: recall@10 ef=128 %.4f\n", n, dim, r);
    assert_true (r >= 0.95);

    //  Filtered: half the rows (a walk), against the exact filtered answer
    roaring_bitmap_t *allowed = roaring_bitmap_create ();
    for (uint32_t i = 0; i < n; i += 2)
        roaring_bitmap_add (allowed, i);
    qv_search_params_t fp = { .allowed = allowed };
    assert_int_equal (qv_hnsw_set_filter_exact_factor (cos, 0), 0);    //  always walk
    assert_false (qv_index_scans_exact (cos, k, &fp));
    int32_t *ftruth = s_truth (QV_METRIC_COSINE, scaled, n, dim, queries, nq, k, &fp);
    double fr = s_recall (cos, scaled, queries, nq, dim, ftruth, k, k, 128, allowed);
    fprintf (stderr, "HNSW_SQ8 COSINE filtered 50%%: recall@10 ef=128 %.4f\n", fr);
    assert_true (fr >= 0.95);
    //  Few rows: the exact scan of the allowed rows, on the floats
    assert_int_equal (qv_hnsw_set_filter_exact_factor (cos, QV_HNSW_FILTER_EXACT_FACTOR), 0);
    roaring_bitmap_t *few = roaring_bitmap_create ();
    for (uint32_t i = 7; i < n; i += 97)
        roaring_bitmap_add (few, i);
    qv_search_params_t fewp = { .allowed = few };
    assert_true (qv_index_scans_exact (cos, k, &fewp));
    int32_t *wtruth = s_truth (QV_METRIC_COSINE, scaled, n, dim, queries, nq, k, &fewp);
    assert_true (s_recall (cos, scaled, queries, nq, dim, wtruth, k, k, 64, few) == 1.0);

    //  Adds after the build: values outside the trained ranges saturate, rows are found
    float *more = s_unit_vectors (300, dim, 9);
    for (size_t i = 0; i < 300 * dim; i++)
        more [i] *= 3;
    assert_int_equal (qv_index_add (cos, more, 300), 0);
    uint32_t ids [3];
    float d [3];
    assert_int_equal (qv_index_search (cos, more + 17 * dim, 3, NULL, ids, d), 3);
    assert_int_equal (ids [0], n + 17);
    assert_true (fabsf (d [0] - 1.0f) < 1e-4f);

    roaring_bitmap_free (allowed);
    roaring_bitmap_free (few);
    free (more);
    free (ftruth);
    free (wtruth);
    free (truth);
    qv_index_destroy (&cos);
    free (scaled);
    free (base);
    free (queries);
}

//  The byte-form walk (AVX512_VNNI) returns what the int16 walk returns, on the same
//  graph: the index is saved and loaded with QV_SIMD=avx512bw, which keeps the int16
//  walk. Queries inside the code ranges take the byte form, queries beyond them (x 3)
//  the int16 walk in both.
static void
test_byte_form_walk (void **state)
{
    (void) state;
    if (strcmp (qv_isq8_isa (), "avx512vnni") != 0) {
        fprintf (stderr, "no AVX512_VNNI here (HNSW_SQ8 runs %s): byte-form walk not tested\n",
                 qv_isq8_isa ());
        return;
    }
    uint32_t n = 2000, dim = 100, k = 10;
    float *base = s_unit_vectors (n, dim, 21);
    qv_index_params_t params = { .M = 8, .ef_construction = 64 };
    qv_index_t *index = qv_index_new ("HNSW_SQ8", QV_METRIC_L2, dim, &params);
    assert_int_equal (qv_index_build (index, base, n), 0);
    zchunk_t *chunk = NULL;
    assert_int_equal (qv_index_serialize (index, &chunk), 0);
    qv_index_t *ref = NULL;
    setenv ("QV_SIMD", "avx512bw", 1);
    assert_string_equal (qv_isq8_isa (), "avx512");
    assert_int_equal (qv_index_load (zchunk_data (chunk), zchunk_size (chunk), &ref), 0);
    unsetenv ("QV_SIMD");
    float *far = malloc (dim * sizeof (float));
    uint32_t walked = 0;
    for (uint32_t q = 0; q < 200; q++) {
        const float *qv = base + (size_t) (q * 7 % n) * dim;
        if (q >= 100) {
            for (uint32_t j = 0; j < dim; j++)
                far [j] = 3 * qv [j];
            qv = far;
        }
        uint32_t ia [10], ib [10];
        float da [10], db [10];
        qv_search_params_t sp = { .ef = 24 };
        assert_int_equal (qv_index_search (index, qv, k, &sp, ia, da), (int) k);
        assert_int_equal (qv_index_search (ref, qv, k, &sp, ib, db), (int) k);
        assert_memory_equal (ia, ib, sizeof ia);
        assert_memory_equal (da, db, sizeof da);
        walked += q < 100 && ia [0] == q * 7 % n;
    }
    assert_true (walked >= 95);                 //  a row finds itself
    free (far);
    qv_index_destroy (&ref);
    qv_index_destroy (&index);
    zchunk_destroy (&chunk);
    free (base);
}

static void
test_save_load_and_corruption (void **state)
{
    (void) state;
    uint32_t n = 1100, dim = 24, nq = 40, k = 10;
    float *base = s_unit_vectors (n, dim, 11);
    float *queries = s_unit_vectors (nq, dim, 12);
    qv_index_params_t params = { .M = 8, .ef_construction = 64 };
    qv_index_t *index = qv_index_new ("HNSW_SQ8", QV_METRIC_L2, dim, &params);
    assert_int_equal (qv_index_build (index, base, n), 0);
    zchunk_t *chunk = NULL;
    assert_int_equal (qv_index_serialize (index, &chunk), 0);
    size_t size = zchunk_size (chunk);
    qv_index_t *loaded = NULL;
    assert_int_equal (qv_index_load (zchunk_data (chunk), size, &loaded), 0);
    assert_int_equal (qv_index_type (loaded), QV_INDEX_HNSW_SQ8);
    assert_int_equal (qv_index_count (loaded), n);
    for (uint32_t q = 0; q < nq; q++) {
        uint32_t ia [10], ib [10];
        float da [10], db [10];
        qv_search_params_t sp = { .ef = 32 };
        assert_int_equal (qv_index_search (index, queries + q * dim, k, &sp, ia, da), (int) k);
        assert_int_equal (qv_index_search (loaded, queries + q * dim, k, &sp, ib, db), (int) k);
        assert_memory_equal (ia, ib, sizeof ia);
        assert_memory_equal (da, db, sizeof da);
    }
    zchunk_t *again = NULL;
    assert_int_equal (qv_index_serialize (loaded, &again), 0);
    assert_int_equal (zchunk_size (again), size);
    assert_memory_equal (zchunk_data (again), zchunk_data (chunk), size);
    zchunk_destroy (&again);
    qv_index_destroy (&loaded);

    uint8_t *copy = malloc (size);
    for (size_t at = 0; at < size; at += (at < 300? 1: 89)) {
        memcpy (copy, zchunk_data (chunk), size);
        copy [at] ^= 0x01;
        assert_int_equal (qv_index_load (copy, size, &loaded), QV_ECORRUPT);
        assert_null (loaded);
    }
    for (size_t cut = 0; cut < size; cut += 997)
        assert_int_equal (qv_index_load (zchunk_data (chunk), cut, &loaded), QV_ECORRUPT);

    //  Valid checksum around a broken prefix: zero step, wrong code width, a range
    //  that is not finite, a newer payload version (refused as not readable)
    size_t payload = 32 + 56;         //  envelope header, index fields
    float zero = 0, inf = INFINITY, denormal = 3.9e-42f;
    uint32_t wrong = 64, newer = 3;
    struct { size_t offset; const void *value; int rc; } cases [] = {
        { payload + 8, &zero, QV_ECORRUPT },
        //  fuzz_index_hnsw: a denormal step loaded, and 1 / step = inf made the query
        //  codes NaN (0 x inf), converted to int16 (UBSan)
        { payload + 8, &denormal, QV_ECORRUPT },
        { payload + 4, &wrong, QV_ECORRUPT },
        { payload + 12 + 4 * 3, &inf, QV_ECORRUPT },
        { payload, &newer, QV_EINVAL },
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases [0]; c++) {
        memcpy (copy, zchunk_data (chunk), size);
        memcpy (copy + cases [c].offset, cases [c].value, 4);
        qv_envelope_seal (copy, size, QV_ENVELOPE_VINDEX, 2);
        int rc = qv_index_load (copy, size, &loaded);
        fprintf (stderr, "broken HNSW_SQ8 case %zu: %s (%s)\n", c, qv_rc_name (rc), qv_err_msg ());
        assert_int_equal (rc, cases [c].rc);
        assert_null (loaded);
    }
    free (copy);
    zchunk_destroy (&chunk);

    //  Empty index round trip
    qv_index_t *empty = qv_index_new ("HNSW_SQ8", QV_METRIC_COSINE, dim, NULL);
    assert_int_equal (qv_index_serialize (empty, &chunk), 0);
    assert_int_equal (qv_index_load (zchunk_data (chunk), zchunk_size (chunk), &loaded), 0);
    uint32_t ids [4];
    float d [4];
    assert_int_equal (qv_index_search (loaded, queries, 4, NULL, ids, d), 0);
    qv_index_destroy (&loaded);
    qv_index_destroy (&empty);
    zchunk_destroy (&chunk);
    qv_index_destroy (&index);
    free (base);
    free (queries);
}

//  One query through both indexes: the same rows at the same distances.
static void
s_same_results (qv_index_t *a, qv_index_t *b, const float *q, uint32_t k,
                const qv_search_params_t *sp)
{
    uint32_t ia [10], ib [10];
    float da [10], db [10];
    int ga = qv_index_search (a, q, k, sp, ia, da);
    assert_int_equal (ga, (int) k);
    assert_int_equal (qv_index_search (b, q, k, sp, ib, db), ga);
    assert_memory_equal (ia, ib, k * sizeof ia [0]);
    assert_memory_equal (da, db, k * sizeof da [0]);
}

//  The payload version of a serialized HNSW_SQ8 object (after the envelope header and
//  the index fields): 2 for a renumbered graph, 1 for node ids that are row ids.
static uint32_t
s_sq8_version (zchunk_t *chunk)
{
    uint32_t version;
    memcpy (&version, zchunk_data (chunk) + 32 + 56, 4);
    return version;
}

//  The graph renumbered for locality after a build (qv_hnsw_order.c) returns what the
//  same graph in row order returns (QV_HNSW_REORDER=0, one build thread each so the
//  graphs are the same), rows and distances, plain and filtered, and meets exact
//  truth; it persists its order (payload version 2) and loads without renumbering;
//  a row-order object (version 1, what older builds wrote) still loads; adds after the
//  build are found under their row ids; borrowed floats are read by row.
static void
test_reorder (void **state)
{
    (void) state;
    uint32_t n = S_SANITIZED? 1500: 4000, dim = 32, nq = 80, k = 10;
    float *base = s_unit_vectors (n, dim, 31);
    float *queries = s_unit_vectors (nq, dim, 32);
    qv_index_params_t params = { .M = 8, .ef_construction = 64, .threads = 1 };
    setenv ("QV_HNSW_REORDER", "0", 1);
    qv_index_t *rows = qv_index_new ("HNSW_SQ8", QV_METRIC_L2, dim, &params);
    assert_int_equal (qv_index_build (rows, base, n), 0);
    unsetenv ("QV_HNSW_REORDER");
    qv_index_t *index = qv_index_new ("HNSW_SQ8", QV_METRIC_L2, dim, &params);
    assert_int_equal (qv_index_build (index, base, n), 0);
    //  The row ids cost 4 bytes a node
    assert_int_equal (qv_index_memory_bytes (index) - qv_index_memory_bytes (rows),
                      (size_t) n * sizeof (uint32_t));
    zchunk_t *chunk = NULL, *old = NULL;
    assert_int_equal (qv_index_serialize (index, &chunk), 0);
    assert_int_equal (qv_index_serialize (rows, &old), 0);
    assert_int_equal (s_sq8_version (chunk), 2);
    assert_int_equal (s_sq8_version (old), 1);
    assert_int_equal (zchunk_size (chunk), zchunk_size (old) + (size_t) n * sizeof (uint32_t));

    roaring_bitmap_t *allowed = roaring_bitmap_create ();
    for (uint32_t i = 0; i < n; i += 3)
        roaring_bitmap_add (allowed, i);
    assert_int_equal (qv_hnsw_set_filter_exact_factor (index, 0), 0);  //  always walk
    assert_int_equal (qv_hnsw_set_filter_exact_factor (rows, 0), 0);
    qv_search_params_t sp = { .ef = 24 }, fp = { .ef = 24, .allowed = allowed };
    for (uint32_t q = 0; q < nq; q++) {
        s_same_results (rows, index, queries + (size_t) q * dim, k, &sp);
        s_same_results (rows, index, queries + (size_t) q * dim, k, &fp);
        s_same_results (rows, index, base + (size_t) (q * 37 % n) * dim, k, &sp);
    }
    int32_t *truth = s_truth (QV_METRIC_L2, base, n, dim, queries, nq, k, NULL);
    int32_t *ftruth = s_truth (QV_METRIC_L2, base, n, dim, queries, nq, k, &fp);
    double r = s_recall (index, base, queries, nq, dim, truth, k, k, 256, NULL);
    double fr = s_recall (index, base, queries, nq, dim, ftruth, k, k, 256, allowed);
    fprintf (stderr, "renumbered HNSW_SQ8 %u x %u: recall@10 ef=256 %.4f, 1/3 allowed %.4f\n",
             n, dim, r, fr);
    assert_true (r >= 0.95);
    assert_true (fr >= 0.95);

    //  Saved and loaded: the order kept (the same bytes again), the same results
    qv_index_t *loaded = NULL, *loaded_old = NULL, *borrowed = NULL;
    assert_int_equal (qv_index_load (zchunk_data (chunk), zchunk_size (chunk), &loaded), 0);
    assert_int_equal (qv_index_load (zchunk_data (old), zchunk_size (old), &loaded_old), 0);
    assert_int_equal (qv_index_load_borrowed (zchunk_data (chunk), zchunk_size (chunk), base, n,
                                              dim, &borrowed), 0);
    assert_true (qv_index_borrows (borrowed));
    zchunk_t *again = NULL;
    assert_int_equal (qv_index_serialize (loaded, &again), 0);
    assert_int_equal (zchunk_size (again), zchunk_size (chunk));
    assert_memory_equal (zchunk_data (again), zchunk_data (chunk), zchunk_size (chunk));
    zchunk_destroy (&again);
    assert_int_equal (qv_hnsw_set_filter_exact_factor (loaded, 0), 0);
    assert_int_equal (qv_hnsw_set_filter_exact_factor (loaded_old, 0), 0);
    assert_int_equal (qv_hnsw_set_filter_exact_factor (borrowed, 0), 0);
    for (uint32_t q = 0; q < nq; q++) {
        s_same_results (index, loaded, queries + (size_t) q * dim, k, &sp);
        s_same_results (index, loaded, queries + (size_t) q * dim, k, &fp);
        s_same_results (index, loaded_old, queries + (size_t) q * dim, k, &fp);
        s_same_results (index, borrowed, queries + (size_t) q * dim, k, &fp);
    }
    //  A renumbered object whose row ids are not a permutation is refused
    uint8_t *copy = malloc (zchunk_size (chunk));
    memcpy (copy, zchunk_data (chunk), zchunk_size (chunk));
    size_t at = 32 + 56 + 12 + (size_t) dim * 4 + (size_t) n * dim * 4;   //  row ids
    memcpy (copy + at, copy + at + 4, 4);
    qv_envelope_seal (copy, zchunk_size (chunk), QV_ENVELOPE_VINDEX, 2);
    qv_index_t *bad = NULL;
    assert_int_equal (qv_index_load (copy, zchunk_size (chunk), &bad), QV_ECORRUPT);
    assert_null (bad);
    free (copy);

    //  Adds after the build (and after a load): found under their row ids
    float *more = s_unit_vectors (300, dim, 33);
    assert_int_equal (qv_index_add (index, more, 300), 0);
    assert_int_equal (qv_index_add (loaded, more, 300), 0);
    assert_int_equal (qv_index_add (rows, more, 300), 0);
    for (uint32_t i = 0; i < 300; i += 7) {
        uint32_t id [1];
        float d [1];
        assert_int_equal (qv_index_search (index, more + (size_t) i * dim, 1, NULL, id, d), 1);
        assert_int_equal (id [0], n + i);
        assert_int_equal (qv_index_search (loaded, more + (size_t) i * dim, 1, NULL, id, d), 1);
        assert_int_equal (id [0], n + i);
    }
    for (uint32_t q = 0; q < nq; q++)
        s_same_results (rows, index, queries + (size_t) q * dim, k, &sp);

    free (more);
    free (truth);
    free (ftruth);
    roaring_bitmap_free (allowed);
    qv_index_destroy (&borrowed);
    qv_index_destroy (&loaded);
    qv_index_destroy (&loaded_old);
    qv_index_destroy (&index);
    qv_index_destroy (&rows);
    zchunk_destroy (&chunk);
    zchunk_destroy (&old);
    free (base);
    free (queries);
}

static void
test_bad_params (void **state)
{
    (void) state;
    assert_null (qv_index_new ("HNSW_SQ8", QV_METRIC_IP, 16, NULL));
    assert_non_null (strstr (qv_err_msg (), "IP"));
    assert_null (qv_index_new ("HNSW_SQ8", QV_METRIC_L2, QV_ISQ8_MAX_DIM + 1, NULL));
    qv_index_t *index = qv_index_new ("hnsw_sq8", QV_METRIC_L2, 8, NULL);
    assert_non_null (index);
    float nan_row [8] = { 0, 0, 0, NAN, 0, 0, 0, 0 };
    assert_int_equal (qv_index_build (index, nan_row, 1), QV_EINVAL);
    qv_index_destroy (&index);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_kernels),
        cmocka_unit_test (test_query_ip),
        cmocka_unit_test (test_encoding),
        cmocka_unit_test (test_siftsmall),
        cmocka_unit_test (test_cosine_and_filter),
        cmocka_unit_test (test_byte_form_walk),
        cmocka_unit_test (test_save_load_and_corruption),
        cmocka_unit_test (test_reorder),
        cmocka_unit_test (test_bad_params),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
