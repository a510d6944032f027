//  The lease with fencing epochs (bus/qv_lease) against a real nats-server with
//  JetStream: one holder at a time, a live holder keeps it, a crashed holder's lease is
//  taken over after its ttl with a higher epoch, and a stalled holder that wakes up
//  after a takeover stops claiming the lease at once and for good.
//
//  Other holders run as child processes: this program started again with
//  `holder URL KEY TTL`, answering one line per command read from stdin.
#include "qv_it_nats.h"
#include "qv_lease.h"
#include "qv_rc.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>

#define S_BUCKET "qv_lease_test"
#define S_TTL 1500

static qv_itn_nats_t s_nats;

// ---------------------------------------------------------------- child holder

static int
s_holder_main (const char *url, const char *key, int ttl)
{
    natsConnection *nc = NULL;
    if (natsConnection_ConnectTo (&nc, url) != NATS_OK)
        return 2;
    char holder [64];
    snprintf (holder, sizeof holder, "child:%d", (int) getpid ());
    qv_lease_t *lease = qv_lease_new (nc, S_BUCKET, key, holder, ttl);
    if (!lease || qv_lease_acquire (lease, 20000) != 0) {
        printf ("failed %s\n", qv_err_msg ());
        return 3;
    }
    printf ("held %llu\n", (unsigned long long) qv_lease_epoch (lease));
    fflush (stdout);
    char line [64];
    while (fgets (line, sizeof line, stdin)) {
        if (strncmp (line, "release", 7) == 0)
            printf ("released %d\n", qv_lease_release (lease));
        else
            printf ("held=%d lost=%d epoch=%llu\n", qv_lease_held (lease),
                    qv_lease_lost (lease), (unsigned long long) qv_lease_epoch (lease));
        fflush (stdout);
    }
    qv_lease_destroy (&lease);
    natsConnection_Destroy (nc);
    return 0;
}

typedef struct {
    pid_t pid;
    int to;                         //  its stdin
    int from;                       //  its stdout
} s_child_t;

//  Reads one line from the child within timeout_ms; false on timeout or EOF.
static bool
s_line (s_child_t *c, char *out, size_t outsize, int timeout_ms)
{
    size_t n = 0;
    int64_t deadline = zclock_mono () + timeout_ms;
    while (n + 1 < outsize) {
        struct pollfd p = { .fd = c->from, .events = POLLIN };
        int left = (int) (deadline - zclock_mono ());
        if (left <= 0 || poll (&p, 1, left) != 1)
            return false;
        if (read (c->from, out + n, 1) != 1)
            return false;
        if (out [n] == '\n')
            break;
        n++;
    }
    out [n] = 0;
    return true;
}

//  Starts a holder for key and waits until it holds the lease; its epoch.
static uint64_t
s_child_start (s_child_t *c, const char *key)
{
    int in [2], out [2];
    assert_int_equal (pipe (in), 0);
    assert_int_equal (pipe (out), 0);
    c->pid = fork ();
    assert_true (c->pid >= 0);
    if (c->pid == 0) {
        dup2 (in [0], 0);
        dup2 (out [1], 1);
        close (in [1]);
        close (out [0]);
        char ttl [16];
        snprintf (ttl, sizeof ttl, "%d", S_TTL);
        execl ("/proc/self/exe", "test_lease", "holder", s_nats.url, key, ttl, (char *) NULL);
        _exit (127);
    }
    close (in [0]);
    close (out [1]);
    c->to = in [1];
    c->from = out [0];
    char line [256];
    assert_true (s_line (c, line, sizeof line, 30000));
    unsigned long long epoch = 0;
    assert_int_equal (sscanf (line, "held %llu", &epoch), 1);
    return epoch;
}

//  Asks the child for its state: "held=H lost=L epoch=E".
static void
s_child_ask (s_child_t *c, int *held, int *lost)
{
    assert_int_equal (write (c->to, "?\n", 2), 2);
    char line [256];
    assert_true (s_line (c, line, sizeof line, 10000));
    unsigned long long epoch;
    assert_int_equal (sscanf (line, "held=%d lost=%d epoch=%llu", held, lost, &epoch), 3);
}

static void
s_child_end (s_child_t *c, int sig)
{
    if (sig)
        kill (c->pid, sig);
    close (c->to);                  //  EOF: a live child releases and exits
    int status;
    waitpid (c->pid, &status, 0);
    close (c->from);
}

// ---------------------------------------------------------------- tests

static natsConnection *
s_connect (void)
{
    natsConnection *nc = qv_itn_nats_connect (s_nats.url);
    assert_non_null (nc);
    return nc;
}

//  One holder at a time; a release hands it over at once with the next epoch.
static void
test_acquire_release_epochs (void **state)
{
    (void) state;
    natsConnection *na = s_connect (), *nb = s_connect ();
    qv_lease_t *a = qv_lease_new (na, S_BUCKET, "shard.release", "holder-a", S_TTL);
    qv_lease_t *b = qv_lease_new (nb, S_BUCKET, "shard.release", "holder-b", S_TTL);
    assert_non_null (a);
    assert_non_null (b);
    assert_false (qv_lease_held (a));
    assert_int_equal (qv_lease_acquire (a, 5000), 0);
    assert_true (qv_lease_held (a));
    uint64_t first = qv_lease_epoch (a);
    assert_true (first >= 1);
    assert_int_equal (qv_lease_acquire (a, 100), QV_EINVAL);

    //  A live holder keeps it for longer than its ttl
    assert_int_equal (qv_lease_acquire (b, 3 * S_TTL), QV_EUNAVAIL);
    assert_non_null (strstr (qv_err_msg (), "holder-a"));
    assert_true (qv_lease_held (a));
    assert_false (qv_lease_held (b));

    //  Released: taken at once, next epoch
    assert_int_equal (qv_lease_release (a), 0);
    assert_false (qv_lease_held (a));
    int64_t started = zclock_mono ();
    assert_int_equal (qv_lease_acquire (b, 5000), 0);
    assert_true (zclock_mono () - started < S_TTL);     //  did not wait for a ttl
    assert_int_equal (qv_lease_epoch (b), first + 1);
    assert_true (qv_lease_held (b));
    assert_int_equal (qv_lease_acquire (a, 100), QV_EUNAVAIL);

    qv_lease_destroy (&b);          //  releases
    assert_int_equal (qv_lease_acquire (a, 5000), 0);
    assert_int_equal (qv_lease_epoch (a), first + 2);
    qv_lease_destroy (&a);
    natsConnection_Destroy (na);
    natsConnection_Destroy (nb);
}

//  A holder killed with -9 never releases: its lease is taken over once it has gone
//  unrenewed for a whole ttl, never sooner, with a higher epoch.
static void
test_takeover_after_crash (void **state)
{
    (void) state;
    s_child_t c;
    uint64_t epoch = s_child_start (&c, "shard.crash");
    kill (c.pid, SIGKILL);
    natsConnection *nc = s_connect ();
    qv_lease_t *b = qv_lease_new (nc, S_BUCKET, "shard.crash", "holder-b", S_TTL);
    assert_non_null (b);
    int64_t started = zclock_mono ();
    assert_int_equal (qv_lease_acquire (b, 30000), 0);
    assert_true (zclock_mono () - started >= S_TTL);
    assert_int_equal (qv_lease_epoch (b), epoch + 1);
    s_child_end (&c, 0);
    qv_lease_destroy (&b);
    natsConnection_Destroy (nc);
}

//  A holder stalled (SIGSTOP) past its ttl is taken over. When it runs again it no
//  longer claims the lease, at once (its own clock says its last renewal is too old)
//  and for good (its next renewal finds the key changed), while the new holder keeps it.
static void
test_stalled_holder_deposed (void **state)
{
    (void) state;
    s_child_t c;
    uint64_t epoch = s_child_start (&c, "shard.stall");
    int held, lost;
    s_child_ask (&c, &held, &lost);
    assert_int_equal (held, 1);
    assert_int_equal (lost, 0);

    kill (c.pid, SIGSTOP);
    natsConnection *nc = s_connect ();
    qv_lease_t *b = qv_lease_new (nc, S_BUCKET, "shard.stall", "holder-b", S_TTL);
    assert_non_null (b);
    assert_int_equal (qv_lease_acquire (b, 30000), 0);
    assert_int_equal (qv_lease_epoch (b), epoch + 1);
    kill (c.pid, SIGCONT);
    s_child_ask (&c, &held, &lost);
    assert_int_equal (held, 0);

    //  Its renewal notices the takeover (polled: a renewal period is ttl/3)
    for (int i = 0; i < 100 && !lost; i++) {
        zclock_sleep (100);
        s_child_ask (&c, &held, &lost);
    }
    assert_int_equal (lost, 1);
    assert_int_equal (held, 0);
    assert_true (qv_lease_held (b));
    assert_false (qv_lease_lost (b));

    //  And the deposed one does not get it back while the new holder lives
    s_child_end (&c, 0);
    zclock_sleep (S_TTL);
    assert_true (qv_lease_held (b));
    qv_lease_destroy (&b);
    natsConnection_Destroy (nc);
}

//  Names that are not KV keys and ttls too short to renew are refused, with a reason.
static void
test_bad_arguments (void **state)
{
    (void) state;
    natsConnection *nc = s_connect ();
    assert_null (qv_lease_new (nc, S_BUCKET, "a/b", "h", S_TTL));
    assert_non_null (strstr (qv_err_msg (), "a/b"));
    assert_null (qv_lease_new (nc, S_BUCKET, "", "h", S_TTL));
    assert_null (qv_lease_new (nc, "bad bucket", "k", "h", S_TTL));
    assert_null (qv_lease_new (nc, S_BUCKET, "k", "h", 50));
    assert_non_null (strstr (qv_err_msg (), "ttl"));
    natsConnection_Destroy (nc);
}

int
main (int argc, char *argv [])
{
    if (argc == 5 && strcmp (argv [1], "holder") == 0)
        return s_holder_main (argv [2], argv [3], atoi (argv [4]));
    if (!qv_itn_have_nats_server ()) {
        printf ("nats-server not found: test_lease skipped\n");
        return 0;
    }
    signal (SIGPIPE, SIG_IGN);
    zsys_init ();
    if (qv_itn_nats_start (&s_nats) != 0) {
        fprintf (stderr, "test_lease: cannot start nats-server\n");
        return 1;
    }
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_acquire_release_epochs),
        cmocka_unit_test (test_takeover_after_crash),
        cmocka_unit_test (test_stalled_holder_deposed),
        cmocka_unit_test (test_bad_arguments),
    };
    int rc = cmocka_run_group_tests (tests, NULL, NULL);
    qv_itn_nats_stop (&s_nats);
    qv_itn_remove_dir (s_nats.dir);
    nats_Close ();
    return rc;
}
