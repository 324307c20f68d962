/* CPU feature detection. x86: CPUID for what the core implements AND XGETBV/XCR0 for what the
 * OS saves on context switch (a VM may hide the second: CPUID alone would give SIGILL).
 * AArch64: getauxval(AT_HWCAP). This file compiles at the baseline target. */
#define _GNU_SOURCE
#include <sched.h>
#include <string.h>
#include "internal.h"

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
static uint64_t xgetbv0(void)
{
    uint32_t lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((uint64_t)hi << 32) | lo;
}
static unsigned detect(void)
{
    unsigned a, b, c, d, f = 0;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return 0;
    int osxsave = (c >> 27) & 1, fma = (c >> 12) & 1, avx = (c >> 28) & 1;
    if (!osxsave || !avx) return 0;
    uint64_t xcr0 = xgetbv0();
    int ymm_ok = (xcr0 & 0x6) == 0x6;            /* SSE + AVX state */
    int zmm_ok = ymm_ok && (xcr0 & 0xe0) == 0xe0; /* opmask, ZMM_Hi256, Hi16_ZMM */
    if (__get_cpuid_max(0, 0) < 7) return 0;
    __cpuid_count(7, 0, a, b, c, d);
    int avx2 = (b >> 5) & 1, avx512f = (b >> 16) & 1, avx512bw = (b >> 30) & 1,
        avx512vl = (b >> 31) & 1, avx512vnni = (c >> 11) & 1;
    unsigned a1, b1, c1, d1;
    __cpuid_count(7, 1, a1, b1, c1, d1);
    int avxvnni = (a1 >> 4) & 1;
    (void)b1, (void)c1, (void)d1;
    if (ymm_ok && avx2 && fma) {
        f |= PEQA_CPU_AVX2;
        if (avxvnni) f |= PEQA_CPU_AVXVNNI;
        if (zmm_ok && avx512f && avx512bw && avx512vl) {
            f |= PEQA_CPU_AVX512;
            if (avx512vnni) f |= PEQA_CPU_AVX512VNNI;
        }
    }
    return f;
}
#elif defined(__aarch64__)
#include <sys/auxv.h>
#ifndef HWCAP_ASIMD
#define HWCAP_ASIMD (1 << 1)
#endif
#ifndef HWCAP_ASIMDDP
#define HWCAP_ASIMDDP (1 << 20)
#endif
static unsigned detect(void)
{
    unsigned long hw = getauxval(AT_HWCAP);
    unsigned f = 0;
    if (hw & HWCAP_ASIMD) f |= PEQA_CPU_NEON;
    if ((f & PEQA_CPU_NEON) && (hw & HWCAP_ASIMDDP)) f |= PEQA_CPU_DOTPROD;
    return f;
}
#else
static unsigned detect(void) { return 0; }
#endif

/* The emulated test build (Makefile `emu`, PEQA_X86_EMULATE; never a library that is used)
 * runs the AVX-512, AVX-512 VNNI and AVX-VNNI kernels on plain-C emulations of their
 * intrinsics, which need only AVX2 + FMA, so it reports those features on any AVX2 CPU. */
#if defined(PEQA_X86_EMULATE) && (defined(__x86_64__) || defined(__i386__))
#define EMULATED_FEATURES (PEQA_CPU_AVXVNNI | PEQA_CPU_AVX512 | PEQA_CPU_AVX512VNNI)
static unsigned detect_features(void)
{
    unsigned f = detect();
    return f & PEQA_CPU_AVX2 ? f | EMULATED_FEATURES : f;
}
#else
#define EMULATED_FEATURES 0u
static unsigned detect_features(void) { return detect(); }
#endif

#include <pthread.h>
static unsigned features;
static pthread_once_t once = PTHREAD_ONCE_INIT;
static void init(void) { features = detect_features(); }

unsigned peqa__cpu_features(void)
{
    pthread_once(&once, init);
    return features;
}

static char feature_text[128];
static pthread_once_t text_once = PTHREAD_ONCE_INIT;
static void fill_text(void)
{
    static const struct { unsigned bit; const char *name; } names[] = {
        {PEQA_CPU_AVX2, "avx2+fma"}, {PEQA_CPU_AVXVNNI, "avx-vnni"},
        {PEQA_CPU_AVX512, "avx512f+bw+vl"}, {PEQA_CPU_AVX512VNNI, "avx512-vnni"},
        {PEQA_CPU_NEON, "neon"}, {PEQA_CPU_DOTPROD, "dotprod"},
    };
    unsigned f = peqa__cpu_features();
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (f & names[i].bit) {
            if (feature_text[0]) strcat(feature_text, " ");
            strcat(feature_text, names[i].name);
            if (names[i].bit & EMULATED_FEATURES) strcat(feature_text, "(emulated)");
        }
    if (!feature_text[0]) strcpy(feature_text, "(baseline only)");
}

const char *peqa_cpu_features(void)
{
    pthread_once(&text_once, fill_text);
    return feature_text;
}

int peqa__cpu_count(void)
{
#if defined(__linux__)
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0) {
        int n = CPU_COUNT(&set);
        if (n > 0) return n;
    }
#endif
    return 1;
}
