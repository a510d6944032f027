//  libFuzzer harness for filter expressions: any text parses or fails with QV_EINVAL
//  and a message giving a position (or the length limit), never crashes; a parsed
//  filter evaluates over a fixed batch with every field type, nulls and json values
//  without error, and the block evaluation, a row range with an input bitmap, and
//  single-row evaluation agree row by row.
//
//  Input: the filter text. Its bytes also seed the input bitmap.
//  Run: build-fuzz/fuzz_expr -dict=tests/fuzz/fuzz_expr.dict -max_total_time=120
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qv_expr.h"
#include "qv_rc.h"

#define ROWS 1100                   //  more than one evaluation block

static qv_schema_t s_schema;
static qv_batch_t *s_batch;

static void
s_field (const char *name, qv_type_t type, bool nullable)
{
    qv_field_t *f = &s_schema.fields [s_schema.nfields++];
    strcpy (f->name, name);
    f->type = type;
    f->nullable = nullable;
    f->max_length = 64;
    if (type == QV_FLOAT_VECTOR)
        f->dim = 2;
}

static void
s_set_var (qv_col_t *col, uint32_t row, const void *p, size_t n)
{
    col->var [row].ptr = malloc (n ? n : 1);
    memcpy (col->var [row].ptr, p, n);
    col->var [row].len = (uint32_t) n;
}

static void
s_init (void)
{
    s_field ("b", QV_BOOL, true);
    s_field ("i8", QV_INT8, false);
    s_field ("i16", QV_INT16, true);
    s_field ("i32", QV_INT32, false);
    s_field ("i64", QV_INT64, true);
    s_field ("f", QV_FLOAT, false);
    s_field ("d", QV_DOUBLE, true);
    s_field ("s", QV_VARCHAR, true);
    s_field ("meta", QV_JSON, true);
    s_field ("v", QV_FLOAT_VECTOR, false);
    s_batch = qv_batch_new (&s_schema, ROWS);
    s_batch->n = ROWS;
    static const char *strs [] = { "", "a", "ab", "tech", "é", "a%b", "x_y" };
    for (int fi = 0; fi < s_schema.nfields; fi++)
        if (s_schema.fields [fi].nullable) {
            s_batch->cols [fi].valid = malloc (ROWS);
            memset (s_batch->cols [fi].valid, 1, ROWS);
        }
    qv_wr_t *w = qv_wr_new ();
    uint64_t x = 12345;
    for (uint32_t r = 0; r < ROWS; r++) {
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        int64_t v = (int64_t) (x >> 33) % 21 - 10;
        if (r % 97 == 0) v = r % 2 ? INT64_MAX : INT64_MIN;
        s_batch->cols [0].data [r] = (uint8_t) (x >> 40 & 1);
        ((int8_t *) s_batch->cols [1].data) [r] = (int8_t) v;
        int64_t small = (int64_t) (x >> 33) % 21 - 10;
        ((int16_t *) s_batch->cols [2].data) [r] = (int16_t) (small * 300);
        ((int32_t *) s_batch->cols [3].data) [r] = (int32_t) (small * 100000);
        ((int64_t *) s_batch->cols [4].data) [r] = v;
        ((float *) s_batch->cols [5].data) [r] = (float) v / 4;
        ((double *) s_batch->cols [6].data) [r] = r % 53 == 0 ? 1e308 : (double) v / 3;
        const char *str = strs [(x >> 20) % 7];
        s_set_var (&s_batch->cols [7], r, str, strlen (str));
        for (int fi = 0; fi < 9; fi++)
            if (s_batch->cols [fi].valid && (x >> (fi + 3)) % 9 == 0)
                s_batch->cols [fi].valid [r] = 0;
        //  json: a map with scalars, a nested map and an array; sometimes a scalar
        //  root, nil, or bytes that are not msgpack at all
        int shape = (int) ((x >> 12) % 8);
        if (shape == 0)
            qv_wr_int (w, v);
        else
        if (shape == 1)
            qv_wr_nil (w);
        else {
            qv_wr_map (w, 4);
            qv_wr_str (w, "a");
            if (shape == 2) qv_wr_str (w, str); else qv_wr_int (w, v);
            qv_wr_str (w, "f");
            qv_wr_double (w, (double) v / 2);
            qv_wr_str (w, "b");
            qv_wr_map (w, 1);
            qv_wr_str (w, "c");
            qv_wr_bool (w, v > 0);
            qv_wr_str (w, "arr");
            qv_wr_array (w, 2);
            qv_wr_int (w, v);
            qv_wr_str (w, str);
        }
        size_t size;
        void *raw = qv_wr_detach (w, &size);
        if (shape == 7 && size > 2)
            size -= 2;              //  truncated msgpack
        s_set_var (&s_batch->cols [8], r, raw, size);
        free (raw);
    }
    qv_wr_destroy (&w);
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    if (!s_batch)
        s_init ();
    //  An exact-size copy, so a read one byte too far is caught
    char *text = malloc (size ? size : 1);
    if (!text)
        return 0;
    memcpy (text, data, size);
    int rc = 0;
    qv_expr_t *e = qv_expr_parse (&s_schema, text, size, &rc);
    if (!e) {
        if (rc != QV_EINVAL && rc != QV_ENOMEM)
            abort ();
        if (rc == QV_EINVAL && !strstr (qv_err_msg (), " at position ")
        &&  !strstr (qv_err_msg (), "longer than"))
            abort ();
        free (text);
        return 0;
    }
    uint64_t mask;
    qv_expr_fields (e, &mask);
    if (mask >> s_schema.nfields)
        abort ();
    roaring_bitmap_t *all = roaring_bitmap_create ();
    if (qv_expr_eval (e, s_batch, ROWS, all) != 0)
        abort ();
    //  Rows from the input's bytes, plus a run, over a sub-range
    roaring_bitmap_t *in = roaring_bitmap_create ();
    for (size_t k = 0; k < size; k++)
        roaring_bitmap_add (in, (uint32_t) (data [k] * 4 + k) % (ROWS + 50));
    roaring_bitmap_add_range (in, 300, 300 + size % 700);
    uint32_t from = size % 11, to = ROWS - size % 13;
    roaring_bitmap_t *some = roaring_bitmap_create ();
    if (qv_expr_eval_rows (e, s_batch, from, to, in, some) != 0)
        abort ();
    for (uint32_t r = 0; r < ROWS + 50; r++) {
        bool whole = roaring_bitmap_contains (all, r);
        bool asked = r >= from && r < to && roaring_bitmap_contains (in, r);
        if (roaring_bitmap_contains (some, r) != (whole && asked))
            abort ();
        if (r < ROWS && r % 7 == 0 && qv_expr_match_row (e, s_batch, r) != whole)
            abort ();
        if (r >= ROWS && whole)
            abort ();
    }
    qv_expr_value_t *values;
    size_t n;
    for (int fi = 0; fi < s_schema.nfields; fi++) {
        if (qv_expr_equal_values (e, fi, &values, &n) == 1) {
            //  Every matching row holds one of the values
            for (uint32_t r = 0; r < ROWS; r++) {
                if (!roaring_bitmap_contains (all, r))
                    continue;
                const qv_col_t *col = &s_batch->cols [fi];
                bool found = false;
                for (size_t k = 0; k < n && !found; k++) {
                    const qv_expr_value_t *v = &values [k];
                    switch (s_schema.fields [fi].type) {
                        case QV_BOOL: found = (col->data [r] != 0) == v->b; break;
                        case QV_INT8: found = ((int8_t *) col->data) [r] == v->i; break;
                        case QV_INT16: found = ((int16_t *) col->data) [r] == v->i; break;
                        case QV_INT32: found = ((int32_t *) col->data) [r] == v->i; break;
                        case QV_INT64: found = ((int64_t *) col->data) [r] == v->i; break;
                        case QV_FLOAT: found = ((float *) col->data) [r] == v->d; break;
                        case QV_DOUBLE: found = ((double *) col->data) [r] == v->d; break;
                        case QV_VARCHAR:
                            found = col->var [r].len == v->len
                                 && (v->len == 0 || memcmp (col->var [r].ptr, v->s, v->len) == 0);
                            break;
                        default: break;
                    }
                }
                if (!found)
                    abort ();
            }
        }
        free (values);
    }
    roaring_bitmap_free (all);
    roaring_bitmap_free (in);
    roaring_bitmap_free (some);
    qv_expr_destroy (&e);
    free (text);
    return 0;
}
