//  Server configuration defaults and the inproc endpoint naming rule.
#include "qv_config.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

void
qv_config_defaults (qv_config_t *config)
{
    memset (config, 0, sizeof *config);
    snprintf (config->data, sizeof config->data, "./quiver-data");
    snprintf (config->bind, sizeof config->bind, "tcp://127.0.0.1:19530");
    static int s_counter = 0;
    snprintf (config->instance, sizeof config->instance, "%d-%d", (int) getpid (), s_counter++);
    config->max_request = 64u << 20;
    config->max_elems = 64u << 20;
    config->max_unflushed = (size_t) 2 << 30;
    config->seg_max_bytes = 256u << 20;
    config->seal_age_sec = 600;
    config->backpressure_ms = 5000;
    long n = sysconf (_SC_NPROCESSORS_ONLN);
    config->search_threads = n > 0 ? (int) n : 2;
    config->max_inflight = 64;
    config->group_max_bytes = 64u << 20;
    snprintf (config->nats_prefix, sizeof config->nats_prefix, "quiver");
}

void
qv_config_endpoint (const qv_config_t *config, const char *name, char *out, size_t size)
{
    snprintf (out, size, "inproc://qv-%s-%s", config->instance, name);
}

zsock_t *
qv_config_push (const qv_config_t *config, const char *name)
{
    char ep [256];
    qv_config_endpoint (config, name, ep, sizeof ep);
    zsock_t *sock = zsock_new (ZMQ_PUSH);
    if (!sock)
        return NULL;
    zsock_set_sndhwm (sock, 0);
    zsock_set_sndtimeo (sock, 0);
    zsock_connect (sock, "%s", ep);
    return sock;
}
