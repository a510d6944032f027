//  IVF_FLAT, IVF_SQ8 and IVF_PQ: k-means coarse quantizer, contiguous inverted lists, probe + re-rank search.
//
//  DESIGN
//  Training runs k-means (qv_kmeans) for nlist centroids on a sample of the rows; for
//  IP (and COSINE, which qv_index.c hands over as IP on unit vectors) the k-means is
//  spherical, so all centroids have unit length and "nearest by L2" orders them exactly
//  as "largest inner product": one L2 assignment serves every metric. IVF_SQ8 trains
//  its per-dimension ranges on the rows themselves; IVF_PQ trains its codebooks on the
//  residuals (row - its centroid), as faiss does, which halves the quantization error.
//
//  Rows live in "position" order: list 0's rows, then list 1's, ..., so every list is
//  one contiguous run [offsets [l], offsets [l + 1]) of each per-position array: row
//  ids, codes, and the float vectors. An add re-lays the arrays out (a sealed segment's
//  index is built once; adds are rare), so the runs stay contiguous.
//
//  Memory, stated once (qv_ivf_code_bytes, qv_index_vector_bytes, memory_bytes):
//   - codes: what a probe scans. IVF_FLAT: the floats themselves (dim * 4 bytes/row);
//     IVF_SQ8: dim bytes/row (4x smaller); IVF_PQ: pq_m bytes/row (dim * 4 / pq_m
//     times smaller, >= 16x for pq_m <= dim / 4).
//   - vectors: IVF_SQ8 and IVF_PQ also keep every row's floats, to re-rank the best
//     candidates exactly; this is what lifts their recall@10 above 0.9. They are read
//     only for ef rows per query, so with L2 or IP they may be borrowed (qv_index.h:
//     a segment's column, in row order, read through ids [pos]) instead of kept.
//   - ids (4 bytes/row), the row -> position map (4 bytes/row), centroids (nlist *
//     dim * 4), SQ8 ranges (dim * 8), PQ codebooks (256 * dim * 4), and for L2
//     IVF_PQ the precomputed table (nlist * pq_m * 1 KiB, see below).
//
//  Search: distances from the query to all centroids (batch kernel), the nprobe
//  nearest lists are scanned. IVF_FLAT pushes exact distances into the caller's
//  collector. IVF_SQ8 scores codes against the prepared query; IVF_PQ builds one lookup
//  table per probed list from the query's residual (L2) or one per query plus the
//  list's <q, centroid> (IP); both collect the best ef positions by code distance,
//  then re-rank those with exact float distances. Buffers come from a per-thread
//  scratch, so a warm search does not allocate. A restrictive filter (fewer allowed
//  rows than the probed lists hold) switches to an exact scan of the allowed rows.
//
//  Payload layout (after the qv_index.c frame header; integers little-endian, floats
//  IEEE-754 little-endian, as the host writes them):
//
//      size                    field
//      4                       nlist (equals the frame's parameter)
//      4                       code size C in bytes per row (dim * 4, dim, or pq_m)
//      4                       trained: 1, or 0 for an index never given rows
//      if trained:
//      nlist * dim * 4         centroids
//      (nlist + 1) * 4         list offsets: 0 = o[0] <= o[1] <= ... <= o[nlist] = count
//      count * 4               row id of each position: a permutation of 0..count-1
//      count * dim * 4         float vectors by position (left out on borrowed
//                              vectors: frame version 3)
//      IVF_SQ8: count * dim    codes by position; dim * 4 minima; dim * 4 steps
//      IVF_PQ:  count * pq_m   codes by position; 256 * dim * 4 codebooks
//
//  Load checks each size against the payload and every offset and id; anything
//  inconsistent is QV_ECORRUPT.
#include "qv_ivf.h"
#include "qv_kmeans.h"
#include "qv_pq.h"
#include "qv_sq8.h"
#include "qv_le.h"

#include <math.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define S_BLOCK         256         //  positions per batch-kernel call
#define S_MAX_NLIST     (1u << 20)
#define S_ENCODE_BLOCK  4096        //  rows encoded per residual buffer fill
#define S_NPROBE_DEFAULT 16

typedef struct {
    qv_index_type_t kind;           //  IVF_FLAT, IVF_SQ8 or IVF_PQ
    uint32_t nlist;
    size_t code_size;               //  bytes per row of codes (dim * 4 for IVF_FLAT)
    bool trained;
    float *centroids;               //  nlist * dim
    uint32_t *offsets;              //  nlist + 1: list l is positions [offsets [l], offsets [l + 1])
    uint32_t *ids;                  //  count: row id at each position
    uint32_t *pos_of_row;           //  count: position of each row id
    float *vectors;                 //  count * dim by position, 64-byte aligned; NULL
                                    //  when borrowed (self->borrowed, by row)
    uint8_t *codes;                 //  count * code_size by position (IVF_SQ8, IVF_PQ)
    qv_sq8_t *sq8;                  //  IVF_SQ8's quantizer
    qv_pq_t *pq;                    //  IVF_PQ's quantizer (of residuals)
    float *pq_table;                //  IVF_PQ, L2: nlist * m * 256 query-independent terms, or NULL
} s_ivf_t;

//  The float vector at position pos: kept by position, or borrowed by row.
static inline const float *
s_pos_vec (const qv_index_t *self, uint32_t pos)
{
    const s_ivf_t *ivf = self->impl;
    return self->borrow? self->borrowed + (size_t) ivf->ids [pos] * self->dim
                       : ivf->vectors + (size_t) pos * self->dim;
}

static int
s_threads (const qv_index_t *self)
{
    if (self->params.threads)
        return (int) self->params.threads;
    long cores = sysconf (_SC_NPROCESSORS_ONLN);
    return cores > 0? (int) cores: 1;
}

static void *
s_alloc_aligned (size_t bytes)
{
    bytes = (bytes + 63) / 64 * 64;
    return aligned_alloc (64, bytes? bytes: 64);
}

//  --------------------------------------------------------------------------
//  Lifecycle

static int
s_init_kind (qv_index_t *self, qv_index_type_t kind)
{
    const qv_index_params_t *p = &self->params;
    if (p->nlist == 0 || p->nlist > S_MAX_NLIST)
        return qv_err (QV_EINVAL, "nlist %u out of range 1..%u", p->nlist, S_MAX_NLIST);
    if (kind == QV_INDEX_IVF_PQ) {
        if (p->pq_nbits != 8)
            return qv_err (QV_EINVAL, "IVF_PQ supports nbits 8, not %u", p->pq_nbits);
        if (p->pq_m == 0 || p->pq_m > self->dim || self->dim % p->pq_m != 0)
            return qv_err (QV_EINVAL, "IVF_PQ: dim %u is not a multiple of m %u (the number of sub-quantizers)",
                           self->dim, p->pq_m);
    }
    s_ivf_t *ivf = calloc (1, sizeof *ivf);
    if (!ivf)
        return qv_err (QV_ENOMEM, "out of memory for an IVF index");
    ivf->kind = kind;
    ivf->nlist = p->nlist;
    ivf->code_size = kind == QV_INDEX_IVF_FLAT? (size_t) self->dim * sizeof (float)
                   : kind == QV_INDEX_IVF_SQ8? self->dim: p->pq_m;
    //  Centroids are allocated by training or loading: a frame's nlist is only
    //  trusted once the payload's size agrees with it.
    ivf->offsets = calloc ((size_t) ivf->nlist + 1, sizeof (uint32_t));
    self->impl = ivf;
    if (!ivf->offsets)
        return qv_err (QV_ENOMEM, "out of memory for %u IVF lists", ivf->nlist);
    return 0;
}

static int
s_alloc_centroids (const qv_index_t *self)
{
    s_ivf_t *ivf = self->impl;
    if (!ivf->centroids)
        ivf->centroids = s_alloc_aligned ((size_t) ivf->nlist * self->dim * sizeof (float));
    if (!ivf->centroids)
        return qv_err (QV_ENOMEM, "out of memory for %u IVF centroids", ivf->nlist);
    return 0;
}

static int s_init_flat (qv_index_t *self) { return s_init_kind (self, QV_INDEX_IVF_FLAT); }
static int s_init_sq8 (qv_index_t *self) { return s_init_kind (self, QV_INDEX_IVF_SQ8); }
static int s_init_pq (qv_index_t *self) { return s_init_kind (self, QV_INDEX_IVF_PQ); }

static void
s_destroy (qv_index_t *self)
{
    s_ivf_t *ivf = self->impl;
    if (!ivf)
        return;
    free (ivf->centroids);
    free (ivf->offsets);
    free (ivf->ids);
    free (ivf->pos_of_row);
    free (ivf->vectors);
    free (ivf->codes);
    qv_sq8_destroy (&ivf->sq8);
    qv_pq_destroy (&ivf->pq);
    free (ivf->pq_table);
    free (ivf);
    self->impl = NULL;
}

//  --------------------------------------------------------------------------
//  IVF_PQ precomputed table
//
//  For L2 on residuals, with c the list's centroid and r the code's decoded residual,
//      |q - c - r|^2 = |q - c|^2 + (|r|^2 + 2 <c, r>) - 2 <q, r>
//  The first term is the coarse distance the probe already computed, the middle one
//  depends on the list and the code only, and the last on the query only. Keeping the
//  middle term per (list, sub-quantizer, centroid) turns each probed list's lookup
//  table into m * 256 additions instead of m * 256 sub-vector distances (faiss's
//  "precomputed table"). It costs nlist * m * 1 KiB, counted in memory_bytes; above
//  QV_IVF_PQ_TABLE_MAX bytes (environment, default 256 MiB) tables are computed per
//  list instead.

static size_t
s_pq_table_max (void)
{
    const char *env = getenv ("QV_IVF_PQ_TABLE_MAX");
    return env? (size_t) strtoull (env, NULL, 10): (size_t) 256 << 20;
}

//  Builds ivf->pq_table if the index is an L2 IVF_PQ and the table fits the limit.
static int
s_pq_table_build (qv_index_t *self)
{
    s_ivf_t *ivf = self->impl;
    free (ivf->pq_table);
    ivf->pq_table = NULL;
    if (ivf->kind != QV_INDEX_IVF_PQ || self->kernel_metric != QV_METRIC_L2)
        return 0;
    size_t entries = ivf->code_size * QV_PQ_KSUB;
    size_t dsub = self->dim / ivf->code_size;
    if ((size_t) ivf->nlist * entries * sizeof (float) > s_pq_table_max ())
        return 0;
    ivf->pq_table = malloc ((size_t) ivf->nlist * entries * sizeof (float));
    float *norms = malloc (entries * sizeof (float));
    if (!ivf->pq_table || !norms) {
        free (norms);
        free (ivf->pq_table);
        ivf->pq_table = NULL;
        return qv_err (QV_ENOMEM, "out of memory for the IVF_PQ table (%u lists)", ivf->nlist);
    }
    const float *books = qv_pq_codebooks (ivf->pq);
    for (size_t e = 0; e < entries; e++)
        norms [e] = qv_dist_kernels ()->ip (books + e * dsub, books + e * dsub, dsub);
    for (uint32_t l = 0; l < ivf->nlist; l++) {
        float *table = ivf->pq_table + (size_t) l * entries;
        qv_pq_lut (ivf->pq, QV_METRIC_IP, ivf->centroids + (size_t) l * self->dim, table);
        for (size_t e = 0; e < entries; e++)
            table [e] = 2 * table [e] + norms [e];
    }
    free (norms);
    return 0;
}

//  --------------------------------------------------------------------------
//  Training

//  Trains the coarse quantizer and the code quantizer on n rows.
static int
s_train (qv_index_t *self, const float *vectors, uint32_t n)
{
    s_ivf_t *ivf = self->impl;
    size_t dim = self->dim;
    if (n < ivf->nlist)
        return qv_err (QV_EINVAL, "%s needs at least nlist=%u rows to train, got %u",
                       self->vt->name, ivf->nlist, n);
    if (ivf->kind == QV_INDEX_IVF_PQ && n < QV_PQ_KSUB)
        return qv_err (QV_EINVAL, "IVF_PQ needs at least %d rows to train, got %u", QV_PQ_KSUB, n);

    int rc = s_alloc_centroids (self);
    if (rc)
        return rc;
    qv_kmeans_params_t kparams;
    qv_kmeans_params_default (&kparams);
    kparams.seed = self->params.seed;
    kparams.niter = 10;             //  as faiss's IVF training: 20 barely moved recall on SIFT-small
    kparams.nthreads = s_threads (self);
    kparams.spherical = self->kernel_metric == QV_METRIC_IP;
    kparams.cancel = self->cancel;
    rc = qv_kmeans_train (vectors, n, dim, ivf->nlist, &kparams, ivf->centroids);
    if (rc)
        return rc;

    if (ivf->kind == QV_INDEX_IVF_SQ8) {
        qv_sq8_destroy (&ivf->sq8);      //  from a failed earlier training, if any
        ivf->sq8 = qv_sq8_new (dim);
        if (!ivf->sq8)
            return qv_err (QV_ENOMEM, "out of memory for SQ8");
        rc = qv_sq8_train (ivf->sq8, vectors, n);
    }
    else
    if (ivf->kind == QV_INDEX_IVF_PQ) {
        qv_pq_destroy (&ivf->pq);
        ivf->pq = qv_pq_new (dim, self->params.pq_m);
        if (!ivf->pq)
            return qv_err (QV_ENOMEM, "out of memory for PQ");
        //  Residuals of an even sample of rows, as many as PQ's k-means will use.
        size_t ns = (size_t) QV_PQ_KSUB * kparams.max_points_per_centroid;
        if (ns > n)
            ns = n;
        float *sample = malloc (ns * dim * sizeof (float));
        uint32_t *labels = malloc (ns * sizeof (uint32_t));
        if (!sample || !labels)
            rc = qv_err (QV_ENOMEM, "out of memory for %zu PQ training rows", ns);
        else {
            for (size_t i = 0; i < ns; i++) {
                size_t row = ns == n? i: (size_t) ((double) i * n / ns);
                memcpy (sample + i * dim, vectors + row * dim, dim * sizeof (float));
            }
            rc = qv_kmeans_assign (ivf->centroids, ivf->nlist, dim, sample, ns,
                                   kparams.nthreads, labels, NULL);
            for (size_t i = 0; rc == 0 && i < ns; i++)
                for (size_t d = 0; d < dim; d++)
                    sample [i * dim + d] -= ivf->centroids [(size_t) labels [i] * dim + d];
            if (rc == 0) {
                kparams.spherical = false;
                rc = qv_pq_train (ivf->pq, sample, ns, &kparams);
            }
        }
        free (sample);
        free (labels);
    }
    if (rc == 0)
        rc = s_pq_table_build (self);
    if (rc == 0)
        ivf->trained = true;
    return rc;
}

//  --------------------------------------------------------------------------
//  Adding rows

//  Codes of n rows with their list labels into codes [n * code_size].
static int
s_encode (const qv_index_t *self, const float *vectors, const uint32_t *labels, size_t n,
          uint8_t *codes)
{
    const s_ivf_t *ivf = self->impl;
    size_t dim = self->dim;
    if (ivf->kind == QV_INDEX_IVF_SQ8) {
        qv_sq8_encode (ivf->sq8, vectors, n, codes);
        return 0;
    }
    size_t block = n < S_ENCODE_BLOCK? n: S_ENCODE_BLOCK;
    float *residuals = malloc ((block? block: 1) * dim * sizeof (float));
    if (!residuals)
        return qv_err (QV_ENOMEM, "out of memory encoding %zu rows", n);
    int rc = 0;
    for (size_t start = 0; start < n && rc == 0; start += block) {
        size_t m = n - start < block? n - start: block;
        for (size_t i = 0; i < m; i++) {
            const float *x = vectors + (start + i) * dim;
            const float *c = ivf->centroids + (size_t) labels [start + i] * dim;
            for (size_t d = 0; d < dim; d++)
                residuals [i * dim + d] = x [d] - c [d];
        }
        rc = qv_pq_encode (ivf->pq, residuals, m, codes + start * ivf->code_size);
    }
    free (residuals);
    return rc;
}

//  Appends n rows (ids self->count..) and lays every list out again, contiguously.
static int
s_add (qv_index_t *self, const float *vectors, uint32_t n)
{
    s_ivf_t *ivf = self->impl;
    int rc = 0;
    if (!ivf->trained) {
        rc = s_train (self, vectors, n);
        if (rc)
            return rc;
    }
    size_t dim = self->dim;
    size_t old = self->count, total = old + n;
    size_t csize = ivf->kind == QV_INDEX_IVF_FLAT? 0: ivf->code_size;
    uint32_t *labels = malloc ((n? n: 1) * sizeof (uint32_t));
    uint8_t *new_codes = csize? malloc (n * csize + 1): NULL;
    uint32_t *offsets = calloc ((size_t) ivf->nlist + 1, sizeof (uint32_t));
    uint32_t *fill = calloc ((size_t) ivf->nlist, sizeof (uint32_t));
    uint32_t *ids = malloc (total * sizeof (uint32_t));
    uint32_t *pos_of_row = malloc (total * sizeof (uint32_t));
    bool keep = !self->borrow;      //  the floats (qv_index.c adds nothing to a borrower)
    float *vecs = keep? s_alloc_aligned (total * dim * sizeof (float)): NULL;
    uint8_t *codes = csize? malloc (total * csize): NULL;
    if (!labels || !offsets || !fill || !ids || !pos_of_row || (keep && !vecs)
    ||  (csize && (!new_codes || !codes))) {
        rc = qv_err (QV_ENOMEM, "out of memory adding %u rows to an IVF index", n);
        goto cleanup;
    }
    rc = qv_kmeans_assign (ivf->centroids, ivf->nlist, dim, vectors, n, s_threads (self),
                           labels, NULL);
    if (rc == 0 && csize)
        rc = s_encode (self, vectors, labels, n, new_codes);
    if (rc)
        goto cleanup;

    //  New offsets: old list sizes plus the new rows' labels, then a prefix sum.
    for (uint32_t l = 0; l < ivf->nlist; l++)
        offsets [l + 1] = ivf->offsets [l + 1] - ivf->offsets [l];
    for (uint32_t i = 0; i < n; i++)
        offsets [labels [i] + 1]++;
    for (uint32_t l = 0; l < ivf->nlist; l++)
        offsets [l + 1] += offsets [l];
    //  Each list: its old run first, then its new rows in id order.
    for (uint32_t l = 0; l < ivf->nlist; l++) {
        uint32_t from = ivf->offsets [l], len = ivf->offsets [l + 1] - from, to = offsets [l];
        if (len) {
            memcpy (ids + to, ivf->ids + from, len * sizeof (uint32_t));
            if (keep)
                memcpy (vecs + (size_t) to * dim, ivf->vectors + (size_t) from * dim,
                        (size_t) len * dim * sizeof (float));
            if (csize)
                memcpy (codes + (size_t) to * csize, ivf->codes + (size_t) from * csize,
                        (size_t) len * csize);
        }
        fill [l] = to + len;
    }
    for (uint32_t i = 0; i < n; i++) {
        uint32_t pos = fill [labels [i]]++;
        ids [pos] = (uint32_t) (old + i);
        if (keep)
            memcpy (vecs + (size_t) pos * dim, vectors + (size_t) i * dim, dim * sizeof (float));
        if (csize)
            memcpy (codes + (size_t) pos * csize, new_codes + (size_t) i * csize, csize);
    }
    for (size_t pos = 0; pos < total; pos++)
        pos_of_row [ids [pos]] = (uint32_t) pos;

    //  Swap the new layout in; the old arrays are freed below.
    uint32_t *swap_offsets = ivf->offsets; ivf->offsets = offsets; offsets = swap_offsets;
    uint32_t *swap_ids = ivf->ids; ivf->ids = ids; ids = swap_ids;
    uint32_t *swap_pos = ivf->pos_of_row; ivf->pos_of_row = pos_of_row; pos_of_row = swap_pos;
    float *swap_vecs = ivf->vectors; ivf->vectors = vecs; vecs = swap_vecs;
    uint8_t *swap_codes = ivf->codes; ivf->codes = codes; codes = swap_codes;
cleanup:
    free (labels);
    free (new_codes);
    free (offsets);
    free (fill);
    free (ids);
    free (pos_of_row);
    free (vecs);
    free (codes);
    return rc;
}

static int
s_build (qv_index_t *self, const float *vectors, uint32_t n)
{
    int rc = s_train (self, vectors, n);
    if (rc == 0 && self->cancel && atomic_load (self->cancel))
        rc = qv_err (QV_EUNAVAIL, "%s build of %u rows cancelled", self->vt->name, n);
    return rc? rc: s_add (self, vectors, n);
}

//  --------------------------------------------------------------------------
//  Per-thread search scratch

typedef struct {
    float *coarse;                  //  distance to each centroid
    size_t coarse_cap;
    float *query;                   //  residual query (PQ, L2) or prepared SQ8 query
    size_t query_cap;
    float *lut;                     //  PQ lookup table, pq_m * 256
    size_t lut_cap;
    float *qlut;                    //  PQ: the query's own table, pq_m * 256
    size_t qlut_cap;
    int64_t *probes;                //  lists to scan, nearest first
    size_t probes_cap;
    uint32_t *cand_pos;             //  re-rank candidates' positions, 2 * ef
    float *cand_score;              //  and their code distances
    size_t cand_cap;                //  entries cand_pos and cand_score hold
    qv_topk_t *select;              //  picks the probes
} s_scratch_t;

static pthread_key_t s_scratch_key;
static pthread_once_t s_scratch_once = PTHREAD_ONCE_INIT;

static void
s_scratch_free (void *arg)
{
    s_scratch_t *scratch = arg;
    if (scratch) {
        free (scratch->coarse);
        free (scratch->query);
        free (scratch->lut);
        free (scratch->qlut);
        free (scratch->probes);
        free (scratch->cand_pos);
        free (scratch->cand_score);
        qv_topk_destroy (&scratch->select);
        free (scratch);
    }
}

static void
s_scratch_key_init (void)
{
    pthread_key_create (&s_scratch_key, s_scratch_free);
}

//  Grows *buf to hold count elements of size bytes; 0 or -1.
static int
s_grow (void **buf, size_t *cap, size_t count, size_t size)
{
    if (*cap >= count)
        return 0;
    void *grown = realloc (*buf, count * size);
    if (!grown)
        return -1;
    *buf = grown;
    *cap = count;
    return 0;
}

//  This thread's scratch, with room for the given sizes; NULL if out of memory.
static s_scratch_t *
s_scratch (size_t nlist, size_t dim, size_t lut, size_t cand)
{
    pthread_once (&s_scratch_once, s_scratch_key_init);
    s_scratch_t *scratch = pthread_getspecific (s_scratch_key);
    if (!scratch) {
        scratch = calloc (1, sizeof *scratch);
        if (!scratch)
            return NULL;
        scratch->select = qv_topk_new (1);
        if (!scratch->select || pthread_setspecific (s_scratch_key, scratch)) {
            s_scratch_free (scratch);
            return NULL;
        }
    }
    size_t cand_cap = scratch->cand_cap;
    if (s_grow ((void **) &scratch->coarse, &scratch->coarse_cap, nlist, sizeof (float))
    ||  s_grow ((void **) &scratch->query, &scratch->query_cap, dim, sizeof (float))
    ||  s_grow ((void **) &scratch->lut, &scratch->lut_cap, lut ? lut: 1, sizeof (float))
    ||  s_grow ((void **) &scratch->qlut, &scratch->qlut_cap, lut ? lut: 1, sizeof (float))
    ||  s_grow ((void **) &scratch->probes, &scratch->probes_cap, nlist, sizeof (int64_t)))
        return NULL;
    if (cand_cap < cand) {
        size_t cap = cand_cap;
        if (s_grow ((void **) &scratch->cand_pos, &cap, cand, sizeof (uint32_t)))
            return NULL;
        cap = cand_cap;
        if (s_grow ((void **) &scratch->cand_score, &cap, cand, sizeof (float)))
            return NULL;
        scratch->cand_cap = cand;
    }
    return scratch;
}

//  --------------------------------------------------------------------------
//  Search

//  Exact scan of the rows params allows: used when they are fewer than a probe
//  would visit.
static int
s_search_allowed (const qv_index_t *self, const float *query,
                  const qv_search_params_t *params, qv_topk_t *topk)
{
    const s_ivf_t *ivf = self->impl;
    const qv_dist_kernels_t *kern = qv_dist_kernels ();
    int is_ip = self->kernel_metric == QV_METRIC_IP;
    qv_dist_fn pair = is_ip? kern->ip: kern->l2sq;
    uint32_t count = self->count;
    float thr = qv_topk_threshold (topk);
    roaring_uint32_iterator_t it;
    uint32_t row = 0;
    if (params->allowed) {
        roaring_init_iterator (params->allowed, &it);
        if (!it.has_value)
            return 0;
        row = it.current_value;
    }
    while (row < count) {
        if (!params->allow_fn || params->allow_fn (row, params->allow_arg)) {
            float d = pair (query, s_pos_vec (self, ivf->pos_of_row [row]), self->dim);
            float score = is_ip? -d: d;
            if (score <= thr) {
                qv_topk_push (topk, score, row);
                thr = qv_topk_threshold (topk);
            }
        }
        if (params->allowed) {
            if (!roaring_advance_uint32_iterator (&it))
                break;
            row = it.current_value;
        }
        else
            row++;
    }
    return 0;
}

//  The nprobe lists nearest to query into scratch->probes, nearest first, and their
//  number into *nprobes. Returns 0 or QV_ENOMEM.
static int
s_pick_probes (const qv_index_t *self, const float *query, uint32_t nprobe,
               s_scratch_t *scratch, uint32_t *nprobes)
{
    const s_ivf_t *ivf = self->impl;
    qv_dist_kernels ()->l2sq_batch (query, ivf->centroids, ivf->nlist, self->dim,
                                    scratch->coarse);
    if (nprobe >= ivf->nlist) {
        for (uint32_t l = 0; l < ivf->nlist; l++)
            scratch->probes [l] = l;
        *nprobes = ivf->nlist;
        return 0;
    }
    int rc = qv_topk_resize (scratch->select, nprobe);
    if (rc)
        return rc;
    float thr = INFINITY;
    for (uint32_t l = 0; l < ivf->nlist; l++)
        if (scratch->coarse [l] <= thr) {
            qv_topk_push (scratch->select, scratch->coarse [l], l);
            thr = qv_topk_threshold (scratch->select);
        }
    *nprobes = qv_topk_extract (scratch->select, scratch->probes, NULL);
    return 0;
}

//  IVF_FLAT: exact distances over the probed lists straight into topk.
static void
s_scan_flat (const qv_index_t *self, const float *query, const qv_search_params_t *params,
             const int64_t *probes, uint32_t nprobes, qv_topk_t *topk)
{
    const s_ivf_t *ivf = self->impl;
    const qv_dist_kernels_t *kern = qv_dist_kernels ();
    int is_ip = self->kernel_metric == QV_METRIC_IP;
    qv_dist_batch_fn batch = is_ip? kern->ip_batch: kern->l2sq_batch;
    int filtered = qv_search_params_filtered (params);
    float thr = qv_topk_threshold (topk);
    float dist [S_BLOCK];
    for (uint32_t p = 0; p < nprobes; p++) {
        uint32_t first = ivf->offsets [probes [p]], last = ivf->offsets [probes [p] + 1];
        for (uint32_t start = first; start < last; start += S_BLOCK) {
            uint32_t m = last - start < S_BLOCK? last - start: S_BLOCK;
            batch (query, ivf->vectors + (size_t) start * self->dim, m, self->dim, dist);
            for (uint32_t i = 0; i < m; i++) {
                float score = is_ip? -dist [i]: dist [i];
                if (score > thr)
                    continue;
                uint32_t row = ivf->ids [start + i];
                if (filtered && !qv_search_params_allows (params, row))
                    continue;
                qv_topk_push (topk, score, row);
                thr = qv_topk_threshold (topk);
            }
        }
    }
}

//  Re-rank candidates: up to 2 * keep (code distance, position) pairs. When the buffer
//  fills, a quickselect keeps the keep best and lowers the admission threshold to the
//  worst of them, so offering a code costs O(1) amortised instead of a heap sift. The
//  kept set is the keep smallest by (distance, position): the same, deterministic
//  answer a heap would give.
typedef struct {
    float *score;
    uint32_t *pos;
    uint32_t n;                     //  pairs held
    uint32_t keep;                  //  pairs wanted (ef)
    float thr;                      //  a distance above it can no longer be kept
} s_cand_t;

static inline int
s_cand_less (float sa, uint32_t pa, float sb, uint32_t pb)
{
    return sa < sb || (sa == sb && pa < pb);
}

static inline void
s_cand_swap (s_cand_t *c, int64_t i, int64_t j)
{
    float s = c->score [i];
    c->score [i] = c->score [j];
    c->score [j] = s;
    uint32_t p = c->pos [i];
    c->pos [i] = c->pos [j];
    c->pos [j] = p;
}

//  Reduces the buffer to its keep best pairs (in no order) and sets thr to the worst.
static void
s_cand_select (s_cand_t *c)
{
    if (c->n <= c->keep)
        return;
    int64_t lo = 0, hi = (int64_t) c->n - 1, k = (int64_t) c->keep - 1;
    while (lo < hi) {
        //  Median of three as the pivot, then a Hoare partition.
        int64_t mid = lo + (hi - lo) / 2;
        if (s_cand_less (c->score [mid], c->pos [mid], c->score [lo], c->pos [lo]))
            s_cand_swap (c, mid, lo);
        if (s_cand_less (c->score [hi], c->pos [hi], c->score [lo], c->pos [lo]))
            s_cand_swap (c, hi, lo);
        if (s_cand_less (c->score [hi], c->pos [hi], c->score [mid], c->pos [mid]))
            s_cand_swap (c, hi, mid);
        float ps = c->score [mid];
        uint32_t pp = c->pos [mid];
        int64_t i = lo, j = hi;
        while (i <= j) {
            while (s_cand_less (c->score [i], c->pos [i], ps, pp))
                i++;
            while (s_cand_less (ps, pp, c->score [j], c->pos [j]))
                j--;
            if (i <= j)
                s_cand_swap (c, i++, j--);
        }
        if (k <= j)
            hi = j;
        else
        if (k >= i)
            lo = i;
        else
            break;
    }
    c->n = c->keep;
    c->thr = c->score [k];
}

//  Offers the code distances of positions [start, start + m).
static inline void
s_cand_offer (s_cand_t *c, const s_ivf_t *ivf, const qv_search_params_t *params,
              int filtered, const float *score, uint32_t start, uint32_t m)
{
    for (uint32_t i = 0; i < m; i++) {
        if (!(score [i] <= c->thr))         //  also drops NaN
            continue;
        if (filtered && !qv_search_params_allows (params, ivf->ids [start + i]))
            continue;
        c->score [c->n] = score [i];
        c->pos [c->n++] = start + i;
        if (c->n == 2 * c->keep)
            s_cand_select (c);
    }
}

//  IVF_SQ8 / IVF_PQ: the best positions by code distance into cand.
static void
s_scan_codes (const qv_index_t *self, const float *query, const qv_search_params_t *params,
              const int64_t *probes, uint32_t nprobes, s_scratch_t *scratch, s_cand_t *cand)
{
    const s_ivf_t *ivf = self->impl;
    size_t dim = self->dim;
    int is_ip = self->kernel_metric == QV_METRIC_IP;
    int filtered = qv_search_params_filtered (params);
    float score [S_BLOCK];

    if (ivf->kind == QV_INDEX_IVF_SQ8) {
        qv_sq8_query_t prepared;
        qv_sq8_query_prepare (ivf->sq8, self->kernel_metric, query, scratch->query, &prepared);
        for (uint32_t p = 0; p < nprobes; p++) {
            uint32_t first = ivf->offsets [probes [p]], last = ivf->offsets [probes [p] + 1];
            for (uint32_t start = first; start < last; start += S_BLOCK) {
                uint32_t m = last - start < S_BLOCK? last - start: S_BLOCK;
                qv_sq8_query_scan (&prepared, ivf->codes + (size_t) start * dim, m, score);
                if (is_ip)
                    for (uint32_t i = 0; i < m; i++)
                        score [i] = -score [i];
                s_cand_offer (cand, ivf, params, filtered, score, start, m);
            }
        }
        return;
    }
    //  IVF_PQ on residuals, score = bias + table scan:
    //   - L2 with the precomputed table: bias |q - c|^2 (the probe's coarse distance),
    //     table = the list's precomputed terms - 2 * the query's inner-product table;
    //   - L2 without it: bias 0, table = distances from q - c's sub-vectors;
    //   - IP: bias <q, c>, table = the query's inner-product table (one per query),
    //     and the score is negated.
    size_t m_sub = ivf->code_size;
    size_t entries = m_sub * QV_PQ_KSUB;
    const qv_pq_kernels_t *pq_kernels = qv_pq_kernels ();
    if (is_ip)
        qv_pq_lut (ivf->pq, QV_METRIC_IP, query, scratch->lut);
    else
    if (ivf->pq_table)
        qv_pq_lut (ivf->pq, QV_METRIC_IP, query, scratch->qlut);
    for (uint32_t p = 0; p < nprobes; p++) {
        uint32_t list = (uint32_t) probes [p];
        uint32_t first = ivf->offsets [list], last = ivf->offsets [list + 1];
        if (first == last)
            continue;
        const float *centroid = ivf->centroids + (size_t) list * dim;
        float bias = 0;
        if (is_ip)
            bias = qv_dist_kernels ()->ip (query, centroid, dim);
        else
        if (ivf->pq_table) {
            pq_kernels->lut_add (ivf->pq_table + (size_t) list * entries, scratch->qlut, -2.0f,
                                 entries, scratch->lut);
            bias = scratch->coarse [list];
        }
        else {
            for (size_t d = 0; d < dim; d++)
                scratch->query [d] = query [d] - centroid [d];
            qv_pq_lut (ivf->pq, QV_METRIC_L2, scratch->query, scratch->lut);
        }
        for (uint32_t start = first; start < last; start += S_BLOCK) {
            uint32_t m = last - start < S_BLOCK? last - start: S_BLOCK;
            pq_kernels->scan (scratch->lut, ivf->codes + (size_t) start * m_sub, m, m_sub, score);
            if (is_ip)
                for (uint32_t i = 0; i < m; i++)
                    score [i] = -(bias + score [i]);
            else
                for (uint32_t i = 0; i < m; i++)
                    score [i] += bias;
            s_cand_offer (cand, ivf, params, filtered, score, start, m);
        }
    }
}

static int
s_search (const qv_index_t *self, const float *query, const qv_search_params_t *params,
          qv_topk_t *topk)
{
    const s_ivf_t *ivf = self->impl;
    if (!ivf->trained || self->count == 0)
        return 0;
    uint32_t k = qv_topk_k (topk);
    uint32_t nprobe = params && params->nprobe? params->nprobe: S_NPROBE_DEFAULT;
    if (nprobe > ivf->nlist)
        nprobe = ivf->nlist;
    if (nprobe > QV_TOPK_MAX && nprobe < ivf->nlist)
        nprobe = QV_TOPK_MAX;       //  the probe selector's limit
    if (qv_search_params_filtered (params)) {
        uint64_t allowed = qv_search_params_allowed_estimate (params, self->count);
        uint64_t probed = (uint64_t) self->count * nprobe / ivf->nlist;
        if (allowed <= probed)
            return s_search_allowed (self, query, params, topk);
    }
    uint32_t refine = 0;
    if (ivf->kind != QV_INDEX_IVF_FLAT) {
        uint64_t want = params && params->ef? params->ef: (uint64_t) k * QV_IVF_REFINE_DEFAULT;
        if (want < k)
            want = k;
        refine = want > QV_TOPK_MAX? QV_TOPK_MAX: (uint32_t) want;
    }
    size_t lut = ivf->kind == QV_INDEX_IVF_PQ? ivf->code_size * QV_PQ_KSUB: 0;
    s_scratch_t *scratch = s_scratch (ivf->nlist, self->dim, lut, (size_t) 2 * refine);
    if (!scratch)
        return qv_err (QV_ENOMEM, "out of memory for IVF search scratch");

    uint32_t nprobes;
    int rc = s_pick_probes (self, query, nprobe, scratch, &nprobes);
    if (rc)
        return rc;
    if (ivf->kind == QV_INDEX_IVF_FLAT) {
        s_scan_flat (self, query, params, scratch->probes, nprobes, topk);
        return 0;
    }
    s_cand_t cand = {
        .score = scratch->cand_score, .pos = scratch->cand_pos,
        .n = 0, .keep = refine, .thr = INFINITY
    };
    s_scan_codes (self, query, params, scratch->probes, nprobes, scratch, &cand);
    s_cand_select (&cand);

    //  Re-rank the candidates with exact distances on their float vectors, fetching
    //  the next candidate's vector while this one is computed.
    const qv_dist_kernels_t *kern = qv_dist_kernels ();
    int is_ip = self->kernel_metric == QV_METRIC_IP;
    qv_dist_fn pair = is_ip? kern->ip: kern->l2sq;
    size_t row_bytes = (size_t) self->dim * sizeof (float);
    for (uint32_t i = 0; i < cand.n; i++) {
        if (i + 1 < cand.n) {
            const char *next = (const char *) s_pos_vec (self, cand.pos [i + 1]);
            for (size_t b = 0; b < row_bytes; b += 64)
                __builtin_prefetch (next + b);
        }
        uint32_t pos = cand.pos [i];
        float d = pair (query, s_pos_vec (self, pos), self->dim);
        qv_topk_push (topk, is_ip? -d: d, ivf->ids [pos]);
    }
    return 0;
}

//  --------------------------------------------------------------------------
//  Serialization

static void
s_put32 (zchunk_t *chunk, uint32_t v)
{
    uint8_t b [4];
    qv_le_put32 (b, v);
    zchunk_extend (chunk, b, 4);
}

static int
s_serialize (const qv_index_t *self, zchunk_t *chunk)
{
    const s_ivf_t *ivf = self->impl;
    size_t dim = self->dim, count = self->count;
    s_put32 (chunk, ivf->nlist);
    s_put32 (chunk, (uint32_t) ivf->code_size);
    s_put32 (chunk, ivf->trained? 1: 0);
    if (!ivf->trained)
        return 0;
    zchunk_extend (chunk, ivf->centroids, (size_t) ivf->nlist * dim * sizeof (float));
    for (uint32_t l = 0; l <= ivf->nlist; l++)
        s_put32 (chunk, ivf->offsets [l]);
    for (size_t pos = 0; pos < count; pos++)
        s_put32 (chunk, ivf->ids [pos]);
    if (!self->borrow)
        zchunk_extend (chunk, ivf->vectors, count * dim * sizeof (float));
    if (ivf->kind == QV_INDEX_IVF_SQ8) {
        zchunk_extend (chunk, ivf->codes, count * ivf->code_size);
        zchunk_extend (chunk, qv_sq8_vmin (ivf->sq8), dim * sizeof (float));
        zchunk_extend (chunk, qv_sq8_step (ivf->sq8), dim * sizeof (float));
    }
    else
    if (ivf->kind == QV_INDEX_IVF_PQ) {
        zchunk_extend (chunk, ivf->codes, count * ivf->code_size);
        zchunk_extend (chunk, qv_pq_codebooks (ivf->pq), (size_t) QV_PQ_KSUB * dim * sizeof (float));
    }
    return 0;
}

//  A reader over the payload: s_take returns the next size bytes or NULL past the end.
typedef struct {
    const uint8_t *at;
    size_t left;
} s_reader_t;

static const uint8_t *
s_take (s_reader_t *r, size_t size)
{
    if (size > r->left)
        return NULL;
    const uint8_t *p = r->at;
    r->at += size;
    r->left -= size;
    return p;
}

static int
s_take32 (s_reader_t *r, uint32_t *v)
{
    const uint8_t *p = s_take (r, 4);
    if (!p)
        return -1;
    *v = (uint32_t) p [0] | (uint32_t) p [1] << 8 | (uint32_t) p [2] << 16 | (uint32_t) p [3] << 24;
    return 0;
}

static int
s_load (qv_index_t *self, const uint8_t *payload, size_t payload_size)
{
    s_ivf_t *ivf = self->impl;
    size_t dim = self->dim, count = self->count;
    s_reader_t r = { payload, payload_size };
    uint32_t nlist, code_size, trained;
    if (s_take32 (&r, &nlist) || s_take32 (&r, &code_size) || s_take32 (&r, &trained))
        return qv_err (QV_ECORRUPT, "%s payload truncated in its header", self->vt->name);
    if (nlist != ivf->nlist || code_size != ivf->code_size || trained > 1)
        return qv_err (QV_ECORRUPT, "%s payload header (nlist %u, code size %u) disagrees with the frame",
                       self->vt->name, nlist, code_size);
    if (!trained) {
        if (count || r.left)
            return qv_err (QV_ECORRUPT, "%s payload: untrained index with %zu rows", self->vt->name, count);
        return 0;
    }
    //  Sizes first, so nothing is allocated for a payload that cannot hold them.
    size_t csize = ivf->kind == QV_INDEX_IVF_FLAT? 0: ivf->code_size;
    size_t quantizer = ivf->kind == QV_INDEX_IVF_SQ8? 2 * dim * sizeof (float)
                     : ivf->kind == QV_INDEX_IVF_PQ? (size_t) QV_PQ_KSUB * dim * sizeof (float): 0;
    size_t vbytes = self->no_vectors? 0: count * dim * sizeof (float);
    size_t need = (size_t) nlist * dim * sizeof (float) + ((size_t) nlist + 1) * 4
                + count * 4 + vbytes + count * csize + quantizer;
    if (need != r.left)
        return qv_err (QV_ECORRUPT, "%s payload holds %zu bytes after its header, %zu rows need %zu",
                       self->vt->name, r.left, count, need);

    int rc = s_alloc_centroids (self);
    if (rc)
        return rc;
    memcpy (ivf->centroids, s_take (&r, (size_t) nlist * dim * sizeof (float)),
            (size_t) nlist * dim * sizeof (float));
    for (uint32_t l = 0; l <= nlist; l++)
        s_take32 (&r, &ivf->offsets [l]);
    if (ivf->offsets [0] != 0 || ivf->offsets [nlist] != count)
        return qv_err (QV_ECORRUPT, "%s payload: list offsets do not span %zu rows", self->vt->name, count);
    for (uint32_t l = 0; l < nlist; l++)
        if (ivf->offsets [l] > ivf->offsets [l + 1])
            return qv_err (QV_ECORRUPT, "%s payload: list %u has a negative length", self->vt->name, l);

    ivf->ids = malloc ((count? count: 1) * sizeof (uint32_t));
    ivf->pos_of_row = malloc ((count? count: 1) * sizeof (uint32_t));
    ivf->vectors = self->borrow? NULL: s_alloc_aligned (count * dim * sizeof (float));
    ivf->codes = csize? malloc (count * csize + 1): NULL;
    if (!ivf->ids || !ivf->pos_of_row || (!self->borrow && !ivf->vectors) || (csize && !ivf->codes))
        return qv_err (QV_ENOMEM, "out of memory loading %zu IVF rows", count);
    //  ids must be a permutation of 0..count-1: mark each row's position once.
    for (size_t row = 0; row < count; row++)
        ivf->pos_of_row [row] = UINT32_MAX;
    for (size_t pos = 0; pos < count; pos++) {
        uint32_t row = UINT32_MAX;
        s_take32 (&r, &row);
        if (row >= count || ivf->pos_of_row [row] != UINT32_MAX)
            return qv_err (QV_ECORRUPT, "%s payload: row id %u at position %zu is out of range or repeated",
                           self->vt->name, row, pos);
        ivf->ids [pos] = row;
        ivf->pos_of_row [row] = (uint32_t) pos;
    }
    const uint8_t *vectors = s_take (&r, vbytes);
    if (!self->borrow)              //  else the object's copy (if any) is passed over
        memcpy (ivf->vectors, vectors, vbytes);
    if (csize)
        memcpy (ivf->codes, s_take (&r, count * csize), count * csize);
    if (ivf->kind == QV_INDEX_IVF_SQ8) {
        float *ranges = malloc (2 * dim * sizeof (float));
        if (!ranges)
            return qv_err (QV_ENOMEM, "out of memory loading SQ8 ranges");
        memcpy (ranges, s_take (&r, 2 * dim * sizeof (float)), 2 * dim * sizeof (float));
        ivf->sq8 = qv_sq8_new_from (dim, ranges, ranges + dim);
        free (ranges);
        if (!ivf->sq8)
            return qv_err (QV_ECORRUPT, "IVF_SQ8 payload: quantizer ranges are not finite and non-negative");
    }
    else
    if (ivf->kind == QV_INDEX_IVF_PQ) {
        size_t bytes = (size_t) QV_PQ_KSUB * dim * sizeof (float);
        float *books = malloc (bytes);
        if (!books)
            return qv_err (QV_ENOMEM, "out of memory loading PQ codebooks");
        memcpy (books, s_take (&r, bytes), bytes);
        ivf->pq = qv_pq_new_from (dim, self->params.pq_m, books);
        free (books);
        if (!ivf->pq)
            return qv_err (QV_ECORRUPT, "IVF_PQ payload: codebooks are not finite");
        rc = s_pq_table_build (self);
        if (rc)
            return rc;
    }
    ivf->trained = true;
    return 0;
}

//  --------------------------------------------------------------------------
//  Memory

static size_t
s_vector_bytes (const qv_index_t *self)
{
    return self->borrow? 0: (size_t) self->count * self->dim * sizeof (float);
}

//  Nothing to do: searches read self->borrowed.
static void
s_rebind (qv_index_t *self)
{
    (void) self;
}

size_t
qv_ivf_code_bytes (const qv_index_t *index)
{
    qv_index_type_t type = qv_index_type (index);
    if (type != QV_INDEX_IVF_FLAT && type != QV_INDEX_IVF_SQ8 && type != QV_INDEX_IVF_PQ)
        return 0;
    const s_ivf_t *ivf = index->impl;
    return (size_t) index->count * ivf->code_size;
}

static size_t
s_memory_bytes (const qv_index_t *self)
{
    const s_ivf_t *ivf = self->impl;
    size_t dim = self->dim, count = self->count;
    size_t bytes = sizeof *ivf
                 + (ivf->centroids? (size_t) ivf->nlist * dim * sizeof (float): 0)
                 + ((size_t) ivf->nlist + 1) * sizeof (uint32_t)    //  offsets
                 + count * 2 * sizeof (uint32_t)                    //  ids, pos_of_row
                 + s_vector_bytes (self);
    if (ivf->kind != QV_INDEX_IVF_FLAT)
        bytes += count * ivf->code_size;
    if (ivf->sq8)
        bytes += 2 * dim * sizeof (float);
    if (ivf->pq)
        bytes += (size_t) QV_PQ_KSUB * dim * sizeof (float);
    if (ivf->pq_table)
        bytes += (size_t) ivf->nlist * ivf->code_size * QV_PQ_KSUB * sizeof (float);
    return bytes;
}

//  As s_memory_bytes once rows are added (the PQ table as s_pq_table_build decides).
static size_t
s_estimate_bytes (const qv_index_t *self, uint32_t rows)
{
    const s_ivf_t *ivf = self->impl;
    size_t dim = self->dim, count = rows;
    size_t bytes = sizeof *ivf + (size_t) ivf->nlist * dim * sizeof (float)
                 + ((size_t) ivf->nlist + 1) * sizeof (uint32_t)
                 + count * 2 * sizeof (uint32_t)
                 + (self->borrow? 0: count * dim * sizeof (float));
    if (ivf->kind != QV_INDEX_IVF_FLAT)
        bytes += count * ivf->code_size;
    if (ivf->kind == QV_INDEX_IVF_SQ8)
        bytes += 2 * dim * sizeof (float);
    if (ivf->kind == QV_INDEX_IVF_PQ) {
        bytes += (size_t) QV_PQ_KSUB * dim * sizeof (float);
        size_t table = (size_t) ivf->nlist * ivf->code_size * QV_PQ_KSUB * sizeof (float);
        if (self->kernel_metric == QV_METRIC_L2 && table <= s_pq_table_max ())
            bytes += table;
    }
    return bytes;
}

const qv_index_vtable_t qv_ivf_flat_vtable = {
    .type = QV_INDEX_IVF_FLAT, .name = "IVF_FLAT",
    .init = s_init_flat, .destroy = s_destroy, .build = s_build, .add = s_add,
    .search = s_search, .serialize = s_serialize, .load = s_load,
    .memory_bytes = s_memory_bytes, .vector_bytes = s_vector_bytes,
    .estimate_bytes = s_estimate_bytes,
};

const qv_index_vtable_t qv_ivf_sq8_vtable = {
    .type = QV_INDEX_IVF_SQ8, .name = "IVF_SQ8",
    .init = s_init_sq8, .destroy = s_destroy, .build = s_build, .add = s_add,
    .search = s_search, .serialize = s_serialize, .load = s_load,
    .memory_bytes = s_memory_bytes, .vector_bytes = s_vector_bytes,
    .estimate_bytes = s_estimate_bytes, .borrows = 1, .rebind = s_rebind,
};

const qv_index_vtable_t qv_ivf_pq_vtable = {
    .type = QV_INDEX_IVF_PQ, .name = "IVF_PQ",
    .init = s_init_pq, .destroy = s_destroy, .build = s_build, .add = s_add,
    .search = s_search, .serialize = s_serialize, .load = s_load,
    .memory_bytes = s_memory_bytes, .vector_bytes = s_vector_bytes,
    .estimate_bytes = s_estimate_bytes, .borrows = 1, .rebind = s_rebind,
};
