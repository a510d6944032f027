//  qvctl probe: an HTTP GET of a health endpoint (`quiver serve --metrics`'s /healthz
//  or /readyz), for container health checks and scripts: exit 0 on HTTP 200, 1 on any
//  other answer or none. Through libcurl (a dependency already, under libs3).
#include "qv_ctl.h"

#include <curl/curl.h>
#include <string.h>

//  Keeps the first bytes of the body, for the message.
typedef struct {
    char text [512];
    size_t len;
} s_body_t;

static size_t
s_take (char *data, size_t size, size_t nmemb, void *arg)
{
    s_body_t *body = arg;
    size_t n = size * nmemb, room = sizeof body->text - 1 - body->len;
    memcpy (body->text + body->len, data, n < room ? n : room);
    body->len += n < room ? n : room;
    body->text [body->len] = 0;
    return n;
}

const char qv_ctl_probe_usage [] =
    "probe URL\n\n"
    "GETs URL, a health endpoint of `quiver serve --metrics HOST:PORT` (http://HOST:PORT/readyz:\n"
    "recovered and serving; /healthz: the process runs), prints the status line, and exits 0\n"
    "on HTTP 200, 1 otherwise (no answer within --timeout, default 5 s). Needs no --server;\n"
    "meant for container health checks.";

static const struct option s_opts [] = {
    { "help", no_argument, 0, 'h' }, { 0, 0, 0, 0 }
};

int
qv_ctl_cmd_probe (qv_ctl_t *ctx, int argc, char **argv)
{
    while (qv_ctl_getopt (argc, argv, s_opts) != -1)
        ;
    qv_ctl_check_positional (argc, argv, 1, 1);
    const char *url = argv [optind];
    if (strncmp (url, "http://", 7) != 0) {
        fprintf (stderr, "qvctl probe: '%.200s' is not an http:// URL (for example "
                 "http://127.0.0.1:9091/readyz)\n", url);
        return 2;
    }
    CURL *curl = curl_easy_init ();
    if (!curl) {
        fprintf (stderr, "qvctl probe: cannot start libcurl\n");
        return 1;
    }
    s_body_t body = { "", 0 };
    long status = 0;
    curl_easy_setopt (curl, CURLOPT_URL, url);
    curl_easy_setopt (curl, CURLOPT_PROTOCOLS_STR, "http");
    curl_easy_setopt (curl, CURLOPT_TIMEOUT_MS, (long) (ctx->timeout_ms ? ctx->timeout_ms : 5000));
    curl_easy_setopt (curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt (curl, CURLOPT_WRITEFUNCTION, s_take);
    curl_easy_setopt (curl, CURLOPT_WRITEDATA, &body);
    CURLcode rc = curl_easy_perform (curl);
    if (rc == CURLE_OK)
        curl_easy_getinfo (curl, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup (curl);
    body.text [strcspn (body.text, "\n")] = 0;
    if (rc != CURLE_OK) {
        fprintf (stderr, "qvctl probe: %s: %s\n", url, curl_easy_strerror (rc));
        return 1;
    }
    if (ctx->json)
        printf ("{\"ok\": %s, \"status\": %ld}\n", status == 200 ? "true" : "false", status);
    else
        printf ("%s: %ld %s\n", url, status, body.text);
    return status == 200 ? 0 : 1;
}
