//  Stream ledger: see qv_stream_ledger.h.
//
//  DESIGN
//  An array of intervals [lo, hi], sorted and disjoint, none touching another or the
//  base (an interval that reaches base + 1 is folded into the base). An add at the end
//  of the last interval, the common case, is O(1); anything else is a binary search and
//  a memmove of an array that holds one interval per gap.
#include "qv_stream_ledger.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
    uint64_t lo, hi;
} s_span_t;

struct _qv_stream_ledger_t {
    uint64_t base;
    s_span_t *spans;
    size_t n, cap;
};

qv_stream_ledger_t *
qv_stream_ledger_new (uint64_t base)
{
    qv_stream_ledger_t *self = calloc (1, sizeof *self);
    if (self)
        self->base = base;
    return self;
}

void
qv_stream_ledger_destroy (qv_stream_ledger_t **self_p)
{
    if (!*self_p)
        return;
    free ((*self_p)->spans);
    free (*self_p);
    *self_p = NULL;
}

//  The first span whose hi >= sseq (n if none).
static size_t
s_find (const qv_stream_ledger_t *self, uint64_t sseq)
{
    size_t lo = 0, hi = self->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (self->spans [mid].hi < sseq)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

//  Folds the first span into the base while they touch.
static void
s_fold (qv_stream_ledger_t *self)
{
    while (self->n > 0 && self->spans [0].lo <= self->base + 1) {
        if (self->spans [0].hi > self->base)
            self->base = self->spans [0].hi;
        memmove (self->spans, self->spans + 1, (self->n - 1) * sizeof (s_span_t));
        self->n--;
    }
}

int
qv_stream_ledger_add (qv_stream_ledger_t *self, uint64_t sseq)
{
    if (qv_stream_ledger_has (self, sseq))
        return 0;
    if (self->n > 0 && self->spans [self->n - 1].hi + 1 == sseq) {
        self->spans [self->n - 1].hi = sseq;
        return 0;
    }
    size_t i = s_find (self, sseq);         //  spans [i].lo > sseq, or i == n
    bool joins_prev = i > 0 && self->spans [i - 1].hi + 1 == sseq;
    bool joins_next = i < self->n && self->spans [i].lo == sseq + 1;
    if (joins_prev && joins_next) {
        self->spans [i - 1].hi = self->spans [i].hi;
        memmove (self->spans + i, self->spans + i + 1, (self->n - i - 1) * sizeof (s_span_t));
        self->n--;
    }
    else
    if (joins_prev)
        self->spans [i - 1].hi = sseq;
    else
    if (joins_next)
        self->spans [i].lo = sseq;
    else {
        if (self->n == self->cap) {
            size_t cap = self->cap ? self->cap * 2 : 8;
            s_span_t *spans = realloc (self->spans, cap * sizeof (s_span_t));
            if (!spans)
                return -1;
            self->spans = spans;
            self->cap = cap;
        }
        memmove (self->spans + i + 1, self->spans + i, (self->n - i) * sizeof (s_span_t));
        self->spans [i] = (s_span_t) { sseq, sseq };
        self->n++;
    }
    s_fold (self);
    return 0;
}

bool
qv_stream_ledger_has (const qv_stream_ledger_t *self, uint64_t sseq)
{
    if (sseq <= self->base)
        return true;
    size_t i = s_find (self, sseq);
    return i < self->n && self->spans [i].lo <= sseq;
}

size_t
qv_stream_ledger_intervals (const qv_stream_ledger_t *self)
{
    return self->n;
}
