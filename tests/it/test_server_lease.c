//  The shard's write lease in NATS (--nats), with real processes on the nats-server
//  and s3rver of the test command: (a) a second server for the same store waits for
//  the lease and never appends while the first lives; after kill -9 of the first it
//  takes over with the next epoch and serves every acknowledged row; (b) a writer
//  paused (SIGSTOP) with a WAL put and a manifest put under way is deposed by a new
//  one; resumed, it acknowledges nothing, and its late WAL object and late manifest,
//  which land after the new writer's fences, are ignored by the next recovery; (c)
//  segment and index objects carry the writer's epoch in their keys, so a deposed
//  writer's late copy never replaces the object a newer manifest names.
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

#include "qv_it_docs.h"
#include "qv_it_sift.h"

#define BATCH 100
#define DIM 2
#define TTL "1000"                  //  --lease-ttl-ms: takeovers within seconds

//  The options of a server on the lease: its own subject prefix, so that the bridges
//  of tests running beside it never take its messages.
static const char *const *
s_lease_args (const char *url)
{
    static char prefix [32];
    snprintf (prefix, sizeof prefix, "qvlease%d", (int) getpid ());
    static const char *args [8];
    args [0] = "--nats";
    args [1] = url;
    args [2] = "--nats-prefix";
    args [3] = prefix;
    args [4] = "--lease-ttl-ms";
    args [5] = TTL;
    args [6] = NULL;
    return args;
}

//  The lowest and highest sequence number (or version) of the keys of a list
//  ("seq-epoch,...") that have that epoch; false if none has.
static bool
s_epoch_range (const char *keys, uint64_t epoch, uint64_t *lo, uint64_t *hi)
{
    bool found = false;
    for (const char *k = keys; k && *k; ) {
        char *end;
        uint64_t seq = strtoull (k, &end, 10);
        uint64_t e = *end == '-' ? strtoull (end + 1, &end, 10) : 0;
        if (e == epoch) {
            if (!found || seq < *lo)
                *lo = seq;
            if (!found || seq > *hi)
                *hi = seq;
            found = true;
        }
        k = *end == ',' ? end + 1 : end;
    }
    return found;
}

static bool
s_has_epoch (const char *keys, uint64_t epoch)
{
    uint64_t lo, hi;
    return s_epoch_range (keys, epoch, &lo, &hi);
}

//  A new server on a data directory of its own, started and past the log line.
static qv_it_server_t *
s_start_logged (const char *const *args, const char *line)
{
    qv_it_server_t *server = qv_it_server_new (args);
    assert_non_null (server);
    assert_int_equal (qv_it_server_start (server), 0);
    assert_int_equal (qv_it_server_wait_log (server, line, 10000), 0);
    return server;
}

//  (a) One data directory, two servers: the second waits, then takes over
static void
test_second_waits_then_takes_over (void **state)
{
    (void) state;
    const char *url = qv_it_need_nats ();
    if (!url)
        skip ();
    const char *const *args = s_lease_args (url);
    qv_it_server_t *first = s_start_logged (args, "writes as epoch");
    char *log = qv_it_server_log_text (first);
    assert_non_null (strstr (log, "holding the write lease quiver_leases/"));
    free (log);
    qv_it_client_t *c = qv_it_client_new (first->endpoint, QV_IT_CALL_MS);
    assert_true (qv_it_docs_create (c, DIM));
    assert_true (qv_it_docs_insert_ok (c, 0, BATCH, DIM));
    char *wal = qv_it_store_keys (first, "wal/0/");
    assert_non_null (wal);
    assert_false (s_has_epoch (wal, 2));
    free (wal);

    qv_it_server_t *second = qv_it_server_new_at (first->dir, "second.log", args);
    assert_non_null (second);
    assert_int_equal (qv_it_server_spawn (second), 0);
    assert_int_equal (qv_it_server_wait_log (second, "waiting as long as it lives", 30000), 0);
    log = qv_it_server_log_text (second);
    if (!strstr (log, "is held by") || !strstr (log, first->endpoint))
        fail_msg ("the waiting server's log does not name the holder:\n%s", log);
    free (log);
    //  While it waits, it answers UNAVAILABLE saying so, and the first goes on
    //  writing; for three ttls, nothing of an epoch 2 appears in the log
    assert_int_equal (qv_it_server_wait_error (second, "waits for the write lease", 30000), 0);
    int64_t until = zclock_mono () + 3 * atoi (TTL);
    uint32_t batches = 1;
    while (zclock_mono () < until) {
        assert_true (qv_it_docs_insert_ok (c, batches++, BATCH, DIM));
        wal = qv_it_store_keys (first, "wal/0/");
        assert_false (s_has_epoch (wal, 2));
        free (wal);
        zclock_sleep (100);
    }
    assert_int_equal (qv_it_docs_rows (c), (int64_t) batches * BATCH);
    log = qv_it_server_log_text (second);
    assert_null (strstr (log, "writes as epoch"));
    free (log);
    qv_it_client_destroy (&c);

    //  kill -9: the second takes over after the ttl, with the next epoch
    assert_int_equal (qv_it_server_kill (first), 0);
    assert_int_equal (qv_it_server_wait_log (second, "writes as epoch 2", 60000), 0);
    assert_int_equal (qv_it_server_wait_ready (second, QV_IT_READY_MS), 0);
    log = qv_it_server_log_text (second);
    assert_non_null (strstr (log, "took lease quiver_leases/"));
    assert_non_null (strstr (log, ": epoch 2 "));
    free (log);
    c = qv_it_client_new (second->endpoint, QV_IT_CALL_MS);
    for (uint32_t b = 0; b < batches; b++)
        assert_int_equal (qv_it_docs_batch_rows (c, b, BATCH), BATCH);
    assert_int_equal (qv_it_docs_rows (c), (int64_t) batches * BATCH);
    assert_true (qv_it_docs_insert_ok (c, batches, BATCH, DIM));
    qv_it_client_destroy (&c);
    wal = qv_it_store_keys (second, "wal/0/");
    assert_true (s_has_epoch (wal, 2));
    free (wal);

    //  A clean stop releases the lease: the next start takes it at once (epoch 3)
    assert_int_equal (qv_it_server_signal (second, SIGTERM, 30000), 0);
    assert_int_equal (qv_it_server_restart (first), 0);
    assert_int_equal (qv_it_server_wait_log (first, "writes as epoch 3", 10000), 0);
    log = qv_it_server_log_text (first);
    assert_null (strstr (log, "is held by"));
    free (log);
    c = qv_it_client_new (first->endpoint, QV_IT_CALL_MS);
    assert_int_equal (qv_it_docs_rows (c), (int64_t) (batches + 1) * BATCH);
    qv_it_client_destroy (&c);
    qv_it_server_destroy (&second);
    qv_it_server_destroy (&first);
}

//  The key of the first object in keys ("a,b,...") whose name ends with suffix, as
//  prefix + name; false if none does.
static bool
s_key_ending (const char *keys, const char *prefix, const char *suffix, char *out, size_t size)
{
    size_t slen = strlen (suffix);
    for (const char *k = keys; k && *k; ) {
        size_t len = strcspn (k, ",");
        if (len >= slen && memcmp (k + len - slen, suffix, slen) == 0) {
            snprintf (out, size, "%s%.*s", prefix, (int) len, k);
            return true;
        }
        k += len + (k [len] == ',');
    }
    return false;
}

//  (c) Segment and index objects carry their writer's epoch in their keys, and the
//  manifest names it: what a deposed writer writes late for a segment (here put by the
//  test where an epoch-1 writer would put its copy of the epoch-2 writer's segment)
//  never replaces what the newer writer's manifest names, and the next recovery loads
//  every segment and index by the epoch its manifest gives.
static void
test_segment_objects_fenced (void **state)
{
    (void) state;
    const char *url = qv_it_need_nats ();
    if (!url)
        skip ();
    const char *const *args = s_lease_args (url);
    qv_it_server_t *first = s_start_logged (args, "writes as epoch 1");
    qv_it_client_t *c = qv_it_client_new (first->endpoint, QV_IT_CALL_MS);
    assert_true (qv_it_docs_create (c, DIM));
    assert_true (qv_it_docs_insert_ok (c, 0, BATCH, DIM));
    qv_doc_t *r = QV_IT_CALL_OK (c, "{op: 'create_index', collection: 'docs', field: 'v', "
                                    "index_type: 'HNSW'}");
    qv_doc_destroy (&r);
    r = QV_IT_CALL_OK (c, "{op: 'flush', collection: 'docs'}");
    qv_doc_destroy (&r);
    char why [256];
    if (qv_it_wait_index (c, "docs", "v", BATCH, 30000, why, sizeof why))
        fail_msg ("epoch 1's index: %s", why);
    qv_it_client_destroy (&c);
    char *keys = qv_it_store_keys (first, "segments/");
    print_message ("segment objects of epoch 1: %s\n", keys);
    char key [256];
    assert_true (s_key_ending (keys, "segments/", "-00000000000000000001", key, sizeof key));
    assert_true (s_key_ending (keys, "segments/", "-00000000000000000001.index1", key, sizeof key));
    free (keys);
    assert_int_equal (qv_it_server_kill (first), 0);

    //  Epoch 2 takes over and flushes a segment of its own
    qv_it_server_t *second = qv_it_server_new_at (first->dir, "second.log", args);
    assert_non_null (second);
    assert_int_equal (qv_it_server_start (second), 0);
    assert_int_equal (qv_it_server_wait_log (second, "writes as epoch 2", 60000), 0);
    assert_int_equal (qv_it_server_wait_ready (second, QV_IT_READY_MS), 0);
    c = qv_it_client_new (second->endpoint, QV_IT_CALL_MS);
    assert_true (qv_it_docs_insert_ok (c, 1, BATCH, DIM));
    r = QV_IT_CALL_OK (c, "{op: 'flush', collection: 'docs'}");
    qv_doc_destroy (&r);
    if (qv_it_wait_index (c, "docs", "v", 2 * BATCH, 30000, why, sizeof why))
        fail_msg ("epoch 2's index: %s", why);
    qv_it_client_destroy (&c);
    keys = qv_it_store_keys (second, "segments/");
    print_message ("segment objects after epoch 2: %s\n", keys);
    assert_true (s_key_ending (keys, "segments/", "-00000000000000000002", key, sizeof key));
    free (keys);
    //  The deposed epoch-1 writer's late copy of that segment and of its index: not
    //  what the manifest names
    char late [300], late_index [320];
    snprintf (late, sizeof late, "%.*s00000000000000000001", (int) strlen (key) - 20, key);
    snprintf (late_index, sizeof late_index, "%s.index1", late);
    qv_store_t *store = qv_it_server_store (second);
    assert_non_null (store);
    assert_int_equal (qv_store_put (store, late, "late garbage", 12), 0);
    assert_int_equal (qv_store_put (store, late_index, "late garbage", 12), 0);
    qv_store_destroy (&store);
    assert_int_equal (qv_it_server_kill (second), 0);

    //  Epoch 3 recovers both writers' segments and indexes, by their manifest's epochs
    qv_it_server_t *third = qv_it_server_new_at (first->dir, "third.log", args);
    assert_non_null (third);
    assert_int_equal (qv_it_server_start (third), 0);
    assert_int_equal (qv_it_server_wait_ready (third, QV_IT_READY_MS), 0);
    c = qv_it_client_new (third->endpoint, QV_IT_CALL_MS);
    assert_int_equal (qv_it_docs_batch_rows (c, 0, BATCH), BATCH);
    assert_int_equal (qv_it_docs_batch_rows (c, 1, BATCH), BATCH);
    assert_int_equal (qv_it_docs_rows (c), 2 * BATCH);
    if (qv_it_wait_index (c, "docs", "v", 2 * BATCH, 30000, why, sizeof why))
        fail_msg ("recovered indexes: %s", why);
    qv_it_client_destroy (&c);
    char *log = qv_it_server_log_text (third);
    if (strstr (log, "cannot be used") || strstr (log, "late garbage"))
        fail_msg ("the recovery read a late object:\n%s", log);
    free (log);
    qv_it_server_destroy (&third);
    qv_it_server_destroy (&second);
    qv_it_server_destroy (&first);
}

typedef struct {
    const char *endpoint;
    const char *request;            //  "insert" or "flush"
    qv_doc_t *reply;
} s_late_t;

//  A request to the writer that is about to stall; waits for its answer.
static void *
s_late (void *arg)
{
    s_late_t *late = arg;
    qv_it_client_t *c = qv_it_client_new (late->endpoint, 180000);
    if (streq (late->request, "insert"))
        late->reply = qv_it_docs_insert (c, 1, BATCH, DIM);
    else
        late->reply = qv_it_callf (c, "{op: 'flush', collection: 'docs'}");
    qv_it_client_destroy (&c);
    return NULL;
}

//  (b) Paused with a WAL put and a manifest put under way, deposed, resumed
static void
test_paused_writer_deposed (void **state)
{
    (void) state;
    const char *url = qv_it_need_nats ();
    if (!url || !qv_it_need_s3 ())
        skip ();                    //  a paused server keeps its flock on a local dir
    const char *const *args = s_lease_args (url);
    qv_it_server_t *old = qv_it_server_new (args);
    assert_non_null (old);
    //  The 5th WAL put (after the fence, the create, batch 0 and the flush's seal) and
    //  the 2nd manifest put (after the fence: the flush's) stop the process once both
    //  are under way
    setenv ("QV_STALL_BEFORE_PUT", "wal/0/@4,meta/manifest/@1", 1);
    int rc = qv_it_server_start (old);
    unsetenv ("QV_STALL_BEFORE_PUT");
    assert_int_equal (rc, 0);
    assert_int_equal (qv_it_server_wait_log (old, "writes as epoch 1", 10000), 0);
    qv_it_client_t *c = qv_it_client_new (old->endpoint, QV_IT_CALL_MS);
    assert_true (qv_it_docs_create (c, DIM));
    assert_true (qv_it_docs_insert_ok (c, 0, BATCH, DIM));
    qv_it_client_destroy (&c);
    s_late_t flush = { old->endpoint, "flush", NULL };
    s_late_t insert = { old->endpoint, "insert", NULL };
    pthread_t flush_thread, insert_thread;
    assert_int_equal (pthread_create (&flush_thread, NULL, s_late, &flush), 0);
    assert_int_equal (qv_it_server_wait_log (old, "waits for the others to stall", 30000), 0);
    assert_int_equal (pthread_create (&insert_thread, NULL, s_late, &insert), 0);
    int64_t deadline = zclock_mono () + 30000;
    while (!qv_it_server_stopped (old) && zclock_mono () < deadline)
        zclock_sleep (20);
    assert_true (qv_it_server_stopped (old));

    //  A new writer takes the lease over (not renewed for a ttl) and fences the WAL
    //  and the manifests
    qv_it_server_t *new = qv_it_server_same_store (old, args);
    assert_int_equal (qv_it_server_start (new), 0);
    assert_int_equal (qv_it_server_wait_log (new, "writes as epoch 2", 10000), 0);
    assert_int_equal (qv_it_server_wait_log (new, "manifest fence", 10000), 0);
    c = qv_it_client_new (new->endpoint, QV_IT_CALL_MS);
    assert_int_equal (qv_it_docs_batch_rows (c, 0, BATCH), BATCH);
    assert_true (qv_it_docs_insert_ok (c, 2, BATCH, DIM));
    assert_true (qv_it_docs_insert_ok (c, 3, BATCH, DIM));
    qv_it_client_destroy (&c);
    char *wal_before = qv_it_store_keys (new, "wal/0/");
    char *man_before = qv_it_store_keys (new, "meta/manifest/");
    assert_int_equal (qv_it_server_kill (new), 0);

    //  Resumed: both puts land late; the insert is answered UNAVAILABLE, never
    //  acknowledged, and so is every later write
    assert_int_equal (kill (old->pid, SIGCONT), 0);
    pthread_join (insert_thread, NULL);
    assert_non_null (insert.reply);
    if (qv_it_ok (insert.reply))
        fail_msg ("the deposed writer acknowledged a write after the takeover");
    assert_string_equal (qv_it_code (insert.reply), "UNAVAILABLE");
    print_message ("deposed writer answered: %s\n", qv_it_error (insert.reply));
    qv_doc_destroy (&insert.reply);
    pthread_join (flush_thread, NULL);
    qv_doc_destroy (&flush.reply);
    c = qv_it_client_new (old->endpoint, QV_IT_CALL_MS);
    qv_doc_t *r = qv_it_docs_insert (c, 4, BATCH, DIM);
    assert_non_null (r);
    assert_string_equal (qv_it_code (r), "UNAVAILABLE");
    qv_doc_destroy (&r);
    qv_it_client_destroy (&c);
    assert_int_equal (qv_it_server_wait_log (old, "fault injection: resumed", 10000), 0);
    char *wal = qv_it_store_keys (old, "wal/0/");
    char *man = qv_it_store_keys (old, "meta/manifest/");
    print_message ("WAL objects before / after the resume: %s / %s\n", wal_before, wal);
    print_message ("manifests before / after the resume: %s / %s\n", man_before, man);
    //  The late objects are there: of epoch 1, at or after the new writer's fences
    //  (epoch 2: the lowest WAL sequence number, the lowest manifest version)
    uint64_t lo1, hi1, lo2, hi2;
    assert_true (s_epoch_range (wal, 1, &lo1, &hi1));
    assert_true (s_epoch_range (wal, 2, &lo2, &hi2));
    assert_true (hi1 >= lo2);
    uint64_t late_wal = hi1;
    assert_false (s_epoch_range (wal_before, 1, &lo1, &hi1) && hi1 >= lo2);
    assert_true (s_epoch_range (man, 1, &lo1, &hi1));
    assert_true (s_epoch_range (man, 2, &lo2, &hi2));
    assert_true (hi1 >= lo2);
    assert_false (s_epoch_range (man_before, 1, &lo1, &hi1) && hi1 >= lo2);
    free (wal_before);
    free (man_before);
    free (wal);
    free (man);
    assert_int_equal (qv_it_server_kill (old), 0);

    //  The next recovery (after the killed new writer's ttl): the new writer's
    //  acknowledged writes, nothing of the deposed one's late ones
    qv_it_server_t *reader = qv_it_server_same_store (old, args);
    assert_int_equal (qv_it_server_start (reader), 0);
    assert_int_equal (qv_it_server_wait_log (reader, "writes as epoch 3", 10000), 0);
    c = qv_it_client_new (reader->endpoint, QV_IT_CALL_MS);
    assert_int_equal (qv_it_docs_batch_rows (c, 0, BATCH), BATCH);
    assert_int_equal (qv_it_docs_batch_rows (c, 1, BATCH), 0);
    assert_int_equal (qv_it_docs_batch_rows (c, 2, BATCH), BATCH);
    assert_int_equal (qv_it_docs_batch_rows (c, 3, BATCH), BATCH);
    assert_int_equal (qv_it_docs_batch_rows (c, 4, BATCH), 0);
    assert_int_equal (qv_it_docs_rows (c), 3 * BATCH);
    qv_it_client_destroy (&c);
    char *log = qv_it_server_log_text (reader);
    if (!strstr (log, "-00000000000000000001 of deposed writer epoch 1 ignored; current epoch 2"))
        fail_msg ("the reader did not say it ignored the late manifest:\n%s", log);
    //  The late WAL object is ignored too, unless the new writer's start-up flush
    //  wrote a manifest whose checkpoint is past it (then it is trimmed unread)
    const char *m = strstr (log, "recovered manifest ");
    const char *cp = m ? strstr (m, ", checkpoint ") : NULL;
    assert_non_null (cp);
    uint64_t checkpoint = strtoull (cp + strlen (", checkpoint "), NULL, 10);
    print_message ("%.*s\n", (int) strcspn (m, "\n"), m);
    char ignored [128];
    snprintf (ignored, sizeof ignored, "wal/0/%020llu-00000000000000000001 of deposed writer "
              "epoch 1 ignored", (unsigned long long) late_wal);
    if (checkpoint <= late_wal && !strstr (log, ignored))
        fail_msg ("the reader replayed from %llu and did not say it ignored the late WAL "
                  "object at %llu:\n%s", (unsigned long long) checkpoint,
                  (unsigned long long) late_wal, log);
    free (log);
    qv_it_server_destroy (&reader);
    qv_it_server_destroy (&new);
    qv_it_server_destroy (&old);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_second_waits_then_takes_over),
        cmocka_unit_test (test_segment_objects_fenced),
        cmocka_unit_test (test_paused_writer_deposed),
    };
    if (getenv ("QV_IT_ONLY"))
        cmocka_set_test_filter (getenv ("QV_IT_ONLY"));
    return cmocka_run_group_tests (tests, NULL, NULL);
}
