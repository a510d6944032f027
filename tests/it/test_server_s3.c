//  Quiver on S3 (s3rver): recovery from the bucket alone on an empty machine, a crash
//  between a segment object and the manifest that points at it, and an object store
//  outage during an insert stream (UNAVAILABLE, never an acknowledgement; reads keep
//  working; writes resume; nothing acknowledged lost).
//  Needs QV_S3_ENDPOINT (tools/test.sh); the outage test also QV_S3RVER (the binary),
//  as it starts and stops its own s3rver.
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <czmq.h>
#include <arpa/inet.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "qv_codec.h"
#include "qv_it_docs.h"
#include "qv_it_nats.h"
#include "qv_it_s3rver.h"
#include "qv_store.h"

#define CALL_OK QV_IT_CALL_OK
#define CALL_ERR QV_IT_CALL_ERR
#define BATCH 200
#define DIM 4

//  (1) The bucket alone rebuilds the service: a server on an empty data directory
//  with the same --s3-* options serves the same data; after kill -9 the next one
//  takes the lock over and says so.
static void
test_cold_start_from_bucket (void **state)
{
    (void) state;
    if (!qv_it_need_s3 ())
        skip ();
    qv_it_server_t *first = qv_it_server_new (NULL);
    assert_int_equal (qv_it_server_start (first), 0);
    qv_it_client_t *c = qv_it_client_new (first->endpoint, QV_IT_CALL_MS);
    assert_true (qv_it_docs_create (c, DIM));
    for (uint32_t b = 0; b < 10; b++) {
        qv_doc_t *r = qv_it_docs_insert (c, b, BATCH, DIM);
        assert_true (qv_it_ok (r));
        qv_doc_destroy (&r);
        if (b == 5) {
            r = CALL_OK (c, "{op: 'flush', collection: 'docs'}");
            qv_doc_destroy (&r);
        }
    }
    //  Half flushed into segments, half only in the WAL
    char before [256], after [256];
    qv_it_docs_top10 (c, before, sizeof before);
    assert_int_equal (qv_it_docs_rows (c), 10 * BATCH);
    qv_it_client_destroy (&c);
    assert_int_equal (qv_it_server_signal (first, SIGTERM, 30000), 0);

    //  A new machine: empty data directory, same bucket and prefix
    qv_it_server_t *second = qv_it_server_new (NULL);
    snprintf (second->s3_prefix, sizeof second->s3_prefix, "%s", first->s3_prefix);
    assert_int_equal (qv_it_server_start (second), 0);
    c = qv_it_client_new (second->endpoint, QV_IT_CALL_MS);
    assert_int_equal (qv_it_docs_rows (c), 10 * BATCH);
    for (uint32_t b = 0; b < 10; b++)
        assert_true ((qv_it_docs_batch_rows (c, b, BATCH) == BATCH));
    qv_it_docs_top10 (c, after, sizeof after);
    assert_string_equal (before, after);
    qv_doc_t *r = qv_it_docs_insert (c, 10, BATCH, DIM);
    assert_true (qv_it_ok (r));
    qv_doc_destroy (&r);
    qv_it_client_destroy (&c);

    //  kill -9: a third server (another empty directory) waits out the lock, then
    //  takes it over and logs that; the acknowledged batch 10 is there. The third and
    //  fourth renew and watch the lock every 1.5 s, not 300 ms: on a loaded machine a
    //  renewal of the third can lag past 3 x 300 ms, and the fourth would then take
    //  the lock over (rightly, by the rule) instead of being refused
    assert_int_equal (qv_it_server_kill (second), 0);
    qv_it_server_t *third = qv_it_server_new (NULL);
    snprintf (third->s3_prefix, sizeof third->s3_prefix, "%s", first->s3_prefix);
    third->s3_lock_ms = 1500;
    assert_int_equal (qv_it_server_start (third), 0);
    char *log = qv_it_server_log_text (third);
    assert_non_null (strstr (log, "taking over"));
    free (log);
    c = qv_it_client_new (third->endpoint, QV_IT_CALL_MS);
    assert_int_equal (qv_it_docs_rows (c), 11 * BATCH);
    assert_true ((qv_it_docs_batch_rows (c, 10, BATCH) == BATCH));
    qv_it_client_destroy (&c);

    //  While the third one runs, a fourth on the same prefix is refused by name
    qv_it_server_t *fourth = qv_it_server_new (NULL);
    snprintf (fourth->s3_prefix, sizeof fourth->s3_prefix, "%s", first->s3_prefix);
    fourth->s3_lock_ms = 1500;
    assert_int_equal (qv_it_server_spawn (fourth), 0);
    assert_int_equal (qv_it_server_wait_exit (fourth, 30000), 0);
    assert_true (WIFEXITED (fourth->status) && WEXITSTATUS (fourth->status) != 0);
    log = qv_it_server_log_text (fourth);
    assert_non_null (strstr (log, "is locked by"));
    free (log);
    qv_it_server_destroy (&fourth);
    qv_it_server_destroy (&third);
    qv_it_server_destroy (&second);
    qv_it_server_destroy (&first);
}

//  (2) Objects first, the manifest last: the process dies (as kill -9) right before it
//  writes the manifest that would point at a segment object already in the bucket.
//  The restart follows only the previous manifest, never a pointer to a missing
//  object, and every acknowledged row is there (from the WAL).
static void
test_crash_before_manifest (void **state)
{
    (void) state;
    if (!qv_it_need_s3 ())
        skip ();
    qv_it_server_t *server = qv_it_server_new (NULL);
    assert_int_equal (qv_it_server_start (server), 0);
    qv_it_client_t *c = qv_it_client_new (server->endpoint, QV_IT_CALL_MS);
    assert_true (qv_it_docs_create (c, DIM));
    qv_doc_t *r = qv_it_docs_insert (c, 0, BATCH, DIM);
    assert_true (qv_it_ok (r));
    qv_doc_destroy (&r);
    r = CALL_OK (c, "{op: 'flush', collection: 'docs'}");
    qv_doc_destroy (&r);
    qv_it_client_destroy (&c);
    assert_int_equal (qv_it_server_signal (server, SIGTERM, 30000), 0);

    setenv ("QV_CRASH_BEFORE_PUT", "meta/manifest/", 1);
    int rc = qv_it_server_start (server);
    unsetenv ("QV_CRASH_BEFORE_PUT");
    assert_int_equal (rc, 0);
    c = qv_it_client_new (server->endpoint, 5000);
    for (uint32_t b = 1; b < 4; b++) {
        r = qv_it_docs_insert (c, b, BATCH, DIM);
        assert_true (qv_it_ok (r));
        qv_doc_destroy (&r);
    }
    //  The flush writes the segment object, then dies before the manifest
    r = qv_it_callf (c, "{op: 'flush', collection: 'docs'}");
    qv_doc_destroy (&r);
    qv_it_client_destroy (&c);
    assert_int_equal (qv_it_server_wait_exit (server, 30000), 0);
    assert_true (WIFEXITED (server->status) && WEXITSTATUS (server->status) == 137);
    char *log = qv_it_server_log_text (server);
    assert_non_null (strstr (log, "exiting before writing meta/manifest/"));
    free (log);

    //  The bucket holds a segment object that no manifest names yet
    qv_store_t *store = qv_it_server_store (server);
    assert_non_null (store);
    zlist_t *segs, *manifests;
    assert_int_equal (qv_store_list (store, "segments/", &segs), 0);
    assert_int_equal (qv_store_list (store, "meta/manifest/", &manifests), 0);
    assert_true (zlist_size (segs) >= 2);
    size_t nmanifests = zlist_size (manifests);
    assert_true (nmanifests >= 1);
    zlist_destroy (&segs);
    zlist_destroy (&manifests);

    //  Restart: recovery succeeds from the old manifest plus the WAL
    assert_int_equal (qv_it_server_start (server), 0);
    c = qv_it_client_new (server->endpoint, QV_IT_CALL_MS);
    assert_int_equal (qv_it_docs_rows (c), 4 * BATCH);
    for (uint32_t b = 0; b < 4; b++)
        assert_true ((qv_it_docs_batch_rows (c, b, BATCH) == BATCH));
    r = CALL_OK (c, "{op: 'flush', collection: 'docs'}");
    qv_doc_destroy (&r);
    qv_it_client_destroy (&c);
    //  ... and its flush writes the manifest that names the new segment
    assert_int_equal (qv_store_list (store, "meta/manifest/", &manifests), 0);
    assert_true (zlist_size (manifests) >= 1);
    zlist_destroy (&manifests);
    qv_store_destroy (&store);
    qv_it_server_destroy (&server);
}

//  ---------------------------------------------------------------------------------
//  (3) Outage: a private s3rver, stopped during an insert stream and started again.

static pid_t s_s3rver_pid;

static void
s_s3rver_start (const char *bin, const char *dir, int port)
{
    s_s3rver_pid = qv_it_s3rver_start (bin, dir, port, NULL, NULL);
    assert_true (s_s3rver_pid > 0);
}

static void
s_s3rver_stop (void)
{
    qv_it_s3rver_stop (s_s3rver_pid);
    s_s3rver_pid = 0;
}

//  The outage tests' start (skipped without S3, or without QV_S3RVER, the s3rver
//  binary): a private s3rver on a free port in a new directory o->dir, QV_S3_ENDPOINT
//  pointed at it, and a server on it with the docs collection and a client.
typedef struct {
    const char *bin;
    char dir [32];
    int port;
    char *saved;                    //  QV_S3_ENDPOINT before, restored at the end
    qv_it_server_t *server;
    qv_it_client_t *c;
} s_outage_t;

static void
s_outage_start (s_outage_t *o)
{
    if (!qv_it_need_s3 ())
        skip ();
    o->bin = qv_it_s3rver_bin ();
    if (!o->bin)
        skip ();
    snprintf (o->dir, sizeof o->dir, "/tmp/qv-it-s3rver-XXXXXX");
    assert_non_null (mkdtemp (o->dir));
    o->port = qv_itn_free_port ();
    s_s3rver_start (o->bin, o->dir, o->port);
    o->saved = strdup (getenv ("QV_S3_ENDPOINT"));
    char endpoint [64];
    snprintf (endpoint, sizeof endpoint, "127.0.0.1:%d", o->port);
    setenv ("QV_S3_ENDPOINT", endpoint, 1);
    o->server = qv_it_server_new (NULL);
    assert_int_equal (qv_it_server_start (o->server), 0);
    o->c = qv_it_client_new (o->server->endpoint, QV_IT_CALL_MS);
    assert_true (qv_it_docs_create (o->c, DIM));
}

//  The outage tests' end: the client, the server and the s3rver stopped, the
//  environment restored, the s3rver's directory removed.
static void
s_outage_end (s_outage_t *o)
{
    qv_it_client_destroy (&o->c);
    qv_it_server_destroy (&o->server);
    s_s3rver_stop ();
    setenv ("QV_S3_ENDPOINT", o->saved, 1);
    free (o->saved);
    qv_it_rm_rf (o->dir);
}

static void
test_store_outage (void **state)
{
    (void) state;
    s_outage_t o;
    s_outage_start (&o);
    const char *bin = o.bin, *dir = o.dir;
    int port = o.port;
    qv_it_server_t *server = o.server;
    qv_it_client_t *c = o.c;
    uint32_t acked [64];
    uint32_t nacked = 0, b = 0;
    for (; b < 5; b++) {
        qv_doc_t *r = qv_it_docs_insert (c, b, BATCH, DIM);
        assert_true (qv_it_ok (r));
        qv_doc_destroy (&r);
        acked [nacked++] = b;
    }
    char before [256], during [256];
    qv_it_docs_top10 (c, before, sizeof before);

    //  The store goes away: writes are refused UNAVAILABLE (after the retries), never
    //  acknowledged; reads of what is loaded keep working
    s_s3rver_stop ();
    uint32_t refused = 0;
    for (int i = 0; i < 2; i++, b++) {
        qv_doc_t *r = qv_it_docs_insert (c, b, BATCH, DIM);
        assert_non_null (r);
        if (qv_it_ok (r))
            acked [nacked++] = b;   //  (cannot be: the WAL object was not stored)
        else {
            assert_string_equal (qv_it_code (r), "UNAVAILABLE");
            refused++;
        }
        qv_doc_destroy (&r);
    }
    assert_int_equal (refused, 2);
    assert_int_equal (nacked, 5);
    //  stats names the backend and counts the retries the outage cost
    qv_doc_t *st = CALL_OK (c, "{op: 'stats'}");
    assert_true (qv_it_str_is (qv_it_path (st, "store"), "s3"));
    assert_true (qv_it_int (qv_it_path (st, "store_requests")) > 0);
    assert_true (qv_it_int (qv_it_path (st, "store_retries")) >= 12);
    qv_doc_destroy (&st);
    qv_it_docs_top10 (c, during, sizeof during);
    assert_string_equal (before, during);
    assert_int_equal (qv_it_docs_rows (c), 5 * BATCH);
    assert_true ((qv_it_docs_batch_rows (c, 0, BATCH) == BATCH));

    //  The store comes back: writes resume by themselves
    s_s3rver_start (bin, dir, port);
    bool resumed = false;
    for (int i = 0; i < 30 && !resumed; i++, b++) {
        qv_doc_t *r = qv_it_docs_insert (c, b, BATCH, DIM);
        if (r && qv_it_ok (r)) {
            acked [nacked++] = b;
            resumed = true;
        }
        qv_doc_destroy (&r);
        if (!resumed)
            usleep (500000);
    }
    assert_true (resumed);
    for (int i = 0; i < 3; i++, b++) {
        qv_doc_t *r = qv_it_docs_insert (c, b, BATCH, DIM);
        assert_true (qv_it_ok (r));
        qv_doc_destroy (&r);
        acked [nacked++] = b;
    }
    qv_doc_t *r = CALL_OK (c, "{op: 'flush', collection: 'docs'}");
    qv_doc_destroy (&r);
    qv_it_client_destroy (&c);

    //  Nothing acknowledged is lost, also after a kill -9 and a restart
    assert_int_equal (qv_it_server_kill (server), 0);
    assert_int_equal (qv_it_server_start (server), 0);
    c = qv_it_client_new (server->endpoint, QV_IT_CALL_MS);
    for (uint32_t i = 0; i < nacked; i++)
        if (qv_it_docs_batch_rows (c, acked [i], BATCH) != BATCH)
            fail_msg ("acknowledged batch %u is missing after the outage and a restart", acked [i]);
    assert_int_equal (qv_it_docs_rows (c), (int64_t) nacked * BATCH);
    o.c = c;
    s_outage_end (&o);
}

//  (4) The same outage under a stream of inserts from 4 clients at once, so that several
//  WAL puts are in flight (the writer's window on S3) when the store goes away: every
//  insert is acknowledged or refused UNAVAILABLE, writes resume by themselves, and
//  after a kill -9 and a restart every acknowledged batch is there exactly once and no
//  refused one is (the window's leftovers were deleted before the log went on).
#define S_STREAMS 4
#define S_STREAM_BATCHES 4000

enum { S_UNSENT, S_ACKED, S_REFUSED, S_UNKNOWN };

typedef struct {
    const char *endpoint;
    uint32_t first;                 //  batches first, first + S_STREAMS, ...
    atomic_bool *stop;
    uint8_t *state;                 //  per batch: S_UNSENT ... S_UNKNOWN
    atomic_uint *acked;             //  batches acknowledged, by every stream
} s_stream_t;

static void *
s_stream (void *arg)
{
    s_stream_t *t = arg;
    qv_it_client_t *c = qv_it_client_new (t->endpoint, QV_IT_CALL_MS);
    for (uint32_t b = t->first; b < S_STREAM_BATCHES && !atomic_load (t->stop); b += S_STREAMS) {
        qv_doc_t *r = qv_it_docs_insert (c, b, BATCH, DIM);
        t->state [b] = !r ? S_UNKNOWN : qv_it_ok (r) ? S_ACKED
                     : streq (qv_it_code (r), "UNAVAILABLE") ? S_REFUSED : S_UNKNOWN;
        qv_doc_destroy (&r);
        if (t->state [b] == S_ACKED)
            atomic_fetch_add (t->acked, 1);
        else
            usleep (20000);
    }
    qv_it_client_destroy (&c);
    return NULL;
}

static void
test_store_outage_pipelined (void **state)
{
    (void) state;
    s_outage_t o;
    s_outage_start (&o);
    const char *bin = o.bin, *dir = o.dir;
    int port = o.port;
    qv_it_server_t *server = o.server;
    qv_it_client_t *c = o.c;

    uint8_t *states = calloc (S_STREAM_BATCHES, 1);
    atomic_bool stop = false;
    atomic_uint acked = 0;
    pthread_t threads [S_STREAMS];
    s_stream_t streams [S_STREAMS];
    for (int i = 0; i < S_STREAMS; i++) {
        streams [i] = (s_stream_t) { server->endpoint, (uint32_t) i, &stop, states, &acked };
        pthread_create (&threads [i], NULL, s_stream, &streams [i]);
    }
    while (atomic_load (&acked) < 40)
        usleep (10000);
    s_s3rver_stop ();
    sleep (4);
    unsigned before = atomic_load (&acked);
    s_s3rver_start (bin, dir, port);
    for (int i = 0; i < 300 && atomic_load (&acked) < before + 40; i++)
        usleep (100000);
    atomic_store (&stop, true);
    for (int i = 0; i < S_STREAMS; i++)
        pthread_join (threads [i], NULL);
    assert_true (atomic_load (&acked) >= before + 40);     //  resumed by itself

    //  Nothing acknowledged is lost, nothing refused is there, after kill -9 + restart
    qv_it_client_destroy (&c);
    assert_int_equal (qv_it_server_kill (server), 0);
    assert_int_equal (qv_it_server_start (server), 0);
    c = qv_it_client_new (server->endpoint, QV_IT_CALL_MS);
    int64_t expect = 0;
    uint32_t refused = 0, unknown = 0;
    for (uint32_t b = 0; b < S_STREAM_BATCHES; b++) {
        if (states [b] == S_UNSENT)
            continue;
        int64_t rows = qv_it_docs_batch_rows (c, b, BATCH);
        if (states [b] == S_ACKED && rows != BATCH)
            fail_msg ("acknowledged batch %u has %lld rows after the outage and a restart",
                      b, (long long) rows);
        if (states [b] == S_REFUSED && rows != 0)
            fail_msg ("batch %u was refused UNAVAILABLE, yet %lld of its rows are there",
                      b, (long long) rows);
        if (states [b] == S_UNKNOWN && rows != 0 && rows != BATCH)
            fail_msg ("batch %u (no clear answer) is partly there: %lld rows", b, (long long) rows);
        refused += states [b] == S_REFUSED;
        unknown += states [b] == S_UNKNOWN;
        expect += rows;
    }
    print_message ("%u batches acknowledged, %u refused, %u without a clear answer\n",
                   atomic_load (&acked), refused, unknown);
    assert_true (refused > 0);      //  the outage was seen
    assert_int_equal (qv_it_docs_rows (c), expect);       //  each row once
    o.c = c;
    s_outage_end (&o);
    free (states);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_cold_start_from_bucket),
        cmocka_unit_test (test_crash_before_manifest),
        cmocka_unit_test (test_store_outage),
        cmocka_unit_test (test_store_outage_pipelined),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
