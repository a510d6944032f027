//  The states `get_backup_state` reports, kept across restarts. The writer of a
//  backup (actors/qv_backup.c) records its state when it starts and when it ends, in
//  a store of its own: the directory backup-states in the data directory of the
//  server that runs it (the writer's searcher; a searcher process keeps its states in
//  memory, as it writes nothing to the data directory). The searcher loads the
//  records when it starts, so a backup's id still answers after a restart, and one
//  that was being written when the server stopped (kill -9, a crash) answers `failed`,
//  saying so, instead of "not known".
//
//  Each record is one object, <id> (the id in 20 digits, so the keys sort by id,
//  which is by time: ids start from the wall clock in ms), in the envelope (kind
//  BACKUP_STATE): msgpack {"id", "collection", "to", "ts", "state", "rows_done",
//  "rows_total", "error", "updated_ms"}. Other names in the directory are left alone.
//  The newest QV_BACKUP_RECORDS_KEPT are kept; loading (at start) deletes older ones.
#ifndef QV_BACKUP_STATE_H_INCLUDED
#define QV_BACKUP_STATE_H_INCLUDED

#include "qv_backup.h"

#define QV_BACKUP_RECORDS_DIR "backup-states"      //  in the data directory
#define QV_BACKUP_RECORDS_KEPT 1000
#define QV_BACKUP_RECORD_VERSION 1

//  The store of the records of the data directory data (creating its directory), or
//  NULL with a message.
qv_store_t *
    qv_backup_records_open (const char *data);
//  Writes rec as <id> in store (qv_backup_records_open's). 0 or the code (with a
//  message).
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
