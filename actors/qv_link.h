//  Link actor: in a proxy process (`quiver serve --roles proxy`), carries the proxy's
//  messages for the segment manager and the searcher to the writer core over ZeroMQ
//  TCP, and their replies back (see qv_link.c).
#ifndef QV_LINK_H_INCLUDED
#define QV_LINK_H_INCLUDED

#include "qv_config.h"
#include <czmq.h>

//  args: the const qv_config_t * (--writer: the writer core's endpoint). Signals once
//  started.
void
    qv_link_actor (zsock_t *pipe, void *args);

#endif
