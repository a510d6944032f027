//  Object store front and filesystem backend: put/get/range/list/delete, keys, lock,
//  fault injection, temp files.
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "qv_rc.h"
#include "qv_store.h"

typedef struct {
    char dir [64];                  //  fresh temp directory for this test
    qv_store_t *store;
} fixture_t;

static int
s_rm_entry (const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void) st; (void) flag; (void) ftw;
    return remove (path);
}

static void
s_rm_rf (const char *dir)
{
    nftw (dir, s_rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static int
s_setup (void **state)
{
    fixture_t *f = calloc (1, sizeof (fixture_t));
    strcpy (f->dir, "/tmp/qv_test_store_XXXXXX");
    if (!mkdtemp (f->dir))
        return -1;
    f->store = qv_store_new (f->dir);
    if (!f->store)
        return -1;
    *state = f;
    return 0;
}

static int
s_teardown (void **state)
{
    fixture_t *f = *state;
    qv_store_destroy (&f->store);
    s_rm_rf (f->dir);
    free (f);
    return 0;
}

//  Writes raw bytes to DIR/rel, bypassing the store.
static void
s_write_file (const char *dir, const char *rel, const char *text)
{
    char path [512];
    snprintf (path, sizeof path, "%s/%s", dir, rel);
    FILE *file = fopen (path, "w");
    assert_non_null (file);
    fputs (text, file);
    fclose (file);
}

static bool
s_file_exists (const char *dir, const char *rel)
{
    char path [512];
    snprintf (path, sizeof path, "%s/%s", dir, rel);
    return access (path, F_OK) == 0;
}

//  Lists prefix and joins the keys with ','.
static char *
s_list_joined (qv_store_t *store, const char *prefix)
{
    zlist_t *keys = NULL;
    assert_int_equal (qv_store_list (store, prefix, &keys), 0);
    assert_non_null (keys);
    static char out [4096];
    out [0] = 0;
    for (char *key = zlist_first (keys); key; key = zlist_next (keys)) {
        if (out [0])
            strcat (out, ",");
        strcat (out, key);
    }
    zlist_destroy (&keys);
    return out;
}

static void
test_put_get (void **state)
{
    fixture_t *f = *state;
    assert_int_equal (qv_store_put (f->store, "hello", "world", 5), 0);
    void *data = NULL;
    size_t size = 0;
    assert_int_equal (qv_store_get (f->store, "hello", &data, &size), 0);
    assert_int_equal (size, 5);
    assert_memory_equal (data, "world", 5);
    free (data);

    //  Empty object
    assert_int_equal (qv_store_put (f->store, "empty", NULL, 0), 0);
    assert_int_equal (qv_store_get (f->store, "empty", &data, &size), 0);
    assert_int_equal (size, 0);
    free (data);

    //  A large object round-trips byte for byte
    size_t big = 3 * 1024 * 1024 + 17;
    unsigned char *buf = malloc (big);
    for (size_t i = 0; i < big; i++)
        buf [i] = (unsigned char) (i * 2654435761u >> 13);
    assert_int_equal (qv_store_put (f->store, "big.bin", buf, big), 0);
    assert_int_equal (qv_store_get (f->store, "big.bin", &data, &size), 0);
    assert_int_equal (size, big);
    assert_memory_equal (data, buf, big);
    free (data);
    free (buf);
}

static void
test_overwrite (void **state)
{
    fixture_t *f = *state;
    assert_int_equal (qv_store_put (f->store, "a/k", "first version", 13), 0);
    assert_int_equal (qv_store_put (f->store, "a/k", "v2", 2), 0);
    void *data = NULL;
    size_t size = 0;
    assert_int_equal (qv_store_get (f->store, "a/k", &data, &size), 0);
    assert_int_equal (size, 2);
    assert_memory_equal (data, "v2", 2);
    free (data);
    //  No temp file is left in the object's directory
    char dir [128];
    snprintf (dir, sizeof dir, "%s/a", f->dir);
    DIR *handle = opendir (dir);
    assert_non_null (handle);
    int entries = 0;
    for (struct dirent *entry; (entry = readdir (handle)); )
        entries += strcmp (entry->d_name, ".") && strcmp (entry->d_name, "..");
    closedir (handle);
    assert_int_equal (entries, 1);
}

static void
test_get_range (void **state)
{
    fixture_t *f = *state;
    assert_int_equal (qv_store_put (f->store, "r", "0123456789", 10), 0);
    void *data = NULL;
    size_t got = 99;
    assert_int_equal (qv_store_get_range (f->store, "r", 3, 4, &data, &got), 0);
    assert_int_equal (got, 4);
    assert_memory_equal (data, "3456", 4);
    free (data);
    //  Short at the end
    assert_int_equal (qv_store_get_range (f->store, "r", 7, 100, &data, &got), 0);
    assert_int_equal (got, 3);
    assert_memory_equal (data, "789", 3);
    free (data);
    //  At and beyond the end: nothing, not an error
    assert_int_equal (qv_store_get_range (f->store, "r", 10, 5, &data, &got), 0);
    assert_int_equal (got, 0);
    free (data);
    assert_int_equal (qv_store_get_range (f->store, "r", 1000, 5, &data, &got), 0);
    assert_int_equal (got, 0);
    free (data);
    assert_int_equal (qv_store_get_range (f->store, "nope", 0, 5, &data, &got), QV_ENOTFOUND);
    assert_null (data);
}

static void
test_list (void **state)
{
    fixture_t *f = *state;
    const char *keys [] = {
        "wal/1/00000000000000000002", "wal/1/00000000000000000001", "wal/10/x",
        "seg/b", "seg/a/deep/er/file", "seg/a.idx", "top", "wal/1/00000000000000000010"
    };
    for (size_t i = 0; i < sizeof keys / sizeof keys [0]; i++)
        assert_int_equal (qv_store_put (f->store, keys [i], "x", 1), 0);
    assert_int_equal (qv_store_lock (f->store), 0);     //  LOCK is never listed

    assert_string_equal (s_list_joined (f->store, ""),
                         "seg/a.idx,seg/a/deep/er/file,seg/b,top,"
                         "wal/1/00000000000000000001,wal/1/00000000000000000002,"
                         "wal/1/00000000000000000010,wal/10/x");
    assert_string_equal (s_list_joined (f->store, "wal/1/"),
                         "wal/1/00000000000000000001,wal/1/00000000000000000002,"
                         "wal/1/00000000000000000010");
    //  A prefix is a string prefix, not a directory
    assert_string_equal (s_list_joined (f->store, "wal/1"),
                         "wal/1/00000000000000000001,wal/1/00000000000000000002,"
                         "wal/1/00000000000000000010,wal/10/x");
    assert_string_equal (s_list_joined (f->store, "seg/a"), "seg/a.idx,seg/a/deep/er/file");
    assert_string_equal (s_list_joined (f->store, "seg/a/"), "seg/a/deep/er/file");
    assert_string_equal (s_list_joined (f->store, "t"), "top");
    assert_string_equal (s_list_joined (f->store, "missing/"), "");
    assert_string_equal (s_list_joined (f->store, "top/"), "");
    zlist_t *list = NULL;
    assert_int_equal (qv_store_list (f->store, "../", &list), QV_EINVAL);
    assert_null (list);
}

static void
test_delete (void **state)
{
    fixture_t *f = *state;
    assert_int_equal (qv_store_put (f->store, "d/x", "1", 1), 0);
    assert_int_equal (qv_store_put (f->store, "d/y", "2", 1), 0);
    assert_int_equal (qv_store_delete (f->store, "d/x"), 0);
    void *data = NULL;
    size_t size = 0;
    assert_int_equal (qv_store_get (f->store, "d/x", &data, &size), QV_ENOTFOUND);
    assert_null (data);
    assert_non_null (strstr (qv_err_msg (), "d/x"));
    assert_string_equal (s_list_joined (f->store, ""), "d/y");
    //  Deleting what is not there is not an error
    assert_int_equal (qv_store_delete (f->store, "d/x"), 0);
    assert_int_equal (qv_store_delete (f->store, "never/was/here"), 0);
    //  A directory is not an object
    assert_int_equal (qv_store_get (f->store, "d", &data, &size), QV_ENOTFOUND);
    assert_int_equal (qv_store_delete (f->store, "d"), 0);
    assert_string_equal (s_list_joined (f->store, ""), "d/y");
}

static void
test_bad_keys (void **state)
{
    fixture_t *f = *state;
    const char *bad [] = {
        "", "/abs", "a//b", "a/", "..", "../x", "a/../b", ".", "a/./b", ".hidden",
        "a/.tmp-1-2-3-x", "sp ace", "back\\slash", "uni\xc3\xa9", "tab\t", "LOCK",
        "a:b", "q?", "star*"
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad [0]; i++) {
        void *data = NULL;
        size_t size = 0;
        assert_int_equal (qv_store_put (f->store, bad [i], "x", 1), QV_EINVAL);
        assert_int_equal (qv_store_get (f->store, bad [i], &data, &size), QV_EINVAL);
        assert_int_equal (qv_store_delete (f->store, bad [i]), QV_EINVAL);
    }
    char longseg [300];
    memset (longseg, 'a', sizeof longseg - 1);
    longseg [sizeof longseg - 1] = 0;
    assert_int_equal (qv_store_put (f->store, longseg, "x", 1), QV_EINVAL);
    //  Nothing was written anywhere
    assert_string_equal (s_list_joined (f->store, ""), "");
    //  Dots, dashes and underscores inside a segment are fine
    assert_int_equal (qv_store_put (f->store, "a-b_c.d/e..f/LOCK", "x", 1), 0);
    assert_string_equal (s_list_joined (f->store, ""), "a-b_c.d/e..f/LOCK");
}

static void
test_missing_key (void **state)
{
    fixture_t *f = *state;
    void *data = NULL;
    size_t size = 7;
    qv_err_clear ();
    assert_int_equal (qv_store_get (f->store, "no/such/key", &data, &size), QV_ENOTFOUND);
    assert_null (data);
    assert_int_equal (size, 0);
    assert_non_null (strstr (qv_err_msg (), "no/such/key"));
}

static void
test_lock (void **state)
{
    fixture_t *f = *state;
    assert_int_equal (qv_store_lock (f->store), 0);
    assert_int_equal (qv_store_lock (f->store), 0);     //  already ours
    qv_store_t *other = qv_store_new (f->dir);
    assert_non_null (other);
    assert_int_equal (qv_store_lock (other), QV_EUNAVAIL);
    char expect [64];
    snprintf (expect, sizeof expect, "locked by pid %ld", (long) getpid ());
    assert_non_null (strstr (qv_err_msg (), expect));
    assert_non_null (strstr (qv_err_msg (), f->dir));
    //  Released on destroy
    qv_store_destroy (&f->store);
    assert_null (f->store);
    qv_store_destroy (&f->store);                       //  safe twice
    assert_int_equal (qv_store_lock (other), 0);
    qv_store_destroy (&other);
}

static void
test_lock_other_process (void **state)
{
    fixture_t *f = *state;
    //  A child takes the lock and dies by SIGKILL while holding it
    int ready [2];
    assert_int_equal (pipe (ready), 0);
    pid_t pid = fork ();
    assert_true (pid >= 0);
    if (pid == 0) {
        qv_store_t *store = qv_store_new (f->dir);
        char c = store && qv_store_lock (store) == 0 ? 'y' : 'n';
        if (write (ready [1], &c, 1) != 1)
            _exit (1);
        pause ();
        _exit (0);
    }
    char c = 0;
    assert_int_equal (read (ready [0], &c, 1), 1);
    assert_int_equal (c, 'y');
    assert_int_equal (qv_store_lock (f->store), QV_EUNAVAIL);
    char expect [64];
    snprintf (expect, sizeof expect, "locked by pid %ld", (long) pid);
    assert_non_null (strstr (qv_err_msg (), expect));
    kill (pid, SIGKILL);
    waitpid (pid, NULL, 0);
    close (ready [0]);
    close (ready [1]);
    //  The stale LOCK file does not block us
    assert_int_equal (qv_store_lock (f->store), 0);
}

static void
test_fault_injection (void **state)
{
    fixture_t *f = *state;
    qv_store_inject_fault (f->store, "put", QV_EIO, 2);
    assert_int_equal (qv_store_put (f->store, "k", "1", 1), QV_EIO);
    assert_non_null (strstr (qv_err_msg (), "k"));
    assert_int_equal (qv_store_put (f->store, "k", "1", 1), QV_EIO);
    assert_string_equal (s_list_joined (f->store, ""), "");
    assert_int_equal (qv_store_put (f->store, "k", "1", 1), 0);

    qv_store_inject_fault (f->store, "get", QV_EIO, 1);
    void *data = NULL;
    size_t size = 0;
    assert_int_equal (qv_store_get (f->store, "k", &data, &size), QV_EIO);
    assert_null (data);
    assert_int_equal (qv_store_get (f->store, "k", &data, &size), 0);
    free (data);

    qv_store_inject_fault (f->store, "delete", QV_EIO, 5);
    assert_int_equal (qv_store_delete (f->store, "k"), QV_EIO);
    qv_store_inject_fault (f->store, "delete", QV_EIO, 0);     //  cleared
    assert_int_equal (qv_store_delete (f->store, "k"), 0);
}

static void
test_temp_files (void **state)
{
    fixture_t *f = *state;
    assert_int_equal (qv_store_put (f->store, "dir/obj", "x", 1), 0);
    //  A dead process's temp file, and one of a live process (ours)
    pid_t pid = fork ();
    if (pid == 0)
        _exit (0);
    waitpid (pid, NULL, 0);
    char dead [64], live [64];
    snprintf (dead, sizeof dead, "dir/.tmp-%ld-1-0-obj", (long) pid);
    snprintf (live, sizeof live, "dir/.tmp-%ld-1-0-obj2", (long) getpid ());
    s_write_file (f->dir, dead, "partial");
    s_write_file (f->dir, live, "in progress");
    s_write_file (f->dir, ".tmp-garbage", "junk");
    assert_string_equal (s_list_joined (f->store, ""), "dir/obj");
    assert_string_equal (s_list_joined (f->store, "dir/"), "dir/obj");

    //  Reopening removes temp files of dead processes only
    qv_store_destroy (&f->store);
    f->store = qv_store_new (f->dir);
    assert_non_null (f->store);
    assert_false (s_file_exists (f->dir, dead));
    assert_false (s_file_exists (f->dir, ".tmp-garbage"));
    assert_true (s_file_exists (f->dir, live));
    assert_true (s_file_exists (f->dir, "dir/obj"));
}

static void
test_urls (void **state)
{
    fixture_t *f = *state;
    char url [128];
    snprintf (url, sizeof url, "file://%s/sub/dir", f->dir);
    qv_store_t *store = qv_store_new (url);
    assert_non_null (store);
    assert_int_equal (qv_store_put (store, "k", "v", 1), 0);
    char where [256], expect [256];
    qv_store_describe (store, "k", where, sizeof where);
    snprintf (expect, sizeof expect, "%s/sub/dir/k", f->dir);
    assert_string_equal (where, expect);
    qv_store_destroy (&store);
    assert_true (s_file_exists (f->dir, "sub/dir/k"));

    //  Without credentials in the environment (a shell that exported them for the S3
    //  suites must not change this check)
    char *key = getenv ("QUIVER_S3_ACCESS_KEY") ? strdup (getenv ("QUIVER_S3_ACCESS_KEY")) : NULL;
    unsetenv ("QUIVER_S3_ACCESS_KEY");
    assert_null (qv_store_new ("s3://bucket/prefix"));
    assert_non_null (strstr (qv_err_msg (), "QUIVER_S3_ACCESS_KEY"));
    if (key)
        setenv ("QUIVER_S3_ACCESS_KEY", key, 1);
    free (key);
    assert_null (qv_store_new ("gopher://x"));
    assert_null (qv_store_new (""));
    assert_null (qv_store_new ("file://relative"));
    //  A path through a regular file cannot be a data directory
    s_write_file (f->dir, "plain", "x");
    snprintf (url, sizeof url, "%s/plain/sub", f->dir);
    assert_null (qv_store_new (url));
    assert_non_null (strstr (qv_err_msg (), "plain"));
}

//  Several threads putting, getting and listing on one store at once.
typedef struct {
    qv_store_t *store;
    int id;
    int failures;
} worker_t;

static void *
s_worker (void *arg)
{
    worker_t *w = arg;
    for (int i = 0; i < 50; i++) {
        char key [64], value [64];
        snprintf (key, sizeof key, "t/%d/%d", w->id, i);
        snprintf (value, sizeof value, "value %d %d", w->id, i);
        if (qv_store_put (w->store, key, value, strlen (value)) != 0)
            w->failures++;
        //  Everyone also overwrites one shared key
        if (qv_store_put (w->store, "t/shared", value, strlen (value)) != 0)
            w->failures++;
        void *data = NULL;
        size_t size = 0;
        if (qv_store_get (w->store, key, &data, &size) != 0
        ||  size != strlen (value) || memcmp (data, value, size) != 0)
            w->failures++;
        free (data);
        zlist_t *keys = NULL;
        if (qv_store_list (w->store, "t/", &keys) != 0)
            w->failures++;
        zlist_destroy (&keys);
    }
    return NULL;
}

static void
test_threads (void **state)
{
    fixture_t *f = *state;
    pthread_t threads [4];
    worker_t workers [4];
    for (int i = 0; i < 4; i++) {
        workers [i] = (worker_t) { f->store, i, 0 };
        pthread_create (&threads [i], NULL, s_worker, &workers [i]);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join (threads [i], NULL);
        assert_int_equal (workers [i].failures, 0);
    }
    zlist_t *keys = NULL;
    assert_int_equal (qv_store_list (f->store, "t/", &keys), 0);
    assert_int_equal (zlist_size (keys), 4 * 50 + 1);
    zlist_destroy (&keys);
    void *data = NULL;
    size_t size = 0;
    assert_int_equal (qv_store_get (f->store, "t/shared", &data, &size), 0);
    assert_true (size >= 9 && memcmp (data, "value ", 6) == 0);
    free (data);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test_setup_teardown (test_put_get, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_overwrite, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_get_range, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_list, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_delete, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_bad_keys, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_missing_key, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_lock, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_lock_other_process, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_fault_injection, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_temp_files, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_urls, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_threads, s_setup, s_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
