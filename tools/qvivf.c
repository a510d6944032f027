//  qvivf: benchmark of IVF_FLAT / IVF_SQ8 / IVF_PQ on .fvecs/.ivecs data (recall@k, QPS on 1 and 2 threads, build time, memory), beside faiss.
//
//  Usage: qvivf [--data DIR] [--nlist N] [--nprobe 1,4,16,64] [--pq-m M] [--refine R]
//               [--k K] [--runs N] [--types IVF_FLAT,IVF_SQ8,IVF_PQ] [--faiss SCRIPT]
//
//  DIR holds base.fvecs, query.fvecs and gt.ivecs (exact neighbours, >= k per query).
//  Each QPS figure is the median of --runs timed runs; in a run, each thread repeats
//  its share of the query set for 0.2 s (one thread: all queries; two: half each, on
//  one shared index). QPS_1Tcpu is searches per CPU-second of the single search thread
//  (what QPS_1T would be on an idle core). IVF_SQ8 / IVF_PQ re-rank refine * k candidates (search ef).
//  Build uses 2 threads for k-means. mem_MiB is qv_index_memory_bytes (everything,
//  including the float copy kept for re-ranking); code_MiB is what a probe scans.
//  --faiss SCRIPT runs tools/peers/faiss_ivf.py with /usr/bin/python3 and the same
//  data and parameters after each type, so its rows interleave with quiver's in one
//  run and both see the same machine load.
#include "qv_index.h"
#include "qv_ivf.h"
#include "qv_vecs.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct {
    float *data;
    int32_t *idata;                 //  the same buffer, for .ivecs
    uint32_t n;
    uint32_t dim;
} s_vecs_t;

static int
s_read_vecs (const char *path, s_vecs_t *out)
{
    out->data = qv_vecs_read (path, 0, &out->dim, &out->n);
    out->idata = (int32_t *) out->data;
    if (!out->data) {
        fprintf (stderr, "qvivf: %s: %s\n", path, qv_err_msg ());
        return -1;
    }
    return 0;
}

typedef struct {
    const qv_index_t *index;
    const s_vecs_t *queries;
    uint32_t first, last;           //  queries [first, last) are this thread's
    uint32_t k;
    qv_search_params_t params;
    uint32_t *ids;                  //  results, queries->n * k
    float *dists;
    uint64_t searches;              //  searches done
    int64_t deadline;               //  qv_clock_usec () at which to stop
    double cpu_s;                   //  this thread's CPU seconds while searching
} s_job_t;

static double
s_thread_cpu_s (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_THREAD_CPUTIME_ID, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void *
s_worker (void *arg)
{
    s_job_t *job = arg;
    //  Repeat this thread's share of the queries until the deadline.
    double cpu0 = s_thread_cpu_s ();
    while (qv_clock_usec () < job->deadline) {
        for (uint32_t q = job->first; q < job->last; q++)
            qv_index_search (job->index, job->queries->data + (size_t) q * job->queries->dim,
                             job->k, &job->params, job->ids + (size_t) q * job->k,
                             job->dists + (size_t) q * job->k);
        job->searches += job->last - job->first;
    }
    job->cpu_s = s_thread_cpu_s () - cpu0;
    return NULL;
}

static int
s_cmp_double (const void *a, const void *b)
{
    double x = *(const double *) a, y = *(const double *) b;
    return x < y? -1: x > y;
}

//  Median QPS over runs; in each, threads repeat their share of the queries for 0.2 s.
//  If cpu_qps is not NULL it gets the median searches per CPU-second of the threads
//  (insensitive to time-slicing when other processes load the machine).
static double
s_qps (const qv_index_t *index, const s_vecs_t *queries, uint32_t k,
       const qv_search_params_t *params, int threads, int runs, uint32_t *ids, float *dists,
       double *cpu_qps)
{
    double samples [64], cpu_samples [64];
    if (runs > 64)
        runs = 64;
    for (int r = 0; r < runs; r++) {
        s_job_t jobs [2];
        pthread_t tids [2];
        int64_t start = qv_clock_usec ();
        for (int t = 0; t < threads; t++) {
            jobs [t] = (s_job_t) {
                .index = index, .queries = queries, .k = k, .params = *params,
                .first = queries->n * t / threads, .last = queries->n * (t + 1) / threads,
                .ids = ids, .dists = dists, .deadline = start + 200000
            };
            if (t > 0)
                pthread_create (&tids [t], NULL, s_worker, &jobs [t]);
        }
        s_worker (&jobs [0]);
        uint64_t searches = jobs [0].searches;
        double cpu_s = jobs [0].cpu_s;
        for (int t = 1; t < threads; t++) {
            pthread_join (tids [t], NULL);
            searches += jobs [t].searches;
            cpu_s += jobs [t].cpu_s;
        }
        samples [r] = searches * 1e6 / (double) (qv_clock_usec () - start);
        cpu_samples [r] = cpu_s > 0? searches / cpu_s: 0;
    }
    qsort (samples, (size_t) runs, sizeof (double), s_cmp_double);
    qsort (cpu_samples, (size_t) runs, sizeof (double), s_cmp_double);
    if (cpu_qps)
        *cpu_qps = cpu_samples [runs / 2];
    return samples [runs / 2];
}

static double
s_recall (const s_vecs_t *gt, const uint32_t *ids, uint32_t nq, uint32_t k)
{
    uint64_t hits = 0;
    for (uint32_t q = 0; q < nq; q++)
        for (uint32_t i = 0; i < k; i++)
            for (uint32_t j = 0; j < k; j++)
                if (ids [(size_t) q * k + i] == (uint32_t) gt->idata [(size_t) q * gt->dim + j]) {
                    hits++;
                    break;
                }
    return (double) hits / ((double) nq * k);
}

static int s_faiss_runs = 0;        //  the first faiss run prints its version line

//  Runs the faiss peer for one type with the same parameters; its rows go to stdout.
static int
s_run_faiss (const char *script, const char *dir, uint32_t nlist, const char *nprobes,
             uint32_t pq_m, uint32_t refine, uint32_t k, int runs, const char *type)
{
    char command [8192];
    snprintf (command, sizeof command,
              "/usr/bin/python3 '%s' --data '%s' --nlist %u --nprobe %s --pq-m %u "
              "--refine %u --k %u --runs %d --types %s%s",
              script, dir, nlist, nprobes, pq_m, refine, k, runs, type,
              s_faiss_runs++ == 0? " --header": "");
    fflush (stdout);
    int status = system (command);
    if (status != 0) {
        fprintf (stderr, "qvivf: faiss peer failed (status %d): %s\n", status, command);
        return -1;
    }
    return 0;
}

int
main (int argc, char **argv)
{
    const char *dir = "/work/shared/data/siftsmall";
    const char *nprobes = "1,4,16,64";
    const char *types = "IVF_FLAT,IVF_SQ8,IVF_PQ";
    const char *faiss = NULL;
    uint32_t nlist = 100, pq_m = 16, refine = QV_IVF_REFINE_DEFAULT, k = 10;
    int runs = 5;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp (argv [i], "--data")) dir = argv [i + 1];
        else if (!strcmp (argv [i], "--nlist")) nlist = (uint32_t) atoi (argv [i + 1]);
        else if (!strcmp (argv [i], "--nprobe")) nprobes = argv [i + 1];
        else if (!strcmp (argv [i], "--pq-m")) pq_m = (uint32_t) atoi (argv [i + 1]);
        else if (!strcmp (argv [i], "--refine")) refine = (uint32_t) atoi (argv [i + 1]);
        else if (!strcmp (argv [i], "--k")) k = (uint32_t) atoi (argv [i + 1]);
        else if (!strcmp (argv [i], "--runs")) runs = atoi (argv [i + 1]);
        else if (!strcmp (argv [i], "--types")) types = argv [i + 1];
        else if (!strcmp (argv [i], "--faiss")) faiss = argv [i + 1];
        else {
            fprintf (stderr, "qvivf: unknown option %s\n", argv [i]);
            return 2;
        }
    }
    char path [4096];
    s_vecs_t base, queries, gt;
    snprintf (path, sizeof path, "%s/base.fvecs", dir);
    if (s_read_vecs (path, &base))
        return 1;
    snprintf (path, sizeof path, "%s/query.fvecs", dir);
    if (s_read_vecs (path, &queries))
        return 1;
    snprintf (path, sizeof path, "%s/gt.ivecs", dir);
    if (s_read_vecs (path, &gt))
        return 1;
    if (queries.dim != base.dim || gt.n != queries.n || gt.dim < k || runs < 1) {
        fprintf (stderr, "qvivf: data shapes disagree (or --runs < 1)\n");
        return 1;
    }
    double load [3] = { 0 };
    getloadavg (load, 3);
    printf ("# %s: %u base x %u dims, %u queries, k=%u, nlist=%u, pq_m=%u, refine=k*%u, "
            "kernels=%s, runs=%d (median), load average %.2f\n", dir, base.n, base.dim,
            queries.n, k, nlist, pq_m, refine, qv_dist_kernels ()->isa, runs, load [0]);
    printf ("%-8s %-16s %6s %9s %9s %9s %9s %8s %9s %9s %9s %6s\n", "engine", "index", "nprobe",
            "recall@k", "QPS_1T", "QPS_1Tcpu", "QPS_2T", "build_s", "mem_MiB", "code_MiB", "f32_MiB", "f32/code");
    fflush (stdout);

    uint32_t *ids = calloc ((size_t) queries.n * k, sizeof (uint32_t));
    float *dists = calloc ((size_t) queries.n * k, sizeof (float));
    int rc = 0;
    char *types_copy = strdup (types);
    char *type_save = NULL;
    for (char *type = strtok_r (types_copy, ",", &type_save); type;
         type = strtok_r (NULL, ",", &type_save)) {
        qv_index_params_t params = { .nlist = nlist, .pq_m = pq_m, .threads = 2 };
        qv_index_t *index = qv_index_new (type, QV_METRIC_L2, base.dim, &params);
        if (!index) {
            fprintf (stderr, "qvivf: %s: %s\n", type, qv_err_msg ());
            return 1;
        }
        int64_t start = qv_clock_usec ();
        if (qv_index_build (index, base.data, base.n)) {
            fprintf (stderr, "qvivf: build %s: %s\n", type, qv_err_msg ());
            return 1;
        }
        double build_s = (qv_clock_usec () - start) / 1e6;
        double mib = 1024.0 * 1024.0;
        double f32 = (double) base.n * base.dim * 4;
        double code = (double) qv_ivf_code_bytes (index);
        char *nprobes_copy = strdup (nprobes);
        char *np_save = NULL;
        for (char *np = strtok_r (nprobes_copy, ",", &np_save); np;
             np = strtok_r (NULL, ",", &np_save)) {
            qv_search_params_t sp = { .nprobe = (uint32_t) atoi (np), .ef = k * refine };
            //  Results for recall come from one plain pass.
            for (uint32_t q = 0; q < queries.n; q++)
                qv_index_search (index, queries.data + (size_t) q * base.dim, k, &sp,
                                 ids + (size_t) q * k, dists + (size_t) q * k);
            double recall = s_recall (&gt, ids, queries.n, k);
            double cpu1;
            double qps1 = s_qps (index, &queries, k, &sp, 1, runs, ids, dists, &cpu1);
            double qps2 = s_qps (index, &queries, k, &sp, 2, runs, ids, dists, NULL);
            printf ("%-8s %-16s %6u %9.4f %9.0f %9.0f %9.0f %8.2f %9.2f %9.2f %9.2f %6.1fx\n",
                    "quiver", type, sp.nprobe, recall, qps1, cpu1, qps2, build_s,
                    qv_index_memory_bytes (index) / mib, code / mib, f32 / mib, f32 / code);
            fflush (stdout);
        }
        free (nprobes_copy);
        qv_index_destroy (&index);
        if (faiss && s_run_faiss (faiss, dir, nlist, nprobes, pq_m, refine, k, runs, type))
            rc = 1;
    }
    free (types_copy);
    free (ids);
    free (dists);
    free (base.data);
    free (queries.data);
    free (gt.data);
    return rc;
}
