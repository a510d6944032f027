//  Backup states kept across restarts (actors/qv_backup_state.h) in a real filesystem
//  store: records read back as written; one left `executing` reads back as failed,
//  naming the directory; a damaged record is skipped; only the newest
//  QV_BACKUP_RECORDS_KEPT are kept, the older ones deleted from the store, and files
//  that are not records are neither read nor deleted.
#include "qv_backup_state.h"
#include "qv_envelope.h"
#include "qv_rc.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <unistd.h>

static char s_dir [] = "/tmp/qv-bstate-XXXXXX";

static qv_backup_record_t
s_rec (uint64_t id, qv_backup_state_t state)
{
    qv_backup_record_t r = { .id = id, .ts = id * 3, .state = state, .done = id % 7,
                             .total = 100, .updated_ms = 5 };
    snprintf (r.collection, sizeof r.collection, "c%llu", (unsigned long long) id);
    snprintf (r.to, sizeof r.to, "/backups/b%llu", (unsigned long long) id);
    if (state == QV_BACKUP_FAILED)
        snprintf (r.error, sizeof r.error, "disk full");
    return r;
}

static const qv_backup_record_t *
s_get (zhashx_t *records, uint64_t id)
{
    char key [24];
    snprintf (key, sizeof key, "%llu", (unsigned long long) id);
    return zhashx_lookup (records, key);
}

static void
test_round_trip (void **state)
{
    (void) state;
    char dir [64];
    snprintf (dir, sizeof dir, "%s/a", s_dir);
    qv_store_t *store = qv_backup_records_open (dir);
    assert_non_null (store);
    qv_backup_record_t done = s_rec (1000, QV_BACKUP_COMPLETED);
    qv_backup_record_t failed = s_rec (1001, QV_BACKUP_FAILED);
    qv_backup_record_t running = s_rec (1002, QV_BACKUP_EXECUTING);
    assert_int_equal (qv_backup_record_put (store, &done), 0);
    assert_int_equal (qv_backup_record_put (store, &failed), 0);
    assert_int_equal (qv_backup_record_put (store, &running), 0);
    //  A damaged record: its payload's last byte flipped
    qv_backup_record_t bad = s_rec (999, QV_BACKUP_COMPLETED);
    assert_int_equal (qv_backup_record_put (store, &bad), 0);
    void *data;
    size_t size;
    assert_int_equal (qv_store_get (store, "00000000000000000999", &data, &size), 0);
    ((uint8_t *) data) [size - 1] ^= 1;
    assert_int_equal (qv_store_put (store, "00000000000000000999", data, size), 0);
    free (data);

    zhashx_t *records = qv_backup_records_load (store);
    assert_non_null (records);
    assert_int_equal (zhashx_size (records), 3);
    assert_null (s_get (records, 999));
    const qv_backup_record_t *r = s_get (records, 1000);
    assert_non_null (r);
    assert_int_equal (r->state, QV_BACKUP_COMPLETED);
    assert_string_equal (r->collection, "c1000");
    assert_string_equal (r->to, "/backups/b1000");
    assert_int_equal (r->ts, 3000);
    assert_int_equal (r->done, 1000 % 7);
    assert_int_equal (r->total, 100);
    assert_string_equal (r->error, "");
    r = s_get (records, 1001);
    assert_int_equal (r->state, QV_BACKUP_FAILED);
    assert_string_equal (r->error, "disk full");
    r = s_get (records, 1002);
    assert_int_equal (r->state, QV_BACKUP_FAILED);
    assert_non_null (strstr (r->error, "stopped before this backup's end was recorded"));
    assert_non_null (strstr (r->error, "/backups/b1002"));

    //  The reply's fields
    qv_wr_t *w = qv_wr_new ();
    qv_wr_map_open (w);
    qv_backup_record_write (r, w);
    qv_wr_map_close (w);
    const void *body = qv_wr_data (w, &size);
    int rc;
    qv_doc_t *doc = qv_doc_parse (body, size, 64, &rc);
    assert_non_null (doc);
    assert_true (qv_val_is (qv_val_get (qv_doc_root (doc), "state"), "failed"));
    assert_non_null (qv_val_get (qv_doc_root (doc), "error"));
    qv_doc_destroy (&doc);
    qv_wr_destroy (&w);
    zhashx_destroy (&records);
    qv_store_destroy (&store);
}

static void
test_newest_kept (void **state)
{
    (void) state;
    char dir [64];
    snprintf (dir, sizeof dir, "%s/b", s_dir);
    qv_store_t *store = qv_backup_records_open (dir);
    assert_non_null (store);
    //  Not records: left alone
    assert_int_equal (qv_store_put (store, "docs/manifest", "x", 1), 0);
    assert_int_equal (qv_store_put (store, "0000000000000000000", "x", 1), 0);
    assert_non_null (store);
    uint64_t first = 1765000000000;         //  ids start from the wall clock in ms
    for (uint64_t i = 0; i < QV_BACKUP_RECORDS_KEPT + 3; i++) {
        //  Ids of different lengths in decimal still sort by value (the keys are padded)
        qv_backup_record_t r = s_rec (i < 2 ? 9 + i : first + i, QV_BACKUP_COMPLETED);
        assert_int_equal (qv_backup_record_put (store, &r), 0);
    }
    zhashx_t *records = qv_backup_records_load (store);
    assert_int_equal (zhashx_size (records), QV_BACKUP_RECORDS_KEPT);
    assert_null (s_get (records, 9));
    assert_null (s_get (records, 10));
    assert_null (s_get (records, first + 2));
    assert_non_null (s_get (records, first + 3));
    assert_non_null (s_get (records, first + QV_BACKUP_RECORDS_KEPT + 2));
    zhashx_destroy (&records);
    zlist_t *keys;
    assert_int_equal (qv_store_list (store, "", &keys), 0);
    assert_int_equal (zlist_size (keys), QV_BACKUP_RECORDS_KEPT + 2);
    bool manifest = false, short_name = false;
    for (const char *k = zlist_first (keys); k; k = zlist_next (keys)) {
        manifest |= streq (k, "docs/manifest");
        short_name |= streq (k, "0000000000000000000");
    }
    assert_true (manifest && short_name);
    zlist_destroy (&keys);
    qv_store_destroy (&store);
}

int
main (void)
{
    assert_non_null (mkdtemp (s_dir));
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_round_trip),
        cmocka_unit_test (test_newest_kept),
    };
    int failed = cmocka_run_group_tests (tests, NULL, NULL);
    char cmd [128];
    snprintf (cmd, sizeof cmd, "rm -rf %s", s_dir);
    if (system (cmd) != 0)
        failed++;
    return failed;
}
