//  CRC32C against the standard check value and incremental use.
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <string.h>
#include "qv_crc.h"

static void
test_check_value (void **state)
{
    (void) state;
    assert_int_equal (qv_crc32c ("123456789", 9), 0xE3069283u);
    assert_int_equal (qv_crc32c ("", 0), 0);
    uint32_t c = qv_crc32c_update (0, "1234", 4);
    c = qv_crc32c_update (c, "56789", 5);
    assert_int_equal (c, 0xE3069283u);
}

int
main (void)
{
    const struct CMUnitTest tests [] = { cmocka_unit_test (test_check_value) };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
