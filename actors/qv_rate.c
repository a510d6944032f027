//  Token-bucket rate limits (see qv_rate.h).
#include "qv_rate.h"
#include "qv_rc.h"

#include <czmq.h>
#include <math.h>

#define S_PRUNE_EVERY 1024          //  takes between two sweeps of idle client buckets

typedef struct {
    double tokens;
    int64_t at;                     //  usec of the last refill
} s_bucket_t;

typedef struct {
    s_bucket_t b [QV_RATE_KINDS];
} s_client_t;

struct _qv_rate_t {
    double server [QV_RATE_KINDS];
    double client [QV_RATE_KINDS];
    double user [QV_RATE_KINDS];
    const char *server_options [QV_RATE_KINDS];
    const char *client_options [QV_RATE_KINDS];
    const char *user_options [QV_RATE_KINDS];
    s_bucket_t global [QV_RATE_KINDS];
    zhashx_t *clients;              //  hex routing id -> s_client_t
    zhashx_t *users;                //  user name -> s_client_t
    size_t takes;
};

static const char *s_units [QV_RATE_KINDS] = { "bytes of inserts", "searches (query vectors)" };

static void
s_client_free (void **item)
{
    free (*item);
    *item = NULL;
}

qv_rate_t *
qv_rate_new (const double server [QV_RATE_KINDS], const double client [QV_RATE_KINDS],
             const char *const server_options [QV_RATE_KINDS],
             const char *const client_options [QV_RATE_KINDS])
{
    qv_rate_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    for (int k = 0; k < QV_RATE_KINDS; k++) {
        self->server [k] = server [k];
        self->client [k] = client [k];
        self->server_options [k] = server_options [k];
        self->client_options [k] = client_options [k];
        self->global [k].tokens = server [k];
        self->global [k].at = qv_clock_usec ();
    }
    self->clients = zhashx_new ();
    zhashx_set_destructor (self->clients, s_client_free);
    self->users = zhashx_new ();
    zhashx_set_destructor (self->users, s_client_free);
    return self;
}

void
qv_rate_set_user_limits (qv_rate_t *self, const double user [QV_RATE_KINDS],
                         const char *const user_options [QV_RATE_KINDS])
{
    for (int k = 0; k < QV_RATE_KINDS; k++) {
        self->user [k] = user [k];
        self->user_options [k] = user_options [k];
    }
}

void
qv_rate_destroy (qv_rate_t **self_p)
{
    qv_rate_t *self = *self_p;
    if (!self)
        return;
    zhashx_destroy (&self->clients);
    zhashx_destroy (&self->users);
    free (self);
    *self_p = NULL;
}

static void
s_refill (s_bucket_t *b, double rate, int64_t now)
{
    if (now > b->at) {
        b->tokens = fmin (rate, b->tokens + rate * (double) (now - b->at) / 1e6);
        b->at = now;
    }
}

//  Whether b (refilled) admits amount.
static bool
s_admits (const s_bucket_t *b, double rate, double amount)
{
    return b->tokens >= fmin (amount, rate);
}

//  QV_ELIMIT naming the limit and when b has enough again.
static int
s_refuse (const s_bucket_t *b, double rate, double amount, const char *whose,
          const char *option, const char *unit)
{
    double need = fmin (amount, rate) - b->tokens;
    double ms = ceil (need / rate * 1000);
    return qv_err (QV_ELIMIT, "rate limit of %s reached: %.0f %s per second (%s); retry in "
                   "%.0f ms", whose, rate, unit, option, ms > 1 ? ms : 1);
}

//  The buckets of key in keyed (a new one, full, if it has none); NULL out of memory.
static s_client_t *
s_entry (zhashx_t *keyed, const char *key, const double *rates, int64_t now_usec)
{
    s_client_t *entry = zhashx_lookup (keyed, key);
    if (!entry && (entry = calloc (1, sizeof *entry))) {
        for (int k = 0; k < QV_RATE_KINDS; k++) {
            entry->b [k].tokens = rates [k];
            entry->b [k].at = now_usec;
        }
        zhashx_insert (keyed, key, entry);
    }
    return entry;
}

//  Drops the entries of keyed whose buckets have filled up again (as a new one's are).
static void
s_sweep (zhashx_t *keyed, const double *rates, int64_t now_usec)
{
    zlistx_t *keys = zhashx_keys (keyed);
    for (char *k = zlistx_first (keys); k; k = zlistx_next (keys)) {
        s_client_t *e = zhashx_lookup (keyed, k);
        bool full = true;
        for (int i = 0; i < QV_RATE_KINDS; i++)
            if (rates [i] > 0) {
                s_refill (&e->b [i], rates [i], now_usec);
                full &= e->b [i].tokens >= rates [i];
            }
        if (full)
            zhashx_delete (keyed, k);
    }
    zlistx_destroy (&keys);
}

int
qv_rate_take (qv_rate_t *self, qv_rate_kind_t kind, const void *client, size_t len,
              const char *user, double amount, int64_t now_usec)
{
    if (kind < 0 || kind >= QV_RATE_KINDS || amount <= 0)
        return 0;
    double srate = self->server [kind], crate = self->client [kind];
    double urate = user && user [0] ? self->user [kind] : 0;
    if (srate <= 0 && crate <= 0 && urate <= 0)
        return 0;
    s_bucket_t *g = &self->global [kind], *c = NULL, *u = NULL;
    if (srate > 0) {
        s_refill (g, srate, now_usec);
        if (!s_admits (g, srate, amount))
            return s_refuse (g, srate, amount, "the server", self->server_options [kind],
                             s_units [kind]);
    }
    if (crate > 0) {
        char key [2 * 256 + 1];
        if (len > 256)
            len = 256;
        for (size_t i = 0; i < len; i++)
            snprintf (key + 2 * i, 3, "%02x", ((const uint8_t *) client) [i]);
        key [2 * len] = 0;
        s_client_t *entry = s_entry (self->clients, key, self->client, now_usec);
        if (!entry)
            return qv_err (QV_ENOMEM, "out of memory");
        c = &entry->b [kind];
        s_refill (c, crate, now_usec);
        if (!s_admits (c, crate, amount))
            return s_refuse (c, crate, amount, "this client", self->client_options [kind],
                             s_units [kind]);
    }
    if (urate > 0) {
        s_client_t *entry = s_entry (self->users, user, self->user, now_usec);
        if (!entry)
            return qv_err (QV_ENOMEM, "out of memory");
        u = &entry->b [kind];
        s_refill (u, urate, now_usec);
        if (!s_admits (u, urate, amount)) {
            char whose [128];
            snprintf (whose, sizeof whose, "user '%s'", user);
            return s_refuse (u, urate, amount, whose, self->user_options [kind], s_units [kind]);
        }
    }
    if (srate > 0)
        g->tokens -= amount;
    if (c)
        c->tokens -= amount;
    if (u)
        u->tokens -= amount;
    //  Sweep: a client or user whose buckets have filled up again is as a new one would be
    if (++self->takes % S_PRUNE_EVERY == 0) {
        s_sweep (self->clients, self->client, now_usec);
        s_sweep (self->users, self->user, now_usec);
    }
    return 0;
}

size_t
qv_rate_clients (qv_rate_t *self)
{
    return zhashx_size (self->clients);
}
