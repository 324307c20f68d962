/* llama2.c import: version-0 checkpoints -> Hugging Face-named fp32 safetensors + config.json,
 * the q/k rotary row permutation between the Meta and Hugging Face layouts, and llama2.c's
 * tokenizer.bin with an encoder and a decoder.
 *
 * Checkpoint, version 0 ("legacy", the only format stock run.c reads; formats.md §6.3)
 *   int32 dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len     28 bytes, LE
 *   then fp32 (LE), every matrix row-major [out][in]:
 *     token_embedding [vocab, dim]
 *     rms_att  [L, dim]          wq [L, dim, dim]        wk [L, kv_dim, dim]   wv [L, kv_dim, dim]
 *     wo [L, dim, dim]           rms_ffn [L, dim]
 *     w1 [L, hidden, dim] (gate) w2 [L, dim, hidden] (down)  w3 [L, hidden, dim] (up)
 *     rms_final [dim]
 *     freq_cis_real [seq_len, head_size/2]   freq_cis_imag [seq_len, head_size/2]  (RoPE tables
 *                                             the exporter writes and run.c skips; not converted)
 *     wcls [vocab, dim]           only when the header's vocab_size is negative
 *   head_size = dim / n_heads, kv_dim = head_size * n_kv_heads. A negative vocab_size means "the
 *   classifier is not shared with the embedding"; the vocabulary size is its absolute value.
 *
 * Header validation: every field positive (vocab_size non-zero); dim divisible by n_heads; the
 * head size even (RoPE rotates pairs); n_kv_heads <= n_heads and dividing it; every size
 * computed without overflow (PEQA_ERR_OVERFLOW); the file exactly 28 + 4 x (number of floats)
 * bytes, with the classifier present exactly when vocab_size < 0 (a file that would fit with the
 * other sign gets a message saying so). Files starting with the version-1/2 magic "ak42" are
 * recognised and rejected with a message. Conversion also rejects NaN/Inf weights
 * (PEQA_ERR_NONFINITE naming the tensor and element).
 *
 * Conversion output (formats.md §2.2-2.4, §7): names
 *   model.embed_tokens.weight [vocab, dim]               <- token_embedding
 *   model.layers.{i}.input_layernorm.weight [dim]        <- rms_att[i]
 *   model.layers.{i}.self_attn.q_proj.weight [dim, dim]  <- wq[i], rows permuted Meta -> HF
 *   model.layers.{i}.self_attn.k_proj.weight [kv_dim, dim] <- wk[i], rows permuted Meta -> HF
 *   model.layers.{i}.self_attn.v_proj.weight [kv_dim, dim] <- wv[i]
 *   model.layers.{i}.self_attn.o_proj.weight [dim, dim]  <- wo[i]
 *   model.layers.{i}.post_attention_layernorm.weight [dim] <- rms_ffn[i]
 *   model.layers.{i}.mlp.gate_proj.weight [hidden, dim]  <- w1[i]
 *   model.layers.{i}.mlp.up_proj.weight [hidden, dim]    <- w3[i]
 *   model.layers.{i}.mlp.down_proj.weight [dim, hidden]  <- w2[i]
 *   model.norm.weight [dim]                              <- rms_final
 *   lm_head.weight [vocab, dim]                          <- wcls (only when not shared; a shared
 *                                                           classifier is tie_word_embeddings)
 * all F32, and config.json with the LlamaConfig keys architectures ["LlamaForCausalLM"],
 * model_type "llama", hidden_size, intermediate_size, num_hidden_layers, num_attention_heads,
 * num_key_value_heads, head_dim, vocab_size, max_position_embeddings (= seq_len), hidden_act
 * "silu", rms_norm_eps 1e-05 and rope_theta 10000.0 (run.c hard-codes both), attention_bias and
 * mlp_bias false, tie_word_embeddings, bos_token_id 1 / eos_token_id 2 (llama2.c's ids; only when
 * vocab > 2), torch_dtype "float32". Both files are written atomically.
 *
 * Rotary layouts (formats.md §2.6). Meta/llama2.c rotate adjacent pairs (2j, 2j+1) of each head;
 * Hugging Face rotates (j, j + hd/2) ("rotate_half"). The same attention results come out when
 * the rows of q_proj (n_heads heads) and k_proj (n_kv_heads heads) are permuted, per head h,
 * i in {0, 1}, j in [0, hd/2):
 *     HF row  h*hd + i*(hd/2) + j   ==   Meta row  h*hd + 2*j + i
 * v, o and the MLP are not permuted; columns never are.
 */
#ifndef PEQA_LLAMA2C_H
#define PEQA_LLAMA2C_H

#include <stddef.h>
#include <stdint.h>
#include "peqa.h"
#include "tokens.h"

#define PEQA_L2C_HEADER_BYTES 28
#define PEQA_L2C_MAGIC_V1 0x616b3432u /* "ak42": llama2.c export versions 1 and 2 */

typedef struct peqa_l2c_config {
    int64_t dim, hidden_dim, n_layers, n_heads, n_kv_heads;
    int64_t vocab_size;    /* |header value| */
    int64_t seq_len;
    int shared_classifier; /* 1 when the header's vocab_size is positive */
    int64_t head_dim;      /* dim / n_heads */
    int64_t kv_dim;        /* head_dim * n_kv_heads */
    uint64_t n_floats;     /* fp32 values after the header */
    uint64_t file_bytes;   /* 28 + 4 * n_floats: the exact file size */
} peqa_l2c_config;

/* Validates a header given as its 7 values (see above) and fills cfg; `what` (a path) starts the
 * messages. Does not look at any file. */
peqa_status peqa_l2c_config_from_header(const char *what, const int32_t header[7], peqa_l2c_config *cfg);
/* Reads and validates the header of a checkpoint and checks the file's length. */
peqa_status peqa_l2c_read_config(const char *path, peqa_l2c_config *cfg);

/* Converts a checkpoint into st_path (safetensors) and config_path (config.json); see above. The
 * whole checkpoint is held in memory once (q/k are permuted in place). */
peqa_status peqa_l2c_convert(const char *ckpt_path, const char *st_path, const char *config_path);
/* The same into out_dir/model.safetensors and out_dir/config.json, creating out_dir (one level)
 * if it does not exist: the layout peqa_st_set_open(out_dir) and transformers read. */
peqa_status peqa_l2c_convert_dir(const char *ckpt_path, const char *out_dir);
/* The config.json text for cfg, in a new malloc'd NUL-terminated string (free()). */
peqa_status peqa_l2c_config_json(const peqa_l2c_config *cfg, char **json, size_t *len);

/* Row permutations of a q or k projection: rows of row_bytes bytes (any element type), n_heads x
 * head_dim rows; head_dim even, dst and src must not overlap. The two are inverses. */
peqa_status peqa_qk_rows_meta_to_hf(void *dst, const void *src, int64_t n_heads, int64_t head_dim,
                                      size_t row_bytes);
peqa_status peqa_qk_rows_hf_to_meta(void *dst, const void *src, int64_t n_heads, int64_t head_dim,
                                      size_t row_bytes);

/* ---- tokenizer.bin (formats.md §6.4) -----------------------------------------------------------
 *   int32 max_token_length                 (> 0)
 *   vocab_size times:  f32 score, int32 len, len bytes (no NUL; any bytes)
 * vocab_size is not stored: it comes from the checkpoint. Checks: max_token_length > 0; every
 * score finite (the encoder orders merges by score); 0 <= len <= max_token_length; every entry
 * complete; with a vocab_size given, exactly that many entries and nothing after them; with
 * vocab_size 0, entries up to the end of the file (at least one).
 *
 * Pieces are SentencePiece pieces with U+2581 replaced by a space. Conventions of llama2.c that
 * the encoder and decoder follow: id 1 is BOS and id 2 is EOS; a piece of exactly the form
 * "<0xXX>" (two hex digits) stands for the single byte XX ("byte fallback"); after BOS the leading
 * space of the next piece is dropped (it is the "dummy prefix" the encoder adds).
 *
 * Encoding (the same result as run.c's encoder):
 *  1. Unless PEQA_L2C_NO_PREFIX, a non-empty text gets a space in front (SentencePiece's dummy
 *     prefix: words are pieces that begin with a space, so the first word needs one too).
 *  2. The text is cut into UTF-8 characters (a byte plus up to three following continuation bytes
 *     10xxxxxx; malformed input just gives shorter units, every byte lands somewhere). A character
 *     that is a piece becomes that token; otherwise each of its bytes becomes its <0xXX> token. A
 *     byte with neither is PEQA_ERR_RANGE naming its offset.
 *  3. Then, repeatedly: among all adjacent token pairs whose concatenated pieces are themselves a
 *     piece of the vocabulary, merge the pair whose resulting piece has the highest score; on
 *     equal scores the leftmost pair. Stop when no adjacent pair concatenates to a piece. Byte
 *     fallback tokens never merge (their piece text "<0xXX>" is not their content), and merges
 *     never produce a byte-fallback token. When several ids share the same piece text the lowest
 *     id is used. A heap of candidate pairs with stale-entry checks makes this O(n log n)
 *     instead of run.c's O(n^2) rescans; the merge order is the same.
 *  4. PEQA_TOK_ADD_BOS / PEQA_TOK_ADD_EOS put ids 1 / 2 around the result.
 */

typedef struct peqa_l2c_tokenizer peqa_l2c_tokenizer;

#define PEQA_L2C_BOS 1u
#define PEQA_L2C_EOS 2u
#define PEQA_L2C_NO_PREFIX 4u /* encoder flag, with PEQA_TOK_ADD_BOS / PEQA_TOK_ADD_EOS */
/* Most bytes of text one encode call takes (symbols are indexed with 32 bits); it needs about 16
 * bytes of memory per byte of text. Large corpora are encoded in parts (per document or line, as
 * llama2.c's tinystories.py does). */
#define PEQA_L2C_MAX_ENCODE ((size_t)0xFFFFFFF0u)

/* vocab_size: the checkpoint's (1 .. INT32_MAX), or 0 to take every entry in the file. */
peqa_status peqa_l2c_tokenizer_load(const char *path, int64_t vocab_size, peqa_l2c_tokenizer **out);
void peqa_l2c_tokenizer_free(peqa_l2c_tokenizer *t); /* NULL is fine */
uint32_t peqa_l2c_tokenizer_vocab(const peqa_l2c_tokenizer *t);
uint32_t peqa_l2c_tokenizer_max_len(const peqa_l2c_tokenizer *t); /* max_token_length from the file */
/* The raw piece of id (not NUL-terminated; may contain NUL) and its score; NULL if id is out of
 * range. */
const char *peqa_l2c_tokenizer_piece(const peqa_l2c_tokenizer *t, uint32_t id, size_t *len, float *score);

/* text[0, len) -> tokens in a new malloc'd array (free(); never NULL on success). The tokenizer is
 * only read, so one tokenizer may encode on several threads at once. */
peqa_status peqa_l2c_encode(const peqa_l2c_tokenizer *t, const char *text, size_t len, unsigned flags,
                            uint32_t **tokens, size_t *count);
/* The bytes token id stands for, given the token before it (prev; any value >= vocab, such as
 * UINT32_MAX, for none): byte-fallback tokens give their byte, BOS and EOS give nothing, a piece
 * after BOS loses a leading space, anything else is its piece. *bytes points into the tokenizer.
 * PEQA_ERR_RANGE for an id outside the vocabulary. */
peqa_status peqa_l2c_decode_token(const peqa_l2c_tokenizer *t, uint32_t prev, uint32_t id, const char **bytes,
                                  size_t *len);
/* A whole sequence, token by token as above (prev for tokens[0] as given), into a new malloc'd
 * buffer with a NUL appended (not counted in *len). decode(BOS-prefixed encode(text)) == text for
 * any text the vocabulary can represent. */
peqa_status peqa_l2c_decode(const peqa_l2c_tokenizer *t, uint32_t prev, const uint32_t *tokens, size_t count,
                            char **text, size_t *len);

#endif
