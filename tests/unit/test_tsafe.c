//  The searcher's wait list: reads parked until tsafe reaches their guarantee, or
//  their deadline passes.
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdlib.h>
#include "qv_tsafe.h"

static int s_freed;

static void
s_free (void *item)
{
    (void) item;
    s_freed++;
}

static void
test_ready_in_order (void **state)
{
    (void) state;
    qv_tsafe_t *t = qv_tsafe_new (100);
    assert_int_equal (qv_tsafe_get (t), 100);
    assert_true (qv_tsafe_ready (t, 0));
    assert_true (qv_tsafe_ready (t, 100));
    assert_false (qv_tsafe_ready (t, 101));
    int a, b, c;
    assert_int_equal (qv_tsafe_park (t, &a, 150, 1000), 0);
    assert_int_equal (qv_tsafe_park (t, &b, 120, 1000), 0);
    assert_int_equal (qv_tsafe_park (t, &c, 200, 1000), 0);
    assert_int_equal (qv_tsafe_parked (t), 3);
    assert_null (qv_tsafe_next_ready (t));
    qv_tsafe_advance (t, 90);                   //  never falls
    assert_int_equal (qv_tsafe_get (t), 100);
    qv_tsafe_advance (t, 120);
    assert_ptr_equal (qv_tsafe_next_ready (t), &b);
    assert_null (qv_tsafe_next_ready (t));
    qv_tsafe_advance (t, 500);                  //  both: in the order they were parked
    assert_ptr_equal (qv_tsafe_next_ready (t), &a);
    assert_ptr_equal (qv_tsafe_next_ready (t), &c);
    assert_null (qv_tsafe_next_ready (t));
    assert_int_equal (qv_tsafe_parked (t), 0);
    qv_tsafe_destroy (&t, s_free);
    assert_null (t);
}

static void
test_deadlines (void **state)
{
    (void) state;
    qv_tsafe_t *t = qv_tsafe_new (10);
    int a, b, c;
    qv_tsafe_park (t, &a, 50, 1000);
    qv_tsafe_park (t, &b, 60, 2000);
    qv_tsafe_park (t, &c, 20, 500);
    uint64_t ts = 0;
    assert_null (qv_tsafe_next_expired (t, 499, &ts));
    assert_ptr_equal (qv_tsafe_next_expired (t, 500, &ts), &c);
    assert_int_equal (ts, 20);
    assert_null (qv_tsafe_next_expired (t, 999, &ts));
    assert_ptr_equal (qv_tsafe_next_expired (t, 1000, &ts), &a);
    assert_int_equal (ts, 50);
    assert_null (qv_tsafe_next_expired (t, 1000, &ts));
    //  Ready before its deadline is checked: answered, not expired
    qv_tsafe_advance (t, 60);
    assert_null (qv_tsafe_next_expired (t, 5000, &ts));
    assert_ptr_equal (qv_tsafe_next_ready (t), &b);
    qv_tsafe_destroy (&t, s_free);
}

static void
test_many_and_destroy (void **state)
{
    (void) state;
    qv_tsafe_t *t = qv_tsafe_new (0);
    static int items [100];
    for (int i = 0; i < 100; i++)
        assert_int_equal (qv_tsafe_park (t, &items [i], (uint64_t) (100 - i), 0), 0);
    qv_tsafe_advance (t, 50);
    int n = 0;
    while (qv_tsafe_next_ready (t))
        n++;
    assert_int_equal (n, 50);                   //  guarantees 1..50
    assert_ptr_equal (qv_tsafe_drain (t), &items [99 - 50]);
    s_freed = 0;
    qv_tsafe_destroy (&t, s_free);
    assert_int_equal (s_freed, 49);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_ready_in_order),
        cmocka_unit_test (test_deadlines),
        cmocka_unit_test (test_many_and_destroy),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
