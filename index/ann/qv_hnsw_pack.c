//  Packed level-0 link lists. An HNSW index on borrowed vectors takes no adds once it
//  is built or loaded (qv_index.c), so its level-0 lists need no room to grow: each
//  node's [count, links] follows the previous node's, found through an offset per
//  node, where a record held room for all M0 links. Graphs fill about two thirds of
//  that room (1M uniform 128-d rows at M 16, efConstruction 100: 20.8 links of 32 on
//  average), so a node takes 4 + 4 + 83 bytes where its record took 132: about 40 MB
//  less per 1M nodes in memory. The index object stores them coded (qv_hnsw_code.c),
//  smaller still; objects written before that hold them packed as here (record
//  bytes 0: qv_hnsw_store.c) and still load.
//
//  The walks read the lists through s_links whichever way they are kept, in the same
//  [count, links] form. QV_HNSW_PACK=0 in the environment keeps the records (to
//  compare the two). HNSW_SQ8 keeps its records (its codes sit beside the links,
//  one fetch for both), as does an index that holds its own vectors.
#include "qv_hnsw_impl.h"
#include "qv_eflist.h"
#include "qv_hugemem.h"

#include <string.h>

static int
s_cmp_u32 (const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *) a, y = *(const uint32_t *) b;
    return x < y? -1: x > y;
}

void
qv_hnsw_sort_links (uint32_t *ids, uint32_t n)
{
    if (n > 64) {
        qsort (ids, n, sizeof *ids, s_cmp_u32);
        return;
    }
    for (uint32_t i = 1; i < n; i++) {
        uint32_t v = ids [i], j = i;
        while (j > 0 && ids [j - 1] > v) {
            ids [j] = ids [j - 1];
            j--;
        }
        ids [j] = v;
    }
}

//  Whether h's lists may be packed: links-only records, no more adds.
static int
s_packable (const s_hnsw_t *h)
{
    return h->borrowed && !h->sq8 && h->link_off == 0;
}

void
qv_hnsw_pack_install (s_hnsw_t *h, uint32_t *l0, uint32_t *off, size_t l0_u32, uint32_t count)
{
    free (h->arena);
    h->arena = NULL;
    h->l0 = l0;
    h->l0off = off;
    h->l0_u32 = l0_u32;
    h->l0_nodes = count;
}

void
qv_hnsw_pack (s_hnsw_t *h, uint32_t count)
{
    const char *env = getenv ("QV_HNSW_PACK");
    if (h->l0 || !h->arena || !s_packable (h) || (env && strcmp (env, "0") == 0))
        return;
    //  In place: a list never moves up, since each packed list is at most its record
    //  (1 + M0 u32), so the arena shrinks with no second copy held beside it
    uint32_t *a = (uint32_t *) (void *) h->arena;
    size_t slot = 1 + (size_t) h->M0;
    if ((uint64_t) count * slot > UINT32_MAX)
        return;                     //  offsets are u32: the records stay
    uint32_t *off = malloc ((size_t) (count? count: 1) * sizeof (uint32_t));
    if (!off)
        return;                     //  packing saves memory; the records serve as well
    size_t at = 0;
    for (uint32_t i = 0; i < count; i++) {
        const uint32_t *ll = a + (size_t) i * slot;
        size_t n = 1 + (size_t) ll [0];
        off [i] = (uint32_t) at;
        memmove (a + at, ll, n * sizeof (uint32_t));
        qv_hnsw_sort_links (a + at + 1, a [at]);
        at += n;
    }
    for (uint32_t i = 0; i < count; i++)
        for (int l = 1; l <= h->levels [i]; l++) {
            uint32_t *ul = s_upper (h, i) + (size_t) (l - 1) * (1 + h->M);
            qv_hnsw_sort_links (ul + 1, ul [0]);
        }
    //  Shrinking gives the tail back (an mmapped block is remapped smaller); were the
    //  allocator to refuse, the block stays whole and serves as it is
    uint32_t *l0 = realloc (a, (at? at: 1) * sizeof (uint32_t));
    h->arena = NULL;                //  moved or shrunk: a, not the arena, any more
    qv_hnsw_pack_install (h, l0? l0: a, off, at, count);
}

int
qv_hnsw_load_packed (s_hnsw_t *h, uint32_t count, const uint8_t *lists, size_t l0_u32,
                     uint8_t *own)
{
    if (!s_packable (h))
        return qv_err (QV_ECORRUPT, "HNSW packed link lists in an index that keeps records");
    if (l0_u32 < count || l0_u32 > UINT32_MAX)
        return qv_err (QV_ECORRUPT, "HNSW packed link lists: %zu words for %u nodes",
                       l0_u32, count);
    uint32_t *off = malloc ((size_t) (count? count: 1) * sizeof (uint32_t));
    if (!off)
        return qv_err (QV_ENOMEM, "out of memory loading HNSW link lists");
    size_t at = 0;
    for (uint32_t i = 0; i < count; i++) {
        //  Room for the count and its links, no more than M0 of them (each link is
        //  checked against the nodes by the caller, s_list_ok)
        uint32_t n = at < l0_u32? qv_le_get32 (lists + at * sizeof (uint32_t)): 0;
        if (at >= l0_u32 || n > h->M0 || n >= l0_u32 - at) {
            free (off);
            return qv_err (QV_ECORRUPT, "HNSW packed link list of node %u overruns its section", i);
        }
        off [i] = (uint32_t) at;
        at += 1 + (size_t) n;
    }
    if (at != l0_u32) {
        free (off);
        return qv_err (QV_ECORRUPT, "HNSW packed link lists end %zu words before their section",
                       l0_u32 - at);
    }
    //  The object's own buffer, when handed over, becomes the lists: moved to its
    //  front (nothing after them is overwritten: they move down), no second copy.
    //  A buffer freed here would stay in the loading thread's malloc arena, resident
    //  (glibc gives back the top of a thread's heap only past its trim threshold)
    uint32_t *l0;
    if (own && lists >= own) {
        memmove (own, lists, l0_u32 * sizeof (uint32_t));
        l0 = (uint32_t *) (void *) own;
    }
    else {
        l0 = qv_hugemem_alloc ((l0_u32? l0_u32: 1) * sizeof (uint32_t));
        if (!l0) {
            free (off);
            return qv_err (QV_ENOMEM, "out of memory loading HNSW link lists");
        }
        memcpy (l0, lists, l0_u32 * sizeof (uint32_t));
    }
    //  The words are used as they are, as the records' are (qv_hnsw_store.c writes
    //  and reads the in-memory layout: a little-endian host)
    qv_hnsw_pack_install (h, l0, off, l0_u32, count);
    return 0;
}

void
qv_hnsw_pack_trim (s_hnsw_t *h)
{
    uint32_t *l0 = h->l0? realloc (h->l0, (h->l0_u32? h->l0_u32: 1) * sizeof (uint32_t)): NULL;
    if (l0)
        h->l0 = l0;
}
