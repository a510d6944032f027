//  Proxy actor: the public ZeroMQ API; validation, ids, timestamps, routing.
#ifndef QV_PROXY_H_INCLUDED
#define QV_PROXY_H_INCLUDED

#include "qv_config.h"
#include <czmq.h>

//  @interface (pipe)
//    $TERM                       stop accepting work and stop
//    "READY" list max_ts         recovery done: list is a zlist of qv_record_t *
//                                (create_collection records, ownership moves)
//    "FAILED" reason             recovery failed: answer UNAVAILABLE with the reason
//  The actor binds config->bind before signalling, then sends "OK" or the bind's error.
//  The messages it takes and sends between actors: qv_proxy.c's @interface block.
void
    qv_proxy_actor (zsock_t *pipe, void *args);

#endif
