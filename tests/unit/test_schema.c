//  Collection schemas: parse/write round trip of every type and option, duplication,
//  and each refusal with its code and the field it names.
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qv_schema.h"
#include "qv_test_json.h"

static qv_schema_t *
s_parse (const char *json, int *rc)
{
    qv_doc_t *doc = qv_test_doc (json);
    *rc = 12345;
    qv_err_clear ();
    qv_schema_t *schema = qv_schema_parse (qv_doc_root (doc), rc);
    qv_doc_destroy (&doc);
    return schema;
}

static qv_schema_t *
s_parse_ok (const char *json)
{
    int rc;
    qv_schema_t *schema = s_parse (json, &rc);
    if (!schema)
        print_error ("%s: %s\n", qv_rc_name (rc), qv_err_msg ());
    assert_non_null (schema);
    assert_int_equal (rc, 0);
    return schema;
}

//  Expects json to be refused with want, the message mentioning part (if not NULL).
static void
s_refuse (const char *json, int want, const char *part, int line)
{
    int rc;
    qv_schema_t *schema = s_parse (json, &rc);
    if (schema || rc != want)
        print_error ("line %d: got %s (%s), expected %s\n", line, qv_rc_name (rc),
                     qv_err_msg (), qv_rc_name (want));
    assert_null (schema);
    assert_int_equal (rc, want);
    if (part && !strstr (qv_err_msg (), part)) {
        print_error ("line %d: message '%s' does not mention '%s'\n", line, qv_err_msg (), part);
        fail ();
    }
}
#define REFUSE(want, part, json) s_refuse ((json), (want), (part), __LINE__)

#define PK "{\"name\": \"id\", \"type\": \"int64\", \"primary\": true}"
#define VEC "{\"name\": \"v\", \"type\": \"float_vector\", \"dim\": 4}"

static const char *s_full =
    "[{\"name\": \"id\", \"type\": \"int64\", \"primary\": true, \"auto_id\": true},"
    " {\"name\": \"emb\", \"type\": \"float_vector\", \"dim\": 128, \"metric\": \"COSINE\"},"
    " {\"name\": \"emb2\", \"type\": \"float_vector\", \"dim\": 32768, \"metric\": \"ip\"},"
    " {\"name\": \"emb3\", \"type\": \"float_vector\", \"dim\": 1},"
    " {\"name\": \"b\", \"type\": \"bool\", \"nullable\": true},"
    " {\"name\": \"i8\", \"type\": \"int8\", \"default\": -3},"
    " {\"name\": \"i16\", \"type\": \"int16\"},"
    " {\"name\": \"i32\", \"type\": \"int32\", \"partition_key\": true},"
    " {\"name\": \"i64\", \"type\": \"int64\", \"nullable\": true, \"default\": 7},"
    " {\"name\": \"f\", \"type\": \"float\", \"default\": 1.5},"
    " {\"name\": \"d\", \"type\": \"double\", \"description\": \"ignored\"},"
    " {\"name\": \"tag\", \"type\": \"varchar\", \"max_length\": 16, \"default\": \"none\"},"
    " {\"name\": \"Long_name_9\", \"type\": \"varchar\"},"
    " {\"name\": \"meta\", \"type\": \"json\", \"nullable\": true, \"default\": {\"a\": [1]}}]";

static void
s_assert_same (const qv_schema_t *a, const qv_schema_t *b)
{
    assert_int_equal (a->nfields, b->nfields);
    assert_int_equal (a->pk, b->pk);
    assert_int_equal (a->vec, b->vec);
    for (int i = 0; i < a->nfields; i++) {
        const qv_field_t *x = &a->fields [i], *y = &b->fields [i];
        assert_string_equal (x->name, y->name);
        assert_int_equal (x->type, y->type);
        assert_int_equal (x->dim, y->dim);
        if (x->type == QV_FLOAT_VECTOR)
            assert_int_equal (x->metric, y->metric);
        assert_int_equal (x->max_length, y->max_length);
        assert_int_equal (x->primary, y->primary);
        assert_int_equal (x->auto_id, y->auto_id);
        assert_int_equal (x->nullable, y->nullable);
        assert_int_equal (x->partition_key, y->partition_key);
        assert_int_equal (x->dynamic, y->dynamic);
        assert_int_equal (x->default_size, y->default_size);
        if (x->default_size)
            assert_memory_equal (x->default_raw, y->default_raw, x->default_size);
        else
            assert_null (y->default_raw);
    }
}

static void
test_parse_values (void **state)
{
    (void) state;
    qv_schema_t *s = s_parse_ok (s_full);
    assert_int_equal (s->nfields, 14);
    assert_int_equal (s->pk, 0);
    assert_int_equal (s->vec, 1);
    assert_true (s->fields [0].primary && s->fields [0].auto_id);
    assert_int_equal (s->fields [1].dim, 128);
    assert_int_equal (s->fields [1].metric, QV_METRIC_COSINE);
    assert_int_equal (s->fields [2].metric, QV_METRIC_IP);      //  case-insensitive
    assert_int_equal (s->fields [3].metric, QV_METRIC_L2);      //  the default
    assert_true (s->fields [4].nullable);
    assert_false (s->fields [5].nullable);
    assert_true (s->fields [7].partition_key);
    assert_int_equal (s->fields [11].max_length, 16);
    assert_int_equal (s->fields [12].max_length, QV_VARCHAR_DEFAULT_MAX);
    //  Defaults are kept as the msgpack of the value given
    assert_int_equal (s->fields [5].default_size, 1);
    assert_int_equal (((uint8_t *) s->fields [5].default_raw) [0], 0xfd);      //  -3
    assert_null (s->fields [6].default_raw);
    assert_int_equal (qv_schema_find (s, "tag"), 11);
    assert_int_equal (qv_schema_find (s, "Tag"), -1);
    assert_int_equal (qv_schema_find (s, ""), -1);
    size_t widths [] = { 8, 512, 131072, 4, 1, 1, 2, 4, 8, 4, 8, 0, 0, 0 };
    for (int i = 0; i < 14; i++)
        assert_int_equal (qv_field_width (&s->fields [i]), widths [i]);
    const char *types [] = { "int64", "float_vector", "float_vector", "float_vector", "bool",
                             "int8", "int16", "int32", "int64", "float", "double", "varchar",
                             "varchar", "json" };
    for (int i = 0; i < 14; i++)
        assert_string_equal (qv_type_name (s->fields [i].type), types [i]);
    qv_schema_destroy (&s);
    assert_null (s);
    qv_schema_destroy (&s);

    //  A varchar primary key, "is_primary" as Milvus spells it, vector not first
    s = s_parse_ok ("[{\"name\": \"v\", \"type\": \"float_vector\", \"dim\": 3},"
                    " {\"name\": \"k\", \"type\": \"varchar\", \"is_primary\": true, \"max_length\": 64}]");
    assert_int_equal (s->pk, 1);
    assert_int_equal (s->vec, 0);
    assert_true (s->fields [1].primary);
    qv_schema_destroy (&s);
}

static void
test_round_trip (void **state)
{
    (void) state;
    qv_schema_t *a = s_parse_ok (s_full);
    qv_wr_t *w = qv_wr_new ();
    qv_schema_write (a, w);
    size_t size1;
    void *bytes1 = qv_wr_detach (w, &size1);
    int rc;
    qv_doc_t *doc = qv_doc_parse (bytes1, size1, SIZE_MAX, &rc);
    assert_non_null (doc);
    qv_schema_t *b = qv_schema_parse (qv_doc_root (doc), &rc);
    assert_non_null (b);
    s_assert_same (a, b);
    //  And it is a fixed point: writing the parsed copy gives the same bytes
    qv_schema_write (b, w);
    size_t size2;
    void *bytes2 = qv_wr_detach (w, &size2);
    assert_int_equal (size1, size2);
    assert_memory_equal (bytes1, bytes2, size1);
    //  A duplicate is equal and independent of the original
    qv_schema_t *c = qv_schema_dup (a);
    assert_non_null (c);
    qv_schema_destroy (&a);
    s_assert_same (b, c);
    if (c->fields [13].default_raw)
        assert_ptr_not_equal (c->fields [13].default_raw, b->fields [13].default_raw);
    qv_schema_destroy (&b);
    qv_schema_destroy (&c);
    qv_doc_destroy (&doc);
    free (bytes1);
    free (bytes2);
    qv_wr_destroy (&w);
}

static void
test_refusals (void **state)
{
    (void) state;
    //  Not a list / empty / too many fields
    REFUSE (QV_EPROTO, "list", "{\"name\": \"id\"}");
    REFUSE (QV_EINVAL, NULL, "[]");
    char *many = malloc (100000);
    strcpy (many, "[" PK ", " VEC);
    for (int i = 0; i < QV_FIELDS_MAX - 1; i++)
        sprintf (many + strlen (many), ", {\"name\": \"f%d\", \"type\": \"bool\"}", i);
    strcat (many, "]");
    REFUSE (QV_EINVAL, NULL, many);
    free (many);
    //  Primary key rules
    REFUSE (QV_EINVAL, "primary", "[" VEC "]");
    REFUSE (QV_EINVAL, "primary", "[" VEC ", {\"name\": \"id\", \"type\": \"int64\"}]");
    REFUSE (QV_EINVAL, "'b'", "[" PK ", " VEC ", {\"name\": \"b\", \"type\": \"int64\", \"primary\": true}]");
    REFUSE (QV_EINVAL, "'b'", "[" PK ", " VEC ", {\"name\": \"b\", \"type\": \"varchar\", \"is_primary\": true}]");
    REFUSE (QV_EINVAL, "'p'", "[" VEC ", {\"name\": \"p\", \"type\": \"int32\", \"primary\": true}]");
    REFUSE (QV_EINVAL, "'p'", "[" VEC ", {\"name\": \"p\", \"type\": \"double\", \"primary\": true}]");
    REFUSE (QV_EINVAL, "'p'", "[{\"name\": \"p\", \"type\": \"float_vector\", \"dim\": 2, \"primary\": true}]");
    REFUSE (QV_EINVAL, "'p'", "[" VEC ", {\"name\": \"p\", \"type\": \"int64\", \"primary\": true, \"nullable\": true}]");
    REFUSE (QV_EPROTO, "'p'", "[" VEC ", {\"name\": \"p\", \"type\": \"int64\", \"primary\": 1}]");
    //  auto_id: int64 primary only
    REFUSE (QV_EINVAL, "auto_id", "[" VEC ", {\"name\": \"p\", \"type\": \"varchar\", \"primary\": true, \"auto_id\": true}]");
    REFUSE (QV_EINVAL, "auto_id", "[" PK ", " VEC ", {\"name\": \"n\", \"type\": \"int64\", \"auto_id\": true}]");
    //  Vector rules
    REFUSE (QV_EINVAL, "float_vector", "[" PK "]");
    REFUSE (QV_EINVAL, "dim", "[" PK ", {\"name\": \"v\", \"type\": \"float_vector\"}]");
    REFUSE (QV_EINVAL, "dim", "[" PK ", {\"name\": \"v\", \"type\": \"float_vector\", \"dim\": 0}]");
    REFUSE (QV_EINVAL, "dim", "[" PK ", {\"name\": \"v\", \"type\": \"float_vector\", \"dim\": 32769}]");
    REFUSE (QV_EINVAL, "dim", "[" PK ", {\"name\": \"v\", \"type\": \"float_vector\", \"dim\": 4294967297}]");
    REFUSE (QV_EPROTO, "dim", "[" PK ", {\"name\": \"v\", \"type\": \"float_vector\", \"dim\": -4}]");
    REFUSE (QV_EPROTO, "dim", "[" PK ", {\"name\": \"v\", \"type\": \"float_vector\", \"dim\": \"4\"}]");
    REFUSE (QV_EPROTO, "dim", "[" PK ", {\"name\": \"v\", \"type\": \"float_vector\", \"dim\": 4.0}]");
    REFUSE (QV_EINVAL, "'x'", "[" PK ", " VEC ", {\"name\": \"x\", \"type\": \"int8\", \"dim\": 4}]");
    REFUSE (QV_EINVAL, "'x'", "[" PK ", " VEC ", {\"name\": \"x\", \"type\": \"int8\", \"metric\": \"L2\"}]");
    //  Metrics
    REFUSE (QV_EINVAL, "metric", "[" PK ", {\"name\": \"v\", \"type\": \"float_vector\", \"dim\": 4, \"metric\": \"L1\"}]");
    REFUSE (QV_EINVAL, "metric", "[" PK ", {\"name\": \"v\", \"type\": \"float_vector\", \"dim\": 4, \"metric\": \"\"}]");
    REFUSE (QV_EPROTO, "metric", "[" PK ", {\"name\": \"v\", \"type\": \"float_vector\", \"dim\": 4, \"metric\": 2}]");
    //  A metric name longer than any known one; first leave "IP" in the same stack
    //  slot with a valid parse, so a read of the unfilled buffer would find a metric
    qv_schema_t *ok = s_parse_ok ("[" PK ", {\"name\": \"v\", \"type\": \"float_vector\", \"dim\": 4, \"metric\": \"IP\"}]");
    qv_schema_destroy (&ok);
    REFUSE (QV_EINVAL, "metric", "[" PK ", {\"name\": \"v\", \"type\": \"float_vector\", \"dim\": 4, \"metric\": \"IPxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\"}]");
    REFUSE (QV_EINVAL, "metric", "[" PK ", {\"name\": \"v\", \"type\": \"float_vector\", \"dim\": 4, \"metric\": \"COSINE_SIMILARITY\"}]");
    //  Types
    REFUSE (QV_EINVAL, "'t'", "[" PK ", " VEC ", {\"name\": \"t\", \"type\": \"string\"}]");
    REFUSE (QV_EINVAL, "'t'", "[" PK ", " VEC ", {\"name\": \"t\", \"type\": \"INT64\"}]");
    REFUSE (QV_EINVAL, "'t'", "[" PK ", " VEC ", {\"name\": \"t\", \"type\": \"binary_vector\"}]");
    REFUSE (QV_EINVAL, "'t'", "[" PK ", " VEC ", {\"name\": \"t\"}]");
    REFUSE (QV_EPROTO, "'t'", "[" PK ", " VEC ", {\"name\": \"t\", \"type\": 5}]");
    //  varchar max_length
    REFUSE (QV_EINVAL, "max_length", "[" PK ", " VEC ", {\"name\": \"s\", \"type\": \"varchar\", \"max_length\": 0}]");
    REFUSE (QV_EINVAL, "max_length", "[" PK ", " VEC ", {\"name\": \"s\", \"type\": \"varchar\", \"max_length\": 1048577}]");
    REFUSE (QV_EPROTO, "max_length", "[" PK ", " VEC ", {\"name\": \"s\", \"type\": \"varchar\", \"max_length\": -1}]");
    //  Names
    REFUSE (QV_EINVAL, "twice", "[" PK ", " VEC ", {\"name\": \"v\", \"type\": \"bool\"}]");
    REFUSE (QV_EINVAL, "twice", "[" PK ", " VEC ", {\"name\": \"id\", \"type\": \"bool\"}]");
    const char *bad [] = { "", "1a", "a-b", "a.b", "a b", "é", "a\\n" };
    for (size_t i = 0; i < sizeof bad / sizeof bad [0]; i++) {
        char json [512];
        snprintf (json, sizeof json, "[" PK ", " VEC ", {\"name\": \"%s\", \"type\": \"bool\"}]", bad [i]);
        REFUSE (QV_EINVAL, "name", json);
    }
    char json [1024], name [300];
    memset (name, 'n', 256);
    name [256] = 0;
    snprintf (json, sizeof json, "[" PK ", " VEC ", {\"name\": \"%s\", \"type\": \"bool\"}]", name);
    REFUSE (QV_EINVAL, "name", json);
    name [255] = 0;
    snprintf (json, sizeof json, "[" PK ", " VEC ", {\"name\": \"%s\", \"type\": \"bool\"}]", name);
    qv_schema_t *s = s_parse_ok (json);
    assert_int_equal (strlen (s->fields [2].name), 255);
    qv_schema_destroy (&s);
    REFUSE (QV_EINVAL, "name", "[" PK ", " VEC ", {\"type\": \"bool\"}]");
    REFUSE (QV_EPROTO, "name", "[" PK ", " VEC ", {\"name\": 5, \"type\": \"bool\"}]");
    //  Entries and options
    REFUSE (QV_EPROTO, "map", "[" PK ", " VEC ", \"x\"]");
    REFUSE (QV_EINVAL, "colour", "[" PK ", " VEC ", {\"name\": \"x\", \"type\": \"bool\", \"colour\": 1}]");
    REFUSE (QV_EPROTO, "nullable", "[" PK ", " VEC ", {\"name\": \"x\", \"type\": \"bool\", \"nullable\": \"yes\"}]");
}

//  The hidden `$meta` field: added once, last, kept through write/parse (the WAL,
//  segments and catalog), left out of the user's view, never declared by hand.
static void
test_dynamic_field (void **state)
{
    (void) state;
    qv_schema_t *a = s_parse_ok ("[" PK ", " VEC "]");
    assert_int_equal (qv_schema_meta (a), -1);
    assert_int_equal (qv_schema_add_meta (a), 0);
    assert_int_equal (qv_schema_add_meta (a), 0);      //  once
    assert_int_equal (a->nfields, 3);
    assert_int_equal (qv_schema_meta (a), 2);
    assert_string_equal (a->fields [2].name, QV_META_FIELD);
    assert_int_equal (a->fields [2].type, QV_JSON);
    qv_wr_t *w = qv_wr_new ();
    qv_schema_write (a, w);
    size_t size;
    const void *data = qv_wr_data (w, &size);
    int rc;
    qv_doc_t *doc = qv_doc_parse (data, size, SIZE_MAX, &rc);
    qv_schema_t *b = qv_schema_parse (qv_doc_root (doc), &rc);
    assert_non_null (b);
    assert_int_equal (qv_schema_meta (b), 2);
    s_assert_same (a, b);
    qv_doc_destroy (&doc);
    qv_wr_reset (w);
    qv_schema_write_user (b, w);
    data = qv_wr_data (w, &size);
    doc = qv_doc_parse (data, size, SIZE_MAX, &rc);
    assert_int_equal (qv_val_len (qv_doc_root (doc)), 2);
    qv_doc_destroy (&doc);
    qv_schema_destroy (&a);
    qv_schema_destroy (&b);
    qv_wr_destroy (&w);
    REFUSE (QV_EINVAL, "reserved", "[" PK ", " VEC ", {\"name\": \"$meta\", \"type\": \"json\"}]");
    REFUSE (QV_EINVAL, "reserved", "[" PK ", " VEC ", {\"name\": \"$meta\", \"type\": \"int64\", \"dynamic\": true}]");
    REFUSE (QV_EINVAL, "hidden", "[" PK ", " VEC ", {\"name\": \"j\", \"type\": \"json\", \"dynamic\": true}]");
    REFUSE (QV_EINVAL, "last", "[" PK ", {\"name\": \"$meta\", \"type\": \"json\", \"dynamic\": true}, " VEC "]");
    //  At most QV_FIELDS_MAX fields in all
    qv_schema_t *full = s_parse_ok ("[" PK ", " VEC "]");
    full->nfields = QV_FIELDS_MAX;
    for (int i = 2; i < QV_FIELDS_MAX; i++) {
        full->fields [i] = full->fields [0];
        full->fields [i].primary = false;
    }
    assert_int_equal (qv_schema_add_meta (full), QV_EINVAL);
    assert_non_null (strstr (qv_err_msg (), "at most 63 fields"));
    qv_schema_destroy (&full);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_parse_values),
        cmocka_unit_test (test_round_trip),
        cmocka_unit_test (test_refusals),
        cmocka_unit_test (test_dynamic_field),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
