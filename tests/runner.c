/* peqa test runner. Usage:
 *   peqa_tests [--filter TEXT[,TEXT...]] [--isa LEVEL[,LEVEL...]] [--threads N[,N...]]
 *              [--seed N] [--golden DIR] [--quick]
 * --filter runs the groups whose name contains one of the texts; --isa and --threads narrow the
 * ISA levels and thread counts the kernel tests compare (default: all levels, 1,2,3,7,16).
 * Prints one line per case and, last, alone on a line: "N passed, N failed, N skipped".
 * Exit status 1 exactly when a case failed. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "test.h"

static const char *const all_isas[] = {"scalar", "avx2", "avx512", "neon"};
const char *t_isas[] = {"scalar", "avx2", "avx512", "neon"};
int t_nisas = 4;
int t_threads[16] = {1, 2, 3, 7, 16};
int t_nthreads = 5;
char t_threads_text[64] = "1,2,3,7,16";

/* The ISA column. In the emulated test build (PEQA_X86_EMULATE) the avx512 level runs the
 * AVX-512 and AVX-512 VNNI kernels on emulated intrinsics and the avx2 level its AVX-VNNI int8
 * kernels; the label says so on every line. */
static const char *isa_label(const char *isa)
{
#if defined(PEQA_X86_EMULATE)
    if (!strcmp(isa, "avx512")) return "avx512 (emulated)";
    if (!strcmp(isa, "avx2")) return "avx2 (avx-vnni emulated)";
#endif
    return isa;
}

void t_result(trun *r, int ok, const char *name, const char *isa, const char *fmt, ...)
{
    char detail[1024] = "";
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof detail, fmt, ap);
    va_end(ap);
    printf("%s  %-48s %-7s %s\n", ok ? "PASS" : "FAIL", name, isa_label(isa), detail);
    fflush(stdout);
    if (ok) r->pass++;
    else r->fail++;
}

void t_skip(trun *r, const char *name, const char *isa, const char *why)
{
    printf("SKIP  %-48s %-7s %s\n", name, isa_label(isa), why);
    r->skip++;
}

/* Does group `name` match the comma-separated filter list? */
static int group_selected(const char *filter, const char *name)
{
    if (!filter) return 1;
    char buf[256];
    snprintf(buf, sizeof buf, "%s", filter);
    for (char *tok = strtok(buf, ","); tok; tok = strtok(NULL, ","))
        if (strstr(name, tok)) return 1;
    return 0;
}

/* --isa: keep the listed levels, in the usual order. */
static int set_isas(const char *list)
{
    char buf[256];
    int n = 0;
    for (int i = 0; i < 4; i++) {
        snprintf(buf, sizeof buf, "%s", list);
        for (char *tok = strtok(buf, ","); tok; tok = strtok(NULL, ","))
            if (!strcmp(tok, all_isas[i])) {
                t_isas[n++] = all_isas[i];
                break;
            }
    }
    t_nisas = n;
    return n > 0;
}

/* --threads: a list of 1 .. 16 positive counts. */
static int set_threads(const char *list)
{
    char buf[256];
    int n = 0;
    size_t used = 0;
    snprintf(buf, sizeof buf, "%s", list);
    t_threads_text[0] = 0;
    for (char *tok = strtok(buf, ","); tok; tok = strtok(NULL, ",")) {
        int v = atoi(tok);
        if (v < 1 || v > 1024 || n == 16) return 0;
        t_threads[n++] = v;
        used += (size_t)snprintf(t_threads_text + used, sizeof t_threads_text - used, "%s%d", n > 1 ? "," : "", v);
        if (used >= sizeof t_threads_text) return 0;
    }
    t_nthreads = n;
    return n > 0;
}

peqa_ctx *t_ctx(const char *isa, int threads)
{
    peqa_ctx *c = NULL;
    peqa_ctx_options o = {.threads = threads, .isa = isa};
    if (peqa_ctx_create(&o, &c) != PEQA_OK) return NULL;
    return c;
}

int64_t t_first_diff(const void *a, const void *b, size_t elem, int64_t count)
{
    const unsigned char *x = a, *y = b;
    for (int64_t i = 0; i < count; i++)
        if (memcmp(x + (size_t)i * elem, y + (size_t)i * elem, elem) != 0) return i;
    return -1;
}

int main(int argc, char **argv)
{
    trun r = {.golden_dir = "golden", .seed = 20261122};
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--filter") && i + 1 < argc) r.filter = argv[++i];
        else if (!strcmp(argv[i], "--seed") && i + 1 < argc) r.seed = strtoull(argv[++i], NULL, 0);
        else if (!strcmp(argv[i], "--golden") && i + 1 < argc) r.golden_dir = argv[++i];
        else if (!strcmp(argv[i], "--quick")) r.quick = 1;
        else if (!strcmp(argv[i], "--isa") && i + 1 < argc && set_isas(argv[i + 1])) i++;
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc && set_threads(argv[i + 1])) i++;
        else {
            fprintf(stderr, "usage: %s [--filter TEXT[,TEXT...]] [--isa LEVEL[,LEVEL...]] [--threads N[,N...]] "
                    "[--seed N] [--golden DIR] [--quick]\n", argv[0]);
            return 2;
        }
    }
    static const struct { const char *name; void (*fn)(trun *); } groups[] = {
        {"api", test_api}, {"golden", test_golden}, {"random", test_random}, {"grad", test_grad}, {"dense", test_dense},
        {"pool", test_pool}, {"formats", test_formats}, {"ops", test_ops},
        {"model", test_model},
        {"import", test_import},
        {"train", test_train},
#if defined(PEQA_X86_EMULATE)
        {"emu", test_emu},
#endif
    };
    printf("# peqa %s tests; cpu: %s; best isa: %s; seed %llu\n", peqa_version(), peqa_cpu_features(),
           peqa_cpu_best_isa(), (unsigned long long)r.seed);
    for (size_t g = 0; g < sizeof groups / sizeof groups[0]; g++)
        if (group_selected(r.filter, groups[g].name)) groups[g].fn(&r);
    printf("%d passed, %d failed, %d skipped\n", r.pass, r.fail, r.skip);
    return r.fail ? 1 : 0;
}
