//  Rate limits through a real `quiver serve --max-searches-per-sec 20
//  --max-client-insert-mb-per-sec 1`: searches past the server's rate are refused
//  RESOURCE_EXHAUSTED for every client, naming the limit and when to retry, and pass
//  again a second later; a search counts its query vectors; insert bytes are limited
//  per client (another client keeps its own allowance); a refused request leaves no
//  trace (the rows of a refused insert are not there). Then a server with
//  --max-insert-mb-per-sec 1 --max-client-searches-per-sec 5: the same the other way
//  round, each limit triggered and recovered a second later.
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <czmq.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qv_codec.h"
#include "qv_it_server.h"

#define CALL_OK QV_IT_CALL_OK
#define CALL_ERR QV_IT_CALL_ERR
#define BIG_DIM 1024                //  4 KiB a vector
#define BIG_ROWS 150                //  600 KiB an insert

static qv_it_server_t *s_server;

//  The group's server, with the limits option (a per-second rate) set to rate and
//  other_option to 1 (MiB or searches a second).
static int
s_server_start (const char *option, const char *rate, const char *other_option)
{
    const char *extra [] = { option, rate, other_option, "1", NULL };
    s_server = qv_it_server_new (extra);
    return !s_server || qv_it_server_start (s_server) ? -1 : 0;
}

static int
s_group_setup (void **state)
{
    (void) state;
    return s_server_start ("--max-searches-per-sec", "20", "--max-client-insert-mb-per-sec");
}

static int
s_group_teardown (void **state)
{
    (void) state;
    qv_it_server_destroy (&s_server);
    return 0;
}

static qv_it_client_t *
s_client (void)
{
    qv_it_client_t *c = qv_it_client_new (s_server->endpoint, QV_IT_CALL_MS);
    assert_non_null (c);
    return c;
}

//  A search of nq query vectors; the reply.
static qv_doc_t *
s_search (qv_it_client_t *c, int nq)
{
    char vecs [4096] = "";
    size_t len = 0;
    for (int i = 0; i < nq; i++)
        len += (size_t) snprintf (vecs + len, sizeof vecs - len, "%s[1.0, 2.0]", i ? "," : "");
    return qv_it_callf (c, "{op: 'search', collection: 'small', vectors: [%s], limit: 1}", vecs);
}

static bool
s_refused (qv_doc_t *r, const char *option)
{
    assert_non_null (r);
    if (qv_it_ok (r))
        return false;
    assert_string_equal (qv_it_code (r), "RESOURCE_EXHAUSTED");
    if (!strstr (qv_it_error (r), option) || !strstr (qv_it_error (r), "retry in"))
        fail_msg ("refusal does not name %s and when to retry: %s", option, qv_it_error (r));
    return true;
}

//  Searches on c until one is refused naming option (fails the test if none of 60
//  is): how many passed before.
static int
s_searches_until_refused (qv_it_client_t *c, const char *option)
{
    int passed = 0;
    bool refused = false;
    for (int i = 0; i < 60 && !refused; i++) {
        qv_doc_t *r = s_search (c, 1);
        refused = s_refused (r, option);
        passed += !refused;
        qv_doc_destroy (&r);
    }
    assert_true (refused);
    return passed;
}

static void
test_search_rate (void **state)
{
    (void) state;
    qv_it_client_t *a = s_client (), *b = s_client ();
    qv_doc_t *r = CALL_OK (a, "{op: 'create_collection', collection: 'small', dimension: 2}");
    qv_doc_destroy (&r);
    r = CALL_OK (a, "{op: 'insert', collection: 'small', rows: [{id: 1, vector: [1.0, 2.0]}]}");
    qv_doc_destroy (&r);
    //  A second's worth passes, then client a is refused within a few more
    assert_true (s_searches_until_refused (a, "--max-searches-per-sec") >= 20);
    //  The limit is the server's: client b is refused too
    r = s_search (b, 1);
    assert_true (s_refused (r, "--max-searches-per-sec"));
    assert_non_null (strstr (qv_it_error (r), "the server"));
    qv_doc_destroy (&r);
    //  A second later searches pass again; one of 30 vectors (more than a second's
    //  worth) passes on the full bucket, and the next is refused
    zclock_sleep (1200);
    r = s_search (b, 30);
    assert_true (qv_it_ok (r));
    qv_doc_destroy (&r);
    r = s_search (a, 1);
    assert_true (s_refused (r, "--max-searches-per-sec"));
    qv_doc_destroy (&r);
    //  Other requests are not limited
    r = CALL_OK (a, "{op: 'query', collection: 'small', filter: 'id >= 0'}");
    qv_doc_destroy (&r);
    qv_it_client_destroy (&a);
    qv_it_client_destroy (&b);
}

//  An insert of BIG_ROWS rows with ids from first; the reply.
static qv_doc_t *
s_insert_big (qv_it_client_t *c, int first)
{
    qv_wr_t *w = qv_wr_new ();
    qv_wr_map (w, 3);
    qv_wr_str (w, "op"); qv_wr_str (w, "insert");
    qv_wr_str (w, "collection"); qv_wr_str (w, "big");
    qv_wr_str (w, "columns");
    qv_wr_map (w, 2);
    qv_wr_str (w, "id");
    qv_wr_array (w, BIG_ROWS);
    for (int i = 0; i < BIG_ROWS; i++)
        qv_wr_int (w, first + i);
    qv_wr_str (w, "vector");
    float *vecs = calloc ((size_t) BIG_ROWS * BIG_DIM, sizeof (float));
    assert_non_null (vecs);
    qv_wr_bin (w, vecs, (size_t) BIG_ROWS * BIG_DIM * sizeof (float));
    free (vecs);
    qv_doc_t *r = qv_it_call (c, w);
    qv_wr_destroy (&w);
    assert_non_null (r);
    return r;
}

static void
test_insert_rate_per_client (void **state)
{
    (void) state;
    qv_it_client_t *a = s_client (), *b = s_client ();
    qv_doc_t *r = CALL_OK (a, "{op: 'create_collection', collection: 'big', dimension: %d}", BIG_DIM);
    qv_doc_destroy (&r);
    //  600 KiB passes, 600 KiB more at once does not (1 MiB/s per client)
    r = s_insert_big (a, 0);
    assert_true (qv_it_ok (r));
    qv_doc_destroy (&r);
    r = s_insert_big (a, BIG_ROWS);
    assert_true (s_refused (r, "--max-client-insert-mb-per-sec"));
    assert_non_null (strstr (qv_it_error (r), "this client"));
    qv_doc_destroy (&r);
    //  Client b has its own allowance
    r = s_insert_big (b, 2 * BIG_ROWS);
    assert_true (qv_it_ok (r));
    qv_doc_destroy (&r);
    //  The refused rows are not there
    r = CALL_OK (a, "{op: 'query', collection: 'big', filter: 'id >= 0', output_fields: ['count(*)']}");
    assert_int_equal (qv_it_int (qv_it_path (r, "rows.0.count(*)")), 2 * BIG_ROWS);
    qv_doc_destroy (&r);
    r = CALL_OK (a, "{op: 'get', collection: 'big', ids: [%d]}", BIG_ROWS);
    assert_int_equal (qv_val_len (qv_it_path (r, "rows")), 0);
    qv_doc_destroy (&r);
    //  A second later client a may insert again
    zclock_sleep (1200);
    r = s_insert_big (a, BIG_ROWS);
    assert_true (qv_it_ok (r));
    qv_doc_destroy (&r);
    qv_it_client_destroy (&a);
    qv_it_client_destroy (&b);
}

//  The second server: the same limits the other way round (insert bytes for the
//  whole server, searches per client).
static int
s_group_setup_swapped (void **state)
{
    (void) state;
    return s_server_start ("--max-client-searches-per-sec", "5", "--max-insert-mb-per-sec");
}

//  --max-insert-mb-per-sec: one client's inserts use up the server's allowance for
//  every client, which is back a second later.
static void
test_insert_rate_server (void **state)
{
    (void) state;
    qv_it_client_t *a = s_client (), *b = s_client ();
    qv_doc_t *r = CALL_OK (a, "{op: 'create_collection', collection: 'big', dimension: %d}", BIG_DIM);
    qv_doc_destroy (&r);
    r = s_insert_big (a, 0);
    assert_true (qv_it_ok (r));
    qv_doc_destroy (&r);
    r = s_insert_big (b, BIG_ROWS);
    assert_true (s_refused (r, "--max-insert-mb-per-sec"));
    assert_non_null (strstr (qv_it_error (r), "the server"));
    qv_doc_destroy (&r);
    zclock_sleep (1200);
    r = s_insert_big (b, BIG_ROWS);
    assert_true (qv_it_ok (r));
    qv_doc_destroy (&r);
    r = CALL_OK (a, "{op: 'query', collection: 'big', filter: 'id >= 0', output_fields: ['count(*)']}");
    assert_int_equal (qv_it_int (qv_it_path (r, "rows.0.count(*)")), 2 * BIG_ROWS);
    qv_doc_destroy (&r);
    qv_it_client_destroy (&a);
    qv_it_client_destroy (&b);
}

//  --max-client-searches-per-sec: client a is refused past its allowance while
//  client b searches on; a searches again a second later.
static void
test_search_rate_per_client (void **state)
{
    (void) state;
    qv_it_client_t *a = s_client (), *b = s_client ();
    qv_doc_t *r = CALL_OK (a, "{op: 'create_collection', collection: 'small', dimension: 2}");
    qv_doc_destroy (&r);
    r = CALL_OK (a, "{op: 'insert', collection: 'small', rows: [{id: 1, vector: [1.0, 2.0]}]}");
    qv_doc_destroy (&r);
    assert_true (s_searches_until_refused (a, "--max-client-searches-per-sec") >= 5);
    r = s_search (b, 1);
    assert_true (qv_it_ok (r));
    qv_doc_destroy (&r);
    zclock_sleep (1200);
    r = s_search (a, 1);
    assert_true (qv_it_ok (r));
    qv_doc_destroy (&r);
    qv_it_client_destroy (&a);
    qv_it_client_destroy (&b);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_search_rate),
        cmocka_unit_test (test_insert_rate_per_client),
    };
    const struct CMUnitTest swapped [] = {
        cmocka_unit_test (test_insert_rate_server),
        cmocka_unit_test (test_search_rate_per_client),
    };
    int failed = cmocka_run_group_tests (tests, s_group_setup, s_group_teardown);
    return failed + cmocka_run_group_tests (swapped, s_group_setup_swapped, s_group_teardown);
}
