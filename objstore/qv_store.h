//  Object store interface: atomic put, get, ranged get, list by prefix, delete.
//  Backends: the filesystem (qv_store_fs.c, the default) and S3 (qv_store_s3.c).
#ifndef QV_STORE_H_INCLUDED
#define QV_STORE_H_INCLUDED

#include <czmq.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "qv_cache.h"

typedef struct _qv_store_t qv_store_t;

//  Opens a store. url: a plain path or "file:///path" (filesystem backend; the
//  directory is created if missing), or "s3://HOST:PORT/BUCKET[/PREFIX][?OPTIONS]"
//  (S3 backend, credentials from QUIVER_S3_ACCESS_KEY / QUIVER_S3_SECRET_KEY, the
//  bucket is created if missing; options in qv_store_s3.c: https=1, connections=N,
//  retries=N, timeout_ms=N, list_max=N, lock_ms=N). Returns NULL on failure
//  (qv_err_msg () says why).
qv_store_t *
    qv_store_new (const char *url);

//  The same, read-only (a searcher process beside a writer): nothing is created or
//  cleaned up on open (filesystem: the directory must exist; S3: as qv_store_new, whose
//  open creates a missing bucket), and put, delete and lock return QV_EINVAL.
qv_store_t *
    qv_store_new_readonly (const char *url);

//  True for a store opened with qv_store_new_readonly.
bool
    qv_store_readonly (qv_store_t *self);

//  Closes the store; releases its lock. Nulls *self_p; safe twice.
void
    qv_store_destroy (qv_store_t **self_p);

//  Takes the store's exclusive writer lock (filesystem: flock on DIR/LOCK, released by
//  the kernel when the process dies, so a kill -9 never leaves a stale lock; S3: a
//  renewed lock object, taken over after three missed renewals, see qv_store_s3.c).
//  Returns 0, or QV_EUNAVAIL naming the holder if another process holds it.
int
    qv_store_lock (qv_store_t *self);

//  Confirms that this store still holds the writer lock qv_store_lock took (0), or
//  returns QV_EUNAVAIL if another server took it over (for good), or QV_EIO if it
//  could not be told now (the store failing; ask again later). Filesystem: a flock is
//  never lost while the process lives. S3: lost once another server's lock object is
//  read; a renewal older than two renewal periods (the process was paused) is
//  confirmed by reading and renewing the lock object now. A store never locked
//  returns 0.
int
    qv_store_lock_check (qv_store_t *self);

//  Hands the writer lock to an outside guard (a shard's lease in NATS, which replaces
//  the backend's lock then): guard (arg) returns 0 while this process may write,
//  QV_EUNAVAIL once it was deposed (for good), another error when it cannot be told
//  now, each with its message. From then on every put and delete asks it first and is
//  refused with its error, and qv_store_lock_check asks it (then the backend's lock, if
//  taken). Set it before the writers start; guard is called from any thread.
typedef int (qv_store_guard_fn) (void *arg);
void
    qv_store_set_guard (qv_store_t *self, qv_store_guard_fn *guard, void *arg);

//  Writes an object atomically and durably: on return 0 the whole object is on stable
//  storage under key, and a reader never sees a partial object (filesystem: temp file
//  + fsync + rename + directory fsync). Keys are '/'-separated relative paths of
//  [A-Za-z0-9._-] segments. Returns QV_EIO (disk full, I/O error) with a message.
int
    qv_store_put (qv_store_t *self, const char *key, const void *data, size_t size);

//  A buffer for an object of size bytes, freed with free(): one of 2 MiB or more is
//  aligned to 2 MiB and asked to be backed by transparent huge pages, so that filling
//  it (a read of a segment or an index object at a start) takes one page fault per
//  2 MiB instead of per 4 KiB, which on a VM was a third of a start's time. NULL if
//  out of memory.
void *
    qv_store_buffer_new (size_t size);

//  Reads a whole object into a malloc'd buffer (*data, *size; caller frees).
//  Returns QV_ENOTFOUND if the key does not exist, QV_EIO on error.
int
    qv_store_get (qv_store_t *self, const char *key, void **data, size_t *size);

//  Reads size bytes at offset (fewer at the end of the object) into a malloc'd buffer.
int
    qv_store_get_range (qv_store_t *self, const char *key, uint64_t offset, size_t size,
                        void **data, size_t *got);

//  Lists the keys starting with prefix, sorted bytewise, into a new zlist of strings
//  (autofree; caller destroys). Temp files of interrupted puts are never listed.
int
    qv_store_list (qv_store_t *self, const char *prefix, zlist_t **keys);

//  Deletes an object; deleting a missing key is not an error.
int
    qv_store_delete (qv_store_t *self, const char *key);

//  A human-readable location of key for messages ("/data/wal/0/00000042").
void
    qv_store_describe (qv_store_t *self, const char *key, char *out, size_t outsize);

//  The backend's name: "fs" or "s3".
const char *
    qv_store_backend_name (qv_store_t *self);

//  Requests sent to a remote store and how many of them were retries (0 for "fs").
void
    qv_store_counters (qv_store_t *self, uint64_t *requests, uint64_t *retried);

//  Keeps local copies of segment and index objects (keys under segments/) in dir,
//  at most max_bytes, least recently used evicted (qv_cache.c); 0 or a NULL dir turns
//  the cache off. Only remote backends (S3) use it: on "fs" it does nothing. A get
//  asks the store for the object's identity (HEAD) and serves the cached copy only if
//  it is of that identity and its checksum is right; a put keeps the bytes written.
//  Returns 0, or QV_EIO if dir cannot be used.
int
    qv_store_set_cache (qv_store_t *self, const char *dir, uint64_t max_bytes);

//  The cache's counters; false (all zero) if the store has no cache.
bool
    qv_store_cache_stats (qv_store_t *self, qv_cache_stats_t *stats);

//  Fault injection for tests: the next `count` calls of op ("put", "get", "delete")
//  fail with rc (QV_EIO). count 0 clears it.
void
    qv_store_inject_fault (qv_store_t *self, const char *op, int rc, int count);

//  Crash injection for tests: the next put of a key starting with prefix exits the
//  process at once (status 137), before the object is written. "" clears it.
void
    qv_store_inject_crash (qv_store_t *self, const char *prefix);

//  Stall injection for tests: prefixes is a ','-separated list (at most 4) of
//  PREFIX or PREFIX@N. The first put of a key starting with each prefix (after N such
//  puts went through, and after its write guard passed) waits until
//  every prefix was reached by some thread; then the process stops itself (SIGSTOP),
//  so that all those puts are under way while it is paused, as in a VM freeze; after
//  SIGCONT they complete. "" clears it.
void
    qv_store_inject_stall (qv_store_t *self, const char *prefixes);

#endif
