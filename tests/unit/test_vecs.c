//  .fvecs / .ivecs reader and writer: round trip, limits, malformed files refused.
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "qv_vecs.h"
#include "qv_rc.h"

static void
s_path (char *buf, size_t size, const char *name)
{
    snprintf (buf, size, "/tmp/qv_test_vecs_%d_%s", (int) getpid (), name);
}

static void
test_round_trip (void **state)
{
    (void) state;
    char path [256];
    s_path (path, sizeof path, "a.fvecs");
    float v [3 * 5];
    for (int i = 0; i < 15; i++)
        v [i] = (float) i * 0.5f - 3;
    assert_int_equal (qv_vecs_write (path, v, 5, 3), 0);
    uint32_t dim = 0, rows = 0;
    float *back = qv_vecs_read (path, 0, &dim, &rows);
    assert_non_null (back);
    assert_int_equal (dim, 5);
    assert_int_equal (rows, 3);
    assert_memory_equal (back, v, sizeof v);
    free (back);
    back = qv_vecs_read (path, 2, &dim, &rows);
    assert_int_equal (rows, 2);
    free (back);
    unlink (path);
}

static void
test_malformed (void **state)
{
    (void) state;
    char path [256];
    s_path (path, sizeof path, "bad.fvecs");
    uint32_t dim, rows;
    assert_null (qv_vecs_read ("/nonexistent/x.fvecs", 0, &dim, &rows));

    //  Truncated: a whole vector and half of another
    int32_t data [2 + 2 + 1] = { 2, 0, 0, 2, 0 };
    FILE *f = fopen (path, "wb");
    fwrite (data, 4, 5, f);
    fclose (f);
    assert_null (qv_vecs_read (path, 0, &dim, &rows));

    //  Second vector with another dimension (same total size as two dim-2 vectors)
    int32_t mixed [6] = { 2, 0, 0, 1, 0, 0 };
    f = fopen (path, "wb");
    fwrite (mixed, 4, 6, f);
    fclose (f);
    assert_null (qv_vecs_read (path, 0, &dim, &rows));

    //  Zero and negative dimensions, empty file
    int32_t zero [1] = { 0 };
    f = fopen (path, "wb");
    fwrite (zero, 4, 1, f);
    fclose (f);
    assert_null (qv_vecs_read (path, 0, &dim, &rows));
    f = fopen (path, "wb");
    fclose (f);
    assert_null (qv_vecs_read (path, 0, &dim, &rows));
    unlink (path);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_round_trip),
        cmocka_unit_test (test_malformed),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
