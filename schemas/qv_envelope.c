//  The stored-object envelope: writing and checking the header (layout in qv_envelope.h).
#include "qv_envelope.h"
#include "qv_crc.h"
#include "qv_le.h"
#include "qv_rc.h"

#include <assert.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#define S_MAGIC_SIZE    4
#define S_HEADER_CRC_AT 28

static const char *s_kind_names [] = {
    [QV_ENVELOPE_WAL] = "WAL object",
    [QV_ENVELOPE_SEGMENT] = "segment object",
    [QV_ENVELOPE_MANIFEST] = "manifest",
    [QV_ENVELOPE_VINDEX] = "vector index object",
    [QV_ENVELOPE_SINDEX] = "scalar index object",
    [QV_ENVELOPE_CACHE] = "cache file",
    [QV_ENVELOPE_BACKUP] = "backup manifest",
    [QV_ENVELOPE_BACKUP_ROWS] = "backup rows file",
    [QV_ENVELOPE_BACKUP_STATE] = "backup state",
};

const char *
qv_envelope_kind_name (uint32_t kind)
{
    if (kind == 0 || kind > QV_ENVELOPE_KIND_MAX)
        return "object of unknown kind";
    return s_kind_names [kind];
}

bool
qv_envelope_is (const void *data, size_t size)
{
    return data && size >= S_MAGIC_SIZE && memcmp (data, QV_ENVELOPE_MAGIC, S_MAGIC_SIZE) == 0;
}

void
qv_envelope_header (void *out, qv_envelope_kind_t kind, uint32_t version,
                    uint64_t length, uint32_t payload_crc)
{
    assert (out);
    assert (kind >= 1 && kind <= QV_ENVELOPE_KIND_MAX && version >= 1 && version <= UINT16_MAX);
    uint8_t *p = (uint8_t *) out;
    memcpy (p, QV_ENVELOPE_MAGIC, S_MAGIC_SIZE);
    p [4] = (uint8_t) kind;
    p [5] = (uint8_t) (kind >> 8);
    p [6] = (uint8_t) version;
    p [7] = (uint8_t) (version >> 8);
    qv_le_put64 (p + 8, length);
    qv_le_put32 (p + 16, 0);
    qv_le_put32 (p + 20, 0);
    qv_le_put32 (p + 24, payload_crc);
    qv_le_put32 (p + S_HEADER_CRC_AT, qv_crc32c (p, S_HEADER_CRC_AT));
}

void
qv_envelope_seal (void *buf, size_t size, qv_envelope_kind_t kind, uint32_t version)
{
    assert (buf && size >= QV_ENVELOPE_HEADER_SIZE);
    uint8_t *p = (uint8_t *) buf;
    size_t payload = size - QV_ENVELOPE_HEADER_SIZE;
    qv_envelope_header (p, kind, version, payload,
                        qv_crc32c (p + QV_ENVELOPE_HEADER_SIZE, payload));
}

int
qv_envelope_open (const char *name, const void *data, size_t size,
                  qv_envelope_kind_t kind, uint32_t max_version, qv_envelope_t *env)
{
    const uint8_t *p = (const uint8_t *) data;
    const char *what = qv_envelope_kind_name (kind);
    char who [600];                 //  "segment object segments/1/7": the subject of errors
    snprintf (who, sizeof who, "%s%s%s", what, name ? " " : "", name ? name : "");
    memset (env, 0, sizeof *env);
    if (!p || size < QV_ENVELOPE_HEADER_SIZE)
        return qv_err (QV_ECORRUPT, "%s is truncated: %zu bytes, shorter than the "
                       "%d-byte header", who, size, QV_ENVELOPE_HEADER_SIZE);
    if (memcmp (p, QV_ENVELOPE_MAGIC, S_MAGIC_SIZE) != 0)
        return qv_err (QV_ECORRUPT, "%s: bad magic, not a Quiver stored object", who);
    uint32_t stored = qv_le_get32 (p + S_HEADER_CRC_AT);
    uint32_t computed = qv_crc32c (p, S_HEADER_CRC_AT);
    if (stored != computed)
        return qv_err (QV_ECORRUPT, "%s: header checksum mismatch (stored %08" PRIx32
                       ", computed %08" PRIx32 "), the header is damaged", who,
                       stored, computed);
    uint32_t got_kind = (uint32_t) p [4] | (uint32_t) p [5] << 8;
    uint32_t version = (uint32_t) p [6] | (uint32_t) p [7] << 8;
    uint64_t length = qv_le_get64 (p + 8);
    if (qv_le_get32 (p + 16) != 0 || qv_le_get32 (p + 20) != 0)
        return qv_err (QV_ECORRUPT, "%s: unknown header flags %08" PRIx32 "/%08" PRIx32
                       " (written by a newer release?)", who,
                       qv_le_get32 (p + 16), qv_le_get32 (p + 20));
    if (got_kind != (uint32_t) kind)
        return qv_err (QV_ECORRUPT, "%s: wrong kind, it holds a %s (kind %" PRIu32
                       "), expected a %s (kind %d)", who,
                       qv_envelope_kind_name (got_kind), got_kind, what, (int) kind);
    if (version == 0)
        return qv_err (QV_ECORRUPT, "%s: format version 0 is not valid", who);
    if (version > max_version)
        return qv_err (QV_EINVAL, "%s: format version %" PRIu32 " is newer than this "
                       "release reads (at most %" PRIu32 "); upgrade Quiver to open it",
                       who, version, max_version);
    size_t have = size - QV_ENVELOPE_HEADER_SIZE;
    if (length > have)
        return qv_err (QV_ECORRUPT, "%s is truncated: its header states %" PRIu64
                       " payload bytes, only %zu are there", who, length, have);
    if (length < have)
        return qv_err (QV_ECORRUPT, "%s: %zu bytes after the %" PRIu64 "-byte payload "
                       "its header states", who, have - (size_t) length, length);
    stored = qv_le_get32 (p + 24);
    computed = qv_crc32c (p + QV_ENVELOPE_HEADER_SIZE, have);
    if (stored != computed)
        return qv_err (QV_ECORRUPT, "%s: payload checksum mismatch (stored %08" PRIx32
                       ", computed %08" PRIx32 "), the object is damaged", who,
                       stored, computed);
    env->kind = kind;
    env->version = version;
    env->payload = p + QV_ENVELOPE_HEADER_SIZE;
    env->size = have;
    return 0;
}
