#ifndef PEQA_COMPARE_H
#define PEQA_COMPARE_H
#include <stdio.h>
#include "case.h"
/* memcmp of every output of two runs of one case. Returns 1 when identical; otherwise 0 and
 * writes "<output>[<row>, <col>]: <a> vs <b>" for the first mismatch into msg. */
int compare_outputs(const tcase *c, const tout *a, const tout *b, char *msg, size_t len);
#endif
