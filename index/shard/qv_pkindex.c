//  Primary-key index: open addressing with linear probing over 64-bit keys; varchar keys
//  are hashed and collisions resolved by comparing the stored row's key.
#include "qv_pkindex.h"
#include "qv_rc.h"

#include <stdlib.h>
#include <string.h>

#define S_TOMB ((void *) 1)

typedef struct {
    uint64_t key;
    void *seg;                      //  NULL: empty slot; S_TOMB: removed
    uint32_t row;
} s_slot_t;

struct _qv_pkindex_t {
    s_slot_t *slots;
    size_t cap;                     //  power of two
    size_t used;                    //  live + tombstones
    size_t live;
    qv_pk_equal_fn *equal;
    void *arg;
};

qv_pkindex_t *
qv_pkindex_new (qv_pk_equal_fn *equal, void *arg)
{
    qv_pkindex_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    self->cap = 1024;
    self->slots = calloc (self->cap, sizeof (s_slot_t));
    if (!self->slots) {
        free (self);
        return NULL;
    }
    self->equal = equal;
    self->arg = arg;
    return self;
}

void
qv_pkindex_destroy (qv_pkindex_t **self_p)
{
    if (*self_p) {
        free ((*self_p)->slots);
        free (*self_p);
        *self_p = NULL;
    }
}

uint64_t
qv_pkindex_hash (const void *key, size_t len)
{
    //  FNV-1a then a murmur finaliser to spread the bits over the table.
    const uint8_t *p = key;
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < len; i++)
        h = (h ^ p [i]) * 0x100000001b3ull;
    h ^= h >> 33; h *= 0xff51afd7ed558ccdull; h ^= h >> 33;
    return h;
}

static inline size_t
s_home (const qv_pkindex_t *self, uint64_t key)
{
    uint64_t h = key * 0x9e3779b97f4a7c15ull;
    return (size_t) (h >> 17) & (self->cap - 1);
}

static inline int
s_match (qv_pkindex_t *self, const s_slot_t *s, uint64_t h, const void *str, size_t len)
{
    if (s->key != h)
        return 0;
    if (!str)
        return 1;
    qv_pkloc_t loc = { s->seg, s->row };
    return self->equal (self->arg, loc, str, len);
}

static s_slot_t *
s_lookup (qv_pkindex_t *self, uint64_t h, const void *str, size_t len)
{
    for (size_t i = s_home (self, h), n = 0; n < self->cap; i = (i + 1) & (self->cap - 1), n++) {
        s_slot_t *s = &self->slots [i];
        if (s->seg == NULL)
            return NULL;
        if (s->seg != S_TOMB && s_match (self, s, h, str, len))
            return s;
    }
    return NULL;
}

int
qv_pkindex_find (qv_pkindex_t *self, uint64_t h, const void *str, size_t len, qv_pkloc_t *loc)
{
    s_slot_t *s = s_lookup (self, h, str, len);
    if (!s)
        return 0;
    loc->seg = s->seg;
    loc->row = s->row;
    return 1;
}

static int
s_grow (qv_pkindex_t *self)
{
    size_t cap = self->live * 4 > self->cap ? self->cap * 2 : self->cap;
    s_slot_t *old = self->slots;
    size_t old_cap = self->cap;
    s_slot_t *slots = calloc (cap, sizeof (s_slot_t));
    if (!slots)
        return qv_err (QV_ENOMEM, "out of memory growing the primary-key index");
    self->slots = slots;
    self->cap = cap;
    self->used = self->live;
    for (size_t i = 0; i < old_cap; i++)
        if (old [i].seg && old [i].seg != S_TOMB) {
            size_t j = s_home (self, old [i].key);
            while (slots [j].seg)
                j = (j + 1) & (cap - 1);
            slots [j] = old [i];
        }
    free (old);
    return 0;
}

int
qv_pkindex_put (qv_pkindex_t *self, uint64_t h, const void *str, size_t len, qv_pkloc_t loc)
{
    s_slot_t *s = s_lookup (self, h, str, len);
    if (s) {
        s->seg = loc.seg;
        s->row = loc.row;
        return 0;
    }
    if ((self->used + 1) * 10 > self->cap * 7) {
        int rc = s_grow (self);
        if (rc)
            return rc;
    }
    size_t i = s_home (self, h);
    while (self->slots [i].seg && self->slots [i].seg != S_TOMB)
        i = (i + 1) & (self->cap - 1);
    if (self->slots [i].seg == NULL)
        self->used++;
    self->slots [i].key = h;
    self->slots [i].seg = loc.seg;
    self->slots [i].row = loc.row;
    self->live++;
    return 0;
}

int
qv_pkindex_remove (qv_pkindex_t *self, uint64_t h, const void *str, size_t len)
{
    s_slot_t *s = s_lookup (self, h, str, len);
    if (!s)
        return 0;
    s->seg = S_TOMB;
    self->live--;
    return 1;
}

size_t
qv_pkindex_size (qv_pkindex_t *self)
{
    return self->live;
}

size_t
qv_pkindex_bytes (qv_pkindex_t *self)
{
    return self->cap * sizeof (s_slot_t);
}
