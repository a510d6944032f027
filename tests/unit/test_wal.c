//  WAL: append/replay round trip, checkpoints, truncation, corruption detection,
//  failed appends, random mutations of the encoding, and fencing (writer epochs).
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "qv_crc.h"
#include "qv_envelope.h"
#include "qv_rc.h"
#include "qv_store.h"
#include "qv_wal.h"

typedef struct {
    char dir [64];                  //  fresh temp directory for this test
    qv_store_t *store;
} fixture_t;

static int
s_rm_entry (const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void) st; (void) flag; (void) ftw;
    return remove (path);
}

static int
s_setup (void **state)
{
    fixture_t *f = calloc (1, sizeof (fixture_t));
    strcpy (f->dir, "/tmp/qv_test_wal_XXXXXX");
    if (!mkdtemp (f->dir))
        return -1;
    f->store = qv_store_new (f->dir);
    if (!f->store)
        return -1;
    *state = f;
    return 0;
}

static int
s_teardown (void **state)
{
    fixture_t *f = *state;
    qv_store_destroy (&f->store);
    nftw (f->dir, s_rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    free (f);
    return 0;
}

//  Record j of batch b: deterministic bytes of a length that varies, including 0.
static size_t
s_rec_size (uint64_t b, uint32_t j)
{
    return (size_t) ((b * 131 + j * 17) % 300);
}

static unsigned char
s_rec_byte (uint64_t b, uint32_t j, size_t k)
{
    return (unsigned char) (b * 7 + j * 13 + k * 31);
}

//  Batch b's records into recs (b % 5 + 1 of them, batch 3 also one large record),
//  their bytes in bufs (freed by the caller). Returns the number of records.
static uint32_t
s_make_batch (uint64_t b, qv_wal_rec_t *recs, unsigned char **bufs)
{
    uint32_t n = (uint32_t) (b % 5 + 1);
    for (uint32_t j = 0; j < n; j++) {
        size_t size = s_rec_size (b, j);
        if (b == 3 && j == 0)
            size = 200000;
        bufs [j] = malloc (size + 1);
        for (size_t k = 0; k < size; k++)
            bufs [j][k] = s_rec_byte (b, j, k);
        recs [j] = (qv_wal_rec_t) { bufs [j], size };
    }
    return n;
}

//  Appends batch b and checks its seq.
static void
s_append_batch (qv_wal_t *wal, uint64_t b, uint64_t expect_seq)
{
    qv_wal_rec_t recs [6];
    unsigned char *bufs [6];
    uint32_t n = s_make_batch (b, recs, bufs);
    uint64_t seq = 12345;
    assert_int_equal (qv_wal_append (wal, recs, n, &seq), 0);
    assert_int_equal (seq, expect_seq);
    for (uint32_t j = 0; j < n; j++)
        free (bufs [j]);
}

//  A WAL of shard 0 over the fixture's store, opened from checkpoint 0 (every test
//  that uses it starts on an empty store).
static qv_wal_t *
s_open_empty (fixture_t *f)
{
    qv_wal_t *wal = qv_wal_new (f->store, 0);
    assert_non_null (wal);
    assert_int_equal (qv_wal_open (wal, 0, NULL, NULL), 0);
    return wal;
}

//  Writes batch b as the object at seq/epoch reserved with qv_wal_reserve; returns
//  what qv_wal_put returned.
static int
s_put_batch (qv_wal_t *wal, uint64_t b, uint64_t seq, uint64_t epoch)
{
    qv_wal_rec_t recs [6];
    unsigned char *bufs [6];
    uint32_t n = s_make_batch (b, recs, bufs);
    int rc = qv_wal_put (wal, seq, epoch, recs, n);
    for (uint32_t j = 0; j < n; j++)
        free (bufs [j]);
    return rc;
}

//  Replay checker: records must arrive in order and match s_append_batch, where
//  batch = seq - seq_base.
typedef struct {
    uint64_t seq_base;
    uint64_t next_seq;              //  seq of the record expected next
    uint32_t next_index;
    size_t records;
    size_t objects;
    int errors;
} replay_t;

static int
s_replay_check (void *arg, uint64_t seq, uint32_t index, const void *data, size_t size)
{
    replay_t *r = arg;
    if (index == 0) {
        //  A new object: the first is the checkpoint, then each follows the last
        uint64_t expect = r->objects ? r->next_seq + 1 : r->next_seq;
        if (seq != expect)
            r->errors++;
        r->next_seq = seq;
        r->objects++;
        r->next_index = 0;
    }
    if (seq != r->next_seq || index != r->next_index)
        r->errors++;
    r->next_index++;
    uint64_t b = seq - r->seq_base;
    size_t want = s_rec_size (b, index);
    if (b == 3 && index == 0)
        want = 200000;
    if (size != want)
        r->errors++;
    else {
        const unsigned char *p = data;
        for (size_t k = 0; k < size; k++)
            if (p [k] != s_rec_byte (b, index, k)) {
                r->errors++;
                break;
            }
    }
    r->records++;
    return 0;
}

static size_t
s_records_in (uint64_t b_from, uint64_t b_to)
{
    size_t total = 0;
    for (uint64_t b = b_from; b < b_to; b++)
        total += b % 5 + 1;
    return total;
}

//  Number of keys under prefix, and the first of them into first (if not NULL).
static size_t
s_count (qv_store_t *store, const char *prefix, char *first, size_t firstsize)
{
    zlist_t *keys = NULL;
    assert_int_equal (qv_store_list (store, prefix, &keys), 0);
    size_t n = zlist_size (keys);
    if (first && n)
        snprintf (first, firstsize, "%s", (char *) zlist_first (keys));
    zlist_destroy (&keys);
    return n;
}

//  Opens a new WAL on shard 0 from checkpoint, replaying into r.
static int
s_reopen (fixture_t *f, uint64_t checkpoint, replay_t *r, qv_wal_t **wal_p)
{
    qv_wal_destroy (wal_p);
    *wal_p = qv_wal_new (f->store, 0);
    assert_non_null (*wal_p);
    memset (r, 0, sizeof *r);
    r->next_seq = checkpoint;
    return qv_wal_open (*wal_p, checkpoint, s_replay_check, r);
}

//  Writes n batches on a fresh WAL of shard 0 (seqs 0..n-1).
static void
s_write_log (fixture_t *f, uint64_t n)
{
    qv_wal_t *wal = s_open_empty (f);
    for (uint64_t b = 0; b < n; b++)
        s_append_batch (wal, b, b);
    qv_wal_destroy (&wal);
}

static void
s_object_path (fixture_t *f, uint64_t seq, char *out, size_t outsize)
{
    snprintf (out, outsize, "%s/wal/0/%020llu", f->dir, (unsigned long long) seq);
}

static void
test_round_trip (void **state)
{
    fixture_t *f = *state;
    qv_wal_t *wal = qv_wal_new (f->store, 0);
    replay_t r = { 0 };
    assert_int_equal (qv_wal_open (wal, 0, s_replay_check, &r), 0);
    assert_int_equal (r.records, 0);
    assert_int_equal (qv_wal_next_seq (wal), 0);
    for (uint64_t b = 0; b < 60; b++)
        s_append_batch (wal, b, b);
    assert_int_equal (qv_wal_next_seq (wal), 60);
    //  An append of no records is a valid, empty object
    uint64_t seq = 0;
    assert_int_equal (qv_wal_append (wal, NULL, 0, &seq), 0);
    assert_int_equal (seq, 60);
    assert_int_equal (s_count (f->store, "wal/0/", NULL, 0), 61);

    assert_int_equal (s_reopen (f, 0, &r, &wal), 0);
    assert_int_equal (r.errors, 0);
    assert_int_equal (r.objects, 60);
    assert_int_equal (r.records, s_records_in (0, 60));
    assert_int_equal (qv_wal_next_seq (wal), 61);
    //  Appends continue after the last object
    s_append_batch (wal, 61, 61);
    qv_wal_destroy (&wal);
    qv_wal_destroy (&wal);                              //  safe twice
    assert_null (wal);
}

static void
test_shards_are_separate (void **state)
{
    fixture_t *f = *state;
    qv_wal_t *wal1 = qv_wal_new (f->store, 1);
    qv_wal_t *wal10 = qv_wal_new (f->store, 10);
    assert_int_equal (qv_wal_open (wal1, 0, NULL, NULL), 0);
    assert_int_equal (qv_wal_open (wal10, 0, NULL, NULL), 0);
    qv_wal_rec_t rec = { "x", 1 };
    for (int i = 0; i < 3; i++)
        assert_int_equal (qv_wal_append (wal10, &rec, 1, NULL), 0);
    assert_int_equal (qv_wal_append (wal1, &rec, 1, NULL), 0);
    char first [128];
    assert_int_equal (s_count (f->store, "wal/1/", first, sizeof first), 1);
    assert_string_equal (first, "wal/1/00000000000000000000");
    assert_int_equal (qv_wal_open (wal1, 0, NULL, NULL), 0);
    assert_int_equal (qv_wal_next_seq (wal1), 1);
    assert_int_equal (qv_wal_open (wal10, 0, NULL, NULL), 0);
    assert_int_equal (qv_wal_next_seq (wal10), 3);
    qv_wal_destroy (&wal1);
    qv_wal_destroy (&wal10);
}

static void
test_checkpoint (void **state)
{
    fixture_t *f = *state;
    s_write_log (f, 10);
    qv_wal_t *wal = NULL;
    replay_t r;
    assert_int_equal (s_reopen (f, 6, &r, &wal), 0);
    assert_int_equal (r.errors, 0);
    assert_int_equal (r.objects, 4);
    assert_int_equal (r.records, s_records_in (6, 10));
    assert_int_equal (qv_wal_next_seq (wal), 10);
    //  Objects below the checkpoint are gone
    char first [128];
    assert_int_equal (s_count (f->store, "wal/0/", first, sizeof first), 4);
    assert_string_equal (first, "wal/0/00000000000000000006");

    //  A checkpoint past every object: all deleted, numbering continues from it
    assert_int_equal (s_reopen (f, 25, &r, &wal), 0);
    assert_int_equal (r.records, 0);
    assert_int_equal (s_count (f->store, "wal/0/", NULL, 0), 0);
    assert_int_equal (qv_wal_next_seq (wal), 25);
    s_append_batch (wal, 25, 25);
    assert_int_equal (s_reopen (f, 25, &r, &wal), 0);
    assert_int_equal (r.objects, 1);
    assert_int_equal (qv_wal_next_seq (wal), 26);
    qv_wal_destroy (&wal);
}

static int
s_stop_at_third (void *arg, uint64_t seq, uint32_t index, const void *data, size_t size)
{
    (void) seq; (void) index; (void) data; (void) size;
    int *calls = arg;
    return ++*calls == 3 ? 7 : 0;
}

static void
test_replay_stops (void **state)
{
    fixture_t *f = *state;
    s_write_log (f, 5);
    qv_wal_t *wal = qv_wal_new (f->store, 0);
    int calls = 0;
    assert_int_equal (qv_wal_open (wal, 0, s_stop_at_third, &calls), 7);
    assert_int_equal (calls, 3);
    //  A failed open does not allow appends
    qv_wal_rec_t rec = { "x", 1 };
    assert_int_equal (qv_wal_append (wal, &rec, 1, NULL), QV_EINVAL);
    qv_wal_destroy (&wal);
}

static void
test_append_needs_open (void **state)
{
    fixture_t *f = *state;
    s_write_log (f, 3);
    qv_wal_t *wal = qv_wal_new (f->store, 0);
    qv_wal_rec_t rec = { "x", 1 };
    //  Appending without open would overwrite seq 0
    assert_int_equal (qv_wal_append (wal, &rec, 1, NULL), QV_EINVAL);
    assert_non_null (strstr (qv_err_msg (), "qv_wal_open"));
    assert_null (qv_wal_new (NULL, 0));
    qv_wal_destroy (&wal);
}

static void
test_truncate (void **state)
{
    fixture_t *f = *state;
    s_write_log (f, 10);
    qv_wal_t *wal = NULL;
    replay_t r;
    assert_int_equal (s_reopen (f, 0, &r, &wal), 0);
    assert_int_equal (qv_wal_truncate (wal, 4), 0);
    char first [128];
    assert_int_equal (s_count (f->store, "wal/0/", first, sizeof first), 6);
    assert_string_equal (first, "wal/0/00000000000000000004");
    assert_int_equal (qv_wal_next_seq (wal), 10);
    assert_int_equal (qv_wal_truncate (wal, 4), 0);     //  again: nothing to do
    assert_int_equal (qv_wal_truncate (wal, 0), 0);
    assert_int_equal (s_count (f->store, "wal/0/", NULL, 0), 6);

    //  Replay from the truncation point sees the rest
    assert_int_equal (s_reopen (f, 4, &r, &wal), 0);
    assert_int_equal (r.errors, 0);
    assert_int_equal (r.records, s_records_in (4, 10));

    //  Truncating past the end moves the next seq up to it
    assert_int_equal (qv_wal_truncate (wal, 40), 0);
    assert_int_equal (s_count (f->store, "wal/0/", NULL, 0), 0);
    assert_int_equal (qv_wal_next_seq (wal), 40);
    uint64_t seq = 0;
    qv_wal_rec_t rec = { "x", 1 };
    assert_int_equal (qv_wal_append (wal, &rec, 1, &seq), 0);
    assert_int_equal (seq, 40);
    qv_wal_destroy (&wal);
}

static void
test_failed_append (void **state)
{
    fixture_t *f = *state;
    qv_wal_t *wal = s_open_empty (f);
    s_append_batch (wal, 0, 0);
    s_append_batch (wal, 1, 1);
    qv_store_inject_fault (f->store, "put", QV_EIO, 2);
    qv_wal_rec_t rec = { "lost", 4 };
    uint64_t seq = 999;
    assert_int_equal (qv_wal_append (wal, &rec, 1, &seq), QV_EIO);
    assert_int_equal (seq, 999);
    assert_int_equal (qv_wal_append (wal, &rec, 1, &seq), QV_EIO);
    assert_int_equal (qv_wal_next_seq (wal), 2);
    assert_int_equal (s_count (f->store, "wal/0/", NULL, 0), 2);
    s_append_batch (wal, 2, 2);                         //  the same number, now written
    replay_t r;
    assert_int_equal (s_reopen (f, 0, &r, &wal), 0);
    assert_int_equal (r.errors, 0);
    assert_int_equal (r.objects, 3);
    assert_int_equal (r.records, s_records_in (0, 3));
    qv_wal_destroy (&wal);
}

//  Damages object seq of a 6-object log with damage (), then checks that open
//  returns QV_ECORRUPT with a message naming the object and containing word.
static void
s_expect_corrupt (fixture_t *f, uint64_t seq, void (*damage) (const char *path),
                  const char *word)
{
    s_write_log (f, 6);
    char path [256];
    s_object_path (f, seq, path, sizeof path);
    damage (path);
    qv_wal_t *wal = NULL;
    replay_t r;
    qv_err_clear ();
    assert_int_equal (s_reopen (f, 0, &r, &wal), QV_ECORRUPT);
    char key [64];
    snprintf (key, sizeof key, "wal/0/%020llu", (unsigned long long) seq);
    if (!strstr (qv_err_msg (), key))
        fail_msg ("error '%s' does not name %s", qv_err_msg (), key);
    if (!strstr (qv_err_msg (), word))
        fail_msg ("error '%s' does not say '%s'", qv_err_msg (), word);
    print_message ("%s\n", qv_err_msg ());
    //  Nothing after the damaged object was replayed
    assert_true (r.objects <= seq);
    //  And appending is refused, so the damage is never papered over
    qv_wal_rec_t rec = { "x", 1 };
    assert_int_equal (qv_wal_append (wal, &rec, 1, NULL), QV_EINVAL);
    qv_wal_destroy (&wal);
}

static void
s_flip_byte (const char *path)
{
    FILE *file = fopen (path, "r+b");
    assert_non_null (file);
    fseek (file, 40, SEEK_SET);
    int c = fgetc (file);
    fseek (file, 40, SEEK_SET);
    fputc (c ^ 0x10, file);
    fclose (file);
}

static void
s_cut_tail (const char *path)
{
    struct stat st;
    assert_int_equal (stat (path, &st), 0);
    assert_int_equal (truncate (path, st.st_size - 10), 0);
}

static void
s_cut_header (const char *path)
{
    assert_int_equal (truncate (path, 20), 0);
}

static void
s_zero_length (const char *path)
{
    assert_int_equal (truncate (path, 0), 0);
}

static void
s_bad_magic (const char *path)
{
    FILE *file = fopen (path, "r+b");
    assert_non_null (file);
    fputs ("QVXAL", file);
    fclose (file);
}

static void
s_remove (const char *path)
{
    assert_int_equal (unlink (path), 0);
}

static void
test_corrupt_flipped_byte (void **state)
{
    s_expect_corrupt (*state, 2, s_flip_byte, "checksum");
}

static void
test_corrupt_truncated (void **state)
{
    s_expect_corrupt (*state, 4, s_cut_tail, "truncated");
}

static void
test_corrupt_truncated_header (void **state)
{
    s_expect_corrupt (*state, 0, s_cut_header, "truncated");
}

static void
test_corrupt_zero_length (void **state)
{
    s_expect_corrupt (*state, 5, s_zero_length, "truncated");
}

static void
test_corrupt_magic (void **state)
{
    s_expect_corrupt (*state, 1, s_bad_magic, "magic");
}

static void
test_corrupt_gap (void **state)
{
    //  Object 1 is missing, and objects up to 5 follow it: deeper than a window of
    //  appends in flight (QV_WAL_WINDOW), so not a torn tail. The message names it
    assert_true (5 - 1 >= QV_WAL_WINDOW);
    s_expect_corrupt (*state, 1, s_remove, "missing");
}

static void
test_corrupt_leading_gap (void **state)
{
    //  Objects 0 and 1 gone but the checkpoint says 0: acknowledged data was lost
    fixture_t *f = *state;
    s_write_log (f, 6);             //  objects 2..5 past the gap: more than a window
    char path [256];
    s_object_path (f, 0, path, sizeof path);
    unlink (path);
    s_object_path (f, 1, path, sizeof path);
    unlink (path);
    qv_wal_t *wal = NULL;
    replay_t r;
    assert_int_equal (s_reopen (f, 0, &r, &wal), QV_ECORRUPT);
    assert_non_null (strstr (qv_err_msg (), "wal/0/00000000000000000000"));
    assert_int_equal (r.records, 0);
    //  From checkpoint 2 the log is whole
    assert_int_equal (s_reopen (f, 2, &r, &wal), 0);
    assert_int_equal (r.objects, 4);
    qv_wal_destroy (&wal);
}

static void
test_corrupt_wrong_seq_and_shard (void **state)
{
    fixture_t *f = *state;
    s_write_log (f, 3);
    //  Object 2's content holds seq 1
    void *data = NULL;
    size_t size = 0;
    assert_int_equal (qv_store_get (f->store, "wal/0/00000000000000000001", &data, &size), 0);
    assert_int_equal (qv_store_put (f->store, "wal/0/00000000000000000002", data, size), 0);
    qv_wal_t *wal = NULL;
    replay_t r;
    assert_int_equal (s_reopen (f, 0, &r, &wal), QV_ECORRUPT);
    assert_non_null (strstr (qv_err_msg (), "wal/0/00000000000000000002"));
    assert_non_null (strstr (qv_err_msg (), "sequence"));
    free (data);

    //  An object of shard 1 under shard 0's name
    zchunk_t *chunk = qv_wal_encode (1, 2, NULL, 0);
    assert_non_null (chunk);
    assert_int_equal (qv_store_put (f->store, "wal/0/00000000000000000002",
                                    zchunk_data (chunk), zchunk_size (chunk)), 0);
    zchunk_destroy (&chunk);
    assert_int_equal (s_reopen (f, 0, &r, &wal), QV_ECORRUPT);
    assert_non_null (strstr (qv_err_msg (), "wal/0/00000000000000000002"));
    assert_non_null (strstr (qv_err_msg (), "shard 1"));

    //  A stray object in the shard's WAL directory
    assert_int_equal (qv_store_delete (f->store, "wal/0/00000000000000000002"), 0);
    assert_int_equal (qv_store_put (f->store, "wal/0/notes.txt", "hi", 2), 0);
    assert_int_equal (s_reopen (f, 0, &r, &wal), QV_ECORRUPT);
    assert_non_null (strstr (qv_err_msg (), "wal/0/notes.txt"));
    qv_wal_destroy (&wal);
}

static void
test_encode_decode (void **state)
{
    (void) state;
    qv_wal_rec_t recs [3] = { { "alpha", 5 }, { NULL, 0 }, { "gamma!", 6 } };
    zchunk_t *chunk = qv_wal_encode (3, 9, recs, 3);
    assert_non_null (chunk);
    //  Layout: 32-byte envelope header, 24 bytes of fields, 3 x (4 + size)
    assert_int_equal (zchunk_size (chunk), 32 + 24 + 4 * 3 + 11);
    const unsigned char *p = zchunk_data (chunk);
    assert_memory_equal (p, "QVOB", 4);
    assert_int_equal (p [4], 1);                        //  kind WAL, little-endian
    assert_int_equal (p [6], 3);                        //  format version 3
    assert_int_equal (p [8], 24 + 4 * 3 + 11);          //  payload length
    assert_int_equal (p [32], 3);                       //  shard
    assert_int_equal (p [36], 9);                       //  seq
    assert_int_equal (p [44], 0);                       //  epoch (qv_wal_encode: 0)
    assert_int_equal (p [52], 3);                       //  count
    assert_int_equal (p [56], 5);                       //  first record's size
    assert_memory_equal (p + 60, "alpha", 5);

    int calls = 0;
    assert_int_equal (qv_wal_decode ("obj", p, zchunk_size (chunk), 3, 9,
                                     s_stop_at_third, &calls), 7);
    assert_int_equal (calls, 3);
    assert_int_equal (qv_wal_decode ("obj", p, zchunk_size (chunk), 3, 9, NULL, NULL), 0);
    assert_int_equal (qv_wal_decode ("my-object", p, zchunk_size (chunk), 4, 9, NULL, NULL),
                      QV_ECORRUPT);
    assert_non_null (strstr (qv_err_msg (), "my-object"));
    assert_int_equal (qv_wal_decode ("obj", p, zchunk_size (chunk), 3, 10, NULL, NULL),
                      QV_ECORRUPT);
    assert_int_equal (qv_wal_decode ("obj", NULL, 0, 3, 9, NULL, NULL), QV_ECORRUPT);
    zchunk_destroy (&chunk);
}

static int
s_touch (void *arg, uint64_t seq, uint32_t index, const void *data, size_t size)
{
    (void) seq; (void) index;
    unsigned *sum = arg;
    const unsigned char *p = data;
    for (size_t k = 0; k < size; k++)
        *sum += p [k];              //  ASan catches a record outside the buffer
    return 0;
}

static void
test_random_mutations (void **state)
{
    (void) state;
    unsigned char payload [64];
    for (size_t i = 0; i < sizeof payload; i++)
        payload [i] = (unsigned char) i;
    qv_wal_rec_t recs [4] = {
        { payload, 10 }, { payload, 0 }, { payload, 64 }, { payload + 3, 7 }
    };
    zchunk_t *chunk = qv_wal_encode (0, 5, recs, 4);
    size_t size = zchunk_size (chunk);
    srand (42);
    int accepted = 0;
    for (int iter = 0; iter < 20000; iter++) {
        size_t mutated_size = size;
        int mode = rand () % 4;
        if (mode == 1)
            mutated_size = (size_t) rand () % size;                 //  truncated
        else
        if (mode == 2)
            mutated_size = size + 1 + (size_t) rand () % 16;        //  trailing bytes
        unsigned char *buf = malloc (mutated_size ? mutated_size : 1);
        memset (buf, 0xAB, mutated_size);
        memcpy (buf, zchunk_data (chunk), mutated_size < size ? mutated_size : size);
        int flips = 1 + rand () % 4;
        for (int i = 0; i < flips && mutated_size > 0; i++)
            buf [(size_t) rand () % mutated_size] ^= (unsigned char) (1 + rand () % 255);
        //  Now and then seal the envelope again so that the structural checks run too
        if (mode == 3 && mutated_size >= QV_ENVELOPE_HEADER_SIZE)
            qv_envelope_seal (buf, mutated_size, QV_ENVELOPE_WAL, 2);
        unsigned sum = 0;
        int rc = qv_wal_decode ("fuzz", buf, mutated_size, 0, 5, s_touch, &sum);
        assert_true (rc == 0 || rc == QV_ECORRUPT);
        accepted += rc == 0;
        free (buf);
    }
    //  A flip that keeps every check happy is possible only with a fixed-up CRC
    assert_true (accepted < 20000 / 4);
    zchunk_destroy (&chunk);
}

//  ---------------------------------------------------------------- fencing

//  Puts a hand-made object at seq with epoch (its key says key_epoch) holding the
//  one record text, or none if text is NULL.
static void
s_put_epoch (fixture_t *f, uint64_t seq, uint64_t epoch, uint64_t key_epoch, const char *text)
{
    qv_wal_rec_t rec = { text, text ? strlen (text) : 0 };
    zchunk_t *chunk = qv_wal_encode_epoch (0, seq, epoch, &rec, text ? 1 : 0);
    assert_non_null (chunk);
    char key [96];
    if (key_epoch)
        snprintf (key, sizeof key, "wal/0/%020llu-%020llu", (unsigned long long) seq,
                  (unsigned long long) key_epoch);
    else
        snprintf (key, sizeof key, "wal/0/%020llu", (unsigned long long) seq);
    assert_int_equal (qv_store_put (f->store, key, zchunk_data (chunk), zchunk_size (chunk)), 0);
    zchunk_destroy (&chunk);
}

//  Replay collector: the records' texts joined by ',' as "seq:text".
typedef struct {
    char text [1024];
} collect_t;

static int
s_collect (void *arg, uint64_t seq, uint32_t index, const void *data, size_t size)
{
    (void) index;
    collect_t *c = arg;
    size_t len = strlen (c->text);
    snprintf (c->text + len, sizeof c->text - len, "%s%llu:%.*s", len ? "," : "",
              (unsigned long long) seq, (int) size, (const char *) data);
    return 0;
}

static int
s_open_collect (fixture_t *f, uint64_t checkpoint, collect_t *c, qv_wal_t **wal_p)
{
    qv_wal_destroy (wal_p);
    *wal_p = qv_wal_new (f->store, 0);
    memset (c, 0, sizeof *c);
    return qv_wal_open (*wal_p, checkpoint, s_collect, c);
}

static bool
s_exists (fixture_t *f, uint64_t seq, uint64_t epoch)
{
    char key [96];
    if (epoch)
        snprintf (key, sizeof key, "wal/0/%020llu-%020llu", (unsigned long long) seq,
                  (unsigned long long) epoch);
    else
        snprintf (key, sizeof key, "wal/0/%020llu", (unsigned long long) seq);
    void *data = NULL;
    size_t size = 0;
    int rc = qv_store_get (f->store, key, &data, &size);
    free (data);
    qv_err_clear ();
    return rc == 0;
}

//  A writer fences: its epoch is one more than the log's highest, its fence object
//  holds no record, its appends carry the epoch in key and payload
static void
test_fence (void **state)
{
    fixture_t *f = *state;
    for (uint64_t seq = 0; seq < 3; seq++)
        s_put_epoch (f, seq, 0, 0, "old");  //  an old writer: epoch 0, seqs 0..2
    qv_wal_t *wal = NULL;
    collect_t c;
    assert_int_equal (s_open_collect (f, 0, &c, &wal), 0);
    assert_string_equal (c.text, "0:old,1:old,2:old");
    assert_int_equal (qv_wal_epoch (wal), 0);
    assert_int_equal (qv_wal_fence (wal, 0), 0);
    assert_int_equal (qv_wal_epoch (wal), 1);
    assert_true (s_exists (f, 3, 1));   //  the fence
    assert_int_equal (qv_wal_next_seq (wal), 4);
    qv_wal_rec_t rec = { "x", 1 };
    uint64_t seq = 0;
    assert_int_equal (qv_wal_append (wal, &rec, 1, &seq), 0);
    assert_int_equal (seq, 4);
    assert_true (s_exists (f, 4, 1));

    //  The next writer: epoch 2; a lease's larger epoch wins
    assert_int_equal (s_open_collect (f, 0, &c, &wal), 0);
    assert_int_equal (qv_wal_epoch (wal), 1);
    assert_int_equal (qv_wal_fence (wal, 0), 0);
    assert_int_equal (qv_wal_epoch (wal), 2);
    assert_int_equal (s_open_collect (f, 0, &c, &wal), 0);
    assert_string_equal (c.text, "0:old,1:old,2:old,4:x");
    assert_int_equal (qv_wal_fence (wal, 10), 0);
    assert_int_equal (qv_wal_epoch (wal), 10);
    assert_true (s_exists (f, 6, 10));

    //  A key whose epoch is not the payload's is corrupt
    s_put_epoch (f, 7, 9, 11, "bad");
    assert_int_equal (s_open_collect (f, 0, &c, &wal), QV_ECORRUPT);
    assert_non_null (strstr (qv_err_msg (), "epoch 9"));
    //  Nor is a "-0" epoch a WAL name
    assert_int_equal (qv_store_delete (f->store, "wal/0/00000000000000000007-00000000000000000011"), 0);
    char zero [96];
    snprintf (zero, sizeof zero, "wal/0/%020d-%020d", 7, 0);
    assert_int_equal (qv_store_put (f->store, zero, "x", 1), 0);
    assert_int_equal (s_open_collect (f, 0, &c, &wal), QV_ECORRUPT);
    assert_non_null (strstr (qv_err_msg (), "unexpected object"));
    qv_wal_destroy (&wal);
}

//  The replay rule on hand-made objects of mixed epochs at the same and later seqs
static void
test_deposed_objects (void **state)
{
    fixture_t *f = *state;
    s_put_epoch (f, 0, 0, 0, "r0");     //  an old-format writer
    s_put_epoch (f, 1, 1, 1, "r1");     //  writer A, epoch 1
    s_put_epoch (f, 2, 1, 1, "late2");  //  A, paused, writes after B's fence
    s_put_epoch (f, 2, 2, 2, NULL);     //  writer B's fence at 2
    s_put_epoch (f, 3, 1, 1, "late3");  //  A again: below B's epoch
    s_put_epoch (f, 4, 1, 1, "late4");  //  ... and past B's end: no gap, ignored
    collect_t c;
    qv_wal_t *wal = NULL;
    assert_int_equal (s_open_collect (f, 0, &c, &wal), 0);
    assert_string_equal (c.text, "0:r0,1:r1");
    assert_int_equal (qv_wal_next_seq (wal), 3);
    assert_int_equal (qv_wal_epoch (wal), 2);
    //  Writer C fences at 3, beside A's late object
    assert_int_equal (qv_wal_fence (wal, 0), 0);
    assert_int_equal (qv_wal_epoch (wal), 3);
    assert_true (s_exists (f, 3, 3));
    assert_true (s_exists (f, 3, 1));
    qv_wal_rec_t rec = { "r4", 2 };
    uint64_t seq = 0;
    assert_int_equal (qv_wal_append (wal, &rec, 1, &seq), 0);
    assert_int_equal (seq, 4);
    assert_int_equal (s_open_collect (f, 0, &c, &wal), 0);
    assert_string_equal (c.text, "0:r0,1:r1,4:r4");
    assert_int_equal (qv_wal_next_seq (wal), 5);

    //  A late object that equals a later writer's epoch range is still a
    //  lower epoch: B (2) writing at 5 after C (3) is ignored
    s_put_epoch (f, 5, 2, 2, "late5");
    assert_int_equal (s_open_collect (f, 0, &c, &wal), 0);
    assert_string_equal (c.text, "0:r0,1:r1,4:r4");
    assert_int_equal (qv_wal_next_seq (wal), 5);

    //  Truncation deletes ignored objects below the checkpoint
    assert_int_equal (qv_wal_truncate (wal, 4), 0);
    assert_int_equal (s_count (f->store, "wal/0/", NULL, 0), 3);    //  4-1, 4-3, 5-2
    assert_int_equal (s_open_collect (f, 4, &c, &wal), 0);
    assert_string_equal (c.text, "4:r4");

    //  Past the end: the newest object of the highest epoch stays (the anchor), so a
    //  deposed writer's object above the checkpoint is still recognised as one
    assert_int_equal (qv_wal_truncate (wal, 6), 0);
    char first [128];
    assert_int_equal (s_count (f->store, "wal/0/", first, sizeof first), 1);
    assert_string_equal (first, "wal/0/00000000000000000004-00000000000000000003");
    s_put_epoch (f, 6, 2, 2, "late6");
    assert_int_equal (s_open_collect (f, 6, &c, &wal), 0);
    assert_string_equal (c.text, "");
    assert_int_equal (qv_wal_next_seq (wal), 6);
    assert_int_equal (qv_wal_fence (wal, 0), 0);
    assert_int_equal (qv_wal_epoch (wal), 4);
    //  The anchor is no longer needed once a higher epoch is above the checkpoint
    assert_int_equal (s_open_collect (f, 6, &c, &wal), 0);
    assert_int_equal (s_count (f->store, "wal/0/", NULL, 0), 2);    //  6-2, 6-4
    qv_wal_destroy (&wal);
}

//  Objects of the envelope's version 2 (no epoch) replay as epoch 0
static void
test_v2_objects (void **state)
{
    fixture_t *f = *state;
    for (uint64_t seq = 0; seq < 3; seq++) {
        //  envelope header | shard u32 | seq u64 | count u32 | size u32 | "v2"
        unsigned char obj [QV_ENVELOPE_HEADER_SIZE + 16 + 4 + 2] = { 0 };
        unsigned char *p = obj + QV_ENVELOPE_HEADER_SIZE;
        for (int i = 0; i < 8; i++)
            p [4 + i] = (unsigned char) (seq >> (8 * i));
        p [12] = 1;
        p [16] = 2;
        memcpy (p + 20, "v2", 2);
        qv_envelope_seal (obj, sizeof obj, QV_ENVELOPE_WAL, 2);
        char key [64];
        snprintf (key, sizeof key, "wal/0/%020llu", (unsigned long long) seq);
        assert_int_equal (qv_store_put (f->store, key, obj, sizeof obj), 0);
    }
    collect_t c;
    qv_wal_t *wal = NULL;
    assert_int_equal (s_open_collect (f, 0, &c, &wal), 0);
    assert_string_equal (c.text, "0:v2,1:v2,2:v2");
    assert_int_equal (qv_wal_epoch (wal), 0);
    assert_int_equal (qv_wal_fence (wal, 0), 0);
    assert_int_equal (qv_wal_epoch (wal), 1);
    assert_int_equal (s_open_collect (f, 0, &c, &wal), 0);
    assert_string_equal (c.text, "0:v2,1:v2,2:v2");
    assert_int_equal (qv_wal_next_seq (wal), 4);
    qv_wal_destroy (&wal);
}

//  Replay callback: counts objects (their record 0) into *(size_t *) arg.
static int
s_count_objects (void *arg, uint64_t seq, uint32_t index, const void *data, size_t size)
{
    (void) seq; (void) data; (void) size;
    if (index == 0)
        (*(size_t *) arg)++;
    return 0;
}

//  A torn tail: object 3 of 0..5 missing, 4 and 5 written (a window of appends in
//  flight when the writer stopped). A reader of a read-only store replays 0..2 and
//  leaves the objects; the writer replays 0..2, deletes 4 and 5 and appends at 3, and
//  the old 4 never follows the new 3.
static void
test_torn_tail (void **state)
{
    fixture_t *f = *state;
    s_write_log (f, 6);
    char path [256];
    s_object_path (f, 3, path, sizeof path);
    assert_int_equal (unlink (path), 0);

    qv_store_t *ro = qv_store_new_readonly (f->dir);
    assert_non_null (ro);
    qv_wal_t *reader = qv_wal_new (ro, 0);
    replay_t r;
    memset (&r, 0, sizeof r);
    assert_int_equal (qv_wal_open (reader, 0, s_replay_check, &r), 0);
    assert_int_equal (r.errors, 0);
    assert_int_equal (r.objects, 3);
    assert_int_equal (qv_wal_next_seq (reader), 3);
    qv_wal_destroy (&reader);
    qv_store_destroy (&ro);
    assert_int_equal (s_count (f->store, "wal/0/", NULL, 0), 5);

    qv_wal_t *wal = NULL;
    assert_int_equal (s_reopen (f, 0, &r, &wal), 0);
    assert_int_equal (r.errors, 0);
    assert_int_equal (r.objects, 3);
    assert_int_equal (r.records, s_records_in (0, 3));
    assert_int_equal (qv_wal_next_seq (wal), 3);
    assert_int_equal (s_count (f->store, "wal/0/", NULL, 0), 3);    //  4 and 5 deleted
    //  A different object at 3; the replay then ends there (no old 4 after it)
    qv_wal_rec_t rec = { "new3", 4 };
    uint64_t seq = 0;
    assert_int_equal (qv_wal_append (wal, &rec, 1, &seq), 0);
    assert_int_equal (seq, 3);
    qv_wal_destroy (&wal);
    wal = qv_wal_new (f->store, 0);
    size_t objects = 0;
    assert_int_equal (qv_wal_open (wal, 3, s_count_objects, &objects), 0);
    assert_int_equal (objects, 1);
    assert_int_equal (qv_wal_next_seq (wal), 4);
    qv_wal_destroy (&wal);
}

//  A gap exactly one window deep is still QV_ECORRUPT: object 2 missing, objects up
//  to 2 + QV_WAL_WINDOW there (an acknowledged object is gone); nothing is deleted.
static void
test_torn_tail_too_deep (void **state)
{
    fixture_t *f = *state;
    s_write_log (f, 3 + QV_WAL_WINDOW);
    char path [256];
    s_object_path (f, 2, path, sizeof path);
    assert_int_equal (unlink (path), 0);
    qv_wal_t *wal = NULL;
    replay_t r;
    assert_int_equal (s_reopen (f, 0, &r, &wal), QV_ECORRUPT);
    assert_non_null (strstr (qv_err_msg (), "missing"));
    assert_int_equal (s_count (f->store, "wal/0/", NULL, 0), 2 + QV_WAL_WINDOW);
    //  One object fewer after the gap: a torn tail
    s_object_path (f, 2 + QV_WAL_WINDOW, path, sizeof path);
    assert_int_equal (unlink (path), 0);
    assert_int_equal (s_reopen (f, 0, &r, &wal), 0);
    assert_int_equal (r.objects, 2);
    assert_int_equal (qv_wal_next_seq (wal), 2);
    qv_wal_destroy (&wal);
}

//  A window of QV_WAL_WINDOW appends whose puts complete out of order: until the first
//  is durable a reader sees none of them (a torn tail), then all of them, in order.
static void
test_window_out_of_order (void **state)
{
    fixture_t *f = *state;
    qv_wal_t *wal = s_open_empty (f);
    s_append_batch (wal, 0, 0);
    uint64_t seq [QV_WAL_WINDOW], epoch [QV_WAL_WINDOW];
    for (int i = 0; i < QV_WAL_WINDOW; i++) {
        assert_int_equal (qv_wal_reserve (wal, &seq [i], &epoch [i]), 0);
        assert_int_equal (seq [i], (uint64_t) i + 1);
    }
    uint64_t more, more_epoch;
    assert_int_equal (qv_wal_reserve (wal, &more, &more_epoch), QV_EINVAL);    //  full
    for (int i = QV_WAL_WINDOW - 1; i >= 1; i--)
        assert_int_equal (s_put_batch (wal, seq [i], seq [i], epoch [i]), 0);

    qv_store_t *ro = qv_store_new_readonly (f->dir);
    qv_wal_t *reader = qv_wal_new (ro, 0);
    replay_t r;
    memset (&r, 0, sizeof r);
    assert_int_equal (qv_wal_open (reader, 0, s_replay_check, &r), 0);
    assert_int_equal (r.objects, 1);
    assert_int_equal (qv_wal_next_seq (reader), 1);
    //  A reader that got to 1 cannot tell this gap from a truncation past it
    assert_int_equal (qv_wal_open (reader, 1, NULL, NULL), QV_ECORRUPT);

    assert_int_equal (s_put_batch (wal, seq [0], seq [0], epoch [0]), 0);
    assert_int_equal (qv_wal_confirm (wal, seq [QV_WAL_WINDOW - 1]), 0);
    memset (&r, 0, sizeof r);
    assert_int_equal (qv_wal_open (reader, 0, s_replay_check, &r), 0);
    assert_int_equal (r.errors, 0);
    assert_int_equal (r.objects, QV_WAL_WINDOW + 1);
    assert_int_equal (r.records, s_records_in (0, QV_WAL_WINDOW + 1));
    qv_wal_destroy (&reader);
    qv_store_destroy (&ro);
    s_append_batch (wal, QV_WAL_WINDOW + 1, QV_WAL_WINDOW + 1);
    qv_wal_destroy (&wal);
}

//  Builds in buf the in-place layout of records texts [0..n): returns its size.
static size_t
s_build_in_place (unsigned char *buf, const char **texts, size_t n)
{
    size_t at = QV_WAL_OBJECT_HEAD;
    memset (buf, 0x5A, QV_WAL_OBJECT_HEAD);     //  whatever the room held before
    for (size_t i = 0; i < n; i++) {
        size_t len = strlen (texts [i]);
        assert_int_equal (qv_wal_object_record (buf + at, len), 0);
        memcpy (buf + at + QV_WAL_RECORD_HEAD, texts [i], len);
        at += QV_WAL_RECORD_HEAD + len;
    }
    return at;
}

//  An object built in place (qv_wal_put_object) is the same bytes as qv_wal_put's of
//  the same records, and replays; a buffer its records do not fill exactly is refused
//  and nothing is written.
static void
test_put_object_in_place (void **state)
{
    fixture_t *f = *state;
    qv_wal_t *wal = s_open_empty (f);
    assert_int_equal (qv_wal_fence (wal, 7), 0);
    const char *texts [3] = { "alpha", "", "gamma!" };
    unsigned char buf [256];
    size_t size = s_build_in_place (buf, texts, 3);
    assert_int_equal (size, QV_WAL_OBJECT_HEAD + 3 * QV_WAL_RECORD_HEAD + 11);
    uint64_t seq, epoch;
    assert_int_equal (qv_wal_reserve (wal, &seq, &epoch), 0);
    assert_int_equal (epoch, 7);
    //  Records short of the buffer, past it, or too many: refused, nothing written
    assert_int_equal (qv_wal_put_object (wal, seq, epoch, buf, size, 2), QV_EINVAL);
    assert_int_equal (qv_wal_put_object (wal, seq, epoch, buf, size - 1, 3), QV_EINVAL);
    assert_int_equal (qv_wal_put_object (wal, seq, epoch, buf, size, 4), QV_EINVAL);
    assert_int_equal (qv_wal_put_object (wal, seq, epoch, buf, QV_WAL_OBJECT_HEAD - 1, 0),
                      QV_EINVAL);
    assert_false (s_exists (f, seq, epoch));
    assert_int_equal (qv_wal_put_object (wal, seq, epoch, buf, size, 3), 0);
    assert_int_equal (qv_wal_confirm (wal, seq), 0);

    qv_wal_rec_t recs [3] = { { "alpha", 5 }, { "", 0 }, { "gamma!", 6 } };
    zchunk_t *chunk = qv_wal_encode_epoch (0, seq, epoch, recs, 3);
    assert_int_equal (zchunk_size (chunk), size);
    assert_memory_equal (zchunk_data (chunk), buf, size);
    zchunk_destroy (&chunk);

    //  The buffer reused for the next object, of fewer and larger records
    const char *more [1] = { "a longer record than the others" };
    size = s_build_in_place (buf, more, 1);
    assert_int_equal (qv_wal_reserve (wal, &seq, &epoch), 0);
    assert_int_equal (qv_wal_put_object (wal, seq, epoch, buf, size, 1), 0);
    assert_int_equal (qv_wal_confirm (wal, seq), 0);
    collect_t c;
    assert_int_equal (s_open_collect (f, 0, &c, &wal), 0);
    assert_string_equal (c.text, "1:alpha,1:,1:gamma!,2:a longer record than the others");
    qv_wal_destroy (&wal);
}

//  A failed put in the middle of a window: 0 confirmed, 1 fails, 2 and 3 durable but
//  never confirmed. After qv_wal_abort (1) the next reserve deletes 2 and 3 (retrying
//  while the delete fails) and gives 1 again; a crash before that leaves a torn tail.
static void
test_window_failed_put (void **state)
{
    fixture_t *f = *state;
    qv_wal_t *wal = s_open_empty (f);
    uint64_t seq [4], epoch [4];
    for (int i = 0; i < 4; i++)
        assert_int_equal (qv_wal_reserve (wal, &seq [i], &epoch [i]), 0);
    assert_int_equal (s_put_batch (wal, 0, seq [0], epoch [0]), 0);
    qv_store_inject_fault (f->store, "put", QV_EIO, 1);
    assert_int_equal (s_put_batch (wal, 1, seq [1], epoch [1]), QV_EIO);
    assert_int_equal (s_put_batch (wal, 2, seq [2], epoch [2]), 0);
    assert_int_equal (s_put_batch (wal, 3, seq [3], epoch [3]), 0);
    assert_int_equal (qv_wal_confirm (wal, seq [0]), 0);
    qv_wal_abort (wal, seq [1]);
    assert_int_equal (qv_wal_next_seq (wal), 1);
    assert_int_equal (s_count (f->store, "wal/0/", NULL, 0), 3);

    //  A crash now: the replay ends at 1, and the writer deletes 2 and 3
    qv_store_t *ro = qv_store_new_readonly (f->dir);
    qv_wal_t *reader = qv_wal_new (ro, 0);
    replay_t r;
    memset (&r, 0, sizeof r);
    assert_int_equal (qv_wal_open (reader, 0, s_replay_check, &r), 0);
    assert_int_equal (r.objects, 1);
    qv_wal_destroy (&reader);
    qv_store_destroy (&ro);

    //  The leftovers cannot be deleted yet: nothing is reserved
    qv_store_inject_fault (f->store, "delete", QV_EIO, 1);
    uint64_t s1, e1;
    assert_int_equal (qv_wal_reserve (wal, &s1, &e1), QV_EIO);
    assert_int_equal (qv_wal_reserve (wal, &s1, &e1), 0);
    assert_int_equal (s1, 1);
    assert_int_equal (s_count (f->store, "wal/0/", NULL, 0), 1);
    assert_int_equal (s_put_batch (wal, 1, s1, e1), 0);
    assert_int_equal (qv_wal_confirm (wal, s1), 0);
    s_append_batch (wal, 2, 2);
    qv_wal_destroy (&wal);
    wal = NULL;
    assert_int_equal (s_reopen (f, 0, &r, &wal), 0);
    assert_int_equal (r.errors, 0);
    assert_int_equal (r.objects, 3);
    assert_int_equal (r.records, s_records_in (0, 3));
    qv_wal_destroy (&wal);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test_setup_teardown (test_round_trip, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_shards_are_separate, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_checkpoint, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_replay_stops, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_append_needs_open, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_truncate, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_failed_append, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_torn_tail, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_torn_tail_too_deep, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_window_out_of_order, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_window_failed_put, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_corrupt_flipped_byte, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_corrupt_truncated, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_corrupt_truncated_header, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_corrupt_zero_length, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_corrupt_magic, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_corrupt_gap, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_corrupt_leading_gap, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_corrupt_wrong_seq_and_shard, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_encode_decode, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_put_object_in_place, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_random_mutations, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_fence, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_deposed_objects, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_v2_objects, s_setup, s_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
