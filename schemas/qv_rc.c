//  Return codes, thread-local error records, and the log line format.
#include "qv_rc.h"

#include <ctype.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
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
    char text [sizeof s_msg];
    va_list ap;
    va_start (ap, fmt);
    vsnprintf (text, sizeof text, fmt, ap);
    va_end (ap);
    qv_redact (text, s_msg, sizeof s_msg);     //  messages reach replies and logs
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
qv_redact (const char *in, char *out, size_t outsize)
{
    size_t at = 0;
    if (outsize == 0)
        return;
    while (*in && at + 1 < outsize) {
        const char *scheme = strstr (in, "://");
        if (!scheme) {
            at += (size_t) snprintf (out + at, outsize - at, "%s", in);
            break;
        }
        const char *host = scheme + 3;
        size_t span = strcspn (host, "/?#,; \t\r\n'\"<>()[]{}");
        const char *end = host + span, *atsign = NULL;
        for (const char *p = host; p < end; p++)
            if (*p == '@')
                atsign = p;
        if (atsign) {
            at += (size_t) snprintf (out + at, outsize - at, "%.*s***", (int) (host - in), in);
            in = atsign;
        }
        else {
            at += (size_t) snprintf (out + at, outsize - at, "%.*s", (int) (end - in), in);
            in = end;
        }
        if (at >= outsize)
            at = outsize - 1;
    }
    out [at < outsize ? at : outsize - 1] = 0;
}

//  Repeated log lines. A warning or error that recurs on every retry (a full disk, NATS down)
//  is printed once per S_REPEAT_MS with the count of the repeats it stood for: lines
//  equal but for their digits (object names, sequence numbers) count as the same.
//  The log is the one thing every thread shares; the table is guarded by a mutex
//  held only for the lookup and the print.
#define S_REPEAT_MS 10000
#define S_REPEAT_SLOTS 8
static struct {
    char key [400];                 //  the level and the line, digits left out
    int64_t printed_ms;             //  when it was last printed
    uint64_t repeats;               //  times it came since then, not printed
    char line [200];                //  its beginning, for the summary line
} s_repeat [S_REPEAT_SLOTS];
static pthread_mutex_t s_log_mutex = PTHREAD_MUTEX_INITIALIZER;

static void
s_log_key (const char *level, const char *msg, char *key, size_t size)
{
    size_t at = (size_t) snprintf (key, size, "%s ", level);
    for (const char *p = msg; *p && at + 1 < size; p++)
        if (!isdigit ((unsigned char) *p))
            key [at++] = *p;
    key [at] = 0;
}

void
qv_log (const char *level, const char *fmt, ...)
{
    char line [1024], msg [960], raw [960];
    va_list ap;
    va_start (ap, fmt);
    vsnprintf (raw, sizeof raw, fmt, ap);
    va_end (ap);
    qv_redact (raw, msg, sizeof msg);  //  no user:password@ from a URL in any log line
    char key [400];
    s_log_key (level, msg, key, sizeof key);
    int64_t now = qv_clock_msec ();
    pthread_mutex_lock (&s_log_mutex);
    int slot = -1, oldest = 0;
    for (int i = 0; i < S_REPEAT_SLOTS; i++) {
        if (strcmp (s_repeat [i].key, key) == 0)
            slot = i;
        if (s_repeat [i].printed_ms < s_repeat [oldest].printed_ms)
            oldest = i;
    }
    bool info = strcmp (level, "I") == 0;  //  only warnings and errors repeat
    if (!info && slot >= 0 && now - s_repeat [slot].printed_ms < S_REPEAT_MS) {
        s_repeat [slot].repeats++;
        pthread_mutex_unlock (&s_log_mutex);
        return;
    }
    if (slot < 0 && info)
        slot = -2;
    if (slot == -1) {
        slot = oldest;              //  the evicted line's repeats are told now
        if (s_repeat [slot].repeats)
            fprintf (stderr, "%s (the line '%s' came %llu more times)\n", level,
                     s_repeat [slot].line, (unsigned long long) s_repeat [slot].repeats);
        snprintf (s_repeat [slot].key, sizeof s_repeat [slot].key, "%s", key);
        snprintf (s_repeat [slot].line, sizeof s_repeat [slot].line, "%.*s",
                  (int) sizeof s_repeat [slot].line - 1, msg);
        s_repeat [slot].repeats = 0;
    }
    char tail [96] = "";
    if (slot >= 0 && s_repeat [slot].repeats)
        snprintf (tail, sizeof tail, " (and %llu more times in the last %lld s)",
                  (unsigned long long) s_repeat [slot].repeats,
                  (long long) (now - s_repeat [slot].printed_ms) / 1000);
    if (slot >= 0) {
        s_repeat [slot].repeats = 0;
        s_repeat [slot].printed_ms = now;
    }
    struct timespec ts;
    clock_gettime (CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r (&ts.tv_sec, &tm);
    int n = snprintf (line, sizeof line, "%s %04d-%02d-%02dT%02d:%02d:%02d.%03ldZ ",
                      level, tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                      tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000);
    snprintf (line + n, sizeof line - n, "%s%s", msg, tail);
    fprintf (stderr, "%s\n", line);
    pthread_mutex_unlock (&s_log_mutex);
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

int64_t
qv_clock_wall_msec (void)
{
    struct timespec t;
    clock_gettime (CLOCK_REALTIME, &t);
    return (int64_t) t.tv_sec * 1000 + t.tv_nsec / 1000000;
}
