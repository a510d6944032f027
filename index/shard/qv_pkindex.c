//  Primary-key index: Robin Hood open addressing over 64-bit keys in a table of any
//  size, filled to 90% before it grows by half; varchar keys are hashed and collisions
//  resolved by comparing the stored row's key.
#include "qv_pkindex.h"
#include "qv_rc.h"

#include <stdlib.h>
#include <string.h>

//  A slot is 16 bytes: the key, the segment as a number in the index's own segment
//  table, and the row (24 bytes with the segment's pointer: a third of the index's
//  memory, 16 MB a million keys). Segment number 0 marks an empty slot; a removed
//  key's slot is refilled by shifting its followers back (no tombstones).
#define S_EMPTY 0
#define S_SEG0 1                    //  the first segment's number

//  The table is filled to at most 9/10 of its slots, grows by half, and is sized for
//  a known count at 1/0.85 of it (room for 6% more before the first growth): 16 bytes
//  a key / 0.6-0.9, 18.8 MB a million keys when sized for them (33.6 MB at 48% load
//  in the power-of-two table before).
#define S_CAP_MIN 1024
#define S_FULL_NUM 9
#define S_FULL_DEN 10
#define S_SIZED_NUM 20
#define S_SIZED_DEN 17

typedef struct {
    uint64_t key;
    uint32_t seg;                   //  S_EMPTY, or S_SEG0 + place in segs []
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
    size_t cap;                     //  any size, at least S_CAP_MIN
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
    self->cap = S_CAP_MIN;
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

//  A key's home slot in a table of cap slots: the key times the golden ratio (every
//  bit of the key reaches the product's high bits; consecutive keys land far apart and
//  evenly), mapped onto [0, cap) by its high bits (Lemire's fastrange) instead of a
//  power-of-two mask. One multiply more per slot than a mask: the walks compute it for
//  every slot they pass.
static inline size_t
s_home_in (size_t cap, uint64_t key)
{
    uint64_t h = key * 0x9e3779b97f4a7c15ull;
    return (size_t) (((unsigned __int128) h * cap) >> 64);
}

//  How far slot i is from the home of the key it holds.
static inline size_t
s_dist (const qv_pkindex_t *self, size_t i)
{
    size_t home = s_home_in (self->cap, self->slots [i].key);
    return i >= home ? i - home : i + self->cap - home;
}

static inline size_t
s_next (const qv_pkindex_t *self, size_t i)
{
    return ++i == self->cap ? 0 : i;
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

//  The slot of a key, or NULL. A key sits no nearer its home than a key met on the
//  way that is farther from its own (Robin Hood), so the walk stops at the first
//  slot that is empty or nearer its home than the walk has come.
static s_slot_t *
s_lookup (qv_pkindex_t *self, uint64_t h, const void *str, size_t len)
{
    for (size_t i = s_home_in (self->cap, h), d = 0; d < self->cap; i = s_next (self, i), d++) {
        s_slot_t *s = &self->slots [i];
        if (s->seg == S_EMPTY)
            return NULL;
        if (s_match (self, s, h, str, len))
            return s;
        if (s_dist (self, i) < d)
            return NULL;
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

//  Places a slot of a key not in the table (which has an empty slot): where a key
//  nearer its home sits, the new one takes its place and that key walks on.
static void
s_insert (qv_pkindex_t *self, s_slot_t s)
{
    size_t i = s_home_in (self->cap, s.key), d = 0;
    while (self->slots [i].seg != S_EMPTY) {
        size_t di = s_dist (self, i);
        if (di < d) {
            s_slot_t t = self->slots [i];
            self->slots [i] = s;
            s = t;
            d = di;
        }
        i = s_next (self, i);
        d++;
    }
    self->slots [i] = s;
}

//  Rehashes into a table of cap slots; renumbers the segments that still hold live
//  keys.
static int
s_rehash (qv_pkindex_t *self, size_t cap)
{
    s_slot_t *slots = calloc (cap, sizeof (s_slot_t));
    s_segs_t segs = { 0 };
    if (!slots)
        goto failed;
    s_slot_t *old = self->slots;
    size_t old_cap = self->cap;
    self->slots = slots;
    self->cap = cap;
    for (size_t i = 0; i < old_cap; i++) {
        s_slot_t s = old [i];
        if (s.seg == S_EMPTY)
            continue;
        s.seg = s_seg_no (&segs, self->segs.segs [s.seg - S_SEG0]);
        if (!s.seg) {
            self->slots = old;
            self->cap = old_cap;
            goto failed;
        }
        s_insert (self, s);
    }
    free (old);
    s_segs_free (&self->segs);
    self->segs = segs;
    return 0;
failed:
    free (slots);
    s_segs_free (&segs);
    return qv_err (QV_ENOMEM, "out of memory growing the primary-key index");
}

//  The table size for n keys when n is known (a restart, a rebuild).
static size_t
s_sized_cap (size_t n)
{
    size_t cap = n / S_SIZED_DEN * S_SIZED_NUM + (n % S_SIZED_DEN) * S_SIZED_NUM / S_SIZED_DEN + 1;
    return cap < S_CAP_MIN ? S_CAP_MIN : cap;
}

int
qv_pkindex_reserve (qv_pkindex_t *self, size_t n)
{
    size_t cap = s_sized_cap (n);
    return cap > self->cap ? s_rehash (self, cap) : 0;
}

int
qv_pkindex_put (qv_pkindex_t *self, uint64_t h, const void *str, size_t len, qv_pkloc_t loc)
{
    //  Rehash when a new key would pass 90% full (half as large again), or when most
    //  segment numbers belong to segments without a live key (keys moved on by
    //  upserts, flush after flush; the same size)
    int rc = 0;
    if ((self->live + 1) * S_FULL_DEN > self->cap * S_FULL_NUM)
        rc = s_rehash (self, self->cap + self->cap / 2);
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
    s_insert (self, (s_slot_t) { h, no, loc.row });
    self->live++;
    return 0;
}

int
qv_pkindex_remove (qv_pkindex_t *self, uint64_t h, const void *str, size_t len)
{
    s_slot_t *s = s_lookup (self, h, str, len);
    if (!s)
        return 0;
    //  Shift the keys after it that are not at their home back by one
    size_t i = (size_t) (s - self->slots);
    for (size_t j = s_next (self, i); self->slots [j].seg != S_EMPTY && s_dist (self, j) > 0;
         i = j, j = s_next (self, j))
        self->slots [i] = self->slots [j];
    self->slots [i].seg = S_EMPTY;
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
