/* The AVX-512 target (F, BW, VL): its name, its attribute and the vector operations loops.h is
 * written in, on 512-bit vectors (32 16-bit lanes).  kernel.h includes this, then loops.h, then
 * simd_ops_end.h, which forgets these names for the next target. */
#include "simd_x86.h"

#define DR_SUFFIX avx512
#define DR_ATTR __attribute__((target("avx512f,avx512bw,avx512vl,fma")))
#define DR_LANES16 32
/* With 32 vector registers, d of every window stays live when the windows share a pivot. */
#define DR_SHARE_D 1

#define DR_VI __m512i
#define DR_VF __m512
#define DR_VCOUNT __m128i /* a shift count */

#define DRV_COUNT(n) _mm_cvtsi32_si128(n)
#define DRV_LOAD_WORDS(p) _mm512_loadu_si512((const void *)(p))
#define DRV_LOAD_BYTES(p) _mm512_cvtepu8_epi16(_mm256_loadu_si256((const __m256i *)(p))) /* widened to 16 bits */
#define DRV_SET16 _mm512_set1_epi16
#define DRV_SETF _mm512_set1_ps
#define DRV_AND _mm512_and_si512
#define DRV_XOR _mm512_xor_si512
#define DRV_SRL16 _mm512_srl_epi16
#define DRV_SLL16 _mm512_sll_epi16
#define DRV_SRA16 _mm512_sra_epi16
/* 16-bit lanes interleaved with `high` as floats (within each 128-bit lane, as the packs undo it). */
#define DRV_WIDEN_LO(x, high) _mm512_castsi512_ps(_mm512_unpacklo_epi16(x, high))
#define DRV_WIDEN_HI(x, high) _mm512_castsi512_ps(_mm512_unpackhi_epi16(x, high))
#define DRV_SUBF _mm512_sub_ps
#define DRV_FMA _mm512_fmadd_ps
#define DRV_TO_INT32 _mm512_cvttps_epi32
#define DRV_PACK_INT16 _mm512_packs_epi32
/* Two vectors of saturated int16 to bytes, in pixel order. */
#define DRV_PACK_BYTES(a, b) dr_fix_order_512(_mm512_packus_epi16(a, b))
#define DRV_STORE(p, x) _mm512_storeu_si512((void *)(p), x)
#define DRV_STREAM(p, x) _mm512_stream_si512((void *)(p), x)
#define DRV_STREAM_END _mm_sfence
#define DRV_RGB3 dr_rgb3_512
#define DRV_RGB3_MASKS dr_rgb3_masks_512

#ifndef DICOMRENDER_SIMD_OPS_AVX512_H
#define DICOMRENDER_SIMD_OPS_AVX512_H
/* The packs work within 128-bit lanes: 64-bit blocks back in pixel order. */
DR_ATTR DR_INLINE __m512i dr_fix_order_512(__m512i x)
{
    return _mm512_permutexvar_epi64(_mm512_setr_epi64(0, 2, 4, 6, 1, 3, 5, 7), x);
}

/* Three channel vectors (bytes in pixel order) to interleaved RGB, as dr_rgb3_256 does. */
DR_ATTR DR_INLINE void dr_rgb3_512(uint8_t *out, const __m512i *masks, __m512i r, __m512i g, __m512i b)
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

DR_ATTR static inline void dr_rgb3_masks_512(__m512i *masks)
{
    for (int q = 0; q < 9; q++) masks[q] = _mm512_broadcast_i32x4(_mm_loadu_si128((const __m128i *)dr_rgb_shuffle[q / 3][q % 3]));
}
#endif
