/* Token data: llm.c shards, headerless uint16 tokens, the byte tokenizer, datasets, atomic
 * writes. Formats and rules are described in tokens.h. Every multi-byte value is assembled from
 * bytes (little-endian on disk), so the code is independent of the host's byte order. */
#define _FILE_OFFSET_BITS 64 /* 64-bit off_t in fstat on 32-bit hosts */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>
#include "internal.h"
#include "tokens.h"

/* Tokens are converted between disk and memory through a buffer of this many bytes. */
#define CHUNK_BYTES 65536

static uint32_t le32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void put32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++) p[i] = (unsigned char)(v >> (8 * i));
}

/* ---- atomic file writing ---------------------------------------------------------------- */

peqa_status peqa_afile_open(peqa_afile *f, const char *path)
{
    if (!f || !path) return peqa__fail(PEQA_ERR_NULL, "peqa_afile_open: NULL argument");
    memset(f, 0, sizeof *f);
    size_t pl = strlen(path);
    if (pl == 0) return peqa__fail(PEQA_ERR_ARG, "peqa_afile_open: empty path");
    f->tmp = malloc(pl + 5);
    if (!f->tmp) return peqa__fail(PEQA_ERR_NOMEM, "%s: out of memory", path);
    memcpy(f->tmp, path, pl);
    memcpy(f->tmp + pl, ".tmp", 5);
    f->path = path;
    f->fp = fopen(f->tmp, "wb");
    if (!f->fp) {
        peqa_status st = peqa__fail(PEQA_ERR_IO, "%s: cannot create '%s': %s", path, f->tmp, strerror(errno));
        free(f->tmp);
        f->tmp = NULL;
        return st;
    }
    return PEQA_OK;
}

void peqa_afile_write(peqa_afile *f, const void *data, size_t n)
{
    if (!f || !f->fp || f->failed || n == 0) return;
    if (fwrite(data, 1, n, f->fp) != n) {
        f->failed = 1;
        f->err = errno;
    }
}

peqa_status peqa_afile_commit(peqa_afile *f)
{
    if (!f || !f->fp) return peqa__fail(PEQA_ERR_ARG, "peqa_afile_commit: file is not open");
    /* The data must be on disk before the rename makes it visible under the final name, or a
     * crash could leave a complete-looking name with missing contents. */
    int ok = !f->failed;
    int e = f->err;
    if (ok && (fflush(f->fp) != 0 || fsync(fileno(f->fp)) != 0)) ok = 0, e = errno;
    if (fclose(f->fp) != 0 && ok) ok = 0, e = errno;
    f->fp = NULL;
    peqa_status st = PEQA_OK;
    if (!ok) {
        st = peqa__fail(PEQA_ERR_IO, "%s: writing '%s' failed: %s", f->path, f->tmp, strerror(e));
        remove(f->tmp);
    } else if (rename(f->tmp, f->path) != 0) {
        st = peqa__fail(PEQA_ERR_IO, "%s: cannot rename '%s' to it: %s", f->path, f->tmp, strerror(errno));
        remove(f->tmp);
    }
    free(f->tmp);
    f->tmp = NULL;
    return st;
}

void peqa_afile_abort(peqa_afile *f)
{
    if (!f) return;
    if (f->fp) fclose(f->fp);
    f->fp = NULL;
    if (f->tmp) remove(f->tmp);
    free(f->tmp);
    f->tmp = NULL;
}

peqa_status peqa_write_file_atomic(const char *path, const void *data, size_t len)
{
    if (!path || (!data && len)) return peqa__fail(PEQA_ERR_NULL, "peqa_write_file_atomic: NULL argument");
    peqa_afile f;
    peqa_status st = peqa_afile_open(&f, path);
    if (st) return st;
    peqa_afile_write(&f, data, len);
    return peqa_afile_commit(&f);
}

/* ---- reading helpers ------------------------------------------------------------------------ */

/* Opens path for reading. *size is the file's length when it is a regular file (size_known = 1);
 * for pipes and devices the readers rely on reading exactly and then finding end-of-file. */
static peqa_status open_in(const char *path, FILE **fp, uint64_t *size, int *size_known)
{
    *fp = NULL;
    *size = 0;
    *size_known = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return peqa__fail(PEQA_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fileno(f), &sb) != 0) {
        int e = errno;
        fclose(f);
        return peqa__fail(PEQA_ERR_IO, "%s: cannot stat: %s", path, strerror(e));
    }
    if (S_ISDIR(sb.st_mode)) {
        fclose(f);
        return peqa__fail(PEQA_ERR_IO, "%s: is a directory", path);
    }
    if (S_ISREG(sb.st_mode) && sb.st_size >= 0) {
        *size = (uint64_t)sb.st_size;
        *size_known = 1;
    }
    *fp = f;
    return PEQA_OK;
}

/* Reads up to n bytes; *got is how many arrived before end-of-file. PEQA_ERR_IO on a read error. */
static peqa_status read_some(FILE *f, const char *path, void *buf, size_t n, size_t *got)
{
    *got = fread(buf, 1, n, f);
    if (*got < n && ferror(f)) return peqa__fail(PEQA_ERR_IO, "%s: read error: %s", path, strerror(errno));
    return PEQA_OK;
}

/* After the last expected byte: anything more is an error (the file grew, or its size was not
 * knowable up front). */
static peqa_status expect_eof(FILE *f, const char *path, uint64_t expected)
{
    int c = fgetc(f);
    if (c != EOF)
        return peqa__fail(PEQA_ERR_FORMAT, "%s: trailing bytes after the expected %llu bytes", path,
                          (unsigned long long)expected);
    if (ferror(f)) return peqa__fail(PEQA_ERR_IO, "%s: read error: %s", path, strerror(errno));
    return PEQA_OK;
}

static size_t effective_max(size_t max_tokens)
{
    size_t cap = SIZE_MAX / sizeof(uint32_t);
    return (max_tokens == 0 || max_tokens > cap) ? cap : max_tokens;
}

/* Reads exactly count tokens of `width` bytes (2 or 4, little-endian) into a new array. */
static peqa_status read_tokens(FILE *f, const char *path, uint64_t data_start, size_t count, int width,
                               uint32_t **out)
{
    *out = NULL;
    uint32_t *t = malloc((count ? count : 1) * sizeof *t);
    if (!t) return peqa__fail(PEQA_ERR_NOMEM, "%s: out of memory for %zu tokens", path, count);
    unsigned char *buf = malloc(CHUNK_BYTES);
    if (!buf) {
        free(t);
        return peqa__fail(PEQA_ERR_NOMEM, "%s: out of memory", path);
    }
    size_t per = CHUNK_BYTES / (size_t)width, done = 0;
    peqa_status st = PEQA_OK;
    while (done < count) {
        size_t n = count - done < per ? count - done : per, got;
        st = read_some(f, path, buf, n * (size_t)width, &got);
        if (st) break;
        if (got != n * (size_t)width) {
            uint64_t have = data_start + (uint64_t)done * (uint64_t)width + got;
            st = peqa__fail(PEQA_ERR_FORMAT, "%s: truncated: ends after %llu bytes, inside token %zu of %zu", path,
                            (unsigned long long)have, done + got / (size_t)width, count);
            break;
        }
        for (size_t i = 0; i < n; i++)
            t[done + i] = width == 2 ? (uint32_t)buf[2 * i] | (uint32_t)buf[2 * i + 1] << 8 : le32(buf + 4 * i);
        done += n;
    }
    free(buf);
    if (st) {
        free(t);
        return st;
    }
    *out = t;
    return PEQA_OK;
}

/* ---- llm.c shards ---------------------------------------------------------------------- */

/* The token width a (magic, version) pair names, or a message about why there is none. */
static peqa_status shard_width(const char *path, uint32_t magic, uint32_t version, int *width)
{
    if (magic == PEQA_SHARD_MAGIC_U16) {
        if (version != PEQA_SHARD_VERSION_U16)
            return peqa__fail(PEQA_ERR_FORMAT,
                              "%s: unsupported llm.c shard version %u for magic %u (uint16 shards are version %u)",
                              path, version, magic, PEQA_SHARD_VERSION_U16);
        *width = 2;
        return PEQA_OK;
    }
    if (magic == PEQA_SHARD_MAGIC_U32) {
        if (version != PEQA_SHARD_VERSION_U32)
            return peqa__fail(PEQA_ERR_FORMAT,
                              "%s: unsupported llm.c shard version %u for magic %u (uint32 shards are version %u)",
                              path, version, magic, PEQA_SHARD_VERSION_U32);
        *width = 4;
        return PEQA_OK;
    }
    if (magic == PEQA_SHARD_MAGIC_EVAL)
        return peqa__fail(PEQA_ERR_FORMAT, "%s: an llm.c evaluation file (magic %u), not a token shard", path, magic);
    return peqa__fail(PEQA_ERR_FORMAT, "%s: bad magic %u: llm.c token shards start with int32 %u (uint16 tokens) or %u "
                      "(uint32 tokens)", path, magic, PEQA_SHARD_MAGIC_U16, PEQA_SHARD_MAGIC_U32);
}

static peqa_status shard_read_open(FILE *f, const char *path, uint64_t size, int size_known, size_t max_tokens,
                                   uint32_t **tokens, size_t *count, int *width)
{
    unsigned char h[PEQA_SHARD_HEADER_BYTES];
    size_t got;
    peqa_status st = read_some(f, path, h, sizeof h, &got);
    if (st) return st;
    if (got < sizeof h)
        return peqa__fail(PEQA_ERR_FORMAT, "%s: file is %zu bytes, shorter than the %d-byte llm.c shard header", path,
                          got, PEQA_SHARD_HEADER_BYTES);
    uint32_t magic = le32(h), version = le32(h + 4), rawcount = le32(h + 8);
    int w = 0;
    st = shard_width(path, magic, version, &w);
    if (st) return st;
    /* The count is an int32: anything with the top bit set is negative. */
    if (rawcount == 0 || rawcount > PEQA_SHARD_MAX_COUNT)
        return peqa__fail(PEQA_ERR_FORMAT, "%s: token count %lld in the header is not positive", path,
                          rawcount > PEQA_SHARD_MAX_COUNT ? (long long)rawcount - 4294967296LL : (long long)rawcount);
    uint64_t expected = PEQA_SHARD_HEADER_BYTES + (uint64_t)rawcount * (uint64_t)w;
    if (size_known && size != expected)
        return peqa__fail(PEQA_ERR_FORMAT, "%s: file is %llu bytes but the header promises %u tokens of %d bytes = "
                          "%llu bytes (%s)", path, (unsigned long long)size, rawcount, w,
                          (unsigned long long)expected, size < expected ? "truncated" : "trailing bytes");
    if ((uint64_t)rawcount > (uint64_t)effective_max(max_tokens))
        return peqa__fail(PEQA_ERR_RANGE, "%s: %u tokens, more than the limit of %zu", path, rawcount,
                          effective_max(max_tokens));
    st = read_tokens(f, path, PEQA_SHARD_HEADER_BYTES, rawcount, w, tokens);
    if (st) return st;
    st = expect_eof(f, path, expected);
    if (st) {
        free(*tokens);
        *tokens = NULL;
        return st;
    }
    *count = rawcount;
    if (width) *width = w;
    return PEQA_OK;
}

peqa_status peqa_shard_read(const char *path, size_t max_tokens, uint32_t **tokens, size_t *count, int *width)
{
    if (!path || !tokens || !count) return peqa__fail(PEQA_ERR_NULL, "peqa_shard_read: NULL argument");
    *tokens = NULL;
    *count = 0;
    FILE *f;
    uint64_t size;
    int known;
    peqa_status st = open_in(path, &f, &size, &known);
    if (st) return st;
    st = shard_read_open(f, path, size, known, max_tokens, tokens, count, width);
    fclose(f);
    return st;
}

peqa_status peqa_shard_write(const char *path, const uint32_t *tokens, size_t count, int width)
{
    if (!path || (!tokens && count)) return peqa__fail(PEQA_ERR_NULL, "peqa_shard_write: NULL argument");
    if (count == 0 || count > PEQA_SHARD_MAX_COUNT)
        return peqa__fail(PEQA_ERR_SHAPE, "%s: an llm.c shard holds 1 to %u tokens, not %zu", path,
                          PEQA_SHARD_MAX_COUNT, count);
    if (width != 0 && width != 2 && width != 4)
        return peqa__fail(PEQA_ERR_ARG, "%s: token width %d is not 2, 4 or 0 (automatic)", path, width);
    size_t first_big = count;
    for (size_t i = 0; i < count; i++)
        if (tokens[i] > 65535u) {
            first_big = i;
            break;
        }
    if (width == 0) width = first_big < count ? 4 : 2;
    if (width == 2 && first_big < count)
        return peqa__fail(PEQA_ERR_RANGE, "%s: token %u at position %zu does not fit a uint16 shard", path,
                          tokens[first_big], first_big);
    unsigned char h[PEQA_SHARD_HEADER_BYTES];
    memset(h, 0, sizeof h);
    put32(h, width == 2 ? PEQA_SHARD_MAGIC_U16 : PEQA_SHARD_MAGIC_U32);
    put32(h + 4, width == 2 ? PEQA_SHARD_VERSION_U16 : PEQA_SHARD_VERSION_U32);
    put32(h + 8, (uint32_t)count);
    unsigned char *buf = malloc(CHUNK_BYTES);
    if (!buf) return peqa__fail(PEQA_ERR_NOMEM, "%s: out of memory", path);
    peqa_afile af;
    peqa_status st = peqa_afile_open(&af, path);
    if (st) {
        free(buf);
        return st;
    }
    peqa_afile_write(&af, h, sizeof h);
    size_t per = CHUNK_BYTES / (size_t)width;
    for (size_t done = 0; done < count && !af.failed;) {
        size_t n = count - done < per ? count - done : per;
        for (size_t i = 0; i < n; i++) {
            uint32_t v = tokens[done + i];
            if (width == 2) {
                buf[2 * i] = (unsigned char)v;
                buf[2 * i + 1] = (unsigned char)(v >> 8);
            } else {
                put32(buf + 4 * i, v);
            }
        }
        peqa_afile_write(&af, buf, n * (size_t)width);
        done += n;
    }
    free(buf);
    return peqa_afile_commit(&af);
}

/* ---- headerless uint16 ---------------------------------------------------------------------- */

/* Reads the rest of f (from its start) as uint16 tokens, at most max of them. */
static peqa_status raw_u16_rest(FILE *f, const char *path, uint64_t size, int known, size_t max, uint32_t **tokens,
                                size_t *count)
{
    if (known) {
        if (size == 0) return peqa__fail(PEQA_ERR_FORMAT, "%s: empty file, no tokens", path);
        if (size % 2)
            return peqa__fail(PEQA_ERR_FORMAT, "%s: %llu bytes is odd: not a whole number of uint16 tokens", path,
                              (unsigned long long)size);
        if (size / 2 > (uint64_t)max)
            return peqa__fail(PEQA_ERR_RANGE, "%s: %llu tokens, more than the limit of %zu", path,
                              (unsigned long long)(size / 2), max);
        peqa_status st = read_tokens(f, path, 0, (size_t)(size / 2), 2, tokens);
        if (st) return st;
        st = expect_eof(f, path, size);
        if (st) {
            free(*tokens);
            *tokens = NULL;
            return st;
        }
        *count = (size_t)(size / 2);
        return PEQA_OK;
    }
    /* Unknown length (a pipe): grow as the data arrives, stopping one token past the limit. */
    size_t cap = 0, n = 0;
    uint32_t *t = NULL;
    unsigned char pair[2];
    for (;;) {
        size_t got;
        peqa_status st = read_some(f, path, pair, 2, &got);
        if (st) {
            free(t);
            return st;
        }
        if (got == 0) break;
        if (got == 1) {
            free(t);
            return peqa__fail(PEQA_ERR_FORMAT, "%s: odd number of bytes: not a whole number of uint16 tokens", path);
        }
        if (n == max) {
            free(t);
            return peqa__fail(PEQA_ERR_RANGE, "%s: more tokens than the limit of %zu", path, max);
        }
        if (n == cap) {
            size_t ncap = cap ? (cap > max / 2 ? max : cap * 2) : 4096;
            if (ncap > max) ncap = max;
            uint32_t *nt = realloc(t, ncap * sizeof *nt);
            if (!nt) {
                free(t);
                return peqa__fail(PEQA_ERR_NOMEM, "%s: out of memory", path);
            }
            t = nt, cap = ncap;
        }
        t[n++] = (uint32_t)pair[0] | (uint32_t)pair[1] << 8;
    }
    if (n == 0) {
        free(t);
        return peqa__fail(PEQA_ERR_FORMAT, "%s: empty file, no tokens", path);
    }
    *tokens = t;
    *count = n;
    return PEQA_OK;
}

peqa_status peqa_raw_u16_read(const char *path, size_t max_tokens, uint32_t **tokens, size_t *count)
{
    if (!path || !tokens || !count) return peqa__fail(PEQA_ERR_NULL, "peqa_raw_u16_read: NULL argument");
    *tokens = NULL;
    *count = 0;
    FILE *f;
    uint64_t size;
    int known;
    peqa_status st = open_in(path, &f, &size, &known);
    if (st) return st;
    st = raw_u16_rest(f, path, size, known, effective_max(max_tokens), tokens, count);
    fclose(f);
    return st;
}

/* ---- byte-level tokenizer ----------------------------------------------------------------- */

peqa_status peqa_byte_encode(const void *text, size_t len, unsigned flags, uint32_t **tokens, size_t *count)
{
    if ((!text && len) || !tokens || !count) return peqa__fail(PEQA_ERR_NULL, "peqa_byte_encode: NULL argument");
    *tokens = NULL;
    *count = 0;
    size_t extra = (flags & PEQA_TOK_ADD_BOS ? 1u : 0u) + (flags & PEQA_TOK_ADD_EOS ? 1u : 0u);
    if (len > SIZE_MAX / sizeof(uint32_t) - extra - 1)
        return peqa__fail(PEQA_ERR_OVERFLOW, "peqa_byte_encode: %zu bytes of text is too large", len);
    size_t n = len + extra;
    uint32_t *t = malloc((n ? n : 1) * sizeof *t);
    if (!t) return peqa__fail(PEQA_ERR_NOMEM, "peqa_byte_encode: out of memory for %zu tokens", n);
    const unsigned char *s = text;
    size_t k = 0;
    if (flags & PEQA_TOK_ADD_BOS) t[k++] = PEQA_BYTE_BOS;
    for (size_t i = 0; i < len; i++) t[k++] = s[i];
    if (flags & PEQA_TOK_ADD_EOS) t[k++] = PEQA_BYTE_EOS;
    *tokens = t;
    *count = n;
    return PEQA_OK;
}

peqa_status peqa_byte_decode(const uint32_t *tokens, size_t count, char **text, size_t *len)
{
    if ((!tokens && count) || !text || !len) return peqa__fail(PEQA_ERR_NULL, "peqa_byte_decode: NULL argument");
    *text = NULL;
    *len = 0;
    size_t n = 0;
    for (size_t i = 0; i < count; i++) {
        if (tokens[i] >= PEQA_BYTE_VOCAB)
            return peqa__fail(PEQA_ERR_RANGE, "peqa_byte_decode: token %u at position %zu is outside the byte "
                              "vocabulary of %u", tokens[i], i, PEQA_BYTE_VOCAB);
        if (tokens[i] < 256) n++;
    }
    char *s = malloc(n + 1);
    if (!s) return peqa__fail(PEQA_ERR_NOMEM, "peqa_byte_decode: out of memory");
    size_t k = 0;
    for (size_t i = 0; i < count; i++)
        if (tokens[i] < 256) s[k++] = (char)(unsigned char)tokens[i];
    s[k] = '\0';
    *text = s;
    *len = n;
    return PEQA_OK;
}

/* ---- datasets ------------------------------------------------------------------------------ */

/* The rest of f as byte tokens. */
static peqa_status text_rest(FILE *f, const char *path, uint64_t size, int known, size_t max, uint32_t **tokens,
                             size_t *count)
{
    if (known && size > (uint64_t)max)
        return peqa__fail(PEQA_ERR_RANGE, "%s: %llu bytes of text = %llu tokens, more than the limit of %zu", path,
                          (unsigned long long)size, (unsigned long long)size, max);
    size_t cap = known ? (size_t)size : 0, n = 0;
    uint32_t *t = cap ? malloc(cap * sizeof *t) : NULL;
    if (cap && !t) return peqa__fail(PEQA_ERR_NOMEM, "%s: out of memory for %zu tokens", path, cap);
    unsigned char *buf = malloc(CHUNK_BYTES);
    if (!buf) {
        free(t);
        return peqa__fail(PEQA_ERR_NOMEM, "%s: out of memory", path);
    }
    peqa_status st = PEQA_OK;
    for (;;) {
        size_t got;
        st = read_some(f, path, buf, CHUNK_BYTES, &got);
        if (st || got == 0) break;
        if (got > max - n) {
            st = peqa__fail(PEQA_ERR_RANGE, "%s: more than %zu bytes of text, the token limit", path, max);
            break;
        }
        if (n + got > cap) {
            /* The file grew or its size was unknown. */
            size_t ncap = cap > max / 2 ? max : cap * 2;
            if (ncap < n + got) ncap = n + got;
            uint32_t *nt = realloc(t, ncap * sizeof *nt);
            if (!nt) {
                st = peqa__fail(PEQA_ERR_NOMEM, "%s: out of memory", path);
                break;
            }
            t = nt, cap = ncap;
        }
        for (size_t i = 0; i < got; i++) t[n + i] = buf[i];
        n += got;
    }
    free(buf);
    if (!st && n == 0) st = peqa__fail(PEQA_ERR_FORMAT, "%s: empty file, no tokens", path);
    if (st) {
        free(t);
        return st;
    }
    *tokens = t;
    *count = n;
    return PEQA_OK;
}

static int ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && memcmp(s + a - b, suffix, b) == 0;
}

peqa_status peqa_dataset_load(const char *path, peqa_data_format fmt, size_t max_tokens, uint32_t **tokens,
                              size_t *count, peqa_data_format *used)
{
    if (!path || !tokens || !count) return peqa__fail(PEQA_ERR_NULL, "peqa_dataset_load: NULL argument");
    *tokens = NULL;
    *count = 0;
    if (fmt != PEQA_DATA_AUTO && fmt != PEQA_DATA_SHARD && fmt != PEQA_DATA_TEXT && fmt != PEQA_DATA_RAW_U16)
        return peqa__fail(PEQA_ERR_ARG, "%s: unknown dataset format %d", path, (int)fmt);
    FILE *f;
    uint64_t size;
    int known;
    peqa_status st = open_in(path, &f, &size, &known);
    if (st) return st;
    if (fmt == PEQA_DATA_AUTO) {
        /* Peek at the first int32: the shard magics are not text (0xF8 0xE6 0x34 0x01 ... is not
         * valid UTF-8), so a text file is never mistaken for a shard. */
        unsigned char m[4];
        size_t got;
        st = read_some(f, path, m, 4, &got);
        if (!st && got == 4) {
            uint32_t magic = le32(m);
            if (magic == PEQA_SHARD_MAGIC_U16 || magic == PEQA_SHARD_MAGIC_U32 || magic == PEQA_SHARD_MAGIC_EVAL)
                fmt = PEQA_DATA_SHARD;
        }
        if (!st && fmt == PEQA_DATA_AUTO && ends_with(path, ".bin"))
            st = peqa__fail(PEQA_ERR_FORMAT, "%s: a .bin file without an llm.c shard header (first int32 %u, not %u or "
                            "%u); for headerless uint16 tokens ask for the raw uint16 format", path,
                            got == 4 ? le32(m) : 0u, PEQA_SHARD_MAGIC_U16, PEQA_SHARD_MAGIC_U32);
        if (!st && fmt == PEQA_DATA_AUTO) fmt = PEQA_DATA_TEXT;
        if (!st) {
            /* Start again from the top (rewind clears the EOF of a short file too). */
            if (fseek(f, 0, SEEK_SET) != 0)
                st = peqa__fail(PEQA_ERR_IO, "%s: cannot seek back to the start (%s); name the format explicitly "
                                "when reading from a pipe", path, strerror(errno));
        }
        if (st) {
            fclose(f);
            return st;
        }
        clearerr(f);
    }
    size_t max = effective_max(max_tokens);
    if (fmt == PEQA_DATA_SHARD) st = shard_read_open(f, path, size, known, max, tokens, count, NULL);
    else if (fmt == PEQA_DATA_TEXT) st = text_rest(f, path, size, known, max, tokens, count);
    else st = raw_u16_rest(f, path, size, known, max, tokens, count);
    fclose(f);
    if (!st && used) *used = fmt;
    return st;
}

peqa_status peqa_tokens_check_vocab(const char *what, const uint32_t *tokens, size_t count, uint32_t vocab)
{
    if (!tokens && count) return peqa__fail(PEQA_ERR_NULL, "peqa_tokens_check_vocab: NULL argument");
    for (size_t i = 0; i < count; i++)
        if (tokens[i] >= vocab)
            return peqa__fail(PEQA_ERR_RANGE, "%s: token %u at position %zu is outside the vocabulary of %u",
                              what ? what : "tokens", tokens[i], i, vocab);
    return PEQA_OK;
}
