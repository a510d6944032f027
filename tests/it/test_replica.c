//  Searcher processes (`quiver serve --roles searcher`) beside an embedded writer with
//  --nats, all real: nats-server with JetStream, the writer, two searcher processes on
//  the writer's data directory. siftsmall is loaded on the writer; every read on each
//  replica must equal the writer's; deletes and upserts are seen; a replica killed with
//  -9 during a search load catches up when restarted; a replica started after the
//  writer flushed (and dropped the WAL below its checkpoint) recovers from the manifest;
//  strong reads on a replica see every acknowledged insert (1,000 pairs, 0 misses).
//  Split: a writer without the searcher role (--roles proxy,segment-manager,meta,flusher)
//  sends its reads to the searcher processes; they answer as an embedded server loaded
//  the same way; a searcher killed with -9 under a search load through the writer costs
//  no wrong answer, and strong reads through the writer see every acknowledged insert.
//  The split tests run three times: that writer as one process; as a proxy process in
//  front of the writer core; and with the core as the segment manager and a meta
//  process (--roles meta,flusher) that writes the segments, indexes and manifests.
#include "qv_it_nats.h"
#include "qv_it_rest.h"
#include "qv_it_sift.h"
#include "qv_store.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <pthread.h>
#include <signal.h>

#define DIM QV_IT_SIFT_DIM
#define NB 10000
#define NQ 20
#define K 10

static float *s_base;
static float *s_query;

typedef struct {
    qv_itn_nats_t nats;
    qv_itn_quiver_t writer;
    qv_itn_quiver_t replica [2];
    qv_it_client_t *w;              //  client of the writer
    qv_it_client_t *r [2];          //  clients of the replicas
    qv_itn_quiver_t embedded;       //  split tests: an embedded server, the reference
    qv_it_client_t *e;
    qv_itn_quiver_t core;           //  proxied split tests: the writer core, behind
                                    //  `writer`, a proxy process (--roles proxy)
    qv_itn_quiver_t meta;           //  ... with the core in two: the meta process
} s_env_t;

#define S_CORE_ROLES "--roles segment-manager,meta,flusher --lease-ttl-ms 2000"
#define S_SEGMGR_ROLES "--roles segment-manager --lease-ttl-ms 2000"
#define S_META_ROLES "--roles meta,flusher --lease-ttl-ms 2000"

//  The process holding the segment manager: the writer, or the writer core.
static qv_itn_quiver_t *
s_segmgr_of (s_env_t *env)
{
    return env->core.pid || env->core.port ? &env->core : &env->writer;
}

//  Waits until the writer core answers through the proxy (`stats` goes to the core),
//  up to 60 s; true if it does. With no core, true.
static bool
s_core_serving (s_env_t *env)
{
    if (!env->core.port)
        return true;
    for (int i = 0; i < 600; i++) {
        if (qv_itn_stat (env->writer.endpoint, "rows") != UINT64_MAX)
            return true;
        zclock_sleep (100);
    }
    return false;
}

#define S_WRITER_ROLES "--roles proxy,segment-manager,meta,flusher --lease-ttl-ms 2000"

static int
s_start_replica (s_env_t *env, int i)
{
    qv_itn_quiver_t *q = &env->replica [i];
    snprintf (q->data, sizeof q->data, "%s", env->writer.data);
    if (qv_itn_quiver_start (q, env->nats.url, "--roles searcher", 60000))
        return -1;
    qv_it_client_destroy (&env->r [i]);
    env->r [i] = qv_it_client_new (q->endpoint, QV_IT_CALL_MS);
    return env->r [i] ? 0 : -1;
}

//  siftsmall read once, and an environment with its own nats-server (skips without one).
static s_env_t *
s_env_new (void)
{
    if (!qv_itn_have_nats_server ())
        skip ();
    if (!s_base) {
        s_base = qv_it_sift_read ("base.fvecs", NB, DIM);
        s_query = qv_it_sift_read ("query.fvecs", NQ, DIM);
        assert_non_null (s_base);
        assert_non_null (s_query);
    }
    s_env_t *env = calloc (1, sizeof *env);
    assert_int_equal (qv_itn_nats_start (&env->nats), 0);
    return env;
}

static int
s_setup (void **state)
{
    s_env_t *env = s_env_new ();
    assert_int_equal (qv_itn_quiver_start (&env->writer, env->nats.url, "", 60000), 0);
    env->w = qv_it_client_new (env->writer.endpoint, QV_IT_CALL_MS);
    *state = env;
    return 0;
}

//  A writer without the searcher role, and an embedded server beside it (own data).
static int
s_setup_split (void **state)
{
    s_env_t *env = s_env_new ();
    assert_int_equal (qv_itn_quiver_start (&env->writer, env->nats.url, S_WRITER_ROLES, 60000), 0);
    env->w = qv_it_client_new (env->writer.endpoint, QV_IT_CALL_MS);
    assert_int_equal (qv_itn_quiver_start (&env->embedded, NULL, "", 60000), 0);
    env->e = qv_it_client_new (env->embedded.endpoint, QV_IT_CALL_MS);
    *state = env;
    return 0;
}

static int s_core_metrics_port;    //  > 0: the writer core serves --metrics there

//  The split writer as two processes: the writer core, and a proxy process in front
//  of it as `writer` (what clients use); an embedded server beside them (own data).
static int
s_setup_split_proxy_meta (void **state, bool meta)
{
    s_env_t *env = s_env_new ();
    char core_args [160];
    snprintf (core_args, sizeof core_args, "%s", meta ? S_SEGMGR_ROLES : S_CORE_ROLES);
    if (s_core_metrics_port > 0)
        snprintf (core_args + strlen (core_args), sizeof core_args - strlen (core_args),
                  " --metrics 127.0.0.1:%d", s_core_metrics_port);
    assert_int_equal (qv_itn_quiver_start (&env->core, env->nats.url, core_args, 0), 0);
    if (meta) {
        snprintf (env->meta.data, sizeof env->meta.data, "%s", env->core.data);
        assert_int_equal (qv_itn_quiver_start (&env->meta, env->nats.url, S_META_ROLES,
                                               60000), 0);
    }
    snprintf (env->writer.data, sizeof env->writer.data, "%s", env->core.data);
    char args [256];
    snprintf (args, sizeof args, "--roles proxy --writer %s", env->core.endpoint);
    assert_int_equal (qv_itn_quiver_start (&env->writer, env->nats.url, args, 60000), 0);
    env->w = qv_it_client_new (env->writer.endpoint, QV_IT_CALL_MS);
    assert_int_equal (qv_itn_quiver_start (&env->embedded, NULL, "", 60000), 0);
    env->e = qv_it_client_new (env->embedded.endpoint, QV_IT_CALL_MS);
    *state = env;
    return 0;
}

static int
s_setup_split_proxy (void **state)
{
    return s_setup_split_proxy_meta (state, false);
}

//  The same, with the writer core serving --metrics on a free port.
static int
s_setup_split_proxy_metrics (void **state)
{
    s_core_metrics_port = qv_it_rest_free_port ();
    int rc = s_core_metrics_port > 0 ? s_setup_split_proxy_meta (state, false) : -1;
    return rc;
}

//  The writer core in two processes as well: the segment manager and the meta process
//  (meta, flusher), which writes the segments, indexes and manifests.
static int
s_setup_split_meta (void **state)
{
    return s_setup_split_proxy_meta (state, true);
}

static int
s_teardown (void **state)
{
    s_env_t *env = *state;
    if (!env)
        return 0;
    if (env->core.pid)
        assert_int_equal (qv_itn_quiver_stop (&env->core, SIGTERM), 0);
    if (env->meta.pid)
        assert_int_equal (qv_itn_quiver_stop (&env->meta, SIGTERM), 0);
    if (env->embedded.pid) {
        qv_it_client_destroy (&env->e);
        assert_int_equal (qv_itn_quiver_stop (&env->embedded, SIGTERM), 0);
        qv_itn_remove_dir (env->embedded.data);
    }
    for (int i = 0; i < 2; i++) {
        qv_it_client_destroy (&env->r [i]);
        if (env->replica [i].pid)
            assert_int_equal (qv_itn_quiver_stop (&env->replica [i], SIGTERM), 0);
    }
    qv_it_client_destroy (&env->w);
    assert_int_equal (qv_itn_quiver_stop (&env->writer, SIGTERM), 0);
    qv_itn_nats_stop (&env->nats);
    qv_itn_remove_dir (env->nats.dir);
    qv_itn_remove_dir (env->writer.data);
    free (env);
    return 0;
}

static void
s_create (qv_it_client_t *c)
{
    qv_doc_t *r = QV_IT_CALL_OK (c, "{op: 'create_collection', collection: 'sift', fields: ["
                                    "{name: 'id', type: 'int64', primary: true},"
                                    "{name: 'tag', type: 'int64'},"
                                    "{name: 'v', type: 'float_vector', dim: %d}]}", DIM);
    qv_doc_destroy (&r);
}

static uint64_t s_write_vecs (qv_it_client_t *c, const char *op, uint32_t start, uint32_t n,
                              int64_t id_offset, const float *vecs);

//  Inserts (or upserts) base rows [start, start + n) with ids start + id_offset ...
static uint64_t
s_write_rows (qv_it_client_t *c, const char *op, uint32_t start, uint32_t n, int64_t id_offset)
{
    return s_write_vecs (c, op, start, n, id_offset, s_base + (size_t) start * DIM);
}

//  The same rows moved far from every query (each component + 10,000): they never
//  enter a top-k of the queries, so a search's answer stays as it was.
static uint64_t
s_write_far_rows (qv_it_client_t *c, uint32_t start, uint32_t n, int64_t id_offset)
{
    float *far = malloc ((size_t) n * DIM * sizeof (float));
    for (size_t i = 0; i < (size_t) n * DIM; i++)
        far [i] = s_base [(size_t) start * DIM + i] + 10000.0f;
    uint64_t ts = s_write_vecs (c, "insert", start, n, id_offset, far);
    free (far);
    return ts;
}

//  Writes n rows: ids start + id_offset ..., tags (start + i) % 7, vectors vecs.
static uint64_t
s_write_vecs (qv_it_client_t *c, const char *op, uint32_t start, uint32_t n, int64_t id_offset,
              const float *vecs)
{
    qv_wr_t *w = qv_wr_new ();
    qv_wr_map (w, 3);
    qv_wr_str (w, "op"); qv_wr_str (w, op);
    qv_wr_str (w, "collection"); qv_wr_str (w, "sift");
    qv_wr_str (w, "columns"); qv_wr_map (w, 3);
    qv_wr_str (w, "id"); qv_wr_array (w, n);
    for (uint32_t i = 0; i < n; i++)
        qv_wr_int (w, (int64_t) (start + i) + id_offset);
    qv_wr_str (w, "tag"); qv_wr_array (w, n);
    for (uint32_t i = 0; i < n; i++)
        qv_wr_int (w, (int64_t) (start + i) % 7);
    qv_wr_str (w, "v"); qv_wr_bin (w, vecs, (size_t) n * DIM * 4);
    qv_doc_t *r = qv_it_call (c, w);
    qv_wr_destroy (&w);
    if (!qv_it_ok (r))
        fail_msg ("%s of rows %u..%u: %s %s", op, start, start + n, qv_it_code (r), qv_it_error (r));
    uint64_t ts = (uint64_t) qv_it_int (qv_it_path (r, "ts"));
    qv_doc_destroy (&r);
    return ts;
}

static void
s_load_on (qv_it_client_t *c)
{
    s_create (c);
    for (uint32_t start = 0; start < NB; start += 1000)
        s_write_rows (c, "insert", start, 1000, 0);
}

static void
s_load (s_env_t *env)
{
    s_load_on (env->w);
}

//  The answer of a search of the NQ queries (ids and distances, in order) as text.
static char *
s_search_text (qv_it_client_t *c, const char *consistency, const char *filter)
{
    qv_wr_t *w = qv_wr_new ();
    qv_wr_map (w, filter ? 7 : 6);
    qv_wr_str (w, "op"); qv_wr_str (w, "search");
    qv_wr_str (w, "collection"); qv_wr_str (w, "sift");
    qv_wr_str (w, "vectors"); qv_wr_bin (w, s_query, (size_t) NQ * DIM * 4);
    qv_wr_str (w, "dim"); qv_wr_uint (w, DIM);
    qv_wr_str (w, "limit"); qv_wr_uint (w, K);
    qv_wr_str (w, "consistency"); qv_wr_str (w, consistency);
    if (filter) {
        qv_wr_str (w, "filter"); qv_wr_str (w, filter);
    }
    qv_doc_t *r = qv_it_call (c, w);
    qv_wr_destroy (&w);
    if (!qv_it_ok (r)) {
        char *err = NULL;
        if (asprintf (&err, "ERROR %s %s", qv_it_code (r), qv_it_error (r)) < 0)
            err = NULL;
        qv_doc_destroy (&r);
        return err;
    }
    size_t cap = NQ * K * 32 + 1, len = 0;
    char *text = calloc (1, cap);
    const qv_val_t *results = qv_it_path (r, "results");
    for (uint32_t q = 0; q < qv_val_len (results); q++) {
        const qv_val_t *hits = qv_val_at (results, q);
        for (uint32_t i = 0; i < qv_val_len (hits); i++) {
            const qv_val_t *hit = qv_val_at (hits, i);
            len += (size_t) snprintf (text + len, cap - len, "%lld:%.2f ",
                                      (long long) qv_it_int (qv_it_vpath (hit, "id")),
                                      qv_it_num (qv_it_vpath (hit, "distance")));
        }
        len += (size_t) snprintf (text + len, cap - len, "| ");
    }
    qv_doc_destroy (&r);
    return text;
}

static int64_t
s_count (qv_it_client_t *c, const char *consistency, const char *filter)
{
    qv_doc_t *r = qv_it_callf (c, "{op: 'query', collection: 'sift', filter: '%s', "
                                  "output_fields: ['count(*)'], consistency: '%s'}",
                               filter, consistency);
    if (!qv_it_ok (r)) {
        fprintf (stderr, "count: %s %s\n", qv_it_code (r), qv_it_error (r));
        qv_doc_destroy (&r);
        return -1;
    }
    int64_t n = qv_it_int (qv_it_path (r, "rows.0.count(*)"));
    qv_doc_destroy (&r);
    return n;
}

//  A get of ids as text (id and tag of each row found, in order).
static char *
s_get_text (qv_it_client_t *c, const char *ids)
{
    qv_doc_t *r = qv_it_callf (c, "{op: 'get', collection: 'sift', ids: [%s], "
                                  "output_fields: ['tag']}", ids);
    char *text = calloc (1, 4096);
    size_t len = 0;
    if (!qv_it_ok (r))
        snprintf (text, 4096, "ERROR %s %s", qv_it_code (r), qv_it_error (r));
    else {
        const qv_val_t *rows = qv_it_path (r, "rows");
        for (uint32_t i = 0; i < qv_val_len (rows) && len < 4000; i++)
            len += (size_t) snprintf (text + len, 4096 - len, "%lld/%lld ",
                                      (long long) qv_it_int (qv_it_vpath (qv_val_at (rows, i), "id")),
                                      (long long) qv_it_int (qv_it_vpath (qv_val_at (rows, i), "tag")));
    }
    qv_doc_destroy (&r);
    return text;
}

//  Every read of the replica equals the reference's, the writer's (strong reads).
#define s_assert_same(env, replica, when) s_assert_equal ((env)->w, (replica), (when))
static void
s_assert_equal (qv_it_client_t *ref, qv_it_client_t *replica, const char *when)
{
    char *want = s_search_text (ref, "strong", NULL);
    char *got = s_search_text (replica, "strong", NULL);
    assert_non_null (want);
    assert_non_null (got);
    if (strcmp (want, got))
        fail_msg ("%s: search differs\nwriter:  %.300s\nreplica: %.300s", when, want, got);
    free (want);
    free (got);
    want = s_search_text (ref, "strong", "tag in [1, 3]");
    got = s_search_text (replica, "strong", "tag in [1, 3]");
    if (strcmp (want, got))
        fail_msg ("%s: filtered search differs\nwriter:  %.300s\nreplica: %.300s", when, want, got);
    free (want);
    free (got);
    int64_t wn = s_count (ref, "strong", "id >= 0");
    int64_t rn = s_count (replica, "strong", "id >= 0");
    assert_true (wn >= 0);
    if (wn != rn)
        fail_msg ("%s: count %lld on the writer, %lld on the replica", when, (long long) wn,
                  (long long) rn);
    wn = s_count (ref, "strong", "tag == 2 and id < 5000");
    rn = s_count (replica, "strong", "tag == 2 and id < 5000");
    assert_int_equal (wn, rn);
    want = s_get_text (ref, "0, 1, 2, 77, 5000, 9999, 123456");
    got = s_get_text (replica, "0, 1, 2, 77, 5000, 9999, 123456");
    if (strcmp (want, got))
        fail_msg ("%s: get differs\nwriter:  %s\nreplica: %s", when, want, got);
    free (want);
    free (got);
}

//  Two replicas answer as the writer; deletes, upserts and new collections reach them;
//  writes are refused on a replica, naming the writer role.
static void
test_replicas_equal_writer (void **state)
{
    s_env_t *env = *state;
    s_load (env);
    assert_int_equal (s_start_replica (env, 0), 0);
    assert_int_equal (s_start_replica (env, 1), 0);
    for (int i = 0; i < 2; i++)
        s_assert_same (env, env->r [i], "after loading siftsmall");
    //  Deletes and upserts (rows 0..99 get row 5000.. 's vectors)
    qv_doc_t *r = QV_IT_CALL_OK (env->w, "{op: 'delete', collection: 'sift', ids: [1, 2, 3, 77]}");
    qv_doc_destroy (&r);
    r = QV_IT_CALL_OK (env->w, "{op: 'delete', collection: 'sift', filter: 'id >= 9990'}");
    qv_doc_destroy (&r);
    s_write_rows (env->w, "upsert", 5000, 100, -5000);
    for (int i = 0; i < 2; i++)
        s_assert_same (env, env->r [i], "after deletes and upserts");
    //  (the upsert of ids 0..99 brought 1, 2, 3 and 77 back)
    assert_int_equal (s_count (env->r [0], "strong", "id >= 0"), NB - 10);
    //  A collection created on the writer is served by the replicas
    r = QV_IT_CALL_OK (env->w, "{op: 'create_collection', collection: 'late', fields: ["
                               "{name: 'id', type: 'int64', primary: true},"
                               "{name: 'v', type: 'float_vector', dim: 2}]}");
    qv_doc_destroy (&r);
    r = QV_IT_CALL_OK (env->w, "{op: 'insert', collection: 'late', rows: [{id: 5, v: [1.0, 2.0]}]}");
    qv_doc_destroy (&r);
    for (int i = 0; i < 2; i++) {
        r = QV_IT_CALL_OK (env->r [i], "{op: 'get', collection: 'late', ids: [5]}");
        assert_int_equal (qv_val_len (qv_it_path (r, "rows")), 1);
        qv_doc_destroy (&r);
        r = QV_IT_CALL_OK (env->r [i], "{op: 'list_collections'}");
        qv_doc_destroy (&r);
    }
    //  Writes on a replica: refused, naming the writer
    r = QV_IT_CALL_ERR (env->r [0], "INVALID_ARGUMENT",
                        "{op: 'insert', collection: 'late', rows: [{id: 6, v: [1.0, 2.0]}]}");
    assert_non_null (strstr (qv_it_error (r), "writer"));
    qv_doc_destroy (&r);
    r = QV_IT_CALL_ERR (env->r [1], "INVALID_ARGUMENT", "{op: 'drop_collection', collection: 'late'}");
    qv_doc_destroy (&r);
    //  A drop reaches them too
    r = QV_IT_CALL_OK (env->w, "{op: 'drop_collection', collection: 'late'}");
    qv_doc_destroy (&r);
    for (int i = 0; i < 2; i++) {
        r = QV_IT_CALL_ERR (env->r [i], "NOT_FOUND", "{op: 'get', collection: 'late', ids: [5]}");
        qv_doc_destroy (&r);
    }
    //  A flush and two indexes on the writer (segments written, indexes built, a
    //  manifest naming them): the replicas adopt the manifest (their copies of the
    //  segments become flushed, the index objects are loaded, not rebuilt) and answer
    //  the same, by the same indexes. 10,100 rows: siftsmall and the 100 upserted.
    r = QV_IT_CALL_OK (env->w, "{op: 'flush', collection: 'sift'}");
    qv_doc_destroy (&r);
    r = QV_IT_CALL_OK (env->w, "{op: 'create_index', collection: 'sift', field: 'v', "
                               "index_type: 'HNSW', params: {M: 16, efConstruction: 100}}");
    qv_doc_destroy (&r);
    r = QV_IT_CALL_OK (env->w, "{op: 'create_index', collection: 'sift', field: 'tag', "
                               "index_type: 'STL_SORT'}");
    qv_doc_destroy (&r);
    char why [256];
    if (qv_it_wait_index (env->w, "sift", "v", NB + 100, 60000, why, sizeof why)
    ||  qv_it_wait_index (env->w, "sift", "tag", NB + 100, 60000, why, sizeof why))
        fail_msg ("the writer's indexes: %s", why);
    for (int i = 0; i < 2; i++) {
        if (qv_it_wait_index (env->r [i], "sift", "v", NB + 100, 30000, why, sizeof why)
        ||  qv_it_wait_index (env->r [i], "sift", "tag", NB + 100, 30000, why, sizeof why))
            fail_msg ("replica %d did not adopt the writer's indexes: %s", i, why);
        uint64_t adopted = qv_itn_stat (env->replica [i].endpoint, "indexes_adopted");
        assert_true (adopted >= 2 && adopted != UINT64_MAX);
        //  The writer announced its manifests on the committed feed
        uint64_t announced = qv_itn_stat (env->replica [i].endpoint, "manifests_announced");
        assert_true (announced >= 1 && announced != UINT64_MAX);
        assert_int_equal (qv_itn_stat (env->replica [i].endpoint, "unflushed_segments"), 0);
        s_assert_same (env, env->r [i], "after a flush and indexes on the writer");
    }
    s_write_rows (env->w, "insert", 0, 50, 20000);
    for (int i = 0; i < 2; i++)
        s_assert_same (env, env->r [i], "after inserts beside the indexed segments");
    //  The vector index replaced (dropped, then IVF_FLAT) and the new rows flushed: the
    //  replicas load the new version's objects, for the new segment too
    r = QV_IT_CALL_OK (env->w, "{op: 'drop_index', collection: 'sift', field: 'v'}");
    qv_doc_destroy (&r);
    r = QV_IT_CALL_OK (env->w, "{op: 'create_index', collection: 'sift', field: 'v', "
                               "index_type: 'IVF_FLAT', params: {nlist: 32}}");
    qv_doc_destroy (&r);
    r = QV_IT_CALL_OK (env->w, "{op: 'flush', collection: 'sift'}");
    qv_doc_destroy (&r);
    if (qv_it_wait_index (env->w, "sift", "v", NB + 150, 60000, why, sizeof why))
        fail_msg ("the writer's IVF_FLAT index: %s", why);
    for (int i = 0; i < 2; i++) {
        if (qv_it_wait_index (env->r [i], "sift", "v", NB + 150, 30000, why, sizeof why))
            fail_msg ("replica %d did not adopt the replaced index: %s", i, why);
        r = QV_IT_CALL_OK (env->r [i], "{op: 'describe_index', collection: 'sift', field: 'v'}");
        assert_true (qv_it_str_is (qv_it_path (r, "index_type"), "IVF_FLAT"));
        qv_doc_destroy (&r);
        uint64_t adopted = qv_itn_stat (env->replica [i].endpoint, "indexes_adopted");
        assert_true (adopted >= 5 && adopted != UINT64_MAX);
        assert_int_equal (qv_itn_stat (env->replica [i].endpoint, "unflushed_segments"), 0);
        s_assert_same (env, env->r [i], "after the index was replaced");
    }
}

//  Strong reads on a replica right after an acknowledged insert see it: 1,000 pairs,
//  alternating replicas, 0 misses. Session reads with the insert's ts too; eventually
//  answers at once.
static void
test_strong_and_session_on_replicas (void **state)
{
    s_env_t *env = *state;
    s_create (env->w);
    assert_int_equal (s_start_replica (env, 0), 0);
    assert_int_equal (s_start_replica (env, 1), 0);
    int misses = 0;
    for (int k = 0; k < 1000; k++) {
        uint64_t ts = s_write_rows (env->w, "insert", (uint32_t) k, 1, 100000);
        qv_it_client_t *c = env->r [k % 2];
        qv_doc_t *r;
        if (k % 4 < 2)
            r = qv_it_callf (c, "{op: 'get', collection: 'sift', ids: [%d]}", 100000 + k);
        else
            r = qv_it_callf (c, "{op: 'get', collection: 'sift', ids: [%d], consistency: 'session', "
                                "guarantee_ts: %llu}", 100000 + k, (unsigned long long) ts);
        if (!qv_it_ok (r))
            fail_msg ("pair %d: %s %s", k, qv_it_code (r), qv_it_error (r));
        misses += qv_val_len (qv_it_path (r, "rows")) != 1;
        qv_doc_destroy (&r);
    }
    assert_int_equal (misses, 0);
    //  The rows came by the feed, not by reading the store: the writer published every
    //  WAL object, and the replicas read at most a few from the store (start-up, a race)
    assert_true (qv_itn_stat (env->writer.endpoint, "feed_published") >= 1000);
    for (int i = 0; i < 2; i++) {
        uint64_t applied = qv_itn_stat (env->replica [i].endpoint, "feed_applied_seq");
        uint64_t reads = qv_itn_stat (env->replica [i].endpoint, "feed_wal_reads");
        fprintf (stderr, "replica %d: at WAL object %llu, %llu read from the store\n", i,
                 (unsigned long long) applied, (unsigned long long) reads);
        assert_true (applied > 1000 && applied != UINT64_MAX);
        assert_true (reads < 100);
    }
    //  eventually: answered without waiting for anything (the row may or may not be there)
    qv_doc_t *r = QV_IT_CALL_OK (env->r [0], "{op: 'get', collection: 'sift', ids: [1], "
                                              "consistency: 'eventually'}");
    qv_doc_destroy (&r);
    assert_int_equal (s_count (env->r [1], "strong", "id >= 0"), 1000);
}

typedef struct {
    qv_itn_quiver_t *q;
    atomic_bool stop;
    atomic_int ok;
    atomic_int failed;
    atomic_int wrong;
    const char *want;
    char first_error [512];         //  the first error answer, for the log
} s_load_t;

static void *
s_search_load (void *arg)
{
    s_load_t *l = arg;
    while (!atomic_load (&l->stop)) {
        qv_it_client_t *c = qv_it_client_new (l->q->endpoint, 2000);
        for (int i = 0; i < 20 && !atomic_load (&l->stop); i++) {
            char *got = s_search_text (c, "strong", NULL);
            if (got && strncmp (got, "ERROR", 5) && strcmp (got, l->want)) {
                if (atomic_fetch_add (&l->wrong, 1) == 0)
                    fprintf (stderr, "first wrong answer:\n  got  %.600s\n  want %.600s\n",
                             got, l->want);
            }
            else
            if (got && !strncmp (got, "ERROR", 5)) {
                if (atomic_fetch_add (&l->failed, 1) == 0)
                    snprintf (l->first_error, sizeof l->first_error, "%s", got);
            }
            else
            if (got)
                atomic_fetch_add (&l->ok, 1);
            else {
                free (got);
                break;              //  timeout: a new client (the REQ socket is stuck)
            }
            free (got);
        }
        qv_it_client_destroy (&c);
    }
    return NULL;
}

//  kill -9 of a replica during a search load, and a restart: no wrong answer, and once
//  caught up it answers as the writer, also for writes made while it was down.
static void
test_replica_kill_restart (void **state)
{
    s_env_t *env = *state;
    s_load (env);
    assert_int_equal (s_start_replica (env, 0), 0);
    char *want = s_search_text (env->w, "strong", NULL);
    s_load_t load = { .q = &env->replica [0], .want = want };
    pthread_t th;
    pthread_create (&th, NULL, s_search_load, &load);
    zclock_sleep (1500);
    assert_int_equal (qv_itn_quiver_stop (&env->replica [0], SIGKILL), 128 + SIGKILL);
    env->replica [0].pid = 0;
    //  Writes while it is down (new rows far from the queries: the answer stays). They
    //  were copies of base rows, as near as those: a replica that had caught up within
    //  the load's last 1.5 s answered them, rightly, and the test counted it wrong.
    for (uint32_t start = 0; start < 2000; start += 500)
        s_write_far_rows (env->w, start, 500, 50000);
    assert_int_equal (s_start_replica (env, 0), 0);
    zclock_sleep (1500);
    atomic_store (&load.stop, true);
    pthread_join (th, NULL);
    fprintf (stderr, "search load on the killed replica: %d ok, %d errors, %d wrong\n",
             atomic_load (&load.ok), atomic_load (&load.failed), atomic_load (&load.wrong));
    assert_int_equal (atomic_load (&load.wrong), 0);
    assert_true (atomic_load (&load.ok) > 0);
    free (want);
    s_assert_same (env, env->r [0], "after kill -9 and restart");
    assert_int_equal (s_count (env->r [0], "strong", "id >= 0"), NB + 2000);
}

//  Two stores' writers on one NATS server: a searcher process follows its own store's
//  writer only (the committed feed's subject and stream are per store; they were one
//  subject for all, and a searcher applied the other store's WAL objects too).
static void
test_two_stores_one_nats (void **state)
{
    s_env_t *env = *state;
    assert_int_equal (qv_itn_quiver_start (&env->embedded, env->nats.url, "", 60000), 0);
    env->e = qv_it_client_new (env->embedded.endpoint, QV_IT_CALL_MS);
    s_create (env->w);
    s_create (env->e);
    assert_int_equal (s_start_replica (env, 0), 0);
    for (uint32_t start = 0; start < 3000; start += 1000) {
        s_write_rows (env->w, "insert", start, 1000, 0);
        s_write_rows (env->e, "insert", start, 1000, 50000);
    }
    s_write_rows (env->e, "insert", 3000, 1000, 50000);
    s_assert_same (env, env->r [0], "beside another store's writer");
    assert_int_equal (s_count (env->r [0], "strong", "id >= 0"), 3000);
    assert_int_equal (s_count (env->r [0], "strong", "id >= 50000"), 0);
    //  The same on the other store's side: its writer's own answers are unchanged
    assert_int_equal (s_count (env->e, "strong", "id >= 50000"), 4000);
}

//  The value of the sample line "name{labels} value" in Prometheus text; -1 if absent.
static double
s_sample (const char *text, const char *line_start)
{
    size_t n = strlen (line_start);
    for (const char *p = text; p && *p; p = strchr (p, '\n'), p = p ? p + 1 : NULL)
        if (strncmp (p, line_start, n) == 0 && p [n] == ' ')
            return atof (p + n + 1);
    return -1;
}

//  A searcher process serves /metrics, /healthz and /readyz like the embedded server
//  (`--roles searcher --metrics HOST:PORT`; it refused the option before): its
//  quiver_info says role "searcher", its searches are counted, its stats figures follow
//  the rows it follows.
static void
test_replica_metrics (void **state)
{
    s_env_t *env = *state;
    s_create (env->w);
    s_write_rows (env->w, "insert", 0, 1000, 0);
    int port = qv_it_rest_free_port ();
    assert_true (port > 0);
    qv_itn_quiver_t *q = &env->replica [0];
    snprintf (q->data, sizeof q->data, "%s", env->writer.data);
    char args [96];
    snprintf (args, sizeof args, "--roles searcher --metrics 127.0.0.1:%d", port);
    assert_int_equal (qv_itn_quiver_start (q, env->nats.url, args, 60000), 0);
    env->r [0] = qv_it_client_new (q->endpoint, QV_IT_CALL_MS);
    assert_int_equal (s_count (env->r [0], "strong", "id >= 0"), 1000);
    qv_it_rest_t *rest = qv_it_rest_new (port);
    assert_non_null (rest);
    long status = 0;
    qv_it_rest_text (rest, "GET", "/readyz", NULL, &status);
    assert_int_equal (status, 200);
    const char *text = qv_it_rest_text (rest, "GET", "/metrics", NULL, &status);
    assert_int_equal (status, 200);
    assert_non_null (text);
    assert_non_null (strstr (text, "quiver_info{role=\"searcher\""));
    const char *ok = "quiver_requests_total{op=\"search\",code=\"OK\"}";
    double before = s_sample (text, ok);
    for (int i = 0; i < 3; i++) {
        char *answer = s_search_text (env->r [0], "eventually", NULL);
        assert_non_null (answer);
        assert_null (strstr (answer, "ERROR"));
        free (answer);
    }
    text = qv_it_rest_text (rest, "GET", "/metrics", NULL, &status);
    assert_int_equal (status, 200);
    assert_true (s_sample (text, ok) - (before < 0 ? 0 : before) == 3);
    assert_true (s_sample (text, "quiver_rows") == 1000);
    qv_it_rest_destroy (&rest);
}

//  The writer core (`--roles segment-manager,meta,flusher`) serves --metrics too: its
//  intake answers the endpoint's `stats` through its searcher, and the histograms of
//  the work done there (WAL commits) are its own. Rows inserted through the proxy
//  process show in the core's figures.
static void
test_core_metrics (void **state)
{
    s_env_t *env = *state;
    int port = s_core_metrics_port;
    s_core_metrics_port = 0;        //  the next setups start cores without it
    assert_true (s_core_serving (env));
    s_create (env->w);
    s_write_rows (env->w, "insert", 0, 1000, 0);
    s_write_rows (env->w, "insert", 1000, 1000, 0);
    qv_it_rest_t *rest = qv_it_rest_new (port);
    assert_non_null (rest);
    long status = 0;
    qv_it_rest_text (rest, "GET", "/readyz", NULL, &status);
    assert_int_equal (status, 200);
    //  The core's searcher applies what its segment manager acknowledged a moment
    //  later (the endpoint's `stats` waits for nothing)
    const char *text = NULL;
    double rows = -1;
    for (int i = 0; i < 300 && rows != 2000; i++) {
        if (i)
            zclock_sleep (100);
        text = qv_it_rest_text (rest, "GET", "/metrics", NULL, &status);
        assert_int_equal (status, 200);
        assert_non_null (text);
        rows = s_sample (text, "quiver_rows");
    }
    assert_true (rows == 2000);
    assert_true (s_sample (text, "quiver_ready") == 1);
    assert_true (s_sample (text, "quiver_wal_commit_duration_seconds_count") >= 2);
    qv_it_rest_destroy (&rest);
}

//  A collection dropped (and one re-created under the same name) while its inserts
//  still wait in a searcher process's queue: the searcher applies them with the schema
//  they were decoded with, which the follower keeps until then (it used to free it at
//  the drop: heap-use-after-free, caught by the sanitizer build). The searcher's
//  applies are held back 300 ms (QV_FAULT_APPLY_DELAY_MS) so the drop always comes
//  first; the replica answers as the writer does afterwards and stops cleanly.
static void
test_drop_while_inserts_queued (void **state)
{
    s_env_t *env = *state;
    s_create (env->w);
    setenv ("QV_FAULT_APPLY_DELAY_MS", "300", 1);
    int rc = s_start_replica (env, 0);
    unsetenv ("QV_FAULT_APPLY_DELAY_MS");
    assert_int_equal (rc, 0);
    for (int round = 0; round < 3; round++) {
        qv_doc_t *r = QV_IT_CALL_OK (env->w, "{op: 'create_collection', collection: 'gone', fields: ["
                                              "{name: 'id', type: 'int64', primary: true},"
                                              "{name: 'name', type: 'varchar', max_length: 32},"
                                              "{name: 'v', type: 'float_vector', dim: 2}]}");
        qv_doc_destroy (&r);
        for (int i = 0; i < 5; i++) {
            r = QV_IT_CALL_OK (env->w, "{op: 'insert', collection: 'gone', rows: ["
                                       "{id: %d, name: 'row %d', v: [1.0, 2.0]},"
                                       "{id: %d, name: 'row %d', v: [3.0, 4.0]}]}",
                               2 * i, 2 * i, 2 * i + 1, 2 * i + 1);
            qv_doc_destroy (&r);
        }
        r = QV_IT_CALL_OK (env->w, "{op: 'drop_collection', collection: 'gone'}");
        qv_doc_destroy (&r);
    }
    s_write_rows (env->w, "insert", 0, 10, 0);
    //  Strong: waits out the held-back applies
    assert_int_equal (s_count (env->r [0], "strong", "id >= 0"), 10);
    qv_doc_t *r = QV_IT_CALL_ERR (env->r [0], "NOT_FOUND", "{op: 'get', collection: 'gone', ids: [1]}");
    qv_doc_destroy (&r);
    qv_it_client_destroy (&env->r [0]);
    assert_int_equal (qv_itn_quiver_stop (&env->replica [0], SIGTERM), 0);
}

//  A replica started after the writer flushed (its WAL below the checkpoint deleted)
//  recovers from the newest manifest and the tail, then follows.
static void
test_late_replica_from_manifest (void **state)
{
    s_env_t *env = *state;
    s_load (env);
    qv_doc_t *r = QV_IT_CALL_OK (env->w, "{op: 'flush', collection: 'sift'}");
    qv_doc_destroy (&r);
    s_write_rows (env->w, "insert", 0, 300, 70000);
    r = QV_IT_CALL_OK (env->w, "{op: 'delete', collection: 'sift', ids: [10, 11, 12]}");
    qv_doc_destroy (&r);
    assert_int_equal (s_start_replica (env, 1), 0);
    s_assert_same (env, env->r [1], "a replica started after a flush");
    assert_int_equal (qv_itn_stat (env->replica [1].endpoint, "feed_caught_up"), 1);
    s_write_rows (env->w, "insert", 300, 300, 70000);
    s_assert_same (env, env->r [1], "and following on");
}

static bool s_wait_searchers (s_env_t *env, uint64_t n);

//  Waits until compaction id of 'sift' on c is final; asserts it completed, dropping
//  `dropped` rows.
static void
s_wait_compaction (qv_it_client_t *c, uint64_t id, int64_t dropped)
{
    bool done = false;
    for (int i = 0; i < 600 && !done; i++) {
        qv_doc_t *r = QV_IT_CALL_OK (c, "{op: 'get_compaction_state', collection: 'sift', "
                                        "compaction_id: %llu}", (unsigned long long) id);
        done = !qv_it_str_is (qv_it_path (r, "state"), "executing");
        if (done) {
            assert_true (qv_it_str_is (qv_it_path (r, "state"), "completed"));
            assert_int_equal (qv_it_int (qv_it_path (r, "rows_dropped")), dropped);
        }
        qv_doc_destroy (&r);
        if (!done)
            zclock_sleep (100);
    }
    assert_true (done);
}

//  The writes of the compaction tests, on c: siftsmall with an index (index: its
//  type and params), 2,000 more rows, 4,000 of them deleted and 500 upserted, each
//  part flushed.
static void
s_compaction_writes (qv_it_client_t *c, const char *index)
{
    s_load_on (c);
    qv_doc_t *r = QV_IT_CALL_OK (c, "{op: 'create_index', collection: 'sift', field: 'v', %s}",
                                 index);
    qv_doc_destroy (&r);
    r = QV_IT_CALL_OK (c, "{op: 'flush', collection: 'sift'}");
    qv_doc_destroy (&r);
    s_write_rows (c, "insert", 0, 2000, 70000);
    r = QV_IT_CALL_OK (c, "{op: 'flush', collection: 'sift'}");
    qv_doc_destroy (&r);
    r = QV_IT_CALL_OK (c, "{op: 'delete', collection: 'sift', filter: 'id < 3000 or id >= 71000'}");
    qv_doc_destroy (&r);
    s_write_rows (c, "upsert", 5000, 500, 0);
    r = QV_IT_CALL_OK (c, "{op: 'flush', collection: 'sift'}");
    qv_doc_destroy (&r);
}

static uint64_t
s_compact (qv_it_client_t *c)
{
    qv_doc_t *r = QV_IT_CALL_OK (c, "{op: 'compact', collection: 'sift'}");
    uint64_t id = (uint64_t) qv_it_int (qv_it_path (r, "compaction_id"));
    qv_doc_destroy (&r);
    return id;
}

//  A compaction on the writer reaches the searcher processes through the log: they
//  apply the same record to the rows they hold and answer as the writer after it (and
//  before the writer's next manifest names the merged segment's index); a searcher
//  process started afterwards, from the manifest that names the merged segment, too.
static void
test_replica_compaction (void **state)
{
    s_env_t *env = *state;
    assert_int_equal (s_start_replica (env, 0), 0);
    s_compaction_writes (env->w, "index_type: 'HNSW', params: {M: 8, efConstruction: 64}");
    s_assert_same (env, env->r [0], "before the compaction");
    s_wait_compaction (env->w, s_compact (env->w), 3000 + 1000 + 500);
    //  The searcher process searches the merged segment exactly until the writer's
    //  manifest names its index; then with the same graph as the writer
    char why [256];
    if (qv_it_wait_index (env->r [0], "sift", "v", NB + 2000 - 3000 - 1000, 30000, why, sizeof why))
        fail_msg ("the searcher process did not load the merged segment's index: %s", why);
    s_assert_same (env, env->r [0], "after the compaction");
    assert_int_equal (s_count (env->r [0], "strong", "id >= 0"), NB + 2000 - 3000 - 1000);
    assert_int_equal (s_start_replica (env, 1), 0);
    s_assert_same (env, env->r [1], "a searcher process started after the compaction");
    //  Deletes after it find the rows in their new places everywhere
    qv_doc_t *r = QV_IT_CALL_OK (env->w, "{op: 'delete', collection: 'sift', ids: [3000, 3001, 70500]}");
    qv_doc_destroy (&r);
    s_assert_same (env, env->r [0], "a delete after the compaction");
    s_assert_same (env, env->r [1], "a delete after the compaction, late searcher");
}

//  The same through a split writer (its reads on searcher processes; with a proxy
//  process in front of the core too): the core compacts, the searcher processes
//  apply it, and every answer equals an embedded server's that did not compact.
static void
test_split_compaction (void **state)
{
    s_env_t *env = *state;
    assert_int_equal (s_start_replica (env, 0), 0);
    assert_true (s_wait_searchers (env, 1));
    //  IVF_FLAT probing all its lists: exact, so the merged segment answers as the three
    //  it replaced
    s_compaction_writes (env->w, "index_type: 'IVF_FLAT', params: {nlist: 16}");
    s_compaction_writes (env->e, "index_type: 'IVF_FLAT', params: {nlist: 16}");
    s_assert_equal (env->e, env->w, "split: before the compaction");
    s_wait_compaction (env->w, s_compact (env->w), 3000 + 1000 + 500);
    s_assert_equal (env->e, env->w, "split: after the compaction");
    qv_doc_t *r = QV_IT_CALL_OK (env->w, "{op: 'delete', collection: 'sift', ids: [3000, 70500]}");
    qv_doc_destroy (&r);
    r = QV_IT_CALL_OK (env->e, "{op: 'delete', collection: 'sift', ids: [3000, 70500]}");
    qv_doc_destroy (&r);
    s_assert_equal (env->e, env->w, "split: a delete after the compaction");
}

//  Polls the split writer's stats until it knows n searcher processes, all caught up
//  (one is known within a second of catching up, and forgotten at once when it stops
//  or within QV_MEMBERS_STALE_MS when it is killed), for up to 20 s.
static bool
s_wait_searchers (s_env_t *env, uint64_t n)
{
    bool reached = false;
    for (int i = 0; i < 200 && !reached; i++) {
        reached = qv_itn_stat (env->writer.endpoint, "searchers") == n
               && qv_itn_stat (env->writer.endpoint, "searchers_ready") == n;
        if (!reached)
            zclock_sleep (100);
    }
    return reached;
}

//  Inserts rows [start, start + n) of 2-d vectors into collection 'other'.
static void
s_write_other (qv_it_client_t *c, uint32_t start, uint32_t n)
{
    qv_wr_t *w = qv_wr_new ();
    qv_wr_map (w, 3);
    qv_wr_str (w, "op"); qv_wr_str (w, "insert");
    qv_wr_str (w, "collection"); qv_wr_str (w, "other");
    qv_wr_str (w, "columns"); qv_wr_map (w, 2);
    qv_wr_str (w, "id"); qv_wr_array (w, n);
    for (uint32_t i = 0; i < n; i++)
        qv_wr_int (w, (int64_t) (start + i));
    qv_wr_str (w, "v"); qv_wr_array (w, n);
    for (uint32_t i = 0; i < n; i++) {
        qv_wr_array (w, 2);
        qv_wr_float (w, (float) (start + i));
        qv_wr_float (w, 1.0f);
    }
    qv_doc_t *r = qv_it_call (c, w);
    qv_wr_destroy (&w);
    if (!qv_it_ok (r))
        fail_msg ("insert into other: %s %s", qv_it_code (r), qv_it_error (r));
    qv_doc_destroy (&r);
}

//  The split writer's reads go to searcher processes: UNAVAILABLE (naming them) before
//  one has joined, then answers equal to an embedded server's given the same writes
//  (deletes, upserts, a flush), and UNAVAILABLE again once every searcher is gone.
static void
test_split_equals_embedded (void **state)
{
    s_env_t *env = *state;
    s_load_on (env->w);
    s_load_on (env->e);
    qv_doc_t *r = QV_IT_CALL_ERR (env->w, "UNAVAILABLE", "{op: 'get', collection: 'sift', ids: [1]}");
    assert_non_null (strstr (qv_it_error (r), "searcher process"));
    qv_doc_destroy (&r);
    //  Catalog reads are the writer's own
    r = QV_IT_CALL_OK (env->w, "{op: 'describe_collection', collection: 'sift'}");
    qv_doc_destroy (&r);
    assert_int_equal (s_start_replica (env, 0), 0);
    assert_int_equal (s_start_replica (env, 1), 0);
    assert_true (s_wait_searchers (env, 2));
    s_assert_equal (env->e, env->w, "split: siftsmall loaded");
    const char *ops [] = {
        "{op: 'delete', collection: 'sift', ids: [1, 2, 3, 77]}",
        "{op: 'delete', collection: 'sift', filter: 'id >= 9990'}",
    };
    for (int i = 0; i < 2; i++) {
        r = QV_IT_CALL_OK (env->w, "%s", ops [i]);
        qv_doc_destroy (&r);
        r = QV_IT_CALL_OK (env->e, "%s", ops [i]);
        qv_doc_destroy (&r);
    }
    s_write_rows (env->w, "upsert", 5000, 100, -5000);
    s_write_rows (env->e, "upsert", 5000, 100, -5000);
    s_assert_equal (env->e, env->w, "split: after deletes and upserts");
    r = QV_IT_CALL_OK (env->w, "{op: 'flush', collection: 'sift'}");
    qv_doc_destroy (&r);
    s_write_rows (env->w, "insert", 0, 50, 20000);
    s_write_rows (env->e, "insert", 0, 50, 20000);
    s_assert_equal (env->e, env->w, "split: after a flush");
    //  An index (IVF_FLAT of 16 lists, all of them probed by default: the same answers
    //  as the embedded server's exact scans; not FLAT, which no process keeps but as
    //  its record, so there would be nothing to release). The
    //  searchers load it from the store; the writer, which searches nothing itself,
    //  keeps only its record once a durable manifest names it (indexes_released), and
    //  still reports it built, takes deletes by filter, and rebuilds nothing
    //  (10,150 rows in segments: siftsmall, the 100 upserted and the 50 inserted)
    for (int i = 0; i < 2; i++) {
        qv_it_client_t *c = i ? env->e : env->w;
        r = QV_IT_CALL_OK (c, "{op: 'create_index', collection: 'sift', field: 'v', "
                              "index_type: 'IVF_FLAT', params: {nlist: 16}}");
        qv_doc_destroy (&r);
        r = QV_IT_CALL_OK (c, "{op: 'flush', collection: 'sift'}");
        qv_doc_destroy (&r);
    }
    char why [256];
    if (qv_it_wait_index (env->w, "sift", "v", NB + 150, 60000, why, sizeof why))
        fail_msg ("the split writer's index: %s", why);
    for (int i = 0; i < 2; i++)
        if (qv_it_wait_index (env->r [i], "sift", "v", NB + 150, 30000, why, sizeof why))
            fail_msg ("searcher %d did not load the writer's index: %s", i, why);
    //  (with a meta process, the process that built it releases it; the segment
    //  manager only ever takes the record from the manifest)
    const char *builder = env->meta.pid ? env->meta.endpoint : env->writer.endpoint;
    uint64_t released = 0;
    int64_t until = zclock_mono () + 30000;
    while (zclock_mono () < until
       &&  ((released = qv_itn_stat (builder, "indexes_released")) < 1
            || released == UINT64_MAX))
        zclock_sleep (50);
    assert_true (released >= 1 && released != UINT64_MAX);
    if (qv_it_wait_index (env->w, "sift", "v", NB + 150, 1000, why, sizeof why))
        fail_msg ("the split writer's index, released: %s", why);
    r = QV_IT_CALL_OK (env->w, "{op: 'delete', collection: 'sift', filter: 'id >= 9980'}");
    qv_doc_destroy (&r);
    r = QV_IT_CALL_OK (env->e, "{op: 'delete', collection: 'sift', filter: 'id >= 9980'}");
    qv_doc_destroy (&r);
    s_assert_equal (env->e, env->w, "split: an index, released on the writer");
    assert_int_equal (qv_itn_stat (builder, "indexes_released"), released);
    //  Restarted, the writer keeps the manifest's vector indexes as records without
    //  loading them (none to release), reports them built at once, builds nothing
    qv_itn_quiver_t *sm = s_segmgr_of (env);
    qv_it_client_destroy (&env->w);
    assert_int_equal (qv_itn_quiver_stop (sm, SIGTERM), 0);
    assert_int_equal (qv_itn_quiver_restart (sm, sm == &env->core ? 0 : 60000), 0);
    assert_true (s_core_serving (env));
    env->w = qv_it_client_new (env->writer.endpoint, QV_IT_CALL_MS);
    if (qv_it_wait_index (env->w, "sift", "v", NB + 150, 1000, why, sizeof why))
        fail_msg ("the restarted split writer's index: %s", why);
    assert_int_equal (qv_itn_stat (env->writer.endpoint, "indexes_released"), 0);
    assert_true (s_wait_searchers (env, 2));
    s_assert_equal (env->e, env->w, "split: the writer restarted");
    //  One searcher stops: the other answers; none left: UNAVAILABLE
    qv_it_client_destroy (&env->r [0]);
    assert_int_equal (qv_itn_quiver_stop (&env->replica [0], SIGTERM), 0);
    env->replica [0].pid = 0;
    s_assert_equal (env->e, env->w, "split: one searcher process stopped");
    qv_it_client_destroy (&env->r [1]);
    assert_int_equal (qv_itn_quiver_stop (&env->replica [1], SIGKILL), 128 + SIGKILL);
    env->replica [1].pid = 0;
    assert_true (s_wait_searchers (env, 0));
    r = QV_IT_CALL_ERR (env->w, "UNAVAILABLE", "{op: 'get', collection: 'sift', ids: [1]}");
    assert_non_null (strstr (qv_it_error (r), "searcher process"));
    qv_doc_destroy (&r);
}

//  kill -9 of a searcher process under a search load through the split writer: no
//  wrong answer, and the other answers; writes meanwhile (to another collection, so
//  the load's answer stays); it restarts, and when the other is killed too, the
//  restarted one answers, with every write.
static void
test_split_kill_searcher (void **state)
{
    s_env_t *env = *state;
    s_load (env);
    qv_doc_t *r = QV_IT_CALL_OK (env->w, "{op: 'create_collection', collection: 'other', fields: ["
                                 "{name: 'id', type: 'int64', primary: true},"
                                 "{name: 'v', type: 'float_vector', dim: 2}]}");
    qv_doc_destroy (&r);
    assert_int_equal (s_start_replica (env, 0), 0);
    assert_int_equal (s_start_replica (env, 1), 0);
    assert_true (s_wait_searchers (env, 2));
    char *want = s_search_text (env->w, "strong", NULL);
    assert_non_null (want);
    assert_true (strncmp (want, "ERROR", 5) != 0);
    s_load_t load = { .q = &env->writer, .want = want };
    pthread_t th;
    pthread_create (&th, NULL, s_search_load, &load);
    zclock_sleep (1500);
    assert_int_equal (qv_itn_quiver_stop (&env->replica [0], SIGKILL), 128 + SIGKILL);
    env->replica [0].pid = 0;
    for (uint32_t start = 0; start < 2000; start += 500)
        s_write_other (env->w, start, 500);
    int ok_before = atomic_load (&load.ok);
    zclock_sleep (1000);
    int ok_one = atomic_load (&load.ok) - ok_before;
    assert_true (s_wait_searchers (env, 1));    //  the killed one forgotten
    assert_int_equal (s_start_replica (env, 0), 0);
    assert_true (s_wait_searchers (env, 2));
    assert_int_equal (qv_itn_quiver_stop (&env->replica [1], SIGKILL), 128 + SIGKILL);
    env->replica [1].pid = 0;
    zclock_sleep (1500);
    atomic_store (&load.stop, true);
    pthread_join (th, NULL);
    fprintf (stderr, "search load through the split writer: %d ok (%d in a second with one "
             "searcher process), %d errors (the first: %s), %d wrong\n", atomic_load (&load.ok),
             ok_one, atomic_load (&load.failed), load.first_error, atomic_load (&load.wrong));
    assert_int_equal (atomic_load (&load.wrong), 0);
    assert_true (ok_one > 0);
    free (want);
    assert_true (s_wait_searchers (env, 1));
    r = QV_IT_CALL_OK (env->w, "{op: 'query', collection: 'other', filter: 'id >= 0', "
                               "output_fields: ['count(*)']}");
    assert_int_equal (qv_it_int (qv_it_path (r, "rows.0.count(*)")), 2000);
    qv_doc_destroy (&r);
    s_assert_equal (env->r [0], env->w, "split: the restarted searcher alone");
}

//  Strong reads through the split writer see every acknowledged insert: 1,000
//  insert-then-get pairs, 0 misses (a quarter with session and the insert's ts).
static void
test_split_strong (void **state)
{
    s_env_t *env = *state;
    s_create (env->w);
    assert_int_equal (s_start_replica (env, 0), 0);
    assert_int_equal (s_start_replica (env, 1), 0);
    assert_true (s_wait_searchers (env, 2));
    int misses = 0;
    for (int k = 0; k < 1000; k++) {
        uint64_t ts = s_write_rows (env->w, "insert", (uint32_t) k, 1, 100000);
        qv_doc_t *r;
        if (k % 4)
            r = qv_it_callf (env->w, "{op: 'get', collection: 'sift', ids: [%d]}", 100000 + k);
        else
            r = qv_it_callf (env->w, "{op: 'get', collection: 'sift', ids: [%d], consistency: "
                                     "'session', guarantee_ts: %llu}", 100000 + k,
                             (unsigned long long) ts);
        if (!qv_it_ok (r))
            fail_msg ("pair %d: %s %s", k, qv_it_code (r), qv_it_error (r));
        misses += qv_val_len (qv_it_path (r, "rows")) != 1;
        qv_doc_destroy (&r);
    }
    assert_int_equal (misses, 0);
}

typedef struct {
    const char *endpoint;
    int64_t base;                   //  ids base, base + 1, ... in batches of 100
    atomic_bool stop;
    atomic_int acked;               //  batches acknowledged (each after the one before)
} s_inserter_t;

//  Inserts batches of 100 rows until an insert fails (the writer died) or stop.
static void *
s_inserter (void *arg)
{
    s_inserter_t *a = arg;
    qv_it_client_t *c = qv_it_client_new (a->endpoint, 5000);
    for (int k = 0; !atomic_load (&a->stop); k++) {
        qv_wr_t *w = qv_wr_new ();
        qv_wr_map (w, 3);
        qv_wr_str (w, "op"); qv_wr_str (w, "insert");
        qv_wr_str (w, "collection"); qv_wr_str (w, "sift");
        qv_wr_str (w, "columns"); qv_wr_map (w, 3);
        qv_wr_str (w, "id"); qv_wr_array (w, 100);
        for (int i = 0; i < 100; i++)
            qv_wr_int (w, a->base + k * 100 + i);
        qv_wr_str (w, "tag"); qv_wr_array (w, 100);
        for (int i = 0; i < 100; i++)
            qv_wr_int (w, 1);
        uint32_t start = (uint32_t) (k * 100) % NB;
        qv_wr_str (w, "v"); qv_wr_bin (w, s_base + (size_t) start * DIM, (size_t) 100 * DIM * 4);
        qv_doc_t *r = qv_it_call (c, w);
        qv_wr_destroy (&w);
        bool ok = qv_it_ok (r);
        qv_doc_destroy (&r);
        if (!ok)
            break;
        atomic_fetch_add (&a->acked, 1);
    }
    qv_it_client_destroy (&c);
    return NULL;
}

//  kill -9 of the writer (segment manager, coordinator, flusher, proxy) under a
//  4-client insert load, with two searcher processes following it; a new writer takes
//  over the lease: every acknowledged row is there, read through it (its searches go
//  to the same searcher processes, which follow the new writer's feed), and new
//  writes reach them.
static void
test_split_writer_killed (void **state)
{
    s_env_t *env = *state;
    s_create (env->w);
    assert_int_equal (s_start_replica (env, 0), 0);
    assert_int_equal (s_start_replica (env, 1), 0);
    assert_true (s_wait_searchers (env, 2));
    s_inserter_t ins [4];
    pthread_t th [4];
    for (int i = 0; i < 4; i++) {
        ins [i] = (s_inserter_t) { .endpoint = env->writer.endpoint, .base = (int64_t) (i + 1) * 1000000 };
        pthread_create (&th [i], NULL, s_inserter, &ins [i]);
    }
    zclock_sleep (1500);
    qv_itn_quiver_t *sm = s_segmgr_of (env);
    assert_int_equal (qv_itn_quiver_stop (sm, SIGKILL), 128 + SIGKILL);
    for (int i = 0; i < 4; i++) {
        atomic_store (&ins [i].stop, true);
        pthread_join (th [i], NULL);
    }
    //  The same command line: it waits for the dead writer's lease to expire (2 s)
    assert_int_equal (qv_itn_quiver_restart (sm, sm == &env->core ? 0 : 60000), 0);
    assert_true (s_core_serving (env));
    qv_it_client_destroy (&env->w);
    env->w = qv_it_client_new (env->writer.endpoint, QV_IT_CALL_MS);
    assert_true (s_wait_searchers (env, 2));
    int acked = 0;
    for (int i = 0; i < 4; i++) {
        int n = atomic_load (&ins [i].acked);
        acked += n;
        char filter [128];
        snprintf (filter, sizeof filter, "id >= %lld and id < %lld", (long long) ins [i].base,
                  (long long) ins [i].base + n * 100);
        int64_t count = s_count (env->w, "strong", filter);
        if (count != n * 100)
            fail_msg ("client %d: %d batches acknowledged, %lld of their rows there", i, n,
                      (long long) count);
    }
    fprintf (stderr, "writer killed under 4 insert clients: %d batches of 100 acknowledged, "
             "all there after a new writer took over\n", acked);
    assert_true (acked > 0);
    //  New writes reach the searcher processes through the new writer
    s_write_rows (env->w, "insert", 0, 100, 9000000);
    assert_int_equal (s_count (env->w, "strong", "id >= 9000000"), 100);
    s_assert_equal (env->r [0], env->w, "split: after a new writer took over");
}

//  True if the log of the processes on env's data directory has line.
static bool
s_logged (s_env_t *env, const char *line)
{
    char path [512];
    snprintf (path, sizeof path, "%s/quiver.log", env->writer.data);
    FILE *f = fopen (path, "r");
    char buf [4096];
    bool found = false;
    while (f && !found && fgets (buf, sizeof buf, f))
        found = strstr (buf, line) != NULL;
    if (f)
        fclose (f);
    return found;
}

//  True if the store on env's data directory holds WAL object seq of shard 0 (at any
//  writer epoch), or cannot be listed.
static bool
s_wal_has (s_env_t *env, uint64_t seq)
{
    qv_store_t *store = qv_store_new_readonly (env->writer.data);
    zlist_t *keys = NULL;
    if (!store || qv_store_list (store, "wal/0/", &keys) != 0) {
        qv_store_destroy (&store);
        return true;
    }
    char want [64];
    snprintf (want, sizeof want, "wal/0/%020llu", (unsigned long long) seq);
    bool found = false;
    for (char *k = zlist_first (keys); k && !found; k = zlist_next (keys))
        found = strncmp (k, want, strlen (want)) == 0;
    zlist_destroy (&keys);
    qv_store_destroy (&store);
    return found;
}

//  A searcher that cannot read WAL objects it needs (the writer's feed carries no
//  objects, QV_FAULT_FEED_DROP, and the searcher is stopped while the writer writes,
//  flushes and checkpoints them away) falls behind, starts over from the newest
//  manifest in its process, and answers as the writer again.
static void
test_replica_starts_over_behind_checkpoint (void **state)
{
    s_env_t *env = *state;
    //  A writer whose feed carries ticks only (started again with the hook)
    qv_it_client_destroy (&env->w);
    assert_int_equal (qv_itn_quiver_stop (&env->writer, SIGTERM), 0);
    setenv ("QV_FAULT_FEED_DROP", "1", 1);
    int rc = qv_itn_quiver_start (&env->writer, env->nats.url, "", 60000);
    unsetenv ("QV_FAULT_FEED_DROP");
    assert_int_equal (rc, 0);
    env->w = qv_it_client_new (env->writer.endpoint, QV_IT_CALL_MS);
    s_load (env);
    assert_int_equal (s_start_replica (env, 0), 0);
    s_assert_same (env, env->r [0], "before the stop");
    uint64_t need = qv_itn_stat (env->replica [0].endpoint, "feed_applied_seq");
    kill (env->replica [0].pid, SIGSTOP);
    s_write_rows (env->w, "insert", 0, 500, 30000);
    qv_doc_t *r = QV_IT_CALL_OK (env->w, "{op: 'flush', collection: 'sift'}");
    qv_doc_destroy (&r);
    s_write_rows (env->w, "insert", 500, 500, 30000);
    r = QV_IT_CALL_OK (env->w, "{op: 'flush', collection: 'sift'}");
    qv_doc_destroy (&r);
    //  The writer truncates its WAL after a flush answers (the checkpoint reaches its
    //  WAL thread as a message): the searcher resumes only once the object it needs
    //  next is gone, or it would simply read it and never fall behind.
    bool gone = false;
    int64_t until = zclock_mono () + 30000;
    while (!gone && zclock_mono () < until) {
        gone = !s_wal_has (env, need);
        if (!gone)
            zclock_sleep (50);
    }
    assert_true (gone);
    kill (env->replica [0].pid, SIGCONT);
    //  At most 60 s of polling (plus one call's limit): a searcher that died fails the
    //  test instead of hanging it for 600 call timeouts. The log line is written just
    //  after the new searcher starts serving, so it is polled for as well.
    bool same = false, logged = false;
    until = zclock_mono () + 60000;
    while (!(same && logged) && zclock_mono () < until) {
        same = s_count (env->r [0], "eventually", "id >= 0") == NB + 1000;
        logged = s_logged (env, "started over from the newest manifest");
        if (!(same && logged))
            zclock_sleep (100);
    }
    assert_true (same);
    assert_true (logged);
    s_assert_same (env, env->r [0], "after starting over");
}

//  `quiver serve <args> --check-config`'s exit status.
static int
s_check_config (const char *args)
{
    char cmd [1024];
    snprintf (cmd, sizeof cmd, "%s serve %s --check-config >/dev/null 2>&1",
              qv_it_quiver_bin (), args);
    int status = system (cmd);
    return WIFEXITED (status) ? WEXITSTATUS (status) : -1;
}

//  --roles: the combinations built (with --nats where they need it); anything else
//  exits 2.
static void
test_roles_option (void **state)
{
    (void) state;
    assert_int_equal (s_check_config (""), 0);
    assert_int_equal (s_check_config ("--roles proxy,segment-manager,meta,flusher,searcher"), 0);
    assert_int_equal (s_check_config ("--roles searcher --nats nats://127.0.0.1:4222"), 0);
    assert_int_equal (s_check_config ("--roles searcher"), 2);              //  no --nats
    assert_int_equal (s_check_config ("--roles proxy,searcher --nats nats://127.0.0.1:4222"), 2);
    assert_int_equal (s_check_config ("--roles segment-manager --nats nats://127.0.0.1:4222"), 0);
    assert_int_equal (s_check_config ("--roles proxy,segment-manager --nats nats://127.0.0.1:4222"), 0);
    assert_int_equal (s_check_config ("--roles meta,flusher --nats nats://127.0.0.1:4222"), 0);
    assert_int_equal (s_check_config ("--roles meta --nats nats://127.0.0.1:4222"), 2);
    assert_int_equal (s_check_config ("--roles flusher --nats nats://127.0.0.1:4222"), 2);
    assert_int_equal (s_check_config ("--roles segment-manager"), 2);        //  no --nats
    assert_int_equal (s_check_config ("--roles meta,flusher"), 2);           //  no --nats
    assert_int_equal (s_check_config (S_WRITER_ROLES " --nats nats://127.0.0.1:4222"), 0);
    assert_int_equal (s_check_config ("--roles proxy,segment-manager,meta,flusher"), 2);  //  no --nats
    assert_int_equal (s_check_config ("--advertise tcp://h:1 --nats nats://127.0.0.1:4222"), 2);
    assert_int_equal (s_check_config ("--roles searcher,bogus --nats nats://127.0.0.1:4222"), 2);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_roles_option),
        cmocka_unit_test_setup_teardown (test_replicas_equal_writer, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_strong_and_session_on_replicas, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_replica_kill_restart, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_drop_while_inserts_queued, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_two_stores_one_nats, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_replica_metrics, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_late_replica_from_manifest, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_replica_compaction, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_replica_starts_over_behind_checkpoint, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_split_equals_embedded, s_setup_split, s_teardown),
        cmocka_unit_test_setup_teardown (test_split_kill_searcher, s_setup_split, s_teardown),
        cmocka_unit_test_setup_teardown (test_split_strong, s_setup_split, s_teardown),
        cmocka_unit_test_setup_teardown (test_split_writer_killed, s_setup_split, s_teardown),
        cmocka_unit_test_setup_teardown (test_split_compaction, s_setup_split, s_teardown),
        //  The same, with the writer as a proxy process in front of the writer core
        cmocka_unit_test_setup_teardown (test_split_equals_embedded, s_setup_split_proxy, s_teardown),
        cmocka_unit_test_setup_teardown (test_split_kill_searcher, s_setup_split_proxy, s_teardown),
        cmocka_unit_test_setup_teardown (test_split_strong, s_setup_split_proxy, s_teardown),
        cmocka_unit_test_setup_teardown (test_split_writer_killed, s_setup_split_proxy, s_teardown),
        cmocka_unit_test_setup_teardown (test_split_compaction, s_setup_split_proxy, s_teardown),
        cmocka_unit_test_setup_teardown (test_core_metrics, s_setup_split_proxy_metrics, s_teardown),
        //  ... and with the core as the segment manager and a meta process
        cmocka_unit_test_setup_teardown (test_split_equals_embedded, s_setup_split_meta, s_teardown),
        cmocka_unit_test_setup_teardown (test_split_kill_searcher, s_setup_split_meta, s_teardown),
        cmocka_unit_test_setup_teardown (test_split_strong, s_setup_split_meta, s_teardown),
        cmocka_unit_test_setup_teardown (test_split_writer_killed, s_setup_split_meta, s_teardown),
    };
    if (getenv ("QV_TEST_FILTER"))  //  e.g. "*kill*": only the tests it matches
        cmocka_set_test_filter (getenv ("QV_TEST_FILTER"));
    int rc = cmocka_run_group_tests (tests, NULL, NULL);
    free (s_base);
    free (s_query);
    return rc;
}
