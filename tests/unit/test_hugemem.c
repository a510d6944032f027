//  Huge-page backed arrays: alignment (64 bytes below 2 MiB, 2 MiB from there up), the
//  whole size usable, and the advice given (the mapping's VmFlags carry "hg" where
//  the kernel has transparent huge pages) unless QV_HUGEMEM=0.
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "qv_hugemem.h"

//  1 if the mapping holding p is advised MADV_HUGEPAGE, 0 if not, -1 if unknown (no
//  THP in this kernel, or no smaps).
static int
s_advised (const void *p)
{
    if (access ("/sys/kernel/mm/transparent_hugepage/enabled", F_OK) != 0)
        return -1;
    FILE *f = fopen ("/proc/self/smaps", "r");
    if (!f)
        return -1;
    char line [512];
    int inside = 0, found = -1;
    uintptr_t at = (uintptr_t) p;
    while (fgets (line, sizeof line, f)) {
        unsigned long lo, hi;
        if (sscanf (line, "%lx-%lx ", &lo, &hi) == 2 && strchr (line, '-') < strchr (line, ' '))
            inside = at >= lo && at < hi;
        else
        if (inside && strncmp (line, "VmFlags:", 8) == 0) {
            found = strstr (line, " hg") != NULL;
            break;
        }
    }
    fclose (f);
    return found;
}

static void
test_alignment (void **state)
{
    (void) state;
    size_t sizes [] = { 0, 1, 100, 4096, QV_HUGEMEM_PAGE - 1, QV_HUGEMEM_PAGE,
                        5 * QV_HUGEMEM_PAGE + 3 };
    for (size_t i = 0; i < sizeof sizes / sizeof sizes [0]; i++) {
        unsigned char *p = qv_hugemem_alloc (sizes [i]);
        assert_non_null (p);
        size_t align = sizes [i] >= QV_HUGEMEM_PAGE? QV_HUGEMEM_PAGE: 64;
        assert_int_equal ((uintptr_t) p % align, 0);
        size_t usable = sizes [i]? sizes [i]: 1;
        memset (p, 0x5A, usable);
        assert_int_equal (p [usable - 1], 0x5A);
        free (p);
    }
}

static void
test_advice (void **state)
{
    (void) state;
    //  Without advice first, and both held at once: freed memory may come back
    //  advised from the heap (glibc raises its mmap threshold after a free)
    setenv ("QV_HUGEMEM", "0", 1);
    unsigned char *plain = qv_hugemem_alloc (4 * QV_HUGEMEM_PAGE);
    unsetenv ("QV_HUGEMEM");
    unsigned char *big = qv_hugemem_alloc (4 * QV_HUGEMEM_PAGE);
    assert_non_null (plain);
    assert_non_null (big);
    int advised = s_advised (plain);
    if (advised >= 0)
        assert_int_equal (advised, 0);
    advised = s_advised (big);
    if (advised >= 0)
        assert_int_equal (advised, 1);
    free (big);
    free (plain);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_alignment),
        cmocka_unit_test (test_advice),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
