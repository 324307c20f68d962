/* The x86 sgemm kernels' shared blocking (sgemm_avx2.c, sgemm_avx512.c): block sizes, tail masks
 * and the empty-sum store. The including file defines MR (its micro-tile height) first. Built
 * with AVX2 at least (AVX-512 files have it too). */
#ifndef PEQA_SGEMM_BLOCKING_H
#define PEQA_SGEMM_BLOCKING_H
#include <stdint.h>
#include <immintrin.h>
#ifndef MR
#error "define MR before including sgemm_blocking.h"
#endif

/* Blocking (cache sizes only; they change no bit). Measured on Zen 3 at M = N = K = 512 (and
 * 256 x 4096 x 512): for nt / nn, KC in 128..384, NC in 32..128 and MC in 72..240 are all within
 * the machine's noise of each other; tn gains from a wider NC (fewer copies of its A block),
 * bought with a shorter KC to keep the stack small.
 *   nt / nn  KC = 256: a panel is KC x 16 floats = 16 KB, half of L1D;
 *            NC = 64: the B block is KC x NC floats = 64 KB of stack;
 *            MC = 144: the A block touched by one panel sweep, MC x KC floats = 144 KB of L2.
 *   tn       KC = 128 (8 KB panels), NC = 128 (64 KB B block), MC = 72 (36 KB A block). */
#ifndef SG_KC
#define SG_KC 256
#endif
#ifndef SG_NC
#define SG_NC 64
#endif
#ifndef SG_MC
#define SG_MC 144
#endif
#ifndef SG_KC_TN
#define SG_KC_TN 128
#endif
#ifndef SG_NC_TN
#define SG_NC_TN 128
#endif
#ifndef SG_MC_TN
#define SG_MC_TN 72
#endif
_Static_assert(SG_KC >= 8 && SG_NC % 16 == 0 && SG_MC % MR == 0, "block sizes");
_Static_assert(SG_KC_TN >= 8 && SG_NC_TN % 16 == 0 && SG_MC_TN % MR == 0, "tn block sizes");

static inline int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }

/* Lanes l < n (n clamped to 0..8) all-ones: the mask for maskload/maskstore of a row tail. */
static inline __m256i lane_mask(int64_t n)
{
    int v = n < 0 ? 0 : n > 8 ? 8 : (int)n;
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(v), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

/* 16 consecutive floats stored from two ymm, only the first `valid` (tails, the empty sum). */
static inline void store16(float *p, int64_t valid, __m256 lo, __m256 hi)
{
    if (valid >= 16) {
        _mm256_storeu_ps(p, lo), _mm256_storeu_ps(p + 8, hi);
    } else {
        _mm256_maskstore_ps(p, lane_mask(valid), lo);
        _mm256_maskstore_ps(p + 8, lane_mask(valid - 8), hi);
    }
}

#endif
