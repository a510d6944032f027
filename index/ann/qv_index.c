//  Vector index front: factory, argument checks, COSINE handling, result conversion
//  and the one on-disk frame shared by every index type.
//
//  DESIGN
//  Each index type (qv_flat.c, qv_hnsw.c, the IVF family) fills a qv_index_vtable_t
//  and appears once in s_types below. This file owns everything the types share, so
//  they do not each get it slightly different:
//   - COSINE is IP over unit vectors: copies of the vectors are normalised before a
//     type sees them, and so is the query; types only ever compute L2 or IP.
//   - Types push "smaller is better" scores (squared L2, or -IP) into a top-k
//     collector; this file turns them into the public distances.
//   - Each search thread keeps one scratch (collector + query buffer) in a
//     thread-specific slot, so searching does not allocate once warm.
//
//  On-disk frame: the stored-object envelope (qv_envelope.h) of kind VINDEX, format
//  version 2, or 3 for an index that borrows its vectors (qv_index.h): the same frame
//  whose type payload leaves the vectors out, loaded only with them
//  (qv_index_load_borrowed; the payload layouts are in each type's file). The payload
//  is (all integers little-endian; offsets in the payload):
//
//      offset  size  field
//      0       4     index type (qv_index_type_t)
//      4       4     metric (qv_metric_t: 0 L2, 1 IP, 2 COSINE)
//      8       4     dim
//      12      4     row count
//      16      4     number of 32-bit parameters that follow (5)
//      20      4x5   M, ef_construction, nlist, pq_m, pq_nbits
//      40      8     seed
//      48      8     payload size P
//      56      P     payload, written and read by the type
//
//  Version 1 (before the envelope, Quiver <= 06906df) is still read: magic "QVINDEX"
//  + NUL (8) | format version u32 (1) | the same fields and payload | CRC32C u32 of
//  every byte before it.
//
//  A reader checks the length and the CRC first, then every header field; a type's
//  load checks its payload against P. Corrupt bytes give QV_ECORRUPT, never a crash.
#include "qv_index.h"
#include "qv_hugemem.h"
#include "qv_crc.h"
#include "qv_envelope.h"
#include "qv_le.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define S_MAGIC         "QVINDEX"      //  version 1 (before the envelope)
#define S_V1_VERSION    1
#define S_V1_HEADER     12              //  magic + version, before the fields
#define S_VERSION       2               //  the envelope's payload version
#define S_VERSION_LEAN  3               //  the same, the vectors left out (borrowed)
#define S_NPARAMS       5
#define S_FIELDS_SIZE   56              //  type .. payload size
#define S_HEADER_SIZE   (QV_ENVELOPE_HEADER_SIZE + S_FIELDS_SIZE)
#define S_TRAILER_SIZE  4               //  version 1's CRC
#define S_MAX_DIM       32768

//  One line per index type in this build.
static const qv_index_vtable_t *s_types [] = {
    &qv_flat_vtable,
    &qv_hnsw_vtable,
    &qv_ivf_flat_vtable,
    &qv_ivf_sq8_vtable,
    &qv_ivf_pq_vtable,
    &qv_hnsw_sq8_vtable,
};

static const char *s_type_names [] = {
    NULL, "FLAT", "HNSW", "IVF_FLAT", "IVF_SQ8", "IVF_PQ", "HNSW_SQ8"
};

static const qv_index_vtable_t *
s_vtable_by_type (uint32_t type)
{
    for (size_t i = 0; i < sizeof s_types / sizeof s_types [0]; i++)
        if ((uint32_t) s_types [i]->type == type)
            return s_types [i];
    return NULL;
}

//  --------------------------------------------------------------------------
//  Per-thread search scratch

typedef struct {
    qv_topk_t *topk;
    float *query;               //  normalised query copy (COSINE)
    size_t query_cap;           //  floats query holds
} s_scratch_t;

static pthread_key_t s_scratch_key;
static pthread_once_t s_scratch_once = PTHREAD_ONCE_INIT;

static void
s_scratch_free (void *arg)
{
    s_scratch_t *scratch = arg;
    if (scratch) {
        qv_topk_destroy (&scratch->topk);
        free (scratch->query);
        free (scratch);
    }
}

static void
s_scratch_key_init (void)
{
    pthread_key_create (&s_scratch_key, s_scratch_free);
}

//  This thread's scratch with a collector for k and room for a dim-float query.
static s_scratch_t *
s_scratch (uint32_t k, uint32_t dim)
{
    pthread_once (&s_scratch_once, s_scratch_key_init);
    s_scratch_t *scratch = pthread_getspecific (s_scratch_key);
    if (!scratch) {
        scratch = calloc (1, sizeof *scratch);
        if (!scratch)
            return NULL;
        scratch->topk = qv_topk_new (k);
        if (!scratch->topk || pthread_setspecific (s_scratch_key, scratch)) {
            s_scratch_free (scratch);
            return NULL;
        }
    }
    if (qv_topk_resize (scratch->topk, k))
        return NULL;
    if (scratch->query_cap < dim) {
        float *query = realloc (scratch->query, (size_t) dim * sizeof (float));
        if (!query)
            return NULL;
        scratch->query = query;
        scratch->query_cap = dim;
    }
    return scratch;
}

//  --------------------------------------------------------------------------
//  Lifecycle

static void
s_params_fill_defaults (qv_index_params_t *p)
{
    if (!p->M)
        p->M = 16;
    if (!p->ef_construction)
        p->ef_construction = 200;
    if (!p->nlist)
        p->nlist = 1024;
    if (!p->pq_m)
        p->pq_m = 8;
    if (!p->pq_nbits)
        p->pq_nbits = 8;
    if (!p->seed)
        p->seed = 0x9E3779B97F4A7C15ull;
}

//  Creates an index of a known vtable; NULL with the error recorded.
static qv_index_t *
s_index_new (const qv_index_vtable_t *vt, qv_metric_t metric, uint32_t dim,
             const qv_index_params_t *params)
{
    if (metric != QV_METRIC_L2 && metric != QV_METRIC_IP && metric != QV_METRIC_COSINE) {
        qv_err (QV_EINVAL, "unknown metric %d", (int) metric);
        return NULL;
    }
    if (dim == 0 || dim > S_MAX_DIM) {
        qv_err (QV_EINVAL, "dimension %u out of range 1..%u", dim, S_MAX_DIM);
        return NULL;
    }
    qv_index_t *self = calloc (1, sizeof *self);
    if (!self) {
        qv_err (QV_ENOMEM, "out of memory for an index");
        return NULL;
    }
    self->vt = vt;
    self->metric = metric;
    self->kernel_metric = metric == QV_METRIC_L2? QV_METRIC_L2: QV_METRIC_IP;
    self->dim = dim;
    if (params)
        self->params = *params;
    s_params_fill_defaults (&self->params);
    //  COSINE reads normalised copies, not the caller's vectors
    self->borrow = self->params.borrow && vt->borrows && metric != QV_METRIC_COSINE;
    self->params.borrow = (uint32_t) self->borrow;
    if (vt->init (self)) {
        qv_index_destroy (&self);
        return NULL;
    }
    return self;
}

qv_index_t *
qv_index_new (const char *type, qv_metric_t metric, uint32_t dim,
              const qv_index_params_t *params)
{
    uint32_t code = 0;
    for (uint32_t i = 1; type && i < sizeof s_type_names / sizeof s_type_names [0]; i++)
        if (strcasecmp (type, s_type_names [i]) == 0)
            code = i;
    if (!code) {
        qv_err (QV_EINVAL, "unknown index type '%s' (FLAT, HNSW, HNSW_SQ8, IVF_FLAT, IVF_SQ8, IVF_PQ)",
                type? type: "(null)");
        return NULL;
    }
    const qv_index_vtable_t *vt = s_vtable_by_type (code);
    if (!vt) {
        qv_err (QV_EINVAL, "index type %s is not available in this build", s_type_names [code]);
        return NULL;
    }
    return s_index_new (vt, metric, dim, params);
}

void
qv_index_destroy (qv_index_t **self_p)
{
    if (self_p && *self_p) {
        qv_index_t *self = *self_p;
        if (self->vt && self->vt->destroy)
            self->vt->destroy (self);
        free (self);
        *self_p = NULL;
    }
}

//  --------------------------------------------------------------------------
//  Build, add, search

//  For COSINE, a normalised copy of the n vectors in *copy_p (caller frees);
//  otherwise *copy_p is NULL. Returns the vectors the type should see, or NULL.
static const float *
s_prepare (const qv_index_t *self, const float *vectors, uint32_t n, float **copy_p)
{
    *copy_p = NULL;
    if (self->metric != QV_METRIC_COSINE)
        return vectors;
    size_t floats = (size_t) n * self->dim;
    float *copy = malloc (floats? floats * sizeof (float): 1);
    if (!copy)
        return NULL;
    for (uint32_t i = 0; i < n; i++) {
        const float *v = vectors + (size_t) i * self->dim;
        float *c = copy + (size_t) i * self->dim;
        float norm = qv_dist_norm (v, self->dim);
        float scale = norm > 0? 1.0f / norm: 0.0f;
        for (uint32_t j = 0; j < self->dim; j++)
            c [j] = v [j] * scale;
    }
    *copy_p = copy;
    return copy;
}

static int
s_check_rows (const qv_index_t *self, const float *vectors, uint32_t n)
{
    if (n && !vectors)
        return qv_err (QV_EINVAL, "no vectors given for %u rows", n);
    if ((uint64_t) self->count + n > UINT32_MAX - 1)
        return qv_err (QV_EINVAL, "index would hold %llu rows, more than %u",
                       (unsigned long long) self->count + n, UINT32_MAX - 1);
    return 0;
}

int
qv_index_build (qv_index_t *self, const float *vectors, uint32_t n)
{
    if (self->count)
        return qv_err (QV_EINVAL, "build on an index that already holds %u rows", self->count);
    int rc = s_check_rows (self, vectors, n);
    if (rc)
        return rc;
    float *copy;
    const float *v = s_prepare (self, vectors, n, &copy);
    if (!v)
        return qv_err (QV_ENOMEM, "out of memory normalising %u vectors", n);
    if (self->borrow)
        self->borrowed = v;     //  never a copy: COSINE does not borrow
    rc = self->vt->build (self, v, n);
    if (rc == 0)
        self->count = n;
    else
        self->borrowed = NULL;
    free (copy);
    return rc;
}

void
qv_index_set_cancel (qv_index_t *self, const atomic_bool *cancel)
{
    self->cancel = cancel;
}

int
qv_index_add (qv_index_t *self, const float *vectors, uint32_t n)
{
    int rc = s_check_rows (self, vectors, n);
    if (rc || n == 0)
        return rc;
    if (self->borrow)
        return qv_err (QV_EINVAL, "a %s index that reads borrowed vectors takes no adds",
                       self->vt->name);
    float *copy;
    const float *v = s_prepare (self, vectors, n, &copy);
    if (!v)
        return qv_err (QV_ENOMEM, "out of memory normalising %u vectors", n);
    rc = self->vt->add (self, v, n);
    if (rc == 0)
        self->count += n;
    free (copy);
    return rc;
}

int
qv_index_search (const qv_index_t *self, const float *query, uint32_t k,
                 const qv_search_params_t *params, uint32_t *ids, float *distances)
{
    if (!query || !ids || !distances)
        return qv_err (QV_EINVAL, "search needs a query and result arrays");
    if (k == 0 || k > QV_TOPK_MAX)
        return qv_err (QV_EINVAL, "top-k %u out of range 1..%u", k, QV_TOPK_MAX);
    if (self->count == 0)
        return 0;
    s_scratch_t *scratch = s_scratch (k, self->dim);
    if (!scratch)
        return qv_err (QV_ENOMEM, "out of memory for search scratch");
    if (self->metric == QV_METRIC_COSINE) {
        float norm = qv_dist_norm (query, self->dim);
        float scale = norm > 0? 1.0f / norm: 0.0f;
        for (uint32_t j = 0; j < self->dim; j++)
            scratch->query [j] = query [j] * scale;
        query = scratch->query;
    }
    int rc = self->vt->search (self, query, params, scratch->topk);
    if (rc) {
        qv_topk_reset (scratch->topk);
        return rc;
    }
    //  The collector holds 64-bit ids; the caller's array is 32-bit
    uint32_t n = qv_topk_size (scratch->topk);
    int64_t row_buf [256];
    int64_t *rows = n <= 256? row_buf: malloc ((size_t) n * sizeof (int64_t));
    if (!rows) {
        qv_topk_reset (scratch->topk);
        return qv_err (QV_ENOMEM, "out of memory for %u results", n);
    }
    qv_topk_extract (scratch->topk, rows, distances);
    int negate = self->kernel_metric == QV_METRIC_IP;
    for (uint32_t i = 0; i < n; i++) {
        ids [i] = (uint32_t) rows [i];
        if (negate)
            distances [i] = -distances [i];
    }
    if (rows != row_buf)
        free (rows);
    return (int) n;
}

int
qv_index_scans_exact (const qv_index_t *self, uint32_t k, const qv_search_params_t *params)
{
    if (!qv_search_params_filtered (params) || !self->vt->scans_exact || self->count == 0
    ||  k == 0 || k > QV_TOPK_MAX)
        return 0;
    return self->vt->scans_exact (self, k, params);
}

uint64_t
qv_search_params_allowed_estimate (const qv_search_params_t *params, uint32_t count)
{
    if (!qv_search_params_filtered (params) || count == 0)
        return count;
    uint64_t base = count;
    if (params->allowed) {
        base = roaring_bitmap_range_cardinality (params->allowed, 0, count);
        if (!params->allow_fn)
            return base;
    }
    //  Sample 256 rows spread over the id range
    uint32_t samples = count < 256? count: 256, hits = 0;
    for (uint32_t i = 0; i < samples; i++) {
        uint32_t row = (uint32_t) ((uint64_t) i * count / samples);
        hits += qv_search_params_allows (params, row) != 0;
    }
    uint64_t est = (uint64_t) count * hits / samples;
    return est < base? est: base;
}

//  --------------------------------------------------------------------------
//  Serialization

int
qv_index_serialize (const qv_index_t *self, zchunk_t **chunk_p)
{
    size_t guess = S_HEADER_SIZE + qv_index_memory_bytes (self);
    zchunk_t *chunk = zchunk_new (NULL, guess);
    if (!chunk)
        return qv_err (QV_ENOMEM, "out of memory for a %zu-byte index image", guess);
    uint8_t header [S_HEADER_SIZE] = { 0 };
    uint8_t *f = header + QV_ENVELOPE_HEADER_SIZE;
    qv_le_put32 (f, (uint32_t) self->vt->type);
    qv_le_put32 (f + 4, (uint32_t) self->metric);
    qv_le_put32 (f + 8, self->dim);
    qv_le_put32 (f + 12, self->count);
    qv_le_put32 (f + 16, S_NPARAMS);
    qv_le_put32 (f + 20, self->params.M);
    qv_le_put32 (f + 24, self->params.ef_construction);
    qv_le_put32 (f + 28, self->params.nlist);
    qv_le_put32 (f + 32, self->params.pq_m);
    qv_le_put32 (f + 36, self->params.pq_nbits);
    qv_le_put64 (f + 40, self->params.seed);
    zchunk_extend (chunk, header, sizeof header);
    int rc = self->vt->serialize (self, chunk);
    if (rc) {
        zchunk_destroy (&chunk);
        return rc;
    }
    uint8_t *data = zchunk_data (chunk);
    uint64_t payload = zchunk_size (chunk) - S_HEADER_SIZE;
    qv_le_put64 (data + QV_ENVELOPE_HEADER_SIZE + 48, payload);
    qv_envelope_seal (data, zchunk_size (chunk), QV_ENVELOPE_VINDEX,
                      self->borrow? S_VERSION_LEAN: S_VERSION);
    *chunk_p = chunk;
    return 0;
}

//  Loads the index; own (or NULL) is data as a buffer the type's load may keep, and
//  *adopted says whether it did. vectors (or NULL): n x dim floats to borrow.
static int
s_load (const void *data, size_t size, void *own, bool *adopted, const float *vectors,
        uint32_t n, uint32_t dim_given, qv_index_t **index_p)
{
    const uint8_t *bytes = data;
    *index_p = NULL;
    //  f: the fields (type .. payload size) then the type's payload, flen bytes
    const uint8_t *f;
    size_t flen;
    bool lean = false;
    if (qv_envelope_is (data, size)) {
        qv_envelope_t env;
        int erc = qv_envelope_open (NULL, data, size, QV_ENVELOPE_VINDEX, S_VERSION_LEAN, &env);
        if (erc)
            return erc;
        if (env.version < S_VERSION || env.size < S_FIELDS_SIZE)
            return qv_err (QV_ECORRUPT, "index image: a %zu-byte version %u payload, "
                           "expected version %d or %d of at least %d bytes", env.size,
                           env.version, S_VERSION, S_VERSION_LEAN, S_FIELDS_SIZE);
        lean = env.version == S_VERSION_LEAN;
        if (lean && !vectors)
            return qv_err (QV_EINVAL, "the index object leaves its vectors out (they are "
                           "its segment's): it loads only with them");
        f = env.payload;
        flen = env.size;
    }
    else {
        //  Version 1, written before the envelope
        if (!data || size < S_V1_HEADER + S_FIELDS_SIZE + S_TRAILER_SIZE)
            return qv_err (QV_ECORRUPT, "index image truncated: %zu bytes", size);
        if (memcmp (bytes, S_MAGIC, 8) != 0)
            return qv_err (QV_ECORRUPT, "index image has a bad magic number");
        uint32_t stored_crc = qv_le_get32 (bytes + size - S_TRAILER_SIZE);
        if (qv_crc32c (bytes, size - S_TRAILER_SIZE) != stored_crc)
            return qv_err (QV_ECORRUPT, "index image fails its CRC32C check");
        uint32_t version = qv_le_get32 (bytes + 8);
        if (version != S_V1_VERSION)
            return qv_err (version > S_V1_VERSION? QV_EINVAL: QV_ECORRUPT,
                           "index image format version %u, this build reads %u", version, S_V1_VERSION);
        f = bytes + S_V1_HEADER;
        flen = size - S_V1_HEADER - S_TRAILER_SIZE;
    }
    uint32_t type = qv_le_get32 (f);
    uint32_t metric = qv_le_get32 (f + 4);
    uint32_t dim = qv_le_get32 (f + 8);
    uint32_t count = qv_le_get32 (f + 12);
    uint64_t payload_size = qv_le_get64 (f + 48);
    if (type == 0 || type >= sizeof s_type_names / sizeof s_type_names [0])
        return qv_err (QV_ECORRUPT, "index image has unknown type %u", type);
    if (metric > QV_METRIC_COSINE || dim == 0 || dim > S_MAX_DIM
    ||  qv_le_get32 (f + 16) != S_NPARAMS || count == UINT32_MAX)
        return qv_err (QV_ECORRUPT, "index image header is inconsistent");
    if (payload_size != flen - S_FIELDS_SIZE)
        return qv_err (QV_ECORRUPT, "index image payload is %llu bytes, frame holds %zu",
                       (unsigned long long) payload_size, flen - S_FIELDS_SIZE);
    const qv_index_vtable_t *vt = s_vtable_by_type (type);
    if (!vt)
        return qv_err (QV_EINVAL, "index type %s is not available in this build", s_type_names [type]);
    if (vectors && (count != n || dim != dim_given))
        return qv_err (QV_EINVAL, "the index object holds %u rows of %u dimensions, the "
                       "vectors given are %u of %u", count, dim, n, dim_given);
    qv_index_params_t params = {
        .M = qv_le_get32 (f + 20),
        .ef_construction = qv_le_get32 (f + 24),
        .nlist = qv_le_get32 (f + 28),
        .pq_m = qv_le_get32 (f + 32),
        .pq_nbits = qv_le_get32 (f + 36),
        .seed = qv_le_get64 (f + 40),
        .borrow = vectors != NULL,
    };
    qv_index_t *self = s_index_new (vt, (qv_metric_t) metric, dim, &params);
    if (!self) {
        //  Parameters that init rejects came from the file: that is corruption
        char why [256];
        snprintf (why, sizeof why, "%s", qv_err_msg ());
        return qv_err (QV_ECORRUPT, "index image parameters rejected: %s", why);
    }
    if (lean && !self->borrow) {
        qv_index_destroy (&self);
        return qv_err (QV_ECORRUPT, "index image leaves out the vectors of a %s index "
                       "(metric %u) that keeps its own copy", s_type_names [type], metric);
    }
    self->count = count;
    self->adopt = own;
    self->no_vectors = lean;
    if (self->borrow)
        self->borrowed = vectors;
    int rc = vt->load (self, f + S_FIELDS_SIZE, (size_t) payload_size);
    *adopted = own && !self->adopt;
    self->adopt = NULL;
    self->no_vectors = 0;
    if (rc) {
        qv_index_destroy (&self);
        return rc;
    }
    *index_p = self;
    return 0;
}

int
qv_index_load (const void *data, size_t size, qv_index_t **index_p)
{
    bool adopted;
    return s_load (data, size, NULL, &adopted, NULL, 0, 0, index_p);
}

int
qv_index_load_owned (void *data, size_t size, qv_index_t **index_p)
{
    return qv_index_load_owned_borrowed (data, size, NULL, 0, 0, index_p);
}

int
qv_index_load_borrowed (const void *data, size_t size, const float *vectors, uint32_t n,
                        uint32_t dim, qv_index_t **index_p)
{
    bool adopted;
    if (!vectors && n)
        return qv_err (QV_EINVAL, "no vectors given for %u rows", n);
    static const float none;
    return s_load (data, size, NULL, &adopted, vectors? vectors: &none, n, dim, index_p);
}

int
qv_index_load_owned_borrowed (void *data, size_t size, const float *vectors, uint32_t n,
                              uint32_t dim, qv_index_t **index_p)
{
    bool adopted = false;
    int rc = s_load (data, size, data, &adopted, vectors, n, dim, index_p);
    if (!adopted) {
        qv_hugemem_release (data, size);    //  not left resident in this thread's arena
        free (data);
    }
    return rc;
}

int
qv_index_rebind (qv_index_t *self, const float *vectors, uint32_t n, uint32_t dim)
{
    if (!self->borrow)
        return 0;
    if (n != self->count || dim != self->dim || (n && !vectors))
        return qv_err (QV_EINVAL, "the %s index reads %u rows of %u dimensions, the "
                       "vectors given are %u of %u", self->vt->name, self->count,
                       self->dim, n, dim);
    if (n) {
        self->borrowed = vectors;
        self->vt->rebind (self);
    }
    return 0;
}

int
qv_index_borrows (const qv_index_t *self)
{
    return self->borrow;
}

//  --------------------------------------------------------------------------
//  Properties

size_t
qv_index_memory_bytes (const qv_index_t *self)
{
    return sizeof *self + self->vt->memory_bytes (self);
}

size_t
qv_index_estimate_bytes (const char *type, qv_metric_t metric, uint32_t dim,
                         const qv_index_params_t *params, uint32_t rows)
{
    qv_index_t *index = qv_index_new (type, metric, dim, params);
    if (!index)
        return 0;
    size_t bytes = sizeof *index + index->vt->estimate_bytes (index, rows);
    qv_index_destroy (&index);
    return bytes;
}

size_t
qv_index_vector_bytes (const qv_index_t *self)
{
    return self->vt->vector_bytes (self);
}

uint32_t
qv_index_count (const qv_index_t *self)
{
    return self->count;
}

uint32_t
qv_index_dim (const qv_index_t *self)
{
    return self->dim;
}

qv_metric_t
qv_index_metric (const qv_index_t *self)
{
    return self->metric;
}

qv_index_type_t
qv_index_type (const qv_index_t *self)
{
    return self->vt->type;
}

const char *
qv_index_type_name (const qv_index_t *self)
{
    return self->vt->name;
}

const qv_index_params_t *
qv_index_params (const qv_index_t *self)
{
    return &self->params;
}
