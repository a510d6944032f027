//  Readers for the .fvecs / .ivecs files of ANN benchmarks (each vector: int32 dim,
//  then dim float32 or int32 values), used by tests and tools.
#ifndef QV_VECS_H_INCLUDED
#define QV_VECS_H_INCLUDED

#include <stddef.h>
#include <stdint.h>

//  Reads up to max_rows vectors (0: all) of a .fvecs (or .ivecs: values are int32 and
//  returned in the same buffer) file. Returns a malloc'd row-major array and sets
//  *dim and *rows; NULL with QV_EIO (cannot read) or QV_ECORRUPT (dims differ, size
//  not a whole number of vectors, dim 0 or above 65536) recorded.
void *
    qv_vecs_read (const char *path, uint32_t max_rows, uint32_t *dim, uint32_t *rows);

//  Writes rows vectors of dim 4-byte values as .fvecs / .ivecs. Returns 0 or QV_EIO.
int
    qv_vecs_write (const char *path, const void *data, uint32_t dim, uint32_t rows);

#endif
