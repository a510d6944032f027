//  The inter-actor message table as data, its msgpack codec, and in-process send/receive.
#include "qv_msg.h"
#include "qv_rc.h"

#include <czmq.h>
#include <stdlib.h>
#include <string.h>

#define QV_MSG_FIELD(T, TYPE, field) { #field, QV_MT_##TYPE, offsetof (T, field) },
#define QV_MSG_FIELDS(NAME, name, route)                                                \
    static const qv_mfield_t s_fields_##name [] = {                                     \
        QV_MSG_F_##name (QV_MSG_FIELD, qv_msg_##name##_t)                               \
        { NULL, QV_MT_U64, 0 }                                                          \
    };
QV_MSG_TABLE (QV_MSG_FIELDS)

static const qv_mdesc_t s_descs [] = {
    { QV_MSG_NONE, "?", "", 0, NULL, 0 },
#define QV_MSG_DESC(NAME, name, route)                                                  \
    { QV_MSG_##NAME, #NAME, route, sizeof (qv_msg_##name##_t), s_fields_##name,         \
      sizeof s_fields_##name / sizeof s_fields_##name [0] - 1 },
    QV_MSG_TABLE (QV_MSG_DESC)
};

//  The keys of a job's map, in the order written.
static const char *s_job_keys [] = {
    "id", "request", "record", "sseq", "bytes", "deadline", "deleted", "rc", "reply", "sgen"
};
#define S_JOB_KEYS (sizeof s_job_keys / sizeof s_job_keys [0])

const qv_mdesc_t *
qv_msg_desc (qv_msg_id_t id)
{
    return id > QV_MSG_NONE && id < QV_MSG_COUNT ? &s_descs [id] : NULL;
}

const char *
qv_msg_name (qv_msg_id_t id)
{
    const qv_mdesc_t *d = qv_msg_desc (id);
    return d ? d->name : "?";
}

const char *
qv_mtype_name (qv_mtype_t type)
{
    static const char *names [] = { "U64", "I64", "BOOL", "STR", "BIN", "JOB", "PTR" };
    return type <= QV_MT_PTR ? names [type] : "?";
}

#define S_AT(msg, f, ctype) ((ctype *) ((char *) (msg) + (f)->offset))

qv_msg_t *
qv_msg_new (qv_msg_id_t id)
{
    const qv_mdesc_t *d = qv_msg_desc (id);
    if (!d)
        return NULL;
    qv_msg_t *self = calloc (1, d->size);
    if (!self)
        return NULL;
    self->id = id;
    for (size_t i = 0; i < d->nfields; i++)
        if (d->fields [i].type == QV_MT_STR && !(*S_AT (self, &d->fields [i], char *) = strdup (""))) {
            qv_msg_destroy (&self);
            return NULL;
        }
    return self;
}

void
qv_msg_destroy (qv_msg_t **self_p)
{
    qv_msg_t *self = *self_p;
    if (!self)
        return;
    const qv_mdesc_t *d = qv_msg_desc (self->id);
    for (size_t i = 0; d && i < d->nfields; i++) {
        const qv_mfield_t *f = &d->fields [i];
        if (f->type == QV_MT_STR)
            free (*S_AT (self, f, char *));
        else
        if (f->type == QV_MT_BIN)
            free (S_AT (self, f, qv_msg_bin_t)->data);
        else
        if (f->type == QV_MT_JOB)
            qv_job_destroy (S_AT (self, f, qv_job_t *));
    }
    free (self);
    *self_p = NULL;
}

qv_job_t *
qv_msg_take_job (qv_msg_t *msg)
{
    const qv_mdesc_t *d = qv_msg_desc (msg->id);
    for (size_t i = 0; d && i < d->nfields; i++)
        if (d->fields [i].type == QV_MT_JOB) {
            qv_job_t **at = S_AT (msg, &d->fields [i], qv_job_t *);
            qv_job_t *job = *at;
            *at = NULL;
            return job;
        }
    return NULL;
}

// --------------------------------------------------------------------- encoding

static void
s_write_job (const qv_job_t *job, qv_wr_t *w)
{
    if (!job) {
        qv_wr_nil (w);
        return;
    }
    qv_wr_map_open (w);
    qv_wr_key (w, "id");
    qv_wr_uint (w, job->id);
    qv_wr_key (w, "request");
    if (job->req.doc) {
        //  As parsed: a request from a NATS subject has op and collection outside its
        //  document
        qv_wr_t *rw = qv_wr_new ();
        qv_wr_map_open (rw);
        qv_req_write_pairs (&job->req, rw, 0);
        qv_wr_map_close (rw);
        size_t size;
        const void *bytes = qv_wr_data (rw, &size);
        qv_wr_bin (w, bytes, size);
        qv_wr_destroy (&rw);
    }
    else
        qv_wr_nil (w);
    qv_wr_key (w, "record");
    if (job->rec) {
        qv_wr_t *rw = qv_wr_new ();
        qv_record_write (job->rec, rw);
        size_t size;
        const void *bytes = qv_wr_data (rw, &size);
        qv_wr_bin (w, bytes, size);
        qv_wr_destroy (&rw);
    }
    else
        qv_wr_nil (w);
    qv_wr_key (w, "sseq");
    qv_wr_uint (w, job->sseq);
    qv_wr_key (w, "sgen");
    qv_wr_uint (w, job->sgen);
    qv_wr_key (w, "bytes");
    qv_wr_uint (w, job->bytes);
    qv_wr_key (w, "deadline");
    qv_wr_int (w, job->deadline);
    qv_wr_key (w, "deleted");
    qv_wr_int (w, job->deleted);
    qv_wr_key (w, "rc");
    qv_wr_int (w, job->rc);
    qv_wr_key (w, "reply");
    if (job->reply)
        qv_wr_bin (w, job->reply, job->reply_size);
    else
        qv_wr_nil (w);
    qv_wr_map_close (w);
}

int
qv_msg_encode (const qv_msg_t *msg, qv_wr_t *w)
{
    const qv_mdesc_t *d = msg ? qv_msg_desc (msg->id) : NULL;
    if (!d)
        return qv_err (QV_EINVAL, "not a message (id %d)", msg ? (int) msg->id : -1);
    for (size_t i = 0; i < d->nfields; i++)
        if (d->fields [i].type == QV_MT_PTR)
            return qv_err (QV_EINVAL, "message %s: field '%s' is an in-process handle; it cannot "
                           "cross processes", d->name, d->fields [i].name);
    qv_wr_map_open (w);
    qv_wr_key (w, "msg");
    qv_wr_str (w, d->name);
    for (size_t i = 0; i < d->nfields; i++) {
        const qv_mfield_t *f = &d->fields [i];
        qv_wr_key (w, f->name);
        switch (f->type) {
            case QV_MT_U64:  qv_wr_uint (w, *S_AT (msg, f, const uint64_t)); break;
            case QV_MT_I64:  qv_wr_int (w, *S_AT (msg, f, const int64_t)); break;
            case QV_MT_BOOL: qv_wr_bool (w, *S_AT (msg, f, const bool)); break;
            case QV_MT_STR: {
                const char *s = *S_AT (msg, f, char * const);
                qv_wr_str (w, s ? s : "");
                break;
            }
            case QV_MT_BIN: {
                const qv_msg_bin_t *b = S_AT (msg, f, const qv_msg_bin_t);
                qv_wr_bin (w, b->data, b->size);
                break;
            }
            case QV_MT_JOB: s_write_job (*S_AT (msg, f, qv_job_t * const), w); break;
            case QV_MT_PTR: break;
        }
    }
    qv_wr_map_close (w);
    return 0;
}

// --------------------------------------------------------------------- decoding

//  Refuses a map with a key that is not in keys[0..n) (nor "msg" when msg_key).
static int
s_check_keys (const qv_val_t *map, const char *const *keys, size_t n, bool msg_key,
              const char *what)
{
    for (size_t i = 0; i < qv_val_len (map); i++) {
        const qv_val_t *k = qv_val_key (map, i);
        bool known = qv_val_type (k) == QV_V_STR && msg_key && qv_val_is (k, "msg");
        for (size_t j = 0; !known && j < n; j++)
            known = qv_val_is (k, keys [j]);
        if (!known) {
            char shown [80] = "(not a string)";
            const char *s;
            size_t len;
            if (qv_val_str (k, &s, &len) == 0)
                qv_utf8_escape (s, len, shown, sizeof shown);
            return qv_err (QV_EPROTO, "%s: unknown field '%s'", what, shown);
        }
    }
    return 0;
}

//  A field's value, or QV_EPROTO if absent or not of type (nil accepted when nil_ok).
static int
s_field (const qv_val_t *map, const char *key, qv_vtype_t type, bool nil_ok, const char *what,
         const qv_val_t **v_p)
{
    const qv_val_t *v = *v_p = qv_val_get (map, key);
    if (!v)
        return qv_err (QV_EPROTO, "%s: field '%s' is missing", what, key);
    qv_vtype_t t = qv_val_type (v);
    if (t == type || (nil_ok && t == QV_V_NIL)
    ||  (type == QV_V_UINT && t == QV_V_INT) || (type == QV_V_INT && t == QV_V_UINT))
        return 0;
    return qv_err (QV_EPROTO, "%s: field '%s' has type %s, expected %s", what, key,
                   qv_vtype_name (t), qv_vtype_name (type));
}

static const qv_schema_t *
s_no_schema (void *arg, uint32_t coll_id)
{
    (void) arg;
    (void) coll_id;
    return NULL;
}

static int
s_read_job (const qv_val_t *v, qv_schema_lookup_fn *lookup, void *arg, const char *what,
            qv_job_t **job_p)
{
    *job_p = NULL;
    if (qv_val_type (v) == QV_V_NIL)
        return 0;
    if (qv_val_type (v) != QV_V_MAP)
        return qv_err (QV_EPROTO, "%s: a job must be a map, not a %s", what,
                       qv_vtype_name (qv_val_type (v)));
    int rc = s_check_keys (v, s_job_keys, S_JOB_KEYS, false, what);
    const qv_val_t *id, *request, *record, *sseq, *bytes, *deadline, *deleted, *jrc, *reply, *sgen;
    if (rc
    ||  (rc = s_field (v, "id", QV_V_UINT, false, what, &id))
    ||  (rc = s_field (v, "request", QV_V_BIN, true, what, &request))
    ||  (rc = s_field (v, "record", QV_V_BIN, true, what, &record))
    ||  (rc = s_field (v, "sseq", QV_V_UINT, false, what, &sseq))
    ||  (rc = s_field (v, "bytes", QV_V_UINT, false, what, &bytes))
    ||  (rc = s_field (v, "deadline", QV_V_INT, false, what, &deadline))
    ||  (rc = s_field (v, "rc", QV_V_INT, false, what, &jrc))
    ||  (rc = s_field (v, "reply", QV_V_BIN, true, what, &reply)))
        return rc;
    //  "deleted" came in a later release than the other fields: absent, it is -1
    deleted = qv_val_get (v, "deleted");
    if (deleted && (rc = s_field (v, "deleted", QV_V_INT, false, what, &deleted)))
        return rc;
    //  ... and "sgen" later still: absent, 0
    sgen = qv_val_get (v, "sgen");
    if (sgen && (rc = s_field (v, "sgen", QV_V_UINT, false, what, &sgen)))
        return rc;
    qv_job_t *job = qv_job_new (0);
    if (!job)
        return qv_err (QV_ENOMEM, "out of memory decoding %s", what);
    uint64_t u = 0;
    int64_t i = 0;
    if (qv_val_uint (id, &job->id) || qv_val_uint (sseq, &job->sseq) || qv_val_uint (bytes, &u)
    ||  qv_val_int (deadline, &job->deadline) || (deleted && qv_val_int (deleted, &job->deleted))
    ||  (sgen && qv_val_uint (sgen, &job->sgen))
    ||  job->deleted < -1 || qv_val_int (jrc, &i) || i < INT32_MIN || i > INT32_MAX) {
        qv_job_destroy (&job);
        return qv_err (QV_EPROTO, "%s: a job's number is out of range", what);
    }
    job->bytes = (size_t) u;
    job->rc = (int) i;
    const void *data;
    size_t size;
    if (qv_val_type (request) == QV_V_BIN) {
        qv_val_bin (request, &data, &size);
        rc = qv_req_parse (data, size, size + 1, &job->req);
        if (rc) {
            rc = qv_err (QV_EPROTO, "%s: its request does not decode: %s", what, qv_err_msg ());
            qv_job_destroy (&job);
            return rc;
        }
    }
    if (qv_val_type (record) == QV_V_BIN) {
        qv_val_bin (record, &data, &size);
        rc = qv_record_read (data, size, lookup ? lookup : s_no_schema, arg, &job->rec);
        if (rc) {
            rc = qv_err (rc == QV_ENOTFOUND ? QV_ENOTFOUND : QV_EPROTO, "%s: its record does not "
                         "decode: %s", what, qv_err_msg ());
            qv_job_destroy (&job);
            return rc;
        }
    }
    if (qv_val_type (reply) == QV_V_BIN) {
        qv_val_bin (reply, &data, &size);
        job->reply = malloc (size ? size : 1);
        if (!job->reply) {
            qv_job_destroy (&job);
            return qv_err (QV_ENOMEM, "out of memory decoding %s", what);
        }
        memcpy (job->reply, data, size);
        job->reply_size = size;
    }
    *job_p = job;
    return 0;
}

int
qv_msg_decode (const void *data, size_t size, qv_schema_lookup_fn *lookup, void *arg,
               qv_msg_t **out)
{
    *out = NULL;
    int rc;
    //  Each value takes a byte at least, so a message holds fewer values than bytes:
    //  one declaring more is malformed (and allocates nothing)
    qv_doc_t *doc = qv_doc_parse (data, size, size + 1, &rc);
    if (!doc)
        return rc == QV_ELIMIT ? qv_err (QV_EPROTO, "message: %s", qv_err_msg ()) : rc;
    qv_msg_t *msg = NULL;
    const qv_val_t *root = qv_doc_root (doc), *name;
    const qv_mdesc_t *d = NULL;
    if (qv_val_type (root) != QV_V_MAP) {
        rc = qv_err (QV_EPROTO, "a message must be a map, not a %s", qv_vtype_name (qv_val_type (root)));
        goto cleanup;
    }
    if ((rc = qv_val_check_strict (root))
    ||  (rc = s_field (root, "msg", QV_V_STR, false, "message", &name)))
        goto cleanup;
    for (int id = QV_MSG_NONE + 1; id < QV_MSG_COUNT && !d; id++)
        if (qv_val_is (name, s_descs [id].name))
            d = &s_descs [id];
    if (!d) {
        const char *s;
        size_t len;
        char shown [80];
        qv_val_str (name, &s, &len);
        qv_utf8_escape (s, len, shown, sizeof shown);
        rc = qv_err (QV_EPROTO, "unknown message '%s'", shown);
        goto cleanup;
    }
    char what [64];
    snprintf (what, sizeof what, "message %s", d->name);
    const char *keys [16];
    for (size_t i = 0; i < d->nfields && i < 16; i++)
        keys [i] = d->fields [i].name;
    if ((rc = s_check_keys (root, keys, d->nfields, true, what)))
        goto cleanup;
    msg = calloc (1, d->size);
    if (!msg) {
        rc = qv_err (QV_ENOMEM, "out of memory decoding %s", what);
        goto cleanup;
    }
    msg->id = d->id;
    for (size_t i = 0; i < d->nfields; i++) {
        const qv_mfield_t *f = &d->fields [i];
        const qv_val_t *v;
        if (f->type == QV_MT_PTR) {
            rc = qv_err (QV_EPROTO, "%s carries an in-process handle ('%s'); it cannot come "
                         "from another process", what, f->name);
            goto cleanup;
        }
        static const qv_vtype_t wire [] = { QV_V_UINT, QV_V_INT, QV_V_BOOL, QV_V_STR, QV_V_BIN,
                                            QV_V_MAP, QV_V_NIL };
        if ((rc = s_field (root, f->name, wire [f->type], f->type == QV_MT_JOB, what, &v)))
            goto cleanup;
        const void *p;
        size_t n;
        switch (f->type) {
            case QV_MT_U64:
                if (qv_val_uint (v, S_AT (msg, f, uint64_t)))
                    rc = qv_err (QV_EPROTO, "%s: field '%s' is negative", what, f->name);
                break;
            case QV_MT_I64:
                if (qv_val_int (v, S_AT (msg, f, int64_t)))
                    rc = qv_err (QV_EPROTO, "%s: field '%s' is out of range", what, f->name);
                break;
            case QV_MT_BOOL:
                qv_val_bool (v, S_AT (msg, f, bool));
                break;
            case QV_MT_STR: {
                const char *str;
                qv_val_str (v, &str, &n);
                if (!(*S_AT (msg, f, char *) = strndup (str, n)))
                    rc = qv_err (QV_ENOMEM, "out of memory decoding %s", what);
                break;
            }
            case QV_MT_BIN: {
                qv_val_bin (v, &p, &n);
                qv_msg_bin_t *b = S_AT (msg, f, qv_msg_bin_t);
                if (n && !(b->data = malloc (n)))
                    rc = qv_err (QV_ENOMEM, "out of memory decoding %s", what);
                else {
                    if (n)
                        memcpy (b->data, p, n);
                    b->size = n;
                }
                break;
            }
            case QV_MT_JOB:
                rc = s_read_job (v, lookup, arg, what, S_AT (msg, f, qv_job_t *));
                break;
            case QV_MT_PTR:
                break;
        }
        if (rc)
            goto cleanup;
    }
cleanup:
    if (rc)
        qv_msg_destroy (&msg);
    qv_doc_destroy (&doc);
    *out = msg;
    return rc;
}

// --------------------------------------------------------------------- in-process

static int
s_send (void *sock, qv_msg_t **msg_p, int flags)
{
    qv_msg_t *msg = *msg_p;
    if (zmq_send (zsock_resolve (sock), &msg, sizeof msg, flags) != sizeof msg)
        return -1;
    *msg_p = NULL;
    return 0;
}

int
qv_msg_send (void *sock, qv_msg_t **msg_p)
{
    return s_send (sock, msg_p, 0);
}

int
qv_msg_send_nowait (void *sock, qv_msg_t **msg_p)
{
    return s_send (sock, msg_p, ZMQ_DONTWAIT);
}

static qv_msg_t *
s_recv (void *sock, int flags)
{
    zmq_msg_t frame;
    zmq_msg_init (&frame);
    if (zmq_msg_recv (&frame, zsock_resolve (sock), flags) < 0) {
        zmq_msg_close (&frame);
        return NULL;
    }
    qv_msg_t *msg = NULL;
    bool more = zmq_msg_more (&frame);
    if (zmq_msg_size (&frame) == sizeof msg)
        memcpy (&msg, zmq_msg_data (&frame), sizeof msg);
    else
        qv_error ("protocol error: an inter-actor frame of %zu bytes is not a message; dropped",
                  zmq_msg_size (&frame));
    zmq_msg_close (&frame);
    while (more) {
        //  Frames after a message's: not ours (and the message itself is suspect)
        zmq_msg_init (&frame);
        if (zmq_msg_recv (&frame, zsock_resolve (sock), 0) < 0) {
            zmq_msg_close (&frame);
            break;
        }
        more = zmq_msg_more (&frame);
        zmq_msg_close (&frame);
        if (msg) {
            qv_error ("protocol error: an inter-actor message came with extra frames; dropped");
            msg = NULL;             //  not freed: a pointer we cannot trust
        }
    }
    if (msg && !qv_msg_desc (msg->id)) {
        qv_error ("protocol error: an inter-actor frame does not hold a known message; dropped");
        return NULL;
    }
    return msg;
}

qv_msg_t *
qv_msg_recv (void *sock)
{
    return s_recv (sock, 0);
}

qv_msg_t *
qv_msg_recv_nowait (void *sock)
{
    return s_recv (sock, ZMQ_DONTWAIT);
}
