//  Scalar quantizer: per-dimension min/max, one 8-bit code per dimension, query-float vs code distances.
#ifndef QV_SQ8_H_INCLUDED
#define QV_SQ8_H_INCLUDED

#include <stddef.h>
#include <stdint.h>

#include "qv_dist.h"

typedef struct _qv_sq8_t qv_sq8_t;

//  A new, untrained quantizer for dim floats. NULL if dim == 0 or out of memory.
qv_sq8_t *
    qv_sq8_new (size_t dim);

//  A trained quantizer from its per-dimension minimum and step ((max - min) / 255),
//  as stored by a serialized index. NULL if dim == 0, a value is not finite or a step
//  is negative, or out of memory.
qv_sq8_t *
    qv_sq8_new_from (size_t dim, const float *vmin, const float *step);

//  Destroys the quantizer and nulls *self_p; safe on NULL and twice.
void
    qv_sq8_destroy (qv_sq8_t **self_p);

//  Learns per-dimension min and max from n vectors. Returns 0, or QV_EINVAL if n == 0
//  or a value is not finite.
int
    qv_sq8_train (qv_sq8_t *self, const float *data, size_t n);

size_t
    qv_sq8_dim (const qv_sq8_t *self);

//  Per-dimension minimum and step, dim floats each (for serialization).
const float *
    qv_sq8_vmin (const qv_sq8_t *self);
const float *
    qv_sq8_step (const qv_sq8_t *self);

//  Encodes n vectors into codes [n * dim]: code = round ((x - min) / step), clamped to
//  [0, 255]; values outside the trained range saturate.
void
    qv_sq8_encode (const qv_sq8_t *self, const float *x, size_t n, uint8_t *codes);

//  Decodes n codes into floats: min + code * step.
void
    qv_sq8_decode (const qv_sq8_t *self, const uint8_t *codes, size_t n, float *x);

//  A query prepared for one metric: for L2, qv_sq8_l2 takes (q - min) and step; for IP
//  qv_sq8_ip takes q * step and adds the constant sum (q * min). Holds 2 * dim floats.
typedef struct {
    qv_metric_t metric;             //  L2 or IP (COSINE callers normalise and use IP)
    size_t dim;
    float *a;                       //  L2: q - min; IP: q * step
    const float *step;              //  L2: the quantizer's step (borrowed)
    float bias;                     //  IP: sum (q * min); L2: 0
} qv_sq8_query_t;

//  Prepares q for metric into query, whose a [] buffer the caller provides (dim floats).
void
    qv_sq8_query_prepare (const qv_sq8_t *self, qv_metric_t metric, const float *q,
                          float *buffer, qv_sq8_query_t *query);

//  Distances from a prepared query to n codes (row i at codes + i * dim) into out [n]:
//  squared L2 for L2, inner product for IP; uses the kernels chosen at start-up.
void
    qv_sq8_query_scan (const qv_sq8_query_t *query, const uint8_t *codes, size_t n, float *out);

//  Kernels. L2: sum_d (a [d] - step [d] * code [d])^2. IP: sum_d a [d] * code [d].
//  The _avx2 / _avx512 variants may only be called when the CPU has the feature.
float qv_sq8_l2_serial (const float *a, const float *step, const uint8_t *code, size_t dim);
float qv_sq8_l2_avx2   (const float *a, const float *step, const uint8_t *code, size_t dim);
float qv_sq8_l2_avx512 (const float *a, const float *step, const uint8_t *code, size_t dim);
float qv_sq8_ip_serial (const float *a, const uint8_t *code, size_t dim);
float qv_sq8_ip_avx2   (const float *a, const uint8_t *code, size_t dim);
float qv_sq8_ip_avx512 (const float *a, const uint8_t *code, size_t dim);

typedef struct {
    const char *isa;                //  the instruction set of qv_dist_kernels ()
    float (*l2) (const float *a, const float *step, const uint8_t *code, size_t dim);
    float (*ip) (const float *a, const uint8_t *code, size_t dim);
} qv_sq8_kernels_t;

//  The kernels for this CPU: the same instruction set qv_dist_kernels () chose (so
//  QV_SIMD caps both). Chosen once; thread-safe.
const qv_sq8_kernels_t *
    qv_sq8_kernels (void);

#endif
