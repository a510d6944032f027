//  The states `get_backup_state` reports, kept across restarts. The writer of a
//  backup (actors/qv_backup.c) records its state in the data directory of the server
//  that runs it, when it starts and when it ends; that server's searcher loads the
//  records when it starts, so a backup's id still answers after a restart, and one
//  that was being written when the server stopped (kill -9, a crash) answers `failed`,
//  saying so, instead of "not known".
//
//  Each record is one object, backups/<id> (the id in 20 digits, so the keys sort by
//  id, which is by time: ids start from the wall clock in ms), in the envelope (kind
//  BACKUP_STATE): msgpack {"id", "collection", "to", "ts", "state", "rows_done",
//  "rows_total", "error", "updated_ms"}. The newest QV_BACKUP_RECORDS_KEPT are kept;
//  loading deletes older ones.
#ifndef QV_BACKUP_STATE_H_INCLUDED
#define QV_BACKUP_STATE_H_INCLUDED

#include "qv_backup.h"

#define QV_BACKUP_RECORDS_PREFIX "backups/"
#define QV_BACKUP_RECORDS_KEPT 1000
#define QV_BACKUP_RECORD_VERSION 1

//  Writes rec as backups/<id> in store. 0 or the code (with a message).
int
    qv_backup_record_put (qv_store_t *store, const qv_backup_record_t *rec);

//  The records in store, newest QV_BACKUP_RECORDS_KEPT (older ones deleted), as a
//  new hash "id" (decimal) -> qv_backup_record_t (the hash frees them). A record still
//  `executing` is of a backup whose server stopped while writing it: it is loaded as
//  failed, with an error that says so. A damaged record is skipped and logged. Never
//  NULL but when out of memory.
zhashx_t *
    qv_backup_records_load (qv_store_t *store);

//  Writes get_backup_state's fields of rec (state, collection, ts, rows_done,
//  rows_total, and error when failed) into the open map w.
void
    qv_backup_record_write (const qv_backup_record_t *rec, qv_wr_t *w);

#endif
