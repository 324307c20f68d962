/* Golden generator: `make golden`. Builds every case from the in-repo PRNG, runs it through the
 * scalar reference (context forced to ISA "scalar", one thread) and writes golden/<name>.bin
 * plus golden/MANIFEST. Only this program writes the golden set. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "case.h"
#include "golden_io.h"

typedef struct {
    const char *name, *cls;
    int64_t m, n, k, g; /* g = 0: per-channel */
} spec;

/* The edge-shape matrix (run for every bit width): M = 1 and odd M, N and K off every tile,
 * per-channel and g in {32, 64, 128, 256}, short last groups, all codes at min / max, zero
 * scales, all-zero weight groups, non-integer zero points, K >= 8192. */
static const spec specs[] = {
    {"m1_n33_k96_g32", "rtn", 1, 33, 96, 32},
    {"m7_n19_k200_g64", "rtn", 7, 19, 200, 64},        /* last group 8 wide */
    {"m5_n16_k384_g128", "rtn", 5, 16, 384, 128},
    {"m3_n17_k520_g256", "rtn", 3, 17, 520, 256},      /* last group 8 wide */
    {"m4_n23_k172_ch", "rtn", 4, 23, 172, 0},          /* per-channel, K % 32 = 12 */
    {"m1_n31_k300_ch", "rtn", 1, 31, 300, 0},
    {"m13_n40_k64_g32", "rtn", 13, 40, 64, 32},
    {"m2_n2_k8192_g128", "rtn", 2, 2, 8192, 128},      /* large K */
    {"m1_n1_k8200_ch", "rtn", 1, 1, 8200, 0},          /* large K, per-channel, K % 32 = 8 */
    {"m3_n18_k64_g32_max", "codes_max", 3, 18, 64, 32},
    {"m3_n18_k96_g32_min", "codes_min", 3, 18, 96, 32},
    {"m5_n21_k160_g32_zs", "zero_scale", 5, 21, 160, 32},
    {"m5_n21_k160_g64_zg", "zero_group", 5, 21, 160, 64},
    {"m4_n20_k136_g32_oz", "offgrid_z", 4, 20, 136, 32},
};

int main(int argc, char **argv)
{
    const char *dir = argc > 1 ? argv[1] : "golden";
    static const int bits_list[] = {2, 3, 4, 8};
    char path[512];
    snprintf(path, sizeof path, "%s/MANIFEST", dir);
    FILE *man = fopen(path, "w");
    if (!man) return fprintf(stderr, "golden: cannot write %s\n", path), 1;
    fprintf(man, "# peqa golden vectors, written by `make golden` (golden/gen.c). Do not edit.\n"
                 "# Each .bin (format in tests/golden_io.h) holds a case's inputs and the scalar\n"
                 "# reference's outputs of every slot: unpack (must equal codes), packed image, dequant,\n"
                 "# fwd (gemv when M = 1, gemm otherwise), gscale, gzero, ginput, qact, fwd_i8.\n"
                 "# tolerance: bitexact = memcmp on every ISA and thread count; f64c2 = the\n"
                 "# reference is within 2*n*2^-24*sum|terms| of a float64 evaluation.\n"
                 "# name op bits group M N K seed class tolerance fnv1a64\n");
    peqa_ctx *ctx;
    peqa_ctx_options opt = {.threads = 1, .isa = "scalar"};
    if (peqa_ctx_create(&opt, &ctx)) return fprintf(stderr, "golden: %s\n", peqa_last_error()), 1;
    int count = 0;
    size_t total = 0;
    for (size_t bi = 0; bi < sizeof bits_list / sizeof bits_list[0]; bi++)
        for (size_t si = 0; si < sizeof specs / sizeof specs[0]; si++) {
            const spec *sp = &specs[si];
            int bits = bits_list[bi];
            uint64_t seed = 0x5045514100000000ull + bi * 1000 + si;
            tcase c;
            tout o;
            float *w = NULL;
            if (!tcase_alloc(&c, bits, sp->g, sp->m, sp->n, sp->k) || !tcase_fill(&c, sp->cls, seed, &w))
                return fprintf(stderr, "golden: cannot build %s\n", sp->name), 1;
            if (case_run(ctx, &c, &o))
                return fprintf(stderr, "golden: %s: %s\n", sp->name, peqa_last_error()), 1;
            gbundle b = {.bits = bits, .group = c.g, .m = c.m, .n = c.n, .k = c.k, .seed = seed};
            int64_t nb = (c.k + 31) / 32;
            int ok = 1;
            if (w) ok &= gbundle_add(&b, "w", GDT_F32, c.n, c.k, w);
            ok &= gbundle_add(&b, "codes", GDT_U8, c.n, c.k, c.codes);
            ok &= gbundle_add(&b, "s", GDT_F32, c.n, c.ng, c.s);
            ok &= gbundle_add(&b, "z", GDT_F32, c.n, c.ng, c.z);
            ok &= gbundle_add(&b, "x", GDT_F32, c.m, c.k, c.x);
            ok &= gbundle_add(&b, "dy", GDT_F32, c.m, c.n, c.dy);
            ok &= gbundle_add(&b, "packed", GDT_U32, o.packed_bytes / 4, 1, o.packed);
            ok &= gbundle_add(&b, "deq", GDT_F32, c.n, c.k, o.deq);
            ok &= gbundle_add(&b, "y", GDT_F32, c.m, c.n, o.y);
            ok &= gbundle_add(&b, "ds", GDT_F32, c.n, c.ng, o.ds);
            ok &= gbundle_add(&b, "dz", GDT_F32, c.n, c.ng, o.dz);
            ok &= gbundle_add(&b, "dx", GDT_F32, c.m, c.k, o.dx);
            ok &= gbundle_add(&b, "xq", GDT_I8, c.m, c.k, o.xq);
            ok &= gbundle_add(&b, "xs", GDT_F32, c.m, nb, o.xs);
            ok &= gbundle_add(&b, "yi8", GDT_F32, c.m, c.n, o.yi8);
            char name[128];
            snprintf(name, sizeof name, "b%d_%s", bits, sp->name);
            snprintf(path, sizeof path, "%s/%s.bin", dir, name);
            uint64_t fnv;
            if (!ok || gbundle_write(&b, path, &fnv))
                return fprintf(stderr, "golden: cannot write %s\n", path), 1;
            FILE *f = fopen(path, "rb");
            if (f) fseek(f, 0, SEEK_END), total += (size_t)ftell(f), fclose(f);
            fprintf(man, "%s all %d %lld %lld %lld %lld 0x%016llx %s bitexact,f64c2 %016llx\n", name,
                    bits, (long long)c.g, (long long)c.m, (long long)c.n, (long long)c.k,
                    (unsigned long long)seed, sp->cls, (unsigned long long)fnv);
            gbundle_free(&b), tout_free(&o), tcase_free(&c), free(w);
            count++;
        }
    peqa_ctx_free(ctx);
    if (fclose(man) != 0) return fprintf(stderr, "golden: cannot write MANIFEST\n"), 1;
    printf("golden: wrote %d cases, %zu bytes, into %s/\n", count, total, dir);
    return 0;
}
