//  Integration-test harness: runs `quiver serve` as a child process on an ephemeral
//  loopback port over a fresh data directory, and a small REQ client that speaks the
//  public protocol through the codec (schemas/qv_codec.h).
//
//  Nothing here uses cmocka: functions return codes and the tests assert. Every wait
//  is a poll with a deadline. The helpers are linked into every test executable.
#ifndef QV_IT_SERVER_H_INCLUDED
#define QV_IT_SERVER_H_INCLUDED

#include "qv_codec.h"

#include <limits.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define QV_IT_READY_MS 60000        //  deadline for a server to answer ping after start
#define QV_IT_CALL_MS 30000         //  default reply deadline of a client call

//  A quiver server child process and its data directory.
typedef struct {
    char dir [PATH_MAX];            //  data directory (mkdtemp), removed by destroy
    char log [PATH_MAX + 16];       //  DIR/quiver.log: stderr of every run, appended
    char endpoint [64];             //  tcp://127.0.0.1:PORT
    int port;
    pid_t pid;                      //  running child, or 0
    long log_start;                 //  offset in log where the current run began
    int status;                     //  waitpid status of the last run that ended
    char *args [16];                //  extra `quiver serve` options (owned)
    int nargs;
    bool own_dir;                   //  destroy removes dir (false: qv_it_server_new_at)
    char s3_prefix [64];            //  S3 mode: the prefix in the bucket (default: the
                                    //  data directory's name), so restarts find the data
    int s3_lock_ms;                 //  S3 mode: --s3-lock-ms (0: 300, so a restart after
                                    //  kill -9 waits about 1 s for the lock)
} qv_it_server_t;

//  S3 mode: with QV_IT_S3=1 and QV_S3_ENDPOINT set (tools/test.sh runs the server suites
//  once more so), every server keeps its objects in s3rver (bucket QV_IT_S3_BUCKET,
//  prefix s3_prefix) and its data directory holds only local files. True in S3 mode.
#define QV_IT_S3_BUCKET "qv-it"
bool
    qv_it_s3 (void);

//  Creates a data directory and a server description; extra is a NULL-terminated list
//  of extra options ("--segment-mb", "1", NULL) or NULL. Does not start it. NULL on
//  failure (message on stderr).
qv_it_server_t *
    qv_it_server_new (const char *const *extra);

//  A second server description for an existing data directory (not removed by destroy),
//  logging to DIR/<log_name>.
qv_it_server_t *
    qv_it_server_new_at (const char *dir, const char *log_name, const char *const *extra);

//  Kills the child (SIGKILL) if it runs, removes the data directory, frees. Safe twice.
void
    qv_it_server_destroy (qv_it_server_t **self_p);

//  Starts `quiver serve` on the data directory (binary from $QV_BIN_DIR), stderr and
//  stdout appended to the log. Picks a free port on the first start and keeps it on
//  restarts. Does not wait for readiness. 0 or -1.
int
    qv_it_server_spawn (qv_it_server_t *self);

//  Polls `ping` until the server answers ok. 0 when ready; -1 if the process exited
//  (self->status holds its status), -2 on timeout, -3 if it reports a failed recovery.
int
    qv_it_server_wait_ready (qv_it_server_t *self, int timeout_ms);

//  spawn + wait_ready; if the process exits at once because its port was taken, tries
//  another port. 0 or -1 (then stderr has why: exit status or signal, or timeout, and
//  the run's log).
int
    qv_it_server_start (qv_it_server_t *self);

//  Same as start, for a data directory that was served before (after kill or stop).
#define qv_it_server_restart qv_it_server_start

//  Polls `ping` until its error message contains needle (e.g. "recovery failed").
//  0 when seen, -1 if the process exited, -2 on timeout.
int
    qv_it_server_wait_error (qv_it_server_t *self, const char *needle, int timeout_ms);

//  Sends sig to the child and waits for it to exit, at most timeout_ms (then its thread
//  stacks go to its log, through gdb if there is one, and it gets SIGKILL).
//  0 if it exited by itself within the deadline (status in self->status), -1 if it had
//  to be killed or was not running.
int
    qv_it_server_signal (qv_it_server_t *self, int sig, int timeout_ms);

//  kill -9 and reap. 0 or -1 if not running.
int
    qv_it_server_kill (qv_it_server_t *self);

//  Waits up to timeout_ms for the child to exit by itself. 0 and status in
//  self->status, -2 on timeout.
int
    qv_it_server_wait_exit (qv_it_server_t *self, int timeout_ms);

//  Starts `quiver serve` with option set to each of values (NULL-terminated) in turn
//  and fails the running test unless each start ends at once with a non-zero status
//  and a log that names the option (a bad value must say what is wrong).
void
    qv_it_assert_option_refused (const char *option, const char *const *values);

//  The text the current (or last) run wrote to its log; malloc'd, NUL-terminated.
char *
    qv_it_server_log_text (qv_it_server_t *self);

//  Polls the current run's log until it contains needle; 0, or -2 on timeout.
int
    qv_it_server_wait_log (qv_it_server_t *self, const char *needle, int timeout_ms);

//  The path of `quiver` ($QV_BIN_DIR/quiver, or ./quiver).
const char *
    qv_it_quiver_bin (void);

//  Writes the newest (last in name order) regular file under dir, recursively, into
//  out. 0, or -1 if there is none.
int
    qv_it_newest_file (const char *dir, char *out, size_t outsize);

//  Flips (XOR 0xff) the byte at offset (negative: from the end) of a file. 0 or -1.
int
    qv_it_flip_byte (const char *path, long offset);

//  File size, or -1.
long
    qv_it_file_size (const char *path);

//  rm -rf path.
void
    qv_it_rm_rf (const char *path);

//  A REQ client with a receive deadline; one per thread.
typedef struct _qv_it_client_t qv_it_client_t;

qv_it_client_t *
    qv_it_client_new (const char *endpoint, int timeout_ms);
void
    qv_it_client_destroy (qv_it_client_t **self_p);

//  While *cancel is true, a call stops waiting for its reply (returns NULL at once).
//  For streams whose server is killed: the calls in flight need not wait their timeout.
void
    qv_it_client_set_cancel (qv_it_client_t *self, atomic_bool *cancel);

//  Sends the bytes written to w (then resets w) and waits for the reply. Returns the
//  decoded reply, or NULL on timeout or an undecodable reply. After a timeout the
//  client may send again (REQ relaxed + correlate: a late reply is dropped). A timeout
//  of a client whose deadline is QV_IT_CALL_MS or more also tells stderr whether the
//  server died (exit status, signal) or still runs (thread stacks added to its log),
//  with the tail of its log.
qv_doc_t *
    qv_it_call (qv_it_client_t *self, qv_wr_t *w);

//  Sends raw bytes as one request frame.
qv_doc_t *
    qv_it_call_raw (qv_it_client_t *self, const void *data, size_t size);

//  Formats a request as JSON-like text (printf-style; see qv_it_json_write), encodes it
//  with the codec and calls. NULL also if the text does not parse (message on stderr).
qv_doc_t *
    qv_it_callf (qv_it_client_t *self, const char *fmt, ...)
    __attribute__ ((format (printf, 2, 3)));

//  Writes JSON-like text as msgpack: maps {k: v} (keys quoted or bare words), arrays,
//  "strings" or 'strings', integers (msgpack int), numbers with . or e (float64), true,
//  false, null. 0, or -1 on a syntax error.
int
    qv_it_json_write (qv_wr_t *w, const char *text);

//  Reply accessors. ok: the reply has ok == true. code / error: its `code` / `error`
//  string, "" if none (a thread-local copy, valid until the next call on this thread).
bool
    qv_it_ok (qv_doc_t *reply);
const char *
    qv_it_code (qv_doc_t *reply);
const char *
    qv_it_error (qv_doc_t *reply);

//  Value at a dotted path of keys and array indices ("results.0.2.id"), or NULL.
const qv_val_t *
    qv_it_path (qv_doc_t *reply, const char *path);
const qv_val_t *
    qv_it_vpath (const qv_val_t *v, const char *path);

//  Loose readers for test assertions: integer (INT64_MIN if not an integer), number
//  (NAN if not a number), bool (false if not a bool), whether a str equals s.
int64_t
    qv_it_int (const qv_val_t *v);
double
    qv_it_num (const qv_val_t *v);
bool
    qv_it_bool (const qv_val_t *v);
bool
    qv_it_str_is (const qv_val_t *v, const char *s);

//  qsort comparator of int64_t values, ascending.
int
    qv_it_cmp_i64 (const void *a, const void *b);

//  Calls the request written as text (qv_it_callf) and fails the running test, naming
//  the caller's line, unless the reply is ok / an error with `code` and a message.
//  Return the reply (the caller destroys it).
qv_doc_t *
    qv_it_call_ok_at (int line, qv_it_client_t *client, const char *fmt, ...)
    __attribute__ ((format (printf, 3, 4)));
qv_doc_t *
    qv_it_call_err_at (int line, qv_it_client_t *client, const char *code, const char *fmt, ...)
    __attribute__ ((format (printf, 4, 5)));
//  The integer field name of a `stats` reply (fails the running test if stats fails).
int64_t
    qv_it_stat (qv_it_client_t *client, const char *name);

#define QV_IT_CALL_OK(client, ...) qv_it_call_ok_at (__LINE__, client, __VA_ARGS__)
#define QV_IT_CALL_ERR(client, code, ...) qv_it_call_err_at (__LINE__, client, code, __VA_ARGS__)

#endif
