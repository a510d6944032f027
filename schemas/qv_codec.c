//  The msgpack codec: a bounds-checking pre-scan, msgpack-c decoding, typed accessors,
//  and a writer over msgpack_sbuffer.
#include "qv_codec.h"
#include "qv_rc.h"

#include <assert.h>
#include <msgpack.h>
#include <stdlib.h>
#include <string.h>

struct qv_val {
    msgpack_object o;
};

struct _qv_doc_t {
    msgpack_unpacked unpacked;
    void *bytes;                    //  own copy of the input: msgpack-c's str and bin
                                    //  objects point into the bytes they decode
    void (*release) (void *owner);  //  qv_doc_parse_owned: frees what holds the bytes
    void *owner;
};

#define QV_MAX_DEPTH 32

//  Walks one msgpack value at *pos, checking that every length fits in the bytes left
//  and every container's declared element count fits too (an element takes at least
//  one byte). Adds the containers' element counts to *elems.
static int
s_prescan (const uint8_t *p, size_t size, size_t *pos, int depth, size_t *elems,
           size_t max_elems)
{
    if (depth > QV_MAX_DEPTH)
        return qv_err (QV_EPROTO, "msgpack nests deeper than %d levels", QV_MAX_DEPTH);
    if (*pos >= size)
        return qv_err (QV_EPROTO, "msgpack value truncated at byte %zu", *pos);
    uint8_t b = p [(*pos)++];
    size_t left = size - *pos;
    uint64_t len = 0, count = 0;
    int is_map = 0;
#define NEED(n) do { if (left < (size_t) (n)) \
        return qv_err (QV_EPROTO, "msgpack value truncated at byte %zu", *pos); } while (0)
#define BE(n) ({ uint64_t _v = 0; for (int _i = 0; _i < (n); _i++) _v = (_v << 8) | p [*pos + _i]; *pos += (n); left -= (n); _v; })
    if (b <= 0x7f || b >= 0xe0 || b == 0xc0 || b == 0xc2 || b == 0xc3)
        return 0;
    if ((b & 0xe0) == 0xa0) { len = b & 0x1f; goto skip; }
    if ((b & 0xf0) == 0x90) { count = b & 0x0f; goto container; }
    if ((b & 0xf0) == 0x80) { count = b & 0x0f; is_map = 1; goto container; }
    switch (b) {
        case 0xcc: case 0xd0: len = 1; goto skip;
        case 0xcd: case 0xd1: len = 2; goto skip;
        case 0xca: case 0xce: case 0xd2: len = 4; goto skip;
        case 0xcb: case 0xcf: case 0xd3: len = 8; goto skip;
        case 0xc4: case 0xd9: NEED (1); len = BE (1); goto skip;
        case 0xc5: case 0xda: NEED (2); len = BE (2); goto skip;
        case 0xc6: case 0xdb: NEED (4); len = BE (4); goto skip;
        case 0xd4: len = 2; goto skip;
        case 0xd5: len = 3; goto skip;
        case 0xd6: len = 5; goto skip;
        case 0xd7: len = 9; goto skip;
        case 0xd8: len = 17; goto skip;
        case 0xc7: NEED (1); len = BE (1) + 1; goto skip;
        case 0xc8: NEED (2); len = BE (2) + 1; goto skip;
        case 0xc9: NEED (4); len = BE (4) + 1; goto skip;
        case 0xdc: NEED (2); count = BE (2); goto container;
        case 0xdd: NEED (4); count = BE (4); goto container;
        case 0xde: NEED (2); count = BE (2); is_map = 1; goto container;
        case 0xdf: NEED (4); count = BE (4); is_map = 1; goto container;
        default:
            return qv_err (QV_EPROTO, "invalid msgpack type byte 0x%02x at byte %zu", b, *pos - 1);
    }
skip:
    NEED (len);
    *pos += len;
    return 0;
container:
    //  msgpack-c's unpacker holds at most QV_MAX_DEPTH open containers and reports a
    //  deeper one as out of memory, even an empty one: refuse it here as malformed.
    if (depth >= QV_MAX_DEPTH)
        return qv_err (QV_EPROTO, "msgpack nests deeper than %d levels", QV_MAX_DEPTH);
    if (is_map)
        count *= 2;
    if (count > left)
        return qv_err (QV_EPROTO, "msgpack container declares %llu elements but only %zu bytes follow",
                       (unsigned long long) count, left);
    *elems += count;
    if (*elems > max_elems)
        return qv_err (QV_ELIMIT, "request has more than %zu elements", max_elems);
    for (uint64_t i = 0; i < count; i++) {
        int rc = s_prescan (p, size, pos, depth + 1, elems, max_elems);
        if (rc)
            return rc;
    }
    return 0;
#undef NEED
#undef BE
}

static qv_doc_t *s_parse (const void *data, size_t size, size_t max_elems, bool copy, int *rc_p);

qv_doc_t *
qv_doc_parse (const void *data, size_t size, size_t max_elems, int *rc_p)
{
    return s_parse (data, size, max_elems, true, rc_p);
}

qv_doc_t *
qv_doc_parse_view (const void *data, size_t size, size_t max_elems, int *rc_p)
{
    return s_parse (data, size, max_elems, false, rc_p);
}

qv_doc_t *
qv_doc_parse_owned (const void *data, size_t size, size_t max_elems,
                    void (*release) (void *owner), void *owner, int *rc_p)
{
    qv_doc_t *self = s_parse (data, size, max_elems, false, rc_p);
    if (!self) {
        release (owner);
        return NULL;
    }
    self->release = release;
    self->owner = owner;
    return self;
}

static qv_doc_t *
s_parse (const void *data, size_t size, size_t max_elems, bool copy, int *rc_p)
{
    size_t pos = 0, elems = 0;
    int rc = s_prescan ((const uint8_t *) data, size, &pos, 0, &elems, max_elems);
    if (rc == 0 && pos != size)
        rc = qv_err (QV_EPROTO, "%zu trailing bytes after the msgpack value", size - pos);
    if (rc) {
        *rc_p = rc;
        return NULL;
    }
    qv_doc_t *self = calloc (1, sizeof *self);
    if (!self) {
        *rc_p = qv_err (QV_ENOMEM, "out of memory decoding a request");
        return NULL;
    }
    if (copy) {
        self->bytes = malloc (size ? size : 1);
        if (!self->bytes) {
            free (self);
            *rc_p = qv_err (QV_ENOMEM, "out of memory decoding a request");
            return NULL;
        }
        memcpy (self->bytes, data, size);
    }
    msgpack_unpacked_init (&self->unpacked);
    size_t off = 0;
    msgpack_unpack_return ur = msgpack_unpack_next (&self->unpacked,
                                                    copy ? self->bytes : data, size, &off);
    if (ur != MSGPACK_UNPACK_SUCCESS) {
        msgpack_unpacked_destroy (&self->unpacked);
        free (self->bytes);
        free (self);
        *rc_p = ur == MSGPACK_UNPACK_NOMEM_ERROR
              ? qv_err (QV_ENOMEM, "out of memory decoding a request")
              : qv_err (QV_EPROTO, "not decodable msgpack");
        return NULL;
    }
    *rc_p = 0;
    return self;
}

void
qv_doc_destroy (qv_doc_t **self_p)
{
    if (*self_p) {
        msgpack_unpacked_destroy (&(*self_p)->unpacked);
        free ((*self_p)->bytes);
        if ((*self_p)->release)
            (*self_p)->release ((*self_p)->owner);
        free (*self_p);
        *self_p = NULL;
    }
}

const qv_val_t *
qv_doc_root (qv_doc_t *self)
{
    return (const qv_val_t *) &self->unpacked.data;
}

qv_vtype_t
qv_val_type (const qv_val_t *v)
{
    switch (v->o.type) {
        case MSGPACK_OBJECT_NIL: return QV_V_NIL;
        case MSGPACK_OBJECT_BOOLEAN: return QV_V_BOOL;
        case MSGPACK_OBJECT_POSITIVE_INTEGER: return QV_V_UINT;
        case MSGPACK_OBJECT_NEGATIVE_INTEGER: return QV_V_INT;
        case MSGPACK_OBJECT_FLOAT32:
        case MSGPACK_OBJECT_FLOAT64: return QV_V_FLOAT;
        case MSGPACK_OBJECT_STR: return QV_V_STR;
        case MSGPACK_OBJECT_BIN: return QV_V_BIN;
        case MSGPACK_OBJECT_ARRAY: return QV_V_ARRAY;
        case MSGPACK_OBJECT_MAP: return QV_V_MAP;
        default: return QV_V_EXT;
    }
}

const char *
qv_vtype_name (qv_vtype_t type)
{
    static const char *names [] = { "nil", "bool", "integer", "integer", "float", "string",
                                    "bin", "array", "map", "ext" };
    return names [type];
}

size_t
qv_val_len (const qv_val_t *v)
{
    switch (v->o.type) {
        case MSGPACK_OBJECT_ARRAY: return v->o.via.array.size;
        case MSGPACK_OBJECT_MAP: return v->o.via.map.size;
        case MSGPACK_OBJECT_STR: return v->o.via.str.size;
        case MSGPACK_OBJECT_BIN: return v->o.via.bin.size;
        default: return 0;
    }
}

const qv_val_t *
qv_val_at (const qv_val_t *v, size_t i)
{
    return (const qv_val_t *) &v->o.via.array.ptr [i];
}

const qv_val_t *
qv_val_key (const qv_val_t *v, size_t i)
{
    return (const qv_val_t *) &v->o.via.map.ptr [i].key;
}

const qv_val_t *
qv_val_value (const qv_val_t *v, size_t i)
{
    return (const qv_val_t *) &v->o.via.map.ptr [i].val;
}

bool
qv_val_is (const qv_val_t *v, const char *s)
{
    size_t n = strlen (s);
    return v->o.type == MSGPACK_OBJECT_STR && v->o.via.str.size == n
        && memcmp (v->o.via.str.ptr, s, n) == 0;
}

const qv_val_t *
qv_val_get (const qv_val_t *map, const char *key)
{
    if (!map || map->o.type != MSGPACK_OBJECT_MAP)
        return NULL;
    for (uint32_t i = 0; i < map->o.via.map.size; i++)
        if (qv_val_is ((const qv_val_t *) &map->o.via.map.ptr [i].key, key))
            return (const qv_val_t *) &map->o.via.map.ptr [i].val;
    return NULL;
}

int
qv_val_bool (const qv_val_t *v, bool *out)
{
    if (v->o.type != MSGPACK_OBJECT_BOOLEAN)
        return QV_EPROTO;
    *out = v->o.via.boolean;
    return 0;
}

int
qv_val_int (const qv_val_t *v, int64_t *out)
{
    if (v->o.type == MSGPACK_OBJECT_NEGATIVE_INTEGER) {
        *out = v->o.via.i64;
        return 0;
    }
    if (v->o.type == MSGPACK_OBJECT_POSITIVE_INTEGER && v->o.via.u64 <= INT64_MAX) {
        *out = (int64_t) v->o.via.u64;
        return 0;
    }
    return QV_EPROTO;
}

int
qv_val_uint (const qv_val_t *v, uint64_t *out)
{
    if (v->o.type != MSGPACK_OBJECT_POSITIVE_INTEGER)
        return QV_EPROTO;
    *out = v->o.via.u64;
    return 0;
}

int
qv_val_double (const qv_val_t *v, double *out)
{
    switch (v->o.type) {
        case MSGPACK_OBJECT_FLOAT32:
        case MSGPACK_OBJECT_FLOAT64: *out = v->o.via.f64; return 0;
        case MSGPACK_OBJECT_POSITIVE_INTEGER: *out = (double) v->o.via.u64; return 0;
        case MSGPACK_OBJECT_NEGATIVE_INTEGER: *out = (double) v->o.via.i64; return 0;
        default: return QV_EPROTO;
    }
}

int
qv_val_str (const qv_val_t *v, const char **ptr, size_t *len)
{
    if (v->o.type != MSGPACK_OBJECT_STR)
        return QV_EPROTO;
    *ptr = v->o.via.str.ptr;
    *len = v->o.via.str.size;
    return 0;
}

int
qv_val_bin (const qv_val_t *v, const void **ptr, size_t *len)
{
    if (v->o.type != MSGPACK_OBJECT_BIN)
        return QV_EPROTO;
    *ptr = v->o.via.bin.ptr;
    *len = v->o.via.bin.size;
    return 0;
}

int
qv_val_strcpy (const qv_val_t *v, char *out, size_t outsize)
{
    if (v->o.type != MSGPACK_OBJECT_STR)
        return QV_EPROTO;
    if (v->o.via.str.size >= outsize)
        return QV_EINVAL;
    memcpy (out, v->o.via.str.ptr, v->o.via.str.size);
    out [v->o.via.str.size] = 0;
    return 0;
}

#define QV_WR_DEPTH 32              //  maps open at once in the builder

struct _qv_wr_t {
    msgpack_sbuffer sbuf;
    msgpack_packer pk;
    //  Counted maps (qv_wr_map_open) still open: where each header byte is, and how
    //  many entries each has so far; innermost last.
    size_t open_at [QV_WR_DEPTH];
    size_t open_count [QV_WR_DEPTH];
    int depth;
};

qv_wr_t *
qv_wr_new (void)
{
    qv_wr_t *w = calloc (1, sizeof *w);
    if (!w)
        return NULL;
    msgpack_sbuffer_init (&w->sbuf);
    msgpack_packer_init (&w->pk, &w->sbuf, msgpack_sbuffer_write);
    return w;
}

void
qv_wr_destroy (qv_wr_t **self_p)
{
    if (*self_p) {
        msgpack_sbuffer_destroy (&(*self_p)->sbuf);
        free (*self_p);
        *self_p = NULL;
    }
}

void qv_wr_map (qv_wr_t *w, size_t n)     { msgpack_pack_map (&w->pk, n); }
void qv_wr_array (qv_wr_t *w, size_t n)   { msgpack_pack_array (&w->pk, n); }
void qv_wr_nil (qv_wr_t *w)               { msgpack_pack_nil (&w->pk); }
void qv_wr_bool (qv_wr_t *w, bool b)      { b ? msgpack_pack_true (&w->pk) : msgpack_pack_false (&w->pk); }
void qv_wr_int (qv_wr_t *w, int64_t i)    { msgpack_pack_int64 (&w->pk, i); }
void qv_wr_uint (qv_wr_t *w, uint64_t u)  { msgpack_pack_uint64 (&w->pk, u); }
void qv_wr_float (qv_wr_t *w, float f)    { msgpack_pack_float (&w->pk, f); }
void qv_wr_double (qv_wr_t *w, double d)  { msgpack_pack_double (&w->pk, d); }
void qv_wr_str (qv_wr_t *w, const char *s) { qv_wr_strn (w, s, strlen (s)); }

void
qv_wr_strn (qv_wr_t *w, const char *s, size_t n)
{
    msgpack_pack_str (&w->pk, n);
    msgpack_pack_str_body (&w->pk, s, n);
}

void
qv_wr_bin (qv_wr_t *w, const void *p, size_t n)
{
    msgpack_pack_bin (&w->pk, n);
    msgpack_pack_bin_body (&w->pk, p, n);
}

void
qv_wr_val (qv_wr_t *w, const qv_val_t *v)
{
    msgpack_pack_object (&w->pk, v->o);
}

void
qv_wr_raw (qv_wr_t *w, const void *p, size_t n)
{
    msgpack_sbuffer_write (&w->sbuf, p, n);
}

const void *
qv_wr_data (qv_wr_t *w, size_t *size)
{
    *size = w->sbuf.size;
    return w->sbuf.data;
}

void *
qv_wr_detach (qv_wr_t *w, size_t *size)
{
    assert (w->depth == 0);         //  every qv_wr_map_open has its close
    *size = w->sbuf.size;
    void *data = msgpack_sbuffer_release (&w->sbuf);
    return data;
}

int
qv_wr_reserve (qv_wr_t *w, size_t n)
{
    if (w->sbuf.alloc - w->sbuf.size >= n)
        return 0;
    if (n > SIZE_MAX - w->sbuf.size)
        return -1;
    char *data = realloc (w->sbuf.data, w->sbuf.size + n);
    if (!data)
        return -1;
    w->sbuf.data = data;
    w->sbuf.alloc = w->sbuf.size + n;
    return 0;
}

void
qv_wr_reset (qv_wr_t *w)
{
    msgpack_sbuffer_clear (&w->sbuf);
    w->depth = 0;
}

//  The map builder. A counted map starts as a one-byte fixmap header; at close the
//  count is patched in, and only a map of more than 15 entries moves its body to make
//  room for a map16/map32 header, so the small maps of hot replies cost no copy.
void
qv_wr_map_open (qv_wr_t *w)
{
    assert (w->depth < QV_WR_DEPTH);
    w->open_at [w->depth] = w->sbuf.size;
    w->open_count [w->depth] = 0;
    w->depth++;
    uint8_t placeholder = 0x80;
    msgpack_sbuffer_write (&w->sbuf, (const char *) &placeholder, 1);
}

void
qv_wr_map_add (qv_wr_t *w, size_t n)
{
    assert (w->depth > 0);
    w->open_count [w->depth - 1] += n;
}

void
qv_wr_key (qv_wr_t *w, const char *key)
{
    qv_wr_map_add (w, 1);
    qv_wr_str (w, key);
}

void
qv_wr_map_close (qv_wr_t *w)
{
    assert (w->depth > 0);
    w->depth--;
    size_t at = w->open_at [w->depth], n = w->open_count [w->depth];
    if (n <= 15) {
        ((uint8_t *) w->sbuf.data) [at] = (uint8_t) (0x80 | n);
        return;
    }
    size_t extra = n <= 0xffff ? 2 : 4;
    size_t body = w->sbuf.size - at - 1;
    static const char zeros [4] = { 0 };
    msgpack_sbuffer_write (&w->sbuf, zeros, extra);     //  grows the buffer
    uint8_t *p = (uint8_t *) w->sbuf.data + at;
    memmove (p + 1 + extra, p + 1, body);
    if (extra == 2) {
        p [0] = 0xde;
        p [1] = (uint8_t) (n >> 8);
        p [2] = (uint8_t) n;
    }
    else {
        p [0] = 0xdf;
        for (int i = 0; i < 4; i++)
            p [1 + i] = (uint8_t) (n >> (24 - 8 * i));
    }
}

void *
qv_val_encode (const qv_val_t *v, size_t *size)
{
    qv_wr_t *w = qv_wr_new ();
    if (!w)
        return NULL;
    qv_wr_val (w, v);
    void *data = qv_wr_detach (w, size);
    qv_wr_destroy (&w);
    return data;
}

//  Length of the valid UTF-8 sequence at s[0..n), or 0 if it is not one.
static size_t
s_utf8_seq (const unsigned char *s, size_t n)
{
    unsigned char c = s [0];
    if (c < 0x80)
        return 1;
    size_t len;
    uint32_t cp;
    if (c >= 0xc2 && c <= 0xdf) { len = 2; cp = c & 0x1f; }
    else
    if (c >= 0xe0 && c <= 0xef) { len = 3; cp = c & 0x0f; }
    else
    if (c >= 0xf0 && c <= 0xf4) { len = 4; cp = c & 0x07; }
    else
        return 0;
    if (n < len)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s [i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (s [i] & 0x3f);
    }
    if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10ffff))
    ||  (cp >= 0xd800 && cp <= 0xdfff))
        return 0;                   //  overlong, beyond Unicode, or a surrogate
    return len;
}

bool
qv_utf8_valid (const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *) s;
    size_t i = 0;
    while (i < n) {
        if (p [i] < 0x80) {
            i++;
            continue;
        }
        size_t len = s_utf8_seq (p + i, n - i);
        if (!len)
            return false;
        i += len;
    }
    return true;
}

void
qv_utf8_escape (const char *s, size_t n, char *out, size_t outsize)
{
    const unsigned char *p = (const unsigned char *) s;
    size_t at = 0, i = 0;
    if (outsize == 0)
        return;
    while (i < n) {
        size_t len = s_utf8_seq (p + i, n - i);
        bool escape = len == 0 || p [i] < 0x20 || p [i] == 0x7f;
        size_t need = escape ? 4 : len;
        if (at + need + 4 > outsize) {  //  room for "..." and the NUL
            snprintf (out + at, outsize - at, "...");
            return;
        }
        if (escape) {
            snprintf (out + at, outsize - at, "\\x%02x", p [i]);
            at += 4;
            i++;
        }
        else {
            memcpy (out + at, p + i, len);
            at += len;
            i += len;
        }
    }
    out [at] = 0;
}

//  Orders map keys for the duplicate check: by type, then by value (containers and
//  ext by address: such keys never compare equal, which only the protocol's own
//  string keys need).
static int
s_key_cmp (const void *a_, const void *b_)
{
    const msgpack_object *a = *(const msgpack_object * const *) a_;
    const msgpack_object *b = *(const msgpack_object * const *) b_;
    if (a->type != b->type)
        return a->type < b->type ? -1 : 1;
    switch (a->type) {
        case MSGPACK_OBJECT_STR:
        case MSGPACK_OBJECT_BIN: {
            uint32_t na = a->via.str.size, nb = b->via.str.size;
            //  An empty str's ptr may be NULL: no memcmp on it
            int c = na && nb ? memcmp (a->via.str.ptr, b->via.str.ptr, na < nb ? na : nb) : 0;
            return c ? c : na < nb ? -1 : na > nb;
        }
        case MSGPACK_OBJECT_POSITIVE_INTEGER:
            return a->via.u64 < b->via.u64 ? -1 : a->via.u64 > b->via.u64;
        case MSGPACK_OBJECT_NEGATIVE_INTEGER:
            return a->via.i64 < b->via.i64 ? -1 : a->via.i64 > b->via.i64;
        case MSGPACK_OBJECT_BOOLEAN:
            return (int) a->via.boolean - (int) b->via.boolean;
        case MSGPACK_OBJECT_FLOAT32:
        case MSGPACK_OBJECT_FLOAT64:
            return memcmp (&a->via.f64, &b->via.f64, sizeof (double));
        case MSGPACK_OBJECT_NIL:
            return 0;
        default:
            return a < b ? -1 : a > b;
    }
}

//  The duplicate key of a map (or NULL): pairwise for small maps, else sorted.
static const msgpack_object *
s_dup_key (const msgpack_object_map *m)
{
    uint32_t n = m->size;
    if (n <= 16) {
        for (uint32_t i = 1; i < n; i++)
            for (uint32_t j = 0; j < i; j++)
                if (s_key_cmp (&(const msgpack_object *) { &m->ptr [i].key },
                               &(const msgpack_object *) { &m->ptr [j].key }) == 0)
                    return &m->ptr [i].key;
        return NULL;
    }
    const msgpack_object **keys = malloc (n * sizeof *keys);
    if (!keys)
        return NULL;
    for (uint32_t i = 0; i < n; i++)
        keys [i] = &m->ptr [i].key;
    qsort (keys, n, sizeof *keys, s_key_cmp);
    const msgpack_object *dup = NULL;
    for (uint32_t i = 1; i < n && !dup; i++)
        if (s_key_cmp (&keys [i - 1], &keys [i]) == 0)
            dup = keys [i];
    free (keys);
    return dup;
}

static int
s_check_strict (const msgpack_object *o)
{
    switch (o->type) {
        case MSGPACK_OBJECT_STR:
            if (!qv_utf8_valid (o->via.str.ptr, o->via.str.size)) {
                char shown [96];
                qv_utf8_escape (o->via.str.ptr, o->via.str.size, shown, sizeof shown);
                return qv_err (QV_EPROTO, "string '%s' is not valid UTF-8", shown);
            }
            return 0;
        case MSGPACK_OBJECT_ARRAY:
            for (uint32_t i = 0; i < o->via.array.size; i++) {
                int rc = s_check_strict (&o->via.array.ptr [i]);
                if (rc)
                    return rc;
            }
            return 0;
        case MSGPACK_OBJECT_MAP: {
            for (uint32_t i = 0; i < o->via.map.size; i++) {
                int rc = s_check_strict (&o->via.map.ptr [i].key);
                if (!rc)
                    rc = s_check_strict (&o->via.map.ptr [i].val);
                if (rc)
                    return rc;
            }
            const msgpack_object *dup = s_dup_key (&o->via.map);
            if (dup && dup->type == MSGPACK_OBJECT_STR) {
                char shown [96];
                qv_utf8_escape (dup->via.str.ptr, dup->via.str.size, shown, sizeof shown);
                return qv_err (QV_EPROTO, "a map has the key '%s' twice", shown);
            }
            if (dup)
                return qv_err (QV_EPROTO, "a map has the same %s key twice",
                               qv_vtype_name (qv_val_type ((const qv_val_t *) dup)));
            return 0;
        }
        default:
            return 0;
    }
}

int
qv_val_check_strict (const qv_val_t *v)
{
    return s_check_strict (&v->o);
}
