//  Stream ledger: which JetStream stream sequences the segment manager has logged, so
//  that a stream write sent again after its first copy was logged (its answer lost
//  with a proxy's connection) is answered without being logged twice, while one that
//  was never logged (refused, or failed) is logged when it comes again.
//
//  Every sequence at or below the base (the highest one recovered from the WAL) counts
//  as logged; above it the ledger keeps the logged sequences as sorted, disjoint
//  intervals. Stream writes are logged in stream order, so an interval grows at its
//  end and a new one starts only after a gap (a message refused for good, which never
//  reaches the WAL): the ledger stays a few intervals long.
#ifndef QV_STREAM_LEDGER_H_INCLUDED
#define QV_STREAM_LEDGER_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct _qv_stream_ledger_t qv_stream_ledger_t;

//  A ledger where every sequence at or below base counts as logged. NULL out of memory.
qv_stream_ledger_t *
    qv_stream_ledger_new (uint64_t base);
void
    qv_stream_ledger_destroy (qv_stream_ledger_t **self_p);

//  Sequence sseq (> 0) is logged now. 0, or -1 out of memory (the ledger unchanged).
int
    qv_stream_ledger_add (qv_stream_ledger_t *self, uint64_t sseq);

//  True if sseq was logged (or is at or below the base).
bool
    qv_stream_ledger_has (const qv_stream_ledger_t *self, uint64_t sseq);

//  The number of intervals kept above the base (for tests).
size_t
    qv_stream_ledger_intervals (const qv_stream_ledger_t *self);

#endif
