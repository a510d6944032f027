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

//  One dimension's code: in double, as the range may span all floats; the clamp is
//  written so that NaN clamps too (to the low end) instead of being converted.
//  Rounded half away from zero as round () does, but inline: inside the clamp range
//  the value is small, so truncating |v| + 0.5 is exact, and libm's round () per
//  dimension was a tenth of a search on siftsmall at ef 16 (callgrind). Inside the
//  clamp v - trunc (v) is exact, so this is round () exactly.
static inline int16_t
s_query_code (float q, float vmin, float inv)
{
    double v = ((double) q - vmin) * inv;
    if (!(v > QV_ISQ8_QMIN - 0.5))
        return QV_ISQ8_QMIN;
    if (v >= QV_ISQ8_QMAX + 0.5)
        return QV_ISQ8_QMAX;
    int32_t t = (int32_t) v;
    double frac = v - t;
    t += frac >= 0.5? 1: frac <= -0.5? -1: 0;
    return (int16_t) t;
}

void
qv_isq8_query_serial (const float *vmin, float step, const float *q, uint32_t dim, int16_t *out)
{
    float inv = 1.0f / step;
    for (uint32_t d = 0; d < dim; d++)
        out [d] = s_query_code (q [d], vmin [d], inv);
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

#if defined(__x86_64__) || defined(__i386__)
//  The same with AVX2, 4 dimensions at a time (vmaxpd returns its second operand for
//  NaN as well); the last dim % 4 as the serial code does them.
__attribute__ ((target ("avx2"))) static void
s_query_avx2 (const float *vmin, float step, const float *q, uint32_t dim, int16_t *out)
{
    float finv = 1.0f / step;
    const __m256d inv = _mm256_set1_pd ((double) finv);
    const __m256d lo = _mm256_set1_pd (QV_ISQ8_QMIN - 1), hi = _mm256_set1_pd (QV_ISQ8_QMAX + 1);
    const __m256d lo2 = _mm256_set1_pd (QV_ISQ8_QMIN), hi2 = _mm256_set1_pd (QV_ISQ8_QMAX);
    const __m256d half = _mm256_set1_pd (0.5), mhalf = _mm256_set1_pd (-0.5);
    const __m256d one = _mm256_set1_pd (1.0);
    uint32_t d = 0;
    for (; d + 4 <= dim; d += 4) {
        __m256d x = _mm256_cvtps_pd (_mm_loadu_ps (q + d));
        __m256d mn = _mm256_cvtps_pd (_mm_loadu_ps (vmin + d));
        __m256d v = _mm256_mul_pd (_mm256_sub_pd (x, mn), inv);
        v = _mm256_min_pd (_mm256_max_pd (v, lo), hi);
        __m256d t = _mm256_round_pd (v, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
        __m256d f = _mm256_sub_pd (v, t);
        t = _mm256_add_pd (t, _mm256_and_pd (_mm256_cmp_pd (f, half, _CMP_GE_OQ), one));
        t = _mm256_sub_pd (t, _mm256_and_pd (_mm256_cmp_pd (f, mhalf, _CMP_LE_OQ), one));
        t = _mm256_min_pd (_mm256_max_pd (t, lo2), hi2);
        __m128i w = _mm256_cvtpd_epi32 (t);
        _mm_storel_epi64 ((__m128i *) (out + d), _mm_packs_epi32 (w, w));
    }
    for (; d < dim; d++)
        out [d] = s_query_code (q [d], vmin [d], finv);
    for (d = dim; d < qv_isq8_cdim (dim); d++)
        out [d] = 0;
}
#endif

void
qv_isq8_query (const float *vmin, float step, const float *q, uint32_t dim, int16_t *out)
{
#if defined(__x86_64__) || defined(__i386__)
    //  The same codes any way; chosen once (QV_SIMD caps it as it caps the kernels):
    //  2 AVX-512, 1 AVX2, 0 serial
    static atomic_int isa = -1;
    int use = atomic_load_explicit (&isa, memory_order_relaxed);
    if (use < 0) {
        __builtin_cpu_init ();
        const char *kernels = qv_dist_kernels ()->isa;
        use = strcmp (kernels, "avx512") == 0 && __builtin_cpu_supports ("avx512bw")
              && __builtin_cpu_supports ("avx512vl")? 2
            : strcmp (kernels, "serial") != 0? 1: 0;
        atomic_store_explicit (&isa, use, memory_order_relaxed);
    }
    if (use == 2) {
        s_query_avx512 (vmin, step, q, dim, out);
        return;
    }
    if (use == 1) {
        s_query_avx2 (vmin, step, q, dim, out);
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

void
qv_isq8_query_ip (const float *q, uint32_t dim, uint32_t cdim, int8_t *out)
{
    float top = 0;
    for (uint32_t i = 0; i < dim; i++)
        top = fabsf (q [i]) > top? fabsf (q [i]): top;         //  NaN: skipped
    float scale = top > 0 && isfinite (top)? 127.0f / top: 0;
    for (uint32_t i = 0; i < dim; i++) {
        float v = roundf (q [i] * scale);
        out [i] = (int8_t) (v >= -127? (v <= 127? v: 127): -127);   //  NaN: -127
    }
    memset (out + dim, 0, cdim - dim + sizeof (int32_t));
}

void
qv_isq8_query_nib (const int8_t *q8, int32_t qq, uint32_t cdim, int8_t *out)
{
    for (uint32_t i = 0; i < cdim; i++) {
        out [i] = (int8_t) (q8 [i] >> 4);               //  arithmetic: -8..7
        out [cdim + i] = (int8_t) (q8 [i] & 15);
    }
    memcpy (out + 2 * (size_t) cdim, &qq, sizeof qq);
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

__attribute__ ((target ("avx2"))) int32_t
qv_isq8_l2_qn_avx2 (const int8_t *qn, const uint8_t *c, int32_t bias, uint32_t cdim)
{
    return qv_isq8_l2_qn_avx2_inline (qn, c, bias, cdim);
}

__attribute__ ((target ("avx2"))) void
qv_isq8_l2_qn4_avx2 (const int8_t *qn, const uint8_t *const c [4], const int32_t bias [4],
                     uint32_t cdim, int32_t out [4])
{
    __m128i r = qv_isq8_l2_qn4_avx2_inline (qn, c [0], c [1], c [2], c [3],
                                            _mm_loadu_si128 ((const __m128i *) bias), cdim);
    _mm_storeu_si128 ((__m128i *) out, r);
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

static int32_t
s_qn_serial (const int8_t *qn, const uint8_t *c, int32_t bias, uint32_t cdim)
{
    int32_t qq, dot = 0;
    memcpy (&qq, qn + 2 * (size_t) cdim, sizeof qq);
    for (uint32_t i = 0; i < cdim; i++)
        dot += (16 * qn [i] + qn [cdim + i]) * c [i];
    return qq + bias - 2 * dot;
}

int32_t
qv_isq8_l2_qn_avx2 (const int8_t *qn, const uint8_t *c, int32_t bias, uint32_t cdim)
{
    return s_qn_serial (qn, c, bias, cdim);
}

void
qv_isq8_l2_qn4_avx2 (const int8_t *qn, const uint8_t *const c [4], const int32_t bias [4],
                     uint32_t cdim, int32_t out [4])
{
    for (int j = 0; j < 4; j++)
        out [j] = s_qn_serial (qn, c [j], bias [j], cdim);
}

void
qv_isq8_l2_qc4_avx512 (const int16_t *q, const uint8_t *const c [4], uint32_t cdim, int32_t out [4])
{
    for (int j = 0; j < 4; j++)
        out [j] = qv_isq8_l2_qc_serial (q, c [j], cdim);
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
