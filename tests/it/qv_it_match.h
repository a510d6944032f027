//  Integration-test helper: compares a decoded reply value with the JSON-like text of
//  what a test expects, as a user reads a reply (map key order does not matter,
//  numbers compare by value).
#ifndef QV_IT_MATCH_H_INCLUDED
#define QV_IT_MATCH_H_INCLUDED

#include "qv_codec.h"

#include <stdbool.h>

//  Whether v equals the value written as text (qv_it_json_write syntax): maps with the
//  same keys and equal values in any order, arrays element by element, numbers equal
//  by value (1 == 1.0), strings, bools and nil exactly. false for NULL v or bad text;
//  on a mismatch, writes both sides to stderr, prefixed by what.
bool
    qv_it_match (const char *what, const qv_val_t *v, const char *text);

#endif
