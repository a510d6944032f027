//  Bounded top-k collector: keeps the k best (smallest) scores seen, for every index
//  and exact scan, and merges per-segment or per-thread results.
#ifndef QV_TOPK_H_INCLUDED
#define QV_TOPK_H_INCLUDED

#include <stddef.h>
#include <stdint.h>

//  Scores are "smaller is better": callers negate similarities (IP, COSINE).
//  Equal scores are ordered by id (smaller id first), so results are deterministic.
//  NaN scores are never kept.
#define QV_TOPK_MAX 16384

typedef struct qv_topk_t qv_topk_t;

//  A collector for the k (1..QV_TOPK_MAX) best entries. NULL if k is out of range
//  (error recorded as QV_EINVAL) or on out-of-memory.
qv_topk_t *
    qv_topk_new (uint32_t k);

//  Destroys the collector and nulls *self_p; safe on NULL.
void
    qv_topk_destroy (qv_topk_t **self_p);

//  Empties the collector, keeping k.
void
    qv_topk_reset (qv_topk_t *self);

//  Empties the collector and sets its k (1..QV_TOPK_MAX), growing its storage if
//  needed, so one collector serves searches of any k. Returns 0, QV_EINVAL or
//  QV_ENOMEM (the collector is then unchanged).
int
    qv_topk_resize (qv_topk_t *self, uint32_t k);

//  Offers one entry. Returns 1 if it was kept, 0 if it was rejected.
int
    qv_topk_push (qv_topk_t *self, float score, int64_t id);

//  The worst score kept while the collector is full, else +INFINITY: an entry with a
//  score above it can be rejected without calling push.
float
    qv_topk_threshold (const qv_topk_t *self);

//  Number of entries kept (<= k), and k.
uint32_t
    qv_topk_size (const qv_topk_t *self);
uint32_t
    qv_topk_k (const qv_topk_t *self);

//  Writes the kept entries best first into ids [] and scores [] (either may be NULL),
//  which hold at least qv_topk_size () entries, and empties the collector.
//  Returns the number written.
uint32_t
    qv_topk_extract (qv_topk_t *self, int64_t *ids, float *scores);

//  Offers every entry of each of the n collectors in others [] to self; the others
//  are unchanged. Returns 0.
int
    qv_topk_merge (qv_topk_t *self, qv_topk_t *const *others, size_t n);

#endif
