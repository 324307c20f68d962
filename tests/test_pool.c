/* Thread pool tests (src/threadpool.c through the internal API, PEQA_THREADS through the public
 * one, and the parallel drivers of src/linear.c on shapes large enough to be split).
 *
 * A deadlock in the pool would hang the runner instead of failing it, so every test runs under
 * a watchdog thread: if a test does not finish within its budget the watchdog prints a FAIL line
 * and the closing count line and ends the process with status 1. */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>
#include "../src/internal.h"
#include "case.h"
#include "compare.h"
#include "test.h"

/* Sanitizer builds reserve huge address ranges (shadow memory), so an address-space limit
 * cannot be used to provoke a thread-creation failure there. */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define T_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer) || __has_feature(memory_sanitizer)
#define T_SANITIZED 1
#endif
#endif
#ifndef T_SANITIZED
#define T_SANITIZED 0
#endif

/* ---- watchdog ---- */

static struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int armed, quit;
    long budget_s;
    char name[128];
    trun *r;
    pthread_t tid;
} wd = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};

static void *watchdog_main(void *unused)
{
    (void)unused;
    pthread_mutex_lock(&wd.mu);
    while (!wd.quit) {
        if (!wd.armed) {
            pthread_cond_wait(&wd.cv, &wd.mu);
            continue;
        }
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += wd.budget_s;
        int armed_for = wd.armed;
        int rc = 0;
        while (!wd.quit && wd.armed == armed_for && rc != ETIMEDOUT)
            rc = pthread_cond_timedwait(&wd.cv, &wd.mu, &until);
        if (rc == ETIMEDOUT && wd.armed == armed_for && !wd.quit) {
            /* The test thread is stuck (it cannot update the counts any more, so reading them
             * here does not race with a running writer in practice). */
            printf("FAIL  %-48s %-7s hung: not finished after %ld s (deadlock or lost wake-up)\n",
                   wd.name, "-", wd.budget_s);
            printf("%d passed, %d failed, %d skipped\n", wd.r->pass, wd.r->fail + 1, wd.r->skip);
            fflush(stdout);
            _exit(1);
        }
    }
    pthread_mutex_unlock(&wd.mu);
    return NULL;
}

/* Arms the watchdog for the next test (each call starts a new budget). */
static void wd_arm(const char *name, long budget_s)
{
    pthread_mutex_lock(&wd.mu);
    snprintf(wd.name, sizeof wd.name, "%s", name);
    wd.budget_s = budget_s;
    wd.armed++;
    pthread_cond_signal(&wd.cv);
    pthread_mutex_unlock(&wd.mu);
}

/* ---- helpers ---- */

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Threads of this process from /proc/self/status; -1 when unavailable. */
static int process_threads(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    if (!f) return -1;
    char line[256];
    int n = -1;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "Threads: %d", &n) == 1) break;
    fclose(f);
    return n;
}

/* Waits (up to 2 s) for the thread count to drop to `want`: a joined thread leaves the kernel's
 * count a moment after pthread_join returns. Returns the last count seen. */
static int settle_threads(int want)
{
    int n = process_threads();
    for (int i = 0; i < 200 && n > want; i++) {
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
        n = process_threads();
    }
    return n;
}

/* ---- exactly once ---- */

typedef struct {
    atomic_int *count;
    int64_t ntasks;
    atomic_int bad; /* an index outside [0, ntasks) was passed */
} once_job;

static void once_task(void *arg, int64_t i)
{
    once_job *j = arg;
    if (i < 0 || i >= j->ntasks) atomic_store(&j->bad, 1);
    else atomic_fetch_add_explicit(&j->count[i], 1, memory_order_relaxed);
}

/* Runs ntasks on p and checks every index ran once. Returns 1 if fine, else writes msg. */
static int run_once_check(peqa_pool *p, int64_t ntasks, char *msg, size_t len)
{
    once_job j = {.ntasks = ntasks};
    atomic_init(&j.bad, 0);
    j.count = malloc((size_t)(ntasks > 0 ? ntasks : 1) * sizeof *j.count);
    if (!j.count) return snprintf(msg, len, "out of memory"), 0;
    for (int64_t i = 0; i < ntasks; i++) atomic_init(&j.count[i], 0);
    peqa__pool_run(p, ntasks, once_task, &j);
    int ok = !atomic_load(&j.bad);
    if (!ok) snprintf(msg, len, "ntasks %lld: a task index outside [0, ntasks) was run", (long long)ntasks);
    for (int64_t i = 0; ok && i < ntasks; i++) {
        int c = atomic_load_explicit(&j.count[i], memory_order_relaxed);
        if (c != 1) {
            ok = 0;
            snprintf(msg, len, "ntasks %lld: task %lld ran %d times", (long long)ntasks, (long long)i, c);
        }
    }
    free(j.count);
    return ok;
}

static void test_exactly_once(trun *r, int threads)
{
    char name[96], msg[256] = "";
    snprintf(name, sizeof name, "pool/exactly_once/t%d", threads);
    wd_arm(name, 120);
    peqa_pool *p = NULL;
    peqa_status st = peqa__pool_create(threads, &p);
    if (st) {
        t_result(r, 0, name, "-", "peqa__pool_create(%d): %s", threads, peqa_last_error());
        return;
    }
    /* The first job right after creation: workers may not have started yet and must still take
     * part (a worker that starts late must not mistake the first job for an old one). */
    const int64_t list[] = {threads + 3, 0, 1, 2, threads - 1, threads, threads + 1, 2 * threads + 1,
                            100, 1000, 4999};
    int ok = peqa__pool_threads(p) == threads, checked = 0;
    if (!ok) snprintf(msg, sizeof msg, "peqa__pool_threads = %d", peqa__pool_threads(p));
    for (int rep = 0; rep < 3 && ok; rep++)
        for (size_t i = 0; i < sizeof list / sizeof list[0] && ok; i++, checked++)
            ok = run_once_check(p, list[i], msg, sizeof msg);
    peqa__pool_free(p);
    if (ok) t_result(r, 1, name, "-", "%d runs (ntasks 0 .. 4999), each index exactly once", checked);
    else t_result(r, 0, name, "-", "%s", msg);
}

/* ---- every thread takes part ---- */

typedef struct {
    int call;                /* call number, to count each worker once per call */
    int workers;             /* threads - 1 */
    pthread_t caller;
    int caller_started;      /* only the caller touches it */
    atomic_int workers_in;   /* distinct workers that entered a task in this call */
    atomic_int timed_out;
} meet_job;

static _Thread_local int tl_meet_call = -1;

/* The caller's first task does 150 us of work and never waits: the pool wakes sleeping workers
 * only from the caller's pace between its tasks. Every other task waits (20 s at most) until
 * every worker has entered a task of this call, so a call completes only when all threads took
 * part, and the tasks cannot run out before that. */
static void meet_task(void *arg, int64_t i)
{
    (void)i;
    meet_job *j = arg;
    if (pthread_equal(pthread_self(), j->caller)) {
        if (!j->caller_started) {
            j->caller_started = 1;
            double t0 = now_s();
            while (now_s() - t0 < 150e-6) {
            }
            return;
        }
    } else if (tl_meet_call != j->call) {
        tl_meet_call = j->call;
        atomic_fetch_add(&j->workers_in, 1);
    }
    double t0 = now_s();
    while (atomic_load(&j->workers_in) < j->workers) {
        if (now_s() - t0 > 20.0) {
            atomic_store(&j->timed_out, 1);
            return;
        }
        sched_yield();
    }
}

/* reps calls in which every worker must take part: this also stresses the open / wake / join /
 * close / check-out cycle with guaranteed participation. */
static void test_all_take_part(trun *r, int threads, int reps)
{
    static int call_id;
    char name[96];
    snprintf(name, sizeof name, "pool/all_threads_take_part/t%d", threads);
    wd_arm(name, 240);
    peqa_pool *p = NULL;
    if (peqa__pool_create(threads, &p)) {
        t_result(r, 0, name, "-", "peqa__pool_create: %s", peqa_last_error());
        return;
    }
    int ok = 1, rep = 0, seen = 0;
    for (; rep < reps && ok; rep++) {
        meet_job j = {.call = call_id++, .workers = threads - 1, .caller = pthread_self()};
        atomic_init(&j.workers_in, 0);
        atomic_init(&j.timed_out, 0);
        peqa__pool_run(p, 2 * threads, meet_task, &j);
        seen = atomic_load(&j.workers_in);
        ok = !atomic_load(&j.timed_out) && seen == threads - 1;
    }
    peqa__pool_free(p);
    if (ok) t_result(r, 1, name, "-", "%d calls, every worker took part in each", reps);
    else t_result(r, 0, name, "-", "call %d: a task waited 20 s for all workers (%d of %d had entered a task)",
                  rep - 1, seen, threads - 1);
}

/* ---- nested calls run inline ---- */

typedef struct {
    pthread_t self;
    int64_t expect; /* inline means: on this thread, in index order */
    int ok;
    int depth;
    peqa_pool *p, *other;
} nest_frame;

typedef struct {
    peqa_pool *p, *other;
    nest_frame frame[64];
    atomic_int bad;
} nest_job;

static void nest_leaf(void *arg, int64_t i)
{
    nest_frame *f = arg;
    if (!pthread_equal(f->self, pthread_self()) || i != f->expect) f->ok = 0;
    f->expect++;
}

/* A task of the inner level: itself calls run again (depth 2), which must also be inline. */
static void nest_mid(void *arg, int64_t i)
{
    nest_frame *f = arg;
    if (!pthread_equal(f->self, pthread_self()) || i != f->expect) f->ok = 0;
    f->expect++;
    nest_frame g = {.self = pthread_self(), .expect = 0, .ok = 1};
    peqa__pool_run(f->p, 5, nest_leaf, &g);
    if (!g.ok || g.expect != 5) f->ok = 0;
}

static void nest_outer(void *arg, int64_t i)
{
    nest_job *j = arg;
    nest_frame *f = &j->frame[i];
    f->self = pthread_self(), f->ok = 1, f->expect = 0, f->p = j->p;
    /* the same pool, 40 tasks, each nesting once more */
    peqa__pool_run(j->p, 40, nest_mid, f);
    int ok = f->ok && f->expect == 40;
    /* another pool from inside a task: inline as well */
    nest_frame g = {.self = pthread_self(), .expect = 0, .ok = 1};
    peqa__pool_run(j->other, 33, nest_leaf, &g);
    ok = ok && g.ok && g.expect == 33;
    if (!ok) atomic_store(&j->bad, 1);
}

static void test_nested(trun *r, int threads)
{
    char name[96];
    snprintf(name, sizeof name, "pool/nested_runs_inline/t%d", threads);
    wd_arm(name, 120);
    nest_job j;
    memset(&j, 0, sizeof j);
    atomic_init(&j.bad, 0);
    if (peqa__pool_create(threads, &j.p) || peqa__pool_create(2, &j.other)) {
        t_result(r, 0, name, "-", "peqa__pool_create: %s", peqa_last_error());
        peqa__pool_free(j.p);
        return;
    }
    int ok = 1;
    for (int rep = 0; rep < 5 && ok; rep++) {
        peqa__pool_run(j.p, 64, nest_outer, &j);
        ok = !atomic_load(&j.bad);
    }
    /* and the pool still works normally afterwards */
    char msg[256] = "";
    if (ok) ok = run_once_check(j.p, 500, msg, sizeof msg);
    else snprintf(msg, sizeof msg, "a nested call did not run on the calling thread in index order");
    peqa__pool_free(j.p);
    peqa__pool_free(j.other);
    t_result(r, ok, name, "-", ok ? "64 outer tasks x (40 x 5 nested + 33 on another pool): all inline, in order" :
             "%s", msg);
}

/* ---- stress: thousands of tiny parallel calls ---- */

typedef struct {
    atomic_int count[64];
    int64_t ntasks;
    pthread_t caller;
    atomic_int off_caller; /* tasks that ran on a worker */
    int spin;              /* busy-work per task, so that workers really join */
    unsigned sink[64];     /* keeps the busy-work (each task writes its own element) */
} tiny_job;

static void tiny_task(void *arg, int64_t i)
{
    tiny_job *j = arg;
    volatile unsigned x = 0;
    for (int k = 0; k < j->spin; k++) x += (unsigned)k;
    j->sink[i] = x;
    atomic_fetch_add_explicit(&j->count[i], 1, memory_order_relaxed);
    if (!pthread_equal(pthread_self(), j->caller)) atomic_fetch_add_explicit(&j->off_caller, 1, memory_order_relaxed);
}

static void test_stress(trun *r, int threads, int calls, int sleep_us, int spin)
{
    char name[96];
    snprintf(name, sizeof name, "pool/%s/t%d%s", sleep_us ? "sleep_wake_calls" : "tiny_calls", threads,
             spin ? "" : "/empty_tasks");
    wd_arm(name, 240);
    peqa_pool *p = NULL;
    if (peqa__pool_create(threads, &p)) {
        t_result(r, 0, name, "-", "peqa__pool_create: %s", peqa_last_error());
        return;
    }
    int ok = 1, maxn = 2 * threads + 3 < 64 ? 2 * threads + 3 : 64;
    long long off = 0, total = 0;
    char msg[160] = "";
    double t0 = now_s();
    for (int c = 0; c < calls && ok; c++) {
        tiny_job j = {.ntasks = 1 + c % maxn, .caller = pthread_self(), .spin = spin};
        for (int i = 0; i < 64; i++) atomic_init(&j.count[i], 0);
        atomic_init(&j.off_caller, 0);
        peqa__pool_run(p, j.ntasks, tiny_task, &j);
        for (int64_t i = 0; i < 64 && ok; i++) {
            int got = atomic_load(&j.count[i]), want = i < j.ntasks;
            if (got != want)
                ok = 0, snprintf(msg, sizeof msg, "call %d (%lld tasks): task %lld ran %d times", c,
                                 (long long)j.ntasks, (long long)i, got);
        }
        off += atomic_load(&j.off_caller), total += j.ntasks;
        if (sleep_us) { /* longer than the pool's spin: the workers go to sleep between calls */
            struct timespec ts = {0, sleep_us * 1000L};
            nanosleep(&ts, NULL);
        }
    }
    double dt = now_s() - t0;
    peqa__pool_free(p);
    if (ok)
        t_result(r, 1, name, "-", "%d calls of 1..%d tasks, each index exactly once; %.0f%% of tasks ran on "
                 "workers (%.1f us per call)", calls, maxn, 100.0 * (double)off / (double)total, 1e6 * dt / calls);
    else
        t_result(r, 0, name, "-", "%s", msg);
}

/* ---- several application threads share one pool ---- */

typedef struct {
    peqa_pool *p;
    int calls;
    int ok;
} share_arg;

static void *share_main(void *varg)
{
    share_arg *a = varg;
    char msg[128];
    a->ok = 1;
    for (int c = 0; c < a->calls && a->ok; c++) a->ok = run_once_check(a->p, 1 + c % 37, msg, sizeof msg);
    return NULL;
}

static void test_shared(trun *r, int calls)
{
    const char *name = "pool/concurrent_callers/t3";
    wd_arm(name, 240);
    peqa_pool *p = NULL;
    if (peqa__pool_create(3, &p)) {
        t_result(r, 0, name, "-", "peqa__pool_create: %s", peqa_last_error());
        return;
    }
    share_arg a[3];
    pthread_t tid[3];
    int started = 0, ok = 1;
    for (int i = 0; i < 3; i++) {
        a[i] = (share_arg){.p = p, .calls = calls};
        if (pthread_create(&tid[i], NULL, share_main, &a[i]) != 0) break;
        started++;
    }
    for (int i = 0; i < started; i++) {
        pthread_join(tid[i], NULL);
        ok = ok && a[i].ok;
    }
    peqa__pool_free(p);
    if (started < 3) t_skip(r, name, "-", "could not start the application threads");
    else t_result(r, ok, name, "-", ok ? "3 threads x %d calls on one pool: every index exactly once" :
                  "a task index did not run exactly once (%d calls per thread)", calls);
}

/* ---- create and free in a loop; nothing left behind ---- */

static void test_create_free_loop(trun *r, int loops)
{
    const char *name = "pool/create_free_loop";
    wd_arm(name, 240);
    static const int sizes[] = {1, 2, 3, 7, 16};
    int base = process_threads(), ok = 1, peak = 0;
    char msg[256] = "";
    for (int i = 0; i < loops && ok; i++) {
        int t = sizes[i % 5];
        peqa_pool *p = NULL;
        int pre = i % 5 == 4 ? process_threads() : 0;
        if (peqa__pool_create(t, &p)) {
            ok = 0;
            snprintf(msg, sizeof msg, "iteration %d: peqa__pool_create(%d): %s", i, t, peqa_last_error());
            break;
        }
        if (i % 5 == 4) { /* every fifth pool is freed without ever having run a job */
            /* workers this pool added, counted against the moment before it was created (an
             * emulator such as qemu-user has helper threads of its own that come and go) */
            int n = process_threads() - pre;
            if (n > peak) peak = n;
        } else {
            ok = run_once_check(p, 3 * t + 1, msg, sizeof msg);
        }
        peqa__pool_free(p);
    }
    int after = base >= 0 ? settle_threads(base) : -1;
    if (ok && base >= 0 && after > base)
        ok = 0, snprintf(msg, sizeof msg, "%d threads before, %d after %d pools: workers not joined", base,
                         after, loops);
    if (ok && base >= 0 && peak != 15)
        ok = 0, snprintf(msg, sizeof msg, "a 16-thread pool added %d threads, expected 15 workers", peak);
    if (ok) t_result(r, 1, name, "-", "%d pools of 1/2/3/7/16 threads; process threads back to %d", loops, base);
    else t_result(r, 0, name, "-", "%s", msg);
}

/* ---- argument errors and creation failure ---- */

static void test_create_args(trun *r)
{
    wd_arm("pool/create_args", 60);
    peqa_pool *one = NULL;
    peqa_status st = peqa__pool_create(1, &one);
    int ok = st == PEQA_OK && one && peqa__pool_threads(one) == 1;
    char msg[128] = "";
    if (ok) ok = run_once_check(one, 77, msg, sizeof msg);
    t_result(r, ok, "pool/create_args/threads_1", "-", "status %s, %d threads; no workers, tasks run on the "
             "caller %s", peqa_status_string(st), one ? peqa__pool_threads(one) : 0, msg);
    static const int bad[] = {0, -1, -1000, 4097, 1 << 30};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0] && one; i++) {
        char name[96];
        snprintf(name, sizeof name, "pool/create_args/threads_%d", bad[i]);
        peqa_pool *p = one; /* must be reset to NULL */
        st = peqa__pool_create(bad[i], &p);
        ok = st == PEQA_ERR_ARG && p == NULL;
        t_result(r, ok, name, "-", "status %s%s", peqa_status_string(st), p ? ", *out not cleared" : "");
        if (st == PEQA_OK) peqa__pool_free(p);
    }
    peqa__pool_free(one);
    peqa__pool_free(NULL);
    t_result(r, 1, "pool/free_null", "-", "peqa__pool_free(NULL) returns");
}

/* A thread cannot be created when its stack does not fit under the address-space limit: lower
 * the limit just above the current use so that creation fails part-way, then check the status
 * and that the workers already started were joined. */
static void test_create_failure(trun *r)
{
    const char *name = "pool/create_failure_cleans_up";
    wd_arm(name, 120);
    const char *pre = getenv("LD_PRELOAD");
    if (T_SANITIZED || (pre && strstr(pre, "valgrind"))) {
        t_skip(r, name, "-", "address-space limits do not work under sanitizers or valgrind");
        return;
    }
    struct rlimit old;
    long page = sysconf(_SC_PAGESIZE);
    FILE *f = fopen("/proc/self/statm", "r");
    unsigned long vm_pages = 0;
    int have = f && fscanf(f, "%lu", &vm_pages) == 1;
    if (f) fclose(f);
    int base = process_threads();
    if (!have || page <= 0 || base < 0 || getrlimit(RLIMIT_AS, &old) != 0) {
        t_skip(r, name, "-", "needs /proc/self/statm, /proc/self/status and RLIMIT_AS");
        return;
    }
    /* Try a few margins: the exact per-thread cost (stack, guard, TLS) is the C library's. */
    int seen_fail = 0, seen_partial = 0, ok = 1;
    char msg[320] = "", last[200] = "";
    static const long margins_mb[] = {0, 3, 9, 20, 40};
    for (size_t i = 0; i < sizeof margins_mb / sizeof margins_mb[0] && ok; i++) {
        struct rlimit lim = old;
        lim.rlim_cur = (rlim_t)vm_pages * (rlim_t)page + (rlim_t)margins_mb[i] * 1024 * 1024;
        if (old.rlim_cur != RLIM_INFINITY && lim.rlim_cur > old.rlim_cur) lim.rlim_cur = old.rlim_cur;
        peqa_pool *p = NULL;
        peqa_status st = PEQA_OK;
        if (setrlimit(RLIMIT_AS, &lim) == 0) {
            st = peqa__pool_create(16, &p);
            setrlimit(RLIMIT_AS, &old);
        } else {
            continue;
        }
        if (st == PEQA_OK) {
            ok = run_once_check(p, 100, msg, sizeof msg);
            peqa__pool_free(p);
        } else if (st == PEQA_ERR_NOMEM && p == NULL) {
            seen_fail++;
            snprintf(last, sizeof last, "%s", peqa_last_error());
            if (strstr(last, "after starting") && !strstr(last, "after starting 0 "))
                seen_partial++;
        } else {
            ok = 0;
            snprintf(msg, sizeof msg, "margin %ld MB: status %s (%s), expected ok or out of memory",
                     margins_mb[i], peqa_status_string(st), peqa_last_error());
        }
        int now = settle_threads(base);
        if (ok && now != base) {
            ok = 0;
            snprintf(msg, sizeof msg, "margin %ld MB: %d threads remain, %d before: workers of a failed "
                     "creation not joined (%s)", margins_mb[i], now, base, last);
        }
    }
    if (ok && !seen_fail) {
        t_skip(r, name, "-", "could not provoke a creation failure with RLIMIT_AS");
        return;
    }
    /* after all that the pool works normally */
    peqa_pool *p = NULL;
    if (ok && peqa__pool_create(16, &p) == PEQA_OK) {
        ok = run_once_check(p, 1000, msg, sizeof msg);
        peqa__pool_free(p);
    }
    if (ok)
        t_result(r, 1, name, "-", "%d failed creations (%d part-way, e.g. \"%s\"), all workers joined",
                 seen_fail, seen_partial, last);
    else
        t_result(r, 0, name, "-", "%s", msg);
}

/* ---- PEQA_THREADS ---- */

static void test_env_threads(trun *r)
{
    wd_arm("pool/env_threads", 60);
    const char *prev = getenv("PEQA_THREADS");
    char *saved = prev ? strdup(prev) : NULL;
    static const char *const bad[] = {"0", "-1", "abc", "3x", "99999999999999999999", "1025", "2.5", "0x4", "+"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char name[96];
        snprintf(name, sizeof name, "pool/env_threads/invalid_'%s'", bad[i]);
        setenv("PEQA_THREADS", bad[i], 1);
        peqa_ctx *c = NULL;
        peqa_status st = peqa_ctx_create(NULL, &c);
        int ok = st == PEQA_ERR_ARG && c == NULL && strstr(peqa_last_error(), "PEQA_THREADS") != NULL;
        t_result(r, ok, name, "-", "status %s: %s", peqa_status_string(st), st ? peqa_last_error() : "");
        peqa_ctx_free(c);
    }
    /* valid values, and an explicit thread count overrides the environment */
    struct { const char *env; int opt, want; } good[] = {{"3", 0, 3}, {"1", 0, 1}, {"16", 0, 16}, {"abc", 2, 2}};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        char name[96];
        snprintf(name, sizeof name, "pool/env_threads/'%s'_opt%d", good[i].env, good[i].opt);
        setenv("PEQA_THREADS", good[i].env, 1);
        peqa_ctx *c = NULL;
        peqa_ctx_options o = {.threads = good[i].opt};
        peqa_status st = peqa_ctx_create(&o, &c);
        int ok = st == PEQA_OK && peqa_ctx_threads(c) == good[i].want;
        t_result(r, ok, name, "-", "status %s, %d threads (expected %d)", peqa_status_string(st),
                 c ? peqa_ctx_threads(c) : 0, good[i].want);
        peqa_ctx_free(c);
    }
    /* unset and empty: the CPUs this process may run on */
    for (int empty = 0; empty < 2; empty++) {
        if (empty) setenv("PEQA_THREADS", "", 1);
        else unsetenv("PEQA_THREADS");
        peqa_ctx *c = NULL;
        peqa_status st = peqa_ctx_create(NULL, &c);
        int want = peqa__cpu_count();
        int ok = st == PEQA_OK && peqa_ctx_threads(c) == want && want >= 1;
        t_result(r, ok, empty ? "pool/env_threads/empty_is_default" : "pool/env_threads/unset_is_default", "-",
                 "status %s, %d threads (CPUs available: %d)", peqa_status_string(st), c ? peqa_ctx_threads(c) : 0,
                 want);
        peqa_ctx_free(c);
    }
    if (saved) setenv("PEQA_THREADS", saved, 1);
    else unsetenv("PEQA_THREADS");
    free(saved);
}

/* ---- the drivers on shapes that are split: bit-identical for every thread count ---- */

static void test_drivers(trun *r)
{
    /* Each shape does >= 2^20 multiply-adds per operation, so every driver splits it. They cover
     * GEMV (M = 1, many tiles), GEMM with many tiles, GEMM with fewer tiles than tasks (rows
     * split too), the input gradient over few k-blocks, and tails in M, N and K. */
    static const int64_t shapes[][5] = {
        /* bits, m, n, k, g */
        {4, 1, 1040, 1100, 128}, {3, 37, 200, 300, 0}, {2, 203, 20, 300, 64}, {8, 9, 700, 180, 32},
    };
    for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++) {
        int bits = (int)shapes[si][0];
        int64_t m = shapes[si][1], n = shapes[si][2], k = shapes[si][3], g = shapes[si][4];
        char name[128];
        snprintf(name, sizeof name, "pool/drivers_bit_identical/b%d/m%lld_n%lld_k%lld_g%lld", bits, (long long)m,
                 (long long)n, (long long)k, (long long)g);
        wd_arm(name, 300);
        tcase c;
        uint64_t seed = 77000 + si;
        if (!tcase_alloc(&c, bits, g, m, n, k) || !tcase_fill(&c, "offgrid_z", seed, NULL)) {
            t_result(r, 0, name, "-", "setup failed");
            continue;
        }
        for (int ii = 0; ii < t_nisas; ii++) {
            peqa_ctx *c1 = t_ctx(t_isas[ii], 1);
            if (!c1) {
                t_skip(r, name, t_isas[ii], "ISA not available on this CPU");
                continue;
            }
            tout ref;
            if (case_run(c1, &c, &ref)) {
                t_result(r, 0, name, t_isas[ii], "1 thread: %s", peqa_last_error());
                peqa_ctx_free(c1);
                continue;
            }
            peqa_ctx_free(c1);
            int ok = 1, bad_t = 0;
            char msg[512] = "";
            for (int ti = 0; ti < t_nthreads && ok; ti++) {
                if (t_threads[ti] == 1) continue;
                peqa_ctx *ct = t_ctx(t_isas[ii], t_threads[ti]);
                tout o;
                if (!ct || case_run(ct, &c, &o)) {
                    ok = 0, bad_t = t_threads[ti];
                    snprintf(msg, sizeof msg, "run failed: %s", peqa_last_error());
                } else {
                    if (!compare_outputs(&c, &ref, &o, msg, sizeof msg)) ok = 0, bad_t = t_threads[ti];
                    tout_free(&o);
                }
                peqa_ctx_free(ct);
            }
            tout_free(&ref);
            if (ok)
                t_result(r, 1, name, t_isas[ii], "threads %s == 1 thread, every output (memcmp)", t_threads_text);
            else
                t_result(r, 0, name, t_isas[ii], "%d threads differ from 1: %s (seed %llu; rerun: peqa_tests "
                         "--filter pool)", bad_t, msg, (unsigned long long)seed);
        }
        tcase_free(&c);
    }
}

void test_pool(trun *r)
{
    wd.r = r;
    int have_wd = pthread_create(&wd.tid, NULL, watchdog_main, NULL) == 0;
    if (!have_wd) t_skip(r, "pool/watchdog", "-", "could not start the watchdog thread");

    test_create_args(r);
    int over = 4 * peqa__cpu_count() + 1; /* more threads than cores */
    const int sizes[] = {1, 2, 3, 7, 16, over};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) test_exactly_once(r, sizes[i]);
    for (size_t i = 1; i < sizeof sizes / sizeof sizes[0]; i++)
        test_all_take_part(r, sizes[i], sizes[i] == 2 ? (r->quick ? 300 : 2000) : sizes[i] == 3 ? 200 : 10);
    test_nested(r, 1);
    test_nested(r, 3);
    test_nested(r, 16);
    int calls = r->quick ? 2000 : 10000;
    test_stress(r, 2, calls, 0, 0);
    test_stress(r, 2, calls, 0, 300);
    test_stress(r, 3, calls, 0, 300);
    test_stress(r, 16, calls / 5, 0, 300);
    test_stress(r, 2, 200, 1000, 20000);
    test_stress(r, 7, 100, 1000, 20000);
    test_shared(r, r->quick ? 500 : 2000);
    test_create_free_loop(r, r->quick ? 100 : 300);
    test_create_failure(r);
    test_env_threads(r);
    test_drivers(r);

    if (have_wd) {
        pthread_mutex_lock(&wd.mu);
        wd.quit = 1;
        pthread_cond_signal(&wd.cv);
        pthread_mutex_unlock(&wd.mu);
        pthread_join(wd.tid, NULL);
    }
}
