//  Integration-test helpers for siftsmall-based tests: reading .fvecs/.ivecs, exact
//  distance matrices computed in the test (the ground truth for filtered and range
//  searches), search requests with a bin of query vectors, and index readiness polls.
//
//  Like qv_it_server, nothing here uses cmocka: functions return codes or NULL.
#ifndef QV_IT_SIFT_H_INCLUDED
#define QV_IT_SIFT_H_INCLUDED

#include "qv_it_server.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define QV_IT_SIFT_DIM 128
#define QV_IT_SIFT_NB 10000         //  rows of siftsmall/base.fvecs
#define QV_IT_SIFT_NQ 100           //  rows of siftsmall/query.fvecs

//  Reads the first n rows (each: int32 dim, then dim 4-byte values) of
//  $QV_DATA_DIR/siftsmall/<name> into a new array of n x dim values. NULL (message on
//  stderr) if the file is missing, shorter, or of another dimension.
void *
    qv_it_sift_read (const char *name, size_t n, size_t dim);

//  nq x nb matrix of squared L2 distances (ip false) or inner products (ip true)
//  between queries and base rows, accumulated in double and rounded to float. malloc'd.
float *
    qv_it_dist_matrix (const float *queries, size_t nq, const float *base, size_t nb,
                       size_t dim, bool ip);

//  A search request. Zero / NULL fields are left out of the request.
typedef struct {
    const char *collection;
    const float *vectors;           //  nq x dim, sent as one bin
    uint32_t nq;
    uint32_t dim;
    uint32_t limit;
    uint32_t offset;
    const char *filter;
    uint32_t ef;                    //  params.ef
    uint32_t nprobe;                //  params.nprobe
    bool has_radius;
    double radius;
    bool has_range_filter;
    double range_filter;
    const char *output_field;       //  one output field
} qv_it_search_t;

//  Sends the search and returns the reply (ok or not), NULL on timeout.
qv_doc_t *
    qv_it_search (qv_it_client_t *client, const qv_it_search_t *s);

//  A query request: filter (required), limit and offset (0: left out), one output
//  field or NULL; count_only sends output_fields ["count(*)"].
qv_doc_t *
    qv_it_query (qv_it_client_t *client, const char *collection, const char *filter,
                 uint32_t limit, uint32_t offset, const char *output_field, bool count_only);

//  Polls describe_index on (collection, field) until its state is "finished" and
//  indexed_rows == total_rows == rows. 0 when so; -1 when the state is "failed" or the
//  reply is an error (the reply's text in why); -2 on timeout (the last state in why).
int
    qv_it_wait_index (qv_it_client_t *client, const char *collection, const char *field,
                      uint64_t rows, int timeout_ms, char *why, size_t why_size);

#endif
