//  Milvus REST API v2 mapped onto the native protocol (see qv_milvus.h).
#include "qv_milvus_ctx.h"
#include "qv_rc.h"

#include <jansson.h>
#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define S_ANSWERED QV_MILVUS_ANSWERED

typedef qv_milvus_ctx_t s_ctx_t;

//  ---------------------------------------------------------------------------------
//  Replies

static json_t *
s_error_object (int code, const char *message)
{
    return json_pack ("{s:i, s:s}", "code", code, "message", message);
}

char *
qv_milvus_error_json (int code, const char *message)
{
    json_t *o = s_error_object (code, message);
    char *text = json_dumps (o, JSON_COMPACT);
    json_decref (o);
    return text;
}

static int
s_fail (s_ctx_t *c, int code, const char *fmt, ...) __attribute__ ((format (printf, 3, 4)));

//  Sets the reply to an error (the first one wins). Returns S_ANSWERED.
static int
s_vfail (s_ctx_t *c, int code, const char *fmt, va_list ap)
{
    if (c->reply)
        return S_ANSWERED;
    char msg [1024];
    vsnprintf (msg, sizeof msg, fmt, ap);
    c->reply = s_error_object (code, msg);
    return S_ANSWERED;
}

static int
s_fail (s_ctx_t *c, int code, const char *fmt, ...)
{
    va_list ap;
    va_start (ap, fmt);
    s_vfail (c, code, fmt, ap);
    va_end (ap);
    return S_ANSWERED;
}

int
qv_milvus_fail (qv_milvus_ctx_t *c, int code, const char *fmt, ...)
{
    va_list ap;
    va_start (ap, fmt);
    s_vfail (c, code, fmt, ap);
    va_end (ap);
    return S_ANSWERED;
}

//  Sets the reply to {"code": 0, "data": data} (takes data).
static void
s_ok (s_ctx_t *c, json_t *data)
{
    if (!c->reply)
        c->reply = json_pack ("{s:i, s:o}", "code", 0, "data", data ? data : json_object ());
    else
        json_decref (data);
}

//  The Milvus error number for a native error code and message.
static int
s_milvus_code (const char *code, const char *message)
{
    if (!strcmp (code, "INVALID_ARGUMENT") || !strcmp (code, "MALFORMED") || !strcmp (code, "ALREADY_EXISTS"))
        return QV_MILVUS_INVALID;
    if (!strcmp (code, "NOT_FOUND"))
        return !strncmp (message, "partition", 9) ? QV_MILVUS_PART_NOT_FOUND
             : !strncmp (message, "user ", 5) || !strncmp (message, "role ", 5) ? QV_MILVUS_INVALID
             : strstr (message, "no index") ? QV_MILVUS_INDEX_NOT_FOUND
             : QV_MILVUS_COLL_NOT_FOUND;
    if (!strcmp (code, "UNAUTHENTICATED"))
        return QV_MILVUS_NEED_AUTH;
    if (!strcmp (code, "PERMISSION_DENIED"))
        return QV_MILVUS_NOT_PERMITTED;
    if (!strcmp (code, "RESOURCE_EXHAUSTED"))
        return QV_MILVUS_TOO_LARGE;
    if (!strcmp (code, "UNAVAILABLE"))
        return QV_MILVUS_UNAVAILABLE;
    if (!strcmp (code, "TIMEOUT"))
        return QV_MILVUS_TIMEOUT;
    return QV_MILVUS_INTERNAL;
}

//  Milvus's own text for its error numbers, put in front of the native message.
static const char *
s_milvus_text (int code)
{
    switch (code) {
        case QV_MILVUS_UNAVAILABLE: return "service unavailable";
        case QV_MILVUS_COLL_NOT_FOUND: return "collection not found";
        case QV_MILVUS_PART_NOT_FOUND: return "partition not found";
        case QV_MILVUS_INDEX_NOT_FOUND: return "index not found";
        case QV_MILVUS_DB_NOT_FOUND: return "database not found";
        case QV_MILVUS_INVALID: return "invalid parameter";
        case QV_MILVUS_TOO_LARGE: return "parameter too large";
        case QV_MILVUS_NOT_PERMITTED: return "privilege not permitted";
        case QV_MILVUS_NEED_AUTH: return "user hasn't authenticated";
        case QV_MILVUS_BAD_FORMAT: return "can only accept json format request";
        case QV_MILVUS_MISSING: return "missing required parameters";
        case QV_MILVUS_TIMEOUT: return "timeout";
        default: return "service internal error";
    }
}

//  ---------------------------------------------------------------------------------
//  JSON <-> msgpack

static void
s_write_json (qv_wr_t *w, json_t *v)
{
    switch (json_typeof (v)) {
        case JSON_OBJECT: {
            qv_wr_map (w, json_object_size (v));
            for (void *it = json_object_iter (v); it; it = json_object_iter_next (v, it)) {
                qv_wr_strn (w, json_object_iter_key (it), json_object_iter_key_len (it));
                s_write_json (w, json_object_iter_value (it));
            }
            break;
        }
        case JSON_ARRAY:
            qv_wr_array (w, json_array_size (v));
            for (size_t i = 0; i < json_array_size (v); i++)
                s_write_json (w, json_array_get (v, i));
            break;
        case JSON_STRING: qv_wr_strn (w, json_string_value (v), json_string_length (v)); break;
        case JSON_INTEGER: qv_wr_int (w, json_integer_value (v)); break;
        case JSON_REAL: qv_wr_double (w, json_real_value (v)); break;
        case JSON_TRUE: qv_wr_bool (w, true); break;
        case JSON_FALSE: qv_wr_bool (w, false); break;
        default: qv_wr_nil (w); break;
    }
}

//  A number as JSON: a value that is exactly a float32 (distances, vector elements) is
//  written with the fewest digits that give the same float32 back, as Milvus does.
static json_t *
s_real (double d)
{
    if (!isfinite (d))
        return json_null ();
    float f = fabs (d) <= FLT_MAX ? (float) d : 0;
    if (fabs (d) <= FLT_MAX && (double) f == d) {
        char text [32];
        for (int p = 1; p <= 9; p++) {
            snprintf (text, sizeof text, "%.*g", p, d);
            if ((float) strtod (text, NULL) == f)
                return json_real (strtod (text, NULL));
        }
    }
    return json_real (d);
}

static json_t *
s_to_json (const qv_val_t *v)
{
    int64_t i;
    uint64_t u;
    double d;
    const char *s;
    size_t n;
    switch (qv_val_type (v)) {
        case QV_V_BOOL: {
            bool b = false;
            qv_val_bool (v, &b);
            return json_boolean (b);
        }
        case QV_V_INT:
        case QV_V_UINT:
            if (qv_val_int (v, &i) == 0)
                return json_integer (i);
            qv_val_uint (v, &u);
            return json_real ((double) u);
        case QV_V_FLOAT:
            qv_val_double (v, &d);
            return s_real (d);
        case QV_V_STR: {
            qv_val_str (v, &s, &n);
            json_t *o = json_stringn (s, n);
            return o ? o : json_string ("(not UTF-8)");
        }
        case QV_V_ARRAY: {
            json_t *a = json_array ();
            for (size_t k = 0; k < qv_val_len (v); k++)
                json_array_append_new (a, s_to_json (qv_val_at (v, k)));
            return a;
        }
        case QV_V_MAP: {
            json_t *o = json_object ();
            for (size_t k = 0; k < qv_val_len (v); k++)
                if (qv_val_str (qv_val_key (v, k), &s, &n) == 0)
                    json_object_setn_new (o, s, n, s_to_json (qv_val_value (v, k)));
            return o;
        }
        default:
            return json_null ();
    }
}

//  ---------------------------------------------------------------------------------
//  Native calls

//  Sends {"op": op, "token": ..., args...} (args taken) and returns the reply in
//  *reply_p (the caller destroys it). 0 when the reply is ok; S_ANSWERED when it is
//  not (the Milvus error reply is set) or no reply came.
static int
s_call (s_ctx_t *c, const char *op, json_t *args, qv_doc_t **reply_p)
{
    *reply_p = NULL;
    const char *token = c->req->token;
    qv_wr_t *w = qv_client_request (c->req->client, op, json_object_size (args) + (token != NULL), NULL);
    if (token) {
        qv_wr_str (w, "token");
        qv_wr_str (w, token);
    }
    for (void *it = json_object_iter (args); it; it = json_object_iter_next (args, it)) {
        qv_wr_strn (w, json_object_iter_key (it), json_object_iter_key_len (it));
        s_write_json (w, json_object_iter_value (it));
    }
    json_decref (args);
    qv_doc_t *reply = NULL;
    int rc = qv_client_call (c->req->client, w, &reply);
    qv_wr_destroy (&w);
    if (rc == 0) {
        *reply_p = reply;
        return 0;
    }
    const char *code = qv_client_code (c->req->client);
    const char *message = qv_client_error (c->req->client);
    int mc = s_milvus_code (code, message);
    s_fail (c, mc, "%s: %s", s_milvus_text (mc), message);
    qv_doc_destroy (&reply);
    return S_ANSWERED;
}

static const qv_val_t *
s_get (qv_doc_t *reply, const char *key)
{
    return qv_val_get (qv_doc_root (reply), key);
}

//  ---------------------------------------------------------------------------------
//  Request fields

//  The body's key: NULL when absent (or JSON null). *bad is set (and the reply says
//  why) when present with another type than want, or absent when required.
static json_t *
s_field (s_ctx_t *c, const char *key, json_type want, bool required, bool *bad)
{
    json_t *v = json_object_get (c->body, key);
    if (v && json_is_null (v))
        v = NULL;
    if (!v && required) {
        *bad = true;
        s_fail (c, QV_MILVUS_MISSING, "missing required parameters, error: '%s' is required", key);
        return NULL;
    }
    bool ok = !v || json_typeof (v) == want
           || (want == JSON_REAL && json_is_integer (v))
           || (want == JSON_TRUE && json_is_boolean (v));
    if (!ok) {
        static const char *names [] = { "an object", "an array", "a string", "an integer",
                                        "a number", "a bool", "a bool", "null" };
        *bad = true;
        s_fail (c, QV_MILVUS_BAD_FORMAT, "can only accept json format request, error: '%s' must be %s",
                key, names [want]);
        return NULL;
    }
    return v;
}

void
qv_milvus_ok (qv_milvus_ctx_t *c, json_t *data)
{
    s_ok (c, data);
}

int
qv_milvus_call (qv_milvus_ctx_t *c, const char *op, json_t *args, qv_doc_t **reply_p)
{
    return s_call (c, op, args, reply_p);
}

json_t *
qv_milvus_field (qv_milvus_ctx_t *c, const char *key, json_type want, bool required, bool *bad)
{
    return s_field (c, key, want, required, bad);
}

json_t *
qv_milvus_to_json (const qv_val_t *v)
{
    return s_to_json (v);
}

//  Copies body [from] into args [to] when present.
static void
s_copy (json_t *args, const char *to, json_t *v)
{
    if (v)
        json_object_set (args, to, v);
}

//  An integer given as a JSON integer or a string of digits ("128"), as Milvus takes
//  type and index parameters. -1 if it is neither.
static long long
s_int_of (json_t *v)
{
    if (json_is_integer (v))
        return json_integer_value (v);
    if (json_is_string (v)) {
        char *end;
        long long n = strtoll (json_string_value (v), &end, 10);
        if (end != json_string_value (v) && *end == 0)
            return n;
    }
    return -1;
}

//  Milvus consistency level -> native ("Strong" -> "strong"); NULL if unknown.
static const char *
s_consistency (const char *level)
{
    static const char *names [] = { "strong", "bounded", "session", "eventually" };
    for (size_t i = 0; i < 4; i++)
        if (strcasecmp (level, names [i]) == 0)
            return names [i];
    return NULL;
}

//  Adds `consistency` from the body's consistencyLevel. 0 or S_ANSWERED.
static int
s_add_consistency (s_ctx_t *c, json_t *args)
{
    bool bad = false;
    json_t *v = s_field (c, "consistencyLevel", JSON_STRING, false, &bad);
    if (bad)
        return S_ANSWERED;
    if (v && json_string_length (v)) {
        const char *level = s_consistency (json_string_value (v));
        if (!level)
            return s_fail (c, QV_MILVUS_INVALID, "invalid parameter: consistencyLevel can only be "
                           "[Strong, Session, Bounded, Eventually], got '%s'", json_string_value (v));
        json_object_set_new (args, "consistency", json_string (level));
    }
    return 0;
}

//  Starts the native arguments of a request on one collection: {"collection": name}.
//  NULL (reply set) when collectionName is missing or not a string.
static json_t *
s_coll_args (s_ctx_t *c)
{
    bool bad = false;
    json_t *name = s_field (c, "collectionName", JSON_STRING, true, &bad);
    if (bad)
        return NULL;
    return json_pack ("{s:O}", "collection", name);
}

//  ---------------------------------------------------------------------------------
//  Types and names

static const struct { const char *milvus; const char *native; } s_types [] = {
    { "Bool", "bool" }, { "Int8", "int8" }, { "Int16", "int16" }, { "Int32", "int32" },
    { "Int64", "int64" }, { "Float", "float" }, { "Double", "double" },
    { "VarChar", "varchar" }, { "String", "varchar" }, { "JSON", "json" },
    { "FloatVector", "float_vector" }
};

static const char *
s_native_type (const char *milvus)
{
    for (size_t i = 0; i < sizeof s_types / sizeof s_types [0]; i++)
        if (strcasecmp (milvus, s_types [i].milvus) == 0)
            return s_types [i].native;
    return NULL;
}

static const char *
s_milvus_type (const char *native)
{
    for (size_t i = 0; i < sizeof s_types / sizeof s_types [0]; i++)
        if (strcmp (native, s_types [i].native) == 0)
            return s_types [i].milvus;
    return native;
}

//  Native index parameters from Milvus's `params` map (values may be numeric strings):
//  M, efConstruction, nlist, m, nbits; Milvus's own keys that Quiver sets elsewhere
//  (index_type, metric_type) are left out. NULL (reply set) on a bad value.
static json_t *
s_index_params (s_ctx_t *c, json_t *params)
{
    json_t *out = json_object ();
    const char *key;
    json_t *v;
    json_object_foreach (params, key, v) {
        if (!strcmp (key, "index_type") || !strcmp (key, "metric_type"))
            continue;
        long long n = s_int_of (v);
        if (n < 0) {
            json_decref (out);
            s_fail (c, QV_MILVUS_INVALID, "invalid parameter: index parameter '%s' must be a "
                    "non-negative integer", key);
            return NULL;
        }
        json_object_set_new (out, key, json_integer (n));
    }
    return out;
}

//  The native index type for Milvus's indexType on a field of native type ftype:
//  AUTOINDEX (or none) is HNSW on a vector field, INVERTED / STL_SORT on a scalar one.
static const char *
s_index_type (const char *milvus, const char *ftype)
{
    if (milvus && *milvus && strcasecmp (milvus, "AUTOINDEX") != 0)
        return milvus;
    if (!ftype || !strcmp (ftype, "float_vector"))
        return "HNSW";
    return !strcmp (ftype, "float") || !strcmp (ftype, "double") ? "STL_SORT" : "INVERTED";
}

//  Creates the indexes of indexParams (a list of {fieldName, indexName, metricType,
//  indexType, params}) on collection name; fields is the native schema (for AUTOINDEX),
//  or NULL to read it. 0 or S_ANSWERED.
static int
s_create_indexes (s_ctx_t *c, json_t *name, json_t *index_params, json_t *fields)
{
    json_t *own_fields = NULL;
    size_t i;
    json_t *ip;
    json_array_foreach (index_params, i, ip) {
        if (!json_is_object (ip))
            return s_fail (c, QV_MILVUS_BAD_FORMAT, "can only accept json format request, error: "
                           "indexParams[%zu] must be an object", i);
        json_t *field = json_object_get (ip, "fieldName");
        if (!json_is_string (field))
            return s_fail (c, QV_MILVUS_MISSING, "missing required parameters, error: "
                           "indexParams[%zu].fieldName is required", i);
        json_t *type = json_object_get (ip, "indexType");
        json_t *metric = json_object_get (ip, "metricType");
        json_t *params = json_object_get (ip, "params");
        if ((type && !json_is_string (type)) || (metric && !json_is_string (metric))
        ||  (params && !json_is_object (params)))
            return s_fail (c, QV_MILVUS_BAD_FORMAT, "can only accept json format request, error: "
                           "indexParams[%zu]: indexType and metricType are strings, params an object", i);
        //  AUTOINDEX depends on the field's type
        const char *ftype = NULL;
        if (!type || !strcasecmp (json_string_value (type), "AUTOINDEX")) {
            if (!fields && !own_fields) {
                qv_doc_t *r;
                if (s_call (c, "describe_collection", json_pack ("{s:O}", "collection", name), &r))
                    return S_ANSWERED;
                own_fields = s_to_json (s_get (r, "fields"));
                qv_doc_destroy (&r);
            }
            size_t k;
            json_t *f;
            json_array_foreach (fields ? fields : own_fields, k, f)
                if (json_equal (json_object_get (f, "name"), field))
                    ftype = json_string_value (json_object_get (f, "type"));
        }
        json_t *args = json_pack ("{s:O, s:O, s:s}", "collection", name, "field", field,
                                  "index_type", s_index_type (type ? json_string_value (type) : NULL, ftype));
        if (metric && json_string_length (metric))
            json_object_set (args, "metric", metric);
        if (params && json_object_size (params)) {
            json_t *np = s_index_params (c, params);
            if (!np) {
                json_decref (args);
                json_decref (own_fields);
                return S_ANSWERED;
            }
            if (json_object_size (np))
                json_object_set_new (args, "params", np);
            else
                json_decref (np);
        }
        qv_doc_t *r;
        if (s_call (c, "create_index", args, &r)) {
            json_decref (own_fields);
            return S_ANSWERED;
        }
        qv_doc_destroy (&r);
    }
    json_decref (own_fields);
    return 0;
}

//  ---------------------------------------------------------------------------------
//  /collections

//  Native field maps from Milvus's schema.fields; vector metrics come from the
//  index parameters of their field (COSINE when none says). NULL (reply set) on error.
static json_t *
s_schema_fields (s_ctx_t *c, json_t *schema, json_t *index_params)
{
    json_t *fields = json_object_get (schema, "fields");
    json_t *auto_id = json_object_get (schema, "autoID");
    json_t *out = json_array ();
    size_t i;
    json_t *f;
    json_array_foreach (fields, i, f) {
        json_t *name = json_object_get (f, "fieldName");
        json_t *type = json_object_get (f, "dataType");
        if (!json_is_object (f) || !json_is_string (name) || !json_is_string (type)) {
            json_decref (out);
            s_fail (c, QV_MILVUS_MISSING, "missing required parameters, error: schema.fields[%zu] "
                    "needs fieldName and dataType (strings)", i);
            return NULL;
        }
        const char *native = s_native_type (json_string_value (type));
        if (!native) {
            json_decref (out);
            s_fail (c, QV_MILVUS_INVALID, "invalid parameter: field '%s': data type %s is not "
                    "supported by Quiver (Bool, Int8..Int64, Float, Double, VarChar, JSON, FloatVector)",
                    json_string_value (name), json_string_value (type));
            return NULL;
        }
        json_t *nf = json_pack ("{s:O, s:s}", "name", name, "type", native);
        json_t *v;
        if ((v = json_object_get (f, "isPrimary")) && json_is_true (v)) {
            json_object_set_new (nf, "primary", json_true ());
            if (json_is_true (auto_id))
                json_object_set_new (nf, "auto_id", json_true ());
        }
        if ((v = json_object_get (f, "isPartitionKey")) && json_is_true (v))
            json_object_set_new (nf, "partition_key", json_true ());
        if ((v = json_object_get (f, "nullable")) && json_is_true (v))
            json_object_set_new (nf, "nullable", json_true ());
        if ((v = json_object_get (f, "defaultValue")) && !json_is_null (v))
            json_object_set (nf, "default", v);
        json_t *tp = json_object_get (f, "elementTypeParams");
        const char *key;
        json_object_foreach (tp, key, v) {
            long long n = s_int_of (v);
            if ((strcmp (key, "dim") && strcmp (key, "max_length")) || n < 0) {
                json_decref (nf);
                json_decref (out);
                s_fail (c, QV_MILVUS_INVALID, "invalid parameter: field '%s': elementTypeParams "
                        "takes dim and max_length (integers), got '%s'", json_string_value (name), key);
                return NULL;
            }
            json_object_set_new (nf, key, json_integer (n));
        }
        if (!strcmp (native, "float_vector")) {
            const char *metric = "COSINE";
            size_t k;
            json_t *ip;
            json_array_foreach (index_params, k, ip)
                if (json_equal (json_object_get (ip, "fieldName"), name)
                &&  json_is_string (json_object_get (ip, "metricType")))
                    metric = json_string_value (json_object_get (ip, "metricType"));
            json_object_set_new (nf, "metric", json_string (metric));
        }
        json_array_append_new (out, nf);
    }
    return out;
}

static void
s_collections_create (s_ctx_t *c)
{
    json_t *args = s_coll_args (c);
    if (!args)
        return;
    json_t *name = json_object_get (args, "collection");
    bool bad = false;
    json_t *schema = s_field (c, "schema", JSON_OBJECT, false, &bad);
    json_t *index_params = s_field (c, "indexParams", JSON_ARRAY, false, &bad);
    json_t *params = s_field (c, "params", JSON_OBJECT, false, &bad);
    json_t *desc = s_field (c, "description", JSON_STRING, false, &bad);
    json_t *fields = schema ? json_object_get (schema, "fields") : NULL;
    if (fields && !json_is_array (fields))
        s_fail (c, QV_MILVUS_BAD_FORMAT, "can only accept json format request, error: schema.fields must be an array");
    bool quick = !fields || json_array_size (fields) == 0;
    json_t *dim = NULL, *metric = NULL, *id_type = NULL, *auto_id = NULL, *pk_name = NULL, *vec_name = NULL;
    if (quick) {
        dim = s_field (c, "dimension", JSON_INTEGER, true, &bad);
        metric = s_field (c, "metricType", JSON_STRING, false, &bad);
        id_type = s_field (c, "idType", JSON_STRING, false, &bad);
        auto_id = s_field (c, "autoID", JSON_TRUE, false, &bad);
        pk_name = s_field (c, "primaryFieldName", JSON_STRING, false, &bad);
        vec_name = s_field (c, "vectorFieldName", JSON_STRING, false, &bad);
    }
    if (c->reply) {
        json_decref (args);
        return;
    }
    s_copy (args, "description", desc);
    //  params: consistencyLevel, ttlSeconds, shardsNum, partitionsNum, max_length
    const char *key;
    json_t *v;
    json_object_foreach (params, key, v) {
        long long n = s_int_of (v);
        if (!strcmp (key, "consistencyLevel") && json_is_string (v) && s_consistency (json_string_value (v)))
            json_object_set_new (args, "consistency", json_string (s_consistency (json_string_value (v))));
        else
        if (!strcmp (key, "ttlSeconds") && n >= 0)
            json_object_set_new (args, "ttl_seconds", json_integer (n));
        else
        if (!strcmp (key, "shardsNum") && n >= 0)
            json_object_set_new (args, "shards", json_integer (n));
        else
        if (!strcmp (key, "partitionsNum") && n >= 0)
            json_object_set_new (args, "num_partitions", json_integer (n));
        else
        if (!strcmp (key, "max_length") && n >= 0 && quick)
            json_object_set_new (args, "max_length", json_integer (n));
        else
        if (strcmp (key, "mmap.enabled") && strcmp (key, "enableDynamicField")) {
            json_decref (args);
            s_fail (c, QV_MILVUS_INVALID, "invalid parameter: params.%s is not supported here "
                    "(consistencyLevel, ttlSeconds, shardsNum, partitionsNum, max_length)", key);
            return;
        }
    }
    json_t *vector_field = NULL;
    if (quick) {
        //  Milvus's quick setup: id + vector, COSINE, the dynamic field, AUTOINDEX
        json_object_set (args, "dimension", dim);
        json_object_set_new (args, "metric", metric ? json_incref (metric) : json_string ("COSINE"));
        s_copy (args, "primary_field_name", pk_name);
        s_copy (args, "vector_field_name", vec_name);
        s_copy (args, "auto_id", auto_id);
        if (id_type)
            json_object_set_new (args, "id_type", json_string (
                strcasecmp (json_string_value (id_type), "VarChar") == 0 ? "varchar"
                : strcasecmp (json_string_value (id_type), "Int64") == 0 ? "int64"
                : json_string_value (id_type)));
        json_object_set_new (args, "enable_dynamic_field", json_true ());
        vector_field = vec_name ? json_incref (vec_name) : json_string ("vector");
    }
    else {
        json_t *nf = s_schema_fields (c, schema, index_params);
        if (!nf) {
            json_decref (args);
            return;
        }
        json_object_set_new (args, "fields", nf);
        json_t *dyn = json_object_get (schema, "enableDynamicField");
        if (json_is_boolean (dyn))
            json_object_set (args, "enable_dynamic_field", dyn);
    }
    json_t *nfields = json_incref (json_object_get (args, "fields"));
    json_incref (name);
    qv_doc_t *r;
    int rc = s_call (c, "create_collection", args, &r);
    qv_doc_destroy (&r);
    if (rc == 0) {
        //  Indexes: AUTOINDEX on the vector for quick setup, else indexParams. A failed
        //  index creation drops the collection again: the request did not happen.
        json_t *ips = quick ? json_pack ("[{s:O, s:s}]", "fieldName", vector_field, "indexType", "AUTOINDEX")
                            : json_incref (index_params);
        json_t *known = quick ? json_pack ("[{s:O, s:s}]", "name", vector_field, "type", "float_vector")
                              : json_incref (nfields);
        if (ips && s_create_indexes (c, name, ips, known)) {
            json_t *reply = c->reply;
            c->reply = NULL;
            if (s_call (c, "drop_collection", json_pack ("{s:O}", "collection", name), &r) == 0)
                qv_doc_destroy (&r);
            json_decref (c->reply);
            c->reply = reply;
        }
        json_decref (ips);
        json_decref (known);
        s_ok (c, json_object ());
    }
    json_decref (nfields);
    json_decref (name);
    json_decref (vector_field);
}

//  Native describe of the body's collection; NULL (reply set) on failure.
static qv_doc_t *
s_describe (s_ctx_t *c)
{
    json_t *args = s_coll_args (c);
    qv_doc_t *r = NULL;
    if (args)
        s_call (c, "describe_collection", args, &r);
    return r;
}

static void
s_collections_describe (s_ctx_t *c)
{
    qv_doc_t *r = s_describe (c);
    if (!r)
        return;
    json_t *d = s_to_json (qv_doc_root (r));
    qv_doc_destroy (&r);
    json_t *fields = json_array (), *indexes = json_array ();
    bool auto_id = false;
    size_t i;
    json_t *f;
    json_array_foreach (json_object_get (d, "fields"), i, f) {
        json_t *params = json_array ();
        const char *type = json_string_value (json_object_get (f, "type"));
        json_t *v;
        char num [32];
        if ((v = json_object_get (f, "dim"))) {
            snprintf (num, sizeof num, "%lld", (long long) json_integer_value (v));
            json_array_append_new (params, json_pack ("{s:s, s:s}", "key", "dim", "value", num));
        }
        if ((v = json_object_get (f, "max_length"))) {
            snprintf (num, sizeof num, "%lld", (long long) json_integer_value (v));
            json_array_append_new (params, json_pack ("{s:s, s:s}", "key", "max_length", "value", num));
        }
        bool primary = json_is_true (json_object_get (f, "primary"));
        bool fauto = json_is_true (json_object_get (f, "auto_id"));
        auto_id |= primary && fauto;
        json_t *mf = json_pack ("{s:O?, s:s, s:b, s:b, s:b, s:b, s:o, s:s}",
                                "name", json_object_get (f, "name"),
                                "type", s_milvus_type (type ? type : ""),
                                "primaryKey", primary, "autoId", fauto,
                                "partitionKey", json_is_true (json_object_get (f, "partition_key")),
                                "nullable", json_is_true (json_object_get (f, "nullable")),
                                "params", params, "description", "");
        if ((v = json_object_get (f, "default")))
            json_object_set (mf, "defaultValue", v);
        json_array_append_new (fields, mf);
    }
    json_t *ix;
    json_array_foreach (json_object_get (d, "indexes"), i, ix)
        json_array_append_new (indexes, json_pack ("{s:O?, s:O?, s:O?}", "fieldName", json_object_get (ix, "field"),
                                                   "indexName", json_object_get (ix, "field"),
                                                   "metricType", json_object_get (ix, "metric")));
    const char *cons = json_string_value (json_object_get (d, "consistency"));
    char level [16] = "Strong";
    if (cons && *cons) {
        snprintf (level, sizeof level, "%s", cons);
        level [0] = (char) (level [0] - 'a' + 'A');
    }
    json_t *props = json_array ();
    json_int_t ttl = json_integer_value (json_object_get (d, "ttl_seconds"));
    if (ttl) {
        char num [32];
        snprintf (num, sizeof num, "%lld", (long long) ttl);
        json_array_append_new (props, json_pack ("{s:s, s:s}", "key", "collection.ttl.seconds", "value", num));
    }
    s_ok (c, json_pack ("{s:O?, s:O?, s:b, s:o, s:o, s:s, s:O?, s:O?, s:O?, s:s, s:o, s:[]}",
                        "collectionName", json_object_get (d, "collection"),
                        "description", json_object_get (d, "description"),
                        "autoId", auto_id, "fields", fields, "indexes", indexes,
                        "load", "LoadStateLoaded",
                        "shardsNum", json_object_get (d, "shards"),
                        "partitionsNum", json_object_get (d, "num_partitions"),
                        "enableDynamicField", json_object_get (d, "enable_dynamic_field"),
                        "consistencyLevel", level, "properties", props, "aliases"));
    json_decref (d);
}

static void
s_collections_simple (s_ctx_t *c, const char *op)
{
    json_t *args = s_coll_args (c);
    qv_doc_t *r;
    if (args && s_call (c, op, args, &r) == 0) {
        qv_doc_destroy (&r);
        s_ok (c, json_object ());
    }
}

//  alter_properties: {"properties": {"collection.ttl.seconds": N}} (a number or a
//  string of digits, as Milvus takes it) -> alter_collection's ttl_seconds.
static void
s_collections_alter (s_ctx_t *c)
{
    bool bad = false;
    json_t *props = s_field (c, "properties", JSON_OBJECT, true, &bad);
    if (bad)
        return;
    json_t *args = s_coll_args (c);
    if (!args)
        return;
    const char *key;
    json_t *v;
    json_object_foreach (props, key, v) {
        long long ttl = -1;
        if (strcmp (key, "collection.ttl.seconds")) {
            s_fail (c, QV_MILVUS_INVALID, "invalid parameter: property '%s' cannot be altered "
                    "here (Quiver alters collection.ttl.seconds)", key);
            json_decref (args);
            return;
        }
        char *end = NULL;
        if (json_is_integer (v))
            ttl = json_integer_value (v);
        else
        if (json_is_string (v) && json_string_length (v)) {
            ttl = strtoll (json_string_value (v), &end, 10);
            if (*end)
                ttl = -1;
        }
        if (ttl < 0) {
            s_fail (c, QV_MILVUS_INVALID, "invalid parameter: collection.ttl.seconds must be a "
                    "non-negative integer");
            json_decref (args);
            return;
        }
        json_object_set_new (args, "ttl_seconds", json_integer (ttl));
    }
    if (json_object_size (args) == 1) {
        s_fail (c, QV_MILVUS_MISSING, "missing required parameters: properties is empty");
        json_decref (args);
        return;
    }
    qv_doc_t *r;
    if (s_call (c, "alter_collection", args, &r) == 0) {
        qv_doc_destroy (&r);
        s_ok (c, json_object ());
    }
}

static void
s_collections_has (s_ctx_t *c)
{
    json_t *args = s_coll_args (c);
    qv_doc_t *r;
    if (args && s_call (c, "has_collection", args, &r) == 0) {
        bool has = false;
        qv_val_bool (s_get (r, "exists"), &has);
        qv_doc_destroy (&r);
        s_ok (c, json_pack ("{s:b}", "has", has));
    }
}

static void
s_collections_list (s_ctx_t *c)
{
    qv_doc_t *r;
    if (s_call (c, "list_collections", json_object (), &r) == 0) {
        s_ok (c, s_to_json (s_get (r, "collections")));
        qv_doc_destroy (&r);
    }
}

//  load / release / get_load_state: every collection is always in memory; they check
//  that it exists (collection not found otherwise).
static void
s_collections_load (s_ctx_t *c, bool state)
{
    json_t *args = s_coll_args (c);
    qv_doc_t *r;
    if (!args || s_call (c, "has_collection", args, &r))
        return;
    bool exists = false;
    qv_val_bool (s_get (r, "exists"), &exists);
    qv_doc_destroy (&r);
    const char *name = json_string_value (json_object_get (c->body, "collectionName"));
    if (!exists)
        s_fail (c, QV_MILVUS_COLL_NOT_FOUND, "collection not found[collection=%s]", name);
    else
        s_ok (c, state ? json_pack ("{s:s, s:i}", "loadState", "LoadStateLoaded", "loadProgress", 100)
                       : json_object ());
}

//  ---------------------------------------------------------------------------------
//  /entities

static void
s_entities_write (s_ctx_t *c, const char *op)
{
    json_t *args = s_coll_args (c);
    if (!args)
        return;
    bool bad = false;
    json_t *data = json_object_get (c->body, "data");
    if (json_is_object (data))     //  one row on its own, as Milvus takes it too
        json_object_set_new (args, "rows", json_pack ("[O]", data));
    else
    if ((data = s_field (c, "data", JSON_ARRAY, true, &bad)))
        json_object_set (args, "rows", data);
    json_t *part = s_field (c, "partitionName", JSON_STRING, false, &bad);
    if (bad) {
        json_decref (args);
        return;
    }
    if (part && json_string_length (part))
        json_object_set (args, "partition", part);
    qv_doc_t *r;
    if (s_call (c, op, args, &r))
        return;
    json_t *ids = s_to_json (s_get (r, "ids"));
    if (c->req->int64_strings) {
        size_t i;
        json_t *id;
        json_array_foreach (ids, i, id)
            if (json_is_integer (id)) {
                char num [32];
                snprintf (num, sizeof num, "%lld", (long long) json_integer_value (id));
                json_array_set_new (ids, i, json_string (num));
            }
    }
    bool insert = !strcmp (op, "insert");
    s_ok (c, json_pack ("{s:o, s:o}", insert ? "insertCount" : "upsertCount", s_to_json (s_get (r, "count")),
                        insert ? "insertIds" : "upsertIds", ids));
    qv_doc_destroy (&r);
}

//  Integer values of the primary key as strings (Accept-Type-Allow-Int64: false).
static void
s_int64_strings (s_ctx_t *c, json_t *row, const char *key)
{
    json_t *id = json_object_get (row, key);
    if (c->req->int64_strings && json_is_integer (id)) {
        char num [32];
        snprintf (num, sizeof num, "%lld", (long long) json_integer_value (id));
        json_object_set_new (row, key, json_string (num));
    }
}

//  outputFields and partitionNames of query / get / search into args; outputFields
//  defaults to "*" (every field) where Milvus's does. 0 or S_ANSWERED.
static int
s_read_common (s_ctx_t *c, json_t *args, bool star)
{
    bool bad = false;
    json_t *of = s_field (c, "outputFields", JSON_ARRAY, false, &bad);
    json_t *parts = s_field (c, "partitionNames", JSON_ARRAY, false, &bad);
    if (bad)
        return S_ANSWERED;
    if (of && json_array_size (of))
        json_object_set (args, "output_fields", of);
    else
    if (star)
        json_object_set_new (args, "output_fields", json_pack ("[s]", "*"));
    if (parts && json_array_size (parts))
        json_object_set (args, "partitions", parts);
    return s_add_consistency (c, args);
}

static void
s_entities_search (s_ctx_t *c)
{
    json_t *args = s_coll_args (c);
    if (!args)
        return;
    bool bad = false;
    json_t *data = s_field (c, "data", JSON_ARRAY, true, &bad);
    json_t *field = s_field (c, "annsField", JSON_STRING, false, &bad);
    json_t *filter = s_field (c, "filter", JSON_STRING, false, &bad);
    json_t *limit = s_field (c, "limit", JSON_INTEGER, false, &bad);
    json_t *offset = s_field (c, "offset", JSON_INTEGER, false, &bad);
    json_t *sp = s_field (c, "searchParams", JSON_OBJECT, false, &bad);
    json_t *old = s_field (c, "params", JSON_OBJECT, false, &bad);
    json_t *group = s_field (c, "groupingField", JSON_STRING, false, &bad);
    if (!bad && group && json_string_length (group))
        s_fail (c, QV_MILVUS_INVALID, "invalid parameter: grouping search (groupingField) is not supported by Quiver");
    if (c->reply || s_read_common (c, args, false)) {
        json_decref (args);
        return;
    }
    json_object_set (args, "vectors", data);
    if (field && json_string_length (field))
        json_object_set (args, "field", field);
    if (filter && json_string_length (filter))
        json_object_set (args, "filter", filter);
    json_object_set_new (args, "limit", limit ? json_incref (limit) : json_integer (100));
    if (offset && json_integer_value (offset))
        json_object_set (args, "offset", offset);
    //  searchParams.params: ef, nprobe (native params), radius, range_filter; the
    //  top-level `params` of older clients holds radius / range_filter too.
    json_t *p = json_object_get (sp, "params");
    json_t *native = json_object ();
    const char *key;
    json_t *v;
    json_t *lists [2] = { json_is_object (p) ? p : NULL, old };
    for (int l = 0; l < 2; l++)
        json_object_foreach (lists [l], key, v) {
            if ((!strcmp (key, "ef") || !strcmp (key, "nprobe")) && s_int_of (v) >= 0)
                json_object_set_new (native, key, json_integer (s_int_of (v)));
            else
            if ((!strcmp (key, "radius") || !strcmp (key, "range_filter")) && json_is_number (v))
                json_object_set (args, key, v);
            else
            if (!strcmp (key, "radius") || !strcmp (key, "range_filter") || !strcmp (key, "ef")
            ||  !strcmp (key, "nprobe"))
                s_fail (c, QV_MILVUS_INVALID, "invalid parameter: search parameter '%s' must be a number", key);
        }
    if (c->reply) {
        json_decref (native);
        json_decref (args);
        return;
    }
    if (json_object_size (native))
        json_object_set_new (args, "params", native);
    else
        json_decref (native);
    qv_doc_t *r;
    if (s_call (c, "search", args, &r))
        return;
    //  Flattened as Milvus does: every hit of every query in one list, topks per query
    const qv_val_t *results = s_get (r, "results");
    json_t *rows = json_array (), *topks = json_array ();
    for (size_t q = 0; q < qv_val_len (results); q++) {
        const qv_val_t *hits = qv_val_at (results, q);
        json_array_append_new (topks, json_integer ((json_int_t) qv_val_len (hits)));
        for (size_t h = 0; h < qv_val_len (hits); h++) {
            const qv_val_t *hit = qv_val_at (hits, h);
            json_t *row = s_to_json (qv_val_get (hit, "fields"));
            if (!json_is_object (row)) {
                json_decref (row);
                row = json_object ();
            }
            json_object_set_new (row, "id", s_to_json (qv_val_get (hit, "id")));
            json_object_set_new (row, "distance", s_to_json (qv_val_get (hit, "distance")));
            s_int64_strings (c, row, "id");
            json_array_append_new (rows, row);
        }
    }
    qv_doc_destroy (&r);
    s_ok (c, rows);
    json_object_set_new (c->reply, "topks", topks);
}

static void
s_entities_query (s_ctx_t *c)
{
    json_t *args = s_coll_args (c);
    if (!args)
        return;
    bool bad = false;
    json_t *filter = s_field (c, "filter", JSON_STRING, false, &bad);
    json_t *limit = s_field (c, "limit", JSON_INTEGER, false, &bad);
    json_t *offset = s_field (c, "offset", JSON_INTEGER, false, &bad);
    if (bad || s_read_common (c, args, true)) {
        json_decref (args);
        return;
    }
    if (filter && json_string_length (filter))
        json_object_set (args, "filter", filter);
    json_object_set_new (args, "limit", limit ? json_incref (limit) : json_integer (100));
    if (offset && json_integer_value (offset))
        json_object_set (args, "offset", offset);
    qv_doc_t *r;
    if (s_call (c, "query", args, &r))
        return;
    json_t *rows = s_to_json (s_get (r, "rows"));
    qv_doc_destroy (&r);
    s_ok (c, rows);
}

//  The body's `id` (one key or a list) as a list of keys; NULL (reply set) if absent.
static json_t *
s_ids (s_ctx_t *c)
{
    json_t *id = json_object_get (c->body, "id");
    if (!id || json_is_null (id)) {
        s_fail (c, QV_MILVUS_MISSING, "missing required parameters, error: 'id' is required");
        return NULL;
    }
    if (json_is_array (id))
        return json_incref (id);
    if (!json_is_integer (id) && !json_is_string (id)) {
        s_fail (c, QV_MILVUS_BAD_FORMAT, "can only accept json format request, error: 'id' must be "
                "a primary key (integer or string) or a list of them");
        return NULL;
    }
    return json_pack ("[O]", id);
}

static void
s_entities_get (s_ctx_t *c)
{
    json_t *args = s_coll_args (c);
    if (!args)
        return;
    json_t *ids = s_ids (c);
    if (!ids || s_read_common (c, args, true)) {
        json_decref (ids);
        json_decref (args);
        return;
    }
    json_object_del (args, "consistency");      //  get reads the newest state
    json_object_set_new (args, "ids", ids);
    qv_doc_t *r;
    if (s_call (c, "get", args, &r))
        return;
    json_t *rows = s_to_json (s_get (r, "rows"));
    qv_doc_destroy (&r);
    s_ok (c, rows);
}

static void
s_entities_delete (s_ctx_t *c)
{
    json_t *args = s_coll_args (c);
    if (!args)
        return;
    bool bad = false;
    json_t *filter = s_field (c, "filter", JSON_STRING, false, &bad);
    json_t *part = s_field (c, "partitionName", JSON_STRING, false, &bad);
    if (bad) {
        json_decref (args);
        return;
    }
    if (filter && json_string_length (filter))
        json_object_set (args, "filter", filter);
    else {
        json_t *ids = s_ids (c);
        if (!ids) {
            json_decref (args);
            return;
        }
        json_object_set_new (args, "ids", ids);
    }
    if (part && json_string_length (part))
        json_object_set (args, "partition", part);
    qv_doc_t *r;
    if (s_call (c, "delete", args, &r))
        return;
    qv_doc_destroy (&r);
    s_ok (c, json_object ());
}

//  ---------------------------------------------------------------------------------
//  /indexes and /partitions

static void
s_indexes_create (s_ctx_t *c)
{
    json_t *args = s_coll_args (c);
    if (!args)
        return;
    bool bad = false;
    json_t *ips = s_field (c, "indexParams", JSON_ARRAY, true, &bad);
    if (!bad && s_create_indexes (c, json_object_get (args, "collection"), ips, NULL) == 0)
        s_ok (c, json_object ());
    json_decref (args);
}

//  Native args naming the index: Quiver keeps one index per field, named after it.
static json_t *
s_index_args (s_ctx_t *c)
{
    json_t *args = s_coll_args (c);
    bool bad = false;
    json_t *name = args ? s_field (c, "indexName", JSON_STRING, true, &bad) : NULL;
    if (!args || bad) {
        json_decref (args);
        return NULL;
    }
    json_object_set (args, "field", name);
    return args;
}

static void
s_indexes_describe (s_ctx_t *c)
{
    json_t *args = s_index_args (c);
    qv_doc_t *r;
    if (!args || s_call (c, "describe_index", args, &r))
        return;
    json_t *d = s_to_json (qv_doc_root (r));
    qv_doc_destroy (&r);
    const char *state = json_string_value (json_object_get (d, "state"));
    json_int_t total = json_integer_value (json_object_get (d, "total_rows"));
    json_int_t indexed = json_integer_value (json_object_get (d, "indexed_rows"));
    json_t *params = json_object_get (d, "params");
    s_ok (c, json_pack ("[{s:O?, s:O?, s:O?, s:O?, s:I, s:I, s:I, s:s, s:s, s:O?}]",
                        "indexName", json_object_get (c->body, "indexName"),
                        "fieldName", json_object_get (c->body, "indexName"),
                        "indexType", json_object_get (d, "index_type"),
                        "metricType", json_object_get (d, "metric"),
                        "totalRows", total, "indexedRows", indexed, "pendingRows", total - indexed,
                        "indexState", !state ? "" : !strcmp (state, "finished") ? "Finished"
                                    : !strcmp (state, "failed") ? "Failed" : "InProgress",
                        "failReason", "",
                        "params", params));
    json_decref (d);
}

static void
s_indexes_list (s_ctx_t *c)
{
    qv_doc_t *r = s_describe (c);
    if (!r)
        return;
    json_t *names = json_array ();
    const qv_val_t *ix = s_get (r, "indexes");
    for (size_t i = 0; i < qv_val_len (ix); i++)
        json_array_append_new (names, s_to_json (qv_val_get (qv_val_at (ix, i), "field")));
    qv_doc_destroy (&r);
    s_ok (c, names);
}

static void
s_indexes_drop (s_ctx_t *c)
{
    json_t *args = s_index_args (c);
    qv_doc_t *r;
    if (args && s_call (c, "drop_index", args, &r) == 0) {
        qv_doc_destroy (&r);
        s_ok (c, json_object ());
    }
}

static void
s_partitions (s_ctx_t *c, const char *action)
{
    json_t *args = s_coll_args (c);
    if (!args)
        return;
    bool list = !strcmp (action, "list");
    bool bad = false;
    json_t *name = list ? NULL : s_field (c, "partitionName", JSON_STRING, true, &bad);
    if (bad) {
        json_decref (args);
        return;
    }
    qv_doc_t *r;
    if (list || !strcmp (action, "has")) {
        if (s_call (c, "list_partitions", args, &r))
            return;
        json_t *names = s_to_json (s_get (r, "partitions"));
        qv_doc_destroy (&r);
        if (list)
            s_ok (c, names);
        else {
            bool has = false;
            size_t i;
            json_t *p;
            json_array_foreach (names, i, p)
                has |= json_equal (p, name);
            json_decref (names);
            s_ok (c, json_pack ("{s:b}", "has", has));
        }
        return;
    }
    json_object_set (args, "partition", name);
    if (s_call (c, !strcmp (action, "create") ? "create_partition" : "drop_partition", args, &r) == 0) {
        qv_doc_destroy (&r);
        s_ok (c, json_object ());
    }
}

//  ---------------------------------------------------------------------------------
//  Dispatch

int
qv_milvus_handle (const qv_milvus_req_t *req, const char *path, const void *body, size_t size,
                  char **json_out)
{
    s_ctx_t ctx = { req, NULL, NULL };
    s_ctx_t *c = &ctx;
    char category [32] = "", action [32] = "";
    size_t plen = strlen (QV_MILVUS_PREFIX);
    int status = 200;
    if (strncmp (path, QV_MILVUS_PREFIX, plen) != 0
    ||  sscanf (path + plen, "%31[a-z_]/%31[a-z_]", category, action) != 2
    ||  strlen (path + plen) != strlen (category) + 1 + strlen (action))
        status = 404;
    static const char *known [] = {
        "collections/create", "collections/has", "collections/list", "collections/describe",
        "collections/drop", "collections/load", "collections/release", "collections/get_load_state",
        "collections/alter_properties",
        "entities/insert", "entities/upsert", "entities/search", "entities/query", "entities/get",
        "entities/delete", "indexes/create", "indexes/describe", "indexes/drop", "indexes/list",
        "partitions/create", "partitions/drop", "partitions/list", "partitions/has",
        "users/create", "users/drop", "users/update_password", "users/list", "users/describe",
        "users/grant_role", "users/revoke_role", "roles/create", "roles/drop", "roles/list", "roles/describe",
        "roles/grant_privilege", "roles/revoke_privilege", NULL
    };
    char route [70];
    snprintf (route, sizeof route, "%s/%s", category, action);
    bool found = false;
    for (int i = 0; known [i] && status == 200 && !found; i++)
        found = !strcmp (route, known [i]);
    if (!found) {
        char msg [512];
        snprintf (msg, sizeof msg, "no endpoint %.300s: Quiver serves POST %s{collections,entities,"
                  "indexes,partitions,users,roles}/<action> (see the README)", path, QV_MILVUS_PREFIX);
        *json_out = qv_milvus_error_json (404, msg);
        return 404;
    }
    json_error_t jerr;
    //  An empty body is an empty request, as for Milvus's list endpoints
    c->body = size ? json_loadb (body, size, JSON_REJECT_DUPLICATES, &jerr) : json_object ();
    if (!c->body)
        s_fail (c, QV_MILVUS_BAD_FORMAT, "can only accept json format request, error: %s at "
                "line %d, column %d", jerr.text, jerr.line, jerr.column);
    else
    if (!json_is_object (c->body))
        s_fail (c, QV_MILVUS_BAD_FORMAT, "can only accept json format request, error: the body "
                "must be a JSON object");
    else {
        //  One database: `default` (or `_default`, or none)
        json_t *db = json_object_get (c->body, "dbName");
        if (db && !json_is_null (db)
        &&  (!json_is_string (db) || (json_string_length (db) && strcmp (json_string_value (db), "default")
                                      && strcmp (json_string_value (db), "_default"))))
            s_fail (c, QV_MILVUS_DB_NOT_FOUND, "database not found[database=%s]: Quiver has one "
                    "database, 'default'", json_is_string (db) ? json_string_value (db) : "(not a string)");
    }
    if (!c->reply) {
        if (!strcmp (category, "collections")) {
            if (!strcmp (action, "create")) s_collections_create (c);
            else if (!strcmp (action, "has")) s_collections_has (c);
            else if (!strcmp (action, "list")) s_collections_list (c);
            else if (!strcmp (action, "describe")) s_collections_describe (c);
            else if (!strcmp (action, "drop")) s_collections_simple (c, "drop_collection");
            else if (!strcmp (action, "get_load_state")) s_collections_load (c, true);
            else if (!strcmp (action, "alter_properties")) s_collections_alter (c);
            else s_collections_load (c, false);     //  load, release
        }
        else
        if (!strcmp (category, "entities")) {
            if (!strcmp (action, "insert") || !strcmp (action, "upsert")) s_entities_write (c, action);
            else if (!strcmp (action, "search")) s_entities_search (c);
            else if (!strcmp (action, "query")) s_entities_query (c);
            else if (!strcmp (action, "get")) s_entities_get (c);
            else s_entities_delete (c);
        }
        else
        if (!strcmp (category, "indexes")) {
            if (!strcmp (action, "create")) s_indexes_create (c);
            else if (!strcmp (action, "describe")) s_indexes_describe (c);
            else if (!strcmp (action, "list")) s_indexes_list (c);
            else s_indexes_drop (c);
        }
        else
        if (!strcmp (category, "users"))
            qv_milvus_users (c, action);
        else
        if (!strcmp (category, "roles"))
            qv_milvus_roles (c, action);
        else
            s_partitions (c, action);
    }
    if (!c->reply)
        s_fail (c, QV_MILVUS_INTERNAL, "service internal error: no reply was made");
    *json_out = json_dumps (c->reply, JSON_COMPACT | JSON_REAL_PRECISION (15));
    json_decref (c->reply);
    json_decref (c->body);
    if (!*json_out)
        *json_out = qv_milvus_error_json (QV_MILVUS_INTERNAL, "service internal error: the reply could not be encoded");
    return status;
}
