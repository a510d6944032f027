//  Filter expressions: a recursive-descent parser into a typed tree, and a column-wise
//  evaluator over blocks of rows.
//
//  DESIGN
//
//  Parsing. The text is first cut into tokens (string literals are decoded into one
//  buffer the expression keeps), then parsed by one function per precedence level
//  (qv_expr.h has the grammar). Every node gets its type when it is built, so type
//  errors are reported at the token that causes them; and/or chains become one n-ary
//  node, so the tree depth (bounded by QV_EXPR_DEPTH_MAX) only grows with real
//  nesting, and so does the parser's recursion.
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
#include "qv_expr.h"
#include "qv_codec.h"
#include "qv_rc.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define QV_EXPR_BLOCK 1024              //  rows per evaluation block
#define QV_EXPR_PATH_MAX 32             //  steps in a json path (msgpack nests <= 32)

//  ---------------------------------------------------------------------------------
//  Tokens

typedef enum {
    TK_END, TK_INT, TK_FLOAT, TK_STR, TK_IDENT,
    TK_AND, TK_OR, TK_NOT, TK_IN, TK_LIKE, TK_IS, TK_NULL, TK_TRUE, TK_FALSE,
    TK_EQ, TK_NE, TK_LT, TK_LE, TK_GT, TK_GE,
    TK_PLUS, TK_MINUS, TK_STAR, TK_SLASH, TK_PCT,
    TK_LPAREN, TK_RPAREN, TK_LBRACK, TK_RBRACK, TK_COMMA
} tk_type_t;

typedef struct {
    tk_type_t type;
    uint32_t off, end;              //  byte range in the text
    uint64_t mag;                   //  TK_INT: magnitude
    bool ovf;                       //  TK_INT: magnitude above 2^63
    double d;                       //  TK_FLOAT
    uint32_t soff, slen;            //  TK_STR: decoded bytes in strbuf
} tok_t;

static const struct {
    const char *word;
    tk_type_t type;
} s_keywords [] = {
    { "and", TK_AND }, { "or", TK_OR }, { "not", TK_NOT }, { "in", TK_IN },
    { "like", TK_LIKE }, { "is", TK_IS }, { "null", TK_NULL }, { "true", TK_TRUE },
    { "false", TK_FALSE }
};

//  ---------------------------------------------------------------------------------
//  Tree

typedef enum { T_BOOL, T_INT, T_FLOAT, T_STR, T_JSON } ty_t;

typedef enum {
    N_LIT, N_FIELD, N_NEG, N_ARITH, N_CMP, N_IN, N_LIKE, N_ISNULL, N_AND, N_OR, N_NOT,
    N_TRUTH                         //  a json value used as a condition
} kind_t;

typedef enum { OP_EQ, OP_NE, OP_LT, OP_LE, OP_GT, OP_GE } cmp_op_t;
typedef enum { OP_ADD, OP_SUB, OP_MUL, OP_DIV, OP_MOD } arith_op_t;

//  Kinds of a json value (and of literals)
typedef enum { J_NULL, J_INT, J_FLT, J_STR, J_BOOL, J_OTHER } jk_t;

typedef struct {
    uint8_t k;                      //  jk_t
    bool b;
    uint32_t n;                     //  J_STR length
    union {
        int64_t i;
        double d;
        const uint8_t *s;
    };
} jv_t;

typedef struct {
    const uint8_t *s;
    uint32_t n;
    bool index;                     //  array index step (i) rather than map key (s, n)
    uint64_t i;
} step_t;

typedef enum { L_EXACT, L_PREFIX, L_SUFFIX, L_INFIX, L_GENERAL } like_kind_t;

//  One compiled `like` pattern element: a literal byte, % or _
typedef struct {
    uint8_t k;                      //  0 byte, 1 any run, 2 one character
    uint8_t c;
} pel_t;

typedef struct _node_t node_t;
struct _node_t {
    node_t *next_alloc;             //  every node of the expression, for destroy
    kind_t kind;
    ty_t type;
    int op;                         //  cmp_op_t / arith_op_t
    bool negate;                    //  not in, is not null
    uint32_t off, end;              //  byte range of the text it was parsed from
    int depth;                      //  height of the subtree
    uint32_t cost;                  //  rough evaluation cost per row (orders and / or)
    node_t *a, *b;                  //  operands
    node_t **kids;                  //  and / or
    int nkids;
    jv_t lit;                       //  N_LIT
    int field;                      //  N_FIELD
    step_t *steps;                  //  N_FIELD on json: the path
    int nsteps;
    //  N_CMP fast path: a is a plain column, b a literal of its kind
    bool fast;
    int64_t k_i;
    double k_d;
    //  N_IN: the list as written, and sorted sets per kind
    jv_t *list;
    size_t nlist;
    int64_t *ints;
    size_t nints;
    double *dbls;
    size_t ndbls;
    jv_t *strs;
    size_t nstrs;
    bool has_true, has_false;
    size_t nnums, nbools;           //  numbers and bools in the list
    //  N_LIKE
    like_kind_t like;
    uint8_t *lit_bytes;             //  pattern's literal part (fast kinds)
    uint32_t lit_len;
    pel_t *pat;                     //  compiled pattern (L_GENERAL)
    uint32_t npat;
};

struct _qv_expr_t {
    const qv_schema_t *schema;
    node_t *root;
    node_t *nodes;                  //  allocation list
    uint8_t *strbuf;                //  decoded string literals
    uint64_t mask;                  //  fields read
};

typedef struct {
    const qv_schema_t *schema;
    const char *text;
    size_t len;
    tok_t *toks;
    size_t ntoks;
    size_t at;                      //  next token
    int nest;                       //  parser recursion through ( not -
    qv_expr_t *expr;
    int rc;                         //  first error
} parser_t;

//  ---------------------------------------------------------------------------------
//  Errors

//  1-based character (UTF-8 code point) position of byte offset off
static unsigned
s_pos (parser_t *p, uint32_t off)
{
    unsigned pos = 1;
    for (uint32_t i = 0; i < off && i < p->len; i++)
        if (((uint8_t) p->text [i] & 0xC0) != 0x80)
            pos++;
    return pos;
}

//  Text of bytes [off, end) for a message: at most 40 bytes, control bytes escaped
static void
s_snippet (parser_t *p, uint32_t off, uint32_t end, char *buf, size_t size)
{
    size_t o = 0;
    for (uint32_t i = off; i < end && i < p->len && o + 8 < size; i++) {
        uint8_t c = (uint8_t) p->text [i];
        if (i - off >= 40) {
            o += snprintf (buf + o, size - o, "...");
            break;
        }
        if (c < 0x20 || c == 0x7F)
            o += snprintf (buf + o, size - o, "\\x%02x", c);
        else
            buf [o++] = (char) c;
    }
    buf [o] = 0;
}

//  Records a parse error at byte offset off (first error wins); returns NULL
static void *
s_fail (parser_t *p, uint32_t off, const char *fmt, ...) __attribute__ ((format (printf, 3, 4)));
static void *
s_fail (parser_t *p, uint32_t off, const char *fmt, ...)
{
    if (p->rc)
        return NULL;
    char msg [512];
    va_list args;
    va_start (args, fmt);
    vsnprintf (msg, sizeof msg, fmt, args);
    va_end (args);
    p->rc = qv_err (QV_EINVAL, "%s at position %u", msg, s_pos (p, off));
    return NULL;
}

static void *
s_oom (parser_t *p)
{
    if (!p->rc)
        p->rc = qv_err (QV_ENOMEM, "out of memory parsing a filter");
    return NULL;
}

//  "'tok'" or "end of input", for "expected X, got ..."
static void
s_tok_desc (parser_t *p, const tok_t *t, char *buf, size_t size)
{
    if (t->type == TK_END) {
        snprintf (buf, size, "end of input");
        return;
    }
    char snip [64];
    s_snippet (p, t->off, t->end, snip, sizeof snip);
    snprintf (buf, size, "'%s'", snip);
}

//  ---------------------------------------------------------------------------------
//  Lexer

static bool
s_is_ident_start (int c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static bool
s_is_ident (int c)
{
    return s_is_ident_start (c) || (c >= '0' && c <= '9');
}

static int
s_hex (int c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static size_t
s_utf8_put (uint8_t *o, uint32_t cp)
{
    if (cp < 0x80) { o [0] = (uint8_t) cp; return 1; }
    if (cp < 0x800) {
        o [0] = (uint8_t) (0xC0 | cp >> 6);
        o [1] = (uint8_t) (0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        o [0] = (uint8_t) (0xE0 | cp >> 12);
        o [1] = (uint8_t) (0x80 | ((cp >> 6) & 0x3F));
        o [2] = (uint8_t) (0x80 | (cp & 0x3F));
        return 3;
    }
    o [0] = (uint8_t) (0xF0 | cp >> 18);
    o [1] = (uint8_t) (0x80 | ((cp >> 12) & 0x3F));
    o [2] = (uint8_t) (0x80 | ((cp >> 6) & 0x3F));
    o [3] = (uint8_t) (0x80 | (cp & 0x3F));
    return 4;
}

//  Reads 4 hex digits at text [i]; -1 if not there
static int32_t
s_hex4 (parser_t *p, size_t i)
{
    if (i + 4 > p->len)
        return -1;
    int32_t v = 0;
    for (int k = 0; k < 4; k++) {
        int h = s_hex ((uint8_t) p->text [i + k]);
        if (h < 0)
            return -1;
        v = v << 4 | h;
    }
    return v;
}

//  Decodes the string literal at *ip into the expression's strbuf at *sp
static int
s_lex_string (parser_t *p, size_t *ip, size_t *sp, tok_t *t)
{
    const char *s = p->text;
    size_t i = *ip, start = i;
    char quote = s [i++];
    uint8_t *out = p->expr->strbuf;
    t->soff = (uint32_t) *sp;
    size_t o = *sp;
    while (true) {
        if (i >= p->len) {
            s_fail (p, (uint32_t) start, "unterminated string");
            return -1;
        }
        char c = s [i];
        if (c == quote) {
            i++;
            break;
        }
        if (c != '\\') {
            out [o++] = (uint8_t) c;
            i++;
            continue;
        }
        if (i + 1 >= p->len) {
            s_fail (p, (uint32_t) start, "unterminated string");
            return -1;
        }
        char e = s [i + 1];
        switch (e) {
            case '"': case '\'': case '\\': case '/': out [o++] = (uint8_t) e; i += 2; break;
            case 'n': out [o++] = '\n'; i += 2; break;
            case 't': out [o++] = '\t'; i += 2; break;
            case 'r': out [o++] = '\r'; i += 2; break;
            case 'b': out [o++] = '\b'; i += 2; break;
            case 'f': out [o++] = '\f'; i += 2; break;
            case '0': out [o++] = 0; i += 2; break;
            case 'u': {
                int32_t cp = s_hex4 (p, i + 2);
                size_t used = 6;
                if (cp >= 0xD800 && cp <= 0xDBFF) {
                    int32_t lo = -1;
                    if (i + 12 <= p->len && s [i + 6] == '\\' && s [i + 7] == 'u')
                        lo = s_hex4 (p, i + 8);
                    if (lo < 0xDC00 || lo > 0xDFFF)
                        cp = -1;
                    else {
                        cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                        used = 12;
                    }
                }
                else
                if (cp >= 0xDC00 && cp <= 0xDFFF)
                    cp = -1;
                if (cp < 0) {
                    char snip [64];
                    s_snippet (p, (uint32_t) i, (uint32_t) (i + 6), snip, sizeof snip);
                    s_fail (p, (uint32_t) i, "bad unicode escape '%s'", snip);
                    return -1;
                }
                o += s_utf8_put (out + o, (uint32_t) cp);
                i += used;
                break;
            }
            default: {
                char snip [64];
                s_snippet (p, (uint32_t) i, (uint32_t) (i + 2), snip, sizeof snip);
                s_fail (p, (uint32_t) i, "bad escape '%s' in string", snip);
                return -1;
            }
        }
    }
    t->slen = (uint32_t) (o - *sp);
    *sp = o;
    *ip = i;
    return 0;
}

static int
s_lex_number (parser_t *p, size_t *ip, tok_t *t)
{
    const char *s = p->text;
    size_t i = *ip, start = i;
    bool is_float = false;
    while (i < p->len && s [i] >= '0' && s [i] <= '9')
        i++;
    if (i < p->len && s [i] == '.') {
        is_float = true;
        i++;
        while (i < p->len && s [i] >= '0' && s [i] <= '9')
            i++;
    }
    if (i < p->len && (s [i] == 'e' || s [i] == 'E')) {
        size_t j = i + 1;
        if (j < p->len && (s [j] == '+' || s [j] == '-'))
            j++;
        if (j < p->len && s [j] >= '0' && s [j] <= '9') {
            is_float = true;
            i = j;
            while (i < p->len && s [i] >= '0' && s [i] <= '9')
                i++;
        }
    }
    t->off = (uint32_t) start;
    t->end = (uint32_t) i;
    if (i < p->len && (s_is_ident (s [i]) || s [i] == '.')) {
        size_t j = i;
        while (j < p->len && (s_is_ident (s [j]) || s [j] == '.'))
            j++;
        char snip [64];
        s_snippet (p, (uint32_t) start, (uint32_t) j, snip, sizeof snip);
        s_fail (p, (uint32_t) start, "bad number '%s'", snip);
        return -1;
    }
    if (is_float) {
        char *copy = malloc (i - start + 1);
        if (!copy) {
            s_oom (p);
            return -1;
        }
        memcpy (copy, s + start, i - start);
        copy [i - start] = 0;
        t->type = TK_FLOAT;
        t->d = strtod (copy, NULL);
        free (copy);
        if (!isfinite (t->d)) {
            char snip [64];
            s_snippet (p, (uint32_t) start, (uint32_t) i, snip, sizeof snip);
            s_fail (p, (uint32_t) start, "number '%s' out of range", snip);
            return -1;
        }
    }
    else {
        t->type = TK_INT;
        uint64_t mag = 0;
        for (size_t k = start; k < i; k++) {
            unsigned dig = (unsigned) (s [k] - '0');
            if (mag > (UINT64_MAX - dig) / 10)
                t->ovf = true;
            else
                mag = mag * 10 + dig;
        }
        if (mag > (uint64_t) INT64_MAX + 1)
            t->ovf = true;
        t->mag = mag;
    }
    *ip = i;
    return 0;
}

static int
s_lex (parser_t *p)
{
    const char *s = p->text;
    size_t i = 0, sp = 0;
    size_t cap = 16;
    p->toks = malloc (cap * sizeof (tok_t));
    if (!p->toks) {
        s_oom (p);
        return -1;
    }
    while (true) {
        while (i < p->len && (s [i] == ' ' || s [i] == '\t' || s [i] == '\n'
                           || s [i] == '\r' || s [i] == '\f' || s [i] == '\v'))
            i++;
        if (p->ntoks == cap) {
            cap *= 2;
            tok_t *grown = realloc (p->toks, cap * sizeof (tok_t));
            if (!grown) {
                s_oom (p);
                return -1;
            }
            p->toks = grown;
        }
        tok_t *t = &p->toks [p->ntoks];
        memset (t, 0, sizeof *t);
        t->off = (uint32_t) i;
        if (i >= p->len) {
            t->type = TK_END;
            t->end = (uint32_t) i;
            p->ntoks++;
            return 0;
        }
        uint8_t c = (uint8_t) s [i];
        uint8_t c2 = i + 1 < p->len ? (uint8_t) s [i + 1] : 0;
        if ((c >= '0' && c <= '9') || (c == '.' && c2 >= '0' && c2 <= '9')) {
            if (s_lex_number (p, &i, t))
                return -1;
        }
        else
        if (s_is_ident_start (c) || c == '$') {     //  `$` starts `$meta` only
            size_t start = i++;
            while (i < p->len && s_is_ident ((uint8_t) s [i]))
                i++;
            t->type = TK_IDENT;
            for (size_t k = 0; k < sizeof s_keywords / sizeof s_keywords [0]; k++)
                if (strlen (s_keywords [k].word) == i - start
                &&  strncasecmp (s_keywords [k].word, s + start, i - start) == 0)
                    t->type = s_keywords [k].type;
        }
        else
        if (c == '"' || c == '\'') {
            t->type = TK_STR;
            if (s_lex_string (p, &i, &sp, t))
                return -1;
        }
        else {
            tk_type_t type = TK_END;
            int n = 1;
            switch (c) {
                case '=': if (c2 == '=') { type = TK_EQ; n = 2; } break;
                case '!': if (c2 == '=') { type = TK_NE; n = 2; } else type = TK_NOT; break;
                case '<': if (c2 == '=') { type = TK_LE; n = 2; } else type = TK_LT; break;
                case '>': if (c2 == '=') { type = TK_GE; n = 2; } else type = TK_GT; break;
                case '&': if (c2 == '&') { type = TK_AND; n = 2; } break;
                case '|': if (c2 == '|') { type = TK_OR; n = 2; } break;
                case '+': type = TK_PLUS; break;
                case '-': type = TK_MINUS; break;
                case '*': type = TK_STAR; break;
                case '/': type = TK_SLASH; break;
                case '%': type = TK_PCT; break;
                case '(': type = TK_LPAREN; break;
                case ')': type = TK_RPAREN; break;
                case '[': type = TK_LBRACK; break;
                case ']': type = TK_RBRACK; break;
                case ',': type = TK_COMMA; break;
                default: break;
            }
            if (type == TK_END) {
                if (c == '=')
                    s_fail (p, (uint32_t) i, "unexpected '=' (comparison is '==')");
                else
                if (c >= 0x21 && c < 0x7F)
                    s_fail (p, (uint32_t) i, "unexpected character '%c'", c);
                else
                    s_fail (p, (uint32_t) i, "unexpected byte 0x%02x", c);
                return -1;
            }
            t->type = type;
            i += n;
        }
        t->end = (uint32_t) i;
        p->ntoks++;
    }
}

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
        return s_oom (p);
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
        return s_fail (p, n->off, "expression nested deeper than %d", QV_EXPR_DEPTH_MAX);
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
    s_snippet (p, n->off, n->end, snip, sizeof snip);
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
    return s_fail (p, n->off, "expected a condition, got %s", desc);
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
        s_snippet (p, t->off, t->end, snip, sizeof snip);
        return s_fail (p, t->off, "unknown field '%s'", snip);
    }
    const qv_field_t *f = &p->schema->fields [fi];
    if (f->type == QV_FLOAT_VECTOR)
        return s_fail (p, t->off, "vector field '%s' cannot be used in a filter", f->name);
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
            return s_oom (p);
        uint8_t *key = p->expr->strbuf + p->len + t->off;
        memcpy (key, p->text + t->off, nlen);
        n->steps [0].s = key;
        n->steps [0].n = (uint32_t) nlen;
        n->nsteps = 1;
    }
    while (s_peek (p)->type == TK_LBRACK) {
        const tok_t *lb = s_next (p);
        if (type != T_JSON)
            return s_fail (p, lb->off, "field '%s' is %s, not json: '[' cannot follow it",
                           f->name, qv_type_name (f->type));
        if (n->nsteps == QV_EXPR_PATH_MAX)
            return s_fail (p, lb->off, "json path longer than %d steps", QV_EXPR_PATH_MAX);
        if (!n->steps) {
            n->steps = calloc (QV_EXPR_PATH_MAX, sizeof (step_t));
            if (!n->steps)
                return s_oom (p);
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
            s_tok_desc (p, k, desc, sizeof desc);
            return s_fail (p, k->off, "expected a string key or an array index after '[', got %s", desc);
        }
        const tok_t *rb = s_next (p);
        if (rb->type != TK_RBRACK) {
            char desc [80];
            s_tok_desc (p, rb, desc, sizeof desc);
            return s_fail (p, rb->off, "expected ']', got %s", desc);
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
        s_snippet (p, off, t->end, snip, sizeof snip);
        return s_fail (p, off, "integer '%s' out of the int64 range", snip);
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
                return s_fail (p, t->off, "expression nested deeper than %d", QV_EXPR_DEPTH_MAX);
            n = s_parse_or (p);
            p->nest--;
            if (!n)
                return NULL;
            const tok_t *r = s_next (p);
            if (r->type != TK_RPAREN) {
                char desc [80];
                s_tok_desc (p, r, desc, sizeof desc);
                return s_fail (p, r->off, "expected ')', got %s", desc);
            }
            n->off = t->off;        //  messages quote the parentheses too
            n->end = r->end;
            return n;
        }
        default: {
            char desc [80];
            s_tok_desc (p, t, desc, sizeof desc);
            return s_fail (p, t->off, "expected a field, literal or '(', got %s", desc);
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
        return s_fail (p, t->off, "expression nested deeper than %d", QV_EXPR_DEPTH_MAX);
    node_t *a = s_parse_unary (p);
    p->nest--;
    if (!a)
        return NULL;
    if (!s_numeric (a->type) && a->type != T_JSON) {
        char desc [160];
        s_describe (p, a, desc, sizeof desc);
        return s_fail (p, t->off, "'-' needs a number, got %s", desc);
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
        s_snippet (p, optok->off, optok->end, snip, sizeof snip);
        return s_fail (p, bad->off, "'%s' needs numbers, got %s", snip, desc);
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

//  Whether int64 i is exactly a double; sets *d
static bool
s_i2d_exact (int64_t i, double *d)
{
    *d = (double) i;
    if (*d >= 9223372036854775808.0)
        return false;
    return (int64_t) *d == i;
}

//  Whether double d is an int64; sets *i
static bool
s_d2i_exact (double d, int64_t *i)
{
    if (!(d >= -9223372036854775808.0 && d < 9223372036854775808.0) || trunc (d) != d)
        return false;
    *i = (int64_t) d;
    return true;
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
        return s_fail (p, b->off, "cannot compare %s with %s", da, db);
    }
    if ((a->type == T_BOOL || b->type == T_BOOL) && op != OP_EQ && op != OP_NE) {
        char snip [16];
        s_snippet (p, optok->off, optok->end, snip, sizeof snip);
        return s_fail (p, optok->off, "bools can only be compared with == or !=, not '%s'", snip);
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
        return s_oom (p);
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
        s_tok_desc (p, lb, desc, sizeof desc);
        return s_fail (p, lb->off, "expected '[' after 'in', got %s", desc);
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
                s_snippet (p, off, t->end, snip, sizeof snip);
                return s_fail (p, off, "integer '%s' out of the int64 range", snip);
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
            s_tok_desc (p, t, desc, sizeof desc);
            return s_fail (p, t->off, "expected a literal in the 'in' list, got %s", desc);
        }
        bool fits = a->type == T_JSON
                 || (s_numeric (a->type) && (v.k == J_INT || v.k == J_FLT))
                 || (a->type == T_STR && v.k == J_STR)
                 || (a->type == T_BOOL && v.k == J_BOOL);
        if (!fits) {
            char da [160], snip [64];
            s_describe (p, a, da, sizeof da);
            s_snippet (p, off, t->end, snip, sizeof snip);
            return s_fail (p, off, "cannot compare %s with %s %s", da,
                           v.k == J_STR ? "string" : v.k == J_BOOL ? "bool" : "number", snip);
        }
        if (n->nlist == cap) {
            cap = cap ? cap * 2 : 8;
            jv_t *grown = realloc (n->list, cap * sizeof (jv_t));
            if (!grown)
                return s_oom (p);
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
            s_tok_desc (p, sep, desc, sizeof desc);
            return s_fail (p, sep->off, "expected ',' or ']' in the 'in' list, got %s", desc);
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
        return s_oom (p);
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
                s_tok_desc (p, pt, desc, sizeof desc);
                return s_fail (p, pt->off, "expected a string pattern after 'like', got %s", desc);
            }
            if (a->type != T_STR && a->type != T_JSON) {
                char da [160];
                s_describe (p, a, da, sizeof da);
                return s_fail (p, a->off, "'like' needs a string, got %s", da);
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
                s_tok_desc (p, nt, desc, sizeof desc);
                return s_fail (p, nt->off, "expected 'null' after 'is', got %s", desc);
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
        return s_fail (p, t->off, "expression nested deeper than %d", QV_EXPR_DEPTH_MAX);
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
        return s_oom (p);
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
                return s_oom (p);
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
    if (s_lex (&p) == 0) {
        if (s_peek (&p)->type == TK_END)
            s_fail (&p, 0, "empty filter");
        else {
            node_t *root = s_parse_or (&p);
            if (root && s_peek (&p)->type != TK_END) {
                char desc [80];
                s_tok_desc (&p, s_peek (&p), desc, sizeof desc);
                s_fail (&p, s_peek (&p)->off, "unexpected %s", desc);
            }
            else
            if (root && root->type != T_BOOL && root->type != T_JSON) {
                char d [160];
                s_describe (&p, root, d, sizeof d);
                s_fail (&p, root->off, "a filter must be a condition, got %s", d);
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
        const qv_bytes_t *raw = &col->var [row];
        if ((col->valid && !col->valid [row]) || !raw->ptr || raw->len == 0)
            continue;
        if (!parsed [top]) {
            int rc;
            docs [top] = qv_doc_parse (raw->ptr, raw->len, raw->len, &rc);
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
                const qv_bytes_t *v = &col->var [ROW (c, k)];
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
                const qv_bytes_t *v = &col->var [ROW (c, k)];
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

//  Checks that cols has the expression's layout for the fields it reads
static int
s_check_cols (const qv_expr_t *self, const qv_batch_t *cols, uint64_t to)
{
    const qv_schema_t *s = cols->schema;
    for (int fi = 0; fi < QV_FIELDS_MAX; fi++) {
        if (!(self->mask >> fi & 1))
            continue;
        if (fi >= s->nfields || s->fields [fi].type != self->schema->fields [fi].type)
            return qv_err (QV_EINVAL, "filter field '%s' does not match the batch's schema",
                           self->schema->fields [fi].name);
    }
    if (to > cols->cap && self->mask)
        return qv_err (QV_EINVAL, "filter over %llu rows of a batch of %u",
                       (unsigned long long) to, cols->cap);
    return 0;
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
