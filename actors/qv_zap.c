//  The ZAP handler: see qv_zap.h.
//
//  DESIGN
//  One REP socket on inproc://zeromq.zap.01 (libzmq asks it, from its I/O threads,
//  once per CURVE handshake of any socket of the context): request frames version,
//  request id, domain, address, routing id, mechanism, credentials (CURVE: the
//  client's 32-byte public key); reply version, request id, status code, status text,
//  user id, metadata. A refused client is logged with its address, the first time and
//  then every 100th (a peer with the wrong key reconnects every 100 ms).
//
//  The --curve-clients file is looked at (stat) at each handshake of the API socket,
//  and read again when it changed (s_clients_refresh): a handshake is rare next to
//  the requests a connection then carries.
#include "qv_zap.h"
#include "qv_client.h"
#include "qv_rc.h"

#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

static void
s_reply (zsock_t *handler, zframe_t *version, zframe_t *id, bool ok, const char *why)
{
    zmsg_t *rep = zmsg_new ();
    zmsg_append (rep, &version);
    zmsg_append (rep, &id);
    zmsg_addstr (rep, ok ? "200" : "400");
    zmsg_addstr (rep, ok ? "OK" : why);
    zmsg_addstr (rep, "");
    zmsg_addmem (rep, NULL, 0);
    zmsg_send (&rep, handler);
}

zhashx_t *
qv_zap_clients_read (const char *path)
{
    FILE *file = fopen (path, "r");
    if (!file) {
        qv_err (QV_EINVAL, "--curve-clients %s cannot be read (%s)", path, strerror (errno));
        return NULL;
    }
    zhashx_t *keys = zhashx_new ();
    char *line = NULL;
    size_t cap = 0;
    int number = 0;
    while (keys && getline (&line, &cap, file) >= 0) {
        number++;
        char *text = line;
        while (*text == ' ' || *text == '\t')
            text++;
        size_t len = strlen (text);
        while (len && (text [len - 1] == '\n' || text [len - 1] == '\r'
                       || text [len - 1] == ' ' || text [len - 1] == '\t'))
            text [--len] = 0;
        //  A key file's line: public-key = "KEY" (its secret-key line is refused
        //  below: a secret has no business in this file)
        if (strncmp (text, "public-key", 10) == 0) {
            char *open = strchr (text, '"'), *close = open ? strchr (open + 1, '"') : NULL;
            if (close) {
                *close = 0;
                text = open + 1;
            }
        }
        if (qv_curve_key_valid (text))
            zhashx_insert (keys, text, (void *) "admitted");
        else
        if (!(*text == 0 || *text == '#' || streq (text, "metadata") || streq (text, "curve"))) {
            qv_err (QV_EINVAL, "--curve-clients %s line %d is not a client's public key (40 "
                    "characters of Z85, or a public-key line of a `quiver keygen` file)",
                    path, number);
            zhashx_destroy (&keys);
        }
    }
    if (keys && ferror (file)) {
        qv_err (QV_EINVAL, "--curve-clients %s cannot be read (%s)", path, strerror (errno));
        zhashx_destroy (&keys);
    }
    free (line);
    fclose (file);
    return keys;
}

//  The --curve-clients file as last read: its keys and what stat said of it.
typedef struct {
    char path [512];
    zhashx_t *keys;                 //  NULL until a read succeeds: nobody is admitted
    bool looked;                    //  st holds the last look's stat
    struct stat st;
    time_t read_at;                 //  when the file was last read
    bool unreadable;                //  the last look failed (logged once)
    zhashx_t *logged;               //  refused keys logged (their first refusal)
} s_clients_t;

static bool
s_same_time (struct timespec a, struct timespec b)
{
    return a.tv_sec == b.tv_sec && a.tv_nsec == b.tv_nsec;
}

//  Reads the file again if it changed since the last look: its inode, size, mtime or
//  ctime differ, or it was modified within 2 s of the last read (a rewrite in the
//  same clock tick leaves the times as they were).
static void
s_clients_refresh (s_clients_t *self)
{
    struct stat st;
    if (stat (self->path, &st) != 0) {
        if (!self->unreadable)
            qv_warn ("--curve-clients %s cannot be read (%s): the API keeps admitting the %zu "
                     "keys read before", self->path, strerror (errno),
                     self->keys ? zhashx_size (self->keys) : (size_t) 0);
        self->unreadable = true;
        return;
    }
    if (self->looked && st.st_ino == self->st.st_ino && st.st_size == self->st.st_size
    &&  s_same_time (st.st_mtim, self->st.st_mtim) && s_same_time (st.st_ctim, self->st.st_ctim)
    &&  self->read_at - st.st_mtim.tv_sec > 2)
        return;
    self->st = st;                  //  one warning per change, not per handshake
    self->looked = true;
    self->read_at = time (NULL);
    self->unreadable = false;
    zhashx_t *keys = qv_zap_clients_read (self->path);
    if (!keys) {
        qv_warn ("%s: the API keeps admitting the %zu keys read before", qv_err_msg (),
                 self->keys ? zhashx_size (self->keys) : (size_t) 0);
        return;
    }
    bool changed = !self->keys || zhashx_size (keys) != zhashx_size (self->keys);
    for (const char *k = zhashx_first (keys); !changed && k; k = zhashx_next (keys))
        changed = !zhashx_lookup (self->keys, zhashx_cursor (keys));
    if (changed)
        qv_info ("--curve-clients %s read: the API admits %zu CURVE client key%s", self->path,
                 zhashx_size (keys), zhashx_size (keys) == 1 ? "" : "s");
    zhashx_destroy (&self->keys);
    self->keys = keys;
}

void
qv_zap_actor (zsock_t *pipe, void *args)
{
    qv_zap_args_t *za = args;
    uint8_t admitted [32] = { 0 };
    char text [41], who [64];
    snprintf (text, sizeof text, "%s", za->key ? za->key : "");
    snprintf (who, sizeof who, "%s", za->who);
    bool have_peer = text [0] && zmq_z85_decode (admitted, text);
    s_clients_t clients = { .keys = NULL };
    if (za->clients && *za->clients) {
        snprintf (clients.path, sizeof clients.path, "%s", za->clients);
        s_clients_refresh (&clients);
        clients.logged = zhashx_new ();
    }
    zsock_t *handler = zsock_new (ZMQ_REP);
    if (!handler || zsock_bind (handler, "inproc://zeromq.zap.01") != 0) {
        //  libzmq then admits every client of a socket with a ZAP domain, unless the
        //  socket enforces it (qv_actor_curve_server does): the caller must stop
        qv_error ("the ZAP handler cannot start (%s): the keys of --curve-peer-key and "
                  "--curve-clients cannot be checked", zmq_strerror (zmq_errno ()));
        zhashx_destroy (&clients.keys);
        zhashx_destroy (&clients.logged);
        zsock_destroy (&handler);
        zsock_signal (pipe, 0);
        char *cmd = zstr_recv (pipe);   //  $TERM
        zstr_free (&cmd);
        return;
    }
    za->bound = true;
    zsock_signal (pipe, 0);
    zpoller_t *poller = zpoller_new (pipe, handler, NULL);
    uint64_t refused = 0, refused_clients = 0;
    while (true) {
        void *which = zpoller_wait (poller, -1);
        if (which != handler)
            break;                      //  $TERM, or interrupted
        zmsg_t *req = zmsg_recv (handler);
        if (!req)
            break;
        zframe_t *version = zmsg_pop (req), *id = zmsg_pop (req);
        if (!version)
            version = zframe_new ("1.0", 3);
        if (!id)
            id = zframe_new (NULL, 0);
        char *domain = zmsg_popstr (req), *address = zmsg_popstr (req);
        zframe_t *routing = zmsg_pop (req);
        char *mechanism = zmsg_popstr (req);
        zframe_t *key = zmsg_pop (req);
        bool curve = mechanism && streq (mechanism, "CURVE") && key && zframe_size (key) == 32;
        bool ok = true;
        const char *why = "";
        if (domain && streq (domain, QV_ZAP_PEERS)) {
            ok = curve && have_peer && memcmp (zframe_data (key), admitted, 32) == 0;
            why = "client key not admitted (--curve-peer-key)";
            if (!ok && refused++ % 100 == 0)
                qv_warn ("%s refused a client from %s with another CURVE key than "
                         "--curve-peer-key (%llu so far)", who, address ? address : "?",
                         (unsigned long long) refused);
        }
        else
        if (domain && streq (domain, QV_ZAP_CLIENTS)) {
            char z85 [41] = "";
            if (curve)
                zmq_z85_encode (z85, zframe_data (key), 32);
            if (clients.path [0])
                s_clients_refresh (&clients);
            ok = curve && clients.keys && zhashx_lookup (clients.keys, z85);
            why = "client key not admitted (--curve-clients)";
            //  Logged: each key's first refusal (up to 1,024 keys), and every 100th
            bool first = false;
            if (!ok && clients.logged && !zhashx_lookup (clients.logged, z85)
            &&  zhashx_size (clients.logged) < 1024) {
                zhashx_insert (clients.logged, z85, (void *) "logged");
                first = true;
            }
            if (!ok && (refused_clients++ % 100 == 0 || first))
                qv_warn ("the API refused a client from %s whose CURVE key %s is not in "
                         "--curve-clients %s (%llu so far)", address ? address : "?",
                         curve ? z85 : "(none)", clients.path,
                         (unsigned long long) refused_clients);
        }
        s_reply (handler, version, id, ok, why);
        zframe_destroy (&routing);
        zframe_destroy (&key);
        zstr_free (&domain);
        zstr_free (&address);
        zstr_free (&mechanism);
        zmsg_destroy (&req);
    }
    zpoller_destroy (&poller);
    zsock_destroy (&handler);
    zhashx_destroy (&clients.keys);
    zhashx_destroy (&clients.logged);
}
