//  Searcher membership in NATS KV: see qv_members.h.
//
//  DESIGN
//  An entry's value is a msgpack map {endpoint, ready, applied_seq, instance, epoch}
//  (instance and epoch optional: entries of older releases lack them). Readers do not
//  read the bucket: they subscribe to its subject ($KV.<bucket>.<key>), so each put
//  reaches them as it happens and a searcher that stopped putting is taken for gone
//  after QV_MEMBERS_STALE_MS. A delete arrives as an empty message whose KV-Operation
//  header says DEL (or PURGE). The bucket's TTL only keeps the bucket tidy.
#include "qv_members.h"
#include "qv_codec.h"
#include "qv_rc.h"

#include <ctype.h>
#include <string.h>

void
qv_members_key (const qv_config_t *config, const char *endpoint, char *out, size_t size)
{
    qv_members_role_key (config, QV_MEMBERS_SEARCHER, endpoint, out, size);
}

void
qv_members_role_key (const qv_config_t *config, const char *role, const char *endpoint,
                     char *out, size_t size)
{
    char store [128], name [128];
    qv_config_store_key (config, store, sizeof store);
    size_t n = 0;
    for (const char *c = endpoint; *c && n < sizeof name - 1; c++)
        name [n++] = (isalnum ((unsigned char) *c) || *c == '-') ? *c : '_';
    name [n] = 0;
    snprintf (out, size, "%s.%s.%s", store, role, name);
}

void
qv_members_subject (const qv_config_t *config, char *out, size_t size)
{
    qv_members_role_subject (config, QV_MEMBERS_SEARCHER, out, size);
}

void
qv_members_role_subject (const qv_config_t *config, const char *role, char *out, size_t size)
{
    char store [128];
    qv_config_store_key (config, store, sizeof store);
    snprintf (out, size, "$KV.%s.%s.%s.*", QV_MEMBERS_BUCKET, store, role);
}

int
qv_members_put (kvStore *kv, const char *key, const qv_member_t *member)
{
    qv_wr_t *w = qv_wr_new ();
    qv_wr_map (w, 5);
    qv_wr_str (w, "endpoint");
    qv_wr_str (w, member->endpoint);
    qv_wr_str (w, "ready");
    qv_wr_bool (w, member->ready);
    qv_wr_str (w, "applied_seq");
    qv_wr_uint (w, member->applied_seq);
    qv_wr_str (w, "instance");
    qv_wr_str (w, member->instance);
    qv_wr_str (w, "epoch");
    qv_wr_uint (w, member->epoch);
    size_t size;
    const void *data = qv_wr_data (w, &size);
    uint64_t rev = 0;
    natsStatus s = kvStore_Put (&rev, kv, key, data, (int) size);
    qv_wr_destroy (&w);
    if (s != NATS_OK)
        return qv_err (QV_EUNAVAIL, "cannot put %s in KV bucket %s: %s", key,
                       QV_MEMBERS_BUCKET, natsStatus_GetText (s));
    return 0;
}

int
qv_members_delete (kvStore *kv, const char *key)
{
    natsStatus s = kvStore_Delete (kv, key);
    if (s != NATS_OK)
        return qv_err (QV_EUNAVAIL, "cannot delete %s from KV bucket %s: %s", key,
                       QV_MEMBERS_BUCKET, natsStatus_GetText (s));
    return 0;
}

int
qv_members_decode (natsMsg *msg, qv_member_t *member)
{
    memset (member, 0, sizeof *member);
    const char *op = NULL;
    if (natsMsgHeader_Get (msg, "KV-Operation", &op) == NATS_OK && op
    &&  (strcmp (op, "DEL") == 0 || strcmp (op, "PURGE") == 0)) {
        member->gone = true;
        return 0;
    }
    int rc = 0;
    qv_doc_t *doc = qv_doc_parse (natsMsg_GetData (msg), (size_t) natsMsg_GetDataLength (msg),
                                  64, &rc);
    if (!doc)
        return QV_EPROTO;
    const qv_val_t *root = qv_doc_root (doc);
    const qv_val_t *ep = qv_val_get (root, "endpoint");
    const qv_val_t *ready = qv_val_get (root, "ready");
    const qv_val_t *applied = qv_val_get (root, "applied_seq");
    rc = !ep || qv_val_strcpy (ep, member->endpoint, sizeof member->endpoint)
      || !ready || qv_val_bool (ready, &member->ready)
      || !applied || qv_val_uint (applied, &member->applied_seq) ? QV_EPROTO : 0;
    const qv_val_t *instance = qv_val_get (root, "instance");
    if (rc == 0 && instance
    &&  qv_val_strcpy (instance, member->instance, sizeof member->instance))
        rc = QV_EPROTO;
    const qv_val_t *epoch = qv_val_get (root, "epoch");
    if (rc == 0 && epoch && qv_val_uint (epoch, &member->epoch))
        rc = QV_EPROTO;
    qv_doc_destroy (&doc);
    return rc;
}

int
qv_members_recv (qv_bus_t *bus, zsock_t *sock, const char *who, qv_member_t *member,
                 char *key, size_t size)
{
    natsMsg *m = qv_bus_recv (bus, sock);
    if (!m)
        return 1;
    int rc = qv_members_decode (m, member);
    const char *subject = natsMsg_GetSubject (m);
    const char *prefix = "$KV." QV_MEMBERS_BUCKET ".";
    if (key && size)
        snprintf (key, size, "%s", strncmp (subject, prefix, strlen (prefix)) == 0
                                   ? subject + strlen (prefix) : "");
    if (rc)
        qv_warn ("%s: an undecodable entry on %s was ignored", who, subject);
    natsMsg_Destroy (m);
    return rc;
}

void
qv_members_follow (qv_bus_t *bus, const char *subject, const char *ep, bool *subscribed,
                   int64_t *warned_ms, const char *who, const char *what)
{
    if (*subscribed)
        return;
    if (qv_bus_connected (bus) && qv_bus_subscribe (bus, subject, ep) == 0) {
        *subscribed = true;
        return;
    }
    int64_t now = qv_clock_msec ();
    if (now - *warned_ms > 30000) {
        *warned_ms = now;
        qv_warn ("%s: cannot follow %s on NATS yet; retrying", who, what);
    }
}
