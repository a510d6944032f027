//  The one msgpack codec: a checked reader over decoded documents and a writer.
//  No other file includes msgpack.h; every message is read and written through here.
#ifndef QV_CODEC_H_INCLUDED
#define QV_CODEC_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum {
    QV_V_NIL, QV_V_BOOL, QV_V_UINT, QV_V_INT, QV_V_FLOAT, QV_V_STR, QV_V_BIN,
    QV_V_ARRAY, QV_V_MAP, QV_V_EXT
} qv_vtype_t;

//  A decoded value inside a document; valid while the document lives.
typedef struct qv_val qv_val_t;
//  A decoded msgpack document (owns its memory).
typedef struct _qv_doc_t qv_doc_t;

//  Decodes exactly one msgpack value from a copy of data (the caller may free data).
//  Before allocating anything it walks the
//  bytes and refuses (QV_EPROTO) anything that is not well-formed, nests deeper than
//  32, has trailing bytes, or declares more than max_elems elements in all (QV_ELIMIT),
//  so a small hostile message cannot make the decoder allocate much. NULL on failure
//  with *rc_p set and the reason in qv_err_msg ().
qv_doc_t *
    qv_doc_parse (const void *data, size_t size, size_t max_elems, int *rc_p);
//  As qv_doc_parse without the copy: decoded str/bin values point into data, which
//  the caller keeps unchanged while the document lives (large objects read from the
//  store, whose values are copied out before data is freed).
qv_doc_t *
    qv_doc_parse_view (const void *data, size_t size, size_t max_elems, int *rc_p);
//  As qv_doc_parse_view, taking owner, which holds data: the document calls
//  release (owner) when it is destroyed (at once if decoding fails). A received
//  message decoded where it lies, never copied (a request frame).
qv_doc_t *
    qv_doc_parse_owned (const void *data, size_t size, size_t max_elems,
                        void (*release) (void *owner), void *owner, int *rc_p);
void
    qv_doc_destroy (qv_doc_t **self_p);
const qv_val_t *
    qv_doc_root (qv_doc_t *self);

qv_vtype_t
    qv_val_type (const qv_val_t *v);
const char *
    qv_vtype_name (qv_vtype_t type);
//  Element count of an array or map, byte length of a str or bin, else 0.
size_t
    qv_val_len (const qv_val_t *v);
//  i-th element of an array; i-th key / value of a map (no bounds beyond len).
const qv_val_t *
    qv_val_at (const qv_val_t *v, size_t i);
const qv_val_t *
    qv_val_key (const qv_val_t *v, size_t i);
const qv_val_t *
    qv_val_value (const qv_val_t *v, size_t i);
//  Value under a string key in a map, or NULL if absent or v is not a map.
const qv_val_t *
    qv_val_get (const qv_val_t *map, const char *key);
//  True if v is a str equal to s.
bool
    qv_val_is (const qv_val_t *v, const char *s);

//  Typed reads: 0, or QV_EPROTO if the type does not fit (no message recorded; the
//  caller knows the field name). Integers accept any msgpack integer in range; doubles
//  accept integers and floats; str/bin give a pointer into the document.
int qv_val_bool   (const qv_val_t *v, bool *out);
int qv_val_int    (const qv_val_t *v, int64_t *out);
int qv_val_uint   (const qv_val_t *v, uint64_t *out);
int qv_val_double (const qv_val_t *v, double *out);
int qv_val_str    (const qv_val_t *v, const char **ptr, size_t *len);
int qv_val_bin    (const qv_val_t *v, const void **ptr, size_t *len);
//  Copies a str into out (NUL-terminated); QV_EPROTO if not a str, QV_EINVAL if longer
//  than outsize - 1.
int qv_val_strcpy (const qv_val_t *v, char *out, size_t outsize);

//  The protocol's encoding rules (PROTOCOL.md 1.1) over a whole value: every str (map
//  keys included) is valid UTF-8 and no map holds the same key twice. 0, or QV_EPROTO
//  with the reason (the offending key or string shown escaped) in qv_err_msg ().
int
    qv_val_check_strict (const qv_val_t *v);

//  Whether s[0..n) is valid UTF-8 (shortest forms, no surrogates, at most U+10FFFF).
bool
    qv_utf8_valid (const char *s, size_t n);
//  Copies s[0..n) into out (NUL-terminated, cut at outsize - 1 bytes, "..." when cut)
//  with every byte that is not part of valid UTF-8 and every control character written
//  as \xNN: the result is valid UTF-8 and safe to echo in a reply or a log line.
void
    qv_utf8_escape (const char *s, size_t n, char *out, size_t outsize);

//  A msgpack writer into a growing buffer.
typedef struct _qv_wr_t qv_wr_t;

qv_wr_t *
    qv_wr_new (void);
void
    qv_wr_destroy (qv_wr_t **self_p);
void qv_wr_map    (qv_wr_t *w, size_t n);
void qv_wr_array  (qv_wr_t *w, size_t n);
void qv_wr_nil    (qv_wr_t *w);
void qv_wr_bool   (qv_wr_t *w, bool b);
void qv_wr_int    (qv_wr_t *w, int64_t i);
void qv_wr_uint   (qv_wr_t *w, uint64_t u);
void qv_wr_float  (qv_wr_t *w, float f);
void qv_wr_double (qv_wr_t *w, double d);
void qv_wr_str    (qv_wr_t *w, const char *s);
void qv_wr_strn   (qv_wr_t *w, const char *s, size_t n);
void qv_wr_bin    (qv_wr_t *w, const void *p, size_t n);
//  Writes a decoded value (deep copy), e.g. to echo `rid`.
void qv_wr_val    (qv_wr_t *w, const qv_val_t *v);
//  Appends bytes that already are one msgpack value (a stored JSON field).
void qv_wr_raw    (qv_wr_t *w, const void *p, size_t n);
//  The map builder: a map that counts its own entries. qv_wr_map_open starts it,
//  qv_wr_key writes a key and counts one entry (the caller writes its value next),
//  qv_wr_map_add counts n entries written by other code (e.g. a helper that writes
//  its own key/value pairs), and qv_wr_map_close writes the final count into the
//  header (the smallest msgpack form). Open maps nest (up to 32) and each needs its
//  close before qv_wr_data / qv_wr_detach; the reader sees an ordinary map.
void qv_wr_map_open  (qv_wr_t *w);
void qv_wr_key       (qv_wr_t *w, const char *key);
void qv_wr_map_add   (qv_wr_t *w, size_t n);
void qv_wr_map_close (qv_wr_t *w);
//  The bytes written so far; qv_wr_detach hands the malloc'd buffer to the caller
//  and resets the writer.
const void *
    qv_wr_data (qv_wr_t *w, size_t *size);
void *
    qv_wr_detach (qv_wr_t *w, size_t *size);
void
    qv_wr_reset (qv_wr_t *w);
//  Makes room for n more bytes at once (one allocation for a writer whose final size
//  is known or estimated, instead of doubling into it). Returns 0, or -1 when out of
//  memory (the writer is unchanged: writes still grow it as needed).
int
    qv_wr_reserve (qv_wr_t *w, size_t n);

//  Encodes one value v as standalone msgpack bytes into a malloc'd buffer.
void *
    qv_val_encode (const qv_val_t *v, size_t *size);

#endif
