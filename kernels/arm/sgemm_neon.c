/* sgemm kernels (neon): dense fp32 products. (No kernels yet: the reference fills these slots.) */
#if !defined(__aarch64__) || !defined(__ARM_NEON)
#error "kernels/arm/*_neon.c must be built for AArch64 with Advanced SIMD"
#endif
#include "../peqa_kernels.h"

void peqa_init_sgemm__neon(peqa_kernels *k, unsigned features)
{
    (void)k, (void)features;
}
