//  qvctl's command toolkit, shared by its files: the context every command gets,
//  requests that report failures, option parsing with usage errors (exit 2), readers of
//  reply fields, and the commands that live outside tools/qvctl.c.
#ifndef QV_CTL_H_INCLUDED
#define QV_CTL_H_INCLUDED

#include "qv_client.h"
#include "qv_codec.h"

#include <getopt.h>
#include <stdbool.h>
#include <stdint.h>

#define QV_CTL_LONG_TIMEOUT_MS 120000   //  inserts and searches that may wait on the server

//  What every command gets: the connected client and the server endpoint.
typedef struct {
    qv_client_t *client;
    const char *server;
    int timeout_ms;                 //  --timeout, 0 if not given
    bool json;                      //  --output json: one JSON document on stdout
    const char *command;            //  the running command's name and usage text
    const char *usage;
} qv_ctl_t;

//  What a command needs to know of a collection's schema.
typedef struct {
    char pk [256];                  //  primary key field name
    bool pk_varchar;
    bool auto_id;
    char vector [256];              //  (first) float_vector field name
    uint32_t dim;
    char metric [16];
} qv_ctl_schema_t;

//  Makes ctx the running command's context: usage errors and --help close its client
//  before they exit. Called once by main.
void
    qv_ctl_begin (qv_ctl_t *ctx);

//  Element count of a list or map; 0 when absent (NULL) or anything else.
size_t
    qv_ctl_len (const qv_val_t *v);
//  A field of a reply map; false / 0 / out unchanged when absent or of another type.
bool
    qv_ctl_get_bool (const qv_val_t *map, const char *key);
uint64_t
    qv_ctl_get_uint (const qv_val_t *map, const char *key);
void
    qv_ctl_get_str (const qv_val_t *map, const char *key, char *out, size_t size);

//  Prints every field of a reply but ok and rid: "key: value" lines, or one JSON object
//  with --output json.
void
    qv_ctl_print_fields (const qv_val_t *reply);
//  Prints rows (a list of maps): one JSON map a line, or one JSON array with --output json.
void
    qv_ctl_print_rows (qv_ctl_t *ctx, const qv_val_t *rows);

//  Operations that may legitimately wait on the server wait longer, unless told.
void
    qv_ctl_long_timeout (qv_ctl_t *ctx);
//  Sends a request (destroyed) and reports a failure on stderr (and as JSON on stdout
//  with --output json); 0 or the code. The caller owns *reply on success.
int
    qv_ctl_call (qv_ctl_t *ctx, qv_wr_t **request_p, qv_doc_t **reply);
//  The collections' names (list_collections): *names points into *reply, which the
//  caller destroys; 0 or the code.
int
    qv_ctl_list_collections (qv_ctl_t *ctx, qv_doc_t **reply, const qv_val_t **names);
//  Reads the schema of collection name with describe_collection; 0 or the code.
int
    qv_ctl_describe (qv_ctl_t *ctx, const char *name, qv_ctl_schema_t *schema);
//  Writes one primary key given on the command line as the collection expects it.
int
    qv_ctl_write_key (const qv_ctl_schema_t *schema, const char *arg, qv_wr_t *w);
//  Reads up to limit (0: all) vectors of a file (.fvecs, .bvecs, .npy) for the vector
//  field of collection name, or with inline one vector given as text; checks their
//  dimension. NULL after reporting why on stderr (*rc set to the code).
float *
    qv_ctl_vectors_load (const qv_ctl_schema_t *schema, const char *name, const char *path,
                         bool inline_vector, long long limit, uint32_t *rows, int *rc);
//  Splits "a,b,c" into a list written to w.
void
    qv_ctl_write_names (const char *csv, qv_wr_t *w);

//  Option parsing of a command: --help prints usage and exits 0; an unknown option, a
//  bad value or a wrong count of arguments is a usage error (exit 2).
long long
    qv_ctl_int_arg (const char *option, const char *arg, long long min, long long max);
void
    qv_ctl_usage_error (const char *fmt, const char *arg);
void
    qv_ctl_check_positional (int argc, char **argv, int min, int max);
int
    qv_ctl_getopt (int argc, char **argv, const struct option *opts);

//  The write commands (tools/qvctl/qv_ctl_write.c): import FILE, insert / upsert JSON lines.
int
    qv_ctl_cmd_import (qv_ctl_t *ctx, int argc, char **argv);
int
    qv_ctl_cmd_insert (qv_ctl_t *ctx, int argc, char **argv);
int
    qv_ctl_cmd_upsert (qv_ctl_t *ctx, int argc, char **argv);

//  probe URL (tools/qvctl/qv_ctl_probe.c): GET a health endpoint; 0 on HTTP 200.
extern const char qv_ctl_probe_usage [];
int
    qv_ctl_cmd_probe (qv_ctl_t *ctx, int argc, char **argv);

//  Backup and restore (tools/qvctl/qv_ctl_backup.c), and their usage texts.
extern const char qv_ctl_backup_usage [];
extern const char qv_ctl_restore_usage [];
int
    qv_ctl_cmd_backup (qv_ctl_t *ctx, int argc, char **argv);
int
    qv_ctl_cmd_restore (qv_ctl_t *ctx, int argc, char **argv);

//  Users and roles (tools/qvctl/qv_ctl_users.c), and their usage texts.
extern const char qv_ctl_user_usage [];
extern const char qv_ctl_role_usage [];
int
    qv_ctl_cmd_user (qv_ctl_t *ctx, int argc, char **argv);
int
    qv_ctl_cmd_role (qv_ctl_t *ctx, int argc, char **argv);

#endif
