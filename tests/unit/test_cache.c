//  The segment cache (qv_cache.c) on a real directory: hit only for the same identity,
//  LRU eviction by size (a read refreshes), a reopen keeps the files and removes temp
//  files, corrupt and truncated files are dropped, a rewrite replaces, large files
//  (written and read with O_DIRECT where the filesystem allows) come back exact, and
//  files of format version 1 are still served.
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <czmq.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "qv_cache.h"
#include "qv_crc.h"
#include "qv_envelope.h"
#include "qv_le.h"
#include "qv_rc.h"

#define S_DATA_AT 4096              //  where a version 2 file's data starts

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
    //  Room for three of these (each 1,000 bytes after the first block)
    const uint64_t file = S_DATA_AT + sizeof big;
    qv_cache_t *cache = qv_cache_new (s_dir, 3 * file + 100);
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
    assert_int_equal (st.bytes, 3 * file);
    assert_int_equal (qv_cache_get (cache, "segments/b", "i", &data, &size), QV_ENOTFOUND);
    qv_cache_destroy (&cache);

    //  A temp file of an interrupted write is removed at open; the copies stay
    char tmp [128];
    snprintf (tmp, sizeof tmp, "%s/.tmp-1-1", s_dir);
    int fd = open (tmp, O_WRONLY | O_CREAT, 0644);
    assert_true (fd >= 0);
    assert_int_equal (write (fd, "junk", 4), 4);
    close (fd);
    cache = qv_cache_new (s_dir, 3 * file + 100);
    assert_non_null (cache);
    assert_int_equal (access (tmp, F_OK), -1);
    qv_cache_stats (cache, &st);
    assert_int_equal (st.files, 3);
    assert_int_equal (qv_cache_get (cache, "segments/c", "i", &data, &size), 0);
    assert_int_equal (size, sizeof big);
    free (data);
    qv_cache_destroy (&cache);
    //  A smaller limit evicts at open
    cache = qv_cache_new (s_dir, file + 100);
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
    qv_cache_put (cache, "segments/z", "i", "0123456789", 10);
    char path [128];
    snprintf (path, sizeof path, "%s/segments@x", s_dir);
    int fd = open (path, O_WRONLY);
    assert_true (fd >= 0);
    assert_int_equal (pwrite (fd, "Z", 1, S_DATA_AT + 3), 1);     //  in the data
    close (fd);
    snprintf (path, sizeof path, "%s/segments@z", s_dir);
    fd = open (path, O_WRONLY);
    assert_true (fd >= 0);
    assert_int_equal (pwrite (fd, "Z", 1, 100), 1);   //  in the zeros before the data
    close (fd);
    snprintf (path, sizeof path, "%s/segments@y", s_dir);
    assert_int_equal (truncate (path, 20), 0);
    void *data;
    size_t size;
    assert_int_equal (qv_cache_get (cache, "segments/x", "i", &data, &size), QV_ENOTFOUND);
    assert_int_equal (qv_cache_get (cache, "segments/z", "i", &data, &size), QV_ENOTFOUND);
    snprintf (path, sizeof path, "%s/segments@y", s_dir);
    assert_int_equal (qv_cache_get (cache, "segments/y", "i", &data, &size), QV_ENOTFOUND);
    assert_int_equal (access (path, F_OK), -1);
    qv_cache_stats_t st;
    qv_cache_stats (cache, &st);
    assert_int_equal (st.corrupt, 3);
    assert_int_equal (st.files, 0);
    assert_int_equal (st.hits, 0);
    qv_cache_destroy (&cache);
}

//  Objects of 1 MiB and more take the direct I/O path (on a filesystem that has it):
//  sizes that are not whole blocks, data that is not aligned in memory, and one larger
//  than the bounce buffer come back byte for byte; the file holds the first block and
//  the data, no padding; a damaged byte deep in the data is caught.
static void
test_large_files (void **state)
{
    (void) state;
    qv_cache_t *cache = qv_cache_new (s_dir, 64 << 20);
    assert_non_null (cache);
    const size_t sizes [] = { (1 << 20) - S_DATA_AT, 3 * (1 << 20) + 123, 9 * (1 << 20) + 4096 };
    for (size_t t = 0; t < sizeof sizes / sizeof sizes [0]; t++) {
        size_t n = sizes [t];
        uint8_t *raw = malloc (n + 1);
        assert_non_null (raw);
        uint8_t *data = raw + 1;    //  not aligned
        for (size_t i = 0; i < n; i++)
            data [i] = (uint8_t) (i * 2654435761u >> 13) ^ (uint8_t) t;
        char key [32];
        snprintf (key, sizeof key, "segments/big%zu", t);
        qv_cache_put (cache, key, "etag=big", data, n);
        char path [128];
        snprintf (path, sizeof path, "%s/segments@big%zu", s_dir, t);
        struct stat st;
        assert_int_equal (stat (path, &st), 0);
        assert_int_equal ((uint64_t) st.st_size, S_DATA_AT + n);
        void *got;
        size_t size;
        assert_int_equal (qv_cache_get (cache, key, "etag=big", &got, &size), 0);
        assert_int_equal (size, n);
        assert_memory_equal (got, data, n);
        free (got);
        //  Damage one byte near the end: the whole copy is refused
        int fd = open (path, O_WRONLY);
        assert_true (fd >= 0);
        uint8_t z = data [n - 7] ^ 0xFF;
        assert_int_equal (pwrite (fd, &z, 1, (off_t) (S_DATA_AT + n - 7)), 1);
        close (fd);
        assert_int_equal (qv_cache_get (cache, key, "etag=big", &got, &size), QV_ENOTFOUND);
        free (raw);
    }
    qv_cache_stats_t st;
    qv_cache_stats (cache, &st);
    assert_int_equal (st.hits, 3);
    assert_int_equal (st.corrupt, 3);
    assert_int_equal (st.files, 0);
    qv_cache_destroy (&cache);
}

//  A file written in format version 1 (the data right after the ident) is served.
static void
test_version1_read (void **state)
{
    (void) state;
    const char *ident = "etag=v1", *text = "the old layout";
    size_t ilen = strlen (ident), n = strlen (text);
    uint8_t file [256];
    uint8_t *p = file + QV_ENVELOPE_HEADER_SIZE;
    qv_le_put32 (p, (uint32_t) ilen);
    memcpy (p + 4, ident, ilen);
    memcpy (p + 4 + ilen, text, n);
    size_t payload = 4 + ilen + n;
    qv_envelope_header (file, QV_ENVELOPE_CACHE, 1, payload, qv_crc32c (p, payload));
    char path [128];
    snprintf (path, sizeof path, "%s/segments@old", s_dir);
    int fd = open (path, O_WRONLY | O_CREAT, 0644);
    assert_true (fd >= 0);
    assert_int_equal (write (fd, file, QV_ENVELOPE_HEADER_SIZE + payload),
                      (ssize_t) (QV_ENVELOPE_HEADER_SIZE + payload));
    close (fd);
    qv_cache_t *cache = qv_cache_new (s_dir, 1 << 20);
    assert_non_null (cache);
    assert_true (s_get_is (cache, "segments/old", ident, text));
    qv_cache_destroy (&cache);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test_setup_teardown (test_identity_and_rewrite, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_lru_and_reopen, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_corrupt_dropped, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_large_files, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_version1_read, s_setup, s_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
