//  Integration-test helper: a reply value against the JSON-like text a test expects.
#include "qv_it_match.h"
#include "qv_it_server.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool
s_number (const qv_val_t *v, double *d)
{
    qv_vtype_t t = qv_val_type (v);
    return (t == QV_V_UINT || t == QV_V_INT || t == QV_V_FLOAT) && qv_val_double (v, d) == 0;
}

static bool
s_equal (const qv_val_t *a, const qv_val_t *b)
{
    double x, y;
    if (s_number (a, &x) && s_number (b, &y)) {
        int64_t i, j;
        if (qv_val_int (a, &i) == 0 && qv_val_int (b, &j) == 0)
            return i == j;
        return x == y;
    }
    qv_vtype_t t = qv_val_type (a);
    if (t != qv_val_type (b))
        return false;
    switch (t) {
        case QV_V_NIL:
            return true;
        case QV_V_BOOL: {
            bool p, q;
            qv_val_bool (a, &p);
            qv_val_bool (b, &q);
            return p == q;
        }
        case QV_V_STR: case QV_V_BIN: {
            const void *p, *q;
            size_t n, m;
            if (t == QV_V_STR) {
                qv_val_str (a, (const char **) &p, &n);
                qv_val_str (b, (const char **) &q, &m);
            }
            else {
                qv_val_bin (a, &p, &n);
                qv_val_bin (b, &q, &m);
            }
            return n == m && (n == 0 || memcmp (p, q, n) == 0);
        }
        case QV_V_ARRAY:
            if (qv_val_len (a) != qv_val_len (b))
                return false;
            for (size_t i = 0; i < qv_val_len (a); i++)
                if (!s_equal (qv_val_at (a, i), qv_val_at (b, i)))
                    return false;
            return true;
        case QV_V_MAP:
            if (qv_val_len (a) != qv_val_len (b))
                return false;
            for (size_t i = 0; i < qv_val_len (a); i++) {
                bool found = false;
                for (size_t j = 0; j < qv_val_len (b) && !found; j++)
                    if (s_equal (qv_val_key (a, i), qv_val_key (b, j))) {
                        if (!s_equal (qv_val_value (a, i), qv_val_value (b, j)))
                            return false;
                        found = true;
                    }
                if (!found)
                    return false;
            }
            return true;
        default:
            return false;
    }
}

//  Writes v as JSON-ish text to stderr (for mismatch reports).
static void
s_print (const qv_val_t *v)
{
    double d;
    int64_t i;
    const char *s;
    size_t n;
    switch (qv_val_type (v)) {
        case QV_V_NIL: fprintf (stderr, "null"); break;
        case QV_V_BOOL: fprintf (stderr, qv_it_bool (v) ? "true" : "false"); break;
        case QV_V_STR: qv_val_str (v, &s, &n); fprintf (stderr, "\"%.*s\"", (int) n, s); break;
        case QV_V_ARRAY:
            fprintf (stderr, "[");
            for (size_t k = 0; k < qv_val_len (v); k++) {
                fprintf (stderr, k ? ", " : "");
                s_print (qv_val_at (v, k));
            }
            fprintf (stderr, "]");
            break;
        case QV_V_MAP:
            fprintf (stderr, "{");
            for (size_t k = 0; k < qv_val_len (v); k++) {
                fprintf (stderr, k ? ", " : "");
                s_print (qv_val_key (v, k));
                fprintf (stderr, ": ");
                s_print (qv_val_value (v, k));
            }
            fprintf (stderr, "}");
            break;
        default:
            if (qv_val_int (v, &i) == 0)
                fprintf (stderr, "%lld", (long long) i);
            else
            if (qv_val_double (v, &d) == 0)
                fprintf (stderr, "%g", d);
            else
                fprintf (stderr, "(%s)", qv_vtype_name (qv_val_type (v)));
    }
}

bool
qv_it_match (const char *what, const qv_val_t *v, const char *text)
{
    qv_wr_t *w = qv_wr_new ();
    if (qv_it_json_write (w, text)) {
        fprintf (stderr, "%s: bad expected text %s\n", what, text);
        qv_wr_destroy (&w);
        return false;
    }
    size_t size;
    const void *data = qv_wr_data (w, &size);
    int rc;
    qv_doc_t *doc = qv_doc_parse (data, size, SIZE_MAX, &rc);
    bool same = doc && v && s_equal (v, qv_doc_root (doc));
    if (!same) {
        fprintf (stderr, "%s: got ", what);
        if (v)
            s_print (v);
        else
            fprintf (stderr, "(nothing)");
        fprintf (stderr, "\n%s: expected %s\n", what, text);
    }
    qv_doc_destroy (&doc);
    qv_wr_destroy (&w);
    return same;
}
