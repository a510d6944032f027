//  The public API against a real `quiver serve`: collections, inserts of every type,
//  get, upsert, delete, search with each metric, paging, and error codes.
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <czmq.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/wait.h>

#include "qv_codec.h"
#include "qv_it_server.h"

static qv_it_server_t *s_server;   //  one server for the group (--max-request-mb 1)
static qv_it_server_t *s_other;    //  a test's own server, when it needs one
static const char *s_endpoint;     //  where s_client connects

static int
s_group_setup (void **state)
{
    (void) state;
    const char *extra [] = { "--max-request-mb", "1", NULL };
    s_server = qv_it_server_new (extra);
    if (!s_server || qv_it_server_start (s_server))
        return -1;
    s_endpoint = s_server->endpoint;
    return 0;
}

static int
s_group_teardown (void **state)
{
    (void) state;
    qv_it_server_destroy (&s_server);
    qv_it_server_destroy (&s_other);
    return 0;
}

static qv_it_client_t *
s_client (void)
{
    qv_it_client_t *c = qv_it_client_new (s_endpoint, QV_IT_CALL_MS);
    assert_non_null (c);
    return c;
}

#define CALL_OK QV_IT_CALL_OK
#define CALL_ERR QV_IT_CALL_ERR
//  Asserts a fresh client is served (ping ok, list_collections ok).
static void
s_assert_serving (void)
{
    qv_it_client_t *other = s_client ();
    qv_doc_t *r = CALL_OK (other, "{op: 'ping'}");
    qv_doc_destroy (&r);
    r = CALL_OK (other, "{op: 'list_collections'}");
    qv_doc_destroy (&r);
    qv_it_client_destroy (&other);
}

//  Deterministic pseudo-random floats.
static uint64_t s_rng = 88172645463325252ull;
static float
s_randf (void)
{
    s_rng ^= s_rng << 13;
    s_rng ^= s_rng >> 7;
    s_rng ^= s_rng << 17;
    return (float) ((s_rng >> 40) & 0xffffff) / (float) 0xffffff * 2.0f - 1.0f;
}

//  Inserts n rows (ids, vectors n x dim) as columns with the vectors in one bin.
static void
s_insert_bin (qv_it_client_t *client, const char *op, const char *coll, const int64_t *ids,
              const float *vecs, uint32_t n, uint32_t dim)
{
    qv_wr_t *w = qv_wr_new ();
    qv_wr_map (w, 3);
    qv_wr_str (w, "op"); qv_wr_str (w, op);
    qv_wr_str (w, "collection"); qv_wr_str (w, coll);
    qv_wr_str (w, "columns");
    qv_wr_map (w, 2);
    qv_wr_str (w, "id");
    qv_wr_array (w, n);
    for (uint32_t i = 0; i < n; i++)
        qv_wr_int (w, ids [i]);
    qv_wr_str (w, "v");
    qv_wr_bin (w, vecs, (size_t) n * dim * 4);
    qv_doc_t *reply = qv_it_call (client, w);
    if (!qv_it_ok (reply))
        fail_msg ("%s of %u rows: %s %s", op, n, qv_it_code (reply), qv_it_error (reply));
    assert_int_equal (qv_it_int (qv_it_path (reply, "count")), n);
    assert_int_equal (qv_val_len (qv_it_path (reply, "ids")), n);
    for (uint32_t i = 0; i < n; i++)
        assert_int_equal (qv_it_int (qv_val_at (qv_it_path (reply, "ids"), i)), ids [i]);
    qv_doc_destroy (&reply);
    qv_wr_destroy (&w);
}

//  Sends a search of one query vector (as a bin) and returns the reply.
static qv_doc_t *
s_search (qv_it_client_t *client, const char *coll, const float *q, uint32_t dim,
          uint32_t limit, uint32_t offset)
{
    qv_wr_t *w = qv_wr_new ();
    qv_wr_map (w, 5);
    qv_wr_str (w, "op"); qv_wr_str (w, "search");
    qv_wr_str (w, "collection"); qv_wr_str (w, coll);
    qv_wr_str (w, "vectors"); qv_wr_bin (w, q, (size_t) dim * 4);
    qv_wr_str (w, "limit"); qv_wr_uint (w, limit);
    qv_wr_str (w, "offset"); qv_wr_uint (w, offset);
    qv_doc_t *reply = qv_it_call (client, w);
    qv_wr_destroy (&w);
    if (!qv_it_ok (reply))
        fail_msg ("search %s: %s %s", coll, qv_it_code (reply), qv_it_error (reply));
    return reply;
}

static int64_t
s_describe_rows (qv_it_client_t *client, const char *coll)
{
    qv_doc_t *r = CALL_OK (client, "{op: 'describe_collection', collection: '%s'}", coll);
    int64_t rows = qv_it_int (qv_it_path (r, "rows"));
    qv_doc_destroy (&r);
    return rows;
}

//  Encodes JSON-like text and compares with a returned value, byte for byte.
static bool
s_val_equals_json (const qv_val_t *v, const char *text)
{
    if (!v)
        return false;
    qv_wr_t *w = qv_wr_new ();
    assert_int_equal (qv_it_json_write (w, text), 0);
    size_t want_size, got_size;
    const void *want = qv_wr_data (w, &want_size);
    void *got = qv_val_encode (v, &got_size);
    bool eq = got_size == want_size && memcmp (got, want, got_size) == 0;
    free (got);
    qv_wr_destroy (&w);
    return eq;
}

//  ---------------------------------------------------------------------------------

static void
test_collection_lifecycle (void **state)
{
    (void) state;
    qv_it_client_t *c = s_client ();
    qv_doc_t *r;
    r = CALL_OK (c, "{op: 'has_collection', collection: 'life'}");
    assert_false (qv_it_bool (qv_it_path (r, "exists")));
    qv_doc_destroy (&r);

    r = CALL_OK (c, "{op: 'create_collection', collection: 'life', description: 'd1', fields: ["
                    "{name: 'pk', type: 'int64', primary: true},"
                    "{name: 'tag', type: 'varchar', max_length: 16},"
                    "{name: 'v', type: 'float_vector', dim: 4, metric: 'IP'}]}");
    qv_doc_destroy (&r);
    r = CALL_OK (c, "{op: 'has_collection', collection: 'life'}");
    assert_true (qv_it_bool (qv_it_path (r, "exists")));
    qv_doc_destroy (&r);

    r = CALL_OK (c, "{op: 'list_collections'}");
    const qv_val_t *list = qv_it_path (r, "collections");
    assert_non_null (list);
    bool found = false;
    for (size_t i = 0; i < qv_val_len (list); i++)
        found |= qv_it_str_is (qv_val_at (list, i), "life");
    assert_true (found);
    qv_doc_destroy (&r);

    r = CALL_OK (c, "{op: 'describe_collection', collection: 'life', rid: 42}");
    assert_int_equal (qv_it_int (qv_it_path (r, "rid")), 42);
    assert_true (qv_it_str_is (qv_it_path (r, "collection"), "life"));
    assert_int_equal (qv_it_int (qv_it_path (r, "rows")), 0);
    assert_int_equal (qv_it_int (qv_it_path (r, "shards")), 1);
    assert_true (qv_it_str_is (qv_it_path (r, "consistency"), "strong"));
    assert_int_equal (qv_val_len (qv_it_path (r, "fields")), 3);
    assert_true (qv_it_str_is (qv_it_path (r, "fields.0.name"), "pk"));
    assert_true (qv_it_str_is (qv_it_path (r, "fields.0.type"), "int64"));
    assert_true (qv_it_bool (qv_it_path (r, "fields.0.primary")));
    assert_true (qv_it_str_is (qv_it_path (r, "fields.1.type"), "varchar"));
    assert_int_equal (qv_it_int (qv_it_path (r, "fields.1.max_length")), 16);
    assert_true (qv_it_str_is (qv_it_path (r, "fields.2.type"), "float_vector"));
    assert_int_equal (qv_it_int (qv_it_path (r, "fields.2.dim")), 4);
    assert_true (qv_it_str_is (qv_it_path (r, "fields.2.metric"), "IP"));
    assert_non_null (qv_it_path (r, "indexes"));
    qv_doc_destroy (&r);

    //  Existing name, whatever the schema
    r = CALL_ERR (c, "ALREADY_EXISTS", "{op: 'create_collection', collection: 'life', fields: ["
                     "{name: 'k', type: 'varchar', primary: true},"
                     "{name: 'w', type: 'float_vector', dim: 2}]}");
    qv_doc_destroy (&r);

    r = CALL_OK (c, "{op: 'drop_collection', collection: 'life'}");
    qv_doc_destroy (&r);
    r = CALL_OK (c, "{op: 'has_collection', collection: 'life'}");
    assert_false (qv_it_bool (qv_it_path (r, "exists")));
    qv_doc_destroy (&r);
    r = CALL_OK (c, "{op: 'list_collections'}");
    list = qv_it_path (r, "collections");
    for (size_t i = 0; i < qv_val_len (list); i++)
        assert_false (qv_it_str_is (qv_val_at (list, i), "life"));
    qv_doc_destroy (&r);
    r = CALL_ERR (c, "NOT_FOUND", "{op: 'drop_collection', collection: 'life'}");
    qv_doc_destroy (&r);
    r = CALL_ERR (c, "NOT_FOUND", "{op: 'describe_collection', collection: 'life'}");
    qv_doc_destroy (&r);

    //  The name can be used again, with another schema, and starts empty
    r = CALL_OK (c, "{op: 'create_collection', collection: 'life', fields: ["
                    "{name: 'k', type: 'varchar', primary: true, max_length: 8},"
                    "{name: 'w', type: 'float_vector', dim: 2}]}");
    qv_doc_destroy (&r);
    assert_int_equal (s_describe_rows (c, "life"), 0);
    //  A delete by varchar keys counts each live row once
    r = CALL_OK (c, "{op: 'insert', collection: 'life', rows: [{k: 'a', w: [1.0, 0.0]},"
                    "{k: 'b', w: [2.0, 0.0]}, {k: 'c', w: [3.0, 0.0]}]}");
    qv_doc_destroy (&r);
    r = CALL_OK (c, "{op: 'delete', collection: 'life', ids: ['a', 'a', 'zz', 'c']}");
    assert_int_equal (qv_it_int (qv_it_path (r, "deleted")), 2);
    qv_doc_destroy (&r);
    r = CALL_OK (c, "{op: 'delete', collection: 'life', ids: ['a']}");
    assert_int_equal (qv_it_int (qv_it_path (r, "deleted")), 0);
    qv_doc_destroy (&r);
    assert_int_equal (s_describe_rows (c, "life"), 1);
    r = CALL_OK (c, "{op: 'drop_collection', collection: 'life'}");
    qv_doc_destroy (&r);
    qv_it_client_destroy (&c);
}

static void
test_insert_every_type (void **state)
{
    (void) state;
    qv_it_client_t *c = s_client ();
    qv_doc_t *r;
    r = CALL_OK (c, "{op: 'create_collection', collection: 'types', fields: ["
                    "{name: 'id', type: 'int64', primary: true},"
                    "{name: 'b', type: 'bool'}, {name: 'i8', type: 'int8'},"
                    "{name: 'i16', type: 'int16'}, {name: 'i32', type: 'int32'},"
                    "{name: 'i64', type: 'int64'}, {name: 'f', type: 'float'},"
                    "{name: 'd', type: 'double'}, {name: 's', type: 'varchar', max_length: 32},"
                    "{name: 'j', type: 'json'},"
                    "{name: 'v', type: 'float_vector', dim: 3}]}");
    qv_doc_destroy (&r);

    //  Rows, vectors as lists
    r = CALL_OK (c, "{op: 'insert', collection: 'types', rows: ["
                    "{id: 10, b: true, i8: -128, i16: 32767, i32: -2147483648,"
                    " i64: 9223372036854775807, f: 1.5, d: 0.1, s: 'hello',"
                    " j: {a: [1, 'x', {b: null}], n: 2.25, t: true}, v: [1, 2, 3]},"
                    "{id: -5, b: false, i8: 127, i16: -32768, i32: 2147483647,"
                    " i64: -9223372036854775807, f: -0.25, d: 1e300, s: '',"
                    " j: [1, 2, 3], v: [0.5, -0.5, 0.25]}]}");
    assert_int_equal (qv_it_int (qv_it_path (r, "count")), 2);
    assert_int_equal (qv_it_int (qv_it_path (r, "ids.0")), 10);
    assert_int_equal (qv_it_int (qv_it_path (r, "ids.1")), -5);
    assert_true (qv_it_int (qv_it_path (r, "ts")) > 0);
    qv_doc_destroy (&r);

    //  One row with its vector as a bin; json a plain string
    float vec [3] = { 7.0f, 8.0f, 9.5f };
    qv_wr_t *w = qv_wr_new ();
    //  (the text writer cannot write a bin, so this request is assembled by hand)
    qv_wr_map (w, 3);
    qv_wr_str (w, "op"); qv_wr_str (w, "insert");
    qv_wr_str (w, "collection"); qv_wr_str (w, "types");
    qv_wr_str (w, "rows"); qv_wr_array (w, 1);
    qv_wr_map (w, 11);
    qv_wr_str (w, "id"); qv_wr_int (w, 11);
    qv_wr_str (w, "b"); qv_wr_bool (w, true);
    qv_wr_str (w, "i8"); qv_wr_int (w, 1);
    qv_wr_str (w, "i16"); qv_wr_int (w, 2);
    qv_wr_str (w, "i32"); qv_wr_int (w, 3);
    qv_wr_str (w, "i64"); qv_wr_int (w, 4);
    qv_wr_str (w, "f"); qv_wr_int (w, 5);
    qv_wr_str (w, "d"); qv_wr_int (w, 6);
    qv_wr_str (w, "s"); qv_wr_str (w, "bin row");
    qv_wr_str (w, "j"); qv_wr_str (w, "just a string");
    qv_wr_str (w, "v"); qv_wr_bin (w, vec, sizeof vec);
    r = qv_it_call (c, w);
    assert_true (qv_it_ok (r));
    assert_int_equal (qv_it_int (qv_it_path (r, "ids.0")), 11);
    qv_doc_destroy (&r);
    qv_wr_destroy (&w);

    //  Columns, vectors as lists
    r = CALL_OK (c, "{op: 'insert', collection: 'types', columns: {"
                    "id: [20, 21], b: [false, true], i8: [0, -1], i16: [0, -1], i32: [0, -1],"
                    "i64: [0, -1], f: [0.0, -1.0], d: [0.0, -1.0], s: ['a', 'b'],"
                    "j: [{k: 'x'}, null], v: [[1, 1, 1], [2, 2, 2]]}}");
    assert_int_equal (qv_it_int (qv_it_path (r, "count")), 2);
    qv_doc_destroy (&r);
    assert_int_equal (s_describe_rows (c, "types"), 5);

    //  Every field comes back as given
    r = CALL_OK (c, "{op: 'get', collection: 'types', ids: [10, -5, 11, 20, 21, 999],"
                    " output_fields: ['*']}");
    const qv_val_t *rows = qv_it_path (r, "rows");
    assert_int_equal (qv_val_len (rows), 5);
    const qv_val_t *row = NULL;
    for (size_t i = 0; i < qv_val_len (rows); i++)
        if (qv_it_int (qv_it_vpath (qv_val_at (rows, i), "id")) == 10)
            row = qv_val_at (rows, i);
    assert_non_null (row);
    assert_true (qv_it_bool (qv_it_vpath (row, "b")));
    assert_int_equal (qv_it_int (qv_it_vpath (row, "i8")), -128);
    assert_int_equal (qv_it_int (qv_it_vpath (row, "i16")), 32767);
    assert_int_equal (qv_it_int (qv_it_vpath (row, "i32")), INT32_MIN);
    assert_true (qv_it_int (qv_it_vpath (row, "i64")) == INT64_MAX);
    assert_true (qv_it_num (qv_it_vpath (row, "f")) == 1.5);
    assert_true (qv_it_num (qv_it_vpath (row, "d")) == 0.1);
    assert_true (qv_it_str_is (qv_it_vpath (row, "s"), "hello"));
    assert_true (s_val_equals_json (qv_it_vpath (row, "j"),
                                    "{a: [1, 'x', {b: null}], n: 2.25, t: true}"));
    assert_true (s_val_equals_json (qv_it_vpath (row, "v"), "[1.0, 2.0, 3.0]")
              || (qv_it_num (qv_it_vpath (row, "v.0")) == 1 && qv_it_num (qv_it_vpath (row, "v.2")) == 3));
    assert_int_equal (qv_val_len (qv_it_vpath (row, "v")), 3);

    for (size_t i = 0; i < qv_val_len (rows); i++) {
        row = qv_val_at (rows, i);
        int64_t id = qv_it_int (qv_it_vpath (row, "id"));
        assert_int_equal (qv_val_len (row), 11);
        if (id == -5) {
            assert_false (qv_it_bool (qv_it_vpath (row, "b")));
            assert_int_equal (qv_it_int (qv_it_vpath (row, "i8")), 127);
            assert_int_equal (qv_it_int (qv_it_vpath (row, "i16")), -32768);
            assert_int_equal (qv_it_int (qv_it_vpath (row, "i32")), INT32_MAX);
            assert_true (qv_it_int (qv_it_vpath (row, "i64")) == -INT64_MAX);
            assert_true (qv_it_num (qv_it_vpath (row, "f")) == -0.25);
            assert_true (qv_it_num (qv_it_vpath (row, "d")) == 1e300);
            assert_true (qv_it_str_is (qv_it_vpath (row, "s"), ""));
            assert_true (s_val_equals_json (qv_it_vpath (row, "j"), "[1, 2, 3]"));
            assert_true (qv_it_num (qv_it_vpath (row, "v.1")) == -0.5);
        }
        else
        if (id == 11) {
            assert_true (qv_it_str_is (qv_it_vpath (row, "s"), "bin row"));
            assert_true (s_val_equals_json (qv_it_vpath (row, "j"), "'just a string'"));
            assert_true (qv_it_num (qv_it_vpath (row, "f")) == 5);
            assert_true (qv_it_num (qv_it_vpath (row, "d")) == 6);
            assert_true (qv_it_num (qv_it_vpath (row, "v.0")) == 7.0);
            assert_true (qv_it_num (qv_it_vpath (row, "v.2")) == 9.5);
        }
        else
        if (id == 20) {
            assert_true (s_val_equals_json (qv_it_vpath (row, "j"), "{k: 'x'}"));
            assert_true (qv_it_str_is (qv_it_vpath (row, "s"), "a"));
        }
        else
        if (id == 21) {
            assert_true (s_val_equals_json (qv_it_vpath (row, "j"), "null"));
            assert_true (qv_it_num (qv_it_vpath (row, "v.1")) == 2.0);
            assert_int_equal (qv_it_int (qv_it_vpath (row, "i8")), -1);
        }
        else
            assert_int_equal (id, 10);
    }
    qv_doc_destroy (&r);

    //  output_fields: only the key and the fields named
    r = CALL_OK (c, "{op: 'get', collection: 'types', ids: [20], output_fields: ['s', 'i16']}");
    assert_int_equal (qv_val_len (qv_it_path (r, "rows")), 1);
    row = qv_it_path (r, "rows.0");
    assert_int_equal (qv_val_len (row), 3);
    assert_int_equal (qv_it_int (qv_it_vpath (row, "id")), 20);
    assert_true (qv_it_str_is (qv_it_vpath (row, "s"), "a"));
    assert_int_equal (qv_it_int (qv_it_vpath (row, "i16")), 0);
    assert_null (qv_it_vpath (row, "v"));
    qv_doc_destroy (&r);

    //  No output_fields: the key only; ids: [] gives rows: []
    r = CALL_OK (c, "{op: 'get', collection: 'types', ids: [21]}");
    assert_int_equal (qv_it_int (qv_it_path (r, "rows.0.id")), 21);
    qv_doc_destroy (&r);
    r = CALL_OK (c, "{op: 'get', collection: 'types', ids: []}");
    assert_non_null (qv_it_path (r, "rows"));
    assert_int_equal (qv_val_type (qv_it_path (r, "rows")), QV_V_ARRAY);
    assert_int_equal (qv_val_len (qv_it_path (r, "rows")), 0);
    qv_doc_destroy (&r);

    //  Values out of range or of the wrong type are refused, and nothing of the batch lands
    r = CALL_ERR (c, "INVALID_ARGUMENT", "{op: 'insert', collection: 'types', rows: ["
                     "{id: 30, b: true, i8: 128, i16: 0, i32: 0, i64: 0, f: 0, d: 0, s: '', j: 1,"
                     " v: [0, 0, 0]}]}");
    qv_doc_destroy (&r);
    r = CALL_ERR (c, "MALFORMED", "{op: 'insert', collection: 'types', rows: ["
                     "{id: 31, b: true, i8: 0, i16: 0, i32: 0, i64: 0, f: 0, d: 0, s: '', j: 1,"
                     " v: [0, 0, 0]},"
                     "{id: 32, b: 'yes', i8: 0, i16: 0, i32: 0, i64: 0, f: 0, d: 0, s: '', j: 1,"
                     " v: [0, 0, 0]}]}");
    qv_doc_destroy (&r);
    r = CALL_ERR (c, "INVALID_ARGUMENT", "{op: 'insert', collection: 'types', rows: ["
                     "{id: 33, b: true, i8: 0, i16: 0, i32: 0, i64: 0, f: 0, d: 0, s: '', j: 1}]}");
    qv_doc_destroy (&r);
    r = CALL_OK (c, "{op: 'get', collection: 'types', ids: [30, 31, 32, 33]}");
    assert_int_equal (qv_val_len (qv_it_path (r, "rows")), 0);
    qv_doc_destroy (&r);
    assert_int_equal (s_describe_rows (c, "types"), 5);

    r = CALL_OK (c, "{op: 'drop_collection', collection: 'types'}");
    qv_doc_destroy (&r);
    qv_it_client_destroy (&c);
}

static void
test_varchar_and_auto_id (void **state)
{
    (void) state;
    qv_it_client_t *c = s_client ();
    qv_doc_t *r;
    r = CALL_OK (c, "{op: 'create_collection', collection: 'vkeys', fields: ["
                    "{name: 'name', type: 'varchar', primary: true, max_length: 20},"
                    "{name: 'n', type: 'int32'},"
                    "{name: 'v', type: 'float_vector', dim: 2}]}");
    qv_doc_destroy (&r);
    r = CALL_OK (c, "{op: 'insert', collection: 'vkeys', columns: {"
                    "name: ['alpha', 'beta', 'gamma'], n: [1, 2, 3],"
                    "v: [[0, 0], [1, 0], [0, 1]]}}");
    assert_true (qv_it_str_is (qv_it_path (r, "ids.0"), "alpha"));
    assert_true (qv_it_str_is (qv_it_path (r, "ids.2"), "gamma"));
    qv_doc_destroy (&r);
    r = CALL_OK (c, "{op: 'get', collection: 'vkeys', ids: ['gamma', 'delta', 'alpha'],"
                    " output_fields: ['n']}");
    const qv_val_t *rows = qv_it_path (r, "rows");
    assert_int_equal (qv_val_len (rows), 2);
    for (size_t i = 0; i < 2; i++) {
        const qv_val_t *row = qv_val_at (rows, i);
        if (qv_it_str_is (qv_it_vpath (row, "name"), "gamma"))
            assert_int_equal (qv_it_int (qv_it_vpath (row, "n")), 3);
        else {
            assert_true (qv_it_str_is (qv_it_vpath (row, "name"), "alpha"));
            assert_int_equal (qv_it_int (qv_it_vpath (row, "n")), 1);
        }
    }
    qv_doc_destroy (&r);
    //  Search returns varchar ids
    r = CALL_OK (c, "{op: 'search', collection: 'vkeys', vectors: [[0.9, 0.1]], limit: 1}");
    assert_true (qv_it_str_is (qv_it_path (r, "results.0.0.id"), "beta"));
    qv_doc_destroy (&r);
    //  Integer ids for a varchar key: wrong type; a key over max_length: invalid
    r = CALL_ERR (c, "MALFORMED", "{op: 'get', collection: 'vkeys', ids: [1]}");
    qv_doc_destroy (&r);
    r = CALL_ERR (c, "INVALID_ARGUMENT", "{op: 'insert', collection: 'vkeys', rows: ["
                     "{name: 'abcdefghijklmnopqrstuvwxyz', n: 1, v: [0, 0]}]}");
    qv_doc_destroy (&r);
    r = CALL_OK (c, "{op: 'delete', collection: 'vkeys', ids: ['beta']}");
    assert_int_equal (qv_it_int (qv_it_path (r, "deleted")), 1);
    qv_doc_destroy (&r);
    r = CALL_OK (c, "{op: 'search', collection: 'vkeys', vectors: [[0.9, 0.1]], limit: 3}");
    assert_int_equal (qv_val_len (qv_it_path (r, "results.0")), 2);
    assert_false (qv_it_str_is (qv_it_path (r, "results.0.0.id"), "beta"));
    assert_false (qv_it_str_is (qv_it_path (r, "results.0.1.id"), "beta"));
    qv_doc_destroy (&r);
    r = CALL_OK (c, "{op: 'drop_collection', collection: 'vkeys'}");
    qv_doc_destroy (&r);

    //  auto_id: the server assigns distinct int64 keys, returned in input order
    r = CALL_OK (c, "{op: 'create_collection', collection: 'auto', fields: ["
                    "{name: 'id', type: 'int64', primary: true, auto_id: true},"
                    "{name: 'tag', type: 'varchar'},"
                    "{name: 'v', type: 'float_vector', dim: 2}]}");
    qv_doc_destroy (&r);
    r = CALL_OK (c, "{op: 'insert', collection: 'auto', rows: ["
                    "{tag: 'r0', v: [1, 0]}, {tag: 'r1', v: [0, 1]}, {tag: 'r2', v: [1, 1]}]}");
    const qv_val_t *ids = qv_it_path (r, "ids");
    assert_int_equal (qv_val_len (ids), 3);
    int64_t id [3];
    for (int i = 0; i < 3; i++) {
        id [i] = qv_it_int (qv_val_at (ids, i));
        assert_true (id [i] != INT64_MIN);
        for (int j = 0; j < i; j++)
            assert_true (id [i] != id [j]);
    }
    qv_doc_destroy (&r);
    r = CALL_OK (c, "{op: 'insert', collection: 'auto', columns: {tag: ['r3'], v: [[2, 2]]}}");
    int64_t id3 = qv_it_int (qv_it_path (r, "ids.0"));
    for (int j = 0; j < 3; j++)
        assert_true (id3 != id [j]);
    qv_doc_destroy (&r);
    r = CALL_OK (c, "{op: 'get', collection: 'auto', ids: [%lld, %lld], output_fields: ['tag']}",
                 (long long) id [1], (long long) id3);
    rows = qv_it_path (r, "rows");
    assert_int_equal (qv_val_len (rows), 2);
    for (size_t i = 0; i < 2; i++) {
        const qv_val_t *row = qv_val_at (rows, i);
        int64_t k = qv_it_int (qv_it_vpath (row, "id"));
        assert_true (qv_it_str_is (qv_it_vpath (row, "tag"), k == id3 ? "r3" : "r1"));
    }
    qv_doc_destroy (&r);
    //  A key for an auto_id field is refused; so is upsert
    r = CALL_ERR (c, "INVALID_ARGUMENT", "{op: 'insert', collection: 'auto', rows: ["
                     "{id: 5, tag: 'x', v: [0, 0]}]}");
    qv_doc_destroy (&r);
    r = CALL_ERR (c, "INVALID_ARGUMENT", "{op: 'upsert', collection: 'auto', rows: ["
                     "{tag: 'x', v: [0, 0]}]}");
    qv_doc_destroy (&r);
    assert_int_equal (s_describe_rows (c, "auto"), 4);
    r = CALL_OK (c, "{op: 'drop_collection', collection: 'auto'}");
    qv_doc_destroy (&r);
    qv_it_client_destroy (&c);
}

//  Searches for q (limit 1..n) and asserts key never comes back at distance 0 (i.e. with
//  its old vector), and comes back with new_dist when it does.
static void
s_assert_replaced (qv_it_client_t *c, const char *coll, const float *old_vec, int64_t key,
                   float new_dist, uint32_t limit)
{
    qv_doc_t *r = s_search (c, coll, old_vec, 4, limit, 0);
    const qv_val_t *hits = qv_it_path (r, "results.0");
    int seen = 0;
    for (size_t i = 0; i < qv_val_len (hits); i++) {
        const qv_val_t *hit = qv_val_at (hits, i);
        if (qv_it_int (qv_it_vpath (hit, "id")) == key) {
            seen++;
            assert_float_equal (qv_it_num (qv_it_vpath (hit, "distance")), new_dist, 1e-4);
        }
    }
    assert_int_equal (seen, 1);        //  limit covers every row: the key is there once
    qv_doc_destroy (&r);
}

static void
test_upsert_replaces (void **state)
{
    (void) state;
    qv_it_client_t *c = s_client ();
    qv_doc_t *r;
    r = CALL_OK (c, "{op: 'create_collection', collection: 'ups', fields: ["
                    "{name: 'id', type: 'int64', primary: true},"
                    "{name: 'tag', type: 'varchar', nullable: true},"
                    "{name: 'v', type: 'float_vector', dim: 4}]}");
    qv_doc_destroy (&r);
    r = CALL_OK (c, "{op: 'insert', collection: 'ups', rows: ["
                    "{id: 1, tag: 'one', v: [1, 0, 0, 0]}, {id: 2, tag: 'two', v: [0, 1, 0, 0]},"
                    "{id: 3, tag: 'three', v: [0, 0, 1, 0]}, {id: 4, tag: 'four', v: [0, 0, 0, 1]},"
                    "{id: 5, tag: 'five', v: [1, 1, 1, 1]}]}");
    qv_doc_destroy (&r);
    assert_int_equal (s_describe_rows (c, "ups"), 5);

    //  upsert of a live key: one row, new value, the old vector is gone
    r = CALL_OK (c, "{op: 'upsert', collection: 'ups', rows: [{id: 3, tag: 'THREE', v: [3, 0, 1, 0]}]}");
    assert_int_equal (qv_it_int (qv_it_path (r, "ids.0")), 3);
    qv_doc_destroy (&r);
    assert_int_equal (s_describe_rows (c, "ups"), 5);
    r = CALL_OK (c, "{op: 'get', collection: 'ups', ids: [3], output_fields: ['tag', 'v']}");
    assert_int_equal (qv_val_len (qv_it_path (r, "rows")), 1);
    assert_true (qv_it_str_is (qv_it_path (r, "rows.0.tag"), "THREE"));
    assert_true (qv_it_num (qv_it_path (r, "rows.0.v.0")) == 3.0);
    qv_doc_destroy (&r);
    float old3 [4] = { 0, 0, 1, 0 };
    s_assert_replaced (c, "ups", old3, 3, 9.0f, 5);

    //  insert of a live key replaces too (PROTOCOL.md), in a batch with a new key
    r = CALL_OK (c, "{op: 'insert', collection: 'ups', rows: ["
                    "{id: 3, tag: null, v: [0, 0, 1, 2]}, {id: 6, tag: 'six', v: [6, 6, 6, 6]}]}");
    qv_doc_destroy (&r);
    assert_int_equal (s_describe_rows (c, "ups"), 6);
    r = CALL_OK (c, "{op: 'get', collection: 'ups', ids: [3], output_fields: ['tag']}");
    assert_int_equal (qv_val_len (qv_it_path (r, "rows")), 1);
    assert_int_equal (qv_val_type (qv_it_path (r, "rows.0.tag")), QV_V_NIL);
    qv_doc_destroy (&r);
    s_assert_replaced (c, "ups", old3, 3, 4.0f, 6);

    //  A key twice in one batch: live once, the later row wins
    r = CALL_OK (c, "{op: 'upsert', collection: 'ups', rows: ["
                    "{id: 7, tag: 'first', v: [7, 0, 0, 0]}, {id: 7, tag: 'second', v: [0, 7, 0, 0]}]}");
    qv_doc_destroy (&r);
    assert_int_equal (s_describe_rows (c, "ups"), 7);
    r = CALL_OK (c, "{op: 'get', collection: 'ups', ids: [7], output_fields: ['tag']}");
    assert_int_equal (qv_val_len (qv_it_path (r, "rows")), 1);
    assert_true (qv_it_str_is (qv_it_path (r, "rows.0.tag"), "second"));
    qv_doc_destroy (&r);
    float first7 [4] = { 7, 0, 0, 0 };
    s_assert_replaced (c, "ups", first7, 7, 98.0f, 7);

    //  After a flush the replaced rows stay replaced, and replacing a flushed row works
    r = CALL_OK (c, "{op: 'flush', collection: 'ups'}");
    assert_true (qv_val_len (qv_it_path (r, "segments")) >= 1);
    qv_doc_destroy (&r);
    assert_int_equal (s_describe_rows (c, "ups"), 7);
    s_assert_replaced (c, "ups", old3, 3, 4.0f, 7);
    s_assert_replaced (c, "ups", first7, 7, 98.0f, 7);
    r = CALL_OK (c, "{op: 'upsert', collection: 'ups', rows: [{id: 1, tag: 'uno', v: [-1, 0, 0, 0]}]}");
    qv_doc_destroy (&r);
    float old1 [4] = { 1, 0, 0, 0 };
    s_assert_replaced (c, "ups", old1, 1, 4.0f, 7);
    assert_int_equal (s_describe_rows (c, "ups"), 7);
    r = CALL_OK (c, "{op: 'get', collection: 'ups', ids: [1, 3, 7], output_fields: ['tag']}");
    assert_int_equal (qv_val_len (qv_it_path (r, "rows")), 3);
    qv_doc_destroy (&r);

    r = CALL_OK (c, "{op: 'drop_collection', collection: 'ups'}");
    qv_doc_destroy (&r);
    qv_it_client_destroy (&c);
}

static void
test_delete_honoured (void **state)
{
    (void) state;
    qv_it_client_t *c = s_client ();
    qv_doc_t *r;
    r = CALL_OK (c, "{op: 'create_collection', collection: 'del', fields: ["
                    "{name: 'id', type: 'int64', primary: true},"
                    "{name: 'v', type: 'float_vector', dim: 4}]}");
    qv_doc_destroy (&r);
    enum { N = 200 };
    int64_t ids [N];
    float vecs [N * 4];
    for (int i = 0; i < N; i++) {
        ids [i] = i;
        for (int d = 0; d < 4; d++)
            vecs [i * 4 + d] = (float) i + 0.01f * (float) d;
    }
    s_insert_bin (c, "insert", "del", ids, vecs, N / 2, 4);
    r = CALL_OK (c, "{op: 'flush', collection: 'del'}");       //  half flushed, half growing
    qv_doc_destroy (&r);
    s_insert_bin (c, "insert", "del", ids + N / 2, vecs + N / 2 * 4, N / 2, 4);

    r = CALL_OK (c, "{op: 'delete', collection: 'del', ids: [10, 150, 12345, 10]}");
    assert_int_equal (qv_it_int (qv_it_path (r, "deleted")), 2);
    assert_true (qv_it_int (qv_it_path (r, "ts")) > 0);
    qv_doc_destroy (&r);
    assert_int_equal (s_describe_rows (c, "del"), N - 2);
    r = CALL_OK (c, "{op: 'get', collection: 'del', ids: [9, 10, 11, 149, 150, 151]}");
    const qv_val_t *rows = qv_it_path (r, "rows");
    assert_int_equal (qv_val_len (rows), 4);
    for (size_t i = 0; i < qv_val_len (rows); i++) {
        int64_t id = qv_it_int (qv_it_vpath (qv_val_at (rows, i), "id"));
        assert_true (id != 10 && id != 150);
    }
    qv_doc_destroy (&r);
    //  A search at a deleted vector finds its neighbours, never it
    for (int which = 0; which < 2; which++) {
        int64_t key = which ? 150 : 10;
        qv_doc_t *s = s_search (c, "del", vecs + key * 4, 4, 5, 0);
        const qv_val_t *hits = qv_it_path (s, "results.0");
        assert_int_equal (qv_val_len (hits), 5);
        for (size_t i = 0; i < qv_val_len (hits); i++)
            assert_true (qv_it_int (qv_it_vpath (qv_val_at (hits, i), "id")) != key);
        qv_doc_destroy (&s);
    }
    //  Deleting again deletes nothing; re-inserting makes the key live again
    r = CALL_OK (c, "{op: 'delete', collection: 'del', ids: [10]}");
    assert_int_equal (qv_it_int (qv_it_path (r, "deleted")), 0);
    qv_doc_destroy (&r);
    s_insert_bin (c, "insert", "del", ids + 10, vecs + 10 * 4, 1, 4);
    assert_int_equal (s_describe_rows (c, "del"), N - 1);
    qv_doc_t *s = s_search (c, "del", vecs + 10 * 4, 4, 1, 0);
    assert_int_equal (qv_it_int (qv_it_path (s, "results.0.0.id")), 10);
    assert_float_equal (qv_it_num (qv_it_path (s, "results.0.0.distance")), 0.0, 1e-6);
    qv_doc_destroy (&s);
    r = CALL_OK (c, "{op: 'drop_collection', collection: 'del'}");
    qv_doc_destroy (&r);
    qv_it_client_destroy (&c);
}

typedef struct {
    int64_t id;
    double dist;
} s_hit_t;

static int s_better_small (const void *a, const void *b)
{
    double x = ((const s_hit_t *) a)->dist, y = ((const s_hit_t *) b)->dist;
    return x < y ? -1 : x > y;
}

static int s_better_large (const void *a, const void *b)
{
    return s_better_small (b, a);
}

//  For one metric: random vectors, several queries; every hit's distance equals the one
//  computed here, and the ids are the true top-k (ties aside).
static void
s_check_metric (qv_it_client_t *c, const char *metric)
{
    enum { N = 500, DIM = 16, K = 10, NQ = 5 };
    char coll [32];
    snprintf (coll, sizeof coll, "m_%s", metric);
    qv_doc_t *r = CALL_OK (c, "{op: 'create_collection', collection: '%s', fields: ["
                              "{name: 'id', type: 'int64', primary: true},"
                              "{name: 'v', type: 'float_vector', dim: %d, metric: '%s'}]}",
                           coll, DIM, metric);
    qv_doc_destroy (&r);
    static float vecs [N * DIM];
    static int64_t ids [N];
    for (int i = 0; i < N; i++) {
        ids [i] = 1000 + i;
        for (int d = 0; d < DIM; d++)
            vecs [i * DIM + d] = s_randf ();
    }
    s_insert_bin (c, "insert", coll, ids, vecs, N, DIM);
    bool cosine = strcmp (metric, "COSINE") == 0, ip = strcmp (metric, "IP") == 0;
    for (int q = 0; q < NQ; q++) {
        float query [DIM];
        for (int d = 0; d < DIM; d++)
            query [d] = s_randf () * 3.0f;
        static s_hit_t want [N];
        for (int i = 0; i < N; i++) {
            double l2 = 0, dot = 0, qn = 0, vn = 0;
            for (int d = 0; d < DIM; d++) {
                double x = query [d], y = vecs [i * DIM + d];
                l2 += (x - y) * (x - y);
                dot += x * y;
                qn += x * x;
                vn += y * y;
            }
            want [i].id = ids [i];
            want [i].dist = cosine ? dot / (sqrt (qn) * sqrt (vn)) : ip ? dot : l2;
        }
        qsort (want, N, sizeof want [0], (cosine || ip) ? s_better_large : s_better_small);
        qv_doc_t *s = s_search (c, coll, query, DIM, K, 0);
        const qv_val_t *hits = qv_it_path (s, "results.0");
        assert_int_equal (qv_val_len (hits), K);
        for (int i = 0; i < K; i++) {
            const qv_val_t *hit = qv_val_at (hits, i);
            int64_t id = qv_it_int (qv_it_vpath (hit, "id"));
            double dist = qv_it_num (qv_it_vpath (hit, "distance"));
            //  the distance the server reports is this vector's true distance
            const float *v = vecs + (id - 1000) * DIM;
            assert_true (id >= 1000 && id < 1000 + N);
            double l2 = 0, dot = 0, qn = 0, vn = 0;
            for (int d = 0; d < DIM; d++) {
                l2 += (query [d] - v [d]) * (double) (query [d] - v [d]);
                dot += (double) query [d] * v [d];
                qn += (double) query [d] * query [d];
                vn += (double) v [d] * v [d];
            }
            double truth = cosine ? dot / (sqrt (qn) * sqrt (vn)) : ip ? dot : l2;
            if (fabs (dist - truth) > 1e-4 * (1 + fabs (truth)))
                fail_msg ("%s query %d hit %d id %lld: distance %g, computed %g", metric, q, i,
                          (long long) id, dist, truth);
            //  ... and it is the i-th best (equal to the reference order's i-th distance)
            if (fabs (dist - want [i].dist) > 1e-4 * (1 + fabs (want [i].dist)))
                fail_msg ("%s query %d rank %d: distance %g, the true rank-%d distance is %g (id %lld)",
                          metric, q, i, dist, i, want [i].dist, (long long) want [i].id);
        }
        qv_doc_destroy (&s);
    }
    r = CALL_OK (c, "{op: 'drop_collection', collection: '%s'}", coll);
    qv_doc_destroy (&r);
}

static void
test_metrics (void **state)
{
    (void) state;
    qv_it_client_t *c = s_client ();
    s_check_metric (c, "L2");
    s_check_metric (c, "IP");
    s_check_metric (c, "COSINE");
    qv_it_client_destroy (&c);
}

static void
test_search_shapes_and_paging (void **state)
{
    (void) state;
    qv_it_client_t *c = s_client ();
    enum { N = 300, DIM = 8 };
    qv_doc_t *r = CALL_OK (c, "{op: 'create_collection', collection: 'pages', fields: ["
                              "{name: 'id', type: 'int64', primary: true},"
                              "{name: 'tag', type: 'varchar'},"
                              "{name: 'v', type: 'float_vector', dim: %d}]}", DIM);
    qv_doc_destroy (&r);
    static float vecs [N * DIM];
    static int64_t ids [N];
    for (int i = 0; i < N; i++) {
        ids [i] = i;
        for (int d = 0; d < DIM; d++)
            vecs [i * DIM + d] = s_randf ();
    }
    //  Columns with the vector column as a list of bins, one per row
    qv_wr_t *w = qv_wr_new ();
    qv_wr_map (w, 3);
    qv_wr_str (w, "op"); qv_wr_str (w, "insert");
    qv_wr_str (w, "collection"); qv_wr_str (w, "pages");
    qv_wr_str (w, "columns"); qv_wr_map (w, 3);
    qv_wr_str (w, "id"); qv_wr_array (w, N);
    for (int i = 0; i < N; i++)
        qv_wr_int (w, ids [i]);
    qv_wr_str (w, "tag"); qv_wr_array (w, N);
    for (int i = 0; i < N; i++) {
        char tag [16];
        snprintf (tag, sizeof tag, "t%d", i);
        qv_wr_str (w, tag);
    }
    qv_wr_str (w, "v"); qv_wr_array (w, N);
    for (int i = 0; i < N; i++)
        qv_wr_bin (w, vecs + i * DIM, DIM * 4);
    r = qv_it_call (c, w);
    if (!qv_it_ok (r))
        fail_msg ("columns with a list of bins: %s %s", qv_it_code (r), qv_it_error (r));
    qv_doc_destroy (&r);

    //  Pages of 7 concatenate to the first 28 of one search
    float *q = vecs + 17 * DIM;
    qv_doc_t *all = s_search (c, "pages", q, DIM, 28, 0);
    const qv_val_t *hits = qv_it_path (all, "results.0");
    assert_int_equal (qv_val_len (hits), 28);
    assert_int_equal (qv_it_int (qv_it_path (all, "results.0.0.id")), 17);
    for (int page = 0; page < 4; page++) {
        qv_doc_t *p = s_search (c, "pages", q, DIM, 7, (uint32_t) page * 7);
        const qv_val_t *ph = qv_it_path (p, "results.0");
        assert_int_equal (qv_val_len (ph), 7);
        for (int i = 0; i < 7; i++) {
            assert_int_equal (qv_it_int (qv_it_vpath (qv_val_at (ph, i), "id")),
                              qv_it_int (qv_it_vpath (qv_val_at (hits, page * 7 + i), "id")));
            assert_float_equal (qv_it_num (qv_it_vpath (qv_val_at (ph, i), "distance")),
                                qv_it_num (qv_it_vpath (qv_val_at (hits, page * 7 + i), "distance")), 1e-6);
        }
        qv_doc_destroy (&p);
    }
    //  Distances are non-decreasing (L2)
    for (int i = 1; i < 28; i++)
        assert_true (qv_it_num (qv_it_vpath (qv_val_at (hits, i - 1), "distance"))
                  <= qv_it_num (qv_it_vpath (qv_val_at (hits, i), "distance")));
    qv_doc_destroy (&all);
    //  An offset past the end gives what is left
    qv_doc_t *tail = s_search (c, "pages", q, DIM, 10, N - 4);
    assert_int_equal (qv_val_len (qv_it_path (tail, "results.0")), 4);
    qv_doc_destroy (&tail);

    //  A batch of queries as a list of lists, with output_fields; and the same as one bin
    char text [4096];
    int len = snprintf (text, sizeof text, "{op: 'search', collection: 'pages', limit: 3,"
                        " output_fields: ['tag'], vectors: [");
    for (int qi = 0; qi < 3; qi++) {
        len += snprintf (text + len, sizeof text - (size_t) len, "%s[", qi ? ", " : "");
        for (int d = 0; d < DIM; d++)
            len += snprintf (text + len, sizeof text - (size_t) len, "%s%.9g", d ? ", " : "",
                             (double) vecs [(qi * 50) * DIM + d]);
        len += snprintf (text + len, sizeof text - (size_t) len, "]");
    }
    snprintf (text + len, sizeof text - (size_t) len, "]}");
    r = CALL_OK (c, "%s", text);
    assert_int_equal (qv_val_len (qv_it_path (r, "results")), 3);
    for (int qi = 0; qi < 3; qi++) {
        char path [64];
        snprintf (path, sizeof path, "results.%d.0.id", qi);
        assert_int_equal (qv_it_int (qv_it_path (r, path)), qi * 50);
        snprintf (path, sizeof path, "results.%d.0.fields.tag", qi);
        char tag [16];
        snprintf (tag, sizeof tag, "t%d", qi * 50);
        assert_true (qv_it_str_is (qv_it_path (r, path), tag));
        snprintf (path, sizeof path, "results.%d", qi);
        assert_int_equal (qv_val_len (qv_it_path (r, path)), 3);
    }
    qv_doc_destroy (&r);
    float qs [3 * DIM];
    for (int qi = 0; qi < 3; qi++)
        memcpy (qs + qi * DIM, vecs + (qi * 50) * DIM, DIM * 4);
    qv_wr_map (w, 5);
    qv_wr_str (w, "op"); qv_wr_str (w, "search");
    qv_wr_str (w, "collection"); qv_wr_str (w, "pages");
    qv_wr_str (w, "vectors"); qv_wr_bin (w, qs, sizeof qs);
    qv_wr_str (w, "dim"); qv_wr_uint (w, DIM);
    qv_wr_str (w, "limit"); qv_wr_uint (w, 2);
    r = qv_it_call (c, w);
    assert_true (qv_it_ok (r));
    assert_int_equal (qv_val_len (qv_it_path (r, "results")), 3);
    assert_int_equal (qv_it_int (qv_it_path (r, "results.2.0.id")), 100);
    assert_int_equal (qv_val_len (qv_it_path (r, "results.2")), 2);
    qv_doc_destroy (&r);
    //  limit larger than the collection: every row once
    r = s_search (c, "pages", q, DIM, 1000, 0);
    assert_int_equal (qv_val_len (qv_it_path (r, "results.0")), N);
    qv_doc_destroy (&r);
    qv_wr_destroy (&w);
    r = CALL_OK (c, "{op: 'drop_collection', collection: 'pages'}");
    qv_doc_destroy (&r);
    qv_it_client_destroy (&c);
}

static void
test_error_codes (void **state)
{
    (void) state;
    qv_it_client_t *c = s_client ();
    qv_doc_t *r;
    r = CALL_OK (c, "{op: 'create_collection', collection: 'errs', fields: ["
                    "{name: 'id', type: 'int64', primary: true},"
                    "{name: 'v', type: 'float_vector', dim: 4}]}");
    qv_doc_destroy (&r);

    //  MALFORMED: garbage bytes, truncated msgpack, not a map, a field of the wrong type
    const char garbage [] = "\xc1\xff\x00garbage";
    r = qv_it_call_raw (c, garbage, sizeof garbage);
    assert_non_null (r);
    assert_false (qv_it_ok (r));
    assert_string_equal (qv_it_code (r), "MALFORMED");
    qv_doc_destroy (&r);
    s_assert_serving ();
    const char truncated [] = "\x82\xa2op\xa4ping\xa3rid";
    r = qv_it_call_raw (c, truncated, sizeof truncated - 1);
    assert_string_equal (qv_it_code (r), "MALFORMED");
    qv_doc_destroy (&r);
    r = qv_it_call_raw (c, "", 0);
    assert_string_equal (qv_it_code (r), "MALFORMED");
    qv_doc_destroy (&r);
    r = CALL_ERR (c, "MALFORMED", "['ping']");
    qv_doc_destroy (&r);
    r = CALL_ERR (c, "MALFORMED", "'ping'");
    qv_doc_destroy (&r);
    s_assert_serving ();
    r = CALL_ERR (c, "MALFORMED", "{op: 'describe_collection', collection: 5}");
    qv_doc_destroy (&r);
    r = CALL_ERR (c, "MALFORMED", "{op: 'search', collection: 'errs', vectors: [[0, 0, 0, 0]], limit: 'ten'}");
    qv_doc_destroy (&r);
    r = CALL_ERR (c, "MALFORMED", "{op: 'insert', collection: 'errs', rows: [{id: 'one', v: [0, 0, 0, 0]}]}");
    qv_doc_destroy (&r);
    r = CALL_ERR (c, "MALFORMED", "{op: 'get', collection: 'errs', ids: 7}");
    qv_doc_destroy (&r);
    r = CALL_ERR (c, "MALFORMED", "{op: 5}");
    qv_doc_destroy (&r);
    s_assert_serving ();

    //  INVALID_ARGUMENT: wrong dim, bad bin length, unknown field, unknown op, missing field
    r = CALL_ERR (c, "INVALID_ARGUMENT", "{op: 'insert', collection: 'errs', rows: [{id: 1, v: [0, 0, 0]}]}");
    qv_doc_destroy (&r);
    r = CALL_ERR (c, "INVALID_ARGUMENT", "{op: 'search', collection: 'errs', vectors: [[0, 0, 0, 0, 0]]}");
    qv_doc_destroy (&r);
    float five [5] = { 0 };
    qv_wr_t *w = qv_wr_new ();
    qv_wr_map (w, 3);
    qv_wr_str (w, "op"); qv_wr_str (w, "search");
    qv_wr_str (w, "collection"); qv_wr_str (w, "errs");
    qv_wr_str (w, "vectors"); qv_wr_bin (w, five, 5 * 4);
    r = qv_it_call (c, w);
    assert_string_equal (qv_it_code (r), "INVALID_ARGUMENT");
    qv_doc_destroy (&r);
    qv_wr_map (w, 3);
    qv_wr_str (w, "op"); qv_wr_str (w, "insert");
    qv_wr_str (w, "collection"); qv_wr_str (w, "errs");
    qv_wr_str (w, "columns"); qv_wr_map (w, 2);
    qv_wr_str (w, "id"); qv_wr_array (w, 2); qv_wr_int (w, 1); qv_wr_int (w, 2);
    qv_wr_str (w, "v"); qv_wr_bin (w, five, 5 * 4);         //  2 rows need 32 bytes
    r = qv_it_call (c, w);
    assert_string_equal (qv_it_code (r), "INVALID_ARGUMENT");
    qv_doc_destroy (&r);
    qv_wr_map (w, 3);
    qv_wr_str (w, "op"); qv_wr_str (w, "insert");
    qv_wr_str (w, "collection"); qv_wr_str (w, "errs");
    qv_wr_str (w, "rows"); qv_wr_array (w, 1); qv_wr_map (w, 2);
    qv_wr_str (w, "id"); qv_wr_int (w, 1);
    qv_wr_str (w, "v"); qv_wr_bin (w, five, 3);              //  not a multiple of 4
    r = qv_it_call (c, w);
    assert_string_equal (qv_it_code (r), "INVALID_ARGUMENT");
    qv_doc_destroy (&r);
    s_assert_serving ();
    r = CALL_ERR (c, "INVALID_ARGUMENT", "{op: 'insert', collection: 'errs', rows: [{id: 1, v: [0, 0, 0, 0], extra: 1}]}");
    qv_doc_destroy (&r);
    r = CALL_ERR (c, "INVALID_ARGUMENT", "{op: 'search', collection: 'errs', vectors: [[0, 0, 0, 0]], bogus: 1}");
    qv_doc_destroy (&r);
    r = CALL_ERR (c, "INVALID_ARGUMENT", "{op: 'get', collection: 'errs', ids: [1], output_fields: ['nope']}");
    qv_doc_destroy (&r);
    r = CALL_ERR (c, "INVALID_ARGUMENT", "{op: 'frobnicate', collection: 'errs'}");
    qv_doc_destroy (&r);
    r = CALL_ERR (c, "INVALID_ARGUMENT", "{collection: 'errs'}");
    qv_doc_destroy (&r);
    r = CALL_ERR (c, "INVALID_ARGUMENT", "{op: 'insert', rows: [{id: 1, v: [0, 0, 0, 0]}]}");
    qv_doc_destroy (&r);
    r = CALL_ERR (c, "INVALID_ARGUMENT", "{op: 'insert', collection: 'errs'}");
    qv_doc_destroy (&r);
    r = CALL_ERR (c, "INVALID_ARGUMENT", "{op: 'insert', collection: 'errs', rows: [{id: 1}]}");
    qv_doc_destroy (&r);
    r = CALL_ERR (c, "INVALID_ARGUMENT", "{op: 'search', collection: 'errs'}");
    qv_doc_destroy (&r);
    r = CALL_ERR (c, "INVALID_ARGUMENT", "{op: 'search', collection: 'errs', vectors: [[0, 0, 0, 0]], limit: 0}");
    qv_doc_destroy (&r);
    r = CALL_ERR (c, "INVALID_ARGUMENT", "{op: 'search', collection: 'errs', vectors: [[0, 0, 0, 0]], limit: 16385}");
    qv_doc_destroy (&r);
    //  The other ceilings (16,384, as Milvus): offset + limit of a search and a query,
    //  and nq; just under each passes
    r = CALL_ERR (c, "INVALID_ARGUMENT", "{op: 'search', collection: 'errs', vectors: [[0, 0, 0, 0]], "
                  "limit: 5, offset: 16380}");
    assert_non_null (strstr (qv_it_error (r), "16384"));
    qv_doc_destroy (&r);
    r = CALL_OK (c, "{op: 'search', collection: 'errs', vectors: [[0, 0, 0, 0]], limit: 5, offset: 16379}");
    qv_doc_destroy (&r);
    r = CALL_ERR (c, "INVALID_ARGUMENT", "{op: 'query', collection: 'errs', filter: 'id >= 0', "
                  "limit: 16385}");
    assert_non_null (strstr (qv_it_error (r), "16384"));
    qv_doc_destroy (&r);
    r = CALL_ERR (c, "INVALID_ARGUMENT", "{op: 'query', collection: 'errs', filter: 'id >= 0', "
                  "limit: 10, offset: 16380}");
    qv_doc_destroy (&r);
    for (int nq = 16385; nq >= 16384; nq--) {
        qv_wr_t *w = qv_wr_new ();
        qv_wr_map (w, 4);
        qv_wr_str (w, "op"); qv_wr_str (w, "search");
        qv_wr_str (w, "collection"); qv_wr_str (w, "errs");
        qv_wr_str (w, "limit"); qv_wr_int (w, 1);
        qv_wr_str (w, "vectors");
        qv_wr_array (w, (size_t) nq);
        for (int i = 0; i < nq; i++) {
            qv_wr_array (w, 4);
            for (int d = 0; d < 4; d++)
                qv_wr_float (w, (float) d);
        }
        r = qv_it_call (c, w);
        qv_wr_destroy (&w);
        assert_non_null (r);
        if (nq > 16384) {
            assert_string_equal (qv_it_code (r), "INVALID_ARGUMENT");
            assert_non_null (strstr (qv_it_error (r), "16384"));
        }
        else
            assert_true (qv_it_ok (r));
        qv_doc_destroy (&r);
    }
    r = CALL_ERR (c, "INVALID_ARGUMENT", "{op: 'create_collection', collection: 'bad name', fields: ["
                     "{name: 'id', type: 'int64', primary: true}, {name: 'v', type: 'float_vector', dim: 4}]}");
    qv_doc_destroy (&r);
    r = CALL_ERR (c, "INVALID_ARGUMENT", "{op: 'create_collection', collection: 'nopk', fields: ["
                     "{name: 'v', type: 'float_vector', dim: 4}]}");
    qv_doc_destroy (&r);
    s_assert_serving ();

    //  NOT_FOUND and ALREADY_EXISTS
    r = CALL_ERR (c, "NOT_FOUND", "{op: 'insert', collection: 'nosuch', rows: [{id: 1, v: [0, 0, 0, 0]}]}");
    qv_doc_destroy (&r);
    r = CALL_ERR (c, "NOT_FOUND", "{op: 'search', collection: 'nosuch', vectors: [[0, 0, 0, 0]]}");
    qv_doc_destroy (&r);
    r = CALL_ERR (c, "NOT_FOUND", "{op: 'get', collection: 'nosuch', ids: [1]}");
    qv_doc_destroy (&r);
    r = CALL_ERR (c, "NOT_FOUND", "{op: 'delete', collection: 'nosuch', ids: [1]}");
    qv_doc_destroy (&r);
    r = CALL_ERR (c, "NOT_FOUND", "{op: 'flush', collection: 'nosuch'}");
    qv_doc_destroy (&r);
    r = CALL_ERR (c, "ALREADY_EXISTS", "{op: 'create_collection', collection: 'errs', fields: ["
                     "{name: 'id', type: 'int64', primary: true}, {name: 'v', type: 'float_vector', dim: 4}]}");
    qv_doc_destroy (&r);

    //  rid is echoed on errors too
    r = CALL_ERR (c, "NOT_FOUND", "{op: 'get', collection: 'nosuch', ids: [1], rid: 'abc'}");
    assert_true (qv_it_str_is (qv_it_path (r, "rid"), "abc"));
    qv_doc_destroy (&r);

    //  RESOURCE_EXHAUSTED: a request over --max-request-mb 1 (and under twice that)
    size_t big = (1u << 20) + (256u << 10);
    float *bigv = calloc (big / 4, 4);
    qv_wr_map (w, 3);
    qv_wr_str (w, "op"); qv_wr_str (w, "insert");
    qv_wr_str (w, "collection"); qv_wr_str (w, "errs");
    qv_wr_str (w, "columns"); qv_wr_map (w, 2);
    qv_wr_str (w, "id"); qv_wr_array (w, big / 16);
    for (size_t i = 0; i < big / 16; i++)
        qv_wr_int (w, (int64_t) i);
    qv_wr_str (w, "v"); qv_wr_bin (w, bigv, big);
    r = qv_it_call (c, w);
    assert_non_null (r);
    assert_string_equal (qv_it_code (r), "RESOURCE_EXHAUSTED");
    qv_doc_destroy (&r);
    free (bigv);
    s_assert_serving ();
    //  ... and nothing of it was written
    assert_int_equal (s_describe_rows (c, "errs"), 0);
    //  a request just under the limit is fine
    r = CALL_OK (c, "{op: 'insert', collection: 'errs', rows: [{id: 1, v: [0, 0, 0, 0]}]}");
    qv_doc_destroy (&r);
    assert_int_equal (s_describe_rows (c, "errs"), 1);

    qv_wr_destroy (&w);
    r = CALL_OK (c, "{op: 'drop_collection', collection: 'errs'}");
    qv_doc_destroy (&r);
    qv_it_client_destroy (&c);
}

//  A client that pipelines many requests and never reads its replies does not stop
//  another client from being served. (Its own server: thousands of requests are still
//  in flight when it is killed.)
static void
test_slow_reader (void **state)
{
    (void) state;
    s_other = qv_it_server_new (NULL);
    assert_non_null (s_other);
    assert_int_equal (qv_it_server_start (s_other), 0);
    s_endpoint = s_other->endpoint;     //  s_client and s_assert_serving use it now
    qv_it_client_t *c = s_client ();
    qv_doc_t *r = CALL_OK (c, "{op: 'create_collection', collection: 'slow', description: '%0512d',"
                              " fields: [{name: 'id', type: 'int64', primary: true},"
                              "{name: 'v', type: 'float_vector', dim: 4}]}", 0);
    qv_doc_destroy (&r);

    zsock_t *hog = zsock_new (ZMQ_DEALER);
    assert_non_null (hog);
    zsock_set_linger (hog, 0);
    zsock_set_rcvhwm (hog, 4);
    zsock_set_rcvbuf (hog, 4096);
    zsock_set_sndhwm (hog, 0);
    zsock_set_sndtimeo (hog, 5000);
    assert_int_equal (zsock_connect (hog, "%s", s_endpoint), 0);
    qv_wr_t *w = qv_wr_new ();
    assert_int_equal (qv_it_json_write (w, "{op: 'describe_collection', collection: 'slow'}"), 0);
    size_t size;
    const void *data = qv_wr_data (w, &size);
    enum { REQUESTS = 30000 };
    for (int i = 0; i < REQUESTS; i++) {
        zframe_t *empty = zframe_new (NULL, 0);
        zframe_t *body = zframe_new (data, size);
        assert_int_equal (zframe_send (&empty, hog, ZFRAME_MORE), 0);
        assert_int_equal (zframe_send (&body, hog, 0), 0);
    }
    //  While the hog's replies pile up unread, others are served
    for (int i = 0; i < 20; i++) {
        s_assert_serving ();
        r = CALL_OK (c, "{op: 'insert', collection: 'slow', rows: [{id: %d, v: [1, 2, 3, 4]}]}", i);
        qv_doc_destroy (&r);
    }
    r = CALL_OK (c, "{op: 'search', collection: 'slow', vectors: [[1, 2, 3, 4]], limit: 50}");
    assert_int_equal (qv_val_len (qv_it_path (r, "results.0")), 20);
    qv_doc_destroy (&r);
    //  The hog reads replies at last: each is a well-formed answer to what it sent, or,
    //  past its requests in flight (--max-inflight), RESOURCE_EXHAUSTED. Its answers
    //  follow however many refusals went out before the first of them was ready (a
    //  loaded machine: thousands), so it reads until one comes, at most every reply the
    //  server queued for it (the ROUTER drops what is past its high-water mark)
    zsock_set_rcvtimeo (hog, 10000);
    int answers = 0, received = 0;
    for (int i = 0; i < REQUESTS && answers == 0; i++) {
        zmsg_t *msg = zmsg_recv (hog);
        if (!msg && received >= 200)
            break;                  //  nothing more queued
        assert_non_null (msg);
        received++;
        zframe_t *body = zmsg_last (msg);
        int rc;
        qv_doc_t *doc = qv_doc_parse (zframe_data (body), zframe_size (body), SIZE_MAX, &rc);
        assert_non_null (doc);
        if (qv_it_ok (doc)) {
            assert_true (qv_it_str_is (qv_it_path (doc, "collection"), "slow"));
            answers++;
        }
        else
            assert_string_equal (qv_it_code (doc), "RESOURCE_EXHAUSTED");
        qv_doc_destroy (&doc);
        zmsg_destroy (&msg);
    }
    assert_true (answers > 0);
    zsock_destroy (&hog);
    qv_wr_destroy (&w);
    s_assert_serving ();
    qv_it_client_destroy (&c);
    s_endpoint = s_server->endpoint;
    qv_it_server_destroy (&s_other);
}

//  SIGTERM: the server stops by itself with status 0, and its log holds no sanitizer
//  report (leaks are reported at exit in the ASan build).
static void
test_clean_shutdown (void **state)
{
    (void) state;
    assert_int_equal (qv_it_server_signal (s_server, SIGTERM, 30000), 0);
    assert_true (WIFEXITED (s_server->status));
    assert_int_equal (WEXITSTATUS (s_server->status), 0);
    FILE *f = fopen (s_server->log, "r");
    assert_non_null (f);
    char line [4096];
    while (fgets (line, sizeof line, f))
        if (strstr (line, "Sanitizer") || strstr (line, "runtime error"))
            fail_msg ("server log: %s", line);
    fclose (f);
}

//  A failed object write (disk full, I/O error) is answered UNAVAILABLE and never
//  acknowledged; the next write succeeds and nothing of the failed one shows.
static void
test_failed_write_unavailable (void **state)
{
    (void) state;
    //  The next two object writes fail: the fence object at start (qv_wal_fence,
    //  retried before the first append) and that retry, so the first write fails
    setenv ("QV_FAULT_PUT", "2", 1);
    qv_it_server_t *server = qv_it_server_new (NULL);
    assert_non_null (server);
    int rc = qv_it_server_start (server);
    unsetenv ("QV_FAULT_PUT");
    assert_int_equal (rc, 0);
    qv_it_client_t *c = qv_it_client_new (server->endpoint, 10000);
    qv_doc_t *r = CALL_ERR (c, "UNAVAILABLE", "{op: 'create_collection', collection: 'disk', fields: ["
                               "{name: 'id', type: 'int64', primary: true},"
                               "{name: 'v', type: 'float_vector', dim: 2}]}");
    assert_non_null (strstr (qv_it_error (r), "injected fault"));
    qv_doc_destroy (&r);
    r = CALL_OK (c, "{op: 'has_collection', collection: 'disk'}");
    assert_non_null (qv_it_path (r, "exists"));
    assert_false (qv_it_bool (qv_it_path (r, "exists")));
    qv_doc_destroy (&r);
    r = CALL_OK (c, "{op: 'create_collection', collection: 'disk', fields: ["
                    "{name: 'id', type: 'int64', primary: true},"
                    "{name: 'v', type: 'float_vector', dim: 2}]}");
    qv_doc_destroy (&r);
    r = CALL_OK (c, "{op: 'insert', collection: 'disk', rows: [{id: 2, v: [3, 4]}]}");
    qv_doc_destroy (&r);
    //  After a restart the collection is there once, with its acknowledged row.
    qv_it_client_destroy (&c);
    assert_int_equal (qv_it_server_kill (server), 0);
    assert_int_equal (qv_it_server_restart (server), 0);
    c = qv_it_client_new (server->endpoint, 10000);
    r = CALL_OK (c, "{op: 'get', collection: 'disk', ids: [1, 2]}");
    const qv_val_t *rows = qv_val_get (qv_doc_root (r), "rows");
    assert_int_equal (qv_val_len (rows), 1);
    qv_doc_destroy (&r);
    r = CALL_OK (c, "{op: 'list_collections'}");
    assert_int_equal (qv_val_len (qv_it_path (r, "collections")), 1);
    qv_doc_destroy (&r);
    qv_it_client_destroy (&c);
    qv_it_server_destroy (&server);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_collection_lifecycle),
        cmocka_unit_test (test_insert_every_type),
        cmocka_unit_test (test_varchar_and_auto_id),
        cmocka_unit_test (test_upsert_replaces),
        cmocka_unit_test (test_delete_honoured),
        cmocka_unit_test (test_metrics),
        cmocka_unit_test (test_search_shapes_and_paging),
        cmocka_unit_test (test_error_codes),
        cmocka_unit_test (test_slow_reader),
        cmocka_unit_test (test_failed_write_unavailable),
        cmocka_unit_test (test_clean_shutdown),
    };
    if (getenv ("QV_IT_ONLY"))      //  e.g. QV_IT_ONLY=test_sigterm
        cmocka_set_test_filter (getenv ("QV_IT_ONLY"));
    return cmocka_run_group_tests (tests, s_group_setup, s_group_teardown);
}
