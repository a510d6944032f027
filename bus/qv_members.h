//  Membership of a store's processes, kept in the NATS JetStream KV bucket
//  quiver_members: each searcher process puts its entry every second (its endpoint,
//  whether it has caught up with the writer's committed feed, how far it has applied
//  the WAL) and deletes it when it stops; writer processes follow the bucket's subject
//  to know where to send reads. A writer core (`--roles segment-manager,meta,flusher`)
//  puts one too while it holds the write lease (its endpoint and the lease's epoch),
//  under the role "core": proxy processes started without --writer follow it to find
//  the core. See bus/NATS.md, "Searcher membership".
#ifndef QV_MEMBERS_H_INCLUDED
#define QV_MEMBERS_H_INCLUDED

#include "qv_bus.h"
#include "qv_config.h"
#include <nats/nats.h>

#define QV_MEMBERS_BUCKET "quiver_members"
//  A searcher puts its entry this often ...
#define QV_MEMBERS_HEARTBEAT_MS 1000
//  ... is taken for gone this long after its last one ...
#define QV_MEMBERS_STALE_MS 3500
//  ... and the bucket forgets it after this long.
#define QV_MEMBERS_TTL_MS 60000

typedef struct {
    char endpoint [256];            //  ZeroMQ endpoint of its public API
    bool ready;                     //  caught up: it may be sent reads
    uint64_t applied_seq;           //  the next WAL object it applies
    char instance [32];             //  its process incarnation (qv_config_t instance;
                                    //  "" from a release before it was announced)
    uint64_t epoch;                 //  a writer core's: the epoch of its write lease
                                    //  (0 for searchers, and entries without it)
    bool gone;                      //  the entry was deleted (the searcher stopped)
} qv_member_t;

#define QV_MEMBERS_SEARCHER "searcher"
#define QV_MEMBERS_CORE "core"

//  The KV key of the searcher reachable at endpoint, among the store's searchers:
//  "<store key>.searcher.<endpoint, made NATS-safe>".
void
    qv_members_key (const qv_config_t *config, const char *endpoint, char *out, size_t size);

//  The same for a process of role (QV_MEMBERS_SEARCHER, QV_MEMBERS_CORE):
//  "<store key>.<role>.<endpoint, made NATS-safe>".
void
    qv_members_role_key (const qv_config_t *config, const char *role, const char *endpoint,
                         char *out, size_t size);

//  The subject carrying every update of the store's searcher entries (wildcard).
void
    qv_members_subject (const qv_config_t *config, char *out, size_t size);

//  The same for the entries of role.
void
    qv_members_role_subject (const qv_config_t *config, const char *role, char *out,
                             size_t size);

//  Puts / deletes the entry under key. 0, or QV_EUNAVAIL with the reason.
int
    qv_members_put (kvStore *kv, const char *key, const qv_member_t *member);
int
    qv_members_delete (kvStore *kv, const char *key);

//  Decodes an update taken from qv_members_subject: 0 with *member filled (gone set for
//  a delete or purge), or QV_EPROTO (not an entry of ours).
int
    qv_members_decode (natsMsg *msg, qv_member_t *member);

//  Takes the update a subscription of bus handed to sock (qv_bus_recv) and decodes it:
//  0 with *member and, with key, the KV key it concerns (a delete names nothing else);
//  1 if nothing was there; QV_EPROTO (logged, naming who) if it does not decode.
int
    qv_members_recv (qv_bus_t *bus, zsock_t *sock, const char *who, qv_member_t *member,
                     char *key, size_t size);

//  Subscribes bus to subject, handing updates to inproc endpoint ep, unless *subscribed
//  (set once it succeeds); call it from a timer until then. While it cannot, says so
//  every 30 s (*warned_ms: when it last did), naming who and what it follows.
void
    qv_members_follow (qv_bus_t *bus, const char *subject, const char *ep, bool *subscribed,
                       int64_t *warned_ms, const char *who, const char *what);

#endif
