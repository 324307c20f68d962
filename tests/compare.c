#include <string.h>
#include "compare.h"
#include "test.h"

static int cmp_f32(const char *what, const float *a, const float *b, int64_t rows, int64_t cols,
                   char *msg, size_t len)
{
    int64_t i = t_first_diff(a, b, sizeof(float), rows * cols);
    if (i < 0) return 1;
    snprintf(msg, len, "%s[%lld, %lld]: %a vs %a", what, (long long)(i / cols), (long long)(i % cols),
             (double)a[i], (double)b[i]);
    return 0;
}

int compare_outputs(const tcase *c, const tout *a, const tout *b, char *msg, size_t len)
{
    int64_t nb = (c->k + 31) / 32, i;
    if (a->packed_bytes != b->packed_bytes || memcmp(a->packed, b->packed, a->packed_bytes)) {
        snprintf(msg, len, "packed image differs");
        return 0;
    }
    if ((i = t_first_diff(a->codes_rt, b->codes_rt, 1, c->n * c->k)) >= 0) {
        snprintf(msg, len, "unpack[%lld, %lld]: %u vs %u", (long long)(i / c->k), (long long)(i % c->k),
                 a->codes_rt[i], b->codes_rt[i]);
        return 0;
    }
    if ((i = t_first_diff(a->xq, b->xq, 1, c->m * c->k)) >= 0) {
        snprintf(msg, len, "qact xq[%lld, %lld]: %d vs %d", (long long)(i / c->k), (long long)(i % c->k),
                 a->xq[i], b->xq[i]);
        return 0;
    }
    return cmp_f32("dequant", a->deq, b->deq, c->n, c->k, msg, len) &&
           cmp_f32(c->m == 1 ? "fwd_gemv" : "fwd_gemm", a->y, b->y, c->m, c->n, msg, len) &&
           cmp_f32("gscale", a->ds, b->ds, c->n, c->ng, msg, len) &&
           cmp_f32("gzero", a->dz, b->dz, c->n, c->ng, msg, len) &&
           cmp_f32("ginput", a->dx, b->dx, c->m, c->k, msg, len) &&
           cmp_f32("qact xs", a->xs, b->xs, c->m, nb, msg, len) &&
           cmp_f32(c->m == 1 ? "fwd_i8_gemv" : "fwd_i8_gemm", a->yi8, b->yi8, c->m, c->n, msg, len);
}
