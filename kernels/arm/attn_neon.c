/* Attention kernels, AArch64 NEON: the loops of kernels/attn_impl.h, where fmaf is one fmla and
 * the loops over independent keys / head lanes vectorise to 4 lanes. Same bits as
 * kernels/ref/attn_ref.c (see attn_impl.h for why). */
#if !defined(__aarch64__) || !defined(__ARM_NEON)
#error "kernels/arm/*_neon.c must be built for AArch64 with Advanced SIMD"
#endif
#define ATTN_SUFFIX __neon
#define ATTN_SUFFIX_NAME "__neon"
#include "../attn_impl.h"
