//  IVF indexes (IVF_FLAT, IVF_SQ8, IVF_PQ): a coarse k-means quantizer and inverted lists, behind qv_index.h.
#ifndef QV_IVF_H_INCLUDED
#define QV_IVF_H_INCLUDED

#include "qv_index.h"

//  The three types are reached through qv_index_new ("IVF_FLAT" | "IVF_SQ8" | "IVF_PQ").
//
//  Build parameters (qv_index_params_t): nlist lists (training needs at least nlist
//  rows, and 256 for IVF_PQ); IVF_PQ: pq_m sub-quantizers (dim % pq_m == 0), pq_nbits
//  must be 8; threads for k-means assignment (0 = one per core); seed.
//
//  Search parameters (qv_search_params_t): nprobe lists probed (0 = 16, capped at
//  nlist). IVF_SQ8 and IVF_PQ rank the probed rows by their codes, then re-rank the
//  best `ef` of them with exact float distances: ef = 0 means k * QV_IVF_REFINE_DEFAULT,
//  and ef is raised to k. A filter that leaves fewer rows than the probed lists hold
//  is answered by an exact scan of the allowed rows, which is both cheaper and exact.

#define QV_IVF_REFINE_DEFAULT 8

//  Bytes of the per-row codes the index searches: count * dim * 4 for IVF_FLAT,
//  count * dim for IVF_SQ8, count * pq_m for IVF_PQ; 0 for other index types.
//  qv_index_memory_bytes () is everything held: codes, the float copy kept for
//  re-ranking (qv_index_vector_bytes ()), row ids, centroids and codebooks.
size_t
    qv_ivf_code_bytes (const qv_index_t *index);

#endif
