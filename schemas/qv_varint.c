//  LEB128 varints and zigzag deltas (qv_varint.h).
#include "qv_varint.h"

size_t
qv_varint_put (uint8_t *out, uint64_t v)
{
    size_t n = 0;
    while (v >= 0x80) {
        out [n++] = (uint8_t) (v | 0x80);
        v >>= 7;
    }
    out [n++] = (uint8_t) v;
    return n;
}

size_t
qv_varint_get (const uint8_t *p, size_t len, uint64_t *v)
{
    uint64_t x = 0;
    for (size_t i = 0; i < len && i < QV_VARINT_MAX; i++) {
        uint64_t b = p [i];
        //  The tenth byte holds bit 63 only, and ends the varint
        if (i == QV_VARINT_MAX - 1 && b > 1)
            return 0;
        x |= (b & 0x7f) << (7 * i);
        if (!(b & 0x80)) {
            if (b == 0 && i > 0)
                return 0;           //  padded: not the shortest form
            *v = x;
            return i + 1;
        }
    }
    return 0;
}

size_t
qv_varint_put_deltas (uint8_t *out, const uint64_t *vals, size_t n)
{
    size_t at = 0;
    uint64_t prev = 0;
    for (size_t i = 0; i < n; i++) {
        at += qv_varint_put (out + at, qv_zigzag (vals [i] - prev));
        prev = vals [i];
    }
    return at;
}

int
qv_varint_get_deltas (const uint8_t *p, size_t len, uint64_t *vals, size_t n)
{
    size_t at = 0;
    uint64_t prev = 0;
    for (size_t i = 0; i < n; i++) {
        uint64_t z;
        size_t used = at < len ? qv_varint_get (p + at, len - at, &z) : 0;
        if (!used)
            return -1;
        at += used;
        prev += qv_unzigzag (z);
        vals [i] = prev;
    }
    return at == len ? 0 : -1;
}
