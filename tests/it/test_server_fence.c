//  Fencing on S3 (s3rver), with real processes: (a) a second server for the same
//  bucket and prefix never appends to the WAL while the first holds the lock; (b) a
//  writer paused by SIGSTOP is deposed by a new one, and once resumed (SIGCONT) it
//  acknowledges nothing, and the WAL object it may still write late is ignored by a
//  fresh reader: every write the new writer acknowledged is there, nothing of the old
//  one's after its deposition, and no server crashed.
//  Needs QV_S3_ENDPOINT (tools/test.sh); the harness runs servers with --s3-lock-ms 300.
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <czmq.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "qv_codec.h"
#include "qv_it_server.h"
#include "qv_store.h"

#define CALL_OK QV_IT_CALL_OK
#define BATCH 100

static bool
s_have_s3 (void)
{
    const char *ep = getenv ("QV_S3_ENDPOINT");
    if (!ep || !*ep) {
        print_message ("QV_S3_ENDPOINT is not set (tools/test.sh sets it): skipped\n");
        return false;
    }
    setenv ("QV_IT_S3", "1", 1);    //  every server of this file runs on S3
    const char *key = getenv ("QV_S3_ACCESS_KEY");
    const char *secret = getenv ("QV_S3_SECRET_KEY");
    setenv ("QUIVER_S3_ACCESS_KEY", key && *key ? key : "S3RVER", 1);
    setenv ("QUIVER_S3_SECRET_KEY", secret && *secret ? secret : "S3RVER", 1);
    return true;
}

//  A second server description on the first one's bucket prefix (its own local dir).
static qv_it_server_t *
s_same_prefix (qv_it_server_t *first)
{
    qv_it_server_t *server = qv_it_server_new (NULL);
    assert_non_null (server);
    snprintf (server->s3_prefix, sizeof server->s3_prefix, "%s", first->s3_prefix);
    return server;
}

//  The keys of the WAL objects under the server's prefix, joined by ','.
static char *
s_wal_keys (qv_it_server_t *server)
{
    char url [512];
    snprintf (url, sizeof url, "s3://%s/" QV_IT_S3_BUCKET "/%s", getenv ("QV_S3_ENDPOINT"),
              server->s3_prefix);
    qv_store_t *store = qv_store_new (url);
    assert_non_null (store);
    zlist_t *keys = NULL;
    assert_int_equal (qv_store_list (store, "wal/0/", &keys), 0);
    size_t cap = 64 + zlist_size (keys) * 64;
    char *joined = calloc (1, cap);
    for (char *k = zlist_first (keys); k; k = zlist_next (keys)) {
        if (*joined)
            strcat (joined, ",");
        strcat (joined, k + strlen ("wal/0/"));
    }
    zlist_destroy (&keys);
    qv_store_destroy (&store);
    return joined;
}

static void
s_create (qv_it_client_t *c)
{
    qv_doc_t *r = CALL_OK (c, "{op: 'create_collection', collection: 'docs', fields: ["
                              "{name: 'id', type: 'int64', primary: true},"
                              "{name: 'v', type: 'float_vector', dim: 2}]}");
    qv_doc_destroy (&r);
}

//  Inserts batch b (ids b*BATCH ..); returns the reply (caller destroys) or NULL.
static qv_doc_t *
s_insert (qv_it_client_t *c, uint32_t b)
{
    size_t cap = 64 + BATCH * 48;
    char *text = malloc (cap);
    size_t n = (size_t) snprintf (text, cap, "{op: 'insert', collection: 'docs', rows: [");
    for (uint32_t i = 0; i < BATCH; i++) {
        uint32_t id = b * BATCH + i;
        n += (size_t) snprintf (text + n, cap - n, "%s{id: %u, v: [%u.0, 1.5]}", i ? "," : "",
                                id, id % 31);
    }
    snprintf (text + n, cap - n, "]}");
    qv_doc_t *r = qv_it_callf (c, "%s", text);
    free (text);
    return r;
}

static void
s_insert_ok (qv_it_client_t *c, uint32_t b)
{
    qv_doc_t *r = s_insert (c, b);
    assert_non_null (r);
    if (!qv_it_ok (r))
        fail_msg ("insert of batch %u: %s %s", b, qv_it_code (r), qv_it_error (r));
    qv_doc_destroy (&r);
}

//  Rows of batch b present (get by id).
static int64_t
s_batch_rows (qv_it_client_t *c, uint32_t b)
{
    char ids [BATCH * 12 + 16];
    size_t n = 0;
    for (uint32_t i = 0; i < BATCH; i++)
        n += (size_t) snprintf (ids + n, sizeof ids - n, "%s%u", i ? "," : "", b * BATCH + i);
    qv_doc_t *r = qv_it_callf (c, "{op: 'get', collection: 'docs', ids: [%s]}", ids);
    assert_non_null (r);
    assert_true (qv_it_ok (r));
    int64_t rows = (int64_t) qv_val_len (qv_val_get (qv_doc_root (r), "rows"));
    qv_doc_destroy (&r);
    return rows;
}

static int64_t
s_count (qv_it_client_t *c)
{
    qv_doc_t *r = CALL_OK (c, "{op: 'describe_collection', collection: 'docs'}");
    int64_t n = qv_it_int (qv_it_path (r, "rows"));
    qv_doc_destroy (&r);
    return n;
}

//  (a) A second server on the same prefix refuses to start while the first renews
//  its lock, and writes no WAL object meanwhile
static void
test_second_writer_waits (void **state)
{
    (void) state;
    if (!s_have_s3 ())
        skip ();
    //  Renewals every 1.5 s, not 300 ms: on a loaded machine a renewal of the first can
    //  lag past 3 x 300 ms, and the second would then rightly take the lock over
    qv_it_server_t *first = qv_it_server_new (NULL);
    assert_non_null (first);
    first->s3_lock_ms = 1500;
    assert_int_equal (qv_it_server_start (first), 0);
    qv_it_client_t *c = qv_it_client_new (first->endpoint, QV_IT_CALL_MS);
    s_create (c);
    s_insert_ok (c, 0);
    char *before = s_wal_keys (first);

    qv_it_server_t *second = s_same_prefix (first);
    second->s3_lock_ms = 1500;
    assert_int_equal (qv_it_server_spawn (second), 0);
    //  It watches the lock for three renewal periods, sees it renewed, and gives up
    assert_int_equal (qv_it_server_wait_exit (second, 30000), 0);
    assert_true (WIFEXITED (second->status) && WEXITSTATUS (second->status) != 0);
    char *log = qv_it_server_log_text (second);
    if (!strstr (log, "is locked by"))
        fail_msg ("the second server's log does not name the holder:\n%s", log);
    free (log);
    char *after = s_wal_keys (first);
    assert_string_equal (before, after);
    //  The first serves on, its WAL continuing
    s_insert_ok (c, 1);
    assert_int_equal (s_count (c), 2 * BATCH);
    free (before);
    free (after);
    qv_it_client_destroy (&c);
    qv_it_server_destroy (&second);
    qv_it_server_destroy (&first);
}

typedef struct {
    const char *endpoint;
    qv_doc_t *reply;
} s_late_t;

//  Sends batch 1 to the paused server and waits for its answer.
static void *
s_late_insert (void *arg)
{
    s_late_t *late = arg;
    qv_it_client_t *c = qv_it_client_new (late->endpoint, 120000);
    late->reply = s_insert (c, 1);
    qv_it_client_destroy (&c);
    return NULL;
}

//  (b) A paused writer is deposed; resumed, it acknowledges nothing; a fresh reader
//  sees exactly the new writer's acknowledged writes
static void
test_paused_writer_deposed (void **state)
{
    (void) state;
    if (!s_have_s3 ())
        skip ();
    qv_it_server_t *old = qv_it_server_new (NULL);
    assert_non_null (old);
    assert_int_equal (qv_it_server_start (old), 0);
    qv_it_client_t *c = qv_it_client_new (old->endpoint, QV_IT_CALL_MS);
    s_create (c);
    s_insert_ok (c, 0);
    qv_it_client_destroy (&c);

    //  Paused with a write waiting in its socket
    assert_int_equal (kill (old->pid, SIGSTOP), 0);
    s_late_t late = { old->endpoint, NULL };
    pthread_t thread;
    assert_int_equal (pthread_create (&thread, NULL, s_late_insert, &late), 0);

    //  A new writer takes the lock over (not renewed for three periods) and fences
    qv_it_server_t *new = s_same_prefix (old);
    assert_int_equal (qv_it_server_start (new), 0);
    assert_int_equal (qv_it_server_wait_log (new, "writes as epoch 2", 10000), 0);
    c = qv_it_client_new (new->endpoint, QV_IT_CALL_MS);
    assert_int_equal (s_batch_rows (c, 0), BATCH);
    s_insert_ok (c, 2);
    s_insert_ok (c, 3);
    qv_it_client_destroy (&c);

    //  Resumed: the waiting write is answered, never acknowledged
    assert_int_equal (kill (old->pid, SIGCONT), 0);
    pthread_join (thread, NULL);
    assert_non_null (late.reply);
    if (qv_it_ok (late.reply))
        fail_msg ("the deposed writer acknowledged a write after the takeover");
    assert_string_equal (qv_it_code (late.reply), "UNAVAILABLE");
    print_message ("deposed writer answered: %s\n", qv_it_error (late.reply));
    qv_doc_destroy (&late.reply);
    //  ... and every later one, still running
    c = qv_it_client_new (old->endpoint, QV_IT_CALL_MS);
    qv_doc_t *r = s_insert (c, 4);
    assert_non_null (r);
    assert_false (qv_it_ok (r));
    assert_string_equal (qv_it_code (r), "UNAVAILABLE");
    qv_doc_destroy (&r);
    qv_it_client_destroy (&c);
    assert_int_equal (qv_it_server_wait_exit (old, 0), -2);
    assert_int_equal (qv_it_server_wait_exit (new, 0), -2);
    char *keys = s_wal_keys (old);
    print_message ("WAL objects: %s\n", keys);
    //  A late object: epoch 1, at or after the new writer's fence (epoch 2)
    uint64_t fence_seq = UINT64_MAX, late_seq = 0;
    bool late_object = false;
    for (const char *k = keys; *k; ) {
        char *end;
        uint64_t seq = strtoull (k, &end, 10);
        uint64_t epoch = *end == '-' ? strtoull (end + 1, &end, 10) : 0;
        if (epoch == 2 && seq < fence_seq)
            fence_seq = seq;
        if (epoch == 1 && (!late_object || seq > late_seq)) {
            late_seq = seq;         //  the newest object of epoch 1
            late_object = true;
        }
        k = *end == ',' ? end + 1 : end;
    }
    assert_true (fence_seq != UINT64_MAX);
    late_object = late_object && late_seq >= fence_seq;
    free (keys);
    assert_int_equal (qv_it_server_kill (old), 0);
    assert_int_equal (qv_it_server_kill (new), 0);

    //  A fresh reader: the new writer's acknowledged writes, nothing of the late one
    qv_it_server_t *reader = s_same_prefix (old);
    assert_int_equal (qv_it_server_start (reader), 0);
    c = qv_it_client_new (reader->endpoint, QV_IT_CALL_MS);
    assert_int_equal (s_batch_rows (c, 0), BATCH);
    assert_int_equal (s_batch_rows (c, 1), 0);
    assert_int_equal (s_batch_rows (c, 2), BATCH);
    assert_int_equal (s_batch_rows (c, 3), BATCH);
    assert_int_equal (s_batch_rows (c, 4), 0);
    assert_int_equal (s_count (c), 3 * BATCH);
    qv_it_client_destroy (&c);
    if (late_object) {
        print_message ("the deposed writer wrote a late WAL object\n");
        //  The reader lists it, and says it ignores it, unless the new writer's
        //  start-up flush of the recovered rows wrote a manifest whose checkpoint is
        //  past it (whether that flush ended before the kill is timing)
        char *log = qv_it_server_log_text (reader);
        const char *m = strstr (log, "recovered manifest ");
        const char *cp = m ? strstr (m, ", checkpoint ") : NULL;
        uint64_t replay_from = cp ? strtoull (cp + strlen (", checkpoint "), NULL, 10) : 0;
        if (replay_from > late_seq)
            print_message ("the reader's manifest checkpoint %llu is past it\n",
                           (unsigned long long) replay_from);
        else
        if (!strstr (log, "of deposed writer epoch 1 ignored"))
            fail_msg ("the reader replayed from %llu and did not say it ignored the late "
                      "object at %llu:\n%s", (unsigned long long) replay_from,
                      (unsigned long long) late_seq, log);
        free (log);
    }
    else
        print_message ("the deposed writer's put was refused before it was sent\n");
    qv_it_server_destroy (&reader);
    qv_it_server_destroy (&new);
    qv_it_server_destroy (&old);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_second_writer_waits),
        cmocka_unit_test (test_paused_writer_deposed),
    };
    if (getenv ("QV_IT_ONLY"))
        cmocka_set_test_filter (getenv ("QV_IT_ONLY"));
    return cmocka_run_group_tests (tests, NULL, NULL);
}
