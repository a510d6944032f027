//  hnswlib behind a C interface, for tools/qvann.c. Compiled with -O3 -march=native,
//  as hnswlib's own builds are (CMake's QV_PEER_ARCH changes the target flags).
#include "qv_peer_hnswlib.h"

#include <hnswlib/hnswlib.h>

#include <atomic>
#include <cmath>
#include <thread>
#include <vector>

struct qv_peer_hnswlib_t {
    hnswlib::SpaceInterface<float> *space;
    hnswlib::HierarchicalNSW<float> *index;
    uint32_t dim;
    int normalize;              //  COSINE: unit vectors in the inner-product space
};

//  v / |v| into out (v itself when it is zero), as hnswlib's Python binding does for
//  its "cosine" space.
static void
s_normalize (const float *v, uint32_t dim, float *out)
{
    double sum = 0;
    for (uint32_t i = 0; i < dim; i++)
        sum += (double) v [i] * v [i];
    float inv = sum > 0? (float) (1.0 / std::sqrt (sum)): 1.0f;
    for (uint32_t i = 0; i < dim; i++)
        out [i] = v [i] * inv;
}

extern "C" qv_peer_hnswlib_t *
qv_peer_hnswlib_new (uint32_t dim, uint32_t n, uint32_t M, uint32_t ef_construction, int space)
{
    try {
        qv_peer_hnswlib_t *self = new qv_peer_hnswlib_t;
        self->dim = dim;
        self->normalize = space == 2;
        if (space)
            self->space = new hnswlib::InnerProductSpace (dim);
        else
            self->space = new hnswlib::L2Space (dim);
        self->index = new hnswlib::HierarchicalNSW<float> (self->space, n, M, ef_construction, 100);
        return self;
    }
    catch (...) {
        return nullptr;
    }
}

extern "C" int
qv_peer_hnswlib_build (qv_peer_hnswlib_t *self, const float *base, uint32_t n, int threads)
{
    try {
        if (n == 0)
            return 0;
        if (self->normalize) {
            std::vector<float> unit (self->dim);
            s_normalize (base, self->dim, unit.data ());
            self->index->addPoint (unit.data (), 0);
        }
        else
            self->index->addPoint (base, 0);
        std::atomic<uint32_t> next (1);
        auto work = [&] () {
            std::vector<float> unit (self->dim);
            for (uint32_t i = next++; i < n; i = next++) {
                const float *v = base + (size_t) i * self->dim;
                if (self->normalize) {
                    s_normalize (v, self->dim, unit.data ());
                    v = unit.data ();
                }
                self->index->addPoint (v, i);
            }
        };
        std::vector<std::thread> pool;
        for (int t = 1; t < threads; t++)
            pool.emplace_back (work);
        work ();
        for (auto &t: pool)
            t.join ();
        return 0;
    }
    catch (...) {
        return -1;
    }
}

extern "C" void
qv_peer_hnswlib_set_ef (qv_peer_hnswlib_t *self, uint32_t ef)
{
    self->index->setEf (ef);
}

extern "C" int
qv_peer_hnswlib_search (const qv_peer_hnswlib_t *self, const float *query, uint32_t k, uint32_t *ids)
{
    auto result = self->index->searchKnn (query, k);
    int n = (int) result.size ();
    for (int i = n - 1; i >= 0; i--) {
        ids [i] = (uint32_t) result.top ().second;
        result.pop ();
    }
    return n;
}

extern "C" void
qv_peer_hnswlib_destroy (qv_peer_hnswlib_t **self_p)
{
    if (self_p && *self_p) {
        delete (*self_p)->index;
        delete (*self_p)->space;
        delete *self_p;
        *self_p = nullptr;
    }
}
