//  libFuzzer harness for the IVF payloads behind qv_index_load. The input is an index
//  image in either format:
//    - the stored-object envelope (starts "QVOB", what qv_index_serialize writes): the
//      harness reseals it (qv_fuzz_reseal: length and CRCs; kind, version and flags
//      kept, so those checks are reached too);
//    - version 1 (before the envelope, "QVINDEX") without its CRC32C trailer: the
//      harness appends the right one;
//  so that mutations reach the payload checks instead of stopping at the checksum.
//  Any input loads or returns QV_ECORRUPT / QV_EINVAL / QV_ENOMEM, never crashes; an
//  image that loads answers a search and serializes to an envelope holding the same
//  fields and payload (but for parameters left zero, which come back as their
//  defaults) that loads and serializes again to the same bytes.
//
//  Only images whose type field names an IVF type are tried (fuzz_index_hnsw has the
//  other types). Seeds (QV_FUZZ_SEEDS=DIR, see qv_fuzz_seeds.h): images written by
//  qv_index_serialize of small built indexes of each IVF type, L2 and COSINE, and an
//  untrained one; v1-*: the same written before the envelope, kept to fuzz the
//  version 1 reader (so are most of the grown corpus).
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "qv_crc.h"
#include "qv_index.h"
#include "qv_fuzz_seeds.h"

int
LLVMFuzzerInitialize (int *argc, char ***argv)
{
    (void) argc;
    (void) argv;
    const char *dir = qv_fuzz_seeds_dir ();
    if (!dir)
        return 0;
    qv_index_params_t params = { .nlist = 4, .pq_m = 2, .pq_nbits = 8, .threads = 1, .seed = 7 };
    qv_fuzz_seed_index (dir, "ivf-flat-l2", "IVF_FLAT", QV_METRIC_L2, 4, 40, &params);
    qv_fuzz_seed_index (dir, "ivf-flat-cosine", "IVF_FLAT", QV_METRIC_COSINE, 4, 40, &params);
    qv_fuzz_seed_index (dir, "ivf-flat-untrained", "IVF_FLAT", QV_METRIC_IP, 3, 0, &params);
    qv_fuzz_seed_index (dir, "ivf-sq8-l2", "IVF_SQ8", QV_METRIC_L2, 4, 40, &params);
    qv_fuzz_seed_index (dir, "ivf-sq8-cosine", "IVF_SQ8", QV_METRIC_COSINE, 4, 40, &params);
    qv_fuzz_seed_index (dir, "ivf-pq-l2", "IVF_PQ", QV_METRIC_L2, 4, 300, &params);
    qv_fuzz_seed_index (dir, "ivf-pq-cosine", "IVF_PQ", QV_METRIC_COSINE, 4, 300, &params);
    exit (0);
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    size_t at = qv_fuzz_fields_at (data, size);
    if (size < at + 4 || size > (1 << 20))
        return 0;
    uint32_t type = qv_le_get32 (data + at);
    if (type != QV_INDEX_IVF_FLAT && type != QV_INDEX_IVF_SQ8 && type != QV_INDEX_IVF_PQ)
        return 0;
    bool v2;
    uint8_t *image = qv_fuzz_image (data, &size, &v2);
    if (!image)
        return 0;
    qv_index_t *index = NULL;
    int rc = qv_index_load (image, size, &index);
    if (rc == 0) {
        uint32_t dim = qv_index_dim (index);
        float *query = calloc (dim, sizeof (float));
        uint32_t ids [4];
        float dists [4];
        qv_search_params_t params = { .nprobe = 2 };
        if (!query || qv_index_search (index, query, 4, &params, ids, dists) < 0)
            abort ();
        for (uint32_t i = 0; i < dim; i++)
            query [i] = (float) i - 1.5f;
        params.ef = 1;
        if (qv_index_search (index, query, 4, &params, ids, dists) < 0)
            abort ();
        free (query);
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
    free (image);
    return 0;
}
