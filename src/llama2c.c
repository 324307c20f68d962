/* llama2.c import: version-0 checkpoints, the q/k rotary row permutation, tokenizer.bin. The
 * formats, the checks and the encoding algorithm are described in llama2c.h. Multi-byte values
 * are assembled from little-endian bytes, so the code does not depend on the host's byte order;
 * weights are moved as raw 4-byte rows and never reinterpreted, which also keeps every bit
 * (NaN payloads included, though those are rejected) exactly as in the checkpoint. */
#define _FILE_OFFSET_BITS 64 /* 64-bit off_t in fstat on 32-bit hosts */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>
#include "internal.h"
#include "json.h"
#include "llama2c.h"
#include "safetensors.h"

/* tokenizer.bin files larger than this are refused (a 128K-entry vocabulary is ~2 MB). */
#define TOKENIZER_MAX_BYTES ((size_t)1 << 30)

static uint32_t le32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* Two's complement int32 from its bits, without implementation-defined conversions. */
static int32_t as_i32(uint32_t u)
{
    return u < 0x80000000u ? (int32_t)u : -(int32_t)(0xFFFFFFFFu - u) - 1;
}

/* An fp32 bit pattern with an all-ones exponent is Inf or NaN. */
static int bits_finite(uint32_t u) { return (u & 0x7F800000u) != 0x7F800000u; }

static int mul64(uint64_t a, uint64_t b, uint64_t *out)
{
    if (a != 0 && b > UINT64_MAX / a) return 0;
    *out = a * b;
    return 1;
}

static int add64(uint64_t a, uint64_t b, uint64_t *out)
{
    if (b > UINT64_MAX - a) return 0;
    *out = a + b;
    return 1;
}

/* ---- rotary row permutation ------------------------------------------------------------------ */

static peqa_status rope_rows(void *dst, const void *src, int64_t n_heads, int64_t head_dim, size_t row_bytes,
                             int to_hf, const char *fn)
{
    if (n_heads < 1 || head_dim < 2 || head_dim % 2)
        return peqa__fail(PEQA_ERR_SHAPE, "%s: need n_heads >= 1 and an even head_dim >= 2, got %lld and %lld", fn,
                          (long long)n_heads, (long long)head_dim);
    size_t rows, total;
    if ((uint64_t)n_heads > SIZE_MAX || (uint64_t)head_dim > SIZE_MAX ||
        !peqa__mul((size_t)n_heads, (size_t)head_dim, &rows) || !peqa__mul(rows, row_bytes, &total))
        return peqa__fail(PEQA_ERR_OVERFLOW, "%s: %lld x %lld rows of %zu bytes overflow", fn, (long long)n_heads,
                          (long long)head_dim, row_bytes);
    if (total == 0) return PEQA_OK;
    if (!dst || !src) return peqa__fail(PEQA_ERR_NULL, "%s: NULL argument", fn);
    uintptr_t d = (uintptr_t)dst, s = (uintptr_t)src;
    if (d < s + total && s < d + total) return peqa__fail(PEQA_ERR_ARG, "%s: dst and src overlap", fn);
    unsigned char *out = dst;
    const unsigned char *in = src;
    size_t hd = (size_t)head_dim, half = hd / 2;
    for (size_t h = 0; h < (size_t)n_heads; h++)
        for (size_t i = 0; i < 2; i++)
            for (size_t j = 0; j < half; j++) {
                size_t hf = h * hd + i * half + j, meta = h * hd + 2 * j + i;
                if (to_hf) memcpy(out + hf * row_bytes, in + meta * row_bytes, row_bytes);
                else memcpy(out + meta * row_bytes, in + hf * row_bytes, row_bytes);
            }
    return PEQA_OK;
}

peqa_status peqa_qk_rows_meta_to_hf(void *dst, const void *src, int64_t n_heads, int64_t head_dim,
                                      size_t row_bytes)
{
    return rope_rows(dst, src, n_heads, head_dim, row_bytes, 1, "peqa_qk_rows_meta_to_hf");
}

peqa_status peqa_qk_rows_hf_to_meta(void *dst, const void *src, int64_t n_heads, int64_t head_dim,
                                      size_t row_bytes)
{
    return rope_rows(dst, src, n_heads, head_dim, row_bytes, 0, "peqa_qk_rows_hf_to_meta");
}

/* ---- checkpoint header ------------------------------------------------------------------------ */

static const char *const field_names[7] = {"dim", "hidden_dim", "n_layers", "n_heads", "n_kv_heads", "vocab_size",
                                           "seq_len"};

peqa_status peqa_l2c_config_from_header(const char *what, const int32_t h[7], peqa_l2c_config *cfg)
{
    if (!h || !cfg) return peqa__fail(PEQA_ERR_NULL, "peqa_l2c_config_from_header: NULL argument");
    if (!what) what = "llama2.c checkpoint";
    memset(cfg, 0, sizeof *cfg);
    for (int i = 0; i < 7; i++) {
        if (i == 5 ? h[i] == 0 : h[i] <= 0)
            return peqa__fail(PEQA_ERR_FORMAT, "%s: header field %s = %ld must be %s", what, field_names[i],
                              (long)h[i], i == 5 ? "non-zero" : "positive");
    }
    int64_t dim = h[0], hidden = h[1], layers = h[2], heads = h[3], kv_heads = h[4], seq = h[6];
    int64_t vocab = h[5] < 0 ? -(int64_t)h[5] : (int64_t)h[5]; /* in int64, so INT32_MIN is fine */
    if (dim % heads)
        return peqa__fail(PEQA_ERR_FORMAT, "%s: dim %lld is not divisible by n_heads %lld", what, (long long)dim,
                          (long long)heads);
    int64_t hd = dim / heads;
    if (hd % 2)
        return peqa__fail(PEQA_ERR_FORMAT, "%s: head size %lld (dim %lld / n_heads %lld) is odd; rotary embeddings "
                          "rotate pairs of elements", what, (long long)hd, (long long)dim, (long long)heads);
    if (kv_heads > heads || heads % kv_heads)
        return peqa__fail(PEQA_ERR_FORMAT, "%s: n_heads %lld is not a multiple of n_kv_heads %lld", what,
                          (long long)heads, (long long)kv_heads);
    int64_t kv = hd * kv_heads;

    /* Number of fp32 values in the file, in the order they are stored. Every field is below 2^31,
     * so products of two fit; products of three (L x rows x cols) may not. */
    uint64_t D = (uint64_t)dim, H = (uint64_t)hidden, L = (uint64_t)layers, V = (uint64_t)vocab, S = (uint64_t)seq,
             KV = (uint64_t)kv, HD = (uint64_t)hd;
    uint64_t per_layer = 0, ffn = 0, layer_total = 0, all_layers = 0, total = V * D, bytes = 0;
    int ok = 1;
    /* One layer: two norms, wq and wo [D, D], wk and wv [KV, D]; each D*D or KV*D is < 2^62,
     * their sums are checked. */
    ok = ok && add64(per_layer, 2 * D, &per_layer);
    ok = ok && add64(per_layer, D * D, &per_layer) && add64(per_layer, D * D, &per_layer);
    ok = ok && add64(per_layer, KV * D, &per_layer) && add64(per_layer, KV * D, &per_layer);
    ok = ok && mul64(3, H * D, &ffn);
    ok = ok && add64(per_layer, ffn, &layer_total) && mul64(L, layer_total, &all_layers);
    ok = ok && add64(total, all_layers, &total) && add64(total, D, &total) && add64(total, S * HD, &total);
    if (h[5] < 0) ok = ok && add64(total, V * D, &total);
    ok = ok && mul64(total, 4, &bytes) && add64(bytes, PEQA_L2C_HEADER_BYTES, &bytes);
    if (!ok)
        return peqa__fail(PEQA_ERR_OVERFLOW, "%s: header dim=%ld hidden_dim=%ld n_layers=%ld n_heads=%ld n_kv_heads=%ld "
                          "vocab_size=%ld seq_len=%ld describes more weights than 64-bit sizes can count", what,
                          (long)h[0], (long)h[1], (long)h[2], (long)h[3], (long)h[4], (long)h[5], (long)h[6]);
    cfg->dim = dim;
    cfg->hidden_dim = hidden;
    cfg->n_layers = layers;
    cfg->n_heads = heads;
    cfg->n_kv_heads = kv_heads;
    cfg->vocab_size = vocab;
    cfg->seq_len = seq;
    cfg->shared_classifier = h[5] > 0;
    cfg->head_dim = hd;
    cfg->kv_dim = kv;
    cfg->n_floats = total;
    cfg->file_bytes = bytes;
    return PEQA_OK;
}

/* Opens a checkpoint, reads and validates its header and checks the file length. On success *fp
 * is positioned right after the header. */
static peqa_status open_checkpoint(const char *path, peqa_l2c_config *cfg, FILE **fp)
{
    *fp = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) return peqa__fail(PEQA_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat sb;
    peqa_status st = PEQA_OK;
    if (fstat(fileno(f), &sb) != 0) {
        st = peqa__fail(PEQA_ERR_IO, "%s: cannot stat: %s", path, strerror(errno));
        goto fail;
    }
    if (!S_ISREG(sb.st_mode) || sb.st_size < 0) {
        st = peqa__fail(PEQA_ERR_IO, "%s: not a regular file", path);
        goto fail;
    }
    uint64_t size = (uint64_t)sb.st_size;
    unsigned char hb[PEQA_L2C_HEADER_BYTES];
    size_t got = fread(hb, 1, sizeof hb, f);
    if (got < sizeof hb) {
        if (ferror(f)) st = peqa__fail(PEQA_ERR_IO, "%s: read error: %s", path, strerror(errno));
        else st = peqa__fail(PEQA_ERR_FORMAT, "%s: file is %zu bytes, too short for the %d-byte llama2.c header", path,
                             got, PEQA_L2C_HEADER_BYTES);
        goto fail;
    }
    if (le32(hb) == PEQA_L2C_MAGIC_V1) {
        st = peqa__fail(PEQA_ERR_FORMAT, "%s: a llama2.c version %ld checkpoint (magic \"ak42\"); only version 0, the "
                        "legacy format run.c reads, is supported (export.py --version 0)", path,
                        (long)as_i32(le32(hb + 4)));
        goto fail;
    }
    int32_t h[7];
    for (int i = 0; i < 7; i++) h[i] = as_i32(le32(hb + 4 * i));
    st = peqa_l2c_config_from_header(path, h, cfg);
    if (st) goto fail;
    if (size != cfg->file_bytes) {
        /* Say so when the length fits the other reading of vocab_size's sign. */
        uint64_t cls = 4 * (uint64_t)cfg->vocab_size * (uint64_t)cfg->dim; /* V, D <= 2^31: < 2^64 */
        if (cfg->shared_classifier && size > cfg->file_bytes && size - cfg->file_bytes == cls)
            st = peqa__fail(PEQA_ERR_FORMAT, "%s: vocab_size %lld is positive (classifier shared with the embedding) "
                            "but the file holds one more [%lld x %lld] matrix, as if the classifier were separate "
                            "(vocab_size would be negative)", path, (long long)cfg->vocab_size,
                            (long long)cfg->vocab_size, (long long)cfg->dim);
        else if (!cfg->shared_classifier && size < cfg->file_bytes && cfg->file_bytes - size == cls)
            st = peqa__fail(PEQA_ERR_FORMAT, "%s: vocab_size -%lld announces a separate classifier but the file ends "
                            "without it (%llu bytes, %llu expected)", path, (long long)cfg->vocab_size,
                            (unsigned long long)size, (unsigned long long)cfg->file_bytes);
        else
            st = peqa__fail(PEQA_ERR_FORMAT, "%s: file is %llu bytes but the header (dim=%lld hidden_dim=%lld "
                            "n_layers=%lld n_heads=%lld n_kv_heads=%lld vocab_size=%s%lld seq_len=%lld) needs "
                            "exactly %llu (%s)", path, (unsigned long long)size, (long long)cfg->dim,
                            (long long)cfg->hidden_dim, (long long)cfg->n_layers, (long long)cfg->n_heads,
                            (long long)cfg->n_kv_heads, cfg->shared_classifier ? "" : "-",
                            (long long)cfg->vocab_size, (long long)cfg->seq_len,
                            (unsigned long long)cfg->file_bytes, size < cfg->file_bytes ? "truncated" : "trailing bytes");
        goto fail;
    }
    *fp = f;
    return PEQA_OK;
fail:
    fclose(f);
    return st;
}

peqa_status peqa_l2c_read_config(const char *path, peqa_l2c_config *cfg)
{
    if (!path || !cfg) return peqa__fail(PEQA_ERR_NULL, "peqa_l2c_read_config: NULL argument");
    FILE *f;
    peqa_l2c_config c;
    peqa_status st = open_checkpoint(path, &c, &f);
    if (st) return st;
    fclose(f);
    *cfg = c;
    return PEQA_OK;
}

/* ---- config.json ------------------------------------------------------------------------------ */

peqa_status peqa_l2c_config_json(const peqa_l2c_config *cfg, char **json, size_t *len)
{
    if (!cfg || !json || !len) return peqa__fail(PEQA_ERR_NULL, "peqa_l2c_config_json: NULL argument");
    *json = NULL;
    *len = 0;
    size_t cap = 2048; /* 16 keys; every number has at most 20 digits */
    char *s = malloc(cap);
    if (!s) return peqa__fail(PEQA_ERR_NOMEM, "peqa_l2c_config_json: out of memory");
    char ids[64] = "";
    if (cfg->vocab_size > 2) snprintf(ids, sizeof ids, "  \"bos_token_id\": 1,\n  \"eos_token_id\": 2,\n");
    int n = snprintf(s, cap,
                     "{\n"
                     "  \"architectures\": [\"LlamaForCausalLM\"],\n"
                     "  \"model_type\": \"llama\",\n"
                     "  \"hidden_size\": %lld,\n"
                     "  \"intermediate_size\": %lld,\n"
                     "  \"num_hidden_layers\": %lld,\n"
                     "  \"num_attention_heads\": %lld,\n"
                     "  \"num_key_value_heads\": %lld,\n"
                     "  \"head_dim\": %lld,\n"
                     "  \"vocab_size\": %lld,\n"
                     "  \"max_position_embeddings\": %lld,\n"
                     "  \"hidden_act\": \"silu\",\n"
                     "  \"rms_norm_eps\": 1e-05,\n"
                     "  \"rope_theta\": 10000.0,\n"
                     "  \"attention_bias\": false,\n"
                     "  \"mlp_bias\": false,\n"
                     "  \"tie_word_embeddings\": %s,\n"
                     "%s"
                     "  \"torch_dtype\": \"float32\"\n"
                     "}\n",
                     (long long)cfg->dim, (long long)cfg->hidden_dim, (long long)cfg->n_layers,
                     (long long)cfg->n_heads, (long long)cfg->n_kv_heads, (long long)cfg->head_dim,
                     (long long)cfg->vocab_size, (long long)cfg->seq_len, cfg->shared_classifier ? "true" : "false",
                     ids);
    if (n < 0 || (size_t)n >= cap) {
        free(s);
        return peqa__fail(PEQA_ERR_ARG, "peqa_l2c_config_json: formatting failed");
    }
    *json = s;
    *len = (size_t)n;
    return PEQA_OK;
}

/* ---- conversion ---------------------------------------------------------------------------------- */

/* One array of the checkpoint, in file order. */
typedef struct {
    const char *l2c;  /* llama2.c's name, for messages */
    const char *hf;   /* Hugging Face name (with %lld for the layer), NULL: not converted */
    int per_layer;    /* stacked [n_layers, ...] */
    int64_t rows, cols; /* one layer's matrix [rows, cols]; cols 0: a vector [rows] */
    int64_t perm_heads; /* > 0: permute rows Meta -> HF with this many heads */
} l2c_array;

peqa_status peqa_l2c_convert(const char *ckpt_path, const char *st_path, const char *config_path)
{
    if (!ckpt_path || !st_path || !config_path) return peqa__fail(PEQA_ERR_NULL, "peqa_l2c_convert: NULL argument");
    peqa_l2c_config c;
    FILE *f = NULL;
    peqa_status st = open_checkpoint(ckpt_path, &c, &f);
    if (st) return st;
    const int64_t D = c.dim, H = c.hidden_dim, V = c.vocab_size, KV = c.kv_dim;
    const l2c_array arrays[] = {
        {"token_embedding", "model.embed_tokens.weight", 0, V, D, 0},
        {"rms_att", "model.layers.%lld.input_layernorm.weight", 1, D, 0, 0},
        {"wq", "model.layers.%lld.self_attn.q_proj.weight", 1, D, D, c.n_heads},
        {"wk", "model.layers.%lld.self_attn.k_proj.weight", 1, KV, D, c.n_kv_heads},
        {"wv", "model.layers.%lld.self_attn.v_proj.weight", 1, KV, D, 0},
        {"wo", "model.layers.%lld.self_attn.o_proj.weight", 1, D, D, 0},
        {"rms_ffn", "model.layers.%lld.post_attention_layernorm.weight", 1, D, 0, 0},
        {"w1", "model.layers.%lld.mlp.gate_proj.weight", 1, H, D, 0},
        {"w2", "model.layers.%lld.mlp.down_proj.weight", 1, D, H, 0},
        {"w3", "model.layers.%lld.mlp.up_proj.weight", 1, H, D, 0},
        {"rms_final", "model.norm.weight", 0, D, 0, 0},
        {"freq_cis_real", NULL, 0, c.seq_len, c.head_dim / 2, 0},
        {"freq_cis_imag", NULL, 0, c.seq_len, c.head_dim / 2, 0},
        {"wcls", "lm_head.weight", 0, V, D, 0}, /* present only when not shared */
    };
    const size_t narrays = sizeof arrays / sizeof arrays[0] - (c.shared_classifier ? 1 : 0);

    unsigned char *w = NULL, *tmp = NULL;
    peqa_st_writer *wr = NULL;
    char *json = NULL;
    size_t json_len = 0;
    if (c.n_floats > SIZE_MAX / 4) {
        st = peqa__fail(PEQA_ERR_OVERFLOW, "%s: %llu weights do not fit this machine's address space", ckpt_path,
                        (unsigned long long)c.n_floats);
        goto done;
    }
    size_t nbytes = (size_t)c.n_floats * 4;
    w = malloc(nbytes ? nbytes : 1);
    /* One head's rows of the widest permuted matrix: [head_dim, dim] floats. */
    tmp = malloc((size_t)c.head_dim * (size_t)D * 4);
    if (!w || !tmp) {
        st = peqa__fail(PEQA_ERR_NOMEM, "%s: out of memory for %zu bytes of weights", ckpt_path, nbytes);
        goto done;
    }
    size_t got = fread(w, 1, nbytes, f);
    if (got != nbytes) {
        if (ferror(f)) st = peqa__fail(PEQA_ERR_IO, "%s: read error: %s", ckpt_path, strerror(errno));
        else st = peqa__fail(PEQA_ERR_FORMAT, "%s: truncated while reading (the file shrank?)", ckpt_path);
        goto done;
    }
    if (fgetc(f) != EOF) {
        st = peqa__fail(PEQA_ERR_FORMAT, "%s: trailing bytes (the file grew while being read?)", ckpt_path);
        goto done;
    }
    st = peqa_st_writer_create(&wr);
    if (st) goto done;
    st = peqa_st_writer_set_metadata(wr, "converted_from", "llama2.c checkpoint version 0");
    if (st) goto done;

    /* The table above and peqa_l2c_config_from_header count the same floats; check before
     * walking the buffer with the table. */
    size_t off = 0;
    for (size_t a = 0; a < narrays; a++)
        off += (arrays[a].per_layer ? (size_t)c.n_layers : 1) * (size_t)arrays[a].rows *
               (size_t)(arrays[a].cols ? arrays[a].cols : 1) * 4;
    if (off != nbytes) {
        st = peqa__fail(PEQA_ERR_FORMAT, "%s: internal size mismatch (%zu of %zu bytes)", ckpt_path, off, nbytes);
        goto done;
    }
    off = 0; /* byte offset into w */
    for (size_t a = 0; a < narrays; a++) {
        const l2c_array *A = &arrays[a];
        size_t layers = A->per_layer ? (size_t)c.n_layers : 1;
        size_t per = (size_t)A->rows * (size_t)(A->cols ? A->cols : 1) * 4; /* fits: the file size did */
        for (size_t l = 0; l < layers; l++, off += per) {
            if (!A->hf) continue;
            unsigned char *p = w + off;
            char name[128];
            snprintf(name, sizeof name, A->hf, (long long)l);
            /* Reject Inf/NaN: no real checkpoint has them, and they would only surface later as a
             * meaningless loss. */
            for (size_t e = 0; e < per / 4; e++)
                if (!bits_finite(le32(p + 4 * e))) {
                    st = peqa__fail(PEQA_ERR_NONFINITE, "%s: %s (%s) element %zu is Inf or NaN", ckpt_path, A->l2c,
                                    name, e);
                    goto done;
                }
            if (A->perm_heads > 0) {
                /* In place, one head at a time: copy the head's rows out, permute them back. */
                size_t head_bytes = (size_t)c.head_dim * (size_t)A->cols * 4;
                for (int64_t hh = 0; hh < A->perm_heads; hh++) {
                    unsigned char *hp = p + (size_t)hh * head_bytes;
                    memcpy(tmp, hp, head_bytes);
                    st = peqa_qk_rows_meta_to_hf(hp, tmp, 1, c.head_dim, (size_t)A->cols * 4);
                    if (st) goto done;
                }
            }
            int64_t shape[2] = {A->rows, A->cols};
            st = peqa_st_writer_add(wr, name, PEQA_ST_F32, A->cols ? 2 : 1, shape, p, per);
            if (st) goto done;
        }
    }
    st = peqa_st_writer_write(wr, st_path);
    if (st) goto done;
    st = peqa_l2c_config_json(&c, &json, &json_len);
    if (st) goto done;
    st = peqa_write_file_atomic(config_path, json, json_len);
done:
    if (f) fclose(f);
    peqa_st_writer_free(wr);
    free(json);
    free(tmp);
    free(w);
    return st;
}

static char *join_path(const char *dir, const char *name)
{
    size_t a = strlen(dir), b = strlen(name);
    char *p = malloc(a + b + 2);
    if (!p) return NULL;
    memcpy(p, dir, a);
    size_t k = a;
    if (a == 0 || dir[a - 1] != '/') p[k++] = '/';
    memcpy(p + k, name, b + 1);
    return p;
}

peqa_status peqa_l2c_convert_dir(const char *ckpt_path, const char *out_dir)
{
    if (!ckpt_path || !out_dir) return peqa__fail(PEQA_ERR_NULL, "peqa_l2c_convert_dir: NULL argument");
    if (!*out_dir) return peqa__fail(PEQA_ERR_ARG, "peqa_l2c_convert_dir: empty output directory");
    if (mkdir(out_dir, 0777) != 0 && errno != EEXIST)
        return peqa__fail(PEQA_ERR_IO, "%s: cannot create directory: %s", out_dir, strerror(errno));
    struct stat sb;
    if (stat(out_dir, &sb) != 0 || !S_ISDIR(sb.st_mode))
        return peqa__fail(PEQA_ERR_IO, "%s: exists and is not a directory", out_dir);
    char *stp = join_path(out_dir, "model.safetensors"), *cp = join_path(out_dir, "config.json");
    peqa_status st = (stp && cp) ? peqa_l2c_convert(ckpt_path, stp, cp)
                                 : peqa__fail(PEQA_ERR_NOMEM, "%s: out of memory", out_dir);
    free(stp);
    free(cp);
    return st;
}

/* ---- tokenizer.bin ----------------------------------------------------------------------------- */

/* A piece in the lookup index (sorted by bytes, then id). */
typedef struct {
    const char *p;
    uint32_t len, id;
} piece_ref;

struct peqa_l2c_tokenizer {
    char *data; /* the file; pieces point into it */
    uint32_t vocab, max_len;
    const char **piece;
    uint32_t *plen;
    float *score;
    int16_t *byte_val;    /* per id: the byte a "<0xXX>" piece stands for, or -1 */
    int32_t byte_id[256]; /* lowest id of each byte's "<0xXX>" piece, or -1 */
    piece_ref *index;     /* mergeable pieces: not byte fallback, not empty */
    uint32_t nindex;
    uint32_t max_index_len; /* longest piece in the index */
    char bytes[256];        /* bytes[i] == i: what byte-fallback tokens decode to */
};

static int hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

/* The byte of a "<0xXX>" piece, or -1. */
static int byte_piece(const char *p, uint32_t len)
{
    if (len != 6 || p[0] != '<' || p[1] != '0' || p[2] != 'x' || p[5] != '>') return -1;
    int hi = hexval(p[3]), lo = hexval(p[4]);
    return hi < 0 || lo < 0 ? -1 : hi * 16 + lo;
}

static int cmp_bytes(const char *a, size_t al, const char *b, size_t bl)
{
    int c = memcmp(a, b, al < bl ? al : bl);
    if (c) return c;
    return al < bl ? -1 : al > bl;
}

static int cmp_piece_ref(const void *x, const void *y)
{
    const piece_ref *a = x, *b = y;
    int c = cmp_bytes(a->p, a->len, b->p, b->len);
    if (c) return c;
    return a->id < b->id ? -1 : a->id > b->id;
}

/* The lowest id whose (mergeable) piece is s[0, n), or -1. */
static int64_t lookup(const peqa_l2c_tokenizer *t, const char *s, size_t n)
{
    uint32_t lo = 0, hi = t->nindex; /* first entry >= s */
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (cmp_bytes(t->index[mid].p, t->index[mid].len, s, n) < 0) lo = mid + 1;
        else hi = mid;
    }
    if (lo < t->nindex && cmp_bytes(t->index[lo].p, t->index[lo].len, s, n) == 0) return t->index[lo].id;
    return -1;
}

void peqa_l2c_tokenizer_free(peqa_l2c_tokenizer *t)
{
    if (!t) return;
    free(t->data);
    free((void *)t->piece);
    free(t->plen);
    free(t->score);
    free(t->byte_val);
    free(t->index);
    free(t);
}

/* Walks the entries once: validates, counts, and (when t->piece is allocated) records them. */
static peqa_status tok_walk(peqa_l2c_tokenizer *t, const char *path, size_t flen, int64_t want, uint32_t *nfound)
{
    const unsigned char *d = (const unsigned char *)t->data;
    size_t off = 4;
    uint32_t k = 0;
    while (want > 0 ? (int64_t)k < want : off < flen) {
        if (k == INT32_MAX)
            return peqa__fail(PEQA_ERR_FORMAT, "%s: more than %d entries", path, INT32_MAX);
        if (flen - off < 8)
            return peqa__fail(PEQA_ERR_FORMAT, "%s: truncated: the file (%zu bytes) ends inside the score and length of "
                              "entry %u", path, flen, k);
        uint32_t sbits = le32(d + off);
        int32_t len = as_i32(le32(d + off + 4));
        if (!bits_finite(sbits))
            return peqa__fail(PEQA_ERR_FORMAT, "%s: entry %u has a non-finite score", path, k);
        if (len < 0 || (uint32_t)len > t->max_len)
            return peqa__fail(PEQA_ERR_FORMAT, "%s: entry %u has length %ld, outside [0, max_token_length %u]", path, k,
                              (long)len, t->max_len);
        if (flen - off - 8 < (size_t)len)
            return peqa__fail(PEQA_ERR_FORMAT, "%s: truncated: entry %u (length %ld) runs past the end of the file "
                              "(%zu bytes)", path, k, (long)len, flen);
        if (t->piece) {
            float sc;
            memcpy(&sc, &sbits, 4); /* the host's float has the bits of an fp32 */
            t->piece[k] = t->data + off + 8;
            t->plen[k] = (uint32_t)len;
            t->score[k] = sc;
        }
        off += 8 + (size_t)len;
        k++;
    }
    if (want > 0 && off != flen)
        return peqa__fail(PEQA_ERR_FORMAT, "%s: %zu bytes after the %lld entries (vocab_size from the checkpoint); is "
                          "this the model's tokenizer?", path, flen - off, (long long)want);
    if (k == 0) return peqa__fail(PEQA_ERR_FORMAT, "%s: no entries", path);
    *nfound = k;
    return PEQA_OK;
}

peqa_status peqa_l2c_tokenizer_load(const char *path, int64_t vocab_size, peqa_l2c_tokenizer **out)
{
    if (!path || !out) return peqa__fail(PEQA_ERR_NULL, "peqa_l2c_tokenizer_load: NULL argument");
    *out = NULL;
    if (vocab_size < 0 || vocab_size > INT32_MAX)
        return peqa__fail(PEQA_ERR_ARG, "%s: vocab_size %lld is not in [0, %d]", path, (long long)vocab_size, INT32_MAX);
    peqa_l2c_tokenizer *t = calloc(1, sizeof *t);
    if (!t) return peqa__fail(PEQA_ERR_NOMEM, "%s: out of memory", path);
    size_t flen = 0;
    peqa_status st = peqa__read_file(path, TOKENIZER_MAX_BYTES, &t->data, &flen);
    if (st) goto fail;
    if (flen < 4) {
        st = peqa__fail(PEQA_ERR_FORMAT, "%s: file is %zu bytes, too short for the 4-byte max_token_length", path, flen);
        goto fail;
    }
    int32_t maxlen = as_i32(le32((const unsigned char *)t->data));
    if (maxlen <= 0) {
        st = peqa__fail(PEQA_ERR_FORMAT, "%s: max_token_length %ld must be positive", path, (long)maxlen);
        goto fail;
    }
    t->max_len = (uint32_t)maxlen;
    uint32_t n = 0;
    st = tok_walk(t, path, flen, vocab_size, &n); /* validate and count */
    if (st) goto fail;
    t->vocab = n;
    t->piece = malloc(n * sizeof *t->piece);
    t->plen = malloc(n * sizeof *t->plen);
    t->score = malloc(n * sizeof *t->score);
    t->byte_val = malloc(n * sizeof *t->byte_val);
    t->index = malloc(n * sizeof *t->index);
    if (!t->piece || !t->plen || !t->score || !t->byte_val || !t->index) {
        st = peqa__fail(PEQA_ERR_NOMEM, "%s: out of memory for %u entries", path, n);
        goto fail;
    }
    st = tok_walk(t, path, flen, n, &n); /* record */
    if (st) goto fail;
    for (int b = 0; b < 256; b++) {
        t->byte_id[b] = -1;
        t->bytes[b] = (char)(unsigned char)b;
    }
    for (uint32_t i = 0; i < n; i++) {
        int b = byte_piece(t->piece[i], t->plen[i]);
        t->byte_val[i] = (int16_t)b;
        if (b >= 0) {
            if (t->byte_id[b] < 0) t->byte_id[b] = (int32_t)i;
        } else if (t->plen[i] > 0) {
            t->index[t->nindex++] = (piece_ref){t->piece[i], t->plen[i], i};
            if (t->plen[i] > t->max_index_len) t->max_index_len = t->plen[i];
        }
    }
    qsort(t->index, t->nindex, sizeof *t->index, cmp_piece_ref);
    *out = t;
    return PEQA_OK;
fail:
    peqa_l2c_tokenizer_free(t);
    return st;
}

uint32_t peqa_l2c_tokenizer_vocab(const peqa_l2c_tokenizer *t) { return t ? t->vocab : 0; }
uint32_t peqa_l2c_tokenizer_max_len(const peqa_l2c_tokenizer *t) { return t ? t->max_len : 0; }

const char *peqa_l2c_tokenizer_piece(const peqa_l2c_tokenizer *t, uint32_t id, size_t *len, float *score)
{
    if (!t || id >= t->vocab) return NULL;
    if (len) *len = t->plen[id];
    if (score) *score = t->score[id];
    return t->piece[id];
}

/* ---- encoder ---------------------------------------------------------------------------------- */

/* Symbols and heap entries are 16 bytes each with 32-bit indices, so one call encodes less
 * than 4 GiB of text (PEQA_L2C_MAX_ENCODE); memory is about 16 bytes per byte of text plus 16 per
 * pending merge. */
#define NONE UINT32_MAX

typedef struct {
    uint32_t id;
    uint32_t prev, next; /* neighbours in the current sequence, NONE at the ends */
    unsigned char merge, alive;
} sym;

/* A candidate merge of the adjacent symbols left and right into token id. */
typedef struct {
    float score;
    uint32_t id, left, right;
} cand;

typedef struct {
    cand *h;
    size_t n, cap;
    int oom;
} heap;

/* Heap order: higher score first; on equal scores the leftmost pair (symbols keep their original
 * index, and the left symbol of a merge survives, so indices stay in text order). */
static int cand_before(const cand *a, const cand *b)
{
    return a->score > b->score || (a->score == b->score && a->left < b->left);
}

static void heap_push(heap *hp, cand c)
{
    if (hp->n == hp->cap) {
        size_t ncap = hp->cap ? hp->cap * 2 : 1024;
        cand *nh = ncap > SIZE_MAX / sizeof *nh ? NULL : realloc(hp->h, ncap * sizeof *nh);
        if (!nh) {
            hp->oom = 1;
            return;
        }
        hp->h = nh, hp->cap = ncap;
    }
    cand *h = hp->h;
    size_t i = hp->n++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!cand_before(&c, &h[p])) break;
        h[i] = h[p];
        i = p;
    }
    h[i] = c;
}

static cand heap_pop(heap *hp)
{
    cand *h = hp->h;
    cand top = h[0], last = h[--hp->n];
    size_t i = 0, m = hp->n;
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, b = i;
        const cand *best = &last;
        if (l < m && cand_before(&h[l], best)) b = l, best = &h[l];
        if (r < m && cand_before(&h[r], best)) b = r;
        if (b == i) break;
        h[i] = h[b];
        i = b;
    }
    if (m > 0) h[i] = last;
    return top;
}

/* Pushes the merge of symbols l and r if their pieces concatenate to a piece. */
static void try_pair(const peqa_l2c_tokenizer *t, const sym *s, uint32_t l, uint32_t r, char *scratch, heap *hp)
{
    if (l == NONE || r == NONE || !s[l].merge || !s[r].merge) return;
    uint32_t a = s[l].id, b = s[r].id;
    size_t la = t->plen[a], lb = t->plen[b];
    if (la + lb > t->max_index_len) return; /* no piece is that long */
    memcpy(scratch, t->piece[a], la);
    memcpy(scratch + la, t->piece[b], lb);
    int64_t m = lookup(t, scratch, la + lb);
    if (m >= 0) heap_push(hp, (cand){t->score[m], (uint32_t)m, l, r});
}

peqa_status peqa_l2c_encode(const peqa_l2c_tokenizer *t, const char *text, size_t len, unsigned flags,
                            uint32_t **tokens, size_t *count)
{
    if (!t || (!text && len) || !tokens || !count) return peqa__fail(PEQA_ERR_NULL, "peqa_l2c_encode: NULL argument");
    *tokens = NULL;
    *count = 0;
    if (flags & ~(PEQA_TOK_ADD_BOS | PEQA_TOK_ADD_EOS | PEQA_L2C_NO_PREFIX))
        return peqa__fail(PEQA_ERR_ARG, "peqa_l2c_encode: unknown flags 0x%x", flags);
    if (((flags & PEQA_TOK_ADD_BOS) && PEQA_L2C_BOS >= t->vocab) || ((flags & PEQA_TOK_ADD_EOS) && PEQA_L2C_EOS >= t->vocab))
        return peqa__fail(PEQA_ERR_ARG, "peqa_l2c_encode: a vocabulary of %u has no BOS (1) / EOS (2)", t->vocab);
    if (len > PEQA_L2C_MAX_ENCODE || len > (SIZE_MAX - 3) / sizeof(sym))
        return peqa__fail(PEQA_ERR_RANGE, "peqa_l2c_encode: %zu bytes of text is more than one call encodes; "
                          "encode it in parts (documents, lines)", len);
    size_t prefix = (len > 0 && !(flags & PEQA_L2C_NO_PREFIX)) ? 1 : 0;
    size_t nmax = len + prefix; /* at most one symbol per byte, plus the prefix */
    sym *s = malloc((nmax ? nmax : 1) * sizeof *s);
    char *scratch = malloc(t->max_index_len + 1);
    uint32_t *out = malloc((nmax + 2) * sizeof *out);
    heap hp = {NULL, 0, 0, 0};
    peqa_status st = PEQA_OK;
    if (!s || !scratch || !out) {
        st = peqa__fail(PEQA_ERR_NOMEM, "peqa_l2c_encode: out of memory for %zu bytes of text", len);
        goto done;
    }
    uint32_t n = 0;
    /* Characters (the prefix space first) -> symbols. */
    for (size_t i = 0; i < len + prefix;) {
        const char *c;
        size_t u;
        if (prefix && i == 0) {
            c = " ";
            u = 1;
        } else {
            size_t at = i - prefix;
            c = text + at;
            u = 1;
            while (u < 4 && at + u < len && ((unsigned char)text[at + u] & 0xC0) == 0x80) u++;
        }
        int64_t id = lookup(t, c, u);
        if (id >= 0) {
            s[n++] = (sym){(uint32_t)id, NONE, NONE, 1, 1};
        } else {
            for (size_t k = 0; k < u; k++) {
                unsigned char b = (unsigned char)c[k];
                if (t->byte_id[b] < 0) {
                    if (prefix && i == 0)
                        st = peqa__fail(PEQA_ERR_RANGE, "peqa_l2c_encode: the space prefix has no piece \" \" and no "
                                        "<0x20> byte token (pass PEQA_L2C_NO_PREFIX?)");
                    else
                        st = peqa__fail(PEQA_ERR_RANGE, "peqa_l2c_encode: byte 0x%02X at offset %zu has no piece and "
                                        "no <0x%02X> byte token in the vocabulary", b, i - prefix + k, b);
                    goto done;
                }
                s[n++] = (sym){(uint32_t)t->byte_id[b], NONE, NONE, 0, 1};
            }
        }
        i += u;
    }
    for (uint32_t i = 0; i < n; i++) {
        s[i].prev = i ? i - 1 : NONE;
        s[i].next = i + 1 < n ? i + 1 : NONE;
    }
    for (uint32_t i = 0; i + 1 < n; i++) try_pair(t, s, i, i + 1, scratch, &hp);
    while (hp.n > 0 && !hp.oom) {
        cand c = heap_pop(&hp);
        uint32_t l = c.left, r = c.right;
        /* Stale entries: l or r was absorbed into a neighbour (dead), or r absorbed its own right
         * neighbour since the push (still adjacent, but its piece grew, so the lengths no longer
         * add up). l itself cannot change while r is its right neighbour without absorbing r. */
        if (!s[l].alive || !s[r].alive || s[l].next != r ||
            (size_t)t->plen[s[l].id] + t->plen[s[r].id] != t->plen[c.id])
            continue;
        s[l].id = c.id;
        s[r].alive = 0;
        s[l].next = s[r].next;
        if (s[r].next != NONE) s[s[r].next].prev = l;
        try_pair(t, s, s[l].prev, l, scratch, &hp);
        try_pair(t, s, l, s[l].next, scratch, &hp);
    }
    if (hp.oom) {
        st = peqa__fail(PEQA_ERR_NOMEM, "peqa_l2c_encode: out of memory for the merge queue");
        goto done;
    }
    size_t k = 0;
    if (flags & PEQA_TOK_ADD_BOS) out[k++] = PEQA_L2C_BOS;
    for (uint32_t i = n ? 0 : NONE; i != NONE; i = s[i].next) out[k++] = s[i].id;
    if (flags & PEQA_TOK_ADD_EOS) out[k++] = PEQA_L2C_EOS;
    *tokens = out;
    *count = k;
    out = NULL;
done:
    free(s);
    free(hp.h);
    free(scratch);
    free(out);
    return st;
}

/* ---- decoder ---------------------------------------------------------------------------------- */

peqa_status peqa_l2c_decode_token(const peqa_l2c_tokenizer *t, uint32_t prev, uint32_t id, const char **bytes,
                                  size_t *len)
{
    if (!t || !bytes || !len) return peqa__fail(PEQA_ERR_NULL, "peqa_l2c_decode_token: NULL argument");
    if (id >= t->vocab)
        return peqa__fail(PEQA_ERR_RANGE, "peqa_l2c_decode_token: token %u is outside the vocabulary of %u", id,
                          t->vocab);
    const char *p;
    size_t n;
    if (id == PEQA_L2C_BOS || id == PEQA_L2C_EOS) {
        p = t->piece[id];
        n = 0;
    } else if (t->byte_val[id] >= 0) {
        p = &t->bytes[t->byte_val[id]];
        n = 1;
    } else {
        p = t->piece[id];
        n = t->plen[id];
    }
    /* The encoder's dummy prefix: the first piece after BOS starts with a space the text did not
     * have. (Also for a <0x20> byte token, which stands in for the space when " " is no piece.) */
    if (prev == PEQA_L2C_BOS && prev < t->vocab && n > 0 && p[0] == ' ') p++, n--;
    *bytes = p;
    *len = n;
    return PEQA_OK;
}

peqa_status peqa_l2c_decode(const peqa_l2c_tokenizer *t, uint32_t prev, const uint32_t *tokens, size_t count,
                            char **text, size_t *len)
{
    if (!t || (!tokens && count) || !text || !len) return peqa__fail(PEQA_ERR_NULL, "peqa_l2c_decode: NULL argument");
    *text = NULL;
    *len = 0;
    size_t total = 0;
    uint32_t pv = prev;
    for (size_t i = 0; i < count; i++) {
        const char *b;
        size_t n;
        if (tokens[i] >= t->vocab)
            return peqa__fail(PEQA_ERR_RANGE, "peqa_l2c_decode: token %u at position %zu is outside the vocabulary of "
                              "%u", tokens[i], i, t->vocab);
        peqa_l2c_decode_token(t, pv, tokens[i], &b, &n);
        if (n > SIZE_MAX - 1 - total) return peqa__fail(PEQA_ERR_OVERFLOW, "peqa_l2c_decode: text too long");
        total += n;
        pv = tokens[i];
    }
    char *s = malloc(total + 1);
    if (!s) return peqa__fail(PEQA_ERR_NOMEM, "peqa_l2c_decode: out of memory for %zu bytes", total);
    size_t k = 0;
    pv = prev;
    for (size_t i = 0; i < count; i++) {
        const char *b;
        size_t n;
        peqa_l2c_decode_token(t, pv, tokens[i], &b, &n);
        if (n) memcpy(s + k, b, n);
        k += n;
        pv = tokens[i];
    }
    s[k] = '\0';
    *text = s;
    *len = k;
    return PEQA_OK;
}
