//  A lease with a fencing epoch, held in a JetStream key-value bucket: the single
//  writer of something (a shard's WAL) across processes and machines.
//
//  The key's value says who holds it, since which epoch, and how often it was renewed.
//  Every change is a revision-checked update, so of two processes that race for the key
//  exactly one wins. A holder renews every ttl/3; a contender that sees the revision
//  unchanged for a whole ttl (by its own clock) takes the key over with the epoch + 1.
//  A holder that could not renew within 3/4 of the ttl (by its own clock: it stalled,
//  or NATS was away) stops claiming the lease until a renewal succeeds again, and a
//  renewal that finds the key changed means the lease was taken over: lost for good.
//  The epoch is what fences: a writer stamps it into what it writes, and readers
//  ignore a lower epoch's writes that come after a higher epoch's. A release marks the
//  value released (it never deletes the key): deleting the key by hand would restart
//  the epochs at 1.
#ifndef QV_LEASE_H_INCLUDED
#define QV_LEASE_H_INCLUDED

#include <nats/nats.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct _qv_lease_t qv_lease_t;

//  A lease on key `name` ([A-Za-z0-9_.-]) in KV bucket `bucket` (created if missing,
//  file storage, one revision of history) of the connection nc, for `holder` (shown to
//  contenders and in logs, e.g. "host:pid segment-manager"), with ttl_ms (>= 100).
//  Not held until qv_lease_acquire. NULL with the reason in qv_err_msg ().
qv_lease_t *
    qv_lease_new (natsConnection *nc, const char *bucket, const char *name,
                  const char *holder, int ttl_ms);

//  Releases the lease if held (a successor takes it at once), stops renewing, frees.
void
    qv_lease_destroy (qv_lease_t **self_p);

//  Takes the lease, waiting up to wait_ms for a live holder to release it or to die.
//  0 when held (see qv_lease_epoch); QV_EUNAVAIL naming the holder when it stays alive,
//  or when NATS cannot be reached; QV_EINVAL when already held by this object.
int
    qv_lease_acquire (qv_lease_t *self, int wait_ms);

//  As qv_lease_acquire; the epoch taken is at least min_epoch (a store's own highest
//  epoch, so that the lease's and the store's agree), and while waiting stop (arg) is
//  asked every ttl/8: true gives up (QV_EUNAVAIL). stop may be NULL.
typedef bool (qv_lease_stop_fn) (void *arg);
int
    qv_lease_acquire_until (qv_lease_t *self, int wait_ms, uint64_t min_epoch,
                            qv_lease_stop_fn *stop, void *arg);

//  Confirms the lease before or after a fenced write, from any thread: 0 while held;
//  if the last renewal is older than 3/4 of the ttl (the process stalled), renews it
//  now (revision-checked) and returns 0 if that succeeds. QV_EUNAVAIL once another
//  process took it over (for good) or if it was never acquired; QV_EIO when NATS did
//  not answer (not known now: ask again later).
int
    qv_lease_confirm (qv_lease_t *self);

//  "bucket/key", for messages.
void
    qv_lease_describe (qv_lease_t *self, char *out, size_t outsize);

//  True while the lease is ours: acquired, renewed within 3/4 of the ttl, never taken
//  over. Check it before every write that must be fenced.
bool
    qv_lease_held (qv_lease_t *self);

//  True once another holder took the lease over (permanent for this object).
bool
    qv_lease_lost (qv_lease_t *self);

//  The epoch of our tenure (0 before the first acquire): 1 for the first holder ever,
//  one more for every holder after.
uint64_t
    qv_lease_epoch (qv_lease_t *self);

//  Hands the lease back (a successor takes it at once, with the next epoch). 0, or an
//  error if it was not held or the key had changed.
int
    qv_lease_release (qv_lease_t *self);

#endif
