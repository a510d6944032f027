//  C interface to hnswlib (Debian's libhnswlib-dev headers), the peer that qvann
//  measures Quiver's HNSW against. Built only with -DQV_PEERS=ON.
#ifndef QV_PEER_HNSWLIB_H_INCLUDED
#define QV_PEER_HNSWLIB_H_INCLUDED

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct qv_peer_hnswlib_t qv_peer_hnswlib_t;

//  An empty hnswlib HierarchicalNSW<float> for up to n vectors; space 0 = L2, 1 = inner
//  product, 2 = cosine (hnswlib's inner-product space over vectors normalized on the way
//  in, as hnswlib expects; queries are not normalized, which leaves their ranking
//  unchanged). NULL on failure.
qv_peer_hnswlib_t *
    qv_peer_hnswlib_new (uint32_t dim, uint32_t n, uint32_t M, uint32_t ef_construction, int space);

//  Adds n vectors with labels 0..n-1 on threads threads (the first one alone, then an
//  atomic counter, as hnswlib's Python binding does). Returns 0 or -1.
int
    qv_peer_hnswlib_build (qv_peer_hnswlib_t *self, const float *base, uint32_t n, int threads);

//  Sets ef for the searches that follow (not while searches run).
void
    qv_peer_hnswlib_set_ef (qv_peer_hnswlib_t *self, uint32_t ef);

//  k nearest labels of query, best first, into ids; returns how many.
int
    qv_peer_hnswlib_search (const qv_peer_hnswlib_t *self, const float *query, uint32_t k, uint32_t *ids);

void
    qv_peer_hnswlib_destroy (qv_peer_hnswlib_t **self_p);

#ifdef __cplusplus
}
#endif

#endif
