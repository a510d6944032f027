//  LEB128 varints and zigzag deltas: lengths at every 7-bit boundary, round trips of
//  rising, equal, falling, random and wrapping (INT64_MIN / INT64_MAX) sequences, and
//  truncated, over-long, padded and miscounted input refused without reading past it.
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "qv_varint.h"

static void
test_zigzag (void **state)
{
    (void) state;
    assert_true (qv_zigzag (0) == 0);
    assert_true (qv_zigzag ((uint64_t) -1) == 1);
    assert_true (qv_zigzag (1) == 2);
    assert_true (qv_zigzag ((uint64_t) -2) == 3);
    assert_true (qv_zigzag ((uint64_t) INT64_MAX) == UINT64_MAX - 1);
    assert_true (qv_zigzag ((uint64_t) INT64_MIN) == UINT64_MAX);
    for (uint64_t v = 0; v < 1000; v++) {
        assert_true (qv_unzigzag (qv_zigzag (v)) == v);
        assert_true (qv_unzigzag (qv_zigzag (0 - v)) == 0 - v);
        assert_true (qv_unzigzag (qv_zigzag (v << 54)) == v << 54);
    }
}

static void
test_lengths (void **state)
{
    (void) state;
    //  Every power of two, one below and one above: 7 bits a byte, 10 bytes at most
    for (int bit = 0; bit < 64; bit++)
        for (int off = -1; off <= 1; off++) {
            uint64_t v = ((uint64_t) 1 << bit) + (uint64_t) (int64_t) off;
            uint8_t buf [QV_VARINT_MAX];
            size_t n = qv_varint_put (buf, v);
            size_t bits = 1;
            while (bits < 64 && v >> bits)
                bits++;
            assert_int_equal (n, (bits + 6) / 7);
            //  From an exact-size copy: ASan flags a read past it
            uint8_t *exact = malloc (n);
            memcpy (exact, buf, n);
            uint64_t got = 0;
            assert_int_equal (qv_varint_get (exact, n, &got), n);
            assert_true (got == v);
            //  Every shorter prefix is truncated
            for (size_t cut = 0; cut < n; cut++)
                assert_int_equal (qv_varint_get (exact, cut, &got), 0);
            free (exact);
        }
    uint8_t buf [QV_VARINT_MAX];
    assert_int_equal (qv_varint_put (buf, UINT64_MAX), 10);
    assert_int_equal (buf [9], 1);
    assert_int_equal (qv_varint_put (buf, 0), 1);
    assert_int_equal (buf [0], 0);
}

static void
test_refused (void **state)
{
    (void) state;
    uint64_t v = 7;
    //  Eleven bytes (ten continuation bytes)
    uint8_t longer [11];
    memset (longer, 0x80, 10);
    longer [10] = 0;
    assert_int_equal (qv_varint_get (longer, sizeof longer, &v), 0);
    //  Ten bytes whose last holds more than bit 63
    uint8_t wide [10];
    memset (wide, 0xff, 9);
    wide [9] = 2;
    assert_int_equal (qv_varint_get (wide, sizeof wide, &v), 0);
    wide [9] = 1;
    assert_int_equal (qv_varint_get (wide, sizeof wide, &v), 10);
    assert_true (v == UINT64_MAX);
    //  Padded with a zero group: not the shortest form
    const uint8_t padded [] = { 0x81, 0x00 };
    assert_int_equal (qv_varint_get (padded, sizeof padded, &v), 0);
    const uint8_t zero [] = { 0x80, 0x80, 0x00 };
    assert_int_equal (qv_varint_get (zero, sizeof zero, &v), 0);
    //  Nothing at all
    assert_int_equal (qv_varint_get (NULL, 0, &v), 0);
}

//  Codes n values, checks the round trip from an exact-size copy and that every
//  other count, every truncation and a trailing byte are refused. Returns the bytes.
static size_t
s_round_trip (const uint64_t *vals, size_t n)
{
    uint8_t *coded = malloc (n * QV_VARINT_MAX + 1);
    size_t len = qv_varint_put_deltas (coded, vals, n);
    assert_true (len >= n && len <= n * QV_VARINT_MAX);
    uint8_t *exact = malloc (len + 1);
    memcpy (exact, coded, len);
    uint64_t *got = malloc ((n + 1) * sizeof *got);
    assert_int_equal (qv_varint_get_deltas (exact, len, got, n), 0);
    assert_memory_equal (got, vals, n * sizeof *got);
    if (n)
        assert_int_equal (qv_varint_get_deltas (exact, len, got, n - 1), -1);
    assert_int_equal (qv_varint_get_deltas (exact, len, got, n + 1), -1);
    for (size_t cut = 0; cut < len; cut += 1 + len / 64)
        assert_int_equal (qv_varint_get_deltas (exact, cut, got, n), -1);
    exact [len] = 0;
    assert_int_equal (qv_varint_get_deltas (exact, len + 1, got, n), -1);
    free (got);
    free (exact);
    free (coded);
    return len;
}

static void
test_deltas (void **state)
{
    (void) state;
    enum { N = 1000 };
    uint64_t *vals = malloc (N * sizeof *vals);
    //  Equal (one insert's timestamps): the first value, then a byte each
    for (size_t i = 0; i < N; i++)
        vals [i] = 1ull << 40;
    assert_int_equal (s_round_trip (vals, N), 6 + N - 1);     //  zigzag 2^41: 42 bits
    //  Consecutive ids: a byte each
    for (size_t i = 0; i < N; i++)
        vals [i] = (uint64_t) (int64_t) (i + 1);
    assert_int_equal (s_round_trip (vals, N), N);
    //  Falling, negative
    for (size_t i = 0; i < N; i++)
        vals [i] = (uint64_t) (-1 - (int64_t) i * 5);
    assert_int_equal (s_round_trip (vals, N), N);
    //  Rising in steps (inserts of 100 rows)
    for (size_t i = 0; i < N; i++)
        vals [i] = 1000 + i / 100 * 3;
    s_round_trip (vals, N);
    //  Wrapping: INT64_MIN, INT64_MAX, 0, UINT64_MAX alternating
    static const uint64_t wrap [] = { (uint64_t) INT64_MIN, (uint64_t) INT64_MAX, 0, UINT64_MAX,
                                      (uint64_t) INT64_MIN, 1, (uint64_t) INT64_MAX };
    for (size_t i = 0; i < N; i++)
        vals [i] = wrap [i % 7];
    assert_true (s_round_trip (vals, N) <= N * QV_VARINT_MAX);
    //  Random
    unsigned seed = 3;
    for (size_t i = 0; i < N; i++)
        vals [i] = (uint64_t) rand_r (&seed) << 42 ^ (uint64_t) rand_r (&seed) << 21
                 ^ (uint64_t) rand_r (&seed);
    s_round_trip (vals, N);
    //  None and one
    assert_int_equal (s_round_trip (vals, 0), 0);
    assert_int_equal (qv_varint_get_deltas (NULL, 0, vals, 0), 0);
    assert_int_equal (qv_varint_get_deltas (NULL, 0, vals, 1), -1);
    vals [0] = (uint64_t) INT64_MIN;
    assert_int_equal (s_round_trip (vals, 1), 10);
    free (vals);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_zigzag),
        cmocka_unit_test (test_lengths),
        cmocka_unit_test (test_refused),
        cmocka_unit_test (test_deltas),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
