//  Bounded top-k collector: a max-heap of the k best entries, worst on top.
#include "qv_topk.h"
#include "qv_rc.h"

#include <math.h>
#include <stdlib.h>

typedef struct {
    float score;
    int64_t id;
} s_entry_t;

struct qv_topk_t {
    uint32_t k;                 //  capacity
    uint32_t size;              //  entries kept
    uint32_t capacity;          //  entries heap can hold (>= k)
    s_entry_t *heap;            //  max-heap by (score, id): heap [0] is the worst kept
};

//  Whether a ranks after b (is worse).
static inline int
s_worse (const s_entry_t *a, const s_entry_t *b)
{
    return a->score > b->score || (a->score == b->score && a->id > b->id);
}

static void
s_sift_down (s_entry_t *heap, uint32_t size, uint32_t at)
{
    s_entry_t item = heap [at];
    while (1) {
        uint32_t child = 2 * at + 1;
        if (child >= size)
            break;
        if (child + 1 < size && s_worse (&heap [child + 1], &heap [child]))
            child++;
        if (!s_worse (&heap [child], &item))
            break;
        heap [at] = heap [child];
        at = child;
    }
    heap [at] = item;
}

static void
s_sift_up (s_entry_t *heap, uint32_t at)
{
    s_entry_t item = heap [at];
    while (at > 0) {
        uint32_t parent = (at - 1) / 2;
        if (!s_worse (&item, &heap [parent]))
            break;
        heap [at] = heap [parent];
        at = parent;
    }
    heap [at] = item;
}

qv_topk_t *
qv_topk_new (uint32_t k)
{
    if (k == 0 || k > QV_TOPK_MAX) {
        qv_err (QV_EINVAL, "top-k %u out of range 1..%u", k, QV_TOPK_MAX);
        return NULL;
    }
    qv_topk_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    self->heap = malloc ((size_t) k * sizeof (s_entry_t));
    if (!self->heap) {
        free (self);
        return NULL;
    }
    self->k = k;
    self->capacity = k;
    return self;
}

void
qv_topk_destroy (qv_topk_t **self_p)
{
    if (self_p && *self_p) {
        free ((*self_p)->heap);
        free (*self_p);
        *self_p = NULL;
    }
}

void
qv_topk_reset (qv_topk_t *self)
{
    self->size = 0;
}

int
qv_topk_resize (qv_topk_t *self, uint32_t k)
{
    if (k == 0 || k > QV_TOPK_MAX)
        return qv_err (QV_EINVAL, "top-k %u out of range 1..%u", k, QV_TOPK_MAX);
    if (k > self->capacity) {
        s_entry_t *heap = realloc (self->heap, (size_t) k * sizeof (s_entry_t));
        if (!heap)
            return qv_err (QV_ENOMEM, "out of memory for top-%u", k);
        self->heap = heap;
        self->capacity = k;
    }
    self->k = k;
    self->size = 0;
    return 0;
}

int
qv_topk_push (qv_topk_t *self, float score, int64_t id)
{
    if (isnan (score))
        return 0;
    s_entry_t e = { score, id };
    if (self->size < self->k) {
        self->heap [self->size] = e;
        s_sift_up (self->heap, self->size++);
        return 1;
    }
    if (!s_worse (&self->heap [0], &e))
        return 0;
    self->heap [0] = e;
    s_sift_down (self->heap, self->size, 0);
    return 1;
}

float
qv_topk_threshold (const qv_topk_t *self)
{
    return self->size < self->k? INFINITY: self->heap [0].score;
}

uint32_t
qv_topk_size (const qv_topk_t *self)
{
    return self->size;
}

uint32_t
qv_topk_k (const qv_topk_t *self)
{
    return self->k;
}

uint32_t
qv_topk_extract (qv_topk_t *self, int64_t *ids, float *scores)
{
    //  Heap sort in place: repeatedly move the worst to the end
    uint32_t n = self->size;
    for (uint32_t end = n; end > 1; end--) {
        s_entry_t worst = self->heap [0];
        self->heap [0] = self->heap [end - 1];
        self->heap [end - 1] = worst;
        s_sift_down (self->heap, end - 1, 0);
    }
    for (uint32_t i = 0; i < n; i++) {
        if (ids)
            ids [i] = self->heap [i].id;
        if (scores)
            scores [i] = self->heap [i].score;
    }
    self->size = 0;
    return n;
}

int
qv_topk_merge (qv_topk_t *self, qv_topk_t *const *others, size_t n)
{
    for (size_t o = 0; o < n; o++) {
        const qv_topk_t *other = others [o];
        if (!other || other == self)
            continue;
        for (uint32_t i = 0; i < other->size; i++)
            qv_topk_push (self, other->heap [i].score, other->heap [i].id);
    }
    return 0;
}
