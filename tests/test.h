/* The test runner's interface: one line per case, a closing count line. */
#ifndef PEQA_TEST_H
#define PEQA_TEST_H
#include <stdint.h>
#include "../src/peqa.h"

typedef struct {
    int pass, fail, skip;
    const char *filter;     /* run only tests whose group name contains this */
    const char *golden_dir; /* default "golden" */
    uint64_t seed;          /* base seed for randomized tests (--seed) */
    int quick;              /* fewer random cases */
} trun;

/* Prints "PASS|FAIL|SKIP  name  isa  detail" and counts it. */
void t_result(trun *r, int ok, const char *name, const char *isa, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 5, 6)))
#endif
    ;
void t_skip(trun *r, const char *name, const char *isa, const char *why);

/* ISA levels and thread counts every kernel test runs over (all by default; --isa and
 * --threads narrow them), and the thread list as text for the PASS lines ("1,2,3,7,16"). */
extern const char *t_isas[];
extern int t_nisas;
extern int t_threads[];
extern int t_nthreads;
extern char t_threads_text[];
/* A context for (isa, threads); NULL if the ISA is unavailable here. */
peqa_ctx *t_ctx(const char *isa, int threads);

/* First index where two buffers differ (bytes / elem), or -1. */
int64_t t_first_diff(const void *a, const void *b, size_t elem, int64_t count);

void test_golden(trun *r);
void test_random(trun *r);
void test_api(trun *r);
void test_grad(trun *r);
void test_pool(trun *r);    /* tests/test_pool.c: thread pool */
void test_formats(trun *r); /* tests/test_formats.c: JSON, safetensors */
void test_dense(trun *r);   /* tests/test_dense.c: dense fp32 products */
void test_ops(trun *r);     /* tests/test_ops.c: model operations (norm, rope, attention, loss) */
void test_model(trun *r);
void test_import(trun *r);
void test_train(trun *r);   /* tests/test_train.c: optimiser, quantized/scale files, training loop */
void test_emu(trun *r);     /* tests/emu/test_emu_avx2.c: the emulated build's harness vs AVX2 */

#endif
