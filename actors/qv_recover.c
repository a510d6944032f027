//  Rebuilding from the store at start: see qv_recover.h.
#include "qv_recover.h"
#include "qv_rc.h"

int
qv_replay_record (void *arg, uint64_t seq, uint32_t index, const void *data, size_t size)
{
    qv_replay_t *r = arg;
    qv_record_t *rec;
    int rc = qv_record_read (data, size, qv_catalog_schema_of, r->catalog, &rec);
    if (rc == QV_ENOTFOUND) {
        qv_catalog_note_stream_seq (r->catalog, rec->sseq);
        qv_record_destroy (&rec);   //  a collection dropped since
        return 0;
    }
    if (rc)
        return qv_err (rc, "WAL object %llu record %u: %s", (unsigned long long) seq, index,
                       qv_err_msg ());
    if (r->cdc) {
        //  Built before the apply, which moves the rows into the segment.
        qv_cdc_t *ev = qv_catalog_change_event (r->catalog, rec, QV_CDC_SEQ (seq, index), r->cdc_rows);
        if (ev)
            zlist_append (r->cdc, ev);
    }
    qv_catalog_apply (r->catalog, rec, seq, r->seg_max_bytes);
    qv_record_destroy (&rec);
    r->records++;
    return 0;
}

void
qv_coll_view_destroy (qv_coll_view_t **self_p)
{
    qv_coll_view_t *self = *self_p;
    if (self) {
        qv_schema_destroy (&self->schema);
        free (self->parts);
        free (self);
        *self_p = NULL;
    }
}

static void
s_view_free (void *item)
{
    qv_coll_view_t *view = item;
    qv_coll_view_destroy (&view);
}

zlist_t *
qv_recover_views (qv_catalog_t *catalog)
{
    zlist_t *views = zlist_new ();
    size_t n;
    qv_collection_t **list = qv_catalog_list (catalog, &n);
    for (size_t i = 0; i < n; i++) {
        const qv_collection_t *c = list [i];
        qv_coll_view_t *v = calloc (1, sizeof *v);
        assert (v);
        v->id = c->id;
        snprintf (v->name, sizeof v->name, "%s", c->name);
        v->schema = qv_schema_dup (c->schema);
        v->shards = c->shards;
        v->num_partitions = c->num_partitions;
        memcpy (v->consistency, c->consistency, sizeof v->consistency);
        v->next_part = c->next_part;
        if (c->part_key < 0 && c->nparts) {
            v->parts = calloc (c->nparts, sizeof *v->parts);
            assert (v->parts);
            memcpy (v->parts, c->parts, c->nparts * sizeof *v->parts);
            v->nparts = c->nparts;
        }
        zlist_append (views, v);
        zlist_freefn (views, v, s_view_free, true);
    }
    free (list);
    return views;
}

//  A view's copy, for the list's destructor.
static qv_coll_view_t *
s_view_new (uint32_t id, const char *name, qv_schema_t *schema)
{
    qv_coll_view_t *v = calloc (1, sizeof *v);
    assert (v);
    v->id = id;
    snprintf (v->name, sizeof v->name, "%s", name);
    v->schema = schema;
    v->shards = 1;
    return v;
}

static void
s_views_append (zlist_t *views, qv_coll_view_t *v)
{
    zlist_append (views, v);
    zlist_freefn (views, v, s_view_free, true);
}

static qv_coll_view_t *
s_view_by_id (zlist_t *views, uint32_t id)
{
    for (qv_coll_view_t *v = zlist_first (views); v; v = zlist_next (views))
        if (v->id == id)
            return v;
    return NULL;
}

void
qv_coll_views_apply (zlist_t *views, const qv_record_t *rec)
{
    if (rec->type == QV_REC_CREATE_COLLECTION && rec->schema) {
        qv_coll_view_t *v = s_view_new (rec->coll_id, rec->name, qv_schema_dup (rec->schema));
        v->shards = rec->shards ? rec->shards : 1;
        v->num_partitions = rec->num_partitions;
        snprintf (v->consistency, sizeof v->consistency, "%s", rec->consistency);
        if (qv_partition_key_field (v->schema) >= 0 && rec->num_partitions)
            v->next_part = rec->num_partitions;
        else {
            v->parts = calloc (1, sizeof *v->parts);
            assert (v->parts);
            snprintf (v->parts [0].name, sizeof v->parts [0].name, "%s", QV_PARTITION_DEFAULT);
            v->nparts = 1;
            v->next_part = 1;
        }
        s_views_append (views, v);
        return;
    }
    qv_coll_view_t *v = s_view_by_id (views, rec->coll_id);
    if (!v)
        return;
    if (rec->type == QV_REC_DROP_COLLECTION)
        zlist_remove (views, v);    //  its destructor frees it
    else
    if (rec->type == QV_REC_ALTER_COLLECTION) {
        if (rec->alters & QV_ALTER_CONSISTENCY)
            snprintf (v->consistency, sizeof v->consistency, "%s", rec->consistency);
    }
    else
    if (rec->type == QV_REC_CREATE_PARTITION) {
        qv_partition_t *parts = realloc (v->parts, (v->nparts + 1) * sizeof *parts);
        assert (parts);
        v->parts = parts;
        memset (&parts [v->nparts], 0, sizeof *parts);
        parts [v->nparts].id = rec->partition;
        snprintf (parts [v->nparts].name, sizeof parts [v->nparts].name, "%s", rec->name);
        v->nparts++;
        if (rec->partition >= v->next_part)
            v->next_part = rec->partition + 1;
    }
    else
    if (rec->type == QV_REC_DROP_PARTITION) {
        for (uint32_t i = 0; i < v->nparts; i++)
            if (streq (v->parts [i].name, rec->name)) {
                memmove (&v->parts [i], &v->parts [i + 1], (v->nparts - i - 1) * sizeof *v->parts);
                v->nparts--;
                break;
            }
    }
}

void
qv_coll_views_write (zlist_t *views, qv_wr_t *w)
{
    qv_wr_array (w, zlist_size (views));
    for (qv_coll_view_t *v = zlist_first (views); v; v = zlist_next (views)) {
        qv_wr_map (w, 8);
        qv_wr_str (w, "id"); qv_wr_uint (w, v->id);
        qv_wr_str (w, "name"); qv_wr_str (w, v->name);
        qv_wr_str (w, "schema"); qv_schema_write (v->schema, w);
        qv_wr_str (w, "shards"); qv_wr_uint (w, v->shards);
        qv_wr_str (w, "num_partitions"); qv_wr_uint (w, v->num_partitions);
        qv_wr_str (w, "consistency"); qv_wr_str (w, v->consistency);
        qv_wr_str (w, "next_part"); qv_wr_uint (w, v->next_part);
        qv_wr_str (w, "parts");
        qv_wr_array (w, v->nparts);
        for (uint32_t i = 0; i < v->nparts; i++) {
            qv_wr_array (w, 2);
            qv_wr_uint (w, v->parts [i].id);
            qv_wr_str (w, v->parts [i].name);
        }
    }
}

//  A uint field of a view map that fits in 32 bits.
static int
s_view_u32 (const qv_val_t *map, const char *key, uint32_t *out)
{
    uint64_t u;
    if (qv_val_uint (qv_val_get (map, key), &u) != 0 || u > UINT32_MAX)
        return qv_err (QV_EPROTO, "catalog views: '%s' is missing or not a 32-bit uint", key);
    *out = (uint32_t) u;
    return 0;
}

static int
s_view_read (const qv_val_t *m, qv_coll_view_t **view_p)
{
    *view_p = NULL;
    char name [QV_NAME_MAX + 1];
    uint32_t id = 0;
    if (qv_val_type (m) != QV_V_MAP)
        return qv_err (QV_EPROTO, "catalog views: an entry is not a map");
    int rc = s_view_u32 (m, "id", &id);
    if (rc)
        return rc;
    if (qv_val_strcpy (qv_val_get (m, "name"), name, sizeof name) != 0)
        return qv_err (QV_EPROTO, "catalog views: 'name' is missing, not a string or too long");
    const qv_val_t *fields = qv_val_get (m, "schema");
    if (!fields)
        return qv_err (QV_EPROTO, "catalog views: collection '%s' has no schema", name);
    qv_schema_t *schema = qv_schema_parse (fields, &rc);
    if (!schema)
        return qv_err (QV_EPROTO, "catalog views: collection '%s': %s", name, qv_err_msg ());
    qv_coll_view_t *v = s_view_new (id, name, schema);
    const qv_val_t *parts = qv_val_get (m, "parts");
    if ((rc = s_view_u32 (m, "shards", &v->shards)) == 0
    &&  (rc = s_view_u32 (m, "num_partitions", &v->num_partitions)) == 0
    &&  (rc = s_view_u32 (m, "next_part", &v->next_part)) == 0
    &&  qv_val_strcpy (qv_val_get (m, "consistency"), v->consistency, sizeof v->consistency) != 0)
        rc = qv_err (QV_EPROTO, "catalog views: collection '%s': bad 'consistency'", name);
    if (rc == 0 && (!parts || qv_val_type (parts) != QV_V_ARRAY))
        rc = qv_err (QV_EPROTO, "catalog views: collection '%s': 'parts' is not an array", name);
    size_t n = rc == 0 ? qv_val_len (parts) : 0;
    if (n) {
        v->parts = calloc (n, sizeof *v->parts);
        assert (v->parts);
    }
    for (size_t i = 0; rc == 0 && i < n; i++) {
        const qv_val_t *p = qv_val_at (parts, i);
        uint64_t pid;
        if (qv_val_type (p) != QV_V_ARRAY || qv_val_len (p) != 2
        ||  qv_val_uint (qv_val_at (p, 0), &pid) != 0 || pid > UINT32_MAX
        ||  qv_val_strcpy (qv_val_at (p, 1), v->parts [i].name, sizeof v->parts [i].name) != 0)
            rc = qv_err (QV_EPROTO, "catalog views: collection '%s': partition %zu is not "
                         "[id, name]", name, i);
        else {
            v->parts [i].id = (uint32_t) pid;
            v->nparts++;
        }
    }
    if (rc) {
        qv_coll_view_destroy (&v);
        return rc;
    }
    *view_p = v;
    return 0;
}

int
qv_coll_views_read (const void *data, size_t size, zlist_t **views_p)
{
    *views_p = NULL;
    int rc = 0;
    qv_doc_t *doc = qv_doc_parse (data, size, 1u << 20, &rc);
    if (!doc)
        return qv_err (QV_EPROTO, "catalog views: %s", qv_err_msg ());
    const qv_val_t *root = qv_doc_root (doc);
    if (qv_val_type (root) != QV_V_ARRAY) {
        qv_doc_destroy (&doc);
        return qv_err (QV_EPROTO, "catalog views: not an array");
    }
    zlist_t *views = zlist_new ();
    for (size_t i = 0; rc == 0 && i < qv_val_len (root); i++) {
        qv_coll_view_t *v;
        rc = s_view_read (qv_val_at (root, i), &v);
        if (rc == 0)
            s_views_append (views, v);
    }
    qv_doc_destroy (&doc);
    if (rc)
        zlist_destroy (&views);
    *views_p = views;
    return rc;
}
