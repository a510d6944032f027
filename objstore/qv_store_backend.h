//  Object store backends: the vtable a backend (filesystem, S3) fills in for qv_store.c.
//  Internal to objstore/; callers use qv_store.h.
#ifndef QV_STORE_BACKEND_H_INCLUDED
#define QV_STORE_BACKEND_H_INCLUDED

#include "qv_store.h"
#include "qv_rc.h"

//  The front (qv_store.c) validates keys and prefixes, applies injected faults and
//  passes only valid keys on, so a backend never sees "..", an absolute path or an
//  empty segment. Every operation returns 0 or a negative qv_rc_t, having recorded the
//  error with qv_err naming the object. Each must be safe to call from several threads
//  at once on one handle.
typedef struct {
    const char *name;               //  "fs", "s3"
    //  location: what follows the scheme ("/data" for file:///data). NULL on failure.
    void *(*open) (const char *location);
    //  Optional: open without creating or cleaning up anything (qv_store_new_readonly);
    //  without it, open is used.
    void *(*open_readonly) (const char *location);
    void (*close) (void **impl_p);
    int (*lock) (void *impl);
    //  Optional: 0 while the lock taken by lock() is still held (qv_store_lock_check).
    int (*lock_check) (void *impl);
    int (*put) (void *impl, const char *key, const void *data, size_t size);
    int (*get) (void *impl, const char *key, void **data, size_t *size);
    int (*get_range) (void *impl, const char *key, uint64_t offset, size_t size,
                      void **data, size_t *got);
    //  Appends every key starting with prefix to keys (any order; the front sorts).
    int (*list) (void *impl, const char *prefix, zlist_t *keys);
    int (*delete) (void *impl, const char *key);
    void (*describe) (void *impl, const char *key, char *out, size_t outsize);
    //  Optional: requests sent and retried since open (remote backends).
    void (*counters) (void *impl, uint64_t *requests, uint64_t *retried);
    //  Optional, for the local cache (qv_cache.c) of remote backends: the identity
    //  ("etag=...;size=N") of the object under key, by HEAD (head), or of the object
    //  just written (put_ident: "" if it could not be told, the put still done) or
    //  read (get_ident).
    int (*head) (void *impl, const char *key, char *ident, size_t identsize);
    int (*put_ident) (void *impl, const char *key, const void *data, size_t size,
                      char *ident, size_t identsize);
    int (*get_ident) (void *impl, const char *key, void **data, size_t *size,
                      char *ident, size_t identsize);
} qv_store_backend_t;

extern const qv_store_backend_t qv_store_fs_backend;
extern const qv_store_backend_t qv_store_s3_backend;

//  Longest key (bytes) and key segment the front accepts. A segment leaves room for
//  the filesystem backend's temp-file prefix within NAME_MAX (255).
#define QV_STORE_KEY_MAX     1024
#define QV_STORE_IDENT_MAX   256
#define QV_STORE_SEGMENT_MAX 200

//  Names the filesystem backend reserves: temp files of puts in progress start with
//  QV_STORE_TMP_PREFIX, and QV_STORE_LOCK_NAME at the root holds the writer lock.
//  Keys whose segment starts with '.' or that equal "LOCK" are refused by the front.
#define QV_STORE_TMP_PREFIX ".tmp-"
#define QV_STORE_LOCK_NAME  "LOCK"

#endif
