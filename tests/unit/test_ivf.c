//  IVF_FLAT / IVF_SQ8 / IVF_PQ: recall on SIFT-small, IP and COSINE against brute force, filters,
//  save/load, corruption, adds and parameter checks.
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "qv_ivf.h"
#include "qv_crc.h"
#include "qv_envelope.h"
#include "qv_vecs.h"
#include "qv_sq8.h"
#include "qv_le.h"

#if defined(__SANITIZE_ADDRESS__)
#   define S_ASAN 1
#else
#   define S_ASAN 0
#endif

static const char *s_types [] = { "IVF_FLAT", "IVF_SQ8", "IVF_PQ" };
#define S_NTYPES 3

//  --------------------------------------------------------------------------
//  Helpers

static uint64_t s_seed = 1;

static float
s_uniform (void)
{
    s_seed = s_seed * 6364136223846793005ull + 1442695040888963407ull;
    return (float) ((s_seed >> 40) & 0xFFFFFF) / (float) 0x1000000;
}

//  n rows of dim floats around nc random centres (spread 1, noise +-0.3), each row
//  scaled by a random factor in [0.5, 2) when scaled, else normalised to unit length.
static float *
s_clustered (size_t n, size_t dim, size_t nc, int scaled)
{
    float *centres = malloc (nc * dim * sizeof (float));
    float *x = malloc (n * dim * sizeof (float));
    for (size_t i = 0; i < nc * dim; i++)
        centres [i] = s_uniform () * 2 - 1;
    for (size_t i = 0; i < n; i++) {
        size_t c = (size_t) (s_uniform () * nc) % nc;
        double norm = 0;
        for (size_t d = 0; d < dim; d++) {
            float v = centres [c * dim + d] + (s_uniform () - 0.5f) * 0.6f;
            x [i * dim + d] = v;
            norm += (double) v * v;
        }
        float f = scaled? 0.5f + 1.5f * s_uniform (): (float) (1.0 / sqrt (norm));
        for (size_t d = 0; d < dim; d++)
            x [i * dim + d] *= f;
    }
    free (centres);
    return x;
}

typedef struct {
    double score;               //  smaller is better
    uint32_t id;
} ref_t;

static int
s_ref_cmp (const void *a, const void *b)
{
    const ref_t *x = a, *y = b;
    if (x->score != y->score)
        return x->score < y->score? -1: 1;
    return x->id < y->id? -1: x->id > y->id;
}

//  Exact top-k in double precision over the rows allow [] permits (NULL: all), with
//  the public distances (squared L2, IP, or cosine similarity). Returns how many.
static uint32_t
s_brute (const float *base, size_t n, size_t dim, const float *q, qv_metric_t metric,
         const uint8_t *allow, uint32_t k, uint32_t *ids, float *dists)
{
    ref_t *r = malloc (n * sizeof *r);
    size_t m = 0;
    double qn = 0;
    for (size_t d = 0; d < dim; d++)
        qn += (double) q [d] * q [d];
    for (size_t i = 0; i < n; i++) {
        if (allow && !allow [i])
            continue;
        const float *v = base + i * dim;
        double l2 = 0, ip = 0, vn = 0;
        for (size_t d = 0; d < dim; d++) {
            l2 += ((double) q [d] - v [d]) * ((double) q [d] - v [d]);
            ip += (double) q [d] * v [d];
            vn += (double) v [d] * v [d];
        }
        r [m].score = metric == QV_METRIC_L2? l2: metric == QV_METRIC_IP? -ip: -ip / sqrt (qn * vn);
        r [m++].id = (uint32_t) i;
    }
    qsort (r, m, sizeof *r, s_ref_cmp);
    uint32_t out = m < k? (uint32_t) m: k;
    for (uint32_t i = 0; i < out; i++) {
        ids [i] = r [i].id;
        dists [i] = (float) (metric == QV_METRIC_L2? r [i].score: -r [i].score);
    }
    free (r);
    return out;
}

//  |got ∩ want| over k.
static double
s_overlap (const uint32_t *got, int got_n, const uint32_t *want, uint32_t want_n)
{
    int hits = 0;
    for (int i = 0; i < got_n; i++)
        for (uint32_t j = 0; j < want_n; j++)
            if (got [i] == want [j]) {
                hits++;
                break;
            }
    return want_n? (double) hits / want_n: 1.0;
}

static void
s_expect_exact (int got_n, const uint32_t *got, const float *gotd,
                uint32_t want_n, const uint32_t *want, const float *wantd)
{
    assert_int_equal (got_n, want_n);
    for (uint32_t i = 0; i < want_n; i++) {
        if (got [i] != want [i])
            fprintf (stderr, "rank %u: got %u (%g), want %u (%g)\n", i, got [i], gotd [i], want [i], wantd [i]);
        assert_int_equal (got [i], want [i]);
        assert_true (fabsf (gotd [i] - wantd [i]) <= 1e-4f * (1 + fabsf (wantd [i])));
    }
}

//  Reads siftsmall's file name under dir with qv_vecs_read; NULL if absent.
static void *
s_read_vecs (const char *dir, const char *name, uint32_t *n, uint32_t *dim)
{
    char path [1024];
    snprintf (path, sizeof path, "%s/siftsmall/%s", dir, name);
    return qv_vecs_read (path, 0, dim, n);
}

static qv_index_t *
s_build (const char *type, qv_metric_t metric, uint32_t dim, uint32_t nlist, uint32_t pq_m,
         const float *base, uint32_t n)
{
    qv_index_params_t params = { .nlist = nlist, .pq_m = pq_m, .threads = 2, .seed = 5 };
    qv_index_t *index = qv_index_new (type, metric, dim, &params);
    assert_non_null (index);
    int rc = qv_index_build (index, base, n);
    if (rc)
        fprintf (stderr, "build %s: %s\n", type, qv_err_msg ());
    assert_int_equal (rc, 0);
    assert_int_equal (qv_index_count (index), n);
    return index;
}

//  --------------------------------------------------------------------------
//  Recall on SIFT-small (10k x 128, 100 queries, exact top-100 in gt.ivecs).
//  Floors at nlist=100, k=10, re-rank of k * 8 candidates (the default):
//      IVF_FLAT nprobe=16 >= 0.95; IVF_SQ8 nprobe=16 >= 0.95; IVF_PQ pq_m=16 nprobe=16 >= 0.90
//  Code memory: IVF_SQ8 4x, IVF_PQ (16 bytes per row) 32x smaller than float32.

static void
test_recall_siftsmall (void **state)
{
    (void) state;
    const char *dir = getenv ("QV_DATA_DIR");
    if (!dir) {
        fprintf (stderr, "skip: QV_DATA_DIR is not set (CTest sets it)\n");
        skip ();
    }
    uint32_t nb, dim, nq, qdim, ng, gdim;
    float *base = s_read_vecs (dir, "base.fvecs", &nb, &dim);
    float *queries = s_read_vecs (dir, "query.fvecs", &nq, &qdim);
    int32_t *gt = s_read_vecs (dir, "gt.ivecs", &ng, &gdim);
    if (!base || !queries || !gt)
        fprintf (stderr, "siftsmall not found under %s\n", dir);
    assert_true (base && queries && gt);
    assert_int_equal (dim, 128);
    assert_int_equal (qdim, 128);
    assert_int_equal (ng, nq);
    if (S_ASAN)
        nq = 25;                    //  fewer queries under the sanitizer
    const uint32_t k = 10;
    const double floors [S_NTYPES] = { 0.95, 0.95, 0.90 };
    for (int t = 0; t < S_NTYPES; t++) {
        qv_index_t *index = s_build (s_types [t], QV_METRIC_L2, dim, 100, 16, base, nb);
        uint32_t nprobes [] = { 1, 4, 16, 64 };
        double recall [4];
        for (int p = 0; p < 4; p++) {
            qv_search_params_t sp = { .nprobe = nprobes [p] };
            double hits = 0;
            for (uint32_t q = 0; q < nq; q++) {
                uint32_t ids [10], want [10];
                float d [10];
                int n = qv_index_search (index, queries + (size_t) q * dim, k, &sp, ids, d);
                assert_int_equal (n, k);
                for (uint32_t i = 0; i < k; i++)
                    want [i] = (uint32_t) gt [(size_t) q * gdim + i];
                hits += s_overlap (ids, n, want, k);
                for (int i = 1; i < n; i++)
                    assert_true (d [i - 1] <= d [i]);
            }
            recall [p] = hits / nq;
        }
        fprintf (stderr, "%s recall@10 nprobe 1/4/16/64: %.3f %.3f %.3f %.3f\n",
                 s_types [t], recall [0], recall [1], recall [2], recall [3]);
        assert_true (recall [2] >= floors [t]);
        assert_true (recall [3] >= recall [0]);
        if (t == 2) {
            //  Codes alone (no re-rank slack, ef = k) rank worse: the re-rank is what
            //  lifts PQ's recall, and the codes really are what the scan reads.
            qv_search_params_t sp = { .nprobe = 16, .ef = k };
            double hits = 0;
            for (uint32_t q = 0; q < nq; q++) {
                uint32_t ids [10], want [10];
                float d [10];
                int n = qv_index_search (index, queries + (size_t) q * dim, k, &sp, ids, d);
                for (uint32_t i = 0; i < k; i++)
                    want [i] = (uint32_t) gt [(size_t) q * gdim + i];
                hits += s_overlap (ids, n, want, k);
            }
            fprintf (stderr, "IVF_PQ recall@10 nprobe 16 without re-rank slack: %.3f\n", hits / nq);
            assert_true (hits / nq < recall [2] - 0.05);
        }

        size_t f32 = (size_t) nb * dim * 4;
        size_t code = qv_ivf_code_bytes (index);
        fprintf (stderr, "%s memory: codes %zu B (float32 %zu B, %.1fx), total %zu B\n",
                 s_types [t], code, f32, (double) f32 / code, qv_index_memory_bytes (index));
        if (t == 1)
            assert_int_equal (code * 4, f32);
        if (t == 2)
            assert_true (code * 16 <= f32);
        assert_int_equal (qv_index_vector_bytes (index), f32);
        assert_true (qv_index_memory_bytes (index) >= f32 + code * (t > 0));
        qv_index_destroy (&index);
    }
    free (base);
    free (queries);
    free (gt);
}

//  --------------------------------------------------------------------------
//  IP and COSINE against brute force on a clustered set: unit vectors for IP, scaled
//  ones for COSINE (the index normalises them).

static void
test_ip_and_cosine (void **state)
{
    (void) state;
    const uint32_t n = 4000, dim = 32, nq = 40, k = 10, nlist = 32;
    for (int m = 0; m < 2; m++) {
        qv_metric_t metric = m == 0? QV_METRIC_IP: QV_METRIC_COSINE;
        float *base = s_clustered (n, dim, 50, metric == QV_METRIC_COSINE);
        float *queries = s_clustered (nq, dim, 50, metric == QV_METRIC_COSINE);
        for (int t = 0; t < S_NTYPES; t++) {
            qv_index_t *index = s_build (s_types [t], metric, dim, nlist, 8, base, n);
            assert_int_equal (qv_index_metric (index), metric);
            double hits = 0;
            for (uint32_t q = 0; q < nq; q++) {
                const float *query = queries + (size_t) q * dim;
                uint32_t ids [10], want [10];
                float d [10], wantd [10];
                uint32_t wn = s_brute (base, n, dim, query, metric, NULL, k, want, wantd);
                qv_search_params_t sp = { .nprobe = 8 };
                int got = qv_index_search (index, query, k, &sp, ids, d);
                assert_int_equal (got, k);
                hits += s_overlap (ids, got, want, wn);
                //  Larger is better for IP and COSINE, and the distances are exact
                //  after the scan or the re-rank.
                for (int i = 1; i < got; i++)
                    assert_true (d [i - 1] >= d [i]);
                //  Every list probed and everything re-ranked: the exact answer.
                sp = (qv_search_params_t) { .nprobe = nlist, .ef = n };
                got = qv_index_search (index, query, k, &sp, ids, d);
                s_expect_exact (got, ids, d, wn, want, wantd);
            }
            double recall = hits / nq;
            fprintf (stderr, "%s %s recall@10 nlist=%u nprobe=8: %.3f\n",
                     s_types [t], qv_metric_name (metric), nlist, recall);
            assert_true (recall >= 0.90);
            qv_index_destroy (&index);
        }
        free (base);
        free (queries);
    }
}

//  --------------------------------------------------------------------------
//  Filters: exact filtered answers where the filter is restrictive or every list is
//  probed; only allowed rows otherwise.

static int
s_allow_third (uint32_t row, void *arg)
{
    (void) arg;
    return row % 3 == 0;
}

static void
test_filtered (void **state)
{
    (void) state;
    const uint32_t n = 2000, dim = 16, nq = 15, k = 10, nlist = 20;
    float *base = s_clustered (n, dim, 30, 1);
    float *queries = s_clustered (nq, dim, 30, 1);
    uint8_t *allow = calloc (n, 1);
    for (int t = 0; t < S_NTYPES; t++) {
        qv_index_t *index = s_build (s_types [t], QV_METRIC_L2, dim, nlist, 4, base, n);
        //  0: 1% bitmap (exact scan path); 1: 50% bitmap, all lists, all re-ranked;
        //  2: callback, all lists; 3: 50% bitmap + callback, 2 lists (approximate);
        //  4: bitmap of nothing.
        for (int f = 0; f < 5; f++) {
            roaring_bitmap_t *bm = roaring_bitmap_create ();
            qv_search_params_t sp = { .nprobe = nlist, .ef = n };
            if (f == 0)
                for (uint32_t i = 0; i < n; i += 100)
                    roaring_bitmap_add (bm, i);
            if (f == 1 || f == 3)
                for (uint32_t i = 0; i < n; i++)
                    if (s_uniform () < 0.5f)
                        roaring_bitmap_add (bm, i);
            if (f == 0)
                roaring_bitmap_add (bm, n + 7);     //  beyond the index: ignored
            if (f != 2)
                sp.allowed = bm;
            if (f == 2 || f == 3)
                sp.allow_fn = s_allow_third;
            if (f == 0)
                sp.nprobe = 2;      //  restrictive: answered exactly whatever nprobe
            if (f == 3)
                sp = (qv_search_params_t) { .nprobe = 2, .allowed = bm, .allow_fn = s_allow_third };
            for (uint32_t i = 0; i < n; i++)
                allow [i] = (uint8_t) qv_search_params_allows (&sp, i);
            for (uint32_t q = 0; q < nq; q++) {
                const float *query = queries + (size_t) q * dim;
                uint32_t ids [10], want [10];
                float d [10], wantd [10];
                uint32_t wn = s_brute (base, n, dim, query, QV_METRIC_L2, allow, k, want, wantd);
                int got = qv_index_search (index, query, k, &sp, ids, d);
                assert_true (got >= 0);
                for (int i = 0; i < got; i++)
                    assert_true (allow [ids [i]]);
                if (f == 4)
                    assert_int_equal (got, 0);
                else
                if (f != 3)
                    s_expect_exact (got, ids, d, wn, want, wantd);
            }
            roaring_bitmap_free (bm);
        }
        qv_index_destroy (&index);
    }
    free (allow);
    free (base);
    free (queries);
}

//  --------------------------------------------------------------------------
//  Save and load: the loaded index answers identically and re-serializes to the
//  same bytes.

static void
test_save_load (void **state)
{
    (void) state;
    const uint32_t n = 3000, dim = 32, nq = 20, k = 10;
    float *base = s_clustered (n, dim, 40, 1);
    float *queries = s_clustered (nq, dim, 40, 1);
    for (int t = 0; t < S_NTYPES; t++)
        for (int m = 0; m < 3; m++) {
            qv_metric_t metric = (qv_metric_t) m;
            qv_index_t *index = s_build (s_types [t], metric, dim, 25, 8, base, n);
            zchunk_t *chunk = NULL;
            assert_int_equal (qv_index_serialize (index, &chunk), 0);
            qv_index_t *loaded = NULL;
            assert_int_equal (qv_index_load (zchunk_data (chunk), zchunk_size (chunk), &loaded), 0);
            assert_non_null (loaded);
            assert_int_equal (qv_index_type (loaded), qv_index_type (index));
            assert_int_equal (qv_index_metric (loaded), metric);
            assert_int_equal (qv_index_count (loaded), n);
            assert_int_equal (qv_index_memory_bytes (loaded), qv_index_memory_bytes (index));
            assert_int_equal (qv_ivf_code_bytes (loaded), qv_ivf_code_bytes (index));
            for (uint32_t q = 0; q < nq; q++) {
                uint32_t ia [10], ib [10];
                float da [10], db [10];
                qv_search_params_t sp = { .nprobe = 1 + q % 6 };
                int na = qv_index_search (index, queries + q * dim, k, &sp, ia, da);
                int nb = qv_index_search (loaded, queries + q * dim, k, &sp, ib, db);
                assert_int_equal (na, k);
                assert_int_equal (na, nb);
                assert_memory_equal (ia, ib, sizeof ia);
                assert_memory_equal (da, db, sizeof da);
            }
            zchunk_t *again = NULL;
            assert_int_equal (qv_index_serialize (loaded, &again), 0);
            assert_int_equal (zchunk_size (again), zchunk_size (chunk));
            assert_memory_equal (zchunk_data (again), zchunk_data (chunk), zchunk_size (chunk));
            zchunk_destroy (&again);
            zchunk_destroy (&chunk);
            qv_index_destroy (&loaded);
            qv_index_destroy (&index);
        }

    //  An index that never saw a row saves and loads too, and stays empty.
    qv_index_params_t params = { .nlist = 4 };
    qv_index_t *empty = qv_index_new ("IVF_SQ8", QV_METRIC_L2, 8, &params);
    zchunk_t *chunk = NULL;
    assert_int_equal (qv_index_serialize (empty, &chunk), 0);
    qv_index_t *loaded = NULL;
    assert_int_equal (qv_index_load (zchunk_data (chunk), zchunk_size (chunk), &loaded), 0);
    uint32_t ids [4];
    float d [4];
    assert_int_equal (qv_index_search (loaded, base, 4, NULL, ids, d), 0);
    zchunk_destroy (&chunk);
    qv_index_destroy (&loaded);
    qv_index_destroy (&empty);
    free (base);
    free (queries);
}

//  --------------------------------------------------------------------------
//  Corruption: any flipped or missing byte fails the frame's CRC; payloads that pass
//  the CRC but are inconsistent are refused by the IVF loader. Never a crash.

#define S_HEADER (32 + 56)     //  envelope header, index fields

//  Loads bytes after sealing the envelope again (so the payload checks are reached).
static int
s_load_resealed (uint8_t *bytes, size_t size)
{
    qv_envelope_seal (bytes, size, QV_ENVELOPE_VINDEX, 2);
    qv_index_t *index = NULL;
    int rc = qv_index_load (bytes, size, &index);
    if (rc == 0)
        qv_index_destroy (&index);
    else
        assert_null (index);
    return rc;
}

static void
test_corruption (void **state)
{
    (void) state;
    const uint32_t n = 600, dim = 8, nlist = 6;
    float *base = s_clustered (n, dim, 10, 1);
    for (int t = 0; t < S_NTYPES; t++) {
        qv_index_t *index = s_build (s_types [t], QV_METRIC_L2, dim, nlist, 4, base, n);
        zchunk_t *chunk = NULL;
        assert_int_equal (qv_index_serialize (index, &chunk), 0);
        size_t size = zchunk_size (chunk);
        const uint8_t *orig = zchunk_data (chunk);
        uint8_t *copy = malloc (size);
        qv_index_t *loaded = NULL;

        //  Truncations and flipped bytes.
        for (size_t cut = 0; cut < size; cut += cut < 100? 1: 101)
            assert_int_equal (qv_index_load (orig, cut, &loaded), QV_ECORRUPT);
        for (size_t at = 0; at < size; at += at < 100? 1: 37) {
            memcpy (copy, orig, size);
            copy [at] ^= 0x21;
            assert_int_equal (qv_index_load (copy, size, &loaded), QV_ECORRUPT);
            assert_null (loaded);
        }
        //  The resealed original loads: the edits below are what is refused.
        memcpy (copy, orig, size);
        assert_int_equal (s_load_resealed (copy, size), 0);

        uint8_t *payload = copy + S_HEADER;
        size_t centroids = (size_t) nlist * dim * 4;
        uint8_t *offsets = payload + 12 + centroids;
        uint8_t *ids = offsets + (nlist + 1) * 4;
        struct { size_t at; uint32_t value; } edits [] = {
            { 0, nlist + 1 },                       //  nlist disagrees with the frame
            { 4, 3 },                               //  code size
            { 8, 2 },                               //  trained flag
            { 8, 0 },                               //  untrained, yet rows follow
            { (size_t) (offsets - payload) + 4, n + 1 },        //  a list past the end
            { (size_t) (offsets - payload), 1 },                //  first offset not 0
            { (size_t) (offsets - payload) + nlist * 4, n - 1 },  //  last offset not count
            { (size_t) (ids - payload), n },                    //  row id out of range
            { (size_t) (ids - payload), qv_le_get32 (ids + 4) },    //  row id repeated
        };
        for (size_t e = 0; e < sizeof edits / sizeof edits [0]; e++) {
            memcpy (copy, orig, size);
            qv_le_put32 (payload + edits [e].at, edits [e].value);
            int rc = s_load_resealed (copy, size);
            if (rc != QV_ECORRUPT)
                fprintf (stderr, "%s edit %zu: rc %d\n", s_types [t], e, rc);
            assert_int_equal (rc, QV_ECORRUPT);
        }
        //  Offsets decreasing in the middle.
        memcpy (copy, orig, size);
        qv_le_put32 (offsets + 8, qv_le_get32 (offsets + 12) + 1);
        assert_int_equal (s_load_resealed (copy, size), QV_ECORRUPT);
        //  A non-finite quantizer value (the last float of the payload: an SQ8 step
        //  or a PQ codebook entry).
        if (t > 0) {
            memcpy (copy, orig, size);
            float nan = NAN;
            memcpy (copy + size - 8, &nan, 4);
            assert_int_equal (s_load_resealed (copy, size), QV_ECORRUPT);
        }
        //  A payload one row short, with the frame's sizes made consistent.
        memcpy (copy, orig, size);
        qv_le_put32 (copy + 32 + 12, n - 1);       //  row count
        assert_int_equal (s_load_resealed (copy, size), QV_ECORRUPT);
        //  A payload cut short, frame payload size and length made consistent.
        memcpy (copy, orig, size);
        size_t shorter = size - 16;
        qv_le_put64 (copy + 32 + 48, shorter - S_HEADER);     //  payload size
        assert_int_equal (s_load_resealed (copy, shorter), QV_ECORRUPT);

        free (copy);
        zchunk_destroy (&chunk);
        qv_index_destroy (&index);
    }
    free (base);
}

//  --------------------------------------------------------------------------
//  Adds, parameters, and the PQ table switch.

static void
test_add_and_params (void **state)
{
    (void) state;
    const uint32_t n = 1200, dim = 16;
    float *base = s_clustered (n, dim, 20, 1);
    for (int t = 0; t < S_NTYPES; t++) {
        qv_index_params_t params = { .nlist = 10, .pq_m = 4 };
        qv_index_t *index = qv_index_new (s_types [t], QV_METRIC_L2, dim, &params);
        assert_non_null (index);
        assert_int_equal (qv_index_build (index, base, 5), QV_EINVAL);    //  < nlist rows
        //  add on an empty index trains first; later adds continue the ids.
        assert_int_equal (qv_index_add (index, base, 700), 0);
        assert_int_equal (qv_index_add (index, base + 700 * dim, n - 700), 0);
        assert_int_equal (qv_index_count (index), n);
        for (uint32_t row = 0; row < n; row += 97) {
            uint32_t ids [3];
            float d [3];
            qv_search_params_t sp = { .nprobe = 3 };
            assert_int_equal (qv_index_search (index, base + (size_t) row * dim, 3, &sp, ids, d), 3);
            assert_int_equal (ids [0], row);
            assert_true (d [0] <= 1e-6f);
        }
        size_t code = qv_ivf_code_bytes (index);
        assert_int_equal (code, (size_t) n * (t == 0? dim * 4: t == 1? dim: 4));
        qv_index_destroy (&index);
    }
    //  Rejected parameters.
    qv_index_params_t bad_m = { .nlist = 4, .pq_m = 5 };
    assert_null (qv_index_new ("IVF_PQ", QV_METRIC_L2, dim, &bad_m));
    qv_index_params_t bad_bits = { .nlist = 4, .pq_m = 4, .pq_nbits = 4 };
    assert_null (qv_index_new ("IVF_PQ", QV_METRIC_L2, dim, &bad_bits));
    qv_index_params_t big_nlist = { .nlist = (1u << 20) + 1 };
    assert_null (qv_index_new ("IVF_FLAT", QV_METRIC_L2, dim, &big_nlist));
    //  PQ needs 256 training rows, whatever nlist.
    qv_index_params_t small = { .nlist = 2, .pq_m = 4 };
    qv_index_t *index = qv_index_new ("IVF_PQ", QV_METRIC_L2, dim, &small);
    assert_int_equal (qv_index_build (index, base, 200), QV_EINVAL);
    qv_index_destroy (&index);
    //  Not an IVF index: no code bytes.
    index = qv_index_new ("FLAT", QV_METRIC_L2, dim, NULL);
    assert_int_equal (qv_ivf_code_bytes (index), 0);
    qv_index_destroy (&index);
    free (base);
}

//  IVF_PQ without its precomputed table (too large for the limit) gives the same
//  answers: the table is an optimisation, not a different distance.
static void
test_pq_table_switch (void **state)
{
    (void) state;
    const uint32_t n = 3000, dim = 32, nq = 30, k = 10;
    float *base = s_clustered (n, dim, 40, 1);
    float *queries = s_clustered (nq, dim, 40, 1);
    qv_index_t *with = s_build ("IVF_PQ", QV_METRIC_L2, dim, 30, 8, base, n);
    setenv ("QV_IVF_PQ_TABLE_MAX", "0", 1);
    qv_index_t *without = s_build ("IVF_PQ", QV_METRIC_L2, dim, 30, 8, base, n);
    unsetenv ("QV_IVF_PQ_TABLE_MAX");
    assert_int_equal (qv_index_memory_bytes (with) - qv_index_memory_bytes (without),
                      (size_t) 30 * 8 * 256 * 4);
    double same = 0;
    for (uint32_t q = 0; q < nq; q++) {
        uint32_t ia [10], ib [10];
        float da [10], db [10];
        qv_search_params_t sp = { .nprobe = 4, .ef = k };     //  no re-rank slack
        int na = qv_index_search (with, queries + q * dim, k, &sp, ia, da);
        int nb = qv_index_search (without, queries + q * dim, k, &sp, ib, db);
        assert_int_equal (na, nb);
        same += s_overlap (ia, na, ib, (uint32_t) nb);
    }
    assert_true (same / nq >= 0.98);
    qv_index_destroy (&with);
    qv_index_destroy (&without);
    free (base);
    free (queries);
}

//  The re-rank candidates are exactly the ef best rows by code distance: with one list
//  (every row probed, positions in id order) and the quantizer rebuilt here from the
//  same rows, the answer is predictable for any ef.
static void
test_candidates_are_best_codes (void **state)
{
    (void) state;
    const uint32_t n = 3000, dim = 16, nq = 20, k = 10;
    float *base = s_clustered (n, dim, 30, 1);
    float *queries = s_clustered (nq, dim, 30, 1);
    qv_index_t *index = s_build ("IVF_SQ8", QV_METRIC_L2, dim, 1, 4, base, n);
    qv_sq8_t *sq = qv_sq8_new (dim);
    assert_int_equal (qv_sq8_train (sq, base, n), 0);
    uint8_t *codes = malloc ((size_t) n * dim);
    qv_sq8_encode (sq, base, n, codes);
    float *approx = malloc (n * sizeof (float));
    ref_t *order = malloc (n * sizeof (ref_t));
    uint32_t efs [] = { 10, 11, 37, 100, 2999 };
    for (size_t e = 0; e < sizeof efs / sizeof efs [0]; e++)
        for (uint32_t q = 0; q < nq; q++) {
            const float *query = queries + (size_t) q * dim;
            float buffer [16];
            qv_sq8_query_t prepared;
            qv_sq8_query_prepare (sq, QV_METRIC_L2, query, buffer, &prepared);
            qv_sq8_query_scan (&prepared, codes, n, approx);
            for (uint32_t i = 0; i < n; i++)
                order [i] = (ref_t) { approx [i], i };
            qsort (order, n, sizeof (ref_t), s_ref_cmp);
            //  The ef best by code distance, ranked by exact distance.
            for (uint32_t i = 0; i < efs [e]; i++) {
                const float *v = base + (size_t) order [i].id * dim;
                double l2 = 0;
                for (uint32_t d = 0; d < dim; d++)
                    l2 += ((double) query [d] - v [d]) * ((double) query [d] - v [d]);
                order [i].score = l2;
            }
            qsort (order, efs [e], sizeof (ref_t), s_ref_cmp);
            uint32_t ids [10];
            float d [10];
            qv_search_params_t sp = { .nprobe = 1, .ef = efs [e] };
            assert_int_equal (qv_index_search (index, query, k, &sp, ids, d), k);
            for (uint32_t i = 0; i < k; i++) {
                assert_int_equal (ids [i], order [i].id);
                assert_float_equal (d [i], order [i].score, 1e-4 * (1 + order [i].score));
            }
        }
    qv_sq8_destroy (&sq);
    qv_index_destroy (&index);
    free (codes);
    free (approx);
    free (order);
    free (base);
    free (queries);
}

//  qv_index_set_cancel: with the flag up, every IVF type's build stops in its k-means
//  training, QV_EUNAVAIL; with the flag down it builds.
static void
test_cancel (void **state)
{
    (void) state;
    const size_t n = 4000, dim = 16;
    float *v = s_clustered (n, dim, 8, 0);
    const char *types [] = { "IVF_FLAT", "IVF_SQ8", "IVF_PQ" };
    for (int t = 0; t < 3; t++) {
        qv_index_params_t params = { .nlist = 16, .pq_m = 4 };
        atomic_bool cancel = true;
        qv_index_t *index = qv_index_new (types [t], QV_METRIC_L2, dim, &params);
        assert_non_null (index);
        qv_index_set_cancel (index, &cancel);
        assert_int_equal (qv_index_build (index, v, (uint32_t) n), QV_EUNAVAIL);
        assert_non_null (strstr (qv_err_msg (), "cancelled"));
        qv_index_destroy (&index);
        atomic_store (&cancel, false);
        index = qv_index_new (types [t], QV_METRIC_L2, dim, &params);
        qv_index_set_cancel (index, &cancel);
        assert_int_equal (qv_index_build (index, v, (uint32_t) n), 0);
        assert_int_equal (qv_index_count (index), n);
        qv_index_destroy (&index);
    }
    free (v);
}

//  qv_index_estimate_bytes against what each type holds once built (every index type,
//  not only IVF: one estimator serves a memory budget for all), within 10%; and 0 for
//  parameters the type refuses.
static void
test_estimate (void **state)
{
    (void) state;
    const char *types [] = { "FLAT", "HNSW", "HNSW_SQ8", "IVF_FLAT", "IVF_SQ8", "IVF_PQ" };
    const uint32_t n = 6000, dim = 32;
    float *x = s_clustered (n, dim, 20, 1);
    for (size_t t = 0; t < sizeof types / sizeof types [0]; t++) {
        qv_index_params_t params = { .M = 12, .nlist = 32, .pq_m = 8, .threads = 2 };
        size_t est = qv_index_estimate_bytes (types [t], QV_METRIC_L2, dim, &params, n);
        qv_index_t *index = qv_index_new (types [t], QV_METRIC_L2, dim, &params);
        assert_non_null (index);
        assert_int_equal (qv_index_build (index, x, n), 0);
        size_t held = qv_index_memory_bytes (index);
        double ratio = (double) est / held;
        if (ratio < 0.9 || ratio > 1.1)
            fail_msg ("%s: estimated %zu bytes, holds %zu (%.3fx)", types [t], est, held, ratio);
        qv_index_destroy (&index);
    }
    qv_index_params_t bad = { .M = 1 };
    assert_int_equal (qv_index_estimate_bytes ("HNSW", QV_METRIC_L2, dim, &bad, n), 0);
    assert_int_equal (qv_index_estimate_bytes ("NOPE", QV_METRIC_L2, dim, NULL, n), 0);
    free (x);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_recall_siftsmall),
        cmocka_unit_test (test_ip_and_cosine),
        cmocka_unit_test (test_filtered),
        cmocka_unit_test (test_save_load),
        cmocka_unit_test (test_corruption),
        cmocka_unit_test (test_add_and_params),
        cmocka_unit_test (test_pq_table_switch),
        cmocka_unit_test (test_candidates_are_best_codes),
        cmocka_unit_test (test_cancel),
        cmocka_unit_test (test_estimate),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
