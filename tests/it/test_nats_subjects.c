//  NATS subjects against a real nats-server and a real `quiver serve --nats`:
//  request/reply and fire-and-forget writes, search over NATS, UNAVAILABLE until the
//  subscriptions are live, and the change feed.
#include "qv_it_nats.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <signal.h>

typedef struct {
    qv_itn_nats_t nats;
    qv_itn_quiver_t quiver;
    natsConnection *nc;
} s_env_t;

static int
s_setup (void **state)
{
    if (!qv_itn_have_nats_server ())
        skip ();
    s_env_t *env = calloc (1, sizeof *env);
    assert_int_equal (qv_itn_nats_start (&env->nats), 0);
    assert_int_equal (qv_itn_quiver_start (&env->quiver, env->nats.url, "", 30000), 0);
    env->nc = qv_itn_nats_connect (env->nats.url);
    assert_non_null (env->nc);
    *state = env;
    return 0;
}

static int
s_teardown (void **state)
{
    s_env_t *env = *state;
    if (!env)
        return 0;
    natsConnection_Destroy (env->nc);
    assert_int_equal (qv_itn_quiver_stop (&env->quiver, SIGTERM), 0);
    qv_itn_nats_stop (&env->nats);
    qv_itn_remove_dir (env->nats.dir);
    qv_itn_remove_dir (env->quiver.data);
    free (env);
    return 0;
}

//  Sends a NATS request; returns the reply document (NULL on timeout).
static qv_doc_t *
s_request (natsConnection *nc, const char *subject, qv_wr_t *w)
{
    size_t size;
    const void *data = qv_wr_data (w, &size);
    natsMsg *reply = NULL;
    if (natsConnection_Request (&reply, nc, subject, data, (int) size, 10000) != NATS_OK)
        return NULL;
    int rc;
    qv_doc_t *doc = qv_doc_parse (natsMsg_GetData (reply), (size_t) natsMsg_GetDataLength (reply),
                                  SIZE_MAX, &rc);
    natsMsg_Destroy (reply);
    return doc;
}

//  Request/reply insert, then a ZeroMQ search finds the rows; the NATS reply is the
//  ZeroMQ insert reply (ids, ts, count); a NATS search answers the same.
static void
test_request_reply_insert_then_zmq_search (void **state)
{
    s_env_t *env = *state;
    const char *ep = env->quiver.endpoint;
    assert_true (qv_itn_create (ep, "docs", 16, false, 1));
    qv_wr_t *w = qv_wr_new ();
    qv_itn_insert_payload (w, 1000, 50, 16, 0);
    qv_doc_t *r = s_request (env->nc, "quiver.insert.docs", w);
    assert_non_null (r);
    assert_true (qv_itn_ok (r));
    assert_int_equal (qv_itn_uint (r, "count"), 50);
    const qv_val_t *ids = qv_val_get (qv_doc_root (r), "ids");
    assert_non_null (ids);
    assert_int_equal (qv_val_len (ids), 50);
    int64_t id0;
    assert_int_equal (qv_val_int (qv_val_at (ids, 0), &id0), 0);
    assert_int_equal (id0, 1000);
    assert_true (qv_itn_uint (r, "ts") != UINT64_MAX);
    qv_doc_destroy (&r);

    //  ZeroMQ search with row 1017's vector: it is the nearest.
    float q [16];
    qv_itn_vector (q, 16, 1017);
    qv_wr_reset (w);
    qv_wr_map (w, 4);
    qv_wr_str (w, "op"); qv_wr_str (w, "search");
    qv_wr_str (w, "collection"); qv_wr_str (w, "docs");
    qv_wr_str (w, "limit"); qv_wr_uint (w, 3);
    qv_wr_str (w, "vectors"); qv_wr_bin (w, q, sizeof q);
    r = qv_itn_call (ep, w, 10000);
    assert_true (qv_itn_ok (r));
    const qv_val_t *hit = qv_val_at (qv_val_at (qv_val_get (qv_doc_root (r), "results"), 0), 0);
    int64_t id;
    assert_int_equal (qv_val_int (qv_val_get (hit, "id"), &id), 0);
    assert_int_equal (id, 1017);
    qv_doc_destroy (&r);

    //  The same search over NATS (payload without op and collection).
    qv_wr_reset (w);
    qv_wr_map (w, 3);
    qv_wr_str (w, "limit"); qv_wr_uint (w, 3);
    qv_wr_str (w, "rid"); qv_wr_str (w, "mine");
    qv_wr_str (w, "vectors"); qv_wr_bin (w, q, sizeof q);
    r = s_request (env->nc, "quiver.search.docs", w);
    assert_true (qv_itn_ok (r));
    assert_true (qv_val_is (qv_val_get (qv_doc_root (r), "rid"), "mine"));
    hit = qv_val_at (qv_val_at (qv_val_get (qv_doc_root (r), "results"), 0), 0);
    assert_int_equal (qv_val_int (qv_val_get (hit, "id"), &id), 0);
    assert_int_equal (id, 1017);
    qv_doc_destroy (&r);

    //  Errors come back as the ZeroMQ error reply.
    qv_wr_reset (w);
    qv_itn_insert_payload (w, 1, 2, 16, 0);
    r = s_request (env->nc, "quiver.insert.nosuch", w);
    char code [32];
    assert_false (qv_itn_ok (r));
    assert_string_equal (qv_itn_code (r, code, sizeof code), "NOT_FOUND");
    qv_doc_destroy (&r);
    r = s_request (env->nc, "quiver.insert.docs", w);  //  ids 1 and 2
    assert_true (qv_itn_ok (r));
    qv_doc_destroy (&r);
    natsMsg *reply = NULL;
    assert_int_equal (natsConnection_RequestString (&reply, env->nc, "quiver.insert.docs",
                                                    "not msgpack", 10000), NATS_OK);
    int rc;
    r = qv_doc_parse (natsMsg_GetData (reply), (size_t) natsMsg_GetDataLength (reply), SIZE_MAX, &rc);
    natsMsg_Destroy (reply);
    assert_false (qv_itn_ok (r));
    assert_string_equal (qv_itn_code (r, code, sizeof code), "MALFORMED");
    qv_doc_destroy (&r);

    //  A request/reply delete is acknowledged with the deleted count.
    qv_wr_reset (w);
    qv_wr_map (w, 1);
    qv_wr_str (w, "ids");
    qv_wr_array (w, 2);
    qv_wr_int (w, 1000);
    qv_wr_int (w, 1001);
    r = s_request (env->nc, "quiver.delete.docs", w);
    assert_true (qv_itn_ok (r));
    assert_int_equal (qv_itn_uint (r, "deleted"), 2);
    qv_doc_destroy (&r);
    assert_int_equal (qv_itn_rows (ep, "docs"), 50 + 2 - 2);   //  ids 1, 2 added, 1000, 1001 gone
    qv_wr_destroy (&w);
}

//  10,000 rows published without a reply subject all arrive; a refused one is counted.
static void
test_fire_and_forget_10k (void **state)
{
    s_env_t *env = *state;
    const char *ep = env->quiver.endpoint;
    assert_true (qv_itn_create (ep, "ff", 8, false, 2));
    uint64_t failed0 = qv_itn_stat (ep, "nats_failed");
    qv_wr_t *w = qv_wr_new ();
    for (int m = 0; m < 1000; m++) {
        qv_wr_reset (w);
        qv_itn_insert_payload (w, (int64_t) m * 10, 10, 8, 0);
        size_t size;
        const void *data = qv_wr_data (w, &size);
        assert_int_equal (natsConnection_Publish (env->nc, "quiver.insert.ff", data, (int) size), NATS_OK);
    }
    //  And one the server must refuse: no such collection.
    size_t size;
    const void *data = qv_wr_data (w, &size);
    assert_int_equal (natsConnection_Publish (env->nc, "quiver.insert.missing", data, (int) size), NATS_OK);
    assert_int_equal (natsConnection_FlushTimeout (env->nc, 10000), NATS_OK);
    qv_wr_destroy (&w);
    int64_t end = zclock_mono () + 60000;
    uint64_t rows = 0;
    while (zclock_mono () < end && (rows = qv_itn_rows (ep, "ff")) != 10000)
        zclock_sleep (50);
    assert_int_equal (rows, 10000);
    while (zclock_mono () < end && qv_itn_stat (ep, "nats_failed") != failed0 + 1)
        zclock_sleep (50);
    assert_int_equal (qv_itn_stat (ep, "nats_failed"), failed0 + 1);
    assert_int_equal (qv_itn_stat (ep, "nats_dropped"), 0);
}

typedef struct {
    zlistx_t *events;               //  qv_doc_t *, in arrival order
    pthread_mutex_t lock;
} s_feed_t;

static void
s_on_cdc (natsConnection *nc, natsSubscription *sub, natsMsg *msg, void *closure)
{
    (void) nc;
    (void) sub;
    s_feed_t *feed = closure;
    int rc;
    qv_doc_t *doc = qv_doc_parse (natsMsg_GetData (msg), (size_t) natsMsg_GetDataLength (msg),
                                  SIZE_MAX, &rc);
    natsMsg_Destroy (msg);
    pthread_mutex_lock (&feed->lock);
    zlistx_add_end (feed->events, doc);
    pthread_mutex_unlock (&feed->lock);
}

static size_t
s_feed_size (s_feed_t *feed)
{
    pthread_mutex_lock (&feed->lock);
    size_t n = zlistx_size (feed->events);
    pthread_mutex_unlock (&feed->lock);
    return n;
}

static const char *
s_str (qv_doc_t *doc, const char *key, char *buf, size_t size)
{
    buf [0] = 0;
    const qv_val_t *v = qv_val_get (qv_doc_root (doc), key);
    if (v)
        qv_val_strcpy (v, buf, size);
    return buf;
}

//  The change feed has every committed insert and delete, in order per shard, with
//  seq strictly increasing per shard, DDL events, and big events split into parts.
static void
test_change_feed (void **state)
{
    s_env_t *env = *state;
    const char *ep = env->quiver.endpoint;
    s_feed_t feed = { zlistx_new (), PTHREAD_MUTEX_INITIALIZER };
    natsSubscription *sub = NULL;
    assert_int_equal (natsConnection_Subscribe (&sub, env->nc, "quiver.cdc.>", s_on_cdc, &feed), NATS_OK);
    assert_int_equal (natsConnection_FlushTimeout (env->nc, 5000), NATS_OK);
    assert_true (qv_itn_create (ep, "feed", 8, false, 3));
    //  Inserts of ids 0..599 in 60 batches, then deletes of every id divisible by 7,
    //  interleaved with re-inserts of some of them (the order matters per shard).
    qv_wr_t *w = qv_wr_new ();
    int expected_events = 1;        //  create_collection
    for (int b = 0; b < 60; b++) {
        qv_wr_reset (w);
        qv_wr_map (w, 3);
        qv_wr_str (w, "op"); qv_wr_str (w, "insert");
        qv_wr_str (w, "collection"); qv_wr_str (w, "feed");
        float vecs [10 * 8];
        for (int r = 0; r < 10; r++)
            qv_itn_vector (vecs + r * 8, 8, b * 10 + r);
        qv_wr_str (w, "columns");
        qv_wr_map (w, 2);
        qv_wr_str (w, "id");
        qv_wr_array (w, 10);
        for (int r = 0; r < 10; r++)
            qv_wr_int (w, b * 10 + r);
        qv_wr_str (w, "vec"); qv_wr_bin (w, vecs, sizeof vecs);
        qv_doc_t *r = qv_itn_call (ep, w, 10000);
        assert_true (qv_itn_ok (r));
        qv_doc_destroy (&r);
        expected_events++;
        if (b % 6 == 5) {
            qv_wr_reset (w);
            qv_wr_map (w, 3);
            qv_wr_str (w, "op"); qv_wr_str (w, "delete");
            qv_wr_str (w, "collection"); qv_wr_str (w, "feed");
            qv_wr_str (w, "ids");
            int n = 0;
            for (int id = (b - 5) * 10; id <= b * 10 + 9; id++)
                n += id % 7 == 0;
            qv_wr_array (w, (size_t) n);
            for (int id = (b - 5) * 10; id <= b * 10 + 9; id++)
                if (id % 7 == 0)
                    qv_wr_int (w, id);
            r = qv_itn_call (ep, w, 10000);
            assert_true (qv_itn_ok (r));
            qv_doc_destroy (&r);
            expected_events++;
        }
    }
    int64_t end = zclock_mono () + 30000;
    while (zclock_mono () < end && s_feed_size (&feed) < (size_t) expected_events)
        zclock_sleep (20);
    assert_int_equal (s_feed_size (&feed), expected_events);

    //  Replay the feed: per shard seq increases; the live set equals the collection's.
    uint64_t last_seq [3] = { 0, 0, 0 };
    bool live [600] = { false };
    bool seen_create = false;
    char op [32], coll [64];
    for (qv_doc_t *ev = zlistx_first (feed.events); ev; ev = zlistx_next (feed.events)) {
        assert_non_null (ev);
        s_str (ev, "op", op, sizeof op);
        assert_string_equal (s_str (ev, "collection", coll, sizeof coll), "feed");
        uint64_t shard = qv_itn_uint (ev, "shard"), seq = qv_itn_uint (ev, "seq");
        assert_true (shard < 3);
        assert_true (seq != UINT64_MAX && seq > last_seq [shard]);
        last_seq [shard] = seq;
        assert_true (qv_itn_uint (ev, "ts") != UINT64_MAX);
        const qv_val_t *ids = qv_val_get (qv_doc_root (ev), "ids");
        assert_non_null (ids);
        if (streq (op, "create_collection")) {
            seen_create = true;
            continue;
        }
        assert_true (streq (op, "insert") || streq (op, "delete"));
        for (size_t i = 0; i < qv_val_len (ids); i++) {
            int64_t id;
            assert_int_equal (qv_val_int (qv_val_at (ids, i), &id), 0);
            assert_true (id >= 0 && id < 600);
            if (streq (op, "delete"))
                assert_true (live [id]);        //  the insert came first
            live [id] = streq (op, "insert");
        }
    }
    assert_true (seen_create);
    uint64_t n_live = 0;
    for (int id = 0; id < 600; id++)
        n_live += live [id];
    assert_int_equal (n_live, qv_itn_rows (ep, "feed"));
    assert_int_equal (n_live, 600 - (600 + 6) / 7);

    //  A drop is an event too.
    qv_wr_reset (w);
    qv_wr_map (w, 2);
    qv_wr_str (w, "op"); qv_wr_str (w, "drop_collection");
    qv_wr_str (w, "collection"); qv_wr_str (w, "feed");
    qv_doc_t *r = qv_itn_call (ep, w, 10000);
    assert_true (qv_itn_ok (r));
    qv_doc_destroy (&r);
    end = zclock_mono () + 30000;
    while (zclock_mono () < end && s_feed_size (&feed) < (size_t) expected_events + 1)
        zclock_sleep (20);
    pthread_mutex_lock (&feed.lock);
    qv_doc_t *last = zlistx_last (feed.events);
    pthread_mutex_unlock (&feed.lock);
    assert_string_equal (s_str (last, "op", op, sizeof op), "drop_collection");
    qv_wr_destroy (&w);
    natsSubscription_Unsubscribe (sub);
    natsSubscription_Destroy (sub);
    for (qv_doc_t *ev = zlistx_first (feed.events); ev; ev = zlistx_next (feed.events))
        qv_doc_destroy (&ev);
    zlistx_destroy (&feed.events);
}

//  With --cdc-rows an insert bigger than the payload limit comes in parts that
//  together carry every id and row once.
static void
test_change_feed_parts (void **state)
{
    (void) state;
    if (!qv_itn_have_nats_server ())
        skip ();
    qv_itn_nats_t nats = { 0 };
    qv_itn_quiver_t quiver = { 0 };
    assert_int_equal (qv_itn_nats_start (&nats), 0);
    assert_int_equal (qv_itn_quiver_start (&quiver, nats.url, "--cdc-rows", 30000), 0);
    natsConnection *nc = qv_itn_nats_connect (nats.url);
    s_feed_t feed = { zlistx_new (), PTHREAD_MUTEX_INITIALIZER };
    natsSubscription *sub = NULL;
    assert_int_equal (natsConnection_Subscribe (&sub, nc, "quiver.cdc.big", s_on_cdc, &feed), NATS_OK);
    assert_int_equal (natsConnection_FlushTimeout (nc, 5000), NATS_OK);
    assert_true (qv_itn_create (quiver.endpoint, "big", 768, false, 1));
    int64_t end = zclock_mono () + 30000;
    while (zclock_mono () < end && s_feed_size (&feed) < 1)
        zclock_sleep (20);
    assert_int_equal (s_feed_size (&feed), 1);
    qv_doc_t *create = zlistx_detach (feed.events, NULL);
    char op [32];
    assert_string_equal (s_str (create, "op", op, sizeof op), "create_collection");
    qv_doc_destroy (&create);
    //  1000 rows x 768 floats: about 3.9 MB as msgpack floats, over the 1 MiB limit.
    qv_wr_t *w = qv_wr_new ();
    qv_wr_map (w, 3);
    qv_wr_str (w, "op"); qv_wr_str (w, "insert");
    qv_wr_str (w, "collection"); qv_wr_str (w, "big");
    qv_wr_t *p = qv_wr_new ();
    qv_itn_insert_payload (p, 0, 1000, 768, 0);
    size_t psize;
    const uint8_t *pdata = qv_wr_data (p, &psize);
    qv_wr_str (w, "columns");
    int rc;
    qv_doc_t *pd = qv_doc_parse (pdata, psize, SIZE_MAX, &rc);
    qv_wr_val (w, qv_val_get (qv_doc_root (pd), "columns"));
    qv_doc_destroy (&pd);
    qv_wr_destroy (&p);
    qv_doc_t *r = qv_itn_call (quiver.endpoint, w, 20000);
    assert_true (qv_itn_ok (r));
    qv_doc_destroy (&r);
    qv_wr_destroy (&w);
    //  Wait for every part (parts is in each).
    uint64_t parts = 0;
    while (zclock_mono () < end) {
        pthread_mutex_lock (&feed.lock);
        qv_doc_t *first = zlistx_first (feed.events);
        bool have = first && (parts = qv_itn_uint (first, "parts")) != UINT64_MAX
                 && zlistx_size (feed.events) >= parts;
        pthread_mutex_unlock (&feed.lock);
        if (have)
            break;
        zclock_sleep (20);
    }
    assert_true (parts > 1 && parts != UINT64_MAX);
    assert_int_equal (s_feed_size (&feed), parts);
    bool seen [1000] = { false };
    uint64_t part = 0, seq = 0;
    for (qv_doc_t *ev = zlistx_first (feed.events); ev; ev = zlistx_next (feed.events)) {
        assert_int_equal (qv_itn_uint (ev, "part"), ++part);
        assert_int_equal (qv_itn_uint (ev, "parts"), parts);
        if (part == 1)
            seq = qv_itn_uint (ev, "seq");
        assert_int_equal (qv_itn_uint (ev, "seq"), seq);
        const qv_val_t *ids = qv_val_get (qv_doc_root (ev), "ids");
        const qv_val_t *rows = qv_val_get (qv_doc_root (ev), "rows");
        assert_int_equal (qv_val_len (ids), qv_val_len (rows));
        for (size_t i = 0; i < qv_val_len (ids); i++) {
            int64_t id;
            assert_int_equal (qv_val_int (qv_val_at (ids, i), &id), 0);
            assert_false (seen [id]);
            seen [id] = true;
            const qv_val_t *vec = qv_val_get (qv_val_at (rows, i), "vec");
            assert_int_equal (qv_val_len (vec), 768);
            float want [768];
            qv_itn_vector (want, 768, id);
            double x;
            qv_val_double (qv_val_at (vec, 767), &x);
            assert_true ((float) x == want [767]);
        }
    }
    for (int i = 0; i < 1000; i++)
        assert_true (seen [i]);
    natsSubscription_Unsubscribe (sub);
    natsSubscription_Destroy (sub);
    for (qv_doc_t *ev = zlistx_first (feed.events); ev; ev = zlistx_next (feed.events))
        qv_doc_destroy (&ev);
    zlistx_destroy (&feed.events);
    natsConnection_Destroy (nc);
    assert_int_equal (qv_itn_quiver_stop (&quiver, SIGTERM), 0);
    qv_itn_nats_stop (&nats);
    qv_itn_remove_dir (nats.dir);
    qv_itn_remove_dir (quiver.data);
}

//  Until NATS is reachable and subscribed, every request (ping too) is UNAVAILABLE;
//  then the server serves both ZeroMQ and NATS.
static void
test_unavailable_until_nats_live (void **state)
{
    (void) state;
    if (!qv_itn_have_nats_server ())
        skip ();
    qv_itn_nats_t nats = { 0 };
    nats.port = qv_itn_free_port ();
    char url [64];
    snprintf (url, sizeof url, "nats://127.0.0.1:%d", nats.port);
    qv_itn_quiver_t quiver = { 0 };
    assert_int_equal (qv_itn_quiver_start (&quiver, url, "", 0), 0);
    //  Wait until it answers at all, then check the answer.
    int64_t end = zclock_mono () + 30000;
    char code [32] = "";
    qv_wr_t *w = qv_wr_new ();
    qv_wr_map (w, 1);
    qv_wr_str (w, "op"); qv_wr_str (w, "ping");
    while (zclock_mono () < end) {
        qv_doc_t *r = qv_itn_call (quiver.endpoint, w, 500);
        if (r) {
            assert_false (qv_itn_ok (r));
            qv_itn_code (r, code, sizeof code);
            qv_doc_destroy (&r);
            break;
        }
    }
    assert_string_equal (code, "UNAVAILABLE");
    assert_int_equal (qv_itn_nats_start (&nats), 0);
    bool ok = false;
    while (zclock_mono () < end && !ok) {
        qv_doc_t *r = qv_itn_call (quiver.endpoint, w, 500);
        ok = qv_itn_ok (r);
        qv_doc_destroy (&r);
        if (!ok)
            zclock_sleep (50);
    }
    assert_true (ok);
    qv_wr_destroy (&w);
    assert_int_equal (qv_itn_quiver_stop (&quiver, SIGTERM), 0);
    qv_itn_nats_stop (&nats);
    qv_itn_remove_dir (nats.dir);
    qv_itn_remove_dir (quiver.data);
}

//  After kill -9, the events of the replayed WAL tail are published again, ahead of
//  new ones, with their original seq: an event committed but lost in the crash still
//  reaches consumers, who drop repeats by (shard, seq).
static void
test_change_feed_after_crash (void **state)
{
    s_env_t *env = *state;
    s_feed_t feed = { zlistx_new (), PTHREAD_MUTEX_INITIALIZER };
    natsSubscription *sub = NULL;
    assert_int_equal (natsConnection_Subscribe (&sub, env->nc, "quiver.cdc.>", s_on_cdc, &feed), NATS_OK);
    assert_int_equal (natsConnection_FlushTimeout (env->nc, 5000), NATS_OK);
    assert_true (qv_itn_create (env->quiver.endpoint, "crash", 8, false, 1));
    qv_wr_t *w = qv_wr_new ();
    for (int b = 0; b < 5; b++) {
        qv_wr_reset (w);
        qv_wr_map (w, 3);
        qv_wr_str (w, "op"); qv_wr_str (w, "insert");
        qv_wr_str (w, "collection"); qv_wr_str (w, "crash");
        float vecs [10 * 8];
        for (int r = 0; r < 10; r++)
            qv_itn_vector (vecs + r * 8, 8, b * 10 + r);
        qv_wr_str (w, "columns");
        qv_wr_map (w, 2);
        qv_wr_str (w, "id");
        qv_wr_array (w, 10);
        for (int r = 0; r < 10; r++)
            qv_wr_int (w, b * 10 + r);
        qv_wr_str (w, "vec"); qv_wr_bin (w, vecs, sizeof vecs);
        qv_doc_t *r = qv_itn_call (env->quiver.endpoint, w, 10000);
        assert_true (qv_itn_ok (r));
        qv_doc_destroy (&r);
    }
    int64_t end = zclock_mono () + 30000;
    while (zclock_mono () < end && s_feed_size (&feed) < 6)
        zclock_sleep (20);
    assert_int_equal (s_feed_size (&feed), 6);      //  create + 5 inserts
    uint64_t seqs [6];
    int i = 0;
    for (qv_doc_t *ev = zlistx_first (feed.events); ev; ev = zlistx_next (feed.events))
        seqs [i++] = qv_itn_uint (ev, "seq");
    assert_int_equal (qv_itn_quiver_stop (&env->quiver, SIGKILL), 128 + SIGKILL);
    assert_int_equal (qv_itn_quiver_start (&env->quiver, env->nats.url, "", 30000), 0);
    //  The same six events again, in the same order, before anything new.
    end = zclock_mono () + 30000;
    while (zclock_mono () < end && s_feed_size (&feed) < 12)
        zclock_sleep (20);
    assert_int_equal (s_feed_size (&feed), 12);
    i = 0;
    for (qv_doc_t *ev = zlistx_first (feed.events); ev; ev = zlistx_next (feed.events), i++)
        if (i >= 6)
            assert_int_equal (qv_itn_uint (ev, "seq"), seqs [i - 6]);
    natsSubscription_Destroy (sub);
    qv_wr_destroy (&w);
    qv_doc_t *ev;
    while ((ev = zlistx_detach (feed.events, NULL)))
        qv_doc_destroy (&ev);
    zlistx_destroy (&feed.events);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test_setup_teardown (test_request_reply_insert_then_zmq_search, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_fire_and_forget_10k, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_change_feed, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_change_feed_after_crash, s_setup, s_teardown),
        cmocka_unit_test (test_change_feed_parts),
        cmocka_unit_test (test_unavailable_until_nats_live),
    };
    zsys_init ();
    zsys_set_linger (0);
    int rc = cmocka_run_group_tests (tests, NULL, NULL);
    nats_Close ();
    return rc;
}
