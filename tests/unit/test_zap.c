//  The ZAP handler's client list (actors/qv_zap.h) on real CURVE sockets in this
//  process: the list file's parser (keys, key-file lines, comments, a long line, a bad
//  line named); an API socket that lists client keys admits a listed pair and refuses
//  an unlisted one and a pair of the client's own; and without a handler bound, the
//  same socket admits nobody (ZMQ_ZAP_ENFORCE_DOMAIN: libzmq would otherwise complete
//  the handshake, failing open).
#include "qv_actor.h"
#include "qv_rc.h"
#include "qv_zap.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <unistd.h>

static char s_dir [] = "/tmp/qv-zap-XXXXXX";

//  A key pair saved as dir/name and dir/name_secret; the cert (the caller destroys it).
static zcert_t *
s_pair (const char *name)
{
    char path [300];
    snprintf (path, sizeof path, "%s/%s", s_dir, name);
    zcert_t *cert = zcert_new ();
    assert_non_null (cert);
    assert_int_equal (zcert_save (cert, path), 0);
    return cert;
}

static void
s_write (const char *name, const char *text)
{
    char path [300];
    snprintf (path, sizeof path, "%s/%s", s_dir, name);
    FILE *f = fopen (path, "w");
    assert_non_null (f);
    fputs (text, f);
    fclose (f);
}

static void
test_clients_read (void **state)
{
    (void) state;
    zcert_t *alice = s_pair ("alice"), *bob = s_pair ("bob");
    //  alice's public file as keygen wrote it, bob's bare key, comments and a long line
    char path [300], text [4096], longline [1200];
    snprintf (path, sizeof path, "%s/alice", s_dir);
    FILE *f = fopen (path, "r");
    assert_non_null (f);
    size_t n = fread (text, 1, sizeof text - 1, f);
    fclose (f);
    text [n] = 0;
    memset (longline, 'x', sizeof longline - 2);
    longline [0] = '#';
    longline [sizeof longline - 2] = '\n';
    longline [sizeof longline - 1] = 0;
    char list [8192];
    snprintf (list, sizeof list, "%s\n# bob\n  %s  \r\n\n%s", text, zcert_public_txt (bob), longline);
    s_write ("list", list);
    snprintf (path, sizeof path, "%s/list", s_dir);
    zhashx_t *keys = qv_zap_clients_read (path);
    assert_non_null (keys);
    assert_int_equal (zhashx_size (keys), 2);
    assert_non_null (zhashx_lookup (keys, zcert_public_txt (alice)));
    assert_non_null (zhashx_lookup (keys, zcert_public_txt (bob)));
    zhashx_destroy (&keys);

    //  A secret key file's secret line, or any other text, is refused by line
    snprintf (path, sizeof path, "%s/alice_secret", s_dir);
    keys = qv_zap_clients_read (path);
    assert_null (keys);
    assert_non_null (strstr (qv_err_msg (), "line"));
    snprintf (list, sizeof list, "%s\nnot a key\n", zcert_public_txt (bob));
    s_write ("bad", list);
    snprintf (path, sizeof path, "%s/bad", s_dir);
    assert_null (qv_zap_clients_read (path));
    assert_non_null (strstr (qv_err_msg (), "line 2"));
    snprintf (path, sizeof path, "%s/none", s_dir);
    assert_null (qv_zap_clients_read (path));
    assert_non_null (strstr (qv_err_msg (), "cannot be read"));
    zcert_destroy (&alice);
    zcert_destroy (&bob);
}

//  An API socket with the server's pair and config's client list, bound on a free port
//  (its endpoint in endpoint).
static zsock_t *
s_api (qv_config_t *config, char *endpoint, size_t size)
{
    zsock_t *api = zsock_new (ZMQ_ROUTER);
    assert_non_null (api);
    assert_int_equal (qv_actor_curve_server (api, config, false, "the API"), 0);
    int port = zsock_bind (api, "tcp://127.0.0.1:*");
    assert_true (port > 0);
    snprintf (endpoint, size, "tcp://127.0.0.1:%d", port);
    return api;
}

//  Whether a client with cert's pair (NULL: a new one) reaches api within 2 s.
static bool
s_reaches (zsock_t *api, const char *endpoint, const char *server_key, zcert_t *cert)
{
    zsock_t *client = zsock_new (ZMQ_DEALER);
    assert_non_null (client);
    zcert_t *own = cert ? NULL : zcert_new ();
    zcert_apply (cert ? cert : own, zsock_resolve (client));
    zcert_destroy (&own);
    zsock_set_curve_serverkey (client, server_key);
    zsock_set_linger (client, 0);
    assert_int_equal (zsock_connect (client, "%s", endpoint), 0);
    zstr_send (client, "hello");
    zpoller_t *poller = zpoller_new (api, NULL);
    bool reached = zpoller_wait (poller, 2000) == api;
    if (reached) {
        zmsg_t *msg = zmsg_recv (api);
        zmsg_destroy (&msg);
    }
    zpoller_destroy (&poller);
    zsock_destroy (&client);
    return reached;
}

static void
test_listed_clients (void **state)
{
    (void) state;
    zcert_t *server = s_pair ("server"), *alice = s_pair ("alice2"), *bob = s_pair ("bob2");
    char list [100];
    snprintf (list, sizeof list, "%s\n", zcert_public_txt (alice));
    s_write ("list2", list);
    qv_config_t config;
    qv_config_defaults (&config);
    snprintf (config.curve_secret_key, sizeof config.curve_secret_key, "%s/server_secret", s_dir);
    snprintf (config.curve_clients, sizeof config.curve_clients, "%s/list2", s_dir);
    char endpoint [64];

    //  No handler bound: the domain is enforced, so nobody is admitted
    zsock_t *api = s_api (&config, endpoint, sizeof endpoint);
    assert_false (s_reaches (api, endpoint, zcert_public_txt (server), alice));
    zsock_destroy (&api);

    qv_zap_args_t args = { "", "the test", config.curve_clients, false };
    zactor_t *zap = zactor_new (qv_zap_actor, &args);
    assert_non_null (zap);
    assert_true (args.bound);
    api = s_api (&config, endpoint, sizeof endpoint);
    assert_true (s_reaches (api, endpoint, zcert_public_txt (server), alice));
    assert_false (s_reaches (api, endpoint, zcert_public_txt (server), bob));
    assert_false (s_reaches (api, endpoint, zcert_public_txt (server), NULL));
    zsock_destroy (&api);
    zactor_destroy (&zap);
    zcert_destroy (&server);
    zcert_destroy (&alice);
    zcert_destroy (&bob);
}

int
main (void)
{
    assert_non_null (mkdtemp (s_dir));
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_clients_read),
        cmocka_unit_test (test_listed_clients),
    };
    int rc = cmocka_run_group_tests (tests, NULL, NULL);
    char cmd [100];
    snprintf (cmd, sizeof cmd, "rm -rf %s", s_dir);
    if (system (cmd) != 0)
        rc = rc ? rc : 1;
    return rc;
}
