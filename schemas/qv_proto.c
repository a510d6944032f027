//  Request decoding against the op/field tables, and reply framing.
#include "qv_proto.h"
#include "qv_rc.h"
#include "qv_schema.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

typedef enum { K_STR, K_UINT, K_NUM, K_BOOL, K_ARRAY, K_MAP, K_ANY, K_VEC } s_kind_t;

static const struct { const char *name; s_kind_t kind; } s_fields [] = {
#define QV_F_ROW(name, kind) { #name, K_##kind },
    QV_FIELDS (QV_F_ROW)
#undef QV_F_ROW
};

static const struct { const char *name; uint64_t req; uint64_t opt; } s_ops [] = {
#define QV_OP_ROW(name, req, opt) { #name, (req), (opt) },
    QV_OPS (QV_OP_ROW)
#undef QV_OP_ROW
};

static const char *s_kind_names [] = {
    "a string", "a non-negative integer", "a number", "a bool", "a list", "a map", "any value",
    "a list of vectors or a bin"
};

const char *
qv_op_name (qv_op_t op)
{
    return s_ops [op].name;
}

static bool
s_kind_ok (s_kind_t kind, const qv_val_t *v)
{
    qv_vtype_t t = qv_val_type (v);
    switch (kind) {
        case K_STR: return t == QV_V_STR;
        case K_UINT: return t == QV_V_UINT;
        case K_NUM: return t == QV_V_UINT || t == QV_V_INT || t == QV_V_FLOAT;
        case K_BOOL: return t == QV_V_BOOL;
        case K_ARRAY: return t == QV_V_ARRAY;
        case K_MAP: return t == QV_V_MAP;
        case K_VEC: return t == QV_V_ARRAY || t == QV_V_BIN;
        default: return true;
    }
}

//  The keys `params` may hold, per op (NULL: any; the op's own code checks them).
static const char *
s_param_keys (int op)
{
    switch (op) {
        case QV_OP_search: return "ef nprobe";
        case QV_OP_create_index: return "M efConstruction nlist m nbits";
        default: return NULL;
    }
}

//  Unknown keys in `params` are refused by name (a typo such as `nprob` must not be
//  ignored silently), and so are NaN and infinite values.
static int
s_check_params (int op, const qv_val_t *params)
{
    const char *allowed = s_param_keys (op);
    for (size_t i = 0; params && i < qv_val_len (params); i++) {
        const qv_val_t *key = qv_val_key (params, i);
        const char *s = "";
        size_t n = 0;
        qv_val_str (key, &s, &n);
        char shown [96];
        qv_utf8_escape (s, n, shown, sizeof shown);
        bool known = allowed == NULL;
        for (const char *a = allowed; a && *a && !known; ) {
            size_t len = strcspn (a, " ");
            known = qv_val_type (key) == QV_V_STR && len == n && memcmp (a, s, n) == 0;
            a += len + (a [len] == ' ');
        }
        if (!known)
            return qv_err (QV_EINVAL, "params has no key '%s' for op '%s'; use %s", shown,
                           s_ops [op].name, allowed);
        double d;
        if (qv_val_type (qv_val_value (params, i)) == QV_V_FLOAT
        &&  qv_val_double (qv_val_value (params, i), &d) == 0 && !isfinite (d))
            return qv_err (QV_EINVAL, "params.%s must be a finite number", shown);
    }
    return 0;
}

static int s_check (qv_req_t *req, const char *op_name, const char *collection);

int
qv_req_parse (const void *data, size_t size, size_t max_elems, qv_req_t *req)
{
    int rc;
    memset (req, 0, sizeof *req);
    req->doc = qv_doc_parse (data, size, max_elems, &rc);
    return req->doc ? s_check (req, NULL, NULL) : rc;
}

int
qv_req_parse_owned (const void *data, size_t size, size_t max_elems,
                    void (*release) (void *owner), void *owner, qv_req_t *req)
{
    int rc;
    memset (req, 0, sizeof *req);
    req->doc = qv_doc_parse_owned (data, size, max_elems, release, owner, &rc);
    return req->doc ? s_check (req, NULL, NULL) : rc;
}

int
qv_req_parse_named (const void *data, size_t size, size_t max_elems, const char *op,
                    const char *collection, void (*release) (void *owner), void *owner,
                    qv_req_t *req)
{
    int rc;
    memset (req, 0, sizeof *req);
    req->doc = qv_doc_parse_owned (data, size, max_elems, release, owner, &rc);
    return req->doc ? s_check (req, op, collection) : rc;
}

void
qv_req_write_pairs (const qv_req_t *req, qv_wr_t *w, uint64_t skip)
{
    qv_wr_key (w, "op");
    qv_wr_str (w, qv_op_name (req->op));
    if (req->collection [0]) {
        qv_wr_key (w, "collection");
        qv_wr_str (w, req->collection);
    }
    skip |= QV_F (op) | QV_F (collection);
    const qv_val_t *root = qv_doc_root (req->doc);
    for (size_t i = 0; i < qv_val_len (root); i++) {
        const qv_val_t *key = qv_val_key (root, i);
        bool skipped = false;
        for (int f = 0; f < QV_F_COUNT && !skipped; f++)
            skipped = (skip & (1ull << f)) && qv_val_is (key, s_fields [f].name);
        if (skipped)
            continue;
        qv_wr_map_add (w, 1);
        qv_wr_val (w, key);
        qv_wr_val (w, qv_val_value (root, i));
    }
}

//  The checks of qv_req_parse on the decoded req->doc; op_name and collection, if not
//  NULL, are the request's op and collection, named outside the payload (a NATS
//  subject), which may then repeat them only unchanged.
static int
s_check (qv_req_t *req, const char *op_name, const char *collection)
{
    int rc;
    const qv_val_t *root = qv_doc_root (req->doc);
    if (qv_val_type (root) != QV_V_MAP && op_name)
        return qv_err (QV_EPROTO, "the payload must be a msgpack map (the %s request without "
                       "'op' and 'collection'), got %s", op_name, qv_vtype_name (qv_val_type (root)));
    if (qv_val_type (root) != QV_V_MAP)
        return qv_err (QV_EPROTO, "a request must be a msgpack map, got %s",
                       qv_vtype_name (qv_val_type (root)));
    //  First pass: find every known field (rid included, so errors can echo it);
    //  a key that is not a string is refused once the whole map has been seen.
    bool bad_key = false;
    for (size_t i = 0; i < qv_val_len (root); i++) {
        const qv_val_t *key = qv_val_key (root, i);
        if (qv_val_type (key) != QV_V_STR) {
            bad_key = true;
            continue;
        }
        int fid = -1;
        for (int f = 0; f < QV_F_COUNT && fid < 0; f++)
            if (qv_val_is (key, s_fields [f].name))
                fid = f;
        if (fid >= 0)
            req->f [fid] = qv_val_value (root, i);
    }
    if (bad_key)
        return qv_err (QV_EPROTO, "request keys must be strings");
    //  Invalid UTF-8 or a key given twice (`{op: "ping", op: "drop_collection"}` must
    //  not run the last one): MALFORMED, and a `rid` that breaks the rules is not echoed.
    if (req->f [QV_F_rid] && qv_val_check_strict (req->f [QV_F_rid]))
        req->f [QV_F_rid] = NULL;
    if ((rc = qv_val_check_strict (root)))
        return rc;
    const qv_val_t *op = req->f [QV_F_op];
    if (op_name) {
        if ((op && !qv_val_is (op, op_name))
        ||  (req->f [QV_F_collection] && !qv_val_is (req->f [QV_F_collection], collection)))
            return qv_err (QV_EINVAL, "the payload's '%s' disagrees with the subject (%s); omit it",
                           op && !qv_val_is (op, op_name) ? "op" : "collection",
                           op && !qv_val_is (op, op_name) ? op_name : collection);
    }
    else
    if (!op)
        return qv_err (QV_EINVAL, "the request has no 'op'");
    else
    if (qv_val_type (op) != QV_V_STR)
        return qv_err (QV_EPROTO, "'op' must be a string");
    int opi = -1;
    for (int o = 0; o < QV_OP_COUNT && opi < 0; o++)
        if (op_name ? strcmp (op_name, s_ops [o].name) == 0 : qv_val_is (op, s_ops [o].name))
            opi = o;
    if (opi < 0 && op_name)
        return qv_err (QV_EINVAL, "unknown op '%s'", op_name);
    if (opi < 0) {
        const char *s;
        size_t n;
        char shown [96];
        qv_val_str (op, &s, &n);
        qv_utf8_escape (s, n, shown, sizeof shown);
        return qv_err (QV_EINVAL, "unknown op '%s'", shown);
    }
    req->op = (qv_op_t) opi;
    uint64_t allowed = s_ops [opi].req | s_ops [opi].opt | QV_F_COMMON;
    for (size_t i = 0; i < qv_val_len (root); i++) {
        const qv_val_t *key = qv_val_key (root, i);
        const char *s;
        size_t n;
        qv_val_str (key, &s, &n);
        int fid = -1;
        for (int f = 0; f < QV_F_COUNT && fid < 0; f++)
            if (qv_val_is (key, s_fields [f].name))
                fid = f;
        if (fid < 0 || !(allowed & (1ull << fid))) {
            char shown [96];
            qv_utf8_escape (s, n, shown, sizeof shown);
            return qv_err (QV_EINVAL, "op '%s' has no field '%s'", s_ops [opi].name, shown);
        }
        const qv_val_t *v = qv_val_value (root, i);
        if (!s_kind_ok (s_fields [fid].kind, v))
            return qv_err (QV_EPROTO, "field '%s' must be %s", s_fields [fid].name,
                           s_kind_names [s_fields [fid].kind]);
        double d;
        if (s_fields [fid].kind == K_NUM && qv_val_double (v, &d) == 0 && !isfinite (d))
            return qv_err (QV_EINVAL, "field '%s' must be a finite number, not %s",
                           s_fields [fid].name, isnan (d) ? "NaN" : "infinity");
    }
    if ((rc = s_check_params (opi, req->f [QV_F_params])))
        return rc;
    uint64_t ttl;
    if (req->f [QV_F_ttl_seconds] && qv_val_uint (req->f [QV_F_ttl_seconds], &ttl) == 0
    &&  ttl > QV_TTL_MAX_SECONDS)
        return qv_err (QV_EINVAL, "ttl_seconds must be at most %llu (100 years), got %llu",
                       (unsigned long long) QV_TTL_MAX_SECONDS, (unsigned long long) ttl);
    if (req->f [QV_F_consistency]) {
        const char *s;
        size_t n;
        qv_val_str (req->f [QV_F_consistency], &s, &n);
        if (!((n == 6 && memcmp (s, "strong", 6) == 0) || (n == 7 && memcmp (s, "bounded", 7) == 0)
           || (n == 7 && memcmp (s, "session", 7) == 0) || (n == 10 && memcmp (s, "eventually", 10) == 0)))
            return qv_err (QV_EINVAL, "consistency must be strong, bounded, session or eventually");
    }
    uint64_t named = op_name ? QV_F (op) | QV_F (collection) : 0;
    for (int f = 0; f < QV_F_COUNT; f++)
        if ((s_ops [opi].req & (1ull << f) & ~named) && !req->f [f])
            return qv_err (QV_EINVAL, "op '%s' needs field '%s'", s_ops [opi].name, s_fields [f].name);
    if (op_name) {
        if ((rc = qv_name_check ("collection", collection, strlen (collection))))
            return rc;
        snprintf (req->collection, sizeof req->collection, "%s", collection);
    }
    else
    if (req->f [QV_F_collection]) {
        const char *s;
        size_t n;
        qv_val_str (req->f [QV_F_collection], &s, &n);
        //  A privilege is granted on one collection or on all ("*")
        bool every = n == 1 && *s == '*'
                  && (req->op == QV_OP_grant_privilege || req->op == QV_OP_revoke_privilege);
        if (!every && (rc = qv_name_check ("collection", s, n)))
            return rc;
        memcpy (req->collection, s, n);
        req->collection [n] = 0;
    }
    //  User and role names follow the rules of collection names
    if (req->f [QV_F_user] || req->f [QV_F_role]) {
        const char *s;
        size_t n;
        if (req->f [QV_F_user]) {
            qv_val_str (req->f [QV_F_user], &s, &n);
            if ((rc = qv_name_check ("user", s, n)))
                return rc;
        }
        if (req->f [QV_F_role]) {
            qv_val_str (req->f [QV_F_role], &s, &n);
            if ((rc = qv_name_check ("role", s, n)))
                return rc;
        }
    }
    //  A partition name with a NUL or other stray bytes must not match the partition
    //  named by its first bytes: it is refused like a bad collection name.
    if (req->f [QV_F_partition]) {
        const char *s;
        size_t n;
        qv_val_str (req->f [QV_F_partition], &s, &n);
        if ((rc = qv_name_check ("partition", s, n)))
            return rc;
    }
    return 0;
}

void
qv_req_free (qv_req_t *req)
{
    qv_doc_destroy (&req->doc);
}

void
qv_reply_ok (qv_wr_t *w, const qv_val_t *rid, size_t nfields)
{
    qv_wr_map (w, 1 + (rid != NULL) + nfields);
    qv_wr_str (w, "ok");
    qv_wr_bool (w, true);
    if (rid) {
        qv_wr_str (w, "rid");
        qv_wr_val (w, rid);
    }
}

void
qv_reply_open (qv_wr_t *w, const qv_val_t *rid)
{
    qv_wr_map_open (w);
    qv_wr_key (w, "ok");
    qv_wr_bool (w, true);
    if (rid) {
        qv_wr_key (w, "rid");
        qv_wr_val (w, rid);
    }
}

void
qv_reply_close (qv_wr_t *w)
{
    qv_wr_map_close (w);
}

void
qv_reply_error (qv_wr_t *w, const qv_val_t *rid, int rc, const char *message)
{
    //  A message never carries bytes a strict msgpack client cannot decode.
    char shown [1024];
    if (!qv_utf8_valid (message, strlen (message))) {
        qv_utf8_escape (message, strlen (message), shown, sizeof shown);
        message = shown;
    }
    if (rid && qv_val_check_strict (rid))
        rid = NULL;
    qv_wr_map (w, 3 + (rid != NULL));
    qv_wr_str (w, "ok");
    qv_wr_bool (w, false);
    if (rid) {
        qv_wr_str (w, "rid");
        qv_wr_val (w, rid);
    }
    qv_wr_str (w, "code");
    qv_wr_str (w, qv_rc_code (rc));
    qv_wr_str (w, "error");
    qv_wr_str (w, message);
}

bool
qv_reply_status (const void *reply, size_t size, char *code, size_t code_size, char *error,
                 size_t error_size)
{
    int rc;
    bool ok = false;
    snprintf (code, code_size, "INTERNAL");
    snprintf (error, error_size, "the reply does not decode");
    qv_doc_t *doc = qv_doc_parse (reply, size, SIZE_MAX, &rc);
    if (doc) {
        const qv_val_t *root = qv_doc_root (doc), *v;
        if ((v = qv_val_get (root, "ok")))
            qv_val_bool (v, &ok);
        if ((v = qv_val_get (root, "code")))
            qv_val_strcpy (v, code, code_size);
        error [0] = 0;
        if ((v = qv_val_get (root, "error"))) {
            const char *s;
            size_t n;
            if (qv_val_str (v, &s, &n) == 0)
                snprintf (error, error_size, "%.*s", (int) n, s);
        }
    }
    qv_doc_destroy (&doc);
    return ok;
}

bool
qv_reply_retryable (const char *code, const char *error)
{
    return !strcmp (code, "UNAVAILABLE") || !strcmp (code, "TIMEOUT") || !strcmp (code, "INTERNAL")
        || (!strcmp (code, "RESOURCE_EXHAUSTED") && strstr (error, "memory"));
}

size_t
qv_req_nq (const qv_req_t *req, uint32_t dim)
{
    const qv_val_t *v = req->f [QV_F_vectors];
    if (!v)
        return 0;
    if (qv_val_type (v) != QV_V_BIN)
        return qv_val_len (v);
    size_t len = qv_val_len (v);
    return dim && len % ((size_t) dim * 4) == 0 ? len / ((size_t) dim * 4) : 0;
}
