//  Server configuration shared by the actors (validated before any actor starts).
#ifndef QV_CONFIG_H_INCLUDED
#define QV_CONFIG_H_INCLUDED

#include <limits.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
    char data [PATH_MAX];           //  data directory (filesystem object store)
    char bind [256];                //  ZeroMQ ROUTER endpoint of the public API
    char instance [32];             //  unique suffix of this server's inproc endpoints
    size_t max_request;             //  request size limit in bytes (default 64 MiB)
    size_t max_elems;               //  msgpack element limit per request
    size_t max_unflushed;           //  memory for unflushed rows before backpressure
    size_t seg_max_bytes;           //  a growing segment is sealed at this size
    int seal_age_sec;               //  ... or this age
    int backpressure_ms;            //  how long a write waits for memory
    int search_threads;             //  worker threads for searches
    size_t group_max_bytes;         //  most bytes in one WAL object
} qv_config_t;

//  Fills defaults.
void
    qv_config_defaults (qv_config_t *config);

//  Inproc endpoint of an actor's inbox ("inproc://qv-<instance>-<name>").
void
    qv_config_endpoint (const qv_config_t *config, const char *name, char *out, size_t size);

#endif
