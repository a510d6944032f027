//  Return codes shared by every layer, the error they map to on the wire, and logging.
#ifndef QV_RC_H_INCLUDED
#define QV_RC_H_INCLUDED

#include <stddef.h>
#include <stdint.h>

//  Every function returns 0 or one of these negative codes; constructors return NULL.
//  Each code has one wire name (PROTOCOL.md) given by qv_rc_code ().
#define QV_RC_TABLE(X)                                          \
    X (QV_OK,         0,   "OK")                                \
    X (QV_ERR,        -1,  "INTERNAL")                          \
    X (QV_EPROTO,     -2,  "MALFORMED")                         \
    X (QV_EINVAL,     -3,  "INVALID_ARGUMENT")                  \
    X (QV_ENOTFOUND,  -4,  "NOT_FOUND")                         \
    X (QV_EEXIST,     -5,  "ALREADY_EXISTS")                    \
    X (QV_EUNAUTH,    -6,  "UNAUTHENTICATED")                   \
    X (QV_EPERM,      -7,  "PERMISSION_DENIED")                 \
    X (QV_ELIMIT,     -8,  "RESOURCE_EXHAUSTED")                \
    X (QV_EUNAVAIL,   -9,  "UNAVAILABLE")                       \
    X (QV_ETIMEOUT,   -10, "TIMEOUT")                           \
    X (QV_EIO,        -11, "UNAVAILABLE")                       \
    X (QV_ECORRUPT,   -12, "UNAVAILABLE")                       \
    X (QV_ENOMEM,     -13, "RESOURCE_EXHAUSTED")

typedef enum {
#define QV_RC_ENUM(name, value, wire) name = value,
    QV_RC_TABLE (QV_RC_ENUM)
#undef QV_RC_ENUM
} qv_rc_t;

//  The protocol's error code name for rc ("INVALID_ARGUMENT", ...).
const char *
    qv_rc_code (int rc);

//  The symbolic name of rc ("QV_EINVAL", ...), for logs and tests.
const char *
    qv_rc_name (int rc);

//  Records an error where it starts: code, message, and the file:line that raised it,
//  in a thread-local slot that qv_err_msg () reads. Returns rc so callers can write
//  `return qv_err (QV_EINVAL, "dimension %d, expected %d", got, want);`.
#define qv_err(rc, ...) qv_err_at ((rc), __FILE__, __LINE__, __VA_ARGS__)
int
    qv_err_at (int rc, const char *file, int line, const char *fmt, ...)
    __attribute__ ((format (printf, 4, 5)));

//  The message recorded by the last qv_err on this thread ("" if none).
const char *
    qv_err_msg (void);

//  The file:line of the last qv_err on this thread.
const char *
    qv_err_where (void);

//  Clears this thread's recorded error.
void
    qv_err_clear (void);

//  Copies in to out (NUL-terminated, cut to outsize) with the user information of every
//  URL in it ("nats://user:password@host", "nats://token@host") replaced by "***":
//  credentials never reach a log line, a reply or `stats`.
void
    qv_redact (const char *in, char *out, size_t outsize);

//  Logging to stderr with a timestamp and level; level names: "I", "W", "E". URLs are
//  redacted (qv_redact). A line that comes again (equal but for its digits) within
//  10 s is not printed; its next print after that says how many times it came.
void
    qv_log (const char *level, const char *fmt, ...) __attribute__ ((format (printf, 2, 3)));
#define qv_info(...)  qv_log ("I", __VA_ARGS__)
#define qv_warn(...)  qv_log ("W", __VA_ARGS__)
#define qv_error(...) qv_log ("E", __VA_ARGS__)

//  Monotonic clock in microseconds / milliseconds.
int64_t
    qv_clock_usec (void);
int64_t
    qv_clock_msec (void);
//  Wall clock in milliseconds since 1970: the physical part of a hybrid timestamp
//  (ms << QV_TS_LOGICAL_BITS | logical, DESIGN.md).
int64_t
    qv_clock_wall_msec (void);
#define QV_TS_LOGICAL_BITS 18

#endif
