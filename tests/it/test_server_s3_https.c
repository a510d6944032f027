//  Quiver on S3 over HTTPS (`--s3-https`): a private s3rver serving TLS with a
//  certificate made in the test by openssl. A server writes its WAL, segments and
//  manifests through it, and a server on an empty machine with the same options
//  serves the same rows from the bucket alone. A store whose certificate does not name
//  the endpoint is refused at start, with an error that names the certificate.
//  What is not checked, because libs3 2.0 does not do it: the certificate's issuer
//  (Debian's libs3 2.0 turns curl's peer verification off; see the README's S3
//  section). The test's certificate is self-signed and in no trust store, and the
//  server logs a warning saying the store is not authenticated.
//  Needs QV_S3RVER (the s3rver binary, tools/test.sh) and openssl; skips without.
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "qv_it_docs.h"
#include "qv_it_nats.h"
#include "qv_it_s3rver.h"
#include "qv_it_tls.h"

#define CALL_OK QV_IT_CALL_OK
#define BATCH 200
#define DIM 4

typedef struct {
    const char *bin;                //  s3rver
    char dir [64];                  //  certificates and the s3rver's objects
    char cert [160], key [160];
    pid_t s3rver;
    int port;
} s_tls_store_t;

//  A private s3rver over HTTPS with a certificate for san, and QV_S3_ENDPOINT (so
//  every server of the test) pointed at it. Skips without s3rver or openssl.
static void
s_tls_store_start (s_tls_store_t *t, const char *san)
{
    memset (t, 0, sizeof *t);
    t->bin = qv_it_s3rver_bin ();
    if (!t->bin || !qv_it_have_openssl ())
        skip ();
    snprintf (t->dir, sizeof t->dir, "/tmp/qv-it-s3tls-XXXXXX");
    assert_non_null (mkdtemp (t->dir));
    assert_int_equal (qv_it_tls_cert (t->dir, "s3", san, t->cert, t->key, sizeof t->cert), 0);
    char objects [96];
    snprintf (objects, sizeof objects, "%s/objects", t->dir);
    t->port = qv_itn_free_port ();
    t->s3rver = qv_it_s3rver_start (t->bin, objects, t->port, t->cert, t->key);
    assert_true (t->s3rver > 0);
    char endpoint [64];
    snprintf (endpoint, sizeof endpoint, "127.0.0.1:%d", t->port);
    setenv ("QV_S3_ENDPOINT", endpoint, 1);
    assert_true (qv_it_need_s3 ());
}

static void
s_tls_store_stop (s_tls_store_t *t)
{
    qv_it_s3rver_stop (t->s3rver);
    qv_it_rm_rf (t->dir);
}

//  Insert, flush, stop; a server on an empty data directory reads it all back over
//  HTTPS.
static void
test_https_round_trip (void **state)
{
    (void) state;
    s_tls_store_t t;
    s_tls_store_start (&t, "IP:127.0.0.1,DNS:localhost");
    const char *const https [] = { "--s3-https", NULL };
    qv_it_server_t *first = qv_it_server_new (https);
    assert_int_equal (qv_it_server_start (first), 0);
    assert_int_equal (qv_it_server_wait_log (first, "not authenticated", 10000), 0);
    qv_it_client_t *c = qv_it_client_new (first->endpoint, QV_IT_CALL_MS);
    assert_true (qv_it_docs_create (c, DIM));
    for (uint32_t b = 0; b < 6; b++) {
        assert_true (qv_it_docs_insert_ok (c, b, BATCH, DIM));
        if (b == 3) {
            qv_doc_t *r = CALL_OK (c, "{op: 'flush', collection: 'docs'}");
            qv_doc_destroy (&r);
        }
    }
    //  Part in segments, part only in the WAL; all of it in the HTTPS store's bucket
    char before [256], after [256];
    qv_it_docs_top10 (c, before, sizeof before);
    assert_true (before [0]);
    assert_int_equal (qv_it_docs_rows (c), 6 * BATCH);
    qv_it_client_destroy (&c);
    assert_int_equal (qv_it_server_signal (first, SIGTERM, 30000), 0);
    char bucket [128], newest [512];
    snprintf (bucket, sizeof bucket, "%s/objects/%s", t.dir, QV_IT_S3_BUCKET);
    assert_int_equal (qv_it_newest_file (bucket, newest, sizeof newest), 0);

    //  A new machine: empty data directory, same bucket and prefix, over HTTPS
    qv_it_server_t *second = qv_it_server_new (https);
    snprintf (second->s3_prefix, sizeof second->s3_prefix, "%s", first->s3_prefix);
    assert_int_equal (qv_it_server_start (second), 0);
    c = qv_it_client_new (second->endpoint, QV_IT_CALL_MS);
    assert_int_equal (qv_it_docs_rows (c), 6 * BATCH);
    for (uint32_t b = 0; b < 6; b++)
        assert_true ((qv_it_docs_batch_rows (c, b, BATCH) == BATCH));
    qv_it_docs_top10 (c, after, sizeof after);
    assert_string_equal (before, after);
    qv_it_client_destroy (&c);
    assert_int_equal (qv_it_server_signal (second, SIGTERM, 30000), 0);
    qv_it_server_destroy (&second);
    qv_it_server_destroy (&first);
    s_tls_store_stop (&t);
}

//  A store whose certificate is for another name: the server refuses to start, and
//  its log names the certificate.
static void
test_https_wrong_name (void **state)
{
    (void) state;
    s_tls_store_t t;
    s_tls_store_start (&t, "DNS:s3.elsewhere.example");
    const char *const https [] = { "--s3-https", NULL };
    qv_it_server_t *server = qv_it_server_new (https);
    assert_int_equal (qv_it_server_spawn (server), 0);
    assert_int_equal (qv_it_server_wait_exit (server, 120000), 0);
    assert_true (WIFEXITED (server->status) && WEXITSTATUS (server->status) != 0);
    char *log = qv_it_server_log_text (server);
    assert_non_null (strstr (log, "TLS certificate"));
    free (log);
    qv_it_server_destroy (&server);
    s_tls_store_stop (&t);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_https_round_trip),
        cmocka_unit_test (test_https_wrong_name),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
