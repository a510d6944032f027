//  Ingest-lease actor: in a proxy process given --ingest-stream, decides whether this
//  process consumes the stream. Several proxies may be given the same stream: one
//  holds the lease and consumes, the others wait as standbys and serve clients; when
//  the holder stops (its lease is released) or dies (its lease is not renewed for
//  --lease-ttl-ms), one of them takes over.
//
//  @interface
//    pipe  $TERM                   stop: releases the lease if held
//    sends (pipe, "s8"): HELD epoch     this process holds the lease: consume
//                        LOST 0         it does not any more: stop fetching now
//
//  DESIGN
//  The stream's durable consumer is recreated by whoever starts consuming, so two
//  proxies consuming at once would take it from each other at every start. The lease
//  (bus/qv_lease.c, bucket quiver_leases, key "<store>.ingest-<stream>") makes it one.
//  It fences nothing by itself: a deposed holder that still sends a write is answered
//  by the writer core's segment manager, whose ledger of logged stream sequences
//  never logs one twice, and the core takes stream writes only from the newest
//  connection (actors/qv_intake.c). Waiting for the lease blocks, so it runs on this
//  actor's thread, never on the bridge's. A holder whose renewals lag (NATS away, the
//  process stalled) is told LOST at once and HELD again if a renewal succeeds before
//  anyone took over; once taken over it waits again as a standby.
#include "qv_ingest_lease.h"
#include "qv_lease.h"
#include "qv_rc.h"
#include "qv_shard_lease.h"

#include <ctype.h>
#include <limits.h>
#include <unistd.h>

void
qv_ingest_lease_key (const qv_config_t *config, char *out, size_t size)
{
    char store [96];
    qv_config_store_key (config, store, sizeof store);
    snprintf (out, size, "%s.ingest-%s", store, config->ingest_stream);
    for (char *c = out + strlen (store) + 1; *c; c++)
        if (!isalnum ((unsigned char) *c) && *c != '_' && *c != '-' && *c != '.')
            *c = '_';
    if (strlen (out) > 100) {
        //  A key holds at most 127 characters: a long stream name goes by its hash
        uint64_t h = 1469598103934665603ull;
        for (const char *c = config->ingest_stream; *c; c++)
            h = (h ^ (uint8_t) *c) * 1099511628211ull;
        snprintf (out, size, "%s.ingest-%016llx", store, (unsigned long long) h);
    }
}

//  Asked while waiting for the lease: the pipe has a command ($TERM).
static bool
s_stop (void *arg)
{
    return (zsock_events (arg) & ZMQ_POLLIN) != 0;
}

//  Waits up to ms for the pipe to speak; true if it did (the only command is $TERM).
static bool
s_wait_pipe (zsock_t *pipe, int ms)
{
    zmq_pollitem_t item = { zsock_resolve (pipe), 0, ZMQ_POLLIN, 0 };
    return zmq_poll (&item, 1, ms) != 0;
}

void
qv_ingest_lease_actor (zsock_t *pipe, void *args_)
{
    qv_ingest_lease_args_t args = *(qv_ingest_lease_args_t *) args_;   //  the caller's is gone
    const qv_config_t *config = args.config;
    char key [256], holder [160], host [64] = "?";
    qv_ingest_lease_key (config, key, sizeof key);
    gethostname (host, sizeof host - 1);
    snprintf (holder, sizeof holder, "%.40s:%d (quiver serve --roles proxy --bind %.60s)", host,
              (int) getpid (), config->bind);
    int tick = config->lease_ttl_ms / 8 > 0 ? config->lease_ttl_ms / 8 : 1;
    zsock_signal (pipe, 0);

    qv_lease_t *lease = NULL;
    bool stop = false;
    int64_t said = 0;
    while (!stop) {
        if (!lease && !(lease = qv_lease_new (args.nc, QV_SHARD_LEASE_BUCKET, key, holder,
                                              config->lease_ttl_ms))) {
            if (qv_clock_msec () - said > 10000) {
                said = qv_clock_msec ();
                qv_warn ("stream %s: cannot reach the lease that decides which proxy consumes "
                         "it (%s); retrying", config->ingest_stream, qv_err_msg ());
            }
            stop = s_wait_pipe (pipe, 1000);
            continue;
        }
        //  Standby until the lease is ours (or the pipe speaks)
        if (qv_lease_acquire_until (lease, INT_MAX, 0, s_stop, pipe) != 0) {
            if (s_stop (pipe))
                break;
            if (qv_clock_msec () - said > 10000) {
                said = qv_clock_msec ();
                qv_warn ("stream %s: %s; retrying", config->ingest_stream, qv_err_msg ());
            }
            stop = s_wait_pipe (pipe, 1000);
            continue;
        }
        uint64_t epoch = qv_lease_epoch (lease);
        atomic_store (args.held, true);
        qv_info ("stream %s: this proxy consumes it (lease %s/%s, epoch %llu)",
                 config->ingest_stream, QV_SHARD_LEASE_BUCKET, key, (unsigned long long) epoch);
        zsock_send (pipe, "s8", "HELD", epoch);
        bool told_held = true;
        while (!(stop = s_wait_pipe (pipe, tick))) {
            bool held = qv_lease_held (lease);
            bool lost = qv_lease_lost (lease);
            if (told_held && (!held || lost)) {
                atomic_store (args.held, false);
                qv_warn ("stream %s: the lease %s/%s was not renewed in time; fetching stops",
                         config->ingest_stream, QV_SHARD_LEASE_BUCKET, key);
                zsock_send (pipe, "s8", "LOST", (uint64_t) 0);
                told_held = false;
            }
            if (lost) {
                qv_warn ("stream %s: another proxy took the lease over; this one waits as a "
                         "standby", config->ingest_stream);
                break;
            }
            if (!told_held && held) {
                atomic_store (args.held, true);
                zsock_send (pipe, "s8", "HELD", epoch);
                told_held = true;
            }
        }
    }
    atomic_store (args.held, false);
    qv_lease_destroy (&lease);      //  released: a standby takes over at once
}
