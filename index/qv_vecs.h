//  Readers of the TEXMEX vector files used by ANN benchmarks: .fvecs (float32) and
//  .ivecs (int32). Each row is a little-endian int32 dimension followed by that many
//  4-byte values; every row of a file has the same dimension.
#ifndef QV_VECS_H_INCLUDED
#define QV_VECS_H_INCLUDED

#include <stddef.h>
#include <stdint.h>

typedef struct _qv_vecs_t qv_vecs_t;

//  Opens path and reads the first row's dimension. NULL on failure with the reason
//  (missing file, empty file, a dimension outside 1..65536, a size that is not a whole
//  number of rows) in qv_err_msg ().
qv_vecs_t *
    qv_vecs_open (const char *path);
void
    qv_vecs_destroy (qv_vecs_t **self_p);
uint32_t
    qv_vecs_dim (qv_vecs_t *self);
//  Number of rows in the file.
size_t
    qv_vecs_count (qv_vecs_t *self);

//  Reads up to max_rows next rows into out (max_rows * dim 4-byte values, without
//  the per-row dimension). Returns the number of rows read (0 at the end), or
//  QV_ECORRUPT (a row whose dimension differs, naming the file and row) or QV_EIO.
long
    qv_vecs_read (qv_vecs_t *self, void *out, size_t max_rows);

//  Loads the first max_rows rows (all if max_rows is 0) of path into one malloc'd
//  array of n * dim 4-byte values (float for .fvecs, int32 for .ivecs); *n_p and
//  *dim_p set. NULL on failure, reason in qv_err_msg ().
void *
    qv_vecs_load (const char *path, size_t max_rows, size_t *n_p, uint32_t *dim_p);

#endif
