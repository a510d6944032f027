//  Product quantizer: m sub-quantizers of 256 centroids (8 bits) each, asymmetric distances by lookup tables.
#ifndef QV_PQ_H_INCLUDED
#define QV_PQ_H_INCLUDED

#include <stddef.h>
#include <stdint.h>

#include "qv_dist.h"
#include "qv_kmeans.h"

#define QV_PQ_KSUB 256              //  centroids per sub-quantizer (nbits = 8)

typedef struct _qv_pq_t qv_pq_t;

//  A new, untrained quantizer splitting dim floats into m sub-vectors of dim / m.
//  NULL if m == 0, dim % m != 0, or out of memory.
qv_pq_t *
    qv_pq_new (size_t dim, size_t m);

//  A trained quantizer from its codebooks (m * 256 * (dim / m) floats, sub-quantizer j's
//  centroid c at (j * 256 + c) * dsub), as stored by a serialized index. NULL if the
//  shape is invalid, a value is not finite, or out of memory.
qv_pq_t *
    qv_pq_new_from (size_t dim, size_t m, const float *codebooks);

//  Destroys the quantizer and nulls *self_p; safe on NULL and twice.
void
    qv_pq_destroy (qv_pq_t **self_p);

//  Trains each sub-quantizer by k-means (256 centroids) on n vectors. params may be
//  NULL for the k-means defaults. Returns 0, QV_EINVAL if n < 256, or QV_ENOMEM.
int
    qv_pq_train (qv_pq_t *self, const float *data, size_t n, const qv_kmeans_params_t *params);

size_t
    qv_pq_dim (const qv_pq_t *self);
//  Sub-quantizers, which is also the code size in bytes.
size_t
    qv_pq_m (const qv_pq_t *self);
//  The codebooks, m * 256 * (dim / m) floats (for serialization).
const float *
    qv_pq_codebooks (const qv_pq_t *self);

//  Encodes n vectors into codes [n * m]: byte j is the nearest centroid of sub-vector j.
//  Returns 0 or QV_ENOMEM.
int
    qv_pq_encode (const qv_pq_t *self, const float *x, size_t n, uint8_t *codes);

//  Decodes n codes into n * dim floats (the concatenated centroids).
void
    qv_pq_decode (const qv_pq_t *self, const uint8_t *codes, size_t n, float *x);

//  Fills lut [m * 256] for query q: entry (j, c) is the squared L2 distance (metric L2)
//  or inner product (IP) between q's sub-vector j and centroid c of sub-quantizer j, so
//  that the distance to a code is the sum of its m entries.
void
    qv_pq_lut (const qv_pq_t *self, qv_metric_t metric, const float *q, float *lut);

//  Table scan: out [i] = sum_j lut [j * 256 + codes [i * m + j]] for i in [0, n).
//  The _avx2 / _avx512 variants may only be called when the CPU has the feature.
void qv_pq_scan_serial (const float *lut, const uint8_t *codes, size_t n, size_t m, float *out);
void qv_pq_scan_avx2   (const float *lut, const uint8_t *codes, size_t n, size_t m, float *out);
void qv_pq_scan_avx512 (const float *lut, const uint8_t *codes, size_t n, size_t m, float *out);

//  Table sum: out [e] = a [e] + scale * b [e] for e in [0, n). IVF_PQ forms each probed
//  list's table from the list's precomputed terms and the query's own table with it.
void qv_pq_lut_add_serial (const float *a, const float *b, float scale, size_t n, float *out);
void qv_pq_lut_add_avx2   (const float *a, const float *b, float scale, size_t n, float *out);
void qv_pq_lut_add_avx512 (const float *a, const float *b, float scale, size_t n, float *out);

typedef void (*qv_pq_scan_fn) (const float *lut, const uint8_t *codes, size_t n, size_t m, float *out);
typedef void (*qv_pq_lut_add_fn) (const float *a, const float *b, float scale, size_t n, float *out);

typedef struct {
    const char *isa;                //  the instruction set of qv_dist_kernels ()
    qv_pq_scan_fn scan;
    qv_pq_lut_add_fn lut_add;
} qv_pq_kernels_t;

//  The kernels for this CPU: the same instruction set qv_dist_kernels () chose (so
//  QV_SIMD caps both). Chosen once; thread-safe.
const qv_pq_kernels_t *
    qv_pq_kernels (void);

#endif
