//  Per-client admission and fair read scheduling (see qv_fair.h).
//
//  DESIGN
//  A client is known by its routing id; it has a count of requests in flight (from
//  admission to the reply going out) and a FIFO of its reads waiting for a window slot.
//  Clients with waiting reads stand in a ring: each freed slot goes to the client at
//  the head, which then moves to the tail if it has more. A client is forgotten when
//  nothing of it is in flight, so the table holds at most the clients that are
//  waiting for something, each with at most max_per_client requests.
#include "qv_fair.h"
#include "qv_rc.h"

#include <czmq.h>

typedef struct {
    size_t inflight;                //  admitted, reply not sent yet
    zlistx_t *queue;                //  reads waiting for a slot, in arrival order
    void *ring_handle;              //  its place in the ring, or NULL
} s_client_t;

struct _qv_fair_t {
    size_t max_per_client;
    size_t window;
    size_t out;                     //  reads at the searcher now
    size_t queued;                  //  reads waiting in all
    zhashx_t *clients;              //  hex routing id -> s_client_t
    zlistx_t *ring;                 //  s_client_t * with reads waiting
};

static void
s_client_free (void **item)
{
    s_client_t *c = *item;
    if (c) {
        zlistx_destroy (&c->queue);
        free (c);
        *item = NULL;
    }
}

qv_fair_t *
qv_fair_new (size_t max_per_client, size_t window)
{
    qv_fair_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    self->max_per_client = max_per_client ? max_per_client : 1;
    self->window = window ? window : 1;
    self->clients = zhashx_new ();
    self->ring = zlistx_new ();
    zhashx_set_destructor (self->clients, s_client_free);
    return self;
}

void
qv_fair_destroy (qv_fair_t **self_p, void (*free_item) (void *item))
{
    qv_fair_t *self = *self_p;
    if (!self)
        return;
    void *item;
    while ((item = qv_fair_drain (self)))
        if (free_item)
            free_item (item);
    zhashx_destroy (&self->clients);
    zlistx_destroy (&self->ring);
    free (self);
    *self_p = NULL;
}

//  The table key of a routing id: its bytes in hex (routing ids are binary).
static void
s_key (const void *client, size_t len, char *key, size_t size)
{
    const uint8_t *p = client;
    size_t at = 0;
    for (size_t i = 0; i < len && at + 3 <= size; i++)
        at += (size_t) snprintf (key + at, size - at, "%02x", p [i]);
    key [at] = 0;
}

static s_client_t *
s_lookup (qv_fair_t *self, const void *client, size_t len, bool create)
{
    char key [520];
    s_key (client, len, key, sizeof key);
    s_client_t *c = zhashx_lookup (self->clients, key);
    if (!c && create) {
        c = calloc (1, sizeof *c);
        c->queue = zlistx_new ();
        zhashx_insert (self->clients, key, c);
    }
    return c;
}

int
qv_fair_admit (qv_fair_t *self, const void *client, size_t len, bool capped)
{
    s_client_t *c = s_lookup (self, client, len, true);
    if (capped && c->inflight >= self->max_per_client)
        return qv_err (QV_ELIMIT, "this client has %zu requests in flight, the limit "
                       "(--max-inflight); read replies before sending more", c->inflight);
    c->inflight++;
    return 0;
}

void
qv_fair_release (qv_fair_t *self, const void *client, size_t len)
{
    char key [520];
    s_key (client, len, key, sizeof key);
    s_client_t *c = zhashx_lookup (self->clients, key);
    if (!c)
        return;
    if (c->inflight > 0)
        c->inflight--;
    if (c->inflight == 0 && zlistx_size (c->queue) == 0 && !c->ring_handle)
        zhashx_delete (self->clients, key);
}

void *
qv_fair_submit (qv_fair_t *self, const void *client, size_t len, void *item)
{
    s_client_t *c = s_lookup (self, client, len, true);
    if (self->out < self->window && zlistx_size (c->queue) == 0) {
        self->out++;
        return item;
    }
    zlistx_add_end (c->queue, item);
    self->queued++;
    if (!c->ring_handle)
        c->ring_handle = zlistx_add_end (self->ring, c);
    return NULL;
}

//  The next queued read in turn, or NULL; no slot accounting.
static void *
s_take (qv_fair_t *self)
{
    s_client_t *c = zlistx_first (self->ring);
    if (!c)
        return NULL;
    void *item = zlistx_detach (c->queue, NULL);
    self->queued--;
    zlistx_detach (self->ring, c->ring_handle);
    c->ring_handle = zlistx_size (c->queue) ? zlistx_add_end (self->ring, c) : NULL;
    return item;
}

void *
qv_fair_done (qv_fair_t *self)
{
    if (self->out > 0)
        self->out--;
    if (self->out >= self->window)
        return NULL;
    void *item = s_take (self);
    if (item)
        self->out++;
    return item;
}

void *
qv_fair_drain (qv_fair_t *self)
{
    return s_take (self);
}

size_t
qv_fair_clients (qv_fair_t *self)
{
    return zhashx_size (self->clients);
}

size_t
qv_fair_queued (qv_fair_t *self)
{
    return self->queued;
}
