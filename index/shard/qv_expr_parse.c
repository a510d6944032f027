//  Filter expressions: parsing (a recursive-descent parser over qv_expr_lex.c's
//  tokens, into the typed tree of qv_expr_tree.h). Evaluation is in qv_expr_eval.c,
//  index planning and partition-key pruning in qv_expr_plan.c.
//
//  DESIGN
//
//  Parsing. The text is first cut into tokens (string literals are decoded into one
//  buffer the expression keeps), then parsed by one function per precedence level
//  (qv_expr.h has the grammar). Every node gets its type when it is built, so type
//  errors are reported at the token that causes them; and/or chains become one n-ary
//  node, so the tree depth (bounded by QV_EXPR_DEPTH_MAX) only grows with real
//  nesting, and so does the parser's recursion.
#include "qv_expr_lex.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

//  ---------------------------------------------------------------------------------
//  Parser

static const tok_t *
s_peek (parser_t *p)
{
    return &p->toks [p->at];
}

static const tok_t *
s_peek2 (parser_t *p)
{
    return &p->toks [p->at + 1 < p->ntoks ? p->at + 1 : p->at];
}

static const tok_t *
s_next (parser_t *p)
{
    const tok_t *t = &p->toks [p->at];
    if (t->type != TK_END)
        p->at++;
    return t;
}

static node_t *
s_node (parser_t *p, kind_t kind, ty_t type, uint32_t off, uint32_t end)
{
    node_t *n = calloc (1, sizeof *n);
    if (!n)
        return qv_expr_oom (p);
    n->next_alloc = p->expr->nodes;
    p->expr->nodes = n;
    n->kind = kind;
    n->type = type;
    n->off = off;
    n->end = end;
    n->depth = 1;
    return n;
}

//  Sets n's depth from its operands; fails past the limit
static node_t *
s_depth (parser_t *p, node_t *n)
{
    int d = 0;
    if (n->a && n->a->depth > d) d = n->a->depth;
    if (n->b && n->b->depth > d) d = n->b->depth;
    for (int k = 0; k < n->nkids; k++)
        if (n->kids [k]->depth > d)
            d = n->kids [k]->depth;
    n->depth = d + 1;
    //  Column reads cost by how far they reach: a number, a string, a json document
    uint64_t cost = n->kind == N_LIKE ? (n->like == L_GENERAL ? 8 : 4)
                  : n->kind == N_IN ? 2 : 1;
    if (n->a) cost += n->a->cost;
    if (n->b) cost += n->b->cost;
    for (int k = 0; k < n->nkids; k++)
        cost += n->kids [k]->cost;
    n->cost = cost > (1u << 30) ? 1u << 30 : (uint32_t) cost;
    if (n->depth > QV_EXPR_DEPTH_MAX)
        return qv_expr_fail (p, n->off, "expression nested deeper than %d", QV_EXPR_DEPTH_MAX);
    return n;
}

static const char *
s_ty_name (ty_t t)
{
    static const char *names [] = { "bool", "int", "float", "string", "json" };
    return names [t];
}

//  Describes a node for a message: "int64 field 'x'", "string "abc"", "int expression 'x + 1'"
static void
s_describe (parser_t *p, const node_t *n, char *buf, size_t size)
{
    char snip [64];
    qv_expr_snippet (p, n->off, n->end, snip, sizeof snip);
    if (n->kind == N_FIELD && n->nsteps == 0) {
        const qv_field_t *f = &p->schema->fields [n->field];
        snprintf (buf, size, "%s field '%s'", qv_type_name (f->type), f->name);
    }
    else
    if (n->kind == N_FIELD)
        snprintf (buf, size, "json path '%s'", snip);
    else
    if (n->kind == N_LIT)
        snprintf (buf, size, "%s %s", n->type == T_STR ? "string" : n->type == T_BOOL ? "bool"
                                    : "number", snip);
    else
        snprintf (buf, size, "%s expression '%s'", s_ty_name (n->type), snip);
}

static bool
s_numeric (ty_t t)
{
    return t == T_INT || t == T_FLOAT;
}

static node_t *s_parse_or (parser_t *p);

//  A condition operand of and / or / not: bool, or a json value tested for true
static node_t *
s_condition (parser_t *p, node_t *n)
{
    if (!n)
        return NULL;
    if (n->type == T_BOOL)
        return n;
    if (n->type == T_JSON) {
        node_t *t = s_node (p, N_TRUTH, T_BOOL, n->off, n->end);
        if (!t)
            return NULL;
        t->a = n;
        return s_depth (p, t);
    }
    char desc [160];
    s_describe (p, n, desc, sizeof desc);
    return qv_expr_fail (p, n->off, "expected a condition, got %s", desc);
}

static node_t *
s_parse_field (parser_t *p)
{
    const tok_t *t = s_next (p);
    char name [QV_NAME_MAX + 1];
    size_t nlen = t->end - t->off;
    int fi = -1;
    if (nlen <= QV_NAME_MAX) {
        memcpy (name, p->text + t->off, nlen);
        name [nlen] = 0;
        fi = qv_schema_find (p->schema, name);
    }
    //  A name that is not a field of a dynamic-field collection is a key of `$meta`:
    //  `color` reads as `$meta["color"]` (the name is kept past the decoded literals).
    int meta = qv_schema_meta (p->schema);
    bool dynamic = fi < 0 && meta >= 0 && t->type == TK_IDENT && p->text [t->off] != '$';
    if (dynamic)
        fi = meta;
    if (fi < 0) {
        char snip [64];
        qv_expr_snippet (p, t->off, t->end, snip, sizeof snip);
        return qv_expr_fail (p, t->off, "unknown field '%s'", snip);
    }
    const qv_field_t *f = &p->schema->fields [fi];
    if (f->type == QV_FLOAT_VECTOR)
        return qv_expr_fail (p, t->off, "vector field '%s' cannot be used in a filter", f->name);
    ty_t type = f->type == QV_BOOL ? T_BOOL
              : f->type == QV_FLOAT || f->type == QV_DOUBLE ? T_FLOAT
              : f->type == QV_VARCHAR ? T_STR
              : f->type == QV_JSON ? T_JSON : T_INT;
    node_t *n = s_node (p, N_FIELD, type, t->off, t->end);
    if (!n)
        return NULL;
    n->field = fi;
    n->cost = type == T_JSON ? 64 : type == T_STR ? 4 : 1;
    p->expr->mask |= (uint64_t) 1 << fi;
    if (dynamic) {
        n->steps = calloc (QV_EXPR_PATH_MAX, sizeof (step_t));
        if (!n->steps)
            return qv_expr_oom (p);
        uint8_t *key = p->expr->strbuf + p->len + t->off;
        memcpy (key, p->text + t->off, nlen);
        n->steps [0].s = key;
        n->steps [0].n = (uint32_t) nlen;
        n->nsteps = 1;
    }
    while (s_peek (p)->type == TK_LBRACK) {
        const tok_t *lb = s_next (p);
        if (type != T_JSON)
            return qv_expr_fail (p, lb->off, "field '%s' is %s, not json: '[' cannot follow it",
                           f->name, qv_type_name (f->type));
        if (n->nsteps == QV_EXPR_PATH_MAX)
            return qv_expr_fail (p, lb->off, "json path longer than %d steps", QV_EXPR_PATH_MAX);
        if (!n->steps) {
            n->steps = calloc (QV_EXPR_PATH_MAX, sizeof (step_t));
            if (!n->steps)
                return qv_expr_oom (p);
        }
        const tok_t *k = s_next (p);
        step_t *st = &n->steps [n->nsteps];
        if (k->type == TK_STR) {
            st->s = p->expr->strbuf + k->soff;
            st->n = k->slen;
        }
        else
        if (k->type == TK_INT && !k->ovf && k->mag <= INT64_MAX) {
            st->index = true;
            st->i = k->mag;
        }
        else {
            char desc [80];
            qv_expr_tok_desc (p, k, desc, sizeof desc);
            return qv_expr_fail (p, k->off, "expected a string key or an array index after '[', got %s", desc);
        }
        const tok_t *rb = s_next (p);
        if (rb->type != TK_RBRACK) {
            char desc [80];
            qv_expr_tok_desc (p, rb, desc, sizeof desc);
            return qv_expr_fail (p, rb->off, "expected ']', got %s", desc);
        }
        n->nsteps++;
        n->end = rb->end;
    }
    return n;
}

static node_t *
s_int_literal (parser_t *p, const tok_t *t, bool neg, uint32_t off)
{
    if (t->ovf || t->mag > (uint64_t) INT64_MAX + neg) {
        char snip [64];
        qv_expr_snippet (p, off, t->end, snip, sizeof snip);
        return qv_expr_fail (p, off, "integer '%s' out of the int64 range", snip);
    }
    node_t *n = s_node (p, N_LIT, T_INT, off, t->end);
    if (!n)
        return NULL;
    n->lit.k = J_INT;
    n->lit.i = neg ? (int64_t) (0 - t->mag) : (int64_t) t->mag;
    return n;
}

static node_t *
s_parse_primary (parser_t *p)
{
    const tok_t *t = s_peek (p);
    node_t *n;
    switch (t->type) {
        case TK_INT:
            s_next (p);
            return s_int_literal (p, t, false, t->off);
        case TK_FLOAT:
            s_next (p);
            if ((n = s_node (p, N_LIT, T_FLOAT, t->off, t->end))) {
                n->lit.k = J_FLT;
                n->lit.d = t->d;
            }
            return n;
        case TK_STR:
            s_next (p);
            if ((n = s_node (p, N_LIT, T_STR, t->off, t->end))) {
                n->lit.k = J_STR;
                n->lit.s = p->expr->strbuf + t->soff;
                n->lit.n = t->slen;
            }
            return n;
        case TK_TRUE: case TK_FALSE:
            s_next (p);
            if ((n = s_node (p, N_LIT, T_BOOL, t->off, t->end))) {
                n->lit.k = J_BOOL;
                n->lit.b = t->type == TK_TRUE;
            }
            return n;
        case TK_IDENT:
            return s_parse_field (p);
        case TK_LPAREN: {
            s_next (p);
            if (++p->nest > QV_EXPR_DEPTH_MAX)
                return qv_expr_fail (p, t->off, "expression nested deeper than %d", QV_EXPR_DEPTH_MAX);
            n = s_parse_or (p);
            p->nest--;
            if (!n)
                return NULL;
            const tok_t *r = s_next (p);
            if (r->type != TK_RPAREN) {
                char desc [80];
                qv_expr_tok_desc (p, r, desc, sizeof desc);
                return qv_expr_fail (p, r->off, "expected ')', got %s", desc);
            }
            n->off = t->off;        //  messages quote the parentheses too
            n->end = r->end;
            return n;
        }
        default: {
            char desc [80];
            qv_expr_tok_desc (p, t, desc, sizeof desc);
            return qv_expr_fail (p, t->off, "expected a field, literal or '(', got %s", desc);
        }
    }
}

static node_t *
s_parse_unary (parser_t *p)
{
    const tok_t *t = s_peek (p);
    if (t->type != TK_MINUS)
        return s_parse_primary (p);
    s_next (p);
    const tok_t *num = s_peek (p);
    if (num->type == TK_INT) {
        s_next (p);
        return s_int_literal (p, num, true, t->off);
    }
    if (num->type == TK_FLOAT) {
        s_next (p);
        node_t *n = s_node (p, N_LIT, T_FLOAT, t->off, num->end);
        if (n) {
            n->lit.k = J_FLT;
            n->lit.d = -num->d;
        }
        return n;
    }
    if (++p->nest > QV_EXPR_DEPTH_MAX)
        return qv_expr_fail (p, t->off, "expression nested deeper than %d", QV_EXPR_DEPTH_MAX);
    node_t *a = s_parse_unary (p);
    p->nest--;
    if (!a)
        return NULL;
    if (!s_numeric (a->type) && a->type != T_JSON) {
        char desc [160];
        s_describe (p, a, desc, sizeof desc);
        return qv_expr_fail (p, t->off, "'-' needs a number, got %s", desc);
    }
    node_t *n = s_node (p, N_NEG, a->type, t->off, a->end);
    if (!n)
        return NULL;
    n->a = a;
    return s_depth (p, n);
}

//  Builds a op b for + - * / %
static node_t *
s_arith (parser_t *p, const tok_t *optok, node_t *a, node_t *b)
{
    node_t *bad = !s_numeric (a->type) && a->type != T_JSON ? a
                : !s_numeric (b->type) && b->type != T_JSON ? b : NULL;
    if (bad) {
        char desc [160], snip [16];
        s_describe (p, bad, desc, sizeof desc);
        qv_expr_snippet (p, optok->off, optok->end, snip, sizeof snip);
        return qv_expr_fail (p, bad->off, "'%s' needs numbers, got %s", snip, desc);
    }
    ty_t type = a->type == T_JSON || b->type == T_JSON ? T_JSON
              : a->type == T_FLOAT || b->type == T_FLOAT ? T_FLOAT : T_INT;
    node_t *n = s_node (p, N_ARITH, type, a->off, b->end);
    if (!n)
        return NULL;
    n->op = optok->type == TK_PLUS ? OP_ADD : optok->type == TK_MINUS ? OP_SUB
          : optok->type == TK_STAR ? OP_MUL : optok->type == TK_SLASH ? OP_DIV : OP_MOD;
    n->a = a;
    n->b = b;
    return s_depth (p, n);
}

static node_t *
s_parse_prod (parser_t *p)
{
    node_t *a = s_parse_unary (p);
    while (a) {
        tk_type_t tt = s_peek (p)->type;
        if (tt != TK_STAR && tt != TK_SLASH && tt != TK_PCT)
            break;
        const tok_t *op = s_next (p);
        node_t *b = s_parse_unary (p);
        if (!b)
            return NULL;
        a = s_arith (p, op, a, b);
    }
    return a;
}

static node_t *
s_parse_sum (parser_t *p)
{
    node_t *a = s_parse_prod (p);
    while (a) {
        tk_type_t tt = s_peek (p)->type;
        if (tt != TK_PLUS && tt != TK_MINUS)
            break;
        const tok_t *op = s_next (p);
        node_t *b = s_parse_prod (p);
        if (!b)
            return NULL;
        a = s_arith (p, op, a, b);
    }
    return a;
}

static node_t *
s_compare (parser_t *p, const tok_t *optok, node_t *a, node_t *b)
{
    cmp_op_t op = optok->type == TK_EQ ? OP_EQ : optok->type == TK_NE ? OP_NE
                : optok->type == TK_LT ? OP_LT : optok->type == TK_LE ? OP_LE
                : optok->type == TK_GT ? OP_GT : OP_GE;
    bool ok = (s_numeric (a->type) && s_numeric (b->type))
           || (a->type == T_STR && b->type == T_STR)
           || (a->type == T_BOOL && b->type == T_BOOL)
           || a->type == T_JSON || b->type == T_JSON;
    char da [160], db [160];
    if (!ok) {
        s_describe (p, a, da, sizeof da);
        s_describe (p, b, db, sizeof db);
        return qv_expr_fail (p, b->off, "cannot compare %s with %s", da, db);
    }
    if ((a->type == T_BOOL || b->type == T_BOOL) && op != OP_EQ && op != OP_NE) {
        char snip [16];
        qv_expr_snippet (p, optok->off, optok->end, snip, sizeof snip);
        return qv_expr_fail (p, optok->off, "bools can only be compared with == or !=, not '%s'", snip);
    }
    //  A literal goes on the right
    if (a->kind == N_LIT && b->kind != N_LIT) {
        node_t *t = a;
        a = b;
        b = t;
        op = op == OP_LT ? OP_GT : op == OP_GT ? OP_LT : op == OP_LE ? OP_GE
           : op == OP_GE ? OP_LE : op;
    }
    node_t *n = s_node (p, N_CMP, T_BOOL, a->off < b->off ? a->off : b->off,
                        a->end > b->end ? a->end : b->end);
    if (!n)
        return NULL;
    n->op = op;
    n->a = a;
    n->b = b;
    if (a->kind == N_FIELD && a->nsteps == 0 && b->kind == N_LIT) {
        if (a->type == T_INT && b->lit.k == J_INT) {
            n->fast = true;
            n->k_i = b->lit.i;
        }
        if (a->type == T_FLOAT && b->lit.k == J_FLT) {
            n->fast = true;
            n->k_d = b->lit.d;
        }
        if (a->type == T_FLOAT && b->lit.k == J_INT && s_i2d_exact (b->lit.i, &n->k_d))
            n->fast = true;
        if (a->type == T_STR && b->lit.k == J_STR)
            n->fast = true;
    }
    return s_depth (p, n);
}

static int
s_i64_cmp (const void *x, const void *y)
{
    int64_t a = *(const int64_t *) x, b = *(const int64_t *) y;
    return a < b ? -1 : a > b;
}

static int
s_dbl_cmp (const void *x, const void *y)
{
    double a = *(const double *) x, b = *(const double *) y;
    return a < b ? -1 : a > b;
}

static int
s_str_cmp (const void *x, const void *y)
{
    const jv_t *a = x, *b = y;
    return qv_bytes_cmp (a->s, a->n, b->s, b->n);
}

//  Sorts an in-list into its per-kind sets
static node_t *
s_in_sets (parser_t *p, node_t *n)
{
    size_t m = n->nlist ? n->nlist : 1;
    n->ints = malloc (m * sizeof (int64_t));
    n->dbls = malloc (m * sizeof (double));
    n->strs = malloc (m * sizeof (jv_t));
    if (!n->ints || !n->dbls || !n->strs)
        return qv_expr_oom (p);
    for (size_t k = 0; k < n->nlist; k++) {
        const jv_t *v = &n->list [k];
        int64_t i;
        double d;
        n->nnums += v->k == J_INT || v->k == J_FLT;
        n->nbools += v->k == J_BOOL;
        if (v->k == J_INT) {
            n->ints [n->nints++] = v->i;
            if (s_i2d_exact (v->i, &d))
                n->dbls [n->ndbls++] = d;
        }
        if (v->k == J_FLT) {
            n->dbls [n->ndbls++] = v->d;
            if (s_d2i_exact (v->d, &i))
                n->ints [n->nints++] = i;
        }
        if (v->k == J_STR)
            n->strs [n->nstrs++] = *v;
        if (v->k == J_BOOL) {
            if (v->b) n->has_true = true;
            else n->has_false = true;
        }
    }
    qsort (n->ints, n->nints, sizeof (int64_t), s_i64_cmp);
    qsort (n->dbls, n->ndbls, sizeof (double), s_dbl_cmp);
    qsort (n->strs, n->nstrs, sizeof (jv_t), s_str_cmp);
    return n;
}

static node_t *
s_parse_in (parser_t *p, node_t *a, bool negate, uint32_t kw_off)
{
    const tok_t *lb = s_next (p);
    if (lb->type != TK_LBRACK) {
        char desc [80];
        qv_expr_tok_desc (p, lb, desc, sizeof desc);
        return qv_expr_fail (p, lb->off, "expected '[' after 'in', got %s", desc);
    }
    node_t *n = s_node (p, N_IN, T_BOOL, a->off, lb->end);
    if (!n)
        return NULL;
    n->a = a;
    n->negate = negate;
    (void) kw_off;
    size_t cap = 0;
    if (s_peek (p)->type == TK_RBRACK)
        n->end = s_next (p)->end;
    else
    while (true) {
        const tok_t *t = s_next (p);
        uint32_t off = t->off;
        bool neg = false;
        if (t->type == TK_MINUS && (s_peek (p)->type == TK_INT || s_peek (p)->type == TK_FLOAT)) {
            neg = true;
            t = s_next (p);
        }
        jv_t v = { 0 };
        if (t->type == TK_INT) {
            if (t->ovf || t->mag > (uint64_t) INT64_MAX + neg) {
                char snip [64];
                qv_expr_snippet (p, off, t->end, snip, sizeof snip);
                return qv_expr_fail (p, off, "integer '%s' out of the int64 range", snip);
            }
            v.k = J_INT;
            v.i = neg ? (int64_t) (0 - t->mag) : (int64_t) t->mag;
        }
        else
        if (t->type == TK_FLOAT) {
            v.k = J_FLT;
            v.d = neg ? -t->d : t->d;
        }
        else
        if (t->type == TK_STR) {
            v.k = J_STR;
            v.s = p->expr->strbuf + t->soff;
            v.n = t->slen;
        }
        else
        if (t->type == TK_TRUE || t->type == TK_FALSE) {
            v.k = J_BOOL;
            v.b = t->type == TK_TRUE;
        }
        else {
            char desc [80];
            qv_expr_tok_desc (p, t, desc, sizeof desc);
            return qv_expr_fail (p, t->off, "expected a literal in the 'in' list, got %s", desc);
        }
        bool fits = a->type == T_JSON
                 || (s_numeric (a->type) && (v.k == J_INT || v.k == J_FLT))
                 || (a->type == T_STR && v.k == J_STR)
                 || (a->type == T_BOOL && v.k == J_BOOL);
        if (!fits) {
            char da [160], snip [64];
            s_describe (p, a, da, sizeof da);
            qv_expr_snippet (p, off, t->end, snip, sizeof snip);
            return qv_expr_fail (p, off, "cannot compare %s with %s %s", da,
                           v.k == J_STR ? "string" : v.k == J_BOOL ? "bool" : "number", snip);
        }
        if (n->nlist == cap) {
            cap = cap ? cap * 2 : 8;
            jv_t *grown = realloc (n->list, cap * sizeof (jv_t));
            if (!grown)
                return qv_expr_oom (p);
            n->list = grown;
        }
        n->list [n->nlist++] = v;
        const tok_t *sep = s_next (p);
        if (sep->type == TK_RBRACK) {
            n->end = sep->end;
            break;
        }
        if (sep->type != TK_COMMA) {
            char desc [80];
            qv_expr_tok_desc (p, sep, desc, sizeof desc);
            return qv_expr_fail (p, sep->off, "expected ',' or ']' in the 'in' list, got %s", desc);
        }
    }
    if (!s_in_sets (p, n))
        return NULL;
    return s_depth (p, n);
}

//  Compiles a like pattern: picks a fast kind when it can
static node_t *
s_like_compile (parser_t *p, node_t *n, const uint8_t *s, uint32_t len)
{
    n->pat = malloc ((len ? len : 1) * sizeof (pel_t));
    n->lit_bytes = malloc (len ? len : 1);
    if (!n->pat || !n->lit_bytes)
        return qv_expr_oom (p);
    for (uint32_t i = 0; i < len; i++) {
        pel_t e = { 0, s [i] };
        if (s [i] == '\\' && i + 1 < len)
            e.c = s [++i];
        else
        if (s [i] == '%')
            e.k = 1;
        else
        if (s [i] == '_')
            e.k = 2;
        //  Runs of % are one %
        if (e.k == 1 && n->npat && n->pat [n->npat - 1].k == 1)
            continue;
        n->pat [n->npat++] = e;
    }
    //  Fast kinds: no _, % only at the ends
    uint32_t wild_inner = 0, ones = 0;
    for (uint32_t i = 0; i < n->npat; i++) {
        if (n->pat [i].k == 2)
            ones++;
        if (n->pat [i].k == 1 && i > 0 && i + 1 < n->npat)
            wild_inner++;
    }
    bool lead = n->npat && n->pat [0].k == 1;
    bool trail = n->npat > 1 && n->pat [n->npat - 1].k == 1;
    if (ones || wild_inner || (n->npat == 1 && lead)) {
        n->like = L_GENERAL;
        if (n->npat == 1 && lead && !ones)
            n->like = L_INFIX;          //  "%": any string (infix of nothing)
        return n;
    }
    for (uint32_t i = lead; i < n->npat - trail; i++)
        n->lit_bytes [n->lit_len++] = n->pat [i].c;
    n->like = lead && trail ? L_INFIX : lead ? L_SUFFIX : trail ? L_PREFIX : L_EXACT;
    return n;
}

static node_t *
s_parse_cmp (parser_t *p)
{
    node_t *a = s_parse_sum (p);
    if (!a)
        return NULL;
    const tok_t *t = s_peek (p);
    switch (t->type) {
        case TK_EQ: case TK_NE: case TK_LT: case TK_LE: case TK_GT: case TK_GE: {
            s_next (p);
            node_t *b = s_parse_sum (p);
            if (!b)
                return NULL;
            return s_compare (p, t, a, b);
        }
        case TK_IN:
            s_next (p);
            return s_parse_in (p, a, false, t->off);
        case TK_NOT:
            if (s_peek2 (p)->type != TK_IN)
                return a;
            s_next (p);
            s_next (p);
            return s_parse_in (p, a, true, t->off);
        case TK_LIKE: {
            s_next (p);
            const tok_t *pt = s_next (p);
            if (pt->type != TK_STR) {
                char desc [80];
                qv_expr_tok_desc (p, pt, desc, sizeof desc);
                return qv_expr_fail (p, pt->off, "expected a string pattern after 'like', got %s", desc);
            }
            if (a->type != T_STR && a->type != T_JSON) {
                char da [160];
                s_describe (p, a, da, sizeof da);
                return qv_expr_fail (p, a->off, "'like' needs a string, got %s", da);
            }
            node_t *n = s_node (p, N_LIKE, T_BOOL, a->off, pt->end);
            if (!n)
                return NULL;
            n->a = a;
            if (!s_like_compile (p, n, p->expr->strbuf + pt->soff, pt->slen))
                return NULL;
            return s_depth (p, n);
        }
        case TK_IS: {
            s_next (p);
            bool negate = false;
            if (s_peek (p)->type == TK_NOT) {
                s_next (p);
                negate = true;
            }
            const tok_t *nt = s_next (p);
            if (nt->type != TK_NULL) {
                char desc [80];
                qv_expr_tok_desc (p, nt, desc, sizeof desc);
                return qv_expr_fail (p, nt->off, "expected 'null' after 'is', got %s", desc);
            }
            node_t *n = s_node (p, N_ISNULL, T_BOOL, a->off, nt->end);
            if (!n)
                return NULL;
            n->a = a;
            n->negate = negate;
            return s_depth (p, n);
        }
        default:
            return a;
    }
}

static node_t *
s_parse_not (parser_t *p)
{
    const tok_t *t = s_peek (p);
    if (t->type != TK_NOT)
        return s_parse_cmp (p);
    s_next (p);
    if (++p->nest > QV_EXPR_DEPTH_MAX)
        return qv_expr_fail (p, t->off, "expression nested deeper than %d", QV_EXPR_DEPTH_MAX);
    node_t *a = s_condition (p, s_parse_not (p));
    p->nest--;
    if (!a)
        return NULL;
    node_t *n = s_node (p, N_NOT, T_BOOL, t->off, a->end);
    if (!n)
        return NULL;
    n->a = a;
    return s_depth (p, n);
}

static int
s_kid_cmp (const void *x, const void *y)
{
    const node_t *a = *(node_t *const *) x, *b = *(node_t *const *) y;
    if (a->cost != b->cost)
        return a->cost < b->cost ? -1 : 1;
    return a->off < b->off ? -1 : a->off > b->off;     //  stable: text order
}

//  Cheapest operands first: later ones run only on the rows still undecided.
//  Kleene's and / or are commutative, so the order never changes a result.
static void
s_order_kids (node_t *n)
{
    qsort (n->kids, (size_t) n->nkids, sizeof (node_t *), s_kid_cmp);
}

//  One and / or chain as an n-ary node
static node_t *
s_parse_chain (parser_t *p, tk_type_t tk, kind_t kind, node_t *(*sub) (parser_t *))
{
    node_t *first = sub (p);
    if (!first || s_peek (p)->type != tk)
        return first;
    first = s_condition (p, first);
    if (!first)
        return NULL;
    node_t *n = s_node (p, kind, T_BOOL, first->off, first->end);
    if (!n)
        return NULL;
    size_t cap = 4;
    n->kids = malloc (cap * sizeof (node_t *));
    if (!n->kids)
        return qv_expr_oom (p);
    n->kids [n->nkids++] = first;
    while (s_peek (p)->type == tk) {
        s_next (p);
        node_t *k = s_condition (p, sub (p));
        if (!k)
            return NULL;
        if ((size_t) n->nkids == cap) {
            cap *= 2;
            node_t **grown = realloc (n->kids, cap * sizeof (node_t *));
            if (!grown)
                return qv_expr_oom (p);
            n->kids = grown;
        }
        n->kids [n->nkids++] = k;
        n->end = k->end;
    }
    s_order_kids (n);
    return s_depth (p, n);
}

static node_t *
s_parse_and (parser_t *p)
{
    return s_parse_chain (p, TK_AND, N_AND, s_parse_not);
}

static node_t *
s_parse_or (parser_t *p)
{
    return s_parse_chain (p, TK_OR, N_OR, s_parse_and);
}

static void
s_node_free (node_t *n)
{
    free (n->kids);
    free (n->steps);
    free (n->list);
    free (n->ints);
    free (n->dbls);
    free (n->strs);
    free (n->lit_bytes);
    free (n->pat);
    free (n);
}

void
qv_expr_destroy (qv_expr_t **self_p)
{
    qv_expr_t *self = *self_p;
    if (!self)
        return;
    while (self->nodes) {
        node_t *next = self->nodes->next_alloc;
        s_node_free (self->nodes);
        self->nodes = next;
    }
    free (self->strbuf);
    free (self);
    *self_p = NULL;
}

qv_expr_t *
qv_expr_parse (const qv_schema_t *schema, const char *text, size_t len, int *rc_p)
{
    parser_t p = { .schema = schema, .text = text, .len = len };
    if (len > QV_EXPR_TEXT_MAX) {
        *rc_p = qv_err (QV_EINVAL, "filter of %zu bytes is longer than %d", len, QV_EXPR_TEXT_MAX);
        return NULL;
    }
    p.expr = calloc (1, sizeof (qv_expr_t));
    if (p.expr)
        p.expr->strbuf = malloc (len ? 2 * len : 1);    //  decoded strings are never longer
                                                         //  than len; dynamic keys follow
    if (!p.expr || !p.expr->strbuf) {
        qv_expr_destroy (&p.expr);
        *rc_p = qv_err (QV_ENOMEM, "out of memory parsing a filter");
        return NULL;
    }
    p.expr->schema = schema;
    if (qv_expr_lex (&p) == 0) {
        if (s_peek (&p)->type == TK_END)
            qv_expr_fail (&p, 0, "empty filter");
        else {
            node_t *root = s_parse_or (&p);
            if (root && s_peek (&p)->type != TK_END) {
                char desc [80];
                qv_expr_tok_desc (&p, s_peek (&p), desc, sizeof desc);
                qv_expr_fail (&p, s_peek (&p)->off, "unexpected %s", desc);
            }
            else
            if (root && root->type != T_BOOL && root->type != T_JSON) {
                char d [160];
                s_describe (&p, root, d, sizeof d);
                qv_expr_fail (&p, root->off, "a filter must be a condition, got %s", d);
            }
            else
            if (root)
                p.expr->root = s_condition (&p, root);
        }
    }
    free (p.toks);
    if (p.rc || !p.expr->root) {
        *rc_p = p.rc ? p.rc : qv_err (QV_ERR, "filter parse failed");
        qv_expr_destroy (&p.expr);
        return NULL;
    }
    *rc_p = 0;
    return p.expr;
}

