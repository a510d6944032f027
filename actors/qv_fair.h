//  Per-client admission and fair read scheduling for the proxy: a cap on each client's
//  requests in flight, and a bounded window of reads at the searcher filled round-robin
//  across clients, so one client's pipeline never delays another's by more than a
//  window's worth of reads.
#ifndef QV_FAIR_H_INCLUDED
#define QV_FAIR_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>

typedef struct _qv_fair_t qv_fair_t;

//  A scheduler allowing max_per_client requests in flight per client and window reads
//  at the searcher at once. NULL on failure. Owned by the proxy's thread.
qv_fair_t *
    qv_fair_new (size_t max_per_client, size_t window);
//  Destroys; items still queued are passed to free_item (may be NULL). Safe twice.
void
    qv_fair_destroy (qv_fair_t **self_p, void (*free_item) (void *item));

//  A request from client (its ZeroMQ routing id): counts it in flight until
//  qv_fair_release. With capped, QV_ELIMIT (message recorded) if the client already has
//  max_per_client requests in flight; then nothing is counted.
int
    qv_fair_admit (qv_fair_t *self, const void *client, size_t len, bool capped);
//  The reply to one of client's admitted requests has gone out.
void
    qv_fair_release (qv_fair_t *self, const void *client, size_t len);

//  An admitted read of client: returns item when it may go to the searcher now (it takes
//  a window slot), else queues it behind the client's earlier reads and returns NULL.
void *
    qv_fair_submit (qv_fair_t *self, const void *client, size_t len, void *item);
//  A read left the searcher: frees its slot. Returns the next queued read, taken from
//  the clients in turn (it takes the slot), or NULL if none waits.
void *
    qv_fair_done (qv_fair_t *self);
//  Removes and returns one queued read (shutdown: to answer it), NULL when none is left.
void *
    qv_fair_drain (qv_fair_t *self);

//  Clients with requests in flight / reads queued in all (stats, tests).
size_t
    qv_fair_clients (qv_fair_t *self);
size_t
    qv_fair_queued (qv_fair_t *self);

#endif
