//  The metrics endpoint (`quiver serve --metrics HOST:PORT`) against a real server:
//  /healthz and /readyz answer; /metrics parses as Prometheus text (every sample line
//  a name, optional labels and a number; every family typed), request counters move
//  by exactly the requests sent, per op and reply code (a request that does not parse
//  counts as op "unknown"), latency histograms are cumulative and end at their count,
//  and the stats figures follow the data; other paths and methods are refused; a bad
//  address stops the server at start saying what is wrong.
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <czmq.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qv_codec.h"
#include "qv_it_rest.h"
#include "qv_it_server.h"

#define CALL_OK QV_IT_CALL_OK
#define CALL_ERR QV_IT_CALL_ERR

static qv_it_server_t *s_server;
static int s_port;

static int
s_group_setup (void **state)
{
    (void) state;
    s_port = qv_it_rest_free_port ();
    char metrics [32];
    snprintf (metrics, sizeof metrics, "127.0.0.1:%d", s_port);
    const char *extra [] = { "--metrics", metrics, NULL };
    s_server = qv_it_server_new (extra);
    return !s_port || !s_server || qv_it_server_start (s_server) ? -1 : 0;
}

static int
s_group_teardown (void **state)
{
    (void) state;
    qv_it_server_destroy (&s_server);
    return 0;
}

//  One scrape: sample lines "name{labels} value" -> value; fails the test on any line
//  that is neither a comment nor a sample, and on a sample whose family has no TYPE.
typedef struct {
    zhashx_t *samples;              //  "name{labels}" -> double *
} s_scrape_t;

static void
s_free_double (void **item)
{
    free (*item);
    *item = NULL;
}

static s_scrape_t
s_scrape (qv_it_rest_t *rest)
{
    long status = 0;
    const char *text = qv_it_rest_text (rest, "GET", "/metrics", NULL, &status);
    assert_non_null (text);
    assert_int_equal (status, 200);
    s_scrape_t s = { zhashx_new () };
    zhashx_set_destructor (s.samples, s_free_double);
    zhashx_t *typed = zhashx_new ();
    char *copy = strdup (text);
    for (char *line = strtok (copy, "\n"); line; line = strtok (NULL, "\n")) {
        char family [256];
        if (strncmp (line, "# TYPE ", 7) == 0) {
            char type [32];
            assert_int_equal (sscanf (line + 7, "%255s %31s", family, type), 2);
            assert_true (!strcmp (type, "counter") || !strcmp (type, "gauge")
                         || !strcmp (type, "histogram"));
            zhashx_insert (typed, family, (void *) 1);
            continue;
        }
        if (line [0] == '#')
            continue;
        char *space = strrchr (line, ' ');
        if (!space)
            fail_msg ("not a sample line: '%s'", line);
        *space = 0;
        char *end;
        double v = strtod (space + 1, &end);
        if (*end || space + 1 == end)
            fail_msg ("sample '%s' has no number: '%s'", line, space + 1);
        size_t n = strcspn (line, "{");
        assert_true (n > 0 && n < sizeof family);
        for (size_t i = 0; i < n; i++)
            assert_true ((line [i] >= 'a' && line [i] <= 'z') || line [i] == '_'
                         || (line [i] >= '0' && line [i] <= '9'));
        if (line [n])
            assert_int_equal (line [strlen (line) - 1], '}');
        memcpy (family, line, n);
        family [n] = 0;
        //  A histogram's samples belong to the family without their suffix
        bool known = zhashx_lookup (typed, family) != NULL;
        const char *suffixes [] = { "_bucket", "_sum", "_count" };
        for (int i = 0; i < 3 && !known; i++) {
            size_t sl = strlen (suffixes [i]);
            if (n > sl && !strcmp (family + n - sl, suffixes [i])) {
                family [n - sl] = 0;
                known = zhashx_lookup (typed, family) != NULL;
            }
        }
        if (!known)
            fail_msg ("sample '%s' has no # TYPE line before it", line);
        double *value = malloc (sizeof *value);
        *value = v;
        zhashx_update (s.samples, line, value);
    }
    free (copy);
    zhashx_destroy (&typed);
    return s;
}

//  A sample's value; 0 when absent (a counter not yet moved is not written).
static double
s_value (s_scrape_t *s, const char *fmt, ...)
{
    char key [512];
    va_list ap;
    va_start (ap, fmt);
    vsnprintf (key, sizeof key, fmt, ap);
    va_end (ap);
    double *v = zhashx_lookup (s->samples, key);
    return v ? *v : 0;
}

static void
s_scrape_destroy (s_scrape_t *s)
{
    zhashx_destroy (&s->samples);
}

static void
test_health (void **state)
{
    (void) state;
    qv_it_rest_t *rest = qv_it_rest_new (s_port);
    assert_non_null (rest);
    long status = 0;
    const char *text = qv_it_rest_text (rest, "GET", "/healthz", NULL, &status);
    assert_int_equal (status, 200);
    assert_string_equal (text, "ok\n");
    text = qv_it_rest_text (rest, "GET", "/readyz", NULL, &status);
    assert_int_equal (status, 200);
    assert_string_equal (text, "ready\n");
    text = qv_it_rest_text (rest, "GET", "/nope", NULL, &status);
    assert_int_equal (status, 404);
    assert_non_null (strstr (text, "/metrics"));
    text = qv_it_rest_text (rest, "POST", "/metrics", "{}", &status);
    assert_int_equal (status, 405);
    qv_it_rest_destroy (&rest);
}

static void
test_counters_move (void **state)
{
    (void) state;
    qv_it_rest_t *rest = qv_it_rest_new (s_port);
    assert_non_null (rest);
    qv_it_client_t *c = qv_it_client_new (s_server->endpoint, QV_IT_CALL_MS);
    assert_non_null (c);
    qv_doc_t *r = CALL_OK (c, "{op: 'create_collection', collection: 'm', fields: ["
                              "{name: 'id', type: 'int64', primary: true},"
                              "{name: 'v', type: 'float_vector', dim: 2}]}");
    qv_doc_destroy (&r);
    r = CALL_OK (c, "{op: 'create_index', collection: 'm', field: 'v', index_type: 'HNSW'}");
    qv_doc_destroy (&r);
    s_scrape_t before = s_scrape (rest);
    assert_true (s_value (&before, "quiver_ready") == 1);
    for (int i = 0; i < 2; i++) {
        r = CALL_OK (c, "{op: 'insert', collection: 'm', rows: [{id: %d, v: [1.0, 2.0]},"
                        "{id: %d, v: [3.0, 4.0]}]}", 2 * i, 2 * i + 1);
        qv_doc_destroy (&r);
    }
    for (int i = 0; i < 3; i++) {
        r = CALL_OK (c, "{op: 'search', collection: 'm', vectors: [[1.0, 2.0]], limit: 2}");
        qv_doc_destroy (&r);
    }
    r = CALL_ERR (c, "NOT_FOUND", "{op: 'search', collection: 'nosuch', vectors: [[1.0, 2.0]]}");
    qv_doc_destroy (&r);
    r = qv_it_call_raw (c, "\xc1", 1);      //  not msgpack
    assert_non_null (r);
    assert_string_equal (qv_it_code (r), "MALFORMED");
    qv_doc_destroy (&r);
    //  A flush writes a segment and a manifest; the segment's index is then built
    r = CALL_OK (c, "{op: 'flush', collection: 'm'}");
    qv_doc_destroy (&r);
    bool built = false;
    for (int i = 0; i < 300 && !built; i++) {
        r = CALL_OK (c, "{op: 'describe_index', collection: 'm', field: 'v'}");
        built = qv_it_int (qv_it_path (r, "indexed_rows")) == 4;
        qv_doc_destroy (&r);
        if (!built)
            zclock_sleep (100);
    }
    assert_true (built);

    s_scrape_t after = s_scrape (rest);
    const char *req = "quiver_requests_total{op=\"%s\",code=\"%s\"}";
    assert_true (s_value (&after, req, "insert", "OK") - s_value (&before, req, "insert", "OK") == 2);
    assert_true (s_value (&after, req, "search", "OK") - s_value (&before, req, "search", "OK") == 3);
    assert_true (s_value (&after, req, "search", "NOT_FOUND")
                 - s_value (&before, req, "search", "NOT_FOUND") == 1);
    assert_true (s_value (&after, req, "unknown", "MALFORMED")
                 - s_value (&before, req, "unknown", "MALFORMED") == 1);
    //  The histogram of search: cumulative buckets up to +Inf = count = every outcome
    const char *les [] = { "0.0001", "0.00025", "0.0005", "0.001", "0.0025", "0.005", "0.01",
                           "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "+Inf" };
    double last = 0;
    for (size_t i = 0; i < sizeof les / sizeof les [0]; i++) {
        double b = s_value (&after, "quiver_request_duration_seconds_bucket{op=\"search\",le=\"%s\"}",
                            les [i]);
        assert_true (b >= last);
        last = b;
    }
    double count = s_value (&after, "quiver_request_duration_seconds_count{op=\"search\"}");
    assert_true (last == count);
    assert_true (count == s_value (&after, req, "search", "OK") + s_value (&after, req, "search", "NOT_FOUND"));
    double sum = s_value (&after, "quiver_request_duration_seconds_sum{op=\"search\"}");
    assert_true (sum > 0 && sum < 60 * count);
    //  The work histograms: two WAL commits at least (the inserts), each with records;
    //  a segment and a manifest written; an index built
    double commits = s_value (&after, "quiver_wal_commit_duration_seconds_count")
                   - s_value (&before, "quiver_wal_commit_duration_seconds_count");
    assert_true (commits >= 2);
    assert_true (s_value (&after, "quiver_wal_commit_records_count")
                 == s_value (&after, "quiver_wal_commit_duration_seconds_count"));
    assert_true (s_value (&after, "quiver_wal_commit_records_bucket{le=\"+Inf\"}")
                 == s_value (&after, "quiver_wal_commit_records_count"));
    assert_true (s_value (&after, "quiver_wal_commit_bytes_sum") > 0);
    assert_true (s_value (&after, "quiver_segment_write_duration_seconds_count")
                 - s_value (&before, "quiver_segment_write_duration_seconds_count") >= 1);
    assert_true (s_value (&after, "quiver_manifest_write_duration_seconds_count")
                 - s_value (&before, "quiver_manifest_write_duration_seconds_count") >= 1);
    assert_true (s_value (&after, "quiver_index_build_duration_seconds_count")
                 - s_value (&before, "quiver_index_build_duration_seconds_count") >= 1);
    //  The stats figures: rows acknowledged
    assert_true (s_value (&after, "quiver_rows") == 4);
    assert_true (s_value (&after, "quiver_collections") >= 1);
    //  Memory by component: every component written, the flushed rows and their
    //  index and key index held
    const char *components [] = { "growing_segments", "flushed_segments", "vector_indexes",
                                  "primary_key_index", "filter_cache" };
    for (size_t i = 0; i < sizeof components / sizeof components [0]; i++) {
        char key [128];
        snprintf (key, sizeof key, "quiver_memory_bytes{component=\"%s\"}", components [i]);
        if (!zhashx_lookup (after.samples, key))
            fail_msg ("no sample %s", key);
    }
    const char *mem = "quiver_memory_bytes{component=\"%s\"}";
    assert_true (s_value (&after, mem, "flushed_segments") > 0);
    assert_true (s_value (&after, mem, "vector_indexes") > 0);
    assert_true (s_value (&after, mem, "primary_key_index") > 0);
    bool info = false;              //  the instance varies: found by its prefix
    for (void *v = zhashx_first (after.samples); v; v = zhashx_next (after.samples))
        info |= strncmp (zhashx_cursor (after.samples), "quiver_info{role=\"embedded\",instance=\"", 38) == 0
             && *(double *) v == 1;
    assert_true (info);
    s_scrape_destroy (&before);
    s_scrape_destroy (&after);
    qv_it_client_destroy (&c);
    qv_it_rest_destroy (&rest);
}

//  A bad --metrics address stops the server at start with a message naming the option.
static void
test_bad_address (void **state)
{
    (void) state;
    static const char *bad [] = { "nonsense", "127.0.0.1:99999", "example.org:80", NULL };
    qv_it_assert_option_refused ("--metrics", bad);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_health),
        cmocka_unit_test (test_counters_move),
        cmocka_unit_test (test_bad_address),
    };
    return cmocka_run_group_tests (tests, s_group_setup, s_group_teardown);
}
