//  Unit-test helper: reads a file committed under tests/fixtures/. Include after
//  cmocka.h.
#ifndef QV_TEST_FIXTURE_H_INCLUDED
#define QV_TEST_FIXTURE_H_INCLUDED

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

//  The bytes of tests/fixtures/<rel> (malloc'd: the caller frees them), their count in
//  *size. Fails the test if the file cannot be read.
static inline uint8_t *
qv_test_fixture (const char *rel, size_t *size)
{
    //  __FILE__ is .../tests/unit/qv_test_fixture.h
    char path [1024];
    snprintf (path, sizeof path, "%s", __FILE__);
    char *cut = strstr (path, "tests/unit/");
    assert_non_null (cut);
    snprintf (cut, sizeof path - (size_t) (cut - path), "tests/fixtures/%s", rel);
    FILE *f = fopen (path, "rb");
    if (!f)
        fail_msg ("cannot open fixture %s", path);
    fseek (f, 0, SEEK_END);
    long n = ftell (f);
    fseek (f, 0, SEEK_SET);
    uint8_t *p = malloc (n > 0 ? (size_t) n : 1);
    assert_non_null (p);
    assert_int_equal (fread (p, 1, (size_t) n, f), (size_t) n);
    fclose (f);
    *size = (size_t) n;
    return p;
}

#endif
