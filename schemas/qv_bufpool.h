//  A process-wide pool of big short-lived buffers (an insert request's vector column,
//  a few hundred KB to a few MB each), kept for the next request instead of freed.
//  On the 2-vCPU development VM the first touch of fresh memory is what a copy into a
//  new buffer costs most (the kernel clears every page it maps): glibc hands such
//  sizes out by mmap, or trims them off a thread arena's heap once freed, so every
//  request paid its pages again. A kept buffer's pages stay mapped.
#ifndef QV_BUFPOOL_H_INCLUDED
#define QV_BUFPOOL_H_INCLUDED

#include <stddef.h>

//  Buffers smaller than this are left to malloc (its free lists keep them).
#define QV_BUFPOOL_MIN (64u << 10)
//  ... and larger than this too (rare, and too much to keep).
#define QV_BUFPOOL_MAX (16u << 20)
//  At most this many bytes are kept in all.
#define QV_BUFPOOL_KEEP (64u << 20)

//  A buffer of at least size bytes, zeroed (as calloc), and its capacity in *cap_p:
//  a kept one of the right size class if there is one, else a new one. *cap_p is 0
//  for a size outside [QV_BUFPOOL_MIN, QV_BUFPOOL_MAX] (an ordinary calloc: free
//  it, or hand it to qv_bufpool_put with cap 0, which frees it). NULL when out of
//  memory. Thread-safe.
void *
    qv_bufpool_get (size_t size, size_t *cap_p);

//  Gives back a buffer of qv_bufpool_get with the capacity it told: kept for the next
//  get if the pool has room, else freed. Thread-safe; any thread. NULL is ignored.
void
    qv_bufpool_put (void *buf, size_t cap);

//  Frees every kept buffer (the insert path idles, or has handed its rows on: a flush),
//  giving their memory back to the system; later gets map fresh buffers again.
//  Returns the bytes freed. Thread-safe.
size_t
    qv_bufpool_drain (void);

//  With give_back set (quiver serve sets it when it runs on one malloc arena, see
//  tools/quiver.c), each drain also gives malloc's free memory back to the system
//  (malloc_trim): the big request buffers the inserts freed would otherwise stay
//  resident (about 27 MB after a 1M-row fill, measured). Without one arena it would
//  not help: glibc trims only the main arena's top, not the threads' arenas'.
void
    qv_bufpool_set_give_back (int give_back);

//  With give_back set, gives malloc's free memory back to the system (what a drain
//  does after freeing the pool; the index builder calls it after each build, whose
//  scratch and serialized object are freed then). Any thread; it holds malloc's lock
//  for its walk, a few milliseconds.
void
    qv_bufpool_give_back (void);

//  Bytes the pool keeps now (for stats and tests).
size_t
    qv_bufpool_kept (void);

#endif
