//  The metrics and health endpoint (see qv_metrics.h).
#include "qv_metrics.h"
#include "qv_client.h"
#include "qv_hist.h"
#include "qv_http.h"
#include "qv_opstats.h"
#include "qv_rc.h"

#include <microhttpd.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct _qv_metrics_t {
    struct MHD_Daemon *daemon;
    char api [256];                 //  the proxy's inproc API endpoint
    qv_client_t *client;            //  made and used on the daemon's thread only
    int port;
};

//  `stats` fields that only grow: exposed as counters, quiver_<name>_total.
static const char *s_counters [] = {
    "store_requests", "store_retries", "writes_waited", "writes_refused",
    "writes_stream_again", "segments_read", "nats_requests", "nats_failed", "nats_dropped",
    "compactions_completed", "compactions_failed", "compaction_rows_dropped",
    "gc_deleted_objects", "cache_hits", "cache_misses", "cache_bytes_downloaded",
    "cache_corrupt", "cache_stale", "cache_evictions", "feed_published", "feed_dropped",
    "feed_wal_reads", "cdc_published", "cdc_dropped", NULL
};

static bool
s_is_counter (const char *name, size_t len)
{
    for (int i = 0; s_counters [i]; i++)
        if (strlen (s_counters [i]) == len && memcmp (s_counters [i], name, len) == 0)
            return true;
    return false;
}

//  Calls op (no fields) through the proxy; the reply, or NULL with *error set.
static qv_doc_t *
s_call (qv_metrics_t *self, const char *op, char *error, size_t size)
{
    if (!self->client) {
        self->client = qv_client_new (self->api);
        if (!self->client) {
            snprintf (error, size, "%s", qv_err_msg ());
            return NULL;
        }
        qv_client_set_timeout (self->client, QV_METRICS_CALL_MS);
    }
    qv_wr_t *w = qv_client_request (self->client, op, 0, NULL);
    qv_doc_t *reply = NULL;
    int rc = qv_client_call (self->client, w, &reply);
    qv_wr_destroy (&w);
    if (rc == 0)
        return reply;
    snprintf (error, size, "%s: %s", qv_client_code (self->client), qv_client_error (self->client));
    qv_doc_destroy (&reply);
    return NULL;
}

//  A label value as Prometheus wants it: backslash, quote and newline escaped.
static void
s_label (FILE *out, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (s [i] == '\\' || s [i] == '"')
            fputc ('\\', out);
        if (s [i] == '\n')
            fputs ("\\n", out);
        else
            fputc (s [i], out);
    }
}

//  Whether name is a Prometheus-safe metric name part ([a-z0-9_]+).
static bool
s_is_name (const char *s, size_t n)
{
    bool valid = n > 0;
    for (size_t c = 0; c < n; c++)
        valid &= (s [c] >= 'a' && s [c] <= 'z') || (s [c] >= '0' && s [c] <= '9') || s [c] == '_';
    return valid;
}

//  The `stats` field memory (bytes by component) as one gauge with a label per
//  component: quiver_memory_bytes{component="flushed_segments"}.
static void
s_write_memory (FILE *out, const qv_val_t *memory)
{
    fprintf (out, "# HELP quiver_memory_bytes Memory held, by component (the stats field memory).\n"
                  "# TYPE quiver_memory_bytes gauge\n");
    const char *s;
    size_t n;
    uint64_t u;
    for (size_t i = 0; i < qv_val_len (memory); i++) {
        const qv_val_t *key = qv_val_key (memory, i);
        if (key && qv_val_str (key, &s, &n) == 0 && s_is_name (s, n)
        &&  qv_val_uint (qv_val_value (memory, i), &u) == 0)
            fprintf (out, "quiver_memory_bytes{component=\"%.*s\"} %llu\n", (int) n, s,
                     (unsigned long long) u);
    }
}

static void
s_write_stats (FILE *out, const qv_val_t *root, bool ready)
{
    fprintf (out, "# HELP quiver_ready Whether the server answers requests (1) or not yet (0).\n"
                  "# TYPE quiver_ready gauge\nquiver_ready %d\n", ready ? 1 : 0);
    if (!root)
        return;
    const char *s;
    size_t n;
    const qv_val_t *role = qv_val_get (root, "role"), *instance = qv_val_get (root, "instance");
    fprintf (out, "# HELP quiver_info This process: its role and instance.\n"
                  "# TYPE quiver_info gauge\nquiver_info{role=\"");
    if (role && qv_val_str (role, &s, &n) == 0)
        s_label (out, s, n);
    fprintf (out, "\",instance=\"");
    if (instance && qv_val_str (instance, &s, &n) == 0)
        s_label (out, s, n);
    fprintf (out, "\"} 1\n");
    for (size_t i = 0; i < qv_val_len (root); i++) {
        const qv_val_t *key = qv_val_key (root, i), *value = qv_val_value (root, i);
        uint64_t u;
        if (qv_val_str (key, &s, &n) || qv_val_is (key, "rid") || !s_is_name (s, n))
            continue;
        if (qv_val_is (key, "memory")) {
            s_write_memory (out, value);
            continue;
        }
        if (qv_val_uint (value, &u))
            continue;               //  strings, lists, other maps: not a number to plot
        bool counter = s_is_counter (s, n);
        fprintf (out, "# HELP quiver_%.*s%s The stats field %.*s.\n# TYPE quiver_%.*s%s %s\n"
                      "quiver_%.*s%s %llu\n",
                 (int) n, s, counter ? "_total" : "", (int) n, s, (int) n, s,
                 counter ? "_total" : "", counter ? "counter" : "gauge", (int) n, s,
                 counter ? "_total" : "", (unsigned long long) u);
    }
}

//  Queues text (malloc'd, taken) with status and content type.
static enum MHD_Result
s_reply (struct MHD_Connection *connection, int status, const char *type, char *text, size_t size)
{
    struct MHD_Response *resp = MHD_create_response_from_buffer (size, text, MHD_RESPMEM_MUST_FREE);
    if (!resp) {
        free (text);
        return MHD_NO;
    }
    MHD_add_response_header (resp, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    enum MHD_Result ret = MHD_queue_response (connection, (unsigned int) status, resp);
    MHD_destroy_response (resp);
    return ret;
}

static enum MHD_Result
s_text (struct MHD_Connection *connection, int status, const char *fmt, const char *arg)
{
    char *text = NULL;
    int n = asprintf (&text, fmt, arg);
    if (n < 0)
        return MHD_NO;
    return s_reply (connection, status, "text/plain; charset=utf-8", text, (size_t) n);
}

static enum MHD_Result
s_access (void *cls, struct MHD_Connection *connection, const char *url, const char *method,
          const char *version, const char *upload_data, size_t *upload_data_size, void **con_cls)
{
    (void) version, (void) upload_data;
    qv_metrics_t *self = cls;
    if (!*con_cls) {                //  first call: headers only
        *con_cls = self;
        return MHD_YES;
    }
    if (*upload_data_size) {        //  a body is not wanted: read past it
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (strcmp (method, MHD_HTTP_METHOD_GET) && strcmp (method, MHD_HTTP_METHOD_HEAD))
        return s_text (connection, 405, "method %s is not allowed: use GET\n", method);
    char error [512] = "";
    if (strcmp (url, "/healthz") == 0)
        return s_text (connection, 200, "%s", "ok\n");
    if (strcmp (url, "/readyz") == 0) {
        qv_doc_t *r = s_call (self, "ping", error, sizeof error);
        bool ready = r != NULL;
        qv_doc_destroy (&r);
        return ready ? s_text (connection, 200, "%s", "ready\n")
                     : s_text (connection, 503, "not ready: %s\n", error);
    }
    if (strcmp (url, "/metrics") == 0) {
        char *text = NULL;
        size_t size = 0;
        FILE *out = open_memstream (&text, &size);
        if (!out)
            return MHD_NO;
        qv_opstats_write (out);
        qv_hist_write (out);
        qv_doc_t *r = s_call (self, "stats", error, sizeof error);
        s_write_stats (out, r ? qv_doc_root (r) : NULL, r != NULL);
        qv_doc_destroy (&r);
        fclose (out);
        return s_reply (connection, 200, "text/plain; version=0.0.4; charset=utf-8", text, size);
    }
    return s_text (connection, 404, "%s: not here (/metrics, /healthz, /readyz)\n", url);
}

qv_metrics_t *
qv_metrics_new (const qv_config_t *config)
{
    struct sockaddr_in addr;
    if (qv_http_parse_addr ("--metrics", config->metrics, &addr))
        return NULL;
    qv_metrics_t *self = calloc (1, sizeof *self);
    if (!self) {
        qv_err (QV_ENOMEM, "out of memory");
        return NULL;
    }
    qv_config_endpoint (config, "api", self->api, sizeof self->api);
    self->daemon = MHD_start_daemon (MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL
                                     | MHD_USE_ERROR_LOG,
                                     0, NULL, NULL, s_access, self,
                                     MHD_OPTION_SOCK_ADDR, (struct sockaddr *) &addr,
                                     MHD_OPTION_CONNECTION_LIMIT, 64u,
                                     MHD_OPTION_CONNECTION_TIMEOUT, 30u,
                                     MHD_OPTION_END);
    if (!self->daemon) {
        qv_err (QV_EUNAVAIL, "--metrics %s: cannot serve HTTP there (address in use or not "
                "local?)", config->metrics);
        free (self);
        return NULL;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info (self->daemon, MHD_DAEMON_INFO_BIND_PORT);
    self->port = info ? info->port : ntohs (addr.sin_port);
    return self;
}

void
qv_metrics_destroy (qv_metrics_t **self_p)
{
    qv_metrics_t *self = *self_p;
    if (!self)
        return;
    MHD_stop_daemon (self->daemon);
    qv_client_destroy (&self->client);
    free (self);
    *self_p = NULL;
}

int
qv_metrics_port (qv_metrics_t *self)
{
    return self->port;
}
