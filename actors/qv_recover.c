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
