//  Primary-key index of a collection: key -> (segment, row) of its one live row.
#ifndef QV_PKINDEX_H_INCLUDED
#define QV_PKINDEX_H_INCLUDED

#include <stddef.h>
#include <stdint.h>

typedef struct _qv_pkindex_t qv_pkindex_t;

//  Where a live row is: an opaque segment pointer (owned elsewhere) and a row number.
typedef struct {
    void *seg;
    uint32_t row;
} qv_pkloc_t;

//  Compares a stored location's key with a varchar key (for hash collisions).
typedef int (qv_pk_equal_fn) (void *arg, qv_pkloc_t loc, const void *key, size_t len);

qv_pkindex_t *
    qv_pkindex_new (qv_pk_equal_fn *equal, void *arg);
void
    qv_pkindex_destroy (qv_pkindex_t **self_p);

//  The 64-bit key of a varchar primary key (int64 keys are their own value).
uint64_t
    qv_pkindex_hash (const void *key, size_t len);

//  Looks up a key: an int64 key (str NULL) or a varchar key (str, len, with
//  h = qv_pkindex_hash). Returns 1 and *loc if present, 0 if not.
int
    qv_pkindex_find (qv_pkindex_t *self, uint64_t h, const void *str, size_t len, qv_pkloc_t *loc);

//  Sets the location of a key (replacing any). Returns 0 or QV_ENOMEM.
int
    qv_pkindex_put (qv_pkindex_t *self, uint64_t h, const void *str, size_t len, qv_pkloc_t loc);

//  Makes room for n keys in all (a count known ahead, as when a restart loads the
//  segments), so that they are added without growing the table step by step and it
//  is sized for them. Returns 0 or QV_ENOMEM.
int
    qv_pkindex_reserve (qv_pkindex_t *self, size_t n);

//  Removes a key; returns 1 if it was present.
int
    qv_pkindex_remove (qv_pkindex_t *self, uint64_t h, const void *str, size_t len);

//  Number of keys held, and bytes used.
size_t
    qv_pkindex_size (qv_pkindex_t *self);
size_t
    qv_pkindex_bytes (qv_pkindex_t *self);

#endif
