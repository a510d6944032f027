//  The hold on a JetStream stream's writes after one failed on its way to the WAL (its
//  outcome unknown, or not sent): none after it, of the same consumer generation, may
//  go until the bridge sends it again or rewinds (a new generation, which starts at or
//  before it). Kept by the link (a failed send to the writer core), by the proxy (a
//  failed resolution of a delete by filter) and by the segment manager (a failed WAL
//  write, or a wait for memory).
#ifndef QV_STREAM_HOLD_H_INCLUDED
#define QV_STREAM_HOLD_H_INCLUDED

#include <stdbool.h>
#include <stdint.h>

typedef struct {
    uint64_t sseq;                  //  the failed write's stream sequence (0: no hold)
    uint64_t gen;                   //  its consumer generation
} qv_stream_hold_t;

//  The write at sseq of generation gen failed: hold the later ones (the earliest
//  failure of a generation is the one that counts).
static inline void
qv_stream_hold_set (qv_stream_hold_t *self, uint64_t sseq, uint64_t gen)
{
    if (sseq && (self->sseq == 0 || gen != self->gen || sseq < self->sseq)) {
        self->sseq = sseq;
        self->gen = gen;
    }
}

//  Whether the hold covers the write at sseq of generation gen (a later one of the
//  failed one's generation).
static inline bool
qv_stream_hold_covers (const qv_stream_hold_t *self, uint64_t sseq, uint64_t gen)
{
    return sseq && self->sseq && sseq > self->sseq && gen == self->gen;
}

//  A stream write at sseq of generation gen arrives: one the hold does not cover (the
//  failed one again, an earlier one, or a new generation: the bridge resumed) ends it.
static inline void
qv_stream_hold_arrive (qv_stream_hold_t *self, uint64_t sseq, uint64_t gen)
{
    if (sseq && !qv_stream_hold_covers (self, sseq, gen))
        self->sseq = 0;
}

//  Whether the write at sseq of generation gen, arriving, must wait.
static inline bool
qv_stream_hold_blocks (qv_stream_hold_t *self, uint64_t sseq, uint64_t gen)
{
    qv_stream_hold_arrive (self, sseq, gen);
    return qv_stream_hold_covers (self, sseq, gen);
}

#endif
