//  qvctl's write commands: import of vector files and JSON lines, insert and upsert,
//  as pipelined batches with a progress bar.
#include "qv_ctl.h"
#include "qv_ctl_io.h"
#include "qv_rc.h"

#include <czmq.h>
#include <unistd.h>

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
s_send_batches (qv_ctl_t *ctx, const char *op, const char *name, const char *partition,
                size_t total, size_t batch, int window, s_batch_fn *fn, void *arg,
                size_t *acked_p)
{
    s_flight_t *flights = calloc ((size_t) window, sizeof *flights);
    if (!flights) {
        fprintf (stderr, "qvctl: out of memory\n");
        return QV_ENOMEM;
    }
    qv_ctl_long_timeout (ctx);
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
    const qv_ctl_schema_t *schema;
    const float *vectors;
    long long start_id;
} s_vec_batches_t;

static void
s_write_vec_batch (qv_wr_t *w, size_t start, size_t n, void *arg)
{
    s_vec_batches_t *b = (s_vec_batches_t *) arg;
    const qv_ctl_schema_t *schema = b->schema;
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
s_write_jsonl (qv_ctl_t *ctx, const char *op, const char *name, const char *path,
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

int
qv_ctl_cmd_import (qv_ctl_t *ctx, int argc, char **argv)
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
    while ((c = qv_ctl_getopt (argc, argv, opts)) != -1)
        switch (c) {
            case 'b': batch = qv_ctl_int_arg ("--batch", optarg, 1, 1 << 20); break;
            case 's': start_id = qv_ctl_int_arg ("--start-id", optarg, INT64_MIN, INT64_MAX);
                      start_given = true; break;
            case 'l': limit = qv_ctl_int_arg ("--limit", optarg, 1, INT64_MAX); break;
            case 'w': window = qv_ctl_int_arg ("--window", optarg, 1, 64); break;
            case 'p': partition = optarg; break;
        }
    qv_ctl_check_positional (argc, argv, 2, 2);
    const char *name = argv [optind], *path = argv [optind + 1];
    if (qv_ctl_is_jsonl (path)) {
        if (start_given)
            qv_ctl_usage_error ("%s", "--start-id is for vector files; JSON rows carry their ids");
        return s_write_jsonl (ctx, "insert", name, path, partition, limit, (size_t) batch,
                              (int) window);
    }
    qv_ctl_schema_t schema;
    int rc = qv_ctl_describe (ctx, name, &schema);
    if (rc)
        return rc;
    uint32_t file_rows;
    float *vectors = qv_ctl_vectors_load (&schema, name, path, false, limit, &file_rows, &rc);
    if (!vectors)
        return rc;
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
s_cmd_write (qv_ctl_t *ctx, int argc, char **argv, const char *op)
{
    static const struct option opts [] = {
        { "batch", required_argument, 0, 'b' }, { "window", required_argument, 0, 'w' },
        { "partition", required_argument, 0, 'p' }, { "help", no_argument, 0, 'h' },
        { 0, 0, 0, 0 }
    };
    long long batch = 1000, window = 4;
    const char *partition = NULL;
    int c;
    while ((c = qv_ctl_getopt (argc, argv, opts)) != -1)
        switch (c) {
            case 'b': batch = qv_ctl_int_arg ("--batch", optarg, 1, 1 << 20); break;
            case 'w': window = qv_ctl_int_arg ("--window", optarg, 1, 64); break;
            case 'p': partition = optarg; break;
        }
    qv_ctl_check_positional (argc, argv, 2, 2);
    return s_write_jsonl (ctx, op, argv [optind], argv [optind + 1], partition, 0,
                          (size_t) batch, (int) window);
}

int
qv_ctl_cmd_insert (qv_ctl_t *ctx, int argc, char **argv)
{
    return s_cmd_write (ctx, argc, argv, "insert");
}

int
qv_ctl_cmd_upsert (qv_ctl_t *ctx, int argc, char **argv)
{
    return s_cmd_write (ctx, argc, argv, "upsert");
}

