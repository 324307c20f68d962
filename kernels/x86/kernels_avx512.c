/* AVX-512 (F, BW, VL) level: overrides the slots that have an AVX-512 kernel. */
#if !defined(__AVX512F__) || !defined(__AVX512BW__) || !defined(__AVX512VL__)
#error "kernels/x86/*_avx512.c must be built with -mavx512f -mavx512bw -mavx512vl"
#endif
#include "../peqa_kernels.h"

void peqa_kernels_init_avx512(peqa_kernels *k, unsigned features)
{
    (void)features;
    k->isa = "avx512";
}
