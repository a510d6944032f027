//  The user store and authentication: see qv_users.h.
//
//  DESIGN
//  The store changes only by logged QV_REC_USER records (the WAL is the source of
//  truth): the proxy checks a change against its copy (qv_users_check), hashes a new
//  password, and logs it; the catalog applies it (and writes the store into every
//  manifest), and the proxy applies it to its copy when the write is acknowledged.
//  Passwords are kept only as crypto_pwhash_str strings (Argon2id, interactive limits:
//  about 64 MiB and a few tens of ms per hash or verify). A token once verified is
//  cached by its BLAKE2b hash (never the token), so a search does not pay the verify;
//  the cache is emptied by any change to the store.
#include "qv_users.h"
#include "qv_rc.h"

#include <czmq.h>
#include <sodium.h>

#define S_CACHE_MAX 4096            //  tokens cached at most (emptied when full)

typedef struct {
    char *hash;                     //  crypto_pwhash_str string
    zhashx_t *roles;                //  role name -> (void *) 1
    bool from_env;                  //  root's password from the environment: not stored
} s_user_t;

typedef struct {
    zhashx_t *grants;               //  "collection\nprivilege" -> its grantor (a string,
                                    //  "" when unknown: granted with authentication off,
                                    //  or before grantors were kept)
    bool builtin;                   //  admin or public, as Milvus has them: not stored
} s_role_t;

//  Milvus's built-in roles: `admin` holds every privilege on every collection,
//  `public` none (the metadata reads every valid token may make are its privileges
//  in Milvus). Neither is stored nor changed; a stored role of the same name (made
//  before they were built in) is kept instead.
#define S_ROLE_ADMIN  "admin"
#define S_ROLE_PUBLIC "public"

struct _qv_users_t {
    zhashx_t *users;                //  name -> s_user_t
    zhashx_t *roles;                //  name -> s_role_t
    zhashx_t *cache;                //  hex BLAKE2b of a verified token -> user name
    char *decoy;                    //  a hash verified for unknown users (made when first
                                    //  needed), so they take as long as a wrong password
};

static int s_add_builtins (qv_users_t *self);

static const char *s_privileges [] = {
    "Search", "Query", "Insert", "Delete", "CreateIndex", "DDL", "Admin", "*"
};

static void
s_user_free (void **item)
{
    s_user_t *u = *item;
    if (u) {
        free (u->hash);
        zhashx_destroy (&u->roles);
        free (u);
        *item = NULL;
    }
}

static void
s_role_free (void **item)
{
    s_role_t *r = *item;
    if (r) {
        zhashx_destroy (&r->grants);
        free (r);
        *item = NULL;
    }
}

static void
s_str_free (void **item)
{
    free (*item);
    *item = NULL;
}

qv_users_t *
qv_users_new (void)
{
    if (sodium_init () < 0) {
        qv_err (QV_ERR, "libsodium does not initialise");
        return NULL;
    }
    qv_users_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    self->users = zhashx_new ();
    self->roles = zhashx_new ();
    self->cache = zhashx_new ();
    zhashx_set_destructor (self->users, s_user_free);
    zhashx_set_destructor (self->roles, s_role_free);
    zhashx_set_destructor (self->cache, s_str_free);
    if (s_add_builtins (self))
        qv_users_destroy (&self);
    return self;
}

void
qv_users_destroy (qv_users_t **self_p)
{
    qv_users_t *self = *self_p;
    if (self) {
        zhashx_destroy (&self->users);
        zhashx_destroy (&self->roles);
        zhashx_destroy (&self->cache);
        free (self->decoy);
        free (self);
        *self_p = NULL;
    }
}

//  A new user with hash (taken); NULL if out of memory.
static s_user_t *
s_user_new (char **hash_p)
{
    s_user_t *u = calloc (1, sizeof *u);
    if (!u)
        return NULL;
    u->roles = zhashx_new ();
    u->hash = *hash_p;
    *hash_p = NULL;
    return u;
}

static void *
s_str_dup (const void *item)
{
    return strdup (item);
}

static s_role_t *
s_role_new (void)
{
    s_role_t *r = calloc (1, sizeof *r);
    if (r && (r->grants = zhashx_new ())) {
        zhashx_set_duplicator (r->grants, s_str_dup);       //  values: the grantors, copied
        zhashx_set_destructor (r->grants, s_str_free);
    }
    return r;
}

static void
s_grant_key (const char *collection, const char *privilege, char *out, size_t size)
{
    snprintf (out, size, "%s\n%s", collection, privilege);
}

//  Adds the built-in roles a store lacks. 0 or QV_ENOMEM.
static int
s_add_builtins (qv_users_t *self)
{
    const char *names [2] = { S_ROLE_ADMIN, S_ROLE_PUBLIC };
    for (int i = 0; i < 2; i++) {
        if (zhashx_lookup (self->roles, names [i]))
            continue;
        s_role_t *r = s_role_new ();
        if (!r)
            return qv_err (QV_ENOMEM, "out of memory");
        r->builtin = true;
        if (i == 0) {
            char key [8];
            s_grant_key ("*", "*", key, sizeof key);
            if (zhashx_insert (r->grants, key, "") || !zhashx_lookup (r->grants, key)) {
                void *item = r;
                s_role_free (&item);
                return qv_err (QV_ENOMEM, "out of memory");
            }
        }
        zhashx_insert (self->roles, names [i], r);
    }
    return 0;
}

bool
qv_users_privilege_valid (const char *name)
{
    for (size_t i = 0; i < sizeof s_privileges / sizeof s_privileges [0]; i++)
        if (streq (name, s_privileges [i]))
            return true;
    return false;
}

int
qv_users_check (qv_users_t *self, const qv_user_change_t *ch)
{
    s_user_t *u = ch->user [0] ? zhashx_lookup (self->users, ch->user) : NULL;
    s_role_t *r = ch->role [0] ? zhashx_lookup (self->roles, ch->role) : NULL;
    //  A root from the environment may be stored (update_password of root)
    bool stored = u && !u->from_env;
    switch (ch->action) {
        case QV_USER_CREATE:
            if (stored || (u && !streq (ch->user, QV_ROOT_USER)))
                return qv_err (QV_EEXIST, "user '%s' already exists", ch->user);
            break;
        case QV_USER_DROP:
            if (streq (ch->user, QV_ROOT_USER))
                return qv_err (QV_EINVAL, "user '%s' cannot be dropped", QV_ROOT_USER);
            if (!u)
                return qv_err (QV_ENOTFOUND, "user '%s' does not exist", ch->user);
            break;
        case QV_USER_PASSWORD:
            //  (root's first change stores it: the catalog's copy has no root from
            //  the environment, the proxy has verified the old password against it)
            if (!u && !streq (ch->user, QV_ROOT_USER))
                return qv_err (QV_ENOTFOUND, "user '%s' does not exist", ch->user);
            break;
        case QV_ROLE_CREATE:
            if (r)
                return qv_err (QV_EEXIST, "role '%s' already exists", ch->role);
            break;
        case QV_ROLE_DROP:
        case QV_PRIV_GRANT:
        case QV_PRIV_REVOKE:
            if (!r)
                return qv_err (QV_ENOTFOUND, "role '%s' does not exist", ch->role);
            if (r->builtin)
                return qv_err (QV_EINVAL, "role '%s' is built in (admin: every privilege on "
                               "every collection; public: none) and cannot be %s", ch->role,
                               ch->action == QV_ROLE_DROP ? "dropped" : "changed");
            if (ch->action != QV_ROLE_DROP && !qv_users_privilege_valid (ch->privilege))
                return qv_err (QV_EINVAL, "privilege '%.32s' is not one of Search, Query, Insert, "
                               "Delete, CreateIndex, DDL, Admin, *", ch->privilege);
            break;
        case QV_ROLE_GRANT:
        case QV_ROLE_REVOKE:
            if (!u)
                return qv_err (QV_ENOTFOUND, "user '%s' does not exist", ch->user);
            if (!r)
                return qv_err (QV_ENOTFOUND, "role '%s' does not exist", ch->role);
            if (streq (ch->user, QV_ROOT_USER))
                return qv_err (QV_EINVAL, "user '%s' holds every privilege; it takes no roles",
                               QV_ROOT_USER);
            break;
        default:
            return qv_err (QV_EINVAL, "unknown user change %d", (int) ch->action);
    }
    if ((ch->action == QV_USER_CREATE || ch->action == QV_USER_PASSWORD) && !ch->hash)
        return qv_err (QV_EINVAL, "a password change without a hash");
    return 0;
}

int
qv_users_apply (qv_users_t *self, const qv_user_change_t *ch)
{
    int rc = qv_users_check (self, ch);
    if (rc)
        return rc;
    zhashx_purge (self->cache);
    char key [2 * (QV_NAME_MAX + 1) + 16];
    char *hash = ch->hash ? strdup (ch->hash) : NULL;
    if ((ch->action == QV_USER_CREATE || ch->action == QV_USER_PASSWORD) && !hash)
        return qv_err (QV_ENOMEM, "out of memory");
    s_user_t *u = ch->user [0] ? zhashx_lookup (self->users, ch->user) : NULL;
    s_role_t *r = ch->role [0] ? zhashx_lookup (self->roles, ch->role) : NULL;
    switch (ch->action) {
        case QV_USER_CREATE:
        case QV_USER_PASSWORD:
            if (u) {                //  a password change, or root stored at last
                free (u->hash);
                u->hash = hash;
                u->from_env = false;
            }
            else {
                if (!(u = s_user_new (&hash))) {
                    free (hash);
                    return qv_err (QV_ENOMEM, "out of memory");
                }
                zhashx_insert (self->users, ch->user, u);
            }
            break;
        case QV_USER_DROP:
            zhashx_delete (self->users, ch->user);
            break;
        case QV_ROLE_CREATE:
            if (!(r = s_role_new ()))
                return qv_err (QV_ENOMEM, "out of memory");
            zhashx_insert (self->roles, ch->role, r);
            break;
        case QV_ROLE_DROP:
            for (u = zhashx_first (self->users); u; u = zhashx_next (self->users))
                zhashx_delete (u->roles, ch->role);
            zhashx_delete (self->roles, ch->role);
            break;
        case QV_ROLE_GRANT:
            zhashx_update (u->roles, ch->role, (void *) 1);
            break;
        case QV_ROLE_REVOKE:
            zhashx_delete (u->roles, ch->role);
            break;
        case QV_PRIV_GRANT:
        case QV_PRIV_REVOKE:
            s_grant_key (ch->collection, ch->privilege, key, sizeof key);
            if (ch->action == QV_PRIV_GRANT) {
                zhashx_update (r->grants, key, (void *) ch->grantor);
                if (!zhashx_lookup (r->grants, key)) {     //  its grantor not copied
                    zhashx_delete (r->grants, key);
                    return qv_err (QV_ENOMEM, "out of memory");
                }
            }
            else
                zhashx_delete (r->grants, key);
            break;
    }
    return 0;
}

//  The keys of a hash, sorted (strings owned by the list).
static zlistx_t *
s_sorted_keys (zhashx_t *hash)
{
    zlistx_t *keys = zhashx_keys (hash);
    zlistx_set_comparator (keys, (zlistx_comparator_fn *) strcmp);
    zlistx_sort (keys);
    return keys;
}

static void
s_write_names (zhashx_t *hash, qv_wr_t *w)
{
    zlistx_t *keys = s_sorted_keys (hash);
    qv_wr_array (w, zlistx_size (keys));
    for (const char *k = zlistx_first (keys); k; k = zlistx_next (keys))
        qv_wr_str (w, k);
    zlistx_destroy (&keys);
}

//  A role's grants as [[collection, privilege, grantor], ...] (the store's form), or
//  [{"collection", "privilege", "grantor"}, ...] (replies), sorted.
static void
s_write_grants (s_role_t *r, qv_wr_t *w, bool as_maps)
{
    zlistx_t *keys = s_sorted_keys (r->grants);
    qv_wr_array (w, zlistx_size (keys));
    for (const char *k = zlistx_first (keys); k; k = zlistx_next (keys)) {
        const char *nl = strchr (k, '\n');
        if (as_maps) {
            qv_wr_map (w, 3);
            qv_wr_str (w, "collection");
        }
        else
            qv_wr_array (w, 3);
        qv_wr_strn (w, k, (size_t) (nl - k));
        if (as_maps)
            qv_wr_str (w, "privilege");
        qv_wr_str (w, nl + 1);
        if (as_maps)
            qv_wr_str (w, "grantor");
        const char *grantor = zhashx_lookup (r->grants, k);
        qv_wr_str (w, grantor ? grantor : "");      //  NULL: out of memory copying it
    }
    zlistx_destroy (&keys);
}

void
qv_users_write (qv_users_t *self, qv_wr_t *w)
{
    size_t stored = 0;
    for (s_user_t *u = zhashx_first (self->users); u; u = zhashx_next (self->users))
        stored += !u->from_env;
    qv_wr_map (w, 2);
    qv_wr_str (w, "users");
    qv_wr_array (w, stored);
    zlistx_t *names = s_sorted_keys (self->users);
    for (const char *name = zlistx_first (names); name; name = zlistx_next (names)) {
        s_user_t *u = zhashx_lookup (self->users, name);
        if (u->from_env)
            continue;
        qv_wr_map (w, 3);
        qv_wr_str (w, "name"); qv_wr_str (w, name);
        qv_wr_str (w, "hash"); qv_wr_str (w, u->hash);
        qv_wr_str (w, "roles"); s_write_names (u->roles, w);
    }
    zlistx_destroy (&names);
    qv_wr_str (w, "roles");
    size_t builtins = 0;
    for (s_role_t *r = zhashx_first (self->roles); r; r = zhashx_next (self->roles))
        builtins += r->builtin;
    qv_wr_array (w, zhashx_size (self->roles) - builtins);
    names = s_sorted_keys (self->roles);
    for (const char *name = zlistx_first (names); name; name = zlistx_next (names)) {
        if (((s_role_t *) zhashx_lookup (self->roles, name))->builtin)
            continue;
        qv_wr_map (w, 2);
        qv_wr_str (w, "name"); qv_wr_str (w, name);
        qv_wr_str (w, "grants"); s_write_grants (zhashx_lookup (self->roles, name), w, false);
    }
    zlistx_destroy (&names);
}

int
qv_users_read (qv_users_t *self, const qv_val_t *map)
{
    zhashx_purge (self->users);
    zhashx_purge (self->roles);
    zhashx_purge (self->cache);
    const qv_val_t *users = qv_val_get (map, "users"), *roles = qv_val_get (map, "roles"), *v;
    if (!users || qv_val_type (users) != QV_V_ARRAY || !roles || qv_val_type (roles) != QV_V_ARRAY)
        goto corrupt;
    char name [QV_NAME_MAX + 1], coll [QV_NAME_MAX + 1], priv [16], grantor [QV_NAME_MAX + 1];
    char key [2 * (QV_NAME_MAX + 1) + 16];
    for (size_t i = 0; i < qv_val_len (roles); i++) {
        const qv_val_t *rv = qv_val_at (roles, i), *grants;
        if (!(v = qv_val_get (rv, "name")) || qv_val_strcpy (v, name, sizeof name)
        ||  !(grants = qv_val_get (rv, "grants")) || qv_val_type (grants) != QV_V_ARRAY)
            goto corrupt;
        s_role_t *r = s_role_new ();
        if (!r)
            return qv_err (QV_ENOMEM, "out of memory");
        zhashx_update (self->roles, name, r);
        for (size_t j = 0; j < qv_val_len (grants); j++) {
            const qv_val_t *g = qv_val_at (grants, j);
            //  [collection, privilege] in stores written before grantors were kept
            grantor [0] = 0;
            if (qv_val_type (g) != QV_V_ARRAY || qv_val_len (g) < 2 || qv_val_len (g) > 3
            ||  qv_val_strcpy (qv_val_at (g, 0), coll, sizeof coll)
            ||  qv_val_strcpy (qv_val_at (g, 1), priv, sizeof priv)
            ||  (qv_val_len (g) == 3 && qv_val_strcpy (qv_val_at (g, 2), grantor, sizeof grantor)))
                goto corrupt;
            s_grant_key (coll, priv, key, sizeof key);
            zhashx_update (r->grants, key, grantor);
            if (!zhashx_lookup (r->grants, key))
                return qv_err (QV_ENOMEM, "out of memory");
        }
    }
    for (size_t i = 0; i < qv_val_len (users); i++) {
        const qv_val_t *uv = qv_val_at (users, i), *hv, *rl;
        const char *s;
        size_t n;
        if (!(v = qv_val_get (uv, "name")) || qv_val_strcpy (v, name, sizeof name)
        ||  !(hv = qv_val_get (uv, "hash")) || qv_val_str (hv, &s, &n)
        ||  !(rl = qv_val_get (uv, "roles")) || qv_val_type (rl) != QV_V_ARRAY)
            goto corrupt;
        char *hash = strndup (s, n);
        s_user_t *u = hash ? s_user_new (&hash) : NULL;
        if (!u) {
            free (hash);
            return qv_err (QV_ENOMEM, "out of memory");
        }
        zhashx_update (self->users, name, u);
        for (size_t j = 0; j < qv_val_len (rl); j++) {
            if (qv_val_strcpy (qv_val_at (rl, j), name, sizeof name))
                goto corrupt;
            zhashx_update (u->roles, name, (void *) 1);
        }
    }
    return s_add_builtins (self);
corrupt:
    s_add_builtins (self);
    return qv_err (QV_ECORRUPT, "the user store does not match its format");
}

qv_users_t *
qv_users_dup (qv_users_t *self)
{
    qv_users_t *copy = qv_users_new ();
    if (!copy)
        return NULL;
    qv_wr_t *w = qv_wr_new ();
    qv_users_write (self, w);
    size_t size;
    const void *data = qv_wr_data (w, &size);
    int rc;
    qv_doc_t *doc = qv_doc_parse_view (data, size, SIZE_MAX, &rc);
    if (!doc || qv_users_read (copy, qv_doc_root (doc)))
        qv_users_destroy (&copy);
    qv_doc_destroy (&doc);
    qv_wr_destroy (&w);
    s_user_t *root = self->users ? zhashx_lookup (self->users, QV_ROOT_USER) : NULL;
    if (copy && root && root->from_env) {
        char *hash = strdup (root->hash);
        s_user_t *u = hash ? s_user_new (&hash) : NULL;
        if (!u) {
            free (hash);
            qv_users_destroy (&copy);
            return NULL;
        }
        u->from_env = true;
        zhashx_update (copy->users, QV_ROOT_USER, u);
    }
    return copy;
}

bool
qv_users_has (qv_users_t *self, const char *user)
{
    return zhashx_lookup (self->users, user) != NULL;
}

int
qv_users_hash (const char *password, size_t len, char **hash)
{
    *hash = NULL;
    if (len < QV_PASSWORD_MIN || len > QV_PASSWORD_MAX)
        return qv_err (QV_EINVAL, "a password has %d to %d bytes", QV_PASSWORD_MIN,
                       QV_PASSWORD_MAX);
    char out [crypto_pwhash_STRBYTES];
    if (crypto_pwhash_str (out, password, len, crypto_pwhash_OPSLIMIT_INTERACTIVE,
                           crypto_pwhash_MEMLIMIT_INTERACTIVE) != 0)
        return qv_err (QV_ENOMEM, "out of memory hashing a password");
    *hash = strdup (out);
    sodium_memzero (out, sizeof out);
    return *hash ? 0 : qv_err (QV_ENOMEM, "out of memory");
}

int
qv_users_set_root_password (qv_users_t *self, const char *password)
{
    s_user_t *root = zhashx_lookup (self->users, QV_ROOT_USER);
    if (root && !root->from_env)
        return 0;                   //  stored: it wins
    char *hash;
    int rc = qv_users_hash (password, strlen (password), &hash);
    if (rc)
        return rc;
    s_user_t *u = s_user_new (&hash);
    if (!u) {
        free (hash);
        return qv_err (QV_ENOMEM, "out of memory");
    }
    u->from_env = true;
    zhashx_update (self->users, QV_ROOT_USER, u);
    zhashx_purge (self->cache);
    return 0;
}

bool
qv_users_verify (qv_users_t *self, const char *user, const char *password, size_t len)
{
    s_user_t *u = zhashx_lookup (self->users, user);
    if (len > QV_PASSWORD_MAX)
        return false;
    if (!u) {
        //  The same work as for a user who exists: timing does not tell who does
        char random [16];
        randombytes_buf (random, sizeof random);
        if (!self->decoy && qv_users_hash (random, sizeof random, &self->decoy))
            return false;
        int unused = crypto_pwhash_str_verify (self->decoy, password, len);
        (void) unused;
        return false;
    }
    return crypto_pwhash_str_verify (u->hash, password, len) == 0;
}

int
qv_users_authenticate (qv_users_t *self, const char *token, size_t len, char *user,
                       size_t size, bool cached_only, bool *cached)
{
    if (cached)
        *cached = false;
    const char *colon = memchr (token, ':', len);
    size_t ulen = colon ? (size_t) (colon - token) : 0;
    if (!colon || ulen == 0 || ulen > QV_NAME_MAX || ulen >= size)
        return qv_err (QV_EUNAUTH, "the token must be \"user:password\"");
    memcpy (user, token, ulen);
    user [ulen] = 0;
    unsigned char digest [32];
    char hex [2 * sizeof digest + 1];
    crypto_generichash (digest, sizeof digest, (const unsigned char *) token, len, NULL, 0);
    sodium_bin2hex (hex, sizeof hex, digest, sizeof digest);
    const char *known = zhashx_lookup (self->cache, hex);
    if (known && streq (known, user)) {
        if (cached)
            *cached = true;
        return 0;
    }
    if (cached_only)
        return qv_err (QV_EUNAUTH, "user '%s': too many failed authentications from this "
                       "address (over NATS: from NATS clients); retry later", user);
    if (!qv_users_verify (self, user, colon + 1, len - ulen - 1))
        return qv_err (QV_EUNAUTH, "user '%s' does not exist or the password is wrong", user);
    if (zhashx_size (self->cache) >= S_CACHE_MAX)
        zhashx_purge (self->cache);
    char *name = strdup (user);
    if (name && zhashx_insert (self->cache, hex, name) != 0)
        free (name);
    return 0;
}

const char *
qv_users_privilege_of (qv_op_t op)
{
    switch (op) {
        case QV_OP_search:
            return "Search";
        case QV_OP_query:
        case QV_OP_get:
            return "Query";
        case QV_OP_insert:
        case QV_OP_upsert:
            return "Insert";
        case QV_OP_delete:
            return "Delete";
        case QV_OP_create_index:
        case QV_OP_drop_index:
            return "CreateIndex";
        case QV_OP_create_collection:
        case QV_OP_drop_collection:
        case QV_OP_create_partition:
        case QV_OP_drop_partition:
        case QV_OP_alter_collection:
        case QV_OP_flush:
        case QV_OP_compact:
            return "DDL";
        case QV_OP_create_user:
        case QV_OP_drop_user:
        case QV_OP_create_role:
        case QV_OP_drop_role:
        case QV_OP_grant_role:
        case QV_OP_revoke_role:
        case QV_OP_grant_privilege:
        case QV_OP_revoke_privilege:
        case QV_OP_list_users:
        case QV_OP_list_roles:
        case QV_OP_describe_role:
        case QV_OP_backup:
        case QV_OP_get_backup_state:
            return "Admin";
        default:
            return NULL;            //  ping, metadata reads, update_password, describe_user
    }
}

bool
qv_users_allowed (qv_users_t *self, const char *user, const char *collection,
                  const char *privilege)
{
    if (streq (user, QV_ROOT_USER))
        return true;
    s_user_t *u = zhashx_lookup (self->users, user);
    if (!u)
        return false;
    char key [2 * (QV_NAME_MAX + 1) + 16];
    const char *colls [2] = { collection, "*" };
    const char *privs [2] = { privilege, "*" };
    for (void *it = zhashx_first (u->roles); it; it = zhashx_next (u->roles)) {
        s_role_t *r = zhashx_lookup (self->roles, zhashx_cursor (u->roles));
        for (int i = 0; r && i < 2; i++)
            for (int j = 0; j < 2; j++) {
                s_grant_key (colls [i], privs [j], key, sizeof key);
                if (zhashx_lookup (r->grants, key))
                    return true;
            }
    }
    return false;
}

void
qv_users_write_users (qv_users_t *self, qv_wr_t *w)
{
    qv_wr_key (w, "users");
    s_write_names (self->users, w);
}

void
qv_users_write_roles (qv_users_t *self, qv_wr_t *w)
{
    qv_wr_key (w, "roles");
    s_write_names (self->roles, w);
}

int
qv_users_describe (qv_users_t *self, const char *user, qv_wr_t *w)
{
    s_user_t *u = zhashx_lookup (self->users, user);
    if (!u)
        return qv_err (QV_ENOTFOUND, "user '%s' does not exist", user);
    qv_wr_key (w, "user");
    qv_wr_str (w, user);
    qv_wr_key (w, "roles");
    zlistx_t *names = s_sorted_keys (u->roles);
    qv_wr_array (w, zlistx_size (names));
    for (const char *rn = zlistx_first (names); rn; rn = zlistx_next (names)) {
        s_role_t *r = zhashx_lookup (self->roles, rn);
        qv_wr_map (w, 2);
        qv_wr_str (w, "role"); qv_wr_str (w, rn);
        qv_wr_str (w, "privileges");
        if (r)
            s_write_grants (r, w, true);
        else
            qv_wr_array (w, 0);
    }
    zlistx_destroy (&names);
    return 0;
}

int
qv_users_describe_role (qv_users_t *self, const char *role, qv_wr_t *w)
{
    s_role_t *r = zhashx_lookup (self->roles, role);
    if (!r)
        return qv_err (QV_ENOTFOUND, "role '%s' does not exist", role);
    qv_wr_key (w, "role");
    qv_wr_str (w, role);
    qv_wr_key (w, "privileges");
    s_write_grants (r, w, true);
    return 0;
}

void
qv_user_change_free (qv_user_change_t **change_p)
{
    qv_user_change_t *ch = *change_p;
    if (ch) {
        free (ch->hash);
        free (ch);
        *change_p = NULL;
    }
}

//  A string field of req into out (qv_req_parse has checked kind and names).
static void
s_req_str (const qv_req_t *req, qv_fid_t f, char *out, size_t size)
{
    if (req->f [f])
        qv_val_strcpy (req->f [f], out, size);
}

bool
qv_users_op_changes (qv_op_t op)
{
    return op == QV_OP_create_user || op == QV_OP_drop_user || op == QV_OP_update_password
        || op == QV_OP_create_role || op == QV_OP_drop_role || op == QV_OP_grant_role
        || op == QV_OP_revoke_role || op == QV_OP_grant_privilege
        || op == QV_OP_revoke_privilege;
}

int
qv_users_change_from_request (qv_users_t *self, const qv_req_t *req,
                              qv_user_change_t **change)
{
    *change = NULL;
    qv_user_change_t *ch = calloc (1, sizeof *ch);
    if (!ch)
        return qv_err (QV_ENOMEM, "out of memory");
    s_req_str (req, QV_F_user, ch->user, sizeof ch->user);
    s_req_str (req, QV_F_role, ch->role, sizeof ch->role);
    const char *s;
    size_t n;
    int rc = 0;
    switch (req->op) {
        case QV_OP_create_user: ch->action = QV_USER_CREATE; break;
        case QV_OP_drop_user: ch->action = QV_USER_DROP; break;
        case QV_OP_update_password: ch->action = QV_USER_PASSWORD; break;
        case QV_OP_create_role: ch->action = QV_ROLE_CREATE; break;
        case QV_OP_drop_role: ch->action = QV_ROLE_DROP; break;
        case QV_OP_grant_role: ch->action = QV_ROLE_GRANT; break;
        case QV_OP_revoke_role: ch->action = QV_ROLE_REVOKE; break;
        case QV_OP_grant_privilege: ch->action = QV_PRIV_GRANT; break;
        case QV_OP_revoke_privilege: ch->action = QV_PRIV_REVOKE; break;
        default:
            rc = qv_err (QV_EINVAL, "%s is not a change to users or roles", qv_op_name (req->op));
            goto done;
    }
    if (ch->action == QV_PRIV_GRANT || ch->action == QV_PRIV_REVOKE) {
        snprintf (ch->collection, sizeof ch->collection, "%s", req->collection);
        qv_val_str (req->f [QV_F_privilege], &s, &n);
        if (n >= sizeof ch->privilege) {
            rc = qv_err (QV_EINVAL, "privilege '%.32s' is not one of Search, Query, Insert, "
                         "Delete, CreateIndex, DDL, Admin, *", s);
            goto done;
        }
        memcpy (ch->privilege, s, n);
        if (ch->action == QV_PRIV_GRANT)
            snprintf (ch->grantor, sizeof ch->grantor, "%s", req->user);
    }
    if (ch->action == QV_USER_CREATE) {
        qv_val_str (req->f [QV_F_password], &s, &n);
        if ((rc = qv_users_hash (s, n, &ch->hash)))
            goto done;
    }
    if (ch->action == QV_USER_PASSWORD) {
        if (!qv_users_has (self, ch->user)) {
            rc = qv_err (QV_ENOTFOUND, "user '%s' does not exist", ch->user);
            goto done;
        }
        //  Absent: a reset, which qv_auth_check allowed (Admin, another user) or
        //  authentication is off
        if (req->f [QV_F_old_password])
            qv_val_str (req->f [QV_F_old_password], &s, &n);
        if (req->f [QV_F_old_password] && !qv_users_verify (self, ch->user, s, n)) {
            rc = qv_err (QV_EINVAL, "old_password is not user '%s''s password", ch->user);
            goto done;
        }
        qv_val_str (req->f [QV_F_new_password], &s, &n);
        if ((rc = qv_users_hash (s, n, &ch->hash)))
            goto done;
    }
    rc = qv_users_check (self, ch);
done:
    if (rc)
        qv_user_change_free (&ch);
    *change = ch;
    return rc;
}
