//  Product quantizer (nbits = 8): k-means codebooks, encoding, lookup tables and table-scan kernels.
//
//  DESIGN
//  A vector of dim floats is cut into m sub-vectors of dsub = dim / m floats; sub-vector
//  j is replaced by the index of its nearest of 256 centroids learned by k-means on the
//  training set's sub-vectors j, so a code is m bytes. The distance from a float query
//  to a code is asymmetric (the query is not quantized): qv_pq_lut computes, once per
//  query, the m x 256 table of partial distances, and a scan adds m table entries per
//  code. The scan kernels gather 8 (AVX2) or 16 (AVX-512) table entries per
//  instruction from one code's bytes; the table (m KiB) stays in L1/L2.
#include "qv_pq.h"
#include "qv_rc.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "qv_dist_inline.h"     //  immintrin.h and qv_dist_hsum256 on x86

struct _qv_pq_t {
    size_t dim;
    size_t m;                       //  sub-quantizers = code bytes
    size_t dsub;                    //  dim / m
    float *codebooks;               //  m * 256 * dsub: centroid c of sub-quantizer j at (j * 256 + c) * dsub
};

qv_pq_t *
qv_pq_new (size_t dim, size_t m)
{
    if (m == 0 || dim == 0 || dim % m != 0)
        return NULL;
    qv_pq_t *self = (qv_pq_t *) calloc (1, sizeof (qv_pq_t));
    if (!self)
        return NULL;
    self->dim = dim;
    self->m = m;
    self->dsub = dim / m;
    self->codebooks = (float *) calloc (m * QV_PQ_KSUB * self->dsub, sizeof (float));
    if (!self->codebooks)
        qv_pq_destroy (&self);
    return self;
}

qv_pq_t *
qv_pq_new_from (size_t dim, size_t m, const float *codebooks)
{
    qv_pq_t *self = qv_pq_new (dim, m);
    if (!self)
        return NULL;
    size_t count = m * QV_PQ_KSUB * self->dsub;
    for (size_t i = 0; i < count; i++)
        if (!isfinite (codebooks [i])) {
            qv_pq_destroy (&self);
            return NULL;
        }
    memcpy (self->codebooks, codebooks, count * sizeof (float));
    return self;
}

void
qv_pq_destroy (qv_pq_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    qv_pq_t *self = *self_p;
    free (self->codebooks);
    free (self);
    *self_p = NULL;
}

int
qv_pq_train (qv_pq_t *self, const float *data, size_t n, const qv_kmeans_params_t *params)
{
    if (n < QV_PQ_KSUB)
        return qv_err (QV_EINVAL, "PQ: %zu training vectors, need at least %d", n, QV_PQ_KSUB);
    qv_kmeans_params_t kparams;
    if (params)
        kparams = *params;
    else
        qv_kmeans_params_default (&kparams);
    kparams.spherical = false;      //  sub-vectors are never normalised

    //  k-means samples at most 256 * max_points_per_centroid rows: extract only those.
    size_t cap = kparams.max_points_per_centroid
               ? QV_PQ_KSUB * kparams.max_points_per_centroid : n;
    size_t ns = n < cap ? n : cap;
    size_t dsub = self->dsub;
    float *sub = (float *) malloc (ns * dsub * sizeof (float));
    if (!sub)
        return qv_err (QV_ENOMEM, "PQ: out of memory for %zu training vectors", ns);
    int rc = 0;
    for (size_t j = 0; j < self->m && rc == 0; j++) {
        //  An even stride over the rows is a fair sample for training data that is
        //  itself a sample; k-means draws its own initial centroids from it.
        for (size_t i = 0; i < ns; i++) {
            size_t row = ns == n ? i : (size_t) ((double) i * n / ns);
            memcpy (sub + i * dsub, data + row * self->dim + j * dsub, dsub * sizeof (float));
        }
        kparams.seed += j;
        rc = qv_kmeans_train (sub, ns, dsub, QV_PQ_KSUB, &kparams,
                              self->codebooks + j * QV_PQ_KSUB * dsub);
    }
    free (sub);
    return rc;
}

size_t
qv_pq_dim (const qv_pq_t *self)
{
    return self->dim;
}

size_t
qv_pq_m (const qv_pq_t *self)
{
    return self->m;
}

const float *
qv_pq_codebooks (const qv_pq_t *self)
{
    return self->codebooks;
}

int
qv_pq_encode (const qv_pq_t *self, const float *x, size_t n, uint8_t *codes)
{
    const qv_dist_kernels_t *kernels = qv_dist_kernels ();
    float dists [QV_PQ_KSUB];
    size_t dsub = self->dsub;
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < self->m; j++) {
            kernels->l2sq_batch (x + i * self->dim + j * dsub,
                                 self->codebooks + j * QV_PQ_KSUB * dsub,
                                 QV_PQ_KSUB, dsub, dists);
            size_t best = 0;
            for (size_t c = 1; c < QV_PQ_KSUB; c++)
                if (dists [c] < dists [best])
                    best = c;
            codes [i * self->m + j] = (uint8_t) best;
        }
    return 0;
}

void
qv_pq_decode (const qv_pq_t *self, const uint8_t *codes, size_t n, float *x)
{
    size_t dsub = self->dsub;
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < self->m; j++)
            memcpy (x + i * self->dim + j * dsub,
                    self->codebooks + (j * QV_PQ_KSUB + codes [i * self->m + j]) * dsub,
                    dsub * sizeof (float));
}

void
qv_pq_lut (const qv_pq_t *self, qv_metric_t metric, const float *q, float *lut)
{
    const qv_dist_kernels_t *kernels = qv_dist_kernels ();
    size_t dsub = self->dsub;
    for (size_t j = 0; j < self->m; j++) {
        const float *book = self->codebooks + j * QV_PQ_KSUB * dsub;
        if (metric == QV_METRIC_L2)
            kernels->l2sq_batch (q + j * dsub, book, QV_PQ_KSUB, dsub, lut + j * QV_PQ_KSUB);
        else
            kernels->ip_batch (q + j * dsub, book, QV_PQ_KSUB, dsub, lut + j * QV_PQ_KSUB);
    }
}

//  --------------------------------------------------------------------------
//  Table-scan kernels

void
qv_pq_scan_serial (const float *lut, const uint8_t *codes, size_t n, size_t m, float *out)
{
    for (size_t i = 0; i < n; i++) {
        const uint8_t *code = codes + i * m;
        float sum = 0;
        for (size_t j = 0; j < m; j++)
            sum += lut [j * QV_PQ_KSUB + code [j]];
        out [i] = sum;
    }
}

void
qv_pq_lut_add_serial (const float *a, const float *b, float scale, size_t n, float *out)
{
    for (size_t e = 0; e < n; e++)
        out [e] = a [e] + scale * b [e];
}

#if defined(QV_DIST_HAVE_X86)


//  Per code: bytes j..j+7 become table indices (j + l) * 256 + byte, gathered 8 at a time.
__attribute__ ((target ("avx2,fma")))
void
qv_pq_scan_avx2 (const float *lut, const uint8_t *codes, size_t n, size_t m, float *out)
{
    const __m256i lane_offsets = _mm256_setr_epi32 (0, 256, 512, 768, 1024, 1280, 1536, 1792);
    const __m256i chunk_step = _mm256_set1_epi32 (8 * QV_PQ_KSUB);
    for (size_t i = 0; i < n; i++) {
        const uint8_t *code = codes + i * m;
        __m256 acc = _mm256_setzero_ps ();
        __m256i offsets = lane_offsets;
        size_t j = 0;
        for (; j + 8 <= m; j += 8) {
            __m256i idx = _mm256_cvtepu8_epi32 (_mm_loadl_epi64 ((const __m128i *) (code + j)));
            idx = _mm256_add_epi32 (idx, offsets);
            acc = _mm256_add_ps (acc, _mm256_i32gather_ps (lut, idx, 4));
            offsets = _mm256_add_epi32 (offsets, chunk_step);
        }
        float sum = qv_dist_hsum256 (acc);
        for (; j < m; j++)
            sum += lut [j * QV_PQ_KSUB + code [j]];
        out [i] = sum;
    }
}

__attribute__ ((target ("avx512f")))
void
qv_pq_scan_avx512 (const float *lut, const uint8_t *codes, size_t n, size_t m, float *out)
{
    const __m512i lane_offsets = _mm512_setr_epi32 (
        0, 256, 512, 768, 1024, 1280, 1536, 1792,
        2048, 2304, 2560, 2816, 3072, 3328, 3584, 3840);
    const __m512i chunk_step = _mm512_set1_epi32 (16 * QV_PQ_KSUB);
    for (size_t i = 0; i < n; i++) {
        const uint8_t *code = codes + i * m;
        __m512 acc = _mm512_setzero_ps ();
        __m512i offsets = lane_offsets;
        size_t j = 0;
        for (; j + 16 <= m; j += 16) {
            __m512i idx = _mm512_cvtepu8_epi32 (_mm_loadu_si128 ((const __m128i *) (code + j)));
            idx = _mm512_add_epi32 (idx, offsets);
            acc = _mm512_add_ps (acc, _mm512_i32gather_ps (idx, lut, 4));
            offsets = _mm512_add_epi32 (offsets, chunk_step);
        }
        float sum = _mm512_reduce_add_ps (acc);
        for (; j < m; j++)
            sum += lut [j * QV_PQ_KSUB + code [j]];
        out [i] = sum;
    }
}

__attribute__ ((target ("avx2,fma")))
void
qv_pq_lut_add_avx2 (const float *a, const float *b, float scale, size_t n, float *out)
{
    const __m256 s = _mm256_set1_ps (scale);
    size_t e = 0;
    for (; e + 8 <= n; e += 8)
        _mm256_storeu_ps (out + e, _mm256_fmadd_ps (s, _mm256_loadu_ps (b + e), _mm256_loadu_ps (a + e)));
    for (; e < n; e++)
        out [e] = a [e] + scale * b [e];
}

__attribute__ ((target ("avx512f")))
void
qv_pq_lut_add_avx512 (const float *a, const float *b, float scale, size_t n, float *out)
{
    const __m512 s = _mm512_set1_ps (scale);
    size_t e = 0;
    for (; e + 16 <= n; e += 16)
        _mm512_storeu_ps (out + e, _mm512_fmadd_ps (s, _mm512_loadu_ps (b + e), _mm512_loadu_ps (a + e)));
    for (; e < n; e++)
        out [e] = a [e] + scale * b [e];
}

#else

void
qv_pq_lut_add_avx2 (const float *a, const float *b, float scale, size_t n, float *out)
{
    qv_pq_lut_add_serial (a, b, scale, n, out);
}

void
qv_pq_lut_add_avx512 (const float *a, const float *b, float scale, size_t n, float *out)
{
    qv_pq_lut_add_serial (a, b, scale, n, out);
}

void
qv_pq_scan_avx2 (const float *lut, const uint8_t *codes, size_t n, size_t m, float *out)
{
    qv_pq_scan_serial (lut, codes, n, m, out);
}

void
qv_pq_scan_avx512 (const float *lut, const uint8_t *codes, size_t n, size_t m, float *out)
{
    qv_pq_scan_serial (lut, codes, n, m, out);
}

#endif

//  --------------------------------------------------------------------------
//  Dispatch: follow the instruction set the distance kernels chose.

static qv_pq_kernels_t s_kernels;
static pthread_once_t s_kernels_once = PTHREAD_ONCE_INIT;

static void
s_kernels_pick (void)
{
    const char *isa = qv_dist_kernels ()->isa;
    if (strcmp (isa, "avx512") == 0)
        s_kernels = (qv_pq_kernels_t) { "avx512", qv_pq_scan_avx512, qv_pq_lut_add_avx512 };
    else
    if (strcmp (isa, "avx2") == 0)
        s_kernels = (qv_pq_kernels_t) { "avx2", qv_pq_scan_avx2, qv_pq_lut_add_avx2 };
    else
        s_kernels = (qv_pq_kernels_t) { "serial", qv_pq_scan_serial, qv_pq_lut_add_serial };
}

const qv_pq_kernels_t *
qv_pq_kernels (void)
{
    pthread_once (&s_kernels_once, s_kernels_pick);
    return &s_kernels;
}
