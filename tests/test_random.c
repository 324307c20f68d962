/* Randomized edge-shape matrix: every ISA level and thread count against the scalar reference
 * on one thread, every slot, memcmp. Seeded; the seed and a reproducing command are printed. */
#include <stdlib.h>
#include <string.h>
#include "compare.h"
#include "prng.h"
#include "test.h"

static const char *const classes[] = {"rtn", "codes_max", "codes_min", "zero_scale", "zero_group", "offgrid_z"};

void test_random(trun *r)
{
    static const int bits_list[] = {2, 3, 4, 8};
    /* Fixed shapes that hit tile edges of any plausible kernel (M tails for MR in 1..16, N tails
     * for 16-row tiles, K tails for 32-column blocks), then random ones. The last two have K so
     * long that the int8 kernels' per-panel table of block sums (8192 entries) no longer holds a
     * row block's K / 32 blocks and is prepared chunk by chunk: GEMM rows (K = 66,000 > 8192 x 32
     * / 4) and a GEMV row (K = 263,000 > 8192 x 32). */
    static const int64_t fixed[][4] = {
        {1, 1, 1, 0},      {1, 16, 32, 32},  {2, 17, 33, 0},   {6, 48, 256, 64},
        {9, 31, 160, 32},  {16, 64, 128, 128}, {17, 15, 96, 32}, {33, 70, 300, 0},
        {1, 257, 512, 128}, {64, 40, 256, 256}, {3, 5, 4100, 128}, {5, 18, 66000, 128},
        {1, 3, 263000, 0},
    };
    int nfixed = (int)(sizeof fixed / sizeof fixed[0]), nrand = r->quick ? 4 : 12;
    prng pr;
    prng_seed(&pr, r->seed);
    for (size_t bi = 0; bi < sizeof bits_list / sizeof bits_list[0]; bi++)
        for (int ci = 0; ci < nfixed + nrand; ci++) {
            int bits = bits_list[bi];
            int64_t m, n, k, g;
            uint64_t seed = r->seed * 1000003u + bi * 1000 + (uint64_t)ci;
            if (ci < nfixed) {
                m = fixed[ci][0], n = fixed[ci][1], k = fixed[ci][2], g = fixed[ci][3];
            } else {
                m = 1 + (int64_t)prng_below(&pr, 40);
                n = 1 + (int64_t)prng_below(&pr, 80);
                k = 1 + (int64_t)prng_below(&pr, 700);
                static const int64_t gs[] = {32, 64, 128, 256, 0};
                g = gs[prng_below(&pr, 5)];
            }
            const char *cls = classes[(bi + (size_t)ci) % (sizeof classes / sizeof classes[0])];
            char name[160];
            snprintf(name, sizeof name, "random/b%d/m%lld_n%lld_k%lld_g%lld/%s", bits, (long long)m,
                     (long long)n, (long long)k, (long long)g, cls);
            tcase c;
            tout ref;
            peqa_ctx *ctx0 = t_ctx("scalar", 1);
            if (!ctx0 || !tcase_alloc(&c, bits, g, m, n, k) || !tcase_fill(&c, cls, seed, NULL) ||
                case_run(ctx0, &c, &ref)) {
                t_result(r, 0, name, "scalar", "setup failed: %s (seed %llu)", peqa_last_error(),
                         (unsigned long long)seed);
                peqa_ctx_free(ctx0);
                continue;
            }
            peqa_ctx_free(ctx0);
            /* the unpacked codes must be the imported ones (checks the layout round trip) */
            int64_t d = t_first_diff(ref.codes_rt, c.codes, 1, n * k);
            t_result(r, d < 0, name, "scalar", d < 0 ? "pack/unpack round trip exact" :
                     "pack/unpack round trip differs at %lld", (long long)d);
            for (int ii = 0; ii < t_nisas; ii++) {
                peqa_ctx *probe = t_ctx(t_isas[ii], 1);
                if (!probe) {
                    t_skip(r, name, t_isas[ii], "ISA not available on this CPU");
                    continue;
                }
                peqa_ctx_free(probe);
                int ok = 1;
                char msg[512] = "";
                int th_fail = 0;
                for (int ti = 0; ti < t_nthreads && ok; ti++) {
                    if (!strcmp(t_isas[ii], "scalar") && t_threads[ti] == 1) continue;
                    peqa_ctx *ctx = t_ctx(t_isas[ii], t_threads[ti]);
                    tout o;
                    if (!ctx || case_run(ctx, &c, &o)) {
                        ok = 0, th_fail = t_threads[ti];
                        snprintf(msg, sizeof msg, "run failed: %s", peqa_last_error());
                    } else {
                        if (!compare_outputs(&c, &ref, &o, msg, sizeof msg)) ok = 0, th_fail = t_threads[ti];
                        tout_free(&o);
                    }
                    peqa_ctx_free(ctx);
                }
                if (ok)
                    t_result(r, 1, name, t_isas[ii], "bit-identical to scalar, threads %s", t_threads_text);
                else
                    t_result(r, 0, name, t_isas[ii],
                             "threads=%d %s (seed %llu; reproduce: peqa_tests --filter random --seed %llu)",
                             th_fail, msg, (unsigned long long)seed, (unsigned long long)r->seed);
            }
            tout_free(&ref);
            tcase_free(&c);
        }
}
