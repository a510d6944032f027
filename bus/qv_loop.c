//  An actor's reactor that asks a socket for its events only when it may have
//  changed: see qv_loop.h.
#include "qv_loop.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>

typedef struct {
    zsock_t *sock;
    qv_loop_reader_fn *handler;
    void *arg;
    int fd;                     //  its ZMQ_FD
    bool ask_always;            //  asked after every handler (others may send on it)
    bool ask;                   //  to be asked for ZMQ_EVENTS before the loop blocks
    bool ready;                 //  its last ask said POLLIN: serve it
    bool dead;                  //  ended: never touched again, dropped after the turn
} s_reader_t;

typedef struct {
    int id;
    size_t delay;
    size_t times;               //  left to fire; 0: forever
    qv_loop_timer_fn *handler;
    void *arg;
    int64_t when;               //  zclock_mono () when it is due
    bool dead;
} s_timer_t;

struct _qv_loop_t {
    s_reader_t *readers;
    size_t nreaders;
    size_t readers_max;
    s_timer_t *timers;
    size_t ntimers;
    size_t timers_max;
    struct pollfd *pollset;     //  one per reader, in the readers' order
    size_t pollset_max;
    int last_timer_id;
    bool nonstop;
    bool dead_entries;          //  a reader or timer ended: compact after the turn
};

qv_loop_t *
qv_loop_new (void)
{
    return calloc (1, sizeof (qv_loop_t));
}

void
qv_loop_destroy (qv_loop_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    qv_loop_t *self = *self_p;
    free (self->readers);
    free (self->timers);
    free (self->pollset);
    free (self);
    *self_p = NULL;
}

//  Grows an array of elements of size size to hold one more: 0, or -1.
static int
s_grow (void **array, size_t count, size_t *max, size_t size)
{
    if (count < *max)
        return 0;
    size_t new_max = *max ? *max * 2 : 8;
    void *grown = realloc (*array, new_max * size);
    if (!grown)
        return -1;
    *array = grown;
    *max = new_max;
    return 0;
}

static s_reader_t *
s_reader_find (qv_loop_t *self, zsock_t *sock)
{
    for (size_t i = 0; i < self->nreaders; i++)
        if (!self->readers [i].dead && self->readers [i].sock == sock)
            return &self->readers [i];
    return NULL;
}

int
qv_loop_reader (qv_loop_t *self, zsock_t *sock, qv_loop_reader_fn handler, void *arg)
{
    assert (self);
    assert (sock);
    qv_loop_reader_end (self, sock);
    int fd = zsock_fd (sock);
    if (fd < 0 || s_grow ((void **) &self->readers, self->nreaders, &self->readers_max,
                          sizeof (s_reader_t)) != 0)
        return -1;
    int type = zsock_type (sock);
    //  A new reader may already hold messages its fd said nothing of: asked at once
    self->readers [self->nreaders++] = (s_reader_t) {
        .sock = sock, .handler = handler, .arg = arg, .fd = fd,
        .ask_always = type != ZMQ_PULL && type != ZMQ_SUB, .ask = true
    };
    return 0;
}

void
qv_loop_reader_set_private (qv_loop_t *self, zsock_t *sock)
{
    assert (self);
    s_reader_t *reader = s_reader_find (self, sock);
    if (reader)
        reader->ask_always = false;
}

void
qv_loop_reader_end (qv_loop_t *self, zsock_t *sock)
{
    assert (self);
    s_reader_t *reader = s_reader_find (self, sock);
    if (reader) {
        //  Marked, not removed: the turn running may be walking the array
        reader->dead = true;
        self->dead_entries = true;
    }
}

int
qv_loop_timer (qv_loop_t *self, size_t delay, size_t times, qv_loop_timer_fn handler,
               void *arg)
{
    assert (self);
    if (s_grow ((void **) &self->timers, self->ntimers, &self->timers_max,
                sizeof (s_timer_t)) != 0)
        return -1;
    int id = ++self->last_timer_id;
    self->timers [self->ntimers++] = (s_timer_t) {
        .id = id, .delay = delay, .times = times, .handler = handler, .arg = arg,
        .when = zclock_mono () + (int64_t) delay
    };
    return id;
}

void
qv_loop_timer_end (qv_loop_t *self, int timer_id)
{
    assert (self);
    for (size_t i = 0; i < self->ntimers; i++)
        if (self->timers [i].id == timer_id && !self->timers [i].dead) {
            self->timers [i].dead = true;
            self->dead_entries = true;
        }
}

void
qv_loop_set_nonstop (qv_loop_t *self, bool nonstop)
{
    assert (self);
    self->nonstop = nonstop;
}

//  Drops the readers and timers that handlers ended, once no turn walks the arrays.
static void
s_compact (qv_loop_t *self)
{
    size_t kept = 0;
    for (size_t i = 0; i < self->nreaders; i++)
        if (!self->readers [i].dead)
            self->readers [kept++] = self->readers [i];
    self->nreaders = kept;
    kept = 0;
    for (size_t i = 0; i < self->ntimers; i++)
        if (!self->timers [i].dead)
            self->timers [kept++] = self->timers [i];
    self->ntimers = kept;
    self->dead_entries = false;
}

//  Asks reader i for ZMQ_EVENTS (which also makes libzmq process the socket's
//  commands, resetting its fd). 0, or -1 if the ZeroMQ context has ended.
static int
s_ask (qv_loop_t *self, size_t i)
{
    s_reader_t *reader = &self->readers [i];
    int events = 0;
    size_t size = sizeof events;
    reader->ask = false;
    if (zmq_getsockopt (zsock_resolve (reader->sock), ZMQ_EVENTS, &events, &size) != 0) {
        reader->ready = false;
        return errno == ETERM ? -1 : 0;
    }
    reader->ready = (events & ZMQ_POLLIN) != 0;
    return 0;
}

//  After a handler or timer ran: the readers it may have sent on or read from are
//  asked before the loop blocks.
static void
s_touched (qv_loop_t *self)
{
    for (size_t i = 0; i < self->nreaders; i++)
        if (self->readers [i].ask_always)
            self->readers [i].ask = true;
}

//  Milliseconds poll() may block: until the first timer is due, 0 if a reader is
//  ready, -1 (forever) with neither.
static int
s_timeout (qv_loop_t *self)
{
    for (size_t i = 0; i < self->nreaders; i++)
        if (self->readers [i].ready && !self->readers [i].dead)
            return 0;
    int64_t first = -1;
    for (size_t i = 0; i < self->ntimers; i++)
        if (!self->timers [i].dead && (first < 0 || self->timers [i].when < first))
            first = self->timers [i].when;
    if (first < 0)
        return -1;
    int64_t wait = first - zclock_mono ();
    return wait < 0 ? 0 : wait > 3600000 ? 3600000 : (int) wait;
}

//  Fires the due timers, in the order they were made. 0, or -1 if one ended the loop.
static int
s_fire_timers (qv_loop_t *self)
{
    int64_t now = zclock_mono ();
    size_t ntimers = self->ntimers;     //  timers made by a handler wait a turn
    for (size_t i = 0; i < ntimers; i++) {
        s_timer_t *timer = &self->timers [i];
        if (timer->dead || now < timer->when)
            continue;
        if (timer->times && --timer->times == 0) {
            timer->dead = true;
            self->dead_entries = true;
        }
        else
            timer->when += (int64_t) timer->delay;
        int rc = timer->handler (self, timer->id, timer->arg);
        s_touched (self);
        if (rc == -1)
            return -1;
    }
    return 0;
}

//  Serves each ready reader once, in order. 0, or -1 if a handler ended the loop.
static int
s_serve_readers (qv_loop_t *self)
{
    size_t nreaders = self->nreaders;   //  readers added by a handler are asked first
    for (size_t i = 0; i < nreaders; i++) {
        if (self->readers [i].dead || !self->readers [i].ready)
            continue;
        self->readers [i].ready = false;
        //  The handler may add readers: self->readers may move, so no pointer is kept
        int rc = self->readers [i].handler (self, self->readers [i].sock,
                                            self->readers [i].arg);
        self->readers [i].ask = true;
        s_touched (self);
        if (rc == -1)
            return -1;
    }
    return 0;
}

int
qv_loop_start (qv_loop_t *self)
{
    assert (self);
    while (!zsys_interrupted || self->nonstop) {
        //  The rule: every socket touched since its last ask is asked before blocking
        for (size_t i = 0; i < self->nreaders; i++)
            if (self->readers [i].ask && s_ask (self, i) != 0)
                return 0;
        int timeout = s_timeout (self);
        if (s_grow ((void **) &self->pollset, self->nreaders, &self->pollset_max,
                    sizeof (struct pollfd)) != 0)
            return -1;
        size_t npoll = self->nreaders;
        for (size_t i = 0; i < npoll; i++)
            self->pollset [i] = (struct pollfd) { .fd = self->readers [i].fd,
                                                  .events = POLLIN };
        int rc = poll (self->pollset, (nfds_t) npoll, timeout);
        if (rc < 0 && errno != EINTR)
            return 0;
        if (zsys_interrupted && !self->nonstop)
            return 0;
        if (rc < 0)
            continue;               //  EINTR, nonstop or not interrupted: poll again
        //  A fd that fired: libzmq has commands for that socket; only then is it asked
        for (size_t i = 0; i < npoll && rc > 0; i++)
            if (self->pollset [i].revents) {
                rc--;
                if (s_ask (self, i) != 0)
                    return 0;
            }
        if (s_fire_timers (self) == -1 || s_serve_readers (self) == -1)
            return -1;
        if (self->dead_entries)
            s_compact (self);
    }
    return 0;
}
