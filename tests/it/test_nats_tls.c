//  NATS over TLS: a nats-server that requires TLS, with a certificate made in the test
//  by openssl, and a real `quiver serve --nats tls://... --nats-tls-ca CERT`: it
//  connects (ping answers ok only once its NATS subscriptions are live), and an insert
//  published over TLS on quiver.insert.<collection> is applied and answered. A server
//  not given the certificate never serves, and its log names the TLS failure. A
//  missing certificate file is refused at start.
#include "qv_it_nats.h"
#include "qv_it_server.h"
#include "qv_it_tls.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define DIM 4

typedef struct {
    char dir [256];
    char cert [320], key [320];
    pid_t nats;
    char url [64];
} s_env_t;

static s_env_t s_env;

static int
s_setup (void **state)
{
    (void) state;
    if (!qv_itn_have_nats_server () || !qv_it_have_openssl ())
        return 0;                   //  tests skip
    snprintf (s_env.dir, sizeof s_env.dir, "/tmp/qv-it-tls-XXXXXX");
    if (!mkdtemp (s_env.dir)
    ||  qv_it_tls_cert (s_env.dir, "localhost", "IP:127.0.0.1,DNS:localhost", s_env.cert,
                        s_env.key, sizeof s_env.cert))
        return -1;
    int port = qv_itn_free_port ();
    snprintf (s_env.url, sizeof s_env.url, "tls://127.0.0.1:%d", port);
    char portstr [16], log [320], js [320];
    snprintf (portstr, sizeof portstr, "%d", port);
    snprintf (log, sizeof log, "%s/nats-server.log", s_env.dir);
    snprintf (js, sizeof js, "%s/js", s_env.dir);
    pid_t pid = fork ();
    if (pid == 0) {
        FILE *f = freopen (log, "a", stdout);
        (void) f;
        dup2 (1, 2);
        execlp ("nats-server", "nats-server", "-a", "127.0.0.1", "-p", portstr, "-js", "-sd", js,
                "--tls", "--tlscert", s_env.cert, "--tlskey", s_env.key, (char *) NULL);
        _exit (127);
    }
    s_env.nats = pid;
    //  Up once it accepts TCP connections
    for (int i = 0; i < 1000; i++) {
        struct sockaddr_in addr = { .sin_family = AF_INET, .sin_port = htons ((uint16_t) port) };
        inet_pton (AF_INET, "127.0.0.1", &addr.sin_addr);
        int fd = socket (AF_INET, SOCK_STREAM, 0);
        bool open = fd >= 0 && connect (fd, (struct sockaddr *) &addr, sizeof addr) == 0;
        if (fd >= 0)
            close (fd);
        if (open)
            return 0;
        if (waitpid (pid, NULL, WNOHANG) == pid)
            return -1;
        zclock_sleep (10);
    }
    return -1;
}

static int
s_teardown (void **state)
{
    (void) state;
    if (s_env.nats > 0) {
        kill (s_env.nats, SIGTERM);
        waitpid (s_env.nats, NULL, 0);
    }
    if (s_env.dir [0]) {
        char cmd [300];
        snprintf (cmd, sizeof cmd, "rm -rf %s", s_env.dir);
        if (system (cmd) != 0)
            return -1;
    }
    return 0;
}

//  A NATS connection over TLS trusting the test's certificate.
static natsConnection *
s_connect (void)
{
    natsOptions *opts = NULL;
    natsConnection *nc = NULL;
    natsStatus s = natsOptions_Create (&opts);
    if (s == NATS_OK) s = natsOptions_SetURL (opts, s_env.url);
    if (s == NATS_OK) s = natsOptions_SetSecure (opts, true);
    if (s == NATS_OK) s = natsOptions_LoadCATrustedCertificates (opts, s_env.cert);
    if (s == NATS_OK) s = natsConnection_Connect (&nc, opts);
    natsOptions_Destroy (opts);
    if (s != NATS_OK)
        print_message ("TLS connection to %s: %s\n", s_env.url, natsStatus_GetText (s));
    return nc;
}

static void
test_tls (void **state)
{
    (void) state;
    if (!s_env.nats)
        skip ();
    qv_itn_quiver_t q = { 0 };
    char args [512];
    snprintf (args, sizeof args, "--nats-tls-ca %s", s_env.cert);
    assert_int_equal (qv_itn_quiver_start (&q, s_env.url, args, 60000), 0);
    assert_true (qv_itn_create (q.endpoint, "secure", DIM, false, 1));
    //  An insert published over TLS, answered over TLS
    natsConnection *nc = s_connect ();
    assert_non_null (nc);
    qv_wr_t *w = qv_wr_new ();
    qv_itn_insert_payload (w, 0, 10, DIM, 1);
    size_t size;
    const void *data = qv_wr_data (w, &size);
    natsMsg *reply = NULL;
    assert_int_equal (natsConnection_Request (&reply, nc, "quiver.insert.secure", data, (int) size,
                                              10000), NATS_OK);
    qv_wr_destroy (&w);
    int rc = 0;
    qv_doc_t *doc = qv_doc_parse (natsMsg_GetData (reply), (size_t) natsMsg_GetDataLength (reply),
                                  1000, &rc);
    assert_true (qv_itn_ok (doc));
    qv_doc_destroy (&doc);
    natsMsg_Destroy (reply);
    assert_int_equal (qv_itn_rows (q.endpoint, "secure"), 10);
    natsConnection_Destroy (nc);
    assert_int_equal (qv_itn_quiver_stop (&q, SIGTERM), 0);
    qv_itn_remove_dir (q.data);
}

static void
test_untrusted (void **state)
{
    (void) state;
    if (!s_env.nats)
        skip ();
    //  Without the certificate: TLS cannot be verified, so it never connects
    qv_itn_quiver_t q = { 0 };
    assert_int_equal (qv_itn_quiver_start (&q, s_env.url, "", 0), 0);
    bool served = false;
    for (int i = 0; i < 30 && !served; i++) {
        qv_wr_t *w = qv_wr_new ();
        qv_wr_map (w, 1);
        qv_wr_str (w, "op"); qv_wr_str (w, "ping");
        qv_doc_t *r = qv_itn_call (q.endpoint, w, 1000);
        qv_wr_destroy (&w);
        served = qv_itn_ok (r);
        qv_doc_destroy (&r);
        zclock_sleep (100);
    }
    assert_false (served);
    //  It gave up (it cannot take its write lease from NATS) or still waits; its log
    //  says why either way
    int status = qv_itn_quiver_stop (&q, SIGTERM);
    assert_true (status == 0 || status == 1);   //  a crash or a sanitizer report is not
    char cmd0 [400];
    snprintf (cmd0, sizeof cmd0, "grep -q 'SSL' %s/quiver.log", q.data);
    assert_int_equal (system (cmd0), 0);
    qv_itn_remove_dir (q.data);
    //  A certificate file that is not there: refused at start, naming the option
    char cmd [1024];
    snprintf (cmd, sizeof cmd, "%s/quiver serve --check-config --nats %s --nats-tls-ca %s/none.pem "
             "2> %s/check.log", getenv ("QV_BIN_DIR") ? getenv ("QV_BIN_DIR") : ".", s_env.url,
             s_env.dir, s_env.dir);
    status = system (cmd);
    assert_true (WIFEXITED (status) && WEXITSTATUS (status) == 2);
    char path [320];
    snprintf (path, sizeof path, "%s/check.log", s_env.dir);
    FILE *f = fopen (path, "r");
    assert_non_null (f);
    char line [512] = "";
    assert_non_null (fgets (line, sizeof line, f));
    fclose (f);
    assert_non_null (strstr (line, "--nats-tls-ca"));
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_tls),
        cmocka_unit_test (test_untrusted),
    };
    return cmocka_run_group_tests (tests, s_setup, s_teardown);
}
