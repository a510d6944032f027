//  Blocked exact scan for batches of queries.
//
//  DESIGN
//  A per-query scan reads every row once per query: at nq = 100 on 1M x 128 that is
//  100 passes over 512 MB, bound by memory bandwidth at a fraction of what the FMA
//  units can do. Here rows are taken S_ROWS at a time (a block that stays in L2), and
//  the dot products of up to S_QUERIES queries with the block are one sgemm call
//  (OpenBLAS, packed and register-blocked for the CPU it finds at start-up), so every
//  row is read from memory once per batch. Squared row norms are computed once per
//  block (for all queries), query norms once per call; L2 is then
//  |q|^2 + |x|^2 - 2 q.x.
//  That form rounds differently from the pair kernels (and cancels badly for close
//  pairs), so its values only choose candidates: a row whose GEMM-form score is within
//  a rounding bound (qv_blockscan_slack) of the query's current top-k threshold is
//  re-computed with the exact pair kernel, and that score is what gets pushed. Rows are
//  offered to each query in row order with the same test as the per-query scan, so the
//  collectors see the same pushes (up to ties between the pair and batch kernels'
//  last bits). Candidates are few once the collector is full (about k ln (n / k)).
//
//  Threads: the callers (searcher actors) already spread scans over the cores, so
//  OpenBLAS's own thread pool is switched off once (openblas_set_num_threads (1)) and
//  each caller's sgemm runs on the caller's thread.
#include "qv_blockscan.h"
#include "qv_rc.h"

#include <cblas.h>
#include <float.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

//  Rows per block: 512 rows of 128 floats are 256 KB, the block and its packed copy
//  stay in L2 while every query of the batch passes over it.
#define S_ROWS 512
//  Queries per sgemm call: bounds the distance block (S_QUERIES x S_ROWS floats).
#define S_QUERIES 256

static pthread_once_t s_once = PTHREAD_ONCE_INIT;
static char s_backend [64];

static void
s_init (void)
{
    openblas_set_num_threads (1);
    snprintf (s_backend, sizeof s_backend, "openblas %s", openblas_get_corename ());
}

const char *
qv_blockscan_backend (void)
{
    pthread_once (&s_once, s_init);
    return s_backend;
}

float
qv_blockscan_slack (uint32_t dim, int is_l2, float qsq, float xsq)
{
    //  Recursive summation of dim products errs by at most dim u sum |a_i b_i|
    //  (u = 2^-24), and sum |a_i b_i| <= |a| |b| <= (|a|^2 + |b|^2) / 2. Both the GEMM
    //  form and the pair kernel err that way; L2 adds the two norms' errors and the
    //  kernel's sum of (a - b)^2 <= 2 (|a|^2 + |b|^2). A factor of 2 over that covers
    //  the final additions.
    float u = FLT_EPSILON / 2;
    if (is_l2)
        return 12.0f * (dim + 2) * u * (qsq + xsq);
    return 6.0f * (dim + 2) * u * sqrtf (qsq * xsq);
}

void
qv_blockscan_block (const float *queries, uint32_t nq, const float *qsq,
                    const float *rows, uint32_t nb, const float *xsq, uint32_t dim,
                    int is_l2, float *out)
{
    pthread_once (&s_once, s_init);
    cblas_sgemm (CblasRowMajor, CblasNoTrans, CblasTrans, (int) nq, (int) nb, (int) dim,
                 is_l2? -2.0f: 1.0f, queries, (int) dim, rows, (int) dim, 0.0f, out, (int) nb);
    if (is_l2)
        for (uint32_t q = 0; q < nq; q++)
            for (uint32_t i = 0; i < nb; i++)
                out [(size_t) q * nb + i] += qsq [q] + xsq [i];
}

//  The exact score of row against query q, as the per-query scan computes it.
static inline float
s_exact (const qv_blockscan_t *scan, qv_dist_fn pair, uint32_t q, const float *x, float qn, float xn)
{
    float d = pair (scan->queries + (size_t) q * scan->dim, x, scan->dim);
    if (scan->metric == QV_METRIC_L2)
        return d;
    if (scan->metric == QV_METRIC_IP)
        return -d;
    float denom = qn * xn;
    return denom > 0? -d / denom: 0.0f;
}

int
qv_blockscan_run (const qv_blockscan_t *scan, uint32_t from, uint32_t to, qv_topk_t **tops)
{
    pthread_once (&s_once, s_init);
    if (from >= to || scan->nq == 0)
        return 0;
    const qv_dist_kernels_t *kern = qv_dist_kernels ();
    int is_l2 = scan->metric == QV_METRIC_L2;
    int is_cos = scan->metric == QV_METRIC_COSINE;
    qv_dist_fn pair = is_l2? kern->l2sq: kern->ip;
    uint32_t dim = scan->dim, nq = scan->nq;
    uint32_t qb = nq < S_QUERIES? nq: S_QUERIES;

    float *dots = malloc ((size_t) qb * S_ROWS * sizeof (float));
    float *xsq = malloc (S_ROWS * sizeof (float));
    float *xinv = malloc (S_ROWS * sizeof (float));     //  COSINE: 1 / |x| (0 for 0)
    float *xn = malloc (S_ROWS * sizeof (float));       //  COSINE: |x|
    float *qsq = malloc ((size_t) nq * sizeof (float));
    float *qn = malloc ((size_t) nq * sizeof (float));
    if (!dots || !xsq || !xinv || !xn || !qsq || !qn) {
        free (dots); free (xsq); free (xinv); free (xn); free (qsq); free (qn);
        return qv_err (QV_ENOMEM, "out of memory for a blocked scan of %u queries", nq);
    }
    for (uint32_t q = 0; q < nq; q++) {
        const float *qv = scan->queries + (size_t) q * dim;
        qsq [q] = kern->ip (qv, qv, dim);
        qn [q] = is_cos && scan->qnorms? scan->qnorms [q]: sqrtf (qsq [q]);
    }
    //  COSINE scores are bounded by 1 in magnitude: the bound relative to |q| |x|, plus
    //  the rounding of the two reciprocals.
    float cos_slack = qv_blockscan_slack (dim, 0, 1, 1) + 8 * FLT_EPSILON;

    for (uint32_t r0 = from; r0 < to; r0 += S_ROWS) {
        uint32_t nb = to - r0 < S_ROWS? to - r0: S_ROWS;
        const float *block = scan->rows + (size_t) r0 * dim;
        float xsq_max = 0;
        for (uint32_t i = 0; i < nb; i++) {
            const float *x = block + (size_t) i * dim;
            xsq [i] = kern->ip (x, x, dim);
            if (xsq [i] > xsq_max)
                xsq_max = xsq [i];
            if (is_cos) {
                xn [i] = scan->rnorms? scan->rnorms [r0 + i]: sqrtf (xsq [i]);
                xinv [i] = xn [i] > 0? 1.0f / xn [i]: 0.0f;
            }
        }
        for (uint32_t q0 = 0; q0 < nq; q0 += qb) {
            uint32_t m = nq - q0 < qb? nq - q0: qb;
            cblas_sgemm (CblasRowMajor, CblasNoTrans, CblasTrans, (int) m, (int) nb, (int) dim,
                         1.0f, scan->queries + (size_t) q0 * dim, (int) dim, block, (int) dim,
                         0.0f, dots, (int) nb);
            for (uint32_t j = 0; j < m; j++) {
                uint32_t q = q0 + j;
                const float *dq = dots + (size_t) j * nb;
                qv_topk_t *top = tops [q];
                float thr = qv_topk_threshold (top);
                float slack = is_l2? qv_blockscan_slack (dim, 1, qsq [q], xsq_max)
                            : is_cos? cos_slack
                            : qv_blockscan_slack (dim, 0, qsq [q], xsq_max);
                float qinv = qn [q] > 0? 1.0f / qn [q]: 0.0f;
                for (uint32_t i = 0; i < nb; i++) {
                    //  The GEMM-form score, tested against the threshold widened by
                    //  the rounding bound
                    float approx = is_l2? qsq [q] + xsq [i] - 2 * dq [i]
                                 : is_cos? -dq [i] * qinv * xinv [i]
                                 : -dq [i];
                    if (!(approx - slack <= thr))
                        continue;
                    uint32_t row = r0 + i;
                    float s = s_exact (scan, pair, q, block + (size_t) i * dim, qn [q],
                                       is_cos? xn [i]: 0);
                    if (s <= thr && (!scan->keep || scan->keep (scan->keep_arg, row, s))) {
                        qv_topk_push (top, s, scan->id_base | row);
                        thr = qv_topk_threshold (top);
                    }
                }
            }
        }
    }
    free (dots); free (xsq); free (xinv); free (xn); free (qsq); free (qn);
    return 0;
}
