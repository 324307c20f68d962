/* Thread pool. Placeholder: runs every task on the calling thread, in index order. Results do
 * not depend on the schedule because tasks own disjoint outputs (SPEC §6 rule 5). */
#include <stdlib.h>
#include "internal.h"

struct peqa_pool {
    int threads;
};

peqa_status peqa__pool_create(int nthreads, peqa_pool **out)
{
    peqa_pool *p = calloc(1, sizeof *p);
    if (!p) return peqa__fail(PEQA_ERR_NOMEM, "thread pool: out of memory");
    p->threads = nthreads < 1 ? 1 : nthreads;
    *out = p;
    return PEQA_OK;
}

void peqa__pool_free(peqa_pool *p) { free(p); }
int peqa__pool_threads(const peqa_pool *p) { return p->threads; }

void peqa__pool_run(peqa_pool *p, int64_t ntasks, peqa_task_fn fn, void *arg)
{
    (void)p;
    for (int64_t i = 0; i < ntasks; i++) fn(arg, i);
}
