//  What every actor's loop shares: see qv_actor.h.
#include "qv_actor.h"
#include "qv_rc.h"
#include "qv_zap.h"

#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

int
qv_actor_on_term (qv_loop_t *loop, zsock_t *pipe, void *arg)
{
    (void) loop;
    (void) arg;
    char *cmd = zstr_recv (pipe);
    zstr_free (&cmd);
    return -1;                      //  $TERM (the only command)
}

uint16_t
qv_actor_monitor_event (zsock_t *monitor)
{
    zmsg_t *msg = zmsg_recv (monitor);
    if (!msg)
        return 0;
    zframe_t *event = zmsg_first (msg);
    uint16_t id = 0;
    if (event && zframe_size (event) >= 2)
        memcpy (&id, zframe_data (event), 2);
    zmsg_destroy (&msg);
    return id;
}

zmsg_t *
qv_actor_recv (zsock_t *sock)
{
    return zmsg_recv_nowait (sock);
}

zsock_t *
qv_actor_dealer (const qv_config_t *config, const char *monitor_ep, int events,
                 zsock_t **monitor_p)
{
    if (monitor_p)
        *monitor_p = NULL;
    zsock_t *dealer = zsock_new (ZMQ_DEALER);
    if (!dealer)
        return NULL;
    if (config->curve_peer_key [0]) {
        //  quiver.c has checked that the file holds a key pair
        zcert_t *cert = zcert_load (config->curve_secret_key);
        if (!cert) {
            qv_error ("the CURVE key file %s (--curve-secret-key) cannot be read",
                      config->curve_secret_key);
            zsock_destroy (&dealer);
            return NULL;
        }
        zcert_apply (cert, zsock_resolve (dealer));
        zcert_destroy (&cert);
        zsock_set_curve_serverkey (dealer, config->curve_peer_key);
    }
    zsock_set_immediate (dealer, 1);
    zsock_set_linger (dealer, 0);
    zsock_set_sndhwm (dealer, 10000);
    zsock_set_rcvhwm (dealer, 0);
    zsock_set_reconnect_ivl (dealer, 100);
    //  A peer that stops answering without closing TCP (a frozen host, a partition)
    //  is taken for disconnected after 5 s without its heartbeat replies, so what
    //  waits on it is answered rather than held until the kernel gives up
    zsock_set_heartbeat_ivl (dealer, 1000);
    zsock_set_heartbeat_timeout (dealer, 5000);
    if (monitor_p) {
        if (zmq_socket_monitor (zsock_resolve (dealer), monitor_ep, events) == 0) {
            *monitor_p = zsock_new (ZMQ_PAIR);
            if (*monitor_p)
                zsock_connect (*monitor_p, "%s", monitor_ep);
        }
    }
    return dealer;
}

int
qv_actor_curve_server (zsock_t *sock, const qv_config_t *config, bool peers_only,
                       const char *what)
{
    if (!config->curve_secret_key [0])
        return 0;
    zcert_t *cert = zcert_load (config->curve_secret_key);
    if (!cert)
        return -1;
    zcert_apply (cert, zsock_resolve (sock));
    zsock_set_curve_server (sock, 1);
    bool admit = peers_only && config->curve_peer_key [0];
    bool listed = !peers_only && config->curve_clients [0];
    if (admit)
        zsock_set_zap_domain (sock, QV_ZAP_PEERS);
    else
    if (listed)
        zsock_set_zap_domain (sock, QV_ZAP_CLIENTS);
    if (admit || listed) {
        //  ZMQ_ZAP_ENFORCE_DOMAIN (93): refuse handshakes if the ZAP handler is ever
        //  missing, where libzmq would otherwise admit every key. zmq.h lists it as a
        //  draft option; Debian's libzmq 4.3.4 takes it (test_zap), a build that does
        //  not refuses it (EINVAL, ignored), and quiver serve stops anyway if its
        //  handler cannot start
        int one = 1;
        zmq_setsockopt (zsock_resolve (sock), 93, &one, sizeof one);
    }
    qv_info ("%s at %s is encrypted (CURVE) with public key %s; %s", what, config->bind,
             zcert_public_txt (cert), admit ? "it admits only clients with the key of "
             "--curve-peer-key" : listed ? "clients give that key, and it admits only the "
             "client keys of --curve-clients" : "clients give that key");
    zcert_destroy (&cert);
    return 0;
}

bool
qv_actor_stop_pending (void *arg)
{
    (void) arg;
    sigset_t pending;
    return sigpending (&pending) == 0
        && (sigismember (&pending, SIGINT) == 1 || sigismember (&pending, SIGTERM) == 1);
}

void
qv_actor_background (const char *who)
{
    if (setpriority (PRIO_PROCESS, (id_t) syscall (SYS_gettid), 10) != 0)
        qv_warn ("%s: cannot lower its priority: %s", who, strerror (errno));
}
