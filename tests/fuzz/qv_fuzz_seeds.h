//  Seeds for the libFuzzer harnesses of stored objects (WAL objects, segments, index
//  images), made by the real serializers, so the corpora in tests/fuzz/corpus/ follow
//  the formats when they change.
//
//  A harness that can make its seeds defines LLVMFuzzerInitialize and calls
//  qv_fuzz_seeds_dir (): with QV_FUZZ_SEEDS=DIR in the environment it writes its seeds
//  (named seed-*) into DIR with qv_fuzz_seed_write and exits 0 instead of fuzzing.
//  tools/fuzz.sh --make-seeds runs every harness that way into its corpus directory.
//
//  Seeds are written in the current format (the stored-object envelope, qv_envelope.h).
//  Seeds in a format written before it are kept as v1-* (tools/fuzz.sh --make-seeds
//  leaves them alone: no serializer writes them any more), so the readers of the old
//  formats stay fuzzed; likewise v2-* in segment, segment objects of version 2 (raw
//  timestamps and keys, before they were delta-coded); likewise sq8p1-* in index_hnsw, HNSW_SQ8 payloads of version 1
//  (before graphs were renumbered, qv_hnsw_order.c).
//
//  Requests and rows are written as JSON-like text (tests/unit/qv_test_json.h), which
//  checks with cmocka's asserts: here a failed check aborts.
#ifndef QV_FUZZ_SEEDS_H_INCLUDED
#define QV_FUZZ_SEEDS_H_INCLUDED

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define assert_true(c) do { if (!(c)) { fprintf (stderr, "seed check failed: %s\n", #c); abort (); } } while (0)
#define assert_non_null(p) assert_true ((p) != NULL)
#include "../unit/qv_test_json.h"
#include "qv_batch.h"
#include "qv_crc.h"
#include "qv_envelope.h"
#include "qv_index.h"
#include "qv_le.h"

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

//  If buf (size bytes) starts with the envelope magic, rewrites its payload length (to
//  what follows the header) and both CRCs, so that a mutated object gets past those
//  checks, and returns true; the kind, version, flags and reserved field stay as the
//  input has them, so the reader's checks of those are reached too (fuzz_envelope
//  fuzzes the length and CRC checks themselves). Otherwise leaves buf alone and
//  returns false: the input is in a format written before the envelope.
static inline bool
qv_fuzz_reseal (uint8_t *buf, size_t size)
{
    if (size < QV_ENVELOPE_HEADER_SIZE || !qv_envelope_is (buf, size))
        return false;
    qv_le_put64 (buf + 8, size - QV_ENVELOPE_HEADER_SIZE);
    qv_le_put32 (buf + 24, qv_crc32c (buf + QV_ENVELOPE_HEADER_SIZE, size - QV_ENVELOPE_HEADER_SIZE));
    qv_le_put32 (buf + 28, qv_crc32c (buf, 28));
    return true;
}

//  A new copy of the input (size bytes) with room for a 4-byte trailer after it. An
//  input with the envelope magic is resealed (qv_fuzz_reseal; one shorter than the
//  header stays as it is, a truncated object) and *size_p stays; any other input is
//  taken for a format before the envelope and gets its CRC32C trailer (the CRC of
//  every byte before it) appended, *size_p growing by 4. *v2 tells which (the magic,
//  as the readers choose). NULL when out of memory.
static inline uint8_t *
qv_fuzz_image (const uint8_t *data, size_t *size_p, bool *v2)
{
    size_t size = *size_p;
    uint8_t *image = (uint8_t *) malloc (size + 4);
    if (!image)
        return NULL;
    memcpy (image, data, size);
    *v2 = qv_envelope_is (image, size);
    if (*v2)
        qv_fuzz_reseal (image, size);
    else {
        qv_le_put32 (image + size, qv_crc32c (image, size));
        *size_p = size + 4;
    }
    return image;
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

//  The image of an index of type built over n pseudo-random vectors, as written
//  (the envelope; the index harnesses reseal it), as DIR/seed-<name>.
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
    qv_fuzz_seed_write (dir, name, zchunk_data (chunk), zchunk_size (chunk), 0);
    zchunk_destroy (&chunk);
    qv_index_destroy (&index);
    free (vectors);
}

//  Where the fields of a stored object start in the input: after the envelope's
//  header, or after the 12-byte magic + version of a format before it.
static inline size_t
qv_fuzz_fields_at (const uint8_t *data, size_t size)
{
    return qv_envelope_is (data, size) ? QV_ENVELOPE_HEADER_SIZE : 12;
}

//  Checks what a loaded index serializes to against the image it came from (size
//  bytes, in the envelope when v2, else a version 1 image with its CRC trailer): an
//  envelope of kind VINDEX, version 2, holding the image's fields and payload (but for
//  the parameter block, fields [20, 48), where zeros come back as their defaults), which
//  loads again and serializes to the same bytes. Aborts when not.
static inline void
qv_fuzz_check_index_image (const qv_index_t *index, const uint8_t *image, size_t size, bool v2)
{
    const uint8_t *in = image + (v2 ? QV_ENVELOPE_HEADER_SIZE : 12);
    size_t in_len = v2 ? size - QV_ENVELOPE_HEADER_SIZE : size - 16;
    zchunk_t *chunk = NULL;
    qv_envelope_t env;
    if (qv_index_serialize (index, &chunk) != 0
    ||  qv_envelope_open (NULL, zchunk_data (chunk), zchunk_size (chunk),
                          QV_ENVELOPE_VINDEX, 2, &env) != 0
    ||  env.version != 2 || env.size != in_len || in_len < 48
    ||  memcmp (env.payload, in, 20) != 0
    ||  memcmp (env.payload + 48, in + 48, in_len - 48) != 0)
        abort ();
    qv_index_t *again = NULL;
    zchunk_t *chunk2 = NULL;
    if (qv_index_load (zchunk_data (chunk), zchunk_size (chunk), &again) != 0
    ||  qv_index_serialize (again, &chunk2) != 0
    ||  zchunk_size (chunk2) != zchunk_size (chunk)
    ||  memcmp (zchunk_data (chunk2), zchunk_data (chunk), zchunk_size (chunk)) != 0)
        abort ();
    zchunk_destroy (&chunk2);
    qv_index_destroy (&again);
    zchunk_destroy (&chunk);
}

#endif
