//  The stream ledger (actors/qv_stream_ledger.c) against a plain array of flags: in
//  order, with gaps, out of order, and at or below the base.
#include "qv_stream_ledger.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <cmocka.h>

#define N 2000

static void
test_ledger_in_order_with_gaps (void **state)
{
    (void) state;
    qv_stream_ledger_t *l = qv_stream_ledger_new (10);
    assert_true (qv_stream_ledger_has (l, 1));
    assert_true (qv_stream_ledger_has (l, 10));
    assert_false (qv_stream_ledger_has (l, 11));
    for (uint64_t s = 11; s <= 100; s++)
        if (s != 50 && s != 51 && s != 77)
            assert_int_equal (qv_stream_ledger_add (l, s), 0);
    assert_false (qv_stream_ledger_has (l, 50));
    assert_false (qv_stream_ledger_has (l, 51));
    assert_false (qv_stream_ledger_has (l, 77));
    assert_true (qv_stream_ledger_has (l, 49));
    assert_true (qv_stream_ledger_has (l, 52));
    assert_true (qv_stream_ledger_has (l, 100));
    assert_false (qv_stream_ledger_has (l, 101));
    assert_int_equal (qv_stream_ledger_intervals (l), 2);   //  52..76, 78..100
    //  The gaps filled: one run into the base, nothing kept
    assert_int_equal (qv_stream_ledger_add (l, 51), 0);
    assert_int_equal (qv_stream_ledger_add (l, 77), 0);
    assert_int_equal (qv_stream_ledger_intervals (l), 1);
    assert_int_equal (qv_stream_ledger_add (l, 50), 0);
    assert_int_equal (qv_stream_ledger_intervals (l), 0);
    assert_true (qv_stream_ledger_has (l, 100));
    qv_stream_ledger_destroy (&l);
    assert_null (l);
}

static void
test_ledger_random_against_flags (void **state)
{
    (void) state;
    srand (7);
    for (int round = 0; round < 20; round++) {
        uint64_t base = (uint64_t) (rand () % 50);
        qv_stream_ledger_t *l = qv_stream_ledger_new (base);
        bool *flag = calloc (N + 1, sizeof (bool));
        for (uint64_t s = 1; s <= base && s <= N; s++)
            flag [s] = true;
        for (int i = 0; i < N / 2; i++) {
            //  Mostly forward with skips, sometimes back into a gap
            uint64_t s = (uint64_t) (1 + rand () % N);
            assert_int_equal (qv_stream_ledger_add (l, s), 0);
            flag [s] = true;
            for (uint64_t t = 1; t <= N; t += 1 + (uint64_t) (rand () % 7))
                assert_int_equal (qv_stream_ledger_has (l, t), flag [t]);
        }
        for (uint64_t t = 1; t <= N; t++)
            assert_int_equal (qv_stream_ledger_has (l, t), flag [t]);
        free (flag);
        qv_stream_ledger_destroy (&l);
    }
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_ledger_in_order_with_gaps),
        cmocka_unit_test (test_ledger_random_against_flags),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
