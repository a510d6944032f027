//  Unit-test helper: msgpack built from JSON-like text, so inputs read like requests.
//  Include after cmocka.h. Beyond JSON: f32[1, 2.5] is a bin of little-endian
//  float32 values; nan, inf and -inf are doubles; a number with '.' or 'e' is a
//  double, 1.5f a float32, a negative integer an int, any other integer a uint;
//  {1: 2} allows non-string keys.
#ifndef QV_TEST_JSON_H_INCLUDED
#define QV_TEST_JSON_H_INCLUDED

#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "qv_codec.h"
#include "qv_rc.h"
#include "qv_schema.h"

static void s_json_value (qv_wr_t *w, const char **p);

static void
s_json_ws (const char **p)
{
    while (isspace ((unsigned char) **p))
        (*p)++;
}

//  Writes the elements of a container until `close` into a fresh writer, then the
//  header and the elements into w.
static void
s_json_container (qv_wr_t *w, const char **p, char close, bool is_map)
{
    qv_wr_t *inner = qv_wr_new ();
    size_t n = 0;
    (*p)++;
    s_json_ws (p);
    while (**p != close) {
        assert_true (**p != 0);
        s_json_value (inner, p);
        s_json_ws (p);
        if (is_map) {
            assert_true (**p == ':');
            (*p)++;
            s_json_value (inner, p);
            s_json_ws (p);
        }
        n++;
        if (**p == ',') {
            (*p)++;
            s_json_ws (p);
        }
    }
    (*p)++;
    if (is_map)
        qv_wr_map (w, n);
    else
        qv_wr_array (w, n);
    size_t size;
    const void *data = qv_wr_data (inner, &size);
    qv_wr_raw (w, data, size);
    qv_wr_destroy (&inner);
}

static void
s_json_value (qv_wr_t *w, const char **p)
{
    s_json_ws (p);
    const char *s = *p;
    if (*s == '{')
        s_json_container (w, p, '}', true);
    else
    if (*s == '[')
        s_json_container (w, p, ']', false);
    else
    if (strncmp (s, "f32[", 4) == 0) {
        float v [4096];
        size_t n = 0;
        *p += 4;
        s_json_ws (p);
        while (**p != ']') {
            char *end;
            v [n++] = strtof (*p, &end);
            assert_true (end != *p);
            *p = end;
            s_json_ws (p);
            if (**p == ',')
                (*p)++;
            s_json_ws (p);
        }
        (*p)++;
        qv_wr_bin (w, v, n * sizeof (float));
    }
    else
    if (*s == '"') {
        char *buf = malloc (strlen (s) + 1);
        size_t n = 0;
        s++;
        while (*s != '"') {
            assert_true (*s != 0);
            if (*s == '\\') {
                s++;
                buf [n++] = *s == 'n' ? '\n' : *s == 't' ? '\t' : *s == '0' ? 0 : *s;
            }
            else
                buf [n++] = *s;
            s++;
        }
        qv_wr_strn (w, buf, n);
        free (buf);
        *p = s + 1;
    }
    else
    if (strncmp (s, "true", 4) == 0) { qv_wr_bool (w, true); *p += 4; }
    else
    if (strncmp (s, "false", 5) == 0) { qv_wr_bool (w, false); *p += 5; }
    else
    if (strncmp (s, "null", 4) == 0) { qv_wr_nil (w); *p += 4; }
    else
    if (strncmp (s, "nan", 3) == 0) { qv_wr_double (w, NAN); *p += 3; }
    else
    if (strncmp (s, "inf", 3) == 0) { qv_wr_double (w, INFINITY); *p += 3; }
    else
    if (strncmp (s, "-inf", 4) == 0) { qv_wr_double (w, -INFINITY); *p += 4; }
    else {
        size_t len = strspn (s, "+-0123456789.eE");
        assert_true (len > 0);
        char *end;
        if (s [len] == 'f') {           //  1.5f: a float32
            qv_wr_float (w, strtof (s, &end));
            assert_true (end == s + len);
            *p = end + 1;
            return;
        }
        if (memchr (s, '.', len) || memchr (s, 'e', len) || memchr (s, 'E', len))
            qv_wr_double (w, strtod (s, &end));
        else
        if (*s == '-')
            qv_wr_int (w, strtoll (s, &end, 10));
        else
            qv_wr_uint (w, strtoull (s, &end, 10));
        assert_true (end == s + len);
        *p = end;
    }
}

//  The msgpack encoding of json in a malloc'd buffer.
static inline void *
qv_test_mp (const char *json, size_t *size)
{
    qv_wr_t *w = qv_wr_new ();
    const char *p = json;
    s_json_value (w, &p);
    s_json_ws (&p);
    assert_true (*p == 0);
    void *data = qv_wr_detach (w, size);
    qv_wr_destroy (&w);
    return data;
}

//  The document of json (must parse).
static inline qv_doc_t *
qv_test_doc (const char *json)
{
    size_t size;
    void *data = qv_test_mp (json, &size);
    int rc;
    qv_doc_t *doc = qv_doc_parse (data, size, SIZE_MAX, &rc);
    free (data);
    assert_non_null (doc);
    return doc;
}

//  The schema of json, a list of field maps (must parse).
static inline qv_schema_t *
qv_test_schema (const char *json)
{
    qv_doc_t *doc = qv_test_doc (json);
    int rc;
    qv_schema_t *schema = qv_schema_parse (qv_doc_root (doc), &rc);
    qv_doc_destroy (&doc);
    assert_non_null (schema);
    return schema;
}

#endif
