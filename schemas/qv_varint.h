//  LEB128 varints and zigzag deltas: a sequence of 64-bit values that rises slowly
//  (insert timestamps, consecutive primary keys) in about one byte a value.
#ifndef QV_VARINT_H_INCLUDED
#define QV_VARINT_H_INCLUDED

#include <stddef.h>
#include <stdint.h>

#define QV_VARINT_MAX 10            //  most bytes of one varint (64 bits, 7 a byte)

//  Zigzag: a delta taken as two's complement (wrapping uint64 arithmetic) to an
//  unsigned value small when the delta is small either way (0, -1, 1, -2 -> 0, 1, 2,
//  3). Unsigned throughout: no signed overflow whatever the values.
static inline uint64_t
qv_zigzag (uint64_t delta)
{
    return (delta << 1) ^ (0 - (delta >> 63));
}

static inline uint64_t
qv_unzigzag (uint64_t z)
{
    return (z >> 1) ^ (0 - (z & 1));
}

//  Writes v as a LEB128 varint (7 bits a byte, low first, the high bit set on every
//  byte but the last) at out, which has QV_VARINT_MAX bytes of room. Returns the
//  bytes written (1..10).
size_t
    qv_varint_put (uint8_t *out, uint64_t v);

//  Reads one varint from the len bytes at p into *v. Returns the bytes read, or 0 if
//  the bytes end inside it (truncated), it runs past 10 bytes or 64 bits, or it is
//  not in its shortest form (a last byte of 0 after others): one encoding per value.
//  Never reads past p + len.
size_t
    qv_varint_get (const uint8_t *p, size_t len, uint64_t *v);

//  Writes the n values as the zigzag varints of their deltas, each from the one
//  before (the first from 0), into out, which has n * QV_VARINT_MAX bytes of room.
//  Returns the bytes written. int64 values are passed as their uint64 bits.
size_t
    qv_varint_put_deltas (uint8_t *out, const uint64_t *vals, size_t n);

//  Reads exactly n values written by qv_varint_put_deltas from the len bytes at p into
//  vals. Returns 0, or -1 if a varint is bad (qv_varint_get), there are fewer than n,
//  or bytes are left after the nth. The caller records the error, naming its object.
int
    qv_varint_get_deltas (const uint8_t *p, size_t len, uint64_t *vals, size_t n);

#endif
