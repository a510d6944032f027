//  The metrics and health endpoint (`quiver serve --metrics HOST:PORT`): Prometheus
//  text at /metrics, and /healthz and /readyz for orchestrators, over libmicrohttpd.
//
//  /metrics   every request the proxy answered, by op and reply code, and their
//             latency histograms by op (qv_opstats.h); then the integer fields of the
//             server's `stats` reply as quiver_<field> (gauges; the monotonic ones as
//             counters, quiver_<field>_total), quiver_ready, and quiver_info with the
//             role and instance as labels
//  /healthz   200 while the process runs and its endpoint thread answers
//  /readyz    200 once the server answers requests (recovered, connected as its role
//             needs); 503 with the reason before that
//
//  DESIGN
//  One thread (libmicrohttpd's internal polling thread) serves every scrape; it asks
//  the proxy for `stats` and `ping` through the proxy's inproc API socket, like any
//  client (qv_client_t), so it reads nothing that another actor owns.
#ifndef QV_METRICS_H_INCLUDED
#define QV_METRICS_H_INCLUDED

#include "qv_config.h"

#define QV_METRICS_CALL_MS 5000     //  longest wait for the proxy's answer to a scrape

typedef struct _qv_metrics_t qv_metrics_t;

//  Serves config->metrics. NULL with the reason in qv_err_msg () if the address is not
//  valid or cannot be bound.
qv_metrics_t *
    qv_metrics_new (const qv_config_t *config);
//  Stops serving (waits for a scrape in progress). Safe twice.
void
    qv_metrics_destroy (qv_metrics_t **self_p);
int
    qv_metrics_port (qv_metrics_t *self);

#endif
