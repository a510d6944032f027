//  The table of an HNSW graph's upper-level link lists (see s_upper_t in
//  qv_hnsw_impl.h): a bit per node, a count per 64 nodes, and the lists of the nodes
//  that have them, in id order, so that node id's lists are list [rank (id)].
#include "qv_hnsw_impl.h"

int
qv_hnsw_upper_reserve (s_upper_t *up, uint32_t nodes, uint32_t old)
{
    size_t words = ((size_t) nodes + 63) / 64, had = ((size_t) old + 63) / 64;
    if (words <= had && up->bits)
        return 0;
    uint64_t *bits = realloc (up->bits, words * sizeof *bits);
    if (!bits)
        return QV_ENOMEM;
    up->bits = bits;
    uint32_t *rank = realloc (up->rank, words * sizeof *rank);
    if (!rank)
        return QV_ENOMEM;
    up->rank = rank;
    memset (bits + had, 0, (words - had) * sizeof *bits);
    memset (rank + had, 0, (words - had) * sizeof *rank);
    return 0;
}

int
qv_hnsw_upper_append (s_upper_t *up, uint32_t id, uint32_t *list)
{
    if (id < up->next)
        return QV_EINVAL;           //  out of order: the ranks would be wrong
    if (up->count == up->cap) {
        uint32_t cap = up->cap? up->cap + up->cap / 2: 64;
        uint32_t **grown = realloc (up->list, (size_t) cap * sizeof *grown);
        if (!grown)
            return QV_ENOMEM;
        up->list = grown;
        up->cap = cap;
    }
    uint64_t *word = &up->bits [id >> 6];
    if (!*word)
        up->rank [id >> 6] = up->count;     //  every list before it is in earlier words
    *word |= 1ull << (id & 63);
    up->list [up->count++] = list;
    up->next = id + 1;
    return 0;
}

//  Whether list lies in the table's loaded block (freed with it, not by itself).
static int
s_in_block (const s_upper_t *up, const uint32_t *list)
{
    return up->block && list >= up->block && list < up->block + up->block_u32;
}

void
qv_hnsw_upper_free_index (s_upper_t *up)
{
    free (up->bits);
    free (up->rank);
    free (up->list);
    up->bits = NULL;
    up->rank = NULL;
    up->list = NULL;
    up->count = up->cap = up->next = 0;
}

void
qv_hnsw_upper_free (s_upper_t *up)
{
    for (uint32_t i = 0; i < up->count; i++)
        if (!s_in_block (up, up->list [i]))
            free (up->list [i]);
    free (up->block);
    up->block = NULL;
    up->block_u32 = 0;
    qv_hnsw_upper_free_index (up);
}

size_t
qv_hnsw_upper_bytes (const s_upper_t *up, uint32_t nodes)
{
    size_t words = ((size_t) nodes + 63) / 64;
    return words * (sizeof (uint64_t) + sizeof (uint32_t)) + (size_t) up->cap * sizeof (uint32_t *);
}

void
qv_hnsw_upper_truncate (s_upper_t *up, uint32_t first, uint32_t nodes)
{
    size_t words = ((size_t) nodes + 63) / 64;
    uint32_t removed = 0;
    for (size_t w = first >> 6; w < words && up->bits; w++) {
        uint64_t keep = w == (first >> 6)? (1ull << (first & 63)) - 1: 0;
        removed += (uint32_t) __builtin_popcountll (up->bits [w] & ~keep);
        up->bits [w] &= keep;
    }
    while (removed-- && up->count) {
        uint32_t *list = up->list [--up->count];
        if (!s_in_block (up, list))
            free (list);
    }
    if (up->next > first)
        up->next = first;
}
