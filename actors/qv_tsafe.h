//  How far a searcher has applied a shard's committed feed (tsafe), and the reads
//  parked until it gets far enough for their guarantee timestamp (consistency levels,
//  DESIGN.md "Read path").
#ifndef QV_TSAFE_H_INCLUDED
#define QV_TSAFE_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct qv_tsafe_t qv_tsafe_t;

//  A new wait list; tsafe starts at ts (the largest timestamp recovered). NULL out of
//  memory.
qv_tsafe_t *
    qv_tsafe_new (uint64_t ts);
//  Destroys it; free_item is called for every read still parked (may be NULL).
void
    qv_tsafe_destroy (qv_tsafe_t **self_p, void (*free_item) (void *item));

//  The timestamp up to which the shard is applied: the largest of the records applied
//  and the ticks taken.
uint64_t
    qv_tsafe_get (const qv_tsafe_t *self);
//  The shard has got to ts (a record applied, or a tick): tsafe rises, never falls.
void
    qv_tsafe_advance (qv_tsafe_t *self, uint64_t ts);

//  True if a read with guarantee ts may be answered now (ts <= tsafe).
bool
    qv_tsafe_ready (const qv_tsafe_t *self, uint64_t ts);
//  Parks item (a read) until tsafe reaches ts or the msec clock reaches deadline.
//  0, or -1 out of memory (then the caller still owns item).
int
    qv_tsafe_park (qv_tsafe_t *self, void *item, uint64_t ts, int64_t deadline);
//  The next parked read whose guarantee tsafe has reached, in the order they were
//  parked, taken off the list; NULL when none is.
void *
    qv_tsafe_next_ready (qv_tsafe_t *self);
//  The next parked read whose deadline is <= now and whose guarantee tsafe has not
//  reached, taken off the list, its guarantee in *ts; NULL when none is.
void *
    qv_tsafe_next_expired (qv_tsafe_t *self, int64_t now, uint64_t *ts);
//  Takes any parked read off the list (shutdown), NULL when empty.
void *
    qv_tsafe_drain (qv_tsafe_t *self);
//  Reads parked.
size_t
    qv_tsafe_parked (const qv_tsafe_t *self);

#endif
