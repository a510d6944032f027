//  Collection schemas: parsing PROTOCOL.md field maps, validation, and writing them back.
#include "qv_schema.h"
#include "qv_rc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *s_type_names [] = {
    "bool", "int8", "int16", "int32", "int64", "float", "double", "varchar", "json",
    "float_vector"
};

const char *
qv_type_name (qv_type_t type)
{
    return s_type_names [type];
}

size_t
qv_field_width (const qv_field_t *f)
{
    switch (f->type) {
        case QV_BOOL: case QV_INT8: return 1;
        case QV_INT16: return 2;
        case QV_INT32: case QV_FLOAT: return 4;
        case QV_INT64: case QV_DOUBLE: return 8;
        case QV_FLOAT_VECTOR: return (size_t) f->dim * 4;
        default: return 0;
    }
}

bool
qv_name_valid (const char *name, size_t len)
{
    if (len == 0 || len > QV_NAME_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = name [i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'
               || (i > 0 && c >= '0' && c <= '9');
        if (!ok)
            return false;
    }
    return true;
}

int
qv_name_check (const char *what, const char *name, size_t len)
{
    if (qv_name_valid (name, len))
        return 0;
    char shown [64 * 4 + 4];
    size_t at = 0;
    for (size_t i = 0; i < len && i < 64; i++) {
        unsigned char c = (unsigned char) name [i];
        at += (size_t) snprintf (shown + at, sizeof shown - at, c >= 0x20 && c < 0x7f && c != '\\'
                                 ? "%c" : "\\x%02x", c);
    }
    snprintf (shown + at, sizeof shown - at, "%s", len > 64 ? "..." : "");
    return qv_err (QV_EINVAL, "%s name '%s' is not valid: use [A-Za-z_][A-Za-z0-9_]*, at most %d characters",
                   what, shown, QV_NAME_MAX);
}

int
qv_schema_find (const qv_schema_t *self, const char *name)
{
    for (int i = 0; i < self->nfields; i++)
        if (strcmp (self->fields [i].name, name) == 0)
            return i;
    return -1;
}

static int
s_parse_bool (const qv_val_t *m, const char *key, bool *out, const char *field)
{
    const qv_val_t *v = qv_val_get (m, key);
    if (!v)
        return 0;
    if (qv_val_bool (v, out))
        return qv_err (QV_EPROTO, "field '%s': '%s' must be a bool", field, key);
    return 0;
}

static int
s_parse_field (const qv_val_t *m, qv_field_t *f)
{
    static const char *known [] = { "name", "type", "dim", "metric", "max_length", "primary",
                                    "auto_id", "nullable", "default", "partition_key",
                                    "description", "is_primary", "dynamic", NULL };
    if (qv_val_type (m) != QV_V_MAP)
        return qv_err (QV_EPROTO, "each entry of 'fields' must be a map");
    const qv_val_t *v = qv_val_get (m, "name");
    if (!v)
        return qv_err (QV_EINVAL, "a field has no 'name'");
    const char *s;
    size_t n;
    if (qv_val_str (v, &s, &n))
        return qv_err (QV_EPROTO, "field 'name' must be a string");
    bool meta_name = n == strlen (QV_META_FIELD) && memcmp (s, QV_META_FIELD, n) == 0;
    if (!meta_name && !qv_name_valid (s, n))
        return qv_err (QV_EINVAL, "field name '%.*s' is not valid: use [A-Za-z_][A-Za-z0-9_]*, at most %d characters",
                       (int) (n > 64 ? 64 : n), s, QV_NAME_MAX);
    memcpy (f->name, s, n);
    f->name [n] = 0;
    for (size_t i = 0; i < qv_val_len (m); i++) {
        const qv_val_t *k = qv_val_key (m, i);
        bool ok = false;
        for (int j = 0; known [j] && !ok; j++)
            ok = qv_val_is (k, known [j]);
        if (!ok) {
            const char *ks = "?";
            size_t kn = 1;
            qv_val_str (k, &ks, &kn);
            return qv_err (QV_EINVAL, "field '%s': unknown option '%.*s'", f->name, (int) kn, ks);
        }
    }
    v = qv_val_get (m, "type");
    if (!v)
        return qv_err (QV_EINVAL, "field '%s' has no 'type'", f->name);
    if (qv_val_type (v) != QV_V_STR)
        return qv_err (QV_EPROTO, "field '%s': 'type' must be a string", f->name);
    int type = -1;
    for (int t = 0; t <= QV_FLOAT_VECTOR; t++)
        if (qv_val_is (v, s_type_names [t]))
            type = t;
    if (type < 0)
        return qv_err (QV_EINVAL, "field '%s': unknown type; use one of bool, int8, int16, int32, int64, float, double, varchar, json, float_vector", f->name);
    f->type = (qv_type_t) type;
    uint64_t u;
    if (f->type == QV_FLOAT_VECTOR) {
        v = qv_val_get (m, "dim");
        if (!v)
            return qv_err (QV_EINVAL, "vector field '%s' needs 'dim'", f->name);
        if (qv_val_uint (v, &u))
            return qv_err (QV_EPROTO, "field '%s': 'dim' must be a positive integer", f->name);
        if (u < 1 || u > QV_DIM_MAX)
            return qv_err (QV_EINVAL, "field '%s': dim %llu is out of range 1..%d", f->name,
                           (unsigned long long) u, QV_DIM_MAX);
        f->dim = (uint32_t) u;
        f->metric = QV_METRIC_L2;
        v = qv_val_get (m, "metric");
        if (v) {
            char metric [16];
            int src = qv_val_strcpy (v, metric, sizeof metric);
            if (src == QV_EPROTO)
                return qv_err (QV_EPROTO, "field '%s': 'metric' must be a string", f->name);
            int mt = src == 0 ? qv_metric_parse (metric) : -1;
            if (mt < 0)
                return qv_err (QV_EINVAL, "field '%s': unknown metric; use L2, IP or COSINE", f->name);
            f->metric = (qv_metric_t) mt;
        }
    }
    else
    if (qv_val_get (m, "dim") || qv_val_get (m, "metric"))
        return qv_err (QV_EINVAL, "field '%s': 'dim' and 'metric' apply to float_vector fields only", f->name);
    if (f->type == QV_VARCHAR) {
        f->max_length = QV_VARCHAR_DEFAULT_MAX;
        v = qv_val_get (m, "max_length");
        if (v) {
            if (qv_val_uint (v, &u))
                return qv_err (QV_EPROTO, "field '%s': 'max_length' must be a positive integer", f->name);
            if (u < 1 || u > 1048576)
                return qv_err (QV_EINVAL, "field '%s': max_length must be 1..1048576", f->name);
            f->max_length = (uint32_t) u;
        }
    }
    int rc;
    bool is_primary = false;
    if ((rc = s_parse_bool (m, "primary", &f->primary, f->name))
    ||  (rc = s_parse_bool (m, "is_primary", &is_primary, f->name))
    ||  (rc = s_parse_bool (m, "auto_id", &f->auto_id, f->name))
    ||  (rc = s_parse_bool (m, "nullable", &f->nullable, f->name))
    ||  (rc = s_parse_bool (m, "partition_key", &f->partition_key, f->name))
    ||  (rc = s_parse_bool (m, "dynamic", &f->dynamic, f->name)))
        return rc;
    //  `$meta` is the hidden field of enable_dynamic_field, never declared by hand.
    if (f->dynamic && !meta_name)
        return qv_err (QV_EINVAL, "field '%s': 'dynamic' marks the hidden field '%s'; set "
                       "enable_dynamic_field instead", f->name, QV_META_FIELD);
    if (meta_name && (!f->dynamic || f->type != QV_JSON || f->primary || f->partition_key
                      || f->default_raw))
        return qv_err (QV_EINVAL, "field name '%s' is reserved for the dynamic field: set "
                       "enable_dynamic_field instead of declaring it", QV_META_FIELD);
    f->primary = f->primary || is_primary;
    if (f->primary && f->type != QV_INT64 && f->type != QV_VARCHAR)
        return qv_err (QV_EINVAL, "primary field '%s' must be int64 or varchar", f->name);
    if (f->auto_id && !(f->primary && f->type == QV_INT64))
        return qv_err (QV_EINVAL, "field '%s': auto_id applies to an int64 primary key only", f->name);
    if (f->primary && f->nullable)
        return qv_err (QV_EINVAL, "primary field '%s' cannot be nullable", f->name);
    v = qv_val_get (m, "default");
    if (v && qv_val_type (v) != QV_V_NIL) {
        f->default_raw = qv_val_encode (v, &f->default_size);
        if (!f->default_raw)
            return qv_err (QV_ENOMEM, "out of memory");
    }
    return 0;
}

qv_schema_t *
qv_schema_parse (const qv_val_t *fields, int *rc_p)
{
    int rc = 0;
    qv_schema_t *self = calloc (1, sizeof *self);
    if (!self) {
        *rc_p = qv_err (QV_ENOMEM, "out of memory");
        return NULL;
    }
    self->pk = -1;
    self->vec = -1;
    if (qv_val_type (fields) != QV_V_ARRAY) {
        rc = qv_err (QV_EPROTO, "'fields' must be a list of field maps");
        goto fail;
    }
    size_t n = qv_val_len (fields);
    if (n == 0 || n > QV_FIELDS_MAX) {
        rc = qv_err (QV_EINVAL, "a collection needs 1..%d fields, got %zu", QV_FIELDS_MAX, n);
        goto fail;
    }
    for (size_t i = 0; i < n; i++) {
        qv_field_t *f = &self->fields [i];
        self->nfields = (int) i + 1;
        if ((rc = s_parse_field (qv_val_at (fields, i), f)))
            goto fail;
        for (size_t j = 0; j < i; j++)
            if (strcmp (self->fields [j].name, f->name) == 0) {
                rc = qv_err (QV_EINVAL, "field '%s' appears twice", f->name);
                goto fail;
            }
        if (f->primary) {
            if (self->pk >= 0) {
                rc = qv_err (QV_EINVAL, "exactly one primary field is allowed; '%s' and '%s' are both primary",
                             self->fields [self->pk].name, f->name);
                goto fail;
            }
            self->pk = (int) i;
        }
        if (f->type == QV_FLOAT_VECTOR && self->vec < 0)
            self->vec = (int) i;
        if (f->dynamic && i + 1 != n) {
            rc = qv_err (QV_EINVAL, "the dynamic field '%s' must be the last field", f->name);
            goto fail;
        }
    }
    if (self->pk < 0) {
        rc = qv_err (QV_EINVAL, "the schema needs one primary field (int64 or varchar, \"primary\": true)");
        goto fail;
    }
    if (self->vec < 0) {
        rc = qv_err (QV_EINVAL, "the schema needs at least one float_vector field");
        goto fail;
    }
    *rc_p = 0;
    return self;
fail:
    qv_schema_destroy (&self);
    *rc_p = rc;
    return NULL;
}

void
qv_schema_destroy (qv_schema_t **self_p)
{
    if (*self_p) {
        for (int i = 0; i < (*self_p)->nfields; i++)
            free ((*self_p)->fields [i].default_raw);
        free (*self_p);
        *self_p = NULL;
    }
}

qv_schema_t *
qv_schema_dup (const qv_schema_t *self)
{
    qv_schema_t *copy = malloc (sizeof *copy);
    if (!copy)
        return NULL;
    memcpy (copy, self, sizeof *copy);
    for (int i = 0; i < copy->nfields; i++)
        if (self->fields [i].default_raw) {
            copy->fields [i].default_raw = malloc (self->fields [i].default_size);
            memcpy (copy->fields [i].default_raw, self->fields [i].default_raw,
                    self->fields [i].default_size);
        }
    return copy;
}

int
qv_schema_add_meta (qv_schema_t *self)
{
    if (qv_schema_meta (self) >= 0)
        return 0;
    if (self->nfields >= QV_FIELDS_MAX)
        return qv_err (QV_EINVAL, "a collection with enable_dynamic_field has at most %d fields "
                       "(one is the hidden '%s')", QV_FIELDS_MAX - 1, QV_META_FIELD);
    qv_field_t *f = &self->fields [self->nfields++];
    memset (f, 0, sizeof *f);
    snprintf (f->name, sizeof f->name, "%s", QV_META_FIELD);
    f->type = QV_JSON;
    f->dynamic = true;
    return 0;
}

static void
s_write (const qv_schema_t *self, int nfields, qv_wr_t *w)
{
    qv_wr_array (w, (size_t) nfields);
    for (int i = 0; i < nfields; i++) {
        const qv_field_t *f = &self->fields [i];
        size_t n = 2 + (f->type == QV_FLOAT_VECTOR ? 2 : 0) + (f->type == QV_VARCHAR)
                 + f->primary + f->auto_id + f->nullable + f->partition_key
                 + (f->default_raw != NULL) + f->dynamic;
        qv_wr_map (w, n);
        qv_wr_str (w, "name"); qv_wr_str (w, f->name);
        qv_wr_str (w, "type"); qv_wr_str (w, qv_type_name (f->type));
        if (f->type == QV_FLOAT_VECTOR) {
            qv_wr_str (w, "dim"); qv_wr_uint (w, f->dim);
            qv_wr_str (w, "metric"); qv_wr_str (w, qv_metric_name (f->metric));
        }
        if (f->type == QV_VARCHAR) {
            qv_wr_str (w, "max_length"); qv_wr_uint (w, f->max_length);
        }
        if (f->primary) { qv_wr_str (w, "primary"); qv_wr_bool (w, true); }
        if (f->auto_id) { qv_wr_str (w, "auto_id"); qv_wr_bool (w, true); }
        if (f->nullable) { qv_wr_str (w, "nullable"); qv_wr_bool (w, true); }
        if (f->partition_key) { qv_wr_str (w, "partition_key"); qv_wr_bool (w, true); }
        if (f->dynamic) { qv_wr_str (w, "dynamic"); qv_wr_bool (w, true); }
        if (f->default_raw) {
            qv_wr_str (w, "default");
            qv_wr_raw (w, f->default_raw, f->default_size);
        }
    }
}

void
qv_schema_write (const qv_schema_t *self, qv_wr_t *w)
{
    s_write (self, self->nfields, w);
}

void
qv_schema_write_user (const qv_schema_t *self, qv_wr_t *w)
{
    s_write (self, qv_schema_meta (self) >= 0 ? self->nfields - 1 : self->nfields, w);
}
