/* NEON level (AArch64): each kernel family file overrides the slots it implements. */
#if !defined(__aarch64__) || !defined(__ARM_NEON)
#error "kernels/arm/*_neon.c must be built for AArch64 with Advanced SIMD"
#endif
#include "../peqa_kernels.h"

void peqa_init_qgemm__neon(peqa_kernels *k, unsigned features); /* qgemm_neon.c */
void peqa_init_qgrad__neon(peqa_kernels *k, unsigned features); /* qgrad_neon.c */
void peqa_init_qint8__neon(peqa_kernels *k, unsigned features); /* qint8_neon.c */
void peqa_init_sgemm__neon(peqa_kernels *k, unsigned features); /* sgemm_neon.c */
void peqa_init_attn__neon(peqa_kernels *k);                    /* attn_neon.c */

void peqa_kernels_init_neon(peqa_kernels *k, unsigned features)
{
    k->isa = "neon";
    peqa_init_qgemm__neon(k, features);
    peqa_init_qgrad__neon(k, features);
    peqa_init_qint8__neon(k, features);
    peqa_init_sgemm__neon(k, features);
    peqa_init_attn__neon(k);
}
