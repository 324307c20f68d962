/* A small strict JSON parser (RFC 8259) for config.json, safetensors headers and shard indexes.
 *
 * What "strict" means here
 *  - Exactly one value, surrounded only by JSON whitespace (space, tab, LF, CR). No byte order
 *    mark, no comments, no trailing commas, no single quotes, no NaN/Infinity, no leading '+' or
 *    leading zeros ("01"), no bare '.5' or '1.'.
 *  - Strings must be valid UTF-8 (no overlong forms, no encoded surrogates, nothing above
 *    U+10FFFF); control characters below U+0020 must be escaped. Escapes: \" \\ \/ \b \f \n \r
 *    \t \uXXXX; a \uXXXX high surrogate must be followed by a \uXXXX low surrogate and the pair
 *    becomes one 4-byte UTF-8 sequence; an unpaired surrogate is an error. Decoded strings are
 *    NUL-terminated but may contain NUL bytes (from \u0000), so their length is kept too.
 *  - Numbers: an integer literal (no fraction, no exponent) that fits int64 is PEQA_JSON_INT.
 *    Anything else is PEQA_JSON_DOUBLE, converted by strtod in the C locale (correctly rounded
 *    by the C library). "-0" is the double -0.0 (its sign would be lost as an integer).
 *    Magnitudes that overflow a double (1e400) are rejected; underflow (1e-400) gives 0 or a
 *    subnormal as strtod returns it.
 *  - Nesting deeper than PEQA_JSON_MAX_DEPTH arrays/objects is rejected before the parser's
 *    recursion could grow further, so hostile input cannot exhaust the stack. Documents larger
 *    than PEQA_JSON_MAX_BYTES are rejected up front.
 *  - Duplicate object keys are accepted (the first one wins in lookups) unless the caller passes
 *    PEQA_JSON_NO_DUPLICATES.
 *
 * Errors are PEQA_ERR_FORMAT (PEQA_ERR_NOMEM when memory runs out) with a message
 * "<what>: JSON error at byte <offset>: <reason>", where offset counts bytes from the start of
 * the text. The whole tree lives in one arena owned by the document; free it with
 * peqa_json_free. Values are read-only views into that arena.
 */
#ifndef PEQA_JSON_H
#define PEQA_JSON_H

#include <stddef.h>
#include <stdint.h>
#include "peqa.h"

#define PEQA_JSON_MAX_DEPTH 64
#define PEQA_JSON_MAX_BYTES ((size_t)256 << 20)

/* Flags for peqa_json_parse. */
#define PEQA_JSON_NO_DUPLICATES 1u /* an object with two equal keys is an error */

typedef enum peqa_json_type {
    PEQA_JSON_NULL = 0,
    PEQA_JSON_BOOL,
    PEQA_JSON_INT,
    PEQA_JSON_DOUBLE,
    PEQA_JSON_STRING,
    PEQA_JSON_ARRAY,
    PEQA_JSON_OBJECT
} peqa_json_type;

typedef struct peqa_json_value peqa_json_value;
typedef struct peqa_json_member peqa_json_member;
typedef struct peqa_json_doc peqa_json_doc;

struct peqa_json_value {
    peqa_json_type type;
    size_t offset; /* byte offset of the value's first character in the text */
    union {
        int boolean;
        int64_t i;
        double d;
        struct { const char *ptr; size_t len; } str;               /* NUL-terminated too */
        struct { const peqa_json_value *items; size_t count; } arr;
        struct { const peqa_json_member *members; size_t count; } obj; /* in document order */
    } u;
};

struct peqa_json_member {
    const char *key; /* decoded, NUL-terminated */
    size_t key_len;
    size_t key_offset; /* byte offset of the key's opening quote */
    peqa_json_value value;
};

/* Parses text[0, len). `what` names the source in error messages (a file name; NULL: "JSON").
 * On error *out is NULL and, if err_offset is not NULL, *err_offset is the byte offset the
 * message names (SIZE_MAX for errors that are not about a position, such as out of memory). */
peqa_status peqa_json_parse(const char *text, size_t len, unsigned flags, const char *what,
                            peqa_json_doc **out, size_t *err_offset);
/* Reads a whole file (at most PEQA_JSON_MAX_BYTES) and parses it; messages name the path. */
peqa_status peqa_json_parse_file(const char *path, unsigned flags, peqa_json_doc **out);
void peqa_json_free(peqa_json_doc *doc); /* NULL is fine */
const peqa_json_value *peqa_json_root(const peqa_json_doc *doc);

const char *peqa_json_type_name(peqa_json_type t); /* "null", "bool", "integer", ... */

/* Lookups. Each returns NULL (or 0) when v is NULL or of the wrong type, so calls chain:
 * peqa_json_as_int64(peqa_json_get(root, "hidden_size"), &h). */
const peqa_json_value *peqa_json_get(const peqa_json_value *obj, const char *key);
const peqa_json_value *peqa_json_at(const peqa_json_value *arr, size_t i);
const peqa_json_member *peqa_json_member_at(const peqa_json_value *obj, size_t i);
/* Items of an array or members of an object; 0 for anything else. */
size_t peqa_json_count(const peqa_json_value *v);
/* 1 and *out set on success, 0 (out untouched) otherwise. as_int64 takes only integer literals
 * (10 but not 10.0 or 1e1); as_double takes integers and doubles. */
int peqa_json_as_int64(const peqa_json_value *v, int64_t *out);
int peqa_json_as_double(const peqa_json_value *v, double *out);
int peqa_json_as_bool(const peqa_json_value *v, int *out);
/* The decoded string (NUL-terminated) or NULL; *len (if len is not NULL) gets its length. */
const char *peqa_json_as_string(const peqa_json_value *v, size_t *len);
/* 1 if v is a string equal to the C string s. */
int peqa_json_is_string(const peqa_json_value *v, const char *s);

/* Offset of the first byte of s[0, len) that does not belong to a valid UTF-8 sequence (the lead
 * byte of a bad or truncated sequence), or len if all of it is valid. */
size_t peqa_json_utf8_check(const char *s, size_t len);

/* Reads a whole file into a new malloc'd buffer with a NUL appended (not counted in *len).
 * Fails with PEQA_ERR_FORMAT if the file is larger than max_bytes, PEQA_ERR_IO if it cannot be
 * opened or read; messages name the path. */
peqa_status peqa__read_file(const char *path, size_t max_bytes, char **data, size_t *len);

#endif
