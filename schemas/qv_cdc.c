//  Change events: built from committed records, split and encoded for NATS.
#include "qv_cdc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

//  Room for everything in an event but its items (names are at most 255 bytes).
#define S_OVERHEAD 1024

static const char *
s_op_name (const qv_record_t *rec)
{
    switch (rec->type) {
        case QV_REC_CREATE_COLLECTION: return "create_collection";
        case QV_REC_DROP_COLLECTION: return "drop_collection";
        case QV_REC_INSERT: return rec->upsert ? "upsert" : "insert";
        case QV_REC_DELETE: return "delete";
        case QV_REC_CREATE_INDEX: return "create_index";
        case QV_REC_DROP_INDEX: return "drop_index";
        case QV_REC_CREATE_PARTITION: return "create_partition";
        case QV_REC_DROP_PARTITION: return "drop_partition";
        case QV_REC_SEAL: return "seal";    //  never an event (qv_catalog_change_event)
        case QV_REC_ALTER_COLLECTION: return "alter_collection";
        case QV_REC_COMPACT: return "compact";     //  never an event either
        case QV_REC_USER: return "user";    //  never an event (no collection)
    }
    return "unknown";
}

qv_cdc_t *
qv_cdc_from_record (const qv_record_t *rec, const char *collection, uint64_t seq, bool with_rows)
{
    qv_cdc_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    snprintf (self->op, sizeof self->op, "%s", s_op_name (rec));
    snprintf (self->collection, sizeof self->collection, "%s", collection);
    self->seq = seq;
    self->ts = rec->ts;
    if (rec->type == QV_REC_CREATE_INDEX || rec->type == QV_REC_DROP_INDEX)
        snprintf (self->field, sizeof self->field, "%s", rec->index.field);
    if (rec->type == QV_REC_CREATE_INDEX)
        snprintf (self->index_type, sizeof self->index_type, "%s", rec->index.type);
    if (rec->type == QV_REC_CREATE_PARTITION || rec->type == QV_REC_DROP_PARTITION)
        snprintf (self->partition, sizeof self->partition, "%s", rec->name);
    qv_wr_t *w = qv_wr_new ();
    const qv_batch_t *b = rec->type == QV_REC_INSERT ? rec->batch : NULL;
    if (b) {
        self->shard = rec->shard;
        self->n = b->n;
        self->with_rows = with_rows;
    }
    else
    if (rec->type == QV_REC_DELETE)
        self->n = rec->keys.n;
    self->offs = malloc ((2 * (size_t) self->n + 1) * sizeof (size_t));
    if (!self->offs || !w) {
        qv_wr_destroy (&w);
        qv_cdc_destroy (&self);
        return NULL;
    }
    size_t at = 0;
    for (uint32_t r = 0; r < self->n; r++) {
        qv_wr_data (w, &at);
        self->offs [r] = at;
        if (b)
            qv_col_write_value (&b->schema->fields [b->schema->pk], &b->cols [b->schema->pk], r, w);
        else
        if (rec->keys.ints)
            qv_wr_int (w, rec->keys.ints [r]);
        else
            qv_wr_strn (w, (const char *) rec->keys.strs [r].ptr, rec->keys.strs [r].len);
    }
    for (uint32_t r = 0; r < self->n; r++) {
        qv_wr_data (w, &at);
        self->offs [self->n + r] = at;
        if (!self->with_rows)
            continue;
        qv_wr_map (w, (size_t) b->schema->nfields);
        for (int f = 0; f < b->schema->nfields; f++) {
            qv_wr_str (w, b->schema->fields [f].name);
            qv_col_write_value (&b->schema->fields [f], &b->cols [f], r, w);
        }
    }
    qv_wr_data (w, &at);
    self->offs [2 * self->n] = at;
    self->buf = qv_wr_detach (w, &at);
    qv_wr_destroy (&w);
    return self;
}

void
qv_cdc_destroy (qv_cdc_t **self_p)
{
    qv_cdc_t *self = *self_p;
    if (!self)
        return;
    free (self->buf);
    free (self->offs);
    free (self);
    *self_p = NULL;
}

//  Encoded bytes of item i (its id, and its row when carried).
static size_t
s_item_size (const qv_cdc_t *self, uint32_t i)
{
    size_t size = self->offs [i + 1] - self->offs [i];
    if (self->with_rows)
        size += self->offs [self->n + i + 1] - self->offs [self->n + i];
    return size;
}

uint32_t
qv_cdc_split (const qv_cdc_t *self, size_t max_bytes, uint32_t **bounds_p)
{
    size_t room = max_bytes > 2 * S_OVERHEAD ? max_bytes - S_OVERHEAD : S_OVERHEAD;
    uint32_t parts = 1;
    size_t used = 0;
    for (uint32_t i = 0; i < self->n; i++) {
        size_t size = s_item_size (self, i);
        if (used > 0 && used + size > room) {
            parts++;
            used = 0;
        }
        used += size;
    }
    uint32_t *bounds = malloc ((parts + 1) * sizeof (uint32_t));
    if (!bounds) {
        *bounds_p = NULL;
        return 0;
    }
    uint32_t p = 0;
    bounds [0] = 0;
    used = 0;
    for (uint32_t i = 0; i < self->n; i++) {
        size_t size = s_item_size (self, i);
        if (used > 0 && used + size > room) {
            bounds [++p] = i;
            used = 0;
        }
        used += size;
    }
    bounds [parts] = self->n;
    *bounds_p = bounds;
    return parts;
}

void
qv_cdc_write (const qv_cdc_t *self, uint32_t from, uint32_t to, uint32_t part,
              uint32_t parts, qv_wr_t *w)
{
    size_t n = 6 + self->with_rows + (self->field [0] != 0) + (self->index_type [0] != 0)
             + (self->partition [0] != 0) + (parts > 1 ? 2 : 0);
    qv_wr_map (w, n);
    qv_wr_str (w, "op"); qv_wr_str (w, self->op);
    qv_wr_str (w, "collection"); qv_wr_str (w, self->collection);
    qv_wr_str (w, "shard"); qv_wr_uint (w, self->shard);
    qv_wr_str (w, "seq"); qv_wr_uint (w, self->seq);
    qv_wr_str (w, "ts"); qv_wr_uint (w, self->ts);
    qv_wr_str (w, "ids");
    qv_wr_array (w, to - from);
    qv_wr_raw (w, self->buf + self->offs [from], self->offs [to] - self->offs [from]);
    if (self->with_rows) {
        qv_wr_str (w, "rows");
        qv_wr_array (w, to - from);
        qv_wr_raw (w, self->buf + self->offs [self->n + from],
                   self->offs [self->n + to] - self->offs [self->n + from]);
    }
    if (self->field [0]) {
        qv_wr_str (w, "field"); qv_wr_str (w, self->field);
    }
    if (self->index_type [0]) {
        qv_wr_str (w, "index_type"); qv_wr_str (w, self->index_type);
    }
    if (self->partition [0]) {
        qv_wr_str (w, "partition"); qv_wr_str (w, self->partition);
    }
    if (parts > 1) {
        qv_wr_str (w, "part"); qv_wr_uint (w, part);
        qv_wr_str (w, "parts"); qv_wr_uint (w, parts);
    }
}
