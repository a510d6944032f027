//  msgpack codec: writer/reader round trip of every type, the pre-scan's refusals
//  (truncation, trailing bytes, bad type byte, depth, hostile element counts, the
//  element limit), typed accessors, and thousands of mutated messages.
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qv_codec.h"
#include "qv_rc.h"

//  Largest single allocation request seen while s_tracking is set. Counted by
//  interposing glibc's malloc/calloc/realloc in plain builds; sanitizer builds own
//  malloc themselves, so there the check is skipped (s_tracked stays false).
#if defined(__SANITIZE_ADDRESS__)
#   define S_NO_TRACK 1
#elif defined(__has_feature)
#   if __has_feature(address_sanitizer) || __has_feature(memory_sanitizer)
#       define S_NO_TRACK 1
#   endif
#endif
static int s_tracking;
static size_t s_max_request;
#ifndef S_NO_TRACK
static const bool s_tracked = true;
extern void *__libc_malloc (size_t);
extern void *__libc_calloc (size_t, size_t);
extern void *__libc_realloc (void *, size_t);
void *
malloc (size_t n)
{
    if (s_tracking && n > s_max_request)
        s_max_request = n;
    return __libc_malloc (n);
}
void *
calloc (size_t n, size_t size)
{
    if (s_tracking && n * size > s_max_request)
        s_max_request = n * size;
    return __libc_calloc (n, size);
}
void *
realloc (void *p, size_t n)
{
    if (s_tracking && n > s_max_request)
        s_max_request = n;
    return __libc_realloc (p, n);
}
#else
static const bool s_tracked = false;
#endif

//  Parses data expecting failure with rc; returns the peak allocation request.
static size_t
s_expect_fail (const void *data, size_t size, size_t max_elems, int want)
{
    int rc = 12345;
    s_max_request = 0;
    s_tracking = 1;
    qv_doc_t *doc = qv_doc_parse (data, size, max_elems, &rc);
    s_tracking = 0;
    if (doc)
        print_error ("parse of %zu bytes succeeded, expected %s\n", size, qv_rc_name (want));
    assert_null (doc);
    if (rc != want)
        print_error ("got %s (%s), expected %s\n", qv_rc_name (rc), qv_err_msg (), qv_rc_name (want));
    assert_int_equal (rc, want);
    assert_true (strlen (qv_err_msg ()) > 0);
    return s_max_request;
}

static qv_doc_t *
s_parse_ok (const void *data, size_t size, size_t max_elems)
{
    int rc = 12345;
    qv_doc_t *doc = qv_doc_parse (data, size, max_elems, &rc);
    if (!doc)
        print_error ("parse failed: %s: %s\n", qv_rc_name (rc), qv_err_msg ());
    assert_non_null (doc);
    assert_int_equal (rc, 0);
    return doc;
}

//  A message holding every type, with boundary values of each encoding size.
static void *
s_build_all (size_t *size)
{
    qv_wr_t *w = qv_wr_new ();
    assert_non_null (w);
    char *long_str = malloc (70000);
    for (int i = 0; i < 70000; i++)
        long_str [i] = (char) ('a' + i % 26);
    uint8_t bin [300];
    for (int i = 0; i < 300; i++)
        bin [i] = (uint8_t) i;
    qv_wr_map (w, 21);
    qv_wr_str (w, "nil"); qv_wr_nil (w);
    qv_wr_str (w, "t"); qv_wr_bool (w, true);
    qv_wr_str (w, "f"); qv_wr_bool (w, false);
    qv_wr_str (w, "u0"); qv_wr_uint (w, 0);
    qv_wr_str (w, "u127"); qv_wr_uint (w, 127);
    qv_wr_str (w, "u65536"); qv_wr_uint (w, 65536);
    qv_wr_str (w, "umax"); qv_wr_uint (w, UINT64_MAX);
    qv_wr_str (w, "im1"); qv_wr_int (w, -1);
    qv_wr_str (w, "im33"); qv_wr_int (w, -33);
    qv_wr_str (w, "imin"); qv_wr_int (w, INT64_MIN);
    qv_wr_str (w, "imax"); qv_wr_int (w, INT64_MAX);
    qv_wr_str (w, "fl"); qv_wr_float (w, 1.5f);
    qv_wr_str (w, "db"); qv_wr_double (w, -2.25e300);
    qv_wr_str (w, "empty"); qv_wr_str (w, "");
    qv_wr_str (w, "s31"); qv_wr_strn (w, long_str, 31);
    qv_wr_str (w, "s300"); qv_wr_strn (w, long_str, 300);
    qv_wr_str (w, "s70000"); qv_wr_strn (w, long_str, 70000);
    qv_wr_str (w, "bin0"); qv_wr_bin (w, bin, 0);
    qv_wr_str (w, "bin300"); qv_wr_bin (w, bin, 300);
    qv_wr_str (w, "arr");
    qv_wr_array (w, 20);
    for (int i = 0; i < 20; i++)
        qv_wr_int (w, i - 10);
    qv_wr_str (w, "map");
    qv_wr_map (w, 1);
    qv_wr_str (w, "inner");
    qv_wr_array (w, 0);
    void *data = qv_wr_detach (w, size);
    qv_wr_destroy (&w);
    free (long_str);
    return data;
}

static void
test_round_trip_every_type (void **state)
{
    (void) state;
    size_t size;
    void *data = s_build_all (&size);
    qv_doc_t *doc = s_parse_ok (data, size, 1000);
    const qv_val_t *root = qv_doc_root (doc);
    assert_int_equal (qv_val_type (root), QV_V_MAP);
    assert_int_equal (qv_val_len (root), 21);

    bool b;
    int64_t i;
    uint64_t u;
    double d;
    const char *s;
    const void *p;
    size_t n;
    assert_int_equal (qv_val_type (qv_val_get (root, "nil")), QV_V_NIL);
    assert_int_equal (qv_val_bool (qv_val_get (root, "t"), &b), 0); assert_true (b);
    assert_int_equal (qv_val_bool (qv_val_get (root, "f"), &b), 0); assert_false (b);
    assert_int_equal (qv_val_uint (qv_val_get (root, "u0"), &u), 0); assert_true (u == 0);
    assert_int_equal (qv_val_uint (qv_val_get (root, "u127"), &u), 0); assert_true (u == 127);
    assert_int_equal (qv_val_uint (qv_val_get (root, "u65536"), &u), 0); assert_true (u == 65536);
    assert_int_equal (qv_val_uint (qv_val_get (root, "umax"), &u), 0); assert_true (u == UINT64_MAX);
    assert_int_equal (qv_val_int (qv_val_get (root, "u65536"), &i), 0); assert_true (i == 65536);
    assert_int_equal (qv_val_int (qv_val_get (root, "im1"), &i), 0); assert_true (i == -1);
    assert_int_equal (qv_val_int (qv_val_get (root, "im33"), &i), 0); assert_true (i == -33);
    assert_int_equal (qv_val_int (qv_val_get (root, "imin"), &i), 0); assert_true (i == INT64_MIN);
    assert_int_equal (qv_val_int (qv_val_get (root, "imax"), &i), 0); assert_true (i == INT64_MAX);
    assert_int_equal (qv_val_type (qv_val_get (root, "imin")), QV_V_INT);
    assert_int_equal (qv_val_type (qv_val_get (root, "imax")), QV_V_UINT);
    assert_int_equal (qv_val_double (qv_val_get (root, "fl"), &d), 0); assert_true (d == 1.5);
    assert_int_equal (qv_val_type (qv_val_get (root, "fl")), QV_V_FLOAT);
    assert_int_equal (qv_val_double (qv_val_get (root, "db"), &d), 0); assert_true (d == -2.25e300);
    assert_int_equal (qv_val_double (qv_val_get (root, "im33"), &d), 0); assert_true (d == -33);
    assert_int_equal (qv_val_double (qv_val_get (root, "umax"), &d), 0); assert_true (d == (double) UINT64_MAX);
    assert_int_equal (qv_val_str (qv_val_get (root, "empty"), &s, &n), 0); assert_int_equal (n, 0);
    const char *names [] = { "s31", "s300", "s70000" };
    size_t lens [] = { 31, 300, 70000 };
    for (int k = 0; k < 3; k++) {
        const qv_val_t *v = qv_val_get (root, names [k]);
        assert_int_equal (qv_val_type (v), QV_V_STR);
        assert_int_equal (qv_val_len (v), lens [k]);
        assert_int_equal (qv_val_str (v, &s, &n), 0);
        assert_int_equal (n, lens [k]);
        for (size_t j = 0; j < n; j++)
            assert_int_equal (s [j], 'a' + j % 26);
    }
    assert_int_equal (qv_val_bin (qv_val_get (root, "bin0"), &p, &n), 0); assert_int_equal (n, 0);
    assert_int_equal (qv_val_bin (qv_val_get (root, "bin300"), &p, &n), 0);
    assert_int_equal (n, 300);
    for (size_t j = 0; j < n; j++)
        assert_int_equal (((const uint8_t *) p) [j], (uint8_t) j);
    const qv_val_t *arr = qv_val_get (root, "arr");
    assert_int_equal (qv_val_type (arr), QV_V_ARRAY);
    assert_int_equal (qv_val_len (arr), 20);
    for (size_t j = 0; j < 20; j++) {
        assert_int_equal (qv_val_int (qv_val_at (arr, j), &i), 0);
        assert_int_equal (i, (int64_t) j - 10);
    }
    const qv_val_t *map = qv_val_get (root, "map");
    assert_int_equal (qv_val_type (map), QV_V_MAP);
    assert_true (qv_val_is (qv_val_key (map, 0), "inner"));
    assert_int_equal (qv_val_type (qv_val_value (map, 0)), QV_V_ARRAY);
    assert_int_equal (qv_val_len (qv_val_value (map, 0)), 0);
    assert_null (qv_val_get (root, "absent"));

    //  Deep copy through the writer gives the same bytes (the writer is canonical)
    size_t size2;
    void *copy = qv_val_encode (root, &size2);
    assert_int_equal (size2, size);
    assert_memory_equal (copy, data, size);
    free (copy);

    qv_wr_t *w = qv_wr_new ();
    qv_wr_array (w, 2);
    qv_wr_val (w, qv_val_get (root, "map"));
    qv_wr_raw (w, "\x93\x01\x02\x03", 4);
    size_t size3;
    const void *bytes = qv_wr_data (w, &size3);
    qv_doc_t *doc2 = s_parse_ok (bytes, size3, 100);
    const qv_val_t *r2 = qv_doc_root (doc2);
    assert_int_equal (qv_val_len (r2), 2);
    assert_true (qv_val_is (qv_val_key (qv_val_at (r2, 0), 0), "inner"));
    assert_int_equal (qv_val_len (qv_val_at (r2, 1)), 3);
    qv_doc_destroy (&doc2);
    assert_null (doc2);
    qv_doc_destroy (&doc2);          //  safe twice
    //  A reset writer starts again from nothing
    qv_wr_reset (w);
    qv_wr_nil (w);
    qv_wr_data (w, &size3);
    assert_int_equal (size3, 1);
    qv_wr_destroy (&w);
    assert_null (w);
    qv_wr_destroy (&w);

    qv_doc_destroy (&doc);
    free (data);
}

//  The contract says a document owns its memory: its strings and bins stay valid
//  after the input buffer is gone (the proxy frees the request frame right after
//  parsing and the job carries the document on).
static void
test_doc_owns_its_memory (void **state)
{
    (void) state;
    qv_wr_t *w = qv_wr_new ();
    qv_wr_map (w, 2);
    qv_wr_str (w, "rid"); qv_wr_str (w, "request-0001");
    qv_wr_str (w, "vec"); qv_wr_bin (w, "\x01\x02\x03\x04", 4);
    size_t size;
    void *data = qv_wr_detach (w, &size);
    qv_wr_destroy (&w);
    qv_doc_t *doc = s_parse_ok (data, size, 100);
    memset (data, 0xee, size);
    free (data);
    const qv_val_t *root = qv_doc_root (doc);
    assert_true (qv_val_is (qv_val_get (root, "rid"), "request-0001"));
    const void *p;
    size_t n;
    assert_int_equal (qv_val_bin (qv_val_get (root, "vec"), &p, &n), 0);
    assert_int_equal (n, 4);
    assert_memory_equal (p, "\x01\x02\x03\x04", 4);
    qv_doc_destroy (&doc);
}

//  A document decoded where its bytes lie (qv_doc_parse_owned) reads them there and
//  frees their owner once, when destroyed, or at once when they do not decode.
static int s_released;

static void
s_release (void *owner)
{
    s_released++;
    free (owner);
}

static void
test_doc_parsed_in_place (void **state)
{
    (void) state;
    qv_wr_t *w = qv_wr_new ();
    qv_wr_map (w, 1);
    qv_wr_str (w, "vec"); qv_wr_bin (w, "\x01\x02\x03\x04", 4);
    size_t size;
    uint8_t *data = qv_wr_detach (w, &size);
    qv_wr_destroy (&w);
    s_released = 0;
    int rc;
    qv_doc_t *doc = qv_doc_parse_owned (data, size, 100, s_release, data, &rc);
    assert_non_null (doc);
    const void *p;
    size_t n;
    assert_int_equal (qv_val_bin (qv_val_get (qv_doc_root (doc), "vec"), &p, &n), 0);
    assert_int_equal (n, 4);
    assert_true ((const uint8_t *) p > data && (const uint8_t *) p < data + size);     //  not a copy
    assert_int_equal (s_released, 0);
    qv_doc_destroy (&doc);
    assert_int_equal (s_released, 1);
    //  Bytes that do not decode: released at once, nothing returned
    uint8_t *bad = malloc (1);
    bad [0] = 0xc1;                 //  never used in msgpack
    assert_null (qv_doc_parse_owned (bad, 1, 100, s_release, bad, &rc));
    assert_int_equal (rc, QV_EPROTO);
    assert_int_equal (s_released, 2);
}

static void
test_typed_accessors_reject_wrong_types (void **state)
{
    (void) state;
    qv_wr_t *w = qv_wr_new ();
    qv_wr_array (w, 7);
    qv_wr_str (w, "abc");           //  0
    qv_wr_uint (w, UINT64_MAX);     //  1
    qv_wr_int (w, -5);              //  2
    qv_wr_bin (w, "xy", 2);         //  3
    qv_wr_double (w, 0.5);          //  4
    qv_wr_bool (w, true);           //  5
    qv_wr_nil (w);                  //  6
    size_t size;
    const void *data = qv_wr_data (w, &size);
    qv_doc_t *doc = s_parse_ok (data, size, 100);
    const qv_val_t *a = qv_doc_root (doc);
    bool b = false;
    int64_t i = 77;
    uint64_t u = 77;
    double d = 77;
    const char *s = NULL;
    const void *p = NULL;
    size_t n = 77;
    char buf [4];

    assert_int_equal (qv_val_int (qv_val_at (a, 0), &i), QV_EPROTO);
    assert_int_equal (qv_val_int (qv_val_at (a, 1), &i), QV_EPROTO);    //  > INT64_MAX
    assert_int_equal (qv_val_int (qv_val_at (a, 4), &i), QV_EPROTO);    //  float
    assert_int_equal (qv_val_int (qv_val_at (a, 5), &i), QV_EPROTO);
    assert_int_equal (qv_val_int (qv_val_at (a, 6), &i), QV_EPROTO);
    assert_true (i == 77);
    assert_int_equal (qv_val_uint (qv_val_at (a, 2), &u), QV_EPROTO);   //  negative
    assert_int_equal (qv_val_uint (qv_val_at (a, 4), &u), QV_EPROTO);
    assert_int_equal (qv_val_uint (qv_val_at (a, 0), &u), QV_EPROTO);
    assert_true (u == 77);
    assert_int_equal (qv_val_double (qv_val_at (a, 0), &d), QV_EPROTO);
    assert_int_equal (qv_val_double (qv_val_at (a, 5), &d), QV_EPROTO);
    assert_int_equal (qv_val_double (qv_val_at (a, 6), &d), QV_EPROTO);
    assert_true (d == 77);
    assert_int_equal (qv_val_bool (qv_val_at (a, 2), &b), QV_EPROTO);
    assert_int_equal (qv_val_bool (qv_val_at (a, 6), &b), QV_EPROTO);
    assert_int_equal (qv_val_str (qv_val_at (a, 3), &s, &n), QV_EPROTO);  //  bin is not str
    assert_int_equal (qv_val_bin (qv_val_at (a, 0), &p, &n), QV_EPROTO);  //  str is not bin
    assert_null (s);
    assert_null (p);
    assert_true (n == 77);
    assert_int_equal (qv_val_strcpy (qv_val_at (a, 3), buf, sizeof buf), QV_EPROTO);
    assert_int_equal (qv_val_strcpy (qv_val_at (a, 0), buf, 3), QV_EINVAL);   //  no room for NUL
    assert_int_equal (qv_val_strcpy (qv_val_at (a, 0), buf, 4), 0);
    assert_string_equal (buf, "abc");
    assert_false (qv_val_is (qv_val_at (a, 3), "xy"));
    assert_false (qv_val_is (qv_val_at (a, 0), "ab"));
    assert_false (qv_val_is (qv_val_at (a, 0), "abcd"));
    assert_true (qv_val_is (qv_val_at (a, 0), "abc"));
    assert_null (qv_val_get (a, "abc"));            //  not a map
    assert_null (qv_val_get (NULL, "abc"));
    assert_int_equal (qv_val_len (qv_val_at (a, 2)), 0);
    assert_string_equal (qv_vtype_name (QV_V_MAP), "map");
    qv_doc_destroy (&doc);
    qv_wr_destroy (&w);
}

static void
test_truncated_input (void **state)
{
    (void) state;
    size_t size;
    uint8_t *data = s_build_all (&size);
    //  Every strict prefix of a msgpack value is incomplete
    for (size_t cut = 0; cut < size; cut += (cut < 400 ? 1 : 997))
        s_expect_fail (data, cut, 1000, QV_EPROTO);
    s_expect_fail (data, size - 1, 1000, QV_EPROTO);
    //  Exactly-sized copies of short headers, so a read past the end is caught by ASan
    static const uint8_t heads [][3] = {
        { 0xcc }, { 0xcd, 0 }, { 0xce }, { 0xcf }, { 0xd0 }, { 0xd3 }, { 0xca }, { 0xcb },
        { 0xd9 }, { 0xda, 0 }, { 0xdb }, { 0xc4 }, { 0xc5, 0 }, { 0xc6 }, { 0xc7 },
        { 0xc8, 0 }, { 0xc9 }, { 0xd4, 1 }, { 0xd8 }, { 0xdc, 0 }, { 0xdd, 0, 0 },
        { 0xde }, { 0xdf, 0, 0 }, { 0xa5, 'a' }, { 0x92, 1 }, { 0x81, 1 }
    };
    static const size_t head_lens [] = {
        1, 2, 1, 1, 1, 1, 1, 1, 1, 2, 1, 1, 2, 1, 1, 2, 1, 2, 1, 2, 3, 1, 3, 2, 2, 2
    };
    for (size_t k = 0; k < sizeof head_lens / sizeof head_lens [0]; k++) {
        uint8_t *copy = malloc (head_lens [k]);
        memcpy (copy, heads [k], head_lens [k]);
        s_expect_fail (copy, head_lens [k], 1000, QV_EPROTO);
        free (copy);
    }
    free (data);
}

static void
test_trailing_bytes (void **state)
{
    (void) state;
    size_t size;
    uint8_t *data = s_build_all (&size);
    uint8_t *more = malloc (size + 1);
    memcpy (more, data, size);
    more [size] = 0xc0;
    s_expect_fail (more, size + 1, 1000, QV_EPROTO);
    assert_non_null (strstr (qv_err_msg (), "trailing"));
    const uint8_t two [] = { 0x01, 0x02 };
    s_expect_fail (two, 2, 10, QV_EPROTO);
    s_expect_fail (two, 0, 10, QV_EPROTO);      //  empty input
    free (more);
    free (data);
}

static void
test_invalid_type_byte (void **state)
{
    (void) state;
    const uint8_t alone [] = { 0xc1 };
    s_expect_fail (alone, 1, 10, QV_EPROTO);
    assert_non_null (strstr (qv_err_msg (), "0xc1"));
    const uint8_t in_array [] = { 0x93, 0x01, 0xc1, 0x02 };
    s_expect_fail (in_array, sizeof in_array, 10, QV_EPROTO);
    const uint8_t as_key [] = { 0x81, 0xc1, 0x01 };
    s_expect_fail (as_key, sizeof as_key, 10, QV_EPROTO);
}

//  depth nested arrays around a nil; the innermost array empty when empty_core.
static uint8_t *
s_nested (int depth, bool empty_core, size_t *size)
{
    uint8_t *b = malloc ((size_t) depth + 1);
    for (int i = 0; i < depth; i++)
        b [i] = 0x91;
    *size = (size_t) depth + 1;
    if (empty_core)
        b [depth - 1] = 0x90, *size = (size_t) depth;
    else
        b [depth] = 0xc0;
    return b;
}

static void
test_nesting_limit (void **state)
{
    (void) state;
    size_t size;
    //  32 levels of containers are fine, whether the innermost one is empty or not
    uint8_t *b = s_nested (32, false, &size);
    qv_doc_t *doc = s_parse_ok (b, size, 1000);
    const qv_val_t *v = qv_doc_root (doc);
    for (int i = 0; i < 32; i++) {
        assert_int_equal (qv_val_type (v), QV_V_ARRAY);
        v = qv_val_at (v, 0);
    }
    assert_int_equal (qv_val_type (v), QV_V_NIL);
    qv_doc_destroy (&doc);
    free (b);
    b = s_nested (32, true, &size);
    doc = s_parse_ok (b, size, 1000);
    qv_doc_destroy (&doc);
    free (b);
    //  33 levels are malformed (never an out-of-memory report), also when the 33rd
    //  container is empty
    b = s_nested (33, false, &size);
    s_expect_fail (b, size, 1000, QV_EPROTO);
    free (b);
    b = s_nested (33, true, &size);
    s_expect_fail (b, size, 1000, QV_EPROTO);
    free (b);
    //  Maps count as levels too
    uint8_t maps [2 * 33 + 1];
    for (int i = 0; i < 33; i++)
        maps [2 * i] = 0x81, maps [2 * i + 1] = 0x00;
    maps [66] = 0x00;
    s_expect_fail (maps, sizeof maps, 1000, QV_EPROTO);
    //  A very deep message is refused without deep recursion
    b = s_nested (200000, false, &size);
    s_expect_fail (b, size, SIZE_MAX, QV_EPROTO);
    free (b);
}

static void
test_hostile_counts (void **state)
{
    (void) state;
    //  The allocation tracker sees a normal parse allocate (so it can see a big one)
    if (s_tracked) {
        s_max_request = 0;
        s_tracking = 1;
        qv_doc_t *doc = s_parse_ok ("\x92\x01\x02", 3, 10);
        s_tracking = 0;
        assert_true (s_max_request > 0);
        qv_doc_destroy (&doc);
    }
    //  array32 claiming 2^32-1 elements in a 10-byte message
    const uint8_t arr [10] = { 0xdd, 0xff, 0xff, 0xff, 0xff, 0x01, 0x02, 0x03, 0x04, 0x05 };
    size_t peak = s_expect_fail (arr, sizeof arr, SIZE_MAX, QV_EPROTO);
    if (s_tracked)
        assert_true (peak < 65536);
    //  Counts that would still fit in memory but not in the bytes: 2^20 elements
    const uint8_t arr20 [10] = { 0xdd, 0x00, 0x10, 0x00, 0x00, 0x01, 0x02, 0x03, 0x04, 0x05 };
    peak = s_expect_fail (arr20, sizeof arr20, SIZE_MAX, QV_EPROTO);
    if (s_tracked)
        assert_true (peak < 65536);
    const uint8_t map [10] = { 0xdf, 0x7f, 0xff, 0xff, 0xff, 0x01, 0x02, 0x03, 0x04, 0x05 };
    s_expect_fail (map, sizeof map, SIZE_MAX, QV_EPROTO);
    //  One map entry is two values: 3 entries need at least 6 bytes
    const uint8_t map3 [] = { 0x83, 0x01, 0x02, 0x03, 0x04, 0x05 };
    s_expect_fail (map3, sizeof map3, SIZE_MAX, QV_EPROTO);
    const uint8_t str [8] = { 0xdb, 0xff, 0xff, 0xff, 0xff, 'a', 'b', 'c' };
    s_expect_fail (str, sizeof str, SIZE_MAX, QV_EPROTO);
    const uint8_t bin [8] = { 0xc6, 0xff, 0xff, 0xff, 0xf0, 'a', 'b', 'c' };
    s_expect_fail (bin, sizeof bin, SIZE_MAX, QV_EPROTO);
    const uint8_t ext [8] = { 0xc9, 0xff, 0xff, 0xff, 0xff, 0x01, 'b', 'c' };
    s_expect_fail (ext, sizeof ext, SIZE_MAX, QV_EPROTO);
    //  Nested: an array of fixarrays each claiming 15 elements
    uint8_t nest [40];
    nest [0] = 0xdc; nest [1] = 0; nest [2] = 37;
    memset (nest + 3, 0x9f, 37);
    peak = s_expect_fail (nest, sizeof nest, SIZE_MAX, QV_EPROTO);
    if (s_tracked)
        assert_true (peak < 65536);
}

static void
test_element_limit (void **state)
{
    (void) state;
    qv_wr_t *w = qv_wr_new ();
    qv_wr_array (w, 3);             //  3 + 2 + 2 x 2 + 1 = 10 elements in all
    qv_wr_array (w, 2);
    qv_wr_int (w, 1);
    qv_wr_int (w, 2);
    qv_wr_map (w, 2);
    qv_wr_str (w, "a"); qv_wr_int (w, 1);
    qv_wr_str (w, "b"); qv_wr_int (w, 2);
    qv_wr_array (w, 1);
    qv_wr_nil (w);
    size_t size;
    const void *data = qv_wr_data (w, &size);
    qv_doc_t *doc = s_parse_ok (data, size, 10);
    qv_doc_destroy (&doc);
    s_expect_fail (data, size, 9, QV_ELIMIT);
    s_expect_fail (data, size, 0, QV_ELIMIT);
    //  Scalars alone are no elements
    doc = s_parse_ok ("\x05", 1, 0);
    qv_doc_destroy (&doc);
    qv_wr_destroy (&w);
}

//  Touches every value of a parsed document and checks what accessors promise.
static size_t
s_walk (const qv_val_t *v, int depth)
{
    assert_true (depth <= 33);
    size_t n = 1;
    const char *s;
    const void *p;
    size_t len;
    unsigned sum = 0;
    switch (qv_val_type (v)) {
        case QV_V_ARRAY:
            for (size_t i = 0; i < qv_val_len (v); i++)
                n += s_walk (qv_val_at (v, i), depth + 1);
            break;
        case QV_V_MAP:
            for (size_t i = 0; i < qv_val_len (v); i++) {
                n += s_walk (qv_val_key (v, i), depth + 1);
                n += s_walk (qv_val_value (v, i), depth + 1);
            }
            break;
        case QV_V_STR:
            assert_int_equal (qv_val_str (v, &s, &len), 0);
            for (size_t i = 0; i < len; i++)
                sum += (unsigned char) s [i];
            break;
        case QV_V_BIN:
            assert_int_equal (qv_val_bin (v, &p, &len), 0);
            for (size_t i = 0; i < len; i++)
                sum += ((const unsigned char *) p) [i];
            break;
        default:
            break;
    }
    (void) sum;
    return n;
}

static void
test_random_mutations (void **state)
{
    (void) state;
    //  A realistic request with a bit of everything, small so mutations hit headers
    qv_wr_t *w = qv_wr_new ();
    qv_wr_map (w, 6);
    qv_wr_str (w, "op"); qv_wr_str (w, "insert");
    qv_wr_str (w, "rid"); qv_wr_uint (w, 300);
    qv_wr_str (w, "collection"); qv_wr_str (w, "docs");
    qv_wr_str (w, "rows");
    qv_wr_array (w, 2);
    for (int r = 0; r < 2; r++) {
        qv_wr_map (w, 3);
        qv_wr_str (w, "id"); qv_wr_int (w, -r * 100000);
        qv_wr_str (w, "vec");
        qv_wr_array (w, 3);
        qv_wr_float (w, 0.5f); qv_wr_double (w, 1e10); qv_wr_int (w, 3);
        qv_wr_str (w, "meta");
        qv_wr_map (w, 1); qv_wr_str (w, "k"); qv_wr_array (w, 1); qv_wr_nil (w);
    }
    qv_wr_str (w, "bin"); qv_wr_bin (w, "\x00\x00\x80\x3f", 4);
    qv_wr_str (w, "flag"); qv_wr_bool (w, false);
    size_t size;
    const uint8_t *orig = qv_wr_data (w, &size);
    static const uint8_t interesting [] = {
        0xc1, 0xdd, 0xdf, 0xdc, 0xde, 0xdb, 0xc6, 0xc9, 0xff, 0x00, 0x7f, 0x80, 0x9f, 0x8f,
        0xbf, 0xd9, 0xc7, 0xd8, 0xcf, 0xcb
    };
    unsigned seed = 20240601;
    size_t ok = 0, failed = 0;
    for (int iter = 0; iter < 100000; iter++) {
        size_t n = size + 8;
        uint8_t *buf = malloc (n);
        memcpy (buf, orig, size);
        n = size;
        int edits = 1 + rand_r (&seed) % 4;
        for (int e = 0; e < edits; e++) {
            size_t at = (size_t) rand_r (&seed) % n;
            switch (rand_r (&seed) % 5) {
                case 0: buf [at] ^= (uint8_t) (1u << (rand_r (&seed) % 8)); break;
                case 1: buf [at] = (uint8_t) rand_r (&seed); break;
                case 2: buf [at] = interesting [rand_r (&seed) % sizeof interesting]; break;
                case 3: n = at + 1; break;                          //  truncate
                case 4: if (n < size + 8) {                         //  insert a byte
                            memmove (buf + at + 1, buf + at, n - at);
                            buf [at] = interesting [rand_r (&seed) % sizeof interesting];
                            n++;
                        }
                        break;
            }
        }
        //  Exact-size copy so ASan sees any read past the end
        uint8_t *exact = malloc (n ? n : 1);
        memcpy (exact, buf, n);
        free (buf);
        int rc = 12345;
        qv_doc_t *doc = qv_doc_parse (exact, n, 4096, &rc);
        if (doc) {
            assert_int_equal (rc, 0);
            ok++;
            s_walk (qv_doc_root (doc), 0);
            //  What parses re-encodes to bytes that parse to the same encoding again
            size_t s1, s2;
            void *e1 = qv_val_encode (qv_doc_root (doc), &s1);
            qv_doc_t *doc2 = s_parse_ok (e1, s1, 4096);
            void *e2 = qv_val_encode (qv_doc_root (doc2), &s2);
            assert_int_equal (s1, s2);
            assert_memory_equal (e1, e2, s1);
            free (e1);
            free (e2);
            qv_doc_destroy (&doc2);
            qv_doc_destroy (&doc);
        }
        else {
            failed++;
            assert_true (rc == QV_EPROTO || rc == QV_ELIMIT);
        }
        free (exact);
    }
    //  The mix exercised both outcomes
    assert_true (ok > 1000);
    assert_true (failed > 1000);
    qv_wr_destroy (&w);
}

//  The map builder counts its own entries: for every size around the msgpack header
//  boundaries (fixmap 15, map16 65535) its bytes equal a map written with the count
//  given up front, nested counted maps inside it included, and qv_wr_map_add counts
//  pairs written by other code.
static void
test_map_builder_counts_itself (void **state)
{
    (void) state;
    const size_t sizes [] = { 0, 1, 2, 15, 16, 17, 255, 256, 65535, 65536, 70000 };
    qv_wr_t *built = qv_wr_new (), *counted = qv_wr_new ();
    for (size_t t = 0; t < sizeof sizes / sizeof sizes [0]; t++) {
        size_t n = sizes [t];
        qv_wr_reset (built);
        qv_wr_reset (counted);
        qv_wr_array (built, 1);         //  the map need not start the buffer
        qv_wr_array (counted, 1);
        qv_wr_map_open (built);
        qv_wr_map (counted, n);
        for (size_t i = 0; i < n; i++) {
            char key [32];
            snprintf (key, sizeof key, "k%zu", i);
            if (i % 3 == 2) {
                //  A pair written without qv_wr_key, counted with qv_wr_map_add
                qv_wr_map_add (built, 1);
                qv_wr_str (built, key);
            }
            else
                qv_wr_key (built, key);
            qv_wr_str (counted, key);
            if (i % 7 == 0) {
                //  A nested counted map (17 entries: a map16 header inside)
                qv_wr_map_open (built);
                qv_wr_map (counted, 17);
                for (int j = 0; j < 17; j++) {
                    qv_wr_key (built, "x");
                    qv_wr_uint (built, (uint64_t) j);
                    qv_wr_str (counted, "x");
                    qv_wr_uint (counted, (uint64_t) j);
                }
                qv_wr_map_close (built);
            }
            else {
                qv_wr_uint (built, i);
                qv_wr_uint (counted, i);
            }
        }
        qv_wr_map_close (built);
        size_t bs, cs;
        const void *bd = qv_wr_data (built, &bs), *cd = qv_wr_data (counted, &cs);
        assert_int_equal (bs, cs);
        assert_memory_equal (bd, cd, bs);
        int rc;
        qv_doc_t *doc = qv_doc_parse (bd, bs, SIZE_MAX, &rc);
        assert_non_null (doc);
        const qv_val_t *map = qv_val_at (qv_doc_root (doc), 0);
        assert_int_equal (qv_val_type (map), QV_V_MAP);
        assert_int_equal (qv_val_len (map), n);
        if (n > 3) {
            uint64_t u;
            assert_true (qv_val_is (qv_val_key (map, 3), "k3"));
            assert_int_equal (qv_val_uint (qv_val_value (map, 3), &u), 0);
            assert_int_equal (u, 3);
        }
        qv_doc_destroy (&doc);
    }
    //  A reset drops maps left open
    qv_wr_reset (built);
    qv_wr_map_open (built);
    qv_wr_reset (built);
    qv_wr_map_open (built);
    qv_wr_key (built, "a");
    qv_wr_nil (built);
    qv_wr_map_close (built);
    size_t size;
    void *data = qv_wr_detach (built, &size);
    assert_int_equal (size, 4);
    assert_memory_equal (data, "\x81\xa1" "a" "\xc0", 4);
    free (data);
    qv_wr_destroy (&built);
    qv_wr_destroy (&counted);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_round_trip_every_type),
        cmocka_unit_test (test_doc_owns_its_memory),
        cmocka_unit_test (test_doc_parsed_in_place),
        cmocka_unit_test (test_typed_accessors_reject_wrong_types),
        cmocka_unit_test (test_truncated_input),
        cmocka_unit_test (test_trailing_bytes),
        cmocka_unit_test (test_invalid_type_byte),
        cmocka_unit_test (test_nesting_limit),
        cmocka_unit_test (test_hostile_counts),
        cmocka_unit_test (test_element_limit),
        cmocka_unit_test (test_random_mutations),
        cmocka_unit_test (test_map_builder_counts_itself),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
