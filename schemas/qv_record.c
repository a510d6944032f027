//  WAL records: encoding and decoding of DDL, insert and delete changes.
#include "qv_record.h"
#include "qv_rc.h"

#include <stdio.h>

#include <stdlib.h>
#include <string.h>

qv_record_t *
qv_record_new (qv_rec_type_t type)
{
    qv_record_t *self = calloc (1, sizeof *self);
    if (self)
        self->type = type;
    return self;
}

void
qv_record_destroy (qv_record_t **self_p)
{
    qv_record_t *self = *self_p;
    if (!self)
        return;
    qv_batch_destroy (&self->batch);
    qv_schema_destroy (&self->schema);
    free (self->description);
    qv_keys_free (&self->keys);
    free (self->psegs);
    free (self->olds);
    if (self->user)
        free (self->user->hash);
    free (self->user);
    free (self);
    *self_p = NULL;
}

void
qv_keys_free (qv_keys_t *keys)
{
    if (keys->strs)
        for (uint32_t i = 0; i < keys->n; i++)
            free (keys->strs [i].ptr);
    free (keys->strs);
    free (keys->ints);
    memset (keys, 0, sizeof *keys);
}

int
qv_keys_from_request (const qv_field_t *pk, const qv_val_t *ids, uint32_t max, qv_keys_t *keys)
{
    memset (keys, 0, sizeof *keys);
    if (qv_val_type (ids) != QV_V_ARRAY)
        return qv_err (QV_EPROTO, "'ids' must be a list");
    size_t n = qv_val_len (ids);
    if (n > max)
        return qv_err (QV_ELIMIT, "%zu ids in one request; the limit is %u", n, max);
    keys->n = (uint32_t) n;
    if (pk->type == QV_INT64) {
        keys->ints = malloc ((n ? n : 1) * sizeof (int64_t));
        if (!keys->ints)
            return qv_err (QV_ENOMEM, "out of memory");
        for (size_t i = 0; i < n; i++)
            if (qv_val_int (qv_val_at (ids, i), &keys->ints [i])) {
                qv_keys_free (keys);
                return qv_err (QV_EPROTO, "ids [%zu]: the primary key '%s' is int64; expected an integer",
                               i, pk->name);
            }
    }
    else {
        keys->strs = calloc (n ? n : 1, sizeof (qv_bytes_t));
        if (!keys->strs)
            return qv_err (QV_ENOMEM, "out of memory");
        for (size_t i = 0; i < n; i++) {
            const char *s;
            size_t len;
            if (qv_val_str (qv_val_at (ids, i), &s, &len)) {
                qv_keys_free (keys);
                return qv_err (QV_EPROTO, "ids [%zu]: the primary key '%s' is varchar; expected a string",
                               i, pk->name);
            }
            keys->strs [i].ptr = malloc (len ? len : 1);
            if (!keys->strs [i].ptr) {
                qv_keys_free (keys);
                return qv_err (QV_ENOMEM, "out of memory");
            }
            memcpy (keys->strs [i].ptr, s, len);
            keys->strs [i].len = (uint32_t) len;
        }
    }
    return 0;
}

void
qv_keys_write (const qv_keys_t *keys, qv_wr_t *w)
{
    if (keys->ints)
        qv_wr_bin (w, keys->ints, keys->n * sizeof (int64_t));
    else {
        qv_wr_array (w, keys->n);
        for (uint32_t i = 0; i < keys->n; i++)
            qv_wr_strn (w, (const char *) keys->strs [i].ptr, keys->strs [i].len);
    }
}

//  Record layout: {"t": type, "ts": u64, "c": coll_id, ...} with, per type:
//    create: "name", "schema" (field maps), "shards", "consistency", "desc", "ttl"
//    insert: "up" (bool), "shard", "seg", "batch" (qv_batch_write)
//    delete: "keys" (bin of int64 LE, or list of str)
//    create_partition / drop_partition: "name", "p" (partition id)
//    seal: "seg" (segment id)
//    alter_collection: those of "ttl", "consistency", "desc" it changes (at least one)
//    compact: "p" (partition), "shard", "seg" (the new segment), "olds" (list of the
//    segment ids it replaces), "snap", "exp" (expiry cut), "epoch", "rows"
//    user: "a" (qv_user_action_t), "user", "role", "coll", "priv", "hash" (each "" when
//    the action has none; the hash is crypto_pwhash_str's string); a grant of a
//    privilege also "grantor" (absent when "", so older records read as before)
//    insert and delete from a JetStream stream also: "ss" (stream sequence); absent
//    when 0, so records without one encode as before. Likewise optional, so that
//    records written before partitions read as before: create "np" (num_partitions,
//    when set), insert "p" (partition, when not 0) and "ps" (partition-key segments:
//    a flat list partition, seg, partition, seg, ...), delete "p" (when in_partition).
void
qv_record_write (const qv_record_t *self, qv_wr_t *w)
{
    size_t extra = self->sseq && (self->type == QV_REC_INSERT || self->type == QV_REC_DELETE);
    switch (self->type) {
        case QV_REC_CREATE_COLLECTION:
            qv_wr_map (w, 9 + (self->num_partitions != 0));
            break;
        case QV_REC_DROP_COLLECTION:
            qv_wr_map (w, 3);
            break;
        case QV_REC_INSERT:
            qv_wr_map (w, 7 + extra + (self->partition != 0) + (self->npsegs != 0));
            break;
        case QV_REC_DELETE:
            qv_wr_map (w, 4 + extra + self->in_partition);
            break;
        case QV_REC_CREATE_INDEX:
            qv_wr_map (w, 6);
            break;
        case QV_REC_DROP_INDEX:
            qv_wr_map (w, 4);
            break;
        case QV_REC_CREATE_PARTITION:
        case QV_REC_DROP_PARTITION:
            qv_wr_map (w, 5);
            break;
        case QV_REC_SEAL:
            qv_wr_map (w, 4);
            break;
        case QV_REC_USER:
            qv_wr_map (w, 9 + (self->user && self->user->grantor [0]));
            break;
        case QV_REC_ALTER_COLLECTION:
            qv_wr_map (w, 3 + !!(self->alters & QV_ALTER_TTL)
                             + !!(self->alters & QV_ALTER_CONSISTENCY)
                             + !!(self->alters & QV_ALTER_DESCRIPTION));
            break;
        case QV_REC_COMPACT:
            qv_wr_map (w, 11);
            break;
    }
    qv_wr_str (w, "t"); qv_wr_uint (w, self->type);
    qv_wr_str (w, "ts"); qv_wr_uint (w, self->ts);
    qv_wr_str (w, "c"); qv_wr_uint (w, self->coll_id);
    if (extra) {
        qv_wr_str (w, "ss"); qv_wr_uint (w, self->sseq);
    }
    switch (self->type) {
        case QV_REC_CREATE_COLLECTION:
            qv_wr_str (w, "name"); qv_wr_str (w, self->name);
            qv_wr_str (w, "schema"); qv_schema_write (self->schema, w);
            qv_wr_str (w, "shards"); qv_wr_uint (w, self->shards);
            qv_wr_str (w, "consistency"); qv_wr_str (w, self->consistency);
            qv_wr_str (w, "desc"); qv_wr_str (w, self->description ? self->description : "");
            qv_wr_str (w, "ttl"); qv_wr_uint (w, self->ttl_seconds);
            if (self->num_partitions) {
                qv_wr_str (w, "np"); qv_wr_uint (w, self->num_partitions);
            }
            break;
        case QV_REC_DROP_COLLECTION:
            break;
        case QV_REC_INSERT:
            qv_wr_str (w, "up"); qv_wr_bool (w, self->upsert);
            qv_wr_str (w, "shard"); qv_wr_uint (w, self->shard);
            qv_wr_str (w, "seg"); qv_wr_uint (w, self->seg_id);
            qv_wr_str (w, "batch"); qv_batch_write (self->batch, w);
            if (self->partition) {
                qv_wr_str (w, "p"); qv_wr_uint (w, self->partition);
            }
            if (self->npsegs) {
                qv_wr_str (w, "ps");
                qv_wr_array (w, (size_t) self->npsegs * 2);
                for (uint32_t i = 0; i < self->npsegs; i++) {
                    qv_wr_uint (w, self->psegs [i].partition);
                    qv_wr_uint (w, self->psegs [i].seg_id);
                }
            }
            break;
        case QV_REC_DELETE:
            qv_wr_str (w, "keys"); qv_keys_write (&self->keys, w);
            if (self->in_partition) {
                qv_wr_str (w, "p"); qv_wr_uint (w, self->partition);
            }
            break;
        case QV_REC_CREATE_PARTITION:
        case QV_REC_DROP_PARTITION:
            qv_wr_str (w, "name"); qv_wr_str (w, self->name);
            qv_wr_str (w, "p"); qv_wr_uint (w, self->partition);
            break;
        case QV_REC_CREATE_INDEX:
            qv_wr_str (w, "field"); qv_wr_str (w, self->index.field);
            qv_wr_str (w, "type"); qv_wr_str (w, self->index.type);
            qv_wr_str (w, "params"); qv_index_def_write_params (&self->index, w);
            break;
        case QV_REC_DROP_INDEX:
            qv_wr_str (w, "field"); qv_wr_str (w, self->index.field);
            break;
        case QV_REC_SEAL:
            qv_wr_str (w, "seg"); qv_wr_uint (w, self->seg_id);
            break;
        case QV_REC_ALTER_COLLECTION:
            if (self->alters & QV_ALTER_TTL) {
                qv_wr_str (w, "ttl"); qv_wr_uint (w, self->ttl_seconds);
            }
            if (self->alters & QV_ALTER_CONSISTENCY) {
                qv_wr_str (w, "consistency"); qv_wr_str (w, self->consistency);
            }
            if (self->alters & QV_ALTER_DESCRIPTION) {
                qv_wr_str (w, "desc");
                qv_wr_str (w, self->description ? self->description : "");
            }
            break;
        case QV_REC_COMPACT:
            qv_wr_str (w, "p"); qv_wr_uint (w, self->partition);
            qv_wr_str (w, "shard"); qv_wr_uint (w, self->shard);
            qv_wr_str (w, "seg"); qv_wr_uint (w, self->seg_id);
            qv_wr_str (w, "olds");
            qv_wr_array (w, self->nolds);
            for (uint32_t i = 0; i < self->nolds; i++)
                qv_wr_uint (w, self->olds [i]);
            qv_wr_str (w, "snap"); qv_wr_uint (w, self->snap_ts);
            qv_wr_str (w, "exp"); qv_wr_uint (w, self->expire_cut);
            qv_wr_str (w, "epoch"); qv_wr_uint (w, self->epoch);
            qv_wr_str (w, "rows"); qv_wr_uint (w, self->rows);
            break;
        case QV_REC_USER: {
            static const qv_user_change_t none = { 0 };
            const qv_user_change_t *u = self->user ? self->user : &none;
            qv_wr_str (w, "a"); qv_wr_uint (w, u->action);
            qv_wr_str (w, "user"); qv_wr_str (w, u->user);
            qv_wr_str (w, "role"); qv_wr_str (w, u->role);
            qv_wr_str (w, "coll"); qv_wr_str (w, u->collection);
            qv_wr_str (w, "priv"); qv_wr_str (w, u->privilege);
            qv_wr_str (w, "hash"); qv_wr_str (w, u->hash ? u->hash : "");
            if (u->grantor [0]) {
                qv_wr_str (w, "grantor"); qv_wr_str (w, u->grantor);
            }
            break;
        }
    }
}

static const char *s_param_names [] = { "M", "efConstruction", "nlist", "m", "nbits" };

static uint32_t *
s_param_slot (qv_index_def_t *def, int i)
{
    uint32_t *slots [] = { &def->M, &def->ef_construction, &def->nlist, &def->pq_m, &def->pq_nbits };
    return slots [i];
}

void
qv_index_def_write_params (const qv_index_def_t *def, qv_wr_t *w)
{
    qv_index_def_t *d = (qv_index_def_t *) def;
    size_t n = 0;
    for (int i = 0; i < 5; i++)
        n += *s_param_slot (d, i) != 0;
    qv_wr_map (w, n);
    for (int i = 0; i < 5; i++)
        if (*s_param_slot (d, i)) {
            qv_wr_str (w, s_param_names [i]);
            qv_wr_uint (w, *s_param_slot (d, i));
        }
}

int
qv_index_def_from_request (const qv_val_t *type, const qv_val_t *params, qv_index_def_t *def)
{
    static const char *types [] = { "FLAT", "HNSW", "HNSW_SQ8", "IVF_FLAT", "IVF_SQ8", "IVF_PQ", "INVERTED", "STL_SORT", NULL };
    char name [16];
    if (qv_val_strcpy (type, name, sizeof name) == QV_EPROTO)
        return qv_err (QV_EPROTO, "'index_type' must be a string");
    bool known = false;
    for (int i = 0; types [i] && !known; i++)
        known = strcmp (name, types [i]) == 0;
    if (!known)
        return qv_err (QV_EINVAL, "unknown index_type; use FLAT, HNSW, HNSW_SQ8, IVF_FLAT, IVF_SQ8 or IVF_PQ "
                       "(vector fields), INVERTED or STL_SORT (scalar fields)");
    snprintf (def->type, sizeof def->type, "%s", name);
    bool scalar = strcmp (name, "INVERTED") == 0 || strcmp (name, "STL_SORT") == 0;
    if (scalar && params && qv_val_len (params))
        return qv_err (QV_EINVAL, "index_type %s takes no parameters", name);
    for (size_t i = 0; params && i < qv_val_len (params); i++) {
        int which = -1;
        for (int j = 0; j < 5 && which < 0; j++)
            if (qv_val_is (qv_val_key (params, i), s_param_names [j]))
                which = j;
        if (which < 0) {
            const char *k = "";
            size_t n = 0;
            char shown [96];
            qv_val_str (qv_val_key (params, i), &k, &n);
            qv_utf8_escape (k, n, shown, sizeof shown);
            return qv_err (QV_EINVAL, "unknown index parameter '%s'; use M, efConstruction, nlist, m, nbits",
                           shown);
        }
        uint64_t u;
        const qv_val_t *value = qv_val_value (params, i);
        qv_vtype_t t = qv_val_type (value);
        if (t != QV_V_UINT && t != QV_V_INT)
            return qv_err (QV_EPROTO, "index parameter %s must be an integer", s_param_names [which]);
        if (qv_val_uint (value, &u) || u == 0 || u > 1000000)
            return qv_err (QV_EINVAL, "index parameter %s must be an integer 1..1000000", s_param_names [which]);
        *s_param_slot (def, which) = (uint32_t) u;
    }
    return 0;
}

static int
s_read_keys (const qv_val_t *v, qv_keys_t *keys)
{
    memset (keys, 0, sizeof *keys);
    const void *p;
    size_t len;
    if (qv_val_bin (v, &p, &len) == 0) {
        if (len % 8)
            return QV_ECORRUPT;
        keys->n = (uint32_t) (len / 8);
        keys->ints = malloc (len ? len : 1);
        if (!keys->ints)
            return QV_ENOMEM;
        memcpy (keys->ints, p, len);
        return 0;
    }
    if (qv_val_type (v) != QV_V_ARRAY)
        return QV_ECORRUPT;
    keys->n = (uint32_t) qv_val_len (v);
    keys->strs = calloc (keys->n ? keys->n : 1, sizeof (qv_bytes_t));
    if (!keys->strs)
        return QV_ENOMEM;
    for (uint32_t i = 0; i < keys->n; i++) {
        const char *s;
        if (qv_val_str (qv_val_at (v, i), &s, &len))
            return QV_ECORRUPT;
        keys->strs [i].ptr = malloc (len ? len : 1);
        if (!keys->strs [i].ptr)
            return QV_ENOMEM;
        memcpy (keys->strs [i].ptr, s, len);
        keys->strs [i].len = (uint32_t) len;
    }
    return 0;
}

int
qv_record_read (const void *data, size_t size, qv_schema_lookup_fn *lookup, void *arg,
                qv_record_t **out)
{
    *out = NULL;
    int rc;
    qv_doc_t *doc = qv_doc_parse_view (data, size, SIZE_MAX, &rc);
    if (!doc)
        return qv_err (QV_ECORRUPT, "WAL record is not valid msgpack: %s", qv_err_msg ());
    const qv_val_t *root = qv_doc_root (doc);
    uint64_t type, ts, coll, u;
    const qv_val_t *v;
    qv_record_t *rec = NULL;
    if (!(v = qv_val_get (root, "t")) || qv_val_uint (v, &type)
    ||  !(v = qv_val_get (root, "ts")) || qv_val_uint (v, &ts)
    ||  !(v = qv_val_get (root, "c")) || qv_val_uint (v, &coll) || coll > UINT32_MAX
    ||  type < QV_REC_CREATE_COLLECTION || type > QV_REC_USER)
        goto corrupt;
    rec = qv_record_new ((qv_rec_type_t) type);
    if (!rec)
        goto nomem;
    rec->ts = ts;
    rec->coll_id = (uint32_t) coll;
    if ((v = qv_val_get (root, "ss")) && qv_val_uint (v, &rec->sseq))
        goto corrupt;
    if ((v = qv_val_get (root, "p"))) {
        if (qv_val_uint (v, &u) || u > UINT32_MAX)
            goto corrupt;
        rec->partition = (uint32_t) u;
        rec->in_partition = true;
    }
    switch (rec->type) {
        case QV_REC_CREATE_COLLECTION: {
            if (!(v = qv_val_get (root, "name")) || qv_val_strcpy (v, rec->name, sizeof rec->name))
                goto corrupt;
            if (!(v = qv_val_get (root, "schema")))
                goto corrupt;
            rec->schema = qv_schema_parse (v, &rc);
            if (!rec->schema)
                goto corrupt;
            if (!(v = qv_val_get (root, "shards")) || qv_val_uint (v, &u) || u > 1024)
                goto corrupt;
            rec->shards = (uint32_t) u;
            if (!(v = qv_val_get (root, "consistency"))
            ||  qv_val_strcpy (v, rec->consistency, sizeof rec->consistency))
                goto corrupt;
            const char *s;
            size_t n;
            if (!(v = qv_val_get (root, "desc")) || qv_val_str (v, &s, &n))
                goto corrupt;
            rec->description = strndup (s, n);
            if (!(v = qv_val_get (root, "ttl")) || qv_val_uint (v, &rec->ttl_seconds))
                goto corrupt;
            if ((v = qv_val_get (root, "np"))) {
                if (qv_val_uint (v, &u) || u < 1 || u > QV_PARTITIONS_MAX)
                    goto corrupt;
                rec->num_partitions = (uint32_t) u;
            }
            break;
        }
        case QV_REC_CREATE_PARTITION:
        case QV_REC_DROP_PARTITION: {
            if (!(v = qv_val_get (root, "name")) || qv_val_strcpy (v, rec->name, sizeof rec->name)
            ||  !rec->in_partition)
                goto corrupt;
            break;
        }
        case QV_REC_DROP_COLLECTION:
            break;
        case QV_REC_INSERT: {
            bool up;
            if (!(v = qv_val_get (root, "up")) || qv_val_bool (v, &up)
            ||  !(v = qv_val_get (root, "shard")) || qv_val_uint (v, &u) || u > 1024)
                goto corrupt;
            rec->upsert = up;
            rec->shard = (uint32_t) u;
            if (!(v = qv_val_get (root, "seg")) || qv_val_uint (v, &rec->seg_id))
                goto corrupt;
            if ((v = qv_val_get (root, "ps"))) {
                size_t n = qv_val_len (v);
                if (qv_val_type (v) != QV_V_ARRAY || n % 2 || n / 2 > QV_PARTITIONS_MAX)
                    goto corrupt;
                rec->npsegs = (uint32_t) (n / 2);
                rec->psegs = calloc (rec->npsegs + 1, sizeof (qv_pseg_t));
                if (!rec->psegs)
                    goto nomem_rec;
                for (uint32_t i = 0; i < rec->npsegs; i++) {
                    if (qv_val_uint (qv_val_at (v, 2 * i), &u) || u > UINT32_MAX
                    ||  qv_val_uint (qv_val_at (v, 2 * i + 1), &rec->psegs [i].seg_id))
                        goto corrupt;
                    rec->psegs [i].partition = (uint32_t) u;
                }
            }
            const qv_schema_t *schema = lookup (arg, rec->coll_id);
            if (!schema) {
                *out = rec;
                qv_doc_destroy (&doc);
                return QV_ENOTFOUND;
            }
            if (!(v = qv_val_get (root, "batch")) || qv_batch_read (schema, v, &rec->batch))
                goto corrupt;
            break;
        }
        case QV_REC_DELETE:
            if (!(v = qv_val_get (root, "keys")) || s_read_keys (v, &rec->keys))
                goto corrupt;
            break;
        case QV_REC_CREATE_INDEX:
            if (!(v = qv_val_get (root, "field")) || qv_val_strcpy (v, rec->index.field, sizeof rec->index.field)
            ||  !(v = qv_val_get (root, "type"))
            ||  qv_index_def_from_request (v, qv_val_get (root, "params"), &rec->index))
                goto corrupt;
            break;
        case QV_REC_DROP_INDEX:
            if (!(v = qv_val_get (root, "field")) || qv_val_strcpy (v, rec->index.field, sizeof rec->index.field))
                goto corrupt;
            break;
        case QV_REC_SEAL:
            if (!(v = qv_val_get (root, "seg")) || qv_val_uint (v, &rec->seg_id))
                goto corrupt;
            break;
        case QV_REC_ALTER_COLLECTION: {
            if ((v = qv_val_get (root, "ttl"))) {
                if (qv_val_uint (v, &rec->ttl_seconds))
                    goto corrupt;
                rec->alters |= QV_ALTER_TTL;
            }
            if ((v = qv_val_get (root, "consistency"))) {
                if (qv_val_strcpy (v, rec->consistency, sizeof rec->consistency))
                    goto corrupt;
                rec->alters |= QV_ALTER_CONSISTENCY;
            }
            if ((v = qv_val_get (root, "desc"))) {
                const char *s;
                size_t n;
                if (qv_val_str (v, &s, &n))
                    goto corrupt;
                if (!(rec->description = strndup (s, n)))
                    goto nomem_rec;
                rec->alters |= QV_ALTER_DESCRIPTION;
            }
            if (!rec->alters)
                goto corrupt;
            break;
        }
        case QV_REC_COMPACT: {
            if (!rec->in_partition
            ||  !(v = qv_val_get (root, "shard")) || qv_val_uint (v, &u) || u > 1024)
                goto corrupt;
            rec->shard = (uint32_t) u;
            if (!(v = qv_val_get (root, "seg")) || qv_val_uint (v, &rec->seg_id)
            ||  !(v = qv_val_get (root, "snap")) || qv_val_uint (v, &rec->snap_ts)
            ||  !(v = qv_val_get (root, "exp")) || qv_val_uint (v, &rec->expire_cut)
            ||  !(v = qv_val_get (root, "epoch")) || qv_val_uint (v, &rec->epoch)
            ||  !(v = qv_val_get (root, "rows")) || qv_val_uint (v, &rec->rows)
            ||  !(v = qv_val_get (root, "olds")) || qv_val_type (v) != QV_V_ARRAY
            ||  qv_val_len (v) == 0 || qv_val_len (v) > 65536)
                goto corrupt;
            rec->nolds = (uint32_t) qv_val_len (v);
            if (!(rec->olds = calloc (rec->nolds, sizeof (uint64_t))))
                goto nomem_rec;
            for (uint32_t i = 0; i < rec->nolds; i++)
                if (qv_val_uint (qv_val_at (v, i), &rec->olds [i]))
                    goto corrupt;
            break;
        }
        case QV_REC_USER: {
            if (!(rec->user = calloc (1, sizeof *rec->user)))
                goto nomem_rec;
            const char *s;
            size_t n;
            if (!(v = qv_val_get (root, "a")) || qv_val_uint (v, &u)
            ||  u < QV_USER_CREATE || u > QV_PRIV_REVOKE)
                goto corrupt;
            rec->user->action = (qv_user_action_t) u;
            if (!(v = qv_val_get (root, "user")) || qv_val_strcpy (v, rec->user->user, sizeof rec->user->user)
            ||  !(v = qv_val_get (root, "role")) || qv_val_strcpy (v, rec->user->role, sizeof rec->user->role)
            ||  !(v = qv_val_get (root, "coll"))
            ||  qv_val_strcpy (v, rec->user->collection, sizeof rec->user->collection)
            ||  !(v = qv_val_get (root, "priv"))
            ||  qv_val_strcpy (v, rec->user->privilege, sizeof rec->user->privilege)
            ||  !(v = qv_val_get (root, "hash")) || qv_val_str (v, &s, &n))
                goto corrupt;
            if (n && !(rec->user->hash = strndup (s, n)))
                goto nomem_rec;
            if ((v = qv_val_get (root, "grantor"))
            &&  qv_val_strcpy (v, rec->user->grantor, sizeof rec->user->grantor))
                goto corrupt;
            break;
        }
    }
    qv_doc_destroy (&doc);
    *out = rec;
    return 0;
corrupt:
    qv_record_destroy (&rec);
    qv_doc_destroy (&doc);
    return qv_err (QV_ECORRUPT, "WAL record does not decode");
nomem_rec:
    qv_record_destroy (&rec);
nomem:
    qv_doc_destroy (&doc);
    return qv_err (QV_ENOMEM, "out of memory");
}
