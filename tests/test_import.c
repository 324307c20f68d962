/* Import formats: llama2.c checkpoints and tokenizer.bin (src/llama2c.h), llm.c token shards,
 * headerless uint16 tokens, the byte tokenizer and dataset loading (src/tokens.h).
 *
 *  - Checkpoints are built here byte by byte (layout written out independently of the library),
 *    with a shared and an unshared classifier and GQA (n_kv_heads < n_heads). After conversion
 *    every tensor is read back through peqa_st_* and compared bit for bit with its source slice;
 *    q/k rows through the explicit index formula of formats.md §2.6, and by the property the
 *    permutation exists for: interleaved (Meta) RoPE of the original rows equals rotate-half (HF)
 *    RoPE of the converted rows, and so do the attention scores, in double, for random vectors and
 *    positions. A control shows the same check rejects unpermuted rows.
 *  - Every header check and length check on hand-made bad checkpoints: status, the path and the
 *    reason in the message, and no output file left behind.
 *  - tokenizer.bin: hand-checked encodings (score order, leftmost tie, byte fallback, multi-byte
 *    characters), decode(encode(text)) == text including 0x00 and 0xFF, the heap encoder against a
 *    naive rescanning encoder written here on random texts with many tied scores, bad files.
 *  - Shards of both widths: exact bytes on disk, round trips, every reader check; raw uint16; the
 *    byte tokenizer over all 256 bytes; dataset loading by content and by name.
 * Files live in a fresh mkdtemp directory under /tmp, removed at the end.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "../src/json.h"
#include "../src/llama2c.h"
#include "../src/safetensors.h"
#include "../src/tokens.h"
#include "prng.h"
#include "test.h"

/* ---- helpers ----------------------------------------------------------------------------- */

typedef struct {
    char dir[64];
    char paths[256][160];
    int npaths;
    char dirs[8][160];
    int ndirs;
} tdir;

static const char *tpath(tdir *td, const char *name)
{
    if (td->npaths == (int)(sizeof td->paths / sizeof td->paths[0])) return "/nonexistent/too-many-test-files";
    char *p = td->paths[td->npaths++], tmp[sizeof td->paths[0]];
    snprintf(tmp, sizeof tmp, "%.63s/%.95s", td->dir, name); /* via tmp: name may live in td too */
    memcpy(p, tmp, sizeof tmp);
    return p;
}

static const char *tsubdir(tdir *td, const char *name)
{
    char *p = td->dirs[td->ndirs++], tmp[sizeof td->dirs[0]];
    snprintf(tmp, sizeof tmp, "%.63s/%.95s", td->dir, name);
    memcpy(p, tmp, sizeof tmp);
    return p;
}

static int msg_has(const char *needle) { return needle == NULL || strstr(peqa_last_error(), needle) != NULL; }

static int exists(const char *p)
{
    struct stat sb;
    return stat(p, &sb) == 0;
}

static int write_file(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    if (!f) return 0;
    int ok = len == 0 || fwrite(data, 1, len, f) == len;
    return fclose(f) == 0 && ok;
}

static unsigned char *read_all(const char *path, size_t *len)
{
    char *d = NULL;
    if (peqa__read_file(path, (size_t)1 << 26, &d, len) != PEQA_OK) return NULL;
    return (unsigned char *)d;
}

static void put32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++) p[i] = (unsigned char)(v >> (8 * i));
}

static uint32_t get32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint32_t fbits(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

/* ---- llama2.c checkpoints ------------------------------------------------------------------ */

typedef struct {
    int32_t dim, hidden, layers, heads, kv_heads, vocab, seq; /* vocab > 0 */
    int unshared;
} l2c_dims;

/* Offsets (in floats) of every array of a version-0 checkpoint, written out from formats.md §6.3
 * independently of src/llama2c.c. */
typedef struct {
    size_t emb, rms_att, wq, wk, wv, wo, rms_ffn, w1, w2, w3, rms_final, freq_re, freq_im, wcls, total;
    size_t hd, kv;
} l2c_layout;

static l2c_layout layout_of(const l2c_dims *d)
{
    l2c_layout o;
    size_t D = (size_t)d->dim, H = (size_t)d->hidden, L = (size_t)d->layers, V = (size_t)d->vocab;
    o.hd = D / (size_t)d->heads;
    o.kv = o.hd * (size_t)d->kv_heads;
    size_t p = 0;
    o.emb = p, p += V * D;
    o.rms_att = p, p += L * D;
    o.wq = p, p += L * D * D;
    o.wk = p, p += L * o.kv * D;
    o.wv = p, p += L * o.kv * D;
    o.wo = p, p += L * D * D;
    o.rms_ffn = p, p += L * D;
    o.w1 = p, p += L * H * D;
    o.w2 = p, p += L * D * H;
    o.w3 = p, p += L * H * D;
    o.rms_final = p, p += D;
    o.freq_re = p, p += (size_t)d->seq * o.hd / 2;
    o.freq_im = p, p += (size_t)d->seq * o.hd / 2;
    o.wcls = p;
    if (d->unshared) p += V * D;
    o.total = p;
    return o;
}

/* Writes header h (7 raw int32) + floats w[0, n) + `extra` zero bytes, minus `cut` bytes. */
static int write_ckpt_raw(const char *path, const int32_t h[7], const float *w, size_t n, size_t extra, size_t cut)
{
    size_t len = 28 + 4 * n + extra;
    unsigned char *b = calloc(len ? len : 1, 1);
    if (!b) return 0;
    for (int i = 0; i < 7; i++) put32(b + 4 * i, (uint32_t)h[i]);
    for (size_t i = 0; i < n; i++) put32(b + 28 + 4 * i, fbits(w[i]));
    int ok = write_file(path, b, len - (cut < len ? cut : len));
    free(b);
    return ok;
}

static void header_of(const l2c_dims *d, int32_t h[7])
{
    h[0] = d->dim, h[1] = d->hidden, h[2] = d->layers, h[3] = d->heads, h[4] = d->kv_heads;
    h[5] = d->unshared ? -d->vocab : d->vocab, h[6] = d->seq;
}

/* HF row r of a q/k projection comes from Meta row meta_row(r) (formats.md §2.6, closed form). */
static size_t meta_row(size_t r, size_t hd)
{
    size_t h = r / hd, rem = r % hd, i = rem / (hd / 2), j = rem % (hd / 2);
    return h * hd + 2 * j + i;
}

/* out[r] = Σ_c W[r, c] x[c] in double. */
static void matvec(const float *w, size_t rows, size_t cols, const double *x, double *out)
{
    for (size_t r = 0; r < rows; r++) {
        double s = 0;
        for (size_t c = 0; c < cols; c++) s += (double)w[r * cols + c] * x[c];
        out[r] = s;
    }
}

/* Meta / llama2.c RoPE: each head rotates the pairs (2j, 2j+1) by pos * 10000^(-2j/hd). */
static void rope_interleaved(double *v, size_t heads, size_t hd, int pos)
{
    for (size_t h = 0; h < heads; h++)
        for (size_t j = 0; j < hd / 2; j++) {
            double th = pos * pow(10000.0, -2.0 * (double)j / (double)hd), c = cos(th), s = sin(th);
            double *p = v + h * hd;
            double a = p[2 * j], b = p[2 * j + 1];
            p[2 * j] = a * c - b * s;
            p[2 * j + 1] = a * s + b * c;
        }
}

/* Hugging Face RoPE ("rotate_half"): each head rotates the pairs (j, j + hd/2) by the same angle. */
static void rope_rotate_half(double *v, size_t heads, size_t hd, int pos)
{
    for (size_t h = 0; h < heads; h++)
        for (size_t j = 0; j < hd / 2; j++) {
            double th = pos * pow(10000.0, -2.0 * (double)j / (double)hd), c = cos(th), s = sin(th);
            double *p = v + h * hd;
            double a = p[j], b = p[j + hd / 2];
            p[j] = a * c - b * s;
            p[j + hd / 2] = a * s + b * c;
        }
}

/* For random x and positions: |rope_hf(Wq_hf x)[r] - rope_meta(Wq x)[meta_row(r)]| and the GQA
 * attention scores q(m)·k(n) per head, both ways. Returns the largest error relative to the
 * magnitude of the terms (0 for exact agreement, ~1e-16 for rounding). */
static double rope_equivalence(const l2c_dims *d, const float *wq_meta, const float *wk_meta, const float *wq_hf,
                               const float *wk_hf, prng *g)
{
    size_t D = (size_t)d->dim, hd = D / (size_t)d->heads, kv = hd * (size_t)d->kv_heads;
    size_t group = (size_t)(d->heads / d->kv_heads);
    double *x = malloc(D * sizeof *x), *y = malloc(D * sizeof *y);
    double *qm = malloc(D * sizeof *qm), *qh = malloc(D * sizeof *qh), *km = malloc(kv * sizeof *km),
           *kh = malloc(kv * sizeof *kh);
    double worst = 0;
    for (int trial = 0; trial < 8; trial++) {
        for (size_t i = 0; i < D; i++) x[i] = prng_sym(g, 1), y[i] = prng_sym(g, 1);
        int pm = (int)prng_below(g, 64), pn = (int)prng_below(g, 64);
        matvec(wq_meta, D, D, x, qm);
        matvec(wq_hf, D, D, x, qh);
        matvec(wk_meta, kv, D, y, km);
        matvec(wk_hf, kv, D, y, kh);
        rope_interleaved(qm, (size_t)d->heads, hd, pm);
        rope_rotate_half(qh, (size_t)d->heads, hd, pm);
        rope_interleaved(km, (size_t)d->kv_heads, hd, pn);
        rope_rotate_half(kh, (size_t)d->kv_heads, hd, pn);
        for (size_t r = 0; r < D; r++) {
            double e = fabs(qh[r] - qm[meta_row(r, hd)]) / (1e-30 + fabs(qm[meta_row(r, hd)]) + 1.0);
            if (e > worst) worst = e;
        }
        for (size_t r = 0; r < kv; r++) {
            double e = fabs(kh[r] - km[meta_row(r, hd)]) / (1e-30 + fabs(km[meta_row(r, hd)]) + 1.0);
            if (e > worst) worst = e;
        }
        for (size_t h = 0; h < (size_t)d->heads; h++) {
            double sm = 0, sh = 0, mag = 0;
            size_t kh0 = (h / group) * hd;
            for (size_t t = 0; t < hd; t++) {
                sm += qm[h * hd + t] * km[kh0 + t];
                sh += qh[h * hd + t] * kh[kh0 + t];
                mag += fabs(qm[h * hd + t] * km[kh0 + t]);
            }
            double e = fabs(sm - sh) / (mag + 1e-30);
            if (e > worst) worst = e;
        }
    }
    free(x), free(y), free(qm), free(qh), free(km), free(kh);
    return worst;
}

static int64_t json_int(const peqa_json_value *root, const char *key)
{
    int64_t v = -999;
    if (!peqa_json_as_int64(peqa_json_get(root, key), &v)) return -999;
    return v;
}

/* Converts a random checkpoint with dims d and checks everything; `name` prefixes case names. */
static void l2c_convert_case(trun *r, tdir *td, const l2c_dims *d, const char *name, uint64_t seed, int use_dir)
{
    char cname[128], fname[96];
    l2c_layout o = layout_of(d);
    prng g;
    prng_seed(&g, seed);
    float *w = malloc(o.total * sizeof *w);
    for (size_t i = 0; i < o.total; i++) w[i] = prng_sym(&g, 1.0f);
    int32_t h[7];
    header_of(d, h);
    snprintf(fname, sizeof fname, "%s.bin", name);
    const char *ck = tpath(td, fname);
    const char *stp, *cfp;
    if (!write_ckpt_raw(ck, h, w, o.total, 0, 0)) {
        snprintf(cname, sizeof cname, "import/l2c/%s/write", name);
        t_result(r, 0, cname, "-", "cannot write %s", ck);
        free(w);
        return;
    }

    /* Header only. */
    peqa_l2c_config cfg;
    peqa_status st = peqa_l2c_read_config(ck, &cfg);
    snprintf(cname, sizeof cname, "import/l2c/%s/read_config", name);
    t_result(r, st == PEQA_OK && cfg.dim == d->dim && cfg.hidden_dim == d->hidden && cfg.n_layers == d->layers &&
                    cfg.n_heads == d->heads && cfg.n_kv_heads == d->kv_heads && cfg.vocab_size == d->vocab &&
                    cfg.seq_len == d->seq && cfg.shared_classifier == !d->unshared &&
                    cfg.head_dim == (int64_t)o.hd && cfg.kv_dim == (int64_t)o.kv && cfg.n_floats == o.total &&
                    cfg.file_bytes == 28 + 4 * (uint64_t)o.total,
             cname, "-", "status %d, n_floats %llu (want %zu): %s", (int)st, (unsigned long long)cfg.n_floats, o.total,
             st ? peqa_last_error() : "");

    if (use_dir) {
        snprintf(fname, sizeof fname, "%s_hf", name);
        const char *dir = tsubdir(td, fname);
        char p1[200], p2[200];
        snprintf(p1, sizeof p1, "%s/model.safetensors", fname);
        snprintf(p2, sizeof p2, "%s/config.json", fname);
        stp = tpath(td, p1);
        cfp = tpath(td, p2);
        st = peqa_l2c_convert_dir(ck, dir);
    } else {
        snprintf(fname, sizeof fname, "%s.safetensors", name);
        stp = tpath(td, fname);
        snprintf(fname, sizeof fname, "%s.config.json", name);
        cfp = tpath(td, fname);
        st = peqa_l2c_convert(ck, stp, cfp);
    }
    snprintf(cname, sizeof cname, "import/l2c/%s/convert", name);
    t_result(r, st == PEQA_OK, cname, "-", "status %d %s", (int)st, st ? peqa_last_error() : "");
    if (st) {
        free(w);
        return;
    }

    /* Every tensor, bit for bit. */
    peqa_st_file *f = NULL;
    st = peqa_st_open(stp, &f);
    size_t D = (size_t)d->dim, H = (size_t)d->hidden, V = (size_t)d->vocab, L = (size_t)d->layers;
    size_t want_count = 2 + 9 * L + (d->unshared ? 1 : 0);
    snprintf(cname, sizeof cname, "import/l2c/%s/tensor_count", name);
    t_result(r, st == PEQA_OK && peqa_st_count(f) == want_count, cname, "-", "%zu tensors, want %zu %s",
             f ? peqa_st_count(f) : 0, want_count, st ? peqa_last_error() : "");
    if (st) {
        free(w);
        return;
    }
    struct {
        char hf[96];
        size_t off, rows, cols; /* cols 0: vector */
        size_t perm_hd;         /* > 0: q/k, rows permuted */
    } ex[64];
    size_t nex = 0;
/* Names without a layer use "%.0d", which prints nothing for 0. */
#define EX(NAME_FMT, LAYER, OFF, ROWS, COLS, PERM)                                                        \
    do {                                                                                                  \
        snprintf(ex[nex].hf, sizeof ex[nex].hf, NAME_FMT, (int)(LAYER));                                  \
        ex[nex].off = (OFF), ex[nex].rows = (ROWS), ex[nex].cols = (COLS), ex[nex].perm_hd = (PERM);      \
        nex++;                                                                                            \
    } while (0)
    EX("model.embed_tokens.weight%.0d", 0, o.emb, V, D, 0);
    for (size_t l = 0; l < L; l++) {
        EX("model.layers.%d.input_layernorm.weight", l, o.rms_att + l * D, D, 0, 0);
        EX("model.layers.%d.self_attn.q_proj.weight", l, o.wq + l * D * D, D, D, o.hd);
        EX("model.layers.%d.self_attn.k_proj.weight", l, o.wk + l * o.kv * D, o.kv, D, o.hd);
        EX("model.layers.%d.self_attn.v_proj.weight", l, o.wv + l * o.kv * D, o.kv, D, 0);
        EX("model.layers.%d.self_attn.o_proj.weight", l, o.wo + l * D * D, D, D, 0);
        EX("model.layers.%d.post_attention_layernorm.weight", l, o.rms_ffn + l * D, D, 0, 0);
        EX("model.layers.%d.mlp.gate_proj.weight", l, o.w1 + l * H * D, H, D, 0); /* w1 */
        EX("model.layers.%d.mlp.down_proj.weight", l, o.w2 + l * D * H, D, H, 0); /* w2 */
        EX("model.layers.%d.mlp.up_proj.weight", l, o.w3 + l * H * D, H, D, 0);   /* w3 */
    }
    EX("model.norm.weight%.0d", 0, o.rms_final, D, 0, 0);
    if (d->unshared) EX("lm_head.weight%.0d", 0, o.wcls, V, D, 0);
#undef EX
    int all_ok = 1;
    char first_bad[256] = "";
    float *q_hf[8] = {0}, *k_hf[8] = {0};
    for (size_t e = 0; e < nex; e++) {
        const peqa_st_tensor *t = peqa_st_find(f, ex[e].hf);
        float *v = NULL;
        size_t n = 0;
        int ok = t && t->dtype == PEQA_ST_F32 && t->ndim == (ex[e].cols ? 2u : 1u) &&
                 t->shape[0] == (int64_t)ex[e].rows && (!ex[e].cols || t->shape[1] == (int64_t)ex[e].cols) &&
                 peqa_st_read_f32(f, ex[e].hf, &v, &n) == PEQA_OK && n == ex[e].rows * (ex[e].cols ? ex[e].cols : 1);
        size_t cols = ex[e].cols ? ex[e].cols : 1;
        for (size_t i = 0; ok && i < n; i++) {
            size_t row = i / cols, col = i % cols;
            size_t src_row = ex[e].perm_hd ? meta_row(row, ex[e].perm_hd) : row;
            if (fbits(v[i]) != fbits(w[ex[e].off + src_row * cols + col])) {
                ok = 0;
                snprintf(first_bad, sizeof first_bad, "%.95s element %zu (row %zu <- source row %zu): %a vs %a", ex[e].hf,
                         i, row, src_row, v[i], w[ex[e].off + src_row * cols + col]);
            }
        }
        if (!ok && !first_bad[0]) snprintf(first_bad, sizeof first_bad, "%.95s: missing or wrong dtype/shape", ex[e].hf);
        all_ok &= ok;
        /* Keep layer q/k for the RoPE check. */
        int layer = -1;
        if (v && sscanf(ex[e].hf, "model.layers.%d.", &layer) == 1 && layer >= 0 && layer < 8 &&
            strstr(ex[e].hf, "q_proj")) q_hf[layer] = v, v = NULL;
        else if (v && layer >= 0 && layer < 8 && strstr(ex[e].hf, "k_proj")) k_hf[layer] = v, v = NULL;
        free(v);
    }
    snprintf(cname, sizeof cname, "import/l2c/%s/tensors", name);
    t_result(r, all_ok, cname, "-", "%zu tensors, q/k rows via HF h*hd+i*hd/2+j <- Meta h*hd+2j+i%s%s", nex,
             first_bad[0] ? "; first mismatch: " : "", first_bad);
    snprintf(cname, sizeof cname, "import/l2c/%s/lm_head", name);
    t_result(r, (peqa_st_find(f, "lm_head.weight") != NULL) == (d->unshared != 0), cname, "-",
             "lm_head.weight %s (classifier %s)", peqa_st_find(f, "lm_head.weight") ? "present" : "absent",
             d->unshared ? "separate" : "shared");
    const char *fmt = peqa_st_metadata(f, "format");
    snprintf(cname, sizeof cname, "import/l2c/%s/metadata", name);
    t_result(r, fmt && !strcmp(fmt, "pt"), cname, "-", "format = %s", fmt ? fmt : "(none)");
    peqa_st_close(f);

    /* RoPE equivalence, every layer, plus a control: unpermuted rows must fail the same check. */
    double worst = 0, control = 1e300;
    int have = 1;
    for (size_t l = 0; l < L && l < 8; l++) {
        if (!q_hf[l] || !k_hf[l]) {
            have = 0;
            continue;
        }
        double e = rope_equivalence(d, w + o.wq + l * D * D, w + o.wk + l * o.kv * D, q_hf[l], k_hf[l], &g);
        if (e > worst) worst = e;
        double c = rope_equivalence(d, w + o.wq + l * D * D, w + o.wk + l * o.kv * D, w + o.wq + l * D * D,
                                    w + o.wk + l * o.kv * D, &g);
        if (c < control) control = c;
    }
    snprintf(cname, sizeof cname, "import/l2c/%s/rope_equivalence", name);
    t_result(r, have && worst <= 1e-12 && control > 1e-3, cname, "-",
             "max rel err %.3g (<= 1e-12), unpermuted control %.3g (> 1e-3)", worst, control);
    for (int l = 0; l < 8; l++) free(q_hf[l]), free(k_hf[l]);

    /* config.json */
    peqa_json_doc *doc = NULL;
    st = peqa_json_parse_file(cfp, PEQA_JSON_NO_DUPLICATES, &doc);
    int cok = 0;
    if (!st) {
        const peqa_json_value *root = peqa_json_root(doc);
        const peqa_json_value *arch = peqa_json_get(root, "architectures");
        double eps = 0, theta = 0;
        int tie = -1;
        cok = peqa_json_count(arch) == 1 && peqa_json_is_string(peqa_json_at(arch, 0), "LlamaForCausalLM") &&
              peqa_json_is_string(peqa_json_get(root, "model_type"), "llama") &&
              json_int(root, "hidden_size") == d->dim && json_int(root, "intermediate_size") == d->hidden &&
              json_int(root, "num_hidden_layers") == d->layers &&
              json_int(root, "num_attention_heads") == d->heads &&
              json_int(root, "num_key_value_heads") == d->kv_heads && json_int(root, "vocab_size") == d->vocab &&
              json_int(root, "max_position_embeddings") == d->seq && json_int(root, "head_dim") == (int64_t)o.hd &&
              peqa_json_as_double(peqa_json_get(root, "rms_norm_eps"), &eps) && eps == 1e-5 &&
              peqa_json_as_double(peqa_json_get(root, "rope_theta"), &theta) && theta == 10000.0 &&
              peqa_json_as_bool(peqa_json_get(root, "tie_word_embeddings"), &tie) && tie == !d->unshared &&
              peqa_json_is_string(peqa_json_get(root, "torch_dtype"), "float32") &&
              peqa_json_is_string(peqa_json_get(root, "hidden_act"), "silu") &&
              json_int(root, "bos_token_id") == 1 && json_int(root, "eos_token_id") == 2;
    }
    snprintf(cname, sizeof cname, "import/l2c/%s/config_json", name);
    t_result(r, cok, cname, "-", "%s", st ? peqa_last_error() : "all LlamaConfig keys as expected");
    peqa_json_free(doc);

    if (use_dir) {
        /* The directory loads as a checkpoint (what the model loader will do). */
        peqa_st_set *set = NULL;
        st = peqa_st_set_open(td->dirs[td->ndirs - 1], &set);
        snprintf(cname, sizeof cname, "import/l2c/%s/dir_loads", name);
        t_result(r, st == PEQA_OK && peqa_st_set_count(set) == want_count, cname, "-", "status %d, %zu tensors %s",
                 (int)st, set ? peqa_st_set_count(set) : 0, st ? peqa_last_error() : "");
        peqa_st_set_close(set);
    }
    free(w);
}

static void l2c_permutation_api(trun *r)
{
    /* 3 heads of hd 6, rows of 2 int32 (the functions move bytes, any element type). */
    enum { NH = 3, HD = 6, ROWS = NH * HD };
    int32_t src[ROWS][2], hf[ROWS][2], back[ROWS][2];
    for (int i = 0; i < ROWS; i++) src[i][0] = i, src[i][1] = 100 + i;
    peqa_status s1 = peqa_qk_rows_meta_to_hf(hf, src, NH, HD, sizeof src[0]);
    peqa_status s2 = peqa_qk_rows_hf_to_meta(back, hf, NH, HD, sizeof src[0]);
    int ok = s1 == PEQA_OK && s2 == PEQA_OK && memcmp(back, src, sizeof src) == 0;
    for (int i = 0; ok && i < ROWS; i++)
        ok = hf[i][0] == (int32_t)meta_row((size_t)i, HD) && hf[i][1] == 100 + hf[i][0];
    t_result(r, ok, "import/l2c/permute_api", "-", "HF row 1 <- Meta %d (want 2), HF row 3 <- Meta %d (want 1), "
             "inverse round trip", hf[1][0], hf[3][0]);
    int32_t odd[3][1] = {{0}, {0}, {0}}, odd2[3][1];
    peqa_status s3 = peqa_qk_rows_meta_to_hf(odd2, odd, 1, 3, 4);
    peqa_status s4 = peqa_qk_rows_meta_to_hf(src, src, NH, HD, sizeof src[0]);
    t_result(r, s3 == PEQA_ERR_SHAPE && s4 == PEQA_ERR_ARG, "import/l2c/permute_api_bad", "-",
             "odd head_dim -> %d, overlapping dst/src -> %d", (int)s3, (int)s4);
}

/* One bad checkpoint: header h, n floats of payload (zeros), `extra` more bytes, `cut` fewer. */
static void l2c_bad(trun *r, tdir *td, const char *name, const int32_t h[7], size_t n, size_t extra, size_t cut,
                    peqa_status want, const char *msg)
{
    char fname[96], cname[128];
    snprintf(fname, sizeof fname, "bad_%s.bin", name);
    const char *ck = tpath(td, fname);
    snprintf(fname, sizeof fname, "bad_%s.safetensors", name);
    const char *stp = tpath(td, fname);
    snprintf(fname, sizeof fname, "bad_%s.json", name);
    const char *cfp = tpath(td, fname);
    float *w = calloc(n ? n : 1, sizeof *w);
    int wrote = w && write_ckpt_raw(ck, h, w, n, extra, cut);
    free(w);
    peqa_l2c_config cfg;
    peqa_status s1 = peqa_l2c_read_config(ck, &cfg);
    int m1 = msg_has(msg) && msg_has(ck);
    char m1text[512];
    snprintf(m1text, sizeof m1text, "%s", peqa_last_error());
    peqa_status s2 = peqa_l2c_convert(ck, stp, cfp);
    int m2 = msg_has(msg) && msg_has(ck);
    snprintf(cname, sizeof cname, "import/l2c/bad/%s", name);
    t_result(r, wrote && s1 == want && s2 == want && m1 && m2 && !exists(stp) && !exists(cfp), cname, "-",
             "status %d/%d (want %d): %s", (int)s1, (int)s2, (int)want, m1text);
}

static void l2c_bad_cases(trun *r, tdir *td)
{
    const l2c_dims good = {8, 12, 2, 2, 1, 11, 5, 0};
    l2c_dims unsh = good;
    unsh.unshared = 1;
    const size_t n = layout_of(&good).total, nu = layout_of(&unsh).total;
    int32_t h[7];
    header_of(&good, h);
    /* Lengths */
    l2c_bad(r, td, "truncated", h, n, 0, 1, PEQA_ERR_FORMAT, "truncated");
    l2c_bad(r, td, "truncated_much", h, n / 2, 0, 0, PEQA_ERR_FORMAT, "truncated");
    l2c_bad(r, td, "trailing", h, n, 4, 0, PEQA_ERR_FORMAT, "trailing bytes");
    l2c_bad(r, td, "trailing_1byte", h, n, 1, 0, PEQA_ERR_FORMAT, "trailing bytes");
    l2c_bad(r, td, "short_header", h, 0, 0, 8, PEQA_ERR_FORMAT, "too short for the 28-byte");
    l2c_bad(r, td, "empty", h, 0, 0, 28, PEQA_ERR_FORMAT, "file is 0 bytes");
    /* A shared header with the unshared length, and the other way round. */
    l2c_bad(r, td, "shared_with_classifier", h, nu, 0, 0, PEQA_ERR_FORMAT, "classifier were separate");
    int32_t hu[7];
    header_of(&unsh, hu);
    l2c_bad(r, td, "unshared_without_classifier", hu, n, 0, 0, PEQA_ERR_FORMAT, "ends without it");
    /* Header fields. */
    static const struct {
        const char *name;
        int field;
        int32_t value;
        const char *msg;
    } fields[] = {
        {"negative_dim", 0, -8, "dim = -8 must be positive"},
        {"zero_hidden", 1, 0, "hidden_dim = 0 must be positive"},
        {"negative_layers", 2, -1, "n_layers = -1 must be positive"},
        {"zero_heads", 3, 0, "n_heads = 0 must be positive"},
        {"negative_kv_heads", 4, -2, "n_kv_heads = -2 must be positive"},
        {"zero_vocab", 5, 0, "vocab_size = 0 must be non-zero"},
        {"zero_seq_len", 6, 0, "seq_len = 0 must be positive"},
        {"int_min_dim", 0, INT32_MIN, "must be positive"},
        {"dim_not_divisible", 3, 3, "dim 8 is not divisible by n_heads 3"},
        {"kv_heads_above_heads", 4, 4, "not a multiple of n_kv_heads 4"},
        {"odd_head_size", 3, 8, "head size 1"},
    };
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
        int32_t hb[7];
        memcpy(hb, h, sizeof hb);
        hb[fields[i].field] = fields[i].value;
        l2c_bad(r, td, fields[i].name, hb, n, 0, 0, PEQA_ERR_FORMAT, fields[i].msg);
    }
    int32_t h2[7] = {12, 12, 1, 4, 3, 5, 2}; /* hd 3 is odd too, so use 24/4 = 6 with kv 4 of 6 */
    h2[0] = 24, h2[3] = 6, h2[4] = 4;
    l2c_bad(r, td, "kv_heads_not_divisor", h2, 10, 0, 0, PEQA_ERR_FORMAT, "n_heads 6 is not a multiple of n_kv_heads 4");
    /* vocab_size INT32_MIN: |vocab| = 2^31 must not overflow; the length cannot match. */
    memcpy(h2, h, sizeof h2);
    h2[5] = INT32_MIN;
    l2c_bad(r, td, "vocab_int_min", h2, n, 0, 0, PEQA_ERR_FORMAT, "vocab_size=-2147483648");
    /* Sizes beyond 64 bits: 2^30 x 2^30 per layer matrix, 2^30 layers. */
    int32_t hov[7] = {1 << 30, 1 << 30, 1 << 30, 1, 1, 1 << 30, 1 << 30};
    l2c_bad(r, td, "overflow", hov, 4, 0, 0, PEQA_ERR_OVERFLOW, "64-bit");
    /* Large but countable: the length check catches it before any allocation. */
    int32_t hbig[7] = {1 << 20, 1 << 20, 1 << 10, 1 << 10, 1 << 10, 1 << 20, 1 << 20};
    l2c_bad(r, td, "huge_dims", hbig, 4, 0, 0, PEQA_ERR_FORMAT, "truncated");
    /* Version 1/2 files start with the magic "ak42". */
    int32_t hv1[7] = {(int32_t)PEQA_L2C_MAGIC_V1, 1, 8, 12, 2, 2, 1};
    l2c_bad(r, td, "version1", hv1, 64, 0, 0, PEQA_ERR_FORMAT, "version 1 checkpoint");

    /* A NaN weight: the header is fine, conversion refuses it and names the tensor. */
    {
        l2c_layout o = layout_of(&good);
        float *w = calloc(o.total, sizeof *w);
        w[o.w3 + 1 * 12 * 8 + 5] = NAN; /* layer 1 of w3 = up_proj */
        const char *ck = tpath(td, "nan.bin"), *stp = tpath(td, "nan.safetensors"), *cfp = tpath(td, "nan.json");
        int wrote = write_ckpt_raw(ck, h, w, o.total, 0, 0);
        free(w);
        peqa_status st = peqa_l2c_convert(ck, stp, cfp);
        t_result(r, wrote && st == PEQA_ERR_NONFINITE && msg_has("(model.layers.1.mlp.up_proj.weight) element 5") &&
                        msg_has(ck) && !exists(stp) && !exists(cfp),
                 "import/l2c/bad/nan_weight", "-", "status %d: %s", (int)st, peqa_last_error());
    }
    /* Missing file and unwritable output. */
    {
        const char *missing = tpath(td, "does_not_exist.bin");
        peqa_status st = peqa_l2c_convert(missing, tpath(td, "x.safetensors"), tpath(td, "x.json"));
        t_result(r, st == PEQA_ERR_IO && msg_has(missing), "import/l2c/bad/missing_file", "-", "status %d: %s", (int)st,
                 peqa_last_error());
        l2c_layout o = layout_of(&good);
        float *w = calloc(o.total, sizeof *w);
        const char *ck = tpath(td, "ok_for_io.bin");
        int wrote = write_ckpt_raw(ck, h, w, o.total, 0, 0);
        free(w);
        st = peqa_l2c_convert(ck, "/nonexistent_dir_peqa/x.safetensors", "/nonexistent_dir_peqa/config.json");
        t_result(r, wrote && st == PEQA_ERR_IO && msg_has("/nonexistent_dir_peqa/x.safetensors"),
                 "import/l2c/bad/unwritable_output", "-", "status %d: %s", (int)st, peqa_last_error());
    }
}

/* Headers made of edge values: every outcome must be OK, FORMAT or OVERFLOW with the path in the
 * message, and an OK header must satisfy the invariants the converter relies on. */
static void l2c_header_fuzz(trun *r, tdir *td)
{
    static const int32_t edge[] = {0, 1, 2, 3, 4, 6, 8, -1, -2, -8, 64, 4096, 65536, 1 << 30, INT32_MAX, INT32_MIN};
    prng g;
    prng_seed(&g, r->seed ^ 0xF022);
    const char *ck = tpath(td, "fuzz.bin");
    int ok = 1, nok = 0, trials = r->quick ? 300 : 2000;
    char msg[600] = "";
    for (int i = 0; ok && i < trials; i++) {
        int32_t h[7];
        for (int k = 0; k < 7; k++) h[k] = edge[prng_below(&g, sizeof edge / sizeof edge[0])];
        size_t extra = (size_t)prng_below(&g, 64);
        if (i % 4 == 0) {
            /* A valid small model, written with its exact length. */
            l2c_dims d = {8, 1 + (int32_t)prng_below(&g, 16), 1 + (int32_t)prng_below(&g, 3), 2,
                          1 + (int32_t)prng_below(&g, 2), 1 + (int32_t)prng_below(&g, 20), 1 + (int32_t)prng_below(&g, 8),
                          (int)prng_below(&g, 2)};
            header_of(&d, h);
            extra = 4 * layout_of(&d).total;
        }
        write_ckpt_raw(ck, h, NULL, 0, extra, 0);
        peqa_l2c_config c;
        peqa_status st = peqa_l2c_read_config(ck, &c);
        if (st == PEQA_OK) {
            nok++;
            ok = c.dim > 0 && c.n_heads > 0 && c.dim % c.n_heads == 0 && c.head_dim % 2 == 0 &&
                 c.n_heads % c.n_kv_heads == 0 && c.file_bytes == 28 + 4 * c.n_floats;
        } else {
            ok = (st == PEQA_ERR_FORMAT || st == PEQA_ERR_OVERFLOW) && msg_has(ck);
        }
        if (!ok)
            snprintf(msg, sizeof msg, "header %d %d %d %d %d %d %d: status %d: %.400s", h[0], h[1], h[2], h[3], h[4],
                     h[5], h[6], (int)st, peqa_last_error());
    }
    t_result(r, ok, "import/l2c/header_fuzz", "-", "%d edge-value headers (%d accepted), seed %llu %s", trials, nok,
             (unsigned long long)r->seed, msg);
}

/* ---- tokenizer.bin ---------------------------------------------------------------------------- */

typedef struct {
    const char *p;
    size_t len;
    float score;
} tpiece;

/* Serialises a tokenizer.bin: max_token_length (0: the true maximum), then the entries. */
static size_t tok_bytes(const tpiece *v, size_t n, int32_t maxlen, unsigned char *out)
{
    size_t k = 4, mx = 0;
    for (size_t i = 0; i < n; i++) {
        if (v[i].len > mx) mx = v[i].len;
        put32(out + k, fbits(v[i].score));
        put32(out + k + 4, (uint32_t)v[i].len);
        memcpy(out + k + 8, v[i].p, v[i].len);
        k += 8 + v[i].len;
    }
    put32(out, maxlen ? (uint32_t)maxlen : (uint32_t)mx);
    return k;
}

/* The llama2.c layout: <unk>, BOS, EOS, 256 byte tokens, then `extra`. Returns the count. */
static size_t llama_vocab(tpiece *v, char bytes_text[256][7], const tpiece *extra, size_t nextra)
{
    size_t n = 0;
    v[n++] = (tpiece){"<unk>", 5, 0};
    v[n++] = (tpiece){"\n<s>\n", 5, 0};
    v[n++] = (tpiece){"\n</s>\n", 6, 0};
    for (int b = 0; b < 256; b++) {
        snprintf(bytes_text[b], 7, "<0x%02X>", b);
        v[n++] = (tpiece){bytes_text[b], 6, 0};
    }
    for (size_t i = 0; i < nextra; i++) v[n++] = extra[i];
    return n;
}

static const tpiece tok_extra[] = {
    {" ", 1, -10}, {"a", 1, -11}, {"b", 1, -12}, {"c", 1, -13}, {"h", 1, -14}, {"e", 1, -15}, {"l", 1, -16},
    {"o", 1, -17}, {"ab", 2, -3},  {"bc", 2, -2},  {" a", 2, -4},  {"ll", 2, -6},  {"he", 2, -7}, {"llo", 3, -5.5f},
    {"hello", 5, -0.5f}, {" hello", 6, -0.25f}, {"\xC3\xA9", 2, -9}, {"aa", 2, -2.5f}, {"x", 1, -20},
    {"\xC3\xA9x", 3, -8},
};
#define TOK_BASE 259u /* first id of tok_extra */

static uint32_t xid(const char *piece)
{
    for (size_t i = 0; i < sizeof tok_extra / sizeof tok_extra[0]; i++)
        if (strlen(piece) == tok_extra[i].len && !memcmp(piece, tok_extra[i].p, tok_extra[i].len))
            return TOK_BASE + (uint32_t)i;
    return 0xFFFFFFFFu;
}

static int same_tokens(const uint32_t *a, size_t na, const uint32_t *b, size_t nb)
{
    return na == nb && (na == 0 || memcmp(a, b, na * sizeof *a) == 0);
}

static void fmt_tokens(char *buf, size_t cap, const uint32_t *t, size_t n)
{
    size_t k = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < n && k + 12 < cap; i++) k += (size_t)snprintf(buf + k, cap - k, "%s%u", i ? "," : "", t[i]);
}

/* The naive encoder: after splitting, rescan all adjacent pairs for the best merge each round
 * (strictly greater score wins, so the leftmost of equals), exactly as llama2.c's run.c loops.
 * Byte-fallback tokens do not merge. `pieces` is the vocabulary; lookups are linear. */
static size_t naive_encode(const tpiece *v, size_t n, const char *text, size_t len, uint32_t *out)
{
    uint32_t *ids = malloc((len + 2) * sizeof *ids);
    int *mergeable = malloc((len + 2) * sizeof *mergeable);
    size_t m = 0;
    char *s = malloc(len + 2);
    s[0] = ' ';
    memcpy(s + 1, text, len);
    size_t sl = len ? len + 1 : 0;
    for (size_t i = 0; i < sl;) {
        size_t u = 1;
        if (i > 0)
            while (u < 4 && i + u < sl && ((unsigned char)s[i + u] & 0xC0) == 0x80) u++;
        int64_t found = -1;
        for (size_t k = 259; k < n && found < 0; k++)
            if (v[k].len == u && !memcmp(v[k].p, s + i, u)) found = (int64_t)k;
        if (found >= 0) ids[m] = (uint32_t)found, mergeable[m++] = 1;
        else
            for (size_t k = 0; k < u; k++) ids[m] = 3u + (unsigned char)s[i + k], mergeable[m++] = 0;
        i += u;
    }
    char buf[64];
    for (;;) {
        float best = -INFINITY;
        int64_t bi = -1, bid = -1;
        for (size_t i = 0; i + 1 < m; i++) {
            if (!mergeable[i] || !mergeable[i + 1]) continue;
            size_t la = v[ids[i]].len, lb = v[ids[i + 1]].len;
            if (la + lb > sizeof buf) continue;
            memcpy(buf, v[ids[i]].p, la);
            memcpy(buf + la, v[ids[i + 1]].p, lb);
            for (size_t k = 259; k < n; k++)
                if (v[k].len == la + lb && !memcmp(v[k].p, buf, la + lb)) {
                    if (v[k].score > best) best = v[k].score, bi = (int64_t)i, bid = (int64_t)k;
                    break;
                }
        }
        if (bi < 0) break;
        ids[bi] = (uint32_t)bid;
        memmove(ids + bi + 1, ids + bi + 2, (m - (size_t)bi - 2) * sizeof *ids);
        memmove(mergeable + bi + 1, mergeable + bi + 2, (m - (size_t)bi - 2) * sizeof *mergeable);
        m--;
    }
    memcpy(out, ids, m * sizeof *ids);
    free(ids), free(mergeable), free(s);
    return m;
}

static void tok_cases(trun *r, tdir *td)
{
    static tpiece v[600];
    static char btext[256][7];
    static unsigned char buf[1 << 16];
    size_t n = llama_vocab(v, btext, tok_extra, sizeof tok_extra / sizeof tok_extra[0]);
    size_t blen = tok_bytes(v, n, 0, buf);
    const char *tp = tpath(td, "tokenizer.bin");
    write_file(tp, buf, blen);

    peqa_l2c_tokenizer *t = NULL;
    peqa_status st = peqa_l2c_tokenizer_load(tp, (int64_t)n, &t);
    int ok = st == PEQA_OK && peqa_l2c_tokenizer_vocab(t) == n && peqa_l2c_tokenizer_max_len(t) == 6;
    for (size_t i = 0; ok && i < n; i++) {
        size_t pl = 0;
        float sc = 1;
        const char *p = peqa_l2c_tokenizer_piece(t, (uint32_t)i, &pl, &sc);
        ok = p && pl == v[i].len && !memcmp(p, v[i].p, pl) && fbits(sc) == fbits(v[i].score);
    }
    ok = ok && !peqa_l2c_tokenizer_piece(t, (uint32_t)n, NULL, NULL);
    t_result(r, ok, "import/tok/load", "-", "%zu entries, pieces and scores read back; %s", n,
             st ? peqa_last_error() : "");
    if (st) return;
    peqa_l2c_tokenizer *t0 = NULL;
    st = peqa_l2c_tokenizer_load(tp, 0, &t0);
    t_result(r, st == PEQA_OK && peqa_l2c_tokenizer_vocab(t0) == n, "import/tok/load_all", "-",
             "vocab_size 0 takes every entry: %u", t0 ? peqa_l2c_tokenizer_vocab(t0) : 0);
    peqa_l2c_tokenizer_free(t0);

    /* Hand-checked encodings. */
    static const struct {
        const char *name, *text;
        size_t len;
        unsigned flags;
        size_t nwant; /* want[i] below */
    } enc[] = {
        /* score order: bc (-2) merges before ab (-3), "abc" is no piece */
        {"score_order", "abc", 3, PEQA_L2C_NO_PREFIX, 2},
        /* equal candidates: leftmost first */
        {"leftmost_tie", "aaa", 3, PEQA_L2C_NO_PREFIX, 2},
        /* with the dummy prefix, BOS and EOS: " hello" in 5 merges */
        {"hello", "hello", 5, PEQA_TOK_ADD_BOS | PEQA_TOK_ADD_EOS, 3},
        /* € is no piece: three byte tokens; é is one, then é+x merges; NUL and 0xFF as bytes */
        {"byte_fallback", "\xE2\x82\xAC\xC3\xA9x\x00\xFF", 8, 0, 7},
        {"empty", "", 0, PEQA_TOK_ADD_BOS, 1},
        {"empty_noprefix", "", 0, 0, 0},
    };
    uint32_t want[6][12] = {
        {xid("a"), xid("bc")},
        {xid("aa"), xid("a")},
        {1, xid(" hello"), 2},
        {xid(" "), 3 + 0xE2, 3 + 0x82, 3 + 0xAC, xid("\xC3\xA9x"), 3 + 0x00, 3 + 0xFF},
        {1},
        {0},
    };
    for (size_t i = 0; i < sizeof enc / sizeof enc[0]; i++) {
        uint32_t *tok = NULL;
        size_t nt = 0;
        char name[96], got[256], exp[256];
        st = peqa_l2c_encode(t, enc[i].text, enc[i].len, enc[i].flags, &tok, &nt);
        fmt_tokens(got, sizeof got, tok, nt);
        fmt_tokens(exp, sizeof exp, want[i], enc[i].nwant);
        snprintf(name, sizeof name, "import/tok/encode/%s", enc[i].name);
        t_result(r, st == PEQA_OK && same_tokens(tok, nt, want[i], enc[i].nwant), name, "-", "got [%s], want [%s] %s",
                 got, exp, st ? peqa_last_error() : "");
        free(tok);
    }

    /* decode(encode(text with BOS)) == text, any bytes the vocabulary can spell. */
    static const struct { const char *text; size_t len; } rt[] = {
        {"hello", 5}, {" hello  abc ", 12}, {"\x00\xFF\x01\xFE", 4}, {"\xE2\x82\xAC\xC3\xA9\xC3", 7},
        {"x\n\t\r", 4}, {"  ", 2}, {"\x80\x80\x80\x80\x80", 5},
    };
    int rt_ok = 1;
    char rt_msg[256] = "";
    for (size_t i = 0; i < sizeof rt / sizeof rt[0]; i++) {
        uint32_t *tok = NULL;
        size_t nt = 0, dl = 0;
        char *dec = NULL;
        peqa_status s1 = peqa_l2c_encode(t, rt[i].text, rt[i].len, PEQA_TOK_ADD_BOS | PEQA_TOK_ADD_EOS, &tok, &nt);
        peqa_status s2 = s1 ? s1 : peqa_l2c_decode(t, UINT32_MAX, tok, nt, &dec, &dl);
        if (s1 || s2 || dl != rt[i].len || memcmp(dec, rt[i].text, dl) != 0 || dec[dl] != '\0') {
            rt_ok = 0;
            snprintf(rt_msg, sizeof rt_msg, "case %zu: status %d/%d, %zu bytes back (want %zu)", i, (int)s1, (int)s2, dl,
                     rt[i].len);
        }
        free(tok);
        free(dec);
    }
    t_result(r, rt_ok, "import/tok/round_trip", "-", "%s", rt_ok ? "7 texts incl. 0x00, 0xFF, broken UTF-8" : rt_msg);

    /* Single-token decoding rules. */
    const char *b = NULL;
    size_t bl = 99;
    int dok = 1;
    dok &= peqa_l2c_decode_token(t, UINT32_MAX, xid(" hello"), &b, &bl) == PEQA_OK && bl == 6 && !memcmp(b, " hello", 6);
    dok &= peqa_l2c_decode_token(t, 1, xid(" hello"), &b, &bl) == PEQA_OK && bl == 5 && !memcmp(b, "hello", 5);
    dok &= peqa_l2c_decode_token(t, xid("a"), 3 + 0x41, &b, &bl) == PEQA_OK && bl == 1 && b[0] == 'A';
    dok &= peqa_l2c_decode_token(t, 5, 3 + 0x00, &b, &bl) == PEQA_OK && bl == 1 && b[0] == '\0';
    dok &= peqa_l2c_decode_token(t, 5, 1, &b, &bl) == PEQA_OK && bl == 0;
    dok &= peqa_l2c_decode_token(t, 5, 2, &b, &bl) == PEQA_OK && bl == 0;
    dok &= peqa_l2c_decode_token(t, 5, 0, &b, &bl) == PEQA_OK && bl == 5 && !memcmp(b, "<unk>", 5);
    st = peqa_l2c_decode_token(t, 5, (uint32_t)n, &b, &bl);
    dok &= st == PEQA_ERR_RANGE;
    uint32_t badseq[2] = {xid("a"), 70000};
    char *dtext = NULL;
    size_t dlen = 0;
    dok &= peqa_l2c_decode(t, UINT32_MAX, badseq, 2, &dtext, &dlen) == PEQA_ERR_RANGE && dtext == NULL &&
           msg_has("position 1");
    t_result(r, dok, "import/tok/decode_rules", "-", "BOS strips one space, <0xXX> -> byte, BOS/EOS empty, range");

    /* Encoder errors. */
    uint32_t *tok = NULL;
    size_t nt = 0;
    st = peqa_l2c_encode(t, "a", 1, 0x80, &tok, &nt);
    t_result(r, st == PEQA_ERR_ARG && tok == NULL, "import/tok/encode_bad_flags", "-", "status %d", (int)st);

    /* The heap encoder equals the naive rescanning one, over 8 random vocabularies: every string
     * over {a, b, ' '} up to length 3, minus random holes (dead ends) and, in every other
     * vocabulary, minus "b" (byte fallback); scores drawn from 4 values so that ties are everywhere. */
    {
        static tpiece rv[600];
        static char rtext[64][4];
        static unsigned char rbuf[1 << 16];
        tpiece extra[64];
        prng g;
        prng_seed(&g, r->seed ^ 0x70CE);
        const char alpha[3] = {'a', 'b', ' '};
        int same = 1, cases = r->quick ? 25 : 100, total = 0;
        char msg[512] = "";
        for (int voc = 0; same && voc < 8; voc++) {
            size_t ne = 0;
            for (int L = 1; L <= 3; L++) {
                int combos = L == 1 ? 3 : L == 2 ? 9 : 27;
                for (int c = 0; c < combos; c++) {
                    int x = c;
                    for (int k = 0; k < L; k++) rtext[ne][k] = alpha[x % 3], x /= 3;
                    rtext[ne][L] = '\0';
                    if (L > 1 && prng_below(&g, 4) == 0) continue; /* leave holes */
                    if (L == 1 && c == 1 && voc % 2) continue;      /* no "b": byte fallback */
                    extra[ne] = (tpiece){rtext[ne], (size_t)L, -(float)prng_below(&g, 4)};
                    ne++;
                }
            }
            size_t nr = llama_vocab(rv, btext, extra, ne);
            size_t rl = tok_bytes(rv, nr, 0, rbuf);
            char fname[64];
            snprintf(fname, sizeof fname, "tokenizer_random%d.bin", voc);
            const char *rp = tpath(td, fname);
            write_file(rp, rbuf, rl);
            peqa_l2c_tokenizer *tr = NULL;
            st = peqa_l2c_tokenizer_load(rp, (int64_t)nr, &tr);
            if (st) {
                snprintf(msg, sizeof msg, "vocabulary %d: %s", voc, peqa_last_error());
                same = 0;
            }
            for (int c = 0; same && c < cases; c++) {
                total++;
                char text[48];
                size_t len = (size_t)prng_below(&g, sizeof text);
                for (size_t i = 0; i < len; i++) text[i] = alpha[prng_below(&g, 3)];
                uint32_t *a = NULL, nv[64];
                size_t na = 0;
                peqa_status s1 = peqa_l2c_encode(tr, text, len, 0, &a, &na);
                size_t nn = naive_encode(rv, nr, text, len, nv);
                if (s1 || !same_tokens(a, na, nv, nn)) {
                    char ga[200], gb[200];
                    fmt_tokens(ga, sizeof ga, a, na);
                    fmt_tokens(gb, sizeof gb, nv, nn);
                    snprintf(msg, sizeof msg, "vocabulary %d case %d '%.*s': heap [%s] naive [%s]", voc, c, (int)len,
                             text, ga, gb);
                    same = 0;
                }
                char *dec = NULL;
                size_t dl = 0;
                /* And decoding (no BOS: the prefix space stays) gives " " + text back. */
                if (same && len) {
                    if (peqa_l2c_decode(tr, UINT32_MAX, a, na, &dec, &dl) || dl != len + 1 || dec[0] != ' ' ||
                        memcmp(dec + 1, text, len)) {
                        snprintf(msg, sizeof msg, "vocabulary %d case %d: decode mismatch", voc, c);
                        same = 0;
                    }
                }
                free(dec);
                free(a);
            }
            peqa_l2c_tokenizer_free(tr);
        }
        t_result(r, same, "import/tok/heap_vs_naive", "-", "%d random texts over 8 vocabularies, seed %llu %s", total,
                 (unsigned long long)r->seed, msg);
    }

    /* No byte fallback in the vocabulary: an unspellable byte is an error naming its offset. */
    {
        tpiece small[] = {{"<unk>", 5, 0}, {"\n<s>\n", 5, 0}, {"\n</s>\n", 6, 0}, {" ", 1, -1}, {"a", 1, -2}};
        size_t sl = tok_bytes(small, 5, 0, buf);
        const char *sp = tpath(td, "tokenizer_small.bin");
        write_file(sp, buf, sl);
        peqa_l2c_tokenizer *ts = NULL;
        st = peqa_l2c_tokenizer_load(sp, 5, &ts);
        peqa_status s2 = st ? st : peqa_l2c_encode(ts, "aaz", 3, 0, &tok, &nt);
        t_result(r, st == PEQA_OK && s2 == PEQA_ERR_RANGE && tok == NULL && msg_has("0x7A at offset 2"),
                 "import/tok/encode_unspellable", "-", "status %d: %s", (int)s2, peqa_last_error());
        peqa_l2c_tokenizer_free(ts);
    }
    peqa_l2c_tokenizer_free(t);

    /* Random byte corruptions of a valid tokenizer.bin: load either fails with FORMAT naming the
     * file, or succeeds and then encodes and decodes without trouble. */
    {
        prng g;
        prng_seed(&g, r->seed ^ 0xF7);
        const char *fp = tpath(td, "tok_fuzz.bin");
        static unsigned char fz[1 << 16];
        int ok_all = 1, loaded = 0, trials = r->quick ? 100 : 400;
        blen = tok_bytes(v, n, 0, buf); /* buf was reused above */
        char msg[600] = "";
        for (int i = 0; ok_all && i < trials; i++) {
            memcpy(fz, buf, blen);
            size_t fl = blen;
            int edits = 1 + (int)prng_below(&g, 4);
            for (int e = 0; e < edits; e++) {
                size_t at = (size_t)prng_below(&g, fl);
                int kind = (int)prng_below(&g, 3);
                if (kind == 0) fz[at] = (unsigned char)prng_next(&g);
                else if (kind == 1) fl = at + 1; /* truncate */
                else fz[at] ^= 0x80;
            }
            write_file(fp, fz, fl);
            peqa_l2c_tokenizer *tf = NULL;
            st = peqa_l2c_tokenizer_load(fp, (int64_t)(prng_below(&g, 2) ? n : 0), &tf);
            if (st == PEQA_OK) {
                loaded++;
                uint32_t *tk = NULL;
                size_t ntk = 0, dl = 0;
                char *dec = NULL;
                peqa_status s1 = peqa_l2c_encode(tf, "hello \xC3\xA9 abc\x00", 13, PEQA_TOK_ADD_BOS, &tk, &ntk);
                peqa_status s2 = s1 ? PEQA_OK : peqa_l2c_decode(tf, UINT32_MAX, tk, ntk, &dec, &dl);
                ok_all = (s1 == PEQA_OK || s1 == PEQA_ERR_RANGE) && s2 == PEQA_OK;
                free(tk);
                free(dec);
                peqa_l2c_tokenizer_free(tf);
            } else {
                ok_all = st == PEQA_ERR_FORMAT && msg_has(fp);
            }
            if (!ok_all) snprintf(msg, sizeof msg, "trial %d: status %d: %.400s", i, (int)st, peqa_last_error());
        }
        t_result(r, ok_all, "import/tok/fuzz", "-", "%d corrupted files (%d still loadable), seed %llu %s", trials, loaded,
                 (unsigned long long)r->seed, msg);
    }

    /* Bad files. */
    {
        tpiece two[] = {{"ab", 2, -1}, {"c", 1, -2}};
        unsigned char good[64];
        size_t gl = tok_bytes(two, 2, 0, good); /* 4 + 10 + 9 = 23 bytes */
        struct {
            const char *name;
            int64_t vocab;
            size_t len;
            int patch_at;    /* -1: none */
            uint32_t patch;  /* int32 written at patch_at */
            int append;      /* extra zero bytes */
            peqa_status want;
            const char *msg;
        } bad[] = {
            {"short", 2, 3, -1, 0, 0, PEQA_ERR_FORMAT, "too short"},
            {"zero_max_len", 2, 0, 0, 0, 0, PEQA_ERR_FORMAT, "max_token_length 0 must be positive"},
            {"negative_max_len", 2, 0, 0, 0xFFFFFFFFu, 0, PEQA_ERR_FORMAT, "max_token_length -1"},
            {"negative_len", 2, 0, 8, 0xFFFFFFFEu, 0, PEQA_ERR_FORMAT, "entry 0 has length -2"},
            {"len_above_max", 2, 0, 0, 1, 0, PEQA_ERR_FORMAT, "entry 0 has length 2, outside [0, max_token_length 1]"},
            {"nan_score", 2, 0, 14, 0x7FC00000u, 0, PEQA_ERR_FORMAT, "entry 1 has a non-finite score"},
            {"inf_score", 2, 0, 4, 0xFF800000u, 0, PEQA_ERR_FORMAT, "entry 0 has a non-finite score"},
            {"truncated_piece", 2, 22, -1, 0, 0, PEQA_ERR_FORMAT, "entry 1 (length 1) runs past the end"},
            {"truncated_len", 2, 17, -1, 0, 0, PEQA_ERR_FORMAT, "inside the score and length of entry 1"},
            {"more_entries_than_file", 3, 0, -1, 0, 0, PEQA_ERR_FORMAT, "entry 2"},
            {"trailing", 2, 0, -1, 0, 3, PEQA_ERR_FORMAT, "3 bytes after the 2 entries"},
            {"trailing_partial_entry", 0, 0, -1, 0, 3, PEQA_ERR_FORMAT, "entry 2"},
            {"no_entries", 0, 4, -1, 0, 0, PEQA_ERR_FORMAT, "no entries"},
            {"bad_vocab_arg", -1, 0, -1, 0, 0, PEQA_ERR_ARG, "vocab_size -1"},
        };
        for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
            unsigned char b2[80];
            size_t l2 = bad[i].len ? bad[i].len : gl;
            memcpy(b2, good, gl);
            if (bad[i].patch_at >= 0) put32(b2 + bad[i].patch_at, bad[i].patch);
            memset(b2 + l2, 0, (size_t)bad[i].append);
            l2 += (size_t)bad[i].append;
            char fname[96], name[96];
            snprintf(fname, sizeof fname, "badtok_%s.bin", bad[i].name);
            const char *p = tpath(td, fname);
            write_file(p, b2, l2);
            peqa_l2c_tokenizer *tb = (peqa_l2c_tokenizer *)1;
            st = peqa_l2c_tokenizer_load(p, bad[i].vocab, &tb);
            snprintf(name, sizeof name, "import/tok/bad/%s", bad[i].name);
            t_result(r, st == bad[i].want && tb == NULL && msg_has(bad[i].msg) && msg_has(p), name, "-",
                     "status %d: %s", (int)st, peqa_last_error());
            if (st == PEQA_OK) peqa_l2c_tokenizer_free(tb);
        }
        peqa_l2c_tokenizer *tb = NULL;
        const char *p = tpath(td, "tok_missing.bin");
        st = peqa_l2c_tokenizer_load(p, 2, &tb);
        t_result(r, st == PEQA_ERR_IO && msg_has(p), "import/tok/bad/missing", "-", "status %d: %s", (int)st,
                 peqa_last_error());
    }
}

/* ---- llm.c shards, raw uint16, byte tokenizer, datasets -------------------------------------------- */

static void shard_cases(trun *r, tdir *td)
{
    prng g;
    prng_seed(&g, r->seed ^ 0x5A4D);
    static uint32_t toks[70000];
    size_t n16 = 40000; /* > 32768 tokens: more than one 64 KiB chunk at width 2 */
    for (size_t i = 0; i < n16; i++) toks[i] = (uint32_t)prng_below(&g, 65536);
    toks[0] = 0, toks[1] = 65535;
    const char *p16 = tpath(td, "tok16.bin");
    peqa_status st = peqa_shard_write(p16, toks, n16, 2);
    size_t flen = 0;
    unsigned char *fb = read_all(p16, &flen);
    int bytes_ok = st == PEQA_OK && fb && flen == 1024 + 2 * n16 && get32(fb) == 20240520 && get32(fb + 4) == 1 &&
                   get32(fb + 8) == n16;
    for (size_t i = 12; bytes_ok && i < 1024; i++) bytes_ok = fb[i] == 0;
    for (size_t i = 0; bytes_ok && i < n16; i++)
        bytes_ok = (uint32_t)fb[1024 + 2 * i] + ((uint32_t)fb[1025 + 2 * i] << 8) == toks[i];
    free(fb);
    char tmpname[200];
    snprintf(tmpname, sizeof tmpname, "%s.tmp", p16);
    t_result(r, bytes_ok && !exists(tmpname), "import/shard/u16_bytes", "-",
             "%zu bytes: header 20240520/1/%zu, zero padding, LE uint16, no .tmp left", flen, n16);
    uint32_t *back = NULL;
    size_t nb = 0;
    int width = 0;
    st = peqa_shard_read(p16, 0, &back, &nb, &width);
    t_result(r, st == PEQA_OK && width == 2 && same_tokens(back, nb, toks, n16), "import/shard/u16_round_trip", "-",
             "status %d width %d count %zu %s", (int)st, width, nb, st ? peqa_last_error() : "");
    free(back);

    size_t n32 = 20000; /* > 16384 tokens: more than one chunk at width 4 */
    for (size_t i = 0; i < n32; i++) toks[i] = (uint32_t)prng_next(&g);
    toks[0] = 0, toks[1] = 0xFFFFFFFFu, toks[2] = 65536;
    const char *p32 = tpath(td, "tok32.bin");
    st = peqa_shard_write(p32, toks, n32, 0); /* automatic: needs 4 */
    fb = read_all(p32, &flen);
    bytes_ok = st == PEQA_OK && fb && flen == 1024 + 4 * n32 && get32(fb) == 20240801 && get32(fb + 4) == 7 &&
               get32(fb + 8) == n32;
    for (size_t i = 0; bytes_ok && i < n32; i++) bytes_ok = get32(fb + 1024 + 4 * i) == toks[i];
    free(fb);
    t_result(r, bytes_ok, "import/shard/u32_bytes", "-", "automatic width picks uint32: header 20240801/7/%zu", n32);
    st = peqa_shard_read(p32, 0, &back, &nb, &width);
    t_result(r, st == PEQA_OK && width == 4 && same_tokens(back, nb, toks, n32), "import/shard/u32_round_trip", "-",
             "status %d width %d count %zu", (int)st, width, nb);
    free(back);

    /* Automatic width with small tokens is uint16; explicit width 4 with small tokens works. */
    uint32_t small[5] = {1, 2, 3, 256, 65535};
    const char *pa = tpath(td, "auto16.bin"), *pw = tpath(td, "wide_small.bin");
    peqa_status s1 = peqa_shard_write(pa, small, 5, 0), s2 = peqa_shard_write(pw, small, 5, 4);
    int w1 = 0, w2 = 0;
    uint32_t *b1 = NULL, *b2 = NULL;
    size_t c1 = 0, c2 = 0;
    peqa_shard_read(pa, 0, &b1, &c1, &w1);
    peqa_shard_read(pw, 0, &b2, &c2, &w2);
    t_result(r, !s1 && !s2 && w1 == 2 && w2 == 4 && same_tokens(b1, c1, small, 5) && same_tokens(b2, c2, small, 5),
             "import/shard/widths", "-", "auto -> %d, explicit 4 -> %d", w1, w2);
    free(b1), free(b2);

    /* Writer errors; the target must not appear. */
    uint32_t big[3] = {5, 70000, 6};
    const char *pe = tpath(td, "never.bin");
    s1 = peqa_shard_write(pe, big, 3, 2);
    int m1 = msg_has("token 70000 at position 1");
    s2 = peqa_shard_write(pe, big, 0, 2);
    peqa_status s3 = peqa_shard_write(pe, big, 3, 3);
    t_result(r, s1 == PEQA_ERR_RANGE && m1 && s2 == PEQA_ERR_SHAPE && s3 == PEQA_ERR_ARG && !exists(pe),
             "import/shard/write_errors", "-", "too big for u16 %d, empty %d, width 3 %d", (int)s1, (int)s2, (int)s3);
    s1 = peqa_shard_write("/nonexistent_dir_peqa/x.bin", small, 5, 2);
    t_result(r, s1 == PEQA_ERR_IO && msg_has("/nonexistent_dir_peqa/x.bin"), "import/shard/write_unwritable", "-",
             "status %d: %s", (int)s1, peqa_last_error());

    /* Overwriting an existing shard replaces it completely. */
    s1 = peqa_shard_write(pa, big, 3, 4);
    peqa_shard_read(pa, 0, &b1, &c1, &w1);
    t_result(r, !s1 && w1 == 4 && same_tokens(b1, c1, big, 3), "import/shard/overwrite", "-", "count %zu", c1);
    free(b1);

    /* Reader checks on hand-made files: header (magic, version, count) and length. */
    struct {
        const char *name;
        uint32_t magic, version, count;
        size_t payload; /* bytes after the header */
        size_t file_len; /* 0: 1024 + payload */
        peqa_status want;
        const char *msg;
    } bad[] = {
        {"bad_magic", 20240521, 1, 4, 8, 0, PEQA_ERR_FORMAT, "bad magic 20240521"},
        {"u16_version_2", 20240520, 2, 4, 8, 0, PEQA_ERR_FORMAT, "version 2 for magic 20240520"},
        {"u32_version_1", 20240801, 1, 4, 16, 0, PEQA_ERR_FORMAT, "version 1 for magic 20240801"},
        {"eval_file", 20240522, 1, 4, 8, 0, PEQA_ERR_FORMAT, "evaluation file"},
        {"zero_count", 20240520, 1, 0, 0, 0, PEQA_ERR_FORMAT, "token count 0"},
        {"negative_count", 20240520, 1, 0xFFFFFFFFu, 8, 0, PEQA_ERR_FORMAT, "token count -1"},
        {"count_too_big", 20240520, 1, 5, 8, 0, PEQA_ERR_FORMAT, "promises 5 tokens of 2 bytes = 1034 bytes (truncated)"},
        {"count_too_small", 20240520, 1, 3, 8, 0, PEQA_ERR_FORMAT, "(trailing bytes)"},
        {"odd_tail_u32", 20240801, 7, 2, 9, 0, PEQA_ERR_FORMAT, "trailing bytes"},
        {"truncated_header", 20240520, 1, 4, 0, 500, PEQA_ERR_FORMAT, "500 bytes, shorter than the 1024-byte"},
        {"empty_file", 20240520, 1, 4, 0, 1, PEQA_ERR_FORMAT, "shorter than the 1024-byte"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        static unsigned char fbuf[2048];
        memset(fbuf, 0, sizeof fbuf);
        put32(fbuf, bad[i].magic);
        put32(fbuf + 4, bad[i].version);
        put32(fbuf + 8, bad[i].count);
        for (size_t k = 0; k < bad[i].payload; k++) fbuf[1024 + k] = (unsigned char)(k + 1);
        size_t len = bad[i].file_len ? (bad[i].file_len == 1 ? 0 : bad[i].file_len) : 1024 + bad[i].payload;
        char fname[96], name[96];
        snprintf(fname, sizeof fname, "badshard_%s.bin", bad[i].name);
        const char *p = tpath(td, fname);
        write_file(p, fbuf, len);
        uint32_t *tk = (uint32_t *)1;
        size_t cnt = 99;
        st = peqa_shard_read(p, 0, &tk, &cnt, NULL);
        snprintf(name, sizeof name, "import/shard/bad/%s", bad[i].name);
        t_result(r, st == bad[i].want && tk == NULL && cnt == 0 && msg_has(bad[i].msg) && msg_has(p), name, "-",
                 "status %d: %s", (int)st, peqa_last_error());
    }
    /* The max-tokens guard. */
    st = peqa_shard_read(p16, n16 - 1, &back, &nb, NULL);
    int g1 = st == PEQA_ERR_RANGE && back == NULL && msg_has("more than the limit of 39999");
    st = peqa_shard_read(p16, n16, &back, &nb, NULL);
    t_result(r, g1 && st == PEQA_OK && nb == n16, "import/shard/max_tokens", "-", "limit n-1 refused, n accepted");
    free(back);
    st = peqa_shard_read(tpath(td, "no_such_shard.bin"), 0, &back, &nb, NULL);
    t_result(r, st == PEQA_ERR_IO && msg_has("no_such_shard.bin"), "import/shard/bad/missing", "-", "status %d: %s",
             (int)st, peqa_last_error());
    st = peqa_shard_read(td->dir, 0, &back, &nb, NULL);
    t_result(r, st == PEQA_ERR_IO && msg_has("is a directory"), "import/shard/bad/directory", "-", "status %d: %s",
             (int)st, peqa_last_error());
}

static void bytes_and_data_cases(trun *r, tdir *td)
{
    /* Byte tokenizer over every byte value. */
    unsigned char all[512];
    for (int i = 0; i < 512; i++) all[i] = (unsigned char)(i < 256 ? i : 511 - i);
    uint32_t *t = NULL;
    size_t n = 0, dl = 0;
    char *dec = NULL;
    peqa_status s1 = peqa_byte_encode(all, sizeof all, PEQA_TOK_ADD_BOS | PEQA_TOK_ADD_EOS, &t, &n);
    int ok = s1 == PEQA_OK && n == 514 && t[0] == PEQA_BYTE_BOS && t[513] == PEQA_BYTE_EOS;
    for (size_t i = 0; ok && i < 512; i++) ok = t[1 + i] == all[i];
    peqa_status s2 = s1 ? s1 : peqa_byte_decode(t, n, &dec, &dl);
    ok = ok && s2 == PEQA_OK && dl == 512 && !memcmp(dec, all, 512) && dec[512] == '\0';
    t_result(r, ok, "import/bytes/round_trip", "-", "512 bytes incl. 0x00 and 0xFF, BOS 256 / EOS 257 dropped");
    free(t), free(dec);
    s1 = peqa_byte_encode("", 0, 0, &t, &n);
    ok = s1 == PEQA_OK && t != NULL && n == 0;
    free(t);
    s1 = peqa_byte_encode(NULL, 0, PEQA_TOK_ADD_EOS, &t, &n);
    ok = ok && s1 == PEQA_OK && n == 1 && t[0] == PEQA_BYTE_EOS;
    free(t);
    uint32_t badt[3] = {65, 258, 66};
    s1 = peqa_byte_decode(badt, 3, &dec, &dl);
    ok = ok && s1 == PEQA_ERR_RANGE && dec == NULL && msg_has("token 258 at position 1");
    t_result(r, ok, "import/bytes/edges", "-", "empty text, EOS only, id 258 refused");

    /* Datasets by content and by name. */
    const char *txt = tpath(td, "data.txt");
    const char text[] = "Hello\0\xFFworld\n";
    write_file(txt, text, sizeof text - 1);
    peqa_data_format used = PEQA_DATA_SHARD;
    s1 = peqa_dataset_load(txt, PEQA_DATA_AUTO, 0, &t, &n, &used);
    ok = s1 == PEQA_OK && used == PEQA_DATA_TEXT && n == sizeof text - 1;
    for (size_t i = 0; ok && i < n; i++) ok = t[i] == (unsigned char)text[i];
    free(t);
    t_result(r, ok, "import/data/text", "-", "status %d, %zu tokens %s", (int)s1, n, s1 ? peqa_last_error() : "");

    uint32_t sh[4] = {7, 0, 65535, 300};
    const char *shp = tpath(td, "data_shard.dat"); /* found by its magic, not its name */
    peqa_shard_write(shp, sh, 4, 2);
    s1 = peqa_dataset_load(shp, PEQA_DATA_AUTO, 0, &t, &n, &used);
    t_result(r, s1 == PEQA_OK && used == PEQA_DATA_SHARD && same_tokens(t, n, sh, 4), "import/data/shard_by_magic",
             "-", "status %d %s", (int)s1, s1 ? peqa_last_error() : "");
    free(t);

    /* A .bin without a magic is not guessed at; raw uint16 must be asked for. */
    const char *rawp = tpath(td, "raw.bin");
    unsigned char raw[6] = {1, 0, 0xFF, 0xFF, 0x34, 0x12};
    write_file(rawp, raw, 6);
    s1 = peqa_dataset_load(rawp, PEQA_DATA_AUTO, 0, &t, &n, NULL);
    ok = s1 == PEQA_ERR_FORMAT && t == NULL && msg_has(rawp) && msg_has("without an llm.c shard header");
    s2 = peqa_dataset_load(rawp, PEQA_DATA_RAW_U16, 0, &t, &n, &used);
    uint32_t rawwant[3] = {1, 65535, 0x1234};
    ok = ok && s2 == PEQA_OK && used == PEQA_DATA_RAW_U16 && same_tokens(t, n, rawwant, 3);
    free(t);
    uint32_t *t2 = NULL;
    size_t n2 = 0;
    peqa_status s3 = peqa_raw_u16_read(rawp, 0, &t2, &n2);
    ok = ok && s3 == PEQA_OK && same_tokens(t2, n2, rawwant, 3);
    free(t2);
    t_result(r, ok, "import/data/raw_u16", "-", "auto refuses headerless .bin (%d), explicit raw reads 3 tokens (%d)",
             (int)s1, (int)s2);

    /* Text forced on a shard file reads its bytes; shard forced on text fails on the magic. */
    s1 = peqa_dataset_load(shp, PEQA_DATA_TEXT, 0, &t, &n, NULL);
    size_t n1 = n;
    ok = s1 == PEQA_OK && n1 == 1024 + 8;
    free(t);
    static char longtext[2000];
    for (size_t i = 0; i < sizeof longtext; i++) longtext[i] = (char)('a' + i % 26);
    const char *ltp = tpath(td, "long.txt");
    write_file(ltp, longtext, sizeof longtext);
    s2 = peqa_dataset_load(ltp, PEQA_DATA_SHARD, 0, &t, &n, NULL);
    ok = ok && s2 == PEQA_ERR_FORMAT && msg_has("bad magic 1684234849"); /* "abcd" */
    t_result(r, ok, "import/data/forced_format", "-", "text %d (%zu tokens, want 1032), shard %d: %s", (int)s1, n1,
             (int)s2, peqa_last_error());

    /* Limits and bad files. */
    s1 = peqa_dataset_load(txt, PEQA_DATA_AUTO, 5, &t, &n, NULL);
    ok = s1 == PEQA_ERR_RANGE && t == NULL && msg_has("more than the limit of 5");
    s2 = peqa_dataset_load(txt, PEQA_DATA_AUTO, sizeof text - 1, &t, &n, NULL);
    ok = ok && s2 == PEQA_OK && n == sizeof text - 1;
    free(t);
    s3 = peqa_dataset_load(rawp, PEQA_DATA_RAW_U16, 2, &t, &n, NULL);
    ok = ok && s3 == PEQA_ERR_RANGE;
    t_result(r, ok, "import/data/max_tokens", "-", "text over limit %d, at limit %d, raw over limit %d", (int)s1,
             (int)s2, (int)s3);
    const char *emp = tpath(td, "empty.txt"), *odd = tpath(td, "odd.u16");
    write_file(emp, "", 0);
    write_file(odd, raw, 5);
    s1 = peqa_dataset_load(emp, PEQA_DATA_AUTO, 0, &t, &n, NULL);
    ok = s1 == PEQA_ERR_FORMAT && msg_has("empty file");
    s2 = peqa_raw_u16_read(odd, 0, &t, &n);
    ok = ok && s2 == PEQA_ERR_FORMAT && msg_has("odd");
    s3 = peqa_dataset_load(tpath(td, "missing.txt"), PEQA_DATA_AUTO, 0, &t, &n, NULL);
    ok = ok && s3 == PEQA_ERR_IO && msg_has("missing.txt");
    peqa_status s4 = peqa_dataset_load(txt, (peqa_data_format)9, 0, &t, &n, NULL);
    ok = ok && s4 == PEQA_ERR_ARG;
    t_result(r, ok, "import/data/bad", "-", "empty %d, odd raw %d, missing %d, bad format %d", (int)s1, (int)s2, (int)s3,
             (int)s4);

    /* Vocabulary check. */
    uint32_t v[3] = {0, 257, 258};
    s1 = peqa_tokens_check_vocab("x.bin", v, 2, PEQA_BYTE_VOCAB);
    s2 = peqa_tokens_check_vocab("x.bin", v, 3, PEQA_BYTE_VOCAB);
    t_result(r, s1 == PEQA_OK && s2 == PEQA_ERR_RANGE && msg_has("x.bin: token 258 at position 2"),
             "import/data/check_vocab", "-", "%d %d", (int)s1, (int)s2);
}

/* ---- the group ----------------------------------------------------------------------------- */

void test_import(trun *r)
{
    tdir td = {.npaths = 0, .ndirs = 0};
    snprintf(td.dir, sizeof td.dir, "/tmp/peqa_import_XXXXXX");
    if (!mkdtemp(td.dir)) {
        t_result(r, 0, "import/tmpdir", "-", "mkdtemp failed");
        return;
    }
    /* GQA with 2 heads of 8 sharing 1 kv head, shared classifier; then 4 heads of 6 with 2 kv
     * heads, a separate classifier and 3 layers, written through convert_dir. Head sizes 6 and 8
     * because for 2 and 4 the permutation is its own inverse and could not tell the directions
     * apart. */
    l2c_dims shared = {16, 12, 2, 2, 1, 11, 5, 0};
    l2c_dims unshared = {24, 20, 3, 4, 2, 13, 7, 1};
    l2c_convert_case(r, &td, &shared, "shared", r->seed ^ 0x12C1, 0);
    l2c_convert_case(r, &td, &unshared, "unshared", r->seed ^ 0x12C2, 1);
    l2c_permutation_api(r);
    l2c_bad_cases(r, &td);
    l2c_header_fuzz(r, &td);
    tok_cases(r, &td);
    shard_cases(r, &td);
    bytes_and_data_cases(r, &td);

    for (int i = 0; i < td.npaths; i++) {
        unlink(td.paths[i]);
        char tmp[200];
        snprintf(tmp, sizeof tmp, "%s.tmp", td.paths[i]);
        unlink(tmp);
    }
    for (int i = td.ndirs - 1; i >= 0; i--) rmdir(td.dirs[i]);
    if (rmdir(td.dir) != 0) t_result(r, 0, "import/tmpdir_cleanup", "-", "%s not empty after the tests", td.dir);
}
