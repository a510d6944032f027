//  The segment object format: qv_segment_save and qv_segment_load.
#include "qv_segfile.h"
#include "qv_segment_alloc.h"
#include "qv_crc.h"
#include "qv_envelope.h"
#include "qv_le.h"
#include "qv_rc.h"
#include "qv_varint.h"

#include <stdlib.h>
#include <string.h>

//  Segment object layout: the stored-object envelope (qv_envelope.h) of kind SEGMENT,
//  format version 3, around (integers little-endian):
//    coll_id u32 | seg_id u64 | shard u32 | rows u32 | body size u64 |
//    body: msgpack {"schema": field maps,
//                   "tsd": bin: the rows' insert timestamps as zigzag delta varints
//                          (qv_varint_put_deltas: each from the row before, the
//                          first from 0), nothing else in the bin,
//                   "pkd": bin: the same of the int64 primary key (only when the
//                          primary field is int64),
//                   "batch": qv_batch_write_but, the int64 primary key's column an
//                            empty bin (its valid bytes, if any, kept)}.
//  Rows of one insert share a timestamp and timestamps rise, ids are often
//  consecutive: both take about a byte a row instead of 8. A varchar key is written
//  in the batch as before.
//  Version 2 (Quiver <= 3aee65e), still read: the same envelope and fields, body
//  {"schema", "ts": bin of rows x u64 (host order, x86 and arm64 are little-endian),
//  "batch": qv_batch_write (every column's values)}.
//  Version 1 (before the envelope, Quiver <= 06906df), still read:
//    magic "QVSEG\0\0\0" (8) | version u32 (=1) | the fields and body of version 2 |
//    crc32c u32 of everything before it.
#define S_MAGIC "QVSEG\0\0\0"
#define S_V1_VERSION 1
#define S_V1_HEADER 12                  //  magic + version, before the fields
#define S_V2_VERSION 2                  //  raw timestamps and keys, in the envelope
#define S_VERSION 3                     //  the envelope's payload version, written
#define S_FIELDS 28                     //  coll_id .. body size
#define S_BAD_CODED "bad delta-coded timestamps or keys (truncated, over-long, or not one a row)"

//  The primary field when its values are delta-coded apart from the batch (int64),
//  else -1.
static int
s_coded_pk (const qv_schema_t *schema)
{
    return schema->fields [schema->pk].type == QV_INT64 ? schema->pk : -1;
}

void *
qv_segment_save (qv_segment_t *self, size_t *size)
{
    *size = 0;
    uint32_t rows = atomic_load (&self->rows);
    int pk = s_coded_pk (self->schema);
    //  The coded columns, one at a time (room for the worst case, 10 bytes a value)
    uint8_t *coded = malloc ((size_t) (rows ? rows : 1) * QV_VARINT_MAX);
    qv_wr_t *w = qv_wr_new ();
    if (!w || !coded) {
        qv_wr_destroy (&w);
        free (coded);
        return NULL;
    }
    //  One buffer: the envelope header and fields first (filled in below), then the
    //  body encoded straight after them, in room reserved for the segment's size (a
    //  segment of hundreds of MB is not doubled into, nor copied into a second buffer)
    uint8_t header [QV_ENVELOPE_HEADER_SIZE + S_FIELDS] = { 0 };
    qv_wr_reserve (w, sizeof header + qv_segment_bytes (self) + 65536);
    qv_wr_raw (w, header, sizeof header);
    qv_wr_map (w, pk >= 0 ? 4 : 3);
    qv_wr_str (w, "schema");
    qv_schema_write (self->schema, w);
    qv_wr_str (w, "tsd");
    qv_wr_bin (w, coded, qv_varint_put_deltas (coded, self->ts, rows));
    if (pk >= 0) {
        qv_wr_str (w, "pkd");
        const uint64_t *ids = (const uint64_t *) self->batch->cols [pk].data;
        qv_wr_bin (w, coded, qv_varint_put_deltas (coded, ids, rows));
    }
    free (coded);
    qv_wr_str (w, "batch");
    self->batch->n = rows;
    qv_batch_write_but (self->batch, w, pk);
    size_t total;
    uint8_t *data = qv_wr_detach (w, &total);
    qv_wr_destroy (&w);
    if (!data || total < sizeof header) {
        free (data);
        return NULL;
    }
    uint8_t *f = data + QV_ENVELOPE_HEADER_SIZE;
    qv_le_put32 (f, self->coll_id);
    qv_le_put64 (f + 4, self->id);
    qv_le_put32 (f + 12, self->shard);
    qv_le_put32 (f + 16, rows);
    qv_le_put64 (f + 20, total - sizeof header);
    qv_envelope_seal (data, total, QV_ENVELOPE_SEGMENT, S_VERSION);
    *size = total;
    return data;
}

//  The fixed-width column with the most bytes per row (the vectors), or -1.
static int
s_largest_column (const qv_schema_t *schema)
{
    int best = -1;
    size_t most = 0;
    for (int i = 0; i < schema->nfields; i++) {
        size_t width = qv_field_width (&schema->fields [i]);
        if (width > most) {
            most = width;
            best = i;
        }
    }
    return best;
}

//  Loads the segment. With adopted (not NULL), data is the caller's malloc'd buffer,
//  which the segment may keep as its largest column's memory: then *adopted is set.
static int
s_load (const char *name, const void *data, size_t size, bool *adopted, qv_segment_t **out)
{
    *out = NULL;
    const uint8_t *p = data;
    //  f: the fields (coll_id .. body size) then the body, flen bytes in all
    const uint8_t *f;
    size_t flen;
    uint32_t version = S_V1_VERSION;
    if (qv_envelope_is (p, size)) {
        qv_envelope_t env;
        int erc = qv_envelope_open (name, p, size, QV_ENVELOPE_SEGMENT, S_VERSION, &env);
        if (erc)
            return erc;
        if (env.version < S_V2_VERSION || env.size < S_FIELDS)
            return qv_err (QV_ECORRUPT, "segment object %s: a %zu-byte version %u payload, "
                           "expected version %d or %d of at least %d bytes", name, env.size,
                           env.version, S_V2_VERSION, S_VERSION, S_FIELDS);
        version = env.version;
        f = env.payload;
        flen = env.size;
    }
    else {
        //  Version 1, written before the envelope
        if (!p || size < S_V1_HEADER + S_FIELDS + 4 || memcmp (p, S_MAGIC, 8) != 0)
            return qv_err (QV_ECORRUPT, "segment object %s: not a segment (bad magic or truncated)", name);
        uint32_t v1 = qv_le_get32 (p + 8);
        if (v1 != S_V1_VERSION)
            return qv_err (QV_ECORRUPT, "segment object %s: unsupported format version %u", name, v1);
        if (qv_crc32c (p, size - 4) != qv_le_get32 (p + size - 4))
            return qv_err (QV_ECORRUPT, "segment object %s: checksum mismatch", name);
        f = p + S_V1_HEADER;
        flen = size - S_V1_HEADER - 4;
    }
    uint32_t coll_id = qv_le_get32 (f), shard = qv_le_get32 (f + 12), rows = qv_le_get32 (f + 16);
    uint64_t seg_id = qv_le_get64 (f + 4), body_size = qv_le_get64 (f + 20);
    if (body_size != flen - S_FIELDS)
        return qv_err (QV_ECORRUPT, "segment object %s: truncated (body of %zu bytes, header says %llu)",
                       name, flen - S_FIELDS, (unsigned long long) body_size);
    int rc;
    qv_doc_t *doc = qv_doc_parse_view (f + S_FIELDS, body_size, SIZE_MAX, &rc);
    if (!doc)
        return qv_err (QV_ECORRUPT, "segment object %s: body does not decode", name);
    const char *what = "contents do not match the format";
    const qv_val_t *root = qv_doc_root (doc);
    bool coded = version >= S_VERSION;
    const qv_val_t *vs = qv_val_get (root, "schema"), *vts = qv_val_get (root, coded ? "tsd" : "ts"),
                   *vpk = qv_val_get (root, "pkd"), *vb = qv_val_get (root, "batch");
    qv_schema_t *schema = vs ? qv_schema_parse (vs, &rc) : NULL;
    qv_segment_t *self = NULL;
    const void *tsp, *pkp = NULL;
    size_t tslen, pklen = 0;
    if (!schema || !vts || qv_val_bin (vts, &tsp, &tslen) || !vb)
        goto corrupt;
    //  Version 3: the int64 key is in "pkd" (and only then); a varint is a byte at
    //  least, so rows is bounded by the object's size before anything is allocated
    int pk = coded ? s_coded_pk (schema) : -1;
    if ((pk >= 0) != (coded && vpk != NULL) || (pk >= 0 && qv_val_bin (vpk, &pkp, &pklen)))
        goto corrupt;
    if (coded ? tslen < rows || (pk >= 0 && pklen < rows) : tslen != (size_t) rows * 8) {
        what = coded ? S_BAD_CODED : what;
        goto corrupt;
    }
    const qv_val_t *vn = qv_val_get (vb, "n");
    uint64_t bn;
    if (!vn || qv_val_uint (vn, &bn) || bn != rows)
        goto corrupt;
    self = s_new (schema, seg_id, coll_id, shard);
    if (!self)
        goto corrupt;
    //  Adopt the buffer for the largest column when it is most of the object
    int adopt = adopted ? s_largest_column (self->schema) : -1;
    if (adopt >= 0 && (adopt == pk
                       || (uint64_t) qv_field_width (&self->schema->fields [adopt]) * rows < size / 2))
        adopt = -1;
    if (qv_batch_read_but (self->schema, vb, adopt, pk, &self->batch) || self->batch->n != rows)
        goto corrupt;
    if (s_alloc_meta (self, rows))
        goto corrupt;
    if (!coded)
        memcpy (self->ts, tsp, tslen);
    else
    if (qv_varint_get_deltas (tsp, tslen, self->ts, rows)
    ||  (pk >= 0 && qv_varint_get_deltas (pkp, pklen, (uint64_t *) self->batch->cols [pk].data,
                                          rows))) {
        what = S_BAD_CODED;
        goto corrupt;
    }
    if (adopt >= 0) {
        //  Checked by qv_batch_read_but: a bin of width x rows bytes inside data
        const void *vp;
        size_t vlen;
        const qv_val_t *vcols = qv_val_get (vb, "cols");
        if (qv_val_bin (qv_val_at (vcols, (size_t) adopt), &vp, &vlen))
            goto corrupt;
        qv_doc_destroy (&doc);      //  a view into data, which is rewritten now
        memmove ((void *) data, vp, vlen);
        void *shrunk = vlen + (1u << 20) < size ? realloc ((void *) data, vlen ? vlen : 1) : NULL;
        qv_col_t *col = &self->batch->cols [adopt];
        qv_col_data_free (col);
        col->data = shrunk ? shrunk : (void *) data;
        *adopted = true;            //  the column's now
    }
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
    return qv_err (QV_ECORRUPT, "segment object %s: %s", name, what);
}

int
qv_segment_load (const char *name, const void *data, size_t size, qv_segment_t **out)
{
    return s_load (name, data, size, NULL, out);
}

int
qv_segment_load_owned (const char *name, void *data, size_t size, qv_segment_t **out)
{
    bool adopted = false;
    int rc = s_load (name, data, size, &adopted, out);
    if (!adopted)
        free (data);
    return rc;
}
