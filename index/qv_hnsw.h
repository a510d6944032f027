//  HNSW index (hierarchical navigable small world graph): the type behind
//  qv_index_new ("HNSW", ...); this header only adds tuning knobs beyond the vtable.
#ifndef QV_HNSW_H_INCLUDED
#define QV_HNSW_H_INCLUDED

#include "qv_index.h"

//  Filtered searches whose allowed rows are estimated below fraction * row count (or
//  below ef) skip the graph and scan the allowed rows exactly. The default is
//  QV_HNSW_FILTER_EXACT_FRACTION (measured; see qv_hnsw.c). Not thread-safe against
//  running searches. Returns 0, or QV_EINVAL for a non-HNSW index or a fraction
//  outside [0, 1].
#define QV_HNSW_FILTER_EXACT_FRACTION 0.02
int
    qv_hnsw_set_filter_exact_fraction (qv_index_t *index, double fraction);

//  The maximum level of the graph and the number of level-0 links in total, for tests
//  and benchmarks. Returns 0 or QV_EINVAL for a non-HNSW index.
int
    qv_hnsw_stats (const qv_index_t *index, int *max_level, uint64_t *links0);

#endif
