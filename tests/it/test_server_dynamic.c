//  Quick setup and dynamic fields (PROTOCOL.md 1.1) against a real `quiver serve`:
//  create from a dimension, rows with keys outside the schema, those keys in
//  output_fields, filters and deletes, columnar inserts, the errors, and the dynamic
//  field surviving a flush, a restart and kill -9.
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qv_codec.h"
#include "qv_it_match.h"
#include "qv_it_server.h"

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

#define CALL_OK QV_IT_CALL_OK
#define CALL_ERR QV_IT_CALL_ERR
//  Asserts the value at path of reply r matches the JSON-like text want.
#define MATCH(r, path, want) assert_true (qv_it_match (path, qv_it_path ((r), (path)), (want)))

//  Asserts a call is refused with code and its message contains needle.
static void
s_refused (qv_it_client_t *c, const char *code, const char *needle, const char *request, int line)
{
    qv_doc_t *r = qv_it_call_err_at (line, c, code, "%s", request);
    if (!strstr (qv_it_error (r), needle))
        fail_msg ("line %d: %s -> '%s', expected it to mention '%s'", line, request,
                  qv_it_error (r), needle);
    qv_doc_destroy (&r);
}
#define REFUSED(c, code, needle, request) s_refused ((c), (code), (needle), (request), __LINE__)

//  The quick-setup collection `quick` (dim 2, L2) with five rows, three of them with
//  dynamic keys.
static void
s_make_quick (qv_it_client_t *c, const char *name)
{
    qv_doc_t *r = CALL_OK (c, "{op: 'create_collection', collection: '%s', dimension: 2}", name);
    qv_doc_destroy (&r);
    r = CALL_OK (c, "{op: 'insert', collection: '%s', rows: ["
                    "{id: 1, vector: [0, 0], color: 'red', n: 1, info: {a: 1, tags: ['x']}},"
                    "{id: 2, vector: [1, 0], color: 'blue', n: 2},"
                    "{id: 3, vector: [2, 0], color: 'red', n: 3.5},"
                    "{id: 4, vector: [3, 0]},"
                    "{id: 5, vector: [4, 0], n: null}]}", name);
    MATCH (r, "ids", "[1, 2, 3, 4, 5]");
    qv_doc_destroy (&r);
}

static void
test_quick_setup_describe (void **state)
{
    (void) state;
    qv_it_client_t *c = qv_it_client_new (s_server->endpoint, QV_IT_CALL_MS);
    qv_doc_t *r = CALL_OK (c, "{op: 'create_collection', collection: 'qs_plain', dimension: 3}");
    qv_doc_destroy (&r);
    r = CALL_OK (c, "{op: 'describe_collection', collection: 'qs_plain'}");
    MATCH (r, "fields", "[{name: 'id', type: 'int64', primary: true},"
                        " {name: 'vector', type: 'float_vector', dim: 3, metric: 'L2'}]");
    MATCH (r, "enable_dynamic_field", "true");
    qv_doc_destroy (&r);

    //  Every quick-setup option
    r = CALL_OK (c, "{op: 'create_collection', collection: 'qs_named', dimension: 4, metric: 'COSINE',"
                    " primary_field_name: 'pk', vector_field_name: 'emb', id_type: 'varchar',"
                    " max_length: 32, enable_dynamic_field: false}");
    qv_doc_destroy (&r);
    r = CALL_OK (c, "{op: 'describe_collection', collection: 'qs_named'}");
    MATCH (r, "fields", "[{name: 'pk', type: 'varchar', max_length: 32, primary: true},"
                        " {name: 'emb', type: 'float_vector', dim: 4, metric: 'COSINE'}]");
    MATCH (r, "enable_dynamic_field", "false");
    qv_doc_destroy (&r);
    //  Without the dynamic field an unknown key stays an error
    REFUSED (c, "INVALID_ARGUMENT", "unknown field 'color'",
             "{op: 'insert', collection: 'qs_named', rows: [{pk: 'a', emb: [1, 0, 0, 0], color: 'red'}]}");
    REFUSED (c, "INVALID_ARGUMENT", "max_length 32",
             "{op: 'insert', collection: 'qs_named', rows: [{pk: '0123456789012345678901234567890123', emb: [1, 0, 0, 0]}]}");

    //  auto_id: the server assigns the keys
    r = CALL_OK (c, "{op: 'create_collection', collection: 'qs_auto', dimension: 2, auto_id: true}");
    qv_doc_destroy (&r);
    r = CALL_OK (c, "{op: 'insert', collection: 'qs_auto', rows: [{vector: [1, 2], tag: 'a'}, {vector: [3, 4]}]}");
    assert_int_equal (qv_val_len (qv_it_path (r, "ids")), 2);
    int64_t id0 = qv_it_int (qv_it_path (r, "ids.0"));
    qv_doc_destroy (&r);
    r = CALL_OK (c, "{op: 'get', collection: 'qs_auto', ids: [%lld], output_fields: ['*']}", (long long) id0);
    char want [128];
    snprintf (want, sizeof want, "[{id: %lld, vector: [1, 2], tag: 'a'}]", (long long) id0);
    MATCH (r, "rows", want);
    qv_doc_destroy (&r);
    REFUSED (c, "INVALID_ARGUMENT", "auto_id",
             "{op: 'insert', collection: 'qs_auto', rows: [{id: 5, vector: [1, 2]}]}");
    qv_it_client_destroy (&c);
}

static void
test_quick_setup_errors (void **state)
{
    (void) state;
    qv_it_client_t *c = qv_it_client_new (s_server->endpoint, QV_IT_CALL_MS);
    REFUSED (c, "INVALID_ARGUMENT", "'fields' (the schema) or 'dimension'",
             "{op: 'create_collection', collection: 'bad'}");
    REFUSED (c, "INVALID_ARGUMENT", "'dimension' belongs to quick setup",
             "{op: 'create_collection', collection: 'bad', dimension: 2, fields: ["
             "{name: 'id', type: 'int64', primary: true}, {name: 'v', type: 'float_vector', dim: 2}]}");
    REFUSED (c, "INVALID_ARGUMENT", "'metric' belongs to quick setup",
             "{op: 'create_collection', collection: 'bad', metric: 'IP', fields: ["
             "{name: 'id', type: 'int64', primary: true}, {name: 'v', type: 'float_vector', dim: 2}]}");
    REFUSED (c, "INVALID_ARGUMENT", "dim 0 is out of range",
             "{op: 'create_collection', collection: 'bad', dimension: 0}");
    REFUSED (c, "INVALID_ARGUMENT", "dim 40000 is out of range",
             "{op: 'create_collection', collection: 'bad', dimension: 40000}");
    REFUSED (c, "INVALID_ARGUMENT", "unknown metric",
             "{op: 'create_collection', collection: 'bad', dimension: 2, metric: 'HAMMING'}");
    REFUSED (c, "INVALID_ARGUMENT", "id_type",
             "{op: 'create_collection', collection: 'bad', dimension: 2, id_type: 'float'}");
    REFUSED (c, "INVALID_ARGUMENT", "max_length applies to a varchar",
             "{op: 'create_collection', collection: 'bad', dimension: 2, max_length: 8}");
    REFUSED (c, "INVALID_ARGUMENT", "auto_id applies to an int64",
             "{op: 'create_collection', collection: 'bad', dimension: 2, id_type: 'varchar', auto_id: true}");
    REFUSED (c, "INVALID_ARGUMENT", "field 'x' appears twice",
             "{op: 'create_collection', collection: 'bad', dimension: 2, primary_field_name: 'x', vector_field_name: 'x'}");
    REFUSED (c, "INVALID_ARGUMENT", "field name '9a' is not valid",
             "{op: 'create_collection', collection: 'bad', dimension: 2, primary_field_name: '9a'}");
    REFUSED (c, "MALFORMED", "'dimension' must be",
             "{op: 'create_collection', collection: 'bad', dimension: 'two'}");
    REFUSED (c, "MALFORMED", "'enable_dynamic_field' must be",
             "{op: 'create_collection', collection: 'bad', dimension: 2, enable_dynamic_field: 1}");
    //  `$meta` is never declared by hand
    REFUSED (c, "INVALID_ARGUMENT", "reserved for the dynamic field",
             "{op: 'create_collection', collection: 'bad', fields: [{name: 'id', type: 'int64', primary: true},"
             " {name: 'v', type: 'float_vector', dim: 2}, {name: '$meta', type: 'json'}]}");
    REFUSED (c, "INVALID_ARGUMENT", "reserved for the dynamic field",
             "{op: 'create_collection', collection: 'bad', fields: [{name: 'id', type: 'int64', primary: true},"
             " {name: 'v', type: 'float_vector', dim: 2}, {name: '$meta', type: 'json', dynamic: true}]}");
    REFUSED (c, "INVALID_ARGUMENT", "'dynamic' marks the hidden field",
             "{op: 'create_collection', collection: 'bad', fields: [{name: 'id', type: 'int64', primary: true},"
             " {name: 'v', type: 'float_vector', dim: 2}, {name: 'j', type: 'json', dynamic: true}]}");
    qv_doc_t *r = CALL_OK (c, "{op: 'has_collection', collection: 'bad'}");
    MATCH (r, "exists", "false");
    qv_doc_destroy (&r);
    qv_it_client_destroy (&c);
}

static void
test_dynamic_rows_and_output (void **state)
{
    (void) state;
    qv_it_client_t *c = qv_it_client_new (s_server->endpoint, QV_IT_CALL_MS);
    s_make_quick (c, "dyn_out");
    qv_doc_t *r = CALL_OK (c, "{op: 'get', collection: 'dyn_out', ids: [1, 2, 4, 5], output_fields: ['*']}");
    MATCH (r, "rows", "[{id: 1, vector: [0, 0], color: 'red', n: 1, info: {a: 1, tags: ['x']}},"
                      " {id: 2, vector: [1, 0], color: 'blue', n: 2},"
                      " {id: 4, vector: [3, 0]},"
                      " {id: 5, vector: [4, 0], n: null}]");
    qv_doc_destroy (&r);
    //  By name: a row without the key has no entry for it; `$meta` is every key
    r = CALL_OK (c, "{op: 'get', collection: 'dyn_out', ids: [1, 2, 4], output_fields: ['color', 'color', 'info']}");
    MATCH (r, "rows", "[{id: 1, color: 'red', info: {a: 1, tags: ['x']}}, {id: 2, color: 'blue'}, {id: 4}]");
    qv_doc_destroy (&r);
    r = CALL_OK (c, "{op: 'get', collection: 'dyn_out', ids: [2], output_fields: ['$meta']}");
    MATCH (r, "rows", "[{id: 2, color: 'blue', n: 2}]");
    qv_doc_destroy (&r);
    r = CALL_OK (c, "{op: 'query', collection: 'dyn_out', filter: 'id < 3', output_fields: ['n', 'nothing']}");
    MATCH (r, "rows", "[{id: 1, n: 1}, {id: 2, n: 2}]");
    qv_doc_destroy (&r);
    //  describe hides `$meta`; a row may not set it directly
    r = CALL_OK (c, "{op: 'describe_collection', collection: 'dyn_out'}");
    assert_int_equal (qv_val_len (qv_it_path (r, "fields")), 2);
    MATCH (r, "rows", "5");
    qv_doc_destroy (&r);
    REFUSED (c, "INVALID_ARGUMENT", "hidden dynamic field",
             "{op: 'insert', collection: 'dyn_out', rows: [{id: 9, vector: [0, 0], '$meta': {a: 1}}]}");
    qv_it_client_destroy (&c);
}

static void
test_dynamic_filters (void **state)
{
    (void) state;
    qv_it_client_t *c = qv_it_client_new (s_server->endpoint, QV_IT_CALL_MS);
    s_make_quick (c, "dyn_filter");
    static const struct { const char *filter; const char *ids; } cases [] = {
        { "color == \"red\"", "[1, 3]" },
        { "$meta[\"color\"] == \"red\"", "[1, 3]" },
        { "color != \"red\"", "[2]" },             //  missing keys are unknown
        { "n > 1", "[2, 3]" },
        { "n >= 1 and color in [\"blue\", \"green\"]", "[2]" },
        { "info[\"a\"] == 1", "[1]" },
        { "$meta[\"info\"][\"tags\"][0] == \"x\"", "[1]" },
        { "n is null", "[4, 5]" },
        { "color is not null and id > 1", "[2, 3]" },
        { "color like \"r%\"", "[1, 3]" },
        { "not (color == \"red\") or id == 4", "[2, 4]" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases [0]; i++) {
        qv_doc_t *r = CALL_OK (c, "{op: 'query', collection: 'dyn_filter', filter: '%s'}", cases [i].filter);
        char what [160];
        snprintf (what, sizeof what, "query %s", cases [i].filter);
        //  rows are {id} maps; compare the ids in order of id
        const qv_val_t *rows = qv_it_path (r, "rows");
        char got [256] = "[";
        for (size_t k = 0; rows && k < qv_val_len (rows); k++)
            snprintf (got + strlen (got), sizeof got - strlen (got), "%s%lld", k ? ", " : "",
                      (long long) qv_it_int (qv_it_vpath (qv_val_at (rows, k), "id")));
        strcat (got, "]");
        if (strcmp (got, cases [i].ids))
            fail_msg ("%s: ids %s, expected %s", what, got, cases [i].ids);
        qv_doc_destroy (&r);
    }
    //  A search with a filter on a dynamic key, returning dynamic keys
    qv_doc_t *r = CALL_OK (c, "{op: 'search', collection: 'dyn_filter', vectors: [[2.1, 0]], limit: 3,"
                              " filter: 'color == \"red\"', output_fields: ['color', 'n']}");
    MATCH (r, "results.0.0.id", "3");
    MATCH (r, "results.0.0.fields", "{color: 'red', n: 3.5}");
    MATCH (r, "results.0.1.id", "1");
    MATCH (r, "results.0.1.fields", "{color: 'red', n: 1}");
    assert_int_equal (qv_val_len (qv_it_path (r, "results.0")), 2);
    assert_true (fabs (qv_it_num (qv_it_path (r, "results.0.1.distance")) - 4.41) < 1e-4);
    qv_doc_destroy (&r);
    //  Without the dynamic field an unknown name stays an error
    r = CALL_OK (c, "{op: 'create_collection', collection: 'dyn_off', dimension: 2, enable_dynamic_field: false}");
    qv_doc_destroy (&r);
    REFUSED (c, "INVALID_ARGUMENT", "unknown field 'color'",
             "{op: 'query', collection: 'dyn_off', filter: 'color == \"red\"'}");
    REFUSED (c, "INVALID_ARGUMENT", "unknown field '$meta'",
             "{op: 'query', collection: 'dyn_off', filter: '$meta[\"a\"] == 1'}");
    REFUSED (c, "INVALID_ARGUMENT", "no field 'color'",
             "{op: 'get', collection: 'dyn_off', ids: [1], output_fields: ['color']}");
    //  Delete by a dynamic key
    r = CALL_OK (c, "{op: 'delete', collection: 'dyn_filter', filter: 'color == \"red\"'}");
    MATCH (r, "deleted", "2");
    qv_doc_destroy (&r);
    r = CALL_OK (c, "{op: 'query', collection: 'dyn_filter', filter: 'id > 0', output_fields: ['count(*)']}");
    MATCH (r, "rows", "[{'count(*)': 3}]");
    qv_doc_destroy (&r);
    qv_it_client_destroy (&c);
}

static void
test_dynamic_explicit_schema_and_columns (void **state)
{
    (void) state;
    qv_it_client_t *c = qv_it_client_new (s_server->endpoint, QV_IT_CALL_MS);
    qv_doc_t *r = CALL_OK (c, "{op: 'create_collection', collection: 'dyn_cols', enable_dynamic_field: true,"
                              " fields: [{name: 'pk', type: 'varchar', primary: true, max_length: 8},"
                              " {name: 'tag', type: 'int32'}, {name: 'v', type: 'float_vector', dim: 2}]}");
    qv_doc_destroy (&r);
    r = CALL_OK (c, "{op: 'describe_collection', collection: 'dyn_cols'}");
    MATCH (r, "enable_dynamic_field", "true");
    assert_int_equal (qv_val_len (qv_it_path (r, "fields")), 3);
    qv_doc_destroy (&r);
    //  Columns: a column outside the schema is a dynamic key of every row
    r = CALL_OK (c, "{op: 'insert', collection: 'dyn_cols', columns: {pk: ['a', 'b'], tag: [1, 2],"
                    " v: [[0, 1], [1, 1]], city: ['Oslo', null], score: [0.5, 7]}}");
    qv_doc_destroy (&r);
    r = CALL_OK (c, "{op: 'get', collection: 'dyn_cols', ids: ['a', 'b'], output_fields: ['*']}");
    MATCH (r, "rows", "[{pk: 'a', tag: 1, v: [0, 1], city: 'Oslo', score: 0.5},"
                      " {pk: 'b', tag: 2, v: [1, 1], city: null, score: 7}]");
    qv_doc_destroy (&r);
    REFUSED (c, "INVALID_ARGUMENT", "column 'city' has 1 values",
             "{op: 'insert', collection: 'dyn_cols', columns: {pk: ['c', 'd'], tag: [1, 2], v: [[0, 1], [1, 1]], city: ['x']}}");
    //  Declared fields are still checked
    REFUSED (c, "MALFORMED", "field 'tag' row 0",
             "{op: 'insert', collection: 'dyn_cols', rows: [{pk: 'c', tag: 'one', v: [0, 0], x: 1}]}");
    //  Upsert replaces the dynamic keys with the new row's
    r = CALL_OK (c, "{op: 'upsert', collection: 'dyn_cols', rows: [{pk: 'a', tag: 3, v: [0, 1], town: 'Bergen'}]}");
    qv_doc_destroy (&r);
    r = CALL_OK (c, "{op: 'query', collection: 'dyn_cols', filter: 'town == \"Bergen\" or city == \"Oslo\"',"
                    " output_fields: ['*']}");
    MATCH (r, "rows", "[{pk: 'a', tag: 3, v: [0, 1], town: 'Bergen'}]");
    qv_doc_destroy (&r);
    qv_it_client_destroy (&c);
}

//  The dynamic field lives in the WAL (acknowledged, unflushed rows), in flushed
//  segments and in the catalog: after kill -9 and a restart everything reads the same.
static void
test_dynamic_survives_restart (void **state)
{
    (void) state;
    qv_it_server_t *server = qv_it_server_new (NULL);
    assert_non_null (server);
    assert_int_equal (qv_it_server_start (server), 0);
    qv_it_client_t *c = qv_it_client_new (server->endpoint, QV_IT_CALL_MS);
    s_make_quick (c, "dyn_disk");
    qv_doc_t *r = CALL_OK (c, "{op: 'flush', collection: 'dyn_disk'}");
    qv_doc_destroy (&r);
    //  ... and a WAL tail after the flush
    r = CALL_OK (c, "{op: 'insert', collection: 'dyn_disk', rows: [{id: 6, vector: [5, 0], color: 'red', n: 6}]}");
    qv_doc_destroy (&r);
    qv_it_client_destroy (&c);
    for (int round = 0; round < 2; round++) {
        if (round == 0)
            assert_int_equal (qv_it_server_kill (server), 0);
        else
            assert_int_equal (qv_it_server_signal (server, SIGTERM, 30000), 0);
        assert_int_equal (qv_it_server_restart (server), 0);
        c = qv_it_client_new (server->endpoint, QV_IT_CALL_MS);
        r = CALL_OK (c, "{op: 'describe_collection', collection: 'dyn_disk'}");
        MATCH (r, "enable_dynamic_field", "true");
        assert_int_equal (qv_it_int (qv_it_path (r, "rows")), 6 + round);
        qv_doc_destroy (&r);
        r = CALL_OK (c, "{op: 'query', collection: 'dyn_disk', filter: 'color == \"red\"', output_fields: ['*']}");
        MATCH (r, "rows", "[{id: 1, vector: [0, 0], color: 'red', n: 1, info: {a: 1, tags: ['x']}},"
                          " {id: 3, vector: [2, 0], color: 'red', n: 3.5},"
                          " {id: 6, vector: [5, 0], color: 'red', n: 6}]");
        qv_doc_destroy (&r);
        //  New rows still take dynamic keys
        r = CALL_OK (c, "{op: 'insert', collection: 'dyn_disk', rows: [{id: %d, vector: [0, 1], round: %d}]}",
                     10 + round, round);
        qv_doc_destroy (&r);
        r = CALL_OK (c, "{op: 'get', collection: 'dyn_disk', ids: [%d], output_fields: ['round']}", 10 + round);
        char want [64];
        snprintf (want, sizeof want, "[{id: %d, round: %d}]", 10 + round, round);
        MATCH (r, "rows", want);
        qv_doc_destroy (&r);
        qv_it_client_destroy (&c);
    }
    qv_it_server_destroy (&server);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_quick_setup_describe),
        cmocka_unit_test (test_quick_setup_errors),
        cmocka_unit_test (test_dynamic_rows_and_output),
        cmocka_unit_test (test_dynamic_filters),
        cmocka_unit_test (test_dynamic_explicit_schema_and_columns),
        cmocka_unit_test (test_dynamic_survives_restart),
    };
    if (getenv ("QV_IT_ONLY"))
        cmocka_set_test_filter (getenv ("QV_IT_ONLY"));
    return cmocka_run_group_tests (tests, s_group_setup, s_group_teardown);
}
