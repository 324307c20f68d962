/* safetensors reader/writer and sharded checkpoints; the format and the checks are described in
 * safetensors.h (and formats.md §1, §2.5). */
#define _FILE_OFFSET_BITS 64 /* 64-bit off_t for fseeko/ftello on 32-bit hosts */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>
#include "internal.h"
#include "json.h"
#include "safetensors.h"

/* ---- dtypes and scalar conversions --------------------------------------------------------- */

static const struct {
    const char *name;
    int bits;
} dtypes[PEQA_ST_DTYPE_COUNT] = {
    [PEQA_ST_BOOL] = {"BOOL", 8},
    [PEQA_ST_F4] = {"F4", 4},
    [PEQA_ST_F6_E2M3] = {"F6_E2M3", 6},
    [PEQA_ST_F6_E3M2] = {"F6_E3M2", 6},
    [PEQA_ST_U8] = {"U8", 8},
    [PEQA_ST_I8] = {"I8", 8},
    [PEQA_ST_F8_E5M2] = {"F8_E5M2", 8},
    [PEQA_ST_F8_E4M3] = {"F8_E4M3", 8},
    [PEQA_ST_F8_E8M0] = {"F8_E8M0", 8},
    [PEQA_ST_F8_E4M3FNUZ] = {"F8_E4M3FNUZ", 8},
    [PEQA_ST_F8_E5M2FNUZ] = {"F8_E5M2FNUZ", 8},
    [PEQA_ST_I16] = {"I16", 16},
    [PEQA_ST_U16] = {"U16", 16},
    [PEQA_ST_F16] = {"F16", 16},
    [PEQA_ST_BF16] = {"BF16", 16},
    [PEQA_ST_I32] = {"I32", 32},
    [PEQA_ST_U32] = {"U32", 32},
    [PEQA_ST_F32] = {"F32", 32},
    [PEQA_ST_C64] = {"C64", 64},
    [PEQA_ST_F64] = {"F64", 64},
    [PEQA_ST_I64] = {"I64", 64},
    [PEQA_ST_U64] = {"U64", 64},
};

const char *peqa_st_dtype_name(peqa_st_dtype d)
{
    return (unsigned)d < PEQA_ST_DTYPE_COUNT ? dtypes[d].name : "?";
}

int peqa_st_dtype_bits(peqa_st_dtype d) { return (unsigned)d < PEQA_ST_DTYPE_COUNT ? dtypes[d].bits : 0; }

int peqa_st_dtype_from_name(const char *s, size_t len)
{
    for (int i = 0; i < PEQA_ST_DTYPE_COUNT; i++)
        if (strlen(dtypes[i].name) == len && !memcmp(dtypes[i].name, s, len)) return i;
    return -1;
}

static float f32_from_bits(uint32_t u)
{
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static uint32_t f32_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

/* IEEE binary16: 1 sign, 5 exponent (bias 15), 10 mantissa bits. Exponent 0 holds ±0 and the
 * subnormals m·2^-24; these are normalized for fp32 by shifting m up to its implicit bit.
 * Exponent 31 is inf/NaN; the mantissa moves up unchanged, keeping NaN payloads. */
float peqa_st_f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16, e = (h >> 10) & 0x1Fu, m = h & 0x3FFu;
    if (e == 0) {
        if (m == 0) return f32_from_bits(sign);
        uint32_t fe = 127 - 15 + 1; /* exponent of 2^-14, the subnormals' scale, before shifting */
        while (!(m & 0x400u)) {
            m <<= 1;
            fe--;
        }
        return f32_from_bits(sign | fe << 23 | (m & 0x3FFu) << 13);
    }
    if (e == 31) return f32_from_bits(sign | 0x7F800000u | m << 13);
    return f32_from_bits(sign | (e + 127 - 15) << 23 | m << 13);
}

/* bfloat16 is the upper half of an fp32. */
float peqa_st_bf16_to_f32(uint16_t b) { return f32_from_bits((uint32_t)b << 16); }

uint16_t peqa_st_f32_to_f16(float f)
{
    uint32_t x = f32_bits(f);
    uint16_t sign = (uint16_t)((x >> 16) & 0x8000u);
    uint32_t e = (x >> 23) & 0xFFu, m = x & 0x7FFFFFu;
    if (e == 255) return (uint16_t)(sign | 0x7C00u | (m ? 0x200u | (m >> 13) : 0));
    int ue = (int)e - 127;
    if (ue > 15) return (uint16_t)(sign | 0x7C00u);
    if (ue >= -14) {
        /* Normal: keep the top 10 mantissa bits, round the 13 dropped ones to nearest even. A
         * carry out of the mantissa correctly bumps the exponent (up to inf). */
        uint32_t v = (uint32_t)(ue + 15) << 10 | m >> 13, rem = m & 0x1FFFu;
        if (rem > 0x1000u || (rem == 0x1000u && (v & 1))) v++;
        return (uint16_t)(sign | v);
    }
    if (ue < -25) return sign; /* below half the smallest subnormal (2^-25): rounds to ±0 */
    /* Subnormal result k·2^-24 with k = (1.m)·2^(ue+24) = sig >> (-ue - 1), sig the 24-bit
     * significand; rounding may carry k to 0x400, which is exactly the smallest normal. */
    uint32_t sig = m | 0x800000u, shift = (uint32_t)(-ue - 1);
    uint32_t k = sig >> shift, rem = sig & ((1u << shift) - 1), half = 1u << (shift - 1);
    if (rem > half || (rem == half && (k & 1))) k++;
    return (uint16_t)(sign | k);
}

uint16_t peqa_st_f32_to_bf16(float f)
{
    uint32_t x = f32_bits(f);
    if ((x & 0x7F800000u) == 0x7F800000u && (x & 0x7FFFFFu)) return (uint16_t)((x >> 16) | 0x40u);
    /* Round to nearest even on the dropped 16 bits; a carry into the exponent gives inf. */
    x += 0x7FFFu + ((x >> 16) & 1u);
    return (uint16_t)(x >> 16);
}

static int host_little_endian(void)
{
    const uint16_t one = 1;
    unsigned char b;
    memcpy(&b, &one, 1);
    return b == 1;
}

/* ---- reader ---------------------------------------------------------------------------- */

struct peqa_st_file {
    char *path;
    FILE *fp;
    uint64_t size, data_start; /* data_start = 8 + N */
    peqa_json_doc *doc;        /* owns names and metadata strings */
    const peqa_json_value *meta;
    peqa_st_tensor *t; /* offset order */
    size_t n;
    size_t *by_name; /* indices into t, sorted by name */
    int64_t *dims;
};

/* Names are printed at most this long in messages. */
#define NAME_MAX_PRINT 96
#define NAME_ARG(t) ((t)->name_len > NAME_MAX_PRINT ? NAME_MAX_PRINT : (int)(t)->name_len), (t)->name

static int name_cmp(const char *a, size_t na, const char *b, size_t nb)
{
    int c = memcmp(a, b, na < nb ? na : nb);
    if (c) return c;
    return na < nb ? -1 : na > nb;
}

/* qsort has no context argument; the arrays being sorted carry what the comparison needs. */
static int offset_cmp(const void *a, const void *b)
{
    const peqa_st_tensor *x = a, *y = b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end) return x->end < y->end ? -1 : 1;
    return name_cmp(x->name, x->name_len, y->name, y->name_len);
}

typedef struct {
    size_t idx;
    const peqa_st_tensor *t;
} name_ref;

static int name_ref_cmp(const void *a, const void *b)
{
    const name_ref *x = a, *y = b;
    return name_cmp(x->t->name, x->t->name_len, y->t->name, y->t->name_len);
}

static void shape_str(char *buf, size_t n, const int64_t *shape, size_t ndim)
{
    size_t k = (size_t)snprintf(buf, n, "[");
    for (size_t i = 0; i < ndim && k < n; i++) {
        if (k + 24 >= n) {
            snprintf(buf + k, n - k, "...");
            return;
        }
        k += (size_t)snprintf(buf + k, n - k, "%s%lld", i ? ", " : "", (long long)shape[i]);
    }
    if (k < n) snprintf(buf + k, n - k, "]");
}

static int nonneg_int(const peqa_json_value *v, int64_t *out)
{
    return peqa_json_as_int64(v, out) && *out >= 0;
}

/* Validates one header member as a tensor entry; fills t (shape storage at dims). */
static peqa_status parse_entry(const peqa_st_file *f, const peqa_json_member *m, peqa_st_tensor *t,
                               int64_t *dims)
{
    t->name = m->key;
    t->name_len = m->key_len;
    const peqa_json_value *e = &m->value;
    if (e->type != PEQA_JSON_OBJECT)
        return peqa__fail(PEQA_ERR_FORMAT, "%s: tensor '%.*s': entry is a JSON %s, not an object", f->path,
                          NAME_ARG(t), peqa_json_type_name(e->type));
    const peqa_json_value *dt = peqa_json_get(e, "dtype"), *sh = peqa_json_get(e, "shape"),
                          *off = peqa_json_get(e, "data_offsets");
    size_t dlen;
    const char *ds = peqa_json_as_string(dt, &dlen);
    if (!ds)
        return peqa__fail(PEQA_ERR_FORMAT, "%s: tensor '%.*s': %s", f->path, NAME_ARG(t),
                          dt ? "\"dtype\" is not a string" : "missing \"dtype\"");
    int d = peqa_st_dtype_from_name(ds, dlen);
    if (d < 0)
        return peqa__fail(PEQA_ERR_FORMAT, "%s: tensor '%.*s': unknown dtype \"%.*s\"", f->path, NAME_ARG(t),
                          dlen > 32 ? 32 : (int)dlen, ds);
    t->dtype = (peqa_st_dtype)d;
    if (!sh || sh->type != PEQA_JSON_ARRAY)
        return peqa__fail(PEQA_ERR_FORMAT, "%s: tensor '%.*s': %s", f->path, NAME_ARG(t),
                          sh ? "\"shape\" is not an array" : "missing \"shape\"");
    t->ndim = peqa_json_count(sh);
    t->shape = dims;
    for (size_t i = 0; i < t->ndim; i++)
        if (!nonneg_int(peqa_json_at(sh, i), &dims[i]))
            return peqa__fail(PEQA_ERR_FORMAT, "%s: tensor '%.*s': shape[%zu] is not an integer in [0, 2^63)",
                              f->path, NAME_ARG(t), i);
    int64_t b, en;
    if (!off || off->type != PEQA_JSON_ARRAY || peqa_json_count(off) != 2 ||
        !nonneg_int(peqa_json_at(off, 0), &b) || !nonneg_int(peqa_json_at(off, 1), &en))
        return peqa__fail(PEQA_ERR_FORMAT, "%s: tensor '%.*s': %s", f->path, NAME_ARG(t),
                          off ? "\"data_offsets\" is not an array of two integers in [0, 2^63)"
                              : "missing \"data_offsets\"");
    t->begin = (uint64_t)b;
    t->end = (uint64_t)en;
    return PEQA_OK;
}

/* The tiling and size checks, on the tensors sorted by (begin, end). */
static peqa_status check_layout(peqa_st_file *f)
{
    uint64_t pos = 0;
    char sbuf[160];
    for (size_t i = 0; i < f->n; i++) {
        peqa_st_tensor *t = &f->t[i];
        if (t->end < t->begin)
            return peqa__fail(PEQA_ERR_FORMAT, "%s: tensor '%.*s' data_offsets [%llu, %llu] end before start",
                              f->path, NAME_ARG(t), (unsigned long long)t->begin, (unsigned long long)t->end);
        if (t->begin < pos) {
            const peqa_st_tensor *p = &f->t[i - 1];
            return peqa__fail(PEQA_ERR_FORMAT,
                              "%s: tensor '%.*s' data_offsets [%llu, %llu] overlap tensor '%.*s' [%llu, %llu]",
                              f->path, NAME_ARG(t), (unsigned long long)t->begin, (unsigned long long)t->end,
                              NAME_ARG(p), (unsigned long long)p->begin, (unsigned long long)p->end);
        }
        if (t->begin > pos)
            return peqa__fail(PEQA_ERR_FORMAT,
                              "%s: gap in the data buffer: bytes [%llu, %llu) before tensor '%.*s' belong to no tensor",
                              f->path, (unsigned long long)pos, (unsigned long long)t->begin, NAME_ARG(t));
        pos = t->end;
        /* A checked left-to-right product, as the reference computes it: [0, 2^40, 2^40] is an
         * empty tensor but [2^40, 2^40, 0] overflows before reaching the 0. */
        uint64_t numel = 1;
        int over = 0;
        for (size_t k = 0; k < t->ndim && !over; k++) {
            uint64_t dim = (uint64_t)t->shape[k];
            if (dim != 0 && numel > UINT64_MAX / dim) over = 1;
            else numel *= dim;
        }
        unsigned bits = (unsigned)dtypes[t->dtype].bits;
        shape_str(sbuf, sizeof sbuf, t->shape, t->ndim);
        if (over || numel > UINT64_MAX / bits)
            return peqa__fail(PEQA_ERR_FORMAT, "%s: tensor '%.*s': shape %s: byte size overflows 64 bits",
                              f->path, NAME_ARG(t), sbuf);
        uint64_t nbits = numel * bits;
        if (nbits % 8)
            return peqa__fail(PEQA_ERR_FORMAT, "%s: tensor '%.*s': %llu elements of %s do not fill whole bytes",
                              f->path, NAME_ARG(t), (unsigned long long)numel, dtypes[t->dtype].name);
        t->numel = numel;
        t->nbytes = nbits / 8;
        if (t->end - t->begin != t->nbytes)
            return peqa__fail(PEQA_ERR_FORMAT,
                              "%s: tensor '%.*s': dtype %s with shape %s needs %llu bytes but data_offsets "
                              "[%llu, %llu] span %llu",
                              f->path, NAME_ARG(t), dtypes[t->dtype].name, sbuf, (unsigned long long)t->nbytes,
                              (unsigned long long)t->begin, (unsigned long long)t->end,
                              (unsigned long long)(t->end - t->begin));
    }
    uint64_t want = f->data_start + pos; /* pos < 2^63 and data_start <= 10^8 + 8: no overflow */
    if (want < f->size)
        return peqa__fail(PEQA_ERR_FORMAT,
                          "%s: %llu trailing bytes after the data buffer (header and data end at byte %llu, file is %llu bytes)",
                          f->path, (unsigned long long)(f->size - want), (unsigned long long)want,
                          (unsigned long long)f->size);
    if (want > f->size)
        return peqa__fail(PEQA_ERR_FORMAT,
                          "%s: file is truncated: the tensors need %llu bytes in all but the file is %llu bytes",
                          f->path, (unsigned long long)want, (unsigned long long)f->size);
    return PEQA_OK;
}

static peqa_status open_impl(peqa_st_file *f)
{
    const char *path = f->path;
    f->fp = fopen(path, "rb");
    if (!f->fp) return peqa__fail(PEQA_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    off_t end;
    if (fseeko(f->fp, 0, SEEK_END) != 0 || (end = ftello(f->fp)) < 0 || fseeko(f->fp, 0, SEEK_SET) != 0)
        return peqa__fail(PEQA_ERR_IO, "%s: cannot determine the file size: %s", path, strerror(errno));
    f->size = (uint64_t)end;
    if (f->size < 8)
        return peqa__fail(PEQA_ERR_FORMAT, "%s: file is %llu bytes, too short for the 8-byte header length",
                          path, (unsigned long long)f->size);
    unsigned char lenb[8];
    if (fread(lenb, 1, 8, f->fp) != 8)
        return peqa__fail(PEQA_ERR_IO, "%s: cannot read the header length", path);
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--) n = n << 8 | lenb[i];
    if (n > PEQA_ST_MAX_HEADER)
        return peqa__fail(PEQA_ERR_FORMAT, "%s: header length %llu exceeds the limit of %u bytes", path,
                          (unsigned long long)n, PEQA_ST_MAX_HEADER);
    if (n > f->size - 8)
        return peqa__fail(PEQA_ERR_FORMAT, "%s: header length %llu runs past the end of the file (%llu bytes)",
                          path, (unsigned long long)n, (unsigned long long)f->size);
    f->data_start = 8 + n;
    char *hdr = malloc(n ? (size_t)n : 1);
    if (!hdr) return peqa__fail(PEQA_ERR_NOMEM, "%s: out of memory for a %llu-byte header", path, (unsigned long long)n);
    if (fread(hdr, 1, (size_t)n, f->fp) != (size_t)n) {
        free(hdr);
        return peqa__fail(PEQA_ERR_IO, "%s: cannot read the %llu-byte header", path, (unsigned long long)n);
    }
    size_t bad = peqa_json_utf8_check(hdr, (size_t)n);
    if (bad != (size_t)n) {
        free(hdr);
        return peqa__fail(PEQA_ERR_FORMAT, "%s: header is not valid UTF-8 (header byte %zu)", path, bad);
    }
    size_t wl = strlen(path) + 16;
    char *what = malloc(wl);
    if (!what) {
        free(hdr);
        return peqa__fail(PEQA_ERR_NOMEM, "%s: out of memory", path);
    }
    snprintf(what, wl, "%s: header", path);
    peqa_status st = peqa_json_parse(hdr, (size_t)n, PEQA_JSON_NO_DUPLICATES, what, &f->doc, NULL);
    free(what);
    free(hdr);
    if (st) return st;
    const peqa_json_value *root = peqa_json_root(f->doc);
    if (root->type != PEQA_JSON_OBJECT)
        return peqa__fail(PEQA_ERR_FORMAT, "%s: header is a JSON %s, not an object", path,
                          peqa_json_type_name(root->type));

    size_t nmem = peqa_json_count(root), ntens = 0, ndims = 0;
    for (size_t i = 0; i < nmem; i++) {
        const peqa_json_member *m = peqa_json_member_at(root, i);
        if (!strcmp(m->key, "__metadata__") && m->key_len == 12) {
            if (m->value.type != PEQA_JSON_OBJECT)
                return peqa__fail(PEQA_ERR_FORMAT, "%s: \"__metadata__\" is a JSON %s, not an object", path,
                                  peqa_json_type_name(m->value.type));
            for (size_t k = 0; k < peqa_json_count(&m->value); k++) {
                const peqa_json_member *mm = peqa_json_member_at(&m->value, k);
                if (mm->value.type != PEQA_JSON_STRING)
                    return peqa__fail(PEQA_ERR_FORMAT, "%s: \"__metadata__\" value for \"%.*s\" is a JSON %s, not a string",
                                      path, mm->key_len > 64 ? 64 : (int)mm->key_len, mm->key,
                                      peqa_json_type_name(mm->value.type));
            }
            f->meta = &m->value;
            continue;
        }
        ntens++;
        const peqa_json_value *sh = peqa_json_get(&m->value, "shape");
        ndims += peqa_json_count(sh); /* each item took >= 2 header bytes: no overflow */
    }
    f->t = calloc(ntens ? ntens : 1, sizeof *f->t);
    f->dims = malloc((ndims ? ndims : 1) * sizeof *f->dims);
    f->by_name = malloc((ntens ? ntens : 1) * sizeof *f->by_name);
    if (!f->t || !f->dims || !f->by_name) return peqa__fail(PEQA_ERR_NOMEM, "%s: out of memory", path);
    size_t dpos = 0;
    for (size_t i = 0; i < nmem; i++) {
        const peqa_json_member *m = peqa_json_member_at(root, i);
        if (&m->value == f->meta) continue;
        st = parse_entry(f, m, &f->t[f->n], f->dims + dpos);
        if (st) return st;
        dpos += f->t[f->n].ndim;
        f->n++;
    }
    qsort(f->t, f->n, sizeof *f->t, offset_cmp);
    st = check_layout(f);
    if (st) return st;
    name_ref *refs = malloc((f->n ? f->n : 1) * sizeof *refs);
    if (!refs) return peqa__fail(PEQA_ERR_NOMEM, "%s: out of memory", path);
    for (size_t i = 0; i < f->n; i++) refs[i] = (name_ref){i, &f->t[i]};
    qsort(refs, f->n, sizeof *refs, name_ref_cmp);
    for (size_t i = 0; i < f->n; i++) f->by_name[i] = refs[i].idx;
    free(refs);
    return PEQA_OK;
}

void peqa_st_close(peqa_st_file *f)
{
    if (!f) return;
    if (f->fp) fclose(f->fp);
    peqa_json_free(f->doc);
    free(f->t);
    free(f->dims);
    free(f->by_name);
    free(f->path);
    free(f);
}

peqa_status peqa_st_open(const char *path, peqa_st_file **out)
{
    if (!out) return peqa__fail(PEQA_ERR_NULL, "peqa_st_open: out is NULL");
    *out = NULL;
    if (!path) return peqa__fail(PEQA_ERR_NULL, "peqa_st_open: path is NULL");
    peqa_st_file *f = calloc(1, sizeof *f);
    if (!f || !(f->path = strdup(path))) {
        free(f);
        return peqa__fail(PEQA_ERR_NOMEM, "%s: out of memory", path);
    }
    peqa_status st = open_impl(f);
    if (st) {
        peqa_st_close(f);
        return st;
    }
    *out = f;
    return PEQA_OK;
}

const char *peqa_st_path(const peqa_st_file *f) { return f ? f->path : NULL; }
size_t peqa_st_count(const peqa_st_file *f) { return f ? f->n : 0; }

const peqa_st_tensor *peqa_st_tensor_at(const peqa_st_file *f, size_t i)
{
    return f && i < f->n ? &f->t[i] : NULL;
}

static const peqa_st_tensor *find_n(const peqa_st_file *f, const char *name, size_t len)
{
    size_t lo = 0, hi = f->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const peqa_st_tensor *t = &f->t[f->by_name[mid]];
        int c = name_cmp(t->name, t->name_len, name, len);
        if (c == 0) return t;
        if (c < 0) lo = mid + 1;
        else hi = mid;
    }
    return NULL;
}

const peqa_st_tensor *peqa_st_find(const peqa_st_file *f, const char *name)
{
    if (!f || !name) return NULL;
    return find_n(f, name, strlen(name));
}

peqa_status peqa_st_get(const peqa_st_file *f, const char *name, const peqa_st_tensor **out)
{
    if (!f || !name || !out) return peqa__fail(PEQA_ERR_NULL, "peqa_st_get: NULL argument");
    *out = peqa_st_find(f, name);
    if (!*out)
        return peqa__fail(PEQA_ERR_FORMAT, "%s: no tensor named '%.*s'", f->path, NAME_MAX_PRINT, name);
    return PEQA_OK;
}

const char *peqa_st_metadata(const peqa_st_file *f, const char *key)
{
    if (!f) return NULL;
    return peqa_json_as_string(peqa_json_get(f->meta, key), NULL);
}

size_t peqa_st_metadata_count(const peqa_st_file *f) { return f ? peqa_json_count(f->meta) : 0; }

int peqa_st_metadata_at(const peqa_st_file *f, size_t i, const char **key, const char **value)
{
    const peqa_json_member *m = f ? peqa_json_member_at(f->meta, i) : NULL;
    if (!m) return 0;
    if (key) *key = m->key;
    if (value) *value = m->value.u.str.ptr;
    return 1;
}

static peqa_status check_tensor_arg(const char *fn, const peqa_st_file *f, const peqa_st_tensor *t, const void *dst)
{
    if (!f || !t || !dst) return peqa__fail(PEQA_ERR_NULL, "%s: NULL argument", fn);
    /* Compare addresses as integers: relational operators on pointers into different arrays
     * are undefined. */
    uintptr_t a = (uintptr_t)t, lo = (uintptr_t)f->t, hi = (uintptr_t)(f->t + f->n);
    if (a < lo || a >= hi || (a - lo) % sizeof *t)
        return peqa__fail(PEQA_ERR_ARG, "%s: %s: the tensor does not belong to this file", fn, f->path);
    return PEQA_OK;
}

static peqa_status read_bytes(peqa_st_file *f, const peqa_st_tensor *t, void *dst)
{
    if (t->nbytes == 0) return PEQA_OK;
    /* begin + nbytes <= size - data_start was checked at open, and size came from ftello. */
    if (fseeko(f->fp, (off_t)(f->data_start + t->begin), SEEK_SET) != 0)
        return peqa__fail(PEQA_ERR_IO, "%s: tensor '%.*s': seek failed: %s", f->path, NAME_ARG(t), strerror(errno));
    if (fread(dst, 1, (size_t)t->nbytes, f->fp) != (size_t)t->nbytes) {
        int eof = feof(f->fp);
        clearerr(f->fp);
        return peqa__fail(PEQA_ERR_IO, "%s: tensor '%.*s': %s", f->path, NAME_ARG(t),
                          eof ? "unexpected end of file (was the file truncated after opening?)" : "read error");
    }
    return PEQA_OK;
}

static peqa_status check_f32_dtype(const peqa_st_file *f, const peqa_st_tensor *t)
{
    if (t->dtype != PEQA_ST_F32 && t->dtype != PEQA_ST_F16 && t->dtype != PEQA_ST_BF16)
        return peqa__fail(PEQA_ERR_FORMAT, "%s: tensor '%.*s' has dtype %s; only F32, F16 and BF16 load as fp32",
                          f->path, NAME_ARG(t), dtypes[t->dtype].name);
    if (t->nbytes > SIZE_MAX)
        return peqa__fail(PEQA_ERR_OVERFLOW, "%s: tensor '%.*s' is too large for this address space", f->path,
                          NAME_ARG(t));
    return PEQA_OK;
}

peqa_status peqa_st_read_f32_into(peqa_st_file *f, const peqa_st_tensor *t, float *dst, size_t count)
{
    peqa_status st = check_tensor_arg("peqa_st_read_f32_into", f, t, dst);
    if (st || (st = check_f32_dtype(f, t))) return st;
    if ((uint64_t)count != t->numel)
        return peqa__fail(PEQA_ERR_SHAPE, "%s: tensor '%.*s' has %llu elements, destination holds %zu", f->path,
                          NAME_ARG(t), (unsigned long long)t->numel, count);
    if ((st = read_bytes(f, t, dst))) return st;
    unsigned char *b = (unsigned char *)dst;
    if (t->dtype == PEQA_ST_F32) {
        if (!host_little_endian())
            for (size_t i = 0; i < count; i++) {
                unsigned char *q = b + 4 * i;
                uint32_t u = (uint32_t)q[0] | (uint32_t)q[1] << 8 | (uint32_t)q[2] << 16 | (uint32_t)q[3] << 24;
                float v = f32_from_bits(u);
                memcpy(q, &v, 4);
            }
        return PEQA_OK;
    }
    /* The 2-byte elements were read into the first half of dst; widen in place from the last
     * element down, so that writing element i (bytes 4i..4i+3) only overwrites 2-byte elements
     * that have already been converted (those >= i). */
    for (size_t i = count; i-- > 0;) {
        uint16_t h = (uint16_t)(b[2 * i] | b[2 * i + 1] << 8);
        float v = t->dtype == PEQA_ST_F16 ? peqa_st_f16_to_f32(h) : peqa_st_bf16_to_f32(h);
        memcpy(b + 4 * i, &v, 4);
    }
    return PEQA_OK;
}

peqa_status peqa_st_read_f32(peqa_st_file *f, const char *name, float **out, size_t *count)
{
    if (!f || !name || !out || !count) return peqa__fail(PEQA_ERR_NULL, "peqa_st_read_f32: NULL argument");
    *out = NULL;
    *count = 0;
    const peqa_st_tensor *t;
    peqa_status st = peqa_st_get(f, name, &t);
    if (st || (st = check_f32_dtype(f, t))) return st;
    size_t n = (size_t)t->numel; /* numel <= nbytes / 2 <= SIZE_MAX / 2 */
    if (n > SIZE_MAX / sizeof(float))
        return peqa__fail(PEQA_ERR_OVERFLOW, "%s: tensor '%.*s' is too large for this address space", f->path,
                          NAME_ARG(t));
    float *buf = malloc((n ? n : 1) * sizeof *buf);
    if (!buf)
        return peqa__fail(PEQA_ERR_NOMEM, "%s: tensor '%.*s': out of memory for %zu floats", f->path, NAME_ARG(t), n);
    if ((st = peqa_st_read_f32_into(f, t, buf, n))) {
        free(buf);
        return st;
    }
    *out = buf;
    *count = n;
    return PEQA_OK;
}

peqa_status peqa_st_read_raw_into(peqa_st_file *f, const peqa_st_tensor *t, void *dst, size_t bytes)
{
    peqa_status st = check_tensor_arg("peqa_st_read_raw_into", f, t, dst);
    if (st) return st;
    if ((uint64_t)bytes != t->nbytes)
        return peqa__fail(PEQA_ERR_SHAPE, "%s: tensor '%.*s' has %llu bytes, destination holds %zu", f->path,
                          NAME_ARG(t), (unsigned long long)t->nbytes, bytes);
    return read_bytes(f, t, dst);
}

peqa_status peqa_st_read_raw(peqa_st_file *f, const char *name, void **out, size_t *bytes)
{
    if (!f || !name || !out || !bytes) return peqa__fail(PEQA_ERR_NULL, "peqa_st_read_raw: NULL argument");
    *out = NULL;
    *bytes = 0;
    const peqa_st_tensor *t;
    peqa_status st = peqa_st_get(f, name, &t);
    if (st) return st;
    if (t->nbytes > SIZE_MAX)
        return peqa__fail(PEQA_ERR_OVERFLOW, "%s: tensor '%.*s' is too large for this address space", f->path,
                          NAME_ARG(t));
    size_t n = (size_t)t->nbytes;
    void *buf = malloc(n ? n : 1);
    if (!buf)
        return peqa__fail(PEQA_ERR_NOMEM, "%s: tensor '%.*s': out of memory for %zu bytes", f->path, NAME_ARG(t), n);
    if ((st = peqa_st_read_raw_into(f, t, buf, n))) {
        free(buf);
        return st;
    }
    *out = buf;
    *bytes = n;
    return PEQA_OK;
}

/* ---- checkpoint sets (single file or shards) ---------------------------------------------- */

typedef struct {
    const char *name;
    size_t name_len;
    peqa_st_file *file;
    const peqa_st_tensor *t;
} set_entry;

struct peqa_st_set {
    char *path;
    peqa_json_doc *index; /* owns the entry names of an index; NULL for one file */
    peqa_st_file **shards;
    size_t nshards;
    set_entry *e; /* sorted by name */
    size_t n;
};

void peqa_st_set_close(peqa_st_set *s)
{
    if (!s) return;
    for (size_t i = 0; i < s->nshards; i++) peqa_st_close(s->shards[i]);
    free(s->shards);
    free(s->e);
    peqa_json_free(s->index);
    free(s->path);
    free(s);
}

static char *join_path(const char *dir, size_t dlen, const char *name)
{
    size_t nl = strlen(name);
    char *p = malloc(dlen + nl + 2);
    if (!p) return NULL;
    memcpy(p, dir, dlen);
    size_t k = dlen;
    if (dlen && dir[dlen - 1] != '/') p[k++] = '/';
    memcpy(p + k, name, nl + 1);
    return p;
}

/* A shard name from an index must stay inside the index's directory. */
static int safe_relative(const char *s, size_t len)
{
    if (len == 0 || strlen(s) != len || s[0] == '/') return 0;
    for (size_t i = 0; i < len;) {
        size_t j = i;
        while (j < len && s[j] != '/') j++;
        if (j - i == 2 && s[i] == '.' && s[i + 1] == '.') return 0;
        i = j + 1;
    }
    return 1;
}

static int entry_cmp(const void *a, const void *b)
{
    const set_entry *x = a, *y = b;
    return name_cmp(x->name, x->name_len, y->name, y->name_len);
}

typedef struct {
    const char *file;
    size_t idx; /* index into the weight_map's members */
} shard_ref;

static int shard_ref_cmp(const void *a, const void *b)
{
    const shard_ref *x = a, *y = b;
    int c = strcmp(x->file, y->file);
    if (c) return c;
    return x->idx < y->idx ? -1 : x->idx > y->idx;
}

static peqa_status set_open_index(peqa_st_set *s, const char *path)
{
    peqa_status st = peqa_json_parse_file(path, PEQA_JSON_NO_DUPLICATES, &s->index);
    if (st) return st;
    const peqa_json_value *root = peqa_json_root(s->index);
    if (root->type != PEQA_JSON_OBJECT)
        return peqa__fail(PEQA_ERR_FORMAT, "%s: the index is a JSON %s, not an object", path,
                          peqa_json_type_name(root->type));
    const peqa_json_value *meta = peqa_json_get(root, "metadata");
    if (meta && meta->type != PEQA_JSON_OBJECT && meta->type != PEQA_JSON_NULL)
        return peqa__fail(PEQA_ERR_FORMAT, "%s: \"metadata\" is a JSON %s, not an object", path,
                          peqa_json_type_name(meta->type));
    const peqa_json_value *wm = peqa_json_get(root, "weight_map");
    if (!wm || wm->type != PEQA_JSON_OBJECT)
        return peqa__fail(PEQA_ERR_FORMAT, "%s: %s", path,
                          wm ? "\"weight_map\" is not an object" : "missing \"weight_map\"");
    size_t n = peqa_json_count(wm);
    shard_ref *refs = malloc((n ? n : 1) * sizeof *refs);
    s->e = calloc(n ? n : 1, sizeof *s->e);
    s->shards = calloc(n ? n : 1, sizeof *s->shards);
    if (!refs || !s->e || !s->shards) {
        free(refs);
        return peqa__fail(PEQA_ERR_NOMEM, "%s: out of memory", path);
    }
    for (size_t i = 0; i < n; i++) {
        const peqa_json_member *m = peqa_json_member_at(wm, i);
        size_t fl;
        const char *file = peqa_json_as_string(&m->value, &fl);
        if (!file || !safe_relative(file, fl)) {
            free(refs);
            return peqa__fail(PEQA_ERR_FORMAT,
                              "%s: weight_map entry '%.*s': %s", path, m->key_len > NAME_MAX_PRINT ? NAME_MAX_PRINT : (int)m->key_len,
                              m->key, file ? "shard file name must be a relative path without '..'" : "value is not a string");
        }
        refs[i] = (shard_ref){file, i};
        s->e[i] = (set_entry){m->key, m->key_len, NULL, NULL};
    }
    /* Open each distinct shard once: sort the references by file name and walk the runs. */
    qsort(refs, n, sizeof *refs, shard_ref_cmp);
    const char *slash = strrchr(path, '/');
    size_t dlen = slash ? (size_t)(slash - path) + 1 : 0;
    st = PEQA_OK;
    for (size_t i = 0; i < n && !st; i++) {
        if (i == 0 || strcmp(refs[i].file, refs[i - 1].file) != 0) {
            char *sp = join_path(path, dlen, refs[i].file);
            if (!sp) {
                st = peqa__fail(PEQA_ERR_NOMEM, "%s: out of memory", path);
                break;
            }
            st = peqa_st_open(sp, &s->shards[s->nshards]);
            free(sp);
            if (st) break;
            s->nshards++;
        }
        set_entry *e = &s->e[refs[i].idx];
        e->file = s->shards[s->nshards - 1];
        e->t = find_n(e->file, e->name, e->name_len);
        if (!e->t)
            st = peqa__fail(PEQA_ERR_FORMAT, "%s: tensor '%.*s' is mapped to '%s', which has no such tensor", path,
                            e->name_len > NAME_MAX_PRINT ? NAME_MAX_PRINT : (int)e->name_len, e->name, refs[i].file);
    }
    free(refs);
    if (st) return st;
    s->n = n;
    qsort(s->e, n, sizeof *s->e, entry_cmp);
    return PEQA_OK;
}

static peqa_status set_open_file(peqa_st_set *s, const char *path)
{
    s->shards = calloc(1, sizeof *s->shards);
    if (!s->shards) return peqa__fail(PEQA_ERR_NOMEM, "%s: out of memory", path);
    peqa_status st = peqa_st_open(path, &s->shards[0]);
    if (st) return st;
    s->nshards = 1;
    peqa_st_file *f = s->shards[0];
    s->e = calloc(f->n ? f->n : 1, sizeof *s->e);
    if (!s->e) return peqa__fail(PEQA_ERR_NOMEM, "%s: out of memory", path);
    for (size_t i = 0; i < f->n; i++) {
        const peqa_st_tensor *t = &f->t[f->by_name[i]];
        s->e[i] = (set_entry){t->name, t->name_len, f, t};
    }
    s->n = f->n;
    return PEQA_OK;
}

static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && !strcmp(s + n - k, suffix);
}

peqa_status peqa_st_set_open(const char *path, peqa_st_set **out)
{
    if (!out) return peqa__fail(PEQA_ERR_NULL, "peqa_st_set_open: out is NULL");
    *out = NULL;
    if (!path) return peqa__fail(PEQA_ERR_NULL, "peqa_st_set_open: path is NULL");
    peqa_st_set *s = calloc(1, sizeof *s);
    if (!s || !(s->path = strdup(path))) {
        free(s);
        return peqa__fail(PEQA_ERR_NOMEM, "%s: out of memory", path);
    }
    peqa_status st;
    struct stat sb;
    if (stat(path, &sb) == 0 && S_ISDIR(sb.st_mode)) {
        char *idx = join_path(path, strlen(path), "model.safetensors.index.json");
        char *one = join_path(path, strlen(path), "model.safetensors");
        if (!idx || !one) st = peqa__fail(PEQA_ERR_NOMEM, "%s: out of memory", path);
        else if (stat(idx, &sb) == 0) st = set_open_index(s, idx);
        else if (stat(one, &sb) == 0) st = set_open_file(s, one);
        else
            st = peqa__fail(PEQA_ERR_IO, "%s: directory has neither model.safetensors.index.json nor model.safetensors",
                            path);
        free(idx);
        free(one);
    } else if (ends_with(path, ".json")) {
        st = set_open_index(s, path);
    } else {
        st = set_open_file(s, path);
    }
    if (st) {
        peqa_st_set_close(s);
        return st;
    }
    *out = s;
    return PEQA_OK;
}

size_t peqa_st_set_count(const peqa_st_set *s) { return s ? s->n : 0; }
size_t peqa_st_set_shard_count(const peqa_st_set *s) { return s ? s->nshards : 0; }
peqa_st_file *peqa_st_set_shard(const peqa_st_set *s, size_t i) { return s && i < s->nshards ? s->shards[i] : NULL; }

int peqa_st_set_at(const peqa_st_set *s, size_t i, peqa_st_file **file, const peqa_st_tensor **t)
{
    if (!s || i >= s->n) return 0;
    if (file) *file = s->e[i].file;
    if (t) *t = s->e[i].t;
    return 1;
}

int peqa_st_set_find(const peqa_st_set *s, const char *name, peqa_st_file **file, const peqa_st_tensor **t)
{
    if (!s || !name) return 0;
    set_entry key = {name, strlen(name), NULL, NULL};
    const set_entry *e = bsearch(&key, s->e, s->n, sizeof *s->e, entry_cmp);
    if (!e) return 0;
    if (file) *file = e->file;
    if (t) *t = e->t;
    return 1;
}

peqa_status peqa_st_set_get(const peqa_st_set *s, const char *name, peqa_st_file **file,
                            const peqa_st_tensor **t)
{
    if (!s || !name) return peqa__fail(PEQA_ERR_NULL, "peqa_st_set_get: NULL argument");
    if (!peqa_st_set_find(s, name, file, t))
        return peqa__fail(PEQA_ERR_FORMAT, "%s: no tensor named '%.*s'", s->path, NAME_MAX_PRINT, name);
    return PEQA_OK;
}

/* ---- writer ---------------------------------------------------------------------------- */

typedef struct {
    char *name;
    peqa_st_dtype dtype;
    size_t ndim;
    int64_t *shape;
    const void *data;
    size_t bytes;
} wtensor;

typedef struct {
    char *key, *value;
} wmeta;

struct peqa_st_writer {
    wtensor *t;
    size_t n, cap;
    wmeta *m;
    size_t nm, capm;
};

peqa_status peqa_st_writer_create(peqa_st_writer **out)
{
    if (!out) return peqa__fail(PEQA_ERR_NULL, "peqa_st_writer_create: out is NULL");
    *out = calloc(1, sizeof **out);
    if (!*out) return peqa__fail(PEQA_ERR_NOMEM, "peqa_st_writer_create: out of memory");
    return PEQA_OK;
}

void peqa_st_writer_free(peqa_st_writer *w)
{
    if (!w) return;
    for (size_t i = 0; i < w->n; i++) {
        free(w->t[i].name);
        free(w->t[i].shape);
    }
    for (size_t i = 0; i < w->nm; i++) {
        free(w->m[i].key);
        free(w->m[i].value);
    }
    free(w->t);
    free(w->m);
    free(w);
}

static int valid_utf8(const char *s) { return peqa_json_utf8_check(s, strlen(s)) == strlen(s); }

peqa_status peqa_st_writer_add(peqa_st_writer *w, const char *name, peqa_st_dtype dtype, size_t ndim,
                               const int64_t *shape, const void *data, size_t bytes)
{
    static const char fn[] = "peqa_st_writer_add";
    if (!w || !name || (ndim && !shape) || (bytes && !data)) return peqa__fail(PEQA_ERR_NULL, "%s: NULL argument", fn);
    if (!name[0] || !valid_utf8(name) || !strcmp(name, "__metadata__"))
        return peqa__fail(PEQA_ERR_ARG, "%s: tensor name '%.*s' must be non-empty UTF-8 and not \"__metadata__\"", fn,
                          NAME_MAX_PRINT, name);
    if ((unsigned)dtype >= PEQA_ST_DTYPE_COUNT)
        return peqa__fail(PEQA_ERR_ARG, "%s: tensor '%.*s': invalid dtype %d", fn, NAME_MAX_PRINT, name, (int)dtype);
    uint64_t numel = 1;
    for (size_t i = 0; i < ndim; i++) {
        if (shape[i] < 0)
            return peqa__fail(PEQA_ERR_SHAPE, "%s: tensor '%.*s': shape[%zu] = %lld is negative", fn, NAME_MAX_PRINT,
                              name, i, (long long)shape[i]);
        uint64_t d = (uint64_t)shape[i];
        if (d && numel > UINT64_MAX / d)
            return peqa__fail(PEQA_ERR_OVERFLOW, "%s: tensor '%.*s': element count overflows", fn, NAME_MAX_PRINT, name);
        numel *= d;
    }
    unsigned bits = (unsigned)dtypes[dtype].bits;
    if (numel > UINT64_MAX / bits || (numel * bits) % 8)
        return peqa__fail(PEQA_ERR_SHAPE, "%s: tensor '%.*s': %llu elements of %s are not a whole number of bytes",
                          fn, NAME_MAX_PRINT, name, (unsigned long long)numel, dtypes[dtype].name);
    if (numel * bits / 8 != (uint64_t)bytes)
        return peqa__fail(PEQA_ERR_SHAPE, "%s: tensor '%.*s': %s x %llu elements is %llu bytes, got %zu", fn,
                          NAME_MAX_PRINT, name, dtypes[dtype].name, (unsigned long long)numel,
                          (unsigned long long)(numel * bits / 8), bytes);
    for (size_t i = 0; i < w->n; i++)
        if (!strcmp(w->t[i].name, name))
            return peqa__fail(PEQA_ERR_ARG, "%s: tensor '%.*s' was already added", fn, NAME_MAX_PRINT, name);
    if (w->n == w->cap) {
        size_t cap = w->cap ? w->cap * 2 : 16;
        wtensor *nt = cap > SIZE_MAX / sizeof *nt ? NULL : realloc(w->t, cap * sizeof *nt);
        if (!nt) return peqa__fail(PEQA_ERR_NOMEM, "%s: out of memory", fn);
        w->t = nt, w->cap = cap;
    }
    wtensor t = {strdup(name), dtype, ndim, malloc((ndim ? ndim : 1) * sizeof(int64_t)), data, bytes};
    if (!t.name || !t.shape) {
        free(t.name);
        free(t.shape);
        return peqa__fail(PEQA_ERR_NOMEM, "%s: out of memory", fn);
    }
    if (ndim) memcpy(t.shape, shape, ndim * sizeof(int64_t));
    w->t[w->n++] = t;
    return PEQA_OK;
}

peqa_status peqa_st_writer_set_metadata(peqa_st_writer *w, const char *key, const char *value)
{
    static const char fn[] = "peqa_st_writer_set_metadata";
    if (!w || !key || !value) return peqa__fail(PEQA_ERR_NULL, "%s: NULL argument", fn);
    if (!valid_utf8(key) || !valid_utf8(value))
        return peqa__fail(PEQA_ERR_ARG, "%s: key '%.64s': key and value must be UTF-8", fn, key);
    char *v = strdup(value);
    if (!v) return peqa__fail(PEQA_ERR_NOMEM, "%s: out of memory", fn);
    for (size_t i = 0; i < w->nm; i++)
        if (!strcmp(w->m[i].key, key)) {
            free(w->m[i].value);
            w->m[i].value = v;
            return PEQA_OK;
        }
    char *k = strdup(key);
    if (!k) {
        free(v);
        return peqa__fail(PEQA_ERR_NOMEM, "%s: out of memory", fn);
    }
    if (w->nm == w->capm) {
        size_t cap = w->capm ? w->capm * 2 : 8;
        wmeta *nm = cap > SIZE_MAX / sizeof *nm ? NULL : realloc(w->m, cap * sizeof *nm);
        if (!nm) {
            free(k);
            free(v);
            return peqa__fail(PEQA_ERR_NOMEM, "%s: out of memory", fn);
        }
        w->m = nm, w->capm = cap;
    }
    w->m[w->nm++] = (wmeta){k, v};
    return PEQA_OK;
}

/* A growable byte buffer; `oom` sticks once an allocation fails. */
typedef struct {
    char *p;
    size_t n, cap;
    int oom;
} sbuf;

static void sb_put(sbuf *b, const char *s, size_t n)
{
    if (b->oom) return;
    if (b->cap - b->n < n + 1) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap - b->n < n + 1) {
            if (cap > SIZE_MAX / 2) {
                b->oom = 1;
                return;
            }
            cap *= 2;
        }
        char *np = realloc(b->p, cap);
        if (!np) {
            b->oom = 1;
            return;
        }
        b->p = np, b->cap = cap;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = '\0';
}

static void sb_str(sbuf *b, const char *s) { sb_put(b, s, strlen(s)); }

static void sb_u64(sbuf *b, uint64_t v)
{
    char tmp[24];
    int k = snprintf(tmp, sizeof tmp, "%llu", (unsigned long long)v);
    sb_put(b, tmp, (size_t)k);
}

/* A JSON string as serde_json writes it: only '"', '\\' and control characters are escaped
 * (\b \f \n \r \t, the others as \u00xx with lowercase hex); UTF-8 passes through. */
static void sb_json_string(sbuf *b, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    sb_put(b, "\"", 1);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        unsigned char c = *p;
        char e[7] = {'\\', 0, 0, 0, 0, 0, 0};
        size_t n = 2;
        switch (c) {
        case '"': e[1] = '"'; break;
        case '\\': e[1] = '\\'; break;
        case '\b': e[1] = 'b'; break;
        case '\f': e[1] = 'f'; break;
        case '\n': e[1] = 'n'; break;
        case '\r': e[1] = 'r'; break;
        case '\t': e[1] = 't'; break;
        default:
            if (c >= 0x20) {
                sb_put(b, (const char *)p, 1);
                continue;
            }
            memcpy(e + 1, "u00", 3);
            e[4] = hex[c >> 4];
            e[5] = hex[c & 15];
            n = 6;
        }
        sb_put(b, e, n);
    }
    sb_put(b, "\"", 1);
}

static int wtensor_cmp(const void *a, const void *b)
{
    const wtensor *x = *(const wtensor *const *)a, *y = *(const wtensor *const *)b;
    if (x->dtype != y->dtype) return x->dtype > y->dtype ? -1 : 1; /* descending dtype */
    return strcmp(x->name, y->name);
}

static int wmeta_cmp(const void *a, const void *b)
{
    return strcmp((*(const wmeta *const *)a)->key, (*(const wmeta *const *)b)->key);
}

/* Builds the padded header; the tensors in data order go to order[]. */
static peqa_status build_header(const peqa_st_writer *w, const char *path, sbuf *hb, const wtensor **order)
{
    static const wmeta fmt_pt = {"format", "pt"};
    int have_format = 0;
    size_t nm = w->nm;
    for (size_t i = 0; i < w->nm; i++) have_format |= !strcmp(w->m[i].key, "format");
    const wmeta **meta = malloc((nm + 1) * sizeof *meta);
    if (!meta) return peqa__fail(PEQA_ERR_NOMEM, "%s: out of memory", path);
    for (size_t i = 0; i < w->nm; i++) meta[i] = &w->m[i];
    if (!have_format) meta[nm++] = &fmt_pt;
    qsort(meta, nm, sizeof *meta, wmeta_cmp);
    for (size_t i = 0; i < w->n; i++) order[i] = &w->t[i];
    qsort(order, w->n, sizeof *order, wtensor_cmp);

    sb_str(hb, "{\"__metadata__\":{");
    for (size_t i = 0; i < nm; i++) {
        if (i) sb_put(hb, ",", 1);
        sb_json_string(hb, meta[i]->key);
        sb_put(hb, ":", 1);
        sb_json_string(hb, meta[i]->value);
    }
    sb_put(hb, "}", 1);
    free(meta);
    uint64_t off = 0;
    for (size_t i = 0; i < w->n; i++) {
        const wtensor *t = order[i];
        sb_put(hb, ",", 1);
        sb_json_string(hb, t->name);
        sb_str(hb, ":{\"dtype\":\"");
        sb_str(hb, dtypes[t->dtype].name);
        sb_str(hb, "\",\"shape\":[");
        for (size_t k = 0; k < t->ndim; k++) {
            if (k) sb_put(hb, ",", 1);
            sb_u64(hb, (uint64_t)t->shape[k]);
        }
        sb_str(hb, "],\"data_offsets\":[");
        sb_u64(hb, off);
        sb_put(hb, ",", 1);
        if ((uint64_t)t->bytes > (uint64_t)INT64_MAX - off)
            return peqa__fail(PEQA_ERR_OVERFLOW, "%s: total tensor data exceeds 2^63 bytes", path);
        off += t->bytes;
        sb_u64(hb, off);
        sb_str(hb, "]}");
    }
    sb_put(hb, "}", 1);
    while (!hb->oom && hb->n % 8) sb_put(hb, " ", 1);
    if (hb->oom) return peqa__fail(PEQA_ERR_NOMEM, "%s: out of memory building the header", path);
    if (hb->n > PEQA_ST_MAX_HEADER)
        return peqa__fail(PEQA_ERR_ARG, "%s: the header would be %zu bytes, over the %u-byte limit readers accept",
                          path, hb->n, PEQA_ST_MAX_HEADER);
    return PEQA_OK;
}

peqa_status peqa_st_writer_write(const peqa_st_writer *w, const char *path)
{
    if (!w || !path) return peqa__fail(PEQA_ERR_NULL, "peqa_st_writer_write: NULL argument");
    sbuf hb = {0};
    const wtensor **order = malloc((w->n ? w->n : 1) * sizeof *order);
    if (!order) return peqa__fail(PEQA_ERR_NOMEM, "%s: out of memory", path);
    peqa_status st = build_header(w, path, &hb, order);
    char *tmp = NULL;
    FILE *fp = NULL;
    if (st) goto done;
    size_t pl = strlen(path);
    tmp = malloc(pl + 5);
    if (!tmp) {
        st = peqa__fail(PEQA_ERR_NOMEM, "%s: out of memory", path);
        goto done;
    }
    memcpy(tmp, path, pl);
    memcpy(tmp + pl, ".tmp", 5);
    fp = fopen(tmp, "wb");
    if (!fp) {
        st = peqa__fail(PEQA_ERR_IO, "%s: cannot create '%s': %s", path, tmp, strerror(errno));
        goto done;
    }
    unsigned char lenb[8];
    for (int i = 0; i < 8; i++) lenb[i] = (unsigned char)((uint64_t)hb.n >> (8 * i));
    int ok = fwrite(lenb, 1, 8, fp) == 8 && fwrite(hb.p, 1, hb.n, fp) == hb.n;
    for (size_t i = 0; ok && i < w->n; i++)
        ok = order[i]->bytes == 0 || fwrite(order[i]->data, 1, order[i]->bytes, fp) == order[i]->bytes;
    /* Data must be on disk before the rename makes it visible under the final name. */
    ok = ok && fflush(fp) == 0 && fsync(fileno(fp)) == 0;
    int e = errno;
    int closed = fclose(fp) == 0;
    fp = NULL;
    if (!ok || !closed) {
        st = peqa__fail(PEQA_ERR_IO, "%s: writing '%s' failed: %s", path, tmp, strerror(ok ? errno : e));
        remove(tmp);
        goto done;
    }
    if (rename(tmp, path) != 0) {
        st = peqa__fail(PEQA_ERR_IO, "%s: cannot rename '%s' to it: %s", path, tmp, strerror(errno));
        remove(tmp);
    }
done:
    free(tmp);
    free(hb.p);
    free(order);
    return st;
}
