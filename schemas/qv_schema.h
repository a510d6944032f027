//  A collection's schema: its fields, their types and options, parsed and validated once.
#ifndef QV_SCHEMA_H_INCLUDED
#define QV_SCHEMA_H_INCLUDED

#include "qv_codec.h"
#include "qv_metric.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define QV_NAME_MAX 255             //  longest collection / field name
#define QV_DIM_MAX 32768            //  largest vector dimension
#define QV_FIELDS_MAX 64            //  most fields in a schema
#define QV_VARCHAR_DEFAULT_MAX 65535
#define QV_META_FIELD "$meta"       //  hidden json field of a dynamic-field collection

typedef enum {
    QV_BOOL, QV_INT8, QV_INT16, QV_INT32, QV_INT64, QV_FLOAT, QV_DOUBLE,
    QV_VARCHAR, QV_JSON, QV_FLOAT_VECTOR
} qv_type_t;

typedef struct {
    char name [QV_NAME_MAX + 1];
    qv_type_t type;
    uint32_t dim;                   //  float_vector only
    qv_metric_t metric;             //  float_vector only
    uint32_t max_length;            //  varchar only (bytes)
    bool primary;
    bool auto_id;
    bool nullable;
    bool partition_key;
    bool dynamic;                   //  the hidden `$meta` json field (always the last)
    void *default_raw;              //  msgpack bytes of `default`, or NULL
    size_t default_size;
} qv_field_t;

typedef struct {
    int nfields;
    qv_field_t fields [QV_FIELDS_MAX];
    int pk;                         //  index of the primary key field
    int vec;                        //  index of the first float_vector field
} qv_schema_t;

//  Parses a `fields` list (PROTOCOL.md field maps) into a new schema. Returns NULL with
//  *rc_p = QV_EPROTO (wrong msgpack type) or QV_EINVAL (bad schema), message naming the
//  field.
qv_schema_t *
    qv_schema_parse (const qv_val_t *fields, int *rc_p);
void
    qv_schema_destroy (qv_schema_t **self_p);
qv_schema_t *
    qv_schema_dup (const qv_schema_t *self);

//  Writes the field list as PROTOCOL.md field maps (parse(write(s)) == s). The hidden
//  `$meta` field of a dynamic-field collection is written as {"name": "$meta", "type":
//  "json", "dynamic": true}: that is how the WAL, segments and catalog keep it.
void
    qv_schema_write (const qv_schema_t *self, qv_wr_t *w);
//  Same, without the hidden `$meta` field: the fields a user declared (describe).
void
    qv_schema_write_user (const qv_schema_t *self, qv_wr_t *w);

//  Index of the hidden `$meta` field (enable_dynamic_field), or -1.
static inline int
qv_schema_meta (const qv_schema_t *self)
{
    return self->nfields > 0 && self->fields [self->nfields - 1].dynamic ? self->nfields - 1 : -1;
}

//  Appends the hidden `$meta` field: QV_EINVAL if the schema already has QV_FIELDS_MAX
//  fields, naming the limit.
int
    qv_schema_add_meta (qv_schema_t *self);

//  Index of the named field, or -1.
int
    qv_schema_find (const qv_schema_t *self, const char *name);

//  Bytes per value of a fixed-width type (vector: dim * 4); 0 for varchar and json.
size_t
    qv_field_width (const qv_field_t *field);
const char *
    qv_type_name (qv_type_t type);
bool
    qv_name_valid (const char *name, size_t len);
//  0 if name is valid, else QV_EINVAL with a message naming what (e.g. "partition")
//  and showing the name, its stray bytes escaped (\xNN).
int
    qv_name_check (const char *what, const char *name, size_t len);

#endif
