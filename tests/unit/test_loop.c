//  The actors' reactor (bus/qv_loop.c) over real inproc and tcp sockets: no message is
//  left unread when a handler's send or read resets a socket's ZMQ_FD, readers and
//  timers change inside handlers, and a handler's -1 ends the loop.
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include "qv_loop.h"

#include <pthread.h>
#include <signal.h>

//  Every loop below also has this timer: a loop that hangs ends after it, and the
//  test's assertions on what was served then fail (the timer is not what is tested).
#define S_GIVE_UP_MS 10000

static int
s_give_up (qv_loop_t *loop, int timer_id, void *arg)
{
    (void) loop;
    (void) timer_id;
    *(bool *) arg = true;
    return -1;
}

// --------------------------------------------------------------------------
//  A ROUTER whose handler replies while a second peer sends: libzmq processes the
//  ROUTER's commands in the send (after its command throttle of ~1 ms), which takes
//  the second peer's wake-up off the fd; the message must still be read.

typedef struct {
    zsock_t *router;
    zsock_t *second;            //  the peer that sends while the first is served
    int served;
    bool second_served;
    bool gave_up;
} s_router_t;

static int
s_router_reply (qv_loop_t *loop, zsock_t *sock, void *arg)
{
    (void) loop;
    s_router_t *t = arg;
    //  One message per call, so the loop, not the handler, must find the next
    zmsg_t *msg = zmsg_recv_nowait (sock);
    assert_non_null (msg);
    t->served++;
    char *body = zframe_strdup (zmsg_last (msg));
    bool second = streq (body, "second");
    free (body);
    if (second) {
        t->second_served = true;
        zmsg_destroy (&msg);
        return -1;
    }
    //  The second peer's message arrives while this one is served, then the reply's
    //  send, past the throttle, makes the ROUTER process that arrival's command
    zstr_send (t->second, "second");
    zclock_sleep (3);
    zmsg_send (&msg, sock);
    return 0;
}

static void
s_router_case (const char *bind_ep)
{
    s_router_t t = { 0 };
    t.router = zsock_new (ZMQ_ROUTER);
    assert_non_null (t.router);
    int port = zsock_bind (t.router, "%s", bind_ep);
    assert_true (port >= 0);
    char ep [64];
    if (port > 0)
        snprintf (ep, sizeof ep, "tcp://127.0.0.1:%d", port);
    else
        snprintf (ep, sizeof ep, "%s", bind_ep);
    zsock_t *first = zsock_new_dealer (ep);
    t.second = zsock_new_dealer (ep);
    assert_non_null (first);
    assert_non_null (t.second);
    //  Both peers connected and their pipes attached before the loop starts: a
    //  round trip each (outside the loop under test)
    zsock_t *peers [2] = { first, t.second };
    for (int i = 0; i < 2; i++) {
        zstr_send (peers [i], "hello");
        zmsg_t *hello = zmsg_recv (t.router);
        assert_non_null (hello);
        zmsg_send (&hello, t.router);
        char *back = zstr_recv (peers [i]);
        assert_string_equal (back, "hello");
        zstr_free (&back);
    }
    //  A read that finds both pipes empty puts them to sleep: a new message then
    //  wakes the ROUTER through its mailbox (and its fd)
    assert_null (zmsg_recv_nowait (t.router));
    qv_loop_t *loop = qv_loop_new ();
    assert_non_null (loop);
    assert_int_equal (qv_loop_reader (loop, t.router, s_router_reply, &t), 0);
    qv_loop_timer (loop, S_GIVE_UP_MS, 1, s_give_up, &t.gave_up);
    zclock_sleep (3);                   //  past the throttle: the send below signals
    zstr_send (first, "first");
    assert_int_equal (qv_loop_start (loop), -1);
    qv_loop_destroy (&loop);
    qv_loop_destroy (&loop);            //  safe twice
    assert_null (loop);
    assert_false (t.gave_up);
    assert_true (t.second_served);
    assert_int_equal (t.served, 2);
    char *reply = zstr_recv (first);
    assert_string_equal (reply, "first");
    zstr_free (&reply);
    zsock_destroy (&first);
    zsock_destroy (&t.second);
    zsock_destroy (&t.router);
}

static void
test_router_inproc (void **state)
{
    (void) state;
    s_router_case ("inproc://test-loop-router");
}

static void
test_router_tcp (void **state)
{
    (void) state;
    s_router_case ("tcp://127.0.0.1:*");
}

// --------------------------------------------------------------------------
//  A handler of one socket sends on another reader's socket (a ROUTER) while a
//  message for that ROUTER arrives: the ROUTER's fd is reset by that send, and the
//  loop must ask it after the handler although its fd never fired again.

typedef struct {
    zsock_t *router;            //  a reader the PULL's handler sends on
    zsock_t *peer;              //  a DEALER of the router
    zframe_t *peer_id;          //  its routing id at the router
    int router_served;
    bool gave_up;
} s_other_t;

static int
s_other_pull (qv_loop_t *loop, zsock_t *sock, void *arg)
{
    (void) loop;
    s_other_t *t = arg;
    char *text = zstr_recv_nowait (sock);
    assert_non_null (text);
    zstr_free (&text);
    zstr_send (t->peer, "to the router");
    zclock_sleep (3);
    //  A send on the router, to its peer: processes the router's commands
    zframe_send (&t->peer_id, t->router, ZFRAME_MORE + ZFRAME_REUSE);
    zstr_send (t->router, "from the router");
    return 0;
}

static int
s_other_router (qv_loop_t *loop, zsock_t *sock, void *arg)
{
    (void) loop;
    s_other_t *t = arg;
    zmsg_t *msg = zmsg_recv_nowait (sock);
    assert_non_null (msg);
    zmsg_destroy (&msg);
    t->router_served++;
    return -1;
}

static void
test_send_on_other_reader (void **state)
{
    (void) state;
    s_other_t t = { 0 };
    t.router = zsock_new_router ("inproc://test-loop-other");
    t.peer = zsock_new_dealer ("inproc://test-loop-other");
    zsock_t *pull = zsock_new_pull ("inproc://test-loop-other-pull");
    zsock_t *push = zsock_new_push ("inproc://test-loop-other-pull");
    assert_non_null (t.router);
    assert_non_null (t.peer);
    //  The router learns the peer's routing id from a first message
    zstr_send (t.peer, "hello");
    zmsg_t *hello = zmsg_recv (t.router);
    t.peer_id = zframe_dup (zmsg_first (hello));
    zmsg_destroy (&hello);
    assert_null (zmsg_recv_nowait (t.router));
    qv_loop_t *loop = qv_loop_new ();
    assert_int_equal (qv_loop_reader (loop, pull, s_other_pull, &t), 0);
    assert_int_equal (qv_loop_reader (loop, t.router, s_other_router, &t), 0);
    qv_loop_timer (loop, S_GIVE_UP_MS, 1, s_give_up, &t.gave_up);
    zclock_sleep (3);
    zstr_send (push, "go");
    assert_int_equal (qv_loop_start (loop), -1);
    qv_loop_destroy (&loop);
    assert_false (t.gave_up);
    assert_int_equal (t.router_served, 1);
    char *text = zstr_recv (t.peer);
    assert_string_equal (text, "from the router");
    zstr_free (&text);
    zframe_destroy (&t.peer_id);
    zsock_destroy (&push);
    zsock_destroy (&pull);
    zsock_destroy (&t.peer);
    zsock_destroy (&t.router);
}

// --------------------------------------------------------------------------
//  Readers added and removed by handlers: a reader ended (and its socket destroyed)
//  inside its own handler is never called again; a reader added inside a handler,
//  for a socket that already holds messages, is served.

typedef struct {
    zsock_t *first;             //  PULL, ended by its own handler
    zsock_t *first_push;
    zsock_t *later;             //  PULL, added by the first's handler
    int first_calls;
    int later_calls;
    bool gave_up;
} s_change_t;

static int
s_later (qv_loop_t *loop, zsock_t *sock, void *arg)
{
    (void) loop;
    s_change_t *t = arg;
    char *text;
    while ((text = zstr_recv_nowait (sock))) {
        t->later_calls++;
        zstr_free (&text);
    }
    return t->later_calls == 3 ? -1 : 0;
}

static int
s_first (qv_loop_t *loop, zsock_t *sock, void *arg)
{
    s_change_t *t = arg;
    t->first_calls++;
    char *text = zstr_recv_nowait (sock);
    assert_non_null (text);
    zstr_free (&text);
    //  More for the first socket, which is ended at once: never read
    zstr_send (t->first_push, "unread");
    qv_loop_reader_end (loop, sock);
    qv_loop_reader_end (loop, sock);        //  twice: no effect
    zsock_destroy (&t->first);
    assert_int_equal (qv_loop_reader (loop, t->later, s_later, t), 0);
    return 0;
}

static void
test_readers_change (void **state)
{
    (void) state;
    s_change_t t = { 0 };
    t.first = zsock_new_pull ("inproc://test-loop-first");
    t.first_push = zsock_new_push ("inproc://test-loop-first");
    t.later = zsock_new_pull ("inproc://test-loop-later");
    zsock_t *later_push = zsock_new_push ("inproc://test-loop-later");
    //  Queued for the later reader before it exists: its fd fired long ago
    zstr_send (later_push, "a");
    zstr_send (later_push, "b");
    zstr_send (later_push, "c");
    zclock_sleep (3);
    qv_loop_t *loop = qv_loop_new ();
    assert_int_equal (qv_loop_reader (loop, t.first, s_first, &t), 0);
    qv_loop_timer (loop, S_GIVE_UP_MS, 1, s_give_up, &t.gave_up);
    zstr_send (t.first_push, "go");
    assert_int_equal (qv_loop_start (loop), -1);
    qv_loop_destroy (&loop);
    assert_false (t.gave_up);
    assert_int_equal (t.first_calls, 1);
    assert_null (t.first);
    assert_int_equal (t.later_calls, 3);
    zsock_destroy (&t.first_push);
    zsock_destroy (&later_push);
    zsock_destroy (&t.later);
}

// --------------------------------------------------------------------------
//  Timers: once, repeating, ended by its own handler, ended by another before it
//  was due; and on time while a reader is always busy.

typedef struct {
    int once;
    int repeat;
    int self_ended;
    int never;
    int never_id;
    int reads;
    bool gave_up;
} s_timers_t;

static int
s_once (qv_loop_t *loop, int timer_id, void *arg)
{
    (void) timer_id;
    s_timers_t *t = arg;
    t->once++;
    qv_loop_timer_end (loop, t->never_id);  //  due long after: never fires
    return 0;
}

static int
s_self_ended (qv_loop_t *loop, int timer_id, void *arg)
{
    s_timers_t *t = arg;
    if (++t->self_ended == 3)
        qv_loop_timer_end (loop, timer_id);
    return 0;
}

static int
s_never (qv_loop_t *loop, int timer_id, void *arg)
{
    (void) loop;
    (void) timer_id;
    ((s_timers_t *) arg)->never++;
    return 0;
}

static int
s_repeat (qv_loop_t *loop, int timer_id, void *arg)
{
    (void) loop;
    (void) timer_id;
    s_timers_t *t = arg;
    //  Ends the loop once the others had every chance to fire
    return ++t->repeat == 10 ? -1 : 0;
}

//  A reader that is never idle: each message it reads it sends to itself again.
static int
s_busy (qv_loop_t *loop, zsock_t *sock, void *arg)
{
    (void) loop;
    s_timers_t *t = arg;
    zmsg_t *msg = zmsg_recv_nowait (sock);
    assert_non_null (msg);
    t->reads++;
    zmsg_send (&msg, sock);
    return 0;
}

static void
test_timers (void **state)
{
    (void) state;
    s_timers_t t = { 0 };
    //  A PAIR that talks to itself through its peer, so it always has a message
    zsock_t *busy = zsock_new_pair ("@inproc://test-loop-busy");
    zsock_t *echo = zsock_new_pair (">inproc://test-loop-busy");
    qv_loop_t *loop = qv_loop_new ();
    assert_true (qv_loop_timer (loop, 1, 1, s_once, &t) > 0);
    assert_true (qv_loop_timer (loop, 2, 0, s_self_ended, &t) > 0);
    t.never_id = qv_loop_timer (loop, 5000, 0, s_never, &t);
    assert_true (t.never_id > 0);
    assert_true (qv_loop_timer (loop, 5, 0, s_repeat, &t) > 0);
    qv_loop_timer (loop, S_GIVE_UP_MS, 1, s_give_up, &t.gave_up);
    assert_int_equal (qv_loop_reader (loop, busy, s_busy, &t), 0);
    assert_int_equal (qv_loop_reader (loop, echo, s_busy, &t), 0);
    zstr_send (echo, "ping");
    assert_int_equal (qv_loop_start (loop), -1);
    qv_loop_destroy (&loop);
    assert_false (t.gave_up);
    assert_int_equal (t.once, 1);
    assert_int_equal (t.self_ended, 3);
    assert_int_equal (t.never, 0);
    assert_int_equal (t.repeat, 10);
    assert_true (t.reads > 0);              //  the timers fired while it was busy
    zsock_destroy (&echo);
    zsock_destroy (&busy);
}

// --------------------------------------------------------------------------
//  Fairness: two readers with queues each take turns; a private pipe is served.

typedef struct {
    int a;
    int b;
    int order_switches;
    int last;
} s_fair_t;

static int
s_fair_a (qv_loop_t *loop, zsock_t *sock, void *arg)
{
    (void) loop;
    s_fair_t *t = arg;
    char *text = zstr_recv_nowait (sock);
    assert_non_null (text);
    zstr_free (&text);
    t->a++;
    t->order_switches += t->last == 2;
    t->last = 1;
    return t->a + t->b == 40 ? -1 : 0;
}

static int
s_fair_b (qv_loop_t *loop, zsock_t *sock, void *arg)
{
    (void) loop;
    s_fair_t *t = arg;
    char *text = zstr_recv_nowait (sock);
    assert_non_null (text);
    zstr_free (&text);
    t->b++;
    t->order_switches += t->last == 1;
    t->last = 2;
    return t->a + t->b == 40 ? -1 : 0;
}

static void
test_fair_and_private (void **state)
{
    (void) state;
    s_fair_t t = { 0 };
    zsock_t *a = zsock_new_pair ("@inproc://test-loop-fair-a");
    zsock_t *a_peer = zsock_new_pair (">inproc://test-loop-fair-a");
    zsock_t *b = zsock_new_pull ("inproc://test-loop-fair-b");
    zsock_t *b_peer = zsock_new_push ("inproc://test-loop-fair-b");
    for (int i = 0; i < 30; i++) {
        zstr_send (a_peer, "a");
        zstr_send (b_peer, "b");
    }
    qv_loop_t *loop = qv_loop_new ();
    assert_int_equal (qv_loop_reader (loop, a, s_fair_a, &t), 0);
    qv_loop_reader_set_private (loop, a);
    assert_int_equal (qv_loop_reader (loop, b, s_fair_b, &t), 0);
    assert_int_equal (qv_loop_start (loop), -1);
    qv_loop_destroy (&loop);
    //  One message a call each: they alternate, neither waits for the other's queue
    assert_int_equal (t.a, 20);
    assert_int_equal (t.b, 20);
    assert_true (t.order_switches >= 38);
    zsock_destroy (&a_peer);
    zsock_destroy (&a);
    zsock_destroy (&b_peer);
    zsock_destroy (&b);
}


// --------------------------------------------------------------------------
//  Signals: a poll() interrupted by a signal (EINTR) polls again; zsys_interrupted
//  ends a loop that is not nonstop, before any handler, and not a nonstop one.

static void
s_on_usr1 (int sig)
{
    (void) sig;
}

typedef struct {
    pthread_t loop_thread;
    bool done;                  //  set by the loop's handler
} s_signals_t;

//  Interrupts the loop's poll() with SIGUSR1 a few times, then sends the message
//  that ends it.
static void *
s_interrupter (void *arg)
{
    s_signals_t *t = arg;
    for (int i = 0; i < 5; i++) {
        zclock_sleep (5);
        pthread_kill (t->loop_thread, SIGUSR1);
    }
    zsock_t *push = zsock_new_push ("inproc://test-loop-signals");
    zstr_send (push, "end");
    zsock_destroy (&push);
    return NULL;
}

static int
s_end_on_message (qv_loop_t *loop, zsock_t *sock, void *arg)
{
    (void) loop;
    char *text = zstr_recv_nowait (sock);
    zstr_free (&text);
    *(bool *) arg = true;
    return -1;
}

static void
test_signals (void **state)
{
    (void) state;
    //  No SA_RESTART: the signal makes poll() fail with EINTR
    struct sigaction action = { .sa_handler = s_on_usr1 }, old;
    sigemptyset (&action.sa_mask);
    assert_int_equal (sigaction (SIGUSR1, &action, &old), 0);
    s_signals_t t = { .loop_thread = pthread_self () };
    zsock_t *pull = zsock_new_pull ("inproc://test-loop-signals");
    qv_loop_t *loop = qv_loop_new ();
    assert_int_equal (qv_loop_reader (loop, pull, s_end_on_message, &t.done), 0);
    bool gave_up = false;
    qv_loop_timer (loop, S_GIVE_UP_MS, 1, s_give_up, &gave_up);
    pthread_t thread;
    assert_int_equal (pthread_create (&thread, NULL, s_interrupter, &t), 0);
    assert_int_equal (qv_loop_start (loop), -1);
    pthread_join (thread, NULL);
    assert_false (gave_up);
    assert_true (t.done);
    sigaction (SIGUSR1, &old, NULL);

    //  zsys_interrupted (czmq's SIGINT/SIGTERM flag): a message is waiting, but a
    //  loop that is not nonstop ends first; a nonstop one serves it
    zsock_t *push = zsock_new_push ("inproc://test-loop-signals");
    zstr_send (push, "end");
    t.done = false;
    zsys_interrupted = 1;
    assert_int_equal (qv_loop_start (loop), 0);
    assert_false (t.done);
    qv_loop_set_nonstop (loop, true);
    assert_int_equal (qv_loop_start (loop), -1);
    zsys_interrupted = 0;
    assert_true (t.done);
    qv_loop_destroy (&loop);
    zsock_destroy (&push);
    zsock_destroy (&pull);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_router_inproc),
        cmocka_unit_test (test_router_tcp),
        cmocka_unit_test (test_send_on_other_reader),
        cmocka_unit_test (test_readers_change),
        cmocka_unit_test (test_timers),
        cmocka_unit_test (test_fair_and_private),
        cmocka_unit_test (test_signals),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
