/* What the vector targets (x86 and Arm) share: how the stored bits sit in a word (the extraction
 * mode), the alignment of streaming stores, and the generic interleave of two and four channels.
 *
 * The vector loops work on 16-bit lanes: the stored bits are extracted in 16-bit lanes
 * (sign-extended values are biased by 0x8000 to stay unsigned), then each lane is widened
 * by interleaving it with the high half 0x4B00, which makes the float 2**23 + lane
 * exactly, so one exact subtraction of 2**23 + bias + pivot yields d.  Conversion to int32
 * truncates (the host keeps |y| < 2**30), and the signed-saturating packs clip to 0..255
 * exactly as dr_affine_px does. */
#ifndef DICOMRENDER_SIMD_COMMON_H
#define DICOMRENDER_SIMD_COMMON_H

#include "scalar.h"

/* How the stored bits are taken from a 16-bit lane. */
#define DR_MODE_UNSIGNED_FULL 0 /* every bit of the word, unsigned */
#define DR_MODE_UNSIGNED_PART 1 /* (word >> shift) & mask */
#define DR_MODE_SIGNED_FULL 2   /* every bit, two's complement */
#define DR_MODE_SIGNED_PART 3   /* shift, mask and sign-extend */
#define DR_MODE_UNSIGNED_LOW 4  /* word & mask (the usual 12-bit CT word) */

/* The word formats the vector loops are specialised for: word size and extraction mode.  Bytes
 * are zero-extended into 16-bit lanes, so for them only the PART and LOW modes apply. */
enum {
    DR_W16_UNSIGNED_FULL,
    DR_W16_UNSIGNED_PART,
    DR_W16_SIGNED_FULL,
    DR_W16_SIGNED_PART,
    DR_W16_UNSIGNED_LOW,
    DR_W8_SIGNED_PART,
    DR_W8_UNSIGNED_LOW,
    DR_W8_UNSIGNED_PART
};

static inline int dr_word_format(int itemsize, int shift, int bits, int is_signed)
{
    int full = shift == 0 && bits == itemsize * 8;
    if (itemsize == 1) return is_signed ? DR_W8_SIGNED_PART : (shift == 0 ? DR_W8_UNSIGNED_LOW : DR_W8_UNSIGNED_PART);
    if (is_signed) return full ? DR_W16_SIGNED_FULL : DR_W16_SIGNED_PART;
    return full ? DR_W16_UNSIGNED_FULL : (shift == 0 ? DR_W16_UNSIGNED_LOW : DR_W16_UNSIGNED_PART);
}

DR_INLINE int dr_format_itemsize(const int format) { return format >= DR_W8_SIGNED_PART ? 1 : 2; }

DR_INLINE int dr_format_mode(const int format)
{
    switch (format) {
    case DR_W8_SIGNED_PART: return DR_MODE_SIGNED_PART;
    case DR_W8_UNSIGNED_LOW: return DR_MODE_UNSIGNED_LOW;
    case DR_W8_UNSIGNED_PART: return DR_MODE_UNSIGNED_PART;
    default: return format; /* the 16-bit formats are numbered as the modes */
    }
}

/* The float that d is measured from: the widened lane is 2**23 + stored + bias. */
static inline float dr_affine_origin(const dr_affine *w, int is_signed)
{
    return (float)(8388608 + (is_signed ? 32768 : 0) + w->pivot);
}

/* First index i < n from which out + k * i is aligned to `align` bytes (k = 1 or 3). */
static inline size_t dr_align_head(const uint8_t *out, int k, size_t align, size_t n)
{
    size_t miss = (size_t)(-(uintptr_t)out) & (align - 1), head;
    if (k == 1) head = miss;
    else head = (miss * (align == 64 ? 43 : 11)) & (align - 1); /* 3 * 43 = 1 mod 64, 3 * 11 = 1 mod 32 */
    return head < n ? head : n;
}

/* Interleave k channel blocks of `count` bytes into out (pixel-major); three channels have
 * the targets' RGB interleave, this serves two and four. */
static inline void dr_interleave(uint8_t (*tmp)[64], int k, size_t count, uint8_t *restrict out)
{
    for (size_t p = 0; p < count; p++)
        for (int j = 0; j < k; j++) out[(size_t)k * p + j] = tmp[j][p];
}

#endif
