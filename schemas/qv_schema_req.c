//  The schema a create_collection request asks for: declared fields, or quick setup.
#include "qv_schema_req.h"
#include "qv_rc.h"

#include <strings.h>

//  Quick setup writes the two field maps and lets qv_schema_parse judge them, so a
//  bad name, dimension or metric gets the same message as in a `fields` list.
static qv_schema_t *
s_quick (const qv_req_t *req, int *rc_p)
{
    char pk_name [QV_NAME_MAX + 1] = "id", vec_name [QV_NAME_MAX + 1] = "vector";
    char metric [16] = "L2", id_type [16] = "int64";
    const qv_val_t *v;
    if ((v = req->f [QV_F_primary_field_name]) && qv_val_strcpy (v, pk_name, sizeof pk_name))
        return *rc_p = qv_err (QV_EINVAL, "primary_field_name is longer than %d characters", QV_NAME_MAX), NULL;
    if ((v = req->f [QV_F_vector_field_name]) && qv_val_strcpy (v, vec_name, sizeof vec_name))
        return *rc_p = qv_err (QV_EINVAL, "vector_field_name is longer than %d characters", QV_NAME_MAX), NULL;
    if ((v = req->f [QV_F_metric]) && qv_val_strcpy (v, metric, sizeof metric))
        return *rc_p = qv_err (QV_EINVAL, "unknown metric; use L2, IP or COSINE"), NULL;
    if ((v = req->f [QV_F_id_type]) && qv_val_strcpy (v, id_type, sizeof id_type))
        return *rc_p = qv_err (QV_EINVAL, "id_type must be \"int64\" or \"varchar\""), NULL;
    bool varchar = strcasecmp (id_type, "varchar") == 0;
    if (!varchar && strcasecmp (id_type, "int64") != 0)
        return *rc_p = qv_err (QV_EINVAL, "id_type must be \"int64\" or \"varchar\", got \"%s\"", id_type), NULL;
    if (req->f [QV_F_max_length] && !varchar)
        return *rc_p = qv_err (QV_EINVAL, "max_length applies to a varchar primary key (id_type \"varchar\")"), NULL;
    bool auto_id = false;
    if (req->f [QV_F_auto_id])
        qv_val_bool (req->f [QV_F_auto_id], &auto_id);
    if (auto_id && varchar)
        return *rc_p = qv_err (QV_EINVAL, "auto_id applies to an int64 primary key only"), NULL;
    uint64_t dim = 0, max_length = QV_VARCHAR_DEFAULT_MAX;
    qv_val_uint (req->f [QV_F_dimension], &dim);
    if (req->f [QV_F_max_length])
        qv_val_uint (req->f [QV_F_max_length], &max_length);

    qv_wr_t *w = qv_wr_new ();
    qv_wr_array (w, 2);
    qv_wr_map (w, 3 + varchar + auto_id);
    qv_wr_str (w, "name"); qv_wr_str (w, pk_name);
    qv_wr_str (w, "type"); qv_wr_str (w, varchar ? "varchar" : "int64");
    qv_wr_str (w, "primary"); qv_wr_bool (w, true);
    if (varchar) {
        qv_wr_str (w, "max_length"); qv_wr_uint (w, max_length);
    }
    if (auto_id) {
        qv_wr_str (w, "auto_id"); qv_wr_bool (w, true);
    }
    qv_wr_map (w, 4);
    qv_wr_str (w, "name"); qv_wr_str (w, vec_name);
    qv_wr_str (w, "type"); qv_wr_str (w, "float_vector");
    qv_wr_str (w, "dim"); qv_wr_uint (w, dim);
    qv_wr_str (w, "metric"); qv_wr_str (w, metric);
    size_t size;
    const void *data = qv_wr_data (w, &size);
    qv_doc_t *doc = qv_doc_parse (data, size, 64, rc_p);
    qv_schema_t *schema = doc ? qv_schema_parse (qv_doc_root (doc), rc_p) : NULL;
    qv_doc_destroy (&doc);
    qv_wr_destroy (&w);
    return schema;
}

qv_schema_t *
qv_schema_from_request (const qv_req_t *req, int *rc_p)
{
    static const qv_fid_t quick_only [] = {
        QV_F_dimension, QV_F_metric, QV_F_primary_field_name, QV_F_vector_field_name,
        QV_F_id_type, QV_F_auto_id, QV_F_max_length
    };
    static const char *quick_names [] = {
        "dimension", "metric", "primary_field_name", "vector_field_name", "id_type",
        "auto_id", "max_length"
    };
    const qv_val_t *fields = req->f [QV_F_fields];
    qv_schema_t *schema = NULL;
    bool dynamic;
    if (fields) {
        for (size_t i = 0; i < sizeof quick_only / sizeof quick_only [0]; i++)
            if (req->f [quick_only [i]]) {
                *rc_p = qv_err (QV_EINVAL, "'%s' belongs to quick setup (with 'dimension'); with "
                                "'fields', set it on the field", quick_names [i]);
                return NULL;
            }
        if (!(schema = qv_schema_parse (fields, rc_p)))
            return NULL;
        if (qv_schema_meta (schema) >= 0) {
            *rc_p = qv_err (QV_EINVAL, "field name '%s' is reserved for the dynamic field: set "
                            "enable_dynamic_field instead of declaring it", QV_META_FIELD);
            qv_schema_destroy (&schema);
            return NULL;
        }
        dynamic = false;
    }
    else {
        if (!req->f [QV_F_dimension]) {
            *rc_p = qv_err (QV_EINVAL, "create_collection needs 'fields' (the schema) or "
                            "'dimension' (quick setup: id + vector)");
            return NULL;
        }
        if (!(schema = s_quick (req, rc_p)))
            return NULL;
        dynamic = true;
    }
    if (req->f [QV_F_enable_dynamic_field])
        qv_val_bool (req->f [QV_F_enable_dynamic_field], &dynamic);
    if (dynamic && (*rc_p = qv_schema_add_meta (schema))) {
        qv_schema_destroy (&schema);
        return NULL;
    }
    *rc_p = 0;
    return schema;
}
