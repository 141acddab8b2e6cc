/* Inner loops of dicomrender's fused windowing kernel.
 *
 * Every loop is compiled once per instruction-set target (baseline, AVX2,
 * AVX-512 on x86-64) from the same source and chosen at run time, so one
 * binary runs on any CPU and never needs -march=native.  The arithmetic must
 * equal the float64 reference bit for bit: the build sets -ffp-contract=off so
 * no multiply-add is fused, and nothing here is reassociated.
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
#ifdef _OPENMP
#include <omp.h>
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

/* Pixels per parallel chunk; below two chunks the loop stays on one thread. */
#define DR_CHUNK 65536

#define DR_TARGET_BASELINE 0
#define DR_TARGET_AVX2 1
#define DR_TARGET_AVX512 2
#define DR_N_TARGETS 3

static inline uint8_t dr_to_uint8(double y, int invert)
{
    if (invert) y = 255.0 - y;
    y = floor(y + DR_SNAP);
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
    return dr_to_uint8(dr_voi(x, w), w->invert);
}

/* Stored value of a 32-bit word: bits shift..shift+bits-1, sign-extended. */
static inline double dr_stored32(uint32_t word, int shift, int bits, int is_signed)
{
    uint64_t v = ((uint64_t)word >> shift) & ((bits >= 32) ? 0xFFFFFFFFull : ((1ull << bits) - 1));
    if (is_signed && bits > 0 && (v >> (bits - 1)) & 1) return (double)((int64_t)v - ((int64_t)1 << bits));
    return (double)v;
}

/* ---- loops, instantiated per target ------------------------------------ */

#define DR_GATHER_LOOP(NAME, T, ATTR)                                                        \
    ATTR static void NAME(const T *restrict src, size_t n, const uint8_t *restrict tables,     \
                          size_t table_size, int k, uint8_t *restrict out, int shift,          \
                          uint32_t mask)                                                       \
    {                                                                                          \
        if (k == 1) {                                                                          \
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

#define DR_FLOAT_LOOP(NAME, T, ATTR)                                                         \
    ATTR static void NAME(const T *restrict src, size_t n, const dr_window *restrict w, int k, \
                          uint8_t *restrict out)                                               \
    {                                                                                          \
        for (size_t i = 0; i < n; i++) {                                                       \
            double s = (double)src[i];                                                         \
            for (int j = 0; j < k; j++) out[(size_t)k * i + j] = dr_pixel(s, &w[j]);            \
        }                                                                                      \
    }

#define DR_INT32_LOOP(NAME, ATTR)                                                            \
    ATTR static void NAME(const uint32_t *restrict src, size_t n, const dr_window *restrict w, \
                          int k, uint8_t *restrict out, int shift, int bits, int is_signed)    \
    {                                                                                          \
        for (size_t i = 0; i < n; i++) {                                                       \
            double s = dr_stored32(src[i], shift, bits, is_signed);                            \
            for (int j = 0; j < k; j++) out[(size_t)k * i + j] = dr_pixel(s, &w[j]);            \
        }                                                                                      \
    }

#define DR_INSTANTIATE(SUFFIX, ATTR)                                 \
    DR_GATHER_LOOP(dr_gather_u8_##SUFFIX, uint8_t, ATTR)             \
    DR_GATHER_LOOP(dr_gather_u16_##SUFFIX, uint16_t, ATTR)           \
    DR_GATHER_LOOP(dr_gather_u32_##SUFFIX, uint32_t, ATTR)           \
    DR_FLOAT_LOOP(dr_float_f32_##SUFFIX, float, ATTR)                \
    DR_FLOAT_LOOP(dr_float_f64_##SUFFIX, double, ATTR)               \
    DR_INT32_LOOP(dr_int32_##SUFFIX, ATTR)

DR_INSTANTIATE(base, )

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define DR_HAVE_X86_TARGETS 1
DR_INSTANTIATE(avx2, __attribute__((target("avx2"))))
DR_INSTANTIATE(avx512, __attribute__((target("avx512f,avx512bw,avx512vl"))))
#else
#define DR_HAVE_X86_TARGETS 0
#endif

/* ---- run-time dispatch --------------------------------------------------- */

static int dr_target_supported(int target)
{
    if (target == DR_TARGET_BASELINE) return 1;
#if DR_HAVE_X86_TARGETS
    __builtin_cpu_init();
    if (target == DR_TARGET_AVX2) return __builtin_cpu_supports("avx2");
    if (target == DR_TARGET_AVX512)
        return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
               __builtin_cpu_supports("avx512vl");
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
        if ((target) == DR_TARGET_AVX512) FN##_avx512(__VA_ARGS__); \
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

/* Split [0, n) into chunks and run BODY(start, count) on up to nthreads threads. */
#ifdef _OPENMP
#define DR_PARALLEL(n, nthreads, BODY)                                                  \
    do {                                                                                \
        size_t n_chunks_ = ((n) + DR_CHUNK - 1) / DR_CHUNK;                             \
        int threads_ = (nthreads) < 1 ? 1 : (nthreads);                                 \
        if (threads_ > 1 && n_chunks_ > 1) {                                            \
            if ((size_t)threads_ > n_chunks_) threads_ = (int)n_chunks_;                \
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

static void dr_float(int target, int itemsize, const void *src, size_t n, const dr_window *w, int k,
                     uint8_t *out, int nthreads)
{
    if (itemsize == 4) {
        const float *s = (const float *)src;
        DR_PARALLEL(n, nthreads, DR_DISPATCH(target, dr_float_f32, s + start, count, w, k, out + (size_t)k * start));
    } else {
        const double *s = (const double *)src;
        DR_PARALLEL(n, nthreads, DR_DISPATCH(target, dr_float_f64, s + start, count, w, k, out + (size_t)k * start));
    }
}

static void dr_int32(int target, const uint32_t *src, size_t n, const dr_window *w, int k, uint8_t *out,
                     int shift, int bits, int is_signed, int nthreads)
{
    DR_PARALLEL(n, nthreads, DR_DISPATCH(target, dr_int32, src + start, count, w, k, out + (size_t)k * start, shift, bits, is_signed));
}

#endif
