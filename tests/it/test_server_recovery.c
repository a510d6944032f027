//  Crash recovery of a real `quiver serve`: kill -9 during concurrent writes (with and
//  without flushes), corrupt and truncated objects, the data-directory lock, SIGTERM,
//  replay of only the WAL tail after a flush, and deletes logged beside a flush.
//
//  The kill moments are random (seeded from the clock, or QV_IT_SEED; the seed is
//  printed so a failure can be replayed); every wait is a poll with a deadline.
#include <dirent.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <czmq.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "qv_codec.h"
#include "qv_it_server.h"

#define DIM 32
#define BATCH 40                    //  rows per insert
#define MAX_BATCHES 200000
#define WRITER_CALL_MS 5000         //  reply deadline of the stream's clients
#define STOP_MS 30000               //  SIGTERM must end the server within this

static unsigned s_seed;

static int
s_group_setup (void **state)
{
    (void) state;
    const char *env = getenv ("QV_IT_SEED");
    s_seed = env ? (unsigned) strtoul (env, NULL, 10) : (unsigned) (time (NULL) ^ getpid ());
    fprintf (stderr, "test_server_recovery: QV_IT_SEED=%u\n", s_seed);
    return 0;
}

static qv_doc_t *
s_call_ok (const char *what, qv_doc_t *reply)
{
    if (!qv_it_ok (reply))
        fail_msg ("%s: %s %s", what, reply ? qv_it_code (reply) : "no reply",
                  reply ? qv_it_error (reply) : "");
    return reply;
}
#define CALL_OK(c, ...) s_call_ok (#__VA_ARGS__, qv_it_callf (c, __VA_ARGS__))

static void
s_create (qv_it_client_t *c)
{
    qv_doc_t *r = CALL_OK (c, "{op: 'create_collection', collection: 'crash', fields: ["
                              "{name: 'id', type: 'int64', primary: true},"
                              "{name: 'tag', type: 'int64'},"
                              "{name: 'v', type: 'float_vector', dim: %d}]}", DIM);
    qv_doc_destroy (&r);
}

static float
s_vec_value (int64_t id, int d)
{
    return (float) ((id * 31 + d * 7) % 1000) / 100.0f - 5.0f;
}

//  Encodes an insert of BATCH rows with ids first..first+BATCH-1.
static void
s_write_insert (qv_wr_t *w, int64_t first)
{
    static __thread float vecs [BATCH * DIM];
    for (int i = 0; i < BATCH; i++)
        for (int d = 0; d < DIM; d++)
            vecs [i * DIM + d] = s_vec_value (first + i, d);
    qv_wr_map (w, 3);
    qv_wr_str (w, "op"); qv_wr_str (w, "insert");
    qv_wr_str (w, "collection"); qv_wr_str (w, "crash");
    qv_wr_str (w, "columns"); qv_wr_map (w, 3);
    qv_wr_str (w, "id"); qv_wr_array (w, BATCH);
    for (int i = 0; i < BATCH; i++)
        qv_wr_int (w, first + i);
    qv_wr_str (w, "tag"); qv_wr_array (w, BATCH);
    for (int i = 0; i < BATCH; i++)
        qv_wr_int (w, (first + i) * 7);
    qv_wr_str (w, "v"); qv_wr_bin (w, vecs, sizeof vecs);
}

//  ---------------------------------------------------------------------------------
//  What the clients know: every batch ever sent and every row's delete state, across
//  all rounds on one data directory.

typedef enum {
    B_SENDING,                      //  in flight
    B_ACKED,                        //  ok reply: must survive
    B_FAILED,                       //  error reply: must not exist
    B_UNKNOWN                       //  no reply: all of it or none of it
} s_bstate_t;

typedef enum {
    D_NONE,                         //  never deleted (or the delete failed)
    D_UNKNOWN,                      //  delete sent, no reply
    D_ACKED                         //  delete acknowledged: must stay deleted
} s_dstate_t;

typedef struct {
    s_bstate_t state;
    uint8_t del [BATCH];            //  s_dstate_t per row
    uint8_t ver [BATCH];            //  per row: the version of its last acknowledged upsert
    uint8_t pending [BATCH];        //  ... and of an upsert sent, not acknowledged (0: none)
} s_batch_t;

typedef struct {
    pthread_mutex_t mutex;
    s_batch_t *batches;             //  batch i holds ids i * BATCH + 1 ...
    uint32_t nbatches;
    atomic_int round_acked;         //  batches acknowledged in this round
    atomic_bool stop;
    atomic_bool stopping;           //  SIGTERM sent: 'shutting down' errors are expected
    atomic_int errors;              //  unexpected replies (printed)
    const char *endpoint;
    bool flushes;                   //  a thread calls flush in a loop
    atomic_int flushes_done;
    bool upserts;                   //  a thread upserts live rows with new tags
    atomic_int upserts_done;
} s_world_t;

//  The tag of row id after its upsert number ver (0: as inserted).
static int64_t
s_tag (int64_t id, int ver)
{
    return id * 7 + ((int64_t) ver << 40);
}

static int64_t
s_first_id (uint32_t b)
{
    return (int64_t) b * BATCH + 1;
}

static void *
s_writer (void *arg)
{
    s_world_t *world = arg;
    qv_it_client_t *c = qv_it_client_new (world->endpoint, WRITER_CALL_MS);
    qv_it_client_set_cancel (c, &world->stop);
    qv_wr_t *w = qv_wr_new ();
    while (!atomic_load (&world->stop)) {
        pthread_mutex_lock (&world->mutex);
        uint32_t b = world->nbatches;
        if (b < MAX_BATCHES) {
            world->batches [b].state = B_SENDING;
            world->nbatches++;
        }
        pthread_mutex_unlock (&world->mutex);
        if (b >= MAX_BATCHES)
            break;
        s_write_insert (w, s_first_id (b));
        qv_doc_t *r = qv_it_call (c, w);
        s_bstate_t state = !r ? B_UNKNOWN : qv_it_ok (r) ? B_ACKED : B_FAILED;
        if (state == B_FAILED && !atomic_load (&world->stopping)) {
            fprintf (stderr, "insert of batch %u: %s %s\n", b, qv_it_code (r), qv_it_error (r));
            atomic_fetch_add (&world->errors, 1);
        }
        if (state == B_ACKED && qv_it_int (qv_it_path (r, "count")) != BATCH) {
            fprintf (stderr, "insert of batch %u: count %lld\n", b,
                     (long long) qv_it_int (qv_it_path (r, "count")));
            atomic_fetch_add (&world->errors, 1);
        }
        qv_doc_destroy (&r);
        pthread_mutex_lock (&world->mutex);
        world->batches [b].state = state;
        pthread_mutex_unlock (&world->mutex);
        if (state == B_ACKED)
            atomic_fetch_add (&world->round_acked, 1);
        if (state == B_UNKNOWN)
            break;                  //  the server is gone
    }
    qv_wr_destroy (&w);
    qv_it_client_destroy (&c);
    return NULL;
}

//  Deletes 1..3 rows of random acknowledged batches.
static void *
s_deleter (void *arg)
{
    s_world_t *world = arg;
    qv_it_client_t *c = qv_it_client_new (world->endpoint, WRITER_CALL_MS);
    qv_it_client_set_cancel (c, &world->stop);
    unsigned rng = s_seed * 7919u + 1;
    while (!atomic_load (&world->stop)) {
        uint32_t b = 0, rows [3];
        int n = 0;
        pthread_mutex_lock (&world->mutex);
        for (int tries = 0; tries < 50 && n == 0 && world->nbatches > 0; tries++) {
            b = (uint32_t) rand_r (&rng) % world->nbatches;
            if (world->batches [b].state != B_ACKED)
                continue;
            int want = 1 + rand_r (&rng) % 3;
            for (int k = 0; k < want; k++) {
                uint32_t row = (uint32_t) rand_r (&rng) % BATCH;
                if (world->batches [b].del [row] == D_NONE && !world->batches [b].pending [row]) {
                    world->batches [b].del [row] = D_UNKNOWN;
                    rows [n++] = row;
                }
            }
        }
        pthread_mutex_unlock (&world->mutex);
        if (n == 0) {
            //  nothing acknowledged yet: wait for the writers' next acknowledgement
            int before = atomic_load (&world->round_acked);
            int64_t deadline = zclock_mono () + 2000;
            while (atomic_load (&world->round_acked) == before && !atomic_load (&world->stop)
               &&  zclock_mono () < deadline)
                zclock_sleep (5);
            continue;
        }
        char text [256];
        int len = snprintf (text, sizeof text, "{op: 'delete', collection: 'crash', ids: [");
        for (int k = 0; k < n; k++)
            len += snprintf (text + len, sizeof text - (size_t) len, "%s%lld", k ? ", " : "",
                             (long long) (s_first_id (b) + rows [k]));
        snprintf (text + len, sizeof text - (size_t) len, "]}");
        qv_doc_t *r = qv_it_callf (c, "%s", text);
        s_dstate_t state = !r ? D_UNKNOWN : qv_it_ok (r) ? D_ACKED : D_NONE;
        if (r && !qv_it_ok (r) && !atomic_load (&world->stopping)) {
            fprintf (stderr, "%s: %s %s\n", text, qv_it_code (r), qv_it_error (r));
            atomic_fetch_add (&world->errors, 1);
        }
        if (state == D_ACKED && qv_it_int (qv_it_path (r, "deleted")) != n) {
            fprintf (stderr, "%s: deleted %lld, expected %d (the rows were live)\n", text,
                     (long long) qv_it_int (qv_it_path (r, "deleted")), n);
            atomic_fetch_add (&world->errors, 1);
        }
        qv_doc_destroy (&r);
        pthread_mutex_lock (&world->mutex);
        for (int k = 0; k < n; k++)
            world->batches [b].del [rows [k]] = state;
        pthread_mutex_unlock (&world->mutex);
        if (state == D_UNKNOWN)
            break;
    }
    qv_it_client_destroy (&c);
    return NULL;
}

//  Upserts one live row of a random acknowledged batch at a time, with the next tag
//  version (same vector): an acknowledged upsert must show after any crash, one without
//  a reply either value.
static void *
s_upserter (void *arg)
{
    s_world_t *world = arg;
    qv_it_client_t *c = qv_it_client_new (world->endpoint, WRITER_CALL_MS);
    qv_it_client_set_cancel (c, &world->stop);
    unsigned rng = s_seed * 104729u + 3;
    qv_wr_t *w = qv_wr_new ();
    while (!atomic_load (&world->stop)) {
        uint32_t b = 0, row = 0;
        int ver = 0;
        pthread_mutex_lock (&world->mutex);
        for (int tries = 0; tries < 50 && !ver && world->nbatches > 0; tries++) {
            b = (uint32_t) rand_r (&rng) % world->nbatches;
            row = (uint32_t) rand_r (&rng) % BATCH;
            s_batch_t *batch = &world->batches [b];
            if (batch->state == B_ACKED && batch->del [row] == D_NONE && !batch->pending [row]
            &&  batch->ver [row] < 250)
                ver = batch->pending [row] = (uint8_t) (batch->ver [row] + 1);
        }
        pthread_mutex_unlock (&world->mutex);
        if (!ver) {
            zclock_sleep (5);
            continue;
        }
        int64_t id = s_first_id (b) + row;
        qv_wr_map (w, 3);
        qv_wr_str (w, "op"); qv_wr_str (w, "upsert");
        qv_wr_str (w, "collection"); qv_wr_str (w, "crash");
        qv_wr_str (w, "rows"); qv_wr_array (w, 1); qv_wr_map (w, 3);
        qv_wr_str (w, "id"); qv_wr_int (w, id);
        qv_wr_str (w, "tag"); qv_wr_int (w, s_tag (id, ver));
        qv_wr_str (w, "v"); qv_wr_array (w, DIM);
        for (int d = 0; d < DIM; d++)
            qv_wr_float (w, s_vec_value (id, d));
        qv_doc_t *r = qv_it_call (c, w);
        if (r && !qv_it_ok (r) && !atomic_load (&world->stopping)) {
            fprintf (stderr, "upsert of id %lld: %s %s\n", (long long) id, qv_it_code (r), qv_it_error (r));
            atomic_fetch_add (&world->errors, 1);
        }
        pthread_mutex_lock (&world->mutex);
        if (r && qv_it_ok (r))
            world->batches [b].ver [row] = (uint8_t) ver;
        if (r)
            world->batches [b].pending [row] = 0;      //  else: unknown, settled by s_verify
        pthread_mutex_unlock (&world->mutex);
        if (r && qv_it_ok (r))
            atomic_fetch_add (&world->upserts_done, 1);
        bool gone = !r;
        qv_doc_destroy (&r);
        if (gone)
            break;
    }
    qv_wr_destroy (&w);
    qv_it_client_destroy (&c);
    return NULL;
}

static void *
s_flusher (void *arg)
{
    s_world_t *world = arg;
    qv_it_client_t *c = qv_it_client_new (world->endpoint, WRITER_CALL_MS * 4);
    qv_it_client_set_cancel (c, &world->stop);
    while (!atomic_load (&world->stop)) {
        qv_doc_t *r = qv_it_callf (c, "{op: 'flush', collection: 'crash'}");
        if (!r)
            break;
        if (!qv_it_ok (r) && !atomic_load (&world->stopping)) {
            fprintf (stderr, "flush: %s %s\n", qv_it_code (r), qv_it_error (r));
            atomic_fetch_add (&world->errors, 1);
        }
        if (qv_it_ok (r))
            atomic_fetch_add (&world->flushes_done, 1);
        qv_doc_destroy (&r);
    }
    qv_it_client_destroy (&c);
    return NULL;
}

#define WRITERS 3

//  Runs writers (+ deleter, + flusher) until `acked` batches of this round are
//  acknowledged, then sends sig to the server and waits for it to exit; joins the
//  threads. Returns the server's exit wait result (0 if it exited by itself).
static int
s_stream_until (s_world_t *world, qv_it_server_t *server, int acked, int sig)
{
    world->endpoint = server->endpoint;
    atomic_store (&world->stop, false);
    atomic_store (&world->stopping, false);
    atomic_store (&world->round_acked, 0);
    pthread_t threads [WRITERS + 3];
    int nthreads = 0;
    for (int i = 0; i < WRITERS; i++)
        pthread_create (&threads [nthreads++], NULL, s_writer, world);
    pthread_create (&threads [nthreads++], NULL, s_deleter, world);
    if (world->flushes)
        pthread_create (&threads [nthreads++], NULL, s_flusher, world);
    if (world->upserts)
        pthread_create (&threads [nthreads++], NULL, s_upserter, world);
    int64_t deadline = zclock_mono () + 120000;
    while (atomic_load (&world->round_acked) < acked && zclock_mono () < deadline)
        zclock_sleep (1);
    int rc;
    atomic_store (&world->stopping, true);
    if (sig == SIGKILL)
        rc = qv_it_server_kill (server);
    else
        rc = qv_it_server_signal (server, sig, STOP_MS);
    atomic_store (&world->stop, true);
    for (int i = 0; i < nthreads; i++)
        pthread_join (threads [i], NULL);
    assert_true (atomic_load (&world->round_acked) >= acked);
    return rc;
}

//  After a restart: every acknowledged row is there with its values, no acknowledged
//  delete is undone, a batch without a reply is there entirely or not at all, a failed
//  one is not there, and describe's row count is the number of rows found. Rows whose
//  fate was unknown are settled by what is found, so later rounds hold them to it.
static void
s_verify (s_world_t *world, qv_it_server_t *server, const char *when)
{
    qv_it_client_t *c = qv_it_client_new (server->endpoint, QV_IT_CALL_MS);
    uint32_t nb = world->nbatches;
    uint8_t *found = calloc ((size_t) nb * BATCH, 1);
    enum { CHUNK = 25 };            //  batches per get
    uint64_t present = 0;
    for (uint32_t b0 = 0; b0 < nb; b0 += CHUNK) {
        uint32_t b1 = b0 + CHUNK < nb ? b0 + CHUNK : nb;
        qv_wr_t *w = qv_wr_new ();
        qv_wr_map (w, 4);
        qv_wr_str (w, "op"); qv_wr_str (w, "get");
        qv_wr_str (w, "collection"); qv_wr_str (w, "crash");
        qv_wr_str (w, "output_fields"); qv_wr_array (w, 2);
        qv_wr_str (w, "tag"); qv_wr_str (w, "v");
        qv_wr_str (w, "ids"); qv_wr_array (w, (size_t) (b1 - b0) * BATCH);
        for (uint32_t b = b0; b < b1; b++)
            for (int i = 0; i < BATCH; i++)
                qv_wr_int (w, s_first_id (b) + i);
        qv_doc_t *r = qv_it_call (c, w);
        qv_wr_destroy (&w);
        if (!qv_it_ok (r))
            fail_msg ("%s: get: %s %s", when, qv_it_code (r), qv_it_error (r));
        const qv_val_t *rows = qv_it_path (r, "rows");
        for (size_t i = 0; i < qv_val_len (rows); i++) {
            const qv_val_t *row = qv_val_at (rows, i);
            int64_t id = qv_it_int (qv_it_vpath (row, "id"));
            if (id < s_first_id (b0) || id >= s_first_id (b1))
                fail_msg ("%s: get returned id %lld, not asked for", when, (long long) id);
            uint64_t k = (uint64_t) (id - 1);
            if (found [k])
                fail_msg ("%s: id %lld returned twice", when, (long long) id);
            found [k] = 1;
            present++;
            //  The tag of its last acknowledged upsert, or of the one without a reply
            s_batch_t *batch = &world->batches [k / BATCH];
            int64_t tag = qv_it_int (qv_it_vpath (row, "tag"));
            int ver = batch->ver [k % BATCH], pending = batch->pending [k % BATCH];
            if (pending && tag == s_tag (id, pending)) {
                batch->ver [k % BATCH] = (uint8_t) pending;     //  settled now
                batch->pending [k % BATCH] = 0;
            }
            else
            if (tag == s_tag (id, ver))
                batch->pending [k % BATCH] = 0;
            else
                fail_msg ("%s: id %lld has tag %lld; its last acknowledged upsert wrote %lld%s", when,
                          (long long) id, (long long) tag, (long long) s_tag (id, ver),
                          pending ? " (one more was sent without a reply)" : "");
            const qv_val_t *v = qv_it_vpath (row, "v");
            if (qv_val_len (v) != DIM)
                fail_msg ("%s: id %lld has a vector of %zu values", when, (long long) id, qv_val_len (v));
            for (int d = 0; d < DIM; d++)
                if (qv_it_num (qv_val_at (v, d)) != s_vec_value (id, d))
                    fail_msg ("%s: id %lld vector[%d] = %g, inserted %g", when, (long long) id, d,
                              qv_it_num (qv_val_at (v, d)), (double) s_vec_value (id, d));
        }
        qv_doc_destroy (&r);
    }
    uint32_t acked = 0, unknown_in = 0, unknown_out = 0, deleted = 0;
    for (uint32_t b = 0; b < nb; b++) {
        s_batch_t *batch = &world->batches [b];
        int in = 0, out = 0;
        for (int i = 0; i < BATCH; i++) {
            bool here = found [(size_t) b * BATCH + i];
            int64_t id = s_first_id (b) + i;
            if (batch->del [i] == D_ACKED && here)
                fail_msg ("%s: id %lld was deleted (acknowledged) and is back", when, (long long) id);
            if (batch->del [i] == D_UNKNOWN)
                batch->del [i] = here ? D_NONE : D_ACKED;      //  settled now
            else
            if (batch->del [i] == D_NONE) {
                in += here;
                out += !here;
            }
            deleted += batch->del [i] == D_ACKED;
        }
        switch (batch->state) {
            case B_ACKED:
                acked++;
                if (out)
                    fail_msg ("%s: batch %u (ids %lld..) was acknowledged; %d of its live rows are missing",
                              when, b, (long long) s_first_id (b), out);
                break;
            case B_FAILED:
            case B_SENDING:
                if (in)
                    fail_msg ("%s: batch %u failed or was never sent, yet %d rows are there",
                              when, b, in);
                break;
            case B_UNKNOWN:
                if (in && out)
                    fail_msg ("%s: batch %u (no reply) is partly there: %d rows in, %d out",
                              when, b, in, out);
                if (in || out)
                    batch->state = in ? B_ACKED : B_FAILED;     //  settled now
                unknown_in += in > 0;
                unknown_out += out > 0;
                break;
        }
    }
    qv_doc_t *r = CALL_OK (c, "{op: 'describe_collection', collection: 'crash'}");
    int64_t rows = qv_it_int (qv_it_path (r, "rows"));
    qv_doc_destroy (&r);
    if ((uint64_t) rows != present)
        fail_msg ("%s: describe says %lld rows, get finds %llu", when, (long long) rows,
                  (unsigned long long) present);
    fprintf (stderr, "  %s: %u batches, %u acknowledged, %u unanswered (%u landed, %u not), "
             "%u rows deleted, %llu rows live\n", when, nb, acked, unknown_in + unknown_out,
             unknown_in, unknown_out, deleted, (unsigned long long) present);
    free (found);
    qv_it_client_destroy (&c);
}

static s_world_t *
s_world_new (bool flushes, bool upserts)
{
    s_world_t *world = calloc (1, sizeof *world);
    pthread_mutex_init (&world->mutex, NULL);
    world->batches = calloc (MAX_BATCHES, sizeof (s_batch_t));
    world->flushes = flushes;
    world->upserts = upserts;
    return world;
}

static void
s_world_destroy (s_world_t **world_p)
{
    s_world_t *world = *world_p;
    pthread_mutex_destroy (&world->mutex);
    free (world->batches);
    free (world);
    *world_p = NULL;
}

//  A started server (extra options, or NULL) with the empty collection 'crash'.
static qv_it_server_t *
s_started (const char *const *extra)
{
    qv_it_server_t *server = qv_it_server_new (extra);
    assert_non_null (server);
    assert_int_equal (qv_it_server_start (server), 0);
    qv_it_client_t *c = qv_it_client_new (server->endpoint, QV_IT_CALL_MS);
    s_create (c);
    qv_it_client_destroy (&c);
    return server;
}

static void
s_crash_rounds (const char *const *extra, bool flushes, bool upserts, int rounds)
{
    qv_it_server_t *server = s_started (extra);
    s_world_t *world = s_world_new (flushes, upserts);
    unsigned rng = s_seed + (flushes ? 17 : 0);
    for (int round = 0; round < rounds; round++) {
        int acked = 10 + rand_r (&rng) % 150;
        s_stream_until (world, server, acked, SIGKILL);
        assert_int_equal (atomic_load (&world->errors), 0);
        if (qv_it_server_restart (server))
            fail_msg ("round %d: no restart after kill -9", round);
        char when [64];
        snprintf (when, sizeof when, "round %d (kill after %d acks)", round, acked);
        s_verify (world, server, when);
    }
    if (flushes)
        assert_true (atomic_load (&world->flushes_done) > 0);
    if (upserts)
        assert_true (atomic_load (&world->upserts_done) > 0);
    s_world_destroy (&world);
    qv_it_server_destroy (&server);
}

//  (a) kill -9 during concurrent inserts and deletes
static void
test_kill_during_writes (void **state)
{
    (void) state;
    s_crash_rounds (NULL, false, false, 4);
}

//  (a) ... with small segments sealed and flushed all the time, so a kill may hit a
//  segment or manifest write
static void
test_kill_during_flushes (void **state)
{
    (void) state;
    const char *extra [] = { "--segment-mb", "1", NULL };
    s_crash_rounds (extra, true, false, 5);
}

//  The crash loop: kill -9 at a random moment of each round under concurrent inserts,
//  upserts, deletes and flushes (small segments), then restart and check every
//  acknowledged row, upsert and delete. QV_IT_CRASH_ROUNDS rounds (default 5;
//  tools/crashloop.sh runs 20).
static void
test_crash_loop (void **state)
{
    (void) state;
    const char *env = getenv ("QV_IT_CRASH_ROUNDS");
    int rounds = env && atoi (env) > 0 ? atoi (env) : 5;
    const char *extra [] = { "--segment-mb", "1", NULL };
    s_crash_rounds (extra, true, true, rounds);
}

//  (d) SIGTERM during concurrent writes: exit status 0 within STOP_MS, and every
//  acknowledged write survives
static void
test_sigterm (void **state)
{
    (void) state;
    const char *extra [] = { "--segment-mb", "1", NULL };
    qv_it_server_t *server = s_started (extra);
    s_world_t *world = s_world_new (true, false);
    for (int round = 0; round < 2; round++) {
        int rc = s_stream_until (world, server, 60, SIGTERM);
        if (rc != 0) {
            s_world_destroy (&world);
            fail_msg ("round %d: SIGTERM did not stop the server within %d ms", round, STOP_MS);
        }
        if (!WIFEXITED (server->status) || WEXITSTATUS (server->status) != 0) {
            char *log = qv_it_server_log_text (server);
            //  The whole log (print_error cuts long messages short): a sanitizer's
            //  report is at its end
            fprintf (stderr, "round %d: %s %d after SIGTERM; log:\n%s\n", round,
                     WIFEXITED (server->status) ? "exit status" : "killed by signal",
                     WIFEXITED (server->status) ? WEXITSTATUS (server->status)
                                                : WTERMSIG (server->status), log);
            free (log);
            s_world_destroy (&world);
            fail ();
        }
        char *log = qv_it_server_log_text (server);
        assert_non_null (strstr (log, "quiver stopped"));
        free (log);
        assert_int_equal (qv_it_server_restart (server), 0);
        s_verify (world, server, round ? "after the second SIGTERM" : "after SIGTERM");
    }
    s_world_destroy (&world);
    qv_it_server_destroy (&server);
}

//  The log of the run that ended holds needle, and not "quiver stopped"; its exit
//  status was 1.
static void
s_assert_stop_cut (qv_it_server_t *server, const char *needle)
{
    assert_true (WIFEXITED (server->status));
    assert_int_equal (WEXITSTATUS (server->status), 1);
    char *log = qv_it_server_log_text (server);
    if (!strstr (log, needle))
        fprintf (stderr, "no '%s' in the log:\n%s\n", needle, log);
    assert_non_null (strstr (log, needle));
    assert_null (strstr (log, "quiver stopped"));
    free (log);
}

//  A second server description for server's data (and S3 prefix), logging to log.
static qv_it_server_t *
s_server_at (const qv_it_server_t *server, const char *log, const char *const *extra)
{
    qv_it_server_t *other = qv_it_server_new_at (server->dir, log, extra);
    assert_non_null (other);
    snprintf (other->s3_prefix, sizeof other->s3_prefix, "%s", server->s3_prefix);
    return other;
}

//  (e) A stop that cannot finish (held by QV_FAULT_STOP_STALL_MS) ends anyway: at
//  --stop-timeout-s, and at a second SIGTERM; so does a stop during a start that
//  takes long (QV_FAULT_START_STALL_MS); exit status 1 and an error line each time,
//  and every acknowledged write survives.
static void
test_stop_limit (void **state)
{
    (void) state;
    setenv ("QV_FAULT_STOP_STALL_MS", "600000", 1);
    const char *extra [] = { "--segment-mb", "1", "--stop-timeout-s", "1", NULL };
    qv_it_server_t *server = s_started (extra);
    s_world_t *world = s_world_new (true, false);
    assert_int_equal (s_stream_until (world, server, 30, SIGTERM), 0);
    s_assert_stop_cut (server, "the stop did not finish within 1 s");
    unsetenv ("QV_FAULT_STOP_STALL_MS");
    assert_int_equal (qv_it_server_restart (server), 0);
    s_verify (world, server, "after a stop cut at its time limit");
    assert_int_equal (qv_it_server_signal (server, SIGTERM, STOP_MS), 0);

    //  The same data with the default limit (60 s): a second SIGTERM ends the stop
    const char *plain [] = { "--segment-mb", "1", NULL };
    qv_it_server_t *again = s_server_at (server, "quiver-2.log", plain);
    setenv ("QV_FAULT_STOP_STALL_MS", "600000", 1);
    assert_int_equal (qv_it_server_start (again), 0);
    unsetenv ("QV_FAULT_STOP_STALL_MS");
    assert_int_equal (kill (again->pid, SIGTERM), 0);
    assert_int_equal (qv_it_server_wait_log (again, "the stop waits that long first", 30000), 0);
    assert_int_equal (kill (again->pid, SIGTERM), 0);
    assert_int_equal (qv_it_server_wait_exit (again, STOP_MS), 0);
    s_assert_stop_cut (again, "signal 15 while stopping");
    assert_int_equal (qv_it_server_restart (again), 0);
    s_verify (world, again, "after a stop cut by a second SIGTERM");
    assert_int_equal (qv_it_server_signal (again, SIGTERM, STOP_MS), 0);

    //  A stop during a start that takes long (held by QV_FAULT_START_STALL_MS): the
    //  start is given --stop-timeout-s, then the process exits 1 saying so; the data
    //  is served in full by the next start
    qv_it_server_t *third = s_server_at (server, "quiver-3.log", extra);
    setenv ("QV_FAULT_START_STALL_MS", "600000", 1);
    assert_int_equal (qv_it_server_spawn (third), 0);
    unsetenv ("QV_FAULT_START_STALL_MS");
    assert_int_equal (qv_it_server_wait_log (third, "QV_FAULT_START_STALL_MS=", 30000), 0);
    assert_int_equal (kill (third->pid, SIGTERM), 0);
    assert_int_equal (qv_it_server_wait_exit (third, STOP_MS), 0);
    s_assert_stop_cut (third, "stopped during the start");
    assert_int_equal (qv_it_server_restart (third), 0);
    s_verify (world, third, "after a stop during a start");
    qv_it_server_destroy (&third);
    s_world_destroy (&world);
    qv_it_server_destroy (&again);
    qv_it_server_destroy (&server);
}

//  ---------------------------------------------------------------------------------
//  (b) corrupt objects: recovery stops, every request gets UNAVAILABLE naming the object

typedef enum { FLIP_MIDDLE, FLIP_LAST, TRUNCATE } s_damage_t;

static void
s_damage (const char *path, s_damage_t how)
{
    long size = qv_it_file_size (path);
    assert_true (size > 8);
    if (how == FLIP_MIDDLE)
        assert_int_equal (qv_it_flip_byte (path, size / 2), 0);
    else
    if (how == FLIP_LAST)
        assert_int_equal (qv_it_flip_byte (path, -1), 0);
    else
        assert_int_equal (truncate (path, size / 2), 0);
}

//  Restarts the server and checks that it answers every op UNAVAILABLE naming path,
//  that its log names it too, and that it keeps running.
static void
s_assert_recovery_fails (qv_it_server_t *server, const char *path)
{
    const char *key = path + strlen (server->dir) + 1;      //  "wal/0/000..."
    assert_int_equal (qv_it_server_spawn (server), 0);
    int rc = qv_it_server_wait_error (server, "recovery failed", QV_IT_READY_MS);
    if (rc) {
        char *log = qv_it_server_log_text (server);
        fail_msg ("the server did not report a failed recovery for %s (%d); log:\n%s", key, rc, log);
    }
    qv_it_client_t *c = qv_it_client_new (server->endpoint, QV_IT_CALL_MS);
    const char *requests [] = {
        "{op: 'ping'}",
        "{op: 'list_collections'}",
        "{op: 'describe_collection', collection: 'crash'}",
        "{op: 'get', collection: 'crash', ids: [1]}",
        "{op: 'insert', collection: 'crash', rows: [{id: 1, tag: 1, v: []}]}",
        "{op: 'stats'}",
    };
    for (size_t i = 0; i < sizeof requests / sizeof requests [0]; i++) {
        qv_doc_t *r = qv_it_callf (c, "%s", requests [i]);
        assert_non_null (r);
        assert_false (qv_it_ok (r));
        if (strcmp (qv_it_code (r), "UNAVAILABLE") != 0)
            fail_msg ("%s -> %s, expected UNAVAILABLE", requests [i], qv_it_code (r));
        if (!strstr (qv_it_error (r), key))
            fail_msg ("%s -> error '%s' does not name %s", requests [i], qv_it_error (r), key);
        qv_doc_destroy (&r);
    }
    qv_it_client_destroy (&c);
    assert_int_equal (qv_it_server_wait_log (server, key, 5000), 0);
    //  still running: a corrupt object is an error, never a crash
    assert_int_equal (qv_it_server_wait_exit (server, 0), -2);
    assert_int_equal (qv_it_server_kill (server), 0);
}

//  A server with rows 1..n in collection 'crash', flushed or not, then killed.
static qv_it_server_t *
s_prepared (int batches, bool flush)
{
    qv_it_server_t *server = qv_it_server_new (NULL);
    assert_non_null (server);
    assert_int_equal (qv_it_server_start (server), 0);
    qv_it_client_t *c = qv_it_client_new (server->endpoint, QV_IT_CALL_MS);
    s_create (c);
    qv_wr_t *w = qv_wr_new ();
    for (int b = 0; b < batches; b++) {
        s_write_insert (w, s_first_id ((uint32_t) b));
        qv_doc_t *r = qv_it_call (c, w);
        assert_true (qv_it_ok (r));
        qv_doc_destroy (&r);
    }
    qv_wr_destroy (&w);
    if (flush) {
        qv_doc_t *r = CALL_OK (c, "{op: 'flush', collection: 'crash'}");
        qv_doc_destroy (&r);
    }
    qv_it_client_destroy (&c);
    assert_int_equal (qv_it_server_kill (server), 0);
    return server;
}

static void
test_corrupt_wal (void **state)
{
    (void) state;
    if (qv_it_s3 ()) {
        print_message ("S3 mode: this test damages files in the data directory; skipped\n");
        skip ();
    }
    s_damage_t damages [] = { FLIP_MIDDLE, FLIP_LAST, TRUNCATE };
    for (size_t i = 0; i < 3; i++) {
        qv_it_server_t *server = s_prepared (5, false);
        char dir [PATH_MAX + 16], path [PATH_MAX];
        snprintf (dir, sizeof dir, "%s/wal/0", server->dir);
        assert_int_equal (qv_it_newest_file (dir, path, sizeof path), 0);
        s_damage (path, damages [i]);
        s_assert_recovery_fails (server, path);
        qv_it_server_destroy (&server);
    }
    //  An older WAL object, not only the newest
    qv_it_server_t *server = s_prepared (5, false);
    char path [PATH_MAX + 64];
    //  (a fresh directory's writer is epoch 1: its fence is at seq 0, the create at 1)
    snprintf (path, sizeof path, "%s/wal/0/%020d-%020d", server->dir, 3, 1);
    assert_true (qv_it_file_size (path) > 0);
    s_damage (path, FLIP_MIDDLE);
    s_assert_recovery_fails (server, path);
    qv_it_server_destroy (&server);
}

static void
test_corrupt_segment (void **state)
{
    (void) state;
    if (qv_it_s3 ()) {
        print_message ("S3 mode: this test damages files in the data directory; skipped\n");
        skip ();
    }
    s_damage_t damages [] = { FLIP_MIDDLE, FLIP_LAST, TRUNCATE };
    for (size_t i = 0; i < 3; i++) {
        qv_it_server_t *server = s_prepared (5, true);
        char dir [PATH_MAX + 16], path [PATH_MAX];
        snprintf (dir, sizeof dir, "%s/segments", server->dir);
        assert_int_equal (qv_it_newest_file (dir, path, sizeof path), 0);
        s_damage (path, damages [i]);
        s_assert_recovery_fails (server, path);
        qv_it_server_destroy (&server);
    }
}

static void
test_corrupt_manifest (void **state)
{
    (void) state;
    if (qv_it_s3 ()) {
        print_message ("S3 mode: this test damages files in the data directory; skipped\n");
        skip ();
    }
    s_damage_t damages [] = { TRUNCATE, FLIP_MIDDLE, FLIP_LAST };
    for (size_t i = 0; i < 3; i++) {
        qv_it_server_t *server = s_prepared (5, true);
        char dir [PATH_MAX + 16], path [PATH_MAX];
        snprintf (dir, sizeof dir, "%s/meta/manifest", server->dir);
        assert_int_equal (qv_it_newest_file (dir, path, sizeof path), 0);
        s_damage (path, damages [i]);
        s_assert_recovery_fails (server, path);
        qv_it_server_destroy (&server);
    }
}

//  (c) one writer per data directory; a stale lock never blocks a restart
static void
test_lock (void **state)
{
    (void) state;
    if (qv_it_s3 ()) {
        print_message ("S3 mode: this test damages files in the data directory; skipped\n");
        skip ();
    }
    qv_it_server_t *first = qv_it_server_new (NULL);
    assert_non_null (first);
    assert_int_equal (qv_it_server_start (first), 0);
    qv_it_client_t *c = qv_it_client_new (first->endpoint, QV_IT_CALL_MS);
    s_create (c);
    qv_doc_t *r = CALL_OK (c, "{op: 'insert', collection: 'crash', rows: [{id: 1, tag: 7, v: %s}]}",
                           "[0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0]");
    qv_doc_destroy (&r);
    qv_it_client_destroy (&c);

    for (int attempt = 0; attempt < 2; attempt++) {
        qv_it_server_t *second = qv_it_server_new_at (first->dir, "second.log", NULL);
        assert_int_equal (qv_it_server_spawn (second), 0);
        if (qv_it_server_wait_exit (second, 30000) != 0)
            fail_msg ("a second quiver on a locked data directory kept running");
        assert_true (WIFEXITED (second->status));
        assert_true (WEXITSTATUS (second->status) != 0);
        char *log = qv_it_server_log_text (second);
        if (!strstr (log, "locked"))
            fail_msg ("the second server's message does not say the directory is locked:\n%s", log);
        if (!strstr (log, first->dir))
            fail_msg ("the second server's message does not name the directory:\n%s", log);
        free (log);
        qv_it_server_destroy (&second);

        //  the first is unharmed
        c = qv_it_client_new (first->endpoint, QV_IT_CALL_MS);
        r = CALL_OK (c, "{op: 'get', collection: 'crash', ids: [1], output_fields: ['tag']}");
        assert_int_equal (qv_it_int (qv_it_path (r, "rows.0.tag")), 7);
        qv_doc_destroy (&r);
        qv_it_client_destroy (&c);

        //  kill -9 leaves the LOCK file; the restart takes the directory anyway
        assert_int_equal (qv_it_server_kill (first), 0);
        char lock [PATH_MAX + 16];
        snprintf (lock, sizeof lock, "%s/LOCK", first->dir);
        assert_true (qv_it_file_size (lock) >= 0);
        assert_int_equal (qv_it_server_restart (first), 0);
    }
    qv_it_server_destroy (&first);
}

//  (e) a restart replays only the WAL after the last flush: the log's count of
//  replayed records is the tail, and stats agree
static long
s_replayed (qv_it_server_t *server)
{
    char *log = qv_it_server_log_text (server);
    const char *p = strstr (log, "WAL records replayed");
    long n = -1;
    if (p) {
        const char *q = p;
        while (q > log && q [-1] == ' ')
            q--;
        while (q > log && q [-1] >= '0' && q [-1] <= '9')
            q--;
        n = strtol (q, NULL, 10);
    }
    if (n < 0)
        fail_msg ("no 'N WAL records replayed' in the log:\n%s", log);
    free (log);
    return n;
}

static void
s_insert_batches (qv_it_client_t *c, uint32_t from, uint32_t to)
{
    qv_wr_t *w = qv_wr_new ();
    for (uint32_t b = from; b < to; b++) {
        s_write_insert (w, s_first_id (b));
        qv_doc_t *r = qv_it_call (c, w);
        assert_true (qv_it_ok (r));
        qv_doc_destroy (&r);
    }
    qv_wr_destroy (&w);
}

static void
test_replay_tail (void **state)
{
    (void) state;
    qv_it_server_t *server = qv_it_server_new (NULL);
    assert_non_null (server);
    assert_int_equal (qv_it_server_start (server), 0);
    qv_it_client_t *c = qv_it_client_new (server->endpoint, QV_IT_CALL_MS);
    s_create (c);
    s_insert_batches (c, 0, 20);    //  one request at a time: one WAL object each
    qv_it_client_destroy (&c);
    assert_int_equal (qv_it_server_kill (server), 0);

    //  Nothing flushed: the whole log (create + 20 inserts) is replayed
    assert_int_equal (qv_it_server_restart (server), 0);
    assert_int_equal (s_replayed (server), 21);
    c = qv_it_client_new (server->endpoint, QV_IT_CALL_MS);
    qv_doc_t *r = CALL_OK (c, "{op: 'flush', collection: 'crash'}");
    qv_doc_destroy (&r);
    int64_t applied = qv_it_stat (c, "wal_applied");
    int64_t checkpoint = qv_it_stat (c, "wal_checkpoint");
    assert_true (applied > 0);
    assert_int_equal (checkpoint, applied + 1);     //  everything is flushed
    s_insert_batches (c, 20, 27);
    //  The restart's fence object (a WAL object of no record, qv_wal.c) took the seq
    //  at the checkpoint, and the seal of the recovered segment (a SEAL record) the
    //  next: the first insert after them is two further on
    assert_int_equal (qv_it_stat (c, "wal_checkpoint"), checkpoint + 2);
    assert_int_equal (qv_it_stat (c, "wal_applied"), applied + 9);
    int64_t flushed = checkpoint;   //  the checkpoint of the flush's manifest
    checkpoint += 2;
    applied += 2;
    qv_it_client_destroy (&c);
    assert_int_equal (qv_it_server_kill (server), 0);

    //  Flushed: only the records after the flush's checkpoint are replayed: the seal
    //  of the segment recovered before (its SEAL record) and the 7 inserts
    assert_int_equal (qv_it_server_restart (server), 0);
    assert_int_equal (s_replayed (server), 8);
    c = qv_it_client_new (server->endpoint, QV_IT_CALL_MS);
    r = CALL_OK (c, "{op: 'describe_collection', collection: 'crash'}");
    assert_int_equal (qv_it_int (qv_it_path (r, "rows")), 27 * BATCH);
    qv_doc_destroy (&r);
    assert_int_equal (qv_it_stat (c, "wal_applied"), applied + 7);
    qv_it_client_destroy (&c);
    //  (the WAL objects before the checkpoint are gone)
    char path [PATH_MAX + 64];
    if (!qv_it_s3 ()) {
        snprintf (path, sizeof path, "%s/wal/0", server->dir);
        DIR *dir = opendir (path);
        assert_non_null (dir);
        struct dirent *e;
        size_t objects = 0;
        while ((e = readdir (dir))) {
            if (e->d_name [0] < '0' || e->d_name [0] > '9')
                continue;           //  ".", "..", temp files
            if (strtoll (e->d_name, NULL, 10) < flushed)
                fail_msg ("WAL object %s is below the checkpoint %lld", e->d_name,
                          (long long) flushed);
            objects++;
        }
        closedir (dir);
        assert_true (objects >= 1);       //  at least the fence of this restart
    }
    qv_it_server_destroy (&server);
}

//  (f) deletes beside a flush. Concurrent deletes are logged as one WAL object whose
//  records the searcher applies one at a time; when the last unflushed segment's write
//  completes between two of them, the manifest it triggers must not put its checkpoint
//  past that object, or the deletes applied after it are lost at a kill -9 (replay
//  starts after the object, and the manifest does not have them).
#define DELETERS 4
#define DELETE_ROUNDS 60

typedef struct {
    s_world_t *world;
    uint32_t batch;
} s_row_deleter_t;

//  Deletes the rows of one batch, one per request, until stopped.
static void *
s_row_deleter (void *arg)
{
    s_row_deleter_t *d = arg;
    s_world_t *world = d->world;
    qv_it_client_t *c = qv_it_client_new (world->endpoint, QV_IT_CALL_MS);
    for (int i = 0; i < BATCH && !atomic_load (&world->stop); i++) {
        long long id = (long long) s_first_id (d->batch) + i;
        qv_doc_t *r = qv_it_callf (c, "{op: 'delete', collection: 'crash', ids: [%lld]}", id);
        bool ok = qv_it_ok (r) && qv_it_int (qv_it_path (r, "deleted")) == 1;
        if (!ok) {
            fprintf (stderr, "delete of id %lld: %s %s\n", id, r ? qv_it_code (r) : "no reply",
                     r ? qv_it_error (r) : "");
            atomic_fetch_add (&world->errors, 1);
        }
        qv_doc_destroy (&r);
        pthread_mutex_lock (&world->mutex);
        world->batches [d->batch].del [i] = ok ? D_ACKED : D_NONE;
        pthread_mutex_unlock (&world->mutex);
    }
    qv_it_client_destroy (&c);
    return NULL;
}

static void
test_deletes_beside_flush (void **state)
{
    (void) state;
    qv_it_server_t *server = s_started (NULL);
    s_world_t *world = s_world_new (false, false);
    unsigned rng = s_seed + 31;
    for (int round = 0; round < DELETE_ROUNDS; round++) {
        //  One growing segment, the only unflushed one; its rows are deleted while
        //  the flush writes it.
        world->endpoint = server->endpoint;
        qv_it_client_t *c = qv_it_client_new (server->endpoint, QV_IT_CALL_MS);
        uint32_t first = world->nbatches;
        s_insert_batches (c, first, first + DELETERS);
        for (uint32_t b = first; b < first + DELETERS; b++)
            world->batches [b].state = B_ACKED;
        world->nbatches += DELETERS;
        atomic_store (&world->stop, false);
        pthread_t threads [DELETERS];
        s_row_deleter_t args [DELETERS];
        for (int i = 0; i < DELETERS; i++) {
            args [i] = (s_row_deleter_t) { world, first + (uint32_t) i };
            pthread_create (&threads [i], NULL, s_row_deleter, &args [i]);
        }
        zclock_sleep (rand_r (&rng) % 4);
        qv_doc_t *r = CALL_OK (c, "{op: 'flush', collection: 'crash'}");
        qv_doc_destroy (&r);
        zclock_sleep (rand_r (&rng) % 4);
        atomic_store (&world->stop, true);
        for (int i = 0; i < DELETERS; i++)
            pthread_join (threads [i], NULL);
        qv_it_client_destroy (&c);
        assert_int_equal (atomic_load (&world->errors), 0);
        //  Every delete has its reply: kill -9 with no write in flight
        assert_int_equal (qv_it_server_kill (server), 0);
        if (qv_it_server_restart (server))
            fail_msg ("round %d: no restart after kill -9", round);
        char when [64];
        snprintf (when, sizeof when, "deletes beside a flush, round %d", round);
        s_verify (world, server, when);
    }
    s_world_destroy (&world);
    qv_it_server_destroy (&server);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_kill_during_writes),
        cmocka_unit_test (test_kill_during_flushes),
        cmocka_unit_test (test_crash_loop),
        cmocka_unit_test (test_sigterm),
        cmocka_unit_test (test_stop_limit),
        cmocka_unit_test (test_corrupt_wal),
        cmocka_unit_test (test_corrupt_segment),
        cmocka_unit_test (test_corrupt_manifest),
        cmocka_unit_test (test_lock),
        cmocka_unit_test (test_replay_tail),
        cmocka_unit_test (test_deletes_beside_flush),
    };
    if (getenv ("QV_IT_ONLY"))      //  e.g. QV_IT_ONLY=test_sigterm
        cmocka_set_test_filter (getenv ("QV_IT_ONLY"));
    return cmocka_run_group_tests (tests, s_group_setup, NULL);
}
