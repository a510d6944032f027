//  The segment object format (a stored format, beside the WAL's and the manifest's).
#ifndef QV_SEGFILE_H_INCLUDED
#define QV_SEGFILE_H_INCLUDED

#include "qv_segment.h"

//  Segment object: serialise (sealed rows and their insert timestamps; deletes are
//  kept in manifests) and load. load returns QV_ECORRUPT naming the object (or
//  QV_EINVAL for an envelope of a format version newer than this build reads).
//  save returns the object (malloc'd: the caller frees it) and its size in *size, or
//  NULL when out of memory.
void *
    qv_segment_save (qv_segment_t *self, size_t *size);
int
    qv_segment_load (const char *name, const void *data, size_t size, qv_segment_t **out);

#endif
