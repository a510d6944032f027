//  libFuzzer harness for qv_scalar_load (INVERTED / STL_SORT scalar index images). The
//  input is an image in either format:
//    - the stored-object envelope (starts "QVOB", what qv_scalar_serialize writes):
//      the harness reseals it (qv_fuzz_reseal: length and CRCs; kind, version and
//      flags kept, so those checks are reached too);
//    - version 1 (before the envelope, "QVSCALR") without its CRC32C trailer: the
//      harness appends the right one.
//  The image is loaded against a fixed column of the type its header names (40 rows
//  with ties, nulls, NaN, -0.0, extremes and empty strings), over the rows its header
//  names when that fits. Any input loads or returns QV_ECORRUPT / QV_EINVAL /
//  QV_ENOMEM, never crashes; an image that loads is the index qv_scalar_new builds for
//  those rows (a load checks the permutation against the column, so a damaged object
//  can never make a lookup wrong), serializes to an envelope holding the same fields
//  and rows (an envelope image: to the same bytes), and its lookups agree with a scan
//  of the column.
//
//  Seeds (QV_FUZZ_SEEDS=DIR, see qv_fuzz_seeds.h): the image of each column, whole and
//  over a prefix of its rows; v1-*: the same written before the envelope, kept to fuzz
//  the version 1 reader (so are most of the grown corpus).
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "qv_crc.h"
#include "qv_scalar.h"
#include "qv_fuzz_seeds.h"

#define ROWS 40

static const qv_type_t s_types [] = {
    QV_BOOL, QV_INT8, QV_INT16, QV_INT32, QV_INT64, QV_FLOAT, QV_DOUBLE, QV_VARCHAR
};
#define NTYPES (sizeof s_types / sizeof s_types [0])
static qv_schema_t s_schema;
static qv_batch_t *s_batch;

static void
s_init (void)
{
    for (size_t t = 0; t < NTYPES; t++) {
        qv_field_t *f = &s_schema.fields [s_schema.nfields++];
        snprintf (f->name, sizeof f->name, "f%zu", t);
        f->type = s_types [t];
        f->nullable = t % 2 == 0;
        f->max_length = 16;
    }
    s_batch = qv_batch_new (&s_schema, ROWS);
    assert_non_null (s_batch);
    s_batch->n = ROWS;
    static const char *strs [] = { "", "a", "ab", "b", "é", "a\0b", "tech" };
    static const size_t lens [] = { 0, 1, 2, 1, 2, 3, 4 };
    uint64_t x = 777;
    for (size_t t = 0; t < NTYPES; t++) {
        qv_col_t *col = &s_batch->cols [t];
        if (s_schema.fields [t].nullable) {
            col->valid = malloc (ROWS);
            memset (col->valid, 1, ROWS);
        }
        for (uint32_t r = 0; r < ROWS; r++) {
            x = x * 6364136223846793005ull + 1442695040888963407ull;
            int64_t v = (int64_t) (x >> 33) % 7 - 3;          //  few values: ties
            bool ext = r % 13 == 5, hi = r % 2;                 //  the type's extremes
            if (col->valid && r % 7 == 3)
                col->valid [r] = 0;
            switch (s_types [t]) {
                case QV_BOOL: col->data [r] = v > 0; break;
                case QV_INT8:
                    ((int8_t *) col->data) [r] = ext ? (hi ? INT8_MAX : INT8_MIN) : (int8_t) v;
                    break;
                case QV_INT16:
                    ((int16_t *) col->data) [r] = ext ? (hi ? INT16_MAX : INT16_MIN) : (int16_t) (v * 1000);
                    break;
                case QV_INT32:
                    ((int32_t *) col->data) [r] = ext ? (hi ? INT32_MAX : INT32_MIN) : (int32_t) (v * 100000);
                    break;
                case QV_INT64:
                    ((int64_t *) col->data) [r] = ext ? (hi ? INT64_MAX : INT64_MIN) : v;
                    break;
                case QV_FLOAT:
                    ((float *) col->data) [r] = r % 5 == 1 ? NAN : r % 11 == 2 ? -0.0f
                                              : ext ? (hi ? FLT_MAX : -FLT_MAX) : (float) v / 4;
                    break;
                case QV_DOUBLE:
                    ((double *) col->data) [r] = r % 6 == 1 ? NAN : r % 9 == 4 ? -INFINITY
                                               : ext ? (hi ? DBL_MAX : -DBL_MIN) : (double) v / 3;
                    break;
                default: {
                    size_t k = (x >> 20) % 7;
                    col->var [r].len = (uint32_t) lens [k];
                    col->var [r].ptr = malloc (lens [k] ? lens [k] : 1);
                    memcpy (col->var [r].ptr, strs [k], lens [k]);
                }
            }
        }
    }
}

static zchunk_t *
s_image (const qv_scalar_t *index)
{
    zchunk_t *chunk = NULL;
    if (qv_scalar_serialize (index, &chunk) != 0)
        abort ();
    return chunk;
}

int
LLVMFuzzerInitialize (int *argc, char ***argv)
{
    (void) argc;
    (void) argv;
    const char *dir = qv_fuzz_seeds_dir ();
    if (!dir)
        return 0;
    s_init ();
    for (size_t t = 0; t < NTYPES; t++)
        for (uint32_t rows = ROWS; rows > 0; rows = rows == ROWS ? 9 : 0) {
            qv_scalar_t *index = qv_scalar_new (s_types [t], &s_batch->cols [t], rows);
            assert_non_null (index);
            zchunk_t *chunk = s_image (index);
            char name [64];
            snprintf (name, sizeof name, "%s-%u", qv_type_name (s_types [t]), rows);
            qv_fuzz_seed_write (dir, name, zchunk_data (chunk), zchunk_size (chunk), 0);
            zchunk_destroy (&chunk);
            qv_scalar_destroy (&index);
        }
    exit (0);
}

//  Whether row r of column t holds key (null and NaN hold no key).
static bool
s_holds (size_t t, uint32_t r, const qv_scalar_key_t *key)
{
    const qv_col_t *col = &s_batch->cols [t];
    if (col->valid && !col->valid [r])
        return false;
    switch (s_types [t]) {
        case QV_BOOL: return (col->data [r] != 0) == key->i;
        case QV_INT8: return ((int8_t *) col->data) [r] == key->i;
        case QV_INT16: return ((int16_t *) col->data) [r] == key->i;
        case QV_INT32: return ((int32_t *) col->data) [r] == key->i;
        case QV_INT64: return ((int64_t *) col->data) [r] == key->i;
        case QV_FLOAT: return ((float *) col->data) [r] == key->d;
        case QV_DOUBLE: return ((double *) col->data) [r] == key->d;
        default:
            return col->var [r].len == key->n
                && (key->n == 0 || memcmp (col->var [r].ptr, key->s, key->n) == 0);
    }
}

//  The key row r of column t holds (its caller checked it holds one).
static qv_scalar_key_t
s_key (size_t t, uint32_t r)
{
    const qv_col_t *col = &s_batch->cols [t];
    qv_scalar_key_t key = { 0 };
    switch (s_types [t]) {
        case QV_BOOL: key.i = col->data [r] != 0; break;
        case QV_INT8: key.i = ((int8_t *) col->data) [r]; break;
        case QV_INT16: key.i = ((int16_t *) col->data) [r]; break;
        case QV_INT32: key.i = ((int32_t *) col->data) [r]; break;
        case QV_INT64: key.i = ((int64_t *) col->data) [r]; break;
        case QV_FLOAT: key.d = ((float *) col->data) [r]; break;
        case QV_DOUBLE: key.d = ((double *) col->data) [r]; break;
        default: key.s = col->var [r].ptr; key.n = col->var [r].len;
    }
    return key;
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    if (!s_batch)
        s_init ();
    size_t at = qv_fuzz_fields_at (data, size);
    if (size < at + 8 || size > (1 << 16))
        return 0;
    uint32_t type = qv_le_get32 (data + at), rows = qv_le_get32 (data + at + 4);
    size_t t = 0;
    while (t < NTYPES && (uint32_t) s_types [t] != type)
        t++;
    if (t == NTYPES)
        t = type % NTYPES;          //  a type with no column: loaded against one that differs
    if (rows > ROWS)
        rows = ROWS;
    const qv_col_t *col = &s_batch->cols [t];
    bool v2;
    uint8_t *image = qv_fuzz_image (data, &size, &v2);
    if (!image)
        return 0;
    qv_scalar_t *index = NULL;
    int rc = qv_scalar_load (image, size, s_types [t], col, rows, &index);
    if (rc != 0) {
        if ((rc != QV_ECORRUPT && rc != QV_EINVAL && rc != QV_ENOMEM) || index)
            abort ();
        free (image);
        return 0;
    }
    //  An envelope holding the same fields and rows (for a v2 image: the same bytes
    //  back), and the index qv_scalar_new builds (the NaN rows after the ordered ones
    //  may come in any order)
    zchunk_t *chunk = s_image (index);
    size_t at_in = v2 ? QV_ENVELOPE_HEADER_SIZE : 12, in_len = size - at_in - (v2 ? 0 : 4);
    qv_envelope_t env;
    if (qv_envelope_open (NULL, zchunk_data (chunk), zchunk_size (chunk), QV_ENVELOPE_SINDEX, 2, &env) != 0
    ||  env.version != 2 || env.size != in_len || memcmp (env.payload, image + at_in, in_len) != 0
    ||  (v2 && (zchunk_size (chunk) != size || memcmp (zchunk_data (chunk), image, size) != 0)))
        abort ();
    qv_scalar_t *built = qv_scalar_new (s_types [t], col, rows);
    zchunk_t *want = s_image (built);
    uint32_t ordered = qv_scalar_ordered (index);
    if (zchunk_size (want) != zchunk_size (chunk) || ordered != qv_scalar_ordered (built)
    ||  memcmp (zchunk_data (want) + QV_ENVELOPE_HEADER_SIZE, zchunk_data (chunk) + QV_ENVELOPE_HEADER_SIZE,
                16 + 4 * (size_t) ordered) != 0)
        abort ();
    zchunk_destroy (&want);
    zchunk_destroy (&chunk);
    qv_scalar_destroy (&built);
    //  Equality lookups agree with a scan, over all rows and over a sub-range
    uint32_t from = size % 7, to = rows - (rows ? size % (rows + 1) : 0);
    if (to < from)
        to = from;
    roaring_bitmap_t *got = roaring_bitmap_create ();
    for (uint32_t r = 0; r < rows; r++) {
        qv_scalar_key_t key = s_key (t, r);
        if (!s_holds (t, r, &key))
            continue;               //  null or NaN
        qv_scalar_span_t span = qv_scalar_equal (index, col, &key);
        roaring_bitmap_clear (got);
        if (qv_scalar_mark (index, &span, 1, from, to, got) != 0)
            abort ();
        for (uint32_t q = 0; q < ROWS; q++)
            if (roaring_bitmap_contains (got, q) != (q >= from && q < to && q < rows && s_holds (t, q, &key)))
                abort ();
    }
    roaring_bitmap_free (got);
    qv_scalar_destroy (&index);
    free (image);
    return 0;
}
