/* Plain-C emulation of the AVX-512 (F, BW, DQ, VL) and VNNI intrinsics the x86 kernels use, for
 * the emulated test build only (`make emu`; PEQA_X86_EMULATE). The development machine has AVX2
 * but no AVX-512 and no AVX-VNNI, so the AVX-512 / VNNI kernel files are compiled a second time,
 * with AVX2 + FMA flags only, and this header replaces each wide intrinsic and type by a
 * function that follows the instruction's documented semantics (Intel SDM / Intrinsics Guide
 * pseudo-code) lane by lane:
 *   - floating point: one IEEE binary32 operation per lane, round to nearest even (the MXCSR
 *     default): + − × ÷ as C float operations (built with -ffp-contract=off), FMA as fmaf (one
 *     rounding), max/min with the instruction's asymmetric rule (the second operand when either
 *     is NaN or both are zero), conversions float -> int32 by the current rounding mode with
 *     the "integer indefinite" 0x80000000 for NaN and out-of-range values;
 *   - integers: two's complement wrap-around, shifts by counts > 31 give 0 (logical), the
 *     saturating forms saturate, vpdpbusd sums four zero-extended u8 × sign-extended s8
 *     products and adds them to the accumulator with wrap-around and no saturation;
 *   - memory: aligned forms trap on a misaligned address (as the instructions fault), masked
 *     loads and stores touch only the selected lanes (fault suppression), masked-off lanes of a
 *     zero-masked load are 0.
 * Everything the kernels use must be here: an AVX-512 intrinsic that is not replaced stays the
 * compiler's target-specific inline function and fails to compile without -mavx512f, so nothing
 * native can slip into the emulated build unnoticed.
 *
 * What this proves: the kernels' lane logic, loop structure, tails, masks and operation
 * sequences give the reference's bits when each instruction does what its documentation says.
 * What it cannot prove: that the silicon does so, or anything about speed. AVX2 intrinsics
 * (256-bit, VEX) stay native: the emulated files are built with -mavx2 -mfma.
 *
 * Never included by the library proper: kernels/x86/x86_isa.h includes it only when
 * PEQA_X86_EMULATE is defined, which only the emulated test build defines. */
#ifndef PEQA_X86_EMU_H
#define PEQA_X86_EMU_H

#if !defined(PEQA_X86_EMULATE)
#error "tests/emu/x86_emu.h belongs to the emulated test build (PEQA_X86_EMULATE) only"
#endif
#if defined(__AVX512F__) || defined(__AVXVNNI__)
#error "the emulated build must not enable AVX-512 or AVX-VNNI: the real intrinsics would mix in"
#endif
#if !defined(__AVX2__) || !defined(__FMA__)
#error "the emulated kernel files are built with -mavx2 -mfma (their 256-bit code stays native)"
#endif

#include <immintrin.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

/* Not inlined: each emulated instruction stays one call, which keeps the heavily unrolled kernels
 * quick to compile (and the emulated build's run time is dominated by the lane loops anyway). */
#define EMU_FN static __attribute__((unused, noinline))

/* ---- types --------------------------------------------------------------------------------
 * Distinct structs, so that mixing float and integer vectors is a type error as with the
 * compiler's vector types. (Not over-aligned: the kernels never rely on the alignment of a
 * vector variable, and 64-byte aligned by-value arguments only change the calling convention.) */
typedef struct { float f[16]; } emu_m512;
typedef struct {
    union {
        int8_t i8[64];
        uint8_t u8[64];
        int16_t i16[32];
        int32_t i32[16];
        uint32_t u32[16];
        int64_t i64[8];
    } v;
} emu_m512i;
typedef uint16_t emu_mmask16;

#undef __m512
#undef __m512i
#undef __mmask16
#define __m512 emu_m512
#define __m512i emu_m512i
#define __mmask16 emu_mmask16

/* A misaligned address given to an aligned load or store faults on the real instruction. */
EMU_FN void emu_check_align(const void *p, uintptr_t a)
{
    if ((uintptr_t)p & (a - 1)) __builtin_trap();
}

/* ---- float: memory --------------------------------------------------------------------- */
EMU_FN emu_m512 emu_mm512_setzero_ps(void)
{
    emu_m512 r;
    for (int i = 0; i < 16; i++) r.f[i] = 0.0f;
    return r;
}
EMU_FN emu_m512 emu_mm512_set1_ps(float a)
{
    emu_m512 r;
    for (int i = 0; i < 16; i++) r.f[i] = a;
    return r;
}
EMU_FN emu_m512 emu_mm512_loadu_ps(const void *p)
{
    emu_m512 r;
    memcpy(r.f, p, 64);
    return r;
}
EMU_FN emu_m512 emu_mm512_load_ps(const void *p)
{
    emu_check_align(p, 64);
    return emu_mm512_loadu_ps(p);
}
EMU_FN void emu_mm512_storeu_ps(void *p, emu_m512 a) { memcpy(p, a.f, 64); }
EMU_FN void emu_mm512_store_ps(void *p, emu_m512 a)
{
    emu_check_align(p, 64);
    memcpy(p, a.f, 64);
}
/* vmovups zmm{k}{z}, m512: lanes with a clear mask bit are 0 and their memory is not read. */
EMU_FN emu_m512 emu_mm512_maskz_loadu_ps(emu_mmask16 k, const void *p)
{
    emu_m512 r;
    const unsigned char *b = p;
    for (int i = 0; i < 16; i++) {
        r.f[i] = 0.0f;
        if (k >> i & 1) memcpy(&r.f[i], b + 4 * i, 4);
    }
    return r;
}
EMU_FN void emu_mm512_mask_storeu_ps(void *p, emu_mmask16 k, emu_m512 a)
{
    unsigned char *b = p;
    for (int i = 0; i < 16; i++)
        if (k >> i & 1) memcpy(b + 4 * i, &a.f[i], 4);
}

/* ---- float: arithmetic (one correctly rounded binary32 operation per lane) ----------------- */
EMU_FN emu_m512 emu_mm512_add_ps(emu_m512 a, emu_m512 b)
{
    for (int i = 0; i < 16; i++) a.f[i] = a.f[i] + b.f[i];
    return a;
}
EMU_FN emu_m512 emu_mm512_sub_ps(emu_m512 a, emu_m512 b)
{
    for (int i = 0; i < 16; i++) a.f[i] = a.f[i] - b.f[i];
    return a;
}
EMU_FN emu_m512 emu_mm512_mul_ps(emu_m512 a, emu_m512 b)
{
    for (int i = 0; i < 16; i++) a.f[i] = a.f[i] * b.f[i];
    return a;
}
EMU_FN emu_m512 emu_mm512_div_ps(emu_m512 a, emu_m512 b)
{
    for (int i = 0; i < 16; i++) a.f[i] = a.f[i] / b.f[i];
    return a;
}
/* vfmadd: a · b + c with a single rounding. */
EMU_FN emu_m512 emu_mm512_fmadd_ps(emu_m512 a, emu_m512 b, emu_m512 c)
{
    for (int i = 0; i < 16; i++) c.f[i] = fmaf(a.f[i], b.f[i], c.f[i]);
    return c;
}
/* vmaxps / vminps: dst = a > b ? a : b (a < b ? a : b), i.e. b when either is NaN or both are
 * zero of any sign. */
EMU_FN emu_m512 emu_mm512_max_ps(emu_m512 a, emu_m512 b)
{
    for (int i = 0; i < 16; i++) a.f[i] = a.f[i] > b.f[i] ? a.f[i] : b.f[i];
    return a;
}
EMU_FN emu_m512 emu_mm512_min_ps(emu_m512 a, emu_m512 b)
{
    for (int i = 0; i < 16; i++) a.f[i] = a.f[i] < b.f[i] ? a.f[i] : b.f[i];
    return a;
}

/* ---- float: bit operations and conversions ----------------------------------------------- */
EMU_FN emu_m512i emu_mm512_castps_si512(emu_m512 a)
{
    emu_m512i r;
    memcpy(r.v.u32, a.f, 64);
    return r;
}
EMU_FN emu_m512 emu_mm512_castsi512_ps(emu_m512i a)
{
    emu_m512 r;
    memcpy(r.f, a.v.u32, 64);
    return r;
}
/* vxorps / vandps (AVX512DQ) on the bit patterns. */
EMU_FN emu_m512 emu_mm512_xor_ps(emu_m512 a, emu_m512 b)
{
    emu_m512i x = emu_mm512_castps_si512(a), y = emu_mm512_castps_si512(b);
    for (int i = 0; i < 16; i++) x.v.u32[i] ^= y.v.u32[i];
    return emu_mm512_castsi512_ps(x);
}
EMU_FN emu_m512 emu_mm512_and_ps(emu_m512 a, emu_m512 b)
{
    emu_m512i x = emu_mm512_castps_si512(a), y = emu_mm512_castps_si512(b);
    for (int i = 0; i < 16; i++) x.v.u32[i] &= y.v.u32[i];
    return emu_mm512_castsi512_ps(x);
}
/* vcvtdq2ps: int32 -> binary32, rounded to nearest even (exact below 2^24). */
EMU_FN emu_m512 emu_mm512_cvtepi32_ps(emu_m512i a)
{
    emu_m512 r;
    for (int i = 0; i < 16; i++) r.f[i] = (float)a.v.i32[i];
    return r;
}
/* The value of a float rounded by the MXCSR mode (nearest even) as int32, or the integer
 * indefinite 0x80000000 for NaN and values outside the int32 range. */
EMU_FN int32_t emu_cvt_f32_i32(float f)
{
    if (!(f >= -2147483648.0f && f < 2147483648.0f)) return INT32_MIN;
    return (int32_t)nearbyintf(f);
}
EMU_FN emu_m512i emu_mm512_cvtps_epi32(emu_m512 a)
{
    emu_m512i r;
    for (int i = 0; i < 16; i++) r.v.i32[i] = emu_cvt_f32_i32(a.f[i]);
    return r;
}
/* vrndscaleps with scale 0 (imm[7:4] = 0): round to an integer with the mode in imm[1:0]
 * (imm[2] = 0) or the MXCSR mode (imm[2] = 1; nearest even here). The kernels use only
 * scale 0; other scales trap. */
EMU_FN emu_m512 emu_mm512_roundscale_ps(emu_m512 a, int imm)
{
    if (imm & 0xf0) __builtin_trap();
    int mode = imm & 4 ? 0 : imm & 3;
    for (int i = 0; i < 16; i++) {
        float v = a.f[i];
        a.f[i] = mode == 0 ? nearbyintf(v) : mode == 1 ? floorf(v) : mode == 2 ? ceilf(v) : truncf(v);
    }
    return a;
}

/* ---- integer: memory ---------------------------------------------------------------------- */
EMU_FN emu_m512i emu_mm512_setzero_si512(void)
{
    emu_m512i r;
    memset(&r, 0, sizeof r);
    return r;
}
EMU_FN emu_m512i emu_mm512_set1_epi32(int a)
{
    emu_m512i r;
    for (int i = 0; i < 16; i++) r.v.i32[i] = a;
    return r;
}
EMU_FN emu_m512i emu_mm512_set1_epi8(char a)
{
    emu_m512i r;
    for (int i = 0; i < 64; i++) r.v.i8[i] = (int8_t)a;
    return r;
}
/* _mm512_setr_epi32: e0 is lane 0. */
EMU_FN emu_m512i emu_mm512_setr_epi32(int e0, int e1, int e2, int e3, int e4, int e5, int e6, int e7,
                                      int e8, int e9, int e10, int e11, int e12, int e13, int e14, int e15)
{
    const int e[16] = {e0, e1, e2, e3, e4, e5, e6, e7, e8, e9, e10, e11, e12, e13, e14, e15};
    emu_m512i r;
    for (int i = 0; i < 16; i++) r.v.i32[i] = e[i];
    return r;
}
EMU_FN emu_m512i emu_mm512_loadu_si512(const void *p)
{
    emu_m512i r;
    memcpy(r.v.u8, p, 64);
    return r;
}
EMU_FN void emu_mm512_storeu_si512(void *p, emu_m512i a) { memcpy(p, a.v.u8, 64); }
EMU_FN emu_m512i emu_mm512_maskz_loadu_epi32(emu_mmask16 k, const void *p)
{
    emu_m512i r;
    const unsigned char *b = p;
    for (int i = 0; i < 16; i++) {
        r.v.i32[i] = 0;
        if (k >> i & 1) memcpy(&r.v.i32[i], b + 4 * i, 4);
    }
    return r;
}

/* vpbroadcastd zmm{k}, r32: a in the lanes whose mask bit is set, src in the others. */
EMU_FN emu_m512i emu_mm512_mask_set1_epi32(emu_m512i src, emu_mmask16 k, int a)
{
    for (int i = 0; i < 16; i++)
        if (k >> i & 1) src.v.i32[i] = a;
    return src;
}

/* ---- integer: logic, shifts, arithmetic --------------------------------------------------- */
EMU_FN emu_m512i emu_mm512_and_si512(emu_m512i a, emu_m512i b)
{
    for (int i = 0; i < 16; i++) a.v.u32[i] &= b.v.u32[i];
    return a;
}
EMU_FN emu_m512i emu_mm512_or_si512(emu_m512i a, emu_m512i b)
{
    for (int i = 0; i < 16; i++) a.v.u32[i] |= b.v.u32[i];
    return a;
}
EMU_FN emu_m512i emu_mm512_xor_si512(emu_m512i a, emu_m512i b)
{
    for (int i = 0; i < 16; i++) a.v.u32[i] ^= b.v.u32[i];
    return a;
}
/* vpsrld / vpslld by an immediate: counts above 31 give 0. */
EMU_FN emu_m512i emu_mm512_srli_epi32(emu_m512i a, unsigned imm)
{
    for (int i = 0; i < 16; i++) a.v.u32[i] = imm > 31 ? 0u : a.v.u32[i] >> imm;
    return a;
}
EMU_FN emu_m512i emu_mm512_slli_epi32(emu_m512i a, unsigned imm)
{
    for (int i = 0; i < 16; i++) a.v.u32[i] = imm > 31 ? 0u : a.v.u32[i] << imm;
    return a;
}
/* vpsrlvd / vpsllvd: per-lane unsigned counts, above 31 give 0. */
EMU_FN emu_m512i emu_mm512_srlv_epi32(emu_m512i a, emu_m512i c)
{
    for (int i = 0; i < 16; i++) a.v.u32[i] = c.v.u32[i] > 31 ? 0u : a.v.u32[i] >> c.v.u32[i];
    return a;
}
EMU_FN emu_m512i emu_mm512_sllv_epi32(emu_m512i a, emu_m512i c)
{
    for (int i = 0; i < 16; i++) a.v.u32[i] = c.v.u32[i] > 31 ? 0u : a.v.u32[i] << c.v.u32[i];
    return a;
}
EMU_FN emu_m512i emu_mm512_add_epi32(emu_m512i a, emu_m512i b)
{
    for (int i = 0; i < 16; i++) a.v.u32[i] += b.v.u32[i]; /* modulo 2^32 */
    return a;
}
EMU_FN emu_m512i emu_mm512_sub_epi32(emu_m512i a, emu_m512i b)
{
    for (int i = 0; i < 16; i++) a.v.u32[i] -= b.v.u32[i];
    return a;
}
/* vpshufb (AVX512BW): within each 128-bit lane, byte i = bit 7 of the control ? 0 :
 * a[lane base + (control & 15)]. */
EMU_FN emu_m512i emu_mm512_shuffle_epi8(emu_m512i a, emu_m512i c)
{
    emu_m512i r;
    for (int i = 0; i < 64; i++) {
        uint8_t s = c.v.u8[i];
        r.v.u8[i] = s & 0x80 ? 0 : a.v.u8[(i & ~15) + (s & 15)];
    }
    return r;
}
/* vpmovzxbd: 16 bytes of a 128-bit vector, zero-extended to 16 int32 lanes. */
EMU_FN emu_m512i emu_mm512_cvtepu8_epi32(__m128i a)
{
    uint8_t b[16];
    emu_m512i r;
    memcpy(b, &a, 16);
    for (int i = 0; i < 16; i++) r.v.i32[i] = b[i];
    return r;
}
/* vpmovdb: 16 int32 lanes truncated to their low bytes, in a 128-bit vector. */
EMU_FN __m128i emu_mm512_cvtepi32_epi8(emu_m512i a)
{
    uint8_t b[16];
    __m128i r;
    for (int i = 0; i < 16; i++) b[i] = (uint8_t)(a.v.u32[i] & 0xffu);
    memcpy(&r, b, 16);
    return r;
}
/* vpmovsdb: 16 int32 lanes to 16 int8 with signed saturation, in a 128-bit vector. */
EMU_FN __m128i emu_mm512_cvtsepi32_epi8(emu_m512i a)
{
    int8_t b[16];
    __m128i r;
    for (int i = 0; i < 16; i++) {
        int32_t v = a.v.i32[i];
        b[i] = (int8_t)(v > 127 ? 127 : v < -128 ? -128 : v);
    }
    memcpy(&r, b, 16);
    return r;
}

/* ---- VNNI --------------------------------------------------------------------------------
 * vpdpbusd: for each int32 lane i,
 *     dst[i] = src[i] + Σ_{j=0..3} ZeroExtend(a.byte[4 i + j]) · SignExtend(b.byte[4 i + j])
 * the four products summed exactly (each fits 16 bits, their sum 18) and added to src modulo
 * 2^32: no saturation (that is vpdpbusds). */
EMU_FN int32_t emu_dpbusd_lane(int32_t src, const uint8_t *a, const int8_t *b)
{
    int32_t s = 0;
    for (int j = 0; j < 4; j++) s += (int32_t)a[j] * (int32_t)b[j];
    return (int32_t)((uint32_t)src + (uint32_t)s);
}
EMU_FN emu_m512i emu_mm512_dpbusd_epi32(emu_m512i src, emu_m512i a, emu_m512i b)
{
    for (int i = 0; i < 16; i++) src.v.i32[i] = emu_dpbusd_lane(src.v.i32[i], a.v.u8 + 4 * i, b.v.i8 + 4 * i);
    return src;
}
/* The VEX-encoded 256-bit form (AVX-VNNI), same per-lane semantics on 8 lanes. */
EMU_FN __m256i emu_mm256_dpbusd_avx_epi32(__m256i src, __m256i a, __m256i b)
{
    int32_t s[8];
    uint8_t ua[32];
    int8_t sb[32];
    memcpy(s, &src, 32), memcpy(ua, &a, 32), memcpy(sb, &b, 32);
    for (int i = 0; i < 8; i++) s[i] = emu_dpbusd_lane(s[i], ua + 4 * i, sb + 4 * i);
    memcpy(&src, s, 32);
    return src;
}

/* ---- the names the kernels use ------------------------------------------------------------ */
#undef _mm512_setzero_ps
#define _mm512_setzero_ps emu_mm512_setzero_ps
#undef _mm512_set1_ps
#define _mm512_set1_ps emu_mm512_set1_ps
#undef _mm512_loadu_ps
#define _mm512_loadu_ps emu_mm512_loadu_ps
#undef _mm512_load_ps
#define _mm512_load_ps emu_mm512_load_ps
#undef _mm512_storeu_ps
#define _mm512_storeu_ps emu_mm512_storeu_ps
#undef _mm512_store_ps
#define _mm512_store_ps emu_mm512_store_ps
#undef _mm512_maskz_loadu_ps
#define _mm512_maskz_loadu_ps emu_mm512_maskz_loadu_ps
#undef _mm512_mask_storeu_ps
#define _mm512_mask_storeu_ps emu_mm512_mask_storeu_ps
#undef _mm512_add_ps
#define _mm512_add_ps emu_mm512_add_ps
#undef _mm512_sub_ps
#define _mm512_sub_ps emu_mm512_sub_ps
#undef _mm512_mul_ps
#define _mm512_mul_ps emu_mm512_mul_ps
#undef _mm512_div_ps
#define _mm512_div_ps emu_mm512_div_ps
#undef _mm512_fmadd_ps
#define _mm512_fmadd_ps emu_mm512_fmadd_ps
#undef _mm512_max_ps
#define _mm512_max_ps emu_mm512_max_ps
#undef _mm512_min_ps
#define _mm512_min_ps emu_mm512_min_ps
#undef _mm512_castps_si512
#define _mm512_castps_si512 emu_mm512_castps_si512
#undef _mm512_castsi512_ps
#define _mm512_castsi512_ps emu_mm512_castsi512_ps
#undef _mm512_xor_ps
#define _mm512_xor_ps emu_mm512_xor_ps
#undef _mm512_and_ps
#define _mm512_and_ps emu_mm512_and_ps
#undef _mm512_cvtepi32_ps
#define _mm512_cvtepi32_ps emu_mm512_cvtepi32_ps
#undef _mm512_cvtps_epi32
#define _mm512_cvtps_epi32 emu_mm512_cvtps_epi32
#undef _mm512_roundscale_ps
#define _mm512_roundscale_ps emu_mm512_roundscale_ps
#undef _mm512_setzero_si512
#define _mm512_setzero_si512 emu_mm512_setzero_si512
#undef _mm512_set1_epi32
#define _mm512_set1_epi32 emu_mm512_set1_epi32
#undef _mm512_set1_epi8
#define _mm512_set1_epi8 emu_mm512_set1_epi8
#undef _mm512_mask_set1_epi32
#define _mm512_mask_set1_epi32 emu_mm512_mask_set1_epi32
#undef _mm512_setr_epi32
#define _mm512_setr_epi32 emu_mm512_setr_epi32
#undef _mm512_loadu_si512
#define _mm512_loadu_si512 emu_mm512_loadu_si512
#undef _mm512_storeu_si512
#define _mm512_storeu_si512 emu_mm512_storeu_si512
#undef _mm512_maskz_loadu_epi32
#define _mm512_maskz_loadu_epi32 emu_mm512_maskz_loadu_epi32
#undef _mm512_and_si512
#define _mm512_and_si512 emu_mm512_and_si512
#undef _mm512_or_si512
#define _mm512_or_si512 emu_mm512_or_si512
#undef _mm512_xor_si512
#define _mm512_xor_si512 emu_mm512_xor_si512
#undef _mm512_srli_epi32
#define _mm512_srli_epi32 emu_mm512_srli_epi32
#undef _mm512_slli_epi32
#define _mm512_slli_epi32 emu_mm512_slli_epi32
#undef _mm512_srlv_epi32
#define _mm512_srlv_epi32 emu_mm512_srlv_epi32
#undef _mm512_sllv_epi32
#define _mm512_sllv_epi32 emu_mm512_sllv_epi32
#undef _mm512_add_epi32
#define _mm512_add_epi32 emu_mm512_add_epi32
#undef _mm512_sub_epi32
#define _mm512_sub_epi32 emu_mm512_sub_epi32
#undef _mm512_shuffle_epi8
#define _mm512_shuffle_epi8 emu_mm512_shuffle_epi8
#undef _mm512_cvtepu8_epi32
#define _mm512_cvtepu8_epi32 emu_mm512_cvtepu8_epi32
#undef _mm512_cvtepi32_epi8
#define _mm512_cvtepi32_epi8 emu_mm512_cvtepi32_epi8
#undef _mm512_cvtsepi32_epi8
#define _mm512_cvtsepi32_epi8 emu_mm512_cvtsepi32_epi8
#undef _mm512_dpbusd_epi32
#define _mm512_dpbusd_epi32 emu_mm512_dpbusd_epi32
#undef _mm256_dpbusd_avx_epi32
#define _mm256_dpbusd_avx_epi32 emu_mm256_dpbusd_avx_epi32

#endif
