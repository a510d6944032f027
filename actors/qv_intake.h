//  Intake actor: in a writer core (`quiver serve --roles segment-manager,meta,flusher`),
//  takes proxy processes' messages over ZeroMQ TCP (see qv_intake.c).
#ifndef QV_INTAKE_H_INCLUDED
#define QV_INTAKE_H_INCLUDED

#include "qv_config.h"
#include <czmq.h>

//  args: the const qv_config_t * (--bind: where proxy processes connect). Signals,
//  then sends "OK" or the reason it cannot bind.
void
    qv_intake_actor (zsock_t *pipe, void *args);

#endif
