/* The fine-tuning loop: sampler, AdamW steps, validation, checkpoints and resume (see train.h
 * for the exact step sequence and the checkpoint format). */
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "internal.h"
#include "qfile.h"
#include "safetensors.h"
#include "tokens.h"
#include "train.h"

#define TRY(expr)                                                                                  \
    do {                                                                                           \
        peqa_status st_ = (expr);                                                                  \
        if (st_ != PEQA_OK) return st_;                                                            \
    } while (0)

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* ---- the data-order PRNG: splitmix64 seeding xoshiro256** (integer arithmetic only) ---------- */

static uint64_t splitmix(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

static uint64_t xnext(uint64_t s[4])
{
    const uint64_t out = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0], s[3] ^= s[1], s[1] ^= s[2], s[0] ^= s[3], s[2] ^= t, s[3] = rotl(s[3], 45);
    return out;
}

/* Uniform in [0, n), n >= 1, by rejection: accept r >= 2^64 mod n, so that the accepted range
 * holds a whole number of copies of [0, n). */
static uint64_t xbelow(uint64_t s[4], uint64_t n)
{
    const uint64_t lim = (0 - n) % n;
    for (;;) {
        const uint64_t r = xnext(s);
        if (r >= lim) return r % n;
    }
}

/* ---- sampler (train.h: data order) ------------------------------------------------------------ */

typedef struct {
    uint64_t rng[4];       /* current state */
    uint64_t epoch_rng[4]; /* state when the current epoch started */
    int64_t epoch;         /* current epoch, -1 before the first */
    int64_t pos;           /* windows consumed in it */
    int64_t W, T, slack, offset;
    uint32_t *perm;
} sampler;

static void sampler_start_epoch(sampler *s)
{
    memcpy(s->epoch_rng, s->rng, sizeof s->rng);
    s->epoch++;
    s->offset = (int64_t)xbelow(s->rng, (uint64_t)s->slack + 1);
    for (int64_t i = 0; i < s->W; i++) s->perm[i] = (uint32_t)i;
    for (int64_t i = s->W - 1; i >= 1; i--) {
        const int64_t j = (int64_t)xbelow(s->rng, (uint64_t)i + 1);
        const uint32_t t = s->perm[i];
        s->perm[i] = s->perm[j], s->perm[j] = t;
    }
    s->pos = 0;
}

/* Start token of the next window. */
static int64_t sampler_next(sampler *s)
{
    if (s->epoch < 0 || s->pos == s->W) sampler_start_epoch(s);
    return s->offset + (int64_t)s->perm[s->pos++] * s->T;
}

/* ---- metadata text ---------------------------------------------------------------------------- */

static void fmt_f32(char *buf, size_t n, float f) { snprintf(buf, n, "%a", (double)f); }

static int parse_f32(const char *s, float *out)
{
    if (!s || !*s) return 0;
    char *end;
    const double d = strtod(s, &end);
    if (*end || end == s || !isfinite(d) || (double)(float)d != d) return 0;
    *out = (float)d;
    return 1;
}

static void fmt_rng(char *buf, size_t n, const uint64_t s[4])
{
    snprintf(buf, n, "%016llx,%016llx,%016llx,%016llx", (unsigned long long)s[0], (unsigned long long)s[1],
             (unsigned long long)s[2], (unsigned long long)s[3]);
}

static int parse_rng(const char *s, uint64_t out[4])
{
    if (!s) return 0;
    for (int i = 0; i < 4; i++) {
        uint64_t v = 0;
        for (int d = 0; d < 16; d++, s++) {
            const char c = *s;
            const int x = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
            if (x < 0) return 0;
            v = v << 4 | (uint64_t)x;
        }
        out[i] = v;
        if (*s != (i < 3 ? ',' : '\0')) return 0;
        if (i < 3) s++;
    }
    return 1;
}

static int parse_u64(const char *s, uint64_t *out)
{
    if (!s || !*s) return 0;
    uint64_t v = 0;
    for (; *s; s++) {
        if (*s < '0' || *s > '9') return 0;
        if (v > (UINT64_MAX - 9) / 10) return 0;
        v = v * 10 + (uint64_t)(*s - '0');
    }
    *out = v;
    return 1;
}

const char *peqa_sched_name(peqa_sched_kind k)
{
    return k == PEQA_SCHED_COSINE ? "cosine" : k == PEQA_SCHED_LINEAR ? "linear" : k == PEQA_SCHED_CONSTANT ? "constant" : "?";
}

int peqa_sched_from_name(const char *s)
{
    if (!s) return -1;
    if (!strcmp(s, "cosine")) return PEQA_SCHED_COSINE;
    if (!strcmp(s, "linear")) return PEQA_SCHED_LINEAR;
    if (!strcmp(s, "constant")) return PEQA_SCHED_CONSTANT;
    return -1;
}

/* ---- options ------------------------------------------------------------------------------------ */

void peqa_train_options_default(peqa_train_options *o)
{
    memset(o, 0, sizeof *o);
    o->batch = 4, o->seq = 256, o->accum = 1, o->steps = 0, o->epochs = 1.0;
    o->lr = 2e-5f, o->min_lr_ratio = 0.0f, o->schedule = PEQA_SCHED_COSINE, o->warmup = -1;
    o->weight_decay = 0.0f, o->clip = 1.0f, o->beta1 = 0.9f, o->beta2 = 0.999f, o->eps = 1e-8f;
}

/* The hyperparameters a checkpoint records and a resume must match: in the options with steps
 * and warmup resolved. */
enum { HP_I64, HP_U64, HP_INT, HP_F32, HP_SCHED };
static const struct {
    const char *key, *option; /* metadata key suffix, CLI option for messages */
    int kind;
    size_t off;
} hp_table[] = {
    {"batch", "--batch", HP_I64, offsetof(peqa_train_options, batch)},
    {"seq", "--seq", HP_I64, offsetof(peqa_train_options, seq)},
    {"accum", "--accum", HP_I64, offsetof(peqa_train_options, accum)},
    {"steps", "--steps/--epochs (total steps)", HP_I64, offsetof(peqa_train_options, steps)},
    {"warmup", "--warmup", HP_I64, offsetof(peqa_train_options, warmup)},
    {"seed", "--seed", HP_U64, offsetof(peqa_train_options, seed)},
    {"train_zeros", "--train-zeros", HP_INT, offsetof(peqa_train_options, train_zeros)},
    {"schedule", "--schedule", HP_SCHED, offsetof(peqa_train_options, schedule)},
    {"lr", "--lr", HP_F32, offsetof(peqa_train_options, lr)},
    {"min_lr_ratio", "--min-lr-ratio", HP_F32, offsetof(peqa_train_options, min_lr_ratio)},
    {"weight_decay", "--wd", HP_F32, offsetof(peqa_train_options, weight_decay)},
    {"clip", "--clip", HP_F32, offsetof(peqa_train_options, clip)},
    {"beta1", "beta1", HP_F32, offsetof(peqa_train_options, beta1)},
    {"beta2", "beta2", HP_F32, offsetof(peqa_train_options, beta2)},
    {"eps", "eps", HP_F32, offsetof(peqa_train_options, eps)},
};
#define HP_COUNT (sizeof hp_table / sizeof hp_table[0])

static void hp_format(const peqa_train_options *o, size_t i, char *buf, size_t n)
{
    const char *p = (const char *)o + hp_table[i].off;
    switch (hp_table[i].kind) {
    case HP_I64: snprintf(buf, n, "%lld", (long long)*(const int64_t *)(const void *)p); break;
    case HP_U64: snprintf(buf, n, "%llu", (unsigned long long)*(const uint64_t *)(const void *)p); break;
    case HP_INT: snprintf(buf, n, "%d", *(const int *)(const void *)p); break;
    case HP_SCHED: snprintf(buf, n, "%s", peqa_sched_name(*(const peqa_sched_kind *)(const void *)p)); break;
    default: fmt_f32(buf, n, *(const float *)(const void *)p); break;
    }
}

/* Parses value into field i of o; 0 if malformed. */
static int hp_parse(peqa_train_options *o, size_t i, const char *v)
{
    char *p = (char *)o + hp_table[i].off;
    int64_t x;
    uint64_t u;
    switch (hp_table[i].kind) {
    case HP_I64:
        if (!peqa_meta_int(v, -1, INT64_MAX, &x)) return 0;
        *(int64_t *)(void *)p = x;
        return 1;
    case HP_U64:
        if (!parse_u64(v, &u)) return 0;
        *(uint64_t *)(void *)p = u;
        return 1;
    case HP_INT:
        if (!peqa_meta_int(v, 0, 1, &x)) return 0;
        *(int *)(void *)p = (int)x;
        return 1;
    case HP_SCHED: {
        const int k = peqa_sched_from_name(v);
        if (k < 0) return 0;
        *(peqa_sched_kind *)(void *)p = (peqa_sched_kind)k;
        return 1;
    }
    default: return parse_f32(v, (float *)(void *)p);
    }
}

static int64_t windows_of(size_t ntrain, int64_t T) { return ntrain >= 2 ? (int64_t)((ntrain - 1) / (size_t)T) : 0; }

peqa_status peqa_train_plan(const peqa_train_options *o, const peqa_model *m, size_t ntrain, int64_t *total,
                            int64_t *warmup, int64_t *windows)
{
    static const char fn[] = "train";
    if (!o || !m) return peqa__fail(PEQA_ERR_NULL, "peqa_train_plan: NULL argument");
    const int64_t lim = (int64_t)1 << 20;
    if (o->batch < 1 || o->batch > lim) return peqa__fail(PEQA_ERR_ARG, "%s: batch = %lld: expected 1 .. %lld", fn, (long long)o->batch, (long long)lim);
    if (o->accum < 1 || o->accum > lim) return peqa__fail(PEQA_ERR_ARG, "%s: accum = %lld: expected 1 .. %lld", fn, (long long)o->accum, (long long)lim);
    if (o->seq < 1 || o->seq > m->cfg.max_pos)
        return peqa__fail(PEQA_ERR_ARG, "%s: seq = %lld: expected 1 .. max_position_embeddings = %lld", fn, (long long)o->seq,
                          (long long)m->cfg.max_pos);
    if (o->batch * o->seq > ((int64_t)1 << 32))
        return peqa__fail(PEQA_ERR_ARG, "%s: batch x seq = %lld tokens per micro-batch is too many", fn, (long long)(o->batch * o->seq));
    if (!(isfinite(o->lr) && o->lr >= 0.0f)) return peqa__fail(PEQA_ERR_ARG, "%s: lr = %g: expected a finite value >= 0", fn, (double)o->lr);
    if (!(o->min_lr_ratio >= 0.0f && o->min_lr_ratio <= 1.0f))
        return peqa__fail(PEQA_ERR_ARG, "%s: min_lr_ratio = %g: expected 0 .. 1", fn, (double)o->min_lr_ratio);
    if (!(isfinite(o->weight_decay) && o->weight_decay >= 0.0f))
        return peqa__fail(PEQA_ERR_ARG, "%s: weight decay = %g: expected a finite value >= 0", fn, (double)o->weight_decay);
    if (!(isfinite(o->clip) && o->clip >= 0.0f))
        return peqa__fail(PEQA_ERR_ARG, "%s: clip = %g: expected a finite value >= 0 (0 = off)", fn, (double)o->clip);
    peqa_adamw a;
    TRY(peqa_adamw_init(&a, o->beta1, o->beta2, o->eps));
    if (peqa_sched_name(o->schedule)[0] == '?') return peqa__fail(PEQA_ERR_ARG, "%s: unknown schedule %d", fn, (int)o->schedule);
    if (o->val_every < 0 || o->ckpt_every < 0 || o->stop_after < 0 || o->val_max_tokens < 0)
        return peqa__fail(PEQA_ERR_ARG, "%s: val_every, val_max_tokens, ckpt_every and stop_after must be >= 0", fn);
    if ((o->ckpt_every > 0 || o->ckpt_final) && !o->ckpt_path)
        return peqa__fail(PEQA_ERR_ARG, "%s: checkpoints requested but no checkpoint path given", fn);
    if (ntrain < (size_t)o->seq + 1)
        return peqa__fail(PEQA_ERR_ARG, "%s: the training data has %zu tokens: sequences of %lld need at least %lld", fn, ntrain,
                          (long long)o->seq, (long long)o->seq + 1);
    const int64_t W = windows_of(ntrain, o->seq);
    if ((uint64_t)W > UINT32_MAX)
        return peqa__fail(PEQA_ERR_ARG, "%s: %lld windows per epoch: more than 2^32 - 1 (use a longer --seq or split the data)", fn,
                          (long long)W);
    int64_t n = o->steps;
    const double per = (double)o->batch * (double)o->accum;
    if (n < 0) return peqa__fail(PEQA_ERR_ARG, "%s: steps = %lld: expected >= 1 (or 0 to use epochs)", fn, (long long)n);
    if (n == 0) {
        if (!(isfinite(o->epochs) && o->epochs > 0.0 && o->epochs <= 1e6))
            return peqa__fail(PEQA_ERR_ARG, "%s: epochs = %g: expected a number in (0, 1e6]", fn, o->epochs);
        const double x = o->epochs * (double)W / per;
        if (!(x <= 1e12)) return peqa__fail(PEQA_ERR_ARG, "%s: %g steps is too many", fn, x);
        n = (int64_t)x;
        if ((double)n < x) n++;
        if (n < 1) n = 1;
    }
    if (n > (int64_t)1e12) return peqa__fail(PEQA_ERR_ARG, "%s: steps = %lld is too many", fn, (long long)n);
    if (total) *total = n;
    if (warmup) *warmup = o->warmup >= 0 ? o->warmup : n * 3 / 100;
    if (windows) *windows = W;
    return PEQA_OK;
}

/* ---- the run's state ------------------------------------------------------------------------------ */

typedef struct {
    peqa_ctx *ctx;
    peqa_model *m;
    peqa_train_options R; /* options with steps = total and warmup resolved, train_zeros normalised */
    const uint32_t *train, *val;
    size_t ntrain, nval;
    uint64_t data_hash;
    int64_t total, step, B, T, A, np;
    peqa_model_param *params; /* np trainable tensors with their gradient pointers */
    peqa_model_grads *g;
    float *mom_m, *mom_v; /* AdamW moments, laid out like g->block */
    float *snap;          /* quantized: the current values of every trainable tensor (g->total), for checkpoints */
    float *tmp;           /* quantized: one tensor's values during its update */
    peqa_adamw opt;
    sampler smp;
    peqa_model_cache *cache;
    int32_t *tok, *tgt;
    float *vlosses;
    float last_loss;
    int64_t last_ckpt_step; /* -1: none written */
    const char *last_ckpt_path;
    char *cfg_json;
    uint64_t codes_hash;
} tstate;

static size_t param_off(const tstate *S, int64_t i) { return (size_t)(S->g->g[i] - S->g->block); }

static void state_free(tstate *S)
{
    free(S->params);
    peqa_model_grads_free(S->g);
    free(S->mom_m), free(S->mom_v), free(S->snap), free(S->tmp);
    free(S->smp.perm);
    peqa_model_cache_free(S->cache);
    free(S->tok), free(S->tgt), free(S->vlosses);
    free(S->cfg_json);
}

static uint64_t tokens_hash(const uint32_t *t, size_t n)
{
    uint64_t h = PEQA_FNV_OFFSET;
    for (size_t i = 0; i < n; i++) {
        const unsigned char b[4] = {(unsigned char)t[i], (unsigned char)(t[i] >> 8), (unsigned char)(t[i] >> 16),
                                    (unsigned char)(t[i] >> 24)};
        h = peqa_fnv1a64(h, b, 4);
    }
    return h;
}

static peqa_status state_init(tstate *S)
{
    peqa_model *m = S->m;
    const int tz = S->R.train_zeros;
    TRY(peqa_model_grads_create(m, tz, &S->g));
    S->np = peqa_model_param_count(m, tz);
    S->params = calloc((size_t)S->np, sizeof *S->params);
    if (!S->params) return peqa__fail(PEQA_ERR_NOMEM, "train: out of memory");
    size_t maxn = 1;
    for (int64_t i = 0; i < S->np; i++) {
        TRY(peqa_model_param_at(m, tz, i, S->g, &S->params[i]));
        if ((size_t)S->params[i].numel > maxn) maxn = (size_t)S->params[i].numel;
    }
    const size_t total = S->g->total ? S->g->total : 1;
    S->mom_m = calloc(total, sizeof(float));
    S->mom_v = calloc(total, sizeof(float));
    if (m->quantized) {
        S->snap = calloc(total, sizeof(float));
        S->tmp = calloc(maxn, sizeof(float));
    }
    const size_t BT = (size_t)(S->B * S->T);
    S->tok = malloc(BT * sizeof *S->tok);
    S->tgt = malloc(BT * sizeof *S->tgt);
    S->vlosses = malloc(BT * sizeof *S->vlosses);
    S->smp.perm = malloc((size_t)(S->smp.W ? S->smp.W : 1) * sizeof *S->smp.perm);
    if (!S->mom_m || !S->mom_v || (m->quantized && (!S->snap || !S->tmp)) || !S->tok || !S->tgt || !S->vlosses ||
        !S->smp.perm)
        return peqa__fail(PEQA_ERR_NOMEM, "train: out of memory for the optimizer state");
    TRY(peqa_model_cache_create(m, (int64_t)BT, &S->cache));
    TRY(peqa_adamw_init(&S->opt, S->R.beta1, S->R.beta2, S->R.eps));
    TRY(peqa_model_config_json(&m->cfg, &S->cfg_json));
    if (m->quantized) TRY(peqa_model_codes_hash(m, &S->codes_hash));
    uint64_t seed = S->R.seed;
    for (int i = 0; i < 4; i++) S->smp.rng[i] = splitmix(&seed);
    S->smp.epoch = -1, S->smp.pos = 0;
    S->last_ckpt_step = -1;
    S->last_loss = NAN;
    return PEQA_OK;
}

/* Reads the current values of trainable tensor i into dst (numel floats). */
static peqa_status param_read(const peqa_model_param *p, float *dst)
{
    if (p->kind == PEQA_PARAM_SCALES) return peqa_qtensor_get_scales(p->qt, dst);
    if (p->kind == PEQA_PARAM_ZEROS) return peqa_qtensor_get_zeros(p->qt, dst);
    memcpy(dst, p->value, (size_t)p->numel * sizeof(float));
    return PEQA_OK;
}

static peqa_status param_write(const peqa_model_param *p, const float *src)
{
    if (p->kind == PEQA_PARAM_SCALES) return peqa_qtensor_set_scales(p->qt, src);
    if (p->kind == PEQA_PARAM_ZEROS) return peqa_qtensor_set_zeros(p->qt, src);
    memcpy(p->value, src, (size_t)p->numel * sizeof(float));
    return PEQA_OK;
}

/* ---- checkpoints ------------------------------------------------------------------------------------ */

static peqa_status ckpt_write(tstate *S, const char *path)
{
    peqa_st_writer *w = NULL;
    peqa_status st = peqa_st_writer_create(&w);
    if (st) return st;
    for (int64_t i = 0; i < S->np && !st; i++) {
        const peqa_model_param *p = &S->params[i];
        const size_t off = param_off(S, i), bytes = (size_t)p->numel * sizeof(float);
        const float *val = p->value;
        if (p->kind != PEQA_PARAM_F32) {
            if ((st = param_read(p, S->snap + off))) break;
            val = S->snap + off;
        }
        char name[PEQA_MODEL_NAME_MAX + 16];
        snprintf(name, sizeof name, "param.%s", p->name);
        if ((st = peqa_st_writer_add(w, name, PEQA_ST_F32, (size_t)p->ndim, p->shape, val, bytes))) break;
        snprintf(name, sizeof name, "adam_m.%s", p->name);
        if ((st = peqa_st_writer_add(w, name, PEQA_ST_F32, (size_t)p->ndim, p->shape, S->mom_m + off, bytes))) break;
        snprintf(name, sizeof name, "adam_v.%s", p->name);
        st = peqa_st_writer_add(w, name, PEQA_ST_F32, (size_t)p->ndim, p->shape, S->mom_v + off, bytes);
    }
    char b[8][96];
    const peqa_model *m = S->m;
    struct { const char *k, *v; } meta[48]; /* 35 keys today */
    int n = 0;
#define META(key, val) (meta[n].k = (key), meta[n].v = (val), n++)
    META("peqa.format", "checkpoint");
    META("peqa.version", "1");
    snprintf(b[0], sizeof b[0], "%d", PEQA_PACK_FORMAT_VERSION);
    META("peqa.pack_format", b[0]);
    META("peqa.mode", m->quantized ? "quantized" : "full");
    META("peqa.config", S->cfg_json);
    char bits[24], grp[24], hash[17], dhash[17];
    if (m->quantized) {
        snprintf(bits, sizeof bits, "%d", m->bits);
        peqa_group_str(m->group, grp);
        peqa_hash_hex(S->codes_hash, hash);
        META("peqa.bits", bits);
        META("peqa.group", grp);
        META("peqa.codes_hash", hash);
    }
    peqa_hash_hex(S->data_hash, dhash);
    snprintf(b[1], sizeof b[1], "%zu", S->ntrain);
    META("peqa.data_tokens", b[1]);
    META("peqa.data_hash", dhash);
    snprintf(b[2], sizeof b[2], "%lld", (long long)S->step);
    META("peqa.step", b[2]);
    snprintf(b[3], sizeof b[3], "%lld", (long long)S->total);
    META("peqa.total_steps", b[3]);
    fmt_f32(b[4], sizeof b[4], S->last_loss);
    META("peqa.loss", b[4]);
    char as[24], b1t[48], b2t[48], rng[80], erng[80], ep[24], epos[24];
    snprintf(as, sizeof as, "%lld", (long long)S->opt.step);
    fmt_f32(b1t, sizeof b1t, S->opt.b1t);
    fmt_f32(b2t, sizeof b2t, S->opt.b2t);
    META("peqa.adam_step", as);
    META("peqa.adam_b1t", b1t);
    META("peqa.adam_b2t", b2t);
    fmt_rng(rng, sizeof rng, S->smp.rng);
    fmt_rng(erng, sizeof erng, S->smp.epoch_rng);
    snprintf(ep, sizeof ep, "%lld", (long long)S->smp.epoch);
    snprintf(epos, sizeof epos, "%lld", (long long)S->smp.pos);
    META("peqa.rng", rng);
    META("peqa.epoch_rng", erng);
    META("peqa.epoch", ep);
    META("peqa.epoch_pos", epos);
    char hk[HP_COUNT][40], hv[HP_COUNT][48];
    for (size_t i = 0; i < HP_COUNT; i++) {
        snprintf(hk[i], sizeof hk[i], "peqa.hp.%s", hp_table[i].key);
        hp_format(&S->R, i, hv[i], sizeof hv[i]);
        META(hk[i], hv[i]);
    }
#undef META
    for (int i = 0; i < n && !st; i++) st = peqa_st_writer_set_metadata(w, meta[i].k, meta[i].v);
    if (!st) st = peqa_st_writer_write(w, path);
    peqa_st_writer_free(w);
    if (!st) S->last_ckpt_step = S->step, S->last_ckpt_path = path;
    return st;
}

static peqa_status ckpt_meta(const peqa_st_file *f, const char *key, const char **out)
{
    *out = peqa_st_metadata(f, key);
    if (!*out) return peqa__fail(PEQA_ERR_FORMAT, "%s: metadata key '%s' is missing (not a peqa checkpoint?)", peqa_st_path(f), key);
    return PEQA_OK;
}

static peqa_status ckpt_bad(const peqa_st_file *f, const char *key, const char *v)
{
    return peqa__fail(PEQA_ERR_FORMAT, "%s: metadata '%s' = '%.60s' is malformed", peqa_st_path(f), key, v);
}

/* Opens a checkpoint and checks its format, version and hyperparameter keys; fills o's
 * hyperparameters and *step. */
static peqa_status ckpt_open(const char *path, peqa_st_file **out, peqa_train_options *o, int64_t *step)
{
    peqa_st_file *f = NULL;
    TRY(peqa_st_open(path, &f));
    const char *v;
    int64_t x;
    peqa_status st = ckpt_meta(f, "peqa.format", &v);
    if (!st && strcmp(v, "checkpoint"))
        st = peqa__fail(PEQA_ERR_FORMAT, "%s: 'peqa.format' is '%.40s': not a training checkpoint", path, v);
    if (!st) st = ckpt_meta(f, "peqa.version", &v);
    if (!st && (!peqa_meta_int(v, 0, INT32_MAX, &x) || x != PEQA_CKPT_VERSION))
        st = peqa__fail(PEQA_ERR_FORMAT, "%s: checkpoint version '%.40s': this build reads version %d", path, v, PEQA_CKPT_VERSION);
    for (size_t i = 0; i < HP_COUNT && !st; i++) {
        char key[48];
        snprintf(key, sizeof key, "peqa.hp.%s", hp_table[i].key);
        if (!(st = ckpt_meta(f, key, &v)) && !hp_parse(o, i, v)) st = ckpt_bad(f, key, v);
    }
    if (!st && !(st = ckpt_meta(f, "peqa.step", &v)) && !peqa_meta_int(v, 0, INT64_MAX, step)) st = ckpt_bad(f, "peqa.step", v);
    if (st) {
        peqa_st_close(f);
        return st;
    }
    *out = f;
    return PEQA_OK;
}

peqa_status peqa_train_ckpt_options(const char *path, peqa_train_options *o, int64_t *step)
{
    if (!path || !o) return peqa__fail(PEQA_ERR_NULL, "peqa_train_ckpt_options: NULL argument");
    peqa_st_file *f;
    int64_t s = 0;
    TRY(ckpt_open(path, &f, o, &s));
    peqa_st_close(f);
    if (step) *step = s;
    return PEQA_OK;
}

/* Restores the run's state from checkpoint `path` after checking it fits S (model, data,
 * hyperparameters). Nothing in the model changes unless everything checks out. */
static peqa_status ckpt_resume(tstate *S, const char *path)
{
    peqa_train_options c = S->R;
    int64_t step = 0;
    peqa_st_file *f = NULL;
    TRY(ckpt_open(path, &f, &c, &step));
    const peqa_model *m = S->m;
    const char *v;
    peqa_status st = PEQA_OK;
    float *vals = NULL;
    float b1t = 0, b2t = 0;
    int64_t astep = 0, total = 0, ep = 0, epos = 0;
    uint64_t rng[4], erng[4];
    char want[128];
#define FAIL(...) do { st = peqa__fail(__VA_ARGS__); goto done; } while (0)
#define META(key) do { if ((st = ckpt_meta(f, key, &v))) goto done; } while (0)
    META("peqa.mode");
    if (strcmp(v, m->quantized ? "quantized" : "full"))
        FAIL(PEQA_ERR_ARG, "%s: the checkpoint trains a %s model but the model given is %s", path, v,
             m->quantized ? "quantized" : "full precision");
    META("peqa.config");
    if (strcmp(v, S->cfg_json)) FAIL(PEQA_ERR_ARG, "%s: the checkpoint was made for a model of another configuration", path);
    if (m->quantized) {
        char bits[24], grp[24], hash[17];
        snprintf(bits, sizeof bits, "%d", m->bits);
        peqa_group_str(m->group, grp);
        peqa_hash_hex(S->codes_hash, hash);
        META("peqa.bits");
        if (strcmp(v, bits)) FAIL(PEQA_ERR_ARG, "%s: the checkpoint is for %.8s-bit codes, the model has %s-bit codes", path, v, bits);
        META("peqa.group");
        if (strcmp(v, grp)) FAIL(PEQA_ERR_ARG, "%s: the checkpoint is for group size %.20s, the model has %s", path, v, grp);
        META("peqa.codes_hash");
        if (strcmp(v, hash))
            FAIL(PEQA_ERR_ARG, "%s: the checkpoint belongs to a different integer model (codes hash %.20s; this model's is %s)",
                 path, v, hash);
    }
    META("peqa.data_tokens");
    snprintf(want, sizeof want, "%zu", S->ntrain);
    if (strcmp(v, want))
        FAIL(PEQA_ERR_ARG, "%s: the checkpoint was trained on %.24s tokens, the training data given has %s: resume needs the same data",
             path, v, want);
    META("peqa.data_hash");
    peqa_hash_hex(S->data_hash, want);
    if (strcmp(v, want)) FAIL(PEQA_ERR_ARG, "%s: the training data differs from the checkpoint's (hash %.20s, given %s)", path, v, want);
    for (size_t i = 0; i < HP_COUNT; i++) {
        char a[64], b[64];
        hp_format(&c, i, a, sizeof a);
        hp_format(&S->R, i, b, sizeof b);
        if (strcmp(a, b))
            FAIL(PEQA_ERR_ARG, "%s: %s differs: the checkpoint has %s, this run %s (a resumed run keeps its settings)", path,
                 hp_table[i].option, a, b);
    }
    META("peqa.total_steps");
    if (!peqa_meta_int(v, 1, INT64_MAX, &total) || total != S->total) { st = ckpt_bad(f, "peqa.total_steps", v); goto done; }
    if (step > total) FAIL(PEQA_ERR_FORMAT, "%s: step %lld is beyond the run's %lld steps", path, (long long)step, (long long)total);
    META("peqa.adam_step");
    if (!peqa_meta_int(v, 0, INT64_MAX, &astep) || astep != step) { st = ckpt_bad(f, "peqa.adam_step", v); goto done; }
    META("peqa.adam_b1t");
    if (!parse_f32(v, &b1t)) { st = ckpt_bad(f, "peqa.adam_b1t", v); goto done; }
    META("peqa.adam_b2t");
    if (!parse_f32(v, &b2t)) { st = ckpt_bad(f, "peqa.adam_b2t", v); goto done; }
    META("peqa.rng");
    if (!parse_rng(v, rng)) { st = ckpt_bad(f, "peqa.rng", v); goto done; }
    META("peqa.epoch_rng");
    if (!parse_rng(v, erng)) { st = ckpt_bad(f, "peqa.epoch_rng", v); goto done; }
    META("peqa.epoch");
    if (!peqa_meta_int(v, -1, INT64_MAX, &ep)) { st = ckpt_bad(f, "peqa.epoch", v); goto done; }
    META("peqa.epoch_pos");
    if (!peqa_meta_int(v, 0, S->smp.W, &epos) || (ep < 0 && epos != 0)) { st = ckpt_bad(f, "peqa.epoch_pos", v); goto done; }
    /* tensors: exactly param./adam_m./adam_v. of every trainable tensor */
    if (peqa_st_count(f) != (size_t)(3 * S->np))
        FAIL(PEQA_ERR_FORMAT, "%s: %zu tensors, expected %lld (value and two moments of %lld trainable tensors%s)", path,
             peqa_st_count(f), (long long)(3 * S->np), (long long)S->np,
             m->quantized && !S->R.train_zeros ? "" : m->quantized ? ", zero points included" : "");
    const size_t tot = S->g->total ? S->g->total : 1;
    if (!(vals = malloc(tot * sizeof *vals))) FAIL(PEQA_ERR_NOMEM, "%s: out of memory", path);
    float *mm = malloc(tot * sizeof *mm), *vv = malloc(tot * sizeof *vv);
    if (!mm || !vv) {
        free(mm), free(vv);
        FAIL(PEQA_ERR_NOMEM, "%s: out of memory", path);
    }
    for (int64_t i = 0; i < S->np && !st; i++) {
        const peqa_model_param *p = &S->params[i];
        float *dst[3] = {vals + param_off(S, i), mm + param_off(S, i), vv + param_off(S, i)};
        static const char *const pre[3] = {"param", "adam_m", "adam_v"};
        for (int k = 0; k < 3 && !st; k++) {
            char name[PEQA_MODEL_NAME_MAX + 16];
            const peqa_st_tensor *t;
            snprintf(name, sizeof name, "%s.%s", pre[k], p->name);
            if ((st = peqa_st_get(f, name, &t))) break;
            int same = t->dtype == PEQA_ST_F32 && t->ndim == (size_t)p->ndim;
            for (int d = 0; same && d < p->ndim; d++) same = t->shape[d] == p->shape[d];
            if (!same) {
                st = peqa__fail(PEQA_ERR_SHAPE, "%s: tensor '%s' is not F32 of the trainable tensor's shape", path, name);
                break;
            }
            if ((st = peqa_st_read_f32_into(f, t, dst[k], (size_t)p->numel))) break;
            for (int64_t e = 0; e < p->numel; e++)
                if (!isfinite(dst[k][e]) || (k == 2 && dst[k][e] < 0.0f)) {
                    st = peqa__fail(PEQA_ERR_NONFINITE, "%s: tensor '%s' element %lld is %g", path, name, (long long)e,
                                    (double)dst[k][e]);
                    break;
                }
        }
    }
    /* sampler: regenerate the current epoch's order from its starting state; the stream must
     * then be where the checkpoint says it is */
    if (!st) {
        if (ep < 0) {
            memcpy(S->smp.rng, rng, sizeof rng);
            S->smp.epoch = -1, S->smp.pos = 0;
        } else {
            memcpy(S->smp.rng, erng, sizeof erng);
            S->smp.epoch = ep - 1;
            sampler_start_epoch(&S->smp);
            S->smp.pos = epos;
            if (memcmp(S->smp.rng, rng, sizeof rng))
                st = peqa__fail(PEQA_ERR_FORMAT, "%s: the data-order state is inconsistent (peqa.rng does not follow from peqa.epoch_rng)",
                                path);
        }
    }
    /* everything checked: now change the model and the optimizer */
    if (!st) {
        for (int64_t i = 0; i < S->np && !st; i++) st = param_write(&S->params[i], vals + param_off(S, i));
        memcpy(S->mom_m, mm, S->g->total * sizeof(float));
        memcpy(S->mom_v, vv, S->g->total * sizeof(float));
    }
    free(mm), free(vv);
    if (st) goto done;
    S->step = step;
    S->opt.step = astep, S->opt.b1t = b1t, S->opt.b2t = b2t;
    META("peqa.loss");
    if (!parse_f32(v, &S->last_loss)) S->last_loss = NAN;
    S->last_ckpt_step = step;
    S->last_ckpt_path = path;
#undef FAIL
#undef META
done:
    free(vals);
    peqa_st_close(f);
    return st;
}

/* ---- validation --------------------------------------------------------------------------------- */

static peqa_status run_val(tstate *S, float *loss, int64_t *count)
{
    const int64_t Tv = S->T < (int64_t)S->nval - 1 ? S->T : (int64_t)S->nval - 1;
    int64_t nw = (int64_t)((S->nval - 1) / (size_t)Tv);
    if (S->R.val_max_tokens > 0 && nw * Tv > S->R.val_max_tokens) nw = S->R.val_max_tokens / Tv > 0 ? S->R.val_max_tokens / Tv : 1;
    double sum = 0.0;
    for (int64_t w0 = 0; w0 < nw; w0 += S->B) {
        const int64_t b = nw - w0 < S->B ? nw - w0 : S->B;
        for (int64_t s = 0; s < b; s++)
            for (int64_t t = 0; t < Tv; t++) {
                const size_t at = (size_t)((w0 + s) * Tv + t);
                S->tok[s * Tv + t] = (int32_t)S->val[at];
                S->tgt[s * Tv + t] = (int32_t)S->val[at + 1];
            }
        TRY(peqa_model_eval(S->ctx, S->m, b, Tv, S->tok, S->tgt, S->vlosses, NULL));
        for (int64_t i = 0; i < b * Tv; i++) sum += (double)S->vlosses[i];
    }
    *count = nw * Tv;
    *loss = (float)(sum / (double)*count);
    return PEQA_OK;
}

/* ---- one step ------------------------------------------------------------------------------------ */

static const char *nf_name(float x) { return isnan(x) ? "NaN" : "infinite"; }

/* The "last checkpoint" clause of non-finite messages. */
static void ckpt_clause(const tstate *S, char *buf, size_t n)
{
    if (S->last_ckpt_step >= 0)
        snprintf(buf, n, "the last checkpoint (%.200s, step %lld) is intact", S->last_ckpt_path, (long long)S->last_ckpt_step);
    else
        snprintf(buf, n, "no checkpoint was written");
}

static peqa_status train_step(tstate *S, float *loss_out, float *lr_out, float *gnorm_out)
{
    const int64_t i = S->step, B = S->B, T = S->T, A = S->A;
    char cc[300];
    const float lr = peqa_lr_at(S->R.schedule, S->R.lr, S->R.min_lr_ratio, S->R.warmup, S->total, i);
    float acc = 0.0f;
    for (int64_t a = 0; a < A; a++) {
        for (int64_t s = 0; s < B; s++) {
            const int64_t start = sampler_next(&S->smp);
            for (int64_t t = 0; t < T; t++) {
                S->tok[s * T + t] = (int32_t)S->train[start + t];
                S->tgt[s * T + t] = (int32_t)S->train[start + t + 1];
            }
        }
        float l;
        TRY(peqa_model_forward(S->ctx, S->m, S->cache, B, T, S->tok, S->tgt, &l));
        if (!isfinite(l)) {
            ckpt_clause(S, cc, sizeof cc);
            return peqa__fail(PEQA_ERR_NONFINITE, "step %lld: the training loss is %s (micro-batch %lld); %s", (long long)(i + 1),
                              nf_name(l), (long long)a, cc);
        }
        TRY(peqa_model_backward(S->ctx, S->m, S->cache, S->g, 1.0f / (float)A, a > 0));
        acc = acc + l;
    }
    const float loss = acc / (float)A;
    double sumsq = 0.0;
    for (int64_t p = 0; p < S->np; p++) sumsq = sumsq + peqa_sumsq(S->params[p].grad, S->params[p].numel);
    if (!isfinite(sumsq)) {
        ckpt_clause(S, cc, sizeof cc);
        for (int64_t p = 0; p < S->np; p++)
            for (int64_t e = 0; e < S->params[p].numel; e++)
                if (!isfinite(S->params[p].grad[e]))
                    return peqa__fail(PEQA_ERR_NONFINITE, "step %lld: the gradient of '%s' element %lld is %s; %s", (long long)(i + 1),
                                      S->params[p].name, (long long)e, nf_name(S->params[p].grad[e]), cc);
        return peqa__fail(PEQA_ERR_NONFINITE, "step %lld: the gradient norm overflows; %s", (long long)(i + 1), cc);
    }
    const float gscale = peqa_clip_scale(sumsq, S->R.clip);
    peqa_adamw_begin(&S->opt);
    for (int64_t p = 0; p < S->np; p++) {
        const peqa_model_param *pp = &S->params[p];
        const size_t off = param_off(S, p);
        /* decay matrices and scales, never norm weights or zero points */
        const float wd = pp->ndim == 2 && pp->kind != PEQA_PARAM_ZEROS ? S->R.weight_decay : 0.0f;
        float *val = pp->kind == PEQA_PARAM_F32 ? pp->value : S->tmp;
        if (pp->kind != PEQA_PARAM_F32) TRY(param_read(pp, val));
        peqa_adamw_update(&S->opt, lr, wd, gscale, val, pp->grad, S->mom_m + off, S->mom_v + off, pp->numel);
        for (int64_t e = 0; e < pp->numel; e++)
            if (!isfinite(val[e])) {
                ckpt_clause(S, cc, sizeof cc);
                return peqa__fail(PEQA_ERR_NONFINITE, "step %lld: the update made '%s' element %lld %s (learning rate %g too large?); %s",
                                  (long long)(i + 1), pp->name, (long long)e, nf_name(val[e]), (double)lr, cc);
            }
        if (pp->kind != PEQA_PARAM_F32) TRY(param_write(pp, val));
    }
    S->step = i + 1;
    S->last_loss = loss;
    *loss_out = loss, *lr_out = lr, *gnorm_out = (float)sqrt(sumsq);
    return PEQA_OK;
}

/* ---- the run ------------------------------------------------------------------------------------- */

typedef struct {
    double t0, train_time;
    int64_t steps0; /* step at session start */
} clockinfo;

static void fill_timing(const tstate *S, const clockinfo *c, peqa_train_event *ev)
{
    const int64_t done = S->step - c->steps0, tps = S->B * S->T * S->A;
    ev->step = S->step, ev->total = S->total;
    ev->tokens = S->step * tps;
    ev->epoch = S->smp.W ? (double)(S->step * S->B * S->A) / (double)S->smp.W : 0.0;
    ev->elapsed_s = now_s() - c->t0;
    ev->tokens_per_s = c->train_time > 0 ? (double)(done * tps) / c->train_time : 0.0;
    ev->eta_s = done > 0 ? c->train_time / (double)done * (double)(S->total - S->step) : 0.0;
}

static int emit(const tstate *S, peqa_train_event *ev)
{
    return S->R.callback ? S->R.callback(ev, S->R.user) : 0;
}

static peqa_status do_val(tstate *S, const clockinfo *c, peqa_train_result *res, int *stop)
{
    float vl;
    int64_t cnt;
    TRY(run_val(S, &vl, &cnt));
    res->has_val = 1, res->val_loss = vl, res->val_ppl = exp((double)vl);
    peqa_train_event ev = {.kind = PEQA_TRAIN_EV_VAL, .val_loss = vl, .val_ppl = res->val_ppl, .val_tokens = cnt,
                           .loss = S->last_loss};
    fill_timing(S, c, &ev);
    if (emit(S, &ev)) *stop = 1;
    return PEQA_OK;
}

static peqa_status do_ckpt(tstate *S, const clockinfo *c, int *stop)
{
    TRY(ckpt_write(S, S->R.ckpt_path));
    peqa_train_event ev = {.kind = PEQA_TRAIN_EV_CKPT, .ckpt_path = S->R.ckpt_path, .loss = S->last_loss};
    fill_timing(S, c, &ev);
    if (emit(S, &ev)) *stop = 1;
    return PEQA_OK;
}

/* The checkpoint file already holds this step. */
static int ckpt_current(const tstate *S)
{
    return S->last_ckpt_step == S->step && S->last_ckpt_path && S->R.ckpt_path && !strcmp(S->last_ckpt_path, S->R.ckpt_path);
}

static peqa_status run(tstate *S, peqa_train_result *res)
{
    clockinfo c = {.t0 = now_s(), .train_time = 0, .steps0 = S->step};
    res->resumed_from = S->step;
    int stop = 0;
    peqa_train_event ev0 = {.kind = PEQA_TRAIN_EV_START, .loss = S->last_loss};
    fill_timing(S, &c, &ev0);
    if (emit(S, &ev0)) stop = 1;
    if (S->val) TRY(do_val(S, &c, res, &stop));
    while (S->step < S->total) {
        if (stop || (S->R.stop && *S->R.stop) || (S->R.stop_after > 0 && S->step >= S->R.stop_after)) {
            stop = 1;
            break;
        }
        float loss = 0.0f, lr = 0.0f, gn = 0.0f;
        const double t = now_s();
        TRY(train_step(S, &loss, &lr, &gn));
        c.train_time += now_s() - t;
        peqa_train_event ev = {.kind = PEQA_TRAIN_EV_STEP, .loss = loss, .lr = lr, .grad_norm = gn};
        fill_timing(S, &c, &ev);
        if (emit(S, &ev)) stop = 1;
        if (S->R.ckpt_every > 0 && S->step % S->R.ckpt_every == 0 && (S->step < S->total || S->R.ckpt_final))
            TRY(do_ckpt(S, &c, &stop));
        if (S->val && S->R.val_every > 0 && S->step % S->R.val_every == 0 && S->step < S->total)
            TRY(do_val(S, &c, res, &stop));
    }
    if (stop && S->step < S->total) {
        res->stopped = 1;
        if (S->R.ckpt_path && !ckpt_current(S)) TRY(do_ckpt(S, &c, &stop));
        res->ckpt_written = S->R.ckpt_path != NULL;
    } else {
        if (S->val && (S->step > c.steps0 || !res->has_val)) TRY(do_val(S, &c, res, &stop));
        if (S->R.ckpt_final && !ckpt_current(S)) TRY(do_ckpt(S, &c, &stop));
        res->ckpt_written = S->R.ckpt_final;
    }
    res->steps_done = S->step;
    res->last_loss = S->last_loss;
    res->tokens = S->step * S->B * S->T * S->A;
    res->elapsed_s = now_s() - c.t0;
    res->tokens_per_s = c.train_time > 0 ? (double)((S->step - c.steps0) * S->B * S->T * S->A) / c.train_time : 0.0;
    return PEQA_OK;
}

peqa_status peqa_train(peqa_ctx *ctx, peqa_model *m, const uint32_t *train, size_t ntrain, const uint32_t *val,
                       size_t nval, const peqa_train_options *o, peqa_train_result *res)
{
    if (!ctx || !m || !train || !o) return peqa__fail(PEQA_ERR_NULL, "peqa_train: NULL argument");
    peqa_train_result dummy;
    if (!res) res = &dummy;
    memset(res, 0, sizeof *res);
    res->last_loss = NAN;
    int64_t total, warmup, W;
    TRY(peqa_train_plan(o, m, ntrain, &total, &warmup, &W));
    TRY(peqa_tokens_check_vocab("training data", train, ntrain, (uint32_t)m->cfg.vocab));
    if (val) {
        if (nval < 2) return peqa__fail(PEQA_ERR_ARG, "train: the validation data has %zu tokens: at least 2 are needed", nval);
        TRY(peqa_tokens_check_vocab("validation data", val, nval, (uint32_t)m->cfg.vocab));
    }
    tstate S;
    memset(&S, 0, sizeof S);
    S.ctx = ctx, S.m = m, S.R = *o;
    S.R.steps = total, S.R.warmup = warmup, S.R.train_zeros = m->quantized && o->train_zeros;
    S.train = train, S.ntrain = ntrain, S.val = val, S.nval = val ? nval : 0;
    S.total = total, S.B = o->batch, S.T = o->seq, S.A = o->accum;
    S.smp.W = W, S.smp.T = o->seq, S.smp.slack = (int64_t)(ntrain - 1) - W * o->seq;
    res->total_steps = total, res->warmup = warmup;
    peqa_status st = state_init(&S);
    if (!st) {
        S.data_hash = tokens_hash(train, ntrain);
        if (o->resume) st = ckpt_resume(&S, o->resume);
    }
    if (!st) st = run(&S, res);
    state_free(&S);
    return st;
}
