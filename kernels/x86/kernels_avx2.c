/* AVX2 + FMA level: each kernel family file overrides the slots it implements. */
#if !defined(__AVX2__) || !defined(__FMA__)
#error "kernels/x86/*_avx2.c must be built with -mavx2 -mfma"
#endif
#include "../peqa_kernels.h"

void peqa_init_qgemm__avx2(peqa_kernels *k, unsigned features); /* qgemm_avx2.c */
void peqa_init_qgrad__avx2(peqa_kernels *k, unsigned features); /* qgrad_avx2.c */
void peqa_init_qint8__avx2(peqa_kernels *k, unsigned features); /* qint8_avx2.c */
void peqa_init_sgemm__avx2(peqa_kernels *k, unsigned features); /* sgemm_avx2.c */
void peqa_init_attn__avx2(peqa_kernels *k);                    /* attn_avx2.c */

void peqa_kernels_init_avx2(peqa_kernels *k, unsigned features)
{
    k->isa = "avx2";
    peqa_init_qgemm__avx2(k, features);
    peqa_init_qgrad__avx2(k, features);
    peqa_init_qint8__avx2(k, features);
    peqa_init_sgemm__avx2(k, features);
    peqa_init_attn__avx2(k);
}
