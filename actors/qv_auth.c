//  The proxy's door: see qv_auth.h.
//
//  DESIGN
//  A peer (a client address; "NATS" for every request of the NATS bridge, as NATS
//  does not say who published, but not its stream messages: see qv_proxy.c) that
//  fails to authenticate S_FREE_FAILS times in a row (failures S_FORGET_MS apart
//  start the count again) is
//  slowed down: for S_DELAY_MS, doubling with each further failure up to S_DELAY_MAX_MS,
//  its tokens that are not already in the store's cache of verified tokens are refused
//  without a crypto_pwhash_str_verify (which costs tens of ms of the proxy's thread).
//  Clients of the same address whose tokens were verified before go on unhindered. A
//  token verified (not found in the cache) forgets the peer's failures. Refusals are counted with every reply
//  (qv_opstats, by code) and the start of each slow-down is logged.
#include "qv_auth.h"
#include "qv_rc.h"

#include <czmq.h>

#define S_FREE_FAILS 3              //  failures of a peer before it is slowed down
#define S_DELAY_MS 2000             //  the first slow-down
#define S_DELAY_MAX_MS 60000
#define S_PEERS_MAX 65536           //  peers remembered (forgotten all at once beyond)
#define S_FORGET_MS 600000          //  a peer's failures are forgotten after this quiet

typedef struct {
    uint32_t fails;                 //  failures in a row
    int64_t until;                  //  slowed down until (ms), 0 if not
    int64_t last;                   //  the last failure (ms)
} s_peer_t;

struct _qv_auth_t {
    bool enabled;
    qv_users_t *users;
    zhashx_t *peers;                //  address -> s_peer_t
};

static void
s_peer_free (void **item)
{
    free (*item);
    *item = NULL;
}

//  Root from the environment, if its password is there and root is not stored.
static void
s_root_from_env (qv_auth_t *self)
{
    const char *password = getenv ("QUIVER_ROOT_PASSWORD");
    if (self->enabled && password && qv_users_set_root_password (self->users, password))
        qv_error ("QUIVER_ROOT_PASSWORD: %s", qv_err_msg ());
}

qv_auth_t *
qv_auth_new (bool enabled)
{
    qv_auth_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    self->enabled = enabled;
    self->users = qv_users_new ();
    self->peers = zhashx_new ();
    if (!self->users || !self->peers) {
        qv_auth_destroy (&self);
        return NULL;
    }
    zhashx_set_destructor (self->peers, s_peer_free);
    s_root_from_env (self);
    return self;
}

void
qv_auth_destroy (qv_auth_t **self_p)
{
    qv_auth_t *self = *self_p;
    if (self) {
        qv_users_destroy (&self->users);
        zhashx_destroy (&self->peers);
        free (self);
        *self_p = NULL;
    }
}

void
qv_auth_set_users (qv_auth_t *self, qv_users_t **users_p)
{
    if (!*users_p)
        return;                     //  out of memory copying it: keep the one held
    qv_users_destroy (&self->users);
    self->users = *users_p;
    *users_p = NULL;
    s_root_from_env (self);
}

qv_users_t *
qv_auth_users (qv_auth_t *self)
{
    return self->users;
}

int
qv_auth_root_check (qv_users_t *users)
{
    if (qv_users_has (users, QV_ROOT_USER) || getenv ("QUIVER_ROOT_PASSWORD"))
        return 0;
    return qv_err (QV_EINVAL, "--auth: no root user is stored yet; give its first password "
                   "in the environment variable QUIVER_ROOT_PASSWORD");
}

//  A failure of peer: counted, and the peer slowed down past S_FREE_FAILS.
static void
s_failed (qv_auth_t *self, const char *peer, const char *user, int64_t now)
{
    if (!peer [0])
        return;
    s_peer_t *p = zhashx_lookup (self->peers, peer);
    if (!p) {
        if (zhashx_size (self->peers) >= S_PEERS_MAX)
            zhashx_purge (self->peers);
        if (!(p = calloc (1, sizeof *p)))
            return;
        zhashx_insert (self->peers, peer, p);
    }
    //  Stray failures long apart do not add up (on the shared NATS peer, days of them
    //  would otherwise slow down every NATS client at the next cache flush)
    if (p->last && now - p->last > S_FORGET_MS)
        p->fails = 0;
    p->last = now;
    if (++p->fails > S_FREE_FAILS) {
        uint32_t doublings = p->fails - S_FREE_FAILS - 1;
        int64_t delay = doublings >= 5 ? S_DELAY_MAX_MS : (int64_t) S_DELAY_MS << doublings;
        if (delay > S_DELAY_MAX_MS)
            delay = S_DELAY_MAX_MS;
        p->until = now + delay;
        qv_warn ("auth: %u failed authentications in a row from %s (the last as user "
                 "'%s'): its new tokens are refused for %lld ms", p->fails, peer, user,
                 (long long) delay);
    }
}

int
qv_auth_check (qv_auth_t *self, const qv_req_t *req, const char *token, const char *peer,
               int64_t now, char *user_out, size_t size)
{
    if (size)
        user_out [0] = 0;
    if (!self->enabled || req->op == QV_OP_ping)
        return 0;
    const char *s = token;
    size_t n = token ? strlen (token) : 0;
    if (!token && req->f [QV_F_token])
        qv_val_str (req->f [QV_F_token], &s, &n);
    if (!s)
        return qv_err (QV_EUNAUTH, "this server requires authentication: send `token` "
                       "(\"user:password\"; over NATS also the header Authorization: "
                       "Bearer user:password)");
    s_peer_t *p = peer [0] ? zhashx_lookup (self->peers, peer) : NULL;
    bool slowed = p && p->until > now;
    char user [QV_NAME_MAX + 1] = "";
    bool cached;
    int rc = qv_users_authenticate (self->users, s, n, user, sizeof user, slowed, &cached);
    if (rc) {
        if (!slowed)
            s_failed (self, peer, user, now);
        return rc;
    }
    //  Only a token verified now forgets the failures (a cached one would let a peer
    //  that holds one valid token guess others at full speed)
    if (p && !cached)
        zhashx_delete (self->peers, peer);
    const char *privilege = qv_users_privilege_of (req->op);
    const char *on = req->collection [0] ? req->collection : "*";
    if (privilege && streq (privilege, "Admin"))
        on = "*";
    //  Oneself: described, and one's password changed, without Admin
    if (req->op == QV_OP_describe_user || req->op == QV_OP_update_password) {
        char named [QV_NAME_MAX + 1] = "";
        qv_val_strcpy (req->f [QV_F_user], named, sizeof named);
        if (!streq (named, user))
            privilege = "Admin";    //  who may also leave old_password out (a reset)
        else
        if (req->op == QV_OP_update_password && !req->f [QV_F_old_password])
            return qv_err (QV_EINVAL, "update_password of one's own password needs "
                           "old_password (a user with Admin may reset another user's "
                           "without it)");
        on = "*";
    }
    if (size)
        snprintf (user_out, size, "%s", user);
    if (privilege && !qv_users_allowed (self->users, user, on, privilege))
        return qv_err (QV_EPERM, "user '%s' may not %s: it needs privilege %s on %s%s%s",
                       user, qv_op_name (req->op), privilege,
                       streq (on, "*") ? "every collection" : "collection '",
                       streq (on, "*") ? "" : on, streq (on, "*") ? "" : "'");
    return 0;
}
