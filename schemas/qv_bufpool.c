//  The pool of big buffers: one free list per power-of-two size class, under one mutex
//  (a get or a put is a few instructions beside the copy of a few hundred KB it saves
//  the page faults of).
#include "qv_bufpool.h"

#include <malloc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

//  Under ASan a kept buffer is poisoned, so a use after it was given back is still
//  reported (as a use of poisoned memory) though the memory is not freed.
#if defined (__SANITIZE_ADDRESS__)
#   include <sanitizer/asan_interface.h>
#   define S_POISON(p, n)   ASAN_POISON_MEMORY_REGION (p, n)
#   define S_UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION (p, n)
#else
#   define S_POISON(p, n)   ((void) (p), (void) (n))
#   define S_UNPOISON(p, n) ((void) (p), (void) (n))
#endif

#define S_CLASSES 9                 //  64 KiB, 128 KiB, ... 16 MiB
#define S_PER_CLASS 32              //  buffers kept per class at most

static pthread_mutex_t s_lock = PTHREAD_MUTEX_INITIALIZER;
static void *s_kept [S_CLASSES][S_PER_CLASS];
static int s_nkept [S_CLASSES];
static size_t s_bytes;              //  kept in all
static atomic_int s_give_back;      //  drains trim malloc too

//  The class of a buffer of size bytes (QV_BUFPOOL_MIN <= size <= QV_BUFPOOL_MAX).
static int
s_class (size_t size)
{
    int k = 0;
    while (((size_t) QV_BUFPOOL_MIN << k) < size)
        k++;
    return k;
}

void *
qv_bufpool_get (size_t size, size_t *cap_p)
{
    *cap_p = 0;
    if (size < QV_BUFPOOL_MIN || size > QV_BUFPOOL_MAX)
        return calloc (size ? size : 1, 1);
    int k = s_class (size);
    size_t cap = (size_t) QV_BUFPOOL_MIN << k;
    void *buf = NULL;
    pthread_mutex_lock (&s_lock);
    if (s_nkept [k] > 0) {
        buf = s_kept [k][--s_nkept [k]];
        s_bytes -= cap;
    }
    pthread_mutex_unlock (&s_lock);
    if (buf) {
        S_UNPOISON (buf, cap);
        memset (buf, 0, size);      //  mapped pages: no fault, unlike calloc's fresh ones
    }
    else
        buf = calloc (cap, 1);
    if (buf)
        *cap_p = cap;
    return buf;
}

void
qv_bufpool_put (void *buf, size_t cap)
{
    if (!buf)
        return;
    if (cap >= QV_BUFPOOL_MIN && cap <= QV_BUFPOOL_MAX) {
        int k = s_class (cap);
        pthread_mutex_lock (&s_lock);
        bool keep = s_nkept [k] < S_PER_CLASS && s_bytes + cap <= QV_BUFPOOL_KEEP;
        if (keep) {
            S_POISON (buf, cap);
            s_kept [k][s_nkept [k]++] = buf;
            s_bytes += cap;
        }
        pthread_mutex_unlock (&s_lock);
        if (keep)
            return;
    }
    free (buf);
}

size_t
qv_bufpool_drain (void)
{
    pthread_mutex_lock (&s_lock);
    size_t bytes = s_bytes;
    for (int k = 0; k < S_CLASSES; k++) {
        size_t cap = (size_t) QV_BUFPOOL_MIN << k;
        while (s_nkept [k] > 0) {
            void *buf = s_kept [k][--s_nkept [k]];
            S_UNPOISON (buf, cap);
            free (buf);
        }
    }
    s_bytes = 0;
    pthread_mutex_unlock (&s_lock);
    qv_bufpool_give_back ();
    return bytes;
}

void
qv_bufpool_give_back (void)
{
    if (atomic_load (&s_give_back))
        malloc_trim (0);
}

void
qv_bufpool_set_give_back (int give_back)
{
    atomic_store (&s_give_back, give_back);
}

size_t
qv_bufpool_kept (void)
{
    pthread_mutex_lock (&s_lock);
    size_t bytes = s_bytes;
    pthread_mutex_unlock (&s_lock);
    return bytes;
}
