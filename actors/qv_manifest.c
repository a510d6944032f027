//  Manifests as readers find them (qv_manifest.h).
//
//  Manifest object "meta/manifest/<version, 20 digits>-<writer epoch, 20 digits>" (the
//  epoch the WAL's, see objstore/qv_wal.c "Fencing"; "meta/manifest/<version>" for
//  epoch 0, as every manifest was keyed before): the stored-object envelope
//  (qv_envelope.h) of kind MANIFEST, format version 4, whose payload is the body.
//  Version 3 is the same without the segments' and indexes' "epoch" (0: their object
//  keys have none); version 2 also without the top "epoch" (epoch 0).
//  Version 1 (before the envelope, Quiver <= 06906df; little-endian) is still read:
//    magic "QVMAN\0\0\0" (8) | format version u32 (=1) | body size u64 | body |
//    crc32c u32 of everything before it.
//  body: msgpack {"version", "epoch" (version 3: the key's), "next_coll", "next_seg", "applied", "checkpoint",
//      "max_ts", "stream_seq" (optional; highest JetStream sequence applied),
//      "users" (optional; the user store, qv_users_write: users with password
//      hashes and roles, roles with their grants),
//      "collections": [{"id", "name", "schema", "shards", "consistency",
//      "desc", "ttl", "created", "indexes": [{"field" (number), "version", "type"
//      ("" once dropped), "params"}], "segments": [{"id", "epoch", "shard", "rows",
//      "deletes": bin of (row u32, ts u64) pairs, "indexes": [{"field", "version",
//      "epoch"}], "part"}], "parts": [{"id", "name"}], "next_part", "np"}]} |
//    (a segment's and an index's "epoch": the writer epoch in its object's key,
//    qv_segment_object_key; 0 or absent: a key without one)
//    ("part", "parts", "next_part" and "np" are optional: manifests written before
//    partitions have only `_default`, and every segment in it; so is a collection's
//    "retired": the ids of the segments compactions replaced, whose inserts replay
//    skips)
//  A manifest lists flushed segments only; each index it lists for a segment was
//  written to the store before the manifest was.
#include "qv_manifest.h"
#include "qv_crc.h"
#include "qv_envelope.h"
#include "qv_le.h"
#include "qv_rc.h"

#include <stdlib.h>
#include <string.h>

#define S_MAN_MAGIC "QVMAN\0\0\0"
#define S_MAN_HEADER 20                 //  version 1's header
#define S_MAN_V2_VERSION 2              //  the envelope's payload version before the epoch
#define S_MAN_V3_VERSION 3              //  ... before segment and index object epochs
#define S_MAN_DIGITS 20

void
qv_manifest_key (uint64_t version, uint64_t epoch, char *out, size_t size)
{
    if (epoch == 0)
        snprintf (out, size, QV_MANIFEST_PREFIX "%0*llu", S_MAN_DIGITS, (unsigned long long) version);
    else
        snprintf (out, size, QV_MANIFEST_PREFIX "%0*llu-%0*llu", S_MAN_DIGITS,
                  (unsigned long long) version, S_MAN_DIGITS, (unsigned long long) epoch);
}

//  Parses exactly 20 digits; 0 or -1.
static int
s_man_digits (const char *p, uint64_t *out)
{
    uint64_t v = 0;
    for (int i = 0; i < S_MAN_DIGITS; i++) {
        if (p [i] < '0' || p [i] > '9' || v > (UINT64_MAX - 9) / 10)
            return -1;
        v = v * 10 + (uint64_t) (p [i] - '0');
    }
    *out = v;
    return 0;
}

//  A listed manifest: its key and what the key says.
typedef struct {
    const char *key;                //  borrowed from the listing
    uint64_t version;
    uint64_t epoch;
    bool live;                      //  taken by the fencing rule
} s_man_t;

//  Parses a manifest key ("meta/manifest/<version>" or "<version>-<epoch>"); 0 or -1.
static int
s_man_parse (const char *key, s_man_t *m)
{
    const char *name = key + strlen (QV_MANIFEST_PREFIX);
    size_t len = strlen (name);
    m->key = key;
    m->epoch = 0;
    m->live = false;
    if (len == S_MAN_DIGITS)
        return s_man_digits (name, &m->version);
    if (len != 2 * S_MAN_DIGITS + 1 || name [S_MAN_DIGITS] != '-'
    ||  s_man_digits (name, &m->version) || s_man_digits (name + S_MAN_DIGITS + 1, &m->epoch)
    ||  m->epoch == 0)
        return -1;
    return 0;
}

//  The WAL's fencing rule (objstore/qv_wal.c, s_select) for manifests: in version
//  order, at each version the manifest of the highest epoch, and only if that epoch is
//  at least the highest taken before it. A deposed writer's manifest that landed after
//  a newer writer's (at the same or a higher version) is ignored, with a warning.
static void
s_man_select (qv_store_t *store, s_man_t *mans, size_t n)
{
    uint64_t floor = 0;
    for (size_t i = 0; i < n; ) {
        size_t j = i;
        while (j < n && mans [j].version == mans [i].version)
            j++;
        s_man_t *best = &mans [j - 1];  //  the listing orders one version's epochs
        best->live = best->epoch >= floor;
        if (best->live)
            floor = best->epoch;
        for (size_t k = i; k < j; k++)
            if (!mans [k].live) {
                char where [512];
                qv_store_describe (store, mans [k].key, where, sizeof where);
                qv_warn ("manifest %s of deposed writer epoch %llu ignored; current epoch "
                         "%llu", where, (unsigned long long) mans [k].epoch,
                         (unsigned long long) floor);
            }
        i = j;
    }
}

void
qv_manifest_destroy (qv_manifest_t **self_p)
{
    qv_manifest_t *self = *self_p;
    if (!self)
        return;
    free (self->data);
    free (self);
    *self_p = NULL;
}

//  Checks the object's envelope (or version 1's header and checksum) and finds the body.
static int
s_open (qv_manifest_t *self, size_t size)
{
    const uint8_t *p = self->data;
    if (qv_envelope_is (p, size)) {
        qv_envelope_t env;
        int rc = qv_envelope_open (self->where, p, size, QV_ENVELOPE_MANIFEST,
                                   QV_MANIFEST_VERSION, &env);
        if (rc)
            return rc;
        if (env.version < S_MAN_V2_VERSION || env.version > QV_MANIFEST_VERSION)
            return qv_err (QV_ECORRUPT, "manifest %s: format version %u in an envelope, "
                           "expected %d to %d", self->where, env.version, S_MAN_V2_VERSION,
                           QV_MANIFEST_VERSION);
        self->has_epoch = env.version >= S_MAN_V3_VERSION;
        self->body = env.payload;
        self->body_size = env.size;
        return 0;
    }
    //  Version 1, written before the envelope
    uint32_t crc = 0, fv = 0;
    uint64_t body_size = 0;
    if (size >= S_MAN_HEADER + 4) {
        fv = qv_le_get32 (p + 8);
        body_size = qv_le_get64 (p + 12);
        crc = qv_le_get32 (p + size - 4);
    }
    if (size < S_MAN_HEADER + 4 || memcmp (p, S_MAN_MAGIC, 8) || fv != 1
    ||  body_size != size - S_MAN_HEADER - 4)
        return qv_err (QV_ECORRUPT, "manifest %s is truncated or not a manifest", self->where);
    if (qv_crc32c (p, size - 4) != crc)
        return qv_err (QV_ECORRUPT, "manifest %s: checksum mismatch", self->where);
    self->body = p + S_MAN_HEADER;
    self->body_size = body_size;
    return 0;
}

int
qv_manifest_read_newest (qv_store_t *store, uint64_t newer_than, qv_manifest_t **out)
{
    *out = NULL;
    zlist_t *keys;
    int rc = qv_store_list (store, QV_MANIFEST_PREFIX, &keys);
    if (rc)
        return rc;
    s_man_t *mans = calloc (zlist_size (keys) + 1, sizeof *mans);
    if (!mans) {
        zlist_destroy (&keys);
        return qv_err (QV_ENOMEM, "out of memory");
    }
    size_t nmans = 0;
    for (char *k = zlist_first (keys); k; k = zlist_next (keys)) {
        if (s_man_parse (k, &mans [nmans]) == 0)
            nmans++;
        else {
            char where [512];
            qv_store_describe (store, k, where, sizeof where);
            qv_warn ("%s is not named as a manifest (a 20-digit version, or one and a "
                     "20-digit writer epoch): ignored", where);
        }
    }
    s_man_select (store, mans, nmans);
    //  The live manifests, newest last
    size_t nlive = 0;
    for (size_t i = 0; i < nmans; i++)
        if (mans [i].live)
            mans [nlive++] = mans [i];
    if (nlive == 0 || mans [nlive - 1].version <= newer_than) {
        free (mans);
        zlist_destroy (&keys);
        return 0;                   //  a new database, or nothing newer
    }
    qv_manifest_t *self = calloc (1, sizeof *self);
    const s_man_t *newest = NULL;
    size_t size = 0;
    rc = 0;
    for (size_t i = nlive; i-- > 0 && mans [i].version > newer_than; ) {
        newest = &mans [i];
        qv_store_describe (store, newest->key, self->where, sizeof self->where);
        rc = qv_store_get (store, newest->key, &self->data, &size);
        if (rc != QV_ENOTFOUND)
            break;
        //  Listed but not readable as a complete object: this manifest's write was
        //  interrupted (an S3 server whose PUT is not atomic), so it was never in
        //  force and the WAL it would have let go of is still there; the one before
        //  it is, or, if it was the first, none is (everything is in the WAL).
        qv_warn ("%s; reading the manifest before it", qv_err_msg ());
        qv_err_clear ();
        newest = NULL;
    }
    if (!newest) {
        free (mans);
        zlist_destroy (&keys);
        qv_manifest_destroy (&self);
        return 0;                   //  no complete manifest newer than newer_than
    }
    self->version = newest->version;
    self->epoch = newest->epoch;
    free (mans);
    zlist_destroy (&keys);
    if (rc == 0)
        rc = s_open (self, size);
    if (rc)
        qv_manifest_destroy (&self);
    *out = self;
    return rc;
}

int
qv_manifest_referenced (qv_store_t *store, zhashx_t *refs)
{
    zlist_t *keys;
    int rc = qv_store_list (store, QV_MANIFEST_PREFIX, &keys);
    if (rc)
        return rc;
    for (char *k = zlist_first (keys); k && rc == 0; k = zlist_next (keys)) {
        qv_manifest_t man = { 0 };
        size_t size = 0;
        qv_store_describe (store, k, man.where, sizeof man.where);
        rc = qv_store_get (store, k, &man.data, &size);
        if (rc == QV_ENOTFOUND) {
            qv_err_clear ();
            rc = 0;                 //  pruned since the listing, or never complete
            continue;
        }
        if (rc == 0)
            rc = s_open (&man, size);
        qv_doc_t *doc = rc ? NULL : qv_doc_parse_view (man.body, man.body_size, SIZE_MAX, &rc);
        const qv_val_t *colls = doc ? qv_val_get (qv_doc_root (doc), "collections") : NULL;
        if (rc == 0 && !colls)
            rc = qv_err (QV_ECORRUPT, "manifest %s does not decode", man.where);
        for (size_t i = 0; rc == 0 && i < qv_val_len (colls); i++) {
            const qv_val_t *cv = qv_val_at (colls, i), *v, *segs;
            uint64_t coll;
            if (!(v = qv_val_get (cv, "id")) || qv_val_uint (v, &coll)
            ||  !(segs = qv_val_get (cv, "segments"))) {
                rc = qv_err (QV_ECORRUPT, "manifest %s does not match the format", man.where);
                break;
            }
            for (size_t j = 0; j < qv_val_len (segs); j++) {
                uint64_t seg;
                if ((v = qv_val_get (qv_val_at (segs, j), "id")) && qv_val_uint (v, &seg) == 0) {
                    char ref [48];
                    snprintf (ref, sizeof ref, "%llu/%llu", (unsigned long long) coll,
                              (unsigned long long) seg);
                    zhashx_update (refs, ref, (void *) 1);
                }
            }
        }
        qv_doc_destroy (&doc);
        free (man.data);
    }
    zlist_destroy (&keys);
    return rc;
}

uint64_t
qv_manifest_body_uint (const void *body, size_t size, const char *key)
{
    int rc = 0;
    uint64_t value = 0;
    qv_doc_t *doc = qv_doc_parse_view (body, size, SIZE_MAX, &rc);
    const qv_val_t *v = doc ? qv_val_get (qv_doc_root (doc), key) : NULL;
    if (!v || qv_val_uint (v, &value))
        value = 0;
    qv_doc_destroy (&doc);
    return value;
}

int
qv_manifest_adopt (qv_catalog_t *catalog, const void *body, size_t size,
                   qv_adopt_fn *fn, void *arg)
{
    int rc = 0;
    qv_doc_t *doc = qv_doc_parse_view (body, size, SIZE_MAX, &rc);
    const qv_val_t *colls = doc ? qv_val_get (qv_doc_root (doc), "collections") : NULL;
    if (!colls || qv_val_type (colls) != QV_V_ARRAY) {
        qv_warn ("searcher: a manifest of the writer does not decode; not adopted");
        qv_doc_destroy (&doc);
        return -1;
    }
    int behind = 0;
    for (size_t i = 0; i < qv_val_len (colls); i++) {
        const qv_val_t *cv = qv_val_at (colls, i), *v, *segs;
        uint64_t id;
        if (!(v = qv_val_get (cv, "id")) || qv_val_uint (v, &id) || id > UINT32_MAX
        ||  !(segs = qv_val_get (cv, "segments")))
            continue;
        qv_collection_t *c = qv_catalog_find_id (catalog, (uint32_t) id);
        if (!c) {
            //  Not created here yet (the feed is behind the store), or dropped since
            behind += id >= qv_catalog_next_coll_id (catalog);
            continue;
        }
        for (size_t j = 0; j < qv_val_len (segs); j++) {
            const qv_val_t *sv = qv_val_at (segs, j), *idxs;
            uint64_t sid, rows;
            if (!(v = qv_val_get (sv, "id")) || qv_val_uint (v, &sid)
            ||  !(v = qv_val_get (sv, "rows")) || qv_val_uint (v, &rows))
                continue;
            qv_segment_t *seg = NULL;
            for (size_t k = 0; k < c->nsegs && !seg; k++)
                if (c->segs [k]->id == sid)
                    seg = c->segs [k];
            if (!seg) {
                //  No row of it here yet, or its partition was dropped since
                behind += sid >= qv_catalog_next_seg_id (catalog);
                continue;
            }
            uint32_t held = atomic_load (&seg->rows);
            if (held < rows) {
                behind++;           //  the feed has not brought all its rows yet
                continue;
            }
            if (held != rows) {
                qv_warn ("searcher: segment %llu holds %u rows here, %llu in the writer's "
                         "manifest; its index is not adopted", (unsigned long long) sid,
                         held, (unsigned long long) rows);
                continue;
            }
            seg->state = QV_SEG_FLUSHED;
            uint64_t epoch = 0;
            if ((v = qv_val_get (sv, "epoch")))
                qv_val_uint (v, &epoch);
            seg->epoch = epoch;
            idxs = qv_val_get (sv, "indexes");
            for (size_t k = 0; idxs && k < qv_val_len (idxs); k++) {
                const qv_val_t *iv = qv_val_at (idxs, k);
                uint64_t fi, version;
                if (!(v = qv_val_get (iv, "field")) || qv_val_uint (v, &fi)
                ||  fi >= (uint64_t) c->schema->nfields
                ||  !(v = qv_val_get (iv, "version")) || qv_val_uint (v, &version))
                    continue;
                if (c->index_versions [fi] < version) {
                    behind++;       //  its create_index is not applied here yet
                    continue;
                }
                if (!c->index_defs [fi] || c->index_versions [fi] != version)
                    continue;       //  dropped or replaced since
                if (seg->indexes [fi] && seg->indexes [fi]->version == version)
                    continue;       //  has it
                uint64_t iepoch = 0;
                if ((v = qv_val_get (iv, "epoch")))
                    qv_val_uint (v, &iepoch);
                fn (arg, c, seg, (int) fi, iepoch);
            }
        }
    }
    qv_doc_destroy (&doc);
    return behind;
}

void
qv_manifest_fence (qv_store_t *store, qv_catalog_t *catalog, uint64_t epoch)
{
    uint64_t version;
    zchunk_t *chunk = qv_catalog_manifest (catalog, &version);
    char key [64];
    qv_manifest_key (version, epoch, key, sizeof key);
    if (qv_store_put (store, key, zchunk_data (chunk), zchunk_size (chunk)) == 0)
        qv_info ("manifest fence %s written (manifests of lower epochs written after it "
                 "are ignored)", key);
    else {
        qv_warn ("cannot write the manifest fence %s yet (%s); the first flush's manifest "
                 "fences instead", key, qv_err_msg ());
        qv_err_clear ();
    }
    zchunk_destroy (&chunk);
}
