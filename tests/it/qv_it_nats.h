//  Integration-test helpers for the NATS tests: a real nats-server with JetStream and
//  a real `quiver serve --nats` on ephemeral loopback ports, and small clients.
#ifndef QV_IT_NATS_H_INCLUDED
#define QV_IT_NATS_H_INCLUDED

#include "qv_codec.h"

#include <czmq.h>
#include <nats/nats.h>
#include <sys/types.h>

typedef struct {
    pid_t pid;
    int port;
    char dir [256];                 //  JetStream storage (kept across restarts)
    char url [64];
} qv_itn_nats_t;

typedef struct {
    pid_t pid;
    int port;
    char endpoint [64];             //  tcp://127.0.0.1:PORT
    char data [256];
    char args [512];                //  extra arguments, kept for restarts
    char nats_url [64];
} qv_itn_quiver_t;

//  A free TCP port on 127.0.0.1.
int
    qv_itn_free_port (void);

//  True if the nats-server binary is on PATH (tests skip without it).
bool
    qv_itn_have_nats_server (void);

//  Starts nats-server -js on n->port (picked if 0) with storage in n->dir (made if
//  empty) and waits until it accepts connections (deadline 10 s). 0 or -1.
int
    qv_itn_nats_start (qv_itn_nats_t *n);
//  Stops it (SIGTERM, then SIGKILL after 10 s) and waits; keeps the directory.
void
    qv_itn_nats_stop (qv_itn_nats_t *n);

//  Starts quiver serve with data dir q->data (made if empty), --nats url (if url) and
//  extra args, and waits until `ping` answers ok (deadline_ms; 0 = do not wait).
//  0, or -1 if it did not come up.
int
    qv_itn_quiver_start (qv_itn_quiver_t *q, const char *nats_url, const char *args,
                         int deadline_ms);
//  Starts it again as it was last started: same data, NATS, arguments and endpoint
//  (a process others connect to by endpoint). 0 or -1 as qv_itn_quiver_start.
int
    qv_itn_quiver_restart (qv_itn_quiver_t *q, int deadline_ms);
//  Sends sig and waits for the process; returns its exit status (or 128 + signal).
int
    qv_itn_quiver_stop (qv_itn_quiver_t *q, int sig);
//  True if the log of q's data directory (DATA/quiver.log, shared by the processes
//  started on that directory) has a line holding needle.
bool
    qv_itn_log_has (const qv_itn_quiver_t *q, const char *needle);
//  Waits up to timeout_ms for the process to end by itself: its exit status (or 128 +
//  signal), or -1 if it still runs (it is left running) or was not started.
int
    qv_itn_quiver_wait_exit (qv_itn_quiver_t *q, int timeout_ms);

//  One ZeroMQ request (the writer's bytes); the reply document, or NULL on timeout.
qv_doc_t *
    qv_itn_call (const char *endpoint, qv_wr_t *req, int timeout_ms);
//  ok of a reply (false for NULL); the code string ("" if none).
bool
    qv_itn_ok (qv_doc_t *reply);
const char *
    qv_itn_code (qv_doc_t *reply, char *buf, size_t size);
//  An unsigned field of a reply's root (or of `stats`), UINT64_MAX if absent.
uint64_t
    qv_itn_uint (qv_doc_t *reply, const char *key);

//  ZeroMQ: {"op": "create_collection", collection, fields: [id int64 primary
//  (auto_id if auto_id), vec float_vector dim], shards}. True if ok.
bool
    qv_itn_create (const char *endpoint, const char *collection, int dim, bool auto_id,
                   int shards);
//  describe_collection's rows, UINT64_MAX on failure.
uint64_t
    qv_itn_rows (const char *endpoint, const char *collection);
//  A stats field (UINT64_MAX if absent or the call failed).
uint64_t
    qv_itn_stat (const char *endpoint, const char *key);

//  Writes an insert payload (no op/collection) of n rows: ids first_id.. (or none
//  when first_id < 0, for auto_id), vectors deterministic from the id/row, as
//  columns with a bin vector column.
void
    qv_itn_insert_payload (qv_wr_t *w, int64_t first_id, uint32_t n, int dim, uint32_t seed);
//  Publishes rounds from .. to - 1 into collection coll (dim, explicit int64 ids) on the
//  JetStream subjects ingest.<op>.<coll>, each round r: insert ids [100r, 100r + 100),
//  delete by filter the first 50 of them, upsert the first 25 back. In stream order 75
//  rows per round remain; a delete resolved before its round's insert was applied
//  leaves 100, and one logged after its round's upsert leaves 50. 0, or -1 if a
//  publish failed.
int
    qv_itn_publish_rounds (jsCtx *js, const char *coll, int dim, int from, int to);
//  The vector qv_itn_insert_payload writes for id/row key.
void
    qv_itn_vector (float *out, int dim, int64_t key);

//  Removes a test directory (rm -rf) and clears the name.
void
    qv_itn_remove_dir (char *dir);

//  A NATS connection to url (waits up to 10 s). NULL on failure.
natsConnection *
    qv_itn_nats_connect (const char *url);

//  Creates JetStream stream name (file storage) on subject at the NATS server at url:
//  0, or -1.
int
    qv_itn_add_stream (const char *url, const char *name, const char *subject);

#endif
