//  An actor's reactor: czmq's zloop for the part of its API the actors use, with one
//  poll() per turn over the readers' ZMQ_FD descriptors instead of zmq_poll over
//  every socket.
//
//  DESIGN
//  zloop calls zmq_poll on every turn, and libzmq 4.3's zmq_poll asks each socket for
//  its ZMQ_EVENTS before and after its poll(); each ask of an idle socket costs two
//  system calls (a fork check and a poll of the socket's mailbox). qv_loop asks a
//  socket only when it may have changed:
//  - when its ZMQ_FD became readable (libzmq has commands for it: a message pipe
//    woke up, a peer connected);
//  - after any operation on it. ZMQ_FD is edge-like: libzmq resets it whenever it
//    processes the socket's commands, in a recv, a send or an ask of ZMQ_EVENTS, so
//    after a handler read or sent on a socket its fd can be quiet while messages wait.
//    The loop asks, before it blocks again, the socket a handler served, and after any
//    handler or timer every reader a handler could have sent on or read from: all but
//    receive-only ones (PULL, SUB) and those declared private
//    (qv_loop_reader_set_private).
//  A socket whose last ask said POLLIN is served on the next turn without blocking; its
//  handler takes up to QV_ACTOR_DRAIN messages, then the other sockets and the due
//  timers have their turn. The loop never reads a socket itself.
//
//  It lives in bus/, not actors/, because the NATS bridge (bus/qv_bridge.c) is an actor
//  too and a layer may not include the one above it (CMakeLists.txt, tests/layers).
//
//  A loop belongs to one thread (the actor's). Handlers may add and remove readers
//  and timers while it runs; a reader removed by a handler is never touched again, so
//  its socket may be destroyed at once.
#ifndef QV_LOOP_H_INCLUDED
#define QV_LOOP_H_INCLUDED

#include <czmq.h>

typedef struct _qv_loop_t qv_loop_t;

//  Called when sock has a message (ZMQ_EVENTS said POLLIN): 0 goes on, -1 ends the loop.
typedef int (qv_loop_reader_fn) (qv_loop_t *loop, zsock_t *sock, void *arg);
//  Called when a timer is due: 0 goes on, -1 ends the loop.
typedef int (qv_loop_timer_fn) (qv_loop_t *loop, int timer_id, void *arg);

//  A loop with no readers and no timers; NULL if out of memory.
qv_loop_t *
    qv_loop_new (void);

//  Destroys the loop (not its sockets); nulls *self_p; safe twice.
void
    qv_loop_destroy (qv_loop_t **self_p);

//  Calls handler whenever sock has a message to read. The handler must read at least
//  one message (or remove the reader), as a level-triggered zloop reader must. A
//  socket has at most one reader: a second replaces the first. 0, or -1 if sock has
//  no ZMQ_FD or memory ran out.
int
    qv_loop_reader (qv_loop_t *self, zsock_t *sock, qv_loop_reader_fn handler, void *arg);

//  Declares that no handler of this loop but sock's own sends on sock or reads it (an
//  actor's pipe whose only command is $TERM): the loop then asks it for events only
//  when its fd fires or its handler ran. Wrong, this loses messages: say it only
//  after reading every handler of the actor.
void
    qv_loop_reader_set_private (qv_loop_t *self, zsock_t *sock);

//  Stops reading sock; safe from any handler, its own included, and for a socket that
//  has no reader. The loop never touches sock again.
void
    qv_loop_reader_end (qv_loop_t *self, zsock_t *sock);

//  Calls handler every delay milliseconds, times times (0: forever). Returns the
//  timer's id (> 0, for qv_loop_timer_end), or -1 if memory ran out. As zloop: a due
//  time that was missed is made up (the next is the missed one plus delay).
int
    qv_loop_timer (qv_loop_t *self, size_t delay, size_t times, qv_loop_timer_fn handler,
                   void *arg);

//  Cancels a timer; safe from any handler, its own included.
void
    qv_loop_timer_end (qv_loop_t *self, int timer_id);

//  With nonstop, the loop ignores zsys_interrupted (SIGINT/SIGTERM as czmq counts
//  them): only a handler's -1 ends it. Default false, as zloop.
void
    qv_loop_set_nonstop (qv_loop_t *self, bool nonstop);

//  Runs the loop in the calling thread until a handler returns -1 (returns -1), or,
//  unless nonstop, zsys_interrupted is set (returns 0), or the ZeroMQ context ends
//  (returns 0).
int
    qv_loop_start (qv_loop_t *self);

#endif
