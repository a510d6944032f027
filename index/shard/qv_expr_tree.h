//  The filter language's typed tree, shared by its parser (qv_expr_parse.c), its
//  evaluator (qv_expr_eval.c) and its planner (qv_expr_plan.c). Private to those
//  files: everyone else uses qv_expr.h.
#ifndef QV_EXPR_TREE_H_INCLUDED
#define QV_EXPR_TREE_H_INCLUDED

#include "qv_expr.h"
#include "qv_codec.h"
#include "qv_rc.h"

#include <math.h>

#define QV_EXPR_BLOCK 1024              //  rows per evaluation block
#define QV_EXPR_PATH_MAX 32             //  steps in a json path (msgpack nests <= 32)

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

//  Whether int64 i is exactly a double; sets *d
static inline bool
s_i2d_exact (int64_t i, double *d)
{
    *d = (double) i;
    if (*d >= 9223372036854775808.0)
        return false;
    return (int64_t) *d == i;
}

//  Whether double d is an int64; sets *i
static inline bool
s_d2i_exact (double d, int64_t *i)
{
    if (!(d >= -9223372036854775808.0 && d < 9223372036854775808.0) || trunc (d) != d)
        return false;
    *i = (int64_t) d;
    return true;
}

//  Checks that cols has the expression's layout for the fields it reads
static inline int
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


#endif
