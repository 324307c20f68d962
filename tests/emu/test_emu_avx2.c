/* The emulation harness checked against the silicon it can be checked on (emulated test build
 * only; built with AVX2 + FMA like the emulated kernel files).
 *
 * tests/emu/x86_emu.h implements the AVX-512 / VNNI intrinsics from their documented semantics.
 * Most of them have an AVX2 instruction with the same per-lane definition (vfmadd, vcvtdq2ps,
 * vcvtps2dq, vroundps, vpsrld, vpsrlvd, vpshufb, vpmovzxbd, vmaskmovps, ...), which this CPU
 * executes: each emulated 16-lane operation is compared bit for bit with the native 8-lane
 * instruction applied to both halves, on random operands mixed with edge values (signed zeros,
 * infinities, subnormals, ties at .5, the int32 range limits, shift counts past 31, bytes with
 * the high bit set). vpdpbusd has no AVX2 instruction; it is compared with the exact vpmaddubsw
 * + vpmaddwd composition on nibble-split codes (the AVX2 kernel's own method, which never
 * saturates) plus a wrapping vpaddd. NaN results are compared as NaN (payloads are not
 * emulated; no kernel path produces a NaN from finite inputs). */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include "../prng.h"
#include "../test.h"

#if defined(PEQA_X86_EMULATE) && defined(__x86_64__)
#include "x86_emu.h"

#define ITERS 4000

static const float f_edges[] = {0.0f, -0.0f, 1.0f, -1.0f, 0.5f, 1.5f, 2.5f, -2.5f, -0.5f, 3.5f,
                                INFINITY, -INFINITY, 0x1p-149f, -0x1p-130f, 0x1p-126f, 3.4028235e38f,
                                2147483520.0f, 2147483648.0f, -2147483648.0f, -2147483904.0f, 16777217.0f,
                                8388608.5f, 127.49f, -127.5f, 1e-8f, 65504.0f};
static const int32_t i_edges[] = {0, 1, -1, 31, 32, 33, 255, 256, -128, 127, 0x7fffffff, INT32_MIN, 16777217,
                                  -16777217, 0x80808080, 0x7f7f7f7f, 2147483584};

static float rnd_f(prng *r)
{
    uint64_t u = prng_next(r);
    switch (u % 4) {
    case 0: return f_edges[(u >> 8) % (sizeof f_edges / sizeof f_edges[0])];
    case 1: return prng_sym(r, 4.0f);
    case 2: return prng_sym(r, 3e9f);
    default: { /* any bit pattern except NaN */
        uint32_t b = (uint32_t)(u >> 16);
        float f;
        memcpy(&f, &b, 4);
        return isnan(f) ? 1.0f : f;
    }
    }
}
static int32_t rnd_i(prng *r)
{
    uint64_t u = prng_next(r);
    return u % 3 == 0 ? i_edges[(u >> 8) % (sizeof i_edges / sizeof i_edges[0])] : (int32_t)(uint32_t)(u >> 20);
}

/* Equal bits, or both NaN. */
static int same_f(const float *a, const float *b, int n)
{
    for (int i = 0; i < n; i++)
        if (memcmp(&a[i], &b[i], 4) && !(isnan(a[i]) && isnan(b[i]))) return 0;
    return 1;
}

typedef struct {
    float fa[16], fb[16], fc[16];
    int32_t ia[16], ib[16], ic[16];
    unsigned imm;
    uint16_t k;
} operands;

static void fill(prng *r, operands *o)
{
    for (int i = 0; i < 16; i++) {
        o->fa[i] = rnd_f(r), o->fb[i] = rnd_f(r), o->fc[i] = rnd_f(r);
        o->ia[i] = rnd_i(r), o->ib[i] = rnd_i(r), o->ic[i] = rnd_i(r);
    }
    o->imm = (unsigned)(prng_next(r) % 40);
    o->k = (uint16_t)prng_next(r);
}

static __m256 lo8(const float *p, int h) { return _mm256_loadu_ps(p + 8 * h); }
static __m256i lo8i(const int32_t *p, int h) { return _mm256_loadu_si256((const __m256i *)(p + 8 * h)); }

/* One check per emulated operation: the emulated result (16 lanes) and the native AVX2 result
 * (two 8-lane halves) into `got` / `want`; returns 1 when they agree. */
static int check(int op, const operands *o, char *name, size_t nsz)
{
    float gf[16], wf[16];
    int32_t gi[16], wi[16];
    const __m512 a = _mm512_loadu_ps(o->fa), b = _mm512_loadu_ps(o->fb), c = _mm512_loadu_ps(o->fc);
    const __m512i ia = _mm512_loadu_si512(o->ia), ib = _mm512_loadu_si512(o->ib), ic = _mm512_loadu_si512(o->ic);
#define NAME(s) snprintf(name, nsz, "%s", s)
#define HALVES(stmt) for (int h = 0; h < 2; h++) { stmt; }
    switch (op) {
    case 0:
        NAME("fmadd_ps");
        _mm512_storeu_ps(gf, _mm512_fmadd_ps(a, b, c));
        HALVES(_mm256_storeu_ps(wf + 8 * h, _mm256_fmadd_ps(lo8(o->fa, h), lo8(o->fb, h), lo8(o->fc, h))))
        return same_f(gf, wf, 16);
    case 1:
        NAME("add_ps");
        _mm512_storeu_ps(gf, _mm512_add_ps(a, b));
        HALVES(_mm256_storeu_ps(wf + 8 * h, _mm256_add_ps(lo8(o->fa, h), lo8(o->fb, h))))
        return same_f(gf, wf, 16);
    case 2:
        NAME("sub_ps");
        _mm512_storeu_ps(gf, _mm512_sub_ps(a, b));
        HALVES(_mm256_storeu_ps(wf + 8 * h, _mm256_sub_ps(lo8(o->fa, h), lo8(o->fb, h))))
        return same_f(gf, wf, 16);
    case 3:
        NAME("mul_ps");
        _mm512_storeu_ps(gf, _mm512_mul_ps(a, b));
        HALVES(_mm256_storeu_ps(wf + 8 * h, _mm256_mul_ps(lo8(o->fa, h), lo8(o->fb, h))))
        return same_f(gf, wf, 16);
    case 4:
        NAME("div_ps");
        _mm512_storeu_ps(gf, _mm512_div_ps(a, b));
        HALVES(_mm256_storeu_ps(wf + 8 * h, _mm256_div_ps(lo8(o->fa, h), lo8(o->fb, h))))
        return same_f(gf, wf, 16);
    case 5: /* max / min: signed zeros decide which operand comes back: compare bits exactly */
        NAME("max_ps, min_ps");
        _mm512_storeu_ps(gf, _mm512_max_ps(a, b)), _mm512_storeu_ps(gf, _mm512_min_ps(_mm512_loadu_ps(gf), c));
        HALVES(_mm256_storeu_ps(wf + 8 * h, _mm256_min_ps(_mm256_max_ps(lo8(o->fa, h), lo8(o->fb, h)), lo8(o->fc, h))))
        return !memcmp(gf, wf, 64);
    case 6:
        NAME("cvtepi32_ps");
        _mm512_storeu_ps(gf, _mm512_cvtepi32_ps(ia));
        HALVES(_mm256_storeu_ps(wf + 8 * h, _mm256_cvtepi32_ps(lo8i(o->ia, h))))
        return !memcmp(gf, wf, 64);
    case 7:
        NAME("cvtps_epi32");
        _mm512_storeu_si512(gi, _mm512_cvtps_epi32(a));
        HALVES(_mm256_storeu_si256((__m256i *)(wi + 8 * h), _mm256_cvtps_epi32(lo8(o->fa, h))))
        return !memcmp(gi, wi, 64);
    case 8:
        NAME("roundscale_ps (4 modes)");
        {
            static const int modes[4] = {_MM_FROUND_TO_NEAREST_INT, _MM_FROUND_TO_NEG_INF, _MM_FROUND_TO_POS_INF,
                                         _MM_FROUND_TO_ZERO};
            int ok = 1;
            for (int md = 0; md < 4; md++) {
                _mm512_storeu_ps(gf, _mm512_roundscale_ps(a, modes[md] | _MM_FROUND_NO_EXC));
                for (int h = 0; h < 2; h++) {
                    __m256 v = lo8(o->fa, h);
                    v = md == 0 ? _mm256_round_ps(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)
                      : md == 1 ? _mm256_round_ps(v, _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC)
                      : md == 2 ? _mm256_round_ps(v, _MM_FROUND_TO_POS_INF | _MM_FROUND_NO_EXC)
                                : _mm256_round_ps(v, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
                    _mm256_storeu_ps(wf + 8 * h, v);
                }
                ok = ok && !memcmp(gf, wf, 64);
            }
            return ok;
        }
    case 9:
        NAME("xor_ps, and_ps, castps_si512, castsi512_ps");
        _mm512_storeu_ps(gf, _mm512_and_ps(_mm512_xor_ps(a, b), _mm512_castsi512_ps(_mm512_castps_si512(c))));
        HALVES(_mm256_storeu_ps(wf + 8 * h, _mm256_and_ps(_mm256_xor_ps(lo8(o->fa, h), lo8(o->fb, h)), lo8(o->fc, h))))
        return !memcmp(gf, wf, 64);
    case 10:
        NAME("and/or/xor_si512, add/sub_epi32");
        _mm512_storeu_si512(gi, _mm512_sub_epi32(_mm512_add_epi32(_mm512_xor_si512(_mm512_or_si512(ia, ib), ic),
                                                                  _mm512_and_si512(ia, ic)), ib));
        HALVES(_mm256_storeu_si256((__m256i *)(wi + 8 * h),
                                   _mm256_sub_epi32(_mm256_add_epi32(_mm256_xor_si256(_mm256_or_si256(lo8i(o->ia, h), lo8i(o->ib, h)), lo8i(o->ic, h)),
                                                                     _mm256_and_si256(lo8i(o->ia, h), lo8i(o->ic, h))),
                                                    lo8i(o->ib, h))))
        return !memcmp(gi, wi, 64);
    case 11:
        NAME("srli_epi32, slli_epi32 (counts 0..39)");
        _mm512_storeu_si512(gi, _mm512_xor_si512(_mm512_srli_epi32(ia, o->imm), _mm512_slli_epi32(ib, o->imm)));
        HALVES(_mm256_storeu_si256((__m256i *)(wi + 8 * h), _mm256_xor_si256(_mm256_srli_epi32(lo8i(o->ia, h), (int)o->imm),
                                                                             _mm256_slli_epi32(lo8i(o->ib, h), (int)o->imm))))
        return !memcmp(gi, wi, 64);
    case 12: { /* counts: mostly 0..40, sometimes huge */
        NAME("srlv_epi32, sllv_epi32");
        int32_t cnt[16];
        for (int i = 0; i < 16; i++) cnt[i] = i % 5 == 4 ? o->ic[i] : (int32_t)((uint32_t)o->ic[i] % 41u);
        const __m512i cv = _mm512_loadu_si512(cnt);
        _mm512_storeu_si512(gi, _mm512_xor_si512(_mm512_srlv_epi32(ia, cv), _mm512_sllv_epi32(ib, cv)));
        HALVES(_mm256_storeu_si256((__m256i *)(wi + 8 * h), _mm256_xor_si256(_mm256_srlv_epi32(lo8i(o->ia, h), lo8i(cnt, h)),
                                                                             _mm256_sllv_epi32(lo8i(o->ib, h), lo8i(cnt, h)))))
        return !memcmp(gi, wi, 64);
    }
    case 13:
        NAME("shuffle_epi8");
        _mm512_storeu_si512(gi, _mm512_shuffle_epi8(ia, ib));
        HALVES(_mm256_storeu_si256((__m256i *)(wi + 8 * h), _mm256_shuffle_epi8(lo8i(o->ia, h), lo8i(o->ib, h))))
        return !memcmp(gi, wi, 64);
    case 14:
        NAME("cvtepu8_epi32");
        _mm512_storeu_si512(gi, _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)o->ia)));
        HALVES(_mm256_storeu_si256((__m256i *)(wi + 8 * h), _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)((const char *)o->ia + 8 * h)))))
        return !memcmp(gi, wi, 64);
    case 15: { /* saturating int32 -> int8 = two saturating packs (int32 -> int16 -> int8) */
        NAME("cvtsepi32_epi8");
        int8_t g8[16], w8[16];
        _mm_storeu_si128((__m128i *)g8, _mm512_cvtsepi32_epi8(ia));
        const __m128i *q = (const __m128i *)o->ia;
        _mm_storeu_si128((__m128i *)w8, _mm_packs_epi16(_mm_packs_epi32(_mm_loadu_si128(q), _mm_loadu_si128(q + 1)),
                                                        _mm_packs_epi32(_mm_loadu_si128(q + 2), _mm_loadu_si128(q + 3))));
        return !memcmp(g8, w8, 16);
    }
    case 19: { /* truncation = vpshufb of byte 0 of every dword, then vpermd joins the halves */
        NAME("cvtepi32_epi8");
        uint8_t g8[16], w8[16];
        _mm_storeu_si128((__m128i *)g8, _mm512_cvtepi32_epi8(ia));
        const __m256i sel = _mm256_setr_epi8(0, 4, 8, 12, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
                                             0, 4, 8, 12, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1);
        for (int h = 0; h < 2; h++) {
            const __m256i v = _mm256_permutevar8x32_epi32(_mm256_shuffle_epi8(lo8i(o->ia, h), sel),
                                                          _mm256_setr_epi32(0, 4, 1, 1, 1, 1, 1, 1));
            _mm_storel_epi64((__m128i *)(w8 + 8 * h), _mm256_castsi256_si128(v));
        }
        return !memcmp(g8, w8, 16);
    }
    case 16: { /* zero-masked load and masked store vs vmaskmovps */
        NAME("maskz_loadu_ps, mask_storeu_ps, maskz_loadu_epi32");
        float g2[16], w2[16];
        memcpy(g2, o->fb, 64), memcpy(w2, o->fb, 64);
        const __m512 v = _mm512_maskz_loadu_ps(o->k, o->fa);
        _mm512_storeu_ps(gf, v);
        _mm512_mask_storeu_ps(g2, o->k, c);
        _mm512_storeu_si512(gi, _mm512_maskz_loadu_epi32(o->k, o->ia));
        for (int h = 0; h < 2; h++) {
            const __m256i m = _mm256_cmpgt_epi32(_mm256_and_si256(_mm256_set1_epi32((o->k >> (8 * h)) & 0xff),
                                                                  _mm256_setr_epi32(1, 2, 4, 8, 16, 32, 64, 128)),
                                                 _mm256_setzero_si256());
            _mm256_storeu_ps(wf + 8 * h, _mm256_maskload_ps(o->fa + 8 * h, m));
            _mm256_maskstore_ps(w2 + 8 * h, m, lo8(o->fc, h));
            _mm256_storeu_si256((__m256i *)(wi + 8 * h), _mm256_maskload_epi32(o->ia + 8 * h, m));
        }
        return !memcmp(gf, wf, 64) && !memcmp(g2, w2, 64) && !memcmp(gi, wi, 64);
    }
    case 17: { /* vpdpbusd vs exact maddubs/maddwd on nibbles + vpaddd (wrapping) */
        NAME("dpbusd_epi32, dpbusd_avx_epi32");
        const __m512i dp = _mm512_dpbusd_epi32(ic, ia, ib);
        _mm512_storeu_si512(gi, dp);
        const __m256i nib = _mm256_set1_epi8(0x0f), one = _mm256_set1_epi16(1);
        int ok = 1;
        for (int h = 0; h < 2; h++) {
            const __m256i ua = lo8i(o->ia, h), sb = lo8i(o->ib, h);
            const __m256i lo = _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_and_si256(ua, nib), sb), one);
            const __m256i hi = _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_and_si256(_mm256_srli_epi16(ua, 4), nib), sb), one);
            const __m256i want = _mm256_add_epi32(lo8i(o->ic, h), _mm256_add_epi32(lo, _mm256_slli_epi32(hi, 4)));
            _mm256_storeu_si256((__m256i *)(wi + 8 * h), want);
            int32_t v[8];
            _mm256_storeu_si256((__m256i *)v, _mm256_dpbusd_avx_epi32(lo8i(o->ic, h), ua, sb));
            ok = ok && !memcmp(v, wi + 8 * h, 32);
        }
        return ok && !memcmp(gi, wi, 64);
    }
    case 18: { /* broadcasts and masked broadcast vs blends */
        NAME("set1, setr, mask_set1_epi32, setzero");
        __m512i v = _mm512_mask_set1_epi32(_mm512_set1_epi32(o->ia[0]), o->k, o->ia[1]);
        v = _mm512_add_epi32(v, _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15));
        v = _mm512_add_epi32(v, _mm512_castps_si512(_mm512_add_ps(_mm512_setzero_ps(), _mm512_set1_ps(o->fa[0]))));
        v = _mm512_xor_si512(v, _mm512_xor_si512(_mm512_setzero_si512(), _mm512_set1_epi8((char)o->ib[0])));
        _mm512_storeu_si512(gi, v);
        for (int h = 0; h < 2; h++) {
            const __m256i m = _mm256_cmpgt_epi32(_mm256_and_si256(_mm256_set1_epi32((o->k >> (8 * h)) & 0xff),
                                                                  _mm256_setr_epi32(1, 2, 4, 8, 16, 32, 64, 128)),
                                                 _mm256_setzero_si256());
            __m256i w = _mm256_blendv_epi8(_mm256_set1_epi32(o->ia[0]), _mm256_set1_epi32(o->ia[1]), m);
            w = _mm256_add_epi32(w, _mm256_setr_epi32(8 * h, 8 * h + 1, 8 * h + 2, 8 * h + 3, 8 * h + 4, 8 * h + 5, 8 * h + 6, 8 * h + 7));
            w = _mm256_add_epi32(w, _mm256_castps_si256(_mm256_add_ps(_mm256_setzero_ps(), _mm256_set1_ps(o->fa[0]))));
            w = _mm256_xor_si256(w, _mm256_set1_epi8((char)o->ib[0]));
            _mm256_storeu_si256((__m256i *)(wi + 8 * h), w);
        }
        return !memcmp(gi, wi, 64);
    }
    default:
        return -1;
    }
#undef NAME
#undef HALVES
}

void test_emu(trun *r)
{
    if (!__builtin_cpu_supports("avx2") || !__builtin_cpu_supports("fma")) {
        t_skip(r, "emu/native_agreement", "-", "this CPU has no AVX2 + FMA to compare with");
        return;
    }
    prng pr;
    prng_seed(&pr, r->seed ^ 0xe3u);
    for (int op = 0;; op++) {
        char name[128] = "", nm[200];
        operands o;
        int ok = 1, it = 0, res = 0;
        for (; it < ITERS && ok; it++) {
            fill(&pr, &o);
            res = check(op, &o, name, sizeof name);
            if (res < 0) break;
            ok = res;
        }
        if (res < 0) break;
        snprintf(nm, sizeof nm, "emu/native_agreement/%d", op);
        if (ok)
            t_result(r, 1, nm, "-", "%s: emulated == native AVX2 halves, %d random + edge operand sets", name, ITERS);
        else
            t_result(r, 0, nm, "-", "%s: emulated != native at iteration %d (seed %llu)", name, it,
                     (unsigned long long)r->seed);
    }
}
#else
void test_emu(trun *r)
{
    t_skip(r, "emu/native_agreement", "-", "only in the emulated x86 build");
}
#endif
