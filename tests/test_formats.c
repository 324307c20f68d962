/* File formats: the strict JSON parser (valid and invalid corpora, error offsets, limits) and
 * safetensors (round trips through the writer, exact header layout, every reader check on
 * hand-made bad files, sharded checkpoints). Files are made in a fresh directory under /tmp. */
#include <locale.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "../src/json.h"
#include "../src/safetensors.h"
#include "test.h"

/* ---- helpers ------------------------------------------------------------------------------ */

static int msg_has(const char *needle) { return needle == NULL || strstr(peqa_last_error(), needle) != NULL; }

static uint32_t fbits(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

static float bitsf(uint32_t u)
{
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* ---- JSON: valid documents ------------------------------------------------------------------ */

static peqa_json_doc *parse_ok(trun *r, const char *name, const char *text, size_t len, unsigned flags)
{
    peqa_json_doc *d = NULL;
    size_t off = 0;
    peqa_status st = peqa_json_parse(text, len, flags, "test.json", &d, &off);
    if (st != PEQA_OK || !d) {
        t_result(r, 0, name, "-", "parse failed: status %d, %s", (int)st, peqa_last_error());
        peqa_json_free(d);
        return NULL;
    }
    return d;
}

static void json_valid(trun *r)
{
    /* Structure and lookups. */
    const char *t1 = " \t\r\n{\"a\": 1, \"b\": [true, false, null], \"c\": \"x\", \"d\": {}, \"e\": [], \"a\": 2}\n ";
    peqa_json_doc *d = parse_ok(r, "formats/json/structure", t1, strlen(t1), 0);
    if (d) {
        const peqa_json_value *root = peqa_json_root(d), *b = peqa_json_get(root, "b");
        int64_t a = 0;
        int bt = -1, bf = -1;
        size_t cl = 0;
        const char *c = peqa_json_as_string(peqa_json_get(root, "c"), &cl);
        int ok = root->type == PEQA_JSON_OBJECT && peqa_json_count(root) == 6 &&
                 peqa_json_as_int64(peqa_json_get(root, "a"), &a) && a == 1 /* first duplicate wins */ &&
                 peqa_json_count(b) == 3 && peqa_json_as_bool(peqa_json_at(b, 0), &bt) && bt == 1 &&
                 peqa_json_as_bool(peqa_json_at(b, 1), &bf) && bf == 0 &&
                 peqa_json_at(b, 2)->type == PEQA_JSON_NULL && !peqa_json_at(b, 3) && c && cl == 1 &&
                 !strcmp(c, "x") && peqa_json_is_string(peqa_json_get(root, "c"), "x") &&
                 peqa_json_get(root, "d")->type == PEQA_JSON_OBJECT && peqa_json_count(peqa_json_get(root, "d")) == 0 &&
                 peqa_json_get(root, "e")->type == PEQA_JSON_ARRAY && !peqa_json_get(root, "zz") &&
                 !peqa_json_get(b, "a") && !peqa_json_at(root, 0) && !peqa_json_as_string(b, NULL) &&
                 !strcmp(peqa_json_member_at(root, 5)->key, "a") && peqa_json_member_at(root, 1)->key_offset == 13 &&
                 b->offset == 18;
        t_result(r, ok, "formats/json/structure", "-", "6 members, lookups, offsets (b at %zu)", b ? b->offset : 0);
        peqa_json_free(d);
    }

    /* Numbers: integers stay int64 when they fit; everything else is a correctly rounded double. */
    const char *t2 = "[1, -2, 3.5, 1e2, -0, 0, 9223372036854775807, -9223372036854775808, 9223372036854775808, "
                     "1E-2, 1e-400, -0.0, 2.2250738585072011e-308, 0.1, 1.7976931348623157e308, 123456789012345678901234567890]";
    d = parse_ok(r, "formats/json/numbers", t2, strlen(t2), 0);
    if (d) {
        const peqa_json_value *a = peqa_json_root(d);
        int64_t i0 = 0, i1 = 0, i5 = -1, i6 = 0, i7 = 0, tmp;
        double d2 = 0, d3 = 0, d4 = 1, d8 = 0, d9 = 0, d10 = 1, d11 = 0, d12 = 0, d13 = 0, d14 = 0, d15 = 0, dd;
        int ok = peqa_json_count(a) == 16 && peqa_json_as_int64(peqa_json_at(a, 0), &i0) && i0 == 1 &&
                 peqa_json_as_int64(peqa_json_at(a, 1), &i1) && i1 == -2 &&
                 peqa_json_at(a, 2)->type == PEQA_JSON_DOUBLE && peqa_json_as_double(peqa_json_at(a, 2), &d2) &&
                 d2 == 3.5 && !peqa_json_as_int64(peqa_json_at(a, 2), &tmp) &&
                 peqa_json_at(a, 3)->type == PEQA_JSON_DOUBLE && peqa_json_as_double(peqa_json_at(a, 3), &d3) &&
                 d3 == 100.0 && !peqa_json_as_int64(peqa_json_at(a, 3), &tmp) &&
                 peqa_json_at(a, 4)->type == PEQA_JSON_DOUBLE && peqa_json_as_double(peqa_json_at(a, 4), &d4) &&
                 d4 == 0.0 && signbit(d4) && peqa_json_as_int64(peqa_json_at(a, 5), &i5) && i5 == 0 &&
                 peqa_json_as_int64(peqa_json_at(a, 6), &i6) && i6 == INT64_MAX &&
                 peqa_json_as_int64(peqa_json_at(a, 7), &i7) && i7 == INT64_MIN &&
                 peqa_json_at(a, 8)->type == PEQA_JSON_DOUBLE && peqa_json_as_double(peqa_json_at(a, 8), &d8) &&
                 d8 == 9223372036854775808.0 && peqa_json_as_double(peqa_json_at(a, 9), &d9) && d9 == 0.01 &&
                 peqa_json_as_double(peqa_json_at(a, 10), &d10) && d10 == 0.0 &&
                 peqa_json_as_double(peqa_json_at(a, 11), &d11) && d11 == 0.0 && signbit(d11) &&
                 peqa_json_as_double(peqa_json_at(a, 12), &d12) && d12 == 2.2250738585072011e-308 &&
                 peqa_json_as_double(peqa_json_at(a, 13), &d13) && d13 == 0.1 &&
                 peqa_json_as_double(peqa_json_at(a, 14), &d14) && d14 == 1.7976931348623157e308 &&
                 peqa_json_as_double(peqa_json_at(a, 15), &d15) && d15 == 1.2345678901234568e29 &&
                 peqa_json_as_double(peqa_json_at(a, 6), &dd) && dd == 9223372036854775807.0;
        t_result(r, ok, "formats/json/numbers", "-", "int64 range, -0 as double, 1e-400 -> %g, 0.1 exact", d10);
        peqa_json_free(d);
    }

    /* A literal longer than the parser's stack buffer for strtod. */
    {
        char num[300];
        memset(num, '0', sizeof num);
        num[0] = '0', num[1] = '.';
        num[200] = '1';
        num[201] = 'e', num[202] = '1', num[203] = '9', num[204] = '9'; /* 10^-199 * 10^199 */
        d = parse_ok(r, "formats/json/long_number", num, 205, 0);
        if (d) {
            double v = 0;
            int ok = peqa_json_as_double(peqa_json_root(d), &v) && v == 1.0;
            t_result(r, ok, "formats/json/long_number", "-", "205-char literal = %.17g (want 1)", v);
            peqa_json_free(d);
        }
    }

    /* Strings: every escape, surrogate pairs, raw UTF-8, embedded NUL. */
    const char *t3 = "[\"\\\"\\\\\\/\\b\\f\\n\\r\\t\\u0041\\u00e9\\u20AC\\ud83d\\ude00\", \"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\", "
                     "\"a\\u0000b\", \"\", \"\\uDBFF\\uDFFF\"]";
    d = parse_ok(r, "formats/json/strings", t3, strlen(t3), 0);
    if (d) {
        const peqa_json_value *a = peqa_json_root(d);
        static const char want0[] = "\"\\/\b\f\n\r\tA\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80";
        size_t l0 = 0, l1 = 0, l2 = 0, l3 = 9, l4 = 0;
        const char *s0 = peqa_json_as_string(peqa_json_at(a, 0), &l0), *s1 = peqa_json_as_string(peqa_json_at(a, 1), &l1),
                   *s2 = peqa_json_as_string(peqa_json_at(a, 2), &l2), *s3 = peqa_json_as_string(peqa_json_at(a, 3), &l3),
                   *s4 = peqa_json_as_string(peqa_json_at(a, 4), &l4);
        int ok = s0 && l0 == sizeof want0 - 1 && !memcmp(s0, want0, l0) && s0[l0] == 0 && s1 && l1 == 9 &&
                 !memcmp(s1, "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80", 9) && s2 && l2 == 3 && !memcmp(s2, "a\0b", 4) &&
                 s3 && l3 == 0 && s3[0] == 0 && s4 && l4 == 4 && !memcmp(s4, "\xf4\x8f\xbf\xbf", 4);
        t_result(r, ok, "formats/json/strings", "-", "escapes, surrogate pairs, raw UTF-8, \\u0000 (lengths %zu %zu %zu)",
                 l0, l1, l2);
        peqa_json_free(d);
    }

    /* Depth: exactly the limit is fine. */
    {
        char buf[2 * PEQA_JSON_MAX_DEPTH];
        for (int i = 0; i < PEQA_JSON_MAX_DEPTH; i++) buf[i] = '[', buf[2 * PEQA_JSON_MAX_DEPTH - 1 - i] = ']';
        d = parse_ok(r, "formats/json/depth_at_limit", buf, sizeof buf, 0);
        if (d) {
            const peqa_json_value *v = peqa_json_root(d);
            int depth = 0;
            while (v && v->type == PEQA_JSON_ARRAY) depth++, v = peqa_json_at(v, 0);
            t_result(r, depth == PEQA_JSON_MAX_DEPTH, "formats/json/depth_at_limit", "-", "depth %d", depth);
            peqa_json_free(d);
        }
    }

    /* Many values and a long string: arena growth past its chunk size. */
    {
        const size_t n = 200000;
        char *big = malloc(n * 8 + 100000 + 16);
        size_t k = 0;
        big[k++] = '[';
        for (size_t i = 0; i < n; i++) k += (size_t)sprintf(big + k, "%zu,", i);
        big[k++] = '"';
        memset(big + k, 'z', 100000);
        k += 100000;
        big[k++] = '"';
        big[k++] = ']';
        d = parse_ok(r, "formats/json/large", big, k, 0);
        if (d) {
            const peqa_json_value *a = peqa_json_root(d);
            int ok = peqa_json_count(a) == n + 1;
            for (size_t i = 0; ok && i < n; i++) {
                int64_t v;
                ok = peqa_json_as_int64(peqa_json_at(a, i), &v) && v == (int64_t)i;
            }
            size_t sl = 0;
            const char *s = peqa_json_as_string(peqa_json_at(a, n), &sl);
            ok = ok && s && sl == 100000 && s[0] == 'z' && s[99999] == 'z' && s[100000] == 0;
            t_result(r, ok, "formats/json/large", "-", "%zu integers and a 100000-byte string", n);
            peqa_json_free(d);
        }
        free(big);
    }

    /* strtod must not follow the process locale's decimal comma. */
    {
        static const char *const locs[] = {"de_DE.UTF-8", "de_DE.utf8", "fr_FR.UTF-8", "de_DE", "fr_FR", "ru_RU.UTF-8"};
        const char *old = setlocale(LC_NUMERIC, NULL);
        char saved[64];
        snprintf(saved, sizeof saved, "%s", old ? old : "C");
        const char *got = NULL;
        for (size_t i = 0; i < sizeof locs / sizeof locs[0] && !got; i++) got = setlocale(LC_NUMERIC, locs[i]);
        if (!got) {
            t_skip(r, "formats/json/locale_independent", "-", "no locale with a decimal comma installed");
        } else {
            d = parse_ok(r, "formats/json/locale_independent", "[3.25]", 6, 0);
            double v = 0;
            int ok = d && peqa_json_as_double(peqa_json_at(peqa_json_root(d), 0), &v) && v == 3.25;
            t_result(r, ok, "formats/json/locale_independent", "-", "locale %s: 3.25 -> %g", got, v);
            peqa_json_free(d);
        }
        setlocale(LC_NUMERIC, saved);
    }

    /* parse_file and the argument checks. */
    {
        peqa_json_doc *dd = (peqa_json_doc *)1;
        peqa_status st = peqa_json_parse_file("/nonexistent/peqa/config.json", 0, &dd);
        t_result(r, st == PEQA_ERR_IO && dd == NULL && msg_has("/nonexistent/peqa/config.json"),
                 "formats/json/file_missing", "-", "status %d: %s", (int)st, peqa_last_error());
        st = peqa_json_parse("{}", 2, 0, NULL, NULL, NULL);
        t_result(r, st == PEQA_ERR_NULL, "formats/json/null_out", "-", "status %d", (int)st);
        st = peqa_json_parse(NULL, 0, 0, "x", &dd, NULL);
        t_result(r, st == PEQA_ERR_FORMAT && dd == NULL, "formats/json/empty_null_text", "-", "status %d: %s", (int)st,
                 peqa_last_error());
    }
}

/* ---- JSON: invalid documents ---------------------------------------------------------------- */

typedef struct {
    const char *name;
    const char *text;
    size_t len; /* 0: strlen */
    size_t off; /* expected error offset */
    const char *msg;
    unsigned flags;
} bad_json;

static void json_invalid(trun *r)
{
    static const bad_json cases[] = {
        {"empty", "", 0, 0, "expected a value", 0},
        {"only_ws", "  \n ", 0, 4, "end of input", 0},
        {"trailing_comma_array", "[1,2,]", 0, 5, "trailing comma", 0},
        {"trailing_comma_object", "{\"a\":1,}", 0, 7, "trailing comma", 0},
        {"missing_comma", "[1 2]", 0, 3, "expected ',' or ']'", 0},
        {"unclosed_array", "[1,2", 0, 4, "end of input", 0},
        {"unclosed_object", "{\"a\":1", 0, 6, "end of input", 0},
        {"leading_zero", "01", 0, 0, "leading zero", 0},
        {"leading_zero_neg", "[-012]", 0, 2, "leading zero", 0},
        {"lone_minus", "-", 0, 1, "digit", 0},
        {"dot_no_digits", "1.", 0, 2, "decimal point", 0},
        {"exp_no_digits", "1e+", 0, 3, "exponent", 0},
        {"leading_dot", ".5", 0, 0, "expected a value", 0},
        {"leading_plus", "+1", 0, 0, "expected a value", 0},
        {"overflow_1e400", "1e400", 0, 0, "out of range", 0},
        {"overflow_neg", "[0, -1e400]", 0, 4, "out of range", 0},
        {"nan", "NaN", 0, 0, "expected a value", 0},
        {"infinity", "[Infinity]", 0, 1, "expected a value", 0},
        {"hex_number", "0x10", 0, 1, "after the JSON value", 0},
        {"bad_literal", "tru", 0, 0, "expected true", 0},
        {"bad_literal_case", "[Null]", 0, 1, "expected a value", 0},
        {"unterminated_string", "\"abc", 0, 0, "unterminated", 0},
        {"unterminated_escape", "\"abc\\", 0, 0, "unterminated", 0},
        {"bad_escape", "\"a\\x\"", 0, 2, "invalid escape", 0},
        {"bad_escape_quote_single", "\"\\'\"", 0, 1, "invalid escape", 0},
        {"bad_unicode_hex", "\"\\u12G4\"", 0, 1, "four hexadecimal", 0},
        {"short_unicode", "\"\\u12\"", 0, 1, "four hexadecimal", 0},
        {"lone_high_surrogate", "\"\\ud800\"", 0, 1, "high surrogate", 0},
        {"high_then_char", "\"x\\uD83Dy\"", 0, 2, "high surrogate", 0},
        {"high_then_high", "\"\\ud800\\ud800\"", 0, 1, "high surrogate", 0},
        {"high_then_bmp", "\"\\ud800\\u0041\"", 0, 1, "high surrogate", 0},
        {"lone_low_surrogate", "\"\\udc00\"", 0, 1, "low surrogate", 0},
        {"control_char", "\"a\x01b\"", 0, 2, "control character", 0},
        {"raw_newline", "\"a\nb\"", 0, 2, "control character", 0},
        {"nul_in_string", "\"a\0b\"", 5, 2, "control character", 0},
        {"nul_outside", "[1,\0]", 5, 3, "byte 0x00", 0},
        {"utf8_invalid_ff", "\"\xff\"", 0, 1, "UTF-8", 0},
        {"utf8_continuation", "\"a\x80\"", 0, 2, "UTF-8", 0},
        {"utf8_overlong_2", "\"\xc0\xaf\"", 0, 1, "UTF-8", 0},
        {"utf8_overlong_3", "\"\xe0\x80\xaf\"", 0, 1, "UTF-8", 0},
        {"utf8_surrogate", "\"\xed\xa0\x80\"", 0, 1, "UTF-8", 0},
        {"utf8_above_10ffff", "\"\xf4\x90\x80\x80\"", 0, 1, "UTF-8", 0},
        {"utf8_truncated", "\"\xe2\x82\"", 0, 1, "UTF-8", 0},
        {"utf8_outside_string", "[\xc3\xa9]", 0, 1, "byte 0xC3", 0},
        {"bom", "\xef\xbb\xbf{}", 0, 0, "byte 0xEF", 0},
        {"missing_colon", "{\"a\" 1}", 0, 5, "':'", 0},
        {"non_string_key", "{1:2}", 0, 1, "string key", 0},
        {"single_quotes", "{'a':1}", 0, 1, "string key", 0},
        {"missing_value", "{\"a\":}", 0, 5, "expected a value", 0},
        {"trailing_garbage", "[1]x", 0, 3, "after the JSON value", 0},
        {"two_values", "[1] [2]", 0, 4, "after the JSON value", 0},
        {"comment", "// c\n{}", 0, 0, "expected a value", 0},
        {"duplicate_key", "{\"a\":1,\"b\":2,\"a\":3}", 0, 13, "duplicate key \"a\"", PEQA_JSON_NO_DUPLICATES},
        {"duplicate_nested", "[{\"k\":[{\"x\":1,\"x\":1}]}]", 0, 14, "duplicate key \"x\"", PEQA_JSON_NO_DUPLICATES},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const bad_json *c = &cases[i];
        size_t len = c->len ? c->len : strlen(c->text), off = 12345;
        peqa_json_doc *d = (peqa_json_doc *)1;
        peqa_status st = peqa_json_parse(c->text, len, c->flags, "bad.json", &d, &off);
        char at[48];
        snprintf(at, sizeof at, "bad.json: JSON error at byte %zu:", c->off);
        int ok = st == PEQA_ERR_FORMAT && d == NULL && off == c->off && msg_has(at) && msg_has(c->msg);
        char name[96];
        snprintf(name, sizeof name, "formats/json/invalid/%s", c->name);
        t_result(r, ok, name, "-", "status %d, offset %zu (want %zu): %s", (int)st, off, c->off, peqa_last_error());
        if (st == PEQA_OK) peqa_json_free(d);
    }

    /* Nesting one past the limit, and a stack-smashing depth: both stop at the limit. */
    size_t deep = 1000000;
    char *buf = malloc(deep);
    memset(buf, '[', deep);
    for (int k = 0; k < 2; k++) {
        size_t len = k ? deep : PEQA_JSON_MAX_DEPTH + 1, off = 0;
        peqa_json_doc *d = NULL;
        peqa_status st = peqa_json_parse(buf, len, 0, "deep.json", &d, &off);
        int ok = st == PEQA_ERR_FORMAT && !d && off == PEQA_JSON_MAX_DEPTH && msg_has("nested deeper than 64");
        t_result(r, ok, k ? "formats/json/invalid/depth_1000000" : "formats/json/invalid/depth_65", "-",
                 "status %d, offset %zu: %s", (int)st, off, peqa_last_error());
        peqa_json_free(d);
    }
    /* The same with objects. */
    {
        size_t n = PEQA_JSON_MAX_DEPTH + 1, k = 0;
        for (size_t i = 0; i < n; i++) buf[k++] = '{', buf[k++] = '"', buf[k++] = 'a', buf[k++] = '"', buf[k++] = ':';
        buf[k++] = '1';
        size_t off = 0;
        peqa_json_doc *d = NULL;
        peqa_status st = peqa_json_parse(buf, k, 0, "deep.json", &d, &off);
        int ok = st == PEQA_ERR_FORMAT && !d && off == 5 * PEQA_JSON_MAX_DEPTH && msg_has("nested deeper");
        t_result(r, ok, "formats/json/invalid/depth_objects", "-", "offset %zu: %s", off, peqa_last_error());
        peqa_json_free(d);
    }
    free(buf);

    /* Size limit: checked before reading a byte (the text pointer is never dereferenced). */
    {
        peqa_json_doc *d = NULL;
        static const char one[] = " ";
        peqa_status st = peqa_json_parse(one, PEQA_JSON_MAX_BYTES + 1, 0, "huge.json", &d, NULL);
        t_result(r, st == PEQA_ERR_FORMAT && !d && msg_has("huge.json") && msg_has("limit"), "formats/json/invalid/too_large",
                 "-", "status %d: %s", (int)st, peqa_last_error());
    }
}

/* ---- safetensors helpers ------------------------------------------------------------------ */

typedef struct {
    char dir[64];
    char paths[64][160];
    int npaths;
} tmpdir;

static const char *tpath(tmpdir *td, const char *name)
{
    if (td->npaths >= 64) return "/nonexistent/too-many-test-files";
    char *p = td->paths[td->npaths++];
    size_t dl = strlen(td->dir), nl = strlen(name);
    if (dl + 1 + nl >= sizeof td->paths[0]) return "/nonexistent/test-file-name-too-long";
    memcpy(p, td->dir, dl);
    p[dl] = '/';
    memcpy(p + dl + 1, name, nl + 1);
    return p;
}

static int write_file(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    if (!f) return 0;
    int ok = fwrite(data, 1, len, f) == len;
    return fclose(f) == 0 && ok;
}

/* A safetensors file from a header text: N (the length field) given or strlen(header), then
 * the header, then data_len bytes of a counting pattern. */
static int make_st(const char *path, const char *header, uint64_t n, size_t data_len)
{
    size_t hl = strlen(header);
    unsigned char *buf = malloc(8 + hl + data_len + 1);
    if (!buf) return 0;
    for (int i = 0; i < 8; i++) buf[i] = (unsigned char)(n >> (8 * i));
    memcpy(buf + 8, header, hl);
    for (size_t i = 0; i < data_len; i++) buf[8 + hl + i] = (unsigned char)(i * 7 + 1);
    int ok = write_file(path, buf, 8 + hl + data_len);
    free(buf);
    return ok;
}

static unsigned char *read_all(const char *path, size_t *len)
{
    char *d;
    if (peqa__read_file(path, (size_t)1 << 26, &d, len) != PEQA_OK) return NULL;
    return (unsigned char *)d;
}

static void expect_open_fail(trun *r, const char *name, const char *path, peqa_status want, const char *msg)
{
    peqa_st_file *f = (peqa_st_file *)1;
    peqa_status st = peqa_st_open(path, &f);
    int ok = st == want && f == NULL && msg_has(path) && msg_has(msg);
    t_result(r, ok, name, "-", "status %d (%s), want %d: %s", (int)st, peqa_status_string(st), (int)want,
             peqa_last_error());
    if (st == PEQA_OK) peqa_st_close(f);
}

/* ---- safetensors: conversions ------------------------------------------------------------- */

static void st_conversions(trun *r)
{
    static const struct { uint16_t h; uint32_t f; } f16[] = {
        {0x0000, 0x00000000}, {0x8000, 0x80000000}, {0x0001, 0x33800000}, {0x8001, 0xB3800000},
        {0x0002, 0x34000000}, {0x03FF, 0x387FC000}, {0x0400, 0x38800000}, {0x3C00, 0x3F800000},
        {0xC000, 0xC0000000}, {0x3555, 0x3EAAA000}, {0x7BFF, 0x477FE000}, {0x7C00, 0x7F800000},
        {0xFC00, 0xFF800000}, {0x7E00, 0x7FC00000}, {0x7D01, 0x7FA02000}, {0xFE01, 0xFFC02000},
    };
    int bad = -1;
    for (size_t i = 0; i < sizeof f16 / sizeof f16[0] && bad < 0; i++)
        if (fbits(peqa_st_f16_to_f32(f16[i].h)) != f16[i].f) bad = (int)i;
    t_result(r, bad < 0, "formats/convert/f16_to_f32", "-", "%zu patterns (subnormal, inf, NaN payload); first bad %d",
             sizeof f16 / sizeof f16[0], bad);

    /* Every F16 value converts to f32 and back to itself (NaNs: stay NaN). */
    int bad16 = -1;
    for (uint32_t h = 0; h < 65536 && bad16 < 0; h++) {
        float v = peqa_st_f16_to_f32((uint16_t)h);
        uint16_t back = peqa_st_f32_to_f16(v);
        int isnan16 = (h & 0x7C00) == 0x7C00 && (h & 0x3FF);
        if (isnan16 ? !(isnan(v) && (back & 0x7C00) == 0x7C00 && (back & 0x3FF) && (back & 0x8000) == (h & 0x8000))
                    : back != h)
            bad16 = (int)h;
    }
    t_result(r, bad16 < 0, "formats/convert/f16_round_trip_all", "-", "65536 patterns; first bad 0x%04X", (unsigned)bad16);

    /* f32 -> f16 rounding: ties to even, subnormal rounding, overflow. */
    static const struct { uint32_t f; uint16_t h; } to16[] = {
        {0x3F800000, 0x3C00}, /* 1 */
        {0x3F801000, 0x3C00}, /* 1 + 2^-11: a tie, to even (down) */
        {0x3F803000, 0x3C02}, /* 1 + 3·2^-11: a tie, to even (up) */
        {0x3F801001, 0x3C01}, /* just above the tie */
        {0x477FF000, 0x7C00}, /* 65520 = max + half ulp: a tie that rounds up to inf */
        {0x477FEFFF, 0x7BFF}, /* just below: 65504 */
        {0x47800000, 0x7C00}, /* 65536 */
        {0x33000000, 0x0000}, /* 2^-25: a tie between 0 and the smallest subnormal, to even */
        {0x33000001, 0x0001}, /* just above */
        {0x33C00000, 0x0002}, /* 1.5·2^-24: a tie, to even (2) */
        {0x387FE000, 0x0400}, /* just below 2^-14: rounds up to the smallest normal */
        {0xB3800000, 0x8001}, /* -2^-24 */
        {0x00000001, 0x0000}, /* an f32 subnormal */
        {0x80000000, 0x8000}, /* -0 */
        {0xFF800000, 0xFC00}, /* -inf */
        {0x7FC00000, 0x7E00}, /* NaN */
    };
    bad = -1;
    for (size_t i = 0; i < sizeof to16 / sizeof to16[0] && bad < 0; i++)
        if (peqa_st_f32_to_f16(bitsf(to16[i].f)) != to16[i].h) bad = (int)i;
    t_result(r, bad < 0, "formats/convert/f32_to_f16_rounding", "-", "%zu cases; first bad %d (got 0x%04X)",
             sizeof to16 / sizeof to16[0], bad, bad < 0 ? 0 : peqa_st_f32_to_f16(bitsf(to16[bad].f)));

    static const struct { uint32_t f; uint16_t b; } tobf[] = {
        {0x3F800000, 0x3F80}, {0x3F808000, 0x3F80}, {0x3F818000, 0x3F82}, {0x3F808001, 0x3F81},
        {0x7F7FFFFF, 0x7F80}, {0x00010000, 0x0001}, {0xFF800000, 0xFF80}, {0x7F800001, 0x7FC0},
    };
    bad = -1;
    for (size_t i = 0; i < sizeof tobf / sizeof tobf[0] && bad < 0; i++)
        if (peqa_st_f32_to_bf16(bitsf(tobf[i].f)) != tobf[i].b ||
            (i != 7 && fbits(peqa_st_bf16_to_f32(tobf[i].b)) != (uint32_t)tobf[i].b << 16))
            bad = (int)i;
    t_result(r, bad < 0, "formats/convert/bf16", "-", "%zu cases (ties to even, overflow, NaN quieted); first bad %d",
             sizeof tobf / sizeof tobf[0], bad);
}

/* ---- safetensors: round trip -------------------------------------------------------------- */

static void put_le(unsigned char *p, uint64_t v, int bytes)
{
    for (int i = 0; i < bytes; i++) p[i] = (unsigned char)(v >> (8 * i));
}

/* The header ends with '}' and fewer than 8 spaces of padding. */
static int pad_ok(const unsigned char *h, size_t n)
{
    size_t k = n;
    while (k > 0 && h[k - 1] == ' ') k--;
    return k > 0 && h[k - 1] == '}' && n - k < 8;
}

static void st_round_trip(trun *r, tmpdir *td)
{
    const char *path = tpath(td, "rt.safetensors");
    /* F32 from bit patterns: -0, inf, NaN with payload, the smallest subnormal, ordinary values. */
    static const uint32_t f32b[6] = {0x80000000, 0x7F800000, 0x7FC00123, 0x00000001, 0x3FC00000, 0xC2F6E979};
    unsigned char f32d[24];
    for (int i = 0; i < 6; i++) put_le(f32d + 4 * i, f32b[i], 4);
    static const uint16_t f16b[12] = {0x0000, 0x8000, 0x0001, 0x03FF, 0x0400, 0x3C00,
                                      0xC000, 0x7BFF, 0x7C00, 0xFC00, 0x7E00, 0x7D01};
    static const uint32_t f16w[12] = {0x00000000, 0x80000000, 0x33800000, 0x387FC000, 0x38800000, 0x3F800000,
                                      0xC0000000, 0x477FE000, 0x7F800000, 0xFF800000, 0x7FC00000, 0x7FA02000};
    unsigned char f16d[24];
    for (int i = 0; i < 12; i++) put_le(f16d + 2 * i, f16b[i], 2);
    static const uint16_t bfb[4] = {0x3F80, 0xFF80, 0x0001, 0x7FC1};
    unsigned char bfd[8];
    for (int i = 0; i < 4; i++) put_le(bfd + 2 * i, bfb[i], 2);
    unsigned char u8d[256], i8d[3] = {0x80, 0xFF, 0x7F}, i32d[16], u32d[8], i64d[16], f64d[8];
    for (int i = 0; i < 256; i++) u8d[i] = (unsigned char)i;
    static const int32_t i32v[4] = {-1, INT32_MIN, INT32_MAX, 0x12345678};
    for (int i = 0; i < 4; i++) put_le(i32d + 4 * i, (uint32_t)i32v[i], 4);
    put_le(u32d, 0xDEADBEEFu, 4), put_le(u32d + 4, 7, 4);
    put_le(i64d, (uint64_t)INT64_MIN, 8), put_le(i64d + 8, 0x0102030405060708ull, 8);
    put_le(f64d, 0x3FF0000000000000ull, 8);

    static const int64_t s23[] = {2, 3}, s12[] = {12}, s22[] = {2, 2}, s256[] = {256}, s3[] = {3}, s2[] = {2},
                         s04[] = {0, 4}, s1[] = {1};
    peqa_st_writer *w = NULL;
    peqa_status st = peqa_st_writer_create(&w);
    int ok = st == PEQA_OK;
    ok = ok && !peqa_st_writer_add(w, "w.f32", PEQA_ST_F32, 2, s23, f32d, 24);
    ok = ok && !peqa_st_writer_add(w, "w.f16", PEQA_ST_F16, 1, s12, f16d, 24);
    ok = ok && !peqa_st_writer_add(w, "w.bf16", PEQA_ST_BF16, 2, s22, bfd, 8);
    ok = ok && !peqa_st_writer_add(w, "codes.u8", PEQA_ST_U8, 1, s256, u8d, 256);
    ok = ok && !peqa_st_writer_add(w, "codes.i8", PEQA_ST_I8, 1, s3, i8d, 3);
    ok = ok && !peqa_st_writer_add(w, "qweight", PEQA_ST_I32, 2, s22, i32d, 16);
    ok = ok && !peqa_st_writer_add(w, "u32", PEQA_ST_U32, 1, s2, u32d, 8);
    ok = ok && !peqa_st_writer_add(w, "g_idx", PEQA_ST_I64, 1, s2, i64d, 16);
    ok = ok && !peqa_st_writer_add(w, "scalar", PEQA_ST_F64, 0, NULL, f64d, 8);
    ok = ok && !peqa_st_writer_add(w, "empty", PEQA_ST_F32, 2, s04, NULL, 0);
    ok = ok && !peqa_st_writer_add(w, "b", PEQA_ST_U8, 1, s1, u8d + 5, 1);
    ok = ok && !peqa_st_writer_set_metadata(w, "zeta", "last \"quoted\"\n") &&
         !peqa_st_writer_set_metadata(w, "alpha", "x") && !peqa_st_writer_set_metadata(w, "alpha", "\xc3\xa9");
    ok = ok && !peqa_st_writer_write(w, path);
    t_result(r, ok, "formats/st/write", "-", "11 tensors, metadata: %s", ok ? "ok" : peqa_last_error());

    /* Writer argument errors (each leaves the writer usable). */
    static const int64_t sneg[] = {-1};
    st = peqa_st_writer_add(w, "w.f32", PEQA_ST_F32, 2, s23, f32d, 24);
    t_result(r, st == PEQA_ERR_ARG && msg_has("already added"), "formats/st/writer_duplicate", "-", "%s", peqa_last_error());
    st = peqa_st_writer_add(w, "x", PEQA_ST_F32, 2, s23, f32d, 20);
    t_result(r, st == PEQA_ERR_SHAPE && msg_has("24 bytes"), "formats/st/writer_size_mismatch", "-", "%s", peqa_last_error());
    st = peqa_st_writer_add(w, "__metadata__", PEQA_ST_U8, 1, s1, u8d, 1);
    t_result(r, st == PEQA_ERR_ARG, "formats/st/writer_reserved_name", "-", "%s", peqa_last_error());
    st = peqa_st_writer_add(w, "bad\xff", PEQA_ST_U8, 1, s1, u8d, 1);
    t_result(r, st == PEQA_ERR_ARG, "formats/st/writer_name_utf8", "-", "%s", peqa_last_error());
    st = peqa_st_writer_add(w, "neg", PEQA_ST_U8, 1, sneg, u8d, 1);
    t_result(r, st == PEQA_ERR_SHAPE, "formats/st/writer_negative_dim", "-", "%s", peqa_last_error());
    st = peqa_st_writer_add(w, "f4odd", PEQA_ST_F4, 1, s3, u8d, 2);
    t_result(r, st == PEQA_ERR_SHAPE && msg_has("whole number of bytes"), "formats/st/writer_subbyte", "-", "%s",
             peqa_last_error());
    st = peqa_st_writer_write(w, "/nonexistent-dir/peqa/x.safetensors");
    t_result(r, st == PEQA_ERR_IO && msg_has("/nonexistent-dir/peqa/x.safetensors"), "formats/st/writer_bad_dir", "-",
             "%s", peqa_last_error());
    peqa_st_writer_free(w);

    /* The bytes on disk: header length multiple of 8, metadata first with sorted keys, tensors in
     * offset order sorted by dtype (descending enum order) then name. */
    size_t flen = 0;
    unsigned char *raw = read_all(path, &flen);
    uint64_t n = 0;
    if (raw && flen >= 8)
        for (int i = 7; i >= 0; i--) n = n << 8 | raw[i];
    static const char head[] = "{\"__metadata__\":{\"alpha\":\"\xc3\xa9\",\"format\":\"pt\",\"zeta\":\"last \\\"quoted\\\"\\n\"},"
                               "\"g_idx\":{\"dtype\":\"I64\",\"shape\":[2],\"data_offsets\":[0,16]},"
                               "\"scalar\":{\"dtype\":\"F64\",\"shape\":[],\"data_offsets\":[16,24]},"
                               "\"empty\":{\"dtype\":\"F32\",\"shape\":[0,4],\"data_offsets\":[24,24]},"
                               "\"w.f32\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[24,48]},";
    ok = raw && n % 8 == 0 && n >= sizeof head && 8 + n <= flen && !memcmp(raw + 8, head, sizeof head - 1) &&
         pad_ok(raw + 8, (size_t)n) && flen == 8 + n + 24 + 24 + 8 + 256 + 3 + 16 + 8 + 16 + 8 + 1;
    size_t diff = 0;
    while (raw && diff < sizeof head - 1 && 8 + diff < flen && raw[8 + diff] == (unsigned char)head[diff]) diff++;
    t_result(r, ok, "formats/st/header_layout", "-", "N = %llu, file %zu bytes, header matches up to byte %zu: %.40s",
             (unsigned long long)n, flen, diff, raw && 8 + diff < flen ? (const char *)raw + 8 + diff : "");
    free(raw);

    peqa_st_file *f = NULL;
    st = peqa_st_open(path, &f);
    if (st != PEQA_OK) {
        t_result(r, 0, "formats/st/read", "-", "open failed: %s", peqa_last_error());
        return;
    }
    static const char *const order[] = {"g_idx", "scalar", "empty", "w.f32", "u32", "qweight",
                                        "w.bf16", "w.f16", "codes.i8", "b", "codes.u8"};
    ok = peqa_st_count(f) == 11;
    for (size_t i = 0; ok && i < 11; i++) {
        const peqa_st_tensor *t = peqa_st_tensor_at(f, i);
        ok = t && !strcmp(t->name, order[i]) && t->begin % (uint64_t)(peqa_st_dtype_bits(t->dtype) / 8) == 0;
    }
    const peqa_st_tensor *ts = peqa_st_find(f, "scalar"), *te = peqa_st_find(f, "empty"), *tf = peqa_st_find(f, "w.f32");
    ok = ok && ts && ts->ndim == 0 && ts->numel == 1 && ts->nbytes == 8 && te && te->ndim == 2 && te->numel == 0 &&
         tf && tf->dtype == PEQA_ST_F32 && tf->ndim == 2 && tf->shape[0] == 2 && tf->shape[1] == 3 && tf->numel == 6 &&
         !peqa_st_tensor_at(f, 11);
    t_result(r, ok, "formats/st/tensor_list", "-", "11 tensors in dtype-then-name order, aligned offsets");

    const char *mk = NULL, *mv = NULL;
    ok = peqa_st_metadata(f, "format") && !strcmp(peqa_st_metadata(f, "format"), "pt") &&
         !strcmp(peqa_st_metadata(f, "alpha"), "\xc3\xa9") && !strcmp(peqa_st_metadata(f, "zeta"), "last \"quoted\"\n") &&
         !peqa_st_metadata(f, "nope") && peqa_st_metadata_count(f) == 3 && peqa_st_metadata_at(f, 2, &mk, &mv) &&
         !strcmp(mk, "zeta") && !peqa_st_metadata_at(f, 3, &mk, &mv);
    t_result(r, ok, "formats/st/metadata", "-", "format=pt, alpha, zeta (escaped) read back");

    float *v = NULL;
    size_t cnt = 0;
    st = peqa_st_read_f32(f, "w.f32", &v, &cnt);
    ok = st == PEQA_OK && cnt == 6;
    for (int i = 0; ok && i < 6; i++) ok = fbits(v[i]) == f32b[i];
    t_result(r, ok, "formats/st/f32_bits", "-", "6 values incl. -0, inf, NaN payload, subnormal: %s",
             st ? peqa_last_error() : "bit-exact");
    free(v);

    st = peqa_st_read_f32(f, "w.f16", &v, &cnt);
    int first = -1;
    for (int i = 0; st == PEQA_OK && cnt == 12 && i < 12 && first < 0; i++)
        if (fbits(v[i]) != f16w[i]) first = i;
    t_result(r, st == PEQA_OK && cnt == 12 && first < 0, "formats/st/f16_to_f32", "-",
             "12 hand-made F16 patterns; first mismatch %d: %s", first, st ? peqa_last_error() : "ok");
    free(v);

    st = peqa_st_read_f32(f, "w.bf16", &v, &cnt);
    first = -1;
    for (int i = 0; st == PEQA_OK && cnt == 4 && i < 4 && first < 0; i++)
        if (fbits(v[i]) != (uint32_t)bfb[i] << 16) first = i;
    t_result(r, st == PEQA_OK && cnt == 4 && first < 0, "formats/st/bf16_to_f32", "-", "4 BF16 patterns; first mismatch %d",
             first);
    free(v);

    st = peqa_st_read_f32(f, "empty", &v, &cnt);
    t_result(r, st == PEQA_OK && cnt == 0 && v != NULL, "formats/st/empty_tensor", "-", "0 elements, non-NULL buffer");
    free(v);

    const struct { const char *name; const unsigned char *want; size_t n; } raws[] = {
        {"codes.u8", u8d, 256}, {"codes.i8", i8d, 3}, {"qweight", i32d, 16}, {"u32", u32d, 8},
        {"g_idx", i64d, 16},    {"scalar", f64d, 8},  {"b", u8d + 5, 1},
    };
    for (size_t i = 0; i < sizeof raws / sizeof raws[0]; i++) {
        void *b = NULL;
        size_t nb = 0;
        st = peqa_st_read_raw(f, raws[i].name, &b, &nb);
        char name[64];
        snprintf(name, sizeof name, "formats/st/raw/%s", raws[i].name);
        t_result(r, st == PEQA_OK && nb == raws[i].n && !memcmp(b, raws[i].want, nb), name, "-", "%zu bytes: %s", nb,
                 st ? peqa_last_error() : "identical");
        free(b);
    }

    /* Wrong requests on a good file. */
    st = peqa_st_read_f32(f, "qweight", &v, &cnt);
    t_result(r, st == PEQA_ERR_FORMAT && v == NULL && msg_has(path) && msg_has("dtype I32"), "formats/st/f32_of_int", "-",
             "%s", peqa_last_error());
    float four[4];
    st = peqa_st_read_f32_into(f, peqa_st_find(f, "w.bf16"), four, 3);
    t_result(r, st == PEQA_ERR_SHAPE && msg_has(path), "formats/st/f32_into_count", "-", "%s", peqa_last_error());
    const peqa_st_tensor *tm = (const peqa_st_tensor *)1;
    st = peqa_st_get(f, "model.missing.weight", &tm);
    t_result(r, st == PEQA_ERR_FORMAT && tm == NULL && msg_has(path) && msg_has("model.missing.weight") &&
                    peqa_st_find(f, "model.missing.weight") == NULL,
             "formats/st/missing_tensor", "-", "%s", peqa_last_error());
    void *b = NULL;
    size_t nb = 0;
    st = peqa_st_read_raw(f, "model.missing.weight", &b, &nb);
    t_result(r, st == PEQA_ERR_FORMAT && b == NULL && msg_has(path), "formats/st/missing_tensor_raw", "-", "%s",
             peqa_last_error());
    peqa_st_tensor fake = *peqa_st_find(f, "codes.u8");
    unsigned char sink[256];
    st = peqa_st_read_raw_into(f, &fake, sink, 256);
    t_result(r, st == PEQA_ERR_ARG, "formats/st/foreign_tensor", "-", "%s", peqa_last_error());
    peqa_st_close(f);

    /* Overwriting an existing file leaves no temporary behind. */
    peqa_st_writer *w2 = NULL;
    ok = !peqa_st_writer_create(&w2) && !peqa_st_writer_write(w2, path);
    char tmp[160];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    ok = ok && access(tmp, F_OK) != 0;
    raw = read_all(path, &flen);
    /* No tensors: {"__metadata__":{"format":"pt"}} is 32 bytes, a multiple of 8 already. */
    static const char empty_hdr[] = "{\"__metadata__\":{\"format\":\"pt\"}}";
    ok = ok && raw && flen == 40 && raw[0] == 32 && !memcmp(raw + 1, "\0\0\0\0\0\0\0", 7) &&
         !memcmp(raw + 8, empty_hdr, 32);
    t_result(r, ok, "formats/st/write_empty_exact", "-", "overwrite; %zu bytes, no .tmp left", flen);
    free(raw);
    peqa_st_writer_free(w2);
}

/* ---- safetensors: files from other writers and hand-made bad files ---------------------------- */

static void st_foreign_and_bad(trun *r, tmpdir *td)
{
    /* The reference's own test vector (test_serialization): no __metadata__, no padding. */
    const char *p = tpath(td, "ref.safetensors");
    {
        const char hdr[] = "{\"attn.0\":{\"dtype\":\"F32\",\"shape\":[1,2,3],\"data_offsets\":[0,24]}}";
        unsigned char buf[8 + 64 + 24] = {64};
        memcpy(buf + 8, hdr, 64);
        for (int i = 0; i < 6; i++) {
            float x = (float)i;
            put_le(buf + 72 + 4 * i, fbits(x), 4);
        }
        write_file(p, buf, sizeof buf);
        peqa_st_file *f = NULL;
        float *v = NULL;
        size_t n = 0;
        int ok = !peqa_st_open(p, &f) && peqa_st_metadata_count(f) == 0 && !peqa_st_read_f32(f, "attn.0", &v, &n) &&
                 n == 6 && v[0] == 0.0f && v[5] == 5.0f;
        t_result(r, ok, "formats/st/reference_vector", "-", "%s", ok ? "read" : peqa_last_error());
        free(v);
        peqa_st_close(f);
    }
    /* Entries in any order, whitespace around the object, unknown fields ignored. */
    p = tpath(td, "unordered.safetensors");
    {
        const char hdr[] = "\n {\"b\":{\"data_offsets\":[4,8],\"shape\":[2],\"dtype\":\"BF16\",\"extra\":[1]},"
                           "\"a\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[0,4]},\"__metadata__\":{}} \t";
        make_st(p, hdr, strlen(hdr), 8);
        peqa_st_file *f = NULL;
        int ok = !peqa_st_open(p, &f) && peqa_st_count(f) == 2 && !strcmp(peqa_st_tensor_at(f, 0)->name, "a") &&
                 !strcmp(peqa_st_tensor_at(f, 1)->name, "b") && peqa_st_find(f, "b")->dtype == PEQA_ST_BF16;
        t_result(r, ok, "formats/st/unordered_entries", "-", "%s", ok ? "accepted" : peqa_last_error());
        peqa_st_close(f);
    }

    static const char good1[] = "{\"x\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}";
    struct bad {
        const char *name, *header;
        int64_t n;   /* -1: strlen(header) */
        size_t data; /* data bytes after the header */
        peqa_status want;
        const char *msg;
    };
    static const struct bad bads[] = {
        {"header_length_past_end", good1, 1000, 8, PEQA_ERR_FORMAT, "runs past the end"},
        {"header_too_large", good1, 100000001, 8, PEQA_ERR_FORMAT, "exceeds the limit"},
        {"header_length_2pow63", good1, INT64_MIN, 8, PEQA_ERR_FORMAT, "exceeds the limit"},
        {"not_utf8", "{\"x\xff\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", -1, 8, PEQA_ERR_FORMAT,
         "not valid UTF-8 (header byte 3)"},
        {"not_json", "{\"x\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}", -1, 8, PEQA_ERR_FORMAT,
         "header: JSON error at byte 53: expected ',' or '}'"},
        {"not_object", "[1, 2]  ", -1, 0, PEQA_ERR_FORMAT, "not an object"},
        {"entry_not_object", "{\"x\":[1]}", -1, 0, PEQA_ERR_FORMAT, "tensor 'x': entry is a JSON array"},
        {"overlap", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                    "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", -1, 12, PEQA_ERR_FORMAT,
         "tensor 'b' data_offsets [4, 12] overlap tensor 'a' [0, 8]"},
        {"alias", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                  "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", -1, 8, PEQA_ERR_FORMAT, "overlap"},
        {"gap", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[12,20]}}", -1, 20, PEQA_ERR_FORMAT,
         "bytes [8, 12) before tensor 'b'"},
        {"gap_at_start", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", -1, 12, PEQA_ERR_FORMAT,
         "bytes [0, 4)"},
        {"end_before_start", "{\"a\":{\"dtype\":\"U8\",\"shape\":[8],\"data_offsets\":[0,8]},"
                             "\"x\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,4]}}", -1, 8, PEQA_ERR_FORMAT,
         "tensor 'x' data_offsets [8, 4] end before start"},
        {"size_mismatch", "{\"x\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", -1, 8, PEQA_ERR_FORMAT,
         "dtype F32 with shape [3] needs 12 bytes but data_offsets [0, 8] span 8"},
        {"dtype_mismatch", "{\"x\":{\"dtype\":\"F16\",\"shape\":[2],\"data_offsets\":[0,8]}}", -1, 8, PEQA_ERR_FORMAT,
         "needs 4 bytes"},
        {"shape_overflow", "{\"x\":{\"dtype\":\"F32\",\"shape\":[1099511627776,1099511627776],\"data_offsets\":[0,8]}}",
         -1, 8, PEQA_ERR_FORMAT, "overflows 64 bits"},
        {"bytes_overflow", "{\"x\":{\"dtype\":\"F64\",\"shape\":[2305843009213693952],\"data_offsets\":[0,8]}}", -1, 8,
         PEQA_ERR_FORMAT, "overflows 64 bits"},
        {"huge_dim_not_int", "{\"x\":{\"dtype\":\"U8\",\"shape\":[18446744073709551616],\"data_offsets\":[0,8]}}", -1, 8,
         PEQA_ERR_FORMAT, "shape[0]"},
        {"negative_dim", "{\"x\":{\"dtype\":\"U8\",\"shape\":[-8],\"data_offsets\":[0,8]}}", -1, 8, PEQA_ERR_FORMAT,
         "shape[0] is not an integer"},
        {"float_dim", "{\"x\":{\"dtype\":\"U8\",\"shape\":[8.0],\"data_offsets\":[0,8]}}", -1, 8, PEQA_ERR_FORMAT,
         "shape[0]"},
        {"subbyte_partial", "{\"x\":{\"dtype\":\"F4\",\"shape\":[3],\"data_offsets\":[0,2]}}", -1, 2, PEQA_ERR_FORMAT,
         "whole bytes"},
        {"unknown_dtype", "{\"x\":{\"dtype\":\"F99\",\"shape\":[2],\"data_offsets\":[0,8]}}", -1, 8, PEQA_ERR_FORMAT,
         "unknown dtype \"F99\""},
        {"missing_dtype", "{\"x\":{\"shape\":[2],\"data_offsets\":[0,8]}}", -1, 8, PEQA_ERR_FORMAT, "missing \"dtype\""},
        {"missing_shape", "{\"x\":{\"dtype\":\"U8\",\"data_offsets\":[0,8]}}", -1, 8, PEQA_ERR_FORMAT, "missing \"shape\""},
        {"missing_offsets", "{\"x\":{\"dtype\":\"U8\",\"shape\":[8]}}", -1, 8, PEQA_ERR_FORMAT, "missing \"data_offsets\""},
        {"three_offsets", "{\"x\":{\"dtype\":\"U8\",\"shape\":[8],\"data_offsets\":[0,8,8]}}", -1, 8, PEQA_ERR_FORMAT,
         "two integers"},
        {"negative_offset", "{\"x\":{\"dtype\":\"U8\",\"shape\":[8],\"data_offsets\":[-8,0]}}", -1, 8, PEQA_ERR_FORMAT,
         "two integers"},
        {"metadata_not_string", "{\"__metadata__\":{\"format\":\"pt\",\"n\":1}}", -1, 0, PEQA_ERR_FORMAT,
         "value for \"n\" is a JSON integer"},
        {"metadata_not_object", "{\"__metadata__\":\"pt\"}", -1, 0, PEQA_ERR_FORMAT, "not an object"},
        {"duplicate_tensor", "{\"x\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]},"
                             "\"x\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[1,2]}}", -1, 2, PEQA_ERR_FORMAT,
         "duplicate key \"x\""},
        {"trailing_bytes", good1, -1, 9, PEQA_ERR_FORMAT, "1 trailing bytes"},
        {"truncated_data", good1, -1, 5, PEQA_ERR_FORMAT, "truncated"},
        {"no_data_at_all", good1, -1, 0, PEQA_ERR_FORMAT, "truncated"},
    };
    for (size_t i = 0; i < sizeof bads / sizeof bads[0]; i++) {
        char fname[80], name[96];
        snprintf(fname, sizeof fname, "bad_%s.safetensors", bads[i].name);
        snprintf(name, sizeof name, "formats/st/bad/%s", bads[i].name);
        const char *bp = tpath(td, fname);
        uint64_t n = bads[i].n == -1 ? strlen(bads[i].header) : (uint64_t)bads[i].n;
        if (!make_st(bp, bads[i].header, n, bads[i].data)) {
            t_result(r, 0, name, "-", "cannot create %s", bp);
            continue;
        }
        expect_open_fail(r, name, bp, bads[i].want, bads[i].msg);
    }

    /* Short files and a missing file. */
    p = tpath(td, "short.safetensors");
    write_file(p, "\x08\0\0\0\0", 5);
    expect_open_fail(r, "formats/st/bad/five_bytes", p, PEQA_ERR_FORMAT, "too short");
    p = tpath(td, "zero.safetensors");
    write_file(p, "", 0);
    expect_open_fail(r, "formats/st/bad/empty_file", p, PEQA_ERR_FORMAT, "0 bytes");
    expect_open_fail(r, "formats/st/bad/missing_file", "/nonexistent/peqa/model.safetensors", PEQA_ERR_IO, "cannot open");
    expect_open_fail(r, "formats/st/bad/directory", td->dir, PEQA_ERR_IO, NULL);

    /* A file truncated after it was opened: the read fails cleanly. The tensor is larger than
     * any stdio buffer, so its end really is read from the (now shorter) file. */
    p = tpath(td, "shrinks.safetensors");
    static const char big[] = "{\"x\":{\"dtype\":\"F32\",\"shape\":[262144],\"data_offsets\":[0,1048576]}}";
    make_st(p, big, strlen(big), 1048576);
    peqa_st_file *f = NULL;
    if (peqa_st_open(p, &f) != PEQA_OK) {
        t_result(r, 0, "formats/st/truncated_after_open", "-", "open failed: %s", peqa_last_error());
    } else {
        int tr = truncate(p, (off_t)(8 + strlen(big) + 1000));
        float *v = NULL;
        size_t n = 0;
        peqa_status st = peqa_st_read_f32(f, "x", &v, &n);
        t_result(r, tr == 0 && st == PEQA_ERR_IO && v == NULL && msg_has(p) && msg_has("'x'"),
                 "formats/st/truncated_after_open", "-", "status %d: %s", (int)st, peqa_last_error());
        free(v);
        peqa_st_close(f);
    }
}

/* ---- safetensors: shards ------------------------------------------------------------------ */

static int write_shard(const char *path, const char *n1, const float *d1, int64_t c1, const char *n2, const float *d2,
                       int64_t c2)
{
    peqa_st_writer *w = NULL;
    if (peqa_st_writer_create(&w)) return 0;
    int ok = !peqa_st_writer_add(w, n1, PEQA_ST_F32, 1, &c1, d1, (size_t)c1 * 4);
    if (n2) ok = ok && !peqa_st_writer_add(w, n2, PEQA_ST_F32, 1, &c2, d2, (size_t)c2 * 4);
    ok = ok && !peqa_st_writer_write(w, path);
    peqa_st_writer_free(w);
    return ok;
}

static void st_shards(trun *r, tmpdir *td)
{
    static const float a[3] = {1, 2, 3}, b[2] = {-4, 5}, c[4] = {6, 7, 8, 9};
    const char *s1 = tpath(td, "model-00001-of-00002.safetensors"), *s2 = tpath(td, "model-00002-of-00002.safetensors");
    const char *idx = tpath(td, "model.safetensors.index.json");
    int ok = write_shard(s1, "model.a", a, 3, "model.b", b, 2) && write_shard(s2, "lm_head.weight", c, 4, NULL, NULL, 0);
    static const char index[] =
        "{\"metadata\": {\"total_size\": 36},\n \"weight_map\": {\"model.b\": \"model-00001-of-00002.safetensors\",\n"
        "  \"lm_head.weight\": \"model-00002-of-00002.safetensors\", \"model.a\": \"model-00001-of-00002.safetensors\"}}\n";
    ok = ok && write_file(idx, index, strlen(index));
    if (!ok) {
        t_result(r, 0, "formats/shards/setup", "-", "cannot write shards: %s", peqa_last_error());
        return;
    }
    for (int via_dir = 0; via_dir < 2; via_dir++) {
        peqa_st_set *s = NULL;
        peqa_status st = peqa_st_set_open(via_dir ? td->dir : idx, &s);
        const char *name = via_dir ? "formats/shards/open_directory" : "formats/shards/open_index";
        if (st) {
            t_result(r, 0, name, "-", "%s", peqa_last_error());
            continue;
        }
        peqa_st_file *fa = NULL, *fc = NULL, *fb = NULL;
        const peqa_st_tensor *ta = NULL, *tc = NULL, *tb = NULL;
        float *v = NULL;
        size_t n = 0;
        ok = peqa_st_set_count(s) == 3 && peqa_st_set_shard_count(s) == 2 &&
             peqa_st_set_find(s, "model.a", &fa, &ta) && peqa_st_set_find(s, "model.b", &fb, &tb) &&
             peqa_st_set_find(s, "lm_head.weight", &fc, &tc) && fa == fb && fa != fc &&
             !strcmp(peqa_st_path(fc), s2) && !strcmp(peqa_st_path(fa), s1) && ta->numel == 3 &&
             !peqa_st_set_find(s, "model.missing", NULL, NULL) && !peqa_st_read_f32(fc, tc->name, &v, &n) && n == 4 &&
             !memcmp(v, c, sizeof c);
        /* Iteration is by name. */
        peqa_st_file *fi = NULL;
        const peqa_st_tensor *ti = NULL;
        ok = ok && peqa_st_set_at(s, 0, &fi, &ti) && !strcmp(ti->name, "lm_head.weight") && fi == fc &&
             peqa_st_set_at(s, 2, &fi, &ti) && !strcmp(ti->name, "model.b") && !peqa_st_set_at(s, 3, &fi, &ti);
        free(v);
        t_result(r, ok, name, "-", "3 tensors in 2 shards, each shard opened once");
        const peqa_st_tensor *tm = NULL;
        st = peqa_st_set_get(s, "model.missing", &fi, &tm);
        t_result(r, st == PEQA_ERR_FORMAT && msg_has("model.missing") && msg_has(via_dir ? td->dir : idx),
                 via_dir ? "formats/shards/missing_tensor_dir" : "formats/shards/missing_tensor", "-", "%s",
                 peqa_last_error());
        peqa_st_set_close(s);
    }

    /* One file as a set. */
    {
        peqa_st_set *s = NULL;
        peqa_status st = peqa_st_set_open(s1, &s);
        peqa_st_file *ff = NULL;
        ok = st == PEQA_OK && peqa_st_set_count(s) == 2 && peqa_st_set_shard_count(s) == 1 &&
             peqa_st_set_find(s, "model.b", &ff, NULL) && ff == peqa_st_set_shard(s, 0);
        t_result(r, ok, "formats/shards/single_file", "-", "%s", st ? peqa_last_error() : "2 tensors");
        peqa_st_set_close(s);
    }

    struct { const char *name, *json, *msg; peqa_status want; } bad[] = {
        {"mapped_but_absent", "{\"weight_map\":{\"model.zz\":\"model-00001-of-00002.safetensors\"}}",
         "tensor 'model.zz' is mapped to 'model-00001-of-00002.safetensors'", PEQA_ERR_FORMAT},
        {"shard_missing", "{\"weight_map\":{\"model.a\":\"model-00009-of-00009.safetensors\"}}",
         "model-00009-of-00009.safetensors: cannot open", PEQA_ERR_IO},
        {"dotdot", "{\"weight_map\":{\"model.a\":\"../model-00001-of-00002.safetensors\"}}", "relative path",
         PEQA_ERR_FORMAT},
        {"absolute", "{\"weight_map\":{\"model.a\":\"/etc/passwd\"}}", "relative path", PEQA_ERR_FORMAT},
        {"not_string", "{\"weight_map\":{\"model.a\":1}}", "not a string", PEQA_ERR_FORMAT},
        {"no_weight_map", "{\"metadata\":{}}", "missing \"weight_map\"", PEQA_ERR_FORMAT},
        {"not_json", "{\"weight_map\":{", "JSON error at byte 15", PEQA_ERR_FORMAT},
        {"duplicate", "{\"weight_map\":{\"model.a\":\"x\",\"model.a\":\"y\"}}", "duplicate key", PEQA_ERR_FORMAT},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char fname[64], name[96];
        snprintf(fname, sizeof fname, "bad_%s.index.json", bad[i].name);
        snprintf(name, sizeof name, "formats/shards/bad/%s", bad[i].name);
        const char *bp = tpath(td, fname);
        write_file(bp, bad[i].json, strlen(bad[i].json));
        peqa_st_set *s = (peqa_st_set *)1;
        peqa_status st = peqa_st_set_open(bp, &s);
        int good = st == bad[i].want && s == NULL && msg_has(bad[i].msg) &&
                   (bad[i].want == PEQA_ERR_IO || msg_has(bp));
        t_result(r, good, name, "-", "status %d: %s", (int)st, peqa_last_error());
        if (st == PEQA_OK) peqa_st_set_close(s);
    }
}

void test_formats(trun *r)
{
    json_valid(r);
    json_invalid(r);
    st_conversions(r);
    tmpdir td = {.npaths = 0};
    snprintf(td.dir, sizeof td.dir, "/tmp/peqa_formats_XXXXXX");
    if (!mkdtemp(td.dir)) {
        t_result(r, 0, "formats/tmpdir", "-", "mkdtemp failed");
        return;
    }
    st_round_trip(r, &td);
    st_foreign_and_bad(r, &td);
    st_shards(r, &td);
    for (int i = 0; i < td.npaths; i++) {
        unlink(td.paths[i]);
        char tmp[160];
        snprintf(tmp, sizeof tmp, "%s.tmp", td.paths[i]);
        unlink(tmp);
    }
    if (rmdir(td.dir) != 0) t_result(r, 0, "formats/tmpdir_cleanup", "-", "%s not empty after the tests", td.dir);
}
