//  Distance kernels over float32 vectors: serial reference, AVX2+FMA and AVX-512F.
//
//  DESIGN
//  Each kernel exists once per instruction set; the SIMD ones are compiled with a
//  per-function target attribute, so the library itself builds for plain x86-64 and
//  the choice is made at run time (qv_dist_kernels, once, under pthread_once) from
//  what the CPU and OS support, capped by QV_SIMD=serial|avx2|avx512.
//  Tails (dim not a multiple of the vector width) use masked loads, never a read
//  past the end of a vector.
//  The batch kernels compare one query with n rows stored back to back: the query
//  stays in registers (dim <= 64 for AVX-512) or L1, four rows are processed per
//  pass so each query load feeds four FMAs, and rows a few hundred bytes ahead are
//  prefetched so the scan runs at memory bandwidth.
#include "qv_dist.h"
#include "qv_dist_inline.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#if defined(__x86_64__) || defined(__i386__)
#   include <immintrin.h>
#   define QV_X86 1
#else
#   define QV_X86 0
#endif

//  --------------------------------------------------------------------------
//  Serial reference

float
qv_dist_l2sq_f32_serial (const float *a, const float *b, size_t dim)
{
    float sum = 0;
    for (size_t i = 0; i < dim; i++) {
        float d = a [i] - b [i];
        sum += d * d;
    }
    return sum;
}

float
qv_dist_ip_f32_serial (const float *a, const float *b, size_t dim)
{
    float sum = 0;
    for (size_t i = 0; i < dim; i++)
        sum += a [i] * b [i];
    return sum;
}

void
qv_dist_l2sq_f32_batch_serial (const float *q, const float *base, size_t n, size_t dim, float *out)
{
    for (size_t i = 0; i < n; i++)
        out [i] = qv_dist_l2sq_f32_serial (q, base + i * dim, dim);
}

void
qv_dist_ip_f32_batch_serial (const float *q, const float *base, size_t n, size_t dim, float *out)
{
    for (size_t i = 0; i < n; i++)
        out [i] = qv_dist_ip_f32_serial (q, base + i * dim, dim);
}

float
qv_dist_norm (const float *a, size_t dim)
{
    return sqrtf (qv_dist_kernels ()->ip (a, a, dim));
}

#if QV_X86

//  How far ahead the batch kernels prefetch, in bytes. Large enough to cover memory
//  latency at full bandwidth (~100 ns x ~20 GB/s ≈ 2 KB), small enough to stay in L1.
#define QV_PREFETCH_BYTES 1536

//  --------------------------------------------------------------------------
//  AVX2 + FMA

#define QV_AVX2 __attribute__ ((target ("avx2,fma")))

QV_AVX2 float
qv_dist_l2sq_f32_avx2 (const float *a, const float *b, size_t dim)
{
    return qv_dist_l2sq_f32_avx2_inline (a, b, dim);
}

QV_AVX2 float
qv_dist_ip_f32_avx2 (const float *a, const float *b, size_t dim)
{
    return qv_dist_ip_f32_avx2_inline (a, b, dim);
}

//  Prefetches the bytes of rows [from, to) that lie QV_PREFETCH_BYTES ahead.
static inline void
s_prefetch_span (const float *p, size_t bytes, const float *end)
{
    const char *c = (const char *) p;
    const char *e = (const char *) end;
    for (size_t off = 0; off < bytes; off += 64)
        if (c + off < e)
            _mm_prefetch (c + off, _MM_HINT_T0);
}

//  Four rows against the query, one query load per four FMAs. is_l2 is a
//  compile-time constant at each call site, so the branch folds away.
QV_AVX2 static inline void
s_batch4_avx2 (const float *q, const float *r, size_t dim, float *out, int is_l2)
{
    const float *r0 = r, *r1 = r + dim, *r2 = r + 2 * dim, *r3 = r + 3 * dim;
    __m256 s0 = _mm256_setzero_ps (), s1 = _mm256_setzero_ps ();
    __m256 s2 = _mm256_setzero_ps (), s3 = _mm256_setzero_ps ();
    size_t i = 0;
    for (; i + 8 <= dim; i += 8) {
        __m256 x = _mm256_loadu_ps (q + i);
        __m256 a0 = _mm256_loadu_ps (r0 + i), a1 = _mm256_loadu_ps (r1 + i);
        __m256 a2 = _mm256_loadu_ps (r2 + i), a3 = _mm256_loadu_ps (r3 + i);
        if (is_l2) {
            a0 = _mm256_sub_ps (x, a0); a1 = _mm256_sub_ps (x, a1);
            a2 = _mm256_sub_ps (x, a2); a3 = _mm256_sub_ps (x, a3);
            s0 = _mm256_fmadd_ps (a0, a0, s0); s1 = _mm256_fmadd_ps (a1, a1, s1);
            s2 = _mm256_fmadd_ps (a2, a2, s2); s3 = _mm256_fmadd_ps (a3, a3, s3);
        }
        else {
            s0 = _mm256_fmadd_ps (x, a0, s0); s1 = _mm256_fmadd_ps (x, a1, s1);
            s2 = _mm256_fmadd_ps (x, a2, s2); s3 = _mm256_fmadd_ps (x, a3, s3);
        }
    }
    if (i < dim) {
        __m256i m = qv_dist_tail_mask256 (dim - i);
        __m256 x = _mm256_maskload_ps (q + i, m);
        __m256 a0 = _mm256_maskload_ps (r0 + i, m), a1 = _mm256_maskload_ps (r1 + i, m);
        __m256 a2 = _mm256_maskload_ps (r2 + i, m), a3 = _mm256_maskload_ps (r3 + i, m);
        if (is_l2) {
            a0 = _mm256_sub_ps (x, a0); a1 = _mm256_sub_ps (x, a1);
            a2 = _mm256_sub_ps (x, a2); a3 = _mm256_sub_ps (x, a3);
            s0 = _mm256_fmadd_ps (a0, a0, s0); s1 = _mm256_fmadd_ps (a1, a1, s1);
            s2 = _mm256_fmadd_ps (a2, a2, s2); s3 = _mm256_fmadd_ps (a3, a3, s3);
        }
        else {
            s0 = _mm256_fmadd_ps (x, a0, s0); s1 = _mm256_fmadd_ps (x, a1, s1);
            s2 = _mm256_fmadd_ps (x, a2, s2); s3 = _mm256_fmadd_ps (x, a3, s3);
        }
    }
    out [0] = qv_dist_hsum256 (s0);
    out [1] = qv_dist_hsum256 (s1);
    out [2] = qv_dist_hsum256 (s2);
    out [3] = qv_dist_hsum256 (s3);
}

QV_AVX2 static inline void
s_batch_avx2 (const float *q, const float *base, size_t n, size_t dim, float *out, int is_l2)
{
    const float *end = base + n * dim;
    size_t row_bytes = dim * sizeof (float);
    size_t i = 0;
    for (; i + 4 <= n; i += 4) {
        const float *r = base + i * dim;
        s_prefetch_span ((const float *) ((const char *) r + QV_PREFETCH_BYTES), 4 * row_bytes, end);
        s_batch4_avx2 (q, r, dim, out + i, is_l2);
    }
    for (; i < n; i++)
        out [i] = is_l2? qv_dist_l2sq_f32_avx2 (q, base + i * dim, dim)
                       : qv_dist_ip_f32_avx2 (q, base + i * dim, dim);
}

QV_AVX2 void
qv_dist_l2sq_f32_batch_avx2 (const float *q, const float *base, size_t n, size_t dim, float *out)
{
    s_batch_avx2 (q, base, n, dim, out, 1);
}

QV_AVX2 void
qv_dist_ip_f32_batch_avx2 (const float *q, const float *base, size_t n, size_t dim, float *out)
{
    s_batch_avx2 (q, base, n, dim, out, 0);
}

//  --------------------------------------------------------------------------
//  AVX-512F

#define QV_AVX512 __attribute__ ((target ("avx512f")))

QV_AVX512 float
qv_dist_l2sq_f32_avx512 (const float *a, const float *b, size_t dim)
{
    return qv_dist_l2sq_f32_avx512_inline (a, b, dim);
}

QV_AVX512 float
qv_dist_ip_f32_avx512 (const float *a, const float *b, size_t dim)
{
    return qv_dist_ip_f32_avx512_inline (a, b, dim);
}

QV_AVX512 static inline void
s_batch4_avx512 (const float *q, const float *r, size_t dim, float *out, int is_l2)
{
    const float *r0 = r, *r1 = r + dim, *r2 = r + 2 * dim, *r3 = r + 3 * dim;
    __m512 s0 = _mm512_setzero_ps (), s1 = _mm512_setzero_ps ();
    __m512 s2 = _mm512_setzero_ps (), s3 = _mm512_setzero_ps ();
    size_t i = 0;
    for (; i < dim; i += 16) {
        __mmask16 m = dim - i >= 16? (__mmask16) 0xFFFF: qv_dist_tail_mask512 (dim - i);
        __m512 x = _mm512_maskz_loadu_ps (m, q + i);
        __m512 a0 = _mm512_maskz_loadu_ps (m, r0 + i), a1 = _mm512_maskz_loadu_ps (m, r1 + i);
        __m512 a2 = _mm512_maskz_loadu_ps (m, r2 + i), a3 = _mm512_maskz_loadu_ps (m, r3 + i);
        if (is_l2) {
            a0 = _mm512_sub_ps (x, a0); a1 = _mm512_sub_ps (x, a1);
            a2 = _mm512_sub_ps (x, a2); a3 = _mm512_sub_ps (x, a3);
            s0 = _mm512_fmadd_ps (a0, a0, s0); s1 = _mm512_fmadd_ps (a1, a1, s1);
            s2 = _mm512_fmadd_ps (a2, a2, s2); s3 = _mm512_fmadd_ps (a3, a3, s3);
        }
        else {
            s0 = _mm512_fmadd_ps (x, a0, s0); s1 = _mm512_fmadd_ps (x, a1, s1);
            s2 = _mm512_fmadd_ps (x, a2, s2); s3 = _mm512_fmadd_ps (x, a3, s3);
        }
    }
    out [0] = _mm512_reduce_add_ps (s0);
    out [1] = _mm512_reduce_add_ps (s1);
    out [2] = _mm512_reduce_add_ps (s2);
    out [3] = _mm512_reduce_add_ps (s3);
}

QV_AVX512 static inline void
s_batch_avx512 (const float *q, const float *base, size_t n, size_t dim, float *out, int is_l2)
{
    const float *end = base + n * dim;
    size_t row_bytes = dim * sizeof (float);
    size_t i = 0;
    for (; i + 4 <= n; i += 4) {
        const float *r = base + i * dim;
        s_prefetch_span ((const float *) ((const char *) r + QV_PREFETCH_BYTES), 4 * row_bytes, end);
        s_batch4_avx512 (q, r, dim, out + i, is_l2);
    }
    for (; i < n; i++)
        out [i] = is_l2? qv_dist_l2sq_f32_avx512 (q, base + i * dim, dim)
                       : qv_dist_ip_f32_avx512 (q, base + i * dim, dim);
}

QV_AVX512 void
qv_dist_l2sq_f32_batch_avx512 (const float *q, const float *base, size_t n, size_t dim, float *out)
{
    s_batch_avx512 (q, base, n, dim, out, 1);
}

QV_AVX512 void
qv_dist_ip_f32_batch_avx512 (const float *q, const float *base, size_t n, size_t dim, float *out)
{
    s_batch_avx512 (q, base, n, dim, out, 0);
}

int
qv_dist_cpu_has (const char *isa)
{
    __builtin_cpu_init ();
    if (strcmp (isa, "avx2") == 0)
        return __builtin_cpu_supports ("avx2") && __builtin_cpu_supports ("fma");
    if (strcmp (isa, "avx512") == 0)
        return __builtin_cpu_supports ("avx512f")
            && __builtin_cpu_supports ("avx2") && __builtin_cpu_supports ("fma");
    if (strcmp (isa, "serial") == 0)
        return 1;
    return 0;
}

#else   //  not x86: the SIMD names exist so callers link, and never get picked

float qv_dist_l2sq_f32_avx2 (const float *a, const float *b, size_t d) { return qv_dist_l2sq_f32_serial (a, b, d); }
float qv_dist_ip_f32_avx2 (const float *a, const float *b, size_t d) { return qv_dist_ip_f32_serial (a, b, d); }
float qv_dist_l2sq_f32_avx512 (const float *a, const float *b, size_t d) { return qv_dist_l2sq_f32_serial (a, b, d); }
float qv_dist_ip_f32_avx512 (const float *a, const float *b, size_t d) { return qv_dist_ip_f32_serial (a, b, d); }
void qv_dist_l2sq_f32_batch_avx2 (const float *q, const float *b, size_t n, size_t d, float *o) { qv_dist_l2sq_f32_batch_serial (q, b, n, d, o); }
void qv_dist_ip_f32_batch_avx2 (const float *q, const float *b, size_t n, size_t d, float *o) { qv_dist_ip_f32_batch_serial (q, b, n, d, o); }
void qv_dist_l2sq_f32_batch_avx512 (const float *q, const float *b, size_t n, size_t d, float *o) { qv_dist_l2sq_f32_batch_serial (q, b, n, d, o); }
void qv_dist_ip_f32_batch_avx512 (const float *q, const float *b, size_t n, size_t d, float *o) { qv_dist_ip_f32_batch_serial (q, b, n, d, o); }

int
qv_dist_cpu_has (const char *isa)
{
    return strcmp (isa, "serial") == 0;
}

#endif

//  --------------------------------------------------------------------------
//  Dispatch

static const qv_dist_kernels_t s_serial = {
    "serial", qv_dist_l2sq_f32_serial, qv_dist_ip_f32_serial,
    qv_dist_l2sq_f32_batch_serial, qv_dist_ip_f32_batch_serial
};
static const qv_dist_kernels_t s_avx2 = {
    "avx2", qv_dist_l2sq_f32_avx2, qv_dist_ip_f32_avx2,
    qv_dist_l2sq_f32_batch_avx2, qv_dist_ip_f32_batch_avx2
};
static const qv_dist_kernels_t s_avx512 = {
    "avx512", qv_dist_l2sq_f32_avx512, qv_dist_ip_f32_avx512,
    qv_dist_l2sq_f32_batch_avx512, qv_dist_ip_f32_batch_avx512
};

static pthread_once_t s_once = PTHREAD_ONCE_INIT;
static const qv_dist_kernels_t *s_chosen = &s_serial;

static void
s_choose (void)
{
    //  Cap: 0 serial, 1 avx2, 2 avx512. An unknown QV_SIMD value is ignored.
    int cap = 2;
    const char *env = getenv ("QV_SIMD");
    if (env) {
        if (strcasecmp (env, "serial") == 0)
            cap = 0;
        else
        if (strcasecmp (env, "avx2") == 0)
            cap = 1;
    }
    if (cap >= 2 && qv_dist_cpu_has ("avx512"))
        s_chosen = &s_avx512;
    else
    if (cap >= 1 && qv_dist_cpu_has ("avx2"))
        s_chosen = &s_avx2;
    else
        s_chosen = &s_serial;
}

const qv_dist_kernels_t *
qv_dist_kernels (void)
{
    pthread_once (&s_once, s_choose);
    return s_chosen;
}
