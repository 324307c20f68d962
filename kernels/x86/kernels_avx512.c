/* AVX-512 (F, BW, VL, DQ) level: overrides the slots that have an AVX-512 kernel; the rest keep
 * the AVX2 level's kernels (src/dispatch.c fills those first). The int8 forward takes the
 * AVX-512 VNNI kernels when the CPU has VNNI (Cascade Lake and later, Zen 4); without it the
 * AVX2 (or AVX-VNNI) int8 kernels stay. */
#include "x86_isa.h"
#if !defined(PEQA_X86_AVX512)
#error "kernels/x86/*_avx512.c must be built with -mavx512f -mavx512bw -mavx512vl -mavx512dq -mfma"
#endif
#include "../peqa_kernels.h"

void peqa_init_qgemm__avx512(peqa_kernels *k, unsigned features);      /* qgemm_avx512.c */
void peqa_init_qgrad__avx512(peqa_kernels *k, unsigned features);      /* qgrad_avx512.c */
void peqa_init_sgemm__avx512(peqa_kernels *k, unsigned features);      /* sgemm_avx512.c */
void peqa_init_qint8__avx512(peqa_kernels *k, unsigned features);      /* qint8_avx512.c */
void peqa_init_qint8__avx512vnni(peqa_kernels *k, unsigned features);  /* qint8_avx512vnni.c */

void peqa_kernels_init_avx512(peqa_kernels *k, unsigned features)
{
    k->isa = "avx512";
    peqa_init_qgemm__avx512(k, features);
    peqa_init_qgrad__avx512(k, features);
    peqa_init_sgemm__avx512(k, features);
    peqa_init_qint8__avx512(k, features);
    if (features & PEQA_CPU_AVX512VNNI) peqa_init_qint8__avx512vnni(k, features);
}
