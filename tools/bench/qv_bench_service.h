//  Benchmark support: one collection of given vectors served by a `quiver serve`
//  child, searched through the public ZeroMQ API the way an application would
//  (requests of nq query vectors, several in flight), so a tool can print the
//  service's figures beside the index library's in-process ones on the same data.
#ifndef QV_BENCH_SERVICE_H_INCLUDED
#define QV_BENCH_SERVICE_H_INCLUDED

#include "qv_bench.h"

typedef struct _qv_bench_service_t qv_bench_service_t;

//  Starts `quiver serve --search-threads threads` in a directory under tmp, creates
//  collection "ann" (int64 primary key `id`, float_vector `vector` of dim and
//  metric "L2", "IP" or "COSINE"), inserts the n rows of base with ids 0..n-1,
//  builds index_type ("FLAT": none) with M and efc, flushes and waits until every
//  row is indexed. Progress goes to stderr. Dies on any failure.
qv_bench_service_t *
    qv_bench_service_new (const char *quiver, const char *tmp, int threads, const char *metric,
                          const char *index_type, uint32_t M, uint32_t efc,
                          const float *base, uint32_t n, uint32_t dim);
//  Stops the server and removes its data.
void
    qv_bench_service_destroy (qv_bench_service_t **self_p);

//  Queries per second of requests of `batch` query vectors (cycling through the nq
//  queries), `window` requests in flight, for at least `seconds` and at least one
//  pass over the queries; search params {ef} when ef > 0. When ids is not NULL it
//  receives the first pass's k ids per query (-1 where fewer came back).
double
    qv_bench_service_qps (qv_bench_service_t *self, const float *queries, uint32_t nq, uint32_t batch,
                          int window, uint32_t k, uint32_t ef, double seconds, int64_t *ids);

//  Median and 99th percentile latency in microseconds of requests of one query,
//  one at a time, for about `seconds`.
void
    qv_bench_service_latency (qv_bench_service_t *self, const float *queries, uint32_t nq,
                              uint32_t k, uint32_t ef, double seconds, double *p50_us, double *p99_us);

//  CPU seconds the server process has used so far (every thread; /proc/PID/stat).
double
    qv_bench_service_cpu_s (qv_bench_service_t *self);

//  Median round trip in microseconds of `ping` through the server, one at a time, for
//  about `seconds`: the cost of the API path without a search.
double
    qv_bench_service_ping_us (qv_bench_service_t *self, double seconds);

#endif
