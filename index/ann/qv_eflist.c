//  Elias-Fano coded id lists (qv_eflist.h).
#include "qv_eflist.h"
#include "qv_le.h"

#include <string.h>

//  The low part's width for n ids below universe: floor (log2 (universe / n)), 0
//  when there are no more ids than the universe holds over two.
static unsigned
s_low_bits (uint32_t n, uint32_t universe)
{
    unsigned l = 0;
    while (n && l < 31 && ((uint64_t) n << (l + 1)) <= universe)
        l++;
    return l;
}

//  Bits of a list's body: n low parts and the unary high parts.
static uint64_t
s_body_bits (uint32_t n, uint32_t universe, unsigned l)
{
    if (!n)
        return 0;
    uint32_t top = universe? (universe - 1) >> l: 0;
    return (uint64_t) n * l + n + top;
}

static size_t
s_varint_size (uint32_t v)
{
    size_t bytes = 1;
    while (v >= 0x80) {
        v >>= 7;
        bytes++;
    }
    return bytes;
}

//  Sets width (< 32) bits of value at bit from of b (zeroed before).
static void
s_put_bits (uint8_t *b, uint64_t from, uint32_t value, unsigned width)
{
    while (width) {
        unsigned shift = (unsigned) (from & 7), take = 8 - shift;
        if (take > width)
            take = width;
        b [from >> 3] |= (uint8_t) ((value & ((1u << take) - 1)) << shift);
        value >>= take;
        from += take;
        width -= take;
    }
}

//  The width (< 32) bits at bit from of b, which holds bytes bytes.
static uint32_t
s_get_bits (const uint8_t *b, size_t bytes, uint64_t from, unsigned width)
{
    if ((from >> 3) + 8 <= bytes) {
        //  One little-endian load holds them (width + 7 <= 38 bits)
        uint64_t word = qv_le_get64 (b + (from >> 3));
        return (uint32_t) (word >> (from & 7)) & (uint32_t) ((1ull << width) - 1);
    }
    uint32_t value = 0;
    unsigned got = 0;
    while (got < width) {
        unsigned shift = (unsigned) (from & 7), take = 8 - shift;
        if (take > width - got)
            take = width - got;
        value |= (uint32_t) ((b [from >> 3] >> shift) & ((1u << take) - 1)) << got;
        from += take;
        got += take;
    }
    return value;
}

size_t
qv_eflist_size (uint32_t n, uint32_t universe)
{
    unsigned l = s_low_bits (n, universe);
    return s_varint_size (n) + (size_t) ((s_body_bits (n, universe, l) + 7) / 8);
}

size_t
qv_eflist_put (uint8_t *out, const uint32_t *ids, uint32_t n, uint32_t universe)
{
    size_t at = 0;
    uint32_t v = n;
    while (v >= 0x80) {
        out [at++] = (uint8_t) (v | 0x80);
        v >>= 7;
    }
    out [at++] = (uint8_t) v;
    unsigned l = s_low_bits (n, universe);
    size_t body = (size_t) ((s_body_bits (n, universe, l) + 7) / 8);
    uint8_t *b = out + at;
    memset (b, 0, body);
    uint64_t low_bits = (uint64_t) n * l;
    for (uint32_t i = 0; i < n; i++) {
        s_put_bits (b, (uint64_t) i * l, ids [i], l);
        uint64_t pos = low_bits + (ids [i] >> l) + i;
        b [pos >> 3] |= (uint8_t) (1u << (pos & 7));
    }
    return at + body;
}

size_t
qv_eflist_get (const uint8_t *in, size_t avail, uint32_t universe, uint32_t max,
               uint32_t *ids, uint32_t *n_p)
{
    //  The count: at most five bytes, and no more than max
    uint64_t n = 0;
    size_t at = 0;
    for (unsigned shift = 0; ; shift += 7) {
        if (at >= avail || shift > 28)
            return 0;
        uint8_t byte = in [at++];
        n |= (uint64_t) (byte & 0x7F) << shift;
        if (!(byte & 0x80))
            break;
    }
    if (n > max || (n && !universe))
        return 0;
    unsigned l = s_low_bits ((uint32_t) n, universe);
    uint64_t bits = s_body_bits ((uint32_t) n, universe, l);
    size_t body = (size_t) ((bits + 7) / 8);
    if (body > avail - at)
        return 0;
    const uint8_t *b = in + at;
    //  The high parts: exactly n bits set in the unary section, none past it (the
    //  last byte's padding). Byte by byte, each set bit found by its index
    uint64_t low_bits = n * l, set = 0;
    for (uint64_t byte = low_bits >> 3; byte < body; byte++) {
        unsigned word = b [byte];
        if (byte == low_bits >> 3)
            word &= ~((1u << (low_bits & 7)) - 1) & 0xFF;
        while (word) {
            uint64_t pos = byte * 8 + (unsigned) __builtin_ctz (word);
            word &= word - 1;
            if (pos >= bits || set == n)
                return 0;
            if (ids) {
                uint64_t id = (pos - low_bits - set) << l | s_get_bits (b, body, set * l, l);
                if (id >= universe)
                    return 0;
                ids [set] = (uint32_t) id;
            }
            set++;
        }
    }
    if (set != n)
        return 0;
    *n_p = (uint32_t) n;
    return at + body;
}
