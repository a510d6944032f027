//  A lease with a fencing epoch in a JetStream KV bucket: see qv_lease.h.
//
//  DESIGN
//  The value of the key is one line of text:
//      "epoch=E token=T renewal=N state=held|released holder=H"
//  T is random per tenure, so a holder recognises its own value (also an update of its
//  own whose reply was lost). Every write is kvStore_Update with the revision last
//  seen (kvStore_Create for a key that never existed), so two writers never both win.
//  A renewal thread rewrites the value every ttl/3 with N + 1. The judgments about
//  time use only this process's monotonic clock: a contender waits until the revision
//  stayed the same for a whole ttl after it first saw it; a holder claims the lease
//  only while its last successful renewal was SENT less than 3/4 ttl ago, which is
//  before any contender can have started counting.
#include "qv_lease.h"
#include "qv_bus.h"
#include "qv_rc.h"

#include <czmq.h>
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>

#define S_VALUE_MAX 512

struct _qv_lease_t {
    natsConnection *nc;
    jsCtx *js;
    kvStore *kv;
    char bucket [64];
    char name [128];
    char holder [128];
    int ttl_ms;

    //  Written by the renewal thread (and by acquire/release before and after it runs)
    pthread_mutex_t mutex;
    pthread_cond_t cond;
    pthread_t thread;
    pthread_mutex_t renew_mutex;    //  one renewal at a time: the thread's or a confirm's
    bool running;                   //  the renewal thread runs
    bool stop;
    uint64_t revision;              //  of our last write
    uint64_t renewal;
    atomic_int_fast64_t valid_from; //  msec clock when the last successful write was sent
    atomic_uint_fast64_t epoch;
    atomic_bool held;
    atomic_bool lost;
    char token [33];
};

//  What a value says.
typedef struct {
    uint64_t epoch;
    uint64_t renewal;
    char token [33];
    char holder [128];
    bool released;
} s_value_t;

static bool
s_name_ok (const char *s, size_t max)
{
    size_t n = strlen (s);
    if (n == 0 || n >= max)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!(isalnum ((unsigned char) s [i]) || s [i] == '_' || s [i] == '-' || s [i] == '.'))
            return false;
    return true;
}

static void
s_parse (const char *text, int len, s_value_t *v)
{
    memset (v, 0, sizeof *v);
    char buf [S_VALUE_MAX];
    snprintf (buf, sizeof buf, "%.*s", len, text);
    char *holder = strstr (buf, " holder=");
    if (holder) {
        snprintf (v->holder, sizeof v->holder, "%s", holder + 8);
        *holder = 0;                //  the holder may contain anything; it comes last
    }
    char *save = NULL;
    for (char *tok = strtok_r (buf, " ", &save); tok; tok = strtok_r (NULL, " ", &save)) {
        if (strncmp (tok, "epoch=", 6) == 0)
            v->epoch = strtoull (tok + 6, NULL, 10);
        else
        if (strncmp (tok, "renewal=", 8) == 0)
            v->renewal = strtoull (tok + 8, NULL, 10);
        else
        if (strncmp (tok, "token=", 6) == 0)
            snprintf (v->token, sizeof v->token, "%s", tok + 6);
        else
        if (strcmp (tok, "state=released") == 0)
            v->released = true;
    }
}

static int
s_format (qv_lease_t *self, char *out, size_t outsize, uint64_t epoch, uint64_t renewal,
          bool released)
{
    return snprintf (out, outsize, "epoch=%llu token=%s renewal=%llu state=%s holder=%s",
                     (unsigned long long) epoch, self->token, (unsigned long long) renewal,
                     released ? "released" : "held", self->holder);
}

//  Reads the key: 0 with *found and v filled (and *rev), or QV_EUNAVAIL.
static int
s_read (qv_lease_t *self, bool *found, s_value_t *v, uint64_t *rev)
{
    kvEntry *e = NULL;
    natsStatus s = kvStore_Get (&e, self->kv, self->name);
    *found = false;
    memset (v, 0, sizeof *v);
    *rev = 0;
    if (s == NATS_NOT_FOUND)
        return 0;                   //  never written, deleted or purged
    if (s != NATS_OK)
        return qv_err (QV_EUNAVAIL, "lease %s/%s: cannot read it: %s", self->bucket,
                       self->name, natsStatus_GetText (s));
    *rev = kvEntry_Revision (e);
    if (kvEntry_Operation (e) == kvOp_Put) {
        *found = true;
        s_parse (kvEntry_Value (e), kvEntry_ValueLen (e), v);
    }
    kvEntry_Destroy (e);
    return 0;
}

//  Writes our value over revision last (0: the key must not exist). 0 and our new
//  revision, QV_EEXIST when the key changed meanwhile, QV_EUNAVAIL when NATS did not
//  answer (then the write may or may not have landed: the caller reads back).
static int
s_write (qv_lease_t *self, uint64_t last, uint64_t epoch, uint64_t renewal, bool released)
{
    char value [S_VALUE_MAX];
    int len = s_format (self, value, sizeof value, epoch, renewal, released);
    uint64_t rev = 0;
    natsStatus s = last ? kvStore_Update (&rev, self->kv, self->name, value, len, last)
                        : kvStore_Create (&rev, self->kv, self->name, value, len);
    if (s == NATS_OK) {
        self->revision = rev;
        return 0;
    }
    //  An API error (wrong last sequence, key exists) is a conflict; anything else is
    //  transport. Tell them apart by reading back: our token means our write landed.
    bool found;
    s_value_t v;
    uint64_t now_rev;
    if (s_read (self, &found, &v, &now_rev) == 0) {
        if (found && strcmp (v.token, self->token) == 0 && v.renewal == renewal
        &&  v.epoch == epoch) {
            self->revision = now_rev;
            return 0;
        }
        if (now_rev != last)
            return QV_EEXIST;   //  changed by someone else since we read it
    }
    return qv_err (QV_EUNAVAIL, "lease %s/%s: cannot write it: %s", self->bucket, self->name,
                   natsStatus_GetText (s));
}

qv_lease_t *
qv_lease_new (natsConnection *nc, const char *bucket, const char *name, const char *holder,
              int ttl_ms)
{
    if (!s_name_ok (bucket, 64) || !s_name_ok (name, 128)) {
        qv_err (QV_EINVAL, "lease bucket '%s' / key '%s': use letters, digits, '_', '-', '.'",
                bucket, name);
        return NULL;
    }
    if (ttl_ms < 100) {
        qv_err (QV_EINVAL, "lease ttl %d ms: at least 100", ttl_ms);
        return NULL;
    }
    qv_lease_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    self->nc = nc;
    self->ttl_ms = ttl_ms;
    snprintf (self->bucket, sizeof self->bucket, "%s", bucket);
    snprintf (self->name, sizeof self->name, "%s", name);
    snprintf (self->holder, sizeof self->holder, "%s", holder && *holder ? holder : "?");
    for (char *c = self->holder; *c; c++)
        if (*c == '\n' || *c == '\r')
            *c = ' ';
    pthread_mutex_init (&self->mutex, NULL);
    pthread_cond_init (&self->cond, NULL);
    pthread_mutex_init (&self->renew_mutex, NULL);

    if (qv_bus_kv_open (nc, bucket, 0, &self->js, &self->kv) != 0) {
        char msg [512];
        snprintf (msg, sizeof msg, "lease %s", qv_err_msg ());
        qv_lease_destroy (&self);
        qv_err (QV_EUNAVAIL, "%s", msg);
        return NULL;
    }
    return self;
}

//  Waits ms on the condition; true if asked to stop.
static bool
s_sleep (qv_lease_t *self, int ms)
{
    struct timespec until;
    clock_gettime (CLOCK_REALTIME, &until);
    until.tv_sec += ms / 1000;
    until.tv_nsec += (long) (ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock (&self->mutex);
    while (!self->stop
       &&  pthread_cond_timedwait (&self->cond, &self->mutex, &until) != ETIMEDOUT)
        ;
    bool stop = self->stop;
    pthread_mutex_unlock (&self->mutex);
    return stop;
}

//  One renewal (under renew_mutex): 0 renewed, QV_EEXIST taken over (now lost for
//  good, logged), or QV_EUNAVAIL (NATS did not answer).
static int
s_renew (qv_lease_t *self)
{
    pthread_mutex_lock (&self->renew_mutex);
    if (atomic_load (&self->lost)) {
        pthread_mutex_unlock (&self->renew_mutex);
        return QV_EEXIST;
    }
    int64_t sent = qv_clock_msec ();
    uint64_t renewal = self->renewal + 1;
    int rc = s_write (self, self->revision, atomic_load (&self->epoch), renewal, false);
    if (rc == 0) {
        self->renewal = renewal;
        atomic_store (&self->valid_from, sent);
    }
    else
    if (rc == QV_EEXIST) {
        bool found;
        s_value_t v;
        uint64_t rev;
        s_read (self, &found, &v, &rev);
        qv_error ("lease %s/%s was taken over by %s (epoch %llu): this process no "
                  "longer holds it", self->bucket, self->name,
                  found ? v.holder : "nobody (deleted)", (unsigned long long) v.epoch);
        atomic_store (&self->lost, true);
        atomic_store (&self->held, false);
    }
    pthread_mutex_unlock (&self->renew_mutex);
    return rc;
}

static void *
s_renewer (void *arg)
{
    qv_lease_t *self = arg;
    int64_t last_warn = 0;
    while (!s_sleep (self, self->ttl_ms / 3)) {
        int rc = s_renew (self);
        if (rc == QV_EEXIST)
            break;
        int64_t now = qv_clock_msec ();
        if (rc && now - last_warn >= 5000) {
            last_warn = now;
            qv_warn ("lease %s/%s: cannot renew: %s", self->bucket, self->name, qv_err_msg ());
        }
    }
    nats_ReleaseThreadMemory ();    //  nats.c's thread-local error state of this thread
    return NULL;
}

static void
s_stop_renewer (qv_lease_t *self)
{
    if (!self->running)
        return;
    pthread_mutex_lock (&self->mutex);
    self->stop = true;
    pthread_cond_signal (&self->cond);
    pthread_mutex_unlock (&self->mutex);
    pthread_join (self->thread, NULL);
    self->running = false;
}

int
qv_lease_acquire (qv_lease_t *self, int wait_ms)
{
    return qv_lease_acquire_until (self, wait_ms, 0, NULL, NULL);
}

int
qv_lease_acquire_until (qv_lease_t *self, int wait_ms, uint64_t min_epoch,
                        qv_lease_stop_fn *stop, void *arg)
{
    if (atomic_load (&self->held) && !atomic_load (&self->lost))
        return qv_err (QV_EINVAL, "lease %s/%s is already held by this process", self->bucket,
                       self->name);
    s_stop_renewer (self);
    atomic_store (&self->held, false);
    atomic_store (&self->lost, false);
    //  A fresh token per tenure
    uint32_t r [4];
    for (int i = 0; i < 4; i++)
        r [i] = (uint32_t) random () ^ (uint32_t) qv_clock_usec () ^ ((uint32_t) getpid () << i);
    snprintf (self->token, sizeof self->token, "%08x%08x%08x%08x", r [0], r [1], r [2], r [3]);

    int64_t started = qv_clock_msec ();
    uint64_t seen_rev = 0;          //  the revision we are watching
    int64_t seen_at = 0;            //  ... since when (our clock)
    bool said = false;
    while (true) {
        bool found;
        s_value_t v;
        uint64_t rev;
        int rc = s_read (self, &found, &v, &rev);
        int64_t now = qv_clock_msec ();
        if (rc == 0) {
            bool free = !found || v.released;
            if (!free && rev != seen_rev) {
                seen_rev = rev;     //  the holder is alive (or just seen): count anew
                seen_at = now;
                if (!said) {
                    char until [48] = "as long as it lives";
                    if (wait_ms < INT_MAX)
                        snprintf (until, sizeof until, "up to %d ms", wait_ms);
                    qv_info ("lease %s/%s is held by %s (epoch %llu); waiting %s for it "
                             "to end (taken over %d ms after its last renewal)",
                             self->bucket, self->name, v.holder,
                             (unsigned long long) v.epoch, until, self->ttl_ms);
                    said = true;
                }
            }
            if (free || now - seen_at >= self->ttl_ms) {
                uint64_t epoch = v.epoch + 1;
                if (epoch < min_epoch)
                    epoch = min_epoch;
                int64_t sent = now;
                rc = s_write (self, found ? rev : 0, epoch, 0, false);
                if (rc == 0) {
                    if (!free)
                        qv_warn ("took lease %s/%s over from %s: not renewed for %d ms",
                                 self->bucket, self->name, v.holder, self->ttl_ms);
                    self->renewal = 0;
                    atomic_store (&self->epoch, epoch);
                    atomic_store (&self->valid_from, sent);
                    atomic_store (&self->held, true);
                    self->stop = false;
                    if (pthread_create (&self->thread, NULL, s_renewer, self) != 0) {
                        atomic_store (&self->held, false);
                        return qv_err (QV_EIO, "lease %s/%s: cannot start the renewal thread",
                                       self->bucket, self->name);
                    }
                    self->running = true;
                    return 0;
                }
                //  Someone else moved first: watch the new value
            }
            if (now - started >= wait_ms)
                return qv_err (QV_EUNAVAIL, "lease %s/%s is held by %s (epoch %llu), which "
                               "keeps renewing it", self->bucket, self->name, v.holder,
                               (unsigned long long) v.epoch);
        }
        else
        if (now - started >= wait_ms)
            return rc;
        if (stop && stop (arg))
            return qv_err (QV_EUNAVAIL, "stopped while waiting for lease %s/%s",
                           self->bucket, self->name);
        zclock_sleep (self->ttl_ms / 8 > 0 ? self->ttl_ms / 8 : 1);
    }
}

bool
qv_lease_held (qv_lease_t *self)
{
    if (!atomic_load (&self->held) || atomic_load (&self->lost))
        return false;
    return qv_clock_msec () - atomic_load (&self->valid_from) < (int64_t) self->ttl_ms * 3 / 4;
}

int
qv_lease_confirm (qv_lease_t *self)
{
    if (atomic_load (&self->lost))
        return qv_err (QV_EUNAVAIL, "another process took the lease %s/%s over",
                       self->bucket, self->name);
    if (!atomic_load (&self->held))
        return qv_err (QV_EUNAVAIL, "the lease %s/%s is not held by this process",
                       self->bucket, self->name);
    if (qv_lease_held (self))
        return 0;
    //  Not renewed for 3/4 of the ttl (the process stalled, or NATS was away): renew
    //  now. The update is revision-checked, so it succeeds only if nobody took the
    //  key in the meantime, and a contender then counts a whole ttl from it.
    int rc = s_renew (self);
    if (rc == QV_EEXIST)
        return qv_err (QV_EUNAVAIL, "another process took the lease %s/%s over",
                       self->bucket, self->name);
    if (rc)
        return qv_err (QV_EIO, "the lease %s/%s could not be confirmed: %s", self->bucket,
                       self->name, qv_err_msg ());
    return 0;
}

void
qv_lease_describe (qv_lease_t *self, char *out, size_t outsize)
{
    snprintf (out, outsize, "%s/%s", self->bucket, self->name);
}

bool
qv_lease_lost (qv_lease_t *self)
{
    return atomic_load (&self->lost);
}

uint64_t
qv_lease_epoch (qv_lease_t *self)
{
    return atomic_load (&self->epoch);
}

int
qv_lease_release (qv_lease_t *self)
{
    s_stop_renewer (self);
    if (!atomic_load (&self->held) || atomic_load (&self->lost))
        return qv_err (QV_EINVAL, "lease %s/%s is not held by this process", self->bucket,
                       self->name);
    atomic_store (&self->held, false);
    int rc = s_write (self, self->revision, atomic_load (&self->epoch), self->renewal + 1, true);
    if (rc == QV_EEXIST)
        return qv_err (QV_EEXIST, "lease %s/%s changed hands before its release",
                       self->bucket, self->name);
    return rc;
}

void
qv_lease_destroy (qv_lease_t **self_p)
{
    qv_lease_t *self = *self_p;
    if (!self)
        return;
    if (atomic_load (&self->held) && !atomic_load (&self->lost))
        qv_lease_release (self);
    s_stop_renewer (self);
    if (self->kv)
        kvStore_Destroy (self->kv);
    if (self->js)
        jsCtx_Destroy (self->js);
    pthread_mutex_destroy (&self->mutex);
    pthread_cond_destroy (&self->cond);
    pthread_mutex_destroy (&self->renew_mutex);
    free (self);
    *self_p = NULL;
}
