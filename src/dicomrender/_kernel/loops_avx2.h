/* The narrow-table lookup on AVX2, which has no byte permute over more than 16 entries: per 32
 * pixels, the stored bits extracted as for the affine loop (dr_load_stored_avx2, loops.h), index =
 * min(lane -sat low, range) packed to bytes, then one vpshufb per 16-entry sub-table the range
 * reaches.  For sub-table s the index minus 16 s, plus 0x70 with unsigned saturation, is 0x70..0x7F
 * (bit 7 clear, low nibble the entry) for the indices of that sub-table and at least 0x80 (vpshufb
 * gives 0) for every other, so OR-ing the lookups gives each index its own entry.  The table is a
 * slice of the exact one, so the path is exact by construction.  kernel.h includes this after the
 * AVX2 pass through loops.h. */
#ifndef DICOMRENDER_LOOPS_AVX2_H
#define DICOMRENDER_LOOPS_AVX2_H

#define DR_AVX2_ATTR __attribute__((target("avx2,fma")))

DR_AVX2_ATTR DR_INLINE void dr_narrow_loop_avx2(const void *restrict src, const int format, size_t n,
                                                const dr_narrow *restrict t, uint8_t *restrict out, int shift,
                                                int bits, int is_signed, int stream)
{
    const int itemsize = dr_format_itemsize(format);
    const dr_bits_avx2 extract = dr_make_bits_avx2(shift, bits);
    const __m256i low = _mm256_set1_epi16((short)t->low), range = _mm256_set1_epi16((short)t->range);
    const __m256i bias = _mm256_set1_epi8(0x70), step = _mm256_set1_epi8(16);
    const int subtables = t->range / 16 + 1;
    __m256i table[16];
    for (int s = 0; s < subtables; s++)
        table[s] = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)(t->table + 16 * s)));
    size_t i = stream ? dr_align_head(out, 1, 32, n) : 0;
    dr_narrow_range(src, itemsize, 0, i, t, out, shift, bits, is_signed);
    for (; i + 32 <= n; i += 32) {
        __m256i e0, e1;
        dr_load_stored_avx2(src, format, i, &extract, &e0, &e1);
        e0 = _mm256_min_epu16(_mm256_subs_epu16(e0, low), range);
        e1 = _mm256_min_epu16(_mm256_subs_epu16(e1, low), range);
        __m256i index = _mm256_permute4x64_epi64(_mm256_packus_epi16(e0, e1), 0xD8);
        __m256i bytes = _mm256_shuffle_epi8(table[0], _mm256_adds_epu8(index, bias));
        for (int s = 1; s < subtables; s++) {
            index = _mm256_sub_epi8(index, step);
            bytes = _mm256_or_si256(bytes, _mm256_shuffle_epi8(table[s], _mm256_adds_epu8(index, bias)));
        }
        if (stream) _mm256_stream_si256((__m256i *)(out + i), bytes);
        else _mm256_storeu_si256((__m256i *)(out + i), bytes);
    }
    if (stream) _mm_sfence();
    dr_narrow_range(src, itemsize, i, n, t, out, shift, bits, is_signed);
}

DR_AVX2_ATTR static void dr_narrow_avx2(const dr_call *c, size_t start, size_t n)
{
    const void *src = dr_src(c, start);
    uint8_t *out = dr_out(c, start);
    const dr_narrow *t = c->narrow;
    int shift = c->shift, bits = c->bits, is_signed = c->is_signed, stream = c->stream;
    switch (dr_word_format(c->itemsize, shift, bits, is_signed)) {
    case DR_W16_UNSIGNED_FULL: dr_narrow_loop_avx2(src, DR_W16_UNSIGNED_FULL, n, t, out, shift, bits, is_signed, stream); break;
    case DR_W16_UNSIGNED_PART: dr_narrow_loop_avx2(src, DR_W16_UNSIGNED_PART, n, t, out, shift, bits, is_signed, stream); break;
    case DR_W16_SIGNED_FULL: dr_narrow_loop_avx2(src, DR_W16_SIGNED_FULL, n, t, out, shift, bits, is_signed, stream); break;
    case DR_W16_SIGNED_PART: dr_narrow_loop_avx2(src, DR_W16_SIGNED_PART, n, t, out, shift, bits, is_signed, stream); break;
    case DR_W16_UNSIGNED_LOW: dr_narrow_loop_avx2(src, DR_W16_UNSIGNED_LOW, n, t, out, shift, bits, is_signed, stream); break;
    case DR_W8_SIGNED_PART: dr_narrow_loop_avx2(src, DR_W8_SIGNED_PART, n, t, out, shift, bits, is_signed, stream); break;
    case DR_W8_UNSIGNED_LOW: dr_narrow_loop_avx2(src, DR_W8_UNSIGNED_LOW, n, t, out, shift, bits, is_signed, stream); break;
    default: dr_narrow_loop_avx2(src, DR_W8_UNSIGNED_PART, n, t, out, shift, bits, is_signed, stream); break;
    }
}

#endif
