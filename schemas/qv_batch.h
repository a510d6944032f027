//  A batch of rows in columnar form: built from an insert request, logged in the WAL,
//  appended to segments.
#ifndef QV_BATCH_H_INCLUDED
#define QV_BATCH_H_INCLUDED

#include "qv_schema.h"

#include <string.h>

//  One variable-length value (varchar bytes, or a json field's msgpack bytes). A slot
//  that holds nothing ({0, NULL}) is an empty varchar, and for json, when the row is
//  not null, the empty map: `$meta` of a row without dynamic keys is held so.
typedef struct {
    uint32_t len;
    uint8_t *ptr;                   //  malloc'd, owned by the column
} qv_bytes_t;

//  Order of two byte strings (varchar values, filter strings): bytes, then length.
//  -1, 0 or 1; a pointer may be NULL when its length is 0.
static inline int
qv_bytes_cmp (const uint8_t *a, uint32_t an, const uint8_t *b, uint32_t bn)
{
    uint32_t n = an < bn ? an : bn;
    int c = n ? memcmp (a, b, n) : 0;
    if (c)
        return c < 0 ? -1 : 1;
    return an < bn ? -1 : an > bn;
}

//  One column: fixed-width values back to back, or variable-length ones.
typedef struct {
    uint8_t *data;                  //  cap * width bytes (fixed-width types)
    qv_bytes_t *var;                //  cap values (varchar, json); in a sparse batch
                                    //  (qv_batch_new_sparse) NULL while every slot holds
                                    //  nothing. Read it with qv_col_var.
    uint8_t *valid;                 //  NULL when no value is null; else 1 byte per row
    uint32_t var_end;               //  var: no slot at or past max (n, var_end) holds
                                    //  memory (qv_col_var_set), so a batch of a large
                                    //  capacity is freed in the time of its rows
    size_t pool_cap;                //  data came from qv_bufpool_get (this capacity) and
                                    //  goes back there; 0: malloc'd. Whoever replaces
                                    //  data frees the old with qv_col_data_free.
} qv_col_t;

//  Frees c's fixed-width data (back to the pool if it came from there).
void
    qv_col_data_free (qv_col_t *c);

//  Var slot row of c ({0, NULL} when c has no slots yet).
static inline const qv_bytes_t *
qv_col_var (const qv_col_t *c, uint32_t row)
{
    static const qv_bytes_t none = { 0, NULL };
    //  Acquire: a sparse column's slots may be allocated while readers read it
    //  (qv_col_var_alloc)
    const qv_bytes_t *var = __atomic_load_n (&c->var, __ATOMIC_ACQUIRE);
    return var ? &var [row] : &none;
}

//  Gives a var column of a sparse batch its cap slots if it has none, zeroed before
//  readers can see them. 0 or QV_ENOMEM.
int
    qv_col_var_alloc (qv_col_t *c, uint32_t cap);

//  Notes that var slot row of c may now hold memory (every writer of a var slot that
//  may lie past the batch's n calls it).
static inline void
qv_col_var_set (qv_col_t *c, uint32_t row)
{
    if (row >= c->var_end)
        c->var_end = row + 1;
}

typedef struct {
    const qv_schema_t *schema;      //  borrowed; outlives the batch
    uint32_t n;                     //  rows held
    uint32_t cap;                   //  rows allocated
    qv_col_t cols [QV_FIELDS_MAX];
} qv_batch_t;

//  An empty batch for cap rows. NULL if out of memory.
qv_batch_t *
    qv_batch_new (const qv_schema_t *schema, uint32_t cap);
//  The same, its var columns without slots until one is given a value (a column whose
//  every value is empty or null, such as `$meta` without dynamic keys, costs nothing):
//  what segments hold. Its var columns are read with qv_col_var.
qv_batch_t *
    qv_batch_new_sparse (const qv_schema_t *schema, uint32_t cap);
void
    qv_batch_destroy (qv_batch_t **self_p);

#define QV_DYNAMIC_KEYS_MAX 1024    //  most dynamic keys in one row

//  Builds a batch from an insert request's `rows` (list of maps) or `columns` (map
//  field -> list; a vector column may be one bin). Checks every value against the
//  schema: QV_EPROTO for a wrong msgpack type, QV_EINVAL for a wrong dimension, a
//  missing or unknown field, a string over max_length, a given auto_id key, naming the
//  field and row. With the dynamic field (qv_schema_meta), keys / columns that are not
//  in the schema become the row's `$meta` map (an empty map when there are none).
//  Auto-id keys are left 0 for the caller to assign. max_rows caps n. The batch is
//  short-lived (until its rows are logged and applied): its big fixed-width columns
//  come from the buffer pool (qv_bufpool.h), whose pages are mapped already.
int
    qv_batch_from_request (const qv_schema_t *schema, const qv_val_t *rows,
                           const qv_val_t *columns, uint32_t max_rows, qv_batch_t **out);

//  Checks that every field's default is a valid value of the field (QV_EINVAL naming it).
int
    qv_batch_check_defaults (const qv_schema_t *schema);

//  Encodes / decodes a batch for the WAL and segment files ({"n", "cols"}); the batch
//  read is sparse, and a json value that is the empty map is held as nothing.
void
    qv_batch_write (const qv_batch_t *self, qv_wr_t *w);
int
    qv_batch_read (const qv_schema_t *schema, const qv_val_t *v, qv_batch_t **out);
//  As qv_batch_write, but the values of fixed-width column `omit` (-1: none) are left
//  out (an empty bin stands in their place; its valid bytes are kept), for a caller
//  that stores them in a form of its own (segment objects delta-code an int64
//  primary key). The WAL and the wire use qv_batch_write: their format stays.
void
    qv_batch_write_but (const qv_batch_t *self, qv_wr_t *w, int omit);
//  As qv_batch_read, but the data of fixed-width column `skip` is checked and left
//  unwritten (its allocation untouched), for a caller that puts the column in place
//  itself (qv_segment_load_owned adopts the object's buffer for it); and fixed-width
//  column `omit` must be the empty bin of qv_batch_write_but, its data left zeroed
//  for the caller to fill. -1: no such column. QV_ECORRUPT if v does not match.
int
    qv_batch_read_but (const qv_schema_t *schema, const qv_val_t *v, int skip, int omit,
                       qv_batch_t **out);

//  Copies row src_row of src into row dst_row of dst (same schema); var values are
//  moved when move is true (src loses them), copied otherwise.
int
    qv_batch_copy_row (qv_batch_t *dst, uint32_t dst_row, qv_batch_t *src,
                       uint32_t src_row, bool move);

//  Writes value (field, row) as msgpack: the value as given on insert (json as its
//  original msgpack, vectors as a list of floats), nil if null.
void
    qv_col_write_value (const qv_field_t *field, const qv_col_t *col, uint32_t row,
                        qv_wr_t *w);

static inline const float *
qv_col_vec (const qv_field_t *field, const qv_col_t *col, uint32_t row)
{
    return (const float *) (col->data + (size_t) row * field->dim * 4);
}

static inline int64_t
qv_col_i64 (const qv_col_t *col, uint32_t row)
{
    return ((const int64_t *) col->data) [row];
}

//  Bytes held by rows [0..n) of the batch (fixed data, var values).
size_t
    qv_batch_bytes (const qv_batch_t *self);

#endif
