//  CURVE on the links between the processes of a split deployment: a writer core, a
//  searcher process and a proxy process that hold one key pair (--curve-secret-key,
//  --curve-peer-key) serve a client end to end (inserts through the link to the core,
//  searches through the fan-out to the searcher, all encrypted); a proxy process with
//  another key pair is refused by the core's and the searcher's sockets (its writes
//  and reads stay UNAVAILABLE, the core's log says why), and so is a client that
//  connects to the core's socket directly with a key of its own or without CURVE.
//  Plain links (no keys) are test_split's.
#include "qv_client.h"
#include "qv_rc.h"
#include "qv_it_nats.h"
#include "qv_it_server.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <signal.h>
#include <sys/wait.h>

#define S_DIM 4

//  One request written as text (qv_it_json_write) on client: the rc of
//  qv_client_call, the reply in *reply (destroyed by the caller) if reply is not NULL.
static int
s_call (qv_client_t *client, qv_doc_t **reply, const char *text)
{
    qv_wr_t *w = qv_wr_new ();
    assert_int_equal (qv_it_json_write (w, text), 0);
    qv_doc_t *r = NULL;
    int rc = qv_client_call (client, w, &r);
    qv_wr_destroy (&w);
    if (reply)
        *reply = r;
    else
        qv_doc_destroy (&r);
    return rc;
}

//  Calls text until it succeeds (the processes find each other first): fails the test
//  after 60 s, with the last error. The reply (the caller destroys it).
static qv_doc_t *
s_call_until_ok (qv_client_t *client, const char *text)
{
    qv_doc_t *r = NULL;
    int rc = -1;
    for (int64_t end = zclock_mono () + 60000; rc != 0 && zclock_mono () < end; ) {
        qv_doc_destroy (&r);
        if ((rc = s_call (client, &r, text)) != 0)
            zclock_sleep (100);
    }
    if (rc != 0)
        fail_msg ("'%s' did not succeed within 60 s: %s %s", text, qv_client_code (client),
                  qv_client_error (client));
    return r;
}

//  A key pair in dir: dir/name (public) and dir/name_secret; its public key into out.
static void
s_keygen (const char *dir, const char *name, char out [41])
{
    char path [300];
    snprintf (path, sizeof path, "%s/%s", dir, name);
    zcert_t *cert = zcert_new ();
    assert_non_null (cert);
    assert_int_equal (zcert_save (cert, path), 0);
    snprintf (out, 41, "%s", zcert_public_txt (cert));
    zcert_destroy (&cert);
}

//  Fails unless the log of q's data directory holds needle.
static void
s_log_has (const qv_itn_quiver_t *q, const char *needle)
{
    if (!qv_itn_log_has (q, needle))
        fail_msg ("%s/quiver.log does not hold '%s'", q->data, needle);
}

static void
test_split_curve (void **state)
{
    (void) state;
    if (!qv_itn_have_nats_server ()) {
        fprintf (stderr, "no nats-server: test_split_curve skipped\n");
        return;
    }
    char keys [] = "/tmp/qv-it-keys-XXXXXX";
    assert_non_null (mkdtemp (keys));
    char key [41], wrong [41];
    s_keygen (keys, "deploy", key);
    s_keygen (keys, "other", wrong);
    qv_itn_nats_t nats = { 0 };
    qv_itn_quiver_t core = { 0 }, searcher = { 0 }, proxy = { 0 }, intruder = { 0 };
    assert_int_equal (qv_itn_nats_start (&nats), 0);
    char curve [700], args [1024];
    snprintf (curve, sizeof curve, "--curve-secret-key %s/deploy_secret --curve-peer-key %s/deploy",
              keys, keys);
    //  Nobody answers a plain ping: each is up once the client through the proxy is served
    snprintf (args, sizeof args, "--roles segment-manager,meta,flusher --lease-ttl-ms 2000 %s", curve);
    assert_int_equal (qv_itn_quiver_start (&core, nats.url, args, 0), 0);
    snprintf (searcher.data, sizeof searcher.data, "%s", core.data);
    snprintf (args, sizeof args, "--roles searcher %s", curve);
    assert_int_equal (qv_itn_quiver_start (&searcher, nats.url, args, 0), 0);
    //  (the store's data directory: searcher processes are found by the store's name)
    snprintf (proxy.data, sizeof proxy.data, "%s", core.data);
    snprintf (intruder.data, sizeof intruder.data, "%s", core.data);
    snprintf (args, sizeof args, "--roles proxy --writer %s %s", core.endpoint, curve);
    assert_int_equal (qv_itn_quiver_start (&proxy, nats.url, args, 0), 0);

    //  End to end through the encrypted links: the proxy's API takes the same key
    qv_client_t *client = qv_client_new_curve (proxy.endpoint, key);
    assert_non_null (client);
    qv_client_set_timeout (client, 15000);
    qv_doc_t *r = s_call_until_ok (client, "{op: 'create_collection', collection: 'c', dimension: 4}");
    qv_doc_destroy (&r);
    char insert [4096];
    int n = snprintf (insert, sizeof insert, "{op: 'insert', collection: 'c', rows: [");
    for (int i = 0; i < 50; i++)
        n += snprintf (insert + n, sizeof insert - (size_t) n, "%s{id: %d, vector: [%d.0, 1.0, 2.0, 3.0]}",
                       i ? ", " : "", i, i);
    snprintf (insert + n, sizeof insert - (size_t) n, "]}");
    assert_int_equal (s_call (client, NULL, insert), 0);
    //  A strong search sees every row acknowledged, on the searcher process (the proxy
    //  process holds no data): row 17 is nearest to its own vector
    r = s_call_until_ok (client, "{op: 'search', collection: 'c', vectors: [[17.0, 1.0, 2.0, 3.0]], "
                                 "limit: 3, consistency: 'strong'}");
    assert_int_equal (qv_it_int (qv_it_path (r, "results.0.0.id")), 17);
    assert_int_equal (qv_val_len (qv_it_path (r, "results.0")), 3);
    qv_doc_destroy (&r);
    r = s_call_until_ok (client, "{op: 'query', collection: 'c', filter: 'id >= 0', "
                                 "output_fields: ['id'], consistency: 'strong'}");
    assert_int_equal (qv_val_len (qv_it_path (r, "rows")), 50);
    qv_doc_destroy (&r);

    //  A proxy process with another key pair: its API answers (its own key), but the
    //  core's and the searcher's sockets refuse its handshakes, so nothing else passes
    snprintf (args, sizeof args, "--roles proxy --writer %s --curve-secret-key %s/other_secret "
              "--curve-peer-key %s/deploy", core.endpoint, keys, keys);
    assert_int_equal (qv_itn_quiver_start (&intruder, nats.url, args, 0), 0);
    qv_client_t *bad = qv_client_new_curve (intruder.endpoint, wrong);
    assert_non_null (bad);
    qv_client_set_timeout (bad, 15000);
    //  (first "recovering", until its link tries the core)
    int rc = QV_ETIMEOUT;
    bool named = false;
    for (int64_t end = zclock_mono () + 60000; !named && zclock_mono () < end; ) {
        rc = s_call (bad, NULL, "{op: 'ping'}");
        named = rc == QV_EUNAVAIL && strstr (qv_client_error (bad), "writer core");
        if (!named)
            zclock_sleep (100);
    }
    assert_int_equal (rc, QV_EUNAVAIL);
    if (!named)
        fail_msg ("the intruder's refusal does not name the writer core: %s", qv_client_error (bad));
    for (int i = 0; i < 10; i++) {
        assert_int_equal (s_call (bad, NULL, insert), QV_EUNAVAIL);
        assert_int_equal (s_call (bad, NULL, "{op: 'search', collection: 'c', "
                                  "vectors: [[17.0, 1.0, 2.0, 3.0]], limit: 3}"), QV_EUNAVAIL);
        zclock_sleep (300);
    }
    s_log_has (&core, "the writer core refused a client from 127.0.0.1 with another CURVE key");
    s_log_has (&core, "the searcher process refused a client from 127.0.0.1 with another CURVE key");
    qv_client_destroy (&bad);
    //  A client straight to the core's socket: with a key pair of its own (not the
    //  deployment's) or without CURVE, no answer
    qv_client_t *direct = qv_client_new_curve (core.endpoint, key);
    assert_non_null (direct);
    qv_client_set_timeout (direct, 2000);
    assert_int_equal (s_call (direct, NULL, "{op: 'list_collections'}"), QV_ETIMEOUT);
    qv_client_destroy (&direct);
    direct = qv_client_new (core.endpoint);
    assert_non_null (direct);
    qv_client_set_timeout (direct, 2000);
    assert_int_equal (s_call (direct, NULL, "{op: 'list_collections'}"), QV_ETIMEOUT);
    qv_client_destroy (&direct);
    //  ... while the deployment's proxy goes on
    r = s_call_until_ok (client, "{op: 'describe_collection', collection: 'c'}");
    qv_doc_destroy (&r);
    qv_client_destroy (&client);

    assert_int_equal (qv_itn_quiver_stop (&intruder, SIGTERM), 0);
    assert_int_equal (qv_itn_quiver_stop (&proxy, SIGTERM), 0);
    assert_int_equal (qv_itn_quiver_stop (&searcher, SIGTERM), 0);
    assert_int_equal (qv_itn_quiver_stop (&core, SIGTERM), 0);
    qv_itn_nats_stop (&nats);
    qv_itn_remove_dir (nats.dir);
    qv_itn_remove_dir (core.data);
    qv_it_rm_rf (keys);
}

//  The options: --curve-peer-key needs this process's key pair, a split role, and a
//  key.
static void
test_split_curve_options (void **state)
{
    (void) state;
    char keys [] = "/tmp/qv-it-keys-XXXXXX";
    assert_non_null (mkdtemp (keys));
    char key [41];
    s_keygen (keys, "deploy", key);
    const char *bin = getenv ("QV_BIN_DIR");
    const char *cases [][2] = {
        { "--roles searcher --nats nats://127.0.0.1:1 --curve-peer-key %s/deploy", "--curve-secret-key" },
        { "--curve-secret-key %s/deploy_secret --curve-peer-key %s/deploy", "split deployment" },
        { "--roles searcher --nats nats://127.0.0.1:1 --curve-secret-key %s/deploy_secret "
          "--curve-peer-key nokey", "--curve-peer-key" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases [0]; i++) {
        char opts [1024], cmd [2048];
        snprintf (opts, sizeof opts, cases [i][0], keys, keys);
        snprintf (cmd, sizeof cmd, "%s/quiver serve --check-config %s 2>&1", bin ? bin : ".", opts);
        FILE *p = popen (cmd, "r");
        assert_non_null (p);
        char out [4096] = "";
        size_t got = fread (out, 1, sizeof out - 1, p);
        out [got] = 0;
        int status = pclose (p);
        if (!WIFEXITED (status) || WEXITSTATUS (status) != 2 || !strstr (out, cases [i][1]))
            fail_msg ("'%s': status %d, expected 2 and '%s' in: %s", opts, status,
                      cases [i][1], out);
    }
    //  ... and with them a searcher process's configuration stands (the key itself)
    char opts [1024], cmd [2048];
    snprintf (opts, sizeof opts, "--roles searcher --nats nats://127.0.0.1:1 "
              "--curve-secret-key %s/deploy_secret --curve-peer-key '%s'", keys, key);
    snprintf (cmd, sizeof cmd, "%s/quiver serve --check-config %s >/dev/null 2>&1", bin ? bin : ".", opts);
    assert_int_equal (system (cmd), 0);
    qv_it_rm_rf (keys);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_split_curve_options),
        cmocka_unit_test (test_split_curve),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
