//  Filter expressions: conjuncts answered by scalar indexes (binary searches in sorted
//  columns), single-row matching, and the equal-value sets of partition-key pruning.
#include "qv_expr_tree.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

//  ---------------------------------------------------------------------------------
//  Scalar indexes: conjuncts answered by binary searches in sorted columns

//  Sorted, disjoint spans of one index's positions
typedef struct {
    qv_scalar_span_t *v;
    size_t n, cap;
} spans_t;

//  Appends [lo, hi), which starts at or after the last span's start
static bool
s_spans_add (spans_t *s, uint32_t lo, uint32_t hi)
{
    if (lo >= hi)
        return true;
    if (s->n && lo <= s->v [s->n - 1].hi) {
        if (hi > s->v [s->n - 1].hi)
            s->v [s->n - 1].hi = hi;
        return true;
    }
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 4;
        qv_scalar_span_t *grown = realloc (s->v, cap * sizeof *grown);
        if (!grown)
            return false;
        s->v = grown;
        s->cap = cap;
    }
    s->v [s->n].lo = lo;
    s->v [s->n].hi = hi;
    s->n++;
    return true;
}

static uint64_t
s_spans_count (const spans_t *s)
{
    uint64_t n = 0;
    for (size_t k = 0; k < s->n; k++)
        n += s->v [k].hi - s->v [k].lo;
    return n;
}

//  The positions of [0, total) not in s
static bool
s_spans_invert (const spans_t *s, uint32_t total, spans_t *out)
{
    uint32_t at = 0;
    for (size_t k = 0; k < s->n; k++) {
        if (!s_spans_add (out, at, s->v [k].lo))
            return false;
        at = s->v [k].hi;
    }
    return s_spans_add (out, at, total);
}

static bool
s_spans_and (const spans_t *a, const spans_t *b, spans_t *out)
{
    size_t i = 0, j = 0;
    while (i < a->n && j < b->n) {
        uint32_t lo = a->v [i].lo > b->v [j].lo ? a->v [i].lo : b->v [j].lo;
        uint32_t hi = a->v [i].hi < b->v [j].hi ? a->v [i].hi : b->v [j].hi;
        if (!s_spans_add (out, lo, hi))
            return false;
        if (a->v [i].hi < b->v [j].hi) i++;
        else j++;
    }
    return true;
}

//  The positions of the rows where condition n is true, from its field's index:
//  1 (spans in out, field in *fi), 0 when no index answers n, or QV_ENOMEM.
//  Nulls are never in an index, so they match nothing, as qv_expr.h says; NaN rows
//  sit after the ordered ones and match only != and not in, as in s_cmp_fast / s_in.
static int
s_leaf_spans (const node_t *n, const qv_batch_t *cols, qv_scalar_t *const *scalars,
              int *fi, spans_t *out)
{
    const node_t *a = n->kind == N_FIELD ? n : n->a;
    if (!a || a->kind != N_FIELD || a->nsteps || a->type == T_JSON || !scalars [a->field])
        return 0;
    const qv_scalar_t *idx = scalars [a->field];
    const qv_col_t *col = &cols->cols [a->field];
    uint32_t ordered = qv_scalar_ordered (idx), nonnull = qv_scalar_nonnull (idx);
    qv_scalar_key_t key = { 0 };
    bool ok = true;
    *fi = a->field;
    if (n->kind == N_IN) {
        spans_t eq = { 0 };
        size_t nv = a->type == T_INT ? n->nints : a->type == T_FLOAT ? n->ndbls
                  : a->type == T_STR ? n->nstrs : 2;
        for (size_t k = 0; k < nv && ok; k++) {
            if (a->type == T_BOOL && !(k ? n->has_true : n->has_false))
                continue;
            key.i = a->type == T_INT ? n->ints [k] : (int64_t) k;
            key.d = a->type == T_FLOAT ? n->dbls [k] : 0;
            key.s = a->type == T_STR ? n->strs [k].s : NULL;
            key.n = a->type == T_STR ? n->strs [k].n : 0;
            qv_scalar_span_t s = qv_scalar_equal (idx, col, &key);
            ok = s_spans_add (&eq, s.lo, s.hi);
        }
        if (n->negate)
            ok = ok && s_spans_invert (&eq, nonnull, out);
        else {
            *out = eq;              //  out is empty on entry
            eq = (spans_t) { 0 };
        }
        free (eq.v);
        return ok ? 1 : qv_err (QV_ENOMEM, "out of memory evaluating a filter");
    }
    int op = OP_EQ;
    if (n->kind == N_FIELD && n->type == T_BOOL)
        key.i = 1;                  //  a bare bool field: field == true
    else
    if (n->kind == N_CMP && a->type == T_BOOL && n->b->kind == N_LIT && n->b->lit.k == J_BOOL)
        key.i = n->b->lit.b == (n->op == OP_EQ);    //  bool != b is bool == !b
    else
    if (n->kind == N_CMP && n->fast && !(a->type == T_FLOAT && isnan (n->k_d))) {
        op = n->op;
        key.i = n->k_i;
        key.d = n->k_d;
        key.s = n->b->lit.s;
        key.n = n->b->lit.n;
    }
    else
        return 0;
    qv_scalar_span_t eq = qv_scalar_equal (idx, col, &key);
    switch (op) {
        case OP_EQ: ok = s_spans_add (out, eq.lo, eq.hi); break;
        case OP_NE: ok = s_spans_add (out, 0, eq.lo) && s_spans_add (out, eq.hi, nonnull); break;
        case OP_LT: ok = s_spans_add (out, 0, eq.lo); break;
        case OP_LE: ok = s_spans_add (out, 0, eq.hi); break;
        case OP_GT: ok = s_spans_add (out, eq.hi, ordered); break;
        default: ok = s_spans_add (out, eq.lo, ordered); break;
    }
    return ok ? 1 : qv_err (QV_ENOMEM, "out of memory evaluating a filter");
}

typedef struct {
    qv_scalar_t *const *scalars;
    const qv_batch_t *cols;
    spans_t spans [QV_FIELDS_MAX];  //  per field: rows its conjuncts allow
    bool has [QV_FIELDS_MAX];
    int nconj;                      //  conjuncts seen
    int nfield [QV_FIELDS_MAX];     //  of which answered by each field's index
} plan_t;

//  Looks up each conjunct of n (through nested and-s) in its index
static int
s_plan (const node_t *n, plan_t *pl)
{
    if (n->kind == N_AND) {
        for (int k = 0; k < n->nkids; k++) {
            int rc = s_plan (n->kids [k], pl);
            if (rc)
                return rc;
        }
        return 0;
    }
    pl->nconj++;
    spans_t leaf = { 0 };
    int fi = -1;
    int rc = s_leaf_spans (n, pl->cols, pl->scalars, &fi, &leaf);
    if (rc <= 0) {
        free (leaf.v);
        return rc;
    }
    pl->nfield [fi]++;
    if (pl->has [fi]) {
        spans_t both = { 0 };
        bool ok = s_spans_and (&pl->spans [fi], &leaf, &both);
        free (leaf.v);
        free (pl->spans [fi].v);
        pl->spans [fi] = both;
        if (!ok)
            return qv_err (QV_ENOMEM, "out of memory evaluating a filter");
    }
    else {
        pl->spans [fi] = leaf;
        pl->has [fi] = true;
    }
    return 0;
}

int
qv_expr_eval_indexed (const qv_expr_t *self, const qv_batch_t *cols, uint32_t from,
                      uint32_t to, qv_scalar_t *const *scalars, double share,
                      roaring_bitmap_t *out)
{
    if (from >= to)
        return 0;
    int rc = s_check_cols (self, cols, to);
    if (rc)
        return rc;
    plan_t *pl = calloc (1, sizeof *pl);
    if (!pl)
        return qv_err (QV_ENOMEM, "out of memory evaluating a filter");
    pl->scalars = scalars;
    pl->cols = cols;
    rc = s_plan (self->root, pl);
    int best = -1;
    uint64_t best_count = 0;
    for (int fi = 0; fi < QV_FIELDS_MAX && rc == 0; fi++) {
        if (!pl->has [fi] || to > qv_scalar_rows (scalars [fi]))
            continue;
        uint64_t count = s_spans_count (&pl->spans [fi]);
        if (best < 0 || count < best_count) {
            best = fi;
            best_count = count;
        }
    }
    if (rc == 0 && best >= 0 && (double) best_count <= share * qv_scalar_rows (scalars [best])) {
        const spans_t *s = &pl->spans [best];
        if (pl->nfield [best] == pl->nconj)     //  the index answers the whole filter
            rc = qv_scalar_mark (scalars [best], s->v, s->n, from, to, out);
        else {
            roaring_bitmap_t *cand = roaring_bitmap_create ();
            rc = cand ? qv_scalar_mark (scalars [best], s->v, s->n, from, to, cand)
                      : qv_err (QV_ENOMEM, "out of memory evaluating a filter");
            if (rc == 0)
                rc = qv_expr_eval_rows (self, cols, from, to, cand, out);
            if (cand)
                roaring_bitmap_free (cand);
        }
        rc = rc ? rc : 1;
    }
    else
    if (rc == 0)
        rc = qv_expr_eval_rows (self, cols, from, to, NULL, out);
    for (int fi = 0; fi < QV_FIELDS_MAX; fi++)
        free (pl->spans [fi].v);
    free (pl);
    return rc;
}

bool
qv_expr_fields (const qv_expr_t *self, uint64_t *mask)
{
    *mask = self->mask;
    return self->mask != 0;
}

//  ---------------------------------------------------------------------------------
//  Equal-value sets (partition-key pruning)

typedef struct {
    qv_expr_value_t *v;
    size_t n;
} vset_t;

//  Converts literal lit to field type t; false if no value of the field can equal it
static bool
s_value_of (const jv_t *lit, qv_type_t t, qv_expr_value_t *out)
{
    memset (out, 0, sizeof *out);
    switch (t) {
        case QV_BOOL:
            out->type = QV_BOOL;
            out->b = lit->b;
            return lit->k == J_BOOL;
        case QV_FLOAT: case QV_DOUBLE:
            out->type = QV_DOUBLE;
            if (lit->k == J_FLT) out->d = lit->d;
            else if (lit->k != J_INT || !s_i2d_exact (lit->i, &out->d)) return false;
            return true;
        case QV_VARCHAR:
            out->type = QV_VARCHAR;
            out->s = (const char *) lit->s;
            out->len = lit->n;
            return lit->k == J_STR;
        default:
            out->type = QV_INT64;
            if (lit->k == J_INT) out->i = lit->i;
            else if (lit->k != J_FLT || !s_d2i_exact (lit->d, &out->i)) return false;
            return true;
    }
}

static bool
s_value_eq (const qv_expr_value_t *a, const qv_expr_value_t *b)
{
    switch (a->type) {
        case QV_BOOL: return a->b == b->b;
        case QV_DOUBLE: return a->d == b->d;
        case QV_VARCHAR: return qv_bytes_cmp ((const uint8_t *) a->s, (uint32_t) a->len,
                                             (const uint8_t *) b->s, (uint32_t) b->len) == 0;
        default: return a->i == b->i;
    }
}

//  1 constrained (set in *out, malloc'd), 0 not, QV_ENOMEM
static int
s_equal_values (const qv_expr_t *self, const node_t *n, int field, vset_t *out)
{
    qv_type_t ft = self->schema->fields [field].type;
    out->v = NULL;
    out->n = 0;
    const node_t *a = n->a;
    bool on_field = a && a->kind == N_FIELD && a->field == field && a->nsteps == 0;
    if (n->kind == N_CMP && n->op == OP_EQ && on_field && n->b->kind == N_LIT) {
        out->v = malloc (sizeof (qv_expr_value_t));
        if (!out->v)
            return qv_err (QV_ENOMEM, "out of memory");
        out->n = s_value_of (&n->b->lit, ft, out->v);
        return 1;
    }
    if (n->kind == N_IN && !n->negate && on_field) {
        out->v = malloc ((n->nlist ? n->nlist : 1) * sizeof (qv_expr_value_t));
        if (!out->v)
            return qv_err (QV_ENOMEM, "out of memory");
        for (size_t k = 0; k < n->nlist; k++) {
            qv_expr_value_t v;
            if (!s_value_of (&n->list [k], ft, &v))
                continue;
            bool dup = false;
            for (size_t j = 0; j < out->n && !dup; j++)
                dup = s_value_eq (&out->v [j], &v);
            if (!dup)
                out->v [out->n++] = v;
        }
        return 1;
    }
    if (n->kind == N_AND) {
        //  Any constrained conjunct bounds the set; keep the smallest
        int found = 0;
        for (int i = 0; i < n->nkids; i++) {
            vset_t s;
            int rc = s_equal_values (self, n->kids [i], field, &s);
            if (rc < 0) {
                free (out->v);
                return rc;
            }
            if (rc == 1 && (!found || s.n < out->n)) {
                free (out->v);
                *out = s;
                found = 1;
            }
            else
                free (s.v);
        }
        return found;
    }
    if (n->kind == N_OR) {
        for (int i = 0; i < n->nkids; i++) {
            vset_t s;
            int rc = s_equal_values (self, n->kids [i], field, &s);
            if (rc != 1) {
                free (out->v);
                out->v = NULL;
                out->n = 0;
                return rc;
            }
            qv_expr_value_t *grown = realloc (out->v, (out->n + s.n + 1) * sizeof (qv_expr_value_t));
            if (!grown) {
                free (s.v);
                free (out->v);
                return qv_err (QV_ENOMEM, "out of memory");
            }
            out->v = grown;
            for (size_t k = 0; k < s.n; k++) {
                bool dup = false;
                for (size_t j = 0; j < out->n && !dup; j++)
                    dup = s_value_eq (&out->v [j], &s.v [k]);
                if (!dup)
                    out->v [out->n++] = s.v [k];
            }
            free (s.v);
        }
        return 1;
    }
    return 0;
}

int
qv_expr_equal_values (const qv_expr_t *self, int field, qv_expr_value_t **values_p,
                      size_t *n_p)
{
    *values_p = NULL;
    *n_p = 0;
    if (field < 0 || field >= self->schema->nfields
    ||  self->schema->fields [field].type == QV_JSON
    ||  self->schema->fields [field].type == QV_FLOAT_VECTOR)
        return 0;
    vset_t s;
    int rc = s_equal_values (self, self->root, field, &s);
    if (rc == 1) {
        *values_p = s.v ? s.v : malloc (sizeof (qv_expr_value_t));
        if (!*values_p)
            return qv_err (QV_ENOMEM, "out of memory");
        *n_p = s.n;
    }
    return rc;
}
