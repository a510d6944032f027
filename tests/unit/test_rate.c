//  Token-bucket rate limits (actors/qv_rate.h) with a clock given by the test: a
//  second's worth passes, the next request is refused naming the limit and its option
//  and saying when to retry, and passes once that time has gone by; per-client buckets
//  are separate, a server-wide one is shared; a request larger than a second's worth
//  passes on a full bucket and leaves a debt; idle clients' buckets are swept.
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "qv_rate.h"
#include "qv_rc.h"

static const char *const s_server_opts [QV_RATE_KINDS] = { "--max-insert-mb-per-sec", "--max-searches-per-sec" };
static const char *const s_client_opts [QV_RATE_KINDS] = { "--max-client-insert-mb-per-sec",
                                                           "--max-client-searches-per-sec" };

static void
test_server_limit (void **state)
{
    (void) state;
    const double server [QV_RATE_KINDS] = { 0, 10 }, client [QV_RATE_KINDS] = { 0, 0 };
    qv_rate_t *rate = qv_rate_new (server, client, s_server_opts, s_client_opts);
    assert_non_null (rate);
    int64_t t = qv_clock_usec ();
    //  Ten searches from two clients pass; the eleventh, from either, does not
    for (int i = 0; i < 10; i++)
        assert_int_equal (qv_rate_take (rate, QV_RATE_SEARCHES, i % 2 ? "a" : "b", 1, NULL, 1, t), 0);
    assert_int_equal (qv_rate_take (rate, QV_RATE_SEARCHES, "c", 1, NULL, 1, t), QV_ELIMIT);
    assert_non_null (strstr (qv_err_msg (), "--max-searches-per-sec"));
    assert_non_null (strstr (qv_err_msg (), "the server"));
    assert_non_null (strstr (qv_err_msg (), "retry in 100 ms"));
    //  Inserts are not limited
    assert_int_equal (qv_rate_take (rate, QV_RATE_INSERT_BYTES, "a", 1, NULL, 1e9, t), 0);
    //  100 ms later one more passes, and only one
    t += 100000;
    assert_int_equal (qv_rate_take (rate, QV_RATE_SEARCHES, "a", 1, NULL, 1, t), 0);
    assert_int_equal (qv_rate_take (rate, QV_RATE_SEARCHES, "a", 1, NULL, 1, t), QV_ELIMIT);
    //  A search of 25 vectors (more than a second's worth) passes on a full bucket...
    t += 2000000;
    assert_int_equal (qv_rate_take (rate, QV_RATE_SEARCHES, "a", 1, NULL, 25, t), 0);
    //  ...and the debt it leaves is waited out: 1.5 s later still refused, at 1.6 s not
    t += 1500000;
    assert_int_equal (qv_rate_take (rate, QV_RATE_SEARCHES, "a", 1, NULL, 1, t), QV_ELIMIT);
    t += 100000;
    assert_int_equal (qv_rate_take (rate, QV_RATE_SEARCHES, "a", 1, NULL, 1, t), 0);
    assert_int_equal (qv_rate_clients (rate), 0);
    qv_rate_destroy (&rate);
    qv_rate_destroy (&rate);
}

static void
test_client_limit (void **state)
{
    (void) state;
    const double server [QV_RATE_KINDS] = { 0, 0 }, client [QV_RATE_KINDS] = { 1000, 3 };
    qv_rate_t *rate = qv_rate_new (server, client, s_server_opts, s_client_opts);
    int64_t t = qv_clock_usec ();
    for (int i = 0; i < 3; i++)
        assert_int_equal (qv_rate_take (rate, QV_RATE_SEARCHES, "\x01\x02", 2, NULL, 1, t), 0);
    assert_int_equal (qv_rate_take (rate, QV_RATE_SEARCHES, "\x01\x02", 2, NULL, 1, t), QV_ELIMIT);
    assert_non_null (strstr (qv_err_msg (), "this client"));
    assert_non_null (strstr (qv_err_msg (), "--max-client-searches-per-sec"));
    //  Another client has its own bucket
    assert_int_equal (qv_rate_take (rate, QV_RATE_SEARCHES, "\x01\x03", 2, NULL, 1, t), 0);
    //  Insert bytes: 1000 per second
    assert_int_equal (qv_rate_take (rate, QV_RATE_INSERT_BYTES, "\x01\x02", 2, NULL, 600, t), 0);
    assert_int_equal (qv_rate_take (rate, QV_RATE_INSERT_BYTES, "\x01\x02", 2, NULL, 600, t), QV_ELIMIT);
    assert_non_null (strstr (qv_err_msg (), "bytes of inserts"));
    assert_non_null (strstr (qv_err_msg (), "retry in 200 ms"));
    assert_int_equal (qv_rate_clients (rate), 2);
    //  Many clients once, then quiet: their buckets go once full again
    for (int i = 0; i < 2000; i++) {
        char id [16];
        int n = snprintf (id, sizeof id, "c%d", i);
        assert_int_equal (qv_rate_take (rate, QV_RATE_SEARCHES, id, (size_t) n, NULL, 1, t), 0);
    }
    assert_true (qv_rate_clients (rate) > 1000);
    t += 5000000;
    for (int i = 0; i < 1024; i++)
        assert_int_equal (qv_rate_take (rate, QV_RATE_SEARCHES, "busy", 4, NULL, 0.001, t), 0);
    assert_true (qv_rate_clients (rate) <= 2);
    qv_rate_destroy (&rate);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_server_limit),
        cmocka_unit_test (test_client_limit),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
