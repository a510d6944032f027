//  The HTTP gateway (`quiver serve --http HOST:PORT`): Milvus's REST API v2 over
//  libmicrohttpd, each request answered through the proxy like a ZeroMQ request.
//
//  DESIGN
//  libmicrohttpd runs one thread per HTTP connection (keep-alive connections stay on
//  their thread). Each connection owns a native client (qv_client_t, a DEALER socket)
//  connected to the proxy's inproc API socket, the one the NATS bridge uses: the
//  proxy decodes, validates, limits and routes the request exactly as it does for a
//  ZeroMQ client, and the reply comes back on that connection's socket. No state is
//  shared between connections; qv_milvus.c turns bodies into native requests and
//  replies into Milvus's JSON.
#ifndef QV_HTTP_H_INCLUDED
#define QV_HTTP_H_INCLUDED

#include "qv_config.h"

#define QV_HTTP_MAX_CONNECTIONS 256 //  connections served at once (one thread each)
#define QV_HTTP_IDLE_SEC 300        //  an idle keep-alive connection is closed after this
#define QV_HTTP_CALL_MS 300000      //  longest wait for the server's reply to a request

typedef struct _qv_http_t qv_http_t;

//  Parses config->http ("HOST:PORT", an IPv4 address or localhost) and starts
//  serving it. NULL with the reason in qv_err_msg () if the address is not valid or
//  cannot be bound. Called by the server after the proxy is up.
qv_http_t *
    qv_http_new (const qv_config_t *config);

//  Stops accepting, closes every connection (waiting for requests in flight), frees.
//  Safe twice.
void
    qv_http_destroy (qv_http_t **self_p);

//  Parses "HOST:PORT" (an IPv4 address or localhost; port 0..65535) given to option
//  ("--http") into addr. QV_EINVAL naming the option and the value if it is not one.
struct sockaddr_in;
int
    qv_http_parse_addr (const char *option, const char *value, struct sockaddr_in *addr);

//  The port served (useful with port 0).
int
    qv_http_port (qv_http_t *self);

#endif
