//  Filter expressions: parsed once against a schema into a typed tree, evaluated
//  column-wise over a batch's rows into a roaring bitmap of the rows that match.
//
//  Language (PROTOCOL.md "Filter expressions"):
//
//    or      := and  { ("or" | "||") and }
//    and     := not  { ("and" | "&&") not }
//    not     := ("not" | "!") not | cmp
//    cmp     := sum [ ("==" | "!=" | "<" | "<=" | ">" | ">=") sum
//                   | ["not"] "in" "[" [lit { "," lit }] "]"
//                   | "like" string
//                   | "is" ["not"] "null" ]
//    sum     := prod { ("+" | "-") prod }
//    prod    := unary { ("*" | "/" | "%") unary }
//    unary   := "-" unary | primary
//    primary := number | string | "true" | "false" | "(" or ")"
//             | field { "[" (string | index) "]" }       (json paths)
//    lit     := ["-"] number | string | "true" | "false"
//
//  Keywords are case-insensitive and cannot be used as field names in a filter.
//  Strings take "..." or '...' with escapes \" \' \\ \/ \n \t \r \b \f \0 \uXXXX
//  (UTF-8 encoded). Integer literals are int64 (-9223372036854775808 included);
//  a literal with '.' or an exponent is a double.
//
//  Types. Every node is bool, int (int8..int64 fields, integer literals), float
//  (float and double fields, decimal literals), string (varchar, string literals) or
//  json (a json field or a path into one; its type is known per row). Checked at
//  parse time: numbers compare with numbers, strings with strings, bools with bools
//  (== and != only), json with anything scalar; `like` needs a string or json;
//  `in` lists hold literals of the left side's kind; and/or/not take bools (a bool
//  field or json path may stand alone as a condition); vector fields are refused.
//
//  Arithmetic: int op int gives int (64-bit; / truncates toward zero, % takes the
//  sign of the dividend); any float operand makes the operation double (% is fmod).
//  Overflow of an int operation, and division or remainder by zero, make the value
//  unknown (the row does not match). Int-float comparisons are exact (no rounding of
//  large int64 values through double).
//
//  Nulls and missing values use SQL's three-valued logic: a comparison with a null
//  field, a missing json path, a json value of another kind (a string compared with
//  a number, an array or map compared with anything), or an unknown arithmetic result
//  is unknown; `not unknown` is unknown; `false and unknown` is false, `true or
//  unknown` is true; a row matches only when the whole filter is true. `x is null` is
//  true for a null field value, and for a json path that is missing or holds nil.
//  `x in [..]` is the or of `x == v` over the list: true when x equals an element;
//  unknown when x is null / missing / an array or map, or when it is not found and
//  the list holds elements of another kind (json only); false otherwise.
//
//  `like`: % matches any run of bytes, _ one UTF-8 character, \ makes the next
//  pattern character literal; the match covers the whole string.
//
//  Limits: the text is at most QV_EXPR_TEXT_MAX bytes, parentheses / not / unary minus
//  / operator trees nest at most QV_EXPR_DEPTH_MAX deep (and/or chains are flat and do
//  not count), so no filter can exhaust the stack.
#ifndef QV_EXPR_H_INCLUDED
#define QV_EXPR_H_INCLUDED

#include "qv_batch.h"
#include "qv_scalar.h"

#include <roaring/roaring.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define QV_EXPR_TEXT_MAX (64 * 1024)    //  longest filter text, bytes
#define QV_EXPR_DEPTH_MAX 64            //  deepest nesting of the tree

typedef struct _qv_expr_t qv_expr_t;

//  Parses and type-checks text (len bytes, need not be NUL-terminated) against
//  schema, which must outlive the expression. Returns NULL with *rc_p = QV_EINVAL and
//  a message naming the offending token and its 1-based character position
//  ("unknown field 'catgory' at position 1"), or QV_ENOMEM. Any thread.
qv_expr_t *
    qv_expr_parse (const qv_schema_t *schema, const char *text, size_t len, int *rc_p);

void
    qv_expr_destroy (qv_expr_t **self_p);

//  Adds to out the rows in [0, nrows) of cols that match. cols must have the
//  expression's schema layout (same field types at the fields it reads) and hold at
//  least nrows rows. Returns 0, QV_EINVAL (layout mismatch) or QV_ENOMEM. The
//  expression is read-only: several threads may evaluate it at once.
int
    qv_expr_eval (const qv_expr_t *self, const qv_batch_t *cols, uint32_t nrows,
                  roaring_bitmap_t *out);

//  Same, over rows [from, to), and when in is not NULL only over the rows in it.
int
    qv_expr_eval_rows (const qv_expr_t *self, const qv_batch_t *cols, uint32_t from,
                       uint32_t to, const roaring_bitmap_t *in, roaring_bitmap_t *out);

//  Same as qv_expr_eval_rows without in, helped by scalar indexes: scalars [fi] is
//  the index of field fi over these columns, or NULL (the array has the schema's
//  field count). The conjuncts of the top-level `and` (or a lone condition) of the
//  forms `field ==, !=, <, <=, >, >= literal` (either side), `field [not] in [..]`
//  and a bare bool field are looked up in their field's index, those on one field
//  intersected; when the most selective field matches at most share x the segment's
//  rows, its rows are the candidates and the filter is evaluated only over them (not
//  at all when that field answers every conjunct). Otherwise the rows are scanned.
//  Pass QV_EXPR_INDEX_SHARE (tests pass 1 to always use an index). Returns 1 when an
//  index was used, 0 when the rows were scanned, or a negative code as qv_expr_eval.
int
    qv_expr_eval_indexed (const qv_expr_t *self, const qv_batch_t *cols, uint32_t from,
                          uint32_t to, qv_scalar_t *const *scalars, double share,
                          roaring_bitmap_t *out);
//  The rule, from `qvfilter --scalar` (speedup of the index over the scan, medians of
//  11 runs, 200k-row segment, 2-vCPU EPYC; 1M rows gave the same shape):
//      matches of the rows           0.01%   0.1%    1%     10%     25%     50%
//      e == v   (index answers all)    57x    48x    19x   1.8-2.5x 1.4-1.5x 1.0-1.2x
//      u < n    (index answers all)    53x    39x    16x   2.3-2.5x  1.5x   1.0-1.2x
//      w in [..] (varchar)            510x   320x    88x    23-28x   7x     3-8x
//      u < n and score < 0.5           40x    40x    17x     1.8x  0.66-0.95x 0.6-0.8x
//  An index always wins below 10%; above, it only wins when it answers the whole
//  filter, and loses once the other conditions must be evaluated over a quarter of
//  the rows as a row list. 20% keeps every measured case at or above break-even.
#define QV_EXPR_INDEX_SHARE 0.20

//  Whether one row matches: 1 yes, 0 no, or a negative code as qv_expr_eval.
int
    qv_expr_match_row (const qv_expr_t *self, const qv_batch_t *cols, uint32_t row);

//  Sets in *mask the bit (1 << field index) of every field the expression reads.
//  Returns false when it reads no field (a constant filter).
bool
    qv_expr_fields (const qv_expr_t *self, uint64_t *mask);

//  One literal value: type is QV_BOOL, QV_INT64, QV_DOUBLE or QV_VARCHAR.
typedef struct {
    qv_type_t type;
    bool b;
    int64_t i;
    double d;
    const char *s;                  //  points into the expression; not NUL-terminated
    size_t len;
} qv_expr_value_t;

//  Whether every matching row has field (a scalar, non-json field) equal to one of a
//  finite set of values, as in `field == v`, `field in [..]`, their or-s, and an and
//  with any other condition. Returns 1 with *values_p a malloc'd array of *n_p values
//  (free it; strings point into the expression; values come in the field's kind,
//  QV_INT64 for int fields, QV_DOUBLE for float fields; the set may be a superset and
//  may be empty), 0 when not so constrained, QV_ENOMEM.
int
    qv_expr_equal_values (const qv_expr_t *self, int field, qv_expr_value_t **values_p,
                          size_t *n_p);

#endif
