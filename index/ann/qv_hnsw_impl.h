//  HNSW internals shared by qv_hnsw.c (storage, build, search, the vtables),
//  qv_hnsw_graph.c (search contexts, graph walks, insertion, the per-CPU copies) and
//  qv_hnsw_store.c (the index object): the index struct, node addressing, distance
//  kinds, locks and heaps. Not a public header. See qv_hnsw.c for the design.
#ifndef QV_HNSW_IMPL_H_INCLUDED
#define QV_HNSW_IMPL_H_INCLUDED

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
    float *gdist;               //  their distances to the query (s_gather_dists)
    int16_t *qcode;             //  HNSW_SQ8: the query in code units, cdim int16 (+ 32:
                                //  room for the nibble form, 2 cdim + 4 bytes)
    int8_t *qcode8;             //  its byte form (qv_isq8_query_s8), cdim int8 + i32 qq
    struct s_ctx_t *next;       //  pool link
} s_ctx_t;

//  The upper-level link lists (about one node in M has them), found by rank instead
//  of through a pointer per node: bit id of bits is set if node id has lists, rank
//  [id / 64] counts the nodes with lists in the words before id's, and list holds
//  their lists in id order. About 0.7 bytes a node at M 16 where a pointer per node
//  took 8 (8 MB of a 1M-node graph). Lists are appended in increasing id order
//  (qv_hnsw_upper_append); a loaded graph's lists sit in one block.
typedef struct {
    uint64_t *bits;             //  (capacity + 63) / 64 words
    uint32_t *rank;             //  one per word of bits
    uint32_t **list;            //  count lists, room for cap
    uint32_t count, cap;
    uint32_t next;              //  the smallest id an append may take
    uint32_t *block;            //  the lists of a load, in one allocation (or NULL)
    size_t block_u32;           //  its length
} s_upper_t;

typedef struct s_hnsw_s {
    uint32_t dim;
    uint32_t M, M0;             //  links per node on upper levels / on level 0
    uint32_t ef_construction;
    size_t record;              //  bytes per level-0 record (multiple of 64; borrowed
                                //  floats: 4 (1 + M0), the links alone)
    size_t link_off;            //  offset of [count, links] in a record
    uint8_t *arena;             //  capacity records, 64-byte aligned (NULL once packed)
    //  An index on borrowed floats that takes no more adds keeps its level-0 lists
    //  packed (qv_hnsw_pack.c): node id's [count, links] at l0 + l0off [id]; NULL
    //  while they are in the arena's records
    uint32_t *l0;
    uint32_t *l0off;            //  l0_nodes offsets, in u32
    size_t l0_u32;              //  u32 in l0
    uint32_t l0_nodes;
    //  The vector (codes for HNSW_SQ8) of node id is at vbase + id * vstride: in the
    //  arena (vbase = arena, vstride = record), or borrowed (qv_index.h) for HNSW
    //  (vbase = the caller's floats, vstride = dim * 4), one address rule either way
    const uint8_t *vbase;
    size_t vstride;
    size_t vbytes;              //  bytes of one vector (the walks' prefetch)
    int borrowed;               //  HNSW: the vectors are the caller's, not in the
                                //  arena; HNSW_SQ8: floats is the caller's
    uint32_t capacity;          //  nodes the per-node arrays hold
    uint8_t *levels;            //  level of each node
    s_upper_t up;               //  per node with levels > 0: levels x (1 + M) u32
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
                                //  (count x dim, the caller's, when borrowed)
    int32_t *cbias;             //  capacity: qv_isq8_bias of each node's codes, for the
                                //  byte-form walk; derived from the codes, not stored
    uint32_t *label;            //  capacity: the row id of each node once the graph is
                                //  renumbered for locality (qv_hnsw_reorder); NULL while
                                //  node ids are row ids. Nodes added later are their rows
    //  The insert and search copies for this CPU and metric (s_choose_kind)
    int (*insert) (struct s_hnsw_s *h, s_ctx_t *ctx, uint32_t c);
    int (*search_graph) (struct s_hnsw_s *h, s_ctx_t *ctx, const float *q, uint32_t ef,
                         uint32_t wide, uint32_t k, const qv_search_params_t *filter);
    //  HNSW_SQ8 with AVX512_VNNI: the walk on a query's byte form (qcode8), for
    //  queries whose codes all fit a byte; with AVX2 only (b_nib set): the same on
    //  its nibble form (written over qcode); NULL on other CPUs
    int (*search_graph_b) (struct s_hnsw_s *h, s_ctx_t *ctx, const float *q, uint32_t ef,
                           uint32_t wide, uint32_t k, const qv_search_params_t *filter);
    int b_nib;                  //  search_graph_b takes the nibble form
    int ip_walk;                //  COSINE: search_graph_b walks every query on its
                                //  int8 dot-product form (S_K_SQ8IB_VNNI / _SQ8IN_AVX2)
    _Atomic (s_ctx_t *) hot;    //  an idle search context taken without the lock: one
                                //  exchange instead of a lock and unlock per search
    pthread_mutex_t pool_lock;  //  guards pool
    s_ctx_t *pool;              //  more idle search contexts
    atomic_size_t pool_bytes;   //  bytes held by all contexts
} s_hnsw_t;

//  --------------------------------------------------------------------------
//  Small helpers

//  Whether the vectors (codes) are in the level-0 records.
static inline int
s_vec_in_arena (const s_hnsw_t *h)
{
    return h->sq8 || !h->borrowed;
}

static inline const float *
s_vec (const s_hnsw_t *h, uint32_t id)
{
    return (const float *) (const void *) (h->vbase + (size_t) id * h->vstride);
}

//  The row id of node id (qv_hnsw_reorder).
static inline uint32_t
s_row (const s_hnsw_t *h, uint32_t id)
{
    return h->label? h->label [id]: id;
}

//  The float vector of row row: for HNSW_SQ8 in h->floats (by row), else in the arena
//  (plain HNSW is never renumbered: its nodes are its rows).
static inline const float *
s_frow (const s_hnsw_t *h, uint32_t row)
{
    return h->sq8? h->floats + (size_t) row * h->dim: s_vec (h, row);
}

//  The float vector of node id.
static inline const float *
s_fvec (const s_hnsw_t *h, uint32_t id)
{
    return s_frow (h, s_row (h, id));
}

//  Node id's upper lists, or NULL if it has none.
static inline uint32_t *
s_upper (const s_hnsw_t *h, uint32_t id)
{
    uint64_t word = h->up.bits [id >> 6], bit = 1ull << (id & 63);
    if (!(word & bit))
        return NULL;
    return h->up.list [h->up.rank [id >> 6] + (uint32_t) __builtin_popcountll (word & (bit - 1))];
}

static inline uint32_t *
s_links (const s_hnsw_t *h, uint32_t id, int level)
{
    if (level == 0)
        return h->l0? h->l0 + h->l0off [id]
                    : (uint32_t *) (h->arena + (size_t) id * h->record + h->link_off);
    return s_upper (h, id) + (size_t) (level - 1) * (1 + h->M);
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
//  The nibble form of the byte-form query (qv_isq8_query_nib) with per-node biases,
//  AVX2: the same integer distances again; only through s_dist_node
#define S_K_SQ8N_AVX2   12
//  COSINE (unit vectors, IP kernel): the walk ranks by the dot product of an int8
//  query (qv_isq8_query_ip) with the codes, -2 q8.c through the kernels above with
//  |q|^2 and every bias 0 (no per-node bias to load); VNNI, or the nibble form (AVX2)
#define S_K_SQ8IB_VNNI  13
#define S_K_SQ8IN_AVX2  14

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
    if (kind == S_K_SQ8N_AVX2)
        return (float) qv_isq8_l2_qn_avx2_inline ((const int8_t *) (const void *) q,
                                                  (const uint8_t *) s_vec (h, id),
                                                  h->cbias [id], h->cdim);
    if (kind == S_K_SQ8IB_VNNI)
        return (float) qv_isq8_l2_qb_vnni_inline ((const int8_t *) (const void *) q, 0,
                                                  (const uint8_t *) s_vec (h, id), 0, h->cdim);
    if (kind == S_K_SQ8IN_AVX2)
        return (float) qv_isq8_l2_qn_avx2_inline ((const int8_t *) (const void *) q,
                                                  (const uint8_t *) s_vec (h, id), 0, h->cdim);
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

//  Bytes of a node's upper lists at level levels.
static inline size_t
s_upper_list_bytes (const s_hnsw_t *h, int level)
{
    return (size_t) level * (1 + h->M) * sizeof (uint32_t);
}

//  --------------------------------------------------------------------------
//  Across the files (qv_hnsw_graph.c, qv_hnsw.c, qv_hnsw_store.c)

//  A search context from the pool, fitted for this many nodes and this ef; NULL on
//  out-of-memory. Back to the pool with qv_hnsw_ctx_release; qv_hnsw_ctx_free frees one.
s_ctx_t *
    qv_hnsw_ctx_acquire (s_hnsw_t *h, uint32_t nodes, uint32_t ef);
void
    qv_hnsw_ctx_release (s_hnsw_t *h, s_ctx_t *ctx);
void
    qv_hnsw_ctx_free (s_ctx_t *ctx);

//  Sets h->insert, h->search_graph and h->search_graph_b for this CPU and metric.
void
    qv_hnsw_choose_kind (s_hnsw_t *h);

//  Grows the per-node arrays to hold nodes nodes, keeping content. Returns 0 or
//  QV_ENOMEM (recorded).
int
    qv_hnsw_reserve (qv_index_t *self, uint32_t nodes);

//  Renumbers the nodes of a just-built HNSW_SQ8 graph so that neighbours sit near
//  each other in the arena (qv_hnsw_order.c); h->label maps them back to rows.
//  count: the nodes built (self->count is set once the build returns). Returns 0 or
//  QV_ENOMEM (recorded); QV_HNSW_REORDER=0 in the environment skips it.
int
    qv_hnsw_reorder (qv_index_t *self, uint32_t count);

//  An index on borrowed vectors takes no more adds once built or loaded: frees its
//  node locks and packs its level-0 lists (qv_hnsw.c).
void
    qv_hnsw_freeze (s_hnsw_t *h, uint32_t count);

//  Packs the level-0 lists of the count nodes of an index on borrowed floats that
//  takes no more adds, and frees the arena; leaves any other index, or one it lacks
//  the memory to pack, as it is (qv_hnsw_pack.c).
void
    qv_hnsw_pack (s_hnsw_t *h, uint32_t count);

//  Loads packed level-0 lists, l0_u32 little-endian u32 at lists, as a packed
//  payload holds them (qv_hnsw_store.c), in place of the arena. Checks each list's
//  count and that they fill the section exactly; the links are the caller's to
//  check. own (or NULL): the malloc'd buffer lists is in, handed over: the lists are
//  moved to its front and it is kept (the caller then owns it no more, and calls
//  qv_hnsw_pack_trim once it has read what follows the lists). 0, QV_ECORRUPT or
//  QV_ENOMEM (recorded).
int
    qv_hnsw_load_packed (s_hnsw_t *h, uint32_t count, const uint8_t *lists, size_t l0_u32,
                         uint8_t *own);

//  Makes l0 (l0_u32 u32, from qv_hugemem_alloc) and off (count offsets, malloc'd)
//  h's packed lists, in place of the arena, which it frees; h owns both after.
void
    qv_hnsw_pack_install (s_hnsw_t *h, uint32_t *l0, uint32_t *off, size_t l0_u32,
                          uint32_t count);

//  Sorts a link list's n ids ascending. A search expands every link of a node before
//  it moves on, so their order changes no answer (ties aside); sorted, the lists are
//  what the coded form stores (qv_hnsw_code.c), and a graph just built is the same
//  graph once saved and loaded. qv_hnsw_pack sorts every list it packs, the upper
//  ones too.
void
    qv_hnsw_sort_links (uint32_t *ids, uint32_t n);

//  The coded form of a packed index's lists in its object (qv_hnsw_code.c): write
//  appends u64 (bytes of the level-0 lists), the count level-0 lists, then each upper
//  list (nodes in id order, levels 1 up), each Elias-Fano coded (qv_eflist.h). load
//  reads that form (size bytes at p, nothing after it) into packed level-0 lists and
//  the upper lists' block (upper_u32 words, checked against h->levels by the caller),
//  refusing lists over M0 / M links or with ids out of range. 0, QV_ECORRUPT or
//  QV_ENOMEM (recorded).
int
    qv_hnsw_code_write (const s_hnsw_t *h, uint32_t count, zchunk_t *chunk);
int
    qv_hnsw_code_load (s_hnsw_t *h, uint32_t count, const uint8_t *p, size_t size,
                       uint64_t upper_u32);

//  Gives back the part of a kept buffer past the packed lists.
void
    qv_hnsw_pack_trim (s_hnsw_t *h);

//  The upper lists' table (qv_hnsw_upper.c). reserve grows it to nodes ids (from
//  old ids; new ids have none); append gives id (at least every id appended before
//  it) its lists, which the table owns from then on; free_index frees the table but
//  not the lists (moved to another table, qv_hnsw_order.c); free frees both. bytes:
//  the table's own memory, lists not included. 0 or QV_ENOMEM.
int
    qv_hnsw_upper_reserve (s_upper_t *up, uint32_t nodes, uint32_t old);
int
    qv_hnsw_upper_append (s_upper_t *up, uint32_t id, uint32_t *list);
//  truncate frees the lists of ids first and above (nodes: the ids the table holds).
void
    qv_hnsw_upper_truncate (s_upper_t *up, uint32_t first, uint32_t nodes);
void
    qv_hnsw_upper_free_index (s_upper_t *up);
void
    qv_hnsw_upper_free (s_upper_t *up);
size_t
    qv_hnsw_upper_bytes (const s_upper_t *up, uint32_t nodes);

//  Points the walks at self->borrowed (a borrowing index, once built or loaded, or
//  qv_index_rebind).
void
    qv_hnsw_rebind (qv_index_t *self);

//  The index object payloads of HNSW and HNSW_SQ8 (qv_index vtable entries).
int
    qv_hnsw_serialize (const qv_index_t *self, zchunk_t *chunk);
int
    qv_hnsw_load (qv_index_t *self, const uint8_t *payload, size_t size);
int
    qv_hnsw_sq8_serialize (const qv_index_t *self, zchunk_t *chunk);
int
    qv_hnsw_sq8_load (qv_index_t *self, const uint8_t *payload, size_t size);

#endif
