//  Change-feed publisher actor: the searcher's change events out on NATS, in commit
//  order, on <prefix>.cdc.<collection>; an event over the server's payload limit goes
//  as several parts with the same seq (qv_cdc_split). It runs wherever a searcher
//  applies the committed records of a writer (the embedded server, a writer, a writer
//  core), over its own NATS connection.
//
//  @interface (messages: schemas/qv_msg.h)
//    pipe  $TERM                 stop (events still queued are dropped)
//  takes (PULL inproc "cdc"): CHANGE {event}   from the searcher, in commit order
//  sends: the events' bytes on NATS; counts nats_stats cdc_published / cdc_dropped
//
//  DESIGN
//  The searcher never waits for this actor (an event it has no room for is dropped
//  and counted), except for the replayed WAL tail's events at start, which it sends
//  ahead of any new one: its queue holds 100,000 events. NATS publishing is buffered
//  by the client and survives server restarts (qv_bus.h); an event the client cannot
//  take is counted as dropped.
#include "qv_cdcpub.h"
#include "qv_bus.h"
#include "qv_cdc.h"
#include "qv_actor.h"
#include "qv_msg.h"
#include "qv_rc.h"

typedef struct {
    const qv_config_t *config;
    qv_nats_stats_t *stats;
    qv_bus_t *bus;
    zsock_t *inbox;
    char prefix [64];
} self_t;

static void
s_publish (self_t *self, qv_cdc_t *ev)
{
    uint32_t *bounds = NULL;
    uint32_t parts = qv_cdc_split (ev, qv_bus_max_payload (self->bus), &bounds);
    char subject [400];
    snprintf (subject, sizeof subject, "%s.cdc.%s", self->prefix, ev->collection);
    qv_wr_t *w = qv_wr_new ();
    for (uint32_t p = 0; p < parts; p++) {
        qv_wr_reset (w);
        qv_cdc_write (ev, bounds [p], bounds [p + 1], p + 1, parts, w);
        size_t size;
        const void *data = qv_wr_data (w, &size);
        if (qv_bus_publish (self->bus, subject, data, size) == 0)
            atomic_fetch_add (&self->stats->cdc_published, 1);
        else
            atomic_fetch_add (&self->stats->cdc_dropped, 1);
    }
    qv_wr_destroy (&w);
    free (bounds);
}

static int
s_handle_inbox (qv_loop_t *loop, zsock_t *reader, void *arg)
{
    (void) loop;
    self_t *self = arg;
    qv_msg_t *msg = qv_msg_recv (reader);
    if (msg && msg->id == QV_MSG_CHANGE) {
        qv_cdc_t *ev = ((qv_msg_change_t *) msg)->event;
        if (self->bus)
            s_publish (self, ev);
        else
            atomic_fetch_add (&self->stats->cdc_dropped, 1);
        qv_cdc_destroy (&ev);
    }
    else
    if (msg)
        qv_error ("protocol error: the change-feed publisher does not take %s; dropped",
                  qv_msg_name (msg->id));
    qv_msg_destroy (&msg);
    return 0;
}

void
qv_cdcpub_actor (zsock_t *pipe, void *args)
{
    self_t *self = calloc (1, sizeof *self);
    self->config = args;
    self->stats = self->config->nats_stats;
    snprintf (self->prefix, sizeof self->prefix, "%s", self->config->nats_prefix);
    char ep [256];
    qv_config_endpoint (self->config, "cdc", ep, sizeof ep);
    self->inbox = zsock_new (ZMQ_PULL);
    zsock_set_rcvhwm (self->inbox, 100000);
    zsock_bind (self->inbox, "%s", ep);
    char name [96];
    snprintf (name, sizeof name, "quiver-cdc-%s", self->config->instance);
    self->bus = qv_bus_new (self->config->nats_url, name, false);
    if (!self->bus)
        qv_error ("change feed: cannot connect to NATS %s: %s; events are dropped",
                  self->config->nats_url, qv_err_msg ());
    zsock_signal (pipe, 0);

    qv_loop_t *loop = qv_loop_new ();
    qv_loop_set_nonstop (loop, true);
    qv_loop_reader (loop, pipe, qv_actor_on_term, self);
    //  No handler but the pipe's touches the pipe (only $TERM comes on it): it is
    //  asked for events only when its fd fires
    qv_loop_reader_set_private (loop, pipe);
    qv_loop_reader (loop, self->inbox, s_handle_inbox, self);
    qv_loop_start (loop);
    qv_loop_destroy (&loop);

    qv_bus_destroy (&self->bus);
    qv_msg_t *msg;
    while ((msg = qv_msg_recv_nowait (self->inbox))) {
        if (msg->id == QV_MSG_CHANGE) {
            qv_cdc_t *ev = ((qv_msg_change_t *) msg)->event;
            qv_cdc_destroy (&ev);
        }
        qv_msg_destroy (&msg);
    }
    zsock_destroy (&self->inbox);
    free (self);
    nats_ReleaseThreadMemory ();
}
