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
//  As qv_segment_load, but takes data (malloc'd, as qv_store_get returns it) and
//  frees it, or keeps it as the memory of the segment's largest fixed-width column
//  (its vectors): their bytes are moved to the front of the buffer instead of being
//  copied into new memory. A start loading hundreds of MB so touches half the fresh
//  pages, which on a VM is most of what a load costs.
int
    qv_segment_load_owned (const char *name, void *data, size_t size, qv_segment_t **out);

#endif
