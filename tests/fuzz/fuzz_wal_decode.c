//  libFuzzer harness for qv_wal_decode: any input returns 0, QV_ECORRUPT or QV_EINVAL,
//  never crashes, every record handed to the callback lies inside the input, and the
//  records of an object that decodes encode (qv_wal_encode) to the same object: the
//  same bytes for an envelope, the same fields and records behind the envelope for a
//  version 1 object.
//
//  Input: one mode byte, then the object, in either format: the stored-object
//  envelope (starts "QVOB", what qv_wal_encode writes) or version 1 (before the
//  envelope, "QVWAL", with a CRC32C trailer); envelope version 3 carries the
//  writer's epoch, version 2 not. Mode bit 1 set: the decoder checks the epoch
//  against the one a key names (bit 2 set too: a wrong one, which must fail). Mode
//  bit 0 set: the harness makes the
//  checksums right so the fuzzer gets past them to the structural checks: it reseals
//  an envelope (qv_fuzz_reseal: length and CRCs; kind, version and flags kept, so
//  those checks are reached too) and rewrites a version 1 object's trailing CRC32C.
//  The expected shard and seq are taken from the object's own fields, so those
//  checks pass too and the record walk is reached.
//
//  Seeds (QV_FUZZ_SEEDS=DIR, see qv_fuzz_seeds.h): WAL objects written by
//  qv_wal_encode of records written by qv_record_write, as the segment manager logs
//  them: DDL (collection, partition, index), inserts and upserts from rows decoded by
//  the server's insert path, deletes by int and varchar keys, several records in one
//  group commit, an object with no record, and a fenced writer's objects (epoch 4's
//  fence, an insert at the largest epoch); v1-*: the same written before the
//  envelope, kept to fuzz the version 1 reader.
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "qv_crc.h"
#include "qv_rc.h"
#include "qv_record.h"
#include "qv_wal.h"
#include "qv_fuzz_seeds.h"

typedef struct {
    qv_wal_rec_t recs [8];
    size_t n;
} s_group_t;

//  Appends rec, encoded, to the group, and destroys rec.
static void
s_add (s_group_t *group, qv_record_t **rec_p)
{
    qv_wr_t *w = qv_wr_new ();
    qv_record_write (*rec_p, w);
    size_t size;
    void *data = qv_wr_detach (w, &size);
    qv_wr_destroy (&w);
    assert_true (group->n < 8);
    group->recs [group->n++] = (qv_wal_rec_t) { data, size };
    qv_record_destroy (rec_p);
}

static void
s_write_epoch (const char *dir, const char *name, uint32_t shard, uint64_t seq,
               uint64_t epoch, s_group_t *group)
{
    zchunk_t *chunk = qv_wal_encode_epoch (shard, seq, epoch, group->recs, group->n);
    assert_non_null (chunk);
    //  The mode byte: 1, the harness reseals the CRC after a mutation; 3, it also
    //  checks the epoch as the key names it
    uint8_t *input = malloc (zchunk_size (chunk) + 1);
    input [0] = epoch ? 3 : 1;
    memcpy (input + 1, zchunk_data (chunk), zchunk_size (chunk));
    qv_fuzz_seed_write (dir, name, input, zchunk_size (chunk) + 1, 0);
    free (input);
    zchunk_destroy (&chunk);
    for (size_t i = 0; i < group->n; i++)
        free ((void *) group->recs [i].data);
    group->n = 0;
}

static void
s_write (const char *dir, const char *name, uint32_t shard, uint64_t seq, s_group_t *group)
{
    s_write_epoch (dir, name, shard, seq, 0, group);
}

static qv_record_t *
s_record (qv_rec_type_t type, uint32_t coll_id, uint64_t ts)
{
    qv_record_t *rec = qv_record_new (type);
    assert_non_null (rec);
    rec->coll_id = coll_id;
    rec->ts = ts;
    return rec;
}

int
LLVMFuzzerInitialize (int *argc, char ***argv)
{
    (void) argc;
    (void) argv;
    const char *dir = qv_fuzz_seeds_dir ();
    if (!dir)
        return 0;
    const char *fields =
        "[{\"name\": \"id\", \"type\": \"int64\", \"primary\": true},"
        " {\"name\": \"v\", \"type\": \"float_vector\", \"dim\": 2, \"metric\": \"L2\"},"
        " {\"name\": \"tag\", \"type\": \"varchar\", \"max_length\": 16, \"nullable\": true},"
        " {\"name\": \"n\", \"type\": \"int32\", \"default\": 5},"
        " {\"name\": \"meta\", \"type\": \"json\", \"nullable\": true}]";
    qv_schema_t *schema = qv_test_schema (fields);
    s_group_t group = { .n = 0 };

    qv_record_t *rec = s_record (QV_REC_CREATE_COLLECTION, 7, 100);
    snprintf (rec->name, sizeof rec->name, "docs");
    rec->schema = qv_schema_dup (schema);
    rec->shards = 1;
    snprintf (rec->consistency, sizeof rec->consistency, "Bounded");
    rec->description = strdup ("seed collection");
    rec->ttl_seconds = 3600;
    s_add (&group, &rec);
    s_write (dir, "create-collection", 0, 1, &group);

    rec = s_record (QV_REC_INSERT, 7, 200);
    rec->seg_id = 11;
    rec->batch = qv_fuzz_batch (schema,
        "[{\"id\": 1, \"v\": [0.5, -1], \"tag\": \"tech\", \"n\": 3, \"meta\": {\"a\": 1, \"b\": [true, \"x\"]}},"
        " {\"id\": -9223372036854775808, \"v\": [0, 0], \"tag\": null, \"meta\": null},"
        " {\"id\": 3, \"v\": [1e30, -2.5], \"tag\": \"\", \"n\": -1, \"meta\": \"text\"}]");
    rec->sseq = 41;
    s_add (&group, &rec);
    s_write (dir, "insert", 0, 2, &group);

    //  A group commit: upsert, deletes, partitions and indexes in one object
    rec = s_record (QV_REC_INSERT, 7, 300);
    rec->upsert = true;
    rec->seg_id = 12;
    rec->partition = 1;
    rec->batch = qv_fuzz_batch (schema, "[{\"id\": 1, \"v\": [2, 2], \"tag\": \"é\"}]");
    s_add (&group, &rec);
    rec = s_record (QV_REC_DELETE, 7, 301);
    rec->keys.n = 3;
    rec->keys.ints = calloc (3, sizeof (int64_t));
    rec->keys.ints [0] = 3;
    rec->keys.ints [1] = INT64_MAX;
    rec->keys.ints [2] = -1;
    rec->sseq = 42;
    s_add (&group, &rec);
    rec = s_record (QV_REC_CREATE_PARTITION, 7, 302);
    snprintf (rec->name, sizeof rec->name, "p2024");
    rec->partition = 1;
    s_add (&group, &rec);
    rec = s_record (QV_REC_CREATE_INDEX, 7, 303);
    snprintf (rec->index.field, sizeof rec->index.field, "v");
    snprintf (rec->index.type, sizeof rec->index.type, "HNSW");
    rec->index.M = 8;
    rec->index.ef_construction = 64;
    s_add (&group, &rec);
    rec = s_record (QV_REC_CREATE_INDEX, 7, 304);
    snprintf (rec->index.field, sizeof rec->index.field, "tag");
    snprintf (rec->index.type, sizeof rec->index.type, "INVERTED");
    s_add (&group, &rec);
    s_write (dir, "group-commit", 0, 3, &group);

    rec = s_record (QV_REC_DELETE, 8, 400);
    rec->keys.n = 2;
    rec->keys.strs = calloc (2, sizeof (qv_bytes_t));
    rec->keys.strs [0].ptr = (uint8_t *) strdup ("doc-1");
    rec->keys.strs [0].len = 5;
    rec->keys.strs [1].ptr = malloc (1);
    rec->keys.strs [1].len = 0;
    rec->in_partition = true;
    rec->partition = 2;
    s_add (&group, &rec);
    rec = s_record (QV_REC_DROP_INDEX, 7, 401);
    snprintf (rec->index.field, sizeof rec->index.field, "v");
    s_add (&group, &rec);
    rec = s_record (QV_REC_DROP_PARTITION, 7, 402);
    snprintf (rec->name, sizeof rec->name, "p2024");
    rec->partition = 1;
    s_add (&group, &rec);
    rec = s_record (QV_REC_DROP_COLLECTION, 7, 403);
    s_add (&group, &rec);
    s_write (dir, "drops", 3, 18446744073709551614ull, &group);

    s_write (dir, "empty", 1, 7, &group);
    //  A fenced writer's objects: its fence (no record) and an insert
    s_write_epoch (dir, "fence", 0, 9, 4, &group);
    rec = s_record (QV_REC_INSERT, 7, 500);
    rec->seg_id = 13;
    rec->batch = qv_fuzz_batch (schema, "[{\"id\": 8, \"v\": [1, 2]}]");
    s_add (&group, &rec);
    s_write_epoch (dir, "epoch-insert", 0, 10, 18446744073709551615ull, &group);
    qv_schema_destroy (&schema);
    exit (0);
}

//  The records qv_wal_decode handed over, to encode them again.
typedef struct {
    unsigned sum;
    qv_wal_rec_t *recs;
    size_t n, max;
} s_seen_t;

static int
s_touch (void *arg, uint64_t seq, uint32_t index, const void *data, size_t size)
{
    (void) seq;
    s_seen_t *seen = (s_seen_t *) arg;
    const unsigned char *p = (const unsigned char *) data;
    for (size_t k = 0; k < size; k++)
        seen->sum += p [k];         //  ASan flags any byte outside the input
    if (index != seen->n)
        abort ();
    if (seen->n == seen->max) {
        seen->max = seen->max ? 2 * seen->max : 8;
        seen->recs = (qv_wal_rec_t *) realloc (seen->recs, seen->max * sizeof *seen->recs);
        if (!seen->recs)
            abort ();
    }
    seen->recs [seen->n++] = (qv_wal_rec_t) { data, size };
    return 0;
}

int
LLVMFuzzerTestOneInput (const uint8_t *input, size_t input_size)
{
    if (input_size < 1)
        return 0;
    int mode = input [0];
    size_t size = input_size - 1;
    //  An exact-size copy, so that reading one byte too far is caught
    unsigned char *buf = (unsigned char *) malloc (size ? size : 1);
    if (!buf)
        return 0;
    memcpy (buf, input + 1, size);
    bool enveloped = qv_envelope_is (buf, size);
    if ((mode & 1) && !qv_fuzz_reseal (buf, size) && size >= 4)
        qv_le_put32 (buf + size - 4, qv_crc32c (buf, size - 4));
    //  The envelope's payload version (bytes 6..7): 3 carries the writer's epoch
    bool v3 = enveloped && size >= 8 && (buf [6] | buf [7] << 8) == 3;
    size_t at = qv_fuzz_fields_at (buf, size);
    uint32_t shard = size >= at + 4 ? qv_le_get32 (buf + at) : 0;
    uint64_t seq = size >= at + 12 ? qv_le_get64 (buf + at + 4) : 0;
    uint64_t epoch = v3 && size >= at + 20 ? qv_le_get64 (buf + at + 12) : 0;
    s_seen_t seen = { 0 };
    //  Mode bit 1: check the epoch as a key would name it (half the time a wrong one)
    uint64_t expect = (mode & 4) ? epoch + 1 : epoch;
    int rc = qv_wal_decode_epoch ("fuzz", buf, size, shard, seq, (mode & 2) ? &expect : NULL,
                                  s_touch, &seen);
    if (rc != 0 && rc != QV_ECORRUPT && rc != QV_EINVAL)     //  EINVAL: newer version
        abort ();
    if (rc == 0 && (mode & 6) == 6)
        abort ();                   //  a key's wrong epoch was accepted
    if (rc == 0) {
        //  Its records encode again to the same object, in the envelope version 3: the
        //  same bytes, or an older object's fields (epoch 0 inserted after shard and
        //  seq) and records
        zchunk_t *chunk = qv_wal_encode_epoch (shard, seq, epoch, seen.recs, seen.n);
        const uint8_t *out = chunk ? zchunk_data (chunk) : NULL;
        size_t out_size = chunk ? zchunk_size (chunk) : 0;
        size_t old_end = enveloped ? size : size - 4;   //  v1: the CRC trailer
        size_t H = QV_ENVELOPE_HEADER_SIZE;
        if (!chunk || !qv_envelope_is (out, out_size)
        ||  (v3 && (out_size != size || memcmp (out, buf, size) != 0))
        ||  (!v3 && (out_size != old_end - at + H + 8
                     || memcmp (out + H, buf + at, 12) != 0
                     || qv_le_get64 (out + H + 12) != 0
                     || memcmp (out + H + 20, buf + at + 12, old_end - at - 12) != 0)))
            abort ();
        zchunk_destroy (&chunk);
    }
    free (seen.recs);
    free (buf);
    return 0;
}
