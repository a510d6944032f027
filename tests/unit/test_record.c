//  WAL records: round trip of each record type, keys from requests, an insert of an
//  unknown collection, and truncated / mutated encodings refused without a crash.
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qv_record.h"
#include "qv_test_json.h"

static const char *s_schema_json =
    "[{\"name\": \"id\", \"type\": \"int64\", \"primary\": true},"
    " {\"name\": \"v\", \"type\": \"float_vector\", \"dim\": 2, \"metric\": \"IP\"},"
    " {\"name\": \"tag\", \"type\": \"varchar\", \"nullable\": true},"
    " {\"name\": \"meta\", \"type\": \"json\", \"default\": {\"x\": 1}}]";

static qv_schema_t *s_schema;       //  collection 7's schema in these tests

static const qv_schema_t *
s_lookup (void *arg, uint32_t coll_id)
{
    (void) arg;
    return coll_id == 7 ? s_schema : NULL;
}

static int
s_setup (void **state)
{
    (void) state;
    qv_doc_t *doc = qv_test_doc (s_schema_json);
    int rc;
    s_schema = qv_schema_parse (qv_doc_root (doc), &rc);
    qv_doc_destroy (&doc);
    return s_schema ? 0 : -1;
}

static int
s_teardown (void **state)
{
    (void) state;
    qv_schema_destroy (&s_schema);
    return 0;
}

static void *
s_encode (const qv_record_t *rec, size_t *size)
{
    qv_wr_t *w = qv_wr_new ();
    qv_record_write (rec, w);
    void *data = qv_wr_detach (w, size);
    qv_wr_destroy (&w);
    return data;
}

//  Encodes rec, decodes it, checks the decoded record encodes to the same bytes.
static qv_record_t *
s_round_trip (const qv_record_t *rec)
{
    size_t size, size2;
    void *data = s_encode (rec, &size);
    qv_record_t *out = NULL;
    int rc = qv_record_read (data, size, s_lookup, NULL, &out);
    if (rc)
        print_error ("%s: %s\n", qv_rc_name (rc), qv_err_msg ());
    assert_int_equal (rc, 0);
    assert_non_null (out);
    void *again = s_encode (out, &size2);
    assert_int_equal (size, size2);
    assert_memory_equal (data, again, size);
    free (data);
    free (again);
    return out;
}

static qv_record_t *
s_create_record (void)
{
    qv_record_t *rec = qv_record_new (QV_REC_CREATE_COLLECTION);
    rec->ts = 123456789ull << 18;
    rec->coll_id = 7;
    strcpy (rec->name, "docs");
    rec->schema = qv_schema_dup (s_schema);
    rec->shards = 4;
    strcpy (rec->consistency, "bounded");
    rec->description = strdup ("my docs");
    rec->ttl_seconds = 86400;
    return rec;
}

static qv_batch_t *
s_batch (const char *json)
{
    qv_doc_t *doc = qv_test_doc (json);
    qv_batch_t *b = NULL;
    int rc = qv_batch_from_request (s_schema, qv_val_get (qv_doc_root (doc), "rows"), NULL, 100, &b);
    qv_doc_destroy (&doc);
    assert_int_equal (rc, 0);
    return b;
}

static qv_record_t *
s_insert_record (void)
{
    qv_record_t *rec = qv_record_new (QV_REC_INSERT);
    rec->ts = UINT64_MAX - 1;
    rec->coll_id = 7;
    rec->upsert = true;
    rec->shard = 3;
    rec->seg_id = 1ull << 40;
    rec->batch = s_batch ("{\"rows\": [{\"id\": 1, \"v\": [1, 2], \"tag\": \"a\"},"
                          " {\"id\": -2, \"v\": f32[3, 4], \"meta\": [true]}, {\"id\": 3, \"v\": [0, 0], \"tag\": null}]}");
    return rec;
}

static void
test_create_and_drop (void **state)
{
    (void) state;
    qv_record_t *rec = s_create_record ();
    qv_record_t *out = s_round_trip (rec);
    assert_int_equal (out->type, QV_REC_CREATE_COLLECTION);
    assert_true (out->ts == rec->ts);
    assert_int_equal (out->coll_id, 7);
    assert_string_equal (out->name, "docs");
    assert_int_equal (out->shards, 4);
    assert_string_equal (out->consistency, "bounded");
    assert_string_equal (out->description, "my docs");
    assert_true (out->ttl_seconds == 86400);
    assert_non_null (out->schema);
    assert_int_equal (out->schema->nfields, 4);
    assert_int_equal (out->schema->fields [1].metric, QV_METRIC_IP);
    assert_int_equal (out->schema->fields [3].default_size, s_schema->fields [3].default_size);
    qv_record_destroy (&out);
    //  No description is written as ""
    free (rec->description);
    rec->description = NULL;
    size_t size;
    void *data = s_encode (rec, &size);
    assert_int_equal (qv_record_read (data, size, s_lookup, NULL, &out), 0);
    assert_string_equal (out->description, "");
    free (data);
    qv_record_destroy (&out);
    qv_record_destroy (&rec);
    assert_null (rec);
    qv_record_destroy (&rec);

    rec = qv_record_new (QV_REC_DROP_COLLECTION);
    rec->ts = 5;
    rec->coll_id = 99;              //  drop needs no schema
    out = s_round_trip (rec);
    assert_int_equal (out->type, QV_REC_DROP_COLLECTION);
    assert_int_equal (out->coll_id, 99);
    assert_true (out->ts == 5);
    qv_record_destroy (&out);
    qv_record_destroy (&rec);
}

static void
test_insert (void **state)
{
    (void) state;
    qv_record_t *rec = s_insert_record ();
    qv_record_t *out = s_round_trip (rec);
    assert_int_equal (out->type, QV_REC_INSERT);
    assert_true (out->ts == UINT64_MAX - 1);
    assert_true (out->upsert);
    assert_int_equal (out->shard, 3);
    assert_true (out->seg_id == 1ull << 40);
    assert_non_null (out->batch);
    assert_int_equal (out->batch->n, 3);
    assert_true (qv_col_i64 (&out->batch->cols [0], 1) == -2);
    const float *v = qv_col_vec (&s_schema->fields [1], &out->batch->cols [1], 1);
    assert_true (v [0] == 3 && v [1] == 4);
    assert_int_equal (out->batch->cols [2].var [0].len, 1);
    assert_memory_equal (out->batch->cols [2].var [0].ptr, "a", 1);
    assert_int_equal (out->batch->cols [2].valid [2], 0);
    qv_record_destroy (&out);

    //  An insert into a collection the lookup does not know (dropped since)
    rec->coll_id = 8;
    size_t size;
    void *data = s_encode (rec, &size);
    int rc = qv_record_read (data, size, s_lookup, NULL, &out);
    assert_int_equal (rc, QV_ENOTFOUND);
    assert_non_null (out);
    assert_null (out->batch);
    assert_int_equal (out->coll_id, 8);
    assert_int_equal (out->type, QV_REC_INSERT);
    qv_record_destroy (&out);
    free (data);
    qv_record_destroy (&rec);
}

static void
test_delete_keys (void **state)
{
    (void) state;
    qv_field_t *pk_int = &s_schema->fields [0];
    qv_field_t pk_str = *pk_int;
    pk_str.type = QV_VARCHAR;

    qv_doc_t *doc = qv_test_doc ("[1, -9223372036854775808, 9223372036854775807, 0]");
    qv_record_t *rec = qv_record_new (QV_REC_DELETE);
    rec->ts = 77;
    rec->coll_id = 7;
    assert_int_equal (qv_keys_from_request (pk_int, qv_doc_root (doc), 4, &rec->keys), 0);
    qv_doc_destroy (&doc);
    qv_record_t *out = s_round_trip (rec);
    assert_int_equal (out->keys.n, 4);
    assert_non_null (out->keys.ints);
    assert_null (out->keys.strs);
    assert_true (out->keys.ints [1] == INT64_MIN);
    assert_true (out->keys.ints [2] == INT64_MAX);
    qv_record_destroy (&out);
    qv_record_destroy (&rec);

    doc = qv_test_doc ("[\"a\", \"\", \"ключ\"]");
    rec = qv_record_new (QV_REC_DELETE);
    rec->coll_id = 12345;           //  deletes decode without a schema
    assert_int_equal (qv_keys_from_request (&pk_str, qv_doc_root (doc), 3, &rec->keys), 0);
    qv_doc_destroy (&doc);
    out = s_round_trip (rec);
    assert_int_equal (out->keys.n, 3);
    assert_non_null (out->keys.strs);
    assert_int_equal (out->keys.strs [1].len, 0);
    assert_int_equal (out->keys.strs [2].len, strlen ("ключ"));
    assert_memory_equal (out->keys.strs [2].ptr, "ключ", strlen ("ключ"));
    qv_record_destroy (&out);
    qv_record_destroy (&rec);

    //  An empty key list round-trips
    doc = qv_test_doc ("[]");
    rec = qv_record_new (QV_REC_DELETE);
    assert_int_equal (qv_keys_from_request (pk_int, qv_doc_root (doc), 3, &rec->keys), 0);
    qv_doc_destroy (&doc);
    out = s_round_trip (rec);
    assert_int_equal (out->keys.n, 0);
    qv_record_destroy (&out);
    qv_record_destroy (&rec);

    //  Refusals
    qv_keys_t keys;
    const struct { const char *json; const qv_field_t *pk; uint32_t max; int rc; } bad [] = {
        { "[1, \"2\"]", pk_int, 10, QV_EPROTO },
        { "[1, 1.5]", pk_int, 10, QV_EPROTO },
        { "[18446744073709551615]", pk_int, 10, QV_EPROTO },
        { "[\"a\", 2]", &pk_str, 10, QV_EPROTO },
        { "{\"a\": 1}", pk_int, 10, QV_EPROTO },
        { "5", &pk_str, 10, QV_EPROTO },
        { "[1, 2, 3]", pk_int, 2, QV_ELIMIT },
        { "[\"a\", \"b\", \"c\"]", &pk_str, 2, QV_ELIMIT },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad [0]; i++) {
        doc = qv_test_doc (bad [i].json);
        assert_int_equal (qv_keys_from_request (bad [i].pk, qv_doc_root (doc), bad [i].max, &keys),
                          bad [i].rc);
        assert_null (keys.ints);
        assert_null (keys.strs);
        qv_keys_free (&keys);
        qv_doc_destroy (&doc);
    }
}

//  Partitions: create / drop partition records; the partition of an insert and of a
//  delete, partition-key segments and num_partitions round trip; records without
//  them encode exactly as before partitions existed (no new keys) and read as
//  partition 0, so WALs written before read unchanged.
static void
test_partitions (void **state)
{
    (void) state;
    for (int t = QV_REC_CREATE_PARTITION; t <= QV_REC_DROP_PARTITION; t++) {
        qv_record_t *rec = qv_record_new ((qv_rec_type_t) t);
        rec->ts = 99;
        rec->coll_id = 7;
        rec->partition = 1023;
        rec->in_partition = true;
        strcpy (rec->name, "p_2024");
        qv_record_t *out = s_round_trip (rec);
        assert_int_equal (out->type, t);
        assert_int_equal (out->partition, 1023);
        assert_string_equal (out->name, "p_2024");
        qv_record_destroy (&out);
        qv_record_destroy (&rec);
    }
    //  An insert with its partition, then with partition-key segments
    qv_record_t *rec = s_insert_record ();
    size_t plain_size;
    void *plain = s_encode (rec, &plain_size);
    qv_record_t *out = s_round_trip (rec);
    assert_int_equal (out->partition, 0);
    assert_int_equal (out->npsegs, 0);
    qv_record_destroy (&out);
    rec->partition = 5;
    out = s_round_trip (rec);
    assert_int_equal (out->partition, 5);
    qv_record_destroy (&out);
    rec->partition = 0;
    rec->npsegs = 2;
    rec->psegs = calloc (2, sizeof (qv_pseg_t));
    rec->psegs [0] = (qv_pseg_t) { 3, 1ull << 40 };
    rec->psegs [1] = (qv_pseg_t) { 15, 17 };
    out = s_round_trip (rec);
    assert_int_equal (out->npsegs, 2);
    assert_int_equal (out->psegs [0].partition, 3);
    assert_true (out->psegs [0].seg_id == 1ull << 40);
    assert_int_equal (out->psegs [1].partition, 15);
    assert_true (out->psegs [1].seg_id == 17);
    qv_record_destroy (&out);
    qv_record_destroy (&rec);
    //  Without a partition the map has no key more than before ("p", "ps")
    int rc;
    qv_doc_t *doc = qv_doc_parse (plain, plain_size, SIZE_MAX, &rc);
    assert_non_null (doc);
    assert_null (qv_val_get (qv_doc_root (doc), "p"));
    assert_null (qv_val_get (qv_doc_root (doc), "ps"));
    assert_int_equal (qv_val_len (qv_doc_root (doc)), 7);
    qv_doc_destroy (&doc);
    free (plain);

    //  A delete restricted to a partition (even `_default`, id 0) vs. one that is not
    rec = qv_record_new (QV_REC_DELETE);
    rec->coll_id = 7;
    rec->keys.n = 1;
    rec->keys.ints = malloc (8);
    rec->keys.ints [0] = 42;
    out = s_round_trip (rec);
    assert_false (out->in_partition);
    qv_record_destroy (&out);
    rec->in_partition = true;
    out = s_round_trip (rec);
    assert_true (out->in_partition);
    assert_int_equal (out->partition, 0);
    qv_record_destroy (&out);
    qv_record_destroy (&rec);

    //  num_partitions of a create
    rec = s_create_record ();
    out = s_round_trip (rec);
    assert_int_equal (out->num_partitions, 0);
    qv_record_destroy (&out);
    rec->num_partitions = 64;
    out = s_round_trip (rec);
    assert_int_equal (out->num_partitions, 64);
    qv_record_destroy (&out);
    qv_record_destroy (&rec);
}

//  A seal names its segment; it needs no schema (its collection may be gone).
static void
test_seal (void **state)
{
    (void) state;
    qv_record_t *rec = qv_record_new (QV_REC_SEAL);
    rec->ts = 12345;
    rec->coll_id = 99;              //  unknown to s_lookup
    rec->seg_id = (1ull << 40) + 3;
    qv_record_t *out = s_round_trip (rec);
    assert_int_equal (out->type, QV_REC_SEAL);
    assert_int_equal (out->ts, 12345);
    assert_int_equal (out->coll_id, 99);
    assert_true (out->seg_id == (1ull << 40) + 3);
    assert_null (out->batch);
    qv_record_destroy (&out);
    qv_record_destroy (&rec);
}

//  An alter carries exactly the properties it changes; one with none does not decode.
static void
test_alter (void **state)
{
    (void) state;
    for (uint32_t alters = 1; alters <= 7; alters++) {
        qv_record_t *rec = qv_record_new (QV_REC_ALTER_COLLECTION);
        rec->ts = 777;
        rec->coll_id = 99;
        rec->alters = alters;
        rec->ttl_seconds = (alters & QV_ALTER_TTL) ? 86400 : 0;
        if (alters & QV_ALTER_CONSISTENCY)
            snprintf (rec->consistency, sizeof rec->consistency, "bounded");
        if (alters & QV_ALTER_DESCRIPTION)
            rec->description = strdup ("");     //  an empty description is a change too
        qv_record_t *out = s_round_trip (rec);
        assert_int_equal (out->type, QV_REC_ALTER_COLLECTION);
        assert_int_equal (out->ts, 777);
        assert_int_equal (out->coll_id, 99);
        assert_int_equal (out->alters, alters);
        assert_int_equal (out->ttl_seconds, rec->ttl_seconds);
        assert_string_equal (out->consistency, rec->consistency);
        if (alters & QV_ALTER_DESCRIPTION)
            assert_string_equal (out->description, "");
        else
            assert_null (out->description);
        qv_record_destroy (&out);
        qv_record_destroy (&rec);
    }
    //  {"t": 10, "ts": 1, "c": 1} alone
    const uint8_t bare [] = { 0x83, 0xa1, 't', 10, 0xa2, 't', 's', 1, 0xa1, 'c', 1 };
    qv_record_t *out = NULL;
    assert_int_equal (qv_record_read (bare, sizeof bare, s_lookup, NULL, &out), QV_ECORRUPT);
    assert_null (out);
}

//  A user change carries its action, names and hash; an unknown action does not decode.
static void
test_user (void **state)
{
    (void) state;
    qv_record_t *rec = qv_record_new (QV_REC_USER);
    rec->ts = 778;
    rec->user = calloc (1, sizeof *rec->user);
    rec->user->action = QV_PRIV_GRANT;
    snprintf (rec->user->user, sizeof rec->user->user, "alice");
    snprintf (rec->user->role, sizeof rec->user->role, "searcher");
    snprintf (rec->user->collection, sizeof rec->user->collection, "*");
    snprintf (rec->user->privilege, sizeof rec->user->privilege, "Search");
    rec->user->hash = strdup ("$argon2id$v=19$m=65536,t=2,p=1$c2FsdA$aGFzaA");
    snprintf (rec->user->grantor, sizeof rec->user->grantor, "root");
    qv_record_t *out = s_round_trip (rec);
    assert_int_equal (out->type, QV_REC_USER);
    assert_int_equal (out->ts, 778);
    assert_int_equal (out->coll_id, 0);
    assert_non_null (out->user);
    assert_int_equal (out->user->action, QV_PRIV_GRANT);
    assert_string_equal (out->user->user, "alice");
    assert_string_equal (out->user->role, "searcher");
    assert_string_equal (out->user->collection, "*");
    assert_string_equal (out->user->privilege, "Search");
    assert_string_equal (out->user->hash, rec->user->hash);
    assert_string_equal (out->user->grantor, "root");
    qv_record_destroy (&out);
    //  Without a grantor (and in records written before grantors were kept): ""
    rec->user->grantor [0] = 0;
    out = s_round_trip (rec);
    assert_string_equal (out->user->grantor, "");
    qv_record_destroy (&out);
    //  Without a hash: NULL again
    free (rec->user->hash);
    rec->user->hash = NULL;
    rec->user->action = QV_ROLE_DROP;
    out = s_round_trip (rec);
    assert_null (out->user->hash);
    assert_int_equal (out->user->action, QV_ROLE_DROP);
    qv_record_destroy (&out);
    qv_record_destroy (&rec);
    //  {"t": 12, "ts": 1, "c": 0, "a": 99, ...}: no such action
    qv_wr_t *w = qv_wr_new ();
    qv_wr_map (w, 9);
    qv_wr_str (w, "t"); qv_wr_uint (w, QV_REC_USER);
    qv_wr_str (w, "ts"); qv_wr_uint (w, 1);
    qv_wr_str (w, "c"); qv_wr_uint (w, 0);
    qv_wr_str (w, "a"); qv_wr_uint (w, 99);
    qv_wr_str (w, "user"); qv_wr_str (w, "");
    qv_wr_str (w, "role"); qv_wr_str (w, "");
    qv_wr_str (w, "coll"); qv_wr_str (w, "");
    qv_wr_str (w, "priv"); qv_wr_str (w, "");
    qv_wr_str (w, "hash"); qv_wr_str (w, "");
    size_t size;
    const void *data = qv_wr_data (w, &size);
    assert_int_equal (qv_record_read (data, size, s_lookup, NULL, &out), QV_ECORRUPT);
    assert_null (out);
    qv_wr_destroy (&w);
}

static void
test_compact (void **state)
{
    (void) state;
    qv_record_t *rec = qv_record_new (QV_REC_COMPACT);
    rec->ts = 900;
    rec->coll_id = 7;
    rec->shard = 2;
    rec->partition = 3;
    rec->in_partition = true;
    rec->seg_id = (1ull << 63) | 12345;
    rec->nolds = 3;
    rec->olds = calloc (3, sizeof (uint64_t));
    rec->olds [0] = 4, rec->olds [1] = 9, rec->olds [2] = (1ull << 63) | 5;
    rec->snap_ts = 888;
    rec->expire_cut = 777;
    rec->epoch = 6;
    rec->rows = 1000000;
    qv_record_t *out = s_round_trip (rec);
    assert_int_equal (out->type, QV_REC_COMPACT);
    assert_int_equal (out->ts, 900);
    assert_int_equal (out->coll_id, 7);
    assert_int_equal (out->shard, 2);
    assert_int_equal (out->partition, 3);
    assert_true (out->seg_id == rec->seg_id);
    assert_int_equal (out->nolds, 3);
    assert_memory_equal (out->olds, rec->olds, 3 * sizeof (uint64_t));
    assert_int_equal (out->snap_ts, 888);
    assert_int_equal (out->expire_cut, 777);
    assert_int_equal (out->epoch, 6);
    assert_int_equal (out->rows, 1000000);
    qv_record_destroy (&out);
    qv_record_destroy (&rec);
    //  {"t": 11, "ts": 1, "c": 1} alone: no segments named
    const uint8_t bare [] = { 0x83, 0xa1, 't', 11, 0xa2, 't', 's', 1, 0xa1, 'c', 1 };
    assert_int_equal (qv_record_read (bare, sizeof bare, s_lookup, NULL, &out), QV_ECORRUPT);
    assert_null (out);
}

static void
test_corrupt (void **state)
{
    (void) state;
    qv_record_t *out = NULL;
    const char *bad [] = {
        "null", "[]", "{}",
        "{\"t\": 9, \"ts\": 1, \"c\": 7}",                    //  a seal without its segment
        "{\"t\": 9, \"ts\": 1, \"c\": 7, \"seg\": -1}",
        "{\"t\": 10, \"ts\": 1, \"c\": 7, \"seg\": 1}",        //  no such type
        "{\"t\": 0, \"ts\": 1, \"c\": 7}",
        "{\"t\": 7, \"ts\": 1, \"c\": 7, \"name\": \"x\"}",       //  partitions: no id,
        "{\"t\": 8, \"ts\": 1, \"c\": 7, \"name\": \"x\", \"p\": -1}",     //  bad ids, names
        "{\"t\": 7, \"ts\": 1, \"c\": 7, \"name\": 5, \"p\": 1}",
        "{\"t\": 4, \"ts\": 1, \"c\": 7, \"keys\": [], \"p\": \"a\"}",
        "{\"t\": 4, \"ts\": 1, \"c\": 7, \"keys\": [], \"p\": 4294967296}",
        "{\"t\": 3, \"ts\": 1, \"c\": 7, \"up\": false, \"shard\": 0, \"seg\": 1, \"ps\": [1]}",
        "{\"t\": 2, \"ts\": 1}",
        "{\"t\": 2, \"ts\": -1, \"c\": 7}",
        "{\"t\": 2, \"ts\": 1, \"c\": 4294967296}",
        "{\"t\": \"2\", \"ts\": 1, \"c\": 7}",
        "{\"t\": 4, \"ts\": 1, \"c\": 7}",
        "{\"t\": 4, \"ts\": 1, \"c\": 7, \"keys\": f32[1]}",
        "{\"t\": 4, \"ts\": 1, \"c\": 7, \"keys\": [\"a\", 1]}",
        "{\"t\": 4, \"ts\": 1, \"c\": 7, \"keys\": 5}",
        "{\"t\": 3, \"ts\": 1, \"c\": 7, \"up\": false, \"shard\": 0, \"seg\": 1}",
        "{\"t\": 3, \"ts\": 1, \"c\": 7, \"up\": 0, \"shard\": 0, \"seg\": 1, \"batch\": {}}",
        "{\"t\": 3, \"ts\": 1, \"c\": 7, \"up\": false, \"shard\": 5000, \"seg\": 1, \"batch\": {}}",
        "{\"t\": 3, \"ts\": 1, \"c\": 7, \"up\": false, \"shard\": 0, \"seg\": 1, \"batch\": {}}",
        "{\"t\": 1, \"ts\": 1, \"c\": 7, \"name\": \"x\"}",
        "{\"t\": 1, \"ts\": 1, \"c\": 7, \"name\": \"x\", \"schema\": [], \"shards\": 1, \"consistency\": \"strong\", \"desc\": \"\", \"ttl\": 0}",
        "{\"t\": 1, \"ts\": 1, \"c\": 7, \"name\": \"x\", \"schema\": [{\"name\": \"id\", \"type\": \"int64\", \"primary\": true}, {\"name\": \"v\", \"type\": \"float_vector\", \"dim\": 2}], \"shards\": 1, \"consistency\": \"a-consistency-name-too-long\", \"desc\": \"\", \"ttl\": 0}",
        "{\"t\": 1, \"ts\": 1, \"c\": 7, \"name\": \"x\", \"schema\": [{\"name\": \"id\", \"type\": \"int64\", \"primary\": true}, {\"name\": \"v\", \"type\": \"float_vector\", \"dim\": 2}], \"shards\": 1, \"consistency\": \"strong\", \"desc\": 5, \"ttl\": 0}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad [0]; i++) {
        size_t size;
        void *data = qv_test_mp (bad [i], &size);
        int rc = qv_record_read (data, size, s_lookup, NULL, &out);
        if (rc != QV_ECORRUPT)
            print_error ("case %zu: %s\n", i, qv_rc_name (rc));
        assert_int_equal (rc, QV_ECORRUPT);
        assert_null (out);
        free (data);
    }
    //  Not msgpack at all, and every truncation of a valid insert
    assert_int_equal (qv_record_read ("\xc1", 1, s_lookup, NULL, &out), QV_ECORRUPT);
    assert_int_equal (qv_record_read ("", 0, s_lookup, NULL, &out), QV_ECORRUPT);
    qv_record_t *rec = s_insert_record ();
    size_t size;
    uint8_t *data = s_encode (rec, &size);
    for (size_t cut = 0; cut < size; cut++) {
        uint8_t *copy = malloc (cut ? cut : 1);
        memcpy (copy, data, cut);
        assert_int_equal (qv_record_read (copy, cut, s_lookup, NULL, &out), QV_ECORRUPT);
        assert_null (out);
        free (copy);
    }
    free (data);
    qv_record_destroy (&rec);
}

static void
test_mutations (void **state)
{
    (void) state;
    qv_record_t *recs [3] = { s_create_record (), s_insert_record (), qv_record_new (QV_REC_DELETE) };
    qv_doc_t *doc = qv_test_doc ("[1, 2, 3]");
    qv_keys_from_request (&s_schema->fields [0], qv_doc_root (doc), 10, &recs [2]->keys);
    qv_doc_destroy (&doc);
    unsigned seed = 99;
    int counts [3] = { 0 };         //  decoded, corrupt, not found
    for (int k = 0; k < 3; k++) {
        size_t size;
        uint8_t *orig = s_encode (recs [k], &size);
        for (int iter = 0; iter < 10000; iter++) {
            uint8_t *buf = malloc (size);
            memcpy (buf, orig, size);
            size_t n = size;
            int edits = 1 + rand_r (&seed) % 3;
            for (int e = 0; e < edits; e++) {
                size_t at = (size_t) rand_r (&seed) % n;
                switch (rand_r (&seed) % 4) {
                    case 0: buf [at] ^= (uint8_t) (1u << (rand_r (&seed) % 8)); break;
                    case 1: buf [at] = (uint8_t) rand_r (&seed); break;
                    case 2: buf [at] = (uint8_t) (0xc0 + rand_r (&seed) % 32); break;
                    case 3: n = at + 1; break;
                }
            }
            qv_record_t *out = NULL;
            int rc = qv_record_read (buf, n, s_lookup, NULL, &out);
            if (rc != 0 && rc != QV_ECORRUPT && rc != QV_ENOTFOUND)
                print_error ("%s: %s\n", qv_rc_name (rc), qv_err_msg ());
            assert_true (rc == 0 || rc == QV_ECORRUPT || rc == QV_ENOTFOUND);
            if (rc == 0) {
                //  What decodes encodes again
                counts [0]++;
                size_t s2;
                free (s_encode (out, &s2));
            }
            else
            if (rc == QV_ECORRUPT) {
                counts [1]++;
                assert_null (out);
            }
            else
                counts [2]++;
            qv_record_destroy (&out);
            free (buf);
        }
        free (orig);
        qv_record_destroy (&recs [k]);
    }
    assert_true (counts [0] > 100);
    assert_true (counts [1] > 100);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_create_and_drop),
        cmocka_unit_test (test_insert),
        cmocka_unit_test (test_delete_keys),
        cmocka_unit_test (test_corrupt),
        cmocka_unit_test (test_mutations),
        cmocka_unit_test (test_partitions),
        cmocka_unit_test (test_seal),
        cmocka_unit_test (test_alter),
        cmocka_unit_test (test_compact),
        cmocka_unit_test (test_user),
    };
    return cmocka_run_group_tests (tests, s_setup, s_teardown);
}
