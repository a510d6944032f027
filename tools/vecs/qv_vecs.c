//  Readers and writers for .fvecs / .ivecs benchmark files.
#include "qv_vecs.h"
#include "qv_rc.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void *
qv_vecs_read (const char *path, uint32_t max_rows, uint32_t *dim, uint32_t *rows)
{
    void *out = NULL;
    FILE *file = fopen (path, "rb");
    if (!file) {
        qv_err (QV_EIO, "cannot open %s: %s", path, strerror (errno));
        return NULL;
    }
    int32_t d;
    if (fread (&d, 4, 1, file) != 1 || d <= 0 || d > 65536) {
        qv_err (QV_ECORRUPT, "%s: bad or missing first dimension", path);
        goto cleanup;
    }
    if (fseek (file, 0, SEEK_END) != 0) {
        qv_err (QV_EIO, "cannot seek %s", path);
        goto cleanup;
    }
    long size = ftell (file);
    size_t row_bytes = 4 + (size_t) d * 4;
    if (size < 0 || (size_t) size % row_bytes != 0) {
        qv_err (QV_ECORRUPT, "%s: %ld bytes is not a whole number of %d-dim vectors", path, size, d);
        goto cleanup;
    }
    size_t n = (size_t) size / row_bytes;
    if (n > UINT32_MAX - 1) {
        qv_err (QV_ECORRUPT, "%s: too many vectors", path);
        goto cleanup;
    }
    if (max_rows && n > max_rows)
        n = max_rows;
    rewind (file);
    out = malloc (n * (size_t) d * 4 + 1);
    if (!out) {
        qv_err (QV_ENOMEM, "out of memory for %s", path);
        goto cleanup;
    }
    for (size_t i = 0; i < n; i++) {
        int32_t rd;
        if (fread (&rd, 4, 1, file) != 1 || rd != d
        ||  fread ((char *) out + i * (size_t) d * 4, 4, (size_t) d, file) != (size_t) d) {
            qv_err (QV_ECORRUPT, "%s: vector %zu is short or has another dimension", path, i);
            free (out);
            out = NULL;
            goto cleanup;
        }
    }
    *dim = (uint32_t) d;
    *rows = (uint32_t) n;
cleanup:
    fclose (file);
    return out;
}

int
qv_vecs_write (const char *path, const void *data, uint32_t dim, uint32_t rows)
{
    FILE *file = fopen (path, "wb");
    if (!file)
        return qv_err (QV_EIO, "cannot create %s: %s", path, strerror (errno));
    int32_t d = (int32_t) dim;
    for (uint32_t i = 0; i < rows; i++)
        if (fwrite (&d, 4, 1, file) != 1
        ||  fwrite ((const char *) data + (size_t) i * dim * 4, 4, dim, file) != dim) {
            fclose (file);
            return qv_err (QV_EIO, "cannot write %s", path);
        }
    if (fclose (file) != 0)
        return qv_err (QV_EIO, "cannot write %s", path);
    return 0;
}
