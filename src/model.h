/* peqa — the LLaMA model: configuration, weights, training forward/backward, inference (internal
 * API, not installed).
 *
 * Architecture (Hugging Face transformers' LlamaForCausalLM, formats.md §2): for tokens t,
 *     x      = E[tok]                                        embedding, D = hidden_size
 *     per layer l:
 *       xn   = RMSNorm(x; input_layernorm)
 *       q    = xn·Wqᵀ, k = xn·Wkᵀ, v = xn·Wvᵀ               Hq·hd, Hkv·hd, Hkv·hd columns
 *       q, k = RoPE(q), RoPE(k)                             rotate-half, positions 0..T-1
 *       a    = CausalGQA(q, k, v)                           softmax(q·kᵀ/√hd)·v
 *       xm   = x + a·Woᵀ                                     residual
 *       xn   = RMSNorm(xm; post_attention_layernorm)
 *       x    = xm + (silu(xn·Wgᵀ) ⊙ (xn·Wuᵀ))·Wdᵀ            SwiGLU MLP, F = intermediate_size
 *     logits = RMSNorm(x; norm)·Hᵀ                           H = lm_head (= E when tied)
 *     loss   = mean over non-ignored targets of cross-entropy(logits, target)
 * Every operation is a function of src/ops.h or a product of src/peqa.h (peqa_linear_*,
 * peqa_sgemm_*), plus elementwise residual additions y = a + b. Each of those has one fixed
 * sequence of binary32 operations (SPEC §6), so every float this file produces — logits, loss,
 * every gradient — is bit-identical on every ISA level and for every thread count. The context's
 * thread pool is used only through those products; the attention, norms and other ops run
 * serially on the calling thread.
 *
 * Two modes (SPEC §4, issue 5):
 *  - full precision: the seven linears of every block (q, k, v, o, gate, up, down) are fp32
 *    N×K matrices and EVERY parameter trains (embedding, norms, linears, lm_head): needed to
 *    train a model from scratch and for the full-precision baseline.
 *  - quantized (PEQA): the seven linears are peqa_qtensors; only their scales (optionally
 *    their zero points) train. Embedding, norms and lm_head stay fp32 and frozen.
 * peqa_model_quantize turns the first into the second (RTN, SPEC §3).
 *
 * Names: tensors carry their Hugging Face names ("model.embed_tokens.weight",
 * "model.layers.3.self_attn.q_proj.weight", ...). A quantized linear is named by its prefix
 * ("model.layers.3.self_attn.q_proj"); its trainable tensors are "<prefix>.scales" and
 * "<prefix>.qzeros".
 *
 * Errors: every function returns a status; messages (peqa_last_error) name the file, the JSON
 * key or the tensor concerned. Nothing here prints, aborts or exits.
 */
#ifndef PEQA_MODEL_H
#define PEQA_MODEL_H

#include <stddef.h>
#include <stdint.h>
#include "ops.h"
#include "peqa.h"
#include "safetensors.h"

/* Longest tensor name this file makes ("model.layers.<i>.self_attn.q_proj.weight" and such). */
#define PEQA_MODEL_NAME_MAX 96

/* Sanity limits of a configuration (every released LLaMA-family model is far inside them:
 * LLaMA-3.1-405B has hidden 16384, intermediate 53248, 126 layers, 128 heads, vocab 128256). */
#define PEQA_MODEL_MAX_DIM ((int64_t)1 << 17)     /* hidden_size */
#define PEQA_MODEL_MAX_FFN ((int64_t)1 << 20)     /* intermediate_size */
#define PEQA_MODEL_MAX_LAYERS 1024
#define PEQA_MODEL_MAX_HEADS 1024
#define PEQA_MODEL_MAX_HEAD_DIM 1024
#define PEQA_MODEL_MAX_VOCAB ((int64_t)1 << 24)
#define PEQA_MODEL_MAX_POS ((int64_t)1 << 24)     /* positions must convert to float exactly */

/* ---- configuration ---------------------------------------------------------------------- */

typedef enum peqa_rope_kind {
    PEQA_ROPE_DEFAULT = 0, /* inv_freq[j] = theta^(-2j/hd) */
    PEQA_ROPE_LINEAR,      /* inv_freq / factor */
    PEQA_ROPE_LLAMA3       /* Llama 3.1 frequency-dependent scaling */
} peqa_rope_kind;

typedef struct peqa_model_config {
    int64_t dim;        /* hidden_size, D */
    int64_t ffn;        /* intermediate_size, F */
    int64_t n_layers;   /* num_hidden_layers, L */
    int64_t n_heads;    /* num_attention_heads, Hq */
    int64_t n_kv_heads; /* num_key_value_heads, Hkv (divides Hq) */
    int64_t head_dim;   /* head_dim, hd (even); hidden_size / num_attention_heads unless given */
    int64_t vocab;      /* vocab_size, V */
    int64_t max_pos;    /* max_position_embeddings: the longest sequence accepted */
    double norm_eps;    /* rms_norm_eps (applied as float) */
    double rope_theta;  /* rope_theta or rope_parameters.rope_theta */
    int tie_embeddings; /* tie_word_embeddings: lm_head is the embedding matrix */
    peqa_rope_kind rope_kind;      /* rope_scaling / rope_parameters "rope_type" */
    double rope_factor;            /* linear, llama3 */
    double rope_low_freq_factor;   /* llama3 */
    double rope_high_freq_factor;  /* llama3 */
    int64_t rope_orig_max_pos;     /* llama3: original_max_position_embeddings */
    int64_t bos_token_id, eos_token_id; /* -1 when absent (a list of eos ids keeps the first) */
} peqa_model_config;

/* A configuration from explicit sizes, for models built in code. Defaults: head_dim = dim /
 * n_heads, rms_norm_eps 1e-5, rope_theta 10000, default RoPE, untied, no bos/eos. Validates like
 * peqa_model_config_check (message prefix "config"). */
peqa_status peqa_model_config_init(peqa_model_config *c, int64_t dim, int64_t ffn, int64_t n_layers,
                                   int64_t n_heads, int64_t n_kv_heads, int64_t vocab, int64_t max_pos);
/* Checks every field: sizes in [1, limit] (limits above), hd even, Hkv | Hq, eps finite in
 * (0, 1) and nonzero as float, theta finite > 1, RoPE scaling parameters. Messages start with
 * `what` and name the Hugging Face key ("config.json: \"num_key_value_heads\" = 3 does not divide
 * \"num_attention_heads\" = 4"). */
peqa_status peqa_model_config_check(const peqa_model_config *c, const char *what);
/* Parses a Hugging Face config.json text (what names it in messages). Required keys:
 * hidden_size, intermediate_size, num_hidden_layers, num_attention_heads, vocab_size. Optional
 * (null = absent): num_key_value_heads, head_dim, max_position_embeddings (2048), rms_norm_eps
 * (1e-6, LlamaConfig's default), rope_theta / rope_parameters.rope_theta (10000), rope_scaling
 * or rope_parameters.rope_type in {default, linear, llama3}, tie_word_embeddings (false),
 * bos_token_id, eos_token_id. Refused: model_type other than "llama", hidden_act other than
 * "silu", attention_bias or mlp_bias true, a key of the wrong JSON type, and anything
 * peqa_model_config_check refuses. */
peqa_status peqa_model_config_parse(const char *text, size_t len, const char *what, peqa_model_config *c);
peqa_status peqa_model_config_load(const char *path, peqa_model_config *c);
/* The configuration as config.json text (malloc'd, NUL-terminated; free()). parse(json(c))
 * gives c back exactly (doubles are written in their shortest round-trip form). */
peqa_status peqa_model_config_json(const peqa_model_config *c, char **out);

/* Training activation memory (see peqa_model_cache below), in bytes:
 *  per token per layer:  4 · (2·D + 2 + 2·Hq·hd + 2·Hkv·hd + 2·Hq + 2·F)
 *  per token (once):     4 · (D + 1 + V + 2) + 8     final residual, norm rstd, logits, loss
 *                                                    stats, token and target
 *  per token (work):     4 · (5·D + F + Hq·hd + 2·Hkv·hd)  buffers reused by every layer */
size_t peqa_model_act_bytes_per_token_layer(const peqa_model_config *c);
size_t peqa_model_act_bytes_per_token_once(const peqa_model_config *c);
size_t peqa_model_act_bytes_per_token_work(const peqa_model_config *c);

/* ---- the model ---------------------------------------------------------------------------- */

/* The seven linears of a block, in Hugging Face order. */
enum { PEQA_LIN_Q = 0, PEQA_LIN_K, PEQA_LIN_V, PEQA_LIN_O, PEQA_LIN_GATE, PEQA_LIN_UP, PEQA_LIN_DOWN,
       PEQA_LIN_COUNT };

/* One linear Y = X·Wᵀ, W: n × k. Exactly one of w and q is set. */
typedef struct peqa_model_linear {
    int64_t n, k;
    float *w;        /* full precision: n × k row-major */
    peqa_qtensor *q; /* quantized */
} peqa_model_linear;

typedef struct peqa_model_layer {
    float *attn_norm; /* input_layernorm.weight, D */
    float *mlp_norm;  /* post_attention_layernorm.weight, D */
    peqa_model_linear lin[PEQA_LIN_COUNT];
} peqa_model_layer;

typedef struct peqa_model {
    peqa_model_config cfg;
    int quantized;         /* 0: full precision; 1: the linears are qtensors */
    int bits;              /* quantized: bit width */
    int64_t group;         /* quantized: group size as given (0 = per-channel) */
    float *embed;          /* model.embed_tokens.weight, V × D */
    float *norm;           /* model.norm.weight, D */
    float *lm_head;        /* lm_head.weight, V × D; == embed when tied (not a separate array) */
    peqa_model_layer *layers;
    /* RoPE: inv_freq (hd/2, from the config) and the cos/sin table. The table covers the
     * positions used so far and grows on demand up to max_pos; an entry depends only on its
     * position and frequency, so growing never changes a bit. Not safe for concurrent use. */
    float *inv_freq;
    peqa_rope rope;
} peqa_model;

/* A full-precision model with every weight 0 and every norm weight 1. */
peqa_status peqa_model_create(const peqa_model_config *cfg, peqa_model **out);
/* A quantized model whose linears are zero qtensors of the given bits / group (group 0 =
 * per-channel, else a multiple of 32): the shell a quantized-file reader fills with
 * peqa_model_load_tensors (the fp32 tensors) and peqa_qtensor_load_packed / set_scales (the
 * linears). */
peqa_status peqa_model_create_quantized(const peqa_model_config *cfg, int bits, int64_t group,
                                        peqa_model **out);
void peqa_model_free(peqa_model *m); /* NULL is fine */

/* Random initialisation for training from scratch (full precision only): every embedding,
 * linear and lm_head weight uniform in [-a, a) with a = std·√3 (standard deviation std; 0 means
 * 0.02, transformers' initializer_range), every norm weight 1. One xoshiro256** stream seeded
 * by `seed` fills the tensors in Hugging Face order, element by element, in integer and
 * binary32 arithmetic only: the same seed gives the same bits on every machine. */
peqa_status peqa_model_init_random(peqa_model *m, uint64_t seed, float std);

/* Loads a Hugging Face LLaMA checkpoint in full precision. path is a directory (config.json
 * plus model.safetensors or model.safetensors.index.json with its shards) or a .safetensors /
 * index .json file with config.json in the same directory. Tensors may be F32, F16 or BF16
 * (converted exactly). Every expected tensor must exist with exactly its expected shape and
 * finite values; lm_head.weight may be absent only when tie_word_embeddings is true (if present
 * then, it is ignored: the head is the embedding). Unknown tensors are ignored (for example
 * rotary_emb.inv_freq), except "*.bias", which this architecture does not have. */
peqa_status peqa_model_load(const char *path, peqa_model **out);
/* The loading step alone, into an existing model: all fp32 tensors by name (in quantized mode
 * the linears are skipped). `what` names the checkpoint in messages. */
peqa_status peqa_model_load_tensors(peqa_model *m, const peqa_st_set *set, const char *what);
/* Writes DIR/model.safetensors (F32, Hugging Face names; lm_head.weight omitted when tied) and
 * DIR/config.json, each atomically; DIR is created if missing. Full precision only. Refuses a
 * directory holding model.safetensors.index.json (it would shadow the new file on load). */
peqa_status peqa_model_save(const peqa_model *m, const char *dir);

/* RTN-quantizes every linear (SPEC §3; peqa_qtensor_quantize_rtn) and switches the model to
 * quantized mode, freeing the fp32 linears. group 0 = per-channel. On error the model is
 * unchanged. */
peqa_status peqa_model_quantize(peqa_model *m, int bits, int64_t group);

/* ---- iteration ------------------------------------------------------------------------------ */

/* The linears, i = layer · 7 + PEQA_LIN_*, in Hugging Face order. */
int64_t peqa_model_linear_count(const peqa_model *m);
peqa_model_linear *peqa_model_linear_at(peqa_model *m, int64_t i); /* NULL if out of range */
/* "model.layers.<l>.self_attn.q_proj" etc. (no ".weight"). */
peqa_status peqa_model_linear_name(const peqa_model *m, int64_t i, char *buf, size_t size);

/* Every stored tensor in Hugging Face order: embed, per layer (input_layernorm, q, k, v, o,
 * post_attention_layernorm, gate, up, down), norm, lm_head (absent when tied). A quantized
 * linear appears as one entry with qt set and its prefix as name. */
typedef struct peqa_model_tensor {
    char name[PEQA_MODEL_NAME_MAX];
    int ndim;          /* 1 or 2 */
    int64_t shape[2];
    int64_t numel;
    float *f32;        /* fp32 data, or NULL */
    peqa_qtensor *qt;  /* a quantized linear, or NULL */
} peqa_model_tensor;
int64_t peqa_model_tensor_count(const peqa_model *m);
peqa_status peqa_model_tensor_at(peqa_model *m, int64_t i, peqa_model_tensor *out);

/* ---- trainable parameters and their gradients ---------------------------------------------- */

typedef enum peqa_param_kind {
    PEQA_PARAM_F32 = 0, /* value points at the fp32 weights (update them in place) */
    PEQA_PARAM_SCALES,  /* qt's scales: N × G, read/write with peqa_qtensor_get/set_scales */
    PEQA_PARAM_ZEROS    /* qt's zero points: N × G, peqa_qtensor_get/set_zeros */
} peqa_param_kind;

typedef struct peqa_model_param {
    char name[PEQA_MODEL_NAME_MAX];
    peqa_param_kind kind;
    int ndim;
    int64_t shape[2];
    int64_t numel;
    float *value;     /* PEQA_PARAM_F32 */
    peqa_qtensor *qt; /* PEQA_PARAM_SCALES / ZEROS */
    float *grad;      /* its gradient in the peqa_model_grads given (NULL if none) */
} peqa_model_param;

/* Gradients of every trainable tensor, in parameter order (one contiguous block):
 *  - full precision: every tensor of peqa_model_tensor_at, in that order (tied: the embedding
 *    gradient holds the sum of the embedding and head contributions);
 *  - quantized: per linear, "<prefix>.scales" then (train_zeros) "<prefix>.qzeros".
 * `scratch` (max numel floats) is used by accumulating backward passes. */
typedef struct peqa_model_grads {
    int quantized, train_zeros;
    int64_t count;    /* trainable tensors */
    float **g;        /* g[i]: numel[i] floats */
    int64_t *numel;
    float *block;     /* all gradients, contiguous, total floats */
    size_t total;
    float *scratch;
} peqa_model_grads;

peqa_status peqa_model_grads_create(const peqa_model *m, int train_zeros, peqa_model_grads **out);
void peqa_model_grads_free(peqa_model_grads *g); /* NULL is fine */
void peqa_model_grads_zero(peqa_model_grads *g);

/* Trainable tensors: count and description (grad from g if not NULL; g must have been made for
 * this model with the same train_zeros). train_zeros is ignored in full-precision mode. */
int64_t peqa_model_param_count(const peqa_model *m, int train_zeros);
peqa_status peqa_model_param_at(peqa_model *m, int train_zeros, int64_t i, peqa_model_grads *g,
                                peqa_model_param *out);

/* ---- training: forward with an activation cache, backward ----------------------------------
 *
 * The cache holds what the backward needs and nothing it can recompute cheaply. Per token per
 * layer (floats): the layer input x (D) and the residual after attention xm (D), the two norms'
 * rstd (2), the rotated q (Hq·hd) and k (Hkv·hd), v (Hkv·hd), the attention output a (the input
 * of o_proj, Hq·hd), the attention's per-row softmax max and sum (2·Hq), and the gate and up
 * projections g, u (2·F). Recomputed in the backward instead of stored: the normalised inputs
 * xn of q/k/v and gate/up (one RMSNorm forward from x or xm and the SAME operation sequence, so
 * the same bits), h = silu(g)·u (the input of down_proj), and the T×T attention probabilities
 * (flash-attention style, see ops.h). Once per token: the final residual, its rstd, the logits
 * (V) and the loss stats. See peqa_model_act_bytes_per_token_*: for LLaMA-7B shapes (D 4096,
 * F 11008, 32 heads of 128) a layer keeps 186,632 bytes per token.
 *
 * The backward consumes the cache (it overwrites the logits with their gradient, g and u with
 * theirs, a with its gradient): run forward again before another backward. */
typedef struct peqa_model_cache peqa_model_cache;

/* A cache for up to max_tokens = B·T tokens per forward (any B, T with B·T <= max_tokens). */
peqa_status peqa_model_cache_create(const peqa_model *m, int64_t max_tokens, peqa_model_cache **out);
void peqa_model_cache_free(peqa_model_cache *c); /* NULL is fine */
size_t peqa_model_cache_bytes(const peqa_model_cache *c);

/* B sequences of T tokens (tokens and targets: B·T int32, row-major [b][t]); targets[b,t] is the
 * token that should follow tokens[b,t] (usually tokens[b,t+1] of a window of T+1) or
 * PEQA_TARGET_IGNORE. Each sequence starts at position 0; T <= max_position_embeddings.
 * *loss = the mean cross-entropy over all non-ignored targets of the batch (0 if none). */
peqa_status peqa_model_forward(peqa_ctx *ctx, peqa_model *m, peqa_model_cache *c, int64_t B, int64_t T,
                               const int32_t *tokens, const int32_t *targets, float *loss);
/* Gradients of dloss · loss (dloss = 1 for a plain step; 1/k when averaging k micro-batches)
 * with respect to every trainable tensor of the model (see peqa_model_grads). accumulate = 0
 * overwrites g, 1 adds to it (each gradient is computed in full into g->scratch, then added
 * elementwise: the sum of micro-batches is a fixed sequence of additions). In quantized mode
 * the input gradient of layer 0's q/k/v is not formed (nothing below it trains). */
peqa_status peqa_model_backward(peqa_ctx *ctx, peqa_model *m, peqa_model_cache *c, peqa_model_grads *g,
                                float dloss, int accumulate);

/* ---- inference ------------------------------------------------------------------------------ */

/* logits (B·T × V) of every position of B sequences of T tokens; no cache, memory for one layer. */
peqa_status peqa_model_logits(peqa_ctx *ctx, peqa_model *m, int64_t B, int64_t T, const int32_t *tokens,
                              float *logits);
/* Cross-entropy of B sequences against targets (as in peqa_model_forward): per-token losses
 * (B·T floats, 0 where ignored; may be NULL) and the mean (may be NULL). The mean has the same
 * bits as peqa_model_forward's loss. */
peqa_status peqa_model_eval(peqa_ctx *ctx, peqa_model *m, int64_t B, int64_t T, const int32_t *tokens,
                            const int32_t *targets, float *losses, float *mean);

/* KV cache of one sequence for generation: per layer, the rotated keys and the values of every
 * position so far (max_len × Hkv·hd floats each). */
typedef struct peqa_model_kv peqa_model_kv;
peqa_status peqa_model_kv_create(const peqa_model *m, int64_t max_len, peqa_model_kv **out);
void peqa_model_kv_free(peqa_model_kv *kv); /* NULL is fine */
void peqa_model_kv_reset(peqa_model_kv *kv);
int64_t peqa_model_kv_len(const peqa_model_kv *kv);
/* Appends n tokens (a prompt, or one sampled token) at positions len .. len+n−1 and writes the
 * logits (V floats) of the last one. The logits have exactly the bits of row len+n−1 of
 * peqa_model_logits over the whole sequence. */
peqa_status peqa_model_decode(peqa_ctx *ctx, peqa_model *m, peqa_model_kv *kv, int64_t n,
                              const int32_t *tokens, float *logits);

#endif
