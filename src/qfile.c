/* Quantized model files, scale files, the codes hash and peqa_model_open (formats in qfile.h). */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "internal.h"
#include "qfile.h"
#include "safetensors.h"



static int host_little_endian(void)
{
    const uint32_t one = 1;
    unsigned char b;
    memcpy(&b, &one, 1);
    return b == 1;
}

/* ---- hashing ---------------------------------------------------------------------------------- */

uint64_t peqa_fnv1a64(uint64_t h, const void *data, size_t n)
{
    const unsigned char *p = data;
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

static uint64_t fnv_u64(uint64_t h, uint64_t v)
{
    unsigned char b[8];
    for (int i = 0; i < 8; i++) b[i] = (unsigned char)(v >> (8 * i));
    return peqa_fnv1a64(h, b, 8);
}

void peqa_hash_hex(uint64_t h, char out[17]) { snprintf(out, 17, "%016" PRIx64, h); }

peqa_status peqa_model_codes_hash(const peqa_model *m, uint64_t *out)
{
    if (!m || !out) return peqa__fail(PEQA_ERR_NULL, "peqa_model_codes_hash: NULL argument");
    if (!m->quantized) return peqa__fail(PEQA_ERR_ARG, "peqa_model_codes_hash: the model is not quantized");
    const int64_t n = peqa_model_linear_count(m);
    uint64_t h = peqa_fnv1a64(PEQA_FNV_OFFSET, "peqa.codes.v1", 13);
    h = fnv_u64(h, (uint64_t)n);
    for (int64_t i = 0; i < n; i++) {
        const peqa_model_linear *li = peqa_model_linear_at((peqa_model *)m, i);
        peqa_qtensor_info info;
        const void *data;
        size_t bytes;
        PEQA_TRY(peqa_qtensor_get_info(li->q, &info));
        PEQA_TRY(peqa_qtensor_packed(li->q, &data, &bytes));
        h = fnv_u64(h, (uint64_t)info.n);
        h = fnv_u64(h, (uint64_t)info.k);
        h = fnv_u64(h, (uint64_t)info.bits);
        h = fnv_u64(h, (uint64_t)info.group);
        h = fnv_u64(h, (uint64_t)bytes);
        /* word by word as little-endian bytes, whatever the host's byte order */
        const uint32_t *w = data;
        for (size_t k = 0; k < bytes / 4; k++) {
            const unsigned char b[4] = {(unsigned char)w[k], (unsigned char)(w[k] >> 8), (unsigned char)(w[k] >> 16),
                                        (unsigned char)(w[k] >> 24)};
            h = peqa_fnv1a64(h, b, 4);
        }
    }
    *out = h;
    return PEQA_OK;
}

/* ---- metadata helpers ---------------------------------------------------------------------------- */

void peqa_group_str(int64_t group, char out[24])
{
    if (group == 0) snprintf(out, 24, "channel");
    else snprintf(out, 24, "%lld", (long long)group);
}

int peqa_meta_int(const char *s, int64_t lo, int64_t hi, int64_t *out)
{
    if (!s || !*s) return 0;
    int64_t v = 0;
    int neg = 0;
    const char *p = s;
    if (*p == '-') neg = 1, p++;
    if (!*p) return 0;
    for (; *p; p++) {
        if (*p < '0' || *p > '9') return 0;
        if (v > (INT64_MAX - 9) / 10) return 0;
        v = v * 10 + (*p - '0');
    }
    if (neg) v = -v;
    if (v < lo || v > hi) return 0;
    *out = v;
    return 1;
}

/* The value of a required metadata key, or a FORMAT error naming the file and key. */
static peqa_status meta_req(const peqa_st_file *f, const char *key, const char **out)
{
    *out = peqa_st_metadata(f, key);
    if (!*out) return peqa__fail(PEQA_ERR_FORMAT, "%s: metadata key '%s' is missing", peqa_st_path(f), key);
    return PEQA_OK;
}

/* bits and group from "peqa.bits" / "peqa.group". */
static peqa_status meta_bits_group(const peqa_st_file *f, int *bits, int64_t *group)
{
    const char *sb, *sg;
    int64_t b;
    PEQA_TRY(meta_req(f, "peqa.bits", &sb));
    PEQA_TRY(meta_req(f, "peqa.group", &sg));
    if (!peqa_meta_int(sb, 2, 8, &b) || (b != 2 && b != 3 && b != 4 && b != 8))
        return peqa__fail(PEQA_ERR_FORMAT, "%s: metadata 'peqa.bits' = '%.40s': expected 2, 3, 4 or 8", peqa_st_path(f),
                          sb);
    if (!strcmp(sg, "channel")) {
        *group = 0;
    } else if (!peqa_meta_int(sg, 1, PEQA_MODEL_MAX_FFN, group)) {
        return peqa__fail(PEQA_ERR_FORMAT, "%s: metadata 'peqa.group' = '%.40s': expected 'channel' or a group size",
                          peqa_st_path(f), sg);
    }
    *bits = (int)b;
    return PEQA_OK;
}

/* "peqa.format" must be `want` and "peqa.version" one this build reads. */
static peqa_status meta_format(const peqa_st_file *f, const char *want, int version)
{
    const char *fmt, *ver;
    PEQA_TRY(meta_req(f, "peqa.format", &fmt));
    if (strcmp(fmt, want))
        return peqa__fail(PEQA_ERR_FORMAT, "%s: 'peqa.format' is '%.40s', expected '%s'", peqa_st_path(f), fmt, want);
    PEQA_TRY(meta_req(f, "peqa.version", &ver));
    int64_t v;
    if (!peqa_meta_int(ver, 0, INT32_MAX, &v) || v != version)
        return peqa__fail(PEQA_ERR_FORMAT, "%s: 'peqa.version' = '%.40s': this build reads version %d (a newer peqa wrote it?)",
                          peqa_st_path(f), ver, version);
    const char *pk;
    PEQA_TRY(meta_req(f, "peqa.pack_format", &pk));
    if (!peqa_meta_int(pk, 0, INT32_MAX, &v) || v != PEQA_PACK_FORMAT_VERSION)
        return peqa__fail(PEQA_ERR_FORMAT, "%s: 'peqa.pack_format' = '%.40s': this build packs codes in layout %d",
                          peqa_st_path(f), pk, PEQA_PACK_FORMAT_VERSION);
    return PEQA_OK;
}

/* A tensor that must be F32 with shape [n, g]. */
static peqa_status check_ng(const peqa_st_file *f, const peqa_st_tensor *t, int64_t n, int64_t g)
{
    if (t->dtype != PEQA_ST_F32)
        return peqa__fail(PEQA_ERR_FORMAT, "%s: tensor '%s' has dtype %s: expected F32", peqa_st_path(f), t->name,
                          peqa_st_dtype_name(t->dtype));
    if (t->ndim != 2 || t->shape[0] != n || t->shape[1] != g)
        return peqa__fail(PEQA_ERR_SHAPE, "%s: tensor '%s' does not have shape [%lld, %lld] (the model's linear)",
                          peqa_st_path(f), t->name, (long long)n, (long long)g);
    return PEQA_OK;
}

static peqa_status check_finite(const peqa_st_file *f, const char *name, const float *x, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!isfinite(x[i]))
            return peqa__fail(PEQA_ERR_NONFINITE, "%s: tensor '%s' element %zu is %s", peqa_st_path(f), name, i,
                              isnan(x[i]) ? "NaN" : "infinite");
    return PEQA_OK;
}

/* Per-linear geometry: n, k, G (ngroups), packed bytes. */
typedef struct {
    char prefix[PEQA_MODEL_NAME_MAX];
    peqa_qtensor_info info;
} lin_desc;

static peqa_status describe_linears(const peqa_model *m, lin_desc **out)
{
    const int64_t n = peqa_model_linear_count(m);
    lin_desc *d = calloc((size_t)(n ? n : 1), sizeof *d);
    if (!d) return peqa__fail(PEQA_ERR_NOMEM, "out of memory");
    for (int64_t i = 0; i < n; i++) {
        peqa_status st = peqa_model_linear_name(m, i, d[i].prefix, sizeof d[i].prefix);
        if (!st) st = peqa_qtensor_get_info(peqa_model_linear_at((peqa_model *)m, i)->q, &d[i].info);
        if (st) {
            free(d);
            return st;
        }
    }
    *out = d;
    return PEQA_OK;
}

/* ---- the quantized model file ------------------------------------------------------------------ */

peqa_status peqa_qfile_save(const peqa_model *m, const char *path)
{
    if (!m || !path) return peqa__fail(PEQA_ERR_NULL, "peqa_qfile_save: NULL argument");
    if (!m->quantized) return peqa__fail(PEQA_ERR_ARG, "%s: the model is not quantized (run peqa_model_quantize first)", path);
    if (!host_little_endian()) return peqa__fail(PEQA_ERR_ARG, "%s: writing needs a little-endian host", path);
    peqa_model *mm = (peqa_model *)m; /* the iterators hand out mutable pointers; nothing is written */
    const int64_t nlin = peqa_model_linear_count(m);
    lin_desc *d = NULL;
    float *sz = NULL;
    char *json = NULL;
    peqa_st_writer *w = NULL;
    peqa_status st = describe_linears(m, &d);
    if (st) return st;
    size_t total = 0;
    for (int64_t i = 0; i < nlin; i++) total += 2 * (size_t)(d[i].info.n * d[i].info.ngroups);
    if (!(sz = malloc((total ? total : 1) * sizeof *sz))) {
        st = peqa__fail(PEQA_ERR_NOMEM, "%s: out of memory", path);
        goto done;
    }
    if ((st = peqa_st_writer_create(&w)) || (st = peqa_model_config_json(&m->cfg, &json))) goto done;
    /* fp32 tensors under their Hugging Face names */
    for (int64_t i = 0; i < peqa_model_tensor_count(m); i++) {
        peqa_model_tensor t;
        if ((st = peqa_model_tensor_at(mm, i, &t))) goto done;
        if (t.qt) continue;
        if ((st = peqa_st_writer_add(w, t.name, PEQA_ST_F32, (size_t)t.ndim, t.shape, t.f32,
                                     (size_t)t.numel * sizeof(float))))
            goto done;
    }
    /* the linears */
    size_t off = 0;
    for (int64_t i = 0; i < nlin; i++) {
        const peqa_qtensor *q = peqa_model_linear_at(mm, i)->q;
        const peqa_qtensor_info *in = &d[i].info;
        const void *data;
        size_t bytes;
        char name[PEQA_MODEL_NAME_MAX + 16];
        const size_t ng = (size_t)(in->n * in->ngroups);
        float *s = sz + off, *z = sz + off + ng;
        off += 2 * ng;
        if ((st = peqa_qtensor_packed(q, &data, &bytes)) || (st = peqa_qtensor_get_scales(q, s)) ||
            (st = peqa_qtensor_get_zeros(q, z)))
            goto done;
        const int64_t shp1[1] = {(int64_t)bytes}, shp2[2] = {in->n, in->ngroups};
        snprintf(name, sizeof name, "%s.qweight", d[i].prefix);
        if ((st = peqa_st_writer_add(w, name, PEQA_ST_U8, 1, shp1, data, bytes))) goto done;
        snprintf(name, sizeof name, "%s.scales", d[i].prefix);
        if ((st = peqa_st_writer_add(w, name, PEQA_ST_F32, 2, shp2, s, ng * sizeof(float)))) goto done;
        snprintf(name, sizeof name, "%s.qzeros", d[i].prefix);
        if ((st = peqa_st_writer_add(w, name, PEQA_ST_F32, 2, shp2, z, ng * sizeof(float)))) goto done;
    }
    uint64_t h;
    char hex[17], num[24], grp[24], pk[24];
    if ((st = peqa_model_codes_hash(m, &h))) goto done;
    peqa_hash_hex(h, hex);
    snprintf(num, sizeof num, "%d", m->bits);
    snprintf(pk, sizeof pk, "%d", PEQA_PACK_FORMAT_VERSION);
    peqa_group_str(m->group, grp);
    if ((st = peqa_st_writer_set_metadata(w, "peqa.format", "quantized")) ||
        (st = peqa_st_writer_set_metadata(w, "peqa.version", "1")) ||
        (st = peqa_st_writer_set_metadata(w, "peqa.pack_format", pk)) ||
        (st = peqa_st_writer_set_metadata(w, "peqa.bits", num)) ||
        (st = peqa_st_writer_set_metadata(w, "peqa.group", grp)) ||
        (st = peqa_st_writer_set_metadata(w, "peqa.config", json)) ||
        (st = peqa_st_writer_set_metadata(w, "peqa.codes_hash", hex)))
        goto done;
    st = peqa_st_writer_write(w, path);
done:
    peqa_st_writer_free(w);
    free(json);
    free(sz);
    free(d);
    return st;
}

/* Is `name` one of the tensors a quantized file of model m holds? */
static int expected_name(peqa_model *m, const lin_desc *d, const char *name)
{
    for (int64_t i = 0; i < peqa_model_tensor_count(m); i++) {
        peqa_model_tensor t;
        if (peqa_model_tensor_at(m, i, &t) == PEQA_OK && !t.qt && !strcmp(t.name, name)) return 1;
    }
    if (m->cfg.tie_embeddings && !strcmp(name, "lm_head.weight")) return 1; /* tolerated, checked by load_tensors */
    for (int64_t i = 0; i < peqa_model_linear_count(m); i++) {
        size_t l = strlen(d[i].prefix);
        if (!strncmp(name, d[i].prefix, l) &&
            (!strcmp(name + l, ".qweight") || !strcmp(name + l, ".scales") || !strcmp(name + l, ".qzeros")))
            return 1;
    }
    return 0;
}

/* Fills the linears of the quantized shell m from file f. */
static peqa_status load_linears(peqa_model *m, peqa_st_file *f, const lin_desc *d)
{
    const char *path = peqa_st_path(f);
    size_t maxb = 1, maxng = 1;
    for (int64_t i = 0; i < peqa_model_linear_count(m); i++) {
        if (d[i].info.packed_bytes > maxb) maxb = d[i].info.packed_bytes;
        if ((size_t)(d[i].info.n * d[i].info.ngroups) > maxng) maxng = (size_t)(d[i].info.n * d[i].info.ngroups);
    }
    unsigned char *buf = malloc(maxb);
    float *s = malloc(maxng * sizeof *s), *z = malloc(maxng * sizeof *z);
    peqa_status st = PEQA_OK;
    if (!buf || !s || !z) {
        st = peqa__fail(PEQA_ERR_NOMEM, "%s: out of memory", path);
        goto done;
    }
    for (int64_t i = 0; i < peqa_model_linear_count(m) && !st; i++) {
        const peqa_qtensor_info *in = &d[i].info;
        peqa_qtensor *q = peqa_model_linear_at(m, i)->q;
        char nq[PEQA_MODEL_NAME_MAX + 16], ns[PEQA_MODEL_NAME_MAX + 16], nz[PEQA_MODEL_NAME_MAX + 16];
        snprintf(nq, sizeof nq, "%s.qweight", d[i].prefix);
        snprintf(ns, sizeof ns, "%s.scales", d[i].prefix);
        snprintf(nz, sizeof nz, "%s.qzeros", d[i].prefix);
        const peqa_st_tensor *tq, *ts, *tz;
        if ((st = peqa_st_get(f, nq, &tq)) || (st = peqa_st_get(f, ns, &ts)) || (st = peqa_st_get(f, nz, &tz))) break;
        if (tq->dtype != PEQA_ST_U8 || tq->ndim != 1) {
            st = peqa__fail(PEQA_ERR_FORMAT, "%s: tensor '%s' must be a 1-D U8 byte image (dtype %s, %zu dims)", path, nq,
                            peqa_st_dtype_name(tq->dtype), tq->ndim);
            break;
        }
        if (tq->nbytes != in->packed_bytes) {
            st = peqa__fail(PEQA_ERR_SHAPE,
                            "%s: tensor '%s' has %llu bytes: a %lld x %lld linear at %d bits, group %lld packs into %zu",
                            path, nq, (unsigned long long)tq->nbytes, (long long)in->n, (long long)in->k, in->bits,
                            (long long)in->group, in->packed_bytes);
            break;
        }
        if ((st = check_ng(f, ts, in->n, in->ngroups)) || (st = check_ng(f, tz, in->n, in->ngroups))) break;
        const size_t ng = (size_t)(in->n * in->ngroups);
        if ((st = peqa_st_read_raw_into(f, tq, buf, in->packed_bytes)) ||
            (st = peqa_st_read_f32_into(f, ts, s, ng)) || (st = peqa_st_read_f32_into(f, tz, z, ng)) ||
            (st = check_finite(f, ns, s, ng)) || (st = check_finite(f, nz, z, ng)))
            break;
        if ((st = peqa_qtensor_load_packed(q, buf, in->packed_bytes))) {
            st = peqa__wrapf(st, "%s: tensor '%s'", path, nq);
            break;
        }
        if ((st = peqa_qtensor_set_scales(q, s)) || (st = peqa_qtensor_set_zeros(q, z))) break;
    }
done:
    free(buf), free(s), free(z);
    return st;
}

/* Loads a quantized model from an open set whose single file f has "peqa.format" = "quantized". */
static peqa_status qfile_load_set(const char *path, peqa_st_set *set, peqa_st_file *f, peqa_model **out)
{
    int bits;
    int64_t group;
    const char *cfgtext, *hashtext;
    peqa_model_config cfg;
    PEQA_TRY(meta_format(f, "quantized", PEQA_QFILE_VERSION));
    PEQA_TRY(meta_bits_group(f, &bits, &group));
    PEQA_TRY(meta_req(f, "peqa.config", &cfgtext));
    PEQA_TRY(meta_req(f, "peqa.codes_hash", &hashtext));
    char what[300];
    snprintf(what, sizeof what, "%.250s: metadata 'peqa.config'", path);
    PEQA_TRY(peqa_model_config_parse(cfgtext, strlen(cfgtext), what, &cfg));
    peqa_model *m = NULL;
    peqa_status st = peqa_model_create_quantized(&cfg, bits, group, &m);
    if (st) return peqa__wrapf(st, "%s: bits %d, group %lld do not fit the configuration", path, bits, (long long)group);
    lin_desc *d = NULL;
    if ((st = describe_linears(m, &d))) goto fail;
    for (size_t i = 0; i < peqa_st_count(f); i++) {
        const peqa_st_tensor *t = peqa_st_tensor_at(f, i);
        if (!expected_name(m, d, t->name)) {
            st = peqa__fail(PEQA_ERR_FORMAT, "%s: unexpected tensor '%.100s' (not part of a quantized model of this configuration)",
                            path, t->name);
            goto fail;
        }
    }
    if ((st = peqa_model_load_tensors(m, set, path)) || (st = load_linears(m, f, d))) goto fail;
    uint64_t h;
    char hex[17];
    if ((st = peqa_model_codes_hash(m, &h))) goto fail;
    peqa_hash_hex(h, hex);
    if (strcmp(hex, hashtext)) {
        st = peqa__fail(PEQA_ERR_FORMAT, "%s: the codes hash is %s but the metadata records '%.40s' (damaged file)", path,
                        hex, hashtext);
        goto fail;
    }
    free(d);
    *out = m;
    return PEQA_OK;
fail:
    free(d);
    peqa_model_free(m);
    return st;
}

peqa_status peqa_qfile_load(const char *path, peqa_model **out)
{
    if (!path || !out) return peqa__fail(PEQA_ERR_NULL, "peqa_qfile_load: NULL argument");
    *out = NULL;
    peqa_st_set *set = NULL;
    PEQA_TRY(peqa_st_set_open(path, &set));
    peqa_status st;
    if (peqa_st_set_shard_count(set) != 1)
        st = peqa__fail(PEQA_ERR_FORMAT, "%s: a quantized model is one safetensors file, not a shard index", path);
    else
        st = qfile_load_set(path, set, peqa_st_set_shard(set, 0), out);
    peqa_st_set_close(set);
    return st;
}

static int ends_with(const char *s, const char *suf)
{
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && !strcmp(s + a - b, suf);
}

peqa_status peqa_model_open(const char *path, peqa_model **out)
{
    if (!path || !out) return peqa__fail(PEQA_ERR_NULL, "peqa_model_open: NULL argument");
    *out = NULL;
    struct stat sb;
    if (stat(path, &sb) != 0) return peqa__fail(PEQA_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    if (!S_ISREG(sb.st_mode) || ends_with(path, ".json")) return peqa_model_load(path, out);
    peqa_st_set *set = NULL;
    PEQA_TRY(peqa_st_set_open(path, &set));
    peqa_st_file *f = peqa_st_set_shard(set, 0);
    const char *fmt = f ? peqa_st_metadata(f, "peqa.format") : NULL;
    peqa_status st;
    if (!fmt) {
        peqa_st_set_close(set);
        return peqa_model_load(path, out); /* a Hugging Face checkpoint: config.json beside it */
    }
    if (!strcmp(fmt, "quantized"))
        st = qfile_load_set(path, set, f, out);
    else if (!strcmp(fmt, "scales"))
        st = peqa__fail(PEQA_ERR_ARG, "%s is a scale file (one task's scales), not a model: pass the quantized model as the model and this file with --scales",
                        path);
    else if (!strcmp(fmt, "checkpoint"))
        st = peqa__fail(PEQA_ERR_ARG, "%s is a training checkpoint, not a model: continue the run with 'peqa finetune --resume %s'",
                        path, path);
    else
        st = peqa__fail(PEQA_ERR_FORMAT, "%s: 'peqa.format' = '%.40s' is not a kind of file this build knows", path, fmt);
    peqa_st_set_close(set);
    return st;
}

/* ---- scale files --------------------------------------------------------------------------------- */

peqa_status peqa_scales_save(const peqa_model *m, int with_zeros, const char *path, const char *const *extra_meta)
{
    if (!m || !path) return peqa__fail(PEQA_ERR_NULL, "peqa_scales_save: NULL argument");
    if (!m->quantized) return peqa__fail(PEQA_ERR_ARG, "%s: scale files hold a quantized model's scales; the model is full precision", path);
    if (!host_little_endian()) return peqa__fail(PEQA_ERR_ARG, "%s: writing needs a little-endian host", path);
    for (const char *const *kv = extra_meta; kv && kv[0]; kv += 2)
        if (!kv[1] || strncmp(kv[0], "peqa.train.", 11))
            return peqa__fail(PEQA_ERR_ARG, "peqa_scales_save: extra metadata key '%.60s' must start with 'peqa.train.' and have a value",
                              kv[0]);
    peqa_model *mm = (peqa_model *)m;
    const int64_t nlin = peqa_model_linear_count(m);
    lin_desc *d = NULL;
    float *buf = NULL;
    peqa_st_writer *w = NULL;
    peqa_status st = describe_linears(m, &d);
    if (st) return st;
    size_t total = 0;
    for (int64_t i = 0; i < nlin; i++) total += (with_zeros ? 2 : 1) * (size_t)(d[i].info.n * d[i].info.ngroups);
    if (!(buf = malloc((total ? total : 1) * sizeof *buf))) {
        st = peqa__fail(PEQA_ERR_NOMEM, "%s: out of memory", path);
        goto done;
    }
    if ((st = peqa_st_writer_create(&w))) goto done;
    size_t off = 0;
    for (int64_t i = 0; i < nlin; i++) {
        const peqa_qtensor *q = peqa_model_linear_at(mm, i)->q;
        const size_t ng = (size_t)(d[i].info.n * d[i].info.ngroups);
        const int64_t shp[2] = {d[i].info.n, d[i].info.ngroups};
        char name[PEQA_MODEL_NAME_MAX + 16];
        snprintf(name, sizeof name, "%s.scales", d[i].prefix);
        if ((st = peqa_qtensor_get_scales(q, buf + off)) ||
            (st = peqa_st_writer_add(w, name, PEQA_ST_F32, 2, shp, buf + off, ng * sizeof(float))))
            goto done;
        off += ng;
        if (with_zeros) {
            snprintf(name, sizeof name, "%s.qzeros", d[i].prefix);
            if ((st = peqa_qtensor_get_zeros(q, buf + off)) ||
                (st = peqa_st_writer_add(w, name, PEQA_ST_F32, 2, shp, buf + off, ng * sizeof(float))))
                goto done;
            off += ng;
        }
    }
    uint64_t h;
    char hex[17], bits[24], grp[24], pk[24], nl[24];
    if ((st = peqa_model_codes_hash(m, &h))) goto done;
    peqa_hash_hex(h, hex);
    snprintf(bits, sizeof bits, "%d", m->bits);
    snprintf(pk, sizeof pk, "%d", PEQA_PACK_FORMAT_VERSION);
    snprintf(nl, sizeof nl, "%lld", (long long)nlin);
    peqa_group_str(m->group, grp);
    if ((st = peqa_st_writer_set_metadata(w, "peqa.format", "scales")) ||
        (st = peqa_st_writer_set_metadata(w, "peqa.version", "1")) ||
        (st = peqa_st_writer_set_metadata(w, "peqa.pack_format", pk)) ||
        (st = peqa_st_writer_set_metadata(w, "peqa.bits", bits)) ||
        (st = peqa_st_writer_set_metadata(w, "peqa.group", grp)) ||
        (st = peqa_st_writer_set_metadata(w, "peqa.codes_hash", hex)) ||
        (st = peqa_st_writer_set_metadata(w, "peqa.linears", nl)) ||
        (st = peqa_st_writer_set_metadata(w, "peqa.zeros", with_zeros ? "1" : "0")))
        goto done;
    for (const char *const *kv = extra_meta; kv && kv[0]; kv += 2)
        if ((st = peqa_st_writer_set_metadata(w, kv[0], kv[1]))) goto done;
    st = peqa_st_writer_write(w, path);
done:
    peqa_st_writer_free(w);
    free(buf);
    free(d);
    return st;
}

static peqa_status scales_apply_file(peqa_model *m, peqa_st_file *f, int *had_zeros)
{
    const char *path = peqa_st_path(f);
    int bits;
    int64_t group, nl;
    const char *hashtext, *nltext, *ztext;
    PEQA_TRY(meta_format(f, "scales", PEQA_SCALES_VERSION));
    PEQA_TRY(meta_bits_group(f, &bits, &group));
    PEQA_TRY(meta_req(f, "peqa.codes_hash", &hashtext));
    PEQA_TRY(meta_req(f, "peqa.linears", &nltext));
    PEQA_TRY(meta_req(f, "peqa.zeros", &ztext));
    if (bits != m->bits)
        return peqa__fail(PEQA_ERR_ARG, "%s: the scales are for %d-bit codes but the model has %d-bit codes", path, bits,
                          m->bits);
    if (!peqa_meta_int(nltext, 1, INT64_MAX, &nl))
        return peqa__fail(PEQA_ERR_FORMAT, "%s: metadata 'peqa.linears' = '%.40s' is not a count", path, nltext);
    if (nl != peqa_model_linear_count(m))
        return peqa__fail(PEQA_ERR_ARG, "%s: the scales are for %lld linears but the model has %lld", path, (long long)nl,
                          (long long)peqa_model_linear_count(m));
    const int zeros = !strcmp(ztext, "1");
    if (!zeros && strcmp(ztext, "0"))
        return peqa__fail(PEQA_ERR_FORMAT, "%s: metadata 'peqa.zeros' = '%.40s': expected 0 or 1", path, ztext);
    uint64_t h;
    char hex[17];
    PEQA_TRY(peqa_model_codes_hash(m, &h));
    peqa_hash_hex(h, hex);
    if (strcmp(hex, hashtext)) {
        /* name the most telling difference; the hash alone decides (two group sizes that make
         * every linear per-channel give the same codes and are accepted) */
        if (group != m->group) {
            char a[24], b[24];
            peqa_group_str(group, a), peqa_group_str(m->group, b);
            return peqa__fail(PEQA_ERR_ARG, "%s: the scales are for group size %s but the model has group size %s", path, a, b);
        }
        return peqa__fail(PEQA_ERR_ARG,
                          "%s: the scales belong to a different integer model (codes hash %.40s; this model's is %s): apply them only to the quantized model they were trained on",
                          path, hashtext, hex);
    }
    lin_desc *d = NULL;
    PEQA_TRY(describe_linears(m, &d));
    const int64_t n = peqa_model_linear_count(m);
    size_t total = 0;
    for (int64_t i = 0; i < n; i++) total += (zeros ? 2 : 1) * (size_t)(d[i].info.n * d[i].info.ngroups);
    peqa_status st = PEQA_OK;
    if ((size_t)(zeros ? 2 : 1) * (size_t)n != peqa_st_count(f))
        st = peqa__fail(PEQA_ERR_FORMAT, "%s: %zu tensors, expected %lld (scales%s of %lld linears)", path, peqa_st_count(f),
                        (long long)((zeros ? 2 : 1) * n), zeros ? " and zero points" : "", (long long)n);
    float *buf = st ? NULL : malloc((total ? total : 1) * sizeof *buf);
    if (!st && !buf) st = peqa__fail(PEQA_ERR_NOMEM, "%s: out of memory", path);
    /* read and check everything first, then set: the model is unchanged on error */
    size_t off = 0;
    for (int64_t i = 0; i < n && !st; i++) {
        const size_t ng = (size_t)(d[i].info.n * d[i].info.ngroups);
        for (int z = 0; z <= zeros && !st; z++) {
            char name[PEQA_MODEL_NAME_MAX + 16];
            const peqa_st_tensor *t;
            snprintf(name, sizeof name, "%s.%s", d[i].prefix, z ? "qzeros" : "scales");
            if (!(st = peqa_st_get(f, name, &t)) && !(st = check_ng(f, t, d[i].info.n, d[i].info.ngroups)) &&
                !(st = peqa_st_read_f32_into(f, t, buf + off, ng)))
                st = check_finite(f, name, buf + off, ng);
            off += ng;
        }
    }
    off = 0;
    for (int64_t i = 0; i < n && !st; i++) {
        peqa_qtensor *q = peqa_model_linear_at(m, i)->q;
        const size_t ng = (size_t)(d[i].info.n * d[i].info.ngroups);
        st = peqa_qtensor_set_scales(q, buf + off);
        off += ng;
        if (zeros && !st) {
            st = peqa_qtensor_set_zeros(q, buf + off);
            off += ng;
        }
    }
    free(buf);
    free(d);
    if (!st && had_zeros) *had_zeros = zeros;
    return st;
}

peqa_status peqa_scales_apply(peqa_model *m, const char *path, int *had_zeros)
{
    if (!m || !path) return peqa__fail(PEQA_ERR_NULL, "peqa_scales_apply: NULL argument");
    if (!m->quantized)
        return peqa__fail(PEQA_ERR_ARG, "%s: scale files apply to quantized models; this model is full precision", path);
    peqa_st_file *f = NULL;
    PEQA_TRY(peqa_st_open(path, &f));
    const char *fmt = peqa_st_metadata(f, "peqa.format");
    peqa_status st;
    if (fmt && !strcmp(fmt, "quantized"))
        st = peqa__fail(PEQA_ERR_ARG, "%s is a quantized model file, not a scale file", path);
    else if (fmt && !strcmp(fmt, "checkpoint"))
        st = peqa__fail(PEQA_ERR_ARG, "%s is a training checkpoint, not a scale file (finish or resume the run to get one)",
                        path);
    else
        st = scales_apply_file(m, f, had_zeros);
    peqa_st_close(f);
    return st;
}
