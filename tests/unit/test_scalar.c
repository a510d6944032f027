//  Scalar indexes: lookups against brute force, the object image (round trip and
//  corruption), and random indexable filters through qv_expr_eval_indexed against the
//  plain scan (itself checked against a reference evaluator in test_expr.c), over
//  columns with nulls, NaN, -0.0, int64 extremes, empty strings and many duplicates.
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qv_crc.h"
#include "qv_expr.h"
#include "qv_rc.h"
#include "qv_envelope.h"
#include "qv_scalar.h"

static uint64_t s_rng = 0x2545F4914F6CDD1Dull;

static uint64_t
s_rand (void)
{
    s_rng ^= s_rng << 13;
    s_rng ^= s_rng >> 7;
    s_rng ^= s_rng << 17;
    return s_rng;
}

static int
s_pick (int n)
{
    return (int) (s_rand () % (uint64_t) n);
}

//  Fields: the name is the type, as filters write them
enum { F_I64, F_I8, F_F32, F_F64, F_VC, F_B, NF };
static const char *s_names [NF] = { "i64", "i8", "f32", "f64", "vc", "b" };
static const qv_type_t s_types [NF] = { QV_INT64, QV_INT8, QV_FLOAT, QV_DOUBLE, QV_VARCHAR, QV_BOOL };

static const int64_t s_ints [] = { INT64_MIN, INT64_MAX, -1, 0, 1, 2, 3, -5, 5, 100, INT64_MIN + 1 };
#define NINTS (int) (sizeof s_ints / sizeof s_ints [0])
static const double s_dbls [] = { -0.0, 0.0, 1.5, -1.5, 2.0, 3.0, 1e30, -1e30, 0.25 };
#define NDBLS (int) (sizeof s_dbls / sizeof s_dbls [0])
static const char *s_strs [] = { "", "a", "ab", "abc", "b", "é", "A", "tech" };
#define NSTRS (int) (sizeof s_strs / sizeof s_strs [0])

typedef struct {
    qv_schema_t schema;
    qv_batch_t *batch;
    uint32_t n;
    qv_scalar_t *scalars [QV_FIELDS_MAX];
} world_t;

static world_t *
s_world_new (uint32_t n, int distinct)
{
    world_t *wd = calloc (1, sizeof *wd);
    for (int fi = 0; fi < NF; fi++) {
        qv_field_t *f = &wd->schema.fields [fi];
        snprintf (f->name, sizeof f->name, "%s", s_names [fi]);
        f->type = s_types [fi];
        f->nullable = fi != F_I8;
        f->max_length = 100;
    }
    wd->schema.nfields = NF;
    wd->schema.pk = F_I64;
    wd->schema.vec = -1;
    wd->n = n;
    wd->batch = qv_batch_new (&wd->schema, n);
    assert_non_null (wd->batch);
    wd->batch->n = n;
    for (int fi = 0; fi < NF; fi++) {
        qv_col_t *col = &wd->batch->cols [fi];
        if (wd->schema.fields [fi].nullable) {
            col->valid = malloc (n);
            memset (col->valid, 1, n);
        }
        for (uint32_t r = 0; r < n; r++) {
            if (col->valid && s_pick (8) == 0) {
                col->valid [r] = 0;
                continue;
            }
            int k = s_pick (distinct);
            switch (s_types [fi]) {
                case QV_INT64:
                    ((int64_t *) col->data) [r] = k < NINTS ? s_ints [k] : (int64_t) s_rand ();
                    break;
                case QV_INT8: ((int8_t *) col->data) [r] = (int8_t) (k % 2 ? -k : k); break;
                case QV_FLOAT: case QV_DOUBLE: {
                    double d = k == 0 ? NAN : k <= NDBLS ? s_dbls [k - 1] : (double) k;
                    if (s_types [fi] == QV_FLOAT) ((float *) col->data) [r] = (float) d;
                    else ((double *) col->data) [r] = d;
                    break;
                }
                case QV_VARCHAR: {
                    const char *s = s_strs [k % NSTRS];
                    col->var [r].len = (uint32_t) strlen (s);
                    col->var [r].ptr = col->var [r].len ? (uint8_t *) strdup (s) : NULL;
                    break;
                }
                default: col->data [r] = (uint8_t) (k % 2); break;
            }
        }
        wd->scalars [fi] = qv_scalar_new (s_types [fi], col, n);
        assert_non_null (wd->scalars [fi]);
    }
    return wd;
}

static void
s_world_destroy (world_t **wd_p)
{
    world_t *wd = *wd_p;
    for (int fi = 0; fi < QV_FIELDS_MAX; fi++)
        qv_scalar_destroy (&wd->scalars [fi]);
    qv_batch_destroy (&wd->batch);
    free (wd);
    *wd_p = NULL;
}

//  A literal for field fi, appended to buf
static void
s_lit (char *buf, size_t size, int fi)
{
    size_t o = strlen (buf);
    switch (s_types [fi]) {
        case QV_INT64: case QV_INT8: {
            int64_t i = s_pick (2) ? s_ints [s_pick (NINTS)] : (int64_t) s_pick (11) - 5;
            snprintf (buf + o, size - o, "%" PRId64, i);
            break;
        }
        case QV_FLOAT: case QV_DOUBLE: {
            if (s_pick (4) == 0) {
                snprintf (buf + o, size - o, "%d", s_pick (7) - 3);
                break;
            }
            double d = s_dbls [s_pick (NDBLS)];
            snprintf (buf + o, size - o, "%s%.17g%s", signbit (d) && d == 0 ? "-" : "",
                      d == 0 ? 0.0 : d, floor (d) == d && fabs (d) < 1e15 ? ".0" : "");
            break;
        }
        case QV_VARCHAR: snprintf (buf + o, size - o, "\"%s\"", s_strs [s_pick (NSTRS)]); break;
        default: snprintf (buf + o, size - o, "%s", s_pick (2) ? "true" : "false"); break;
    }
}

static void
s_put (char *buf, size_t size, const char *fmt, ...)
{
    size_t o = strlen (buf);
    va_list args;
    va_start (args, fmt);
    vsnprintf (buf + o, size - o, fmt, args);
    va_end (args);
}

//  A condition an index can answer (or one it cannot, now and then)
static void
s_leaf (char *buf, size_t size)
{
    static const char *ops [] = { "==", "!=", "<", "<=", ">", ">=" };
    int fi = s_pick (NF);
    int r = s_pick (10);
    if (r == 0) {                   //  not indexable: arithmetic, like, is null, not
        static const char *other [] = {
            "i8 + 1 > 2", "vc like \"a%\"", "f64 is null", "not (i64 == 0)", "i64 * 2 < 4", "i8 > 1.5"
        };
        s_put (buf, size, "%s", other [s_pick (6)]);
        return;
    }
    if (r <= 2) {                   //  [not] in
        s_put (buf, size, "%s %s [", s_names [fi], s_pick (2) ? "in" : "not in");
        int n = s_pick (5);
        for (int k = 0; k < n; k++) {
            if (k)
                s_put (buf, size, ", ");
            s_lit (buf, size, fi);
        }
        s_put (buf, size, "]");
        return;
    }
    if (r == 3 && s_types [fi] == QV_BOOL) {
        s_put (buf, size, "%s", s_names [fi]);
        return;
    }
    const char *op = s_types [fi] == QV_BOOL ? ops [s_pick (2)] : ops [s_pick (6)];
    if (s_pick (4) == 0) {          //  literal on the left
        s_lit (buf, size, fi);
        s_put (buf, size, " %s %s", op, s_names [fi]);
    }
    else {
        s_put (buf, size, "%s %s ", s_names [fi], op);
        s_lit (buf, size, fi);
    }
}

static void
test_random_filters (void **state)
{
    (void) state;
    int used = 0, total = 0, empty = 0;
    for (int world = 0; world < 12; world++) {
        uint32_t n = world % 3 == 0 ? 70000 + (uint32_t) s_pick (1000) : 1 + (uint32_t) s_pick (3000);
        world_t *wd = s_world_new (n, world % 2 ? 6 : 40);
        for (int k = 0; k < 300; k++) {
            char text [1024] = "";
            int nconj = 1 + s_pick (4);
            bool or = s_pick (8) == 0;
            for (int c = 0; c < nconj; c++) {
                if (c)
                    s_put (text, sizeof text, or ? " or " : s_pick (2) ? " and " : " && ");
                bool paren = s_pick (3) == 0;
                s_put (text, sizeof text, paren ? "(" : "");
                s_leaf (text, sizeof text);
                s_put (text, sizeof text, paren ? ")" : "");
            }
            int rc;
            qv_expr_t *e = qv_expr_parse (&wd->schema, text, strlen (text), &rc);
            if (!e)
                fail_msg ("parse failed: %s\n  %s", qv_err_msg (), text);
            uint32_t from = 0, to = n;
            if (s_pick (3) == 0) {
                from = (uint32_t) s_pick ((int) n);
                to = from + (uint32_t) s_pick ((int) (n - from) + 1);
            }
            roaring_bitmap_t *want = roaring_bitmap_create ();
            roaring_bitmap_t *got = roaring_bitmap_create ();
            assert_int_equal (qv_expr_eval_rows (e, wd->batch, from, to, NULL, want), 0);
            double share = s_pick (2) ? 1.0 : 0.05;
            rc = qv_expr_eval_indexed (e, wd->batch, from, to, wd->scalars, share, got);
            assert_true (rc == 0 || rc == 1);
            used += rc;
            total++;
            empty += roaring_bitmap_is_empty (want);
            if (!roaring_bitmap_equals (want, got)) {
                roaring_bitmap_t *x = roaring_bitmap_xor (want, got);
                uint32_t row = roaring_bitmap_minimum (x);
                for (int fi = 0; fi < NF; fi++) {
                    const qv_col_t *col = &wd->batch->cols [fi];
                    print_message ("  row %u %s: valid %d f %g i %lld\n", row, s_names [fi],
                                   !col->valid || col->valid [row],
                                   fi == F_F32 ? (double) ((float *) col->data) [row]
                                   : fi == F_F64 ? ((double *) col->data) [row] : 0.0,
                                   fi == F_I64 ? (long long) ((int64_t *) col->data) [row] : 0);
                }
                fail_msg ("indexed %" PRIu64 " rows, scan %" PRIu64 " (rows %u..%u of %u, index %s)\n  %s",
                          roaring_bitmap_get_cardinality (got), roaring_bitmap_get_cardinality (want),
                          from, to, n, rc ? "used" : "not used", text);
            }
            roaring_bitmap_free (want);
            roaring_bitmap_free (got);
            qv_expr_destroy (&e);
        }
        s_world_destroy (&wd);
    }
    print_message ("%d random filters, %d answered with an index, %d matched nothing\n", total, used, empty);
    assert_true (used > total / 2);
    assert_true (empty < total / 2);
}

//  Lookups against a brute-force count, and the NaN and null rows kept apart
static void
test_lookups (void **state)
{
    (void) state;
    world_t *wd = s_world_new (5000, 12);
    for (int fi = 0; fi < NF; fi++) {
        const qv_col_t *col = &wd->batch->cols [fi];
        qv_scalar_t *idx = wd->scalars [fi];
        uint32_t valid = 0, nans = 0;
        for (uint32_t r = 0; r < wd->n; r++) {
            bool ok = !col->valid || col->valid [r];
            valid += ok;
            if (ok && s_types [fi] == QV_FLOAT) nans += isnan (((float *) col->data) [r]);
            if (ok && s_types [fi] == QV_DOUBLE) nans += isnan (((double *) col->data) [r]);
        }
        assert_int_equal (qv_scalar_rows (idx), wd->n);
        assert_int_equal (qv_scalar_nonnull (idx), valid);
        assert_int_equal (qv_scalar_ordered (idx), valid - nans);
        if (s_types [fi] == QV_FLOAT || s_types [fi] == QV_DOUBLE)
            assert_true (nans > 0);
        for (int k = 0; k < 20; k++) {
            qv_scalar_key_t key = { 0 };
            key.i = s_types [fi] == QV_BOOL ? s_pick (2) : s_ints [s_pick (NINTS)];
            key.d = s_dbls [s_pick (NDBLS)];
            key.s = (const uint8_t *) s_strs [s_pick (NSTRS)];
            key.n = (uint32_t) strlen ((const char *) key.s);
            uint32_t want = 0;
            for (uint32_t r = 0; r < wd->n; r++) {
                if (col->valid && !col->valid [r])
                    continue;
                switch (s_types [fi]) {
                    case QV_INT64: want += ((int64_t *) col->data) [r] == key.i; break;
                    case QV_INT8: want += ((int8_t *) col->data) [r] == key.i; break;
                    case QV_FLOAT: want += (double) ((float *) col->data) [r] == key.d; break;
                    case QV_DOUBLE: want += ((double *) col->data) [r] == key.d; break;
                    case QV_VARCHAR:
                        want += col->var [r].len == key.n && memcmp (col->var [r].ptr ? (char *) col->var [r].ptr : "",
                                                                     key.s, key.n) == 0;
                        break;
                    default: want += (col->data [r] != 0) == key.i; break;
                }
            }
            qv_scalar_span_t span = qv_scalar_equal (idx, col, &key);
            assert_int_equal (span.hi - span.lo, want);
            roaring_bitmap_t *rows = roaring_bitmap_create ();
            assert_int_equal (qv_scalar_mark (idx, &span, 1, 0, wd->n, rows), 0);
            assert_int_equal (roaring_bitmap_get_cardinality (rows), want);
            roaring_bitmap_free (rows);
        }
    }
    s_world_destroy (&wd);
}

//  The object image loads back to the same index; damage is refused, never used
static void
test_image (void **state)
{
    (void) state;
    world_t *wd = s_world_new (3000, 10);
    for (int fi = 0; fi < NF; fi++) {
        const qv_col_t *col = &wd->batch->cols [fi];
        zchunk_t *chunk = NULL;
        assert_int_equal (qv_scalar_serialize (wd->scalars [fi], &chunk), 0);
        uint8_t *data = zchunk_data (chunk);
        size_t size = zchunk_size (chunk);
        qv_scalar_t *back = NULL;
        assert_int_equal (qv_scalar_load (data, size, s_types [fi], col, wd->n, &back), 0);
        assert_int_equal (qv_scalar_nonnull (back), qv_scalar_nonnull (wd->scalars [fi]));
        zchunk_t *again = NULL;
        assert_int_equal (qv_scalar_serialize (back, &again), 0);
        assert_true (zchunk_size (again) == size && memcmp (zchunk_data (again), data, size) == 0);
        zchunk_destroy (&again);
        qv_scalar_destroy (&back);
        //  Another column's length, a flipped byte, a truncation
        assert_int_equal (qv_scalar_load (data, size, s_types [fi], col, wd->n - 1, &back), QV_ECORRUPT);
        for (int k = 0; k < 20; k++) {
            size_t at = (size_t) s_pick ((int) size);
            data [at] ^= (uint8_t) (1 + s_pick (255));
            assert_int_equal (qv_scalar_load (data, size, s_types [fi], col, wd->n, &back), QV_ECORRUPT);
            assert_null (back);
            data [at] = 0;
            assert_int_equal (qv_scalar_load (data, size - 1, s_types [fi], col, wd->n, &back), QV_ECORRUPT);
            assert_int_equal (qv_scalar_serialize (wd->scalars [fi], &again), 0);
            memcpy (data, zchunk_data (again), size);
            zchunk_destroy (&again);
        }
        //  A correct checksum over rows out of order: the order is checked too
        if (qv_scalar_ordered (wd->scalars [fi]) >= 2) {
            uint8_t tmp [4];
            memcpy (tmp, data + 48, 4);         //  the first row, after 32 + 16 bytes
            memcpy (data + 48, data + size - 4, 4);
            memcpy (data + size - 4, tmp, 4);
            qv_envelope_seal (data, size, QV_ENVELOPE_SINDEX, 2);
            assert_int_equal (qv_scalar_load (data, size, s_types [fi], col, wd->n, &back), QV_ECORRUPT);
        }
        zchunk_destroy (&chunk);
    }
    s_world_destroy (&wd);
}

static void
test_types (void **state)
{
    (void) state;
    assert_true (qv_scalar_is_type ("INVERTED") && qv_scalar_is_type ("STL_SORT"));
    assert_false (qv_scalar_is_type ("HNSW"));
    assert_true (qv_scalar_supports ("INVERTED", QV_VARCHAR) && qv_scalar_supports ("INVERTED", QV_BOOL));
    assert_false (qv_scalar_supports ("INVERTED", QV_DOUBLE) || qv_scalar_supports ("STL_SORT", QV_VARCHAR));
    assert_true (qv_scalar_supports ("STL_SORT", QV_FLOAT) && qv_scalar_supports ("STL_SORT", QV_INT16));
    assert_false (qv_scalar_supports ("STL_SORT", QV_JSON) || qv_scalar_supports ("INVERTED", QV_FLOAT_VECTOR));
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_types),
        cmocka_unit_test (test_lookups),
        cmocka_unit_test (test_image),
        cmocka_unit_test (test_random_filters),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
