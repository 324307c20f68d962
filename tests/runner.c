/* peqa test runner. Usage: peqa_tests [--filter TEXT] [--seed N] [--golden DIR] [--quick]
 * Prints one line per case and, last, alone on a line: "N passed, N failed, N skipped".
 * Exit status 1 exactly when a case failed. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "test.h"

const char *const t_isas[] = {"scalar", "avx2", "avx512", "neon"};
const int t_nisas = 4;
const int t_threads[] = {1, 2, 3, 7, 16};
const int t_nthreads = 5;

void t_result(trun *r, int ok, const char *name, const char *isa, const char *fmt, ...)
{
    char detail[1024] = "";
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof detail, fmt, ap);
    va_end(ap);
    printf("%s  %-48s %-7s %s\n", ok ? "PASS" : "FAIL", name, isa, detail);
    fflush(stdout);
    if (ok) r->pass++;
    else r->fail++;
}

void t_skip(trun *r, const char *name, const char *isa, const char *why)
{
    printf("SKIP  %-48s %-7s %s\n", name, isa, why);
    r->skip++;
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
        else {
            fprintf(stderr, "usage: %s [--filter TEXT] [--seed N] [--golden DIR] [--quick]\n", argv[0]);
            return 2;
        }
    }
    static const struct { const char *name; void (*fn)(trun *); } groups[] = {
        {"api", test_api}, {"golden", test_golden}, {"random", test_random}, {"grad", test_grad}, {"dense", test_dense},
        {"pool", test_pool}, {"formats", test_formats}, {"ops", test_ops},
        {"model", test_model},
        {"import", test_import},
        {"train", test_train},
    };
    printf("# peqa %s tests; cpu: %s; best isa: %s; seed %llu\n", peqa_version(), peqa_cpu_features(),
           peqa_cpu_best_isa(), (unsigned long long)r.seed);
    for (size_t g = 0; g < sizeof groups / sizeof groups[0]; g++)
        if (!r.filter || strstr(groups[g].name, r.filter)) groups[g].fn(&r);
    printf("%d passed, %d failed, %d skipped\n", r.pass, r.fail, r.skip);
    return r.fail ? 1 : 0;
}
