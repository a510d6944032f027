//  Vector index: one interface (a vtable) for FLAT, HNSW, IVF_FLAT, IVF_SQ8 and IVF_PQ,
//  with metric handling, filtered search and the on-disk frame done once here.
#ifndef QV_INDEX_H_INCLUDED
#define QV_INDEX_H_INCLUDED

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <czmq.h>
#include <roaring/roaring.h>

#include "qv_dist.h"
#include "qv_rc.h"
#include "qv_topk.h"

//  Index types; the number is what the on-disk frame records, never reuse one.
typedef enum {
    QV_INDEX_FLAT = 1,
    QV_INDEX_HNSW = 2,
    QV_INDEX_IVF_FLAT = 3,
    QV_INDEX_IVF_SQ8 = 4,
    QV_INDEX_IVF_PQ = 5,
    QV_INDEX_HNSW_SQ8 = 6       //  HNSW walked on 8-bit codes, re-ranked on floats
} qv_index_type_t;

//  Build parameters. Zero means "default" for every field (qv_index_new fills them in);
//  the persisted ones are recorded in the on-disk frame.
typedef struct {
    uint32_t M;                 //  HNSW: links per node on upper levels (2M on level 0); 16
    uint32_t ef_construction;   //  HNSW: candidate list size while building; 200
    uint32_t nlist;             //  IVF: number of inverted lists; 1024
    uint32_t pq_m;              //  IVF_PQ: sub-quantizers; dim must divide by it; 8
    uint32_t pq_nbits;          //  IVF_PQ: bits per sub-quantizer code; 8
    uint32_t threads;           //  build threads (not persisted); 0 = one per core
    uint64_t seed;              //  random seed (HNSW levels, k-means init); 0 = fixed default
    uint32_t borrow;            //  (not persisted) nonzero: read the caller's vectors instead
                                //  of a copy where the type can (see "Borrowed vectors")
} qv_index_params_t;

//  A predicate on internal row ids: nonzero if row may be returned.
typedef int (qv_index_allow_fn) (uint32_t row, void *arg);

//  Search parameters. Zero means "default" (ef = max (k, 64), nprobe = 16).
//  Rows may be restricted by a roaring bitmap of allowed rows, or by a callback, or both
//  (a row must then pass both); NULL for none.
typedef struct {
    uint32_t ef;                        //  HNSW: candidate list size, raised to k if lower
    uint32_t nprobe;                    //  IVF: lists probed
    const roaring_bitmap_t *allowed;    //  allowed rows, or NULL
    qv_index_allow_fn *allow_fn;        //  allowed-row callback, or NULL
    void *allow_arg;                    //  argument for allow_fn
} qv_search_params_t;

typedef struct qv_index_t qv_index_t;

//  Creates an empty index. type is "FLAT", "HNSW", "HNSW_SQ8" (L2 and COSINE),
//  "IVF_FLAT", "IVF_SQ8" or "IVF_PQ"
//  (case-insensitive); dim 1..32768; params may be NULL for defaults.
//  Returns NULL with QV_EINVAL recorded for an unknown type, a dim out of range or
//  a parameter the type rejects; NULL on out-of-memory.
qv_index_t *
    qv_index_new (const char *type, qv_metric_t metric, uint32_t dim,
                  const qv_index_params_t *params);

//  Destroys the index and nulls *self_p; safe on NULL. No search may be running.
void
    qv_index_destroy (qv_index_t **self_p);

//  Builds the index over n vectors (row-major, dim floats each) on an empty index: rows
//  get ids 0..n-1. Trains what the type needs (IVF centroids). Vectors are copied.
//  Returns 0, QV_EINVAL (not empty, n too large, type needs more rows to train),
//  QV_ENOMEM.
int
    qv_index_build (qv_index_t *self, const float *vectors, uint32_t n);

//  From now on, a build or add stops early, failing QV_EUNAVAIL (the index is then
//  unusable: destroy it), once *cancel turns true (HNSW between rows; IVF between
//  k-means iterations and between training and adding) (a server that stops does not
//  wait minutes for a build it would throw away). NULL: never (the default). The flag
//  must outlive the calls it governs.
void
    qv_index_set_cancel (qv_index_t *self, const atomic_bool *cancel);

//  Appends n vectors; they get the next row ids (qv_index_count () before the call on).
//  An empty index of a type that needs training trains on them first.
//  Returns 0, QV_EINVAL (too many rows), QV_ENOMEM. Single writer; no concurrent search.
int
    qv_index_add (qv_index_t *self, const float *vectors, uint32_t n);

//  Finds up to k (1..QV_TOPK_MAX) nearest rows to query (dim floats). Writes them best
//  first to ids [] and distances [] (k entries of room each): squared L2 for L2
//  (smaller is better), the similarity for IP and COSINE (larger is better).
//  params may be NULL. Returns the number of rows written (< k if fewer rows are
//  allowed), or QV_EINVAL. Safe from many threads at once on a built index.
int
    qv_index_search (const qv_index_t *self, const float *query, uint32_t k,
                     const qv_search_params_t *params, uint32_t *ids, float *distances);

//  Whether a search for k rows with params would not use the index but scan the rows
//  the filter allows exactly (a filter that allows few rows). A caller that holds the
//  vectors can then run that scan itself, for many queries at once and split across
//  threads, and get the same rows. 0 for no filter.
int
    qv_index_scans_exact (const qv_index_t *self, uint32_t k, const qv_search_params_t *params);

//  Serializes the index into a new chunk (the frame described in qv_index.c) and
//  passes it to the caller in *chunk_p. Returns 0 or QV_ENOMEM.
int
    qv_index_serialize (const qv_index_t *self, zchunk_t **chunk_p);

//  Loads an index from the bytes qv_index_serialize wrote, without rebuilding it.
//  Returns 0 and the index in *index_p, QV_ECORRUPT for bytes that are not a whole,
//  valid index (bad magic, checksum, sizes), QV_EINVAL for a newer format version or
//  an index type this build lacks, QV_ENOMEM. Never reads outside [data, data+size).
int
    qv_index_load (const void *data, size_t size, qv_index_t **index_p);
//  As qv_index_load, but takes data (malloc'd, as qv_store_get returns it) and frees
//  it, or keeps it as the index's memory where the type can (HNSW: its level-0
//  arena, moved to the front of the buffer instead of copied into fresh memory).
int
    qv_index_load_owned (void *data, size_t size, qv_index_t **index_p);

//  Borrowed vectors. An index made with params->borrow set keeps a pointer to the n x
//  dim floats (row-major, row i = index row i) that qv_index_build was given, or that
//  qv_index_load_borrowed is given, instead of a copy of them, where the type can:
//  HNSW, HNSW_SQ8, IVF_SQ8 and IVF_PQ with metric L2 or IP. The caller keeps them
//  unchanged, at that address, until the index is destroyed. Other types and COSINE
//  (which reads normalised copies) keep their own copy as without the flag;
//  qv_index_borrows tells which happened. An index that borrows takes no adds
//  (QV_EINVAL), and qv_index_memory_bytes does not count the borrowed vectors.
int
    qv_index_borrows (const qv_index_t *self);

//  An index that borrows reads vectors from now on: the same n x dim floats at another
//  address (a copy of the rows it was built on, in the same order), which the caller
//  then keeps as above. No search may be running. QV_EINVAL if n or dim differ; 0
//  and nothing done for an index that keeps its own copy.
int
    qv_index_rebind (qv_index_t *self, const float *vectors, uint32_t n, uint32_t dim);

//  As qv_index_load, but an index that borrows (see above) reads vectors (n rows of
//  dim floats) instead of the copy the object may hold; other types load their own.
//  QV_EINVAL if the object's row count or dim are not n and dim.
int
    qv_index_load_borrowed (const void *data, size_t size, const float *vectors, uint32_t n,
                            uint32_t dim, qv_index_t **index_p);
//  The same taking data, as qv_index_load_owned does.
int
    qv_index_load_owned_borrowed (void *data, size_t size, const float *vectors, uint32_t n,
                                  uint32_t dim, qv_index_t **index_p);

//  Bytes of memory the index holds, vectors included (borrowed ones excluded).
size_t
    qv_index_memory_bytes (const qv_index_t *self);

//  Bytes of memory an index of this type and parameters (as qv_index_new takes them)
//  would hold once built over rows vectors: what qv_index_memory_bytes then reports,
//  within a few percent (HNSW's upper levels are drawn at random), so that a caller can
//  check a memory budget before it builds. HNSW on borrowed vectors holds that while it
//  builds, and less once built (its level-0 lists packed: about 0.7x of the graph at M
//  16). 0 with QV_EINVAL recorded for a type or
//  parameter qv_index_new refuses.
size_t
    qv_index_estimate_bytes (const char *type, qv_metric_t metric, uint32_t dim,
                             const qv_index_params_t *params, uint32_t rows);

//  Bytes of those that are the stored vectors (count * dim * 4 for types that keep
//  full vectors, 0 for those that keep only codes or borrow them), to report the
//  index's overhead.
size_t
    qv_index_vector_bytes (const qv_index_t *self);

//  Properties.
uint32_t
    qv_index_count (const qv_index_t *self);
uint32_t
    qv_index_dim (const qv_index_t *self);
qv_metric_t
    qv_index_metric (const qv_index_t *self);
qv_index_type_t
    qv_index_type (const qv_index_t *self);
const char *
    qv_index_type_name (const qv_index_t *self);
const qv_index_params_t *
    qv_index_params (const qv_index_t *self);

//  --------------------------------------------------------------------------
//  For index implementations (index/ann/qv_*.c) only.
//
//  qv_index.c does, once for every type: argument checks, COSINE (it normalises copies
//  of the vectors at build/add and the query at search, and hands the type the IP
//  metric), the conversion of results to the public distances, and the on-disk frame.
//  A type therefore sees only L2 or IP and "smaller is better" scores: it pushes
//  squared L2, or the NEGATED inner product, into the collector it is given.

typedef struct {
    qv_index_type_t type;
    const char *name;           //  "FLAT", ...
    //  Allocates the type's state in self->impl from self->params (filled with
    //  defaults); returns 0, QV_EINVAL (bad parameter) or QV_ENOMEM.
    int (*init) (qv_index_t *self);
    //  Frees self->impl; safe when init failed half way.
    void (*destroy) (qv_index_t *self);
    //  Builds over n vectors on an empty index (may train); self->count is 0.
    int (*build) (qv_index_t *self, const float *vectors, uint32_t n);
    //  Appends n vectors as rows self->count.. ; the caller then adds n to self->count.
    int (*add) (qv_index_t *self, const float *vectors, uint32_t n);
    //  Pushes up to topk's k best allowed rows for query into topk (empty on entry).
    int (*search) (const qv_index_t *self, const float *query,
                   const qv_search_params_t *params, qv_topk_t *topk);
    //  Whether search would scan the allowed rows exactly (qv_index_scans_exact), for
    //  params that filter and a k in range; NULL for a type that never does.
    int (*scans_exact) (const qv_index_t *self, uint32_t k, const qv_search_params_t *params);
    //  Appends the type's payload to chunk (grow it with zchunk_extend).
    int (*serialize) (const qv_index_t *self, zchunk_t *chunk);
    //  Rebuilds the type's state from its payload, on an index created by init with
    //  self->count, dim, metric and params set from the frame. Must check every size
    //  against payload_size and return QV_ECORRUPT on anything inconsistent.
    int (*load) (qv_index_t *self, const uint8_t *payload, size_t payload_size);
    //  Bytes held by self->impl and what it owns.
    size_t (*memory_bytes) (const qv_index_t *self);
    //  Bytes of those that are full vectors (see qv_index_vector_bytes).
    size_t (*vector_bytes) (const qv_index_t *self);
    //  Bytes memory_bytes would report once rows vectors are built, on an empty index
    //  made by init (qv_index_estimate_bytes); for a type that shrinks what it built
    //  once the build is done (HNSW on borrowed vectors packs its lists), the build's
    //  peak, before that.
    size_t (*estimate_bytes) (const qv_index_t *self, uint32_t rows);
    //  Whether the type can read borrowed vectors (L2 and IP). init then sees
    //  self->borrow set; build and load see self->borrowed (count x dim floats) and
    //  keep no copy; serialize then leaves them out of the payload, and load reads
    //  either payload (self->no_vectors says which) onto borrowed vectors.
    int borrows;
    //  self->borrowed has moved (qv_index_rebind): read it from now on.
    void (*rebind) (qv_index_t *self);
} qv_index_vtable_t;

struct qv_index_t {
    const qv_index_vtable_t *vt;
    qv_metric_t metric;         //  the public metric
    qv_metric_t kernel_metric;  //  what the type computes: L2 or IP (COSINE -> IP)
    uint32_t dim;
    uint32_t count;             //  rows held
    qv_index_params_t params;   //  with defaults filled in
    const atomic_bool *cancel;  //  qv_index_set_cancel, or NULL
    void *impl;                 //  the type's state
    void *adopt;                //  during qv_index_load_owned: the object's buffer,
                                //  which load may keep (then it sets this to NULL)
    int borrow;                 //  reads the caller's vectors (set before init)
    const float *borrowed;      //  those vectors, once built or loaded; else NULL
    int no_vectors;             //  during load: the payload leaves the vectors out
                                //  (written by an index that borrows them)
};

//  Whether params allow row (no filter: always).
static inline int
qv_search_params_allows (const qv_search_params_t *params, uint32_t row)
{
    if (!params)
        return 1;
    if (params->allowed && !roaring_bitmap_contains (params->allowed, row))
        return 0;
    if (params->allow_fn && !params->allow_fn (row, params->allow_arg))
        return 0;
    return 1;
}

//  Whether params restrict rows at all.
static inline int
qv_search_params_filtered (const qv_search_params_t *params)
{
    return params && (params->allowed || params->allow_fn);
}

//  An estimate of how many of the first count rows params allow: exact for a bitmap
//  alone, sampled when there is a callback.
uint64_t
    qv_search_params_allowed_estimate (const qv_search_params_t *params, uint32_t count);

//  The vtables of the types in this build.
extern const qv_index_vtable_t qv_flat_vtable;
extern const qv_index_vtable_t qv_hnsw_vtable;
extern const qv_index_vtable_t qv_hnsw_sq8_vtable;
extern const qv_index_vtable_t qv_ivf_flat_vtable;
extern const qv_index_vtable_t qv_ivf_sq8_vtable;
extern const qv_index_vtable_t qv_ivf_pq_vtable;

#endif
