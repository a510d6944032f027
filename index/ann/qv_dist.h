//  Distance kernels over float32 vectors: serial reference, AVX2, AVX-512, picked at start-up.
#ifndef QV_DIST_H_INCLUDED
#define QV_DIST_H_INCLUDED

#include <stddef.h>
#include <stdint.h>

#include "qv_metric.h"

//  Kernels: one pair of vectors of dim floats. Each instruction set has its own name;
//  the _avx2 / _avx512 variants may only be called when the CPU has the feature.
float qv_dist_l2sq_f32_serial (const float *a, const float *b, size_t dim);
float qv_dist_l2sq_f32_avx2   (const float *a, const float *b, size_t dim);
float qv_dist_l2sq_f32_avx512 (const float *a, const float *b, size_t dim);
float qv_dist_ip_f32_serial   (const float *a, const float *b, size_t dim);
float qv_dist_ip_f32_avx2     (const float *a, const float *b, size_t dim);
float qv_dist_ip_f32_avx512   (const float *a, const float *b, size_t dim);

//  Batch kernels: distances from one query q to n vectors stored back to back at base
//  (row i at base + i * dim), written to out [0..n). Memory-bound scans use these.
void qv_dist_l2sq_f32_batch_serial (const float *q, const float *base, size_t n, size_t dim, float *out);
void qv_dist_l2sq_f32_batch_avx2   (const float *q, const float *base, size_t n, size_t dim, float *out);
void qv_dist_l2sq_f32_batch_avx512 (const float *q, const float *base, size_t n, size_t dim, float *out);
void qv_dist_ip_f32_batch_serial   (const float *q, const float *base, size_t n, size_t dim, float *out);
void qv_dist_ip_f32_batch_avx2     (const float *q, const float *base, size_t n, size_t dim, float *out);
void qv_dist_ip_f32_batch_avx512   (const float *q, const float *base, size_t n, size_t dim, float *out);

typedef float (*qv_dist_fn) (const float *a, const float *b, size_t dim);
typedef void (*qv_dist_batch_fn) (const float *q, const float *base, size_t n, size_t dim, float *out);

//  The kernels chosen for this CPU (best available instruction set; the environment
//  variable QV_SIMD=serial|avx2|avx512 caps it). Thread-safe; chosen once.
typedef struct {
    const char *isa;                //  "avx512", "avx2" or "serial"
    qv_dist_fn l2sq;
    qv_dist_fn ip;
    qv_dist_batch_fn l2sq_batch;
    qv_dist_batch_fn ip_batch;
} qv_dist_kernels_t;

const qv_dist_kernels_t *
    qv_dist_kernels (void);

//  Whether the CPU (and OS) supports the instruction set: "avx2" or "avx512".
int
    qv_dist_cpu_has (const char *isa);

//  The kernel for a metric, as a "distance" where the larger-is-better metrics (IP,
//  COSINE) are returned as their raw similarity. COSINE over raw vectors is
//  ip / (|a| |b|): callers keep norms, see qv_dist_norm.
float
    qv_dist_norm (const float *a, size_t dim);

#endif
