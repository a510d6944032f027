//  HNSW index (hierarchical navigable small world graph): the type behind
//  qv_index_new ("HNSW", ...); this header only adds tuning knobs beyond the vtable.
#ifndef QV_HNSW_H_INCLUDED
#define QV_HNSW_H_INCLUDED

#include "qv_index.h"

//  A filtered search whose allowed rows are estimated at no more than ef, or below
//  factor * sqrt (ef * rows), skips the graph and scans the allowed rows exactly.
//  (A walk costs about ef / selectivity node visits, a scan selectivity * rows: they
//  cross where allowed rows ~ sqrt (ef * rows) times a constant; the default constant
//  QV_HNSW_FILTER_EXACT_FACTOR is measured, see qv_hnsw.c.) 0 always walks, a huge
//  factor always scans. Not thread-safe against running searches.
//  Returns 0, or QV_EINVAL for a non-HNSW index or a negative or NaN factor.
#define QV_HNSW_FILTER_EXACT_FACTOR 3.0
int
    qv_hnsw_set_filter_exact_factor (qv_index_t *index, double factor);

//  The maximum level of the graph and the number of level-0 links in total, for tests
//  and benchmarks. Returns 0 or QV_EINVAL for a non-HNSW index.
int
    qv_hnsw_stats (const qv_index_t *index, int *max_level, uint64_t *links0);

#endif
