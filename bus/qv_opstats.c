//  Requests per op and outcome (see qv_opstats.h).
#include "qv_opstats.h"
#include "qv_proto.h"
#include "qv_rc.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <string.h>

#define S_OPS (QV_OP_COUNT + 1)         //  the last: unknown
#define S_CODES 14                      //  -rc for 0 .. QV_ENOMEM (-13)

static const double s_bounds [QV_OPSTATS_BUCKETS - 1] = {
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
    1, 2.5, 5
};

typedef struct {
    atomic_uint_fast64_t count [S_CODES];
    atomic_uint_fast64_t bucket [QV_OPSTATS_BUCKETS];     //  not cumulative; last +Inf
    atomic_uint_fast64_t usec;          //  sum over every outcome
} s_op_t;

static s_op_t s_ops [S_OPS];

void
qv_opstats_record (int op, int rc, int64_t usec)
{
    s_op_t *o = &s_ops [op >= 0 && op < QV_OP_COUNT ? op : QV_OP_COUNT];
    int code = rc <= 0 && rc > -S_CODES ? -rc : -QV_ERR;
    if (usec < 0)
        usec = 0;
    double sec = (double) usec / 1e6;
    int b = 0;
    while (b < QV_OPSTATS_BUCKETS - 1 && sec > s_bounds [b])
        b++;
    atomic_fetch_add_explicit (&o->count [code], 1, memory_order_relaxed);
    atomic_fetch_add_explicit (&o->bucket [b], 1, memory_order_relaxed);
    atomic_fetch_add_explicit (&o->usec, (uint_fast64_t) usec, memory_order_relaxed);
}

uint64_t
qv_opstats_count (int op, int rc)
{
    s_op_t *o = &s_ops [op >= 0 && op < QV_OP_COUNT ? op : QV_OP_COUNT];
    int code = rc <= 0 && rc > -S_CODES ? -rc : -QV_ERR;
    return atomic_load_explicit (&o->count [code], memory_order_relaxed);
}

static const char *
s_op_name (int op)
{
    return op < QV_OP_COUNT ? qv_op_name ((qv_op_t) op) : "unknown";
}

void
qv_opstats_write (FILE *out)
{
    fprintf (out, "# HELP quiver_requests_total Requests answered, by op and reply code.\n"
                  "# TYPE quiver_requests_total counter\n");
    for (int op = 0; op < S_OPS; op++) {
        //  Codes that share a wire name (UNAVAILABLE, RESOURCE_EXHAUSTED) are summed
        for (int code = 0; code < S_CODES; code++) {
            const char *name = qv_rc_code (-code);
            bool first = true;
            for (int c = 0; c < code; c++)
                first &= strcmp (qv_rc_code (-c), name) != 0;
            if (!first)
                continue;
            uint64_t n = 0;
            for (int c = code; c < S_CODES; c++)
                if (strcmp (qv_rc_code (-c), name) == 0)
                    n += atomic_load_explicit (&s_ops [op].count [c], memory_order_relaxed);
            if (n)
                fprintf (out, "quiver_requests_total{op=\"%s\",code=\"%s\"} %llu\n",
                         s_op_name (op), name, (unsigned long long) n);
        }
    }
    fprintf (out, "# HELP quiver_request_duration_seconds Time from a request's arrival to "
                  "its reply, by op.\n"
                  "# TYPE quiver_request_duration_seconds histogram\n");
    for (int op = 0; op < S_OPS; op++) {
        uint64_t bucket [QV_OPSTATS_BUCKETS], total = 0;
        for (int b = 0; b < QV_OPSTATS_BUCKETS; b++)
            total += bucket [b] = atomic_load_explicit (&s_ops [op].bucket [b], memory_order_relaxed);
        if (!total)
            continue;
        uint64_t cumulative = 0;
        for (int b = 0; b < QV_OPSTATS_BUCKETS; b++) {
            cumulative += bucket [b];
            if (b < QV_OPSTATS_BUCKETS - 1)
                fprintf (out, "quiver_request_duration_seconds_bucket{op=\"%s\",le=\"%g\"} %llu\n",
                         s_op_name (op), s_bounds [b], (unsigned long long) cumulative);
            else
                fprintf (out, "quiver_request_duration_seconds_bucket{op=\"%s\",le=\"+Inf\"} %llu\n",
                         s_op_name (op), (unsigned long long) cumulative);
        }
        fprintf (out, "quiver_request_duration_seconds_sum{op=\"%s\"} %.6f\n"
                      "quiver_request_duration_seconds_count{op=\"%s\"} %llu\n",
                 s_op_name (op), (double) atomic_load_explicit (&s_ops [op].usec,
                                                                memory_order_relaxed) / 1e6,
                 s_op_name (op), (unsigned long long) cumulative);
    }
}
