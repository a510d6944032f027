//  Columnar row batches: building them from requests with full type checks, and their
//  msgpack form in the WAL and segment files.
#include "qv_batch.h"
#include "qv_bufpool.h"
#include "qv_rc.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

//  qv_batch_new, the fixed-width columns taken from the buffer pool when pooled, the
//  var ones without slots when sparse.
static qv_batch_t *
s_batch_new (const qv_schema_t *schema, uint32_t cap, bool pooled, bool sparse)
{
    qv_batch_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    self->schema = schema;
    self->cap = cap;
    for (int i = 0; i < schema->nfields; i++) {
        const qv_field_t *f = &schema->fields [i];
        size_t width = qv_field_width (f);
        if (width && pooled)
            self->cols [i].data = qv_bufpool_get ((size_t) (cap ? cap : 1) * width,
                                                  &self->cols [i].pool_cap);
        else
        if (width)
            self->cols [i].data = calloc (cap ? cap : 1, width);
        else
        if (!sparse)
            self->cols [i].var = calloc (cap ? cap : 1, sizeof (qv_bytes_t));
        if (!self->cols [i].data && !self->cols [i].var && !(sparse && !width)) {
            qv_batch_destroy (&self);
            return NULL;
        }
    }
    return self;
}

qv_batch_t *
qv_batch_new (const qv_schema_t *schema, uint32_t cap)
{
    return s_batch_new (schema, cap, false, false);
}

qv_batch_t *
qv_batch_new_sparse (const qv_schema_t *schema, uint32_t cap)
{
    return s_batch_new (schema, cap, false, true);
}

int
qv_col_var_alloc (qv_col_t *c, uint32_t cap)
{
    if (c->var)
        return 0;
    qv_bytes_t *var = calloc (cap ? cap : 1, sizeof (qv_bytes_t));
    if (!var)
        return qv_err (QV_ENOMEM, "out of memory for %u values", cap);
    __atomic_store_n (&c->var, var, __ATOMIC_RELEASE);
    return 0;
}

void
qv_col_data_free (qv_col_t *c)
{
    if (c->pool_cap)
        qv_bufpool_put (c->data, c->pool_cap);
    else
        free (c->data);
    c->data = NULL;
    c->pool_cap = 0;
}

void
qv_batch_destroy (qv_batch_t **self_p)
{
    qv_batch_t *self = *self_p;
    if (!self)
        return;
    for (int i = 0; i < self->schema->nfields; i++) {
        qv_col_t *c = &self->cols [i];
        if (c->var) {
            uint32_t end = self->n > c->var_end ? self->n : c->var_end;
            for (uint32_t r = 0; r < end && r < self->cap; r++)
                free (c->var [r].ptr);
        }
        free (c->var);
        qv_col_data_free (c);
        free (c->valid);
    }
    free (self);
    *self_p = NULL;
}

size_t
qv_batch_bytes (const qv_batch_t *self)
{
    size_t bytes = 0;
    for (int i = 0; i < self->schema->nfields; i++) {
        const qv_field_t *f = &self->schema->fields [i];
        size_t width = qv_field_width (f);
        if (width)
            bytes += width * self->n;
        else
        if (self->cols [i].var)
            for (uint32_t r = 0; r < self->n; r++)
                bytes += self->cols [i].var [r].len + sizeof (qv_bytes_t);
    }
    return bytes;
}

static int
s_set_null (qv_batch_t *self, int fi, uint32_t row)
{
    qv_col_t *c = &self->cols [fi];
    if (!c->valid) {
        c->valid = malloc (self->cap ? self->cap : 1);
        if (!c->valid)
            return qv_err (QV_ENOMEM, "out of memory");
        memset (c->valid, 1, self->cap ? self->cap : 1);
    }
    c->valid [row] = 0;
    return 0;
}

//  Stores a copy of the n bytes at p in var slot row of c (a batch of cap rows); p NULL
//  (and n 0): the slot holds nothing.
static int
s_set_bytes (qv_col_t *c, uint32_t cap, uint32_t row, const void *p, size_t n)
{
    if (!p && !n) {
        if (c->var && (c->var [row].ptr || c->var [row].len)) {
            free (c->var [row].ptr);
            c->var [row].ptr = NULL;
            c->var [row].len = 0;
        }
        return 0;
    }
    if (qv_col_var_alloc (c, cap))
        return QV_ENOMEM;
    uint8_t *copy = malloc (n ? n : 1);
    if (!copy)
        return qv_err (QV_ENOMEM, "out of memory");
    memcpy (copy, p, n);
    free (c->var [row].ptr);
    c->var [row].ptr = copy;
    c->var [row].len = (uint32_t) n;
    qv_col_var_set (c, row);
    return 0;
}

//  Stores one vector given as a list of numbers or a bin of dim float32 values.
static int
s_set_vector (const qv_field_t *f, qv_col_t *c, uint32_t row, const qv_val_t *v)
{
    float *dst = (float *) (c->data + (size_t) row * f->dim * 4);
    if (qv_val_type (v) == QV_V_BIN) {
        const void *p;
        size_t n;
        qv_val_bin (v, &p, &n);
        if (n != (size_t) f->dim * 4)
            return qv_err (QV_EINVAL, "field '%s' row %u: bin of %zu bytes, expected dim %u x 4 = %u",
                           f->name, row, n, f->dim, f->dim * 4);
        memcpy (dst, p, n);
    }
    else
    if (qv_val_type (v) == QV_V_ARRAY) {
        if (qv_val_len (v) != f->dim)
            return qv_err (QV_EINVAL, "field '%s' row %u: vector has %zu values, expected dim %u",
                           f->name, row, qv_val_len (v), f->dim);
        for (uint32_t d = 0; d < f->dim; d++) {
            double x;
            if (qv_val_double (qv_val_at (v, d), &x))
                return qv_err (QV_EPROTO, "field '%s' row %u: vector element %u is not a number",
                               f->name, row, d);
            dst [d] = (float) x;
        }
    }
    else
        return qv_err (QV_EPROTO, "field '%s' row %u: a vector must be a list of numbers or a bin of float32",
                       f->name, row);
    for (uint32_t d = 0; d < f->dim; d++)
        if (!isfinite (dst [d]))
            return qv_err (QV_EINVAL, "field '%s' row %u: vector element %u is not finite", f->name, row, d);
    return 0;
}

//  Stores one scalar value v into (field fi, row), checking type and range.
static int
s_set_value (qv_batch_t *self, int fi, uint32_t row, const qv_val_t *v)
{
    const qv_field_t *f = &self->schema->fields [fi];
    qv_col_t *c = &self->cols [fi];
    if (qv_val_type (v) == QV_V_NIL && f->type != QV_JSON) {
        if (f->nullable)
            return s_set_null (self, fi, row);
        return qv_err (QV_EINVAL, "field '%s' row %u: null given but the field is not nullable", f->name, row);
    }
    int64_t i;
    double d;
    bool b;
    const char *s;
    size_t n;
    switch (f->type) {
        case QV_BOOL:
            if (qv_val_bool (v, &b))
                goto wrong_type;
            c->data [row] = b;
            return 0;
        case QV_INT8: case QV_INT16: case QV_INT32: case QV_INT64: {
            if (qv_val_int (v, &i)) {
                uint64_t u;
                if (qv_val_uint (v, &u) == 0)
                    return qv_err (QV_EINVAL, "field '%s' row %u: %llu is out of range for %s",
                                   f->name, row, (unsigned long long) u, qv_type_name (f->type));
                goto wrong_type;
            }
            int64_t lo = f->type == QV_INT8 ? INT8_MIN : f->type == QV_INT16 ? INT16_MIN
                       : f->type == QV_INT32 ? INT32_MIN : INT64_MIN;
            int64_t hi = f->type == QV_INT8 ? INT8_MAX : f->type == QV_INT16 ? INT16_MAX
                       : f->type == QV_INT32 ? INT32_MAX : INT64_MAX;
            if (i < lo || i > hi)
                return qv_err (QV_EINVAL, "field '%s' row %u: %lld is out of range for %s",
                               f->name, row, (long long) i, qv_type_name (f->type));
            if (f->type == QV_INT8) ((int8_t *) c->data) [row] = (int8_t) i;
            if (f->type == QV_INT16) ((int16_t *) c->data) [row] = (int16_t) i;
            if (f->type == QV_INT32) ((int32_t *) c->data) [row] = (int32_t) i;
            if (f->type == QV_INT64) ((int64_t *) c->data) [row] = i;
            return 0;
        }
        case QV_FLOAT: case QV_DOUBLE:
            if (qv_val_double (v, &d))
                goto wrong_type;
            if (f->type == QV_FLOAT && isfinite (d) && fabs (d) > FLT_MAX)
                return qv_err (QV_EINVAL, "field '%s' row %u: %g is out of range for float",
                               f->name, row, d);
            if (f->type == QV_FLOAT) ((float *) c->data) [row] = (float) d;
            else ((double *) c->data) [row] = d;
            return 0;
        case QV_VARCHAR:
            if (qv_val_str (v, &s, &n))
                goto wrong_type;
            if (n > f->max_length)
                return qv_err (QV_EINVAL, "field '%s' row %u: string of %zu bytes exceeds max_length %u",
                               f->name, row, n, f->max_length);
            return s_set_bytes (c, self->cap, row, s, n);
        case QV_JSON: {
            size_t size;
            void *raw = qv_val_encode (v, &size);
            if (!raw || qv_col_var_alloc (c, self->cap)) {
                free (raw);
                return qv_err (QV_ENOMEM, "out of memory");
            }
            free (c->var [row].ptr);
            c->var [row].ptr = raw;
            c->var [row].len = (uint32_t) size;
            qv_col_var_set (c, row);
            return 0;
        }
        case QV_FLOAT_VECTOR:
            return s_set_vector (f, c, row, v);
    }
wrong_type:
    return qv_err (QV_EPROTO, "field '%s' row %u: expected %s, got %s", f->name, row,
                   qv_type_name (f->type), qv_vtype_name (qv_val_type (v)));
}

//  Fills a field missing from a row with its default, null, or reports it.
static int
s_set_missing (qv_batch_t *self, int fi, uint32_t row)
{
    const qv_field_t *f = &self->schema->fields [fi];
    if (f->auto_id)
        return 0;
    if (f->default_raw) {
        int rc;
        qv_doc_t *doc = qv_doc_parse (f->default_raw, f->default_size, 1 << 20, &rc);
        if (!doc)
            return rc;
        rc = s_set_value (self, fi, row, qv_doc_root (doc));
        qv_doc_destroy (&doc);
        return rc;
    }
    if (f->nullable)
        return s_set_null (self, fi, row);
    return qv_err (QV_EINVAL, "row %u has no value for field '%s'", row, f->name);
}

int
qv_batch_check_defaults (const qv_schema_t *schema)
{
    qv_batch_t *b = qv_batch_new (schema, 1);
    if (!b)
        return qv_err (QV_ENOMEM, "out of memory");
    int rc = 0;
    for (int fi = 0; fi < schema->nfields && !rc; fi++)
        if (schema->fields [fi].default_raw && (rc = s_set_missing (b, fi, 0)))
            rc = qv_err (QV_EINVAL, "field '%s': the default does not fit the field: %s",
                         schema->fields [fi].name, qv_err_msg ());
    qv_batch_destroy (&b);
    return rc;
}

#define S_DYNAMIC (-2)             //  s_key_field: a key for the `$meta` field

//  The field a row key or column names: *fi = its index, or S_DYNAMIC for a key that
//  is not in the schema of a collection with the dynamic field.
static int
s_key_field (const qv_schema_t *schema, const qv_val_t *key, int *fi)
{
    const char *s;
    size_t n;
    if (qv_val_str (key, &s, &n))
        return qv_err (QV_EPROTO, "field names must be strings");
    char name [QV_NAME_MAX + 1];
    if (n > QV_NAME_MAX)
        return qv_err (QV_EINVAL, "unknown field '%.64s...'", s);
    memcpy (name, s, n);
    name [n] = 0;
    *fi = qv_schema_find (schema, name);
    if (*fi >= 0 && *fi == qv_schema_meta (schema))
        return qv_err (QV_EINVAL, "'%s' is the hidden dynamic field: give its keys at the top "
                       "level of the row", QV_META_FIELD);
    if (*fi < 0 && qv_schema_meta (schema) >= 0) {
        if (memchr (s, 0, n))
            return qv_err (QV_EINVAL, "dynamic field name '%.64s' holds a NUL byte", s);
        *fi = S_DYNAMIC;
        return 0;
    }
    if (*fi < 0)
        return qv_err (QV_EINVAL, "unknown field '%s'", name);
    if (schema->fields [*fi].auto_id)
        return qv_err (QV_EINVAL, "field '%s' is auto_id: the server assigns it, do not send it", name);
    return 0;
}

//  Stores row r's `$meta` value: the map of its n dynamic keys (keys [i] -> vals [i]),
//  nothing (the empty map, qv_bytes_t) when there are none.
static int
s_set_meta (qv_batch_t *b, uint32_t r, const qv_val_t **keys, const qv_val_t **vals, size_t n,
            qv_wr_t *w)
{
    qv_col_t *c = &b->cols [qv_schema_meta (b->schema)];
    if (n == 0)
        return s_set_bytes (c, b->cap, r, NULL, 0);
    qv_wr_reset (w);
    qv_wr_map (w, n);
    for (size_t i = 0; i < n; i++) {
        qv_wr_val (w, keys [i]);
        qv_wr_val (w, vals [i]);
    }
    size_t size;
    const void *data = qv_wr_data (w, &size);
    return s_set_bytes (c, b->cap, r, data, size);
}

static int
s_from_rows (qv_batch_t *b, const qv_val_t *rows)
{
    const qv_schema_t *schema = b->schema;
    int meta = qv_schema_meta (schema);
    const qv_val_t **keys = NULL, **vals = NULL;
    qv_wr_t *w = NULL;
    int rc = 0;
    for (uint32_t r = 0; r < b->cap && !rc; r++) {
        const qv_val_t *row = qv_val_at (rows, r);
        if (qv_val_type (row) != QV_V_MAP) {
            rc = qv_err (QV_EPROTO, "row %u must be a map of field -> value", r);
            break;
        }
        size_t ndyn = 0;
        if (meta >= 0 && !w) {
            w = qv_wr_new ();
            keys = calloc (QV_DYNAMIC_KEYS_MAX, sizeof *keys);
            vals = calloc (QV_DYNAMIC_KEYS_MAX, sizeof *vals);
            if (!w || !keys || !vals) {
                rc = qv_err (QV_ENOMEM, "out of memory");
                break;
            }
        }
        uint64_t seen = 0;
        for (size_t k = 0; k < qv_val_len (row) && !rc; k++) {
            int fi;
            if ((rc = s_key_field (schema, qv_val_key (row, k), &fi)))
                break;
            if (fi == S_DYNAMIC) {
                if (ndyn == QV_DYNAMIC_KEYS_MAX)
                    rc = qv_err (QV_EINVAL, "row %u has more than %d dynamic keys", r, QV_DYNAMIC_KEYS_MAX);
                else {
                    keys [ndyn] = qv_val_key (row, k);
                    vals [ndyn++] = qv_val_value (row, k);
                }
                continue;
            }
            if (seen & (1ull << fi))
                rc = qv_err (QV_EINVAL, "row %u gives field '%s' twice", r, schema->fields [fi].name);
            else
                rc = s_set_value (b, fi, r, qv_val_value (row, k));
            seen |= 1ull << fi;
        }
        if (!rc && meta >= 0) {
            rc = s_set_meta (b, r, keys, vals, ndyn, w);
            seen |= 1ull << meta;
        }
        for (int fi = 0; fi < schema->nfields && !rc; fi++)
            if (!(seen & (1ull << fi)))
                rc = s_set_missing (b, fi, r);
        if (!rc)
            b->n = r + 1;
    }
    free (keys);
    free (vals);
    qv_wr_destroy (&w);
    return rc;
}

static int
s_from_columns (qv_batch_t *b, const qv_val_t *columns, uint32_t n)
{
    const qv_schema_t *schema = b->schema;
    int meta = qv_schema_meta (schema);
    uint64_t seen = 0;
    size_t ndyn = 0;                //  dynamic columns: their indexes in columns
    size_t *dyn = meta >= 0 ? calloc (qv_val_len (columns) + 1, sizeof *dyn) : NULL;
    if (meta >= 0 && !dyn)
        return qv_err (QV_ENOMEM, "out of memory");
    int rc = 0;
    for (size_t k = 0; k < qv_val_len (columns) && !rc; k++) {
        int fi;
        if ((rc = s_key_field (schema, qv_val_key (columns, k), &fi)))
            break;
        const qv_val_t *col = qv_val_value (columns, k);
        if (fi == S_DYNAMIC) {
            const char *name;
            size_t len;
            qv_val_str (qv_val_key (columns, k), &name, &len);
            if (qv_val_type (col) != QV_V_ARRAY)
                rc = qv_err (QV_EPROTO, "column '%.*s' must be a list", (int) (len > 64 ? 64 : len), name);
            else
            if (qv_val_len (col) != n)
                rc = qv_err (QV_EINVAL, "column '%.*s' has %zu values, other columns have %u",
                             (int) (len > 64 ? 64 : len), name, qv_val_len (col), n);
            else
            if (ndyn == QV_DYNAMIC_KEYS_MAX)
                rc = qv_err (QV_EINVAL, "more than %d dynamic columns", QV_DYNAMIC_KEYS_MAX);
            else
                dyn [ndyn++] = k;
            continue;
        }
        const qv_field_t *f = &schema->fields [fi];
        if (seen & (1ull << fi)) {
            rc = qv_err (QV_EINVAL, "column '%s' given twice", f->name);
            break;
        }
        seen |= 1ull << fi;
        if (f->type == QV_FLOAT_VECTOR && qv_val_type (col) == QV_V_BIN) {
            const void *p;
            size_t len;
            qv_val_bin (col, &p, &len);
            if (len != (size_t) n * f->dim * 4) {
                rc = qv_err (QV_EINVAL, "column '%s': bin of %zu bytes, expected %u rows x dim %u x 4 = %zu",
                             f->name, len, n, f->dim, (size_t) n * f->dim * 4);
                break;
            }
            memcpy (b->cols [fi].data, p, len);
            for (size_t d = 0; d < (size_t) n * f->dim && !rc; d++)
                if (!isfinite (((float *) b->cols [fi].data) [d]))
                    rc = qv_err (QV_EINVAL, "column '%s': row %zu has a value that is not finite",
                                 f->name, d / f->dim);
            continue;
        }
        if (qv_val_type (col) != QV_V_ARRAY)
            rc = qv_err (QV_EPROTO, "column '%s' must be a list%s", f->name,
                         f->type == QV_FLOAT_VECTOR ? " of vectors or one bin" : "");
        else
        if (qv_val_len (col) != n)
            rc = qv_err (QV_EINVAL, "column '%s' has %zu values, other columns have %u",
                         f->name, qv_val_len (col), n);
        for (uint32_t r = 0; r < n && !rc; r++)
            rc = s_set_value (b, fi, r, qv_val_at (col, r));
    }
    if (!rc && meta >= 0) {
        //  Row r's `$meta` is {name: column [r]} over the dynamic columns.
        const qv_val_t **keys = calloc (ndyn + 1, sizeof *keys);
        const qv_val_t **vals = calloc (ndyn + 1, sizeof *vals);
        qv_wr_t *w = qv_wr_new ();
        if (!keys || !vals || !w)
            rc = qv_err (QV_ENOMEM, "out of memory");
        for (size_t i = 0; i < ndyn && !rc; i++)
            keys [i] = qv_val_key (columns, dyn [i]);
        for (uint32_t r = 0; r < n && !rc; r++) {
            for (size_t i = 0; i < ndyn; i++)
                vals [i] = qv_val_at (qv_val_value (columns, dyn [i]), r);
            rc = s_set_meta (b, r, keys, vals, ndyn, w);
        }
        seen |= 1ull << meta;
        free (keys);
        free (vals);
        qv_wr_destroy (&w);
    }
    free (dyn);
    for (int fi = 0; fi < schema->nfields && !rc; fi++)
        if (!(seen & (1ull << fi)))
            for (uint32_t r = 0; r < n && !rc; r++)
                rc = s_set_missing (b, fi, r);
    if (!rc)
        b->n = n;
    return rc;
}

int
qv_batch_from_request (const qv_schema_t *schema, const qv_val_t *rows,
                       const qv_val_t *columns, uint32_t max_rows, qv_batch_t **out)
{
    *out = NULL;
    if ((rows != NULL) == (columns != NULL))
        return qv_err (QV_EINVAL, "give either 'rows' or 'columns'");
    uint32_t n = 0;
    if (rows) {
        if (qv_val_type (rows) != QV_V_ARRAY)
            return qv_err (QV_EPROTO, "'rows' must be a list of maps");
        if (qv_val_len (rows) > max_rows)
            return qv_err (QV_ELIMIT, "%zu rows in one request; the limit is %u", qv_val_len (rows), max_rows);
        n = (uint32_t) qv_val_len (rows);
    }
    else {
        if (qv_val_type (columns) != QV_V_MAP)
            return qv_err (QV_EPROTO, "'columns' must be a map of field -> list");
        //  The row count is the first list's length (or a vector bin's / dim).
        for (size_t k = 0; k < qv_val_len (columns); k++) {
            const qv_val_t *col = qv_val_value (columns, k);
            if (qv_val_type (col) == QV_V_ARRAY) {
                if (qv_val_len (col) > max_rows)
                    return qv_err (QV_ELIMIT, "%zu rows in one request; the limit is %u", qv_val_len (col), max_rows);
                n = (uint32_t) qv_val_len (col);
                break;
            }
            int fi = -1;
            const char *s;
            size_t sn;
            if (qv_val_str (qv_val_key (columns, k), &s, &sn) == 0 && sn <= QV_NAME_MAX) {
                char name [QV_NAME_MAX + 1];
                memcpy (name, s, sn);
                name [sn] = 0;
                fi = qv_schema_find (schema, name);
            }
            if (fi >= 0 && schema->fields [fi].type == QV_FLOAT_VECTOR && qv_val_type (col) == QV_V_BIN) {
                size_t len = qv_val_len (col), row_bytes = (size_t) schema->fields [fi].dim * 4;
                if (len % row_bytes)
                    return qv_err (QV_EINVAL, "column '%s': bin of %zu bytes is not a multiple of dim %u x 4",
                                   schema->fields [fi].name, len, schema->fields [fi].dim);
                if (len / row_bytes > max_rows)
                    return qv_err (QV_ELIMIT, "%zu rows in one request; the limit is %u", len / row_bytes, max_rows);
                n = (uint32_t) (len / row_bytes);
                break;
            }
        }
    }
    if (n == 0)
        return qv_err (QV_EINVAL, "the request has no rows");
    qv_batch_t *b = s_batch_new (schema, n, true, false);
    if (!b)
        return qv_err (QV_ENOMEM, "out of memory for %u rows", n);
    int rc = rows ? s_from_rows (b, rows) : s_from_columns (b, columns, n);
    if (rc) {
        qv_batch_destroy (&b);
        return rc;
    }
    *out = b;
    return 0;
}

static const uint8_t s_empty_map [1] = { 0x80 };

//  Batch layout: {"n": rows, "cols": [per field: bin (fixed-width values) or list of
//  str/bin (varchar / json msgpack)], "valid": [per field: nil or bin of n bytes]}.
//  qv_batch_write_but writes the fixed-width column `omit` as an empty bin.
void
qv_batch_write (const qv_batch_t *self, qv_wr_t *w)
{
    qv_batch_write_but (self, w, -1);
}

void
qv_batch_write_but (const qv_batch_t *self, qv_wr_t *w, int omit)
{
    const qv_schema_t *schema = self->schema;
    qv_wr_map (w, 3);
    qv_wr_str (w, "n");
    qv_wr_uint (w, self->n);
    qv_wr_str (w, "cols");
    qv_wr_array (w, (size_t) schema->nfields);
    for (int i = 0; i < schema->nfields; i++) {
        const qv_field_t *f = &schema->fields [i];
        size_t width = qv_field_width (f);
        if (width)
            qv_wr_bin (w, self->cols [i].data, i == omit ? 0 : width * self->n);
        else {
            //  A json slot holding nothing is the empty map, written as one
            const qv_col_t *c = &self->cols [i];
            qv_wr_array (w, self->n);
            for (uint32_t r = 0; r < self->n; r++) {
                const qv_bytes_t *v = qv_col_var (c, r);
                if (f->type == QV_JSON && !v->len && (!c->valid || c->valid [r]))
                    qv_wr_bin (w, s_empty_map, sizeof s_empty_map);
                else
                    qv_wr_bin (w, v->ptr, v->len);
            }
        }
    }
    qv_wr_str (w, "valid");
    qv_wr_array (w, (size_t) schema->nfields);
    for (int i = 0; i < schema->nfields; i++)
        if (self->cols [i].valid)
            qv_wr_bin (w, self->cols [i].valid, self->n);
        else
            qv_wr_nil (w);
}

int
qv_batch_read (const qv_schema_t *schema, const qv_val_t *v, qv_batch_t **out)
{
    return qv_batch_read_but (schema, v, -1, -1, out);
}

int
qv_batch_read_but (const qv_schema_t *schema, const qv_val_t *v, int skip, int omit,
                   qv_batch_t **out)
{
    *out = NULL;
    const qv_val_t *vn = qv_val_get (v, "n");
    const qv_val_t *cols = qv_val_get (v, "cols");
    const qv_val_t *valid = qv_val_get (v, "valid");
    uint64_t n;
    if (!vn || !cols || !valid || qv_val_uint (vn, &n) || n > UINT32_MAX
    ||  qv_val_type (cols) != QV_V_ARRAY || qv_val_len (cols) != (size_t) schema->nfields
    ||  qv_val_type (valid) != QV_V_ARRAY || qv_val_len (valid) != (size_t) schema->nfields)
        return qv_err (QV_ECORRUPT, "batch record does not match its schema");
    //  Check every column's length against n before allocating n rows, so a
    //  corrupted n cannot ask for a huge allocation.
    for (int i = 0; i < schema->nfields; i++) {
        const qv_val_t *c = qv_val_at (cols, (size_t) i), *vv = qv_val_at (valid, (size_t) i);
        size_t width = qv_field_width (&schema->fields [i]);
        bool ok = width ? qv_val_type (c) == QV_V_BIN && qv_val_len (c) == (i == omit ? 0 : width * n)
                        : qv_val_type (c) == QV_V_ARRAY && qv_val_len (c) == n;
        ok = ok && (qv_val_type (vv) == QV_V_NIL
                    || (qv_val_type (vv) == QV_V_BIN && qv_val_len (vv) == n));
        if (!ok)
            return qv_err (QV_ECORRUPT, "batch record does not match its schema");
    }
    qv_batch_t *b = qv_batch_new_sparse (schema, (uint32_t) n);
    if (!b)
        return qv_err (QV_ENOMEM, "out of memory for %llu rows", (unsigned long long) n);
    for (int i = 0; i < schema->nfields; i++) {
        const qv_field_t *f = &schema->fields [i];
        const qv_val_t *c = qv_val_at (cols, (size_t) i);
        size_t width = qv_field_width (f);
        const void *p;
        size_t len;
        if (width) {
            if (qv_val_bin (c, &p, &len) || len != (i == omit ? 0 : width * n))
                goto corrupt;
            if (i != skip && i != omit)
                memcpy (b->cols [i].data, p, len);
        }
        else {
            if (qv_val_type (c) != QV_V_ARRAY || qv_val_len (c) != n)
                goto corrupt;
            for (uint32_t r = 0; r < n; r++) {
                if (qv_val_bin (qv_val_at (c, r), &p, &len))
                    goto corrupt;
                if (f->type == QV_JSON && len == sizeof s_empty_map
                &&  memcmp (p, s_empty_map, len) == 0)
                    continue;       //  held as nothing (a null row's slot holds nothing too)
                if (s_set_bytes (&b->cols [i], b->cap, r, p, len))
                    goto fail;
            }
        }
        const qv_val_t *vv = qv_val_at (valid, (size_t) i);
        if (qv_val_type (vv) != QV_V_NIL) {
            if (qv_val_bin (vv, &p, &len) || len != n)
                goto corrupt;
            b->cols [i].valid = malloc (n ? n : 1);
            if (!b->cols [i].valid)
                goto fail;
            memcpy (b->cols [i].valid, p, n);
        }
    }
    b->n = (uint32_t) n;
    *out = b;
    return 0;
corrupt:
    qv_batch_destroy (&b);
    return qv_err (QV_ECORRUPT, "batch record does not match its schema");
fail:
    qv_batch_destroy (&b);
    return qv_err (QV_ENOMEM, "out of memory");
}

int
qv_batch_copy_row (qv_batch_t *dst, uint32_t dr, qv_batch_t *src, uint32_t sr, bool move)
{
    const qv_schema_t *schema = dst->schema;
    for (int i = 0; i < schema->nfields; i++) {
        const qv_field_t *f = &schema->fields [i];
        size_t width = qv_field_width (f);
        qv_col_t *dc = &dst->cols [i], *sc = &src->cols [i];
        if (width)
            memcpy (dc->data + width * dr, sc->data + width * sr, width);
        else
        if (move && sc->var && (sc->var [sr].ptr || sc->var [sr].len)) {
            if (qv_col_var_alloc (dc, dst->cap))
                return QV_ENOMEM;
            free (dc->var [dr].ptr);
            dc->var [dr] = sc->var [sr];
            qv_col_var_set (dc, dr);
            sc->var [sr].ptr = NULL;
            sc->var [sr].len = 0;
        }
        else
        if (s_set_bytes (dc, dst->cap, dr, qv_col_var (sc, sr)->ptr, qv_col_var (sc, sr)->len))
            return QV_ENOMEM;
        if (sc->valid && !sc->valid [sr]) {
            if (s_set_null (dst, i, dr))
                return QV_ENOMEM;
        }
        else
        if (dc->valid)
            dc->valid [dr] = 1;
    }
    return 0;
}

void
qv_col_write_value (const qv_field_t *f, const qv_col_t *c, uint32_t row, qv_wr_t *w)
{
    if (c->valid && !c->valid [row]) {
        qv_wr_nil (w);
        return;
    }
    switch (f->type) {
        case QV_BOOL: qv_wr_bool (w, c->data [row]); break;
        case QV_INT8: qv_wr_int (w, ((int8_t *) c->data) [row]); break;
        case QV_INT16: qv_wr_int (w, ((int16_t *) c->data) [row]); break;
        case QV_INT32: qv_wr_int (w, ((int32_t *) c->data) [row]); break;
        case QV_INT64: qv_wr_int (w, ((int64_t *) c->data) [row]); break;
        case QV_FLOAT: qv_wr_float (w, ((float *) c->data) [row]); break;
        case QV_DOUBLE: qv_wr_double (w, ((double *) c->data) [row]); break;
        case QV_VARCHAR: qv_wr_strn (w, (const char *) qv_col_var (c, row)->ptr, qv_col_var (c, row)->len); break;
        case QV_JSON:
            if (qv_col_var (c, row)->len)
                qv_wr_raw (w, qv_col_var (c, row)->ptr, qv_col_var (c, row)->len);
            else
                qv_wr_map (w, 0);
            break;
        case QV_FLOAT_VECTOR: {
            const float *v = qv_col_vec (f, c, row);
            qv_wr_array (w, f->dim);
            for (uint32_t d = 0; d < f->dim; d++)
                qv_wr_float (w, v [d]);
            break;
        }
    }
}
