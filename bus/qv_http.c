//  The HTTP gateway: libmicrohttpd, one native client per connection (see qv_http.h).
#include "qv_http.h"
#include "qv_client.h"
#include "qv_milvus.h"
#include "qv_rc.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct _qv_http_t {
    struct MHD_Daemon *daemon;
    const qv_config_t *config;
    char api [256];                 //  the proxy's inproc API endpoint
    int port;
};

//  One TCP connection: its native client, made on its thread at its first request.
typedef struct {
    qv_client_t *client;
} s_conn_t;

//  One HTTP request: the body as it arrives.
typedef struct {
    char *body;
    size_t size;                    //  bytes received (also beyond the limit)
    size_t cap;
} s_req_t;

static void
s_log (void *cls, const char *fmt, va_list ap)
{
    (void) cls;
    char line [512];
    vsnprintf (line, sizeof line, fmt, ap);
    size_t n = strlen (line);
    while (n && line [n - 1] == '\n')
        line [--n] = 0;
    qv_warn ("http: %s", line);
}

static void
s_notify_connection (void *cls, struct MHD_Connection *connection, void **socket_context,
                     enum MHD_ConnectionNotificationCode toe)
{
    (void) cls;
    (void) connection;
    if (toe == MHD_CONNECTION_NOTIFY_STARTED)
        *socket_context = calloc (1, sizeof (s_conn_t));
    else {
        s_conn_t *conn = *socket_context;
        if (conn) {
            qv_client_destroy (&conn->client);
            free (conn);
        }
        *socket_context = NULL;
    }
}

static void
s_request_completed (void *cls, struct MHD_Connection *connection, void **con_cls,
                     enum MHD_RequestTerminationCode toe)
{
    (void) cls;
    (void) connection;
    (void) toe;
    s_req_t *req = *con_cls;
    if (req) {
        free (req->body);
        free (req);
        *con_cls = NULL;
    }
}

//  Queues a JSON reply (text malloc'd, taken) with status.
static enum MHD_Result
s_reply (struct MHD_Connection *connection, int status, char *text)
{
    struct MHD_Response *resp = MHD_create_response_from_buffer (strlen (text), text, MHD_RESPMEM_MUST_FREE);
    if (!resp) {
        free (text);
        return MHD_NO;
    }
    MHD_add_response_header (resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
    enum MHD_Result ret = MHD_queue_response (connection, (unsigned int) status, resp);
    MHD_destroy_response (resp);
    return ret;
}

static enum MHD_Result
s_access (void *cls, struct MHD_Connection *connection, const char *url, const char *method,
          const char *version, const char *upload_data, size_t *upload_data_size, void **con_cls)
{
    (void) version;
    qv_http_t *self = cls;
    s_req_t *req = *con_cls;
    size_t limit = self->config->max_request;
    if (!req) {
        req = calloc (1, sizeof *req);
        if (!req)
            return MHD_NO;
        *con_cls = req;
        return MHD_YES;
    }
    if (*upload_data_size) {
        //  Bytes past the limit are counted, not kept; far past it, the connection goes.
        size_t n = *upload_data_size;
        if (req->size + n <= limit) {
            if (req->size + n > req->cap) {
                size_t cap = req->cap ? req->cap : 4096;
                while (cap < req->size + n)
                    cap *= 2;
                char *grown = realloc (req->body, cap);
                if (!grown)
                    return MHD_NO;
                req->body = grown;
                req->cap = cap;
            }
            memcpy (req->body + req->size, upload_data, n);
        }
        req->size += n;
        *upload_data_size = 0;
        if (req->size <= 2 * limit)
            return MHD_YES;
    }
    char msg [256];
    if (req->size > limit) {
        snprintf (msg, sizeof msg, "parameter too large: request of %zu bytes exceeds the limit of %zu bytes",
                  req->size, limit);
        return s_reply (connection, 413, qv_milvus_error_json (QV_MILVUS_TOO_LARGE, msg));
    }
    if (strcmp (method, MHD_HTTP_METHOD_POST) != 0) {
        snprintf (msg, sizeof msg, "method %.16s is not allowed: every Milvus REST v2 endpoint takes POST", method);
        return s_reply (connection, 405, qv_milvus_error_json (405, msg));
    }
    const union MHD_ConnectionInfo *info = MHD_get_connection_info (connection, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    s_conn_t *conn = info ? info->socket_context : NULL;
    if (!conn)
        return MHD_NO;
    if (!conn->client) {
        //  Named to the proxy by the client's address, so that repeated failed
        //  authentications from it are slowed down as from a ZeroMQ client's
        char routing [80] = "http:", ip [INET6_ADDRSTRLEN] = "";
        const union MHD_ConnectionInfo *peer =
            MHD_get_connection_info (connection, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
        const struct sockaddr *sa = peer ? peer->client_addr : NULL;
        if (sa && sa->sa_family == AF_INET)
            inet_ntop (AF_INET, &((const struct sockaddr_in *) (const void *) sa)->sin_addr, ip, sizeof ip);
        else
        if (sa && sa->sa_family == AF_INET6)
            inet_ntop (AF_INET6, &((const struct sockaddr_in6 *) (const void *) sa)->sin6_addr, ip, sizeof ip);
        strcat (routing, ip [0] ? ip : "unknown");
        conn->client = qv_client_new_as (self->api, routing);
        if (!conn->client)
            return s_reply (connection, 200, qv_milvus_error_json (QV_MILVUS_INTERNAL, qv_err_msg ()));
        qv_client_set_timeout (conn->client, QV_HTTP_CALL_MS);
    }
    //  Authorization: Bearer <token> is the native token (user:password, as Milvus's)
    const char *auth = MHD_lookup_connection_value (connection, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
    const char *token = NULL;
    if (auth && strncasecmp (auth, "Bearer ", 7) == 0) {
        token = auth + 7;
        while (*token == ' ')
            token++;
    }
    const char *int64 = MHD_lookup_connection_value (connection, MHD_HEADER_KIND, "Accept-Type-Allow-Int64");
    qv_milvus_req_t mreq = { conn->client, token && *token ? token : NULL,
                             int64 && strcasecmp (int64, "false") == 0 };
    char *json = NULL;
    int status = qv_milvus_handle (&mreq, url, req->body ? req->body : "", req->size, &json);
    return s_reply (connection, status, json);
}

int
qv_http_parse_addr (const char *option, const char *value, struct sockaddr_in *addr)
{
    char host [256];
    int port = -1;
    const char *colon = strrchr (value, ':');
    if (!colon || colon == value || (size_t) (colon - value) >= sizeof host
    ||  sscanf (colon + 1, "%d", &port) != 1 || port < 0 || port > 65535)
        return qv_err (QV_EINVAL, "%s '%s': give HOST:PORT, e.g. 127.0.0.1:19531", option, value);
    memcpy (host, value, (size_t) (colon - value));
    host [colon - value] = 0;
    memset (addr, 0, sizeof *addr);
    addr->sin_family = AF_INET;
    addr->sin_port = htons ((uint16_t) port);
    if (strcmp (host, "localhost") == 0)
        snprintf (host, sizeof host, "127.0.0.1");
    if (inet_pton (AF_INET, host, &addr->sin_addr) != 1)
        return qv_err (QV_EINVAL, "%s '%s': '%s' is not an IPv4 address (e.g. 127.0.0.1 or "
                       "0.0.0.0)", option, value, host);
    return 0;
}

qv_http_t *
qv_http_new (const qv_config_t *config)
{
    struct sockaddr_in addr;
    if (qv_http_parse_addr ("--http", config->http, &addr))
        return NULL;
    qv_http_t *self = calloc (1, sizeof *self);
    if (!self) {
        qv_err (QV_ENOMEM, "out of memory");
        return NULL;
    }
    self->config = config;
    qv_config_endpoint (config, "api", self->api, sizeof self->api);
    self->daemon = MHD_start_daemon (MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD
                                     | MHD_USE_POLL | MHD_USE_ERROR_LOG,
                                     0, NULL, NULL, s_access, self,
                                     MHD_OPTION_EXTERNAL_LOGGER, s_log, self,
                                     MHD_OPTION_SOCK_ADDR, (struct sockaddr *) &addr,
                                     MHD_OPTION_CONNECTION_LIMIT, (unsigned int) QV_HTTP_MAX_CONNECTIONS,
                                     MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int) QV_HTTP_IDLE_SEC,
                                     MHD_OPTION_NOTIFY_CONNECTION, s_notify_connection, self,
                                     MHD_OPTION_NOTIFY_COMPLETED, s_request_completed, self,
                                     MHD_OPTION_END);
    if (!self->daemon) {
        qv_err (QV_EUNAVAIL, "--http %s: cannot serve HTTP there (address in use or not local?)", config->http);
        free (self);
        return NULL;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info (self->daemon, MHD_DAEMON_INFO_BIND_PORT);
    self->port = info ? info->port : ntohs (addr.sin_port);
    return self;
}

void
qv_http_destroy (qv_http_t **self_p)
{
    qv_http_t *self = *self_p;
    if (!self)
        return;
    MHD_stop_daemon (self->daemon);
    free (self);
    *self_p = NULL;
}

int
qv_http_port (qv_http_t *self)
{
    return self->port;
}
