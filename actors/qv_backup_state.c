//  Backup states kept across restarts (qv_backup_state.h).
#include "qv_backup_state.h"
#include "qv_actor.h"
#include "qv_envelope.h"
#include "qv_rc.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#define S_MAX_ELEMS 64              //  a record's decoding limit

static void
s_free (void **item)
{
    free (*item);
    *item = NULL;
}

#define S_KEY_DIGITS 20

static void
s_key (uint64_t id, char *out, size_t size)
{
    snprintf (out, size, "%020llu", (unsigned long long) id);
}

//  True if key is a record's: 20 digits.
static bool
s_is_record (const char *key)
{
    size_t n = strspn (key, "0123456789");
    return n == S_KEY_DIGITS && key [n] == 0;
}

qv_store_t *
qv_backup_records_open (const char *data)
{
    char dir [PATH_MAX + 32];
    snprintf (dir, sizeof dir, "%s/%s", data, QV_BACKUP_RECORDS_DIR);
    return qv_store_new (dir);
}

int
qv_backup_record_put (qv_store_t *store, const qv_backup_record_t *rec)
{
    static const uint8_t room [QV_ENVELOPE_HEADER_SIZE] = { 0 };
    qv_wr_t *w = qv_wr_new ();
    qv_wr_raw (w, room, sizeof room);
    qv_wr_map (w, 9);
    qv_wr_str (w, "id"); qv_wr_uint (w, rec->id);
    qv_wr_str (w, "collection"); qv_wr_str (w, rec->collection);
    qv_wr_str (w, "to"); qv_wr_str (w, rec->to);
    qv_wr_str (w, "ts"); qv_wr_uint (w, rec->ts);
    qv_wr_str (w, "state"); qv_wr_str (w, qv_backup_state_name (rec->state));
    qv_wr_str (w, "rows_done"); qv_wr_uint (w, rec->done);
    qv_wr_str (w, "rows_total"); qv_wr_uint (w, rec->total);
    qv_wr_str (w, "error"); qv_wr_str (w, rec->error);
    qv_wr_str (w, "updated_ms"); qv_wr_int (w, rec->updated_ms);
    size_t size;
    void *data = qv_wr_detach (w, &size);
    qv_wr_destroy (&w);
    if (!data)
        return qv_err (QV_ENOMEM, "out of memory");
    qv_envelope_seal (data, size, QV_ENVELOPE_BACKUP_STATE, QV_BACKUP_RECORD_VERSION);
    char key [64];
    s_key (rec->id, key, sizeof key);
    int rc = qv_store_put (store, key, data, size);
    free (data);
    return rc;
}

//  Reads the record under key into rec. 0 or the code (with a message).
static int
s_read (qv_store_t *store, const char *key, qv_backup_record_t *rec)
{
    void *data;
    size_t size;
    int rc = qv_store_get (store, key, &data, &size);
    if (rc)
        return rc;
    qv_envelope_t env;
    rc = qv_envelope_open (key, data, size, QV_ENVELOPE_BACKUP_STATE,
                           QV_BACKUP_RECORD_VERSION, &env);
    qv_doc_t *doc = rc ? NULL : qv_doc_parse (env.payload, env.size, S_MAX_ELEMS, &rc);
    free (data);
    if (!doc)
        return rc ? rc : QV_ECORRUPT;
    const qv_val_t *root = qv_doc_root (doc);
    memset (rec, 0, sizeof *rec);
    char state [16] = "";
    if (qv_val_uint (qv_val_get (root, "id"), &rec->id)
    ||  qv_val_strcpy (qv_val_get (root, "collection"), rec->collection, sizeof rec->collection)
    ||  qv_val_strcpy (qv_val_get (root, "state"), state, sizeof state)) {
        qv_doc_destroy (&doc);
        return qv_err (QV_ECORRUPT, "%s: not a backup state", key);
    }
    qv_val_strcpy (qv_val_get (root, "to"), rec->to, sizeof rec->to);
    qv_val_uint (qv_val_get (root, "ts"), &rec->ts);
    qv_val_uint (qv_val_get (root, "rows_done"), &rec->done);
    qv_val_uint (qv_val_get (root, "rows_total"), &rec->total);
    qv_val_strcpy (qv_val_get (root, "error"), rec->error, sizeof rec->error);
    qv_val_int (qv_val_get (root, "updated_ms"), &rec->updated_ms);
    qv_doc_destroy (&doc);
    if (streq (state, "completed"))
        rec->state = QV_BACKUP_COMPLETED;
    else {
        if (streq (state, "executing"))
            snprintf (rec->error, sizeof rec->error, "the server stopped before this backup's "
                      "end was recorded: if %s has a manifest (qvctl restore --check), it "
                      "completed; if not, it is incomplete, and restore refuses it", rec->to);
        rec->state = QV_BACKUP_FAILED;
    }
    return 0;
}

zhashx_t *
qv_backup_records_load (qv_store_t *store)
{
    zhashx_t *records = zhashx_new ();
    if (!records)
        return NULL;
    zhashx_set_destructor (records, s_free);
    zlist_t *all = NULL, *keys = zlist_new ();
    if (!keys || qv_store_list (store, "", &all)) {
        qv_warn ("backup states: cannot list them: %s", qv_err_msg ());
        zlist_destroy (&keys);
        return records;
    }
    zlist_autofree (keys);
    for (const char *key = zlist_first (all); key; key = zlist_next (all))
        if (s_is_record (key))
            zlist_append (keys, (void *) key);
    zlist_destroy (&all);
    size_t n = zlist_size (keys), i = 0;
    for (const char *key = zlist_first (keys); key; key = zlist_next (keys), i++) {
        if (n - i > QV_BACKUP_RECORDS_KEPT) {
            qv_store_delete (store, key);       //  the oldest: keys sort by id
            continue;
        }
        qv_backup_record_t *rec = malloc (sizeof *rec);
        if (!rec)
            break;
        if (s_read (store, key, rec)) {
            qv_warn ("backup states: %s skipped: %s", key, qv_err_msg ());
            free (rec);
            continue;
        }
        char id [24];
        snprintf (id, sizeof id, "%llu", (unsigned long long) rec->id);
        if (zhashx_insert (records, id, rec))
            free (rec);
    }
    zlist_destroy (&keys);
    return records;
}

void
qv_backup_record_write (const qv_backup_record_t *rec, qv_wr_t *w)
{
    qv_wr_key (w, "state"); qv_wr_str (w, qv_backup_state_name (rec->state));
    qv_wr_key (w, "collection"); qv_wr_str (w, rec->collection);
    qv_wr_key (w, "ts"); qv_wr_uint (w, rec->ts);
    qv_wr_key (w, "rows_done"); qv_wr_uint (w, rec->done);
    qv_wr_key (w, "rows_total"); qv_wr_uint (w, rec->total);
    if (rec->state == QV_BACKUP_FAILED) {
        qv_wr_key (w, "error");
        qv_wr_str (w, rec->error);
    }
}
