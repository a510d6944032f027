//  Benchmark support shared by the tools: a `quiver serve` child process on a free
//  loopback port, removal of temporary data, and dying cleanly (the child with us).
#ifndef QV_BENCH_H_INCLUDED
#define QV_BENCH_H_INCLUDED

#include "qv_client.h"

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

typedef struct {
    pid_t pid;
    char endpoint [64];             //  tcp://127.0.0.1:PORT
    char data [4200];               //  data directory
    char log [4200];                //  DATA.log: the server's stdout and stderr
    int64_t launched_us;            //  when it was started (qv_clock_usec)
} qv_bench_server_t;

//  Names the program in messages and makes SIGINT/SIGTERM kill the running child
//  before the program dies. Call once from main.
void
    qv_bench_init (const char *program);

//  Prints "PROGRAM: message", kills the running child, exits 1.
void
    qv_bench_die (const char *fmt, ...) __attribute__ ((format (printf, 1, 2), noreturn));

//  The server key (CURVE, `quiver serve --curve-secret-key`) every client made by
//  qv_bench_client_new gives from now on; NULL: plain clients.
void
    qv_bench_set_server_key (const char *key);
//  The token ("user:password", `quiver serve --auth`) every client made by
//  qv_bench_client_new sends from now on; NULL: none.
void
    qv_bench_set_token (const char *token);
//  A client of endpoint, with the server key and token set (dies if it cannot be made).
qv_client_t *
    qv_bench_client_new (const char *endpoint);

//  Sends the request (destroyed) and returns the reply; dies naming the error code
//  and message on failure (a benchmark has nothing sensible to do then).
qv_doc_t *
    qv_bench_call (qv_client_t *client, qv_wr_t **request_p);

//  A free TCP port on 127.0.0.1 (dies if none).
int
    qv_bench_free_port (void);

//  Removes path and everything under it.
void
    qv_bench_rm_rf (const char *path);

//  Starts `quiver serve --data DATA --bind <free port>` plus extra arguments (NULL-
//  terminated, may be NULL) from the quiver binary, logging to DATA.log, and waits
//  until `ping` answers ok. Returns the ms from fork to the first ok ping; dies if
//  the server exits or does not serve within 600 s.
double
    qv_bench_server_start (qv_bench_server_t *srv, const char *quiver, const char *data,
                           char *const *extra);
//  The same without waiting (a writer core, which answers proxy processes only).
void
    qv_bench_server_launch (qv_bench_server_t *srv, const char *quiver, const char *data,
                            char *const *extra);

//  Starts `nats-server -js` (from PATH) on a free loopback port with its storage in
//  dir, logging to dir.log, and waits until it accepts connections; its URL goes to
//  url. Returns its pid; dies if it does not start within 10 s.
pid_t
    qv_bench_nats_start (const char *dir, char *url, size_t url_size);
//  Stops it (SIGTERM) and waits for it.
void
    qv_bench_nats_stop (pid_t pid);

//  Stops the server: SIGTERM waits up to 30 s for a clean stop (then says so and
//  kills it); SIGKILL is a crash.
void
    qv_bench_server_stop (qv_bench_server_t *srv, int sig);

//  The q-quantile (0.5: the median) of n values, which it sorts in place; 0 if n is 0.
double
    qv_bench_quantile (double *v, size_t n, double q);

//  CPU seconds (user + system, every thread) process pid has used so far, from
//  /proc/PID/stat (in clock ticks: 10 ms); -1 if it cannot be read.
double
    qv_bench_cpu_s (pid_t pid);
//  Minor page faults of process pid so far (every thread; /proc/PID/stat): each one a
//  page the kernel mapped, most of them fresh memory it cleared first. -1 if unknown.
double
    qv_bench_minflt (pid_t pid);

//  Creates collection: int64 primary key `id`, float_vector `vector` of dim and
//  metric ("L2", "IP", "COSINE"); dies if refused.
void
    qv_bench_create (qv_client_t *client, const char *collection, uint32_t dim, const char *metric);

//  An insert request (the caller sends and destroys it) of n rows of dim into
//  collection as qv_bench_create made it: ids first_id.., vectors as one bin column.
qv_wr_t *
    qv_bench_insert_request (qv_client_t *client, const char *collection, int64_t first_id,
                             const float *vectors, size_t n, uint32_t dim, uint64_t *rid_p);

//  Waits until endpoint's describe_index of collection's field says every row is
//  indexed; dies after timeout_s seconds, saying how far the build got.
void
    qv_bench_wait_indexed (const char *endpoint, const char *collection, const char *field,
                           int timeout_s);

//  Median round trip in microseconds of a bare ZeroMQ echo over loopback TCP (a ROUTER
//  thread in this process sending each message back, the same client code and
//  request size): the transport's floor on this machine, which no server goes under.
double
    qv_bench_zmq_echo_us (size_t request_bytes, double seconds);

#endif
