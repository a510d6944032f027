//  Integer SQ8 codes for graph walks: training, encoding, query preparation, the
//  exported kernels (serial reference, AVX2, AVX-512BW) and the start-up choice.
#include "qv_isq8.h"
#include "qv_dist.h"
#include "qv_rc.h"

#include <float.h>
#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

int
qv_isq8_train (const float *x, size_t n, uint32_t dim, float *vmin, float *step)
{
    if (n == 0)
        return qv_err (QV_EINVAL, "SQ8 codes need at least one vector to train on");
    float *vmax = malloc ((size_t) dim * sizeof (float));
    if (!vmax)
        return qv_err (QV_ENOMEM, "out of memory training SQ8 codes");
    for (uint32_t d = 0; d < dim; d++) {
        vmin [d] = INFINITY;
        vmax [d] = -INFINITY;
    }
    //  Row by row, so the vectors are read once in order
    for (size_t i = 0; i < n; i++) {
        const float *v = x + i * dim;
        for (uint32_t d = 0; d < dim; d++) {
            if (!isfinite (v [d])) {
                free (vmax);
                return qv_err (QV_EINVAL, "vector %zu has a value that is not finite at dimension %u", i, d);
            }
            vmin [d] = v [d] < vmin [d]? v [d]: vmin [d];
            vmax [d] = v [d] > vmax [d]? v [d]: vmax [d];
        }
    }
    //  In double: the range of finite floats can overflow a float (-3e38 .. 3e38)
    double range = 0;
    for (uint32_t d = 0; d < dim; d++)
        range = (double) vmax [d] - vmin [d] > range? (double) vmax [d] - vmin [d]: range;
    free (vmax);
    //  A step of at least FLT_MIN, so 1 / step is finite (a denormal step gave an
    //  infinite inverse, and 0 x inf is NaN)
    *step = range > 0? (float) (range / 255.0): 1.0f;
    if (*step < FLT_MIN)
        *step = FLT_MIN;
    return 0;
}

void
qv_isq8_encode (const float *vmin, float step, const float *x, size_t n, uint32_t dim,
                uint8_t *codes)
{
    uint32_t cdim = qv_isq8_cdim (dim);
    float inv = 1.0f / step;
    for (size_t i = 0; i < n; i++) {
        uint8_t *c = codes + i * cdim;
        for (uint32_t d = 0; d < dim; d++) {
            double v = round (((double) x [i * dim + d] - vmin [d]) * inv);
            c [d] = v >= 0? (v <= 255? (uint8_t) v: 255): 0;        //  NaN: 0
        }
        memset (c + dim, 0, cdim - dim);
    }
}

void
qv_isq8_query_serial (const float *vmin, float step, const float *q, uint32_t dim, int16_t *out)
{
    float inv = 1.0f / step;
    for (uint32_t d = 0; d < dim; d++) {
        //  In double, as the range may span all floats; the clamp is written so that
        //  NaN clamps too (to the low end) instead of being converted. Rounded half
        //  away from zero as round () does, but inline: inside the clamp range the
        //  value is small, so truncating |v| + 0.5 is exact, and libm's round () per
        //  dimension was a tenth of a search on siftsmall at ef 16 (callgrind).
        //  Inside the clamp v - trunc (v) is exact, so this is round () exactly.
        double v = ((double) q [d] - vmin [d]) * inv;
        if (!(v > QV_ISQ8_QMIN - 0.5))
            out [d] = QV_ISQ8_QMIN;
        else
        if (v >= QV_ISQ8_QMAX + 0.5)
            out [d] = QV_ISQ8_QMAX;
        else {
            int32_t t = (int32_t) v;
            double frac = v - t;
            t += frac >= 0.5? 1: frac <= -0.5? -1: 0;
            out [d] = (int16_t) t;
        }
    }
    for (uint32_t d = dim; d < qv_isq8_cdim (dim); d++)
        out [d] = 0;
}

#if defined(__x86_64__) || defined(__i386__)
//  qv_isq8_query_serial 8 dimensions at a time, in double as it is: clamp to one
//  beyond the range (NaN to the low end: vmaxpd returns its second operand), round
//  half away from zero as trunc + the sign of a fraction of at least one half, clamp.
__attribute__ ((target ("avx512f,avx512bw,avx512vl"))) static void
s_query_avx512 (const float *vmin, float step, const float *q, uint32_t dim, int16_t *out)
{
    const __m512d inv = _mm512_set1_pd ((double) (1.0f / step));
    const __m512d lo = _mm512_set1_pd (QV_ISQ8_QMIN - 1), hi = _mm512_set1_pd (QV_ISQ8_QMAX + 1);
    const __m512d lo2 = _mm512_set1_pd (QV_ISQ8_QMIN), hi2 = _mm512_set1_pd (QV_ISQ8_QMAX);
    const __m512d half = _mm512_set1_pd (0.5), mhalf = _mm512_set1_pd (-0.5);
    const __m512d one = _mm512_set1_pd (1.0);
    for (uint32_t d = 0; d < dim; d += 8) {
        __mmask8 m = dim - d >= 8? 0xFF: (__mmask8) ((1u << (dim - d)) - 1);
        __m512d x = _mm512_cvtps_pd (_mm256_maskz_loadu_ps (m, q + d));
        __m512d mn = _mm512_cvtps_pd (_mm256_maskz_loadu_ps (m, vmin + d));
        __m512d v = _mm512_mul_pd (_mm512_sub_pd (x, mn), inv);
        v = _mm512_min_pd (_mm512_max_pd (v, lo), hi);
        __m512d t = _mm512_roundscale_pd (v, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
        __m512d f = _mm512_sub_pd (v, t);
        t = _mm512_mask_add_pd (t, _mm512_cmp_pd_mask (f, half, _CMP_GE_OQ), t, one);
        t = _mm512_mask_sub_pd (t, _mm512_cmp_pd_mask (f, mhalf, _CMP_LE_OQ), t, one);
        t = _mm512_min_pd (_mm512_max_pd (t, lo2), hi2);
        __m128i w = _mm256_cvtepi32_epi16 (_mm512_cvtpd_epi32 (t));
        _mm_mask_storeu_epi16 (out + d, m, w);
    }
    for (uint32_t d = dim; d < qv_isq8_cdim (dim); d++)
        out [d] = 0;
}
#endif

void
qv_isq8_query (const float *vmin, float step, const float *q, uint32_t dim, int16_t *out)
{
#if defined(__x86_64__) || defined(__i386__)
    //  The same codes either way; chosen once (QV_SIMD caps it as it caps the kernels)
    static atomic_int avx512 = -1;
    int use = atomic_load_explicit (&avx512, memory_order_relaxed);
    if (use < 0) {
        __builtin_cpu_init ();
        use = strcmp (qv_dist_kernels ()->isa, "avx512") == 0
           && __builtin_cpu_supports ("avx512bw") && __builtin_cpu_supports ("avx512vl");
        atomic_store_explicit (&avx512, use, memory_order_relaxed);
    }
    if (use) {
        s_query_avx512 (vmin, step, q, dim, out);
        return;
    }
#endif
    qv_isq8_query_serial (vmin, step, q, dim, out);
}

int32_t
qv_isq8_bias (const uint8_t *c, uint32_t cdim)
{
    int32_t sq = 0, sum = 0;
    for (uint32_t i = 0; i < cdim; i++) {
        sq += (int32_t) c [i] * c [i];
        sum += c [i];
    }
    return sq - 256 * sum;
}

int
qv_isq8_query_s8 (const int16_t *q, uint32_t cdim, int8_t *out, int32_t *qq)
{
    //  One branch-free pass (the compiler vectorizes it)
    int32_t sq = 0;
    uint32_t outside = 0;
    for (uint32_t i = 0; i < cdim; i++) {
        outside |= (uint16_t) q [i] > 255;      //  negatives wrap above 255
        sq += (int32_t) q [i] * q [i];
        out [i] = (int8_t) (uint8_t) (q [i] ^ 0x80);
    }
    *qq = sq;
    return !outside;
}

int32_t
qv_isq8_l2_qb_serial (const int8_t *q8, int32_t qq, const uint8_t *c, int32_t bias, uint32_t cdim)
{
    return qv_isq8_l2_qb_serial_inline (q8, qq, c, bias, cdim);
}

int32_t
qv_isq8_l2_qc_serial (const int16_t *q, const uint8_t *c, uint32_t cdim)
{
    return qv_isq8_l2_qc_serial_inline (q, c, cdim);
}

int32_t
qv_isq8_l2_cc_serial (const uint8_t *a, const uint8_t *b, uint32_t cdim)
{
    return qv_isq8_l2_cc_serial_inline (a, b, cdim);
}

#if defined(__x86_64__) || defined(__i386__)
__attribute__ ((target ("avx2"))) int32_t
qv_isq8_l2_qc_avx2 (const int16_t *q, const uint8_t *c, uint32_t cdim)
{
    return qv_isq8_l2_qc_avx2_inline (q, c, cdim);
}

__attribute__ ((target ("avx2"))) int32_t
qv_isq8_l2_cc_avx2 (const uint8_t *a, const uint8_t *b, uint32_t cdim)
{
    return qv_isq8_l2_cc_avx2_inline (a, b, cdim);
}

__attribute__ ((target ("avx512f,avx512bw"))) int32_t
qv_isq8_l2_qc_avx512 (const int16_t *q, const uint8_t *c, uint32_t cdim)
{
    return qv_isq8_l2_qc_avx512_inline (q, c, cdim);
}

__attribute__ ((target ("avx512f,avx512bw"))) int32_t
qv_isq8_l2_cc_avx512 (const uint8_t *a, const uint8_t *b, uint32_t cdim)
{
    return qv_isq8_l2_cc_avx512_inline (a, b, cdim);
}

__attribute__ ((target ("avx512f,avx512bw,avx512vnni"))) int32_t
qv_isq8_l2_qb_vnni (const int8_t *q8, int32_t qq, const uint8_t *c, int32_t bias, uint32_t cdim)
{
    return qv_isq8_l2_qb_vnni_inline (q8, qq, c, bias, cdim);
}

__attribute__ ((target ("avx2"))) void
qv_isq8_l2_qc4_avx2 (const int16_t *q, const uint8_t *const c [4], uint32_t cdim, int32_t out [4])
{
    _mm_storeu_si128 ((__m128i *) out, qv_isq8_l2_qc4_avx2_inline (q, c [0], c [1], c [2], c [3], cdim));
}

__attribute__ ((target ("avx512f,avx512bw"))) void
qv_isq8_l2_qc4_avx512 (const int16_t *q, const uint8_t *const c [4], uint32_t cdim, int32_t out [4])
{
    _mm_storeu_si128 ((__m128i *) out, qv_isq8_l2_qc4_avx512_inline (q, c [0], c [1], c [2], c [3], cdim));
}

__attribute__ ((target ("avx512f,avx512bw,avx512vnni"))) void
qv_isq8_l2_qb4_vnni (const int8_t *q8, int32_t qq, const uint8_t *const c [4],
                     const int32_t bias [4], uint32_t cdim, int32_t out [4])
{
    __m128i r = qv_isq8_l2_qb4_vnni_inline (q8, qq, c [0], c [1], c [2], c [3],
                                            _mm_loadu_si128 ((const __m128i *) bias), cdim);
    _mm_storeu_si128 ((__m128i *) out, r);
}

const char *
qv_isq8_isa (void)
{
    //  qv_dist_kernels () applies QV_SIMD; AVX-512 here also needs BW, and the byte
    //  form VNNI unless QV_SIMD=avx512bw (which qv_dist reads as no cap)
    const char *isa = qv_dist_kernels ()->isa;
    const char *env = getenv ("QV_SIMD");
    __builtin_cpu_init ();
    if (strcmp (isa, "avx512") == 0 && __builtin_cpu_supports ("avx512bw")) {
        if (__builtin_cpu_supports ("avx512vnni") && !(env && strcasecmp (env, "avx512bw") == 0))
            return "avx512vnni";
        return "avx512";
    }
    if (strcmp (isa, "serial") != 0)
        return "avx2";
    return "serial";
}
#else
int32_t qv_isq8_l2_qc_avx2 (const int16_t *q, const uint8_t *c, uint32_t n) { return qv_isq8_l2_qc_serial (q, c, n); }
int32_t qv_isq8_l2_cc_avx2 (const uint8_t *a, const uint8_t *b, uint32_t n) { return qv_isq8_l2_cc_serial (a, b, n); }
int32_t qv_isq8_l2_qc_avx512 (const int16_t *q, const uint8_t *c, uint32_t n) { return qv_isq8_l2_qc_serial (q, c, n); }
int32_t qv_isq8_l2_cc_avx512 (const uint8_t *a, const uint8_t *b, uint32_t n) { return qv_isq8_l2_cc_serial (a, b, n); }
int32_t qv_isq8_l2_qb_vnni (const int8_t *q8, int32_t qq, const uint8_t *c, int32_t bias, uint32_t n) { return qv_isq8_l2_qb_serial (q8, qq, c, bias, n); }

void
qv_isq8_l2_qc4_avx2 (const int16_t *q, const uint8_t *const c [4], uint32_t cdim, int32_t out [4])
{
    for (int j = 0; j < 4; j++)
        out [j] = qv_isq8_l2_qc_serial (q, c [j], cdim);
}

void
qv_isq8_l2_qc4_avx512 (const int16_t *q, const uint8_t *const c [4], uint32_t cdim, int32_t out [4])
{
    qv_isq8_l2_qc4_avx2 (q, c, cdim, out);
}

void
qv_isq8_l2_qb4_vnni (const int8_t *q8, int32_t qq, const uint8_t *const c [4],
                     const int32_t bias [4], uint32_t cdim, int32_t out [4])
{
    for (int j = 0; j < 4; j++)
        out [j] = qv_isq8_l2_qb_serial (q8, qq, c [j], bias [j], cdim);
}

const char *
qv_isq8_isa (void)
{
    return "serial";
}
#endif
