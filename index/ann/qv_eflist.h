//  Elias-Fano coded lists of node ids: how an HNSW index object stores its link
//  lists (qv_hnsw_store.c). A list of n ids below universe u, sorted, takes about
//  n (2 + log2 (u / n)) bits where 32 bits an id were stored before: the high part
//  of each id in unary (a bit set per id, at its high part plus its rank), the low
//  part (l bits, l = floor (log2 (u / n))) packed. 21 links among 700k nodes: 46
//  bytes where they took 88.
//
//  A list is a LEB128 count followed by ceil ((n l + n + (u - 1) >> l) / 8) bytes,
//  the low parts first, least significant bit first. Lists are decoded whole (the
//  walks read plain u32 lists), so no skip pointers.
#ifndef QV_EFLIST_H_INCLUDED
#define QV_EFLIST_H_INCLUDED

#include <stddef.h>
#include <stdint.h>

//  Bytes that qv_eflist_put writes for n ids below universe.
size_t
    qv_eflist_size (uint32_t n, uint32_t universe);

//  Writes the n ids of ids, sorted ascending (equal ids allowed), each below
//  universe, at out (qv_eflist_size bytes). Returns the bytes written.
size_t
    qv_eflist_put (uint8_t *out, const uint32_t *ids, uint32_t n, uint32_t universe);

//  Reads one list at in (avail bytes): its count into *n and, given ids (room for
//  max), its ids. Returns the bytes the list takes, or 0 when it is not a sound list
//  of at most max ids below universe (truncated, a count over max, an id out of
//  range, bits set past the list's). ids NULL: counts and checks only the length.
size_t
    qv_eflist_get (const uint8_t *in, size_t avail, uint32_t universe, uint32_t max,
                   uint32_t *ids, uint32_t *n);

#endif
