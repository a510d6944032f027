//  The searcher's tsafe and its parked reads.
//
//  DESIGN
//  Parked reads are few (only those that arrive before the records they must see are
//  applied, a few ms at most unless the feed lags), so a list in arrival order, walked
//  whole, is enough: a read's answer never waits for an earlier read with a higher
//  guarantee. The lowest guarantee parked is kept so that the common case (nothing
//  ready) costs one comparison per record applied.
#include "qv_tsafe.h"

#include <stdlib.h>

typedef struct {
    void *item;
    uint64_t ts;
    int64_t deadline;
} s_wait_t;

struct qv_tsafe_t {
    uint64_t tsafe;
    s_wait_t *waits;
    size_t n, cap;
    uint64_t lowest;                //  lowest guarantee parked (UINT64_MAX: none)
};

qv_tsafe_t *
qv_tsafe_new (uint64_t ts)
{
    qv_tsafe_t *self = calloc (1, sizeof *self);
    if (self) {
        self->tsafe = ts;
        self->lowest = UINT64_MAX;
    }
    return self;
}

void
qv_tsafe_destroy (qv_tsafe_t **self_p, void (*free_item) (void *item))
{
    qv_tsafe_t *self = *self_p;
    if (!self)
        return;
    for (size_t i = 0; i < self->n; i++)
        if (free_item)
            free_item (self->waits [i].item);
    free (self->waits);
    free (self);
    *self_p = NULL;
}

uint64_t
qv_tsafe_get (const qv_tsafe_t *self)
{
    return self->tsafe;
}

void
qv_tsafe_advance (qv_tsafe_t *self, uint64_t ts)
{
    if (ts > self->tsafe)
        self->tsafe = ts;
}

bool
qv_tsafe_ready (const qv_tsafe_t *self, uint64_t ts)
{
    return ts <= self->tsafe;
}

int
qv_tsafe_park (qv_tsafe_t *self, void *item, uint64_t ts, int64_t deadline)
{
    if (self->n == self->cap) {
        size_t cap = self->cap ? self->cap * 2 : 16;
        s_wait_t *waits = realloc (self->waits, cap * sizeof *waits);
        if (!waits)
            return -1;
        self->waits = waits;
        self->cap = cap;
    }
    self->waits [self->n++] = (s_wait_t) { item, ts, deadline };
    if (ts < self->lowest)
        self->lowest = ts;
    return 0;
}

//  Takes wait i off the list, keeping the others' order; returns its item.
static void *
s_take (qv_tsafe_t *self, size_t i)
{
    void *item = self->waits [i].item;
    for (size_t j = i + 1; j < self->n; j++)
        self->waits [j - 1] = self->waits [j];
    self->n--;
    self->lowest = UINT64_MAX;
    for (size_t j = 0; j < self->n; j++)
        if (self->waits [j].ts < self->lowest)
            self->lowest = self->waits [j].ts;
    return item;
}

void *
qv_tsafe_next_ready (qv_tsafe_t *self)
{
    if (self->lowest > self->tsafe)
        return NULL;
    for (size_t i = 0; i < self->n; i++)
        if (self->waits [i].ts <= self->tsafe)
            return s_take (self, i);
    return NULL;
}

void *
qv_tsafe_next_expired (qv_tsafe_t *self, int64_t now, uint64_t *ts)
{
    for (size_t i = 0; i < self->n; i++)
        if (self->waits [i].deadline <= now && self->waits [i].ts > self->tsafe) {
            *ts = self->waits [i].ts;
            return s_take (self, i);
        }
    return NULL;
}

void *
qv_tsafe_drain (qv_tsafe_t *self)
{
    return self->n ? s_take (self, self->n - 1) : NULL;
}

size_t
qv_tsafe_parked (const qv_tsafe_t *self)
{
    return self->n;
}
