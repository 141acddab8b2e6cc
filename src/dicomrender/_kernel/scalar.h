/* The parameters of one kernel call and the portable per-pixel arithmetic.
 *
 * Everything here is plain C that any compiler builds; the loops of every target
 * (loops.h) are made of these helpers.  The arithmetic must equal the float64 reference
 * bit for bit: the build sets -ffp-contract=off so no multiply-add is fused behind our
 * back, and nothing here is reassociated (-fno-trapping-math only lets the compiler turn
 * selects into vector blends; IEEE results are unchanged).
 *
 * Callers (the Cython wrapper) validate sizes and masks before calling; the loops only
 * ever index a table with (word >> shift) & mask, mask < table size.
 */
#ifndef DICOMRENDER_SCALAR_H
#define DICOMRENDER_SCALAR_H

#include <float.h>
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "constants.h"

/* Forced inlining: the loops are specialised by literal arguments (word size, mode, channels).
 * DR_NOINLINE keeps a hot loop in a function of its own, where its code does not depend on
 * whatever it would be inlined into. */
#if defined(__GNUC__) || defined(__clang__)
#define DR_INLINE static inline __attribute__((always_inline))
#define DR_NOINLINE static __attribute__((noinline))
#else
#define DR_INLINE static inline
#define DR_NOINLINE static
#endif

/* One window of the fused float64 path: modality rescale, VOI function, inversion. */
typedef struct {
    double slope, intercept;
    double center, width;
    int function;
    int invert;
} dr_window;

/* The proven float32 affine path (see the engine's proof): for a stored value s,
 *     d = (float)(s - pivot)                   (exact: |s - pivot| < 2**17)
 *     y = d * a + b                            (float32: two roundings, or one when fused)
 *     out = clip(trunc(y), 0, 255)
 * The host evaluates both forms of y exactly as the kernel does on every stored value of
 * the domain and compares them with the exact table before choosing the path, so the
 * result equals the reference bit for bit whichever form a loop uses: the portable loops
 * multiply then add, the SIMD loops fuse (one instruction instead of two, a fifth of the
 * work of three windows).  The SIMD loops get d by an exact float subtraction instead of
 * a conversion. */
typedef struct {
    float a, b;
    int32_t pivot;
} dr_affine;

/* The affine path is only exact-by-check when float arithmetic is plain IEEE single precision. */
#if defined(FLT_EVAL_METHOD) && FLT_EVAL_METHOD == 0
#define DR_HAVE_AFFINE 1
#else
#define DR_HAVE_AFFINE 0
#endif

/* A table that only changes inside a short run of stored values (a narrow window such as brain
 * 40/80 on CT, or any transform of 8-bit data): below `low` it holds table[0], above low + range
 * table[range], range < 256.  Values are "lane values": the stored value, plus 32768 when signed
 * (what the SIMD extraction yields), so the order is the order of the stored values.  With AVX-512
 * VBMI the lookup is a byte permute of 64 pixels at once; the host builds it from the exact table,
 * so it is exact by construction. */
typedef struct {
    uint8_t table[256];
    uint16_t low, range;
} dr_narrow;

/* Value types of the fused float64 loop. */
enum { DR_VALUES_U8, DR_VALUES_U16, DR_VALUES_U32, DR_VALUES_F32, DR_VALUES_F64 };

/* One kernel call: the input, the output and the parameters of whichever loop runs.  The
 * threads split [0, n) into chunks; each runs a dr_loop on its own [start, start + count), and the
 * bytes of a chunk do not depend on which thread runs it. */
typedef struct {
    const void *src;
    int itemsize;                 /* bytes per input word */
    uint8_t *out;                 /* k bytes per pixel */
    int k;                        /* output channels (windows), 1..DR_MAX_WINDOWS */
    int shift, bits, is_signed;   /* where the stored bits are in each word */
    const uint8_t *tables;        /* gather: k tables of table_size entries, indexed by (word >> shift) & mask */
    size_t table_size;
    uint32_t mask;
    const dr_window *windows;     /* fused float64: k windows */
    const dr_affine *affine;      /* affine: k parameter sets */
    const dr_narrow *narrow;      /* narrow table */
    int stream;                   /* the whole output is large enough for streaming stores */
} dr_call;

/* Outputs of at least this many bytes (the whole call's) bypass the caches with streaming stores:
 * they cannot stay cached anyway, and the cache-line reads before each write are saved.  Decided
 * per call, not per chunk, so every thread of a call writes the same way. */
#define DR_STREAM_BYTES ((size_t)24 << 20)

typedef void dr_loop(const dr_call *call, size_t start, size_t count);

/* The input words and the output bytes of pixel `start` of a call. */
static inline const void *dr_src(const dr_call *c, size_t start) { return (const uint8_t *)c->src + (size_t)c->itemsize * start; }
static inline uint8_t *dr_out(const dr_call *c, size_t start) { return c->out + (size_t)c->k * start; }

/* ---- per-pixel arithmetic ------------------------------------------------ */

/* snap: 0 for SIGMOID, whose exact value is never an integer (see _reference.to_uint8). */
static inline uint8_t dr_to_uint8(double y, int invert, int snap)
{
    if (invert) y = 255.0 - y;
    y = floor(snap ? y + DR_SNAP : y);
    if (!(y >= 0.0)) return 0; /* negative or NaN */
    if (y > 255.0) return 255;
    return (uint8_t)y;
}

static inline double dr_voi(double x, const dr_window *w)
{
    double c = w->center, width = w->width;
    switch (w->function) {
    case DR_LINEAR: {
        double c05 = c - 0.5, half = (width - 1) / 2;
        if (x <= c05 - half) return 0.0;
        if (x > c05 + half) return 255.0;
        return ((x - c05) / (width - 1) + 0.5) * 255.0;
    }
    case DR_LINEAR_EXACT:
        if (x <= c - width / 2) return 0.0;
        if (x > c + width / 2) return 255.0;
        return ((x - c) / width + 0.5) * 255.0;
    default:
        return 255.0 / (1.0 + exp(-4.0 * (x - c) / width));
    }
}

static inline uint8_t dr_pixel(double s, const dr_window *w)
{
    double x = s * w->slope + w->intercept;
    return dr_to_uint8(dr_voi(x, w), w->invert, w->function != DR_SIGMOID);
}

/* LINEAR and LINEAR_EXACT as one clamped ramp, written without branches so the
 * compiler vectorises it; same operations in the same order as dr_voi. */
typedef struct {
    double slope, intercept, origin, denominator, low, high;
} dr_ramp;

static inline dr_ramp dr_make_ramp(const dr_window *w)
{
    dr_ramp r;
    r.slope = w->slope;
    r.intercept = w->intercept;
    if (w->function == DR_LINEAR) {
        double half = (w->width - 1) / 2;
        r.origin = w->center - 0.5;
        r.denominator = w->width - 1;
        r.low = r.origin - half;
        r.high = r.origin + half;
    } else {
        r.origin = w->center;
        r.denominator = w->width;
        r.low = w->center - w->width / 2;
        r.high = w->center + w->width / 2;
    }
    return r;
}

static inline uint8_t dr_ramp_px(double s, const dr_ramp *r, const int invert)
{
    double x = s * r->slope + r->intercept;
    double y = ((x - r->origin) / r->denominator + 0.5) * 255.0;
    y = x <= r->low ? 0.0 : y;
    y = x > r->high ? 255.0 : y;
    if (invert) y = 255.0 - y;
    y = floor(y + DR_SNAP);
    y = y >= 0.0 ? y : 0.0; /* negative or NaN */
    y = y > 255.0 ? 255.0 : y;
    return (uint8_t)(int32_t)y;
}

/* Word i of an array of 1-, 2- or 4-byte words (itemsize is a literal wherever this is inlined). */
DR_INLINE uint32_t dr_word(const void *src, const int itemsize, size_t i)
{
    if (itemsize == 1) return ((const uint8_t *)src)[i];
    if (itemsize == 2) return ((const uint16_t *)src)[i];
    return ((const uint32_t *)src)[i];
}

/* Value i of the fused float64 loop's input: a float as it is, or the stored value of an integer
 * word without branches (mask, then sign-extend by xor and subtract).  Words of at most 16 bits
 * are extracted in 32-bit arithmetic, which vectorises everywhere. */
DR_INLINE double dr_value(const void *src, const int values, size_t i, int shift, uint64_t mask, int64_t sign)
{
    switch (values) {
    case DR_VALUES_F32: return (double)((const float *)src)[i];
    case DR_VALUES_F64: return ((const double *)src)[i];
    case DR_VALUES_U32:
        return (double)(((int64_t)(((uint64_t)((const uint32_t *)src)[i] >> shift) & mask) ^ sign) - sign);
    default: {
        uint32_t word = dr_word(src, values == DR_VALUES_U8 ? 1 : 2, i);
        return (double)(((int32_t)((word >> shift) & (uint32_t)mask) ^ (int32_t)sign) - (int32_t)sign);
    }
    }
}

/* Stored value of a word of at most 16 bits. */
static inline int32_t dr_stored16(uint32_t word, int shift, int bits, int is_signed)
{
    int32_t v = (int32_t)((word >> shift) & ((1u << bits) - 1));
    if (is_signed && (v >> (bits - 1))) v -= (int32_t)1 << bits;
    return v;
}

/* One pixel of the affine path (|y| < 2**30 is guaranteed by the host, so the cast is defined). */
static inline uint8_t dr_affine_px(int32_t stored, const dr_affine *w)
{
    float y = (float)(stored - w->pivot) * w->a;
    y = y + w->b;
    int32_t r = (int32_t)y;
    r = r < 0 ? 0 : r;
    return (uint8_t)(r > 255 ? 255 : r);
}

static inline uint8_t dr_narrow_px(uint32_t word, const dr_narrow *t, int shift, int bits, int is_signed)
{
    int32_t lane = dr_stored16(word, shift, bits, is_signed) + (is_signed ? 32768 : 0);
    int32_t index = lane - (int32_t)t->low;
    index = index < 0 ? 0 : index;
    return t->table[index > t->range ? t->range : index];
}

/* ---- portable loops over a range of pixels -------------------------------- */

/* Pixels [from, to) of the affine path, one at a time (vector-loop heads and tails). */
static inline void dr_affine_range(const void *src, int itemsize, size_t from, size_t to, const dr_affine *w, int k,
                                   uint8_t *out, int shift, int bits, int is_signed)
{
    for (size_t i = from; i < to; i++) {
        uint32_t word = itemsize == 2 ? ((const uint16_t *)src)[i] : ((const uint8_t *)src)[i];
        int32_t v = dr_stored16(word, shift, bits, is_signed);
        for (int j = 0; j < k; j++) out[(size_t)k * i + j] = dr_affine_px(v, &w[j]);
    }
}

/* Pixels [from, to) of the narrow-table path, one at a time. */
static void dr_narrow_range(const void *src, int itemsize, size_t from, size_t to, const dr_narrow *t,
                            uint8_t *out, int shift, int bits, int is_signed)
{
    for (size_t i = from; i < to; i++)
        out[i] = dr_narrow_px(itemsize == 2 ? ((const uint16_t *)src)[i] : ((const uint8_t *)src)[i], t, shift,
                              bits, is_signed);
}

/* One-table gather over 16-bit words.  Scalar loads beat AVX2/AVX-512 gathers on the CPUs
 * measured (vpgatherdd from a table widened to 32 bits ran at 2.5 Gpx/s, this at 3.2 on one
 * AMD Zen 4 core); reading four words per load and storing eight results at once saves a
 * quarter of the instructions of the plain loop.  Scalar code, so one copy serves every target;
 * inlined into the targets' gather loops it ran 4 to 8 % slower on large volumes. */
DR_NOINLINE void dr_gather1_words16(const uint16_t *restrict src, size_t n, const uint8_t *restrict table,
                                      uint8_t *restrict out, int shift, uint32_t mask)
{
    size_t i = 0;
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    const uint64_t m = mask & (0xFFFFu >> shift); /* never a bit of the neighbouring word */
    for (; i + 8 <= n; i += 8) {
        uint64_t w0, w1;
        memcpy(&w0, src + i, 8);
        memcpy(&w1, src + i + 4, 8);
        uint64_t r = (uint64_t)table[(w0 >> shift) & m] | (uint64_t)table[(w0 >> (16 + shift)) & m] << 8 |
                     (uint64_t)table[(w0 >> (32 + shift)) & m] << 16 |
                     (uint64_t)table[((w0 >> 48) >> shift) & m] << 24 | (uint64_t)table[(w1 >> shift) & m] << 32 |
                     (uint64_t)table[(w1 >> (16 + shift)) & m] << 40 |
                     (uint64_t)table[(w1 >> (32 + shift)) & m] << 48 | (uint64_t)table[((w1 >> 48) >> shift) & m] << 56;
        memcpy(out + i, &r, 8);
    }
#endif
    for (; i < n; i++) out[i] = table[((uint32_t)src[i] >> shift) & mask];
}

#endif
