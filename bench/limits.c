/* Machine limits (see limits.h). Baseline target: the ISA loops live in bench/peak_<isa>.c and
 * run only when the library's CPU detection (CPUID + XGETBV) reports their features. Without them
 * (or off x86-64) plain C loops give a rough "baseline C" figure instead. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "../src/peqa.h"
#include "limits.h"

double bench_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

bench_stat bench_summarise(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    bench_stat s = {n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]), v[0], v[n - 1], n};
    return s;
}

/* ---- the loops of one ISA level ----
 * The limits are measured with the widest loops of the ISA the kernels run at (bench_limits_use),
 * so that "%peak" is what that kernel level could reach: zmm FMA and vpdpbusd zmm for avx512,
 * ymm FMA and vpdpbusd ymm (AVX-VNNI) or vpmaddubsw for avx2. Each loop runs only after the
 * library's CPU detection (CPUID + XGETBV) reports its features. */
typedef struct {
    const char *name;
    float (*fma)(uint64_t);
    double fma_per_iter;
    int32_t (*i8)(uint64_t);
    double i8_per_iter;
    uint64_t (*read)(const uint64_t *, size_t);
} loop_set;

static float fma_loop_c(uint64_t iters);
static int32_t i8_loop_c(uint64_t iters);
static uint64_t read_loop_c(const uint64_t *p, size_t words);
#define FMA_FLOPS_PER_ITER_C (8.0 * 2.0)
#define I8_OPS_PER_ITER_C (8.0 * 2.0)

static loop_set loops = {"baseline C", fma_loop_c, FMA_FLOPS_PER_ITER_C, i8_loop_c, I8_OPS_PER_ITER_C, read_loop_c};

static int has(const char *feature) { return strstr(peqa_cpu_features(), feature) != NULL; }

void bench_limits_use(const char *isa)
{
    loop_set c = {"baseline C", fma_loop_c, FMA_FLOPS_PER_ITER_C, i8_loop_c, I8_OPS_PER_ITER_C, read_loop_c};
#if defined(__x86_64__)
    const int want512 = isa && !strcmp(isa, "avx512"), want2 = want512 || (isa && !strcmp(isa, "avx2"));
    if (want512 && has("avx512f+bw+vl")) {
        c = (loop_set){"avx512 (zmm FMA, vpmaddubsw ymm)", bench_fma_loop__avx512, BENCH_FMA_FLOPS_PER_ITER__AVX512,
                       bench_i8_loop__avx2, BENCH_I8_OPS_PER_ITER__AVX2, bench_read_loop__avx512};
        if (has("avx512-vnni")) {
            c.name = "avx512 (zmm FMA, vpdpbusd zmm)";
            c.i8 = bench_i8_loop__avx512vnni, c.i8_per_iter = BENCH_I8_OPS_PER_ITER__AVX512VNNI;
        }
    } else if (want2 && has("avx2+fma")) {
        c = (loop_set){"avx2 (ymm FMA, vpmaddubsw ymm)", bench_fma_loop__avx2, BENCH_FMA_FLOPS_PER_ITER__AVX2,
                       bench_i8_loop__avx2, BENCH_I8_OPS_PER_ITER__AVX2, bench_read_loop__avx2};
        if (has("avx-vnni")) {
            c.name = "avx2 (ymm FMA, vpdpbusd ymm)";
            c.i8 = bench_i8_loop__avxvnni, c.i8_per_iter = BENCH_I8_OPS_PER_ITER__AVXVNNI;
        }
    }
#else
    (void)isa;
    (void)has;
#endif
    loops = c;
}

const char *bench_limits_method(void) { return loops.name; }

/* ---- baseline C fallbacks (rough: whatever the compiler makes of them at the baseline) ---- */

/* 8 independent chains of a multiply and an add (not fused: -ffp-contract=off): 2 flops each. */
static float fma_loop_c(uint64_t iters)
{
    float c[8] = {0}, a = 0.999f, b = 1e-3f;
    for (uint64_t i = 0; i < iters; i++)
        for (int j = 0; j < 8; j++) c[j] = c[j] * a + b;
    return c[0] + c[1] + c[2] + c[3] + c[4] + c[5] + c[6] + c[7];
}
/* 8 independent int32 sums of u8 x s8 products whose operands change every iteration. */
static int32_t i8_loop_c(uint64_t iters)
{
    int32_t acc[8] = {0};
    for (uint64_t i = 0; i < iters; i++)
        for (int j = 0; j < 8; j++)
            acc[j] += (int32_t)(uint8_t)(i + (uint64_t)j) * (int32_t)(int8_t)(j - 4);
    return acc[0] + acc[1] + acc[2] + acc[3] + acc[4] + acc[5] + acc[6] + acc[7];
}

static uint64_t read_loop_c(const uint64_t *p, size_t words)
{
    uint64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    for (size_t i = 0; i < words; i += 4) s0 += p[i], s1 += p[i + 1], s2 += p[i + 2], s3 += p[i + 3];
    return s0 + s1 + s2 + s3;
}

/* ---- running one measurement on T threads ---- */

enum { JOB_FMA, JOB_I8, JOB_READ };

typedef struct {
    int kind, threads;
    uint64_t iters;            /* compute loops: iterations per thread */
    const uint64_t *buf;       /* read: the buffer and its size in words */
    size_t words;
    pthread_barrier_t start, stop;
    double t0, t1;
    uint64_t sum[64];          /* read: per-thread sums (checked against the pattern) */
    volatile float fsink;      /* keeps the compute loops' results alive */
    volatile int32_t isink;
} job;

typedef struct {
    job *j;
    int tid;
} worker_arg;

/* Thread `tid` of T reads words [tid * words / T, (tid + 1) * words / T), rounded to 32 words (one
 * iteration of the widest read loop). */
static void slice(const job *j, int tid, size_t *a, size_t *b)
{
    size_t per = j->words / (size_t)j->threads / 32 * 32;
    *a = (size_t)tid * per;
    *b = tid == j->threads - 1 ? j->words / 32 * 32 : *a + per;
}

static void *worker(void *p)
{
    worker_arg *w = p;
    job *j = w->j;
    pthread_barrier_wait(&j->start);
    if (w->tid == 0) j->t0 = bench_now();
    switch (j->kind) {
    case JOB_FMA: j->fsink = loops.fma(j->iters); break;
    case JOB_I8: j->isink = loops.i8(j->iters); break;
    default: {
        size_t a, b;
        slice(j, w->tid, &a, &b);
        j->sum[w->tid] = loops.read(j->buf + a, b - a);
        break;
    }
    }
    pthread_barrier_wait(&j->stop);
    if (w->tid == 0) j->t1 = bench_now();
    return NULL;
}

/* Wall time from the common start to the end of the slowest thread; the caller is thread 0. */
static double run_job(job *j)
{
    pthread_t th[64];
    worker_arg args[64];
    pthread_barrier_init(&j->start, NULL, (unsigned)j->threads);
    pthread_barrier_init(&j->stop, NULL, (unsigned)j->threads);
    for (int t = 1; t < j->threads; t++) {
        args[t] = (worker_arg){j, t};
        if (pthread_create(&th[t], NULL, worker, &args[t]) != 0) {
            /* The others would wait at the barrier forever: this is a benchmark program, stop. */
            fprintf(stderr, "bench: cannot start thread %d of %d\n", t + 1, j->threads);
            exit(2);
        }
    }
    args[0] = (worker_arg){j, 0};
    worker(&args[0]);
    for (int t = 1; t < j->threads; t++) pthread_join(th[t], NULL);
    pthread_barrier_destroy(&j->start);
    pthread_barrier_destroy(&j->stop);
    return j->t1 - j->t0;
}

/* Compute loops: find an iteration count that takes about `seconds` on one thread (doubling
 * until a run is long enough to extrapolate from), then time `reps` runs on `threads` threads,
 * every thread running that many iterations. */
static bench_stat compute_limit(int kind, int threads, int reps, double seconds)
{
    bench_stat bad = {0, 0, 0, 0};
    if (threads < 1 || threads > 64 || reps < 1 || reps > 1000) return bad;
    job *j = calloc(1, sizeof *j);
    if (!j) return bad;
    j->kind = kind, j->threads = 1, j->iters = 1u << 14;
    double t;
    while ((t = run_job(j)) < 0.02) j->iters *= 2;
    j->iters = (uint64_t)((double)j->iters * seconds / t) + 1;
    j->threads = threads;
    double per_iter = kind == JOB_FMA ? loops.fma_per_iter : loops.i8_per_iter;
    double v[1000];
    int n = 0;
    for (int r = 0; r < reps; r++) {
        t = run_job(j);
        if (t <= 0) continue;
        v[n++] = per_iter * (double)j->iters * threads / t * 1e-9;
    }
    free(j);
    return n ? bench_summarise(v, n) : bad;
}

bench_stat bench_limit_fma(int threads, int reps, double seconds)
{
    return compute_limit(JOB_FMA, threads, reps, seconds);
}

bench_stat bench_limit_i8(int threads, int reps, double seconds)
{
    return compute_limit(JOB_I8, threads, reps, seconds);
}

/* ---- DRAM read bandwidth ---- */

struct bench_membuf {
    uint64_t *p;
    size_t words;
};

/* Word i holds i * C (C odd): every page differs from every other, and the sum of any slice has
 * a closed form, which checks that the read loop really read every word. */
#define PATTERN_C 0x9e3779b97f4a7c15ull

bench_membuf *bench_membuf_create(size_t bytes)
{
    const size_t page = 4096, huge = (size_t)2 << 20;
    bytes = bytes / page * page;
    if (bytes < page) return NULL;
    bench_membuf *m = calloc(1, sizeof *m);
    if (!m) return NULL;
    /* 2 MiB alignment lets the kernel back the buffer with huge pages when it can, which takes
     * TLB misses out of the measurement (they are rare in the kernels' sequential reads too). */
    size_t alloc = (bytes + huge - 1) / huge * huge;
    m->p = aligned_alloc(huge, alloc);
    if (!m->p) {
        free(m);
        return NULL;
    }
    m->words = bytes / 8;
    for (size_t i = 0; i < m->words; i++) m->p[i] = (uint64_t)i * PATTERN_C;
    return m;
}

void bench_membuf_free(bench_membuf *m)
{
    if (!m) return;
    free(m->p);
    free(m);
}

size_t bench_membuf_bytes(const bench_membuf *m) { return m ? m->words * 8 : 0; }

/* Σ_{i=a}^{b-1} i * C modulo 2^64. */
static uint64_t pattern_sum(size_t a, size_t b)
{
    uint64_t n = (uint64_t)(b - a), s = (uint64_t)a + (uint64_t)b - 1; /* Σ i = n * s / 2 */
    uint64_t tri = n % 2 == 0 ? (n / 2) * s : n * (s / 2);
    return tri * PATTERN_C;
}

bench_stat bench_limit_read(bench_membuf *m, int threads, int reps)
{
    bench_stat bad = {0, 0, 0, 0};
    if (!m || threads < 1 || threads > 64 || reps < 1 || reps > 1000) return bad;
    job *j = calloc(1, sizeof *j);
    if (!j) return bad;
    j->kind = JOB_READ, j->threads = threads, j->buf = m->p, j->words = m->words;
    double v[1000];
    int n = 0, wrong = 0;
    run_job(j); /* untimed: the first pass after the fill can meet stray page-table work */
    for (int r = 0; r < reps; r++) {
        double t = run_job(j);
        if (t <= 0) continue;
        size_t total = 0;
        for (int tid = 0; tid < threads; tid++) {
            size_t a, b;
            slice(j, tid, &a, &b);
            total += b - a;
            if (j->sum[tid] != pattern_sum(a, b)) wrong = 1;
        }
        v[n++] = (double)total * 8.0 / t * 1e-9;
    }
    free(j);
    if (wrong || !n) return bad;
    return bench_summarise(v, n);
}
