/* Strict JSON parser (RFC 8259) with a tiny read-only DOM; see json.h for the accepted
 * language. Recursive descent, bounded by PEQA_JSON_MAX_DEPTH. Nodes, decoded strings and the
 * item arrays of arrays/objects live in one arena freed at once. */
#include <errno.h>
#include <locale.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "internal.h"
#include "json.h"

/* ---- arena ----------------------------------------------------------------------------- */

typedef struct arena_block {
    struct arena_block *next;
    size_t used, cap;
} arena_block;

/* Block payloads start after the header, rounded so that every allocation is max-aligned. */
#define ARENA_ALIGN ((size_t)_Alignof(max_align_t))
#define ARENA_HDR ((sizeof(arena_block) + ARENA_ALIGN - 1) / ARENA_ALIGN * ARENA_ALIGN)
#define ARENA_CHUNK ((size_t)64 << 10)

struct peqa_json_doc {
    arena_block *blocks;
    peqa_json_value root;
};

static void *arena_alloc(peqa_json_doc *doc, size_t bytes)
{
    if (bytes > SIZE_MAX - ARENA_ALIGN - ARENA_HDR) return NULL;
    bytes = (bytes + ARENA_ALIGN - 1) / ARENA_ALIGN * ARENA_ALIGN;
    if (bytes == 0) bytes = ARENA_ALIGN;
    arena_block *b = doc->blocks;
    if (!b || b->cap - b->used < bytes) {
        size_t cap = bytes > ARENA_CHUNK ? bytes : ARENA_CHUNK;
        arena_block *nb = malloc(ARENA_HDR + cap);
        if (!nb) return NULL;
        nb->used = 0, nb->cap = cap;
        /* A large one-off allocation goes behind the current block so that the current block's
         * free space stays usable. */
        if (b && cap == bytes && b->cap - b->used > 0) {
            nb->next = b->next;
            b->next = nb;
        } else {
            nb->next = b;
            doc->blocks = nb;
        }
        b = nb;
    }
    void *p = (unsigned char *)b + ARENA_HDR + b->used;
    b->used += bytes;
    return p;
}

void peqa_json_free(peqa_json_doc *doc)
{
    if (!doc) return;
    arena_block *b = doc->blocks;
    while (b) {
        arena_block *n = b->next;
        free(b);
        b = n;
    }
    free(doc);
}

const peqa_json_value *peqa_json_root(const peqa_json_doc *doc) { return doc ? &doc->root : NULL; }

/* ---- UTF-8 ------------------------------------------------------------------------------- */

/* Length of the valid UTF-8 sequence starting at s[0] (1 to 4), or 0 if it is invalid or runs
 * past n. Table 3-7 of the Unicode standard: the second byte's range depends on the lead byte,
 * which excludes overlong forms (C0, C1, E0 80-9F, F0 80-8F), UTF-16 surrogates (ED A0-BF) and
 * code points above U+10FFFF (F4 90-BF, F5-FF). */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
    unsigned c = s[0];
    if (c < 0x80) return 1;
    size_t need;
    unsigned lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) need = 2;
    else if (c == 0xE0) need = 3, lo = 0xA0;
    else if (c == 0xED) need = 3, hi = 0x9F;
    else if (c >= 0xE1 && c <= 0xEF) need = 3;
    else if (c == 0xF0) need = 4, lo = 0x90;
    else if (c >= 0xF1 && c <= 0xF3) need = 4;
    else if (c == 0xF4) need = 4, hi = 0x8F;
    else return 0;
    if (n < need) return 0;
    if (s[1] < lo || s[1] > hi) return 0;
    for (size_t i = 2; i < need; i++)
        if (s[i] < 0x80 || s[i] > 0xBF) return 0;
    return need;
}

size_t peqa_json_utf8_check(const char *s, size_t len)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0;
    while (i < len) {
        size_t k = utf8_seq(u + i, len - i);
        if (!k) return i;
        i += k;
    }
    return len;
}

static size_t utf8_put(unsigned char *o, uint32_t cp)
{
    if (cp < 0x80) {
        o[0] = (unsigned char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (unsigned char)(0xC0 | (cp >> 6));
        o[1] = (unsigned char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (unsigned char)(0xE0 | (cp >> 12));
        o[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (unsigned char)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (unsigned char)(0xF0 | (cp >> 18));
    o[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
    o[3] = (unsigned char)(0x80 | (cp & 0x3F));
    return 4;
}

/* ---- parser ------------------------------------------------------------------------------ */

typedef struct {
    const unsigned char *s;
    size_t len, pos;
    unsigned flags;
    int depth;
    const char *what;
    peqa_json_doc *doc;
    /* Children of the arrays/objects being parsed, as a stack: a container pushes its
     * children here and, when it closes, moves them into the arena and pops them. */
    peqa_json_member *stk;
    size_t nstk, capstk;
    locale_t cloc; /* the C locale for strtod, created on first use */
    peqa_status err;
    size_t err_off;
} parser;

static int fail_at(parser *p, size_t off, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

static int fail_at(parser *p, size_t off, const char *fmt, ...)
{
    char why[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    p->err = PEQA_ERR_FORMAT;
    p->err_off = off;
    peqa__fail(PEQA_ERR_FORMAT, "%s: JSON error at byte %zu: %s", p->what, off, why);
    return -1;
}

static int fail_nomem(parser *p)
{
    p->err = PEQA_ERR_NOMEM;
    p->err_off = SIZE_MAX;
    peqa__fail(PEQA_ERR_NOMEM, "%s: out of memory while parsing JSON", p->what);
    return -1;
}

/* Describes the byte at pos for messages: 'x', U+00XX for controls, 0xNN for non-ASCII. */
static const char *describe(const parser *p, size_t pos, char *buf, size_t n)
{
    if (pos >= p->len) snprintf(buf, n, "end of input");
    else if (p->s[pos] >= 0x20 && p->s[pos] < 0x7F) snprintf(buf, n, "'%c'", p->s[pos]);
    else snprintf(buf, n, "byte 0x%02X", p->s[pos]);
    return buf;
}

static int unexpected(parser *p, const char *expected)
{
    char d[32];
    return fail_at(p, p->pos, "expected %s, found %s", expected, describe(p, p->pos, d, sizeof d));
}

static void skip_ws(parser *p)
{
    while (p->pos < p->len) {
        unsigned char c = p->s[p->pos];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r') break;
        p->pos++;
    }
}

static int hex4(const unsigned char *s, uint32_t *out)
{
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) {
        unsigned c = s[i], d;
        if (c >= '0' && c <= '9') d = c - '0';
        else if (c >= 'a' && c <= 'f') d = c - 'a' + 10;
        else if (c >= 'A' && c <= 'F') d = c - 'A' + 10;
        else return 0;
        v = v * 16 + d;
    }
    *out = v;
    return 1;
}

/* p->pos is at the opening quote. Decodes into the arena. */
static int parse_string(parser *p, const char **out, size_t *out_len)
{
    size_t open = p->pos, i = open + 1;
    /* First pass: find the closing quote, to size the output (decoding never grows text: an
     * escape of n bytes yields at most n bytes). */
    while (i < p->len && p->s[i] != '"') i += p->s[i] == '\\' ? 2 : 1;
    if (i >= p->len) return fail_at(p, open, "unterminated string");
    size_t end = i;
    unsigned char *o = arena_alloc(p->doc, end - open);
    if (!o) return fail_nomem(p);
    size_t n = 0;
    i = open + 1;
    while (i < end) {
        unsigned char c = p->s[i];
        if (c == '\\') {
            unsigned char e = p->s[i + 1]; /* i + 1 < end: the scan skipped escaped bytes */
            switch (e) {
            case '"': o[n++] = '"'; i += 2; continue;
            case '\\': o[n++] = '\\'; i += 2; continue;
            case '/': o[n++] = '/'; i += 2; continue;
            case 'b': o[n++] = '\b'; i += 2; continue;
            case 'f': o[n++] = '\f'; i += 2; continue;
            case 'n': o[n++] = '\n'; i += 2; continue;
            case 'r': o[n++] = '\r'; i += 2; continue;
            case 't': o[n++] = '\t'; i += 2; continue;
            case 'u': break;
            default: {
                char d[32];
                return fail_at(p, i, "invalid escape: backslash followed by %s",
                               describe(p, i + 1, d, sizeof d));
            }
            }
            uint32_t cp;
            if (end - i < 6 || !hex4(p->s + i + 2, &cp))
                return fail_at(p, i, "\\u must be followed by four hexadecimal digits");
            if (cp >= 0xDC00 && cp <= 0xDFFF)
                return fail_at(p, i, "unpaired low surrogate \\u%04X", (unsigned)cp);
            if (cp >= 0xD800 && cp <= 0xDBFF) {
                uint32_t lo;
                if (end - i < 12 || p->s[i + 6] != '\\' || p->s[i + 7] != 'u' ||
                    !hex4(p->s + i + 8, &lo) || lo < 0xDC00 || lo > 0xDFFF)
                    return fail_at(p, i, "high surrogate \\u%04X is not followed by a \\u low surrogate",
                                   (unsigned)cp);
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                i += 12;
            } else {
                i += 6;
            }
            n += utf8_put(o + n, cp);
        } else if (c < 0x20) {
            return fail_at(p, i, "control character U+%04X in a string must be escaped", c);
        } else {
            size_t k = utf8_seq(p->s + i, end - i);
            if (!k) return fail_at(p, i, "invalid UTF-8 in a string (byte 0x%02X)", c);
            memcpy(o + n, p->s + i, k);
            n += k;
            i += k;
        }
    }
    o[n] = '\0';
    p->pos = end + 1;
    *out = (const char *)o;
    *out_len = n;
    return 0;
}

static int digit(unsigned char c) { return c >= '0' && c <= '9'; }

static int parse_number(parser *p, peqa_json_value *v)
{
    size_t start = p->pos, i = start;
    int neg = 0, integral = 1;
    if (i < p->len && p->s[i] == '-') neg = 1, i++;
    if (i >= p->len || !digit(p->s[i])) {
        p->pos = i;
        return unexpected(p, "a digit");
    }
    if (p->s[i] == '0') {
        i++;
        if (i < p->len && digit(p->s[i])) return fail_at(p, i - 1, "leading zero in a number");
    } else {
        while (i < p->len && digit(p->s[i])) i++;
    }
    if (i < p->len && p->s[i] == '.') {
        integral = 0;
        i++;
        if (i >= p->len || !digit(p->s[i])) {
            p->pos = i;
            return unexpected(p, "a digit after the decimal point");
        }
        while (i < p->len && digit(p->s[i])) i++;
    }
    if (i < p->len && (p->s[i] == 'e' || p->s[i] == 'E')) {
        integral = 0;
        i++;
        if (i < p->len && (p->s[i] == '+' || p->s[i] == '-')) i++;
        if (i >= p->len || !digit(p->s[i])) {
            p->pos = i;
            return unexpected(p, "a digit in the exponent");
        }
        while (i < p->len && digit(p->s[i])) i++;
    }
    p->pos = i;
    v->offset = start;
    if (integral) {
        /* Accumulate the magnitude in uint64; int64 holds -2^63 .. 2^63-1. */
        uint64_t m = 0;
        int over = 0;
        for (size_t j = start + (size_t)neg; j < i; j++) {
            unsigned d = p->s[j] - '0';
            if (m > (UINT64_MAX - d) / 10) {
                over = 1;
                break;
            }
            m = m * 10 + d;
        }
        const uint64_t lim = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
        if (!over && m <= lim && !(neg && m == 0)) {
            v->type = PEQA_JSON_INT;
            v->u.i = neg ? (m == lim ? INT64_MIN : -(int64_t)m) : (int64_t)m;
            return 0;
        }
    }
    /* strtod needs a NUL-terminated copy and reads the decimal point from the locale; the
     * literal was validated above, so strtod must consume all of it. */
    size_t n = i - start;
    char small[64], *buf = small;
    if (n >= sizeof small) {
        buf = malloc(n + 1);
        if (!buf) return fail_nomem(p);
    }
    memcpy(buf, p->s + start, n);
    buf[n] = '\0';
    if (p->cloc == (locale_t)0) {
        p->cloc = newlocale(LC_NUMERIC_MASK, "C", (locale_t)0);
        if (p->cloc == (locale_t)0) {
            if (buf != small) free(buf);
            return fail_nomem(p);
        }
    }
    locale_t old = uselocale(p->cloc);
    char *endp;
    errno = 0;
    double d = strtod(buf, &endp);
    int e = errno;
    uselocale(old);
    int consumed = endp == buf + n;
    if (buf != small) free(buf);
    if (!consumed) return fail_at(p, start, "malformed number");
    if (e == ERANGE && isinf(d)) return fail_at(p, start, "number out of range of a double");
    v->type = PEQA_JSON_DOUBLE;
    v->u.d = d;
    return 0;
}

static int push(parser *p, const peqa_json_member *m)
{
    if (p->nstk == p->capstk) {
        size_t cap = p->capstk ? p->capstk * 2 : 64;
        if (cap > SIZE_MAX / sizeof *p->stk) return fail_nomem(p);
        peqa_json_member *n = realloc(p->stk, cap * sizeof *n);
        if (!n) return fail_nomem(p);
        p->stk = n, p->capstk = cap;
    }
    p->stk[p->nstk++] = *m;
    return 0;
}

static int key_cmp(const void *a, const void *b)
{
    const peqa_json_member *x = *(const peqa_json_member *const *)a, *y = *(const peqa_json_member *const *)b;
    size_t n = x->key_len < y->key_len ? x->key_len : y->key_len;
    int c = memcmp(x->key, y->key, n);
    if (c) return c;
    if (x->key_len != y->key_len) return x->key_len < y->key_len ? -1 : 1;
    return x->key_offset < y->key_offset ? -1 : x->key_offset > y->key_offset;
}

static int check_duplicates(parser *p, const peqa_json_member *m, size_t count)
{
    if (count < 2) return 0;
    const peqa_json_member **idx = malloc(count * sizeof *idx);
    if (!idx) return fail_nomem(p);
    for (size_t i = 0; i < count; i++) idx[i] = &m[i];
    qsort(idx, count, sizeof *idx, key_cmp);
    const peqa_json_member *dup = NULL;
    for (size_t i = 1; i < count && !dup; i++)
        if (idx[i]->key_len == idx[i - 1]->key_len && !memcmp(idx[i]->key, idx[i - 1]->key, idx[i]->key_len))
            dup = idx[i]; /* the later of the two, by the offset tie-break */
    free(idx);
    if (dup)
        return fail_at(p, dup->key_offset, "duplicate key \"%.*s\" in an object",
                       dup->key_len > 64 ? 64 : (int)dup->key_len, dup->key);
    return 0;
}

static int parse_value(parser *p, peqa_json_value *v);

/* Moves the children above `base` on the stack into the arena. */
static int close_container(parser *p, size_t base, peqa_json_value *v)
{
    size_t count = p->nstk - base;
    if (v->type == PEQA_JSON_ARRAY) {
        peqa_json_value *items = NULL;
        if (count) {
            items = arena_alloc(p->doc, count * sizeof *items); /* count * size < stack bytes */
            if (!items) return fail_nomem(p);
            for (size_t i = 0; i < count; i++) items[i] = p->stk[base + i].value;
        }
        v->u.arr.items = items;
        v->u.arr.count = count;
    } else {
        peqa_json_member *members = NULL;
        if (count) {
            members = arena_alloc(p->doc, count * sizeof *members);
            if (!members) return fail_nomem(p);
            memcpy(members, p->stk + base, count * sizeof *members);
        }
        v->u.obj.members = members;
        v->u.obj.count = count;
        if ((p->flags & PEQA_JSON_NO_DUPLICATES) && check_duplicates(p, members, count)) return -1;
    }
    p->nstk = base;
    return 0;
}

/* p->pos is at '[' or '{'. */
static int parse_container(parser *p, peqa_json_value *v)
{
    int is_obj = p->s[p->pos] == '{';
    char close = is_obj ? '}' : ']';
    v->type = is_obj ? PEQA_JSON_OBJECT : PEQA_JSON_ARRAY;
    v->offset = p->pos;
    if (p->depth >= PEQA_JSON_MAX_DEPTH)
        return fail_at(p, p->pos, "arrays and objects nested deeper than %d levels", PEQA_JSON_MAX_DEPTH);
    p->depth++;
    p->pos++;
    size_t base = p->nstk;
    skip_ws(p);
    if (p->pos < p->len && p->s[p->pos] == close) {
        p->pos++;
    } else {
        for (;;) {
            peqa_json_member m = {0};
            if (is_obj) {
                if (p->pos >= p->len || p->s[p->pos] != '"') return unexpected(p, "a string key");
                m.key_offset = p->pos;
                if (parse_string(p, &m.key, &m.key_len)) return -1;
                skip_ws(p);
                if (p->pos >= p->len || p->s[p->pos] != ':') return unexpected(p, "':' after an object key");
                p->pos++;
                skip_ws(p);
            }
            if (parse_value(p, &m.value) || push(p, &m)) return -1;
            skip_ws(p);
            if (p->pos < p->len && p->s[p->pos] == ',') {
                p->pos++;
                skip_ws(p);
                /* A trailing comma would be caught below as a missing key or value, but a
                 * dedicated message is clearer. */
                if (p->pos < p->len && p->s[p->pos] == close)
                    return fail_at(p, p->pos, "trailing comma before '%c'", close);
                continue;
            }
            if (p->pos < p->len && p->s[p->pos] == close) {
                p->pos++;
                break;
            }
            return unexpected(p, is_obj ? "',' or '}' after an object member" : "',' or ']' after an array item");
        }
    }
    p->depth--;
    return close_container(p, base, v);
}

static int parse_value(parser *p, peqa_json_value *v)
{
    if (p->pos >= p->len) return unexpected(p, "a value");
    unsigned char c = p->s[p->pos];
    v->offset = p->pos;
    switch (c) {
    case '{':
    case '[': return parse_container(p, v);
    case '"':
        v->type = PEQA_JSON_STRING;
        return parse_string(p, &v->u.str.ptr, &v->u.str.len);
    case 't':
    case 'f':
    case 'n': {
        static const char *const words[3] = {"true", "false", "null"};
        const char *w = words[c == 't' ? 0 : c == 'f' ? 1 : 2];
        size_t n = strlen(w);
        if (p->len - p->pos < n || memcmp(p->s + p->pos, w, n) != 0)
            return fail_at(p, p->pos, "invalid literal (expected %s)", w);
        p->pos += n;
        if (c == 'n') {
            v->type = PEQA_JSON_NULL;
        } else {
            v->type = PEQA_JSON_BOOL;
            v->u.boolean = c == 't';
        }
        return 0;
    }
    default:
        if (c == '-' || digit(c)) return parse_number(p, v);
        return unexpected(p, "a value");
    }
}

peqa_status peqa_json_parse(const char *text, size_t len, unsigned flags, const char *what,
                            peqa_json_doc **out, size_t *err_offset)
{
    if (err_offset) *err_offset = SIZE_MAX;
    if (!out) return peqa__fail(PEQA_ERR_NULL, "peqa_json_parse: out is NULL");
    *out = NULL;
    if (!what) what = "JSON";
    if (!text && len) return peqa__fail(PEQA_ERR_NULL, "%s: text is NULL", what);
    if (len > PEQA_JSON_MAX_BYTES)
        return peqa__fail(PEQA_ERR_FORMAT, "%s: JSON text of %zu bytes exceeds the %zu-byte limit", what, len,
                          PEQA_JSON_MAX_BYTES);
    peqa_json_doc *doc = calloc(1, sizeof *doc);
    if (!doc) return peqa__fail(PEQA_ERR_NOMEM, "%s: out of memory while parsing JSON", what);
    parser p = {.s = (const unsigned char *)text, .len = len, .flags = flags, .what = what, .doc = doc,
                .cloc = (locale_t)0};
    skip_ws(&p);
    int rc = parse_value(&p, &doc->root);
    if (!rc) {
        skip_ws(&p);
        if (p.pos < p.len) {
            char d[32];
            rc = fail_at(&p, p.pos, "unexpected %s after the JSON value", describe(&p, p.pos, d, sizeof d));
        }
    }
    free(p.stk);
    if (p.cloc != (locale_t)0) freelocale(p.cloc);
    if (rc) {
        peqa_json_free(doc);
        if (err_offset) *err_offset = p.err_off;
        return p.err;
    }
    *out = doc;
    return PEQA_OK;
}

/* ---- files ------------------------------------------------------------------------------- */

peqa_status peqa__read_file(const char *path, size_t max_bytes, char **data, size_t *len)
{
    *data = NULL;
    *len = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return peqa__fail(PEQA_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    /* Read in growing chunks rather than trusting a size from fseek: works for any stream and
     * stops as soon as the limit is passed. */
    size_t cap = 0, n = 0;
    char *buf = NULL;
    for (;;) {
        if (n == cap) {
            if (cap > max_bytes) break;
            size_t ncap = cap ? cap * 2 : 4096;
            if (ncap > max_bytes + 1) ncap = max_bytes + 1; /* one byte more detects "too large" */
            if (ncap <= cap) break;
            char *nb = realloc(buf, ncap + 1);
            if (!nb) {
                free(buf);
                fclose(f);
                return peqa__fail(PEQA_ERR_NOMEM, "%s: out of memory reading the file", path);
            }
            buf = nb, cap = ncap;
        }
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (got == 0) break;
    }
    int bad = ferror(f);
    int e = errno;
    fclose(f);
    if (bad) {
        free(buf);
        return peqa__fail(PEQA_ERR_IO, "%s: read error: %s", path, strerror(e));
    }
    if (n > max_bytes) {
        free(buf);
        return peqa__fail(PEQA_ERR_FORMAT, "%s: file is larger than the %zu-byte limit", path, max_bytes);
    }
    if (!buf) {
        buf = malloc(1);
        if (!buf) return peqa__fail(PEQA_ERR_NOMEM, "%s: out of memory reading the file", path);
    }
    buf[n] = '\0';
    *data = buf;
    *len = n;
    return PEQA_OK;
}

peqa_status peqa_json_parse_file(const char *path, unsigned flags, peqa_json_doc **out)
{
    if (!out) return peqa__fail(PEQA_ERR_NULL, "peqa_json_parse_file: out is NULL");
    *out = NULL;
    if (!path) return peqa__fail(PEQA_ERR_NULL, "peqa_json_parse_file: path is NULL");
    char *text;
    size_t len;
    peqa_status st = peqa__read_file(path, PEQA_JSON_MAX_BYTES, &text, &len);
    if (st) return st;
    st = peqa_json_parse(text, len, flags, path, out, NULL);
    free(text);
    return st;
}

/* ---- lookups ----------------------------------------------------------------------------- */

const char *peqa_json_type_name(peqa_json_type t)
{
    switch (t) {
    case PEQA_JSON_NULL: return "null";
    case PEQA_JSON_BOOL: return "boolean";
    case PEQA_JSON_INT: return "integer";
    case PEQA_JSON_DOUBLE: return "number";
    case PEQA_JSON_STRING: return "string";
    case PEQA_JSON_ARRAY: return "array";
    case PEQA_JSON_OBJECT: return "object";
    }
    return "unknown";
}

const peqa_json_value *peqa_json_get(const peqa_json_value *obj, const char *key)
{
    if (!obj || obj->type != PEQA_JSON_OBJECT || !key) return NULL;
    size_t n = strlen(key);
    for (size_t i = 0; i < obj->u.obj.count; i++) {
        const peqa_json_member *m = &obj->u.obj.members[i];
        if (m->key_len == n && !memcmp(m->key, key, n)) return &m->value;
    }
    return NULL;
}

const peqa_json_value *peqa_json_at(const peqa_json_value *arr, size_t i)
{
    if (!arr || arr->type != PEQA_JSON_ARRAY || i >= arr->u.arr.count) return NULL;
    return &arr->u.arr.items[i];
}

const peqa_json_member *peqa_json_member_at(const peqa_json_value *obj, size_t i)
{
    if (!obj || obj->type != PEQA_JSON_OBJECT || i >= obj->u.obj.count) return NULL;
    return &obj->u.obj.members[i];
}

size_t peqa_json_count(const peqa_json_value *v)
{
    if (!v) return 0;
    if (v->type == PEQA_JSON_ARRAY) return v->u.arr.count;
    if (v->type == PEQA_JSON_OBJECT) return v->u.obj.count;
    return 0;
}

int peqa_json_as_int64(const peqa_json_value *v, int64_t *out)
{
    if (!v || v->type != PEQA_JSON_INT) return 0;
    *out = v->u.i;
    return 1;
}

int peqa_json_as_double(const peqa_json_value *v, double *out)
{
    if (!v) return 0;
    if (v->type == PEQA_JSON_INT) *out = (double)v->u.i;
    else if (v->type == PEQA_JSON_DOUBLE) *out = v->u.d;
    else return 0;
    return 1;
}

int peqa_json_as_bool(const peqa_json_value *v, int *out)
{
    if (!v || v->type != PEQA_JSON_BOOL) return 0;
    *out = v->u.boolean;
    return 1;
}

const char *peqa_json_as_string(const peqa_json_value *v, size_t *len)
{
    if (!v || v->type != PEQA_JSON_STRING) return NULL;
    if (len) *len = v->u.str.len;
    return v->u.str.ptr;
}

int peqa_json_is_string(const peqa_json_value *v, const char *s)
{
    if (!v || v->type != PEQA_JSON_STRING || !s) return 0;
    size_t n = strlen(s);
    return v->u.str.len == n && !memcmp(v->u.str.ptr, s, n);
}
