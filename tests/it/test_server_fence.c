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
#include "qv_it_docs.h"

#define CALL_OK QV_IT_CALL_OK
#define BATCH 100
#define DIM 2

//  (a) A second server on the same prefix refuses to start while the first renews
//  its lock, and writes no WAL object meanwhile
static void
test_second_writer_waits (void **state)
{
    (void) state;
    if (!qv_it_need_s3 ())
        skip ();
    //  Renewals every 1.5 s, not 300 ms: on a loaded machine a renewal of the first can
    //  lag past 3 x 300 ms, and the second would then rightly take the lock over
    qv_it_server_t *first = qv_it_server_new (NULL);
    assert_non_null (first);
    first->s3_lock_ms = 1500;
    assert_int_equal (qv_it_server_start (first), 0);
    qv_it_client_t *c = qv_it_client_new (first->endpoint, QV_IT_CALL_MS);
    assert_true (qv_it_docs_create (c, DIM));
    assert_true (qv_it_docs_insert_ok (c, 0, BATCH, DIM));
    char *before = qv_it_store_keys (first, "wal/0/");

    qv_it_server_t *second = qv_it_server_same_store (first, NULL);
    second->s3_lock_ms = 1500;
    assert_int_equal (qv_it_server_spawn (second), 0);
    //  It watches the lock for three renewal periods, sees it renewed, and gives up
    assert_int_equal (qv_it_server_wait_exit (second, 30000), 0);
    assert_true (WIFEXITED (second->status) && WEXITSTATUS (second->status) != 0);
    char *log = qv_it_server_log_text (second);
    if (!strstr (log, "is locked by"))
        fail_msg ("the second server's log does not name the holder:\n%s", log);
    free (log);
    char *after = qv_it_store_keys (first, "wal/0/");
    assert_string_equal (before, after);
    //  The first serves on, its WAL continuing
    assert_true (qv_it_docs_insert_ok (c, 1, BATCH, DIM));
    assert_int_equal (qv_it_docs_rows (c), 2 * BATCH);
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
    late->reply = qv_it_docs_insert (c, 1, BATCH, DIM);
    qv_it_client_destroy (&c);
    return NULL;
}

//  (b) A paused writer is deposed; resumed, it acknowledges nothing; a fresh reader
//  sees exactly the new writer's acknowledged writes
static void
test_paused_writer_deposed (void **state)
{
    (void) state;
    if (!qv_it_need_s3 ())
        skip ();
    qv_it_server_t *old = qv_it_server_new (NULL);
    assert_non_null (old);
    assert_int_equal (qv_it_server_start (old), 0);
    qv_it_client_t *c = qv_it_client_new (old->endpoint, QV_IT_CALL_MS);
    assert_true (qv_it_docs_create (c, DIM));
    assert_true (qv_it_docs_insert_ok (c, 0, BATCH, DIM));
    qv_it_client_destroy (&c);

    //  Paused with a write waiting in its socket
    assert_int_equal (kill (old->pid, SIGSTOP), 0);
    s_late_t late = { old->endpoint, NULL };
    pthread_t thread;
    assert_int_equal (pthread_create (&thread, NULL, s_late_insert, &late), 0);

    //  A new writer takes the lock over (not renewed for three periods) and fences
    qv_it_server_t *new = qv_it_server_same_store (old, NULL);
    assert_int_equal (qv_it_server_start (new), 0);
    assert_int_equal (qv_it_server_wait_log (new, "writes as epoch 2", 10000), 0);
    c = qv_it_client_new (new->endpoint, QV_IT_CALL_MS);
    assert_int_equal (qv_it_docs_batch_rows (c, 0, BATCH), BATCH);
    assert_true (qv_it_docs_insert_ok (c, 2, BATCH, DIM));
    assert_true (qv_it_docs_insert_ok (c, 3, BATCH, DIM));
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
    qv_doc_t *r = qv_it_docs_insert (c, 4, BATCH, DIM);
    assert_non_null (r);
    assert_false (qv_it_ok (r));
    assert_string_equal (qv_it_code (r), "UNAVAILABLE");
    qv_doc_destroy (&r);
    qv_it_client_destroy (&c);
    assert_int_equal (qv_it_server_wait_exit (old, 0), -2);
    assert_int_equal (qv_it_server_wait_exit (new, 0), -2);
    char *keys = qv_it_store_keys (old, "wal/0/");
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
    qv_it_server_t *reader = qv_it_server_same_store (old, NULL);
    assert_int_equal (qv_it_server_start (reader), 0);
    c = qv_it_client_new (reader->endpoint, QV_IT_CALL_MS);
    assert_int_equal (qv_it_docs_batch_rows (c, 0, BATCH), BATCH);
    assert_int_equal (qv_it_docs_batch_rows (c, 1, BATCH), 0);
    assert_int_equal (qv_it_docs_batch_rows (c, 2, BATCH), BATCH);
    assert_int_equal (qv_it_docs_batch_rows (c, 3, BATCH), BATCH);
    assert_int_equal (qv_it_docs_batch_rows (c, 4, BATCH), 0);
    assert_int_equal (qv_it_docs_rows (c), 3 * BATCH);
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
