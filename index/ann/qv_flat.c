//  FLAT index: vectors kept back to back in one 64-byte-aligned array, searched by
//  exact scan with the batch distance kernels.
//
//  Payload layout: count * dim float32 values (little-endian), row after row.
#include "qv_flat.h"

#include <stdlib.h>
#include <string.h>

//  Rows per batch-kernel call: 256 rows of distances stay in L1.
#define S_BLOCK 256

typedef struct {
    float *vectors;             //  count rows of dim floats, 64-byte aligned
    size_t capacity;            //  rows vectors can hold
} s_flat_t;

int
qv_flat_scan (const float *query, const float *base, uint32_t n, uint32_t dim,
              qv_metric_t kernel_metric, const qv_search_params_t *params,
              qv_topk_t *topk)
{
    if (kernel_metric != QV_METRIC_L2 && kernel_metric != QV_METRIC_IP)
        return qv_err (QV_EINVAL, "exact scan computes L2 or IP, not %s",
                       qv_metric_name (kernel_metric));
    const qv_dist_kernels_t *kern = qv_dist_kernels ();
    int is_ip = kernel_metric == QV_METRIC_IP;
    int filtered = qv_search_params_filtered (params);
    float thr = qv_topk_threshold (topk);

    //  A sparse bitmap: visit only its rows
    if (filtered && params->allowed
    &&  roaring_bitmap_range_cardinality (params->allowed, 0, n) < (uint64_t) n / 8) {
        qv_dist_fn pair = is_ip? kern->ip: kern->l2sq;
        roaring_uint32_iterator_t it;
        roaring_init_iterator (params->allowed, &it);
        for (; it.has_value && it.current_value < n; roaring_advance_uint32_iterator (&it)) {
            uint32_t row = it.current_value;
            if (params->allow_fn && !params->allow_fn (row, params->allow_arg))
                continue;
            float d = pair (query, base + (size_t) row * dim, dim);
            float score = is_ip? -d: d;
            if (score <= thr) {
                qv_topk_push (topk, score, row);
                thr = qv_topk_threshold (topk);
            }
        }
        return 0;
    }
    qv_dist_batch_fn batch = is_ip? kern->ip_batch: kern->l2sq_batch;
    float dist [S_BLOCK];
    for (uint32_t start = 0; start < n; start += S_BLOCK) {
        uint32_t m = n - start < S_BLOCK? n - start: S_BLOCK;
        batch (query, base + (size_t) start * dim, m, dim, dist);
        for (uint32_t i = 0; i < m; i++) {
            float score = is_ip? -dist [i]: dist [i];
            if (score > thr)
                continue;
            if (filtered && !qv_search_params_allows (params, start + i))
                continue;
            qv_topk_push (topk, score, start + i);
            thr = qv_topk_threshold (topk);
        }
    }
    return 0;
}

static int
s_init (qv_index_t *self)
{
    self->impl = calloc (1, sizeof (s_flat_t));
    return self->impl? 0: qv_err (QV_ENOMEM, "out of memory for a FLAT index");
}

static void
s_destroy (qv_index_t *self)
{
    s_flat_t *flat = self->impl;
    if (flat) {
        free (flat->vectors);
        free (flat);
        self->impl = NULL;
    }
}

//  Makes room for rows rows in total: exactly that many the first time (a build),
//  doubling after (adds).
static int
s_reserve (qv_index_t *self, size_t rows)
{
    s_flat_t *flat = self->impl;
    if (rows <= flat->capacity)
        return 0;
    size_t capacity = flat->capacity? flat->capacity: rows;
    while (capacity < rows)
        capacity *= 2;
    size_t bytes = (capacity * self->dim * sizeof (float) + 63) / 64 * 64;
    float *vectors = aligned_alloc (64, bytes);
    if (!vectors)
        return qv_err (QV_ENOMEM, "out of memory for %zu FLAT rows", capacity);
    if (self->count)
        memcpy (vectors, flat->vectors, (size_t) self->count * self->dim * sizeof (float));
    free (flat->vectors);
    flat->vectors = vectors;
    flat->capacity = capacity;
    return 0;
}

static int
s_add (qv_index_t *self, const float *vectors, uint32_t n)
{
    s_flat_t *flat = self->impl;
    int rc = s_reserve (self, (size_t) self->count + n);
    if (rc)
        return rc;
    memcpy (flat->vectors + (size_t) self->count * self->dim, vectors,
            (size_t) n * self->dim * sizeof (float));
    return 0;
}

static int
s_build (qv_index_t *self, const float *vectors, uint32_t n)
{
    return s_add (self, vectors, n);
}

static int
s_search (const qv_index_t *self, const float *query, const qv_search_params_t *params,
          qv_topk_t *topk)
{
    const s_flat_t *flat = self->impl;
    return qv_flat_scan (query, flat->vectors, self->count, self->dim,
                         self->kernel_metric, params, topk);
}

static int
s_serialize (const qv_index_t *self, zchunk_t *chunk)
{
    const s_flat_t *flat = self->impl;
    zchunk_extend (chunk, flat->vectors, (size_t) self->count * self->dim * sizeof (float));
    return 0;
}

static int
s_load (qv_index_t *self, const uint8_t *payload, size_t payload_size)
{
    s_flat_t *flat = self->impl;
    uint32_t count = self->count;
    if ((uint64_t) count * self->dim * sizeof (float) != payload_size)
        return qv_err (QV_ECORRUPT, "FLAT payload is %zu bytes, %u rows of dim %u need %llu",
                       payload_size, count, self->dim,
                       (unsigned long long) count * self->dim * sizeof (float));
    self->count = 0;
    int rc = s_reserve (self, count? count: 1);
    if (rc)
        return rc;
    memcpy (flat->vectors, payload, payload_size);
    self->count = count;
    return 0;
}

static size_t
s_memory_bytes (const qv_index_t *self)
{
    const s_flat_t *flat = self->impl;
    return sizeof *flat + flat->capacity * self->dim * sizeof (float);
}

static size_t
s_estimate_bytes (const qv_index_t *self, uint32_t rows)
{
    return sizeof (s_flat_t) + (size_t) rows * self->dim * sizeof (float);
}

static size_t
s_vector_bytes (const qv_index_t *self)
{
    return (size_t) self->count * self->dim * sizeof (float);
}

const qv_index_vtable_t qv_flat_vtable = {
    .type = QV_INDEX_FLAT,
    .name = "FLAT",
    .init = s_init,
    .destroy = s_destroy,
    .build = s_build,
    .add = s_add,
    .search = s_search,
    .serialize = s_serialize,
    .load = s_load,
    .memory_bytes = s_memory_bytes,
    .vector_bytes = s_vector_bytes,
    .estimate_bytes = s_estimate_bytes,
};
