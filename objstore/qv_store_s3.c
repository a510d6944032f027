//  S3 object store backend (MinIO, AWS S3, s3rver) on libs3 2.0.
//
//  DESIGN
//  Location (what follows "s3://"): HOST:PORT/BUCKET[/PREFIX][?OPTION=VALUE&...], with
//  options https (0/1), connections (concurrent requests, default 8), retries (default
//  6), timeout_ms (deadline of one attempt, default 15000, plus 1 s per MiB moved),
//  list_max (keys per list page, default 1000) and lock_ms (lock renewal period,
//  default 3000). Credentials come only from the environment (QUIVER_S3_ACCESS_KEY,
//  QUIVER_S3_SECRET_KEY) and are never logged. Object "a/b" is PREFIX/a/b in BUCKET.
//
//  libs3 2.0 signs with AWS signature V2, so requests go path-style to an explicit
//  HOST:PORT over plain HTTP unless https=1. Over HTTPS, libs3 2.0 (Debian's 2.0-4)
//  sets curl's CURLOPT_SSL_VERIFYPEER to 0 on every handle and offers no way to change
//  it: the server's certificate chain is not checked (any CA, a self-signed one too),
//  only that the certificate names HOST (curl's host check stays on): the traffic is
//  encrypted, but an active interceptor presenting a certificate of its own for HOST
//  is not detected. Open logs a warning saying so.
//  Every request runs in a libs3 request context that the calling thread drives itself (select on the context's sockets),
//  which gives each attempt a deadline: past it, the context is destroyed, which aborts
//  the transfer. The handle keeps a pool of `connections` contexts; a caller waits for
//  a free one, so at most that many requests are in flight and every thread that uses
//  the store (WAL group commit, flusher, searchers) runs its own request at once.
//
//  Retries: connection errors, timeouts, aborted transfers, 5xx (InternalError,
//  SlowDown, an unparsed HTTP error, an unknown S3 error code) are retried `retries`
//  times with exponential backoff (100 ms doubling, capped at 5 s) and full jitter;
//  4xx answers (NoSuchKey, AccessDenied, NoSuchBucket, InvalidRange, ...) are not.
//  After the last attempt the call fails with QV_EUNAVAIL naming the object, so a
//  write is never acknowledged when the store did not take it.
//
//  Memory: put streams straight from the caller's buffer (libs3 copies into curl's
//  send buffer piece by piece); get allocates one buffer of the Content-Length on the
//  first byte and fills it, so an object is never held twice.
//
//  Atomicity: an S3 PUT is atomic (a reader sees the old object, the new one or none,
//  never a part), so put needs no temp object and rename. Durability is the store's.
//  Not every S3 server keeps that promise: s3rver writes the object file in place as
//  the body arrives (libs3 sends "Expect: 100-continue", so a writer killed between
//  headers and body leaves an empty object) and writes its metadata last. Every put
//  therefore sends x-amz-meta-qv-size, and get reports an object without it as
//  QV_ENOTFOUND ("incomplete"): on a real S3 it cannot happen, on s3rver it means an
//  upload that was never acknowledged. list still shows such a key; the WAL and the
//  manifest reader treat a missing newest object as the interrupted write it is.
//
//  Writer lock: see the LOCK section below.
#include "qv_store.h"
#include "qv_store_backend.h"

#include <libs3.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/select.h>
#include <time.h>
#include <unistd.h>

#define S_BACKOFF_BASE_MS  100
#define S_BACKOFF_MAX_MS   5000
#define S_LOCK_MISSED      3        //  renewals a dead holder misses before a takeover
#define S_META_SIZE        "qv-size"    //  x-amz-meta-qv-size: the object's length

typedef struct {
    char host [256];                //  HOST:PORT
    char bucket [256];
    char prefix [512];              //  "" or "PREFIX/"
    char access [256];              //  credentials: never logged
    char secret [256];
    S3BucketContext bucket_ctx;
    int connections;
    int retries;
    int timeout_ms;
    int list_max;
    int lock_ms;
    //  Pool of request contexts
    pthread_mutex_t pool_mutex;
    pthread_cond_t pool_cond;
    S3RequestContext **pool;
    int pool_free;
    //  Counters (for stats and tests)
    atomic_uint_fast64_t requests;
    atomic_uint_fast64_t retried;
    //  Writer lock
    pthread_mutex_t lock_mutex;
    pthread_cond_t lock_cond;
    pthread_t lock_thread;
    bool lock_held;                 //  the renewal thread runs
    bool lock_stop;
    atomic_bool lock_lost;          //  another server took the lock over: refuse writes
    atomic_bool lock_settling;      //  written, not yet read back: the first write waits
    int64_t settle_ms;              //  ... until then (renew_mutex), and reads it back
    char holder [128];              //  "host:pid" of this process
    char token [40];                //  random; tells our lock object from another's
    atomic_uint_fast64_t renewals;
    atomic_int_fast64_t renewed_ms; //  when the last renewal that found our lock began
    pthread_mutex_t renew_mutex;    //  one read + rewrite of the lock at a time (the
                                    //  renewer's and the fencing check's)
} s_s3_t;

//  One request's state, shared with libs3's callbacks.
typedef struct {
    S3Status status;
    bool done;
    char error [256];               //  S3's error message, if any
    //  put
    const char *put_data;
    size_t put_size;
    size_t put_pos;
    //  get
    uint64_t content_length;        //  from the response headers, 0 if unknown
    int64_t meta_size;              //  x-amz-meta-qv-size, -1 if absent
    char etag [128];                //  the object's ETag, "" if not answered
    size_t get_cap;                 //  most bytes wanted (ranged get), SIZE_MAX if all
    char *buf;
    size_t buf_size;
    size_t buf_len;
    bool oom;
    //  list
    zlist_t *page;                  //  keys of this page (full keys, with the prefix)
    bool truncated;
    char marker [QV_STORE_KEY_MAX + 600];
} s_req_t;

static pthread_once_t s_init_once = PTHREAD_ONCE_INIT;
static S3Status s_init_status = S3StatusOK;

static void
s_deinit (void)
{
    S3_deinitialize ();
}

static void
s_init (void)
{
    s_init_status = S3_initialize ("quiver", S3_INIT_ALL, NULL);
    if (s_init_status == S3StatusOK)
        atexit (s_deinit);
}

// ---------------------------------------------------------------- callbacks

static S3Status
s_on_properties (const S3ResponseProperties *props, void *arg)
{
    s_req_t *req = arg;
    req->content_length = props->contentLength;
    req->meta_size = -1;
    snprintf (req->etag, sizeof req->etag, "%s", props->eTag ? props->eTag : "");
    for (int i = 0; i < props->metaDataCount; i++)
        if (strcasecmp (props->metaData [i].name, S_META_SIZE) == 0)
            req->meta_size = strtoll (props->metaData [i].value, NULL, 10);
    return S3StatusOK;
}

static void
s_on_complete (S3Status status, const S3ErrorDetails *error, void *arg)
{
    s_req_t *req = arg;
    req->status = status;
    req->done = true;
    if (error && error->message)
        snprintf (req->error, sizeof req->error, "%s", error->message);
}

static int
s_on_put_data (int size, char *buffer, void *arg)
{
    s_req_t *req = arg;
    size_t left = req->put_size - req->put_pos;
    size_t n = left < (size_t) size ? left : (size_t) size;
    memcpy (buffer, req->put_data + req->put_pos, n);
    req->put_pos += n;
    return (int) n;
}

static S3Status
s_on_get_data (int size, const char *data, void *arg)
{
    s_req_t *req = arg;
    //  More than asked for (libs3 2.0 sends no Range header for bytes 0..0, so the
    //  server sends the whole object): keep the bytes wanted, drop the rest
    if (req->buf_len + (size_t) size > req->get_cap)
        size = (int) (req->get_cap - req->buf_len);
    if (size == 0)
        return S3StatusOK;
    size_t need = req->buf_len + (size_t) size;
    if (need > req->buf_size) {
        //  First byte: one buffer of the announced length; grow only if the server
        //  sent no length or more than it announced
        size_t want = req->buf_size ? req->buf_size * 2 : 0;
        if (req->content_length && req->content_length <= req->get_cap
        &&  req->content_length > want)
            want = (size_t) req->content_length;
        if (want < need)
            want = need;
        if (want > req->get_cap)
            want = req->get_cap;
        //  The first buffer, of the announced length: huge pages for a large one
        char *buf = req->buf || want != (size_t) req->content_length
                  ? realloc (req->buf, want ? want : 1) : qv_store_buffer_new (want);
        if (!buf) {
            req->oom = true;
            return S3StatusAbortedByCallback;
        }
        req->buf = buf;
        req->buf_size = want;
    }
    memcpy (req->buf + req->buf_len, data, (size_t) size);
    req->buf_len = need;
    return S3StatusOK;
}

static S3Status
s_on_list (int truncated, const char *next_marker, int count,
           const S3ListBucketContent *contents, int prefixes_count,
           const char **prefixes, void *arg)
{
    (void) prefixes_count; (void) prefixes;
    s_req_t *req = arg;
    req->truncated = truncated != 0;
    for (int i = 0; i < count; i++) {
        if (zlist_append (req->page, (void *) contents [i].key) != 0) {
            req->oom = true;
            return S3StatusAbortedByCallback;
        }
        snprintf (req->marker, sizeof req->marker, "%s", contents [i].key);
    }
    if (next_marker && *next_marker)
        snprintf (req->marker, sizeof req->marker, "%s", next_marker);
    return S3StatusOK;
}

static const S3ResponseHandler s_response_handler = { s_on_properties, s_on_complete };
static const S3PutObjectHandler s_put_handler = {
    { s_on_properties, s_on_complete }, s_on_put_data };
static const S3GetObjectHandler s_get_handler = {
    { s_on_properties, s_on_complete }, s_on_get_data };
static const S3ListBucketHandler s_list_handler = {
    { s_on_properties, s_on_complete }, s_on_list };

// ---------------------------------------------------------------- requests

typedef enum { S_PUT, S_GET, S_HEAD, S_LIST, S_DELETE, S_TEST_BUCKET, S_CREATE_BUCKET } s_kind_t;

typedef struct {
    s_kind_t kind;
    const char *key;                //  full key (with the prefix)
    uint64_t offset;                //  S_GET: first byte
    uint64_t count;                 //  S_GET: bytes, 0 = to the end
    const char *marker;             //  S_LIST
    const char *list_prefix;        //  S_LIST
    size_t bytes;                   //  bytes moved, for the deadline
} s_op_t;

//  Takes a request context from the pool, waiting for one.
static S3RequestContext *
s_ctx_take (s_s3_t *self)
{
    pthread_mutex_lock (&self->pool_mutex);
    while (self->pool_free == 0)
        pthread_cond_wait (&self->pool_cond, &self->pool_mutex);
    S3RequestContext *ctx = self->pool [--self->pool_free];
    pthread_mutex_unlock (&self->pool_mutex);
    return ctx;
}

//  Returns a context to the pool; NULL (destroyed after a deadline) is replaced.
static void
s_ctx_give (s_s3_t *self, S3RequestContext *ctx)
{
    if (!ctx && S3_create_request_context (&ctx) != S3StatusOK)
        ctx = NULL;
    pthread_mutex_lock (&self->pool_mutex);
    if (ctx)
        self->pool [self->pool_free++] = ctx;
    else
        qv_warn ("S3 %s: cannot create a request context; %d left",
                 self->host, self->pool_free);
    pthread_cond_signal (&self->pool_cond);
    pthread_mutex_unlock (&self->pool_mutex);
}

//  One attempt of op: starts it in a pooled context and drives the context until the
//  request completes or the deadline passes (then aborts it: S3StatusInterrupted).
static void
s_attempt (s_s3_t *self, const s_op_t *op, s_req_t *req)
{
    S3RequestContext *ctx = s_ctx_take (self);
    if (!ctx) {
        req->status = S3StatusOutOfMemory;
        return;
    }
    atomic_fetch_add (&self->requests, 1);
    req->done = false;
    req->status = S3StatusInternalError;
    req->error [0] = 0;
    const S3BucketContext *b = &self->bucket_ctx;
    //  Everything libs3 may touch until the request completes lives as long as this
    //  call (test_bucket writes the location at completion)
    char location [128] = "";
    char size [32] = "";
    S3NameValue meta = { S_META_SIZE, size };
    S3PutProperties props = { .expires = -1, .cannedAcl = S3CannedAclPrivate,
                              .metaDataCount = 1, .metaData = &meta };
    switch (op->kind) {
        case S_PUT:
            snprintf (size, sizeof size, "%zu", op->bytes);
            S3_put_object (b, op->key, op->bytes, &props, ctx, &s_put_handler, req);
            break;
        case S_GET:
            S3_get_object (b, op->key, NULL, op->offset, op->count, ctx, &s_get_handler, req);
            break;
        case S_HEAD:
            S3_head_object (b, op->key, ctx, &s_response_handler, req);
            break;
        case S_LIST:
            S3_list_bucket (b, op->list_prefix, op->marker, NULL, self->list_max, ctx,
                            &s_list_handler, req);
            break;
        case S_DELETE:
            S3_delete_object (b, op->key, ctx, &s_response_handler, req);
            break;
        case S_TEST_BUCKET:
            S3_test_bucket (b->protocol, b->uriStyle, b->accessKeyId, b->secretAccessKey,
                            b->hostName, b->bucketName, sizeof location, location, ctx,
                            &s_response_handler, req);
            break;
        case S_CREATE_BUCKET:
            S3_create_bucket (b->protocol, b->accessKeyId, b->secretAccessKey, b->hostName,
                              b->bucketName, S3CannedAclPrivate, NULL, ctx,
                              &s_response_handler, req);
            break;
    }
    int64_t deadline = qv_clock_msec () + self->timeout_ms + (int64_t) (op->bytes >> 20) * 1000;
    while (!req->done) {
        int remaining = 0;
        S3Status st = S3_runonce_request_context (ctx, &remaining);
        if (req->done)
            break;
        if (st != S3StatusOK || remaining == 0) {
            //  libs3 lost the request without completing it
            S3_destroy_request_context (ctx);
            ctx = NULL;
            if (!req->done)
                req->status = st != S3StatusOK ? st : S3StatusConnectionFailed;
            req->done = true;
            break;
        }
        int64_t now = qv_clock_msec ();
        if (now >= deadline) {
            S3_destroy_request_context (ctx);   //  aborts the transfer
            ctx = NULL;
            req->status = S3StatusInterrupted;
            snprintf (req->error, sizeof req->error, "no answer within the deadline of %d ms",
                      self->timeout_ms + (int) (op->bytes >> 20) * 1000);
            req->done = true;
            break;
        }
        fd_set rfds, wfds, efds;
        FD_ZERO (&rfds);
        FD_ZERO (&wfds);
        FD_ZERO (&efds);
        int maxfd = -1;
        S3_get_request_context_fdsets (ctx, &rfds, &wfds, &efds, &maxfd);
        int64_t wait = S3_get_request_context_timeout (ctx);
        if (wait < 0 || wait > 100)
            wait = 100;
        if (wait > deadline - now)
            wait = deadline - now;
        if (maxfd < 0) {
            if (wait > 10)
                wait = 10;          //  curl is resolving or between steps
            usleep ((useconds_t) wait * 1000);
        }
        else {
            struct timeval tv = { (time_t) (wait / 1000), (suseconds_t) (wait % 1000) * 1000 };
            select (maxfd + 1, &rfds, &wfds, &efds, &tv);
        }
    }
    s_ctx_give (self, ctx);
}

//  True for failures another attempt may cure: no connection, timeouts, 5xx.
static bool
s_retryable (S3Status st)
{
    return S3_status_is_retryable (st)
        || st == S3StatusInterrupted
        || st == S3StatusErrorSlowDown
        || st == S3StatusErrorInternalError
        || st == S3StatusErrorRequestTimeout
        || st == S3StatusErrorIncompleteBody
        || st == S3StatusHttpErrorUnknown       //  an HTTP error without an S3 body (502, 503)
        || st == S3StatusErrorUnknown;          //  an error code libs3 2.0 does not know
}

//  Sleeps the backoff before retry number `attempt` (1, 2, ...): full jitter over
//  [d/2, d], d = 100 ms * 2^(attempt-1), capped at 5 s.
static void
s_backoff (int attempt)
{
    int64_t d = S_BACKOFF_BASE_MS << (attempt - 1 < 16 ? attempt - 1 : 16);
    if (d > S_BACKOFF_MAX_MS)
        d = S_BACKOFF_MAX_MS;
    uint32_t r = 0;
    if (getrandom (&r, sizeof r, GRND_NONBLOCK) != sizeof r)
        r = (uint32_t) qv_clock_usec ();
    int64_t ms = d / 2 + (int64_t) (r % (uint32_t) (d / 2 + 1));
    usleep ((useconds_t) ms * 1000);
}

//  Resets the per-attempt results of req before a retry.
static void
s_req_reset (s_req_t *req)
{
    req->put_pos = 0;
    req->content_length = 0;
    req->buf_len = 0;
    req->oom = false;
    req->truncated = false;
    if (req->page)
        while (zlist_size (req->page))
            free (zlist_pop (req->page));
}

//  Runs op with retries. Returns 0, or a negative code recorded with a message
//  naming what: QV_ENOTFOUND, QV_EUNAVAIL (retries spent), QV_EIO (a 4xx answer).
static int
s_run (s_s3_t *self, const s_op_t *op, s_req_t *req, const char *what)
{
    for (int attempt = 0; ; attempt++) {
        if (attempt > 0) {
            atomic_fetch_add (&self->retried, 1);
            s_backoff (attempt);
            s_req_reset (req);
        }
        s_attempt (self, op, req);
        S3Status st = req->status;
        if (st == S3StatusOK && !req->oom)
            return 0;
        if (req->oom)
            return qv_err (QV_ENOMEM, "%s: out of memory", what);
        if (st == S3StatusErrorNoSuchKey || st == S3StatusHttpErrorNotFound)
            return qv_err (QV_ENOTFOUND, "%s does not exist", what);
        if (st == S3StatusErrorNoSuchBucket)
            return qv_err (QV_EIO, "%s: bucket '%s' does not exist on %s", what,
                           self->bucket, self->host);
        if (st == S3StatusServerFailedVerification)
            //  libs3 2.0 leaves curl's host name check on (and its chain check off)
            return qv_err (QV_EIO, "%s: TLS certificate of %s refused: it does not name that "
                           "host (%s)", what, self->host, S3_get_status_name (st));
        if (!s_retryable (st))
            return qv_err (QV_EIO, "%s: %s%s%s", what, S3_get_status_name (st),
                           req->error [0] ? ": " : "", req->error);
        if (attempt >= self->retries)
            return qv_err (QV_EUNAVAIL, "%s: object store %s unavailable after %d attempts "
                           "(%s%s%s)", what, self->host, attempt + 1,
                           S3_get_status_name (st), req->error [0] ? ": " : "", req->error);
    }
}

// ---------------------------------------------------------------- operations

//  PREFIX/key into out. Fits: keys are at most QV_STORE_KEY_MAX.
static void
s_full_key (s_s3_t *self, const char *key, char *out, size_t outsize)
{
    snprintf (out, outsize, "%s%s", self->prefix, key);
}

static void
s_describe (void *impl, const char *key, char *out, size_t outsize)
{
    s_s3_t *self = impl;
    snprintf (out, outsize, "s3://%s/%s%s", self->bucket, self->prefix, key);
}

//  The identity of an object for the cache: its ETag and length. S3 gives a
//  single-part object an ETag computed from its content (MD5 on S3, MinIO and s3rver;
//  a unique value with SSE-KMS), so a rewrite under the same key with other bytes has
//  another identity, and one with the same bytes may keep its cached copy.
static int
s_ident (const s_req_t *req, uint64_t size, char *ident, size_t identsize, const char *what)
{
    if (!req->etag [0])
        return qv_err (QV_EIO, "%s: the object store answered no ETag", what);
    snprintf (ident, identsize, "etag=%s;size=%llu", req->etag, (unsigned long long) size);
    return 0;
}

static int
s_put_raw (s_s3_t *self, const char *key, const void *data, size_t size)
{
    char full [QV_STORE_KEY_MAX + 600];
    char what [2048];
    s_full_key (self, key, full, sizeof full);
    snprintf (what, sizeof what, "put s3://%s/%s (%zu bytes)", self->bucket, full, size);
    s_op_t op = { .kind = S_PUT, .key = full, .bytes = size };
    s_req_t req = { .put_data = data, .put_size = size };
    return s_run (self, &op, &req, what);
}

static int s_head (void *impl, const char *key, char *ident, size_t identsize);
static int s_lock_read (s_s3_t *self, char *out, size_t outsize);
static bool s_lock_ours (s_s3_t *self, const char *text);
static void s_lock_holder (const char *text, char *out, size_t outsize);
static bool s_lock_torn (const char *text);
static int s_lock_write (s_s3_t *self);

//  Before a write: if the lock was taken but not yet read back (s_lock), waits out
//  the rest of the pause and reads it. Another starter's token there means it wrote
//  last: this server refuses every write (QV_EUNAVAIL, naming it), as at a takeover.
static int
s_lock_settled (s_s3_t *self)
{
    if (!atomic_load (&self->lock_settling))
        return 0;
    pthread_mutex_lock (&self->renew_mutex);
    int rc = 0;
    if (atomic_load (&self->lock_settling)) {
        int64_t wait = self->settle_ms - qv_clock_msec ();
        if (wait > 0)
            usleep ((useconds_t) wait * 1000);
        char back [512];
        rc = s_lock_read (self, back, sizeof back);
        //  Torn: another starter's write broken off (or under way) after ours; ours
        //  again, and read back once more after the pause, a few times
        for (int again = 0; rc == 0 && s_lock_torn (back) && again < 3; again++) {
            if ((rc = s_lock_write (self)) == 0) {
                usleep ((useconds_t) (self->lock_ms / 3 > 0 ? self->lock_ms / 3 : 1) * 1000);
                rc = s_lock_read (self, back, sizeof back);
            }
        }
        if (rc == 0 && !s_lock_ours (self, back)) {
            char holder [128];
            s_lock_holder (back, holder, sizeof holder);
            atomic_store (&self->lock_lost, true);
            rc = qv_err (QV_EUNAVAIL, "s3://%s/%s is locked by %s, which wrote the lock after "
                         "this server took it (both started at the same time, or it was "
                         "paused and renewed it): this server does not write", self->bucket, self->prefix,
                         back [0] ? holder : "(released)");
            qv_error ("%s", qv_err_msg ());
        }
        if (rc == 0)
            atomic_store (&self->lock_settling, false);
    }
    pthread_mutex_unlock (&self->renew_mutex);
    return rc;
}

//  0 if this server may write key now (op: "put", "delete"): its lock read back as
//  its own (s_lock_settled) and not taken over since; else QV_EUNAVAIL saying why.
static int
s_may_write (s_s3_t *self, const char *op, const char *key)
{
    int rc = s_lock_settled (self);
    if (rc == 0 && atomic_load (&self->lock_lost))
        rc = qv_err (QV_EUNAVAIL, "%s %s: this server lost the lock on s3://%s/%s to "
                     "another server; it no longer writes", op, key, self->bucket, self->prefix);
    return rc;
}

static int
s_put_ident (void *impl, const char *key, const void *data, size_t size, char *ident,
             size_t identsize)
{
    s_s3_t *self = impl;
    int rc = s_may_write (self, "put", key);
    if (rc)
        return rc;
    rc = s_put_raw (self, key, data, size);
    //  libs3 2.0 reports no response headers for a PUT (its properties callback
    //  fires on the interim 100 Continue, without them), so the identity of the
    //  object written is asked for: one HEAD, small beside the upload
    //  (the object is written either way: without an identity it is not cached)
    if (rc == 0 && ident && s_head (impl, key, ident, identsize)) {
        qv_warn ("%s; it is not kept in the cache", qv_err_msg ());
        qv_err_clear ();
        ident [0] = 0;
    }
    return rc;
}

static int
s_put (void *impl, const char *key, const void *data, size_t size)
{
    return s_put_ident (impl, key, data, size, NULL, 0);
}

//  Gets count bytes at offset (count 0: to the end; cap: most bytes accepted).
//  A whole object that stays shorter or longer than its recorded length is QV_EIO,
//  and *torn_p (if given) is set: an upload broken off on a server whose PUT is not
//  atomic (s3rver writes the body in place, the metadata last, and keeps the part
//  written under the old metadata) or one still under way.
static int
s_get_some_torn (s_s3_t *self, const char *key, uint64_t offset, uint64_t count, size_t cap,
                 void **data, size_t *got, char *ident, size_t identsize, bool *torn_p)
{
    char full [QV_STORE_KEY_MAX + 600];
    char what [2048];
    s_full_key (self, key, full, sizeof full);
    snprintf (what, sizeof what, "get s3://%s/%s", self->bucket, full);
    s_op_t op = { .kind = S_GET, .key = full, .offset = offset, .count = count,
                  .bytes = count };
    s_req_t req = { .get_cap = cap };
    int rc = s_run (self, &op, &req, what);
    //  A whole object shorter or longer than its recorded length is being written
    //  again in place (s3rver, a put retried after a timeout while the first copy is
    //  still being read): read it again once the rewrite is done, a few times
    for (int again = 0; rc == 0 && req.status == S3StatusOK && offset == 0 && count == 0
         && req.meta_size >= 0 && (uint64_t) req.meta_size != req.buf_len; again++) {
        if (again == 5) {
            free (req.buf);
            if (torn_p)
                *torn_p = true;
            return qv_err (QV_EIO, "%s: %zu bytes read, the object's recorded length is %lld "
                           "(it is being written again); retry", what, req.buf_len,
                           (long long) req.meta_size);
        }
        free (req.buf);
        zclock_sleep (20 << again);
        req = (s_req_t) { .get_cap = cap };
        rc = s_run (self, &op, &req, what);
    }
    if (rc == QV_EIO && req.status == S3StatusErrorInvalidRange) {
        rc = 0;                     //  offset at or past the end: no bytes
        req.buf_len = 0;
    }
    if (rc) {
        free (req.buf);
        return rc;
    }
    if (req.status == S3StatusOK && req.meta_size < 0) {
        //  Every object this backend writes carries its length as metadata, which
        //  S3 stores with the object atomically. Without it, this is an upload that
        //  was interrupted on a server whose PUT is not atomic (s3rver writes in place
        //  and the metadata last): it was never acknowledged, so it does not exist.
        free (req.buf);
        return qv_err (QV_ENOTFOUND, "%s: the object is incomplete (an interrupted upload; "
                       "its writer never got an acknowledgement), so it is treated as "
                       "missing", what);
    }
    if (!req.buf && !(req.buf = malloc (1))) {
        return qv_err (QV_ENOMEM, "%s: out of memory", what);
    }
    if (ident && (rc = s_ident (&req, req.buf_len, ident, identsize, what))) {
        free (req.buf);
        return rc;
    }
    *data = req.buf;
    *got = req.buf_len;
    return 0;
}

static int
s_get_some (s_s3_t *self, const char *key, uint64_t offset, uint64_t count, size_t cap,
            void **data, size_t *got, char *ident, size_t identsize)
{
    return s_get_some_torn (self, key, offset, count, cap, data, got, ident, identsize, NULL);
}

static int
s_get (void *impl, const char *key, void **data, size_t *size)
{
    return s_get_some (impl, key, 0, 0, SIZE_MAX, data, size, NULL, 0);
}

static int
s_get_ident (void *impl, const char *key, void **data, size_t *size, char *ident,
             size_t identsize)
{
    return s_get_some (impl, key, 0, 0, SIZE_MAX, data, size, ident, identsize);
}

//  The identity (s_ident) of the object the bucket holds under key, without its body.
static int
s_head (void *impl, const char *key, char *ident, size_t identsize)
{
    s_s3_t *self = impl;
    char full [QV_STORE_KEY_MAX + 600];
    char what [2048];
    s_full_key (self, key, full, sizeof full);
    snprintf (what, sizeof what, "head s3://%s/%s", self->bucket, full);
    s_op_t op = { .kind = S_HEAD, .key = full };
    s_req_t req = { 0 };
    int rc = s_run (self, &op, &req, what);
    if (rc)
        return rc;
    if (req.meta_size < 0)          //  an interrupted upload, as in s_get_some
        return qv_err (QV_ENOTFOUND, "%s: the object is incomplete (an interrupted upload)",
                       what);
    return s_ident (&req, (uint64_t) req.meta_size, ident, identsize, what);
}

static int
s_get_range (void *impl, const char *key, uint64_t offset, size_t size,
             void **data, size_t *got)
{
    if (size == 0) {
        //  libs3 reads a count of 0 as "to the end"; check the object exists
        int rc = s_get_some (impl, key, 0, 1, 1, data, got, NULL, 0);
        if (rc == 0)
            *got = 0;
        return rc;
    }
    return s_get_some (impl, key, offset, size, size, data, got, NULL, 0);
}

//  A key of ours: [A-Za-z0-9._-/], not the lock object.
static bool
s_valid_key (const char *key)
{
    return *key && key [strspn (key, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                     "0123456789._-/")] == 0
        && strcmp (key, QV_STORE_LOCK_NAME) != 0
        && strlen (key) <= QV_STORE_KEY_MAX;
}

static int
s_list (void *impl, const char *prefix, zlist_t *keys)
{
    s_s3_t *self = impl;
    char full [QV_STORE_KEY_MAX + 600];
    char what [2048];
    s_full_key (self, prefix, full, sizeof full);
    snprintf (what, sizeof what, "list s3://%s/%s", self->bucket, full);
    size_t strip = strlen (self->prefix);
    s_req_t req = { .page = zlist_new () };
    if (!req.page)
        return qv_err (QV_ENOMEM, "%s: out of memory", what);
    zlist_autofree (req.page);
    char marker [sizeof req.marker] = "";
    int rc = 0;
    while (rc == 0) {
        s_op_t op = { .kind = S_LIST, .list_prefix = full, .marker = marker [0] ? marker : NULL };
        s_req_reset (&req);
        rc = s_run (self, &op, &req, what);
        if (rc)
            break;
        for (char *k = zlist_first (req.page); k; k = zlist_next (req.page))
            if (strlen (k) >= strip && s_valid_key (k + strip)
            &&  zlist_append (keys, k + strip) != 0)
                rc = qv_err (QV_ENOMEM, "%s: out of memory", what);
        if (!req.truncated || zlist_size (req.page) == 0)
            break;
        if (strcmp (marker, req.marker) == 0)
            break;                  //  no progress: never loop forever
        snprintf (marker, sizeof marker, "%s", req.marker);
    }
    zlist_destroy (&req.page);
    return rc;
}

static int
s_delete (void *impl, const char *key)
{
    s_s3_t *self = impl;
    int rc = s_may_write (self, "delete", key);
    if (rc)
        return rc;
    char full [QV_STORE_KEY_MAX + 600];
    char what [2048];
    s_full_key (self, key, full, sizeof full);
    snprintf (what, sizeof what, "delete s3://%s/%s", self->bucket, full);
    s_op_t op = { .kind = S_DELETE, .key = full };
    s_req_t req = { 0 };
    rc = s_run (self, &op, &req, what);
    return rc == QV_ENOTFOUND ? 0 : rc;
}

// ---------------------------------------------------------------- LOCK
//
//  Single writer without a lock file. The lock is the object PREFIX/LOCK holding
//  "holder HOST:PID token T renewal N". Its holder rewrites it every lock_ms with N+1.
//  A server that finds a lock object watches it: if it changes within S_LOCK_MISSED
//  renewal periods (about 10 s by default) the holder is alive and lock() fails with
//  QV_EUNAVAIL naming it; if it does not, the holder is taken to be dead, which is
//  logged, and the lock is taken over. The judgment uses only this process's clock
//  (how long the object stayed the same), never the holder's. A clean shutdown
//  deletes the lock, so only a restart after a crash waits.
//
//  A renewal that reads back another server's token means that server took the lock
//  over (we were stalled or cut off for three periods): the store then refuses every
//  further put with QV_EUNAVAIL, and the log says so.
//
//  What it does not protect against: this S3 dialect has no conditional writes, so
//  two servers that start within the same moment on an unlocked bucket can both
//  write their lock. Each reads it back before its first write, at least a third of a
//  renewal period after writing it (recovery's reads run meanwhile, so a start does
//  not wait for it), and the one whose token is not there writes nothing (the server's
//  recovery asks before its first write, qv_store_lock_check, and fails naming the
//  other); a write by both is possible only if one's PUT of the lock takes longer
//  than that pause.
//  A server stalled for longer than three periods (SIGSTOP, a VM pause) loses the lock
//  and may complete one write in flight before its next renewal notices. The roles
//  issue's lease (with fencing) is meant to replace this object.

//  Reads the lock object into out ("" if there is none). A lock object that stays
//  shorter than its recorded length (its writer was killed in the middle of a renewal,
//  and s3rver keeps the part written) reads as S_LOCK_TORN: a text no server writes,
//  held by no one, so a starter watches it like any other and takes it over once it
//  has not changed for S_LOCK_MISSED periods. Returns 0 or an error.
#define S_LOCK_TORN "holder (an-interrupted-lock-write) token - renewal -"

static int
s_lock_read (s_s3_t *self, char *out, size_t outsize)
{
    void *data = NULL;
    size_t size = 0;
    bool torn = false;
    out [0] = 0;
    int rc = s_get_some_torn (self, QV_STORE_LOCK_NAME, 0, 0, 4096, &data, &size, NULL, 0,
                              &torn);
    if (rc == QV_ENOTFOUND) {
        qv_err_clear ();
        return 0;
    }
    if (rc && torn) {
        qv_warn ("%s: read as a lock write broken off", qv_err_msg ());
        qv_err_clear ();
        snprintf (out, outsize, "%s", S_LOCK_TORN);
        return 0;
    }
    if (rc)
        return rc;
    size_t n = size < outsize - 1 ? size : outsize - 1;
    memcpy (out, data, n);
    out [n] = 0;
    out [strcspn (out, "\n")] = 0;
    free (data);
    return 0;
}

static int
s_lock_write (s_s3_t *self)
{
    char text [256];
    int n = snprintf (text, sizeof text, "holder %s token %s renewal %" PRIu64 "\n",
                      self->holder, self->token, (uint64_t) atomic_fetch_add (&self->renewals, 1));
    return s_put_raw (self, QV_STORE_LOCK_NAME, text, (size_t) n);
}

//  True if the lock text carries our token.
static bool
s_lock_ours (s_s3_t *self, const char *text)
{
    char needle [64];
    snprintf (needle, sizeof needle, " token %s ", self->token);
    return strstr (text, needle) != NULL;
}

//  True if the lock text is S_LOCK_TORN: no one holds it, and no one completed a
//  write of it since our last. Its holder (if alive) renews it; a starter watches it.
static bool
s_lock_torn (const char *text)
{
    return strcmp (text, S_LOCK_TORN) == 0;
}

//  "HOST:PID" of a lock text, into out.
static void
s_lock_holder (const char *text, char *out, size_t outsize)
{
    if (s_lock_torn (text)) {
        snprintf (out, outsize, "a holder whose last lock write was broken off");
        return;
    }
    const char *p = strncmp (text, "holder ", 7) == 0 ? text + 7 : text;
    size_t n = strcspn (p, " ");
    snprintf (out, outsize, "%.*s", (int) (n < 120 ? n : 120), p);
}

//  Waits ms on the lock condition; returns true if asked to stop.
static bool
s_lock_sleep (s_s3_t *self, int ms)
{
    struct timespec until;
    clock_gettime (CLOCK_REALTIME, &until);
    until.tv_sec += ms / 1000;
    until.tv_nsec += (long) (ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock (&self->lock_mutex);
    while (!self->lock_stop
       &&  pthread_cond_timedwait (&self->lock_cond, &self->lock_mutex, &until) != ETIMEDOUT)
        ;
    bool stop = self->lock_stop;
    pthread_mutex_unlock (&self->lock_mutex);
    return stop;
}

static void *
s_lock_renewer (void *arg)
{
    s_s3_t *self = arg;
    while (!s_lock_sleep (self, self->lock_ms)) {
        char text [512];
        pthread_mutex_lock (&self->renew_mutex);
        int64_t began = qv_clock_msec ();
        if (s_lock_read (self, text, sizeof text) == 0 && text [0] && !s_lock_ours (self, text)
        &&  !s_lock_torn (text)) {
            pthread_mutex_unlock (&self->renew_mutex);
            char holder [128];
            s_lock_holder (text, holder, sizeof holder);
            qv_error ("the lock s3://%s/%s" QV_STORE_LOCK_NAME " was taken over by %s: this "
                      "server refuses every further write", self->bucket, self->prefix, holder);
            atomic_store (&self->lock_lost, true);
            break;
        }
        //  Read back as ours a renewal period after it was taken: settled
        atomic_store (&self->lock_settling, false);
        if (s_lock_write (self) != 0)
            qv_warn ("cannot renew the lock s3://%s/%s" QV_STORE_LOCK_NAME ": %s", self->bucket,
                     self->prefix, qv_err_msg ());
        else
            atomic_store (&self->renewed_ms, began);
        pthread_mutex_unlock (&self->renew_mutex);
    }
    return NULL;
}

//  Fencing's check after a WAL put (qv_store_lock_check). A takeover needs the lock
//  object unchanged for S_LOCK_MISSED periods after our last renewal, so a renewal
//  younger than S_LOCK_MISSED - 1 periods means we still hold it, with a period to
//  spare. An older one means this process was paused (or the store was slow): read
//  the lock now, and renew it if it is still ours. A lock read as absent may be one
//  being rewritten (s3rver answers an object in the middle of its PUT as incomplete):
//  read again a few times before giving up, and then only as "cannot confirm" (QV_EIO).
static int s_lock_check_locked (s_s3_t *self);

static int
s_lock_check (void *impl)
{
    s_s3_t *self = impl;
    if (!self->lock_held)
        return 0;
    int rc = s_lock_settled (self);
    if (rc)
        return rc;
    pthread_mutex_lock (&self->renew_mutex);
    rc = s_lock_check_locked (self);
    pthread_mutex_unlock (&self->renew_mutex);
    return rc;
}

static int
s_lock_check_locked (s_s3_t *self)
{
    if (!atomic_load (&self->lock_lost)) {
        int64_t began = qv_clock_msec ();
        if (began - atomic_load (&self->renewed_ms) < (int64_t) self->lock_ms * (S_LOCK_MISSED - 1))
            return 0;
        char text [512] = "";
        for (int attempt = 0; attempt < 4; attempt++) {
            if (attempt)
                usleep ((useconds_t) (self->lock_ms / 4 > 0 ? self->lock_ms / 4 : 1) * 1000);
            if (s_lock_read (self, text, sizeof text) != 0)
                return qv_err (QV_EIO, "cannot confirm the lock s3://%s/%s" QV_STORE_LOCK_NAME
                               " (last renewed %lld ms ago): %s", self->bucket, self->prefix,
                               (long long) (qv_clock_msec () - atomic_load (&self->renewed_ms)),
                               qv_err_msg ());
            if (text [0])
                break;
        }
        if (!text [0])
            return qv_err (QV_EIO, "cannot confirm the lock s3://%s/%s" QV_STORE_LOCK_NAME
                           ": it reads as absent", self->bucket, self->prefix);
        if (s_lock_ours (self, text) || s_lock_torn (text)) {
            if (s_lock_write (self) != 0)
                return qv_err (QV_EIO, "cannot renew the lock s3://%s/%s"
                               QV_STORE_LOCK_NAME ": %s", self->bucket, self->prefix,
                               qv_err_msg ());
            atomic_store (&self->renewed_ms, began);
            return 0;
        }
        char holder [128];
        s_lock_holder (text, holder, sizeof holder);
        qv_error ("the lock s3://%s/%s" QV_STORE_LOCK_NAME " was taken over by %s: this "
                  "server refuses every further write", self->bucket, self->prefix, holder);
        atomic_store (&self->lock_lost, true);
    }
    return qv_err (QV_EUNAVAIL, "another server took over the lock s3://%s/%s"
                   QV_STORE_LOCK_NAME, self->bucket, self->prefix);
}

static int
s_lock (void *impl)
{
    s_s3_t *self = impl;
    if (self->lock_held)
        return 0;
    char first [512];
    int rc = s_lock_read (self, first, sizeof first);
    if (rc)
        return rc;
    if (first [0] && !s_lock_ours (self, first)) {
        //  Watch it for S_LOCK_MISSED renewal periods
        char holder [128];
        s_lock_holder (first, holder, sizeof holder);
        int64_t started = qv_clock_msec ();
        int64_t wait = (int64_t) self->lock_ms * S_LOCK_MISSED;
        qv_info ("s3://%s/%s" QV_STORE_LOCK_NAME " is held by %s; watching it for %lld ms "
                 "to see whether that server is alive", self->bucket, self->prefix, holder,
                 (long long) wait);
        while (qv_clock_msec () - started < wait) {
            usleep ((useconds_t) (self->lock_ms / 4 > 0 ? self->lock_ms / 4 : 1) * 1000);
            char now [512];
            rc = s_lock_read (self, now, sizeof now);
            if (rc)
                return rc;
            if (strcmp (now, first) != 0) {
                if (now [0] == 0)
                    break;          //  released meanwhile
                s_lock_holder (now, holder, sizeof holder);
                return qv_err (QV_EUNAVAIL, "s3://%s/%s is locked by %s, which renews its "
                               "lock: another server uses this bucket and prefix",
                               self->bucket, self->prefix, holder);
            }
        }
        if (qv_clock_msec () - started >= wait)
            qv_warn ("taking over s3://%s/%s" QV_STORE_LOCK_NAME " from %s: not renewed for "
                     "%lld ms (%d renewal periods), so that server is taken to be gone",
                     self->bucket, self->prefix, holder, (long long) wait, S_LOCK_MISSED);
    }
    int64_t began = qv_clock_msec ();
    rc = s_lock_write (self);
    if (rc)
        return rc;
    atomic_store (&self->renewed_ms, began);
    //  Without conditional writes two starters may both write: the lock is read back
    //  after a short pause, and the one whose write did not come last yields. The
    //  pause is taken by the first write (s_lock_settled), not here: recovery's reads
    //  run meanwhile, and nothing is written before the read-back.
    self->settle_ms = began + self->lock_ms / 3;
    atomic_store (&self->lock_settling, true);
    self->lock_stop = false;
    if (pthread_create (&self->lock_thread, NULL, s_lock_renewer, self) != 0)
        return qv_err (QV_EIO, "cannot start the lock renewal thread");
    self->lock_held = true;
    return 0;
}

// ---------------------------------------------------------------- open / close

//  Parses "name=value" options; returns 0 or QV_EINVAL.
static int
s_option (s_s3_t *self, const char *opt, const char *location)
{
    const char *eq = strchr (opt, '=');
    size_t nlen = eq ? (size_t) (eq - opt) : strlen (opt);
    const char *val = eq ? eq + 1 : "1";
    char *end = NULL;
    long v = strtol (val, &end, 10);
    if (!*val || *end || v < 0 || v > 100000000)
        return qv_err (QV_EINVAL, "object store s3://%s: option '%.*s' needs a number >= 0",
                       location, (int) nlen, opt);
#define S_IS(name) (nlen == strlen (name) && strncmp (opt, name, nlen) == 0)
    if (S_IS ("https"))
        self->bucket_ctx.protocol = v ? S3ProtocolHTTPS : S3ProtocolHTTP;
    else if (S_IS ("connections") && v > 0 && v <= 256)
        self->connections = (int) v;
    else if (S_IS ("retries") && v <= 100)
        self->retries = (int) v;
    else if (S_IS ("timeout_ms") && v > 0)
        self->timeout_ms = (int) v;
    else if (S_IS ("list_max") && v > 0 && v <= 1000)
        self->list_max = (int) v;
    else if (S_IS ("lock_ms") && v >= 10)
        self->lock_ms = (int) v;
    else
        return qv_err (QV_EINVAL, "object store s3://%s: unknown or out-of-range option "
                       "'%.*s=%s' (https, connections 1..256, retries 0..100, timeout_ms, "
                       "list_max 1..1000, lock_ms >= 10)", location, (int) nlen, opt, val);
#undef S_IS
    return 0;
}

static void s_close (void **impl_p);

static void *
s_open (const char *location)
{
    pthread_once (&s_init_once, s_init);
    if (s_init_status != S3StatusOK) {
        qv_err (QV_EIO, "cannot initialize libs3: %s", S3_get_status_name (s_init_status));
        return NULL;
    }
    s_s3_t *self = calloc (1, sizeof *self);
    if (!self) {
        qv_err (QV_ENOMEM, "out of memory opening s3://%s", location);
        return NULL;
    }
    self->connections = 8;
    self->retries = 6;
    self->timeout_ms = 15000;
    self->list_max = 1000;
    self->lock_ms = 3000;
    self->bucket_ctx.protocol = S3ProtocolHTTP;
    self->bucket_ctx.uriStyle = S3UriStylePath;
    pthread_mutex_init (&self->pool_mutex, NULL);
    pthread_cond_init (&self->pool_cond, NULL);
    pthread_mutex_init (&self->lock_mutex, NULL);
    pthread_mutex_init (&self->renew_mutex, NULL);
    pthread_cond_init (&self->lock_cond, NULL);

    //  HOST:PORT/BUCKET[/PREFIX][?options]
    char spec [2048];
    if (snprintf (spec, sizeof spec, "%s", location) >= (int) sizeof spec) {
        qv_err (QV_EINVAL, "object store url s3://%.64s... is too long", location);
        goto failed;
    }
    char *query = strchr (spec, '?');
    if (query)
        *query++ = 0;
    char *slash = strchr (spec, '/');
    if (!slash || slash == spec || !slash [1]) {
        qv_err (QV_EINVAL, "object store url s3://%s: expected s3://HOST:PORT/BUCKET[/PREFIX]",
                location);
        goto failed;
    }
    *slash = 0;
    if (strlen (spec) >= sizeof self->host) {
        qv_err (QV_EINVAL, "object store url s3://%.64s...: host name too long", spec);
        goto failed;
    }
    strcpy (self->host, spec);
    char *bucket = slash + 1;
    char *prefix = strchr (bucket, '/');
    if (prefix)
        *prefix++ = 0;
    size_t blen = strlen (bucket);
    if (blen < 3 || blen > 63 || bucket [strspn (bucket,
                                 "abcdefghijklmnopqrstuvwxyz0123456789.-")] != 0) {
        qv_err (QV_EINVAL, "S3 bucket name '%.80s': 3 to 63 characters of [a-z0-9.-]", bucket);
        goto failed;
    }
    memcpy (self->bucket, bucket, blen + 1);
    if (prefix) {
        size_t plen = strlen (prefix);
        while (plen > 0 && prefix [plen - 1] == '/')
            prefix [--plen] = 0;
        if (plen > 256 || prefix [strspn (prefix, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOP"
                                                  "QRSTUVWXYZ0123456789._-/")] != 0) {
            qv_err (QV_EINVAL, "S3 prefix '%s': at most 256 characters of [A-Za-z0-9._-/]",
                    prefix);
            goto failed;
        }
        if (plen)
            snprintf (self->prefix, sizeof self->prefix, "%s/", prefix);
    }
    for (char *opt = query ? strtok (query, "&") : NULL; opt; opt = strtok (NULL, "&"))
        if (s_option (self, opt, location))
            goto failed;
    if (self->bucket_ctx.protocol == S3ProtocolHTTPS)
        qv_warn ("s3://%s over HTTPS: libs3 2.0 checks that the server's certificate names "
                 "the host, not who issued it (encrypted, not authenticated)", self->host);

    const char *access = getenv ("QUIVER_S3_ACCESS_KEY");
    const char *secret = getenv ("QUIVER_S3_SECRET_KEY");
    if (!access || !*access || !secret || !*secret) {
        qv_err (QV_EINVAL, "S3 credentials missing: set QUIVER_S3_ACCESS_KEY and "
                "QUIVER_S3_SECRET_KEY in the environment");
        goto failed;
    }
    if (strlen (access) >= sizeof self->access || strlen (secret) >= sizeof self->secret) {
        qv_err (QV_EINVAL, "S3 credentials in QUIVER_S3_ACCESS_KEY / QUIVER_S3_SECRET_KEY "
                "are too long");
        goto failed;
    }
    strcpy (self->access, access);
    strcpy (self->secret, secret);
    self->bucket_ctx.hostName = self->host;
    self->bucket_ctx.bucketName = self->bucket;
    self->bucket_ctx.accessKeyId = self->access;
    self->bucket_ctx.secretAccessKey = self->secret;

    self->pool = calloc ((size_t) self->connections, sizeof *self->pool);
    if (!self->pool) {
        qv_err (QV_ENOMEM, "out of memory opening s3://%s", location);
        goto failed;
    }
    for (int i = 0; i < self->connections; i++) {
        if (S3_create_request_context (&self->pool [i]) != S3StatusOK) {
            qv_err (QV_EIO, "cannot create libs3 request context");
            goto failed;
        }
        self->pool_free++;
    }
    char host [64] = "localhost";
    gethostname (host, sizeof host - 1);
    host [strcspn (host, " \t")] = 0;
    snprintf (self->holder, sizeof self->holder, "%s:%ld", host, (long) getpid ());
    uint64_t tok [2] = { 0, 0 };
    if (getrandom (tok, sizeof tok, 0) != sizeof tok)
        tok [0] = (uint64_t) qv_clock_usec () ^ ((uint64_t) getpid () << 32);
    snprintf (self->token, sizeof self->token, "%016" PRIx64 "%016" PRIx64, tok [0], tok [1]);

    //  The bucket must exist: create it if missing (and say so)
    char what [600];
    snprintf (what, sizeof what, "bucket s3://%s on %s", self->bucket, self->host);
    s_op_t op = { .kind = S_TEST_BUCKET };
    s_req_t req = { 0 };
    int rc = s_run (self, &op, &req, what);
    if (rc == QV_EIO && (req.status == S3StatusErrorNoSuchBucket
                     ||  req.status == S3StatusHttpErrorNotFound)) {
        rc = 0;
        qv_err_clear ();
        s_op_t create = { .kind = S_CREATE_BUCKET };
        s_req_t creq = { 0 };
        rc = s_run (self, &create, &creq, what);
        if (rc == QV_EIO && (creq.status == S3StatusErrorBucketAlreadyOwnedByYou
                         ||  creq.status == S3StatusErrorBucketAlreadyExists))
            rc = 0;
        if (rc == 0)
            qv_info ("created S3 bucket %s on %s", self->bucket, self->host);
    }
    else
    if (rc == QV_ENOTFOUND) {
        qv_err_clear ();
        s_op_t create = { .kind = S_CREATE_BUCKET };
        s_req_t creq = { 0 };
        rc = s_run (self, &create, &creq, what);
        if (rc == QV_EIO && (creq.status == S3StatusErrorBucketAlreadyOwnedByYou
                         ||  creq.status == S3StatusErrorBucketAlreadyExists))
            rc = 0;
        if (rc == 0)
            qv_info ("created S3 bucket %s on %s", self->bucket, self->host);
    }
    if (rc)
        goto failed;
    return self;
failed:;
    void *impl = self;
    s_close (&impl);
    return NULL;
}

static void
s_close (void **impl_p)
{
    if (!impl_p || !*impl_p)
        return;
    s_s3_t *self = *impl_p;
    if (self->lock_held) {
        pthread_mutex_lock (&self->lock_mutex);
        self->lock_stop = true;
        pthread_cond_broadcast (&self->lock_cond);
        pthread_mutex_unlock (&self->lock_mutex);
        pthread_join (self->lock_thread, NULL);
        //  Release: delete the lock if it is still ours, so a restart need not wait
        char text [512];
        if (!atomic_load (&self->lock_lost)
        &&  s_lock_read (self, text, sizeof text) == 0
        &&  (s_lock_ours (self, text) || s_lock_torn (text))) {
            char full [QV_STORE_KEY_MAX + 600];
            s_full_key (self, QV_STORE_LOCK_NAME, full, sizeof full);
            s_op_t op = { .kind = S_DELETE, .key = full };
            s_req_t req = { 0 };
            if (s_run (self, &op, &req, "delete the lock object"))
                qv_warn ("cannot release the S3 lock: %s", qv_err_msg ());
        }
    }
    for (int i = 0; i < self->pool_free; i++)
        S3_destroy_request_context (self->pool [i]);
    free (self->pool);
    pthread_mutex_destroy (&self->pool_mutex);
    pthread_cond_destroy (&self->pool_cond);
    pthread_mutex_destroy (&self->lock_mutex);
    pthread_mutex_destroy (&self->renew_mutex);
    pthread_cond_destroy (&self->lock_cond);
    explicit_bzero (self->secret, sizeof self->secret);
    free (self);
    *impl_p = NULL;
}

static void
s_counters (void *impl, uint64_t *requests, uint64_t *retried)
{
    s_s3_t *self = impl;
    *requests = atomic_load (&self->requests);
    *retried = atomic_load (&self->retried);
}

const qv_store_backend_t qv_store_s3_backend = {
    .name = "s3",
    .open = s_open,
    .close = s_close,
    .lock = s_lock,
    .lock_check = s_lock_check,
    .put = s_put,
    .get = s_get,
    .get_range = s_get_range,
    .list = s_list,
    .delete = s_delete,
    .describe = s_describe,
    .counters = s_counters,
    .head = s_head,
    .put_ident = s_put_ident,
    .get_ident = s_get_ident,
};
