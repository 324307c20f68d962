/* peqa CLI — the built-in demo (`peqa demo`): PEQA end to end on data the project makes itself.
 *
 * What it does (issue 6, "The built-in demo"):
 *  1. Builds a corpus of two tasks from an in-file PRNG (splitmix64; integer arithmetic only, so
 *     the same bytes on every machine), each split into train and validation text:
 *       arith  arithmetic facts in fixed templates, one per line, a third each:
 *                "38+8=46" (a, b < 50)   "31-29=2" (b <= a < 50)
 *                "17+6:17,23,29,35,41,47" (an arithmetic progression: start < 50, step 2..9)
 *       lang   a made-up language with its own grammar, one line = a sentence, " > ", and the
 *              same sentence with the subject's number and the tense flipped:
 *                "o bor zin dorat o kelm kesa. > e bori zini doru o kelm niro."
 *              A sentence is DET NOUN [ADJ] VERB DET NOUN-m [ADJ] ADVERB ".": number agreement
 *              (determiner o/e, plural -i on nouns and adjectives, verb ending -a/-u), accusative
 *              -m on the object, selection (verbs sak, lum, dor take a living object — tam, bor,
 *              kel, sun —, the others a thing), and tense agreement across the sentence (a past
 *              verb ends in -t and the sentence closes with "kesa", a present one with "niro").
 *     The tasks use disjoint generator streams; train (256 KiB) and validation (4 KiB; 1 KiB with
 *     --quick) are consecutive lines of the same stream. The pretraining text interleaves the two
 *     train splits line by line in an order drawn from a third stream, so the full-precision
 *     model serves both tasks at once; a task's scales can specialise it.
 *  2. Loads the small full-precision LLaMA shipped in golden/demo (hidden 128, 4 layers, 4 heads,
 *     2 KV heads, FFN 352, byte vocabulary 258, 64 positions; 804,480 parameters, 3.2 MB fp32),
 *     which `peqa demo --pretrain -o golden/demo` reproduces bit for bit (about 10 minutes on two
 *     cores; too long to redo inside the demo's 3-minute budget).
 *  3. For 4, 3 and 2 bits: RTN-quantizes the seven linears of every block (group 64), then for
 *     each task starts from the RTN scales, trains only the scales with PEQA on that task's train
 *     split (src/train.h) and writes the task's scale file. The peak learning rate is a fixed
 *     fraction of the mean RTN scale of the bit width: AdamW moves every scale by about lr per
 *     step whatever its gradient, so an absolute rate that suits 2 bits (scales ~0.05) is five
 *     times too large for 4 bits (scales ~0.01).
 *  4. Prints two tables: validation perplexity of the fp32, RTN and PEQA models per bit width
 *     and task with the share of RTN's perplexity loss that PEQA recovers; then file sizes
 *     (fp32 model, quantized model, scale file), trainable parameters, AdamW state and, right of
 *     a '|', the wall time and throughput of each PEQA run. Every number except those right of
 *     '|' and the closing "total wall time" line is deterministic: the same bits on every ISA
 *     level and thread count (src/train.h). Progress goes to stderr, the tables to stdout.
 *
 * Perplexities are those of `peqa eval --seq 64` on the validation text: windows of 64 + 1
 * tokens with stride 64 from the start, then the remainder, each starting at position 0.
 */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "cli.h"
#include "model.h"
#include "qfile.h"
#include "tokens.h"
#include "train.h"

/* ---- the recipe --------------------------------------------------------------------------- */

#define DEMO_SEQ 64                  /* tokens per training window and evaluation window */
#define DEMO_TRAIN_BYTES (256 * 1024) /* per task: at least this much train text */
#define DEMO_VAL_BYTES (4 * 1024)     /* per task: validation text (quick: 1 KiB) */
#define DEMO_QUICK_VAL_BYTES 1024
#define DEMO_GROUP 64                 /* RTN group size (see the help text) */
#define DEMO_SEED_ARITH 0x61726974685f3031ull
#define DEMO_SEED_LANG 0x6c616e675f5f3031ull
#define DEMO_SEED_MIX 0x6d69785f5f5f3031ull

/* the model pretrained on the mixed corpus */
#define DEMO_DIM 128
#define DEMO_FFN 352
#define DEMO_LAYERS 4
#define DEMO_HEADS 4
#define DEMO_KV_HEADS 2
#define DEMO_INIT_SEED 20240601u
#define DEMO_PRE_STEPS 600
#define DEMO_PRE_BATCH 16
#define DEMO_PRE_LR 2e-3
#define DEMO_PRE_WARMUP 30
#define DEMO_PRE_MIN_LR 0.1f
#define DEMO_PRE_WD 0.1f

/* PEQA fine-tuning of the scales */
#define DEMO_PEQA_STEPS 40
#define DEMO_PEQA_BATCH 8
#define DEMO_PEQA_REL_LR 0.02 /* peak lr = this x the mean RTN scale of the bit width */
#define DEMO_QUICK_STEPS 8
#define DEMO_QUICK_BATCH 4

static const char demo_help[] =
    "usage: peqa demo [--steps N] [--rel-lr R] [--out DIR] [--quick] [--model DIR]\n"
    "                 [--threads N] [--isa NAME]\n"
    "       peqa demo --pretrain -o DIR [--steps N] [--lr LR] [--threads N] [--isa NAME]\n"
    "\n"
    "The built-in end-to-end demo: offline, deterministic, about a minute on two cores.\n"
    "\n"
    "  1. Corpus. Two tasks generated from seeded splitmix64 streams (the same bytes everywhere),\n"
    "     one item per line:\n"
    "       arith  \"38+8=46\", \"31-29=2\" (numbers < 50), \"17+6:17,23,29,35,41,47\" (progressions)\n"
    "       lang   \"o bor zin dorat o kelm kesa. > e bori zini doru o kelm niro.\": a sentence of a\n"
    "              made-up language, then the same with the subject's number and the tense flipped.\n"
    "              DET NOUN [ADJ] VERB DET NOUN-m [ADJ] ADVERB: number agreement (o/e, -i, verb\n"
    "              -a/-u), accusative -m, verbs that select living or non-living objects, and past\n"
    "              verbs (-t) closing with \"kesa\", present ones with \"niro\"\n"
    "     Per task 256 KiB of train text and 4 KiB of validation text (the lines that follow).\n"
    "  2. Model. A LLaMA with hidden 128, 4 layers, 4 heads (2 KV), FFN 352, byte vocabulary 258,\n"
    "     64 positions (804,480 parameters), pretrained in full precision on both train splits\n"
    "     interleaved line by line. It ships as golden/demo (found from the current directory or\n"
    "     next to the executable); 'peqa demo --pretrain -o golden/demo' rebuilds the identical\n"
    "     bytes (600 AdamW steps of 16 x 64 tokens, lr 2e-3; about 10 minutes on two cores).\n"
    "  3. For 4, 3 and 2 bits: RTN quantization of the seven linears of every block with groups of\n"
    "     64 input columns (the group size EfficientQAT re-ran PEQA with at 4/3/2 bits; it divides\n"
    "     the hidden size 128, and 352 = 5 x 64 + 32 exercises a short last group), then PEQA per\n"
    "     task from the RTN scales on the task's train split: only the scales train (AdamW,\n"
    "     warm-up, cosine decay).\n"
    "  4. Two tables on stdout: validation perplexity of fp32, RTN and PEQA per bit width and task,\n"
    "     with recovered = (RTN - PEQA) / (RTN - fp32), the share of RTN's perplexity loss that\n"
    "     PEQA wins back; then model file bytes (fp32, quantized), scale-file bytes, trainable\n"
    "     parameters, AdamW state bytes and, right of '|', each run's wall time. Everything but\n"
    "     the timing is the same bits on every ISA and thread count. Progress goes to stderr.\n"
    "\n"
    "options:\n"
    "  --steps N      PEQA steps per run (default 40 of 8 x 64 tokens); with --pretrain, the\n"
    "                 pretraining steps (default 600, as for the shipped model)\n"
    "  --rel-lr R     PEQA's peak learning rate as a fraction of the bit width's mean RTN scale\n"
    "                 (default 0.02: about 1.9e-4 at 4 bits, 4.1e-4 at 3, 9.5e-4 at 2)\n"
    "  --out DIR      keep the products in DIR: the corpus (arith.train.txt, arith.val.txt, ...),\n"
    "                 the quantized models (demo.q4.safetensors, ...) and the scale files\n"
    "                 (arith.q4.scales, ...); 'peqa eval --model DIR/demo.q3.safetensors --scales\n"
    "                 DIR/lang.q3.scales --data DIR/lang.val.txt --seq 64' reproduces a table cell\n"
    "  --quick        a small variant for tests: 8 steps of 4 x 64 tokens, 1 KiB of validation\n"
    "                 text (about 12 s on two cores)\n"
    "  --model DIR    the pretrained model (default golden/demo)\n"
    "  --pretrain     train the model from scratch on the mixed corpus and write it to -o DIR\n"
    "                 (config.json, model.safetensors); the same command gives the same bytes\n"
    "  -o DIR         with --pretrain: where to write the model (the same as --out)\n"
    "  --lr LR        with --pretrain: the peak learning rate (default 2e-3)\n"
    "  --threads N, --isa NAME   as for every command (the results do not depend on them)\n";

static void pathf(char *buf, size_t n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* ---- deterministic text generation ---------------------------------------------------------- */

typedef struct {
    uint64_t s;
} demo_rng;

/* splitmix64 (Steele, Lea, Flood 2014): integer arithmetic only. */
static uint64_t rng_next(demo_rng *r)
{
    uint64_t z = (r->s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Uniform in [0, n), n >= 1, by rejection (no modulo bias). */
static uint32_t rng_below(demo_rng *r, uint32_t n)
{
    const uint64_t lim = UINT64_MAX - UINT64_MAX % n;
    uint64_t x;
    do x = rng_next(r);
    while (x >= lim);
    return (uint32_t)(x % n);
}

/* A growing text buffer plus the end offset of every line. */
typedef struct {
    char *p;
    size_t len, cap;
    size_t *ends;
    size_t nlines, lcap;
} text;

static void text_printf(text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void text_printf(text *t, const char *fmt, ...)
{
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(t->p ? t->p + t->len : NULL, t->p ? t->cap - t->len : 0, fmt, ap);
        va_end(ap);
        if (n < 0) cli_die("demo: text formatting failed");
        if (t->p && t->len + (size_t)n < t->cap) {
            t->len += (size_t)n;
            return;
        }
        size_t nc = t->cap ? 2 * t->cap : 4096;
        while (nc < t->len + (size_t)n + 1) nc *= 2;
        char *q = realloc(t->p, nc);
        if (!q) cli_die("out of memory");
        t->p = q, t->cap = nc;
    }
}

static void text_end_line(text *t)
{
    text_printf(t, "\n");
    if (t->nlines == t->lcap) {
        size_t nc = t->lcap ? 2 * t->lcap : 1024;
        size_t *q = realloc(t->ends, nc * sizeof *q);
        if (!q) cli_die("out of memory");
        t->ends = q, t->lcap = nc;
    }
    t->ends[t->nlines++] = t->len;
}

static void text_free(text *t)
{
    free(t->p), free(t->ends);
    memset(t, 0, sizeof *t);
}

/* Task "arith": one fact per line, a third each:
 *   "a+b=c"                    a, b < 50
 *   "a-b=c"                    b <= a < 50
 *   "s+d:s,s+d,s+2d,...,s+5d"  s < 50, 2 <= d <= 9: an arithmetic progression of six terms */
static void gen_arith(demo_rng *r, text *t)
{
    const uint32_t kind = rng_below(r, 3);
    if (kind == 0) {
        const uint32_t a = rng_below(r, 50), b = rng_below(r, 50);
        text_printf(t, "%u+%u=%u", a, b, a + b);
    } else if (kind == 1) {
        uint32_t a = rng_below(r, 50), b = rng_below(r, 50);
        if (a < b) {
            const uint32_t s = a;
            a = b, b = s;
        }
        text_printf(t, "%u-%u=%u", a, b, a - b);
    } else {
        const uint32_t s = rng_below(r, 50), d = 2 + rng_below(r, 8);
        text_printf(t, "%u+%u:", s, d);
        for (uint32_t i = 0; i < 6; i++) text_printf(t, i ? ",%u" : "%u", s + i * d);
    }
    text_end_line(t);
}

/* Task "lang": a sentence, " > ", and the same sentence with the subject's number and the tense
 * flipped (see the file comment). */
static const char *const lang_nouns[8] = {"tam", "bor", "kel", "sun", "mir", "dap", "lof", "gex"};
static const char *const lang_adjs[6] = {"ral", "nep", "vos", "huk", "zin", "tef"};
static const char *const lang_verbs[6] = {"sak", "lum", "dor", "pif", "ven", "gol"};

typedef struct {
    uint32_t subj, subj_adj, verb, obj, obj_adj; /* adj: 0 none, else index + 1 */
    int subj_pl, obj_pl, past;
} lang_sentence;

static void lang_np(text *t, uint32_t noun, uint32_t adj, int plural, int object)
{
    text_printf(t, "%s %s%s%s", plural ? "e" : "o", lang_nouns[noun], plural ? "i" : "", object ? "m" : "");
    if (adj) text_printf(t, " %s%s", lang_adjs[adj - 1], plural ? "i" : "");
}

static void lang_render(text *t, const lang_sentence *s, int subj_pl, int past)
{
    lang_np(t, s->subj, s->subj_adj, subj_pl, 0);
    text_printf(t, " %s%s%s ", lang_verbs[s->verb], subj_pl ? "u" : "a", past ? "t" : "");
    lang_np(t, s->obj, s->obj_adj, s->obj_pl, 1);
    text_printf(t, " %s.", past ? "kesa" : "niro");
}

static void gen_lang(demo_rng *r, text *t)
{
    lang_sentence s;
    s.subj = rng_below(r, 4); /* a living noun */
    s.subj_pl = (int)rng_below(r, 2);
    s.subj_adj = rng_below(r, 2) ? 1 + rng_below(r, 6) : 0;
    s.verb = rng_below(r, 6);
    s.past = (int)rng_below(r, 2);
    s.obj = (s.verb < 3 ? 0 : 4) + rng_below(r, 4); /* verbs 0-2: a living object, 3-5: a thing */
    s.obj_pl = (int)rng_below(r, 2);
    s.obj_adj = rng_below(r, 2) ? 1 + rng_below(r, 6) : 0;
    lang_render(t, &s, s.subj_pl, s.past);
    text_printf(t, " > ");
    lang_render(t, &s, !s.subj_pl, !s.past);
    text_end_line(t);
}

typedef struct {
    const char *name;
    text train, val;
    uint32_t *train_tok, *val_tok;
    size_t ntrain, nval;
} demo_task;

static uint32_t *bytes_to_tokens(const char *p, size_t n)
{
    uint32_t *tok;
    size_t cnt;
    peqa_status st = peqa_byte_encode(p, n, 0, &tok, &cnt);
    if (st) cli_die_status("demo: cannot tokenize the corpus", st);
    return tok;
}

/* Lines of one task's stream: at least train_bytes of train text, then val_bytes of validation. */
static void make_task(demo_task *k, const char *name, uint64_t seed, void (*gen)(demo_rng *, text *),
                      size_t val_bytes)
{
    memset(k, 0, sizeof *k);
    k->name = name;
    demo_rng r = {seed};
    while (k->train.len < DEMO_TRAIN_BYTES) gen(&r, &k->train);
    while (k->val.len < val_bytes) gen(&r, &k->val);
    k->train_tok = bytes_to_tokens(k->train.p, k->train.len), k->ntrain = k->train.len;
    k->val_tok = bytes_to_tokens(k->val.p, k->val.len), k->nval = k->val.len;
}

/* The pretraining text: the train lines of both tasks, each task's in order, interleaved by
 * drawing the next line's task with probability proportional to the lines it has left. */
static uint32_t *make_mix(const demo_task *a, const demo_task *b, size_t *n)
{
    text m = {0};
    demo_rng r = {DEMO_SEED_MIX};
    size_t ia = 0, ib = 0;
    const size_t na = a->train.nlines, nb = b->train.nlines;
    while (ia < na || ib < nb) {
        const uint64_t left_a = na - ia, left_b = nb - ib;
        const int take_a = rng_below(&r, (uint32_t)(left_a + left_b)) < left_a;
        const demo_task *k = take_a ? a : b;
        size_t *i = take_a ? &ia : &ib;
        const size_t s = *i ? k->train.ends[*i - 1] : 0, e = k->train.ends[*i];
        text_printf(&m, "%.*s", (int)(e - s), k->train.p + s);
        (*i)++;
    }
    uint32_t *tok = bytes_to_tokens(m.p, m.len);
    *n = m.len;
    text_free(&m);
    return tok;
}

static void write_text(const char *dir, const char *name, const char *suffix, const text *t)
{
    char path[4096];
    pathf(path, sizeof path, "%s/%s.%s.txt", dir, name, suffix);
    peqa_status st = peqa_write_file_atomic(path, t->p, t->len);
    if (st) cli_die_status("demo: cannot write the corpus", st);
}

/* ---- evaluation ------------------------------------------------------------------------------- */

/* Perplexity as `peqa eval --seq T`: windows of T + 1 tokens with stride T, then the remainder;
 * per-token losses summed in binary64 in token order. */
static double eval_ppl(peqa_ctx *ctx, peqa_model *m, const uint32_t *data, size_t n)
{
    const int64_t T = DEMO_SEQ, N = (int64_t)n, full = (N - 1) / T, rem = (N - 1) % T, B = 16;
    int32_t tok[16 * DEMO_SEQ], tgt[16 * DEMO_SEQ];
    float loss[16 * DEMO_SEQ];
    double sum = 0;
    int64_t done = 0;
    for (int64_t w = 0; w < full + (rem > 0);) {
        const int64_t Tw = w < full ? T : rem, Bw = w < full ? (full - w < B ? full - w : B) : 1;
        for (int64_t b = 0; b < Bw; b++)
            for (int64_t t = 0; t < Tw; t++) {
                tok[b * Tw + t] = (int32_t)data[(w + b) * T + t];
                tgt[b * Tw + t] = (int32_t)data[(w + b) * T + t + 1];
            }
        peqa_status st = peqa_model_eval(ctx, m, Bw, Tw, tok, tgt, loss, NULL);
        if (st) cli_die_status("demo: evaluation failed", st);
        for (int64_t i = 0; i < Bw * Tw; i++) sum += (double)loss[i];
        done += Bw * Tw;
        w += Bw;
    }
    return exp(sum / (double)done);
}

/* ---- training progress -------------------------------------------------------------------------- */

typedef struct {
    const char *label;
    int tty;
    int64_t every;
    int open;
} demo_progress;

static int demo_on_event(const peqa_train_event *ev, void *user)
{
    demo_progress *p = user;
    if (ev->kind != PEQA_TRAIN_EV_STEP) return 0;
    if (p->tty || ev->step % p->every == 0 || ev->step == ev->total) {
        fprintf(stderr, "%s%s: step %lld/%lld  loss %.4f  lr %.2e  %.0f tok/s  %.1f s%s", p->tty ? "\r" : "", p->label,
                (long long)ev->step, (long long)ev->total, (double)ev->loss, (double)ev->lr, ev->tokens_per_s,
                ev->elapsed_s, p->tty ? "\033[K" : "\n");
        p->open = p->tty;
    }
    return 0;
}

static void progress_done(demo_progress *p)
{
    if (p->open) fputc('\n', stderr), p->open = 0;
}

static void train_or_die(peqa_ctx *ctx, peqa_model *m, const uint32_t *tok, size_t n, peqa_train_options *o,
                         const char *label, peqa_train_result *res)
{
    demo_progress pr = {.label = label, .tty = isatty(2), .every = o->steps >= 100 ? o->steps / 20 : 10};
    o->callback = demo_on_event, o->user = &pr;
    peqa_status st = peqa_train(ctx, m, tok, n, NULL, 0, o, res);
    progress_done(&pr);
    if (st == PEQA_ERR_NONFINITE) cli_die("demo: %s: training stopped: %s", label, peqa_last_error());
    if (st) cli_die_status("demo: training failed", st);
}

/* ---- helpers ------------------------------------------------------------------------------------ */

/* snprintf into a path buffer; a path that does not fit is an error, never silently cut. */
static void pathf(char *buf, size_t n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void pathf(char *buf, size_t n, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int l = vsnprintf(buf, n, fmt, ap);
    va_end(ap);
    if (l < 0 || (size_t)l >= n) cli_die("demo: path too long: %.200s...", buf);
}

static long long file_size(const char *path)
{
    struct stat sb;
    if (stat(path, &sb)) cli_die("demo: %s: %s", path, strerror(errno));
    return (long long)sb.st_size;
}

static int is_model_dir(const char *dir)
{
    char p[4096];
    pathf(p, sizeof p, "%s/config.json", dir);
    if (access(p, R_OK)) return 0;
    pathf(p, sizeof p, "%s/model.safetensors", dir);
    return access(p, R_OK) == 0;
}

/* golden/demo from the current directory, else next to the executable (build/<dir>/peqa and the
 * top-level link both resolve to the repository's build directory). */
static const char *find_model(char *buf, size_t size)
{
    if (is_model_dir("golden/demo")) return "golden/demo";
    char exe[4096];
    ssize_t l = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (l <= 0) return NULL;
    exe[l] = 0;
    char *slash = strrchr(exe, '/');
    if (!slash) return NULL;
    *slash = 0;
    static const char *const rel[] = {"golden/demo", "../golden/demo", "../../golden/demo"};
    for (size_t i = 0; i < sizeof rel / sizeof rel[0]; i++) {
        pathf(buf, size, "%s/%s", exe, rel[i]);
        if (is_model_dir(buf)) return buf;
    }
    return NULL;
}

static void make_dir(const char *dir)
{
    if (mkdir(dir, 0777) && errno != EEXIST) cli_die("demo: cannot create %s: %s", dir, strerror(errno));
}

static void default_options(peqa_train_options *o)
{
    peqa_train_options_default(o);
    o->seq = DEMO_SEQ;
    o->accum = 1;
    o->schedule = PEQA_SCHED_COSINE;
    o->clip = 1.0f;
}

/* ---- pretraining ------------------------------------------------------------------------------- */

static int run_pretrain(peqa_ctx *ctx, demo_task *tasks, const char *out, int64_t steps, double lr)
{
    size_t nmix = 0;
    uint32_t *mix = make_mix(&tasks[0], &tasks[1], &nmix);
    peqa_model_config cfg;
    peqa_model *m = NULL;
    peqa_status st = peqa_model_config_init(&cfg, DEMO_DIM, DEMO_FFN, DEMO_LAYERS, DEMO_HEADS, DEMO_KV_HEADS,
                                            PEQA_BYTE_VOCAB, DEMO_SEQ);
    if (st || (st = peqa_model_create(&cfg, &m)) || (st = peqa_model_init_random(m, DEMO_INIT_SEED, 0.02f)))
        cli_die_status("demo: cannot create the model", st);
    peqa_train_options o;
    default_options(&o);
    o.batch = DEMO_PRE_BATCH, o.steps = steps, o.lr = (float)lr, o.warmup = steps < 10 * DEMO_PRE_WARMUP ? steps / 10 : DEMO_PRE_WARMUP;
    o.min_lr_ratio = DEMO_PRE_MIN_LR, o.weight_decay = DEMO_PRE_WD, o.seed = 1;
    fprintf(stderr, "peqa demo --pretrain: %zu tokens of mixed text; model hidden %d, %d layers, %d heads (%d KV), FFN %d; "
                    "%lld steps of %d x %d tokens, AdamW lr %g; %s, %d threads\n",
            nmix, DEMO_DIM, DEMO_LAYERS, DEMO_HEADS, DEMO_KV_HEADS, DEMO_FFN, (long long)steps, DEMO_PRE_BATCH, DEMO_SEQ,
            lr, peqa_ctx_isa(ctx), peqa_ctx_threads(ctx));
    const double t0 = cli_now();
    peqa_train_result res;
    train_or_die(ctx, m, mix, nmix, &o, "pretrain", &res);
    const double secs = cli_now() - t0;
    if ((st = peqa_model_save(m, out))) cli_die_status("demo: cannot write the model", st);
    printf("pretrained %lld steps (%lld tokens, %.2f epochs) in %.1f s, final loss %.4f\n", (long long)res.steps_done,
           (long long)res.tokens, (double)res.tokens / (double)nmix, secs, (double)res.last_loss);
    for (int k = 0; k < 2; k++)
        printf("  %-5s validation perplexity %.4f\n", tasks[k].name, eval_ppl(ctx, m, tasks[k].val_tok, tasks[k].nval));
    printf("wrote %s/config.json and %s/model.safetensors\n", out, out);
    peqa_model_free(m);
    free(mix);
    return 0;
}

/* ---- the demo ---------------------------------------------------------------------------------- */

typedef struct {
    int bits;
    double ppl_rtn[2], ppl_peqa[2];
    long long qfile_bytes, scale_bytes[2];
    int64_t trainable;
    double secs[2], tok_s[2];
    double mean_scale; /* mean |s| of the RTN scales */
    float lr;          /* PEQA's peak learning rate: --rel-lr x mean_scale */
} demo_row;

static void fmt_pct(double rtn, double peqa, double fp, char *buf, size_t n)
{
    if (!(rtn > fp)) snprintf(buf, n, "n/a");
    else snprintf(buf, n, "%.0f%%", 100.0 * (rtn - peqa) / (rtn - fp));
}

int cmd_demo(int argc, char **argv)
{
    const char *out = NULL, *o2 = NULL, *model_arg = NULL;
    int64_t steps = -1;
    double lr = -1, rel_lr = -1;
    int quick = 0, pretrain = 0;
    cli_opt opts[] = {
        {"--steps", CLI_INT, &steps, 1, 1e9},       {"--lr", CLI_FLOAT, &lr, 1e-9, 1},
        {"--rel-lr", CLI_FLOAT, &rel_lr, 1e-6, 10},
        {"--out", CLI_STR, &out, 0, 0},             {"-o", CLI_STR, &o2, 0, 0},
        {"--quick", CLI_FLAG, &quick, 0, 0},        {"--model", CLI_STR, &model_arg, 0, 0},
        {"--pretrain", CLI_FLAG, &pretrain, 0, 0},
    };
    peqa_ctx_options co = {0};
    cli_parse("demo", argc, argv, opts, (int)(sizeof opts / sizeof opts[0]), &co, demo_help);
    if (out && o2) cli_die("demo: give -o or --out, not both");
    if (!out) out = o2;
    if (pretrain && !out) cli_die("demo: --pretrain needs -o DIR (where to write the model)");
    if (pretrain && (quick || model_arg || rel_lr > 0)) cli_die("demo: --pretrain takes none of --quick, --model, --rel-lr");
    if (!pretrain && lr > 0) cli_die("demo: --lr is the pretraining learning rate (with --pretrain); PEQA's is --rel-lr");

    const double t_start = cli_now();
    peqa_ctx *ctx = cli_ctx(&co);
    demo_task tasks[2];
    const size_t val_bytes = quick ? DEMO_QUICK_VAL_BYTES : DEMO_VAL_BYTES;
    make_task(&tasks[0], "arith", DEMO_SEED_ARITH, gen_arith, val_bytes);
    make_task(&tasks[1], "lang", DEMO_SEED_LANG, gen_lang, val_bytes);
    if (out && !pretrain) {
        make_dir(out);
        for (int k = 0; k < 2; k++) write_text(out, tasks[k].name, "train", &tasks[k].train), write_text(out, tasks[k].name, "val", &tasks[k].val);
    }
    if (pretrain) {
        int rc = run_pretrain(ctx, tasks, out, steps > 0 ? steps : DEMO_PRE_STEPS, lr > 0 ? lr : DEMO_PRE_LR);
        for (int k = 0; k < 2; k++) text_free(&tasks[k].train), text_free(&tasks[k].val), free(tasks[k].train_tok), free(tasks[k].val_tok);
        peqa_ctx_free(ctx);
        return rc;
    }

    char mbuf[4096];
    const char *model_dir = model_arg ? model_arg : find_model(mbuf, sizeof mbuf);
    if (!model_dir)
        cli_die("demo: the demo model golden/demo was not found (run from the repository, give --model DIR, or build it "
                "with 'peqa demo --pretrain -o golden/demo')");
    const int64_t peqa_steps = steps > 0 ? steps : quick ? DEMO_QUICK_STEPS : DEMO_PEQA_STEPS;
    const int64_t peqa_batch = quick ? DEMO_QUICK_BATCH : DEMO_PEQA_BATCH;
    const double peqa_rel = rel_lr > 0 ? rel_lr : DEMO_PEQA_REL_LR;

    /* a scratch directory for the files whose sizes the table reports, unless --out keeps them */
    char tmpdir[4096];
    const char *fdir = out;
    if (!fdir) {
        const char *base = getenv("TMPDIR");
        pathf(tmpdir, sizeof tmpdir, "%s/peqa-demo-XXXXXX", base && *base ? base : "/tmp");
        if (!mkdtemp(tmpdir)) cli_die("demo: cannot create a temporary directory %s: %s", tmpdir, strerror(errno));
        fdir = tmpdir;
    }

    peqa_model *m = NULL;
    peqa_status st = peqa_model_load(model_dir, &m);
    if (st) cli_die_status("demo: cannot load the demo model", st);
    if (m->cfg.vocab != PEQA_BYTE_VOCAB || m->cfg.max_pos < DEMO_SEQ)
        cli_die("demo: %s: expected a byte-level model (vocabulary 258) with at least %d positions", model_dir, DEMO_SEQ);
    char path[4096];
    pathf(path, sizeof path, "%s/model.safetensors", model_dir);
    const long long fp_bytes = file_size(path);
    const peqa_model_config cfg = m->cfg;
    int64_t nparams = 0;
    for (int64_t i = 0; i < peqa_model_tensor_count(m); i++) {
        peqa_model_tensor t;
        peqa_model_tensor_at(m, i, &t);
        nparams += t.numel;
    }
    fprintf(stderr, "peqa demo: model %s (%lld parameters); corpus arith %zu + lang %zu train bytes, %zu + %zu validation; "
                    "%s, %d threads\n",
            model_dir, (long long)nparams, tasks[0].ntrain, tasks[1].ntrain, tasks[0].nval, tasks[1].nval, peqa_ctx_isa(ctx),
            peqa_ctx_threads(ctx));

    double ppl_fp[2];
    for (int k = 0; k < 2; k++) ppl_fp[k] = eval_ppl(ctx, m, tasks[k].val_tok, tasks[k].nval);
    fprintf(stderr, "fp32: validation perplexity arith %.4f, lang %.4f\n", ppl_fp[0], ppl_fp[1]);
    peqa_model_free(m), m = NULL;

    static const int bits_list[3] = {4, 3, 2};
    demo_row rows[3];
    memset(rows, 0, sizeof rows);
    for (int bi = 0; bi < 3; bi++) {
        demo_row *r = &rows[bi];
        r->bits = bits_list[bi];
        if ((st = peqa_model_load(model_dir, &m))) cli_die_status("demo: cannot load the demo model", st);
        if ((st = peqa_model_quantize(m, r->bits, DEMO_GROUP))) cli_die_status("demo: quantization failed", st);
        pathf(path, sizeof path, "%s/demo.q%d.safetensors", fdir, r->bits);
        if ((st = peqa_qfile_save(m, path))) cli_die_status("demo: cannot write the quantized model", st);
        r->qfile_bytes = file_size(path);
        if (!out) unlink(path);
        /* the RTN scales, restored before each task's run */
        const int64_t nlin = peqa_model_linear_count(m);
        double ssum = 0;
        float **rtn = calloc((size_t)nlin, sizeof *rtn);
        if (!rtn) cli_die("out of memory");
        for (int64_t i = 0; i < nlin; i++) {
            peqa_qtensor_info in;
            peqa_qtensor *q = peqa_model_linear_at(m, i)->q;
            peqa_qtensor_get_info(q, &in);
            if (!(rtn[i] = malloc(in.scale_bytes))) cli_die("out of memory");
            peqa_qtensor_get_scales(q, rtn[i]);
            r->trainable += in.n * in.ngroups;
            for (int64_t j = 0; j < in.n * in.ngroups; j++) ssum += fabs((double)rtn[i][j]);
        }
        r->mean_scale = ssum / (double)r->trainable;
        r->lr = (float)(peqa_rel * r->mean_scale);
        for (int k = 0; k < 2; k++) r->ppl_rtn[k] = eval_ppl(ctx, m, tasks[k].val_tok, tasks[k].nval);
        fprintf(stderr, "%d-bit RTN (group %d): validation perplexity arith %.4f, lang %.4f\n", r->bits, DEMO_GROUP,
                r->ppl_rtn[0], r->ppl_rtn[1]);
        for (int k = 0; k < 2; k++) {
            for (int64_t i = 0; i < nlin; i++) peqa_qtensor_set_scales(peqa_model_linear_at(m, i)->q, rtn[i]);
            peqa_train_options o;
            default_options(&o);
            o.batch = peqa_batch, o.steps = peqa_steps, o.lr = r->lr, o.warmup = peqa_steps / 4;
            o.weight_decay = 0.0f, o.seed = (uint64_t)(k + 1);
            char label[64];
            snprintf(label, sizeof label, "%d-bit PEQA %s", r->bits, tasks[k].name);
            peqa_train_result res;
            const double t0 = cli_now();
            train_or_die(ctx, m, tasks[k].train_tok, tasks[k].ntrain, &o, label, &res);
            r->secs[k] = cli_now() - t0;
            r->tok_s[k] = res.tokens_per_s;
            r->ppl_peqa[k] = eval_ppl(ctx, m, tasks[k].val_tok, tasks[k].nval);
            fprintf(stderr, "%s: validation perplexity %.4f (RTN %.4f, fp32 %.4f)\n", label, r->ppl_peqa[k], r->ppl_rtn[k],
                    ppl_fp[k]);
            pathf(path, sizeof path, "%s/%s.q%d.scales", fdir, tasks[k].name, r->bits);
            char steps_s[32], lr_s[32];
            snprintf(steps_s, sizeof steps_s, "%lld", (long long)res.steps_done);
            snprintf(lr_s, sizeof lr_s, "%.9g", (double)r->lr);
            const char *meta[] = {"peqa.train.task", tasks[k].name, "peqa.train.steps", steps_s, "peqa.train.lr", lr_s, NULL};
            if ((st = peqa_scales_save(m, 0, path, meta))) cli_die_status("demo: cannot write the scale file", st);
            r->scale_bytes[k] = file_size(path);
            if (!out) unlink(path);
        }
        for (int64_t i = 0; i < nlin; i++) free(rtn[i]);
        free(rtn);
        peqa_model_free(m), m = NULL;
    }
    if (!out) rmdir(fdir);

    /* the tables: deterministic numbers, then (right of '|') the wall time */
    printf("peqa demo: PEQA on a %lld-parameter LLaMA (hidden %lld, %lld layers, FFN %lld, byte vocabulary 258),\n"
           "RTN with groups of %d, then %lld PEQA steps of %lld x %d tokens per task and bit width; AdamW peak lr\n"
           "%g x the mean RTN scale = %.3g (4-bit), %.3g (3-bit), %.3g (2-bit), cosine decay\n\n",
           (long long)nparams, (long long)cfg.dim, (long long)cfg.n_layers, (long long)cfg.ffn, DEMO_GROUP,
           (long long)peqa_steps, (long long)peqa_batch, DEMO_SEQ, peqa_rel, (double)rows[0].lr, (double)rows[1].lr,
           (double)rows[2].lr);
    printf("validation perplexity (lower is better)\n");
    printf("%-4s  %-5s  %8s  %8s  %8s  %8s  %9s  %9s\n", "bits", "task", "fp32", "RTN", "PEQA", "RTN/fp32", "PEQA/fp32",
           "recovered");
    for (int bi = 0; bi < 3; bi++)
        for (int k = 0; k < 2; k++) {
            const demo_row *r = &rows[bi];
            char pct[32];
            fmt_pct(r->ppl_rtn[k], r->ppl_peqa[k], ppl_fp[k], pct, sizeof pct);
            printf("%-4d  %-5s  %8.4f  %8.4f  %8.4f  %+7.2f%%  %+8.2f%%  %9s\n", r->bits, tasks[k].name, ppl_fp[k],
                   r->ppl_rtn[k], r->ppl_peqa[k], 100.0 * (r->ppl_rtn[k] / ppl_fp[k] - 1.0),
                   100.0 * (r->ppl_peqa[k] / ppl_fp[k] - 1.0), pct);
        }
    printf("\nsizes, trainable parameters and time per PEQA run\n");
    printf("%-4s  %-5s  %10s  %11s  %11s  %9s  %11s | %7s  %6s\n", "bits", "task", "fp32_bytes", "quant_bytes",
           "scale_bytes", "trainable", "optim_bytes", "peqa_s", "tok/s");
    for (int bi = 0; bi < 3; bi++)
        for (int k = 0; k < 2; k++) {
            const demo_row *r = &rows[bi];
            printf("%-4d  %-5s  %10lld  %11lld  %11lld  %9lld  %11lld | %7.1f  %6.0f\n", r->bits, tasks[k].name, fp_bytes,
                   r->qfile_bytes, r->scale_bytes[k], (long long)r->trainable, (long long)r->trainable * 8, r->secs[k],
                   r->tok_s[k]);
        }
    const demo_row *r3 = &rows[1];
    char p0[32], p1[32];
    fmt_pct(r3->ppl_rtn[0], r3->ppl_peqa[0], ppl_fp[0], p0, sizeof p0);
    fmt_pct(r3->ppl_rtn[1], r3->ppl_peqa[1], ppl_fp[1], p1, sizeof p1);
    printf("\nrecovered = (RTN - PEQA) / (RTN - fp32): the share of the perplexity RTN loses that PEQA wins back;\n"
           "above 100%%, PEQA also beats the fp32 model (trained on both tasks at once) by adapting to the task.\n"
           "At 3 bits PEQA recovers %s (arith) and %s (lang).\n",
           p0, p1);
    printf("bytes: files on disk. fp32: model.safetensors; quant: the quantized model file (packed codes, fp32\n"
           "scales and zero points, fp32 embeddings, norms and head); scale: the task's scale file. optim: AdamW\n"
           "moments, 2 x 4 bytes per trainable scale (the full fp32 model has %lld parameters). peqa_s, tok/s:\n"
           "wall time and throughput of each PEQA run.\n",
           (long long)nparams);
    printf("total wall time %.1f s (%s, %d threads)\n", cli_now() - t_start, peqa_ctx_isa(ctx), peqa_ctx_threads(ctx));
    for (int k = 0; k < 2; k++) text_free(&tasks[k].train), text_free(&tasks[k].val), free(tasks[k].train_tok), free(tasks[k].val_tok);
    peqa_ctx_free(ctx);
    return 0;
}
