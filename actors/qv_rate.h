//  Token-bucket rate limits for the proxy: insert bytes per second and searches (query
//  vectors, as Milvus counts nq) per second, for the whole server, per client and per
//  authenticated user.
//
//  DESIGN
//  Each limit is a bucket of capacity one second's rate, refilled continuously. A
//  request is admitted when every bucket it draws from holds at least its amount, or,
//  for a request larger than a whole second's worth, when the bucket is full; it then
//  takes its amount (a large request leaves the bucket in debt, which later requests
//  wait out). Per-client buckets are keyed by the client's routing id and dropped once
//  idle long enough to be full again, so their number stays bounded by the clients
//  active in the last seconds. Owned by the proxy's thread.
#ifndef QV_RATE_H_INCLUDED
#define QV_RATE_H_INCLUDED

#include <stddef.h>
#include <stdint.h>

typedef enum {
    QV_RATE_INSERT_BYTES = 0,       //  bytes of insert and upsert requests
    QV_RATE_SEARCHES = 1,           //  query vectors of search requests
    QV_RATE_KINDS = 2
} qv_rate_kind_t;

typedef struct _qv_rate_t qv_rate_t;

//  Limits per second for the server and for each client (0: none); options: the
//  command-line options that set them, named in refusals.
qv_rate_t *
    qv_rate_new (const double server [QV_RATE_KINDS], const double client [QV_RATE_KINDS],
                 const char *const server_options [QV_RATE_KINDS],
                 const char *const client_options [QV_RATE_KINDS]);
void
    qv_rate_destroy (qv_rate_t **self_p);

//  Limits per second for each authenticated user (0: none), and their options (none
//  until set).
void
    qv_rate_set_user_limits (qv_rate_t *self, const double user [QV_RATE_KINDS],
                             const char *const user_options [QV_RATE_KINDS]);
//  Takes amount of kind for client (its routing id) and user (its authenticated user,
//  or NULL / "" without authentication) at now_usec (qv_clock_usec). 0, or QV_ELIMIT
//  with a message naming the limit, its option and when to retry; nothing is taken then.
int
    qv_rate_take (qv_rate_t *self, qv_rate_kind_t kind, const void *client, size_t len,
                  const char *user, double amount, int64_t now_usec);

//  Per-client buckets held (tests).
size_t
    qv_rate_clients (qv_rate_t *self);

#endif
