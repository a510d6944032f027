//  Indexes on borrowed vectors (qv_index.h: HNSW, HNSW_SQ8, IVF_SQ8, IVF_PQ read the
//  caller's vectors instead of a copy): the same answers as their own-copy twins, the
//  memory and objects without the vectors, loading with them (old objects too),
//  rebinding to an equal copy, and the types and metrics that keep their own.
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "qv_index.h"

//  n x dim floats in [-1, 1) scaled by 1..7 per row (not unit length: L2 and IP rank
//  differently), from seed.
static float *
s_vectors (uint32_t n, uint32_t dim, unsigned seed)
{
    float *v = malloc ((size_t) n * dim * sizeof (float));
    assert_non_null (v);
    uint64_t x = seed * 0x9E3779B97F4A7C15ull + 1;
    for (size_t i = 0; i < (size_t) n * dim; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v [i] = ((float) (x >> 40) / (float) (1u << 23) - 1) * (float) (1 + (i / dim) % 7);
    }
    return v;
}

//  a and b answer every query (top 10 at ef 32, nprobe 8) with the same ids and
//  distances: unfiltered, every 2nd row allowed (a walk or probe) and every 200th
//  (an exact scan of the allowed rows).
static void
s_assert_same_search (qv_index_t *a, qv_index_t *b, const float *queries, uint32_t nq,
                      uint32_t dim)
{
    uint32_t n = qv_index_count (a);
    for (uint32_t mod = 1; mod <= 200; mod *= mod == 1? 2: 100) {
        roaring_bitmap_t *allowed = mod > 1? roaring_bitmap_from_range (0, n, mod): NULL;
        for (uint32_t q = 0; q < nq; q++) {
            uint32_t ia [10], ib [10];
            float da [10], db [10];
            qv_search_params_t sp = { .ef = 32, .nprobe = 8, .allowed = allowed };
            int na = qv_index_search (a, queries + q * dim, 10, &sp, ia, da);
            int nb = qv_index_search (b, queries + q * dim, 10, &sp, ib, db);
            assert_true (na > 0);
            assert_int_equal (na, nb);
            assert_memory_equal (ia, ib, na * sizeof ia [0]);
            assert_memory_equal (da, db, na * sizeof da [0]);
        }
        if (allowed)
            roaring_bitmap_free (allowed);
    }
}

//  An older lean object (old) loads onto base, answers as own does, and is written
//  back as the current form (lean). Returns the loaded index's memory.
static size_t
s_assert_loads_as (zchunk_t *old, zchunk_t *lean, qv_index_t *own, float *base, uint32_t n,
                   uint32_t dim, const float *queries, uint32_t nq)
{
    qv_index_t *loaded = NULL;
    zchunk_t *again = NULL;
    assert_int_equal (qv_index_load_borrowed (zchunk_data (old), zchunk_size (old), base,
                                              n, dim, &loaded), 0);
    s_assert_same_search (own, loaded, queries, nq, dim);
    size_t mem = qv_index_memory_bytes (loaded);
    assert_int_equal (qv_index_serialize (loaded, &again), 0);
    assert_int_equal (zchunk_size (again), zchunk_size (lean));
    assert_memory_equal (zchunk_data (again), zchunk_data (lean), zchunk_size (lean));
    zchunk_destroy (&again);
    qv_index_destroy (&loaded);
    return mem;
}

//  An index of type on borrowed vectors (qv_index.h) against its own-copy twin built
//  the same way: the same answers, unfiltered and filtered (walk and exact scan);
//  the vectors not in its memory nor its object; its object loads only with them, and
//  the twin's object (the format before borrowing) loads onto them too.
static void
s_check_borrowed (const char *type, qv_metric_t metric)
{
    uint32_t n = 1500, dim = 32, nq = 40;
    float *base = s_vectors (n, dim, 21);
    float *queries = s_vectors (nq, dim, 22);
    qv_index_params_t own_p = { .M = 8, .ef_construction = 64, .nlist = 16, .pq_m = 4,
                                .threads = 1 };
    qv_index_params_t bor_p = own_p;
    bor_p.borrow = 1;
    qv_index_t *own = qv_index_new (type, metric, dim, &own_p);
    qv_index_t *bor = qv_index_new (type, metric, dim, &bor_p);
    assert_non_null (own);
    assert_non_null (bor);
    assert_int_equal (qv_index_build (own, base, n), 0);
    assert_int_equal (qv_index_build (bor, base, n), 0);
    assert_false (qv_index_borrows (own));
    assert_true (qv_index_borrows (bor));
    fprintf (stderr, "%s metric %d: memory own %zu borrowed %zu bytes\n", type, (int) metric,
             qv_index_memory_bytes (own), qv_index_memory_bytes (bor));
    //  The borrowed vectors are not counted, nor are they "stored vectors"; the
    //  estimate a budget check makes knows it
    assert_true (qv_index_memory_bytes (bor) + (size_t) n * dim * 4 * 9 / 10
                 <= qv_index_memory_bytes (own));
    assert_int_equal (qv_index_vector_bytes (bor), 0);
    size_t est = qv_index_estimate_bytes (type, metric, dim, &bor_p, n);
    double ratio = (double) est / qv_index_memory_bytes (bor);
    fprintf (stderr, "  estimate %zu, %.3f of memory\n", est, ratio);
    bool hnsw = strcmp (type, "HNSW") == 0;
    //  HNSW on borrowed vectors packs its level-0 lists once built (qv_hnsw_pack.c):
    //  the estimate is its build's peak, the records before they are packed; its
    //  twin kept in records (QV_HNSW_PACK=0, the layout before packing) holds that
    qv_index_t *rec = NULL;
    if (hnsw) {
        setenv ("QV_HNSW_PACK", "0", 1);
        rec = qv_index_new (type, metric, dim, &bor_p);
        assert_int_equal (qv_index_build (rec, base, n), 0);
        unsetenv ("QV_HNSW_PACK");
        double rec_ratio = (double) est / qv_index_memory_bytes (rec);
        fprintf (stderr, "  in records %zu bytes, estimate %.3f of it\n",
                 qv_index_memory_bytes (rec), rec_ratio);
        assert_true (rec_ratio > 0.9 && rec_ratio < 1.1);
        assert_true (qv_index_memory_bytes (bor) < qv_index_memory_bytes (rec));
        assert_true (ratio >= 1.0);
        s_assert_same_search (own, rec, queries, nq, dim);
    }
    else
        assert_true (ratio > 0.9 && ratio < 1.1);
    s_assert_same_search (own, bor, queries, nq, dim);
    assert_int_equal (qv_index_add (bor, base, 1), QV_EINVAL);

    //  Its object leaves the vectors out and loads only with them
    zchunk_t *lean = NULL, *full = NULL;
    assert_int_equal (qv_index_serialize (bor, &lean), 0);
    assert_int_equal (qv_index_serialize (own, &full), 0);
    fprintf (stderr, "  object own %zu borrowed %zu bytes\n", zchunk_size (full), zchunk_size (lean));
    assert_true (zchunk_size (lean) + (size_t) n * dim * 4 <= zchunk_size (full));
    qv_index_t *loaded = NULL;
    assert_int_equal (qv_index_load (zchunk_data (lean), zchunk_size (lean), &loaded), QV_EINVAL);
    assert_null (loaded);
    assert_int_equal (qv_index_load_borrowed (zchunk_data (lean), zchunk_size (lean), base, n - 1,
                                              dim, &loaded), QV_EINVAL);
    assert_int_equal (qv_index_load_borrowed (zchunk_data (lean), zchunk_size (lean), base, n,
                                              dim + 1, &loaded), QV_EINVAL);
    assert_null (loaded);
    assert_int_equal (qv_index_load_borrowed (zchunk_data (lean), zchunk_size (lean), base, n,
                                              dim, &loaded), 0);
    assert_true (qv_index_borrows (loaded));
    s_assert_same_search (own, loaded, queries, nq, dim);
    //  ... and serializes back to the same bytes
    zchunk_t *again = NULL;
    assert_int_equal (qv_index_serialize (loaded, &again), 0);
    assert_int_equal (zchunk_size (again), zchunk_size (lean));
    assert_memory_equal (zchunk_data (again), zchunk_data (lean), zchunk_size (lean));
    zchunk_destroy (&again);
    qv_index_destroy (&loaded);
    //  The object with the vectors (written by an index that keeps its own, as every
    //  object before borrowing was) loads onto borrowed vectors too, from a buffer
    //  handed over as well, and is then the borrowed index
    void *mine = malloc (zchunk_size (full));
    memcpy (mine, zchunk_data (full), zchunk_size (full));
    assert_int_equal (qv_index_load_owned_borrowed (mine, zchunk_size (full), base, n, dim,
                                                    &loaded), 0);
    assert_true (qv_index_borrows (loaded));
    s_assert_same_search (own, loaded, queries, nq, dim);
    assert_int_equal (qv_index_serialize (loaded, &again), 0);
    assert_int_equal (zchunk_size (again), zchunk_size (lean));
    assert_memory_equal (zchunk_data (again), zchunk_data (lean), zchunk_size (lean));
    zchunk_destroy (&again);
    qv_index_destroy (&loaded);
    if (rec) {
        //  A lean object in records (as written before packing) is smaller packed, loads,
        //  and is written back packed and coded
        zchunk_t *old = NULL;
        assert_int_equal (qv_index_serialize (rec, &old), 0);
        fprintf (stderr, "  object in records %zu bytes, packed %zu\n", zchunk_size (old),
                 zchunk_size (lean));
        assert_true (zchunk_size (lean) < zchunk_size (old));
        size_t mem = s_assert_loads_as (old, lean, own, base, n, dim, queries, nq);
        assert_true (mem < qv_index_memory_bytes (rec));
        zchunk_destroy (&old);
        qv_index_destroy (&rec);
        //  A lean object of packed u32 lists (as written before they were coded,
        //  QV_HNSW_CODE=0) is larger, loads, and is written back coded
        setenv ("QV_HNSW_CODE", "0", 1);
        assert_int_equal (qv_index_serialize (bor, &old), 0);
        unsetenv ("QV_HNSW_CODE");
        fprintf (stderr, "  object packed %zu bytes, coded %zu\n", zchunk_size (old),
                 zchunk_size (lean));
        assert_true (zchunk_size (lean) < zchunk_size (old));
        s_assert_loads_as (old, lean, own, base, n, dim, queries, nq);
        zchunk_destroy (&old);
    }
    //  Flipped bytes in the lean object are refused
    size_t size = zchunk_size (lean);
    uint8_t *copy = malloc (size);
    for (size_t at = 0; at < size; at += (at < 300? 1: 89)) {
        memcpy (copy, zchunk_data (lean), size);
        copy [at] ^= 0x01;
        int rc = qv_index_load_borrowed (copy, size, base, n, dim, &loaded);
        assert_true (rc == QV_ECORRUPT || rc == QV_EINVAL);     //  EINVAL: count or dim
        assert_null (loaded);
    }
    free (copy);
    zchunk_destroy (&lean);
    zchunk_destroy (&full);
    //  Rebound to an equal copy (the compactor's), it reads the copy: the original
    //  is overwritten and freed
    float *twin = malloc ((size_t) n * dim * sizeof (float));
    memcpy (twin, base, (size_t) n * dim * sizeof (float));
    assert_int_equal (qv_index_rebind (bor, twin, n + 1, dim), QV_EINVAL);
    assert_int_equal (qv_index_rebind (bor, twin, n, dim), 0);
    memset (base, 0x7f, (size_t) n * dim * sizeof (float));
    free (base);
    base = twin;
    s_assert_same_search (own, bor, queries, nq, dim);
    qv_index_destroy (&own);
    qv_index_destroy (&bor);
    free (base);
    free (queries);
}


static void
test_borrowed (void **state)
{
    (void) state;
    s_check_borrowed ("HNSW", QV_METRIC_L2);
    s_check_borrowed ("HNSW", QV_METRIC_IP);
    s_check_borrowed ("HNSW_SQ8", QV_METRIC_L2);
    s_check_borrowed ("IVF_SQ8", QV_METRIC_L2);
    s_check_borrowed ("IVF_SQ8", QV_METRIC_IP);
    s_check_borrowed ("IVF_PQ", QV_METRIC_L2);
    s_check_borrowed ("IVF_PQ", QV_METRIC_IP);
}

//  COSINE reads normalised copies, FLAT and IVF_FLAT scan their own: the flag is
//  ignored, the index keeps its own copy and its object the vectors (the format
//  before borrowing, which loads without them).
static void
test_not_borrowed (void **state)
{
    (void) state;
    uint32_t n = 600, dim = 16;
    float *base = s_vectors (n, dim, 5);
    struct { const char *type; qv_metric_t metric; } cases [] = {
        { "HNSW", QV_METRIC_COSINE }, { "HNSW_SQ8", QV_METRIC_COSINE },
        { "IVF_SQ8", QV_METRIC_COSINE }, { "FLAT", QV_METRIC_L2 }, { "IVF_FLAT", QV_METRIC_L2 },
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases [0]; c++) {
        qv_index_params_t p = { .M = 8, .nlist = 8, .borrow = 1 };
        qv_index_t *index = qv_index_new (cases [c].type, cases [c].metric, dim, &p);
        assert_non_null (index);
        assert_false (qv_index_borrows (index));
        assert_int_equal (qv_index_build (index, base, n), 0);
        zchunk_t *chunk = NULL;
        assert_int_equal (qv_index_serialize (index, &chunk), 0);
        qv_index_t *loaded = NULL;
        assert_int_equal (qv_index_load (zchunk_data (chunk), zchunk_size (chunk), &loaded), 0);
        qv_index_destroy (&loaded);
        //  Loaded "borrowed", it keeps its own copy still; n and dim are checked
        assert_int_equal (qv_index_load_borrowed (zchunk_data (chunk), zchunk_size (chunk), base,
                                                  n + 1, dim, &loaded), QV_EINVAL);
        assert_int_equal (qv_index_load_borrowed (zchunk_data (chunk), zchunk_size (chunk), base,
                                                  n, dim, &loaded), 0);
        assert_false (qv_index_borrows (loaded));
        assert_int_equal (qv_index_vector_bytes (loaded), qv_index_vector_bytes (index));
        qv_index_destroy (&loaded);
        zchunk_destroy (&chunk);
        qv_index_destroy (&index);
    }
    free (base);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_borrowed),
        cmocka_unit_test (test_not_borrowed),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
