//  FLAT index and the shared index front: exact results per metric against a
//  brute-force reference, filters, the on-disk frame and its corruption checks.
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "qv_flat.h"

enum { N = 3000, DIM = 37, NQ = 20, K = 10 };

static float *
s_random (size_t n, unsigned seed)
{
    float *v = malloc (n * sizeof (float));
    for (size_t i = 0; i < n; i++)
        v [i] = (float) rand_r (&seed) / RAND_MAX * 2 - 1;
    return v;
}

typedef struct {
    double score;               //  smaller is better
    uint32_t id;
} ref_t;

static int
s_ref_cmp (const void *a, const void *b)
{
    const ref_t *x = a, *y = b;
    if (x->score != y->score)
        return x->score < y->score? -1: 1;
    return x->id < y->id? -1: x->id > y->id;
}

//  Exact answer in double precision; allow (NULL = all) restricts rows.
//  Returns how many rows it wrote (<= k).
static uint32_t
s_reference (const float *base, uint32_t n, const float *q, qv_metric_t metric,
             const uint8_t *allow, uint32_t k, uint32_t *ids, float *dists)
{
    ref_t *r = malloc (n * sizeof *r);
    uint32_t m = 0;
    double qn = 0;
    for (int j = 0; j < DIM; j++)
        qn += (double) q [j] * q [j];
    for (uint32_t i = 0; i < n; i++) {
        if (allow && !allow [i])
            continue;
        const float *v = base + (size_t) i * DIM;
        double l2 = 0, ip = 0, vn = 0;
        for (int j = 0; j < DIM; j++) {
            l2 += ((double) q [j] - v [j]) * ((double) q [j] - v [j]);
            ip += (double) q [j] * v [j];
            vn += (double) v [j] * v [j];
        }
        double s = metric == QV_METRIC_L2? l2
                 : metric == QV_METRIC_IP? -ip: -ip / sqrt (qn * vn);
        r [m].score = s;
        r [m++].id = i;
    }
    qsort (r, m, sizeof *r, s_ref_cmp);
    uint32_t out = m < k? m: k;
    for (uint32_t i = 0; i < out; i++) {
        ids [i] = r [i].id;
        dists [i] = (float) (metric == QV_METRIC_L2? r [i].score: -r [i].score);
    }
    free (r);
    return out;
}

static void
s_expect_same (int got_n, const uint32_t *got, const float *gotd,
               uint32_t want_n, const uint32_t *want, const float *wantd)
{
    assert_int_equal (got_n, want_n);
    for (uint32_t i = 0; i < want_n; i++) {
        if (got [i] != want [i])
            fprintf (stderr, "rank %u: got %u (%g) want %u (%g)\n", i, got [i], gotd [i], want [i], wantd [i]);
        assert_int_equal (got [i], want [i]);
        assert_true (fabsf (gotd [i] - wantd [i]) <= 1e-4f * (1 + fabsf (wantd [i])));
    }
}

static void
test_exact_per_metric (void **state)
{
    (void) state;
    float *base = s_random ((size_t) N * DIM, 1);
    float *queries = s_random ((size_t) NQ * DIM, 2);
    qv_metric_t metrics [] = { QV_METRIC_L2, QV_METRIC_IP, QV_METRIC_COSINE };
    for (int m = 0; m < 3; m++) {
        qv_index_t *index = qv_index_new ("flat", metrics [m], DIM, NULL);
        assert_non_null (index);
        assert_int_equal (qv_index_build (index, base, N), 0);
        assert_int_equal (qv_index_count (index), N);
        assert_int_equal (qv_index_type (index), QV_INDEX_FLAT);
        assert_string_equal (qv_index_type_name (index), "FLAT");
        assert_true (qv_index_memory_bytes (index) >= (size_t) N * DIM * 4);
        assert_int_equal (qv_index_vector_bytes (index), (size_t) N * DIM * 4);
        for (int q = 0; q < NQ; q++) {
            uint32_t ids [K], want [K];
            float d [K], wantd [K];
            int n = qv_index_search (index, queries + q * DIM, K, NULL, ids, d);
            uint32_t wn = s_reference (base, N, queries + q * DIM, metrics [m], NULL, K, want, wantd);
            s_expect_same (n, ids, d, wn, want, wantd);
        }
        //  Build twice is refused; add appends
        assert_int_equal (qv_index_build (index, base, 10), QV_EINVAL);
        qv_index_destroy (&index);
        assert_null (index);
        qv_index_destroy (&index);
    }
    free (base);
    free (queries);
}

static void
test_add_in_pieces (void **state)
{
    (void) state;
    float *base = s_random ((size_t) N * DIM, 3);
    qv_index_t *a = qv_index_new ("FLAT", QV_METRIC_L2, DIM, NULL);
    qv_index_t *b = qv_index_new ("FLAT", QV_METRIC_L2, DIM, NULL);
    assert_int_equal (qv_index_build (a, base, N), 0);
    assert_int_equal (qv_index_add (b, base, 1), 0);
    assert_int_equal (qv_index_add (b, base + DIM, 1500), 0);
    assert_int_equal (qv_index_add (b, base + 1501 * DIM, N - 1501), 0);
    assert_int_equal (qv_index_add (b, base, 0), 0);
    assert_int_equal (qv_index_count (b), N);
    uint32_t ia [K], ib [K];
    float da [K], db [K];
    for (int q = 0; q < 5; q++) {
        const float *query = base + (q * 397) * DIM;
        assert_int_equal (qv_index_search (a, query, K, NULL, ia, da), K);
        assert_int_equal (qv_index_search (b, query, K, NULL, ib, db), K);
        assert_memory_equal (ia, ib, sizeof ia);
        assert_int_equal (ia [0], q * 397);      //  a row is its own nearest
        assert_true (da [0] == 0);
    }
    qv_index_destroy (&a);
    qv_index_destroy (&b);
    free (base);
}

static int
s_allow_odd (uint32_t row, void *arg)
{
    (void) arg;
    return row & 1;
}

static void
test_filters (void **state)
{
    (void) state;
    float *base = s_random ((size_t) N * DIM, 4);
    float *queries = s_random ((size_t) NQ * DIM, 5);
    qv_index_t *index = qv_index_new ("FLAT", QV_METRIC_IP, DIM, NULL);
    assert_int_equal (qv_index_build (index, base, N), 0);
    uint8_t *allow = calloc (N, 1);
    //  Sparse (walked), dense (scanned), callback alone, both, and a tiny set
    int densities [] = { 50, 3, 0, 3, 1000 };
    for (int f = 0; f < 5; f++) {
        roaring_bitmap_t *bm = NULL;
        qv_search_params_t params = { 0 };
        if (densities [f]) {
            bm = roaring_bitmap_create ();
            unsigned seed = 11 + f;
            for (uint32_t i = 0; i < N; i++)
                if (rand_r (&seed) % densities [f] == 0)
                    roaring_bitmap_add (bm, i);
            if (densities [f] == 1000)
                roaring_bitmap_add (bm, N + 5);     //  a row beyond the index: ignored
            params.allowed = bm;
        }
        if (f == 2 || f == 3) {
            params.allow_fn = s_allow_odd;
        }
        for (uint32_t i = 0; i < N; i++)
            allow [i] = qv_search_params_allows (&params, i);
        for (int q = 0; q < NQ; q++) {
            uint32_t ids [K], want [K];
            float d [K], wantd [K];
            int n = qv_index_search (index, queries + q * DIM, K, &params, ids, d);
            uint32_t wn = s_reference (base, N, queries + q * DIM, QV_METRIC_IP, allow, K, want, wantd);
            s_expect_same (n, ids, d, wn, want, wantd);
        }
        uint64_t est = qv_search_params_allowed_estimate (&params, N);
        fprintf (stderr, "filter %d: allowed estimate %llu\n", f, (unsigned long long) est);
        assert_true (est <= N);
        if (bm)
            roaring_bitmap_free (bm);
    }
    //  Nothing allowed: zero results
    roaring_bitmap_t *none = roaring_bitmap_create ();
    qv_search_params_t params = { .allowed = none };
    uint32_t ids [K];
    float d [K];
    assert_int_equal (qv_index_search (index, queries, K, &params, ids, d), 0);
    roaring_bitmap_free (none);
    free (allow);
    qv_index_destroy (&index);
    free (base);
    free (queries);
}

static void
test_bad_arguments (void **state)
{
    (void) state;
    assert_null (qv_index_new ("NOPE", QV_METRIC_L2, 8, NULL));
    assert_null (qv_index_new (NULL, QV_METRIC_L2, 8, NULL));
    assert_null (qv_index_new ("FLAT", QV_METRIC_L2, 0, NULL));
    assert_null (qv_index_new ("FLAT", QV_METRIC_L2, 40000, NULL));
    assert_null (qv_index_new ("FLAT", (qv_metric_t) 7, 8, NULL));
    qv_index_t *index = qv_index_new ("FLAT", QV_METRIC_L2, 8, NULL);
    float q [8] = { 0 };
    uint32_t ids [4];
    float d [4];
    assert_int_equal (qv_index_search (index, q, 4, NULL, ids, d), 0);     //  empty
    assert_int_equal (qv_index_add (index, q, 1), 0);
    assert_int_equal (qv_index_search (index, q, 0, NULL, ids, d), QV_EINVAL);
    assert_int_equal (qv_index_search (index, q, QV_TOPK_MAX + 1, NULL, ids, d), QV_EINVAL);
    assert_int_equal (qv_index_search (index, q, 4, NULL, ids, d), 1);     //  fewer than k
    assert_int_equal (qv_index_add (index, NULL, 3), QV_EINVAL);
    qv_index_destroy (&index);
}

static void
test_serialize_and_corruption (void **state)
{
    (void) state;
    float *base = s_random ((size_t) 500 * DIM, 6);
    qv_index_t *index = qv_index_new ("FLAT", QV_METRIC_COSINE, DIM, NULL);
    assert_int_equal (qv_index_build (index, base, 500), 0);
    zchunk_t *chunk = NULL;
    assert_int_equal (qv_index_serialize (index, &chunk), 0);
    assert_non_null (chunk);
    size_t size = zchunk_size (chunk);
    assert_int_equal (size, 32 + 56 + 500 * DIM * 4);    //  envelope, fields, vectors

    qv_index_t *loaded = NULL;
    assert_int_equal (qv_index_load (zchunk_data (chunk), size, &loaded), 0);
    assert_int_equal (qv_index_metric (loaded), QV_METRIC_COSINE);
    assert_int_equal (qv_index_count (loaded), 500);
    assert_int_equal (qv_index_dim (loaded), DIM);
    for (int q = 0; q < 10; q++) {
        uint32_t ia [K], ib [K];
        float da [K], db [K];
        int na = qv_index_search (index, base + q * 31 * DIM, K, NULL, ia, da);
        int nb = qv_index_search (loaded, base + q * 31 * DIM, K, NULL, ib, db);
        assert_int_equal (na, nb);
        assert_memory_equal (ia, ib, sizeof ia);
        assert_memory_equal (da, db, sizeof da);
    }
    qv_index_destroy (&loaded);

    //  Every truncation and every single flipped byte of the header and trailer, and
    //  bytes spread over the payload, are refused as corrupt
    uint8_t *copy = malloc (size);
    for (size_t cut = 0; cut < size; cut += (cut < 80? 1: 997)) {
        assert_int_equal (qv_index_load (zchunk_data (chunk), cut, &loaded), QV_ECORRUPT);
        assert_null (loaded);
    }
    for (size_t at = 0; at < size; at += (at < 80 || at > size - 8? 1: 331)) {
        memcpy (copy, zchunk_data (chunk), size);
        copy [at] ^= 0x5A;
        int rc = qv_index_load (copy, size, &loaded);
        assert_int_equal (rc, QV_ECORRUPT);
        assert_null (loaded);
    }
    assert_int_equal (qv_index_load (NULL, 0, &loaded), QV_ECORRUPT);
    free (copy);
    zchunk_destroy (&chunk);
    qv_index_destroy (&index);
    free (base);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_exact_per_metric),
        cmocka_unit_test (test_add_in_pieces),
        cmocka_unit_test (test_filters),
        cmocka_unit_test (test_bad_arguments),
        cmocka_unit_test (test_serialize_and_corruption),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
