/* peqa CLI — quantize and finetune (the library does the work: src/qfile.h, src/train.h). */
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "cli.h"
#include "model.h"
#include "qfile.h"
#include "tokens.h"
#include "train.h"

/* ---- quantize ------------------------------------------------------------------------------------ */

static const char quantize_help[] =
    "usage: peqa quantize --model M -o Q [--bits B] [--group G] [--threads N] [--isa NAME]\n"
    "\n"
    "Round-to-nearest quantization (SPEC §3, the PEQA initialisation) of the seven linears of every\n"
    "block (q, k, v, o, gate, up, down) of a full-precision LLaMA model. Embeddings, norms and the\n"
    "LM head stay fp32. The output is one safetensors file: fp32 tensors under their Hugging Face\n"
    "names, and per linear <p>.qweight (packed codes, layout v1), <p>.scales and <p>.qzeros\n"
    "(fp32 [N, G]), with the configuration, bits, group size and a hash of the codes in its metadata.\n"
    "Every peqa command that takes --model accepts the result.\n"
    "\n"
    "options:\n"
    "  --model M      a Hugging Face checkpoint: a directory with config.json and model.safetensors\n"
    "                 (or a shard index), or a .safetensors file with config.json beside it\n"
    "  -o, --out Q    the quantized model file to write (atomically: Q.tmp, then renamed)\n"
    "  --bits B       2, 3, 4 or 8 (default 4)\n"
    "  --group G      32, 64, 128, 256 (any multiple of 32) or 'channel' (one scale per output row,\n"
    "                 the PEQA paper's main setting); default 128. A linear with fewer input\n"
    "                 columns than G is quantized per channel.\n";

int cmd_quantize(int argc, char **argv)
{
    const char *model = NULL, *out = NULL, *out2 = NULL, *group_s = "128";
    int64_t bits = 4;
    cli_opt opts[] = {
        {"--model", CLI_STR, &model, 0, 0}, {"-o", CLI_STR, &out, 0, 0},         {"--out", CLI_STR, &out2, 0, 0},
        {"--bits", CLI_INT, &bits, 2, 8},   {"--group", CLI_STR, &group_s, 0, 0},
    };
    peqa_ctx_options co = {0};
    cli_parse("quantize", argc, argv, opts, (int)(sizeof opts / sizeof opts[0]), &co, quantize_help);
    if (!out) out = out2;
    if (!model) cli_die("quantize: --model M is required (see 'peqa quantize --help')");
    if (!out) cli_die("quantize: -o Q (the output file) is required (see 'peqa quantize --help')");
    if (bits != 2 && bits != 3 && bits != 4 && bits != 8) cli_die("quantize: --bits %lld: expected 2, 3, 4 or 8", (long long)bits);
    int64_t group = 0;
    if (strcmp(group_s, "channel")) {
        char *end;
        long long g = strtoll(group_s, &end, 10);
        if (*end || end == group_s || g < 32 || g % 32 || g > (1 << 20))
            cli_die("quantize: --group '%.40s': expected a multiple of 32 (32, 64, 128, 256, ...) or 'channel'", group_s);
        group = g;
    }
    peqa_ctx *ctx = cli_ctx(&co);
    double t0 = cli_now();
    peqa_model *m = NULL;
    peqa_status st = peqa_model_open(model, &m);
    if (st) cli_die_status("cannot load the model", st);
    if (m->quantized) cli_die("quantize: %s is already quantized (%d-bit); quantize the full-precision model", model, m->bits);
    size_t fp_bytes = 0;
    for (int64_t i = 0; i < peqa_model_linear_count(m); i++) {
        peqa_model_linear *li = peqa_model_linear_at(m, i);
        fp_bytes += (size_t)(li->n * li->k) * 4;
    }
    double t1 = cli_now();
    if ((st = peqa_model_quantize(m, (int)bits, group))) cli_die_status("quantization failed", st);
    size_t packed = 0, sz = 0;
    for (int64_t i = 0; i < peqa_model_linear_count(m); i++) {
        peqa_qtensor_info in;
        peqa_qtensor_get_info(peqa_model_linear_at(m, i)->q, &in);
        packed += in.packed_bytes, sz += 2 * in.scale_bytes;
    }
    double t2 = cli_now();
    if ((st = peqa_qfile_save(m, out))) cli_die_status("cannot write the quantized model", st);
    uint64_t h = 0;
    char hex[17], gs[24];
    peqa_model_codes_hash(m, &h);
    peqa_hash_hex(h, hex);
    peqa_group_str(group, gs);
    printf("quantized %lld linears (%lld layers x 7) to %lld-bit, group %s (RTN)\n",
           (long long)peqa_model_linear_count(m), (long long)m->cfg.n_layers, (long long)bits, gs);
    printf("  linears: %.2f MB fp32 -> %.2f MB packed codes + %.2f MB scales and zero points\n", fp_bytes / 1e6,
           packed / 1e6, sz / 1e6);
    printf("  codes hash %s\n", hex);
    printf("  wrote %s (load %.2f s, quantize %.2f s, write %.2f s)\n", out, t1 - t0, t2 - t1, cli_now() - t2);
    peqa_model_free(m);
    peqa_ctx_free(ctx);
    return 0;
}

/* ---- finetune ---------------------------------------------------------------------------------------- */

static const char finetune_help[] =
    "usage: peqa finetune --model Q --data TRAIN -o TASK.scales [options]\n"
    "\n"
    "PEQA fine-tuning: trains only the scales of every quantized linear (optionally their zero\n"
    "points); the integer codes never change. The result is a scale file holding just those\n"
    "tensors and a hash of the codes they belong to; 'peqa eval/generate --model Q --scales\n"
    "TASK.scales' run the shared integer model with them.\n"
    "\n"
    "required:\n"
    "  --model Q          a quantized model file (peqa quantize)\n"
    "  --data TRAIN       training tokens: an llm.c shard (.bin with its header), or a text file\n"
    "                     (byte tokenizer, for byte-level models); see --format\n"
    "  -o, --out FILE     the scale file to write (with --full: a model directory)\n"
    "\n"
    "length (default: --epochs 1):\n"
    "  --steps N          optimizer steps\n"
    "  --epochs E         passes over the data: steps = ceil(E x windows / (batch x accum)), where\n"
    "                     the data is cut into windows of seq+1 tokens, shuffled every epoch\n"
    "batch:\n"
    "  --batch B          sequences per micro-batch (default 4)\n"
    "  --seq T            tokens per sequence (default min(256, max_position_embeddings))\n"
    "  --accum A          micro-batches accumulated per step (default 1): B x T x A tokens per step\n"
    "optimizer (AdamW, betas 0.9/0.999, eps 1e-8, on the fp32 scales themselves):\n"
    "  --lr LR            peak learning rate (default 2e-5; PEQA tunes it per model and bit width\n"
    "                     in about 6e-6 .. 1e-3 — small models and 2-3 bits want the upper end)\n"
    "  --schedule S       cosine (default), linear or constant decay after the warm-up\n"
    "  --warmup W         linear warm-up steps (default 3% of the steps)\n"
    "  --min-lr-ratio R   decay to LR x R (default 0)\n"
    "  --wd WD            decoupled weight decay on the scales (default 0)\n"
    "  --clip C           global gradient-norm clipping (default 1; 0 = off)\n"
    "  --seed S           data order (default 0); the same seed gives the same run bit for bit on\n"
    "                     every ISA and thread count\n"
    "  --train-zeros      also train the zero points (off by default, as in PEQA)\n"
    "validation and logging:\n"
    "  --val VAL          validation tokens: loss and perplexity before the first step, every\n"
    "                     --val-every steps, and after the last\n"
    "  --val-every N      (default 0: only before and after)\n"
    "  --val-tokens N     predict at most N validation tokens per pass (default: all)\n"
    "  --log FILE.jsonl   one JSON object per step, validation pass and checkpoint (appended to\n"
    "                     when resuming)\n"
    "  --format F         auto (default), shard, text or raw16 (headerless uint16), for --data\n"
    "                     and --val\n"
    "checkpoints (atomic: FILE.tmp, fsync, rename):\n"
    "  --ckpt FILE        where to write them (default: OUT.ckpt, removed after a completed run)\n"
    "  --ckpt-every N     every N steps (default 0: only when interrupted)\n"
    "  --resume CKPT      continue a run: same model and data; settings not given are taken from\n"
    "                     the checkpoint and settings given must match it. 5 + 5 steps give the\n"
    "                     same bits as 10.\n"
    "  --stop-after N     checkpoint and stop once N steps are done (split a run into sessions)\n"
    "  Ctrl-C (SIGINT) finishes the current step, writes the checkpoint and exits with status 130;\n"
    "  a second Ctrl-C kills at once.\n"
    "other:\n"
    "  --full             the model is full precision: train every weight (fp32 AdamW) and write\n"
    "                     a model directory to -o\n"
    "  --threads N, --isa NAME   as for every command (results do not depend on them)\n"
    "\n"
    "Progress goes to stderr: step/total, loss, learning rate, gradient norm, tokens/s, elapsed and\n"
    "remaining time. A non-finite loss or gradient stops the run with an error naming the step;\n"
    "the last checkpoint is left intact.\n";

static volatile sig_atomic_t g_stop;

static void on_sigint(int sig)
{
    (void)sig;
    g_stop = 1;
    signal(SIGINT, SIG_DFL); /* a second Ctrl-C terminates at once */
}

typedef struct {
    char header[2048];   /* printed when the run starts (after every check passed) */
    FILE *log;
    int tty;             /* stderr is a terminal: one progress line rewritten in place */
    int64_t every;       /* otherwise print every `every` steps */
    int line_open;       /* a \r progress line is on screen */
} progress;

static void fmt_hms(double s, char *buf, size_t n)
{
    if (!(s >= 0) || s > 1e8) s = 0;
    long t = (long)(s + 0.5);
    snprintf(buf, n, "%ld:%02ld:%02ld", t / 3600, t / 60 % 60, t % 60);
}

static void json_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') fprintf(f, "\\%c", c);
        else if (c < 0x20) fprintf(f, "\\u%04x", c);
        else fputc(c, f);
    }
    fputc('"', f);
}

static void hdr_add(progress *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void hdr_add(progress *p, const char *fmt, ...)
{
    size_t l = strlen(p->header);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->header + l, sizeof p->header - l, fmt, ap);
    va_end(ap);
}

/* Refuses up front (before any training) an output whose directory does not exist or is not
 * writable: the run's product would otherwise be lost at the end. */
static void check_dir_writable(const char *what, const char *path)
{
    const char *slash = strrchr(path, '/');
    char dir[4096];
    if (!slash) snprintf(dir, sizeof dir, ".");
    else if (slash == path) snprintf(dir, sizeof dir, "/");
    else snprintf(dir, sizeof dir, "%.*s", (int)(slash - path) < 4000 ? (int)(slash - path) : 4000, path);
    if (access(dir, W_OK | X_OK) != 0) cli_die("finetune: %s %s: cannot write into '%s': %s", what, path, dir, strerror(errno));
}

static void end_line(progress *p)
{
    if (p->line_open) fputc('\n', stderr), p->line_open = 0;
}

static int on_event(const peqa_train_event *ev, void *user)
{
    progress *p = user;
    char el[32], eta[32];
    fmt_hms(ev->elapsed_s, el, sizeof el);
    fmt_hms(ev->eta_s, eta, sizeof eta);
    if (ev->kind == PEQA_TRAIN_EV_START) {
        fputs(p->header, stderr);
    } else if (ev->kind == PEQA_TRAIN_EV_STEP) {
        if (p->log)
            fprintf(p->log,
                    "{\"event\":\"step\",\"step\":%lld,\"total\":%lld,\"loss\":%.9g,\"lr\":%.9g,\"grad_norm\":%.9g,"
                    "\"tokens\":%lld,\"epoch\":%.6f,\"tokens_per_s\":%.1f,\"elapsed_s\":%.3f,\"eta_s\":%.1f}\n",
                    (long long)ev->step, (long long)ev->total, (double)ev->loss, (double)ev->lr, (double)ev->grad_norm,
                    (long long)ev->tokens, ev->epoch, ev->tokens_per_s, ev->elapsed_s, ev->eta_s);
        int show = p->tty || ev->step == ev->total || ev->step % p->every == 0 || ev->step == 1;
        if (show) {
            fprintf(stderr, "%sstep %lld/%lld  loss %.4f  lr %.2e  |g| %.3g  %.0f tok/s  elapsed %s  eta %s%s",
                    p->tty ? "\r" : "", (long long)ev->step, (long long)ev->total, (double)ev->loss, (double)ev->lr,
                    (double)ev->grad_norm, ev->tokens_per_s, el, eta, p->tty ? "\033[K" : "\n");
            p->line_open = p->tty;
        }
    } else if (ev->kind == PEQA_TRAIN_EV_VAL) {
        end_line(p);
        fprintf(stderr, "val @ step %lld/%lld: loss %.4f  ppl %.3f  (%lld tokens)\n", (long long)ev->step,
                (long long)ev->total, (double)ev->val_loss, ev->val_ppl, (long long)ev->val_tokens);
        if (p->log)
            fprintf(p->log, "{\"event\":\"val\",\"step\":%lld,\"val_loss\":%.9g,\"val_ppl\":%.9g,\"val_tokens\":%lld}\n",
                    (long long)ev->step, (double)ev->val_loss, ev->val_ppl, (long long)ev->val_tokens);
    } else {
        if (p->log) {
            fprintf(p->log, "{\"event\":\"checkpoint\",\"step\":%lld,\"path\":", (long long)ev->step);
            json_str(p->log, ev->ckpt_path);
            fputs("}\n", p->log);
        }
        if (!p->tty) fprintf(stderr, "checkpoint @ step %lld: %s\n", (long long)ev->step, ev->ckpt_path);
    }
    if (p->log) fflush(p->log);
    return 0;
}

static peqa_data_format data_format(const char *s)
{
    if (!strcmp(s, "auto")) return PEQA_DATA_AUTO;
    if (!strcmp(s, "shard")) return PEQA_DATA_SHARD;
    if (!strcmp(s, "text")) return PEQA_DATA_TEXT;
    if (!strcmp(s, "raw16")) return PEQA_DATA_RAW_U16;
    cli_die("finetune: --format '%.40s': expected auto, shard, text or raw16", s);
}

int cmd_finetune(int argc, char **argv)
{
    const char *model = NULL, *data = NULL, *val = NULL, *out = NULL, *out2 = NULL, *log = NULL, *ckpt = NULL,
               *resume = NULL, *sched_s = NULL, *fmt_s = "auto";
    /* -1 / NaN: not given (a resumed run then takes the checkpoint's value) */
    int64_t steps = -1, batch = -1, seq = -1, accum = -1, warmup = -1, seed = -1, val_every = 0, val_tokens = 0,
            ckpt_every = 0, stop_after = 0;
    double epochs = NAN, lr = NAN, wd = NAN, clip = NAN, minr = NAN;
    int train_zeros = 0, full = 0;
    cli_opt opts[] = {
        {"--model", CLI_STR, &model, 0, 0},
        {"--data", CLI_STR, &data, 0, 0},
        {"--val", CLI_STR, &val, 0, 0},
        {"-o", CLI_STR, &out, 0, 0},
        {"--out", CLI_STR, &out2, 0, 0},
        {"--steps", CLI_INT, &steps, 1, 1e12},
        {"--epochs", CLI_FLOAT, &epochs, 1e-9, 1e6},
        {"--batch", CLI_INT, &batch, 1, 1 << 20},
        {"--seq", CLI_INT, &seq, 1, 1 << 24},
        {"--accum", CLI_INT, &accum, 1, 1 << 20},
        {"--lr", CLI_FLOAT, &lr, 0, 1e30},
        {"--wd", CLI_FLOAT, &wd, 0, 1e6},
        {"--warmup", CLI_INT, &warmup, 0, 1e12},
        {"--schedule", CLI_STR, &sched_s, 0, 0},
        {"--min-lr-ratio", CLI_FLOAT, &minr, 0, 1},
        {"--clip", CLI_FLOAT, &clip, 0, 1e30},
        {"--seed", CLI_INT, &seed, 0, 9007199254740991.0},
        {"--train-zeros", CLI_FLAG, &train_zeros, 0, 0},
        {"--log", CLI_STR, &log, 0, 0},
        {"--val-every", CLI_INT, &val_every, 0, 1e12},
        {"--val-tokens", CLI_INT, &val_tokens, 1, 9007199254740991.0},
        {"--ckpt", CLI_STR, &ckpt, 0, 0},
        {"--ckpt-every", CLI_INT, &ckpt_every, 0, 1e12},
        {"--resume", CLI_STR, &resume, 0, 0},
        {"--stop-after", CLI_INT, &stop_after, 1, 1e12},
        {"--format", CLI_STR, &fmt_s, 0, 0},
        {"--full", CLI_FLAG, &full, 0, 0},
    };
    peqa_ctx_options co = {0};
    cli_parse("finetune", argc, argv, opts, (int)(sizeof opts / sizeof opts[0]), &co, finetune_help);
    if (!out) out = out2;
    if (!model) cli_die("finetune: --model Q is required (see 'peqa finetune --help')");
    if (!data) cli_die("finetune: --data TRAIN is required (see 'peqa finetune --help')");
    if (!out) cli_die("finetune: -o FILE (the scale file to write) is required (see 'peqa finetune --help')");
    if (steps >= 0 && !isnan(epochs)) cli_die("finetune: give --steps or --epochs, not both");
    if (val_every > 0 && !val) cli_die("finetune: --val-every needs --val");
    int sched = -1;
    if (sched_s && (sched = peqa_sched_from_name(sched_s)) < 0)
        cli_die("finetune: --schedule '%.40s': expected cosine, linear or constant", sched_s);
    const peqa_data_format fmt = data_format(fmt_s);

    peqa_ctx *ctx = cli_ctx(&co);
    peqa_model *m = NULL;
    peqa_status st = peqa_model_open(model, &m);
    if (st) cli_die_status("cannot load the model", st);
    if (!m->quantized && !full)
        cli_die("finetune: %s is a full-precision model: quantize it first ('peqa quantize'), or pass --full to train every weight",
                model);
    if (m->quantized && full) cli_die("finetune: --full trains a full-precision model, but %s is quantized", model);

    /* options: defaults, or the checkpoint's values when resuming */
    peqa_train_options o;
    peqa_train_options_default(&o);
    o.seq = m->cfg.max_pos < 256 ? m->cfg.max_pos : 256;
    int64_t resumed_at = 0;
    if (resume) {
        if ((st = peqa_train_ckpt_options(resume, &o, &resumed_at))) cli_die_status("cannot resume", st);
        o.epochs = 0; /* the checkpoint's step count is the run's */
    }
    if (steps >= 0) o.steps = steps;
    if (!isnan(epochs)) o.steps = 0, o.epochs = epochs;
    if (batch >= 0) o.batch = batch;
    if (seq >= 0) o.seq = seq;
    if (accum >= 0) o.accum = accum;
    if (warmup >= 0) o.warmup = warmup;
    if (seed >= 0) o.seed = (uint64_t)seed;
    if (sched >= 0) o.schedule = (peqa_sched_kind)sched;
    if (!isnan(lr)) o.lr = (float)lr;
    if (!isnan(wd)) o.weight_decay = (float)wd;
    if (!isnan(clip)) o.clip = (float)clip;
    if (!isnan(minr)) o.min_lr_ratio = (float)minr;
    if (train_zeros) o.train_zeros = 1;
    if (seq > m->cfg.max_pos)
        cli_die("finetune: --seq %lld is longer than the model's max_position_embeddings = %lld", (long long)seq,
                (long long)m->cfg.max_pos);

    uint32_t *tr = NULL, *va = NULL;
    size_t ntr = 0, nva = 0;
    if ((st = peqa_dataset_load(data, fmt, 0, &tr, &ntr, NULL))) cli_die_status("cannot read the training data", st);
    if ((st = peqa_tokens_check_vocab(data, tr, ntr, (uint32_t)m->cfg.vocab))) cli_die_status("the training data does not fit the model", st);
    if (val) {
        if ((st = peqa_dataset_load(val, fmt, 0, &va, &nva, NULL))) cli_die_status("cannot read the validation data", st);
        if ((st = peqa_tokens_check_vocab(val, va, nva, (uint32_t)m->cfg.vocab)))
            cli_die_status("the validation data does not fit the model", st);
        if (nva < 2) cli_die("finetune: %s: %zu token: validation needs at least 2", val, nva);
    }
    int64_t total = 0, wu = 0, windows = 0;
    if ((st = peqa_train_plan(&o, m, ntr, &total, &wu, &windows))) cli_die_status("invalid settings", st);

    /* checkpoint path: --ckpt, else OUT.ckpt (removed after a completed run) */
    char *auto_ckpt = NULL;
    if (!ckpt) {
        size_t l = strlen(out);
        auto_ckpt = malloc(l + 6);
        if (!auto_ckpt) cli_die("out of memory");
        memcpy(auto_ckpt, out, l);
        memcpy(auto_ckpt + l, ".ckpt", 6);
        ckpt = auto_ckpt;
    }
    check_dir_writable("-o", out);
    check_dir_writable("--ckpt", ckpt);
    o.ckpt_path = ckpt, o.ckpt_every = ckpt_every, o.resume = resume, o.stop_after = stop_after;
    o.val_every = val_every, o.val_max_tokens = val_tokens;
    o.stop = &g_stop;

    progress pr = {.tty = isatty(2), .every = total <= 200 ? 1 : (total + 99) / 100};
    if (log && !(pr.log = fopen(log, resume ? "a" : "w"))) cli_die("%s: cannot open the log: %s", log, strerror(errno));
    o.callback = on_event, o.user = &pr;

    /* what is about to happen */
    size_t trainable = 0;
    const int tz = m->quantized && o.train_zeros;
    for (int64_t i = 0; i < peqa_model_param_count(m, tz); i++) {
        peqa_model_param p;
        peqa_model_param_at(m, tz, i, NULL, &p);
        trainable += (size_t)p.numel;
    }
    char gs[24];
    peqa_group_str(m->group, gs);
    if (m->quantized)
        hdr_add(&pr, "peqa finetune: %s (%d-bit, group %s), %lld layers; training %s: %zu values (%.2f MB with AdamW state)\n",
                model, m->bits, gs, (long long)m->cfg.n_layers, tz ? "scales and zero points" : "scales", trainable,
                trainable * 12.0 / 1e6);
    else
        hdr_add(&pr, "peqa finetune: %s (full precision), %lld layers; training every weight: %zu values (%.2f MB with AdamW state)\n",
                model, (long long)m->cfg.n_layers, trainable, trainable * 12.0 / 1e6);
    hdr_add(&pr, "  data %s: %zu tokens, %lld windows of %lld+1; %lld steps of %lld x %lld x %lld tokens (%.2f epochs)\n", data,
            ntr, (long long)windows, (long long)o.seq, (long long)total, (long long)o.batch, (long long)o.seq, (long long)o.accum,
            (double)(total * o.batch * o.accum) / (double)windows);
    hdr_add(&pr, "  AdamW lr %g, %s schedule, warm-up %lld, min ratio %g, wd %g, clip %g, seed %llu; %s, %d threads%s%s\n",
            (double)o.lr, peqa_sched_name(o.schedule), (long long)wu, (double)o.min_lr_ratio, (double)o.weight_decay,
            (double)o.clip, (unsigned long long)o.seed, peqa_ctx_isa(ctx), peqa_ctx_threads(ctx), resume ? "; resuming from " : "",
            resume ? resume : "");

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigint;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);

    peqa_train_result res;
    st = peqa_train(ctx, m, tr, ntr, va, nva, &o, &res);
    signal(SIGINT, SIG_DFL);
    end_line(&pr);
    if (pr.log) fclose(pr.log);
    if (st == PEQA_ERR_NONFINITE) cli_die("finetune: training stopped: %s", peqa_last_error());
    if (st) cli_die_status("training failed", st);
    if (res.stopped) {
        const int by_signal = g_stop != 0;
        fprintf(stderr, "peqa: finetune: %s at step %lld/%lld; checkpoint written to %s; continue with --resume %s\n",
                by_signal ? "interrupted" : "stopped as asked (--stop-after)", (long long)res.steps_done,
                (long long)res.total_steps, ckpt, ckpt);
        free(auto_ckpt);
        free(tr), free(va);
        peqa_model_free(m);
        peqa_ctx_free(ctx);
        return by_signal ? 130 : 0;
    }

    /* the product */
    if (m->quantized) {
        char steps_s[32], loss_s[48], val_s[48], tok_s[32];
        snprintf(steps_s, sizeof steps_s, "%lld", (long long)res.steps_done);
        snprintf(loss_s, sizeof loss_s, "%.9g", (double)res.last_loss);
        snprintf(val_s, sizeof val_s, "%.9g", (double)res.val_loss);
        snprintf(tok_s, sizeof tok_s, "%lld", (long long)res.tokens);
        const char *meta[] = {"peqa.train.steps", steps_s, "peqa.train.loss", loss_s, "peqa.train.tokens", tok_s,
                              res.has_val ? "peqa.train.val_loss" : NULL, val_s, NULL};
        if ((st = peqa_scales_save(m, tz, out, meta))) cli_die_status("cannot write the scale file", st);
    } else if ((st = peqa_model_save(m, out))) {
        cli_die_status("cannot write the model", st);
    }
    if (auto_ckpt) unlink(auto_ckpt); /* the run is complete: its safety checkpoint is no longer needed */
    printf("finetune: %lld steps, final loss %.4f", (long long)res.steps_done, (double)res.last_loss);
    if (res.has_val) printf(", validation loss %.4f (perplexity %.3f)", (double)res.val_loss, res.val_ppl);
    printf("; %.0f tokens/s, %.1f s\n", res.tokens_per_s, res.elapsed_s);
    printf("wrote %s (%s)\n", out, m->quantized ? (tz ? "scales and zero points" : "scales") : "model directory");
    free(auto_ckpt);
    free(tr), free(va);
    peqa_model_free(m);
    peqa_ctx_free(ctx);
    return 0;
}
