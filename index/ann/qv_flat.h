//  FLAT index: exact search over the stored vectors, and the exact scan used on data
//  that has no index (a growing segment) or as the fallback of filtered searches.
#ifndef QV_FLAT_H_INCLUDED
#define QV_FLAT_H_INCLUDED

#include "qv_index.h"

//  Exact scan: pushes the rows of base (n rows of dim floats, row i has id i) that
//  params allows into topk, scored "smaller is better": squared L2 for QV_METRIC_L2,
//  the negated inner product for QV_METRIC_IP (normalise for COSINE beforehand).
//  Uses the batch kernel with prefetch; a sparse bitmap filter is walked instead of
//  scanning every row. Returns 0 or QV_EINVAL (metric not L2/IP).
int
    qv_flat_scan (const float *query, const float *base, uint32_t n, uint32_t dim,
                  qv_metric_t kernel_metric, const qv_search_params_t *params,
                  qv_topk_t *topk);

#endif
