//  Integration-test helper: an HTTP client (libcurl, keep-alive) for the REST gateway,
//  JSON replies read with jansson, and assertions on Milvus-shaped replies.
//
//  Like qv_it_server, nothing here uses cmocka: functions return values, the
//  macros of the tests assert.
#ifndef QV_IT_REST_H_INCLUDED
#define QV_IT_REST_H_INCLUDED

#include <jansson.h>
#include <stdbool.h>

typedef struct _qv_it_rest_t qv_it_rest_t;

//  A free loopback TCP port (the kernel's choice); 0 on failure.
int
    qv_it_rest_free_port (void);

//  A client of http://127.0.0.1:port; one connection, kept alive. NULL on failure.
qv_it_rest_t *
    qv_it_rest_new (int port);
void
    qv_it_rest_destroy (qv_it_rest_t **self_p);

//  Adds a request header ("Authorization: Bearer root:Milvus") to every later request.
void
    qv_it_rest_header (qv_it_rest_t *self, const char *header);

//  Sends method (e.g. "POST") path with body (may be NULL) and returns the decoded
//  JSON reply (NULL if none came or it is not JSON: message on stderr); *status_p
//  receives the HTTP status (0 if no reply). The caller decrefs.
json_t *
    qv_it_rest_send (qv_it_rest_t *self, const char *method, const char *path,
                     const char *body, long *status_p);

//  The same for a reply that need not be JSON: its body (valid until the next request;
//  "" if empty), or NULL if no reply came (message on stderr).
const char *
    qv_it_rest_text (qv_it_rest_t *self, const char *method, const char *path,
                     const char *body, long *status_p);

//  How many new TCP connections the last request opened (0: it reused the kept-alive one).
long
    qv_it_rest_connects (qv_it_rest_t *self);

//  Whether got equals the JSON text want (objects in any key order, jansson's
//  json_equal: 1 and 1.0 differ); on a mismatch writes both to stderr prefixed by what.
bool
    qv_it_rest_match (const char *what, json_t *got, const char *want);

#endif
