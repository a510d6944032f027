//  The segment object format: qv_segment_save and qv_segment_load.
#include "qv_segfile.h"
#include "qv_segment_alloc.h"
#include "qv_crc.h"
#include "qv_rc.h"

#include <stdlib.h>
#include <string.h>

//  Segment object layout, little-endian:
//    magic "QVSEG\0\0\0" (8) | version u32 (=1) | coll_id u32 | seg_id u64 | shard u32 |
//    rows u32 | body size u64 | body: msgpack {"schema": field maps, "ts": bin of rows
//    x u64, "batch": qv_batch_write} | crc32c u32 of everything before it.
#define S_MAGIC "QVSEG\0\0\0"
#define S_VERSION 1
#define S_HEADER 40

zchunk_t *
qv_segment_save (qv_segment_t *self)
{
    uint32_t rows = atomic_load (&self->rows);
    qv_wr_t *w = qv_wr_new ();
    if (!w)
        return NULL;
    qv_wr_map (w, 3);
    qv_wr_str (w, "schema");
    qv_schema_write (self->schema, w);
    qv_wr_str (w, "ts");
    qv_wr_bin (w, self->ts, rows * sizeof (uint64_t));
    qv_wr_str (w, "batch");
    self->batch->n = rows;
    qv_batch_write (self->batch, w);
    size_t body_size;
    const void *body = qv_wr_data (w, &body_size);
    zchunk_t *chunk = zchunk_new (NULL, S_HEADER + body_size + 4);
    if (!chunk) {
        qv_wr_destroy (&w);
        return NULL;
    }
    uint8_t header [S_HEADER];
    memcpy (header, S_MAGIC, 8);
    uint32_t version = S_VERSION;
    uint64_t body64 = body_size;
    memcpy (header + 8, &version, 4);
    memcpy (header + 12, &self->coll_id, 4);
    memcpy (header + 16, &self->id, 8);
    memcpy (header + 24, &self->shard, 4);
    memcpy (header + 28, &rows, 4);
    memcpy (header + 32, &body64, 8);
    zchunk_append (chunk, header, S_HEADER);
    zchunk_append (chunk, body, body_size);
    uint32_t crc = qv_crc32c (zchunk_data (chunk), zchunk_size (chunk));
    zchunk_append (chunk, &crc, 4);
    qv_wr_destroy (&w);
    return chunk;
}

int
qv_segment_load (const char *name, const void *data, size_t size, qv_segment_t **out)
{
    *out = NULL;
    const uint8_t *p = data;
    if (size < S_HEADER + 4 || memcmp (p, S_MAGIC, 8) != 0)
        return qv_err (QV_ECORRUPT, "segment object %s: not a segment (bad magic or truncated)", name);
    uint32_t version, coll_id, shard, rows, crc;
    uint64_t seg_id, body_size;
    memcpy (&version, p + 8, 4);
    memcpy (&coll_id, p + 12, 4);
    memcpy (&seg_id, p + 16, 8);
    memcpy (&shard, p + 24, 4);
    memcpy (&rows, p + 28, 4);
    memcpy (&body_size, p + 32, 8);
    if (version != S_VERSION)
        return qv_err (QV_ECORRUPT, "segment object %s: unsupported format version %u", name, version);
    if (body_size != size - S_HEADER - 4)
        return qv_err (QV_ECORRUPT, "segment object %s: truncated (%zu bytes, header says %llu)",
                       name, size, (unsigned long long) (body_size + S_HEADER + 4));
    memcpy (&crc, p + size - 4, 4);
    if (qv_crc32c (p, size - 4) != crc)
        return qv_err (QV_ECORRUPT, "segment object %s: checksum mismatch", name);
    int rc;
    qv_doc_t *doc = qv_doc_parse_view (p + S_HEADER, body_size, SIZE_MAX, &rc);
    if (!doc)
        return qv_err (QV_ECORRUPT, "segment object %s: body does not decode", name);
    const qv_val_t *root = qv_doc_root (doc);
    const qv_val_t *vs = qv_val_get (root, "schema"), *vts = qv_val_get (root, "ts"),
                   *vb = qv_val_get (root, "batch");
    qv_schema_t *schema = vs ? qv_schema_parse (vs, &rc) : NULL;
    qv_segment_t *self = NULL;
    const void *tsp;
    size_t tslen;
    if (!schema || !vts || qv_val_bin (vts, &tsp, &tslen) || tslen != (size_t) rows * 8 || !vb)
        goto corrupt;
    self = s_new (schema, seg_id, coll_id, shard);
    if (!self)
        goto corrupt;
    if (qv_batch_read (self->schema, vb, &self->batch) || self->batch->n != rows)
        goto corrupt;
    if (s_alloc_meta (self, rows))
        goto corrupt;
    memcpy (self->ts, tsp, tslen);
    for (int i = 0; i < schema->nfields; i++)
        if (self->norms [i])
            for (uint32_t r = 0; r < rows; r++)
                self->norms [i][r] = qv_dist_norm (qv_col_vec (&schema->fields [i],
                                                   &self->batch->cols [i], r), schema->fields [i].dim);
    atomic_store (&self->rows, rows);
    self->state = QV_SEG_FLUSHED;
    qv_schema_destroy (&schema);
    qv_doc_destroy (&doc);
    *out = self;
    return 0;
corrupt:
    qv_segment_unlink (&self);
    qv_schema_destroy (&schema);
    qv_doc_destroy (&doc);
    return qv_err (QV_ECORRUPT, "segment object %s: contents do not match the format", name);
}
