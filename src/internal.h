/* peqa — internal declarations shared by the framework files (not installed). */
#ifndef PEQA_INTERNAL_H
#define PEQA_INTERNAL_H

#include "peqa.h"
#include "../kernels/peqa_kernels.h"

/* Records a formatted message for peqa_last_error() and returns st. */
peqa_status peqa__fail(peqa_status st, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* Re-issues the current error message behind a prefix ("<prefix>: <message>") and returns st. */
peqa_status peqa__wrapf(peqa_status st, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
/* Returns from the calling function when expr is not PEQA_OK. */
#define PEQA_TRY(expr)                                                                             \
    do {                                                                                           \
        peqa_status st_ = (expr);                                                                  \
        if (st_ != PEQA_OK) return st_;                                                            \
    } while (0)

/* Overflow-checked size arithmetic: return 0 on overflow. */
static inline int peqa__mul(size_t a, size_t b, size_t *out)
{
    if (a != 0 && b > SIZE_MAX / a) return 0;
    *out = a * b;
    return 1;
}

/* ---- CPU and kernel tables (src/cpu.c, src/dispatch.c) ---- */
enum { PEQA_ISA_SCALAR = 0, PEQA_ISA_AVX2, PEQA_ISA_AVX512, PEQA_ISA_NEON, PEQA_ISA_COUNT };
unsigned peqa__cpu_features(void);
const char *peqa__isa_name(int isa);
int peqa__isa_from_name(const char *name); /* -1 if unknown */
int peqa__isa_supported(int isa);
int peqa__isa_best(void);
/* The kernel table for an ISA level (built once); NULL if unsupported on this CPU. */
const peqa_kernels *peqa__kernels(int isa);

/* ---- Thread pool (src/threadpool.c) ---- */
typedef struct peqa_pool peqa_pool;
typedef void (*peqa_task_fn)(void *arg, int64_t task);
peqa_status peqa__pool_create(int nthreads, peqa_pool **out);
void peqa__pool_free(peqa_pool *p);
int peqa__pool_threads(const peqa_pool *p);
/* Runs fn(arg, i) for i in [0, ntasks), each exactly once, on the pool's threads and the caller;
 * returns when all are done. Called from inside a task it runs the tasks inline. */
void peqa__pool_run(peqa_pool *p, int64_t ntasks, peqa_task_fn fn, void *arg);
/* Number of CPUs this process may run on (sched_getaffinity), at least 1. */
int peqa__cpu_count(void);

struct peqa_ctx {
    int isa;
    const peqa_kernels *k;
    peqa_pool *pool;
    int threads;
};

struct peqa_qtensor {
    peqa_qw w;         /* view handed to kernels; its pointers alias the buffers below */
    uint32_t *qp;      /* packed words */
    float *s, *z;      /* tiled [ntiles][G][16] */
    size_t qp_words, sz_count;
};

#endif
