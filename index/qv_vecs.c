//  Readers of .fvecs / .ivecs files (see qv_vecs.h).
#include "qv_vecs.h"
#include "qv_rc.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define S_DIM_MAX 65536

struct _qv_vecs_t {
    FILE *file;
    char *path;
    uint32_t dim;
    size_t count;
    size_t next;                    //  index of the next row to read
    int32_t *row;                   //  one raw row: dimension + values
};

qv_vecs_t *
qv_vecs_open (const char *path)
{
    FILE *file = fopen (path, "rb");
    if (!file) {
        qv_err (QV_EIO, "cannot open %s: %s", path, strerror (errno));
        return NULL;
    }
    struct stat st;
    int32_t dim = 0;
    if (fstat (fileno (file), &st) || fread (&dim, 4, 1, file) != 1) {
        qv_err (QV_ECORRUPT, "%s is empty or unreadable: not a .fvecs/.ivecs file", path);
        fclose (file);
        return NULL;
    }
    size_t row_bytes = 4 + 4 * (size_t) dim;
    if (dim < 1 || dim > S_DIM_MAX || (size_t) st.st_size % row_bytes) {
        qv_err (QV_ECORRUPT, "%s: first row declares dimension %d and the file has %lld bytes, "
                "not a whole number of rows: not a .fvecs/.ivecs file or truncated",
                path, dim, (long long) st.st_size);
        fclose (file);
        return NULL;
    }
    rewind (file);
    qv_vecs_t *self = calloc (1, sizeof *self);
    if (self) {
        self->path = strdup (path);
        self->row = malloc (row_bytes);
    }
    if (!self || !self->path || !self->row) {
        fclose (file);
        if (self) {
            free (self->path);
            free (self->row);
            free (self);
        }
        qv_err (QV_ENOMEM, "out of memory");
        return NULL;
    }
    self->file = file;
    self->dim = (uint32_t) dim;
    self->count = (size_t) st.st_size / row_bytes;
    return self;
}

void
qv_vecs_destroy (qv_vecs_t **self_p)
{
    qv_vecs_t *self = *self_p;
    if (!self)
        return;
    fclose (self->file);
    free (self->path);
    free (self->row);
    free (self);
    *self_p = NULL;
}

uint32_t
qv_vecs_dim (qv_vecs_t *self)
{
    return self->dim;
}

size_t
qv_vecs_count (qv_vecs_t *self)
{
    return self->count;
}

long
qv_vecs_read (qv_vecs_t *self, void *out, size_t max_rows)
{
    size_t row_bytes = 4 + 4 * (size_t) self->dim;
    size_t done = 0;
    while (done < max_rows && self->next < self->count) {
        if (fread (self->row, row_bytes, 1, self->file) != 1)
            return qv_err (QV_EIO, "%s: cannot read row %zu: %s", self->path, self->next,
                           ferror (self->file) ? strerror (errno) : "unexpected end of file");
        if (self->row [0] != (int32_t) self->dim)
            return qv_err (QV_ECORRUPT, "%s: row %zu has dimension %d, the first row %u",
                           self->path, self->next, self->row [0], self->dim);
        memcpy ((char *) out + done * 4 * self->dim, self->row + 1, 4 * (size_t) self->dim);
        done++;
        self->next++;
    }
    return (long) done;
}

void *
qv_vecs_load (const char *path, size_t max_rows, size_t *n_p, uint32_t *dim_p)
{
    qv_vecs_t *self = qv_vecs_open (path);
    if (!self)
        return NULL;
    size_t n = self->count;
    if (max_rows && max_rows < n)
        n = max_rows;
    void *data = malloc ((n ? n : 1) * 4 * (size_t) self->dim);
    if (!data) {
        qv_err (QV_ENOMEM, "out of memory loading %zu rows of %s", n, path);
        qv_vecs_destroy (&self);
        return NULL;
    }
    long got = qv_vecs_read (self, data, n);
    if (got < 0 || (size_t) got != n) {
        free (data);
        data = NULL;
    }
    else {
        *n_p = n;
        *dim_p = self->dim;
    }
    qv_vecs_destroy (&self);
    return data;
}
