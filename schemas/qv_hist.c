//  Process-wide histograms (see qv_hist.h).
#include "qv_hist.h"

#include <stdatomic.h>
#include <stdint.h>

#define S_MAX_BUCKETS 16

typedef struct {
    const char *name;
    const char *help;
    double bounds [S_MAX_BUCKETS];  //  upper bounds, ascending; 0 ends the list
} s_def_t;

#define S_SECONDS { 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, \
                    5, 10, 30, 60 }

static const s_def_t s_defs [QV_HIST_COUNT] = {
    [QV_HIST_WAL_COMMIT_SECONDS] = { "quiver_wal_commit_duration_seconds",
        "Time to write one WAL object (a group commit) and confirm the write lock.", S_SECONDS },
    [QV_HIST_WAL_COMMIT_RECORDS] = { "quiver_wal_commit_records",
        "Records per WAL object (group commit batch size).",
        { 1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192 } },
    [QV_HIST_WAL_COMMIT_BYTES] = { "quiver_wal_commit_bytes",
        "Bytes per WAL object.",
        { 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864 } },
    [QV_HIST_SEGMENT_WRITE_SECONDS] = { "quiver_segment_write_duration_seconds",
        "Time to encode a sealed segment and write its object.", S_SECONDS },
    [QV_HIST_MANIFEST_WRITE_SECONDS] = { "quiver_manifest_write_duration_seconds",
        "Time to write a manifest.", S_SECONDS },
    [QV_HIST_INDEX_BUILD_SECONDS] = { "quiver_index_build_duration_seconds",
        "Time to build one segment's index.",
        { 0.01, 0.05, 0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600 } }
};

typedef struct {
    atomic_ullong bucket [S_MAX_BUCKETS + 1];   //  not cumulative; the last: +Inf
    _Atomic double sum;
} s_hist_t;

static s_hist_t s_hists [QV_HIST_COUNT];

void
qv_hist_record (qv_hist_id_t id, double value)
{
    if (id < 0 || id >= QV_HIST_COUNT)
        return;
    const s_def_t *d = &s_defs [id];
    int b = 0;
    while (b < S_MAX_BUCKETS && d->bounds [b] > 0 && value > d->bounds [b])
        b++;
    if (b < S_MAX_BUCKETS && d->bounds [b] == 0)
        b = S_MAX_BUCKETS;          //  past the last bound: +Inf
    atomic_fetch_add_explicit (&s_hists [id].bucket [b], 1, memory_order_relaxed);
    double sum = atomic_load_explicit (&s_hists [id].sum, memory_order_relaxed);
    while (!atomic_compare_exchange_weak_explicit (&s_hists [id].sum, &sum, sum + value,
                                                   memory_order_relaxed, memory_order_relaxed))
        ;
}

unsigned long long
qv_hist_count (qv_hist_id_t id)
{
    unsigned long long n = 0;
    for (int b = 0; b <= S_MAX_BUCKETS; b++)
        n += atomic_load_explicit (&s_hists [id].bucket [b], memory_order_relaxed);
    return n;
}

void
qv_hist_write (FILE *out)
{
    for (int id = 0; id < QV_HIST_COUNT; id++) {
        const s_def_t *d = &s_defs [id];
        unsigned long long bucket [S_MAX_BUCKETS + 1], total = 0;
        for (int b = 0; b <= S_MAX_BUCKETS; b++)
            total += bucket [b] = atomic_load_explicit (&s_hists [id].bucket [b], memory_order_relaxed);
        if (!total)
            continue;
        fprintf (out, "# HELP %s %s\n# TYPE %s histogram\n", d->name, d->help, d->name);
        unsigned long long cumulative = 0;
        for (int b = 0; b < S_MAX_BUCKETS && d->bounds [b] > 0; b++) {
            cumulative += bucket [b];
            fprintf (out, "%s_bucket{le=\"%g\"} %llu\n", d->name, d->bounds [b], cumulative);
        }
        fprintf (out, "%s_bucket{le=\"+Inf\"} %llu\n%s_sum %.6f\n%s_count %llu\n", d->name,
                 total, d->name, atomic_load_explicit (&s_hists [id].sum, memory_order_relaxed),
                 d->name, total);
    }
}
