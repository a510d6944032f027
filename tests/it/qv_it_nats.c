//  Integration-test helpers for the NATS tests (see qv_it_nats.h).
#include "qv_it_nats.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

//  Every child started (nats-server, quiver): the ones still running at exit are
//  killed, so a test whose setup fails half-way (cmocka jumps out of it) leaves no
//  process behind to take ports and CPU from the tests after it.
static pid_t s_children [256];
static size_t s_nchildren;

static void
s_kill_children (void)
{
    for (size_t i = 0; i < s_nchildren && i < 256; i++)
        if (s_children [i] > 0 && waitpid (s_children [i], NULL, WNOHANG) == 0) {
            kill (s_children [i], SIGKILL);     //  still our child, still running
            waitpid (s_children [i], NULL, 0);
        }
}

static void
s_child_started (pid_t pid)
{
    if (s_nchildren == 0)
        atexit (s_kill_children);
    s_children [s_nchildren++ % 256] = pid;
}

int
qv_itn_free_port (void)
{
    //  A port given out a moment ago may not be bound yet by the process it was given
    //  to (a server started without waiting), and the kernel may offer it again: never
    //  give out one of the last 256 twice (two processes of one test got the same port).
    static int given [256];
    static size_t ngiven;
    for (int attempt = 0; attempt < 100; attempt++) {
        int fd = socket (AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = 0 };
        sa.sin_addr.s_addr = htonl (INADDR_LOOPBACK);
        socklen_t len = sizeof sa;
        int port = -1;
        if (bind (fd, (struct sockaddr *) &sa, sizeof sa) == 0
        &&  getsockname (fd, (struct sockaddr *) &sa, &len) == 0)
            port = ntohs (sa.sin_port);
        close (fd);
        bool seen = false;
        for (size_t i = 0; i < ngiven && i < 256; i++)
            seen |= given [i] == port;
        if (port > 0 && !seen) {
            given [ngiven++ % 256] = port;
            return port;
        }
    }
    return -1;
}

bool
qv_itn_have_nats_server (void)
{
    return system ("command -v nats-server >/dev/null 2>&1") == 0;
}

static bool
s_port_open (int port)
{
    int fd = socket (AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons ((uint16_t) port) };
    sa.sin_addr.s_addr = htonl (INADDR_LOOPBACK);
    bool ok = connect (fd, (struct sockaddr *) &sa, sizeof sa) == 0;
    close (fd);
    return ok;
}

int
qv_itn_nats_start (qv_itn_nats_t *n)
{
    if (!n->port)
        n->port = qv_itn_free_port ();
    if (!n->dir [0]) {
        snprintf (n->dir, sizeof n->dir, "/tmp/qv-it-nats-XXXXXX");
        if (!mkdtemp (n->dir))
            return -1;
    }
    snprintf (n->url, sizeof n->url, "nats://127.0.0.1:%d", n->port);
    char port [16], log [300];
    snprintf (port, sizeof port, "%d", n->port);
    snprintf (log, sizeof log, "%s/nats-server.log", n->dir);
    pid_t pid = fork ();
    if (pid == 0) {
        FILE *f = freopen (log, "a", stdout);
        (void) f;
        dup2 (1, 2);
        execlp ("nats-server", "nats-server", "-a", "127.0.0.1", "-p", port, "-js", "-sd", n->dir,
                (char *) NULL);
        _exit (127);
    }
    s_child_started (pid);
    n->pid = pid;
    for (int i = 0; i < 1000; i++) {
        if (s_port_open (n->port))
            return 0;
        if (waitpid (pid, NULL, WNOHANG) == pid)
            break;
        zclock_sleep (10);
    }
    return -1;
}

void
qv_itn_nats_stop (qv_itn_nats_t *n)
{
    if (n->pid <= 0)
        return;
    kill (n->pid, SIGTERM);
    for (int i = 0; i < 1000; i++) {
        if (waitpid (n->pid, NULL, WNOHANG) == n->pid) {
            n->pid = 0;
            return;
        }
        zclock_sleep (10);
    }
    kill (n->pid, SIGKILL);
    waitpid (n->pid, NULL, 0);
    n->pid = 0;
}

static int
s_quiver_start (qv_itn_quiver_t *q, const char *nats_url, const char *args, int deadline_ms,
                bool same_port);

int
qv_itn_quiver_start (qv_itn_quiver_t *q, const char *nats_url, const char *args, int deadline_ms)
{
    return s_quiver_start (q, nats_url, args, deadline_ms, false);
}

int
qv_itn_quiver_restart (qv_itn_quiver_t *q, int deadline_ms)
{
    return s_quiver_start (q, q->nats_url, q->args, deadline_ms, true);
}

static int
s_quiver_start (qv_itn_quiver_t *q, const char *nats_url, const char *args, int deadline_ms,
                bool same_port)
{
    if (!q->data [0]) {
        snprintf (q->data, sizeof q->data, "/tmp/qv-it-data-XXXXXX");
        if (!mkdtemp (q->data))
            return -1;
    }
    if (args != q->args)
        snprintf (q->args, sizeof q->args, "%s", args ? args : "");
    if (nats_url != q->nats_url)
        snprintf (q->nats_url, sizeof q->nats_url, "%s", nats_url ? nats_url : "");
    if (!same_port || !q->port)
        q->port = qv_itn_free_port ();
    snprintf (q->endpoint, sizeof q->endpoint, "tcp://127.0.0.1:%d", q->port);
    const char *bin = getenv ("QV_BIN_DIR");
    char cmd [2048];
    snprintf (cmd, sizeof cmd, "exec %s/quiver serve --data %s --bind %s %s%s %s >>%s/quiver.log 2>&1",
              bin ? bin : ".", q->data, q->endpoint, q->nats_url [0] ? "--nats " : "",
              q->nats_url, q->args, q->data);
    pid_t pid = fork ();
    if (pid == 0) {
        execl ("/bin/sh", "sh", "-c", cmd, (char *) NULL);
        _exit (127);
    }
    s_child_started (pid);
    q->pid = pid;
    if (deadline_ms <= 0)
        return 0;
    int64_t end = zclock_mono () + deadline_ms;
    while (zclock_mono () < end) {
        qv_wr_t *w = qv_wr_new ();
        qv_wr_map (w, 1);
        qv_wr_str (w, "op"); qv_wr_str (w, "ping");
        qv_doc_t *r = qv_itn_call (q->endpoint, w, 500);
        qv_wr_destroy (&w);
        bool ok = qv_itn_ok (r);
        qv_doc_destroy (&r);
        if (ok)
            return 0;
        if (waitpid (pid, NULL, WNOHANG) == pid) {
            q->pid = 0;
            return -1;
        }
        zclock_sleep (20);
    }
    return -1;
}

int
qv_itn_quiver_stop (qv_itn_quiver_t *q, int sig)
{
    if (q->pid <= 0)
        return -1;
    kill (q->pid, sig);
    int status = 0;
    waitpid (q->pid, &status, 0);
    q->pid = 0;
    int rc = WIFEXITED (status) ? WEXITSTATUS (status) : 128 + WTERMSIG (status);
    if (sig == SIGTERM && rc != 0) {
        //  An unclean stop: show the end of the server's log (sanitizer reports).
        char cmd [512];
        snprintf (cmd, sizeof cmd, "tail -n 60 %s/quiver.log >&2", q->data);
        if (system (cmd) != 0)
            fprintf (stderr, "(no log in %s)\n", q->data);
    }
    return rc;
}

bool
qv_itn_log_has (const qv_itn_quiver_t *q, const char *needle)
{
    char path [300];
    snprintf (path, sizeof path, "%s/quiver.log", q->data);
    FILE *f = fopen (path, "r");
    if (!f)
        return false;
    char line [2048];
    bool found = false;
    while (!found && fgets (line, sizeof line, f))
        found = strstr (line, needle) != NULL;
    fclose (f);
    return found;
}

int
qv_itn_quiver_wait_exit (qv_itn_quiver_t *q, int timeout_ms)
{
    if (q->pid <= 0)
        return -1;
    int64_t end = zclock_mono () + timeout_ms;
    int status = 0;
    while (waitpid (q->pid, &status, WNOHANG) != q->pid) {
        if (zclock_mono () >= end)
            return -1;
        zclock_sleep (50);
    }
    q->pid = 0;
    return WIFEXITED (status) ? WEXITSTATUS (status) : 128 + WTERMSIG (status);
}

qv_doc_t *
qv_itn_call (const char *endpoint, qv_wr_t *req, int timeout_ms)
{
    zsock_t *s = zsock_new (ZMQ_REQ);
    zsock_set_rcvtimeo (s, timeout_ms);
    zsock_set_linger (s, 0);
    zsock_connect (s, "%s", endpoint);
    size_t size;
    const void *data = qv_wr_data (req, &size);
    zframe_t *f = zframe_new (data, size);
    zframe_send (&f, s, 0);
    zframe_t *r = zframe_recv (s);
    qv_doc_t *doc = NULL;
    if (r) {
        int rc;
        doc = qv_doc_parse (zframe_data (r), zframe_size (r), SIZE_MAX, &rc);
        zframe_destroy (&r);
    }
    zsock_destroy (&s);
    return doc;
}

bool
qv_itn_ok (qv_doc_t *reply)
{
    bool ok = false;
    const qv_val_t *v = reply ? qv_val_get (qv_doc_root (reply), "ok") : NULL;
    if (v)
        qv_val_bool (v, &ok);
    return ok;
}

const char *
qv_itn_code (qv_doc_t *reply, char *buf, size_t size)
{
    buf [0] = 0;
    const qv_val_t *v = reply ? qv_val_get (qv_doc_root (reply), "code") : NULL;
    if (v)
        qv_val_strcpy (v, buf, size);
    return buf;
}

uint64_t
qv_itn_uint (qv_doc_t *reply, const char *key)
{
    uint64_t u = UINT64_MAX;
    const qv_val_t *v = reply ? qv_val_get (qv_doc_root (reply), key) : NULL;
    if (v && qv_val_uint (v, &u))
        u = UINT64_MAX;
    return u;
}

bool
qv_itn_create (const char *endpoint, const char *collection, int dim, bool auto_id, int shards)
{
    qv_wr_t *w = qv_wr_new ();
    qv_wr_map (w, 4);
    qv_wr_str (w, "op"); qv_wr_str (w, "create_collection");
    qv_wr_str (w, "collection"); qv_wr_str (w, collection);
    qv_wr_str (w, "shards"); qv_wr_uint (w, (uint64_t) shards);
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
    qv_doc_t *r = qv_itn_call (endpoint, w, 10000);
    qv_wr_destroy (&w);
    bool ok = qv_itn_ok (r);
    qv_doc_destroy (&r);
    return ok;
}

uint64_t
qv_itn_rows (const char *endpoint, const char *collection)
{
    qv_wr_t *w = qv_wr_new ();
    qv_wr_map (w, 2);
    qv_wr_str (w, "op"); qv_wr_str (w, "describe_collection");
    qv_wr_str (w, "collection"); qv_wr_str (w, collection);
    qv_doc_t *r = qv_itn_call (endpoint, w, 10000);
    qv_wr_destroy (&w);
    uint64_t rows = qv_itn_ok (r) ? qv_itn_uint (r, "rows") : UINT64_MAX;
    qv_doc_destroy (&r);
    return rows;
}

uint64_t
qv_itn_stat (const char *endpoint, const char *key)
{
    qv_wr_t *w = qv_wr_new ();
    qv_wr_map (w, 1);
    qv_wr_str (w, "op"); qv_wr_str (w, "stats");
    qv_doc_t *r = qv_itn_call (endpoint, w, 10000);
    qv_wr_destroy (&w);
    uint64_t u = UINT64_MAX;
    const qv_val_t *v = r ? qv_val_get (qv_doc_root (r), key) : NULL;
    bool b;
    if (v && qv_val_uint (v, &u) && qv_val_bool (v, &b) == 0)
        u = b;
    qv_doc_destroy (&r);
    return u;
}

void
qv_itn_vector (float *out, int dim, int64_t key)
{
    uint64_t x = (uint64_t) key * 0x9E3779B97F4A7C15ull + 1;
    for (int d = 0; d < dim; d++) {
        x ^= x >> 12; x ^= x << 25; x ^= x >> 27;
        out [d] = (float) ((x * 0x2545F4914F6CDD1Dull) >> 40) / (float) (1 << 24);
    }
}

void
qv_itn_insert_payload (qv_wr_t *w, int64_t first_id, uint32_t n, int dim, uint32_t seed)
{
    float *vecs = malloc ((size_t) n * (size_t) dim * sizeof (float));
    for (uint32_t r = 0; r < n; r++)
        qv_itn_vector (vecs + (size_t) r * (size_t) dim, dim,
                       first_id >= 0 ? first_id + r : (int64_t) seed * 1000003 + r);
    qv_wr_map (w, 1);
    qv_wr_str (w, "columns");
    qv_wr_map (w, first_id >= 0 ? 2 : 1);
    if (first_id >= 0) {
        qv_wr_str (w, "id");
        qv_wr_array (w, n);
        for (uint32_t r = 0; r < n; r++)
            qv_wr_int (w, first_id + r);
    }
    qv_wr_str (w, "vec");
    qv_wr_bin (w, vecs, (size_t) n * (size_t) dim * sizeof (float));
    free (vecs);
}

natsConnection *
qv_itn_nats_connect (const char *url)
{
    natsConnection *nc = NULL;
    for (int i = 0; i < 200; i++) {
        if (natsConnection_ConnectTo (&nc, url) == NATS_OK)
            return nc;
        zclock_sleep (50);
    }
    return NULL;
}

void
qv_itn_remove_dir (char *dir)
{
    if (!dir [0] || strncmp (dir, "/tmp/qv-it-", 11) != 0)
        return;
    if (getenv ("QV_IT_KEEP")) {    //  for a look at the processes' logs afterwards
        fprintf (stderr, "QV_IT_KEEP: kept %s\n", dir);
        dir [0] = 0;
        return;
    }
    char cmd [320];
    snprintf (cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system (cmd) != 0)
        fprintf (stderr, "could not remove %s\n", dir);
    dir [0] = 0;
}

int
qv_itn_add_stream (const char *url, const char *name, const char *subject)
{
    natsConnection *nc = qv_itn_nats_connect (url);
    jsCtx *js = NULL;
    if (!nc || natsConnection_JetStream (&js, nc, NULL) != NATS_OK) {
        natsConnection_Destroy (nc);
        return -1;
    }
    jsStreamConfig cfg;
    jsStreamConfig_Init (&cfg);
    cfg.Name = name;
    const char *subjects [] = { subject };
    cfg.Subjects = subjects;
    cfg.SubjectsLen = 1;
    cfg.Storage = js_FileStorage;
    jsStreamInfo *si = NULL;
    jsErrCode jerr = 0;
    natsStatus st = js_AddStream (&si, js, &cfg, NULL, &jerr);
    jsStreamInfo_Destroy (si);
    jsCtx_Destroy (js);
    natsConnection_Destroy (nc);
    return st == NATS_OK ? 0 : -1;
}

static int
s_publish_one (jsCtx *js, const char *subject, qv_wr_t *w)
{
    size_t size;
    const void *data = qv_wr_data (w, &size);
    jsPubAck *ack = NULL;
    natsStatus s = js_Publish (&ack, js, subject, data, (int) size, NULL, NULL);
    jsPubAck_Destroy (ack);
    return s == NATS_OK ? 0 : -1;
}

int
qv_itn_publish_rounds (jsCtx *js, const char *coll, int dim, int from, int to)
{
    char insert [128], del [128], upsert [128];
    snprintf (insert, sizeof insert, "ingest.insert.%s", coll);
    snprintf (del, sizeof del, "ingest.delete.%s", coll);
    snprintf (upsert, sizeof upsert, "ingest.upsert.%s", coll);
    qv_wr_t *w = qv_wr_new ();
    int rc = 0;
    for (int r = from; r < to && rc == 0; r++) {
        qv_wr_reset (w);
        qv_itn_insert_payload (w, 100 * r, 100, dim, 0);
        rc = s_publish_one (js, insert, w);
        qv_wr_reset (w);
        char filter [96];
        snprintf (filter, sizeof filter, "id >= %d and id < %d", 100 * r, 100 * r + 50);
        qv_wr_map (w, 1);
        qv_wr_str (w, "filter"); qv_wr_str (w, filter);
        if (rc == 0)
            rc = s_publish_one (js, del, w);
        qv_wr_reset (w);
        qv_itn_insert_payload (w, 100 * r, 25, dim, 0);
        if (rc == 0)
            rc = s_publish_one (js, upsert, w);
    }
    qv_wr_destroy (&w);
    return rc;
}
