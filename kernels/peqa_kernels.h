/* peqa — kernel ABI and the packed weight layout.
 *
 * This header is shared by the portable framework (src/) and every kernel (kernels/). It defines
 * the one packed layout of quantized weights (identical on every ISA, so a file written on x86
 * loads on ARM) and the function-pointer table that dispatch fills.
 *
 * ---------------------------------------------------------------------------------------------
 * PACKED LAYOUT (format version 1)
 *
 * A weight is N x K codes q[n,k] in [0, 2^b - 1], b in {2, 3, 4, 8}.
 *
 * Rows are grouped in TILES of PEQA_NR = 16 output rows (N is padded up to a multiple of 16),
 * columns in K-BLOCKS of PEQA_KB = 32 (K is padded up to a multiple of 32). Padding codes are 0.
 * One (tile t, k-block c) cell holds 16 rows x 32 codes x b bits = 64 b bytes, stored as b
 * "word vectors" of 16 little-endian uint32, one word per row:
 *
 *     word index  =  ((t * KBLK + c) * b + w) * 16 + r        for row n = 16 t + r
 *
 * so one 64-byte load (or 2 x 32 bytes, 4 x 16 bytes) gives the same word of 16 consecutive
 * rows: output rows land in SIMD lanes, which is what the canonical arithmetic needs (SPEC §6:
 * lanes over outputs, reductions sequential).
 *
 * A word of a "p-bit plane" (p in {1, 2, 4, 8}) holds 32/p codes of one row. Byte i (i = 0..3)
 * of the word, bit field s (width p, bits [8 i + p s, 8 i + p s + p)) holds local index
 * t = i + 4 s, s = 0 .. 8/p - 1. Hence
 *
 *     (word >> (p * s)) & MASK_p      with MASK_p = 0x01010101 * (2^p - 1)
 *
 * yields four BYTES holding the codes of four CONSECUTIVE columns 4s .. 4s+3: exactly the
 * operand shape of vpdpbusd / vpmaddubsw / sdot, so the integer path needs no byte shuffles.
 *
 * Planes per bit width (words w = 0 .. b-1 inside a cell, columns relative to 32 c):
 *   b = 8 : one 8-bit plane;  word w covers columns 4w .. 4w+3.
 *   b = 4 : one 4-bit plane;  word w covers columns 8w .. 8w+7.
 *   b = 2 : one 2-bit plane;  word w covers columns 16w .. 16w+15.
 *   b = 3 : low two bits in a 2-bit plane (words 0,1; columns 16w .. 16w+15) and the high bit in
 *           a 1-bit plane (word 2, columns 0 .. 31);  q = low | (high << 2).
 *
 * Scales and zero points are stored per tile as well:  s_tiled[(t * G + j) * 16 + r]  (fp32,
 * padded rows hold 0), so one vector load gives s[n, j] of 16 consecutive rows.
 *
 * Group sizes: g is a multiple of 32 or g == K (per-channel); the last group of a row may be
 * shorter (SPEC §2). Therefore a k-block never straddles two groups.
 *
 * The int8 activation path quantizes activations in blocks of PEQA_KB = 32 columns
 * (block b covers columns 32b .. 32b+31, the last one shorter), which nest inside groups.
 * ---------------------------------------------------------------------------------------------
 */
#ifndef PEQA_KERNELS_H
#define PEQA_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#define PEQA_NR 16 /* rows per tile */
#define PEQA_KB 32 /* columns per k-block (and per activation-quantization block) */

_Static_assert(PEQA_NR == 16 && PEQA_KB == 32, "the packed format is fixed at 16 x 32 cells");

/* A read-only view of a quantized weight, everything a kernel needs. */
typedef struct peqa_qw {
    int bits;         /* 2, 3, 4 or 8 */
    int64_t n, k;     /* logical shape N x K */
    int64_t g;        /* group size (g == k for per-channel) */
    int64_t ng;       /* groups per row G = ceil(k / g) */
    int64_t ntiles;   /* ceil(n / 16) */
    int64_t kblk;     /* ceil(k / 32) */
    const uint32_t *qp; /* packed words, ntiles * kblk * bits * 16 */
    const float *s;     /* tiled scales [ntiles][ng][16] */
    const float *z;     /* tiled zero points [ntiles][ng][16] */
} peqa_qw;

/* Index helpers shared by the reference and the framework (not by hot SIMD loops). */
static inline const uint32_t *peqa_cell(const peqa_qw *w, int64_t t, int64_t c)
{
    return w->qp + ((size_t)(t * w->kblk + c) * (size_t)w->bits) * PEQA_NR;
}

/* Code of row n, column k, read through the documented layout. */
static inline unsigned peqa_code_at(const peqa_qw *w, int64_t n, int64_t k)
{
    const uint32_t *cell = peqa_cell(w, n / PEQA_NR, k / PEQA_KB);
    unsigned r = (unsigned)(n % PEQA_NR), kk = (unsigned)(k % PEQA_KB);
    if (w->bits == 3) {
        unsigned t2 = kk % 16, w2 = kk / 16;
        uint32_t lo = cell[w2 * PEQA_NR + r], hi = cell[2 * PEQA_NR + r];
        unsigned l = (lo >> (8 * (t2 % 4) + 2 * (t2 / 4))) & 3u;
        unsigned h = (hi >> (8 * (kk % 4) + (kk / 4))) & 1u;
        return l | (h << 2);
    }
    unsigned p = (unsigned)w->bits, per = 32 / p, wi = kk / per, t = kk % per;
    uint32_t word = cell[wi * PEQA_NR + r];
    return (word >> (8 * (t % 4) + p * (t / 4))) & ((1u << p) - 1u);
}

static inline float peqa_s_at(const peqa_qw *w, int64_t n, int64_t j)
{
    return w->s[((size_t)(n / PEQA_NR) * (size_t)w->ng + (size_t)j) * PEQA_NR + (size_t)(n % PEQA_NR)];
}
static inline float peqa_z_at(const peqa_qw *w, int64_t n, int64_t j)
{
    return w->z[((size_t)(n / PEQA_NR) * (size_t)w->ng + (size_t)j) * PEQA_NR + (size_t)(n % PEQA_NR)];
}

/* GEMV kernels stream three arrays per tile from DRAM (codes, s, z) and read each weight once, so
 * they ask for the data ahead of the hardware prefetchers. Addresses are formed as integers
 * because they may lie past the arrays; prefetches never fault.
 * peqa_prefetch_cell: the bits 64-byte lines of the cell `ahead` bytes after `cell` (the same
 * tile's stream, or the next tile's past its end). */
static inline void peqa_prefetch_cell(const uint32_t *cell, int bits, size_t ahead)
{
    const uintptr_t a = (uintptr_t)cell + ahead;
    for (int l = 0; l < bits; l++) __builtin_prefetch((const void *)(a + 64 * (uintptr_t)l), 0, 3);
}
/* peqa_prefetch_sz: the hardware prefetchers follow the codes but not all the side streams of
 * several tiles, and a late z stalls the start of a group's chains. So at the start of group j
 * the kernels request z and s of group j + PEQA_SZ_AHEAD (the next tile's once past G: the
 * tiled arrays are contiguous). */
#define PEQA_SZ_AHEAD 2
static inline void peqa_prefetch_sz(const peqa_qw *w, int64_t t, int64_t j)
{
    const uintptr_t off = (uintptr_t)((t * w->ng + j + PEQA_SZ_AHEAD) * PEQA_NR) * sizeof(float);
    __builtin_prefetch((const void *)((uintptr_t)w->z + off), 0, 3);
    __builtin_prefetch((const void *)((uintptr_t)w->s + off), 0, 3);
}

/* ---------------------------------------------------------------------------------------------
 * Kernel slots. Row ranges [n0, n1) start at a multiple of 16 and end at a multiple of 16 or at
 * N; column ranges [k0, k1) start at a multiple of 32 and end at a multiple of 32 or at K. The
 * contract of every slot (its exact operation sequence) is written above its reference
 * implementation in kernels/ref/. Matrices are row-major with explicit leading dimensions.
 * ------------------------------------------------------------------------------------------- */

/* codes[(n - n0) * ldc + k] = q[n, k] for n in [n0, n1), k in [0, K). */
typedef void (*peqa_unpack_fn)(const peqa_qw *w, int64_t n0, int64_t n1, uint8_t *codes, int64_t ldc);
/* out[(n - n0) * ldo + k] = s[n,j] * ((float)q[n,k] - z[n,j]). */
typedef void (*peqa_dequant_fn)(const peqa_qw *w, int64_t n0, int64_t n1, float *out, int64_t ldo);
/* Y[m, n] for m in [m0, m1), n in [n0, n1), fp32 activations. */
typedef void (*peqa_fwd_fn)(const peqa_qw *w, int64_t m0, int64_t m1, int64_t n0, int64_t n1,
                            const float *x, int64_t ldx, float *y, int64_t ldy);
/* ds[n * G + j] (canonical layout) for n in [n0, n1), all j; sums over all M rows. */
typedef void (*peqa_gscale_fn)(const peqa_qw *w, int64_t m, int64_t n0, int64_t n1,
                               const float *x, int64_t ldx, const float *dy, int64_t lddy, float *ds);
/* dz[n * G + j] for n in [n0, n1); sums over all M rows. */
typedef void (*peqa_gzero_fn)(const peqa_qw *w, int64_t m, int64_t n0, int64_t n1,
                              const float *x, int64_t ldx, const float *dy, int64_t lddy, float *dz);
/* dX[m, k] for m in [m0, m1), k in [k0, k1); sums over all N rows. */
typedef void (*peqa_ginput_fn)(const peqa_qw *w, int64_t m0, int64_t m1, int64_t k0, int64_t k1,
                               const float *dy, int64_t lddy, float *dx, int64_t lddx);
/* Rows [m0, m1) of X (M x K) -> int8 codes xq (ldq) and per-block scales xs (ldxs >= ceil(K/32)).
 * Inputs must be finite (the framework checks). */
typedef void (*peqa_qact_fn)(int64_t m0, int64_t m1, int64_t k, const float *x, int64_t ldx,
                             int8_t *xq, int64_t ldq, float *xs, int64_t ldxs);
/* Y[m, n] from int8 activations, m in [m0, m1), n in [n0, n1). */
typedef void (*peqa_fwd_i8_fn)(const peqa_qw *w, int64_t m0, int64_t m1, int64_t n0, int64_t n1,
                               const int8_t *xq, int64_t ldq, const float *xs, int64_t ldxs,
                               float *y, int64_t ldy);

/* Dense fp32 matrices (the full-precision mode, attention products). Row-major, rows [m0, m1)
 * and columns [c0, c1) of the output:
 *   sgemm_nt:  C[m, n] = Σ_k A[m, k] · B[n, k]    (Y = X·Wᵀ)       k ascending
 *   sgemm_nn:  C[m, k] = Σ_n A[m, n] · B[n, k]    (dX = dY·W)      n ascending
 *   sgemm_tn:  C[n, k] = Σ_m A[m, n] · B[m, k]    (dW = dYᵀ·X)     m ascending
 * each as c = 0; c = fmaf(a, b, c) over the reduction index in ascending order. */
typedef void (*peqa_sgemm_fn)(int64_t m0, int64_t m1, int64_t c0, int64_t c1, int64_t red,
                              const float *a, int64_t lda, const float *b, int64_t ldb, float *c,
                              int64_t ldc);

/* Causal grouped-query attention of one sequence; src/ops.h documents the math and the exact
 * binary32 sequences, kernels/ref/attn_ref.c is the reference. q: tq x Hq x hd, k and v:
 * tk x Hkv x hd (row-major, one row per token), query row i sees keys 0 .. tk - tq + i, query
 * head h reads kv head h / (Hq / Hkv).
 *   attn_fwd_head   query head h for every row: out (tq x Hq x hd, that head's slices) and
 *                   stats (the softmax max and sum per row and head, tq x Hq x 2; may be NULL)
 *   attn_bwd_group  kv head g: dq of its query heads (overwritten), dk and dv of g (zeroed,
 *                   then accumulated over its query heads and rows in ascending order)
 * scratch: PEQA_ATTN_*_SCRATCH floats, owned by the call (kernels may keep transposed copies of
 * the kv head there). Units (heads, groups) write disjoint outputs, so drivers split over them. */
typedef struct peqa_attn_dims {
    int64_t tq, tk, n_heads, n_kv_heads, head_dim;
} peqa_attn_dims;
#define PEQA_ATTN_FWD_SCRATCH(d) ((size_t)(d)->tk * (size_t)(1 + (d)->head_dim))
#define PEQA_ATTN_BWD_SCRATCH(d) ((size_t)(d)->tk * (size_t)(2 + 2 * (d)->head_dim))
typedef void (*peqa_attn_fwd_fn)(const peqa_attn_dims *d, int64_t h, const float *q, const float *k,
                                 const float *v, float *out, float *stats, float *scratch);
typedef void (*peqa_attn_bwd_fn)(const peqa_attn_dims *d, int64_t g, const float *q, const float *k,
                                 const float *v, const float *stats, const float *dout, float *dq,
                                 float *dk, float *dv, float *scratch);

/* Bit-width index used by the per-width slots: 2 -> 0, 3 -> 1, 4 -> 2, 8 -> 3. */
#define PEQA_NBITS 4
static inline int peqa_bits_index(int bits) { return bits == 2 ? 0 : bits == 3 ? 1 : bits == 4 ? 2 : 3; }

typedef struct peqa_kernels {
    const char *isa; /* "scalar", "avx2", "avx512", "neon" */
    peqa_unpack_fn unpack[PEQA_NBITS];
    peqa_dequant_fn dequant[PEQA_NBITS];
    peqa_fwd_fn fwd_gemv[PEQA_NBITS];   /* used when M == 1 */
    peqa_fwd_fn fwd_gemm[PEQA_NBITS];   /* used when M > 1 */
    peqa_gscale_fn gscale[PEQA_NBITS];
    peqa_gzero_fn gzero[PEQA_NBITS];
    peqa_ginput_fn ginput[PEQA_NBITS];
    peqa_qact_fn qact;
    peqa_fwd_i8_fn fwd_i8_gemv[PEQA_NBITS];
    peqa_fwd_i8_fn fwd_i8_gemm[PEQA_NBITS];
    peqa_sgemm_fn sgemm_nt, sgemm_nn, sgemm_tn;
    peqa_attn_fwd_fn attn_fwd_head;
    peqa_attn_bwd_fn attn_bwd_group;
    /* names of the functions in the slots, for `peqa info` */
    const char *unpack_name[PEQA_NBITS], *dequant_name[PEQA_NBITS], *fwd_gemv_name[PEQA_NBITS],
        *fwd_gemm_name[PEQA_NBITS], *gscale_name[PEQA_NBITS], *gzero_name[PEQA_NBITS],
        *ginput_name[PEQA_NBITS], *qact_name, *fwd_i8_gemv_name[PEQA_NBITS],
        *fwd_i8_gemm_name[PEQA_NBITS], *sgemm_nt_name, *sgemm_nn_name, *sgemm_tn_name,
        *attn_fwd_head_name, *attn_bwd_group_name;
} peqa_kernels;

/* CPU feature bits, detected by src/cpu.c and passed to the fillers (kernels read no globals). */
enum {
    PEQA_CPU_AVX2 = 1u << 0,     /* AVX2 + FMA + OS-enabled YMM state */
    PEQA_CPU_AVXVNNI = 1u << 1,  /* VEX-encoded vpdpbusd on 256-bit registers */
    PEQA_CPU_AVX512 = 1u << 2,   /* AVX-512 F + BW + VL + OS-enabled ZMM/opmask state */
    PEQA_CPU_AVX512VNNI = 1u << 3,
    PEQA_CPU_NEON = 1u << 8,     /* AArch64 Advanced SIMD */
    PEQA_CPU_DOTPROD = 1u << 9   /* AArch64 sdot/udot */
};

/* Fillers: the reference fills every slot; each ISA file group overrides what it implements,
 * choosing variants by the feature bits it is given. */
void peqa_kernels_init_ref(peqa_kernels *k);
void peqa_kernels_init_avx2(peqa_kernels *k, unsigned features);   /* kernels/x86/ *_avx2.c  */
void peqa_kernels_init_avxvnni(peqa_kernels *k, unsigned features); /* kernels/x86/ *_avxvnni.c */
void peqa_kernels_init_avx512(peqa_kernels *k, unsigned features); /* kernels/x86/ *_avx512*.c */
void peqa_kernels_init_neon(peqa_kernels *k, unsigned features);   /* kernels/arm/ *_neon.c   */

#endif
