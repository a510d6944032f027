//  qvctl: the command-line client of a Quiver server (collections, import, search).
//  The command table, main and most commands; the shared toolkit, the write commands
//  and the file formats are in tools/qvctl/.
#include "qv_client.h"
#include "qv_ctl.h"
#include "qv_ctl_io.h"
#include "qv_codec.h"
#include "qv_rc.h"
#include "qv_vecs.h"

#include <czmq.h>
#include <getopt.h>
#include <math.h>
#include <unistd.h>

#define S_DEFAULT_SERVER "tcp://127.0.0.1:19530"

typedef int (s_command_fn) (qv_ctl_t *ctx, int argc, char **argv);

typedef struct {
    const char *name;
    s_command_fn *fn;
    const char *usage;              //  first line: synopsis; then the options
} s_command_t;

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

static const struct option s_no_opts [] = {
    { "help", no_argument, 0, 'h' }, { 0, 0, 0, 0 }
};

// ---------------------------------------------------------------------------------
//  Commands

static int
s_cmd_ping (qv_ctl_t *ctx, int argc, char **argv)
{
    while (qv_ctl_getopt (argc, argv, s_no_opts) != -1)
        ;
    qv_ctl_check_positional (argc, argv, 0, 0);
    qv_wr_t *w = qv_client_request (ctx->client, "ping", 0, NULL);
    int64_t start = qv_clock_usec ();
    qv_doc_t *reply;
    int rc = qv_ctl_call (ctx, &w, &reply);
    if (rc)
        return rc;
    char version [64] = "?";
    qv_ctl_get_str (qv_doc_root (reply), "version", version, sizeof version);
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
s_cmd_create (qv_ctl_t *ctx, int argc, char **argv)
{
    static const struct option opts [] = {
        { "dim", required_argument, 0, 'd' }, { "metric", required_argument, 0, 'm' },
        { "auto-id", no_argument, 0, 'a' }, { "varchar-pk", no_argument, 0, 'v' },
        { "shards", required_argument, 0, 's' }, { "ttl-seconds", required_argument, 0, 't' },
        { "help", no_argument, 0, 'h' }, { 0, 0, 0, 0 }
    };
    long long dim = 0, shards = 0, ttl = 0;
    const char *metric = "L2";
    bool auto_id = false, varchar_pk = false;
    int c;
    while ((c = qv_ctl_getopt (argc, argv, opts)) != -1)
        switch (c) {
            case 'd': dim = qv_ctl_int_arg ("--dim", optarg, 1, 32768); break;
            case 'm': metric = optarg; break;
            case 'a': auto_id = true; break;
            case 'v': varchar_pk = true; break;
            case 's': shards = qv_ctl_int_arg ("--shards", optarg, 1, 64); break;
            case 't': ttl = qv_ctl_int_arg ("--ttl-seconds", optarg, 0, 3153600000ll); break;
        }
    qv_ctl_check_positional (argc, argv, 1, 1);
    if (!dim)
        qv_ctl_usage_error ("%s", "--dim is required");
    if (!streq (metric, "L2") && !streq (metric, "IP") && !streq (metric, "COSINE"))
        qv_ctl_usage_error ("--metric must be L2, IP or COSINE, not '%s'", metric);
    if (auto_id && varchar_pk)
        qv_ctl_usage_error ("%s", "--auto-id needs an int64 primary key: drop --varchar-pk");
    const char *name = argv [optind];

    qv_wr_t *w = qv_client_request (ctx->client, "create_collection", 2 + (shards > 0) + (ttl > 0),
                                    NULL);
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
    if (ttl) {
        qv_wr_str (w, "ttl_seconds");
        qv_wr_uint (w, (uint64_t) ttl);
    }
    qv_doc_t *reply;
    int rc = qv_ctl_call (ctx, &w, &reply);
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
s_simple (qv_ctl_t *ctx, int argc, char **argv, const char *op, qv_doc_t **reply)
{
    while (qv_ctl_getopt (argc, argv, s_no_opts) != -1)
        ;
    qv_ctl_check_positional (argc, argv, 1, 1);
    qv_wr_t *w = qv_client_request (ctx->client, op, 1, NULL);
    qv_wr_str (w, "collection");
    qv_wr_str (w, argv [optind]);
    return qv_ctl_call (ctx, &w, reply);
}

static int
s_cmd_drop (qv_ctl_t *ctx, int argc, char **argv)
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
s_cmd_alter (qv_ctl_t *ctx, int argc, char **argv)
{
    static const struct option opts [] = {
        { "ttl-seconds", required_argument, 0, 't' }, { "consistency", required_argument, 0, 'c' },
        { "description", required_argument, 0, 'd' }, { "help", no_argument, 0, 'h' },
        { 0, 0, 0, 0 }
    };
    long long ttl = -1;
    const char *consistency = NULL, *description = NULL;
    int c;
    while ((c = qv_ctl_getopt (argc, argv, opts)) != -1)
        switch (c) {
            case 't': ttl = qv_ctl_int_arg ("--ttl-seconds", optarg, 0, 3153600000ll); break;
            case 'c': consistency = optarg; break;
            case 'd': description = optarg; break;
        }
    qv_ctl_check_positional (argc, argv, 1, 1);
    size_t n = (ttl >= 0) + (consistency != NULL) + (description != NULL);
    if (n == 0)
        qv_ctl_usage_error ("%s", "give at least one of --ttl-seconds, --consistency, --description");
    qv_wr_t *w = qv_client_request (ctx->client, "alter_collection", 1 + n, NULL);
    qv_wr_str (w, "collection");
    qv_wr_str (w, argv [optind]);
    if (ttl >= 0) {
        qv_wr_str (w, "ttl_seconds");
        qv_wr_uint (w, (uint64_t) ttl);
    }
    if (consistency) {
        qv_wr_str (w, "consistency");
        qv_wr_str (w, consistency);
    }
    if (description) {
        qv_wr_str (w, "description");
        qv_wr_str (w, description);
    }
    qv_doc_t *reply;
    int rc = qv_ctl_call (ctx, &w, &reply);
    if (rc)
        return rc;
    qv_doc_destroy (&reply);
    if (ctx->json)
        printf ("{\"ok\": true, \"collection\": \"%s\"}\n", argv [optind]);
    else
        printf ("altered collection '%s'\n", argv [optind]);
    return 0;
}

//  Prints a get_compaction_state reply (human or JSON); true once it is final.
static bool
s_print_compaction (qv_ctl_t *ctx, const char *name, uint64_t id, const qv_val_t *r, double secs)
{
    const qv_val_t *state = qv_val_get (r, "state");
    bool done = state && !qv_val_is (state, "executing");
    if (ctx->json) {
        printf ("{\"collection\": \"%s\", \"compaction_id\": %llu, \"seconds\": %.3f, \"reply\": ",
                name, (unsigned long long) id, secs);
        qv_ctl_print_json (stdout, r);
        puts ("}");
        return done;
    }
    char st [16] = "?";
    qv_val_strcpy (state, st, sizeof st);
    uint64_t dropped = 0;
    qv_val_uint (qv_val_get (r, "rows_dropped"), &dropped);
    printf ("compaction %llu of '%s': %s after %.1f s; merged segments ", (unsigned long long) id,
            name, st, secs);
    qv_ctl_print_json (stdout, qv_val_get (r, "merged_segments"));
    printf (" into ");
    qv_ctl_print_json (stdout, qv_val_get (r, "new_segments"));
    printf ("; %llu rows dropped\n", (unsigned long long) dropped);
    const qv_val_t *error = qv_val_get (r, "error");
    if (error) {
        printf ("error: ");
        qv_ctl_print_json (stdout, error);
        puts ("");
    }
    return done;
}

static int
s_compaction_state (qv_ctl_t *ctx, const char *name, uint64_t id, qv_doc_t **reply)
{
    qv_wr_t *w = qv_client_request (ctx->client, "get_compaction_state", 2, NULL);
    qv_wr_str (w, "collection");
    qv_wr_str (w, name);
    qv_wr_str (w, "compaction_id");
    qv_wr_uint (w, id);
    return qv_ctl_call (ctx, &w, reply);
}

static int
s_cmd_compact (qv_ctl_t *ctx, int argc, char **argv)
{
    static const struct option opts [] = {
        { "no-wait", no_argument, 0, 'n' }, { "help", no_argument, 0, 'h' }, { 0, 0, 0, 0 }
    };
    bool wait = true;
    int c;
    while ((c = qv_ctl_getopt (argc, argv, opts)) != -1)
        if (c == 'n')
            wait = false;
    qv_ctl_check_positional (argc, argv, 1, 1);
    const char *name = argv [optind];
    int64_t start = qv_clock_usec ();
    qv_wr_t *w = qv_client_request (ctx->client, "compact", 1, NULL);
    qv_wr_str (w, "collection");
    qv_wr_str (w, name);
    qv_doc_t *reply;
    int rc = qv_ctl_call (ctx, &w, &reply);
    if (rc)
        return rc;
    uint64_t id = 0;
    qv_val_uint (qv_val_get (qv_doc_root (reply), "compaction_id"), &id);
    qv_doc_destroy (&reply);
    if (!wait) {
        if (ctx->json)
            printf ("{\"ok\": true, \"compaction_id\": %llu}\n", (unsigned long long) id);
        else
            printf ("compaction %llu of '%s' started\n", (unsigned long long) id, name);
        return 0;
    }
    //  Progress on stderr while it runs
    for (int64_t last = 0;; zclock_sleep (200)) {
        if ((rc = s_compaction_state (ctx, name, id, &reply)))
            return rc;
        const qv_val_t *r = qv_doc_root (reply);
        double secs = (qv_clock_usec () - start) / 1e6;
        if (!qv_val_is (qv_val_get (r, "state"), "executing")) {
            s_print_compaction (ctx, name, id, r, secs);
            bool failed = qv_val_is (qv_val_get (r, "state"), "failed");
            qv_doc_destroy (&reply);
            return failed ? 1 : 0;
        }
        if (qv_clock_usec () - last > 2000000) {
            fprintf (stderr, "compaction %llu of '%s': executing, %.0f s\n",
                     (unsigned long long) id, name, secs);
            last = qv_clock_usec ();
        }
        qv_doc_destroy (&reply);
    }
}

static int
s_cmd_compaction_state (qv_ctl_t *ctx, int argc, char **argv)
{
    while (qv_ctl_getopt (argc, argv, s_no_opts) != -1)
        ;
    qv_ctl_check_positional (argc, argv, 2, 2);
    const char *name = argv [optind];
    uint64_t id = (uint64_t) qv_ctl_int_arg ("ID", argv [optind + 1], 0, INT64_MAX);
    qv_doc_t *reply;
    int rc = s_compaction_state (ctx, name, id, &reply);
    if (rc)
        return rc;
    s_print_compaction (ctx, name, id, qv_doc_root (reply), 0);
    qv_doc_destroy (&reply);
    return 0;
}

static int
s_cmd_describe (qv_ctl_t *ctx, int argc, char **argv)
{
    qv_doc_t *reply;
    int rc = s_simple (ctx, argc, argv, "describe_collection", &reply);
    if (rc)
        return rc;
    qv_ctl_print_fields (qv_doc_root (reply));
    qv_doc_destroy (&reply);
    return 0;
}

static int
s_cmd_flush (qv_ctl_t *ctx, int argc, char **argv)
{
    qv_ctl_long_timeout (ctx);
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
s_cmd_list (qv_ctl_t *ctx, int argc, char **argv)
{
    while (qv_ctl_getopt (argc, argv, s_no_opts) != -1)
        ;
    qv_ctl_check_positional (argc, argv, 0, 0);
    qv_doc_t *reply;
    const qv_val_t *names;
    int rc = qv_ctl_list_collections (ctx, &reply, &names);
    if (rc)
        return rc;
    if (ctx->json) {
        qv_ctl_print_fields (qv_doc_root (reply));
        qv_doc_destroy (&reply);
        return 0;
    }
    for (size_t i = 0; i < qv_ctl_len (names); i++) {
        const char *s;
        size_t n;
        if (qv_val_str (qv_val_at (names, i), &s, &n) == 0)
            printf ("%.*s\n", (int) n, s);
    }
    qv_doc_destroy (&reply);
    return 0;
}

static int
s_cmd_stats (qv_ctl_t *ctx, int argc, char **argv)
{
    while (qv_ctl_getopt (argc, argv, s_no_opts) != -1)
        ;
    qv_ctl_check_positional (argc, argv, 0, 1);
    bool one = optind < argc;
    qv_wr_t *w = qv_client_request (ctx->client, "stats", one, NULL);
    if (one) {
        qv_wr_str (w, "collection");
        qv_wr_str (w, argv [optind]);
    }
    qv_doc_t *reply;
    int rc = qv_ctl_call (ctx, &w, &reply);
    if (rc)
        return rc;
    qv_ctl_print_fields (qv_doc_root (reply));
    qv_doc_destroy (&reply);
    return 0;
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
s_cmd_search (qv_ctl_t *ctx, int argc, char **argv)
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
    while ((c = qv_ctl_getopt (argc, argv, opts)) != -1)
        switch (c) {
            case 'k': k = qv_ctl_int_arg ("--k", optarg, 1, 16384); break;
            case 'g': gt_path = optarg; break;
            case 'n': per_request = qv_ctl_int_arg ("--nq-per-request", optarg, 1, 16384); break;
            case 'o': output_fields = optarg; break;
            case 'l': limit = qv_ctl_int_arg ("--limit", optarg, 1, INT64_MAX); break;
            case 'p': print = qv_ctl_int_arg ("--print", optarg, 0, INT64_MAX); break;
            case 'e': ef = qv_ctl_int_arg ("--ef", optarg, 1, 65536); break;
            case 'r': nprobe = qv_ctl_int_arg ("--nprobe", optarg, 1, 65536); break;
            case 'f': filter = optarg; break;
        }
    qv_ctl_check_positional (argc, argv, 2, 2);
    const char *name = argv [optind], *path = argv [optind + 1];
    if (print < 0)
        print = gt_path ? 0 : ctx->json ? INT64_MAX : 3;

    qv_ctl_schema_t schema;
    int rc = qv_ctl_describe (ctx, name, &schema);
    if (rc)
        return rc;
    uint32_t nq, ngt = 0, gt_dim = 0, dim = schema.dim;     //  the loader checks the file's
    //  A file of query vectors, or one vector on the command line
    bool inline_vector = access (path, F_OK) != 0 && strchr ("[-.0123456789", path [0]);
    float *queries = qv_ctl_vectors_load (&schema, name, path, inline_vector, limit, &nq, &rc);
    int32_t *gt = NULL;
    if (!queries)
        return rc;
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
    qv_ctl_long_timeout (ctx);
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
            qv_ctl_write_names (output_fields, w);
        }
        int64_t start = qv_clock_usec ();
        qv_doc_t *reply;
        rc = qv_ctl_call (ctx, &w, &reply);
        lat [r] = (qv_clock_usec () - start) / 1000.0;
        if (rc)
            break;
        const qv_val_t *results = qv_val_get (qv_doc_root (reply), "results");
        if (!results || qv_val_type (results) != QV_V_ARRAY || qv_val_len (results) != m) {
            fprintf (stderr, "qvctl: the server answered %zu result lists for %zu query vectors\n",
                     qv_ctl_len (results), m);
            rc = QV_EPROTO;
        }
        for (size_t j = 0; j < m && rc == 0; j++) {
            const qv_val_t *hits = qv_val_at (results, j);
            size_t q = first + j;
            hits_total += qv_ctl_len (hits);
            if ((long long) q < print && ctx->json) {
                printf ("%s", q ? ",\n  " : "{\"results\": [\n  ");
                qv_ctl_print_json (stdout, hits);
            }
            else
            if ((long long) q < print) {
                printf ("query %zu:\n", q);
                for (size_t h = 0; h < qv_ctl_len (hits); h++) {
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
                    if (qv_ctl_len (fields)) {
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
            for (size_t h = 0; h < qv_ctl_len (hits) && h < (size_t) k; h++) {
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
s_cmd_index (qv_ctl_t *ctx, int argc, char **argv)
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
    while ((c = qv_ctl_getopt (argc, argv, opts)) != -1)
        switch (c) {
            case 't': type = optarg; break;
            case 'M': M = qv_ctl_int_arg ("--M", optarg, 2, 1000000); break;
            case 'e': efc = qv_ctl_int_arg ("--ef-construction", optarg, 1, 1000000); break;
            case 'n': nlist = qv_ctl_int_arg ("--nlist", optarg, 1, 1000000); break;
            case 'm': m = qv_ctl_int_arg ("--m", optarg, 1, 1000000); break;
            case 'w': wait = false; break;
        }
    qv_ctl_check_positional (argc, argv, 1, 1);
    const char *name = argv [optind];
    qv_ctl_schema_t schema;
    int rc = qv_ctl_describe (ctx, name, &schema);
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
    if ((rc = qv_ctl_call (ctx, &w, &reply)))
        return rc;
    qv_doc_destroy (&reply);
    while (wait) {
        w = qv_client_request (ctx->client, "describe_index", 2, NULL);
        qv_wr_str (w, "collection"); qv_wr_str (w, name);
        qv_wr_str (w, "field"); qv_wr_str (w, schema.vector);
        if ((rc = qv_ctl_call (ctx, &w, &reply)))
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
s_cmd_get (qv_ctl_t *ctx, int argc, char **argv)
{
    static const struct option opts [] = {
        { "output-fields", required_argument, 0, 'o' }, { "help", no_argument, 0, 'h' },
        { 0, 0, 0, 0 }
    };
    const char *output_fields = NULL;
    int c;
    while ((c = qv_ctl_getopt (argc, argv, opts)) != -1)
        if (c == 'o')
            output_fields = optarg;
    qv_ctl_check_positional (argc, argv, 2, -1);
    const char *name = argv [optind];
    qv_ctl_schema_t schema;
    int rc = qv_ctl_describe (ctx, name, &schema);
    if (rc)
        return rc;
    int nids = argc - optind - 1;
    qv_wr_t *w = qv_client_request (ctx->client, "get", 2 + (output_fields != NULL), NULL);
    qv_wr_str (w, "collection"); qv_wr_str (w, name);
    qv_wr_str (w, "ids");
    qv_wr_array (w, (size_t) nids);
    for (int i = 0; i < nids && rc == 0; i++)
        rc = qv_ctl_write_key (&schema, argv [optind + 1 + i], w);
    if (output_fields) {
        qv_wr_str (w, "output_fields");
        qv_ctl_write_names (output_fields, w);
    }
    if (rc) {
        qv_wr_destroy (&w);
        return rc;
    }
    qv_doc_t *reply;
    rc = qv_ctl_call (ctx, &w, &reply);
    if (rc)
        return rc;
    const qv_val_t *rows = qv_val_get (qv_doc_root (reply), "rows");
    qv_ctl_print_rows (ctx, rows);
    if (qv_ctl_len (rows) < (size_t) nids)
        fprintf (stderr, "qvctl: %zu of %d ids found in '%s'\n", qv_ctl_len (rows), nids, name);
    qv_doc_destroy (&reply);
    return 0;
}

static int
s_cmd_delete (qv_ctl_t *ctx, int argc, char **argv)
{
    while (qv_ctl_getopt (argc, argv, s_no_opts) != -1)
        ;
    qv_ctl_check_positional (argc, argv, 2, -1);
    const char *name = argv [optind];
    qv_ctl_schema_t schema;
    int rc = qv_ctl_describe (ctx, name, &schema);
    if (rc)
        return rc;
    int nids = argc - optind - 1;
    qv_wr_t *w = qv_client_request (ctx->client, "delete", 2, NULL);
    qv_wr_str (w, "collection"); qv_wr_str (w, name);
    qv_wr_str (w, "ids");
    qv_wr_array (w, (size_t) nids);
    for (int i = 0; i < nids && rc == 0; i++)
        rc = qv_ctl_write_key (&schema, argv [optind + 1 + i], w);
    if (rc) {
        qv_wr_destroy (&w);
        return rc;
    }
    qv_doc_t *reply;
    rc = qv_ctl_call (ctx, &w, &reply);
    if (rc)
        return rc;
    uint64_t deleted = qv_ctl_get_uint (qv_doc_root (reply), "deleted");
    if (ctx->json)
        qv_ctl_print_fields (qv_doc_root (reply));
    else
        printf ("deleted %llu of %d ids from '%s'\n", (unsigned long long) deleted, nids, name);
    qv_doc_destroy (&reply);
    return 0;
}

static int
s_cmd_query (qv_ctl_t *ctx, int argc, char **argv)
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
    while ((c = qv_ctl_getopt (argc, argv, opts)) != -1)
        switch (c) {
            case 'f': filter = optarg; break;
            case 'o': output_fields = optarg; break;
            case 'l': limit = qv_ctl_int_arg ("--limit", optarg, 1, 16384); break;
            case 's': offset = qv_ctl_int_arg ("--offset", optarg, 0, 16384); break;
            case 'c': count = true; break;
            case 'p': partitions = optarg; break;
        }
    qv_ctl_check_positional (argc, argv, 1, 1);
    if (count && (output_fields || limit || offset))
        qv_ctl_usage_error ("%s", "--count takes no --output-fields, --limit or --offset");
    const char *name = argv [optind];
    qv_wr_t *w = qv_client_request (ctx->client, "query", 2 + (output_fields || count)
                                    + (limit > 0) + (offset > 0) + (partitions != NULL), NULL);
    qv_wr_str (w, "collection"); qv_wr_str (w, name);
    qv_wr_str (w, "filter"); qv_wr_str (w, filter);
    if (count) {
        qv_wr_str (w, "output_fields");
        qv_ctl_write_names ("count(*)", w);
    }
    else
    if (output_fields) {
        qv_wr_str (w, "output_fields");
        qv_ctl_write_names (output_fields, w);
    }
    if (limit) { qv_wr_str (w, "limit"); qv_wr_uint (w, (uint64_t) limit); }
    if (offset) { qv_wr_str (w, "offset"); qv_wr_uint (w, (uint64_t) offset); }
    if (partitions) {
        qv_wr_str (w, "partitions");
        qv_ctl_write_names (partitions, w);
    }
    qv_ctl_long_timeout (ctx);
    qv_doc_t *reply;
    int rc = qv_ctl_call (ctx, &w, &reply);
    if (rc)
        return rc;
    const qv_val_t *rows = qv_val_get (qv_doc_root (reply), "rows");
    if (count && !ctx->json) {
        const qv_val_t *n = qv_ctl_len (rows) ? qv_val_get (qv_val_at (rows, 0), "count(*)") : NULL;
        if (n)
            qv_ctl_print_json (stdout, n);
        putchar ('\n');
    }
    else
        qv_ctl_print_rows (ctx, rows);
    qv_doc_destroy (&reply);
    return 0;
}

//  partitions NAME [--create P | --drop P]
static int
s_cmd_partitions (qv_ctl_t *ctx, int argc, char **argv)
{
    static const struct option opts [] = {
        { "create", required_argument, 0, 'c' }, { "drop", required_argument, 0, 'd' },
        { "help", no_argument, 0, 'h' }, { 0, 0, 0, 0 }
    };
    const char *create = NULL, *drop = NULL;
    int c;
    while ((c = qv_ctl_getopt (argc, argv, opts)) != -1)
        switch (c) {
            case 'c': create = optarg; break;
            case 'd': drop = optarg; break;
        }
    qv_ctl_check_positional (argc, argv, 1, 1);
    if (create && drop)
        qv_ctl_usage_error ("%s", "give --create or --drop, not both");
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
    int rc = qv_ctl_call (ctx, &w, &reply);
    if (rc)
        return rc;
    const qv_val_t *names = qv_val_get (qv_doc_root (reply), "partitions");
    if (ctx->json && !partition)
        qv_ctl_print_fields (qv_doc_root (reply));
    else
    if (ctx->json)
        printf ("{\"ok\": true}\n");
    else
    if (partition)
        printf ("%s partition '%s' of '%s'\n", create ? "created" : "dropped", partition, name);
    for (size_t i = 0; !ctx->json && i < qv_ctl_len (names); i++) {
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
s_index_op (qv_ctl_t *ctx, int argc, char **argv, const char *op)
{
    static const struct option opts [] = {
        { "field", required_argument, 0, 'f' }, { "help", no_argument, 0, 'h' }, { 0, 0, 0, 0 }
    };
    const char *field = NULL;
    int c;
    while ((c = qv_ctl_getopt (argc, argv, opts)) != -1)
        if (c == 'f')
            field = optarg;
    qv_ctl_check_positional (argc, argv, 1, 1);
    const char *name = argv [optind];
    qv_ctl_schema_t schema;
    if (!field) {
        int rc = qv_ctl_describe (ctx, name, &schema);
        if (rc)
            return rc;
        field = schema.vector;
    }
    qv_wr_t *w = qv_client_request (ctx->client, op, 2, NULL);
    qv_wr_str (w, "collection"); qv_wr_str (w, name);
    qv_wr_str (w, "field"); qv_wr_str (w, field);
    qv_doc_t *reply;
    int rc = qv_ctl_call (ctx, &w, &reply);
    if (rc)
        return rc;
    if (streq (op, "describe_index"))
        qv_ctl_print_fields (qv_doc_root (reply));
    else
    if (ctx->json)
        printf ("{\"ok\": true}\n");
    else
        printf ("dropped the index on '%s' of '%s'\n", field, name);
    qv_doc_destroy (&reply);
    return 0;
}

static int
s_cmd_describe_index (qv_ctl_t *ctx, int argc, char **argv)
{
    return s_index_op (ctx, argc, argv, "describe_index");
}

static int
s_cmd_drop_index (qv_ctl_t *ctx, int argc, char **argv)
{
    return s_index_op (ctx, argc, argv, "drop_index");
}

static const s_command_t s_commands [] = {
    { "ping", s_cmd_ping,
      "ping\n\nAsks the server whether it is serving; prints its protocol version and the round trip." },
    { "create", s_cmd_create,
      "create NAME --dim D [--metric L2|IP|COSINE] [--auto-id] [--varchar-pk] [--shards N]\n"
      "       [--ttl-seconds N]\n\n"
      "Creates collection NAME with fields 'id' (primary key) and 'vector' (float_vector).\n"
      "  --dim D          vector dimension (required)\n"
      "  --metric M       L2 (squared Euclidean, default), IP or COSINE\n"
      "  --auto-id        the server assigns int64 ids\n"
      "  --varchar-pk     the primary key is a string (max 64 bytes) instead of int64\n"
      "  --shards N       write shards (default 1)\n"
      "  --ttl-seconds N  rows expire N seconds after their insert (default 0: never)" },
    { "alter", s_cmd_alter,
      "alter NAME [--ttl-seconds N] [--consistency LEVEL] [--description TEXT]\n\n"
      "Changes properties of collection NAME (at least one):\n"
      "  --ttl-seconds N      rows older than N seconds are no longer read (0: never expire)\n"
      "  --consistency LEVEL  the default read level: strong, bounded, session, eventually\n"
      "  --description TEXT   the collection's description" },
    { "drop", s_cmd_drop, "drop NAME\n\nDrops collection NAME and its data." },
    { "list", s_cmd_list, "list\n\nPrints the names of the collections, one a line." },
    { "describe", s_cmd_describe,
      "describe NAME\n\nPrints the schema and figures (rows, segments, ...) of collection NAME." },
    { "stats", s_cmd_stats,
      "stats [NAME]\n\nPrints the server's figures (rows, segments, bytes, WAL position), or a collection's." },
    { "flush", s_cmd_flush,
      "flush NAME\n\nWrites everything acknowledged so far into flushed segments; waits until done." },
    { "compact", s_cmd_compact,
      "compact NAME [--no-wait]\n\n"
      "Merges the flushed segments of NAME that hold deleted, replaced or expired rows, and\n"
      "its small ones, into new segments without those rows (their indexes built before\n"
      "they replace the old ones); waits until done, showing progress on stderr, and prints\n"
      "the segments merged and made and the rows dropped. Exits 1 if it failed.\n"
      "  --no-wait        print the compaction id and return (see compaction-state)" },
    { "compaction-state", s_cmd_compaction_state,
      "compaction-state NAME ID\n\nPrints the state of compaction ID of NAME (executing, completed, failed)." },
    { "backup", qv_ctl_cmd_backup, qv_ctl_backup_usage },
    { "restore", qv_ctl_cmd_restore, qv_ctl_restore_usage },
    { "import", qv_ctl_cmd_import,
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
    { "insert", qv_ctl_cmd_insert,
      "insert NAME FILE.jsonl [--batch 1000] [--window 4] [--partition P]\n\n"
      "Inserts rows given as JSON lines, one object a line: {\"id\": 1, \"vector\": [0.1, 0.2], \"tag\": \"a\"}\n"
      "(FILE - reads stdin). A live primary key is replaced, as upsert. Each request of\n"
      "--batch rows is atomic; on a failure, the rows acknowledged before it are printed.\n"
      "  --batch N        rows per request (default 1000)\n"
      "  --window W       requests in flight at once (default 4)\n"
      "  --partition P    insert into partition P (default _default)" },
    { "upsert", qv_ctl_cmd_upsert,
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
    { "user", qv_ctl_cmd_user, qv_ctl_user_usage },
    { "role", qv_ctl_cmd_role, qv_ctl_role_usage },
    { "probe", qv_ctl_cmd_probe, qv_ctl_probe_usage },
    { NULL, NULL, NULL }
};

static void
s_usage (FILE *out)
{
    fprintf (out,
        "Usage: qvctl [--server ENDPOINT] [--token USER:PASS] [--timeout SEC] COMMAND [ARGS]\n"
        "\n"
        "The command-line client of a Quiver server.\n"
        "\n"
        "Options (anywhere on the line):\n"
        "  --server ENDPOINT   the server's ZeroMQ endpoint (default $QV_SERVER, else " S_DEFAULT_SERVER ")\n"
        "  --server-key KEY    the public key of a server that encrypts (quiver serve\n"
        "                      --curve-secret-key): its 40 characters, or the public key\n"
        "                      file `quiver keygen` wrote (default $QV_SERVER_KEY)\n"
        "  --client-key FILE   with --server-key: this client's key pair, a secret key file\n"
        "                      of `quiver keygen`, for a server that admits listed client\n"
        "                      keys (quiver serve --curve-clients; default $QV_CLIENT_KEY)\n"
        "  --token USER:PASS   authenticate to a server run with --auth (default\n"
        "                      $QUIVER_TOKEN)\n"
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
    const char *server_key = getenv ("QV_SERVER_KEY");
    if (server_key && !*server_key)
        server_key = NULL;
    const char *client_key = getenv ("QV_CLIENT_KEY");
    if (client_key && !*client_key)
        client_key = NULL;
    bool client_key_given = false;  //  on the line, not from the environment
    const char *token = getenv ("QUIVER_TOKEN");
    //  Take the global options out of argv wherever they are.
    int n = 1;
    for (int i = 1; i < argc; i++) {
        const char *value = NULL;
        bool is_server = strncmp (argv [i], "--server", 8) == 0 && (argv [i][8] == 0 || argv [i][8] == '=');
        bool is_timeout = strncmp (argv [i], "--timeout", 9) == 0 && (argv [i][9] == 0 || argv [i][9] == '=');
        bool is_output = strncmp (argv [i], "--output", 8) == 0 && (argv [i][8] == 0 || argv [i][8] == '=');
        bool is_key = strncmp (argv [i], "--server-key", 12) == 0 && (argv [i][12] == 0 || argv [i][12] == '=');
        bool is_token = strncmp (argv [i], "--token", 7) == 0 && (argv [i][7] == 0 || argv [i][7] == '=');
        bool is_client_key = strncmp (argv [i], "--client-key", 12) == 0 && (argv [i][12] == 0 || argv [i][12] == '=');
        if (is_key)
            is_server = false;
        if (!is_server && !is_timeout && !is_output && !is_key && !is_token && !is_client_key) {
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
        if (is_key)
            server_key = value;
        else
        if (is_client_key) {
            client_key = value;
            client_key_given = true;
        }
        else
        if (is_token)
            token = value;
        else
            timeout_ms = (int) (qv_ctl_int_arg ("--timeout", value, 1, 86400) * 1000);
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
    zsys_init ();
    zsys_set_linger (0);
    zsys_handler_set (NULL);        //  Ctrl-C stops qvctl at once
    qv_ctl_t ctx = { NULL, server, timeout_ms, json, cmd->name, cmd->usage };
    //  --help needs no server: parse it before connecting.
    for (int i = 2; i < argc; i++)
        if (streq (argv [i], "--help") || streq (argv [i], "-h")) {
            printf ("Usage: qvctl %s\n", cmd->usage);
            return 0;
        }
        else
        if (streq (argv [i], "--"))
            break;
    //  A key file made by `quiver keygen` (its public half, or the secret file) or the key
    char key [41] = "";
    if (server_key) {
        if (qv_curve_key_read (server_key, key)) {
            fprintf (stderr, "qvctl: --server-key: '%.60s' is neither a 40-character key nor a "
                     "key file written by `quiver keygen`\n", server_key);
            return 2;
        }
        server_key = key;
    }
    if (client_key && !server_key && client_key_given) {
        fprintf (stderr, "qvctl: --client-key is this client's CURVE key pair: give the "
                 "server's public key too (--server-key)\n");
        return 2;
    }
    if (!server_key)
        client_key = NULL;          //  $QV_CLIENT_KEY is for encrypted servers only
    ctx.client = server_key ? qv_client_new_curve_key (server, server_key, client_key)
                            : qv_client_new (server);
    if (!ctx.client) {
        fprintf (stderr, "qvctl: %s: %s\n", client_key ? "--client-key" : server_key ? "--server-key"
                 : "--server", qv_err_msg ());
        return 2;
    }
    if (timeout_ms)
        qv_client_set_timeout (ctx.client, timeout_ms);
    if (qv_client_set_token (ctx.client, token)) {
        fprintf (stderr, "qvctl: %s\n", qv_err_msg ());
        qv_client_destroy (&ctx.client);
        return 2;
    }
    qv_ctl_begin (&ctx);
    optind = 0;                     //  getopt_long restarts on argv + 1
    int rc = cmd->fn (&ctx, argc - 1, argv + 1);
    qv_client_destroy (&ctx.client);
    return rc ? 1 : 0;
}
