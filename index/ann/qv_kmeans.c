//  k-means clustering of float32 vectors under squared L2 (Lloyd iterations, threaded assignment).
//
//  DESIGN
//  Training runs on a random sample of at most k * max_points_per_centroid rows, as
//  faiss does: more points barely move the centroids and cost time linearly. Initial
//  centroids come from k-means++ (each next seed drawn with probability proportional to
//  its squared distance from the seeds so far), which keeps two seeds out of one
//  cluster; it costs k passes over the sample, so above S_KMEANSPP_BUDGET flops the
//  seeds are k distinct random sample rows instead (faiss's choice). Each iteration
//  assigns every sample row to its nearest centroid on nthreads pthreads (the rows are
//  split in contiguous ranges, the threads share nothing writable), then recomputes
//  centroids in double precision on the calling thread. A centroid left without points takes half of the largest cluster: it
//  becomes a slightly perturbed copy of that centroid, so the next assignment splits it.
#include "qv_kmeans.h"
#include "qv_dist.h"
#include "qv_rc.h"

#include <float.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

void
qv_kmeans_params_default (qv_kmeans_params_t *params)
{
    params->niter = 20;
    params->max_points_per_centroid = 256;
    params->seed = 1234;
    params->nthreads = 2;
    params->spherical = false;
    params->cancel = NULL;
}

//  splitmix64: a small, good, seedable generator; k-means needs nothing stronger.
static uint64_t
s_rand_next (uint64_t *state)
{
    uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

//  Uniform in [0, bound).
static size_t
s_rand_below (uint64_t *state, size_t bound)
{
    return (size_t) (s_rand_next (state) % bound);
}

typedef struct {
    const float *centroids;
    size_t k;
    size_t dim;
    const float *data;
    size_t first;                   //  rows [first, last) are this worker's
    size_t last;
    uint32_t *labels;
    float *dists;
    int rc;
} s_assign_job_t;

static void *
s_assign_worker (void *arg)
{
    s_assign_job_t *job = (s_assign_job_t *) arg;
    const qv_dist_kernels_t *kernels = qv_dist_kernels ();
    float *scratch = (float *) malloc (job->k * sizeof (float));
    if (!scratch) {
        job->rc = QV_ENOMEM;
        return NULL;
    }
    for (size_t i = job->first; i < job->last; i++) {
        kernels->l2sq_batch (job->data + i * job->dim, job->centroids, job->k, job->dim, scratch);
        size_t best = 0;
        float best_dist = scratch [0];
        for (size_t c = 1; c < job->k; c++)
            if (scratch [c] < best_dist) {
                best_dist = scratch [c];
                best = c;
            }
        job->labels [i] = (uint32_t) best;
        if (job->dists)
            job->dists [i] = best_dist;
    }
    free (scratch);
    job->rc = 0;
    return NULL;
}

int
qv_kmeans_assign (const float *centroids, size_t k, size_t dim,
                  const float *data, size_t n, int nthreads,
                  uint32_t *labels, float *dists)
{
    if (k == 0 || dim == 0 || k > UINT32_MAX)
        return qv_err (QV_EINVAL, "k-means assign: k=%zu dim=%zu", k, dim);
    if (n == 0)
        return 0;
    if (nthreads < 1)
        nthreads = 1;
    if ((size_t) nthreads > n)
        nthreads = (int) n;
    if (nthreads > 64)
        nthreads = 64;

    s_assign_job_t jobs [64];
    pthread_t threads [64];
    bool started [64] = { false };
    for (int t = 0; t < nthreads; t++) {
        jobs [t] = (s_assign_job_t) {
            .centroids = centroids, .k = k, .dim = dim, .data = data,
            .first = n * t / nthreads, .last = n * (t + 1) / nthreads,
            .labels = labels, .dists = dists, .rc = 0
        };
    }
    //  Thread 0's share runs here; the others on their own threads. If a thread
    //  cannot be started, its share runs here too.
    for (int t = 1; t < nthreads; t++)
        started [t] = pthread_create (&threads [t], NULL, s_assign_worker, &jobs [t]) == 0;
    s_assign_worker (&jobs [0]);
    int rc = jobs [0].rc;
    for (int t = 1; t < nthreads; t++) {
        if (started [t])
            pthread_join (threads [t], NULL);
        else
            s_assign_worker (&jobs [t]);
        if (jobs [t].rc && !rc)
            rc = jobs [t].rc;
    }
    if (rc)
        return qv_err (rc, "k-means assign: out of memory");
    return 0;
}

//  Largest k * sample * dim for which k-means++ seeding is used (about a second).
#define S_KMEANSPP_BUDGET 4e9

//  k-means++ seeding over the ns rows of train into centroids [k * dim].
static int
s_seed_kmeanspp (const float *train, size_t ns, size_t dim, size_t k, uint64_t *rng,
                 float *centroids)
{
    const qv_dist_kernels_t *kernels = qv_dist_kernels ();
    float *mind = (float *) malloc (ns * sizeof (float));
    if (!mind)
        return qv_err (QV_ENOMEM, "k-means: out of memory for seeding %zu rows", ns);
    size_t first = s_rand_below (rng, ns);
    memcpy (centroids, train + first * dim, dim * sizeof (float));
    for (size_t i = 0; i < ns; i++)
        mind [i] = INFINITY;
    for (size_t c = 1; c < k; c++) {
        const float *last = centroids + (c - 1) * dim;
        double total = 0;
        for (size_t i = 0; i < ns; i++) {
            float d = kernels->l2sq (train + i * dim, last, dim);
            if (d < mind [i])
                mind [i] = d;
            total += mind [i];
        }
        size_t pick;
        if (total > 0) {
            double target = (double) (s_rand_next (rng) >> 11) / 9007199254740992.0 * total;
            double acc = 0;
            for (pick = 0; pick + 1 < ns; pick++) {
                acc += mind [pick];
                if (acc > target && mind [pick] > 0)
                    break;
            }
        }
        else                    //  every row sits on a seed: any row will do
            pick = s_rand_below (rng, ns);
        memcpy (centroids + c * dim, train + pick * dim, dim * sizeof (float));
    }
    free (mind);
    return 0;
}

static void
s_normalise (float *v, size_t dim)
{
    double norm = 0;
    for (size_t d = 0; d < dim; d++)
        norm += (double) v [d] * v [d];
    if (norm > 0) {
        float inv = (float) (1.0 / sqrt (norm));
        for (size_t d = 0; d < dim; d++)
            v [d] *= inv;
    }
}

//  Recomputes centroids from labels; returns how many were empty and re-seeded.
static size_t
s_update (const float *sample, size_t ns, size_t dim, size_t k, const uint32_t *labels,
          double *sums, size_t *counts, float *centroids, bool spherical, uint64_t *rng)
{
    memset (sums, 0, k * dim * sizeof (double));
    memset (counts, 0, k * sizeof (size_t));
    for (size_t i = 0; i < ns; i++) {
        const float *x = sample + i * dim;
        double *s = sums + (size_t) labels [i] * dim;
        for (size_t d = 0; d < dim; d++)
            s [d] += x [d];
        counts [labels [i]]++;
    }
    for (size_t c = 0; c < k; c++)
        if (counts [c]) {
            double inv = 1.0 / (double) counts [c];
            for (size_t d = 0; d < dim; d++)
                centroids [c * dim + d] = (float) (sums [c * dim + d] * inv);
        }
    size_t empty = 0;
    for (size_t c = 0; c < k; c++) {
        if (counts [c])
            continue;
        size_t big = 0;
        for (size_t j = 1; j < k; j++)
            if (counts [j] > counts [big])
                big = j;
        //  Split the largest cluster in two along a random +-1e-4 relative direction.
        float *dst = centroids + c * dim;
        float *src = centroids + big * dim;
        for (size_t d = 0; d < dim; d++) {
            float eps = (s_rand_next (rng) & 1) ? 1e-4f : -1e-4f;
            float base = src [d];
            float delta = fabsf (base) > 1e-20f ? base * eps : eps;
            dst [d] = base + delta;
            src [d] = base - delta;
        }
        counts [c] = counts [big] / 2;
        counts [big] -= counts [c];
        empty++;
    }
    if (spherical)
        for (size_t c = 0; c < k; c++)
            s_normalise (centroids + c * dim, dim);
    return empty;
}

int
qv_kmeans_train (const float *data, size_t n, size_t dim, size_t k,
                 const qv_kmeans_params_t *params, float *centroids)
{
    qv_kmeans_params_t defaults;
    if (!params) {
        qv_kmeans_params_default (&defaults);
        params = &defaults;
    }
    if (k == 0 || dim == 0 || k > UINT32_MAX)
        return qv_err (QV_EINVAL, "k-means: k=%zu dim=%zu", k, dim);
    if (n < k)
        return qv_err (QV_EINVAL, "k-means: %zu training vectors for %zu centroids; need at least as many vectors as centroids", n, k);

    int rc = 0;
    uint64_t rng = params->seed;
    size_t cap = params->max_points_per_centroid ? k * params->max_points_per_centroid : n;
    size_t ns = n < cap ? n : cap;
    size_t *perm = (size_t *) malloc (n * sizeof (size_t));
    float *sample = NULL;
    uint32_t *labels = (uint32_t *) malloc (ns * sizeof (uint32_t));
    uint32_t *prev = (uint32_t *) malloc (ns * sizeof (uint32_t));
    double *sums = (double *) malloc (k * dim * sizeof (double));
    size_t *counts = (size_t *) malloc (k * sizeof (size_t));
    if (!perm || !labels || !prev || !sums || !counts) {
        rc = qv_err (QV_ENOMEM, "k-means: out of memory for %zu x %zu", n, dim);
        goto cleanup;
    }
    //  A partial Fisher-Yates shuffle picks the sample; its first k rows seed the centroids.
    for (size_t i = 0; i < n; i++)
        perm [i] = i;
    for (size_t i = 0; i < ns; i++) {
        size_t j = i + s_rand_below (&rng, n - i);
        size_t t = perm [i];
        perm [i] = perm [j];
        perm [j] = t;
    }
    if (ns < n) {
        sample = (float *) malloc (ns * dim * sizeof (float));
        if (!sample) {
            rc = qv_err (QV_ENOMEM, "k-means: out of memory for a %zu-row sample", ns);
            goto cleanup;
        }
        for (size_t i = 0; i < ns; i++)
            memcpy (sample + i * dim, data + perm [i] * dim, dim * sizeof (float));
    }
    const float *train = sample ? sample : data;
    if ((double) k * ns * dim <= S_KMEANSPP_BUDGET) {
        rc = s_seed_kmeanspp (train, ns, dim, k, &rng, centroids);
        if (rc)
            goto cleanup;
    }
    else
        for (size_t c = 0; c < k; c++)
            memcpy (centroids + c * dim, data + perm [c] * dim, dim * sizeof (float));
    if (params->spherical)
        for (size_t c = 0; c < k; c++)
            s_normalise (centroids + c * dim, dim);

    for (int iter = 0; iter < params->niter; iter++) {
        if (params->cancel && atomic_load (params->cancel)) {
            rc = qv_err (QV_EUNAVAIL, "k-means training cancelled");
            goto cleanup;
        }
        rc = qv_kmeans_assign (centroids, k, dim, train, ns, params->nthreads, labels, NULL);
        if (rc)
            goto cleanup;
        if (iter > 0 && memcmp (labels, prev, ns * sizeof (uint32_t)) == 0)
            break;              //  converged: the centroids would not move
        s_update (train, ns, dim, k, labels, sums, counts, centroids, params->spherical, &rng);
        memcpy (prev, labels, ns * sizeof (uint32_t));
    }
cleanup:
    free (perm);
    free (sample);
    free (labels);
    free (prev);
    free (sums);
    free (counts);
    return rc;
}
