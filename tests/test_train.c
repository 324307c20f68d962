/* Tests of fine-tuning: the optimiser and schedule (src/optim.h), quantized model files and
 * scale files (src/qfile.h), and the training loop with checkpoints (src/train.h).
 *
 *  (a) optim: AdamW against the documented binary32 sequence restated here (bit equality) and a
 *      float64 evaluation (bound 5e-7 absolute, |p| <= 1), exact hand values (weight decay alone, the first
 *      step's ±lr, b1t after three steps), the clip factor, and the schedule: warm-up values,
 *      cosine and linear endpoints and midpoints exactly, peqa_cos_sched against libm cos.
 *  (b) quantized file: save → load (peqa_model_open) gives the same config, codes hash, fp32
 *      tensors, scales, zero points, and logits bit for bit (4-bit group 32 untied; 3-bit
 *      per-channel tied); damaged files (metadata missing / unknown version / unknown pack
 *      format, a missing or extra tensor, a wrong qweight length, a flipped code bit, a NaN
 *      scale) are refused with a message naming the problem.
 *  (c) scale files: round trip (scales only and with zero points) reproduces the tuned logits
 *      bit for bit on a freshly loaded model; a file for different codes, a different shape or
 *      a different bit width is refused and the model is left unchanged.
 *  (d) loss-trajectory golden: a tiny quantized model (4-bit, group 32, a short last group in
 *      down_proj) trained 10 steps (batch 2, seq 16, accumulation 2, warm-up 2, cosine, clip
 *      0.5, scales and zero points, weight decay 0.1); the per-step losses and gradient norms
 *      must equal the committed hex floats bit for bit on every ISA level the CPU has and for
 *      1, 2 and 3 threads, and the final scales and zero points must be identical.
 *  (e) resume: 10 steps == 5 steps + stop + resume + 5 steps, bit for bit (the final
 *      checkpoints are byte-identical files: parameters, AdamW moments, step, data order), in
 *      quantized mode with zero points trained and an epoch boundary inside the run, and in
 *      full-precision mode; the stop flag (as set by a SIGINT handler) checkpoints and stops;
 *      resuming with another learning rate, other data or another integer model is refused.
 *  (f) non-finite: a NaN injected after step 4 stops step 5 with PEQA_ERR_NONFINITE naming the
 *      step, and the step-4 checkpoint file is byte-identical afterwards (no temporary left); a
 *      huge learning rate is caught too.
 *  (g) learning: PEQA on a learnable periodic token pattern lowers the validation loss clearly,
 *      and so does full-precision training.
 *  (h) option errors: each refused with PEQA_ERR_ARG and a message naming the option.
 */
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "../src/model.h"
#include "../src/optim.h"
#include "../src/qfile.h"
#include "../src/safetensors.h"
#include "../src/train.h"
#include "prng.h"
#include "test.h"

static int msg_has(const char *s) { return strstr(peqa_last_error(), s) != NULL; }

static int same_f32(float a, float b) { return memcmp(&a, &b, sizeof a) == 0; }

/* ---- (a) optimiser and schedule ------------------------------------------------------------ */

static void optim_tests(trun *r)
{
    /* the documented sequence, restated */
    {
        enum { N = 7, STEPS = 4 };
        float p[N], m[N] = {0}, v[N] = {0}, g[N], pr[N], mr[N] = {0}, vr[N] = {0};
        double pd[N], md[N] = {0}, vd[N] = {0};
        prng q;
        prng_seed(&q, 11);
        for (int i = 0; i < N; i++) p[i] = pr[i] = prng_sym(&q, 1.0f), pd[i] = p[i];
        peqa_adamw o;
        int ok = peqa_adamw_init(&o, 0.9f, 0.999f, 1e-8f) == PEQA_OK;
        const float lr = 0.01f, wd = 0.1f, gs = 0.75f;
        float b1t = 1.0f, b2t = 1.0f;
        double worst = 0;
        for (int s = 0; s < STEPS && ok; s++) {
            for (int i = 0; i < N; i++) g[i] = prng_sym(&q, 2.0f);
            peqa_adamw_begin(&o);
            peqa_adamw_update(&o, lr, wd, gs, p, g, m, v, N);
            b1t = b1t * 0.9f, b2t = b2t * 0.999f;
            for (int i = 0; i < N; i++) {
                float gg = g[i] * gs;
                mr[i] = fmaf(0.9f, mr[i], (1.0f - 0.9f) * gg);
                vr[i] = fmaf(0.999f, vr[i], (1.0f - 0.999f) * (gg * gg));
                float u = (mr[i] / (1.0f - b1t)) / (sqrtf(vr[i] / (1.0f - b2t)) + 1e-8f);
                pr[i] = pr[i] - lr * (u + wd * pr[i]);
                /* float64 evaluation of the same math */
                const double b1 = 0.9f, b2 = 0.999f, gd = (double)g[i] * 0.75;
                md[i] = b1 * md[i] + (1 - b1) * gd;
                vd[i] = b2 * vd[i] + (1 - b2) * gd * gd;
                double mh = md[i] / (1 - pow(b1, s + 1)), vh = vd[i] / (1 - pow(b2, s + 1));
                pd[i] = pd[i] - (double)0.01f * (mh / (sqrt(vh) + (double)1e-8f) + (double)0.1f * pd[i]);
                double e = fabs(p[i] - pd[i]); /* |p| <= ~1: absolute */
                if (e > worst) worst = e;
            }
        }
        int64_t d = t_first_diff(p, pr, 4, N);
        int64_t dm = t_first_diff(m, mr, 4, N), dv = t_first_diff(v, vr, 4, N);
        t_result(r, ok && d < 0 && dm < 0 && dv < 0 && o.step == STEPS, "train/optim/adamw_sequence_bits", "-",
                 "first differing p %lld, m %lld, v %lld; step %lld", (long long)d, (long long)dm, (long long)dv,
                 (long long)o.step);
        t_result(r, ok && worst < 5e-7, "train/optim/adamw_vs_float64", "-", "max |p - p64| %.3g (bound 5e-7: a few binary32 roundings of |p| <= 1 per step; a wrong formula moves p by ~lr = 1e-2)", worst);
        t_result(r, same_f32(o.b1t, 0.9f * 0.9f * 0.9f * 0.9f) && same_f32(o.b2t, 0.999f * 0.999f * 0.999f * 0.999f),
                 "train/optim/bias_powers", "-", "b1t %a b2t %a", (double)o.b1t, (double)o.b2t);
    }
    /* hand values */
    {
        peqa_adamw o;
        peqa_adamw_init(&o, 0.9f, 0.999f, 1e-8f);
        peqa_adamw_begin(&o);
        float p[3] = {2.0f, 1.0f, 1.0f}, g[3] = {0.0f, 0.5f, -4.0f}, m[3] = {0}, v[3] = {0};
        peqa_adamw_update(&o, 0.5f, 0.25f, 1.0f, p, g, m, v, 1);      /* g = 0: decay only: 2 − 0.5·0.25·2 */
        peqa_adamw_update(&o, 0.1f, 0.0f, 1.0f, p + 1, g + 1, m + 1, v + 1, 2); /* step 1: |update| = lr·|g|/(|g|+eps) */
        int ok = p[0] == 1.75f && fabsf(p[1] - 0.9f) < 1e-6f && fabsf(p[2] - 1.1f) < 1e-6f;
        t_result(r, ok, "train/optim/hand_values", "-", "decay-only %a (want 0x1.cp+0), first steps %.9g %.9g (want 0.9, 1.1)",
                 (double)p[0], (double)p[1], (double)p[2]);
        int bad = peqa_adamw_init(&o, 1.0f, 0.9f, 1e-8f) == PEQA_ERR_ARG && peqa_adamw_init(&o, 0.9f, 0.9f, 0.0f) == PEQA_ERR_ARG &&
                  peqa_adamw_init(&o, 0.9f, -0.1f, 1e-8f) == PEQA_ERR_ARG;
        t_result(r, bad, "train/optim/adamw_bad_args", "-", "beta 1, eps 0, beta −0.1 refused");
    }
    /* clip factor */
    {
        int ok = same_f32(peqa_clip_scale(25.0, 1.0f), 0.2f) && peqa_clip_scale(0.25, 1.0f) == 1.0f &&
                 peqa_clip_scale(1e6, 0.0f) == 1.0f && peqa_clip_scale(4.0, 2.0f) == 1.0f;
        double ss = peqa_sumsq((const float[]){3.0f, 4.0f}, 2);
        t_result(r, ok && ss == 25.0, "train/optim/clip", "-", "clip(25,1) = %a, sumsq(3,4) = %g", (double)peqa_clip_scale(25.0, 1.0f), ss);
    }
    /* schedule */
    {
        const float lr = 1.0f;
        int ok = 1;
        char why[256] = "";
        /* warm-up 4 of 12 steps: 0.25, 0.5, 0.75, 1, then cosine from 1 (step 4) through 0.5 (step 8)
         * towards 0 at step 12 (one past the last) */
        const float want_w[4] = {0.25f, 0.5f, 0.75f, 1.0f};
        for (int s = 0; s < 4; s++)
            if (!same_f32(peqa_lr_at(PEQA_SCHED_COSINE, lr, 0.0f, 4, 12, s), want_w[s])) ok = 0, snprintf(why, sizeof why, "warm-up step %d", s);
        if (peqa_lr_at(PEQA_SCHED_COSINE, lr, 0.0f, 4, 12, 4) != 1.0f) ok = 0, snprintf(why, sizeof why, "cosine start");
        if (peqa_lr_at(PEQA_SCHED_COSINE, lr, 0.0f, 4, 12, 8) != 0.5f) ok = 0, snprintf(why, sizeof why, "cosine midpoint");
        if (peqa_lr_at(PEQA_SCHED_COSINE, lr, 0.0f, 4, 12, 12) != 0.0f) ok = 0, snprintf(why, sizeof why, "cosine end");
        if (peqa_lr_at(PEQA_SCHED_COSINE, lr, 0.0f, 4, 12, 50) != 0.0f) ok = 0, snprintf(why, sizeof why, "past the end");
        /* the last step: ½(1 + cos(π·7/8)) > 0 */
        float last = peqa_lr_at(PEQA_SCHED_COSINE, lr, 0.0f, 4, 12, 11);
        if (!(last > 0.0f && fabs(last - 0.5 * (1.0 + cos(3.14159265358979323846 * 7 / 8))) < 1e-7))
            ok = 0, snprintf(why, sizeof why, "last step %a", (double)last);
        /* cos(π/4) at a quarter: ½(1 + √½) */
        float q = peqa_lr_at(PEQA_SCHED_COSINE, lr, 0.0f, 0, 8, 2);
        if (!same_f32(q, (float)(0.5 * (1.0 + sqrt(0.5))))) ok = 0, snprintf(why, sizeof why, "cosine quarter %a", (double)q);
        /* min ratio: ends at lr·0.1 */
        if (!same_f32(peqa_lr_at(PEQA_SCHED_COSINE, 2.0f, 0.1f, 0, 5, 5), (float)(2.0 * (double)0.1f)))
            ok = 0, snprintf(why, sizeof why, "min ratio end");
        /* linear over 4 steps: 1, .75, .5, .25 (0 at step 4) */
        for (int s = 0; s <= 4; s++)
            if (peqa_lr_at(PEQA_SCHED_LINEAR, lr, 0.0f, 0, 4, s) != 1.0f - 0.25f * (float)s) ok = 0, snprintf(why, sizeof why, "linear %d", s);
        if (peqa_lr_at(PEQA_SCHED_CONSTANT, 0.3f, 0.0f, 0, 5, 4) != 0.3f || peqa_lr_at(PEQA_SCHED_COSINE, 0.3f, 0.0f, 3, 3, 3) != 0.3f)
            ok = 0, snprintf(why, sizeof why, "constant / nothing to decay");
        t_result(r, ok, "train/optim/schedule_values", "-", "%s", ok ? "warm-up, cosine, linear, constant exact" : why);
        double worst = 0;
        for (int i = 0; i <= 4096; i++) {
            double x = 3.14159265358979323846 * i / 4096.0, e = fabs(peqa_cos_sched(x) - cos(x));
            if (e > worst) worst = e;
        }
        t_result(r, worst < 4e-16 && peqa_cos_sched(0) == 1.0 && peqa_cos_sched(3.14159265358979323846) == -1.0,
                 "train/optim/cos_sched", "-", "max |err| %.3g over [0, pi] (bound 4e-16)", worst);
    }
}

/* ---- models and data ------------------------------------------------------------------------- */

/* dim 64, ffn 172 (group 32 gives down_proj a short last group of 12), 2 layers, 4 heads of 16,
 * 2 kv heads, vocab 64. */
static peqa_model_config small_config(int tied)
{
    peqa_model_config c;
    peqa_model_config_init(&c, 64, 172, 2, 4, 2, 64, 128);
    c.tie_embeddings = tied;
    return c;
}

/* For the golden and full-precision runs (the scalar reference and the dense fp32 products are
 * slow without hardware FMA): dim 32, ffn 80 (group 32: down_proj's last group has 16
 * columns), 2 layers, 4 heads of 8, 2 kv heads, vocab 48. */
static peqa_model_config tiny_config(int tied)
{
    peqa_model_config c;
    peqa_model_config_init(&c, 32, 80, 2, 4, 2, 48, 64);
    c.tie_embeddings = tied;
    return c;
}

static peqa_model *fp_model(const peqa_model_config *c, uint64_t seed, float std)
{
    peqa_model *m = NULL;
    if (peqa_model_create(c, &m) || peqa_model_init_random(m, seed, std)) {
        peqa_model_free(m);
        return NULL;
    }
    return m;
}

static peqa_model *q_model(const peqa_model_config *c, uint64_t seed, int bits, int64_t group)
{
    peqa_model *m = fp_model(c, seed, 0.1f);
    if (m && peqa_model_quantize(m, bits, group)) {
        peqa_model_free(m);
        return NULL;
    }
    return m;
}

/* n tokens in [0, V) from the test PRNG. */
static uint32_t *rand_tokens(size_t n, uint32_t V, uint64_t seed)
{
    uint32_t *t = malloc(n * sizeof *t);
    prng q;
    prng_seed(&q, seed);
    for (size_t i = 0; t && i < n; i++) t[i] = (uint32_t)prng_below(&q, V);
    return t;
}

/* A learnable stream: a fixed random cycle of `period` distinct tokens, repeated. */
static uint32_t *cycle_tokens(size_t n, uint32_t V, int period, uint64_t seed)
{
    uint32_t perm[256], *t = malloc(n * sizeof *t);
    prng q;
    prng_seed(&q, seed);
    for (uint32_t i = 0; i < V; i++) perm[i] = i;
    for (uint32_t i = V - 1; i >= 1; i--) {
        uint32_t j = (uint32_t)prng_below(&q, i + 1), x = perm[i];
        perm[i] = perm[j], perm[j] = x;
    }
    for (size_t i = 0; t && i < n; i++) t[i] = perm[i % (size_t)period];
    return t;
}

/* All trainable values of a model (scales, zeros or fp32 tensors) as one malloc'd array. */
static float *param_values(peqa_model *m, int tz, size_t *count)
{
    size_t total = 0;
    int64_t np = peqa_model_param_count(m, tz);
    for (int64_t i = 0; i < np; i++) {
        peqa_model_param p;
        peqa_model_param_at(m, tz, i, NULL, &p);
        total += (size_t)p.numel;
    }
    float *v = malloc((total ? total : 1) * sizeof *v);
    size_t off = 0;
    for (int64_t i = 0; v && i < np; i++) {
        peqa_model_param p;
        peqa_model_param_at(m, tz, i, NULL, &p);
        if (p.kind == PEQA_PARAM_SCALES) peqa_qtensor_get_scales(p.qt, v + off);
        else if (p.kind == PEQA_PARAM_ZEROS) peqa_qtensor_get_zeros(p.qt, v + off);
        else memcpy(v + off, p.value, (size_t)p.numel * sizeof(float));
        off += (size_t)p.numel;
    }
    *count = total;
    return v;
}

static float *logits_of(peqa_ctx *ctx, peqa_model *m, const int32_t *tok, int64_t T)
{
    float *l = malloc((size_t)(T * m->cfg.vocab) * sizeof *l);
    if (l && peqa_model_logits(ctx, m, 1, T, tok, l)) {
        free(l);
        return NULL;
    }
    return l;
}

static unsigned char *read_all(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = malloc(n > 0 ? (size_t)n : 1);
    if (b && fread(b, 1, (size_t)n, f) != (size_t)n) free(b), b = NULL;
    fclose(f);
    *len = (size_t)n;
    return b;
}

static int write_all(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    if (!f) return 0;
    int ok = fwrite(data, 1, len, f) == len;
    return (fclose(f) == 0) && ok;
}

static int same_file(const char *a, const char *b)
{
    size_t la, lb;
    unsigned char *x = read_all(a, &la), *y = read_all(b, &lb);
    int same = x && y && la == lb && memcmp(x, y, la) == 0;
    free(x), free(y);
    return same;
}

/* Rewrites safetensors file src as dst with changes: drop a tensor, add a 1-element F32 tensor,
 * set a metadata key (value NULL: remove it). */
typedef struct {
    const char *drop, *add, *meta_key, *meta_val;
} rewrite;

static int rewrite_file(const char *src, const char *dst, const rewrite *rw)
{
    peqa_st_file *f = NULL;
    peqa_st_writer *w = NULL;
    if (peqa_st_open(src, &f) || peqa_st_writer_create(&w)) return peqa_st_close(f), 0;
    void **bufs = calloc(peqa_st_count(f) + 1, sizeof *bufs);
    int ok = bufs != NULL;
    for (size_t i = 0; ok && i < peqa_st_count(f); i++) {
        const peqa_st_tensor *t = peqa_st_tensor_at(f, i);
        if (rw->drop && !strcmp(t->name, rw->drop)) continue;
        size_t bytes;
        ok = peqa_st_read_raw(f, t->name, &bufs[i], &bytes) == PEQA_OK &&
             peqa_st_writer_add(w, t->name, t->dtype, t->ndim, t->shape, bufs[i], bytes) == PEQA_OK;
    }
    static const float one = 1.0f;
    const int64_t shp[1] = {1};
    if (ok && rw->add) ok = peqa_st_writer_add(w, rw->add, PEQA_ST_F32, 1, shp, &one, 4) == PEQA_OK;
    for (size_t i = 0; ok && i < peqa_st_metadata_count(f); i++) {
        const char *k, *v;
        peqa_st_metadata_at(f, i, &k, &v);
        if (rw->meta_key && !strcmp(k, rw->meta_key)) continue;
        ok = peqa_st_writer_set_metadata(w, k, v) == PEQA_OK;
    }
    if (ok && rw->meta_key && rw->meta_val) ok = peqa_st_writer_set_metadata(w, rw->meta_key, rw->meta_val) == PEQA_OK;
    if (ok) ok = peqa_st_writer_write(w, dst) == PEQA_OK;
    for (size_t i = 0; bufs && i < peqa_st_count(f); i++) free(bufs[i]);
    free(bufs);
    peqa_st_writer_free(w);
    peqa_st_close(f);
    return ok;
}

/* Overwrites 4 bytes of tensor `name`'s data at byte offset `at` in the file. */
static int patch_tensor(const char *path, const char *name, size_t at, const void *bytes4)
{
    peqa_st_file *f = NULL;
    if (peqa_st_open(path, &f)) return 0;
    const peqa_st_tensor *t = peqa_st_find(f, name);
    size_t len;
    unsigned char *b = read_all(path, &len);
    int ok = t && b && len >= 8;
    if (ok) {
        uint64_t hl = 0;
        for (int i = 0; i < 8; i++) hl |= (uint64_t)b[i] << (8 * i);
        size_t off = (size_t)(8 + hl + t->begin + at);
        ok = off + 4 <= len;
        if (ok) memcpy(b + off, bytes4, 4), ok = write_all(path, b, len);
    }
    free(b);
    peqa_st_close(f);
    return ok;
}

/* ---- (b) quantized file ------------------------------------------------------------------------ */

static int models_equal(peqa_ctx *ctx, peqa_model *a, peqa_model *b, char *why, size_t n)
{
    char *ja = NULL, *jb = NULL;
    peqa_model_config_json(&a->cfg, &ja), peqa_model_config_json(&b->cfg, &jb);
    int ok = ja && jb && !strcmp(ja, jb) && a->bits == b->bits && a->group == b->group && a->quantized == b->quantized;
    free(ja), free(jb);
    if (!ok) return snprintf(why, n, "config / bits / group differ"), 0;
    uint64_t ha = 0, hb = 1;
    peqa_model_codes_hash(a, &ha), peqa_model_codes_hash(b, &hb);
    if (ha != hb) return snprintf(why, n, "codes hash differs"), 0;
    for (int64_t i = 0; i < peqa_model_tensor_count(a); i++) {
        peqa_model_tensor ta, tb;
        peqa_model_tensor_at(a, i, &ta), peqa_model_tensor_at(b, i, &tb);
        if (ta.f32 && memcmp(ta.f32, tb.f32, (size_t)ta.numel * 4)) return snprintf(why, n, "tensor %s differs", ta.name), 0;
    }
    size_t na, nb;
    float *va = param_values(a, 1, &na), *vb = param_values(b, 1, &nb);
    ok = va && vb && na == nb && !memcmp(va, vb, na * 4);
    free(va), free(vb);
    if (!ok) return snprintf(why, n, "scales or zero points differ"), 0;
    int32_t tok[24];
    for (int i = 0; i < 24; i++) tok[i] = (int32_t)((i * 7 + 3) % a->cfg.vocab);
    float *la = logits_of(ctx, a, tok, 24), *lb = logits_of(ctx, b, tok, 24);
    ok = la && lb && !memcmp(la, lb, (size_t)(24 * a->cfg.vocab) * 4);
    free(la), free(lb);
    if (!ok) return snprintf(why, n, "logits differ"), 0;
    snprintf(why, n, "config, hash, tensors, scales, zeros, logits identical");
    return 1;
}

static void qfile_tests(trun *r, peqa_ctx *ctx, const char *dir)
{
    char path[256], bad[256];
    snprintf(path, sizeof path, "%s/q.safetensors", dir);
    snprintf(bad, sizeof bad, "%s/bad.safetensors", dir);
    for (int variant = 0; variant < 2; variant++) {
        peqa_model_config c = small_config(variant);
        peqa_model *m = variant ? q_model(&c, 21, 3, 0) : q_model(&c, 20, 4, 32);
        peqa_model *l = NULL;
        char why[256] = "";
        const char *name = variant ? "train/qfile/roundtrip_q3_channel_tied" : "train/qfile/roundtrip_q4_g32";
        int ok = m && peqa_qfile_save(m, path) == PEQA_OK && peqa_model_open(path, &l) == PEQA_OK && l;
        if (ok) ok = models_equal(ctx, m, l, why, sizeof why);
        else snprintf(why, sizeof why, "%s", peqa_last_error());
        t_result(r, ok, name, "-", "%s", why);
        peqa_model_free(m), peqa_model_free(l);
    }
    /* damaged files: each must be refused with the expected status and message */
    peqa_model_config c = small_config(0);
    peqa_model *m = q_model(&c, 20, 4, 32);
    peqa_qfile_save(m, path);
    static const struct {
        const char *name;
        rewrite rw;
        peqa_status want;
        const char *msg;
    } cases[] = {
        /* (without "peqa.format", peqa_model_open takes a file for a Hugging Face checkpoint;
         * the quantized reader itself must refuse it) */
        {"no_format", {.meta_key = "peqa.format"}, PEQA_ERR_FORMAT, "peqa.format"},
        {"version_2", {.meta_key = "peqa.version", .meta_val = "2"}, PEQA_ERR_FORMAT, "version"},
        {"pack_format_9", {.meta_key = "peqa.pack_format", .meta_val = "9"}, PEQA_ERR_FORMAT, "pack_format"},
        {"bits_5", {.meta_key = "peqa.bits", .meta_val = "5"}, PEQA_ERR_FORMAT, "peqa.bits"},
        {"group_48", {.meta_key = "peqa.group", .meta_val = "48"}, PEQA_ERR_GROUP, "group"},
        {"no_hash", {.meta_key = "peqa.codes_hash"}, PEQA_ERR_FORMAT, "codes_hash"},
        {"bad_config", {.meta_key = "peqa.config", .meta_val = "{\"hidden_size\": 64}"}, PEQA_ERR_FORMAT, "peqa.config"},
        {"missing_scales", {.drop = "model.layers.1.mlp.up_proj.scales"}, PEQA_ERR_FORMAT, "up_proj.scales"},
        {"missing_embed", {.drop = "model.embed_tokens.weight"}, PEQA_ERR_FORMAT, "embed_tokens"},
        {"extra_tensor", {.add = "model.layers.0.mlp.extra"}, PEQA_ERR_FORMAT, "unexpected tensor"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char name[96];
        snprintf(name, sizeof name, "train/qfile/refuse_%s", cases[i].name);
        peqa_model *l = NULL;
        int made = rewrite_file(path, bad, &cases[i].rw);
        peqa_status st = !made ? PEQA_OK : i == 0 ? peqa_qfile_load(bad, &l) : peqa_model_open(bad, &l);
        int ok = made && st == cases[i].want && !l && (!cases[i].msg || msg_has(cases[i].msg));
        t_result(r, ok, name, "-", "status %d (want %d): %s", (int)st, (int)cases[i].want, peqa_last_error());
        peqa_model_free(l);
    }
    /* bytes damaged in place */
    {
        const uint32_t flip = 0x00000001u; /* code bits of rows 0..15, block 0 of q_proj */
        peqa_model *l = NULL;
        size_t len;
        unsigned char *orig = read_all(path, &len);
        write_all(bad, orig, len);
        /* xor the first word of layer 0's q_proj image with 1 */
        peqa_st_file *f = NULL;
        uint32_t w0 = 0;
        if (peqa_st_open(bad, &f) == PEQA_OK) {
            const peqa_st_tensor *t = peqa_st_find(f, "model.layers.0.self_attn.q_proj.qweight");
            uint64_t hl = 0;
            for (int i = 0; i < 8; i++) hl |= (uint64_t)orig[i] << (8 * i);
            if (t) memcpy(&w0, orig + 8 + hl + t->begin, 4);
            peqa_st_close(f);
        }
        w0 ^= flip;
        int made = patch_tensor(bad, "model.layers.0.self_attn.q_proj.qweight", 0, &w0);
        peqa_status st = made ? peqa_model_open(bad, &l) : PEQA_OK;
        t_result(r, made && st == PEQA_ERR_FORMAT && msg_has("codes hash") && !l, "train/qfile/refuse_flipped_code", "-",
                 "status %d: %s", (int)st, peqa_last_error());
        peqa_model_free(l), l = NULL;
        write_all(bad, orig, len);
        const float nan = NAN;
        made = patch_tensor(bad, "model.layers.1.self_attn.o_proj.scales", 8, &nan);
        st = made ? peqa_model_open(bad, &l) : PEQA_OK;
        t_result(r, made && st == PEQA_ERR_NONFINITE && msg_has("o_proj.scales") && !l, "train/qfile/refuse_nan_scale", "-",
                 "status %d: %s", (int)st, peqa_last_error());
        peqa_model_free(l), l = NULL;
        /* a qweight of the wrong length (a 3-bit image where 4-bit is expected) */
        peqa_model *m3 = q_model(&c, 20, 3, 32);
        char p3[256];
        snprintf(p3, sizeof p3, "%s/q3.safetensors", dir);
        peqa_qfile_save(m3, p3);
        rewrite rw = {.meta_key = "peqa.bits", .meta_val = "4"};
        made = rewrite_file(p3, bad, &rw);
        st = made ? peqa_model_open(bad, &l) : PEQA_OK;
        t_result(r, made && st == PEQA_ERR_SHAPE && msg_has("bytes") && !l, "train/qfile/refuse_qweight_length", "-",
                 "status %d: %s", (int)st, peqa_last_error());
        peqa_model_free(l), peqa_model_free(m3);
        free(orig);
    }
    /* a full-precision model is refused by the writer; a full-precision checkpoint still opens */
    {
        peqa_model *f = fp_model(&c, 3, 0.1f), *l = NULL;
        char d2[256];
        snprintf(d2, sizeof d2, "%s/fp", dir);
        int ok = peqa_qfile_save(f, path) == PEQA_ERR_ARG && peqa_model_save(f, d2) == PEQA_OK &&
                 peqa_model_open(d2, &l) == PEQA_OK && l && !l->quantized;
        t_result(r, ok, "train/qfile/fp32_refused_and_open_dispatch", "-", "%s", ok ? "qfile_save refuses fp32; model_open loads a HF dir" : peqa_last_error());
        peqa_model_free(f), peqa_model_free(l);
        snprintf(d2, sizeof d2, "%s/fp/model.safetensors", dir);
        unlink(d2);
        snprintf(d2, sizeof d2, "%s/fp/config.json", dir);
        unlink(d2);
        snprintf(d2, sizeof d2, "%s/fp", dir);
        rmdir(d2);
    }
    peqa_model_free(m);
}

/* ---- (c) scale files ------------------------------------------------------------------------------ */

/* Multiplies every scale (and, with zeros, adds 0.5 to every zero point) deterministically. */
static void perturb(peqa_model *m, int zeros)
{
    for (int64_t i = 0; i < peqa_model_linear_count(m); i++) {
        peqa_qtensor *q = peqa_model_linear_at(m, i)->q;
        peqa_qtensor_info in;
        peqa_qtensor_get_info(q, &in);
        float *s = malloc((size_t)(in.n * in.ngroups) * sizeof *s);
        peqa_qtensor_get_scales(q, s);
        for (int64_t e = 0; e < in.n * in.ngroups; e++) s[e] *= 1.0f + 0.01f * (float)((e + i) % 7);
        peqa_qtensor_set_scales(q, s);
        if (zeros) {
            peqa_qtensor_get_zeros(q, s);
            for (int64_t e = 0; e < in.n * in.ngroups; e++) s[e] += 0.5f;
            peqa_qtensor_set_zeros(q, s);
        }
        free(s);
    }
}

static void scales_tests(trun *r, peqa_ctx *ctx, const char *dir)
{
    char qpath[256], spath[256], other[256];
    snprintf(qpath, sizeof qpath, "%s/base.safetensors", dir);
    snprintf(spath, sizeof spath, "%s/task.scales", dir);
    peqa_model_config c = small_config(0);
    peqa_model *base = q_model(&c, 30, 4, 32);
    peqa_qfile_save(base, qpath);
    for (int zeros = 0; zeros < 2; zeros++) {
        peqa_model *tuned = NULL, *fresh = NULL;
        peqa_model_open(qpath, &tuned);
        peqa_model_open(qpath, &fresh);
        perturb(tuned, zeros);
        const char *extra[] = {"peqa.train.steps", "10", NULL};
        int had = -1;
        char why[256] = "";
        int ok = tuned && fresh && peqa_scales_save(tuned, zeros, spath, extra) == PEQA_OK &&
                 peqa_scales_apply(fresh, spath, &had) == PEQA_OK && had == zeros;
        if (ok) ok = models_equal(ctx, tuned, fresh, why, sizeof why);
        else snprintf(why, sizeof why, "%s", peqa_last_error());
        t_result(r, ok, zeros ? "train/scales/roundtrip_with_zeros" : "train/scales/roundtrip", "-", "%s", why);
        peqa_model_free(tuned), peqa_model_free(fresh);
    }
    /* mismatches: the scale file of `base` (scales only) applied to other integer models */
    {
        peqa_model *tuned = NULL;
        peqa_model_open(qpath, &tuned);
        perturb(tuned, 0);
        peqa_scales_save(tuned, 0, spath, NULL);
        peqa_model_free(tuned);
        peqa_model_config c2 = small_config(0);
        c2.ffn = 160;
        struct {
            const char *name;
            peqa_model *m;
            const char *msg;
        } mm[] = {
            {"train/scales/refuse_other_codes", q_model(&c, 31, 4, 32), "different integer model"},
            {"train/scales/refuse_other_shape", q_model(&c2, 30, 4, 32), "different integer model"},
            {"train/scales/refuse_other_bits", q_model(&c, 30, 3, 32), "3-bit"},
            {"train/scales/refuse_other_group", q_model(&c, 30, 4, 64), "group size"},
        };
        for (size_t i = 0; i < sizeof mm / sizeof mm[0]; i++) {
            size_t n0, n1;
            float *before = param_values(mm[i].m, 0, &n0);
            peqa_status st = peqa_scales_apply(mm[i].m, spath, NULL);
            float *after = param_values(mm[i].m, 0, &n1);
            int unchanged = before && after && n0 == n1 && !memcmp(before, after, n0 * 4);
            t_result(r, st == PEQA_ERR_ARG && msg_has(mm[i].msg) && unchanged, mm[i].name, "-", "status %d, %s; model %s", (int)st,
                     peqa_last_error(), unchanged ? "unchanged" : "CHANGED");
            free(before), free(after);
            peqa_model_free(mm[i].m);
        }
        /* wrong kinds of file in each role */
        peqa_model *l = NULL, *b2 = NULL;
        peqa_model_open(qpath, &b2);
        peqa_status s1 = peqa_model_open(spath, &l);
        int ok1 = s1 == PEQA_ERR_ARG && msg_has("scale file") && !l;
        peqa_status s2 = peqa_scales_apply(b2, qpath, NULL);
        int ok2 = s2 == PEQA_ERR_ARG && msg_has("quantized model file");
        /* a scale file with a NaN */
        snprintf(other, sizeof other, "%s/nan.scales", dir);
        size_t len;
        unsigned char *bytes = read_all(spath, &len);
        write_all(other, bytes, len);
        free(bytes);
        const float nan = NAN;
        patch_tensor(other, "model.layers.0.mlp.down_proj.scales", 4, &nan);
        peqa_status s3 = peqa_scales_apply(b2, other, NULL);
        int ok3 = s3 == PEQA_ERR_NONFINITE && msg_has("down_proj.scales");
        rewrite rw = {.drop = "model.layers.1.self_attn.k_proj.scales"};
        rewrite_file(spath, other, &rw);
        peqa_status s4 = peqa_scales_apply(b2, other, NULL);
        int ok4 = s4 == PEQA_ERR_FORMAT;
        t_result(r, ok1 && ok2 && ok3 && ok4, "train/scales/refuse_wrong_files", "-", "open(scales) %d, apply(qfile) %d, NaN %d, missing %d",
                 (int)s1, (int)s2, (int)s3, (int)s4);
        peqa_model_free(b2);
    }
    peqa_model_free(base);
}

/* ---- training helpers ----------------------------------------------------------------------------- */

typedef struct {
    float loss[64], gnorm[64];
    int64_t n;
    int64_t first_step;     /* step of loss[0] */
    int stop_at;            /* callback returns 1 after this step (0: never) */
    volatile sig_atomic_t *flag;
    int flag_at;            /* set *flag after this step */
    peqa_model *poison;     /* fill its embedding with NaN after step poison_at */
    int poison_at;
    const char *snap_path;  /* snapshot this file's bytes at every checkpoint event */
    unsigned char *snap;
    size_t snap_len;
    int64_t snap_step;
    int vals;
    float first_val, last_val;
} rec;

static int rec_cb(const peqa_train_event *ev, void *user)
{
    rec *R = user;
    if (ev->kind == PEQA_TRAIN_EV_STEP) {
        if (R->n == 0) R->first_step = ev->step;
        if (R->n < 64) R->gnorm[R->n] = ev->grad_norm, R->loss[R->n++] = ev->loss;
        if (R->flag && ev->step == R->flag_at) *R->flag = 1;
        if (R->poison && ev->step == R->poison_at) {
            const size_t n = (size_t)(R->poison->cfg.vocab * R->poison->cfg.dim);
            for (size_t i = 0; i < n; i++) R->poison->embed[i] = NAN;
        }
        if (R->stop_at && ev->step == R->stop_at) return 1;
    } else if (ev->kind == PEQA_TRAIN_EV_CKPT && R->snap_path) {
        free(R->snap);
        R->snap = read_all(R->snap_path, &R->snap_len);
        R->snap_step = ev->step;
    } else if (ev->kind == PEQA_TRAIN_EV_VAL) {
        if (!R->vals++) R->first_val = ev->val_loss;
        R->last_val = ev->val_loss;
    }
    return 0;
}

static void golden_options(peqa_train_options *o, rec *R)
{
    peqa_train_options_default(o);
    o->batch = 2, o->seq = 16, o->accum = 2, o->steps = 10, o->warmup = 2, o->lr = 2e-3f, o->clip = 0.5f;
    o->schedule = PEQA_SCHED_COSINE, o->seed = 7;
    o->callback = rec_cb, o->user = R;
}

/* ---- (d) golden trajectory ------------------------------------------------------------------------- */

/* Generated once with the scalar ISA and 1 thread, then frozen. A failing run prints its
 * loss/gradient-norm pairs; after an INTENDED change of the training arithmetic, copy the values
 * of the scalar 1-thread line here (and say why in the commit). */
static const char *const golden_losses[10] = {
    "0x1.028d78p+2", "0x1.09ad4p+2", "0x1.fe650cp+1", "0x1.025792p+2", "0x1.fa9622p+1",
    "0x1.0151aap+2", "0x1.f698d4p+1", "0x1.f721d8p+1", "0x1.03b2ecp+2", "0x1.020494p+2",
};
static const char *const golden_gnorms[10] = {
    "0x1.0eefacp+3", "0x1.1f01a2p+3", "0x1.d4612ap+2", "0x1.96db8ap+2", "0x1.767568p+2",
    "0x1.cceb9ep+2", "0x1.e449bep+2", "0x1.4095bep+2", "0x1.e9242ep+2", "0x1.dbe888p+2",
};

static void golden_trajectory(trun *r)
{
    peqa_model_config c = tiny_config(0);
    uint32_t *data = rand_tokens(2000, 48, 99);
    float *ref = NULL;
    size_t nref = 0;
    for (int ii = 0; ii < t_nisas; ii++)
        for (int th = 1; th <= 3; th += r->quick ? 2 : 1) { /* --quick (qemu): 1 and 3 threads */
            char name[96];
            snprintf(name, sizeof name, "train/golden/loss_trajectory_%dt", th);
            peqa_ctx *ctx = t_ctx(t_isas[ii], th);
            if (!ctx) {
                if (th == 1) t_skip(r, "train/golden/loss_trajectory", t_isas[ii], "ISA not available on this CPU");
                continue;
            }
            peqa_model *m = q_model(&c, 40, 4, 32);
            rec R = {0};
            peqa_train_options o;
            golden_options(&o, &R);
            o.train_zeros = 1, o.weight_decay = 0.1f;
            peqa_train_result res;
            peqa_status st = m ? peqa_train(ctx, m, data, 2000, NULL, 0, &o, &res) : PEQA_ERR_NOMEM;
            int ok = st == PEQA_OK && R.n == 10 && res.steps_done == 10;
            int bad = -1;
            char got[10 * 40 + 1] = "";
            for (int i = 0; ok && i < 10; i++) {
                float want = (float)strtod(golden_losses[i], NULL), wantg = (float)strtod(golden_gnorms[i], NULL);
                if ((!same_f32(R.loss[i], want) || !same_f32(R.gnorm[i], wantg)) && bad < 0) bad = i;
            }
            for (int i = 0; i < (int)R.n && i < 10; i++) {
                size_t l = strlen(got);
                snprintf(got + l, sizeof got - l, "%a/%a ", (double)R.loss[i], (double)R.gnorm[i]);
            }
            size_t nv;
            float *vals = m ? param_values(m, 1, &nv) : NULL;
            int same_params = 1;
            if (ok && vals) {
                if (!ref) ref = vals, nref = nv, vals = NULL;
                else same_params = nv == nref && !memcmp(vals, ref, nv * 4);
            }
            free(vals);
            ok = ok && bad < 0 && same_params;
            if (ok)
                t_result(r, 1, name, peqa_ctx_isa(ctx), "10 losses and gradient norms equal the golden bits (loss %a .. %a); scales, zeros identical",
                         (double)R.loss[0], (double)R.loss[9]);
            else
                t_result(r, 0, name, peqa_ctx_isa(ctx), "status %d (%s); first mismatching step %d; scales %s; loss/gnorm: %s", (int)st,
                         st ? peqa_last_error() : "", bad + 1, same_params ? "same" : "DIFFER", got);
            peqa_model_free(m);
            peqa_ctx_free(ctx);
        }
    /* the trajectory must depend on what it claims to: another seed gives other losses */
    {
        peqa_ctx *ctx = t_ctx("scalar", 1);
        peqa_model *m = q_model(&c, 40, 4, 32);
        rec R = {0};
        peqa_train_options o;
        golden_options(&o, &R);
        o.seed = 8;
        peqa_status st = peqa_train(ctx, m, data, 2000, NULL, 0, &o, NULL);
        int differs = st == PEQA_OK && R.n == 10 && !same_f32(R.loss[0], (float)strtod(golden_losses[0], NULL));
        t_result(r, differs, "train/golden/seed_changes_data_order", "scalar", "step-1 loss %a with seed 8", (double)R.loss[0]);
        peqa_model_free(m);
        peqa_ctx_free(ctx);
    }
    free(ref);
    free(data);
}

/* ---- (e) resume --------------------------------------------------------------------------------- */

static void resume_case(trun *r, peqa_ctx *ctx, const char *dir, int quantized)
{
    const char *tag = quantized ? "q4_zeros" : "fp32";
    char full[256], half[256], done[256], name[96];
    snprintf(full, sizeof full, "%s/full_%s.ckpt", dir, tag);
    snprintf(half, sizeof half, "%s/half_%s.ckpt", dir, tag);
    snprintf(done, sizeof done, "%s/done_%s.ckpt", dir, tag);
    peqa_model_config c = tiny_config(!quantized);
    /* 15 windows of 17 tokens per epoch and 4 windows per step: epoch 0 ends inside step 4,
     * and the stop after step 5 falls in the middle of epoch 1 */
    const size_t ntok = 15 * 16 + 1 + 5;
    uint32_t *data = rand_tokens(ntok, 48, 5);
    peqa_model *a = quantized ? q_model(&c, 50, 4, 32) : fp_model(&c, 50, 0.1f);
    peqa_model *b = quantized ? q_model(&c, 50, 4, 32) : fp_model(&c, 50, 0.1f);
    peqa_train_options o;
    rec RA = {0}, RB = {0}, RC = {0};
    golden_options(&o, &RA);
    o.train_zeros = quantized, o.weight_decay = 0.01f, o.ckpt_path = full, o.ckpt_final = 1;
    peqa_status s1 = peqa_train(ctx, a, data, ntok, NULL, 0, &o, NULL);
    /* 5 steps, stopped by the callback */
    o.ckpt_path = half, o.ckpt_final = 0, o.user = &RB, o.stop_after = 5;
    peqa_train_result rb;
    peqa_status s2 = peqa_train(ctx, b, data, ntok, NULL, 0, &o, &rb);
    peqa_model_free(b);
    /* resume on a fresh model */
    b = quantized ? q_model(&c, 50, 4, 32) : fp_model(&c, 50, 0.1f);
    o.stop_after = 0, o.resume = half, o.ckpt_path = done, o.ckpt_final = 1, o.user = &RC;
    peqa_train_result rc;
    peqa_status s3 = peqa_train(ctx, b, data, ntok, NULL, 0, &o, &rc);
    size_t na, nb;
    float *va = param_values(a, quantized, &na), *vb = param_values(b, quantized, &nb);
    int params_same = va && vb && na == nb && !memcmp(va, vb, na * 4);
    int losses_same = RA.n == 10 && RB.n == 5 && RC.n == 5 && RC.first_step == 6 && !memcmp(RA.loss, RB.loss, 5 * 4) &&
                      !memcmp(RA.loss + 5, RC.loss, 5 * 4);
    int files_same = same_file(full, done);
    snprintf(name, sizeof name, "train/resume/5_plus_5_equals_10_%s", tag);
    t_result(r, !s1 && !s2 && !s3 && rb.stopped && rb.steps_done == 5 && rc.resumed_from == 5 && params_same && losses_same && files_same,
             name, peqa_ctx_isa(ctx), "status %d/%d/%d (%s); stopped %d at %lld; params %s, losses %s, final checkpoints %s", (int)s1,
             (int)s2, (int)s3, s1 || s2 || s3 ? peqa_last_error() : "ok", rb.stopped, (long long)rb.steps_done,
             params_same ? "same" : "DIFFER", losses_same ? "same" : "DIFFER", files_same ? "byte-identical" : "DIFFER");
    free(va), free(vb);
    /* refusals: other lr, other data, other integer model */
    if (quantized) {
        peqa_model *fresh = q_model(&c, 50, 4, 32);
        peqa_train_options p = o;
        p.lr = 1e-3f, p.ckpt_path = NULL, p.ckpt_final = 0;
        peqa_status e1 = peqa_train(ctx, fresh, data, ntok, NULL, 0, &p, NULL);
        int ok1 = e1 == PEQA_ERR_ARG && msg_has("--lr");
        p = o, p.ckpt_path = NULL, p.ckpt_final = 0;
        data[3] ^= 1;
        peqa_status e2 = peqa_train(ctx, fresh, data, ntok, NULL, 0, &p, NULL);
        data[3] ^= 1;
        int ok2 = e2 == PEQA_ERR_ARG && msg_has("data");
        peqa_model *other = q_model(&c, 51, 4, 32);
        peqa_status e3 = peqa_train(ctx, other, data, ntok, NULL, 0, &p, NULL);
        int ok3 = e3 == PEQA_ERR_ARG && msg_has("different integer model");
        peqa_model *fpm = fp_model(&c, 50, 0.1f);
        peqa_status e4 = peqa_train(ctx, fpm, data, ntok, NULL, 0, &p, NULL);
        int ok4 = e4 == PEQA_ERR_ARG && msg_has("quantized");
        t_result(r, ok1 && ok2 && ok3 && ok4, "train/resume/refuse_mismatch", "-", "lr %d, data %d, codes %d, mode %d; last: %s", (int)e1,
                 (int)e2, (int)e3, (int)e4, peqa_last_error());
        /* hyperparameters read back from a checkpoint */
        peqa_train_options h;
        memset(&h, 0, sizeof h);
        int64_t at = -1;
        int ok5 = peqa_train_ckpt_options(half, &h, &at) == PEQA_OK && at == 5 && h.batch == 2 && h.seq == 16 && h.accum == 2 &&
                  h.steps == 10 && h.warmup == 2 && same_f32(h.lr, 2e-3f) && same_f32(h.clip, 0.5f) && h.seed == 7 &&
                  h.train_zeros == 1 && h.schedule == PEQA_SCHED_COSINE && same_f32(h.weight_decay, 0.01f);
        t_result(r, ok5, "train/resume/ckpt_options", "-", "step %lld, batch %lld, lr %a", (long long)at, (long long)h.batch, (double)h.lr);
        peqa_model_free(fresh), peqa_model_free(other), peqa_model_free(fpm);
    }
    peqa_model_free(a), peqa_model_free(b);
    free(data);
    unlink(full), unlink(half), unlink(done);
}

static void stop_flag_case(trun *r, peqa_ctx *ctx, const char *dir)
{
    char ck[256];
    snprintf(ck, sizeof ck, "%s/flag.ckpt", dir);
    peqa_model_config c = small_config(0);
    uint32_t *data = rand_tokens(600, 64, 6);
    peqa_model *m = q_model(&c, 60, 4, 32);
    static volatile sig_atomic_t flag;
    flag = 0;
    rec R = {.flag = &flag, .flag_at = 3};
    peqa_train_options o;
    golden_options(&o, &R);
    o.ckpt_path = ck, o.stop = &flag;
    peqa_train_result res;
    peqa_status st = peqa_train(ctx, m, data, 600, NULL, 0, &o, &res);
    int64_t at = -1;
    peqa_train_options h;
    peqa_train_options_default(&h);
    int ok = st == PEQA_OK && res.stopped && res.ckpt_written && res.steps_done == 3 && R.n == 3 &&
             peqa_train_ckpt_options(ck, &h, &at) == PEQA_OK && at == 3 && access(ck, F_OK) == 0;
    char tmp[300];
    snprintf(tmp, sizeof tmp, "%s.tmp", ck);
    ok = ok && access(tmp, F_OK) != 0;
    t_result(r, ok, "train/resume/stop_flag_checkpoints", "-", "status %d, stopped %d at step %lld, checkpoint step %lld", (int)st,
             res.stopped, (long long)res.steps_done, (long long)at);
    unlink(ck);
    peqa_model_free(m);
    free(data);
}

/* ---- (f) non-finite ----------------------------------------------------------------------------------- */

static void nonfinite_cases(trun *r, peqa_ctx *ctx, const char *dir)
{
    char ck[256], tmp[300];
    snprintf(ck, sizeof ck, "%s/nf.ckpt", dir);
    snprintf(tmp, sizeof tmp, "%s.tmp", ck);
    peqa_model_config c = small_config(0);
    uint32_t *data = rand_tokens(600, 64, 8);
    peqa_model *m = q_model(&c, 70, 4, 32);
    rec R = {.poison = m, .poison_at = 4, .snap_path = ck};
    peqa_train_options o;
    golden_options(&o, &R);
    o.ckpt_path = ck, o.ckpt_every = 2;
    peqa_status st = peqa_train(ctx, m, data, 600, NULL, 0, &o, NULL);
    char msg[512];
    snprintf(msg, sizeof msg, "%s", peqa_last_error());
    size_t len = 0;
    unsigned char *now = read_all(ck, &len);
    int intact = R.snap && now && len == R.snap_len && !memcmp(now, R.snap, len) && R.snap_step == 4;
    int64_t at = -1;
    peqa_train_options h;
    peqa_train_options_default(&h);
    int readable = peqa_train_ckpt_options(ck, &h, &at) == PEQA_OK && at == 4;
    int ok = st == PEQA_ERR_NONFINITE && strstr(msg, "step 5") && strstr(msg, "intact") && intact && readable &&
             access(tmp, F_OK) != 0 && R.n == 4;
    t_result(r, ok, "train/nonfinite/nan_stops_checkpoint_intact", "-", "status %d, %d steps; checkpoint %s (step %lld); %s", (int)st,
             (int)R.n, intact ? "intact" : "CHANGED", (long long)at, msg);
    free(now), free(R.snap);
    peqa_model_free(m);
    unlink(ck);
    /* a huge learning rate: scales blow up, the run stops with a clear error */
    m = q_model(&c, 70, 4, 32);
    rec R2 = {0};
    golden_options(&o, &R2);
    o.lr = 1e30f, o.warmup = 0;
    st = peqa_train(ctx, m, data, 600, NULL, 0, &o, NULL);
    ok = st == PEQA_ERR_NONFINITE && msg_has("step ") && R2.n < 10;
    t_result(r, ok, "train/nonfinite/huge_lr", "-", "status %d after %d steps: %s", (int)st, (int)R2.n, peqa_last_error());
    peqa_model_free(m);
    free(data);
}

/* ---- (g) learning ------------------------------------------------------------------------------------ */

static void learning_cases(trun *r, peqa_ctx *ctx)
{
    peqa_model_config c = tiny_config(0);
    uint32_t *train = cycle_tokens(4096, 48, 24, 3), *val = cycle_tokens(600, 48, 24, 3);
    for (int quantized = 1; quantized >= 0; quantized--) {
        peqa_model *m = quantized ? q_model(&c, 80, 4, 32) : fp_model(&c, 80, 0.1f);
        rec R = {0};
        peqa_train_options o;
        peqa_train_options_default(&o);
        o.batch = 4, o.seq = 32, o.steps = quantized ? 40 : 25, o.lr = quantized ? 2e-2f : 5e-3f, o.warmup = 5;
        o.callback = rec_cb, o.user = &R;
        peqa_train_result res;
        peqa_status st = peqa_train(ctx, m, train, 4096, val, 600, &o, &res);
        const float need = quantized ? 0.75f : 0.5f;
        int ok = st == PEQA_OK && R.vals == 2 && res.has_val && R.last_val < need * R.first_val;
        t_result(r, ok, quantized ? "train/learning/peqa_lowers_val_loss" : "train/learning/fp32_lowers_val_loss", peqa_ctx_isa(ctx),
                 "status %d; val loss %.4f -> %.4f (need < %.2f x), train loss %.4f -> %.4f, %.0f tokens/s", (int)st, (double)R.first_val,
                 (double)R.last_val, (double)need, (double)R.loss[0], (double)res.last_loss, res.tokens_per_s);
        peqa_model_free(m);
    }
    free(train), free(val);
}

/* ---- (h) option errors ------------------------------------------------------------------------------- */

static void option_errors(trun *r, peqa_ctx *ctx)
{
    peqa_model_config c = small_config(0);
    peqa_model *m = q_model(&c, 90, 4, 32);
    uint32_t *data = rand_tokens(300, 64, 9);
    static const struct {
        const char *name, *msg;
        int what;
    } cases[] = {
        {"batch_0", "batch", 0},   {"seq_too_long", "max_position", 1}, {"data_too_short", "need at least", 2},
        {"lr_nan", "lr", 3},       {"ckpt_without_path", "checkpoint", 4}, {"epochs_0", "epochs", 5},
        {"beta_1", "beta", 6},     {"token_out_of_vocab", "vocabulary", 7}, {"clip_negative", "clip", 8},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        peqa_train_options o;
        peqa_train_options_default(&o);
        o.batch = 2, o.seq = 16, o.steps = 2;
        size_t n = 300;
        switch (cases[i].what) {
        case 0: o.batch = 0; break;
        case 1: o.seq = 129; break;
        case 2: n = 16; break;
        case 3: o.lr = NAN; break;
        case 4: o.ckpt_every = 1; break;
        case 5: o.steps = 0, o.epochs = 0; break;
        case 6: o.beta1 = 1.0f; break;
        case 7: data[100] = 64; break;
        default: o.clip = -1.0f; break;
        }
        size_t np0, np1;
        float *before = param_values(m, 0, &np0);
        peqa_status st = peqa_train(ctx, m, data, n, NULL, 0, &o, NULL);
        float *after = param_values(m, 0, &np1);
        data[100] = 1;
        char name[96];
        snprintf(name, sizeof name, "train/options/refuse_%s", cases[i].name);
        int want = cases[i].what == 7 ? PEQA_ERR_RANGE : PEQA_ERR_ARG;
        int unchanged = before && after && !memcmp(before, after, np0 * 4);
        t_result(r, (int)st == want && msg_has(cases[i].msg) && unchanged, name, "-", "status %d: %s", (int)st, peqa_last_error());
        free(before), free(after);
    }
    peqa_model_free(m);
    free(data);
}

void test_train(trun *r)
{
    optim_tests(r);
    peqa_ctx *ctx = t_ctx("scalar", 1);
    peqa_ctx *fast = t_ctx(NULL, 1); /* thread counts are covered by the golden */
    char dir[64];
    snprintf(dir, sizeof dir, "/tmp/peqa_train_XXXXXX");
    if (!ctx || !fast || !mkdtemp(dir)) {
        t_result(r, 0, "train/setup", "-", "cannot create contexts or a temporary directory");
        peqa_ctx_free(ctx), peqa_ctx_free(fast);
        return;
    }
    qfile_tests(r, ctx, dir);
    scales_tests(r, ctx, dir);
    golden_trajectory(r);
    resume_case(r, fast, dir, 1);
    resume_case(r, fast, dir, 0);
    stop_flag_case(r, fast, dir);
    nonfinite_cases(r, fast, dir);
    learning_cases(r, fast);
    option_errors(r, ctx);
    /* the directory holds only files these tests made */
    const char *left[] = {"q.safetensors", "bad.safetensors", "q3.safetensors", "base.safetensors", "task.scales", "nan.scales"};
    for (size_t i = 0; i < sizeof left / sizeof left[0]; i++) {
        char p[256];
        snprintf(p, sizeof p, "%s/%s", dir, left[i]);
        unlink(p);
    }
    rmdir(dir);
    peqa_ctx_free(ctx), peqa_ctx_free(fast);
}
