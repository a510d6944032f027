//  Benchmark support: the quiver server child process and clean failure.
#include "qv_bench.h"
#include "qv_client.h"
#include "qv_rc.h"

#include <errno.h>
#include <math.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *s_program = "qvbench";
//  The child processes running (servers, nats-server): killed if the program is
//  interrupted or dies, so that a failed run leaves nothing behind (a benchmark with
//  several servers left all but the last running when one failed to start).
#define S_CHILDREN_MAX 64
static volatile pid_t s_children [S_CHILDREN_MAX];

static void
s_track (pid_t pid)
{
    for (int i = 0; i < S_CHILDREN_MAX; i++)
        if (s_children [i] == 0) {
            s_children [i] = pid;
            return;
        }
}

static void
s_untrack (pid_t pid)
{
    for (int i = 0; i < S_CHILDREN_MAX; i++)
        if (s_children [i] == pid)
            s_children [i] = 0;
}

static void
s_kill_children (void)
{
    for (int i = 0; i < S_CHILDREN_MAX; i++)
        if (s_children [i] > 0)
            kill (s_children [i], SIGKILL);
}

static void
s_on_signal (int sig)
{
    s_kill_children ();
    signal (sig, SIG_DFL);
    raise (sig);
}

void
qv_bench_init (const char *program)
{
    s_program = program;
    signal (SIGINT, s_on_signal);
    signal (SIGTERM, s_on_signal);
}

void
qv_bench_die (const char *fmt, ...)
{
    va_list ap;
    va_start (ap, fmt);
    fprintf (stderr, "%s: ", s_program);
    vfprintf (stderr, fmt, ap);
    fprintf (stderr, "\n");
    va_end (ap);
    s_kill_children ();
    for (int i = 0; i < S_CHILDREN_MAX; i++)
        if (s_children [i] > 0)
            waitpid (s_children [i], NULL, 0);
    exit (1);
}

static int
s_rm_entry (const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void) st; (void) flag; (void) ftw;
    return remove (path);
}

void
qv_bench_rm_rf (const char *path)
{
    nftw (path, s_rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

qv_doc_t *
qv_bench_call (qv_client_t *client, qv_wr_t **request_p)
{
    qv_doc_t *reply;
    int rc = qv_client_call (client, *request_p, &reply);
    qv_wr_destroy (request_p);
    if (rc)
        qv_bench_die ("%s: %s", qv_client_code (client), qv_client_error (client));
    return reply;
}

int
qv_bench_free_port (void)
{
    int fd = socket (AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in addr = { .sin_family = AF_INET, .sin_addr.s_addr = htonl (INADDR_LOOPBACK) };
    socklen_t len = sizeof addr;
    if (fd < 0 || bind (fd, (struct sockaddr *) &addr, sizeof addr)
    ||  getsockname (fd, (struct sockaddr *) &addr, &len))
        qv_bench_die ("cannot find a free port: %s", strerror (errno));
    close (fd);
    return ntohs (addr.sin_port);
}

//  Waits until ping answers ok, at most timeout_ms, while process pid lives. Returns
//  the ms from t0 (usec clock) to the answer, or -1.
static char s_server_key [41];
static char s_token [300];

void
qv_bench_set_server_key (const char *key)
{
    snprintf (s_server_key, sizeof s_server_key, "%s", key ? key : "");
}

void
qv_bench_set_token (const char *token)
{
    snprintf (s_token, sizeof s_token, "%s", token ? token : "");
}

qv_client_t *
qv_bench_client_new (const char *endpoint)
{
    qv_client_t *client = s_server_key [0] ? qv_client_new_curve (endpoint, s_server_key)
                                           : qv_client_new (endpoint);
    if (!client)
        qv_bench_die ("client of %s: %s", endpoint, qv_err_msg ());
    if (s_token [0])
        qv_client_set_token (client, s_token);
    return client;
}

static double
s_wait_serving (const char *endpoint, pid_t pid, int64_t t0, int timeout_ms)
{
    qv_client_t *client = qv_bench_client_new (endpoint);
    qv_client_set_timeout (client, 20);
    double ms = -1;
    while ((qv_clock_usec () - t0) / 1000 < timeout_ms) {
        qv_wr_t *w = qv_client_request (client, "ping", 0, NULL);
        qv_doc_t *reply;
        int rc = qv_client_call (client, w, &reply);
        qv_wr_destroy (&w);
        qv_doc_destroy (&reply);
        if (rc == 0) {
            ms = (qv_clock_usec () - t0) / 1000.0;
            break;
        }
        int status;
        if (waitpid (pid, &status, WNOHANG) == pid) {
            s_untrack (pid);
            break;
        }
        if (rc != QV_ETIMEOUT)
            usleep (2000);          //  UNAVAILABLE while recovering
    }
    qv_client_destroy (&client);
    return ms;
}

void
qv_bench_server_launch (qv_bench_server_t *srv, const char *quiver, const char *data,
                        char *const *extra)
{
    if (data != srv->data)
        snprintf (srv->data, sizeof srv->data, "%s", data);
    snprintf (srv->log, sizeof srv->log, "%.4190s.log", srv->data);
    snprintf (srv->endpoint, sizeof srv->endpoint, "tcp://127.0.0.1:%d", qv_bench_free_port ());
    char *argv [32] = {
        (char *) quiver, "serve", "--data", srv->data, "--bind", srv->endpoint
    };
    int argc = 6;
    for (int i = 0; extra && extra [i] && argc < 31; i++)
        argv [argc++] = extra [i];
    argv [argc] = NULL;
    int64_t t0 = qv_clock_usec ();
    pid_t pid = fork ();
    if (pid < 0)
        qv_bench_die ("fork: %s", strerror (errno));
    if (pid == 0) {
        int fd = open (srv->log, O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (fd >= 0) {
            dup2 (fd, 1);
            dup2 (fd, 2);
            close (fd);
        }
        execv (quiver, argv);
        fprintf (stderr, "cannot run %s: %s\n", quiver, strerror (errno));
        _exit (127);
    }
    srv->pid = pid;
    s_track (pid);
    srv->launched_us = t0;
}

double
qv_bench_server_start (qv_bench_server_t *srv, const char *quiver, const char *data,
                       char *const *extra)
{
    qv_bench_server_launch (srv, quiver, data, extra);
    pid_t pid = srv->pid;
    double ms = s_wait_serving (srv->endpoint, pid, srv->launched_us, 600000);
    if (ms < 0) {
        bool alive = kill (pid, 0) == 0 && waitpid (pid, NULL, WNOHANG) == 0;
        qv_bench_die ("%s %s (see %s)", quiver, alive ? "did not serve within 600 s"
                                                      : "exited before serving", srv->log);
    }
    return ms;
}

void
qv_bench_server_stop (qv_bench_server_t *srv, int sig)
{
    if (srv->pid <= 0)
        return;
    kill (srv->pid, sig);
    int status;
    int64_t deadline = qv_clock_msec () + 30000;
    while (waitpid (srv->pid, &status, sig == SIGKILL ? 0 : WNOHANG) == 0) {
        if (qv_clock_msec () > deadline) {
            fprintf (stderr, "%s: quiver (pid %d) did not stop within 30 s of SIGTERM; "
                     "killing it (see %s)\n", s_program, (int) srv->pid, srv->log);
            kill (srv->pid, SIGKILL);
            waitpid (srv->pid, &status, 0);
            break;
        }
        usleep (10000);
    }
    s_untrack (srv->pid);
    srv->pid = 0;
}

pid_t
qv_bench_nats_start (const char *dir, char *url, size_t url_size)
{
    int port = qv_bench_free_port ();
    char ports [16], log [4300];
    snprintf (ports, sizeof ports, "%d", port);
    snprintf (log, sizeof log, "%s.log", dir);
    pid_t pid = fork ();
    if (pid < 0)
        qv_bench_die ("fork: %s", strerror (errno));
    if (pid == 0) {
        int fd = open (log, O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (fd >= 0) {
            dup2 (fd, 1);
            dup2 (fd, 2);
            close (fd);
        }
        execlp ("nats-server", "nats-server", "-a", "127.0.0.1", "-p", ports, "-js", "-sd", dir,
                (char *) NULL);
        fprintf (stderr, "cannot run nats-server: %s\n", strerror (errno));
        _exit (127);
    }
    s_track (pid);
    snprintf (url, url_size, "nats://127.0.0.1:%d", port);
    for (int i = 0; i < 200; i++) {
        int fd = socket (AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons ((uint16_t) port),
                                  .sin_addr.s_addr = htonl (INADDR_LOOPBACK) };
        bool up = fd >= 0 && connect (fd, (struct sockaddr *) &sa, sizeof sa) == 0;
        if (fd >= 0)
            close (fd);
        if (up)
            return pid;
        if (waitpid (pid, NULL, WNOHANG) == pid)
            qv_bench_die ("nats-server exited at start (is it on PATH? see %s)", log);
        usleep (50000);
    }
    kill (pid, SIGKILL);
    qv_bench_die ("nats-server did not accept connections within 10 s (see %s)", log);
}

void
qv_bench_nats_stop (pid_t pid)
{
    if (pid <= 0)
        return;
    kill (pid, SIGTERM);
    waitpid (pid, NULL, 0);
    s_untrack (pid);
}

void
qv_bench_wait_indexed (const char *endpoint, const char *collection, const char *field,
                       int timeout_s)
{
    qv_client_t *client = qv_client_new (endpoint);
    qv_client_set_timeout (client, 60000);
    int64_t until = qv_clock_msec () + (int64_t) timeout_s * 1000;
    while (true) {
        qv_wr_t *w = qv_client_request (client, "describe_index", 2, NULL);
        qv_wr_str (w, "collection"); qv_wr_str (w, collection);
        qv_wr_str (w, "field"); qv_wr_str (w, field);
        qv_doc_t *reply = qv_bench_call (client, &w);
        uint64_t indexed = 0, total = 1;
        const qv_val_t *v = qv_val_get (qv_doc_root (reply), "indexed_rows");
        if (v)
            qv_val_uint (v, &indexed);
        if ((v = qv_val_get (qv_doc_root (reply), "total_rows")))
            qv_val_uint (v, &total);
        qv_doc_destroy (&reply);
        if (indexed == total)
            break;
        if (qv_clock_msec () > until)
            qv_bench_die ("%s: the index of '%s' was not ready within %d s (%llu of %llu rows)",
                          endpoint, collection, timeout_s, (unsigned long long) indexed,
                          (unsigned long long) total);
        usleep (20000);
    }
    qv_client_destroy (&client);
}

void
qv_bench_create (qv_client_t *client, const char *collection, uint32_t dim, const char *metric)
{
    qv_wr_t *w = qv_client_request (client, "create_collection", 2, NULL);
    qv_wr_str (w, "collection"); qv_wr_str (w, collection);
    qv_wr_str (w, "fields");
    qv_wr_array (w, 2);
    qv_wr_map (w, 3);
    qv_wr_str (w, "name"); qv_wr_str (w, "id");
    qv_wr_str (w, "type"); qv_wr_str (w, "int64");
    qv_wr_str (w, "primary"); qv_wr_bool (w, true);
    qv_wr_map (w, 4);
    qv_wr_str (w, "name"); qv_wr_str (w, "vector");
    qv_wr_str (w, "type"); qv_wr_str (w, "float_vector");
    qv_wr_str (w, "dim"); qv_wr_uint (w, dim);
    qv_wr_str (w, "metric"); qv_wr_str (w, metric);
    qv_doc_t *reply = qv_bench_call (client, &w);
    qv_doc_destroy (&reply);
}

qv_wr_t *
qv_bench_insert_request (qv_client_t *client, const char *collection, int64_t first_id,
                         const float *vectors, size_t n, uint32_t dim, uint64_t *rid_p)
{
    qv_wr_t *w = qv_client_request (client, "insert", 2, rid_p);
    qv_wr_str (w, "collection"); qv_wr_str (w, collection);
    qv_wr_str (w, "columns");
    qv_wr_map (w, 2);
    qv_wr_str (w, "id");
    qv_wr_array (w, n);
    for (size_t i = 0; i < n; i++)
        qv_wr_int (w, first_id + (int64_t) i);
    qv_wr_str (w, "vector");
    qv_wr_bin (w, vectors, n * dim * sizeof (float));
    return w;
}

static int
s_cmp_double (const void *a, const void *b)
{
    double x = *(const double *) a, y = *(const double *) b;
    return x < y ? -1 : x > y;
}

double
qv_bench_quantile (double *v, size_t n, double q)
{
    if (n == 0)
        return 0;
    qsort (v, n, sizeof *v, s_cmp_double);
    size_t i = (size_t) ceil (q * (double) n);
    return v [i ? i - 1 : 0];
}

//  Fields 10 (minflt), 14 (utime) and 15 (stime) of /proc/PID/stat, or -1.
static int
s_proc_stat (pid_t pid, unsigned long long *minflt, unsigned long long *utime,
             unsigned long long *stime)
{
    char path [64], buf [1024];
    snprintf (path, sizeof path, "/proc/%d/stat", (int) pid);
    FILE *f = fopen (path, "r");
    if (!f)
        return -1;
    size_t n = fread (buf, 1, sizeof buf - 1, f);
    fclose (f);
    buf [n] = 0;
    //  Fields after the command name (which may hold spaces), from field 3 on
    char *p = strrchr (buf, ')');
    if (!p || sscanf (p + 2, "%*c %*d %*d %*d %*d %*d %*u %llu %*u %*u %*u %llu %llu",
                      minflt, utime, stime) != 3)
        return -1;
    return 0;
}

double
qv_bench_cpu_s (pid_t pid)
{
    unsigned long long minflt, utime, stime;
    if (s_proc_stat (pid, &minflt, &utime, &stime))
        return -1;
    return (double) (utime + stime) / (double) sysconf (_SC_CLK_TCK);
}

double
qv_bench_minflt (pid_t pid)
{
    unsigned long long minflt, utime, stime;
    if (s_proc_stat (pid, &minflt, &utime, &stime))
        return -1;
    return (double) minflt;
}
