/* The narrow-table lookup on NEON: per 16 pixels, the stored bits extracted as for the affine loop
 * (dr_load_stored_neon, loops.h), index = min(lane -sat low, range) narrowed to bytes, then table
 * lookups of 64 entries each (vqtbl4q_u8; vqtbx4q_u8 for the next 64, which keeps the lanes whose
 * index is beyond its quarter).  The table is a slice of the exact one, so the path is exact by
 * construction.  kernel.h includes this after the NEON pass through loops.h. */
#ifndef DICOMRENDER_LOOPS_NEON_H
#define DICOMRENDER_LOOPS_NEON_H

/* `quarters`: how many 64-entry quarters of the table the range reaches (1..4), a literal. */
DR_INLINE void dr_narrow_loop_neon(const void *restrict src, const int format, size_t n, const dr_narrow *restrict t,
                                   uint8_t *restrict out, int shift, int bits, int is_signed, const int quarters)
{
    const int itemsize = dr_format_itemsize(format);
    const dr_bits_neon extract = dr_make_bits_neon(shift, bits);
    const uint16x8_t low = vdupq_n_u16(t->low), range = vdupq_n_u16(t->range);
    uint8x16x4_t q[4];
    for (int j = 0; j < 4; j++) q[j] = vld1q_u8_x4(t->table + 64 * j);
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        uint16x8_t e0, e1;
        dr_load_stored_neon(src, format, i, &extract, &e0, &e1);
        e0 = vminq_u16(vqsubq_u16(e0, low), range);
        e1 = vminq_u16(vqsubq_u16(e1, low), range);
        uint8x16_t index = vcombine_u8(vmovn_u16(e0), vmovn_u16(e1));
        uint8x16_t bytes = vqtbl4q_u8(q[0], index);
        if (quarters > 1) bytes = vqtbx4q_u8(bytes, q[1], vsubq_u8(index, vdupq_n_u8(64)));
        if (quarters > 2) bytes = vqtbx4q_u8(bytes, q[2], vsubq_u8(index, vdupq_n_u8(128)));
        if (quarters > 3) bytes = vqtbx4q_u8(bytes, q[3], vsubq_u8(index, vdupq_n_u8(192)));
        vst1q_u8(out + i, bytes);
    }
    dr_narrow_range(src, itemsize, i, n, t, out, shift, bits, is_signed);
}

DR_INLINE void dr_narrow_formats_neon(const dr_call *c, const void *src, size_t n, uint8_t *out, const int quarters)
{
    const dr_narrow *t = c->narrow;
    int shift = c->shift, bits = c->bits, is_signed = c->is_signed;
    switch (dr_word_format(c->itemsize, shift, bits, is_signed)) {
    case DR_W16_UNSIGNED_FULL: dr_narrow_loop_neon(src, DR_W16_UNSIGNED_FULL, n, t, out, shift, bits, is_signed, quarters); break;
    case DR_W16_UNSIGNED_PART: dr_narrow_loop_neon(src, DR_W16_UNSIGNED_PART, n, t, out, shift, bits, is_signed, quarters); break;
    case DR_W16_SIGNED_FULL: dr_narrow_loop_neon(src, DR_W16_SIGNED_FULL, n, t, out, shift, bits, is_signed, quarters); break;
    case DR_W16_SIGNED_PART: dr_narrow_loop_neon(src, DR_W16_SIGNED_PART, n, t, out, shift, bits, is_signed, quarters); break;
    case DR_W16_UNSIGNED_LOW: dr_narrow_loop_neon(src, DR_W16_UNSIGNED_LOW, n, t, out, shift, bits, is_signed, quarters); break;
    case DR_W8_SIGNED_PART: dr_narrow_loop_neon(src, DR_W8_SIGNED_PART, n, t, out, shift, bits, is_signed, quarters); break;
    case DR_W8_UNSIGNED_LOW: dr_narrow_loop_neon(src, DR_W8_UNSIGNED_LOW, n, t, out, shift, bits, is_signed, quarters); break;
    default: dr_narrow_loop_neon(src, DR_W8_UNSIGNED_PART, n, t, out, shift, bits, is_signed, quarters); break;
    }
}

static void dr_narrow_neon(const dr_call *c, size_t start, size_t n)
{
    const void *src = dr_src(c, start);
    uint8_t *out = dr_out(c, start);
    switch (c->narrow->range >> 6) {
    case 0: dr_narrow_formats_neon(c, src, n, out, 1); break;
    case 1: dr_narrow_formats_neon(c, src, n, out, 2); break;
    case 2: dr_narrow_formats_neon(c, src, n, out, 3); break;
    default: dr_narrow_formats_neon(c, src, n, out, 4); break;
    }
}

#endif
