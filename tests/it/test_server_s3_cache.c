//  The local segment cache on S3 (--cache-dir, --cache-mb): a warm restart downloads
//  nothing it has, a cold start downloads each object once, a corrupt cache file is
//  dropped and downloaded again, a stale one (the bucket's object under the same key
//  changed) is never served, and eviction keeps the cache under its limit.
//  Real quiver servers on s3rver; needs QV_S3_ENDPOINT (tools/test.sh).
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <czmq.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "qv_codec.h"
#include "qv_it_docs.h"
#include "qv_it_sift.h"
#include "qv_store.h"

#define CALL_OK QV_IT_CALL_OK

//  How many objects the bucket holds under segments/ (segments and index objects).
static size_t
s_segment_objects (qv_store_t *store, uint64_t *bytes)
{
    zlist_t *keys;
    assert_int_equal (qv_store_list (store, "segments/", &keys), 0);
    size_t n = zlist_size (keys);
    *bytes = 0;
    for (char *k = zlist_first (keys); k; k = zlist_next (keys)) {
        void *data;
        size_t size;
        assert_int_equal (qv_store_get (store, k, &data, &size), 0);
        *bytes += size;
        free (data);
    }
    zlist_destroy (&keys);
    return n;
}

//  Inserts rows first .. first+n-1 with vectors of dim components (seed varies them)
//  and flushes them into a segment.
static void
s_insert_flush (qv_it_client_t *c, int first, int n, int dim, int seed)
{
    size_t cap = 128 + (size_t) n * ((size_t) dim * 12 + 32);
    char *text = malloc (cap);
    size_t len = (size_t) snprintf (text, cap, "{op: 'insert', collection: 'docs', rows: [");
    for (int i = 0; i < n; i++) {
        int id = first + i;
        len += (size_t) snprintf (text + len, cap - len, "%s{id: %d, v: [", i ? "," : "", id);
        for (int d = 0; d < dim; d++)
            len += (size_t) snprintf (text + len, cap - len, "%s%d.5", d ? "," : "",
                                      (id * 31 + d * 7 + seed) % 101);
        len += (size_t) snprintf (text + len, cap - len, "]}");
    }
    snprintf (text + len, cap - len, "]}");
    qv_doc_t *r = CALL_OK (c, "%s", text);
    free (text);
    qv_doc_destroy (&r);
    r = CALL_OK (c, "{op: 'flush', collection: 'docs'}");
    qv_doc_destroy (&r);
}

//  The first component of row id's vector, as the server returns it.
static double
s_first_component (qv_it_client_t *c, int id)
{
    qv_doc_t *r = CALL_OK (c, "{op: 'get', collection: 'docs', ids: [%d], output_fields: ['v']}",
                           id);
    const qv_val_t *x = qv_it_path (r, "rows.0.v.0");
    assert_non_null (x);
    double v = qv_it_num (x);
    qv_doc_destroy (&r);
    return v;
}

static void
s_stop (qv_it_server_t *server, qv_it_client_t **c)
{
    qv_it_client_destroy (c);
    assert_int_equal (qv_it_server_signal (server, SIGTERM, 30000), 0);
}

//  (1) Warm restart: nothing downloaded; cold start (empty data directory): each
//  object downloaded exactly once; the server's own writes are warm (write-through).
static void
test_warm_and_cold (void **state)
{
    (void) state;
    if (!qv_it_need_s3 ())
        skip ();
    qv_it_server_t *first = qv_it_server_new (NULL);
    assert_int_equal (qv_it_server_start (first), 0);
    qv_it_client_t *c = qv_it_client_new (first->endpoint, QV_IT_CALL_MS);
    assert_true (qv_it_docs_create (c, 8));
    s_insert_flush (c, 0, 300, 8, 0);
    s_insert_flush (c, 300, 300, 8, 0);
    qv_doc_t *r = CALL_OK (c, "{op: 'create_index', collection: 'docs', field: 'v', "
                              "index_type: 'HNSW', metric: 'L2', params: {M: 8, efConstruction: 32}}");
    qv_doc_destroy (&r);
    char why [256];
    int rc = qv_it_wait_index (c, "docs", "v", 600, 120000, why, sizeof why);
    if (rc)
        fail_msg ("the index was not built: %s", why);
    //  flush waits for the manifests requested before it (the one naming the indexes)
    r = CALL_OK (c, "{op: 'flush', collection: 'docs'}");
    qv_doc_destroy (&r);
    //  Two segments and their two index objects, all written through the cache
    qv_store_t *store = qv_it_server_store (first);
    uint64_t bytes = 0;
    size_t objects = s_segment_objects (store, &bytes);
    assert_int_equal (objects, 4);
    assert_int_equal (qv_it_stat (c, "cache_misses"), 0);
    assert_true (qv_it_stat (c, "cache_bytes") >= (int64_t) bytes);
    s_stop (first, &c);

    //  Warm restart: every object served from the cache, no byte downloaded
    assert_int_equal (qv_it_server_start (first), 0);
    c = qv_it_client_new (first->endpoint, QV_IT_CALL_MS);
    assert_int_equal (qv_it_docs_rows (c), 600);
    assert_int_equal (qv_it_stat (c, "cache_misses"), 0);
    assert_int_equal (qv_it_stat (c, "cache_bytes_downloaded"), 0);
    assert_int_equal (qv_it_stat (c, "cache_hits"), 4);
    double v = s_first_component (c, 123);
    s_stop (first, &c);

    //  Cold start on another machine: each object downloaded once, then warm
    qv_it_server_t *second = qv_it_server_new (NULL);
    snprintf (second->s3_prefix, sizeof second->s3_prefix, "%s", first->s3_prefix);
    assert_int_equal (qv_it_server_start (second), 0);
    c = qv_it_client_new (second->endpoint, QV_IT_CALL_MS);
    assert_int_equal (qv_it_docs_rows (c), 600);
    assert_int_equal (qv_it_stat (c, "cache_hits"), 0);
    assert_int_equal (qv_it_stat (c, "cache_misses"), 4);
    assert_int_equal (qv_it_stat (c, "cache_bytes_downloaded"), (int64_t) bytes);
    assert_true (s_first_component (c, 123) == v);
    s_stop (second, &c);
    assert_int_equal (qv_it_server_start (second), 0);
    c = qv_it_client_new (second->endpoint, QV_IT_CALL_MS);
    assert_int_equal (qv_it_stat (c, "cache_hits"), 4);
    assert_int_equal (qv_it_stat (c, "cache_misses"), 0);
    assert_int_equal (qv_it_docs_rows (c), 600);
    s_stop (second, &c);

    //  --cache-mb 0 turns it off: stats has no cache counters, the data is the same
    const char *off [] = { "--cache-mb", "0", NULL };
    qv_it_server_t *third = qv_it_server_new (off);
    snprintf (third->s3_prefix, sizeof third->s3_prefix, "%s", first->s3_prefix);
    assert_int_equal (qv_it_server_start (third), 0);
    c = qv_it_client_new (third->endpoint, QV_IT_CALL_MS);
    assert_int_equal (qv_it_docs_rows (c), 600);
    r = CALL_OK (c, "{op: 'stats'}");
    assert_null (qv_it_path (r, "cache_hits"));
    qv_doc_destroy (&r);
    s_stop (third, &c);
    qv_store_destroy (&store);
    qv_it_server_destroy (&third);
    qv_it_server_destroy (&second);
    qv_it_server_destroy (&first);
}

//  (2) A corrupt cache file (a flipped byte, a truncated file) is detected by its
//  checksum, dropped and downloaded again; never served.
static void
test_corrupt_file (void **state)
{
    (void) state;
    if (!qv_it_need_s3 ())
        skip ();
    char cache [PATH_MAX + 16];
    qv_it_server_t *server = qv_it_server_new (NULL);
    snprintf (cache, sizeof cache, "%s/cache", server->dir);
    assert_int_equal (qv_it_server_start (server), 0);
    qv_it_client_t *c = qv_it_client_new (server->endpoint, QV_IT_CALL_MS);
    assert_true (qv_it_docs_create (c, 8));
    s_insert_flush (c, 0, 300, 8, 0);
    s_insert_flush (c, 300, 300, 8, 0);
    double v = s_first_component (c, 7), w = s_first_component (c, 407);
    s_stop (server, &c);

    char a [PATH_MAX + 128], b [PATH_MAX + 128];
    //  Segments 1 and 2, written by the store's first writer (epoch 1: its key's suffix)
    snprintf (a, sizeof a, "%s/segments@1@00000000000000000001-00000000000000000001", cache);
    snprintf (b, sizeof b, "%s/segments@1@00000000000000000002-00000000000000000001", cache);
    long asize = qv_it_file_size (a), bsize = qv_it_file_size (b);
    assert_true (asize > 0 && bsize > 0);
    assert_int_equal (qv_it_flip_byte (a, -5), 0);
    assert_int_equal (truncate (b, bsize / 2), 0);

    assert_int_equal (qv_it_server_start (server), 0);
    c = qv_it_client_new (server->endpoint, QV_IT_CALL_MS);
    assert_int_equal (qv_it_docs_rows (c), 600);
    assert_int_equal (qv_it_stat (c, "cache_corrupt"), 2);
    assert_int_equal (qv_it_stat (c, "cache_misses"), 2);
    assert_int_equal (qv_it_stat (c, "cache_hits"), 0);
    assert_true (s_first_component (c, 7) == v);
    assert_true (s_first_component (c, 407) == w);
    s_stop (server, &c);
    //  The files were written again, whole
    assert_int_equal (qv_it_file_size (a), asize);
    assert_int_equal (qv_it_file_size (b), bsize);
    assert_int_equal (qv_it_server_start (server), 0);
    c = qv_it_client_new (server->endpoint, QV_IT_CALL_MS);
    assert_int_equal (qv_it_stat (c, "cache_hits"), 2);
    assert_int_equal (qv_it_stat (c, "cache_corrupt"), 0);
    s_stop (server, &c);
    qv_it_server_destroy (&server);
}

//  (3) Stale: the bucket's object under a cached key is replaced by another one (as a
//  segment id written again after a crash, or another server's write); the cached
//  copy is of another ETag and is not served.
static void
test_stale_entry (void **state)
{
    (void) state;
    if (!qv_it_need_s3 ())
        skip ();
    //  Two databases with the same layout and different values
    qv_it_server_t *one = qv_it_server_new (NULL), *two = qv_it_server_new (NULL);
    double v_one, v_two;
    assert_int_equal (qv_it_server_start (one), 0);
    qv_it_client_t *c = qv_it_client_new (one->endpoint, QV_IT_CALL_MS);
    assert_true (qv_it_docs_create (c, 8));
    s_insert_flush (c, 0, 300, 8, 0);
    v_one = s_first_component (c, 5);
    s_stop (one, &c);
    assert_int_equal (qv_it_server_start (two), 0);
    c = qv_it_client_new (two->endpoint, QV_IT_CALL_MS);
    assert_true (qv_it_docs_create (c, 8));
    s_insert_flush (c, 0, 300, 8, 50);
    v_two = s_first_component (c, 5);
    s_stop (two, &c);
    assert_true (v_one != v_two);

    //  Replace one's segment object in the bucket by two's (same key, same rows)
    const char *key = "segments/1/00000000000000000001-00000000000000000001";   //  epoch 1
    qv_store_t *s1 = qv_it_server_store (one), *s2 = qv_it_server_store (two);
    void *data;
    size_t size;
    assert_int_equal (qv_store_get (s2, key, &data, &size), 0);
    assert_int_equal (qv_store_put (s1, key, data, size), 0);
    free (data);

    //  one's warm cache holds its old copy: it is not served
    assert_int_equal (qv_it_server_start (one), 0);
    c = qv_it_client_new (one->endpoint, QV_IT_CALL_MS);
    assert_int_equal (qv_it_docs_rows (c), 300);
    assert_true (s_first_component (c, 5) == v_two);
    assert_int_equal (qv_it_stat (c, "cache_stale"), 1);
    assert_int_equal (qv_it_stat (c, "cache_misses"), 1);
    assert_int_equal (qv_it_stat (c, "cache_hits"), 0);
    s_stop (one, &c);
    qv_store_destroy (&s1);
    qv_store_destroy (&s2);
    qv_it_server_destroy (&two);
    qv_it_server_destroy (&one);
}

//  (4) Eviction: with --cache-mb 1 and about 2.5 MB of segments the cache stays under
//  1 MiB, evicts the least recently used, and the evicted objects are downloaded again.
static void
test_eviction (void **state)
{
    (void) state;
    if (!qv_it_need_s3 ())
        skip ();
    const char *small [] = { "--cache-mb", "1", NULL };
    qv_it_server_t *server = qv_it_server_new (small);
    assert_int_equal (qv_it_server_start (server), 0);
    qv_it_client_t *c = qv_it_client_new (server->endpoint, QV_IT_CALL_MS);
    assert_true (qv_it_docs_create (c, 64));
    for (int s = 0; s < 8; s++)
        s_insert_flush (c, s * 1200, 1200, 64, 0);
    int64_t used = qv_it_stat (c, "cache_bytes");
    assert_true (used > 0 && used <= 1 << 20);
    assert_true (qv_it_stat (c, "cache_evictions") > 0);
    double v = s_first_component (c, 10);
    s_stop (server, &c);

    assert_int_equal (qv_it_server_start (server), 0);
    c = qv_it_client_new (server->endpoint, QV_IT_CALL_MS);
    assert_int_equal (qv_it_docs_rows (c), 8 * 1200);
    assert_true (s_first_component (c, 10) == v);
    int64_t hits = qv_it_stat (c, "cache_hits"), misses = qv_it_stat (c, "cache_misses");
    //  Loading in key order evicts the newest copies before they are reached (LRU
    //  under a scan), so how many hit depends on sizes; every segment is counted once
    assert_int_equal (hits + misses, 8);
    assert_true (misses >= 5);
    used = qv_it_stat (c, "cache_bytes");
    assert_true (used > 0 && used <= 1 << 20);
    s_stop (server, &c);
    //  The directory itself holds no more than the limit
    char cache [PATH_MAX + 16];
    snprintf (cache, sizeof cache, "%s/cache", server->dir);
    zdir_t *dir = zdir_new (cache, NULL);
    assert_non_null (dir);
    assert_true (zdir_cursize (dir) <= 1 << 20);
    zdir_destroy (&dir);
    qv_it_server_destroy (&server);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_warm_and_cold),
        cmocka_unit_test (test_corrupt_file),
        cmocka_unit_test (test_stale_entry),
        cmocka_unit_test (test_eviction),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
