//  What every actor's loop shares: see qv_actor.h.
#include "qv_actor.h"

int
qv_actor_on_term (zloop_t *loop, zsock_t *pipe, void *arg)
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
