//  Blocked exact scan for batches of queries: distances of a block of queries to a
//  block of rows in matrix-multiply form (OpenBLAS sgemm), then a per-query top-k
//  merge that re-computes every candidate with the exact pair kernel, so the scores
//  pushed are the ones the per-query scan pushes.
#ifndef QV_BLOCKSCAN_H_INCLUDED
#define QV_BLOCKSCAN_H_INCLUDED

#include <stdint.h>

#include "qv_dist.h"
#include "qv_topk.h"

//  Batches of at least this many queries take the blocked path; fewer are scanned one
//  query at a time (a matrix multiply with a handful of rows gains nothing).
#define QV_BLOCKSCAN_MIN_NQ 8

//  A row that passed the distance test may still be refused: keep returns nonzero if
//  row (with its exact score) may be pushed. Called only for candidates.
typedef int (qv_blockscan_keep_fn) (void *arg, uint32_t row, float score);

typedef struct {
    qv_metric_t metric;             //  L2 (squared), IP, or COSINE (scores as segments keep them)
    uint32_t dim;
    const float *rows;              //  row r at rows + r * dim
    const float *rnorms;            //  COSINE: |x| by row; NULL to compute them
    const float *queries;           //  nq x dim
    const float *qnorms;            //  COSINE: |q| by query; NULL to compute them
    uint32_t nq;
    qv_blockscan_keep_fn *keep;     //  NULL: every row may be pushed
    void *keep_arg;
    int64_t id_base;                //  id pushed for row r: id_base | r
} qv_blockscan_t;

//  Scans rows [from, to) for every query q, pushing (score, id_base | row) into tops [q]
//  exactly as a per-query scan in row order would: scores are smaller-is-better (L2:
//  squared distance, IP: -dot, COSINE: -dot / (|q| |x|), 0 when either norm is 0).
//  Returns 0 or QV_ENOMEM (nothing pushed then).
int
    qv_blockscan_run (const qv_blockscan_t *scan, uint32_t from, uint32_t to, qv_topk_t **tops);

//  The distance block in GEMM form, exposed for tests: out [q * nb + i] = dot (q, x_i)
//  (is_l2 = 0) or |q|^2 + |x_i|^2 - 2 dot (q, x_i) (is_l2 = 1), where qsq / xsq hold the
//  squared norms. Rounding differs from the pair kernels by at most
//  qv_blockscan_slack.
void
    qv_blockscan_block (const float *queries, uint32_t nq, const float *qsq,
                        const float *rows, uint32_t nb, const float *xsq, uint32_t dim,
                        int is_l2, float *out);

//  Bound on |GEMM-form value - pair-kernel value| for L2 (qsq + xsq: squared norms) or
//  IP (sqrt (qsq * xsq)); callers pass the larger of the two norms' sums.
float
    qv_blockscan_slack (uint32_t dim, int is_l2, float qsq, float xsq);

//  "openblas <core>" naming the BLAS behind qv_blockscan_block, for benchmark tables.
const char *
    qv_blockscan_backend (void);

#endif
