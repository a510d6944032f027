//  HNSW index: a layered proximity graph searched greedily from the top level down.
//
//  DESIGN
//  Memory. Level 0 (every node) lives in one 64-byte-aligned arena of fixed-size
//  records, one per node, in row-id order:
//
//      [ vector: dim float32 ][ count: u32 ][ links: M0 x u32 ][ pad to 64 bytes ]
//
//  so one node's vector and its level-0 links are read from the same few cache lines,
//  and the address of a node is base + id * record. Upper levels (about 1 node in M)
//  are separate: upper [id] holds levels [id] lists of (1 + M) u32 for levels 1..L.
//  Search. A search takes a context (visited tags, two heaps, small buffers) from a
//  pool in the index, so the search path never allocates once warm and any number of
//  threads search at once. The visited set is a u16 tag per node, "visited" meaning
//  "tag == current epoch": a new search bumps the epoch instead of clearing it.
//  Expanding a node first gathers its unvisited neighbours and prefetches their
//  vectors, then computes the distances while the next vectors arrive.
//  Build. Inserts run on several threads (one per core by default), as hnswlib does:
//  each node has a one-byte spin lock guarding its link lists; a thread holds at most
//  one node lock at a time (lists are copied out under the lock), so there is no lock
//  order to get wrong. A global mutex guards the entry point; an insert that raises
//  the top level holds it for its duration. Links are chosen with hnswlib's
//  getNeighborsByHeuristic2 rule: a candidate is kept only if it is closer to the new
//  node than to every neighbour already kept. Node levels come from a hash of the seed
//  and the row id, so they do not depend on thread timing.
//  Filters. A filtered search walks the graph as an unfiltered one does, through
//  allowed and rejected nodes alike, over a list of `wide` nodes that decides what
//  to expand and when to stop; every allowed node it computes a distance for is
//  offered to a separate list of the best k allowed ones, the result (and it goes on
//  while that holds fewer than k). hnswlib's way, which lets only allowed nodes into
//  the one list and so walks until it holds ef allowed ones, costs about what
//  wide = ef / s does (s the selectivity); wide = ef (the unfiltered walk) loses
//  recall as s drops. wide = ef / s ^ ((1 - s) / 2) goes from ef at s = 1 toward
//  ef / sqrt (s) for small s. Distances computed per query and recall@10 against the
//  filtered exact answer at ef 64 (random bitmaps), for wide = ef / s ^ e with
//  e = 0 / 0.5 / (1 - s) / 2 / 1; hnswlib's way measured 990 at 50% on siftsmall:
//      siftsmall, 100 queries, unfiltered 618 at 0.997:
//          50%   618 / 791 / 700 / 990     recall 0.998 / 0.999 / 0.999 / 1.000
//          20%   618 / 1070 / 967 / 1770          0.991 / 0.999 / 0.999 / 1.000
//          10%   618 / 1349 / 1254 / 2625         0.971 / 1.000 / 1.000 / 1.000
//      Fashion-MNIST 60k, 1000 queries, unfiltered 550 at 0.9977:
//          50%   550 / 703 / 626 / 889     recall 0.9972 / 0.9982 / 0.9980 / 0.9990
//          30%   550 / 835 / 739 / 1256           0.9951 / 0.9987 / 0.9977 / 0.9996
//          10%   550 / 1209 / 1120 / 2568         0.9724 / 0.9994 / 0.9994 / 1.0000
//  so filtered recall stays at or above the unfiltered one at the same ef, for about
//  1.15x the unfiltered work at 50% instead of 1.6x. A bitmap of every row is no
//  filter.
//  When few rows are allowed a walk still costs more than scanning them, so below
//  QV_HNSW_FILTER_EXACT_FACTOR * sqrt (ef * rows) allowed rows (or ef rows) the
//  allowed rows are scanned exactly instead (qv_index_scans_exact tells a caller,
//  which can then scan them for many queries at once). The factor 3 comes from
//  `qvann --filter-sweep` at ef 64 with the hnswlib-style walk (median us per query,
//  random bitmaps, noisy shared 2-core machine):
//      siftsmall 10k x 128:     20% allowed walk 179 / scan 53,   50% walk 69 / scan 147
//          crossover ~3400 rows = 4.2 sqrt (ef n)
//      Fashion-MNIST 60k x 784:  5% allowed walk 2193 / scan 593, 10% walk 1858 / scan 3874
//          crossover ~4300 rows = 2.2 sqrt (ef n)
//  With the walk above, siftsmall 20% was walk 163 / scan 120 (one noisy run): the
//  scan still wins there, so the factor stays.
//
//  Payload layout (inside the qv_index frame; integers little-endian):
//      u32 M, u32 M0, u32 record bytes, u32 link offset, u32 entry (0xFFFFFFFF if
//      empty), u32 max level, u64 number of u32 in the upper-level section
//      u8 levels [count], zero padding to a multiple of 4
//      level-0 arena: count records of record bytes (the in-memory layout above)
//      upper levels: for each node with level L > 0, in id order, L x (1 + M) u32
#include "qv_hnsw.h"
#include "qv_dist_inline.h"
#include "qv_isq8.h"
#include "qv_le.h"

#include <float.h>
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#if defined(__x86_64__) || defined(__i386__)
#   include <immintrin.h>
#   define S_PREFETCH(p) _mm_prefetch ((const char *) (p), _MM_HINT_T0)
#   define S_PAUSE() _mm_pause ()
#else
#   define S_PREFETCH(p) __builtin_prefetch (p)
#   define S_PAUSE() ((void) 0)
#endif

#define S_NONE          UINT32_MAX
//  Software prefetch in the walk: vectors this many neighbours ahead of the one being
//  compared, up to this many 64-byte lines of each (the hardware streams the rest of
//  longer vectors). Chosen with qvann on Fashion-MNIST (784 dims; 1 KB beat the whole
//  3 KB vector and 2 ahead beat 1 and 3) and siftsmall (128 dims: whole vectors).
#define S_PREFETCH_AHEAD 2
#define S_PREFETCH_LINES 16
#define S_MAX_LEVEL     30
#define S_MAX_M         512

typedef struct {
    float d;                    //  distance, smaller is better
    uint32_t id;
} s_pair_t;

//  One search's scratch; kept in the index's pool between searches.
typedef struct s_ctx_t {
    uint16_t *visited;          //  tag per node
    uint32_t visited_n;         //  nodes visited covers
    uint16_t epoch;             //  current tag
    s_pair_t *cand;             //  min-heap of nodes to expand
    uint32_t cand_n, cand_cap;
    s_pair_t *top;              //  max-heap of the best ef found
    uint32_t top_n, top_cap;
    s_pair_t *work;             //  sorted candidates for the heuristic (build)
    uint32_t work_cap;
    s_pair_t *work2;            //  neighbour-list rebuild (build), M0 + 1
    uint32_t *links;            //  a link list copied out under its lock, 1 + M0
    uint32_t *gather;           //  unvisited neighbours of the node being expanded
    int16_t *qcode;             //  HNSW_SQ8: the query in code units, cdim int16
    int8_t *qcode8;             //  its byte form (qv_isq8_query_s8), cdim int8 + i32 qq
    struct s_ctx_t *next;       //  pool link
} s_ctx_t;

typedef struct s_hnsw_s {
    uint32_t dim;
    uint32_t M, M0;             //  links per node on upper levels / on level 0
    uint32_t ef_construction;
    size_t record;              //  bytes per level-0 record (multiple of 64)
    size_t link_off;            //  offset of [count, links] in a record
    uint8_t *arena;             //  capacity records, 64-byte aligned
    uint32_t capacity;          //  nodes the per-node arrays hold
    uint8_t *levels;            //  level of each node
    uint32_t **upper;           //  per node: NULL or levels x (1 + M) u32
    atomic_size_t upper_bytes;  //  bytes held by upper lists
    uint8_t *locks;             //  per node spin lock
    uint32_t entry;             //  entry point, S_NONE when empty
    int max_level;              //  level of the entry point, -1 when empty
    pthread_mutex_t global;     //  guards entry and max_level during builds
    double level_mult;          //  1 / ln (M)
    double filter_exact_factor; //  see qv_hnsw_set_filter_exact_factor
    int is_ip;                  //  distance = -ip instead of l2sq
    qv_dist_fn raw;             //  the kernel (l2sq or ip)
    //  HNSW_SQ8 (see qv_hnsw_sq8_vtable): the arena holds codes, not floats
    int sq8;
    uint32_t cdim;              //  bytes of a code vector (qv_isq8_cdim)
    float *vmin;                //  per-dimension minimum, dim floats; NULL until trained
    float step;                 //  the shared step
    float *floats;              //  capacity x dim float vectors, for re-ranking only
    int32_t *cbias;             //  capacity: qv_isq8_bias of each node's codes, for the
                                //  byte-form walk; derived from the codes, not stored
    //  The insert and search copies for this CPU and metric (s_choose_kind)
    int (*insert) (struct s_hnsw_s *h, s_ctx_t *ctx, uint32_t c);
    int (*search_graph) (struct s_hnsw_s *h, s_ctx_t *ctx, const float *q, uint32_t ef,
                         uint32_t wide, uint32_t k, const qv_search_params_t *filter);
    //  HNSW_SQ8 with AVX512_VNNI: the walk on a query's byte form (qcode8), for
    //  queries whose codes all fit a byte; NULL where the CPU lacks VNNI
    int (*search_graph_b) (struct s_hnsw_s *h, s_ctx_t *ctx, const float *q, uint32_t ef,
                           uint32_t wide, uint32_t k, const qv_search_params_t *filter);
    pthread_mutex_t pool_lock;  //  guards pool
    s_ctx_t *pool;              //  idle search contexts
    atomic_size_t pool_bytes;   //  bytes held by all contexts
} s_hnsw_t;

//  --------------------------------------------------------------------------
//  Small helpers

static inline const float *
s_vec (const s_hnsw_t *h, uint32_t id)
{
    return (const float *) (h->arena + (size_t) id * h->record);
}

//  The float vector of node id: in the arena, or for HNSW_SQ8 in h->floats.
static inline const float *
s_fvec (const s_hnsw_t *h, uint32_t id)
{
    return h->sq8? h->floats + (size_t) id * h->dim: s_vec (h, id);
}

static inline uint32_t *
s_links (const s_hnsw_t *h, uint32_t id, int level)
{
    if (level == 0)
        return (uint32_t *) (h->arena + (size_t) id * h->record + h->link_off);
    return h->upper [id] + (size_t) (level - 1) * (1 + h->M);
}

//  Distance kinds: the graph code is compiled once per kind (see the s_*_k wrappers
//  at the end of this section), with the kernel inlined into the walks.
#define S_K_GENERIC     0       //  through h->raw: serial, or any CPU
#define S_K_L2_AVX2     1
#define S_K_IP_AVX2     2
#define S_K_L2_AVX512   3
#define S_K_IP_AVX512   4
//  HNSW_SQ8: squared L2 in code units (qv_isq8.h); Q: an int16 query against codes
//  (search), C: codes against codes (build)
#define S_K_SQ8Q_SERIAL 5
#define S_K_SQ8C_SERIAL 6
#define S_K_SQ8Q_AVX2   7
#define S_K_SQ8C_AVX2   8
#define S_K_SQ8Q_AVX512 9
#define S_K_SQ8C_AVX512 10
//  The byte form of the query (qv_isq8_query_s8) with per-node biases, AVX512_VNNI:
//  the same integer distances as S_K_SQ8Q_*; only through s_dist_node
#define S_K_SQ8B_VNNI   11

//  Distance under the index's metric, smaller is better (-ip for IP). kind is a
//  constant at every call site once inlined, so the switch folds away.
static inline float
s_dist (const s_hnsw_t *h, int kind, const float *a, const float *b)
{
    switch (kind) {
        case S_K_SQ8Q_SERIAL:
            return (float) qv_isq8_l2_qc_serial_inline ((const int16_t *) (const void *) a,
                                                        (const uint8_t *) b, h->cdim);
        case S_K_SQ8C_SERIAL:
            return (float) qv_isq8_l2_cc_serial_inline ((const uint8_t *) a, (const uint8_t *) b, h->cdim);
#if defined(QV_DIST_HAVE_X86)
        case S_K_SQ8Q_AVX2:
            return (float) qv_isq8_l2_qc_avx2_inline ((const int16_t *) (const void *) a,
                                                      (const uint8_t *) b, h->cdim);
        case S_K_SQ8C_AVX2:
            return (float) qv_isq8_l2_cc_avx2_inline ((const uint8_t *) a, (const uint8_t *) b, h->cdim);
        case S_K_SQ8Q_AVX512:
            return (float) qv_isq8_l2_qc_avx512_inline ((const int16_t *) (const void *) a,
                                                        (const uint8_t *) b, h->cdim);
        case S_K_SQ8C_AVX512:
            return (float) qv_isq8_l2_cc_avx512_inline ((const uint8_t *) a, (const uint8_t *) b, h->cdim);
        case S_K_L2_AVX2:   return qv_dist_l2sq_f32_avx2_inline (a, b, h->dim);
        case S_K_IP_AVX2:   return -qv_dist_ip_f32_avx2_inline (a, b, h->dim);
        case S_K_L2_AVX512: return qv_dist_l2sq_f32_avx512_inline (a, b, h->dim);
        case S_K_IP_AVX512: return -qv_dist_ip_f32_avx512_inline (a, b, h->dim);
#endif
        default: {
            float r = h->raw (a, b, h->dim);
            return h->is_ip? -r: r;
        }
    }
}

//  Distance from q to node id: s_dist on its arena vector, or for the byte form the
//  node's bias too (q is then qcode8: cdim int8, then qq as an int32).
static inline float
s_dist_node (const s_hnsw_t *h, int kind, const float *q, uint32_t id)
{
#if defined(QV_DIST_HAVE_X86)
    if (kind == S_K_SQ8B_VNNI) {
        const int8_t *q8 = (const int8_t *) (const void *) q;
        int32_t qq;
        memcpy (&qq, q8 + h->cdim, sizeof qq);
        return (float) qv_isq8_l2_qb_vnni_inline (q8, qq, (const uint8_t *) s_vec (h, id),
                                                  h->cbias [id], h->cdim);
    }
#endif
    return s_dist (h, kind, q, s_vec (h, id));
}

//  A node lock is held for a whole insert of that node, so a waiter spins briefly,
//  then yields the core.
static inline void
s_lock (s_hnsw_t *h, uint32_t id)
{
    unsigned spins = 0;
    while (__atomic_test_and_set (&h->locks [id], __ATOMIC_ACQUIRE))
        while (__atomic_load_n (&h->locks [id], __ATOMIC_RELAXED))
            if (++spins < 256)
                S_PAUSE ();
            else
                sched_yield ();
}

static inline void
s_unlock (s_hnsw_t *h, uint32_t id)
{
    __atomic_clear (&h->locks [id], __ATOMIC_RELEASE);
}

static uint64_t
s_splitmix64 (uint64_t x)
{
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

static int
s_random_level (const s_hnsw_t *h, uint64_t seed, uint32_t id)
{
    double u = (double) (s_splitmix64 (seed ^ ((uint64_t) id * 0xD6E8FEB86659FD93ull)) >> 11)
             * (1.0 / 9007199254740992.0);
    if (u <= 0)
        u = 1e-300;
    double level = -log (u) * h->level_mult;
    return level >= S_MAX_LEVEL? S_MAX_LEVEL: (int) level;
}

//  Heaps: cand is a min-heap, top a max-heap, both by d.

static inline void
s_min_push (s_pair_t *heap, uint32_t *n, s_pair_t item)
{
    uint32_t at = (*n)++;
    while (at > 0) {
        uint32_t parent = (at - 1) / 2;
        if (heap [parent].d <= item.d)
            break;
        heap [at] = heap [parent];
        at = parent;
    }
    heap [at] = item;
}

static inline void
s_min_pop (s_pair_t *heap, uint32_t *n)
{
    s_pair_t item = heap [--(*n)];
    uint32_t size = *n, at = 0;
    while (1) {
        uint32_t child = 2 * at + 1;
        if (child >= size)
            break;
        if (child + 1 < size && heap [child + 1].d < heap [child].d)
            child++;
        if (heap [child].d >= item.d)
            break;
        heap [at] = heap [child];
        at = child;
    }
    if (size)
        heap [at] = item;
}

static inline void
s_max_push (s_pair_t *heap, uint32_t *n, s_pair_t item)
{
    uint32_t at = (*n)++;
    while (at > 0) {
        uint32_t parent = (at - 1) / 2;
        if (heap [parent].d >= item.d)
            break;
        heap [at] = heap [parent];
        at = parent;
    }
    heap [at] = item;
}

static inline void
s_max_pop (s_pair_t *heap, uint32_t *n)
{
    s_pair_t item = heap [--(*n)];
    uint32_t size = *n, at = 0;
    while (1) {
        uint32_t child = 2 * at + 1;
        if (child >= size)
            break;
        if (child + 1 < size && heap [child + 1].d > heap [child].d)
            child++;
        if (heap [child].d <= item.d)
            break;
        heap [at] = heap [child];
        at = child;
    }
    if (size)
        heap [at] = item;
}

//  Adds item to the max-heap of the best `most` items.
static inline void
s_keep_best (s_pair_t *heap, uint32_t *n, uint32_t most, s_pair_t item)
{
    s_max_push (heap, n, item);
    if (*n > most)
        s_max_pop (heap, n);
}

//  Insertion sort by (d, id), for the short lists of a neighbour rebuild.
static inline void
s_sort_small (s_pair_t *list, uint32_t n)
{
    for (uint32_t i = 1; i < n; i++) {
        s_pair_t item = list [i];
        uint32_t j = i;
        while (j > 0 && (list [j - 1].d > item.d
                     || (list [j - 1].d == item.d && list [j - 1].id > item.id))) {
            list [j] = list [j - 1];
            j--;
        }
        list [j] = item;
    }
}

//  --------------------------------------------------------------------------
//  Search contexts

static void
s_ctx_free (s_ctx_t *ctx)
{
    if (ctx) {
        free (ctx->visited);
        free (ctx->cand);
        free (ctx->top);
        free (ctx->work);
        free (ctx->work2);
        free (ctx->links);
        free (ctx->gather);
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
         + (size_t) (h->M0 + 1) * 8 + (size_t) h->cdim * 2
         + (h->search_graph_b? (size_t) h->cdim + 64: 0);
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
    if (after >= before)
        atomic_fetch_add (&h->pool_bytes, after - before);
    else
        atomic_fetch_sub (&h->pool_bytes, before - after);
    return rc;
}

//  A context from the pool, fitted for this many nodes and this ef; NULL on
//  out-of-memory.
static s_ctx_t *
s_ctx_acquire (s_hnsw_t *h, uint32_t nodes, uint32_t ef)
{
    pthread_mutex_lock (&h->pool_lock);
    s_ctx_t *ctx = h->pool;
    if (ctx)
        h->pool = ctx->next;
    pthread_mutex_unlock (&h->pool_lock);
    if (!ctx) {
        ctx = calloc (1, sizeof *ctx);
        if (!ctx)
            return NULL;
        ctx->work2 = malloc ((h->M0 + 1) * sizeof (s_pair_t));
        ctx->links = malloc ((h->M0 + 1) * sizeof (uint32_t));
        ctx->gather = malloc ((h->M0 + 1) * sizeof (uint32_t));
        ctx->qcode = h->sq8? aligned_alloc (64, (size_t) h->cdim * sizeof (int16_t)): NULL;
        ctx->qcode8 = h->search_graph_b? aligned_alloc (64, (size_t) h->cdim + 64): NULL;
        if (!ctx->work2 || !ctx->links || !ctx->gather || (h->sq8 && !ctx->qcode)
        ||  (h->search_graph_b && !ctx->qcode8)) {
            s_ctx_free (ctx);
            return NULL;
        }
        atomic_fetch_add (&h->pool_bytes, s_ctx_bytes (h, ctx));
    }
    //  The candidate heap grows with the walk; 4 x ef + M0 covers nearly every search
    if (s_ctx_fit (h, ctx, nodes, ef + 1, 4 * ef + h->M0 + 1)) {
        atomic_fetch_sub (&h->pool_bytes, s_ctx_bytes (h, ctx));
        s_ctx_free (ctx);
        return NULL;
    }
    return ctx;
}

static void
s_ctx_release (s_hnsw_t *h, s_ctx_t *ctx)
{
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
        for (uint32_t j = 0; j < n; j++) {
            float d = s_dist_node (h, kind, q, ll [1 + j]);
            if (d < *curd) {
                *curd = d;
                *cur = ll [1 + j];
                changed = 1;
            }
        }
    }
}

//  Lines of a vector the walks prefetch beyond its first (see S_PREFETCH_LINES).
static inline size_t
s_pf_lines (const s_hnsw_t *h)
{
    size_t lines = (h->link_off + 63) / 64;
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
    //  Branch-free: whether a neighbour was seen is a coin toss for the predictor
    uint32_t m = 0;
    for (uint32_t j = 0; j < n; j++) {
        uint32_t id = ll [1 + j];
        uint32_t fresh = visited [id] != tag;
        visited [id] = tag;
        ctx->gather [m] = id;
        m += fresh;
        S_PREFETCH (s_vec (h, id));
    }
    for (uint32_t j = 0; j < S_PREFETCH_AHEAD && j < m; j++)
        s_prefetch_vec (h, ctx->gather [j], pf_lines);
    return m;
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
        for (uint32_t j = 0; j < m; j++) {
            uint32_t id = ctx->gather [j];
            if (j + S_PREFETCH_AHEAD < m)
                s_prefetch_vec (h, ctx->gather [j + S_PREFETCH_AHEAD], pf_lines);
            float d = s_dist_node (h, kind, q, id);
            if (top_n < ef || d < lower) {
                s_min_push (ctx->cand, &ctx->cand_n, (s_pair_t) { d, id });
                //  The link list of the best candidate is what the walk reads next
                S_PREFETCH ((const char *) s_links (h, ctx->cand [0].id, level));
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
    if (qv_search_params_allows (filter, ep))
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
        for (uint32_t j = 0; j < m; j++) {
            uint32_t id = ctx->gather [j];
            if (j + S_PREFETCH_AHEAD < m)
                s_prefetch_vec (h, ctx->gather [j + S_PREFETCH_AHEAD], pf_lines);
            float d = s_dist_node (h, kind, q, id);
            if ((top_n < k || d < top [0].d) && qv_search_params_allows (filter, id))
                s_keep_best (top, &top_n, k, (s_pair_t) { d, id });
            if (near_n < wide || d < lower || top_n < k) {
                s_min_push (ctx->cand, &ctx->cand_n, (s_pair_t) { d, id });
                S_PREFETCH ((const char *) s_links (h, ctx->cand [0].id, 0));
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
static void
s_choose_kind (s_hnsw_t *h)
{
    h->insert = s_insert_generic;
    h->search_graph = s_search_graph_generic;
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

//  --------------------------------------------------------------------------
//  Storage

static size_t
s_upper_list_bytes (const s_hnsw_t *h, int level)
{
    return (size_t) level * (1 + h->M) * sizeof (uint32_t);
}

//  Grows the per-node arrays to hold nodes nodes, keeping content.
static int
s_reserve (qv_index_t *self, uint32_t nodes)
{
    s_hnsw_t *h = self->impl;
    if (nodes <= h->capacity)
        return 0;
    uint8_t *arena = aligned_alloc (64, (size_t) nodes * h->record);
    uint8_t *levels = calloc (nodes, 1);
    uint8_t *locks = calloc (nodes, 1);
    uint32_t **upper = calloc (nodes, sizeof (uint32_t *));
    float *floats = h->sq8? malloc ((size_t) nodes * h->dim * sizeof (float)): NULL;
    int32_t *cbias = h->sq8? malloc ((size_t) nodes * sizeof (int32_t)): NULL;
    if (!arena || !levels || !locks || !upper || (h->sq8 && (!floats || !cbias))) {
        free (floats);
        free (cbias);
        free (arena);
        free (levels);
        free (locks);
        free (upper);
        return qv_err (QV_ENOMEM, "out of memory for %u HNSW nodes", nodes);
    }
    if (self->count) {
        memcpy (arena, h->arena, (size_t) self->count * h->record);
        memcpy (levels, h->levels, self->count);
        memcpy (upper, h->upper, self->count * sizeof (uint32_t *));
        if (h->sq8) {
            memcpy (floats, h->floats, (size_t) self->count * h->dim * sizeof (float));
            memcpy (cbias, h->cbias, (size_t) self->count * sizeof (int32_t));
        }
    }
    free (h->floats);
    h->floats = floats;
    free (h->cbias);
    h->cbias = cbias;
    free (h->arena);
    free (h->levels);
    free (h->locks);
    free (h->upper);
    h->arena = arena;
    h->levels = levels;
    h->locks = locks;
    h->upper = upper;
    h->capacity = nodes;
    return 0;
}

static int
s_init (qv_index_t *self)
{
    const qv_index_params_t *p = &self->params;
    if (p->M < 2 || p->M > S_MAX_M)
        return qv_err (QV_EINVAL, "HNSW M %u out of range 2..%u", p->M, S_MAX_M);
    if (p->ef_construction > 65536)
        return qv_err (QV_EINVAL, "HNSW efConstruction %u above 65536", p->ef_construction);
    int sq8 = self->vt == &qv_hnsw_sq8_vtable;
    if (sq8 && self->metric == QV_METRIC_IP)
        return qv_err (QV_EINVAL, "HNSW_SQ8 walks on L2 codes: metric L2 or COSINE, not IP "
                       "(use HNSW for IP)");
    if (sq8 && self->dim > QV_ISQ8_MAX_DIM)
        return qv_err (QV_EINVAL, "HNSW_SQ8 dim %u above %u (use HNSW)", self->dim, QV_ISQ8_MAX_DIM);
    s_hnsw_t *h = calloc (1, sizeof *h);
    if (!h)
        return qv_err (QV_ENOMEM, "out of memory for an HNSW index");
    h->dim = self->dim;
    h->M = p->M;
    h->M0 = 2 * p->M;
    h->ef_construction = p->ef_construction < p->M? p->M: p->ef_construction;
    h->sq8 = sq8;
    h->cdim = sq8? qv_isq8_cdim (self->dim): 0;
    h->link_off = sq8? h->cdim: (size_t) self->dim * sizeof (float);
    h->step = 1;                //  until the first vectors train the codes
    if (sq8 && !(h->vmin = calloc (self->dim, sizeof (float)))) {
        free (h);
        return qv_err (QV_ENOMEM, "out of memory for an HNSW index");
    }
    h->record = (h->link_off + (1 + (size_t) h->M0) * sizeof (uint32_t) + 63) / 64 * 64;
    h->entry = S_NONE;
    h->max_level = -1;
    h->level_mult = 1.0 / log ((double) p->M);
    h->filter_exact_factor = QV_HNSW_FILTER_EXACT_FACTOR;
    h->is_ip = self->kernel_metric == QV_METRIC_IP;
    h->raw = h->is_ip? qv_dist_kernels ()->ip: qv_dist_kernels ()->l2sq;
    s_choose_kind (h);
    pthread_mutex_init (&h->global, NULL);
    pthread_mutex_init (&h->pool_lock, NULL);
    self->impl = h;
    return 0;
}

static void
s_destroy (qv_index_t *self)
{
    s_hnsw_t *h = self->impl;
    if (!h)
        return;
    if (h->upper)
        for (uint32_t i = 0; i < h->capacity; i++)
            free (h->upper [i]);
    free (h->upper);
    free (h->arena);
    free (h->levels);
    free (h->locks);
    free (h->floats);
    free (h->cbias);
    free (h->vmin);
    while (h->pool) {
        s_ctx_t *next = h->pool->next;
        s_ctx_free (h->pool);
        h->pool = next;
    }
    pthread_mutex_destroy (&h->global);
    pthread_mutex_destroy (&h->pool_lock);
    free (h);
    self->impl = NULL;
}

//  --------------------------------------------------------------------------
//  Build and add

typedef struct {
    s_hnsw_t *h;
    uint32_t first, last;       //  nodes [first, last) to insert
    atomic_uint *next;          //  next node to take
    uint32_t nodes;             //  total nodes after the insert
    atomic_int *rc;             //  first error
} s_worker_t;

static void *
s_worker (void *arg)
{
    s_worker_t *w = arg;
    s_ctx_t *ctx = s_ctx_acquire (w->h, w->nodes, w->h->ef_construction);
    if (!ctx) {
        atomic_store (w->rc, QV_ENOMEM);
        return NULL;
    }
    while (atomic_load (w->rc) == 0) {
        uint32_t c = atomic_fetch_add (w->next, 1);
        if (c >= w->last)
            break;
        int rc = w->h->insert (w->h, ctx, c);
        if (rc)
            atomic_store (w->rc, rc);
    }
    s_ctx_release (w->h, ctx);
    return NULL;
}

static int
s_add (qv_index_t *self, const float *vectors, uint32_t n)
{
    s_hnsw_t *h = self->impl;
    uint32_t first = self->count;
    uint32_t nodes = first + n;
    uint32_t capacity = h->capacity;
    if (nodes > capacity) {
        //  An exact fit on the first build, 1.5x growth on later adds
        uint64_t grow = first? (uint64_t) capacity + capacity / 2: 0;
        uint64_t want = grow > nodes? grow: nodes;
        int rc = s_reserve (self, (uint32_t) (want > UINT32_MAX - 1? UINT32_MAX - 1: want));
        if (rc)
            return rc;
    }
    if (h->sq8 && first == 0 && n) {
        //  The first vectors set the code ranges; later ones saturate outside them
        int rc = qv_isq8_train (vectors, n, h->dim, h->vmin, &h->step);
        if (rc)
            return rc;
    }
    for (uint32_t i = 0; i < n; i++) {
        uint32_t c = first + i;
        uint8_t *rec = h->arena + (size_t) c * h->record;
        if (h->sq8) {
            memcpy (h->floats + (size_t) c * h->dim, vectors + (size_t) i * h->dim,
                    (size_t) h->dim * sizeof (float));
            qv_isq8_encode (h->vmin, h->step, vectors + (size_t) i * h->dim, 1, h->dim, rec);
            h->cbias [c] = qv_isq8_bias (rec, h->cdim);
        }
        else
            memcpy (rec, vectors + (size_t) i * h->dim, h->link_off);
        memset (rec + h->link_off, 0, h->record - h->link_off);
        int level = s_random_level (h, self->params.seed, c);
        h->levels [c] = (uint8_t) level;
        if (level > 0) {
            h->upper [c] = calloc (1, s_upper_list_bytes (h, level));
            if (!h->upper [c]) {
                for (uint32_t j = first; j < c; j++) {
                    free (h->upper [j]);
                    h->upper [j] = NULL;
                }
                return qv_err (QV_ENOMEM, "out of memory for HNSW upper levels");
            }
            atomic_fetch_add (&h->upper_bytes, s_upper_list_bytes (h, level));
        }
    }
    long cores = sysconf (_SC_NPROCESSORS_ONLN);
    uint32_t threads = self->params.threads? self->params.threads: (uint32_t) (cores > 0? cores: 1);
    if (threads > 64)
        threads = 64;
    if (n < 256 * threads)
        threads = 1;
    atomic_uint next = first;
    atomic_int rc = 0;
    s_worker_t w = { h, first, nodes, &next, nodes, &rc };
    pthread_t tids [64];
    uint32_t started = 0;
    for (uint32_t t = 1; t < threads; t++)
        if (pthread_create (&tids [started], NULL, s_worker, &w) == 0)
            started++;
    s_worker (&w);
    for (uint32_t t = 0; t < started; t++)
        pthread_join (tids [t], NULL);
    if (rc)
        return qv_err (rc, "HNSW insert failed: out of memory");
    return 0;
}

static int
s_build (qv_index_t *self, const float *vectors, uint32_t n)
{
    return s_add (self, vectors, n);
}

//  --------------------------------------------------------------------------
//  Search

//  Exact scan of the allowed rows (for very selective filters).
static void
s_search_exact (const qv_index_t *self, const float *q, const qv_search_params_t *params,
                qv_topk_t *topk)
{
    const s_hnsw_t *h = self->impl;
    float thr = qv_topk_threshold (topk);
    if (params->allowed) {
        roaring_uint32_iterator_t it;
        roaring_init_iterator (params->allowed, &it);
        for (; it.has_value && it.current_value < self->count;
               roaring_advance_uint32_iterator (&it)) {
            uint32_t row = it.current_value;
            if (params->allow_fn && !params->allow_fn (row, params->allow_arg))
                continue;
            float d = s_dist (h, S_K_GENERIC, q, s_fvec (h, row));
            if (d <= thr) {
                qv_topk_push (topk, d, row);
                thr = qv_topk_threshold (topk);
            }
        }
        return;
    }
    for (uint32_t row = 0; row < self->count; row++) {
        if (!params->allow_fn (row, params->allow_arg))
            continue;
        float d = s_dist (h, S_K_GENERIC, q, s_fvec (h, row));
        if (d <= thr) {
            qv_topk_push (topk, d, row);
            thr = qv_topk_threshold (topk);
        }
    }
}

//  The list size of a search for k rows.
static uint32_t
s_ef (const qv_index_t *self, uint32_t k, const qv_search_params_t *params)
{
    uint32_t ef = params && params->ef? params->ef: (k > 64? k: 64);
    if (ef < k)
        ef = k;
    if (ef > self->count)       //  a larger list holds nothing more
        ef = self->count > k? self->count: k;
    return ef;
}

//  Whether a filtered search for a list of ef that allows about `allowed` rows scans
//  them instead of walking (see DESIGN).
static int
s_exact_for (const qv_index_t *self, uint32_t ef, uint64_t allowed)
{
    const s_hnsw_t *h = self->impl;
    return allowed <= ef
        || (double) allowed < h->filter_exact_factor * sqrt ((double) ef * self->count);
}

static int
s_scans_exact (const qv_index_t *self, uint32_t k, const qv_search_params_t *params)
{
    return s_exact_for (self, s_ef (self, k, params),
                        qv_search_params_allowed_estimate (params, self->count));
}

static int
s_search (const qv_index_t *self, const float *q, const qv_search_params_t *params,
          qv_topk_t *topk)
{
    s_hnsw_t *h = self->impl;
    uint32_t k = qv_topk_k (topk);
    uint32_t ef = s_ef (self, k, params);
    int filtered = qv_search_params_filtered (params);
    uint32_t wide = ef;         //  the filtered walk's list (see DESIGN)
    uint64_t allowed = filtered? qv_search_params_allowed_estimate (params, self->count): 0;
    if (filtered && !params->allow_fn && allowed >= self->count)
        filtered = 0;           //  a bitmap of every row: the unfiltered walk
    if (filtered) {
        if (s_exact_for (self, ef, allowed)) {
            s_search_exact (self, q, params, topk);
            return 0;
        }
        double sel = (double) allowed / self->count;
        double w = ceil (ef * pow (1 / sel, (1 - sel) / 2));
        wide = w < self->count? (uint32_t) w: self->count;
    }
    if (h->entry == S_NONE)
        return 0;
    s_ctx_t *ctx = s_ctx_acquire (h, self->count, wide > ef? wide: ef);
    if (!ctx)
        return qv_err (QV_ENOMEM, "out of memory for an HNSW search context");
    int rc;
    if (h->sq8) {
        //  Walk on codes, keeping ef candidates (allowed ones when filtered), then
        //  re-rank them with the exact float distance
        qv_isq8_query (h->vmin, h->step, q, h->dim, ctx->qcode);
        int32_t qq;
        if (h->search_graph_b && qv_isq8_query_s8 (ctx->qcode, h->cdim, ctx->qcode8, &qq)) {
            memcpy (ctx->qcode8 + h->cdim, &qq, sizeof qq);
            rc = h->search_graph_b (h, ctx, (const float *) (const void *) ctx->qcode8, ef,
                                    wide, filtered? ef: k, filtered? params: NULL);
        }
        else
            rc = h->search_graph (h, ctx, (const float *) (const void *) ctx->qcode, ef, wide,
                                  filtered? ef: k, filtered? params: NULL);
        for (uint32_t i = 0; rc == 0 && i < ctx->top_n; i++)
            S_PREFETCH (s_fvec (h, ctx->top [i].id));
        for (uint32_t i = 0; rc == 0 && i < ctx->top_n; i++)
            qv_topk_push (topk, s_dist (h, S_K_GENERIC, q, s_fvec (h, ctx->top [i].id)), ctx->top [i].id);
    }
    else {
        rc = h->search_graph (h, ctx, q, ef, wide, k, filtered? params: NULL);
        if (rc == 0)
            for (uint32_t i = 0; i < ctx->top_n; i++)
                qv_topk_push (topk, ctx->top [i].d, ctx->top [i].id);
    }
    s_ctx_release (h, ctx);
    return rc? qv_err (rc, "out of memory in an HNSW search"): 0;
}

//  --------------------------------------------------------------------------
//  Serialization

#define S_HEAD 32

static int
s_serialize (const qv_index_t *self, zchunk_t *chunk)
{
    const s_hnsw_t *h = self->impl;
    uint32_t count = self->count;
    uint64_t upper_u32 = 0;
    for (uint32_t i = 0; i < count; i++)
        upper_u32 += (uint64_t) h->levels [i] * (1 + h->M);
    uint8_t head [S_HEAD];
    qv_le_put32 (head, h->M);
    qv_le_put32 (head + 4, h->M0);
    qv_le_put32 (head + 8, (uint32_t) h->record);
    qv_le_put32 (head + 12, (uint32_t) h->link_off);
    qv_le_put32 (head + 16, h->entry);
    qv_le_put32 (head + 20, (uint32_t) h->max_level);
    qv_le_put32 (head + 24, (uint32_t) upper_u32);
    qv_le_put32 (head + 28, (uint32_t) (upper_u32 >> 32));
    zchunk_extend (chunk, head, sizeof head);
    if (count)
        zchunk_extend (chunk, h->levels, count);
    static const uint8_t zeros [4] = { 0 };
    zchunk_extend (chunk, zeros, (4 - count % 4) % 4);
    if (count)
        zchunk_extend (chunk, h->arena, (size_t) count * h->record);
    for (uint32_t i = 0; i < count; i++)
        if (h->levels [i])
            zchunk_extend (chunk, h->upper [i], s_upper_list_bytes (h, h->levels [i]));
    return 0;
}

//  Whether a link list read from a file is sound: count <= max, every id a node at
//  this level or above.
static int
s_list_ok (const s_hnsw_t *h, const uint32_t *ll, uint32_t max, uint32_t count, int level)
{
    uint32_t n = ll [0];
    if (n > max)
        return 0;
    for (uint32_t j = 0; j < n; j++)
        if (ll [1 + j] >= count || h->levels [ll [1 + j]] < level)
            return 0;
    return 1;
}

static int
s_load (qv_index_t *self, const uint8_t *payload, size_t size)
{
    s_hnsw_t *h = self->impl;
    uint32_t count = self->count;
    if (size < S_HEAD)
        return qv_err (QV_ECORRUPT, "HNSW payload truncated");
    uint32_t entry = qv_le_get32 (payload + 16);
    int max_level = (int) qv_le_get32 (payload + 20);
    uint64_t upper_u32 = (uint64_t) qv_le_get32 (payload + 24) | (uint64_t) qv_le_get32 (payload + 28) << 32;
    if (qv_le_get32 (payload) != h->M || qv_le_get32 (payload + 4) != h->M0
    ||  qv_le_get32 (payload + 8) != h->record || qv_le_get32 (payload + 12) != h->link_off)
        return qv_err (QV_ECORRUPT, "HNSW payload layout does not match its parameters");
    if (count == 0? (entry != S_NONE || max_level != -1)
                  : (entry >= count || max_level < 0 || max_level > S_MAX_LEVEL))
        return qv_err (QV_ECORRUPT, "HNSW entry point %u / level %d invalid", entry, max_level);
    size_t levels_bytes = count + (4 - count % 4) % 4;
    uint64_t want = S_HEAD + (uint64_t) levels_bytes + (uint64_t) count * h->record
                  + upper_u32 * sizeof (uint32_t);
    if (upper_u32 > size || want != size)
        return qv_err (QV_ECORRUPT, "HNSW payload is %zu bytes, its header describes %llu",
                       size, (unsigned long long) want);
    self->count = 0;
    int rc = s_reserve (self, count? count: 1);
    if (rc)
        return rc;
    const uint8_t *levels = payload + S_HEAD;
    uint64_t upper_sum = 0;
    for (uint32_t i = 0; i < count; i++) {
        if (levels [i] > max_level)
            return qv_err (QV_ECORRUPT, "HNSW node %u level %u above the top %d", i, levels [i], max_level);
        upper_sum += (uint64_t) levels [i] * (1 + h->M);
    }
    if (upper_sum != upper_u32 || (count && levels [entry] != max_level))
        return qv_err (QV_ECORRUPT, "HNSW levels are inconsistent");
    for (size_t i = count; i < levels_bytes; i++)
        if (levels [i])             //  the padding is written as zeros
            return qv_err (QV_ECORRUPT, "HNSW level padding byte %zu is not zero", i - count);
    memcpy (h->levels, levels, count);
    //  The level-0 arena is one copy
    const uint8_t *arena = levels + levels_bytes;
    memcpy (h->arena, arena, (size_t) count * h->record);
    const uint8_t *up = arena + (size_t) count * h->record;
    for (uint32_t i = 0; i < count; i++) {
        if (!levels [i])
            continue;
        size_t bytes = s_upper_list_bytes (h, levels [i]);
        h->upper [i] = malloc (bytes);
        if (!h->upper [i])
            return qv_err (QV_ENOMEM, "out of memory loading HNSW upper levels");
        memcpy (h->upper [i], up, bytes);
        up += bytes;
        atomic_fetch_add (&h->upper_bytes, bytes);
    }
    for (uint32_t i = 0; i < count; i++) {
        if (!s_list_ok (h, s_links (h, i, 0), h->M0, count, 0))
            return qv_err (QV_ECORRUPT, "HNSW node %u has a bad level-0 link list", i);
        for (int l = 1; l <= levels [i]; l++)
            if (!s_list_ok (h, s_links (h, i, l), h->M, count, l))
                return qv_err (QV_ECORRUPT, "HNSW node %u has a bad level-%d link list", i, l);
    }
    h->entry = entry;
    h->max_level = max_level;
    self->count = count;
    return 0;
}

//  --------------------------------------------------------------------------
//  HNSW_SQ8 payload: a prefix, the float vectors, then the HNSW payload above (whose
//  arena records hold codes):
//      u32 version (1), u32 cdim, f32 step, f32 vmin [dim], f32 vectors [count x dim]
#define S_SQ8_VERSION 1

static int
s_serialize_sq8 (const qv_index_t *self, zchunk_t *chunk)
{
    const s_hnsw_t *h = self->impl;
    uint8_t head [12];
    qv_le_put32 (head, S_SQ8_VERSION);
    qv_le_put32 (head + 4, h->cdim);
    uint32_t bits;
    memcpy (&bits, &h->step, 4);
    qv_le_put32 (head + 8, bits);
    zchunk_extend (chunk, head, sizeof head);
    zchunk_extend (chunk, h->vmin, (size_t) h->dim * sizeof (float));
    if (self->count)
        zchunk_extend (chunk, h->floats, (size_t) self->count * h->dim * sizeof (float));
    return s_serialize (self, chunk);
}

static int
s_load_sq8 (qv_index_t *self, const uint8_t *payload, size_t size)
{
    s_hnsw_t *h = self->impl;
    uint32_t count = self->count;
    size_t vbytes = (size_t) self->dim * sizeof (float);
    if (size < 12 + vbytes)
        return qv_err (QV_ECORRUPT, "HNSW_SQ8 payload truncated");
    uint32_t version = qv_le_get32 (payload);
    if (version != S_SQ8_VERSION)
        return qv_err (version > S_SQ8_VERSION? QV_EINVAL: QV_ECORRUPT,
                       "HNSW_SQ8 payload version %u, this build reads %u", version, S_SQ8_VERSION);
    uint32_t bits = qv_le_get32 (payload + 8);
    float step;
    memcpy (&step, &bits, 4);
    if (qv_le_get32 (payload + 4) != h->cdim || !isfinite (step) || !(step >= FLT_MIN))
        return qv_err (QV_ECORRUPT, "HNSW_SQ8 code layout (width %u, step %g) is invalid",
                       qv_le_get32 (payload + 4), step);
    memcpy (h->vmin, payload + 12, vbytes);
    for (uint32_t d = 0; d < self->dim; d++)
        if (!isfinite (h->vmin [d]))
            return qv_err (QV_ECORRUPT, "HNSW_SQ8 code range of dimension %u is not finite", d);
    h->step = step;
    uint64_t fbytes = (uint64_t) count * vbytes;
    if (fbytes > size - 12 - vbytes)
        return qv_err (QV_ECORRUPT, "HNSW_SQ8 payload is %zu bytes, too short for %u vectors", size, count);
    const uint8_t *floats = payload + 12 + vbytes;
    int rc = s_load (self, floats + fbytes, size - 12 - vbytes - fbytes);
    if (rc)
        return rc;
    memcpy (h->floats, floats, fbytes);
    for (uint32_t i = 0; i < count; i++)
        h->cbias [i] = qv_isq8_bias (h->arena + (size_t) i * h->record, h->cdim);
    return 0;
}

//  --------------------------------------------------------------------------
//  Accounting and knobs

static size_t
s_memory_bytes (const qv_index_t *self)
{
    const s_hnsw_t *h = self->impl;
    return sizeof *h + (size_t) h->capacity * (h->record + 1 + 1 + sizeof (uint32_t *))
         + (h->sq8? (size_t) h->capacity * (h->dim * sizeof (float) + sizeof (int32_t))
                    + h->dim * sizeof (float): 0)
         + atomic_load (&((s_hnsw_t *) h)->upper_bytes)
         + atomic_load (&((s_hnsw_t *) h)->pool_bytes);
}

static size_t
s_vector_bytes (const qv_index_t *self)
{
    return (size_t) self->count * self->dim * sizeof (float);
}

int
qv_hnsw_set_filter_exact_factor (qv_index_t *index, double factor)
{
    if (index->vt != &qv_hnsw_vtable && index->vt != &qv_hnsw_sq8_vtable)
        return qv_err (QV_EINVAL, "not an HNSW index");
    if (!(factor >= 0))
        return qv_err (QV_EINVAL, "filter exact-scan factor %g is negative", factor);
    ((s_hnsw_t *) index->impl)->filter_exact_factor = factor;
    return 0;
}

int
qv_hnsw_stats (const qv_index_t *index, int *max_level, uint64_t *links0)
{
    if (index->vt != &qv_hnsw_vtable && index->vt != &qv_hnsw_sq8_vtable)
        return qv_err (QV_EINVAL, "not an HNSW index");
    const s_hnsw_t *h = index->impl;
    uint64_t total = 0;
    for (uint32_t i = 0; i < index->count; i++)
        total += s_links (h, i, 0) [0];
    if (max_level)
        *max_level = h->max_level;
    if (links0)
        *links0 = total;
    return 0;
}

const qv_index_vtable_t qv_hnsw_vtable = {
    .type = QV_INDEX_HNSW,
    .name = "HNSW",
    .init = s_init,
    .destroy = s_destroy,
    .build = s_build,
    .add = s_add,
    .search = s_search,
    .scans_exact = s_scans_exact,
    .serialize = s_serialize,
    .load = s_load,
    .memory_bytes = s_memory_bytes,
    .vector_bytes = s_vector_bytes,
};

//  HNSW_SQ8: the same graph, walked on integer SQ8 codes (qv_isq8.h) kept in the
//  level-0 records in place of the floats; the floats are kept apart and read only to
//  re-rank the ef candidates a walk ends with.
const qv_index_vtable_t qv_hnsw_sq8_vtable = {
    .type = QV_INDEX_HNSW_SQ8,
    .name = "HNSW_SQ8",
    .init = s_init,
    .destroy = s_destroy,
    .build = s_build,
    .add = s_add,
    .search = s_search,
    .scans_exact = s_scans_exact,
    .serialize = s_serialize_sq8,
    .load = s_load_sq8,
    .memory_bytes = s_memory_bytes,
    .vector_bytes = s_vector_bytes,
};
