//  Seeds for the libFuzzer harnesses of stored objects (WAL objects, segments, index
//  images), made by the real serializers, so the corpora in tests/fuzz/corpus/ follow
//  the formats when they change.
//
//  A harness that can make its seeds defines LLVMFuzzerInitialize and calls
//  qv_fuzz_seeds_dir (): with QV_FUZZ_SEEDS=DIR in the environment it writes its seeds
//  (named seed-*) into DIR with qv_fuzz_seed_write and exits 0 instead of fuzzing.
//  tools/fuzz.sh --make-seeds runs every harness that way into its corpus directory.
//
//  Requests and rows are written as JSON-like text (tests/unit/qv_test_json.h), which
//  checks with cmocka's asserts: here a failed check aborts.
#ifndef QV_FUZZ_SEEDS_H_INCLUDED
#define QV_FUZZ_SEEDS_H_INCLUDED

#include <stdio.h>
#include <stdlib.h>

#define assert_true(c) do { if (!(c)) { fprintf (stderr, "seed check failed: %s\n", #c); abort (); } } while (0)
#define assert_non_null(p) assert_true ((p) != NULL)
#include "../unit/qv_test_json.h"
#include "qv_batch.h"
#include "qv_index.h"

//  The directory to write seeds into, or NULL to fuzz.
static inline const char *
qv_fuzz_seeds_dir (void)
{
    const char *dir = getenv ("QV_FUZZ_SEEDS");
    return dir && *dir ? dir : NULL;
}

//  Writes one seed, DIR/seed-<name>, of the first size - cut bytes of data (cut: a
//  trailer the harness recomputes itself, such as a CRC).
static inline void
qv_fuzz_seed_write (const char *dir, const char *name, const void *data, size_t size, size_t cut)
{
    char path [1024];
    snprintf (path, sizeof path, "%s/seed-%s", dir, name);
    FILE *f = fopen (path, "wb");
    assert_true (f && size >= cut);
    assert_true (fwrite (data, 1, size - cut, f) == size - cut);
    assert_true (fclose (f) == 0);
}

//  A batch from an insert request's `rows` (JSON-like text: a list of row maps), through
//  the server's own request decoder.
static inline qv_batch_t *
qv_fuzz_batch (const qv_schema_t *schema, const char *rows_json)
{
    qv_doc_t *doc = qv_test_doc (rows_json);
    qv_batch_t *batch = NULL;
    int rc = qv_batch_from_request (schema, qv_doc_root (doc), NULL, 1 << 20, &batch);
    if (rc)
        fprintf (stderr, "seed rows refused: %s\n", qv_err_msg ());
    assert_true (rc == 0);
    qv_doc_destroy (&doc);
    return batch;
}

//  The image of an index of type built over n pseudo-random vectors, without its CRC
//  trailer (the index harnesses append it), as DIR/seed-<name>.
static inline void
qv_fuzz_seed_index (const char *dir, const char *name, const char *type, qv_metric_t metric,
                    uint32_t dim, uint32_t n, const qv_index_params_t *params)
{
    qv_index_t *index = qv_index_new (type, metric, dim, params);
    assert_non_null (index);
    float *vectors = malloc ((size_t) (n ? n : 1) * dim * sizeof (float));
    unsigned seed = 1;
    for (size_t i = 0; i < (size_t) n * dim; i++)
        vectors [i] = (float) rand_r (&seed) / (float) RAND_MAX * 2 - 1;
    if (n)
        assert_true (qv_index_build (index, vectors, n) == 0);
    zchunk_t *chunk = NULL;
    assert_true (qv_index_serialize (index, &chunk) == 0);
    qv_fuzz_seed_write (dir, name, zchunk_data (chunk), zchunk_size (chunk), 4);
    zchunk_destroy (&chunk);
    qv_index_destroy (&index);
    free (vectors);
}

#endif
