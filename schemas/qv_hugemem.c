//  Huge-page backed arrays (see qv_hugemem.h).
#include "qv_hugemem.h"

#include <stdlib.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>

void *
qv_hugemem_alloc (size_t size)
{
    if (size < QV_HUGEMEM_PAGE)
        //  aligned_alloc takes a multiple of the alignment
        return aligned_alloc (64, size? (size + 63) / 64 * 64: 64);
    void *buf = NULL;
    if (posix_memalign (&buf, QV_HUGEMEM_PAGE, size))
        return NULL;
    const char *env = getenv ("QV_HUGEMEM");
    if (!env || strcmp (env, "0") != 0)
        (void) madvise (buf, size & ~(QV_HUGEMEM_PAGE - 1), MADV_HUGEPAGE);
    return buf;
}

void
qv_hugemem_release (void *p, size_t size)
{
    if (!p || size < ((size_t) 1 << 20))
        return;
    size_t page = (size_t) sysconf (_SC_PAGESIZE);
    uintptr_t from = ((uintptr_t) p + page - 1) & ~(uintptr_t) (page - 1),
              to = ((uintptr_t) p + size) & ~(uintptr_t) (page - 1);
    if (to > from)
        (void) madvise ((void *) from, to - from, MADV_DONTNEED);
}
