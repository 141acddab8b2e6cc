/* The Arm NEON target (aarch64, Advanced SIMD): its name and the vector operations loops.h is
 * written in, on 128-bit vectors (eight 16-bit lanes).  kernel.h includes this, then loops.h,
 * then loops_neon.h (the narrow-table lookup), then simd_ops_end.h.
 *
 * The same exactness argument as the x86 loops: the stored bits are extracted in 16-bit lanes
 * (biased by 0x8000 when signed), widened by interleaving with 0x4B00 into the float 2**23 + lane
 * exactly, d is one exact float subtraction, y = d * a + b is one fused multiply-add (vfmaq_f32: one
 * rounding, the form the engine's proof evaluates for the SIMD loops), the conversion truncates
 * (vcvtq_s32_f32; the host keeps |y| < 2**30) and the saturating narrowings clip to 0..255 exactly
 * as dr_affine_px does.  Advanced SIMD is part of every aarch64 CPU, so there is no run-time check
 * and no target attribute. */
#include <arm_neon.h>

#include "simd_common.h"

#define DR_SUFFIX neon
#define DR_ATTR
#define DR_LANES16 8
/* With 32 vector registers, d of every window stays live when the windows share a pivot. */
#define DR_SHARE_D 1

#define DR_VI uint16x8_t    /* 16-bit lanes; also the carrier of packed int16 and bytes */
#define DR_VF float32x4_t
#define DR_VCOUNT int16x8_t /* a shift count (NEON shifts right by a negative left shift) */

#define DRV_COUNT(n) vdupq_n_s16((int16_t)(n))
#define DRV_LOAD_WORDS(p) vld1q_u16((const uint16_t *)(p))
#define DRV_LOAD_BYTES(p) vmovl_u8(vld1_u8((const uint8_t *)(p))) /* widened to 16 bits */
#define DRV_SET16(x) vdupq_n_u16((uint16_t)(x))
#define DRV_SETF vdupq_n_f32
#define DRV_AND vandq_u16
#define DRV_XOR veorq_u16
#define DRV_SRL16(x, count) vshlq_u16(x, vnegq_s16(count))
#define DRV_SLL16(x, count) vshlq_u16(x, count)
#define DRV_SRA16(x, count) vreinterpretq_u16_s16(vshlq_s16(vreinterpretq_s16_u16(x), vnegq_s16(count)))
/* 16-bit lanes interleaved with `high` as floats: lanes 0..3 and 4..7 (little-endian lanes). */
#define DRV_WIDEN_LO(x, high) vreinterpretq_f32_u16(vzip1q_u16(x, high))
#define DRV_WIDEN_HI(x, high) vreinterpretq_f32_u16(vzip2q_u16(x, high))
#define DRV_SUBF vsubq_f32
#define DRV_FMA(x, a, b) vfmaq_f32(b, x, a) /* b + x * a, rounded once */
#define DRV_TO_INT32 vcvtq_s32_f32        /* toward zero */
#define DRV_PACK_INT16(lo, hi) vreinterpretq_u16_s16(vcombine_s16(vqmovn_s32(lo), vqmovn_s32(hi)))
/* Two vectors of saturated int16 to 16 bytes, in pixel order. */
#define DRV_PACK_BYTES(a, b)                                                                           \
    vreinterpretq_u16_u8(vcombine_u8(vqmovun_s16(vreinterpretq_s16_u16(a)), vqmovun_s16(vreinterpretq_s16_u16(b))))
#define DRV_STORE(p, x) vst1q_u8((uint8_t *)(p), vreinterpretq_u8_u16(x))
/* No non-temporal store intrinsic: streaming outputs are stored normally. */
#define DRV_STREAM DRV_STORE
#define DRV_STREAM_END() ((void)0)
#define DRV_RGB3 dr_rgb3_neon
#define DRV_RGB3_MASKS dr_rgb3_masks_neon

#ifndef DICOMRENDER_SIMD_OPS_NEON_H
#define DICOMRENDER_SIMD_OPS_NEON_H
/* Three channel vectors of 16 bytes to 48 interleaved RGB bytes: one structured store. */
DR_INLINE void dr_rgb3_neon(uint8_t *out, const uint16x8_t *masks, uint16x8_t r, uint16x8_t g, uint16x8_t b)
{
    (void)masks;
    uint8x16x3_t rgb = {{vreinterpretq_u8_u16(r), vreinterpretq_u8_u16(g), vreinterpretq_u8_u16(b)}};
    vst3q_u8(out, rgb);
}

static inline void dr_rgb3_masks_neon(uint16x8_t *masks) { (void)masks; }
#endif
