//  Big arrays backed by transparent huge pages. An array of 2 MiB or more is aligned
//  to 2 MiB and advised MADV_HUGEPAGE, so that filling it takes one page fault per
//  2 MiB instead of per 4 KiB, and that random reads across it (a graph index's
//  records) miss the TLB far less: 64 MB of 4 KiB pages is 16k pages, beyond any
//  TLB, and every such read pays a page walk. Advice only: without THP (or with it
//  off) the memory works the same. QV_HUGEMEM=0 in the environment leaves the advice
//  out (4 KiB pages, as before; for comparisons).
#ifndef QV_HUGEMEM_H_INCLUDED
#define QV_HUGEMEM_H_INCLUDED

#include <stddef.h>

#define QV_HUGEMEM_PAGE ((size_t) 2 << 20)

//  size bytes (at least 1), uninitialised, aligned to 64 bytes (to 2 MiB from
//  QV_HUGEMEM_PAGE up), freed with free(). NULL if out of memory.
void *
    qv_hugemem_alloc (size_t size);

//  Gives the whole pages inside [p, p + size), a malloc'd block about to be freed,
//  back to the kernel (MADV_DONTNEED). A big block freed into a thread's malloc arena
//  stays resident until malloc reuses it (glibc trims a thread arena's top only past
//  a threshold it raises up to 64 MB): an index object decoded and freed at a
//  restart left 45 MB resident per 1M rows, measured. Blocks under 1 MiB are left
//  alone. The pages read as zeros if malloc hands the memory out again, as fresh
//  pages do; the block's first and last partial pages (where malloc keeps its
//  headers) are not touched.
void
    qv_hugemem_release (void *p, size_t size);

#endif
