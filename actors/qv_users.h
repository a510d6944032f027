//  The user store: users (password hashes), roles, and the privileges roles grant per
//  collection; authentication of request tokens and privilege checks.
#ifndef QV_USERS_H_INCLUDED
#define QV_USERS_H_INCLUDED

#include "qv_proto.h"
#include "qv_record.h"

#define QV_ROOT_USER "root"
#define QV_PASSWORD_MIN 6           //  password length, bytes (as Milvus)
#define QV_PASSWORD_MAX 256

typedef struct _qv_users_t qv_users_t;

qv_users_t *
    qv_users_new (void);
void
    qv_users_destroy (qv_users_t **self_p);
//  A copy of what self stores (root's password from the environment included); NULL
//  if out of memory.
qv_users_t *
    qv_users_dup (qv_users_t *self);

//  Checks that change can apply (the user or role exists, or does not yet, as its
//  action needs): 0, or QV_ENOTFOUND / QV_EEXIST / QV_EINVAL with a message.
int
    qv_users_check (qv_users_t *self, const qv_user_change_t *change);
//  Applies a logged change (qv_users_check first: the same codes, and nothing changes
//  when it fails). Forgets every cached token.
int
    qv_users_apply (qv_users_t *self, const qv_user_change_t *change);

//  The store as one msgpack map (in the manifest): {"users": [{"name", "hash",
//  "roles": [...]}], "roles": [{"name", "grants": [[collection, privilege], ...]}]}.
//  Root's password from the environment is not written.
void
    qv_users_write (qv_users_t *self, qv_wr_t *w);
//  Replaces the store's contents with the map qv_users_write wrote: 0, or QV_ECORRUPT.
int
    qv_users_read (qv_users_t *self, const qv_val_t *map);

//  True if user is stored (root from the environment counts).
bool
    qv_users_has (qv_users_t *self, const char *user);
//  Root's password when root is not stored (QUIVER_ROOT_PASSWORD): hashed and kept in
//  memory only; a stored root (update_password of root logs one) takes precedence.
//  0, or QV_EINVAL (length) / QV_ENOMEM.
int
    qv_users_set_root_password (qv_users_t *self, const char *password);

//  crypto_pwhash_str of password (interactive limits) into *hash (malloc'd): 0, or
//  QV_EINVAL (length out of QV_PASSWORD_MIN..MAX) / QV_ENOMEM.
int
    qv_users_hash (const char *password, size_t len, char **hash);
//  True if password is user's.
bool
    qv_users_verify (qv_users_t *self, const char *user, const char *password, size_t len);

//  Authenticates a token "user:password": the user's name into user (size bytes) and
//  0, or QV_EUNAUTH (the message never holds the password). A token verified before
//  (and no change to the store since) is found in a cache keyed by its BLAKE2b hash,
//  without paying crypto_pwhash_str_verify again.
//  cached_only: a token not in the cache fails at once (QV_EUNAUTH), without a verify.
//  *cached (if not NULL): whether the token was found in the cache.
int
    qv_users_authenticate (qv_users_t *self, const char *token, size_t len, char *user,
                           size_t size, bool cached_only, bool *cached);

//  True if op changes the store (create_user ... revoke_privilege: logged writes).
bool
    qv_users_op_changes (qv_op_t op);

//  The change an auth write asks for (create_user ... revoke_privilege), checked
//  against the store (qv_users_check), its password hashed; update_password's
//  old_password verified when given (QV_EINVAL if it is not the user's; absent, a
//  reset that qv_auth_check has allowed). 0 and *change (owned
//  by the caller, free with qv_user_change_free), or a code with a message.
int
    qv_users_change_from_request (qv_users_t *self, const qv_req_t *req,
                                  qv_user_change_t **change);
void
    qv_user_change_free (qv_user_change_t **change_p);

//  The privilege an op needs (on the request's collection, or on "*" for Admin), or
//  NULL if it needs only a valid token (ping, metadata reads; update_password and
//  describe_user of oneself are judged by the proxy).
const char *
    qv_users_privilege_of (qv_op_t op);
//  True if user holds privilege on collection (through any role; root holds all).
bool
    qv_users_allowed (qv_users_t *self, const char *user, const char *collection,
                      const char *privilege);
//  True if name is a privilege (Search, Query, Insert, Delete, CreateIndex, DDL,
//  Admin, *).
bool
    qv_users_privilege_valid (const char *name);

//  Reply fields: "users" (names, sorted) / "roles" (names, sorted) / describe_user's
//  "user", "roles" (list of {"role", "privileges": [{"collection", "privilege"}]}):
//  key/value pairs into an open map (qv_wr_map_open). describe: QV_ENOTFOUND if the
//  user does not exist (nothing written). describe_role: "role", "privileges" (as
//  describe_user's), QV_ENOTFOUND if the role does not exist.
void
    qv_users_write_users (qv_users_t *self, qv_wr_t *w);
void
    qv_users_write_roles (qv_users_t *self, qv_wr_t *w);
int
    qv_users_describe (qv_users_t *self, const char *user, qv_wr_t *w);
int
    qv_users_describe_role (qv_users_t *self, const char *role, qv_wr_t *w);

#endif
