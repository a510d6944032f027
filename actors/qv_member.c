//  Member actor: in a searcher process, announces it to writer processes; in a writer
//  core, to proxy processes.
//
//  @interface
//    pipe  $TERM                 stop (the entry is deleted first)
//  takes: nothing; reads the follower's figures (feed_stats: caught_up, applied_seq),
//         or asks args->ready (a writer core: it holds the write lease)
//  sends (NATS KV bucket quiver_members, bus/qv_members.h):
//    {endpoint, ready, applied_seq, instance, epoch} under <store>.<role>.<endpoint>,
//    every second
//
//  DESIGN
//  The put is a JetStream request that may block while NATS is away, so it runs on
//  this thread, never on the follower's, which must keep applying the feed. The entry
//  says ready once the follower has caught up (a writer core: while it holds the
//  lease); a writer process sends reads only to ready entries that are fresh, and a
//  proxy process follows the ready core entry of the highest epoch (bus/qv_members.h).
//  The endpoint is --advertise, or --bind with a wildcard host made this machine's
//  name (qv_config_advertise).
#include "qv_member.h"
#include "qv_actor.h"
#include "qv_bus.h"
#include "qv_members.h"
#include "qv_rc.h"

typedef struct {
    const qv_config_t *config;
    const char *role;
    qv_member_ready_fn *ready;
    void *ready_arg;
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
    qv_warn ("%s: cannot %s its entry in NATS KV bucket %s (%s): %s; retrying", self->role,
             what, QV_MEMBERS_BUCKET, streq (self->role, QV_MEMBERS_CORE)
             ? "proxy processes without --writer do not find it meanwhile"
             : "writers send it no reads meanwhile", qv_err_msg ());
}

static int
s_handle_timer (qv_loop_t *loop, int timer_id, void *arg)
{
    (void) loop;
    (void) timer_id;
    self_t *self = arg;
    qv_feed_stats_t *stats = self->config->feed_stats;
    bool ready = self->ready ? self->ready (self->ready_arg) : atomic_load (&stats->caught_up);
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
    if (ready && !self->me.ready && self->ready)
        qv_info ("%s: announced to proxy processes as %s (NATS KV %s/%s, epoch %llu)",
                 self->role, self->me.endpoint, QV_MEMBERS_BUCKET, self->key,
                 (unsigned long long) self->me.epoch);
    else
    if (ready && !self->me.ready)
        qv_info ("searcher: caught up; announced to writer processes as %s (NATS KV %s/%s)",
                 self->me.endpoint, QV_MEMBERS_BUCKET, self->key);
    self->me.ready = ready;
    self->me.applied_seq = stats ? atomic_load (&stats->applied_seq) : 0;
    if (qv_members_put (self->kv, self->key, &self->me) != 0)
        s_warn (self, "put");
    return 0;
}

void
qv_member_actor (zsock_t *pipe, void *args)
{
    const qv_member_args_t *margs = args;
    self_t *self = calloc (1, sizeof *self);
    self->config = margs->config;
    self->role = margs->role;
    self->ready = margs->ready;
    self->ready_arg = margs->ready_arg;
    self->me.epoch = margs->epoch;
    qv_config_advertise (self->config, self->me.endpoint, sizeof self->me.endpoint);
    qv_members_role_key (self->config, self->role, self->me.endpoint, self->key, sizeof self->key);
    snprintf (self->me.instance, sizeof self->me.instance, "%s", self->config->instance);
    char name [64];
    snprintf (name, sizeof name, "quiver %s membership", self->role);
    self->bus = qv_bus_new (self->config->nats_url, name, false);
    zsock_signal (pipe, 0);
    qv_loop_t *loop = qv_loop_new ();
    qv_loop_set_nonstop (loop, true);
    qv_loop_reader (loop, pipe, qv_actor_on_term, NULL);
    //  No handler but the pipe's touches the pipe (only $TERM comes on it): it is
    //  asked for events only when its fd fires
    qv_loop_reader_set_private (loop, pipe);
    if (self->bus) {
        qv_loop_timer (loop, 50, 0, s_handle_timer, self);
    }
    else
        qv_error ("%s: %s; %s processes will not find it", self->role, qv_err_msg (),
                  streq (self->role, QV_MEMBERS_CORE) ? "proxy" : "writer");
    qv_loop_start (loop);
    qv_loop_destroy (&loop);
    //  Stopping: writers stop sending reads at once rather than after the entry goes stale
    if (self->kv && qv_members_delete (self->kv, self->key) != 0)
        qv_warn ("%s: %s", self->role, qv_err_msg ());
    kvStore_Destroy (self->kv);
    jsCtx_Destroy (self->js);
    qv_bus_destroy (&self->bus);
    free (self);
}
