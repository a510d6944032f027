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

zlist_t *
qv_recover_creates (qv_catalog_t *catalog)
{
    zlist_t *creates = zlist_new ();
    size_t n;
    qv_collection_t **list = qv_catalog_list (catalog, &n);
    for (size_t i = 0; i < n; i++) {
        qv_collection_t *c = list [i];
        qv_record_t *rec = qv_record_new (QV_REC_CREATE_COLLECTION);
        rec->coll_id = c->id;
        snprintf (rec->name, sizeof rec->name, "%s", c->name);
        rec->schema = qv_schema_dup (c->schema);
        rec->shards = c->shards;
        rec->num_partitions = c->num_partitions;
        memcpy (rec->consistency, c->consistency, sizeof rec->consistency);
        rec->partition = c->next_part;  //  the proxy assigns partition ids from here
        zlist_append (creates, rec);
        for (uint32_t p = 0; c->part_key < 0 && p < c->nparts; p++)
            if (c->parts [p].id != 0) {
                qv_record_t *prec = qv_record_new (QV_REC_CREATE_PARTITION);
                prec->coll_id = c->id;
                prec->partition = c->parts [p].id;
                snprintf (prec->name, sizeof prec->name, "%s", c->parts [p].name);
                zlist_append (creates, prec);
            }
    }
    free (list);
    return creates;
}
