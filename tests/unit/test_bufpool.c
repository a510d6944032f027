//  The buffer pool: a buffer given back is handed out again for its size class, zeroed
//  as calloc would; sizes outside the pooled range are plain callocs; the pool keeps
//  at most QV_BUFPOOL_KEEP bytes, and nothing after a drain; several threads at once.
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "qv_bufpool.h"

static bool
s_zero (const unsigned char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p [i])
            return false;
    return true;
}

static void
test_reuse_zeroed (void **state)
{
    (void) state;
    size_t cap;
    unsigned char *a = qv_bufpool_get (300 * 1024, &cap);
    assert_non_null (a);
    assert_int_equal (cap, 512 * 1024);             //  the next power of two from 64 KiB
    assert_true (s_zero (a, 300 * 1024));
    memset (a, 0xAB, cap);
    qv_bufpool_put (a, cap);
    void *other = malloc (cap);                     //  a freed buffer would not come back
    size_t cap2;
    unsigned char *b = qv_bufpool_get (400 * 1024, &cap2);
    assert_ptr_equal (b, a);                        //  the kept one, same class
    assert_int_equal (cap2, cap);
    assert_true (s_zero (b, 400 * 1024));           //  zeroed as far as asked
    free (other);
    //  Another class does not take it
    qv_bufpool_put (b, cap2);
    unsigned char *c = qv_bufpool_get (100 * 1024, &cap);
    assert_ptr_not_equal (c, b);
    assert_int_equal (cap, 128 * 1024);
    qv_bufpool_put (c, cap);
}

static void
test_outside_range (void **state)
{
    (void) state;
    size_t cap = 7;
    void *small = qv_bufpool_get (QV_BUFPOOL_MIN - 1, &cap);
    assert_non_null (small);
    assert_int_equal (cap, 0);
    qv_bufpool_put (small, cap);                    //  freed (ASan/LSan would tell)
    void *big = qv_bufpool_get ((size_t) QV_BUFPOOL_MAX + 1, &cap);
    assert_non_null (big);
    assert_int_equal (cap, 0);
    assert_true (s_zero (big, 4096));
    qv_bufpool_put (big, cap);
    qv_bufpool_put (NULL, 0);
}

//  More than the pool keeps: the rest is freed, and what is kept is handed out again.
static void
test_bounded (void **state)
{
    (void) state;
    enum { N = 40 };
    void *bufs [N];
    size_t caps [N];
    assert_int_equal (qv_bufpool_kept (), 0);
    for (int i = 0; i < N; i++) {
        bufs [i] = qv_bufpool_get (QV_BUFPOOL_MAX, &caps [i]);
        assert_non_null (bufs [i]);
        assert_int_equal (caps [i], QV_BUFPOOL_MAX);
    }
    for (int i = 0; i < N; i++) {
        qv_bufpool_put (bufs [i], caps [i]);
        assert_true (qv_bufpool_kept () <= QV_BUFPOOL_KEEP);
    }
    assert_int_equal (qv_bufpool_kept (), QV_BUFPOOL_KEEP);
    //  The kept ones come back out, then new ones
    for (int i = 0; i < N; i++) {
        bufs [i] = qv_bufpool_get (QV_BUFPOOL_MAX, &caps [i]);
        assert_int_equal (qv_bufpool_kept (),
                          (unsigned) i < QV_BUFPOOL_KEEP / QV_BUFPOOL_MAX
                          ? QV_BUFPOOL_KEEP - (size_t) (i + 1) * QV_BUFPOOL_MAX : 0);
    }
    for (int i = 0; i < N; i++)
        free (bufs [i]);                            //  the pool is empty again
}

//  A drain frees every kept buffer (ASan/LSan: no leak, no double free) and says how
//  many bytes; buffers are handed out afresh after it.
static void
test_drain (void **state)
{
    (void) state;
    qv_bufpool_drain ();
    size_t cap1, cap2;
    void *a = qv_bufpool_get (QV_BUFPOOL_MIN, &cap1);
    void *b = qv_bufpool_get (QV_BUFPOOL_MAX, &cap2);
    memset (a, 0xAB, cap1);
    qv_bufpool_put (a, cap1);
    qv_bufpool_put (b, cap2);
    assert_int_equal (qv_bufpool_kept (), cap1 + cap2);
    assert_int_equal (qv_bufpool_drain (), cap1 + cap2);
    assert_int_equal (qv_bufpool_kept (), 0);
    assert_int_equal (qv_bufpool_drain (), 0);
    //  A get after it maps a fresh, zeroed buffer
    size_t cap;
    unsigned char *c = qv_bufpool_get (QV_BUFPOOL_MIN, &cap);
    assert_non_null (c);
    assert_int_equal (cap, cap1);
    assert_true (s_zero (c, cap));
    qv_bufpool_put (c, cap);
    assert_int_equal (qv_bufpool_kept (), cap);
    qv_bufpool_drain ();
}

static void *
s_worker (void *arg)
{
    (void) arg;
    for (int i = 0; i < 2000; i++) {
        size_t cap, size = QV_BUFPOOL_MIN + (size_t) (i % 5) * 100000;
        unsigned char *p = qv_bufpool_get (size, &cap);
        assert_non_null (p);
        assert_true (p [0] == 0 && p [size - 1] == 0);
        p [0] = p [size - 1] = 1;
        qv_bufpool_put (p, cap);
    }
    return NULL;
}

static void
test_threads (void **state)
{
    (void) state;
    pthread_t t [4];
    for (int i = 0; i < 4; i++)
        assert_int_equal (pthread_create (&t [i], NULL, s_worker, NULL), 0);
    for (int i = 0; i < 4; i++)
        pthread_join (t [i], NULL);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_bounded),         //  first: on an empty pool
        cmocka_unit_test (test_reuse_zeroed),
        cmocka_unit_test (test_outside_range),
        cmocka_unit_test (test_drain),
        cmocka_unit_test (test_threads),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
