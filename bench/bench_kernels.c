/* peqa kernel benchmark (bench/README.md).
 *
 * 1. Measures this machine's limits on 1..T threads (bench/limits.c): fp32 FMA peak, int8
 *    dot-product peak, DRAM read bandwidth.
 * 2. For every case (shape N x K, batch M, bits, group size) and kernel, validates the kernel of
 *    the selected ISA against the scalar reference on a slice of the case (memcmp; a kernel that
 *    differs is reported as MISMATCH and never timed), then times it through the public API:
 *    median of repeated calls, the weights rotated through copies that together exceed the
 *    last-level cache several times, so each call reads its weights from DRAM as a real model
 *    layer does.
 * 3. Prints time, GFLOP/s (2 M N K), GB/s of weight bytes, and fractions of the measured limits
 *    (bandwidth, compute peak, and the roofline min(peak, intensity x bandwidth)), plus the
 *    speedup over the first thread count.
 *
 * The benchmark prints and exits; the library it measures never does. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "../src/peqa.h"
#include "../tests/prng.h"
#include "limits.h"

/* ---- kernels measured ------------------------------------------------------------------- */

enum { K_FWD, K_QACT, K_FWDI8, K_GSCALE, K_GINPUT, K_BWD, K_COUNT };
static const char *const kernel_names[K_COUNT] = {"fwd", "qact", "fwd_i8", "gscale", "ginput", "bwd"};

/* The dispatch slot a kernel uses at batch m (for peqa_ctx_kernel_name). */
static const char *slot_of(int kern, int64_t m)
{
    switch (kern) {
    case K_FWD: return m == 1 ? "fwd_gemv" : "fwd_gemm";
    case K_QACT: return "qact";
    case K_FWDI8: return m == 1 ? "fwd_i8_gemv" : "fwd_i8_gemm";
    case K_GSCALE: return "gscale";
    case K_GINPUT: return "ginput";
    default: return NULL;
    }
}

/* ---- options ------------------------------------------------------------------------------ */

#define MAXL 16
typedef struct {
    int json, quick, limits_only;
    const char *isa;              /* NULL: PEQA_ISA or the best the CPU has */
    int64_t threads[MAXL];
    int nthreads;
    int64_t shape_n[MAXL], shape_k[MAXL];
    int nshapes;
    int64_t ms[MAXL];
    int nms;
    int64_t bits[MAXL];
    int nbits;
    int64_t gs[MAXL];             /* 0: per-channel (g = K) */
    int ngs;
    int kernels[K_COUNT];         /* 1: selected */
    int reps;                     /* timed calls per row (median of these) */
    double budget;                /* seconds of timed calls per row; fewer reps past it */
    double rotate_mib;            /* weight copies cycled per case: at least this many MiB */
    double bw_mib;                /* DRAM bandwidth buffer */
    int limit_reps;
    double limit_seconds;
} options;

static void usage(FILE *f)
{
    fprintf(f,
        "usage: bench_kernels [options]\n"
        "  --quick              4096x4096, M in {1,512}, 4-bit, g=128, budget 1 s per row\n"
        "  --json               one JSON object per line (machine, limits, results) on stdout\n"
        "  --isa NAME           scalar|avx2|avx512|neon (default: PEQA_ISA or the best available)\n"
        "  --threads LIST       thread counts, e.g. 1,2 (default 1,2; limits measured for each)\n"
        "  --shape LIST         NxK list, e.g. 4096x4096,11008x4096 (default: the three LLaMA-7B shapes)\n"
        "  --m LIST             batch rows (default 1,16,512)\n"
        "  --bits LIST          (default 2,3,4)\n"
        "  --g LIST             group sizes, K = per-channel (default 64,128,K)\n"
        "  --kernel LIST        fwd,qact,fwd_i8,gscale,ginput,bwd (bwd = gscale+ginput; default all)\n"
        "  --reps N             timed calls per row, median reported (default 7)\n"
        "  --budget SEC         time budget per row; fewer reps / smaller M past it (default 3, quick 1)\n"
        "  --rotate-mib MIB     weight bytes cycled per case (default 4 x last-level cache, >= 64)\n"
        "  --bw-mib MIB         DRAM bandwidth buffer (default 1024)\n"
        "  --limits-only        measure and print the machine limits, then exit\n");
}

/* Comma-separated list of positive integers ("K" accepted as 0 when allow_k). */
static int parse_list(const char *s, int64_t *out, int max, int allow_k)
{
    int n = 0;
    while (*s) {
        if (n == max) return -1;
        char *end;
        if (allow_k && (*s == 'K' || *s == 'k')) {
            out[n++] = 0;
            end = (char *)s + 1;
        } else {
            long long v = strtoll(s, &end, 10);
            if (end == s || v < 1) return -1;
            out[n++] = v;
        }
        if (*end == ',') end++;
        else if (*end) return -1;
        s = end;
    }
    return n;
}

static int parse_shapes(const char *s, options *o)
{
    o->nshapes = 0;
    while (*s) {
        char *end;
        if (o->nshapes == MAXL) return -1;
        long long n = strtoll(s, &end, 10);
        if (end == s || n < 1 || (*end != 'x' && *end != 'X')) return -1;
        s = end + 1;
        long long k = strtoll(s, &end, 10);
        if (end == s || k < 1) return -1;
        o->shape_n[o->nshapes] = n, o->shape_k[o->nshapes] = k, o->nshapes++;
        if (*end == ',') end++;
        else if (*end) return -1;
        s = end;
    }
    return o->nshapes;
}

static int parse_kernels(const char *s, options *o)
{
    memset(o->kernels, 0, sizeof o->kernels);
    char buf[256];
    if (strlen(s) >= sizeof buf) return -1;
    strcpy(buf, s);
    for (char *tok = strtok(buf, ","); tok; tok = strtok(NULL, ",")) {
        int found = 0;
        for (int i = 0; i < K_COUNT; i++)
            if (strcmp(tok, kernel_names[i]) == 0) o->kernels[i] = 1, found = 1;
        if (!found) return -1;
    }
    return 0;
}

static int parse_options(int argc, char **argv, options *o)
{
    int set_shape = 0, set_m = 0, set_bits = 0, set_g = 0, set_budget = 0, set_threads = 0;
    memset(o, 0, sizeof *o);
    for (int i = 0; i < K_COUNT; i++) o->kernels[i] = 1;
    o->reps = 7, o->budget = 3.0, o->bw_mib = 1024, o->limit_reps = 7, o->limit_seconds = 0.1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        int bad = 0, takes = 1;
        if (!strcmp(a, "--json")) o->json = 1, takes = 0;
        else if (!strcmp(a, "--quick")) o->quick = 1, takes = 0;
        else if (!strcmp(a, "--limits-only")) o->limits_only = 1, takes = 0;
        else if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            exit(0);
        } else if (!v) bad = 1;
        else if (!strcmp(a, "--isa")) o->isa = v;
        else if (!strcmp(a, "--threads")) bad = (o->nthreads = parse_list(v, o->threads, MAXL, 0)) < 1, set_threads = 1;
        else if (!strcmp(a, "--shape")) bad = parse_shapes(v, o) < 1, set_shape = 1;
        else if (!strcmp(a, "--m")) bad = (o->nms = parse_list(v, o->ms, MAXL, 0)) < 1, set_m = 1;
        else if (!strcmp(a, "--bits")) bad = (o->nbits = parse_list(v, o->bits, MAXL, 0)) < 1, set_bits = 1;
        else if (!strcmp(a, "--g")) bad = (o->ngs = parse_list(v, o->gs, MAXL, 1)) < 1, set_g = 1;
        else if (!strcmp(a, "--kernel")) bad = parse_kernels(v, o) != 0;
        else if (!strcmp(a, "--reps")) bad = (o->reps = atoi(v)) < 1 || o->reps > 1000;
        else if (!strcmp(a, "--budget")) bad = (o->budget = atof(v)) <= 0, set_budget = 1;
        else if (!strcmp(a, "--rotate-mib")) bad = (o->rotate_mib = atof(v)) < 0;
        else if (!strcmp(a, "--bw-mib")) bad = (o->bw_mib = atof(v)) < 64;
        else bad = 1, takes = 0;
        if (bad) {
            fprintf(stderr, "bench_kernels: bad option or value: %s%s%s\n", a, v && takes ? " " : "",
                    v && takes ? v : "");
            usage(stderr);
            return -1;
        }
        i += takes;
    }
    for (int i = 0; i < o->nthreads; i++)
        if (o->threads[i] > 64) {
            fprintf(stderr, "bench_kernels: at most 64 threads\n");
            return -1;
        }
    if (!set_threads) {
        o->nthreads = 0;
        o->threads[o->nthreads++] = 1;
        o->threads[o->nthreads++] = 2;
    }
    if (!set_shape) {
        static const int64_t qn[] = {4096}, qk[] = {4096};
        static const int64_t fn[] = {4096, 11008, 4096}, fk[] = {4096, 4096, 11008};
        o->nshapes = o->quick ? 1 : 3;
        for (int i = 0; i < o->nshapes; i++)
            o->shape_n[i] = o->quick ? qn[i] : fn[i], o->shape_k[i] = o->quick ? qk[i] : fk[i];
    }
    if (!set_m) {
        static const int64_t q[] = {1, 512}, f[] = {1, 16, 512};
        o->nms = o->quick ? 2 : 3;
        memcpy(o->ms, o->quick ? q : f, (size_t)o->nms * sizeof o->ms[0]);
    }
    if (!set_bits) {
        static const int64_t q[] = {4}, f[] = {2, 3, 4};
        o->nbits = o->quick ? 1 : 3;
        memcpy(o->bits, o->quick ? q : f, (size_t)o->nbits * sizeof o->bits[0]);
    }
    if (!set_g) {
        static const int64_t q[] = {128}, f[] = {64, 128, 0};
        o->ngs = o->quick ? 1 : 3;
        memcpy(o->gs, o->quick ? q : f, (size_t)o->ngs * sizeof o->gs[0]);
    }
    if (o->quick) {
        if (!set_budget) o->budget = 1.0;
        o->limit_reps = 5, o->limit_seconds = 0.05;
    }
    return 0;
}

/* ---- machine description ------------------------------------------------------------------ */

static void cpu_model(char *out, size_t len)
{
    snprintf(out, len, "unknown");
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f) return;
    char line[512];
    while (fgets(line, sizeof line, f)) {
        /* x86: "model name"; some AArch64 kernels: "Model" or only "CPU part". */
        if (strncmp(line, "model name", 10) == 0 || strncmp(line, "Model", 5) == 0) {
            char *c = strchr(line, ':');
            if (!c) continue;
            c++;
            while (*c == ' ' || *c == '\t') c++;
            c[strcspn(c, "\n")] = 0;
            snprintf(out, len, "%s", c);
            break;
        }
    }
    fclose(f);
}

/* Size of the highest-level data/unified cache of CPU 0 from sysfs; 0 if unknown. */
static size_t llc_bytes(void)
{
    size_t best = 0;
    int best_level = 0;
    for (int i = 0; i < 8; i++) {
        char path[128], buf[64];
        int level = 0;
        size_t size = 0;
        snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu0/cache/index%d/level", i);
        FILE *f = fopen(path, "r");
        if (!f) continue;
        if (fgets(buf, sizeof buf, f)) level = atoi(buf);
        fclose(f);
        snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu0/cache/index%d/type", i);
        if ((f = fopen(path, "r"))) {
            int instr = fgets(buf, sizeof buf, f) && strncmp(buf, "Instruction", 11) == 0;
            fclose(f);
            if (instr) continue;
        }
        snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu0/cache/index%d/size", i);
        if ((f = fopen(path, "r"))) {
            if (fgets(buf, sizeof buf, f)) {
                char *end;
                size = (size_t)strtoull(buf, &end, 10);
                if (*end == 'K') size <<= 10;
                else if (*end == 'M') size <<= 20;
            }
            fclose(f);
        }
        if (level > best_level && size) best_level = level, best = size;
    }
    return best;
}

/* 1-minute load average: other work on the machine lowers every number measured here. */
static double loadavg1(void)
{
    double l = -1;
    FILE *f = fopen("/proc/loadavg", "r");
    if (f) {
        if (fscanf(f, "%lf", &l) != 1) l = -1;
        fclose(f);
    }
    return l;
}

static void json_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (; s && *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') fprintf(f, "\\%c", c);
        else if (c < 0x20) fprintf(f, "\\u%04x", c);
        else fputc(c, f);
    }
    fputc('"', f);
}

/* ---- one weight case: canonical data, rotated copies, validation slice ------------------- */

typedef struct {
    int64_t n, k, g, ng, kblk;
    int bits;
    uint8_t *codes;        /* canonical N x K */
    float *s, *z;          /* canonical N x G */
    peqa_qtensor **copy;   /* identical tensors at different addresses, cycled by the timer */
    int ncopies, next;
    size_t wbytes;         /* packed codes + s + z as stored: what one call must read */
    /* validation slice: rows [0, nhead) and [N - (nv - nhead), N) of the weight */
    int64_t nv, nhead;
    peqa_qtensor *slice;
} wcase;

static int64_t slice_row(const wcase *w, int64_t r) { return r < w->nhead ? r : w->n - w->nv + r; }

static void wcase_free(wcase *w)
{
    for (int i = 0; i < w->ncopies; i++) peqa_qtensor_free(w->copy[i]);
    free(w->copy);
    peqa_qtensor_free(w->slice);
    free(w->codes), free(w->s), free(w->z);
    memset(w, 0, sizeof *w);
}

static int fail_api(const char *what, peqa_status st)
{
    fprintf(stderr, "bench_kernels: %s: %s (%s)\n", what, peqa_status_string(st), peqa_last_error());
    return -1;
}

static int wcase_init(wcase *w, int64_t n, int64_t k, int bits, int64_t g_req, size_t rotate_bytes)
{
    memset(w, 0, sizeof *w);
    peqa_qtensor_info info;
    peqa_status st = peqa_qtensor_sizes(n, k, bits, g_req == 0 ? k : g_req, &info);
    if (st) return fail_api("peqa_qtensor_sizes", st);
    w->n = n, w->k = k, w->bits = bits, w->g = info.group, w->ng = info.ngroups;
    w->kblk = (k + 31) / 32;
    size_t ntiles = (size_t)(n + 15) / 16, tiled = ntiles * 16 * (size_t)w->ng * sizeof(float);
    w->wbytes = info.packed_bytes + 2 * tiled;
    w->codes = malloc((size_t)n * (size_t)k);
    w->s = malloc((size_t)n * (size_t)w->ng * sizeof(float));
    w->z = malloc((size_t)n * (size_t)w->ng * sizeof(float));
    if (!w->codes || !w->s || !w->z) return fprintf(stderr, "bench_kernels: out of memory\n"), -1;
    prng r;
    prng_seed(&r, 0x9e5a0000u ^ (uint64_t)(n * 31 + k * 7 + bits * 3 + w->g));
    unsigned qmax = (1u << bits) - 1;
    for (size_t i = 0; i < (size_t)n * (size_t)k; i++) w->codes[i] = (uint8_t)prng_below(&r, qmax + 1);
    for (size_t i = 0; i < (size_t)n * (size_t)w->ng; i++) {
        w->s[i] = 1e-3f + 1e-2f * prng_unit(&r);
        w->z[i] = (float)qmax * prng_unit(&r);
    }
    /* Enough copies that cycling through them evicts the last-level cache many times over. */
    size_t ncopies = (rotate_bytes + w->wbytes - 1) / w->wbytes;
    ncopies = ncopies < 1 ? 1 : ncopies > 256 ? 256 : ncopies;
    w->copy = calloc(ncopies, sizeof *w->copy);
    if (!w->copy) return fprintf(stderr, "bench_kernels: out of memory\n"), -1;
    w->ncopies = (int)ncopies;
    const void *packed = NULL;
    size_t packed_bytes = 0;
    for (int i = 0; i < w->ncopies; i++) {
        if ((st = peqa_qtensor_create(n, k, bits, w->g, &w->copy[i]))) return fail_api("peqa_qtensor_create", st);
        if (i == 0) {
            if ((st = peqa_qtensor_import(w->copy[0], w->codes, k, w->s, w->z)))
                return fail_api("peqa_qtensor_import", st);
            peqa_qtensor_packed(w->copy[0], &packed, &packed_bytes);
        } else if ((st = peqa_qtensor_load_packed(w->copy[i], packed, packed_bytes)) ||
                   (st = peqa_qtensor_set_scales(w->copy[i], w->s)) ||
                   (st = peqa_qtensor_set_zeros(w->copy[i], w->z))) {
            return fail_api("copying the weight", st);
        }
    }
    /* The validation slice: the first and the last rows (where thread splits and tails end). */
    w->nv = n <= 64 ? n : 64;
    w->nhead = n <= 64 ? n : 32;
    uint8_t *c = malloc((size_t)w->nv * (size_t)k);
    float *ss = malloc((size_t)w->nv * (size_t)w->ng * sizeof(float));
    float *zz = malloc((size_t)w->nv * (size_t)w->ng * sizeof(float));
    if (!c || !ss || !zz) return free(c), free(ss), free(zz), fprintf(stderr, "bench_kernels: out of memory\n"), -1;
    for (int64_t r2 = 0; r2 < w->nv; r2++) {
        int64_t src = slice_row(w, r2);
        memcpy(c + r2 * k, w->codes + src * k, (size_t)k);
        memcpy(ss + r2 * w->ng, w->s + src * w->ng, (size_t)w->ng * sizeof(float));
        memcpy(zz + r2 * w->ng, w->z + src * w->ng, (size_t)w->ng * sizeof(float));
    }
    st = peqa_qtensor_create(w->nv, k, bits, w->g, &w->slice);
    if (!st) st = peqa_qtensor_import(w->slice, c, k, ss, zz);
    free(c), free(ss), free(zz);
    if (st) return fail_api("validation slice", st);
    return 0;
}

/* ---- activations and outputs of one (shape, M) ------------------------------------------- */

typedef struct {
    int64_t m, n, k, kblk, mv;
    float *x, *dy, *y, *dx, *ds, *xs;
    int8_t *xq;
    /* validation slice: rows [0, mv) of x; dy gathered to the slice's columns */
    float *dyv, *yv[2], *dsv[2], *dxv[2], *xsv[2];
    int8_t *xqv[2];
} acts;

static void *xalloc(size_t bytes)
{
    bytes = (bytes + 63) / 64 * 64;
    void *p = aligned_alloc(64, bytes ? bytes : 64);
    if (p) memset(p, 0, bytes);
    return p;
}

static void acts_free(acts *a)
{
    free(a->x), free(a->dy), free(a->y), free(a->dx), free(a->ds), free(a->xs), free(a->xq), free(a->dyv);
    for (int i = 0; i < 2; i++) free(a->yv[i]), free(a->dsv[i]), free(a->dxv[i]), free(a->xsv[i]), free(a->xqv[i]);
    memset(a, 0, sizeof *a);
}

static int acts_init(acts *a, int64_t m, int64_t n, int64_t k)
{
    memset(a, 0, sizeof *a);
    a->m = m, a->n = n, a->k = k, a->kblk = (k + 31) / 32;
    /* M rows on the GEMM path, up to 19: a full register tile of any SIMD kernel plus a tail. */
    a->mv = m < 19 ? m : 19;
    size_t M = (size_t)m, N = (size_t)n, K = (size_t)k, KB = (size_t)a->kblk, NV = 64, MV = (size_t)a->mv;
    a->x = xalloc(M * K * 4), a->dy = xalloc(M * N * 4), a->y = xalloc(M * N * 4);
    a->dx = xalloc(M * K * 4), a->ds = xalloc(N * KB * 4), a->xs = xalloc(M * KB * 4);
    a->xq = xalloc(M * K), a->dyv = xalloc(MV * NV * 4);
    int ok = a->x && a->dy && a->y && a->dx && a->ds && a->xs && a->xq && a->dyv;
    for (int i = 0; i < 2; i++) {
        a->yv[i] = xalloc(MV * NV * 4), a->dsv[i] = xalloc(NV * KB * 4), a->dxv[i] = xalloc(MV * K * 4);
        a->xsv[i] = xalloc(MV * KB * 4), a->xqv[i] = xalloc(MV * K);
        ok = ok && a->yv[i] && a->dsv[i] && a->dxv[i] && a->xsv[i] && a->xqv[i];
    }
    if (!ok) return acts_free(a), fprintf(stderr, "bench_kernels: out of memory\n"), -1;
    prng r;
    prng_seed(&r, 0xac75u ^ (uint64_t)(m * 131 + n * 17 + k));
    for (size_t i = 0; i < M * K; i++) a->x[i] = prng_sym(&r, 1.0f);
    for (size_t i = 0; i < M * N; i++) a->dy[i] = prng_sym(&r, 1.0f);
    return 0;
}

/* ---- calls ---------------------------------------------------------------------------------- */

/* One call of kernel `kern` on the full case with m rows, on the next weight copy. */
static peqa_status call_full(int kern, peqa_ctx *ctx, wcase *w, acts *a, int64_t m)
{
    const peqa_qtensor *t = w->copy[w->next];
    w->next = (w->next + 1) % w->ncopies;
    switch (kern) {
    case K_FWD: return peqa_linear_forward(ctx, t, m, a->x, a->k, a->y, a->n);
    case K_QACT: return peqa_act_quantize(ctx, m, a->k, a->x, a->k, a->xq, a->k, a->xs, a->kblk);
    case K_FWDI8: return peqa_linear_forward_i8(ctx, t, m, a->xq, a->k, a->xs, a->kblk, a->y, a->n);
    case K_GSCALE: return peqa_linear_grad_scale(ctx, t, m, a->x, a->k, a->dy, a->n, a->ds);
    default: return peqa_linear_grad_input(ctx, t, m, a->dy, a->n, a->dx, a->k);
    }
}

/* The same kernel on the validation slice (mv rows, the slice's nv weight rows), into output
 * set `o` (0: reference, 1: under test). fwd_i8 uses the reference's quantized activations. */
static peqa_status call_slice(int kern, peqa_ctx *ctx, const wcase *w, acts *a, int o)
{
    int64_t mv = a->mv, nv = w->nv;
    switch (kern) {
    case K_FWD: return peqa_linear_forward(ctx, w->slice, mv, a->x, a->k, a->yv[o], nv);
    case K_QACT: return peqa_act_quantize(ctx, mv, a->k, a->x, a->k, a->xqv[o], a->k, a->xsv[o], a->kblk);
    case K_FWDI8:
        return peqa_linear_forward_i8(ctx, w->slice, mv, a->xqv[0], a->k, a->xsv[0], a->kblk, a->yv[o], nv);
    case K_GSCALE: return peqa_linear_grad_scale(ctx, w->slice, mv, a->x, a->k, a->dyv, nv, a->dsv[o]);
    default: return peqa_linear_grad_input(ctx, w->slice, mv, a->dyv, nv, a->dxv[o], a->k);
    }
}

/* First differing element of two float / int8 arrays (bit comparison), or -1. */
static int64_t first_diff(const void *p, const void *q, size_t elem, int64_t count)
{
    const unsigned char *x = p, *y = q;
    for (int64_t i = 0; i < count; i++)
        if (memcmp(x + (size_t)i * elem, y + (size_t)i * elem, elem)) return i;
    return -1;
}

static void describe_diff(char *msg, size_t len, const char *name, int64_t idx, int64_t cols,
                          const void *got, const void *want, size_t elem)
{
    if (elem == 4) {
        float g, r;
        memcpy(&g, (const char *)got + idx * 4, 4), memcpy(&r, (const char *)want + idx * 4, 4);
        snprintf(msg, len, "%s[%lld, %lld] = %.9g, reference %.9g", name, (long long)(idx / cols),
                 (long long)(idx % cols), (double)g, (double)r);
    } else {
        snprintf(msg, len, "%s[%lld, %lld] = %d, reference %d", name, (long long)(idx / cols),
                 (long long)(idx % cols), ((const int8_t *)got)[idx], ((const int8_t *)want)[idx]);
    }
}

/* Compares output set 1 (under test) of the slice with set 0 (reference). 1 when identical. */
static int compare_slice(int kern, const wcase *w, const acts *a, char *msg, size_t len)
{
    int64_t i, mv = a->mv, nv = w->nv;
    switch (kern) {
    case K_FWD:
    case K_FWDI8:
        if ((i = first_diff(a->yv[1], a->yv[0], 4, mv * nv)) < 0) return 1;
        describe_diff(msg, len, "y", i, nv, a->yv[1], a->yv[0], 4);
        return 0;
    case K_QACT:
        if ((i = first_diff(a->xqv[1], a->xqv[0], 1, mv * a->k)) >= 0) {
            describe_diff(msg, len, "xq", i, a->k, a->xqv[1], a->xqv[0], 1);
            return 0;
        }
        if ((i = first_diff(a->xsv[1], a->xsv[0], 4, mv * a->kblk)) < 0) return 1;
        describe_diff(msg, len, "xs", i, a->kblk, a->xsv[1], a->xsv[0], 4);
        return 0;
    case K_GSCALE:
        if ((i = first_diff(a->dsv[1], a->dsv[0], 4, nv * w->ng)) < 0) return 1;
        describe_diff(msg, len, "ds", i, w->ng, a->dsv[1], a->dsv[0], 4);
        return 0;
    default:
        if ((i = first_diff(a->dxv[1], a->dxv[0], 4, mv * a->k)) < 0) return 1;
        describe_diff(msg, len, "dx", i, a->k, a->dxv[1], a->dxv[0], 4);
        return 0;
    }
}

/* After timing: the full-size output of the last timed call must contain the reference slice
 * wherever the slice defines it (the same rows of the same weight and inputs), which checks the
 * full-size path (thread split, blocking, tails of large N) at no cost. 1 when consistent. */
static int spot_check(int kern, const wcase *w, const acts *a, int64_t m_run, char *msg, size_t len)
{
    int64_t rows = m_run < a->mv ? m_run : a->mv;
    switch (kern) {
    case K_FWD:
    case K_FWDI8:
        for (int64_t m = 0; m < rows; m++)
            for (int64_t r = 0; r < w->nv; r++) {
                int64_t n = slice_row(w, r);
                if (memcmp(&a->y[m * a->n + n], &a->yv[0][m * w->nv + r], 4)) {
                    snprintf(msg, len, "full-size y[%lld, %lld] = %.9g, reference %.9g", (long long)m,
                             (long long)n, (double)a->y[m * a->n + n], (double)a->yv[0][m * w->nv + r]);
                    return 0;
                }
            }
        return 1;
    case K_QACT:
        for (int64_t m = 0; m < rows; m++) {
            int64_t i = first_diff(a->xq + m * a->k, a->xqv[0] + m * a->k, 1, a->k);
            if (i >= 0) {
                snprintf(msg, len, "full-size xq[%lld, %lld] = %d, reference %d", (long long)m, (long long)i,
                         a->xq[m * a->k + i], a->xqv[0][m * a->k + i]);
                return 0;
            }
        }
        return 1;
    case K_GSCALE:
        if (m_run != a->mv) return 1; /* sums over all M rows: comparable only at the same M */
        for (int64_t r = 0; r < w->nv; r++) {
            int64_t n = slice_row(w, r), i = first_diff(a->ds + n * w->ng, a->dsv[0] + r * w->ng, 4, w->ng);
            if (i >= 0) {
                snprintf(msg, len, "full-size ds[%lld, %lld] = %.9g, reference %.9g", (long long)n,
                         (long long)i, (double)a->ds[n * w->ng + i], (double)a->dsv[0][r * w->ng + i]);
                return 0;
            }
        }
        return 1;
    default:
        return 1; /* dX sums over all N rows: the slice does not define it */
    }
}

/* ---- timing --------------------------------------------------------------------------------- */

typedef struct {
    int done, ok;      /* done: timed; ok: validated and consistent */
    int64_t m_run;     /* batch actually timed (< M when the time budget forced it) */
    bench_stat t;      /* seconds per call */
} timing;

static double time_call(int kern, peqa_ctx *ctx, wcase *w, acts *a, int64_t m, peqa_status *st)
{
    double t0 = bench_now();
    *st = call_full(kern, ctx, w, a, m);
    return bench_now() - t0;
}

/* The batch to time: M itself unless one call at M would take more than half the budget
 * (the slow scalar reference at M = 512 takes minutes). Probes at m = 2, 8, 32, ... (m >= 2 keeps
 * the GEMM slot; time grows about linearly in m) and stops at the last m that fits. The probes
 * double as warm-up calls. *t_last: the time of one call at the chosen m. */
static int64_t choose_m(int kern, peqa_ctx *ctx, wcase *w, acts *a, double cap, double *t_last,
                        peqa_status *st)
{
    int64_t m = a->m < 2 ? a->m : 2;
    for (;;) {
        double t = time_call(kern, ctx, w, a, m, st);
        if (*st) return 0;
        *t_last = t;
        if (m == a->m) return m;
        int64_t next = m * 4 < a->m ? m * 4 : a->m;
        if (t * (double)next / (double)m > cap) return m;
        m = next;
    }
}

static timing time_kernel(int kern, peqa_ctx *ctx, wcase *w, acts *a, int64_t m_run, double t_est,
                          int warm, const options *o, peqa_status *st)
{
    timing r = {0};
    r.m_run = m_run;
    /* One untimed call first (wakes the pool, faults in the outputs) unless it would eat the budget. */
    if (warm && t_est < o->budget / 4) {
        time_call(kern, ctx, w, a, m_run, st);
        if (*st) return r;
    }
    double v[1000], total = 0;
    int n = 0;
    while (n < o->reps) {
        double t = time_call(kern, ctx, w, a, m_run, st);
        if (*st) return r;
        v[n++] = t;
        total += t;
        if (total + t > o->budget) break; /* the next call would pass the budget */
    }
    r.t = bench_summarise(v, n);
    r.done = 1;
    return r;
}

/* ---- reporting ------------------------------------------------------------------------------ */

typedef struct {
    int threads;
    bench_stat fma, i8, bw;
} limit_set;

typedef struct {
    const options *o;
    const char *isa;
    const limit_set *lim; /* per thread index */
    int rows, mismatches;
} report;

static void print_header(const report *rp)
{
    if (rp->o->json) return;
    printf("\n%-7s %-11s %5s %5s %4s %5s %3s %4s %10s %9s %7s %5s %5s %5s %6s  %s\n", "kernel", "N x K", "M",
           "M run", "bits", "g", "thr", "reps", "time_ms", "GFLOP/s", "GB/s", "%bw", "%peak", "%roof",
           "speedup", "implementation / note");
}

/* One result row. flops = 0: no arithmetic roofline (qact). peak: the compute limit that applies. */
static void print_row(report *rp, int kern, const wcase *w, const acts *a, int ti, const timing *r,
                      const timing *first, double flops, double bytes, double peak, const char *impl,
                      const char *note)
{
    const options *o = rp->o;
    const limit_set *L = &rp->lim[ti];
    double t = r->t.median, gflops = flops / t * 1e-9, gbs = bytes / t * 1e-9, bw = L->bw.median;
    double fbw = bw > 0 ? gbs / bw : 0, fpeak = peak > 0 && flops > 0 ? gflops / peak : 0;
    double roof = flops > 0 && bw > 0 && peak > 0 ? (peak < flops / bytes * bw ? peak : flops / bytes * bw) : 0;
    double froof = roof > 0 ? gflops / roof : 0;
    double speed = ti > 0 && first && first->done && first->m_run == r->m_run ? first->t.median / t : 0;
    /* Above a measured limit means the limit was measured low (other work on the machine). */
    char full_note[256];
    snprintf(full_note, sizeof full_note, "%s%s%s", note,
             note[0] && (fbw > 1.05 || fpeak > 1.05) ? "; " : "",
             fbw > 1.05 || fpeak > 1.05 ? "above a measured limit: the limits were measured low?" : "");
    note = full_note;
    rp->rows++;
    if (o->json) {
        printf("{\"type\":\"result\",\"kernel\":\"%s\",\"impl\":", kernel_names[kern]);
        json_str(stdout, impl);
        printf(",\"isa\":\"%s\",\"n\":%lld,\"k\":%lld,\"m\":%lld,\"m_run\":%lld,\"bits\":%d,\"g\":%lld,"
               "\"per_channel\":%s,\"threads\":%d,\"reps\":%d,\"time_ms\":%.6g,\"time_ms_min\":%.6g,"
               "\"time_ms_max\":%.6g,\"gflops\":%.6g,\"bytes\":%.0f,\"gbs\":%.6g,\"frac_bw\":%.4g,"
               "\"frac_peak\":%.4g,\"frac_roof\":%.4g,\"validated\":true,\"speedup\":",
               rp->isa, (long long)w->n, (long long)w->k, (long long)a->m, (long long)r->m_run, w->bits,
               (long long)w->g, w->g == w->k ? "true" : "false", L->threads, r->t.n, t * 1e3,
               r->t.min * 1e3, r->t.max * 1e3, flops > 0 ? gflops : 0, bytes, gbs, fbw, fpeak, froof);
        if (speed > 0) printf("%.4g", speed);
        else printf("null");
        printf(",\"note\":");
        json_str(stdout, note);
        printf("}\n");
    } else {
        char shape[32], g[16], c1[8], c2[8], c3[8], sp[16], gf[16];
        snprintf(shape, sizeof shape, "%lldx%lld", (long long)w->n, (long long)w->k);
        snprintf(g, sizeof g, w->g == w->k ? "K" : "%lld", (long long)w->g);
        snprintf(c1, sizeof c1, kern == K_QACT ? "-" : "%.0f", 100 * fbw);
        snprintf(c2, sizeof c2, fpeak > 0 ? "%.0f" : "-", 100 * fpeak);
        snprintf(c3, sizeof c3, froof > 0 ? "%.0f" : "-", 100 * froof);
        sp[0] = 0;
        if (speed > 0) snprintf(sp, sizeof sp, "%.2fx", speed);
        snprintf(gf, sizeof gf, flops > 0 ? "%.1f" : "-", gflops);
        printf("%-7s %-11s %5lld %5lld %4d %5s %3d %4d %10.3f %9s %7.2f %5s %5s %5s %6s  %s%s%s\n",
               kernel_names[kern], shape, (long long)a->m, (long long)r->m_run, w->bits, g, L->threads,
               r->t.n, t * 1e3, gf, gbs, c1, c2, c3, sp, impl, note[0] ? "  " : "", note);
    }
    fflush(stdout);
}

static void print_mismatch(report *rp, int kern, const wcase *w, const acts *a, int threads,
                           const char *stage, const char *msg)
{
    rp->mismatches++;
    if (rp->o->json) {
        printf("{\"type\":\"mismatch\",\"kernel\":\"%s\",\"isa\":\"%s\",\"n\":%lld,\"k\":%lld,\"m\":%lld,"
               "\"bits\":%d,\"g\":%lld,\"threads\":%d,\"stage\":\"%s\",\"detail\":",
               kernel_names[kern], rp->isa, (long long)w->n, (long long)w->k, (long long)a->m, w->bits,
               (long long)w->g, threads, stage);
        json_str(stdout, msg);
        printf("}\n");
    } else {
        printf("MISMATCH %-7s %lldx%lld M=%lld bits=%d g=%lld threads=%d isa=%s (%s): %s -- not timed\n",
               kernel_names[kern], (long long)w->n, (long long)w->k, (long long)a->m, w->bits,
               (long long)w->g, threads, rp->isa, stage, msg);
    }
    fflush(stdout);
}

/* ---- one case: every selected kernel on every thread count ------------------------------- */

static int run_case(report *rp, peqa_ctx *ref, peqa_ctx **ctx, wcase *w, acts *a, int *qact_done)
{
    const options *o = rp->o;
    timing res[K_COUNT][MAXL];
    memset(res, 0, sizeof res);
    double N = (double)w->n, K = (double)w->k, wb = (double)w->wbytes;
    char msg[256], note[128];
    peqa_status st;

    /* Slice inputs: dy columns of the slice rows; the reference quantized activations. */
    for (int64_t m = 0; m < a->mv; m++)
        for (int64_t r = 0; r < w->nv; r++) a->dyv[m * w->nv + r] = a->dy[m * a->n + slice_row(w, r)];
    if ((st = call_slice(K_QACT, ref, w, a, 0))) return fail_api("reference qact", st);
    /* Full-size quantized activations for fwd_i8 (the reference's: bit-identical by contract). */
    if ((st = peqa_act_quantize(ref, a->m, a->k, a->x, a->k, a->xq, a->k, a->xs, a->kblk)))
        return fail_api("reference qact", st);

    const int order[] = {K_FWD, K_QACT, K_FWDI8, K_GSCALE, K_GINPUT};
    for (int oi = 0; oi < 5; oi++) {
        int kern = order[oi];
        int want = o->kernels[kern] || (o->kernels[K_BWD] && (kern == K_GSCALE || kern == K_GINPUT));
        if (!want || (kern == K_QACT && *qact_done)) continue; /* qact depends on (M, K) only */
        if (kern != K_QACT && (st = call_slice(kern, ref, w, a, 0))) return fail_api("reference", st);
        /* Validate on every thread count before any timing. */
        int valid = 1;
        for (int ti = 0; ti < o->nthreads && valid; ti++) {
            if ((st = call_slice(kern, ctx[ti], w, a, 1))) return fail_api(kernel_names[kern], st);
            if (!compare_slice(kern, w, a, msg, sizeof msg)) {
                print_mismatch(rp, kern, w, a, (int)o->threads[ti], "validation slice", msg);
                valid = 0;
            }
        }
        if (!valid) continue;
        double t_est = 0;
        int64_t m_run = choose_m(kern, ctx[0], w, a, o->budget / 2, &t_est, &st);
        if (st) return fail_api(kernel_names[kern], st);
        for (int ti = 0; ti < o->nthreads; ti++) {
            timing *r = &res[kern][ti];
            *r = time_kernel(kern, ctx[ti], w, a, m_run, t_est, ti > 0, o, &st);
            if (st) return fail_api(kernel_names[kern], st);
            r->ok = spot_check(kern, w, a, m_run, msg, sizeof msg);
            if (!r->ok) {
                print_mismatch(rp, kern, w, a, (int)o->threads[ti], "full-size output", msg);
                r->done = 0;
                continue;
            }
            if (!o->kernels[kern]) continue; /* timed only for the bwd row */
            double mr = (double)m_run, flops = 2.0 * mr * N * K, bytes = wb, peak = rp->lim[ti].fma.median;
            if (kern == K_QACT) flops = 0, bytes = mr * K * 5 + mr * (double)a->kblk * 4, peak = 0;
            if (kern == K_FWDI8) peak = rp->lim[ti].i8.median;
            note[0] = 0;
            if (m_run != a->m) snprintf(note, sizeof note, "(M cut to %lld by the time budget)", (long long)m_run);
            const char *impl = peqa_ctx_kernel_name(ctx[ti], slot_of(kern, m_run), w->bits);
            print_row(rp, kern, w, a, ti, r, ti ? &res[kern][0] : NULL, flops, bytes, peak, impl ? impl : "?",
                      note);
        }
        if (kern == K_QACT) *qact_done = 1;
    }
    /* bwd = scale gradient + input gradient, the per-step backward cost of PEQA training. */
    if (o->kernels[K_BWD]) {
        for (int ti = 0; ti < o->nthreads; ti++) {
            timing *gs = &res[K_GSCALE][ti], *gi = &res[K_GINPUT][ti], *fw = &res[K_FWD][ti];
            if (!gs->done || !gi->done || gs->m_run != gi->m_run) continue;
            timing *b = &res[K_BWD][ti];
            *b = *gs;
            b->t.median = gs->t.median + gi->t.median;
            b->t.min = gs->t.min + gi->t.min, b->t.max = gs->t.max + gi->t.max;
            b->t.n = gs->t.n < gi->t.n ? gs->t.n : gi->t.n;
            double mr = (double)b->m_run;
            note[0] = 0;
            if (fw->done && fw->m_run == b->m_run)
                snprintf(note, sizeof note, "= %.2f x fwd", b->t.median / fw->t.median);
            const char *n1 = peqa_ctx_kernel_name(ctx[ti], "gscale", w->bits);
            const char *n2 = peqa_ctx_kernel_name(ctx[ti], "ginput", w->bits);
            char impl[128];
            snprintf(impl, sizeof impl, "%s+%s", n1 ? n1 : "?", n2 ? n2 : "?");
            print_row(rp, K_BWD, w, a, ti, b, ti ? &res[K_BWD][0] : NULL, 4.0 * mr * N * K, 2 * wb,
                      rp->lim[ti].fma.median, impl, note);
        }
    }
    return 0;
}

static int64_t eff_g(int64_t g, int64_t k) { return g == 0 || g >= k ? k : g; }

/* ---- main ------------------------------------------------------------------------------------ */

static void print_limit(const options *o, const char *name, const char *unit, int threads, bench_stat s,
                        const char *method)
{
    if (o->json) {
        printf("{\"type\":\"limit\",\"limit\":\"%s\",\"unit\":\"%s\",\"threads\":%d,\"median\":%.6g,"
               "\"min\":%.6g,\"max\":%.6g,\"runs\":%d,\"method\":\"%s\"}\n",
               name, unit, threads, s.median, s.min, s.max, s.n, method);
    } else {
        printf("  %-14s %d thr: %8.1f %-7s (median of %d; min %.1f, max %.1f)\n", name, threads, s.median,
               unit, s.n, s.min, s.max);
    }
    fflush(stdout);
}

int main(int argc, char **argv)
{
    options o;
    if (parse_options(argc, argv, &o)) return 2;
    double t_start = bench_now();
    char model[256];
    cpu_model(model, sizeof model);
    size_t llc = llc_bytes();
    size_t rotate = o.rotate_mib > 0 ? (size_t)(o.rotate_mib * 1048576.0)
                                     : (llc ? 4 * llc : (size_t)128 << 20);
    if (rotate < ((size_t)64 << 20) && !(o.rotate_mib > 0)) rotate = (size_t)64 << 20;

    peqa_ctx *ctx[MAXL] = {0}, *ref = NULL;
    peqa_status st;
    for (int i = 0; i < o.nthreads; i++) {
        peqa_ctx_options co = {(int)o.threads[i], o.isa};
        if ((st = peqa_ctx_create(&co, &ctx[i]))) return fail_api("peqa_ctx_create", st), 2;
    }
    peqa_ctx_options ro = {1, "scalar"};
    if ((st = peqa_ctx_create(&ro, &ref))) return fail_api("peqa_ctx_create(scalar)", st), 2;
    const char *isa = peqa_ctx_isa(ctx[0]);
    bench_limits_use(isa);

    if (o.json) {
        printf("{\"type\":\"machine\",\"cpu\":");
        json_str(stdout, model);
        printf(",\"features\":");
        json_str(stdout, peqa_cpu_features());
        printf(",\"isa\":\"%s\",\"llc_bytes\":%zu,\"rotate_bytes\":%zu,\"peqa\":\"%s\",\"limits_method\":\"%s\","
               "\"loadavg1\":%.2f}\n",
               isa, llc, rotate, peqa_version(), bench_limits_method(), loadavg1());
    } else {
        printf("peqa %s kernel benchmark\n", peqa_version());
        printf("CPU:      %s\n", model);
        printf("features: %s   (best ISA %s)\n", peqa_cpu_features(), peqa_cpu_best_isa());
        printf("ISA:      %s   (validated against: scalar)\n", isa);
        printf("LLC:      %zu MiB%s; weights rotated through >= %zu MiB per case\n", llc >> 20,
               llc ? "" : " (unknown)", rotate >> 20);
        printf("load:     %.2f (1-minute load average before starting; other work lowers every number)\n",
               loadavg1());
        printf("kernels in use:\n");
        static const char *const slots[] = {"fwd_gemv", "fwd_gemm", "fwd_i8_gemv", "fwd_i8_gemm", "gscale", "ginput"};
        for (size_t s = 0; s < sizeof slots / sizeof slots[0]; s++) {
            printf("  %-12s", slots[s]);
            for (int b = 0; b < o.nbits; b++)
                printf(" %d-bit: %-28s", (int)o.bits[b], peqa_ctx_kernel_name(ctx[0], slots[s], (int)o.bits[b])
                                                         ? peqa_ctx_kernel_name(ctx[0], slots[s], (int)o.bits[b]) : "?");
            printf("\n");
        }
        printf("  %-12s %s\n", "qact", peqa_ctx_kernel_name(ctx[0], "qact", 4));
        printf("\nmachine limits (%s loops; medians of %d runs):\n", bench_limits_method(), o.limit_reps);
    }

    /* Machine limits, per thread count. */
    limit_set lim[MAXL];
    memset(lim, 0, sizeof lim);
    bench_membuf *buf = bench_membuf_create((size_t)(o.bw_mib * 1048576.0));
    if (!buf) {
        fprintf(stderr, "bench_kernels: cannot allocate the %.0f MiB bandwidth buffer\n", o.bw_mib);
        return 2;
    }
    for (int i = 0; i < o.nthreads; i++) {
        int t = (int)o.threads[i];
        lim[i].threads = t;
        lim[i].fma = bench_limit_fma(t, o.limit_reps, o.limit_seconds);
        lim[i].i8 = bench_limit_i8(t, o.limit_reps, o.limit_seconds);
        lim[i].bw = bench_limit_read(buf, t, o.limit_reps);
        if (!lim[i].bw.n) {
            fprintf(stderr, "bench_kernels: the bandwidth loop returned a wrong checksum\n");
            return 2;
        }
        print_limit(&o, "fp32_fma_peak", "GFLOP/s", t, lim[i].fma, bench_limits_method());
        print_limit(&o, "int8_dot_peak", "GOP/s", t, lim[i].i8, bench_limits_method());
        print_limit(&o, "dram_read_bw", "GB/s", t, lim[i].bw, bench_limits_method());
    }
    bench_membuf_free(buf);
    /* Compute peaks scale with cores. When T threads reach much less than T x the one-thread
     * peak (with T <= online CPUs), something else is running: say so, since every fraction of
     * the T-thread limits is then overstated. */
    long ncpu = 0;
#ifdef _SC_NPROCESSORS_ONLN
    ncpu = sysconf(_SC_NPROCESSORS_ONLN);
#endif
    for (int i = 0; i < o.nthreads; i++) {
        if (o.threads[0] != 1 || i == 0 || lim[i].threads > ncpu) continue;
        double want = 0.8 * lim[i].threads * lim[0].fma.median;
        if (lim[i].fma.median >= want) continue;
        if (o.json)
            printf("{\"type\":\"warning\",\"threads\":%d,\"detail\":\"fp32 peak on %d threads is %.2f x the "
                   "1-thread peak: other work is probably running; fractions of the %d-thread limits are "
                   "overstated\"}\n", lim[i].threads, lim[i].threads, lim[i].fma.median / lim[0].fma.median,
                   lim[i].threads);
        else
            printf("  WARNING: the fp32 peak on %d threads is only %.2f x the 1-thread peak: other work is "
                   "probably running\n  on this machine; fractions of the %d-thread limits are overstated.\n",
                   lim[i].threads, lim[i].fma.median / lim[0].fma.median, lim[i].threads);
    }
    if (!o.json)
        printf("  (%%bw: GB/s of weight bytes / DRAM read bw; %%peak: GFLOP/s / fp32 FMA peak, int8 peak "
               "for fwd_i8; %%roof: GFLOP/s / min(peak, flop per weight byte x bw); speedup: vs %lld thread%s)\n",
               (long long)o.threads[0], o.threads[0] == 1 ? "" : "s");

    report rp = {&o, isa, lim, 0, 0};
    int err = 0;
    if (!o.limits_only) {
        for (int si = 0; si < o.nshapes && !err; si++) {
            int qact_done[MAXL] = {0};
            for (int bi = 0; bi < o.nbits && !err; bi++)
                for (int gi = 0; gi < o.ngs && !err; gi++) {
                    /* g >= K is per-channel, like K itself: time each distinct group size once. */
                    int dup = 0;
                    for (int j = 0; j < gi; j++) dup |= eff_g(o.gs[j], o.shape_k[si]) == eff_g(o.gs[gi], o.shape_k[si]);
                    if (dup) continue;
                    wcase w;
                    if (wcase_init(&w, o.shape_n[si], o.shape_k[si], (int)o.bits[bi], o.gs[gi], rotate)) {
                        wcase_free(&w);
                        err = 1;
                        break;
                    }
                    print_header(&rp);
                    for (int mi = 0; mi < o.nms && !err; mi++) {
                        acts a;
                        if (acts_init(&a, o.ms[mi], w.n, w.k)) {
                            err = 1;
                            break;
                        }
                        err = run_case(&rp, ref, ctx, &w, &a, &qact_done[mi]) != 0;
                        acts_free(&a);
                    }
                    wcase_free(&w);
                }
        }
    }
    if (!o.json)
        printf("\n%d result rows, %d mismatches, %.1f s\n", rp.rows, rp.mismatches, bench_now() - t_start);
    for (int i = 0; i < o.nthreads; i++) peqa_ctx_free(ctx[i]);
    peqa_ctx_free(ref);
    return err ? 2 : rp.mismatches ? 1 : 0;
}
