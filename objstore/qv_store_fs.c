//  Filesystem object store backend: one file per object under a root directory.
//
//  DESIGN
//  Object "a/b/c" is the file ROOT/a/b/c. The front (qv_store.c) has already checked
//  the key, so a key can never escape ROOT.
//
//  put is atomic and durable: it creates missing parent directories (fsyncing the
//  directory each was created in), writes the data to a temp file in the object's own
//  directory, fsyncs it, renames it over ROOT/key and fsyncs the directory. A reader
//  sees the old object or the new one, never a mix, and after a crash either is
//  possible only if put had not returned 0.
//
//  Temp files are named ".tmp-<pid>-<tid>-<n>-<name>". Keys never have a segment that
//  starts with '.', so list never shows a temp file and no key can collide with one.
//  A put interrupted by a crash leaves its temp file behind; qv_store_new removes temp
//  files whose <pid> is no longer running (a live process, in this one or another,
//  may be in the middle of a put, so its temp files are left alone). A temp file of
//  a dead process whose pid was since reused survives until a later open; it is
//  never listed, so the only cost is its disk space.
//
//  The writer lock is flock(LOCK_EX | LOCK_NB) on ROOT/LOCK, which holds the holder's
//  pid for the message a second writer gets. The kernel drops a flock when the
//  process dies, even by kill -9, so a stale LOCK file never blocks a restart; the
//  file itself is never removed (removing it would let two processes lock two
//  different inodes). flock works per open file description, so two stores in one
//  process also exclude each other.
//
//  There is no shared mutable state apart from the lock descriptor (mutex) and a
//  temp-name counter (atomic); every call builds its own paths and descriptors.
#include "qv_store.h"
#include "qv_store_backend.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

typedef struct {
    char *root;                     //  absolute path of the root directory, no trailing '/'
    pthread_mutex_t lock_mutex;     //  guards lock_fd
    int lock_fd;                    //  open ROOT/LOCK while we hold the lock, else -1
    atomic_uint_fast64_t tmp_seq;   //  makes temp names unique within this store
} s_fs_t;

//  Builds ROOT/key into out. Returns 0, or QV_EINVAL if it does not fit.
static int
s_path (s_fs_t *self, const char *key, char *out, size_t outsize)
{
    int n = snprintf (out, outsize, "%s/%s", self->root, key);
    if (n < 0 || (size_t) n >= outsize)
        return qv_err (QV_EINVAL, "path of object '%s' under %s is too long", key, self->root);
    return 0;
}

//  fsyncs a directory so that entries created, renamed or removed in it are durable.
static int
s_fsync_dir (const char *dir)
{
    int fd = open (dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return qv_err (QV_EIO, "cannot open directory %s to fsync it: %s", dir,
                       strerror (errno));
    int rc = 0;
    if (fsync (fd) != 0)
        rc = qv_err (QV_EIO, "fsync of directory %s failed: %s", dir, strerror (errno));
    close (fd);
    return rc;
}

//  Creates directory path and any missing parents (mkdir -p), fsyncing the parent of
//  each directory it creates. path is modified during the call and restored.
static int
s_mkdirs (char *path)
{
    struct stat st;
    if (stat (path, &st) == 0) {
        if (S_ISDIR (st.st_mode))
            return 0;
        return qv_err (QV_EIO, "%s exists and is not a directory", path);
    }
    for (char *p = path + 1; ; p++) {
        if (*p != '/' && *p != 0)
            continue;
        char saved = *p;
        *p = 0;
        if (mkdir (path, 0755) == 0) {
            //  Make the new entry durable in its parent
            char *slash = strrchr (path, '/');
            int rc = 0;
            if (slash == path)
                rc = s_fsync_dir ("/");
            else
            if (slash) {
                *slash = 0;
                rc = s_fsync_dir (path);
                *slash = '/';
            }
            else
                rc = s_fsync_dir (".");
            if (rc) {
                *p = saved;
                return rc;
            }
        }
        else
        if (errno != EEXIST) {
            int err = errno;
            qv_err (QV_EIO, "cannot create directory %s: %s", path, strerror (err));
            *p = saved;
            return QV_EIO;
        }
        *p = saved;
        if (saved == 0)
            break;
    }
    if (stat (path, &st) != 0 || !S_ISDIR (st.st_mode))
        return qv_err (QV_EIO, "%s exists and is not a directory", path);
    return 0;
}

//  If name is a temp file ".tmp-<pid>-...", returns its pid (0 if unparsable), else -1.
static long
s_tmp_pid (const char *name)
{
    size_t plen = strlen (QV_STORE_TMP_PREFIX);
    if (strncmp (name, QV_STORE_TMP_PREFIX, plen) != 0)
        return -1;
    char *end = NULL;
    errno = 0;
    long pid = strtol (name + plen, &end, 10);
    if (errno || end == name + plen || *end != '-' || pid <= 0)
        return 0;
    return pid;
}

//  Removes, under dir (recursively), temp files left by processes that are not
//  running any more. Best effort: failures are logged, not returned.
static void
s_remove_stale_tmp (const char *dir, int depth)
{
    if (depth > 64)
        return;
    DIR *handle = opendir (dir);
    if (!handle)
        return;
    struct dirent *entry;
    while ((entry = readdir (handle))) {
        const char *name = entry->d_name;
        if (strcmp (name, ".") == 0 || strcmp (name, "..") == 0)
            continue;
        char path [PATH_MAX];
        int n = snprintf (path, sizeof path, "%s/%s", dir, name);
        if (n < 0 || (size_t) n >= sizeof path)
            continue;
        long pid = s_tmp_pid (name);
        if (pid >= 0) {
            bool dead = pid == 0 || (kill ((pid_t) pid, 0) != 0 && errno == ESRCH);
            if (dead) {
                if (unlink (path) == 0)
                    qv_info ("removed %s, left by an interrupted write", path);
                else
                    qv_warn ("cannot remove stale temp file %s: %s", path, strerror (errno));
            }
            continue;
        }
        if (name [0] == '.')
            continue;
        struct stat st;
        if (lstat (path, &st) == 0 && S_ISDIR (st.st_mode))
            s_remove_stale_tmp (path, depth + 1);
    }
    closedir (handle);
}

static void *
s_open_mode (const char *location, bool readonly)
{
    if (!location || !*location) {
        qv_err (QV_EINVAL, "data directory path is empty");
        return NULL;
    }
    char path [PATH_MAX];
    size_t len = strlen (location);
    if (len >= sizeof path) {
        qv_err (QV_EINVAL, "data directory path '%.64s...' is too long", location);
        return NULL;
    }
    memcpy (path, location, len + 1);
    while (len > 1 && path [len - 1] == '/')
        path [--len] = 0;
    if (!readonly && s_mkdirs (path))
        return NULL;
    char resolved [PATH_MAX];
    if (!realpath (path, resolved)) {
        qv_err (QV_EIO, "cannot resolve data directory %s: %s", path, strerror (errno));
        return NULL;
    }
    if (access (resolved, readonly ? R_OK | X_OK : R_OK | W_OK | X_OK) != 0) {
        qv_err (QV_EIO, "data directory %s is not accessible: %s", resolved, strerror (errno));
        return NULL;
    }
    s_fs_t *self = (s_fs_t *) calloc (1, sizeof (s_fs_t));
    if (!self || !(self->root = strdup (strcmp (resolved, "/") == 0 ? "" : resolved))) {
        free (self);
        qv_err (QV_ENOMEM, "out of memory opening %s", resolved);
        return NULL;
    }
    pthread_mutex_init (&self->lock_mutex, NULL);
    self->lock_fd = -1;
    atomic_init (&self->tmp_seq, 0);
    if (!readonly)
        s_remove_stale_tmp (resolved, 0);
    return self;
}

static void *
s_open (const char *location)
{
    return s_open_mode (location, false);
}

//  A reader beside the writer: creates nothing, and leaves the writer's temp files alone.
static void *
s_open_readonly (const char *location)
{
    return s_open_mode (location, true);
}

static void
s_close (void **impl_p)
{
    if (!impl_p || !*impl_p)
        return;
    s_fs_t *self = (s_fs_t *) *impl_p;
    if (self->lock_fd >= 0)
        close (self->lock_fd);      //  releases the flock
    pthread_mutex_destroy (&self->lock_mutex);
    free (self->root);
    free (self);
    *impl_p = NULL;
}

static int
s_lock (void *impl)
{
    s_fs_t *self = (s_fs_t *) impl;
    char path [PATH_MAX];
    int rc = s_path (self, QV_STORE_LOCK_NAME, path, sizeof path);
    if (rc)
        return rc;
    pthread_mutex_lock (&self->lock_mutex);
    if (self->lock_fd >= 0) {
        pthread_mutex_unlock (&self->lock_mutex);
        return 0;                   //  this store holds it already
    }
    int fd = open (path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) {
        rc = qv_err (QV_EIO, "cannot open lock file %s: %s", path, strerror (errno));
        goto cleanup;
    }
    if (flock (fd, LOCK_EX | LOCK_NB) != 0) {
        if (errno == EWOULDBLOCK) {
            char holder [32] = "";
            ssize_t n = pread (fd, holder, sizeof holder - 1, 0);
            holder [n > 0 ? n : 0] = 0;
            holder [strcspn (holder, "\n")] = 0;
            if (*holder)
                rc = qv_err (QV_EUNAVAIL, "data directory %s is locked by pid %s",
                             *self->root ? self->root : "/", holder);
            else
                rc = qv_err (QV_EUNAVAIL, "data directory %s is locked by another process",
                             *self->root ? self->root : "/");
        }
        else
            rc = qv_err (QV_EIO, "cannot lock %s: %s", path, strerror (errno));
        goto cleanup;
    }
    char pid [32];
    int len = snprintf (pid, sizeof pid, "%ld\n", (long) getpid ());
    if (ftruncate (fd, 0) != 0 || pwrite (fd, pid, (size_t) len, 0) != len) {
        rc = qv_err (QV_EIO, "cannot write pid to lock file %s: %s", path, strerror (errno));
        goto cleanup;
    }
    self->lock_fd = fd;
    fd = -1;
cleanup:
    if (fd >= 0)
        close (fd);
    pthread_mutex_unlock (&self->lock_mutex);
    return rc;
}

//  Writes size bytes fully, retrying on EINTR and short writes.
static int
s_write_all (int fd, const void *data, size_t size)
{
    const char *p = (const char *) data;
    while (size > 0) {
        ssize_t n = write (fd, p, size);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += n;
        size -= (size_t) n;
    }
    return 0;
}

static int
s_put (void *impl, const char *key, const void *data, size_t size)
{
    s_fs_t *self = (s_fs_t *) impl;
    char path [PATH_MAX];
    char dir [PATH_MAX];
    char tmp [PATH_MAX];
    int rc = s_path (self, key, path, sizeof path);
    if (rc)
        return rc;
    strcpy (dir, path);
    char *slash = strrchr (dir, '/');
    const char *name = path + (slash - dir) + 1;
    if (slash == dir)
        dir [1] = 0;
    else
        *slash = 0;
    if (strchr (key, '/')) {
        rc = s_mkdirs (dir);
        if (rc)
            return rc;
    }
    int fd = -1;
    for (int attempt = 0; fd < 0; attempt++) {
        uint64_t seq = atomic_fetch_add (&self->tmp_seq, 1);
        int n = snprintf (tmp, sizeof tmp, "%s/" QV_STORE_TMP_PREFIX "%ld-%ld-%llu-%s",
                          strcmp (dir, "/") == 0 ? "" : dir, (long) getpid (),
                          (long) gettid (), (unsigned long long) seq, name);
        if (n < 0 || (size_t) n >= sizeof tmp)
            return qv_err (QV_EINVAL, "path of object %s is too long", path);
        fd = open (tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        if (fd < 0 && (errno != EEXIST || attempt > 100))
            return qv_err (QV_EIO, "cannot create %s: %s", tmp, strerror (errno));
    }
    if (s_write_all (fd, data, size) != 0) {
        rc = qv_err (QV_EIO, "write of %zu bytes to %s failed: %s", size, path,
                     strerror (errno));
        goto cleanup;
    }
    if (fsync (fd) != 0) {
        rc = qv_err (QV_EIO, "fsync of %s failed: %s", path, strerror (errno));
        goto cleanup;
    }
    int close_rc = close (fd);
    fd = -1;
    if (close_rc != 0) {
        rc = qv_err (QV_EIO, "close of %s failed: %s", path, strerror (errno));
        goto cleanup;
    }
    if (rename (tmp, path) != 0) {
        rc = qv_err (QV_EIO, "cannot rename %s to %s: %s", tmp, path, strerror (errno));
        goto cleanup;
    }
    tmp [0] = 0;                    //  renamed: nothing to remove
    rc = s_fsync_dir (dir);
cleanup:
    if (fd >= 0)
        close (fd);
    if (tmp [0])
        unlink (tmp);
    return rc;
}

//  Opens ROOT/key for reading and returns its size. QV_ENOTFOUND if there is no such
//  object (a directory is not an object).
static int
s_open_object (s_fs_t *self, const char *key, char *path, size_t pathsize,
               int *fd_p, uint64_t *size_p)
{
    int rc = s_path (self, key, path, pathsize);
    if (rc)
        return rc;
    int fd = open (path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT || errno == ENOTDIR)
            return qv_err (QV_ENOTFOUND, "object %s does not exist", path);
        return qv_err (QV_EIO, "cannot open %s: %s", path, strerror (errno));
    }
    struct stat st;
    if (fstat (fd, &st) != 0) {
        rc = qv_err (QV_EIO, "cannot stat %s: %s", path, strerror (errno));
        close (fd);
        return rc;
    }
    if (!S_ISREG (st.st_mode)) {
        close (fd);
        return qv_err (QV_ENOTFOUND, "object %s does not exist (not a regular file)", path);
    }
    *fd_p = fd;
    *size_p = (uint64_t) st.st_size;
    return 0;
}

//  Reads size bytes at offset into a new buffer. Returns 0, or QV_EIO if the file
//  is shorter than fstat said (modified behind the store's back) or a read fails.
static int
s_read_at (int fd, const char *path, uint64_t offset, size_t size, void **data)
{
    char *buf = (char *) qv_store_buffer_new (size);
    if (!buf)
        return qv_err (QV_ENOMEM, "out of memory reading %zu bytes of %s", size, path);
    size_t done = 0;
    while (done < size) {
        ssize_t n = pread (fd, buf + done, size - done, (off_t) (offset + done));
        if (n < 0) {
            if (errno == EINTR)
                continue;
            int err = errno;
            free (buf);
            return qv_err (QV_EIO, "read of %s failed: %s", path, strerror (err));
        }
        if (n == 0) {
            free (buf);
            return qv_err (QV_EIO, "%s shrank while being read (%zu of %zu bytes)",
                           path, done, size);
        }
        done += (size_t) n;
    }
    *data = buf;
    return 0;
}

static int
s_get (void *impl, const char *key, void **data, size_t *size)
{
    char path [PATH_MAX];
    int fd;
    uint64_t file_size;
    int rc = s_open_object ((s_fs_t *) impl, key, path, sizeof path, &fd, &file_size);
    if (rc)
        return rc;
    if (file_size > SIZE_MAX)
        rc = qv_err (QV_ENOMEM, "object %s is too large to read whole", path);
    else
        rc = s_read_at (fd, path, 0, (size_t) file_size, data);
    close (fd);
    if (rc == 0)
        *size = (size_t) file_size;
    return rc;
}

static int
s_get_range (void *impl, const char *key, uint64_t offset, size_t size,
             void **data, size_t *got)
{
    char path [PATH_MAX];
    int fd;
    uint64_t file_size;
    int rc = s_open_object ((s_fs_t *) impl, key, path, sizeof path, &fd, &file_size);
    if (rc)
        return rc;
    uint64_t avail = offset < file_size ? file_size - offset : 0;
    size_t want = avail < size ? (size_t) avail : size;
    rc = s_read_at (fd, path, offset, want, data);
    close (fd);
    if (rc == 0)
        *got = want;
    return rc;
}

//  Appends to keys every object under ROOT/dir_key (recursively) whose key starts
//  with prefix. dir_key is "" for the root, else a directory key ending in '/'.
static int
s_list_dir (s_fs_t *self, const char *dir_key, const char *prefix, zlist_t *keys,
            int depth)
{
    char dir [PATH_MAX];
    int n = snprintf (dir, sizeof dir, "%s/%s", self->root, dir_key);
    if (n < 0 || (size_t) n >= sizeof dir)
        return qv_err (QV_EIO, "path of %s under %s is too long", dir_key, self->root);
    if (depth > 128)
        return qv_err (QV_EIO, "directory %s is nested too deeply", dir);
    DIR *handle = opendir (dir);
    if (!handle) {
        if (errno == ENOENT || errno == ENOTDIR)
            return 0;               //  nothing under this prefix
        return qv_err (QV_EIO, "cannot list %s: %s", dir, strerror (errno));
    }
    size_t prefix_len = strlen (prefix);
    int rc = 0;
    struct dirent *entry;
    while (true) {
        errno = 0;
        entry = readdir (handle);
        if (!entry) {
            if (errno)
                rc = qv_err (QV_EIO, "cannot list %s: %s", dir, strerror (errno));
            break;
        }
        const char *name = entry->d_name;
        //  Temp files, "." and "..", and anything not a valid key segment are skipped
        if (name [0] == '.' || strlen (name) > QV_STORE_SEGMENT_MAX
        ||  name [strspn (name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                "0123456789._-")] != 0)
            continue;
        if (depth == 0 && strcmp (name, QV_STORE_LOCK_NAME) == 0)
            continue;
        char key [QV_STORE_KEY_MAX + QV_STORE_SEGMENT_MAX + 2];
        n = snprintf (key, sizeof key, "%s%s", dir_key, name);
        if (n < 0 || (size_t) n > QV_STORE_KEY_MAX)
            continue;               //  not addressable as a key
        //  Directory or file? d_type is DT_UNKNOWN on some filesystems.
        bool is_dir = entry->d_type == DT_DIR;
        bool is_reg = entry->d_type == DT_REG;
        if (entry->d_type == DT_UNKNOWN || entry->d_type == DT_LNK) {
            char path [PATH_MAX];
            struct stat st;
            n = snprintf (path, sizeof path, "%s%s", dir, name);
            if (n < 0 || (size_t) n >= sizeof path || stat (path, &st) != 0)
                continue;
            is_dir = S_ISDIR (st.st_mode);
            is_reg = S_ISREG (st.st_mode);
        }
        size_t key_len = strlen (key);
        if (is_dir) {
            //  Descend only if keys below can match: the prefix and key/ must agree
            //  over the shorter of the two
            key [key_len] = '/';
            key [key_len + 1] = 0;
            size_t cmp = key_len + 1 < prefix_len ? key_len + 1 : prefix_len;
            if (memcmp (key, prefix, cmp) == 0) {
                rc = s_list_dir (self, key, prefix, keys, depth + 1);
                if (rc)
                    break;
            }
        }
        else
        if (is_reg && key_len >= prefix_len && memcmp (key, prefix, prefix_len) == 0) {
            if (zlist_append (keys, key) != 0) {
                rc = qv_err (QV_ENOMEM, "out of memory listing %s", dir);
                break;
            }
        }
    }
    closedir (handle);
    return rc;
}

static int
s_list (void *impl, const char *prefix, zlist_t *keys)
{
    //  Start at the deepest directory the prefix names in full
    char dir_key [QV_STORE_KEY_MAX + 2];
    const char *slash = strrchr (prefix, '/');
    size_t len = slash ? (size_t) (slash - prefix) + 1 : 0;
    memcpy (dir_key, prefix, len);
    dir_key [len] = 0;
    int depth = 0;
    for (size_t i = 0; i < len; i++)
        depth += dir_key [i] == '/';
    return s_list_dir ((s_fs_t *) impl, dir_key, prefix, keys, depth);
}

static int
s_delete (void *impl, const char *key)
{
    s_fs_t *self = (s_fs_t *) impl;
    char path [PATH_MAX];
    int rc = s_path (self, key, path, sizeof path);
    if (rc)
        return rc;
    if (unlink (path) != 0) {
        if (errno == ENOENT || errno == ENOTDIR)
            return 0;
        if (errno == EISDIR || errno == EPERM) {
            struct stat st;
            if (lstat (path, &st) == 0 && S_ISDIR (st.st_mode))
                return 0;           //  a directory is not an object
        }
        return qv_err (QV_EIO, "cannot delete %s: %s", path, strerror (errno));
    }
    //  Make the removal durable, so a deleted object does not come back after a crash
    char *slash = strrchr (path, '/');
    if (slash == path)
        return s_fsync_dir ("/");
    *slash = 0;
    return s_fsync_dir (path);
}

static void
s_describe (void *impl, const char *key, char *out, size_t outsize)
{
    s_fs_t *self = (s_fs_t *) impl;
    snprintf (out, outsize, "%s/%s", self->root, key);
}

const qv_store_backend_t qv_store_fs_backend = {
    .name = "fs",
    .open = s_open,
    .open_readonly = s_open_readonly,
    .close = s_close,
    .lock = s_lock,
    .put = s_put,
    .get = s_get,
    .get_range = s_get_range,
    .list = s_list,
    .delete = s_delete,
    .describe = s_describe,
};
