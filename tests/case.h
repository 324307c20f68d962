/* One test case: a quantized layer with its inputs, and every output the API computes. Shared
 * by the golden generator and the test runner so both run exactly the same calls. */
#ifndef PEQA_CASE_H
#define PEQA_CASE_H
#include "../src/peqa.h"

typedef struct {
    int bits;
    int64_t g, m, n, k, ng; /* g as stored (k for per-channel), ng = groups per row */
    uint8_t *codes;         /* n x k */
    float *s, *z;           /* n x ng */
    float *x;               /* m x k */
    float *dy;              /* m x n */
} tcase;

typedef struct {
    uint32_t *packed;
    size_t packed_bytes;
    float *deq, *y, *ds, *dz, *dx, *xs, *yi8;
    uint8_t *codes_rt; /* export(import(codes)) */
    int8_t *xq;
} tout;

/* Runs every operation with ctx; fills out (allocating). Returns PEQA_OK or the first error. */
peqa_status case_run(peqa_ctx *ctx, const tcase *c, tout *out);
void tout_free(tout *o);
void tcase_free(tcase *c);
/* Allocates the arrays of a case of this shape (zeroed). Returns 0 on failure. */
int tcase_alloc(tcase *c, int bits, int64_t g, int64_t m, int64_t n, int64_t k);
/* Fills a case with seeded random data of a class: "rtn" (random weights quantized by RTN),
 * "codes_max", "codes_min", "zero_scale", "zero_group", "offgrid_z" (non-integer zero points).
 * For "rtn" and "zero_group"/"zero_scale", *w receives the fp32 weights (caller frees). */
int tcase_fill(tcase *c, const char *cls, uint64_t seed, float **w);

#endif
