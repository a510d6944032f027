//  qvfilter: filter-expression benchmark: parse + column-wise evaluation over a batch
//  of synthetic rows, next to a hand-written C loop for the headline filter.
//
//  qvfilter [--rows 1000000] [--runs 7] [--scalar]
//
//  Columns: x int64 uniform in [0, 10), tag varchar one of "a".."j", score double in
//  [0, 1), meta json {"k": int in [0, 10), "s": "a".."j"}. Prints the median of --runs
//  runs per filter, in ms and ns per row, and the rows matched.
//
//  --scalar instead times filters over one segment of --rows rows with and without
//  scalar indexes (qv_expr_eval vs qv_expr_eval_indexed forced to use them) at
//  selectivities 0.01% .. 50%: int equality, int range, varchar in, and a range with a
//  second, unindexed condition. The ratio is the figure to read (the machine is
//  shared); it is what QV_EXPR_INDEX_SHARE was chosen from.
#include "qv_expr.h"
#include "qv_rc.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int
s_cmp_i64 (const void *a, const void *b)
{
    int64_t x = *(const int64_t *) a, y = *(const int64_t *) b;
    return x < y ? -1 : x > y;
}

static int64_t
s_median (int64_t *v, int n)
{
    qsort (v, (size_t) n, sizeof *v, s_cmp_i64);
    return v [n / 2];
}

//  A schema of four fields and an empty batch of rows rows for it (NULL: no memory)
static qv_batch_t *
s_batch_new (qv_schema_t *schema, const char **names, const qv_type_t *types, uint32_t rows)
{
    memset (schema, 0, sizeof *schema);
    for (int f = 0; f < 4; f++) {
        strcpy (schema->fields [f].name, names [f]);
        schema->fields [f].type = types [f];
        schema->fields [f].max_length = 16;
    }
    schema->nfields = 4;
    qv_batch_t *b = qv_batch_new (schema, rows);
    if (b)
        b->n = rows;
    return b;
}

//  Median time of runs evaluations of text, plain or with the indexes; 0 or -1
static int
s_time (const qv_schema_t *schema, qv_batch_t *b, uint32_t rows, int runs, const char *text,
        qv_scalar_t *const *scalars, int64_t *t, int64_t *med, uint64_t *matched)
{
    int rc;
    qv_expr_t *e = qv_expr_parse (schema, text, strlen (text), &rc);
    if (!e) {
        fprintf (stderr, "qvfilter: %.60s: %s\n", text, qv_err_msg ());
        return -1;
    }
    for (int k = 0; k < runs; k++) {
        roaring_bitmap_t *out = roaring_bitmap_create ();
        int64_t t0 = qv_clock_usec ();
        rc = scalars ? qv_expr_eval_indexed (e, b, 0, rows, scalars, 1.0, out)
                     : qv_expr_eval (e, b, rows, out);
        t [k] = qv_clock_usec () - t0;
        *matched = roaring_bitmap_get_cardinality (out);
        roaring_bitmap_free (out);
        if (rc < 0 || (scalars && rc != 1)) {
            fprintf (stderr, "qvfilter: %.60s: %s\n", text, rc < 0 ? qv_err_msg () : "index not used");
            qv_expr_destroy (&e);
            return -1;
        }
    }
    *med = s_median (t, runs);
    qv_expr_destroy (&e);
    return 0;
}

//  Columns: e int64 whose value v in 1..6 has the share of rows of the 6 selectivities
//  (0 elsewhere), u int64 uniform in [0, 1000000), w varchar one of 10000 values, score
//  double in [0, 1).
static int
s_scalar_table (uint32_t rows, int runs)
{
    static const double sel [] = { 0.0001, 0.001, 0.01, 0.1, 0.25, 0.5 };
    qv_schema_t schema;
    const char *names [] = { "e", "u", "w", "score" };
    qv_type_t types [] = { QV_INT64, QV_INT64, QV_VARCHAR, QV_DOUBLE };
    qv_batch_t *b = s_batch_new (&schema, names, types, rows);
    if (!b)
        return 1;
    uint64_t seed = 88172645463325252ull;
    for (uint32_t r = 0; r < rows; r++) {
        seed ^= seed << 13; seed ^= seed >> 7; seed ^= seed << 17;
        double x = (double) (seed >> 11) / 9007199254740992.0, acc = 0;
        int64_t v = 0;
        for (int k = 0; k < 6 && !v; k++)
            if (x < (acc += sel [k]))
                v = k + 1;
        ((int64_t *) b->cols [0].data) [r] = v;
        ((int64_t *) b->cols [1].data) [r] = (int64_t) ((seed >> 20) % 1000000);
        char tmp [16];
        int n = snprintf (tmp, sizeof tmp, "v%05u", (unsigned) ((seed >> 40) % 10000));
        b->cols [2].var [r].ptr = (uint8_t *) strdup (tmp);
        b->cols [2].var [r].len = (uint32_t) n;
        seed ^= seed << 13; seed ^= seed >> 7; seed ^= seed << 17;
        ((double *) b->cols [3].data) [r] = (double) (seed >> 11) / 9007199254740992.0;
    }
    qv_scalar_t *scalars [QV_FIELDS_MAX] = { 0 };
    int64_t t0 = qv_clock_usec ();
    for (int f = 0; f < 3; f++)
        scalars [f] = qv_scalar_new (types [f], &b->cols [f], rows);
    int64_t build_us = qv_clock_usec () - t0;
    printf ("segment of %u rows, median of %d runs; indexes on e, u, w built in %.1f ms (%zu bytes/row each)\n",
            rows, runs, build_us / 1e3, qv_scalar_memory_bytes (scalars [0]) / rows);
    printf ("%-26s %8s %10s %10s %10s %8s\n", "filter", "select", "matched", "scan ms", "index ms", "speedup");
    int64_t *t = malloc ((size_t) runs * sizeof *t);
    size_t cap = 10000 * 12 + 64;
    char *text = malloc (cap);
    int rc = 0;
    for (int kind = 0; kind < 4 && rc == 0; kind++)
        for (int k = 0; k < 6 && rc == 0; k++) {
            static const char *labels [] = { "e == v", "u < n", "w in [..]", "u < n and score < 0.5" };
            uint32_t bound = (uint32_t) (sel [k] * 1000000);
            if (kind == 0)
                snprintf (text, cap, "e == %d", k + 1);
            else
            if (kind == 1 || kind == 3)
                snprintf (text, cap, "u < %u%s", bound, kind == 3 ? " and score < 0.5" : "");
            else {
                size_t o = (size_t) snprintf (text, cap, "w in [");
                uint32_t nv = (uint32_t) lround (sel [k] * 10000);
                for (uint32_t v = 0; v < nv; v++)
                    o += (size_t) snprintf (text + o, cap - o, "%s\"v%05u\"", v ? "," : "", v * 7 % 10000);
                snprintf (text + o, cap - o, "]");
            }
            int64_t scan, index;
            uint64_t m1, m2;
            rc = s_time (&schema, b, rows, runs, text, NULL, t, &scan, &m1)
              || s_time (&schema, b, rows, runs, text, scalars, t, &index, &m2);
            if (rc == 0 && m1 != m2) {
                fprintf (stderr, "qvfilter: %s: scan matched %llu, index %llu\n", labels [kind],
                         (unsigned long long) m1, (unsigned long long) m2);
                rc = -1;
            }
            if (rc == 0)
                printf ("%-26s %7.2f%% %10llu %10.3f %10.3f %7.2fx\n", labels [kind], sel [k] * 100,
                        (unsigned long long) m1, scan / 1e3, index / 1e3,
                        (double) scan / (double) (index ? index : 1));
        }
    free (text);
    free (t);
    for (int f = 0; f < 3; f++)
        qv_scalar_destroy (&scalars [f]);
    qv_batch_destroy (&b);
    return rc ? 1 : 0;
}

int
main (int argc, char **argv)
{
    uint32_t rows = 1000000;
    int runs = 7;
    bool scalar = false;
    for (int i = 1; i < argc; i += 2) {
        if (strcmp (argv [i], "--scalar") == 0) {
            scalar = true;
            i--;
        }
        else if (i + 1 >= argc) {
            fprintf (stderr, "usage: qvfilter [--rows N] [--runs R] [--scalar]\n");
            return 1;
        }
        else if (strcmp (argv [i], "--rows") == 0) rows = (uint32_t) strtoul (argv [i + 1], NULL, 10);
        else if (strcmp (argv [i], "--runs") == 0) runs = atoi (argv [i + 1]);
        else {
            fprintf (stderr, "usage: qvfilter [--rows N] [--runs R] [--scalar]\n");
            return 1;
        }
    }
    if (runs < 1 || runs > 101 || rows == 0) {
        fprintf (stderr, "qvfilter: --runs 1..101, --rows > 0\n");
        return 1;
    }
    if (scalar)
        return s_scalar_table (rows, runs);
    qv_schema_t schema;
    const char *names [] = { "x", "tag", "score", "meta" };
    qv_type_t types [] = { QV_INT64, QV_VARCHAR, QV_DOUBLE, QV_JSON };
    qv_batch_t *b = s_batch_new (&schema, names, types, rows);
    if (!b) {
        fprintf (stderr, "qvfilter: out of memory\n");
        return 1;
    }
    uint64_t seed = 88172645463325252ull;
    qv_wr_t *w = qv_wr_new ();
    for (uint32_t r = 0; r < rows; r++) {
        seed ^= seed << 13; seed ^= seed >> 7; seed ^= seed << 17;
        ((int64_t *) b->cols [0].data) [r] = (int64_t) (seed % 10);
        char tag = (char) ('a' + (seed >> 8) % 10);
        b->cols [1].var [r].ptr = malloc (1);
        b->cols [1].var [r].ptr [0] = (uint8_t) tag;
        b->cols [1].var [r].len = 1;
        ((double *) b->cols [2].data) [r] = (double) (seed >> 11) / 9007199254740992.0;
        qv_wr_map (w, 2);
        qv_wr_str (w, "k");
        qv_wr_int (w, (int64_t) ((seed >> 20) % 10));
        qv_wr_str (w, "s");
        qv_wr_strn (w, &tag, 1);
        size_t size;
        b->cols [3].var [r].ptr = qv_wr_detach (w, &size);
        b->cols [3].var [r].len = (uint32_t) size;
    }
    qv_wr_destroy (&w);

    static const char *filters [] = {
        "x > 5 and tag == \"a\"",
        "x > 5",
        "tag == \"a\"",
        "x > 5 and tag == \"a\" and score < 0.5",
        "tag in [\"a\", \"c\", \"e\"] or x % 7 == 3",
        "x * 2 + 1 > 9 and score >= 0.25",
        "tag like \"a%\"",
        "meta[\"k\"] > 5 and meta[\"s\"] == \"a\"",
    };
    int64_t *t = malloc ((size_t) runs * sizeof *t);
    printf ("rows %u, median of %d runs\n", rows, runs);
    printf ("%-44s %10s %8s %10s\n", "filter", "ms", "ns/row", "matched");
    //  The hand-written loop the headline filter is measured against
    for (int k = 0; k < runs; k++) {
        roaring_bitmap_t *out = roaring_bitmap_create ();
        int64_t t0 = qv_clock_usec ();
        const int64_t *x = (const int64_t *) b->cols [0].data;
        const qv_bytes_t *tag = b->cols [1].var;
        uint32_t buf [1024], n = 0;
        for (uint32_t r = 0; r < rows; r++) {
            buf [n] = r;
            n += x [r] > 5 && tag [r].len == 1 && tag [r].ptr [0] == 'a';
            if (n == 1024) {
                roaring_bitmap_add_many (out, n, buf);
                n = 0;
            }
        }
        roaring_bitmap_add_many (out, n, buf);
        t [k] = qv_clock_usec () - t0;
        if (k == runs - 1) {
            int64_t med = s_median (t, runs);
            printf ("%-44s %10.2f %8.2f %10llu\n", "(hand-written C loop: x > 5 && tag == a)",
                    med / 1e3, med * 1e3 / rows,
                    (unsigned long long) roaring_bitmap_get_cardinality (out));
        }
        roaring_bitmap_free (out);
    }
    for (size_t f = 0; f < sizeof filters / sizeof filters [0]; f++) {
        int rc;
        int64_t p0 = qv_clock_usec ();
        qv_expr_t *e = qv_expr_parse (&schema, filters [f], strlen (filters [f]), &rc);
        int64_t parse_us = qv_clock_usec () - p0;
        if (!e) {
            fprintf (stderr, "qvfilter: %s: %s\n", filters [f], qv_err_msg ());
            return 1;
        }
        uint64_t matched = 0;
        for (int k = 0; k < runs; k++) {
            roaring_bitmap_t *out = roaring_bitmap_create ();
            int64_t t0 = qv_clock_usec ();
            rc = qv_expr_eval (e, b, rows, out);
            t [k] = qv_clock_usec () - t0;
            if (rc) {
                fprintf (stderr, "qvfilter: eval: %s\n", qv_err_msg ());
                return 1;
            }
            matched = roaring_bitmap_get_cardinality (out);
            roaring_bitmap_free (out);
        }
        int64_t med = s_median (t, runs);
        printf ("%-44s %10.2f %8.2f %10llu   (parse %lld us)\n", filters [f], med / 1e3,
                med * 1e3 / rows, (unsigned long long) matched, (long long) parse_us);
        qv_expr_destroy (&e);
    }
    //  Only the rows of an input bitmap (every 10th row)
    {
        roaring_bitmap_t *in = roaring_bitmap_create ();
        for (uint32_t r = 0; r < rows; r += 10)
            roaring_bitmap_add (in, r);
        int rc;
        const char *text = filters [0];
        qv_expr_t *e = qv_expr_parse (&schema, text, strlen (text), &rc);
        uint64_t matched = 0;
        for (int k = 0; k < runs; k++) {
            roaring_bitmap_t *out = roaring_bitmap_create ();
            int64_t t0 = qv_clock_usec ();
            qv_expr_eval_rows (e, b, 0, rows, in, out);
            t [k] = qv_clock_usec () - t0;
            matched = roaring_bitmap_get_cardinality (out);
            roaring_bitmap_free (out);
        }
        int64_t med = s_median (t, runs);
        printf ("%-44s %10.2f %8.2f %10llu\n", "same, over an input bitmap of every 10th row",
                med / 1e3, med * 1e3 / rows, (unsigned long long) matched);
        qv_expr_destroy (&e);
        roaring_bitmap_free (in);
    }
    free (t);
    qv_batch_destroy (&b);
    return 0;
}
