//  Filter expressions: the column-wise evaluator over blocks of rows.
//
//  DESIGN
//
//  Evaluation. Rows are taken QV_EXPR_BLOCK at a time: either a contiguous range
//  (base .. base + m) or a list of row numbers gathered from the caller's bitmap.
//  Each node turns the block into one "slab": a vector of m values of its type with a
//  known-flag per row (int64 / double / string pointers / json values), or for
//  conditions two byte masks, t (definitely true) and f (definitely false); a row
//  with neither is unknown (SQL's three-valued logic). Every operator is a tight loop
//  over those vectors; comparisons of a column with a literal read the column
//  directly. Slabs come from a small pool per evaluation, and a node gives its
//  children's slabs back as soon as it has combined them, so memory grows with the
//  tree's depth, not its size. The expression itself is never written during
//  evaluation: several threads may evaluate one expression at once.
//
//  JSON values are msgpack bytes; a path is walked per row with the codec's reader
//  (qv_doc_parse), the value found is reduced to a scalar (int, double, string,
//  bool, null, or "other" for arrays and maps). Documents whose strings are still
//  referenced stay alive in the slab until it is given back.
#include "qv_expr_tree.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

//  ---------------------------------------------------------------------------------
//  Evaluation

#define B QV_EXPR_BLOCK

typedef struct _slab_t slab_t;
struct _slab_t {
    slab_t *next;                   //  in the pool
    uint8_t t [B];                  //  condition: true
    uint8_t f [B];                  //  condition: false
    uint8_t ok [B];                 //  value: known (not null)
    union {
        int64_t i [B];
        double d [B];
        const uint8_t *s [B];
    } u;
    uint32_t sn [B];                //  string lengths
    jv_t jv [B];                    //  json values
};

//  What one evaluation shares across the rows of a block and its narrowed subsets
typedef struct {
    slab_t *pool;                   //  free slabs
    qv_doc_t **docs [QV_FIELDS_MAX];    //  json field: parsed document per block position
    uint8_t *parsed [QV_FIELDS_MAX];    //  json field: 1 once docs [k] was tried
} shared_t;

typedef struct {
    const qv_schema_t *schema;
    const qv_batch_t *cols;
    uint32_t m;                     //  rows in this (sub-)block
    uint32_t base;                  //  first row, when rows is NULL
    const uint32_t *rows;           //  the rows, or NULL for base .. base + m
    const uint32_t *top;            //  their positions in the whole block, or NULL: 0 .. m
    shared_t *sh;
} ctx_t;

#define ROW(c, k) ((c)->rows ? (c)->rows [k] : (c)->base + (uint32_t) (k))
#define TOP(c, k) ((c)->top ? (c)->top [k] : (uint32_t) (k))

static slab_t *
s_slab (ctx_t *c)
{
    slab_t *s = c->sh->pool;
    if (s) {
        c->sh->pool = s->next;
        return s;
    }
    return malloc (sizeof *s);
}

static void
s_release (ctx_t *c, slab_t *s)
{
    if (!s)
        return;
    s->next = c->sh->pool;
    c->sh->pool = s;
}

//  Drops the documents parsed for the block just evaluated
static void
s_docs_reset (shared_t *sh)
{
    for (int f = 0; f < QV_FIELDS_MAX; f++)
        if (sh->parsed [f]) {
            for (uint32_t k = 0; k < B; k++)
                if (sh->parsed [f][k])
                    qv_doc_destroy (&sh->docs [f][k]);
            memset (sh->parsed [f], 0, B);
        }
}

static void
s_shared_free (shared_t *sh)
{
    s_docs_reset (sh);
    for (int f = 0; f < QV_FIELDS_MAX; f++) {
        free (sh->docs [f]);
        free (sh->parsed [f]);
    }
    while (sh->pool) {
        slab_t *next = sh->pool->next;
        free (sh->pool);
        sh->pool = next;
    }
}

static slab_t *s_eval (const node_t *n, ctx_t *c);

//  Reduces a decoded json value to a scalar
static void
s_jv_of (const qv_val_t *v, jv_t *out)
{
    out->k = J_OTHER;
    size_t len;
    const char *s;
    uint64_t u;
    switch (qv_val_type (v)) {
        case QV_V_NIL: out->k = J_NULL; break;
        case QV_V_BOOL: out->k = J_BOOL; qv_val_bool (v, &out->b); break;
        case QV_V_INT: out->k = J_INT; qv_val_int (v, &out->i); break;
        case QV_V_UINT:
            qv_val_uint (v, &u);
            if (u <= INT64_MAX) {
                out->k = J_INT;
                out->i = (int64_t) u;
            }
            else {
                out->k = J_FLT;
                out->d = (double) u;
            }
            break;
        case QV_V_FLOAT: out->k = J_FLT; qv_val_double (v, &out->d); break;
        case QV_V_STR:
            qv_val_str (v, &s, &len);
            out->k = J_STR;
            out->s = (const uint8_t *) s;
            out->n = (uint32_t) len;
            break;
        default: break;
    }
}

//  Loads a json field (or a path into it) for the block. Each row's document is
//  parsed once per block, whichever path nodes read it. false if out of memory.
static bool
s_load_json (const node_t *n, ctx_t *c, slab_t *r)
{
    const qv_col_t *col = &c->cols->cols [n->field];
    shared_t *sh = c->sh;
    if (!sh->parsed [n->field]) {
        sh->docs [n->field] = calloc (B, sizeof (qv_doc_t *));
        sh->parsed [n->field] = calloc (B, 1);
        if (!sh->docs [n->field] || !sh->parsed [n->field]) {
            free (sh->docs [n->field]);
            free (sh->parsed [n->field]);
            sh->docs [n->field] = NULL;
            sh->parsed [n->field] = NULL;
            return false;
        }
    }
    qv_doc_t **docs = sh->docs [n->field];
    uint8_t *parsed = sh->parsed [n->field];
    for (uint32_t k = 0; k < c->m; k++) {
        uint32_t row = ROW (c, k), top = TOP (c, k);
        jv_t *out = &r->jv [k];
        out->k = J_NULL;
        if (col->valid && !col->valid [row])
            continue;
        //  A slot holding nothing is the empty map (qv_bytes_t)
        static const uint8_t empty_map [1] = { 0x80 };
        const qv_bytes_t *raw = qv_col_var (col, row);
        const uint8_t *bytes = raw->len ? raw->ptr : empty_map;
        uint32_t len = raw->len ? raw->len : sizeof empty_map;
        if (!parsed [top]) {
            int rc;
            docs [top] = qv_doc_parse (bytes, len, len, &rc);
            parsed [top] = 1;
        }
        if (!docs [top])
            continue;               //  not decodable: treated as missing
        const qv_val_t *v = qv_doc_root (docs [top]);
        for (int s = 0; v && s < n->nsteps; s++) {
            const step_t *st = &n->steps [s];
            if (st->index) {
                v = qv_val_type (v) == QV_V_ARRAY && st->i < qv_val_len (v)
                  ? qv_val_at (v, (size_t) st->i) : NULL;
                continue;
            }
            const qv_val_t *found = NULL;
            if (qv_val_type (v) == QV_V_MAP)
                for (size_t e = 0; e < qv_val_len (v) && !found; e++) {
                    const char *ks;
                    size_t kn;
                    if (qv_val_str (qv_val_key (v, e), &ks, &kn) == 0
                    &&  qv_bytes_cmp ((const uint8_t *) ks, (uint32_t) kn, st->s, st->n) == 0)
                        found = qv_val_value (v, e);
                }
            v = found;
        }
        if (v)
            s_jv_of (v, out);
    }
    return true;
}

//  Loads a column
static slab_t *
s_load (const node_t *n, ctx_t *c)
{
    slab_t *r = s_slab (c);
    if (!r)
        return NULL;
    const qv_field_t *f = &c->schema->fields [n->field];
    const qv_col_t *col = &c->cols->cols [n->field];
    uint32_t m = c->m;
#define LOAD(T, DST) do {                                                   \
        const T *v = (const T *) col->data;                                 \
        if (c->rows) for (uint32_t k = 0; k < m; k++) DST [k] = v [c->rows [k]]; \
        else { v += c->base; for (uint32_t k = 0; k < m; k++) DST [k] = v [k]; } \
    } while (0)
    switch (f->type) {
        case QV_BOOL:
            LOAD (uint8_t, r->t);
            for (uint32_t k = 0; k < m; k++) {
                r->t [k] = r->t [k] != 0;
                r->f [k] = !r->t [k];
            }
            if (col->valid)
                for (uint32_t k = 0; k < m; k++) {
                    uint8_t ok = col->valid [ROW (c, k)] != 0;
                    r->t [k] &= ok;
                    r->f [k] &= ok;
                }
            return r;
        case QV_INT8: LOAD (int8_t, r->u.i); break;
        case QV_INT16: LOAD (int16_t, r->u.i); break;
        case QV_INT32: LOAD (int32_t, r->u.i); break;
        case QV_INT64: LOAD (int64_t, r->u.i); break;
        case QV_FLOAT: LOAD (float, r->u.d); break;
        case QV_DOUBLE: LOAD (double, r->u.d); break;
        case QV_VARCHAR:
            for (uint32_t k = 0; k < m; k++) {
                const qv_bytes_t *v = qv_col_var (col, ROW (c, k));
                r->u.s [k] = v->ptr;
                r->sn [k] = v->ptr ? v->len : 0;
            }
            break;
        case QV_JSON:
            if (!s_load_json (n, c, r)) {
                s_release (c, r);
                return NULL;
            }
            return r;
        default:
            break;
    }
#undef LOAD
    if (col->valid)
        for (uint32_t k = 0; k < m; k++)
            r->ok [k] = col->valid [ROW (c, k)] != 0;
    else
        memset (r->ok, 1, m);
    return r;
}

static slab_t *
s_literal (const node_t *n, ctx_t *c)
{
    slab_t *r = s_slab (c);
    if (!r)
        return NULL;
    uint32_t m = c->m;
    switch (n->type) {
        case T_BOOL:
            memset (r->t, n->lit.b, m);
            memset (r->f, !n->lit.b, m);
            return r;
        case T_INT: for (uint32_t k = 0; k < m; k++) r->u.i [k] = n->lit.i; break;
        case T_FLOAT: for (uint32_t k = 0; k < m; k++) r->u.d [k] = n->lit.d; break;
        case T_STR:
            for (uint32_t k = 0; k < m; k++) {
                r->u.s [k] = n->lit.s;
                r->sn [k] = n->lit.n;
            }
            break;
        default: break;
    }
    memset (r->ok, 1, m);
    return r;
}

//  Fills r->jv from a typed slab of type t
static void
s_to_jv (slab_t *r, ty_t t, uint32_t m)
{
    for (uint32_t k = 0; k < m; k++) {
        jv_t *v = &r->jv [k];
        v->k = J_NULL;
        if (t == T_BOOL) {
            if (r->t [k] || r->f [k]) {
                v->k = J_BOOL;
                v->b = r->t [k];
            }
            continue;
        }
        if (!r->ok [k])
            continue;
        if (t == T_INT) { v->k = J_INT; v->i = r->u.i [k]; }
        if (t == T_FLOAT) { v->k = J_FLT; v->d = r->u.d [k]; }
        if (t == T_STR) { v->k = J_STR; v->s = r->u.s [k]; v->n = r->sn [k]; }
    }
}

//  Converts an int slab to double, in place
static void
s_to_float (slab_t *r, uint32_t m)
{
    for (uint32_t k = 0; k < m; k++)
        r->u.d [k] = (double) r->u.i [k];
}

//  Exact comparison of an int64 with a double: -1, 0, 1, or 2 when b is NaN
static int
s_cmp_id (int64_t a, double b)
{
    if (isnan (b))
        return 2;
    if (b >= 9223372036854775808.0)
        return -1;
    if (b < -9223372036854775808.0)
        return 1;
    double tb = trunc (b);
    int64_t ib = (int64_t) tb;
    if (a != ib)
        return a < ib ? -1 : 1;
    return b > tb ? -1 : b < tb ? 1 : 0;
}

static int
s_cmp_dd (double a, double b)
{
    if (isnan (a) || isnan (b))
        return 2;
    return a < b ? -1 : a > b;
}

//  Whether three-way result c (2: unordered) satisfies op
static inline bool
s_op_holds (int op, int c)
{
    if (c == 2)
        return op == OP_NE;
    switch (op) {
        case OP_EQ: return c == 0;
        case OP_NE: return c != 0;
        case OP_LT: return c < 0;
        case OP_LE: return c <= 0;
        case OP_GT: return c > 0;
        default: return c >= 0;
    }
}

//  Compares two json values: 1 true, 0 false, -1 unknown (other kinds, nulls)
static int
s_jv_test (int op, const jv_t *x, const jv_t *y)
{
    int c;
    if (x->k == J_INT && y->k == J_INT)
        c = x->i < y->i ? -1 : x->i > y->i;
    else
    if (x->k == J_INT && y->k == J_FLT)
        c = s_cmp_id (x->i, y->d);
    else
    if (x->k == J_FLT && y->k == J_INT) {
        c = s_cmp_id (y->i, x->d);
        c = c == 2 ? 2 : -c;
    }
    else
    if (x->k == J_FLT && y->k == J_FLT)
        c = s_cmp_dd (x->d, y->d);
    else
    if (x->k == J_STR && y->k == J_STR)
        c = qv_bytes_cmp (x->s, x->n, y->s, y->n);
    else
    if (x->k == J_BOOL && y->k == J_BOOL) {
        if (op != OP_EQ && op != OP_NE)
            return -1;
        c = x->b != y->b;
    }
    else
        return -1;
    return s_op_holds (op, c);
}

//  Writes the condition res (per row) into r->t / r->f where ok
static void
s_set_cond (slab_t *r, const uint8_t *res, const uint8_t *ok, uint32_t m)
{
    for (uint32_t k = 0; k < m; k++) {
        r->t [k] = res [k] & ok [k];
        r->f [k] = (res [k] ^ 1) & ok [k];
    }
}

#define CMP_OPS(X, Y) switch (op) {                                             \
        case OP_EQ: for (uint32_t k = 0; k < m; k++) res [k] = (X) == (Y); break; \
        case OP_NE: for (uint32_t k = 0; k < m; k++) res [k] = (X) != (Y); break; \
        case OP_LT: for (uint32_t k = 0; k < m; k++) res [k] = (X) < (Y); break;  \
        case OP_LE: for (uint32_t k = 0; k < m; k++) res [k] = (X) <= (Y); break; \
        case OP_GT: for (uint32_t k = 0; k < m; k++) res [k] = (X) > (Y); break;  \
        default: for (uint32_t k = 0; k < m; k++) res [k] = (X) >= (Y); break;    \
    }

#define CMP_COL(T, K) do {                                                     \
        const T *v = (const T *) col->data;                                     \
        if (c->rows) { const uint32_t *rw = c->rows; CMP_OPS (v [rw [k]], K) }  \
        else { v += c->base; CMP_OPS (v [k], K) }                               \
    } while (0)

//  A column compared with a literal of its kind, straight from the column
static slab_t *
s_cmp_fast (const node_t *n, ctx_t *c)
{
    slab_t *r = s_slab (c);
    if (!r)
        return NULL;
    const node_t *a = n->a;
    const qv_field_t *f = &c->schema->fields [a->field];
    const qv_col_t *col = &c->cols->cols [a->field];
    uint32_t m = c->m;
    int op = n->op;
    uint8_t *res = r->ok;           //  scratch for the raw results
    int64_t ki = n->k_i;
    double kd = n->k_d;
    switch (f->type) {
        case QV_INT8: CMP_COL (int8_t, ki); break;
        case QV_INT16: CMP_COL (int16_t, ki); break;
        case QV_INT32: CMP_COL (int32_t, ki); break;
        case QV_INT64: CMP_COL (int64_t, ki); break;
        case QV_FLOAT: CMP_COL (float, kd); break;
        case QV_DOUBLE: CMP_COL (double, kd); break;
        case QV_VARCHAR: {
            const uint8_t *ks = n->b->lit.s;
            uint32_t kn = n->b->lit.n;
            for (uint32_t k = 0; k < m; k++) {
                const qv_bytes_t *v = qv_col_var (col, ROW (c, k));
                uint32_t vn = v->ptr ? v->len : 0;
                if (op == OP_EQ || op == OP_NE)
                    res [k] = (vn == kn && (kn == 0 || memcmp (v->ptr, ks, kn) == 0)) == (op == OP_EQ);
                else
                    res [k] = s_op_holds (op, qv_bytes_cmp (v->ptr, vn, ks, kn));
            }
            break;
        }
        default: break;
    }
    if (col->valid)
        for (uint32_t k = 0; k < m; k++) {
            uint8_t ok = col->valid [ROW (c, k)] != 0;
            r->t [k] = res [k] & ok;
            r->f [k] = (res [k] ^ 1) & ok;
        }
    else
        for (uint32_t k = 0; k < m; k++) {
            r->t [k] = res [k];
            r->f [k] = res [k] ^ 1;
        }
    return r;
}

static slab_t *
s_cmp (const node_t *n, ctx_t *c)
{
    if (n->fast)
        return s_cmp_fast (n, c);
    slab_t *x = s_eval (n->a, c);
    slab_t *y = x ? s_eval (n->b, c) : NULL;
    if (!y) {
        s_release (c, x);
        return NULL;
    }
    uint32_t m = c->m;
    int op = n->op;
    ty_t ta = n->a->type, tb = n->b->type;
    uint8_t res [B];
    if (ta == T_JSON || tb == T_JSON) {
        if (ta != T_JSON) s_to_jv (x, ta, m);
        if (tb != T_JSON) s_to_jv (y, tb, m);
        for (uint32_t k = 0; k < m; k++) {
            int v = s_jv_test (op, &x->jv [k], &y->jv [k]);
            x->t [k] = v == 1;
            x->f [k] = v == 0;
        }
    }
    else
    if (ta == T_BOOL) {
        for (uint32_t k = 0; k < m; k++) {
            uint8_t known = (x->t [k] | x->f [k]) & (y->t [k] | y->f [k]);
            uint8_t eq = (x->t [k] == y->t [k]) == (op == OP_EQ);
            x->t [k] = known & eq;
            x->f [k] = known & (eq ^ 1);
        }
    }
    else {
        for (uint32_t k = 0; k < m; k++)
            x->ok [k] &= y->ok [k];
        if (ta == T_INT && tb == T_INT) {
            const int64_t *xi = x->u.i, *yi = y->u.i;
            CMP_OPS (xi [k], yi [k])
        }
        else
        if (ta == T_FLOAT && tb == T_FLOAT) {
            const double *xd = x->u.d, *yd = y->u.d;
            CMP_OPS (xd [k], yd [k])
        }
        else
        if (ta == T_INT && tb == T_FLOAT)
            for (uint32_t k = 0; k < m; k++)
                res [k] = s_op_holds (op, s_cmp_id (x->u.i [k], y->u.d [k]));
        else
        if (ta == T_FLOAT && tb == T_INT)
            for (uint32_t k = 0; k < m; k++) {
                int cc = s_cmp_id (y->u.i [k], x->u.d [k]);
                res [k] = s_op_holds (op, cc == 2 ? 2 : -cc);
            }
        else
            for (uint32_t k = 0; k < m; k++)
                res [k] = s_op_holds (op, qv_bytes_cmp (x->u.s [k], x->sn [k], y->u.s [k], y->sn [k]));
        s_set_cond (x, res, x->ok, m);
    }
    s_release (c, y);
    return x;
}

//  int64 arithmetic; false when the result is undefined (overflow, division by 0)
static inline bool
s_arith_ii (int op, int64_t a, int64_t b, int64_t *out)
{
    switch (op) {
        case OP_ADD: return !__builtin_add_overflow (a, b, out);
        case OP_SUB: return !__builtin_sub_overflow (a, b, out);
        case OP_MUL: return !__builtin_mul_overflow (a, b, out);
        case OP_DIV:
            if (b == 0 || (a == INT64_MIN && b == -1))
                return false;
            *out = a / b;
            return true;
        default:
            if (b == 0)
                return false;
            *out = b == -1 ? 0 : a % b;
            return true;
    }
}

static inline bool
s_arith_dd (int op, double a, double b, double *out)
{
    switch (op) {
        case OP_ADD: *out = a + b; return true;
        case OP_SUB: *out = a - b; return true;
        case OP_MUL: *out = a * b; return true;
        case OP_DIV:
            if (b == 0)
                return false;
            *out = a / b;
            return true;
        default:
            if (b == 0)
                return false;
            *out = fmod (a, b);
            return true;
    }
}

static slab_t *
s_arith_eval (const node_t *n, ctx_t *c)
{
    slab_t *x = s_eval (n->a, c);
    slab_t *y = x ? s_eval (n->b, c) : NULL;
    if (!y) {
        s_release (c, x);
        return NULL;
    }
    uint32_t m = c->m;
    int op = n->op;
    ty_t ta = n->a->type, tb = n->b->type;
    if (n->type == T_JSON) {
        if (ta != T_JSON) s_to_jv (x, ta, m);
        if (tb != T_JSON) s_to_jv (y, tb, m);
        for (uint32_t k = 0; k < m; k++) {
            jv_t *p = &x->jv [k], *q = &y->jv [k];
            bool pn = p->k == J_INT || p->k == J_FLT, qn = q->k == J_INT || q->k == J_FLT;
            if (!pn || !qn)
                p->k = J_NULL;
            else
            if (p->k == J_INT && q->k == J_INT)
                p->k = s_arith_ii (op, p->i, q->i, &p->i) ? J_INT : J_NULL;
            else {
                double a = p->k == J_INT ? (double) p->i : p->d;
                double b = q->k == J_INT ? (double) q->i : q->d;
                p->k = s_arith_dd (op, a, b, &p->d) ? J_FLT : J_NULL;
            }
        }
    }
    else
    if (n->type == T_INT) {
        for (uint32_t k = 0; k < m; k++) {
            int64_t v = 0;
            bool ok = s_arith_ii (op, x->u.i [k], y->u.i [k], &v);
            x->u.i [k] = v;
            x->ok [k] &= y->ok [k] & ok;
        }
    }
    else {
        if (ta == T_INT) s_to_float (x, m);
        if (tb == T_INT) s_to_float (y, m);
        if (op == OP_ADD || op == OP_SUB || op == OP_MUL) {
            double *xd = x->u.d;
            const double *yd = y->u.d;
            if (op == OP_ADD) for (uint32_t k = 0; k < m; k++) xd [k] += yd [k];
            if (op == OP_SUB) for (uint32_t k = 0; k < m; k++) xd [k] -= yd [k];
            if (op == OP_MUL) for (uint32_t k = 0; k < m; k++) xd [k] *= yd [k];
            for (uint32_t k = 0; k < m; k++)
                x->ok [k] &= y->ok [k];
        }
        else
            for (uint32_t k = 0; k < m; k++) {
                double v = 0;
                bool ok = s_arith_dd (op, x->u.d [k], y->u.d [k], &v);
                x->u.d [k] = v;
                x->ok [k] &= y->ok [k] & ok;
            }
    }
    s_release (c, y);
    return x;
}

static slab_t *
s_neg (const node_t *n, ctx_t *c)
{
    slab_t *x = s_eval (n->a, c);
    if (!x)
        return NULL;
    for (uint32_t k = 0; k < c->m; k++) {
        if (n->type == T_INT) {
            if (x->u.i [k] == INT64_MIN)
                x->ok [k] = 0;
            else
                x->u.i [k] = -x->u.i [k];
        }
        else
        if (n->type == T_FLOAT)
            x->u.d [k] = -x->u.d [k];
        else {
            jv_t *v = &x->jv [k];
            if (v->k == J_FLT)
                v->d = -v->d;
            else
            if (v->k == J_INT && v->i != INT64_MIN)
                v->i = -v->i;
            else
                v->k = J_NULL;
        }
    }
    return x;
}

static bool
s_in_int (const node_t *n, int64_t v)
{
    size_t lo = 0, hi = n->nints;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (n->ints [mid] < v) lo = mid + 1;
        else hi = mid;
    }
    return lo < n->nints && n->ints [lo] == v;
}

static bool
s_in_dbl (const node_t *n, double v)
{
    size_t lo = 0, hi = n->ndbls;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (n->dbls [mid] < v) lo = mid + 1;
        else hi = mid;
    }
    return lo < n->ndbls && n->dbls [lo] == v;
}

static bool
s_in_str (const node_t *n, const uint8_t *s, uint32_t len)
{
    size_t lo = 0, hi = n->nstrs;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (qv_bytes_cmp (n->strs [mid].s, n->strs [mid].n, s, len) < 0) lo = mid + 1;
        else hi = mid;
    }
    return lo < n->nstrs && qv_bytes_cmp (n->strs [lo].s, n->strs [lo].n, s, len) == 0;
}

static slab_t *
s_in (const node_t *n, ctx_t *c)
{
    slab_t *x = s_eval (n->a, c);
    if (!x)
        return NULL;
    uint32_t m = c->m;
    uint8_t res [B];
    switch (n->a->type) {
        case T_INT:
            for (uint32_t k = 0; k < m; k++)
                res [k] = s_in_int (n, x->u.i [k]);
            break;
        case T_FLOAT:
            for (uint32_t k = 0; k < m; k++)
                res [k] = s_in_dbl (n, x->u.d [k]);
            break;
        case T_STR:
            for (uint32_t k = 0; k < m; k++)
                res [k] = s_in_str (n, x->u.s [k], x->sn [k]);
            break;
        case T_BOOL:
            for (uint32_t k = 0; k < m; k++) {
                x->ok [k] = x->t [k] | x->f [k];
                res [k] = x->t [k] ? n->has_true : n->has_false;
            }
            break;
        case T_JSON:
            for (uint32_t k = 0; k < m; k++) {
                const jv_t *v = &x->jv [k];
                x->ok [k] = v->k != J_NULL && v->k != J_OTHER;
                res [k] = v->k == J_INT ? s_in_int (n, v->i)
                        : v->k == J_FLT ? s_in_dbl (n, v->d)
                        : v->k == J_STR ? s_in_str (n, v->s, v->n)
                        : v->k == J_BOOL ? (v->b ? n->has_true : n->has_false) : 0;
                //  Not found, and the list holds values of another kind: as the
                //  or of == over the list, the answer is unknown
                size_t same = v->k == J_STR ? n->nstrs : v->k == J_BOOL ? n->nbools : n->nnums;
                if (!res [k] && same < n->nlist)
                    x->ok [k] = 0;
            }
            break;
    }
    if (n->negate)
        for (uint32_t k = 0; k < m; k++)
            res [k] ^= 1;
    s_set_cond (x, res, x->ok, m);
    return x;
}

static uint32_t
s_utf8_len (const uint8_t *s, uint32_t left)
{
    uint32_t l = s [0] < 0xC0 ? 1 : s [0] < 0xE0 ? 2 : s [0] < 0xF0 ? 3 : s [0] < 0xF8 ? 4 : 1;
    return l < left ? l : left;
}

//  Whole-string match of a compiled pattern: % any run, _ one character
static bool
s_like_general (const pel_t *pat, uint32_t np, const uint8_t *s, uint32_t n)
{
    uint32_t p = 0, i = 0, star_p = UINT32_MAX, star_i = 0;
    while (i < n) {
        if (p < np && pat [p].k == 0 && pat [p].c == s [i]) {
            p++;
            i++;
        }
        else
        if (p < np && pat [p].k == 2) {
            i += s_utf8_len (s + i, n - i);
            p++;
        }
        else
        if (p < np && pat [p].k == 1) {
            star_p = p++;
            star_i = i;
        }
        else
        if (star_p != UINT32_MAX) {
            p = star_p + 1;
            star_i += s_utf8_len (s + star_i, n - star_i);
            i = star_i;
        }
        else
            return false;
    }
    while (p < np && pat [p].k == 1)
        p++;
    return p == np;
}

static bool
s_like_match (const node_t *n, const uint8_t *s, uint32_t len)
{
    const uint8_t *l = n->lit_bytes;
    uint32_t ln = n->lit_len;
    switch (n->like) {
        case L_EXACT: return len == ln && (ln == 0 || memcmp (s, l, ln) == 0);
        case L_PREFIX: return len >= ln && (ln == 0 || memcmp (s, l, ln) == 0);
        case L_SUFFIX: return len >= ln && (ln == 0 || memcmp (s + len - ln, l, ln) == 0);
        case L_INFIX: return ln == 0 || (len >= ln && memmem (s, len, l, ln) != NULL);
        default: return s_like_general (n->pat, n->npat, s, len);
    }
}

static slab_t *
s_like (const node_t *n, ctx_t *c)
{
    slab_t *x = s_eval (n->a, c);
    if (!x)
        return NULL;
    uint32_t m = c->m;
    uint8_t res [B];
    if (n->a->type == T_JSON)
        for (uint32_t k = 0; k < m; k++) {
            const jv_t *v = &x->jv [k];
            x->ok [k] = v->k == J_STR;
            res [k] = v->k == J_STR && s_like_match (n, v->s, v->n);
        }
    else
        for (uint32_t k = 0; k < m; k++)
            res [k] = x->ok [k] && s_like_match (n, x->u.s [k], x->sn [k]);
    s_set_cond (x, res, x->ok, m);
    return x;
}

static slab_t *
s_isnull (const node_t *n, ctx_t *c)
{
    slab_t *x = s_eval (n->a, c);
    if (!x)
        return NULL;
    ty_t t = n->a->type;
    for (uint32_t k = 0; k < c->m; k++) {
        uint8_t null = t == T_JSON ? x->jv [k].k == J_NULL
                     : t == T_BOOL ? !(x->t [k] | x->f [k]) : !x->ok [k];
        x->t [k] = null ^ n->negate;
        x->f [k] = x->t [k] ^ 1;
    }
    return x;
}

static slab_t *
s_truth (const node_t *n, ctx_t *c)
{
    slab_t *x = s_eval (n->a, c);
    if (!x)
        return NULL;
    for (uint32_t k = 0; k < c->m; k++) {
        const jv_t *v = &x->jv [k];
        x->t [k] = v->k == J_BOOL && v->b;
        x->f [k] = v->k == J_BOOL && !v->b;
    }
    return x;
}

//  Evaluates kid on the rows acc has not decided yet and combines the results into
//  acc. false if out of memory.
static bool
s_andor_narrow (const node_t *kid, ctx_t *c, slab_t *acc, bool is_and)
{
    slab_t *scratch = s_slab (c);
    if (!scratch)
        return false;
    uint32_t *rows = (uint32_t *) scratch->u.i;     //  2 x B uint32 fit there
    uint32_t *top = rows + B;
    uint32_t *idx = scratch->sn;
    const uint8_t *decided = is_and ? acc->f : acc->t;
    uint32_t u = 0;
    for (uint32_t k = 0; k < c->m; k++) {
        idx [u] = k;
        rows [u] = ROW (c, k);
        top [u] = TOP (c, k);
        u += decided [k] ^ 1;
    }
    ctx_t sub = *c;
    sub.m = u;
    sub.rows = rows;
    sub.top = top;
    slab_t *y = s_eval (kid, &sub);
    if (y) {
        if (is_and)
            for (uint32_t j = 0; j < u; j++) {
                uint32_t k = idx [j];
                acc->t [k] &= y->t [j];
                acc->f [k] |= y->f [j];
            }
        else
            for (uint32_t j = 0; j < u; j++) {
                uint32_t k = idx [j];
                acc->t [k] |= y->t [j];
                acc->f [k] &= y->f [j];
            }
    }
    s_release (c, y);
    s_release (c, scratch);
    return y != NULL;
}

//  and / or over the kids; stops once every row is decided
static slab_t *
s_andor (const node_t *n, ctx_t *c)
{
    bool is_and = n->kind == N_AND;
    slab_t *acc = s_eval (n->kids [0], c);
    if (!acc)
        return NULL;
    uint32_t m = c->m;
    for (int i = 1; i < n->nkids; i++) {
        //  and: a row false so far stays false; or: true stays true
        const uint8_t *decided = is_and ? acc->f : acc->t;
        uint8_t all = 1;
        for (uint32_t k = 0; k < m; k++)
            all &= decided [k];
        if (all)
            break;
        //  Few rows left undecided: evaluate the next operand on those only
        uint32_t left = 0;
        for (uint32_t k = 0; k < m; k++)
            left += decided [k] ^ 1;
        if (left * 4 <= m * 3) {
            if (!s_andor_narrow (n->kids [i], c, acc, is_and)) {
                s_release (c, acc);
                return NULL;
            }
            continue;
        }
        slab_t *y = s_eval (n->kids [i], c);
        if (!y) {
            s_release (c, acc);
            return NULL;
        }
        if (is_and)
            for (uint32_t k = 0; k < m; k++) {
                acc->t [k] &= y->t [k];
                acc->f [k] |= y->f [k];
            }
        else
            for (uint32_t k = 0; k < m; k++) {
                acc->t [k] |= y->t [k];
                acc->f [k] &= y->f [k];
            }
        s_release (c, y);
    }
    return acc;
}

static slab_t *
s_eval (const node_t *n, ctx_t *c)
{
    switch (n->kind) {
        case N_LIT: return s_literal (n, c);
        case N_FIELD: return s_load (n, c);
        case N_NEG: return s_neg (n, c);
        case N_ARITH: return s_arith_eval (n, c);
        case N_CMP: return s_cmp (n, c);
        case N_IN: return s_in (n, c);
        case N_LIKE: return s_like (n, c);
        case N_ISNULL: return s_isnull (n, c);
        case N_AND: case N_OR: return s_andor (n, c);
        case N_TRUTH: return s_truth (n, c);
        case N_NOT: {
            slab_t *x = s_eval (n->a, c);
            if (x)
                for (uint32_t k = 0; k < c->m; k++) {
                    uint8_t t = x->t [k];
                    x->t [k] = x->f [k];
                    x->f [k] = t;
                }
            return x;
        }
    }
    return NULL;
}

//  Evaluates one block and adds its matches to out
static int
s_block (const qv_expr_t *self, ctx_t *c, roaring_bitmap_t *out, uint32_t *buf)
{
    slab_t *r = s_eval (self->root, c);
    if (!r) {
        s_docs_reset (c->sh);
        return qv_err (QV_ENOMEM, "out of memory evaluating a filter");
    }
    uint32_t hits = 0;
    for (uint32_t k = 0; k < c->m; k++) {
        buf [hits] = ROW (c, k);
        hits += r->t [k];
    }
    if (hits)
        roaring_bitmap_add_many (out, hits, buf);
    s_release (c, r);
    s_docs_reset (c->sh);
    return 0;
}

int
qv_expr_eval_rows (const qv_expr_t *self, const qv_batch_t *cols, uint32_t from,
                   uint32_t to, const roaring_bitmap_t *in, roaring_bitmap_t *out)
{
    if (from >= to)
        return 0;
    int rc = s_check_cols (self, cols, to);
    if (rc)
        return rc;
    shared_t sh = { 0 };
    ctx_t c = { .schema = self->schema, .cols = cols, .sh = &sh };
    uint32_t *buf = malloc (2 * B * sizeof (uint32_t));
    if (!buf)
        return qv_err (QV_ENOMEM, "out of memory evaluating a filter");
    uint32_t *rows = buf + B;
    if (!in)
        for (uint32_t base = from; base < to && rc == 0; base += (to - base < B ? to - base : B)) {
            c.base = base;
            c.m = to - base < B ? to - base : B;
            rc = s_block (self, &c, out, buf);
        }
    else {
        roaring_uint32_iterator_t it;
        roaring_init_iterator (in, &it);
        roaring_move_uint32_iterator_equalorlarger (&it, from);
        while (rc == 0 && it.has_value && it.current_value < to) {
            uint32_t got = roaring_read_uint32_iterator (&it, rows, B);
            while (got && rows [got - 1] >= to)
                got--;
            if (!got)
                break;
            c.m = got;
            //  A run of consecutive rows reads the columns directly
            c.rows = rows [got - 1] - rows [0] == got - 1 ? NULL : rows;
            c.base = rows [0];
            rc = s_block (self, &c, out, buf);
        }
    }
    s_shared_free (&sh);
    free (buf);
    return rc;
}

int
qv_expr_eval (const qv_expr_t *self, const qv_batch_t *cols, uint32_t nrows,
              roaring_bitmap_t *out)
{
    return qv_expr_eval_rows (self, cols, 0, nrows, NULL, out);
}

int
qv_expr_match_row (const qv_expr_t *self, const qv_batch_t *cols, uint32_t row)
{
    int rc = s_check_cols (self, cols, (uint64_t) row + 1);
    if (rc)
        return rc;
    shared_t sh = { 0 };
    ctx_t c = { .schema = self->schema, .cols = cols, .m = 1, .base = row, .sh = &sh };
    slab_t *r = s_eval (self->root, &c);
    int match = r ? r->t [0] : qv_err (QV_ENOMEM, "out of memory evaluating a filter");
    s_release (&c, r);
    s_shared_free (&sh);
    return match;
}
