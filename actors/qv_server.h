//  The embedded server: opens the data directory, recovers, and runs the actors.
#ifndef QV_SERVER_H_INCLUDED
#define QV_SERVER_H_INCLUDED

#include "qv_config.h"

typedef struct _qv_server_t qv_server_t;

//  Opens and locks the data directory and binds the API (answering UNAVAILABLE), then
//  recovers: newest manifest, its segments, the WAL tail. A second server on the same
//  directory, or a failed bind, returns NULL with the reason in qv_err_msg (). A
//  failed recovery keeps the server up answering UNAVAILABLE with the reason, and
//  qv_server_recovery_error returns it.
qv_server_t *
    qv_server_new (const qv_config_t *config);

//  Stops accepting work, finishes the WAL write in flight, stops every actor.
void
    qv_server_destroy (qv_server_t **self_p);

const char *
    qv_server_recovery_error (qv_server_t *self);

//  A proxy process (--roles proxy) that refuses to serve: with --auth, its writer
//  core's user store has no root user and QUIVER_ROOT_PASSWORD is not set here. The
//  reason, or NULL (not refused, or not known yet: the main thread asks again, and
//  ends the process when it is refused). Never blocks.
const char *
    qv_server_refused (qv_server_t *self);

#endif
