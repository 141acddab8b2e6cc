/* The loops of one instruction-set target, written once and instantiated per target.
 *
 * kernel.h includes this file once per target, after the header that names the target:
 *   DR_SUFFIX    the suffix of every function defined here (dr_gather_avx2, ...)
 *   DR_ATTR      the target attribute they carry (empty for the baseline)
 *   DR_LANES16   16-bit lanes per vector, with the vector operations (simd_ops_*.h); undefined
 *                for the baseline, whose affine loop is the portable one
 * The entry points are dr_loop functions (scalar.h) that kernel.h lists in its dispatch table:
 * dr_gather_<suffix>, dr_arith_{u8,u16,u32,f32,f64}_<suffix> and dr_affine_{u8,u16}_<suffix>.
 * The gather and fused float64 loops are plain C that the compiler vectorises for the target;
 * the affine loop of the vector targets uses the vector operations explicitly, with one fused
 * multiply-add (see dr_affine in scalar.h).
 *
 * Word size, mode and channel count are passed to the always-inlined loops as literals, so the
 * compiler specialises one copy of each loop per combination.  The fused float64 loops get a
 * function per value type: sharing one, they ran 20 to 30 % slower on AVX2 and AVX-512. */
#ifndef DR_NAME
#define DR_CAT_(name, suffix) name##_##suffix
#define DR_CAT(name, suffix) DR_CAT_(name, suffix)
#define DR_NAME(name) DR_CAT(name, DR_SUFFIX)
#endif

/* ---- lookup-table gather ------------------------------------------------- */

DR_ATTR DR_INLINE void DR_NAME(dr_gather_loop)(const void *restrict src, const int itemsize, size_t n,
                                               const uint8_t *restrict tables, size_t table_size, int k,
                                               uint8_t *restrict out, int shift, uint32_t mask)
{
    if (k == 1 && itemsize == 2) {
        dr_gather1_words16((const uint16_t *)src, n, tables, out, shift, mask);
    } else if (k == 1) {
        for (size_t i = 0; i < n; i++) out[i] = tables[(dr_word(src, itemsize, i) >> shift) & mask];
    } else if (k == 3) {
        const uint8_t *t0 = tables, *t1 = tables + table_size, *t2 = tables + 2 * table_size;
        for (size_t i = 0; i < n; i++) {
            uint32_t v = (dr_word(src, itemsize, i) >> shift) & mask;
            out[3 * i] = t0[v];
            out[3 * i + 1] = t1[v];
            out[3 * i + 2] = t2[v];
        }
    } else {
        for (size_t i = 0; i < n; i++) {
            uint32_t v = (dr_word(src, itemsize, i) >> shift) & mask;
            for (int j = 0; j < k; j++) out[(size_t)k * i + j] = tables[j * table_size + v];
        }
    }
}

/* The word size is not a literal here: the compiler unswitches the loops on it, and schedules them
 * as well as separate functions (a literal word size made the three-table loop 5 % slower). */
DR_ATTR static void DR_NAME(dr_gather)(const dr_call *c, size_t start, size_t n)
{
    DR_NAME(dr_gather_loop)(dr_src(c, start), c->itemsize, n, c->tables, c->table_size, c->k, dr_out(c, start), c->shift,
                            c->mask);
}

/* ---- fused float64 arithmetic -------------------------------------------- */

DR_ATTR DR_INLINE void DR_NAME(dr_arith_loop)(const void *restrict src, const int values, size_t n,
                                              const dr_window *restrict w, int k, uint8_t *restrict out,
                                              int shift, int bits, int is_signed)
{
    const uint64_t mask = bits >= 64 ? ~(uint64_t)0 : (((uint64_t)1 << bits) - 1);
    const int64_t sign = is_signed ? (int64_t)1 << (bits - 1) : 0;
    if (k == 1 && w->function != DR_SIGMOID) {
        const dr_ramp r = dr_make_ramp(w);
        if (w->invert)
            for (size_t i = 0; i < n; i++) out[i] = dr_ramp_px(dr_value(src, values, i, shift, mask, sign), &r, 1);
        else
            for (size_t i = 0; i < n; i++) out[i] = dr_ramp_px(dr_value(src, values, i, shift, mask, sign), &r, 0);
        return;
    }
    if (k == 3) { /* three windows apart: unrolled channels */
        for (size_t i = 0; i < n; i++) {
            double s = dr_value(src, values, i, shift, mask, sign);
            for (int j = 0; j < 3; j++) out[3 * i + j] = dr_pixel(s, &w[j]);
        }
        return;
    }
    for (size_t i = 0; i < n; i++) {
        double s = dr_value(src, values, i, shift, mask, sign);
        for (int j = 0; j < k; j++) out[(size_t)k * i + j] = dr_pixel(s, &w[j]);
    }
}

/* The entry points, one per value type (floats carry no stored bits: all 64 "bits" of a float64). */
DR_ATTR static void DR_NAME(dr_arith_f32)(const dr_call *c, size_t start, size_t n)
{
    DR_NAME(dr_arith_loop)(dr_src(c, start), DR_VALUES_F32, n, c->windows, c->k, dr_out(c, start), 0, 64, 0);
}

DR_ATTR static void DR_NAME(dr_arith_f64)(const dr_call *c, size_t start, size_t n)
{
    DR_NAME(dr_arith_loop)(dr_src(c, start), DR_VALUES_F64, n, c->windows, c->k, dr_out(c, start), 0, 64, 0);
}

DR_ATTR static void DR_NAME(dr_arith_u8)(const dr_call *c, size_t start, size_t n)
{
    DR_NAME(dr_arith_loop)(dr_src(c, start), DR_VALUES_U8, n, c->windows, c->k, dr_out(c, start), c->shift, c->bits,
                           c->is_signed);
}

DR_ATTR static void DR_NAME(dr_arith_u16)(const dr_call *c, size_t start, size_t n)
{
    DR_NAME(dr_arith_loop)(dr_src(c, start), DR_VALUES_U16, n, c->windows, c->k, dr_out(c, start), c->shift, c->bits,
                           c->is_signed);
}

DR_ATTR static void DR_NAME(dr_arith_u32)(const dr_call *c, size_t start, size_t n)
{
    DR_NAME(dr_arith_loop)(dr_src(c, start), DR_VALUES_U32, n, c->windows, c->k, dr_out(c, start), c->shift, c->bits,
                           c->is_signed);
}

/* ---- the proven float32 affine path -------------------------------------- */

#ifndef DR_LANES16
/* The portable loop: one pixel at a time, multiply then add (two roundings). */
DR_ATTR DR_INLINE void DR_NAME(dr_affine_loop)(const void *restrict src, const int itemsize, size_t n,
                                               const dr_affine *restrict w, int k, uint8_t *restrict out, int shift,
                                               int bits, int is_signed)
{
    if (k == 1) {
        for (size_t i = 0; i < n; i++) out[i] = dr_affine_px(dr_stored16(dr_word(src, itemsize, i), shift, bits, is_signed), w);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        int32_t v = dr_stored16(dr_word(src, itemsize, i), shift, bits, is_signed);
        for (int j = 0; j < k; j++) out[(size_t)k * i + j] = dr_affine_px(v, &w[j]);
    }
}

/* Three windows apart, as in the vector loops: a literal k lets the compiler unroll the channels. */
DR_ATTR DR_INLINE void DR_NAME(dr_affine_words)(const dr_call *c, size_t start, size_t n, const int itemsize)
{
    const void *src = dr_src(c, start);
    uint8_t *out = dr_out(c, start);
    if (c->k == 3) DR_NAME(dr_affine_loop)(src, itemsize, n, c->affine, 3, out, c->shift, c->bits, c->is_signed);
    else DR_NAME(dr_affine_loop)(src, itemsize, n, c->affine, c->k, out, c->shift, c->bits, c->is_signed);
}

#else
/* The stored bits of a vector of 16-bit lanes (biased by 32768 when signed). */
DR_ATTR DR_INLINE DR_VI DR_NAME(dr_extract)(DR_VI x, const int mode, DR_VCOUNT left, DR_VCOUNT right, DR_VCOUNT shift,
                                            DR_VI mask)
{
    switch (mode) {
    case DR_MODE_UNSIGNED_FULL: return x;
    case DR_MODE_UNSIGNED_PART: return DRV_AND(DRV_SRL16(x, shift), mask);
    case DR_MODE_UNSIGNED_LOW: return DRV_AND(x, mask);
    case DR_MODE_SIGNED_FULL: return DRV_XOR(x, DRV_SET16((short)0x8000));
    default: return DRV_XOR(DRV_SRA16(DRV_SLL16(x, left), right), DRV_SET16((short)0x8000));
    }
}

/* How to extract the stored bits of `bits` bits from `shift` on, for dr_load_stored. */
typedef struct {
    DR_VCOUNT left, right, shift;
    DR_VI mask;
} DR_NAME(dr_bits);

DR_ATTR DR_INLINE DR_NAME(dr_bits) DR_NAME(dr_make_bits)(int shift, int bits)
{
    DR_NAME(dr_bits) b;
    b.left = DRV_COUNT(16 - shift - bits);
    b.right = DRV_COUNT(16 - bits);
    b.shift = DRV_COUNT(shift);
    b.mask = DRV_SET16((short)((1u << bits) - 1));
    return b;
}

/* The stored bits of words i .. i + 2 * DR_LANES16 - 1 in two vectors of 16-bit lanes. */
DR_ATTR DR_INLINE void DR_NAME(dr_load_stored)(const void *restrict src, const int format, size_t i,
                                               const DR_NAME(dr_bits) *b, DR_VI *e0, DR_VI *e1)
{
    const int mode = dr_format_mode(format);
    if (dr_format_itemsize(format) == 2) {
        *e0 = DRV_LOAD_WORDS((const uint16_t *)src + i);
        *e1 = DRV_LOAD_WORDS((const uint16_t *)src + i + DR_LANES16);
    } else {
        *e0 = DRV_LOAD_BYTES((const uint8_t *)src + i);
        *e1 = DRV_LOAD_BYTES((const uint8_t *)src + i + DR_LANES16);
    }
    *e0 = DR_NAME(dr_extract)(*e0, mode, b->left, b->right, b->shift, b->mask);
    *e1 = DR_NAME(dr_extract)(*e1, mode, b->left, b->right, b->shift, b->mask);
}

/* Saturated int16 results of one channel for d = lo, hi (the widened lanes minus the origin). */
DR_ATTR DR_INLINE DR_VI DR_NAME(dr_channel)(DR_VF lo, DR_VF hi, DR_VF a, DR_VF b)
{
    return DRV_PACK_INT16(DRV_TO_INT32(DRV_FMA(lo, a, b)), DRV_TO_INT32(DRV_FMA(hi, a, b)));
}

/* Bytes, in pixel order, of one channel for the pixels widened into (l0, h0) and (l1, h1); when
 * the channels share a pivot, d[] holds those lanes minus the origin already. */
DR_ATTR DR_INLINE DR_VI DR_NAME(dr_bytes)(const DR_VF *d, int shared, DR_VF l0, DR_VF h0, DR_VF l1, DR_VF h1,
                                          DR_VF origin, DR_VF a, DR_VF b)
{
    if (shared) return DRV_PACK_BYTES(DR_NAME(dr_channel)(d[0], d[1], a, b), DR_NAME(dr_channel)(d[2], d[3], a, b));
    return DRV_PACK_BYTES(DR_NAME(dr_channel)(DRV_SUBF(l0, origin), DRV_SUBF(h0, origin), a, b),
                          DR_NAME(dr_channel)(DRV_SUBF(l1, origin), DRV_SUBF(h1, origin), a, b));
}

DR_ATTR DR_INLINE void DR_NAME(dr_affine_loop)(const void *restrict src, const int format, size_t n,
                                               const dr_affine *restrict w, const int k, uint8_t *restrict out,
                                               int shift, int bits, int is_signed, int stream)
{
    const int itemsize = dr_format_itemsize(format);
    const DR_NAME(dr_bits) extract = DR_NAME(dr_make_bits)(shift, bits);
    const DR_VI magic = DRV_SET16(0x4B00);
    DR_VF origin[DR_MAX_WINDOWS], a[DR_MAX_WINDOWS], b[DR_MAX_WINDOWS];
    for (int j = 0; j < k; j++) {
        origin[j] = DRV_SETF(dr_affine_origin(&w[j], is_signed));
        a[j] = DRV_SETF(w[j].a);
        b[j] = DRV_SETF(w[j].b);
    }
    int shared = DR_SHARE_D;
    for (int j = 1; j < k; j++) shared &= w[j].pivot == w[0].pivot;
    uint8_t tmp[DR_MAX_WINDOWS][64];
    DR_VI rgb_masks[9];
    if (k == 3) DRV_RGB3_MASKS(rgb_masks);
    const size_t block = 2 * DR_LANES16;
    stream = stream && k == 1;
    size_t i = stream ? dr_align_head(out, 1, block, n) : 0;
    dr_affine_range(src, itemsize, 0, i, w, k, out, shift, bits, is_signed);
    for (; i + block <= n; i += block) {
        DR_VI e0, e1;
        DR_NAME(dr_load_stored)(src, format, i, &extract, &e0, &e1);
        DR_VF l0 = DRV_WIDEN_LO(e0, magic), h0 = DRV_WIDEN_HI(e0, magic);
        DR_VF l1 = DRV_WIDEN_LO(e1, magic), h1 = DRV_WIDEN_HI(e1, magic);
        DR_VF d[4];
        if (shared) {
            d[0] = DRV_SUBF(l0, origin[0]), d[1] = DRV_SUBF(h0, origin[0]);
            d[2] = DRV_SUBF(l1, origin[0]), d[3] = DRV_SUBF(h1, origin[0]);
        }
        if (k == 1) {
            DR_VI bytes = DR_NAME(dr_bytes)(d, shared, l0, h0, l1, h1, origin[0], a[0], b[0]);
            if (stream) DRV_STREAM(out + i, bytes);
            else DRV_STORE(out + i, bytes);
        } else if (k == 3) {
            DR_VI c[3];
            for (int j = 0; j < 3; j++) c[j] = DR_NAME(dr_bytes)(d, shared, l0, h0, l1, h1, origin[j], a[j], b[j]);
            DRV_RGB3(out + 3 * i, rgb_masks, c[0], c[1], c[2]);
        } else {
            for (int j = 0; j < k; j++)
                DRV_STORE(tmp[j], DR_NAME(dr_bytes)(d, shared, l0, h0, l1, h1, origin[j], a[j], b[j]));
            dr_interleave(tmp, k, block, out + (size_t)k * i);
        }
    }
    if (stream) DRV_STREAM_END();
    dr_affine_range(src, itemsize, i, n, w, k, out, shift, bits, is_signed);
}

/* One loop per word format of a word size, for a literal channel count k. */
DR_ATTR DR_INLINE void DR_NAME(dr_affine_formats)(const dr_call *c, size_t start, size_t n, const int itemsize, const int k)
{
    const void *src = dr_src(c, start);
    uint8_t *out = dr_out(c, start);
    const dr_affine *w = c->affine;
    int shift = c->shift, bits = c->bits, is_signed = c->is_signed, stream = c->stream;
    switch (dr_word_format(itemsize, shift, bits, is_signed)) {
    case DR_W16_UNSIGNED_FULL: DR_NAME(dr_affine_loop)(src, DR_W16_UNSIGNED_FULL, n, w, k, out, shift, bits, is_signed, stream); break;
    case DR_W16_UNSIGNED_PART: DR_NAME(dr_affine_loop)(src, DR_W16_UNSIGNED_PART, n, w, k, out, shift, bits, is_signed, stream); break;
    case DR_W16_SIGNED_FULL: DR_NAME(dr_affine_loop)(src, DR_W16_SIGNED_FULL, n, w, k, out, shift, bits, is_signed, stream); break;
    case DR_W16_SIGNED_PART: DR_NAME(dr_affine_loop)(src, DR_W16_SIGNED_PART, n, w, k, out, shift, bits, is_signed, stream); break;
    case DR_W16_UNSIGNED_LOW: DR_NAME(dr_affine_loop)(src, DR_W16_UNSIGNED_LOW, n, w, k, out, shift, bits, is_signed, stream); break;
    case DR_W8_SIGNED_PART: DR_NAME(dr_affine_loop)(src, DR_W8_SIGNED_PART, n, w, k, out, shift, bits, is_signed, stream); break;
    case DR_W8_UNSIGNED_LOW: DR_NAME(dr_affine_loop)(src, DR_W8_UNSIGNED_LOW, n, w, k, out, shift, bits, is_signed, stream); break;
    default: DR_NAME(dr_affine_loop)(src, DR_W8_UNSIGNED_PART, n, w, k, out, shift, bits, is_signed, stream); break;
    }
}

/* One and three windows apart: the common cases get loops specialised for them. */
DR_ATTR DR_INLINE void DR_NAME(dr_affine_words)(const dr_call *c, size_t start, size_t n, const int itemsize)
{
    if (c->k == 1) DR_NAME(dr_affine_formats)(c, start, n, itemsize, 1);
    else if (c->k == 3) DR_NAME(dr_affine_formats)(c, start, n, itemsize, 3);
    else DR_NAME(dr_affine_formats)(c, start, n, itemsize, c->k);
}
#endif

DR_ATTR static void DR_NAME(dr_affine_u8)(const dr_call *c, size_t start, size_t n) { DR_NAME(dr_affine_words)(c, start, n, 1); }

DR_ATTR static void DR_NAME(dr_affine_u16)(const dr_call *c, size_t start, size_t n) { DR_NAME(dr_affine_words)(c, start, n, 2); }
