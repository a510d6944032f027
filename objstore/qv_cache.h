//  Local cache of immutable objects (segments and their indexes) of a remote store.
//  Used by the store front (qv_store.c); see qv_cache.c for the design.
#ifndef QV_CACHE_H_INCLUDED
#define QV_CACHE_H_INCLUDED

#include <stddef.h>
#include <stdint.h>

typedef struct _qv_cache_t qv_cache_t;

typedef struct {
    uint64_t hits;                  //  gets served from a valid cached copy
    uint64_t misses;                //  gets that downloaded the object
    uint64_t bytes_downloaded;      //  bytes those misses downloaded
    uint64_t corrupt;               //  cached copies dropped: bad checksum, truncated
    uint64_t stale;                 //  cached copies dropped: the bucket's object changed
    uint64_t evictions;             //  copies evicted to stay under the limit
    uint64_t bytes;                 //  bytes the cache's files hold now
    uint64_t files;                 //  how many
    uint64_t max_bytes;             //  the limit
} qv_cache_stats_t;

//  Opens (creates) the cache in dir, holding at most max_bytes (> 0). Files left by
//  an earlier run are kept (checked when used); temp files of interrupted writes are
//  removed. Returns NULL with a message (qv_err) if dir cannot be used.
qv_cache_t *
    qv_cache_new (const char *dir, uint64_t max_bytes);

void
    qv_cache_destroy (qv_cache_t **self_p);

//  If the cache holds key's copy for the object identity ident (the bucket's ETag and
//  size, see qv_store.c) and the copy's checksum is right, returns 0 with a malloc'd
//  copy (*data, *size). Otherwise returns QV_ENOTFOUND; a copy that is corrupt or of
//  another identity is deleted first.
int
    qv_cache_get (qv_cache_t *self, const char *key, const char *ident, void **data,
                  size_t *size);

//  Keeps data as key's copy for identity ident (best effort: failures are logged,
//  the cache is never needed for correctness), evicting the least recently used.
void
    qv_cache_put (qv_cache_t *self, const char *key, const char *ident, const void *data,
                  size_t size);

//  Forgets key's copy (the object is deleted or rewritten).
void
    qv_cache_drop (qv_cache_t *self, const char *key);

//  Counts a miss of size bytes downloaded (the front downloads, not the cache).
void
    qv_cache_count_download (qv_cache_t *self, size_t size);

void
    qv_cache_stats (qv_cache_t *self, qv_cache_stats_t *stats);

#endif
