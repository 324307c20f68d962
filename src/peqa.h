/* peqa — quantized fine-tuning of LLaMA-family models on CPUs. The one public header.
 *
 * Conventions
 *  - A linear layer has weight W (N x K, row-major, the nn.Linear convention), input X (M x K),
 *    output Y = X · Wᵀ (M x N). Matrices are row-major with an explicit leading dimension
 *    (ld >= number of columns).
 *  - Groups: g consecutive input columns of one output row share a scale s and a zero point z.
 *    g must be a multiple of 32, or g == K (per-channel; pass 0 or any g >= K for that). When g
 *    does not divide K the last group is shorter. G = ceil(K / g).
 *  - Ŵ[n,k] = s[n, k/g] · (q[n,k] − z[n, k/g]),  q in [0, 2^b − 1], b in {2, 3, 4, 8}.
 *  - The canonical unpacked form: codes uint8 N x K, s and z fp32 N x G (row n, group j at
 *    n * G + j).
 *  - Every function validates its arguments and returns a status; on error nothing is written
 *    to the caller's outputs and peqa_last_error() describes the problem. The library never
 *    prints, aborts or exits.
 *  - Every float result is defined bit for bit by the scalar reference kernels (kernels/ref/);
 *    every ISA and thread count returns the same bits.
 */
#ifndef PEQA_H
#define PEQA_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define PEQA_VERSION_MAJOR 0
#define PEQA_VERSION_MINOR 1
#define PEQA_VERSION_PATCH 0
#define PEQA_VERSION_STRING "0.1.0"

/* Version of the packed weight layout (kernels/peqa_kernels.h). */
#define PEQA_PACK_FORMAT_VERSION 1
/* Columns per int8 activation-quantization block. */
#define PEQA_ACT_BLOCK 32

const char *peqa_version(void);

typedef enum peqa_status {
    PEQA_OK = 0,
    PEQA_ERR_NULL,      /* a required pointer is NULL */
    PEQA_ERR_SHAPE,     /* a dimension is < 1, a leading dimension too small, or shapes disagree */
    PEQA_ERR_BITS,      /* bit width not in {2, 3, 4, 8} */
    PEQA_ERR_GROUP,     /* group size not a multiple of 32 and not per-channel */
    PEQA_ERR_OVERFLOW,  /* a size computation overflows */
    PEQA_ERR_NOMEM,     /* an allocation failed */
    PEQA_ERR_NONFINITE, /* NaN or Inf where a finite value is required */
    PEQA_ERR_RANGE,     /* a value outside its domain (a code > 2^b - 1, ...) */
    PEQA_ERR_ISA,       /* requested ISA unknown or not supported by this CPU */
    PEQA_ERR_ARG,       /* another invalid argument (see peqa_last_error) */
    PEQA_ERR_IO,        /* a file could not be read or written */
    PEQA_ERR_FORMAT,    /* a file or buffer is malformed */
    PEQA_STATUS_COUNT
} peqa_status;

/* A short constant description of a status ("out of memory", ...); never NULL. */
const char *peqa_status_string(peqa_status s);
/* The detailed message of the last failing call in this thread ("" if none); valid until the
 * next failing call in the same thread. */
const char *peqa_last_error(void);

/* ---- Context: the ISA choice (kernel table) and the thread pool ------------------------- */

typedef struct peqa_ctx peqa_ctx;

typedef struct peqa_ctx_options {
    /* Number of threads, including the caller. 0: PEQA_THREADS from the environment if set,
     * else the CPUs this process may run on. */
    int threads;
    /* "scalar", "avx2", "avx512", "neon", or NULL / "" for PEQA_ISA from the environment if
     * set, else the best the CPU supports. A level above what the CPU supports is an error. */
    const char *isa;
} peqa_ctx_options;

/* opt may be NULL (all defaults). */
peqa_status peqa_ctx_create(const peqa_ctx_options *opt, peqa_ctx **out);
void peqa_ctx_free(peqa_ctx *ctx); /* NULL is fine */
const char *peqa_ctx_isa(const peqa_ctx *ctx);
int peqa_ctx_threads(const peqa_ctx *ctx);

/* Detected CPU features as text ("avx2 fma avx512f ..."), and the highest ISA level usable. */
const char *peqa_cpu_features(void);
const char *peqa_cpu_best_isa(void);
/* Name of the kernel that fills slot `slot` for bit width `bits` in this context; slots:
 * "unpack", "dequant", "fwd_gemv", "fwd_gemm", "gscale", "gzero", "ginput", "qact",
 * "fwd_i8_gemv", "fwd_i8_gemm", and (bits ignored) "sgemm_nt", "sgemm_nn", "sgemm_tn",
 * "attn_fwd_head", "attn_bwd_group". NULL for an unknown slot or bit width. */
const char *peqa_ctx_kernel_name(const peqa_ctx *ctx, const char *slot, int bits);

/* ---- Quantized tensor --------------------------------------------------------------------- */

typedef struct peqa_qtensor peqa_qtensor;

typedef struct peqa_qtensor_info {
    int64_t n, k;        /* shape N x K */
    int bits;            /* 2, 3, 4 or 8 */
    int64_t group;       /* group size as stored (K for per-channel) */
    int64_t ngroups;     /* G */
    size_t packed_bytes; /* packed codes, the documented layout (with tile padding) */
    size_t scale_bytes;  /* N * G * 4: one of s or z in canonical form */
    size_t code_bytes;   /* N * K: codes in canonical (uint8) form */
} peqa_qtensor_info;

/* Sizes for a tensor of this shape without creating it (validates like create). */
peqa_status peqa_qtensor_sizes(int64_t n, int64_t k, int bits, int64_t group, peqa_qtensor_info *info);
/* A zero tensor (all codes 0, s = 0, z = 0). group 0 or >= k: per-channel. */
peqa_status peqa_qtensor_create(int64_t n, int64_t k, int bits, int64_t group, peqa_qtensor **out);
void peqa_qtensor_free(peqa_qtensor *t); /* NULL is fine */
peqa_status peqa_qtensor_get_info(const peqa_qtensor *t, peqa_qtensor_info *info);

/* Round-to-nearest quantization of fp32 weights w (N x K, leading dimension ldw), exactly as
 * SPEC §3 (GPTQ convention: the range always contains 0). NaN/Inf -> PEQA_ERR_NONFINITE. */
peqa_status peqa_qtensor_quantize_rtn(peqa_qtensor *t, const float *w, int64_t ldw);

/* Canonical form in and out. import: every code must be <= 2^b - 1, s and z finite; nothing is
 * changed on error. export: any of codes / s / z may be NULL to skip it. */
peqa_status peqa_qtensor_import(peqa_qtensor *t, const uint8_t *codes, int64_t ldc, const float *s,
                                const float *z);
peqa_status peqa_qtensor_export(const peqa_ctx *ctx, const peqa_qtensor *t, uint8_t *codes,
                                int64_t ldc, float *s, float *z);
/* Scales / zero points alone (N x G canonical), e.g. for training or task switching. */
peqa_status peqa_qtensor_set_scales(peqa_qtensor *t, const float *s);
peqa_status peqa_qtensor_get_scales(const peqa_qtensor *t, float *s);
peqa_status peqa_qtensor_set_zeros(peqa_qtensor *t, const float *z);
peqa_status peqa_qtensor_get_zeros(const peqa_qtensor *t, float *z);
/* The packed codes as bytes (little-endian words, the documented layout): for file I/O. */
peqa_status peqa_qtensor_packed(const peqa_qtensor *t, const void **data, size_t *bytes);
peqa_status peqa_qtensor_load_packed(peqa_qtensor *t, const void *data, size_t bytes);

/* w (N x K, ldw) = Ŵ. */
peqa_status peqa_qtensor_dequantize(const peqa_ctx *ctx, const peqa_qtensor *t, float *w, int64_t ldw);

/* ---- Layer operations (SPEC §4, §7) ------------------------------------------------------ */

/* Y (M x N, ldy) = X (M x K, ldx) · Ŵᵀ. */
peqa_status peqa_linear_forward(peqa_ctx *ctx, const peqa_qtensor *w, int64_t m, const float *x,
                                int64_t ldx, float *y, int64_t ldy);
/* dS (N x G canonical) = Σ_m dY[m,n] · P[m,n,j]. */
peqa_status peqa_linear_grad_scale(peqa_ctx *ctx, const peqa_qtensor *w, int64_t m,
                                   const float *x, int64_t ldx, const float *dy, int64_t lddy,
                                   float *ds);
/* dZ (N x G canonical) = −s[n,j] · Σ_m dY[m,n] · Σ_{k in j} X[m,k]. */
peqa_status peqa_linear_grad_zero(peqa_ctx *ctx, const peqa_qtensor *w, int64_t m,
                                  const float *x, int64_t ldx, const float *dy, int64_t lddy,
                                  float *dz);
/* dX (M x K, lddx) = dY (M x N, lddy) · Ŵ. */
peqa_status peqa_linear_grad_input(peqa_ctx *ctx, const peqa_qtensor *w, int64_t m,
                                   const float *dy, int64_t lddy, float *dx, int64_t lddx);

/* int8 activations: xq (M x K, ldq), xs (M x ceil(K/32), ldxs) per-block scales. X must be
 * finite (else PEQA_ERR_NONFINITE, nothing written). */
peqa_status peqa_act_quantize(peqa_ctx *ctx, int64_t m, int64_t k, const float *x, int64_t ldx,
                              int8_t *xq, int64_t ldq, float *xs, int64_t ldxs);
/* Y (M x N) from int8 activations and the integer codes (integer dot products). */
peqa_status peqa_linear_forward_i8(peqa_ctx *ctx, const peqa_qtensor *w, int64_t m,
                                   const int8_t *xq, int64_t ldq, const float *xs, int64_t ldxs,
                                   float *y, int64_t ldy);

/* ---- Dense fp32 products (full-precision layers, attention) ------------------------------- */
/* Each is c = 0; c = fmaf(a, b, c) over the reduction index in ascending order (bit-identical
 * on every ISA and thread count). Shapes: A is M x R for nt/nn (R = reduction), B as stated. */

/* C (M x N) = A (M x K) · B (N x K)ᵀ, e.g. Y = X·Wᵀ. */
peqa_status peqa_sgemm_nt(peqa_ctx *ctx, int64_t m, int64_t n, int64_t k, const float *a, int64_t lda,
                          const float *b, int64_t ldb, float *c, int64_t ldc);
/* C (M x K) = A (M x N) · B (N x K), e.g. dX = dY·W. */
peqa_status peqa_sgemm_nn(peqa_ctx *ctx, int64_t m, int64_t n, int64_t k, const float *a, int64_t lda,
                          const float *b, int64_t ldb, float *c, int64_t ldc);
/* C (N x K) = A (M x N)ᵀ · B (M x K), e.g. dW = dYᵀ·X. */
peqa_status peqa_sgemm_tn(peqa_ctx *ctx, int64_t m, int64_t n, int64_t k, const float *a, int64_t lda,
                          const float *b, int64_t ldb, float *c, int64_t ldc);

#ifdef __cplusplus
}
#endif
#endif
