//  The filter language's lexer and the parser state it shares with the parser
//  (qv_expr_lex.c, qv_expr_parse.c). Private to those files: everyone else uses qv_expr.h.
#ifndef QV_EXPR_LEX_H_INCLUDED
#define QV_EXPR_LEX_H_INCLUDED

#include "qv_expr_tree.h"

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

//  Cuts p->text into p->toks (string literals decoded into the expression's strbuf);
//  0, or -1 with the error in p->rc
int
    qv_expr_lex (parser_t *p);

//  Records a parse error at byte offset off (first error wins); returns NULL
void *
    qv_expr_fail (parser_t *p, uint32_t off, const char *fmt, ...) __attribute__ ((format (printf, 3, 4)));

//  Records running out of memory (first error wins); returns NULL
void *
    qv_expr_oom (parser_t *p);

//  Text of bytes [off, end) for a message: at most 40 bytes, control bytes escaped
void
    qv_expr_snippet (parser_t *p, uint32_t off, uint32_t end, char *buf, size_t size);

//  "'tok'" or "end of input", for "expected X, got ..."
void
    qv_expr_tok_desc (parser_t *p, const tok_t *t, char *buf, size_t size);

#endif
