/* Layer drivers: validate, split the work into tasks that own disjoint outputs, and run the
 * dispatched kernels on the context's thread pool (SPEC §4, §6 rule 5, §7, §9). */
#include <math.h>
#include "internal.h"

/* Work splitting (SPEC §6 rule 5, §9). Work is counted in multiply-adds (M·N·K).
 *
 * Below PEQA_PAR_MIN_WORK a call stays on the calling thread. Measured on the 2-core EPYC VM
 * (src/threadpool.c): a job handed to a spinning worker costs ~0.2 us, and a compute job split
 * over 2 threads ran 1.6x faster at 9 us, 1.9x at 37 us, 2.0x at 140 us of one-thread time; a
 * sleeping worker costs the caller a futex wake (a few us) and joins late, the caller never
 * waits for it. The AVX2 kernels do 2^18 multiply-adds in about 10 us on one core (int8 GEMV
 * 512 x 512), so this threshold keeps 2 threads from being slower than 1 on small shapes.
 * Every task also gets at least PEQA_TASK_MIN_WORK, so a job just above the threshold is cut in
 * two rather than spread thinly over many threads (which would also wake them all). */
#ifndef PEQA_PAR_MIN_WORK /* a port may tune it with -DPEQA_PAR_MIN_WORK=... */
#define PEQA_PAR_MIN_WORK ((int64_t)1 << 18)
#endif
#define PEQA_TASK_MIN_WORK (PEQA_PAR_MIN_WORK / 2)
/* Tasks per thread: tasks are handed out dynamically, so a few per thread even out uneven
 * tiles, a thread that starts late, or a core shared with another process. */
#define PEQA_TASKS_PER_THREAD 4
/* ...and big jobs get more, of about this much work each (~0.5 ms on one core). The pool wakes
 * a sleeping worker between the caller's own tasks (src/threadpool.c: a job's first task tells
 * the caller whether waking is worth it), so a worker that slept joins after the caller's first
 * task: with 8 tasks of a 200 ms GEMM that cost an eighth of the job (measured 1.65x on 2
 * threads), with tasks of 0.5 ms it costs nothing measurable (1.9x). Units are not split
 * further for this (no M split of a GEMM just to get more tasks). */
#define PEQA_TASK_TARGET_WORK ((int64_t)1 << 24)
/* Row (M) splits are made in multiples of this many rows when there are enough rows, so that
 * no task hands a GEMM kernel an avoidable M tail: 24 is a multiple of every common register
 * tile height MR (1, 2, 3, 4, 6, 8, 12; the AVX2 kernels use 4 and 6). */
#define PEQA_ROW_ALIGN 24

/* m·n·k, saturated (m may be up to 2^40, so the product can exceed int64). */
static int64_t macs(int64_t m, int64_t n, int64_t k)
{
    size_t a, b;
    if (!peqa__mul((size_t)m, (size_t)n, &a) || !peqa__mul(a, (size_t)k, &b) || b > (size_t)INT64_MAX)
        return INT64_MAX;
    return (int64_t)b;
}

static peqa_status check_common(const char *fn, const peqa_ctx *ctx, const peqa_qtensor *w, int64_t m)
{
    if (!ctx || !w) return peqa__fail(PEQA_ERR_NULL, "%s: %s is NULL", fn, ctx ? "weight" : "context");
    if (m < 1 || m > ((int64_t)1 << 40))
        return peqa__fail(PEQA_ERR_SHAPE, "%s: m = %lld: expected 1 <= m <= 2^40", fn, (long long)m);
    return PEQA_OK;
}

static peqa_status check_mat(const char *fn, const char *name, const void *p, int64_t ld, int64_t cols)
{
    if (!p) return peqa__fail(PEQA_ERR_NULL, "%s: %s is NULL", fn, name);
    if (ld < cols)
        return peqa__fail(PEQA_ERR_SHAPE, "%s: leading dimension of %s = %lld is smaller than its %lld columns",
                          fn, name, (long long)ld, (long long)cols);
    return PEQA_OK;
}

/* A 2-D split of an output of `rows` x `units` (units = 16-row tiles or 32-column blocks) into
 * nr x nu tasks. Rows are split in blocks of `rblk` rows. Each dimension is cut into parts that
 * differ by at most one unit (or row block): part i of n over e covers [i·e/n, (i+1)·e/n).
 * Every split owns disjoint outputs, and every kernel computes each output with the same
 * sequence whatever range it is given, so the split never changes a bit. */
typedef struct {
    int64_t rows, units;
    int64_t rblk, nrb; /* rows per row block, number of row blocks */
    int64_t nr, nu;    /* parts along rows and along units; tasks = nr * nu */
} split2;

/* Prefer splitting units: for the forward pass and the gradients a unit range is a slice of the
 * weight that one task then reads once for all its rows, so a units-only split reads the
 * weights once in total (GEMV: output row tiles; GEMM: N tiles; scale and zero gradients: row
 * tiles, which cannot be split along M because each output sums over every m in order; input
 * gradient: K blocks). Rows are split as well only when the units alone cannot make enough
 * tasks (few output tiles, or a large M with a narrow N). Callers that must not split rows
 * pass rows = 1. */
static split2 make_split(const peqa_ctx *ctx, int64_t rows, int64_t units, int64_t work, int64_t min_units)
{
    split2 s = {rows, units, rows, 1, 1, 1};
    int64_t t = ctx->threads;
    if (t <= 1 || work < PEQA_PAR_MIN_WORK) return s;
    int64_t want = t * PEQA_TASKS_PER_THREAD, cap = work / PEQA_TASK_MIN_WORK;
    int64_t fine = work / PEQA_TASK_TARGET_WORK;
    if (fine > units / min_units) fine = units / min_units;
    if (fine > want) want = fine < units ? fine : units > want ? units : want;
    if (want > cap) want = cap; /* >= 2 here */
    if (units >= want) {
        s.nu = want;
        return s;
    }
    s.nu = units;
    int64_t nr = (want + units - 1) / units;
    s.rblk = rows >= nr * PEQA_ROW_ALIGN ? PEQA_ROW_ALIGN : 1;
    s.nrb = (rows + s.rblk - 1) / s.rblk;
    s.nr = nr < s.nrb ? nr : s.nrb;
    return s;
}

static void split_range(const split2 *s, int64_t task, int64_t *r0, int64_t *r1, int64_t *u0, int64_t *u1)
{
    int64_t ri = task / s->nu, ui = task % s->nu;
    int64_t b0 = ri * s->nrb / s->nr, b1 = (ri + 1) * s->nrb / s->nr;
    *r0 = b0 * s->rblk;
    *r1 = b1 * s->rblk < s->rows ? b1 * s->rblk : s->rows;
    *u0 = ui * s->units / s->nu;
    *u1 = (ui + 1) * s->units / s->nu;
}

/* ---- forward (fp32 and int8 activations) ---- */

typedef struct {
    const peqa_qw *w;
    split2 sp;
    peqa_fwd_fn f32;
    peqa_fwd_i8_fn i8;
    const float *x;
    const int8_t *xq;
    const float *xs;
    int64_t ldx, ldxs;
    float *y;
    int64_t ldy;
    int64_t unit_rows; /* rows n per split unit */
} fwd_job;

static void fwd_task(void *arg, int64_t task)
{
    const fwd_job *j = arg;
    int64_t m0, m1, t0, t1;
    split_range(&j->sp, task, &m0, &m1, &t0, &t1);
    int64_t n0 = t0 * j->unit_rows, n1 = t1 * j->unit_rows < j->w->n ? t1 * j->unit_rows : j->w->n;
    if (j->f32)
        j->f32(j->w, m0, m1, n0, n1, j->x, j->ldx, j->y, j->ldy);
    else
        j->i8(j->w, m0, m1, n0, n1, j->xq, j->ldx, j->xs, j->ldxs, j->y, j->ldy);
}

peqa_status peqa_linear_forward(peqa_ctx *ctx, const peqa_qtensor *w, int64_t m, const float *x,
                                int64_t ldx, float *y, int64_t ldy)
{
    const char *fn = "peqa_linear_forward";
    peqa_status st;
    if ((st = check_common(fn, ctx, w, m)) || (st = check_mat(fn, "x", x, ldx, w->w.k)) ||
        (st = check_mat(fn, "y", y, ldy, w->w.n)))
        return st;
    int b = peqa_bits_index(w->w.bits);
    fwd_job j = {.w = &w->w, .f32 = m == 1 ? ctx->k->fwd_gemv[b] : ctx->k->fwd_gemm[b],
                 .x = x, .ldx = ldx, .y = y, .ldy = ldy, .unit_rows = PEQA_NR};
    /* GEMM tasks own tile pairs: the AVX-512 kernel puts two tiles (32 rows n) in its lanes,
     * as the scale gradient's kernels do, and a task of an odd tile count runs its last tile
     * at half width. */
    if (m > 1) j.unit_rows = 2 * PEQA_NR;
    j.sp = make_split(ctx, m, (w->w.n + j.unit_rows - 1) / j.unit_rows, macs(m, w->w.n, w->w.k), 1);
    peqa__pool_run(ctx->pool, j.sp.nr * j.sp.nu, fwd_task, &j);
    return PEQA_OK;
}

peqa_status peqa_linear_forward_i8(peqa_ctx *ctx, const peqa_qtensor *w, int64_t m,
                                   const int8_t *xq, int64_t ldq, const float *xs, int64_t ldxs,
                                   float *y, int64_t ldy)
{
    const char *fn = "peqa_linear_forward_i8";
    peqa_status st;
    int64_t nb = (w ? w->w.kblk : 0);
    if ((st = check_common(fn, ctx, w, m)) || (st = check_mat(fn, "xq", xq, ldq, w->w.k)) ||
        (st = check_mat(fn, "xs", xs, ldxs, nb)) || (st = check_mat(fn, "y", y, ldy, w->w.n)))
        return st;
    int b = peqa_bits_index(w->w.bits);
    fwd_job j = {.w = &w->w, .i8 = m == 1 ? ctx->k->fwd_i8_gemv[b] : ctx->k->fwd_i8_gemm[b],
                 .xq = xq, .ldx = ldq, .xs = xs, .ldxs = ldxs, .y = y, .ldy = ldy, .unit_rows = 2 * PEQA_NR};
    /* Tasks own tile pairs (the AVX-512 VNNI kernels run two tiles side by side, GEMV and GEMM).
     * The int8 kernels prepare per-row block sums of X once per call (O(M K / 32)), so a GEMM
     * task keeps at least 8 pairs; a GEMV's preparation is one row. */
    j.sp = make_split(ctx, m, (w->w.n + j.unit_rows - 1) / j.unit_rows, macs(m, w->w.n, w->w.k), m > 1 ? 8 : 1);
    peqa__pool_run(ctx->pool, j.sp.nr * j.sp.nu, fwd_task, &j);
    return PEQA_OK;
}

/* ---- scale and zero-point gradients: tasks own row tiles, each sums over all m in order ---- */

typedef struct {
    const peqa_qw *w;
    split2 sp;
    peqa_gscale_fn fs;
    peqa_gzero_fn fz;
    int64_t m;
    const float *x, *dy;
    int64_t ldx, lddy;
    float *out;
    int64_t unit_rows; /* rows n per split unit */
} grad_job;

static void grad_task(void *arg, int64_t task)
{
    const grad_job *j = arg;
    int64_t r0, r1, t0, t1;
    split_range(&j->sp, task, &r0, &r1, &t0, &t1);
    int64_t n0 = t0 * j->unit_rows, n1 = t1 * j->unit_rows < j->w->n ? t1 * j->unit_rows : j->w->n;
    if (j->fs)
        j->fs(j->w, j->m, n0, n1, j->x, j->ldx, j->dy, j->lddy, j->out);
    else
        j->fz(j->w, j->m, n0, n1, j->x, j->ldx, j->dy, j->lddy, j->out);
}

static peqa_status grad_sz(const char *fn, peqa_ctx *ctx, const peqa_qtensor *w, int64_t m,
                           const float *x, int64_t ldx, const float *dy, int64_t lddy, float *out,
                           int zero)
{
    peqa_status st;
    if ((st = check_common(fn, ctx, w, m)) || (st = check_mat(fn, "x", x, ldx, w->w.k)) ||
        (st = check_mat(fn, "dy", dy, lddy, w->w.n)))
        return st;
    if (!out) return peqa__fail(PEQA_ERR_NULL, "%s: output is NULL", fn);
    int b = peqa_bits_index(w->w.bits);
    grad_job j = {.w = &w->w, .m = m, .x = x, .ldx = ldx, .dy = dy, .lddy = lddy, .out = out};
    if (zero)
        j.fz = ctx->k->gzero[b];
    else
        j.fs = ctx->k->gscale[b];
    /* Units of two tiles for the scale gradient: the SIMD kernels put a tile pair (32 rows) in
     * their lanes, so a task of one tile would leave half of every vector idle. */
    j.unit_rows = zero ? PEQA_NR : 2 * PEQA_NR;
    const int64_t units = (w->w.n + j.unit_rows - 1) / j.unit_rows;
    j.sp = make_split(ctx, 1, units, macs(m, w->w.n, w->w.k), 1);
    peqa__pool_run(ctx->pool, j.sp.nr * j.sp.nu, grad_task, &j);
    return PEQA_OK;
}

peqa_status peqa_linear_grad_scale(peqa_ctx *ctx, const peqa_qtensor *w, int64_t m,
                                   const float *x, int64_t ldx, const float *dy, int64_t lddy,
                                   float *ds)
{
    return grad_sz("peqa_linear_grad_scale", ctx, w, m, x, ldx, dy, lddy, ds, 0);
}

peqa_status peqa_linear_grad_zero(peqa_ctx *ctx, const peqa_qtensor *w, int64_t m,
                                  const float *x, int64_t ldx, const float *dy, int64_t lddy,
                                  float *dz)
{
    return grad_sz("peqa_linear_grad_zero", ctx, w, m, x, ldx, dy, lddy, dz, 1);
}

/* ---- input gradient: tasks own (m range) x (32-column blocks) ---- */

typedef struct {
    const peqa_qw *w;
    split2 sp;
    peqa_ginput_fn f;
    const float *dy;
    int64_t lddy;
    float *dx;
    int64_t lddx;
} gin_job;

static void gin_task(void *arg, int64_t task)
{
    const gin_job *j = arg;
    int64_t m0, m1, c0, c1;
    split_range(&j->sp, task, &m0, &m1, &c0, &c1);
    int64_t k0 = c0 * PEQA_KB, k1 = c1 * PEQA_KB < j->w->k ? c1 * PEQA_KB : j->w->k;
    j->f(j->w, m0, m1, k0, k1, j->dy, j->lddy, j->dx, j->lddx);
}

peqa_status peqa_linear_grad_input(peqa_ctx *ctx, const peqa_qtensor *w, int64_t m,
                                   const float *dy, int64_t lddy, float *dx, int64_t lddx)
{
    const char *fn = "peqa_linear_grad_input";
    peqa_status st;
    if ((st = check_common(fn, ctx, w, m)) || (st = check_mat(fn, "dy", dy, lddy, w->w.n)) ||
        (st = check_mat(fn, "dx", dx, lddx, w->w.k)))
        return st;
    gin_job j = {.w = &w->w, .f = ctx->k->ginput[peqa_bits_index(w->w.bits)], .dy = dy,
                 .lddy = lddy, .dx = dx, .lddx = lddx};
    j.sp = make_split(ctx, m, w->w.kblk, macs(m, w->w.n, w->w.k), 1);
    peqa__pool_run(ctx->pool, j.sp.nr * j.sp.nu, gin_task, &j);
    return PEQA_OK;
}

/* ---- activation quantization: tasks own rows ---- */

typedef struct {
    split2 sp;
    peqa_qact_fn f;
    int64_t k;
    const float *x;
    int64_t ldx;
    int8_t *xq;
    int64_t ldq;
    float *xs;
    int64_t ldxs;
} qact_job;

static void qact_task(void *arg, int64_t task)
{
    const qact_job *j = arg;
    int64_t m0, m1, u0, u1;
    split_range(&j->sp, task, &m0, &m1, &u0, &u1);
    j->f(m0, m1, j->k, j->x, j->ldx, j->xq, j->ldq, j->xs, j->ldxs);
}

peqa_status peqa_act_quantize(peqa_ctx *ctx, int64_t m, int64_t k, const float *x, int64_t ldx,
                              int8_t *xq, int64_t ldq, float *xs, int64_t ldxs)
{
    const char *fn = "peqa_act_quantize";
    if (!ctx) return peqa__fail(PEQA_ERR_NULL, "%s: context is NULL", fn);
    if (m < 1 || k < 1 || m > ((int64_t)1 << 40) || k > ((int64_t)1 << 40))
        return peqa__fail(PEQA_ERR_SHAPE, "%s: shape %lld x %lld: both must be >= 1", fn,
                          (long long)m, (long long)k);
    peqa_status st;
    int64_t nb = (k + PEQA_KB - 1) / PEQA_KB;
    if ((st = check_mat(fn, "x", x, ldx, k)) || (st = check_mat(fn, "xq", xq, ldq, k)) ||
        (st = check_mat(fn, "xs", xs, ldxs, nb)))
        return st;
    /* Non-finite input would make rint(x / d) meaningless and its int8 conversion undefined:
     * refuse before writing anything. */
    for (int64_t i = 0; i < m; i++)
        for (int64_t c = 0; c < k; c++)
            if (!isfinite(x[i * ldx + c]))
                return peqa__fail(PEQA_ERR_NONFINITE, "%s: x[%lld, %lld] is not finite", fn,
                                  (long long)i, (long long)c);
    qact_job j = {.f = ctx->k->qact, .k = k, .x = x, .ldx = ldx, .xq = xq, .ldq = ldq, .xs = xs,
                  .ldxs = ldxs};
    /* Rows only; quantizing an element costs several operations, so counting it as one
     * multiply-add keeps small activations on one thread. */
    split2 sp = make_split(ctx, m, 1, macs(m, k, 1), 1);
    j.sp = sp;
    peqa__pool_run(ctx->pool, sp.nr, qact_task, &j);
    return PEQA_OK;
}
