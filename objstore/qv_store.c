//  Object store front: URL dispatch to a backend, key validation, fault injection.
//
//  DESIGN
//  qv_store_t holds a backend vtable (qv_store_backend.h) and its handle. The front
//  does everything that must behave the same on every backend: it validates keys and
//  prefixes (QV_EINVAL), sorts list results bytewise, and applies injected faults, so
//  a test that injects a fault exercises the same path whatever the backend. The only
//  mutable state shared between threads is the fault table, guarded by a mutex.
//
//  Keys: '/'-separated segments of [A-Za-z0-9._-], 1..QV_STORE_SEGMENT_MAX bytes each,
//  at most QV_STORE_KEY_MAX bytes in all. A segment may not start with '.' (this
//  rules out "." and "..", and keeps the filesystem backend's ".tmp-" temp files out
//  of the key space), and the key "LOCK" is reserved for the writer lock.
#include "qv_store.h"
#include "qv_store_backend.h"
#include "qv_cache.h"
#include "qv_rc.h"
#include "qv_hugemem.h"

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

//  Operations that faults can be injected into.
typedef enum {
    S_OP_PUT,
    S_OP_GET,                       //  qv_store_get and qv_store_get_range
    S_OP_DELETE,
    S_OP_LIST,
    S_OP_COUNT
} s_op_t;

static const char *s_op_names [S_OP_COUNT] = { "put", "get", "delete", "list" };

//  A put slower than this is logged: writes are acknowledged only once their WAL object
//  is durable, so a storage stall (a long fsync on a loaded disk) shows to clients as
//  requests with no reply, and the log is the only place that can say so.
#define S_SLOW_PUT_MS 1000
#define S_STALL_MAX 4

struct _qv_store_t {
    const qv_store_backend_t *backend;
    void *impl;                     //  the backend's handle
    pthread_mutex_t fault_mutex;    //  guards fault_rc and fault_count
    int fault_rc [S_OP_COUNT];      //  code an injected fault returns
    int fault_count [S_OP_COUNT];   //  how many more calls fail
    char crash_prefix [128];        //  put of a key with this prefix exits the process
    qv_cache_t *cache;              //  local copies of segment objects, or NULL
    //  Stall injection (qv_store_inject_stall), guarded by fault_mutex
    pthread_cond_t stall_cond;
    char stall [S_STALL_MAX][64];   //  prefixes whose put holds
    int stall_skip [S_STALL_MAX];   //  ... after this many such puts went through
    bool stall_reached [S_STALL_MAX];
    int nstall;
    bool stall_done;                //  the process was stopped and resumed
    qv_store_guard_fn *guard;       //  the writer lock held outside (a lease), or NULL
    void *guard_arg;
    bool readonly;                  //  qv_store_new_readonly: put, delete, lock refused
};

//  Objects the cache keeps: segments and their indexes, written once under their key
//  (WAL objects, manifests and the lock change or are read once).
#define S_CACHED_PREFIX "segments/"

static bool
s_cached (qv_store_t *self, const char *key)
{
    return self->cache && strncmp (key, S_CACHED_PREFIX, strlen (S_CACHED_PREFIX)) == 0;
}

static qv_store_t *
s_new (const char *url, bool readonly)
{
    if (!url || !*url) {
        qv_err (QV_EINVAL, "object store url is empty");
        return NULL;
    }
    const qv_store_backend_t *backend = NULL;
    const char *location = url;
    if (strncmp (url, "file://", 7) == 0) {
        location = url + 7;
        if (strncmp (location, "localhost/", 10) == 0)
            location += 9;
        if (*location != '/') {
            qv_err (QV_EINVAL, "object store url '%s': expected file:///absolute/path", url);
            return NULL;
        }
        backend = &qv_store_fs_backend;
    }
    else
    if (strncmp (url, "s3://", 5) == 0) {
        location = url + 5;
        backend = &qv_store_s3_backend;
    }
    else
    if (strstr (url, "://")) {
        qv_err (QV_EINVAL, "object store url '%s': unknown scheme (use a path, file:// or s3://)",
                url);
        return NULL;
    }
    else
        backend = &qv_store_fs_backend;

    void *impl = readonly && backend->open_readonly ? backend->open_readonly (location)
                                                    : backend->open (location);
    if (!impl)
        return NULL;                //  the backend recorded why
    qv_store_t *self = (qv_store_t *) calloc (1, sizeof (qv_store_t));
    if (!self) {
        backend->close (&impl);
        qv_err (QV_ENOMEM, "out of memory opening object store '%s'", url);
        return NULL;
    }
    self->backend = backend;
    self->impl = impl;
    self->readonly = readonly;
    pthread_mutex_init (&self->fault_mutex, NULL);
    pthread_cond_init (&self->stall_cond, NULL);
    return self;
}

qv_store_t *
qv_store_new (const char *url)
{
    return s_new (url, false);
}

qv_store_t *
qv_store_new_readonly (const char *url)
{
    return s_new (url, true);
}

bool
qv_store_readonly (qv_store_t *self)
{
    return self && self->readonly;
}

//  QV_EINVAL for a write (op) to a store opened read-only, naming key.
static int
s_check_writable (qv_store_t *self, const char *op, const char *key)
{
    if (!self->readonly)
        return 0;
    return qv_err (QV_EINVAL, "%s %s: the object store is open read-only (a searcher process "
                   "never writes to it; the writer role does)", op, key);
}

void
qv_store_destroy (qv_store_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    qv_store_t *self = *self_p;
    self->backend->close (&self->impl);
    qv_cache_destroy (&self->cache);
    pthread_mutex_destroy (&self->fault_mutex);
    pthread_cond_destroy (&self->stall_cond);
    free (self);
    *self_p = NULL;
}

//  Returns 0 if key is a valid object key (see DESIGN), else QV_EINVAL with a message.
//  A prefix may also be empty and may end with '/' or with part of a segment.
static int
s_check_key (const char *key, bool is_prefix)
{
    if (!key)
        return qv_err (QV_EINVAL, "object key is NULL");
    size_t len = strlen (key);
    if (len == 0 && !is_prefix)
        return qv_err (QV_EINVAL, "object key is empty");
    if (len > QV_STORE_KEY_MAX)
        return qv_err (QV_EINVAL, "object key '%.64s...' is longer than %d bytes",
                       key, QV_STORE_KEY_MAX);
    if (!is_prefix && strcmp (key, QV_STORE_LOCK_NAME) == 0)
        return qv_err (QV_EINVAL, "object key '%s' is reserved", key);
    size_t seg_len = 0;
    for (size_t i = 0; i < len; i++) {
        char c = key [i];
        if (c == '/') {
            if (seg_len == 0)
                return qv_err (QV_EINVAL, "object key '%s': empty segment or leading '/'",
                               key);
            seg_len = 0;
            continue;
        }
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
              || c == '.' || c == '_' || c == '-'))
            return qv_err (QV_EINVAL,
                           "object key '%s': character 0x%02x is not in [A-Za-z0-9._-/]",
                           key, (unsigned char) c);
        if (seg_len == 0 && c == '.')
            return qv_err (QV_EINVAL, "object key '%s': a segment may not start with '.'",
                           key);
        if (++seg_len > QV_STORE_SEGMENT_MAX)
            return qv_err (QV_EINVAL, "object key '%.64s...': a segment is longer than %d bytes",
                           key, QV_STORE_SEGMENT_MAX);
    }
    if (!is_prefix && seg_len == 0)
        return qv_err (QV_EINVAL, "object key '%s' ends with '/'", key);
    return 0;
}

//  If a fault is armed for op, consumes one and returns its code (recorded with a
//  message naming key); else returns 0.
static int
s_fault (qv_store_t *self, s_op_t op, const char *key)
{
    pthread_mutex_lock (&self->fault_mutex);
    int rc = 0;
    if (self->fault_count [op] > 0) {
        self->fault_count [op]--;
        rc = self->fault_rc [op];
    }
    pthread_mutex_unlock (&self->fault_mutex);
    if (rc) {
        char where [QV_STORE_KEY_MAX + 512];
        qv_store_describe (self, key, where, sizeof where);
        qv_err (rc, "%s %s: injected fault", s_op_names [op], where);
    }
    return rc;
}

int
qv_store_lock (qv_store_t *self)
{
    assert (self);
    if (self->readonly)
        return s_check_writable (self, "lock", QV_STORE_LOCK_NAME);
    return self->backend->lock (self->impl);
}

void
qv_store_set_guard (qv_store_t *self, qv_store_guard_fn *guard, void *arg)
{
    assert (self);
    self->guard = guard;
    self->guard_arg = arg;
}

//  The outside guard's verdict on a write of key (0 without a guard).
static int
s_guard (qv_store_t *self, const char *op, const char *key)
{
    if (!self->guard)
        return 0;
    int rc = self->guard (self->guard_arg);
    if (rc) {
        char where [QV_STORE_KEY_MAX + 512];
        qv_store_describe (self, key, where, sizeof where);
        rc = qv_err (rc, "%s %s refused: %s", op, where, qv_err_msg ());
    }
    return rc;
}

int
qv_store_lock_check (qv_store_t *self)
{
    assert (self);
    int rc = self->guard ? self->guard (self->guard_arg) : 0;
    if (rc == 0 && self->backend->lock_check)
        rc = self->backend->lock_check (self->impl);
    return rc;
}

void
qv_store_inject_stall (qv_store_t *self, const char *prefixes)
{
    pthread_mutex_lock (&self->fault_mutex);
    self->nstall = 0;
    self->stall_done = false;
    const char *p = prefixes;
    while (p && *p && self->nstall < S_STALL_MAX) {
        size_t n = strcspn (p, ",");
        if (n > 0 && n < sizeof self->stall [0]) {
            char *item = self->stall [self->nstall];
            memcpy (item, p, n);
            item [n] = 0;
            char *at = strchr (item, '@');
            self->stall_skip [self->nstall] = at ? atoi (at + 1) : 0;
            if (at)
                *at = 0;
            self->stall_reached [self->nstall++] = false;
        }
        p += n + (p [n] == ',');
    }
    pthread_mutex_unlock (&self->fault_mutex);
}

//  A put of key, its write guard passed: if key starts with a stall prefix not reached
//  yet, it is reached; the put waits until every prefix is, and the last one stops the
//  process (SIGSTOP, as a VM pause would), so that every such put is under way while
//  the process is paused, and goes on after SIGCONT.
static void
s_stall (qv_store_t *self, const char *key)
{
    pthread_mutex_lock (&self->fault_mutex);
    int hit = -1, left = 0;
    for (int i = 0; i < self->nstall; i++) {
        if (hit < 0 && !self->stall_reached [i]
        &&  strncmp (key, self->stall [i], strlen (self->stall [i])) == 0) {
            if (self->stall_skip [i] > 0)
                self->stall_skip [i]--;
            else {
                self->stall_reached [i] = true;
                hit = i;
            }
        }
        left += !self->stall_reached [i];
    }
    if (hit >= 0 && left > 0) {
        qv_warn ("fault injection: the put of %s waits for the others to stall", key);
        while (!self->stall_done)
            pthread_cond_wait (&self->stall_cond, &self->fault_mutex);
    }
    else
    if (hit >= 0) {
        qv_warn ("fault injection: stopping the process (SIGSTOP) with the put of %s "
                 "under way", key);
        raise (SIGSTOP);
        qv_warn ("fault injection: resumed; the stalled puts go on");
        self->stall_done = true;
        pthread_cond_broadcast (&self->stall_cond);
    }
    pthread_mutex_unlock (&self->fault_mutex);
}

int
qv_store_put (qv_store_t *self, const char *key, const void *data, size_t size)
{
    assert (self);
    int rc = s_check_key (key, false);
    if (rc)
        return rc;
    if (!data && size > 0)
        return qv_err (QV_EINVAL, "put %s: data is NULL", key);
    rc = s_check_writable (self, "put", key);
    if (rc)
        return rc;
    rc = s_fault (self, S_OP_PUT, key);
    if (rc == 0)
        rc = s_guard (self, "put", key);
    if (rc)
        return rc;
    if (self->crash_prefix [0]
    &&  strncmp (key, self->crash_prefix, strlen (self->crash_prefix)) == 0) {
        qv_warn ("fault injection: exiting before writing %s (as kill -9 would)", key);
        _exit (137);
    }
    if (self->nstall)
        s_stall (self, key);
    int64_t started = qv_clock_msec ();
    if (s_cached (self, key)) {
        //  Write-through: the flusher's own segments are warm in the cache
        char ident [QV_STORE_IDENT_MAX];
        qv_cache_drop (self->cache, key);
        rc = self->backend->put_ident (self->impl, key, data, size, ident, sizeof ident);
        if (rc == 0 && ident [0])
            qv_cache_put (self->cache, key, ident, data, size);
    }
    else
        rc = self->backend->put (self->impl, key, data, size);
    int64_t msec = qv_clock_msec () - started;
    if (msec >= S_SLOW_PUT_MS)
        qv_warn ("storing %s (%zu bytes) took %lld ms%s", key, size, (long long) msec,
                 rc ? " and failed" : "");
    return rc;
}

void *
qv_store_buffer_new (size_t size)
{
    return qv_hugemem_alloc (size);
}

int
qv_store_get (qv_store_t *self, const char *key, void **data, size_t *size)
{
    assert (self);
    assert (data && size);
    *data = NULL;
    *size = 0;
    int rc = s_check_key (key, false);
    if (rc)
        return rc;
    rc = s_fault (self, S_OP_GET, key);
    if (rc)
        return rc;
    if (!s_cached (self, key))
        return self->backend->get (self->impl, key, data, size);
    //  A cached copy is served only if it is of the object the bucket holds now (a
    //  segment id can be written again after a crash): ask for its identity first
    char ident [QV_STORE_IDENT_MAX];
    rc = self->backend->head (self->impl, key, ident, sizeof ident);
    if (rc)
        return rc;
    if (qv_cache_get (self->cache, key, ident, data, size) == 0)
        return 0;
    rc = self->backend->get_ident (self->impl, key, data, size, ident, sizeof ident);
    if (rc)
        return rc;
    qv_cache_count_download (self->cache, *size);
    qv_cache_put (self->cache, key, ident, *data, *size);
    return 0;
}

int
qv_store_get_range (qv_store_t *self, const char *key, uint64_t offset, size_t size,
                    void **data, size_t *got)
{
    assert (self);
    assert (data && got);
    *data = NULL;
    *got = 0;
    int rc = s_check_key (key, false);
    if (rc)
        return rc;
    rc = s_fault (self, S_OP_GET, key);
    if (rc)
        return rc;
    return self->backend->get_range (self->impl, key, offset, size, data, got);
}

static int
s_compare_keys (void *item1, void *item2)
{
    return strcmp ((const char *) item1, (const char *) item2);
}

int
qv_store_list (qv_store_t *self, const char *prefix, zlist_t **keys)
{
    assert (self);
    assert (keys);
    *keys = NULL;
    if (!prefix)
        prefix = "";
    int rc = s_check_key (prefix, true);
    if (rc)
        return rc;
    rc = s_fault (self, S_OP_LIST, prefix);
    if (rc)
        return rc;
    zlist_t *list = zlist_new ();
    if (!list)
        return qv_err (QV_ENOMEM, "out of memory listing '%s'", prefix);
    zlist_autofree (list);
    rc = self->backend->list (self->impl, prefix, list);
    if (rc) {
        zlist_destroy (&list);
        return rc;
    }
    zlist_sort (list, s_compare_keys);     //  strcmp orders bytewise
    *keys = list;
    return 0;
}

int
qv_store_delete (qv_store_t *self, const char *key)
{
    assert (self);
    int rc = s_check_key (key, false);
    if (rc)
        return rc;
    rc = s_check_writable (self, "delete", key);
    if (rc)
        return rc;
    rc = s_fault (self, S_OP_DELETE, key);
    if (rc == 0)
        rc = s_guard (self, "delete", key);
    if (rc)
        return rc;
    if (s_cached (self, key))
        qv_cache_drop (self->cache, key);
    return self->backend->delete (self->impl, key);
}

void
qv_store_describe (qv_store_t *self, const char *key, char *out, size_t outsize)
{
    assert (self);
    if (!out || outsize == 0)
        return;
    self->backend->describe (self->impl, key ? key : "", out, outsize);
}

const char *
qv_store_backend_name (qv_store_t *self)
{
    assert (self);
    return self->backend->name;
}

void
qv_store_counters (qv_store_t *self, uint64_t *requests, uint64_t *retried)
{
    assert (self);
    *requests = *retried = 0;
    if (self->backend->counters)
        self->backend->counters (self->impl, requests, retried);
}

void
qv_store_inject_crash (qv_store_t *self, const char *prefix)
{
    assert (self);
    snprintf (self->crash_prefix, sizeof self->crash_prefix, "%s", prefix ? prefix : "");
}

void
qv_store_inject_fault (qv_store_t *self, const char *op, int rc, int count)
{
    assert (self);
    for (int i = 0; i < S_OP_COUNT; i++) {
        if (op && strcmp (op, s_op_names [i]) == 0) {
            pthread_mutex_lock (&self->fault_mutex);
            self->fault_rc [i] = rc ? rc : QV_EIO;
            self->fault_count [i] = count > 0 ? count : 0;
            pthread_mutex_unlock (&self->fault_mutex);
            return;
        }
    }
    qv_warn ("qv_store_inject_fault: unknown operation '%s' (use put, get, delete, list)",
             op ? op : "(null)");
}

int
qv_store_set_cache (qv_store_t *self, const char *dir, uint64_t max_bytes)
{
    assert (self);
    qv_cache_destroy (&self->cache);
    if (!dir || max_bytes == 0)
        return 0;
    if (!self->backend->head || !self->backend->put_ident || !self->backend->get_ident)
        return 0;                   //  a local backend needs no cache
    self->cache = qv_cache_new (dir, max_bytes);
    return self->cache ? 0 : QV_EIO;
}

bool
qv_store_cache_stats (qv_store_t *self, qv_cache_stats_t *stats)
{
    assert (self);
    memset (stats, 0, sizeof *stats);
    if (!self->cache)
        return false;
    qv_cache_stats (self->cache, stats);
    return true;
}
