//  Columnar batches: built from rows and from columns (vectors as lists and as bin),
//  type and range checks of every scalar type, max_length, nulls and defaults,
//  missing/unknown/auto_id fields, non-finite vectors, the WAL encoding round trip,
//  and corrupted encodings refused as QV_ECORRUPT.
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qv_batch.h"
#include "qv_test_json.h"

static const char *s_schema_json =
    "[{\"name\": \"id\", \"type\": \"int64\", \"primary\": true},"
    " {\"name\": \"v\", \"type\": \"float_vector\", \"dim\": 3},"
    " {\"name\": \"b\", \"type\": \"bool\", \"nullable\": true},"
    " {\"name\": \"i8\", \"type\": \"int8\"},"
    " {\"name\": \"i16\", \"type\": \"int16\"},"
    " {\"name\": \"i32\", \"type\": \"int32\"},"
    " {\"name\": \"f\", \"type\": \"float\"},"
    " {\"name\": \"d\", \"type\": \"double\", \"default\": 2.5},"
    " {\"name\": \"s\", \"type\": \"varchar\", \"max_length\": 8, \"default\": \"dflt\"},"
    " {\"name\": \"j\", \"type\": \"json\", \"nullable\": true}]";

enum { F_ID, F_V, F_B, F_I8, F_I16, F_I32, F_F, F_D, F_S, F_J };

typedef struct {
    qv_schema_t *schema;
    qv_schema_t *auto_schema;       //  int64 auto_id key, varchar field
} fixture_t;

static int
s_setup (void **state)
{
    fixture_t *f = calloc (1, sizeof *f);
    f->schema = qv_test_schema (s_schema_json);
    f->auto_schema = qv_test_schema (
        "[{\"name\": \"pk\", \"type\": \"int64\", \"primary\": true, \"auto_id\": true},"
        " {\"name\": \"v\", \"type\": \"float_vector\", \"dim\": 2},"
        " {\"name\": \"t\", \"type\": \"varchar\", \"nullable\": true}]");
    *state = f;
    return 0;
}

static int
s_teardown (void **state)
{
    fixture_t *f = *state;
    qv_schema_destroy (&f->schema);
    qv_schema_destroy (&f->auto_schema);
    free (f);
    return 0;
}

//  Builds a batch from a request map holding "rows" or "columns" (or both/neither).
static int
s_from (const qv_schema_t *schema, const char *json, uint32_t max_rows, qv_batch_t **out)
{
    qv_doc_t *doc = qv_test_doc (json);
    const qv_val_t *root = qv_doc_root (doc);
    qv_err_clear ();
    int rc = qv_batch_from_request (schema, qv_val_get (root, "rows"),
                                    qv_val_get (root, "columns"), max_rows, out);
    qv_doc_destroy (&doc);
    if (rc)
        assert_null (*out);
    else
        assert_non_null (*out);
    return rc;
}

static qv_batch_t *
s_from_ok (const qv_schema_t *schema, const char *json)
{
    qv_batch_t *b = NULL;
    int rc = s_from (schema, json, 1000, &b);
    if (rc)
        print_error ("%s: %s\n", qv_rc_name (rc), qv_err_msg ());
    assert_int_equal (rc, 0);
    return b;
}

static void
s_refuse (const qv_schema_t *schema, const char *json, int want, const char *part, int line)
{
    qv_batch_t *b = NULL;
    int rc = s_from (schema, json, 1000, &b);
    if (rc != want)
        print_error ("line %d: got %s (%s), expected %s\n", line, qv_rc_name (rc),
                     qv_err_msg (), qv_rc_name (want));
    assert_int_equal (rc, want);
    if (part && !strstr (qv_err_msg (), part)) {
        print_error ("line %d: message '%s' does not mention '%s'\n", line, qv_err_msg (), part);
        fail ();
    }
    qv_batch_destroy (&b);
}
#define REFUSE(schema, want, part, json) s_refuse ((schema), (json), (want), (part), __LINE__)

//  The msgpack of value (field fi, row) as qv_col_write_value gives it.
static void
s_cell_is (const qv_batch_t *b, int fi, uint32_t row, const char *json)
{
    qv_wr_t *w = qv_wr_new ();
    qv_col_write_value (&b->schema->fields [fi], &b->cols [fi], row, w);
    size_t got_size, want_size;
    const void *got = qv_wr_data (w, &got_size);
    void *want = qv_test_mp (json, &want_size);
    if (got_size != want_size || memcmp (got, want, got_size)) {
        print_error ("field %s row %u is not %s\n", b->schema->fields [fi].name, row, json);
        fail ();
    }
    free (want);
    qv_wr_destroy (&w);
}

//  Encodes a batch (qv_batch_write) into a malloc'd buffer.
static void *
s_encode (const qv_batch_t *b, size_t *size)
{
    qv_wr_t *w = qv_wr_new ();
    qv_batch_write (b, w);
    void *data = qv_wr_detach (w, size);
    qv_wr_destroy (&w);
    return data;
}

static void
s_assert_same_batch (const qv_batch_t *a, const qv_batch_t *b)
{
    size_t sa, sb;
    void *ea = s_encode (a, &sa), *eb = s_encode (b, &sb);
    assert_int_equal (sa, sb);
    assert_memory_equal (ea, eb, sa);
    free (ea);
    free (eb);
}

static const char *s_rows =
    "{\"rows\": ["
    " {\"id\": 1, \"v\": [1, 2.5, -3], \"b\": true, \"i8\": -128, \"i16\": 32767, \"i32\": -2147483648,"
    "  \"f\": 0.25, \"d\": -1e300, \"s\": \"abcdefgh\", \"j\": {\"k\": [1, \"x\"]}},"
    " {\"id\": -9223372036854775808, \"v\": f32[0.5, 0, 1e30], \"b\": null, \"i8\": 127, \"i16\": -32768,"
    "  \"i32\": 2147483647, \"f\": 3, \"d\": 7, \"s\": \"\", \"j\": null},"
    " {\"id\": 9223372036854775807, \"v\": [0, 0, 0], \"i8\": 0, \"i16\": 0, \"i32\": 0, \"f\": -0.5}"
    "]}";

//  s_rows with row 2's json given as null (columns cannot leave out one row's value)
static const char *s_rows_json_null =
    "{\"rows\": ["
    " {\"id\": 1, \"v\": [1, 2.5, -3], \"b\": true, \"i8\": -128, \"i16\": 32767, \"i32\": -2147483648,"
    "  \"f\": 0.25, \"d\": -1e300, \"s\": \"abcdefgh\", \"j\": {\"k\": [1, \"x\"]}},"
    " {\"id\": -9223372036854775808, \"v\": f32[0.5, 0, 1e30], \"b\": null, \"i8\": 127, \"i16\": -32768,"
    "  \"i32\": 2147483647, \"f\": 3, \"d\": 7, \"s\": \"\", \"j\": null},"
    " {\"id\": 9223372036854775807, \"v\": [0, 0, 0], \"i8\": 0, \"i16\": 0, \"i32\": 0, \"f\": -0.5, \"j\": null}"
    "]}";

static const char *s_columns =
    "{\"columns\": {"
    " \"s\": [\"abcdefgh\", \"\", \"dflt\"],"
    " \"v\": f32[1, 2.5, -3, 0.5, 0, 1e30, 0, 0, 0],"
    " \"id\": [1, -9223372036854775808, 9223372036854775807],"
    " \"b\": [true, null, null], \"i8\": [-128, 127, 0], \"i16\": [32767, -32768, 0],"
    " \"i32\": [-2147483648, 2147483647, 0], \"f\": [0.25, 3, -0.5], \"d\": [-1e300, 7, 2.5],"
    " \"j\": [{\"k\": [1, \"x\"]}, null, null]"
    "}}";

static void
test_from_rows (void **state)
{
    fixture_t *f = *state;
    qv_batch_t *b = s_from_ok (f->schema, s_rows);
    assert_int_equal (b->n, 3);
    assert_ptr_equal (b->schema, f->schema);
    s_cell_is (b, F_ID, 0, "1");
    s_cell_is (b, F_ID, 1, "-9223372036854775808");
    assert_true (qv_col_i64 (&b->cols [F_ID], 2) == INT64_MAX);
    const float *v = qv_col_vec (&f->schema->fields [F_V], &b->cols [F_V], 0);
    assert_true (v [0] == 1 && v [1] == 2.5f && v [2] == -3);
    v = qv_col_vec (&f->schema->fields [F_V], &b->cols [F_V], 1);
    assert_true (v [0] == 0.5f && v [1] == 0 && v [2] == 1e30f);
    s_cell_is (b, F_B, 0, "true");
    s_cell_is (b, F_B, 1, "null");          //  explicit null
    s_cell_is (b, F_B, 2, "null");          //  missing nullable field
    s_cell_is (b, F_I8, 0, "-128");
    s_cell_is (b, F_I8, 1, "127");
    s_cell_is (b, F_I16, 1, "-32768");
    s_cell_is (b, F_I32, 0, "-2147483648");
    assert_true (((float *) b->cols [F_F].data) [0] == 0.25f);
    assert_true (((float *) b->cols [F_F].data) [1] == 3.0f);        //  int to float
    assert_true (((double *) b->cols [F_D].data) [0] == -1e300);
    assert_true (((double *) b->cols [F_D].data) [2] == 2.5);         //  default
    s_cell_is (b, F_S, 0, "\"abcdefgh\"");
    s_cell_is (b, F_S, 1, "\"\"");
    s_cell_is (b, F_S, 2, "\"dflt\"");                                //  default
    s_cell_is (b, F_J, 0, "{\"k\": [1, \"x\"]}");
    s_cell_is (b, F_J, 1, "null");          //  a json null is a value
    s_cell_is (b, F_J, 2, "null");          //  missing nullable json
    assert_non_null (b->cols [F_J].valid);
    assert_int_equal (b->cols [F_J].valid [1], 1);
    assert_int_equal (b->cols [F_J].valid [2], 0);
    assert_null (b->cols [F_I8].valid);      //  no nulls, no validity column
    assert_true (qv_batch_bytes (b) > 3 * (8 + 12 + 1 + 1 + 2 + 4 + 4 + 8));
    qv_batch_destroy (&b);
    assert_null (b);
    qv_batch_destroy (&b);
}

static void
test_from_columns (void **state)
{
    fixture_t *f = *state;
    qv_batch_t *rows = s_from_ok (f->schema, s_rows_json_null);
    qv_batch_t *cols = s_from_ok (f->schema, s_columns);
    s_assert_same_batch (rows, cols);
    qv_batch_destroy (&cols);
    //  Vector column as a list of lists; missing columns take defaults / null
    cols = s_from_ok (f->schema,
        "{\"columns\": {\"id\": [1, 2], \"v\": [[1, 2, 3], f32[4, 5, 6]],"
        " \"i8\": [1, 2], \"i16\": [1, 2], \"i32\": [1, 2], \"f\": [1, 2]}}");
    assert_int_equal (cols->n, 2);
    const float *v = qv_col_vec (&f->schema->fields [F_V], &cols->cols [F_V], 1);
    assert_true (v [0] == 4 && v [1] == 5 && v [2] == 6);
    s_cell_is (cols, F_S, 1, "\"dflt\"");
    s_cell_is (cols, F_B, 0, "null");
    s_cell_is (cols, F_D, 1, "2.5");
    qv_batch_destroy (&cols);
    //  The row count may come from the vector bin alone
    cols = s_from_ok (f->auto_schema, "{\"columns\": {\"v\": f32[1, 2, 3, 4]}}");
    assert_int_equal (cols->n, 2);
    s_cell_is (cols, 0, 1, "0");            //  auto_id left 0 for the caller
    s_cell_is (cols, 2, 1, "null");
    qv_batch_destroy (&cols);
    qv_batch_destroy (&rows);
}

static void
test_type_and_range_checks (void **state)
{
    fixture_t *f = *state;
    const qv_schema_t *s = f->schema;
    //  ROW (i8, i16, i32, f, extra): one row with those values and the others valid
    #define ROW(i8, i16, i32, f, extra) "{\"rows\": [{\"id\": 1, \"v\": [1, 2, 3], \"i8\": " i8 \
        ", \"i16\": " i16 ", \"i32\": " i32 ", \"f\": " f extra "}]}"
    qv_batch_t *b = s_from_ok (s, ROW ("0", "0", "0", "0", ""));
    qv_batch_destroy (&b);
    //  Integer ranges
    REFUSE (s, QV_EINVAL, "i8", ROW ("128", "0", "0", "0", ""));
    REFUSE (s, QV_EINVAL, "i8", ROW ("-129", "0", "0", "0", ""));
    REFUSE (s, QV_EINVAL, "i16", ROW ("0", "32768", "0", "0", ""));
    REFUSE (s, QV_EINVAL, "i16", ROW ("0", "-32769", "0", "0", ""));
    REFUSE (s, QV_EINVAL, "i32", ROW ("0", "0", "2147483648", "0", ""));
    REFUSE (s, QV_EINVAL, "i32", ROW ("0", "0", "-2147483649", "0", ""));
    REFUSE (s, QV_EINVAL, "i8", ROW ("18446744073709551615", "0", "0", "0", ""));
    REFUSE (s, QV_EINVAL, "id", "{\"rows\": [{\"id\": 9223372036854775808, \"v\": [1, 2, 3], \"i8\": 0, \"i16\": 0, \"i32\": 0, \"f\": 0}]}");
    b = s_from_ok (s, ROW ("127", "-32768", "2147483647", "3.4e38", ""));
    qv_batch_destroy (&b);
    //  A double outside float's range cannot be stored in a float field
    REFUSE (s, QV_EINVAL, "'f'", ROW ("0", "0", "0", "1e300", ""));
    REFUSE (s, QV_EINVAL, "'f'", ROW ("0", "0", "0", "-3.5e38", ""));
    //  Wrong msgpack types: MALFORMED, naming the field
    REFUSE (s, QV_EPROTO, "i8", ROW ("1.0", "0", "0", "0", ""));
    REFUSE (s, QV_EPROTO, "i8", ROW ("\"1\"", "0", "0", "0", ""));
    REFUSE (s, QV_EPROTO, "i8", ROW ("true", "0", "0", "0", ""));
    REFUSE (s, QV_EPROTO, "'b'", ROW ("0", "0", "0", "0", ", \"b\": 1"));
    REFUSE (s, QV_EPROTO, "'f'", ROW ("0", "0", "0", "\"0.5\"", ""));
    REFUSE (s, QV_EPROTO, "'d'", ROW ("0", "0", "0", "0", ", \"d\": [1]"));
    //  A row refused after its string was stored: the string lies past the rows the
    //  batch holds, and is still freed (LeakSanitizer checks it)
    REFUSE (s, QV_EPROTO, "'d'", ROW ("0", "0", "0", "0", ", \"s\": \"abc\", \"d\": [1]"));
    REFUSE (s, QV_EPROTO, "'d'", "{\"rows\": [{\"id\": 1, \"v\": [1, 2, 3], \"i8\": 0, \"i16\": 0, "
            "\"i32\": 0, \"f\": 0, \"s\": \"a\"}, {\"id\": 2, \"v\": [1, 2, 3], \"i8\": 0, \"i16\": 0, "
            "\"i32\": 0, \"f\": 0, \"s\": \"b\", \"d\": [1]}]}");
    REFUSE (s, QV_EPROTO, "'s'", ROW ("0", "0", "0", "0", ", \"s\": 5"));
    REFUSE (s, QV_EPROTO, "'s'", ROW ("0", "0", "0", "0", ", \"s\": f32[1]"));
    //  max_length counts bytes
    REFUSE (s, QV_EINVAL, "max_length", ROW ("0", "0", "0", "0", ", \"s\": \"abcdefghi\""));
    REFUSE (s, QV_EINVAL, "max_length", ROW ("0", "0", "0", "0", ", \"s\": \"éééé_\""));
    b = s_from_ok (s, ROW ("0", "0", "0", "0", ", \"s\": \"éééé\""));
    qv_batch_destroy (&b);
    //  Nulls: only on nullable fields
    REFUSE (s, QV_EINVAL, "i8", ROW ("null", "0", "0", "0", ""));
    REFUSE (s, QV_EINVAL, "'v'", "{\"rows\": [{\"id\": 1, \"v\": null, \"i8\": 0, \"i16\": 0, \"i32\": 0, \"f\": 0}]}");
    REFUSE (s, QV_EINVAL, "'id'", "{\"rows\": [{\"id\": null, \"v\": [1, 2, 3], \"i8\": 0, \"i16\": 0, \"i32\": 0, \"f\": 0}]}");
    #undef ROW
}

static void
test_field_checks (void **state)
{
    fixture_t *f = *state;
    const qv_schema_t *s = f->schema;
    //  Missing fields without default or null, unknown and repeated fields
    REFUSE (s, QV_EINVAL, "'v'", "{\"rows\": [{\"id\": 1, \"i8\": 0, \"i16\": 0, \"i32\": 0, \"f\": 0}]}");
    REFUSE (s, QV_EINVAL, "'i16'", "{\"rows\": [{\"id\": 1, \"v\": [1, 2, 3], \"i8\": 0, \"i32\": 0, \"f\": 0}]}");
    REFUSE (s, QV_EINVAL, "'id'", "{\"rows\": [{\"v\": [1, 2, 3], \"i8\": 0, \"i16\": 0, \"i32\": 0, \"f\": 0}]}");
    REFUSE (s, QV_EINVAL, "zz", "{\"rows\": [{\"id\": 1, \"v\": [1, 2, 3], \"i8\": 0, \"i16\": 0, \"i32\": 0, \"f\": 0, \"zz\": 1}]}");
    REFUSE (s, QV_EINVAL, "twice", "{\"rows\": [{\"id\": 1, \"v\": [1, 2, 3], \"i8\": 0, \"i16\": 0, \"i32\": 0, \"f\": 0, \"id\": 2}]}");
    REFUSE (s, QV_EPROTO, NULL, "{\"rows\": [{\"id\": 1, \"v\": [1, 2, 3], \"i8\": 0, \"i16\": 0, \"i32\": 0, \"f\": 0, 7: 1}]}");
    REFUSE (s, QV_EINVAL, "'i16'", "{\"columns\": {\"id\": [1], \"v\": [[1, 2, 3]], \"i8\": [0], \"i32\": [0], \"f\": [0]}}");
    REFUSE (s, QV_EINVAL, "zz", "{\"columns\": {\"id\": [1], \"zz\": [1]}}");
    //  A long unknown name is refused, not copied into a fixed buffer
    char json [1200], name [600];
    memset (name, 'x', 599);
    name [599] = 0;
    snprintf (json, sizeof json, "{\"rows\": [{\"%s\": 1}]}", name);
    REFUSE (s, QV_EINVAL, "unknown field", json);
    snprintf (json, sizeof json, "{\"columns\": {\"%s\": [1]}}", name);
    REFUSE (s, QV_EINVAL, "unknown field", json);
    //  auto_id keys are the server's
    REFUSE (f->auto_schema, QV_EINVAL, "auto_id", "{\"rows\": [{\"pk\": 5, \"v\": [1, 2]}]}");
    REFUSE (f->auto_schema, QV_EINVAL, "auto_id", "{\"columns\": {\"v\": [[1, 2]], \"pk\": [5]}}");
    qv_batch_t *b = s_from_ok (f->auto_schema, "{\"rows\": [{\"v\": [1, 2]}, {\"v\": f32[3, 4], \"t\": \"x\"}]}");
    s_cell_is (b, 0, 0, "0");
    s_cell_is (b, 2, 0, "null");
    s_cell_is (b, 2, 1, "\"x\"");
    qv_batch_destroy (&b);
    //  Shape of the request
    REFUSE (s, QV_EINVAL, NULL, "{}");
    REFUSE (s, QV_EINVAL, NULL, "{\"rows\": [], \"columns\": {}}");
    REFUSE (s, QV_EINVAL, "no rows", "{\"rows\": []}");
    REFUSE (s, QV_EINVAL, "no rows", "{\"columns\": {}}");
    REFUSE (s, QV_EPROTO, NULL, "{\"rows\": {}}");
    REFUSE (s, QV_EPROTO, NULL, "{\"rows\": [[1]]}");
    REFUSE (s, QV_EPROTO, NULL, "{\"columns\": []}");
    REFUSE (s, QV_EPROTO, "'i8'", "{\"columns\": {\"id\": [1], \"i8\": 5}}");
    REFUSE (s, QV_EINVAL, "'i8'", "{\"columns\": {\"id\": [1, 2], \"i8\": [5]}}");
    REFUSE (f->auto_schema, QV_EINVAL, "'v'", "{\"columns\": {\"t\": [\"a\"], \"v\": f32[1, 2, 3, 4]}}");
    REFUSE (f->auto_schema, QV_EINVAL, "'v'", "{\"columns\": {\"v\": f32[1, 2, 3]}}");
    //  Row limit
    qv_batch_t *out = NULL;
    assert_int_equal (s_from (f->auto_schema, "{\"rows\": [{\"v\": [1, 2]}, {\"v\": [1, 2]}, {\"v\": [1, 2]}]}", 2, &out),
                      QV_ELIMIT);
    assert_int_equal (s_from (f->auto_schema, "{\"columns\": {\"v\": [[1, 2], [1, 2], [1, 2]]}}", 2, &out),
                      QV_ELIMIT);
    assert_int_equal (s_from (f->auto_schema, "{\"columns\": {\"v\": f32[1, 2, 1, 2, 1, 2]}}", 2, &out),
                      QV_ELIMIT);
    assert_int_equal (s_from (f->auto_schema, "{\"columns\": {\"v\": f32[1, 2, 1, 2]}}", 2, &out), 0);
    qv_batch_destroy (&out);
}

static void
test_vector_checks (void **state)
{
    fixture_t *f = *state;
    const qv_schema_t *s = f->auto_schema;
    const char *bad [] = {
        "{\"rows\": [{\"v\": [1, nan]}]}",
        "{\"rows\": [{\"v\": [inf, 1]}]}",
        "{\"rows\": [{\"v\": [1, -inf]}]}",
        "{\"rows\": [{\"v\": [1, 1e300]}]}",            //  finite double, inf as float
        "{\"rows\": [{\"v\": f32[nan, 1]}]}",
        "{\"rows\": [{\"v\": f32[1, inf]}]}",
        "{\"columns\": {\"v\": [[1, 2], [nan, 2]]}}",
        "{\"columns\": {\"v\": f32[1, 2, 3, -inf]}}",
        "{\"columns\": {\"v\": f32[nan, 2]}}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad [0]; i++)
        REFUSE (s, QV_EINVAL, "finite", bad [i]);
    //  Dimension and shape
    REFUSE (s, QV_EINVAL, "dim", "{\"rows\": [{\"v\": [1, 2, 3]}]}");
    REFUSE (s, QV_EINVAL, "dim", "{\"rows\": [{\"v\": [1]}]}");
    REFUSE (s, QV_EINVAL, "dim", "{\"rows\": [{\"v\": []}]}");
    REFUSE (s, QV_EINVAL, "dim", "{\"rows\": [{\"v\": f32[1, 2, 3]}]}");
    REFUSE (s, QV_EINVAL, "dim", "{\"columns\": {\"v\": [[1, 2], [1]]}}");
    REFUSE (s, QV_EPROTO, "'v'", "{\"rows\": [{\"v\": [1, \"2\"]}]}");
    REFUSE (s, QV_EPROTO, "'v'", "{\"rows\": [{\"v\": \"1,2\"}]}");
    REFUSE (s, QV_EPROTO, "'v'", "{\"rows\": [{\"v\": {\"a\": 1}}]}");
    REFUSE (s, QV_EPROTO, "'v'", "{\"columns\": {\"v\": [\"x\"]}}");
    //  Extremes that are finite pass
    qv_batch_t *b = s_from_ok (s, "{\"rows\": [{\"v\": [3.4e38, -3.4e38]}, {\"v\": [1e-45, -0.0]}]}");
    qv_batch_destroy (&b);
}

//  Encodes b, decodes it with schema, and returns the decoded batch.
static qv_batch_t *
s_reread (const qv_schema_t *schema, const qv_batch_t *b)
{
    size_t size;
    void *data = s_encode (b, &size);
    int rc;
    qv_doc_t *doc = qv_doc_parse (data, size, SIZE_MAX, &rc);
    assert_non_null (doc);
    qv_batch_t *out = NULL;
    rc = qv_batch_read (schema, qv_doc_root (doc), &out);
    assert_int_equal (rc, 0);
    assert_non_null (out);
    qv_doc_destroy (&doc);
    free (data);
    return out;
}

static void
test_write_read_round_trip (void **state)
{
    fixture_t *f = *state;
    qv_batch_t *b = s_from_ok (f->schema, s_rows);
    qv_batch_t *c = s_reread (f->schema, b);
    assert_int_equal (c->n, 3);
    s_assert_same_batch (b, c);
    for (int fi = 0; fi < f->schema->nfields; fi++)
        for (uint32_t r = 0; r < 3; r++) {
            qv_wr_t *w1 = qv_wr_new (), *w2 = qv_wr_new ();
            qv_col_write_value (&f->schema->fields [fi], &b->cols [fi], r, w1);
            qv_col_write_value (&f->schema->fields [fi], &c->cols [fi], r, w2);
            size_t s1, s2;
            const void *d1 = qv_wr_data (w1, &s1), *d2 = qv_wr_data (w2, &s2);
            assert_int_equal (s1, s2);
            assert_memory_equal (d1, d2, s1);
            qv_wr_destroy (&w1);
            qv_wr_destroy (&w2);
        }
    //  Copying rows, by copy and by move, keeps values and nulls
    qv_batch_t *d = qv_batch_new (f->schema, 3);
    assert_non_null (d);
    qv_batch_copy_row (d, 0, c, 2, false);
    qv_batch_copy_row (d, 1, c, 1, false);
    qv_batch_copy_row (d, 2, c, 0, true);
    d->n = 3;
    s_cell_is (d, F_S, 0, "\"dflt\"");
    s_cell_is (d, F_B, 1, "null");
    s_cell_is (d, F_B, 2, "true");
    s_cell_is (d, F_J, 2, "{\"k\": [1, \"x\"]}");
    s_cell_is (d, F_ID, 1, "-9223372036854775808");
    assert_null (c->cols [F_S].var [0].ptr);            //  moved out
    //  An empty batch round-trips too
    qv_batch_t *e = qv_batch_new (f->schema, 0);
    qv_batch_t *e2 = s_reread (f->schema, e);
    assert_int_equal (e2->n, 0);
    qv_batch_destroy (&e);
    qv_batch_destroy (&e2);
    qv_batch_destroy (&d);
    qv_batch_destroy (&c);
    qv_batch_destroy (&b);
}

static int
s_read_json (const qv_schema_t *schema, const char *json)
{
    qv_doc_t *doc = qv_test_doc (json);
    qv_batch_t *out = NULL;
    int rc = qv_batch_read (schema, qv_doc_root (doc), &out);
    if (rc)
        assert_null (out);
    qv_batch_destroy (&out);
    qv_doc_destroy (&doc);
    return rc;
}

static void
test_read_corrupt (void **state)
{
    fixture_t *f = *state;
    const qv_schema_t *s = f->auto_schema;      //  int64, vector dim 2, varchar
    //  A valid one first, so the refusals below are about what they change
    assert_int_equal (s_read_json (s, "{\"n\": 1, \"cols\": [f32[0, 0], f32[1, 2], [f32[]]], \"valid\": [null, null, null]}"), 0);
    const char *bad [] = {
        "{\"n\": 2, \"cols\": [f32[0, 0], f32[1, 2], [f32[]]], \"valid\": [null, null, null]}",
        "{\"n\": 1, \"cols\": [f32[0], f32[1, 2], [f32[]]], \"valid\": [null, null, null]}",
        "{\"n\": 1, \"cols\": [f32[0, 0], f32[1, 2, 3], [f32[]]], \"valid\": [null, null, null]}",
        "{\"n\": 1, \"cols\": [f32[0, 0], f32[1, 2], []], \"valid\": [null, null, null]}",
        "{\"n\": 1, \"cols\": [f32[0, 0], f32[1, 2], [\"str\"]], \"valid\": [null, null, null]}",
        "{\"n\": 1, \"cols\": [f32[0, 0], f32[1, 2], f32[]], \"valid\": [null, null, null]}",
        "{\"n\": 1, \"cols\": [[1], f32[1, 2], [f32[]]], \"valid\": [null, null, null]}",
        "{\"n\": 1, \"cols\": [f32[0, 0], f32[1, 2]], \"valid\": [null, null, null]}",
        "{\"n\": 1, \"cols\": [f32[0, 0], f32[1, 2], [f32[]]], \"valid\": [null, null]}",
        "{\"n\": 1, \"cols\": [f32[0, 0], f32[1, 2], [f32[]]], \"valid\": [null, null, f32[]]}",
        "{\"n\": 1, \"cols\": [f32[0, 0], f32[1, 2], [f32[]]], \"valid\": [null, null, 1]}",
        "{\"n\": 1, \"cols\": [f32[0, 0], f32[1, 2], [f32[]]]}",
        "{\"n\": -1, \"cols\": [f32[0, 0], f32[1, 2], [f32[]]], \"valid\": [null, null, null]}",
        "{\"n\": \"1\", \"cols\": [f32[0, 0], f32[1, 2], [f32[]]], \"valid\": [null, null, null]}",
        "{\"n\": 1, \"cols\": {}, \"valid\": [null, null, null]}",
        "[1, 2, 3]",
        "null",
        //  Row counts far beyond what the columns hold: refused before allocating
        "{\"n\": 4294967295, \"cols\": [f32[0, 0], f32[1, 2], [f32[]]], \"valid\": [null, null, null]}",
        "{\"n\": 4294967296, \"cols\": [f32[0, 0], f32[1, 2], [f32[]]], \"valid\": [null, null, null]}",
        "{\"n\": 100000000, \"cols\": [f32[0, 0], f32[1, 2], [f32[]]], \"valid\": [null, null, null]}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad [0]; i++) {
        int rc = s_read_json (s, bad [i]);
        if (rc != QV_ECORRUPT)
            print_error ("case %zu: got %s (%s)\n", i, qv_rc_name (rc), qv_err_msg ());
        assert_int_equal (rc, QV_ECORRUPT);
    }
}

static void
test_read_mutations (void **state)
{
    fixture_t *f = *state;
    qv_batch_t *b = s_from_ok (f->schema, s_rows);
    size_t size;
    uint8_t *orig = s_encode (b, &size);
    unsigned seed = 7;
    int decoded = 0, refused = 0;
    for (int iter = 0; iter < 20000; iter++) {
        uint8_t *buf = malloc (size);
        memcpy (buf, orig, size);
        size_t n = size;
        int edits = 1 + rand_r (&seed) % 3;
        for (int e = 0; e < edits; e++) {
            size_t at = (size_t) rand_r (&seed) % n;
            switch (rand_r (&seed) % 4) {
                case 0: buf [at] ^= (uint8_t) (1u << (rand_r (&seed) % 8)); break;
                case 1: buf [at] = (uint8_t) rand_r (&seed); break;
                case 2: buf [at] = (uint8_t) (0xc0 + rand_r (&seed) % 32); break;
                case 3: n = at + 1; break;
            }
        }
        int rc;
        qv_doc_t *doc = qv_doc_parse (buf, n, SIZE_MAX, &rc);
        if (doc) {
            qv_batch_t *out = NULL;
            rc = qv_batch_read (f->schema, qv_doc_root (doc), &out);
            if (rc != 0 && rc != QV_ECORRUPT)
                print_error ("iteration %d: %s (%s)\n", iter, qv_rc_name (rc), qv_err_msg ());
            assert_true (rc == 0 || rc == QV_ECORRUPT);
            if (rc == 0) {
                decoded++;
                //  What decodes can be used: every value can be written out
                qv_wr_t *w = qv_wr_new ();
                for (int fi = 0; fi < f->schema->nfields; fi++)
                    for (uint32_t r = 0; r < out->n; r++)
                        qv_col_write_value (&f->schema->fields [fi], &out->cols [fi], r, w);
                qv_wr_destroy (&w);
            }
            else
                refused++;
            qv_batch_destroy (&out);
            qv_doc_destroy (&doc);
        }
        free (buf);
    }
    assert_true (decoded > 100);
    assert_true (refused > 100);
    free (orig);
    qv_batch_destroy (&b);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test_setup_teardown (test_from_rows, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_from_columns, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_type_and_range_checks, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_field_checks, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_vector_checks, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_write_read_round_trip, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_read_corrupt, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_read_mutations, s_setup, s_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
