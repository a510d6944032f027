//  Jobs: a request's state as it passes between actors.
#include "qv_job.h"

#include <stdlib.h>

qv_job_t *
qv_job_new (uint64_t id)
{
    qv_job_t *self = calloc (1, sizeof *self);
    if (self) {
        self->id = id;
        self->deleted = -1;
    }
    return self;
}

void
qv_job_destroy (qv_job_t **self_p)
{
    qv_job_t *self = *self_p;
    if (!self)
        return;
    qv_req_free (&self->req);
    qv_record_destroy (&self->rec);
    free (self->reply);
    free (self);
    *self_p = NULL;
}

void
qv_job_fail (qv_job_t *self, int rc, const char *message)
{
    qv_wr_t *w = qv_wr_new ();
    qv_reply_error (w, self->req.doc ? self->req.f [QV_F_rid] : NULL, rc, message);
    qv_job_reply (self, w, rc);
    qv_wr_destroy (&w);
}

void
qv_job_reply (qv_job_t *self, qv_wr_t *w, int rc)
{
    free (self->reply);
    self->reply = qv_wr_detach (w, &self->reply_size);
    self->rc = rc;
}

//  An acknowledgement of self: a new job of its id, with the success reply opened in
//  *w (echoing the request's rid); NULL out of memory.
static qv_job_t *
s_ack_open (const qv_job_t *self, qv_wr_t **w)
{
    qv_job_t *ack = qv_job_new (self->id);
    *w = qv_wr_new ();
    if (!ack || !*w) {
        qv_job_destroy (&ack);
        qv_wr_destroy (w);
        return NULL;
    }
    qv_reply_open (*w, self->req.f [QV_F_rid]);
    return ack;
}

//  Closes the reply in w and makes it ack's.
static qv_job_t *
s_ack_close (qv_job_t *ack, qv_wr_t **w)
{
    qv_reply_close (*w);
    qv_job_reply (ack, *w, 0);
    qv_wr_destroy (w);
    return ack;
}

qv_job_t *
qv_job_insert_ack (const qv_job_t *self)
{
    const qv_batch_t *b = self->rec->batch;
    const qv_field_t *pk = &b->schema->fields [b->schema->pk];
    qv_wr_t *w;
    qv_job_t *ack = s_ack_open (self, &w);
    if (!ack)
        return NULL;
    qv_wr_key (w, "ids");
    qv_wr_array (w, b->n);
    for (uint32_t r = 0; r < b->n; r++)
        qv_col_write_value (pk, &b->cols [b->schema->pk], r, w);
    qv_wr_key (w, "ts");
    qv_wr_uint (w, self->rec->ts);
    qv_wr_key (w, "count");
    qv_wr_uint (w, b->n);
    return s_ack_close (ack, &w);
}

qv_job_t *
qv_job_delete_ack (const qv_job_t *self)
{
    qv_wr_t *w;
    qv_job_t *ack = s_ack_open (self, &w);
    if (!ack)
        return NULL;
    if (self->deleted >= 0) {
        qv_wr_key (w, "deleted");
        qv_wr_uint (w, (uint64_t) self->deleted);
    }
    qv_wr_key (w, "ts");
    qv_wr_uint (w, self->rec->ts);
    return s_ack_close (ack, &w);
}

qv_job_t *
qv_job_again_ack (const qv_job_t *self)
{
    qv_wr_t *w;
    qv_job_t *ack = s_ack_open (self, &w);
    if (!ack)
        return NULL;
    qv_wr_key (w, "again");
    qv_wr_bool (w, true);
    return s_ack_close (ack, &w);
}
