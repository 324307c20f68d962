/* peqa — the LLaMA model (see model.h for the architecture, the two modes, the activation cache
 * and the API contracts).
 *
 * Layout of this file: helpers; configuration (init, check, config.json in and out); the model
 * (allocation, random init, iteration, load, save, quantize); gradients and parameters; the
 * training forward and backward; inference (logits, eval, KV-cache decoding).
 *
 * Determinism: every float operation here is either one of src/ops.h (fixed sequences), a
 * product of src/peqa.h (fixed sequences on every ISA and thread count), or an elementwise
 * addition written below. Sums over several contributions (the residual stream, the input
 * gradients of q/k/v or gate/up, micro-batch accumulation) are done in a fixed order that is
 * written down where they happen. Nothing depends on the thread count.
 */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "internal.h"
#include "json.h"
#include "model.h"
#include "ops.h"
#include "safetensors.h"


/* ---- helpers ------------------------------------------------------------------------------ */


/* The model's PRNG for random initialisation: splitmix64 seeding xoshiro256** (the generator
 * of tests/prng.h, restated here so that the library does not depend on test code). Integer
 * arithmetic only, so a seed gives the same stream everywhere. */
typedef struct { uint64_t s[4]; } model_rng;

static uint64_t model_splitmix(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static void model_rng_seed(model_rng *r, uint64_t seed)
{
    for (int i = 0; i < 4; i++) r->s[i] = model_splitmix(&seed);
}

static uint64_t model_rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

static uint64_t model_rng_next(model_rng *r)
{
    uint64_t *s = r->s, out = model_rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0], s[3] ^= s[1], s[1] ^= s[2], s[0] ^= s[3], s[2] ^= t, s[3] = model_rotl(s[3], 45);
    return out;
}

/* Uniform in [0, 1) with 24 random bits (exact in binary32). */
static float model_rng_unit(model_rng *r) { return (float)(model_rng_next(r) >> 40) * (1.0f / 16777216.0f); }

/* a[i] = a[i] + b[i], i ascending. */
static void vadd(float *a, const float *b, size_t n)
{
    for (size_t i = 0; i < n; i++) a[i] = a[i] + b[i];
}

/* y[i] = a[i] + b[i] (y may alias a or b). */
static void vadd3(float *y, const float *a, const float *b, size_t n)
{
    for (size_t i = 0; i < n; i++) y[i] = a[i] + b[i];
}

static const char *const lin_suffix[PEQA_LIN_COUNT] = {
    "self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
    "mlp.gate_proj",    "mlp.up_proj",      "mlp.down_proj",
};

/* ---- configuration ---------------------------------------------------------------------------- */

static peqa_status cfg_range(peqa_status code, const char *what, const char *key, int64_t v, int64_t lo,
                             int64_t hi)
{
    if (v < lo || v > hi)
        return peqa__fail(code, "%s: \"%s\" = %lld: expected an integer in [%lld, %lld]", what, key, (long long)v,
                          (long long)lo, (long long)hi);
    return PEQA_OK;
}

/* The checks of peqa_model_config_check with a chosen status (FORMAT for files, ARG for code). */
static peqa_status cfg_check(const peqa_model_config *c, const char *what, peqa_status code)
{
    PEQA_TRY(cfg_range(code, what, "hidden_size", c->dim, 1, PEQA_MODEL_MAX_DIM));
    PEQA_TRY(cfg_range(code, what, "intermediate_size", c->ffn, 1, PEQA_MODEL_MAX_FFN));
    PEQA_TRY(cfg_range(code, what, "num_hidden_layers", c->n_layers, 1, PEQA_MODEL_MAX_LAYERS));
    PEQA_TRY(cfg_range(code, what, "num_attention_heads", c->n_heads, 1, PEQA_MODEL_MAX_HEADS));
    PEQA_TRY(cfg_range(code, what, "num_key_value_heads", c->n_kv_heads, 1, PEQA_MODEL_MAX_HEADS));
    PEQA_TRY(cfg_range(code, what, "head_dim", c->head_dim, 2, PEQA_MODEL_MAX_HEAD_DIM));
    PEQA_TRY(cfg_range(code, what, "vocab_size", c->vocab, 1, PEQA_MODEL_MAX_VOCAB));
    PEQA_TRY(cfg_range(code, what, "max_position_embeddings", c->max_pos, 1, PEQA_MODEL_MAX_POS));
    if (c->head_dim % 2 != 0)
        return peqa__fail(code, "%s: \"head_dim\" = %lld: rotary embedding needs an even head dimension", what,
                          (long long)c->head_dim);
    if (c->n_heads % c->n_kv_heads != 0)
        return peqa__fail(code, "%s: \"num_key_value_heads\" = %lld does not divide \"num_attention_heads\" = %lld",
                          what, (long long)c->n_kv_heads, (long long)c->n_heads);
    if (!isfinite(c->norm_eps) || !(c->norm_eps > 0.0) || !(c->norm_eps < 1.0) || !((float)c->norm_eps > 0.0f))
        return peqa__fail(code, "%s: \"rms_norm_eps\" = %g: expected a finite value in (0, 1) (and > 0 as float)",
                          what, c->norm_eps);
    if (!isfinite(c->rope_theta) || !(c->rope_theta > 1.0) || c->rope_theta > 1e15)
        return peqa__fail(code, "%s: \"rope_theta\" = %g: expected a finite value in (1, 1e15]", what,
                          c->rope_theta);
    if (c->tie_embeddings != 0 && c->tie_embeddings != 1)
        return peqa__fail(code, "%s: \"tie_word_embeddings\" must be 0 or 1", what);
    switch (c->rope_kind) {
    case PEQA_ROPE_DEFAULT: break;
    case PEQA_ROPE_LINEAR:
        if (!isfinite(c->rope_factor) || !(c->rope_factor > 0.0))
            return peqa__fail(code, "%s: rope scaling \"factor\" = %g: expected a finite value > 0", what,
                              c->rope_factor);
        break;
    case PEQA_ROPE_LLAMA3:
        if (!isfinite(c->rope_factor) || !(c->rope_factor > 0.0) || !isfinite(c->rope_low_freq_factor) ||
            !(c->rope_low_freq_factor > 0.0) || !isfinite(c->rope_high_freq_factor) ||
            !(c->rope_high_freq_factor > c->rope_low_freq_factor))
            return peqa__fail(code,
                              "%s: llama3 rope scaling: need finite \"factor\" > 0 and 0 < \"low_freq_factor\" < "
                              "\"high_freq_factor\" (got %g, %g, %g)",
                              what, c->rope_factor, c->rope_low_freq_factor, c->rope_high_freq_factor);
        PEQA_TRY(cfg_range(code, what, "original_max_position_embeddings", c->rope_orig_max_pos, 1, PEQA_MODEL_MAX_POS));
        break;
    default: return peqa__fail(code, "%s: unknown rope kind %d", what, (int)c->rope_kind);
    }
    if (c->bos_token_id < -1 || c->bos_token_id >= c->vocab || c->eos_token_id < -1 || c->eos_token_id >= c->vocab)
        return peqa__fail(code, "%s: \"bos_token_id\" = %lld or \"eos_token_id\" = %lld outside [0, vocab_size = %lld)",
                          what, (long long)c->bos_token_id, (long long)c->eos_token_id, (long long)c->vocab);
    return PEQA_OK;
}

peqa_status peqa_model_config_check(const peqa_model_config *c, const char *what)
{
    if (!c) return peqa__fail(PEQA_ERR_NULL, "peqa_model_config_check: config is NULL");
    return cfg_check(c, what ? what : "config", PEQA_ERR_ARG);
}

peqa_status peqa_model_config_init(peqa_model_config *c, int64_t dim, int64_t ffn, int64_t n_layers,
                                   int64_t n_heads, int64_t n_kv_heads, int64_t vocab, int64_t max_pos)
{
    if (!c) return peqa__fail(PEQA_ERR_NULL, "peqa_model_config_init: config is NULL");
    memset(c, 0, sizeof *c);
    c->dim = dim, c->ffn = ffn, c->n_layers = n_layers, c->n_heads = n_heads, c->n_kv_heads = n_kv_heads;
    c->vocab = vocab, c->max_pos = max_pos;
    if (n_heads >= 1 && dim >= 1 && dim % n_heads != 0)
        return peqa__fail(PEQA_ERR_ARG, "config: \"hidden_size\" = %lld is not divisible by \"num_attention_heads\" = %lld",
                          (long long)dim, (long long)n_heads);
    c->head_dim = n_heads >= 1 ? dim / n_heads : 0;
    c->norm_eps = 1e-5;
    c->rope_theta = 10000.0;
    c->rope_kind = PEQA_ROPE_DEFAULT;
    c->bos_token_id = -1, c->eos_token_id = -1;
    return cfg_check(c, "config", PEQA_ERR_ARG);
}

/* JSON lookups that name the key and the file in their errors. A member whose value is null
 * counts as absent (transformers writes null for unset optional keys). */
static const peqa_json_value *jget(const peqa_json_value *obj, const char *key)
{
    const peqa_json_value *v = peqa_json_get(obj, key);
    return v && v->type != PEQA_JSON_NULL ? v : NULL;
}

static peqa_status jint(const char *what, const peqa_json_value *obj, const char *key, const char *shown,
                        int required, int64_t dflt, int64_t *out)
{
    const peqa_json_value *v = jget(obj, key);
    if (!v) {
        if (required) return peqa__fail(PEQA_ERR_FORMAT, "%s: missing key \"%s\"", what, shown);
        *out = dflt;
        return PEQA_OK;
    }
    if (!peqa_json_as_int64(v, out))
        return peqa__fail(PEQA_ERR_FORMAT, "%s: \"%s\" (byte %zu) must be an integer, not %s", what, shown,
                          v->offset, v->type == PEQA_JSON_DOUBLE ? "a number with a fraction or exponent"
                                                                 : peqa_json_type_name(v->type));
    return PEQA_OK;
}

static peqa_status jdbl(const char *what, const peqa_json_value *obj, const char *key, const char *shown,
                        int required, double dflt, double *out)
{
    const peqa_json_value *v = jget(obj, key);
    if (!v) {
        if (required) return peqa__fail(PEQA_ERR_FORMAT, "%s: missing key \"%s\"", what, shown);
        *out = dflt;
        return PEQA_OK;
    }
    if (!peqa_json_as_double(v, out))
        return peqa__fail(PEQA_ERR_FORMAT, "%s: \"%s\" (byte %zu) must be a number, not %s", what, shown, v->offset,
                          peqa_json_type_name(v->type));
    return PEQA_OK;
}

static peqa_status jbool(const char *what, const peqa_json_value *obj, const char *key, int dflt, int *out)
{
    const peqa_json_value *v = jget(obj, key);
    if (!v) {
        *out = dflt;
        return PEQA_OK;
    }
    if (!peqa_json_as_bool(v, out))
        return peqa__fail(PEQA_ERR_FORMAT, "%s: \"%s\" (byte %zu) must be true or false, not %s", what, key,
                          v->offset, peqa_json_type_name(v->type));
    return PEQA_OK;
}

/* A token id: an integer, or (eos_token_id) a list whose first element is used. */
static peqa_status jtoken(const char *what, const peqa_json_value *root, const char *key, int64_t *out)
{
    const peqa_json_value *v = jget(root, key);
    *out = -1;
    if (!v) return PEQA_OK;
    if (v->type == PEQA_JSON_ARRAY) {
        if (peqa_json_count(v) == 0) return PEQA_OK;
        v = peqa_json_at(v, 0);
    }
    if (!peqa_json_as_int64(v, out) || *out < 0)
        return peqa__fail(PEQA_ERR_FORMAT, "%s: \"%s\" (byte %zu) must be a non-negative integer or a list of them",
                          what, key, v->offset);
    return PEQA_OK;
}

/* RoPE scaling from an object (rope_scaling of transformers v4, or rope_parameters of v5):
 * "rope_type" (or the older "type") selects the kind. */
static peqa_status parse_rope_scaling(const char *what, const char *objname, const peqa_json_value *sc,
                                      peqa_model_config *c)
{
    char key[96];
    if (sc->type != PEQA_JSON_OBJECT)
        return peqa__fail(PEQA_ERR_FORMAT, "%s: \"%s\" (byte %zu) must be an object or null, not %s", what, objname,
                          sc->offset, peqa_json_type_name(sc->type));
    const peqa_json_value *tv = jget(sc, "rope_type");
    if (!tv) tv = jget(sc, "type");
    const char *type = tv ? peqa_json_as_string(tv, NULL) : "default";
    if (!type)
        return peqa__fail(PEQA_ERR_FORMAT, "%s: \"%s.rope_type\" (byte %zu) must be a string", what, objname,
                          tv->offset);
    if (!strcmp(type, "default")) {
        c->rope_kind = PEQA_ROPE_DEFAULT;
    } else if (!strcmp(type, "linear")) {
        c->rope_kind = PEQA_ROPE_LINEAR;
        snprintf(key, sizeof key, "%s.factor", objname);
        PEQA_TRY(jdbl(what, sc, "factor", key, 1, 1.0, &c->rope_factor));
    } else if (!strcmp(type, "llama3")) {
        c->rope_kind = PEQA_ROPE_LLAMA3;
        snprintf(key, sizeof key, "%s.factor", objname);
        PEQA_TRY(jdbl(what, sc, "factor", key, 1, 1.0, &c->rope_factor));
        snprintf(key, sizeof key, "%s.low_freq_factor", objname);
        PEQA_TRY(jdbl(what, sc, "low_freq_factor", key, 1, 1.0, &c->rope_low_freq_factor));
        snprintf(key, sizeof key, "%s.high_freq_factor", objname);
        PEQA_TRY(jdbl(what, sc, "high_freq_factor", key, 1, 4.0, &c->rope_high_freq_factor));
        snprintf(key, sizeof key, "%s.original_max_position_embeddings", objname);
        PEQA_TRY(jint(what, sc, "original_max_position_embeddings", key, 1, 8192, &c->rope_orig_max_pos));
    } else {
        return peqa__fail(PEQA_ERR_FORMAT, "%s: \"%s\" rope type \"%s\" is not supported (default, linear, llama3 are)",
                          what, objname, type);
    }
    return PEQA_OK;
}

peqa_status peqa_model_config_parse(const char *text, size_t len, const char *what, peqa_model_config *c)
{
    if (!text || !c) return peqa__fail(PEQA_ERR_NULL, "peqa_model_config_parse: NULL argument");
    if (!what) what = "config.json";
    peqa_json_doc *doc = NULL;
    PEQA_TRY(peqa_json_parse(text, len, 0, what, &doc, NULL));
    const peqa_json_value *root = peqa_json_root(doc);
    peqa_model_config k;
    memset(&k, 0, sizeof k);
    peqa_status st = PEQA_OK;
#define J(expr)                                                                                    \
    do {                                                                                           \
        if ((st = (expr)) != PEQA_OK) goto done;                                                   \
    } while (0)
    if (root->type != PEQA_JSON_OBJECT) {
        st = peqa__fail(PEQA_ERR_FORMAT, "%s: expected a JSON object at the top level, found %s", what,
                        peqa_json_type_name(root->type));
        goto done;
    }
    const peqa_json_value *v;
    if ((v = jget(root, "model_type")) && !peqa_json_is_string(v, "llama")) {
        const char *s = peqa_json_as_string(v, NULL);
        st = peqa__fail(PEQA_ERR_FORMAT, "%s: \"model_type\" is %s%s%s: only \"llama\" models are supported", what,
                        s ? "\"" : "", s ? s : peqa_json_type_name(v->type), s ? "\"" : "");
        goto done;
    }
    if ((v = jget(root, "hidden_act")) && !peqa_json_is_string(v, "silu")) {
        st = peqa__fail(PEQA_ERR_FORMAT, "%s: \"hidden_act\" must be \"silu\" (SwiGLU)", what);
        goto done;
    }
    static const char *const biases[] = {"attention_bias", "mlp_bias"};
    for (int i = 0; i < 2; i++) {
        int b;
        J(jbool(what, root, biases[i], 0, &b));
        if (b) {
            st = peqa__fail(PEQA_ERR_FORMAT, "%s: \"%s\" is true: linear biases are not supported", what, biases[i]);
            goto done;
        }
    }
    J(jint(what, root, "hidden_size", "hidden_size", 1, 0, &k.dim));
    J(jint(what, root, "intermediate_size", "intermediate_size", 1, 0, &k.ffn));
    J(jint(what, root, "num_hidden_layers", "num_hidden_layers", 1, 0, &k.n_layers));
    J(jint(what, root, "num_attention_heads", "num_attention_heads", 1, 0, &k.n_heads));
    J(jint(what, root, "num_key_value_heads", "num_key_value_heads", 0, k.n_heads, &k.n_kv_heads));
    J(jint(what, root, "vocab_size", "vocab_size", 1, 0, &k.vocab));
    J(jint(what, root, "max_position_embeddings", "max_position_embeddings", 0, 2048, &k.max_pos));
    J(cfg_range(PEQA_ERR_FORMAT, what, "hidden_size", k.dim, 1, PEQA_MODEL_MAX_DIM));
    J(cfg_range(PEQA_ERR_FORMAT, what, "num_attention_heads", k.n_heads, 1, PEQA_MODEL_MAX_HEADS));
    if (jget(root, "head_dim")) {
        J(jint(what, root, "head_dim", "head_dim", 1, 0, &k.head_dim));
    } else {
        if (k.dim % k.n_heads != 0) {
            st = peqa__fail(PEQA_ERR_FORMAT,
                            "%s: \"hidden_size\" = %lld is not divisible by \"num_attention_heads\" = %lld (and no "
                            "\"head_dim\" is given)",
                            what, (long long)k.dim, (long long)k.n_heads);
            goto done;
        }
        k.head_dim = k.dim / k.n_heads;
    }
    J(jdbl(what, root, "rms_norm_eps", "rms_norm_eps", 0, 1e-6, &k.norm_eps));
    J(jbool(what, root, "tie_word_embeddings", 0, &k.tie_embeddings));
    /* rope_theta: top level (transformers v4) or inside rope_parameters (v5). */
    const peqa_json_value *rp = jget(root, "rope_parameters"), *rs = jget(root, "rope_scaling");
    if (rp && rp->type != PEQA_JSON_OBJECT) {
        st = peqa__fail(PEQA_ERR_FORMAT, "%s: \"rope_parameters\" (byte %zu) must be an object or null", what,
                        rp->offset);
        goto done;
    }
    double th_top = 0, th_sub = 0;
    int has_top = jget(root, "rope_theta") != NULL, has_sub = rp && jget(rp, "rope_theta") != NULL;
    if (has_top) J(jdbl(what, root, "rope_theta", "rope_theta", 1, 0, &th_top));
    if (has_sub) J(jdbl(what, rp, "rope_theta", "rope_parameters.rope_theta", 1, 0, &th_sub));
    if (has_top && has_sub && th_top != th_sub) {
        st = peqa__fail(PEQA_ERR_FORMAT, "%s: \"rope_theta\" = %g and \"rope_parameters.rope_theta\" = %g disagree",
                        what, th_top, th_sub);
        goto done;
    }
    k.rope_theta = has_top ? th_top : has_sub ? th_sub : 10000.0;
    k.rope_kind = PEQA_ROPE_DEFAULT;
    if (rs) J(parse_rope_scaling(what, "rope_scaling", rs, &k));
    else if (rp) J(parse_rope_scaling(what, "rope_parameters", rp, &k));
    J(jtoken(what, root, "bos_token_id", &k.bos_token_id));
    J(jtoken(what, root, "eos_token_id", &k.eos_token_id));
    /* Token ids outside the vocabulary are dropped rather than refused: some configs carry ids
     * of a tokenizer larger than the model's embedding (they are informational here). */
    if (k.bos_token_id >= k.vocab) k.bos_token_id = -1;
    if (k.eos_token_id >= k.vocab) k.eos_token_id = -1;
    J(cfg_check(&k, what, PEQA_ERR_FORMAT));
    *c = k;
#undef J
done:
    peqa_json_free(doc);
    return st;
}

peqa_status peqa_model_config_load(const char *path, peqa_model_config *c)
{
    if (!path || !c) return peqa__fail(PEQA_ERR_NULL, "peqa_model_config_load: NULL argument");
    char *text = NULL;
    size_t len = 0;
    PEQA_TRY(peqa__read_file(path, PEQA_JSON_MAX_BYTES, &text, &len));
    peqa_status st = peqa_model_config_parse(text, len, path, c);
    free(text);
    return st;
}

/* The shortest "%.Ng" that reads back as v, with ".0" added to integral values (Python's
 * repr style, as transformers writes floats). */
static void fmt_double(char *buf, size_t n, double v)
{
    for (int p = 1; p <= 17; p++) {
        snprintf(buf, n, "%.*g", p, v);
        if (strtod(buf, NULL) == v) break;
    }
    if (!strpbrk(buf, ".eEn")) {
        size_t l = strlen(buf);
        if (l + 3 <= n) memcpy(buf + l, ".0", 3);
    }
}

typedef struct {
    char *p;
    size_t len, cap;
    int oom;
} sbuf;

static void sb_printf(sbuf *b, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
static void sb_printf(sbuf *b, const char *fmt, ...)
{
    if (b->oom) return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int w = vsnprintf(b->p ? b->p + b->len : NULL, b->p ? b->cap - b->len : 0, fmt, ap);
        va_end(ap);
        if (w < 0) {
            b->oom = 1;
            return;
        }
        if (b->p && (size_t)w < b->cap - b->len) {
            b->len += (size_t)w;
            return;
        }
        size_t nc = (b->cap ? b->cap * 2 : 1024) + (size_t)w + 1;
        char *np = realloc(b->p, nc);
        if (!np) {
            b->oom = 1;
            return;
        }
        b->p = np, b->cap = nc;
    }
}

peqa_status peqa_model_config_json(const peqa_model_config *c, char **out)
{
    if (!c || !out) return peqa__fail(PEQA_ERR_NULL, "peqa_model_config_json: NULL argument");
    *out = NULL;
    PEQA_TRY(cfg_check(c, "config", PEQA_ERR_ARG));
    char d1[40], d2[40], d3[40], d4[40];
    sbuf b = {0};
    sb_printf(&b, "{\n  \"architectures\": [\"LlamaForCausalLM\"],\n  \"model_type\": \"llama\",\n");
    sb_printf(&b, "  \"hidden_size\": %lld,\n  \"intermediate_size\": %lld,\n  \"num_hidden_layers\": %lld,\n",
              (long long)c->dim, (long long)c->ffn, (long long)c->n_layers);
    sb_printf(&b, "  \"num_attention_heads\": %lld,\n  \"num_key_value_heads\": %lld,\n  \"head_dim\": %lld,\n",
              (long long)c->n_heads, (long long)c->n_kv_heads, (long long)c->head_dim);
    sb_printf(&b, "  \"vocab_size\": %lld,\n  \"max_position_embeddings\": %lld,\n", (long long)c->vocab,
              (long long)c->max_pos);
    fmt_double(d1, sizeof d1, c->norm_eps);
    fmt_double(d2, sizeof d2, c->rope_theta);
    sb_printf(&b, "  \"rms_norm_eps\": %s,\n  \"rope_theta\": %s,\n", d1, d2);
    if (c->rope_kind == PEQA_ROPE_LINEAR) {
        fmt_double(d1, sizeof d1, c->rope_factor);
        sb_printf(&b, "  \"rope_scaling\": {\"rope_type\": \"linear\", \"factor\": %s},\n", d1);
    } else if (c->rope_kind == PEQA_ROPE_LLAMA3) {
        fmt_double(d1, sizeof d1, c->rope_factor);
        fmt_double(d3, sizeof d3, c->rope_low_freq_factor);
        fmt_double(d4, sizeof d4, c->rope_high_freq_factor);
        sb_printf(&b,
                  "  \"rope_scaling\": {\"rope_type\": \"llama3\", \"factor\": %s, \"low_freq_factor\": %s, "
                  "\"high_freq_factor\": %s, \"original_max_position_embeddings\": %lld},\n",
                  d1, d3, d4, (long long)c->rope_orig_max_pos);
    } else {
        sb_printf(&b, "  \"rope_scaling\": null,\n");
    }
    if (c->bos_token_id >= 0) sb_printf(&b, "  \"bos_token_id\": %lld,\n", (long long)c->bos_token_id);
    if (c->eos_token_id >= 0) sb_printf(&b, "  \"eos_token_id\": %lld,\n", (long long)c->eos_token_id);
    sb_printf(&b, "  \"tie_word_embeddings\": %s,\n", c->tie_embeddings ? "true" : "false");
    sb_printf(&b, "  \"hidden_act\": \"silu\",\n  \"attention_bias\": false,\n  \"mlp_bias\": false,\n");
    sb_printf(&b, "  \"torch_dtype\": \"float32\"\n}\n");
    if (b.oom) {
        free(b.p);
        return peqa__fail(PEQA_ERR_NOMEM, "peqa_model_config_json: out of memory");
    }
    *out = b.p;
    return PEQA_OK;
}

/* Floats kept per token per layer by the training cache (model.h). */
static size_t layer_floats(const peqa_model_config *c)
{
    return (size_t)(2 * c->dim + 2 + 2 * c->n_heads * c->head_dim + 2 * c->n_kv_heads * c->head_dim +
                    2 * c->n_heads + 2 * c->ffn);
}
static size_t once_floats(const peqa_model_config *c) { return (size_t)(c->dim + 1 + c->vocab + 2); }
static size_t work_floats(const peqa_model_config *c)
{
    return (size_t)(5 * c->dim + c->ffn + c->n_heads * c->head_dim + 2 * c->n_kv_heads * c->head_dim);
}

size_t peqa_model_act_bytes_per_token_layer(const peqa_model_config *c) { return c ? 4 * layer_floats(c) : 0; }
size_t peqa_model_act_bytes_per_token_once(const peqa_model_config *c) { return c ? 4 * once_floats(c) + 8 : 0; }
size_t peqa_model_act_bytes_per_token_work(const peqa_model_config *c) { return c ? 4 * work_floats(c) : 0; }

/* ---- the model -------------------------------------------------------------------------------- */

/* inv_freq (hd/2 floats) from the config. The default frequencies are those of ops.h
 * (fl(1/theta^(2j/hd)) in double); the scaled kinds follow transformers'
 * _compute_linear_scaling_rope_parameters and _compute_llama3_parameters, evaluated in double
 * from the fp32 default frequencies and rounded once (transformers evaluates them in fp32, so
 * a frequency may differ from its value by an ulp). */
static peqa_status make_inv_freq(const peqa_model_config *c, float *f)
{
    PEQA_TRY(peqa_rope_default_freqs(c->head_dim, c->rope_theta, f));
    const int64_t half = c->head_dim / 2;
    if (c->rope_kind == PEQA_ROPE_LINEAR) {
        for (int64_t j = 0; j < half; j++) f[j] = (float)((double)f[j] / c->rope_factor);
    } else if (c->rope_kind == PEQA_ROPE_LLAMA3) {
        const double pi = 3.14159265358979323846, old = (double)c->rope_orig_max_pos;
        const double lo = c->rope_low_freq_factor, hi = c->rope_high_freq_factor, fac = c->rope_factor;
        const double low_wl = old / lo, high_wl = old / hi;
        for (int64_t j = 0; j < half; j++) {
            const double inv = f[j], wl = 2.0 * pi / inv;
            double r = wl > low_wl ? inv / fac : inv;
            if (!(wl < high_wl) && !(wl > low_wl)) {
                const double sm = (old / wl - lo) / (hi - lo);
                r = (1.0 - sm) * r / fac + sm * r;
            }
            f[j] = (float)r;
        }
    }
    return PEQA_OK;
}

/* The RoPE table covers at least positions [0, need). need <= max_pos (checked by callers). */
static peqa_status ensure_rope(peqa_model *m, int64_t need)
{
    if (need <= m->rope.max_pos) return PEQA_OK;
    int64_t len = m->rope.max_pos * 2;
    if (len < 64) len = 64;
    if (len < need) len = need;
    if (len > m->cfg.max_pos) len = m->cfg.max_pos;
    peqa_rope r;
    PEQA_TRY(peqa_rope_init_freqs(&r, m->cfg.head_dim, len, m->inv_freq));
    peqa_rope_free(&m->rope);
    m->rope = r;
    return PEQA_OK;
}

static float *alloc_floats(size_t rows, size_t cols, int zero)
{
    size_t n, b;
    if (!peqa__mul(rows, cols, &n) || !peqa__mul(n, sizeof(float), &b)) return NULL;
    return zero ? calloc(n ? n : 1, sizeof(float)) : malloc(b ? b : sizeof(float));
}

static void fill(float *p, size_t n, float v)
{
    for (size_t i = 0; i < n; i++) p[i] = v;
}

/* Shape of linear j: (n, k). */
static void lin_shape(const peqa_model_config *c, int j, int64_t *n, int64_t *k)
{
    const int64_t D = c->dim, F = c->ffn, qd = c->n_heads * c->head_dim, kvd = c->n_kv_heads * c->head_dim;
    switch (j) {
    case PEQA_LIN_Q: *n = qd, *k = D; break;
    case PEQA_LIN_K:
    case PEQA_LIN_V: *n = kvd, *k = D; break;
    case PEQA_LIN_O: *n = D, *k = qd; break;
    case PEQA_LIN_GATE:
    case PEQA_LIN_UP: *n = F, *k = D; break;
    default: *n = D, *k = F; break;
    }
}

static peqa_status model_alloc(const peqa_model_config *cfg, int quant, int bits, int64_t group, peqa_model **out)
{
    const char *fn = quant ? "peqa_model_create_quantized" : "peqa_model_create";
    if (!cfg || !out) return peqa__fail(PEQA_ERR_NULL, "%s: NULL argument", fn);
    *out = NULL;
    PEQA_TRY(cfg_check(cfg, "config", PEQA_ERR_ARG));
    if (quant) {
        /* Validate bits and group on every shape before allocating anything. */
        for (int j = 0; j < PEQA_LIN_COUNT; j++) {
            int64_t n, k;
            peqa_qtensor_info info;
            lin_shape(cfg, j, &n, &k);
            peqa_status st = peqa_qtensor_sizes(n, k, bits, group, &info);
            if (st) return peqa__wrapf(st, "%s: %s", fn, lin_suffix[j]);
        }
    }
    peqa_model *m = calloc(1, sizeof *m);
    if (!m) return peqa__fail(PEQA_ERR_NOMEM, "%s: out of memory", fn);
    m->cfg = *cfg;
    m->quantized = quant, m->bits = quant ? bits : 0, m->group = quant ? group : 0;
    const size_t D = (size_t)cfg->dim, V = (size_t)cfg->vocab, L = (size_t)cfg->n_layers;
    int ok = 1;
    m->embed = alloc_floats(V, D, 1);
    m->norm = alloc_floats(D, 1, 0);
    m->lm_head = cfg->tie_embeddings ? m->embed : alloc_floats(V, D, 1);
    m->inv_freq = alloc_floats((size_t)cfg->head_dim / 2, 1, 1);
    m->layers = calloc(L, sizeof *m->layers);
    ok = m->embed && m->norm && m->lm_head && m->inv_freq && m->layers;
    if (ok) fill(m->norm, D, 1.0f);
    for (size_t l = 0; ok && l < L; l++) {
        peqa_model_layer *ly = &m->layers[l];
        ly->attn_norm = alloc_floats(D, 1, 0);
        ly->mlp_norm = alloc_floats(D, 1, 0);
        ok = ly->attn_norm && ly->mlp_norm;
        if (ok) fill(ly->attn_norm, D, 1.0f), fill(ly->mlp_norm, D, 1.0f);
        for (int j = 0; ok && j < PEQA_LIN_COUNT; j++) {
            peqa_model_linear *li = &ly->lin[j];
            lin_shape(cfg, j, &li->n, &li->k);
            if (quant) {
                ok = peqa_qtensor_create(li->n, li->k, bits, group, &li->q) == PEQA_OK;
            } else {
                li->w = alloc_floats((size_t)li->n, (size_t)li->k, 1);
                ok = li->w != NULL;
            }
        }
    }
    peqa_status st = PEQA_OK;
    if (!ok) st = peqa__fail(PEQA_ERR_NOMEM, "%s: out of memory for the model's weights", fn);
    if (!st) st = make_inv_freq(cfg, m->inv_freq);
    if (st) {
        peqa_model_free(m);
        return st;
    }
    *out = m;
    return PEQA_OK;
}

peqa_status peqa_model_create(const peqa_model_config *cfg, peqa_model **out)
{
    return model_alloc(cfg, 0, 0, 0, out);
}

peqa_status peqa_model_create_quantized(const peqa_model_config *cfg, int bits, int64_t group, peqa_model **out)
{
    return model_alloc(cfg, 1, bits, group, out);
}

void peqa_model_free(peqa_model *m)
{
    if (!m) return;
    if (m->layers) {
        for (int64_t l = 0; l < m->cfg.n_layers; l++) {
            peqa_model_layer *ly = &m->layers[l];
            free(ly->attn_norm);
            free(ly->mlp_norm);
            for (int j = 0; j < PEQA_LIN_COUNT; j++) {
                free(ly->lin[j].w);
                peqa_qtensor_free(ly->lin[j].q);
            }
        }
        free(m->layers);
    }
    if (m->lm_head != m->embed) free(m->lm_head);
    free(m->embed);
    free(m->norm);
    free(m->inv_freq);
    peqa_rope_free(&m->rope);
    free(m);
}

/* ---- iteration ---------------------------------------------------------------------------------- */

int64_t peqa_model_linear_count(const peqa_model *m) { return m ? m->cfg.n_layers * PEQA_LIN_COUNT : 0; }

peqa_model_linear *peqa_model_linear_at(peqa_model *m, int64_t i)
{
    if (!m || i < 0 || i >= peqa_model_linear_count(m)) return NULL;
    return &m->layers[i / PEQA_LIN_COUNT].lin[i % PEQA_LIN_COUNT];
}

peqa_status peqa_model_linear_name(const peqa_model *m, int64_t i, char *buf, size_t size)
{
    if (!m || !buf) return peqa__fail(PEQA_ERR_NULL, "peqa_model_linear_name: NULL argument");
    if (i < 0 || i >= peqa_model_linear_count(m))
        return peqa__fail(PEQA_ERR_RANGE, "peqa_model_linear_name: index %lld outside [0, %lld)", (long long)i,
                          (long long)peqa_model_linear_count(m));
    int w = snprintf(buf, size, "model.layers.%lld.%s", (long long)(i / PEQA_LIN_COUNT), lin_suffix[i % PEQA_LIN_COUNT]);
    if (w < 0 || (size_t)w >= size) return peqa__fail(PEQA_ERR_ARG, "peqa_model_linear_name: buffer too small");
    return PEQA_OK;
}

/* Tensor order (model.h): 0 embed; per layer 9 slots; norm; lm_head when untied. */
#define SLOTS_PER_LAYER 9
static int slot_linear(int slot) { return slot >= 1 && slot <= 4 ? slot - 1 : slot >= 6 ? slot - 2 : -1; }

int64_t peqa_model_tensor_count(const peqa_model *m)
{
    return m ? 2 + SLOTS_PER_LAYER * m->cfg.n_layers + (m->cfg.tie_embeddings ? 0 : 1) : 0;
}

peqa_status peqa_model_tensor_at(peqa_model *m, int64_t i, peqa_model_tensor *out)
{
    if (!m || !out) return peqa__fail(PEQA_ERR_NULL, "peqa_model_tensor_at: NULL argument");
    const int64_t n = peqa_model_tensor_count(m), L = m->cfg.n_layers, D = m->cfg.dim, V = m->cfg.vocab;
    if (i < 0 || i >= n)
        return peqa__fail(PEQA_ERR_RANGE, "peqa_model_tensor_at: index %lld outside [0, %lld)", (long long)i,
                          (long long)n);
    memset(out, 0, sizeof *out);
    if (i == 0 || i == 2 + SLOTS_PER_LAYER * L) {
        snprintf(out->name, sizeof out->name, "%s", i == 0 ? "model.embed_tokens.weight" : "lm_head.weight");
        out->ndim = 2, out->shape[0] = V, out->shape[1] = D;
        out->f32 = i == 0 ? m->embed : m->lm_head;
    } else if (i == 1 + SLOTS_PER_LAYER * L) {
        snprintf(out->name, sizeof out->name, "model.norm.weight");
        out->ndim = 1, out->shape[0] = D, out->shape[1] = 1;
        out->f32 = m->norm;
    } else {
        const int64_t l = (i - 1) / SLOTS_PER_LAYER;
        const int slot = (int)((i - 1) % SLOTS_PER_LAYER), j = slot_linear(slot);
        peqa_model_layer *ly = &m->layers[l];
        if (j < 0) {
            snprintf(out->name, sizeof out->name, "model.layers.%lld.%s.weight", (long long)l,
                     slot == 0 ? "input_layernorm" : "post_attention_layernorm");
            out->ndim = 1, out->shape[0] = D, out->shape[1] = 1;
            out->f32 = slot == 0 ? ly->attn_norm : ly->mlp_norm;
        } else {
            const peqa_model_linear *li = &ly->lin[j];
            snprintf(out->name, sizeof out->name, "model.layers.%lld.%s%s", (long long)l, lin_suffix[j],
                     li->q ? "" : ".weight");
            out->ndim = 2, out->shape[0] = li->n, out->shape[1] = li->k;
            out->f32 = li->w;
            out->qt = li->q;
        }
    }
    out->numel = out->shape[0] * out->shape[1];
    return PEQA_OK;
}

/* ---- random initialisation ------------------------------------------------------------------------ */

peqa_status peqa_model_init_random(peqa_model *m, uint64_t seed, float std)
{
    if (!m) return peqa__fail(PEQA_ERR_NULL, "peqa_model_init_random: model is NULL");
    if (m->quantized)
        return peqa__fail(PEQA_ERR_ARG, "peqa_model_init_random: the model is quantized (initialise in full precision, then quantize)");
    if (!isfinite(std) || std < 0.0f || std > 1e6f)
        return peqa__fail(PEQA_ERR_ARG, "peqa_model_init_random: std = %g: expected a finite value in [0, 1e6]", (double)std);
    if (std == 0.0f) std = 0.02f;
    /* Uniform on [-a, a) has variance a²/3. */
    const float a = std * 1.7320508f;
    model_rng r;
    model_rng_seed(&r, seed);
    const int64_t n = peqa_model_tensor_count(m);
    for (int64_t i = 0; i < n; i++) {
        peqa_model_tensor t;
        PEQA_TRY(peqa_model_tensor_at(m, i, &t));
        if (t.ndim == 1) {
            fill(t.f32, (size_t)t.numel, 1.0f);
            continue;
        }
        for (int64_t e = 0; e < t.numel; e++) t.f32[e] = (2.0f * model_rng_unit(&r) - 1.0f) * a;
    }
    return PEQA_OK;
}

/* ---- load and save ---------------------------------------------------------------------------------- */

static void shape_str(char *buf, size_t n, size_t ndim, const int64_t *shape)
{
    size_t w = (size_t)snprintf(buf, n, "[");
    for (size_t i = 0; i < ndim && w < n; i++)
        w += (size_t)snprintf(buf + w, n - w, "%s%lld", i ? ", " : "", (long long)shape[i]);
    if (w < n) snprintf(buf + w, n - w, "]");
}

/* Reads tensor `name` (expected ndim/shape) as fp32 into dst. *found = 0 when absent and
 * optional. */
static peqa_status load_one(const peqa_st_set *set, const char *what, const char *name, int ndim,
                            const int64_t *shape, float *dst, int optional, int *found)
{
    peqa_st_file *f = NULL;
    const peqa_st_tensor *t = NULL;
    if (found) *found = 0;
    if (!peqa_st_set_find(set, name, &f, &t)) {
        if (optional) return PEQA_OK;
        return peqa__fail(PEQA_ERR_FORMAT, "%s: missing tensor '%s'", what, name);
    }
    const char *path = peqa_st_path(f);
    if (t->dtype != PEQA_ST_F32 && t->dtype != PEQA_ST_F16 && t->dtype != PEQA_ST_BF16)
        return peqa__fail(PEQA_ERR_FORMAT, "%s: tensor '%s' has dtype %s: expected F32, F16 or BF16", path, name,
                          peqa_st_dtype_name(t->dtype));
    int same = t->ndim == (size_t)ndim;
    for (int i = 0; same && i < ndim; i++) same = t->shape[i] == shape[i];
    if (!same) {
        char got[128], want[64];
        shape_str(got, sizeof got, t->ndim, t->shape);
        shape_str(want, sizeof want, (size_t)ndim, shape);
        return peqa__fail(PEQA_ERR_SHAPE, "%s: tensor '%s' has shape %s: the config requires %s", path, name, got,
                          want);
    }
    size_t count = (size_t)shape[0] * (ndim == 2 ? (size_t)shape[1] : 1);
    peqa_status st = peqa_st_read_f32_into(f, t, dst, count);
    if (st) return peqa__wrapf(st, "%s: tensor '%s'", path, name);
    for (size_t i = 0; i < count; i++)
        if (!isfinite(dst[i]))
            return peqa__fail(PEQA_ERR_NONFINITE, "%s: tensor '%s' element %zu is %s", path, name, i,
                              isnan(dst[i]) ? "NaN" : "infinite");
    if (found) *found = 1;
    return PEQA_OK;
}

peqa_status peqa_model_load_tensors(peqa_model *m, const peqa_st_set *set, const char *what)
{
    if (!m || !set) return peqa__fail(PEQA_ERR_NULL, "peqa_model_load_tensors: NULL argument");
    if (!what) what = "checkpoint";
    /* Biases belong to other architectures (attention_bias / mlp_bias); loading without them
     * would silently compute a different model. */
    for (size_t i = 0; i < peqa_st_set_count(set); i++) {
        peqa_st_file *f;
        const peqa_st_tensor *t;
        if (!peqa_st_set_at(set, i, &f, &t)) continue;
        size_t l = strlen(t->name);
        if (l >= 5 && !strcmp(t->name + l - 5, ".bias"))
            return peqa__fail(PEQA_ERR_FORMAT, "%s: tensor '%s': linear biases are not supported by this model",
                              peqa_st_path(f), t->name);
    }
    const int64_t n = peqa_model_tensor_count(m);
    for (int64_t i = 0; i < n; i++) {
        peqa_model_tensor t;
        PEQA_TRY(peqa_model_tensor_at(m, i, &t));
        if (t.qt) continue; /* quantized linears come from the quantized file's own tensors */
        PEQA_TRY(load_one(set, what, t.name, t.ndim, t.shape, t.f32, 0, NULL));
    }
    if (m->cfg.tie_embeddings) {
        /* A tied checkpoint normally omits lm_head.weight; some converters keep a copy. The head
         * IS the embedding then, so the copy is only checked for shape, not used. */
        peqa_st_file *f;
        const peqa_st_tensor *t;
        if (peqa_st_set_find(set, "lm_head.weight", &f, &t) &&
            (t->ndim != 2 || t->shape[0] != m->cfg.vocab || t->shape[1] != m->cfg.dim))
            return peqa__fail(PEQA_ERR_SHAPE, "%s: tensor 'lm_head.weight' does not have the embedding's shape [%lld, %lld]",
                              peqa_st_path(f), (long long)m->cfg.vocab, (long long)m->cfg.dim);
    }
    return PEQA_OK;
}

static int is_dir(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0 && S_ISDIR(sb.st_mode);
}

static char *path_join(const char *dir, const char *name)
{
    size_t a = strlen(dir), b = strlen(name);
    char *p = malloc(a + b + 2);
    if (!p) return NULL;
    memcpy(p, dir, a);
    size_t o = a;
    if (a && dir[a - 1] != '/') p[o++] = '/';
    memcpy(p + o, name, b + 1);
    return p;
}

peqa_status peqa_model_load(const char *path, peqa_model **out)
{
    if (!path || !out) return peqa__fail(PEQA_ERR_NULL, "peqa_model_load: NULL argument");
    *out = NULL;
    struct stat sb;
    if (stat(path, &sb) != 0)
        return peqa__fail(PEQA_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    char *cfgpath;
    if (S_ISDIR(sb.st_mode)) {
        cfgpath = path_join(path, "config.json");
    } else {
        /* config.json next to the weights file */
        const char *slash = strrchr(path, '/');
        if (!slash) {
            cfgpath = path_join(".", "config.json");
        } else {
            size_t dl = (size_t)(slash - path) + 1;
            char *dir = malloc(dl + 1);
            if (!dir) return peqa__fail(PEQA_ERR_NOMEM, "peqa_model_load: out of memory");
            memcpy(dir, path, dl);
            dir[dl] = 0;
            cfgpath = path_join(dir, "config.json");
            free(dir);
        }
    }
    if (!cfgpath) return peqa__fail(PEQA_ERR_NOMEM, "peqa_model_load: out of memory");
    peqa_model_config cfg;
    peqa_status st = peqa_model_config_load(cfgpath, &cfg);
    free(cfgpath);
    if (st) return st;
    peqa_st_set *set = NULL;
    PEQA_TRY(peqa_st_set_open(path, &set));
    peqa_model *m = NULL;
    st = peqa_model_create(&cfg, &m);
    if (!st) st = peqa_model_load_tensors(m, set, path);
    peqa_st_set_close(set);
    if (st) {
        peqa_model_free(m);
        return st;
    }
    *out = m;
    return PEQA_OK;
}

/* Writes text to path atomically: PATH.tmp, fsync, rename. */
static peqa_status write_atomic(const char *path, const char *text)
{
    size_t pl = strlen(path);
    char *tmp = malloc(pl + 5);
    if (!tmp) return peqa__fail(PEQA_ERR_NOMEM, "%s: out of memory", path);
    memcpy(tmp, path, pl);
    memcpy(tmp + pl, ".tmp", 5);
    FILE *f = fopen(tmp, "wb");
    if (!f) {
        peqa_status st = peqa__fail(PEQA_ERR_IO, "%s: cannot create: %s", tmp, strerror(errno));
        free(tmp);
        return st;
    }
    size_t n = strlen(text);
    int ok = fwrite(text, 1, n, f) == n && fflush(f) == 0 && fsync(fileno(f)) == 0;
    int e = errno;
    ok = (fclose(f) == 0) && ok;
    if (!ok || rename(tmp, path) != 0) {
        if (ok) e = errno;
        remove(tmp);
        free(tmp);
        return peqa__fail(PEQA_ERR_IO, "%s: cannot write: %s", path, strerror(e));
    }
    free(tmp);
    return PEQA_OK;
}

static int host_little_endian(void)
{
    const uint32_t one = 1;
    unsigned char b;
    memcpy(&b, &one, 1);
    return b == 1;
}

peqa_status peqa_model_save(const peqa_model *m, const char *dir)
{
    if (!m || !dir) return peqa__fail(PEQA_ERR_NULL, "peqa_model_save: NULL argument");
    if (m->quantized)
        return peqa__fail(PEQA_ERR_ARG, "%s: the model is quantized: peqa_model_save writes full-precision models only", dir);
    if (!host_little_endian()) return peqa__fail(PEQA_ERR_ARG, "%s: saving needs a little-endian host", dir);
    if (mkdir(dir, 0777) != 0 && errno != EEXIST)
        return peqa__fail(PEQA_ERR_IO, "%s: cannot create the directory: %s", dir, strerror(errno));
    if (!is_dir(dir)) return peqa__fail(PEQA_ERR_IO, "%s: not a directory", dir);
    char *wpath = path_join(dir, "model.safetensors"), *cpath = path_join(dir, "config.json");
    char *ipath = path_join(dir, "model.safetensors.index.json");
    char *json = NULL;
    peqa_st_writer *w = NULL;
    peqa_status st = PEQA_OK;
    if (!wpath || !cpath || !ipath) {
        st = peqa__fail(PEQA_ERR_NOMEM, "peqa_model_save: out of memory");
        goto done;
    }
    if (access(ipath, F_OK) == 0) {
        st = peqa__fail(PEQA_ERR_IO, "%s exists: a sharded checkpoint is in the way (it would be loaded instead)", ipath);
        goto done;
    }
    if ((st = peqa_model_config_json(&m->cfg, &json)) || (st = peqa_st_writer_create(&w))) goto done;
    peqa_model *mm = (peqa_model *)m; /* tensor_at hands out mutable pointers; nothing is written */
    for (int64_t i = 0; i < peqa_model_tensor_count(m); i++) {
        peqa_model_tensor t;
        if ((st = peqa_model_tensor_at(mm, i, &t))) goto done;
        if ((st = peqa_st_writer_add(w, t.name, PEQA_ST_F32, (size_t)t.ndim, t.shape, t.f32,
                                     (size_t)t.numel * sizeof(float))))
            goto done;
    }
    if ((st = peqa_st_writer_write(w, wpath))) goto done;
    st = write_atomic(cpath, json);
done:
    peqa_st_writer_free(w);
    free(json);
    free(wpath);
    free(cpath);
    free(ipath);
    return st;
}

/* ---- quantization -------------------------------------------------------------------------------- */

peqa_status peqa_model_quantize(peqa_model *m, int bits, int64_t group)
{
    if (!m) return peqa__fail(PEQA_ERR_NULL, "peqa_model_quantize: model is NULL");
    if (m->quantized) return peqa__fail(PEQA_ERR_ARG, "peqa_model_quantize: the model is already quantized");
    const int64_t n = peqa_model_linear_count(m);
    peqa_qtensor **q = calloc((size_t)n, sizeof *q);
    if (!q) return peqa__fail(PEQA_ERR_NOMEM, "peqa_model_quantize: out of memory");
    peqa_status st = PEQA_OK;
    for (int64_t i = 0; i < n && !st; i++) {
        peqa_model_linear *li = peqa_model_linear_at(m, i);
        st = peqa_qtensor_create(li->n, li->k, bits, group, &q[i]);
        if (!st) st = peqa_qtensor_quantize_rtn(q[i], li->w, li->k);
        if (st) {
            char name[PEQA_MODEL_NAME_MAX];
            peqa_model_linear_name(m, i, name, sizeof name);
            st = peqa__wrapf(st, "peqa_model_quantize: %s", name);
        }
    }
    if (st) {
        for (int64_t i = 0; i < n; i++) peqa_qtensor_free(q[i]);
        free(q);
        return st;
    }
    for (int64_t i = 0; i < n; i++) {
        peqa_model_linear *li = peqa_model_linear_at(m, i);
        free(li->w);
        li->w = NULL;
        li->q = q[i];
    }
    free(q);
    m->quantized = 1, m->bits = bits, m->group = group;
    return PEQA_OK;
}

/* ---- parameters and gradients ------------------------------------------------------------------- */

int64_t peqa_model_param_count(const peqa_model *m, int train_zeros)
{
    if (!m) return 0;
    if (!m->quantized) return peqa_model_tensor_count(m);
    return peqa_model_linear_count(m) * (train_zeros ? 2 : 1);
}

/* Parameter indices. Full precision: those of peqa_model_tensor_at. Quantized: per linear i,
 * scales at i·(1 + tz), zeros after them. */
static int64_t fp_lin_index(int64_t l, int j) { return 1 + SLOTS_PER_LAYER * l + (j <= PEQA_LIN_O ? 1 + j : 2 + j); }
static int64_t fp_norm_index(int64_t l, int mlp) { return 1 + SLOTS_PER_LAYER * l + (mlp ? 5 : 0); }

peqa_status peqa_model_param_at(peqa_model *m, int train_zeros, int64_t i, peqa_model_grads *g, peqa_model_param *out)
{
    if (!m || !out) return peqa__fail(PEQA_ERR_NULL, "peqa_model_param_at: NULL argument");
    train_zeros = m->quantized && train_zeros;
    const int64_t n = peqa_model_param_count(m, train_zeros);
    if (i < 0 || i >= n)
        return peqa__fail(PEQA_ERR_RANGE, "peqa_model_param_at: index %lld outside [0, %lld)", (long long)i, (long long)n);
    if (g && (g->quantized != m->quantized || g->train_zeros != train_zeros || g->count != n))
        return peqa__fail(PEQA_ERR_ARG, "peqa_model_param_at: the gradients were made for another model or mode");
    memset(out, 0, sizeof *out);
    if (!m->quantized) {
        peqa_model_tensor t;
        PEQA_TRY(peqa_model_tensor_at(m, i, &t));
        memcpy(out->name, t.name, sizeof out->name);
        out->kind = PEQA_PARAM_F32;
        out->ndim = t.ndim, out->shape[0] = t.shape[0], out->shape[1] = t.shape[1], out->numel = t.numel;
        out->value = t.f32;
    } else {
        const int64_t per = train_zeros ? 2 : 1, li = i / per;
        const int zeros = (int)(i % per);
        peqa_model_linear *lin = peqa_model_linear_at(m, li);
        char prefix[64]; /* "model.layers.<l>.self_attn.q_proj": at most 38 characters */
        PEQA_TRY(peqa_model_linear_name(m, li, prefix, sizeof prefix));
        snprintf(out->name, sizeof out->name, "%s.%s", prefix, zeros ? "qzeros" : "scales");
        peqa_qtensor_info info;
        PEQA_TRY(peqa_qtensor_get_info(lin->q, &info));
        out->kind = zeros ? PEQA_PARAM_ZEROS : PEQA_PARAM_SCALES;
        out->ndim = 2, out->shape[0] = info.n, out->shape[1] = info.ngroups, out->numel = info.n * info.ngroups;
        out->qt = lin->q;
    }
    if (g) out->grad = g->g[i];
    return PEQA_OK;
}

void peqa_model_grads_free(peqa_model_grads *g)
{
    if (!g) return;
    free(g->g);
    free(g->numel);
    free(g->block);
    free(g->scratch);
    free(g);
}

peqa_status peqa_model_grads_create(const peqa_model *m, int train_zeros, peqa_model_grads **out)
{
    if (!m || !out) return peqa__fail(PEQA_ERR_NULL, "peqa_model_grads_create: NULL argument");
    *out = NULL;
    train_zeros = m->quantized && train_zeros;
    const int64_t n = peqa_model_param_count(m, train_zeros);
    peqa_model_grads *g = calloc(1, sizeof *g);
    if (!g) return peqa__fail(PEQA_ERR_NOMEM, "peqa_model_grads_create: out of memory");
    g->quantized = m->quantized, g->train_zeros = train_zeros, g->count = n;
    g->g = calloc((size_t)n, sizeof *g->g);
    g->numel = calloc((size_t)n, sizeof *g->numel);
    if (!g->g || !g->numel) {
        peqa_model_grads_free(g);
        return peqa__fail(PEQA_ERR_NOMEM, "peqa_model_grads_create: out of memory");
    }
    size_t total = 0, maxn = 1;
    for (int64_t i = 0; i < n; i++) {
        peqa_model_param p;
        peqa_status st = peqa_model_param_at((peqa_model *)m, train_zeros, i, NULL, &p);
        if (st) {
            peqa_model_grads_free(g);
            return st;
        }
        g->numel[i] = p.numel;
        total += (size_t)p.numel;
        if ((size_t)p.numel > maxn) maxn = (size_t)p.numel;
    }
    g->total = total;
    g->block = alloc_floats(total, 1, 1);
    g->scratch = alloc_floats(maxn, 1, 1);
    if (!g->block || !g->scratch) {
        peqa_model_grads_free(g);
        return peqa__fail(PEQA_ERR_NOMEM, "peqa_model_grads_create: cannot allocate %zu gradient floats", total);
    }
    size_t off = 0;
    for (int64_t i = 0; i < n; i++) {
        g->g[i] = g->block + off;
        off += (size_t)g->numel[i];
    }
    *out = g;
    return PEQA_OK;
}

void peqa_model_grads_zero(peqa_model_grads *g)
{
    if (g && g->block) memset(g->block, 0, g->total * sizeof(float));
}

/* ---- training cache ------------------------------------------------------------------------------- */

struct peqa_model_cache {
    peqa_model_config cfg; /* the shapes it was made for */
    int64_t cap;           /* tokens per forward */
    int64_t B, T, M;       /* of the last forward */
    int state;             /* 0: empty; 1: forward done; 2: consumed by a backward */
    const peqa_model *fwd_model;
    int32_t *tokens, *targets; /* cap each */
    /* Saved for backward (per layer l, a slab of cap rows each): */
    float *x;      /* (L+1) slabs × D: input of layer l; slab L is the final residual */
    float *xm;     /* L × D: residual after attention */
    float *rstd;   /* (2L+1) × 1: attention norm, MLP norm of each layer, then the final norm */
    float *q, *k, *v, *att; /* L × Hq·hd, L × Hkv·hd (k, v), L × Hq·hd */
    float *stats;  /* L × 2·Hq: attention softmax max and sum per row and head */
    float *g, *u;  /* L × F: gate and up projections */
    float *logits; /* cap × V */
    float *xst;    /* cap × 2: cross-entropy max and sum */
    /* Work, reused by every layer: */
    float *xn, *t1, *t2, *dx, *dxm; /* cap × D */
    float *h;                       /* cap × F */
    float *dq, *dk, *dv;            /* cap × Hq·hd, cap × Hkv·hd, cap × Hkv·hd */
    void *block;
    size_t bytes;
};

void peqa_model_cache_free(peqa_model_cache *c)
{
    if (!c) return;
    free(c->block);
    free(c);
}

size_t peqa_model_cache_bytes(const peqa_model_cache *c) { return c ? c->bytes + sizeof *c : 0; }

/* Carves `count` floats (rounded up to 16, keeping every array 64-byte aligned) at *off. */
static int carve(size_t *off, size_t count, size_t *start)
{
    size_t c = (count + 15) & ~(size_t)15;
    if (c < count || *off > SIZE_MAX - c) return 0;
    *start = *off;
    *off += c;
    return 1;
}

peqa_status peqa_model_cache_create(const peqa_model *m, int64_t max_tokens, peqa_model_cache **out)
{
    static const char fn[] = "peqa_model_cache_create";
    if (!m || !out) return peqa__fail(PEQA_ERR_NULL, "%s: NULL argument", fn);
    *out = NULL;
    if (max_tokens < 1 || max_tokens > ((int64_t)1 << 32))
        return peqa__fail(PEQA_ERR_SHAPE, "%s: max_tokens = %lld: expected 1 .. 2^32", fn, (long long)max_tokens);
    const peqa_model_config *c = &m->cfg;
    const size_t cap = (size_t)max_tokens, L = (size_t)c->n_layers, D = (size_t)c->dim, F = (size_t)c->ffn;
    const size_t qw = (size_t)(c->n_heads * c->head_dim), kvw = (size_t)(c->n_kv_heads * c->head_dim);
    const size_t V = (size_t)c->vocab, H2 = 2 * (size_t)c->n_heads;
    peqa_model_cache *k = calloc(1, sizeof *k);
    if (!k) return peqa__fail(PEQA_ERR_NOMEM, "%s: out of memory", fn);
    /* Each array: slabs × width floats per token, times cap tokens; overflow-checked. */
    struct { float **p; size_t slabs, width; } plan[] = {
        {&k->x, L + 1, D},   {&k->xm, L, D},     {&k->rstd, 2 * L + 1, 1}, {&k->q, L, qw},
        {&k->k, L, kvw},     {&k->v, L, kvw},    {&k->att, L, qw},         {&k->stats, L, H2},
        {&k->g, L, F},       {&k->u, L, F},      {&k->logits, 1, V},       {&k->xst, 1, 2},
        {&k->xn, 1, D},      {&k->t1, 1, D},     {&k->t2, 1, D},           {&k->dx, 1, D},
        {&k->dxm, 1, D},     {&k->h, 1, F},      {&k->dq, 1, qw},          {&k->dk, 1, kvw},
        {&k->dv, 1, kvw},
    };
    const size_t np = sizeof plan / sizeof plan[0];
    size_t offs[sizeof plan / sizeof plan[0] + 2], off = 0, tok_off, tgt_off;
    int ok = 1;
    for (size_t i = 0; ok && i < np; i++) {
        size_t n;
        ok = peqa__mul(plan[i].slabs, plan[i].width, &n) && peqa__mul(n, cap, &n) && carve(&off, n, &offs[i]);
    }
    /* int32 arrays counted in float-sized slots */
    ok = ok && carve(&off, cap, &tok_off) && carve(&off, cap, &tgt_off);
    size_t bytes = 0;
    ok = ok && peqa__mul(off, sizeof(float), &bytes);
    if (!ok) {
        free(k);
        return peqa__fail(PEQA_ERR_OVERFLOW, "%s: the cache for %lld tokens overflows size_t", fn, (long long)max_tokens);
    }
    k->block = calloc(off ? off : 1, sizeof(float));
    if (!k->block) {
        free(k);
        return peqa__fail(PEQA_ERR_NOMEM, "%s: cannot allocate %zu bytes for %lld tokens", fn, bytes,
                          (long long)max_tokens);
    }
    float *base = k->block;
    for (size_t i = 0; i < np; i++) *plan[i].p = base + offs[i];
    k->tokens = (int32_t *)(void *)(base + tok_off);
    k->targets = (int32_t *)(void *)(base + tgt_off);
    k->cfg = *c;
    k->cap = max_tokens;
    k->bytes = bytes;
    *out = k;
    return PEQA_OK;
}

static int same_shapes(const peqa_model_config *a, const peqa_model_config *b)
{
    return a->dim == b->dim && a->ffn == b->ffn && a->n_layers == b->n_layers && a->n_heads == b->n_heads &&
           a->n_kv_heads == b->n_kv_heads && a->head_dim == b->head_dim && a->vocab == b->vocab;
}

/* ---- linears ------------------------------------------------------------------------------------- */

/* Y (M × N) = X (M × K) · Wᵀ. */
static peqa_status lin_fwd(peqa_ctx *ctx, const peqa_model_linear *li, int64_t M, const float *x, float *y)
{
    if (li->q) return peqa_linear_forward(ctx, li->q, M, x, li->k, y, li->n);
    return peqa_sgemm_nt(ctx, M, li->n, li->k, x, li->k, li->w, li->k, y, li->n);
}

/* dX (M × K) = dY (M × N) · W  (overwrites dx). */
static peqa_status lin_dinput(peqa_ctx *ctx, const peqa_model_linear *li, int64_t M, const float *dy, float *dx)
{
    if (li->q) return peqa_linear_grad_input(ctx, li->q, M, dy, li->n, dx, li->k);
    return peqa_sgemm_nn(ctx, M, li->n, li->k, dy, li->n, li->w, li->k, dx, li->k);
}

/* Gradient destinations: overwrite g->g[i] directly, or (accumulate) compute into the scratch
 * and add it afterwards, g[i][e] = g[i][e] + scratch[e] for e ascending. */
static float *gdst(peqa_model_grads *g, int64_t i, int acc) { return acc ? g->scratch : g->g[i]; }
static void gdone(peqa_model_grads *g, int64_t i, int acc)
{
    if (acc) vadd(g->g[i], g->scratch, (size_t)g->numel[i]);
}
/* The same for gradients that the op accumulates itself (norm weights, embedding): zeroed first. */
static float *gdst0(peqa_model_grads *g, int64_t i, int acc)
{
    float *d = gdst(g, i, acc);
    memset(d, 0, (size_t)g->numel[i] * sizeof(float));
    return d;
}

/* Parameter gradients of linear j of layer l from its input X (M × K) and output gradient dY
 * (M × N): full precision dW = dYᵀ·X (N × K); quantized dS (and dZ) per SPEC §4. */
static peqa_status lin_dparam(peqa_ctx *ctx, const peqa_model *m, peqa_model_grads *g, int64_t l, int j, int64_t M,
                              const float *x, const float *dy, int acc)
{
    const peqa_model_linear *li = &m->layers[l].lin[j];
    if (!li->q) {
        const int64_t i = fp_lin_index(l, j);
        PEQA_TRY(peqa_sgemm_tn(ctx, M, li->n, li->k, dy, li->n, x, li->k, gdst(g, i, acc), li->k));
        gdone(g, i, acc);
        return PEQA_OK;
    }
    const int64_t per = g->train_zeros ? 2 : 1, i = (l * PEQA_LIN_COUNT + j) * per;
    PEQA_TRY(peqa_linear_grad_scale(ctx, li->q, M, x, li->k, dy, li->n, gdst(g, i, acc)));
    gdone(g, i, acc);
    if (g->train_zeros) {
        PEQA_TRY(peqa_linear_grad_zero(ctx, li->q, M, x, li->k, dy, li->n, gdst(g, i + 1, acc)));
        gdone(g, i + 1, acc);
    }
    return PEQA_OK;
}

/* ---- forward ------------------------------------------------------------------------------------ */

/* Buffers of one layer's forward over M = B·T rows. x, xm, xo may alias (inference runs the
 * residual stream in place); h may alias g when g is not kept. kall/vall hold the keys/values of
 * every position: sequence b's position p at row b·(pos0+T) + p (pos0 > 0 only with B = 1). */
typedef struct {
    float *x, *xm, *xo;
    float *r1, *r2;   /* rstd of the two norms, or NULL */
    float *q, *kall, *vall, *att;
    float *stats;     /* or NULL */
    float *g, *u, *h;
    float *xn, *t1;   /* M × D work */
} fwd_bufs;

static peqa_status layer_fwd(peqa_ctx *ctx, peqa_model *m, const peqa_model_layer *ly, int64_t B, int64_t T,
                             int64_t pos0, const fwd_bufs *b)
{
    const peqa_model_config *c = &m->cfg;
    const int64_t D = c->dim, F = c->ffn, Hq = c->n_heads, Hkv = c->n_kv_heads, hd = c->head_dim;
    const int64_t qw = Hq * hd, kvw = Hkv * hd, M = B * T, tk = pos0 + T;
    const float eps = (float)c->norm_eps;
    /* attention block */
    PEQA_TRY(peqa_rmsnorm_fwd(b->x, ly->attn_norm, eps, M, D, b->xn, b->r1));
    PEQA_TRY(lin_fwd(ctx, &ly->lin[PEQA_LIN_Q], M, b->xn, b->q));
    PEQA_TRY(lin_fwd(ctx, &ly->lin[PEQA_LIN_K], M, b->xn, b->kall + pos0 * kvw));
    PEQA_TRY(lin_fwd(ctx, &ly->lin[PEQA_LIN_V], M, b->xn, b->vall + pos0 * kvw));
    const peqa_attn_shape sh = {.tq = T, .tk = tk, .n_heads = Hq, .n_kv_heads = Hkv, .head_dim = hd};
    for (int64_t s = 0; s < B; s++) {
        float *qs = b->q + s * T * qw, *ks = b->kall + s * tk * kvw, *vs = b->vall + s * tk * kvw;
        PEQA_TRY(peqa_rope_fwd(&m->rope, qs, T, Hq, pos0, qs));
        PEQA_TRY(peqa_rope_fwd(&m->rope, ks + pos0 * kvw, T, Hkv, pos0, ks + pos0 * kvw));
        PEQA_TRY(peqa_attn_fwd(ctx, &sh, qs, ks, vs, b->att + s * T * qw, b->stats ? b->stats + s * T * 2 * Hq : NULL));
    }
    PEQA_TRY(lin_fwd(ctx, &ly->lin[PEQA_LIN_O], M, b->att, b->t1));
    vadd3(b->xm, b->x, b->t1, (size_t)(M * D));
    /* MLP block */
    PEQA_TRY(peqa_rmsnorm_fwd(b->xm, ly->mlp_norm, eps, M, D, b->xn, b->r2));
    PEQA_TRY(lin_fwd(ctx, &ly->lin[PEQA_LIN_GATE], M, b->xn, b->g));
    PEQA_TRY(lin_fwd(ctx, &ly->lin[PEQA_LIN_UP], M, b->xn, b->u));
    PEQA_TRY(peqa_swiglu_fwd(b->g, b->u, M * F, b->h));
    PEQA_TRY(lin_fwd(ctx, &ly->lin[PEQA_LIN_DOWN], M, b->h, b->t1));
    vadd3(b->xo, b->xm, b->t1, (size_t)(M * D));
    return PEQA_OK;
}

/* Checks shared by the forwards: B, T >= 1, positions within max_pos, tokens (and targets) in
 * range. Done before anything is written. */
static peqa_status check_batch(const char *fn, const peqa_model *m, int64_t B, int64_t T, int64_t pos0,
                               const int32_t *tokens, const int32_t *targets)
{
    if (B < 1 || T < 1)
        return peqa__fail(PEQA_ERR_SHAPE, "%s: B = %lld, T = %lld: both must be >= 1", fn, (long long)B, (long long)T);
    if (T > m->cfg.max_pos - pos0)
        return peqa__fail(PEQA_ERR_RANGE, "%s: positions up to %lld exceed max_position_embeddings = %lld", fn,
                          (long long)(pos0 + T), (long long)m->cfg.max_pos);
    if (B > ((int64_t)1 << 40) / T) return peqa__fail(PEQA_ERR_SHAPE, "%s: B·T is too large", fn);
    const int64_t M = B * T, V = m->cfg.vocab;
    for (int64_t i = 0; i < M; i++) {
        if (tokens[i] < 0 || tokens[i] >= V)
            return peqa__fail(PEQA_ERR_RANGE, "%s: tokens[%lld] = %ld outside [0, vocab_size = %lld)", fn, (long long)i,
                              (long)tokens[i], (long long)V);
        if (targets && targets[i] != PEQA_TARGET_IGNORE && (targets[i] < 0 || targets[i] >= V))
            return peqa__fail(PEQA_ERR_RANGE, "%s: targets[%lld] = %ld outside [0, vocab_size = %lld) and not %d", fn,
                              (long long)i, (long)targets[i], (long long)V, PEQA_TARGET_IGNORE);
    }
    return PEQA_OK;
}

peqa_status peqa_model_forward(peqa_ctx *ctx, peqa_model *m, peqa_model_cache *c, int64_t B, int64_t T,
                               const int32_t *tokens, const int32_t *targets, float *loss)
{
    static const char fn[] = "peqa_model_forward";
    if (!ctx || !m || !c || !tokens || !targets || !loss) return peqa__fail(PEQA_ERR_NULL, "%s: NULL argument", fn);
    if (!same_shapes(&c->cfg, &m->cfg)) return peqa__fail(PEQA_ERR_ARG, "%s: the cache was made for other shapes", fn);
    /* capacity first: the token scan below reads B·T entries */
    if (B >= 1 && T >= 1 && (B > c->cap || T > c->cap / B))
        return peqa__fail(PEQA_ERR_SHAPE, "%s: B·T = %lld x %lld tokens exceed the cache's %lld", fn, (long long)B,
                          (long long)T, (long long)c->cap);
    PEQA_TRY(check_batch(fn, m, B, T, 0, tokens, targets));
    PEQA_TRY(ensure_rope(m, T));
    const peqa_model_config *cf = &m->cfg;
    const int64_t L = cf->n_layers, D = cf->dim, F = cf->ffn, V = cf->vocab, M = B * T, cap = c->cap;
    const int64_t qw = cf->n_heads * cf->head_dim, kvw = cf->n_kv_heads * cf->head_dim, H2 = 2 * cf->n_heads;
    c->state = 0;
    memcpy(c->tokens, tokens, (size_t)M * sizeof *tokens);
    memcpy(c->targets, targets, (size_t)M * sizeof *targets);
    PEQA_TRY(peqa_embed_fwd(m->embed, V, D, tokens, M, c->x));
    for (int64_t l = 0; l < L; l++) {
        const fwd_bufs b = {
            .x = c->x + l * cap * D,       .xm = c->xm + l * cap * D,      .xo = c->x + (l + 1) * cap * D,
            .r1 = c->rstd + 2 * l * cap,   .r2 = c->rstd + (2 * l + 1) * cap,
            .q = c->q + l * cap * qw,      .kall = c->k + l * cap * kvw,   .vall = c->v + l * cap * kvw,
            .att = c->att + l * cap * qw,  .stats = c->stats + l * cap * H2,
            .g = c->g + l * cap * F,       .u = c->u + l * cap * F,        .h = c->h,
            .xn = c->xn,                   .t1 = c->t1,
        };
        PEQA_TRY(layer_fwd(ctx, m, &m->layers[l], B, T, 0, &b));
    }
    const float *xL = c->x + L * cap * D;
    PEQA_TRY(peqa_rmsnorm_fwd(xL, m->norm, (float)cf->norm_eps, M, D, c->xn, c->rstd + 2 * L * cap));
    PEQA_TRY(peqa_sgemm_nt(ctx, M, V, D, c->xn, D, m->lm_head, D, c->logits, V));
    PEQA_TRY(peqa_xent_fwd(c->logits, targets, M, V, c->xst, NULL, loss));
    c->B = B, c->T = T, c->M = M, c->fwd_model = m, c->state = 1;
    return PEQA_OK;
}

/* ---- backward ----------------------------------------------------------------------------------- */

/* On entry c->dx holds dLoss/d(output of layer l); on return dLoss/d(input of layer l) (not
 * formed for layer 0 in quantized mode: nothing below trains). Parameter gradients in the order
 * down, gate, up, post_attention_layernorm, o, q, k, v, input_layernorm. */
static peqa_status layer_bwd(peqa_ctx *ctx, const peqa_model *m, peqa_model_cache *c, peqa_model_grads *g,
                             int64_t l, int acc)
{
    const peqa_model_config *cf = &m->cfg;
    const peqa_model_layer *ly = &m->layers[l];
    const int64_t D = cf->dim, F = cf->ffn, Hq = cf->n_heads, Hkv = cf->n_kv_heads, hd = cf->head_dim;
    const int64_t qw = Hq * hd, kvw = Hkv * hd, H2 = 2 * Hq, cap = c->cap, M = c->M, B = c->B, T = c->T;
    const float eps = (float)cf->norm_eps;
    const int fp = !m->quantized;
    const float *x = c->x + l * cap * D, *xm = c->xm + l * cap * D;
    const float *r1 = c->rstd + 2 * l * cap, *r2 = c->rstd + (2 * l + 1) * cap;
    const float *q = c->q + l * cap * qw, *k = c->k + l * cap * kvw, *v = c->v + l * cap * kvw;
    const float *st = c->stats + l * cap * H2;
    float *att = c->att + l * cap * qw, *gg = c->g + l * cap * F, *uu = c->u + l * cap * F;
    const size_t MD = (size_t)(M * D);

    /* MLP: recompute its inputs xn = RMSNorm(xm) and h = silu(g)·u (the same sequences as the
     * forward, so the same bits). */
    PEQA_TRY(peqa_rmsnorm_fwd(xm, ly->mlp_norm, eps, M, D, c->xn, NULL));
    PEQA_TRY(peqa_swiglu_fwd(gg, uu, M * F, c->h));
    PEQA_TRY(lin_dparam(ctx, m, g, l, PEQA_LIN_DOWN, M, c->h, c->dx, acc));
    PEQA_TRY(lin_dinput(ctx, &ly->lin[PEQA_LIN_DOWN], M, c->dx, c->h));      /* h := dh */
    PEQA_TRY(peqa_swiglu_bwd(gg, uu, c->h, M * F, gg, uu));                   /* g := dg, u := du */
    PEQA_TRY(lin_dparam(ctx, m, g, l, PEQA_LIN_GATE, M, c->xn, gg, acc));
    PEQA_TRY(lin_dparam(ctx, m, g, l, PEQA_LIN_UP, M, c->xn, uu, acc));
    /* d xn = dg·Wg + du·Wu (in that order) */
    PEQA_TRY(lin_dinput(ctx, &ly->lin[PEQA_LIN_GATE], M, gg, c->t1));
    PEQA_TRY(lin_dinput(ctx, &ly->lin[PEQA_LIN_UP], M, uu, c->t2));
    vadd(c->t1, c->t2, MD);
    float *dw = fp ? gdst0(g, fp_norm_index(l, 1), acc) : NULL;
    PEQA_TRY(peqa_rmsnorm_bwd(xm, ly->mlp_norm, r2, c->t1, M, D, c->t1, dw));
    if (fp) gdone(g, fp_norm_index(l, 1), acc);
    vadd3(c->dxm, c->dx, c->t1, MD); /* residual: d xm = d out + d(MLP branch) */

    /* attention */
    PEQA_TRY(lin_dparam(ctx, m, g, l, PEQA_LIN_O, M, att, c->dxm, acc));
    PEQA_TRY(lin_dinput(ctx, &ly->lin[PEQA_LIN_O], M, c->dxm, att));           /* att := d att */
    const peqa_attn_shape sh = {.tq = T, .tk = T, .n_heads = Hq, .n_kv_heads = Hkv, .head_dim = hd};
    for (int64_t s = 0; s < B; s++) {
        const int64_t oq = s * T * qw, okv = s * T * kvw;
        PEQA_TRY(peqa_attn_bwd(ctx, &sh, q + oq, k + okv, v + okv, st + s * T * H2, att + oq, c->dq + oq, c->dk + okv,
                          c->dv + okv));
        /* q and k were rotated after the projection: rotate their gradients back. */
        PEQA_TRY(peqa_rope_bwd(&m->rope, c->dq + oq, T, Hq, 0, c->dq + oq));
        PEQA_TRY(peqa_rope_bwd(&m->rope, c->dk + okv, T, Hkv, 0, c->dk + okv));
    }
    PEQA_TRY(peqa_rmsnorm_fwd(x, ly->attn_norm, eps, M, D, c->xn, NULL));
    PEQA_TRY(lin_dparam(ctx, m, g, l, PEQA_LIN_Q, M, c->xn, c->dq, acc));
    PEQA_TRY(lin_dparam(ctx, m, g, l, PEQA_LIN_K, M, c->xn, c->dk, acc));
    PEQA_TRY(lin_dparam(ctx, m, g, l, PEQA_LIN_V, M, c->xn, c->dv, acc));
    if (!fp && l == 0) return PEQA_OK;
    /* d xn = dq·Wq + dk·Wk + dv·Wv (in that order) */
    PEQA_TRY(lin_dinput(ctx, &ly->lin[PEQA_LIN_Q], M, c->dq, c->t1));
    PEQA_TRY(lin_dinput(ctx, &ly->lin[PEQA_LIN_K], M, c->dk, c->t2));
    vadd(c->t1, c->t2, MD);
    PEQA_TRY(lin_dinput(ctx, &ly->lin[PEQA_LIN_V], M, c->dv, c->t2));
    vadd(c->t1, c->t2, MD);
    dw = fp ? gdst0(g, fp_norm_index(l, 0), acc) : NULL;
    PEQA_TRY(peqa_rmsnorm_bwd(x, ly->attn_norm, r1, c->t1, M, D, c->t1, dw));
    if (fp) gdone(g, fp_norm_index(l, 0), acc);
    vadd3(c->dx, c->dxm, c->t1, MD); /* residual: d x = d xm + d(attention branch) */
    return PEQA_OK;
}

peqa_status peqa_model_backward(peqa_ctx *ctx, peqa_model *m, peqa_model_cache *c, peqa_model_grads *g, float dloss,
                                int accumulate)
{
    static const char fn[] = "peqa_model_backward";
    if (!ctx || !m || !c || !g) return peqa__fail(PEQA_ERR_NULL, "%s: NULL argument", fn);
    if (c->state != 1 || c->fwd_model != m)
        return peqa__fail(PEQA_ERR_ARG, "%s: %s", fn,
                          c->state == 2 ? "the cache was already consumed by a backward: run peqa_model_forward again"
                                        : "no forward of this model in the cache: run peqa_model_forward first");
    if (g->quantized != m->quantized || g->count != peqa_model_param_count(m, g->train_zeros))
        return peqa__fail(PEQA_ERR_ARG, "%s: the gradients were made for a %s model", fn,
                          g->quantized ? "quantized" : "full-precision");
    if (!isfinite(dloss)) return peqa__fail(PEQA_ERR_NONFINITE, "%s: dloss is not finite", fn);
    const peqa_model_config *cf = &m->cfg;
    const int64_t L = cf->n_layers, D = cf->dim, V = cf->vocab, M = c->M, cap = c->cap;
    const int acc = accumulate != 0, fp = !m->quantized;
    const float *xL = c->x + L * cap * D;
    /* The cache is consumed from here on, whatever happens. */
    c->state = 2;
    /* dlogits, in place over the logits; then d(final norm output) = dlogits · H. */
    PEQA_TRY(peqa_xent_bwd(c->logits, c->targets, c->xst, dloss, M, V, c->logits));
    PEQA_TRY(peqa_sgemm_nn(ctx, M, V, D, c->logits, V, m->lm_head, D, c->t1, D));
    const int64_t inorm = 1 + SLOTS_PER_LAYER * L;
    float *dw = fp ? gdst0(g, inorm, acc) : NULL;
    PEQA_TRY(peqa_rmsnorm_bwd(xL, m->norm, c->rstd + 2 * L * cap, c->t1, M, D, c->dx, dw));
    if (fp) gdone(g, inorm, acc);
    for (int64_t l = L - 1; l >= 0; l--) PEQA_TRY(layer_bwd(ctx, m, c, g, l, acc));
    if (!fp) return PEQA_OK;
    /* lm_head: dH = dlogitsᵀ · xf with xf = RMSNorm(x_L) recomputed. When tied, the embedding
     * gradient is this plus the scatter of d x (in that order). */
    PEQA_TRY(peqa_rmsnorm_fwd(xL, m->norm, (float)cf->norm_eps, M, D, c->xn, NULL));
    const int64_t ihead = cf->tie_embeddings ? 0 : inorm + 1;
    float *dh = gdst(g, ihead, acc);
    PEQA_TRY(peqa_sgemm_tn(ctx, M, V, D, c->logits, V, c->xn, D, dh, D));
    float *de = dh;
    if (!cf->tie_embeddings) {
        gdone(g, ihead, acc);
        de = gdst0(g, 0, acc);
    }
    PEQA_TRY(peqa_embed_bwd(c->dx, c->tokens, M, V, D, de));
    gdone(g, 0, acc);
    return PEQA_OK;
}

/* ---- inference ----------------------------------------------------------------------------------- */

/* Work buffers of an inference pass over `rows` rows with keys/values for `kvrows` rows. */
typedef struct {
    float *x, *xn, *t1, *q, *att, *g, *u, *k, *v;
    void *block;
} infer_work;

static peqa_status infer_work_alloc(const peqa_model_config *c, int64_t rows, int64_t kvrows, infer_work *w)
{
    memset(w, 0, sizeof *w);
    const size_t D = (size_t)c->dim, F = (size_t)c->ffn, qw = (size_t)(c->n_heads * c->head_dim);
    const size_t kvw = (size_t)(c->n_kv_heads * c->head_dim), R = (size_t)rows, KR = (size_t)kvrows;
    struct { float **p; size_t rows, width; } plan[] = {
        {&w->x, R, D},  {&w->xn, R, D}, {&w->t1, R, D},  {&w->q, R, qw}, {&w->att, R, qw},
        {&w->g, R, F},  {&w->u, R, F},  {&w->k, KR, kvw}, {&w->v, KR, kvw},
    };
    const size_t np = sizeof plan / sizeof plan[0];
    size_t offs[sizeof plan / sizeof plan[0]], off = 0, bytes;
    int ok = 1;
    for (size_t i = 0; ok && i < np; i++) {
        size_t n;
        ok = peqa__mul(plan[i].rows, plan[i].width, &n) && carve(&off, n, &offs[i]);
    }
    if (!ok || !peqa__mul(off, sizeof(float), &bytes))
        return peqa__fail(PEQA_ERR_OVERFLOW, "model inference: buffer sizes overflow for %lld rows", (long long)rows);
    float *base = malloc(bytes ? bytes : sizeof(float));
    if (!base) return peqa__fail(PEQA_ERR_NOMEM, "model inference: cannot allocate %zu bytes", bytes);
    for (size_t i = 0; i < np; i++) *plan[i].p = base + offs[i];
    w->block = base;
    return PEQA_OK;
}

/* logits (B·T × V) with no cache: the residual stream runs in place through one set of buffers. */
static peqa_status infer_logits(peqa_ctx *ctx, peqa_model *m, int64_t B, int64_t T, const int32_t *tokens,
                                float *logits)
{
    const peqa_model_config *cf = &m->cfg;
    const int64_t M = B * T, D = cf->dim, V = cf->vocab;
    PEQA_TRY(ensure_rope(m, T));
    infer_work w;
    PEQA_TRY(infer_work_alloc(cf, M, M, &w));
    peqa_status st = peqa_embed_fwd(m->embed, V, D, tokens, M, w.x);
    for (int64_t l = 0; !st && l < cf->n_layers; l++) {
        const fwd_bufs b = {.x = w.x, .xm = w.x, .xo = w.x, .q = w.q, .kall = w.k, .vall = w.v, .att = w.att,
                            .g = w.g, .u = w.u, .h = w.g, .xn = w.xn, .t1 = w.t1};
        st = layer_fwd(ctx, m, &m->layers[l], B, T, 0, &b);
    }
    if (!st) st = peqa_rmsnorm_fwd(w.x, m->norm, (float)cf->norm_eps, M, D, w.xn, NULL);
    if (!st) st = peqa_sgemm_nt(ctx, M, V, D, w.xn, D, m->lm_head, D, logits, V);
    free(w.block);
    return st;
}

peqa_status peqa_model_logits(peqa_ctx *ctx, peqa_model *m, int64_t B, int64_t T, const int32_t *tokens,
                              float *logits)
{
    static const char fn[] = "peqa_model_logits";
    if (!ctx || !m || !tokens || !logits) return peqa__fail(PEQA_ERR_NULL, "%s: NULL argument", fn);
    PEQA_TRY(check_batch(fn, m, B, T, 0, tokens, NULL));
    return infer_logits(ctx, m, B, T, tokens, logits);
}

peqa_status peqa_model_eval(peqa_ctx *ctx, peqa_model *m, int64_t B, int64_t T, const int32_t *tokens,
                            const int32_t *targets, float *losses, float *mean)
{
    static const char fn[] = "peqa_model_eval";
    if (!ctx || !m || !tokens || !targets) return peqa__fail(PEQA_ERR_NULL, "%s: NULL argument", fn);
    PEQA_TRY(check_batch(fn, m, B, T, 0, tokens, targets));
    const int64_t M = B * T;
    float *logits = alloc_floats((size_t)M, (size_t)m->cfg.vocab, 0);
    if (!logits) return peqa__fail(PEQA_ERR_NOMEM, "%s: cannot allocate the logits of %lld tokens", fn, (long long)M);
    peqa_status st = infer_logits(ctx, m, B, T, tokens, logits);
    if (!st) st = peqa_xent_fwd(logits, targets, M, m->cfg.vocab, NULL, losses, mean);
    free(logits);
    return st;
}

struct peqa_model_kv {
    peqa_model_config cfg;
    int64_t max_len, len;
    float *k, *v;  /* L × max_len × Hkv·hd each */
    infer_work w;  /* for w_rows new tokens (grown on demand) */
    int64_t w_rows;
};

peqa_status peqa_model_kv_create(const peqa_model *m, int64_t max_len, peqa_model_kv **out)
{
    static const char fn[] = "peqa_model_kv_create";
    if (!m || !out) return peqa__fail(PEQA_ERR_NULL, "%s: NULL argument", fn);
    *out = NULL;
    if (max_len < 1 || max_len > m->cfg.max_pos)
        return peqa__fail(PEQA_ERR_SHAPE, "%s: max_len = %lld: expected 1 .. max_position_embeddings = %lld", fn,
                          (long long)max_len, (long long)m->cfg.max_pos);
    peqa_model_kv *kv = calloc(1, sizeof *kv);
    if (!kv) return peqa__fail(PEQA_ERR_NOMEM, "%s: out of memory", fn);
    size_t n;
    const size_t kvw = (size_t)(m->cfg.n_kv_heads * m->cfg.head_dim);
    if (!peqa__mul((size_t)m->cfg.n_layers * (size_t)max_len, kvw, &n) || !(kv->k = alloc_floats(n, 1, 1)) ||
        !(kv->v = alloc_floats(n, 1, 1))) {
        peqa_model_kv_free(kv);
        return peqa__fail(PEQA_ERR_NOMEM, "%s: cannot allocate the cache for %lld positions", fn, (long long)max_len);
    }
    kv->cfg = m->cfg, kv->max_len = max_len;
    *out = kv;
    return PEQA_OK;
}

void peqa_model_kv_free(peqa_model_kv *kv)
{
    if (!kv) return;
    free(kv->k);
    free(kv->v);
    free(kv->w.block);
    free(kv);
}

void peqa_model_kv_reset(peqa_model_kv *kv)
{
    if (kv) kv->len = 0;
}

int64_t peqa_model_kv_len(const peqa_model_kv *kv) { return kv ? kv->len : 0; }

peqa_status peqa_model_decode(peqa_ctx *ctx, peqa_model *m, peqa_model_kv *kv, int64_t n, const int32_t *tokens,
                              float *logits)
{
    static const char fn[] = "peqa_model_decode";
    if (!ctx || !m || !kv || !tokens || !logits) return peqa__fail(PEQA_ERR_NULL, "%s: NULL argument", fn);
    if (!same_shapes(&kv->cfg, &m->cfg)) return peqa__fail(PEQA_ERR_ARG, "%s: the KV cache was made for other shapes", fn);
    if (n < 1 || n > kv->max_len - kv->len)
        return peqa__fail(PEQA_ERR_RANGE, "%s: %lld new tokens after %lld do not fit the cache's %lld positions", fn,
                          (long long)n, (long long)kv->len, (long long)kv->max_len);
    PEQA_TRY(check_batch(fn, m, 1, n, kv->len, tokens, NULL));
    const peqa_model_config *cf = &m->cfg;
    const int64_t D = cf->dim, V = cf->vocab, kvw = cf->n_kv_heads * cf->head_dim, pos = kv->len;
    PEQA_TRY(ensure_rope(m, pos + n));
    if (n > kv->w_rows) {
        infer_work w;
        PEQA_TRY(infer_work_alloc(cf, n, 0, &w));
        free(kv->w.block);
        kv->w = w, kv->w_rows = n;
    }
    infer_work *w = &kv->w;
    PEQA_TRY(peqa_embed_fwd(m->embed, V, D, tokens, n, w->x));
    for (int64_t l = 0; l < cf->n_layers; l++) {
        const fwd_bufs b = {.x = w->x, .xm = w->x, .xo = w->x, .q = w->q,
                            .kall = kv->k + l * kv->max_len * kvw, .vall = kv->v + l * kv->max_len * kvw,
                            .att = w->att, .g = w->g, .u = w->u, .h = w->g, .xn = w->xn, .t1 = w->t1};
        PEQA_TRY(layer_fwd(ctx, m, &m->layers[l], 1, n, pos, &b));
    }
    /* Only the last position's logits. */
    PEQA_TRY(peqa_rmsnorm_fwd(w->x + (n - 1) * D, m->norm, (float)cf->norm_eps, 1, D, w->xn, NULL));
    PEQA_TRY(peqa_sgemm_nt(ctx, 1, V, D, w->xn, D, m->lm_head, D, logits, V));
    kv->len = pos + n;
    return PEQA_OK;
}
