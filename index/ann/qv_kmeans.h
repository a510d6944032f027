//  k-means clustering of float32 vectors under squared L2: trains IVF coarse quantizers and PQ codebooks.
#ifndef QV_KMEANS_H_INCLUDED
#define QV_KMEANS_H_INCLUDED

#include <stdbool.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
    int niter;                      //  Lloyd iterations (default 20)
    size_t max_points_per_centroid; //  train on a random sample of at most k * this (default 256)
    uint64_t seed;                  //  sample and initial centroids are drawn from this seed
    int nthreads;                   //  threads for the assignment step (default 2)
    bool spherical;                 //  renormalise centroids to unit length (IP / COSINE)
    const atomic_bool *cancel;      //  checked each iteration: once true, training stops
                                    //  with QV_EUNAVAIL (NULL: never; default)
} qv_kmeans_params_t;

//  Fills params with the defaults above.
void
    qv_kmeans_params_default (qv_kmeans_params_t *params);

//  Trains k centroids over n vectors of dim floats (row i at data + i * dim) and writes
//  them to centroids [k * dim]. Initial centroids are k distinct sample points; a
//  centroid that loses all its points is re-seeded by splitting the largest cluster.
//  params may be NULL for the defaults. Deterministic for a given seed and nthreads.
//  Returns 0, QV_EINVAL (k == 0, dim == 0, n < k) or QV_ENOMEM. Any thread; the
//  caller's data is only read.
int
    qv_kmeans_train (const float *data, size_t n, size_t dim, size_t k,
                     const qv_kmeans_params_t *params, float *centroids);

//  Writes to labels [n] the index of the nearest of k centroids (squared L2) for each
//  of n vectors, and to dists [n] (if not NULL) the distance to it. Splits the rows
//  over nthreads pthreads (1 = this thread only). Returns 0, QV_EINVAL or QV_ENOMEM.
int
    qv_kmeans_assign (const float *centroids, size_t k, size_t dim,
                      const float *data, size_t n, int nthreads,
                      uint32_t *labels, float *dists);

#endif
