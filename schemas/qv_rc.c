//  Return codes, thread-local error records, and the log line format.
#include "qv_rc.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static __thread char s_msg [512];
static __thread char s_where [128];

const char *
qv_rc_code (int rc)
{
    switch (rc) {
#define QV_RC_CASE(name, value, wire) case value: return wire;
        QV_RC_TABLE (QV_RC_CASE)
#undef QV_RC_CASE
    }
    return "INTERNAL";
}

const char *
qv_rc_name (int rc)
{
    switch (rc) {
#define QV_RC_CASE(name, value, wire) case value: return #name;
        QV_RC_TABLE (QV_RC_CASE)
#undef QV_RC_CASE
    }
    return "QV_ERR";
}

int
qv_err_at (int rc, const char *file, int line, const char *fmt, ...)
{
    va_list ap;
    va_start (ap, fmt);
    vsnprintf (s_msg, sizeof s_msg, fmt, ap);
    va_end (ap);
    const char *base = strrchr (file, '/');
    snprintf (s_where, sizeof s_where, "%s:%d", base ? base + 1 : file, line);
    return rc;
}

const char *
qv_err_msg (void)
{
    return s_msg;
}

const char *
qv_err_where (void)
{
    return s_where;
}

void
qv_err_clear (void)
{
    s_msg [0] = 0;
    s_where [0] = 0;
}

void
qv_log (const char *level, const char *fmt, ...)
{
    char line [1024];
    struct timespec ts;
    clock_gettime (CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r (&ts.tv_sec, &tm);
    int n = snprintf (line, sizeof line, "%s %04d-%02d-%02dT%02d:%02d:%02d.%03ldZ ",
                      level, tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                      tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000);
    va_list ap;
    va_start (ap, fmt);
    vsnprintf (line + n, sizeof line - n, fmt, ap);
    va_end (ap);
    fprintf (stderr, "%s\n", line);
}

int64_t
qv_clock_usec (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int64_t
qv_clock_msec (void)
{
    return qv_clock_usec () / 1000;
}
