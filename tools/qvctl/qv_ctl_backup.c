//  qvctl backup and restore (README "Backup and restore").
//
//  backup asks the server for a snapshot (`backup`), which the server writes itself
//  into a directory on its own machine, and follows `get_backup_state` with a progress
//  bar on stderr. restore reads a backup where qvctl runs, checks every file of it
//  before it creates anything (qv_backup_verify), then creates the collection with the
//  backed-up schema, its partitions, inserts the rows through the normal insert path,
//  one file a request, and creates the indexes: into a running server.
#include "qv_ctl.h"
#include "qv_ctl_io.h"
#include "qv_backup.h"
#include "qv_rc.h"

#include <czmq.h>
#include <unistd.h>

const char qv_ctl_backup_usage [] =
    "backup NAME|--all --to DIR [--no-wait]\n\n"
    "Backs up collection NAME (--all: every collection, each into DIR/NAME) without\n"
    "stopping writes: a consistent snapshot (every row acknowledged before the command,\n"
    "none written after its snapshot timestamp) that the SERVER writes into DIR on the\n"
    "server's machine (an absolute path; or an s3://HOST:PORT/BUCKET/PREFIX URL). Shows\n"
    "progress on stderr; prints the rows and the snapshot timestamp. Exits 1 if it failed.\n"
    "  --to DIR         the backup's directory (must not hold a backup already)\n"
    "  --no-wait        print the backup id and return";

const char qv_ctl_restore_usage [] =
    "restore --from DIR [--as NEWNAME] [--check]\n\n"
    "Restores a backup into the running server: checks every file of DIR (read where\n"
    "qvctl runs) against the backup's manifest first and refuses a damaged or incomplete\n"
    "backup naming the file, then creates the collection (schema, partitions), inserts\n"
    "the rows with their primary keys and creates the indexes; progress on stderr.\n"
    "  --from DIR       the backup (a directory, or an s3:// URL)\n"
    "  --as NEWNAME     the new collection's name (default: the backed-up one's)\n"
    "  --check          check the backup only (every file against the manifest: its\n"
    "                   size, CRC32C and envelope) and say what it holds; restores\n"
    "                   nothing and needs no server. Exit 0 if sound, 1 if not";

//  One progress line on stderr: a bar when stderr is a terminal (redrawn in place),
//  else a plain line at most every 2 s and at the end.
static void
s_progress (const char *what, const char *name, uint64_t done, uint64_t total, double secs,
            bool last, int64_t *printed)
{
    bool tty = isatty (STDERR_FILENO);
    if (!last && qv_clock_usec () - *printed < (tty ? 200000 : 2000000))
        return;
    *printed = qv_clock_usec ();
    double frac = total ? (double) done / (double) total : 1.0;
    if (frac > 1)
        frac = 1;
    char bar [31];
    int fill = (int) (frac * 30);
    for (int i = 0; i < 30; i++)
        bar [i] = i < fill ? '#' : '.';
    bar [30] = 0;
    fprintf (stderr, "%s%s '%s' [%s] %3.0f%% %llu/%llu rows, %.1f s%s", tty ? "\r" : "", what,
             name, bar, frac * 100, (unsigned long long) done, (unsigned long long) total, secs,
             tty && !last ? "" : "\n");
    fflush (stderr);
}

//  Backs up collection name to dir and waits for it; 0, 1 (failed) or the code.
static int
s_backup_one (qv_ctl_t *ctx, const char *name, const char *dir, bool wait)
{
    int64_t start = qv_clock_usec ();
    qv_wr_t *w = qv_client_request (ctx->client, "backup", 2, NULL);
    qv_wr_str (w, "collection"); qv_wr_str (w, name);
    qv_wr_str (w, "to"); qv_wr_str (w, dir);
    qv_doc_t *reply;
    int rc = qv_ctl_call (ctx, &w, &reply);
    if (rc)
        return rc;
    uint64_t id = qv_ctl_get_uint (qv_doc_root (reply), "backup_id");
    uint64_t ts = qv_ctl_get_uint (qv_doc_root (reply), "ts");
    qv_doc_destroy (&reply);
    if (!wait) {
        if (ctx->json)
            printf ("{\"ok\": true, \"collection\": \"%s\", \"backup_id\": %llu, \"ts\": %llu}\n",
                    name, (unsigned long long) id, (unsigned long long) ts);
        else
            printf ("backup %llu of '%s' at ts %llu started, to %s\n", (unsigned long long) id,
                    name, (unsigned long long) ts, dir);
        return 0;
    }
    int64_t printed = 0;
    for (;; zclock_sleep (100)) {
        w = qv_client_request (ctx->client, "get_backup_state", 1, NULL);
        qv_wr_str (w, "backup_id"); qv_wr_uint (w, id);
        if ((rc = qv_ctl_call (ctx, &w, &reply)))
            return rc;
        const qv_val_t *r = qv_doc_root (reply);
        uint64_t done = qv_ctl_get_uint (r, "rows_done"), total = qv_ctl_get_uint (r, "rows_total");
        double secs = (double) (qv_clock_usec () - start) / 1e6;
        bool executing = qv_val_is (qv_val_get (r, "state"), "executing");
        bool failed = qv_val_is (qv_val_get (r, "state"), "failed");
        s_progress ("backup", name, done, total, secs, !executing, &printed);
        if (executing) {
            qv_doc_destroy (&reply);
            continue;
        }
        char error [400] = "";
        qv_ctl_get_str (r, "error", error, sizeof error);
        if (ctx->json) {
            printf ("{\"ok\": %s, \"collection\": \"%s\", \"backup_id\": %llu, \"ts\": %llu, "
                    "\"rows\": %llu, \"seconds\": %.3f, \"error\": ", failed ? "false" : "true",
                    name, (unsigned long long) id, (unsigned long long) ts,
                    (unsigned long long) done, secs);
            qv_ctl_print_str (stdout, error, strlen (error));
            puts ("}");
        }
        else
        if (failed)
            fprintf (stderr, "qvctl: backup of '%s' failed: %s\n", name, error);
        else
            printf ("backed up '%s': %llu rows at ts %llu to %s in %.2f s (%.0f rows/s)\n", name,
                    (unsigned long long) done, (unsigned long long) ts, dir, secs,
                    secs > 0 ? (double) done / secs : 0);
        qv_doc_destroy (&reply);
        return failed ? 1 : 0;
    }
}

int
qv_ctl_cmd_backup (qv_ctl_t *ctx, int argc, char **argv)
{
    static const struct option opts [] = {
        { "to", required_argument, 0, 't' }, { "all", no_argument, 0, 'a' },
        { "no-wait", no_argument, 0, 'n' }, { "help", no_argument, 0, 'h' }, { 0, 0, 0, 0 }
    };
    const char *to = NULL;
    bool all = false, wait = true;
    int c;
    while ((c = qv_ctl_getopt (argc, argv, opts)) != -1)
        if (c == 't')
            to = optarg;
        else
        if (c == 'a')
            all = true;
        else
        if (c == 'n')
            wait = false;
    qv_ctl_check_positional (argc, argv, all ? 0 : 1, all ? 0 : 1);
    if (!to)
        qv_ctl_usage_error ("%s", "--to DIR is required");
    qv_ctl_long_timeout (ctx);
    if (!all)
        return s_backup_one (ctx, argv [optind], to, wait);
    //  --all: each collection into DIR/NAME
    qv_doc_t *reply;
    const qv_val_t *names;
    int rc = qv_ctl_list_collections (ctx, &reply, &names);
    if (rc)
        return rc;
    int worst = 0;
    for (size_t i = 0; i < qv_ctl_len (names); i++) {
        char name [256], dir [4096];
        if (qv_val_strcpy (qv_val_at (names, i), name, sizeof name))
            continue;
        snprintf (dir, sizeof dir, "%s/%s", to, name);
        rc = s_backup_one (ctx, name, dir, wait);
        worst = worst ? worst : rc;
    }
    qv_doc_destroy (&reply);
    return worst;
}

//  What the inserts of a restore need to know of the collection made.
typedef struct {
    bool part_key;                  //  partitions follow a partition key
    bool keep_ids;                  //  the key is auto_id: its ids are kept (keep_ids)
} s_shape_t;

//  create_collection with the backed-up schema and properties. A primary key that the
//  server assigned (auto_id) stays auto_id; its rows are inserted with their keys
//  (`keep_ids`).
static int
s_create (qv_ctl_t *ctx, const char *name, const qv_val_t *desc, s_shape_t *shape)
{
    bool *part_key = &shape->part_key;
    static const char *props [] = { "shards", "consistency", "description", "ttl_seconds",
                                    "enable_dynamic_field" };
    const qv_val_t *fields = qv_val_get (desc, "fields");
    *part_key = false;
    shape->keep_ids = false;
    for (size_t i = 0; i < qv_ctl_len (fields); i++) {
        *part_key |= qv_ctl_get_bool (qv_val_at (fields, i), "partition_key");
        shape->keep_ids |= qv_ctl_get_bool (qv_val_at (fields, i), "auto_id");
    }
    size_t n = 2 + *part_key;
    for (size_t p = 0; p < sizeof props / sizeof props [0]; p++)
        n += qv_val_get (desc, props [p]) != NULL;
    qv_wr_t *w = qv_client_request (ctx->client, "create_collection", n, NULL);
    qv_wr_str (w, "collection"); qv_wr_str (w, name);
    qv_wr_str (w, "fields");
    qv_wr_array (w, qv_ctl_len (fields));
    for (size_t i = 0; i < qv_ctl_len (fields); i++)
        qv_wr_val (w, qv_val_at (fields, i));
    for (size_t p = 0; p < sizeof props / sizeof props [0]; p++)
        if (qv_val_get (desc, props [p])) {
            qv_wr_str (w, props [p]);
            qv_wr_val (w, qv_val_get (desc, props [p]));
        }
    if (*part_key) {
        qv_wr_str (w, "num_partitions");
        qv_wr_val (w, qv_val_get (desc, "num_partitions"));
    }
    qv_doc_t *reply;
    int rc = qv_ctl_call (ctx, &w, &reply);
    qv_doc_destroy (&reply);
    return rc;
}

//  The partitions (named ones) and the indexes of the backup.
static int
s_partitions (qv_ctl_t *ctx, const char *name, const qv_val_t *parts)
{
    int rc = 0;
    for (size_t i = 0; i < qv_ctl_len (parts) && rc == 0; i++) {
        if (qv_val_is (qv_val_at (parts, i), "_default"))
            continue;
        qv_wr_t *w = qv_client_request (ctx->client, "create_partition", 2, NULL);
        qv_wr_str (w, "collection"); qv_wr_str (w, name);
        qv_wr_str (w, "partition"); qv_wr_val (w, qv_val_at (parts, i));
        qv_doc_t *reply;
        rc = qv_ctl_call (ctx, &w, &reply);
        qv_doc_destroy (&reply);
    }
    return rc;
}

static int
s_indexes (qv_ctl_t *ctx, const char *name, const qv_val_t *indexes)
{
    static const char *keys [] = { "field", "index_type", "metric", "params" };
    int rc = 0;
    for (size_t i = 0; i < qv_ctl_len (indexes) && rc == 0; i++) {
        const qv_val_t *x = qv_val_at (indexes, i);
        size_t n = 1;
        for (size_t k = 0; k < 4; k++)
            n += qv_val_get (x, keys [k]) != NULL;
        qv_wr_t *w = qv_client_request (ctx->client, "create_index", n, NULL);
        qv_wr_str (w, "collection"); qv_wr_str (w, name);
        for (size_t k = 0; k < 4; k++)
            if (qv_val_get (x, keys [k])) {
                qv_wr_str (w, keys [k]);
                qv_wr_val (w, qv_val_get (x, keys [k]));
            }
        qv_doc_t *reply;
        rc = qv_ctl_call (ctx, &w, &reply);
        qv_doc_destroy (&reply);
    }
    return rc;
}

#define S_WINDOW 4                  //  insert requests in flight during a restore

//  One file's insert in flight.
typedef struct {
    uint64_t rid;
    size_t file;
    uint64_t rows;
} s_flight_t;

//  Sends the rows of file i of the backup as one insert, without waiting; 0 or the code.
static int
s_send_file (qv_ctl_t *ctx, qv_store_t *store, const char *from, const char *name,
             const qv_val_t *entry, s_shape_t shape, s_flight_t *flight)
{
    qv_doc_t *doc;
    int rc = qv_backup_read (store, from, entry, &doc);
    if (rc) {
        fprintf (stderr, "qvctl: %s\n", qv_err_msg ());
        return rc;
    }
    const qv_val_t *root = qv_doc_root (doc), *part = qv_val_get (root, "partition");
    bool named = !shape.part_key && part && !qv_val_is (part, "_default");
    qv_wr_t *w = qv_client_request (ctx->client, "insert", 2 + named + shape.keep_ids, &flight->rid);
    qv_wr_str (w, "collection"); qv_wr_str (w, name);
    if (shape.keep_ids) {
        qv_wr_str (w, "keep_ids");
        qv_wr_bool (w, true);
    }
    if (named) {
        qv_wr_str (w, "partition");
        qv_wr_val (w, part);
    }
    qv_wr_str (w, "rows");
    qv_wr_val (w, qv_val_get (root, "rows"));
    flight->rows = qv_ctl_len (qv_val_get (root, "rows"));
    qv_doc_destroy (&doc);
    rc = qv_client_send (ctx->client, w);
    qv_wr_destroy (&w);
    if (rc)
        fprintf (stderr, "qvctl: %s\n", qv_client_error (ctx->client));
    return rc;
}

//  Inserts the rows of every file of the backup, S_WINDOW requests in flight; *rows_p
//  counts the rows acknowledged. 0 or the code of the first failure (reported).
static int
s_insert_all (qv_ctl_t *ctx, qv_store_t *store, const char *from, const char *name,
              const qv_val_t *manifest, s_shape_t shape, int64_t start, uint64_t *rows_p)
{
    const qv_val_t *files = qv_val_get (manifest, "files");
    size_t nfiles = qv_ctl_len (files), next = 0;
    uint64_t total = qv_ctl_get_uint (manifest, "rows"), done = 0;
    s_flight_t flights [S_WINDOW];
    int inflight = 0, rc = 0;
    int64_t printed = 0;
    while (rc == 0 && (next < nfiles || inflight > 0)) {
        while (rc == 0 && next < nfiles && inflight < S_WINDOW) {
            flights [inflight].file = next;
            rc = s_send_file (ctx, store, from, name, qv_val_at (files, next), shape,
                              &flights [inflight]);
            inflight += rc == 0;
            next++;
        }
        if (rc || inflight == 0)
            break;
        qv_doc_t *reply;
        uint64_t rid;
        rc = qv_client_recv (ctx->client, &reply, &rid);
        qv_doc_destroy (&reply);
        int slot = -1;
        for (int i = 0; i < inflight; i++)
            if (flights [i].rid == rid)
                slot = i;
        if (rc) {
            char key [64] = "?";
            if (slot >= 0)
                qv_ctl_get_str (qv_val_at (files, flights [slot].file), "key", key, sizeof key);
            fprintf (stderr, "qvctl: insert of the rows of %s failed: %s: %s\n", key,
                     qv_client_code (ctx->client), qv_client_error (ctx->client));
            break;
        }
        if (slot < 0)
            continue;               //  not one of ours
        done += flights [slot].rows;
        flights [slot] = flights [--inflight];
        s_progress ("restore", name, done, total, (double) (qv_clock_usec () - start) / 1e6,
                    next == nfiles && inflight == 0, &printed);
    }
    if (rc)
        fprintf (stderr, "qvctl: restore stopped: %llu rows of '%s' acknowledged before the "
                 "failure (drop it before restoring again)\n", (unsigned long long) done, name);
    *rows_p = done;
    return rc;
}

int
qv_ctl_cmd_restore (qv_ctl_t *ctx, int argc, char **argv)
{
    static const struct option opts [] = {
        { "from", required_argument, 0, 'f' }, { "as", required_argument, 0, 'a' },
        { "check", no_argument, 0, 'c' }, { "help", no_argument, 0, 'h' }, { 0, 0, 0, 0 }
    };
    const char *from = NULL, *as = NULL;
    bool check = false;
    int c;
    while ((c = qv_ctl_getopt (argc, argv, opts)) != -1)
        if (c == 'f')
            from = optarg;
        else
        if (c == 'a')
            as = optarg;
        else
        if (c == 'c')
            check = true;
    qv_ctl_check_positional (argc, argv, 0, 0);
    if (!from)
        qv_ctl_usage_error ("%s", "--from DIR is required");
    qv_ctl_long_timeout (ctx);
    int64_t start = qv_clock_usec ();
    //  Every file is checked before anything is created
    qv_store_t *store = access (from, F_OK) == 0 || strstr (from, "://")
                      ? qv_store_new_readonly (from) : NULL;
    qv_doc_t *manifest = NULL;
    int rc = store ? qv_backup_verify (store, from, &manifest)
                   : qv_err (QV_ENOTFOUND, "backup %s: no such directory", from);
    if (rc) {
        fprintf (stderr, "qvctl: %s\n", qv_err_msg ());
        qv_store_destroy (&store);
        return 1;
    }
    const qv_val_t *m = qv_doc_root (manifest), *desc = qv_val_get (m, "describe");
    char name [256];
    if (as)
        snprintf (name, sizeof name, "%s", as);
    else
        qv_ctl_get_str (m, "collection", name, sizeof name);
    if (check) {
        //  What a restore would create, and nothing else
        const qv_val_t *files = qv_val_get (m, "files");
        uint64_t bytes = 0;
        for (size_t i = 0; i < qv_ctl_len (files); i++)
            bytes += qv_ctl_get_uint (qv_val_at (files, i), "bytes");
        if (ctx->json)
            printf ("{\"ok\": true, \"backup\": \"%s\", \"collection\": \"%s\", \"rows\": %llu, "
                    "\"ts\": %llu, \"files\": %zu, \"bytes\": %llu}\n", from, name,
                    (unsigned long long) qv_ctl_get_uint (m, "rows"),
                    (unsigned long long) qv_ctl_get_uint (m, "snapshot_ts"), qv_ctl_len (files),
                    (unsigned long long) bytes);
        else
            printf ("backup %s is sound: collection '%s', %llu rows at ts %llu, %zu files, "
                    "%llu bytes\n", from, name, (unsigned long long) qv_ctl_get_uint (m, "rows"),
                    (unsigned long long) qv_ctl_get_uint (m, "snapshot_ts"), qv_ctl_len (files),
                    (unsigned long long) bytes);
        qv_doc_destroy (&manifest);
        qv_store_destroy (&store);
        return 0;
    }
    fprintf (stderr, "backup %s checked: collection '%s', %llu rows at ts %llu, %zu files\n",
             from, name, (unsigned long long) qv_ctl_get_uint (m, "rows"),
             (unsigned long long) qv_ctl_get_uint (m, "snapshot_ts"),
             qv_ctl_len (qv_val_get (m, "files")));
    s_shape_t shape;
    uint64_t rows = 0;
    rc = s_create (ctx, name, desc, &shape);
    if (rc == 0 && !shape.part_key)
        rc = s_partitions (ctx, name, qv_val_get (m, "partitions"));
    if (rc == 0)
        rc = s_insert_all (ctx, store, from, name, m, shape, start, &rows);
    if (rc == 0)
        rc = s_indexes (ctx, name, qv_val_get (desc, "indexes"));
    double secs = (double) (qv_clock_usec () - start) / 1e6;
    if (rc == 0) {
        if (ctx->json)
            printf ("{\"ok\": true, \"collection\": \"%s\", \"rows\": %llu, \"ts\": %llu, "
                    "\"seconds\": %.3f}\n", name, (unsigned long long) rows,
                    (unsigned long long) qv_ctl_get_uint (m, "snapshot_ts"), secs);
        else
            printf ("restored '%s' from %s: %llu rows in %.2f s (%.0f rows/s)\n", name, from,
                    (unsigned long long) rows, secs, secs > 0 ? (double) rows / secs : 0);
    }
    qv_doc_destroy (&manifest);
    qv_store_destroy (&store);
    return rc ? 1 : 0;
}
