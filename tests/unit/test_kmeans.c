//  k-means: finds well-separated clusters, threaded assignment equals serial, degenerate input is handled.
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "qv_kmeans.h"
#include "qv_rc.h"

static uint64_t s_seed = 42;

static float
s_uniform (void)
{
    s_seed = s_seed * 6364136223846793005ull + 1442695040888963407ull;
    return (float) ((s_seed >> 40) & 0xFFFFFF) / (float) 0x1000000;
}

//  k blobs of n / k points each, centres spread over [-10, 10]^dim, noise +-0.5.
static void
s_blobs (size_t n, size_t dim, size_t k, float *centres, float *data)
{
    for (size_t c = 0; c < k * dim; c++)
        centres [c] = 20 * s_uniform () - 10;
    for (size_t i = 0; i < n; i++)
        for (size_t d = 0; d < dim; d++)
            data [i * dim + d] = centres [(i % k) * dim + d] + s_uniform () - 0.5f;
}

static float
s_l2 (const float *a, const float *b, size_t dim)
{
    float s = 0;
    for (size_t d = 0; d < dim; d++)
        s += (a [d] - b [d]) * (a [d] - b [d]);
    return s;
}

static void
test_finds_separated_clusters (void **state)
{
    (void) state;
    size_t n = 4000, dim = 16, k = 8;
    float *centres = malloc (k * dim * sizeof (float));
    float *data = malloc (n * dim * sizeof (float));
    float *centroids = malloc (k * dim * sizeof (float));
    uint32_t *labels = malloc (n * sizeof (uint32_t));
    s_blobs (n, dim, k, centres, data);
    assert_int_equal (qv_kmeans_train (data, n, dim, k, NULL, centroids), 0);

    //  Every true centre has a learned centroid within the noise radius ...
    for (size_t c = 0; c < k; c++) {
        float best = INFINITY;
        for (size_t j = 0; j < k; j++) {
            float d = s_l2 (centres + c * dim, centroids + j * dim, dim);
            if (d < best)
                best = d;
        }
        assert_true (best < 0.1f);
    }
    //  ... and every blob lands in one cluster of its own.
    assert_int_equal (qv_kmeans_assign (centroids, k, dim, data, n, 2, labels, NULL), 0);
    for (size_t i = k; i < n; i++)
        assert_int_equal (labels [i], labels [i % k]);
    for (size_t a = 0; a < k; a++)
        for (size_t b = a + 1; b < k; b++)
            assert_int_not_equal (labels [a], labels [b]);
    free (centres);
    free (data);
    free (centroids);
    free (labels);
}

static void
test_threaded_assign_equals_serial (void **state)
{
    (void) state;
    size_t n = 1001, dim = 17, k = 33;
    float *data = malloc (n * dim * sizeof (float));
    float *centroids = malloc (k * dim * sizeof (float));
    for (size_t i = 0; i < n * dim; i++)
        data [i] = s_uniform ();
    for (size_t i = 0; i < k * dim; i++)
        centroids [i] = s_uniform ();
    uint32_t *l1 = malloc (n * sizeof (uint32_t)), *l2 = malloc (n * sizeof (uint32_t));
    float *d1 = malloc (n * sizeof (float)), *d2 = malloc (n * sizeof (float));
    assert_int_equal (qv_kmeans_assign (centroids, k, dim, data, n, 1, l1, d1), 0);
    assert_int_equal (qv_kmeans_assign (centroids, k, dim, data, n, 2, l2, d2), 0);
    assert_memory_equal (l1, l2, n * sizeof (uint32_t));
    assert_memory_equal (d1, d2, n * sizeof (float));
    //  The label is the true nearest centroid.
    for (size_t i = 0; i < n; i++)
        for (size_t c = 0; c < k; c++)
            assert_true (d1 [i] <= s_l2 (data + i * dim, centroids + c * dim, dim) * (1 + 1e-5f) + 1e-6f);
    free (data);
    free (centroids);
    free (l1);
    free (l2);
    free (d1);
    free (d2);
}

static void
test_deterministic_and_sampled (void **state)
{
    (void) state;
    size_t n = 3000, dim = 8, k = 10;
    float *data = malloc (n * dim * sizeof (float));
    for (size_t i = 0; i < n * dim; i++)
        data [i] = s_uniform ();
    float *a = malloc (k * dim * sizeof (float)), *b = malloc (k * dim * sizeof (float));
    qv_kmeans_params_t params;
    qv_kmeans_params_default (&params);
    params.max_points_per_centroid = 50;    //  500 of 3000 rows
    assert_int_equal (qv_kmeans_train (data, n, dim, k, &params, a), 0);
    params.nthreads = 1;
    assert_int_equal (qv_kmeans_train (data, n, dim, k, &params, b), 0);
    assert_memory_equal (a, b, k * dim * sizeof (float));
    free (data);
    free (a);
    free (b);
}

static void
test_degenerate_input (void **state)
{
    (void) state;
    size_t dim = 4, k = 10, n = 100;
    float *data = calloc (n * dim, sizeof (float));
    float *centroids = malloc (k * dim * sizeof (float));
    //  95 identical points and 5 distinct ones: most clusters start empty.
    for (size_t i = 95; i < n; i++)
        data [i * dim] = (float) i;
    assert_int_equal (qv_kmeans_train (data, n, dim, k, NULL, centroids), 0);
    for (size_t i = 0; i < k * dim; i++)
        assert_true (isfinite (centroids [i]));

    assert_int_equal (qv_kmeans_train (data, 5, dim, k, NULL, centroids), QV_EINVAL);
    assert_int_equal (qv_kmeans_train (data, n, dim, 0, NULL, centroids), QV_EINVAL);
    assert_int_equal (qv_kmeans_train (data, n, 0, k, NULL, centroids), QV_EINVAL);
    free (data);
    free (centroids);
}

static void
test_spherical_centroids_are_unit (void **state)
{
    (void) state;
    size_t n = 500, dim = 12, k = 7;
    float *data = malloc (n * dim * sizeof (float));
    float *centroids = malloc (k * dim * sizeof (float));
    for (size_t i = 0; i < n * dim; i++)
        data [i] = s_uniform () - 0.3f;
    qv_kmeans_params_t params;
    qv_kmeans_params_default (&params);
    params.spherical = true;
    assert_int_equal (qv_kmeans_train (data, n, dim, k, &params, centroids), 0);
    for (size_t c = 0; c < k; c++) {
        float norm = 0;
        for (size_t d = 0; d < dim; d++)
            norm += centroids [c * dim + d] * centroids [c * dim + d];
        assert_float_equal (norm, 1.0f, 1e-4f);
    }
    free (data);
    free (centroids);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_finds_separated_clusters),
        cmocka_unit_test (test_threaded_assign_equals_serial),
        cmocka_unit_test (test_deterministic_and_sampled),
        cmocka_unit_test (test_degenerate_input),
        cmocka_unit_test (test_spherical_centroids_are_unit),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
