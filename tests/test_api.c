/* Public API: argument validation of every function (documented status, outputs untouched,
 * a message in peqa_last_error), RTN details, the packed layout bit for bit, round trips. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "prng.h"
#include "test.h"

#define SENT 12345.0f

static int expect(trun *r, const char *name, peqa_status got, peqa_status want)
{
    int ok = got == want && (want == PEQA_OK || peqa_last_error()[0] != '\0');
    t_result(r, ok, name, "-", "status %d (%s), want %d; message: %s", (int)got, peqa_status_string(got),
             (int)want, want == PEQA_OK ? "-" : peqa_last_error());
    return ok;
}

static int all_sent(const float *a, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (a[i] != SENT) return 0;
    return 1;
}

static void status_strings(trun *r)
{
    int ok = 1;
    for (int s = 0; s < PEQA_STATUS_COUNT; s++)
        if (!peqa_status_string((peqa_status)s) || !peqa_status_string((peqa_status)s)[0]) ok = 0;
    ok = ok && !strcmp(peqa_status_string((peqa_status)999), "unknown status");
    ok = ok && !strcmp(peqa_version(), PEQA_VERSION_STRING);
    t_result(r, ok, "api/status_strings_version", "-", "%d statuses named, version %s", PEQA_STATUS_COUNT, peqa_version());
}

static void ctx_args(trun *r)
{
    peqa_ctx *c = (peqa_ctx *)1;
    expect(r, "api/ctx_create/null_out", peqa_ctx_create(NULL, NULL), PEQA_ERR_NULL);
    peqa_ctx_options o = {.threads = -1};
    expect(r, "api/ctx_create/threads_negative", peqa_ctx_create(&o, &c), PEQA_ERR_ARG);
    t_result(r, c == NULL, "api/ctx_create/out_cleared_on_error", "-", "out %s", c ? "not NULL" : "NULL");
    o.threads = 5000;
    expect(r, "api/ctx_create/threads_huge", peqa_ctx_create(&o, &c), PEQA_ERR_ARG);
    o = (peqa_ctx_options){.threads = 1, .isa = "sse9"};
    expect(r, "api/ctx_create/isa_unknown", peqa_ctx_create(&o, &c), PEQA_ERR_ISA);
#if defined(__x86_64__)
    o.isa = "neon";
#else
    o.isa = "avx2";
#endif
    expect(r, "api/ctx_create/isa_foreign", peqa_ctx_create(&o, &c), PEQA_ERR_ISA);
    o.isa = "scalar";
    if (expect(r, "api/ctx_create/scalar", peqa_ctx_create(&o, &c), PEQA_OK)) {
        int ok = !strcmp(peqa_ctx_isa(c), "scalar") && peqa_ctx_threads(c) == 1 &&
                 peqa_ctx_kernel_name(c, "fwd_gemm", 4) && !peqa_ctx_kernel_name(c, "nope", 4) &&
                 !peqa_ctx_kernel_name(c, "fwd_gemm", 5) && peqa_ctx_kernel_name(c, "qact", 0);
        t_result(r, ok, "api/ctx_queries", "-", "isa %s, fwd_gemm q4 = %s", peqa_ctx_isa(c),
                 peqa_ctx_kernel_name(c, "fwd_gemm", 4));
        peqa_ctx_free(c);
    }
    peqa_ctx_free(NULL);
}

static void qtensor_args(trun *r)
{
    peqa_qtensor *t = (peqa_qtensor *)1;
    peqa_qtensor_info info;
    expect(r, "api/qtensor_create/null_out", peqa_qtensor_create(4, 32, 4, 32, NULL), PEQA_ERR_NULL);
    expect(r, "api/qtensor_create/n_zero", peqa_qtensor_create(0, 32, 4, 32, &t), PEQA_ERR_SHAPE);
    t_result(r, t == NULL, "api/qtensor_create/out_cleared_on_error", "-", "%s", t ? "not NULL" : "NULL");
    expect(r, "api/qtensor_create/k_negative", peqa_qtensor_create(4, -3, 4, 32, &t), PEQA_ERR_SHAPE);
    expect(r, "api/qtensor_create/bits_5", peqa_qtensor_create(4, 32, 5, 32, &t), PEQA_ERR_BITS);
    expect(r, "api/qtensor_create/bits_1", peqa_qtensor_create(4, 32, 1, 32, &t), PEQA_ERR_BITS);
    expect(r, "api/qtensor_create/group_negative", peqa_qtensor_create(4, 64, 4, -1, &t), PEQA_ERR_GROUP);
    expect(r, "api/qtensor_create/group_48", peqa_qtensor_create(4, 128, 4, 48, &t), PEQA_ERR_GROUP);
    expect(r, "api/qtensor_create/overflow", peqa_qtensor_create((int64_t)1 << 40, (int64_t)1 << 40, 4, 0, &t),
           PEQA_ERR_OVERFLOW);
    expect(r, "api/qtensor_create/too_large", peqa_qtensor_create((int64_t)1 << 50, 32, 4, 0, &t),
           PEQA_ERR_OVERFLOW);
    expect(r, "api/qtensor_sizes/null", peqa_qtensor_sizes(4, 32, 4, 0, NULL), PEQA_ERR_NULL);
    if (expect(r, "api/qtensor_sizes/ok", peqa_qtensor_sizes(17, 200, 3, 64, &info), PEQA_OK)) {
        /* 2 tiles x 7 k-blocks x 3 words x 16 rows x 4 bytes; G = 4 (64, 64, 64, 8) */
        int ok = info.packed_bytes == 2 * 7 * 3 * 16 * 4 && info.ngroups == 4 && info.group == 64 &&
                 info.scale_bytes == 17 * 4 * 4 && info.code_bytes == 17 * 200;
        t_result(r, ok, "api/qtensor_sizes/values", "-", "packed %zu, G %lld", info.packed_bytes, (long long)info.ngroups);
    }
    if (!expect(r, "api/qtensor_sizes/per_channel", peqa_qtensor_sizes(3, 172, 4, 999, &info), PEQA_OK) ||
        info.group != 172 || info.ngroups != 1)
        t_result(r, 0, "api/qtensor_sizes/per_channel_values", "-", "group %lld", (long long)info.group);
    peqa_qtensor_free(NULL);

    /* functions taking a tensor */
    peqa_ctx *ctx = t_ctx("scalar", 1);
    if (!ctx || peqa_qtensor_create(5, 70, 4, 32, &t)) {
        t_result(r, 0, "api/setup", "-", "%s", peqa_last_error());
        peqa_ctx_free(ctx);
        return;
    }
    int64_t n = 5, k = 70;
    float w[5 * 70], s[15], z[15], out[5 * 70];
    uint8_t codes[5 * 70];
    prng pr;
    prng_seed(&pr, 7);
    for (int i = 0; i < n * k; i++) w[i] = prng_sym(&pr, 1.0f);
    expect(r, "api/quantize_rtn/null_t", peqa_qtensor_quantize_rtn(NULL, w, k), PEQA_ERR_NULL);
    expect(r, "api/quantize_rtn/null_w", peqa_qtensor_quantize_rtn(t, NULL, k), PEQA_ERR_NULL);
    expect(r, "api/quantize_rtn/ldw_small", peqa_qtensor_quantize_rtn(t, w, k - 1), PEQA_ERR_SHAPE);
    expect(r, "api/quantize_rtn/ok", peqa_qtensor_quantize_rtn(t, w, k), PEQA_OK);
    peqa_qtensor_get_scales(t, s);
    w[3 * k + 5] = NAN;
    expect(r, "api/quantize_rtn/nan", peqa_qtensor_quantize_rtn(t, w, k), PEQA_ERR_NONFINITE);
    w[3 * k + 5] = INFINITY;
    expect(r, "api/quantize_rtn/inf", peqa_qtensor_quantize_rtn(t, w, k), PEQA_ERR_NONFINITE);
    float s2[15];
    peqa_qtensor_get_scales(t, s2);
    t_result(r, !memcmp(s, s2, sizeof s), "api/quantize_rtn/unchanged_on_error", "-", "scales kept");
    w[3 * k + 5] = 3e38f, w[3 * k + 6] = -3e38f;
    expect(r, "api/quantize_rtn/range_overflow", peqa_qtensor_quantize_rtn(t, w, k), PEQA_ERR_RANGE);
    w[3 * k + 5] = 0.5f, w[3 * k + 6] = 0.5f;

    peqa_qtensor_export(ctx, t, codes, k, s, z);
    codes[7] = 16;
    expect(r, "api/import/code_out_of_range", peqa_qtensor_import(t, codes, k, s, z), PEQA_ERR_RANGE);
    codes[7] = 15;
    s[2] = NAN;
    expect(r, "api/import/nan_scale", peqa_qtensor_import(t, codes, k, s, z), PEQA_ERR_NONFINITE);
    s[2] = 0.1f;
    z[1] = INFINITY;
    expect(r, "api/import/inf_zero", peqa_qtensor_import(t, codes, k, s, z), PEQA_ERR_NONFINITE);
    z[1] = 3.0f;
    expect(r, "api/import/ldc_small", peqa_qtensor_import(t, codes, 3, s, z), PEQA_ERR_SHAPE);
    expect(r, "api/import/null", peqa_qtensor_import(t, NULL, k, s, z), PEQA_ERR_NULL);
    expect(r, "api/export/null_ctx", peqa_qtensor_export(NULL, t, codes, k, s, z), PEQA_ERR_NULL);
    expect(r, "api/export/ldc_small", peqa_qtensor_export(ctx, t, codes, 1, s, z), PEQA_ERR_SHAPE);
    expect(r, "api/export/only_scales", peqa_qtensor_export(ctx, t, NULL, 0, s, NULL), PEQA_OK);
    expect(r, "api/set_scales/null", peqa_qtensor_set_scales(t, NULL), PEQA_ERR_NULL);
    s[0] = NAN;
    expect(r, "api/set_scales/nan", peqa_qtensor_set_scales(t, s), PEQA_ERR_NONFINITE);
    expect(r, "api/set_zeros/nan", peqa_qtensor_set_zeros(t, s), PEQA_ERR_NONFINITE);
    expect(r, "api/get_scales/null", peqa_qtensor_get_scales(NULL, s), PEQA_ERR_NULL);
    expect(r, "api/get_zeros/null", peqa_qtensor_get_zeros(t, NULL), PEQA_ERR_NULL);
    expect(r, "api/get_info/null", peqa_qtensor_get_info(t, NULL), PEQA_ERR_NULL);
    expect(r, "api/dequantize/null", peqa_qtensor_dequantize(ctx, t, NULL, k), PEQA_ERR_NULL);
    expect(r, "api/dequantize/ldw_small", peqa_qtensor_dequantize(ctx, t, out, k - 1), PEQA_ERR_SHAPE);

    const void *pk;
    size_t pb;
    expect(r, "api/packed/null", peqa_qtensor_packed(t, NULL, &pb), PEQA_ERR_NULL);
    if (expect(r, "api/packed/ok", peqa_qtensor_packed(t, &pk, &pb), PEQA_OK)) {
        unsigned char *img = malloc(pb);
        memcpy(img, pk, pb);
        expect(r, "api/load_packed/size", peqa_qtensor_load_packed(t, img, pb - 4), PEQA_ERR_FORMAT);
        img[pb - 1] |= 0x80; /* row 15 of the only tile is padding (N = 5) */
        expect(r, "api/load_packed/padding_bits", peqa_qtensor_load_packed(t, img, pb), PEQA_ERR_FORMAT);
        img[pb - 1] &= 0x7f;
        expect(r, "api/load_packed/ok", peqa_qtensor_load_packed(t, img, pb), PEQA_OK);
        free(img);
    }

    /* layer operations: every bad argument returns a status and leaves outputs untouched */
    int64_t m = 3;
    float x[3 * 70], y[3 * 5], dy[3 * 5], dx[3 * 70], ds[15], xs[3 * 3];
    int8_t xq[3 * 70];
    for (int i = 0; i < m * k; i++) x[i] = prng_sym(&pr, 1.0f);
    for (int i = 0; i < m * n; i++) dy[i] = prng_sym(&pr, 1.0f), y[i] = SENT;
    for (int i = 0; i < 15; i++) ds[i] = SENT;
    for (int i = 0; i < m * k; i++) dx[i] = SENT;
    expect(r, "api/forward/null_ctx", peqa_linear_forward(NULL, t, m, x, k, y, n), PEQA_ERR_NULL);
    expect(r, "api/forward/null_w", peqa_linear_forward(ctx, NULL, m, x, k, y, n), PEQA_ERR_NULL);
    expect(r, "api/forward/m_zero", peqa_linear_forward(ctx, t, 0, x, k, y, n), PEQA_ERR_SHAPE);
    expect(r, "api/forward/null_x", peqa_linear_forward(ctx, t, m, NULL, k, y, n), PEQA_ERR_NULL);
    expect(r, "api/forward/ldx_small", peqa_linear_forward(ctx, t, m, x, k - 1, y, n), PEQA_ERR_SHAPE);
    expect(r, "api/forward/ldy_small", peqa_linear_forward(ctx, t, m, x, k, y, n - 1), PEQA_ERR_SHAPE);
    expect(r, "api/forward/null_y", peqa_linear_forward(ctx, t, m, x, k, NULL, n), PEQA_ERR_NULL);
    expect(r, "api/grad_scale/null_dy", peqa_linear_grad_scale(ctx, t, m, x, k, NULL, n, ds), PEQA_ERR_NULL);
    expect(r, "api/grad_scale/null_ds", peqa_linear_grad_scale(ctx, t, m, x, k, dy, n, NULL), PEQA_ERR_NULL);
    expect(r, "api/grad_scale/lddy_small", peqa_linear_grad_scale(ctx, t, m, x, k, dy, 2, ds), PEQA_ERR_SHAPE);
    expect(r, "api/grad_zero/m_negative", peqa_linear_grad_zero(ctx, t, -1, x, k, dy, n, ds), PEQA_ERR_SHAPE);
    expect(r, "api/grad_zero/null_x", peqa_linear_grad_zero(ctx, t, m, NULL, k, dy, n, ds), PEQA_ERR_NULL);
    expect(r, "api/grad_input/lddx_small", peqa_linear_grad_input(ctx, t, m, dy, n, dx, 69), PEQA_ERR_SHAPE);
    expect(r, "api/grad_input/null_dy", peqa_linear_grad_input(ctx, t, m, NULL, n, dx, k), PEQA_ERR_NULL);
    expect(r, "api/act_quantize/k_zero", peqa_act_quantize(ctx, m, 0, x, k, xq, k, xs, 3), PEQA_ERR_SHAPE);
    expect(r, "api/act_quantize/ldxs_small", peqa_act_quantize(ctx, m, k, x, k, xq, k, xs, 2), PEQA_ERR_SHAPE);
    for (int i = 0; i < 9; i++) xs[i] = SENT;
    x[2 * k + 69] = NAN;
    expect(r, "api/act_quantize/nan", peqa_act_quantize(ctx, m, k, x, k, xq, k, xs, 3), PEQA_ERR_NONFINITE);
    x[2 * k + 69] = 0.25f;
    expect(r, "api/forward_i8/ldxs_small", peqa_linear_forward_i8(ctx, t, m, xq, k, xs, 2, y, n), PEQA_ERR_SHAPE);
    expect(r, "api/forward_i8/null_xq", peqa_linear_forward_i8(ctx, t, m, NULL, k, xs, 3, y, n), PEQA_ERR_NULL);
    int untouched = all_sent(y, 15) && all_sent(ds, 15) && all_sent(dx, 210) && all_sent(xs, 9);
    t_result(r, untouched, "api/outputs_untouched_on_error", "-", untouched ? "no output written by a failing call" : "a failing call wrote output");
    peqa_qtensor_free(t);
    peqa_ctx_free(ctx);
}

/* RTN: round-half-to-even, the GPTQ range convention, all-zero groups. */
static void rtn_rules(trun *r)
{
    peqa_ctx *ctx = t_ctx("scalar", 1);
    peqa_qtensor *t = NULL;
    /* one 4-bit per-channel row: range [0, 15] -> s = 1, z = 0; 2.5 -> 2 and 3.5 -> 4 (ties to
     * even; roundf would give 3 and 4), 0.5 -> 0, 1.5 -> 2 */
    float w[8] = {0.0f, 15.0f, 2.5f, 3.5f, 0.5f, 1.5f, 14.5f, 7.0f};
    uint8_t want[8] = {0, 15, 2, 4, 0, 2, 14, 7}, got[8] = {0};
    float s = -1.0f, z = -1.0f;
    int ok = ctx && !peqa_qtensor_create(1, 8, 4, 0, &t) && !peqa_qtensor_quantize_rtn(t, w, 8) &&
             !peqa_qtensor_export(ctx, t, got, 8, &s, &z) && !memcmp(got, want, 8) && s == 1.0f && z == 0.0f;
    t_result(r, ok, "api/rtn/half_to_even", "scalar", "codes %u %u %u %u, s %g z %g", got[2], got[3], got[4], got[5],
             (double)s, (double)z);
    peqa_qtensor_free(t);
    /* negative-only group: lo = min, hi = 0 (the range always contains zero) */
    float w2[4] = {-3.0f, -1.5f, -0.75f, -0.0f};
    ok = !peqa_qtensor_create(1, 4, 2, 0, &t) && !peqa_qtensor_quantize_rtn(t, w2, 4) &&
         !peqa_qtensor_export(ctx, t, got, 4, &s, &z) && s == 1.0f && z == 3.0f && got[0] == 0 && got[3] == 3;
    t_result(r, ok, "api/rtn/range_contains_zero", "scalar", "s %g z %g codes %u..%u", (double)s, (double)z, got[0], got[3]);
    peqa_qtensor_free(t);
    /* all-zero group: lo = -1, hi = 1 -> s = fl(2/15), z = rint(fl(1/s)) = rint(7.4999996) = 7
     * in binary32; every code equals z, so Ŵ = s * (z - z) = 0 exactly (no 0/0) */
    float w3[64] = {0}, deq[64];
    for (int i = 32; i < 64; i++) w3[i] = 0.01f * (float)(i - 40);
    uint8_t c3[64];
    float s3[2], z3[2];
    ok = !peqa_qtensor_create(1, 64, 4, 32, &t) && !peqa_qtensor_quantize_rtn(t, w3, 64) &&
         !peqa_qtensor_export(ctx, t, c3, 64, s3, z3) && !peqa_qtensor_dequantize(ctx, t, deq, 64) &&
         s3[0] == 2.0f / 15.0f && z3[0] == 7.0f;
    for (int i = 0; i < 32 && ok; i++) ok = c3[i] == 7 && deq[i] == 0.0f;
    t_result(r, ok, "api/rtn/all_zero_group", "scalar", "s %a z %g codes %u, dequantized exactly 0",
             (double)s3[0], (double)z3[0], c3[0]);
    peqa_qtensor_free(t);
    peqa_ctx_free(ctx);
}

/* The documented packed layout, bit for bit (kernels/peqa_kernels.h). */
static void layout_bits(trun *r)
{
    peqa_ctx *ctx = t_ctx("scalar", 1);
    static const int bits_list[] = {2, 3, 4, 8};
    float s[2] = {1, 1}, z[2] = {0, 0};
    for (int bi = 0; bi < 4; bi++) {
        int bits = bits_list[bi];
        uint8_t codes[2 * 32] = {0};
        unsigned maxq = (1u << bits) - 1;
        for (int k = 0; k < 32; k++) codes[k] = (uint8_t)((k + 1) & maxq); /* row 0 */
        codes[32 + 31] = (uint8_t)maxq;                                    /* row 1, last column */
        peqa_qtensor *t = NULL;
        const void *pk;
        size_t pb;
        int ok = !peqa_qtensor_create(2, 32, bits, 0, &t) && !peqa_qtensor_import(t, codes, 32, s, z) &&
                 !peqa_qtensor_packed(t, &pk, &pb) && pb == (size_t)bits * 16 * 4;
        uint32_t want[8 * 16] = {0};
        /* build the expected words from the documented rule */
        for (int row = 0; row < 2; row++)
            for (int k = 0; k < 32; k++) {
                unsigned q = codes[row * 32 + k];
                if (bits == 3) {
                    int t2 = k % 16;
                    want[(k / 16) * 16 + row] |= (q & 3u) << (8 * (t2 % 4) + 2 * (t2 / 4));
                    want[2 * 16 + row] |= (q >> 2) << (8 * (k % 4) + k / 4);
                } else {
                    int per = 32 / bits, tt = k % per;
                    want[(k / per) * 16 + row] |= q << (8 * (tt % 4) + bits * (tt / 4));
                }
            }
        const unsigned char *b = pk;
        for (size_t i = 0; ok && i < pb / 4; i++) {
            uint32_t v = (uint32_t)b[4 * i] | (uint32_t)b[4 * i + 1] << 8 | (uint32_t)b[4 * i + 2] << 16 |
                         (uint32_t)b[4 * i + 3] << 24;
            ok = v == want[i];
        }
        /* one literal for the 4-bit case: row 0 codes 1..8 in its first word:
         * bytes (1 | 5<<4), (2 | 6<<4), (3 | 7<<4), (4 | 8<<4) = 0x84736251 */
        if (bits == 4) ok = ok && want[0] == 0x84736251u;
        char nm[64];
        snprintf(nm, sizeof nm, "api/layout/b%d_bits", bits);
        t_result(r, ok, nm, "-", "packed words match the documented rule");
        peqa_qtensor_free(t);
    }
    peqa_ctx_free(ctx);
}

/* import -> export round trip of every code value at lengths around the 32-column block and
 * 16-row tile, and packed -> load_packed round trip. */
static void roundtrip(trun *r)
{
    peqa_ctx *ctx = t_ctx("scalar", 1);
    static const int bits_list[] = {2, 3, 4, 8};
    static const int64_t ks[] = {1, 5, 31, 32, 33, 63, 64, 65, 100, 255};
    static const int64_t ns[] = {1, 15, 16, 17, 33};
    prng pr;
    prng_seed(&pr, r->seed ^ 0x77);
    int cases = 0, bad = 0;
    for (int bi = 0; bi < 4; bi++)
        for (size_t ki = 0; ki < sizeof ks / sizeof ks[0]; ki++)
            for (size_t ni = 0; ni < sizeof ns / sizeof ns[0]; ni++) {
                int bits = bits_list[bi];
                int64_t n = ns[ni], k = ks[ki], cnt = n * k;
                uint8_t *c = malloc((size_t)cnt), *c2 = malloc((size_t)cnt), *c3 = malloc((size_t)cnt);
                float *s = calloc((size_t)n, 4), *z = calloc((size_t)n, 4);
                for (int64_t i = 0; i < cnt; i++) c[i] = (uint8_t)((i + (int64_t)prng_below(&pr, 3)) % (1 << bits));
                peqa_qtensor *t = NULL, *t2 = NULL;
                const void *pk;
                size_t pb;
                int ok = !peqa_qtensor_create(n, k, bits, 0, &t) && !peqa_qtensor_import(t, c, k, s, z) &&
                         !peqa_qtensor_export(ctx, t, c2, k, NULL, NULL) && !memcmp(c, c2, (size_t)cnt) &&
                         !peqa_qtensor_packed(t, &pk, &pb) && !peqa_qtensor_create(n, k, bits, 0, &t2) &&
                         !peqa_qtensor_load_packed(t2, pk, pb) && !peqa_qtensor_export(ctx, t2, c3, k, NULL, NULL) &&
                         !memcmp(c, c3, (size_t)cnt);
                cases++;
                if (!ok) {
                    bad++;
                    t_result(r, 0, "api/roundtrip", "scalar", "bits %d n %lld k %lld failed", bits, (long long)n, (long long)k);
                }
                peqa_qtensor_free(t), peqa_qtensor_free(t2);
                free(c), free(c2), free(c3), free(s), free(z);
            }
    if (!bad) t_result(r, 1, "api/roundtrip/pack_unpack_load", "scalar", "%d shapes x every code value exact", cases);
    peqa_ctx_free(ctx);
}

/* Activation quantization properties: d = amax / 127 exactly, |xq| <= 127, |xq d - x| <= d / 2. */
static void qact_props(trun *r)
{
    peqa_ctx *ctx = t_ctx("scalar", 1);
    int64_t m = 3, k = 77, nb = 3;
    float x[3 * 77], xs[9];
    int8_t xq[3 * 77];
    prng pr;
    prng_seed(&pr, 99);
    for (int i = 0; i < m * k; i++) x[i] = prng_sym(&pr, 4.0f);
    for (int i = 32; i < 64; i++) x[k + i] = 0.0f; /* an all-zero block */
    int ok = ctx && !peqa_act_quantize(ctx, m, k, x, k, xq, k, xs, nb);
    double worst = 0;
    for (int64_t i = 0; ok && i < m; i++)
        for (int64_t b = 0; b < nb; b++) {
            float amax = 0;
            for (int64_t c = b * 32; c < k && c < b * 32 + 32; c++) amax = fmaxf(amax, fabsf(x[i * k + c]));
            ok = ok && xs[i * nb + b] == amax / 127.0f;
            for (int64_t c = b * 32; c < k && c < b * 32 + 32; c++) {
                double e = fabs((double)xq[i * k + c] * xs[i * nb + b] - x[i * k + c]);
                ok = ok && xq[i * k + c] >= -127 && e <= 0.5 * xs[i * nb + b] * (1 + 1e-6);
                if (xs[i * nb + b] > 0 && e / xs[i * nb + b] > worst) worst = e / xs[i * nb + b];
            }
        }
    t_result(r, ok, "api/act_quantize/properties", "scalar", "max |xq d - x| / d = %.4f (<= 0.5)", worst);
    peqa_ctx_free(ctx);
}

void test_api(trun *r)
{
    status_strings(r);
    ctx_args(r);
    qtensor_args(r);
    rtn_rules(r);
    layout_bits(r);
    roundtrip(r);
    qact_props(r);
}
