/* AVX-VNNI (VEX-encoded vpdpbusd on ymm; Alder Lake and later client parts, Sapphire Rapids):
 * overrides the int8 forward slots of the level it is applied to (src/dispatch.c applies it to
 * the AVX2 level when the CPU reports AVX-VNNI, and under the AVX-512 level's own kernels). */
#include "x86_isa.h"
#if !defined(PEQA_X86_AVXVNNI)
#error "kernels/x86/*_avxvnni.c must be built with -mavx2 -mfma -mavxvnni"
#endif
#include "../peqa_kernels.h"

void peqa_init_qint8__avxvnni(peqa_kernels *k, unsigned features); /* qint8_avxvnni.c */

void peqa_kernels_init_avxvnni(peqa_kernels *k, unsigned features)
{
    peqa_init_qint8__avxvnni(k, features);
}
