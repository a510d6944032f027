//  The write-ahead log of one shard: one object per group commit, replayed on open.
//
//  DESIGN
//  A shard's log is the objects "wal/<shard>/<seq>", seq written as 20 zero-padded
//  decimal digits so that the store's bytewise listing is numeric order. Each append
//  writes exactly one object with qv_store_put (atomic and durable), so an object is
//  either wholly there or absent; the caller batches records for group commit.
//
//  Object layout: a stored-object envelope (schemas/qv_envelope.h) of kind WAL,
//  format version 3, whose payload is (all integers little-endian):
//
//    offset  size  field
//    0       4     shard, u32 (must match the key)
//    4       8     seq, u64 (must match the key)
//    12      8     epoch, u64: the writer's fencing epoch (must match the key)
//    20      4     count, u32: number of records
//    24      ...   count x { size u32 | size bytes }
//
//  Version 2 (Quiver <= 63c2036) is the same without the epoch (shard, seq, count,
//  records) and reads as epoch 0. Version 1, written before the envelope (Quiver <=
//  06906df), is still read: the version 2 fields behind their own header, 32 bytes of
//  overhead:
//
//    0       8     magic "QVWAL\0\0\0"
//    8       4     version, u32 = 1
//    12      ...   the version 2 payload above
//    end-4   4     crc32c (qv_crc32c) of every byte before it
//
//  Fencing. Every writer has an epoch, and every object it writes carries it, in the
//  payload and in the key: "wal/<shard>/<seq>-<epoch>", both 20 digits, so two
//  writers' objects at one seq are two objects (a late write never overwrites the
//  new writer's), and the bytewise listing is (seq, epoch) order; objects of epoch 0
//  keep the old key "wal/<shard>/<seq>". qv_wal_fence makes the opener the writer:
//  its epoch is one more than the highest epoch in the log (or the caller's, if
//  larger: a lease's), and it writes a fence object (that epoch, no records) at the
//  next seq before any append. Replay (s_select) takes, in seq order, at each seq the
//  object of the highest epoch, and only if that epoch is at least the highest epoch
//  taken before it: whatever a deposed writer wrote after the new writer's fence is
//  ignored (and logged once per open). So that the highest epoch is never forgotten,
//  deleting below a checkpoint keeps the newest object of the highest epoch when no
//  object at or above the checkpoint has that epoch (the "anchor"); ignored objects
//  are deleted when a checkpoint passes them.
//
//  Sequence numbers. The log holds objects [checkpoint, next) with no gap: every seq
//  below the checkpoint (the first seq a flushed manifest does not cover) may be
//  deleted; every seq at or above it was acknowledged and must still be there. Open
//  therefore reports a missing seq anywhere from the checkpoint to the last object as
//  QV_ECORRUPT, including a first object above the checkpoint. The next seq is the
//  last object's + 1, or, with no object at or above the checkpoint, the larger of
//  the checkpoint and 1 + the highest seq seen below it, so a number that was ever
//  written durably is never reused. A failed append leaves the number unused, and the
//  next append retries it (put either wrote the whole object or nothing, and a put
//  that wrote it but then failed its directory fsync is simply overwritten).
//
//  Pipelining (torn tails). Up to QV_WAL_WINDOW appends may be in flight at once
//  (qv_wal_reserve / qv_wal_put / qv_wal_confirm), and their puts complete in any
//  order, but the caller acknowledges in log order: an object's records only once
//  every object up to it is durable and confirmed. So when a writer stops, the log
//  may end in a torn tail: a missing seq g followed by objects of the same window,
//  none of them acknowledged. Open accepts a gap as a torn tail only if no object is
//  at or after g + QV_WAL_WINDOW (a deeper gap is an acknowledged object lost:
//  QV_ECORRUPT), replays up to g, and the writer deletes every object from g on before
//  it appends at g again (a reader of a read-only store just stops at g; for it a gap
//  at the seq it opens from stays QV_ECORRUPT, since a follower behind the writer's
//  truncation sees the same shape and must learn that it fell behind). The same
//  holds while the writer runs: after a failed put of g (or its confirmation), once
//  no put of the window is under way (qv_wal_abort), the next reserve deletes the
//  objects from g to the last reserved, highest first, before it gives g again. An
//  object of a failed window is therefore never replayed after a new object at a
//  lower seq (its records would come after newer ones, out of timestamp order): it
//  is deleted before any new object is written, and until then it lies past a gap
//  within the last window, where no replay reads. Keys and the format are unchanged
//  (objects of any version read as before); a release before pipelining reads a
//  torn tail as QV_ECORRUPT.
//
//  A qv_wal_t belongs to one actor (the shard's segment manager); it is not for use
//  from several threads at once. The store's writer lock is the caller's business.
#include "qv_wal.h"
#include "qv_hist.h"
#include "qv_crc.h"
#include "qv_envelope.h"
#include "qv_rc.h"

#include <inttypes.h>
#include <string.h>

#define S_MAGIC        "QVWAL\0\0\0"     //  version 1 (before the envelope)
#define S_MAGIC_SIZE   8
#define S_V1_VERSION   1
#define S_V1_HEADER    12               //  magic + version, before the fields
#define S_VERSION      3                //  the envelope's payload version
#define S_V2_VERSION   2                //  the envelope's payload before the epoch
#define S_FIELDS_SIZE  24               //  shard, seq, epoch, count
#define S_V2_FIELDS    16               //  shard, seq, count
#define S_CRC_SIZE     4
#define S_SEQ_DIGITS   20
#define S_NAME_MAX     (2 * S_SEQ_DIGITS + 1)

//  One listed WAL object: its key and what the key says.
typedef struct {
    char *key;                      //  borrowed from the listing
    uint64_t seq;
    uint64_t epoch;
    bool live;                      //  taken by the replay rule (s_select)
} s_obj_t;

struct _qv_wal_t {
    qv_store_t *store;              //  borrowed
    uint32_t shard;
    uint64_t next_seq;              //  the seq the next append writes
    bool opened;                    //  qv_wal_open succeeded; appends allowed
    uint64_t max_epoch;             //  the highest epoch in the log at open
    uint64_t epoch;                 //  what appends write (max_epoch until fenced)
    bool fenced;                    //  qv_wal_fence succeeded: check the lock per append
    uint64_t pending;               //  the epoch of a fence not yet written, else 0
    char deposed [512];             //  why appends are refused, "" while the writer
    uint64_t confirmed;             //  every seq below it is confirmed (qv_wal_confirm);
                                    //  [confirmed, next_seq) is the window in flight
    bool dirty;                     //  a put failed: [dirty_from, dirty_to) may hold
    uint64_t dirty_from;            //  objects never acknowledged, deleted before the
    uint64_t dirty_to;              //  next reserve (qv_wal_abort)
};

static void
s_put_u32 (unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p [i] = (unsigned char) (v >> (8 * i));
}

static void
s_put_u64 (unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p [i] = (unsigned char) (v >> (8 * i));
}

static uint32_t
s_get_u32 (const unsigned char *p)
{
    return (uint32_t) p [0] | (uint32_t) p [1] << 8 | (uint32_t) p [2] << 16
         | (uint32_t) p [3] << 24;
}

static uint64_t
s_get_u64 (const unsigned char *p)
{
    return (uint64_t) s_get_u32 (p) | (uint64_t) s_get_u32 (p + 4) << 32;
}

qv_wal_t *
qv_wal_new (qv_store_t *store, uint32_t shard)
{
    if (!store) {
        qv_err (QV_EINVAL, "WAL of shard %" PRIu32 ": no object store", shard);
        return NULL;
    }
    qv_wal_t *self = (qv_wal_t *) calloc (1, sizeof (qv_wal_t));
    if (!self) {
        qv_err (QV_ENOMEM, "out of memory creating the WAL of shard %" PRIu32, shard);
        return NULL;
    }
    self->store = store;
    self->shard = shard;
    return self;
}

void
qv_wal_destroy (qv_wal_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    free (*self_p);
    *self_p = NULL;
}

//  The key of the object at seq written at epoch: "wal/<shard>/<seq>" for epoch 0 (the
//  key every object had before fencing), "wal/<shard>/<seq>-<epoch>" otherwise.
static void
s_key (uint32_t shard, uint64_t seq, uint64_t epoch, char *out, size_t outsize)
{
    if (epoch == 0)
        snprintf (out, outsize, "wal/%" PRIu32 "/%0*" PRIu64, shard, S_SEQ_DIGITS, seq);
    else
        snprintf (out, outsize, "wal/%" PRIu32 "/%0*" PRIu64 "-%0*" PRIu64, shard,
                  S_SEQ_DIGITS, seq, S_SEQ_DIGITS, epoch);
}

//  Parses exactly 20 digits at name, no overflow. Returns 0 with *v set, or -1.
static int
s_parse_digits (const char *name, uint64_t *out)
{
    uint64_t v = 0;
    for (int i = 0; i < S_SEQ_DIGITS; i++) {
        if (name [i] < '0' || name [i] > '9')
            return -1;
        unsigned digit = (unsigned) (name [i] - '0');
        if (v > (UINT64_MAX - digit) / 10)
            return -1;
        v = v * 10 + digit;
    }
    *out = v;
    return 0;
}

//  Parses the last segment of a WAL key: 20 digits (seq; epoch 0), or 20 digits, '-'
//  and 20 digits (seq, epoch >= 1). Returns 0 with *seq and *epoch set, or -1.
static int
s_parse_name (const char *name, uint64_t *seq, uint64_t *epoch)
{
    size_t len = strlen (name);
    *epoch = 0;
    if (len == S_SEQ_DIGITS)
        return s_parse_digits (name, seq);
    if (len != S_NAME_MAX || name [S_SEQ_DIGITS] != '-'
    ||  s_parse_digits (name, seq) || s_parse_digits (name + S_SEQ_DIGITS + 1, epoch)
    ||  *epoch == 0)
        return -1;
    return 0;
}

_Static_assert (QV_WAL_OBJECT_HEAD == QV_ENVELOPE_HEADER_SIZE + S_FIELDS_SIZE,
                "the room qv_wal.h asks for is the header and the fields");

//  Fills the head of an object of n records laid out in buf (size bytes in all) and
//  seals its envelope.
static void
s_seal (unsigned char *buf, size_t size, uint32_t shard, uint64_t seq, uint64_t epoch,
        size_t n)
{
    memset (buf, 0, QV_ENVELOPE_HEADER_SIZE);
    s_put_u32 (buf + QV_ENVELOPE_HEADER_SIZE, shard);
    s_put_u64 (buf + QV_ENVELOPE_HEADER_SIZE + 4, seq);
    s_put_u64 (buf + QV_ENVELOPE_HEADER_SIZE + 12, epoch);
    s_put_u32 (buf + QV_ENVELOPE_HEADER_SIZE + 20, (uint32_t) n);
    qv_envelope_seal (buf, size, QV_ENVELOPE_WAL, S_VERSION);
}

zchunk_t *
qv_wal_encode_epoch (uint32_t shard, uint64_t seq, uint64_t epoch,
                     const qv_wal_rec_t *recs, size_t n)
{
    if (n > UINT32_MAX) {
        qv_err (QV_EINVAL, "WAL object of shard %" PRIu32 ": %zu records, at most %" PRIu32,
                shard, n, UINT32_MAX);
        return NULL;
    }
    if (n > 0 && !recs) {
        qv_err (QV_EINVAL, "WAL object of shard %" PRIu32 ": records are NULL", shard);
        return NULL;
    }
    size_t total = QV_WAL_OBJECT_HEAD;
    for (size_t i = 0; i < n; i++) {
        if (recs [i].size > UINT32_MAX || (recs [i].size > 0 && !recs [i].data)) {
            qv_err (QV_EINVAL, "WAL record %zu of shard %" PRIu32 ": size %zu is invalid",
                    i, shard, recs [i].size);
            return NULL;
        }
        if (total > SIZE_MAX - QV_WAL_RECORD_HEAD - recs [i].size) {
            qv_err (QV_EINVAL, "WAL object of shard %" PRIu32 " is too large", shard);
            return NULL;
        }
        total += QV_WAL_RECORD_HEAD + recs [i].size;
    }
    zchunk_t *chunk = zchunk_new (NULL, total);
    if (!chunk) {
        qv_err (QV_ENOMEM, "out of memory encoding a WAL object of %zu bytes", total);
        return NULL;
    }
    unsigned char head [QV_WAL_OBJECT_HEAD] = { 0 };
    zchunk_append (chunk, head, sizeof head);
    for (size_t i = 0; i < n; i++) {
        unsigned char size [QV_WAL_RECORD_HEAD];
        qv_wal_object_record (size, recs [i].size);
        zchunk_append (chunk, size, sizeof size);
        if (recs [i].size > 0)
            zchunk_append (chunk, recs [i].data, recs [i].size);
    }
    assert (zchunk_size (chunk) == total);
    s_seal (zchunk_data (chunk), total, shard, seq, epoch, n);
    return chunk;
}

int
qv_wal_object_record (void *room, size_t size)
{
    if (size > UINT32_MAX)
        return qv_err (QV_EINVAL, "WAL record of %zu bytes, at most %" PRIu32, size,
                       UINT32_MAX);
    s_put_u32 (room, (uint32_t) size);
    return 0;
}

zchunk_t *
qv_wal_encode (uint32_t shard, uint64_t seq, const qv_wal_rec_t *recs, size_t n)
{
    return qv_wal_encode_epoch (shard, seq, 0, recs, n);
}

int
qv_wal_decode_epoch (const char *name, const void *data, size_t size, uint32_t shard,
                     uint64_t seq, uint64_t *epoch_p, qv_wal_replay_fn *fn, void *arg)
{
    const unsigned char *p = (const unsigned char *) data;
    if (!name)
        name = "(unnamed)";
    if (!p && size > 0)
        return qv_err (QV_EINVAL, "WAL object %s: data is NULL", name);
    //  f: the fields then the records, body bytes in all; fields: their size
    const unsigned char *f;
    size_t body;
    size_t fields = S_V2_FIELDS;
    if (qv_envelope_is (p, size)) {
        qv_envelope_t env;
        int rc = qv_envelope_open (name, p, size, QV_ENVELOPE_WAL, S_VERSION, &env);
        if (rc)
            return rc;
        if (env.version != S_VERSION && env.version != S_V2_VERSION)
            return qv_err (QV_ECORRUPT, "WAL object %s: envelope holds format version %"
                           PRIu32 ", a WAL payload is version %d or %d", name, env.version,
                           S_V2_VERSION, S_VERSION);
        if (env.version == S_VERSION)
            fields = S_FIELDS_SIZE;
        f = env.payload;
        body = env.size;
        if (body < fields)
            return qv_err (QV_ECORRUPT, "WAL object %s is truncated: a %zu-byte payload, "
                           "a WAL payload has at least %zu", name, body, fields);
    }
    else {
        //  Version 1, written before the envelope
        if (size < S_V1_HEADER + S_V2_FIELDS + S_CRC_SIZE)
            return qv_err (QV_ECORRUPT, "WAL object %s is truncated: %zu bytes, a WAL "
                           "object has at least %d", name, size,
                           S_V1_HEADER + S_V2_FIELDS + S_CRC_SIZE);
        if (memcmp (p, S_MAGIC, S_MAGIC_SIZE) != 0)
            return qv_err (QV_ECORRUPT, "WAL object %s: bad magic, not a WAL object", name);
        uint32_t version = s_get_u32 (p + 8);
        if (version != S_V1_VERSION)
            return qv_err (QV_ECORRUPT, "WAL object %s: format version %" PRIu32
                           " is not supported (expected %d)", name, version, S_V1_VERSION);
        size_t end = size - S_CRC_SIZE;
        uint32_t stored = s_get_u32 (p + end);
        uint32_t computed = qv_crc32c (p, end);
        if (stored != computed)
            return qv_err (QV_ECORRUPT, "WAL object %s: checksum mismatch (stored %08" PRIx32
                           ", computed %08" PRIx32 "), the object is damaged or truncated",
                           name, stored, computed);
        f = p + S_V1_HEADER;
        body = end - S_V1_HEADER;
    }
    uint32_t got_shard = s_get_u32 (f);
    if (got_shard != shard)
        return qv_err (QV_ECORRUPT, "WAL object %s: belongs to shard %" PRIu32
                       ", expected shard %" PRIu32, name, got_shard, shard);
    uint64_t got_seq = s_get_u64 (f + 4);
    if (got_seq != seq)
        return qv_err (QV_ECORRUPT, "WAL object %s: holds sequence %" PRIu64
                       ", expected %" PRIu64, name, got_seq, seq);
    uint64_t epoch = fields == S_FIELDS_SIZE ? s_get_u64 (f + 12) : 0;
    if (epoch_p && *epoch_p != epoch)
        return qv_err (QV_ECORRUPT, "WAL object %s: holds writer epoch %" PRIu64
                       ", its key says %" PRIu64, name, epoch, *epoch_p);
    uint32_t count = s_get_u32 (f + fields - 4);

    //  First pass: every record lies inside the body and they fill it exactly, so
    //  that fn never sees part of a malformed object
    size_t pos = fields;
    for (uint32_t i = 0; i < count; i++) {
        if (body - pos < 4)
            return qv_err (QV_ECORRUPT, "WAL object %s: record %" PRIu32 " of %" PRIu32
                           " starts past the end of the object", name, i, count);
        uint32_t rec_size = s_get_u32 (f + pos);
        pos += 4;
        if (rec_size > body - pos)
            return qv_err (QV_ECORRUPT, "WAL object %s: record %" PRIu32 " of %" PRIu32
                           " has size %" PRIu32 ", only %zu bytes remain", name, i, count,
                           rec_size, body - pos);
        pos += rec_size;
    }
    if (pos != body)
        return qv_err (QV_ECORRUPT, "WAL object %s: %zu bytes after the last of %" PRIu32
                       " records", name, body - pos, count);
    if (!fn)
        return 0;
    pos = fields;
    for (uint32_t i = 0; i < count; i++) {
        uint32_t rec_size = s_get_u32 (f + pos);
        pos += 4;
        int rc = fn (arg, seq, i, f + pos, rec_size);
        if (rc)
            return rc;
        pos += rec_size;
    }
    return 0;
}

int
qv_wal_decode (const char *name, const void *data, size_t size, uint32_t shard,
               uint64_t seq, qv_wal_replay_fn *fn, void *arg)
{
    return qv_wal_decode_epoch (name, data, size, shard, seq, NULL, fn, arg);
}

//  The listing prefix of this shard's objects, "wal/<shard>/"; returns its length.
static size_t
s_prefix (qv_wal_t *self, char *out, size_t outsize)
{
    snprintf (out, outsize, "wal/%" PRIu32 "/", self->shard);
    return strlen (out);
}

//  Lists this shard's WAL objects (one list call per page, no read) into *keys_p (the
//  listing, owning the key strings) and *objs_p, an array of *n_p entries in (seq,
//  epoch) order. An object whose name is not a WAL name returns QV_ECORRUPT when
//  strict, and is left out otherwise.
static int
s_list (qv_wal_t *self, bool strict, zlist_t **keys_p, s_obj_t **objs_p, size_t *n_p)
{
    char prefix [32];
    size_t plen = s_prefix (self, prefix, sizeof prefix);
    zlist_t *all = NULL;
    *keys_p = NULL;
    *objs_p = NULL;
    *n_p = 0;
    int rc = qv_store_list (self->store, prefix, &all);
    if (rc)
        return rc;
    s_obj_t *objs = calloc (zlist_size (all) + 1, sizeof *objs);
    if (!objs) {
        zlist_destroy (&all);
        return qv_err (QV_ENOMEM, "out of memory listing the WAL of shard %" PRIu32, self->shard);
    }
    size_t n = 0;
    for (char *key = (char *) zlist_first (all); key; key = (char *) zlist_next (all)) {
        s_obj_t *o = &objs [n];
        if (s_parse_name (key + plen, &o->seq, &o->epoch) == 0) {
            o->key = key;
            n++;
        }
        else
        if (strict) {
            char where [1200];
            qv_store_describe (self->store, key, where, sizeof where);
            rc = qv_err (QV_ECORRUPT, "WAL of shard %" PRIu32 ": unexpected object %s "
                         "(not named by a %d-digit sequence number, or one and a %d-digit "
                         "writer epoch)", self->shard, where, S_SEQ_DIGITS, S_SEQ_DIGITS);
            break;
        }
    }
    if (rc) {
        free (objs);
        zlist_destroy (&all);
        return rc;
    }
    *keys_p = all;
    *objs_p = objs;
    *n_p = n;
    return 0;
}

//  The replay rule: marks live, in seq order, at each seq the object of the highest
//  epoch if that epoch is at least the highest epoch taken so far. Returns the highest
//  epoch of all. With log set, logs each ignored object.
static uint64_t
s_select (qv_wal_t *self, s_obj_t *objs, size_t n, bool log)
{
    uint64_t floor = 0;
    uint64_t top = 0;
    for (size_t i = 0; i < n; ) {
        size_t j = i;
        while (j < n && objs [j].seq == objs [i].seq)
            j++;
        s_obj_t *best = &objs [j - 1];  //  the listing orders one seq's epochs
        best->live = best->epoch >= floor;
        if (best->live)
            floor = best->epoch;
        for (size_t k = i; k < j; k++) {
            if (objs [k].epoch > top)
                top = objs [k].epoch;
            if (!objs [k].live && log) {
                char where [1200];
                qv_store_describe (self->store, objs [k].key, where, sizeof where);
                qv_warn ("WAL object %s of deposed writer epoch %" PRIu64 " ignored; "
                         "current epoch %" PRIu64, where, objs [k].epoch, floor);
            }
        }
        i = j;
    }
    return top;
}

//  Deletes every object below seq `below`, except the anchor: the newest object of
//  the highest epoch, when no object at or above `below` has that epoch, so that the
//  highest epoch is never forgotten.
static int
s_trim (qv_wal_t *self, s_obj_t *objs, size_t n, uint64_t below)
{
    uint64_t top = 0;
    for (size_t i = 0; i < n; i++)
        if (objs [i].epoch > top)
            top = objs [i].epoch;
    s_obj_t *anchor = NULL;
    for (size_t i = 0; i < n; i++)
        if (objs [i].epoch == top)
            anchor = &objs [i];     //  the last wins
    if (top == 0 || (anchor && anchor->seq >= below))
        anchor = NULL;              //  no epoch to keep, or it stays in the log anyway
    for (size_t i = 0; i < n && objs [i].seq < below; i++) {
        if (&objs [i] == anchor)
            continue;
        int rc = qv_store_delete (self->store, objs [i].key);
        if (rc)
            return rc;
    }
    return 0;
}

//  True (with a warning naming it) if a missing or unreadable object at seq gap is
//  a torn tail: the last object listed, last, lies within QV_WAL_WINDOW of it, so the
//  gap and everything after it can be one window of appends in flight when the writer
//  stopped, none of them acknowledged (acknowledgements go out in log order). A gap
//  at the first seq asked for (from) counts only for the writer (a writable store),
//  whose from is its checkpoint: a reader's from is where it got to, and a gap there
//  is as likely the writer's truncation past it (QV_ECORRUPT tells it it fell behind).
static bool
s_torn_tail (qv_wal_t *self, uint64_t from, uint64_t gap, uint64_t last,
             const char *next_found)
{
    if (last < gap || last - gap >= QV_WAL_WINDOW
    ||  (gap == from && qv_store_readonly (self->store)))
        return false;
    qv_warn ("WAL of shard %" PRIu32 ": the log ends at sequence %" PRIu64 " (missing or "
             "unreadable; next object found %s): a torn tail of appends in flight, never "
             "acknowledged; objects from %" PRIu64 " to %" PRIu64 " are ignored%s",
             self->shard, gap, next_found, gap, last,
             qv_store_readonly (self->store) ? "" : " and deleted");
    return true;
}

//  Deletes every listed object at or after seq from (a torn tail), the highest first.
static int
s_drop_tail (qv_wal_t *self, s_obj_t *objs, size_t n, uint64_t from)
{
    for (size_t i = n; i-- > 0 && objs [i].seq >= from; ) {
        int rc = qv_store_delete (self->store, objs [i].key);
        if (rc)
            return rc;
    }
    return 0;
}

int
qv_wal_open (qv_wal_t *self, uint64_t checkpoint, qv_wal_replay_fn *fn, void *arg)
{
    assert (self);
    self->opened = false;
    zlist_t *keys = NULL;
    s_obj_t *objs = NULL;
    size_t n = 0;
    void *data = NULL;
    int rc = s_list (self, true, &keys, &objs, &n);
    if (rc)
        return rc;
    uint64_t top = s_select (self, objs, n, true);

    //  Replay objects at or above the checkpoint, in order, with no gap
    uint64_t next = checkpoint;
    bool below_seen = false;
    uint64_t below_max = 0;
    bool torn = false;              //  the log ends at a gap in its last window
    s_obj_t *last = NULL;           //  the newest live object
    for (size_t i = 0; i < n; i++)
        if (objs [i].live)
            last = &objs [i];
    for (size_t i = 0; i < n; i++) {
        s_obj_t *o = &objs [i];
        if (!o->live)
            continue;
        uint64_t seq = o->seq;
        if (seq < checkpoint) {
            below_seen = true;
            below_max = seq;        //  ascending, so the last is the highest
            continue;
        }
        char where [1200];
        qv_store_describe (self->store, o->key, where, sizeof where);
        if (seq != next && s_torn_tail (self, checkpoint, next, last->seq, where)) {
            torn = true;
            break;
        }
        if (seq != next) {
            char missing [1200];
            char missing_key [96];
            s_key (self->shard, next, 0, missing_key, sizeof missing_key);
            qv_store_describe (self->store, missing_key, missing, sizeof missing);
            rc = qv_err (QV_ECORRUPT, "WAL of shard %" PRIu32 ": %s is missing (sequence "
                         "%" PRIu64 "; checkpoint %" PRIu64 ", next object found %s)",
                         self->shard, missing, next, checkpoint, where);
            goto cleanup;
        }
        size_t size = 0;
        rc = qv_store_get (self->store, o->key, &data, &size);
        if (rc == QV_ENOTFOUND && s_torn_tail (self, checkpoint, seq, last->seq, where)) {
            //  Listed but not readable as a complete object: an append of the last
            //  window was interrupted (an S3 server whose PUT is not atomic). It was
            //  never acknowledged, nor was anything after it: the log ends before it.
            qv_warn ("WAL of shard %" PRIu32 ": %s", self->shard, qv_err_msg ());
            qv_err_clear ();
            rc = 0;
            torn = true;
            break;
        }
        if (rc)
            goto cleanup;
        uint64_t epoch = o->epoch;
        rc = qv_wal_decode_epoch (where, data, size, self->shard, seq, &epoch, fn, arg);
        free (data);
        data = NULL;
        if (rc)
            goto cleanup;
        if (seq == UINT64_MAX) {
            rc = qv_err (QV_ECORRUPT, "WAL object %s: sequence numbers are exhausted", where);
            goto cleanup;
        }
        next = seq + 1;
    }
    //  Never reuse a number that was written: with no object at or above the
    //  checkpoint, next is max (checkpoint, 1 + highest seen). Objects below the
    //  checkpoint are all < checkpoint today, so this only guards the rule.
    if (below_seen && below_max >= next)
        next = below_max + 1;

    //  Objects below the checkpoint are covered by flushed segments, and a torn
    //  tail's objects were never acknowledged (a reader of a read-only store leaves
    //  both to the writer, and stops at the gap)
    rc = qv_store_readonly (self->store) ? 0 : s_trim (self, objs, n, checkpoint);
    if (rc == 0 && torn && !qv_store_readonly (self->store))
        rc = s_drop_tail (self, objs, n, next);
    if (rc)
        goto cleanup;
    self->next_seq = next;
    self->confirmed = next;
    self->dirty = false;
    self->max_epoch = top;
    self->epoch = top;
    self->fenced = false;
    self->pending = 0;
    self->deposed [0] = 0;
    self->opened = true;
cleanup:
    free (data);
    free (objs);
    zlist_destroy (&keys);
    return rc;
}

//  Writes the sealed object of n records at seq and epoch.
static int
s_put_bytes (qv_wal_t *self, uint64_t seq, uint64_t epoch, const void *object, size_t size,
             size_t n)
{
    char key [96];
    s_key (self->shard, seq, epoch, key, sizeof key);
    int rc = qv_store_put (self->store, key, object, size);
    if (rc == 0 && n)
        qv_hist_record (QV_HIST_WAL_COMMIT_BYTES, (double) size);
    return rc;
}

//  Writes one object of recs at seq and epoch (what qv_wal_put does).
static int
s_put_at (qv_wal_t *self, uint64_t seq, uint64_t epoch, const qv_wal_rec_t *recs, size_t n)
{
    zchunk_t *chunk = qv_wal_encode_epoch (self->shard, seq, epoch, recs, n);
    if (!chunk)
        return QV_EINVAL;           //  recorded by qv_wal_encode_epoch
    int rc = s_put_bytes (self, seq, epoch, zchunk_data (chunk), zchunk_size (chunk), n);
    zchunk_destroy (&chunk);
    return rc;
}

//  Writes one object of recs at the next seq and this writer's epoch.
static int
s_put_next (qv_wal_t *self, const qv_wal_rec_t *recs, size_t n)
{
    if (self->next_seq == UINT64_MAX)
        return qv_err (QV_ELIMIT, "WAL of shard %" PRIu32 ": sequence numbers are exhausted",
                       self->shard);
    return s_put_at (self, self->next_seq, self->epoch, recs, n);
}

//  Writes the fence object of epoch self->pending; on success the log is fenced.
static int
s_fence_now (qv_wal_t *self)
{
    uint64_t was = self->epoch;
    self->epoch = self->pending;
    int rc = s_put_next (self, NULL, 0);
    if (rc) {
        self->epoch = was;
        return rc;
    }
    qv_info ("WAL of shard %" PRIu32 ": this server writes as epoch %" PRIu64 " (fence "
             "object at sequence %" PRIu64 "; objects of lower epochs written after it "
             "are ignored)", self->shard, self->epoch, self->next_seq);
    self->next_seq++;
    self->confirmed = self->next_seq;
    self->max_epoch = self->epoch;
    self->pending = 0;
    self->fenced = true;
    return 0;
}

int
qv_wal_fence (qv_wal_t *self, uint64_t min_epoch)
{
    assert (self);
    if (!self->opened)
        return qv_err (QV_EINVAL, "WAL of shard %" PRIu32 ": qv_wal_open must succeed "
                       "before fencing (it finds the highest epoch)", self->shard);
    if (self->max_epoch == UINT64_MAX)
        return qv_err (QV_ELIMIT, "WAL of shard %" PRIu32 ": writer epochs are exhausted",
                       self->shard);
    uint64_t epoch = self->max_epoch + 1;
    if (min_epoch > epoch)
        epoch = min_epoch;
    self->pending = epoch;
    return s_fence_now (self);
}

uint64_t
qv_wal_epoch (qv_wal_t *self)
{
    assert (self);
    return self->pending ? self->pending : self->epoch;
}

int
qv_wal_top_epoch (qv_wal_t *self, uint64_t *epoch_p)
{
    assert (self);
    zlist_t *keys = NULL;
    s_obj_t *objs = NULL;
    size_t n = 0;
    *epoch_p = 0;
    int rc = s_list (self, false, &keys, &objs, &n);
    if (rc == 0)
        *epoch_p = s_select (self, objs, n, false);
    free (objs);
    zlist_destroy (&keys);
    return rc;
}

//  Deletes the objects a failed window may have left, [dirty_from, dirty_to) at this
//  writer's epoch, the highest first; then appends continue at dirty_from.
static int
s_clean (qv_wal_t *self)
{
    while (self->dirty_to > self->dirty_from) {
        char key [96];
        s_key (self->shard, self->dirty_to - 1, self->epoch, key, sizeof key);
        int rc = qv_store_delete (self->store, key);
        if (rc)
            return rc;
        self->dirty_to--;
    }
    self->dirty = false;
    return 0;
}

int
qv_wal_reserve (qv_wal_t *self, uint64_t *seq_p, uint64_t *epoch_p)
{
    assert (self);
    if (!self->opened)
        return qv_err (QV_EINVAL, "WAL of shard %" PRIu32 ": qv_wal_open must succeed "
                       "before appending (it finds where the log ends)", self->shard);
    if (self->deposed [0])
        return qv_err (QV_EUNAVAIL, "%s", self->deposed);
    if (self->dirty && self->confirmed != self->next_seq)
        return qv_err (QV_EINVAL, "WAL of shard %" PRIu32 ": a put failed; the window "
                       "must drain (qv_wal_abort) before the next append", self->shard);
    int rc = self->dirty ? s_clean (self) : 0;
    if (rc == 0 && self->pending)
        rc = s_fence_now (self);
    if (rc)
        return rc;
    if (self->next_seq == UINT64_MAX)
        return qv_err (QV_ELIMIT, "WAL of shard %" PRIu32 ": sequence numbers are exhausted",
                       self->shard);
    if (self->next_seq - self->confirmed >= QV_WAL_WINDOW)
        return qv_err (QV_EINVAL, "WAL of shard %" PRIu32 ": %d appends in flight, the "
                       "most the window takes", self->shard, QV_WAL_WINDOW);
    *seq_p = self->next_seq++;
    *epoch_p = self->epoch;
    return 0;
}

int
qv_wal_put (qv_wal_t *self, uint64_t seq, uint64_t epoch, const qv_wal_rec_t *recs, size_t n)
{
    assert (self);
    return s_put_at (self, seq, epoch, recs, n);
}

int
qv_wal_put_object (qv_wal_t *self, uint64_t seq, uint64_t epoch, void *object, size_t size,
                   size_t n)
{
    assert (self);
    //  The records must fill the buffer exactly: a wrong layout is refused, never logged
    unsigned char *p = object;
    size_t at = QV_WAL_OBJECT_HEAD, i = 0;
    while (p && i < n && at <= size && size - at >= QV_WAL_RECORD_HEAD) {
        at += QV_WAL_RECORD_HEAD + s_get_u32 (p + at);
        i++;
    }
    if (!p || size < QV_WAL_OBJECT_HEAD || n > UINT32_MAX || i != n || at != size)
        return qv_err (QV_EINVAL, "WAL object %" PRIu64 " of shard %" PRIu32 " built in place: "
                       "%zu records do not fill its %zu bytes", seq, self->shard, n, size);
    s_seal (p, size, self->shard, seq, epoch, n);
    return s_put_bytes (self, seq, epoch, p, size, n);
}

int
qv_wal_confirm (qv_wal_t *self, uint64_t seq)
{
    assert (self);
    assert (seq >= self->confirmed && seq < self->next_seq);
    if (self->deposed [0])
        return qv_err (QV_EUNAVAIL, "%s", self->deposed);
    //  A deposed writer never acknowledges: its object may be in the store, but the
    //  new writer's fence makes every reader ignore it. One check after every put up
    //  to seq completed covers them all.
    int rc = self->fenced ? qv_store_lock_check (self->store) : 0;
    if (rc == QV_EUNAVAIL) {
        snprintf (self->deposed, sizeof self->deposed, "this server lost the write lock "
                  "of shard %" PRIu32 " (it wrote as epoch %" PRIu64 "): %s; it accepts no "
                  "more writes", self->shard, self->epoch, qv_err_msg ());
        qv_error ("WAL of shard %" PRIu32 ": %s", self->shard, self->deposed);
        return qv_err (QV_EUNAVAIL, "%s", self->deposed);
    }
    if (rc)
        return rc;                  //  not told: unacknowledged (the caller aborts)
    self->confirmed = seq + 1;
    return 0;
}

void
qv_wal_abort (qv_wal_t *self, uint64_t seq)
{
    assert (self);
    assert (seq >= self->confirmed && seq < self->next_seq);
    if (!self->dirty || seq < self->dirty_from)
        self->dirty_from = seq;
    if (!self->dirty || self->next_seq > self->dirty_to)
        self->dirty_to = self->next_seq;
    self->dirty = true;
    self->next_seq = seq;
    self->confirmed = seq;
}

int
qv_wal_append (qv_wal_t *self, const qv_wal_rec_t *recs, size_t n, uint64_t *seq_p)
{
    assert (self);
    int64_t started = qv_clock_usec ();
    uint64_t seq, epoch;
    int rc = qv_wal_reserve (self, &seq, &epoch);
    if (rc)
        return rc;
    rc = qv_wal_put (self, seq, epoch, recs, n);
    if (rc == 0)
        rc = qv_wal_confirm (self, seq);
    if (rc) {
        if (!self->deposed [0])
            qv_wal_abort (self, seq);
        return rc;
    }
    if (seq_p)
        *seq_p = seq;
    qv_hist_record (QV_HIST_WAL_COMMIT_SECONDS, (qv_clock_usec () - started) / 1e6);
    qv_hist_record (QV_HIST_WAL_COMMIT_RECORDS, (double) n);
    return 0;
}

int
qv_wal_truncate (qv_wal_t *self, uint64_t below)
{
    assert (self);
    zlist_t *keys = NULL;
    s_obj_t *objs = NULL;
    size_t n = 0;
    int rc = s_list (self, false, &keys, &objs, &n);
    if (rc)
        return rc;
    rc = s_trim (self, objs, n, below);
    free (objs);
    zlist_destroy (&keys);
    //  A checkpoint past the end of the log: appends continue from it, so the next
    //  open (from that checkpoint) finds no gap
    if (rc == 0 && self->opened && below > self->next_seq
    &&  self->confirmed == self->next_seq && !self->dirty)
        self->next_seq = self->confirmed = below;
    return rc;
}

uint64_t
qv_wal_next_seq (qv_wal_t *self)
{
    assert (self);
    return self->next_seq;
}
