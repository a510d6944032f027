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
//  are separate: node id's upper lists (s_upper: found by rank, qv_hnsw_upper.c) are
//  levels [id] lists of (1 + M) u32 for levels 1..L.
//  On borrowed vectors (qv_index.h) a record is [count][links] alone, unpadded, and
//  the vectors are the caller's rows: the walks read node id's vector at vbase + id *
//  vstride in both layouts (qv_hnsw_impl.h), so neither pays a branch.
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
//  Files: qv_hnsw_impl.h (the struct, addressing, distance kinds, heaps),
//  qv_hnsw_graph.c (contexts, walks, insertion, per-CPU copies), qv_hnsw_store.c
//  (the index object), this file (storage, build, search, the vtables).
#include "qv_hnsw_impl.h"
#include "qv_hugemem.h"

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

//  --------------------------------------------------------------------------
//  Storage

//  Grows the per-node arrays to hold nodes nodes, keeping content.
int
qv_hnsw_reserve (qv_index_t *self, uint32_t nodes)
{
    s_hnsw_t *h = self->impl;
    if (nodes <= h->capacity)
        return 0;
    //  The records and the floats on huge pages: the walks read them at random
    uint8_t *arena = qv_hugemem_alloc ((size_t) nodes * h->record);
    uint8_t *levels = calloc (nodes, 1);
    uint8_t *locks = calloc (nodes, 1);
    int own_floats = h->sq8 && !h->borrowed;
    float *floats = own_floats? qv_hugemem_alloc ((size_t) nodes * h->dim * sizeof (float)): NULL;
    int32_t *cbias = h->sq8? malloc ((size_t) nodes * sizeof (int32_t)): NULL;
    uint32_t *label = h->label? malloc ((size_t) nodes * sizeof (uint32_t)): NULL;
    if (!arena || !levels || !locks || (own_floats && !floats) || (h->sq8 && !cbias)
    ||  (h->label && !label) || qv_hnsw_upper_reserve (&h->up, nodes, h->capacity)) {
        free (label);
        free (floats);
        free (cbias);
        free (arena);
        free (levels);
        free (locks);
        return qv_err (QV_ENOMEM, "out of memory for %u HNSW nodes", nodes);
    }
    if (self->count) {
        memcpy (arena, h->arena, (size_t) self->count * h->record);
        memcpy (levels, h->levels, self->count);
        if (own_floats)
            memcpy (floats, h->floats, (size_t) self->count * h->dim * sizeof (float));
        if (h->sq8)
            memcpy (cbias, h->cbias, (size_t) self->count * sizeof (int32_t));
        if (h->label)
            memcpy (label, h->label, (size_t) self->count * sizeof (uint32_t));
    }
    free (h->label);
    h->label = label;
    if (own_floats) {
        free (h->floats);
        h->floats = floats;
    }
    free (h->cbias);
    h->cbias = cbias;
    free (h->arena);
    free (h->levels);
    free (h->locks);
    h->arena = arena;
    if (s_vec_in_arena (h))
        h->vbase = arena;       //  the vectors (codes) are in the records
    h->levels = levels;
    h->locks = locks;
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
    h->borrowed = self->borrow;
    h->vbytes = sq8? h->cdim: (size_t) self->dim * sizeof (float);
    h->link_off = sq8 || !h->borrowed? h->vbytes: 0;
    h->step = 1;                //  until the first vectors train the codes
    if (sq8 && !(h->vmin = calloc (self->dim, sizeof (float)))) {
        free (h);
        return qv_err (QV_ENOMEM, "out of memory for an HNSW index");
    }
    h->record = h->link_off + (1 + (size_t) h->M0) * sizeof (uint32_t);
    if (h->link_off)
        h->record = (h->record + 63) / 64 * 64;
    //  Borrowed floats: the records hold the links alone, unpadded (M0 = 32: 132
    //  bytes, not 192: the graph of 1M nodes fits 150 MB), the vectors are the caller's
    h->vstride = h->link_off? h->record: h->vbytes;
    h->entry = S_NONE;
    h->max_level = -1;
    h->level_mult = 1.0 / log ((double) p->M);
    h->filter_exact_factor = QV_HNSW_FILTER_EXACT_FACTOR;
    h->is_ip = self->kernel_metric == QV_METRIC_IP;
    h->raw = h->is_ip? qv_dist_kernels ()->ip: qv_dist_kernels ()->l2sq;
    qv_hnsw_choose_kind (h);
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
    qv_hnsw_upper_free (&h->up);
    free (h->arena);
    free (h->l0);
    free (h->l0off);
    free (h->levels);
    free (h->locks);
    if (!h->borrowed)
        free (h->floats);
    free (h->cbias);
    free (h->label);
    free (h->vmin);
    qv_hnsw_ctx_free (atomic_load (&h->hot));
    while (h->pool) {
        s_ctx_t *next = h->pool->next;
        qv_hnsw_ctx_free (h->pool);
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
    const atomic_bool *cancel;  //  qv_index_set_cancel's flag, or NULL
} s_worker_t;

static void *
s_worker (void *arg)
{
    s_worker_t *w = arg;
    s_ctx_t *ctx = qv_hnsw_ctx_acquire (w->h, w->nodes, w->h->ef_construction);
    if (!ctx) {
        atomic_store (w->rc, QV_ENOMEM);
        return NULL;
    }
    while (atomic_load (w->rc) == 0) {
        if (w->cancel && atomic_load_explicit (w->cancel, memory_order_relaxed)) {
            atomic_store (w->rc, QV_EUNAVAIL);
            break;
        }
        uint32_t c = atomic_fetch_add (w->next, 1);
        if (c >= w->last)
            break;
        int rc = w->h->insert (w->h, ctx, c);
        if (rc)
            atomic_store (w->rc, rc);
    }
    qv_hnsw_ctx_release (w->h, ctx);
    return NULL;
}

static int
s_add (qv_index_t *self, const float *vectors, uint32_t n)
{
    s_hnsw_t *h = self->impl;
    if (h->l0)
        return qv_err (QV_EINVAL, "an HNSW index on borrowed vectors takes no adds once built");
    uint32_t first = self->count;
    uint32_t nodes = first + n;
    uint32_t capacity = h->capacity;
    if (nodes > capacity) {
        //  An exact fit on the first build, 1.5x growth on later adds
        uint64_t grow = first? (uint64_t) capacity + capacity / 2: 0;
        uint64_t want = grow > nodes? grow: nodes;
        int rc = qv_hnsw_reserve (self, (uint32_t) (want > UINT32_MAX - 1? UINT32_MAX - 1: want));
        if (rc)
            return rc;
    }
    if (h->sq8 && first == 0 && n) {
        //  The first vectors set the code ranges; later ones saturate outside them
        int rc = qv_isq8_train (vectors, n, h->dim, h->vmin, &h->step);
        if (rc)
            return rc;
    }
    if (h->borrowed)
        qv_hnsw_rebind (self);  //  qv_index.c takes no adds on borrowed vectors: a build
    for (uint32_t i = 0; i < n; i++) {
        uint32_t c = first + i;
        uint8_t *rec = h->arena + (size_t) c * h->record;
        if (h->sq8) {
            if (!h->borrowed)
                memcpy (h->floats + (size_t) c * h->dim, vectors + (size_t) i * h->dim,
                        (size_t) h->dim * sizeof (float));
            qv_isq8_encode (h->vmin, h->step, vectors + (size_t) i * h->dim, 1, h->dim, rec);
            h->cbias [c] = qv_isq8_bias (rec, h->cdim);
            if (h->label)
                h->label [c] = c;   //  added after a renumbered build: node c is row c
        }
        else
        if (!h->borrowed)
            memcpy (rec, vectors + (size_t) i * h->dim, h->link_off);
        memset (rec + h->link_off, 0, h->record - h->link_off);
        int level = s_random_level (h, self->params.seed, c);
        h->levels [c] = (uint8_t) level;
        if (level > 0) {
            uint32_t *list = calloc (1, s_upper_list_bytes (h, level));
            if (!list || qv_hnsw_upper_append (&h->up, c, list)) {
                free (list);
                qv_hnsw_upper_truncate (&h->up, first, h->capacity);
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
    s_worker_t w = { h, first, nodes, &next, nodes, &rc, self->cancel };
    pthread_t tids [64];
    uint32_t started = 0;
    for (uint32_t t = 1; t < threads; t++)
        if (pthread_create (&tids [started], NULL, s_worker, &w) == 0)
            started++;
    s_worker (&w);
    for (uint32_t t = 0; t < started; t++)
        pthread_join (tids [t], NULL);
    if (rc == QV_EUNAVAIL)
        return qv_err (rc, "HNSW build of %u rows cancelled", n);
    if (rc)
        return qv_err (rc, "HNSW insert failed: out of memory");
    return 0;
}

//  A build renumbers the graph for locality when it is done (qv_hnsw_reorder); later
//  adds append nodes whose ids are their rows.
static int
s_build (qv_index_t *self, const float *vectors, uint32_t n)
{
    int rc = s_add (self, vectors, n);
    if (rc == 0)
        rc = qv_hnsw_reorder (self, n);
    if (rc == 0)
        qv_hnsw_freeze (self->impl, n);
    return rc;
}

//  The node locks serve inserts only (searches read without them); an index on
//  borrowed vectors takes no adds after its build or load (qv_index.c), so it needs
//  none then (a byte a node), nor room in its link lists to grow.
void
qv_hnsw_freeze (s_hnsw_t *h, uint32_t count)
{
    if (h->borrowed) {
        free (h->locks);
        h->locks = NULL;
        qv_hnsw_pack (h, count);
    }
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
            float d = s_dist (h, S_K_GENERIC, q, s_frow (h, row));
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
        float d = s_dist (h, S_K_GENERIC, q, s_frow (h, row));
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
    s_ctx_t *ctx = qv_hnsw_ctx_acquire (h, self->count, wide > ef? wide: ef);
    if (!ctx)
        return qv_err (QV_ENOMEM, "out of memory for an HNSW search context");
    int rc;
    if (h->sq8) {
        //  Walk on codes, keeping ef candidates (allowed ones when filtered), then
        //  re-rank them with the exact float distance
        int32_t qq = 0;
        if (h->ip_walk)
            qv_isq8_query_ip (q, h->dim, h->cdim, ctx->qcode8);
        else
            qv_isq8_query (h->vmin, h->step, q, h->dim, ctx->qcode);
        if (h->ip_walk || (h->search_graph_b && qv_isq8_query_s8 (ctx->qcode, h->cdim, ctx->qcode8, &qq))) {
            memcpy (ctx->qcode8 + h->cdim, &qq, sizeof qq);
            const int8_t *qb = ctx->qcode8;
            if (h->b_nib) {
                //  The int16 form is spent: the nibble form goes over it
                qv_isq8_query_nib (ctx->qcode8, qq, h->cdim, (int8_t *) ctx->qcode);
                qb = (const int8_t *) ctx->qcode;
            }
            rc = h->search_graph_b (h, ctx, (const float *) (const void *) qb, ef,
                                    wide, filtered? ef: k, filtered? params: NULL);
        }
        else
            rc = h->search_graph (h, ctx, (const float *) (const void *) ctx->qcode, ef, wide,
                                  filtered? ef: k, filtered? params: NULL);
        //  Every line of the candidates' floats fetched before the first is compared
        //  (up to S_PREFETCH_LINES each; the hardware streams the rest), so their
        //  misses overlap: +4% q/s per CPU second at ef 16 on the 200k angular set
        //  against the first line alone (in-process A/B)
        size_t lines = ((size_t) h->dim * sizeof (float) + 63) / 64;
        if (lines > S_PREFETCH_LINES)
            lines = S_PREFETCH_LINES;
        for (uint32_t i = 0; rc == 0 && i < ctx->top_n; i++) {
            const char *v = (const char *) s_fvec (h, ctx->top [i].id);
            for (size_t line = 0; line < lines; line++)
                S_PREFETCH (v + line * 64);
        }
        for (uint32_t i = 0; rc == 0 && i < ctx->top_n; i++)
            qv_topk_push (topk, s_dist (h, S_K_GENERIC, q, s_fvec (h, ctx->top [i].id)),
                          s_row (h, ctx->top [i].id));
    }
    else {
        rc = h->search_graph (h, ctx, q, ef, wide, k, filtered? params: NULL);
        if (rc == 0)
            for (uint32_t i = 0; i < ctx->top_n; i++)
                qv_topk_push (topk, ctx->top [i].d, ctx->top [i].id);
    }
    qv_hnsw_ctx_release (h, ctx);
    return rc? qv_err (rc, "out of memory in an HNSW search"): 0;
}

//  --------------------------------------------------------------------------
//  Accounting and knobs

static size_t
s_memory_bytes (const qv_index_t *self)
{
    const s_hnsw_t *h = self->impl;
    size_t level0 = h->l0? (h->l0_u32 + h->l0_nodes) * sizeof (uint32_t)
                         : (size_t) h->capacity * h->record;
    return sizeof *h + level0 + (size_t) h->capacity * (1 + (h->locks? 1: 0))
         + qv_hnsw_upper_bytes (&h->up, h->capacity)
         + (h->sq8? (size_t) h->capacity * ((h->borrowed? 0: h->dim * sizeof (float))
                                            + sizeof (int32_t))
                    + h->dim * sizeof (float): 0)
         + (h->label? (size_t) h->capacity * sizeof (uint32_t): 0)
         + atomic_load (&((s_hnsw_t *) h)->upper_bytes)
         + atomic_load (&((s_hnsw_t *) h)->pool_bytes);
}

//  As s_memory_bytes with capacity = rows, and the upper levels' expected size: a
//  node reaches level 1 with probability 1/M and then holds M / (M - 1) levels on
//  average, each a list of 1 + M u32, in one allocation per node (16 bytes of malloc
//  overhead), and the table that finds them (12 bytes per 64 nodes, a pointer per
//  list and room for half as many more). Search contexts (pool_bytes) are left out:
//  they come with searches. The level-0 lists are counted in full records, as a build
//  holds them before it packs them (qv_hnsw_pack.c): an upper bound once packed.
static size_t
s_estimate_bytes (const qv_index_t *self, uint32_t rows)
{
    const s_hnsw_t *h = self->impl;
    size_t n = rows;
    size_t upper = n / (h->M - 1) * (1 + (size_t) h->M) * sizeof (uint32_t) + n / h->M * 16
                 + (n + 63) / 64 * 12 + n / h->M * sizeof (uint32_t *) * 3 / 2;
    return sizeof *h + n * (h->record + 1 + 1)
         + (h->sq8? n * ((h->borrowed? 0: h->dim * sizeof (float)) + sizeof (int32_t)
                         + sizeof (uint32_t))
                    + h->dim * sizeof (float): 0)
         + upper;
}

static size_t
s_vector_bytes (const qv_index_t *self)
{
    if (self->borrow)
        return 0;
    return (size_t) self->count * self->dim * sizeof (float);
}

void
qv_hnsw_rebind (qv_index_t *self)
{
    s_hnsw_t *h = self->impl;
    if (h->sq8)
        h->floats = (float *) self->borrowed;
    else
        h->vbase = (const uint8_t *) self->borrowed;
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
    .serialize = qv_hnsw_serialize,
    .load = qv_hnsw_load,
    .memory_bytes = s_memory_bytes,
    .vector_bytes = s_vector_bytes,
    .estimate_bytes = s_estimate_bytes,
    .borrows = 1,
    .rebind = qv_hnsw_rebind,
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
    .serialize = qv_hnsw_sq8_serialize,
    .load = qv_hnsw_sq8_load,
    .memory_bytes = s_memory_bytes,
    .vector_bytes = s_vector_bytes,
    .estimate_bytes = s_estimate_bytes,
    .borrows = 1,
    .rebind = qv_hnsw_rebind,
};
