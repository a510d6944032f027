//  Top-k collector against a full sort, thresholds, edge cases and merge.
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <math.h>
#include <stdlib.h>
#include "qv_topk.h"
#include "qv_rc.h"

typedef struct {
    float score;
    int64_t id;
} pair_t;

static int
s_cmp (const void *a, const void *b)
{
    const pair_t *x = a, *y = b;
    if (x->score != y->score)
        return x->score < y->score? -1: 1;
    return x->id < y->id? -1: x->id > y->id;
}

//  Random scores with many ties (few distinct values when coarse is set).
static void
s_fill (pair_t *p, size_t n, unsigned *seed, int coarse)
{
    for (size_t i = 0; i < n; i++) {
        p [i].id = (int64_t) i * 7 + 3;
        p [i].score = coarse? (float) (rand_r (seed) % 50)
                            : (float) rand_r (seed) / RAND_MAX * 2 - 1;
    }
}

static void
test_vs_sort (void **state)
{
    (void) state;
    unsigned seed = 1;
    uint32_t ks [] = { 1, 2, 10, 100, 1000, 16384 };
    size_t ns [] = { 0, 1, 5, 99, 1000, 20000 };
    for (size_t a = 0; a < 6; a++)
    for (size_t b = 0; b < 6; b++)
    for (int coarse = 0; coarse < 2; coarse++) {
        uint32_t k = ks [a];
        size_t n = ns [b];
        pair_t *p = malloc ((n + 1) * sizeof *p);
        s_fill (p, n, &seed, coarse);
        qv_topk_t *t = qv_topk_new (k);
        assert_non_null (t);
        for (size_t i = 0; i < n; i++) {
            float thr = qv_topk_threshold (t);
            int kept = qv_topk_push (t, p [i].score, p [i].id);
            if (p [i].score > thr)
                assert_int_equal (kept, 0);
        }
        qsort (p, n, sizeof *p, s_cmp);
        uint32_t want = n < k? (uint32_t) n: k;
        assert_int_equal (qv_topk_size (t), want);
        if (want == k && k > 0)
            assert_true (qv_topk_threshold (t) == p [k - 1].score);
        else
            assert_true (isinf (qv_topk_threshold (t)));
        int64_t *ids = malloc ((want + 1) * sizeof *ids);
        float *sc = malloc ((want + 1) * sizeof *sc);
        assert_int_equal (qv_topk_extract (t, ids, sc), want);
        for (uint32_t i = 0; i < want; i++) {
            assert_true (ids [i] == p [i].id);
            assert_true (sc [i] == p [i].score);
        }
        assert_int_equal (qv_topk_size (t), 0);
        qv_topk_destroy (&t);
        assert_null (t);
        qv_topk_destroy (&t);
        free (ids);
        free (sc);
        free (p);
    }
}

static void
test_edges (void **state)
{
    (void) state;
    assert_null (qv_topk_new (0));
    assert_null (qv_topk_new (QV_TOPK_MAX + 1));
    qv_topk_t *t = qv_topk_new (3);
    assert_int_equal (qv_topk_k (t), 3);
    assert_int_equal (qv_topk_push (t, NAN, 1), 0);
    assert_int_equal (qv_topk_push (t, INFINITY, 2), 1);
    assert_int_equal (qv_topk_push (t, -INFINITY, 3), 1);
    assert_int_equal (qv_topk_push (t, 0, 4), 1);
    assert_int_equal (qv_topk_push (t, 1, 5), 1);       //  evicts +inf
    assert_int_equal (qv_topk_push (t, 2, 6), 0);
    int64_t ids [3];
    assert_int_equal (qv_topk_extract (t, ids, NULL), 3);
    assert_true (ids [0] == 3 && ids [1] == 4 && ids [2] == 5);
    //  Reset and reuse; ties broken by id
    qv_topk_reset (t);
    for (int64_t id = 10; id > 0; id--)
        qv_topk_push (t, 1.0f, id);
    assert_int_equal (qv_topk_extract (t, ids, NULL), 3);
    assert_true (ids [0] == 1 && ids [1] == 2 && ids [2] == 3);
    //  Resize: grows, shrinks, empties; rejects out-of-range k
    assert_int_equal (qv_topk_resize (t, 0), QV_EINVAL);
    assert_int_equal (qv_topk_resize (t, 1000), 0);
    for (int64_t id = 0; id < 2000; id++)
        qv_topk_push (t, (float) (id % 1000), id);
    assert_int_equal (qv_topk_size (t), 1000);
    assert_true (qv_topk_threshold (t) == 499.0f);
    assert_int_equal (qv_topk_resize (t, 2), 0);
    assert_int_equal (qv_topk_size (t), 0);
    qv_topk_push (t, 5, 1);
    qv_topk_push (t, 4, 2);
    qv_topk_push (t, 6, 3);
    assert_int_equal (qv_topk_extract (t, ids, NULL), 2);
    assert_true (ids [0] == 2 && ids [1] == 1);
    qv_topk_destroy (&t);
}

static void
test_merge (void **state)
{
    (void) state;
    unsigned seed = 9;
    enum { PARTS = 4, EACH = 3000, K = 50 };
    pair_t *all = malloc (PARTS * EACH * sizeof *all);
    s_fill (all, PARTS * EACH, &seed, 1);
    qv_topk_t *parts [PARTS];
    for (int p = 0; p < PARTS; p++) {
        parts [p] = qv_topk_new (K);
        for (int i = 0; i < EACH; i++)
            qv_topk_push (parts [p], all [p * EACH + i].score, all [p * EACH + i].id);
    }
    qv_topk_t *merged = qv_topk_new (K);
    qv_topk_push (merged, 1e9f, -1);     //  an entry of its own, which will drop out
    assert_int_equal (qv_topk_merge (merged, parts, PARTS), 0);
    qsort (all, PARTS * EACH, sizeof *all, s_cmp);
    int64_t ids [K];
    float sc [K];
    assert_int_equal (qv_topk_extract (merged, ids, sc), K);
    for (int i = 0; i < K; i++)
        assert_true (ids [i] == all [i].id && sc [i] == all [i].score);
    assert_int_equal (qv_topk_size (parts [0]), K);      //  others unchanged
    for (int p = 0; p < PARTS; p++)
        qv_topk_destroy (&parts [p]);
    qv_topk_destroy (&merged);
    free (all);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_vs_sort),
        cmocka_unit_test (test_edges),
        cmocka_unit_test (test_merge),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
