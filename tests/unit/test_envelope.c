//  Unit tests of the stored-object envelope and of each kind's writer and reader:
//  round trips, every bit flip and truncation refused, and real objects written by
//  the release before the envelope (tests/fixtures/v1-data) still read.
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qv_test_fixture.h"
#include "qv_test_json.h"
#include "qv_catalog.h"
#include "qv_crc.h"
#include "qv_envelope.h"
#include "qv_index.h"
#include "qv_le.h"
#include "qv_rc.h"
#include "qv_scalar.h"
#include "qv_segfile.h"
#include "qv_wal.h"

#define DIM 8

static const qv_envelope_kind_t s_kinds [] = {
    QV_ENVELOPE_WAL, QV_ENVELOPE_SEGMENT, QV_ENVELOPE_MANIFEST, QV_ENVELOPE_VINDEX,
    QV_ENVELOPE_SINDEX, QV_ENVELOPE_CACHE, QV_ENVELOPE_BACKUP, QV_ENVELOPE_BACKUP_ROWS,
    QV_ENVELOPE_BACKUP_STATE
};
#define NKINDS (sizeof s_kinds / sizeof s_kinds [0])

//  A new buffer holding an envelope of kind around `n` payload bytes 0, 1, 2, ...
static uint8_t *
s_object (qv_envelope_kind_t kind, uint32_t version, size_t n, size_t *size)
{
    *size = QV_ENVELOPE_HEADER_SIZE + n;
    uint8_t *p = malloc (*size);
    assert_non_null (p);
    for (size_t i = 0; i < n; i++)
        p [QV_ENVELOPE_HEADER_SIZE + i] = (uint8_t) (i * 7 + 1);
    qv_envelope_seal (p, *size, kind, version);
    return p;
}

//  Opens a copy of exactly size bytes (so ASan sees any read past the end).
static int
s_open (const uint8_t *data, size_t size, qv_envelope_kind_t kind, uint32_t max_version,
        qv_envelope_t *env)
{
    uint8_t *copy = malloc (size ? size : 1);
    memcpy (copy, data, size);
    int rc = qv_envelope_open ("obj/1", copy, size, kind, max_version, env);
    free (copy);
    return rc;
}

static void
s_expect (int rc, int want, const char *needle, const char *what)
{
    if (rc != want)
        fail_msg ("%s: got %s, expected %s (%s)", what, qv_rc_name (rc), qv_rc_name (want),
                  qv_err_msg ());
    if (needle && !strstr (qv_err_msg (), needle))
        fail_msg ("%s: message '%s' lacks '%s'", what, qv_err_msg (), needle);
    if (want && !strstr (qv_err_msg (), "obj/1"))
        fail_msg ("%s: message '%s' does not name the object", what, qv_err_msg ());
}

static void
test_round_trip (void **state)
{
    (void) state;
    for (size_t k = 0; k < NKINDS; k++) {
        for (size_t n = 0; n < 70; n += 23) {
            size_t size;
            uint8_t *p = s_object (s_kinds [k], 3, n, &size);
            assert_true (qv_envelope_is (p, size));
            assert_memory_equal (p, "QVOB", 4);
            assert_int_equal (qv_le_get32 (p + 4) & 0xffff, s_kinds [k]);
            assert_true (qv_le_get64 (p + 8) == n);
            qv_envelope_t env;
            assert_int_equal (qv_envelope_open ("obj/1", p, size, s_kinds [k], 3, &env), 0);
            assert_int_equal (env.kind, s_kinds [k]);
            assert_int_equal (env.version, 3);
            assert_int_equal (env.size, n);
            assert_ptr_equal (env.payload, p + QV_ENVELOPE_HEADER_SIZE);
            //  A header written apart from its payload is the same header
            uint8_t header [QV_ENVELOPE_HEADER_SIZE];
            qv_envelope_header (header, s_kinds [k], 3, n,
                                qv_crc32c (p + QV_ENVELOPE_HEADER_SIZE, n));
            assert_memory_equal (header, p, QV_ENVELOPE_HEADER_SIZE);
            //  An older version opens too: the caller decides what it reads
            assert_int_equal (qv_envelope_open ("obj/1", p, size, s_kinds [k], 9, &env), 0);
            //  Every other kind refuses it by name
            for (size_t o = 0; o < NKINDS; o++)
                if (o != k) {
                    int rc = s_open (p, size, s_kinds [o], 3, &env);
                    s_expect (rc, QV_ECORRUPT, "wrong kind", "wrong kind");
                    assert_non_null (strstr (qv_err_msg (), qv_envelope_kind_name (s_kinds [k])));
                    assert_non_null (strstr (qv_err_msg (), qv_envelope_kind_name (s_kinds [o])));
                }
            free (p);
        }
    }
    assert_false (qv_envelope_is ("QVWAL\0\0\0", 8));
    assert_false (qv_envelope_is ("QVO", 3));
    assert_false (qv_envelope_is (NULL, 0));
}

static void
test_newer_version (void **state)
{
    (void) state;
    size_t size;
    uint8_t *p = s_object (QV_ENVELOPE_SEGMENT, 4, 10, &size);
    qv_envelope_t env;
    s_expect (s_open (p, size, QV_ENVELOPE_SEGMENT, 3, &env), QV_EINVAL, "newer than this release",
              "newer version");
    assert_non_null (strstr (qv_err_msg (), "segment object"));
    free (p);
}

static void
test_trailing_bytes (void **state)
{
    (void) state;
    size_t size;
    uint8_t *p = s_object (QV_ENVELOPE_WAL, 1, 10, &size);
    uint8_t *longer = calloc (1, size + 5);
    memcpy (longer, p, size);
    qv_envelope_t env;
    s_expect (s_open (longer, size + 5, QV_ENVELOPE_WAL, 1, &env), QV_ECORRUPT,
              "5 bytes after", "trailing bytes");
    free (longer);
    free (p);
}

//  Every single-bit flip of a small object is refused, with the error of the part hit.
static void
test_every_bit_flip (void **state)
{
    (void) state;
    size_t size;
    uint8_t *p = s_object (QV_ENVELOPE_MANIFEST, 2, 40, &size);
    qv_envelope_t env;
    for (size_t i = 0; i < size; i++)
        for (int bit = 0; bit < 8; bit++) {
            p [i] ^= (uint8_t) (1 << bit);
            int rc = s_open (p, size, QV_ENVELOPE_MANIFEST, 2, &env);
            const char *needle = i < 4 ? "bad magic"
                               : i < QV_ENVELOPE_HEADER_SIZE ? "header checksum mismatch"
                               : "payload checksum mismatch";
            char what [64];
            snprintf (what, sizeof what, "byte %zu bit %d", i, bit);
            s_expect (rc, QV_ECORRUPT, needle, what);
            p [i] ^= (uint8_t) (1 << bit);
        }
    assert_int_equal (s_open (p, size, QV_ENVELOPE_MANIFEST, 2, &env), 0);
    free (p);
}

//  Every truncation is refused as a truncation.
static void
test_every_truncation (void **state)
{
    (void) state;
    size_t size;
    uint8_t *p = s_object (QV_ENVELOPE_VINDEX, 1, 40, &size);
    qv_envelope_t env;
    for (size_t cut = 0; cut < size; cut++) {
        char what [64];
        snprintf (what, sizeof what, "cut to %zu bytes", cut);
        s_expect (s_open (p, cut, QV_ENVELOPE_VINDEX, 1, &env), QV_ECORRUPT, "truncated", what);
    }
    free (p);
}

//  Unknown flags (a future feature this release cannot honour) are refused.
static void
test_flags (void **state)
{
    (void) state;
    size_t size;
    uint8_t *p = s_object (QV_ENVELOPE_SINDEX, 1, 4, &size);
    qv_le_put32 (p + 16, 1);
    qv_le_put32 (p + 28, qv_crc32c (p, 28));
    qv_envelope_t env;
    s_expect (s_open (p, size, QV_ENVELOPE_SINDEX, 1, &env), QV_ECORRUPT, "flags", "flags");
    free (p);
}

//  --------------------------------------------------------------------------
//  Each kind's writer writes an envelope, and its reader refuses every flip and cut

static qv_schema_t *
s_schema (void)
{
    return qv_test_schema (
        "[{\"name\": \"id\", \"type\": \"int64\", \"primary\": true},"
        " {\"name\": \"vector\", \"type\": \"float_vector\", \"dim\": 8, \"metric\": \"L2\"},"
        " {\"name\": \"tag\", \"type\": \"varchar\"},"
        " {\"name\": \"n\", \"type\": \"int64\"}]");
}

//  The vector of row i in the v1 fixture (tests/fixtures/make_v1_data.py's vec).
static void
s_vec (int64_t i, float *v)
{
    v [0] = (float) ((double) i / 100.0);
    for (int j = 1; j < DIM; j++)
        v [j] = (float) ((double) ((i * (j + 1) * 7919) % 1000) / 1000.0);
}

static qv_segment_t *
s_segment (uint32_t rows)
{
    qv_schema_t *schema = s_schema ();
    qv_segment_t *seg = qv_segment_new (schema, 7, 1, 0, rows);
    qv_batch_t *b = qv_batch_new (schema, rows);
    for (uint32_t r = 0; r < rows; r++) {
        ((int64_t *) b->cols [0].data) [r] = r;
        s_vec (r, (float *) b->cols [1].data + (size_t) r * DIM);
        b->cols [2].var [r].ptr = (uint8_t *) strdup (r % 2 ? "odd" : "even");
        b->cols [2].var [r].len = (uint32_t) strlen (r % 2 ? "odd" : "even");
        ((int64_t *) b->cols [3].data) [r] = (int64_t) r * 10;
    }
    b->n = rows;
    assert_int_equal (qv_segment_append (seg, b, 100), 0);
    qv_batch_destroy (&b);
    qv_schema_destroy (&schema);
    seg->state = QV_SEG_SEALED;
    return seg;
}

typedef int (s_reader_fn) (const uint8_t *data, size_t size, void *arg);

static int
s_read_wal (const uint8_t *data, size_t size, void *arg)
{
    (void) arg;
    return qv_wal_decode ("wal/3/9", data, size, 3, 9, NULL, NULL);
}

static int
s_read_segment (const uint8_t *data, size_t size, void *arg)
{
    (void) arg;
    qv_segment_t *seg = NULL;
    int rc = qv_segment_load ("segments/1/7", data, size, &seg);
    qv_segment_unlink (&seg);
    return rc;
}

static int
s_read_vindex (const uint8_t *data, size_t size, void *arg)
{
    (void) arg;
    qv_index_t *index = NULL;
    int rc = qv_index_load (data, size, &index);
    qv_index_destroy (&index);
    return rc;
}

static int
s_read_sindex (const uint8_t *data, size_t size, void *arg)
{
    qv_segment_t *seg = (qv_segment_t *) arg;
    qv_scalar_t *scalar = NULL;
    int rc = qv_scalar_load (data, size, QV_INT64, &seg->batch->cols [3],
                             atomic_load (&seg->rows), &scalar);
    qv_scalar_destroy (&scalar);
    return rc;
}

//  chunk is an envelope of kind; reader accepts it, and refuses every bit flip and
//  every truncation with QV_ECORRUPT (flips: every byte of the header and a spread
//  of payload bytes, so the test stays fast on large objects).
static void
s_check_writer (zchunk_t *chunk, qv_envelope_kind_t kind, uint32_t version,
                s_reader_fn *reader, void *arg)
{
    const uint8_t *p = zchunk_data (chunk);
    size_t size = zchunk_size (chunk);
    qv_envelope_t env;
    assert_true (qv_envelope_is (p, size));
    assert_int_equal (qv_envelope_open (NULL, p, size, kind, version, &env), 0);
    assert_int_equal (env.version, version);
    assert_int_equal (reader (p, size, arg), 0);
    uint8_t *copy = malloc (size);
    size_t step = size > 4096 ? size / 1024 : 1;
    for (size_t i = 0; i < size; i += (i < QV_ENVELOPE_HEADER_SIZE + 64 ? 1 : step))
        for (int bit = 0; bit < 8; bit++) {
            memcpy (copy, p, size);
            copy [i] ^= (uint8_t) (1 << bit);
            int rc = reader (copy, size, arg);
            if (rc != QV_ECORRUPT)
                fail_msg ("%s: flip of byte %zu bit %d gave %s", qv_envelope_kind_name (kind),
                          i, bit, qv_rc_name (rc));
        }
    for (size_t cut = 0; cut < size; cut += (cut < 256 ? 1 : step)) {
        uint8_t *exact = malloc (cut ? cut : 1);
        memcpy (exact, p, cut);
        int rc = reader (exact, cut, arg);
        free (exact);
        if (rc != QV_ECORRUPT)
            fail_msg ("%s: cut to %zu bytes gave %s", qv_envelope_kind_name (kind), cut,
                      qv_rc_name (rc));
    }
    free (copy);
}

static void
test_writers (void **state)
{
    (void) state;
    qv_wal_rec_t recs [2] = { { "hello", 5 }, { "world!", 6 } };
    zchunk_t *chunk = qv_wal_encode (3, 9, recs, 2);
    s_check_writer (chunk, QV_ENVELOPE_WAL, 3, s_read_wal, NULL);
    zchunk_destroy (&chunk);

    qv_segment_t *seg = s_segment (50);
    size_t size;
    void *object = qv_segment_save (seg, &size);
    chunk = zchunk_new (object, size);
    free (object);
    s_check_writer (chunk, QV_ENVELOPE_SEGMENT, 3, s_read_segment, NULL);     //  3: delta-coded ts and keys
    zchunk_destroy (&chunk);

    qv_index_t *index = qv_index_new ("HNSW", QV_METRIC_L2, DIM, NULL);
    assert_non_null (index);
    float *vecs = malloc (50 * DIM * sizeof (float));
    for (int i = 0; i < 50; i++)
        s_vec (i, vecs + i * DIM);
    assert_int_equal (qv_index_build (index, vecs, 50), 0);
    assert_int_equal (qv_index_serialize (index, &chunk), 0);
    s_check_writer (chunk, QV_ENVELOPE_VINDEX, 2, s_read_vindex, NULL);
    zchunk_destroy (&chunk);
    qv_index_destroy (&index);
    free (vecs);

    qv_scalar_t *scalar = qv_scalar_new (QV_INT64, &seg->batch->cols [3], 50);
    assert_non_null (scalar);
    assert_int_equal (qv_scalar_serialize (scalar, &chunk), 0);
    s_check_writer (chunk, QV_ENVELOPE_SINDEX, 2, s_read_sindex, seg);
    zchunk_destroy (&chunk);
    qv_scalar_destroy (&scalar);
    qv_segment_unlink (&seg);

    qv_catalog_t *cat = qv_catalog_new ();
    uint64_t version;
    chunk = qv_catalog_manifest (cat, &version);
    qv_envelope_t env;
    assert_int_equal (qv_envelope_open ("m", zchunk_data (chunk), zchunk_size (chunk),
                                        QV_ENVELOPE_MANIFEST, 4, &env), 0);
    assert_int_equal (env.version, 4);      //  4: segment and index object epochs
    zchunk_destroy (&chunk);
    qv_catalog_destroy (&cat);
}

//  --------------------------------------------------------------------------
//  Objects written by the release before the envelope (06906df) still read

//  A file of tests/fixtures/v1-data.
static uint8_t *
s_fixture (const char *rel, size_t *size)
{
    char path [256];
    snprintf (path, sizeof path, "v1-data/%s", rel);
    return qv_test_fixture (path, size);
}

static int
s_count_rec (void *arg, uint64_t seq, uint32_t index, const void *data, size_t size)
{
    (void) seq; (void) index; (void) data; (void) size;
    (*(int *) arg)++;
    return 0;
}

static void
test_v1_objects (void **state)
{
    (void) state;
    size_t size;
    //  WAL: the delete of ids 5, 6, 7 (seq 4) and the insert of rows 300..319 (seq 5)
    uint8_t *p = s_fixture ("wal/0/00000000000000000005", &size);
    assert_memory_equal (p, "QVWAL\0\0\0", 8);
    int n = 0;
    assert_int_equal (qv_wal_decode ("wal/0/5", p, size, 0, 5, s_count_rec, &n), 0);
    assert_true (n >= 1);
    p [size / 2] ^= 1;
    assert_int_equal (qv_wal_decode ("wal/0/5", p, size, 0, 5, NULL, NULL), QV_ECORRUPT);
    free (p);

    //  Segment 1 of collection 1: rows 0..299, vectors as make_v1_data.py wrote them
    p = s_fixture ("segments/1/00000000000000000001", &size);
    assert_memory_equal (p, "QVSEG\0\0\0", 8);
    qv_segment_t *seg = NULL;
    assert_int_equal (qv_segment_load ("segments/1/1", p, size, &seg), 0);
    assert_int_equal (atomic_load (&seg->rows), 300);
    float v [DIM];
    for (uint32_t r = 0; r < 300; r++) {
        int64_t id = qv_col_i64 (&seg->batch->cols [0], r);
        s_vec (id, v);
        assert_memory_equal (qv_col_vec (&seg->schema->fields [1], &seg->batch->cols [1], r), v,
                             sizeof v);
    }
    //  Saved again, it is an envelope that loads to the same rows
    size_t saved;
    void *object = qv_segment_save (seg, &saved);
    assert_true (qv_envelope_is (object, saved));
    qv_segment_t *again = NULL;
    assert_int_equal (qv_segment_load ("again", object, saved, &again), 0);
    assert_int_equal (atomic_load (&again->rows), 300);
    qv_segment_unlink (&again);
    free (object);
    p [size - 1] ^= 0x80;
    qv_segment_t *bad = NULL;
    assert_int_equal (qv_segment_load ("segments/1/1", p, size, &bad), QV_ECORRUPT);
    free (p);

    //  The HNSW index of field 1 answers row 123's vector with row 123
    p = s_fixture ("segments/1/00000000000000000001.index1", &size);
    assert_memory_equal (p, "QVINDEX", 7);
    qv_index_t *index = NULL;
    assert_int_equal (qv_index_load (p, size, &index), 0);
    assert_int_equal (qv_index_count (index), 300);
    assert_string_equal (qv_index_type_name (index), "HNSW");
    free (p);
    uint32_t row = UINT32_MAX;
    for (uint32_t r = 0; r < 300; r++)
        if (qv_col_i64 (&seg->batch->cols [0], r) == 123)
            row = r;
    assert_true (row < 300);
    s_vec (123, v);
    uint32_t ids [1];
    float dist [1];
    qv_search_params_t params = { .ef = 64 };
    assert_int_equal (qv_index_search (index, v, 1, &params, ids, dist), 1);
    assert_int_equal (ids [0], row);
    assert_true (dist [0] == 0);
    qv_index_destroy (&index);

    //  The STL_SORT index of field 3 ("n") matches its column
    p = s_fixture ("segments/1/00000000000000000001.index3", &size);
    assert_memory_equal (p, "QVSCALR", 7);
    qv_scalar_t *scalar = NULL;
    assert_int_equal (qv_scalar_load (p, size, QV_INT64, &seg->batch->cols [3], 300, &scalar), 0);
    assert_int_equal (qv_scalar_nonnull (scalar), 300);
    qv_scalar_destroy (&scalar);
    free (p);
    qv_segment_unlink (&seg);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_round_trip),
        cmocka_unit_test (test_newer_version),
        cmocka_unit_test (test_trailing_bytes),
        cmocka_unit_test (test_every_bit_flip),
        cmocka_unit_test (test_every_truncation),
        cmocka_unit_test (test_flags),
        cmocka_unit_test (test_writers),
        cmocka_unit_test (test_v1_objects),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
