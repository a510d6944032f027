//  Filter expressions: the lexer, and the error reporting the parser shares with it.
//  The text is cut into tokens; string literals are decoded into one buffer the
//  expression keeps. The parser is qv_expr_parse.c.
#include "qv_expr_lex.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

//  ---------------------------------------------------------------------------------
//  Tokens

static const struct {
    const char *word;
    tk_type_t type;
} s_keywords [] = {
    { "and", TK_AND }, { "or", TK_OR }, { "not", TK_NOT }, { "in", TK_IN },
    { "like", TK_LIKE }, { "is", TK_IS }, { "null", TK_NULL }, { "true", TK_TRUE },
    { "false", TK_FALSE }
};

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

void
qv_expr_snippet (parser_t *p, uint32_t off, uint32_t end, char *buf, size_t size)
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

void *
qv_expr_fail (parser_t *p, uint32_t off, const char *fmt, ...)
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

void *
qv_expr_oom (parser_t *p)
{
    if (!p->rc)
        p->rc = qv_err (QV_ENOMEM, "out of memory parsing a filter");
    return NULL;
}

void
qv_expr_tok_desc (parser_t *p, const tok_t *t, char *buf, size_t size)
{
    if (t->type == TK_END) {
        snprintf (buf, size, "end of input");
        return;
    }
    char snip [64];
    qv_expr_snippet (p, t->off, t->end, snip, sizeof snip);
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
            qv_expr_fail (p, (uint32_t) start, "unterminated string");
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
            qv_expr_fail (p, (uint32_t) start, "unterminated string");
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
                    qv_expr_snippet (p, (uint32_t) i, (uint32_t) (i + 6), snip, sizeof snip);
                    qv_expr_fail (p, (uint32_t) i, "bad unicode escape '%s'", snip);
                    return -1;
                }
                o += s_utf8_put (out + o, (uint32_t) cp);
                i += used;
                break;
            }
            default: {
                char snip [64];
                qv_expr_snippet (p, (uint32_t) i, (uint32_t) (i + 2), snip, sizeof snip);
                qv_expr_fail (p, (uint32_t) i, "bad escape '%s' in string", snip);
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
        qv_expr_snippet (p, (uint32_t) start, (uint32_t) j, snip, sizeof snip);
        qv_expr_fail (p, (uint32_t) start, "bad number '%s'", snip);
        return -1;
    }
    if (is_float) {
        char *copy = malloc (i - start + 1);
        if (!copy) {
            qv_expr_oom (p);
            return -1;
        }
        memcpy (copy, s + start, i - start);
        copy [i - start] = 0;
        t->type = TK_FLOAT;
        t->d = strtod (copy, NULL);
        free (copy);
        if (!isfinite (t->d)) {
            char snip [64];
            qv_expr_snippet (p, (uint32_t) start, (uint32_t) i, snip, sizeof snip);
            qv_expr_fail (p, (uint32_t) start, "number '%s' out of range", snip);
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

int
qv_expr_lex (parser_t *p)
{
    const char *s = p->text;
    size_t i = 0, sp = 0;
    size_t cap = 16;
    p->toks = malloc (cap * sizeof (tok_t));
    if (!p->toks) {
        qv_expr_oom (p);
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
                qv_expr_oom (p);
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
                    qv_expr_fail (p, (uint32_t) i, "unexpected '=' (comparison is '==')");
                else
                if (c >= 0x21 && c < 0x7F)
                    qv_expr_fail (p, (uint32_t) i, "unexpected character '%c'", c);
                else
                    qv_expr_fail (p, (uint32_t) i, "unexpected byte 0x%02x", c);
                return -1;
            }
            t->type = type;
            i += n;
        }
        t->end = (uint32_t) i;
        p->ntoks++;
    }
}
