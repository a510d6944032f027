//  The transport's floor: a bare ZeroMQ echo over loopback TCP, measured with the
//  same client code as the benchmarks use against a server (see qv_bench.h).
#include "qv_bench.h"
#include "qv_rc.h"

#include <czmq.h>

static void
s_echo_actor (zsock_t *pipe, void *args)
{
    zsock_t *router = args;
    zsock_signal (pipe, 0);
    zpoller_t *poller = zpoller_new (pipe, router, NULL);
    while (zpoller_wait (poller, -1) == router) {
        zmsg_t *msg = zmsg_recv (router);
        if (msg)
            zmsg_send (&msg, router);
    }
    zpoller_destroy (&poller);
}

double
qv_bench_zmq_echo_us (size_t request_bytes, double seconds)
{
    zsock_t *router = zsock_new (ZMQ_ROUTER);
    int port = zsock_bind (router, "tcp://127.0.0.1:*");
    if (port < 0)
        qv_bench_die ("cannot bind a loopback port for the ZeroMQ echo");
    zactor_t *echo = zactor_new (s_echo_actor, router);
    char endpoint [64];
    snprintf (endpoint, sizeof endpoint, "tcp://127.0.0.1:%d", port);
    qv_client_t *client = qv_client_new (endpoint);
    size_t cap = 4096, n = 0;
    double *lat = malloc (cap * sizeof (double));
    void *pad = calloc (1, request_bytes ? request_bytes : 1);
    int64_t end = qv_clock_usec () + (int64_t) (seconds * 1e6);
    while (qv_clock_usec () < end || n < 10) {
        qv_wr_t *w = qv_client_request (client, "ping", 1, NULL);
        qv_wr_str (w, "pad"); qv_wr_bin (w, pad, request_bytes);
        int64_t t0 = qv_clock_usec ();
        qv_doc_t *reply = NULL;
        qv_client_call (client, w, &reply);     //  the echo is not an ok reply: not checked
        if (n == cap)
            lat = realloc (lat, (cap *= 2) * sizeof (double));
        lat [n++] = (double) (qv_clock_usec () - t0);
        qv_doc_destroy (&reply);
        qv_wr_destroy (&w);
    }
    qv_client_destroy (&client);
    zactor_destroy (&echo);
    zsock_destroy (&router);
    double p50 = qv_bench_quantile (lat, n, 0.5);
    free (lat);
    free (pad);
    return p50;
}
