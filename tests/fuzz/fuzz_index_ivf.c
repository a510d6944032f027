//  libFuzzer harness for the IVF payloads behind qv_index_load: the input is an index
//  image without its CRC32C trailer, and the harness appends the right one, so that
//  mutations reach the payload checks instead of stopping at the checksum. Any input
//  loads or returns QV_ECORRUPT / QV_EINVAL / QV_ENOMEM, never crashes; an image that
//  loads answers a search and serializes back to the same bytes (but for parameters
//  left zero, which come back as their defaults).
//
//  Only images whose type field names an IVF type are tried (fuzz_index_hnsw has the
//  other types). Seeds (QV_FUZZ_SEEDS=DIR, see qv_fuzz_seeds.h): images written by
//  qv_index_serialize of small built indexes of each IVF type, L2 and COSINE, and an
//  untrained one.
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
    if (size < 16 || size > (1 << 20))
        return 0;
    uint32_t type = (uint32_t) data [12] | (uint32_t) data [13] << 8
                  | (uint32_t) data [14] << 16 | (uint32_t) data [15] << 24;
    if (type != QV_INDEX_IVF_FLAT && type != QV_INDEX_IVF_SQ8 && type != QV_INDEX_IVF_PQ)
        return 0;
    uint8_t *image = malloc (size + 4);
    if (!image)
        return 0;
    memcpy (image, data, size);
    uint32_t crc = qv_crc32c (image, size);
    for (int i = 0; i < 4; i++)
        image [size + i] = (uint8_t) (crc >> (8 * i));

    qv_index_t *index = NULL;
    int rc = qv_index_load (image, size + 4, &index);
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
        //  The header's parameter block [32, 60) may come back with defaults filled in
        //  for zeros (and the CRC with it); everything else is written back as read.
        zchunk_t *chunk = NULL;
        if (qv_index_serialize (index, &chunk) != 0
        ||  zchunk_size (chunk) != size + 4
        ||  memcmp (zchunk_data (chunk), image, 32) != 0
        ||  memcmp (zchunk_data (chunk) + 60, image + 60, size - 60) != 0)
            abort ();
        zchunk_destroy (&chunk);
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
