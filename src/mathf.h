/* peqa — the project's own binary32 exp and log (SPEC §6 rule 4), and the activations built on
 * them. Internal header (not installed).
 *
 * Why our own: libm's expf/logf differ between C libraries, versions and ISAs (glibc, musl,
 * vendor vector libraries), so a softmax, SiLU or loss built on them could not be bit-identical
 * across the kernels SPEC §6 compares. Each function below is one fixed sequence of correctly
 * rounded binary32 operations (+ − × ÷, sqrt, fmaf, rintf, compare/select and exponent-bit
 * manipulation) that a SIMD port reproduces lane by lane, bit for bit:
 *  - every branch is a select: on special inputs (NaN, ±Inf, 0, negative, subnormal), on
 *    m > √2 in log, on the sign of x in the activations. SIMD code computes both sides for
 *    every lane and blends (for special inputs: the main path, then the special lanes last);
 *  - rintf is round-half-to-even in the default rounding mode (ROUNDPS imm 0 / FRINTN);
 *  - fmaf is the fused multiply-add instruction (VFMADD / FMLA).
 *
 * Accuracy against double-precision exp/log, in ulp of the binary32 result (the ulp of the
 * exact value's binade; 2^-149 for subnormal results). Measured EXHAUSTIVELY once over all 2^32
 * bit patterns (x86-64, glibc 2.x exp/log as the reference, ~4 minutes):
 *     peqa_expf  max 0.939 ulp for normal results (worst x = 0x1.ab05d2p+4),
 *                max 0.849 ulp of the subnormal spacing for subnormal results (x = -0x1.5eafeap+6)
 *     peqa_logf  max 0.876 ulp over every positive finite input, subnormals included
 *                (worst x = 0x1.68fd1ep-1)
 * tests/test_ops.c repeats this on a strided sweep of every bit pattern plus dense windows
 * around the worst inputs above and asserts <= 1 ulp for both, and checks the special values.
 */
#ifndef PEQA_MATHF_H
#define PEQA_MATHF_H

/* e^x.  NaN -> NaN, +Inf and x > ~88.7228 -> +Inf, -Inf and x < ~-103.97 -> +0. */
float peqa_expf(float x);

/* Natural log.  x < 0 (including -Inf) -> NaN, ±0 -> -Inf, +Inf -> +Inf, NaN -> NaN, 1 -> +0. */
float peqa_logf(float x);

/* The activations all start from e = peqa_expf(−|x|) (never overflows) and d = 1.0f + e, and
 * select on the sign of x (σ(−x) = 1 − σ(x)):
 *   peqa_sigmoidf   σ(x) = 1/(1 + e^(−x)):      x >= 0 ? 1.0f / d : e / d
 *   peqa_siluf      x·σ(x):                      x >= 0 ? x / d : (x * e) / d
 *   peqa_silu_gradf σ·(1 + x·(1 − σ)) = σ + silu·(1 − σ):
 *                   fmaf(silu, 1 − σ, σ) with 1 − σ = x >= 0 ? e / d : 1.0f / d
 * Accuracy (tests/test_ops.c, x in [−100, 100]): sigmoid and silu within 4·2^-24 relative,
 * silu' within 8·2^-24·(σ + |silu·(1 − σ)|), each plus (1 + |x|)·2^-149 absolute: for
 * x < −87.3, e is subnormal (absolute spacing 2^-149) and silu = (x·e)/d scales that by |x|
 * (under 1.5e-43 in all). Large |x| saturates cleanly (σ → 0 or 1, silu → −0 or x, silu' → 0 or 1); the
 * inputs are expected finite (silu'(±Inf) is NaN). */
float peqa_sigmoidf(float x);
float peqa_siluf(float x);
float peqa_silu_gradf(float x);

/* 1/√x as 1.0f / sqrtf(x): both correctly rounded, so every ISA agrees. No approximate RSQRT. */
float peqa_rsqrtf(float x);

#endif
