/* Thread pool: one persistent set of pthreads per context (SPEC §9).
 *
 * Design
 * - A pool of T threads owns T - 1 workers; the thread that calls peqa__pool_run is the T-th and
 *   works too. T = 1 starts no thread at all.
 * - One job at a time. Task indices are handed out by one atomic counter (`next`, fetch_add), so
 *   every index runs exactly once whatever the interleaving. Which thread runs which index does
 *   not matter for the results: the drivers give every task disjoint outputs (SPEC §6 rule 5),
 *   and nothing here combines floating-point values across threads.
 * - The job is announced in one atomic word, `state` = generation | CLOSED bit | joined count.
 *   A worker takes part only by incrementing `joined` with a compare-and-swap while the job is
 *   open; once the caller has run out of tasks it sets CLOSED (fetch_or), which also tells it
 *   exactly how many workers joined, and it waits for that many check-outs (`finished`). So
 *   the caller never waits for a worker that has not woken up yet: if it finishes the tasks
 *   alone (tiny jobs, slow wake-ups, more threads than cores) it returns at once, and the late
 *   worker finds the job closed and goes back to sleep. The job fields (fn, arg, ntasks) are
 *   written before the job is opened and are only read by joined workers, whom the caller
 *   waits for before it writes them again, so they need no lock.
 * - Idle workers spin for a short, bounded time (back-to-back layer calls then start without a
 *   futex wake-up; spinning workers join a new job by themselves) and then sleep on their own
 *   condition variable. Sleepers are woken lazily: only when, between two of its tasks, the
 *   caller predicts enough remaining work to pay for a wake-up (maybe_wake). A small job
 *   after an idle pause therefore costs what one thread costs. Consequence for callers: a
 *   task must not wait for another task of the same job (the drivers' tasks never do; they
 *   own disjoint outputs). When the pool has more threads than the process has CPUs, spinning
 *   would only steal time from the threads doing the work, so the spin budget is zero, and
 *   spinning threads yield their CPU every few microseconds in any case.
 * - Lost wake-ups are excluded by the mutex, never by a store/load pairing of atomics alone:
 *   each side's "publish my flag, then read the other side's" happens under `mu`, so the two
 *   critical sections are ordered and the later one sees the earlier one's writes. A sleeper
 *   sets `sleeping = 1` and re-reads `state` under the mutex before it waits; the caller stores
 *   `state` when it opens the job and reads `sleeping` after taking the mutex (maybe_wake), so
 *   either the worker sees the open job or the caller sees it asleep and signals it. The
 *   caller's wait for the check-outs is the mirror image: it sets `caller_waiting` and reads
 *   `finished` under the mutex, and a worker, after incrementing `finished`, reads
 *   `caller_waiting` under the mutex. (An earlier version let the worker read `caller_waiting`
 *   without the mutex, a Dekker pairing that is correct on seq_cst atomics but lost wake-ups
 *   under qemu-user on x86 hosts, which emulates STLR followed by LDAR without the store-load
 *   barrier: the caller slept with finished == joined. The mutex costs one uncontended lock per
 *   worker and job.)
 * - A call from inside a task (of any pool) runs inline on the calling thread: a thread-local
 *   depth counter says "this thread is executing a task". Nested parallelism is thus safe (no
 *   waiting for workers that are busy with the outer job) and cheap. A call from a second
 *   application thread while the pool is busy (run_mu is taken) also runs inline rather than
 *   queueing: correct, never deadlocks, and keeps that thread busy.
 * - Workers block all signals so that the host application's handlers run on its own threads.
 * - The library never prints, aborts or exits: creation failures return a status after joining
 *   the workers already started. */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>
#include "internal.h"

/* Upper bound on threads per pool (the joined count has JOIN_BITS bits). */
#define POOL_MAX_THREADS 4096
/* state = (generation << GEN_SHIFT) | CLOSED? | joined */
#define JOIN_BITS 16
#define JOIN_MASK ((UINT64_C(1) << JOIN_BITS) - 1)
#define STATE_CLOSED (UINT64_C(1) << JOIN_BITS)
#define GEN_SHIFT (JOIN_BITS + 1)
/* How long an idle thread polls before it sleeps. A futex wake-up costs tens to hundreds of
 * microseconds (much more in a VM whose idle vCPU is descheduled); a spin of this order hides
 * it between consecutive layer calls, while an idle pool stops using CPU within a millisecond. */
#define POOL_SPIN_NS 200000L
/* Predicted remaining work that justifies waking one sleeping worker (see maybe_wake). */
#define POOL_WAKE_WORTH_NS 100000L

typedef struct {
    pthread_t tid;
    pthread_cond_t cv;      /* this worker's wake-up (only the caller signals it) */
    atomic_int sleeping;    /* 1 while the worker is (about to be) waiting on cv */
    struct peqa_pool *pool;
    int started, cv_ok;     /* for cleanup after a partial creation */
} pool_worker;

struct peqa_pool {
    int threads;            /* including the caller */
    int workers;            /* threads - 1 */
    long spin_ns;           /* 0 when oversubscribed */
    pool_worker *w;

    pthread_mutex_t mu;     /* guards the condition-variable waits */
    pthread_cond_t done_cv; /* the caller waits here for the check-outs */
    pthread_mutex_t run_mu; /* one job at a time; trylock, else the call runs inline */

    /* The job: written before it is opened, read only by joined workers. */
    peqa_task_fn fn;
    void *arg;
    int64_t ntasks;

    /* The padding keeps the task counter, which every thread hits while working, off the
     * cache line that idle workers poll. */
    char pad0[64];
    _Atomic int64_t next;       /* next task index to hand out */
    char pad1[64];
    _Atomic uint64_t state;     /* generation | CLOSED | joined */
    atomic_int stop;            /* set once by peqa__pool_free */
    char pad2[64];
    atomic_int finished;        /* joined workers that have checked out */
    atomic_int caller_waiting;  /* 1 while the caller is (about to be) waiting on done_cv */
};

/* Depth of task execution on this thread; > 0 means "inside a task": run inline. */
static _Thread_local int tls_task_depth;

/* A polite busy-wait hint. This is the one architecture-specific line in the framework: without
 * it a spinning core starves its SMT sibling and burns more power. */
static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Every SPIN_CHECK + 1 polls (about 2 us of pause instructions) a spinning thread looks at the
 * clock and yields its CPU. The yield matters when the process has fewer CPUs than threads at
 * that moment (other processes, a woken worker placed on the caller's CPU): a spinner that does
 * not yield holds the CPU for a whole time slice while the thread it waits for sits runnable on
 * the same CPU. With nothing else runnable, sched_yield returns at once. */
#define SPIN_CHECK 63u
static int spin_tick(int64_t t0, long budget_ns)
{
    sched_yield();
    return now_ns() - t0 > budget_ns;
}

/* Takes tasks from the shared counter until none are left. */
static void drain(peqa_pool *p, peqa_task_fn fn, void *arg, int64_t ntasks)
{
    tls_task_depth++;
    for (;;) {
        int64_t i = atomic_fetch_add_explicit(&p->next, 1, memory_order_relaxed);
        if (i >= ntasks) break;
        fn(arg, i);
    }
    tls_task_depth--;
}

/* Is there an open job this worker has not yet looked at? */
static int open_job(uint64_t s, uint64_t seen_gen)
{
    return (s >> GEN_SHIFT) != seen_gen && !(s & STATE_CLOSED);
}

static void *worker_main(void *varg)
{
    pool_worker *me = varg;
    peqa_pool *p = me->pool;
    /* Generation 0 is the closed "no job yet" state the pool is created in. */
    uint64_t seen_gen = 0;
    for (;;) {
        uint64_t s = atomic_load_explicit(&p->state, memory_order_acquire);
        if (!open_job(s, seen_gen)) {
            /* Spin for a bounded time, then sleep until signalled. */
            if (p->spin_ns > 0) {
                int64_t t0 = now_ns();
                for (unsigned it = 1;; it++) {
                    cpu_relax();
                    s = atomic_load_explicit(&p->state, memory_order_acquire);
                    if (open_job(s, seen_gen) || atomic_load_explicit(&p->stop, memory_order_relaxed)) break;
                    if ((it & SPIN_CHECK) == 0 && spin_tick(t0, p->spin_ns)) break;
                }
            }
            if (!open_job(s, seen_gen)) {
                pthread_mutex_lock(&p->mu);
                atomic_store(&me->sleeping, 1);
                for (;;) {
                    s = atomic_load(&p->state);
                    if (open_job(s, seen_gen) || atomic_load(&p->stop)) break;
                    pthread_cond_wait(&me->cv, &p->mu);
                }
                atomic_store(&me->sleeping, 0);
                pthread_mutex_unlock(&p->mu);
                if (!open_job(s, seen_gen)) break; /* stop (a job is never open then) */
            }
        }
        /* Join: count ourselves in while the job is still open. A failed CAS reloads s; if a
         * newer job has opened meanwhile we join that one instead, which is just as good. */
        int joined = 0;
        while (open_job(s, seen_gen))
            if (atomic_compare_exchange_weak(&p->state, &s, s + 1)) {
                joined = 1;
                break;
            }
        seen_gen = s >> GEN_SHIFT;
        if (!joined) continue; /* closed before we got there: the caller did not wait for us */
        /* The caller waits for our check-out before it writes the job fields again. */
        drain(p, p->fn, p->arg, p->ntasks);
        /* Check out. caller_waiting is read under the mutex, never beside it: see the file
         * comment for why this hand-over does not rely on a store/load pairing. */
        atomic_fetch_add(&p->finished, 1);
        pthread_mutex_lock(&p->mu);
        if (atomic_load_explicit(&p->caller_waiting, memory_order_relaxed)) pthread_cond_signal(&p->done_cv);
        pthread_mutex_unlock(&p->mu);
    }
    return NULL;
}

/* Stops and joins the started workers and releases everything; used by free and by a failed
 * create (where only some workers or synchronisation objects may exist). */
static void pool_destroy(peqa_pool *p, int mu_ok, int done_ok, int run_ok)
{
    int nw = p->w ? p->workers : 0;
    if (mu_ok) {
        pthread_mutex_lock(&p->mu);
        atomic_store(&p->stop, 1);
        for (int i = 0; i < nw; i++)
            if (p->w[i].started) pthread_cond_signal(&p->w[i].cv);
        pthread_mutex_unlock(&p->mu);
    }
    for (int i = 0; i < nw; i++)
        if (p->w[i].started) pthread_join(p->w[i].tid, NULL);
    for (int i = 0; i < nw; i++)
        if (p->w[i].cv_ok) pthread_cond_destroy(&p->w[i].cv);
    if (run_ok) pthread_mutex_destroy(&p->run_mu);
    if (done_ok) pthread_cond_destroy(&p->done_cv);
    if (mu_ok) pthread_mutex_destroy(&p->mu);
    free(p->w);
    free(p);
}

peqa_status peqa__pool_create(int nthreads, peqa_pool **out)
{
    if (!out) return peqa__fail(PEQA_ERR_NULL, "thread pool: out is NULL");
    *out = NULL;
    if (nthreads < 1 || nthreads > POOL_MAX_THREADS)
        return peqa__fail(PEQA_ERR_ARG, "thread pool: %d threads: expected 1 to %d", nthreads,
                          POOL_MAX_THREADS);
    peqa_pool *p = calloc(1, sizeof *p);
    if (!p) return peqa__fail(PEQA_ERR_NOMEM, "thread pool: out of memory");
    p->threads = nthreads;
    p->workers = nthreads - 1;
    p->spin_ns = nthreads <= peqa__cpu_count() ? POOL_SPIN_NS : 0;
    atomic_init(&p->next, 0);
    atomic_init(&p->state, STATE_CLOSED); /* generation 0, closed */
    atomic_init(&p->finished, 0);
    atomic_init(&p->caller_waiting, 0);
    atomic_init(&p->stop, 0);
    if (p->workers == 0) { /* one thread: no worker, no synchronisation objects needed */
        *out = p;
        return PEQA_OK;
    }
    int mu_ok = 0, done_ok = 0, run_ok = 0, err = 0;
    const char *what = "calloc";
    p->w = calloc((size_t)p->workers, sizeof *p->w);
    if (!p->w) goto fail;
    what = "pthread_mutex_init";
    if ((err = pthread_mutex_init(&p->mu, NULL)) != 0) goto fail;
    mu_ok = 1;
    what = "pthread_cond_init";
    if ((err = pthread_cond_init(&p->done_cv, NULL)) != 0) goto fail;
    done_ok = 1;
    what = "pthread_mutex_init";
    if ((err = pthread_mutex_init(&p->run_mu, NULL)) != 0) goto fail;
    run_ok = 1;
    what = "pthread_cond_init";
    for (int i = 0; i < p->workers; i++) {
        if ((err = pthread_cond_init(&p->w[i].cv, NULL)) != 0) goto fail;
        p->w[i].cv_ok = 1;
        p->w[i].pool = p;
        atomic_init(&p->w[i].sleeping, 0);
    }
    /* Workers inherit the signal mask of the creating thread: block everything while creating
     * them, then restore the caller's mask. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    what = "pthread_create";
    for (int i = 0; i < p->workers && !err; i++) {
        err = pthread_create(&p->w[i].tid, NULL, worker_main, &p->w[i]);
        if (!err) p->w[i].started = 1;
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (err) goto fail;
    *out = p;
    return PEQA_OK;

fail:;
    int started = 0;
    if (p->w)
        for (int i = 0; i < p->workers; i++) started += p->w[i].started;
    pool_destroy(p, mu_ok, done_ok, run_ok);
    if (!err) return peqa__fail(PEQA_ERR_NOMEM, "thread pool: out of memory");
    /* pthread_create reports EAGAIN when the system cannot provide a thread or its stack; every
     * failure here is a lack of resources, reported as such with the error number. */
    return peqa__fail(PEQA_ERR_NOMEM, "thread pool: %s failed (errno %d%s) after starting %d of %d workers",
                      what, err, err == EAGAIN ? ", EAGAIN: out of threads or memory" : "", started,
                      nthreads - 1);
}

void peqa__pool_free(peqa_pool *p)
{
    if (!p) return;
    if (p->workers == 0) {
        free(p);
        return;
    }
    pool_destroy(p, 1, 1, 1);
}

int peqa__pool_threads(const peqa_pool *p) { return p ? p->threads : 0; }

/* Called by the caller between its tasks until it returns 1. Waking a sleeping thread costs the
 * caller a futex system call (measured 8-20 us on the 2-core VM, a few us on bare metal) and
 * the worker arrives tens of microseconds or more later, so waking for a job that is nearly done
 * would make 2 threads slower than 1. The remaining work is predicted from the caller's own pace
 * (elapsed / tasks done x tasks left); a sleeper is woken for each POOL_WAKE_WORTH_NS of it,
 * never more than the tasks the caller cannot take itself (left - 1). A large job called after
 * an idle pause thus gets its helpers after the caller's first task; back-to-back calls find
 * the workers spinning and never come here with a sleeper. Returns 1 when no further check is
 * needed. */
static int maybe_wake(peqa_pool *p, int64_t ntasks, int64_t elapsed_ns, int64_t mine)
{
    int64_t left = ntasks - atomic_load_explicit(&p->next, memory_order_relaxed);
    if (left < 2) return left <= 0;
    int64_t predicted = elapsed_ns / mine * left;
    if (predicted < POOL_WAKE_WORTH_NS) return 0;
    int64_t k = predicted / POOL_WAKE_WORTH_NS;
    if (k > left - 1) k = left - 1;
    /* Taking and releasing the mutex first makes sure that a worker which saw the job closed or
     * absent and set `sleeping` is now inside pthread_cond_wait (it holds the mutex from that
     * check until it waits), so the signal below cannot be lost; signalling after the unlock
     * keeps the woken thread from blocking on the mutex we hold. A worker that takes the mutex
     * after us sees the open job: our store of `state` precedes our unlock. */
    pthread_mutex_lock(&p->mu);
    pthread_mutex_unlock(&p->mu);
    for (int i = 0; i < p->workers && k > 0; i++)
        if (atomic_load(&p->w[i].sleeping)) {
            pthread_cond_signal(&p->w[i].cv);
            k--;
        }
    return 1;
}

static void run_inline(int64_t ntasks, peqa_task_fn fn, void *arg)
{
    tls_task_depth++;
    for (int64_t i = 0; i < ntasks; i++) fn(arg, i);
    tls_task_depth--;
}

void peqa__pool_run(peqa_pool *p, int64_t ntasks, peqa_task_fn fn, void *arg)
{
    if (ntasks <= 0) return;
    if (!p || p->workers == 0 || ntasks == 1 || tls_task_depth > 0) {
        run_inline(ntasks, fn, arg);
        return;
    }
    if (pthread_mutex_trylock(&p->run_mu) != 0) { /* another application thread is using it */
        run_inline(ntasks, fn, arg);
        return;
    }
    /* Every worker that joined the previous job has checked out, so nobody reads these now. */
    p->fn = fn;
    p->arg = arg;
    p->ntasks = ntasks;
    atomic_store_explicit(&p->next, 0, memory_order_relaxed);
    atomic_store_explicit(&p->finished, 0, memory_order_relaxed);
    /* Open the job: a new generation, joined = 0. The seq_cst store also releases the fields. */
    uint64_t gen = (atomic_load_explicit(&p->state, memory_order_relaxed) >> GEN_SHIFT) + 1;
    atomic_store(&p->state, gen << GEN_SHIFT);
    /* Spinning workers join by themselves. Sleeping ones are woken lazily, by maybe_wake, once
     * the caller's own pace shows that the remaining tasks are worth a wake-up. */
    int64_t t0 = now_ns(), mine = 0;
    int woken = 0;
    tls_task_depth++;
    for (;;) {
        int64_t i = atomic_fetch_add_explicit(&p->next, 1, memory_order_relaxed);
        if (i >= ntasks) break;
        fn(arg, i);
        mine++;
        if (!woken) woken = maybe_wake(p, ntasks, now_ns() - t0, mine);
    }
    tls_task_depth--;

    /* No task is left to hand out: close the job and learn how many workers joined it. */
    int joined = (int)(atomic_fetch_or(&p->state, STATE_CLOSED) & JOIN_MASK);
    if (atomic_load_explicit(&p->finished, memory_order_acquire) != joined && p->spin_ns > 0) {
        /* They usually finish their last task within microseconds of ours. */
        int64_t w0 = now_ns();
        for (unsigned it = 1; atomic_load_explicit(&p->finished, memory_order_acquire) != joined; it++) {
            cpu_relax();
            if ((it & SPIN_CHECK) == 0 && spin_tick(w0, p->spin_ns)) break;
        }
    }
    if (atomic_load(&p->finished) != joined) {
        pthread_mutex_lock(&p->mu);
        atomic_store(&p->caller_waiting, 1);
        while (atomic_load(&p->finished) != joined) pthread_cond_wait(&p->done_cv, &p->mu);
        atomic_store(&p->caller_waiting, 0);
        pthread_mutex_unlock(&p->mu);
    }
    pthread_mutex_unlock(&p->run_mu);
}
