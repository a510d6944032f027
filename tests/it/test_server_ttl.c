//  Time to live and alter_collection against a real `quiver serve`: rows older than a
//  collection's ttl_seconds (by their insert timestamp) are invisible to search (exact
//  and through an HNSW index), query, count(*) and get at once, in growing and flushed
//  segments; alter_collection changes ttl_seconds (rows come back while they are not
//  yet removed when it is raised), consistency and description, refuses bad input,
//  and survives kill -9 (replayed from the log, and kept in the manifest).
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <czmq.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "qv_codec.h"
#include "qv_it_server.h"

#define CALL_OK QV_IT_CALL_OK
#define CALL_ERR QV_IT_CALL_ERR

static qv_it_server_t *s_server;

static int
s_group_setup (void **state)
{
    (void) state;
    s_server = qv_it_server_new (NULL);
    return !s_server || qv_it_server_start (s_server) ? -1 : 0;
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

//  Inserts ids [from, to) with vector (id, 1, 0, 0).
static void
s_insert (qv_it_client_t *c, const char *coll, int from, int to)
{
    char rows [8192] = "";
    size_t len = 0;
    for (int i = from; i < to; i++)
        len += (size_t) snprintf (rows + len, sizeof rows - len, "%s{id: %d, v: [%d.0, 1.0, 0.0, 0.0]}",
                                  i > from ? "," : "", i, i);
    qv_doc_t *r = CALL_OK (c, "{op: 'insert', collection: '%s', rows: [%s]}", coll, rows);
    assert_int_equal (qv_it_int (qv_it_path (r, "count")), to - from);
    qv_doc_destroy (&r);
}

static int64_t
s_count (qv_it_client_t *c, const char *coll, const char *filter)
{
    qv_doc_t *r = CALL_OK (c, "{op: 'query', collection: '%s', filter: '%s', "
                              "output_fields: ['count(*)']}", coll, filter);
    int64_t n = qv_it_int (qv_it_path (r, "rows.0.count(*)"));
    qv_doc_destroy (&r);
    return n;
}

//  What every read sees of ids [0, n): each id below `expired` is invisible, each at or
//  above it visible (search by exact scan or index, query of the rows, count, get).
static void
s_assert_reads_at (int line, qv_it_client_t *c, const char *coll, int n, int expired)
{
    print_message ("line %d: %s, %d rows, %d expired\n", line, coll, n, expired);
    assert_int_equal (s_count (c, coll, "id >= 0"), n - expired);
    assert_int_equal (s_count (c, coll, "id < 1000000"), n - expired);
    //  Search for every row: the nearest rows of (0, 1, 0, 0) are the smallest ids
    qv_doc_t *r = CALL_OK (c, "{op: 'search', collection: '%s', vectors: [[0.0, 1.0, 0.0, 0.0]], "
                              "limit: %d, params: {ef: 256}}", coll, n);
    const qv_val_t *hits = qv_it_path (r, "results.0");
    assert_non_null (hits);
    assert_int_equal (qv_val_len (hits), n - expired);
    for (size_t i = 0; i < qv_val_len (hits); i++)
        assert_true (qv_it_int (qv_it_vpath (qv_val_at (hits, i), "id")) >= expired);
    if (n > expired)
        assert_int_equal (qv_it_int (qv_it_path (r, "results.0.0.id")), expired);
    qv_doc_destroy (&r);
    //  The rows a query returns
    r = CALL_OK (c, "{op: 'query', collection: '%s', filter: 'id >= 0', limit: 1000}", coll);
    const qv_val_t *rows = qv_it_path (r, "rows");
    assert_int_equal (qv_val_len (rows), n - expired);
    for (size_t i = 0; i < qv_val_len (rows); i++)
        assert_true (qv_it_int (qv_it_vpath (qv_val_at (rows, i), "id")) >= expired);
    qv_doc_destroy (&r);
    //  get of the first id and the last
    r = CALL_OK (c, "{op: 'get', collection: '%s', ids: [0, %d]}", coll, n - 1);
    rows = qv_it_path (r, "rows");
    assert_int_equal (qv_val_len (rows), (expired > 0 ? 0 : 1) + (n > expired ? 1 : 0));
    qv_doc_destroy (&r);
}

#define s_assert_reads(...) s_assert_reads_at (__LINE__, __VA_ARGS__)

static void
s_describe (qv_it_client_t *c, const char *coll, int64_t ttl, const char *consistency,
            const char *description)
{
    qv_doc_t *r = CALL_OK (c, "{op: 'describe_collection', collection: '%s'}", coll);
    assert_int_equal (qv_it_int (qv_it_path (r, "ttl_seconds")), ttl);
    assert_true (qv_it_str_is (qv_it_path (r, "consistency"), consistency));
    assert_true (qv_it_str_is (qv_it_path (r, "description"), description));
    qv_doc_destroy (&r);
}

//  A collection created with a TTL: its rows are gone from every read once it passes.
static void
test_ttl_at_create (void **state)
{
    (void) state;
    qv_it_client_t *c = s_client ();
    qv_doc_t *r = CALL_OK (c, "{op: 'create_collection', collection: 'short', ttl_seconds: 1, "
                              "fields: [{name: 'id', type: 'int64', primary: true},"
                              "{name: 'v', type: 'float_vector', dim: 4}]}");
    qv_doc_destroy (&r);
    s_describe (c, "short", 1, "strong", "");
    s_insert (c, "short", 0, 30);
    r = CALL_OK (c, "{op: 'flush', collection: 'short'}");
    qv_doc_destroy (&r);
    s_insert (c, "short", 30, 60);          //  growing
    zclock_sleep (1500);
    s_assert_reads (c, "short", 60, 60);
    //  Rows inserted now are seen
    s_insert (c, "short", 60, 61);
    assert_int_equal (s_count (c, "short", "id >= 0"), 1);
    qv_it_client_destroy (&c);
}

//  TTL set later, raised (rows not yet removed come back), set again; the other
//  properties; all of it after kill -9.
static void
test_alter_collection (void **state)
{
    (void) state;
    qv_it_client_t *c = s_client ();
    qv_doc_t *r = CALL_OK (c, "{op: 'create_collection', collection: 'aged', description: 'd0', "
                              "fields: [{name: 'id', type: 'int64', primary: true},"
                              "{name: 'v', type: 'float_vector', dim: 4}]}");
    qv_doc_destroy (&r);
    r = CALL_OK (c, "{op: 'create_index', collection: 'aged', field: 'v', index_type: 'HNSW', "
                    "params: {M: 8, efConstruction: 64}}");
    qv_doc_destroy (&r);
    //  Old rows: flushed (indexed) and growing
    s_insert (c, "aged", 0, 40);
    r = CALL_OK (c, "{op: 'flush', collection: 'aged'}");
    qv_doc_destroy (&r);
    s_insert (c, "aged", 40, 50);
    s_assert_reads (c, "aged", 50, 0);
    //  Five seconds later, new rows; then a TTL of three seconds expires the old ones
    zclock_sleep (5000);
    s_insert (c, "aged", 50, 80);
    r = CALL_OK (c, "{op: 'alter_collection', collection: 'aged', ttl_seconds: 3}");
    qv_doc_destroy (&r);
    s_describe (c, "aged", 3, "strong", "d0");
    s_assert_reads (c, "aged", 80, 50);
    //  TTL off: not removed yet, so seen again
    r = CALL_OK (c, "{op: 'alter_collection', collection: 'aged', ttl_seconds: 0}");
    qv_doc_destroy (&r);
    s_assert_reads (c, "aged", 80, 0);
    //  The other properties, alone and together
    r = CALL_OK (c, "{op: 'alter_collection', collection: 'aged', consistency: 'eventually'}");
    qv_doc_destroy (&r);
    s_describe (c, "aged", 0, "eventually", "d0");
    r = CALL_OK (c, "{op: 'alter_collection', collection: 'aged', description: 'd1', "
                    "consistency: 'bounded', ttl_seconds: 3}");
    qv_doc_destroy (&r);
    s_describe (c, "aged", 3, "bounded", "d1");
    s_assert_reads (c, "aged", 80, 50);

    //  Refused: nothing to change, an unknown collection, bad values, unknown fields
    r = CALL_ERR (c, "INVALID_ARGUMENT", "{op: 'alter_collection', collection: 'aged'}");
    assert_non_null (strstr (qv_it_error (r), "ttl_seconds"));
    qv_doc_destroy (&r);
    r = CALL_ERR (c, "NOT_FOUND", "{op: 'alter_collection', collection: 'nosuch', ttl_seconds: 5}");
    qv_doc_destroy (&r);
    r = CALL_ERR (c, "INVALID_ARGUMENT", "{op: 'alter_collection', collection: 'aged', "
                                         "consistency: 'sometimes'}");
    qv_doc_destroy (&r);
    r = CALL_ERR (c, "MALFORMED", "{op: 'alter_collection', collection: 'aged', "
                                  "ttl_seconds: -1}");
    qv_doc_destroy (&r);
    r = CALL_ERR (c, "INVALID_ARGUMENT", "{op: 'alter_collection', collection: 'aged', "
                                         "ttl_seconds: 99999999999}");
    qv_doc_destroy (&r);
    r = CALL_ERR (c, "INVALID_ARGUMENT", "{op: 'alter_collection', collection: 'aged', "
                                         "shards: 2}");
    qv_doc_destroy (&r);
    s_describe (c, "aged", 3, "bounded", "d1");

    //  After kill -9: the alters replayed from the log
    assert_int_equal (qv_it_server_kill (s_server), 0);
    assert_int_equal (qv_it_server_restart (s_server), 0);
    qv_it_client_destroy (&c);
    c = s_client ();
    s_describe (c, "aged", 3, "bounded", "d1");
    assert_int_equal (s_count (c, "aged", "id < 50"), 0);
    //  ...and from a manifest written after them
    r = CALL_OK (c, "{op: 'alter_collection', collection: 'aged', ttl_seconds: 100000, "
                    "description: 'd2', consistency: 'strong'}");
    qv_doc_destroy (&r);
    s_insert (c, "aged", 80, 90);
    r = CALL_OK (c, "{op: 'flush', collection: 'aged'}");
    qv_doc_destroy (&r);
    assert_int_equal (qv_it_server_kill (s_server), 0);
    assert_int_equal (qv_it_server_restart (s_server), 0);
    qv_it_client_destroy (&c);
    c = s_client ();
    s_describe (c, "aged", 100000, "strong", "d2");
    s_assert_reads (c, "aged", 90, 0);
    qv_it_client_destroy (&c);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_ttl_at_create),
        cmocka_unit_test (test_alter_collection),
    };
    return cmocka_run_group_tests (tests, s_group_setup, s_group_teardown);
}
