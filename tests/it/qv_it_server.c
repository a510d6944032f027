//  Integration-test harness: quiver server child processes and a REQ client.
#include "qv_it_server.h"
#include "qv_it_nats.h"

#include <czmq.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdatomic.h>
#include <arpa/inet.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <math.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define S_POLL_MS 20                //  interval between polls

//  ---------------------------------------------------------------------------------
//  Files

static int
s_rm_entry (const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void) st; (void) flag; (void) ftw;
    return remove (path);
}

void
qv_it_rm_rf (const char *path)
{
    nftw (path, s_rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

long
qv_it_file_size (const char *path)
{
    struct stat st;
    return stat (path, &st) == 0 ? (long) st.st_size : -1;
}

int
qv_it_newest_file (const char *dir, char *out, size_t outsize)
{
    struct dirent **names = NULL;
    int n = scandir (dir, &names, NULL, alphasort);
    if (n < 0)
        return -1;
    int rc = -1;
    for (int i = n - 1; i >= 0 && rc != 0; i--) {
        const char *name = names [i]->d_name;
        if (name [0] == '.')
            continue;
        char path [PATH_MAX];
        snprintf (path, sizeof path, "%s/%s", dir, name);
        struct stat st;
        if (stat (path, &st) != 0)
            continue;
        if (S_ISDIR (st.st_mode))
            rc = qv_it_newest_file (path, out, outsize);
        else
        if (S_ISREG (st.st_mode)) {
            snprintf (out, outsize, "%s", path);
            rc = 0;
        }
    }
    for (int i = 0; i < n; i++)
        free (names [i]);
    free (names);
    return rc;
}

int
qv_it_flip_byte (const char *path, long offset)
{
    long size = qv_it_file_size (path);
    if (size <= 0)
        return -1;
    if (offset < 0)
        offset += size;
    if (offset < 0 || offset >= size)
        return -1;
    int fd = open (path, O_RDWR);
    if (fd < 0)
        return -1;
    unsigned char b;
    int rc = -1;
    if (pread (fd, &b, 1, offset) == 1) {
        b ^= 0xff;
        if (pwrite (fd, &b, 1, offset) == 1 && fsync (fd) == 0)
            rc = 0;
    }
    close (fd);
    return rc;
}

//  ---------------------------------------------------------------------------------
//  Server processes

const char *
qv_it_quiver_bin (void)
{
    static char path [PATH_MAX];
    const char *dir = getenv ("QV_BIN_DIR");
    snprintf (path, sizeof path, "%s/quiver", dir && *dir ? dir : ".");
    return path;
}

//  A free loopback TCP port (the kernel's choice); 0 on failure.
static int
s_free_port (void)
{
    int port = qv_itn_free_port ();     //  never one given out a moment ago
    return port > 0 ? port : 0;
}

//  Every server not yet destroyed, so that a test that fails half-way (cmocka longjmps
//  out of it) leaves no process or directory behind: they go at exit.
#define S_MAX_SERVERS 64
static qv_it_server_t *s_servers [S_MAX_SERVERS];
static bool s_atexit_set;

static void
s_cleanup_at_exit (void)
{
    for (int i = 0; i < S_MAX_SERVERS; i++)
        if (s_servers [i])
            qv_it_server_destroy (&s_servers [i]);
}

static void
s_register (qv_it_server_t *self)
{
    if (!s_atexit_set) {
        atexit (s_cleanup_at_exit);
        s_atexit_set = true;
    }
    for (int i = 0; i < S_MAX_SERVERS; i++)
        if (!s_servers [i]) {
            s_servers [i] = self;
            return;
        }
}

static void
s_unregister (qv_it_server_t *self)
{
    for (int i = 0; i < S_MAX_SERVERS; i++)
        if (s_servers [i] == self)
            s_servers [i] = NULL;
}

bool
qv_it_s3 (void)
{
    const char *mode = getenv ("QV_IT_S3");
    const char *endpoint = getenv ("QV_S3_ENDPOINT");
    return mode && streq (mode, "1") && endpoint && *endpoint;
}

//  The prefix of a data directory in S3 mode: its last path segment.
static void
s_default_prefix (qv_it_server_t *self)
{
    const char *slash = strrchr (self->dir, '/');
    snprintf (self->s3_prefix, sizeof self->s3_prefix, "%.63s", slash ? slash + 1 : self->dir);
}

qv_it_server_t *
qv_it_server_new (const char *const *extra)
{
    qv_it_server_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    const char *tmp = getenv ("TMPDIR");
    snprintf (self->dir, sizeof self->dir, "%s/qv-h-it-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp (self->dir)) {
        fprintf (stderr, "qv_it: mkdtemp %s: %s\n", self->dir, strerror (errno));
        free (self);
        return NULL;
    }
    snprintf (self->log, sizeof self->log, "%s/quiver.log", self->dir);
    for (int i = 0; extra && extra [i] && self->nargs < 15; i++)
        self->args [self->nargs++] = strdup (extra [i]);
    self->own_dir = true;
    s_default_prefix (self);
    s_register (self);
    return self;
}

qv_it_server_t *
qv_it_server_new_at (const char *dir, const char *log_name, const char *const *extra)
{
    qv_it_server_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    snprintf (self->dir, sizeof self->dir, "%s", dir);
    snprintf (self->log, sizeof self->log, "%s/%s", dir, log_name);
    for (int i = 0; extra && extra [i] && self->nargs < 15; i++)
        self->args [self->nargs++] = strdup (extra [i]);
    s_default_prefix (self);
    s_register (self);
    return self;
}

void
qv_it_server_destroy (qv_it_server_t **self_p)
{
    qv_it_server_t *self = *self_p;
    if (!self)
        return;
    s_unregister (self);
    qv_it_server_kill (self);
    if (self->own_dir && getenv ("QV_IT_KEEP"))
        fprintf (stderr, "qv_it: keeping %s\n", self->dir);
    else
    if (self->own_dir)
        qv_it_rm_rf (self->dir);
    for (int i = 0; i < self->nargs; i++)
        free (self->args [i]);
    free (self);
    *self_p = NULL;
}

int
qv_it_server_spawn (qv_it_server_t *self)
{
    if (self->pid > 0)
        return -1;
    if (self->port == 0) {
        self->port = s_free_port ();
        if (self->port == 0)
            return -1;
    }
    snprintf (self->endpoint, sizeof self->endpoint, "tcp://127.0.0.1:%d", self->port);
    int fd = open (self->log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0)
        return -1;
    self->log_start = qv_it_file_size (self->log);
    //  Everything the child needs is prepared before fork: it only dup2s and execs.
    char *argv [32];
    int argc = 0;
    argv [argc++] = (char *) qv_it_quiver_bin ();
    argv [argc++] = "serve";
    argv [argc++] = "--data";
    argv [argc++] = self->dir;
    argv [argc++] = "--bind";
    argv [argc++] = self->endpoint;
    for (int i = 0; i < self->nargs; i++)
        argv [argc++] = self->args [i];
    if (qv_it_s3 ()) {
        //  Short lock renewals: a restart after kill -9 waits 3 periods for the lock
        argv [argc++] = "--s3-endpoint";
        argv [argc++] = getenv ("QV_S3_ENDPOINT");
        argv [argc++] = "--s3-bucket";
        argv [argc++] = QV_IT_S3_BUCKET;
        argv [argc++] = "--s3-prefix";
        argv [argc++] = self->s3_prefix;
        char lock_ms [16];
        snprintf (lock_ms, sizeof lock_ms, "%d", self->s3_lock_ms > 0 ? self->s3_lock_ms : 300);
        argv [argc++] = "--s3-lock-ms";
        argv [argc++] = lock_ms;
        const char *key = getenv ("QV_S3_ACCESS_KEY");
        const char *secret = getenv ("QV_S3_SECRET_KEY");
        setenv ("QUIVER_S3_ACCESS_KEY", key && *key ? key : "S3RVER", 1);
        setenv ("QUIVER_S3_SECRET_KEY", secret && *secret ? secret : "S3RVER", 1);
    }
    argv [argc] = NULL;
    pid_t pid = fork ();
    if (pid < 0) {
        close (fd);
        return -1;
    }
    if (pid == 0) {
        prctl (PR_SET_PDEATHSIG, SIGKILL);      //  never outlive the test
        int null = open ("/dev/null", O_RDONLY);
        if (null >= 0)
            dup2 (null, 0);
        dup2 (fd, 1);
        dup2 (fd, 2);
        execv (argv [0], argv);
        //  Into the log: exit status 127 alone does not say the binary was missing
        //  (e.g. being relinked by a build running beside the test)
        const char *what = "qv_it: cannot exec ";
        if (write (2, what, strlen (what)) >= 0 && write (2, argv [0], strlen (argv [0])) >= 0)
            (void) !write (2, "\n", 1);
        _exit (127);
    }
    close (fd);
    self->pid = pid;
    return 0;
}

//  Reaps the child if it has exited. True if it is gone.
static bool
s_reap (qv_it_server_t *self)
{
    if (self->pid <= 0)
        return true;
    int status;
    pid_t r = waitpid (self->pid, &status, WNOHANG);
    if (r == self->pid || (r < 0 && errno == ECHILD)) {
        self->status = r == self->pid ? status : -1;
        self->pid = 0;
        return true;
    }
    return false;
}

int
qv_it_server_wait_exit (qv_it_server_t *self, int timeout_ms)
{
    int64_t deadline = zclock_mono () + timeout_ms;
    while (!s_reap (self)) {
        if (zclock_mono () >= deadline)
            return -2;
        zclock_sleep (S_POLL_MS);
    }
    return 0;
}

//  Polls ping; done (reply) decides whether to stop: 1 yes, -1 yes but failed, 0 no.
//  0 when done, -1 exited, -2 timeout, -3 done said failed.
static int
s_poll_ping (qv_it_server_t *self, int timeout_ms, int (*done) (qv_doc_t *, const void *),
             const void *arg)
{
    int64_t deadline = zclock_mono () + timeout_ms;
    qv_it_client_t *client = qv_it_client_new (self->endpoint, 500);
    int rc = -2;
    while (zclock_mono () < deadline) {
        if (s_reap (self)) {
            rc = -1;
            break;
        }
        qv_doc_t *reply = qv_it_callf (client, "{op: 'ping'}");
        int stop = reply ? done (reply, arg) : 0;
        qv_doc_destroy (&reply);
        if (stop) {
            rc = stop > 0 ? 0 : -3;
            break;
        }
        zclock_sleep (S_POLL_MS);
    }
    qv_it_client_destroy (&client);
    return rc;
}

static int
s_is_ready (qv_doc_t *reply, const void *arg)
{
    (void) arg;
    if (qv_it_ok (reply))
        return 1;
    return strstr (qv_it_error (reply), "recovery failed") ? -1 : 0;
}

static int
s_has_error (qv_doc_t *reply, const void *arg)
{
    return strstr (qv_it_error (reply), (const char *) arg) != NULL;
}

int
qv_it_server_wait_ready (qv_it_server_t *self, int timeout_ms)
{
    return s_poll_ping (self, timeout_ms, s_is_ready, NULL);
}

int
qv_it_server_wait_error (qv_it_server_t *self, const char *needle, int timeout_ms)
{
    return s_poll_ping (self, timeout_ms, s_has_error, needle);
}

//  How a reaped child ended, for messages: "exit status N", "killed by signal N (name)".
static const char *
s_status_text (int status, char *buf, size_t size)
{
    if (status == -1)
        snprintf (buf, size, "exit status unknown (reaped elsewhere)");
    else
    if (WIFEXITED (status))
        snprintf (buf, size, "exit status %d", WEXITSTATUS (status));
    else
    if (WIFSIGNALED (status))
        snprintf (buf, size, "killed by signal %d (%s)%s", WTERMSIG (status),
                  strsignal (WTERMSIG (status)), WCOREDUMP (status) ? ", core dumped" : "");
    else
        snprintf (buf, size, "wait status 0x%x", (unsigned) status);
    return buf;
}

int
qv_it_server_start (qv_it_server_t *self)
{
    for (int attempt = 0; attempt < 5; attempt++) {
        if (qv_it_server_spawn (self))
            return -1;
        int rc = qv_it_server_wait_ready (self, QV_IT_READY_MS);
        if (rc == 0)
            return 0;
        char *log = qv_it_server_log_text (self);
        bool port_taken = rc == -1 && log && strstr (log, "cannot bind");
        if (!port_taken) {
            //  A server that died says how (a crash leaves no line in its log)
            char how [128] = "";
            if (rc == -1)
                s_status_text (self->status, how, sizeof how);
            fprintf (stderr, "qv_it: quiver did not become ready (%s%s); its log:\n%s\n",
                     rc == -1 ? "it exited: " : rc == -3 ? "recovery failed" : "timeout",
                     how, log ? log : "");
        }
        free (log);
        if (!port_taken) {
            qv_it_server_kill (self);
            return -1;
        }
        self->port = 0;             //  someone took the port: pick another
    }
    return -1;
}

int
qv_it_server_signal (qv_it_server_t *self, int sig, int timeout_ms)
{
    if (s_reap (self))
        return -1;
    kill (self->pid, sig);
    if (qv_it_server_wait_exit (self, timeout_ms) == 0)
        return 0;
    //  Stuck: record where every thread is, in its log, before killing it
    if (access ("/usr/bin/gdb", X_OK) == 0) {
        char cmd [PATH_MAX + 200];
        snprintf (cmd, sizeof cmd, "/usr/bin/gdb -p %d -batch -ex 'thread apply all bt' >> '%s' 2>&1",
                  (int) self->pid, self->log);
        if (system (cmd) != 0)
            fprintf (stderr, "qv_it: gdb could not dump the stuck server's threads\n");
        fprintf (stderr, "qv_it: server %d did not exit within %d ms; thread stacks are in %s\n",
                 (int) self->pid, timeout_ms, self->log);
    }
    kill (self->pid, SIGKILL);
    qv_it_server_wait_exit (self, 60000);
    return -1;
}

int
qv_it_server_kill (qv_it_server_t *self)
{
    if (s_reap (self))
        return -1;
    kill (self->pid, SIGKILL);
    return qv_it_server_wait_exit (self, 60000) == 0 ? 0 : -1;
}

char *
qv_it_server_log_text (qv_it_server_t *self)
{
    FILE *f = fopen (self->log, "rb");
    if (!f)
        return strdup ("");
    fseek (f, 0, SEEK_END);
    long end = ftell (f);
    long start = self->log_start < end ? self->log_start : end;
    char *text = malloc ((size_t) (end - start) + 1);
    fseek (f, start, SEEK_SET);
    size_t n = text ? fread (text, 1, (size_t) (end - start), f) : 0;
    if (text)
        text [n] = 0;
    fclose (f);
    return text;
}

int
qv_it_server_wait_log (qv_it_server_t *self, const char *needle, int timeout_ms)
{
    int64_t deadline = zclock_mono () + timeout_ms;
    while (true) {
        char *text = qv_it_server_log_text (self);
        bool found = text && strstr (text, needle);
        free (text);
        if (found)
            return 0;
        if (zclock_mono () >= deadline)
            return -2;
        zclock_sleep (S_POLL_MS);
    }
}

//  ---------------------------------------------------------------------------------
//  Why a call got no reply

//  Prints the last max bytes of the server's log to stderr.
static void
s_print_log_tail (qv_it_server_t *self, long max)
{
    FILE *f = fopen (self->log, "rb");
    if (!f)
        return;
    fseek (f, 0, SEEK_END);
    long end = ftell (f);
    long start = end - max > self->log_start ? end - max : self->log_start;
    if (start > end)
        start = end;
    fseek (f, start, SEEK_SET);
    fprintf (stderr, "qv_it: the last %ld bytes of %s:\n", end - start, self->log);
    char buf [4096];
    size_t n;
    while ((n = fread (buf, 1, sizeof buf, f)) > 0)
        fwrite (buf, 1, n, stderr);
    fprintf (stderr, "qv_it: (end of log)\n");
    fclose (f);
}

//  A call to endpoint got no reply within its deadline: say whether the server there
//  still runs. One that died is described by its exit status or signal; one that runs
//  has its thread stacks appended to its log (through gdb), as qv_it_server_signal does
//  for a server that does not stop. Either way the log's tail goes to stderr, so a
//  failure seen once in CI says whether the server crashed, deadlocked or was only
//  slow. The child is not reaped (WNOWAIT): the thread that owns the server still sees
//  it exit. Each server is reported once (several threads may time out together).
//  Clients with a deadline shorter than QV_IT_CALL_MS belong to kill tests, where a
//  missing reply is expected: they are not reported (and gdb must not stop the server
//  under them).
static void
s_report_server (const char *endpoint, int timeout_ms)
{
    if (timeout_ms < QV_IT_CALL_MS)
        return;
    static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
    static pid_t reported [S_MAX_SERVERS];
    pthread_mutex_lock (&lock);
    for (int i = 0; i < S_MAX_SERVERS; i++) {
        qv_it_server_t *server = s_servers [i];
        pid_t pid = server ? server->pid : 0;
        if (pid <= 0 || reported [i] == pid || strcmp (server->endpoint, endpoint) != 0)
            continue;
        reported [i] = pid;
        siginfo_t info;
        memset (&info, 0, sizeof info);
        if (waitid (P_PID, (id_t) pid, &info, WEXITED | WNOHANG | WNOWAIT) == 0 && info.si_pid == pid) {
            if (info.si_code == CLD_EXITED)
                fprintf (stderr, "qv_it: no reply within %d ms: server %d exited with status %d\n",
                         timeout_ms, (int) pid, info.si_status);
            else
                fprintf (stderr, "qv_it: no reply within %d ms: server %d was killed by signal %d (%s)%s\n",
                         timeout_ms, (int) pid, info.si_status, strsignal (info.si_status),
                         info.si_code == CLD_DUMPED ? ", core dumped" : "");
        }
        else {
            fprintf (stderr, "qv_it: no reply within %d ms: server %d is still running; its thread "
                     "stacks follow in its log\n", timeout_ms, (int) pid);
            if (access ("/usr/bin/gdb", X_OK) == 0) {
                char cmd [PATH_MAX + 200];
                snprintf (cmd, sizeof cmd, "/usr/bin/gdb -p %d -batch -ex 'thread apply all bt' >> '%s' 2>&1",
                          (int) pid, server->log);
                if (system (cmd) != 0)
                    fprintf (stderr, "qv_it: gdb could not dump the server's threads\n");
            }
        }
        s_print_log_tail (server, 48 * 1024);
    }
    pthread_mutex_unlock (&lock);
}

//  ---------------------------------------------------------------------------------
//  Client

struct _qv_it_client_t {
    zsock_t *req;
    char endpoint [64];             //  the server's, to explain a missing reply
    int timeout_ms;
    atomic_bool *cancel;            //  when set, a call waiting for its reply gives up
};

qv_it_client_t *
qv_it_client_new (const char *endpoint, int timeout_ms)
{
    qv_it_client_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    self->req = zsock_new (ZMQ_REQ);
    if (!self->req) {
        free (self);
        return NULL;
    }
    self->timeout_ms = timeout_ms;
    snprintf (self->endpoint, sizeof self->endpoint, "%s", endpoint);
    zsock_set_linger (self->req, 0);
    zsock_set_rcvtimeo (self->req, timeout_ms);
    zsock_set_sndtimeo (self->req, timeout_ms);
    zsock_set_req_relaxed (self->req, 1);
    zsock_set_req_correlate (self->req, 1);
    if (zsock_connect (self->req, "%s", endpoint) != 0) {
        zsock_destroy (&self->req);
        free (self);
        return NULL;
    }
    return self;
}

void
qv_it_client_set_cancel (qv_it_client_t *self, atomic_bool *cancel)
{
    self->cancel = cancel;
}

void
qv_it_client_destroy (qv_it_client_t **self_p)
{
    if (*self_p) {
        zsock_destroy (&(*self_p)->req);
        free (*self_p);
        *self_p = NULL;
    }
}

qv_doc_t *
qv_it_call_raw (qv_it_client_t *self, const void *data, size_t size)
{
    zframe_t *frame = zframe_new (data, size);
    if (zframe_send (&frame, self->req, 0) != 0) {
        zframe_destroy (&frame);
        return NULL;
    }
    if (self->cancel) {
        //  Wait in slices, so that a set cancel flag ends the wait early
        int64_t deadline = zclock_mono () + self->timeout_ms;
        while (!(zsock_events (self->req) & ZMQ_POLLIN)) {
            if (atomic_load (self->cancel))
                return NULL;
            if (zclock_mono () >= deadline) {
                s_report_server (self->endpoint, self->timeout_ms);
                return NULL;
            }
            zmq_pollitem_t item = { zsock_resolve (self->req), 0, ZMQ_POLLIN, 0 };
            zmq_poll (&item, 1, 20);
        }
    }
    zframe_t *reply = zframe_recv (self->req);
    if (!reply) {
        s_report_server (self->endpoint, self->timeout_ms);
        return NULL;                //  timeout
    }

    int rc;
    qv_doc_t *doc = qv_doc_parse (zframe_data (reply), zframe_size (reply), SIZE_MAX, &rc);
    if (!doc)
        fprintf (stderr, "qv_it: undecodable reply of %zu bytes\n", zframe_size (reply));
    zframe_destroy (&reply);
    return doc;
}

qv_doc_t *
qv_it_call (qv_it_client_t *self, qv_wr_t *w)
{
    size_t size;
    const void *data = qv_wr_data (w, &size);
    qv_doc_t *doc = qv_it_call_raw (self, data, size);
    qv_wr_reset (w);
    return doc;
}

qv_doc_t *
qv_it_callf (qv_it_client_t *self, const char *fmt, ...)
{
    va_list ap;
    va_start (ap, fmt);
    char *text = NULL;
    int n = vasprintf (&text, fmt, ap);
    va_end (ap);
    if (n < 0)
        return NULL;
    qv_wr_t *w = qv_wr_new ();
    qv_doc_t *doc = NULL;
    if (qv_it_json_write (w, text) == 0)
        doc = qv_it_call (self, w);
    else
        fprintf (stderr, "qv_it: cannot parse request text: %s\n", text);
    qv_wr_destroy (&w);
    free (text);
    return doc;
}

//  ---------------------------------------------------------------------------------
//  JSON-like text to msgpack

typedef struct {
    const char *p;
    qv_wr_t *w;
} s_json_t;

static void
s_skip (s_json_t *j)
{
    while (isspace ((unsigned char) *j->p))
        j->p++;
}

static int s_value (s_json_t *j);

//  A quoted string (or, when bare_ok, a bare word) into buf; -1 on error.
static int
s_string (s_json_t *j, char **out, size_t *len, bool bare_ok)
{
    s_skip (j);
    char quote = *j->p;
    size_t cap = 64, n = 0;
    char *buf = malloc (cap);
    if (quote == '"' || quote == '\'') {
        j->p++;
        while (*j->p && *j->p != quote) {
            char c = *j->p++;
            if (c == '\\' && *j->p) {
                c = *j->p++;
                if (c == 'n') c = '\n';
                else if (c == 't') c = '\t';
                else if (c == '0') c = '\0';
            }
            if (n + 1 >= cap)
                buf = realloc (buf, cap *= 2);
            buf [n++] = c;
        }
        if (*j->p != quote) {
            free (buf);
            return -1;
        }
        j->p++;
    }
    else
    if (bare_ok && (isalpha ((unsigned char) quote) || quote == '_')) {
        while (isalnum ((unsigned char) *j->p) || *j->p == '_' || *j->p == '(' || *j->p == ')'
           ||  *j->p == '*') {
            if (n + 1 >= cap)
                buf = realloc (buf, cap *= 2);
            buf [n++] = *j->p++;
        }
    }
    else {
        free (buf);
        return -1;
    }
    buf [n] = 0;
    *out = buf;
    *len = n;
    return 0;
}

//  Counts the elements of the container starting at p (at its opening bracket).
static size_t
s_count (const char *p)
{
    int depth = 0;
    size_t count = 0;
    bool any = false;
    char quote = 0;
    for (; *p; p++) {
        if (quote) {
            if (*p == '\\' && p [1])
                p++;
            else
            if (*p == quote)
                quote = 0;
            continue;
        }
        if (*p == '"' || *p == '\'') {
            quote = *p;
            any = true;
        }
        else
        if (*p == '[' || *p == '{') {
            if (depth == 1)
                any = true;
            depth++;
        }
        else
        if (*p == ']' || *p == '}') {
            if (--depth == 0)
                break;
        }
        else
        if (*p == ',' && depth == 1)
            count++;
        else
        if (!isspace ((unsigned char) *p) && depth == 1)
            any = true;
    }
    return any ? count + 1 : 0;
}

static int
s_value (s_json_t *j)
{
    s_skip (j);
    char c = *j->p;
    if (c == '{' || c == '[') {
        bool map = c == '{';
        size_t n = s_count (j->p);
        if (map)
            qv_wr_map (j->w, n);
        else
            qv_wr_array (j->w, n);
        j->p++;
        for (size_t i = 0; i < n; i++) {
            if (map) {
                char *key;
                size_t len;
                if (s_string (j, &key, &len, true))
                    return -1;
                qv_wr_strn (j->w, key, len);
                free (key);
                s_skip (j);
                if (*j->p++ != ':')
                    return -1;
            }
            if (s_value (j))
                return -1;
            s_skip (j);
            if (i + 1 < n && *j->p++ != ',')
                return -1;
        }
        s_skip (j);
        if (*j->p++ != (map ? '}' : ']'))
            return -1;
        return 0;
    }
    if (c == '"' || c == '\'') {
        char *s;
        size_t len;
        if (s_string (j, &s, &len, false))
            return -1;
        qv_wr_strn (j->w, s, len);
        free (s);
        return 0;
    }
    if (strncmp (j->p, "true", 4) == 0) { qv_wr_bool (j->w, true); j->p += 4; return 0; }
    if (strncmp (j->p, "false", 5) == 0) { qv_wr_bool (j->w, false); j->p += 5; return 0; }
    if (strncmp (j->p, "null", 4) == 0) { qv_wr_nil (j->w); j->p += 4; return 0; }
    if (c == '-' || c == '+' || isdigit ((unsigned char) c)) {
        const char *start = j->p;
        const char *q = start + 1;
        bool real = false;
        while (isdigit ((unsigned char) *q) || *q == '.' || *q == 'e' || *q == 'E'
           ||  ((*q == '-' || *q == '+') && (q [-1] == 'e' || q [-1] == 'E'))) {
            real |= *q == '.' || *q == 'e' || *q == 'E';
            q++;
        }
        char *end;
        if (real) {
            double d = strtod (start, &end);
            qv_wr_double (j->w, d);
        }
        else
        if (c == '-') {
            long long i = strtoll (start, &end, 10);
            qv_wr_int (j->w, i);
        }
        else {
            unsigned long long u = strtoull (start, &end, 10);
            qv_wr_uint (j->w, u);
        }
        if (end != q)
            return -1;
        j->p = q;
        return 0;
    }
    return -1;
}

int
qv_it_json_write (qv_wr_t *w, const char *text)
{
    s_json_t j = { text, w };
    if (s_value (&j))
        return -1;
    s_skip (&j);
    return *j.p ? -1 : 0;
}

//  ---------------------------------------------------------------------------------
//  Reply accessors

static const qv_val_t *
s_root (qv_doc_t *reply)
{
    return reply ? qv_doc_root (reply) : NULL;
}

bool
qv_it_ok (qv_doc_t *reply)
{
    const qv_val_t *ok = qv_val_get (s_root (reply), "ok");
    bool b = false;
    return ok && qv_val_bool (ok, &b) == 0 && b;
}

static const char *
s_str_field (qv_doc_t *reply, const char *key, char *buf, size_t size)
{
    const qv_val_t *v = qv_val_get (s_root (reply), key);
    const char *s;
    size_t n;
    buf [0] = 0;
    if (v && qv_val_str (v, &s, &n) == 0)
        snprintf (buf, size, "%.*s", (int) n, s);
    return buf;
}

const char *
qv_it_code (qv_doc_t *reply)
{
    static __thread char buf [64];
    return s_str_field (reply, "code", buf, sizeof buf);
}

const char *
qv_it_error (qv_doc_t *reply)
{
    static __thread char buf [4096];
    return s_str_field (reply, "error", buf, sizeof buf);
}

const qv_val_t *
qv_it_vpath (const qv_val_t *v, const char *path)
{
    char part [256];
    while (v && *path) {
        size_t n = strcspn (path, ".");
        snprintf (part, sizeof part, "%.*s", (int) n, path);
        path += n + (path [n] == '.');
        if (qv_val_type (v) == QV_V_ARRAY) {
            char *end;
            unsigned long i = strtoul (part, &end, 10);
            v = *end || i >= qv_val_len (v) ? NULL : qv_val_at (v, i);
        }
        else
            v = qv_val_get (v, part);
    }
    return v;
}

const qv_val_t *
qv_it_path (qv_doc_t *reply, const char *path)
{
    return reply ? qv_it_vpath (qv_doc_root (reply), path) : NULL;
}

int64_t
qv_it_int (const qv_val_t *v)
{
    int64_t i;
    return v && qv_val_int (v, &i) == 0 ? i : INT64_MIN;
}

double
qv_it_num (const qv_val_t *v)
{
    double d;
    return v && qv_val_double (v, &d) == 0 ? d : NAN;
}

bool
qv_it_bool (const qv_val_t *v)
{
    bool b = false;
    return v && qv_val_bool (v, &b) == 0 && b;
}

bool
qv_it_str_is (const qv_val_t *v, const char *s)
{
    return v && qv_val_is (v, s);
}

qv_doc_t *
qv_it_call_ok_at (int line, qv_it_client_t *client, const char *fmt, ...)
{
    va_list ap;
    va_start (ap, fmt);
    char *text = NULL;
    assert_true (vasprintf (&text, fmt, ap) >= 0);
    va_end (ap);
    qv_doc_t *reply = qv_it_callf (client, "%s", text);
    if (!qv_it_ok (reply))
        fail_msg ("line %d: %s -> %s %s", line, text, reply ? qv_it_code (reply) : "(no reply)",
                  reply ? qv_it_error (reply) : "");
    free (text);
    return reply;
}

qv_doc_t *
qv_it_call_err_at (int line, qv_it_client_t *client, const char *code, const char *fmt, ...)
{
    va_list ap;
    va_start (ap, fmt);
    char *text = NULL;
    assert_true (vasprintf (&text, fmt, ap) >= 0);
    va_end (ap);
    qv_doc_t *reply = qv_it_callf (client, "%s", text);
    if (!reply)
        fail_msg ("line %d: %s -> no reply", line, text);
    if (qv_it_ok (reply) || strcmp (qv_it_code (reply), code) != 0)
        fail_msg ("line %d: %s -> %s '%s', expected %s", line, text,
                  qv_it_ok (reply) ? "ok" : qv_it_code (reply), qv_it_error (reply), code);
    if (strlen (qv_it_error (reply)) == 0)
        fail_msg ("line %d: %s -> %s with no error message", line, text, code);
    free (text);
    return reply;
}

int64_t
qv_it_stat (qv_it_client_t *client, const char *name)
{
    qv_doc_t *r = QV_IT_CALL_OK (client, "{op: 'stats'}");
    int64_t v = qv_it_int (qv_it_path (r, name));
    qv_doc_destroy (&r);
    return v;
}

int
qv_it_cmp_i64 (const void *a, const void *b)
{
    int64_t x = *(const int64_t *) a, y = *(const int64_t *) b;
    return x < y ? -1 : x > y;
}

void
qv_it_assert_option_refused (const char *option, const char *const *values)
{
    for (size_t i = 0; values [i]; i++) {
        const char *extra [] = { option, values [i], NULL };
        qv_it_server_t *server = qv_it_server_new (extra);
        assert_non_null (server);
        assert_int_equal (qv_it_server_spawn (server), 0);
        assert_int_equal (qv_it_server_wait_exit (server, 30000), 0);
        assert_true (WIFEXITED (server->status) && WEXITSTATUS (server->status) != 0);
        char *log = qv_it_server_log_text (server);
        if (!strstr (log, option))
            fail_msg ("%s %s: the log does not say what is wrong: %s", option, values [i], log);
        free (log);
        qv_it_server_destroy (&server);
    }
}
