//  The proxy's door when --auth is on: each request's token authenticated, its op's
//  privilege checked, and peers that fail repeatedly slowed down.
#ifndef QV_AUTH_H_INCLUDED
#define QV_AUTH_H_INCLUDED

#include "qv_users.h"

typedef struct _qv_auth_t qv_auth_t;

//  enabled: --auth (off: every request passes, its token ignored). The store starts
//  empty but for root from QUIVER_ROOT_PASSWORD, if set. NULL if out of memory.
qv_auth_t *
    qv_auth_new (bool enabled);
void
    qv_auth_destroy (qv_auth_t **self_p);

//  The store recovered (taken): replaces the one held; root from the environment
//  again if it has no root stored.
void
    qv_auth_set_users (qv_auth_t *self, qv_users_t **users_p);
//  The store held (borrowed), kept in step by the proxy (qv_users_apply).
qv_users_t *
    qv_auth_users (qv_auth_t *self);

//  --auth needs a root user: stored in users, or its first password in the environment
//  variable QUIVER_ROOT_PASSWORD (root from the environment in users counts). 0, or
//  QV_EINVAL with a message that names what is missing, for every role's refusal to
//  serve (the embedded server, searcher, meta and proxy processes).
int
    qv_auth_root_check (qv_users_t *users);

//  Admits req from peer (its address, "" if none: not slowed down), at now (ms), with
//  token if not NULL (a NATS message's header), else the request's `token`:
//  0, QV_EUNAUTH (no token, a wrong one, or a peer that failed too often: its tokens
//  not verified before are refused for a while) or QV_EPERM naming op, privilege and
//  collection. Never puts the password in a message or a log line. user (size bytes):
//  the authenticated user, "" when authentication is off or the op needs none.
int
    qv_auth_check (qv_auth_t *self, const qv_req_t *req, const char *token, const char *peer,
                   int64_t now, char *user_out, size_t size);

#endif
