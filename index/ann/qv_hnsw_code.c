//  The coded form of a packed HNSW index's link lists in its object: each list
//  Elias-Fano coded (qv_eflist.h) over the node ids. A 700k-node graph at M 16 has
//  about 21 level-0 links a node; packed u32 lists took 88 bytes a node, coded they
//  take about 46, which is what keeps an HNSW collection's objects near its raw rows
//  (issue 12: the store after compaction within 10% of the live data). Loading
//  decodes them into the packed lists the walks read (qv_hnsw_pack.c): the coded
//  form exists only in the object.
//
//  Layout (qv_hnsw_store.c writes it after the node levels, in place of the level-0
//  section, for an index whose payload says record bytes S_RECORD_CODED):
//      u64 bytes of the level-0 lists (little-endian)
//      count level-0 lists, node by node
//      the upper lists: for each node with levels, in id order, levels 1 up
//  Ids are sorted in each list (qv_hnsw_sort_links).
#include "qv_hnsw_impl.h"
#include "qv_eflist.h"
#include "qv_hugemem.h"

#include <string.h>

//  Codes the n links at ll (sorted into scratch) at out; returns its bytes.
static size_t
s_put (uint8_t *out, const uint32_t *ll, uint32_t *scratch, uint32_t count)
{
    uint32_t n = ll [0];
    memcpy (scratch, ll + 1, (size_t) n * sizeof (uint32_t));
    qv_hnsw_sort_links (scratch, n);
    return qv_eflist_put (out, scratch, n, count);
}

int
qv_hnsw_code_write (const s_hnsw_t *h, uint32_t count, zchunk_t *chunk)
{
    uint64_t l0_bytes = 0, up_bytes = 0;
    for (uint32_t i = 0; i < count; i++) {
        l0_bytes += qv_eflist_size (s_links (h, i, 0) [0], count);
        for (int l = 1; l <= h->levels [i]; l++)
            up_bytes += qv_eflist_size (s_links (h, i, l) [0], count);
    }
    uint8_t *buf = malloc ((size_t) (8 + l0_bytes + up_bytes));
    uint32_t *scratch = malloc ((size_t) (h->M0 + 1) * sizeof (uint32_t));
    if (!buf || !scratch) {
        free (buf);
        free (scratch);
        return qv_err (QV_ENOMEM, "out of memory writing HNSW link lists");
    }
    qv_le_put64 (buf, l0_bytes);
    size_t at = 8;
    for (uint32_t i = 0; i < count; i++)
        at += s_put (buf + at, s_links (h, i, 0), scratch, count);
    for (uint32_t i = 0; i < count; i++)
        for (int l = 1; l <= h->levels [i]; l++)
            at += s_put (buf + at, s_links (h, i, l), scratch, count);
    zchunk_extend (chunk, buf, at);
    free (buf);
    free (scratch);
    return 0;
}

//  Decodes the count level-0 lists of bytes at p into packed lists.
static int
s_load_l0 (s_hnsw_t *h, uint32_t count, const uint8_t *p, size_t bytes)
{
    //  Their words first (a count and its links each), so that the lists are one
    //  block of the size they take
    uint64_t words = 0;
    size_t at = 0;
    for (uint32_t i = 0; i < count; i++) {
        uint32_t n;
        size_t len = qv_eflist_get (p + at, bytes - at, count, h->M0, NULL, &n);
        if (!len)
            return qv_err (QV_ECORRUPT, "HNSW coded level-0 list of node %u is not sound", i);
        at += len;
        words += 1 + (uint64_t) n;
    }
    if (at != bytes)
        return qv_err (QV_ECORRUPT, "HNSW coded level-0 lists end %zu bytes before their section",
                       bytes - at);
    if (words > UINT32_MAX)
        return qv_err (QV_ECORRUPT, "HNSW coded level-0 lists hold %llu words",
                       (unsigned long long) words);
    uint32_t *l0 = qv_hugemem_alloc ((size_t) (words? words: 1) * sizeof (uint32_t));
    uint32_t *off = malloc ((size_t) (count? count: 1) * sizeof (uint32_t));
    if (!l0 || !off) {
        free (l0);
        free (off);
        return qv_err (QV_ENOMEM, "out of memory loading HNSW link lists");
    }
    size_t w = 0;
    at = 0;
    for (uint32_t i = 0; i < count; i++) {
        uint32_t n;
        off [i] = (uint32_t) w;
        size_t len = qv_eflist_get (p + at, bytes - at, count, h->M0, l0 + w + 1, &n);
        if (!len) {
            free (l0);
            free (off);
            return qv_err (QV_ECORRUPT, "HNSW coded level-0 list of node %u is not sound", i);
        }
        l0 [w] = n;
        w += 1 + (size_t) n;
        at += len;
    }
    qv_hnsw_pack_install (h, l0, off, (size_t) words, count);
    return 0;
}

//  Decodes the upper lists (bytes at p) into one block of upper_u32 words, each
//  level's list in its 1 + M slot as the table keeps them.
static int
s_load_upper (s_hnsw_t *h, uint32_t count, const uint8_t *p, size_t bytes, uint64_t upper_u32)
{
    if (!upper_u32)
        return bytes? qv_err (QV_ECORRUPT, "HNSW coded upper lists where no node has levels"): 0;
    //  Each list takes a byte at least: a hostile count of levels asks no more
    //  memory than its object's size allows
    if (upper_u32 / (1 + h->M) > bytes)
        return qv_err (QV_ECORRUPT, "HNSW coded upper lists truncated");
    uint32_t *block = calloc ((size_t) upper_u32, sizeof (uint32_t));
    if (!block)
        return qv_err (QV_ENOMEM, "out of memory loading HNSW upper levels");
    uint32_t *slot = block;
    size_t at = 0, left = (size_t) upper_u32;
    for (uint32_t i = 0; i < count; i++)
        for (int l = 1; l <= h->levels [i]; l++) {
            uint32_t n;
            size_t len = left >= 1 + (size_t) h->M
                       ? qv_eflist_get (p + at, bytes - at, count, h->M, slot + 1, &n): 0;
            if (!len) {
                free (block);
                return qv_err (QV_ECORRUPT, "HNSW coded level-%d list of node %u is not sound", l, i);
            }
            slot [0] = n;
            slot += 1 + h->M;
            left -= 1 + (size_t) h->M;
            at += len;
        }
    if (at != bytes || left) {
        free (block);
        return qv_err (QV_ECORRUPT, "HNSW coded upper lists do not fill their section");
    }
    h->up.block = block;
    h->up.block_u32 = (size_t) upper_u32;
    atomic_fetch_add (&h->upper_bytes, (size_t) upper_u32 * sizeof (uint32_t));
    return 0;
}

int
qv_hnsw_code_load (s_hnsw_t *h, uint32_t count, const uint8_t *p, size_t size,
                   uint64_t upper_u32)
{
    if (!(h->borrowed && !h->sq8 && h->link_off == 0))
        return qv_err (QV_ECORRUPT, "HNSW coded link lists in an index that keeps records");
    if (size < 8 || qv_le_get64 (p) > size - 8)
        return qv_err (QV_ECORRUPT, "HNSW coded link lists truncated");
    size_t l0_bytes = (size_t) qv_le_get64 (p);
    int rc = s_load_l0 (h, count, p + 8, l0_bytes);
    if (!rc)
        rc = s_load_upper (h, count, p + 8 + l0_bytes, size - 8 - l0_bytes, upper_u32);
    return rc;
}
