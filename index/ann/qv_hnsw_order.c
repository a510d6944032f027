//  HNSW graph renumbering for locality: after a build, the nodes of an HNSW_SQ8 graph
//  get new ids: the nodes of the upper levels first, highest level first, then the
//  rest, each group in breadth-first order over level 0 from the entry point (Coleman
//  et al., "Graph Reordering for Cache-Efficient Near Neighbor Search", 2022, order
//  by BFS / RCM / Gorder). The graph itself (every link list, in its order) is
//  unchanged, so a walk visits the same nodes in the same order and returns the same
//  rows; h->label maps node ids back to row ids for the results, the filters and the
//  float vectors (kept by row: they may be the caller's).
//  What it buys is small here, and why: a level-0 record (100-d codes and 32 links:
//  320 bytes) spans five cache lines, so no two nodes ever share a line and an order
//  cannot save a code fetch; the arena is on huge pages, so neither the TLB. What it
//  does localise are the per-node arrays with many nodes to a line (the visited tags,
//  and the byte-form L2 walk's biases, cbias), and the upper-level nodes, which every
//  query's greedy descent reads, are packed together and stay cached. One graph
//  (200k x 100, clustered, M 16, efC 200), its three orders searched alternately, 30
//  rounds of 5,000 queries, q/s per CPU second, medians (2026-12-07):
//      COSINE ef 16:  row order 67,792, BFS 66,672 (ahead in 3/30), hubs + BFS
//                     67,839 (16/30); on 4 KiB pages 65,366 / 64,920 / 66,750 (29/30)
//      COSINE ef 32:  41,024 / 40,613 / 41,338 (23/30)
//      L2 ef 16:      82,535 / 85,691 (30/30) / 87,855 (29/30)
//  so BFS alone is not kept; hubs first is, for +0-2% on COSINE and +6% on L2, at
//  0.22 s of CPU per 200k nodes and 4 bytes a node.
//  Only HNSW_SQ8 is renumbered: plain HNSW may walk on borrowed floats, which are
//  addressed by row.
#include "qv_hnsw_impl.h"
#include "qv_hugemem.h"

//  order [new] = old: breadth-first over level-0 links from the entry point, then any
//  node the walk did not reach (none in a connected graph) in id order.
static void
s_bfs_order (const s_hnsw_t *h, uint32_t count, uint32_t *order, uint8_t *seen)
{
    uint32_t tail = 0, unseen = 0;
    order [tail++] = h->entry;
    seen [h->entry] = 1;
    for (uint32_t head = 0; head < tail; head++) {
        const uint32_t *ll = s_links (h, order [head], 0);
        for (uint32_t j = 0; j < ll [0]; j++) {
            uint32_t id = ll [1 + j];
            if (!seen [id]) {
                seen [id] = 1;
                order [tail++] = id;
            }
        }
        if (head + 1 == tail && tail < count) {
            while (seen [unseen])   //  the next unreached node starts a new sweep
                unseen++;
            seen [unseen] = 1;
            order [tail++] = unseen;
        }
    }
}

//  Moves the nodes of upper levels to the front of order, highest level first, each
//  group in the order it had: the greedy descent through the upper levels reads only
//  them (about 1 node in M), so they sit together and stay cached between queries.
//  tmp: count u32.
static void
s_hubs_first (const s_hnsw_t *h, uint32_t count, uint32_t *order, uint32_t *tmp)
{
    uint32_t at = 0;
    for (int level = h->max_level; level >= 0; level--)
        for (uint32_t i = 0; i < count; i++)
            if (h->levels [order [i]] == level)
                tmp [at++] = order [i];
    memcpy (order, tmp, (size_t) count * sizeof (uint32_t));
}

static void
s_remap_list (uint32_t *ll, const uint32_t *pos)
{
    for (uint32_t j = 0; j < ll [0]; j++)
        ll [1 + j] = pos [ll [1 + j]];
}

int
qv_hnsw_reorder (qv_index_t *self, uint32_t count)
{
    s_hnsw_t *h = self->impl;
    const char *env = getenv ("QV_HNSW_REORDER");
    if (!h->sq8 || count < 2 || h->entry == S_NONE || (env && strcmp (env, "0") == 0))
        return 0;
    uint32_t cap = h->capacity;
    uint32_t *order = malloc ((size_t) count * sizeof (uint32_t));
    uint32_t *pos = malloc ((size_t) count * sizeof (uint32_t));
    uint8_t *seen = calloc (count, 1);
    uint8_t *arena = qv_hugemem_alloc ((size_t) cap * h->record);
    uint8_t *levels = calloc (cap, 1);
    s_upper_t up = { 0 };
    int32_t *cbias = malloc ((size_t) cap * sizeof (int32_t));
    uint32_t *label = malloc ((size_t) cap * sizeof (uint32_t));
    if (!order || !pos || !seen || !arena || !levels || !cbias || !label
    ||  qv_hnsw_upper_reserve (&up, cap, 0)
    ||  !(up.list = malloc ((size_t) (h->up.cap? h->up.cap: 1) * sizeof (uint32_t *)))) {
        free (order);
        free (pos);
        free (seen);
        free (arena);
        free (levels);
        qv_hnsw_upper_free_index (&up);
        free (cbias);
        free (label);
        return qv_err (QV_ENOMEM, "out of memory renumbering %u HNSW nodes", count);
    }
    up.cap = h->up.cap? h->up.cap: 1;    //  as much room as h's (the same memory)
    s_bfs_order (h, count, order, seen);
    free (seen);
    s_hubs_first (h, count, order, pos);
    for (uint32_t i = 0; i < count; i++)
        pos [order [i]] = i;
    for (uint32_t i = 0; i < count; i++) {
        uint32_t old = order [i];
        uint8_t *rec = arena + (size_t) i * h->record;
        memcpy (rec, h->arena + (size_t) old * h->record, h->record);
        s_remap_list ((uint32_t *) (void *) (rec + h->link_off), pos);
        levels [i] = h->levels [old];
        uint32_t *lists = levels [i]? s_upper (h, old): NULL;
        for (int l = 1; l <= levels [i]; l++)
            s_remap_list (lists + (size_t) (l - 1) * (1 + h->M), pos);
        //  Cannot fail: up.list has room for every list h holds
        if (lists)
            qv_hnsw_upper_append (&up, i, lists);
        cbias [i] = h->cbias [old];
        label [i] = s_row (h, old);
    }
    free (h->arena);
    free (h->levels);
    up.block = h->up.block;         //  the lists move over, a loaded block with them
    up.block_u32 = h->up.block_u32;
    qv_hnsw_upper_free_index (&h->up);
    free (h->cbias);
    free (h->label);
    h->arena = arena;
    h->vbase = arena;
    h->levels = levels;
    h->up = up;
    h->cbias = cbias;
    h->label = label;
    h->entry = pos [h->entry];
    free (order);
    free (pos);
    return 0;
}
