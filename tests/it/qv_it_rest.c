//  Integration-test helper: a keep-alive HTTP client for the REST gateway.
#include "qv_it_rest.h"
#include "qv_it_nats.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

struct _qv_it_rest_t {
    CURL *curl;
    struct curl_slist *headers;
    char base [64];
    char *buf;                      //  the reply being received
    size_t size;
};

int
qv_it_rest_free_port (void)
{
    int port = qv_itn_free_port ();     //  never one given out a moment ago
    return port > 0 ? port : 0;
}

static size_t
s_write (char *data, size_t size, size_t n, void *arg)
{
    qv_it_rest_t *self = arg;
    char *grown = realloc (self->buf, self->size + size * n + 1);
    if (!grown)
        return 0;
    self->buf = grown;
    memcpy (self->buf + self->size, data, size * n);
    self->size += size * n;
    self->buf [self->size] = 0;
    return size * n;
}

qv_it_rest_t *
qv_it_rest_new (int port)
{
    static bool init;
    if (!init) {
        curl_global_init (CURL_GLOBAL_DEFAULT);
        init = true;
    }
    qv_it_rest_t *self = calloc (1, sizeof *self);
    if (!self || !(self->curl = curl_easy_init ())) {
        free (self);
        return NULL;
    }
    snprintf (self->base, sizeof self->base, "http://127.0.0.1:%d", port);
    self->headers = curl_slist_append (NULL, "Content-Type: application/json");
    curl_easy_setopt (self->curl, CURLOPT_WRITEFUNCTION, s_write);
    curl_easy_setopt (self->curl, CURLOPT_WRITEDATA, self);
    curl_easy_setopt (self->curl, CURLOPT_TIMEOUT, 120L);
    curl_easy_setopt (self->curl, CURLOPT_NOSIGNAL, 1L);
    return self;
}

void
qv_it_rest_destroy (qv_it_rest_t **self_p)
{
    qv_it_rest_t *self = *self_p;
    if (!self)
        return;
    curl_easy_cleanup (self->curl);
    curl_slist_free_all (self->headers);
    free (self->buf);
    free (self);
    *self_p = NULL;
}

void
qv_it_rest_header (qv_it_rest_t *self, const char *header)
{
    self->headers = curl_slist_append (self->headers, header);
}

json_t *
qv_it_rest_send (qv_it_rest_t *self, const char *method, const char *path, const char *body,
                 long *status_p)
{
    const char *text = qv_it_rest_text (self, method, path, body, status_p);
    if (!text)
        return NULL;
    json_error_t err;
    json_t *reply = self->buf ? json_loads (self->buf, 0, &err) : NULL;
    if (!reply)
        fprintf (stderr, "qv_it_rest: %s %s: reply is not JSON: %.300s\n", method, path,
                 self->buf ? self->buf : "(empty)");
    return reply;
}

const char *
qv_it_rest_text (qv_it_rest_t *self, const char *method, const char *path, const char *body,
                 long *status_p)
{
    char url [512];
    snprintf (url, sizeof url, "%s%s", self->base, path);
    self->size = 0;
    if (self->buf)
        self->buf [0] = 0;
    curl_easy_setopt (self->curl, CURLOPT_URL, url);
    curl_easy_setopt (self->curl, CURLOPT_HTTPHEADER, self->headers);
    curl_easy_setopt (self->curl, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt (self->curl, CURLOPT_POSTFIELDS, body ? body : "");
    curl_easy_setopt (self->curl, CURLOPT_POSTFIELDSIZE, (long) (body ? strlen (body) : 0));
    CURLcode rc = curl_easy_perform (self->curl);
    *status_p = 0;
    if (rc != CURLE_OK) {
        fprintf (stderr, "qv_it_rest: %s %s: %s\n", method, path, curl_easy_strerror (rc));
        return NULL;
    }
    curl_easy_getinfo (self->curl, CURLINFO_RESPONSE_CODE, status_p);
    return self->buf ? self->buf : "";
}

long
qv_it_rest_connects (qv_it_rest_t *self)
{
    long n = 0;
    curl_easy_getinfo (self->curl, CURLINFO_NUM_CONNECTS, &n);
    return n;
}

bool
qv_it_rest_match (const char *what, json_t *got, const char *want)
{
    json_error_t err;
    json_t *exp = json_loads (want, JSON_DECODE_ANY, &err);
    if (!exp) {
        fprintf (stderr, "%s: bad expected JSON %s: %s\n", what, want, err.text);
        return false;
    }
    bool same = got && json_equal (got, exp);
    if (!same) {
        char *text = got ? json_dumps (got, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
        char *wtext = json_dumps (exp, JSON_COMPACT | JSON_SORT_KEYS);
        fprintf (stderr, "%s: got      %s\n%s: expected %s\n", what, text ? text : "(nothing)", what, wtext);
        free (text);
        free (wtext);
    }
    json_decref (exp);
    return same;
}
