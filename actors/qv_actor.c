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
