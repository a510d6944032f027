//  qvnatsbench: insert throughput and ack latency of Quiver's write paths side by side
//  in one run: ZeroMQ request/reply, NATS request/reply, NATS fire-and-forget and
//  JetStream ingestion, beside a plain JetStream consumer that only acks the same
//  messages. Starts its own nats-server and `quiver serve`; prints a table of medians.
#include "qv_bench.h"
#include "qv_codec.h"

#include <czmq.h>
#include <getopt.h>
#include <nats/nats.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <fcntl.h>
#include <libgen.h>
#include <unistd.h>

static int s_window = 8;            //  requests in flight (ZeroMQ and NATS request/reply)
#define S_MAX_MSGS 100000

static const char *s_quiver;        //  --quiver, else the quiver next to this program
static char s_quiver_next [4096];
static char s_dir [256];
static int s_nats_port, s_zmq_port;
static char s_nats_url [64], s_endpoint [64];
static pid_t s_nats_pid, s_quiver_pid;

static int
s_free_port (void)
{
    int fd = socket (AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = { .sin_family = AF_INET };
    sa.sin_addr.s_addr = htonl (INADDR_LOOPBACK);
    socklen_t len = sizeof sa;
    bind (fd, (struct sockaddr *) &sa, sizeof sa);
    getsockname (fd, (struct sockaddr *) &sa, &len);
    close (fd);
    return ntohs (sa.sin_port);
}

//  The socket of the progress polls (s_field): kept open, since a new connection per
//  poll cost the server as much CPU as the request itself (about 0.25 ms each, a
//  quarter of a core at one poll a millisecond, taken from the path being timed)
static zsock_t *s_poll_sock;

static zsock_t *
s_req_new (int timeout)
{
    zsock_t *s = zsock_new (ZMQ_REQ);
    zsock_set_rcvtimeo (s, timeout);
    zsock_set_linger (s, 0);
    zsock_connect (s, "%s", s_endpoint);
    return s;
}

//  One request and its reply on s (NULL: a socket of its own)
static qv_doc_t *
s_call_on (zsock_t *s, qv_wr_t *w, int timeout)
{
    zsock_t *own = s ? NULL : s_req_new (timeout);
    size_t size;
    const void *data = qv_wr_data (w, &size);
    zframe_t *f = zframe_new (data, size);
    zframe_send (&f, s ? s : own, 0);
    zframe_t *r = zframe_recv (s ? s : own);
    qv_doc_t *doc = NULL;
    int rc;
    if (r)
        doc = qv_doc_parse (zframe_data (r), zframe_size (r), SIZE_MAX, &rc);
    else
    if (s == s_poll_sock)
        zsock_destroy (&s_poll_sock);   //  a REQ without its reply cannot send again
    zframe_destroy (&r);
    zsock_destroy (&own);
    return doc;
}

static qv_doc_t *
s_call (qv_wr_t *w, int timeout)
{
    return s_call_on (NULL, w, timeout);
}

static bool
s_ok (qv_doc_t *doc)
{
    bool ok = false;
    const qv_val_t *v = doc ? qv_val_get (qv_doc_root (doc), "ok") : NULL;
    if (v)
        qv_val_bool (v, &ok);
    return ok;
}

static uint64_t
s_field (const char *op, const char *collection, const char *key)
{
    qv_wr_t *w = qv_wr_new ();
    qv_wr_map (w, collection ? 2 : 1);
    qv_wr_str (w, "op"); qv_wr_str (w, op);
    if (collection) {
        qv_wr_str (w, "collection"); qv_wr_str (w, collection);
    }
    if (!s_poll_sock)
        s_poll_sock = s_req_new (10000);
    qv_doc_t *r = s_call_on (s_poll_sock, w, 10000);
    qv_wr_destroy (&w);
    uint64_t u = UINT64_MAX;
    const qv_val_t *v = r ? qv_val_get (qv_doc_root (r), key) : NULL;
    if (v && qv_val_uint (v, &u))
        u = UINT64_MAX;
    qv_doc_destroy (&r);
    return u;
}

static void
s_ddl (const char *op, const char *collection, int dim, bool auto_id)
{
    qv_wr_t *w = qv_wr_new ();
    qv_wr_map (w, op [0] == 'c' ? 3 : 2);
    qv_wr_str (w, "op"); qv_wr_str (w, op);
    qv_wr_str (w, "collection"); qv_wr_str (w, collection);
    if (op [0] == 'c') {
        qv_wr_str (w, "fields");
        qv_wr_array (w, 2);
        qv_wr_map (w, auto_id ? 4 : 3);
        qv_wr_str (w, "name"); qv_wr_str (w, "id");
        qv_wr_str (w, "type"); qv_wr_str (w, "int64");
        qv_wr_str (w, "primary"); qv_wr_bool (w, true);
        if (auto_id) {
            qv_wr_str (w, "auto_id"); qv_wr_bool (w, true);
        }
        qv_wr_map (w, 3);
        qv_wr_str (w, "name"); qv_wr_str (w, "vec");
        qv_wr_str (w, "type"); qv_wr_str (w, "float_vector");
        qv_wr_str (w, "dim"); qv_wr_uint (w, (uint64_t) dim);
    }
    qv_doc_t *r = s_call (w, 30000);
    if (!s_ok (r))
        fprintf (stderr, "qvnatsbench: %s %s failed\n", op, collection);
    qv_doc_destroy (&r);
    qv_wr_destroy (&w);
}

static void
s_start_nats (void)
{
    char port [16], sd [300], log [300];
    snprintf (port, sizeof port, "%d", s_nats_port);
    snprintf (sd, sizeof sd, "%s/js", s_dir);
    snprintf (log, sizeof log, "%s/nats.log", s_dir);
    s_nats_pid = fork ();
    if (s_nats_pid == 0) {
        if (!freopen (log, "a", stdout))
            _exit (127);
        dup2 (1, 2);
        execlp ("nats-server", "nats-server", "-a", "127.0.0.1", "-p", port, "-js", "-sd", sd, (char *) NULL);
        _exit (127);
    }
}

static bool
s_start_quiver (void)
{
    char cmd [1024];
    snprintf (cmd, sizeof cmd, "exec %s serve --data %s/data --bind %s --nats %s --ingest-stream BENCH "
              ">>%s/quiver.log 2>&1", s_quiver, s_dir, s_endpoint, s_nats_url, s_dir);
    s_quiver_pid = fork ();
    if (s_quiver_pid == 0) {
        execl ("/bin/sh", "sh", "-c", cmd, (char *) NULL);
        _exit (127);
    }
    for (int i = 0; i < 6000; i++) {
        int status;
        if (waitpid (s_quiver_pid, &status, WNOHANG) == s_quiver_pid) {
            s_quiver_pid = 0;       //  it exited (not found, refused its options, crashed)
            return false;
        }
        qv_wr_t *w = qv_wr_new ();
        qv_wr_map (w, 1);
        qv_wr_str (w, "op"); qv_wr_str (w, "ping");
        qv_doc_t *r = s_call (w, 500);
        qv_wr_destroy (&w);
        bool ok = s_ok (r);
        qv_doc_destroy (&r);
        if (ok)
            return true;
        zclock_sleep (10);
    }
    return false;
}

static void
s_stop (pid_t *pid)
{
    if (*pid > 0) {
        kill (*pid, SIGTERM);
        waitpid (*pid, NULL, 0);
        *pid = 0;
    }
}

//  One insert payload of n rows at dim, ids from first_id unless < 0: without op and
//  collection (collection NULL: a NATS payload), or a whole ZeroMQ request with rid.
static void
s_payload (qv_wr_t *w, int64_t first_id, uint32_t n, int dim, const char *collection, int rid)
{
    bool with_op = collection != NULL;
    //  The vectors are made once: the client's time goes to sending, not to them
    static float *vecs;
    static size_t cap;
    size_t need = (size_t) n * (size_t) dim;
    if (need > cap) {
        vecs = realloc (vecs, need * sizeof (float));
        for (size_t i = cap; i < need; i++)
            vecs [i] = (float) ((i * 2654435761u) % 1000) / 1000.0f;
        cap = need;
    }
    qv_wr_map (w, with_op ? 4 : 1);
    if (with_op) {
        qv_wr_str (w, "op"); qv_wr_str (w, "insert");
        qv_wr_str (w, "collection"); qv_wr_str (w, collection);
        qv_wr_str (w, "rid"); qv_wr_uint (w, (uint64_t) rid);
    }
    qv_wr_str (w, "columns");
    qv_wr_map (w, first_id >= 0 ? 2 : 1);
    if (first_id >= 0) {
        qv_wr_str (w, "id");
        qv_wr_array (w, n);
        for (uint32_t r = 0; r < n; r++)
            qv_wr_int (w, first_id + r);
    }
    qv_wr_str (w, "vec");
    qv_wr_bin (w, vecs, need * sizeof (float));
}

//  What the server spent on a path's rows: CPU seconds per million rows and minor
//  page faults per row (most of them fresh memory the kernel cleared first); 0: none.
//  Beside it the CPU of the broker (nats-server) and of this client over the same
//  rows: on a machine where all three share the cores, a path's rows/s follows the
//  sum, so the columns tell quiver's share of a gap from the transport's.
typedef struct {
    double cpu_per_mrow;
    double faults_per_row;
    double nats_per_mrow;
    double client_per_mrow;
} s_cost_t;

typedef struct {
    double rows_per_sec;
    double p50_ms, p99_ms;          //  < 0: not measured
    s_cost_t cost;
} s_result_t;

//  The server's CPU seconds and minor faults so far (cpu < 0: unknown), and the
//  CPU seconds of nats-server and of this process.
typedef struct {
    double cpu, faults, nats, client;
} s_use_t;

#define S_USE_NONE ((s_use_t) { -1, -1, -1, -1 })

static s_use_t
s_use (void)
{
    return (s_use_t) { qv_bench_cpu_s (s_quiver_pid), qv_bench_minflt (s_quiver_pid),
                       qv_bench_cpu_s (s_nats_pid), qv_bench_cpu_s (getpid ()) };
}

//  The cost of rows between two s_use readings.
static s_cost_t
s_cost (s_use_t before, s_use_t after, double rows)
{
    if (before.cpu < 0 || after.cpu < before.cpu || before.faults < 0 || rows <= 0)
        return (s_cost_t) { 0, 0, 0, 0 };
    return (s_cost_t) { (after.cpu - before.cpu) / rows * 1e6,
                        (after.faults - before.faults) / rows,
                        before.nats < 0 ? 0 : (after.nats - before.nats) / rows * 1e6,
                        before.client < 0 ? 0 : (after.client - before.client) / rows * 1e6 };
}

static int
s_cmp_double (const void *a, const void *b)
{
    double x = *(const double *) a, y = *(const double *) b;
    return x < y ? -1 : x > y;
}

static double
s_pct (double *v, int n, double p)
{
    qsort (v, (size_t) n, sizeof *v, s_cmp_double);
    int i = (int) (p * (n - 1) + 0.5);
    return v [i];
}

//  ZeroMQ: a DEALER with s_window inserts in flight, matched by rid.
static s_result_t
s_bench_zmq (const char *collection, int dim, uint32_t rows, int msgs)
{
    zsock_t *d = zsock_new (ZMQ_DEALER);
    zsock_set_rcvtimeo (d, 60000);
    zsock_connect (d, "%s", s_endpoint);
    double *lat = calloc ((size_t) msgs, sizeof *lat);
    int64_t *sent_at = calloc ((size_t) msgs, sizeof *sent_at);
    qv_wr_t *w = qv_wr_new ();
    int sent = 0, done = 0, failed = 0;
    s_use_t cpu0 = s_use ();
    int64_t t0 = zclock_usecs ();
    while (done < msgs) {
        while (sent < msgs && sent - done < s_window) {
            qv_wr_reset (w);
            s_payload (w, (int64_t) sent * rows, rows, dim, collection, sent);
            size_t size;
            const void *data = qv_wr_data (w, &size);
            sent_at [sent] = zclock_usecs ();
            zframe_t *f = zframe_new (data, size);
            zframe_send (&f, d, 0);
            sent++;
        }
        zframe_t *r = zframe_recv (d);
        if (!r)
            break;
        int rc;
        qv_doc_t *doc = qv_doc_parse (zframe_data (r), zframe_size (r), SIZE_MAX, &rc);
        uint64_t rid = 0;
        const qv_val_t *v = doc ? qv_val_get (qv_doc_root (doc), "rid") : NULL;
        if (v)
            qv_val_uint (v, &rid);
        failed += !s_ok (doc);
        if (rid < (uint64_t) msgs)
            lat [done] = (double) (zclock_usecs () - sent_at [rid]) / 1000.0;
        qv_doc_destroy (&doc);
        zframe_destroy (&r);
        done++;
    }
    double secs = (double) (zclock_usecs () - t0) / 1e6;
    s_use_t cpu1 = s_use ();
    if (failed)
        fprintf (stderr, "qvnatsbench: %d ZeroMQ inserts failed\n", failed);
    s_result_t res = { (double) done * rows / secs, s_pct (lat, done, 0.5), s_pct (lat, done, 0.99),
                       s_cost (cpu0, cpu1, (double) done * rows) };
    free (lat);
    free (sent_at);
    qv_wr_destroy (&w);
    zsock_destroy (&d);
    return res;
}

//  NATS request/reply: s_window requests in flight, replies to per-request inboxes.
typedef struct {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int done, failed;
    int64_t *sent_at;
    double *lat;
} s_rr_t;

static void
s_on_reply (natsConnection *nc, natsSubscription *sub, natsMsg *msg, void *closure)
{
    (void) nc;
    (void) sub;
    s_rr_t *rr = closure;
    const char *subject = natsMsg_GetSubject (msg);
    int i = atoi (strrchr (subject, '.') + 1);
    int rc;
    qv_doc_t *doc = qv_doc_parse (natsMsg_GetData (msg), (size_t) natsMsg_GetDataLength (msg), SIZE_MAX, &rc);
    bool ok = s_ok (doc);
    qv_doc_destroy (&doc);
    natsMsg_Destroy (msg);
    pthread_mutex_lock (&rr->lock);
    rr->lat [rr->done] = (double) (zclock_usecs () - rr->sent_at [i]) / 1000.0;
    rr->done++;
    rr->failed += !ok;
    pthread_cond_signal (&rr->cond);
    pthread_mutex_unlock (&rr->lock);
}

static s_result_t
s_bench_nats_rr (natsConnection *nc, const char *collection, int dim, uint32_t rows, int msgs)
{
    s_rr_t rr = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0,
                  calloc ((size_t) msgs, sizeof (int64_t)), calloc ((size_t) msgs, sizeof (double)) };
    char inbox [80], subject [128], reply [112];
    snprintf (inbox, sizeof inbox, "_BENCH.%s", collection);
    snprintf (subject, sizeof subject, "quiver.insert.%s", collection);
    char wild [96];
    snprintf (wild, sizeof wild, "%s.*", inbox);
    natsSubscription *sub = NULL;
    natsConnection_Subscribe (&sub, nc, wild, s_on_reply, &rr);
    natsConnection_FlushTimeout (nc, 5000);
    qv_wr_t *w = qv_wr_new ();
    s_use_t cpu0 = s_use ();
    int64_t t0 = zclock_usecs ();
    for (int i = 0; i < msgs; i++) {
        pthread_mutex_lock (&rr.lock);
        while (i - rr.done >= s_window)
            pthread_cond_wait (&rr.cond, &rr.lock);
        pthread_mutex_unlock (&rr.lock);
        qv_wr_reset (w);
        s_payload (w, (int64_t) i * rows, rows, dim, NULL, 0);
        size_t size;
        const void *data = qv_wr_data (w, &size);
        snprintf (reply, sizeof reply, "%s.%d", inbox, i);
        rr.sent_at [i] = zclock_usecs ();
        natsConnection_PublishRequest (nc, subject, reply, data, (int) size);
    }
    pthread_mutex_lock (&rr.lock);
    while (rr.done < msgs) {
        struct timespec ts;
        clock_gettime (CLOCK_REALTIME, &ts);
        ts.tv_sec += 60;
        if (pthread_cond_timedwait (&rr.cond, &rr.lock, &ts))
            break;
    }
    int done = rr.done;
    pthread_mutex_unlock (&rr.lock);
    double secs = (double) (zclock_usecs () - t0) / 1e6;
    s_use_t cpu1 = s_use ();
    natsSubscription_Unsubscribe (sub);
    natsSubscription_Destroy (sub);
    if (rr.failed)
        fprintf (stderr, "qvnatsbench: %d NATS requests failed\n", rr.failed);
    s_result_t res = { (double) done * rows / secs, s_pct (rr.lat, done, 0.5), s_pct (rr.lat, done, 0.99),
                       s_cost (cpu0, cpu1, (double) done * rows) };
    free (rr.lat);
    free (rr.sent_at);
    qv_wr_destroy (&w);
    return res;
}

//  Rows inserted into a collection as its change feed (<prefix>.cdc.<collection>) tells
//  them, applied after they are durable: progress seen without asking the server
typedef struct {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    uint64_t rows;
    int64_t first_at;               //  when the first event came (usecs), 0: none yet
    uint64_t first_rows;            //  ... and the rows it told
    s_use_t first_cpu;              //  ... and the server's CPU and faults then
    natsSubscription *sub;
} s_feed_t;

static void
s_on_change (natsConnection *nc, natsSubscription *sub, natsMsg *msg, void *closure)
{
    (void) nc;
    (void) sub;
    s_feed_t *feed = closure;
    int rc;
    qv_doc_t *doc = qv_doc_parse (natsMsg_GetData (msg), (size_t) natsMsg_GetDataLength (msg), SIZE_MAX, &rc);
    const qv_val_t *op = doc ? qv_val_get (qv_doc_root (doc), "op") : NULL;
    const qv_val_t *ids = doc ? qv_val_get (qv_doc_root (doc), "ids") : NULL;
    const char *name = NULL;
    size_t len = 0;
    if (op && ids && qv_val_str (op, &name, &len) == 0 && len == 6 && memcmp (name, "insert", 6) == 0) {
        pthread_mutex_lock (&feed->lock);
        feed->rows += qv_val_len (ids);
        if (!feed->first_at) {
            feed->first_at = zclock_usecs ();
            feed->first_rows = feed->rows;
            feed->first_cpu = s_use ();
        }
        pthread_cond_signal (&feed->cond);
        pthread_mutex_unlock (&feed->lock);
    }
    qv_doc_destroy (&doc);
    natsMsg_Destroy (msg);
}

static void
s_feed_watch (s_feed_t *feed, natsConnection *nc, const char *collection)
{
    pthread_mutex_init (&feed->lock, NULL);
    pthread_cond_init (&feed->cond, NULL);
    feed->rows = 0;
    feed->first_at = 0;
    feed->first_rows = 0;
    feed->first_cpu = S_USE_NONE;
    char subject [128];
    snprintf (subject, sizeof subject, "quiver.cdc.%s", collection);
    natsConnection_Subscribe (&feed->sub, nc, subject, s_on_change, feed);
    natsConnection_FlushTimeout (nc, 5000);
}

//  Waits until the feed told want rows or nothing came for 2 s (quiet seconds before
//  the first event; an event dropped: then the caller asks the server); returns when
//  the last rows were told (usecs).
static int64_t
s_feed_wait (s_feed_t *feed, uint64_t want, int quiet)
{
    int64_t at = zclock_usecs ();
    pthread_mutex_lock (&feed->lock);
    while (feed->rows < want) {
        uint64_t before = feed->rows;
        struct timespec ts;
        clock_gettime (CLOCK_REALTIME, &ts);
        ts.tv_sec += before ? 2 : quiet;
        pthread_cond_timedwait (&feed->cond, &feed->lock, &ts);
        if (feed->rows == before)
            break;
        at = zclock_usecs ();
    }
    pthread_mutex_unlock (&feed->lock);
    return at;
}

static void
s_feed_end (s_feed_t *feed)
{
    natsSubscription_Unsubscribe (feed->sub);
    natsSubscription_Destroy (feed->sub);
    pthread_cond_destroy (&feed->cond);
    pthread_mutex_destroy (&feed->lock);
}

static s_result_t
s_bench_nats_ff (natsConnection *nc, const char *collection, int dim, uint32_t rows, int msgs)
{
    char subject [128];
    snprintf (subject, sizeof subject, "quiver.insert.%s", collection);
    qv_wr_t *w = qv_wr_new ();
    s_feed_t feed;
    s_feed_watch (&feed, nc, collection);
    uint64_t want = (uint64_t) msgs * rows, have = 0;
    s_use_t cpu0 = s_use ();
    int64_t t0 = zclock_usecs ();
    for (int i = 0; i < msgs; i++) {
        qv_wr_reset (w);
        s_payload (w, (int64_t) i * rows, rows, dim, NULL, 0);
        size_t size;
        const void *data = qv_wr_data (w, &size);
        natsConnection_Publish (nc, subject, data, (int) size);
    }
    natsConnection_FlushTimeout (nc, 60000);
    //  Done when the change feed has told every row (no polls taking the server's
    //  CPU while it works); if it went quiet short of them, asked every 2 ms
    int64_t t1 = s_feed_wait (&feed, want, 2);
    int64_t end = zclock_mono () + 120000;
    while ((have = s_field ("describe_collection", collection, "rows")) < want && zclock_mono () < end) {
        zclock_sleep (2);
        t1 = zclock_usecs ();
    }
    s_use_t cpu1 = s_use ();
    s_feed_end (&feed);
    double secs = (double) (t1 - t0) / 1e6;
    if (have != want)
        fprintf (stderr, "qvnatsbench: fire-and-forget: %llu of %llu rows arrived\n",
                 (unsigned long long) have, (unsigned long long) want);
    qv_wr_destroy (&w);
    return (s_result_t) { (double) have / secs, -1, -1, s_cost (cpu0, cpu1, (double) have) };
}

//  Publishes msgs messages to the stream; returns the first sequence.
static uint64_t
s_fill_stream (jsCtx *js, const char *collection, int dim, uint32_t rows, int msgs, uint64_t *last)
{
    char subject [128];
    snprintf (subject, sizeof subject, "bench.insert.%s", collection);
    qv_wr_t *w = qv_wr_new ();
    uint64_t first = 0;
    jsPubOptions po;
    jsPubOptions_Init (&po);
    for (int i = 0; i < msgs; i++) {
        qv_wr_reset (w);
        s_payload (w, -1, rows, dim, NULL, 0);
        size_t size;
        const void *data = qv_wr_data (w, &size);
        jsPubAck *ack = NULL;
        if (js_Publish (&ack, js, subject, data, (int) size, &po, NULL) == NATS_OK) {
            if (!first)
                first = ack->Sequence;
            *last = ack->Sequence;
        }
        jsPubAck_Destroy (ack);
    }
    qv_wr_destroy (&w);
    return first;
}

//  A consumer that only fetches and acks stream messages first..last.
static s_result_t
s_bench_plain (jsCtx *js, uint64_t first, uint64_t last, uint32_t rows)
{
    jsConsumerConfig cc;
    jsConsumerConfig_Init (&cc);
    cc.Durable = "plain";
    cc.AckPolicy = js_AckExplicit;
    cc.DeliverPolicy = js_DeliverByStartSequence;
    cc.OptStartSeq = first;
    cc.MaxAckPending = 100000;
    jsErrCode jerr;
    js_DeleteConsumer (js, "BENCH", "plain", NULL, &jerr);
    jsConsumerInfo *ci = NULL;
    js_AddConsumer (&ci, js, "BENCH", &cc, NULL, &jerr);
    jsConsumerInfo_Destroy (ci);
    jsSubOptions so;
    jsSubOptions_Init (&so);
    so.Stream = "BENCH";
    so.Consumer = "plain";
    natsSubscription *sub = NULL;
    js_PullSubscribe (&sub, js, NULL, "plain", NULL, &so, &jerr);
    uint64_t got = 0, want = last - first + 1;
    int64_t t0 = zclock_usecs ();
    while (got < want) {
        natsMsgList list = { 0 };
        natsStatus s = natsSubscription_Fetch (&list, sub, 256, 5000, &jerr);
        for (int i = 0; i < list.Count; i++)
            natsMsg_Ack (list.Msgs [i], NULL);
        got += (uint64_t) list.Count;
        natsMsgList_Destroy (&list);
        if (s != NATS_OK && s != NATS_TIMEOUT)
            break;
    }
    double secs = (double) (zclock_usecs () - t0) / 1e6;
    natsSubscription_Destroy (sub);
    js_DeleteConsumer (js, "BENCH", "plain", NULL, &jerr);
    return (s_result_t) { (double) got * rows / secs, -1, -1, { 0, 0, 0, 0 } };    //  quiver is stopped
}

//  Quiver consuming messages first..last of the stream: restarted after they were
//  published; timed from its first progress to the last message applied.
static s_result_t
s_bench_ingest (natsConnection *nc, const char *collection, uint64_t first, uint64_t last, uint32_t rows)
{
    //  Timed by the change feed, first rows to last, without asking the server while
    //  it works; if the feed went quiet short of them, by its stats polled every 5 ms
    s_feed_t feed;
    s_feed_watch (&feed, nc, collection);
    if (!s_start_quiver ()) {
        fprintf (stderr, "qvnatsbench: quiver did not restart\n");
        exit (1);
    }
    uint64_t want = (last - first + 1) * rows;
    int64_t t1 = s_feed_wait (&feed, want, 60);
    s_use_t cpu1 = s_use ();
    pthread_mutex_lock (&feed.lock);
    bool told = feed.rows >= want && feed.first_at && t1 > feed.first_at;
    int64_t t0 = feed.first_at;
    uint64_t first_rows = feed.first_rows;
    s_use_t cpu0 = feed.first_cpu;
    pthread_mutex_unlock (&feed.lock);
    s_feed_end (&feed);
    //  CPU from the first rows applied (after the restart's recovery) to the last
    if (told)
        return (s_result_t) { (double) (want - first_rows) / ((double) (t1 - t0) / 1e6), -1, -1,
                              s_cost (cpu0, cpu1, (double) (want - first_rows)) };
    fprintf (stderr, "qvnatsbench: the change feed told %llu of %llu rows; timed by polling stats\n",
             (unsigned long long) first_rows, (unsigned long long) want);
    uint64_t base = first - 1, seq = 0, seen = 0;
    t0 = 0;
    cpu0 = S_USE_NONE;
    int64_t end = zclock_mono () + 300000;
    while (zclock_mono () < end) {
        seq = s_field ("stats", NULL, "ingest_seq");
        if (seq != UINT64_MAX && seq > base && !t0) {
            t0 = zclock_usecs ();
            cpu0 = s_use ();
            seen = seq;
        }
        if (seq != UINT64_MAX && seq >= last)
            break;
        //  Each poll costs the server about 0.25 ms of CPU: at one a millisecond the
        //  polls took a quarter of a core from the ingestion they timed. The first
        //  and the last progress are both seen up to 5 ms late, which cancels out.
        zclock_sleep (5);
    }
    double secs = (double) (zclock_usecs () - t0) / 1e6;
    cpu1 = s_use ();
    return (s_result_t) { secs > 0 ? (double) (last - seen) * rows / secs : 0, -1, -1,
                          s_cost (cpu0, cpu1, (double) (last - seen) * rows) };
}

//  MB/s of writing 256 MiB in 1 MiB writes and one fsync in the run's directory (on
//  the data directory's disk), as `dd bs=1M count=256 conv=fsync` measures it.
static double
s_disk_fsync_mbs (void)
{
    char path [300];
    snprintf (path, sizeof path, "%s/disk.bench", s_dir);
    int fd = open (path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0)
        return 0;
    char *buf = malloc (1 << 20);
    memset (buf, 0x5a, 1 << 20);
    int64_t t0 = zclock_usecs ();
    bool ok = true;
    for (int i = 0; i < 256 && ok; i++)
        ok = write (fd, buf, 1 << 20) == 1 << 20;
    ok = ok && fsync (fd) == 0;
    double secs = (double) (zclock_usecs () - t0) / 1e6;
    close (fd);
    unlink (path);
    free (buf);
    return ok && secs > 0 ? 256.0 * 1048576 / 1e6 / secs : 0;
}

static const char *s_only;        //  --only: one path (zmq, rr, ff, js), else all

static bool
s_runs (const char *path)
{
    return !s_only || streq (s_only, path);
}

static double
s_median (double *v, int n)
{
    return s_pct (v, n, 0.5);
}

int
main (int argc, char *argv [])
{
    int msgs = 300, reps = 3;
    int dims [8] = { 128, 768 }, ndims = 2;
    static struct option opts [] = {
        { "quiver", required_argument, 0, 'q' }, { "msgs", required_argument, 0, 'm' },
        { "dims", required_argument, 0, 'd' }, { "only", required_argument, 0, 'o' },
        { "window", required_argument, 0, 'w' },
        { "reps", required_argument, 0, 'r' }, { "help", no_argument, 0, 'h' }, { 0, 0, 0, 0 }
    };
    int c;
    while ((c = getopt_long (argc, argv, "h", opts, NULL)) != -1)
        switch (c) {
            case 'q': s_quiver = optarg; break;
            case 'm': msgs = atoi (optarg); break;
            case 'r': reps = atoi (optarg); break;
            case 'o': s_only = optarg; break;
            case 'w': s_window = atoi (optarg); break;
            case 'd': {
                ndims = 0;
                char *copy = strdup (optarg), *save = NULL;
                for (char *t = strtok_r (copy, ",", &save); t && ndims < 8; t = strtok_r (NULL, ",", &save))
                    dims [ndims++] = atoi (t);
                free (copy);
                break;
            }
            default:
                printf ("Usage: qvnatsbench [--quiver PATH (default: the quiver next to qvnatsbench)]\n"
                        "                   [--msgs N (300)] [--reps R (3)]\n"
                        "                   [--dims 128,768] [--only zmq|rr|ff|js] [--window N (8)]\n"
                        "Starts nats-server (on PATH) and quiver on free loopback ports in a temporary\n"
                        "directory, and prints insert rows/s and ack latency per write path (medians).\n");
                return c == 'h' ? 0 : 2;
        }
    bool dims_ok = ndims > 0;
    for (int i = 0; i < ndims; i++)
        dims_ok = dims_ok && dims [i] >= 1 && dims [i] <= 4096;
    if (msgs < 1 || msgs > S_MAX_MSGS || reps < 1 || reps > 20 || !dims_ok || s_window < 1 || s_window > 256) {
        fprintf (stderr, "qvnatsbench: --msgs 1..%d, --reps 1..20, --dims of 1..4096, --window 1..256\n",
                 S_MAX_MSGS);
        return 2;
    }
    if (!s_quiver) {
        char self [4096];
        ssize_t len = readlink ("/proc/self/exe", self, sizeof self - 1);
        self [len > 0 ? len : 0] = 0;
        snprintf (s_quiver_next, sizeof s_quiver_next, "%s/quiver", dirname (self));
        s_quiver = s_quiver_next;
    }
    if (access (s_quiver, X_OK)) {
        fprintf (stderr, "qvnatsbench: no quiver binary at %s (--quiver PATH)\n", s_quiver);
        return 2;
    }
    zsys_init ();
    zsys_set_linger (0);
    snprintf (s_dir, sizeof s_dir, "/tmp/qvnatsbench-XXXXXX");
    if (!mkdtemp (s_dir))
        return 1;
    s_nats_port = s_free_port ();
    s_zmq_port = s_free_port ();
    snprintf (s_nats_url, sizeof s_nats_url, "nats://127.0.0.1:%d", s_nats_port);
    snprintf (s_endpoint, sizeof s_endpoint, "tcp://127.0.0.1:%d", s_zmq_port);
    s_start_nats ();
    natsConnection *nc = NULL;
    for (int i = 0; i < 200 && natsConnection_ConnectTo (&nc, s_nats_url) != NATS_OK; i++)
        zclock_sleep (50);
    if (!nc) {
        fprintf (stderr, "qvnatsbench: nats-server did not start\n");
        return 1;
    }
    //  Request/reply goes over a second connection that sends each request at once:
    //  nats.c 3.4 otherwise holds a publish for 1 ms before writing it, a cost of the
    //  client library that a latency-minded application turns off the same way
    natsConnection *nc_rr = NULL;
    natsOptions *rr_opts = NULL;
    if (natsOptions_Create (&rr_opts) != NATS_OK
    ||  natsOptions_SetURL (rr_opts, s_nats_url) != NATS_OK
    ||  natsOptions_SetSendAsap (rr_opts, true) != NATS_OK
    ||  natsConnection_Connect (&nc_rr, rr_opts) != NATS_OK) {
        fprintf (stderr, "qvnatsbench: cannot connect to nats-server\n");
        return 1;
    }
    jsCtx *js = NULL;
    natsConnection_JetStream (&js, nc, NULL);
    jsStreamConfig sc;
    jsStreamConfig_Init (&sc);
    sc.Name = "BENCH";
    const char *subjects [] = { "bench.>" };
    sc.Subjects = subjects;
    sc.SubjectsLen = 1;
    sc.Storage = js_FileStorage;
    jsStreamInfo *si = NULL;
    if (js_AddStream (&si, js, &sc, NULL, NULL) != NATS_OK) {
        fprintf (stderr, "qvnatsbench: cannot create the stream\n");
        return 1;
    }
    jsStreamInfo_Destroy (si);
    if (!s_start_quiver ()) {
        fprintf (stderr, "qvnatsbench: quiver (%s) did not start; see %s/quiver.log\n", s_quiver, s_dir);
        return 1;
    }
    const char *paths [] = { "ZeroMQ request/reply", "NATS request/reply", "NATS fire-and-forget",
                             "JetStream ingestion", "JetStream plain consumer (ack only)" };
    enum { P_ZMQ, P_NRR, P_NFF, P_JS, P_PLAIN, P_COUNT };
    double disk = s_disk_fsync_mbs ();
    printf ("Quiver write paths: %d messages per run, %d runs, medians; window %d for request/reply\n",
            msgs, reps, s_window);
    printf ("disk: %.0f MB/s writing 256 MiB in 1 MiB writes then fsync, in the data directory "
            "(dd bs=1M conv=fsync)\n", disk);
    printf ("server cost: quiver's user+system CPU seconds per million rows and its minor page "
            "faults per row while it took them (/proc/PID/stat), medians of the runs\n");
    printf ("broker and client: nats-server's and this program's CPU seconds per million rows "
            "over the same rows (all three share this machine's cores)\n");
    printf ("%-36s %5s %9s %12s %9s %9s %9s %8s %11s %10s %11s %12s\n", "path", "dim", "rows/msg", "rows/s",
            "MB/s", "p50 ms", "p99 ms", "x ZeroMQ", "CPU s/Mrow", "faults/row", "nats s/Mrow",
            "client s/Mrow");
    char goals [2][3][160];
    int ngoal = 0, met = 0;
    for (int di = 0; di < ndims; di++) {
        int dim = dims [di];
        uint32_t rows = dim <= 128 ? 500 : dim <= 256 ? 250 : 100;
        //  Each path's result run by run (zero: not run), rows/s also as med []
        s_result_t all [P_COUNT][20];
        memset (all, 0, sizeof all);
        for (int r = 0; r < reps; r++) {
            char coll [64];
            snprintf (coll, sizeof coll, "z_%d_%d", dim, r);
            s_ddl ("create_collection", coll, dim, false);
            if (s_runs ("zmq"))
                all [P_ZMQ][r] = s_bench_zmq (coll, dim, rows, msgs);
            s_ddl ("drop_collection", coll, 0, false);
            snprintf (coll, sizeof coll, "n_%d_%d", dim, r);
            s_ddl ("create_collection", coll, dim, false);
            if (s_runs ("rr"))
                all [P_NRR][r] = s_bench_nats_rr (nc_rr, coll, dim, rows, msgs);
            s_ddl ("drop_collection", coll, 0, false);
            snprintf (coll, sizeof coll, "f_%d_%d", dim, r);
            s_ddl ("create_collection", coll, dim, false);
            if (s_runs ("ff"))
                all [P_NFF][r] = s_bench_nats_ff (nc, coll, dim, rows, msgs);
            s_ddl ("drop_collection", coll, 0, false);
            //  JetStream: quiver stopped while the stream fills and the plain consumer
            //  runs, then restarted to ingest the same messages.
            snprintf (coll, sizeof coll, "j_%d_%d", dim, r);
            if (!s_runs ("js"))
                continue;
            s_ddl ("create_collection", coll, dim, true);
            s_stop (&s_quiver_pid);
            uint64_t last = 0, first = s_fill_stream (js, coll, dim, rows, msgs, &last);
            all [P_PLAIN][r] = s_bench_plain (js, first, last, rows);
            all [P_JS][r] = s_bench_ingest (nc, coll, first, last, rows);
            uint64_t got = s_field ("describe_collection", coll, "rows");
            if (got != (uint64_t) msgs * rows)
                fprintf (stderr, "qvnatsbench: JetStream: %llu rows, expected %llu\n",
                         (unsigned long long) got, (unsigned long long) msgs * rows);
            s_ddl ("drop_collection", coll, 0, false);
        }
        double med [P_COUNT];
        for (int p = 0; p < P_COUNT; p++) {
            double rate [20], p50 [20], p99 [20], cpu [20], flt [20], nats [20], client [20];
            for (int r = 0; r < reps; r++) {
                const s_result_t *x = &all [p][r];
                rate [r] = x->rows_per_sec; p50 [r] = x->p50_ms; p99 [r] = x->p99_ms;
                cpu [r] = x->cost.cpu_per_mrow; flt [r] = x->cost.faults_per_row;
                nats [r] = x->cost.nats_per_mrow; client [r] = x->cost.client_per_mrow;
            }
            med [p] = s_median (rate, reps);
            double mb = med [p] * dim * 4 / 1e6;
            char a [16] = "-", b [16] = "-", x [16] = "", cs [16] = "-", fs [16] = "-";
            char ns [16] = "-", ks [16] = "-";
            if (p != P_PLAIN && s_median (cpu, reps) > 0) {
                snprintf (cs, sizeof cs, "%.2f", s_median (cpu, reps));
                snprintf (fs, sizeof fs, "%.2f", s_median (flt, reps));
                snprintf (ns, sizeof ns, "%.2f", s_median (nats, reps));
                snprintf (ks, sizeof ks, "%.2f", s_median (client, reps));
            }
            if (p == P_ZMQ || p == P_NRR) {
                snprintf (a, sizeof a, "%.1f", s_median (p50, reps));
                snprintf (b, sizeof b, "%.1f", s_median (p99, reps));
            }
            if (p == P_NRR || p == P_NFF)
                snprintf (x, sizeof x, "%.2f", med [P_ZMQ] > 0 ? med [p] / med [P_ZMQ] : 0);
            printf ("%-36s %5d %9u %12.0f %9.1f %9s %9s %8s %11s %10s %11s %12s\n", paths [p], dim, rows,
                    med [p], mb, a, b, x, cs, fs, ns, ks);
        }
        //  The disk's fsync bandwidth as rows/s: a row is its vector and its 8-byte id
        double disk_rows = disk * 1e6 / ((double) dim * 4 + 8);
        double bound = med [P_PLAIN] < disk_rows ? med [P_PLAIN] : disk_rows;
        printf ("%-36s %5d %9s %12.0f\n", "  disk fsync bandwidth as rows", dim, "", disk_rows);
        double x_rr = med [P_ZMQ] > 0 ? med [P_NRR] / med [P_ZMQ] : 0;
        double x_ff = med [P_ZMQ] > 0 ? med [P_NFF] / med [P_ZMQ] : 0;
        double x_js = bound > 0 ? med [P_JS] / bound : 0;
        if (ngoal < 2) {
            snprintf (goals [ngoal][0], sizeof goals [0][0], "%4d-dim NATS request/reply >= 0.9x ZeroMQ: "
                      "%.2fx (%s)", dim, x_rr, x_rr >= 0.9 ? "met" : "not met");
            snprintf (goals [ngoal][1], sizeof goals [0][1], "%4d-dim NATS fire-and-forget >= 0.9x ZeroMQ: "
                      "%.2fx (%s)", dim, x_ff, x_ff >= 0.9 ? "met" : "not met");
            snprintf (goals [ngoal][2], sizeof goals [0][2], "%4d-dim JetStream >= 0.8x min(plain consumer, "
                      "disk): %.2fx (%s)", dim, x_js, x_js >= 0.8 ? "met" : "not met");
            met += (x_rr >= 0.9) + (x_ff >= 0.9) + (x_js >= 0.8);
            ngoal++;
        }
    }
    printf ("goals (%d of %d met):\n", met, 3 * ngoal);
    for (int g = 0; g < ngoal; g++)
        for (int i = 0; i < 3; i++)
            printf ("  %s\n", goals [g][i]);
    zsock_destroy (&s_poll_sock);
    jsCtx_Destroy (js);
    natsConnection_Destroy (nc);
    natsConnection_Destroy (nc_rr);
    natsOptions_Destroy (rr_opts);
    s_stop (&s_quiver_pid);
    s_stop (&s_nats_pid);
    char cmd [300];
    snprintf (cmd, sizeof cmd, "rm -rf %s", s_dir);
    if (system (cmd) != 0)
        fprintf (stderr, "qvnatsbench: could not remove %s\n", s_dir);
    nats_Close ();
    return 0;
}
