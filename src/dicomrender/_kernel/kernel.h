/* dicomrender's fused windowing kernel: the entry points the Cython wrapper calls.
 *
 * Every loop is compiled once per instruction-set target (baseline, AVX2, AVX-512, AVX-512
 * with VBMI on x86-64; baseline and NEON on aarch64) and chosen at run time, so one binary runs
 * on any CPU and never needs -march=native.  loops.h is written once and included below once per
 * target, after the header that names the target and defines its vector operations.
 * DR_PORTABLE_ONLY builds only the portable C loops (what other CPUs and compilers get).
 *
 * Each entry point fills a dr_call, looks up the target's loop and runs it on the threads. */
#ifndef DICOMRENDER_KERNEL_H
#define DICOMRENDER_KERNEL_H

/* The thread pool sleeps with syscall(SYS_futex): declared by the C library only with the GNU/default
 * feature set, which a strict -std=c99 build does not select (Python.h selects it for the module). */
#if !defined(_GNU_SOURCE)
#define _GNU_SOURCE 1
#endif

#include "constants.h"
#include "scalar.h"
#include "threads.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__)) && !defined(DR_PORTABLE_ONLY)
#define DR_HAVE_X86_TARGETS 1
#else
#define DR_HAVE_X86_TARGETS 0
#endif

/* NEON loops on little-endian aarch64 (the lane tricks assume little-endian lanes in memory). */
#if defined(__aarch64__) && defined(__ARM_NEON) && (defined(__GNUC__) || defined(__clang__)) && \
    defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__ && !defined(DR_PORTABLE_ONLY)
#define DR_HAVE_NEON_TARGET 1
#else
#define DR_HAVE_NEON_TARGET 0
#endif

/* ---- the loops of every target -------------------------------------------- */

#define DR_SUFFIX baseline
#define DR_ATTR
#include "loops.h"
#undef DR_SUFFIX
#undef DR_ATTR

#if DR_HAVE_X86_TARGETS
#include "simd_ops_avx2.h"
#include "loops.h"
#include "loops_avx2.h"
#include "simd_ops_end.h"

#include "simd_ops_avx512.h"
#include "loops.h"
#include "simd_ops_end.h"

#include "loops_vbmi.h"
#endif

#if DR_HAVE_NEON_TARGET
#include "simd_ops_neon.h"
#include "loops.h"
#include "loops_neon.h"
#include "simd_ops_end.h"
#endif

/* The narrow-table loop where there is no vector one. */
static void dr_narrow_portable(const dr_call *c, size_t start, size_t n)
{
    dr_narrow_range(dr_src(c, start), c->itemsize, 0, n, c->narrow, dr_out(c, start), c->shift, c->bits, c->is_signed);
}

/* ---- run-time dispatch ---------------------------------------------------- */

/* The loops of one target: the fused float64 ones by value type (DR_VALUES_*), the affine ones by
 * word size (1, 2 bytes). */
typedef struct {
    dr_loop *gather, *arith[5], *affine[2], *narrow;
} dr_loops;

#define DR_ARITH(suffix) {dr_arith_u8_##suffix, dr_arith_u16_##suffix, dr_arith_u32_##suffix, dr_arith_f32_##suffix, dr_arith_f64_##suffix}
#define DR_AFFINE(suffix) {dr_affine_u8_##suffix, dr_affine_u16_##suffix}

static const dr_loops dr_target_loops[DR_N_TARGETS] = {
    [DR_TARGET_BASELINE] = {dr_gather_baseline, DR_ARITH(baseline), DR_AFFINE(baseline), dr_narrow_portable},
#if DR_HAVE_X86_TARGETS
    [DR_TARGET_AVX2] = {dr_gather_avx2, DR_ARITH(avx2), DR_AFFINE(avx2), dr_narrow_avx2},
    [DR_TARGET_AVX512] = {dr_gather_avx512, DR_ARITH(avx512), DR_AFFINE(avx512), dr_narrow_portable},
    [DR_TARGET_AVX512VBMI] = {dr_gather_avx512, DR_ARITH(avx512), DR_AFFINE(avx512vbmi), dr_narrow_avx512vbmi},
#endif
#if DR_HAVE_NEON_TARGET
    [DR_TARGET_NEON] = {dr_gather_neon, DR_ARITH(neon), DR_AFFINE(neon), dr_narrow_neon},
#endif
};

/* The loops of a target; targets this build has no loops for run the baseline ones. */
static const dr_loops *dr_loops_for(int target)
{
    if (target <= 0 || target >= DR_N_TARGETS || dr_target_loops[target].narrow == NULL) target = DR_TARGET_BASELINE;
    return &dr_target_loops[target];
}

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
#if DR_HAVE_NEON_TARGET
    if (target == DR_TARGET_NEON) return 1; /* Advanced SIMD is part of every aarch64 CPU */
#endif
    return 0;
}

static int dr_best_target(void)
{
    for (int t = DR_N_TARGETS - 1; t > 0; t--)
        if (dr_target_supported(t)) return t;
    return DR_TARGET_BASELINE;
}

/* Whether the narrow lookup of a table of range + 1 entries beats the proven float32 affine loop of one
 * window on this target.  AVX-512 VBMI: always (one or two byte permutes per 64 pixels).  AVX2: one
 * vpshufb per 16 entries, so only short ranges (a cached 512 x 512 slice, Intel Xeon family 6 model
 * 207: 13 us for 16 entries, 19 for 32, 25 for 48, 34 for 80, 95 for 256, against 25 us for the
 * affine loop and 280 us for the scalar lookup).  NEON: one to four 64-entry table lookups per 16
 * pixels; below 128 entries (an estimate: no Arm hardware measured).  Elsewhere the lookup is scalar. */
static int dr_narrow_fast(int target, int range)
{
    dr_loop *narrow = dr_loops_for(target)->narrow;
#if DR_HAVE_X86_TARGETS
    if (narrow == dr_narrow_avx512vbmi) return 1;
    if (narrow == dr_narrow_avx2) return range < 48;
#endif
#if DR_HAVE_NEON_TARGET
    if (narrow == dr_narrow_neon) return range < 128;
#endif
    (void)narrow;
    (void)range;
    return 0;
}

static int dr_have_affine(void) { return DR_HAVE_AFFINE; }

/* Exported under a name no other library has: threadpoolctl's controller for the kernel's pool
 * (dicomrender.engine.threadpool) recognises the loaded module by it. */
#if defined(__GNUC__) || defined(__clang__)
__attribute__((visibility("default")))
#endif
int dicomrender_thread_budget(void);
int dicomrender_thread_budget(void) { return dr_get_budget(); }

/* One-time set-up at import, before any loop can run on several threads. */
static void dr_init(void)
{
#if DR_HAVE_X86_TARGETS
    dr_rgb_init();
#endif
    dr_threads_init();
}

/* ---- entry points ----------------------------------------------------------- */

/* out[i*k + j] = tables[j][(word i >> shift) & mask] for words of itemsize 1, 2 or 4. */
static void dr_gather(int target, int itemsize, const void *src, size_t n, const uint8_t *tables, size_t table_size,
                      int k, uint8_t *out, int shift, uint32_t mask, int nthreads)
{
    const dr_call c = {.src = src, .itemsize = itemsize, .out = out, .k = k, .shift = shift,
                       .tables = tables, .table_size = table_size, .mask = mask};
    dr_parallel(dr_loops_for(target)->gather, &c, n, nthreads);
}

/* The proven float32 affine path over words of itemsize 1 or 2 (see dr_affine in scalar.h). */
static void dr_affine_render(int target, int itemsize, const void *src, size_t n, const dr_affine *w, int k,
                             uint8_t *out, int shift, int bits, int is_signed, int nthreads)
{
    const dr_call c = {.src = src, .itemsize = itemsize, .out = out, .k = k, .shift = shift, .bits = bits,
                       .is_signed = is_signed, .affine = w, .stream = (size_t)k * n >= DR_STREAM_BYTES};
    dr_parallel(dr_loops_for(target)->affine[itemsize == 1 ? 0 : 1], &c, n, nthreads);
}

/* The narrow-table path over words of itemsize 1 or 2, one output channel. */
static void dr_narrow_render(int target, int itemsize, const void *src, size_t n, const dr_narrow *t, uint8_t *out,
                             int shift, int bits, int is_signed, int nthreads)
{
    const dr_call c = {.src = src, .itemsize = itemsize, .out = out, .k = 1, .shift = shift, .bits = bits,
                       .is_signed = is_signed, .narrow = t, .stream = n >= DR_STREAM_BYTES};
    dr_parallel(dr_loops_for(target)->narrow, &c, n, nthreads);
}

/* The fused float64 path.  kind: 'f' for float words (itemsize 4 or 8), 'u' for integer words
 * (itemsize 1, 2 or 4) holding `bits` stored bits from `shift` on. */
static void dr_arith(int target, int kind, int itemsize, const void *src, size_t n, const dr_window *w, int k,
                     uint8_t *out, int shift, int bits, int is_signed, int nthreads)
{
    int values = kind == 'f' ? (itemsize == 4 ? DR_VALUES_F32 : DR_VALUES_F64)
                             : (itemsize == 1 ? DR_VALUES_U8 : itemsize == 2 ? DR_VALUES_U16 : DR_VALUES_U32);
    const dr_call c = {.src = src, .itemsize = itemsize, .out = out, .k = k, .shift = shift,
                       .bits = bits, .is_signed = is_signed, .windows = w};
    dr_parallel(dr_loops_for(target)->arith[values], &c, n, nthreads);
}

#endif
