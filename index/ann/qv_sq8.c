//  Scalar quantizer: per-dimension min/max, 8-bit codes, and the query-vs-code kernels (serial, AVX2, AVX-512).
#include "qv_sq8.h"
#include "qv_rc.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "qv_dist_inline.h"     //  immintrin.h and qv_dist_hsum256 on x86

struct _qv_sq8_t {
    size_t dim;
    float *vmin;                    //  per-dimension minimum seen in training
    float *step;                    //  per-dimension (max - min) / 255; 0 for a constant dimension
};

qv_sq8_t *
qv_sq8_new (size_t dim)
{
    if (dim == 0)
        return NULL;
    qv_sq8_t *self = (qv_sq8_t *) calloc (1, sizeof (qv_sq8_t));
    if (!self)
        return NULL;
    self->dim = dim;
    self->vmin = (float *) calloc (dim, sizeof (float));
    self->step = (float *) calloc (dim, sizeof (float));
    if (!self->vmin || !self->step)
        qv_sq8_destroy (&self);
    return self;
}

qv_sq8_t *
qv_sq8_new_from (size_t dim, const float *vmin, const float *step)
{
    for (size_t d = 0; d < dim; d++)
        if (!isfinite (vmin [d]) || !isfinite (step [d]) || step [d] < 0)
            return NULL;
    qv_sq8_t *self = qv_sq8_new (dim);
    if (self) {
        memcpy (self->vmin, vmin, dim * sizeof (float));
        memcpy (self->step, step, dim * sizeof (float));
    }
    return self;
}

void
qv_sq8_destroy (qv_sq8_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    qv_sq8_t *self = *self_p;
    free (self->vmin);
    free (self->step);
    free (self);
    *self_p = NULL;
}

int
qv_sq8_train (qv_sq8_t *self, const float *data, size_t n)
{
    if (n == 0)
        return qv_err (QV_EINVAL, "SQ8: cannot train on 0 vectors");
    size_t dim = self->dim;
    float *vmax = (float *) malloc (dim * sizeof (float));
    if (!vmax)
        return qv_err (QV_ENOMEM, "SQ8: out of memory");
    memcpy (self->vmin, data, dim * sizeof (float));
    memcpy (vmax, data, dim * sizeof (float));
    for (size_t i = 0; i < n; i++) {
        const float *x = data + i * dim;
        for (size_t d = 0; d < dim; d++) {
            if (!isfinite (x [d])) {
                free (vmax);
                return qv_err (QV_EINVAL, "SQ8: training vector %zu has a non-finite value in dimension %zu", i, d);
            }
            if (x [d] < self->vmin [d])
                self->vmin [d] = x [d];
            if (x [d] > vmax [d])
                vmax [d] = x [d];
        }
    }
    for (size_t d = 0; d < dim; d++)
        self->step [d] = (vmax [d] - self->vmin [d]) / 255.0f;
    free (vmax);
    return 0;
}

size_t
qv_sq8_dim (const qv_sq8_t *self)
{
    return self->dim;
}

const float *
qv_sq8_vmin (const qv_sq8_t *self)
{
    return self->vmin;
}

const float *
qv_sq8_step (const qv_sq8_t *self)
{
    return self->step;
}

void
qv_sq8_encode (const qv_sq8_t *self, const float *x, size_t n, uint8_t *codes)
{
    size_t dim = self->dim;
    for (size_t i = 0; i < n; i++)
        for (size_t d = 0; d < dim; d++) {
            float v = x [i * dim + d] - self->vmin [d];
            float c = self->step [d] > 0 ? v / self->step [d] : 0;
            //  NaN and below-range values go to 0, above-range ones to 255.
            codes [i * dim + d] = c >= 255.0f ? 255 : c > 0 ? (uint8_t) lrintf (c) : 0;
        }
}

void
qv_sq8_decode (const qv_sq8_t *self, const uint8_t *codes, size_t n, float *x)
{
    size_t dim = self->dim;
    for (size_t i = 0; i < n; i++)
        for (size_t d = 0; d < dim; d++)
            x [i * dim + d] = self->vmin [d] + self->step [d] * codes [i * dim + d];
}

void
qv_sq8_query_prepare (const qv_sq8_t *self, qv_metric_t metric, const float *q,
                      float *buffer, qv_sq8_query_t *query)
{
    size_t dim = self->dim;
    query->metric = metric == QV_METRIC_L2 ? QV_METRIC_L2 : QV_METRIC_IP;
    query->dim = dim;
    query->a = buffer;
    query->step = self->step;
    query->bias = 0;
    if (query->metric == QV_METRIC_L2)
        for (size_t d = 0; d < dim; d++)
            buffer [d] = q [d] - self->vmin [d];
    else {
        double bias = 0;
        for (size_t d = 0; d < dim; d++) {
            buffer [d] = q [d] * self->step [d];
            bias += (double) q [d] * self->vmin [d];
        }
        query->bias = (float) bias;
    }
}

void
qv_sq8_query_scan (const qv_sq8_query_t *query, const uint8_t *codes, size_t n, float *out)
{
    const qv_sq8_kernels_t *kernels = qv_sq8_kernels ();
    size_t dim = query->dim;
    if (query->metric == QV_METRIC_L2)
        for (size_t i = 0; i < n; i++)
            out [i] = kernels->l2 (query->a, query->step, codes + i * dim, dim);
    else
        for (size_t i = 0; i < n; i++)
            out [i] = query->bias + kernels->ip (query->a, codes + i * dim, dim);
}

//  --------------------------------------------------------------------------
//  Kernels

float
qv_sq8_l2_serial (const float *a, const float *step, const uint8_t *code, size_t dim)
{
    float sum = 0;
    for (size_t d = 0; d < dim; d++) {
        float t = a [d] - step [d] * (float) code [d];
        sum += t * t;
    }
    return sum;
}

float
qv_sq8_ip_serial (const float *a, const uint8_t *code, size_t dim)
{
    float sum = 0;
    for (size_t d = 0; d < dim; d++)
        sum += a [d] * (float) code [d];
    return sum;
}

#if defined(QV_DIST_HAVE_X86)


//  Eight codes widened to eight floats.
__attribute__ ((target ("avx2,fma")))
static inline __m256
s_load8_avx2 (const uint8_t *code)
{
    __m128i bytes = _mm_loadl_epi64 ((const __m128i *) code);
    return _mm256_cvtepi32_ps (_mm256_cvtepu8_epi32 (bytes));
}

__attribute__ ((target ("avx2,fma")))
float
qv_sq8_l2_avx2 (const float *a, const float *step, const uint8_t *code, size_t dim)
{
    __m256 acc0 = _mm256_setzero_ps ();
    __m256 acc1 = _mm256_setzero_ps ();
    size_t d = 0;
    for (; d + 16 <= dim; d += 16) {
        __m256 t0 = _mm256_fnmadd_ps (_mm256_loadu_ps (step + d), s_load8_avx2 (code + d),
                                      _mm256_loadu_ps (a + d));
        __m256 t1 = _mm256_fnmadd_ps (_mm256_loadu_ps (step + d + 8), s_load8_avx2 (code + d + 8),
                                      _mm256_loadu_ps (a + d + 8));
        acc0 = _mm256_fmadd_ps (t0, t0, acc0);
        acc1 = _mm256_fmadd_ps (t1, t1, acc1);
    }
    if (d + 8 <= dim) {
        __m256 t0 = _mm256_fnmadd_ps (_mm256_loadu_ps (step + d), s_load8_avx2 (code + d),
                                      _mm256_loadu_ps (a + d));
        acc0 = _mm256_fmadd_ps (t0, t0, acc0);
        d += 8;
    }
    float sum = qv_dist_hsum256 (_mm256_add_ps (acc0, acc1));
    for (; d < dim; d++) {
        float t = a [d] - step [d] * (float) code [d];
        sum += t * t;
    }
    return sum;
}

__attribute__ ((target ("avx2,fma")))
float
qv_sq8_ip_avx2 (const float *a, const uint8_t *code, size_t dim)
{
    __m256 acc0 = _mm256_setzero_ps ();
    __m256 acc1 = _mm256_setzero_ps ();
    size_t d = 0;
    for (; d + 16 <= dim; d += 16) {
        acc0 = _mm256_fmadd_ps (_mm256_loadu_ps (a + d), s_load8_avx2 (code + d), acc0);
        acc1 = _mm256_fmadd_ps (_mm256_loadu_ps (a + d + 8), s_load8_avx2 (code + d + 8), acc1);
    }
    if (d + 8 <= dim) {
        acc0 = _mm256_fmadd_ps (_mm256_loadu_ps (a + d), s_load8_avx2 (code + d), acc0);
        d += 8;
    }
    float sum = qv_dist_hsum256 (_mm256_add_ps (acc0, acc1));
    for (; d < dim; d++)
        sum += a [d] * (float) code [d];
    return sum;
}

//  Sixteen codes widened to sixteen floats.
__attribute__ ((target ("avx512f")))
static inline __m512
s_load16_avx512 (const uint8_t *code)
{
    __m128i bytes = _mm_loadu_si128 ((const __m128i *) code);
    return _mm512_cvtepi32_ps (_mm512_cvtepu8_epi32 (bytes));
}

__attribute__ ((target ("avx512f")))
float
qv_sq8_l2_avx512 (const float *a, const float *step, const uint8_t *code, size_t dim)
{
    __m512 acc0 = _mm512_setzero_ps ();
    __m512 acc1 = _mm512_setzero_ps ();
    size_t d = 0;
    for (; d + 32 <= dim; d += 32) {
        __m512 t0 = _mm512_fnmadd_ps (_mm512_loadu_ps (step + d), s_load16_avx512 (code + d),
                                      _mm512_loadu_ps (a + d));
        __m512 t1 = _mm512_fnmadd_ps (_mm512_loadu_ps (step + d + 16), s_load16_avx512 (code + d + 16),
                                      _mm512_loadu_ps (a + d + 16));
        acc0 = _mm512_fmadd_ps (t0, t0, acc0);
        acc1 = _mm512_fmadd_ps (t1, t1, acc1);
    }
    if (d + 16 <= dim) {
        __m512 t0 = _mm512_fnmadd_ps (_mm512_loadu_ps (step + d), s_load16_avx512 (code + d),
                                      _mm512_loadu_ps (a + d));
        acc0 = _mm512_fmadd_ps (t0, t0, acc0);
        d += 16;
    }
    float sum = _mm512_reduce_add_ps (_mm512_add_ps (acc0, acc1));
    for (; d < dim; d++) {
        float t = a [d] - step [d] * (float) code [d];
        sum += t * t;
    }
    return sum;
}

__attribute__ ((target ("avx512f")))
float
qv_sq8_ip_avx512 (const float *a, const uint8_t *code, size_t dim)
{
    __m512 acc0 = _mm512_setzero_ps ();
    __m512 acc1 = _mm512_setzero_ps ();
    size_t d = 0;
    for (; d + 32 <= dim; d += 32) {
        acc0 = _mm512_fmadd_ps (_mm512_loadu_ps (a + d), s_load16_avx512 (code + d), acc0);
        acc1 = _mm512_fmadd_ps (_mm512_loadu_ps (a + d + 16), s_load16_avx512 (code + d + 16), acc1);
    }
    if (d + 16 <= dim) {
        acc0 = _mm512_fmadd_ps (_mm512_loadu_ps (a + d), s_load16_avx512 (code + d), acc0);
        d += 16;
    }
    float sum = _mm512_reduce_add_ps (_mm512_add_ps (acc0, acc1));
    for (; d < dim; d++)
        sum += a [d] * (float) code [d];
    return sum;
}

#else

float qv_sq8_l2_avx2 (const float *a, const float *step, const uint8_t *code, size_t dim) { return qv_sq8_l2_serial (a, step, code, dim); }
float qv_sq8_l2_avx512 (const float *a, const float *step, const uint8_t *code, size_t dim) { return qv_sq8_l2_serial (a, step, code, dim); }
float qv_sq8_ip_avx2 (const float *a, const uint8_t *code, size_t dim) { return qv_sq8_ip_serial (a, code, dim); }
float qv_sq8_ip_avx512 (const float *a, const uint8_t *code, size_t dim) { return qv_sq8_ip_serial (a, code, dim); }

#endif

//  --------------------------------------------------------------------------
//  Dispatch: follow the instruction set the distance kernels chose.

static qv_sq8_kernels_t s_kernels;
static pthread_once_t s_kernels_once = PTHREAD_ONCE_INIT;

static void
s_kernels_pick (void)
{
    const char *isa = qv_dist_kernels ()->isa;
    if (strcmp (isa, "avx512") == 0)
        s_kernels = (qv_sq8_kernels_t) { "avx512", qv_sq8_l2_avx512, qv_sq8_ip_avx512 };
    else
    if (strcmp (isa, "avx2") == 0)
        s_kernels = (qv_sq8_kernels_t) { "avx2", qv_sq8_l2_avx2, qv_sq8_ip_avx2 };
    else
        s_kernels = (qv_sq8_kernels_t) { "serial", qv_sq8_l2_serial, qv_sq8_ip_serial };
}

const qv_sq8_kernels_t *
qv_sq8_kernels (void)
{
    pthread_once (&s_kernels_once, s_kernels_pick);
    return &s_kernels;
}
