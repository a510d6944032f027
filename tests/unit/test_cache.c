//  The segment cache (qv_cache.c) on a real directory: hit only for the same identity,
//  LRU eviction by size (a read refreshes), a reopen keeps the files and removes temp
//  files, corrupt and truncated files are dropped, a rewrite replaces.
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <czmq.h>
#include <fcntl.h>
#include <unistd.h>

#include "qv_cache.h"
#include "qv_rc.h"

static char s_dir [64];

static int
s_setup (void **state)
{
    (void) state;
    snprintf (s_dir, sizeof s_dir, "/tmp/qv-test-cache-XXXXXX");
    return mkdtemp (s_dir) ? 0 : -1;
}

static int
s_teardown (void **state)
{
    (void) state;
    char cmd [128];
    snprintf (cmd, sizeof cmd, "rm -rf '%s'", s_dir);
    return system (cmd) == 0 ? 0 : -1;
}

static bool
s_get_is (qv_cache_t *cache, const char *key, const char *ident, const char *text)
{
    void *data;
    size_t size;
    if (qv_cache_get (cache, key, ident, &data, &size))
        return false;
    bool same = size == strlen (text) && memcmp (data, text, size) == 0;
    free (data);
    return same;
}

static void
test_identity_and_rewrite (void **state)
{
    (void) state;
    qv_cache_t *cache = qv_cache_new (s_dir, 1 << 20);
    assert_non_null (cache);
    qv_cache_put (cache, "segments/1/01", "etag=a;size=5", "hello", 5);
    assert_true (s_get_is (cache, "segments/1/01", "etag=a;size=5", "hello"));
    //  Another identity: not served, and the copy is gone
    assert_int_equal (qv_cache_get (cache, "segments/1/01", "etag=b;size=5", &(void *) {0},
                                    &(size_t) {0}), QV_ENOTFOUND);
    assert_int_equal (qv_cache_get (cache, "segments/1/01", "etag=a;size=5", &(void *) {0},
                                    &(size_t) {0}), QV_ENOTFOUND);
    qv_cache_put (cache, "segments/1/01", "etag=c;size=6", "world!", 6);
    qv_cache_put (cache, "segments/1/01", "etag=d;size=3", "abc", 3);
    assert_true (s_get_is (cache, "segments/1/01", "etag=d;size=3", "abc"));
    qv_cache_stats_t st;
    qv_cache_stats (cache, &st);
    assert_int_equal (st.hits, 2);
    assert_int_equal (st.stale, 1);
    assert_int_equal (st.files, 1);
    qv_cache_drop (cache, "segments/1/01");
    qv_cache_stats (cache, &st);
    assert_int_equal (st.files, 0);
    assert_int_equal (st.bytes, 0);
    qv_cache_destroy (&cache);
}

static void
test_lru_and_reopen (void **state)
{
    (void) state;
    char big [1000];
    memset (big, 'x', sizeof big);
    //  Room for three of these (each 1,000 bytes + header + ident)
    qv_cache_t *cache = qv_cache_new (s_dir, 3 * 1100);
    assert_non_null (cache);
    qv_cache_put (cache, "segments/a", "i", big, sizeof big);
    qv_cache_put (cache, "segments/b", "i", big, sizeof big);
    qv_cache_put (cache, "segments/c", "i", big, sizeof big);
    void *data;
    size_t size;
    assert_int_equal (qv_cache_get (cache, "segments/a", "i", &data, &size), 0);  //  a is now newest
    free (data);
    qv_cache_put (cache, "segments/d", "i", big, sizeof big);                   //  evicts b
    qv_cache_stats_t st;
    qv_cache_stats (cache, &st);
    assert_int_equal (st.evictions, 1);
    assert_int_equal (st.files, 3);
    assert_true (st.bytes <= 3 * 1100);
    assert_int_equal (qv_cache_get (cache, "segments/b", "i", &data, &size), QV_ENOTFOUND);
    qv_cache_destroy (&cache);

    //  A temp file of an interrupted write is removed at open; the copies stay
    char tmp [128];
    snprintf (tmp, sizeof tmp, "%s/.tmp-1-1", s_dir);
    int fd = open (tmp, O_WRONLY | O_CREAT, 0644);
    assert_true (fd >= 0);
    assert_int_equal (write (fd, "junk", 4), 4);
    close (fd);
    cache = qv_cache_new (s_dir, 3 * 1100);
    assert_non_null (cache);
    assert_int_equal (access (tmp, F_OK), -1);
    qv_cache_stats (cache, &st);
    assert_int_equal (st.files, 3);
    assert_int_equal (qv_cache_get (cache, "segments/c", "i", &data, &size), 0);
    assert_int_equal (size, sizeof big);
    free (data);
    qv_cache_destroy (&cache);
    //  A smaller limit evicts at open
    cache = qv_cache_new (s_dir, 1100);
    qv_cache_stats (cache, &st);
    assert_int_equal (st.files, 1);
    qv_cache_destroy (&cache);
}

static void
test_corrupt_dropped (void **state)
{
    (void) state;
    qv_cache_t *cache = qv_cache_new (s_dir, 1 << 20);
    qv_cache_put (cache, "segments/x", "i", "0123456789", 10);
    qv_cache_put (cache, "segments/y", "i", "0123456789", 10);
    char path [128];
    snprintf (path, sizeof path, "%s/segments@x", s_dir);
    int fd = open (path, O_WRONLY);
    assert_true (fd >= 0);
    assert_int_equal (pwrite (fd, "Z", 1, 30), 1);     //  in the data
    close (fd);
    snprintf (path, sizeof path, "%s/segments@y", s_dir);
    assert_int_equal (truncate (path, 20), 0);
    void *data;
    size_t size;
    assert_int_equal (qv_cache_get (cache, "segments/x", "i", &data, &size), QV_ENOTFOUND);
    assert_int_equal (qv_cache_get (cache, "segments/y", "i", &data, &size), QV_ENOTFOUND);
    assert_int_equal (access (path, F_OK), -1);
    qv_cache_stats_t st;
    qv_cache_stats (cache, &st);
    assert_int_equal (st.corrupt, 2);
    assert_int_equal (st.files, 0);
    assert_int_equal (st.hits, 0);
    qv_cache_destroy (&cache);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test_setup_teardown (test_identity_and_rewrite, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_lru_and_reopen, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_corrupt_dropped, s_setup, s_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
