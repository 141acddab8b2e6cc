/* Running one call's loop over its pixels on up to nthreads OpenMP threads (one thread when
 * built without OpenMP): how many threads a call gets, and the split into chunks. */
#ifndef DICOMRENDER_THREADS_H
#define DICOMRENDER_THREADS_H

#include "scalar.h"

#ifdef _OPENMP
#include <omp.h>
#endif

static int dr_have_openmp(void)
{
#ifdef _OPENMP
    return 1;
#else
    return 0;
#endif
}

/* libgomp's thread pool does not survive fork(): a child process that starts a parallel region
 * after its parent had one waits forever for workers that were not copied.  So a child forked
 * after the first team (multiprocessing's "fork" workers, for instance) runs every loop on its
 * own thread. */
#if defined(_OPENMP) && (defined(__unix__) || defined(__APPLE__))
#include <pthread.h>
#define DR_WATCH_FORK 1
#else
#define DR_WATCH_FORK 0
#endif
#ifdef _OPENMP
static int dr_team_started = 0; /* a thread team has run in this process */
static int dr_forked_after_team = 0;
#endif

#if DR_WATCH_FORK
static void dr_after_fork_in_child(void) { dr_forked_after_team = dr_team_started; }
#endif

/* One-time set-up at import, before any loop can run on several threads. */
static void dr_threads_init(void)
{
#if DR_WATCH_FORK
    pthread_atfork(NULL, NULL, dr_after_fork_in_child);
#endif
}

/* Threads a loop over n pixels uses when nthreads are asked for. */
static int dr_threads_for(size_t n, int nthreads)
{
#ifdef _OPENMP
    size_t most = n / ((size_t)DR_CHUNK * DR_MIN_CHUNKS_PER_THREAD);
    if (dr_forked_after_team) return 1;
    if (nthreads < 1) nthreads = 1;
    if ((size_t)nthreads > most) nthreads = most < 1 ? 1 : (int)most;
    return nthreads;
#else
    (void)n;
    (void)nthreads;
    return 1;
#endif
}

#ifdef _OPENMP
/* Kernel calls in progress.  A call that starts while another one runs (from another Python
 * thread: the loops release the GIL) stays on its own thread, so concurrent callers scale
 * with the cores instead of oversubscribing them with thread teams. */
#if defined(__GNUC__) || defined(__clang__)
static int dr_active_calls = 0;
static inline int dr_enter(void) { return __atomic_fetch_add(&dr_active_calls, 1, __ATOMIC_RELAXED); }
static inline void dr_leave(void) { (void)__atomic_fetch_sub(&dr_active_calls, 1, __ATOMIC_RELAXED); }
#else
static inline int dr_enter(void) { return 0; }
static inline void dr_leave(void) {}
#endif
#endif

/* Split [0, n) into chunks of whole DR_CHUNKs, one run of them per thread, and run `loop` on each. */
static void dr_parallel(dr_loop *loop, const dr_call *call, size_t n, int nthreads)
{
#ifdef _OPENMP
    size_t n_chunks = (n + DR_CHUNK - 1) / DR_CHUNK;
    int busy = dr_enter();
    int threads = busy ? 1 : dr_threads_for(n, nthreads);
    if (threads > 1) {
        dr_team_started = 1;
        ptrdiff_t per = (ptrdiff_t)((n_chunks + threads - 1) / threads) * DR_CHUNK;
#pragma omp parallel for num_threads(threads) schedule(static, 1)
        for (int t = 0; t < threads; t++) {
            size_t start = (size_t)t * per;
            if (start < n) {
                size_t count = n - start < (size_t)per ? n - start : (size_t)per;
                loop(call, start, count);
            }
        }
    } else {
        loop(call, 0, n);
    }
    dr_leave();
#else
    (void)nthreads;
    loop(call, 0, n);
#endif
}

#endif
