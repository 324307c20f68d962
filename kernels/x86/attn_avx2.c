/* Attention kernels, AVX2 + FMA: the loops of kernels/attn_impl.h compiled with -mavx2 -mfma,
 * where fmaf is one vfmadd and the loops over independent keys / head lanes vectorise to 8
 * lanes. Same bits as kernels/ref/attn_ref.c (see attn_impl.h for why). */
#if !defined(__AVX2__) || !defined(__FMA__)
#error "kernels/x86/*_avx2.c must be built with -mavx2 -mfma"
#endif
#define ATTN_SUFFIX __avx2
#define ATTN_SUFFIX_NAME "__avx2"
#include "../attn_impl.h"
