/* sgemm kernels (avx2): dense fp32 products. (No kernels yet: the reference fills these slots.) */
#if !defined(__AVX2__) || !defined(__FMA__)
#error "kernels/x86/*_avx2.c must be built with -mavx2 -mfma"
#endif
#include "../peqa_kernels.h"

void peqa_init_sgemm__avx2(peqa_kernels *k, unsigned features)
{
    (void)k, (void)features;
}
