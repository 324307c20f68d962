/* peqa CLI — model commands: eval, generate, tokenize, convert, info MODEL, and the hidden
 * developer command init-model (a random model for tests).
 *
 * Everything here is glue: the numbers come from the library (src/model.h, src/tokens.h,
 * src/llama2c.h, src/ops.h). What this file adds and defines itself:
 *  - eval's windowing and the order of the NLL sum (below, above cmd_eval);
 *  - generate's sampler: temperature, top-p and a xoshiro256** stream seeded by splitmix64,
 *    so the same seed gives the same text on every machine, ISA and thread count;
 *  - the choice of tokenizer (llama2.c tokenizer.bin or the built-in byte tokenizer).
 * Errors are one line on stderr and a non-zero exit: 2 for bad usage (missing or malformed
 * options, as cli_parse does), 1 for everything else (unreadable or malformed files, a model
 * and a tokenizer that do not fit together, out of memory).
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
#include "llama2c.h"
#include "model.h"
#include "ops.h"
#include "qfile.h"
#include "tokens.h"

/* ---- small helpers -------------------------------------------------------------------------- */

/* Bad usage: "peqa CMD: message (see 'peqa CMD --help')", exit 2 (the same form as cli_parse). */
static void usage_die(const char *cmd, const char *fmt, ...) __attribute__((noreturn, format(printf, 2, 3)));
static void usage_die(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "peqa %s: ", cmd);
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, " (see 'peqa %s --help')\n", cmd);
    va_end(ap);
    exit(2);
}

static void need(const char *cmd, const char *value, const char *opt, const char *what)
{
    if (!value || !*value) usage_die(cmd, "missing %s %s", opt, what);
}

static void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p) cli_die("out of memory (%zu bytes)", n);
    return p;
}

/* n · size with an overflow check (exits on overflow). */
static void *xmalloc_n(size_t n, size_t size)
{
    if (size && n > SIZE_MAX / size) cli_die("out of memory (%zu x %zu bytes)", n, size);
    return xmalloc(n * size);
}

static int file_exists(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0 && S_ISREG(sb.st_mode);
}

static int is_directory(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0 && S_ISDIR(sb.st_mode);
}

/* dir + "/" + name in a new string. */
static char *join_path(const char *dir, const char *name)
{
    size_t a = strlen(dir), b = strlen(name);
    char *p = xmalloc(a + b + 2);
    memcpy(p, dir, a);
    size_t o = a;
    if (a && dir[a - 1] != '/') p[o++] = '/';
    memcpy(p + o, name, b + 1);
    return p;
}

/* The directory a model path names: itself if a directory, else the file's directory. */
static char *model_dir(const char *path)
{
    if (is_directory(path)) return join_path(path, "");
    const char *slash = strrchr(path, '/');
    if (!slash) return join_path(".", "");
    size_t n = (size_t)(slash - path) + 1;
    char *d = xmalloc(n + 1);
    memcpy(d, path, n);
    d[n] = 0;
    return d;
}

/* The whole of a file ("-" = standard input) in a new buffer with a NUL appended. */
static char *read_all(const char *path, size_t *len)
{
    int is_stdin = !strcmp(path, "-");
    if (!is_stdin && is_directory(path)) cli_die("%s: is a directory, not a file", path);
    FILE *f = is_stdin ? stdin : fopen(path, "rb");
    if (!f) cli_die("%s: cannot open: %s", path, strerror(errno));
    size_t cap = 1 << 16, n = 0;
    char *buf = xmalloc(cap);
    for (;;) {
        if (cap - n < 2) {
            if (cap > SIZE_MAX / 2) cli_die("%s: file too large", path);
            char *nb = realloc(buf, cap * 2);
            if (!nb) cli_die("%s: out of memory reading the file", path);
            buf = nb, cap *= 2;
        }
        size_t got = fread(buf + n, 1, cap - n - 1, f);
        n += got;
        if (got == 0) break;
    }
    int bad = ferror(f);
    int e = errno;
    if (!is_stdin) fclose(f);
    if (bad) cli_die("%s: read error: %s", path, strerror(e));
    buf[n] = 0;
    *len = n;
    return buf;
}

/* The one place the commands load a model: peqa_model_open takes a quantized model file
 * (peqa quantize) or a full-precision Hugging Face checkpoint. */
static peqa_model *load_model(const char *path)
{
    peqa_model *m = NULL;
    peqa_status st = peqa_model_open(path, &m);
    if (st) cli_die_status("cannot load the model", st);
    return m;
}

/* --scales FILE: a task's fine-tuned scales (peqa finetune) onto the quantized model. */
static void apply_scales(peqa_model *m, const char *path)
{
    if (!path) return;
    peqa_status st = peqa_scales_apply(m, path, NULL);
    if (st) cli_die_status("cannot apply the scales", st);
}

/* "fp32" or "4-bit, group 128" / "4-bit, per-channel". */
static void model_format(const peqa_model *m, char *buf, size_t n)
{
    if (!m->quantized) snprintf(buf, n, "fp32");
    else if (m->group == 0) snprintf(buf, n, "quantized %d-bit, per-channel", m->bits);
    else snprintf(buf, n, "quantized %d-bit, group %lld", m->bits, (long long)m->group);
}

/* Seconds as text for humans. */
static void fmt_secs(double s, char *buf, size_t n)
{
    if (s < 1) snprintf(buf, n, "%.0f ms", s * 1e3);
    else snprintf(buf, n, "%.2f s", s);
}

/* ---- tokenizers ----------------------------------------------------------------------------- */

/* Either llama2.c's tokenizer.bin (l2c != NULL) or the built-in byte tokenizer. */
typedef struct cli_tok {
    peqa_l2c_tokenizer *l2c;
    const char *path; /* of tokenizer.bin, or "the byte tokenizer" */
    char *owned;      /* path storage when found next to the model */
    uint32_t vocab, bos, eos;
} cli_tok;

static void tok_byte(cli_tok *t)
{
    memset(t, 0, sizeof *t);
    t->path = "the byte tokenizer";
    t->vocab = PEQA_BYTE_VOCAB, t->bos = PEQA_BYTE_BOS, t->eos = PEQA_BYTE_EOS;
}

/* vocab: the model's (the file must hold exactly that many entries), or 0 for all entries. */
static void tok_l2c(cli_tok *t, const char *path, int64_t vocab)
{
    memset(t, 0, sizeof *t);
    if (is_directory(path)) cli_die("%s: is a directory, not a tokenizer.bin file", path);
    peqa_status st = peqa_l2c_tokenizer_load(path, vocab, &t->l2c);
    if (st) {
        if (vocab > 0 && st == PEQA_ERR_FORMAT) {
            /* Say whether it is a tokenizer for another vocabulary or not a tokenizer at all. */
            peqa_l2c_tokenizer *any = NULL;
            if (peqa_l2c_tokenizer_load(path, 0, &any) == PEQA_OK) {
                uint32_t v = peqa_l2c_tokenizer_vocab(any);
                peqa_l2c_tokenizer_free(any);
                cli_die("%s: the tokenizer has %u tokens but the model's vocabulary is %lld: they do not belong "
                        "together", path, v, (long long)vocab);
            }
            st = peqa_l2c_tokenizer_load(path, vocab, &t->l2c); /* restore the first message */
        }
        cli_die_status("cannot load the tokenizer", st);
    }
    t->path = path;
    t->vocab = peqa_l2c_tokenizer_vocab(t->l2c);
    t->bos = PEQA_L2C_BOS, t->eos = PEQA_L2C_EOS;
}

static void tok_free(cli_tok *t)
{
    peqa_l2c_tokenizer_free(t->l2c);
    free(t->owned);
}

static void tok_encode(const cli_tok *t, const char *text, size_t len, unsigned flags, uint32_t **out, size_t *n)
{
    peqa_status st = t->l2c ? peqa_l2c_encode(t->l2c, text, len, flags, out, n)
                            : peqa_byte_encode(text, len, flags, out, n);
    if (st) cli_die_status("cannot tokenize the text", st);
}

/* ---- eval ----------------------------------------------------------------------------------- */

static const char eval_help[] =
    "usage: peqa eval --model M --data D [--seq T] [--batch B] [--limit-tokens N] [--format F]\n"
    "                 [--isa NAME] [--threads N]\n"
    "\n"
    "Perplexity of a model on a token file: the mean negative log-likelihood (NLL, natural log)\n"
    "of every token given the tokens before it, and perplexity = exp(mean NLL).\n"
    "\n"
    "The file is cut into consecutive windows of T+1 tokens, each starting where the previous one\n"
    "ended (its last token is the next window's first): the model reads T tokens and predicts the\n"
    "T tokens that follow, so every token but the file's first is predicted exactly once, with\n"
    "between 0 and T-1 tokens of context. A shorter last window covers the rest of the file.\n"
    "The result is deterministic: the same bits on every ISA, thread count and --batch.\n"
    "\n"
    "options:\n"
    "  --model M         model directory (config.json + model.safetensors) or a .safetensors /\n"
    "                    model.safetensors.index.json file with config.json beside it (required)\n"
    "  --data D          tokens: an llm.c shard (.bin with the 20240520/20240801 header, as written\n"
    "                    by 'peqa tokenize'), or a text file read with the byte tokenizer (required)\n"
    "  --seq T           tokens each window predicts, 1 .. max_position_embeddings (default: the\n"
    "                    model's max_position_embeddings, but at most 1024)\n"
    "  --batch B         windows per forward pass (default 1); only speed and memory change (the\n"
    "                    logits take B x T x vocab x 4 bytes)\n"
    "  --limit-tokens N  use only the first N tokens of the file (default: all)\n"
    "  --scales FILE     a task's scale file (peqa finetune) applied to the quantized model\n"
    "  --format F        auto | shard | text | raw16 (headerless uint16 tokens, e.g. nanoGPT's\n"
    "                    val.bin) (default auto: shard if the header says so, else text; an\n"
    "                    unrecognised .bin is an error)\n"
    "  --isa NAME        scalar | avx2 | avx512 | neon (default: PEQA_ISA, else the best available)\n"
    "  --threads N       threads including the caller (default: PEQA_THREADS, else all CPUs)\n"
    "\n"
    "Prints the tokens evaluated, the mean NLL and the perplexity on stdout; the speed (tokens/s)\n"
    "and, for runs longer than a second, a progress line go to stderr.\n"
    "\n"
    "example:\n"
    "  peqa tokenize --input valid.txt -o valid.bin\n"
    "  peqa eval --model out/model --data valid.bin --seq 256\n";

/* Progress on stderr: nothing during the first second; then, on a terminal, one line rewritten
 * with \r at most once a second; otherwise (a log file) a plain line at most every 10 seconds. */
typedef struct progress {
    double start, last;
    int tty, shown;
} progress;

static void progress_init(progress *p)
{
    p->start = p->last = cli_now();
    p->tty = isatty(fileno(stderr));
    p->shown = 0;
}

static void progress_update(progress *p, const char *what, long long done, long long total)
{
    double now = cli_now();
    if (now - p->start < 1.0 || now - p->last < (p->tty ? 1.0 : 10.0) || done >= total) return;
    p->last = now;
    const double rate = (double)done / (now - p->start), eta = rate > 0 ? (double)(total - done) / rate : 0;
    fprintf(stderr, "%s%s: %lld / %lld tokens (%.0f%%), %.0f tokens/s, about %.0f s left%s", p->tty ? "\r" : "",
            what, done, total, total ? 100.0 * (double)done / (double)total : 100.0, rate, eta, p->tty ? "   " : "\n");
    fflush(stderr);
    p->shown = 1;
}

static void progress_end(progress *p)
{
    if (p->shown && p->tty) fprintf(stderr, "\r%90s\r", "");
}

static const char *format_name(peqa_data_format f)
{
    switch (f) {
    case PEQA_DATA_SHARD: return "llm.c shard";
    case PEQA_DATA_TEXT: return "text, byte tokenizer";
    case PEQA_DATA_RAW_U16: return "headerless uint16";
    default: return "auto";
    }
}

/* Windows (see the help text): window w covers tokens [w·T, w·T + T]; with N tokens there are
 * full = (N−1) / T full windows and, if rem = (N−1) mod T > 0, a last one of rem+1 tokens. Per
 * forward pass, up to B full windows; the last window alone. The per-token losses of
 * peqa_model_eval do not depend on how windows are batched (every row of every product has one
 * fixed operation sequence, SPEC §6); they are summed in double in file order, so the mean does
 * not depend on B, the ISA or the thread count either. */
int cmd_eval(int argc, char **argv)
{
    const char *model_path = NULL, *data_path = NULL, *fmt_s = "auto", *scales_path = NULL;
    int64_t seq = 0, batch = 1, limit = 0;
    /* --scales: a fine-tuned task is evaluated without writing a whole model file */
    cli_opt opts[] = {
        {"--model", CLI_STR, &model_path, 0, 0},
        {"--data", CLI_STR, &data_path, 0, 0},
        {"--seq", CLI_INT, &seq, 1, (double)PEQA_MODEL_MAX_POS},
        {"--batch", CLI_INT, &batch, 1, 65536},
        {"--limit-tokens", CLI_INT, &limit, 2, 9007199254740991.0},
        {"--format", CLI_STR, &fmt_s, 0, 0},
        {"--scales", CLI_STR, &scales_path, 0, 0},
    };
    peqa_ctx_options co = {0};
    cli_parse("eval", argc, argv, opts, (int)(sizeof opts / sizeof opts[0]), &co, eval_help);
    need("eval", model_path, "--model", "M (the model directory)");
    need("eval", data_path, "--data", "D (the token file)");
    peqa_data_format fmt;
    if (!strcmp(fmt_s, "auto")) fmt = PEQA_DATA_AUTO;
    else if (!strcmp(fmt_s, "shard")) fmt = PEQA_DATA_SHARD;
    else if (!strcmp(fmt_s, "text")) fmt = PEQA_DATA_TEXT;
    else if (!strcmp(fmt_s, "raw16")) fmt = PEQA_DATA_RAW_U16;
    else usage_die("eval", "--format '%.100s': expected auto, shard, text or raw16", fmt_s);

    peqa_ctx *ctx = cli_ctx(&co);
    peqa_model *m = load_model(model_path);
    apply_scales(m, scales_path);
    const peqa_model_config *cf = &m->cfg;

    uint32_t *data = NULL;
    size_t count = 0;
    peqa_data_format used = fmt;
    peqa_status st = peqa_dataset_load(data_path, fmt, 0, &data, &count, &used);
    if (st) cli_die_status("cannot read the data", st);
    const int limited = limit > 0 && (uint64_t)limit < (uint64_t)count;
    if (limited) count = (size_t)limit;
    if (count < 2) cli_die("%s: %zu token: at least 2 are needed (one to read, one to predict)", data_path, count);
    if ((st = peqa_tokens_check_vocab(data_path, data, count, (uint32_t)cf->vocab)))
        cli_die_status("the data does not fit the model", st);

    int64_t T = seq ? seq : (cf->max_pos < 1024 ? cf->max_pos : 1024);
    if (T > cf->max_pos)
        usage_die("eval", "--seq %lld is longer than the model's max_position_embeddings = %lld", (long long)T,
                  (long long)cf->max_pos);
    const int64_t N = (int64_t)count, full = (N - 1) / T, rem = (N - 1) % T;
    int64_t B = batch < full ? batch : full;
    if (B < 1) B = 1;
    const int64_t rows = B * T > rem ? B * T : rem;
    int32_t *tok = xmalloc_n((size_t)rows, sizeof *tok), *tgt = xmalloc_n((size_t)rows, sizeof *tgt);
    float *loss = xmalloc_n((size_t)rows, sizeof *loss);

    char fmtbuf[64];
    model_format(m, fmtbuf, sizeof fmtbuf);
    printf("model     : %s (%s, %lld layers, hidden %lld, vocab %lld)\n", model_path, fmtbuf, (long long)cf->n_layers,
           (long long)cf->dim, (long long)cf->vocab);
    printf("data      : %s (%s, %lld tokens%s)\n", data_path, format_name(used), (long long)N,
           limited ? ", cut by --limit-tokens" : "");
    if (full == 0) printf("windows   : one of %lld+1 tokens (the file is shorter than --seq)\n", (long long)rem);
    else if (rem == 0) printf("windows   : %lld of %lld+1 tokens\n", (long long)full, (long long)T);
    else printf("windows   : %lld of %lld+1 tokens, then one of %lld+1\n", (long long)full, (long long)T, (long long)rem);
    fflush(stdout);

    progress pr;
    progress_init(&pr);
    double sum = 0;
    long long done = 0;
    const double t0 = cli_now();
    for (int64_t w = 0; w < full + (rem > 0);) {
        /* Bw windows of Tw tokens starting at token w·T */
        const int64_t Tw = w < full ? T : rem, Bw = w < full ? (full - w < B ? full - w : B) : 1;
        for (int64_t b = 0; b < Bw; b++)
            for (int64_t t = 0; t < Tw; t++) {
                tok[b * Tw + t] = (int32_t)data[(w + b) * T + t];
                tgt[b * Tw + t] = (int32_t)data[(w + b) * T + t + 1];
            }
        if ((st = peqa_model_eval(ctx, m, Bw, Tw, tok, tgt, loss, NULL))) {
            progress_end(&pr);
            cli_die_status("eval failed", st);
        }
        for (int64_t i = 0; i < Bw * Tw; i++) sum += (double)loss[i];
        done += (long long)(Bw * Tw);
        progress_update(&pr, "eval", done, (long long)(N - 1));
        w += Bw;
    }
    const double secs = cli_now() - t0;
    progress_end(&pr);
    const double mean = sum / (double)done, ppl = exp(mean);
    printf("tokens    : %lld evaluated\n", done);
    printf("mean NLL  : %.8f nats/token (%.6f bits/token)\n", mean, mean / log(2.0));
    printf("perplexity: %.6f\n", ppl);
    char sb[32];
    fmt_secs(secs, sb, sizeof sb);
    fprintf(stderr, "peqa eval: %lld tokens in %s, %.1f tokens/s (isa %s, %d threads)\n", done, sb,
            secs > 0 ? (double)done / secs : 0.0, peqa_ctx_isa(ctx), peqa_ctx_threads(ctx));
    free(tok), free(tgt), free(loss), free(data);
    peqa_model_free(m);
    peqa_ctx_free(ctx);
    return 0;
}

/* ---- generate ------------------------------------------------------------------------------- */

static const char generate_help[] =
    "usage: peqa generate --model M --prompt TEXT [--tokens N] [--temperature T] [--top-p P]\n"
    "                     [--seed S] [--tokenizer FILE] [--bos | --no-bos] [--no-echo]\n"
    "                     [--isa NAME] [--threads N]\n"
    "\n"
    "Continues a prompt with the model, one token at a time with a KV cache, and streams the text\n"
    "to stdout as it is generated (the prompt first, then the continuation). Stops after N tokens,\n"
    "at the end-of-sequence token, or at the model's max_position_embeddings. The speed goes to\n"
    "stderr.\n"
    "\n"
    "Sampling: temperature 0 takes the most likely token (greedy; ties: the lowest id). Otherwise\n"
    "the logits are divided by T, turned into probabilities (softmax), cut to the smallest set of\n"
    "most likely tokens whose probabilities add up to at least P (nucleus / top-p sampling), and\n"
    "one is drawn with a xoshiro256** generator seeded by S: the same seed gives the same text\n"
    "on every machine, ISA and thread count.\n"
    "\n"
    "Tokenizer: --tokenizer FILE (llama2.c's tokenizer.bin); else a tokenizer.bin next to the\n"
    "model (as 'peqa convert --tokenizer' leaves it); else the built-in byte tokenizer (256 bytes\n"
    "+ BOS 256 + EOS 257, for models with a vocabulary of 258, such as the demo model).\n"
    "'--tokenizer byte' asks for the byte tokenizer explicitly. The model's vocabulary must match\n"
    "the tokenizer's.\n"
    "\n"
    "options:\n"
    "  --model M          model directory or .safetensors file (required)\n"
    "  --scales FILE      a task's scale file (peqa finetune) applied to the quantized model\n"
    "  --prompt TEXT      the start of the text (required; '' starts from BOS alone)\n"
    "  --tokens N         tokens to generate (default 256)\n"
    "  --temperature T    0 = greedy; higher is more random (default 1.0)\n"
    "  --top-p P          nucleus size in (0, 1]; 1 = sample from all tokens (default 0.9)\n"
    "  --seed S           random seed, 0 .. 2^53-1 (default 1)\n"
    "  --tokenizer FILE   llama2.c tokenizer.bin, or 'byte' (default: see above)\n"
    "  --bos, --no-bos    start the prompt with BOS or not (default: yes with a tokenizer.bin, as\n"
    "                     llama2.c does; no with the byte tokenizer, as 'peqa tokenize' does;\n"
    "                     an empty prompt always starts with BOS)\n"
    "  --no-echo          print only the generated text, not the prompt\n"
    "  --isa NAME         scalar | avx2 | avx512 | neon (default: PEQA_ISA, else the best available)\n"
    "  --threads N        threads including the caller (default: PEQA_THREADS, else all CPUs)\n"
    "\n"
    "example:\n"
    "  peqa generate --model stories15M --prompt 'Once upon a time' --tokens 100 --temperature 0\n";

/* xoshiro256** seeded by splitmix64 (Vigna); integer arithmetic only. */
typedef struct cli_rng {
    uint64_t s[4];
} cli_rng;

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static uint64_t rotl64(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

static void rng_seed(cli_rng *r, uint64_t seed)
{
    uint64_t x = seed;
    for (int i = 0; i < 4; i++) r->s[i] = splitmix64(&x);
}

static uint64_t rng_next(cli_rng *r)
{
    uint64_t *s = r->s;
    const uint64_t out = rotl64(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0], s[3] ^= s[1], s[1] ^= s[2], s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl64(s[3], 45);
    return out;
}

/* Uniform in [0, 1) with 53 random bits (exact in double). */
static double rng_unit(cli_rng *r) { return (double)(rng_next(r) >> 11) * (1.0 / 9007199254740992.0); }

typedef struct prob_idx {
    float p;
    int32_t i;
} prob_idx;

/* Descending probability, then ascending id: a total order, so the sort's result is unique. */
static int cmp_prob_desc(const void *a, const void *b)
{
    const prob_idx *x = a, *y = b;
    if (x->p != y->p) return x->p > y->p ? -1 : 1;
    return (x->i > y->i) - (x->i < y->i);
}

static int32_t argmax(const float *z, int64_t n)
{
    int64_t best = 0;
    for (int64_t v = 1; v < n; v++)
        if (z[v] > z[best]) best = v;
    return (int32_t)best;
}

/* One token from logits (V floats; overwritten). The arithmetic: z/T in float, peqa_softmax,
 * sums in double in a fixed order, one draw u = rng_unit:
 *  - top_p >= 1: the first id whose running sum of p exceeds u · Σp (ids ascending);
 *  - top_p < 1: ids sorted by (p descending, id ascending); the nucleus is the shortest prefix
 *    whose sum reaches top_p; the first of them whose running sum exceeds u · (nucleus sum).
 *    Ids with p < (1 − top_p)/(V − 1) cannot be in the nucleus unless it is the top token alone
 *    (then the rest would sum to more than 1 − top_p with each below that bound), so only the
 *    others are sorted; if they do not reach top_p (rounding), all ids are sorted instead. */
static int32_t sample(float *z, int64_t V, double temperature, double top_p, cli_rng *rng, prob_idx *buf)
{
    if (temperature == 0) return argmax(z, V);
    const float inv = (float)temperature;
    for (int64_t v = 0; v < V; v++) z[v] = z[v] / inv;
    peqa_status st = peqa_softmax(z, V, z);
    if (st) cli_die_status("sampling failed", st);
    const double u = rng_unit(rng);
    if (top_p >= 1.0) {
        double total = 0;
        for (int64_t v = 0; v < V; v++) total += (double)z[v];
        const double r = u * total;
        double cum = 0;
        int32_t last = 0;
        for (int64_t v = 0; v < V; v++) {
            if (z[v] <= 0) continue;
            cum += (double)z[v];
            last = (int32_t)v;
            if (cum > r) return last;
        }
        return last;
    }
    const float cutoff = V > 1 ? (float)((1.0 - top_p) / (double)(V - 1)) : 0.0f;
    for (int pass = 0; pass < 2; pass++) {
        int64_t n = 0;
        for (int64_t v = 0; v < V; v++)
            if (pass == 1 || z[v] >= cutoff) buf[n].p = z[v], buf[n].i = (int32_t)v, n++;
        if (n == 0) continue;
        qsort(buf, (size_t)n, sizeof *buf, cmp_prob_desc);
        double cum = 0;
        int64_t k = 0;
        while (k < n && cum < top_p) cum += (double)buf[k++].p;
        if (cum < top_p && pass == 0) continue; /* the filter cut too much: sort everything */
        const double r = u * cum;
        double run = 0;
        for (int64_t j = 0; j < k; j++) {
            run += (double)buf[j].p;
            if (run > r) return buf[j].i;
        }
        return buf[k - 1].i;
    }
    return argmax(z, V); /* not reached: pass 1 covers every id */
}

/* Writes generated bytes; on a terminal, control bytes other than newline and tab are dropped
 * (a random model can emit escape sequences). */
static void emit(const char *s, size_t n, int tty)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (tty && c < 0x20 && c != '\n' && c != '\t') continue;
        if (tty && c == 0x7f) continue;
        fputc(c, stdout);
    }
}

/* The text of token id after prev (byte tokenizer: the byte; BOS/EOS: nothing). */
static void token_text(const cli_tok *t, uint32_t prev, uint32_t id, const char **s, size_t *n, char *one)
{
    if (t->l2c) {
        peqa_status st = peqa_l2c_decode_token(t->l2c, prev, id, s, n);
        if (st) cli_die_status("cannot decode a token", st);
        return;
    }
    if (id < 256) {
        *one = (char)id;
        *s = one, *n = 1;
    } else {
        *s = "", *n = 0;
    }
}

/* Picks the tokenizer for a model (see generate's help) and checks that they fit together. */
static void choose_tokenizer(cli_tok *t, const char *cmd, const char *opt, const char *model_path, int64_t vocab)
{
    if (opt && !strcmp(opt, "byte")) {
        tok_byte(t);
    } else if (opt) {
        tok_l2c(t, opt, vocab);
    } else {
        char *dir = model_dir(model_path), *cand = join_path(dir, "tokenizer.bin");
        free(dir);
        if (file_exists(cand)) {
            tok_l2c(t, cand, vocab);
            t->owned = cand;
        } else {
            free(cand);
            tok_byte(t);
        }
    }
    if (!t->l2c && vocab != (int64_t)PEQA_BYTE_VOCAB)
        cli_die("%s: the model's vocabulary is %lld tokens, but the byte tokenizer has %u: give the model's "
                "tokenizer with --tokenizer tokenizer.bin (see 'peqa %s --help')",
                model_path, (long long)vocab, PEQA_BYTE_VOCAB, cmd);
}

int cmd_generate(int argc, char **argv)
{
    const char *model_path = NULL, *prompt = NULL, *tok_path = NULL, *scales_path = NULL;
    int64_t ntok = 256, seed = 1;
    double temperature = 1.0, top_p = 0.9;
    int bos = 0, no_bos = 0, no_echo = 0;
    cli_opt opts[] = {
        {"--model", CLI_STR, &model_path, 0, 0},
        {"--prompt", CLI_STR, &prompt, 0, 0},
        {"--tokens", CLI_INT, &ntok, 1, (double)PEQA_MODEL_MAX_POS},
        {"--temperature", CLI_FLOAT, &temperature, 0, 1000},
        {"--top-p", CLI_FLOAT, &top_p, 0, 1},
        {"--seed", CLI_INT, &seed, 0, 9007199254740991.0},
        {"--tokenizer", CLI_STR, &tok_path, 0, 0},
        {"--bos", CLI_FLAG, &bos, 0, 0},
        {"--no-bos", CLI_FLAG, &no_bos, 0, 0},
        {"--no-echo", CLI_FLAG, &no_echo, 0, 0},
        {"--scales", CLI_STR, &scales_path, 0, 0},
    };
    peqa_ctx_options co = {0};
    cli_parse("generate", argc, argv, opts, (int)(sizeof opts / sizeof opts[0]), &co, generate_help);
    need("generate", model_path, "--model", "M (the model directory)");
    if (!prompt) usage_die("generate", "missing --prompt TEXT (--prompt '' starts from BOS alone)");
    if (bos && no_bos) usage_die("generate", "--bos and --no-bos contradict each other");
    if (top_p <= 0) usage_die("generate", "--top-p %g: expected a value in (0, 1]", top_p);
    if (tok_path && !*tok_path) usage_die("generate", "--tokenizer needs a file name (or 'byte')");

    peqa_ctx *ctx = cli_ctx(&co);
    peqa_model *m = load_model(model_path);
    apply_scales(m, scales_path);
    const peqa_model_config *cf = &m->cfg;
    const int64_t V = cf->vocab;
    cli_tok tk;
    choose_tokenizer(&tk, "generate", tok_path, model_path, V);
    if (tk.l2c && !tok_path) fprintf(stderr, "peqa generate: using the tokenizer %s\n", tk.path);

    const size_t plen = strlen(prompt);
    int add_bos = bos || (!no_bos && tk.l2c != NULL) || plen == 0;
    uint32_t *ptok = NULL;
    size_t np = 0;
    tok_encode(&tk, prompt, plen, add_bos ? PEQA_TOK_ADD_BOS : 0, &ptok, &np);
    if (np == 0) cli_die("the prompt gives no tokens");
    if ((int64_t)np >= cf->max_pos)
        cli_die("the prompt is %zu tokens: the model takes at most %lld (max_position_embeddings) and needs room "
                "for one more", np, (long long)cf->max_pos);
    int64_t max_len = (int64_t)np + ntok;
    if (max_len > cf->max_pos) max_len = cf->max_pos;
    peqa_model_kv *kv = NULL;
    peqa_status st = peqa_model_kv_create(m, max_len, &kv);
    if (st) cli_die_status("cannot create the KV cache", st);
    float *logits = xmalloc_n((size_t)V, sizeof *logits);
    prob_idx *buf = xmalloc_n((size_t)V, sizeof *buf);
    int32_t *in = xmalloc_n(np, sizeof *in);
    for (size_t i = 0; i < np; i++) in[i] = (int32_t)ptok[i];
    const int tty = isatty(fileno(stdout));
    char one;
    const char *s;
    size_t n;

    if (!no_echo) {
        uint32_t prev = UINT32_MAX;
        for (size_t i = 0; i < np; i++) {
            token_text(&tk, prev, ptok[i], &s, &n, &one);
            emit(s, n, tty);
            prev = ptok[i];
        }
        fflush(stdout);
    }
    double t0 = cli_now();
    if ((st = peqa_model_decode(ctx, m, kv, (int64_t)np, in, logits))) cli_die_status("generation failed", st);
    const double t_prompt = cli_now() - t0;
    cli_rng rng;
    rng_seed(&rng, (uint64_t)seed);
    uint32_t prev = ptok[np - 1];
    int64_t made = 0;
    const char *why = "token limit";
    t0 = cli_now();
    for (;;) {
        const int32_t next = sample(logits, V, temperature, top_p, &rng, buf);
        made++;
        if ((uint32_t)next == tk.eos || (cf->eos_token_id >= 0 && next == cf->eos_token_id) ||
            (tk.l2c && (uint32_t)next == tk.bos)) {
            /* llama2.c's models end a story with BOS; run.c stops there too. */
            why = "end of sequence";
            break;
        }
        token_text(&tk, prev, (uint32_t)next, &s, &n, &one);
        emit(s, n, tty);
        fflush(stdout);
        prev = (uint32_t)next;
        if (made >= ntok) break;
        if (peqa_model_kv_len(kv) >= max_len) {
            why = "max_position_embeddings reached";
            break;
        }
        if ((st = peqa_model_decode(ctx, m, kv, 1, &next, logits))) cli_die_status("generation failed", st);
    }
    const double t_gen = cli_now() - t0;
    printf("\n");
    fflush(stdout);
    char a[32], b[32];
    fmt_secs(t_gen, a, sizeof a);
    fmt_secs(t_prompt, b, sizeof b);
    fprintf(stderr, "peqa generate: %lld tokens in %s, %.1f tokens/s (%s); prompt %zu tokens in %s; isa %s, %d threads\n",
            (long long)made, a, t_gen > 0 ? (double)made / t_gen : 0.0, why, np, b, peqa_ctx_isa(ctx),
            peqa_ctx_threads(ctx));
    free(logits), free(buf), free(in), free(ptok);
    peqa_model_kv_free(kv);
    tok_free(&tk);
    peqa_model_free(m);
    peqa_ctx_free(ctx);
    return 0;
}

/* ---- tokenize ------------------------------------------------------------------------------- */

static const char tokenize_help[] =
    "usage: peqa tokenize --input TEXT_FILE -o OUT.bin [--tokenizer FILE] [--bos] [--eos]\n"
    "\n"
    "Turns a text file into an llm.c token shard (1024-byte header, magic 20240520 with uint16\n"
    "tokens, or 20240801 with uint32 tokens when an id exceeds 65535) that 'peqa eval' and\n"
    "'peqa finetune' read. The whole file is one document. The output is written atomically.\n"
    "\n"
    "options:\n"
    "  --input FILE       the text ('-' = standard input) (required)\n"
    "  -o, --output FILE  the shard to write (required)\n"
    "  --tokenizer FILE   llama2.c tokenizer.bin (every entry of the file is used), or 'byte'\n"
    "                     (default: the built-in byte tokenizer: ids 0-255 are the bytes, BOS 256,\n"
    "                     EOS 257)\n"
    "  --bos              put BOS in front (default: no)\n"
    "  --eos              put EOS at the end (default: no)\n"
    "\n"
    "example:\n"
    "  peqa tokenize --input tiny.txt -o tiny.bin --bos\n"
    "  peqa tokenize --input stories.txt -o stories.bin --tokenizer stories15M/tokenizer.bin\n";

int cmd_tokenize(int argc, char **argv)
{
    const char *in = NULL, *out = NULL, *tok_path = NULL;
    int bos = 0, eos = 0;
    cli_opt opts[] = {
        {"--input", CLI_STR, &in, 0, 0},     {"-o", CLI_STR, &out, 0, 0},      {"--output", CLI_STR, &out, 0, 0},
        {"--tokenizer", CLI_STR, &tok_path, 0, 0}, {"--bos", CLI_FLAG, &bos, 0, 0}, {"--eos", CLI_FLAG, &eos, 0, 0},
    };
    peqa_ctx_options co = {0};
    cli_parse("tokenize", argc, argv, opts, (int)(sizeof opts / sizeof opts[0]), &co, tokenize_help);
    need("tokenize", in, "--input", "TEXT_FILE");
    need("tokenize", out, "-o", "OUT.bin");
    if (tok_path && !*tok_path) usage_die("tokenize", "--tokenizer needs a file name (or 'byte')");
    cli_tok tk;
    if (!tok_path || !strcmp(tok_path, "byte")) tok_byte(&tk);
    else tok_l2c(&tk, tok_path, 0);
    size_t len;
    char *text = read_all(in, &len);
    if (tk.l2c && len > PEQA_L2C_MAX_ENCODE)
        cli_die("%s: %zu bytes: the llama2.c tokenizer encodes at most %zu bytes at once; split the file", in, len,
                PEQA_L2C_MAX_ENCODE);
    uint32_t *toks = NULL;
    size_t n = 0;
    tok_encode(&tk, text, len, (bos ? PEQA_TOK_ADD_BOS : 0) | (eos ? PEQA_TOK_ADD_EOS : 0), &toks, &n);
    if (n == 0) cli_die("%s: empty input: no tokens to write (use --bos or --eos to write those alone)", in);
    peqa_status st = peqa_shard_write(out, toks, n, 0);
    if (st) cli_die_status("cannot write the shard", st);
    uint32_t maxid = 0;
    for (size_t i = 0; i < n; i++)
        if (toks[i] > maxid) maxid = toks[i];
    printf("wrote %s: %zu tokens (%s, largest id %u) from %zu bytes of %s with %s\n", out, n,
           maxid > 65535 ? "uint32" : "uint16", maxid, len, strcmp(in, "-") ? in : "standard input", tk.path);
    free(text), free(toks);
    tok_free(&tk);
    return 0;
}

/* ---- convert -------------------------------------------------------------------------------- */

static const char convert_help[] =
    "usage: peqa convert --llama2c CKPT.bin -o DIR [--tokenizer tokenizer.bin]\n"
    "\n"
    "Converts a llama2.c checkpoint (version 0, as written by export.py --version 0 and read by\n"
    "run.c, e.g. stories15M.bin) into a Hugging Face model directory: DIR/model.safetensors (fp32,\n"
    "Hugging Face tensor names, q/k rows permuted from the Meta to the Hugging Face rotary layout)\n"
    "and DIR/config.json. DIR is created if missing; files are written atomically. The result\n"
    "loads in 'peqa eval', 'peqa generate', 'peqa quantize' and in transformers.\n"
    "\n"
    "options:\n"
    "  --llama2c FILE     the checkpoint (required)\n"
    "  -o, --output DIR   the output directory (required)\n"
    "  --tokenizer FILE   llama2.c tokenizer.bin: checked against the checkpoint's vocabulary and\n"
    "                     copied to DIR/tokenizer.bin, where 'peqa generate' finds it (default: none)\n"
    "\n"
    "example:\n"
    "  peqa convert --llama2c stories15M.bin --tokenizer tokenizer.bin -o stories15M\n"
    "  peqa generate --model stories15M --prompt 'Once upon a time'\n";

int cmd_convert(int argc, char **argv)
{
    const char *ckpt = NULL, *out = NULL, *tok_path = NULL;
    cli_opt opts[] = {
        {"--llama2c", CLI_STR, &ckpt, 0, 0},
        {"-o", CLI_STR, &out, 0, 0},
        {"--output", CLI_STR, &out, 0, 0},
        {"--tokenizer", CLI_STR, &tok_path, 0, 0},
    };
    peqa_ctx_options co = {0};
    cli_parse("convert", argc, argv, opts, (int)(sizeof opts / sizeof opts[0]), &co, convert_help);
    need("convert", ckpt, "--llama2c", "CKPT.bin");
    need("convert", out, "-o", "DIR");
    if (tok_path && !*tok_path) usage_die("convert", "--tokenizer needs a file name");
    peqa_l2c_config lc;
    peqa_status st = peqa_l2c_read_config(ckpt, &lc);
    if (st) cli_die_status("cannot read the checkpoint", st);
    /* Check the tokenizer before writing anything. */
    cli_tok tk = {0};
    char *tok_bytes = NULL;
    size_t tok_len = 0;
    if (tok_path) {
        tok_l2c(&tk, tok_path, lc.vocab_size);
        tok_bytes = read_all(tok_path, &tok_len);
    }
    double t0 = cli_now();
    if ((st = peqa_l2c_convert_dir(ckpt, out))) cli_die_status("conversion failed", st);
    if (tok_path) {
        char *dst = join_path(out, "tokenizer.bin");
        if ((st = peqa_write_file_atomic(dst, tok_bytes, tok_len))) cli_die_status("cannot copy the tokenizer", st);
        free(dst);
    }
    char sb[32];
    fmt_secs(cli_now() - t0, sb, sizeof sb);
    printf("converted %s -> %s/model.safetensors + config.json (%lld layers, hidden %lld, ffn %lld, %lld heads, "
           "%lld kv heads, vocab %lld, %s classifier, max %lld positions) in %s\n",
           ckpt, out, (long long)lc.n_layers, (long long)lc.dim, (long long)lc.hidden_dim, (long long)lc.n_heads,
           (long long)lc.n_kv_heads, (long long)lc.vocab_size, lc.shared_classifier ? "shared" : "separate",
           (long long)lc.seq_len, sb);
    if (tok_path)
        printf("copied the tokenizer %s (%u tokens) -> %s/tokenizer.bin\n", tok_path, tk.vocab, out);
    else
        printf("no tokenizer given: generate and tokenize need --tokenizer (llama2.c's tokenizer.bin); or pass it "
               "here with --tokenizer to copy it next to the model\n");
    free(tok_bytes);
    tok_free(&tk);
    return 0;
}

/* ---- info MODEL ----------------------------------------------------------------------------- */

static const char info_help[] =
    "usage: peqa info MODEL [--isa NAME] [--threads N]\n"
    "\n"
    "Describes a model: its configuration, parameter counts (total, per linear kind), the bytes\n"
    "of its weights, whether the linears are quantized (bits, group size), and the activation\n"
    "memory that training keeps per token. (Without MODEL, 'peqa info' describes the CPU and the\n"
    "kernels instead.)\n"
    "\n"
    "MODEL is a model directory (config.json + model.safetensors) or a .safetensors /\n"
    "model.safetensors.index.json file with config.json beside it.\n"
    "\n"
    "example:\n"
    "  peqa info stories15M\n";

static const char *const lin_kind_name[PEQA_LIN_COUNT] = {"q_proj", "k_proj", "v_proj", "o_proj",
                                                          "gate_proj", "up_proj", "down_proj"};

static void print_count(const char *name, long long count, long long bytes, const char *note)
{
    printf("  %-22s %14lld %16lld%s%s\n", name, count, bytes, note ? "  " : "", note ? note : "");
}

static const char *rope_kind_name(peqa_rope_kind k)
{
    return k == PEQA_ROPE_LINEAR ? "linear" : k == PEQA_ROPE_LLAMA3 ? "llama3" : "default";
}

int cmd_info_model(int argc, char **argv)
{
    const char *path = argv[0];
    peqa_ctx_options co = {0};
    cli_parse("info", argc - 1, argv + 1, NULL, 0, &co, info_help);
    peqa_model *m = load_model(path);
    const peqa_model_config *c = &m->cfg;
    char fmtbuf[64];
    model_format(m, fmtbuf, sizeof fmtbuf);
    printf("model                    : %s\n", path);
    printf("weights                  : %s%s\n", fmtbuf,
           m->quantized ? " (linears; embeddings, norms and lm_head fp32)" : "");
    printf("hidden_size              : %lld\n", (long long)c->dim);
    printf("intermediate_size        : %lld\n", (long long)c->ffn);
    printf("num_hidden_layers        : %lld\n", (long long)c->n_layers);
    printf("num_attention_heads      : %lld\n", (long long)c->n_heads);
    printf("num_key_value_heads      : %lld%s\n", (long long)c->n_kv_heads,
           c->n_kv_heads < c->n_heads ? " (grouped-query attention)" : "");
    printf("head_dim                 : %lld\n", (long long)c->head_dim);
    printf("vocab_size               : %lld\n", (long long)c->vocab);
    printf("max_position_embeddings  : %lld\n", (long long)c->max_pos);
    printf("rms_norm_eps             : %g\n", c->norm_eps);
    printf("rope                     : theta %g, %s", c->rope_theta, rope_kind_name(c->rope_kind));
    if (c->rope_kind != PEQA_ROPE_DEFAULT) printf(" scaling, factor %g", c->rope_factor);
    printf("\n");
    printf("tie_word_embeddings      : %s\n", c->tie_embeddings ? "true" : "false");
    if (c->bos_token_id >= 0 || c->eos_token_id >= 0)
        printf("bos / eos token          : %lld / %lld\n", (long long)c->bos_token_id, (long long)c->eos_token_id);

    /* Parameter counts and bytes. */
    long long kind_n[PEQA_LIN_COUNT] = {0}, kind_b[PEQA_LIN_COUNT] = {0}, scales_n = 0;
    for (int64_t i = 0; i < peqa_model_linear_count(m); i++) {
        const peqa_model_linear *li = peqa_model_linear_at(m, i);
        const int j = (int)(i % PEQA_LIN_COUNT);
        kind_n[j] += (long long)(li->n * li->k);
        if (li->q) {
            peqa_qtensor_info qi;
            peqa_status st = peqa_qtensor_get_info(li->q, &qi);
            if (st) cli_die_status("cannot describe a quantized linear", st);
            kind_b[j] += (long long)(qi.packed_bytes + 2 * qi.scale_bytes);
            scales_n += (long long)(qi.scale_bytes / 4);
        } else {
            kind_b[j] += (long long)(li->n * li->k) * 4;
        }
    }
    const long long D = c->dim, V = c->vocab, L = c->n_layers;
    const long long embed = V * D, norms = (2 * L + 1) * D, head = c->tie_embeddings ? 0 : V * D;
    long long lin_n = 0, lin_b = 0;
    for (int j = 0; j < PEQA_LIN_COUNT; j++) lin_n += kind_n[j], lin_b += kind_b[j];
    const long long total_n = embed + norms + head + lin_n, total_b = 4 * (embed + norms + head) + lin_b;
    printf("\n  %-22s %14s %16s\n", "parameters", "count", "bytes");
    print_count("embed_tokens", embed, 4 * embed, NULL);
    for (int j = 0; j < PEQA_LIN_COUNT; j++) {
        char nm[40], note[64];
        snprintf(nm, sizeof nm, "%s (x%lld)", lin_kind_name[j], L);
        const peqa_model_linear *li = peqa_model_linear_at(m, j);
        snprintf(note, sizeof note, "[%lld, %lld] each", (long long)li->n, (long long)li->k);
        print_count(nm, kind_n[j], kind_b[j], note);
    }
    print_count("norms", norms, 4 * norms, NULL);
    print_count("lm_head", head, 4 * head, c->tie_embeddings ? "tied: the embedding matrix" : NULL);
    print_count("all linears", lin_n, lin_b, m->quantized ? "packed codes + scales + zero points" : NULL);
    print_count("total", total_n, total_b, NULL);
    if (m->quantized) {
        printf("  fp32 equivalent of the linears: %lld bytes (%.2fx smaller quantized)\n", 4 * lin_n,
               lin_b ? (double)(4 * lin_n) / (double)lin_b : 0.0);
        printf("  trainable (PEQA): the scales of the linears, %lld values (zero points: as many again)\n", scales_n);
    }

    const size_t per_layer = peqa_model_act_bytes_per_token_layer(c), once = peqa_model_act_bytes_per_token_once(c),
                 work = peqa_model_act_bytes_per_token_work(c);
    printf("\ntraining activations      : %zu bytes per token per layer (%lld layers: %lld bytes per token)\n",
           per_layer, L, (long long)per_layer * L);
    printf("                            + %zu bytes per token once (final norm, logits, loss)\n", once);
    printf("                            + %zu bytes per token of work buffers shared by the layers\n", work);
    const long long all = (long long)per_layer * L + (long long)once + (long long)work;
    const long long T = c->max_pos < 1024 ? c->max_pos : 1024;
    printf("                            = %lld bytes per token; %.1f MiB for one sequence of %lld tokens\n", all,
           (double)all * (double)T / 1048576.0, T);
    peqa_model_free(m);
    return 0;
}

/* ---- init-model (hidden developer command) -------------------------------------------------- */

static const char init_help[] =
    "usage: peqa init-model --dim D --layers L --heads H [--kv-heads K] --ffn F --vocab V\n"
    "                       [--max-pos P] [--seed S] [--std X] [--tie] -o DIR\n"
    "\n"
    "Developer command (not in 'peqa help'): writes a randomly initialised full-precision model\n"
    "(DIR/config.json + DIR/model.safetensors) for tests. Weights are uniform with standard\n"
    "deviation X from a seeded generator (the same seed gives the same file everywhere); norm\n"
    "weights are 1.\n"
    "\n"
    "options:\n"
    "  --dim D        hidden_size (required)\n"
    "  --layers L     num_hidden_layers (required)\n"
    "  --heads H      num_attention_heads; D/H must be even (required)\n"
    "  --kv-heads K   num_key_value_heads, dividing H (default H)\n"
    "  --ffn F        intermediate_size (required)\n"
    "  --vocab V      vocab_size (required; 258 for the byte tokenizer)\n"
    "  --max-pos P    max_position_embeddings (default 256)\n"
    "  --seed S       seed (default 1)\n"
    "  --std X        standard deviation of the weights (default 0.02)\n"
    "  --tie          tie the LM head to the embedding (default: separate)\n"
    "  -o DIR         output directory (required)\n"
    "\n"
    "example:\n"
    "  peqa init-model --dim 32 --layers 2 --heads 4 --kv-heads 2 --ffn 48 --vocab 258 -o tiny\n";

int cmd_init_model(int argc, char **argv)
{
    int64_t dim = 0, layers = 0, heads = 0, kv = 0, ffn = 0, vocab = 0, max_pos = 256, seed = 1;
    double stdev = 0.02;
    int tie = 0;
    const char *out = NULL;
    cli_opt opts[] = {
        {"--dim", CLI_INT, &dim, 1, (double)PEQA_MODEL_MAX_DIM},
        {"--layers", CLI_INT, &layers, 1, PEQA_MODEL_MAX_LAYERS},
        {"--heads", CLI_INT, &heads, 1, PEQA_MODEL_MAX_HEADS},
        {"--kv-heads", CLI_INT, &kv, 1, PEQA_MODEL_MAX_HEADS},
        {"--ffn", CLI_INT, &ffn, 1, (double)PEQA_MODEL_MAX_FFN},
        {"--vocab", CLI_INT, &vocab, 1, (double)PEQA_MODEL_MAX_VOCAB},
        {"--max-pos", CLI_INT, &max_pos, 1, (double)PEQA_MODEL_MAX_POS},
        {"--seed", CLI_INT, &seed, 0, 9007199254740991.0},
        {"--std", CLI_FLOAT, &stdev, 1e-6, 100},
        {"--tie", CLI_FLAG, &tie, 0, 0},
        {"-o", CLI_STR, &out, 0, 0},
        {"--output", CLI_STR, &out, 0, 0},
    };
    peqa_ctx_options co = {0};
    cli_parse("init-model", argc, argv, opts, (int)(sizeof opts / sizeof opts[0]), &co, init_help);
    if (!dim) usage_die("init-model", "missing --dim D");
    if (!layers) usage_die("init-model", "missing --layers L");
    if (!heads) usage_die("init-model", "missing --heads H");
    if (!ffn) usage_die("init-model", "missing --ffn F");
    if (!vocab) usage_die("init-model", "missing --vocab V");
    need("init-model", out, "-o", "DIR");
    peqa_model_config cfg;
    peqa_status st = peqa_model_config_init(&cfg, dim, ffn, layers, heads, kv ? kv : heads, vocab, max_pos);
    if (st) cli_die_status("invalid model shape", st);
    cfg.tie_embeddings = tie;
    peqa_model *m = NULL;
    if ((st = peqa_model_create(&cfg, &m)) || (st = peqa_model_init_random(m, (uint64_t)seed, (float)stdev)))
        cli_die_status("cannot create the model", st);
    if ((st = peqa_model_save(m, out))) cli_die_status("cannot save the model", st);
    printf("wrote %s: random model, %lld layers, hidden %lld, ffn %lld, %lld heads (%lld kv), vocab %lld, seed %lld\n",
           out, (long long)layers, (long long)dim, (long long)ffn, (long long)heads, (long long)(kv ? kv : heads),
           (long long)vocab, (long long)seed);
    peqa_model_free(m);
    return 0;
}
