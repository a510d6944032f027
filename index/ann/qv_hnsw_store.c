//  HNSW and HNSW_SQ8 index objects: the payloads written and read (checked before
//  use: a corrupted or hostile object is refused, never trusted).
//
//  Payload layout (inside the qv_index frame; integers little-endian):
//      u32 M, u32 M0, u32 record bytes, u32 link offset, u32 entry (0xFFFFFFFF if
//      empty), u32 max level, u64 number of u32 in the upper-level section
//      u8 levels [count], zero padding to a multiple of 4
//      level-0 arena: count records of record bytes (the in-memory layout above)
//      upper levels: for each node with level L > 0, in id order, L x (1 + M) u32
//  An HNSW index on borrowed vectors (qv_index.h; frame version 3) whose lists are
//  packed (qv_hnsw_pack.c) writes them coded (qv_hnsw_code.c): record bytes
//  S_RECORD_CODED, link offset 0, and after the levels the coded level-0 and upper
//  lists, which fill the rest of the payload (the header's upper-level count is the
//  words they take once decoded). Objects written before that still load, packed on
//  loading: with record bytes 0, each node's [count, links] in place of the arena (the
//  section is what the payload's size leaves between the levels and the upper
//  levels); with record 4 (1 + M0), link offset 0, the records, links alone. Loaded onto borrowed
//  vectors, an object with the vectors (version 2) gives its records' links only.
#include "qv_hnsw_impl.h"

//  --------------------------------------------------------------------------
//  Serialization

#define S_HEAD 32
#define S_RECORD_PACKED 0           //  record bytes of packed u32 lists
#define S_RECORD_CODED 1            //  record bytes of coded lists

int
qv_hnsw_serialize (const qv_index_t *self, zchunk_t *chunk)
{
    const s_hnsw_t *h = self->impl;
    uint32_t count = self->count;
    uint64_t upper_u32 = 0;
    for (uint32_t i = 0; i < count; i++)
        upper_u32 += (uint64_t) h->levels [i] * (1 + h->M);
    uint8_t head [S_HEAD];
    qv_le_put32 (head, h->M);
    qv_le_put32 (head + 4, h->M0);
    //  QV_HNSW_CODE=0 in the environment writes packed lists as u32 (the form of
    //  objects before coding; for comparisons and to test that they load)
    const char *env = getenv ("QV_HNSW_CODE");
    int code = h->l0 && !(env && strcmp (env, "0") == 0);
    qv_le_put32 (head + 8, code? S_RECORD_CODED: h->l0? S_RECORD_PACKED: (uint32_t) h->record);
    qv_le_put32 (head + 12, (uint32_t) h->link_off);
    qv_le_put32 (head + 16, h->entry);
    qv_le_put32 (head + 20, (uint32_t) h->max_level);
    qv_le_put32 (head + 24, (uint32_t) upper_u32);
    qv_le_put32 (head + 28, (uint32_t) (upper_u32 >> 32));
    zchunk_extend (chunk, head, sizeof head);
    if (count)
        zchunk_extend (chunk, h->levels, count);
    static const uint8_t zeros [4] = { 0 };
    zchunk_extend (chunk, zeros, (4 - count % 4) % 4);
    if (code)
        return qv_hnsw_code_write (h, count, chunk);
    if (h->l0)
        zchunk_extend (chunk, h->l0, h->l0_u32 * sizeof (uint32_t));
    else
    if (count)
        zchunk_extend (chunk, h->arena, (size_t) count * h->record);
    for (uint32_t i = 0; i < count; i++)
        if (h->levels [i])
            zchunk_extend (chunk, s_upper (h, i), s_upper_list_bytes (h, h->levels [i]));
    return 0;
}

//  Whether a link list read from a file is sound: count <= max, every id a node at
//  this level or above.
static int
s_list_ok (const s_hnsw_t *h, const uint32_t *ll, uint32_t max, uint32_t count, int level)
{
    uint32_t n = ll [0];
    if (n > max)
        return 0;
    for (uint32_t j = 0; j < n; j++)
        if (ll [1 + j] >= count || h->levels [ll [1 + j]] < level)
            return 0;
    return 1;
}

int
qv_hnsw_load (qv_index_t *self, const uint8_t *payload, size_t size)
{
    s_hnsw_t *h = self->impl;
    uint32_t count = self->count;
    if (size < S_HEAD)
        return qv_err (QV_ECORRUPT, "HNSW payload truncated");
    uint32_t entry = qv_le_get32 (payload + 16);
    int max_level = (int) qv_le_get32 (payload + 20);
    uint64_t upper_u32 = (uint64_t) qv_le_get32 (payload + 24) | (uint64_t) qv_le_get32 (payload + 28) << 32;
    //  The records in the payload: the arena's, or with the vectors before the links
    //  when they hold what this index borrows
    size_t record = h->record, link_off = h->link_off;
    if (!s_vec_in_arena (h) && !self->no_vectors) {
        link_off = h->vbytes;
        record = (link_off + (1 + (size_t) h->M0) * sizeof (uint32_t) + 63) / 64 * 64;
    }
    //  Packed or coded lists: only an index on borrowed floats writes them
    int packed = h->borrowed && !h->sq8 && qv_le_get32 (payload + 8) == S_RECORD_PACKED;
    int coded = h->borrowed && !h->sq8 && qv_le_get32 (payload + 8) == S_RECORD_CODED;
    if (packed)
        record = S_RECORD_PACKED;
    if (coded)
        record = S_RECORD_CODED;
    if (qv_le_get32 (payload) != h->M || qv_le_get32 (payload + 4) != h->M0
    ||  qv_le_get32 (payload + 8) != record || qv_le_get32 (payload + 12) != link_off)
        return qv_err (QV_ECORRUPT, "HNSW payload layout does not match its parameters");
    if (count == 0? (entry != S_NONE || max_level != -1)
                  : (entry >= count || max_level < 0 || max_level > S_MAX_LEVEL))
        return qv_err (QV_ECORRUPT, "HNSW entry point %u / level %d invalid", entry, max_level);
    size_t levels_bytes = count + (4 - count % 4) % 4;
    //  A packed section fills what the levels and the upper levels leave (its lists
    //  are checked as they are read)
    uint64_t l0_bytes = (uint64_t) count * record;
    if (packed && upper_u32 <= size && S_HEAD + (uint64_t) levels_bytes + upper_u32 * 4 <= size)
        l0_bytes = (size - S_HEAD - levels_bytes - upper_u32 * 4) / 4 * 4;
    //  Coded lists fill the rest (their decoded words are checked as they are read)
    uint64_t want = S_HEAD + (uint64_t) levels_bytes + l0_bytes + upper_u32 * sizeof (uint32_t);
    if (coded)
        want = S_HEAD + (uint64_t) levels_bytes <= size? size: size + 1;
    if ((!coded && upper_u32 > size) || want != size)
        return qv_err (QV_ECORRUPT, "HNSW payload is %zu bytes, its header describes %llu",
                       size, (unsigned long long) want);
    self->count = 0;
    int rc = qv_hnsw_reserve (self, count? count: 1);
    if (rc)
        return rc;
    const uint8_t *levels = payload + S_HEAD;
    uint64_t upper_sum = 0;
    for (uint32_t i = 0; i < count; i++) {
        if (levels [i] > max_level)
            return qv_err (QV_ECORRUPT, "HNSW node %u level %u above the top %d", i, levels [i], max_level);
        upper_sum += (uint64_t) levels [i] * (1 + h->M);
    }
    if (upper_sum != upper_u32 || (count && levels [entry] != max_level))
        return qv_err (QV_ECORRUPT, "HNSW levels are inconsistent");
    for (size_t i = count; i < levels_bytes; i++)
        if (levels [i])             //  the padding is written as zeros
            return qv_err (QV_ECORRUPT, "HNSW level padding byte %zu is not zero", i - count);
    memcpy (h->levels, levels, count);
    //  The level-0 arena is one copy, or none: with the object's buffer handed over
    //  (qv_index_load_owned) and aligned as the arena must be, the arena is moved to
    //  the buffer's front and the buffer kept (the upper lists after it are not
    //  touched by the move, and are copied below)
    const uint8_t *arena = levels + levels_bytes;
    uint8_t *buf = self->adopt;
    if (coded) {
        rc = qv_hnsw_code_load (h, count, arena, size - S_HEAD - levels_bytes, upper_u32);
        if (rc)
            return rc;
    }
    else
    if (packed) {
        rc = qv_hnsw_load_packed (h, count, arena, (size_t) (l0_bytes / 4), buf);
        if (rc)
            return rc;
        self->adopt = NULL;         //  buf (if any) holds the lists now
    }
    else
    if (record != h->record) {
        //  Links out of records that hold the vectors too
        for (uint32_t i = 0; i < count; i++)
            memcpy (h->arena + (size_t) i * h->record, arena + (size_t) i * record + link_off,
                    h->record);
    }
    else
    if (buf && !h->sq8 && count && (uintptr_t) buf % 64 == 0
    &&  arena >= buf && arena + (size_t) count * h->record <= payload + size) {
        memmove (buf, arena, (size_t) count * h->record);
        free (h->arena);
        h->arena = buf;
        if (s_vec_in_arena (h))
            h->vbase = buf;
        self->adopt = NULL;
    }
    else
        memcpy (h->arena, arena, (size_t) count * h->record);
    if (h->borrowed)
        qv_hnsw_rebind (self);
    //  From here the node levels are read from the copy (the move may have
    //  overwritten the payload's)
    //  The upper lists in one block, as they are in the payload
    const uint8_t *up = arena + l0_bytes;
    if (upper_u32 && !coded) {
        h->up.block = malloc ((size_t) upper_u32 * sizeof (uint32_t));
        if (!h->up.block)
            return qv_err (QV_ENOMEM, "out of memory loading HNSW upper levels");
        h->up.block_u32 = (size_t) upper_u32;
        memcpy (h->up.block, up, (size_t) upper_u32 * sizeof (uint32_t));
        atomic_fetch_add (&h->upper_bytes, (size_t) upper_u32 * sizeof (uint32_t));
    }
    uint32_t *list = h->up.block;
    for (uint32_t i = 0; i < count; i++) {
        if (!h->levels [i])
            continue;
        if (qv_hnsw_upper_append (&h->up, i, list))
            return qv_err (QV_ENOMEM, "out of memory loading HNSW upper levels");
        list += s_upper_list_bytes (h, h->levels [i]) / sizeof (uint32_t);
    }
    for (uint32_t i = 0; i < count; i++) {
        if (!s_list_ok (h, s_links (h, i, 0), h->M0, count, 0))
            return qv_err (QV_ECORRUPT, "HNSW node %u has a bad level-0 link list", i);
        for (int l = 1; l <= h->levels [i]; l++)
            if (!s_list_ok (h, s_links (h, i, l), h->M, count, l))
                return qv_err (QV_ECORRUPT, "HNSW node %u has a bad level-%d link list", i, l);
    }
    if (packed && buf)
        qv_hnsw_pack_trim (h);      //  the upper lists are copied out of buf
    h->entry = entry;
    h->max_level = max_level;
    self->count = count;
    qv_hnsw_freeze (h, count);
    return 0;
}

//  --------------------------------------------------------------------------
//  HNSW_SQ8 payload: a prefix, the float vectors, then the HNSW payload above (whose
//  arena records hold codes):
//      u32 version (1 or 2), u32 cdim, f32 step, f32 vmin [dim], f32 vectors [count x dim]
//      version 2 only: u32 row [count], the row id of each node (a graph renumbered
//      for locality, qv_hnsw_order.c); version 1: node ids are row ids
//  On borrowed vectors (frame version 3) the float vectors are left out. The float
//  vectors are in row order either way. An index that is not renumbered writes
//  version 1, which older builds read.
#define S_SQ8_VERSION 2

int
qv_hnsw_sq8_serialize (const qv_index_t *self, zchunk_t *chunk)
{
    const s_hnsw_t *h = self->impl;
    uint8_t head [12];
    qv_le_put32 (head, h->label? 2: 1);
    qv_le_put32 (head + 4, h->cdim);
    uint32_t bits;
    memcpy (&bits, &h->step, 4);
    qv_le_put32 (head + 8, bits);
    zchunk_extend (chunk, head, sizeof head);
    zchunk_extend (chunk, h->vmin, (size_t) h->dim * sizeof (float));
    if (self->count && !h->borrowed)
        zchunk_extend (chunk, h->floats, (size_t) self->count * h->dim * sizeof (float));
    if (h->label)
        for (uint32_t i = 0; i < self->count; i++) {
            uint8_t row [4];
            qv_le_put32 (row, h->label [i]);
            zchunk_extend (chunk, row, sizeof row);
        }
    return qv_hnsw_serialize (self, chunk);
}

int
qv_hnsw_sq8_load (qv_index_t *self, const uint8_t *payload, size_t size)
{
    s_hnsw_t *h = self->impl;
    uint32_t count = self->count;
    size_t vbytes = (size_t) self->dim * sizeof (float);
    if (size < 12 + vbytes)
        return qv_err (QV_ECORRUPT, "HNSW_SQ8 payload truncated");
    uint32_t version = qv_le_get32 (payload);
    if (version != 1 && version != S_SQ8_VERSION)
        return qv_err (version > S_SQ8_VERSION? QV_EINVAL: QV_ECORRUPT,
                       "HNSW_SQ8 payload version %u, this build reads %u", version, S_SQ8_VERSION);
    uint32_t bits = qv_le_get32 (payload + 8);
    float step;
    memcpy (&step, &bits, 4);
    if (qv_le_get32 (payload + 4) != h->cdim || !isfinite (step) || !(step >= FLT_MIN))
        return qv_err (QV_ECORRUPT, "HNSW_SQ8 code layout (width %u, step %g) is invalid",
                       qv_le_get32 (payload + 4), step);
    memcpy (h->vmin, payload + 12, vbytes);
    for (uint32_t d = 0; d < self->dim; d++)
        if (!isfinite (h->vmin [d]))
            return qv_err (QV_ECORRUPT, "HNSW_SQ8 code range of dimension %u is not finite", d);
    h->step = step;
    uint64_t fbytes = self->no_vectors? 0: (uint64_t) count * vbytes;
    if (fbytes > size - 12 - vbytes)
        return qv_err (QV_ECORRUPT, "HNSW_SQ8 payload is %zu bytes, too short for %u vectors", size, count);
    uint64_t lbytes = version == 2? (uint64_t) count * sizeof (uint32_t): 0;
    if (lbytes > size - 12 - vbytes - fbytes)
        return qv_err (QV_ECORRUPT, "HNSW_SQ8 payload is %zu bytes, too short for %u row ids", size, count);
    const uint8_t *floats = payload + 12 + vbytes;
    const uint8_t *rows = floats + fbytes;
    int rc = qv_hnsw_load (self, rows + lbytes, size - 12 - vbytes - fbytes - lbytes);
    if (rc)
        return rc;
    if (!h->borrowed)
        memcpy (h->floats, floats, fbytes);
    free (h->label);
    h->label = NULL;
    if (version == 2) {
        //  A permutation of the rows: each once (kept when empty too, so that the
        //  index writes the version it was read in)
        h->label = malloc ((size_t) h->capacity * sizeof (uint32_t));
        uint8_t *seen = calloc (count? count: 1, 1);
        if (!h->label || !seen) {
            free (seen);
            return qv_err (QV_ENOMEM, "out of memory loading HNSW_SQ8 row ids");
        }
        for (uint32_t i = 0; i < count; i++) {
            uint32_t row = qv_le_get32 (rows + (size_t) i * 4);
            if (row >= count || seen [row]) {
                free (seen);
                return qv_err (QV_ECORRUPT, "HNSW_SQ8 row id %u of node %u is out of range "
                               "or repeated", row, i);
            }
            seen [row] = 1;
            h->label [i] = row;
        }
        free (seen);
    }
    for (uint32_t i = 0; i < count; i++)
        h->cbias [i] = qv_isq8_bias (h->arena + (size_t) i * h->record, h->cdim);
    return 0;
}
