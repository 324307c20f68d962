/* Kernel tables: one per ISA level, each the reference table with the slots that level
 * implements overridden (BLIS/xxHash style). Built once; compiled at the baseline target. */
#include <pthread.h>
#include <string.h>
#include "internal.h"

static peqa_kernels tables[PEQA_ISA_COUNT];
static int usable[PEQA_ISA_COUNT];
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void build(void)
{
    unsigned f = peqa__cpu_features();
    (void)f;
    peqa_kernels_init_ref(&tables[PEQA_ISA_SCALAR]);
    usable[PEQA_ISA_SCALAR] = 1;
#if defined(__x86_64__)
    if (f & PEQA_CPU_AVX2) {
        /* AVX2 level; with AVX-VNNI (VEX vpdpbusd on ymm) its int8 forward slots use it. */
        peqa_kernels_init_ref(&tables[PEQA_ISA_AVX2]);
        peqa_kernels_init_avx2(&tables[PEQA_ISA_AVX2], f);
        if (f & PEQA_CPU_AVXVNNI) peqa_kernels_init_avxvnni(&tables[PEQA_ISA_AVX2], f);
        usable[PEQA_ISA_AVX2] = 1;
    }
    if (f & PEQA_CPU_AVX512) {
        /* AVX-512 level: the AVX2 level's kernels fill what has no AVX-512 version; the AVX-512
         * filler picks its VNNI variants by the feature bits. */
        peqa_kernels_init_ref(&tables[PEQA_ISA_AVX512]);
        peqa_kernels_init_avx2(&tables[PEQA_ISA_AVX512], f);
        if (f & PEQA_CPU_AVXVNNI) peqa_kernels_init_avxvnni(&tables[PEQA_ISA_AVX512], f);
        peqa_kernels_init_avx512(&tables[PEQA_ISA_AVX512], f);
        usable[PEQA_ISA_AVX512] = 1;
    }
#elif defined(__aarch64__)
    if (f & PEQA_CPU_NEON) {
        peqa_kernels_init_ref(&tables[PEQA_ISA_NEON]);
        peqa_kernels_init_neon(&tables[PEQA_ISA_NEON], f);
        usable[PEQA_ISA_NEON] = 1;
    }
#endif
}

static const char *const isa_names[PEQA_ISA_COUNT] = {"scalar", "avx2", "avx512", "neon"};

const char *peqa__isa_name(int isa)
{
    return isa >= 0 && isa < PEQA_ISA_COUNT ? isa_names[isa] : "?";
}

int peqa__isa_from_name(const char *name)
{
    for (int i = 0; i < PEQA_ISA_COUNT; i++)
        if (strcmp(name, isa_names[i]) == 0) return i;
    return -1;
}

int peqa__isa_supported(int isa)
{
    pthread_once(&once, build);
    return isa >= 0 && isa < PEQA_ISA_COUNT && usable[isa];
}

int peqa__isa_best(void)
{
    pthread_once(&once, build);
    int best = PEQA_ISA_SCALAR;
    for (int i = 0; i < PEQA_ISA_COUNT; i++)
        if (usable[i]) best = i;
    return best;
}

const char *peqa_cpu_best_isa(void) { return isa_names[peqa__isa_best()]; }

const peqa_kernels *peqa__kernels(int isa)
{
    return peqa__isa_supported(isa) ? &tables[isa] : NULL;
}
