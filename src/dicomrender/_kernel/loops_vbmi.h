/* The two loops only AVX-512 VBMI has: three windows to RGB in one pass, and the narrow-table
 * lookup as a byte permute.  Everything else on that target runs the AVX-512 loops; these
 * reuse their stored-bits extraction (dr_load_stored_avx512, loops.h), so kernel.h includes
 * this after the AVX-512 pass. */
#ifndef DICOMRENDER_LOOPS_VBMI_H
#define DICOMRENDER_LOOPS_VBMI_H

#include "simd_x86.h"

#define DR_VBMI_ATTR __attribute__((target("avx512f,avx512bw,avx512vl,avx512vbmi,fma")))

/* ---- three windows to RGB ----------------------------------------------------
 * Per 64 pixels, each channel's 64 results come out of signed packs as two
 * vectors of 32 words in pixel order (r0: pixels 0..31, r1: 32..63).  Unsigned
 * packs then pair them as RG0 = (r0, g0), RG1 = (r1, g1) and BB = (b0, b1), and
 * four byte permutes write the 192 interleaved bytes: output vector 0 (pixels
 * 0..21) takes only RG0 and BB, vector 2 (42..63) only RG1 and BB, vector 1 all
 * three.  When all three windows share a pivot, d is computed once. */

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

/* Fills dr_rgb; kernel.h calls it once at import, before any loop can run on several threads. */
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

DR_VBMI_ATTR DR_INLINE void dr_affine_rgb_loop(const void *restrict src, const int format, size_t n,
                                               const dr_affine *restrict w, uint8_t *restrict out, int shift,
                                               int bits, int is_signed, const int stream)
{
    const int itemsize = dr_format_itemsize(format);
    const dr_bits_avx512 extract = dr_make_bits_avx512(shift, bits);
    const __m512i magic = _mm512_set1_epi16(0x4B00);
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
    size_t i = stream ? dr_align_head(out, 3, 64, n) : 0;
    dr_affine_range(src, itemsize, 0, i, w, 3, out, shift, bits, is_signed);
    for (; i + 64 <= n; i += 64) {
        __m512i e0, e1;
        dr_load_stored_avx512(src, format, i, &extract, &e0, &e1);
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
    dr_affine_range(src, itemsize, i, n, w, 3, out, shift, bits, is_signed);
}

/* Three windows of one word size, one loop per word format. */
DR_VBMI_ATTR DR_INLINE void dr_affine_rgb_formats(const dr_call *c, size_t start, size_t n, const int itemsize)
{
    const void *src = dr_src(c, start);
    uint8_t *out = dr_out(c, start);
    const dr_affine *w = c->affine;
    int shift = c->shift, bits = c->bits, is_signed = c->is_signed;
    switch (dr_word_format(itemsize, shift, bits, is_signed)) {
    case DR_W16_UNSIGNED_FULL: dr_affine_rgb_loop(src, DR_W16_UNSIGNED_FULL, n, w, out, shift, bits, is_signed, c->stream); break;
    case DR_W16_UNSIGNED_PART: dr_affine_rgb_loop(src, DR_W16_UNSIGNED_PART, n, w, out, shift, bits, is_signed, c->stream); break;
    case DR_W16_SIGNED_FULL: dr_affine_rgb_loop(src, DR_W16_SIGNED_FULL, n, w, out, shift, bits, is_signed, c->stream); break;
    case DR_W16_SIGNED_PART: dr_affine_rgb_loop(src, DR_W16_SIGNED_PART, n, w, out, shift, bits, is_signed, c->stream); break;
    case DR_W16_UNSIGNED_LOW: dr_affine_rgb_loop(src, DR_W16_UNSIGNED_LOW, n, w, out, shift, bits, is_signed, c->stream); break;
    case DR_W8_SIGNED_PART: dr_affine_rgb_loop(src, DR_W8_SIGNED_PART, n, w, out, shift, bits, is_signed, c->stream); break;
    case DR_W8_UNSIGNED_LOW: dr_affine_rgb_loop(src, DR_W8_UNSIGNED_LOW, n, w, out, shift, bits, is_signed, c->stream); break;
    default: dr_affine_rgb_loop(src, DR_W8_UNSIGNED_PART, n, w, out, shift, bits, is_signed, c->stream); break;
    }
}

/* The affine entry points of this target: three windows here, any other count on the AVX-512 loops. */
DR_VBMI_ATTR static void dr_affine_u8_avx512vbmi(const dr_call *c, size_t start, size_t n)
{
    if (c->k == 3) dr_affine_rgb_formats(c, start, n, 1);
    else dr_affine_u8_avx512(c, start, n);
}

DR_VBMI_ATTR static void dr_affine_u16_avx512vbmi(const dr_call *c, size_t start, size_t n)
{
    if (c->k == 3) dr_affine_rgb_formats(c, start, n, 2);
    else dr_affine_u16_avx512(c, start, n);
}

/* ---- narrow tables -----------------------------------------------------------
 * Per 64 pixels: the stored bits extracted as for the affine loop, index = min(lane -sat low, range)
 * in 16-bit lanes, packed to bytes, then one byte permute over a 128-entry table (two and a blend on
 * bit 7 for up to 256 entries). */
DR_VBMI_ATTR DR_INLINE void dr_narrow_loop(const void *restrict src, const int format, size_t n,
                                           const dr_narrow *restrict t, uint8_t *restrict out, int shift, int bits,
                                           int is_signed, const int wide, const int stream)
{
    const int itemsize = dr_format_itemsize(format);
    const dr_bits_avx512 extract = dr_make_bits_avx512(shift, bits);
    const __m512i low = _mm512_set1_epi16((short)t->low), range = _mm512_set1_epi16((short)t->range);
    const __m512i t0 = _mm512_loadu_si512((const void *)t->table), t1 = _mm512_loadu_si512((const void *)(t->table + 64));
    const __m512i t2 = _mm512_loadu_si512((const void *)(t->table + 128));
    const __m512i t3 = _mm512_loadu_si512((const void *)(t->table + 192));
    size_t i = stream ? dr_align_head(out, 1, 64, n) : 0;
    dr_narrow_range(src, itemsize, 0, i, t, out, shift, bits, is_signed);
    for (; i + 64 <= n; i += 64) {
        __m512i e0, e1;
        dr_load_stored_avx512(src, format, i, &extract, &e0, &e1);
        e0 = _mm512_min_epu16(_mm512_subs_epu16(e0, low), range);
        e1 = _mm512_min_epu16(_mm512_subs_epu16(e1, low), range);
        __m512i index = dr_fix_order_512(_mm512_packus_epi16(e0, e1));
        __m512i bytes = _mm512_permutex2var_epi8(t0, index, t1);
        if (wide)
            bytes = _mm512_mask_blend_epi8(_mm512_movepi8_mask(index), bytes, _mm512_permutex2var_epi8(t2, index, t3));
        if (stream) _mm512_stream_si512((void *)(out + i), bytes);
        else _mm512_storeu_si512((void *)(out + i), bytes);
    }
    if (stream) _mm_sfence();
    dr_narrow_range(src, itemsize, i, n, t, out, shift, bits, is_signed);
}

/* One loop per word format, for a literal `wide` (a table of more than 128 entries). */
DR_VBMI_ATTR DR_INLINE void dr_narrow_formats(const dr_call *c, const void *src, size_t n, uint8_t *out, const int wide)
{
    const dr_narrow *t = c->narrow;
    int shift = c->shift, bits = c->bits, is_signed = c->is_signed;
    switch (dr_word_format(c->itemsize, shift, bits, is_signed)) {
    case DR_W16_UNSIGNED_FULL: dr_narrow_loop(src, DR_W16_UNSIGNED_FULL, n, t, out, shift, bits, is_signed, wide, c->stream); break;
    case DR_W16_UNSIGNED_PART: dr_narrow_loop(src, DR_W16_UNSIGNED_PART, n, t, out, shift, bits, is_signed, wide, c->stream); break;
    case DR_W16_SIGNED_FULL: dr_narrow_loop(src, DR_W16_SIGNED_FULL, n, t, out, shift, bits, is_signed, wide, c->stream); break;
    case DR_W16_SIGNED_PART: dr_narrow_loop(src, DR_W16_SIGNED_PART, n, t, out, shift, bits, is_signed, wide, c->stream); break;
    case DR_W16_UNSIGNED_LOW: dr_narrow_loop(src, DR_W16_UNSIGNED_LOW, n, t, out, shift, bits, is_signed, wide, c->stream); break;
    case DR_W8_SIGNED_PART: dr_narrow_loop(src, DR_W8_SIGNED_PART, n, t, out, shift, bits, is_signed, wide, c->stream); break;
    case DR_W8_UNSIGNED_LOW: dr_narrow_loop(src, DR_W8_UNSIGNED_LOW, n, t, out, shift, bits, is_signed, wide, c->stream); break;
    default: dr_narrow_loop(src, DR_W8_UNSIGNED_PART, n, t, out, shift, bits, is_signed, wide, c->stream); break;
    }
}

DR_VBMI_ATTR static void dr_narrow_avx512vbmi(const dr_call *c, size_t start, size_t n)
{
    if (c->narrow->range < 128) dr_narrow_formats(c, dr_src(c, start), n, dr_out(c, start), 0);
    else dr_narrow_formats(c, dr_src(c, start), n, dr_out(c, start), 1);
}

#endif
