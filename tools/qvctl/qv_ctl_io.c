//  qvctl's inputs (vector files, inline vectors, JSON lines) and JSON output.
#include "qv_ctl_io.h"
#include "qv_rc.h"
#include "qv_vecs.h"

#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static bool
s_ends_with (const char *s, const char *suffix)
{
    size_t n = strlen (s), m = strlen (suffix);
    return n >= m && strcasecmp (s + n - m, suffix) == 0;
}

//  Reads a whole file; NULL with the reason recorded.
static unsigned char *
s_slurp (const char *path, size_t *size)
{
    FILE *file = fopen (path, "rb");
    if (!file) {
        qv_err (QV_EIO, "cannot open %s: %s", path, strerror (errno));
        return NULL;
    }
    unsigned char *data = NULL;
    if (fseek (file, 0, SEEK_END) == 0) {
        long n = ftell (file);
        if (n >= 0 && fseek (file, 0, SEEK_SET) == 0 && (data = malloc ((size_t) n + 1))) {
            if (fread (data, 1, (size_t) n, file) == (size_t) n)
                *size = (size_t) n;
            else {
                free (data);
                data = NULL;
            }
        }
    }
    if (!data)
        qv_err (QV_EIO, "cannot read %s: %s", path, errno ? strerror (errno) : "out of memory");
    fclose (file);
    return data;
}

//  .bvecs: each vector is int32 dim, then dim uint8 values.
static float *
s_bvecs_read (const char *path, uint32_t max_rows, uint32_t *dim, uint32_t *rows)
{
    size_t size = 0;
    unsigned char *data = s_slurp (path, &size);
    if (!data)
        return NULL;
    float *out = NULL;
    int32_t d = 0;
    if (size >= 4)
        memcpy (&d, data, 4);
    size_t row_bytes = 4 + (size_t) (d > 0 ? d : 0);
    if (d <= 0 || d > 65536 || size % row_bytes != 0)
        qv_err (QV_ECORRUPT, "%s: %zu bytes is not a whole number of .bvecs vectors "
                "(first dimension %d)", path, size, d);
    else {
        size_t n = size / row_bytes;
        if (max_rows && n > max_rows)
            n = max_rows;
        out = malloc ((n ? n : 1) * (size_t) d * sizeof (float));
        for (size_t r = 0; out && r < n; r++) {
            int32_t rd;
            memcpy (&rd, data + r * row_bytes, 4);
            if (rd != d) {
                qv_err (QV_ECORRUPT, "%s: vector %zu has dimension %d, the first one %d",
                        path, r, rd, d);
                free (out);
                out = NULL;
                break;
            }
            for (int32_t i = 0; i < d; i++)
                out [r * (size_t) d + (size_t) i] = data [r * row_bytes + 4 + (size_t) i];
        }
        if (out) {
            *dim = (uint32_t) d;
            *rows = (uint32_t) n;
        }
    }
    free (data);
    return out;
}

//  .npy (NumPy format 1.0-3.0): magic, version, header length, a Python dict literal
//  {'descr': '<f4', 'fortran_order': False, 'shape': (N, D), }, then the data.
static float *
s_npy_read (const char *path, uint32_t max_rows, uint32_t *dim, uint32_t *rows)
{
    size_t size = 0;
    unsigned char *data = s_slurp (path, &size);
    if (!data)
        return NULL;
    float *out = NULL;
    size_t hlen = 0, hstart = 0;
    if (size < 10 || memcmp (data, "\x93NUMPY", 6) != 0) {
        qv_err (QV_ECORRUPT, "%s: not a .npy file (no \\x93NUMPY magic)", path);
        goto cleanup;
    }
    if (data [6] == 1) {
        hlen = data [8] | (size_t) data [9] << 8;
        hstart = 10;
    }
    else
    if (size >= 12 && (data [6] == 2 || data [6] == 3)) {
        hlen = data [8] | (size_t) data [9] << 8 | (size_t) data [10] << 16 | (size_t) data [11] << 24;
        hstart = 12;
    }
    else {
        qv_err (QV_ECORRUPT, "%s: unknown .npy format version %u", path, data [6]);
        goto cleanup;
    }
    if (hstart + hlen > size) {
        qv_err (QV_ECORRUPT, "%s: .npy header runs past the end of the file", path);
        goto cleanup;
    }
    char header [4096];
    snprintf (header, sizeof header, "%.*s", (int) (hlen < sizeof header ? hlen : sizeof header - 1),
              (const char *) data + hstart);
    const char *descr = strstr (header, "'descr':");
    const char *order = strstr (header, "'fortran_order':");
    const char *shape = strstr (header, "'shape':");
    if (!descr || !order || !shape) {
        qv_err (QV_ECORRUPT, "%s: .npy header without descr, fortran_order or shape", path);
        goto cleanup;
    }
    descr += strlen ("'descr':");
    while (*descr == ' ')
        descr++;
    if (strncmp (descr, "'<f4'", 5) != 0) {
        qv_err (QV_EINVAL, "%s: the array's dtype is %.*s; qvctl imports float32 ('<f4'): "
                "convert it with arr.astype('float32')", path, (int) strcspn (descr, ","), descr);
        goto cleanup;
    }
    order += strlen ("'fortran_order':");
    while (*order == ' ')
        order++;
    if (strncmp (order, "False", 5) != 0) {
        qv_err (QV_EINVAL, "%s: the array is in Fortran order; save it with "
                "np.save(path, np.ascontiguousarray(arr))", path);
        goto cleanup;
    }
    //  shape: "(n, d)"; "(n,)" and "(n, d, x)" are not 2-D
    unsigned long long dims [3] = { 0, 0, 0 };
    int ndims = 0;
    const char *p = strchr (shape, '('), *close = p ? strchr (p, ')') : NULL;
    for (p = p ? p + 1 : NULL; p && p < close && ndims < 3; ) {
        while (*p == ' ' || *p == ',')
            p++;
        if (p >= close)
            break;
        char *end;
        dims [ndims++] = strtoull (p, &end, 10);
        if (end == p)
            break;
        p = end;
    }
    unsigned long long n = dims [0], d = dims [1];
    if (!close || ndims != 2) {
        qv_err (QV_EINVAL, "%s: the array must be 2-D (rows, dim), its shape is %.*s", path,
                close ? (int) (close - strchr (shape, '(') + 1) : 1, close ? strchr (shape, '(') : "?");
        goto cleanup;
    }
    if (d == 0 || d > 65536 || n > UINT32_MAX - 1) {
        qv_err (QV_EINVAL, "%s: shape (%llu, %llu) is out of range (dim 1..65536)", path, n, d);
        goto cleanup;
    }
    size_t body = hstart + hlen;
    if (size - body != n * d * 4) {
        qv_err (QV_ECORRUPT, "%s: %zu data bytes, but shape (%llu, %llu) of float32 needs %llu",
                path, size - body, n, d, n * d * 4);
        goto cleanup;
    }
    if (max_rows && n > max_rows)
        n = max_rows;
    out = malloc ((n ? n : 1) * d * sizeof (float));
    if (!out) {
        qv_err (QV_ENOMEM, "%s: out of memory", path);
        goto cleanup;
    }
    memcpy (out, data + body, n * d * sizeof (float));
    *dim = (uint32_t) d;
    *rows = (uint32_t) n;
cleanup:
    free (data);
    return out;
}

float *
qv_ctl_vectors_read (const char *path, uint32_t max_rows, uint32_t *dim, uint32_t *rows)
{
    if (s_ends_with (path, ".npy"))
        return s_npy_read (path, max_rows, dim, rows);
    if (s_ends_with (path, ".bvecs"))
        return s_bvecs_read (path, max_rows, dim, rows);
    if (s_ends_with (path, ".fvecs"))
        return qv_vecs_read (path, max_rows, dim, rows);
    qv_err (QV_EINVAL, "%s: unknown file type; qvctl reads .fvecs, .bvecs, .npy (float32, "
            "2-D) and .jsonl", path);
    return NULL;
}

float *
qv_ctl_vector_parse (const char *text, uint32_t *dim)
{
    while (isspace ((unsigned char) *text))
        text++;
    char *wrapped = NULL;
    if (*text != '[' && asprintf (&wrapped, "[%s]", text) < 0)
        return NULL;
    json_error_t error;
    json_t *arr = json_loads (wrapped ? wrapped : text, 0, &error);
    free (wrapped);
    float *out = NULL;
    size_t n = arr && json_is_array (arr) ? json_array_size (arr) : 0;
    if (n == 0 || n > 65536)
        qv_err (QV_EINVAL, "'%s' is not a vector (e.g. '[0.1, 0.2]' or 0.1,0.2)%s%s", text,
                arr ? "" : ": ", arr ? "" : error.text);
    else
    if ((out = malloc (n * sizeof *out))) {
        for (size_t i = 0; i < n; i++) {
            json_t *x = json_array_get (arr, i);
            if (!json_is_number (x)) {
                qv_err (QV_EINVAL, "'%s': element %zu is not a number", text, i);
                free (out);
                out = NULL;
                break;
            }
            out [i] = (float) json_number_value (x);
        }
        *dim = (uint32_t) n;
    }
    json_decref (arr);
    return out;
}

bool
qv_ctl_is_jsonl (const char *path)
{
    return strcmp (path, "-") == 0 || s_ends_with (path, ".jsonl") || s_ends_with (path, ".ndjson");
}

//  Writes a JSON value as msgpack.
static void
s_write_json (qv_wr_t *w, json_t *v)
{
    switch (json_typeof (v)) {
        case JSON_OBJECT: {
            qv_wr_map (w, json_object_size (v));
            const char *key;
            json_t *value;
            json_object_foreach (v, key, value) {
                qv_wr_str (w, key);
                s_write_json (w, value);
            }
            break;
        }
        case JSON_ARRAY:
            qv_wr_array (w, json_array_size (v));
            for (size_t i = 0; i < json_array_size (v); i++)
                s_write_json (w, json_array_get (v, i));
            break;
        case JSON_STRING: qv_wr_strn (w, json_string_value (v), json_string_length (v)); break;
        case JSON_INTEGER: qv_wr_int (w, json_integer_value (v)); break;
        case JSON_REAL: qv_wr_double (w, json_real_value (v)); break;
        case JSON_TRUE: qv_wr_bool (w, true); break;
        case JSON_FALSE: qv_wr_bool (w, false); break;
        default: qv_wr_nil (w);
    }
}

int
qv_ctl_jsonl_read (const char *path, void ***rows_p, size_t **sizes_p, size_t *count_p)
{
    FILE *file = strcmp (path, "-") == 0 ? stdin : fopen (path, "rb");
    if (!file) {
        qv_err (QV_EIO, "cannot open %s: %s", path, strerror (errno));
        return -1;
    }
    void **rows = NULL;
    size_t *sizes = NULL, count = 0, cap = 0, lineno = 0, len = 0;
    char *line = NULL;
    int rc = 0;
    qv_wr_t *w = qv_wr_new ();
    ssize_t got;
    while ((got = getline (&line, &len, file)) >= 0) {
        lineno++;
        const char *p = line;
        while (isspace ((unsigned char) *p))
            p++;
        if (!*p)
            continue;
        json_error_t error;
        json_t *row = json_loadb (line, (size_t) got, JSON_REJECT_DUPLICATES, &error);
        if (!row || !json_is_object (row)) {
            qv_err (QV_EINVAL, "%s line %zu: %s", path, lineno,
                    row ? "not a JSON object (one row per line: {\"id\": 1, \"vector\": [...]})"
                        : error.text);
            json_decref (row);
            rc = -1;
            break;
        }
        if (count == cap) {
            cap = cap ? cap * 2 : 1024;
            void **r = realloc (rows, cap * sizeof *rows);
            size_t *s = r ? realloc (sizes, cap * sizeof *sizes) : NULL;
            if (r)
                rows = r;
            if (s)
                sizes = s;
            if (!r || !s) {
                qv_err (QV_ENOMEM, "%s: out of memory at line %zu", path, lineno);
                json_decref (row);
                rc = -1;
                break;
            }
        }
        s_write_json (w, row);
        json_decref (row);
        rows [count] = qv_wr_detach (w, &sizes [count]);
        count++;
    }
    if (rc == 0 && ferror (file)) {
        qv_err (QV_EIO, "cannot read %s: %s", path, strerror (errno));
        rc = -1;
    }
    qv_wr_destroy (&w);
    free (line);
    if (file != stdin)
        fclose (file);
    if (rc) {
        qv_ctl_rows_free (rows, sizes, count);
        return rc;
    }
    *rows_p = rows;
    *sizes_p = sizes;
    *count_p = count;
    return 0;
}

void
qv_ctl_rows_free (void **rows, size_t *sizes, size_t count)
{
    for (size_t i = 0; rows && i < count; i++)
        free (rows [i]);
    free (rows);
    free (sizes);
}

void
qv_ctl_print_str (FILE *out, const char *s, size_t n)
{
    fputc ('"', out);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char) s [i];
        if (c == '"' || c == '\\')
            fprintf (out, "\\%c", c);
        else
        if (c < 0x20)
            fprintf (out, "\\u%04x", c);
        else
            fputc (c, out);
    }
    fputc ('"', out);
}

void
qv_ctl_print_json (FILE *out, const qv_val_t *v)
{
    switch (qv_val_type (v)) {
        case QV_V_NIL: fputs ("null", out); break;
        case QV_V_BOOL: {
            bool b = false;
            qv_val_bool (v, &b);
            fputs (b ? "true" : "false", out);
            break;
        }
        case QV_V_UINT: {
            uint64_t u = 0;
            qv_val_uint (v, &u);
            fprintf (out, "%llu", (unsigned long long) u);
            break;
        }
        case QV_V_INT: {
            int64_t i = 0;
            qv_val_int (v, &i);
            fprintf (out, "%lld", (long long) i);
            break;
        }
        case QV_V_FLOAT: {
            double d = 0;
            qv_val_double (v, &d);
            if (isfinite (d))
                fprintf (out, "%.9g", d);
            else
                fputs ("null", out);
            break;
        }
        case QV_V_STR: {
            const char *s;
            size_t n;
            qv_val_str (v, &s, &n);
            qv_ctl_print_str (out, s, n);
            break;
        }
        case QV_V_BIN:
            fprintf (out, "\"<bin %zu bytes>\"", qv_val_len (v));
            break;
        case QV_V_ARRAY:
            fputc ('[', out);
            for (size_t i = 0; i < qv_val_len (v); i++) {
                if (i)
                    fputs (", ", out);
                qv_ctl_print_json (out, qv_val_at (v, i));
            }
            fputc (']', out);
            break;
        case QV_V_MAP:
            fputc ('{', out);
            for (size_t i = 0; i < qv_val_len (v); i++) {
                if (i)
                    fputs (", ", out);
                qv_ctl_print_json (out, qv_val_key (v, i));
                fputs (": ", out);
                qv_ctl_print_json (out, qv_val_value (v, i));
            }
            fputc ('}', out);
            break;
        default:
            fputs ("\"<ext>\"", out);
    }
}
