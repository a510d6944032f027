//  Scalar index: a segment column's non-null rows sorted by (value, row).
//
//  DESIGN
//  One structure serves both index types: INVERTED's equality and `in` are runs of
//  equal values in the sorted order, STL_SORT's ranges are spans of it. A dictionary
//  of distinct values with a bitmap each would make a low-cardinality equality a
//  bitmap copy, but costs a bitmap per value (bad for unique ints) and another
//  structure for ranges; the permutation is 4 bytes per row whatever the values,
//  needs no copy of them (lookups read the immutable column: log2(rows) reads), and
//  a run of equal values is already in row order (ties are broken by row).
//  Turning positions into a bitmap goes through a bitset over the rows asked for,
//  so rows from many runs come out sorted for roaring's bulk add.
//
//  Object image: the stored-object envelope (qv_envelope.h) of kind SINDEX, format
//  version 2, whose payload is (integers little-endian; offsets in the payload):
//
//      offset  size  field
//      0       4     field type (qv_type_t)
//      4       4     rows covered
//      8       4     ordered: positions holding ordered values
//      12      4     nonnull: positions in all (ordered + NaN rows)
//      16      4xN   the rows in sorted order (N = nonnull)
//
//  Version 1 (before the envelope, Quiver <= 06906df) is still read: magic "QVSCALR"
//  + NUL (8) | format version u32 (1) | the same fields and rows | CRC32C u32 of
//  every byte before it.
//
//  A load checks the frame, then the permutation against the column (every row once,
//  non-null, in strict (value, row) order), so a damaged object can never make a
//  lookup wrong: it is refused and the segment is scanned.
#include "qv_scalar.h"
#include "qv_crc.h"
#include "qv_envelope.h"
#include "qv_le.h"
#include "qv_rc.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define S_MAGIC         "QVSCALR"      //  version 1 (before the envelope)
#define S_V1_VERSION    1
#define S_V1_HEADER     12              //  magic + version, before the fields
#define S_VERSION       2               //  the envelope's payload version
#define S_FIELDS_SIZE   16              //  type, rows, ordered, nonnull
#define S_TRAILER_SIZE  4               //  version 1's CRC

struct _qv_scalar_t {
    qv_type_t type;
    uint32_t rows;                  //  rows covered: [0, rows)
    uint32_t ordered;               //  perm [0, ordered): ordered values
    uint32_t nonnull;               //  perm [ordered, nonnull): NaN values
    uint32_t *perm;                 //  rows in sorted order
};

bool
qv_scalar_is_type (const char *index_type)
{
    return strcmp (index_type, "INVERTED") == 0 || strcmp (index_type, "STL_SORT") == 0;
}

bool
qv_scalar_supports (const char *index_type, qv_type_t type)
{
    bool is_int = type == QV_INT8 || type == QV_INT16 || type == QV_INT32 || type == QV_INT64;
    if (strcmp (index_type, "INVERTED") == 0)
        return is_int || type == QV_BOOL || type == QV_VARCHAR;
    if (strcmp (index_type, "STL_SORT") == 0)
        return is_int || type == QV_FLOAT || type == QV_DOUBLE;
    return false;
}

int
qv_scalar_check (const char *index_type, const qv_field_t *f)
{
    if (f->type == QV_JSON)
        return qv_err (QV_EINVAL, "field '%s' is json: json fields cannot be indexed", f->name);
    bool scalar = qv_scalar_is_type (index_type);
    if (!scalar && f->type != QV_FLOAT_VECTOR)
        return qv_err (QV_EINVAL, "%s is a vector index and field '%s' is %s; use INVERTED or STL_SORT",
                       index_type, f->name, qv_type_name (f->type));
    if (scalar && !qv_scalar_supports (index_type, f->type))
        return qv_err (QV_EINVAL, "%s cannot index field '%s' (%s): INVERTED takes bool, int and varchar "
                       "fields, STL_SORT int, float and double fields", index_type, f->name,
                       qv_type_name (f->type));
    return 0;
}

static bool
s_valid (const qv_col_t *col, uint32_t row)
{
    return !col->valid || col->valid [row];
}

static int64_t
s_int (qv_type_t type, const qv_col_t *col, uint32_t row)
{
    switch (type) {
        case QV_BOOL: return col->data [row] != 0;
        case QV_INT8: return ((const int8_t *) col->data) [row];
        case QV_INT16: return ((const int16_t *) col->data) [row];
        case QV_INT32: return ((const int32_t *) col->data) [row];
        default: return ((const int64_t *) col->data) [row];
    }
}

static double
s_dbl (qv_type_t type, const qv_col_t *col, uint32_t row)
{
    return type == QV_FLOAT ? (double) ((const float *) col->data) [row]
                            : ((const double *) col->data) [row];
}

//  The value of row against key: -1, 0, 1
static int
s_cmp_key (qv_type_t type, const qv_col_t *col, uint32_t row, const qv_scalar_key_t *key)
{
    if (type == QV_VARCHAR) {
        const qv_bytes_t *v = qv_col_var (col, row);
        return qv_bytes_cmp (v->ptr, v->ptr ? v->len : 0, key->s, key->n);
    }
    if (type == QV_FLOAT || type == QV_DOUBLE) {
        double d = s_dbl (type, col, row);
        return d < key->d ? -1 : d > key->d;
    }
    int64_t i = s_int (type, col, row);
    return i < key->i ? -1 : i > key->i;
}

//  Order of two non-null, non-NaN rows: by value, then by row
static int
s_cmp_rows (qv_type_t type, const qv_col_t *col, uint32_t a, uint32_t b)
{
    int c;
    if (type == QV_VARCHAR) {
        const qv_bytes_t *x = qv_col_var (col, a), *y = qv_col_var (col, b);
        c = qv_bytes_cmp (x->ptr, x->ptr ? x->len : 0, y->ptr, y->ptr ? y->len : 0);
    }
    else
    if (type == QV_FLOAT || type == QV_DOUBLE) {
        double x = s_dbl (type, col, a), y = s_dbl (type, col, b);
        c = x < y ? -1 : x > y;
    }
    else {
        int64_t x = s_int (type, col, a), y = s_int (type, col, b);
        c = x < y ? -1 : x > y;
    }
    return c ? c : a < b ? -1 : a > b;
}

typedef struct {
    qv_type_t type;
    const qv_col_t *col;
} s_sort_ctx_t;

static int
s_sort_cmp (const void *x, const void *y, void *arg)
{
    const s_sort_ctx_t *c = arg;
    return s_cmp_rows (c->type, c->col, *(const uint32_t *) x, *(const uint32_t *) y);
}

static bool
s_is_nan (qv_type_t type, const qv_col_t *col, uint32_t row)
{
    return (type == QV_FLOAT || type == QV_DOUBLE) && isnan (s_dbl (type, col, row));
}

qv_scalar_t *
qv_scalar_new (qv_type_t type, const qv_col_t *col, uint32_t rows)
{
    if (!qv_scalar_supports ("INVERTED", type) && !qv_scalar_supports ("STL_SORT", type))
        return NULL;
    qv_scalar_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    self->type = type;
    self->rows = rows;
    self->perm = malloc ((rows ? rows : 1) * sizeof (uint32_t));
    if (!self->perm) {
        free (self);
        return NULL;
    }
    //  Ordered rows first, NaN rows after them, nulls left out
    for (uint32_t r = 0; r < rows; r++)
        if (s_valid (col, r) && !s_is_nan (type, col, r))
            self->perm [self->ordered++] = r;
    self->nonnull = self->ordered;
    for (uint32_t r = 0; r < rows; r++)
        if (s_valid (col, r) && s_is_nan (type, col, r))
            self->perm [self->nonnull++] = r;
    s_sort_ctx_t ctx = { type, col };
    qsort_r (self->perm, self->ordered, sizeof (uint32_t), s_sort_cmp, &ctx);
    return self;
}

void
qv_scalar_destroy (qv_scalar_t **self_p)
{
    qv_scalar_t *self = *self_p;
    if (!self)
        return;
    free (self->perm);
    free (self);
    *self_p = NULL;
}

int
qv_scalar_serialize (const qv_scalar_t *self, zchunk_t **chunk_p)
{
    size_t size = QV_ENVELOPE_HEADER_SIZE + S_FIELDS_SIZE + (size_t) self->nonnull * 4;
    uint8_t *p = malloc (size);
    if (!p)
        return qv_err (QV_ENOMEM, "out of memory for a %zu-byte scalar index image", size);
    uint8_t *f = p + QV_ENVELOPE_HEADER_SIZE;
    qv_le_put32 (f, (uint32_t) self->type);
    qv_le_put32 (f + 4, self->rows);
    qv_le_put32 (f + 8, self->ordered);
    qv_le_put32 (f + 12, self->nonnull);
    for (uint32_t k = 0; k < self->nonnull; k++)
        qv_le_put32 (f + S_FIELDS_SIZE + 4 * (size_t) k, self->perm [k]);
    qv_envelope_seal (p, size, QV_ENVELOPE_SINDEX, S_VERSION);
    zchunk_t *chunk = zchunk_new (p, size);
    free (p);
    if (!chunk)
        return qv_err (QV_ENOMEM, "out of memory for a %zu-byte scalar index image", size);
    *chunk_p = chunk;
    return 0;
}

int
qv_scalar_load (const void *data, size_t size, qv_type_t type, const qv_col_t *col,
                uint32_t rows, qv_scalar_t **out)
{
    const uint8_t *p = data;
    *out = NULL;
    //  f: the fields (type, rows, ordered, nonnull) then the rows, flen bytes
    const uint8_t *f;
    size_t flen;
    if (qv_envelope_is (data, size)) {
        qv_envelope_t env;
        int erc = qv_envelope_open (NULL, data, size, QV_ENVELOPE_SINDEX, S_VERSION, &env);
        if (erc)
            return erc;
        if (env.version != S_VERSION || env.size < S_FIELDS_SIZE)
            return qv_err (QV_ECORRUPT, "scalar index image: a %zu-byte version %u payload, "
                           "expected version %d of at least %d bytes", env.size,
                           env.version, S_VERSION, S_FIELDS_SIZE);
        f = env.payload;
        flen = env.size;
    }
    else {
        //  Version 1, written before the envelope
        if (!data || size < S_V1_HEADER + S_FIELDS_SIZE + S_TRAILER_SIZE)
            return qv_err (QV_ECORRUPT, "scalar index image truncated: %zu bytes", size);
        if (memcmp (p, S_MAGIC, 8) != 0)
            return qv_err (QV_ECORRUPT, "scalar index image has a bad magic number");
        if (qv_crc32c (p, size - S_TRAILER_SIZE) != qv_le_get32 (p + size - S_TRAILER_SIZE))
            return qv_err (QV_ECORRUPT, "scalar index image fails its CRC32C check");
        uint32_t version = qv_le_get32 (p + 8);
        if (version != S_V1_VERSION)
            return qv_err (version > S_V1_VERSION ? QV_EINVAL : QV_ECORRUPT,
                           "scalar index image format version %u, this build reads %u",
                           version, S_V1_VERSION);
        f = p + S_V1_HEADER;
        flen = size - S_V1_HEADER - S_TRAILER_SIZE;
    }
    uint32_t ordered = qv_le_get32 (f + 8), nonnull = qv_le_get32 (f + 12);
    if (qv_le_get32 (f) != (uint32_t) type || qv_le_get32 (f + 4) != rows
    ||  ordered > nonnull || nonnull > rows
    ||  flen != S_FIELDS_SIZE + (size_t) nonnull * 4)
        return qv_err (QV_ECORRUPT, "scalar index image does not match its column");
    qv_scalar_t *self = calloc (1, sizeof *self);
    uint8_t *seen = calloc (rows ? rows : 1, 1);
    if (self)
        self->perm = malloc ((nonnull ? nonnull : 1) * sizeof (uint32_t));
    if (!self || !seen || !self->perm) {
        free (seen);
        qv_scalar_destroy (&self);
        return qv_err (QV_ENOMEM, "out of memory loading a scalar index");
    }
    self->type = type;
    self->rows = rows;
    self->ordered = ordered;
    self->nonnull = nonnull;
    bool ok = true;
    for (uint32_t k = 0; k < nonnull && ok; k++) {
        uint32_t r = qv_le_get32 (f + S_FIELDS_SIZE + 4 * (size_t) k);
        ok = r < rows && !seen [r] && s_valid (col, r) && s_is_nan (type, col, r) == (k >= ordered)
          && (k == 0 || k >= ordered || s_cmp_rows (type, col, self->perm [k - 1], r) < 0);
        if (ok)
            seen [r] = 1;
        self->perm [k] = r;
    }
    uint32_t valid = 0;
    for (uint32_t r = 0; r < rows && ok; r++)
        valid += s_valid (col, r);
    free (seen);
    if (!ok || valid != nonnull) {
        qv_scalar_destroy (&self);
        return qv_err (QV_ECORRUPT, "scalar index image does not match its column");
    }
    *out = self;
    return 0;
}

uint32_t
qv_scalar_rows (const qv_scalar_t *self)
{
    return self->rows;
}

uint32_t
qv_scalar_ordered (const qv_scalar_t *self)
{
    return self->ordered;
}

uint32_t
qv_scalar_nonnull (const qv_scalar_t *self)
{
    return self->nonnull;
}

size_t
qv_scalar_memory_bytes (const qv_scalar_t *self)
{
    return sizeof *self + (size_t) self->nonnull * sizeof (uint32_t);
}

qv_scalar_span_t
qv_scalar_equal (const qv_scalar_t *self, const qv_col_t *col, const qv_scalar_key_t *key)
{
    uint32_t lo = 0, hi = self->ordered;
    while (lo < hi) {               //  first value >= key
        uint32_t mid = lo + (hi - lo) / 2;
        if (s_cmp_key (self->type, col, self->perm [mid], key) < 0) lo = mid + 1;
        else hi = mid;
    }
    qv_scalar_span_t span = { lo, lo };
    hi = self->ordered;
    while (lo < hi) {               //  first value > key
        uint32_t mid = lo + (hi - lo) / 2;
        if (s_cmp_key (self->type, col, self->perm [mid], key) <= 0) lo = mid + 1;
        else hi = mid;
    }
    span.hi = lo;
    return span;
}

int
qv_scalar_mark (const qv_scalar_t *self, const qv_scalar_span_t *spans, size_t nspans,
                uint32_t from, uint32_t to, roaring_bitmap_t *out)
{
    if (to > self->rows)
        to = self->rows;
    if (from >= to)
        return 0;
    size_t nwords = ((size_t) (to - from) + 63) / 64;
    uint64_t *bits = calloc (nwords, sizeof (uint64_t));
    uint32_t *buf = malloc (4096 * sizeof (uint32_t));
    if (!bits || !buf) {
        free (bits);
        free (buf);
        return qv_err (QV_ENOMEM, "out of memory reading a scalar index");
    }
    for (size_t s = 0; s < nspans; s++)
        for (uint32_t k = spans [s].lo; k < spans [s].hi; k++) {
            uint32_t r = self->perm [k] - from;     //  wraps above to when below from
            if (r < to - from)
                bits [r / 64] |= 1ull << (r % 64);
        }
    //  Set bits come out in row order: roaring's bulk add takes them 4096 at a time
    size_t got = 0;
    for (size_t w = 0; w < nwords; w++)
        for (uint64_t word = bits [w]; word; word &= word - 1) {
            buf [got++] = from + (uint32_t) (w * 64 + (size_t) __builtin_ctzll (word));
            if (got == 4096) {
                roaring_bitmap_add_many (out, got, buf);
                got = 0;
            }
        }
    if (got)
        roaring_bitmap_add_many (out, got, buf);
    free (bits);
    free (buf);
    return 0;
}
