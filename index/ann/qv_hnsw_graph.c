//  HNSW graph code: search contexts (pooled scratch), the walks (greedy descent, beam
//  search, filtered beam search), insertion with hnswlib's neighbour heuristic, and one
//  copy of insert and search per distance kind compiled for its instruction set.
//  See qv_hnsw.c for the design.
#include "qv_hnsw_impl.h"

//  --------------------------------------------------------------------------
//  Search contexts

void
qv_hnsw_ctx_free (s_ctx_t *ctx)
{
    if (ctx) {
        free (ctx->visited);
        free (ctx->cand);
        free (ctx->top);
        free (ctx->work);
        free (ctx->work2);
        free (ctx->links);
        free (ctx->gather);
        free (ctx->gdist);
        free (ctx->qcode);
        free (ctx->qcode8);
        free (ctx);
    }
}

static size_t
s_ctx_bytes (const s_hnsw_t *h, const s_ctx_t *ctx)
{
    return sizeof *ctx + (size_t) ctx->visited_n * 2
         + (size_t) (ctx->cand_cap + ctx->top_cap + ctx->work_cap + h->M0 + 1) * sizeof (s_pair_t)
         + (size_t) (h->M0 + 1) * 12 + ((size_t) h->cdim + 32) * 2 * (h->sq8 != 0)
         + (h->search_graph_b? ((size_t) h->cdim + 4 + 63) / 64 * 64: 0);
}

//  Grows one scratch array to hold need pairs. Returns 0 or QV_ENOMEM.
static int
s_pairs_fit (s_pair_t **array, uint32_t *cap, uint32_t need)
{
    if (*cap >= need)
        return 0;
    s_pair_t *grown = realloc (*array, need * sizeof (s_pair_t));
    if (!grown)
        return QV_ENOMEM;
    *array = grown;
    *cap = need;
    return 0;
}

//  Makes sure the heaps hold cand_need / top_need and visited covers nodes nodes,
//  keeping h->pool_bytes in step. Returns 0 or QV_ENOMEM.
static int
s_ctx_fit (s_hnsw_t *h, s_ctx_t *ctx, uint32_t nodes, uint32_t top_need, uint32_t cand_need)
{
    size_t before = s_ctx_bytes (h, ctx);
    int rc = 0;
    if (ctx->visited_n < nodes) {
        free (ctx->visited);
        ctx->visited = calloc (nodes, sizeof (uint16_t));
        ctx->visited_n = ctx->visited? nodes: 0;
        ctx->epoch = 0;
        if (!ctx->visited)
            rc = QV_ENOMEM;
    }
    if (rc == 0)
        rc = s_pairs_fit (&ctx->top, &ctx->top_cap, top_need);
    if (rc == 0)
        rc = s_pairs_fit (&ctx->cand, &ctx->cand_cap, cand_need);
    if (rc == 0)
        rc = s_pairs_fit (&ctx->work, &ctx->work_cap, top_need);
    size_t after = s_ctx_bytes (h, ctx);
    if (after > before)
        atomic_fetch_add (&h->pool_bytes, after - before);
    else
    if (after < before)
        atomic_fetch_sub (&h->pool_bytes, before - after);
    return rc;
}

//  A context from the pool, fitted for this many nodes and this ef; NULL on
//  out-of-memory.
s_ctx_t *
qv_hnsw_ctx_acquire (s_hnsw_t *h, uint32_t nodes, uint32_t ef)
{
    s_ctx_t *ctx = atomic_exchange (&h->hot, NULL);
    if (!ctx) {
        pthread_mutex_lock (&h->pool_lock);
        ctx = h->pool;
        if (ctx)
            h->pool = ctx->next;
        pthread_mutex_unlock (&h->pool_lock);
    }
    if (!ctx) {
        ctx = calloc (1, sizeof *ctx);
        if (!ctx)
            return NULL;
        ctx->work2 = malloc ((h->M0 + 1) * sizeof (s_pair_t));
        ctx->links = malloc ((h->M0 + 1) * sizeof (uint32_t));
        ctx->gather = malloc ((h->M0 + 1) * sizeof (uint32_t));
        ctx->gdist = malloc ((h->M0 + 1) * sizeof (float));
        ctx->qcode = h->sq8? aligned_alloc (64, ((size_t) h->cdim + 32) * sizeof (int16_t)): NULL;
        ctx->qcode8 = h->search_graph_b? aligned_alloc (64, ((size_t) h->cdim + 4 + 63) / 64 * 64): NULL;
        if (!ctx->work2 || !ctx->links || !ctx->gather || !ctx->gdist || (h->sq8 && !ctx->qcode)
        ||  (h->search_graph_b && !ctx->qcode8)) {
            qv_hnsw_ctx_free (ctx);
            return NULL;
        }
        atomic_fetch_add (&h->pool_bytes, s_ctx_bytes (h, ctx));
    }
    //  The candidate heap grows with the walk; 4 x ef + M0 covers nearly every search
    if (s_ctx_fit (h, ctx, nodes, ef + 1, 4 * ef + h->M0 + 1)) {
        atomic_fetch_sub (&h->pool_bytes, s_ctx_bytes (h, ctx));
        qv_hnsw_ctx_free (ctx);
        return NULL;
    }
    return ctx;
}

void
qv_hnsw_ctx_release (s_hnsw_t *h, s_ctx_t *ctx)
{
    s_ctx_t *none = NULL;
    if (atomic_compare_exchange_strong (&h->hot, &none, ctx))
        return;
    pthread_mutex_lock (&h->pool_lock);
    ctx->next = h->pool;
    h->pool = ctx;
    pthread_mutex_unlock (&h->pool_lock);
}

static inline uint16_t
s_ctx_next_epoch (s_ctx_t *ctx)
{
    if (++ctx->epoch == 0) {
        memset (ctx->visited, 0, (size_t) ctx->visited_n * sizeof (uint16_t));
        ctx->epoch = 1;
    }
    return ctx->epoch;
}

//  Grows the candidate heap when a long walk needs it. Returns 0 or QV_ENOMEM.
static int
s_cand_reserve (s_hnsw_t *h, s_ctx_t *ctx, uint32_t more)
{
    if (ctx->cand_n + more <= ctx->cand_cap)
        return 0;
    uint32_t old_cap = ctx->cand_cap;
    if (s_pairs_fit (&ctx->cand, &ctx->cand_cap, ctx->cand_cap * 2 + more))
        return QV_ENOMEM;
    atomic_fetch_add (&h->pool_bytes, (size_t) (ctx->cand_cap - old_cap) * sizeof (s_pair_t));
    return 0;
}

//  --------------------------------------------------------------------------
//  Graph walks

//  Lines of a vector the walks prefetch beyond its first (see S_PREFETCH_LINES).
static inline size_t
s_pf_lines (const s_hnsw_t *h)
{
    size_t lines = (h->vbytes + 63) / 64;
    return lines > S_PREFETCH_LINES? S_PREFETCH_LINES: lines;
}

//  Prefetches lines 1 .. pf_lines - 1 of node id's vector.
static inline void
s_prefetch_vec (const s_hnsw_t *h, uint32_t id, size_t pf_lines)
{
    const char *v = (const char *) s_vec (h, id);
    for (size_t line = 1; line < pf_lines; line++)
        S_PREFETCH (v + line * 64);
}

//  Prefetches the first three lines from node id's list at level: all of a level-0
//  list at M 16 (a count and 32 links, which may straddle three lines), not only its
//  first line, as the walk reads the whole list. Three fixed prefetches: a loop over
//  the list's exact lines measured slower (separate builds, ef 16, angular set).
static inline void
s_prefetch_links (const s_hnsw_t *h, uint32_t id, int level)
{
    const char *p = (const char *) s_links (h, id, level);
    S_PREFETCH (p);
    S_PREFETCH (p + 64);
    S_PREFETCH (p + 128);
}

//  While the distances of one expansion are computed, the codes of the unvisited
//  neighbours of next, the best candidate then, are fetched: it is the next node
//  expanded unless one of those distances beats it, and its link list came in when it
//  was pushed (s_prefetch_links). The walk waits on those codes' misses otherwise
//  (+2.4% / +8.1% / +4.3% q/s at ef 12 / 16 / 20 on the 200k angular set, HNSW_SQ8,
//  ahead in 36, 38 and 33 of 40 rounds of an in-process A/B; both lines of a 100-byte
//  code +1.4% over the first alone). Only read: a wrong guess costs the fetches.
static inline void
s_prefetch_next (const s_hnsw_t *h, const s_ctx_t *ctx, uint32_t next, uint16_t tag,
                 size_t pf_lines)
{
    const uint32_t *ll = s_links (h, next, 0);
    const uint16_t *visited = ctx->visited;
    int two_lines = pf_lines == 2;
    uint32_t n = ll [0];
    for (uint32_t j = 0; j < n; j++) {
        uint32_t id = ll [1 + j];
        if (visited [id] != tag) {
            S_PREFETCH (s_vec (h, id));
            if (two_lines)
                S_PREFETCH ((const char *) s_vec (h, id) + 64);
        }
    }
}

//  Expanding a node whose link list is ll: its unvisited neighbours into ctx->gather,
//  marked visited (tag), their vectors' first lines on the way and the rest of the
//  first S_PREFETCH_AHEAD. Returns how many.
static inline uint32_t
s_gather (const s_hnsw_t *h, s_ctx_t *ctx, const uint32_t *ll, uint16_t tag, size_t pf_lines)
{
    uint16_t *visited = ctx->visited;
    uint32_t n = ll [0];
    //  Visited tags beyond L1: fetch a node's tags together before testing them
    if (ctx->visited_n > 16384)
        for (uint32_t j = 0; j < n; j++)
            S_PREFETCH (visited + ll [1 + j]);
    //  Codes of two lines (HNSW_SQ8, 65 to 128 dims): both lines, so that their misses
    //  overlap (+1-2% q/s at ef 12-16 on the 200k angular set, in-process A/B); longer
    //  codes and float vectors keep to their first line here (the rest follows ahead
    //  of the kernels, below and in s_dists)
    int two_lines = h->sq8 && pf_lines == 2;
    //  Branch-free: whether a neighbour was seen is a coin toss for the predictor
    uint32_t m = 0;
    for (uint32_t j = 0; j < n; j++) {
        uint32_t id = ll [1 + j];
        uint32_t fresh = visited [id] != tag;
        visited [id] = tag;
        ctx->gather [m] = id;
        m += fresh;
        S_PREFETCH (s_vec (h, id));
        if (two_lines)
            S_PREFETCH ((const char *) s_vec (h, id) + 64);
    }
    //  Packed lists (qv_hnsw_pack.c) are found through an offset per node: fetch the
    //  offsets of those that may become candidates while their distances are computed,
    //  so that the walk finds their lists without waiting on them first
    if (h->l0)
        for (uint32_t j = 0; j < m; j++)
            S_PREFETCH (h->l0off + ctx->gather [j]);
    for (uint32_t j = 0; j < S_PREFETCH_AHEAD && j < m; j++)
        s_prefetch_vec (h, ctx->gather [j], pf_lines);
    return m;
}

#if defined(QV_DIST_HAVE_X86)
//  The integer distances from q to the four nodes ids [0..3] for the batched HNSW_SQ8
//  search kinds (q: the byte form with |q|^2 after it for S_K_SQ8B_VNNI, the nibble
//  form for S_K_SQ8N_AVX2, the int16 query for S_K_SQ8Q_AVX512).
static inline __m128i
s_dist4_sq8 (const s_hnsw_t *h, int kind, const float *q, const uint32_t *ids)
{
    const uint8_t *c0 = (const uint8_t *) s_vec (h, ids [0]), *c1 = (const uint8_t *) s_vec (h, ids [1]);
    const uint8_t *c2 = (const uint8_t *) s_vec (h, ids [2]), *c3 = (const uint8_t *) s_vec (h, ids [3]);
    if (kind == S_K_SQ8IB_VNNI || kind == S_K_SQ8IN_AVX2) {
        //  The dot-product form: no |q|^2, no biases (qq, after the query, is 0)
        const int8_t *q8 = (const int8_t *) (const void *) q;
        if (kind == S_K_SQ8IN_AVX2)
            return qv_isq8_l2_qn4_avx2_inline (q8, c0, c1, c2, c3, _mm_setzero_si128 (), h->cdim);
        return qv_isq8_l2_qb4_vnni_inline (q8, 0, c0, c1, c2, c3, _mm_setzero_si128 (), h->cdim);
    }
    if (kind == S_K_SQ8B_VNNI || kind == S_K_SQ8N_AVX2) {
        const int8_t *q8 = (const int8_t *) (const void *) q;
        const int32_t *cbias = h->cbias;
        __m128i bias = _mm_set_epi32 (cbias [ids [3]], cbias [ids [2]], cbias [ids [1]], cbias [ids [0]]);
        if (kind == S_K_SQ8N_AVX2)
            return qv_isq8_l2_qn4_avx2_inline (q8, c0, c1, c2, c3, bias, h->cdim);
        int32_t qq;
        memcpy (&qq, q8 + h->cdim, sizeof qq);
        return qv_isq8_l2_qb4_vnni_inline (q8, qq, c0, c1, c2, c3, bias, h->cdim);
    }
    return qv_isq8_l2_qc4_avx512_inline ((const int16_t *) (const void *) q, c0, c1, c2, c3, h->cdim);
}
#endif

//  The distances of the m nodes ids [0..m) to q into out, all of them before any is
//  compared: with no branch on a distance between them, the loads and kernels of
//  several neighbours overlap instead of waiting on each comparison (whether a
//  neighbour enters the list is a coin toss for the branch predictor).
static inline void
s_dists (const s_hnsw_t *h, const uint32_t *gather, uint32_t m, const float *q,
         float *gdist, size_t pf_lines, int kind)
{
    uint32_t j = 0;
#if defined(QV_DIST_HAVE_X86)
    if (kind == S_K_SQ8B_VNNI || kind == S_K_SQ8N_AVX2 || kind == S_K_SQ8Q_AVX512
    ||  kind == S_K_SQ8IB_VNNI || kind == S_K_SQ8IN_AVX2) {
        //  Four at a time (qv_isq8.h's four-vector kernels), the next four prefetched.
        //  The int16 AVX2 walk (queries beyond the code ranges) stays one at a time:
        //  four at once measured within noise there
        for (; j + 4 <= m; j += 4) {
            for (uint32_t t = j + 4; t < j + 8 && t < m; t++)
                s_prefetch_vec (h, gather [t], pf_lines);
            _mm_storeu_ps (gdist + j, _mm_cvtepi32_ps (s_dist4_sq8 (h, kind, q, gather + j)));
        }
    }
#endif
    for (; j < m; j++) {
        if (j + S_PREFETCH_AHEAD < m)
            s_prefetch_vec (h, gather [j + S_PREFETCH_AHEAD], pf_lines);
        gdist [j] = s_dist_node (h, kind, q, gather [j]);
    }
}

//  Greedy descent at one level from *cur (distance *curd): moves to any closer
//  neighbour until none is closer. locked: copy lists under node locks (build), except
//  the list of node owner, whose lock this thread holds.
static void
s_greedy (s_hnsw_t *h, s_ctx_t *ctx, const float *q, int level,
          uint32_t *cur, float *curd, int locked, uint32_t owner, int kind)
{
    int changed = 1;
    while (changed) {
        changed = 0;
        const uint32_t *ll = s_links (h, *cur, level);
        if (locked && *cur != owner) {
            s_lock (h, *cur);
            memcpy (ctx->links, ll, (1 + (size_t) ll [0]) * sizeof (uint32_t));
            s_unlock (h, *cur);
            ll = ctx->links;
        }
        uint32_t n = ll [0];
        for (uint32_t j = 0; j < n; j++)
            S_PREFETCH (s_vec (h, ll [1 + j]));
        s_dists (h, ll + 1, n, q, ctx->gdist, s_pf_lines (h), kind);
        for (uint32_t j = 0; j < n; j++) {
            float d = ctx->gdist [j];
            if (d < *curd) {
                *curd = d;
                *cur = ll [1 + j];
                changed = 1;
            }
        }
    }
}

//  Beam search at one level from ep: leaves the best ef nodes in ctx->top, a
//  max-heap. locked as for s_greedy. Returns 0 or QV_ENOMEM.
static int
s_search_level (s_hnsw_t *h, s_ctx_t *ctx, const float *q, uint32_t ep, float ep_d,
                int level, uint32_t ef, int locked, uint32_t owner, int kind)
{
    uint16_t tag = s_ctx_next_epoch (ctx);
    uint16_t *visited = ctx->visited;
    s_pair_t *top = ctx->top;
    uint32_t top_n = 0;
    ctx->cand_n = 0;
    float lower = INFINITY;
    size_t pf_lines = s_pf_lines (h);
    //  A search's level-0 walk on codes (a build's lists change under it)
    int speculate = h->sq8 && !locked && level == 0;

    visited [ep] = tag;
    s_max_push (top, &top_n, (s_pair_t) { ep_d, ep });
    lower = ep_d;
    s_min_push (ctx->cand, &ctx->cand_n, (s_pair_t) { ep_d, ep });

    while (ctx->cand_n) {
        s_pair_t c = ctx->cand [0];
        if (c.d > lower && top_n >= ef)
            break;
        s_min_pop (ctx->cand, &ctx->cand_n);

        const uint32_t *ll = s_links (h, c.id, level);
        if (locked && c.id != owner) {
            s_lock (h, c.id);
            memcpy (ctx->links, ll, (1 + (size_t) ll [0]) * sizeof (uint32_t));
            s_unlock (h, c.id);
            ll = ctx->links;
        }
        uint32_t m = s_gather (h, ctx, ll, tag, pf_lines);
        if (s_cand_reserve (h, ctx, m))
            return QV_ENOMEM;
        if (speculate && ctx->cand_n)
            s_prefetch_next (h, ctx, ctx->cand [0].id, tag, pf_lines);
        s_dists (h, ctx->gather, m, q, ctx->gdist, pf_lines, kind);
        for (uint32_t j = 0; j < m; j++) {
            uint32_t id = ctx->gather [j];
            float d = ctx->gdist [j];
            if (top_n < ef || d < lower) {
                s_min_push (ctx->cand, &ctx->cand_n, (s_pair_t) { d, id });
                //  Its link list is what the walk reads if it expands it: all of it
                //  on its way from here, for each node pushed, not only the first line
                //  of the best candidate's (+3% q/s at ef 16 on the 200k angular set,
                //  ahead in 35 of 40 rounds of an in-process A/B)
                s_prefetch_links (h, id, level);
                s_keep_best (top, &top_n, ef, (s_pair_t) { d, id });
                lower = top [0].d;
            }
        }
    }
    ctx->top_n = top_n;
    return 0;
}

//  Filtered beam search at level 0 from ep. The walk is the unfiltered one over a
//  list of the best `wide` nodes it has seen, allowed or not (near, in ctx->work),
//  which decides what to expand and when to stop; the allowed ones among all it
//  computes are kept apart, the best k in ctx->top (only k are returned: a longer
//  list would cost heap work per node and change nothing). It goes on while fewer
//  than k allowed rows are found. Returns 0 or QV_ENOMEM.
static int
s_search_filtered (s_hnsw_t *h, s_ctx_t *ctx, const float *q, uint32_t ep, float ep_d,
                   uint32_t wide, uint32_t k, const qv_search_params_t *filter, int kind)
{
    uint16_t tag = s_ctx_next_epoch (ctx);
    uint16_t *visited = ctx->visited;
    s_pair_t *top = ctx->top, *near = ctx->work;
    uint32_t top_n = 0, near_n = 0;
    ctx->cand_n = 0;
    float lower = INFINITY;     //  worst of near
    size_t pf_lines = s_pf_lines (h);

    visited [ep] = tag;
    if (qv_search_params_allows (filter, s_row (h, ep)))
        s_max_push (top, &top_n, (s_pair_t) { ep_d, ep });
    s_max_push (near, &near_n, (s_pair_t) { ep_d, ep });
    lower = ep_d;
    s_min_push (ctx->cand, &ctx->cand_n, (s_pair_t) { ep_d, ep });

    while (ctx->cand_n) {
        s_pair_t c = ctx->cand [0];
        if (c.d > lower && near_n >= wide && top_n >= k)
            break;
        s_min_pop (ctx->cand, &ctx->cand_n);
        const uint32_t *ll = s_links (h, c.id, 0);
        uint32_t m = s_gather (h, ctx, ll, tag, pf_lines);
        if (s_cand_reserve (h, ctx, m))
            return QV_ENOMEM;
        s_dists (h, ctx->gather, m, q, ctx->gdist, pf_lines, kind);
        for (uint32_t j = 0; j < m; j++) {
            uint32_t id = ctx->gather [j];
            float d = ctx->gdist [j];
            if ((top_n < k || d < top [0].d) && qv_search_params_allows (filter, s_row (h, id)))
                s_keep_best (top, &top_n, k, (s_pair_t) { d, id });
            if (near_n < wide || d < lower || top_n < k) {
                s_min_push (ctx->cand, &ctx->cand_n, (s_pair_t) { d, id });
                s_prefetch_links (h, id, 0);
                s_keep_best (near, &near_n, wide, (s_pair_t) { d, id });
                lower = near [0].d;
            }
        }
    }
    ctx->top_n = top_n;
    return 0;
}

//  --------------------------------------------------------------------------
//  Insertion

//  hnswlib's getNeighborsByHeuristic2 over list [0..n) sorted by distance to the
//  new node: keeps, in order, each candidate closer to the new node than to every one
//  kept so far, up to max. Compacts list in place; returns how many were kept.
static uint32_t
s_select_heuristic (const s_hnsw_t *h, s_pair_t *list, uint32_t n, uint32_t max, int kind)
{
    if (n <= max)
        return n;
    uint32_t kept = 0;
    for (uint32_t i = 0; i < n && kept < max; i++) {
        s_pair_t e = list [i];
        const float *ev = s_vec (h, e.id);
        int good = 1;
        for (uint32_t j = 0; j < kept; j++)
            if (s_dist (h, kind, ev, s_vec (h, list [j].id)) < e.d) {
                good = 0;
                break;
            }
        if (good)
            list [kept++] = e;
    }
    return kept;
}

//  Adds the link other -> c at level, pruning other's list with the heuristic when it
//  is full.
static void
s_link_back (s_hnsw_t *h, s_ctx_t *ctx, uint32_t other, uint32_t c, int level, int kind)
{
    uint32_t max = level? h->M: h->M0;
    s_lock (h, other);
    uint32_t *ll = s_links (h, other, level);
    uint32_t n = ll [0];
    int present = 0;
    for (uint32_t j = 0; j < n; j++)
        present |= ll [1 + j] == c;
    if (!present) {
        if (n < max) {
            ll [1 + n] = c;
            ll [0] = n + 1;
        }
        else {
            const float *ov = s_vec (h, other);
            s_pair_t *list = ctx->work2;
            list [0] = (s_pair_t) { s_dist (h, kind, ov, s_vec (h, c)), c };
            for (uint32_t j = 0; j < n; j++)
                list [1 + j] = (s_pair_t) { s_dist (h, kind, ov, s_vec (h, ll [1 + j])), ll [1 + j] };
            s_sort_small (list, n + 1);
            uint32_t kept = s_select_heuristic (h, list, n + 1, max, kind);
            for (uint32_t j = 0; j < kept; j++)
                ll [1 + j] = list [j].id;
            ll [0] = kept;
        }
    }
    s_unlock (h, other);
}

//  Inserts node c (vector already in the arena, level set, upper lists allocated).
//  As in hnswlib, c's lock is held for the whole insert: a thread that reaches c
//  through an upper level waits until c's lower lists are complete instead of
//  linking to a node with empty lists (which leaves nodes unreachable). Lock order:
//  own node, then the global lock, then (one at a time) other nodes.
static int
s_insert (s_hnsw_t *h, s_ctx_t *ctx, uint32_t c, int kind)
{
    const float *q = s_vec (h, c);
    int level = h->levels [c];

    s_lock (h, c);
    pthread_mutex_lock (&h->global);
    int max_level = h->max_level;
    uint32_t cur = h->entry;
    int hold_global = level > max_level;
    if (!hold_global)
        pthread_mutex_unlock (&h->global);
    if (cur == S_NONE) {
        h->entry = c;
        h->max_level = level;
        pthread_mutex_unlock (&h->global);
        s_unlock (h, c);
        return 0;
    }
    float curd = s_dist (h, kind, q, s_vec (h, cur));
    for (int l = max_level; l > level; l--)
        s_greedy (h, ctx, q, l, &cur, &curd, 1, c, kind);

    int rc = 0;
    for (int l = level < max_level? level: max_level; l >= 0; l--) {
        rc = s_search_level (h, ctx, q, cur, curd, l, h->ef_construction, 1, c, kind);
        if (rc)
            break;
        //  Pop the max-heap into ascending order
        s_pair_t *list = ctx->work;
        uint32_t n = ctx->top_n;
        for (uint32_t left = n; left > 0; ) {
            list [left - 1] = ctx->top [0];
            s_max_pop (ctx->top, &left);
        }
        uint32_t kept = s_select_heuristic (h, list, n, h->M, kind);
        uint32_t *own = s_links (h, c, l);
        for (uint32_t j = 0; j < kept; j++)
            own [1 + j] = list [j].id;
        own [0] = kept;
        for (uint32_t j = 0; j < kept; j++)
            if (list [j].id != c)
                s_link_back (h, ctx, list [j].id, c, l, kind);
        if (kept) {
            cur = list [0].id;
            curd = list [0].d;
        }
    }
    if (hold_global) {
        h->entry = c;
        h->max_level = level;
        pthread_mutex_unlock (&h->global);
    }
    s_unlock (h, c);
    return rc;
}

//  The unlocked search path: greedy descent, then the level-0 beam (results in
//  ctx->top).
static int
s_search_graph (s_hnsw_t *h, s_ctx_t *ctx, const float *q, uint32_t ef, uint32_t wide,
                uint32_t k, const qv_search_params_t *filter, int kind)
{
    uint32_t cur = h->entry;
    float curd = s_dist_node (h, kind, q, cur);
    for (int l = h->max_level; l > 0; l--)
        s_greedy (h, ctx, q, l, &cur, &curd, 0, S_NONE, kind);
    if (filter)
        return s_search_filtered (h, ctx, q, cur, curd, wide, k, filter, kind);
    return s_search_level (h, ctx, q, cur, curd, 0, ef, 0, S_NONE, kind);
}

//  One copy of insert and search per distance kind, each with everything inlined
//  (flatten) and compiled for its instruction set.
#define S_TARGET_AVX2   __attribute__ ((target ("avx2,fma"), flatten))
#define S_TARGET_AVX512 __attribute__ ((target ("avx512f,avx2,fma"), flatten))

static int
s_insert_generic (s_hnsw_t *h, s_ctx_t *ctx, uint32_t c)
{
    return s_insert (h, ctx, c, S_K_GENERIC);
}

static int
s_search_graph_generic (s_hnsw_t *h, s_ctx_t *ctx, const float *q, uint32_t ef,
                        uint32_t wide, uint32_t k, const qv_search_params_t *filter)
{
    return s_search_graph (h, ctx, q, ef, wide, k, filter, S_K_GENERIC);
}

//  HNSW_SQ8: insert compares codes with codes, search an int16 query with codes.
#define S_SPECIALISE_SQ8(suffix, target, ckind, qkind)                              \
    target static int                                                               \
    s_insert_##suffix (s_hnsw_t *h, s_ctx_t *ctx, uint32_t c)                       \
    {                                                                               \
        return s_insert (h, ctx, c, ckind);                                         \
    }                                                                               \
    target static int                                                               \
    s_search_graph_##suffix (s_hnsw_t *h, s_ctx_t *ctx, const float *q,             \
                             uint32_t ef, uint32_t wide, uint32_t k,                \
                             const qv_search_params_t *filter)                      \
    {                                                                               \
        return s_search_graph (h, ctx, q, ef, wide, k, filter, qkind);              \
    }
S_SPECIALISE_SQ8 (sq8_serial, , S_K_SQ8C_SERIAL, S_K_SQ8Q_SERIAL)

#if defined(QV_DIST_HAVE_X86)
#define S_TARGET_AVX512BW __attribute__ ((target ("avx512f,avx512bw,avx2,fma"), flatten))
S_SPECIALISE_SQ8 (sq8_avx2, S_TARGET_AVX2, S_K_SQ8C_AVX2, S_K_SQ8Q_AVX2)
S_SPECIALISE_SQ8 (sq8_avx512, S_TARGET_AVX512BW, S_K_SQ8C_AVX512, S_K_SQ8Q_AVX512)
__attribute__ ((target ("avx512f,avx512bw,avx512vnni,avx2,fma"), flatten)) static int
s_search_graph_sq8_vnni (s_hnsw_t *h, s_ctx_t *ctx, const float *q, uint32_t ef,
                         uint32_t wide, uint32_t k, const qv_search_params_t *filter)
{
    return s_search_graph (h, ctx, q, ef, wide, k, filter, S_K_SQ8B_VNNI);
}
__attribute__ ((target ("avx512f,avx512bw,avx512vnni,avx2,fma"), flatten)) static int
s_search_graph_sq8_ip_vnni (s_hnsw_t *h, s_ctx_t *ctx, const float *q, uint32_t ef,
                            uint32_t wide, uint32_t k, const qv_search_params_t *filter)
{
    return s_search_graph (h, ctx, q, ef, wide, k, filter, S_K_SQ8IB_VNNI);
}
S_TARGET_AVX2 static int
s_search_graph_sq8_ipnib_avx2 (s_hnsw_t *h, s_ctx_t *ctx, const float *q, uint32_t ef,
                               uint32_t wide, uint32_t k, const qv_search_params_t *filter)
{
    return s_search_graph (h, ctx, q, ef, wide, k, filter, S_K_SQ8IN_AVX2);
}
S_TARGET_AVX2 static int
s_search_graph_sq8_nib_avx2 (s_hnsw_t *h, s_ctx_t *ctx, const float *q, uint32_t ef,
                             uint32_t wide, uint32_t k, const qv_search_params_t *filter)
{
    return s_search_graph (h, ctx, q, ef, wide, k, filter, S_K_SQ8N_AVX2);
}
#define S_SPECIALISE(suffix, target, kind)                                          \
    target static int                                                               \
    s_insert_##suffix (s_hnsw_t *h, s_ctx_t *ctx, uint32_t c)                       \
    {                                                                               \
        return s_insert (h, ctx, c, kind);                                          \
    }                                                                               \
    target static int                                                               \
    s_search_graph_##suffix (s_hnsw_t *h, s_ctx_t *ctx, const float *q,             \
                             uint32_t ef, uint32_t wide, uint32_t k,                \
                             const qv_search_params_t *filter)                      \
    {                                                                               \
        return s_search_graph (h, ctx, q, ef, wide, k, filter, kind);               \
    }
S_SPECIALISE (l2_avx2, S_TARGET_AVX2, S_K_L2_AVX2)
S_SPECIALISE (ip_avx2, S_TARGET_AVX2, S_K_IP_AVX2)
S_SPECIALISE (l2_avx512, S_TARGET_AVX512, S_K_L2_AVX512)
S_SPECIALISE (ip_avx512, S_TARGET_AVX512, S_K_IP_AVX512)
#endif

//  Picks the copies for this CPU and metric.
void
qv_hnsw_choose_kind (s_hnsw_t *h)
{
    h->insert = s_insert_generic;
    h->search_graph = s_search_graph_generic;
    h->search_graph_b = NULL;
    h->b_nib = 0;
    h->ip_walk = 0;
    if (h->sq8) {
        h->insert = s_insert_sq8_serial;
        h->search_graph = s_search_graph_sq8_serial;
#if defined(QV_DIST_HAVE_X86)
        const char *isa = qv_isq8_isa ();
        if (strncmp (isa, "avx512", 6) == 0) {
            h->insert = s_insert_sq8_avx512;
            h->search_graph = s_search_graph_sq8_avx512;
            if (strcmp (isa, "avx512vnni") == 0)
                h->search_graph_b = s_search_graph_sq8_vnni;
        }
        else
        if (strcmp (isa, "avx2") == 0) {
            h->insert = s_insert_sq8_avx2;
            h->search_graph = s_search_graph_sq8_avx2;
            h->search_graph_b = s_search_graph_sq8_nib_avx2;
            h->b_nib = 1;
        }
        if (h->is_ip && strcmp (isa, "serial") != 0) {
            //  COSINE: every query walks on its int8 dot-product form (VNNI, else the
            //  nibble form on AVX2); the serial build keeps the int16 L2 walk
            int vnni = strcmp (isa, "avx512vnni") == 0;
            h->search_graph_b = vnni? s_search_graph_sq8_ip_vnni: s_search_graph_sq8_ipnib_avx2;
            h->b_nib = !vnni;
            h->ip_walk = 1;
        }
#endif
        return;
    }
#if defined(QV_DIST_HAVE_X86)
    const char *isa = qv_dist_kernels ()->isa;
    if (strcmp (isa, "avx512") == 0) {
        h->insert = h->is_ip? s_insert_ip_avx512: s_insert_l2_avx512;
        h->search_graph = h->is_ip? s_search_graph_ip_avx512: s_search_graph_l2_avx512;
    }
    else
    if (strcmp (isa, "avx2") == 0) {
        h->insert = h->is_ip? s_insert_ip_avx2: s_insert_l2_avx2;
        h->search_graph = h->is_ip? s_search_graph_ip_avx2: s_search_graph_l2_avx2;
    }
#endif
}
