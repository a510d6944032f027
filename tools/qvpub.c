//  qvpub: NATS-side client commands (to be folded into qvctl): publish vectors from an
//  .fvecs file as inserts over NATS, and print the change feed.
#include "qv_codec.h"
#include "qv_rc.h"

#include <czmq.h>
#include <getopt.h>
#include <nats/nats.h>
#include <signal.h>

static void
s_usage (FILE *out)
{
    fprintf (out,
        "Usage: qvpub [options] publish COLLECTION FILE.fvecs\n"
        "       qvpub [options] tail-cdc [COLLECTION]\n"
        "\n"
        "publish   inserts every vector of FILE.fvecs into COLLECTION over NATS\n"
        "          (quiver.insert.COLLECTION), BATCH rows per message, waiting for each\n"
        "          reply (the write is durable then) unless --no-wait; progress on stderr.\n"
        "          The collection's primary key must be auto_id unless --first-id is given.\n"
        "tail-cdc  prints the change feed (quiver.cdc.COLLECTION, or every collection),\n"
        "          one line per event: op collection shard seq ts ids [part/parts]\n"
        "\n"
        "Options:\n"
        "  --nats URL         NATS server (default nats://127.0.0.1:4222)\n"
        "  --prefix P         subject prefix of the server (default quiver)\n"
        "  --batch N          rows per message (default 1000; keep a message under 1 MiB)\n"
        "  --field NAME       vector field (default vec)\n"
        "  --first-id N       give explicit ids N, N+1, ... (int64 primary key 'id')\n"
        "  --id-field NAME    primary key field for --first-id (default id)\n"
        "  --no-wait          fire-and-forget: publish without a reply subject\n"
        "  --stream-subject S publish to JetStream subject S instead (acked by JetStream)\n"
        "  -h, --help         this help\n");
}

static volatile sig_atomic_t s_stop;

static void
s_on_signal (int sig)
{
    (void) sig;
    s_stop = 1;
}

static void
s_on_cdc (natsConnection *nc, natsSubscription *sub, natsMsg *msg, void *closure)
{
    (void) nc;
    (void) sub;
    (void) closure;
    int rc;
    qv_doc_t *doc = qv_doc_parse (natsMsg_GetData (msg), (size_t) natsMsg_GetDataLength (msg),
                                  SIZE_MAX, &rc);
    if (!doc) {
        printf ("%s: undecodable event (%d bytes)\n", natsMsg_GetSubject (msg), natsMsg_GetDataLength (msg));
        natsMsg_Destroy (msg);
        return;
    }
    const qv_val_t *root = qv_doc_root (doc), *v;
    char op [32] = "?", coll [256] = "?";
    uint64_t shard = 0, seq = 0, ts = 0, part = 0, parts = 0;
    if ((v = qv_val_get (root, "op"))) qv_val_strcpy (v, op, sizeof op);
    if ((v = qv_val_get (root, "collection"))) qv_val_strcpy (v, coll, sizeof coll);
    if ((v = qv_val_get (root, "shard"))) qv_val_uint (v, &shard);
    if ((v = qv_val_get (root, "seq"))) qv_val_uint (v, &seq);
    if ((v = qv_val_get (root, "ts"))) qv_val_uint (v, &ts);
    if ((v = qv_val_get (root, "part"))) qv_val_uint (v, &part);
    if ((v = qv_val_get (root, "parts"))) qv_val_uint (v, &parts);
    const qv_val_t *ids = qv_val_get (root, "ids");
    printf ("%-17s %-20s shard %llu seq %llu ts %llu ids %zu", op, coll, (unsigned long long) shard,
            (unsigned long long) seq, (unsigned long long) ts, ids ? qv_val_len (ids) : 0);
    if (ids && qv_val_len (ids) > 0) {
        int64_t a, b;
        if (qv_val_int (qv_val_at (ids, 0), &a) == 0
        &&  qv_val_int (qv_val_at (ids, qv_val_len (ids) - 1), &b) == 0)
            printf (" [%lld..%lld]", (long long) a, (long long) b);
    }
    if (parts > 1)
        printf (" part %llu/%llu", (unsigned long long) part, (unsigned long long) parts);
    printf ("\n");
    fflush (stdout);
    qv_doc_destroy (&doc);
    natsMsg_Destroy (msg);
}

static int
s_tail (natsConnection *nc, const char *prefix, const char *collection)
{
    char subject [512];
    snprintf (subject, sizeof subject, "%s.cdc.%s", prefix, collection ? collection : "*");
    natsSubscription *sub = NULL;
    natsStatus s = natsConnection_Subscribe (&sub, nc, subject, s_on_cdc, NULL);
    if (s != NATS_OK) {
        fprintf (stderr, "qvpub: cannot subscribe to %s: %s\n", subject, natsStatus_GetText (s));
        return 1;
    }
    fprintf (stderr, "qvpub: following %s (Ctrl-C to stop)\n", subject);
    while (!s_stop)
        zclock_sleep (100);
    natsSubscription_Unsubscribe (sub);
    natsSubscription_Destroy (sub);
    return 0;
}

static int
s_publish (natsConnection *nc, const char *prefix, const char *collection, const char *path,
           uint32_t batch, const char *field, int64_t first_id, const char *id_field,
           bool no_wait, const char *stream_subject)
{
    FILE *f = fopen (path, "rb");
    if (!f) {
        fprintf (stderr, "qvpub: cannot open %s: %s\n", path, strerror (errno));
        return 1;
    }
    int32_t dim;
    if (fread (&dim, 4, 1, f) != 1 || dim <= 0 || dim > 65536) {
        fprintf (stderr, "qvpub: %s is not an .fvecs file (bad dimension)\n", path);
        fclose (f);
        return 1;
    }
    fseek (f, 0, SEEK_END);
    long size = ftell (f);
    fseek (f, 0, SEEK_SET);
    size_t rec = 4 + (size_t) dim * 4;
    if (size <= 0 || (size_t) size % rec) {
        fprintf (stderr, "qvpub: %s: size %ld is not a multiple of %zu (dim %d)\n", path, size, rec, dim);
        fclose (f);
        return 1;
    }
    uint64_t total = (uint64_t) size / rec, sent = 0, failed = 0;
    char subject [512];
    snprintf (subject, sizeof subject, "%s.insert.%s", prefix, collection);
    if (stream_subject)
        snprintf (subject, sizeof subject, "%s", stream_subject);
    jsCtx *js = NULL;
    if (stream_subject && natsConnection_JetStream (&js, nc, NULL) != NATS_OK) {
        fprintf (stderr, "qvpub: JetStream is not available\n");
        fclose (f);
        return 1;
    }
    float *vecs = malloc ((size_t) batch * (size_t) dim * 4);
    qv_wr_t *w = qv_wr_new ();
    int64_t t0 = zclock_mono (), last_report = t0;
    int rc = 0;
    while (sent < total && !s_stop) {
        uint32_t n = (uint32_t) (total - sent < batch ? total - sent : batch);
        for (uint32_t r = 0; r < n; r++) {
            int32_t d;
            if (fread (&d, 4, 1, f) != 1 || d != dim
            ||  fread (vecs + (size_t) r * (size_t) dim, 4, (size_t) dim, f) != (size_t) dim) {
                fprintf (stderr, "qvpub: %s: vector %llu is damaged\n", path, (unsigned long long) (sent + r));
                rc = 1;
                goto done;
            }
        }
        qv_wr_reset (w);
        qv_wr_map (w, 1);
        qv_wr_str (w, "columns");
        qv_wr_map (w, first_id >= 0 ? 2 : 1);
        if (first_id >= 0) {
            qv_wr_str (w, id_field);
            qv_wr_array (w, n);
            for (uint32_t r = 0; r < n; r++)
                qv_wr_int (w, first_id + (int64_t) (sent + r));
        }
        qv_wr_str (w, field);
        qv_wr_bin (w, vecs, (size_t) n * (size_t) dim * 4);
        size_t len;
        const void *data = qv_wr_data (w, &len);
        natsStatus s;
        if (js) {
            jsPubAck *ack = NULL;
            s = js_Publish (&ack, js, subject, data, (int) len, NULL, NULL);
            jsPubAck_Destroy (ack);
        }
        else
        if (no_wait)
            s = natsConnection_Publish (nc, subject, data, (int) len);
        else {
            natsMsg *reply = NULL;
            s = natsConnection_Request (&reply, nc, subject, data, (int) len, 30000);
            if (s == NATS_OK) {
                int prc;
                qv_doc_t *doc = qv_doc_parse (natsMsg_GetData (reply), (size_t) natsMsg_GetDataLength (reply),
                                              SIZE_MAX, &prc);
                bool ok = false;
                const qv_val_t *v = doc ? qv_val_get (qv_doc_root (doc), "ok") : NULL;
                if (v)
                    qv_val_bool (v, &ok);
                if (!ok) {
                    char code [32] = "?", error [512] = "";
                    if (doc && (v = qv_val_get (qv_doc_root (doc), "code")))
                        qv_val_strcpy (v, code, sizeof code);
                    if (doc && (v = qv_val_get (qv_doc_root (doc), "error")))
                        qv_val_strcpy (v, error, sizeof error);
                    fprintf (stderr, "qvpub: rows %llu..%llu refused: %s: %s\n",
                             (unsigned long long) sent, (unsigned long long) (sent + n - 1), code, error);
                    failed += n;
                }
                if (!ok) {
                    qv_doc_destroy (&doc);
                    natsMsg_Destroy (reply);
                    sent += n;
                    break;          //  the next batches would fail the same way
                }
                qv_doc_destroy (&doc);
                natsMsg_Destroy (reply);
            }
        }
        if (s != NATS_OK) {
            fprintf (stderr, "qvpub: publish to %s failed: %s\n", subject, natsStatus_GetText (s));
            rc = 1;
            goto done;
        }
        sent += n;
        int64_t now = zclock_mono ();
        if (now - last_report >= 1000 || sent == total) {
            last_report = now;
            double secs = (double) (now - t0) / 1000.0;
            fprintf (stderr, "\rqvpub: %llu / %llu rows (%.0f%%), %.0f rows/s   ", (unsigned long long) sent,
                     (unsigned long long) total, 100.0 * (double) sent / (double) total,
                     secs > 0 ? (double) sent / secs : 0.0);
        }
    }
    if (no_wait)
        natsConnection_FlushTimeout (nc, 30000);
    fprintf (stderr, "\nqvpub: %llu rows published in %.2f s%s", (unsigned long long) sent,
             (double) (zclock_mono () - t0) / 1000.0, no_wait ? " (fire-and-forget: check stats)" : "");
    if (failed)
        fprintf (stderr, ", %llu refused", (unsigned long long) failed);
    fprintf (stderr, "\n");
    rc = failed ? 1 : rc;
done:
    qv_wr_destroy (&w);
    free (vecs);
    jsCtx_Destroy (js);
    fclose (f);
    return rc;
}

int
main (int argc, char *argv [])
{
    const char *url = "nats://127.0.0.1:4222", *prefix = "quiver", *field = "vec", *id_field = "id";
    const char *stream_subject = NULL;
    long batch = 1000;
    int64_t first_id = -1;
    bool no_wait = false;
    static struct option opts [] = {
        { "nats", required_argument, 0, 'n' }, { "prefix", required_argument, 0, 'p' },
        { "batch", required_argument, 0, 'b' }, { "field", required_argument, 0, 'f' },
        { "first-id", required_argument, 0, 'i' }, { "id-field", required_argument, 0, 'k' },
        { "no-wait", no_argument, 0, 'w' }, { "stream-subject", required_argument, 0, 's' },
        { "help", no_argument, 0, 'h' }, { 0, 0, 0, 0 }
    };
    int c;
    while ((c = getopt_long (argc, argv, "h", opts, NULL)) != -1)
        switch (c) {
            case 'n': url = optarg; break;
            case 'p': prefix = optarg; break;
            case 'b': batch = atol (optarg); break;
            case 'f': field = optarg; break;
            case 'i': first_id = atoll (optarg); break;
            case 'k': id_field = optarg; break;
            case 'w': no_wait = true; break;
            case 's': stream_subject = optarg; break;
            case 'h': s_usage (stdout); return 0;
            default: s_usage (stderr); return 2;
        }
    if (batch < 1 || batch > 1000000) {
        fprintf (stderr, "qvpub: --batch must be 1..1000000\n");
        return 2;
    }
    int nargs = argc - optind;
    const char *cmd = nargs > 0 ? argv [optind] : "";
    if (!(streq (cmd, "publish") && nargs == 3) && !(streq (cmd, "tail-cdc") && nargs <= 2)) {
        s_usage (stderr);
        return 2;
    }
    signal (SIGINT, s_on_signal);
    signal (SIGTERM, s_on_signal);
    natsConnection *nc = NULL;
    natsStatus s = natsConnection_ConnectTo (&nc, url);
    if (s != NATS_OK) {
        fprintf (stderr, "qvpub: cannot connect to %s: %s\n", url, natsStatus_GetText (s));
        return 1;
    }
    int rc = streq (cmd, "publish")
           ? s_publish (nc, prefix, argv [optind + 1], argv [optind + 2], (uint32_t) batch, field,
                        first_id, id_field, no_wait, stream_subject)
           : s_tail (nc, prefix, nargs == 2 ? argv [optind + 1] : NULL);
    natsConnection_Destroy (nc);
    nats_Close ();
    return rc;
}
