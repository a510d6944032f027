//  The two steps of building a segment, shared by qv_segment_new and the segment-file
//  decoder (objstore/qv_segfile.c, qv_segment_load): a segment with its schema and
//  no rows, and the per-row metadata (insert timestamps, cosine norms) for cap rows
//  (delete timestamps come with the first delete: qv_segment_delete). For those two only.
#ifndef QV_SEGMENT_ALLOC_H_INCLUDED
#define QV_SEGMENT_ALLOC_H_INCLUDED

#include "qv_segment.h"
#include "qv_rc.h"

#include <stdlib.h>

static inline int
s_alloc_meta (qv_segment_t *self, uint32_t cap)
{
    self->ts = calloc (cap ? cap : 1, sizeof (uint64_t));
    if (!self->ts)
        return QV_ENOMEM;
    for (int i = 0; i < self->schema->nfields; i++) {
        const qv_field_t *f = &self->schema->fields [i];
        if (f->type == QV_FLOAT_VECTOR && f->metric == QV_METRIC_COSINE) {
            self->norms [i] = calloc (cap ? cap : 1, sizeof (float));
            if (!self->norms [i])
                return QV_ENOMEM;
        }
    }
    self->cap = cap;
    return 0;
}

static inline qv_segment_t *
s_new (const qv_schema_t *schema, uint64_t id, uint32_t coll_id, uint32_t shard)
{
    qv_segment_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    atomic_init (&self->refs, 1);
    self->id = id;
    self->coll_id = coll_id;
    self->shard = shard;
    self->schema = qv_schema_dup (schema);
    if (!self->schema) {
        free (self);
        return NULL;
    }
    return self;
}

#endif
