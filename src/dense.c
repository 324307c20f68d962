/* Dense fp32 products: validation and the split into tasks that own disjoint output blocks. */
#include "internal.h"

typedef struct {
    peqa_sgemm_fn f;
    int64_t rows, cols, red, rchunk, cchunk, nc;
    const float *a, *b;
    int64_t lda, ldb;
    float *c;
    int64_t ldc;
} sg_job;

static void sg_task(void *arg, int64_t task)
{
    const sg_job *j = arg;
    int64_t r0 = (task / j->nc) * j->rchunk, c0 = (task % j->nc) * j->cchunk;
    int64_t r1 = r0 + j->rchunk < j->rows ? r0 + j->rchunk : j->rows;
    int64_t c1 = c0 + j->cchunk < j->cols ? c0 + j->cchunk : j->cols;
    j->f(r0, r1, c0, c1, j->red, j->a, j->lda, j->b, j->ldb, j->c, j->ldc);
}

/* The output is rows x cols; columns are split in multiples of 16 so SIMD kernels see whole
 * vectors except at the matrix edge. */
static peqa_status run(const char *fn, peqa_ctx *ctx, peqa_sgemm_fn f, int64_t rows, int64_t cols,
                       int64_t red, const float *a, int64_t lda, int64_t acols, const float *b,
                       int64_t ldb, int64_t bcols, float *c, int64_t ldc)
{
    const int64_t lim = (int64_t)1 << 40;
    if (!ctx) return peqa__fail(PEQA_ERR_NULL, "%s: context is NULL", fn);
    if (!a || !b || !c) return peqa__fail(PEQA_ERR_NULL, "%s: a matrix pointer is NULL", fn);
    if (rows < 1 || cols < 1 || red < 1 || rows > lim || cols > lim || red > lim)
        return peqa__fail(PEQA_ERR_SHAPE, "%s: dimensions must be between 1 and 2^40", fn);
    if (lda < acols || ldb < bcols || ldc < cols)
        return peqa__fail(PEQA_ERR_SHAPE, "%s: a leading dimension is smaller than its row length", fn);
    sg_job j = {.f = f, .rows = rows, .cols = cols, .red = red, .rchunk = rows, .cchunk = cols, .nc = 1,
                .a = a, .b = b, .lda = lda, .ldb = ldb, .c = c, .ldc = ldc};
    int64_t nr = 1;
    int t = ctx->threads;
    if (t > 1 && rows * cols * red >= ((int64_t)1 << 17)) {
        int64_t want = (int64_t)t * 4, cb = (cols + 15) / 16;
        j.nc = cb < want ? cb : want;
        j.cchunk = ((cb + j.nc - 1) / j.nc) * 16;
        j.nc = (cols + j.cchunk - 1) / j.cchunk;
        if (j.nc < want) {
            nr = (want + j.nc - 1) / j.nc;
            nr = nr < rows ? nr : rows;
            j.rchunk = (rows + nr - 1) / nr;
            nr = (rows + j.rchunk - 1) / j.rchunk;
        }
    }
    peqa__pool_run(ctx->pool, nr * j.nc, sg_task, &j);
    return PEQA_OK;
}

peqa_status peqa_sgemm_nt(peqa_ctx *ctx, int64_t m, int64_t n, int64_t k, const float *a, int64_t lda,
                          const float *b, int64_t ldb, float *c, int64_t ldc)
{
    return run("peqa_sgemm_nt", ctx, ctx ? ctx->k->sgemm_nt : NULL, m, n, k, a, lda, k, b, ldb, k, c, ldc);
}

peqa_status peqa_sgemm_nn(peqa_ctx *ctx, int64_t m, int64_t n, int64_t k, const float *a, int64_t lda,
                          const float *b, int64_t ldb, float *c, int64_t ldc)
{
    return run("peqa_sgemm_nn", ctx, ctx ? ctx->k->sgemm_nn : NULL, m, k, n, a, lda, n, b, ldb, k, c, ldc);
}

peqa_status peqa_sgemm_tn(peqa_ctx *ctx, int64_t m, int64_t n, int64_t k, const float *a, int64_t lda,
                          const float *b, int64_t ldb, float *c, int64_t ldc)
{
    return run("peqa_sgemm_tn", ctx, ctx ? ctx->k->sgemm_tn : NULL, n, k, m, a, lda, n, b, ldb, k, c, ldc);
}
