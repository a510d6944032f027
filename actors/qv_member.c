//  Member actor: in a searcher process, announces it to writer processes.
//
//  @interface
//    pipe  $TERM                 stop (the entry is deleted first)
//  takes: nothing; reads the follower's figures (feed_stats: caught_up, applied_seq)
//  sends (NATS KV bucket quiver_members, bus/qv_members.h):
//    {endpoint, ready, applied_seq} under <store>.searcher.<endpoint>, every second
//
//  DESIGN
//  The put is a JetStream request that may block while NATS is away, so it runs on
//  this thread, never on the follower's, which must keep applying the feed. The entry
//  says ready once the follower has caught up; a writer process sends reads only to
//  ready entries that are fresh (bus/qv_members.h). The endpoint is --advertise, or
//  --bind with a wildcard host made this machine's name (qv_config_advertise).
#include "qv_member.h"
#include "qv_actor.h"
#include "qv_bus.h"
#include "qv_members.h"
#include "qv_rc.h"

typedef struct {
    const qv_config_t *config;
    qv_bus_t *bus;
    jsCtx *js;
    kvStore *kv;
    char key [512];
    qv_member_t me;
    int64_t warned_ms;
    int64_t put_ms;                 //  when the entry was last put
} self_t;

static void
s_warn (self_t *self, const char *what)
{
    int64_t now = qv_clock_msec ();
    if (now - self->warned_ms < 30000)
        return;
    self->warned_ms = now;
    qv_warn ("searcher: cannot %s its entry in NATS KV bucket %s (writers send it no reads "
             "meanwhile): %s; retrying", what, QV_MEMBERS_BUCKET, qv_err_msg ());
}

static int
s_handle_timer (zloop_t *loop, int timer_id, void *arg)
{
    (void) loop;
    (void) timer_id;
    self_t *self = arg;
    qv_feed_stats_t *stats = self->config->feed_stats;
    bool ready = atomic_load (&stats->caught_up);
    //  Every second, and at once when it has caught up
    int64_t now = qv_clock_msec ();
    if ((ready == self->me.ready || !self->kv) && now - self->put_ms < QV_MEMBERS_HEARTBEAT_MS)
        return 0;
    self->put_ms = now;
    if (!self->kv) {
        if (!qv_bus_connected (self->bus))
            return 0;
        if (qv_bus_kv_open (qv_bus_nats (self->bus), QV_MEMBERS_BUCKET, QV_MEMBERS_TTL_MS,
                            &self->js, &self->kv) != 0) {
            s_warn (self, "open the bucket of");
            return 0;
        }
    }
    if (ready && !self->me.ready)
        qv_info ("searcher: caught up; announced to writer processes as %s (NATS KV %s/%s)",
                 self->me.endpoint, QV_MEMBERS_BUCKET, self->key);
    self->me.ready = ready;
    self->me.applied_seq = atomic_load (&stats->applied_seq);
    if (qv_members_put (self->kv, self->key, &self->me) != 0)
        s_warn (self, "put");
    return 0;
}

void
qv_member_actor (zsock_t *pipe, void *args)
{
    self_t *self = calloc (1, sizeof *self);
    self->config = args;
    qv_config_advertise (self->config, self->me.endpoint, sizeof self->me.endpoint);
    qv_members_key (self->config, self->me.endpoint, self->key, sizeof self->key);
    snprintf (self->me.instance, sizeof self->me.instance, "%s", self->config->instance);
    self->bus = qv_bus_new (self->config->nats_url, "quiver searcher membership");
    zsock_signal (pipe, 0);
    zloop_t *loop = zloop_new ();
    zloop_set_nonstop (loop, true);
    zloop_reader (loop, pipe, qv_actor_on_term, NULL);
    if (self->bus) {
        zloop_timer (loop, 50, 0, s_handle_timer, self);
    }
    else
        qv_error ("searcher: %s; writer processes will not find it", qv_err_msg ());
    zloop_start (loop);
    zloop_destroy (&loop);
    //  Stopping: writers stop sending reads at once rather than after the entry goes stale
    if (self->kv && qv_members_delete (self->kv, self->key) != 0)
        qv_warn ("searcher: %s", qv_err_msg ());
    kvStore_Destroy (self->kv);
    jsCtx_Destroy (self->js);
    qv_bus_destroy (&self->bus);
    free (self);
}
