//  The envelope every stored object is written in: magic, kind, format version,
//  payload length and CRC32C in one fixed little-endian header.
//
//  Byte layout (all integers little-endian, header 32 bytes, payload follows):
//
//    offset  size  field
//    0       4     magic "QVOB"
//    4       2     kind, u16 (qv_envelope_kind_t: 1 WAL, 2 SEGMENT, 3 MANIFEST,
//                  4 VINDEX, 5 SINDEX, 6 CACHE, 7 BACKUP, 8 BACKUP_ROWS,
//                  9 BACKUP_STATE)
//    6       2     format version of the payload, u16 (each kind counts its own)
//    8       8     payload length in bytes, u64
//    16      4     flags, u32, 0 (a reader refuses any other value)
//    20      4     reserved, u32, 0 (likewise)
//    24      4     CRC32C (qv_crc32c) of the payload
//    28      4     CRC32C of header bytes [0, 28)
//    32      ...   payload
//
//  The header has its own CRC, which covers the kind, version, length and payload
//  CRC: a damaged header is reported as a damaged header (never read as a wrong
//  kind, a new version or a truncation), and with the header intact, a length that
//  does not match the object is a truncation (or trailing bytes) and a payload CRC
//  that does not match is a damaged payload. The payload starts 32 bytes in, so an
//  8-byte aligned buffer keeps 8-byte alignment for the payload.
//
//  Objects written before the envelope (Quiver <= 06906df) start with their own
//  magic ("QVWAL", "QVSEG", "QVMAN", "QVINDEX", "QVSCALR"); none starts with "QVOB",
//  so a reader tells the two apart by qv_envelope_is ().
#ifndef QV_ENVELOPE_H_INCLUDED
#define QV_ENVELOPE_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define QV_ENVELOPE_MAGIC       "QVOB"
#define QV_ENVELOPE_HEADER_SIZE 32

//  The kinds of stored object. Numbers are on disk: never reuse or renumber one.
typedef enum {
    QV_ENVELOPE_WAL = 1,            //  one WAL group commit, wal/<shard>/<seq>
    QV_ENVELOPE_SEGMENT = 2,        //  a flushed segment, segments/<coll>/<seg>
    QV_ENVELOPE_MANIFEST = 3,       //  a manifest version, meta/manifest/<version>
    QV_ENVELOPE_VINDEX = 4,         //  a vector index of one segment field
    QV_ENVELOPE_SINDEX = 5,         //  a scalar index of one segment field
    QV_ENVELOPE_CACHE = 6,          //  a local cache file holding a copy of an object
    QV_ENVELOPE_BACKUP = 7,         //  a backup's manifest (actors/qv_backup.h)
    QV_ENVELOPE_BACKUP_ROWS = 8,    //  a file of a backup's rows
    QV_ENVELOPE_BACKUP_STATE = 9,   //  a backup's state, kept by the server that ran it
    QV_ENVELOPE_KIND_MAX = 9
} qv_envelope_kind_t;

//  What qv_envelope_open found.
typedef struct {
    qv_envelope_kind_t kind;
    uint32_t version;               //  the payload's format version
    const uint8_t *payload;         //  points into the caller's buffer
    size_t size;                    //  payload length
} qv_envelope_t;

//  A kind's name for messages ("WAL object", "segment object", ...); "object of
//  unknown kind" for a number outside the enum.
const char *
    qv_envelope_kind_name (uint32_t kind);

//  True if data starts with the envelope magic (it may still be damaged): readers
//  that also accept a kind's older format use this to choose the decoder.
bool
    qv_envelope_is (const void *data, size_t size);

//  Fills the QV_ENVELOPE_HEADER_SIZE bytes at buf with the header of the payload
//  that follows them (buf + QV_ENVELOPE_HEADER_SIZE, size - QV_ENVELOPE_HEADER_SIZE
//  bytes). A writer reserves the header's room first, appends its payload, then
//  seals: the object is written once, never copied. size must be at least the
//  header size and version at most 65535 (programming errors: asserted).
void
    qv_envelope_seal (void *buf, size_t size, qv_envelope_kind_t kind, uint32_t version);

//  Writes the QV_ENVELOPE_HEADER_SIZE-byte header of a payload of `length` bytes
//  whose CRC32C is payload_crc into out, for a writer that does not hold the payload
//  in one buffer (it computes the CRC with qv_crc32c_update as it goes). Same
//  preconditions as qv_envelope_seal.
void
    qv_envelope_header (void *out, qv_envelope_kind_t kind, uint32_t version,
                        uint64_t length, uint32_t payload_crc);

//  Checks data as an object of kind `kind` whose payload format this build reads up
//  to max_version, and sets *env to its payload (a view into data). name names the
//  object in errors (a store key or path; NULL when the caller names it). Returns 0, or
//  records an error that names the object and its kind and returns:
//    QV_ECORRUPT  truncated (shorter than a header, or than the length it states),
//                 bad magic, damaged header, unknown flags, wrong kind, trailing
//                 bytes, payload checksum mismatch
//                 or version 0
//    QV_EINVAL    a version newer than max_version (written by a newer release:
//                 upgrade to read it)
//  Never reads outside [data, data + size). Thread-safe.
int
    qv_envelope_open (const char *name, const void *data, size_t size,
                      qv_envelope_kind_t kind, uint32_t max_version, qv_envelope_t *env);

#endif
