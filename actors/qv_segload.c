//  Recovery's segment loading on threads: see qv_segload.h.
//
//  The work is one task per object: a segment object, then each of its index
//  objects, in manifest order. Each thread takes the next task (an atomic counter, so
//  tasks start in that order and the catalog, which waits for the segments in that
//  order, waits least), fetches the object and decodes it: a segment's index objects
//  download while the segment decodes. An index decodes against its segment's
//  columns (a scalar index reads them, a vector index borrows its vectors), so its
//  task waits for the segment (taken earlier, so already running).
//  The time of each step is summed over the threads and logged when the loader
//  ends, beside the wall-clock time: where a start spends its time.
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
    size_t *task_job;               //  task -> its job
    int *task_idx;                  //  task -> index number in the job, -1 the segment
    size_t ntasks;
    atomic_size_t next;             //  the next task a thread takes
    atomic_bool stop;
    int *pending;                   //  per job: tasks not done; guarded by mutex
    bool *seg_done;                 //  per job: segment task done; guarded by mutex
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
s_load_index (qv_segload_t *self, size_t j, int i)
{
    qv_segload_job_t *job = &self->jobs [j];
    qv_segload_idx_t *x = &job->idx [i];
    if (x->record_only)
        return;
    char key [128];
    qv_index_object_key (job->coll_id, job->seg_id, x->field, x->epoch, key, sizeof key);
    void *data;
    size_t size;
    int64_t t = qv_clock_usec ();
    x->rc = qv_store_get (self->store, key, &data, &size);
    int64_t t1 = qv_clock_usec ();
    atomic_fetch_add (&self->idx_get_us, t1 - t);
    if (x->rc == 0) {
        //  Decodes against the segment's columns (a scalar index reads them, a vector
        //  index borrows its field's vectors: qv_index.h). A stop may skip the segment's task
        //  (a thread checks the stop flag after taking its task), so the wait ends
        //  on a stop too (qv_segload_destroy broadcasts): else it would never end
        pthread_mutex_lock (&self->mutex);
        while (!self->seg_done [j] && !atomic_load (&self->stop))
            pthread_cond_wait (&self->cond, &self->mutex);
        bool done = self->seg_done [j];
        pthread_mutex_unlock (&self->mutex);
        if (!done) {
            free (data);
            x->rc = QV_EUNAVAIL;
            x->error = strdup ("the load was stopped");
            return;
        }
        t1 = qv_clock_usec ();
        if (!job->seg) {
            free (data);
            x->rc = QV_ECORRUPT;    //  the segment's own error is the one reported
            x->error = strdup ("its segment was not loaded");
            return;
        }
    }
    if (x->rc == 0) {
        atomic_fetch_add (&self->idx_bytes, (int64_t) size);
        qv_segment_t *seg = job->seg;
        uint32_t rows = (uint32_t) atomic_load (&seg->rows);
        const qv_field_t *f = &seg->schema->fields [x->field];
        x->rc = x->is_scalar ? qv_scalar_load (data, size, x->type, &seg->batch->cols [x->field],
                                               rows, &x->scalar)
                             : qv_index_load_owned_borrowed (data, size,
                                                             qv_col_vec (f, &seg->batch->cols [x->field], 0),
                                                             rows, f->dim, &x->index);
        if (x->is_scalar)
            free (data);
        atomic_fetch_add (&self->idx_decode_us, qv_clock_usec () - t1);
    }
    if (x->rc)
        s_fail (&x->error, "%s", qv_err_msg ());
}

static void
s_load (qv_segload_t *self, qv_segload_job_t *job)
{
    char key [96], where [512];
    qv_segment_object_key (job->coll_id, job->seg_id, job->epoch, key, sizeof key);
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
    job->rc = qv_segment_load_owned (where, data, size, &job->seg);
    atomic_fetch_add (&self->seg_decode_us, qv_clock_usec () - t1);
    if (job->rc)
        s_fail (&job->error, "%s", qv_err_msg ());
}

//  Runs task t and marks it done.
static void
s_run (qv_segload_t *self, size_t t)
{
    size_t j = self->task_job [t];
    int i = self->task_idx [t];
    if (i < 0)
        s_load (self, &self->jobs [j]);
    else
        s_load_index (self, j, i);
    qv_err_clear ();
    pthread_mutex_lock (&self->mutex);
    if (i < 0)
        self->seg_done [j] = true;
    self->pending [j]--;
    pthread_cond_broadcast (&self->cond);
    pthread_mutex_unlock (&self->mutex);
}

static void *
s_thread (void *arg)
{
    qv_segload_t *self = arg;
    for (;;) {
        size_t t = atomic_fetch_add (&self->next, 1);
        if (t >= self->ntasks || atomic_load (&self->stop))
            break;
        s_run (self, t);
    }
    return NULL;
}

qv_segload_t *
qv_segload_new (qv_store_t *store, qv_segload_job_t *jobs, size_t n, int threads)
{
    qv_segload_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    size_t ntasks = 0;
    for (size_t j = 0; j < n; j++)
        ntasks += 1 + (size_t) jobs [j].nidx;
    self->task_job = calloc (ntasks ? ntasks : 1, sizeof (size_t));
    self->task_idx = calloc (ntasks ? ntasks : 1, sizeof (int));
    self->pending = calloc (n ? n : 1, sizeof (int));
    self->seg_done = calloc (n ? n : 1, sizeof (bool));
    if (!self->task_job || !self->task_idx || !self->pending || !self->seg_done) {
        free (self->task_job);
        free (self->task_idx);
        free (self->pending);
        free (self->seg_done);
        free (self);
        return NULL;
    }
    for (size_t j = 0; j < n; j++) {
        self->pending [j] = 1 + jobs [j].nidx;
        for (int i = -1; i < jobs [j].nidx; i++) {
            self->task_job [self->ntasks] = j;
            self->task_idx [self->ntasks++] = i;
        }
    }
    self->store = store;
    self->jobs = jobs;
    self->njobs = n;
    self->t0 = qv_clock_usec ();
    pthread_mutex_init (&self->mutex, NULL);
    pthread_cond_init (&self->cond, NULL);
    if (threads > S_THREADS_MAX)
        threads = S_THREADS_MAX;
    if ((size_t) threads > self->ntasks)
        threads = (int) self->ntasks;
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
    if (self->nthreads == 0)
        //  No threads: this job's tasks run here, in order (the segment first)
        for (size_t t = 0; t < self->ntasks; t++)
            if (self->task_job [t] == i)
                s_run (self, t);
    pthread_mutex_lock (&self->mutex);
    while (self->pending [i] > 0)
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
    pthread_mutex_lock (&self->mutex);
    atomic_store (&self->stop, true);
    pthread_cond_broadcast (&self->cond);   //  scalar indexes waiting for a segment
    pthread_mutex_unlock (&self->mutex);
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
    free (self->task_job);
    free (self->task_idx);
    free (self->pending);
    free (self->seg_done);
    free (self);
}
