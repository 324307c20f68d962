/* peqa — the command-line tool. The only part of the project that prints and exits. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <stdarg.h>
#include "cli.h"

static const char *prog = "peqa";

static void usage(FILE *f)
{
    fprintf(f,
            "peqa %s — quantized fine-tuning of LLaMA-family models on CPUs\n"
            "\n"
            "usage: peqa <command> [options]\n"
            "\n"
            "commands:\n"
            "  selftest   run every kernel on generated layers, check the selected ISA against the\n"
            "             scalar reference bit for bit, and print errors and timings\n"
            "  info       CPU features, the selected ISA, and which kernel fills each slot\n"
            "  info MODEL a model's config, parameter counts, bytes and activation memory\n"
            "  eval       perplexity of a model over a token file (llm.c shard or text)\n"
            "  generate   sample text from a model with a KV cache\n"
            "  tokenize   text -> llm.c token shard (byte tokenizer or llama2.c tokenizer.bin)\n"
            "  convert    llama2.c checkpoint -> Hugging Face safetensors + config.json\n"
            "  quantize   RTN-quantize a model's linear layers (2/3/4/8 bits, group size)\n"
            "  finetune   PEQA: train only the scales of a quantized model on a task\n"
            "  demo       the built-in end-to-end demo\n"
            "  version    print the version\n"
            "  help       this text (also: peqa <command> --help)\n"
            "\n"
            "common options:\n"
            "  --isa NAME     scalar | avx2 | avx512 | neon (default: PEQA_ISA, else the best the CPU has;\n"
            "                 a level above the CPU's is an error)\n"
            "  --threads N    threads including the caller (default: PEQA_THREADS, else the CPUs this\n"
            "                 process may use)\n"
            "\n"
            "environment: PEQA_ISA, PEQA_THREADS (same meaning as the options).\n",
            peqa_version());
}

void cli_die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "%s: ", prog);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(1);
}

void cli_die_status(const char *what, peqa_status st)
{
    fprintf(stderr, "%s: %s: %s (%s)\n", prog, what, peqa_status_string(st), peqa_last_error());
    exit(1);
}

static void bad_arg(const char *cmd, const char *msg)
{
    fprintf(stderr, "%s %s: %s (see 'peqa %s --help')\n", prog, cmd, msg, cmd);
    exit(2);
}

void cli_parse(const char *cmd, int argc, char **argv, cli_opt *opts, int nopts, peqa_ctx_options *ctxopt,
               const char *help)
{
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            fputs(help, stdout);
            exit(0);
        }
        if (!strcmp(a, "--isa") || !strcmp(a, "--threads")) {
            char msg[512];
            snprintf(msg, sizeof msg, "option %s needs a value", a);
            if (i + 1 >= argc) bad_arg(cmd, msg);
            const char *v = argv[++i];
            if (!strcmp(a, "--isa")) {
                ctxopt->isa = v;
            } else {
                char *end;
                long t = strtol(v, &end, 10);
                snprintf(msg, sizeof msg, "--threads '%.200s': expected a whole number from 1 to 1024", v);
                if (*end || end == v || t < 1 || t > 1024) bad_arg(cmd, msg);
                ctxopt->threads = (int)t;
            }
            continue;
        }
        int found = 0;
        for (int o = 0; o < nopts && !found; o++) {
            if (strcmp(a, opts[o].name)) continue;
            found = 1;
            if (opts[o].kind == CLI_FLAG) {
                *(int *)opts[o].out = 1;
                continue;
            }
            char msg[512];
            snprintf(msg, sizeof msg, "option %s needs a value", a);
            if (i + 1 >= argc) bad_arg(cmd, msg);
            const char *v = argv[++i];
            char *end;
            if (opts[o].kind == CLI_STR) {
                *(const char **)opts[o].out = v;
            } else if (opts[o].kind == CLI_INT) {
                long long x = strtoll(v, &end, 10);
                snprintf(msg, sizeof msg, "%s '%.200s': expected a whole number from %.0f to %.0f", a, v,
                         opts[o].lo, opts[o].hi);
                if (*end || end == v || (double)x < opts[o].lo || (double)x > opts[o].hi) bad_arg(cmd, msg);
                *(int64_t *)opts[o].out = x;
            } else {
                double x = strtod(v, &end);
                snprintf(msg, sizeof msg, "%s '%.200s': expected a number from %g to %g", a, v, opts[o].lo, opts[o].hi);
                if (*end || end == v || !(x >= opts[o].lo && x <= opts[o].hi)) bad_arg(cmd, msg);
                *(double *)opts[o].out = x;
            }
        }
        if (!found) {
            char msg[512];
            snprintf(msg, sizeof msg, "unknown option or stray argument '%.200s'", a);
            bad_arg(cmd, msg);
        }
    }
}

peqa_ctx *cli_ctx(const peqa_ctx_options *o)
{
    peqa_ctx *ctx;
    peqa_status st = peqa_ctx_create(o, &ctx);
    if (st) cli_die_status("cannot set up", st);
    return ctx;
}

/* Parses the options every command shares; unknown options are an error. */
static peqa_ctx *ctx_from_args(int argc, char **argv, const char *cmd)
{
    peqa_ctx_options o = {0};
    static char help[4096];
    snprintf(help, sizeof help, "usage: peqa %s [--isa NAME] [--threads N]\n", cmd);
    cli_parse(cmd, argc, argv, NULL, 0, &o, help);
    return cli_ctx(&o);
}

static int cmd_info(int argc, char **argv)
{
    if (argc > 0 && argv[0][0] != '-') return cmd_info_model(argc, argv);
    peqa_ctx *ctx = ctx_from_args(argc, argv, "info");
    static const char *const slots[] = {"unpack", "dequant", "fwd_gemv", "fwd_gemm", "gscale",
                                        "gzero", "ginput", "fwd_i8_gemv", "fwd_i8_gemm"};
    static const int bits[] = {2, 3, 4, 8};
    printf("peqa %s (packed format v%d)\n", peqa_version(), PEQA_PACK_FORMAT_VERSION);
    printf("cpu features : %s\n", peqa_cpu_features());
    printf("best isa     : %s\n", peqa_cpu_best_isa());
    printf("selected isa : %s\n", peqa_ctx_isa(ctx));
    printf("threads      : %d\n", peqa_ctx_threads(ctx));
    printf("\n%-14s %-5s %s\n", "slot", "bits", "kernel");
    for (size_t s = 0; s < sizeof slots / sizeof slots[0]; s++)
        for (int b = 0; b < 4; b++)
            printf("%-14s %-5d %s\n", slots[s], bits[b], peqa_ctx_kernel_name(ctx, slots[s], bits[b]));
    static const char *const dense[] = {"qact", "sgemm_nt", "sgemm_nn", "sgemm_tn", "attn_fwd_head", "attn_bwd_group"};
    for (size_t s = 0; s < sizeof dense / sizeof dense[0]; s++)
        printf("%-14s %-5s %s\n", dense[s], "-", peqa_ctx_kernel_name(ctx, dense[s], 0));
    peqa_ctx_free(ctx);
    return 0;
}

double cli_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* xorshift for generated data (the CLI has no need for the tests' PRNG quality). */
static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static float frand(void)
{
    rng_state ^= rng_state << 13, rng_state ^= rng_state >> 7, rng_state ^= rng_state << 17;
    return (float)(rng_state >> 40) * (1.0f / 16777216.0f) * 2.0f - 1.0f;
}

static double rel_err(const float *a, const float *b, size_t n)
{
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        double d = (double)a[i] - b[i];
        num += d * d, den += (double)b[i] * b[i];
    }
    return den > 0 ? sqrt(num / den) : sqrt(num);
}

/* selftest: for each bit width, RTN-quantize a generated layer, run every operation on the
 * selected ISA and on the scalar reference, and compare bit for bit. */
static int cmd_selftest(int argc, char **argv)
{
    peqa_ctx *ctx = ctx_from_args(argc, argv, "selftest");
    peqa_ctx_options ro = {.threads = 1, .isa = "scalar"};
    peqa_ctx *ref;
    peqa_status st = peqa_ctx_create(&ro, &ref);
    if (st) cli_die_status("cannot create the reference context", st);
    const int64_t m = 24, n = 288, k = 1000, g = 128, ng = (k + g - 1) / g, nb = (k + 31) / 32;
    float *w = malloc(sizeof(float) * (size_t)(n * k)), *x = malloc(sizeof(float) * (size_t)(m * k));
    float *dy = malloc(sizeof(float) * (size_t)(m * n)), *wd = malloc(sizeof(float) * (size_t)(n * k));
    float *y[2], *yi[2], *ds[2], *dx[2], *xs[2], *yfp = malloc(sizeof(float) * (size_t)(m * n));
    int8_t *xq[2];
    for (int i = 0; i < 2; i++) {
        y[i] = malloc(sizeof(float) * (size_t)(m * n)), yi[i] = malloc(sizeof(float) * (size_t)(m * n));
        ds[i] = malloc(sizeof(float) * (size_t)(n * ng)), dx[i] = malloc(sizeof(float) * (size_t)(m * k));
        xs[i] = malloc(sizeof(float) * (size_t)(m * nb)), xq[i] = malloc((size_t)(m * k));
        if (!y[i] || !yi[i] || !ds[i] || !dx[i] || !xs[i] || !xq[i]) cli_die("out of memory");
    }
    if (!w || !x || !dy || !wd || !yfp) cli_die("out of memory");
    for (int64_t i = 0; i < n * k; i++) w[i] = 0.05f * frand();
    for (int64_t i = 0; i < m * k; i++) x[i] = frand();
    for (int64_t i = 0; i < m * n; i++) dy[i] = frand();
    /* the fp32 layer, for the quantization error column: Y = X Wᵀ in double */
    for (int64_t i = 0; i < m; i++)
        for (int64_t j = 0; j < n; j++) {
            double acc = 0;
            for (int64_t c = 0; c < k; c++) acc += (double)x[i * k + c] * w[j * k + c];
            yfp[i * n + j] = (float)acc;
        }
    printf("peqa selftest: layer %lld x %lld, group %lld, %lld tokens; isa %s vs scalar reference, %d threads\n\n",
           (long long)n, (long long)k, (long long)g, (long long)m, peqa_ctx_isa(ctx), peqa_ctx_threads(ctx));
    printf("%-4s  %-9s  %-10s  %-10s  %-12s  %-12s  %s\n", "bits", "bit-exact", "RTN relerr", "int8 extra",
           "forward ms", "backward ms", "reference ms (fwd+bwd)");
    int failures = 0;
    static const int bits_list[] = {2, 3, 4, 8};
    for (int bi = 0; bi < 4; bi++) {
        peqa_qtensor *t;
        if ((st = peqa_qtensor_create(n, k, bits_list[bi], g, &t)) || (st = peqa_qtensor_quantize_rtn(t, w, k)))
            cli_die_status("quantize", st);
        double tf = 0, tb = 0, tr = 0;
        for (int side = 0; side < 2; side++) {
            peqa_ctx *c = side ? ref : ctx;
            double t0 = cli_now();
            if ((st = peqa_linear_forward(c, t, m, x, k, y[side], n))) cli_die_status("forward", st);
            double t1 = cli_now();
            if ((st = peqa_linear_grad_scale(c, t, m, x, k, dy, n, ds[side])) ||
                (st = peqa_linear_grad_input(c, t, m, dy, n, dx[side], k)))
                cli_die_status("backward", st);
            double t2 = cli_now();
            if ((st = peqa_act_quantize(c, m, k, x, k, xq[side], k, xs[side], nb)) ||
                (st = peqa_linear_forward_i8(c, t, m, xq[side], k, xs[side], nb, yi[side], n)))
                cli_die_status("int8 forward", st);
            if (side) tr = t2 - t0;
            else tf = t1 - t0, tb = t2 - t1;
        }
        size_t ys = sizeof(float) * (size_t)(m * n);
        int same = !memcmp(y[0], y[1], ys) && !memcmp(yi[0], yi[1], ys) &&
                   !memcmp(ds[0], ds[1], sizeof(float) * (size_t)(n * ng)) &&
                   !memcmp(dx[0], dx[1], sizeof(float) * (size_t)(m * k)) &&
                   !memcmp(xq[0], xq[1], (size_t)(m * k)) && !memcmp(xs[0], xs[1], sizeof(float) * (size_t)(m * nb));
        failures += !same;
        double e_rtn = rel_err(y[0], yfp, (size_t)(m * n)), e_i8 = rel_err(yi[0], y[0], (size_t)(m * n));
        printf("%-4d  %-9s  %-10.4f  %-10.4f  %-12.3f  %-12.3f  %.3f\n", bits_list[bi], same ? "yes" : "NO",
               e_rtn, e_i8, tf * 1e3, tb * 1e3, tr * 1e3);
        peqa_qtensor_free(t);
    }
    printf("\nRTN relerr: ||Y_q - Y_fp32|| / ||Y_fp32|| of the quantized forward; int8 extra: the same\n"
           "between the int8-activation forward and the fp32-activation forward. backward = scale\n"
           "gradient + input gradient.\n");
    printf("%s\n", failures ? "selftest FAILED: the selected ISA differs from the scalar reference"
                            : "selftest passed: every output bit-identical to the scalar reference");
    for (int i = 0; i < 2; i++) free(y[i]), free(yi[i]), free(ds[i]), free(dx[i]), free(xs[i]), free(xq[i]);
    free(w), free(x), free(dy), free(wd), free(yfp);
    peqa_ctx_free(ctx), peqa_ctx_free(ref);
    return failures ? 1 : 0;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "help") || !strcmp(cmd, "--help") || !strcmp(cmd, "-h")) {
        usage(stdout);
        return 0;
    }
    if (!strcmp(cmd, "version") || !strcmp(cmd, "--version")) {
        printf("peqa %s\n", peqa_version());
        return 0;
    }
    if (!strcmp(cmd, "info")) return cmd_info(argc - 2, argv + 2);
    if (!strcmp(cmd, "selftest")) return cmd_selftest(argc - 2, argv + 2);
    static const struct { const char *name; int (*fn)(int, char **); } cmds[] = {
        {"eval", cmd_eval},         {"generate", cmd_generate}, {"tokenize", cmd_tokenize},
        {"convert", cmd_convert},   {"quantize", cmd_quantize}, {"finetune", cmd_finetune},
        {"demo", cmd_demo},
        {"init-model", cmd_init_model}, /* hidden developer command (tests/cli_test.sh) */
    };
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++)
        if (!strcmp(cmd, cmds[i].name)) return cmds[i].fn(argc - 2, argv + 2);
    fprintf(stderr, "%s: unknown command '%s' (see 'peqa help')\n", prog, cmd);
    return 2;
}
