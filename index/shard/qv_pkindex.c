//  Primary-key index: open addressing with linear probing over 64-bit keys; varchar keys
//  are hashed and collisions resolved by comparing the stored row's key.
#include "qv_pkindex.h"
#include "qv_rc.h"

#include <stdlib.h>
#include <string.h>

//  A slot is 16 bytes: the key, the segment as a number in the index's own segment
//  table, and the row (24 bytes with the segment's pointer: a third of the index's
//  memory, 16 MB a million keys). Segment numbers 0 and 1 mark empty and removed slots.
#define S_EMPTY 0
#define S_TOMB 1
#define S_SEG0 2                    //  the first segment's number

typedef struct {
    uint64_t key;
    uint32_t seg;                   //  S_EMPTY, S_TOMB, or S_SEG0 + place in segs []
    uint32_t row;
} s_slot_t;

//  Segment pointers by number, and numbers by pointer (open addressing over numbers,
//  0 empty). Rebuilt from the live slots when the slots are, so segments that hold no
//  live key any more (compacted, dropped) are forgotten.
typedef struct {
    void **segs;
    uint32_t n, cap;
    uint32_t *by_ptr;               //  by_cap entries: 0, or S_SEG0 + place
    uint32_t by_cap;                //  power of two, at least 2 * cap
    void *last;                     //  the segment of the last put, and its number
    uint32_t last_no;
} s_segs_t;

struct _qv_pkindex_t {
    s_slot_t *slots;
    size_t cap;                     //  power of two
    size_t used;                    //  live + tombstones
    size_t live;
    s_segs_t segs;
    qv_pk_equal_fn *equal;
    void *arg;
};

static inline size_t
s_ptr_home (const s_segs_t *t, const void *seg)
{
    uint64_t h = (uint64_t) (uintptr_t) seg * 0x9e3779b97f4a7c15ull;
    return (size_t) (h >> 32) & (t->by_cap - 1);
}

static void
s_segs_free (s_segs_t *t)
{
    free (t->segs);
    free (t->by_ptr);
    memset (t, 0, sizeof *t);
}

//  The number of seg in t, added if new; 0 on out of memory.
static uint32_t
s_seg_no (s_segs_t *t, void *seg)
{
    if (seg == t->last && t->last_no)
        return t->last_no;
    size_t i = t->by_cap ? s_ptr_home (t, seg) : 0;
    for (; t->by_cap && t->by_ptr [i]; i = (i + 1) & (t->by_cap - 1))
        if (t->segs [t->by_ptr [i] - S_SEG0] == seg) {
            t->last = seg;
            t->last_no = t->by_ptr [i];
            return t->last_no;
        }
    if (t->n == t->cap) {
        if (t->cap >= UINT32_MAX / 4)
            return 0;
        uint32_t cap = t->cap ? t->cap * 2 : 16;
        void **segs = realloc (t->segs, cap * sizeof *segs);
        uint32_t *by_ptr = calloc ((size_t) cap * 2, sizeof *by_ptr);
        if (!segs || !by_ptr) {
            if (segs)
                t->segs = segs;
            free (by_ptr);
            return 0;
        }
        t->segs = segs;
        t->cap = cap;
        free (t->by_ptr);
        t->by_ptr = by_ptr;
        t->by_cap = cap * 2;
        for (uint32_t k = 0; k < t->n; k++) {
            size_t j = s_ptr_home (t, t->segs [k]);
            while (t->by_ptr [j])
                j = (j + 1) & (t->by_cap - 1);
            t->by_ptr [j] = S_SEG0 + k;
        }
        i = s_ptr_home (t, seg);
        while (t->by_ptr [i])
            i = (i + 1) & (t->by_cap - 1);
    }
    t->segs [t->n] = seg;
    t->by_ptr [i] = S_SEG0 + t->n++;
    t->last = seg;
    t->last_no = t->by_ptr [i];
    return t->last_no;
}

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
        s_segs_free (&(*self_p)->segs);
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
s_home_in (size_t cap, uint64_t key)
{
    uint64_t h = key * 0x9e3779b97f4a7c15ull;
    return (size_t) (h >> 17) & (cap - 1);
}

static inline size_t
s_home (const qv_pkindex_t *self, uint64_t key)
{
    return s_home_in (self->cap, key);
}

static inline int
s_match (qv_pkindex_t *self, const s_slot_t *s, uint64_t h, const void *str, size_t len)
{
    if (s->key != h)
        return 0;
    if (!str)
        return 1;
    qv_pkloc_t loc = { self->segs.segs [s->seg - S_SEG0], s->row };
    return self->equal (self->arg, loc, str, len);
}

static s_slot_t *
s_lookup (qv_pkindex_t *self, uint64_t h, const void *str, size_t len)
{
    for (size_t i = s_home (self, h), n = 0; n < self->cap; i = (i + 1) & (self->cap - 1), n++) {
        s_slot_t *s = &self->slots [i];
        if (s->seg == S_EMPTY)
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
    loc->seg = self->segs.segs [s->seg - S_SEG0];
    loc->row = s->row;
    return 1;
}

//  Rehashes into a table of cap slots, without tombstones; renumbers the segments
//  that still hold live keys.
static int
s_rehash (qv_pkindex_t *self, size_t cap)
{
    s_slot_t *slots = calloc (cap, sizeof (s_slot_t));
    s_segs_t segs = { 0 };
    if (!slots)
        goto failed;
    for (size_t i = 0; i < self->cap; i++) {
        s_slot_t s = self->slots [i];
        if (s.seg < S_SEG0)
            continue;
        s.seg = s_seg_no (&segs, self->segs.segs [s.seg - S_SEG0]);
        if (!s.seg)
            goto failed;
        size_t j = s_home_in (cap, s.key);
        while (slots [j].seg != S_EMPTY)
            j = (j + 1) & (cap - 1);
        slots [j] = s;
    }
    free (self->slots);
    s_segs_free (&self->segs);
    self->slots = slots;
    self->segs = segs;
    self->cap = cap;
    self->used = self->live;
    return 0;
failed:
    free (slots);
    s_segs_free (&segs);
    return qv_err (QV_ENOMEM, "out of memory growing the primary-key index");
}

int
qv_pkindex_put (qv_pkindex_t *self, uint64_t h, const void *str, size_t len, qv_pkloc_t loc)
{
    //  Rehash when a new key would pass 70% full, or when most segment numbers belong
    //  to segments without a live key (keys moved on by upserts, flush after flush)
    //  (twice as large when a quarter of it is live, else the same size)
    int rc = 0;
    if ((self->used + 1) * 10 > self->cap * 7)
        rc = s_rehash (self, self->live * 4 > self->cap ? self->cap * 2 : self->cap);
    else
    if (self->segs.n > self->live + 1024)
        rc = s_rehash (self, self->cap);
    if (rc)
        return rc;
    uint32_t no = s_seg_no (&self->segs, loc.seg);
    if (!no)
        return qv_err (QV_ENOMEM, "out of memory growing the primary-key index");
    s_slot_t *s = s_lookup (self, h, str, len);
    if (s) {
        s->seg = no;
        s->row = loc.row;
        return 0;
    }
    size_t i = s_home (self, h);
    while (self->slots [i].seg >= S_SEG0)
        i = (i + 1) & (self->cap - 1);
    if (self->slots [i].seg == S_EMPTY)
        self->used++;
    self->slots [i].key = h;
    self->slots [i].seg = no;
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
    return self->cap * sizeof (s_slot_t) + self->segs.cap * sizeof (void *)
         + self->segs.by_cap * sizeof (uint32_t);
}
