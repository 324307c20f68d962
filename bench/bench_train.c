/* peqa training benchmark: throughput and peak memory of PEQA fine-tuning (issue 6, "Speed and
 * memory").
 *
 * Cases (each a quantized LLaMA whose scales are trained with peqa_train, src/train.h):
 *   demo   the built-in demo's model shape (hidden 128, FFN 352, 4 layers, 4 heads, 2 KV heads,
 *          byte vocabulary 258), 4-bit, group 64 (the demo's group), batch 8 x 64 tokens
 *   7b     LLaMA-7B layer shapes (hidden 4096, FFN 11008, 32 heads of 128, no GQA) with only
 *          --layers layers (default 2) and a small vocabulary (--vocab, default 512), 4-bit,
 *          group 128, batch 1 x 256 tokens
 * The weights are random (uniform, std 0.02, from an in-file splitmix64 stream) and quantized
 * with RTN linear by linear, so no fp32 copy of the whole model ever exists; throughput and
 * memory do not depend on the values. The training data is random byte-level tokens.
 *
 * Each run happens in a child process (fork): the child builds the model, resets its resident
 * set high-water mark (writing "5" to /proc/self/clear_refs; Linux >= 4.0), trains, and reports
 * VmHWM (peak RSS) and the time of every optimizer step through a pipe. Throughput is measured
 * over the steps after the first (which also faults in the activation cache); the table shows
 * the median, min and max over --runs runs.
 *
 * The memory bound of the issue: packed weights + fp32 embeddings/head (and norms) + activations
 * + 3 x scale bytes, plus 10 %. "Activations" is the training cache of src/model.h
 * (peqa_model_act_bytes_per_token_*: what the backward keeps, per token per layer, once per
 * token, and the per-token work buffers). The table also itemises what the fine-tuning holds
 * beyond that: fp32 zero points (frozen but resident, 1 x scale bytes), scale gradients (1 x),
 * AdamW moments (2 x). The bound is compared with what the fine-tuning itself holds: the peak
 * RSS minus the program's and libc's file-backed pages (RssFile after training) and the
 * anonymous pages the child had before it built anything; the whole-process ratio is printed too.
 *
 * The benchmark prints and exits; the library it measures never does. */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include "../src/model.h"
#include "../src/peqa.h"
#include "../src/train.h"
#include <time.h>

typedef struct {
    const char *name;
    int64_t dim, ffn, layers, heads, kv_heads, vocab;
    int bits;
    int64_t group, batch, seq, steps;
} bcase;

typedef struct {
    int ok;
    double step_s[64];   /* wall time of each optimizer step */
    int nsteps;
    long long proc_kb;   /* RssAnon when the child starts: the process's own heap and stack */
    long long file_kb;   /* RssFile after training: program and libc pages, not the fine-tuning's */
    long long base_kb;   /* VmRSS after the reset, before training */
    long long hwm_kb;    /* VmHWM after training */
    int hwm_reset;       /* clear_refs worked (else VmHWM includes the setup) */
    char err[256];
} bresult;

/* ---- small helpers ---------------------------------------------------------------------------- */

static double bench_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static uint64_t sm_next(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* uniform in [-a, a) */
static void fill_uniform(float *x, size_t n, float a, uint64_t *s)
{
    for (size_t i = 0; i < n; i++) x[i] = a * ((float)(sm_next(s) >> 40) * (2.0f / 16777216.0f) - 1.0f);
}

/* A field of /proc/self/status in kB ("VmHWM:", "VmRSS:"); -1 if absent. */
static long long status_kb(const char *key)
{
    FILE *f = fopen("/proc/self/status", "r");
    if (!f) return -1;
    char line[256];
    long long v = -1;
    size_t kl = strlen(key);
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, key, kl)) {
            v = strtoll(line + kl, NULL, 10);
            break;
        }
    fclose(f);
    return v;
}

static int reset_hwm(void)
{
    FILE *f = fopen("/proc/self/clear_refs", "w");
    if (!f) return 0;
    int ok = fputs("5", f) >= 0;
    ok = (fclose(f) == 0) && ok;
    return ok;
}

static void cpu_name(char *out, size_t n)
{
    snprintf(out, n, "unknown CPU");
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f) return;
    char line[512];
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, "model name", 10)) {
            char *c = strchr(line, ':');
            if (c) {
                c++;
                while (*c == ' ') c++;
                c[strcspn(c, "\n")] = 0;
                snprintf(out, n, "%s", c);
            }
            break;
        }
    fclose(f);
}

static double loadavg1(void)
{
    FILE *f = fopen("/proc/loadavg", "r");
    double v = -1;
    if (f) {
        if (fscanf(f, "%lf", &v) != 1) v = -1;
        fclose(f);
    }
    return v;
}

/* ---- one run (in the child) -------------------------------------------------------------------- */

typedef struct {
    bresult *r;
    double last;
} step_clock;

static int on_event(const peqa_train_event *ev, void *user)
{
    step_clock *c = user;
    if (ev->kind == PEQA_TRAIN_EV_START) c->last = bench_now();
    if (ev->kind != PEQA_TRAIN_EV_STEP) return 0;
    const double now = bench_now();
    if (c->r->nsteps < 64) c->r->step_s[c->r->nsteps++] = now - c->last;
    c->last = now;
    return 0;
}

/* The quantized model of a case: the shell, then per linear random fp32 weights quantized with
 * RTN (one N x K buffer at a time), random embeddings and head, norm weights 1. */
static peqa_status build_model(const bcase *c, peqa_model **out)
{
    peqa_model_config cfg;
    peqa_status st = peqa_model_config_init(&cfg, c->dim, c->ffn, c->layers, c->heads, c->kv_heads, c->vocab, c->seq);
    if (st) return st;
    peqa_model *m;
    if ((st = peqa_model_create_quantized(&cfg, c->bits, c->group, &m))) return st;
    uint64_t s = 0x62656e6368ull;
    const float a = 0.02f * 1.7320508f;
    fill_uniform(m->embed, (size_t)(c->vocab * c->dim), a, &s);
    if (m->lm_head != m->embed) fill_uniform(m->lm_head, (size_t)(c->vocab * c->dim), a, &s);
    float *w = NULL;
    size_t wcap = 0;
    for (int64_t i = 0; i < peqa_model_linear_count(m) && !st; i++) {
        peqa_model_linear *l = peqa_model_linear_at(m, i);
        const size_t n = (size_t)(l->n * l->k);
        if (n > wcap) {
            free(w);
            if (!(w = malloc(n * sizeof *w))) {
                st = PEQA_ERR_NOMEM;
                break;
            }
            wcap = n;
        }
        fill_uniform(w, n, a, &s);
        st = peqa_qtensor_quantize_rtn(l->q, w, l->k);
    }
    free(w);
    if (st) peqa_model_free(m);
    else *out = m;
    return st;
}

static void run_case(const bcase *c, const peqa_ctx_options *co, bresult *r)
{
    memset(r, 0, sizeof *r);
    r->proc_kb = status_kb("RssAnon:");
    peqa_ctx *ctx = NULL;
    peqa_model *m = NULL;
    uint32_t *data = NULL;
    peqa_status st = peqa_ctx_create(co, &ctx);
    if (!st) st = build_model(c, &m);
    const size_t ntok = (size_t)(c->batch * c->seq * (c->steps + 1) + 1);
    if (!st && !(data = malloc(ntok * sizeof *data))) st = PEQA_ERR_NOMEM;
    if (!st) {
        uint64_t s = 0x64617461ull;
        for (size_t i = 0; i < ntok; i++) data[i] = (uint32_t)(sm_next(&s) % (uint64_t)c->vocab);
        r->hwm_reset = reset_hwm();
        r->base_kb = status_kb("VmRSS:");
        peqa_train_options o;
        peqa_train_options_default(&o);
        o.batch = c->batch, o.seq = c->seq, o.steps = c->steps, o.lr = 1e-4f, o.warmup = 0;
        step_clock clk = {r, 0};
        o.callback = on_event, o.user = &clk;
        peqa_train_result res;
        st = peqa_train(ctx, m, data, ntok, NULL, 0, &o, &res);
        r->hwm_kb = status_kb("VmHWM:");
        r->file_kb = status_kb("RssFile:");
    }
    if (st) snprintf(r->err, sizeof r->err, "%s (%s)", peqa_status_string(st), peqa_last_error());
    else r->ok = 1;
    free(data);
    peqa_model_free(m);
    peqa_ctx_free(ctx);
}

/* Runs one case in a child process and collects its result. */
static int run_forked(const bcase *c, const peqa_ctx_options *co, bresult *r)
{
    int fd[2];
    if (pipe(fd)) return 0;
    fflush(stdout), fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) return 0;
    if (pid == 0) {
        close(fd[0]);
        bresult res;
        run_case(c, co, &res);
        const char *p = (const char *)&res;
        size_t left = sizeof res;
        while (left) {
            ssize_t w = write(fd[1], p, left);
            if (w <= 0) _exit(3);
            p += w, left -= (size_t)w;
        }
        _exit(0);
    }
    close(fd[1]);
    char *p = (char *)r;
    size_t left = sizeof *r;
    while (left) {
        ssize_t n = read(fd[0], p, left);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        p += n, left -= (size_t)n;
    }
    close(fd[0]);
    int status = 0;
    waitpid(pid, &status, 0);
    if (left || !WIFEXITED(status) || WEXITSTATUS(status)) {
        memset(r, 0, sizeof *r);
        snprintf(r->err, sizeof r->err, "the child process failed (status %d)", status);
        return 0;
    }
    return r->ok;
}

/* ---- sizes -------------------------------------------------------------------------------------- */

typedef struct {
    int64_t params;          /* every parameter of the model */
    double packed, scales;   /* packed codes; one of s / z (N x G x 4) over all linears */
    double fp32;             /* embeddings, norms, head */
    double act;              /* the training cache for B x T tokens */
} bsizes;

static peqa_status case_sizes(const bcase *c, bsizes *z)
{
    memset(z, 0, sizeof *z);
    peqa_model_config cfg;
    peqa_status st = peqa_model_config_init(&cfg, c->dim, c->ffn, c->layers, c->heads, c->kv_heads, c->vocab, c->seq);
    if (st) return st;
    const int64_t hd = c->dim / c->heads;
    const int64_t shapes[7][2] = {{c->heads * hd, c->dim}, {c->kv_heads * hd, c->dim}, {c->kv_heads * hd, c->dim},
                                  {c->dim, c->heads * hd}, {c->ffn, c->dim},           {c->ffn, c->dim},
                                  {c->dim, c->ffn}};
    for (int i = 0; i < 7; i++) {
        peqa_qtensor_info in;
        if ((st = peqa_qtensor_sizes(shapes[i][0], shapes[i][1], c->bits, c->group, &in))) return st;
        z->packed += (double)in.packed_bytes * (double)c->layers;
        z->scales += (double)in.scale_bytes * (double)c->layers;
        z->params += shapes[i][0] * shapes[i][1] * c->layers;
    }
    const int64_t f32 = 2 * c->vocab * c->dim + c->dim * (2 * c->layers + 1);
    z->fp32 = 4.0 * (double)f32;
    z->params += f32;
    const double bt = (double)(c->batch * c->seq);
    z->act = bt * ((double)peqa_model_act_bytes_per_token_layer(&cfg) * (double)c->layers +
                   (double)peqa_model_act_bytes_per_token_once(&cfg) + (double)peqa_model_act_bytes_per_token_work(&cfg));
    return PEQA_OK;
}

static int cmp_double(const void *a, const void *b)
{
    const double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* ---- main ---------------------------------------------------------------------------------------- */

static void usage(FILE *f)
{
    fprintf(f,
            "usage: bench_train [--case demo|7b|all] [--runs N] [--layers L] [--vocab V] [--steps-demo N]\n"
            "                   [--steps-7b N] [--seq-7b T] [--quick] [--threads N] [--isa NAME]\n"
            "  --case C        demo, 7b or all (default all)\n"
            "  --runs N        runs per case, each in a fresh child process (default 3); medians reported\n"
            "  --layers L      layers of the 7b case (default 2)\n"
            "  --vocab V       vocabulary of the 7b case (default 512)\n"
            "  --steps-demo N  optimizer steps per demo run (default 20, at most 60)\n"
            "  --steps-7b N    optimizer steps per 7b run (default 4, at most 60)\n"
            "  --seq-7b T      tokens per sequence of the 7b case (default 256; batch 1)\n"
            "  --quick         1 run, demo 8 steps, 7b 1 layer and 2 steps\n"
            "  --threads N     threads (default: PEQA_THREADS or all CPUs)\n"
            "  --isa NAME      scalar|avx2|avx512|neon (default: PEQA_ISA or the best available)\n");
}

static int64_t arg_int(const char *opt, const char *v, int64_t lo, int64_t hi)
{
    char *end;
    long long x = v ? strtoll(v, &end, 10) : 0;
    if (!v || *end || end == v || x < lo || x > hi) {
        fprintf(stderr, "bench_train: %s: expected a whole number from %lld to %lld\n", opt, (long long)lo, (long long)hi);
        exit(2);
    }
    return x;
}

int main(int argc, char **argv)
{
    const char *which = "all";
    int64_t runs = 3, layers = 2, vocab = 512, steps_demo = 20, steps_7b = 4, seq_7b = 256;
    peqa_ctx_options co = {0};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "--quick")) {
            runs = 1, layers = 1, steps_demo = 8, steps_7b = 2;
            continue;
        }
        if (!v) {
            fprintf(stderr, "bench_train: unknown option or missing value: %s\n", a);
            usage(stderr);
            return 2;
        }
        i++;
        if (!strcmp(a, "--case")) which = v;
        else if (!strcmp(a, "--runs")) runs = arg_int(a, v, 1, 99);
        else if (!strcmp(a, "--layers")) layers = arg_int(a, v, 1, 32);
        else if (!strcmp(a, "--vocab")) vocab = arg_int(a, v, 2, 1 << 20);
        else if (!strcmp(a, "--steps-demo")) steps_demo = arg_int(a, v, 2, 60);
        else if (!strcmp(a, "--steps-7b")) steps_7b = arg_int(a, v, 2, 60);
        else if (!strcmp(a, "--seq-7b")) seq_7b = arg_int(a, v, 1, 4096);
        else if (!strcmp(a, "--threads")) co.threads = (int)arg_int(a, v, 1, 1024);
        else if (!strcmp(a, "--isa")) co.isa = v;
        else {
            fprintf(stderr, "bench_train: unknown option %s\n", a);
            usage(stderr);
            return 2;
        }
    }
    if (strcmp(which, "demo") && strcmp(which, "7b") && strcmp(which, "all")) {
        fprintf(stderr, "bench_train: --case %s: expected demo, 7b or all\n", which);
        return 2;
    }
    const bcase cases[2] = {
        {"demo", 128, 352, 4, 4, 2, 258, 4, 64, 8, 64, steps_demo},
        {"7b", 4096, 11008, layers, 32, 32, vocab, 4, 128, 1, seq_7b, steps_7b},
    };
    peqa_ctx *ctx;
    peqa_status st = peqa_ctx_create(&co, &ctx);
    if (st) {
        fprintf(stderr, "bench_train: %s (%s)\n", peqa_status_string(st), peqa_last_error());
        return 2;
    }
    char cpu[256];
    cpu_name(cpu, sizeof cpu);
    printf("peqa bench_train: PEQA fine-tuning throughput and peak memory\n");
    printf("machine: %s, %ld CPUs online; isa %s, %d threads; load average %.2f (other work lowers throughput)\n", cpu,
           sysconf(_SC_NPROCESSORS_ONLN), peqa_ctx_isa(ctx), peqa_ctx_threads(ctx), loadavg1());
    peqa_ctx_free(ctx);
    int failures = 0;
    for (int ci = 0; ci < 2; ci++) {
        const bcase *c = &cases[ci];
        if (strcmp(which, "all") && strcmp(which, c->name)) continue;
        bsizes z;
        if ((st = case_sizes(c, &z))) {
            fprintf(stderr, "bench_train: %s: %s (%s)\n", c->name, peqa_status_string(st), peqa_last_error());
            return 2;
        }
        char gs[32];
        snprintf(gs, sizeof gs, "%lld", (long long)c->group);
        printf("\ncase %s: hidden %lld, FFN %lld, %lld layers, %lld heads (%lld KV), vocab %lld; %d-bit, group %s; "
               "batch %lld x %lld tokens, %lld steps; %lld parameters\n",
               c->name, (long long)c->dim, (long long)c->ffn, (long long)c->layers, (long long)c->heads,
               (long long)c->kv_heads, (long long)c->vocab, c->bits, gs, (long long)c->batch, (long long)c->seq,
               (long long)c->steps, (long long)z.params);
        double tps[99], peak[99], base[99], proc[99], tuned_a[99];
        int n = 0, reset_ok = 1;
        for (int r = 0; r < runs; r++) {
            bresult res;
            fprintf(stderr, "bench_train: %s run %d/%d ...\n", c->name, r + 1, (int)runs);
            if (!run_forked(c, &co, &res)) {
                fprintf(stderr, "bench_train: %s: %s\n", c->name, res.err);
                failures++;
                continue;
            }
            double t = 0;
            for (int s = 1; s < res.nsteps; s++) t += res.step_s[s];
            tps[n] = (double)((res.nsteps - 1) * c->batch * c->seq) / t;
            peak[n] = (double)res.hwm_kb * 1024.0, base[n] = (double)res.base_kb * 1024.0;
            proc[n] = (double)res.proc_kb * 1024.0;
            tuned_a[n] = res.proc_kb >= 0 && res.file_kb >= 0 ? peak[n] - (double)(res.proc_kb + res.file_kb) * 1024.0 : -1;
            reset_ok &= res.hwm_reset;
            printf("  run %d: %.1f tokens/s (steps 2..%d), peak RSS %.1f MB, RSS before training %.1f MB\n", r + 1, tps[n],
                   res.nsteps, peak[n] / 1e6, base[n] / 1e6);
            n++;
        }
        if (!n) continue;
        qsort(tps, (size_t)n, sizeof *tps, cmp_double);
        qsort(peak, (size_t)n, sizeof *peak, cmp_double);
        qsort(base, (size_t)n, sizeof *base, cmp_double);
        qsort(proc, (size_t)n, sizeof *proc, cmp_double);
        qsort(tuned_a, (size_t)n, sizeof *tuned_a, cmp_double);
        const double med_t = tps[n / 2], med_p = peak[n / 2], med_b = base[n / 2], med_proc = proc[n / 2];
        /* What the fine-tuning holds: the peak minus the process's own pages, i.e. the program's
         * and libc's file-backed pages (RssFile after training: they only accumulate, so this
         * is at least their share of the peak) and the anonymous pages resident before the
         * context and model were built. The bound is about the rest. */
        const double tuned = tuned_a[n / 2];
        const double bound = z.packed + z.fp32 + z.act + 3.0 * z.scales;
        const double held = z.packed + z.fp32 + z.act + 5.0 * z.scales; /* + zero points and gradients */
        printf("  throughput    %.1f tokens/s (median of %d; min %.1f, max %.1f)\n", med_t, n, tps[0], tps[n - 1]);
        printf("  peak RSS      %.2f MB (median; min %.2f, max %.2f)%s\n", med_p / 1e6, peak[0] / 1e6, peak[n - 1] / 1e6,
               reset_ok ? "" : "  [clear_refs unavailable: includes the setup]");
        printf("  bytes/param   %.3f (peak RSS / %lld parameters)\n", med_p / (double)z.params, (long long)z.params);
        printf("  bound items   packed %.2f MB + fp32 embeddings/norms/head %.2f MB + activations %.2f MB + 3 x scales "
               "%.2f MB = %.2f MB; +10%% = %.2f MB\n",
               z.packed / 1e6, z.fp32 / 1e6, z.act / 1e6, 3.0 * z.scales / 1e6, bound / 1e6, 1.1 * bound / 1e6);
        printf("  also held     fp32 zero points %.2f MB + scale gradients %.2f MB (so 5 x scales in all: %.2f MB)\n",
               z.scales / 1e6, z.scales / 1e6, held / 1e6);
        (void)med_b;
        if (tuned >= 0) {
            printf("  process       %.2f MB: program and libc pages (RssFile) + %.2f MB anonymous before the model\n",
                   (med_p - tuned - med_proc) / 1e6, med_proc / 1e6);
            printf("  fine-tuning   %.2f MB = peak RSS - process: %.3f x the bound -> %s\n", tuned / 1e6, tuned / bound,
                   tuned <= 1.1 * bound ? "within the bound (+10%)" : "ABOVE the bound (+10%)");
        } else {
            printf("  fine-tuning   unknown (no RssAnon/RssFile in /proc/self/status)\n");
        }
        printf("  peak / bound  %.3f (the whole process)\n", med_p / bound);
    }
    return failures ? 1 : 0;
}
