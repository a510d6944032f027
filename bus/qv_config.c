//  Server configuration defaults and the inproc endpoint naming rule.
#include "qv_config.h"
#include "qv_rc.h"

#include <ctype.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <stdatomic.h>

qv_feed_stats_t *
qv_feed_stats_new (void)
{
    qv_feed_stats_t *self = calloc (1, sizeof *self);
    if (self)
        pthread_mutex_init (&self->members_lock, NULL);
    return self;
}

void
qv_feed_stats_destroy (qv_feed_stats_t **self_p)
{
    if (*self_p) {
        pthread_mutex_destroy (&(*self_p)->members_lock);
        free (*self_p);
        *self_p = NULL;
    }
}

void
qv_config_new_instance (qv_config_t *config)
{
    static atomic_int s_counter = 0;
    snprintf (config->instance, sizeof config->instance, "%d-%d", (int) getpid (),
              atomic_fetch_add (&s_counter, 1));
}

void
qv_config_defaults (qv_config_t *config)
{
    memset (config, 0, sizeof *config);
    snprintf (config->data, sizeof config->data, "./quiver-data");
    snprintf (config->bind, sizeof config->bind, "tcp://127.0.0.1:19530");
    qv_config_new_instance (config);
    config->max_request = 64u << 20;
    config->max_elems = 64u << 20;
    config->max_unflushed = (size_t) 2 << 30;
    config->seg_max_bytes = 256u << 20;
    config->seal_age_sec = 600;
    config->backpressure_ms = 5000;
    config->bounded_staleness_ms = 5000;
    config->read_wait_ms = 10000;
    long n = sysconf (_SC_NPROCESSORS_ONLN);
    config->search_threads = n > 0 ? (int) n : 2;
    config->max_inflight = 64;
    config->group_max_bytes = 64u << 20;
    snprintf (config->nats_prefix, sizeof config->nats_prefix, "quiver");
    config->s3_connections = 8;
    config->s3_lock_ms = 3000;
    config->lease_ttl_ms = 10000;
    config->cache_mb = 10240;
    config->compaction_bps = 64.0 * 1048576;
    config->compaction_ratio = 0.2;
    config->gc_grace_sec = 600;
}

int
qv_config_store_url (const qv_config_t *config, char *out, size_t size)
{
    if (!config->s3_endpoint [0]) {
        if (config->s3_bucket [0] || config->s3_prefix [0] || config->s3_https)
            return qv_err (QV_EINVAL, "--s3-bucket, --s3-prefix and --s3-https need "
                           "--s3-endpoint HOST:PORT");
        snprintf (out, size, "%s", config->data);
        return 0;
    }
    const char *colon = strrchr (config->s3_endpoint, ':');
    if (!colon || colon == config->s3_endpoint || !colon [1]
    ||  colon [1 + strspn (colon + 1, "0123456789")] != 0 || atoi (colon + 1) <= 0
    ||  atoi (colon + 1) > 65535 || strpbrk (config->s3_endpoint, "/ ?&"))
        return qv_err (QV_EINVAL, "--s3-endpoint '%s': expected HOST:PORT (e.g. "
                       "minio:9000; no scheme, use --s3-https for TLS)", config->s3_endpoint);
    size_t blen = strlen (config->s3_bucket);
    if (blen < 3 || blen > 63 || config->s3_bucket [strspn (config->s3_bucket,
                                 "abcdefghijklmnopqrstuvwxyz0123456789.-")] != 0)
        return qv_err (QV_EINVAL, "--s3-bucket '%s': needs a bucket name of 3 to 63 "
                       "characters of [a-z0-9.-]", config->s3_bucket);
    if (config->s3_prefix [strspn (config->s3_prefix, "abcdefghijklmnopqrstuvwxyzABCDEFGH"
                                   "IJKLMNOPQRSTUVWXYZ0123456789._-/")] != 0
    ||  config->s3_prefix [0] == '/' || strstr (config->s3_prefix, "//"))
        return qv_err (QV_EINVAL, "--s3-prefix '%s': use [A-Za-z0-9._-] segments "
                       "separated by '/'", config->s3_prefix);
    if (config->s3_connections < 1 || config->s3_connections > 256)
        return qv_err (QV_EINVAL, "--s3-connections %d: use 1 to 256", config->s3_connections);
    if (config->s3_lock_ms < 10)
        return qv_err (QV_EINVAL, "--s3-lock-ms %d: use at least 10", config->s3_lock_ms);
    int n = snprintf (out, size, "s3://%s/%s%s%s?https=%d&connections=%d&lock_ms=%d",
                      config->s3_endpoint, config->s3_bucket, config->s3_prefix [0] ? "/" : "",
                      config->s3_prefix, config->s3_https ? 1 : 0, config->s3_connections,
                      config->s3_lock_ms);
    if (n < 0 || (size_t) n >= size)
        return qv_err (QV_EINVAL, "--s3-* options too long");
    return 0;
}

void
qv_config_store_identity (const qv_config_t *config, char *out, size_t size)
{
    if (config->s3_endpoint [0])
        snprintf (out, size, "s3:%s/%s/%s", config->s3_endpoint, config->s3_bucket,
                  config->s3_prefix);
    else {
        char real [PATH_MAX];
        snprintf (out, size, "%s", realpath (config->data, real) ? real : config->data);
    }
}

//  The identity's last 64 characters with every character outside [A-Za-z0-9_-] made
//  '_', a '-', and 16 hex digits of its FNV-1a hash (the whole identity).
void
qv_config_store_key (const qv_config_t *config, char *out, size_t size)
{
    char identity [PATH_MAX + 600];
    qv_config_store_identity (config, identity, sizeof identity);
    uint64_t h = 1469598103934665603ULL;
    for (const char *p = identity; *p; p++)
        h = (h ^ (unsigned char) *p) * 1099511628211ULL;
    size_t len = strlen (identity);
    const char *tail = len > 64 ? identity + len - 64 : identity;
    char clean [65];
    size_t n = 0;
    for (; *tail && n < 64; tail++)
        clean [n++] = (isalnum ((unsigned char) *tail) || *tail == '-') ? *tail : '_';
    clean [n] = 0;
    snprintf (out, size, "%s-%016llx", clean, (unsigned long long) h);
}

void
qv_config_advertise (const qv_config_t *config, char *out, size_t size)
{
    if (config->advertise [0]) {
        snprintf (out, size, "%s", config->advertise);
        return;
    }
    //  tcp://*:PORT and tcp://0.0.0.0:PORT listen everywhere: peers reach the host name
    const char *bind = config->bind;
    const char *host = strstr (bind, "://");
    host = host ? host + 3 : bind;
    if (strncmp (host, "*:", 2) == 0 || strncmp (host, "0.0.0.0:", 8) == 0) {
        char name [256] = "localhost";
        gethostname (name, sizeof name - 1);
        name [sizeof name - 1] = 0;
        snprintf (out, size, "%.*s%s%s", (int) (host - bind), bind, name, strchr (host, ':'));
    }
    else
        snprintf (out, size, "%s", bind);
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

void
qv_config_fault_apply_delay (qv_config_t *config)
{
    const char *delay = getenv ("QV_FAULT_APPLY_DELAY_MS");
    if (delay && atoi (delay) > 0) {
        qv_warn ("QV_FAULT_APPLY_DELAY_MS=%s: the searcher applies every record %s ms late "
                 "(fault injection)", delay, delay);
        config->fault_apply_delay_ms = atoi (delay);
    }
}
