//  Elias-Fano coded id lists (index/ann/qv_eflist.c): every list round-trips, its
//  size is what qv_eflist_size says, and a damaged list is refused, never over-read.
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include "qv_eflist.h"

#include <stdlib.h>
#include <string.h>

static int
s_cmp (const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *) a, y = *(const uint32_t *) b;
    return x < y? -1: x > y;
}

//  Codes ids (sorted) and decodes them again; returns the coded bytes.
static size_t
s_round_trip (const uint32_t *ids, uint32_t n, uint32_t universe)
{
    size_t size = qv_eflist_size (n, universe);
    //  Exactly size bytes, so that ASan sees any read past the list
    uint8_t *buf = malloc (size);
    assert_int_equal (qv_eflist_put (buf, ids, n, universe), size);
    uint32_t *back = malloc ((n? n: 1) * sizeof (uint32_t)), got = 0;
    assert_int_equal (qv_eflist_get (buf, size, universe, n, back, &got), size);
    assert_int_equal (got, n);
    if (n)
        assert_memory_equal (back, ids, n * sizeof (uint32_t));
    //  Counting only gives the same length
    assert_int_equal (qv_eflist_get (buf, size, universe, n, NULL, &got), size);
    //  More links than the reader allows, or the list cut short: refused
    if (n)
        assert_int_equal (qv_eflist_get (buf, size, universe, n - 1, back, &got), 0);
    for (size_t cut = 0; cut < size; cut++)
        assert_int_equal (qv_eflist_get (buf, cut, universe, n, back, &got), 0);
    free (back);
    free (buf);
    return size;
}

static void
test_edges (void **state)
{
    (void) state;
    uint32_t one [] = { 0 }, last [] = { 999 }, same [] = { 5, 5, 5, 5 };
    assert_int_equal (s_round_trip (NULL, 0, 1000), 1);
    assert_int_equal (s_round_trip (NULL, 0, 0), 1);
    s_round_trip (one, 1, 1);
    s_round_trip (last, 1, 1000);
    s_round_trip (same, 4, 6);
    //  More ids than the universe (duplicates), and ids at both ends of a big one
    uint32_t dup [] = { 0, 0, 1, 1, 2, 2, 2 };
    s_round_trip (dup, 7, 3);
    uint32_t wide [] = { 0, 1, UINT32_MAX - 2, UINT32_MAX - 1 };
    s_round_trip (wide, 4, UINT32_MAX);
    //  A count over 127 takes a longer count
    uint32_t many [300];
    for (uint32_t i = 0; i < 300; i++)
        many [i] = i * 3;
    s_round_trip (many, 300, 900);
}

//  Random sorted lists of every length up to 64 in universes small and large, against
//  the sizes the header's arithmetic gives: about n (2 + log2 (u / n)) bits.
static void
test_random (void **state)
{
    (void) state;
    unsigned seed = 7;
    uint32_t ids [64];
    uint32_t universes [] = { 1, 2, 33, 1000, 65536, 700000, 1u << 31 };
    for (size_t u = 0; u < sizeof universes / sizeof universes [0]; u++)
        for (uint32_t n = 0; n <= 64; n++) {
            for (uint32_t i = 0; i < n; i++)
                ids [i] = (uint32_t) (((uint64_t) rand_r (&seed) << 16 ^ (uint64_t) rand_r (&seed))
                                      % universes [u]);
            qsort (ids, n, sizeof ids [0], s_cmp);
            size_t size = s_round_trip (ids, n, universes [u]);
            if (n >= 8 && universes [u] >= 64 * n) {
                double bits = n * (2.0 + __builtin_log2 ((double) universes [u] / n));
                assert_true ((size - 1) * 8.0 <= bits + 8);
            }
        }
    //  21 links among 700k nodes (an HNSW level-0 list): 46 bytes, where u32 took 88
    assert_int_equal (qv_eflist_size (21, 700000), 46);
}

//  Every single-bit flip of a coded list either decodes to a sound list (a bit of a
//  low part: another id, still below the universe) or is refused; the decoder never
//  reads past the list (ASan) nor returns ids out of range.
static void
test_damage (void **state)
{
    (void) state;
    uint32_t ids [21], universe = 1000;
    for (uint32_t i = 0; i < 21; i++)
        ids [i] = i * 47;
    size_t size = qv_eflist_size (21, universe);
    uint8_t *good = malloc (size), *bad = malloc (size);
    qv_eflist_put (good, ids, 21, universe);
    uint32_t back [32], n;
    int refused = 0;
    for (size_t bit = 0; bit < size * 8; bit++) {
        memcpy (bad, good, size);
        bad [bit / 8] ^= (uint8_t) (1u << (bit % 8));
        size_t len = qv_eflist_get (bad, size, universe, 32, back, &n);
        if (!len) {
            refused++;
            continue;
        }
        assert_true (len <= size);
        for (uint32_t i = 0; i < n; i++)
            assert_true (back [i] < universe);
    }
    //  A bit in the unary part changes the count of set bits: always refused
    assert_true (refused > 0);
    //  An over-long count (six continuation bytes) is refused
    uint8_t longcount [8] = { 0x80, 0x80, 0x80, 0x80, 0x80, 0x01, 0, 0 };
    assert_int_equal (qv_eflist_get (longcount, sizeof longcount, universe, 32, back, &n), 0);
    free (good);
    free (bad);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_edges),
        cmocka_unit_test (test_random),
        cmocka_unit_test (test_damage),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
