//  qvctl's inputs and outputs: vector files (.fvecs, .bvecs, .npy), inline vectors,
//  JSON-lines rows written as msgpack, and decoded replies printed as JSON.
#ifndef QV_CTL_IO_H_INCLUDED
#define QV_CTL_IO_H_INCLUDED

#include "qv_codec.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

//  Reads up to max_rows (0: all) float vectors from path, by its extension: .fvecs,
//  .bvecs (uint8 values, converted), .npy (a 2-D little-endian float32 array, C order).
//  Returns a malloc'd row-major array and sets *dim and *rows; NULL with the reason
//  (naming the file and what is wrong) in qv_err_msg ().
float *
    qv_ctl_vectors_read (const char *path, uint32_t max_rows, uint32_t *dim, uint32_t *rows);

//  Parses one vector given on the command line: "[0.1, 0.2]" or "0.1,0.2". Returns a
//  malloc'd array and sets *dim; NULL (reason in qv_err_msg ()) if it is not one.
float *
    qv_ctl_vector_parse (const char *text, uint32_t *dim);

//  True if path names a file of rows as JSON lines (.jsonl, .ndjson, or "-": stdin).
bool
    qv_ctl_is_jsonl (const char *path);

//  The rows of a JSON-lines file ("-": stdin), one JSON object a line (blank lines
//  skipped), each already encoded as one msgpack map. Returns 0 and sets *rows (malloc'd
//  array of malloc'd buffers, *sizes alike) and *count; or -1 with the reason (file and
//  line) in qv_err_msg (). Free with qv_ctl_rows_free.
int
    qv_ctl_jsonl_read (const char *path, void ***rows, size_t **sizes, size_t *count);

void
    qv_ctl_rows_free (void **rows, size_t *sizes, size_t count);

//  Prints a decoded value as JSON (a bin as a string saying its size, NaN as null).
void
    qv_ctl_print_json (FILE *out, const qv_val_t *v);

//  Prints a string as a JSON string literal.
void
    qv_ctl_print_str (FILE *out, const char *s, size_t n);

#endif
