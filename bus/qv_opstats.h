//  Requests answered by this process, per op and outcome: counts and a latency
//  histogram, for the metrics endpoint (qv_metrics.h). The proxy records each request
//  when it sends the reply; any thread may write the Prometheus text at any time.
//
//  DESIGN
//  One process-wide table of relaxed atomic counters, [op][outcome][bucket], fixed at
//  compile time (ops from the protocol, outcomes from the return codes): recording is
//  a few atomic adds with no lock and no allocation, so it costs the request path
//  nothing measurable, and a scrape reads a consistent-enough copy (each counter on
//  its own is exact; a scrape racing a record may see the count before the sum).
#ifndef QV_OPSTATS_H_INCLUDED
#define QV_OPSTATS_H_INCLUDED

#include <stdint.h>
#include <stdio.h>

//  Bucket upper bounds in seconds (Prometheus `le`), then +Inf.
#define QV_OPSTATS_BUCKETS 16

//  One answered request: op (a qv_op_t; anything else counts as "unknown", e.g. a
//  request that did not parse), rc (0 or a qv_rc_t), usec from its arrival to its reply.
void
    qv_opstats_record (int op, int rc, int64_t usec);

//  Appends the families quiver_requests_total{op,code} and
//  quiver_request_duration_seconds{op} (histogram, every outcome) to out, in the
//  Prometheus text exposition format (version 0.0.4). Only ops seen are written.
void
    qv_opstats_write (FILE *out);

//  The requests recorded so far for op with outcome rc (tests).
uint64_t
    qv_opstats_count (int op, int rc);

#endif
