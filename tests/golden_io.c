/* Golden bundle reader/writer (format in golden_io.h). Explicit little-endian byte handling, so
 * the files are the same on every host. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "golden_io.h"

uint64_t fnv1a64(const void *data, size_t n, uint64_t h)
{
    const unsigned char *p = data;
    for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 0x100000001b3ull;
    return h;
}

size_t gdt_size(uint32_t dtype)
{
    return dtype == GDT_F32 || dtype == GDT_U32 ? 4 : dtype == GDT_U8 || dtype == GDT_I8 ? 1 : 0;
}

int gbundle_add(gbundle *b, const char *name, uint32_t dtype, uint64_t d0, uint64_t d1, const void *data)
{
    if (b->narrays >= (int)(sizeof b->arr / sizeof b->arr[0]) || strlen(name) > 16) return 0;
    garray *a = &b->arr[b->narrays];
    size_t bytes = (size_t)(d0 * d1) * gdt_size(dtype);
    memset(a, 0, sizeof *a);
    strcpy(a->name, name);
    a->dtype = dtype, a->ndim = d1 == 1 ? 1 : 2, a->d0 = d0, a->d1 = d1;
    a->data = malloc(bytes ? bytes : 1);
    if (!a->data) return 0;
    memcpy(a->data, data, bytes);
    b->narrays++;
    return 1;
}

const garray *gbundle_get(const gbundle *b, const char *name)
{
    for (int i = 0; i < b->narrays; i++)
        if (strcmp(b->arr[i].name, name) == 0) return &b->arr[i];
    return NULL;
}

void gbundle_free(gbundle *b)
{
    for (int i = 0; i < b->narrays; i++) free(b->arr[i].data);
    b->narrays = 0;
}

static void put_u32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++) p[i] = (unsigned char)(v >> (8 * i));
}
static void put_u64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++) p[i] = (unsigned char)(v >> (8 * i));
}
static uint32_t get_u32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static uint64_t get_u64(const unsigned char *p) { return get_u32(p) | (uint64_t)get_u32(p + 4) << 32; }

int gbundle_write(const gbundle *b, const char *path, uint64_t *fnv)
{
    size_t total = 64;
    for (int i = 0; i < b->narrays; i++) {
        size_t bytes = (size_t)(b->arr[i].d0 * b->arr[i].d1) * gdt_size(b->arr[i].dtype);
        total += 40 + ((bytes + 7) & ~(size_t)7);
    }
    unsigned char *buf = calloc(1, total), *p = buf;
    if (!buf) return -1;
    memcpy(p, "PEQAGLD1", 8);
    put_u32(p + 8, 1), put_u32(p + 12, (uint32_t)b->narrays), put_u32(p + 16, (uint32_t)b->bits);
    put_u64(p + 24, (uint64_t)b->group), put_u64(p + 32, (uint64_t)b->m), put_u64(p + 40, (uint64_t)b->n);
    put_u64(p + 48, (uint64_t)b->k), put_u64(p + 56, b->seed);
    p += 64;
    for (int i = 0; i < b->narrays; i++) {
        const garray *a = &b->arr[i];
        size_t es = gdt_size(a->dtype), cnt = (size_t)(a->d0 * a->d1);
        memcpy(p, a->name, strlen(a->name));
        put_u32(p + 16, a->dtype), put_u32(p + 20, a->ndim), put_u64(p + 24, a->d0), put_u64(p + 32, a->d1);
        p += 40;
        const unsigned char *src = a->data;
        for (size_t e = 0; e < cnt; e++) {
            uint32_t v = 0;
            memcpy(&v, src + e * es, es); /* host value -> explicit little-endian bytes */
            if (es == 4) put_u32(p + e * 4, v);
            else p[e] = src[e];
        }
        p += (cnt * es + 7) & ~(size_t)7;
    }
    FILE *f = fopen(path, "wb");
    int ok = f && fwrite(buf, 1, total, f) == total;
    if (f && fclose(f) != 0) ok = 0;
    *fnv = fnv1a64(buf, total, FNV1A64_INIT);
    free(buf);
    return ok ? 0 : -1;
}

int gbundle_read(gbundle *b, const char *path, uint64_t *fnv, char *err, size_t errlen)
{
    memset(b, 0, sizeof *b);
    FILE *f = fopen(path, "rb");
    if (!f) return snprintf(err, errlen, "cannot open %s", path), -1;
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    if (len < 64 || len > (64L << 20)) {
        fclose(f);
        return snprintf(err, errlen, "%s: bad length %ld", path, len), -1;
    }
    unsigned char *buf = malloc((size_t)len);
    size_t got = buf ? fread(buf, 1, (size_t)len, f) : 0;
    fclose(f);
    if (got != (size_t)len) {
        free(buf);
        return snprintf(err, errlen, "%s: short read", path), -1;
    }
    *fnv = fnv1a64(buf, (size_t)len, FNV1A64_INIT);
    int rc = -1;
    if (memcmp(buf, "PEQAGLD1", 8) != 0 || get_u32(buf + 8) != 1) {
        snprintf(err, errlen, "%s: bad magic or version", path);
        goto done;
    }
    uint32_t na = get_u32(buf + 12);
    b->bits = (int32_t)get_u32(buf + 16);
    b->group = (int64_t)get_u64(buf + 24), b->m = (int64_t)get_u64(buf + 32);
    b->n = (int64_t)get_u64(buf + 40), b->k = (int64_t)get_u64(buf + 48), b->seed = get_u64(buf + 56);
    size_t off = 64;
    for (uint32_t i = 0; i < na; i++) {
        if (off + 40 > (size_t)len) {
            snprintf(err, errlen, "%s: truncated array header %u", path, i);
            goto done;
        }
        char name[17] = {0};
        memcpy(name, buf + off, 16);
        uint32_t dt = get_u32(buf + off + 16);
        uint64_t d0 = get_u64(buf + off + 24), d1 = get_u64(buf + off + 32);
        size_t es = gdt_size(dt);
        if (!es || d0 > (1u << 26) || d1 > (1u << 26) || d0 * d1 > (1u << 26)) {
            snprintf(err, errlen, "%s: array '%s' has a bad dtype or shape", path, name);
            goto done;
        }
        size_t cnt = (size_t)(d0 * d1), bytes = cnt * es;
        off += 40;
        if (off + bytes > (size_t)len) {
            snprintf(err, errlen, "%s: array '%s' runs past the end", path, name);
            goto done;
        }
        void *tmp = malloc(bytes ? bytes : 1);
        if (!tmp) goto done;
        for (size_t e = 0; e < cnt; e++) {
            if (es == 4) {
                uint32_t v = get_u32(buf + off + 4 * e);
                memcpy((unsigned char *)tmp + 4 * e, &v, 4);
            } else {
                ((unsigned char *)tmp)[e] = buf[off + e];
            }
        }
        if (!gbundle_add(b, name, dt, d0, d1, tmp)) {
            free(tmp);
            snprintf(err, errlen, "%s: too many arrays", path);
            goto done;
        }
        free(tmp);
        off += (bytes + 7) & ~(size_t)7;
    }
    if (off != (size_t)len) {
        snprintf(err, errlen, "%s: %zu trailing bytes", path, (size_t)len - off);
        goto done;
    }
    rc = 0;
done:
    free(buf);
    if (rc) gbundle_free(b);
    return rc;
}
