//  qvctl: the command-line client of a Quiver server (collections, import, search).
#include "qv_client.h"
#include "qv_ctl_io.h"
#include "qv_codec.h"
#include "qv_rc.h"
#include "qv_vecs.h"

#include <czmq.h>
#include <getopt.h>
#include <math.h>
#include <unistd.h>

#define S_DEFAULT_SERVER "tcp://127.0.0.1:19530"
#define S_LONG_TIMEOUT_MS 120000    //  inserts and searches that may wait on the server

//  What every command gets: the connected client and the server endpoint.
typedef struct {
    qv_client_t *client;
    const char *server;
    int timeout_ms;                 //  --timeout, 0 if not given
    bool json;                      //  --output json: one JSON document on stdout
} s_ctx_t;

//  Operations that may legitimately wait on the server wait longer, unless told.
static void
s_long_timeout (s_ctx_t *ctx);

static s_ctx_t *s_context;          //  its client is closed before a usage error exits

typedef int (s_command_fn) (s_ctx_t *ctx, int argc, char **argv);

typedef struct {
    const char *name;
    s_command_fn *fn;
    const char *usage;              //  first line: synopsis; then the options
} s_command_t;

// ---------------------------------------------------------------------------------
//  Reading replies: a field may be absent (NULL), which the codec's readers do not take.

//  Element count of a list or map; 0 when absent or anything else.
static size_t
s_len (const qv_val_t *v)
{
    return v && (qv_val_type (v) == QV_V_ARRAY || qv_val_type (v) == QV_V_MAP) ? qv_val_len (v) : 0;
}

static bool
s_get_bool (const qv_val_t *map, const char *key)
{
    const qv_val_t *v = qv_val_get (map, key);
    bool b = false;
    if (v)
        qv_val_bool (v, &b);
    return b;
}

static uint64_t
s_get_uint (const qv_val_t *map, const char *key)
{
    const qv_val_t *v = qv_val_get (map, key);
    uint64_t u = 0;
    if (v)
        qv_val_uint (v, &u);
    return u;
}

//  Copies a str field into out; leaves out as it is when absent or not a str.
static void
s_get_str (const qv_val_t *map, const char *key, char *out, size_t size)
{
    const qv_val_t *v = qv_val_get (map, key);
    if (v)
        qv_val_strcpy (v, out, size);
}

// ---------------------------------------------------------------------------------
//  Output helpers

//  Prints every field of a reply but ok and rid: one "key: value" per line, or with
//  --output json as one JSON object.
static void
s_print_fields (const qv_val_t *reply)
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
static void
s_print_rows (s_ctx_t *ctx, const qv_val_t *rows)
{
    if (ctx->json) {
        if (rows)
            qv_ctl_print_json (stdout, rows);
        else
            fputs ("[]", stdout);
        putchar ('\n');
        return;
    }
    for (size_t i = 0; i < s_len (rows); i++) {
        qv_ctl_print_json (stdout, qv_val_at (rows, i));
        putchar ('\n');
    }
}

static int
s_cmp_double (const void *a, const void *b)
{
    double x = *(const double *) a, y = *(const double *) b;
    return x < y ? -1 : x > y;
}

//  The q-quantile (0..1) of n sorted values.
static double
s_quantile (const double *sorted, size_t n, double q)
{
    if (n == 0)
        return 0;
    size_t i = (size_t) ceil (q * (double) n);
    return sorted [i ? i - 1 : 0];
}

// ---------------------------------------------------------------------------------
//  Requests

static void
s_long_timeout (s_ctx_t *ctx)
{
    qv_client_set_timeout (ctx->client, ctx->timeout_ms ? ctx->timeout_ms : S_LONG_TIMEOUT_MS);
}

//  Sends a request and reports a failure on stderr; 0 or the code. The caller owns
//  *reply on success.
static int
s_call (s_ctx_t *ctx, qv_wr_t **request_p, qv_doc_t **reply)
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

//  What a command needs to know of a collection's schema.
typedef struct {
    char pk [256];                  //  primary key field name
    bool pk_varchar;
    bool auto_id;
    char vector [256];              //  (first) float_vector field name
    uint32_t dim;
    char metric [16];
} s_schema_t;

//  Reads the schema of collection name with describe_collection.
static int
s_describe (s_ctx_t *ctx, const char *name, s_schema_t *schema)
{
    memset (schema, 0, sizeof *schema);
    qv_wr_t *w = qv_client_request (ctx->client, "describe_collection", 1, NULL);
    qv_wr_str (w, "collection");
    qv_wr_str (w, name);
    qv_doc_t *reply;
    int rc = s_call (ctx, &w, &reply);
    if (rc)
        return rc;
    const qv_val_t *fields = qv_val_get (qv_doc_root (reply), "fields");
    for (size_t i = 0; fields && qv_val_type (fields) == QV_V_ARRAY && i < qv_val_len (fields); i++) {
        const qv_val_t *f = qv_val_at (fields, i);
        char type [32] = "";
        s_get_str (f, "type", type, sizeof type);
        if (s_get_bool (f, "primary")) {
            s_get_str (f, "name", schema->pk, sizeof schema->pk);
            schema->pk_varchar = streq (type, "varchar");
            schema->auto_id = s_get_bool (f, "auto_id");
        }
        if (streq (type, "float_vector") && !schema->vector [0]) {
            s_get_str (f, "name", schema->vector, sizeof schema->vector);
            schema->dim = (uint32_t) s_get_uint (f, "dim");
            snprintf (schema->metric, sizeof schema->metric, "L2");
            s_get_str (f, "metric", schema->metric, sizeof schema->metric);
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
static int
s_write_key (const s_schema_t *schema, const char *arg, qv_wr_t *w)
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
static long long
s_int_arg (const char *option, const char *arg, long long min, long long max)
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
static void
s_write_names (const char *csv, qv_wr_t *w)
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
static const s_command_t *s_current;

static void
s_usage_error (const char *fmt, const char *arg)
{
    if (s_context)
        qv_client_destroy (&s_context->client);
    fprintf (stderr, "qvctl %s: ", s_current->name);
    fprintf (stderr, fmt, arg);
    fprintf (stderr, "\nUsage: qvctl %.*s\n(qvctl %s --help for more)\n",
             (int) strcspn (s_current->usage, "\n"), s_current->usage, s_current->name);
    exit (2);
}

static void
s_check_positional (int argc, char **argv, int min, int max)
{
    int n = argc - optind;
    if (n < min)
        s_usage_error ("%s", "missing argument");
    if (max >= 0 && n > max)
        s_usage_error ("unexpected argument '%s'", argv [optind + max]);
}

static int
s_getopt (int argc, char **argv, const struct option *opts)
{
    int c = getopt_long (argc, argv, "h", opts, NULL);
    if (c == 'h') {
        printf ("Usage: qvctl %s\n", s_current->usage);
        if (s_context)
            qv_client_destroy (&s_context->client);
        exit (0);
    }
    if (c == '?')
        s_usage_error ("%s", "bad option");
    return c;
}

static const struct option s_no_opts [] = {
    { "help", no_argument, 0, 'h' }, { 0, 0, 0, 0 }
};

// ---------------------------------------------------------------------------------
//  Commands

static int
s_cmd_ping (s_ctx_t *ctx, int argc, char **argv)
{
    while (s_getopt (argc, argv, s_no_opts) != -1)
        ;
    s_check_positional (argc, argv, 0, 0);
    qv_wr_t *w = qv_client_request (ctx->client, "ping", 0, NULL);
    int64_t start = qv_clock_usec ();
    qv_doc_t *reply;
    int rc = s_call (ctx, &w, &reply);
    if (rc)
        return rc;
    char version [64] = "?";
    s_get_str (qv_doc_root (reply), "version", version, sizeof version);
    if (ctx->json)
        printf ("{\"ok\": true, \"version\": \"%s\", \"ms\": %.3f}\n", version,
                (qv_clock_usec () - start) / 1000.0);
    else
        printf ("ok: %s answers %s in %.2f ms\n", ctx->server, version,
                (qv_clock_usec () - start) / 1000.0);
    qv_doc_destroy (&reply);
    return 0;
}

static int
s_cmd_create (s_ctx_t *ctx, int argc, char **argv)
{
    static const struct option opts [] = {
        { "dim", required_argument, 0, 'd' }, { "metric", required_argument, 0, 'm' },
        { "auto-id", no_argument, 0, 'a' }, { "varchar-pk", no_argument, 0, 'v' },
        { "shards", required_argument, 0, 's' }, { "help", no_argument, 0, 'h' },
        { 0, 0, 0, 0 }
    };
    long long dim = 0, shards = 0;
    const char *metric = "L2";
    bool auto_id = false, varchar_pk = false;
    int c;
    while ((c = s_getopt (argc, argv, opts)) != -1)
        switch (c) {
            case 'd': dim = s_int_arg ("--dim", optarg, 1, 32768); break;
            case 'm': metric = optarg; break;
            case 'a': auto_id = true; break;
            case 'v': varchar_pk = true; break;
            case 's': shards = s_int_arg ("--shards", optarg, 1, 64); break;
        }
    s_check_positional (argc, argv, 1, 1);
    if (!dim)
        s_usage_error ("%s", "--dim is required");
    if (!streq (metric, "L2") && !streq (metric, "IP") && !streq (metric, "COSINE"))
        s_usage_error ("--metric must be L2, IP or COSINE, not '%s'", metric);
    if (auto_id && varchar_pk)
        s_usage_error ("%s", "--auto-id needs an int64 primary key: drop --varchar-pk");
    const char *name = argv [optind];

    qv_wr_t *w = qv_client_request (ctx->client, "create_collection", 2 + (shards > 0), NULL);
    qv_wr_str (w, "collection");
    qv_wr_str (w, name);
    qv_wr_str (w, "fields");
    qv_wr_array (w, 2);
    qv_wr_map (w, 3 + (auto_id || varchar_pk));
    qv_wr_str (w, "name"); qv_wr_str (w, "id");
    qv_wr_str (w, "type"); qv_wr_str (w, varchar_pk ? "varchar" : "int64");
    qv_wr_str (w, "primary"); qv_wr_bool (w, true);
    if (auto_id) {
        qv_wr_str (w, "auto_id"); qv_wr_bool (w, true);
    }
    if (varchar_pk) {
        qv_wr_str (w, "max_length"); qv_wr_uint (w, 64);
    }
    qv_wr_map (w, 4);
    qv_wr_str (w, "name"); qv_wr_str (w, "vector");
    qv_wr_str (w, "type"); qv_wr_str (w, "float_vector");
    qv_wr_str (w, "dim"); qv_wr_uint (w, (uint64_t) dim);
    qv_wr_str (w, "metric"); qv_wr_str (w, metric);
    if (shards) {
        qv_wr_str (w, "shards");
        qv_wr_uint (w, (uint64_t) shards);
    }
    qv_doc_t *reply;
    int rc = s_call (ctx, &w, &reply);
    if (rc)
        return rc;
    qv_doc_destroy (&reply);
    if (ctx->json)
        printf ("{\"ok\": true, \"collection\": \"%s\"}\n", name);
    else
        printf ("created collection '%s': id %s primary%s, vector float_vector dim %lld %s, "
                "%lld shard%s\n", name, varchar_pk ? "varchar(64)" : "int64",
                auto_id ? " auto_id" : "", dim, metric, shards ? shards : 1, shards > 1 ? "s" : "");
    return 0;
}

//  A command whose request is just {collection: NAME}: drop, flush, describe.
static int
s_simple (s_ctx_t *ctx, int argc, char **argv, const char *op, qv_doc_t **reply)
{
    while (s_getopt (argc, argv, s_no_opts) != -1)
        ;
    s_check_positional (argc, argv, 1, 1);
    qv_wr_t *w = qv_client_request (ctx->client, op, 1, NULL);
    qv_wr_str (w, "collection");
    qv_wr_str (w, argv [optind]);
    return s_call (ctx, &w, reply);
}

static int
s_cmd_drop (s_ctx_t *ctx, int argc, char **argv)
{
    qv_doc_t *reply;
    int rc = s_simple (ctx, argc, argv, "drop_collection", &reply);
    if (rc)
        return rc;
    qv_doc_destroy (&reply);
    if (ctx->json)
        printf ("{\"ok\": true, \"collection\": \"%s\"}\n", argv [optind]);
    else
        printf ("dropped collection '%s'\n", argv [optind]);
    return 0;
}

static int
s_cmd_describe (s_ctx_t *ctx, int argc, char **argv)
{
    qv_doc_t *reply;
    int rc = s_simple (ctx, argc, argv, "describe_collection", &reply);
    if (rc)
        return rc;
    s_print_fields (qv_doc_root (reply));
    qv_doc_destroy (&reply);
    return 0;
}

static int
s_cmd_flush (s_ctx_t *ctx, int argc, char **argv)
{
    s_long_timeout (ctx);
    int64_t start = qv_clock_usec ();
    qv_doc_t *reply;
    int rc = s_simple (ctx, argc, argv, "flush", &reply);
    if (rc)
        return rc;
    const qv_val_t *segments = qv_val_get (qv_doc_root (reply), "segments");
    if (ctx->json)
        printf ("{\"ok\": true, \"seconds\": %.3f, \"segments\": ", (qv_clock_usec () - start) / 1e6);
    else
        printf ("flushed '%s' in %.3f s; flushed segments: ", argv [optind],
                (qv_clock_usec () - start) / 1e6);
    if (segments)
        qv_ctl_print_json (stdout, segments);
    else
    if (ctx->json)
        fputs ("[]", stdout);
    puts (ctx->json ? "}" : "");
    qv_doc_destroy (&reply);
    return 0;
}

static int
s_cmd_list (s_ctx_t *ctx, int argc, char **argv)
{
    while (s_getopt (argc, argv, s_no_opts) != -1)
        ;
    s_check_positional (argc, argv, 0, 0);
    qv_wr_t *w = qv_client_request (ctx->client, "list_collections", 0, NULL);
    qv_doc_t *reply;
    int rc = s_call (ctx, &w, &reply);
    if (rc)
        return rc;
    const qv_val_t *names = qv_val_get (qv_doc_root (reply), "collections");
    if (ctx->json) {
        s_print_fields (qv_doc_root (reply));
        qv_doc_destroy (&reply);
        return 0;
    }
    for (size_t i = 0; i < s_len (names); i++) {
        const char *s;
        size_t n;
        if (qv_val_str (qv_val_at (names, i), &s, &n) == 0)
            printf ("%.*s\n", (int) n, s);
    }
    qv_doc_destroy (&reply);
    return 0;
}

static int
s_cmd_stats (s_ctx_t *ctx, int argc, char **argv)
{
    while (s_getopt (argc, argv, s_no_opts) != -1)
        ;
    s_check_positional (argc, argv, 0, 1);
    bool one = optind < argc;
    qv_wr_t *w = qv_client_request (ctx->client, "stats", one, NULL);
    if (one) {
        qv_wr_str (w, "collection");
        qv_wr_str (w, argv [optind]);
    }
    qv_doc_t *reply;
    int rc = s_call (ctx, &w, &reply);
    if (rc)
        return rc;
    s_print_fields (qv_doc_root (reply));
    qv_doc_destroy (&reply);
    return 0;
}

//  One batch in flight during an import.
typedef struct {
    uint64_t rid;
    size_t start;
    size_t rows;
} s_flight_t;

static void
s_progress (size_t done, size_t total, double secs, bool final)
{
    const int width = 30;
    double frac = total ? (double) done / (double) total : 1;
    int fill = (int) (frac * width);
    char bar [64];
    for (int i = 0; i < width; i++)
        bar [i] = i < fill ? '#' : '.';
    bar [width] = 0;
    fprintf (stderr, "\r[%s] %5.1f%%  %zu/%zu rows  %.0f rows/s %s", bar, frac * 100, done, total,
             secs > 0 ? done / secs : 0.0, final ? "\n" : "");
    fflush (stderr);
}

//  Writes the payload of one write batch, rows [start, start + n), after "collection".
typedef void (s_batch_fn) (qv_wr_t *w, size_t start, size_t n, void *arg);

//  Sends total rows with op (insert, upsert) in batches of `batch` rows, `window`
//  requests in flight, showing progress on stderr. Sets *acked_p to the rows the server
//  acknowledged. Returns 0 or the code of the first failure (reported on stderr).
static int
s_send_batches (s_ctx_t *ctx, const char *op, const char *name, const char *partition,
                size_t total, size_t batch, int window, s_batch_fn *fn, void *arg,
                size_t *acked_p)
{
    s_flight_t *flights = calloc ((size_t) window, sizeof *flights);
    if (!flights) {
        fprintf (stderr, "qvctl: out of memory\n");
        return QV_ENOMEM;
    }
    s_long_timeout (ctx);
    bool tty = isatty (STDERR_FILENO);
    int64_t t0 = qv_clock_usec (), last_shown = 0;
    size_t sent = 0, acked = 0;
    int inflight = 0, rc = 0;
    while (rc == 0 && (sent < total || inflight > 0)) {
        //  Keep the window full, then take one reply.
        while (rc == 0 && sent < total && inflight < window) {
            size_t n = total - sent < batch ? total - sent : batch;
            uint64_t rid;
            qv_wr_t *w = qv_client_request (ctx->client, op, 2 + (partition != NULL), &rid);
            qv_wr_str (w, "collection");
            qv_wr_str (w, name);
            if (partition) {
                qv_wr_str (w, "partition");
                qv_wr_str (w, partition);
            }
            fn (w, sent, n, arg);
            rc = qv_client_send (ctx->client, w);
            qv_wr_destroy (&w);
            if (rc) {
                fprintf (stderr, "\nqvctl: %s\n", qv_client_error (ctx->client));
                break;
            }
            flights [inflight++] = (s_flight_t) { rid, sent, n };
            sent += n;
        }
        if (rc || inflight == 0)
            break;
        qv_doc_t *reply;
        uint64_t rid;
        int rrc = qv_client_recv (ctx->client, &reply, &rid);
        int slot = -1;
        for (int i = 0; i < inflight; i++)
            if (flights [i].rid == rid)
                slot = i;
        if (rrc == 0 && slot < 0) {
            qv_doc_destroy (&reply);
            continue;               //  not one of ours
        }
        if (rrc) {
            if (slot >= 0)
                fprintf (stderr, "\nqvctl: %s of rows %zu..%zu failed: %s: %s\n", op,
                         flights [slot].start, flights [slot].start + flights [slot].rows - 1,
                         qv_client_code (ctx->client), qv_client_error (ctx->client));
            else
                fprintf (stderr, "\nqvctl: %s\n", qv_client_error (ctx->client));
            qv_doc_destroy (&reply);
            rc = rrc;
            break;
        }
        qv_doc_destroy (&reply);
        acked += flights [slot].rows;
        flights [slot] = flights [--inflight];
        int64_t now = qv_clock_usec ();
        if (now - last_shown > (tty ? 100000 : 5000000) || acked == total) {
            if (tty || acked == total)
                s_progress (acked, total, (now - t0) / 1e6, acked == total);
            else
                fprintf (stderr, "%zu/%zu rows, %.0f rows/s\n", acked, total,
                         acked / ((now - t0) / 1e6));
            last_shown = now;
        }
    }
    free (flights);
    *acked_p = acked;
    if (rc)
        fprintf (stderr, "qvctl: %s stopped: %zu rows acknowledged before the failure\n", op, acked);
    return rc;
}

//  Vectors of a file as columnar batches: the key column (unless auto_id) and the
//  vectors as one bin.
typedef struct {
    const s_schema_t *schema;
    const float *vectors;
    long long start_id;
} s_vec_batches_t;

static void
s_write_vec_batch (qv_wr_t *w, size_t start, size_t n, void *arg)
{
    s_vec_batches_t *b = (s_vec_batches_t *) arg;
    const s_schema_t *schema = b->schema;
    qv_wr_str (w, "columns");
    qv_wr_map (w, schema->auto_id ? 1 : 2);
    if (!schema->auto_id) {
        qv_wr_str (w, schema->pk);
        qv_wr_array (w, n);
        for (size_t i = 0; i < n; i++) {
            long long id = b->start_id + (long long) (start + i);
            if (schema->pk_varchar) {
                char key [32];
                snprintf (key, sizeof key, "%lld", id);
                qv_wr_str (w, key);
            }
            else
                qv_wr_int (w, id);
        }
    }
    qv_wr_str (w, schema->vector);
    qv_wr_bin (w, b->vectors + start * schema->dim, n * schema->dim * sizeof (float));
}

//  Rows of a JSON-lines file, each already msgpack.
typedef struct {
    void **rows;
    size_t *sizes;
} s_row_batches_t;

static void
s_write_row_batch (qv_wr_t *w, size_t start, size_t n, void *arg)
{
    s_row_batches_t *b = (s_row_batches_t *) arg;
    qv_wr_str (w, "rows");
    qv_wr_array (w, n);
    for (size_t i = start; i < start + n; i++)
        qv_wr_raw (w, b->rows [i], b->sizes [i]);
}

//  Sends the rows of a JSON-lines file with op; prints what was written.
static int
s_write_jsonl (s_ctx_t *ctx, const char *op, const char *name, const char *path,
               const char *partition, long long limit, size_t batch, int window)
{
    s_row_batches_t b;
    size_t total;
    if (qv_ctl_jsonl_read (path, &b.rows, &b.sizes, &total)) {
        fprintf (stderr, "qvctl: %s\n", qv_err_msg ());
        return QV_EINVAL;
    }
    size_t n = limit && (size_t) limit < total ? (size_t) limit : total, acked = 0;
    int64_t t0 = qv_clock_usec ();
    int rc = s_send_batches (ctx, op, name, partition, n, batch, window, s_write_row_batch, &b,
                             &acked);
    double secs = (qv_clock_usec () - t0) / 1e6;
    qv_ctl_rows_free (b.rows, b.sizes, total);
    if (rc)
        return rc;
    if (ctx->json)
        printf ("{\"ok\": true, \"rows\": %zu, \"seconds\": %.3f, \"rows_per_s\": %.0f}\n",
                acked, secs, secs > 0 ? acked / secs : 0.0);
    else
        printf ("%s %zu rows into '%s' in %.3f s: %.0f rows/s\n",
                streq (op, "upsert") ? "upserted" : "inserted", acked, name, secs,
                secs > 0 ? acked / secs : 0.0);
    return 0;
}

static int
s_cmd_import (s_ctx_t *ctx, int argc, char **argv)
{
    static const struct option opts [] = {
        { "batch", required_argument, 0, 'b' }, { "start-id", required_argument, 0, 's' },
        { "limit", required_argument, 0, 'l' }, { "window", required_argument, 0, 'w' },
        { "partition", required_argument, 0, 'p' }, { "help", no_argument, 0, 'h' },
        { 0, 0, 0, 0 }
    };
    long long batch = 1000, start_id = 0, limit = 0, window = 4;
    const char *partition = NULL;
    bool start_given = false;
    int c;
    while ((c = s_getopt (argc, argv, opts)) != -1)
        switch (c) {
            case 'b': batch = s_int_arg ("--batch", optarg, 1, 1 << 20); break;
            case 's': start_id = s_int_arg ("--start-id", optarg, INT64_MIN, INT64_MAX);
                      start_given = true; break;
            case 'l': limit = s_int_arg ("--limit", optarg, 1, INT64_MAX); break;
            case 'w': window = s_int_arg ("--window", optarg, 1, 64); break;
            case 'p': partition = optarg; break;
        }
    s_check_positional (argc, argv, 2, 2);
    const char *name = argv [optind], *path = argv [optind + 1];
    if (qv_ctl_is_jsonl (path)) {
        if (start_given)
            s_usage_error ("%s", "--start-id is for vector files; JSON rows carry their ids");
        return s_write_jsonl (ctx, "insert", name, path, partition, limit, (size_t) batch,
                              (int) window);
    }
    s_schema_t schema;
    int rc = s_describe (ctx, name, &schema);
    if (rc)
        return rc;
    uint32_t file_dim, file_rows;
    float *vectors = qv_ctl_vectors_read (path, (uint32_t) (limit > UINT32_MAX ? 0 : limit),
                                          &file_dim, &file_rows);
    if (!vectors) {
        fprintf (stderr, "qvctl: %s\n", qv_err_msg ());
        return QV_EIO;
    }
    if (file_dim != schema.dim) {
        fprintf (stderr, "qvctl: %s holds %u-dimensional vectors, but field '%s' of '%s' has dim %u\n",
                 path, file_dim, schema.vector, name, schema.dim);
        free (vectors);
        return QV_EINVAL;
    }
    if (schema.auto_id && start_given)
        fprintf (stderr, "qvctl: '%s' assigns its own ids (auto_id); --start-id is ignored\n", name);
    s_vec_batches_t b = { &schema, vectors, start_id };
    size_t acked = 0;
    int64_t t0 = qv_clock_usec ();
    rc = s_send_batches (ctx, "insert", name, partition, file_rows, (size_t) batch, (int) window,
                         s_write_vec_batch, &b, &acked);
    double secs = (qv_clock_usec () - t0) / 1e6;
    free (vectors);
    if (rc)
        return rc;
    double mb = (double) acked * (double) schema.dim * 4 / 1e6;
    if (ctx->json)
        printf ("{\"ok\": true, \"rows\": %zu, \"seconds\": %.3f, \"rows_per_s\": %.0f, "
                "\"mb_per_s\": %.1f}\n", acked, secs, secs > 0 ? acked / secs : 0.0,
                secs > 0 ? mb / secs : 0.0);
    else
        printf ("imported %zu rows into '%s' in %.3f s: %.0f rows/s, %.1f MB/s of vectors\n",
                acked, name, secs, secs > 0 ? acked / secs : 0.0, secs > 0 ? mb / secs : 0.0);
    return 0;
}

//  insert / upsert NAME FILE.jsonl
static int
s_cmd_write (s_ctx_t *ctx, int argc, char **argv, const char *op)
{
    static const struct option opts [] = {
        { "batch", required_argument, 0, 'b' }, { "window", required_argument, 0, 'w' },
        { "partition", required_argument, 0, 'p' }, { "help", no_argument, 0, 'h' },
        { 0, 0, 0, 0 }
    };
    long long batch = 1000, window = 4;
    const char *partition = NULL;
    int c;
    while ((c = s_getopt (argc, argv, opts)) != -1)
        switch (c) {
            case 'b': batch = s_int_arg ("--batch", optarg, 1, 1 << 20); break;
            case 'w': window = s_int_arg ("--window", optarg, 1, 64); break;
            case 'p': partition = optarg; break;
        }
    s_check_positional (argc, argv, 2, 2);
    return s_write_jsonl (ctx, op, argv [optind], argv [optind + 1], partition, 0,
                          (size_t) batch, (int) window);
}

static int
s_cmd_insert (s_ctx_t *ctx, int argc, char **argv)
{
    return s_cmd_write (ctx, argc, argv, "insert");
}

static int
s_cmd_upsert (s_ctx_t *ctx, int argc, char **argv)
{
    return s_cmd_write (ctx, argc, argv, "upsert");
}

static int
s_cmp_i64 (const void *a, const void *b)
{
    int64_t x = *(const int64_t *) a, y = *(const int64_t *) b;
    return x < y ? -1 : x > y;
}

//  The id of a hit as an integer (a varchar key made of digits is read as a number,
//  as `import` writes them); false if it is neither.
static bool
s_hit_id (const qv_val_t *id, int64_t *out)
{
    if (qv_val_int (id, out) == 0)
        return true;
    char buf [32];
    if (qv_val_strcpy (id, buf, sizeof buf))
        return false;
    char *end;
    *out = strtoll (buf, &end, 10);
    return end != buf && *end == 0;
}

static int
s_cmd_search (s_ctx_t *ctx, int argc, char **argv)
{
    static const struct option opts [] = {
        { "k", required_argument, 0, 'k' }, { "gt", required_argument, 0, 'g' },
        { "nq-per-request", required_argument, 0, 'n' },
        { "output-fields", required_argument, 0, 'o' }, { "limit", required_argument, 0, 'l' },
        { "print", required_argument, 0, 'p' }, { "ef", required_argument, 0, 'e' },
        { "nprobe", required_argument, 0, 'r' }, { "filter", required_argument, 0, 'f' },
        { "help", no_argument, 0, 'h' }, { 0, 0, 0, 0 }
    };
    long long k = 10, per_request = 1, limit = 0, print = -1, ef = 0, nprobe = 0;
    const char *gt_path = NULL, *output_fields = NULL, *filter = NULL;
    int c;
    while ((c = s_getopt (argc, argv, opts)) != -1)
        switch (c) {
            case 'k': k = s_int_arg ("--k", optarg, 1, 16384); break;
            case 'g': gt_path = optarg; break;
            case 'n': per_request = s_int_arg ("--nq-per-request", optarg, 1, 16384); break;
            case 'o': output_fields = optarg; break;
            case 'l': limit = s_int_arg ("--limit", optarg, 1, INT64_MAX); break;
            case 'p': print = s_int_arg ("--print", optarg, 0, INT64_MAX); break;
            case 'e': ef = s_int_arg ("--ef", optarg, 1, 65536); break;
            case 'r': nprobe = s_int_arg ("--nprobe", optarg, 1, 65536); break;
            case 'f': filter = optarg; break;
        }
    s_check_positional (argc, argv, 2, 2);
    const char *name = argv [optind], *path = argv [optind + 1];
    if (print < 0)
        print = gt_path ? 0 : ctx->json ? INT64_MAX : 3;

    s_schema_t schema;
    int rc = s_describe (ctx, name, &schema);
    if (rc)
        return rc;
    uint32_t nq, ngt = 0, dim, gt_dim = 0;
    //  A file of query vectors, or one vector on the command line
    bool inline_vector = access (path, F_OK) != 0 && strchr ("[-.0123456789", path [0]);
    float *queries = inline_vector ? qv_ctl_vector_parse (path, &dim)
                   : qv_ctl_vectors_read (path, (uint32_t) (limit > UINT32_MAX ? 0 : limit), &dim, &nq);
    if (inline_vector)
        nq = 1;
    int32_t *gt = NULL;
    if (!queries) {
        fprintf (stderr, "qvctl: %s\n", qv_err_msg ());
        return QV_EIO;
    }
    if (dim != schema.dim) {
        fprintf (stderr, "qvctl: %s holds %u-dimensional queries, but field '%s' of '%s' has dim %u\n",
                 path, dim, schema.vector, name, schema.dim);
        free (queries);
        return QV_EINVAL;
    }
    if (gt_path) {
        gt = qv_vecs_read (gt_path, nq, &gt_dim, &ngt);
        rc = !gt ? QV_EIO : 0;
        if (!gt)
            fprintf (stderr, "qvctl: %s\n", qv_err_msg ());
        else
        if (ngt < nq || gt_dim < (uint32_t) k) {
            fprintf (stderr, "qvctl: %s has %u rows of %u neighbours; recall@%lld of %u queries "
                     "needs %u rows of at least %lld\n", gt_path, ngt, gt_dim, k, nq, nq, k);
            rc = QV_EINVAL;
        }
        if (rc) {
            free (queries);
            free (gt);
            return rc;
        }
    }
    s_long_timeout (ctx);
    size_t nreq = (nq + (size_t) per_request - 1) / (size_t) per_request;
    double *lat = calloc (nreq ? nreq : 1, sizeof *lat);
    int64_t *want = calloc ((size_t) k, sizeof *want);
    double recall_sum = 0;
    size_t hits_total = 0;
    int64_t t0 = qv_clock_usec ();
    for (size_t r = 0; r < nreq && rc == 0; r++) {
        size_t first = r * (size_t) per_request;
        size_t m = nq - first < (size_t) per_request ? nq - first : (size_t) per_request;
        qv_wr_t *w = qv_client_request (ctx->client, "search", 4 + (output_fields != NULL)
                                        + (ef || nprobe) + (filter != NULL), NULL);
        qv_wr_str (w, "collection"); qv_wr_str (w, name);
        if (ef || nprobe) {
            qv_wr_str (w, "params");
            qv_wr_map (w, (ef > 0) + (nprobe > 0));
            if (ef) { qv_wr_str (w, "ef"); qv_wr_uint (w, (uint64_t) ef); }
            if (nprobe) { qv_wr_str (w, "nprobe"); qv_wr_uint (w, (uint64_t) nprobe); }
        }
        if (filter) {
            qv_wr_str (w, "filter");
            qv_wr_str (w, filter);
        }
        qv_wr_str (w, "vectors"); qv_wr_bin (w, queries + first * dim, m * dim * sizeof (float));
        qv_wr_str (w, "dim"); qv_wr_uint (w, dim);
        qv_wr_str (w, "limit"); qv_wr_uint (w, (uint64_t) k);
        if (output_fields) {
            qv_wr_str (w, "output_fields");
            s_write_names (output_fields, w);
        }
        int64_t start = qv_clock_usec ();
        qv_doc_t *reply;
        rc = s_call (ctx, &w, &reply);
        lat [r] = (qv_clock_usec () - start) / 1000.0;
        if (rc)
            break;
        const qv_val_t *results = qv_val_get (qv_doc_root (reply), "results");
        if (!results || qv_val_type (results) != QV_V_ARRAY || qv_val_len (results) != m) {
            fprintf (stderr, "qvctl: the server answered %zu result lists for %zu query vectors\n",
                     s_len (results), m);
            rc = QV_EPROTO;
        }
        for (size_t j = 0; j < m && rc == 0; j++) {
            const qv_val_t *hits = qv_val_at (results, j);
            size_t q = first + j;
            hits_total += s_len (hits);
            if ((long long) q < print && ctx->json) {
                printf ("%s", q ? ",\n  " : "{\"results\": [\n  ");
                qv_ctl_print_json (stdout, hits);
            }
            else
            if ((long long) q < print) {
                printf ("query %zu:\n", q);
                for (size_t h = 0; h < s_len (hits); h++) {
                    const qv_val_t *hit = qv_val_at (hits, h);
                    const qv_val_t *id = qv_val_get (hit, "id");
                    const qv_val_t *distance = qv_val_get (hit, "distance");
                    const qv_val_t *fields = qv_val_get (hit, "fields");
                    printf ("  %2zu  id ", h + 1);
                    if (id)
                        qv_ctl_print_json (stdout, id);
                    printf ("  distance ");
                    if (distance)
                        qv_ctl_print_json (stdout, distance);
                    if (s_len (fields)) {
                        printf ("  ");
                        qv_ctl_print_json (stdout, fields);
                    }
                    putchar ('\n');
                }
            }
            if (!gt)
                continue;
            for (long long i = 0; i < k; i++)
                want [i] = gt [q * gt_dim + (size_t) i];
            qsort (want, (size_t) k, sizeof *want, s_cmp_i64);
            size_t found = 0;
            for (size_t h = 0; h < s_len (hits) && h < (size_t) k; h++) {
                int64_t id;
                const qv_val_t *hit_id = qv_val_get (qv_val_at (hits, h), "id");
                if (hit_id && s_hit_id (hit_id, &id)
                &&  bsearch (&id, want, (size_t) k, sizeof *want, s_cmp_i64))
                    found++;
            }
            recall_sum += (double) found / (double) k;
        }
        qv_doc_destroy (&reply);
    }
    double secs = (qv_clock_usec () - t0) / 1e6;
    if (rc == 0) {
        qsort (lat, nreq, sizeof *lat, s_cmp_double);
        if (ctx->json) {
            printf ("%s\"nq\": %u, \"k\": %lld, \"hits\": %zu, ", print > 0 && nq ? "],\n " : "{",
                    nq, k, hits_total);
            if (gt)
                printf ("\"recall\": %.4f, ", nq ? recall_sum / (double) nq : 0.0);
            printf ("\"p50_ms\": %.3f, \"p99_ms\": %.3f, \"qps\": %.1f, \"seconds\": %.3f}\n",
                    s_quantile (lat, nreq, 0.50), s_quantile (lat, nreq, 0.99),
                    secs > 0 ? nq / secs : 0.0, secs);
        }
        else {
            printf ("%u queries in %zu requests of up to %lld, k=%lld, metric %s: %zu hits\n",
                    nq, nreq, per_request, k, schema.metric, hits_total);
            if (gt)
                printf ("recall@%lld = %.3f\n", k, nq ? recall_sum / (double) nq : 0.0);
            printf ("latency per request: p50 %.3f ms, p99 %.3f ms\n",
                    s_quantile (lat, nreq, 0.50), s_quantile (lat, nreq, 0.99));
            printf ("throughput: %.1f queries/s (%.3f s)\n", secs > 0 ? nq / secs : 0.0, secs);
        }
    }
    free (lat);
    free (want);
    free (queries);
    free (gt);
    return rc;
}

//  Creates an index on the collection's vector field and waits until every flushed
//  segment has it, showing the indexed rows.
static int
s_cmd_index (s_ctx_t *ctx, int argc, char **argv)
{
    static const struct option opts [] = {
        { "type", required_argument, 0, 't' }, { "M", required_argument, 0, 'M' },
        { "ef-construction", required_argument, 0, 'e' }, { "nlist", required_argument, 0, 'n' },
        { "m", required_argument, 0, 'm' }, { "no-wait", no_argument, 0, 'w' },
        { "help", no_argument, 0, 'h' }, { 0, 0, 0, 0 }
    };
    const char *type = "HNSW";
    long long M = 0, efc = 0, nlist = 0, m = 0;
    bool wait = true;
    int c;
    while ((c = s_getopt (argc, argv, opts)) != -1)
        switch (c) {
            case 't': type = optarg; break;
            case 'M': M = s_int_arg ("--M", optarg, 2, 1000000); break;
            case 'e': efc = s_int_arg ("--ef-construction", optarg, 1, 1000000); break;
            case 'n': nlist = s_int_arg ("--nlist", optarg, 1, 1000000); break;
            case 'm': m = s_int_arg ("--m", optarg, 1, 1000000); break;
            case 'w': wait = false; break;
        }
    s_check_positional (argc, argv, 1, 1);
    const char *name = argv [optind];
    s_schema_t schema;
    int rc = s_describe (ctx, name, &schema);
    if (rc)
        return rc;
    qv_wr_t *w = qv_client_request (ctx->client, "create_index", 4, NULL);
    qv_wr_str (w, "collection"); qv_wr_str (w, name);
    qv_wr_str (w, "field"); qv_wr_str (w, schema.vector);
    qv_wr_str (w, "index_type"); qv_wr_str (w, type);
    qv_wr_str (w, "params");
    qv_wr_map (w, (M > 0) + (efc > 0) + (nlist > 0) + (m > 0));
    if (M) { qv_wr_str (w, "M"); qv_wr_uint (w, (uint64_t) M); }
    if (efc) { qv_wr_str (w, "efConstruction"); qv_wr_uint (w, (uint64_t) efc); }
    if (nlist) { qv_wr_str (w, "nlist"); qv_wr_uint (w, (uint64_t) nlist); }
    if (m) { qv_wr_str (w, "m"); qv_wr_uint (w, (uint64_t) m); }
    qv_doc_t *reply;
    int64_t start = qv_clock_usec ();
    if ((rc = s_call (ctx, &w, &reply)))
        return rc;
    qv_doc_destroy (&reply);
    while (wait) {
        w = qv_client_request (ctx->client, "describe_index", 2, NULL);
        qv_wr_str (w, "collection"); qv_wr_str (w, name);
        qv_wr_str (w, "field"); qv_wr_str (w, schema.vector);
        if ((rc = s_call (ctx, &w, &reply)))
            return rc;
        const qv_val_t *root = qv_doc_root (reply), *state = qv_val_get (root, "state");
        uint64_t indexed = 0, total = 0;
        if (qv_val_get (root, "indexed_rows"))
            qv_val_uint (qv_val_get (root, "indexed_rows"), &indexed);
        if (qv_val_get (root, "total_rows"))
            qv_val_uint (qv_val_get (root, "total_rows"), &total);
        bool building = state && qv_val_is (state, "building"), failed = state && qv_val_is (state, "failed");
        if (isatty (2))
            fprintf (stderr, "\r%s index on '%s': %llu of %llu rows indexed  ", type, name,
                     (unsigned long long) indexed, (unsigned long long) total);
        qv_doc_destroy (&reply);
        if (failed) {
            fprintf (stderr, "\nqvctl: the index build failed; see the server's log\n");
            return QV_ERR;
        }
        if (!building) {
            if (isatty (2))
                fputc ('\n', stderr);
            if (ctx->json)
                printf ("{\"ok\": true, \"index_type\": \"%s\", \"seconds\": %.3f, "
                        "\"indexed_rows\": %llu, \"total_rows\": %llu}\n", type,
                        (qv_clock_usec () - start) / 1e6, (unsigned long long) indexed,
                        (unsigned long long) total);
            else
                printf ("%s index on '%s' finished in %.3f s: %llu of %llu rows indexed "
                        "(rows not flushed yet are searched exactly)\n", type, name,
                        (qv_clock_usec () - start) / 1e6, (unsigned long long) indexed,
                        (unsigned long long) total);
            break;
        }
        zclock_sleep (200);
    }
    return 0;
}

static int
s_cmd_get (s_ctx_t *ctx, int argc, char **argv)
{
    static const struct option opts [] = {
        { "output-fields", required_argument, 0, 'o' }, { "help", no_argument, 0, 'h' },
        { 0, 0, 0, 0 }
    };
    const char *output_fields = NULL;
    int c;
    while ((c = s_getopt (argc, argv, opts)) != -1)
        if (c == 'o')
            output_fields = optarg;
    s_check_positional (argc, argv, 2, -1);
    const char *name = argv [optind];
    s_schema_t schema;
    int rc = s_describe (ctx, name, &schema);
    if (rc)
        return rc;
    int nids = argc - optind - 1;
    qv_wr_t *w = qv_client_request (ctx->client, "get", 2 + (output_fields != NULL), NULL);
    qv_wr_str (w, "collection"); qv_wr_str (w, name);
    qv_wr_str (w, "ids");
    qv_wr_array (w, (size_t) nids);
    for (int i = 0; i < nids && rc == 0; i++)
        rc = s_write_key (&schema, argv [optind + 1 + i], w);
    if (output_fields) {
        qv_wr_str (w, "output_fields");
        s_write_names (output_fields, w);
    }
    if (rc) {
        qv_wr_destroy (&w);
        return rc;
    }
    qv_doc_t *reply;
    rc = s_call (ctx, &w, &reply);
    if (rc)
        return rc;
    const qv_val_t *rows = qv_val_get (qv_doc_root (reply), "rows");
    s_print_rows (ctx, rows);
    if (s_len (rows) < (size_t) nids)
        fprintf (stderr, "qvctl: %zu of %d ids found in '%s'\n", s_len (rows), nids, name);
    qv_doc_destroy (&reply);
    return 0;
}

static int
s_cmd_delete (s_ctx_t *ctx, int argc, char **argv)
{
    while (s_getopt (argc, argv, s_no_opts) != -1)
        ;
    s_check_positional (argc, argv, 2, -1);
    const char *name = argv [optind];
    s_schema_t schema;
    int rc = s_describe (ctx, name, &schema);
    if (rc)
        return rc;
    int nids = argc - optind - 1;
    qv_wr_t *w = qv_client_request (ctx->client, "delete", 2, NULL);
    qv_wr_str (w, "collection"); qv_wr_str (w, name);
    qv_wr_str (w, "ids");
    qv_wr_array (w, (size_t) nids);
    for (int i = 0; i < nids && rc == 0; i++)
        rc = s_write_key (&schema, argv [optind + 1 + i], w);
    if (rc) {
        qv_wr_destroy (&w);
        return rc;
    }
    qv_doc_t *reply;
    rc = s_call (ctx, &w, &reply);
    if (rc)
        return rc;
    uint64_t deleted = s_get_uint (qv_doc_root (reply), "deleted");
    if (ctx->json)
        s_print_fields (qv_doc_root (reply));
    else
        printf ("deleted %llu of %d ids from '%s'\n", (unsigned long long) deleted, nids, name);
    qv_doc_destroy (&reply);
    return 0;
}

static int
s_cmd_query (s_ctx_t *ctx, int argc, char **argv)
{
    static const struct option opts [] = {
        { "filter", required_argument, 0, 'f' }, { "output-fields", required_argument, 0, 'o' },
        { "limit", required_argument, 0, 'l' }, { "offset", required_argument, 0, 's' },
        { "count", no_argument, 0, 'c' }, { "partitions", required_argument, 0, 'p' },
        { "help", no_argument, 0, 'h' }, { 0, 0, 0, 0 }
    };
    const char *filter = "", *output_fields = NULL, *partitions = NULL;
    long long limit = 0, offset = 0;
    bool count = false;
    int c;
    while ((c = s_getopt (argc, argv, opts)) != -1)
        switch (c) {
            case 'f': filter = optarg; break;
            case 'o': output_fields = optarg; break;
            case 'l': limit = s_int_arg ("--limit", optarg, 1, 16384); break;
            case 's': offset = s_int_arg ("--offset", optarg, 0, 16384); break;
            case 'c': count = true; break;
            case 'p': partitions = optarg; break;
        }
    s_check_positional (argc, argv, 1, 1);
    if (count && (output_fields || limit || offset))
        s_usage_error ("%s", "--count takes no --output-fields, --limit or --offset");
    const char *name = argv [optind];
    qv_wr_t *w = qv_client_request (ctx->client, "query", 2 + (output_fields || count)
                                    + (limit > 0) + (offset > 0) + (partitions != NULL), NULL);
    qv_wr_str (w, "collection"); qv_wr_str (w, name);
    qv_wr_str (w, "filter"); qv_wr_str (w, filter);
    if (count) {
        qv_wr_str (w, "output_fields");
        s_write_names ("count(*)", w);
    }
    else
    if (output_fields) {
        qv_wr_str (w, "output_fields");
        s_write_names (output_fields, w);
    }
    if (limit) { qv_wr_str (w, "limit"); qv_wr_uint (w, (uint64_t) limit); }
    if (offset) { qv_wr_str (w, "offset"); qv_wr_uint (w, (uint64_t) offset); }
    if (partitions) {
        qv_wr_str (w, "partitions");
        s_write_names (partitions, w);
    }
    s_long_timeout (ctx);
    qv_doc_t *reply;
    int rc = s_call (ctx, &w, &reply);
    if (rc)
        return rc;
    const qv_val_t *rows = qv_val_get (qv_doc_root (reply), "rows");
    if (count && !ctx->json) {
        const qv_val_t *n = s_len (rows) ? qv_val_get (qv_val_at (rows, 0), "count(*)") : NULL;
        if (n)
            qv_ctl_print_json (stdout, n);
        putchar ('\n');
    }
    else
        s_print_rows (ctx, rows);
    qv_doc_destroy (&reply);
    return 0;
}

//  partitions NAME [--create P | --drop P]
static int
s_cmd_partitions (s_ctx_t *ctx, int argc, char **argv)
{
    static const struct option opts [] = {
        { "create", required_argument, 0, 'c' }, { "drop", required_argument, 0, 'd' },
        { "help", no_argument, 0, 'h' }, { 0, 0, 0, 0 }
    };
    const char *create = NULL, *drop = NULL;
    int c;
    while ((c = s_getopt (argc, argv, opts)) != -1)
        switch (c) {
            case 'c': create = optarg; break;
            case 'd': drop = optarg; break;
        }
    s_check_positional (argc, argv, 1, 1);
    if (create && drop)
        s_usage_error ("%s", "give --create or --drop, not both");
    const char *name = argv [optind], *partition = create ? create : drop;
    qv_wr_t *w = qv_client_request (ctx->client, create ? "create_partition"
                                    : drop ? "drop_partition" : "list_partitions",
                                    1 + (partition != NULL), NULL);
    qv_wr_str (w, "collection"); qv_wr_str (w, name);
    if (partition) {
        qv_wr_str (w, "partition");
        qv_wr_str (w, partition);
    }
    qv_doc_t *reply;
    int rc = s_call (ctx, &w, &reply);
    if (rc)
        return rc;
    const qv_val_t *names = qv_val_get (qv_doc_root (reply), "partitions");
    if (ctx->json && !partition)
        s_print_fields (qv_doc_root (reply));
    else
    if (ctx->json)
        printf ("{\"ok\": true}\n");
    else
    if (partition)
        printf ("%s partition '%s' of '%s'\n", create ? "created" : "dropped", partition, name);
    for (size_t i = 0; !ctx->json && i < s_len (names); i++) {
        const char *str;
        size_t n;
        if (qv_val_str (qv_val_at (names, i), &str, &n) == 0)
            printf ("%.*s\n", (int) n, str);
    }
    qv_doc_destroy (&reply);
    return 0;
}

//  describe-index / drop-index NAME [--field F]: the vector field unless told.
static int
s_index_op (s_ctx_t *ctx, int argc, char **argv, const char *op)
{
    static const struct option opts [] = {
        { "field", required_argument, 0, 'f' }, { "help", no_argument, 0, 'h' }, { 0, 0, 0, 0 }
    };
    const char *field = NULL;
    int c;
    while ((c = s_getopt (argc, argv, opts)) != -1)
        if (c == 'f')
            field = optarg;
    s_check_positional (argc, argv, 1, 1);
    const char *name = argv [optind];
    s_schema_t schema;
    if (!field) {
        int rc = s_describe (ctx, name, &schema);
        if (rc)
            return rc;
        field = schema.vector;
    }
    qv_wr_t *w = qv_client_request (ctx->client, op, 2, NULL);
    qv_wr_str (w, "collection"); qv_wr_str (w, name);
    qv_wr_str (w, "field"); qv_wr_str (w, field);
    qv_doc_t *reply;
    int rc = s_call (ctx, &w, &reply);
    if (rc)
        return rc;
    if (streq (op, "describe_index"))
        s_print_fields (qv_doc_root (reply));
    else
    if (ctx->json)
        printf ("{\"ok\": true}\n");
    else
        printf ("dropped the index on '%s' of '%s'\n", field, name);
    qv_doc_destroy (&reply);
    return 0;
}

static int
s_cmd_describe_index (s_ctx_t *ctx, int argc, char **argv)
{
    return s_index_op (ctx, argc, argv, "describe_index");
}

static int
s_cmd_drop_index (s_ctx_t *ctx, int argc, char **argv)
{
    return s_index_op (ctx, argc, argv, "drop_index");
}

static const s_command_t s_commands [] = {
    { "ping", s_cmd_ping,
      "ping\n\nAsks the server whether it is serving; prints its protocol version and the round trip." },
    { "create", s_cmd_create,
      "create NAME --dim D [--metric L2|IP|COSINE] [--auto-id] [--varchar-pk] [--shards N]\n\n"
      "Creates collection NAME with fields 'id' (primary key) and 'vector' (float_vector).\n"
      "  --dim D          vector dimension (required)\n"
      "  --metric M       L2 (squared Euclidean, default), IP or COSINE\n"
      "  --auto-id        the server assigns int64 ids\n"
      "  --varchar-pk     the primary key is a string (max 64 bytes) instead of int64\n"
      "  --shards N       write shards (default 1)" },
    { "drop", s_cmd_drop, "drop NAME\n\nDrops collection NAME and its data." },
    { "list", s_cmd_list, "list\n\nPrints the names of the collections, one a line." },
    { "describe", s_cmd_describe,
      "describe NAME\n\nPrints the schema and figures (rows, segments, ...) of collection NAME." },
    { "stats", s_cmd_stats,
      "stats [NAME]\n\nPrints the server's figures (rows, segments, bytes, WAL position), or a collection's." },
    { "flush", s_cmd_flush,
      "flush NAME\n\nWrites everything acknowledged so far into flushed segments; waits until done." },
    { "import", s_cmd_import,
      "import NAME FILE [--batch 1000] [--start-id 0] [--limit N] [--window 4] [--partition P]\n\n"
      "Inserts a file: .fvecs, .bvecs (uint8, converted to float) or .npy (2-D float32, as\n"
      "np.save writes it) as columnar batches (a bin vector column), row i getting id\n"
      "start-id + i unless the collection assigns ids (auto_id); or .jsonl (one row a line,\n"
      "as insert).\n"
      "  --batch N        rows per insert request (default 1000)\n"
      "  --start-id S     id of the first row (default 0; vector files only)\n"
      "  --limit N        import only the first N rows\n"
      "  --window W       insert requests in flight at once (default 4)\n"
      "  --partition P    insert into partition P (default _default)\n"
      "Shows progress on stderr; prints rows, seconds, rows/s (and MB/s of vectors) at the end." },
    { "insert", s_cmd_insert,
      "insert NAME FILE.jsonl [--batch 1000] [--window 4] [--partition P]\n\n"
      "Inserts rows given as JSON lines, one object a line: {\"id\": 1, \"vector\": [0.1, 0.2], \"tag\": \"a\"}\n"
      "(FILE - reads stdin). A live primary key is replaced, as upsert. Each request of\n"
      "--batch rows is atomic; on a failure, the rows acknowledged before it are printed.\n"
      "  --batch N        rows per request (default 1000)\n"
      "  --window W       requests in flight at once (default 4)\n"
      "  --partition P    insert into partition P (default _default)" },
    { "upsert", s_cmd_upsert,
      "upsert NAME FILE.jsonl [--batch 1000] [--window 4] [--partition P]\n\n"
      "As insert; every row needs its primary key." },
    { "query", s_cmd_query,
      "query NAME [--filter EXPR] [--output-fields a,b] [--limit N] [--offset N] [--count]\n"
      "      [--partitions p,q]\n\n"
      "Prints the rows matching a filter expression, one JSON map a line (the primary key and\n"
      "the output fields), e.g. qvctl query docs --filter 'tag == \"a\" and n > 3' --limit 10.\n"
      "  --filter EXPR        Milvus-style boolean expression (default: every row)\n"
      "  --output-fields a,b  fields to print besides the primary key\n"
      "  --limit N, --offset N  page through the rows (offset + limit at most 16384)\n"
      "  --count              print only the number of matching rows\n"
      "  --partitions p,q     only these partitions" },
    { "partitions", s_cmd_partitions,
      "partitions NAME [--create P | --drop P]\n\n"
      "Lists the partitions of NAME, one a line, or creates or drops partition P." },
    { "describe-index", s_cmd_describe_index,
      "describe-index NAME [--field F]\n\n"
      "Prints the index on field F (default: the vector field): type, metric, params, state,\n"
      "indexed and total rows." },
    { "drop-index", s_cmd_drop_index,
      "drop-index NAME [--field F]\n\n"
      "Drops the index on field F (default: the vector field); searches become exact." },
    { "search", s_cmd_search,
      "search NAME QUERIES --k 10 [--gt GT.ivecs] [--nq-per-request 1] [--output-fields a,b]\n"
      "       [--filter EXPR] [--ef N] [--nprobe N] [--limit N] [--print N]\n\n"
      "Searches the query vectors of a file (.fvecs, .bvecs, .npy) or one vector given inline\n"
      "('[0.1, 0.2, ...]' or 0.1,0.2,...); prints the hits, recall@k against the ground truth\n"
      "when given, latency p50/p99 per request and queries/s.\n"
      "  --k K                neighbours per query (default 10)\n"
      "  --gt GT.ivecs        ground truth: the true neighbour ids of each query, best first\n"
      "  --nq-per-request M   query vectors per search request (default 1)\n"
      "  --output-fields a,b  fields to return with each hit\n"
      "  --ef N, --nprobe N   index search parameters\n"
      "  --filter EXPR        only rows matching the filter expression\n"
      "  --limit N            use only the first N queries\n"
      "  --print N            print the hits of the first N queries (default 3 without --gt, else 0)" },
    { "index", s_cmd_index,
      "index NAME [--type HNSW|IVF_FLAT|IVF_SQ8|IVF_PQ|FLAT] [--M 16] [--ef-construction 200]\n"
      "      [--nlist N] [--m M] [--no-wait]\n\n"
      "Creates an index on the vector field of NAME (flushed segments get it in the background)\n"
      "and waits until it is finished, showing progress." },
    { "get", s_cmd_get,
      "get NAME ID... [--output-fields a,b]\n\nPrints the rows with these primary keys, one JSON map a line." },
    { "delete", s_cmd_delete, "delete NAME ID...\n\nDeletes the rows with these primary keys." },
    { NULL, NULL, NULL }
};

static void
s_usage (FILE *out)
{
    fprintf (out,
        "Usage: qvctl [--server ENDPOINT] [--timeout SEC] COMMAND [ARGS]\n"
        "\n"
        "The command-line client of a Quiver server.\n"
        "\n"
        "Options (anywhere on the line):\n"
        "  --server ENDPOINT   the server's ZeroMQ endpoint (default $QV_SERVER, else " S_DEFAULT_SERVER ")\n"
        "  --timeout SEC       how long to wait for an answer (default 5; imports, searches\n"
        "                      and flushes wait up to 120 s once the server has answered)\n"
        "  --output text|json  json: each command prints one JSON document on stdout (a\n"
        "                      failure: {\"ok\": false, \"code\", \"error\"}); default text\n"
        "\nCommands:\n");
    for (const s_command_t *c = s_commands; c->name; c++)
        fprintf (out, "  %.*s\n", (int) strcspn (c->usage, "\n"), c->usage);
    fprintf (out, "\nqvctl COMMAND --help describes a command. Exit status: 0 on success, 1 when the\n"
                  "server or a file refused, 2 for a usage error.\n");
}

int
main (int argc, char *argv [])
{
    const char *server = getenv ("QV_SERVER");
    if (!server || !*server)
        server = S_DEFAULT_SERVER;
    int timeout_ms = 0;
    bool json = false;
    //  Take the global options out of argv wherever they are.
    int n = 1;
    for (int i = 1; i < argc; i++) {
        const char *value = NULL;
        bool is_server = strncmp (argv [i], "--server", 8) == 0 && (argv [i][8] == 0 || argv [i][8] == '=');
        bool is_timeout = strncmp (argv [i], "--timeout", 9) == 0 && (argv [i][9] == 0 || argv [i][9] == '=');
        bool is_output = strncmp (argv [i], "--output", 8) == 0 && (argv [i][8] == 0 || argv [i][8] == '=');
        if (!is_server && !is_timeout && !is_output) {
            argv [n++] = argv [i];
            continue;
        }
        const char *eq = strchr (argv [i], '=');
        if (eq)
            value = eq + 1;
        else
        if (i + 1 < argc)
            value = argv [++i];
        if (!value || !*value) {
            fprintf (stderr, "qvctl: %s needs a value\n", argv [i]);
            return 2;
        }
        if (is_output) {
            if (!streq (value, "json") && !streq (value, "text")) {
                fprintf (stderr, "qvctl: --output must be text or json, not '%s'\n", value);
                return 2;
            }
            json = streq (value, "json");
        }
        else
        if (is_server)
            server = value;
        else
            timeout_ms = (int) (s_int_arg ("--timeout", value, 1, 86400) * 1000);
    }
    argc = n;
    argv [argc] = NULL;
    if (argc < 2 || streq (argv [1], "-h") || streq (argv [1], "--help") || streq (argv [1], "help")) {
        s_usage (argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    const s_command_t *cmd = NULL;
    for (const s_command_t *c = s_commands; c->name; c++)
        if (streq (c->name, argv [1]))
            cmd = c;
    if (!cmd) {
        fprintf (stderr, "qvctl: unknown command '%s'; qvctl --help lists the commands\n", argv [1]);
        return 2;
    }
    s_current = cmd;
    zsys_init ();
    zsys_set_linger (0);
    zsys_handler_set (NULL);        //  Ctrl-C stops qvctl at once
    s_ctx_t ctx = { NULL, server, timeout_ms, json };
    //  --help needs no server: parse it before connecting.
    for (int i = 2; i < argc; i++)
        if (streq (argv [i], "--help") || streq (argv [i], "-h")) {
            printf ("Usage: qvctl %s\n", cmd->usage);
            return 0;
        }
        else
        if (streq (argv [i], "--"))
            break;
    ctx.client = qv_client_new (server);
    if (!ctx.client) {
        fprintf (stderr, "qvctl: --server: %s\n", qv_err_msg ());
        return 2;
    }
    if (timeout_ms)
        qv_client_set_timeout (ctx.client, timeout_ms);
    s_context = &ctx;
    optind = 0;                     //  getopt_long restarts on argv + 1
    int rc = cmd->fn (&ctx, argc - 1, argv + 1);
    qv_client_destroy (&ctx.client);
    return rc ? 1 : 0;
}
