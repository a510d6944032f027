//  Replies about a collection (qv_coll_reply.h): encoding only, read from the catalog's
//  collections on the searcher's thread.
#include "qv_coll_reply.h"
#include "qv_rc.h"

#include <stdlib.h>
#include <string.h>

void
qv_collection_describe_index (qv_collection_t *c, int fi, uint64_t durable, qv_wr_t *w)
{
    const qv_index_def_t *def = c->index_defs [fi];
    uint64_t indexed = 0, total = 0;
    bool pending = false;
    for (size_t i = 0; i < c->nsegs; i++) {
        qv_segment_t *seg = c->segs [i];
        uint32_t rows = atomic_load (&seg->rows);
        total += rows;
        if (seg->indexes [fi] && seg->indexes [fi]->version == c->index_versions [fi]
        &&  seg->indexes [fi]->manifest <= durable)
            indexed += rows;
        else
        if (seg->state == QV_SEG_FLUSHED)
            pending = true;
    }
    qv_wr_str (w, "field"); qv_wr_str (w, c->schema->fields [fi].name);
    qv_wr_str (w, "index_type"); qv_wr_str (w, def->type);
    qv_wr_str (w, "metric");        //  none for a scalar index
    qv_wr_str (w, qv_scalar_is_type (def->type) ? "" : qv_metric_name (c->schema->fields [fi].metric));
    qv_wr_str (w, "params"); qv_index_def_write_params (def, w);
    qv_wr_str (w, "state");
    qv_wr_str (w, c->index_errors [fi][0] ? "failed" : pending ? "building" : "finished");
    qv_wr_str (w, "indexed_rows"); qv_wr_uint (w, indexed);
    qv_wr_str (w, "total_rows"); qv_wr_uint (w, total);
    qv_wr_str (w, "build_error"); qv_wr_str (w, c->index_errors [fi]);
}

int
qv_collection_check_fields (qv_collection_t *coll, const qv_val_t *output_fields, qv_output_t *out)
{
    memset (out, 0, sizeof *out);
    if (!output_fields)
        return 0;
    const qv_schema_t *schema = coll->schema;
    int meta = qv_schema_meta (schema);
    uint64_t listed = 0;
    for (size_t i = 0; i < qv_val_len (output_fields); i++) {
        const char *s;
        size_t n;
        if (qv_val_str (qv_val_at (output_fields, i), &s, &n))
            return qv_err (QV_EPROTO, "'output_fields' must be a list of strings");
        char name [QV_NAME_MAX + 1];
        int fi = -1;
        if (n <= QV_NAME_MAX) {
            memcpy (name, s, n);
            name [n] = 0;
            fi = memchr (s, 0, n) ? -1 : qv_schema_find (schema, name);
        }
        if (fi < 0 && n == 1 && s [0] == '*') {
            for (int f = 0; f < schema->nfields; f++)
                if (f != meta && !(listed & (1ull << f))) {
                    out->fids [out->nfids++] = f;
                    listed |= 1ull << f;
                }
            out->meta_all = meta >= 0;
            continue;
        }
        if (fi >= 0 && fi == meta) {
            out->meta_all = true;
            continue;
        }
        if (fi >= 0) {
            if (!(listed & (1ull << fi)))
                out->fids [out->nfids++] = fi;
            listed |= 1ull << fi;
            continue;
        }
        if (meta < 0)
            return qv_err (QV_EINVAL, "output_fields: collection '%s' has no field '%s'",
                           coll->name, n > QV_NAME_MAX ? "(too long)" : name);
        bool seen = false;
        for (int k = 0; k < out->nkeys && !seen; k++)
            seen = out->key_lens [k] == n && memcmp (out->keys [k], s, n) == 0;
        if (seen)
            continue;
        if (out->nkeys == QV_OUTPUT_KEYS_MAX)
            return qv_err (QV_EINVAL, "output_fields names more than %d dynamic fields; use \"*\"",
                           QV_OUTPUT_KEYS_MAX);
        out->keys [out->nkeys] = s;
        out->key_lens [out->nkeys++] = n;
    }
    return 0;
}

//  Whether the msgpack string key is one of out's named `$meta` keys.
static bool
s_key_wanted (const qv_output_t *out, const qv_val_t *key)
{
    const char *s;
    size_t n;
    if (qv_val_str (key, &s, &n))
        return false;
    for (int k = 0; k < out->nkeys; k++)
        if (out->key_lens [k] == n && memcmp (out->keys [k], s, n) == 0)
            return true;
    return false;
}

void
qv_collection_write_row (qv_collection_t *coll, qv_segment_t *seg, uint32_t row,
                         const qv_output_t *out, bool with_pk, qv_wr_t *w)
{
    int pk = coll->schema->pk;
    int n = out->nfids;
    bool pk_listed = false;
    for (int i = 0; i < out->nfids; i++)
        pk_listed |= out->fids [i] == pk;
    if (with_pk && !pk_listed)
        n++;
    //  The row's `$meta` map, read in place, when keys of it are wanted
    int meta = qv_schema_meta (coll->schema);
    qv_doc_t *doc = NULL;
    const qv_val_t *map = NULL;
    if (meta >= 0 && (out->meta_all || out->nkeys)) {
        const qv_bytes_t *raw = qv_col_var (&seg->batch->cols [meta], row);
        int rc;
        if (raw->len && (doc = qv_doc_parse_view (raw->ptr, raw->len, 1u << 24, &rc))
        &&  qv_val_type (qv_doc_root (doc)) == QV_V_MAP)
            map = qv_doc_root (doc);
        for (size_t i = 0; map && i < qv_val_len (map); i++)
            n += out->meta_all || s_key_wanted (out, qv_val_key (map, i));
    }
    qv_wr_map (w, (size_t) n);
    if (with_pk && !pk_listed) {
        qv_wr_str (w, coll->schema->fields [pk].name);
        qv_col_write_value (&coll->schema->fields [pk], &seg->batch->cols [pk], row, w);
    }
    for (int i = 0; i < out->nfids; i++) {
        const qv_field_t *f = &coll->schema->fields [out->fids [i]];
        const qv_col_t *c = &seg->batch->cols [out->fids [i]];
        qv_wr_str (w, f->name);
        if (out->vectors_bin && f->type == QV_FLOAT_VECTOR && !(c->valid && !c->valid [row]))
            qv_wr_bin (w, qv_col_vec (f, c, row), (size_t) f->dim * sizeof (float));
        else
            qv_col_write_value (f, c, row, w);
    }
    for (size_t i = 0; map && i < qv_val_len (map); i++)
        if (out->meta_all || s_key_wanted (out, qv_val_key (map, i))) {
            qv_wr_val (w, qv_val_key (map, i));
            qv_wr_val (w, qv_val_value (map, i));
        }
    qv_doc_destroy (&doc);
}

int
qv_collection_get (qv_collection_t *coll, const qv_keys_t *keys, const roaring_bitmap_t *parts,
                   const qv_output_t *out, qv_wr_t *w)
{
    qv_pkloc_t *locs = malloc ((keys->n + 1) * sizeof *locs);
    if (!locs)
        return qv_err (QV_ENOMEM, "out of memory");
    uint32_t found = 0;
    qv_collection_expire (coll, coll->ttl_seconds ? qv_clock_wall_msec () : 0);
    for (uint32_t i = 0; i < keys->n; i++) {
        const void *str = keys->strs ? keys->strs [i].ptr : NULL;
        size_t len = keys->strs ? keys->strs [i].len : 0;
        uint64_t h = str ? qv_pkindex_hash (str, len) : (uint64_t) keys->ints [i];
        if (qv_pkindex_find (coll->pk, h, str, len, &locs [found])
        &&  (!parts || roaring_bitmap_contains (parts, ((qv_segment_t *) locs [found].seg)->partition))
        &&  !qv_segment_expired (locs [found].seg, locs [found].row))
            found++;
    }
    qv_wr_array (w, found);
    for (uint32_t i = 0; i < found; i++)
        qv_collection_write_row (coll, locs [i].seg, locs [i].row, out, true, w);
    free (locs);
    return 0;
}

void
qv_collection_describe (qv_collection_t *c, uint64_t durable, qv_wr_t *w)
{
    qv_wr_str (w, "collection"); qv_wr_str (w, c->name);
    qv_wr_str (w, "collection_id"); qv_wr_uint (w, c->id);
    qv_wr_str (w, "fields"); qv_schema_write_user (c->schema, w);
    qv_wr_str (w, "shards"); qv_wr_uint (w, c->shards);
    qv_wr_str (w, "consistency"); qv_wr_str (w, c->consistency);
    qv_wr_str (w, "rows"); qv_wr_uint (w, c->live_rows);
    qv_wr_str (w, "segments"); qv_wr_uint (w, c->nsegs);
    size_t n = 0;
    for (int fi = 0; fi < c->schema->nfields; fi++)
        n += c->index_defs [fi] != NULL;
    qv_wr_str (w, "indexes");
    qv_wr_array (w, n);
    for (int fi = 0; fi < c->schema->nfields; fi++)
        if (c->index_defs [fi]) {
            qv_wr_map (w, QV_DESCRIBE_INDEX_FIELDS);
            qv_collection_describe_index (c, fi, durable, w);
        }
    qv_wr_str (w, "description"); qv_wr_str (w, c->description);
    qv_wr_str (w, "ttl_seconds"); qv_wr_uint (w, c->ttl_seconds);
    qv_wr_str (w, "num_partitions"); qv_wr_uint (w, c->nparts);
    qv_wr_str (w, "enable_dynamic_field"); qv_wr_bool (w, qv_schema_meta (c->schema) >= 0);
}

void
qv_collection_partition_stats (qv_collection_t *c, qv_wr_t *w)
{
    qv_wr_array (w, c->nparts);
    for (uint32_t i = 0; i < c->nparts; i++) {
        uint64_t rows = 0, segs = 0;
        for (size_t j = 0; j < c->nsegs; j++) {
            qv_segment_t *seg = c->segs [j];
            if (seg->partition != c->parts [i].id)
                continue;
            segs++;
            uint32_t n = atomic_load (&seg->rows);
            for (uint32_t r = 0; r < n; r++)
                rows += qv_segment_deleted_at (seg, r) == 0;
        }
        qv_wr_map (w, 3);
        qv_wr_str (w, "name"); qv_wr_str (w, c->parts [i].name);
        qv_wr_str (w, "rows"); qv_wr_uint (w, rows);
        qv_wr_str (w, "segments"); qv_wr_uint (w, segs);
    }
}
