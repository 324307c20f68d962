/* The intrinsics include of the AVX-512, AVX-512 VNNI and AVX-VNNI kernel files, and the macros
 * their #error guards test.
 *
 * Production builds compile those files with the ISA flags their names select (Makefile,
 * isaflags) and get the real <immintrin.h>. The emulated test build (`make emu`, which defines
 * PEQA_X86_EMULATE and builds the same files with -mavx2 -mfma only) additionally includes a
 * plain-C emulation of the wide intrinsics (tests/emu/x86_emu.h), so that the kernels can be
 * checked bit for bit against the reference on a machine without AVX-512. This is the only
 * place where the kernels see that switch; the library proper never defines it. */
#ifndef PEQA_X86_ISA_H
#define PEQA_X86_ISA_H

#include <immintrin.h>

#if defined(PEQA_X86_EMULATE)
#include "../../tests/emu/x86_emu.h"
#define PEQA_X86_AVX512 1
#define PEQA_X86_AVX512VNNI 1
#define PEQA_X86_AVXVNNI 1
#else
#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__) && defined(__AVX512DQ__) && \
    defined(__FMA__)
#define PEQA_X86_AVX512 1
#if defined(__AVX512VNNI__)
#define PEQA_X86_AVX512VNNI 1
#endif
#endif
#if defined(__AVX2__) && defined(__FMA__) && defined(__AVXVNNI__)
#define PEQA_X86_AVXVNNI 1
#endif
#endif

#endif
