/* Exhaustive exactness harness for the kernel's C loops, without Python: cross-compiled for aarch64
 * and run under qemu-user by tests/test_neon.py (the NEON target), and built natively as a check of
 * the harness itself (the x86 targets).
 *
 * Input (argv[1], little-endian, written by tests/test_neon.py): cases of one stored format and 1..4
 * windows, each with the exact uint8 table of every window over the stored-bit patterns (computed on
 * the host by dicomrender._reference, in float64 with the snap rule of PIPELINE.md), the proven affine
 * parameters when the engine's proof holds (fused and unfused forms both checked there), the narrow
 * table when there is one, and the window parameters of the fused float64 loop.
 *
 * For every case the harness builds words holding every stored bit pattern of the format, clean and
 * with every bit outside the stored bits set (garbage above HighBit and below the shift), repeated,
 * plus an odd tail; the expected output is the table entry of each word's stored bits.  Then, on every
 * target this CPU runs and on 1 and 3 threads, it runs each applicable path (table gather, affine,
 * narrow, fused float64) and counts the bytes that differ.  Exit status 0 only when none does. */
#include "kernel.h"

#include <stdio.h>
#include <stdlib.h>

#define PATHS 4
static const char *const path_names[PATHS] = {"gather", "affine", "narrow", "arith"};

typedef struct {
    int32_t itemsize, shift, bits, is_signed, k, has_affine, has_narrow;
    dr_window windows[DR_MAX_WINDOWS];
    dr_affine affine[DR_MAX_WINDOWS];
    dr_narrow narrow;
    uint8_t *tables; /* k tables of 1 << bits entries */
} dr_case;

static int read_exact(FILE *f, void *p, size_t size)
{
    return fread(p, 1, size, f) == size;
}

static int read_case(FILE *f, dr_case *c)
{
    int32_t head[7];
    if (!read_exact(f, head, sizeof head)) return 0;
    c->itemsize = head[0], c->shift = head[1], c->bits = head[2], c->is_signed = head[3];
    c->k = head[4], c->has_affine = head[5], c->has_narrow = head[6];
    if (c->k < 1 || c->k > DR_MAX_WINDOWS || c->bits < 1 || c->bits > 16 || c->shift + c->bits > 8 * c->itemsize)
        return 0;
    for (int j = 0; j < c->k; j++) {
        double w[6];
        float ab[2];
        int32_t pivot;
        if (!read_exact(f, w, sizeof w) || !read_exact(f, ab, sizeof ab) || !read_exact(f, &pivot, sizeof pivot))
            return 0;
        c->windows[j] = (dr_window){.slope = w[0], .intercept = w[1], .center = w[2], .width = w[3],
                                    .function = (int)w[4], .invert = w[5] != 0};
        c->affine[j] = (dr_affine){.a = ab[0], .b = ab[1], .pivot = pivot};
    }
    uint16_t low_range[2];
    if (!read_exact(f, low_range, sizeof low_range) || !read_exact(f, c->narrow.table, 256)) return 0;
    c->narrow.low = low_range[0], c->narrow.range = low_range[1];
    size_t size = (size_t)c->k << c->bits;
    c->tables = malloc(size);
    return c->tables != NULL && read_exact(f, c->tables, size);
}

/* Every stored bit pattern, clean and with all other bits of the word set, repeated to at least
 * `length` words, plus 37 pseudo-random words. */
static void *make_words(const dr_case *c, size_t length, size_t *n)
{
    size_t patterns = (size_t)1 << c->bits;
    uint32_t word_mask = c->itemsize == 1 ? 0xFFu : 0xFFFFu;
    uint32_t garbage = word_mask & ~((uint32_t)(patterns - 1) << c->shift);
    size_t base = garbage ? 2 * patterns : patterns;
    size_t reps = (length + base - 1) / base;
    *n = reps * base + 37;
    void *words = malloc(*n * (size_t)c->itemsize);
    if (words == NULL) return NULL;
    uint32_t state = 12345u;
    for (size_t i = 0; i < *n; i++) {
        uint32_t word;
        if (i < reps * base) {
            size_t p = i % base;
            word = (uint32_t)(p % patterns) << c->shift | (p >= patterns ? garbage : 0);
        } else {
            state = state * 1103515245u + 12345u;
            word = (state >> 8) & word_mask;
        }
        if (c->itemsize == 1) ((uint8_t *)words)[i] = (uint8_t)word;
        else ((uint16_t *)words)[i] = (uint16_t)word;
    }
    return words;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s cases.bin\n", argv[0]);
        return 2;
    }
    FILE *f = fopen(argv[1], "rb");
    uint32_t ncases;
    if (f == NULL || !read_exact(f, &ncases, sizeof ncases)) {
        fprintf(stderr, "cannot read %s\n", argv[1]);
        return 2;
    }
    dr_init();
    dr_set_budget(3);
    unsigned long long checked[DR_N_TARGETS][PATHS] = {{0}}, wrong[DR_N_TARGETS][PATHS] = {{0}};
    unsigned long runs[DR_N_TARGETS][PATHS] = {{0}};
    int functions_seen[DR_N_FUNCTIONS] = {0};
    for (uint32_t ci = 0; ci < ncases; ci++) {
        dr_case c;
        if (!read_case(f, &c)) {
            fprintf(stderr, "case %u: truncated or invalid\n", ci);
            return 2;
        }
        for (int j = 0; j < c.k; j++) functions_seen[c.windows[j].function] = 1;
        size_t n;
        /* enough words that three threads each get several chunks of a small-chunk build */
        void *words = make_words(&c, (size_t)DR_CHUNK * DR_MIN_CHUNKS_PER_THREAD * 4, &n);
        uint8_t *expected = malloc(n * (size_t)c.k), *out = malloc(n * (size_t)c.k);
        if (words == NULL || expected == NULL || out == NULL) return 2;
        uint32_t mask = (uint32_t)((1u << c.bits) - 1);
        for (size_t i = 0; i < n; i++) {
            uint32_t word = c.itemsize == 1 ? ((uint8_t *)words)[i] : ((uint16_t *)words)[i];
            for (int j = 0; j < c.k; j++)
                expected[i * c.k + j] = c.tables[((size_t)j << c.bits) + ((word >> c.shift) & mask)];
        }
        for (int target = 0; target < DR_N_TARGETS; target++) {
            if (!dr_target_supported(target)) continue;
            for (int threads = 1; threads <= 3; threads += 2) {
                for (int path = 0; path < PATHS; path++) {
                    if ((path == 1 && !c.has_affine) || (path == 2 && (!c.has_narrow || c.k != 1))) continue;
                    memset(out, 0xA5, n * (size_t)c.k);
                    if (path == 0)
                        dr_gather(target, c.itemsize, words, n, c.tables, (size_t)1 << c.bits, c.k, out, c.shift, mask,
                                  threads);
                    else if (path == 1)
                        dr_affine_render(target, c.itemsize, words, n, c.affine, c.k, out, c.shift, c.bits,
                                         c.is_signed, threads);
                    else if (path == 2)
                        dr_narrow_render(target, c.itemsize, words, n, &c.narrow, out, c.shift, c.bits, c.is_signed,
                                         threads);
                    else
                        dr_arith(target, 'u', c.itemsize, words, n, c.windows, c.k, out, c.shift, c.bits, c.is_signed,
                                 threads);
                    unsigned long long bad = 0;
                    for (size_t i = 0; i < n * (size_t)c.k; i++) bad += out[i] != expected[i];
                    if (bad && wrong[target][path] == 0)
                        fprintf(stderr, "case %u (%d-bit words, %d stored bits from %d, %s, %d windows): %s %s on %d "
                                        "threads: %llu bytes differ\n",
                                ci, 8 * c.itemsize, c.bits, c.shift, c.is_signed ? "signed" : "unsigned", c.k,
                                dr_target_names[target], path_names[path], threads, bad);
                    wrong[target][path] += bad;
                    checked[target][path] += n * (size_t)c.k;
                    runs[target][path]++;
                }
            }
        }
        free(words), free(expected), free(out), free(c.tables);
    }
    fclose(f);
    unsigned long long total_wrong = 0;
    printf("cases %u; functions", ncases);
    for (int fn = 0; fn < DR_N_FUNCTIONS; fn++)
        if (functions_seen[fn]) printf(" %s", dr_function_names[fn]);
    printf("; helpers started %d, chunks they ran %llu\n", dr_helpers_started(), dr_chunks_helped());
    for (int target = 0; target < DR_N_TARGETS; target++) {
        if (!dr_target_supported(target)) continue;
        printf("target %s:", dr_target_names[target]);
        for (int path = 0; path < PATHS; path++) {
            printf(" %s %lu runs %llu bytes %llu wrong;", path_names[path], runs[target][path], checked[target][path],
                   wrong[target][path]);
            total_wrong += wrong[target][path];
        }
        printf("\n");
    }
    printf("best target %s; %s\n", dr_target_names[dr_best_target()], total_wrong ? "MISMATCH" : "all exact");
    return total_wrong ? 1 : 0;
}
