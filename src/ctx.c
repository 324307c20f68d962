/* Context: ISA choice (PEQA_ISA may only lower it) and thread count (PEQA_THREADS). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "internal.h"

static peqa_status parse_threads(const char *text, int *out)
{
    char *end;
    errno = 0;
    long v = strtol(text, &end, 10);
    if (errno || end == text || *end != '\0' || v < 1 || v > 1024)
        return peqa__fail(PEQA_ERR_ARG, "PEQA_THREADS='%s': expected a whole number from 1 to 1024", text);
    *out = (int)v;
    return PEQA_OK;
}

peqa_status peqa_ctx_create(const peqa_ctx_options *opt, peqa_ctx **out)
{
    if (!out) return peqa__fail(PEQA_ERR_NULL, "peqa_ctx_create: out is NULL");
    *out = NULL;
    int threads = opt ? opt->threads : 0;
    const char *isa_name = opt && opt->isa && opt->isa[0] ? opt->isa : NULL;
    const char *isa_from = "options";
    if (threads < 0 || threads > 1024)
        return peqa__fail(PEQA_ERR_ARG, "threads = %d: expected 0 (default) or 1 to 1024", threads);
    if (threads == 0) {
        const char *env = getenv("PEQA_THREADS");
        if (env && env[0]) {
            peqa_status st = parse_threads(env, &threads);
            if (st) return st;
        } else {
            threads = peqa__cpu_count();
        }
    }
    if (!isa_name) {
        const char *env = getenv("PEQA_ISA");
        if (env && env[0]) isa_name = env, isa_from = "PEQA_ISA";
    }
    int isa = peqa__isa_best();
    if (isa_name) {
        int want = peqa__isa_from_name(isa_name);
        if (want < 0)
            return peqa__fail(PEQA_ERR_ISA, "%s: unknown ISA '%s' (expected scalar, avx2, avx512 or neon)",
                              isa_from, isa_name);
        if (!peqa__isa_supported(want))
            return peqa__fail(PEQA_ERR_ISA, "%s: ISA '%s' is not supported by this CPU or build (best: %s)",
                              isa_from, isa_name, peqa__isa_name(isa));
        isa = want;
    }
    peqa_ctx *c = calloc(1, sizeof *c);
    if (!c) return peqa__fail(PEQA_ERR_NOMEM, "peqa_ctx_create: out of memory");
    c->isa = isa;
    c->k = peqa__kernels(isa);
    c->threads = threads;
    peqa_status st = peqa__pool_create(threads, &c->pool);
    if (st) {
        free(c);
        return st;
    }
    *out = c;
    return PEQA_OK;
}

void peqa_ctx_free(peqa_ctx *ctx)
{
    if (!ctx) return;
    peqa__pool_free(ctx->pool);
    free(ctx);
}

const char *peqa_ctx_isa(const peqa_ctx *ctx) { return ctx ? peqa__isa_name(ctx->isa) : NULL; }
int peqa_ctx_threads(const peqa_ctx *ctx) { return ctx ? ctx->threads : 0; }

const char *peqa_ctx_kernel_name(const peqa_ctx *ctx, const char *slot, int bits)
{
    if (!ctx || !slot) return NULL;
    const peqa_kernels *k = ctx->k;
    if (strcmp(slot, "qact") == 0) return k->qact_name;
    if (strcmp(slot, "sgemm_nt") == 0) return k->sgemm_nt_name;
    if (strcmp(slot, "sgemm_nn") == 0) return k->sgemm_nn_name;
    if (strcmp(slot, "sgemm_tn") == 0) return k->sgemm_tn_name;
    if (strcmp(slot, "attn_fwd_head") == 0) return k->attn_fwd_head_name;
    if (strcmp(slot, "attn_bwd_group") == 0) return k->attn_bwd_group_name;
    if (bits != 2 && bits != 3 && bits != 4 && bits != 8) return NULL;
    int b = peqa_bits_index(bits);
    static const struct { const char *slot; size_t off; } slots[] = {
        {"unpack", offsetof(peqa_kernels, unpack_name)},
        {"dequant", offsetof(peqa_kernels, dequant_name)},
        {"fwd_gemv", offsetof(peqa_kernels, fwd_gemv_name)},
        {"fwd_gemm", offsetof(peqa_kernels, fwd_gemm_name)},
        {"gscale", offsetof(peqa_kernels, gscale_name)},
        {"gzero", offsetof(peqa_kernels, gzero_name)},
        {"ginput", offsetof(peqa_kernels, ginput_name)},
        {"fwd_i8_gemv", offsetof(peqa_kernels, fwd_i8_gemv_name)},
        {"fwd_i8_gemm", offsetof(peqa_kernels, fwd_i8_gemm_name)},
    };
    for (size_t i = 0; i < sizeof slots / sizeof slots[0]; i++)
        if (strcmp(slot, slots[i].slot) == 0)
            return ((const char *const *)((const char *)k + slots[i].off))[b];
    return NULL;
}
