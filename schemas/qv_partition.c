//  Partitions: partition-key validation and the row-to-partition hash.
#include "qv_partition.h"
#include "qv_crc.h"
#include "qv_rc.h"

#include <stdio.h>

static bool
s_key_ok (const qv_schema_t *schema, int i)
{
    const qv_field_t *f = &schema->fields [i];
    return (f->type == QV_INT64 || f->type == QV_VARCHAR) && !f->primary && !f->nullable;
}

int
qv_partition_check_schema (const qv_schema_t *schema)
{
    int found = -1;
    for (int i = 0; i < schema->nfields; i++) {
        const qv_field_t *f = &schema->fields [i];
        if (!f->partition_key)
            continue;
        if (found >= 0)
            return qv_err (QV_EINVAL, "fields '%s' and '%s' are both partition keys; a collection has at most one",
                           schema->fields [found].name, f->name);
        if (!s_key_ok (schema, i))
            return qv_err (QV_EINVAL, "partition key '%s' must be an int64 or varchar field that is "
                           "neither the primary key nor nullable", f->name);
        found = i;
    }
    return 0;
}

int
qv_partition_key_field (const qv_schema_t *schema)
{
    int found = -1;
    for (int i = 0; i < schema->nfields; i++)
        if (schema->fields [i].partition_key) {
            if (found >= 0 || !s_key_ok (schema, i))
                return -1;
            found = i;
        }
    return found;
}

uint32_t
qv_partition_of_int (int64_t value, uint32_t n)
{
    uint64_t u = (uint64_t) value;
    uint8_t le [8];
    for (int i = 0; i < 8; i++)
        le [i] = (uint8_t) (u >> (8 * i));
    return qv_crc32c (le, 8) % n;
}

uint32_t
qv_partition_of_str (const void *bytes, size_t len, uint32_t n)
{
    return qv_crc32c (bytes, len) % n;
}

uint32_t
qv_partition_of_row (const qv_batch_t *b, int field, uint32_t row, uint32_t n)
{
    const qv_col_t *col = &b->cols [field];
    if (b->schema->fields [field].type == QV_INT64)
        return qv_partition_of_int (qv_col_i64 (col, row), n);
    return qv_partition_of_str (qv_col_var (col, row)->ptr, qv_col_var (col, row)->len, n);
}

void
qv_partition_keyed_name (uint32_t i, char *out, size_t size)
{
    snprintf (out, size, "%s_%u", QV_PARTITION_DEFAULT, i);
}
