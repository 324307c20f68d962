/* Token data: llm.c token shards, headerless uint16 token files, the built-in byte-level
 * tokenizer, loading "a dataset" from any of these, and an atomic file writer.
 *
 * llm.c shard (formats.md §6.1; karpathy/llm.c dev/data/data_common.py, llmc/dataloader.h)
 *   bytes [0, 1024)   header: 256 x int32 little-endian
 *                       [0] magic, [1] version, [2] token count (> 0), [3..255] unused (the
 *                       writer stores 0; the reader ignores them, as llm.c does)
 *   bytes [1024, ...) count tokens, little-endian, of the width the (magic, version) pair names:
 *                       magic 20240520, version 1: uint16 tokens (the GPT-2 variant, vocab <= 65536)
 *                       magic 20240801, version 7: uint32 tokens (the LLaMA-3 variant that
 *                                                  llm.c's data_common.py writes; formats.md §6.1)
 *   The file is exactly 1024 + count x width bytes: nothing missing, nothing after the tokens.
 *   llm.c's writer asserts count < 2^31 and its reader count > 0; the header field is an int32,
 *   so 1 <= count <= 2^31 - 1 here too. Magic 20240522 (llm.c eval files) is recognised only to
 *   say what the file is.
 *
 * Headerless uint16 (formats.md §6.2): nanoGPT train.bin/val.bin and llama2.c's pretokenized
 * TinyStories shards are bare little-endian uint16 token ids; the file length must be even.
 *
 * Byte-level tokenizer (the built-in demo vocabulary): ids 0..255 are the bytes 0x00..0xFF,
 * 256 is BOS, 257 is EOS; vocabulary size 258. Every byte string encodes and decodes losslessly.
 *
 * All readers check every length against the file and report errors starting with the file's
 * path. Token arrays are always uint32 in memory whatever the width on disk. Writers go through
 * peqa_afile: PATH.tmp is written, flushed, fsync'd and renamed over PATH, so PATH is either the
 * old file or the complete new one; on error PATH.tmp is removed and PATH is untouched.
 */
#ifndef PEQA_TOKENS_H
#define PEQA_TOKENS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include "peqa.h"

/* ---- atomic file writing ---------------------------------------------------------------- */

typedef struct peqa_afile {
    FILE *fp;
    char *tmp;        /* PATH.tmp */
    const char *path; /* the caller's string; must stay valid until commit/abort */
    int failed;       /* a write failed; commit reports it */
    int err;          /* errno of the first failure */
} peqa_afile;

/* Creates PATH.tmp. */
peqa_status peqa_afile_open(peqa_afile *f, const char *path);
/* Appends n bytes; errors are remembered and reported by commit (so a sequence of writes needs
 * one check). */
void peqa_afile_write(peqa_afile *f, const void *data, size_t n);
/* Flushes, fsyncs, closes and renames PATH.tmp to PATH. On any error removes PATH.tmp. Either
 * way f is finished afterwards. */
peqa_status peqa_afile_commit(peqa_afile *f);
/* Closes and removes PATH.tmp (after an error of the caller's own). NULL-safe; idempotent. */
void peqa_afile_abort(peqa_afile *f);
/* The whole of data[0, len) as PATH, atomically. */
peqa_status peqa_write_file_atomic(const char *path, const void *data, size_t len);

/* ---- llm.c shards ---------------------------------------------------------------------- */

#define PEQA_SHARD_HEADER_INTS 256
#define PEQA_SHARD_HEADER_BYTES 1024
#define PEQA_SHARD_MAGIC_U16 20240520
#define PEQA_SHARD_VERSION_U16 1
#define PEQA_SHARD_MAGIC_U32 20240801
#define PEQA_SHARD_VERSION_U32 7
#define PEQA_SHARD_MAGIC_EVAL 20240522 /* llm.c eval files: recognised, rejected */
#define PEQA_SHARD_MAX_COUNT 2147483647u

/* Reads a shard into a new malloc'd uint32 array (free()); *width (may be NULL) gets 2 or 4.
 * max_tokens: a count above it is PEQA_ERR_RANGE, checked before anything is allocated; 0 means
 * no limit beyond what memory can address. */
peqa_status peqa_shard_read(const char *path, size_t max_tokens, uint32_t **tokens, size_t *count,
                            int *width);
/* Writes tokens[0, count) as a shard of the given width: 2 (magic 20240520 v1; every token must be
 * <= 65535, else PEQA_ERR_RANGE naming the first offender), 4 (magic 20240801 v7), or 0 for the
 * smaller width that holds every token. 1 <= count <= PEQA_SHARD_MAX_COUNT (PEQA_ERR_SHAPE). */
peqa_status peqa_shard_write(const char *path, const uint32_t *tokens, size_t count, int width);

/* Headerless little-endian uint16 tokens (nanoGPT, llama2.c pretokenized data). max_tokens as
 * for peqa_shard_read. An empty file is an error (nothing to train or evaluate on). */
peqa_status peqa_raw_u16_read(const char *path, size_t max_tokens, uint32_t **tokens, size_t *count);

/* ---- byte-level tokenizer ----------------------------------------------------------------- */

#define PEQA_BYTE_BOS 256u
#define PEQA_BYTE_EOS 257u
#define PEQA_BYTE_VOCAB 258u

/* Flags for encoders (here and in llama2c.h). */
#define PEQA_TOK_ADD_BOS 1u
#define PEQA_TOK_ADD_EOS 2u

/* text[0, len) (any bytes, NUL included) -> [BOS] bytes [EOS] in a new malloc'd array (free();
 * at least one element is allocated, so an empty result is not NULL). */
peqa_status peqa_byte_encode(const void *text, size_t len, unsigned flags, uint32_t **tokens, size_t *count);
/* tokens -> bytes in a new malloc'd buffer with a NUL appended (not counted in *len). BOS and
 * EOS produce nothing; an id >= 258 is PEQA_ERR_RANGE naming its position. */
peqa_status peqa_byte_decode(const uint32_t *tokens, size_t count, char **text, size_t *len);

/* ---- datasets ------------------------------------------------------------------------------ */

typedef enum peqa_data_format {
    /* An llm.c shard if the file starts with one of the shard magics (20240520, 20240801 or the
     * eval magic, which then fails with a clear message); otherwise a file whose name ends in
     * ".bin" is an error (binary without a known header: pass PEQA_DATA_RAW_U16 explicitly for
     * headerless uint16 data); anything else is plain text for the byte tokenizer. Peeking
     * needs a seekable file: for a pipe, name the format. */
    PEQA_DATA_AUTO = 0,
    PEQA_DATA_SHARD,   /* llm.c shard */
    PEQA_DATA_TEXT,    /* any bytes, tokenized with the byte tokenizer, no BOS/EOS added */
    PEQA_DATA_RAW_U16  /* headerless uint16 */
} peqa_data_format;

/* Loads a dataset as a new malloc'd uint32 array (free()) of *count >= 1 tokens. max_tokens as for
 * peqa_shard_read (for text, the file's byte count is checked against it before reading). An
 * empty text file is an error. *used (may be NULL) gets the format actually read. */
peqa_status peqa_dataset_load(const char *path, peqa_data_format fmt, size_t max_tokens, uint32_t **tokens,
                              size_t *count, peqa_data_format *used);

/* PEQA_ERR_RANGE "<what>: token <id> at position <i> is outside the vocabulary of <vocab>" for
 * the first token >= vocab. */
peqa_status peqa_tokens_check_vocab(const char *what, const uint32_t *tokens, size_t count, uint32_t vocab);

#endif
