//  Filter expressions: random schemas, rows and expressions checked against a simple
//  row-at-a-time reference evaluator written here; parse errors with their positions;
//  limits; row ranges and input bitmaps; equal-value sets.
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qv_expr.h"
#include "qv_rc.h"

//  ---------------------------------------------------------------------------------
//  Random numbers

static uint64_t s_rng;

static uint64_t
s_rand (void)
{
    s_rng ^= s_rng << 13;
    s_rng ^= s_rng >> 7;
    s_rng ^= s_rng << 17;
    return s_rng;
}

static int
s_pick (int n)
{
    return (int) (s_rand () % (uint64_t) n);
}

//  ---------------------------------------------------------------------------------
//  Reference values: every value a row-at-a-time evaluator sees

enum { K_NULL, K_INT, K_FLT, K_STR, K_BOOL, K_OTHER };

typedef struct {
    int k;
    int64_t i;
    double d;
    const char *s;
    size_t n;
    bool b;
} rv_t;

static const char *s_strs [] = {
    "", "a", "ab", "abc", "b", "ba", "a%b", "é", "aé", "éa", "tech", "science", "x_y", "A"
};
#define NSTRS (int) (sizeof s_strs / sizeof s_strs [0])

static const char *s_pats [] = {
    "a%", "%b", "%a%", "ab", "", "%", "a_", "_b%", "%\\\\%%", "a%b%", "__", "é%", "%é",
    "_", "%_%", "a%c", "t%h", "%\\\\_%"
};
#define NPATS (int) (sizeof s_pats / sizeof s_pats [0])

static rv_t
s_rv_int (int64_t i)
{
    rv_t v = { .k = K_INT, .i = i };
    return v;
}

static rv_t
s_rv_flt (double d)
{
    rv_t v = { .k = K_FLT, .d = d };
    return v;
}

static rv_t
s_rv_str (const char *s)
{
    rv_t v = { .k = K_STR, .s = s, .n = strlen (s) };
    return v;
}

static rv_t
s_rv_bool (bool b)
{
    rv_t v = { .k = K_BOOL, .b = b };
    return v;
}

static rv_t s_null = { .k = K_NULL };

//  ---------------------------------------------------------------------------------
//  Random schema and rows

enum { MAXF = 16, NPATHS = 9 };

typedef struct {
    int root;                       //  0 map, 1 nil, 2 scalar int, 3 column null
    bool has_a, has_b;
    rv_t a, c;                      //  {"a": a, "b": {"c": c}, "arr": [...]}
    int arrn;                       //  -1: no "arr"
    rv_t arr [3];
} jrow_t;

typedef struct {
    qv_schema_t schema;
    uint32_t n;
    qv_batch_t *batch;
    rv_t *vals [MAXF];              //  per field, per row (non-json)
    jrow_t *json [MAXF];
    int ints [MAXF], nints, flts [MAXF], nflts, strs [MAXF], nstrs;
    int bools [MAXF], nbools, jsons [MAXF], njsons;
    qv_scalar_t *scalars [QV_FIELDS_MAX];   //  an index of every indexable field
} world_t;

static void
s_add_field (qv_schema_t *s, qv_type_t type, bool nullable)
{
    qv_field_t *f = &s->fields [s->nfields];
    memset (f, 0, sizeof *f);
    snprintf (f->name, sizeof f->name, "%s%d", qv_type_name (type), s->nfields);
    f->type = type;
    f->nullable = nullable;
    f->max_length = 100;
    if (type == QV_FLOAT_VECTOR) {
        f->dim = 4;
        f->metric = QV_METRIC_L2;
        s->vec = s->nfields;
    }
    s->nfields++;
}

static int64_t
s_rand_int (qv_type_t t)
{
    int64_t lo = t == QV_INT8 ? INT8_MIN : t == QV_INT16 ? INT16_MIN : t == QV_INT32 ? INT32_MIN : INT64_MIN;
    int64_t hi = t == QV_INT8 ? INT8_MAX : t == QV_INT16 ? INT16_MAX : t == QV_INT32 ? INT32_MAX : INT64_MAX;
    switch (s_pick (10)) {
        case 0: return lo;
        case 1: return hi;
        default: return s_pick (11) - 5;
    }
}

static double
s_rand_dbl (void)
{
    static const double pool [] = { 0.5, -2.5, 1.0, 3.0, 5.0, -0.0, 1e30, 2.25, -1e-3, 4.0 };
    if (s_pick (3) == 0)
        return (double) (s_pick (11) - 5);
    return pool [s_pick (10)];
}

//  A scalar for a json value: writes it and returns its reference
static rv_t
s_json_scalar (qv_wr_t *w, bool allow_other)
{
    switch (s_pick (allow_other ? 9 : 7)) {
        case 0: case 1: { int64_t i = s_pick (11) - 5; qv_wr_int (w, i); return s_rv_int (i); }
        case 2: { double d = s_rand_dbl (); qv_wr_double (w, d); return s_rv_flt (d); }
        case 3: { const char *s = s_strs [s_pick (NSTRS)]; qv_wr_str (w, s); return s_rv_str (s); }
        case 4: { bool b = s_pick (2); qv_wr_bool (w, b); return s_rv_bool (b); }
        case 5: qv_wr_nil (w); return s_null;
        case 6:
            if (s_pick (2)) { qv_wr_int (w, INT64_MAX); return s_rv_int (INT64_MAX); }
            qv_wr_uint (w, UINT64_MAX); return s_rv_flt ((double) UINT64_MAX);
        case 7: { qv_wr_array (w, 1); qv_wr_int (w, 1); rv_t o = { .k = K_OTHER }; return o; }
        default: { qv_wr_map (w, 0); rv_t o = { .k = K_OTHER }; return o; }
    }
}

static void
s_json_row (world_t *wd, int fi, uint32_t row, bool nullable)
{
    jrow_t *j = &wd->json [fi][row];
    qv_col_t *col = &wd->batch->cols [fi];
    memset (j, 0, sizeof *j);
    j->arrn = -1;
    int r = s_pick (10);
    if (nullable && r == 0) {
        j->root = 3;
        col->valid [row] = 0;
        return;
    }
    qv_wr_t *w = qv_wr_new ();
    if (r == 1) {
        j->root = 1;
        qv_wr_nil (w);
    }
    else
    if (r == 2) {
        j->root = 2;
        j->a = s_rv_int (s_pick (5));
        qv_wr_int (w, j->a.i);
    }
    else {
        j->has_a = s_pick (5) > 0;
        j->has_b = s_pick (3) > 0;
        j->arrn = s_pick (5) - 1;
        qv_wr_map (w, (size_t) j->has_a + j->has_b + (j->arrn >= 0));
        if (j->arrn >= 0) {         //  key order varies
            qv_wr_str (w, "arr");
            qv_wr_array (w, (size_t) j->arrn);
            for (int k = 0; k < j->arrn; k++)
                j->arr [k] = s_json_scalar (w, true);
        }
        if (j->has_a) {
            qv_wr_str (w, "a");
            j->a = s_json_scalar (w, true);
        }
        if (j->has_b) {
            qv_wr_str (w, "b");
            qv_wr_map (w, 1);
            qv_wr_str (w, "c");
            j->c = s_json_scalar (w, false);
        }
    }
    size_t size;
    col->var [row].ptr = qv_wr_detach (w, &size);
    col->var [row].len = (uint32_t) size;
    qv_wr_destroy (&w);
}

static world_t *
s_world_new (uint32_t n)
{
    world_t *wd = calloc (1, sizeof *wd);
    qv_schema_t *s = &wd->schema;
    //  Every scalar type once, a few more at random, in random order, one vector
    qv_type_t types [MAXF];
    int nt = 0;
    for (int t = QV_BOOL; t <= QV_JSON; t++)
        types [nt++] = (qv_type_t) t;
    int extra = s_pick (5);
    for (int k = 0; k < extra; k++)
        types [nt++] = (qv_type_t) s_pick (QV_JSON + 1);
    types [nt++] = QV_FLOAT_VECTOR;
    for (int k = nt - 1; k > 0; k--) {
        int r = s_pick (k + 1);
        qv_type_t t = types [k];
        types [k] = types [r];
        types [r] = t;
    }
    for (int k = 0; k < nt; k++)
        s_add_field (s, types [k], types [k] != QV_FLOAT_VECTOR && s_pick (2));
    wd->n = n;
    wd->batch = qv_batch_new (s, n);
    assert_non_null (wd->batch);
    wd->batch->n = n;
    for (int fi = 0; fi < s->nfields; fi++) {
        qv_field_t *f = &s->fields [fi];
        qv_col_t *col = &wd->batch->cols [fi];
        if (f->type == QV_FLOAT_VECTOR)
            continue;
        if (f->nullable) {
            col->valid = malloc (n);
            memset (col->valid, 1, n);
        }
        switch (f->type) {
            case QV_BOOL: wd->bools [wd->nbools++] = fi; break;
            case QV_FLOAT: case QV_DOUBLE: wd->flts [wd->nflts++] = fi; break;
            case QV_VARCHAR: wd->strs [wd->nstrs++] = fi; break;
            case QV_JSON: wd->jsons [wd->njsons++] = fi; break;
            default: wd->ints [wd->nints++] = fi; break;
        }
        if (f->type == QV_JSON) {
            wd->json [fi] = calloc (n, sizeof (jrow_t));
            for (uint32_t r = 0; r < n; r++)
                s_json_row (wd, fi, r, f->nullable);
            continue;
        }
        wd->vals [fi] = calloc (n, sizeof (rv_t));
        for (uint32_t r = 0; r < n; r++) {
            rv_t *v = &wd->vals [fi][r];
            if (f->nullable && s_pick (7) == 0) {
                col->valid [r] = 0;
                *v = s_null;
                continue;
            }
            switch (f->type) {
                case QV_BOOL:
                    *v = s_rv_bool (s_pick (2));
                    col->data [r] = v->b;
                    break;
                case QV_INT8: *v = s_rv_int (s_rand_int (f->type)); ((int8_t *) col->data) [r] = (int8_t) v->i; break;
                case QV_INT16: *v = s_rv_int (s_rand_int (f->type)); ((int16_t *) col->data) [r] = (int16_t) v->i; break;
                case QV_INT32: *v = s_rv_int (s_rand_int (f->type)); ((int32_t *) col->data) [r] = (int32_t) v->i; break;
                case QV_INT64: *v = s_rv_int (s_rand_int (f->type)); ((int64_t *) col->data) [r] = v->i; break;
                case QV_FLOAT: {
                    float x = (float) s_rand_dbl ();
                    ((float *) col->data) [r] = x;
                    *v = s_rv_flt ((double) x);
                    break;
                }
                case QV_DOUBLE: *v = s_rv_flt (s_rand_dbl ()); ((double *) col->data) [r] = v->d; break;
                case QV_VARCHAR: {
                    *v = s_rv_str (s_strs [s_pick (NSTRS)]);
                    col->var [r].ptr = malloc (v->n + 1);
                    memcpy (col->var [r].ptr, v->s, v->n);
                    col->var [r].len = (uint32_t) v->n;
                    break;
                }
                default: break;
            }
        }
    }
    for (int fi = 0; fi < s->nfields; fi++)
        if (s->fields [fi].type != QV_JSON && s->fields [fi].type != QV_FLOAT_VECTOR) {
            wd->scalars [fi] = qv_scalar_new (s->fields [fi].type, &wd->batch->cols [fi], n);
            assert_non_null (wd->scalars [fi]);
        }
    return wd;
}

static void
s_world_destroy (world_t **wd_p)
{
    world_t *wd = *wd_p;
    for (int fi = 0; fi < MAXF; fi++) {
        free (wd->vals [fi]);
        free (wd->json [fi]);
    }
    for (int fi = 0; fi < QV_FIELDS_MAX; fi++)
        qv_scalar_destroy (&wd->scalars [fi]);
    qv_batch_destroy (&wd->batch);
    free (wd);
    *wd_p = NULL;
}

//  ---------------------------------------------------------------------------------
//  Reference tree and evaluator

enum {
    R_LIT, R_FIELD, R_JPATH, R_NEG, R_ARITH, R_CMP, R_IN, R_LIKE, R_ISNULL, R_AND, R_OR,
    R_NOT, R_TRUTH
};
enum { C_EQ, C_NE, C_LT, C_LE, C_GT, C_GE };
enum { A_ADD, A_SUB, A_MUL, A_DIV, A_MOD };

typedef struct rn rn_t;
struct rn {
    int kind, op, field, path;
    bool negate;
    rv_t lit;
    rn_t *a, *b;
    rv_t list [6];
    int nlist;
    const char *pat;
};

static const char *s_path_text [NPATHS] = {
    "", "[\"a\"]", "[\"b\"][\"c\"]", "[\"arr\"][0]", "[\"arr\"][1]", "[\"arr\"][2]",
    "[\"zz\"]", "[\"a\"][\"x\"]", "['b']"
};

static rv_t
r_path (const jrow_t *j, int path)
{
    rv_t other = { .k = K_OTHER };
    if (j->root == 3 || j->root == 1)
        return s_null;
    if (j->root == 2)
        return path == 0 ? j->a : s_null;
    switch (path) {
        case 0: return other;
        case 1: return j->has_a ? j->a : s_null;
        case 2: return j->has_b ? j->c : s_null;
        case 3: case 4: case 5: return path - 3 < j->arrn ? j->arr [path - 3] : s_null;
        case 8: return j->has_b ? other : s_null;
        default: return s_null;
    }
}

static bool
r_num (const rv_t *v)
{
    return v->k == K_INT || v->k == K_FLT;
}

static long double
r_ld (const rv_t *v)
{
    return v->k == K_INT ? (long double) v->i : (long double) v->d;
}

static rv_t
r_arith (int op, rv_t x, rv_t y)
{
    if (!r_num (&x) || !r_num (&y))
        return s_null;
    if (x.k == K_INT && y.k == K_INT) {
        __int128 a = x.i, b = y.i, r;
        switch (op) {
            case A_ADD: r = a + b; break;
            case A_SUB: r = a - b; break;
            case A_MUL: r = a * b; break;
            case A_DIV: if (b == 0) return s_null; r = a / b; break;
            default: if (b == 0) return s_null; r = a % b; break;
        }
        if (r < INT64_MIN || r > INT64_MAX)
            return s_null;
        return s_rv_int ((int64_t) r);
    }
    double a = x.k == K_INT ? (double) x.i : x.d;
    double b = y.k == K_INT ? (double) y.i : y.d;
    switch (op) {
        case A_ADD: return s_rv_flt (a + b);
        case A_SUB: return s_rv_flt (a - b);
        case A_MUL: return s_rv_flt (a * b);
        case A_DIV: return b == 0 ? s_null : s_rv_flt (a / b);
        default: return b == 0 ? s_null : s_rv_flt (fmod (a, b));
    }
}

static int
r_bytes_cmp (const char *a, size_t an, const char *b, size_t bn)
{
    for (size_t i = 0; i < an && i < bn; i++)
        if (a [i] != b [i])
            return (unsigned char) a [i] < (unsigned char) b [i] ? -1 : 1;
    return an < bn ? -1 : an > bn ? 1 : 0;
}

//  == etc. over two values: a K_BOOL, or K_NULL when unknown
static rv_t
r_cmp (int op, rv_t x, rv_t y)
{
    int c;
    if (r_num (&x) && r_num (&y)) {
        long double a = r_ld (&x), b = r_ld (&y);
        if (isnan (a) || isnan (b))
            return s_rv_bool (op == C_NE);
        c = a < b ? -1 : a > b ? 1 : 0;
    }
    else
    if (x.k == K_STR && y.k == K_STR)
        c = r_bytes_cmp (x.s, x.n, y.s, y.n);
    else
    if (x.k == K_BOOL && y.k == K_BOOL && (op == C_EQ || op == C_NE))
        c = x.b != y.b;
    else
        return s_null;
    switch (op) {
        case C_EQ: return s_rv_bool (c == 0);
        case C_NE: return s_rv_bool (c != 0);
        case C_LT: return s_rv_bool (c < 0);
        case C_LE: return s_rv_bool (c <= 0);
        case C_GT: return s_rv_bool (c > 0);
        default: return s_rv_bool (c >= 0);
    }
}

static int
r_charlen (const char *s, size_t n)
{
    unsigned char c = (unsigned char) s [0];
    int l = c < 0xC0 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
    return (size_t) l < n ? l : (int) n;
}

//  p: pattern text, with \ escapes
static bool
r_like (const char *p, const char *s, size_t n)
{
    if (!*p)
        return n == 0;
    if (*p == '%') {
        for (size_t k = 0; ; k += r_charlen (s + k, n - k)) {
            if (r_like (p + 1, s + k, n - k))
                return true;
            if (k >= n)
                return false;
        }
    }
    if (*p == '_')
        return n > 0 && r_like (p + 1, s + r_charlen (s, n), n - r_charlen (s, n));
    if (*p == '\\' && p [1])
        p++;
    return n > 0 && *s == *p && r_like (p + 1, s + 1, n - 1);
}

static rv_t
r_and (rv_t x, rv_t y, bool is_and)
{
    bool xk = x.k == K_BOOL, yk = y.k == K_BOOL;
    if (is_and) {
        if ((xk && !x.b) || (yk && !y.b)) return s_rv_bool (false);
        if (xk && yk) return s_rv_bool (true);
        return s_null;
    }
    if ((xk && x.b) || (yk && y.b)) return s_rv_bool (true);
    if (xk && yk) return s_rv_bool (false);
    return s_null;
}

static rv_t
r_eval (const world_t *wd, const rn_t *n, uint32_t row)
{
    switch (n->kind) {
        case R_LIT: return n->lit;
        case R_FIELD: return wd->vals [n->field][row];
        case R_JPATH: return r_path (&wd->json [n->field][row], n->path);
        case R_NEG: {
            rv_t x = r_eval (wd, n->a, row);
            return x.k == K_FLT ? s_rv_flt (-x.d) : r_arith (A_SUB, s_rv_int (0), x);
        }
        case R_ARITH: return r_arith (n->op, r_eval (wd, n->a, row), r_eval (wd, n->b, row));
        case R_CMP: return r_cmp (n->op, r_eval (wd, n->a, row), r_eval (wd, n->b, row));
        case R_IN: {
            rv_t x = r_eval (wd, n->a, row);
            if (x.k == K_NULL || x.k == K_OTHER)
                return s_null;
            rv_t acc = s_rv_bool (false);
            for (int k = 0; k < n->nlist; k++)
                acc = r_and (acc, r_cmp (C_EQ, x, n->list [k]), false);
            if (n->negate && acc.k == K_BOOL)
                acc.b = !acc.b;
            return acc;
        }
        case R_LIKE: {
            rv_t x = r_eval (wd, n->a, row);
            if (x.k != K_STR)
                return s_null;
            return s_rv_bool (r_like (n->pat, x.s, x.n));
        }
        case R_ISNULL: {
            rv_t x = r_eval (wd, n->a, row);
            return s_rv_bool ((x.k == K_NULL) != n->negate);
        }
        case R_AND: case R_OR:
            return r_and (r_eval (wd, n->a, row), r_eval (wd, n->b, row), n->kind == R_AND);
        case R_NOT: {
            rv_t x = r_eval (wd, n->a, row);
            return x.k == K_BOOL ? s_rv_bool (!x.b) : s_null;
        }
        case R_TRUTH: {
            rv_t x = r_eval (wd, n->a, row);
            return x.k == K_BOOL ? x : s_null;
        }
    }
    return s_null;
}

//  ---------------------------------------------------------------------------------
//  Expression generator: text and reference tree together

enum { G_BOOL, G_INT, G_FLT, G_STR, G_JSON };

typedef struct {
    world_t *wd;
    char *buf;
    size_t len, cap;
    rn_t *nodes;
    int nnodes;
} gen_t;

static void
g_put (gen_t *g, const char *fmt, ...)
{
    va_list args;
    va_start (args, fmt);
    char tmp [512];
    int n = vsnprintf (tmp, sizeof tmp, fmt, args);
    va_end (args);
    if (g->len + (size_t) n + 1 > g->cap) {
        g->cap = (g->len + n + 1) * 2;
        g->buf = realloc (g->buf, g->cap);
    }
    memcpy (g->buf + g->len, tmp, (size_t) n + 1);
    g->len += (size_t) n;
}

static rn_t *
g_node (gen_t *g, int kind)
{
    assert_true (g->nnodes < 4096);
    rn_t *n = &g->nodes [g->nnodes++];
    memset (n, 0, sizeof *n);
    n->kind = kind;
    return n;
}

static void
g_str_lit (gen_t *g, const char *s)
{
    char q = s_pick (2) ? '"' : '\'';
    g_put (g, "%c", q);
    for (const char *p = s; *p; p++) {
        if (*p == q || *p == '\\')
            g_put (g, "\\%c", *p);
        else
        if ((unsigned char) *p == 0xC3 && (unsigned char) p [1] == 0xA9 && s_pick (2)) {
            g_put (g, "\\u00e9");   //  é
            p++;
        }
        else
            g_put (g, "%c", *p);
    }
    g_put (g, "%c", q);
}

static void
g_dbl_lit (gen_t *g, double d)
{
    char tmp [64];
    snprintf (tmp, sizeof tmp, "%.17g", d);
    if (!strpbrk (tmp, ".e"))
        strcat (tmp, ".0");
    g_put (g, "%s", tmp);
}

//  A literal of kind k, written and returned
static rv_t
g_lit (gen_t *g, int k)
{
    static const int64_t ints [] = { 0, 1, 2, 3, -1, -5, 5, 127, -128, 4, INT64_MAX, INT64_MIN };
    switch (k) {
        case K_INT: {
            int64_t i = s_pick (4) ? s_pick (11) - 5 : ints [s_pick (12)];
            g_put (g, "%" PRId64, i);
            return s_rv_int (i);
        }
        case K_FLT: {
            double d = s_rand_dbl ();
            g_dbl_lit (g, d);
            return s_rv_flt (d);
        }
        case K_STR: {
            const char *s = s_strs [s_pick (NSTRS)];
            g_str_lit (g, s);
            return s_rv_str (s);
        }
        default: {
            bool b = s_pick (2);
            static const char *t [] = { "true", "True", "TRUE" }, *f [] = { "false", "False", "FALSE" };
            g_put (g, "%s", b ? t [s_pick (3)] : f [s_pick (3)]);
            return s_rv_bool (b);
        }
    }
}

static rn_t *g_bool (gen_t *g, int depth);

static void
g_field (gen_t *g, int fi)
{
    g_put (g, "%s", g->wd->schema.fields [fi].name);
}

//  A json path (type G_JSON)
static rn_t *
g_json (gen_t *g)
{
    rn_t *n = g_node (g, R_JPATH);
    n->field = g->wd->jsons [s_pick (g->wd->njsons)];
    n->path = s_pick (NPATHS);
    g_field (g, n->field);
    g_put (g, "%s", s_path_text [n->path]);
    return n;
}

//  A number-valued expression; *ty gets G_INT, G_FLT or G_JSON
static rn_t *
g_num (gen_t *g, int depth, int *ty)
{
    world_t *wd = g->wd;
    int r = s_pick (depth > 0 ? 10 : 6);
    if (r == 0 || (r == 1 && !wd->nflts)) {
        rn_t *n = g_node (g, R_LIT);
        n->lit = g_lit (g, K_INT);
        *ty = G_INT;
        return n;
    }
    if (r == 1) {
        rn_t *n = g_node (g, R_LIT);
        n->lit = g_lit (g, K_FLT);
        *ty = G_FLT;
        return n;
    }
    if (r == 2 || r == 3) {
        rn_t *n = g_node (g, R_FIELD);
        bool flt = wd->nflts && s_pick (3) == 0;
        n->field = flt ? wd->flts [s_pick (wd->nflts)] : wd->ints [s_pick (wd->nints)];
        g_field (g, n->field);
        *ty = flt ? G_FLT : G_INT;
        return n;
    }
    if (r == 4) {
        *ty = G_JSON;
        return g_json (g);
    }
    if (r == 5) {
        rn_t *n = g_node (g, R_FIELD);
        n->field = wd->ints [s_pick (wd->nints)];
        g_field (g, n->field);
        *ty = G_INT;
        return n;
    }
    if (r == 6) {
        rn_t *n = g_node (g, R_NEG);
        g_put (g, "-(");
        n->a = g_num (g, depth - 1, ty);
        g_put (g, ")");
        return n;
    }
    rn_t *n = g_node (g, R_ARITH);
    static const char *ops [] = { "+", "-", "*", "/", "%" };
    n->op = s_pick (5);
    int ta, tb;
    g_put (g, "(");
    n->a = g_num (g, depth - 1, &ta);
    g_put (g, ") %s (", ops [n->op]);
    n->b = g_num (g, depth - 1, &tb);
    g_put (g, ")");
    *ty = ta == G_JSON || tb == G_JSON ? G_JSON : ta == G_FLT || tb == G_FLT ? G_FLT : G_INT;
    return n;
}

static rn_t *
g_strval (gen_t *g, int *ty)
{
    int r = s_pick (3);
    if (r == 0) {
        rn_t *n = g_node (g, R_LIT);
        n->lit = g_lit (g, K_STR);
        *ty = G_STR;
        return n;
    }
    if (r == 1) {
        *ty = G_JSON;
        return g_json (g);
    }
    rn_t *n = g_node (g, R_FIELD);
    n->field = g->wd->strs [s_pick (g->wd->nstrs)];
    g_field (g, n->field);
    *ty = G_STR;
    return n;
}

//  Any value: its kind in *ty
static rn_t *
g_value (gen_t *g, int depth, int *ty)
{
    int r = s_pick (4);
    if (r == 0)
        return g_strval (g, ty);
    if (r == 1 && depth > 0) {
        *ty = G_BOOL;
        g_put (g, "(");
        rn_t *n = g_bool (g, depth - 1);
        g_put (g, ")");
        if (n->kind == R_TRUTH) {   //  a bare json path in a value context is the value
            *ty = G_JSON;
            return n->a;
        }
        return n;
    }
    return g_num (g, depth, ty);
}

static const char *
g_cmp_op (int op)
{
    static const char *ops [] = { "==", "!=", "<", "<=", ">", ">=" };
    return ops [op];
}

//  A condition
static rn_t *
g_bool (gen_t *g, int depth)
{
    world_t *wd = g->wd;
    int r = s_pick (depth > 0 ? 16 : 9);
    switch (r) {
        case 0: case 1: {           //  number comparison
            rn_t *n = g_node (g, R_CMP);
            int ta, tb;
            n->op = s_pick (6);
            n->a = g_num (g, depth, &ta);
            g_put (g, " %s ", g_cmp_op (n->op));
            n->b = g_num (g, depth, &tb);
            return n;
        }
        case 2: {                   //  string comparison
            rn_t *n = g_node (g, R_CMP);
            int ta, tb;
            n->op = s_pick (6);
            n->a = g_strval (g, &ta);
            g_put (g, " %s ", g_cmp_op (n->op));
            n->b = g_strval (g, &tb);
            return n;
        }
        case 3: {                   //  json path against a literal of any kind
            rn_t *n = g_node (g, R_CMP);
            int k = 1 + s_pick (4);
            n->op = k == K_BOOL ? s_pick (2) : s_pick (6);
            n->a = g_json (g);
            g_put (g, " %s ", g_cmp_op (n->op));
            n->b = g_node (g, R_LIT);
            n->b->lit = g_lit (g, k);
            return n;
        }
        case 4: {                   //  in / not in
            rn_t *n = g_node (g, R_IN);
            int ty;
            n->a = g_value (g, depth, &ty);
            n->negate = s_pick (2);
            g_put (g, n->negate ? (s_pick (2) ? " not in [" : " NOT IN [") : " in [");
            n->nlist = s_pick (5);
            for (int k = 0; k < n->nlist; k++) {
                int lk = ty == G_STR ? K_STR : ty == G_BOOL ? K_BOOL
                       : ty == G_JSON ? 1 + s_pick (4) : 1 + s_pick (2);
                if (k)
                    g_put (g, ", ");
                n->list [k] = g_lit (g, lk);
            }
            g_put (g, "]");
            return n;
        }
        case 5: {                   //  like
            rn_t *n = g_node (g, R_LIKE);
            int ty;
            n->a = g_strval (g, &ty);
            n->pat = s_pats [s_pick (NPATS)];
            //  The pattern text already holds its string-literal escapes (\\)
            g_put (g, s_pick (2) ? " like \"%s\"" : " LIKE \"%s\"", n->pat);
            static char unesc [NPATS][16];
            for (int k = 0; k < NPATS; k++)
                if (s_pats [k] == n->pat) {
                    const char *p = n->pat;
                    char *o = unesc [k];
                    while (*p) {
                        if (*p == '\\' && p [1] == '\\') p++;
                        *o++ = *p++;
                    }
                    *o = 0;
                    n->pat = unesc [k];
                }
            return n;
        }
        case 6: {                   //  is [not] null
            rn_t *n = g_node (g, R_ISNULL);
            int ty;
            n->negate = s_pick (2);
            g_put (g, "(");
            n->a = g_value (g, depth, &ty);
            g_put (g, n->negate ? ") is not null" : ") IS NULL");
            return n;
        }
        case 7: {                   //  bool field, json path or literal as a condition
            int k = s_pick (3);
            if (k == 0 && wd->nbools) {
                rn_t *n = g_node (g, R_FIELD);
                n->field = wd->bools [s_pick (wd->nbools)];
                g_field (g, n->field);
                return n;
            }
            if (k == 1) {
                rn_t *n = g_node (g, R_TRUTH);
                n->a = g_json (g);
                return n;
            }
            rn_t *n = g_node (g, R_LIT);
            n->lit = g_lit (g, K_BOOL);
            return n;
        }
        case 8: {                   //  bool comparison
            rn_t *n = g_node (g, R_CMP);
            n->op = s_pick (2);
            if (wd->nbools && s_pick (2)) {
                n->a = g_node (g, R_FIELD);
                n->a->field = wd->bools [s_pick (wd->nbools)];
                g_field (g, n->a->field);
            }
            else
                n->a = g_json (g);
            g_put (g, " %s ", g_cmp_op (n->op));
            n->b = g_node (g, R_LIT);
            n->b->lit = g_lit (g, K_BOOL);
            return n;
        }
        case 9: case 10: case 11: case 12: {  //  and / or
            rn_t *n = g_node (g, r < 11 ? R_AND : R_OR);
            static const char *ands [] = { "and", "AND", "&&" }, *ors [] = { "or", "OR", "||" };
            g_put (g, "(");
            n->a = g_bool (g, depth - 1);
            g_put (g, ") %s (", n->kind == R_AND ? ands [s_pick (3)] : ors [s_pick (3)]);
            n->b = g_bool (g, depth - 1);
            g_put (g, ")");
            return n;
        }
        case 13: {                  //  not
            rn_t *n = g_node (g, R_NOT);
            g_put (g, s_pick (2) ? "not (" : "!(");
            n->a = g_bool (g, depth - 1);
            g_put (g, ")");
            return n;
        }
        default: {                  //  comparison of a condition or json with json
            rn_t *n = g_node (g, R_CMP);
            int ta;
            n->op = 0;
            g_put (g, "(");
            n->a = g_value (g, depth - 1, &ta);
            bool ordered = ta != G_BOOL;
            n->op = ordered ? s_pick (6) : s_pick (2);
            g_put (g, ") %s ", g_cmp_op (n->op));
            n->b = g_json (g);
            return n;
        }
    }
}

//  ---------------------------------------------------------------------------------
//  Tests

static int s_mixed;                 //  filters that matched some rows but not all
static int s_indexed;               //  filters the scalar indexes helped answer

static void
s_check_expr (world_t *wd, gen_t *g, rn_t *root, roaring_bitmap_t *in, uint32_t from, uint32_t to)
{
    int rc;
    qv_expr_t *e = qv_expr_parse (&wd->schema, g->buf, g->len, &rc);
    if (!e)
        fail_msg ("parse failed on a valid filter: %s\n  %s", qv_err_msg (), g->buf);
    roaring_bitmap_t *got = roaring_bitmap_create ();
    if (!in && from == 0 && to == wd->n)
        rc = qv_expr_eval (e, wd->batch, wd->n, got);
    else
        rc = qv_expr_eval_rows (e, wd->batch, from, to, in, got);
    assert_int_equal (rc, 0);
    for (uint32_t r = 0; r < wd->n; r++) {
        bool asked = r >= from && r < to && (!in || roaring_bitmap_contains (in, r));
        rv_t want = r_eval (wd, root, r);
        bool match = asked && want.k == K_BOOL && want.b;
        if (roaring_bitmap_contains (got, r) != match) {
            for (int fi = 0; fi < wd->schema.nfields; fi++) {
                if (wd->json [fi]) {
                    const jrow_t *j = &wd->json [fi][r];
                    print_message ("  %s: root %d a %d/%d b %d c %d arrn %d\n", wd->schema.fields [fi].name,
                                   j->root, j->has_a, j->a.k, j->has_b, j->c.k, j->arrn);
                }
                else
                if (wd->vals [fi]) {
                    const rv_t *v = &wd->vals [fi][r];
                    print_message ("  %s: k %d i %" PRId64 " d %g s '%.*s' b %d\n", wd->schema.fields [fi].name,
                                   v->k, v->i, v->d, (int) v->n, v->s ? v->s : "", v->b);
                }
            }
            fail_msg ("row %u: expected %s (ref kind %d), got %s\n  %s", r, match ? "match" : "no match",
                      want.k, match ? "no match" : "match", g->buf);
        }
    }
    //  The scalar indexes give the same rows, whether or not they answer the filter
    if (!in) {
        roaring_bitmap_t *indexed = roaring_bitmap_create ();
        rc = qv_expr_eval_indexed (e, wd->batch, from, to, wd->scalars, 1.0, indexed);
        assert_true (rc == 0 || rc == 1);
        s_indexed += rc;
        if (!roaring_bitmap_equals (indexed, got))
            fail_msg ("the scalar-index path disagrees with the scan\n  %s", g->buf);
        roaring_bitmap_free (indexed);
    }
    uint64_t card = roaring_bitmap_get_cardinality (got);
    s_mixed += card > 0 && card < to - from;
    //  Single-row evaluation agrees
    for (int k = 0; k < 5; k++) {
        uint32_t r = (uint32_t) s_pick ((int) wd->n);
        rv_t want = r_eval (wd, root, r);
        assert_int_equal (qv_expr_match_row (e, wd->batch, r), want.k == K_BOOL && want.b);
    }
    roaring_bitmap_free (got);
    qv_expr_destroy (&e);
    assert_null (e);
    qv_expr_destroy (&e);
}

static void
test_random_against_reference (void **state)
{
    (void) state;
    s_rng = 0x9E3779B97F4A7C15ull;
    gen_t g = { 0 };
    g.nodes = malloc (4096 * sizeof (rn_t));
    int exprs = 0;
    for (int world = 0; world < 24; world++) {
        uint32_t n = world % 4 == 0 ? 2600 : 50 + (uint32_t) s_pick (900);
        world_t *wd = s_world_new (n);
        g.wd = wd;
        for (int k = 0; k < 250; k++) {
            g.len = 0;
            g.nnodes = 0;
            g_put (&g, "%s", "");
            rn_t *root = g_bool (&g, 1 + s_pick (4));
            int mode = s_pick (4);
            if (mode == 0) {
                s_check_expr (wd, &g, root, NULL, 0, wd->n);
            }
            else
            if (mode == 1) {
                uint32_t a = (uint32_t) s_pick ((int) n), b = (uint32_t) s_pick ((int) n + 1);
                s_check_expr (wd, &g, root, NULL, a < b ? a : b, a < b ? b : a);
            }
            else {
                roaring_bitmap_t *in = roaring_bitmap_create ();
                int density = mode == 2 ? 2 : 40;
                for (uint32_t r = 0; r < n + 10; r++)
                    if (s_pick (density) == 0)
                        roaring_bitmap_add (in, r);
                if (mode == 3)
                    roaring_bitmap_add_range (in, n / 3, n / 2);     //  a dense run
                s_check_expr (wd, &g, root, in, (uint32_t) s_pick (10), n);
                roaring_bitmap_free (in);
            }
            exprs++;
        }
        s_world_destroy (&wd);
    }
    free (g.nodes);
    free (g.buf);
    print_message ("checked %d random filters, %d matched some rows but not all, %d used an index\n",
                   exprs, s_mixed, s_indexed);
    assert_true (s_indexed > exprs / 20);
    assert_true (s_mixed > exprs / 3);
}

//  A fixed schema for hand-written cases
static qv_schema_t s_fixed;

static world_t *
s_fixed_world (void)
{
    memset (&s_fixed, 0, sizeof s_fixed);
    s_add_field (&s_fixed, QV_INT64, false);        //  int640
    s_add_field (&s_fixed, QV_VARCHAR, true);       //  varchar1
    s_add_field (&s_fixed, QV_JSON, true);          //  json2
    s_add_field (&s_fixed, QV_FLOAT_VECTOR, false); //  float_vector3
    s_add_field (&s_fixed, QV_BOOL, false);         //  bool4
    s_add_field (&s_fixed, QV_DOUBLE, false);       //  double5
    strcpy (s_fixed.fields [0].name, "id");
    strcpy (s_fixed.fields [1].name, "category");
    strcpy (s_fixed.fields [2].name, "meta");
    strcpy (s_fixed.fields [3].name, "vec");
    strcpy (s_fixed.fields [4].name, "flag");
    strcpy (s_fixed.fields [5].name, "score");
    world_t *wd = calloc (1, sizeof *wd);
    wd->schema = s_fixed;
    wd->n = 10;
    wd->batch = qv_batch_new (&wd->schema, 10);
    wd->batch->n = 10;
    qv_col_t *cols = wd->batch->cols;
    cols [1].valid = malloc (10);
    for (uint32_t r = 0; r < 10; r++) {
        ((int64_t *) cols [0].data) [r] = r;
        const char *cat = r % 3 == 0 ? "tech" : r % 3 == 1 ? "science" : "art";
        cols [1].var [r].ptr = (uint8_t *) strdup (cat);
        cols [1].var [r].len = (uint32_t) strlen (cat);
        cols [1].valid [r] = r != 9;
        cols [4].data [r] = r % 2;
        ((double *) cols [5].data) [r] = r * 0.5;
        qv_wr_t *w = qv_wr_new ();
        qv_wr_map (w, 2);
        qv_wr_str (w, "lang");
        qv_wr_str (w, r < 5 ? "en" : "fr");
        qv_wr_str (w, "n");
        qv_wr_int (w, r);
        size_t size;
        cols [2].var [r].ptr = qv_wr_detach (w, &size);
        cols [2].var [r].len = (uint32_t) size;
        qv_wr_destroy (&w);
    }
    return wd;
}

//  Rows matching text as a bit mask
static int
s_rows (world_t *wd, const char *text)
{
    int rc;
    qv_expr_t *e = qv_expr_parse (&wd->schema, text, strlen (text), &rc);
    if (!e)
        fail_msg ("%s: %s", text, qv_err_msg ());
    roaring_bitmap_t *got = roaring_bitmap_create ();
    assert_int_equal (qv_expr_eval (e, wd->batch, wd->n, got), 0);
    int mask = 0;
    for (uint32_t r = 0; r < wd->n; r++)
        if (roaring_bitmap_contains (got, r))
            mask |= 1 << r;
    roaring_bitmap_free (got);
    qv_expr_destroy (&e);
    return mask;
}

static void
test_examples (void **state)
{
    (void) state;
    world_t *wd = s_fixed_world ();
    //  The protocol's example: tech rows 0 3 6 (9 is null), science 1 4 7; en: 0-4
    assert_int_equal (s_rows (wd, "category in [\"tech\", \"science\"] and id > 0 and meta[\"lang\"] == \"en\""),
                      (1 << 1) | (1 << 3) | (1 << 4));
    assert_int_equal (s_rows (wd, "category == 'art'"), (1 << 2) | (1 << 5) | (1 << 8));
    assert_int_equal (s_rows (wd, "category is null"), 1 << 9);
    assert_int_equal (s_rows (wd, "category is not null"), 0x1FF);
    //  Three-valued logic: a null is neither equal nor unequal
    assert_int_equal (s_rows (wd, "not (category == 'tech')"), 0x1FF & ~0x49);
    assert_int_equal (s_rows (wd, "category != 'tech' or category is null"), 0x3FF & ~0x49);
    assert_int_equal (s_rows (wd, "flag and id > 4"), (1 << 5) | (1 << 7) | (1 << 9));
    assert_int_equal (s_rows (wd, "!flag && id < 4"), (1 << 0) | (1 << 2));
    assert_int_equal (s_rows (wd, "flag == false"), 0x155);
    assert_int_equal (s_rows (wd, "id % 3 == 0"), 0x249);
    assert_int_equal (s_rows (wd, "10 / id >= 5"), (1 << 1) | (1 << 2));    //  row 0: 10/0
    assert_int_equal (s_rows (wd, "not (10 / id >= 5)"), 0x3FF & ~0x7);     //  row 0 unknown
    assert_int_equal (s_rows (wd, "score * 2 == id"), 0x3FF);
    assert_int_equal (s_rows (wd, "id / 2 == 2"), (1 << 4) | (1 << 5));     //  int division
    assert_int_equal (s_rows (wd, "id / 2.0 == 2.5"), 1 << 5);
    assert_int_equal (s_rows (wd, "-id < -7"), (1 << 8) | (1 << 9));
    assert_int_equal (s_rows (wd, "id > -9223372036854775808"), 0x3FF);
    assert_int_equal (s_rows (wd, "id + 9223372036854775807 > 0"), 1 << 0); //  the rest overflow
    assert_int_equal (s_rows (wd, "category like 'sc%'"), 0x92);
    assert_int_equal (s_rows (wd, "category like '%ch'"), 0x49);
    assert_int_equal (s_rows (wd, "category like '%ien%'"), 0x92);
    assert_int_equal (s_rows (wd, "category like 'a_t'"), 0x124);
    assert_int_equal (s_rows (wd, "category like 'art'"), 0x124);
    assert_int_equal (s_rows (wd, "meta['n'] >= 8"), 0x300);
    assert_int_equal (s_rows (wd, "meta[\"n\"] in [1, 2.0, 'x']"), 0x6);
    assert_int_equal (s_rows (wd, "meta['missing'] == 1 or meta['missing'] != 1"), 0);
    assert_int_equal (s_rows (wd, "meta['missing'] is null"), 0x3FF);
    assert_int_equal (s_rows (wd, "meta['lang'] like 'f%' and meta['n'] + 1 > 9"), 0x200);
    assert_int_equal (s_rows (wd, "id not in [1, 2, 3]"), 0x3F1);
    assert_int_equal (s_rows (wd, "id in []"), 0);
    assert_int_equal (s_rows (wd, "true"), 0x3FF);
    assert_int_equal (s_rows (wd, "FALSE or id == 3"), 0x8);
    assert_int_equal (s_rows (wd, "((((id == 3))))"), 0x8);
    assert_int_equal (s_rows (wd, "id == 3 OR id == 4 AND flag"), 0x8);      //  and binds tighter
    assert_int_equal (s_rows (wd, "'x\\'y' == \"x'y\" and id < 1"), 1);
    assert_int_equal (s_rows (wd, "2 < id and id <= 3"), 0x8);               //  literal first
    assert_int_equal (s_rows (wd, "score > 1 and score < 2.1"), (1 << 3) | (1 << 4));
    assert_int_equal (s_rows (wd, "score == 2"), 1 << 4);

    //  Fields read, and a constant filter
    int rc;
    qv_expr_t *e = qv_expr_parse (&wd->schema, "id > 1 and meta['a'] == 1", 25, &rc);
    uint64_t mask = 0;
    assert_true (qv_expr_fields (e, &mask));
    assert_int_equal (mask, (1 << 0) | (1 << 2));
    qv_expr_destroy (&e);
    e = qv_expr_parse (&wd->schema, "true", 4, &rc);
    assert_false (qv_expr_fields (e, &mask));
    qv_expr_destroy (&e);
    s_world_destroy (&wd);
}

static void
test_errors (void **state)
{
    (void) state;
    world_t *wd = s_fixed_world ();
    static const struct {
        const char *text;
        const char *msg;
    } cases [] = {
        { "catgory == 'tech'", "unknown field 'catgory' at position 1" },
        { "id == 'tech'", "cannot compare int64 field 'id' with string 'tech' at position 7" },
        { "category > 5", "cannot compare varchar field 'category' with number 5 at position 12" },
        { "flag == 1", "cannot compare bool field 'flag' with number 1 at position 9" },
        { "flag < true", "bools can only be compared with == or !=, not '<' at position 6" },
        { "id in [1, 'a']", "cannot compare int64 field 'id' with string 'a' at position 11" },
        { "vec == 1", "vector field 'vec' cannot be used in a filter at position 1" },
        { "id > ", "expected a field, literal or '(', got end of input at position 6" },
        { "id = 1", "unexpected '=' (comparison is '==') at position 4" },
        { "(id == 1", "expected ')', got end of input at position 9" },
        { "id == 1)", "unexpected ')' at position 8" },
        { "id == 99999999999999999999", "integer '99999999999999999999' out of the int64 range at position 7" },
        { "id == 9223372036854775808", "out of the int64 range at position 7" },
        { "category == 'abc", "unterminated string at position 13" },
        { "category == 'a\\qb'", "bad escape '\\q' in string at position 15" },
        { "id + 1", "a filter must be a condition, got int expression 'id + 1' at position 1" },
        { "id and flag", "expected a condition, got int64 field 'id' at position 1" },
        { "category like 5", "expected a string pattern after 'like', got '5' at position 15" },
        { "id like 'a%'", "'like' needs a string, got int64 field 'id' at position 1" },
        { "id is 5", "expected 'null' after 'is', got '5' at position 7" },
        { "id['a'] == 1", "field 'id' is int64, not json: '[' cannot follow it at position 3" },
        { "meta[-1] == 1", "expected a string key or an array index after '[', got '-' at position 6" },
        { "category + 1 > 2", "'+' needs numbers, got varchar field 'category' at position 1" },
        { "-category == 'a'", "'-' needs a number, got varchar field 'category' at position 1" },
        { "", "empty filter at position 1" },
        { "   ", "empty filter at position 1" },
        { "id == 1 #", "unexpected character '#' at position 9" },
        { "é == 1", "unexpected byte 0xc3 at position 1" },
        { "'é' == id2", "unknown field 'id2' at position 8" },     //  positions count characters
        { "id == 1.5.2", "bad number '1.5.2' at position 7" },
        { "id == 1e999", "number '1e999' out of range at position 7" },
        { "id in [1 2]", "expected ',' or ']' in the 'in' list, got '2' at position 10" },
        { "id in (1)", "expected '[' after 'in', got '(' at position 7" },
        { "id == null", "expected a field, literal or '(', got 'null' at position 7" },
        { "id == 1 and", "expected a field, literal or '(', got end of input at position 12" },
        { "category == \"\\ud800\"", "bad unicode escape '\\ud800' at position 14" },
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases [0]; k++) {
        int rc = 0;
        qv_expr_t *e = qv_expr_parse (&wd->schema, cases [k].text, strlen (cases [k].text), &rc);
        if (e)
            fail_msg ("accepted: %s", cases [k].text);
        assert_int_equal (rc, QV_EINVAL);
        if (!strstr (qv_err_msg (), cases [k].msg))
            fail_msg ("%s\n  got:  %s\n  want: %s", cases [k].text, qv_err_msg (), cases [k].msg);
    }
    s_world_destroy (&wd);
}

static qv_expr_t *
s_parse_str (world_t *wd, const char *text, size_t len, int *rc)
{
    return qv_expr_parse (&wd->schema, text, len, rc);
}

static void
test_limits (void **state)
{
    (void) state;
    world_t *wd = s_fixed_world ();
    int rc;
    char *buf = malloc (1 << 20);
    //  64 parentheses are fine, 65 are not, nor are a million
    for (int depth = 64; depth <= 65; depth++) {
        size_t n = 0;
        for (int k = 0; k < depth; k++) buf [n++] = '(';
        n += (size_t) sprintf (buf + n, "id == 1");
        for (int k = 0; k < depth; k++) buf [n++] = ')';
        qv_expr_t *e = s_parse_str (wd, buf, n, &rc);
        if (depth == 64)
            assert_non_null (e);
        else {
            assert_null (e);
            assert_non_null (strstr (qv_err_msg (), "nested deeper than 64 at position 65"));
        }
        qv_expr_destroy (&e);
    }
    memset (buf, '(', 60000);
    assert_null (s_parse_str (wd, buf, 60000, &rc));
    assert_int_equal (rc, QV_EINVAL);
    //  not / unary minus / arithmetic chains
    size_t n = 0;
    for (int k = 0; k < 10000; k++) n += (size_t) sprintf (buf + n, "not ");
    n += (size_t) sprintf (buf + n, "flag");
    assert_null (s_parse_str (wd, buf, n, &rc));
    assert_non_null (strstr (qv_err_msg (), "nested deeper"));
    n = 0;
    for (int k = 0; k < 30000; k++) buf [n++] = '-';
    n += (size_t) sprintf (buf + n, "id > 1");
    assert_null (s_parse_str (wd, buf, n, &rc));
    n = (size_t) sprintf (buf, "id");
    for (int k = 0; k < 100; k++) n += (size_t) sprintf (buf + n, " + 1");
    n += (size_t) sprintf (buf + n, " > 1");
    assert_null (s_parse_str (wd, buf, n, &rc));
    assert_non_null (strstr (qv_err_msg (), "nested deeper than 64"));
    //  A long flat or-chain is fine: 64 KiB of it
    n = 0;
    int terms = 0;
    while (n < QV_EXPR_TEXT_MAX - 32) {
        n += (size_t) sprintf (buf + n, "%sid == %d", terms ? " or " : "", terms % 10);
        terms++;
    }
    qv_expr_t *e = s_parse_str (wd, buf, n, &rc);
    assert_non_null (e);
    roaring_bitmap_t *got = roaring_bitmap_create ();
    assert_int_equal (qv_expr_eval (e, wd->batch, wd->n, got), 0);
    assert_int_equal (roaring_bitmap_get_cardinality (got), 10);
    roaring_bitmap_free (got);
    qv_expr_destroy (&e);
    //  A big in-list
    n = (size_t) sprintf (buf, "id in [");
    for (int k = 0; n < QV_EXPR_TEXT_MAX - 16; k++) n += (size_t) sprintf (buf + n, "%s%d", k ? "," : "", k * 7);
    buf [n++] = ']';
    e = s_parse_str (wd, buf, n, &rc);
    assert_non_null (e);
    assert_int_equal (qv_expr_match_row (e, wd->batch, 7), 1);
    assert_int_equal (qv_expr_match_row (e, wd->batch, 8), 0);
    qv_expr_destroy (&e);
    //  Over the length limit
    memset (buf, ' ', QV_EXPR_TEXT_MAX + 1);
    memcpy (buf, "flag", 4);
    assert_null (s_parse_str (wd, buf, QV_EXPR_TEXT_MAX + 1, &rc));
    assert_int_equal (rc, QV_EINVAL);
    assert_non_null (strstr (qv_err_msg (), "longer than"));
    assert_non_null ((e = s_parse_str (wd, buf, QV_EXPR_TEXT_MAX, &rc)));
    qv_expr_destroy (&e);
    //  Long json path
    n = (size_t) sprintf (buf, "meta");
    for (int k = 0; k < 33; k++) n += (size_t) sprintf (buf + n, "['a']");
    n += (size_t) sprintf (buf + n, " == 1");
    assert_null (s_parse_str (wd, buf, n, &rc));
    assert_non_null (strstr (qv_err_msg (), "json path longer than 32"));
    free (buf);
    //  A batch of another layout is refused
    qv_schema_t other = wd->schema;
    other.fields [0].type = QV_INT32;
    qv_batch_t *b = qv_batch_new (&other, 4);
    e = s_parse_str (wd, "id > 1", 6, &rc);
    got = roaring_bitmap_create ();
    assert_int_equal (qv_expr_eval (e, b, 4, got), QV_EINVAL);
    assert_int_equal (qv_expr_eval (e, wd->batch, wd->batch->cap + 1, got), QV_EINVAL);
    roaring_bitmap_free (got);
    qv_expr_destroy (&e);
    qv_batch_destroy (&b);
    s_world_destroy (&wd);
}

static void
test_equal_values (void **state)
{
    (void) state;
    world_t *wd = s_fixed_world ();
    static const struct {
        const char *text;
        int field;
        int rc;
        int n;
    } cases [] = {
        { "id == 5", 0, 1, 1 },
        { "5 == id", 0, 1, 1 },
        { "id in [1, 2, 2, 3.0, 3.5] and score > 1", 0, 1, 3 },
        { "(id == 1 or id == 2 or id in [2, 4]) and flag", 0, 1, 3 },
        { "id in [1, 2, 3] and id == 2", 0, 1, 1 },
        { "id == 1 or score == 2", 0, 0, 0 },
        { "not id == 1", 0, 0, 0 },
        { "id != 1", 0, 0, 0 },
        { "id not in [1]", 0, 0, 0 },
        { "id == 1.5", 0, 1, 0 },
        { "category in ['a', 'b'] or category == 'c'", 1, 1, 3 },
        { "id + 0 == 1", 0, 0, 0 },
        { "meta['a'] == 1", 2, 0, 0 },
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases [0]; k++) {
        int rc;
        qv_expr_t *e = qv_expr_parse (&wd->schema, cases [k].text, strlen (cases [k].text), &rc);
        assert_non_null (e);
        qv_expr_value_t *v;
        size_t n;
        rc = qv_expr_equal_values (e, cases [k].field, &v, &n);
        if (rc != cases [k].rc || (int) n != cases [k].n)
            fail_msg ("%s: rc %d n %zu", cases [k].text, rc, n);
        if (k == 2) {
            assert_int_equal (v [0].type, QV_INT64);
            assert_int_equal (v [0].i, 1);
            assert_int_equal (v [2].i, 3);
        }
        if (k == 10) {
            int seen = 0;           //  the or's operands may come in any order
            for (size_t j = 0; j < n; j++) {
                assert_int_equal (v [j].type, QV_VARCHAR);
                assert_int_equal (v [j].len, 1);
                seen |= 1 << (v [j].s [0] - 'a');
            }
            assert_int_equal (seen, 7);
        }
        free (v);
        qv_expr_destroy (&e);
    }
    s_world_destroy (&wd);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_examples),
        cmocka_unit_test (test_errors),
        cmocka_unit_test (test_limits),
        cmocka_unit_test (test_equal_values),
        cmocka_unit_test (test_random_against_reference),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
