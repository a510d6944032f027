//  Integer SQ8 codes for graph walks (HNSW_SQ8): per-dimension minimum, one step shared
//  by every dimension, so the squared L2 distance between two code vectors (or a code
//  vector and a query in code units) is an exact integer sum that SIMD computes with
//  16-bit multiply-adds, four times fewer bytes per vector than float32.
//
//  Code vectors are stored padded with zeros to a multiple of 32 bytes (qv_isq8_cdim)
//  and queries as int16 padded with zeros likewise, so the kernels have no tails.
//  A query is clamped to [-256, 511] code units, and dim to QV_ISQ8_MAX_DIM, which
//  keeps every sum below 2^31.
#ifndef QV_ISQ8_H_INCLUDED
#define QV_ISQ8_H_INCLUDED

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define QV_ISQ8_MAX_DIM 4096
#define QV_ISQ8_QMIN (-256)
#define QV_ISQ8_QMAX 511

//  The stored width of a code vector (and of a prepared query) for dim: dim rounded
//  up to a multiple of 32.
static inline uint32_t
qv_isq8_cdim (uint32_t dim)
{
    return (dim + 31) / 32 * 32;
}

//  Learns vmin [dim] (per-dimension minimum) and *step ((largest per-dimension range)
//  / 255, 1 when every range is 0) from n vectors. Returns 0, or QV_EINVAL naming
//  the first value that is not finite.
int
    qv_isq8_train (const float *x, size_t n, uint32_t dim, float *vmin, float *step);

//  Encodes n vectors into n x cdim codes: round ((x - vmin) / step) clamped to 0..255,
//  padding zeros.
void
    qv_isq8_encode (const float *vmin, float step, const float *x, size_t n, uint32_t dim,
                    uint8_t *codes);

//  A query in code units, cdim int16: round ((q - vmin) / step) clamped to
//  [QV_ISQ8_QMIN, QV_ISQ8_QMAX], padding zeros.
//  qv_isq8_query_serial is the reference; qv_isq8_query runs AVX-512 where the CPU
//  has it (the same codes).
void
    qv_isq8_query (const float *vmin, float step, const float *q, uint32_t dim, int16_t *out);
void
    qv_isq8_query_serial (const float *vmin, float step, const float *q, uint32_t dim,
                          int16_t *out);

//  Squared L2 in code units. Query (int16) vs codes, and codes vs codes; cdim is a
//  multiple of 32. The _avx2 / _avx512 variants only where the CPU has them (avx512
//  needs AVX-512BW).
int32_t qv_isq8_l2_qc_serial (const int16_t *q, const uint8_t *c, uint32_t cdim);
int32_t qv_isq8_l2_qc_avx2   (const int16_t *q, const uint8_t *c, uint32_t cdim);
int32_t qv_isq8_l2_qc_avx512 (const int16_t *q, const uint8_t *c, uint32_t cdim);
int32_t qv_isq8_l2_cc_serial (const uint8_t *a, const uint8_t *b, uint32_t cdim);
int32_t qv_isq8_l2_cc_avx2   (const uint8_t *a, const uint8_t *b, uint32_t cdim);
int32_t qv_isq8_l2_cc_avx512 (const uint8_t *a, const uint8_t *b, uint32_t cdim);

//  The same squared L2 as one dot product (AVX512_VNNI's vpdpbusd multiplies unsigned
//  by signed bytes, 64 at a time): for a query whose codes are all in 0..255,
//      |q - c|^2 = qq + bias (c) - 2 (q - 128) . c
//  with qq = |q|^2 (per query) and bias (c) = |c|^2 - 256 sum (c) (per code vector),
//  an exact integer equal to qv_isq8_l2_qc_*'s.
//  qv_isq8_bias: bias (c) of one code vector.
int32_t
    qv_isq8_bias (const uint8_t *c, uint32_t cdim);

//  The dot-product form of a query for unit vectors (COSINE): ranking codes c by
//  q . (vmin + step c) is ranking them by q . c, so a query needs no code ranges:
//  out [i] = round (127 q [i] / max |q|) (0 for a zero query and for i >= dim), int8
//  in -127..127, then a zero int32 in place of qq, so the byte-form kernels with
//  every bias 0 return -2 out.c, smaller for a larger dot product.
void
    qv_isq8_query_ip (const float *q, uint32_t dim, uint32_t cdim, int8_t *out);

//  The byte form of a prepared query (qv_isq8_query): out [i] = q [i] - 128 and
//  *qq = |q|^2. Returns 1, or 0 (out and *qq meaningless) when a code is outside 0..255 (a query
//  beyond the trained ranges), which the byte form cannot hold.
int
    qv_isq8_query_s8 (const int16_t *q, uint32_t cdim, int8_t *out, int32_t *qq);

//  |q - c|^2 from the byte form (q8, qq) and c's bias. _vnni only where the CPU has
//  AVX512_VNNI (and AVX-512BW).
int32_t qv_isq8_l2_qb_serial (const int8_t *q8, int32_t qq, const uint8_t *c, int32_t bias,
                              uint32_t cdim);
int32_t qv_isq8_l2_qb_vnni   (const int8_t *q8, int32_t qq, const uint8_t *c, int32_t bias,
                              uint32_t cdim);
//  The same for four code vectors c [0..3] with their biases, into out [0..3] (the
//  walk's batched form; serial where the CPU lacks VNNI).
void    qv_isq8_l2_qb4_vnni  (const int8_t *q8, int32_t qq, const uint8_t *const c [4],
                              const int32_t bias [4], uint32_t cdim, int32_t out [4]);
//  The nibble form of a byte-form query, for AVX2's vpmaddubsw (whose pair sums of
//  byte products would saturate 16 bits with whole bytes): q8 = 16 qh + ql with
//  qh = q8 >> 4 in -8..7 and ql = q8 & 15, so a pair of products stays within
//  +-4080 (qh) and 7650 (ql), and four steps of each add up in 16 bits. out: cdim qh,
//  then cdim ql, then qq as an int32 (2 cdim + 4 bytes).
void
    qv_isq8_query_nib (const int8_t *q8, int32_t qq, uint32_t cdim, int8_t *out);
//  |q - c|^2 from the nibble form and c's bias (AVX2), one code vector or four.
int32_t qv_isq8_l2_qn_avx2  (const int8_t *qn, const uint8_t *c, int32_t bias, uint32_t cdim);
void    qv_isq8_l2_qn4_avx2 (const int8_t *qn, const uint8_t *const c [4], const int32_t bias [4],
                             uint32_t cdim, int32_t out [4]);

//  The int16 query kernel for four code vectors c [0..3] into out [0..3] (the walk's
//  batched form); only where the CPU has AVX-512BW.
void    qv_isq8_l2_qc4_avx512 (const int16_t *q, const uint8_t *const c [4], uint32_t cdim,
                               int32_t out [4]);

//  "avx512vnni" (AVX-512BW and VNNI: searches on the byte form), "avx512"
//  (AVX-512BW), "avx2" or "serial": the kernels HNSW_SQ8 runs on this CPU, capped by
//  QV_SIMD as qv_dist_kernels () is; QV_SIMD=avx512bw keeps AVX-512 without VNNI.
const char *
    qv_isq8_isa (void);

//  --------------------------------------------------------------------------
//  Inline kernels, for qv_hnsw.c's walks and the exported wrappers above.

static inline int32_t
qv_isq8_l2_qc_serial_inline (const int16_t *q, const uint8_t *c, uint32_t cdim)
{
    int32_t sum = 0;
    for (uint32_t i = 0; i < cdim; i++) {
        int32_t d = (int32_t) q [i] - c [i];
        sum += d * d;
    }
    return sum;
}

static inline int32_t
qv_isq8_l2_cc_serial_inline (const uint8_t *a, const uint8_t *b, uint32_t cdim)
{
    int32_t sum = 0;
    for (uint32_t i = 0; i < cdim; i++) {
        int32_t d = (int32_t) a [i] - b [i];
        sum += d * d;
    }
    return sum;
}

static inline int32_t
qv_isq8_l2_qb_serial_inline (const int8_t *q8, int32_t qq, const uint8_t *c, int32_t bias,
                             uint32_t cdim)
{
    int32_t dot = 0;
    for (uint32_t i = 0; i < cdim; i++)
        dot += (int32_t) q8 [i] * c [i];
    return qq + bias - 2 * dot;
}

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>

__attribute__ ((target ("avx2"))) static inline int32_t
qv_isq8_hsum256_epi32 (__m256i v)
{
    __m128i s = _mm_add_epi32 (_mm256_castsi256_si128 (v), _mm256_extracti128_si256 (v, 1));
    s = _mm_add_epi32 (s, _mm_shuffle_epi32 (s, 0x4E));
    s = _mm_add_epi32 (s, _mm_shuffle_epi32 (s, 0xB1));
    return _mm_cvtsi128_si32 (s);
}

__attribute__ ((target ("avx2"))) static inline int32_t
qv_isq8_l2_qc_avx2_inline (const int16_t *q, const uint8_t *c, uint32_t cdim)
{
    __m256i s0 = _mm256_setzero_si256 (), s1 = _mm256_setzero_si256 ();
    for (uint32_t i = 0; i < cdim; i += 32) {
        __m256i c0 = _mm256_cvtepu8_epi16 (_mm_loadu_si128 ((const __m128i *) (c + i)));
        __m256i c1 = _mm256_cvtepu8_epi16 (_mm_loadu_si128 ((const __m128i *) (c + i + 16)));
        __m256i d0 = _mm256_sub_epi16 (_mm256_loadu_si256 ((const __m256i *) (q + i)), c0);
        __m256i d1 = _mm256_sub_epi16 (_mm256_loadu_si256 ((const __m256i *) (q + i + 16)), c1);
        s0 = _mm256_add_epi32 (s0, _mm256_madd_epi16 (d0, d0));
        s1 = _mm256_add_epi32 (s1, _mm256_madd_epi16 (d1, d1));
    }
    return qv_isq8_hsum256_epi32 (_mm256_add_epi32 (s0, s1));
}

__attribute__ ((target ("avx2"))) static inline int32_t
qv_isq8_l2_cc_avx2_inline (const uint8_t *a, const uint8_t *b, uint32_t cdim)
{
    __m256i s0 = _mm256_setzero_si256 (), s1 = _mm256_setzero_si256 ();
    for (uint32_t i = 0; i < cdim; i += 32) {
        __m256i a0 = _mm256_cvtepu8_epi16 (_mm_loadu_si128 ((const __m128i *) (a + i)));
        __m256i a1 = _mm256_cvtepu8_epi16 (_mm_loadu_si128 ((const __m128i *) (a + i + 16)));
        __m256i b0 = _mm256_cvtepu8_epi16 (_mm_loadu_si128 ((const __m128i *) (b + i)));
        __m256i b1 = _mm256_cvtepu8_epi16 (_mm_loadu_si128 ((const __m128i *) (b + i + 16)));
        __m256i d0 = _mm256_sub_epi16 (a0, b0), d1 = _mm256_sub_epi16 (a1, b1);
        s0 = _mm256_add_epi32 (s0, _mm256_madd_epi16 (d0, d0));
        s1 = _mm256_add_epi32 (s1, _mm256_madd_epi16 (d1, d1));
    }
    return qv_isq8_hsum256_epi32 (_mm256_add_epi32 (s0, s1));
}

__attribute__ ((target ("avx512f,avx512bw"))) static inline int32_t
qv_isq8_l2_qc_avx512_inline (const int16_t *q, const uint8_t *c, uint32_t cdim)
{
    __m512i s0 = _mm512_setzero_si512 ();
    for (uint32_t i = 0; i < cdim; i += 32) {
        __m512i c0 = _mm512_cvtepu8_epi16 (_mm256_loadu_si256 ((const __m256i *) (c + i)));
        __m512i d0 = _mm512_sub_epi16 (_mm512_loadu_si512 ((const void *) (q + i)), c0);
        s0 = _mm512_add_epi32 (s0, _mm512_madd_epi16 (d0, d0));
    }
    return _mm512_reduce_add_epi32 (s0);
}

//  Nibble-form kernels (qv_isq8_query_nib): per 32 dimensions one load of the codes
//  and two vpmaddubsw, summed in 16 bits for four steps, then widened.
__attribute__ ((target ("avx2"))) static inline __m256i
qv_isq8_qn_dot_avx2 (const int8_t *qh, const int8_t *ql, const uint8_t *c, uint32_t cdim)
{
    __m256i acc = _mm256_setzero_si256 (), h16 = acc, l16 = acc;
    const __m256i sixteen = _mm256_set1_epi16 (16), one = _mm256_set1_epi16 (1);
    uint32_t steps = 0;
    for (uint32_t i = 0; i < cdim; i += 32) {
        __m256i cv = _mm256_loadu_si256 ((const __m256i *) (c + i));
        h16 = _mm256_add_epi16 (h16, _mm256_maddubs_epi16 (cv, _mm256_loadu_si256 ((const __m256i *) (qh + i))));
        l16 = _mm256_add_epi16 (l16, _mm256_maddubs_epi16 (cv, _mm256_loadu_si256 ((const __m256i *) (ql + i))));
        if (++steps == 4) {
            acc = _mm256_add_epi32 (acc, _mm256_add_epi32 (_mm256_madd_epi16 (h16, sixteen),
                                                           _mm256_madd_epi16 (l16, one)));
            h16 = l16 = _mm256_setzero_si256 ();
            steps = 0;
        }
    }
    return _mm256_add_epi32 (acc, _mm256_add_epi32 (_mm256_madd_epi16 (h16, sixteen),
                                                    _mm256_madd_epi16 (l16, one)));
}

__attribute__ ((target ("avx2"))) static inline int32_t
qv_isq8_l2_qn_avx2_inline (const int8_t *qn, const uint8_t *c, int32_t bias, uint32_t cdim)
{
    int32_t qq;
    memcpy (&qq, qn + 2 * (size_t) cdim, sizeof qq);
    return qq + bias - 2 * qv_isq8_hsum256_epi32 (qv_isq8_qn_dot_avx2 (qn, qn + cdim, c, cdim));
}

__attribute__ ((target ("avx2"))) static inline __m128i
qv_isq8_l2_qn4_avx2_inline (const int8_t *qn, const uint8_t *c0, const uint8_t *c1,
                            const uint8_t *c2, const uint8_t *c3, __m128i bias, uint32_t cdim)
{
    int32_t qq;
    memcpy (&qq, qn + 2 * (size_t) cdim, sizeof qq);
    const int8_t *qh = qn, *ql = qn + cdim;
    const __m256i sixteen = _mm256_set1_epi16 (16), one = _mm256_set1_epi16 (1);
    __m256i a = _mm256_setzero_si256 (), b = a, c = a, d = a;
    __m256i ha = a, hb = a, hc = a, hd = a, la = a, lb = a, lc = a, ld = a;
    uint32_t steps = 0;
    for (uint32_t i = 0; i < cdim; i += 32) {
        __m256i vh = _mm256_loadu_si256 ((const __m256i *) (qh + i));
        __m256i vl = _mm256_loadu_si256 ((const __m256i *) (ql + i));
        __m256i v0 = _mm256_loadu_si256 ((const __m256i *) (c0 + i));
        __m256i v1 = _mm256_loadu_si256 ((const __m256i *) (c1 + i));
        ha = _mm256_add_epi16 (ha, _mm256_maddubs_epi16 (v0, vh));
        la = _mm256_add_epi16 (la, _mm256_maddubs_epi16 (v0, vl));
        hb = _mm256_add_epi16 (hb, _mm256_maddubs_epi16 (v1, vh));
        lb = _mm256_add_epi16 (lb, _mm256_maddubs_epi16 (v1, vl));
        __m256i v2 = _mm256_loadu_si256 ((const __m256i *) (c2 + i));
        __m256i v3 = _mm256_loadu_si256 ((const __m256i *) (c3 + i));
        hc = _mm256_add_epi16 (hc, _mm256_maddubs_epi16 (v2, vh));
        lc = _mm256_add_epi16 (lc, _mm256_maddubs_epi16 (v2, vl));
        hd = _mm256_add_epi16 (hd, _mm256_maddubs_epi16 (v3, vh));
        ld = _mm256_add_epi16 (ld, _mm256_maddubs_epi16 (v3, vl));
        if (++steps == 4 || i + 32 >= cdim) {
#define QV_ISQ8_QN_WIDEN(acc, h, l)                                                      \
            acc = _mm256_add_epi32 (acc, _mm256_add_epi32 (_mm256_madd_epi16 (h, sixteen), \
                                                           _mm256_madd_epi16 (l, one)));  \
            h = l = _mm256_setzero_si256 ()
            QV_ISQ8_QN_WIDEN (a, ha, la);
            QV_ISQ8_QN_WIDEN (b, hb, lb);
            QV_ISQ8_QN_WIDEN (c, hc, lc);
            QV_ISQ8_QN_WIDEN (d, hd, ld);
#undef QV_ISQ8_QN_WIDEN
            steps = 0;
        }
    }
    __m256i s = _mm256_hadd_epi32 (_mm256_hadd_epi32 (a, b), _mm256_hadd_epi32 (c, d));
    __m128i x = _mm_add_epi32 (_mm256_castsi256_si128 (s), _mm256_extracti128_si256 (s, 1));
    return _mm_sub_epi32 (_mm_add_epi32 (_mm_set1_epi32 (qq), bias), _mm_slli_epi32 (x, 1));
}

//  Four 16-lane int32 sums reduced at once into lanes 0..3 (see qv_isq8_l2_qb4_vnni_inline).
__attribute__ ((target ("avx512f"))) static inline __m128i
qv_isq8_reduce4_epi32 (__m512i a, __m512i b, __m512i c, __m512i d)
{
    //  Per 128-bit lane: [a0+a2, b0+b2, a1+a3, b1+b3] and the same for c, d; then
    //  [a, b, c, d] partial sums; then the four lanes added
    __m512i ab = _mm512_add_epi32 (_mm512_unpacklo_epi32 (a, b), _mm512_unpackhi_epi32 (a, b));
    __m512i cd = _mm512_add_epi32 (_mm512_unpacklo_epi32 (c, d), _mm512_unpackhi_epi32 (c, d));
    __m512i s = _mm512_add_epi32 (_mm512_unpacklo_epi64 (ab, cd), _mm512_unpackhi_epi64 (ab, cd));
    __m256i y = _mm256_add_epi32 (_mm512_castsi512_si256 (s), _mm512_extracti64x4_epi64 (s, 1));
    return _mm_add_epi32 (_mm256_castsi256_si128 (y), _mm256_extracti128_si256 (y, 1));
}

//  The int16 query kernel for four code vectors at once (AVX-512BW): the query's steps
//  are loaded once for the four and the four sums reduced together. Returns the four
//  distances as int32 lanes 0..3.
__attribute__ ((target ("avx512f,avx512bw"))) static inline __m128i
qv_isq8_l2_qc4_avx512_inline (const int16_t *q, const uint8_t *c0, const uint8_t *c1,
                              const uint8_t *c2, const uint8_t *c3, uint32_t cdim)
{
    __m512i a = _mm512_setzero_si512 (), b = a, c = a, d = a;
    for (uint32_t i = 0; i < cdim; i += 32) {
        __m512i qv = _mm512_loadu_si512 ((const void *) (q + i));
        __m512i e0 = _mm512_sub_epi16 (qv, _mm512_cvtepu8_epi16 (_mm256_loadu_si256 ((const __m256i *) (c0 + i))));
        __m512i e1 = _mm512_sub_epi16 (qv, _mm512_cvtepu8_epi16 (_mm256_loadu_si256 ((const __m256i *) (c1 + i))));
        __m512i e2 = _mm512_sub_epi16 (qv, _mm512_cvtepu8_epi16 (_mm256_loadu_si256 ((const __m256i *) (c2 + i))));
        __m512i e3 = _mm512_sub_epi16 (qv, _mm512_cvtepu8_epi16 (_mm256_loadu_si256 ((const __m256i *) (c3 + i))));
        a = _mm512_add_epi32 (a, _mm512_madd_epi16 (e0, e0));
        b = _mm512_add_epi32 (b, _mm512_madd_epi16 (e1, e1));
        c = _mm512_add_epi32 (c, _mm512_madd_epi16 (e2, e2));
        d = _mm512_add_epi32 (d, _mm512_madd_epi16 (e3, e3));
    }
    return qv_isq8_reduce4_epi32 (a, b, c, d);
}

__attribute__ ((target ("avx512f,avx512bw"))) static inline int32_t
qv_isq8_l2_cc_avx512_inline (const uint8_t *a, const uint8_t *b, uint32_t cdim)
{
    __m512i s0 = _mm512_setzero_si512 ();
    for (uint32_t i = 0; i < cdim; i += 32) {
        __m512i a0 = _mm512_cvtepu8_epi16 (_mm256_loadu_si256 ((const __m256i *) (a + i)));
        __m512i b0 = _mm512_cvtepu8_epi16 (_mm256_loadu_si256 ((const __m256i *) (b + i)));
        __m512i d0 = _mm512_sub_epi16 (a0, b0);
        s0 = _mm512_add_epi32 (s0, _mm512_madd_epi16 (d0, d0));
    }
    return _mm512_reduce_add_epi32 (s0);
}

//  cdim is a multiple of 32: whole 64-byte steps, then at most one masked half
__attribute__ ((target ("avx512f,avx512bw,avx512vnni"))) static inline int32_t
qv_isq8_l2_qb_vnni_inline (const int8_t *q8, int32_t qq, const uint8_t *c, int32_t bias,
                           uint32_t cdim)
{
    __m512i s0 = _mm512_setzero_si512 (), s1 = _mm512_setzero_si512 ();
    uint32_t i = 0;
    for (; i + 128 <= cdim; i += 128) {
        s0 = _mm512_dpbusd_epi32 (s0, _mm512_loadu_si512 ((const void *) (c + i)),
                                  _mm512_loadu_si512 ((const void *) (q8 + i)));
        s1 = _mm512_dpbusd_epi32 (s1, _mm512_loadu_si512 ((const void *) (c + i + 64)),
                                  _mm512_loadu_si512 ((const void *) (q8 + i + 64)));
    }
    if (i + 64 <= cdim) {
        s0 = _mm512_dpbusd_epi32 (s0, _mm512_loadu_si512 ((const void *) (c + i)),
                                  _mm512_loadu_si512 ((const void *) (q8 + i)));
        i += 64;
    }
    if (i < cdim) {
        __mmask64 half = 0xFFFFFFFFull;
        s1 = _mm512_dpbusd_epi32 (s1, _mm512_maskz_loadu_epi8 (half, c + i),
                                  _mm512_maskz_loadu_epi8 (half, q8 + i));
    }
    return qq + bias - 2 * _mm512_reduce_add_epi32 (_mm512_add_epi32 (s0, s1));
}

//  qv_isq8_l2_qb_vnni_inline for four code vectors at once: each 64-byte step of the
//  query is loaded once for the four, and the four sums are reduced together (two
//  rounds of unpack-and-add leave one 128-bit lane per vector quarter, then the lanes
//  are added: qv_isq8_reduce4_epi32), about half the shuffles of four reductions.
//  Returns the four distances qq + bias [j] - 2 q.c [j] as int32 lanes 0..3.
__attribute__ ((target ("avx512f,avx512bw,avx512vnni"))) static inline __m128i
qv_isq8_l2_qb4_vnni_inline (const int8_t *q8, int32_t qq, const uint8_t *c0,
                            const uint8_t *c1, const uint8_t *c2, const uint8_t *c3,
                            __m128i bias, uint32_t cdim)
{
    __m512i a = _mm512_setzero_si512 (), b = a, c = a, d = a;
    uint32_t i = 0;
    for (; i + 64 <= cdim; i += 64) {
        __m512i q = _mm512_loadu_si512 ((const void *) (q8 + i));
        a = _mm512_dpbusd_epi32 (a, _mm512_loadu_si512 ((const void *) (c0 + i)), q);
        b = _mm512_dpbusd_epi32 (b, _mm512_loadu_si512 ((const void *) (c1 + i)), q);
        c = _mm512_dpbusd_epi32 (c, _mm512_loadu_si512 ((const void *) (c2 + i)), q);
        d = _mm512_dpbusd_epi32 (d, _mm512_loadu_si512 ((const void *) (c3 + i)), q);
    }
    if (i < cdim) {
        __mmask64 half = 0xFFFFFFFFull;
        __m512i q = _mm512_maskz_loadu_epi8 (half, q8 + i);
        a = _mm512_dpbusd_epi32 (a, _mm512_maskz_loadu_epi8 (half, c0 + i), q);
        b = _mm512_dpbusd_epi32 (b, _mm512_maskz_loadu_epi8 (half, c1 + i), q);
        c = _mm512_dpbusd_epi32 (c, _mm512_maskz_loadu_epi8 (half, c2 + i), q);
        d = _mm512_dpbusd_epi32 (d, _mm512_maskz_loadu_epi8 (half, c3 + i), q);
    }
    __m128i x = qv_isq8_reduce4_epi32 (a, b, c, d);
    return _mm_sub_epi32 (_mm_add_epi32 (_mm_set1_epi32 (qq), bias), _mm_slli_epi32 (x, 1));
}
#endif

#endif
