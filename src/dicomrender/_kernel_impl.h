/* Inner loops of dicomrender's fused windowing kernel.
 *
 * Every loop is compiled once per instruction-set target (baseline, AVX2,
 * AVX-512, AVX-512 with VBMI on x86-64) and chosen at run time, so one binary
 * runs on any CPU and never needs -march=native; the affine loop, the RGB
 * interleave and the narrow-table lookup have explicit intrinsics, the others are auto-vectorised.  The arithmetic must
 * equal the float64 reference bit for bit: the build sets -ffp-contract=off so
 * no multiply-add is fused behind our back, and nothing here is reassociated
 * (-fno-trapping-math only lets the compiler turn selects into vector blends;
 * IEEE results are unchanged).  The one fused multiply-add is explicit: the SIMD
 * affine loops, whose parameters the host proves exact in both forms.
 *
 * Callers (the Cython wrapper) validate sizes and masks before calling; the
 * loops only ever index a table with (word >> shift) & mask, mask < table size.
 */
#ifndef DICOMRENDER_KERNEL_IMPL_H
#define DICOMRENDER_KERNEL_IMPL_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <float.h>
#ifdef _OPENMP
#include <omp.h>
#endif
/* x86-64 loops with explicit intrinsics, chosen at run time; DR_PORTABLE_ONLY builds only the
 * portable C loops (what aarch64 and other compilers get). */
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__)) && !defined(DR_PORTABLE_ONLY)
#define DR_HAVE_X86_TARGETS 1
#include <immintrin.h>
#else
#define DR_HAVE_X86_TARGETS 0
#endif

#define DR_LINEAR 0
#define DR_LINEAR_EXACT 1
#define DR_SIGMOID 2
#define DR_MAX_WINDOWS 4
#define DR_SNAP 1e-9

typedef struct {
    double slope, intercept;
    double center, width;
    int function;
    int invert;
} dr_window;

/* The proven float32 affine path (see windowing.py): for a stored value s,
 *     d = (float)(s - pivot)                   (exact: |s - pivot| < 2**17)
 *     y = d * a + b                            (float32: two roundings, or one when fused)
 *     out = clip(trunc(y), 0, 255)
 * The host evaluates both forms of y exactly as the kernel does on every stored
 * value of the domain and compares them with the exact table before choosing
 * the path, so the result equals the reference bit for bit whichever form a
 * loop uses: the portable loops multiply then add, the SIMD loops fuse (one
 * instruction instead of two, a fifth of the work of three windows).  The SIMD
 * loops get d by an exact float subtraction instead of a conversion. */
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

/* Pixels per parallel chunk.  Each thread gets at least DR_MIN_CHUNKS_PER_THREAD chunks
 * (128 K pixels, about ten microseconds of the fast loop): below that, waking a worker
 * costs more than it saves.  A 512 x 512 slice splits in two; a 256 x 256 one does not. */
#define DR_CHUNK 65536
#define DR_MIN_CHUNKS_PER_THREAD 2

#define DR_TARGET_BASELINE 0
#define DR_TARGET_AVX2 1
#define DR_TARGET_AVX512 2
/* AVX-512 plus VBMI byte permutes: the same loops, and a one-pass RGB interleave. */
#define DR_TARGET_AVX512VBMI 3
#define DR_N_TARGETS 4

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

static inline uint8_t dr_narrow_px(uint32_t word, const dr_narrow *t, int shift, int bits, int is_signed)
{
    int32_t lane = dr_stored16(word, shift, bits, is_signed) + (is_signed ? 32768 : 0);
    int32_t index = lane - (int32_t)t->low;
    index = index < 0 ? 0 : index;
    return t->table[index > t->range ? t->range : index];
}

static void dr_narrow_scalar(const void *src, int itemsize, size_t from, size_t to, const dr_narrow *t,
                             uint8_t *out, int shift, int bits, int is_signed)
{
    for (size_t i = from; i < to; i++)
        out[i] = dr_narrow_px(itemsize == 2 ? ((const uint16_t *)src)[i] : ((const uint8_t *)src)[i], t, shift,
                              bits, is_signed);
}

/* ---- loops, instantiated per target ------------------------------------ */

/* One-table gather over 16-bit words.  Scalar loads beat AVX2/AVX-512 gathers on the CPUs
 * measured (vpgatherdd from a table widened to 32 bits ran at 2.5 Gpx/s, this at 3.2 on one
 * AMD Zen 4 core); reading four words per load and storing eight results at once saves a
 * quarter of the instructions of the plain loop. */
static inline void dr_gather1_words16(const uint16_t *restrict src, size_t n, const uint8_t *restrict table,
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

#define DR_GATHER_LOOP(NAME, T, ATTR)                                                        \
    ATTR static void NAME(const T *restrict src, size_t n, const uint8_t *restrict tables,     \
                          size_t table_size, int k, uint8_t *restrict out, int shift,          \
                          uint32_t mask)                                                       \
    {                                                                                          \
        if (k == 1 && sizeof(T) == 2) {                                                        \
            dr_gather1_words16((const uint16_t *)src, n, tables, out, shift, mask);            \
        } else if (k == 1) {                                                                   \
            for (size_t i = 0; i < n; i++) out[i] = tables[((uint32_t)src[i] >> shift) & mask]; \
        } else if (k == 3) {                                                                   \
            const uint8_t *t0 = tables, *t1 = tables + table_size, *t2 = tables + 2 * table_size; \
            for (size_t i = 0; i < n; i++) {                                                   \
                uint32_t v = ((uint32_t)src[i] >> shift) & mask;                               \
                out[3 * i] = t0[v];                                                            \
                out[3 * i + 1] = t1[v];                                                        \
                out[3 * i + 2] = t2[v];                                                        \
            }                                                                                  \
        } else {                                                                               \
            for (size_t i = 0; i < n; i++) {                                                   \
                uint32_t v = ((uint32_t)src[i] >> shift) & mask;                               \
                for (int j = 0; j < k; j++) out[(size_t)k * i + j] = tables[j * table_size + v]; \
            }                                                                                  \
        }                                                                                      \
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

/* Stored value of an integer word, without branches: mask, then sign-extend by xor/subtract. */
#define DR_STORED_INT(word, shift, mask, sign) ((double)(((int64_t)(((uint64_t)(word) >> (shift)) & (mask)) ^ (sign)) - (sign)))
/* The same for words of at most 16 bits in 32-bit arithmetic, which vectorises everywhere. */
#define DR_STORED_SMALL(word, shift, mask, sign) \
    ((double)(((int32_t)(((uint32_t)(word) >> (shift)) & (uint32_t)(mask)) ^ (int32_t)(sign)) - (int32_t)(sign)))
#define DR_AS_DOUBLE(word, shift, mask, sign) ((double)(word))

/* The fused float64 loop over words of type T (CONVERT gives the stored value). */
#define DR_ARITH_LOOP(NAME, T, CONVERT, ATTR)                                                     \
    ATTR static void NAME(const T *restrict src, size_t n, const dr_window *restrict w, int k,    \
                          uint8_t *restrict out, int shift, int bits, int is_signed)             \
    {                                                                                            \
        const uint64_t mask = bits >= 64 ? ~(uint64_t)0 : (((uint64_t)1 << bits) - 1);          \
        const int64_t sign = is_signed ? (int64_t)1 << (bits - 1) : 0;                           \
        (void)mask;                                                                              \
        (void)sign;                                                                              \
        if (k == 1 && w->function != DR_SIGMOID) {                                               \
            const dr_ramp r = dr_make_ramp(w);                                                   \
            if (w->invert)                                                                       \
                for (size_t i = 0; i < n; i++) out[i] = dr_ramp_px(CONVERT(src[i], shift, mask, sign), &r, 1); \
            else                                                                                 \
                for (size_t i = 0; i < n; i++) out[i] = dr_ramp_px(CONVERT(src[i], shift, mask, sign), &r, 0); \
            return;                                                                              \
        }                                                                                        \
        for (size_t i = 0; i < n; i++) {                                                         \
            double s = CONVERT(src[i], shift, mask, sign);                                       \
            for (int j = 0; j < k; j++) out[(size_t)k * i + j] = dr_pixel(s, &w[j]);              \
        }                                                                                        \
    }

#define DR_AFFINE_LOOP(NAME, T, ATTR)                                                        \
    ATTR static void NAME(const T *restrict src, size_t n, const dr_affine *restrict w, int k,  \
                          uint8_t *restrict out, int shift, int bits, int is_signed)           \
    {                                                                                          \
        if (k == 1) {                                                                          \
            for (size_t i = 0; i < n; i++) out[i] = dr_affine_px(dr_stored16(src[i], shift, bits, is_signed), w); \
            return;                                                                            \
        }                                                                                      \
        for (size_t i = 0; i < n; i++) {                                                       \
            int32_t v = dr_stored16(src[i], shift, bits, is_signed);                           \
            for (int j = 0; j < k; j++) out[(size_t)k * i + j] = dr_affine_px(v, &w[j]);        \
        }                                                                                      \
    }

#define DR_INSTANTIATE(SUFFIX, ATTR)                                 \
    DR_GATHER_LOOP(dr_gather_u8_##SUFFIX, uint8_t, ATTR)             \
    DR_GATHER_LOOP(dr_gather_u16_##SUFFIX, uint16_t, ATTR)           \
    DR_GATHER_LOOP(dr_gather_u32_##SUFFIX, uint32_t, ATTR)           \
    DR_ARITH_LOOP(dr_arith_f32_##SUFFIX, float, DR_AS_DOUBLE, ATTR)  \
    DR_ARITH_LOOP(dr_arith_f64_##SUFFIX, double, DR_AS_DOUBLE, ATTR) \
    DR_ARITH_LOOP(dr_arith_u8_##SUFFIX, uint8_t, DR_STORED_SMALL, ATTR) \
    DR_ARITH_LOOP(dr_arith_u16_##SUFFIX, uint16_t, DR_STORED_SMALL, ATTR) \
    DR_ARITH_LOOP(dr_arith_u32_##SUFFIX, uint32_t, DR_STORED_INT, ATTR)

DR_INSTANTIATE(base, )
DR_AFFINE_LOOP(dr_affine_u8_base, uint8_t, )
DR_AFFINE_LOOP(dr_affine_u16_base, uint16_t, )

#if DR_HAVE_X86_TARGETS
DR_INSTANTIATE(avx2, __attribute__((target("avx2"))))
DR_INSTANTIATE(avx512, __attribute__((target("avx512f,avx512bw,avx512vl"))))

/* ---- explicit SIMD for the affine path ----------------------------------
 * 32 pixels per 512-bit vector of 16-bit lanes (16 per 256-bit): the stored
 * bits are extracted in 16-bit lanes (sign-extended values are biased by
 * 0x8000 to stay unsigned), then each lane is widened by interleaving it with
 * the high half 0x4B00, which makes the float 2**23 + lane exactly, so one
 * exact subtraction of 2**23 + bias + pivot yields d.  cvttps truncates (the
 * host keeps |y| < 2**30), and the signed-saturating packs clip to 0..255
 * exactly as dr_affine_px does. */

#define DR_AVX512_ATTR __attribute__((target("avx512f,avx512bw,avx512vl,fma")))
#define DR_AVX2_ATTR __attribute__((target("avx2,fma")))
#define DR_INLINE static inline __attribute__((always_inline))

#define DR_MODE_UNSIGNED_FULL 0 /* every bit of the word, unsigned */
#define DR_MODE_UNSIGNED_PART 1 /* (word >> shift) & mask */
#define DR_MODE_SIGNED_FULL 2   /* every bit, two's complement */
#define DR_MODE_SIGNED_PART 3   /* shift, mask and sign-extend */
#define DR_MODE_UNSIGNED_LOW 4  /* word & mask (the usual 12-bit CT word) */

static int dr_affine_mode(int itemsize, int shift, int bits, int is_signed)
{
    int full = shift == 0 && bits == itemsize * 8;
    if (is_signed) return full ? DR_MODE_SIGNED_FULL : DR_MODE_SIGNED_PART;
    return full ? DR_MODE_UNSIGNED_FULL : (shift == 0 ? DR_MODE_UNSIGNED_LOW : DR_MODE_UNSIGNED_PART);
}

/* The float that d is measured from: the widened lane is 2**23 + stored + bias. */
static inline float dr_affine_origin(const dr_affine *w, int is_signed)
{
    return (float)(8388608 + (is_signed ? 32768 : 0) + w->pivot);
}

/* Pixels [from, to) of the affine path, one at a time (vector-loop heads and tails). */
static inline void dr_affine_scalar(const void *src, int itemsize, size_t from, size_t to, const dr_affine *w, int k,
                                    uint8_t *out, int shift, int bits, int is_signed)
{
    for (size_t i = from; i < to; i++) {
        uint32_t word = itemsize == 2 ? ((const uint16_t *)src)[i] : ((const uint8_t *)src)[i];
        int32_t v = dr_stored16(word, shift, bits, is_signed);
        for (int j = 0; j < k; j++) out[(size_t)k * i + j] = dr_affine_px(v, &w[j]);
    }
}

/* Outputs at least this large (per thread) bypass the caches with streaming stores: they
 * cannot stay cached anyway, and the cache-line reads before each write are saved. */
#define DR_STREAM_BYTES ((size_t)24 << 20)

/* First index i < n from which out + k * i is aligned to `align` bytes (k = 1 or 3). */
static inline size_t dr_align_head(const uint8_t *out, int k, size_t align, size_t n)
{
    size_t miss = (size_t)(-(uintptr_t)out) & (align - 1), head;
    if (k == 1) head = miss;
    else head = (miss * (align == 64 ? 43 : 11)) & (align - 1); /* 3 * 43 = 1 mod 64, 3 * 11 = 1 mod 32 */
    return head < n ? head : n;
}

/* Byte shuffles taking three 16-byte channel vectors to 48 interleaved bytes (pixel-major):
 * [output block q][channel]; 0x80 gives a zero byte. */
static const uint8_t dr_rgb_shuffle[3][3][16] = {
    /* output block 0: R0 G0 B0 R1 ... R5 */
    {{0, 0x80, 0x80, 1, 0x80, 0x80, 2, 0x80, 0x80, 3, 0x80, 0x80, 4, 0x80, 0x80, 5},
     {0x80, 0, 0x80, 0x80, 1, 0x80, 0x80, 2, 0x80, 0x80, 3, 0x80, 0x80, 4, 0x80, 0x80},
     {0x80, 0x80, 0, 0x80, 0x80, 1, 0x80, 0x80, 2, 0x80, 0x80, 3, 0x80, 0x80, 4, 0x80}},
    /* output block 1: G5 B5 R6 ... G10 */
    {{0x80, 0x80, 6, 0x80, 0x80, 7, 0x80, 0x80, 8, 0x80, 0x80, 9, 0x80, 0x80, 10, 0x80},
     {5, 0x80, 0x80, 6, 0x80, 0x80, 7, 0x80, 0x80, 8, 0x80, 0x80, 9, 0x80, 0x80, 10},
     {0x80, 5, 0x80, 0x80, 6, 0x80, 0x80, 7, 0x80, 0x80, 8, 0x80, 0x80, 9, 0x80, 0x80}},
    /* output block 2: B10 R11 G11 ... B15 */
    {{0x80, 11, 0x80, 0x80, 12, 0x80, 0x80, 13, 0x80, 0x80, 14, 0x80, 0x80, 15, 0x80, 0x80},
     {0x80, 0x80, 11, 0x80, 0x80, 12, 0x80, 0x80, 13, 0x80, 0x80, 14, 0x80, 0x80, 15, 0x80},
     {10, 0x80, 0x80, 11, 0x80, 0x80, 12, 0x80, 0x80, 13, 0x80, 0x80, 14, 0x80, 0x80, 15}},
};


/* Three channel vectors (bytes in pixel order) to interleaved RGB, in registers: the byte shuffles
 * above build, in each 128-bit lane, output block q (16 bytes) of that lane's 16 pixels; whole
 * lanes are then moved into place.  `masks` holds dr_rgb_shuffle broadcast to every lane. */
DR_AVX2_ATTR DR_INLINE void dr_rgb3_256(uint8_t *out, const __m256i *masks, __m256i r, __m256i g, __m256i b)
{
    __m256i x[3];
    for (int q = 0; q < 3; q++)
        x[q] = _mm256_or_si256(_mm256_or_si256(_mm256_shuffle_epi8(r, masks[3 * q]), _mm256_shuffle_epi8(g, masks[3 * q + 1])),
                               _mm256_shuffle_epi8(b, masks[3 * q + 2]));
    /* x[q] = (block q of pixels 0..15, block q of pixels 16..31) */
    _mm256_storeu_si256((__m256i *)out, _mm256_permute2x128_si256(x[0], x[1], 0x20));
    _mm256_storeu_si256((__m256i *)(out + 32), _mm256_permute2x128_si256(x[2], x[0], 0x30));
    _mm256_storeu_si256((__m256i *)(out + 64), _mm256_permute2x128_si256(x[1], x[2], 0x31));
}

DR_AVX2_ATTR static inline void dr_rgb3_masks_256(__m256i *masks)
{
    for (int q = 0; q < 9; q++) masks[q] = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)dr_rgb_shuffle[q / 3][q % 3]));
}

DR_AVX512_ATTR DR_INLINE void dr_rgb3_512(uint8_t *out, const __m512i *masks, __m512i r, __m512i g, __m512i b)
{
    __m512i x[3];
    for (int q = 0; q < 3; q++)
        x[q] = _mm512_or_si512(_mm512_or_si512(_mm512_shuffle_epi8(r, masks[3 * q]), _mm512_shuffle_epi8(g, masks[3 * q + 1])),
                               _mm512_shuffle_epi8(b, masks[3 * q + 2]));
    /* lane L of x[q] is block q of pixels 16L..16L+15; the output is x0.0 x1.0 x2.0 x0.1 | x1.1 x2.1 x0.2
     * x1.2 | x2.2 x0.3 x1.3 x2.3 (indices in 64-bit units; 8.. name the second source) */
    __m512i v0 = _mm512_permutex2var_epi64(x[0], _mm512_setr_epi64(0, 1, 8, 9, 0, 0, 2, 3), x[1]);
    v0 = _mm512_mask_permutexvar_epi64(v0, 0x30, _mm512_setr_epi64(0, 0, 0, 0, 0, 1, 0, 0), x[2]);
    __m512i v1 = _mm512_permutex2var_epi64(x[1], _mm512_setr_epi64(2, 3, 0, 0, 12, 13, 4, 5), x[0]);
    v1 = _mm512_mask_permutexvar_epi64(v1, 0x0C, _mm512_setr_epi64(0, 0, 2, 3, 0, 0, 0, 0), x[2]);
    __m512i v2 = _mm512_permutex2var_epi64(x[2], _mm512_setr_epi64(4, 5, 14, 15, 0, 0, 6, 7), x[0]);
    v2 = _mm512_mask_permutexvar_epi64(v2, 0x30, _mm512_setr_epi64(0, 0, 0, 0, 6, 7, 0, 0), x[1]);
    _mm512_storeu_si512((void *)out, v0);
    _mm512_storeu_si512((void *)(out + 64), v1);
    _mm512_storeu_si512((void *)(out + 128), v2);
}

DR_AVX512_ATTR static inline void dr_rgb3_masks_512(__m512i *masks)
{
    for (int q = 0; q < 9; q++) masks[q] = _mm512_broadcast_i32x4(_mm_loadu_si128((const __m128i *)dr_rgb_shuffle[q / 3][q % 3]));
}

/* Interleave k channel blocks of `count` bytes into out (pixel-major); three channels have
 * dr_rgb3_256 / dr_rgb3_512, this serves two and four. */
static inline void dr_interleave(uint8_t (*tmp)[64], int k, size_t count, uint8_t *restrict out)
{
    for (size_t p = 0; p < count; p++)
        for (int j = 0; j < k; j++) out[(size_t)k * p + j] = tmp[j][p];
}

/* Calls LOOP(src, itemsize, n, w, k, out, shift, bits, is_signed, mode) with itemsize and mode as
 * literals.  Bytes are zero-extended into 16-bit lanes, so for them only the PART and LOW modes apply. */
#define DR_AFFINE_MODES(LOOP, src, itemsize, n, w, k, out, shift, bits, is_signed, mode)             \
    do {                                                                                           \
        if ((itemsize) == 2) {                                                                     \
            switch (mode) {                                                                        \
            case DR_MODE_UNSIGNED_FULL: LOOP(src, 2, n, w, k, out, shift, bits, is_signed, 0); break; \
            case DR_MODE_UNSIGNED_PART: LOOP(src, 2, n, w, k, out, shift, bits, is_signed, 1); break; \
            case DR_MODE_SIGNED_FULL: LOOP(src, 2, n, w, k, out, shift, bits, is_signed, 2); break;   \
            case DR_MODE_UNSIGNED_LOW: LOOP(src, 2, n, w, k, out, shift, bits, is_signed, 4); break;  \
            default: LOOP(src, 2, n, w, k, out, shift, bits, is_signed, 3); break;                    \
            }                                                                                      \
        } else if (is_signed) {                                                                    \
            LOOP(src, 1, n, w, k, out, shift, bits, is_signed, 3);                                 \
        } else if ((shift) == 0) {                                                                 \
            LOOP(src, 1, n, w, k, out, shift, bits, is_signed, 4);                                 \
        } else {                                                                                   \
            LOOP(src, 1, n, w, k, out, shift, bits, is_signed, 1);                                 \
        }                                                                                          \
    } while (0)

/* Instantiates the loop for one vector width.  W: 512 or 256; LANES16: 16-bit lanes per vector. */
#define DR_AFFINE_SIMD(W, ATTR, VEC, VECF, LANES16, LOADW, LOADB, SET1_16, SET1_PS, AND, XOR, SRL16, SLL16, SRA16, \
                       UNPACKLO16, UNPACKHI16, CASTPS, SUBPS, FMADD, CVTT, PACKS32, PACKUS16, FIXORDER,             \
                       STORE, STREAM, RGB3, RGB3MASKS)                                                             \
    ATTR DR_INLINE VEC dr_extract_##W(VEC x, const int mode, __m128i left, __m128i right, __m128i shift, VEC mask) \
    {                                                                                                              \
        switch (mode) {                                                                                            \
        case DR_MODE_UNSIGNED_FULL: return x;                                                                      \
        case DR_MODE_UNSIGNED_PART: return AND(SRL16(x, shift), mask);                                             \
        case DR_MODE_UNSIGNED_LOW: return AND(x, mask);                                                            \
        case DR_MODE_SIGNED_FULL: return XOR(x, SET1_16((short)0x8000));                                          \
        default: return XOR(SRA16(SLL16(x, left), right), SET1_16((short)0x8000));                                \
        }                                                                                                          \
    }                                                                                                              \
    /* Saturated int16 results of one channel for d = lo, hi (the widened lanes minus the origin). */              \
    ATTR DR_INLINE VEC dr_channel_##W(VECF lo, VECF hi, VECF a, VECF b)                                            \
    {                                                                                                              \
        return PACKS32(CVTT(FMADD(lo, a, b)), CVTT(FMADD(hi, a, b)));                                              \
    }                                                                                                              \
    /* Bytes, in pixel order, of channel j for the pixels widened into (l0, h0) and (l1, h1); when the              \
     * channels share a pivot, d[] holds those lanes minus the origin already. */                                  \
    ATTR DR_INLINE VEC dr_bytes_##W(const VECF *d, int shared, VECF l0, VECF h0, VECF l1, VECF h1, VECF origin,     \
                                    VECF a, VECF b)                                                                \
    {                                                                                                              \
        if (shared)                                                                                                \
            return FIXORDER(PACKUS16(dr_channel_##W(d[0], d[1], a, b), dr_channel_##W(d[2], d[3], a, b)));        \
        return FIXORDER(PACKUS16(dr_channel_##W(SUBPS(l0, origin), SUBPS(h0, origin), a, b),                       \
                                 dr_channel_##W(SUBPS(l1, origin), SUBPS(h1, origin), a, b)));                     \
    }                                                                                                              \
    ATTR DR_INLINE void dr_affine_loop_##W(const void *restrict src, const int itemsize, size_t n,                 \
                                           const dr_affine *restrict w, int k, uint8_t *restrict out, int shift,  \
                                           int bits, int is_signed, const int mode)                               \
    {                                                                                                              \
        const __m128i left = _mm_cvtsi32_si128(16 - shift - bits), right = _mm_cvtsi32_si128(16 - bits);          \
        const __m128i sh = _mm_cvtsi32_si128(shift);                                                               \
        const VEC mask = SET1_16((short)((1u << bits) - 1)), magic = SET1_16(0x4B00);                              \
        VECF origin[DR_MAX_WINDOWS], a[DR_MAX_WINDOWS], b[DR_MAX_WINDOWS];                                         \
        for (int j = 0; j < k; j++) {                                                                              \
            origin[j] = SET1_PS(dr_affine_origin(&w[j], is_signed));                                               \
            a[j] = SET1_PS(w[j].a);                                                                                \
            b[j] = SET1_PS(w[j].b);                                                                                \
        }                                                                                                          \
        /* with 16 vector registers (AVX2), keeping d live costs more spills than the subtractions */             \
        int shared = (W) == 512;                                                                                   \
        for (int j = 1; j < k; j++) shared &= w[j].pivot == w[0].pivot;                                            \
        uint8_t tmp[DR_MAX_WINDOWS][64];                                                                           \
        VEC rgb_masks[9];                                                                                          \
        if (k == 3) RGB3MASKS(rgb_masks);                                                                          \
        const size_t block = 2 * (LANES16);                                                                        \
        const int stream = k == 1 && n >= DR_STREAM_BYTES;                                                        \
        size_t i = stream ? dr_align_head(out, 1, block, n) : 0;                                                   \
        dr_affine_scalar(src, itemsize, 0, i, w, k, out, shift, bits, is_signed);                                  \
        for (; i + block <= n; i += block) {                                                                       \
            VEC e0, e1;                                                                                            \
            if (itemsize == 2) {                                                                                   \
                e0 = LOADW((const uint16_t *)src + i);                                                             \
                e1 = LOADW((const uint16_t *)src + i + (LANES16));                                                 \
            } else {                                                                                               \
                e0 = LOADB((const uint8_t *)src + i);                                                              \
                e1 = LOADB((const uint8_t *)src + i + (LANES16));                                                  \
            }                                                                                                      \
            e0 = dr_extract_##W(e0, mode, left, right, sh, mask);                                                  \
            e1 = dr_extract_##W(e1, mode, left, right, sh, mask);                                                  \
            VECF l0 = CASTPS(UNPACKLO16(e0, magic)), h0 = CASTPS(UNPACKHI16(e0, magic));                           \
            VECF l1 = CASTPS(UNPACKLO16(e1, magic)), h1 = CASTPS(UNPACKHI16(e1, magic));                           \
            VECF d[4];                                                                                             \
            if (shared) {                                                                                          \
                d[0] = SUBPS(l0, origin[0]), d[1] = SUBPS(h0, origin[0]);                                          \
                d[2] = SUBPS(l1, origin[0]), d[3] = SUBPS(h1, origin[0]);                                          \
            }                                                                                                      \
            if (k == 1) {                                                                                          \
                VEC bytes = dr_bytes_##W(d, shared, l0, h0, l1, h1, origin[0], a[0], b[0]);                        \
                if (stream) STREAM(out + i, bytes);                                                                \
                else STORE(out + i, bytes);                                                                        \
            } else if (k == 3) {                                                                                   \
                VEC c[3];                                                                                          \
                for (int j = 0; j < 3; j++) c[j] = dr_bytes_##W(d, shared, l0, h0, l1, h1, origin[j], a[j], b[j]); \
                RGB3(out + 3 * i, rgb_masks, c[0], c[1], c[2]);                                                    \
            } else {                                                                                               \
                for (int j = 0; j < k; j++)                                                                        \
                    STORE(tmp[j], dr_bytes_##W(d, shared, l0, h0, l1, h1, origin[j], a[j], b[j]));                 \
                dr_interleave(tmp, k, block, out + (size_t)k * i);                                                 \
            }                                                                                                      \
        }                                                                                                          \
        if (stream) _mm_sfence();                                                                                  \
        dr_affine_scalar(src, itemsize, i, n, w, k, out, shift, bits, is_signed);                                  \
    }                                                                                                              \
    ATTR static void dr_affine_any_##W(const void *src, int itemsize, size_t n, const dr_affine *w, int k,         \
                                       uint8_t *out, int shift, int bits, int is_signed)                          \
    {                                                                                                              \
        int mode = dr_affine_mode(itemsize, shift, bits, is_signed);                                               \
        /* Literal arguments let the compiler specialise each loop (one and three windows apart). */               \
        if (k == 1) DR_AFFINE_MODES(dr_affine_loop_##W, src, itemsize, n, w, 1, out, shift, bits, is_signed, mode); \
        else if (k == 3) DR_AFFINE_MODES(dr_affine_loop_##W, src, itemsize, n, w, 3, out, shift, bits, is_signed, mode); \
        else DR_AFFINE_MODES(dr_affine_loop_##W, src, itemsize, n, w, k, out, shift, bits, is_signed, mode);      \
    }

#define DR_FIXORDER512(x) _mm512_permutexvar_epi64(_mm512_setr_epi64(0, 2, 4, 6, 1, 3, 5, 7), x)
#define DR_FIXORDER256(x) _mm256_permute4x64_epi64(x, 0xD8)
#define DR_LOADW512(p) _mm512_loadu_si512((const void *)(p))
#define DR_LOADB512(p) _mm512_cvtepu8_epi16(_mm256_loadu_si256((const __m256i *)(p)))
#define DR_LOADW256(p) _mm256_loadu_si256((const __m256i *)(p))
#define DR_LOADB256(p) _mm256_cvtepu8_epi16(_mm_loadu_si128((const __m128i *)(p)))
#define DR_STORE512(p, x) _mm512_storeu_si512((void *)(p), x)
#define DR_STORE256(p, x) _mm256_storeu_si256((__m256i *)(p), x)
#define DR_STREAM512(p, x) _mm512_stream_si512((void *)(p), x)
#define DR_STREAM256(p, x) _mm256_stream_si256((__m256i *)(p), x)

DR_AFFINE_SIMD(512, DR_AVX512_ATTR, __m512i, __m512, 32, DR_LOADW512, DR_LOADB512, _mm512_set1_epi16, _mm512_set1_ps,
               _mm512_and_si512, _mm512_xor_si512, _mm512_srl_epi16, _mm512_sll_epi16, _mm512_sra_epi16,
               _mm512_unpacklo_epi16, _mm512_unpackhi_epi16, _mm512_castsi512_ps, _mm512_sub_ps, _mm512_fmadd_ps,
               _mm512_cvttps_epi32, _mm512_packs_epi32, _mm512_packus_epi16, DR_FIXORDER512,
               DR_STORE512, DR_STREAM512, dr_rgb3_512, dr_rgb3_masks_512)
DR_AFFINE_SIMD(256, DR_AVX2_ATTR, __m256i, __m256, 16, DR_LOADW256, DR_LOADB256, _mm256_set1_epi16, _mm256_set1_ps,
               _mm256_and_si256, _mm256_xor_si256, _mm256_srl_epi16, _mm256_sll_epi16, _mm256_sra_epi16,
               _mm256_unpacklo_epi16, _mm256_unpackhi_epi16, _mm256_castsi256_ps, _mm256_sub_ps, _mm256_fmadd_ps,
               _mm256_cvttps_epi32, _mm256_packs_epi32, _mm256_packus_epi16, DR_FIXORDER256,
               DR_STORE256, DR_STREAM256, dr_rgb3_256, dr_rgb3_masks_256)

/* The entry points of one vector width per word size, named as DR_DISPATCH expects. */
#define DR_AFFINE_ENTRIES(SUFFIX, W, ATTR)                                                                   \
    ATTR static void dr_affine_u8_##SUFFIX(const uint8_t *s, size_t n, const dr_affine *w, int k, uint8_t *out, \
                                           int shift, int bits, int is_signed)                                \
    {                                                                                                        \
        dr_affine_any_##W(s, 1, n, w, k, out, shift, bits, is_signed);                                       \
    }                                                                                                        \
    ATTR static void dr_affine_u16_##SUFFIX(const uint16_t *s, size_t n, const dr_affine *w, int k,           \
                                            uint8_t *out, int shift, int bits, int is_signed)                \
    {                                                                                                        \
        dr_affine_any_##W(s, 2, n, w, k, out, shift, bits, is_signed);                                       \
    }

DR_AFFINE_ENTRIES(avx512, 512, DR_AVX512_ATTR)
DR_AFFINE_ENTRIES(avx2, 256, DR_AVX2_ATTR)

/* ---- three windows to RGB with AVX-512 VBMI ------------------------------
 * Per 64 pixels, each channel's 64 results come out of signed packs as two
 * vectors of 32 words in pixel order (r0: pixels 0..31, r1: 32..63).  Unsigned
 * packs then pair them as RG0 = (r0, g0), RG1 = (r1, g1) and BB = (b0, b1), and
 * four byte permutes write the 192 interleaved bytes: output vector 0 (pixels
 * 0..21) takes only RG0 and BB, vector 2 (42..63) only RG1 and BB, vector 1 all
 * three.  When all three windows share a pivot, d is computed once. */
#define DR_VBMI_ATTR __attribute__((target("avx512f,avx512bw,avx512vl,avx512vbmi,fma")))

/* The stored bits of words i..i+63 in two vectors of 16-bit lanes (biased by 32768 when signed). */
DR_VBMI_ATTR DR_INLINE void dr_load64_512(const void *restrict src, const int itemsize, size_t i, const int mode,
                                          __m128i left, __m128i right, __m128i sh, __m512i mask, __m512i *e0,
                                          __m512i *e1)
{
    if (itemsize == 2) {
        *e0 = _mm512_loadu_si512((const void *)((const uint16_t *)src + i));
        *e1 = _mm512_loadu_si512((const void *)((const uint16_t *)src + i + 32));
    } else {
        *e0 = _mm512_cvtepu8_epi16(_mm256_loadu_si256((const __m256i *)((const uint8_t *)src + i)));
        *e1 = _mm512_cvtepu8_epi16(_mm256_loadu_si256((const __m256i *)((const uint8_t *)src + i + 32)));
    }
    *e0 = dr_extract_512(*e0, mode, left, right, sh, mask);
    *e1 = dr_extract_512(*e1, mode, left, right, sh, mask);
}

/* Byte index of (pixel p < 32, channel j < 2) in RG0 (or of pixel 32 + p in RG1). */
static inline int dr_rgb_rg(int p, int j) { return 16 * ((p & 31) >> 3) + 8 * j + (p & 7); }
/* Byte index of pixel p (0..63) of channel 2 in BB. */
static inline int dr_rgb_b(int p) { return 16 * ((p & 31) >> 3) + 8 * (p >= 32) + (p & 7); }

typedef struct {
    uint8_t first[64];  /* vpermt2b over RG0 (0..63) and BB (64..127) */
    uint8_t middle[64]; /* vpermt2b over RG0 (0..63) and RG1 (64..127) ... */
    uint8_t blue[64];   /* ... then vpermb from BB where middle_blue is set */
    uint8_t last[64];   /* vpermt2b over RG1 (0..63) and BB (64..127) */
    uint64_t middle_blue;
} dr_rgb_tables;

static dr_rgb_tables dr_rgb;
static int dr_rgb_ready = 0;

static void dr_rgb_init(void)
{
    if (dr_rgb_ready) return;
    dr_rgb.middle_blue = 0;
    for (int t = 0; t < 64; t++) {
        int p = t / 3, j = t % 3;
        dr_rgb.first[t] = (uint8_t)(j < 2 ? dr_rgb_rg(p, j) : 64 + dr_rgb_b(p));
        p = (64 + t) / 3, j = (64 + t) % 3;
        dr_rgb.middle[t] = (uint8_t)(j < 2 ? (p < 32 ? 0 : 64) + dr_rgb_rg(p, j) : 0);
        dr_rgb.blue[t] = (uint8_t)(j < 2 ? 0 : dr_rgb_b(p));
        if (j == 2) dr_rgb.middle_blue |= (uint64_t)1 << t;
        p = (128 + t) / 3, j = (128 + t) % 3;
        dr_rgb.last[t] = (uint8_t)(j < 2 ? dr_rgb_rg(p, j) : 64 + dr_rgb_b(p));
    }
    dr_rgb_ready = 1;
}

/* Signed words of one channel for the 32 pixels widened into lo/hi. */
DR_VBMI_ATTR DR_INLINE __m512i dr_rgb_words(__m512 lo, __m512 hi, __m512 a, __m512 b)
{
    return _mm512_packs_epi32(_mm512_cvttps_epi32(_mm512_fmadd_ps(lo, a, b)),
                              _mm512_cvttps_epi32(_mm512_fmadd_ps(hi, a, b)));
}

DR_VBMI_ATTR DR_INLINE void dr_affine_rgb_loop(const void *restrict src, const int itemsize, size_t n,
                                               const dr_affine *restrict w, uint8_t *restrict out, int shift,
                                               int bits, int is_signed, const int mode)
{
    const __m128i left = _mm_cvtsi32_si128(16 - shift - bits), right = _mm_cvtsi32_si128(16 - bits);
    const __m128i sh = _mm_cvtsi32_si128(shift);
    const __m512i mask = _mm512_set1_epi16((short)((1u << bits) - 1)), magic = _mm512_set1_epi16(0x4B00);
    const int shared = w[0].pivot == w[1].pivot && w[0].pivot == w[2].pivot;
    __m512 origin[3], a[3], b[3];
    for (int j = 0; j < 3; j++) {
        origin[j] = _mm512_set1_ps(dr_affine_origin(&w[j], is_signed));
        a[j] = _mm512_set1_ps(w[j].a);
        b[j] = _mm512_set1_ps(w[j].b);
    }
    const __m512i first = _mm512_loadu_si512((const void *)dr_rgb.first);
    const __m512i middle = _mm512_loadu_si512((const void *)dr_rgb.middle);
    const __m512i blue = _mm512_loadu_si512((const void *)dr_rgb.blue);
    const __m512i last = _mm512_loadu_si512((const void *)dr_rgb.last);
    const __mmask64 middle_blue = dr_rgb.middle_blue;
    const int stream = 3 * n >= DR_STREAM_BYTES;
    size_t i = stream ? dr_align_head(out, 3, 64, n) : 0;
    dr_affine_scalar(src, itemsize, 0, i, w, 3, out, shift, bits, is_signed);
    for (; i + 64 <= n; i += 64) {
        __m512i e0, e1;
        dr_load64_512(src, itemsize, i, mode, left, right, sh, mask, &e0, &e1);
        __m512 l0 = _mm512_castsi512_ps(_mm512_unpacklo_epi16(e0, magic));
        __m512 h0 = _mm512_castsi512_ps(_mm512_unpackhi_epi16(e0, magic));
        __m512 l1 = _mm512_castsi512_ps(_mm512_unpacklo_epi16(e1, magic));
        __m512 h1 = _mm512_castsi512_ps(_mm512_unpackhi_epi16(e1, magic));
        __m512i c0[3], c1[3];
        if (shared) {
            __m512 d0l = _mm512_sub_ps(l0, origin[0]), d0h = _mm512_sub_ps(h0, origin[0]);
            __m512 d1l = _mm512_sub_ps(l1, origin[0]), d1h = _mm512_sub_ps(h1, origin[0]);
            for (int j = 0; j < 3; j++) {
                c0[j] = dr_rgb_words(d0l, d0h, a[j], b[j]);
                c1[j] = dr_rgb_words(d1l, d1h, a[j], b[j]);
            }
        } else {
            for (int j = 0; j < 3; j++) {
                c0[j] = dr_rgb_words(_mm512_sub_ps(l0, origin[j]), _mm512_sub_ps(h0, origin[j]), a[j], b[j]);
                c1[j] = dr_rgb_words(_mm512_sub_ps(l1, origin[j]), _mm512_sub_ps(h1, origin[j]), a[j], b[j]);
            }
        }
        __m512i rg0 = _mm512_packus_epi16(c0[0], c0[1]), rg1 = _mm512_packus_epi16(c1[0], c1[1]);
        __m512i bb = _mm512_packus_epi16(c0[2], c1[2]);
        __m512i x0 = _mm512_permutex2var_epi8(rg0, first, bb);
        __m512i x1 = _mm512_mask_permutexvar_epi8(_mm512_permutex2var_epi8(rg0, middle, rg1), middle_blue, blue, bb);
        __m512i x2 = _mm512_permutex2var_epi8(rg1, last, bb);
        uint8_t *o = out + 3 * i;
        if (stream) {
            _mm512_stream_si512((void *)o, x0);
            _mm512_stream_si512((void *)(o + 64), x1);
            _mm512_stream_si512((void *)(o + 128), x2);
        } else {
            _mm512_storeu_si512((void *)o, x0);
            _mm512_storeu_si512((void *)(o + 64), x1);
            _mm512_storeu_si512((void *)(o + 128), x2);
        }
    }
    if (stream) _mm_sfence();
    dr_affine_scalar(src, itemsize, i, n, w, 3, out, shift, bits, is_signed);
}

/* The RGB loop in DR_AFFINE_MODES's argument order (k is always 3). */
#define DR_RGB_LOOP(src, itemsize, n, w, k, out, shift, bits, is_signed, mode) \
    dr_affine_rgb_loop(src, itemsize, n, w, out, shift, bits, is_signed, mode)

DR_VBMI_ATTR static void dr_affine_rgb_vbmi(const void *src, int itemsize, size_t n, const dr_affine *w,
                                            uint8_t *out, int shift, int bits, int is_signed)
{
    DR_AFFINE_MODES(DR_RGB_LOOP, src, itemsize, n, w, 3, out, shift, bits, is_signed,
                    dr_affine_mode(itemsize, shift, bits, is_signed));
}
/* ---- narrow tables with AVX-512 VBMI --------------------------------------
 * Per 64 pixels: the stored bits extracted as for the affine loop, index = min(lane -sat low, range)
 * in 16-bit lanes, packed to bytes, then one byte permute over a 128-entry table (two and a blend on
 * bit 7 for up to 256 entries). */
DR_VBMI_ATTR DR_INLINE void dr_narrow_loop(const void *restrict src, const int itemsize, size_t n,
                                           const dr_narrow *restrict t, uint8_t *restrict out, int shift, int bits,
                                           int is_signed, const int mode, const int wide)
{
    const __m128i left = _mm_cvtsi32_si128(16 - shift - bits), right = _mm_cvtsi32_si128(16 - bits);
    const __m128i sh = _mm_cvtsi32_si128(shift);
    const __m512i mask = _mm512_set1_epi16((short)((1u << bits) - 1));
    const __m512i low = _mm512_set1_epi16((short)t->low), range = _mm512_set1_epi16((short)t->range);
    const __m512i t0 = _mm512_loadu_si512((const void *)t->table), t1 = _mm512_loadu_si512((const void *)(t->table + 64));
    const __m512i t2 = _mm512_loadu_si512((const void *)(t->table + 128));
    const __m512i t3 = _mm512_loadu_si512((const void *)(t->table + 192));
    const int stream = n >= DR_STREAM_BYTES;
    size_t i = stream ? dr_align_head(out, 1, 64, n) : 0;
    dr_narrow_scalar(src, itemsize, 0, i, t, out, shift, bits, is_signed);
    for (; i + 64 <= n; i += 64) {
        __m512i e0, e1;
        dr_load64_512(src, itemsize, i, mode, left, right, sh, mask, &e0, &e1);
        e0 = _mm512_min_epu16(_mm512_subs_epu16(e0, low), range);
        e1 = _mm512_min_epu16(_mm512_subs_epu16(e1, low), range);
        __m512i index = DR_FIXORDER512(_mm512_packus_epi16(e0, e1));
        __m512i bytes = _mm512_permutex2var_epi8(t0, index, t1);
        if (wide)
            bytes = _mm512_mask_blend_epi8(_mm512_movepi8_mask(index), bytes, _mm512_permutex2var_epi8(t2, index, t3));
        if (stream) _mm512_stream_si512((void *)(out + i), bytes);
        else _mm512_storeu_si512((void *)(out + i), bytes);
    }
    if (stream) _mm_sfence();
    dr_narrow_scalar(src, itemsize, i, n, t, out, shift, bits, is_signed);
}

/* The narrow loop in DR_AFFINE_MODES's argument order; k carries `wide`. */
#define DR_NARROW_LOOP(src, itemsize, n, t, wide, out, shift, bits, is_signed, mode) \
    dr_narrow_loop(src, itemsize, n, t, out, shift, bits, is_signed, mode, wide)

DR_VBMI_ATTR static void dr_narrow_vbmi(const void *src, int itemsize, size_t n, const dr_narrow *t, uint8_t *out,
                                        int shift, int bits, int is_signed)
{
    int mode = dr_affine_mode(itemsize, shift, bits, is_signed);
    if (t->range < 128)
        DR_AFFINE_MODES(DR_NARROW_LOOP, src, itemsize, n, t, 0, out, shift, bits, is_signed, mode);
    else
        DR_AFFINE_MODES(DR_NARROW_LOOP, src, itemsize, n, t, 1, out, shift, bits, is_signed, mode);
}
#endif


/* ---- run-time dispatch --------------------------------------------------- */

static int dr_target_supported(int target)
{
    if (target == DR_TARGET_BASELINE) return 1;
#if DR_HAVE_X86_TARGETS
    __builtin_cpu_init();
    if (target == DR_TARGET_AVX2) return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    if (target == DR_TARGET_AVX512)
        return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
               __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("fma");
    if (target == DR_TARGET_AVX512VBMI)
        return dr_target_supported(DR_TARGET_AVX512) && __builtin_cpu_supports("avx512vbmi");
#endif
    return 0;
}

static int dr_best_target(void)
{
    for (int t = DR_N_TARGETS - 1; t > 0; t--)
        if (dr_target_supported(t)) return t;
    return DR_TARGET_BASELINE;
}

#if DR_HAVE_X86_TARGETS
#define DR_DISPATCH(target, FN, ...)                          \
    do {                                                      \
        if ((target) >= DR_TARGET_AVX512) FN##_avx512(__VA_ARGS__); \
        else if ((target) == DR_TARGET_AVX2) FN##_avx2(__VA_ARGS__); \
        else FN##_base(__VA_ARGS__);                          \
    } while (0)
#else
#define DR_DISPATCH(target, FN, ...) FN##_base(__VA_ARGS__)
#endif

static int dr_have_openmp(void)
{
#ifdef _OPENMP
    return 1;
#else
    return 0;
#endif
}

/* Threads a loop over n pixels uses when nthreads are asked for. */
/* libgomp's thread pool does not survive fork(): a child process that starts a parallel region
 * after its parent had one waits forever for workers that were not copied.  So a child forked
 * after the first team (multiprocessing's "fork" workers, for instance) runs every loop on its
 * own thread. */
#if defined(_OPENMP) && (defined(__unix__) || defined(__APPLE__))
#include <pthread.h>
#define DR_WATCH_FORK 1
#else
#define DR_WATCH_FORK 0
#endif
#ifdef _OPENMP
static int dr_team_started = 0; /* a thread team has run in this process */
static int dr_forked_after_team = 0;
#endif

#if DR_WATCH_FORK
static void dr_after_fork_in_child(void) { dr_forked_after_team = dr_team_started; }
#endif

static int dr_threads_for(size_t n, int nthreads)
{
#ifdef _OPENMP
    size_t most = n / ((size_t)DR_CHUNK * DR_MIN_CHUNKS_PER_THREAD);
    if (dr_forked_after_team) return 1;
    if (nthreads < 1) nthreads = 1;
    if ((size_t)nthreads > most) nthreads = most < 1 ? 1 : (int)most;
    return nthreads;
#else
    (void)n;
    (void)nthreads;
    return 1;
#endif
}

/* Split [0, n) into chunks and run BODY(start, count) on up to nthreads threads. */
/* Kernel calls in progress.  A call that starts while another one runs (from another Python
 * thread: the loops release the GIL) stays on its own thread, so concurrent callers scale
 * with the cores instead of oversubscribing them with thread teams. */
#if defined(_OPENMP) && (defined(__GNUC__) || defined(__clang__))
static int dr_active_calls = 0;
#define DR_ENTER() __atomic_fetch_add(&dr_active_calls, 1, __ATOMIC_RELAXED)
#define DR_LEAVE() __atomic_fetch_sub(&dr_active_calls, 1, __ATOMIC_RELAXED)
#else
#define DR_ENTER() 0
#define DR_LEAVE() 0
#endif

#ifdef _OPENMP
#define DR_PARALLEL(n, nthreads, BODY)                                                  \
    do {                                                                                \
        size_t n_chunks_ = ((n) + DR_CHUNK - 1) / DR_CHUNK;                             \
        int busy_ = DR_ENTER();                                                         \
        int threads_ = busy_ ? 1 : dr_threads_for((n), (nthreads));                     \
        if (threads_ > 1) {                                                             \
            dr_team_started = 1;                                                        \
            ptrdiff_t per_ = (ptrdiff_t)((n_chunks_ + threads_ - 1) / threads_) * DR_CHUNK; \
            _Pragma("omp parallel for num_threads(threads_) schedule(static, 1)")       \
            for (int t_ = 0; t_ < threads_; t_++) {                                     \
                size_t start = (size_t)t_ * per_;                                       \
                if (start < (n)) {                                                      \
                    size_t count = (n) - start < (size_t)per_ ? (n) - start : (size_t)per_; \
                    BODY;                                                               \
                }                                                                       \
            }                                                                           \
        } else {                                                                        \
            size_t start = 0, count = (n);                                              \
            BODY;                                                                       \
        }                                                                               \
        (void)DR_LEAVE();                                                               \
    } while (0)
#else
#define DR_PARALLEL(n, nthreads, BODY) \
    do {                               \
        size_t start = 0, count = (n); \
        BODY;                          \
    } while (0)
#endif

static void dr_gather(int target, int itemsize, const void *src, size_t n, const uint8_t *tables,
                      size_t table_size, int k, uint8_t *out, int shift, uint32_t mask, int nthreads)
{
    if (itemsize == 1) {
        const uint8_t *s = (const uint8_t *)src;
        DR_PARALLEL(n, nthreads, DR_DISPATCH(target, dr_gather_u8, s + start, count, tables, table_size, k, out + (size_t)k * start, shift, mask));
    } else if (itemsize == 2) {
        const uint16_t *s = (const uint16_t *)src;
        DR_PARALLEL(n, nthreads, DR_DISPATCH(target, dr_gather_u16, s + start, count, tables, table_size, k, out + (size_t)k * start, shift, mask));
    } else {
        const uint32_t *s = (const uint32_t *)src;
        DR_PARALLEL(n, nthreads, DR_DISPATCH(target, dr_gather_u32, s + start, count, tables, table_size, k, out + (size_t)k * start, shift, mask));
    }
}

static int dr_have_affine(void) { return DR_HAVE_AFFINE; }

/* One-time set-up at import, before any loop can run on several threads. */
static void dr_init(void)
{
#if DR_HAVE_X86_TARGETS
    dr_rgb_init();
#endif
#if DR_WATCH_FORK
    pthread_atfork(NULL, NULL, dr_after_fork_in_child);
#endif
}

static void dr_affine_render(int target, int itemsize, const void *src, size_t n, const dr_affine *w, int k, uint8_t *out,
                      int shift, int bits, int is_signed, int nthreads)
{
#if DR_HAVE_X86_TARGETS
    if (target == DR_TARGET_AVX512VBMI && k == 3) {
        const uint8_t *s = (const uint8_t *)src;
        DR_PARALLEL(n, nthreads, dr_affine_rgb_vbmi(s + (size_t)itemsize * start, itemsize, count, w, out + 3 * start, shift, bits, is_signed));
        return;
    }
#endif
    if (itemsize == 1) {
        const uint8_t *s = (const uint8_t *)src;
        DR_PARALLEL(n, nthreads, DR_DISPATCH(target, dr_affine_u8, s + start, count, w, k, out + (size_t)k * start, shift, bits, is_signed));
    } else {
        const uint16_t *s = (const uint16_t *)src;
        DR_PARALLEL(n, nthreads, DR_DISPATCH(target, dr_affine_u16, s + start, count, w, k, out + (size_t)k * start, shift, bits, is_signed));
    }
}

/* Whether the narrow-table loop is a vector loop on this target (elsewhere it runs scalar). */
static int dr_narrow_fast(int target)
{
    return DR_HAVE_X86_TARGETS && target == DR_TARGET_AVX512VBMI;
}

static void dr_narrow_render(int target, int itemsize, const void *src, size_t n, const dr_narrow *t, uint8_t *out,
                             int shift, int bits, int is_signed, int nthreads)
{
    const uint8_t *s = (const uint8_t *)src;
#if DR_HAVE_X86_TARGETS
    if (target == DR_TARGET_AVX512VBMI) {
        DR_PARALLEL(n, nthreads, dr_narrow_vbmi(s + (size_t)itemsize * start, itemsize, count, t, out + start, shift, bits, is_signed));
        return;
    }
#endif
    (void)target;
    DR_PARALLEL(n, nthreads, dr_narrow_scalar(s + (size_t)itemsize * start, itemsize, 0, count, t, out + start, shift, bits, is_signed));
}

/* The fused float64 path.  kind: 'f' for float words (itemsize 4 or 8), 'u' for integer words
 * holding `bits` stored bits from `shift` on. */
static void dr_arith(int target, int kind, int itemsize, const void *src, size_t n, const dr_window *w, int k,
                     uint8_t *out, int shift, int bits, int is_signed, int nthreads)
{
    if (kind == 'f' && itemsize == 4) {
        const float *s = (const float *)src;
        DR_PARALLEL(n, nthreads, DR_DISPATCH(target, dr_arith_f32, s + start, count, w, k, out + (size_t)k * start, 0, 64, 0));
    } else if (kind == 'f') {
        const double *s = (const double *)src;
        DR_PARALLEL(n, nthreads, DR_DISPATCH(target, dr_arith_f64, s + start, count, w, k, out + (size_t)k * start, 0, 64, 0));
    } else if (itemsize == 1) {
        const uint8_t *s = (const uint8_t *)src;
        DR_PARALLEL(n, nthreads, DR_DISPATCH(target, dr_arith_u8, s + start, count, w, k, out + (size_t)k * start, shift, bits, is_signed));
    } else if (itemsize == 2) {
        const uint16_t *s = (const uint16_t *)src;
        DR_PARALLEL(n, nthreads, DR_DISPATCH(target, dr_arith_u16, s + start, count, w, k, out + (size_t)k * start, shift, bits, is_signed));
    } else {
        const uint32_t *s = (const uint32_t *)src;
        DR_PARALLEL(n, nthreads, DR_DISPATCH(target, dr_arith_u32, s + start, count, w, k, out + (size_t)k * start, shift, bits, is_signed));
    }
}

#endif
