/* Running one call's loop over its pixels on the calling thread and, for large inputs, a small
 * process-wide pool of helper threads, so that the worst case is one thread.
 *
 * Why not a fork-join region (OpenMP, the previous scheme): a static split makes the caller wait at
 * the barrier for a thread the operating system has not scheduled yet, a whole scheduler tick or
 * more on a busy machine, where one thread would have been done long before.  Here:
 *
 * - the input is cut into chunks (a multiple of DR_CHUNK pixels); the caller and the helpers claim
 *   them one at a time from a word in a pool-owned job slot (compare-and-swap), so every chunk is
 *   computed by exactly one thread, with the same loop on the same pixels: the bytes do not depend
 *   on who runs it or how many threads there are;
 * - the caller starts on chunk 0 at once and keeps claiming; at the end it waits only for chunks a
 *   helper has actually claimed, i.e. work that is running (help-while-waiting).  A helper that
 *   wakes late finds nothing to claim: the cost of a late helper is at most the one chunk it holds;
 * - helpers park on a futex (a condition variable off Linux) after a short spin, so idle helpers
 *   cost nothing; a caller only makes a system call to wake one when one is asleep;
 * - a call takes no more helpers than its thread count allows, and the calls running at once take
 *   no more than the thread budget (the usable cores, set by the engine) together: calls from
 *   several Python threads share the one pool instead of multiplying threads;
 * - fork: the child of a process with helpers has none (threads are not copied); an atfork handler
 *   resets the pool, and the child's first threaded call starts new helpers.
 *
 * The lifetime rule that makes this safe: everything a helper touches before it owns a chunk lives
 * in the pool (never on the caller's stack), and the caller returns only when every claimed chunk
 * is done, so the dr_call a chunk's owner reads is alive for as long as it is read.  Builds without
 * pthreads and the GNU atomics (other compilers, DR_NO_THREADS) run every loop on the calling thread.
 */
#ifndef DICOMRENDER_THREADS_H
#define DICOMRENDER_THREADS_H

#include "scalar.h"

#if !defined(DR_NO_THREADS) && (defined(__GNUC__) || defined(__clang__)) && \
    (defined(__linux__) || defined(__APPLE__) || defined(__FreeBSD__) || defined(__NetBSD__) || defined(__OpenBSD__))
#define DR_HAVE_POOL 1
#else
#define DR_HAVE_POOL 0
#endif

static int dr_have_threads(void) { return DR_HAVE_POOL; }

/* Threads a loop over n pixels may use when nthreads are asked for and `budget` threads may run
 * kernel loops at once: at least DR_CHUNK * DR_MIN_CHUNKS_PER_THREAD pixels per thread. */
static int dr_threads_allowed(size_t n, int nthreads, int budget)
{
    size_t most = n / ((size_t)DR_CHUNK * DR_MIN_CHUNKS_PER_THREAD);
    if (!DR_HAVE_POOL) return 1;
    if (nthreads > budget) nthreads = budget;
    if (nthreads < 1) nthreads = 1;
    if ((size_t)nthreads > most) nthreads = most < 1 ? 1 : (int)most;
    return nthreads;
}

#if DR_HAVE_POOL
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <time.h>
#if defined(__linux__) && !defined(DR_NO_FUTEX) /* DR_NO_FUTEX: the condition-variable path, for tests */
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>
#define DR_FUTEX 1
#else
#define DR_FUTEX 0
#endif

#define DR_POOL_SLOTS 16          /* calls that can have helpers at once (more run alone) */
#define DR_POOL_MAX_HELPERS 255   /* helper threads at most, whatever the budget */
#define DR_HELPER_SPIN_NS 30000   /* a helper out of work watches for a new job this long before parking */
#define DR_CALLER_SPIN_NS 20000   /* the caller waits this long for a claimed chunk before sleeping */

/* The claim word of a job: | generation 16 | seats 8 | next chunk 20 | chunk count 20 |.  Whoever
 * changes `next` with a compare-and-swap owns chunk `next`.  `seats` is how many helpers may still
 * join; the generation tells a helper whether the job it had a seat in is still the slot's job
 * (when it wraps, a stale helper may at worst take one seat too many: the chunks stay exact,
 * because the word describes the slot's current job and a chunk is always claimed from it). */
#define DR_COUNT_BITS 20
#define DR_MAX_CHUNKS (((uint64_t)1 << DR_COUNT_BITS) - 1)
#define DR_NEXT_SHIFT DR_COUNT_BITS
#define DR_SEAT_SHIFT (2 * DR_COUNT_BITS)
#define DR_GEN_SHIFT (2 * DR_COUNT_BITS + 8)
#define DR_CLAIM_COUNT(w) ((uint32_t)((w) & DR_MAX_CHUNKS))
#define DR_CLAIM_NEXT(w) ((uint32_t)(((w) >> DR_NEXT_SHIFT) & DR_MAX_CHUNKS))
#define DR_CLAIM_SEATS(w) ((uint32_t)(((w) >> DR_SEAT_SHIFT) & 0xFF))
#define DR_CLAIM_GEN(w) ((uint32_t)((w) >> DR_GEN_SHIFT))

typedef struct {
    uint64_t claim;          /* the claim word (atomic) */
    uint32_t helper_done;    /* chunks helpers finished (atomic; the caller sleeps on it) */
    uint32_t caller_waiting; /* the caller sleeps on helper_done (atomic) */
    int owned;               /* a caller holds the slot (atomic) */
    /* the job, written by the caller before it publishes the claim word, read by a helper only
     * after it claimed a chunk (so while the caller cannot return) */
    dr_loop *loop;
    dr_call call;
    size_t n, chunk;
} __attribute__((aligned(64))) dr_job;

static struct {
    uint32_t epoch;       /* bumped when a job is posted; idle helpers sleep on it (atomic) */
    int sleepers;         /* helpers asleep or about to be (atomic) */
    int helpers;          /* helper threads started in this process (under lock) */
    int budget;           /* threads that may run kernel loops at once: the caller's usable cores */
    int active;           /* threaded calls running, their helpers included (atomic) */
    uint64_t helped;      /* chunks helpers ran, for the tests (atomic) */
    int paused;           /* tests: helpers take no seat, as if never scheduled (atomic) */
    pthread_mutex_t lock; /* starting helpers */
    dr_job jobs[DR_POOL_SLOTS];
} dr_pool = {.budget = 1, .lock = PTHREAD_MUTEX_INITIALIZER};

#define DR_LOAD(p) __atomic_load_n(p, __ATOMIC_SEQ_CST)
#define DR_STORE(p, v) __atomic_store_n(p, v, __ATOMIC_SEQ_CST)
#define DR_ADD(p, v) __atomic_add_fetch(p, v, __ATOMIC_SEQ_CST)
#define DR_CAS(p, expected, desired) \
    __atomic_compare_exchange_n(p, expected, desired, 0, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST)

static inline void dr_cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

static inline uint64_t dr_now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

/* ---- sleeping on a 32-bit word: a futex on Linux, one condition variable elsewhere ---- */
#if DR_FUTEX
static void dr_wait(uint32_t *word, uint32_t seen)
{
    syscall(SYS_futex, word, FUTEX_WAIT_PRIVATE, seen, NULL, NULL, 0);
}

static void dr_wake(uint32_t *word, int count) { syscall(SYS_futex, word, FUTEX_WAKE_PRIVATE, count, NULL, NULL, 0); }
#else
static pthread_mutex_t dr_sleep_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t dr_sleep_cond = PTHREAD_COND_INITIALIZER;

static void dr_wait(uint32_t *word, uint32_t seen)
{
    pthread_mutex_lock(&dr_sleep_lock);
    if (DR_LOAD(word) == seen) pthread_cond_wait(&dr_sleep_cond, &dr_sleep_lock); /* spurious wake-ups are fine */
    pthread_mutex_unlock(&dr_sleep_lock);
}

static void dr_wake(uint32_t *word, int count)
{
    (void)word;
    (void)count;
    pthread_mutex_lock(&dr_sleep_lock);
    pthread_cond_broadcast(&dr_sleep_cond);
    pthread_mutex_unlock(&dr_sleep_lock);
}
#endif

/* ---- the helpers ---------------------------------------------------------------------------- */

/* Takes a seat in job j and runs chunks until none is left; 0 when there was no seat or no chunk. */
static int dr_help(dr_job *j)
{
    if (DR_LOAD(&dr_pool.paused)) return 0;
    uint64_t w = DR_LOAD(&j->claim);
    for (;;) {
        if (DR_CLAIM_NEXT(w) >= DR_CLAIM_COUNT(w) || DR_CLAIM_SEATS(w) == 0) return 0;
        if (DR_CAS(&j->claim, &w, w - ((uint64_t)1 << DR_SEAT_SHIFT) + ((uint64_t)1 << DR_NEXT_SHIFT))) break;
    }
    /* chunk `next` of this job is ours: until it is done the caller cannot return, so its job is stable */
    const uint32_t gen = DR_CLAIM_GEN(w);
    uint32_t index = DR_CLAIM_NEXT(w);
    dr_loop *const loop = j->loop;
    const dr_call call = j->call;
    const size_t n = j->n, chunk = j->chunk;
    uint64_t ran = 0;
    for (;;) {
        size_t start = (size_t)index * chunk;
        loop(&call, start, n - start < chunk ? n - start : chunk);
        ran++;
        /* claim the next chunk before reporting this one done, so the job stays alive meanwhile */
        int more = 0;
        w = DR_LOAD(&j->claim);
        while (DR_CLAIM_GEN(w) == gen && DR_CLAIM_NEXT(w) < DR_CLAIM_COUNT(w)) {
            if (DR_CAS(&j->claim, &w, w + ((uint64_t)1 << DR_NEXT_SHIFT))) {
                more = 1;
                break;
            }
        }
        DR_ADD(&j->helper_done, 1); /* the caller's acquire of this publishes the chunk's bytes */
        if (DR_LOAD(&j->caller_waiting)) dr_wake(&j->helper_done, 1);
        if (!more) break;
        index = DR_CLAIM_NEXT(w);
    }
    DR_ADD(&dr_pool.helped, ran);
    return 1;
}

static int dr_help_any(void)
{
    int worked = 0;
    for (int s = 0; s < DR_POOL_SLOTS; s++) worked |= dr_help(&dr_pool.jobs[s]);
    return worked;
}

static void *dr_helper_main(void *arg)
{
    (void)arg;
    for (;;) {
        /* read before the scan: a job posted during or after it has bumped the epoch past `seen` */
        const uint32_t seen = DR_LOAD(&dr_pool.epoch);
        if (dr_help_any()) continue;
        /* out of work: watch for a new job a little while (back-to-back calls), then sleep */
        uint64_t until = dr_now_ns() + DR_HELPER_SPIN_NS;
        uint32_t now = seen;
        for (int i = 0; now == seen; i++) {
            dr_cpu_relax();
            now = DR_LOAD(&dr_pool.epoch);
            if ((i & 63) == 63 && dr_now_ns() > until) break;
        }
        if (now != seen) continue;
        DR_ADD(&dr_pool.sleepers, 1);
        /* a caller that saw no sleeper bumped the epoch before this load: then there is no wait */
        if (DR_LOAD(&dr_pool.epoch) == seen) dr_wait(&dr_pool.epoch, seen);
        DR_ADD(&dr_pool.sleepers, -1);
    }
    return NULL;
}

/* Starts helpers until there are `want` (the most one call asks for, within the budget); returns how
 * many there are. */
static int dr_start_helpers(int want)
{
    if (want > DR_POOL_MAX_HELPERS) want = DR_POOL_MAX_HELPERS;
    if (DR_LOAD(&dr_pool.helpers) >= want) return DR_LOAD(&dr_pool.helpers);
    pthread_mutex_lock(&dr_pool.lock);
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&attr, (size_t)1 << 20);
    /* helpers block every signal: they belong to the process's handlers' threads, not to us */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    while (dr_pool.helpers < want) {
        pthread_t thread;
        if (pthread_create(&thread, &attr, dr_helper_main, NULL) != 0) break;
        DR_STORE(&dr_pool.helpers, dr_pool.helpers + 1);
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    pthread_attr_destroy(&attr);
    int helpers = dr_pool.helpers;
    pthread_mutex_unlock(&dr_pool.lock);
    return helpers;
}

/* fork(): the child has the memory of the pool but none of its threads.  The prepare handler holds
 * the lock so that no helper is half-started; the child starts from an empty pool (jobs of other
 * threads of the parent, which do not exist in the child, are dropped with their slots). */
static void dr_before_fork(void) { pthread_mutex_lock(&dr_pool.lock); }
static void dr_after_fork_in_parent(void) { pthread_mutex_unlock(&dr_pool.lock); }
static void dr_after_fork_in_child(void)
{
    int budget = dr_pool.budget;
    memset(dr_pool.jobs, 0, sizeof dr_pool.jobs);
    dr_pool.epoch = 0;
    dr_pool.sleepers = 0;
    dr_pool.helpers = 0;
    dr_pool.active = 0;
    dr_pool.helped = 0;
    dr_pool.budget = budget;
    pthread_mutex_init(&dr_pool.lock, NULL);
#if !DR_FUTEX
    pthread_mutex_init(&dr_sleep_lock, NULL);
    pthread_cond_init(&dr_sleep_cond, NULL);
#endif
}

/* ---- the caller --------------------------------------------------------------------------- */

/* Runs `loop` over [0, n) with up to `helpers` helpers. */
static void dr_run_shared(dr_loop *loop, const dr_call *call, size_t n, int helpers)
{
    size_t chunk = DR_CHUNK;
    while ((n + chunk - 1) / chunk > DR_MAX_CHUNKS) chunk *= 2;
    const uint32_t count = (uint32_t)((n + chunk - 1) / chunk);
    if ((uint32_t)helpers > count - 1) helpers = (int)(count - 1);
    dr_job *j = NULL;
    for (int s = 0; s < DR_POOL_SLOTS && j == NULL; s++) {
        int free_slot = 0;
        if (!DR_LOAD(&dr_pool.jobs[s].owned) && DR_CAS(&dr_pool.jobs[s].owned, &free_slot, 1)) j = &dr_pool.jobs[s];
    }
    if (j == NULL || helpers < 1 || dr_start_helpers(helpers) < 1) {
        if (j != NULL) DR_STORE(&j->owned, 0);
        loop(call, 0, n);
        return;
    }
    j->loop = loop;
    j->call = *call;
    j->n = n;
    j->chunk = chunk;
    DR_STORE(&j->helper_done, 0);
    DR_STORE(&j->caller_waiting, 0);
    /* publish: the caller owns chunk 0 already */
    uint64_t gen = (DR_CLAIM_GEN(DR_LOAD(&j->claim)) + 1) & 0xFFFF;
    uint64_t w = gen << DR_GEN_SHIFT | (uint64_t)helpers << DR_SEAT_SHIFT | (uint64_t)1 << DR_NEXT_SHIFT | count;
    DR_STORE(&j->claim, w);
    DR_ADD(&dr_pool.epoch, 1);
    if (DR_LOAD(&dr_pool.sleepers) > 0) dr_wake(&dr_pool.epoch, helpers);

    uint32_t mine = 0, index = 0;
    for (;;) {
        size_t start = (size_t)index * chunk;
        loop(call, start, n - start < chunk ? n - start : chunk);
        mine++;
        w = DR_LOAD(&j->claim);
        int more = 0;
        while (DR_CLAIM_NEXT(w) < count) {
            if (DR_CAS(&j->claim, &w, w + ((uint64_t)1 << DR_NEXT_SHIFT))) {
                more = 1;
                break;
            }
        }
        if (!more) break;
        index = DR_CLAIM_NEXT(w);
    }
    /* every chunk is claimed: wait for the ones helpers hold (they are running) */
    const uint32_t theirs = count - mine;
    if (DR_LOAD(&j->helper_done) != theirs) {
        uint64_t until = dr_now_ns() + DR_CALLER_SPIN_NS;
        for (int i = 0; DR_LOAD(&j->helper_done) != theirs; i++) {
            dr_cpu_relax();
            if ((i & 63) == 63 && dr_now_ns() > until) break;
        }
        uint32_t done;
        while ((done = DR_LOAD(&j->helper_done)) != theirs) {
            DR_STORE(&j->caller_waiting, 1);
            if ((done = DR_LOAD(&j->helper_done)) != theirs) dr_wait(&j->helper_done, done);
        }
    }
    DR_STORE(&j->owned, 0);
}

/* How many threads the engine may keep busy in kernel loops at once (the usable cores). */
static void dr_set_budget(int budget)
{
    if (budget < 1) budget = 1;
    if (budget > DR_POOL_MAX_HELPERS + 1) budget = DR_POOL_MAX_HELPERS + 1;
    DR_STORE(&dr_pool.budget, budget);
}

static int dr_get_budget(void) { return DR_LOAD(&dr_pool.budget); }
static int dr_helpers_started(void) { return DR_LOAD(&dr_pool.helpers); }
static void dr_pause_helpers(int paused) { DR_STORE(&dr_pool.paused, paused); }
static unsigned long long dr_chunks_helped(void) { return (unsigned long long)DR_LOAD(&dr_pool.helped); }

#else /* no pool: every loop runs on the calling thread */
static void dr_set_budget(int budget) { (void)budget; }
static int dr_get_budget(void) { return 1; }
static int dr_helpers_started(void) { return 0; }
static void dr_pause_helpers(int paused) { (void)paused; }
static unsigned long long dr_chunks_helped(void) { return 0; }
#endif

/* Threads a loop over n pixels uses at most when nthreads are asked for. */
static int dr_threads_for(size_t n, int nthreads) { return dr_threads_allowed(n, nthreads, dr_get_budget()); }

/* Runs `loop` over the call's pixels [0, n): on the calling thread, with helpers when the input is
 * large, threads are asked for and the budget has room (other calls' threads count against it). */
static void dr_parallel(dr_loop *loop, const dr_call *call, size_t n, int nthreads)
{
#if DR_HAVE_POOL
    int threads = dr_threads_for(n, nthreads);
    if (threads > 1) {
        /* this call and its helpers count against the budget with every other threaded call */
        int active = DR_LOAD(&dr_pool.active), helpers;
        do {
            int room = DR_LOAD(&dr_pool.budget) - active - 1;
            helpers = threads - 1 < room ? threads - 1 : room;
            if (helpers < 0) helpers = 0;
        } while (!DR_CAS(&dr_pool.active, &active, active + 1 + helpers));
        if (helpers > 0) dr_run_shared(loop, call, n, helpers);
        else loop(call, 0, n);
        DR_ADD(&dr_pool.active, -(1 + helpers));
        return;
    }
#else
    (void)nthreads;
#endif
    loop(call, 0, n);
}

/* One-time set-up at import, before any loop can run on several threads. */
static void dr_threads_init(void)
{
#if DR_HAVE_POOL
    pthread_atfork(dr_before_fork, dr_after_fork_in_parent, dr_after_fork_in_child);
#endif
}

#endif
