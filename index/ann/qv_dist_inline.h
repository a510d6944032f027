//  The pair distance kernels as inline functions, for code that wants them inlined into
//  its own loops (qv_dist.c wraps them as the exported kernels; qv_hnsw.c inlines them
//  into its graph walks). Each carries its target attribute: call the _avx2 ones only
//  from code compiled for avx2+fma, the _avx512 ones only from code for avx512f.
#ifndef QV_DIST_INLINE_H_INCLUDED
#define QV_DIST_INLINE_H_INCLUDED

#include <stddef.h>
#include <stdint.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define QV_DIST_HAVE_X86 1

#define QV_DIST_TARGET_AVX2 __attribute__ ((target ("avx2,fma")))

QV_DIST_TARGET_AVX2 static inline float
qv_dist_hsum256 (__m256 v)
{
    __m128 lo = _mm256_castps256_ps128 (v);
    __m128 hi = _mm256_extractf128_ps (v, 1);
    lo = _mm_add_ps (lo, hi);
    __m128 sh = _mm_movehdup_ps (lo);
    lo = _mm_add_ps (lo, sh);
    sh = _mm_movehl_ps (sh, lo);
    lo = _mm_add_ss (lo, sh);
    return _mm_cvtss_f32 (lo);
}

//  Mask for the first r (0..7) lanes of a 256-bit load.
QV_DIST_TARGET_AVX2 static inline __m256i
qv_dist_tail_mask256 (size_t r)
{
    static const int32_t table [16] = { -1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0 };
    return _mm256_loadu_si256 ((const __m256i *) (table + 8 - r));
}

QV_DIST_TARGET_AVX2 static inline float
qv_dist_l2sq_f32_avx2_inline (const float *a, const float *b, size_t dim)
{
    __m256 s0 = _mm256_setzero_ps (), s1 = _mm256_setzero_ps ();
    size_t i = 0;
    for (; i + 16 <= dim; i += 16) {
        __m256 d0 = _mm256_sub_ps (_mm256_loadu_ps (a + i), _mm256_loadu_ps (b + i));
        __m256 d1 = _mm256_sub_ps (_mm256_loadu_ps (a + i + 8), _mm256_loadu_ps (b + i + 8));
        s0 = _mm256_fmadd_ps (d0, d0, s0);
        s1 = _mm256_fmadd_ps (d1, d1, s1);
    }
    if (i + 8 <= dim) {
        __m256 d0 = _mm256_sub_ps (_mm256_loadu_ps (a + i), _mm256_loadu_ps (b + i));
        s0 = _mm256_fmadd_ps (d0, d0, s0);
        i += 8;
    }
    if (i < dim) {
        __m256i m = qv_dist_tail_mask256 (dim - i);
        __m256 d0 = _mm256_sub_ps (_mm256_maskload_ps (a + i, m), _mm256_maskload_ps (b + i, m));
        s1 = _mm256_fmadd_ps (d0, d0, s1);
    }
    return qv_dist_hsum256 (_mm256_add_ps (s0, s1));
}

QV_DIST_TARGET_AVX2 static inline float
qv_dist_ip_f32_avx2_inline (const float *a, const float *b, size_t dim)
{
    __m256 s0 = _mm256_setzero_ps (), s1 = _mm256_setzero_ps ();
    size_t i = 0;
    for (; i + 16 <= dim; i += 16) {
        s0 = _mm256_fmadd_ps (_mm256_loadu_ps (a + i), _mm256_loadu_ps (b + i), s0);
        s1 = _mm256_fmadd_ps (_mm256_loadu_ps (a + i + 8), _mm256_loadu_ps (b + i + 8), s1);
    }
    if (i + 8 <= dim) {
        s0 = _mm256_fmadd_ps (_mm256_loadu_ps (a + i), _mm256_loadu_ps (b + i), s0);
        i += 8;
    }
    if (i < dim) {
        __m256i m = qv_dist_tail_mask256 (dim - i);
        s1 = _mm256_fmadd_ps (_mm256_maskload_ps (a + i, m), _mm256_maskload_ps (b + i, m), s1);
    }
    return qv_dist_hsum256 (_mm256_add_ps (s0, s1));
}

#define QV_DIST_TARGET_AVX512 __attribute__ ((target ("avx512f")))

QV_DIST_TARGET_AVX512 static inline __mmask16
qv_dist_tail_mask512 (size_t r)
{
    return (__mmask16) ((1u << r) - 1);
}

QV_DIST_TARGET_AVX512 static inline float
qv_dist_l2sq_f32_avx512_inline (const float *a, const float *b, size_t dim)
{
    __m512 s0 = _mm512_setzero_ps (), s1 = _mm512_setzero_ps ();
    size_t i = 0;
    for (; i + 32 <= dim; i += 32) {
        __m512 d0 = _mm512_sub_ps (_mm512_loadu_ps (a + i), _mm512_loadu_ps (b + i));
        __m512 d1 = _mm512_sub_ps (_mm512_loadu_ps (a + i + 16), _mm512_loadu_ps (b + i + 16));
        s0 = _mm512_fmadd_ps (d0, d0, s0);
        s1 = _mm512_fmadd_ps (d1, d1, s1);
    }
    if (i + 16 <= dim) {
        __m512 d0 = _mm512_sub_ps (_mm512_loadu_ps (a + i), _mm512_loadu_ps (b + i));
        s0 = _mm512_fmadd_ps (d0, d0, s0);
        i += 16;
    }
    if (i < dim) {
        __mmask16 m = qv_dist_tail_mask512 (dim - i);
        __m512 d0 = _mm512_sub_ps (_mm512_maskz_loadu_ps (m, a + i), _mm512_maskz_loadu_ps (m, b + i));
        s1 = _mm512_fmadd_ps (d0, d0, s1);
    }
    return _mm512_reduce_add_ps (_mm512_add_ps (s0, s1));
}

QV_DIST_TARGET_AVX512 static inline float
qv_dist_ip_f32_avx512_inline (const float *a, const float *b, size_t dim)
{
    __m512 s0 = _mm512_setzero_ps (), s1 = _mm512_setzero_ps ();
    size_t i = 0;
    for (; i + 32 <= dim; i += 32) {
        s0 = _mm512_fmadd_ps (_mm512_loadu_ps (a + i), _mm512_loadu_ps (b + i), s0);
        s1 = _mm512_fmadd_ps (_mm512_loadu_ps (a + i + 16), _mm512_loadu_ps (b + i + 16), s1);
    }
    if (i + 16 <= dim) {
        s0 = _mm512_fmadd_ps (_mm512_loadu_ps (a + i), _mm512_loadu_ps (b + i), s0);
        i += 16;
    }
    if (i < dim) {
        __mmask16 m = qv_dist_tail_mask512 (dim - i);
        s1 = _mm512_fmadd_ps (_mm512_maskz_loadu_ps (m, a + i), _mm512_maskz_loadu_ps (m, b + i), s1);
    }
    return _mm512_reduce_add_ps (_mm512_add_ps (s0, s1));
}

#endif
#endif
