//  libFuzzer harness for the HNSW, HNSW_SQ8 and FLAT payloads behind qv_index_load
//  (fuzz_index_ivf has the IVF types). The input is an index image in either format:
//    - the stored-object envelope (starts "QVOB", what qv_index_serialize writes): the
//      harness reseals it (qv_fuzz_reseal: length and CRCs; kind, version and flags
//      kept, so those checks are reached too);
//    - version 1 (before the envelope, "QVINDEX") without its CRC32C trailer: the
//      harness appends the right one;
//  so that mutations reach the payload checks instead of stopping at the checksum.
//  Any input loads or returns QV_ECORRUPT / QV_EINVAL / QV_ENOMEM, never crashes; an
//  image that loads answers searches (with and without a filter, over a graph whose
//  links and levels came from the input) and serializes to an envelope holding the
//  same fields and payload (but for parameters left zero, which come back as their
//  defaults) that loads and serializes again to the same bytes.
//
//  An image that leaves its vectors out (refused by qv_index_load) is loaded onto
//  vectors too (qv_index_load_owned_borrowed), as the server loads it.
//
//  Seeds (QV_FUZZ_SEEDS=DIR, see qv_fuzz_seeds.h): images written by
//  qv_index_serialize of small built indexes of each type and metric, one empty, and
//  HNSW on borrowed vectors (coded lists, and packed u32 ones as before coding);
//  v1-*: the same written before the envelope, kept to fuzz the version 1 reader.
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "qv_crc.h"
#include "qv_index.h"
#include "qv_fuzz_seeds.h"

static void
s_seed (const char *dir, const char *name, const char *type, qv_metric_t metric,
        uint32_t dim, uint32_t n, uint32_t M)
{
    qv_index_params_t params = { .M = M, .ef_construction = 16, .threads = 1, .seed = 7 };
    qv_fuzz_seed_index (dir, name, type, metric, dim, n, &params);
}

int
LLVMFuzzerInitialize (int *argc, char ***argv)
{
    (void) argc;
    (void) argv;
    const char *dir = qv_fuzz_seeds_dir ();
    if (!dir)
        return 0;
    s_seed (dir, "hnsw-l2", "HNSW", QV_METRIC_L2, 4, 40, 4);
    s_seed (dir, "hnsw-ip", "HNSW", QV_METRIC_IP, 3, 12, 2);
    s_seed (dir, "hnsw-cosine", "HNSW", QV_METRIC_COSINE, 5, 20, 3);
    s_seed (dir, "hnsw-one", "HNSW", QV_METRIC_L2, 2, 1, 4);
    s_seed (dir, "hnsw-empty", "HNSW", QV_METRIC_L2, 2, 0, 4);
    //  On borrowed vectors (lean, link lists coded); L2 and IP borrow
    qv_index_params_t lean = { .M = 4, .ef_construction = 16, .threads = 1, .seed = 7,
                               .borrow = 1 };
    qv_fuzz_seed_index (dir, "hnsw-lean-l2", "HNSW", QV_METRIC_L2, 4, 40, &lean);
    lean.M = 2;
    qv_fuzz_seed_index (dir, "hnsw-lean-ip", "HNSW", QV_METRIC_IP, 3, 12, &lean);
    qv_fuzz_seed_index (dir, "hnsw-lean-empty", "HNSW", QV_METRIC_L2, 2, 0, &lean);
    //  ... with its lists as packed u32, as written before they were coded
    setenv ("QV_HNSW_CODE", "0", 1);
    lean.M = 4;
    qv_fuzz_seed_index (dir, "hnsw-lean-packed", "HNSW", QV_METRIC_L2, 4, 40, &lean);
    unsetenv ("QV_HNSW_CODE");
    s_seed (dir, "hnsw-sq8-l2", "HNSW_SQ8", QV_METRIC_L2, 4, 30, 4);
    s_seed (dir, "hnsw-sq8-cosine", "HNSW_SQ8", QV_METRIC_COSINE, 6, 16, 2);
    s_seed (dir, "hnsw-sq8-empty", "HNSW_SQ8", QV_METRIC_L2, 3, 0, 4);
    s_seed (dir, "flat-l2", "FLAT", QV_METRIC_L2, 3, 5, 0);
    s_seed (dir, "flat-ip", "FLAT", QV_METRIC_IP, 2, 3, 0);
    exit (0);
}

static int
s_allow_even (uint32_t row, void *arg)
{
    (void) arg;
    return row % 2 == 0;
}

//  Searches a loaded index: with and without a filter, every row returned within it.
static void
s_exercise (qv_index_t *index)
{
    uint32_t dim = qv_index_dim (index), count = qv_index_count (index);
    float *query = calloc (dim, sizeof (float));
    uint32_t ids [4];
    float dists [4];
    qv_search_params_t params = { .ef = 8 };
    int n = query ? qv_index_search (index, query, 4, &params, ids, dists) : -1;
    if (n < 0 || (uint32_t) n > count)
        abort ();
    for (int i = 0; i < n; i++)
        if (ids [i] >= count)
            abort ();
    for (uint32_t i = 0; i < dim; i++)
        query [i] = (float) i - 1.5f;
    params.ef = 1;
    n = qv_index_search (index, query, 4, &params, ids, dists);
    if (n < 0 || (uint32_t) n > count)
        abort ();
    //  A filter: every row returned passes it
    roaring_bitmap_t *allowed = roaring_bitmap_create ();
    roaring_bitmap_add_range (allowed, 0, count / 2 + 1);
    params = (qv_search_params_t) { .ef = 16, .allowed = allowed, .allow_fn = s_allow_even };
    n = qv_index_search (index, query, 4, &params, ids, dists);
    if (n < 0)
        abort ();
    for (int i = 0; i < n; i++)
        if (ids [i] >= count || !roaring_bitmap_contains (allowed, ids [i]) || ids [i] % 2)
            abort ();
    roaring_bitmap_free (allowed);
    free (query);
}

//  An image that leaves its vectors out (an index on borrowed vectors: HNSW writes its
//  link lists coded, or packed before) loads only onto vectors: given zeros of the count and dim its
//  fields name (when small), from a buffer handed over, as the server loads it. One
//  that loads is searched, and serializes to an image that loads and serializes again
//  to the same bytes.
static void
s_borrowed (const uint8_t *image, size_t size, size_t at)
{
    uint32_t dim = qv_le_get32 (image + at + 8), count = qv_le_get32 (image + at + 12);
    if (dim == 0 || dim > 64 || count > 4096)
        return;
    float *vectors = calloc ((size_t) (count ? count : 1) * dim, sizeof (float));
    void *own = malloc (size);
    if (!vectors || !own)
        abort ();
    for (size_t i = 0; i < (size_t) count * dim; i++)
        vectors [i] = (float) (i % 7) - 3.0f;
    memcpy (own, image, size);
    qv_index_t *index = NULL;
    int rc = qv_index_load_owned_borrowed (own, size, vectors, count, dim, &index);
    if (rc == 0) {
        s_exercise (index);
        zchunk_t *chunk = NULL, *chunk2 = NULL;
        qv_index_t *again = NULL;
        if (qv_index_serialize (index, &chunk) != 0
        ||  qv_index_load_borrowed (zchunk_data (chunk), zchunk_size (chunk), vectors, count,
                                    dim, &again) != 0
        ||  qv_index_serialize (again, &chunk2) != 0
        ||  zchunk_size (chunk2) != zchunk_size (chunk)
        ||  memcmp (zchunk_data (chunk2), zchunk_data (chunk), zchunk_size (chunk)) != 0)
            abort ();
        zchunk_destroy (&chunk);
        zchunk_destroy (&chunk2);
        qv_index_destroy (&again);
        qv_index_destroy (&index);
    }
    else
    if ((rc != QV_ECORRUPT && rc != QV_EINVAL && rc != QV_ENOMEM) || index)
        abort ();
    free (vectors);
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    size_t at = qv_fuzz_fields_at (data, size);
    if (size < at + 4 || size > (1 << 20))
        return 0;
    uint32_t type = qv_le_get32 (data + at);
    if (type != QV_INDEX_HNSW && type != QV_INDEX_HNSW_SQ8 && type != QV_INDEX_FLAT)
        return 0;
    bool v2;
    uint8_t *image = qv_fuzz_image (data, &size, &v2);
    if (!image)
        return 0;
    qv_index_t *index = NULL;
    int rc = qv_index_load (image, size, &index);
    if (rc == 0) {
        s_exercise (index);
        //  Serializes to the envelope: the same fields and payload (parameters left
        //  zero come back as their defaults), which loads and serializes again to the
        //  same bytes
        qv_fuzz_check_index_image (index, image, size, v2);
        qv_index_destroy (&index);
    }
    else
    if (rc != QV_ECORRUPT && rc != QV_EINVAL && rc != QV_ENOMEM)
        abort ();
    else
    if (index)
        abort ();
    if (rc == QV_EINVAL && v2 && size >= at + 16)
        s_borrowed (image, size, at);
    free (image);
    return 0;
}
