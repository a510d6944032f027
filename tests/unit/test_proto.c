//  Request decoding against the op/field tables (every op, every field kind, every
//  refusal and its code, rid kept for the error reply) and reply framing.
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qv_proto.h"
#include "qv_rc.h"

//  One key/value of a request under construction. t: 's' str, 'i' int, 'u' uint,
//  'd' double, 'b' bool, 'n' nil, 'a' list of s (or empty), 'm' empty map, 'B' bin,
//  'K' an integer key (i) with an integer value.
typedef struct {
    const char *key;
    char t;
    const char *s;
    int64_t i;
    double d;
} kv_t;

#define KV_END { NULL, 0, NULL, 0, 0 }

static void
s_write_kv (qv_wr_t *w, const kv_t *kv)
{
    if (kv->t == 'K') {
        qv_wr_int (w, kv->i);
        qv_wr_int (w, kv->i);
        return;
    }
    qv_wr_str (w, kv->key);
    switch (kv->t) {
        case 's': qv_wr_str (w, kv->s); break;
        case 'i': qv_wr_int (w, kv->i); break;
        case 'u': qv_wr_uint (w, (uint64_t) kv->i); break;
        case 'd': qv_wr_double (w, kv->d); break;
        case 'b': qv_wr_bool (w, kv->i != 0); break;
        case 'n': qv_wr_nil (w); break;
        case 'a':
            if (kv->s) {
                qv_wr_array (w, 1);
                qv_wr_str (w, kv->s);
            }
            else
                qv_wr_array (w, 0);
            break;
        case 'm': qv_wr_map (w, 0); break;
        case 'B': qv_wr_bin (w, "\0\0\x80\x3f", 4); break;
        default: fail_msg ("bad kv type %c", kv->t);
    }
}

//  Encodes the kvs as a map into a malloc'd buffer.
static void *
s_build (const kv_t *kvs, size_t *size)
{
    size_t n = 0;
    while (kvs [n].key || kvs [n].t)
        n++;
    qv_wr_t *w = qv_wr_new ();
    qv_wr_map (w, n);
    for (size_t i = 0; i < n; i++)
        s_write_kv (w, &kvs [i]);
    void *data = qv_wr_detach (w, size);
    qv_wr_destroy (&w);
    return data;
}

//  Parses kvs, checks rc, and when the request got as far as being a map, that the
//  rid was found (if want_rid >= 0, as the uint want_rid).
static void
s_check (const kv_t *kvs, int want, int64_t want_rid, const char *msg_part, int line)
{
    size_t size;
    void *data = s_build (kvs, &size);
    qv_req_t req;
    qv_err_clear ();
    int rc = qv_req_parse (data, size, 10000, &req);
    if (rc != want)
        print_error ("line %d: got %s (%s), expected %s\n", line, qv_rc_name (rc),
                     qv_err_msg (), qv_rc_name (want));
    assert_int_equal (rc, want);
    if (rc) {
        assert_true (strlen (qv_err_msg ()) > 0);
        if (msg_part && !strstr (qv_err_msg (), msg_part)) {
            print_error ("line %d: message '%s' does not mention '%s'\n", line,
                         qv_err_msg (), msg_part);
            fail ();
        }
    }
    if (want_rid >= 0) {
        uint64_t rid = 0;
        if (!req.f [QV_F_rid])
            print_error ("line %d: rid not found\n", line);
        assert_non_null (req.f [QV_F_rid]);
        assert_int_equal (qv_val_uint (req.f [QV_F_rid], &rid), 0);
        assert_int_equal (rid, (uint64_t) want_rid);
    }
    qv_req_free (&req);
    assert_null (req.doc);
    qv_req_free (&req);              //  safe twice
    free (data);
}
#define CHECK(want, rid, part, ...) do { \
        kv_t kvs_ [] = { __VA_ARGS__, KV_END }; \
        s_check (kvs_, (want), (rid), (part), __LINE__); \
    } while (0)

static void
test_valid_requests (void **state)
{
    (void) state;
    kv_t ping [] = { { "op", 's', "ping", 0, 0 }, KV_END };
    size_t size;
    void *data = s_build (ping, &size);
    qv_req_t req;
    assert_int_equal (qv_req_parse (data, size, 100, &req), 0);
    assert_int_equal (req.op, QV_OP_ping);
    assert_null (req.f [QV_F_rid]);
    assert_string_equal (req.collection, "");
    qv_req_free (&req);
    free (data);

    //  get and query take consistency and guarantee_ts like search (PROTOCOL.md)
    kv_t get [] = {
        { "op", 's', "get", 0, 0 }, { "collection", 's', "c", 0, 0 }, { "ids", 'a', NULL, 0, 0 },
        { "consistency", 's', "session", 0, 0 }, { "guarantee_ts", 'u', NULL, 7, 0 }, KV_END
    };
    data = s_build (get, &size);
    assert_int_equal (qv_req_parse (data, size, 100, &req), 0);
    assert_non_null (req.f [QV_F_guarantee_ts]);
    qv_req_free (&req);
    free (data);
    kv_t query [] = {
        { "op", 's', "query", 0, 0 }, { "collection", 's', "c", 0, 0 },
        { "consistency", 's', "eventually", 0, 0 }, { "guarantee_ts", 'u', NULL, 7, 0 }, KV_END
    };
    data = s_build (query, &size);
    assert_int_equal (qv_req_parse (data, size, 100, &req), 0);
    qv_req_free (&req);
    free (data);

    kv_t search [] = {
        { "rid", 'u', NULL, 42, 0 }, { "op", 's', "search", 0, 0 },
        { "collection", 's', "Docs_2", 0, 0 }, { "vectors", 'B', NULL, 0, 0 },
        { "dim", 'u', NULL, 1, 0 }, { "limit", 'u', NULL, 10, 0 },
        { "radius", 'i', NULL, -3, 0 }, { "range_filter", 'd', NULL, 0, 0.5 },
        { "params", 'm', NULL, 0, 0 }, { "output_fields", 'a', "tag", 0, 0 },
        { "token", 's', "secret", 0, 0 }, KV_END
    };
    data = s_build (search, &size);
    assert_int_equal (qv_req_parse (data, size, 100, &req), 0);
    assert_int_equal (req.op, QV_OP_search);
    assert_string_equal (qv_op_name (req.op), "search");
    assert_string_equal (req.collection, "Docs_2");
    uint64_t u;
    assert_int_equal (qv_val_uint (req.f [QV_F_rid], &u), 0);
    assert_int_equal (u, 42);
    assert_int_equal (qv_val_uint (req.f [QV_F_limit], &u), 0);
    assert_int_equal (u, 10);
    assert_int_equal (qv_val_type (req.f [QV_F_vectors]), QV_V_BIN);
    assert_int_equal (qv_val_type (req.f [QV_F_output_fields]), QV_V_ARRAY);
    assert_null (req.f [QV_F_filter]);
    qv_req_free (&req);
    free (data);

    //  vectors may also be a list; an int radius is a number
    CHECK (0, 7, NULL, { "op", 's', "search", 0, 0 }, { "rid", 'u', NULL, 7, 0 },
           { "collection", 's', "c", 0, 0 }, { "vectors", 'a', NULL, 0, 0 });
    //  The longest valid name (255 characters)
    char name [256];
    memset (name, 'a', 255);
    name [255] = 0;
    CHECK (0, -1, NULL, { "op", 's', "drop_collection", 0, 0 }, { "collection", 's', name, 0, 0 });
}

//  A value of the right kind for field f, and one of a wrong kind.
typedef struct { const char *name; char good; char bad; } s_field_t;

static const s_field_t s_fields [] = {
#define GOOD_STR 's'
#define GOOD_UINT 'u'
#define GOOD_NUM 'd'
#define GOOD_BOOL 'b'
#define GOOD_ARRAY 'a'
#define GOOD_MAP 'm'
#define GOOD_ANY 'n'
#define GOOD_VEC 'B'
#define BAD_STR 'i'
#define BAD_UINT 'i'
#define BAD_NUM 's'
#define BAD_BOOL 'u'
#define BAD_ARRAY 'm'
#define BAD_MAP 'a'
#define BAD_ANY 0
#define BAD_VEC 's'
#define ROW(name, kind) { #name, GOOD_##kind, BAD_##kind },
    QV_FIELDS (ROW)
#undef ROW
};

static const struct { const char *name; uint64_t req; uint64_t opt; } s_ops [] = {
#define ROW(name, req, opt) { #name, (req), (opt) },
    QV_OPS (ROW)
#undef ROW
};

//  Builds a request for op with the given field set; field bad_f (if >= 0) gets a
//  value of the wrong kind. Always adds rid 99.
static void
s_op_request (int op, uint64_t fields, int bad_f, int want, int line)
{
    kv_t kvs [QV_F_COUNT + 2];
    int n = 0;
    kvs [n++] = (kv_t) { "op", 's', s_ops [op].name, 0, 0 };
    kvs [n++] = (kv_t) { "rid", 'u', NULL, 99, 0 };
    for (int f = 0; f < QV_F_COUNT; f++) {
        if (f == QV_F_op || f == QV_F_rid || !(fields & (1ull << f)))
            continue;
        char t = f == bad_f ? s_fields [f].bad : s_fields [f].good;
        const char *str = f == QV_F_consistency ? "strong" : "coll";
        kvs [n++] = (kv_t) { s_fields [f].name, t, str, (t == 'i') ? -1 : 3, 0.25 };
    }
    kvs [n] = (kv_t) KV_END;
    s_check (kvs, want, 99, NULL, line);
}

static void
test_every_op_and_field_kind (void **state)
{
    (void) state;
    assert_int_equal (sizeof s_ops / sizeof s_ops [0], QV_OP_COUNT);
    assert_int_equal (sizeof s_fields / sizeof s_fields [0], QV_F_COUNT);
    for (int op = 0; op < QV_OP_COUNT; op++) {
        assert_string_equal (qv_op_name ((qv_op_t) op), s_ops [op].name);
        uint64_t all = s_ops [op].req | s_ops [op].opt | QV_F (token);
        //  Required fields only, then every allowed field
        s_op_request (op, s_ops [op].req, -1, 0, __LINE__);
        s_op_request (op, all, -1, 0, __LINE__);
        for (int f = 0; f < QV_F_COUNT; f++) {
            if (!(all & (1ull << f)) || f == QV_F_op || f == QV_F_rid)
                continue;
            //  Each field given with the wrong msgpack kind is MALFORMED
            if (s_fields [f].bad)
                s_op_request (op, all, f, QV_EPROTO, __LINE__);
            //  Each required field left out is INVALID_ARGUMENT
            if (s_ops [op].req & (1ull << f))
                s_op_request (op, all & ~(1ull << f), -1, QV_EINVAL, __LINE__);
        }
        //  Each field the op does not have is INVALID_ARGUMENT
        for (int f = 0; f < QV_F_COUNT; f++)
            if (!(all & (1ull << f)) && f != QV_F_op && f != QV_F_rid)
                s_op_request (op, all | (1ull << f), -1, QV_EINVAL, __LINE__);
    }
}

static void
test_refusals (void **state)
{
    (void) state;
    //  Unknown op; the message quotes it
    CHECK (QV_EINVAL, 5, "frobnicate", { "op", 's', "frobnicate", 0, 0 }, { "rid", 'u', NULL, 5, 0 });
    CHECK (QV_EINVAL, 5, NULL, { "rid", 'u', NULL, 5, 0 }, { "op", 's', "Ping", 0, 0 });
    CHECK (QV_EINVAL, 5, NULL, { "rid", 'u', NULL, 5, 0 }, { "op", 's', "", 0, 0 });
    //  Missing op: a missing field is INVALID_ARGUMENT (PROTOCOL.md)
    CHECK (QV_EINVAL, 5, "op", { "rid", 'u', NULL, 5, 0 }, { "collection", 's', "c", 0, 0 });
    //  op not a string: MALFORMED
    CHECK (QV_EPROTO, 5, "op", { "rid", 'u', NULL, 5, 0 }, { "op", 'u', NULL, 1, 0 });
    CHECK (QV_EPROTO, 5, "op", { "op", 'n', NULL, 0, 0 }, { "rid", 'u', NULL, 5, 0 });
    CHECK (QV_EPROTO, 5, "op", { "op", 'a', "ping", 0, 0 }, { "rid", 'u', NULL, 5, 0 });
    //  A field of the wrong kind: MALFORMED, naming it
    CHECK (QV_EPROTO, 5, "limit", { "op", 's', "search", 0, 0 }, { "collection", 's', "c", 0, 0 },
           { "vectors", 'B', NULL, 0, 0 }, { "limit", 's', "10", 0, 0 }, { "rid", 'u', NULL, 5, 0 });
    CHECK (QV_EPROTO, 5, "limit", { "op", 's', "search", 0, 0 }, { "collection", 's', "c", 0, 0 },
           { "vectors", 'B', NULL, 0, 0 }, { "limit", 'i', NULL, -1, 0 }, { "rid", 'u', NULL, 5, 0 });
    CHECK (QV_EPROTO, 5, "limit", { "op", 's', "search", 0, 0 }, { "collection", 's', "c", 0, 0 },
           { "vectors", 'B', NULL, 0, 0 }, { "limit", 'd', NULL, 0, 10.0 }, { "rid", 'u', NULL, 5, 0 });
    CHECK (QV_EPROTO, 5, "collection", { "op", 's', "flush", 0, 0 }, { "collection", 'u', NULL, 3, 0 },
           { "rid", 'u', NULL, 5, 0 });
    //  A field unknown to the op: INVALID_ARGUMENT, naming it
    CHECK (QV_EINVAL, 5, "bogus", { "op", 's', "ping", 0, 0 }, { "rid", 'u', NULL, 5, 0 },
           { "bogus", 'u', NULL, 1, 0 });
    CHECK (QV_EINVAL, 5, "limit", { "op", 's', "insert", 0, 0 }, { "collection", 's', "c", 0, 0 },
           { "limit", 'u', NULL, 1, 0 }, { "rid", 'u', NULL, 5, 0 });
    //  A missing required field: INVALID_ARGUMENT, naming it
    CHECK (QV_EINVAL, 5, "vectors", { "op", 's', "search", 0, 0 }, { "collection", 's', "c", 0, 0 },
           { "rid", 'u', NULL, 5, 0 });
    CHECK (QV_EINVAL, 5, "collection", { "rid", 'u', NULL, 5, 0 }, { "op", 's', "describe_collection", 0, 0 });
    //  consistency: one of the four levels, for every op that takes it
    CHECK (QV_EINVAL, 5, "consistency", { "op", 's', "search", 0, 0 }, { "collection", 's', "c", 0, 0 },
           { "vectors", 'B', NULL, 0, 0 }, { "consistency", 's', "Strong", 0, 0 }, { "rid", 'u', NULL, 5, 0 });
    CHECK (QV_EINVAL, 5, "consistency", { "op", 's', "get", 0, 0 }, { "collection", 's', "c", 0, 0 },
           { "ids", 'a', "1", 0, 0 }, { "consistency", 's', "", 0, 0 }, { "rid", 'u', NULL, 5, 0 });
    CHECK (QV_EINVAL, 5, "consistency", { "op", 's', "query", 0, 0 }, { "collection", 's', "c", 0, 0 },
           { "consistency", 's', "strongest", 0, 0 }, { "rid", 'u', NULL, 5, 0 });
    //  Invalid collection names
    const char *bad_names [] = { "", "1abc", "a-b", "a.b", "a b", "é", "docs\n", "quiver.>" };
    for (size_t i = 0; i < sizeof bad_names / sizeof bad_names [0]; i++)
        CHECK (QV_EINVAL, 5, "collection name", { "op", 's', "has_collection", 0, 0 },
               { "collection", 's', bad_names [i], 0, 0 }, { "rid", 'u', NULL, 5, 0 });
    char name [257];
    memset (name, 'a', 256);
    name [256] = 0;
    CHECK (QV_EINVAL, 5, "collection name", { "op", 's', "has_collection", 0, 0 },
           { "collection", 's', name, 0, 0 }, { "rid", 'u', NULL, 5, 0 });
    //  Keys must be strings; the rid is still found wherever it stands
    CHECK (QV_EPROTO, 5, "keys", { "op", 's', "ping", 0, 0 }, { NULL, 'K', NULL, 1, 0 },
           { "rid", 'u', NULL, 5, 0 });
    CHECK (QV_EPROTO, 5, "keys", { "rid", 'u', NULL, 5, 0 }, { NULL, 'K', NULL, 1, 0 },
           { "op", 's', "ping", 0, 0 });
}

//  Parses the bytes written to w: the code, and the message must mention part.
static void
s_check_wr (qv_wr_t *w, int want, const char *part, bool want_rid, int line)
{
    size_t size;
    const void *data = qv_wr_data (w, &size);
    qv_req_t req;
    qv_err_clear ();
    int rc = qv_req_parse (data, size, 100000, &req);
    if (rc != want || (part && !strstr (qv_err_msg (), part)))
        fail_msg ("line %d: got %s '%s', expected %s mentioning '%s'", line, qv_rc_name (rc),
                  qv_err_msg (), qv_rc_name (want), part ? part : "");
    //  What is echoed is valid UTF-8
    assert_true (qv_utf8_valid (qv_err_msg (), strlen (qv_err_msg ())));
    assert_int_equal (req.f [QV_F_rid] != NULL, want_rid);
    qv_req_free (&req);
    qv_wr_reset (w);
}
#define CHECK_WR(w, want, part, rid) s_check_wr ((w), (want), (part), (rid), __LINE__)

//  PROTOCOL.md 1.1: a key twice is MALFORMED, invalid UTF-8 is MALFORMED and never
//  echoed raw, NaN / infinite numbers and unknown `params` keys are INVALID_ARGUMENT,
//  ttl_seconds is bounded.
static void
test_encoding_rules (void **state)
{
    (void) state;
    qv_wr_t *w = qv_wr_new ();
    //  {op: "ping", op: "drop_collection", collection: "d"} must not drop anything
    qv_wr_map (w, 4);
    qv_wr_str (w, "op"); qv_wr_str (w, "ping");
    qv_wr_str (w, "op"); qv_wr_str (w, "drop_collection");
    qv_wr_str (w, "collection"); qv_wr_str (w, "d");
    qv_wr_str (w, "rid"); qv_wr_uint (w, 7);
    CHECK_WR (w, QV_EPROTO, "'op' twice", true);
    //  A key twice deeper down (a row), and in a map too large for the pairwise check
    qv_wr_map (w, 3);
    qv_wr_str (w, "op"); qv_wr_str (w, "insert");
    qv_wr_str (w, "collection"); qv_wr_str (w, "d");
    qv_wr_str (w, "rows"); qv_wr_array (w, 1); qv_wr_map (w, 2);
    qv_wr_str (w, "id"); qv_wr_int (w, 1); qv_wr_str (w, "id"); qv_wr_int (w, 2);
    CHECK_WR (w, QV_EPROTO, "'id' twice", false);
    qv_wr_map (w, 3);
    qv_wr_str (w, "op"); qv_wr_str (w, "insert");
    qv_wr_str (w, "collection"); qv_wr_str (w, "d");
    qv_wr_str (w, "rows"); qv_wr_array (w, 1); qv_wr_map (w, 40);
    for (int i = 0; i < 40; i++) {
        char key [16];
        snprintf (key, sizeof key, "k%d", i == 39 ? 17 : i);
        qv_wr_str (w, key); qv_wr_int (w, i);
    }
    CHECK_WR (w, QV_EPROTO, "'k17' twice", false);
    //  Distinct keys are fine, whatever their number
    qv_wr_map (w, 2);
    qv_wr_str (w, "op"); qv_wr_str (w, "ping");
    qv_wr_str (w, "rid"); qv_wr_map (w, 40);
    for (int i = 0; i < 40; i++) {
        char key [16];
        snprintf (key, sizeof key, "k%d", i);
        qv_wr_str (w, key); qv_wr_int (w, i);
    }
    CHECK_WR (w, 0, NULL, true);
    //  Invalid UTF-8 in op: MALFORMED, the bytes escaped, the rid still echoed
    qv_wr_map (w, 2);
    qv_wr_str (w, "op"); qv_wr_strn (w, "pi\xffng\xc3", 6);
    qv_wr_str (w, "rid"); qv_wr_uint (w, 3);
    CHECK_WR (w, QV_EPROTO, "pi\\xffng\\xc3", true);
    //  Overlong encodings and surrogates are not UTF-8 either
    const char *bad [] = { "\xc0\xaf", "\xe0\x80\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80", "\xf8" };
    for (size_t i = 0; i < sizeof bad / sizeof bad [0]; i++) {
        assert_false (qv_utf8_valid (bad [i], strlen (bad [i])));
        qv_wr_map (w, 2);
        qv_wr_str (w, "op"); qv_wr_str (w, "has_collection");
        qv_wr_str (w, "collection"); qv_wr_str (w, bad [i]);
        CHECK_WR (w, QV_EPROTO, "UTF-8", false);
    }
    const char *good = "h\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80";
    assert_true (qv_utf8_valid (good, strlen (good)));
    //  A rid that is not valid UTF-8 is not echoed
    qv_wr_map (w, 2);
    qv_wr_str (w, "op"); qv_wr_str (w, "ping");
    qv_wr_str (w, "rid"); qv_wr_strn (w, "\xff", 1);
    CHECK_WR (w, QV_EPROTO, "UTF-8", false);
    //  NaN and infinity where a number is expected
    double nonfinite [] = { NAN, INFINITY, -INFINITY };
    for (int i = 0; i < 3; i++) {
        qv_wr_map (w, 4);
        qv_wr_str (w, "op"); qv_wr_str (w, "search");
        qv_wr_str (w, "collection"); qv_wr_str (w, "d");
        qv_wr_str (w, "vectors"); qv_wr_bin (w, "\0\0\x80\x3f", 4);
        qv_wr_str (w, i == 2 ? "range_filter" : "radius"); qv_wr_double (w, nonfinite [i]);
        CHECK_WR (w, QV_EINVAL, "finite", false);
    }
    //  Unknown keys in params, named; NaN in params
    qv_wr_map (w, 4);
    qv_wr_str (w, "op"); qv_wr_str (w, "search");
    qv_wr_str (w, "collection"); qv_wr_str (w, "d");
    qv_wr_str (w, "vectors"); qv_wr_bin (w, "\0\0\x80\x3f", 4);
    qv_wr_str (w, "params"); qv_wr_map (w, 2);
    qv_wr_str (w, "ef"); qv_wr_uint (w, 10); qv_wr_str (w, "nprob"); qv_wr_uint (w, 10);
    CHECK_WR (w, QV_EINVAL, "'nprob'", false);
    qv_wr_map (w, 5);
    qv_wr_str (w, "op"); qv_wr_str (w, "create_index");
    qv_wr_str (w, "collection"); qv_wr_str (w, "d");
    qv_wr_str (w, "field"); qv_wr_str (w, "v");
    qv_wr_str (w, "index_type"); qv_wr_str (w, "HNSW");
    qv_wr_str (w, "params"); qv_wr_map (w, 2);
    qv_wr_str (w, "M"); qv_wr_uint (w, 8); qv_wr_str (w, "ef_construction"); qv_wr_uint (w, 10);
    CHECK_WR (w, QV_EINVAL, "'ef_construction'", false);
    qv_wr_map (w, 5);
    qv_wr_str (w, "op"); qv_wr_str (w, "create_index");
    qv_wr_str (w, "collection"); qv_wr_str (w, "d");
    qv_wr_str (w, "field"); qv_wr_str (w, "v");
    qv_wr_str (w, "index_type"); qv_wr_str (w, "HNSW");
    qv_wr_str (w, "params"); qv_wr_map (w, 1);
    qv_wr_str (w, "M"); qv_wr_double (w, NAN);
    CHECK_WR (w, QV_EINVAL, "finite", false);
    //  ttl_seconds: at most QV_TTL_MAX_SECONDS
    uint64_t ttls [] = { UINT64_MAX, QV_TTL_MAX_SECONDS + 1, QV_TTL_MAX_SECONDS };
    for (int i = 0; i < 3; i++) {
        qv_wr_map (w, 4);
        qv_wr_str (w, "op"); qv_wr_str (w, "create_collection");
        qv_wr_str (w, "collection"); qv_wr_str (w, "d");
        qv_wr_str (w, "fields"); qv_wr_array (w, 0);
        qv_wr_str (w, "ttl_seconds"); qv_wr_uint (w, ttls [i]);
        CHECK_WR (w, i < 2 ? QV_EINVAL : 0, i < 2 ? "ttl_seconds" : NULL, false);
    }
    qv_wr_destroy (&w);

    //  An error reply never carries invalid UTF-8, nor a rid that is not UTF-8
    w = qv_wr_new ();
    qv_doc_t *doc = qv_doc_parse ("\xa1\xff", 2, 10, &(int) { 0 });
    assert_non_null (doc);
    qv_reply_error (w, qv_doc_root (doc), QV_EINVAL, "unknown op 'a\xff" "b'");
    size_t size;
    const void *data = qv_wr_data (w, &size);
    int rc;
    qv_doc_t *reply = qv_doc_parse (data, size, 100, &rc);
    assert_non_null (reply);
    assert_int_equal (qv_val_check_strict (qv_doc_root (reply)), 0);
    assert_null (qv_val_get (qv_doc_root (reply), "rid"));
    const char *msg;
    size_t len;
    assert_int_equal (qv_val_str (qv_val_get (qv_doc_root (reply), "error"), &msg, &len), 0);
    assert_int_equal (len, strlen ("unknown op 'a\\xffb'"));
    assert_memory_equal (msg, "unknown op 'a\\xffb'", len);
    qv_doc_destroy (&reply);
    qv_doc_destroy (&doc);
    qv_wr_destroy (&w);
}

static void
test_not_a_request (void **state)
{
    (void) state;
    qv_req_t req;
    //  Not msgpack, not a map, too many elements: no rid to find
    assert_int_equal (qv_req_parse ("\xc1", 1, 100, &req), QV_EPROTO);
    assert_null (req.f [QV_F_rid]);
    qv_req_free (&req);
    assert_int_equal (qv_req_parse ("", 0, 100, &req), QV_EPROTO);
    qv_req_free (&req);
    assert_int_equal (qv_req_parse ("\x92\x01\x02", 3, 100, &req), QV_EPROTO);
    assert_non_null (strstr (qv_err_msg (), "map"));
    qv_req_free (&req);
    assert_int_equal (qv_req_parse ("\xa4ping", 5, 100, &req), QV_EPROTO);
    qv_req_free (&req);
    kv_t kvs [] = { { "op", 's', "get", 0, 0 }, { "collection", 's', "c", 0, 0 },
                    { "ids", 'a', "x", 0, 0 }, KV_END };
    size_t size;
    void *data = s_build (kvs, &size);
    assert_int_equal (qv_req_parse (data, size, 3, &req), QV_ELIMIT);
    qv_req_free (&req);
    assert_int_equal (qv_req_parse (data, size, 7, &req), 0);
    qv_req_free (&req);
    //  Every truncation of a valid request is MALFORMED, never a crash
    for (size_t cut = 0; cut < size; cut++) {
        void *copy = malloc (cut ? cut : 1);
        memcpy (copy, data, cut);
        assert_int_equal (qv_req_parse (copy, cut, 100, &req), QV_EPROTO);
        qv_req_free (&req);
        free (copy);
    }
    free (data);
}

//  Parses a reply and checks ok / rid (encoded bytes) / code.
//  A NATS payload named by its subject (qv_req_parse_named): op and collection come
//  from outside, the payload may repeat them only unchanged; the request written
//  again (qv_req_write_pairs) carries them. The payload is decoded where it lies and
//  its owner released once.
static int s_released;

static void
s_release (void *owner)
{
    s_released++;
    free (owner);
}

static int
s_parse_named (const kv_t *kvs, const char *op, const char *coll, qv_req_t *req)
{
    size_t size;
    void *data = s_build (kvs, &size);
    return qv_req_parse_named (data, size, 10000, op, coll, s_release, data, req);
}

static void
test_named_by_subject (void **state)
{
    (void) state;
    s_released = 0;
    qv_req_t req;
    //  Neither in the payload: both from the subject
    kv_t plain [] = { { "rid", 'u', NULL, 7, 0 }, { "ids", 'a', NULL, 0, 0 }, KV_END };
    assert_int_equal (s_parse_named (plain, "delete", "books", &req), 0);
    assert_int_equal (req.op, QV_OP_delete);
    assert_string_equal (req.collection, "books");
    assert_null (req.f [QV_F_op]);
    //  Written again: op and collection first, the rest as it came, skipped fields left out
    qv_wr_t *w = qv_wr_new ();
    qv_wr_map_open (w);
    qv_req_write_pairs (&req, w, QV_F (rid));
    qv_wr_map_close (w);
    size_t size;
    const void *bytes = qv_wr_data (w, &size);
    qv_req_t again;
    assert_int_equal (qv_req_parse (bytes, size, 10000, &again), 0);
    assert_int_equal (again.op, QV_OP_delete);
    assert_string_equal (again.collection, "books");
    assert_non_null (again.f [QV_F_ids]);
    assert_null (again.f [QV_F_rid]);
    qv_req_free (&again);
    qv_wr_destroy (&w);
    qv_req_free (&req);
    assert_int_equal (s_released, 1);
    //  Repeated unchanged: accepted
    kv_t same [] = { { "op", 's', "delete", 0, 0 }, { "collection", 's', "books", 0, 0 },
                     { "ids", 'a', NULL, 0, 0 }, KV_END };
    assert_int_equal (s_parse_named (same, "delete", "books", &req), 0);
    qv_req_free (&req);
    //  Disagreeing with the subject: refused, naming which
    kv_t other_coll [] = { { "collection", 's', "films", 0, 0 }, { "ids", 'a', NULL, 0, 0 }, KV_END };
    assert_int_equal (s_parse_named (other_coll, "delete", "books", &req), QV_EINVAL);
    assert_non_null (strstr (qv_err_msg (), "'collection' disagrees with the subject (books)"));
    qv_req_free (&req);
    kv_t other_op [] = { { "op", 's', "insert", 0, 0 }, { "ids", 'a', NULL, 0, 0 }, KV_END };
    assert_int_equal (s_parse_named (other_op, "delete", "books", &req), QV_EINVAL);
    assert_non_null (strstr (qv_err_msg (), "'op' disagrees with the subject (delete)"));
    qv_req_free (&req);
    //  The op's own fields are still checked; a bad collection name from the subject too
    kv_t stray [] = { { "filter", 's', "x > 1", 0, 0 }, { "limit", 'u', NULL, 3, 0 }, KV_END };
    assert_int_equal (s_parse_named (stray, "delete", "books", &req), QV_EINVAL);
    qv_req_free (&req);
    kv_t ok_del [] = { { "ids", 'a', NULL, 0, 0 }, KV_END };
    assert_int_equal (s_parse_named (ok_del, "delete", "bad name!", &req), QV_EINVAL);
    qv_req_free (&req);
    assert_int_equal (s_parse_named (ok_del, "no_such_op", "books", &req), QV_EINVAL);
    qv_req_free (&req);
    //  Not a map: said as a payload; undecodable bytes: the owner is released at once
    uint8_t *arr = malloc (1);
    arr [0] = 0x90;                 //  an empty array
    assert_int_equal (qv_req_parse_named (arr, 1, 10000, "insert", "books", s_release, arr, &req),
                      QV_EPROTO);
    assert_non_null (strstr (qv_err_msg (), "the payload must be a msgpack map"));
    qv_req_free (&req);
    uint8_t *bad = malloc (1);
    bad [0] = 0xc1;
    int before = s_released;
    assert_int_equal (qv_req_parse_named (bad, 1, 10000, "insert", "books", s_release, bad, &req),
                      QV_EPROTO);
    assert_int_equal (s_released, before + 1);
    qv_req_free (&req);
    //  Every owner released exactly once
    assert_int_equal (s_released, 9);
}

static const qv_val_t *
s_reply (qv_doc_t **doc, qv_wr_t *w, bool ok, const void *rid_bytes, size_t rid_size,
         size_t nkeys)
{
    size_t size;
    const void *data = qv_wr_data (w, &size);
    int rc;
    *doc = qv_doc_parse (data, size, 1000, &rc);
    assert_non_null (*doc);
    const qv_val_t *root = qv_doc_root (*doc);
    assert_int_equal (qv_val_type (root), QV_V_MAP);
    assert_int_equal (qv_val_len (root), nkeys);
    bool b;
    assert_int_equal (qv_val_bool (qv_val_get (root, "ok"), &b), 0);
    assert_true (b == ok);
    const qv_val_t *rid = qv_val_get (root, "rid");
    if (rid_bytes) {
        assert_non_null (rid);
        size_t n;
        void *enc = qv_val_encode (rid, &n);
        assert_int_equal (n, rid_size);
        assert_memory_equal (enc, rid_bytes, n);
        free (enc);
    }
    else
        assert_null (rid);
    return root;
}

static void
test_reply_framing (void **state)
{
    (void) state;
    //  A request with a structured rid, echoed back byte for byte
    qv_wr_t *w = qv_wr_new ();
    qv_wr_map (w, 2);
    qv_wr_str (w, "op"); qv_wr_str (w, "ping");
    qv_wr_str (w, "rid");
    qv_wr_map (w, 2);
    qv_wr_str (w, "client"); qv_wr_str (w, "c-7");
    qv_wr_str (w, "seq"); qv_wr_array (w, 2); qv_wr_int (w, -1); qv_wr_double (w, 2.5);
    size_t size;
    const void *data = qv_wr_data (w, &size);
    qv_req_t req;
    assert_int_equal (qv_req_parse (data, size, 100, &req), 0);
    size_t rid_size;
    void *rid_bytes = qv_val_encode (req.f [QV_F_rid], &rid_size);
    qv_wr_destroy (&w);

    w = qv_wr_new ();
    qv_reply_ok (w, req.f [QV_F_rid], 2);
    qv_wr_str (w, "version"); qv_wr_str (w, QV_PROTO_VERSION);
    qv_wr_str (w, "count"); qv_wr_uint (w, 3);
    qv_doc_t *doc;
    const qv_val_t *root = s_reply (&doc, w, true, rid_bytes, rid_size, 4);
    assert_true (qv_val_is (qv_val_get (root, "version"), QV_PROTO_VERSION));
    uint64_t u;
    assert_int_equal (qv_val_uint (qv_val_get (root, "count"), &u), 0);
    assert_int_equal (u, 3);
    qv_doc_destroy (&doc);
    qv_wr_destroy (&w);

    //  Without a rid, no rid key
    w = qv_wr_new ();
    qv_reply_ok (w, NULL, 0);
    root = s_reply (&doc, w, true, NULL, 0, 1);
    qv_doc_destroy (&doc);
    qv_wr_destroy (&w);

    //  Error replies carry the PROTOCOL.md code and the message
    static const struct { int rc; const char *code; } codes [] = {
        { QV_EPROTO, "MALFORMED" }, { QV_EINVAL, "INVALID_ARGUMENT" },
        { QV_ENOTFOUND, "NOT_FOUND" }, { QV_EEXIST, "ALREADY_EXISTS" },
        { QV_EUNAUTH, "UNAUTHENTICATED" }, { QV_EPERM, "PERMISSION_DENIED" },
        { QV_ELIMIT, "RESOURCE_EXHAUSTED" }, { QV_EUNAVAIL, "UNAVAILABLE" },
        { QV_ETIMEOUT, "TIMEOUT" }, { QV_ERR, "INTERNAL" }, { QV_EIO, "UNAVAILABLE" }
    };
    for (size_t i = 0; i < sizeof codes / sizeof codes [0]; i++) {
        w = qv_wr_new ();
        qv_reply_error (w, req.f [QV_F_rid], codes [i].rc, "field 'dim' must be 4");
        root = s_reply (&doc, w, false, rid_bytes, rid_size, 4);
        assert_true (qv_val_is (qv_val_get (root, "code"), codes [i].code));
        assert_true (qv_val_is (qv_val_get (root, "error"), "field 'dim' must be 4"));
        qv_doc_destroy (&doc);
        qv_wr_destroy (&w);
    }
    w = qv_wr_new ();
    qv_reply_error (w, NULL, QV_EINVAL, "");
    root = s_reply (&doc, w, false, NULL, 0, 3);
    qv_doc_destroy (&doc);
    qv_wr_destroy (&w);

    free (rid_bytes);
    qv_req_free (&req);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_valid_requests),
        cmocka_unit_test (test_every_op_and_field_kind),
        cmocka_unit_test (test_refusals),
        cmocka_unit_test (test_not_a_request),
        cmocka_unit_test (test_encoding_rules),
        cmocka_unit_test (test_reply_framing),
        cmocka_unit_test (test_named_by_subject),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
