//  Recovery's segment loading on threads: see qv_segload.h.
//
//  Each thread takes the next job (an atomic counter, so jobs start in manifest
//  order and the catalog, which waits for them in that order, waits least), fetches
//  the segment object, decodes it, then fetches and decodes its index objects. The
//  time of each step is summed over the threads and logged when the loader ends,
//  beside the wall-clock time: where a start spends its time.
#include "qv_segload.h"
#include "qv_catalog.h"
#include "qv_rc.h"
#include "qv_segfile.h"

#include <czmq.h>
#include <pthread.h>
#include <stdatomic.h>

#define S_THREADS_MAX 32

struct _qv_segload_t {
    qv_store_t *store;
    qv_segload_job_t *jobs;
    size_t njobs;
    atomic_size_t next;             //  the next job a thread takes
    atomic_bool stop;
    bool *done;                     //  guarded by mutex
    pthread_mutex_t mutex;
    pthread_cond_t cond;
    pthread_t threads [S_THREADS_MAX];
    int nthreads;
    int64_t t0;                     //  usec at start
    //  Summed over threads, usec; bytes
    atomic_int_fast64_t seg_get_us, seg_decode_us, idx_get_us, idx_decode_us;
    atomic_int_fast64_t seg_bytes, idx_bytes, wait_us;
};

static void
s_fail (char **error, const char *fmt, const char *arg)
{
    char msg [1024];
    snprintf (msg, sizeof msg, fmt, arg);
    *error = strdup (msg);
}

static void
s_load_indexes (qv_segload_t *self, qv_segload_job_t *job)
{
    uint32_t rows = (uint32_t) atomic_load (&job->seg->rows);
    for (int i = 0; i < job->nidx; i++) {
        qv_segload_idx_t *x = &job->idx [i];
        char key [128];
        qv_index_object_key (job->coll_id, job->seg_id, x->field, key, sizeof key);
        void *data;
        size_t size;
        int64_t t = qv_clock_usec ();
        x->rc = qv_store_get (self->store, key, &data, &size);
        int64_t t1 = qv_clock_usec ();
        atomic_fetch_add (&self->idx_get_us, t1 - t);
        if (x->rc == 0) {
            atomic_fetch_add (&self->idx_bytes, (int64_t) size);
            x->rc = x->is_scalar ? qv_scalar_load (data, size, x->type, &job->seg->batch->cols [x->field],
                                                rows, &x->scalar)
                              : qv_index_load (data, size, &x->index);
            free (data);
            atomic_fetch_add (&self->idx_decode_us, qv_clock_usec () - t1);
        }
        if (x->rc)
            s_fail (&x->error, "%s", qv_err_msg ());
    }
}

static void
s_load (qv_segload_t *self, qv_segload_job_t *job)
{
    char key [96], where [512];
    snprintf (key, sizeof key, "segments/%u/%020llu", job->coll_id, (unsigned long long) job->seg_id);
    qv_store_describe (self->store, key, where, sizeof where);
    void *data;
    size_t size;
    int64_t t = qv_clock_usec ();
    job->rc = qv_store_get (self->store, key, &data, &size);
    int64_t t1 = qv_clock_usec ();
    atomic_fetch_add (&self->seg_get_us, t1 - t);
    if (job->rc) {
        char msg [1024];
        snprintf (msg, sizeof msg, "segment object %s listed in the manifest cannot be read: %s",
                  where, qv_err_msg ());
        job->error = strdup (msg);
        return;
    }
    atomic_fetch_add (&self->seg_bytes, (int64_t) size);
    job->rc = qv_segment_load (where, data, size, &job->seg);
    free (data);
    atomic_fetch_add (&self->seg_decode_us, qv_clock_usec () - t1);
    if (job->rc) {
        s_fail (&job->error, "%s", qv_err_msg ());
        return;
    }
    s_load_indexes (self, job);
}

static void *
s_thread (void *arg)
{
    qv_segload_t *self = arg;
    for (;;) {
        size_t i = atomic_fetch_add (&self->next, 1);
        if (i >= self->njobs || atomic_load (&self->stop))
            break;
        s_load (self, &self->jobs [i]);
        qv_err_clear ();
        pthread_mutex_lock (&self->mutex);
        self->done [i] = true;
        pthread_cond_broadcast (&self->cond);
        pthread_mutex_unlock (&self->mutex);
    }
    return NULL;
}

qv_segload_t *
qv_segload_new (qv_store_t *store, qv_segload_job_t *jobs, size_t n, int threads)
{
    qv_segload_t *self = calloc (1, sizeof *self);
    bool *done = calloc (n ? n : 1, sizeof (bool));
    if (!self || !done) {
        free (self);
        free (done);
        return NULL;
    }
    self->store = store;
    self->jobs = jobs;
    self->njobs = n;
    self->done = done;
    self->t0 = qv_clock_usec ();
    pthread_mutex_init (&self->mutex, NULL);
    pthread_cond_init (&self->cond, NULL);
    if (threads > S_THREADS_MAX)
        threads = S_THREADS_MAX;
    if ((size_t) threads > n)
        threads = (int) n;
    for (int i = 0; i < threads; i++) {
        if (pthread_create (&self->threads [self->nthreads], NULL, s_thread, self))
            break;
        self->nthreads++;
    }
    if (self->nthreads == 0)
        //  No thread could start: the jobs run in qv_segload_wait, one by one
        qv_warn ("cannot start segment loading threads; loading on one thread");
    return self;
}

void
qv_segload_wait (qv_segload_t *self, size_t i)
{
    assert (i < self->njobs);
    int64_t t = qv_clock_usec ();
    if (self->nthreads == 0) {
        s_load (self, &self->jobs [i]);
        qv_err_clear ();
        self->done [i] = true;
    }
    pthread_mutex_lock (&self->mutex);
    while (!self->done [i])
        pthread_cond_wait (&self->cond, &self->mutex);
    pthread_mutex_unlock (&self->mutex);
    atomic_fetch_add (&self->wait_us, qv_clock_usec () - t);
}

void
qv_segload_destroy (qv_segload_t **self_p, const char *what)
{
    qv_segload_t *self = *self_p;
    if (!self)
        return;
    *self_p = NULL;
    atomic_store (&self->stop, true);
    for (int i = 0; i < self->nthreads; i++)
        pthread_join (self->threads [i], NULL);
    for (size_t j = 0; j < self->njobs; j++) {
        qv_segload_job_t *job = &self->jobs [j];
        for (int i = 0; i < job->nidx; i++) {
            qv_index_destroy (&job->idx [i].index);
            qv_scalar_destroy (&job->idx [i].scalar);
            free (job->idx [i].error);
            job->idx [i].error = NULL;
        }
        if (job->seg)
            qv_segment_unlink (&job->seg);
        free (job->error);
        job->error = NULL;
    }
    double ms = (double) (qv_clock_usec () - self->t0) / 1000.0;
    if (self->njobs)
        qv_info ("%s: %zu segments loaded in %.0f ms on %d threads; segment objects "
                 "%.1f MB (get %.0f ms, decode %.0f ms), index objects %.1f MB (get %.0f ms, "
                 "decode %.0f ms) summed over the threads; %.0f ms waited for them",
                 what, self->njobs, ms, self->nthreads,
                 (double) atomic_load (&self->seg_bytes) / 1048576.0,
                 (double) atomic_load (&self->seg_get_us) / 1000.0,
                 (double) atomic_load (&self->seg_decode_us) / 1000.0,
                 (double) atomic_load (&self->idx_bytes) / 1048576.0,
                 (double) atomic_load (&self->idx_get_us) / 1000.0,
                 (double) atomic_load (&self->idx_decode_us) / 1000.0,
                 (double) atomic_load (&self->wait_us) / 1000.0);
    pthread_mutex_destroy (&self->mutex);
    pthread_cond_destroy (&self->cond);
    free (self->done);
    free (self);
}
