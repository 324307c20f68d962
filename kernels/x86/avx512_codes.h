#ifndef PEQA_AVX512_CODES_H
#define PEQA_AVX512_CODES_H
/* Packed codes in row form for the AVX-512 kernel files (qgemm_avx512.c: unpack, dequant;
 * qgrad_avx512.c: ginput). Included after x86_isa.h and peqa_kernels.h.
 *
 * The 32 columns of one row r of a cell as two zmm (half h: columns
 * 16 h .. 16 h + 15; lane l = column 16 h + l). The words of the row (one per plane word, 16
 * apart in the cell) are broadcast into the lanes whose columns they hold (vpbroadcastd, with
 * a write mask for the second and later words), then one variable shift and one mask:
 *   b = 2: word h holds all 16 columns;   lane l: byte l % 4, field l / 4 -> shift 8 (l % 4) + 2 (l / 4)
 *   b = 4: words 2 h, 2 h + 1 (8 lanes each);  lane l: t = l % 8 -> shift 8 (t % 4) + 4 (t / 4)
 *   b = 8: words 4 h .. 4 h + 3 (4 lanes each); lane l: shift 8 (l % 4)
 *   b = 3: low bits as b = 2; the high bit from word 2 at bit 8 (l % 4) + 4 h + l / 4 */
static inline __m512i row_shifts(int p, int off)
{
    return _mm512_setr_epi32(off, 8 + off, 16 + off, 24 + off, p + off, 8 + p + off, 16 + p + off, 24 + p + off,
                             2 * p + off, 8 + 2 * p + off, 16 + 2 * p + off, 24 + 2 * p + off, 3 * p + off,
                             8 + 3 * p + off, 16 + 3 * p + off, 24 + 3 * p + off);
}

static inline __attribute__((always_inline)) __m512i row_half(const int bits, const uint32_t *cell, int r, int h)
{
    if (bits == 8) {
        __m512i v = _mm512_set1_epi32((int)cell[(4 * h) * 16 + r]);
        v = _mm512_mask_set1_epi32(v, 0x00f0, (int)cell[(4 * h + 1) * 16 + r]);
        v = _mm512_mask_set1_epi32(v, 0x0f00, (int)cell[(4 * h + 2) * 16 + r]);
        v = _mm512_mask_set1_epi32(v, 0xf000, (int)cell[(4 * h + 3) * 16 + r]);
        return _mm512_and_si512(_mm512_srlv_epi32(v, row_shifts(0, 0)), _mm512_set1_epi32(255));
    }
    if (bits == 4) {
        __m512i v = _mm512_set1_epi32((int)cell[(2 * h) * 16 + r]);
        v = _mm512_mask_set1_epi32(v, 0xff00, (int)cell[(2 * h + 1) * 16 + r]);
        /* lanes 8..15 repeat the shifts of lanes 0..7 */
        return _mm512_and_si512(_mm512_srlv_epi32(v, _mm512_setr_epi32(0, 8, 16, 24, 4, 12, 20, 28, 0, 8, 16, 24, 4, 12, 20, 28)),
                                _mm512_set1_epi32(15));
    }
    const __m512i lo = _mm512_and_si512(_mm512_srlv_epi32(_mm512_set1_epi32((int)cell[h * 16 + r]), row_shifts(2, 0)),
                                        _mm512_set1_epi32(3));
    if (bits == 2) return lo;
    const __m512i hi = _mm512_and_si512(_mm512_srlv_epi32(_mm512_set1_epi32((int)cell[2 * 16 + r]), row_shifts(1, 4 * h)),
                                        _mm512_set1_epi32(1));
    return _mm512_or_si512(lo, _mm512_slli_epi32(hi, 2));
}

#endif
