/* peqa — files of quantized models and of task scales (internal API, not installed).
 *
 * Both are safetensors files (src/safetensors.h: validated reader, atomic writer). All multi-byte
 * values are little-endian; the writers refuse big-endian hosts.
 *
 * ---- The quantized model file (written by `peqa quantize`) ----------------------------------
 *   tensors
 *     model.embed_tokens.weight, model.norm.weight, model.layers.<l>.input_layernorm.weight,
 *     model.layers.<l>.post_attention_layernorm.weight, lm_head.weight (absent when tied)
 *                                  F32, their Hugging Face names and shapes (F16/BF16 are also
 *                                  accepted on load, as for full-precision checkpoints)
 *     per quantized linear <p> = "model.layers.<l>.<self_attn.q_proj|…|mlp.down_proj>":
 *       <p>.qweight   U8  [bytes]  the packed codes exactly as peqa_qtensor_packed gives them:
 *                                  the layout PEQA_PACK_FORMAT_VERSION documented bit by bit in
 *                                  kernels/peqa_kernels.h (16-row tiles × 32-column blocks,
 *                                  padding codes 0), 32-bit words stored little-endian
 *       <p>.scales    F32 [N, G]   s, canonical row-major (row n, group j at n·G + j)
 *       <p>.qzeros    F32 [N, G]   z, canonical (integers for RTN; any finite real is accepted)
 *     Nothing else: an unknown tensor is refused (the file is ours; a stray tensor means a
 *     different or damaged writer).
 *   "__metadata__" (all values are strings)
 *     "format"            "pt" (safetensors/transformers convention)
 *     "peqa.format"       "quantized"
 *     "peqa.version"      "1"          this file layout; a reader refuses versions it does not know
 *     "peqa.pack_format"  "1"          PEQA_PACK_FORMAT_VERSION of the qweight images
 *     "peqa.bits"         "2" | "3" | "4" | "8"
 *     "peqa.group"        "channel" or the group size in decimal (a multiple of 32), as given to
 *                         quantize; a linear with K <= group is per-channel
 *     "peqa.config"       the model configuration as config.json text (peqa_model_config_json)
 *     "peqa.codes_hash"   peqa_model_codes_hash of the linears, 16 lowercase hex digits; the
 *                         reader recomputes it, so damaged codes are detected
 *
 * ---- The scale file (the per-task product of `peqa finetune`) -------------------------------
 *   tensors: per quantized linear <p>: <p>.scales F32 [N, G], and <p>.qzeros F32 [N, G] when
 *   the zero points were trained (then for every linear). Nothing else.
 *   "__metadata__": "format" "pt", "peqa.format" "scales", "peqa.version" "1",
 *   "peqa.pack_format", "peqa.bits", "peqa.group", "peqa.codes_hash" (as above: of the integer
 *   model the scales belong to), "peqa.linears" (count, decimal), "peqa.zeros" ("0" or "1"),
 *   plus any "peqa.train.*" keys the caller adds (informational).
 *   Applying a scale file to a model checks, in this order: the format and version, the bit
 *   width, the number of linears, the codes hash (which covers every linear's N, K, bits, group
 *   and packed codes: a different integer model is refused — naming the group sizes when they
 *   differ, else with both hashes), then every tensor's presence, dtype, shape and finiteness.
 *   Nothing is changed on error.
 *
 * ---- The codes hash ---------------------------------------------------------------------------
 * FNV-1a 64 (offset basis 0xcbf29ce484222325, prime 0x100000001b3, one byte at a time) over:
 *     the 13 ASCII bytes "peqa.codes.v1";
 *     the number of linears as u64;
 *     per linear in Hugging Face order (layer 0 q, k, v, o, gate, up, down, layer 1 …):
 *       N, K, bits, group as stored (K for per-channel), packed byte count, each as u64, then
 *       the packed image, each 32-bit word as 4 little-endian bytes.
 * Scales and zero points are not hashed: they are what a task changes.
 */
#ifndef PEQA_QFILE_H
#define PEQA_QFILE_H

#include <stddef.h>
#include <stdint.h>
#include "model.h"
#include "peqa.h"

#define PEQA_QFILE_VERSION 1
#define PEQA_SCALES_VERSION 1

/* FNV-1a 64 of data[0, n) continuing from h (start with PEQA_FNV_OFFSET). */
#define PEQA_FNV_OFFSET 0xcbf29ce484222325ull
uint64_t peqa_fnv1a64(uint64_t h, const void *data, size_t n);
/* 16 lowercase hex digits and a NUL. */
void peqa_hash_hex(uint64_t h, char out[17]);

/* The codes hash of a quantized model (see above). PEQA_ERR_ARG for a full-precision model. */
peqa_status peqa_model_codes_hash(const peqa_model *m, uint64_t *out);

/* Writes a quantized model as one file (atomically). */
peqa_status peqa_qfile_save(const peqa_model *m, const char *path);
/* Reads a quantized model file, validating every tensor, length, metadata value and the codes
 * hash. Messages start with the path. */
peqa_status peqa_qfile_load(const char *path, peqa_model **out);

/* Loads any model the tools accept: a quantized model file (detected by "peqa.format" =
 * "quantized" in a safetensors file's metadata) or a full-precision Hugging Face checkpoint
 * (a directory, a .safetensors file with config.json beside it, or a shard index .json; see
 * peqa_model_load). A scale file or a training checkpoint given as a model is refused with a
 * message saying what it is and how to use it. */
peqa_status peqa_model_open(const char *path, peqa_model **out);

/* Writes the scales (and, when with_zeros, the zero points) of every linear of a quantized
 * model as a scale file (atomically). extra_meta: NULL or a NULL-terminated list of key, value
 * pairs added to the metadata (keys must start with "peqa.train."). */
peqa_status peqa_scales_save(const peqa_model *m, int with_zeros, const char *path, const char *const *extra_meta);
/* Sets a quantized model's scales (and zero points, if the file has them) from a scale file,
 * after the checks described above; on error the model is unchanged. *had_zeros (may be NULL)
 * tells whether the file carried zero points. */
peqa_status peqa_scales_apply(peqa_model *m, const char *path, int *had_zeros);

/* Small metadata helpers shared with src/train.c. */
/* "channel" for 0, else the decimal group. */
void peqa_group_str(int64_t group, char out[24]);
/* Parses a metadata value as a decimal integer in [lo, hi] (whole string). 0 on failure. */
int peqa_meta_int(const char *s, int64_t lo, int64_t hi, int64_t *out);

#endif
