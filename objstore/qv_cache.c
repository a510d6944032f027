//  Local cache of immutable objects of a remote store (qv_cache.h).
//
//  DESIGN
//  One file per object in the cache directory, named by the key with '/' written as
//  '@' (not a key character, so names never collide). A file is the stored-object
//  envelope (qv_envelope.h) of kind CACHE, version 2, around
//      u32 ident length | ident | zeros up to file offset 4096 | data
//  little-endian, the envelope's CRC32C covering all of it. (Version 1 files, without
//  the zeros, are still read. Files of the release before the envelope, "QVCACHE1",
//  fail the check and are downloaded again, like any damaged file.)
//
//  Direct I/O: the data starts on a 4 KiB boundary so that a file of 1 MiB or more is
//  written and read with O_DIRECT, past the kernel's page cache. The server keeps
//  what it loads in its own memory, so a page-cache copy of the file only costs
//  memory, and on a VM it costs most of a cold start: measured on a 1M x 128 cold
//  start, filling fresh page-cache pages with the cache's writes was 38% of the
//  server's CPU samples (the rest of the kernel's share zeroing fresh pages). Where the
//  filesystem refuses O_DIRECT (tmpfs) the same bytes go through the page cache.
//  Writes go through an aligned bounce buffer (one copy in cache-hot memory, so the
//  data need not be aligned); the last block is padded and the file truncated to
//  its length. It is written to a ".tmp-" file
//  and renamed, so a process crash leaves either the whole file or a temp file that
//  the next start removes. It is not fsync'd (that would hold the flusher for a copy
//  the bucket already has): after a power loss a renamed file may be short or hold
//  zeros, which its length and checksum reject. Every get reads the whole file and checks length, identity
//  and checksum before serving a byte; a file that fails is deleted (and the caller
//  downloads the object again), never served.
//
//  Identity: a segment id can be reused after a crash (a segment written but not yet
//  in a manifest is written again, with other rows, under the same key), so a cached
//  copy is valid only for the object the bucket holds now. The store front asks the
//  bucket for the object's identity (HEAD: ETag and size, one small request, no body)
//  and the cache serves only a copy recorded under that identity.
//
//  LRU by size: an index (zhashx key -> entry) and a recency list (zlistx, least
//  recently used first) kept in memory, rebuilt at start from the directory ordered by
//  the files' modification times (a hit touches its file, so the order survives a
//  restart). A put evicts from the front of the list until the
//  total fits. One mutex guards the index and the counters; file reads and writes run
//  outside it (a file unlinked by an eviction during a read stays readable).
#include "qv_cache.h"
#include "qv_crc.h"
#include "qv_envelope.h"
#include "qv_le.h"
#include "qv_rc.h"
#include "qv_store.h"

#include <czmq.h>
#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <sys/stat.h>
#include <unistd.h>

#define S_VERSION    2              //  the envelope's payload version written
#define S_HEADER     (QV_ENVELOPE_HEADER_SIZE + 4)     //  envelope, ident length
#define S_BLOCK      4096           //  version 2: where the data starts; O_DIRECT unit
#define S_DIRECT_MIN (1u << 20)     //  files this large are read and written O_DIRECT
#define S_BOUNCE     (4u << 20)     //  the aligned buffer direct writes go through
#define S_IDENT_MAX  512
#define S_NAME_MAX   200
#define S_TMP_PREFIX ".tmp-"

typedef struct {
    char *name;                     //  file name (the index's key)
    uint64_t bytes;                 //  file size
    struct timespec mtime;          //  for ordering at start only
    void *handle;                   //  in the recency list
} s_entry_t;

struct _qv_cache_t {
    char *dir;
    uint64_t max_bytes;
    pthread_mutex_t mutex;
    zhashx_t *index;                //  name -> s_entry_t (owns entries)
    zlistx_t *lru;                  //  s_entry_t, least recently used first
    uint64_t tmp_seq;
    qv_cache_stats_t stats;
};

static void
s_entry_destroy (void **item)
{
    s_entry_t *e = *item;
    if (e) {
        free (e->name);
        free (e);
        *item = NULL;
    }
}

//  The file name of key, or false if key does not fit in a name.
static bool
s_name (const char *key, char *out, size_t outsize)
{
    size_t len = strlen (key);
    if (len == 0 || len > S_NAME_MAX || len >= outsize)
        return false;
    for (size_t i = 0; i <= len; i++)
        out [i] = key [i] == '/' ? '@' : key [i];
    return true;
}

static int
s_by_mtime (const void *a, const void *b)
{
    const s_entry_t *x = *(s_entry_t * const *) a, *y = *(s_entry_t * const *) b;
    if (x->mtime.tv_sec != y->mtime.tv_sec)
        return x->mtime.tv_sec < y->mtime.tv_sec ? -1 : 1;
    return x->mtime.tv_nsec < y->mtime.tv_nsec ? -1 : x->mtime.tv_nsec > y->mtime.tv_nsec;
}

//  Removes e from the index and list and deletes its file. Caller holds the mutex.
static void
s_remove (qv_cache_t *self, s_entry_t *e)
{
    char path [PATH_MAX];
    snprintf (path, sizeof path, "%s/%s", self->dir, e->name);
    unlink (path);
    self->stats.bytes -= e->bytes;
    self->stats.files--;
    zlistx_delete (self->lru, e->handle);
    zhashx_delete (self->index, e->name);       //  frees e
}

static void
s_evict (qv_cache_t *self)
{
    while (self->stats.bytes > self->max_bytes) {
        s_entry_t *e = zlistx_first (self->lru);
        if (!e)
            break;
        s_remove (self, e);
        self->stats.evictions++;
    }
}

qv_cache_t *
qv_cache_new (const char *dir, uint64_t max_bytes)
{
    assert (dir && max_bytes > 0);
    if (zsys_dir_create ("%s", dir) != 0) {
        qv_err (QV_EIO, "cache directory %s cannot be created: %s", dir, strerror (errno));
        return NULL;
    }
    DIR *d = opendir (dir);
    if (!d) {
        qv_err (QV_EIO, "cache directory %s cannot be read: %s", dir, strerror (errno));
        return NULL;
    }
    qv_cache_t *self = calloc (1, sizeof *self);
    assert (self);
    self->dir = strdup (dir);
    self->max_bytes = max_bytes;
    self->stats.max_bytes = max_bytes;
    pthread_mutex_init (&self->mutex, NULL);
    self->index = zhashx_new ();
    zhashx_set_destructor (self->index, s_entry_destroy);
    self->lru = zlistx_new ();
    zlist_t *found = zlist_new ();
    struct dirent *de;
    while ((de = readdir (d))) {
        if (de->d_name [0] == '.' && strncmp (de->d_name, S_TMP_PREFIX, strlen (S_TMP_PREFIX)))
            continue;
        char path [PATH_MAX];
        snprintf (path, sizeof path, "%s/%s", dir, de->d_name);
        struct stat st;
        if (stat (path, &st) || !S_ISREG (st.st_mode))
            continue;
        if (strncmp (de->d_name, S_TMP_PREFIX, strlen (S_TMP_PREFIX)) == 0) {
            unlink (path);          //  an interrupted write
            continue;
        }
        s_entry_t *e = calloc (1, sizeof *e);
        e->name = strdup (de->d_name);
        e->bytes = (uint64_t) st.st_size;
        e->mtime = st.st_mtim;
        zlist_append (found, e);
    }
    closedir (d);
    size_t n = zlist_size (found);
    s_entry_t **all = calloc (n + 1, sizeof *all);
    for (size_t i = 0; i < n; i++)
        all [i] = zlist_pop (found);
    zlist_destroy (&found);
    qsort (all, n, sizeof *all, s_by_mtime);
    for (size_t i = 0; i < n; i++) {
        all [i]->handle = zlistx_add_end (self->lru, all [i]);
        zhashx_insert (self->index, all [i]->name, all [i]);
        self->stats.bytes += all [i]->bytes;
        self->stats.files++;
    }
    free (all);
    s_evict (self);                 //  the limit may have shrunk since the last run
    return self;
}

void
qv_cache_destroy (qv_cache_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    qv_cache_t *self = *self_p;
    zlistx_destroy (&self->lru);
    zhashx_destroy (&self->index);
    pthread_mutex_destroy (&self->mutex);
    free (self->dir);
    free (self);
    *self_p = NULL;
}

//  A buffer of size bytes aligned for direct I/O (a whole number of blocks is read
//  into it), freed with free(); NULL if out of memory.
static uint8_t *
s_block_buffer (size_t size)
{
    if (size >= (2u << 20))
        return qv_store_buffer_new (size);      //  aligned to 2 MiB
    void *buf = NULL;
    return posix_memalign (&buf, S_BLOCK, size) ? NULL : buf;
}

//  Reads from fd's offset into buf (cap bytes of room) until it holds need bytes, the
//  file ends or a read fails; returns how many it holds.
static size_t
s_read_all (int fd, uint8_t *buf, size_t cap, size_t need)
{
    size_t pos = 0;
    while (pos < need) {
        ssize_t r = read (fd, buf + pos, cap - pos);
        if (r <= 0)
            break;
        pos += (size_t) r;
    }
    return pos;
}

//  Reads path whole; NULL if it cannot. A file of S_DIRECT_MIN or more is read with
//  O_DIRECT into a block-aligned buffer (rounded up to whole blocks), else through
//  the page cache.
static uint8_t *
s_read_file (const char *path, size_t *size)
{
    int fd = open (path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return NULL;
    struct stat st;
    if (fstat (fd, &st) || st.st_size < S_HEADER) {
        close (fd);
        return NULL;
    }
    size_t fsize = (size_t) st.st_size;
    uint8_t *buf = NULL;
    size_t got = 0;
    if (fsize >= S_DIRECT_MIN) {
        int dfd = open (path, O_RDONLY | O_CLOEXEC | O_DIRECT);
        size_t blocks = (fsize + S_BLOCK - 1) / S_BLOCK * S_BLOCK;
        if (dfd >= 0 && (buf = s_block_buffer (blocks))) {
            got = s_read_all (dfd, buf, blocks, fsize);
        }
        if (dfd >= 0)
            close (dfd);
        if (got != fsize) {         //  refused after all: read it as below
            free (buf);
            buf = NULL;
        }
    }
    if (!buf && (buf = qv_store_buffer_new (fsize)))
        got = s_read_all (fd, buf, fsize, fsize);
    close (fd);
    if (buf && got != fsize) {
        free (buf);
        return NULL;
    }
    *size = fsize;
    return buf;
}

//  Drops name's entry if it is still the one of that size. Caller holds the mutex.
static void
s_drop_name (qv_cache_t *self, const char *name)
{
    s_entry_t *e = zhashx_lookup (self->index, name);
    if (e)
        s_remove (self, e);
    else {
        char path [PATH_MAX];
        snprintf (path, sizeof path, "%s/%s", self->dir, name);
        unlink (path);
    }
}

int
qv_cache_get (qv_cache_t *self, const char *key, const char *ident, void **data, size_t *size)
{
    assert (self && key && ident && data && size);
    char name [S_NAME_MAX + 1];
    if (!s_name (key, name, sizeof name))
        return QV_ENOTFOUND;
    pthread_mutex_lock (&self->mutex);
    bool known = zhashx_lookup (self->index, name) != NULL;
    pthread_mutex_unlock (&self->mutex);
    if (!known)
        return QV_ENOTFOUND;
    char path [PATH_MAX];
    snprintf (path, sizeof path, "%s/%s", self->dir, name);
    size_t fsize = 0;
    uint8_t *buf = s_read_file (path, &fsize);
    uint32_t ilen = 0;
    uint64_t dsize = 0;
    bool good = false, same = false;
    qv_envelope_t env;
    size_t start = 0;               //  where the data starts in the file
    if (buf && qv_envelope_open (path, buf, fsize, QV_ENVELOPE_CACHE, S_VERSION, &env) == 0
    &&  env.size >= 4) {
        ilen = qv_le_get32 (env.payload);
        start = env.version == 1 ? S_HEADER + ilen : S_BLOCK;
        good = ilen <= S_IDENT_MAX && S_HEADER + ilen <= start && start <= fsize;
        dsize = good ? fsize - start : 0;
        same = good && ilen == strlen (ident) && memcmp (buf + S_HEADER, ident, ilen) == 0;
    }
    else
        qv_err_clear ();                //  reported below, as a dropped file
    pthread_mutex_lock (&self->mutex);
    if (!same) {
        if (good) {
            self->stats.stale++;
            qv_info ("cache: %s holds another version of %s than the bucket; downloading it",
                     path, key);
        }
        else {
            self->stats.corrupt++;
            qv_warn ("cache: %s is %s; dropped, downloading %s again", path,
                     buf ? "corrupt (checksum, length or header)" : "truncated or unreadable", key);
        }
        s_drop_name (self, name);
        pthread_mutex_unlock (&self->mutex);
        free (buf);
        return QV_ENOTFOUND;
    }
    s_entry_t *e = zhashx_lookup (self->index, name);
    if (e)
        zlistx_move_end (self->lru, e->handle);
    self->stats.hits++;
    pthread_mutex_unlock (&self->mutex);
    utimensat (AT_FDCWD, path, NULL, 0);    //  recency for the next start
    //  Hand back the data in place: move it to the front of the buffer
    memmove (buf, buf + start, dsize);
    *data = buf;
    *size = dsize;
    return 0;
}

static bool
s_write_all (int fd, const void *data, size_t size)
{
    const uint8_t *p = data;
    while (size > 0) {
        ssize_t w = write (fd, p, size);
        if (w <= 0)
            return false;
        p += w;
        size -= (size_t) w;
    }
    return true;
}

//  Writes the first block, then data, to fd opened with O_DIRECT, through an aligned
//  bounce buffer; pads the last block and truncates the file to its length. Returns
//  0, 1 if the filesystem refused direct I/O before anything was written (the caller
//  writes through the page cache), -1 on any other error (errno set).
static int
s_write_direct (int fd, const uint8_t *block, const uint8_t *data, size_t size)
{
    size_t total = S_BLOCK + size;
    size_t cap = total < S_BOUNCE ? (total + S_BLOCK - 1) / S_BLOCK * S_BLOCK : S_BOUNCE;
    uint8_t *bounce = s_block_buffer (cap);
    if (!bounce)
        return -1;
    memcpy (bounce, block, S_BLOCK);
    size_t fill = S_BLOCK, done = 0;
    bool first = true;
    int rc = 0;
    while (rc == 0) {
        size_t take = size - done < cap - fill ? size - done : cap - fill;
        memcpy (bounce + fill, data + done, take);
        fill += take;
        done += take;
        bool last = done == size;
        if (fill < cap && !last)
            continue;
        size_t out = (fill + S_BLOCK - 1) / S_BLOCK * S_BLOCK;
        memset (bounce + fill, 0, out - fill);
        if (!s_write_all (fd, bounce, out))
            rc = first && errno == EINVAL ? 1 : -1;
        first = false;
        fill = 0;
        if (last)
            break;
    }
    free (bounce);
    if (rc == 0 && ftruncate (fd, (off_t) total) != 0)
        rc = -1;
    return rc;
}

//  Writes a cache file at path: the first block, then data. Large files go past the
//  page cache (see DESIGN) where the filesystem allows it.
static bool
s_write_file (const char *path, const uint8_t *block, const void *data, size_t size)
{
    if (S_BLOCK + size >= S_DIRECT_MIN) {
        int fd = open (path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_DIRECT, 0644);
        int rc = fd >= 0 ? s_write_direct (fd, block, data, size) : 1;
        if (fd >= 0)
            close (fd);
        if (rc <= 0)
            return rc == 0;
    }
    int fd = open (path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    bool ok = fd >= 0 && s_write_all (fd, block, S_BLOCK) && s_write_all (fd, data, size);
    if (fd >= 0)
        close (fd);
    return ok;
}

void
qv_cache_put (qv_cache_t *self, const char *key, const char *ident, const void *data, size_t size)
{
    assert (self && key && ident);
    char name [S_NAME_MAX + 1];
    size_t ilen = strlen (ident);
    uint64_t total = S_BLOCK + size;
    if (!s_name (key, name, sizeof name) || ilen > S_IDENT_MAX || total > self->max_bytes) {
        qv_cache_drop (self, key);
        return;
    }
    pthread_mutex_lock (&self->mutex);
    uint64_t seq = self->tmp_seq++;
    pthread_mutex_unlock (&self->mutex);
    char tmp [PATH_MAX], path [PATH_MAX];
    snprintf (tmp, sizeof tmp, "%s/%s%d-%llu", self->dir, S_TMP_PREFIX, (int) getpid (),
              (unsigned long long) seq);
    snprintf (path, sizeof path, "%s/%s", self->dir, name);
    //  The first block: envelope header, ident length, ident, zeros
    uint8_t block [S_BLOCK] = { 0 };
    qv_le_put32 (block + QV_ENVELOPE_HEADER_SIZE, (uint32_t) ilen);
    memcpy (block + S_HEADER, ident, ilen);
    uint32_t crc = qv_crc32c (block + QV_ENVELOPE_HEADER_SIZE, S_BLOCK - QV_ENVELOPE_HEADER_SIZE);
    crc = qv_crc32c_update (crc, data, size);
    qv_envelope_header (block, QV_ENVELOPE_CACHE, S_VERSION,
                        total - QV_ENVELOPE_HEADER_SIZE, crc);
    if (!s_write_file (tmp, block, data, size)) {
        qv_warn ("cache: cannot write %s (%s); %s is not cached", tmp, strerror (errno), key);
        unlink (tmp);
        qv_cache_drop (self, key);
        return;
    }
    pthread_mutex_lock (&self->mutex);
    s_entry_t *old = zhashx_lookup (self->index, name);
    if (old) {                      //  replaced by the rename below
        self->stats.bytes -= old->bytes;
        self->stats.files--;
        zlistx_delete (self->lru, old->handle);
        zhashx_delete (self->index, name);
    }
    if (rename (tmp, path) != 0) {
        qv_warn ("cache: cannot rename %s to %s: %s", tmp, path, strerror (errno));
        unlink (tmp);
        unlink (path);
        pthread_mutex_unlock (&self->mutex);
        return;
    }
    s_entry_t *e = calloc (1, sizeof *e);
    assert (e);
    e->name = strdup (name);
    e->bytes = total;
    e->handle = zlistx_add_end (self->lru, e);
    zhashx_insert (self->index, e->name, e);
    self->stats.bytes += total;
    self->stats.files++;
    s_evict (self);
    pthread_mutex_unlock (&self->mutex);
}

void
qv_cache_drop (qv_cache_t *self, const char *key)
{
    assert (self && key);
    char name [S_NAME_MAX + 1];
    if (!s_name (key, name, sizeof name))
        return;
    pthread_mutex_lock (&self->mutex);
    s_drop_name (self, name);
    pthread_mutex_unlock (&self->mutex);
}

void
qv_cache_count_download (qv_cache_t *self, size_t size)
{
    pthread_mutex_lock (&self->mutex);
    self->stats.misses++;
    self->stats.bytes_downloaded += size;
    pthread_mutex_unlock (&self->mutex);
}

void
qv_cache_stats (qv_cache_t *self, qv_cache_stats_t *stats)
{
    pthread_mutex_lock (&self->mutex);
    *stats = self->stats;
    pthread_mutex_unlock (&self->mutex);
}
