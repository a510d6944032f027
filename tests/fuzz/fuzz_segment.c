//  libFuzzer harness for qv_segment_load. The input is a segment object in either
//  format:
//    - the stored-object envelope (starts "QVOB", what qv_segment_save writes): the
//      harness reseals it (qv_fuzz_reseal: length and CRCs; kind, version and flags
//      kept, so those checks are reached too);
//    - version 1 (before the envelope, "QVSEG") without its CRC32C trailer: the
//      harness appends the right one;
//  so that mutations reach the header, schema and column checks. Any input loads or
//  returns QV_ECORRUPT (or QV_EINVAL for an envelope of a newer version), never
//  crashes; a segment that loads has every value readable (ASan flags a byte outside
//  the object), answers an exact scan on each vector field, and saves to an object
//  that loads and saves again to the same bytes (in the envelope, whichever format
//  it was loaded from).
//
//  Seeds (QV_FUZZ_SEEDS=DIR, see qv_fuzz_seeds.h): segments written by
//  qv_segment_save (version 3: delta-coded timestamps and int64 keys) from rows
//  decoded by the server's insert path: every field type with nulls, a varchar key
//  with the dynamic field, two vector fields, no rows, two inserts of consecutive and
//  of extreme keys (one- and ten-byte deltas);
//  v2-*: the same in version 2 (raw timestamps and keys), kept to fuzz that reader;
//  v1-*: the same written before the envelope, kept to fuzz the version 1 reader
//  (so are most of the grown corpus).
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "qv_crc.h"
#include "qv_segfile.h"
#include "qv_fuzz_seeds.h"

//  A seed of rows_json inserted at timestamp 1000, then rows_later (if not NULL) at 1003.
static void
s_seed (const char *dir, const char *name, const char *schema_json, bool dynamic,
        const char *rows_json, const char *rows_later)
{
    qv_schema_t *schema = qv_test_schema (schema_json);
    if (dynamic)
        assert_true (qv_schema_add_meta (schema) == 0);
    qv_segment_t *seg = qv_segment_new (schema, 42, 7, 1, 16);
    assert_non_null (seg);
    const char *rows [2] = { rows_json, rows_later };
    for (int i = 0; i < 2; i++)
        if (rows [i]) {
            qv_batch_t *batch = qv_fuzz_batch (seg->schema, rows [i]);
            assert_true (qv_segment_append (seg, batch, 1000 + 3 * (uint64_t) i) >= 0);
            qv_batch_destroy (&batch);
        }
    size_t size;
    void *object = qv_segment_save (seg, &size);
    assert_non_null (object);
    qv_fuzz_seed_write (dir, name, object, size, 0);
    free (object);
    qv_segment_unlink (&seg);
    qv_schema_destroy (&schema);
}

int
LLVMFuzzerInitialize (int *argc, char ***argv)
{
    (void) argc;
    (void) argv;
    const char *dir = qv_fuzz_seeds_dir ();
    if (!dir)
        return 0;
    const char *all_types =
        "[{\"name\": \"id\", \"type\": \"int64\", \"primary\": true},"
        " {\"name\": \"v\", \"type\": \"float_vector\", \"dim\": 3, \"metric\": \"L2\"},"
        " {\"name\": \"b\", \"type\": \"bool\", \"nullable\": true},"
        " {\"name\": \"i8\", \"type\": \"int8\"},"
        " {\"name\": \"i16\", \"type\": \"int16\", \"nullable\": true},"
        " {\"name\": \"i32\", \"type\": \"int32\"},"
        " {\"name\": \"f\", \"type\": \"float\"},"
        " {\"name\": \"d\", \"type\": \"double\", \"nullable\": true},"
        " {\"name\": \"s\", \"type\": \"varchar\", \"max_length\": 16, \"nullable\": true},"
        " {\"name\": \"j\", \"type\": \"json\", \"nullable\": true}]";
    s_seed (dir, "all-types", all_types, false,
            "[{\"id\": 1, \"v\": [0.5, -1, 2], \"b\": true, \"i8\": -3, \"i16\": 300, \"i32\": 70000,"
            "  \"f\": 1.5, \"d\": 2.25, \"s\": \"tech\", \"j\": {\"a\": 1, \"b\": {\"c\": true}, \"arr\": [1, \"x\"]}},"
            " {\"id\": -2, \"v\": [0, 0, 0], \"b\": null, \"i8\": 127, \"i16\": null, \"i32\": -1,"
            "  \"f\": -0.25, \"d\": null, \"s\": null, \"j\": null},"
            " {\"id\": 9223372036854775807, \"v\": [1e30, -1e-30, 3], \"b\": false, \"i8\": 0, \"i16\": -32768,"
            "  \"i32\": 2147483647, \"f\": 0, \"d\": -1e308, \"s\": \"\", \"j\": [1, 2.5, \"é\"]},"
            " {\"id\": 4, \"v\": [1, 1, 1], \"b\": true, \"i8\": 1, \"i16\": 1, \"i32\": 1, \"f\": 1,"
            "  \"d\": 1, \"s\": \"a%b\", \"j\": \"text\"}]", NULL);
    s_seed (dir, "all-types-empty", all_types, false, NULL, NULL);
    s_seed (dir, "int64-key-two-inserts",
            "[{\"name\": \"id\", \"type\": \"int64\", \"primary\": true},"
            " {\"name\": \"v\", \"type\": \"float_vector\", \"dim\": 2, \"metric\": \"L2\"}]", false,
            "[{\"id\": 100, \"v\": [1, 2]}, {\"id\": 101, \"v\": [3, 4]}, {\"id\": 102, \"v\": [5, 6]}]",
            "[{\"id\": -9223372036854775808, \"v\": [0, 1]}, {\"id\": 9223372036854775807, \"v\": [1, 0]},"
            " {\"id\": 0, \"v\": [0.5, 0.5]}]");
    s_seed (dir, "varchar-key-dynamic",
            "[{\"name\": \"pk\", \"type\": \"varchar\", \"primary\": true, \"max_length\": 32},"
            " {\"name\": \"e\", \"type\": \"float_vector\", \"dim\": 4, \"metric\": \"COSINE\"},"
            " {\"name\": \"w\", \"type\": \"float_vector\", \"dim\": 2, \"metric\": \"IP\"}]", true,
            "[{\"pk\": \"doc-1\", \"e\": [1, 0, 0, 0], \"w\": [0.5, 0.5], \"lang\": \"en\", \"n\": 3},"
            " {\"pk\": \"doc-2\", \"e\": [0, 0, 0, 0], \"w\": [-1, 2]},"
            " {\"pk\": \"\", \"e\": [0.1, 0.2, 0.3, 0.4], \"w\": [0, 0], \"tags\": [\"a\", \"b\"]}]", NULL);
    exit (0);
}

static void *
s_save (qv_segment_t *seg, size_t *size)
{
    void *data = qv_segment_save (seg, size);
    if (!data)
        abort ();
    return data;
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    if (size > (1 << 20))
        return 0;
    //  An exact-size copy, resealed or with the CRC appended, so a read one byte too
    //  far is caught
    bool v2;
    uint8_t *image = qv_fuzz_image (data, &size, &v2);
    if (!image)
        return 0;
    qv_segment_t *seg = NULL;
    int rc = qv_segment_load ("fuzz", image, size, &seg);
    free (image);
    if (rc != 0) {
        //  QV_EINVAL: an envelope of a version newer than this build reads
        if ((rc != QV_ECORRUPT && !(v2 && rc == QV_EINVAL)) || seg)
            abort ();
        return 0;
    }
    uint32_t rows = atomic_load (&seg->rows);
    const qv_schema_t *schema = seg->schema;
    qv_wr_t *w = qv_wr_new ();
    for (int fi = 0; fi < schema->nfields; fi++)
        for (uint32_t r = 0; r < rows; r++)
            qv_col_write_value (&schema->fields [fi], &seg->batch->cols [fi], r, w);
    qv_wr_destroy (&w);
    qv_topk_t *top = qv_topk_new (3);
    for (int fi = 0; fi < schema->nfields; fi++) {
        const qv_field_t *f = &schema->fields [fi];
        if (f->type != QV_FLOAT_VECTOR)
            continue;
        float *query = calloc (f->dim, sizeof (float));
        for (uint32_t d = 0; d < f->dim; d++)
            query [d] = (float) d - 0.5f;
        float qnorm = qv_dist_norm (query, f->dim);
        qv_topk_reset (top);
        qv_segment_scan (seg, fi, query, &qnorm, 1, 0, rows, UINT64_MAX, 0, NULL, NULL, &top);
        if (qv_topk_size (top) > (rows < 3 ? rows : 3))
            abort ();
        free (query);
    }
    qv_topk_destroy (&top);
    //  What loads saves to an object that loads, and saves again to the same bytes
    size_t s1, s2;
    void *e1 = s_save (seg, &s1);
    qv_segment_t *again = NULL;
    if (!qv_envelope_is (e1, s1) || qv_segment_load ("fuzz-again", e1, s1, &again) != 0)
        abort ();
    void *e2 = s_save (again, &s2);
    if (s1 != s2 || memcmp (e1, e2, s1) != 0)
        abort ();
    free (e1);
    free (e2);
    qv_segment_unlink (&again);
    qv_segment_unlink (&seg);
    return 0;
}
