//  Scalar index of one flushed segment column: its rows in value order, so equality,
//  `in` and range lookups are binary searches instead of a scan of every row.
//
//  The index is a permutation: positions [0, ordered) hold the rows with a non-null,
//  ordered value, sorted by (value, row); positions [ordered, nonnull) hold the rows
//  whose value is NaN (float fields; unordered, they match only `!=` / `not in`).
//  Null rows are not in it. The values stay in the column, which every lookup is
//  given: the index costs 4 bytes per non-null row, in memory and in its object.
//  A lookup answers with positions; qv_scalar_mark turns position spans into rows.
#ifndef QV_SCALAR_H_INCLUDED
#define QV_SCALAR_H_INCLUDED

#include "qv_batch.h"

#include <czmq.h>
#include <roaring/roaring.h>

typedef struct _qv_scalar_t qv_scalar_t;

//  A value to look up, in the column's kind: i for bool (0/1) and int fields, d for
//  float and double fields (not NaN), s/n for varchar.
typedef struct {
    int64_t i;
    double d;
    const uint8_t *s;
    uint32_t n;
} qv_scalar_key_t;

//  Positions [lo, hi) of the sorted order.
typedef struct {
    uint32_t lo;
    uint32_t hi;
} qv_scalar_span_t;

//  Whether index_type ("INVERTED", "STL_SORT") is a scalar index type, and whether it
//  can index a field of type: INVERTED bool, int8..int64 and varchar; STL_SORT
//  int8..int64, float and double.
bool
    qv_scalar_is_type (const char *index_type);
bool
    qv_scalar_supports (const char *index_type, qv_type_t type);
//  Whether an index of index_type (any, vector or scalar) may be created on field f:
//  0, or QV_EINVAL with a message naming the field and the type.
int
    qv_scalar_check (const char *index_type, const qv_field_t *f);

//  Builds the index of rows [0, rows) of col, a column of type. NULL on out of memory
//  or a type qv_scalar_supports refuses for both index types. Any thread.
qv_scalar_t *
    qv_scalar_new (qv_type_t type, const qv_col_t *col, uint32_t rows);
void
    qv_scalar_destroy (qv_scalar_t **self_p);

//  Object image (layout in qv_scalar.c) into a new chunk in *chunk_p: 0 or QV_ENOMEM.
int
    qv_scalar_serialize (const qv_scalar_t *self, zchunk_t **chunk_p);
//  Loads an image written for rows [0, rows) of col (type), checking it against the
//  column: QV_ECORRUPT for bytes that are not a whole, valid index of that column
//  (bad magic, checksum, sizes, order), QV_EINVAL for a newer format, QV_ENOMEM.
int
    qv_scalar_load (const void *data, size_t size, qv_type_t type, const qv_col_t *col,
                    uint32_t rows, qv_scalar_t **out);

//  Rows the index covers; sorted positions holding ordered values; non-null rows.
uint32_t
    qv_scalar_rows (const qv_scalar_t *self);
uint32_t
    qv_scalar_ordered (const qv_scalar_t *self);
uint32_t
    qv_scalar_nonnull (const qv_scalar_t *self);
size_t
    qv_scalar_memory_bytes (const qv_scalar_t *self);

//  The positions of the ordered rows whose value equals key (span.lo is also the
//  first position with a value >= key, span.hi the first with a value > key).
//  col is the indexed column. Read-only: any number of threads at once.
qv_scalar_span_t
    qv_scalar_equal (const qv_scalar_t *self, const qv_col_t *col, const qv_scalar_key_t *key);

//  Adds to out the rows at the positions of spans (sorted, disjoint) that lie in
//  [from, to). Returns 0 or QV_ENOMEM.
int
    qv_scalar_mark (const qv_scalar_t *self, const qv_scalar_span_t *spans, size_t nspans,
                    uint32_t from, uint32_t to, roaring_bitmap_t *out);

#endif
