/* The AVX2 target: its name, its attribute and the vector operations loops.h is written in,
 * on 256-bit vectors (sixteen 16-bit lanes).  kernel.h includes this, then loops.h, then
 * simd_ops_end.h, which forgets these names for the next target. */
#include "simd_x86.h"

#define DR_SUFFIX avx2
#define DR_ATTR __attribute__((target("avx2,fma")))
#define DR_LANES16 16
/* Windows sharing a pivot share d, as on AVX-512: three windows of a cached slice took 83 us with d
 * subtracted again per window and 77 us shared (Intel Xeon family 6 model 207 forced to this target),
 * the spills of 16 vector registers notwithstanding. */
#define DR_SHARE_D 1

#define DR_VI __m256i
#define DR_VF __m256
#define DR_VCOUNT __m128i /* a shift count */

#define DRV_COUNT(n) _mm_cvtsi32_si128(n)
#define DRV_LOAD_WORDS(p) _mm256_loadu_si256((const __m256i *)(p))
#define DRV_LOAD_BYTES(p) _mm256_cvtepu8_epi16(_mm_loadu_si128((const __m128i *)(p))) /* widened to 16 bits */
#define DRV_SET16 _mm256_set1_epi16
#define DRV_SETF _mm256_set1_ps
#define DRV_AND _mm256_and_si256
#define DRV_XOR _mm256_xor_si256
#define DRV_SRL16 _mm256_srl_epi16
#define DRV_SLL16 _mm256_sll_epi16
#define DRV_SRA16 _mm256_sra_epi16
/* 16-bit lanes interleaved with `high` as floats (within each 128-bit lane, as the packs undo it). */
#define DRV_WIDEN_LO(x, high) _mm256_castsi256_ps(_mm256_unpacklo_epi16(x, high))
#define DRV_WIDEN_HI(x, high) _mm256_castsi256_ps(_mm256_unpackhi_epi16(x, high))
#define DRV_SUBF _mm256_sub_ps
#define DRV_FMA _mm256_fmadd_ps
#define DRV_TO_INT32 _mm256_cvttps_epi32
#define DRV_PACK_INT16 _mm256_packs_epi32
/* Two vectors of saturated int16 to bytes, in pixel order. */
#define DRV_PACK_BYTES(a, b) _mm256_permute4x64_epi64(_mm256_packus_epi16(a, b), 0xD8)
#define DRV_STORE(p, x) _mm256_storeu_si256((__m256i *)(p), x)
#define DRV_STREAM(p, x) _mm256_stream_si256((__m256i *)(p), x)
#define DRV_STREAM_END _mm_sfence
#define DRV_RGB3 dr_rgb3_256
#define DRV_RGB3_MASKS dr_rgb3_masks_256

#ifndef DICOMRENDER_SIMD_OPS_AVX2_H
#define DICOMRENDER_SIMD_OPS_AVX2_H
/* Three channel vectors (bytes in pixel order) to interleaved RGB, in registers: the byte shuffles
 * of dr_rgb_shuffle build, in each 128-bit lane, output block q (16 bytes) of that lane's 16 pixels;
 * whole lanes are then moved into place.  `masks` holds dr_rgb_shuffle broadcast to every lane. */
DR_ATTR DR_INLINE void dr_rgb3_256(uint8_t *out, const __m256i *masks, __m256i r, __m256i g, __m256i b)
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

DR_ATTR static inline void dr_rgb3_masks_256(__m256i *masks)
{
    for (int q = 0; q < 9; q++) masks[q] = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)dr_rgb_shuffle[q / 3][q % 3]));
}
#endif
