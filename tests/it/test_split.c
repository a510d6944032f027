//  The writer in two processes: a proxy process (`quiver serve --roles proxy --writer
//  ENDPOINT`) in front of a writer core (`--roles segment-manager,meta,flusher`), with
//  a searcher process (`--roles searcher`) answering the reads, all real: nats-server
//  with JetStream and three quiver processes on one data directory.
//  - Every kind of request through the proxy: DDL, inserts, deletes by filter and by
//    ids, searches, counts, gets, flush, an index; a second proxy process keeps its
//    catalog in step with DDL made through the first.
//  - kill -9 of the writer core during inserts through the proxy: every request is
//    answered (UNAVAILABLE while it is gone, never a hang), the proxy reconnects to
//    the restarted core, and every acknowledged row is there.
//  - kill -9 of the proxy: a new one takes the catalog from the writer core and serves.
//  - The writer core frozen (SIGSTOP): requests through the proxy answered UNAVAILABLE
//    in seconds (heartbeats), and served again once it resumes.
//  - JetStream ingestion through a proxy process (--ingest-stream): exactly once across
//    kill -9 of the writer core and of the proxy, in stream order with deletes by
//    filter in the stream; a second proxy given the same stream
//    waits as a standby and takes over after kill -9 of the first, or when the first
//    stalls (SIGSTOP) past the lease; a reply of the core lost on its way (test hook):
//    the link answers it once overdue and the stream goes on, exactly once.
//  - A proxy without --writer finds the core holding the write lease in NATS; kill -9
//    of that core under inserts: a standby core (waiting for the lease on another
//    endpoint) takes over, the proxy follows it, every acknowledged row is there.
#include "qv_it_nats.h"
#include "qv_it_server.h"
#include "qv_it_sift.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/wait.h>

#define DIM 8
#define BATCH 100

typedef struct {
    qv_itn_nats_t nats;
    qv_itn_quiver_t core;           //  segment-manager,meta,flusher (with meta: segment-manager)
    qv_itn_quiver_t meta;           //  with meta: meta,flusher
    qv_itn_quiver_t meta2;          //  a second meta process, waiting for the meta lease
    qv_itn_quiver_t searcher;
    qv_itn_quiver_t searcher2;      //  with meta
    qv_itn_quiver_t proxy [2];
    qv_itn_quiver_t standby;        //  a second writer core, waiting for the lease
    bool discover;                  //  proxies find the core in NATS (no --writer)
    const char *proxy_args;         //  more options for proxy 0
    bool proxy_args_both;           //  ... and for proxy 1
} s_env_t;

static int
s_start_proxy (s_env_t *env, int i)
{
    qv_itn_quiver_t *p = &env->proxy [i];
    snprintf (p->data, sizeof p->data, "%s", env->core.data);     //  names the store
    char args [512];
    const char *more = (i == 0 || env->proxy_args_both) && env->proxy_args ? env->proxy_args : "";
    if (env->discover)
        snprintf (args, sizeof args, "--roles proxy %s", more);
    else
        snprintf (args, sizeof args, "--roles proxy --writer %s %s", env->core.endpoint, more);
    return qv_itn_quiver_start (p, env->nats.url, args, 60000);
}

//  The writer core answers no ping (it speaks to proxies only): it is up once a proxy
//  answers, which needs its catalog.
//  With meta, the core is two processes too: the segment manager and a meta process
//  (which answers ping once it holds the meta lease and has recovered), and a second
//  searcher process follows the feed.
static int
s_setup_env_meta (void **state, bool discover, const char *proxy_args, bool meta)
{
    if (!qv_itn_have_nats_server ())
        skip ();
    s_env_t *env = calloc (1, sizeof *env);
    env->discover = discover;
    env->proxy_args = proxy_args;
    assert_int_equal (qv_itn_nats_start (&env->nats), 0);
    if (proxy_args && strstr (proxy_args, "--ingest-stream"))
        assert_int_equal (qv_itn_add_stream (env->nats.url, "INGEST", "ingest.>"), 0);
    assert_int_equal (qv_itn_quiver_start (&env->core, env->nats.url, meta
                      ? "--roles segment-manager --lease-ttl-ms 2000"
                      : "--roles segment-manager,meta,flusher --lease-ttl-ms 2000", 0), 0);
    if (meta) {
        snprintf (env->meta.data, sizeof env->meta.data, "%s", env->core.data);
        assert_int_equal (qv_itn_quiver_start (&env->meta, env->nats.url,
                          "--roles meta,flusher --lease-ttl-ms 2000", 60000), 0);
    }
    snprintf (env->searcher.data, sizeof env->searcher.data, "%s", env->core.data);
    assert_int_equal (qv_itn_quiver_start (&env->searcher, env->nats.url, "--roles searcher",
                                           60000), 0);
    if (meta) {
        snprintf (env->searcher2.data, sizeof env->searcher2.data, "%s", env->core.data);
        assert_int_equal (qv_itn_quiver_start (&env->searcher2, env->nats.url,
                                               "--roles searcher", 60000), 0);
    }
    assert_int_equal (s_start_proxy (env, 0), 0);
    *state = env;
    return 0;
}

static int
s_setup_env (void **state, bool discover, const char *proxy_args)
{
    return s_setup_env_meta (state, discover, proxy_args, false);
}

static int
s_setup_meta (void **state)
{
    return s_setup_env_meta (state, true, NULL, true);
}

static int
s_setup (void **state)
{
    return s_setup_env (state, false, NULL);
}

static int
s_setup_discover (void **state)
{
    return s_setup_env (state, true, NULL);
}

static int
s_setup_ingest (void **state)
{
    return s_setup_env (state, true, "--ingest-stream INGEST");
}

//  Two proxies given the same stream (test_split_ingest_standby), with a short lease.
static int
s_setup_ingest_two (void **state)
{
    int rc = s_setup_env (state, true, "--ingest-stream INGEST --lease-ttl-ms 2000");
    ((s_env_t *) *state)->proxy_args_both = true;
    return rc;
}

//  The same with the connection between the proxy and the core dropped once in the
//  middle of the stream (test hook QV_FAULT_LINK_BLIP): writes the core logged but
//  whose answers were lost come again, and are not logged twice.
static int
s_setup_ingest_blip (void **state)
{
    setenv ("QV_FAULT_LINK_BLIP", "150", 1);
    int rc = s_setup_env (state, true, "--ingest-stream INGEST");
    unsetenv ("QV_FAULT_LINK_BLIP");
    return rc;
}

static int
s_teardown (void **state)
{
    s_env_t *env = *state;
    if (!env)
        return 0;
    for (int i = 0; i < 2; i++)
        if (env->proxy [i].pid)
            assert_int_equal (qv_itn_quiver_stop (&env->proxy [i], SIGTERM), 0);
    if (env->searcher.pid)
        assert_int_equal (qv_itn_quiver_stop (&env->searcher, SIGTERM), 0);
    if (env->searcher2.pid)
        assert_int_equal (qv_itn_quiver_stop (&env->searcher2, SIGTERM), 0);
    if (env->core.pid)
        assert_int_equal (qv_itn_quiver_stop (&env->core, SIGTERM), 0);
    if (env->meta.pid)
        assert_int_equal (qv_itn_quiver_stop (&env->meta, SIGTERM), 0);
    if (env->meta2.pid)
        assert_int_equal (qv_itn_quiver_stop (&env->meta2, SIGTERM), 0);
    if (env->standby.pid)
        assert_int_equal (qv_itn_quiver_stop (&env->standby, SIGTERM), 0);
    qv_itn_nats_stop (&env->nats);
    qv_itn_remove_dir (env->nats.dir);
    qv_itn_remove_dir (env->core.data);
    free (env);
    return 0;
}

//  One request {op, collection, extra...} built by fill; the reply (NULL on timeout).
static qv_doc_t *
s_call (const char *endpoint, const char *op, const char *coll, int nextra,
        void (*fill) (qv_wr_t *w, const void *arg), const void *arg)
{
    qv_wr_t *w = qv_wr_new ();
    qv_wr_map (w, 2 + (size_t) nextra);
    qv_wr_str (w, "op"); qv_wr_str (w, op);
    qv_wr_str (w, "collection"); qv_wr_str (w, coll);
    if (fill)
        fill (w, arg);
    qv_doc_t *r = qv_itn_call (endpoint, w, 15000);
    qv_wr_destroy (&w);
    return r;
}

static void
s_fill_insert (qv_wr_t *w, const void *arg)
{
    int64_t first = *(const int64_t *) arg;
    float vecs [BATCH * DIM];
    for (int r = 0; r < BATCH; r++)
        qv_itn_vector (vecs + r * DIM, DIM, first + r);
    qv_wr_str (w, "columns");
    qv_wr_map (w, 2);
    qv_wr_str (w, "id");
    qv_wr_array (w, BATCH);
    for (int r = 0; r < BATCH; r++)
        qv_wr_int (w, first + r);
    qv_wr_str (w, "vec");
    qv_wr_bin (w, vecs, sizeof vecs);
}

//  Inserts ids first.. first+BATCH-1: the reply's code ("OK" or the error's).
static void
s_insert (const char *endpoint, const char *coll, int64_t first, char *code, size_t size)
{
    qv_doc_t *r = s_call (endpoint, "insert", coll, 1, s_fill_insert, &first);
    assert_non_null (r);            //  always answered
    if (qv_itn_ok (r))
        snprintf (code, size, "OK");
    else
        qv_itn_code (r, code, size);
    qv_doc_destroy (&r);
}

static void
s_fill_filter (qv_wr_t *w, const void *arg)
{
    qv_wr_str (w, "filter"); qv_wr_str (w, (const char *) arg);
}

static void
s_fill_count (qv_wr_t *w, const void *arg)
{
    qv_wr_str (w, "filter"); qv_wr_str (w, (const char *) arg);
    qv_wr_str (w, "output_fields"); qv_wr_array (w, 1); qv_wr_str (w, "count(*)");
}

//  count(*) of the rows matching filter, read through endpoint (strong: every
//  acknowledged write).
typedef struct {
    const char *filter;
    const char *partition;          //  or NULL
} s_count_t;

static void
s_fill_count_in (qv_wr_t *w, const void *arg)
{
    const s_count_t *c = arg;
    s_fill_count (w, c->filter);
    if (c->partition) {
        qv_wr_str (w, "partitions"); qv_wr_array (w, 1); qv_wr_str (w, c->partition);
    }
}

static int64_t
s_count_in (const char *endpoint, const char *coll, const char *filter, const char *partition)
{
    s_count_t arg = { filter, partition };
    int nextra = partition ? 3 : 2;
    qv_doc_t *r = s_call (endpoint, "query", coll, nextra, s_fill_count_in, &arg);
    //  A proxy just started learns of the searcher processes within a second or two
    //  (their NATS KV entries): until then reads are answered UNAVAILABLE
    char code [64] = "";
    for (int i = 0; i < 100 && r && !qv_itn_ok (r); i++) {
        qv_itn_code (r, code, sizeof code);
        if (!streq (code, "UNAVAILABLE"))
            break;
        qv_doc_destroy (&r);
        zclock_sleep (100);
        r = s_call (endpoint, "query", coll, nextra, s_fill_count_in, &arg);
    }
    int64_t n = -1;
    if (r && !qv_itn_ok (r)) {
        qv_itn_code (r, code, sizeof code);
        fprintf (stderr, "count on %s: %s\n", coll, code);
    }
    if (qv_itn_ok (r)) {
        const qv_val_t *rows = qv_val_get (qv_doc_root (r), "rows");
        const qv_val_t *row = rows ? qv_val_at (rows, 0) : NULL;
        if (row)
            qv_val_int (qv_val_get (row, "count(*)"), &n);
    }
    qv_doc_destroy (&r);
    return n;
}

static int64_t
s_count (const char *endpoint, const char *coll, const char *filter)
{
    return s_count_in (endpoint, coll, filter, NULL);
}

static void
s_fill_search (qv_wr_t *w, const void *arg)
{
    float v [DIM];
    qv_itn_vector (v, DIM, *(const int64_t *) arg);
    qv_wr_str (w, "vectors"); qv_wr_array (w, 1); qv_wr_bin (w, v, sizeof v);
    qv_wr_str (w, "limit"); qv_wr_uint (w, 1);
}

//  The id of the nearest row to the vector of key.
static int64_t
s_nearest (const char *endpoint, const char *coll, int64_t key)
{
    qv_doc_t *r = s_call (endpoint, "search", coll, 2, s_fill_search, &key);
    int64_t id = -1;
    if (qv_itn_ok (r)) {
        const qv_val_t *res = qv_val_get (qv_doc_root (r), "results");
        const qv_val_t *hits = res ? qv_val_at (res, 0) : NULL;
        const qv_val_t *hit = hits ? qv_val_at (hits, 0) : NULL;
        if (hit)
            qv_val_int (qv_val_get (hit, "id"), &id);
    }
    qv_doc_destroy (&r);
    return id;
}

static void
s_on_cdc (natsConnection *nc, natsSubscription *sub, natsMsg *msg, void *closure)
{
    (void) nc; (void) sub;
    atomic_fetch_add ((atomic_int *) closure, 1);
    natsMsg_Destroy (msg);
}

static void
test_split_requests (void **state)
{
    s_env_t *env = *state;
    const char *p = env->proxy [0].endpoint;
    char code [64];
    //  The core answers a client's ping (a health check) and refuses other requests,
    //  naming the proxy
    const char *ops [] = { "ping", "list_collections" };
    for (int i = 0; i < 2; i++) {
        qv_wr_t *w = qv_wr_new ();
        qv_wr_map (w, 1);
        qv_wr_str (w, "op"); qv_wr_str (w, ops [i]);
        qv_doc_t *r = qv_itn_call (env->core.endpoint, w, 15000);
        qv_wr_destroy (&w);
        assert_non_null (r);
        qv_itn_code (r, code, sizeof code);
        if (i == 0)
            assert_true (qv_itn_ok (r));
        else
            assert_string_equal (code, "INVALID_ARGUMENT");
        qv_doc_destroy (&r);
    }
    //  The change feed: published by the writer core (its searcher applies the records)
    natsConnection *nc = qv_itn_nats_connect (env->nats.url);
    assert_non_null (nc);
    atomic_int events = 0;
    natsSubscription *sub = NULL;
    assert_int_equal (natsConnection_Subscribe (&sub, nc, "quiver.cdc.c", s_on_cdc, &events),
                      NATS_OK);
    natsConnection_Flush (nc);
    assert_true (qv_itn_create (p, "c", DIM, false, 1));
    for (int64_t b = 0; b < 10; b++) {
        s_insert (p, "c", b * BATCH, code, sizeof code);
        assert_string_equal (code, "OK");
    }
    assert_int_equal (s_count (p, "c", ""), 10 * BATCH);
    assert_int_equal (s_nearest (p, "c", 123), 123);
    //  create_collection and 10 inserts
    int64_t end = zclock_mono () + 10000;
    while (zclock_mono () < end && atomic_load (&events) < 11)
        zclock_sleep (20);
    assert_int_equal (atomic_load (&events), 11);
    natsSubscription_Destroy (sub);
    natsConnection_Destroy (nc);
    //  A delete by filter, resolved by the writer core's searcher, counted
    qv_doc_t *r = s_call (p, "delete", "c", 1, s_fill_filter, "id < 100");
    assert_true (qv_itn_ok (r));
    assert_int_equal (qv_itn_uint (r, "deleted"), 100);
    qv_doc_destroy (&r);
    assert_int_equal (s_count (p, "c", ""), 9 * BATCH);
    assert_int_equal (s_count (p, "c", "id < 100"), 0);
    //  flush, then an index built by the writer core and loaded by the searcher
    r = s_call (p, "flush", "c", 0, NULL, NULL);
    assert_true (qv_itn_ok (r));
    qv_doc_destroy (&r);
    assert_int_equal (s_count (p, "c", ""), 9 * BATCH);
    //  A second proxy: DDL made through the first reaches its catalog
    assert_int_equal (s_start_proxy (env, 1), 0);
    const char *p2 = env->proxy [1].endpoint;
    assert_true (qv_itn_create (p, "d", DIM, false, 1));
    s_insert (p2, "d", 0, code, sizeof code);
    assert_string_equal (code, "OK");
    assert_int_equal (s_count (p2, "d", ""), BATCH);
    assert_int_equal (s_count (p, "d", ""), BATCH);
    //  ... and a drop
    qv_wr_t *w = qv_wr_new ();
    qv_wr_map (w, 2);
    qv_wr_str (w, "op"); qv_wr_str (w, "drop_collection");
    qv_wr_str (w, "collection"); qv_wr_str (w, "d");
    r = qv_itn_call (p, w, 15000);
    qv_wr_destroy (&w);
    assert_true (qv_itn_ok (r));
    qv_doc_destroy (&r);
    s_insert (p2, "d", 1000, code, sizeof code);
    assert_string_equal (code, "NOT_FOUND");
}

//  Two proxy processes create a partition of one collection at the same moment: the
//  writer core numbers them, so each keeps its own rows.
static void
test_split_partitions (void **state)
{
    s_env_t *env = *state;
    assert_int_equal (s_start_proxy (env, 1), 0);
    const char *p [2] = { env->proxy [0].endpoint, env->proxy [1].endpoint };
    assert_true (qv_itn_create (p [0], "parts", DIM, false, 1));
    char code [64];
    s_insert (p [1], "parts", 0, code, sizeof code);     //  proxy 1 knows the collection
    assert_string_equal (code, "OK");
    for (int round = 0; round < 5; round++) {
        zsock_t *d [2];
        char name [2][16];
        for (int i = 0; i < 2; i++) {
            d [i] = zsock_new_dealer (p [i]);
            assert_non_null (d [i]);
            snprintf (name [i], sizeof name [i], "p%d_%d", round, i);
        }
        for (int i = 0; i < 2; i++) {
            qv_wr_t *w = qv_wr_new ();
            qv_wr_map (w, 3);
            qv_wr_str (w, "op"); qv_wr_str (w, "create_partition");
            qv_wr_str (w, "collection"); qv_wr_str (w, "parts");
            qv_wr_str (w, "partition"); qv_wr_str (w, name [i]);
            size_t size;
            const void *data = qv_wr_data (w, &size);
            assert_int_equal (zmq_send (zsock_resolve (d [i]), data, size, 0), (int) size);
            qv_wr_destroy (&w);
        }
        for (int i = 0; i < 2; i++) {
            zsock_set_rcvtimeo (d [i], 15000);
            zframe_t *f = zframe_recv (d [i]);
            assert_non_null (f);
            int rc = 0;
            qv_doc_t *r = qv_doc_parse (zframe_data (f), zframe_size (f), 1000, &rc);
            assert_true (qv_itn_ok (r));
            qv_doc_destroy (&r);
            zframe_destroy (&f);
            zsock_destroy (&d [i]);
        }
        //  Rows in each through the other proxy; each partition holds only its own
        for (int i = 0; i < 2; i++) {
            qv_wr_t *w = qv_wr_new ();
            qv_wr_map (w, 4);
            qv_wr_str (w, "op"); qv_wr_str (w, "insert");
            qv_wr_str (w, "collection"); qv_wr_str (w, "parts");
            qv_wr_str (w, "partition"); qv_wr_str (w, name [i]);
            int64_t first = 1000 + (int64_t) (round * 2 + i) * BATCH;
            s_fill_insert (w, &first);
            qv_doc_t *r = qv_itn_call (p [1 - i], w, 15000);
            qv_wr_destroy (&w);
            assert_true (qv_itn_ok (r));
            qv_doc_destroy (&r);
        }
        for (int i = 0; i < 2; i++)
            assert_int_equal (s_count_in (p [i], "parts", "", name [i]), BATCH);
    }
}

static void
s_fill_alter (qv_wr_t *w, const void *arg)
{
    const char *const *kv = arg;    //  {"ttl_seconds", "1"} or {"consistency", "eventually"}
    qv_wr_str (w, kv [0]);
    if (streq (kv [0], "ttl_seconds"))
        qv_wr_uint (w, strtoull (kv [1], NULL, 10));
    else
        qv_wr_str (w, kv [1]);
}

static void
s_alter (const char *endpoint, const char *coll, const char *key, const char *value)
{
    const char *kv [2] = { key, value };
    qv_doc_t *r = s_call (endpoint, "alter_collection", coll, 1, s_fill_alter, kv);
    assert_true (qv_itn_ok (r));
    qv_doc_destroy (&r);
}

//  alter_collection through either proxy process reaches the searcher process that
//  answers the reads (rows expire there) and the other proxy (describe).
static void
test_split_alter (void **state)
{
    s_env_t *env = *state;
    assert_int_equal (s_start_proxy (env, 1), 0);
    const char *p [2] = { env->proxy [0].endpoint, env->proxy [1].endpoint };
    assert_true (qv_itn_create (p [0], "aging", DIM, false, 1));
    char code [64];
    s_insert (p [0], "aging", 0, code, sizeof code);
    assert_string_equal (code, "OK");
    assert_int_equal (s_count (p [1], "aging", ""), BATCH);
    zclock_sleep (2000);
    s_alter (p [1], "aging", "ttl_seconds", "1");
    assert_int_equal (s_count (p [0], "aging", ""), 0);
    assert_int_equal (s_count (p [1], "aging", ""), 0);
    s_alter (p [0], "aging", "consistency", "eventually");
    for (int i = 0; i < 2; i++) {
        qv_doc_t *r = s_call (p [i], "describe_collection", "aging", 0, NULL, NULL);
        assert_true (qv_itn_ok (r));
        const qv_val_t *root = qv_doc_root (r);
        uint64_t ttl = 0;
        assert_int_equal (qv_val_uint (qv_val_get (root, "ttl_seconds"), &ttl), 0);
        assert_int_equal (ttl, 1);
        assert_true (qv_val_is (qv_val_get (root, "consistency"), "eventually"));
        qv_doc_destroy (&r);
    }
    s_alter (p [0], "aging", "consistency", "strong");
    s_alter (p [0], "aging", "ttl_seconds", "0");
    assert_int_equal (s_count (p [1], "aging", ""), BATCH);
}

static void
s_fill_get (qv_wr_t *w, const void *arg)
{
    qv_wr_str (w, "ids"); qv_wr_array (w, 1); qv_wr_int (w, *(const int64_t *) arg);
}

//  Strong reads through one proxy process see every write acknowledged through
//  another: insert through proxy 0, get through proxy 1 at once.
static void
test_split_strong_across_proxies (void **state)
{
    s_env_t *env = *state;
    assert_int_equal (s_start_proxy (env, 1), 0);
    const char *p0 = env->proxy [0].endpoint, *p1 = env->proxy [1].endpoint;
    assert_true (qv_itn_create (p0, "s", DIM, false, 1));
    char code [64];
    s_insert (p1, "s", 0, code, sizeof code);   //  proxy 1 knows it, its reads go
    assert_string_equal (code, "OK");
    assert_int_equal (s_count (p1, "s", ""), BATCH);
    int misses = 0;
    for (int64_t i = 0; i < 200; i++) {
        int64_t first = 1000 + i * BATCH;
        s_insert (p0, "s", first, code, sizeof code);
        assert_string_equal (code, "OK");
        qv_doc_t *r = s_call (p1, "get", "s", 1, s_fill_get, &first);
        assert_true (qv_itn_ok (r));
        const qv_val_t *rows = qv_val_get (qv_doc_root (r), "rows");
        misses += !rows || qv_val_len (rows) != 1;
        qv_doc_destroy (&r);
    }
    assert_int_equal (misses, 0);
}

//  The core frozen (SIGSTOP, as a hung host would be) with an insert on its way: the
//  proxy answers it UNAVAILABLE within the call's 15 s, since ZMTP heartbeats take
//  a core silent for 5 s for gone (before, the insert waited for a reply that did not
//  come, and so did every request after it); the next insert is answered at once;
//  resumed (SIGCONT), the core is reached again, and the batches acknowledged are there.
static void
test_split_core_frozen (void **state)
{
    s_env_t *env = *state;
    const char *p = env->proxy [0].endpoint;
    assert_true (qv_itn_create (p, "f", DIM, false, 1));
    char code [64];
    s_insert (p, "f", 0, code, sizeof code);
    assert_string_equal (code, "OK");
    assert_int_equal (kill (env->core.pid, SIGSTOP), 0);
    s_insert (p, "f", BATCH, code, sizeof code);        //  answered (s_insert asserts it)
    assert_string_equal (code, "UNAVAILABLE");
    s_insert (p, "f", 2 * BATCH, code, sizeof code);
    assert_string_equal (code, "UNAVAILABLE");
    assert_int_equal (kill (env->core.pid, SIGCONT), 0);
    int64_t end = zclock_mono () + 30000;
    do {
        s_insert (p, "f", 3 * BATCH, code, sizeof code);
        if (streq (code, "OK"))
            break;
        assert_string_equal (code, "UNAVAILABLE");
        zclock_sleep (200);
    } while (zclock_mono () < end);
    assert_string_equal (code, "OK");
    //  Batches 0 and 3 were acknowledged; 1's outcome is unknown (the core may have
    //  read it on resuming); 2 never left the proxy
    assert_int_equal (s_count (p, "f", "id < 100"), BATCH);
    assert_int_equal (s_count (p, "f", "id >= 300 and id < 400"), BATCH);
    assert_int_equal (s_count (p, "f", "id >= 200 and id < 300"), 0);
}

//  kill -9 of the writer core between inserts through the proxy, and a restart.
static void
test_split_core_killed (void **state)
{
    s_env_t *env = *state;
    const char *p = env->proxy [0].endpoint;
    char code [64];
    assert_true (qv_itn_create (p, "k", DIM, false, 1));
    bool acked [60] = { false };
    int down = 0;
    for (int b = 0; b < 60; b++) {
        if (b == 20)
            assert_int_equal (qv_itn_quiver_stop (&env->core, SIGKILL), 128 + SIGKILL);
        if (b == 25)                //  the same endpoint, which the proxy reconnects to
            assert_int_equal (qv_itn_quiver_restart (&env->core, 0), 0);
        int64_t end = zclock_mono () + 30000;
        do {
            s_insert (p, "k", (int64_t) b * BATCH, code, sizeof code);
            if (streq (code, "OK"))
                break;
            assert_string_equal (code, "UNAVAILABLE");
            down++;
            if (b < 25)
                break;              //  gone: answered, not retried
            zclock_sleep (100);
        } while (zclock_mono () < end);
        acked [b] = streq (code, "OK");
    }
    for (int b = 0; b < 20; b++)
        assert_true (acked [b]);
    for (int b = 25; b < 60; b++)
        assert_true (acked [b]);
    assert_true (down >= 5);        //  20..24 at least
    //  Every acknowledged batch is there, whole
    int64_t want = 0;
    for (int b = 0; b < 60; b++)
        want += acked [b] ? BATCH : 0;
    int64_t got = -1;
    int64_t end = zclock_mono () + 30000;
    while (zclock_mono () < end && (got = s_count (p, "k", "")) != want)
        zclock_sleep (200);
    assert_int_equal (got, want);
    for (int b = 0; b < 60; b++)
        if (acked [b]) {
            char filter [96];
            snprintf (filter, sizeof filter, "id >= %d and id < %d", b * BATCH, (b + 1) * BATCH);
            assert_int_equal (s_count (p, "k", filter), BATCH);
        }
}

//  kill -9 of the proxy: a new one takes the catalog from the writer core.
static void
test_split_proxy_killed (void **state)
{
    s_env_t *env = *state;
    char code [64];
    assert_true (qv_itn_create (env->proxy [0].endpoint, "q", DIM, false, 1));
    s_insert (env->proxy [0].endpoint, "q", 0, code, sizeof code);
    assert_string_equal (code, "OK");
    assert_int_equal (qv_itn_quiver_stop (&env->proxy [0], SIGKILL), 128 + SIGKILL);
    assert_int_equal (s_start_proxy (env, 0), 0);
    const char *p = env->proxy [0].endpoint;
    assert_int_equal (s_count (p, "q", ""), BATCH);
    s_insert (p, "q", BATCH, code, sizeof code);
    assert_string_equal (code, "OK");
    assert_int_equal (s_count (p, "q", ""), 2 * BATCH);
    //  DDL after the restart: the core's answer to the dead proxy's peer finds it gone
    //  (it is forgotten: "a proxy process went away" in the log)
    assert_true (qv_itn_create (p, "q2", DIM, false, 1));
    s_insert (p, "q2", 0, code, sizeof code);
    assert_string_equal (code, "OK");
}

//  A proxy without --writer: found the core in NATS (its first requests above worked);
//  a standby core on another endpoint takes the lease over after kill -9 of the core,
//  and the proxy follows it.
static void
test_split_core_failover (void **state)
{
    s_env_t *env = *state;
    const char *p = env->proxy [0].endpoint;
    char code [64];
    assert_true (qv_itn_create (p, "f", DIM, false, 1));
    snprintf (env->standby.data, sizeof env->standby.data, "%s", env->core.data);
    assert_int_equal (qv_itn_quiver_start (&env->standby, env->nats.url,
                      "--roles segment-manager,meta,flusher --lease-ttl-ms 2000", 0), 0);
    bool acked [40] = { false };
    int down = 0;
    for (int b = 0; b < 40; b++) {
        if (b == 15)
            assert_int_equal (qv_itn_quiver_stop (&env->core, SIGKILL), 128 + SIGKILL);
        int64_t end = zclock_mono () + 60000;
        do {
            s_insert (p, "f", (int64_t) b * BATCH, code, sizeof code);
            if (streq (code, "OK"))
                break;
            assert_string_equal (code, "UNAVAILABLE");
            down++;
            zclock_sleep (100);
        } while (zclock_mono () < end);
        acked [b] = streq (code, "OK");
    }
    for (int b = 0; b < 40; b++)
        assert_true (acked [b]);
    assert_true (down >= 1);        //  batch 15 met the core gone
    //  The standby serves: every acknowledged batch is there, whole, and it takes DDL
    int64_t got = -1;
    int64_t end = zclock_mono () + 30000;
    while (zclock_mono () < end && (got = s_count (p, "f", "")) != 40 * BATCH)
        zclock_sleep (200);
    assert_int_equal (got, 40 * BATCH);
    for (int b = 0; b < 40; b++) {
        char filter [96];
        snprintf (filter, sizeof filter, "id >= %d and id < %d", b * BATCH, (b + 1) * BATCH);
        assert_int_equal (s_count (p, "f", filter), BATCH);
    }
    assert_true (qv_itn_create (p, "g", DIM, false, 1));
    s_insert (p, "g", 0, code, sizeof code);
    assert_string_equal (code, "OK");
    //  A second proxy started now finds the standby, not the dead core
    assert_int_equal (s_start_proxy (env, 1), 0);
    assert_int_equal (s_count (env->proxy [1].endpoint, "g", ""), BATCH);
}

//  Stat key of the server at endpoint once it reaches want (or the deadline passes).
static uint64_t
s_wait_stat (const char *endpoint, const char *key, uint64_t want, int ms)
{
    int64_t end = zclock_mono () + ms;
    uint64_t v = 0;
    while (zclock_mono () < end) {
        v = qv_itn_stat (endpoint, key);
        if (v != UINT64_MAX && v >= want)
            break;
        zclock_sleep (20);
    }
    return v;
}

#define S_MSGS 400

//  Publishes messages from .. to - 1 of S_MSGS, each of BATCH auto-id rows, into
//  collection "ing" (created with the first) through the stream; the last stream
//  sequence.
static uint64_t
s_ingest_publish_part (s_env_t *env, int from, int to)
{
    if (from == 0)
        assert_true (qv_itn_create (env->proxy [0].endpoint, "ing", DIM, true, 1));
    natsConnection *nc = qv_itn_nats_connect (env->nats.url);
    assert_non_null (nc);
    jsCtx *js = NULL;
    assert_int_equal (natsConnection_JetStream (&js, nc, NULL), NATS_OK);
    qv_wr_t *w = qv_wr_new ();
    uint64_t last = 0;
    for (int m = from; m < to; m++) {
        qv_wr_reset (w);
        qv_itn_insert_payload (w, -1, BATCH, DIM, (uint32_t) m);
        size_t size;
        const void *data = qv_wr_data (w, &size);
        jsPubAck *ack = NULL;
        assert_int_equal (js_Publish (&ack, js, "ingest.insert.ing", data, (int) size, NULL,
                                      NULL), NATS_OK);
        last = ack->Sequence;
        jsPubAck_Destroy (ack);
    }
    qv_wr_destroy (&w);
    jsCtx_Destroy (js);
    natsConnection_Destroy (nc);
    return last;
}

static uint64_t
s_ingest_publish (s_env_t *env)
{
    return s_ingest_publish_part (env, 0, S_MSGS);
}

//  Every message of the stream logged once: exactly S_MSGS * BATCH rows.
static void
s_ingest_check (const char *p, uint64_t last)
{
    assert_int_equal (s_wait_stat (p, "ingest_seq", last, 120000), last);
    int64_t got = -1;
    int64_t end = zclock_mono () + 30000;
    while (zclock_mono () < end && (got = s_count (p, "ing", "")) != S_MSGS * BATCH)
        zclock_sleep (200);
    assert_int_equal (got, S_MSGS * BATCH);
}

//  JetStream ingestion through the proxy process: 400 messages of 100 auto-id rows
//  published at once; the writer core killed with -9 in the middle and started again,
//  then the proxy: exactly 40,000 rows in the end (a message logged twice would add
//  rows, one lost would miss some).
static void
test_split_ingest_exactly_once (void **state)
{
    s_env_t *env = *state;
    const char *p = env->proxy [0].endpoint;
    uint64_t last = s_ingest_publish (env);
    //  kill -9 of the core while it logs the stream, then of the proxy
    uint64_t at = s_wait_stat (p, "ingest_seq", 60, 60000);
    assert_true (at >= 60 && at != UINT64_MAX);
    assert_int_equal (qv_itn_quiver_stop (&env->core, SIGKILL), 128 + SIGKILL);
    assert_int_equal (qv_itn_quiver_restart (&env->core, 0), 0);
    at = s_wait_stat (p, "ingest_seq", at + 60, 60000);
    assert_true (at != UINT64_MAX);
    //  The proxy process reports its own bridge's figures (the core's are 0)
    uint64_t applied = qv_itn_stat (p, "ingest_applied");
    assert_true (applied > 0 && applied != UINT64_MAX);
    assert_int_equal (qv_itn_quiver_stop (&env->proxy [0], SIGKILL), 128 + SIGKILL);
    assert_int_equal (s_start_proxy (env, 0), 0);
    p = env->proxy [0].endpoint;
    s_ingest_check (p, last);
}

//  Proxy 0 consuming, proxy 1 started as its standby (*p1: its endpoint), half the
//  stream published and a quarter logged: how far proxy 0 has logged it.
static uint64_t
s_two_consumers_started (s_env_t *env, const char **p1)
{
    const char *p0 = env->proxy [0].endpoint;
    assert_int_equal (s_wait_stat (p0, "ingest_leading", 1, 30000), 1);
    assert_int_equal (s_start_proxy (env, 1), 0);
    *p1 = env->proxy [1].endpoint;
    s_ingest_publish_part (env, 0, S_MSGS / 2);
    uint64_t at = s_wait_stat (p0, "ingest_seq", S_MSGS / 4, 60000);
    assert_true (at >= S_MSGS / 4 && at != UINT64_MAX);
    return at;
}

//  Two proxy processes given the same stream: the first consumes it, the second waits
//  as a standby (and serves its clients); kill -9 of the first once it has logged a
//  quarter of the stream (half of it published): the second takes the lease over once
//  it is not renewed and consumes the rest, exactly once (the messages the first had
//  in flight come again and are not logged twice). Then the first, started again, is
//  the standby, and takes over when the second is stopped.
static void
test_split_ingest_standby (void **state)
{
    s_env_t *env = *state;
    const char *p0 = env->proxy [0].endpoint, *p1;
    uint64_t at = s_two_consumers_started (env, &p1);
    assert_int_equal (qv_itn_quiver_stop (&env->proxy [0], SIGKILL), 128 + SIGKILL);
    assert_int_equal (qv_itn_stat (p1, "ingest_leading"), 0);
    assert_int_equal (qv_itn_stat (p1, "ingest_applied"), 0);
    assert_true (s_count (p1, "ing", "") >= S_MSGS / 4 * BATCH);     //  it serves reads
    uint64_t last = s_ingest_publish_part (env, S_MSGS / 2, S_MSGS);
    assert_int_equal (s_wait_stat (p1, "ingest_leading", 1, 30000), 1);
    s_ingest_check (p1, last);
    assert_int_equal (qv_itn_stat (p1, "ingest_leading"), 1);
    uint64_t applied = qv_itn_stat (p1, "ingest_applied");
    print_message ("the first proxy had logged %llu messages when killed; the standby applied %llu\n",
                   (unsigned long long) at, (unsigned long long) applied);
    assert_true (applied > 0 && applied != UINT64_MAX);
    //  The first again, now a standby; the second stopped (SIGTERM releases the lease):
    //  the first consumes again
    assert_int_equal (s_start_proxy (env, 0), 0);
    p0 = env->proxy [0].endpoint;
    assert_int_equal (qv_itn_quiver_stop (&env->proxy [1], SIGTERM), 0);
    assert_int_equal (s_wait_stat (p0, "ingest_leading", 1, 30000), 1);
    s_ingest_check (p0, last);
}

#define S_ROUNDS 60

//  Deletes by filter in the stream, through the proxy process: each is resolved to
//  keys (at the writer core) before it is logged, while later messages wait behind it.
//  kill -9 of the core in the middle: resolutions and writes in flight fail, the
//  bridge rewinds, and the stream's order holds: 75 rows per round
//  (qv_itn_publish_rounds). Before, a resolution the link failed came back without its
//  record, the proxy stayed "resolving", and the stream stalled.
static void
test_split_ingest_deletes_core_killed (void **state)
{
    s_env_t *env = *state;
    const char *p = env->proxy [0].endpoint;
    assert_true (qv_itn_create (p, "ord", DIM, false, 1));
    natsConnection *nc = qv_itn_nats_connect (env->nats.url);
    assert_non_null (nc);
    jsCtx *js = NULL;
    assert_int_equal (natsConnection_JetStream (&js, nc, NULL), NATS_OK);
    assert_int_equal (qv_itn_publish_rounds (js, "ord", DIM, 0, S_ROUNDS), 0);
    jsCtx_Destroy (js);
    natsConnection_Destroy (nc);
    uint64_t last = 3 * S_ROUNDS;
    uint64_t at = s_wait_stat (p, "ingest_seq", last / 4, 60000);
    assert_true (at >= last / 4 && at != UINT64_MAX);
    assert_int_equal (qv_itn_quiver_stop (&env->core, SIGKILL), 128 + SIGKILL);
    assert_int_equal (qv_itn_quiver_restart (&env->core, 0), 0);
    assert_int_equal (s_wait_stat (p, "ingest_seq", last, 120000), last);
    int64_t got = -1;
    int64_t end = zclock_mono () + 30000;
    while (zclock_mono () < end && (got = s_count (p, "ord", "")) != 75 * S_ROUNDS)
        zclock_sleep (200);
    print_message ("killed at stream message %llu; %llu rewinds\n", (unsigned long long) at,
                   (unsigned long long) qv_itn_stat (p, "ingest_retries"));
    if (got != 75 * S_ROUNDS) {
        //  Seen once (a -25 under ctest -j2, not reproduced in 33 runs): which rounds
        //  are off, and how (the upsert's 25 rows, ids 100r..100r+24, or the delete's)
        for (int r = 0; r < S_ROUNDS; r++) {
            char range [96], low [96];
            snprintf (range, sizeof range, "id >= %d and id < %d", 100 * r, 100 * r + 100);
            snprintf (low, sizeof low, "id >= %d and id < %d", 100 * r, 100 * r + 50);
            int64_t n = s_count (p, "ord", range);
            if (n != 75)
                print_message ("round %d (stream messages %d..%d): %lld rows, %lld of them "
                               "below id %d (25 expected)\n", r, 3 * r + 1, 3 * r + 3,
                               (long long) n, (long long) s_count (p, "ord", low), 100 * r + 50);
        }
        print_message ("ingest stats: seq %llu, applied %llu, bad %llu; searcher count %lld\n",
                       (unsigned long long) qv_itn_stat (p, "ingest_seq"),
                       (unsigned long long) qv_itn_stat (p, "ingest_applied"),
                       (unsigned long long) qv_itn_stat (p, "ingest_bad"),
                       (long long) s_count (env->searcher.endpoint, "ord", ""));
    }
    assert_int_equal (got, 75 * S_ROUNDS);
}

//  The consuming proxy paused (SIGSTOP, as a long stall would) for longer than the
//  lease: the standby takes over; resumed, the first finds its lease gone, stops
//  fetching (it reports ingest_leading false) and waits as a standby. Exactly once.
static void
test_split_ingest_paused (void **state)
{
    s_env_t *env = *state;
    const char *p0 = env->proxy [0].endpoint, *p1;
    s_two_consumers_started (env, &p1);
    assert_int_equal (kill (env->proxy [0].pid, SIGSTOP), 0);
    assert_int_equal (s_wait_stat (p1, "ingest_leading", 1, 30000), 1);
    uint64_t last = s_ingest_publish_part (env, S_MSGS / 2, S_MSGS);
    assert_int_equal (kill (env->proxy [0].pid, SIGCONT), 0);
    //  The first learns it lost the lease
    int64_t end = zclock_mono () + 30000;
    uint64_t leading = 1;
    while (zclock_mono () < end && (leading = qv_itn_stat (p0, "ingest_leading")) != 0)
        zclock_sleep (50);
    assert_int_equal (leading, 0);
    s_ingest_check (p1, last);
    assert_int_equal (qv_itn_stat (p0, "ingest_leading"), 0);
    assert_int_equal (qv_itn_stat (p1, "ingest_leading"), 1);
}

//  The connection to the core dropped after the 150th stream write: the core logged
//  writes whose answers were lost, the bridge sent them again, and the core answered
//  those without logging them twice.
static void
test_split_ingest_blip (void **state)
{
    s_env_t *env = *state;
    const char *p = env->proxy [0].endpoint;
    uint64_t last = s_ingest_publish (env);
    s_ingest_check (p, last);
    uint64_t again = qv_itn_stat (p, "writes_stream_again");
    print_message ("the core answered %llu stream writes sent again without logging them\n",
                   (unsigned long long) again);
    assert_true (again > 0 && again != UINT64_MAX);
}

//  The core dropped its reply to the 100th stream write (as when a proxy's queue is
//  full): the proxy's link answers it UNAVAILABLE once it is overdue (here 2 s), the
//  bridge rewinds and sends it again, and the core answers it without logging it
//  twice; exactly once. Before, the bridge waited for that reply for good: the
//  message was never acknowledged in JetStream, and its flow-control credit was lost.
static void
test_split_ingest_lost_reply (void **state)
{
    s_env_t *env = *state;
    const char *p = env->proxy [0].endpoint;
    uint64_t last = s_ingest_publish (env);
    s_ingest_check (p, last);
    uint64_t again = s_wait_stat (p, "writes_stream_again", 1, 30000);
    print_message ("%llu stream writes sent again after the lost reply\n",
                   (unsigned long long) again);
    assert_true (again >= 1 && again != UINT64_MAX);
    assert_true (qv_itn_stat (p, "ingest_retries") >= 1);
    s_ingest_check (p, last);
}

static int
s_setup_ingest_lost_reply (void **state)
{
    setenv ("QV_FAULT_DROP_STREAM_REPLY", "100", 1);
    setenv ("QV_FAULT_LINK_REPLY_LIMIT_MS", "2000", 1);
    int rc = s_setup_env (state, true, "--ingest-stream INGEST");
    unsetenv ("QV_FAULT_DROP_STREAM_REPLY");
    unsetenv ("QV_FAULT_LINK_REPLY_LIMIT_MS");
    return rc;
}

//  The core in two processes (s_setup_meta): the requests of test_split_requests, the
//  flush answered once the meta process's manifest holds the segments; an index built
//  by the meta process (the segment manager builds nothing) and loaded by both
//  searcher processes.
static void
test_split_meta_requests (void **state)
{
    s_env_t *env = *state;
    test_split_requests (state);
    const char *p = env->proxy [0].endpoint;
    assert_int_equal (qv_itn_stat (env->meta.endpoint, "unflushed_segments"), 0);
    qv_it_client_t *client = qv_it_client_new (p, 15000);
    qv_doc_t *r = qv_it_callf (client, "{op: 'create_index', collection: 'c', field: 'vec', "
                                       "index_type: 'HNSW'}");
    assert_true (qv_itn_ok (r));
    qv_doc_destroy (&r);
    char why [256];
    if (qv_it_wait_index (client, "c", "vec", 10 * BATCH, 60000, why, sizeof why))   //  deleted rows too
        fail_msg ("the meta process's index: %s", why);
    qv_it_client_destroy (&client);
    const char *searchers [2] = { env->searcher.endpoint, env->searcher2.endpoint };
    for (int i = 0; i < 2; i++) {
        uint64_t adopted = 0;
        int64_t end = zclock_mono () + 30000;
        while (zclock_mono () < end
           && ((adopted = qv_itn_stat (searchers [i], "indexes_adopted")) == 0
            || adopted == UINT64_MAX))
            zclock_sleep (100);
        assert_true (adopted >= 1 && adopted != UINT64_MAX);
        //  The segment manager announced the manifests it adopted on the feed
        uint64_t announced = qv_itn_stat (searchers [i], "manifests_announced");
        assert_true (announced >= 1 && announced != UINT64_MAX);
    }
    assert_int_equal (s_nearest (p, "c", 777), 777);
}

//  kill -9 of the segment manager under inserts (test_split_core_killed), then a flush:
//  the meta process follows the restarted one's log (a new epoch) and writes the rows.
static void
test_split_meta_core_killed (void **state)
{
    s_env_t *env = *state;
    test_split_core_killed (state);
    const char *p = env->proxy [0].endpoint;
    int64_t rows = s_count (p, "k", "");
    qv_doc_t *r = s_call (p, "flush", "k", 0, NULL, NULL);
    assert_true (qv_itn_ok (r));
    qv_doc_destroy (&r);
    assert_int_equal (qv_itn_stat (p, "unflushed_segments"), 0);
    assert_int_equal (s_count (p, "k", ""), rows);
}

//  kill -9 of the meta process: inserts go on (the segment manager needs it only to
//  free memory and the log); a flush sent while it is gone waits for it and is
//  answered once the restarted one (which takes the lease over) has written the
//  segments; the WAL checkpoint moves on; every row is there.
static void
test_split_meta_killed (void **state)
{
    s_env_t *env = *state;
    const char *p = env->proxy [0].endpoint;
    char code [64];
    assert_true (qv_itn_create (p, "m", DIM, false, 1));
    for (int b = 0; b < 20; b++) {
        s_insert (p, "m", (int64_t) b * BATCH, code, sizeof code);
        assert_string_equal (code, "OK");
    }
    qv_doc_t *r = s_call (p, "flush", "m", 0, NULL, NULL);
    assert_true (qv_itn_ok (r));
    qv_doc_destroy (&r);
    uint64_t cp = qv_itn_stat (p, "wal_checkpoint");
    assert_true (cp > 0 && cp != UINT64_MAX);
    assert_int_equal (qv_itn_quiver_stop (&env->meta, SIGKILL), 128 + SIGKILL);
    for (int b = 20; b < 40; b++) {
        s_insert (p, "m", (int64_t) b * BATCH, code, sizeof code);
        assert_string_equal (code, "OK");
    }
    assert_int_equal (qv_itn_quiver_restart (&env->meta, 0), 0);
    r = s_call (p, "flush", "m", 0, NULL, NULL);    //  waits for the new meta process
    assert_true (qv_itn_ok (r));
    qv_doc_destroy (&r);
    assert_int_equal (qv_itn_stat (p, "unflushed_segments"), 0);
    assert_true (qv_itn_stat (p, "wal_checkpoint") > cp);
    assert_int_equal (s_count (p, "m", ""), 40 * BATCH);
    for (int b = 0; b < 40; b += 13) {
        char filter [96];
        snprintf (filter, sizeof filter, "id >= %d and id < %d", b * BATCH, (b + 1) * BATCH);
        assert_int_equal (s_count (p, "m", filter), BATCH);
    }
    assert_int_equal (s_nearest (p, "m", 3 * BATCH + 7), 3 * BATCH + 7);
}

//  A second meta process for the same store waits for the meta lease (it does not
//  answer ping); once the first is killed it takes over and flushes are served.
static void
test_split_meta_fenced (void **state)
{
    s_env_t *env = *state;
    const char *p = env->proxy [0].endpoint;
    char code [64];
    assert_true (qv_itn_create (p, "z", DIM, false, 1));
    snprintf (env->meta2.data, sizeof env->meta2.data, "%s", env->core.data);
    assert_int_equal (qv_itn_quiver_start (&env->meta2, env->nats.url,
                      "--roles meta,flusher --lease-ttl-ms 2000", 3000), -1);
    assert_true (env->meta2.pid > 0);   //  alive, waiting
    assert_int_equal (waitpid (env->meta2.pid, NULL, WNOHANG), 0);
    s_insert (p, "z", 0, code, sizeof code);
    assert_string_equal (code, "OK");
    qv_doc_t *r = s_call (p, "flush", "z", 0, NULL, NULL);    //  by the first
    assert_true (qv_itn_ok (r));
    qv_doc_destroy (&r);
    assert_int_equal (qv_itn_quiver_stop (&env->meta, SIGKILL), 128 + SIGKILL);
    s_insert (p, "z", BATCH, code, sizeof code);
    assert_string_equal (code, "OK");
    bool up = false;
    int64_t end = zclock_mono () + 30000;
    while (!up && zclock_mono () < end) {
        qv_wr_t *w = qv_wr_new ();
        qv_wr_map (w, 1);
        qv_wr_str (w, "op"); qv_wr_str (w, "ping");
        r = qv_itn_call (env->meta2.endpoint, w, 1000);
        qv_wr_destroy (&w);
        up = qv_itn_ok (r);
        qv_doc_destroy (&r);
        if (!up)
            zclock_sleep (100);
    }
    assert_true (up);
    r = s_call (p, "flush", "z", 0, NULL, NULL);                //  by the second
    assert_true (qv_itn_ok (r));
    qv_doc_destroy (&r);
    assert_int_equal (qv_itn_stat (p, "unflushed_segments"), 0);
    assert_int_equal (s_count (p, "z", ""), 2 * BATCH);
}

//  With the meta process gone, a flush seals the collection's rows and waits; the
//  collection is dropped: the memory counted for its sealed segments is released at
//  the drop (no manifest will ever hold them), and the waiting flush is answered.
static void
test_split_meta_drop_releases (void **state)
{
    s_env_t *env = *state;
    const char *p = env->proxy [0].endpoint;
    char code [64];
    assert_int_equal (qv_itn_quiver_stop (&env->meta, SIGKILL), 128 + SIGKILL);
    assert_true (qv_itn_create (p, "dr", DIM, false, 1));
    for (int b = 0; b < 10; b++) {
        s_insert (p, "dr", (int64_t) b * BATCH, code, sizeof code);
        assert_string_equal (code, "OK");
    }
    uint64_t before = qv_itn_stat (p, "unflushed_bytes");
    assert_true (before > 0 && before != UINT64_MAX);
    zsock_t *flusher = zsock_new_dealer (p);
    assert_non_null (flusher);
    qv_wr_t *w = qv_wr_new ();
    qv_wr_map (w, 2);
    qv_wr_str (w, "op"); qv_wr_str (w, "flush");
    qv_wr_str (w, "collection"); qv_wr_str (w, "dr");
    size_t size;
    const void *data = qv_wr_data (w, &size);
    assert_int_equal (zmq_send (zsock_resolve (flusher), data, size, 0), (int) size);
    qv_wr_destroy (&w);
    zclock_sleep (500);             //  the seal is logged; the flush waits
    assert_int_equal (qv_itn_stat (p, "unflushed_bytes"), before);
    w = qv_wr_new ();
    qv_wr_map (w, 2);
    qv_wr_str (w, "op"); qv_wr_str (w, "drop_collection");
    qv_wr_str (w, "collection"); qv_wr_str (w, "dr");
    qv_doc_t *r = qv_itn_call (p, w, 15000);
    qv_wr_destroy (&w);
    assert_true (qv_itn_ok (r));
    qv_doc_destroy (&r);
    assert_int_equal (qv_itn_stat (p, "unflushed_bytes"), 0);
    zsock_set_rcvtimeo (flusher, 15000);
    zframe_t *f = zframe_recv (flusher);    //  the flush answered (its segments gone)
    assert_non_null (f);
    zframe_destroy (&f);
    zsock_destroy (&flusher);
}

static int
s_check_config (const char *args)
{
    char cmd [1024];
    snprintf (cmd, sizeof cmd, "%s serve %s --check-config >/dev/null 2>&1",
              qv_it_quiver_bin (), args);
    int status = system (cmd);
    return WIFEXITED (status) ? WEXITSTATUS (status) : -1;
}

static void
test_split_options (void **state)
{
    (void) state;
    const char *nats = " --nats nats://127.0.0.1:4222";
    char args [512];
    snprintf (args, sizeof args, "--roles proxy --writer tcp://127.0.0.1:1%s", nats);
    assert_int_equal (s_check_config (args), 0);
    snprintf (args, sizeof args, "--roles proxy%s", nats);      //  the core found in NATS
    assert_int_equal (s_check_config (args), 0);
    snprintf (args, sizeof args, "--roles segment-manager,meta,flusher --advertise tcp://h:1%s",
              nats);
    assert_int_equal (s_check_config (args), 0);
    snprintf (args, sizeof args, "--roles proxy --advertise tcp://h:1%s", nats);
    assert_int_equal (s_check_config (args), 2);
    assert_int_equal (s_check_config ("--roles proxy --writer tcp://127.0.0.1:1"), 2);  //  no --nats
    snprintf (args, sizeof args, "--writer tcp://127.0.0.1:1%s", nats);      //  not a proxy
    assert_int_equal (s_check_config (args), 2);
    snprintf (args, sizeof args, "--roles segment-manager,meta,flusher%s", nats);
    assert_int_equal (s_check_config (args), 0);
    snprintf (args, sizeof args, "--roles segment-manager,meta,flusher --http 127.0.0.1:1%s", nats);
    assert_int_equal (s_check_config (args), 2);
    snprintf (args, sizeof args, "--roles proxy --writer tcp://127.0.0.1:1 --ingest-stream S%s", nats);
    assert_int_equal (s_check_config (args), 0);
    snprintf (args, sizeof args, "--roles segment-manager,meta,flusher --ingest-stream S%s", nats);
    assert_int_equal (s_check_config (args), 2);
}

//  The same with the writer core answering DDL only to the proxy that asked (test hook
//  QV_FAULT_NO_DDL_BROADCAST): the other proxy finds new collections and partitions by
//  asking for the catalog, and hands a stale one's write to the core, which refuses it.
static int
s_setup_no_broadcast (void **state)
{
    setenv ("QV_FAULT_NO_DDL_BROADCAST", "1", 1);
    int rc = s_setup (state);
    unsetenv ("QV_FAULT_NO_DDL_BROADCAST");
    return rc;
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_split_options),
        cmocka_unit_test_setup_teardown (test_split_requests, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_split_partitions, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_split_strong_across_proxies, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_split_alter, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_split_requests, s_setup_no_broadcast, s_teardown),
        cmocka_unit_test_setup_teardown (test_split_partitions, s_setup_no_broadcast, s_teardown),
        cmocka_unit_test_setup_teardown (test_split_core_killed, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_split_core_frozen, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_split_proxy_killed, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_split_requests, s_setup_discover, s_teardown),
        cmocka_unit_test_setup_teardown (test_split_core_failover, s_setup_discover, s_teardown),
        cmocka_unit_test_setup_teardown (test_split_ingest_exactly_once, s_setup_ingest, s_teardown),
        cmocka_unit_test_setup_teardown (test_split_ingest_blip, s_setup_ingest_blip, s_teardown),
        cmocka_unit_test_setup_teardown (test_split_ingest_lost_reply, s_setup_ingest_lost_reply,
                                         s_teardown),
        cmocka_unit_test_setup_teardown (test_split_ingest_deletes_core_killed, s_setup_ingest,
                                         s_teardown),
        cmocka_unit_test_setup_teardown (test_split_ingest_standby, s_setup_ingest_two, s_teardown),
        cmocka_unit_test_setup_teardown (test_split_ingest_paused, s_setup_ingest_two, s_teardown),
        cmocka_unit_test_setup_teardown (test_split_meta_requests, s_setup_meta, s_teardown),
        cmocka_unit_test_setup_teardown (test_split_meta_core_killed, s_setup_meta, s_teardown),
        cmocka_unit_test_setup_teardown (test_split_meta_killed, s_setup_meta, s_teardown),
        cmocka_unit_test_setup_teardown (test_split_meta_fenced, s_setup_meta, s_teardown),
        cmocka_unit_test_setup_teardown (test_split_meta_drop_releases, s_setup_meta, s_teardown),
    };
    if (getenv ("QV_TEST_FILTER"))  //  e.g. "*ingest*": only the tests it matches
        cmocka_set_test_filter (getenv ("QV_TEST_FILTER"));
    return cmocka_run_group_tests (tests, NULL, NULL);
}
