/* safetensors reader and writer, and sharded checkpoints (model.safetensors.index.json).
 *
 * File layout (formats.md §1; huggingface/safetensors):
 *   bytes [0, 8)          N, the header length, u64 little-endian
 *   bytes [8, 8+N)        header: a UTF-8 JSON object
 *                           {"__metadata__": {"key": "value", ...},          (optional)
 *                            "name": {"dtype": "F32", "shape": [2, 3],
 *                                     "data_offsets": [BEGIN, END]}, ...}
 *   bytes [8+N, 8+N+D)    data buffer; a tensor's bytes are [8+N+BEGIN, 8+N+END), little-endian,
 *                         row-major (C order)
 *
 * The reader checks what the reference implementation checks, in the same order: file at least
 * 8 bytes; N <= 100,000,000; 8 + N <= file size; the header is valid UTF-8; it parses as a
 * JSON object whose "__metadata__" (if present) maps strings to strings and whose other members
 * each have a known "dtype" string, a "shape" array of non-negative integers and a
 * "data_offsets" array of two non-negative integers; sorted by (BEGIN, END) the tensors tile
 * [0, D) exactly (no gap, no overlap, END >= BEGIN); for each tensor the element count times
 * the element size neither overflows 64 bits nor leaves a partial byte, and equals END - BEGIN;
 * and finally 8 + N + D equals the file size (no trailing bytes, nothing missing). It also
 * rejects duplicate keys, which the format forbids. Unknown members inside a tensor entry are
 * ignored, as the reference does. Every message starts with the file's path.
 *
 * The reader keeps the file open and reads a tensor's bytes only when asked, so a checkpoint
 * much larger than memory can be converted tensor by tensor. A peqa_st_file is not safe for
 * concurrent use from several threads.
 *
 * The writer reproduces the reference writer's byte layout: tensors sorted by dtype in
 * descending enum order (larger elements first, so each tensor starts at a multiple of its
 * element size), ties broken by name (bytewise); data offsets assigned contiguously in that
 * order; compact JSON with "__metadata__" first and the tensors in offset order, each entry
 * written as {"dtype":..,"shape":[..],"data_offsets":[..]}; the header padded with spaces to a
 * multiple of 8. It always writes "__metadata__" with "format": "pt" (transformers refuses files
 * without it) plus the caller's keys, sorted bytewise so that output is deterministic (the
 * reference uses hash-map order). The file appears atomically: PATH.tmp is written, flushed,
 * fsync'd and renamed over PATH; on any error PATH is untouched and PATH.tmp is removed.
 */
#ifndef PEQA_SAFETENSORS_H
#define PEQA_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>
#include "peqa.h"

#define PEQA_ST_MAX_HEADER 100000000u

/* The reference's dtypes, in its enum order (which the writer's sort uses). */
typedef enum peqa_st_dtype {
    PEQA_ST_BOOL = 0,
    PEQA_ST_F4,
    PEQA_ST_F6_E2M3,
    PEQA_ST_F6_E3M2,
    PEQA_ST_U8,
    PEQA_ST_I8,
    PEQA_ST_F8_E5M2,
    PEQA_ST_F8_E4M3,
    PEQA_ST_F8_E8M0,
    PEQA_ST_F8_E4M3FNUZ,
    PEQA_ST_F8_E5M2FNUZ,
    PEQA_ST_I16,
    PEQA_ST_U16,
    PEQA_ST_F16,
    PEQA_ST_BF16,
    PEQA_ST_I32,
    PEQA_ST_U32,
    PEQA_ST_F32,
    PEQA_ST_C64,
    PEQA_ST_F64,
    PEQA_ST_I64,
    PEQA_ST_U64,
    PEQA_ST_DTYPE_COUNT
} peqa_st_dtype;

const char *peqa_st_dtype_name(peqa_st_dtype d); /* "F32", ...; "?" if out of range */
int peqa_st_dtype_bits(peqa_st_dtype d);         /* bits per element (4, 6, 8, ..., 64); 0 if invalid */
/* The dtype named by s[0, len), or -1. */
int peqa_st_dtype_from_name(const char *s, size_t len);

/* Exact conversions: every F16 (normal, subnormal, ±0, ±inf, NaN with its payload) and every
 * BF16 value is representable in fp32. */
float peqa_st_f16_to_f32(uint16_t h);
float peqa_st_bf16_to_f32(uint16_t b);
/* Round to nearest, ties to even; overflow gives ±inf; NaN stays NaN (quiet, sign kept). */
uint16_t peqa_st_f32_to_f16(float f);
uint16_t peqa_st_f32_to_bf16(float f);

/* ---- reader ---------------------------------------------------------------------------- */

typedef struct peqa_st_tensor {
    const char *name; /* NUL-terminated; valid while the file is open */
    size_t name_len;  /* names may contain NUL bytes (\u0000); lookups by C string skip those */
    peqa_st_dtype dtype;
    size_t ndim;
    const int64_t *shape; /* ndim entries, each >= 0 */
    uint64_t numel;       /* product of shape (1 for rank 0) */
    uint64_t nbytes;
    uint64_t begin, end;  /* data_offsets, relative to the data buffer */
} peqa_st_tensor;

typedef struct peqa_st_file peqa_st_file;

/* Opens and validates a file; see above. PEQA_ERR_IO if it cannot be opened or read,
 * PEQA_ERR_FORMAT if it is malformed, PEQA_ERR_NOMEM. */
peqa_status peqa_st_open(const char *path, peqa_st_file **out);
void peqa_st_close(peqa_st_file *f); /* NULL is fine */
const char *peqa_st_path(const peqa_st_file *f);

/* Tensors in file (offset) order. */
size_t peqa_st_count(const peqa_st_file *f);
const peqa_st_tensor *peqa_st_tensor_at(const peqa_st_file *f, size_t i);
/* NULL if absent; records no error (for optional tensors such as a tied lm_head). */
const peqa_st_tensor *peqa_st_find(const peqa_st_file *f, const char *name);
/* PEQA_ERR_FORMAT "<path>: no tensor named 'x'" if absent. */
peqa_status peqa_st_get(const peqa_st_file *f, const char *name, const peqa_st_tensor **out);

/* "__metadata__": the value for key (NULL if absent), and iteration in header order. */
const char *peqa_st_metadata(const peqa_st_file *f, const char *key);
size_t peqa_st_metadata_count(const peqa_st_file *f);
int peqa_st_metadata_at(const peqa_st_file *f, size_t i, const char **key, const char **value);

/* Tensor t of file f (t from this file) as fp32: F32, F16 and BF16 convert exactly; other
 * dtypes are PEQA_ERR_FORMAT. `into` needs count == numel (else PEQA_ERR_SHAPE); nothing is
 * promised about dst on error. The allocating form returns a malloc'd array (free()) of
 * *count elements (at least one element is allocated so that a 0-element tensor is not NULL). */
peqa_status peqa_st_read_f32_into(peqa_st_file *f, const peqa_st_tensor *t, float *dst, size_t count);
peqa_status peqa_st_read_f32(peqa_st_file *f, const char *name, float **out, size_t *count);
/* The tensor's bytes exactly as stored (little-endian elements), for any dtype: packed codes
 * (U8, I32), indices (I64), ... `into` needs bytes == nbytes (else PEQA_ERR_SHAPE). */
peqa_status peqa_st_read_raw_into(peqa_st_file *f, const peqa_st_tensor *t, void *dst, size_t bytes);
peqa_status peqa_st_read_raw(peqa_st_file *f, const char *name, void **out, size_t *bytes);

/* ---- a checkpoint: one file or shards ------------------------------------------------------ */

typedef struct peqa_st_set peqa_st_set;

/* path may be
 *  - a directory: uses DIR/model.safetensors.index.json if it exists, else DIR/model.safetensors;
 *  - a file ending in ".json": a shard index {"metadata": {...}, "weight_map": {name: file}}
 *    whose shard files are relative to the index's directory (no absolute paths, no ".."
 *    components). Each distinct shard is opened once, and every tensor the map names must be in
 *    the shard it is mapped to;
 *  - any other file: a single safetensors file. */
peqa_status peqa_st_set_open(const char *path, peqa_st_set **out);
void peqa_st_set_close(peqa_st_set *s); /* NULL is fine */
/* Tensors (the weight_map's names, or the single file's), sorted by name. */
size_t peqa_st_set_count(const peqa_st_set *s);
int peqa_st_set_at(const peqa_st_set *s, size_t i, peqa_st_file **file, const peqa_st_tensor **t);
/* 1 and the tensor's file/info if present, 0 otherwise (no error recorded). */
int peqa_st_set_find(const peqa_st_set *s, const char *name, peqa_st_file **file, const peqa_st_tensor **t);
/* Like find, but PEQA_ERR_FORMAT naming the checkpoint path if absent. */
peqa_status peqa_st_set_get(const peqa_st_set *s, const char *name, peqa_st_file **file,
                            const peqa_st_tensor **t);
size_t peqa_st_set_shard_count(const peqa_st_set *s);
peqa_st_file *peqa_st_set_shard(const peqa_st_set *s, size_t i);

/* ---- writer ---------------------------------------------------------------------------- */

typedef struct peqa_st_writer peqa_st_writer;

peqa_status peqa_st_writer_create(peqa_st_writer **out);
void peqa_st_writer_free(peqa_st_writer *w); /* NULL is fine */
/* Adds a tensor. name and shape are copied; data is NOT: it must stay valid until
 * peqa_st_writer_write returns. data holds the bytes as they go into the file (little-endian
 * elements); bytes must equal numel x element size (else PEQA_ERR_SHAPE). Names must be
 * non-empty valid UTF-8, unique and not "__metadata__" (PEQA_ERR_ARG). */
peqa_status peqa_st_writer_add(peqa_st_writer *w, const char *name, peqa_st_dtype dtype, size_t ndim,
                               const int64_t *shape, const void *data, size_t bytes);
/* Sets a "__metadata__" string (UTF-8); setting a key again replaces its value. "format" is
 * "pt" unless set here. */
peqa_status peqa_st_writer_set_metadata(peqa_st_writer *w, const char *key, const char *value);
/* Writes the file atomically (see above). */
peqa_status peqa_st_writer_write(const peqa_st_writer *w, const char *path);

#endif
