/* peqa — own binary32 exp/log and the activations built on them (see mathf.h for the contract,
 * accuracy and why). Every function is a fixed sequence of correctly rounded operations; the
 * comments give the sequence a SIMD port must follow. */
#include <math.h> /* fmaf, rintf, sqrtf, fabsf (exact or correctly rounded); INFINITY, NAN. */
#include <stdint.h>
#include <string.h>
#include "mathf.h"

static inline uint32_t f2u(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

static inline float u2f(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* ---- exp ------------------------------------------------------------------------------------
 *
 * e^x = 2^n · e^r  with  n = rint(x·log2 e),  r = x − n·ln 2,  |r| ≲ ln2/2 ≈ 0.3466.
 *
 * 1. Clamp x to [−104, 89] (NaN handled separately, see below). Outside that range the result is
 *    already +0 (e^−104 < 2^−150, below half the smallest subnormal) or +Inf (e^89 > FLT_MAX),
 *    and the clamp keeps n in [−150, 128] so the scaling in step 4 never wraps the exponent.
 * 2. n = rintf(x · LOG2E): one rounded product, then round-half-to-even to an integer. n need
 *    not be the exactly nearest integer to x/ln2; |r| grows by at most ~1e-5, which the
 *    polynomial covers.
 * 3. Cody–Waite reduction with ln 2 split in two: LN2_HI = fl(ln 2) (24 significant bits),
 *    LN2_LO = fl(ln 2 − LN2_HI).  r1 = fmaf(−n, LN2_HI, x) is EXACT: the fused product n·LN2_HI
 *    is a multiple of 2^−24 (of 2^−25 when |x| < 0.5, where n is 0 or ±1), x is a multiple of the
 *    same power, and |r1| < 0.5, so r1 fits in 24 bits. r = fmaf(−n, LN2_LO, r1) then rounds
 *    once; its error (≤ 2^−25·|r|) is far below the final rounding.
 * 4. e^r by its Taylor polynomial of degree 7 in Horner form with fmaf:
 *        p = C7;  p = fmaf(p, r, Ck) for k = 6, 5, 4, 3, 2, 1, 0   (C1 = C0 = 1)
 *    Truncation: r^8/8! ≤ 0.3466^8/40320 ≈ 5.2e-9 relative, 0.04 ulp. The last step
 *    fmaf(p, r, 1) rounds once, so the result is within ~0.5 ulp plus the small error of p·r.
 * 5. Scale by 2^n through exponent bits. n ∈ [−150, 128] does not fit one binary32 power of two,
 *    so n = n1 + n2 with n1 = n/2 (C division, truncating), n2 = n − n1, both in [−75, 64]:
 *        y = (p · 2^n1) · 2^n2.
 *    p ∈ [0.70, 1.42] and 2^n1 keep p·2^n1 normal, so the first product is exact; the second is
 *    the only rounding, which produces subnormals (correctly rounded from p), +0, or +Inf.
 *    2^k is the float with bits (k + 127) << 23.
 * 6. NaN in → NaN out (x + x, quieting a signalling NaN); in SIMD compute steps 1–5 for every lane
 *    and blend the NaN lanes last (min/max instructions may drop NaN in the clamp).
 */
#define EXP_LOG2E 0x1.715476p+0f   /* fl(1/ln 2) */
#define EXP_LN2_HI 0x1.62e430p-1f  /* fl(ln 2) = 0.693147182... */
#define EXP_LN2_LO -0x1.05c610p-29f /* fl(ln 2 − LN2_HI) = −1.9046542e-09 */
#define EXP_C7 0x1.a01a02p-13f     /* fl(1/5040) */
#define EXP_C6 0x1.6c16c2p-10f     /* fl(1/720) */
#define EXP_C5 0x1.111112p-7f      /* fl(1/120) */
#define EXP_C4 0x1.555556p-5f      /* fl(1/24) */
#define EXP_C3 0x1.555556p-3f      /* fl(1/6) */
#define EXP_C2 0x1.000000p-1f      /* 1/2 */
#define EXP_XMIN (-104.0f)
#define EXP_XMAX 89.0f

float peqa_expf(float x)
{
    if (x != x) return x + x;
    float xc = x < EXP_XMIN ? EXP_XMIN : (x > EXP_XMAX ? EXP_XMAX : x);
    float n = rintf(xc * EXP_LOG2E);
    float r = fmaf(-n, EXP_LN2_HI, xc);
    r = fmaf(-n, EXP_LN2_LO, r);
    float p = EXP_C7;
    p = fmaf(p, r, EXP_C6);
    p = fmaf(p, r, EXP_C5);
    p = fmaf(p, r, EXP_C4);
    p = fmaf(p, r, EXP_C3);
    p = fmaf(p, r, EXP_C2);
    p = fmaf(p, r, 1.0f);
    p = fmaf(p, r, 1.0f);
    int32_t ni = (int32_t)n; /* exact: n is an integer in [-150, 128] */
    int32_t n1 = ni / 2, n2 = ni - n1;
    float s1 = u2f((uint32_t)(n1 + 127) << 23);
    float s2 = u2f((uint32_t)(n2 + 127) << 23);
    return (p * s1) * s2;
}

/* ---- log ------------------------------------------------------------------------------------
 *
 * Write x = 2^e · m with m ∈ [√½, √2); then log x = e·ln 2 + log(1 + f), f = m − 1 ∈ [−0.293, 0.415].
 *
 * 1. Special inputs: NaN → NaN (x + x); x < 0 → NaN; ±0 → −Inf; +Inf → +Inf.
 * 2. Subnormal x: multiply by 2^23 (exact) and take 23 from e.
 * 3. e = biased exponent − 127; m = the significand with exponent 0, in [1, 2). If m > fl(√2)
 *    (0x1.6a09e6p+0, just below √2) then m = m·0.5 and e = e + 1 (both exact).
 * 4. f = m − 1: exact (Sterbenz: m ∈ [0.5, 2]).
 * 5. log(1+f) with s = f/(2+f) (|s| ≤ 0.1716) and the series
 *        log(1+f) = log((1+s)/(1−s)) = 2s + 2s³/3 + 2s⁵/5 + … = 2s + s·R,
 *        R = z·(2/3 + z·(2/5 + z·(2/7 + z·2/9))),  z = s²,
 *    truncated after 2s⁹/9 (the next term, 2s¹¹/11, is ≤ 1.3e-8 of the result, 0.1 ulp).
 *    Since 2s = f − s·f, and with hfsq = f²/2:  log(1+f) = f − (hfsq − s·(hfsq + R)).
 *    The leading term f is exact and the rounded correction is ≤ |f|/2 of the result, so the
 *    error of s (from 2+f and the division) barely reaches the output.
 *    Sequence:  s = f / (2.0f + f);  z = s·s;
 *               R = z · fmaf(fmaf(fmaf(L4, z, L3), z, L2), z, L1);
 *               hfsq = (0.5f·f)·f;   c = fmaf(−s, hfsq + R, hfsq);   lp = f − c
 * 6. log x = e·ln 2 + lp = fmaf(e, LN2_HI, fmaf(e, LN2_LO, lp)) with e converted to float
 *    exactly; the fused products keep e·LN2_HI exact.
 */
#define LOG_SQRT2 0x1.6a09e6p+0f
#define LOG_L1 0x1.555556p-1f /* fl(2/3) */
#define LOG_L2 0x1.99999ap-2f /* fl(2/5) */
#define LOG_L3 0x1.24924ap-2f /* fl(2/7) */
#define LOG_L4 0x1.c71c72p-3f /* fl(2/9) */

float peqa_logf(float x)
{
    if (x != x) return x + x;
    if (x < 0.0f) return NAN;
    if (x == 0.0f) return -INFINITY;
    if (x == INFINITY) return x;
    int32_t e = 0;
    uint32_t ix = f2u(x);
    if (ix < 0x00800000u) { /* subnormal */
        x *= 0x1p23f;
        ix = f2u(x);
        e = -23;
    }
    e += (int32_t)(ix >> 23) - 127;
    float m = u2f((ix & 0x007fffffu) | 0x3f800000u);
    if (m > LOG_SQRT2) {
        m *= 0.5f;
        e += 1;
    }
    float f = m - 1.0f;
    float s = f / (2.0f + f);
    float z = s * s;
    float R = z * fmaf(fmaf(fmaf(LOG_L4, z, LOG_L3), z, LOG_L2), z, LOG_L1);
    float hfsq = (0.5f * f) * f;
    float c = fmaf(-s, hfsq + R, hfsq);
    float lp = f - c;
    float ef = (float)e;
    return fmaf(ef, EXP_LN2_HI, fmaf(ef, EXP_LN2_LO, lp));
}

/* ---- activations ----------------------------------------------------------------------------
 *
 * All three start from e = peqa_expf(−|x|) ∈ (0, 1] and d = 1.0f + e, so the exponential never
 * overflows: with e^(−x) for x < −88.7 the quotient 1/(1 + e^(−x)) would be 1/Inf = 0 while σ is
 * still a representable 1e-39 (and silu a normal −1e-37). By symmetry σ(−x) = 1 − σ(x):
 *     x >= 0:  σ = 1/d,  1 − σ = e/d,  silu = x/d
 *     x <  0:  σ = e/d,  1 − σ = 1/d,  silu = (x·e)/d
 * (a per-lane select on the sign in SIMD code; both quotients are computed, then blended).
 * Writing 1 − σ as a quotient rather than the subtraction keeps it accurate when σ → 1.
 */
float peqa_sigmoidf(float x)
{
    const float e = peqa_expf(-fabsf(x)), d = 1.0f + e;
    return x >= 0.0f ? 1.0f / d : e / d;
}

float peqa_siluf(float x)
{
    const float e = peqa_expf(-fabsf(x)), d = 1.0f + e;
    return x >= 0.0f ? x / d : (x * e) / d;
}

/* silu'(x) = σ + silu·(1 − σ) = fmaf(silu, 1 − σ, σ), with σ, 1 − σ and silu as above (silu has
 * exactly the bits of peqa_siluf(x)). */
float peqa_silu_gradf(float x)
{
    const float e = peqa_expf(-fabsf(x)), d = 1.0f + e;
    const float p = 1.0f / d, q = e / d; /* σ(|x|), σ(−|x|) */
    const float sg = x >= 0.0f ? p : q, om = x >= 0.0f ? q : p;
    const float si = x >= 0.0f ? x / d : (x * e) / d;
    return fmaf(si, om, sg);
}

float peqa_rsqrtf(float x) { return 1.0f / sqrtf(x); }
