//  qvctl's command toolkit: requests, option parsing, reply readers (see qv_ctl.h).
#include "qv_ctl.h"
#include "qv_ctl_io.h"
#include "qv_rc.h"

#include <czmq.h>
#include <math.h>

static qv_ctl_t *s_context;         //  the running command: its client is closed before exit

void
qv_ctl_begin (qv_ctl_t *ctx)
{
    s_context = ctx;
}

// ---------------------------------------------------------------------------------
//  Reading replies: a field may be absent (NULL), which the codec's readers do not take.

//  Element count of a list or map; 0 when absent or anything else.
size_t
qv_ctl_len (const qv_val_t *v)
{
    return v && (qv_val_type (v) == QV_V_ARRAY || qv_val_type (v) == QV_V_MAP) ? qv_val_len (v) : 0;
}

bool
qv_ctl_get_bool (const qv_val_t *map, const char *key)
{
    const qv_val_t *v = qv_val_get (map, key);
    bool b = false;
    if (v)
        qv_val_bool (v, &b);
    return b;
}

uint64_t
qv_ctl_get_uint (const qv_val_t *map, const char *key)
{
    const qv_val_t *v = qv_val_get (map, key);
    uint64_t u = 0;
    if (v)
        qv_val_uint (v, &u);
    return u;
}

//  Copies a str field into out; leaves out as it is when absent or not a str.
void
qv_ctl_get_str (const qv_val_t *map, const char *key, char *out, size_t size)
{
    const qv_val_t *v = qv_val_get (map, key);
    if (v)
        qv_val_strcpy (v, out, size);
}

// ---------------------------------------------------------------------------------
//  Output helpers

//  Prints every field of a reply but ok and rid: one "key: value" per line, or with
//  --output json as one JSON object.
void
qv_ctl_print_fields (const qv_val_t *reply)
{
    if (s_context && s_context->json) {
        putchar ('{');
        bool first = true;
        for (size_t i = 0; i < qv_val_len (reply); i++) {
            const qv_val_t *key = qv_val_key (reply, i);
            if (qv_val_is (key, "ok") || qv_val_is (key, "rid"))
                continue;
            printf ("%s", first ? "" : ", ");
            first = false;
            qv_ctl_print_json (stdout, key);
            fputs (": ", stdout);
            qv_ctl_print_json (stdout, qv_val_value (reply, i));
        }
        puts ("}");
        return;
    }
    for (size_t i = 0; i < qv_val_len (reply); i++) {
        const qv_val_t *key = qv_val_key (reply, i);
        if (qv_val_is (key, "ok") || qv_val_is (key, "rid"))
            continue;
        const char *s;
        size_t n;
        if (qv_val_str (key, &s, &n) == 0)
            printf ("%.*s: ", (int) n, s);
        qv_ctl_print_json (stdout, qv_val_value (reply, i));
        putchar ('\n');
    }
}

//  Prints rows (a list of maps): one JSON map a line, or with --output json one JSON
//  array.
void
qv_ctl_print_rows (qv_ctl_t *ctx, const qv_val_t *rows)
{
    if (ctx->json) {
        if (rows)
            qv_ctl_print_json (stdout, rows);
        else
            fputs ("[]", stdout);
        putchar ('\n');
        return;
    }
    for (size_t i = 0; i < qv_ctl_len (rows); i++) {
        qv_ctl_print_json (stdout, qv_val_at (rows, i));
        putchar ('\n');
    }
}

// ---------------------------------------------------------------------------------
//  Requests

void
qv_ctl_long_timeout (qv_ctl_t *ctx)
{
    qv_client_set_timeout (ctx->client, ctx->timeout_ms ? ctx->timeout_ms : QV_CTL_LONG_TIMEOUT_MS);
}

//  Sends a request and reports a failure on stderr; 0 or the code. The caller owns
//  *reply on success.
int
qv_ctl_call (qv_ctl_t *ctx, qv_wr_t **request_p, qv_doc_t **reply)
{
    int rc = qv_client_call (ctx->client, *request_p, reply);
    qv_wr_destroy (request_p);
    if (rc) {
        if (rc == QV_ETIMEOUT || rc == QV_EUNAVAIL || streq (qv_client_code (ctx->client), "MALFORMED"))
            fprintf (stderr, "qvctl: %s\n", qv_client_error (ctx->client));
        else
            fprintf (stderr, "qvctl: %s: %s\n", qv_client_code (ctx->client),
                     qv_client_error (ctx->client));
        if (ctx->json) {
            const char *code = qv_client_code (ctx->client), *error = qv_client_error (ctx->client);
            printf ("{\"ok\": false, \"code\": ");
            qv_ctl_print_str (stdout, code, strlen (code));
            printf (", \"error\": ");
            qv_ctl_print_str (stdout, error, strlen (error));
            puts ("}");
        }
        qv_doc_destroy (reply);
    }
    return rc;
}

int
qv_ctl_list_collections (qv_ctl_t *ctx, qv_doc_t **reply, const qv_val_t **names)
{
    qv_wr_t *w = qv_client_request (ctx->client, "list_collections", 0, NULL);
    int rc = qv_ctl_call (ctx, &w, reply);
    if (rc == 0)
        *names = qv_val_get (qv_doc_root (*reply), "collections");
    return rc;
}

//  Reads the schema of collection name with describe_collection.
int
qv_ctl_describe (qv_ctl_t *ctx, const char *name, qv_ctl_schema_t *schema)
{
    memset (schema, 0, sizeof *schema);
    qv_wr_t *w = qv_client_request (ctx->client, "describe_collection", 1, NULL);
    qv_wr_str (w, "collection");
    qv_wr_str (w, name);
    qv_doc_t *reply;
    int rc = qv_ctl_call (ctx, &w, &reply);
    if (rc)
        return rc;
    const qv_val_t *fields = qv_val_get (qv_doc_root (reply), "fields");
    for (size_t i = 0; fields && qv_val_type (fields) == QV_V_ARRAY && i < qv_val_len (fields); i++) {
        const qv_val_t *f = qv_val_at (fields, i);
        char type [32] = "";
        qv_ctl_get_str (f, "type", type, sizeof type);
        if (qv_ctl_get_bool (f, "primary")) {
            qv_ctl_get_str (f, "name", schema->pk, sizeof schema->pk);
            schema->pk_varchar = streq (type, "varchar");
            schema->auto_id = qv_ctl_get_bool (f, "auto_id");
        }
        if (streq (type, "float_vector") && !schema->vector [0]) {
            qv_ctl_get_str (f, "name", schema->vector, sizeof schema->vector);
            schema->dim = (uint32_t) qv_ctl_get_uint (f, "dim");
            snprintf (schema->metric, sizeof schema->metric, "L2");
            qv_ctl_get_str (f, "metric", schema->metric, sizeof schema->metric);
        }
    }
    qv_doc_destroy (&reply);
    if (!schema->pk [0] || !schema->vector [0]) {
        fprintf (stderr, "qvctl: collection '%s' has %s\n", name,
                 schema->pk [0] ? "no float_vector field" : "no primary key in its description");
        return QV_EINVAL;
    }
    return 0;
}

//  Writes one primary key given on the command line as the collection expects it.
int
qv_ctl_write_key (const qv_ctl_schema_t *schema, const char *arg, qv_wr_t *w)
{
    if (schema->pk_varchar) {
        qv_wr_str (w, arg);
        return 0;
    }
    char *end;
    errno = 0;
    long long id = strtoll (arg, &end, 10);
    if (errno || end == arg || *end) {
        fprintf (stderr, "qvctl: '%s' is not an integer, and the primary key '%s' is int64\n",
                 arg, schema->pk);
        return QV_EINVAL;
    }
    qv_wr_int (w, id);
    return 0;
}

//  An integer option value in [min, max], or exits with a usage error.
long long
qv_ctl_int_arg (const char *option, const char *arg, long long min, long long max)
{
    char *end;
    errno = 0;
    long long v = strtoll (arg, &end, 10);
    if (errno || end == arg || *end || v < min || v > max) {
        fprintf (stderr, "qvctl: %s needs an integer from %lld to %lld, not '%s'\n",
                 option, min, max, arg);
        if (s_context)
            qv_client_destroy (&s_context->client);
        exit (2);
    }
    return v;
}

//  Splits "a,b,c" into a list written to w.
float *
qv_ctl_vectors_load (const qv_ctl_schema_t *schema, const char *name, const char *path,
                     bool inline_vector, long long limit, uint32_t *rows, int *rc)
{
    uint32_t dim = 0;
    *rows = 1;
    float *vectors = inline_vector ? qv_ctl_vector_parse (path, &dim)
                   : qv_ctl_vectors_read (path, (uint32_t) (limit > UINT32_MAX ? 0 : limit),
                                          &dim, rows);
    if (!vectors) {
        fprintf (stderr, "qvctl: %s\n", qv_err_msg ());
        *rc = QV_EIO;
        return NULL;
    }
    if (dim != schema->dim) {
        fprintf (stderr, "qvctl: %s holds %u-dimensional vectors, but field '%s' of '%s' has "
                 "dim %u\n", path, dim, schema->vector, name, schema->dim);
        free (vectors);
        *rc = QV_EINVAL;
        return NULL;
    }
    return vectors;
}

void
qv_ctl_write_names (const char *csv, qv_wr_t *w)
{
    size_t n = 1;
    for (const char *p = csv; *p; p++)
        n += *p == ',';
    qv_wr_array (w, n);
    const char *p = csv;
    for (size_t i = 0; i < n; i++) {
        const char *comma = strchr (p, ',');
        size_t len = comma ? (size_t) (comma - p) : strlen (p);
        qv_wr_strn (w, p, len);
        p += len + 1;
    }
}

//  The standard option parsing of a command: --help prints usage and exits; an unknown
//  option or a wrong count of arguments is a usage error (exit 2).
void
qv_ctl_usage_error (const char *fmt, const char *arg)
{
    if (s_context)
        qv_client_destroy (&s_context->client);
    fprintf (stderr, "qvctl %s: ", s_context->command);
    fprintf (stderr, fmt, arg);
    fprintf (stderr, "\nUsage: qvctl %.*s\n(qvctl %s --help for more)\n",
             (int) strcspn (s_context->usage, "\n"), s_context->usage, s_context->command);
    exit (2);
}

void
qv_ctl_check_positional (int argc, char **argv, int min, int max)
{
    int n = argc - optind;
    if (n < min)
        qv_ctl_usage_error ("%s", "missing argument");
    if (max >= 0 && n > max)
        qv_ctl_usage_error ("unexpected argument '%s'", argv [optind + max]);
}

int
qv_ctl_getopt (int argc, char **argv, const struct option *opts)
{
    int c = getopt_long (argc, argv, "h", opts, NULL);
    if (c == 'h') {
        printf ("Usage: qvctl %s\n", s_context->usage);
        if (s_context)
            qv_client_destroy (&s_context->client);
        exit (0);
    }
    if (c == '?')
        qv_ctl_usage_error ("%s", "bad option");
    return c;
}

