//  Consistency levels against a real `quiver serve` (DESIGN.md "Read path"): the segment
//  manager acknowledges an insert once it is durable, before the searcher has applied
//  it, so every read waits in the searcher for its guarantee timestamp.
//    strong (the default): 1,000 insert-then-read pairs (a filtered search or a get of
//    the key just inserted), not one miss;
//  and, with the searcher's apply held back by the fault hook QV_FAULT_APPLY_DELAY_MS:
//    eventually answers at once, without the row still held back;
//    session with the write's ts sees it; strong sees it;
//    bounded sees every write acknowledged longer ago than --bounded-staleness-ms
//    (measured: how long after its ack a row first shows at bounded);
//    strong with the apply held back past --read-wait-ms gets TIMEOUT naming the
//    guarantee timestamp and how far the shard has got;
//    strong reads after a delete (by ids, by filter) and after DDL see it.
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <czmq.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qv_it_server.h"

#define CALL_OK QV_IT_CALL_OK
#define CALL_ERR QV_IT_CALL_ERR

#define S_DELAY_MS   3000           //  QV_FAULT_APPLY_DELAY_MS of the held-back server
#define S_BOUND_MS   1000           //  its --bounded-staleness-ms

static const char *s_create =
    "{op: 'create_collection', collection: 'c', fields: ["
    "{name: 'id', type: 'int64', primary: true},"
    "{name: 'v', type: 'float_vector', dim: 2, metric: 'L2'}]}";

//  Starts a server whose searcher applies every record delay_ms late (0: not held).
static qv_it_server_t *
s_start (int delay_ms, const char *const *extra)
{
    char delay [16];
    snprintf (delay, sizeof delay, "%d", delay_ms);
    if (delay_ms > 0)
        setenv ("QV_FAULT_APPLY_DELAY_MS", delay, 1);
    qv_it_server_t *server = qv_it_server_new (extra);
    int rc = server ? qv_it_server_start (server) : -1;
    unsetenv ("QV_FAULT_APPLY_DELAY_MS");
    assert_int_equal (rc, 0);
    return server;
}

//  Inserts row id; returns the write's ts.
static uint64_t
s_insert (qv_it_client_t *c, int64_t id)
{
    qv_doc_t *r = CALL_OK (c, "{op: 'insert', collection: 'c', rows: [{id: %lld, v: [%lld.0, 1.0]}]}",
                           (long long) id, (long long) id);
    assert_int_equal (qv_it_int (qv_it_path (r, "ids.0")), id);
    assert_int_equal (qv_it_int (qv_it_path (r, "count")), 1);
    int64_t ts = qv_it_int (qv_it_path (r, "ts"));
    assert_true (ts > 0);
    qv_doc_destroy (&r);
    return (uint64_t) ts;
}

//  Whether a get of id at consistency level (with guarantee_ts ts if > 0) finds it.
static bool
s_get (qv_it_client_t *c, int64_t id, const char *level, uint64_t ts)
{
    char extra [96] = "";
    if (ts)
        snprintf (extra, sizeof extra, ", guarantee_ts: %llu", (unsigned long long) ts);
    qv_doc_t *r = CALL_OK (c, "{op: 'get', collection: 'c', ids: [%lld], consistency: '%s'%s}",
                           (long long) id, level, extra);
    bool found = qv_it_int (qv_it_path (r, "rows.0.id")) == id;
    qv_doc_destroy (&r);
    return found;
}

static void
test_strong_pairs (void **state)
{
    (void) state;
    qv_it_server_t *server = s_start (0, NULL);
    qv_it_client_t *c = qv_it_client_new (server->endpoint, QV_IT_CALL_MS);
    qv_doc_destroy ((qv_doc_t *[]) { CALL_OK (c, "%s", s_create) });
    int misses = 0;
    uint64_t last_ts = 0;
    for (int64_t id = 1; id <= 1000; id++) {
        uint64_t ts = s_insert (c, id);
        if (ts <= last_ts)
            fail_msg ("insert %lld: ts %llu is not above the previous write's %llu", (long long) id,
                      (unsigned long long) ts, (unsigned long long) last_ts);
        last_ts = ts;
        bool seen;
        if (id % 2) {               //  no consistency given: strong, the default
            qv_doc_t *r = CALL_OK (c, "{op: 'search', collection: 'c', vectors: [[0.0, 0.0]], "
                                      "limit: 1, filter: 'id == %lld'}", (long long) id);
            seen = qv_it_int (qv_it_path (r, "results.0.0.id")) == id;
            qv_doc_destroy (&r);
        }
        else
            seen = s_get (c, id, "strong", 0);
        misses += !seen;
    }
    assert_int_equal (misses, 0);
    qv_doc_t *r = CALL_OK (c, "{op: 'query', collection: 'c', filter: 'id > 0', "
                              "output_fields: ['count(*)']}");
    assert_int_equal (qv_it_int (qv_it_path (r, "rows.0.count(*)")), 1000);
    qv_doc_destroy (&r);
    qv_it_client_destroy (&c);
    qv_it_server_destroy (&server);
}

static void
test_levels_with_apply_held_back (void **state)
{
    (void) state;
    char bound [16];
    snprintf (bound, sizeof bound, "%d", S_BOUND_MS);
    const char *const extra [] = { "--bounded-staleness-ms", bound, "--read-wait-ms", "30000", NULL };
    qv_it_server_t *server = s_start (S_DELAY_MS, extra);
    assert_int_equal (qv_it_server_wait_log (server, "QV_FAULT_APPLY_DELAY_MS=", 5000), 0);
    qv_it_client_t *c = qv_it_client_new (server->endpoint, QV_IT_CALL_MS);
    qv_doc_destroy ((qv_doc_t *[]) { CALL_OK (c, "%s", s_create) });

    //  eventually: answered without waiting for the row held back S_DELAY_MS
    uint64_t ts = s_insert (c, 1);
    assert_false (s_get (c, 1, "eventually", 0));
    //  session with the write's ts: waits for it
    assert_true (s_get (c, 1, "session", ts));
    //  strong (the default): every acknowledged write
    s_insert (c, 2);
    assert_true (s_get (c, 2, "strong", 0));
    qv_doc_t *r = CALL_OK (c, "{op: 'search', collection: 'c', vectors: [[2.0, 1.0]], limit: 1}");
    assert_int_equal (qv_it_int (qv_it_path (r, "results.0.0.id")), 2);
    qv_doc_destroy (&r);

    //  bounded: a row acknowledged more than the bound ago is always seen; measure how
    //  long after its ack a row first shows at bounded (polled every 50 ms)
    int64_t worst = 0;
    for (int64_t id = 10; id < 15; id++) {
        s_insert (c, id);
        int64_t acked = zclock_mono ();
        while (!s_get (c, id, "bounded", 0)) {
            if (zclock_mono () - acked > S_BOUND_MS)
                break;
            zclock_sleep (50);
        }
        //  past the bound (measured from before the read was sent): it must show
        if (!s_get (c, id, "bounded", 0))
            fail_msg ("row %lld acknowledged %lld ms ago is not seen at bounded (bound %d ms)",
                      (long long) id, (long long) (zclock_mono () - acked), S_BOUND_MS);
        int64_t seen = zclock_mono () - acked;
        if (seen > worst)
            worst = seen;
    }
    printf ("bounded (%d ms, apply held back %d ms): rows first seen at most %lld ms after their ack\n",
            S_BOUND_MS, S_DELAY_MS, (long long) worst);
    qv_it_client_destroy (&c);
    qv_it_server_destroy (&server);
}

static void
test_strong_timeout (void **state)
{
    (void) state;
    const char *const extra [] = { "--read-wait-ms", "300", NULL };
    qv_it_server_t *server = s_start (S_DELAY_MS, extra);
    qv_it_client_t *c = qv_it_client_new (server->endpoint, QV_IT_CALL_MS);
    qv_doc_destroy ((qv_doc_t *[]) { CALL_OK (c, "%s", s_create) });
    s_insert (c, 1);
    qv_doc_t *r = CALL_ERR (c, "TIMEOUT", "{op: 'get', collection: 'c', ids: [1]}");
    assert_non_null (strstr (qv_it_error (r), "applied the shard only up to"));
    assert_non_null (strstr (qv_it_error (r), "--read-wait-ms"));
    qv_doc_destroy (&r);
    //  eventually still answers (without the row); once applied, strong sees it
    assert_false (s_get (c, 1, "eventually", 0));
    int64_t start = zclock_mono ();
    bool seen = false;
    while (!seen && zclock_mono () - start < 60000) {
        seen = s_get (c, 1, "eventually", 0);
        if (!seen)
            zclock_sleep (100);
    }
    assert_true (seen);
    assert_true (s_get (c, 1, "strong", 0));
    qv_it_client_destroy (&c);
    qv_it_server_destroy (&server);
}

//  Strong reads right after a delete and after DDL (create_index, drop_index,
//  drop_collection), with the searcher's apply held back: each read sees the write
//  acknowledged before it, whoever acknowledged it.
static void
test_strong_after_delete_and_ddl (void **state)
{
    (void) state;
    const char *const extra [] = { "--read-wait-ms", "30000", NULL };
    qv_it_server_t *server = s_start (S_DELAY_MS, extra);
    qv_it_client_t *c = qv_it_client_new (server->endpoint, QV_IT_CALL_MS);
    qv_doc_destroy ((qv_doc_t *[]) { CALL_OK (c, "%s", s_create) });
    for (int64_t id = 1; id <= 3; id++)
        s_insert (c, id);
    //  delete, then get and count at strong (the default)
    qv_doc_t *r = CALL_OK (c, "{op: 'delete', collection: 'c', ids: [2]}");
    assert_int_equal (qv_it_int (qv_it_path (r, "deleted")), 1);
    assert_true (qv_it_int (qv_it_path (r, "ts")) > 0);
    qv_doc_destroy (&r);
    assert_false (s_get (c, 2, "strong", 0));
    assert_true (s_get (c, 1, "strong", 0));
    r = CALL_OK (c, "{op: 'query', collection: 'c', filter: 'id > 0', output_fields: ['count(*)']}");
    assert_int_equal (qv_it_int (qv_it_path (r, "rows.0.count(*)")), 2);
    qv_doc_destroy (&r);
    //  delete by filter, then a strong search does not find the row
    r = CALL_OK (c, "{op: 'delete', collection: 'c', filter: 'id == 3'}");
    assert_int_equal (qv_it_int (qv_it_path (r, "deleted")), 1);
    qv_doc_destroy (&r);
    r = CALL_OK (c, "{op: 'search', collection: 'c', vectors: [[3.0, 1.0]], limit: 5}");
    assert_int_equal (qv_val_len (qv_it_path (r, "results.0")), 1);
    assert_int_equal (qv_it_int (qv_it_path (r, "results.0.0.id")), 1);
    qv_doc_destroy (&r);
    //  create_index, then describe_index sees it; drop_index, then it is gone
    r = CALL_OK (c, "{op: 'create_index', collection: 'c', field: 'v', index_type: 'HNSW'}");
    qv_doc_destroy (&r);
    r = CALL_OK (c, "{op: 'describe_index', collection: 'c', field: 'v'}");
    assert_true (qv_it_str_is (qv_it_path (r, "index_type"), "HNSW"));
    qv_doc_destroy (&r);
    r = CALL_OK (c, "{op: 'drop_index', collection: 'c', field: 'v'}");
    qv_doc_destroy (&r);
    r = CALL_ERR (c, "NOT_FOUND", "{op: 'describe_index', collection: 'c', field: 'v'}");
    qv_doc_destroy (&r);
    //  drop_collection, then it is gone; created again, it is empty
    r = CALL_OK (c, "{op: 'drop_collection', collection: 'c'}");
    qv_doc_destroy (&r);
    r = CALL_ERR (c, "NOT_FOUND", "{op: 'get', collection: 'c', ids: [1]}");
    qv_doc_destroy (&r);
    qv_doc_destroy ((qv_doc_t *[]) { CALL_OK (c, "%s", s_create) });
    assert_false (s_get (c, 1, "strong", 0));
    qv_it_client_destroy (&c);
    qv_it_server_destroy (&server);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_strong_pairs),
        cmocka_unit_test (test_levels_with_apply_held_back),
        cmocka_unit_test (test_strong_timeout),
        cmocka_unit_test (test_strong_after_delete_and_ddl),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
