// A small pool of persistent worker threads: the engine's threads (Threading.parallelFor and the
// skinny-M kernel both run on it).
//
// Why not Dispatch: the fusion graph makes 24 products of 0.1-0.3 ms each, and a Dispatch worker
// woken for each one starts a median 29 us (p90 40 us) after the caller on the 2-vCPU build
// host; the kernel's two halves then overlap badly and the 24 products took 5.7-6.2 ms instead of
// 3.9 ms with a worker that is already running. These workers spin for a
// short while (CK_POOL_SPIN_NS) after each job, so back-to-back products find them awake, then
// sleep on a condition variable, so an idle engine uses no CPU.
//
// Tasks are taken, not assigned: every thread of a job (the caller and its helpers) claims the
// next task from one counter until none are left. On this shared VM a woken helper sometimes
// starts milliseconds late (its vCPU was handed to another tenant while idle); with a fixed part
// per thread the caller then waited for it, and the fusion graph took 7-27 ms instead of 4.5 when
// started after a 150 ms pause. Now a late helper finds its work done by the caller.
//
// One job at a time: a caller that finds the pool busy (another thread is in the middle of a
// job, e.g. tests running in parallel) runs every task itself instead of waiting.

#include "ckernels_pool.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <time.h>

#ifndef CK_POOL_SPIN_NS
#define CK_POOL_SPIN_NS 100000
#endif

enum { CK_POOL_MAX = 64, CK_POOL_MAX_TASKS = 0xffff };

static pthread_mutex_t ck_submit = PTHREAD_MUTEX_INITIALIZER;   // held by the caller for a whole job
static pthread_mutex_t ck_sleep = PTHREAD_MUTEX_INITIALIZER;    // guards sleeping and waking
static pthread_cond_t ck_wake = PTHREAD_COND_INITIALIZER;
// (job number << 8) | threads of the job: bumped once per job, after the job fields are written.
// Carrying the thread count in the same word lets a worker that is not needed for a job skip it
// without reading ck_job, which the caller may already be rewriting for the next job.
static atomic_llong ck_signal;
// The task counter, tagged with its job: (job & 0xffffffff) << 32 | tasks << 16 | next task.
// A helper that wakes after its job ended sees another job number (or no task left) and claims
// nothing, so it can never run a task of a job it did not see published.
static atomic_llong ck_next;
static atomic_int ck_sleepers;     // workers blocked (or about to block) on ck_wake
static atomic_int ck_done;         // tasks of the current job finished
static int ck_workers;             // started so far (only changed under ck_submit)
// The signal current when worker i was started: it waits for the next one. (Reading it in the
// new thread instead could miss a job published before the thread ran.)
static long long ck_start_signal[CK_POOL_MAX];

static struct {
    ck_pool_body body;
    void *context;
} ck_job;

// The engine's thread policy (Sources/Tensor/Threading.swift): OpenBLAS runs every call on its
// caller's thread, and the engine's threads are this pool's. But the pthreads build of OpenBLAS
// starts its worker threads when the library loads, before main, and each spins on sched_yield
// for about 0.1 s (its thread timeout) waiting for work that never comes: `perf` of a whole
// `action-clip` job put 105 ms of CPU there, in the loading phase, on a 2-core machine. This
// constructor runs after the library's (an executable's constructors run after those of the
// libraries it links) and stops them: single-threaded mode first, then the library's own shutdown
// of its thread server (what it calls at exit and before fork). Both are looked up at run time:
// OpenMP and serial builds of OpenBLAS have no thread server, and then nothing is called.
__attribute__((constructor)) static void ck_stop_openblas_workers(void) {
    void (*set_threads)(int) = (void (*)(int))dlsym(RTLD_DEFAULT, "openblas_set_num_threads");
    int (*shutdown)(void) = (int (*)(void))dlsym(RTLD_DEFAULT, "blas_thread_shutdown_");
    if (set_threads == 0 || shutdown == 0) return;
    set_threads(1);
    shutdown();
}

static long long ck_now_ns(void) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (long long)now.tv_sec * 1000000000LL + now.tv_nsec;
}

static inline void ck_pause(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

// Claims and runs tasks of job `job` until none are left. ck_job is read only after a claim
// succeeds: the job cannot end (and its fields change) while one of its tasks is unfinished.
static void ck_run_tasks(long long job) {
    const long long tag = job & 0xffffffffLL;
    for (;;) {
        long long current = atomic_load(&ck_next);
        if ((current >> 32) != tag) return;
        const int tasks = (int)((current >> 16) & 0xffff), next = (int)(current & 0xffff);
        if (next >= tasks) return;
        if (!atomic_compare_exchange_weak(&ck_next, &current, current + 1)) continue;
        ck_job.body(ck_job.context, next);
        atomic_fetch_add(&ck_done, 1);
    }
}

static void *ck_worker(void *argument) {
    const int index = (int)(ptrdiff_t)argument;   // helpers are 1...; the caller is thread 0
    long long seen = ck_start_signal[index];
    int participated = 1;
    for (;;) {
        // Spin a little: the next job usually follows within microseconds. A worker that was not
        // needed for the last job (it used fewer threads) goes straight to sleep instead, so it
        // does not take a core from the ones that are working.
        long long deadline = ck_now_ns() + (participated ? CK_POOL_SPIN_NS : 0);
        int spins = 0;
        while (atomic_load(&ck_signal) == seen) {
            ck_pause();
            if (++spins == 256) {
                spins = 0;
                if (ck_now_ns() > deadline) break;
            }
        }
        if (atomic_load(&ck_signal) == seen) {
            // Announce the sleep before the last check (seq_cst, paired with the caller's bump
            // then read of ck_sleepers) so a job published in between is never missed.
            pthread_mutex_lock(&ck_sleep);
            atomic_fetch_add(&ck_sleepers, 1);
            while (atomic_load(&ck_signal) == seen) pthread_cond_wait(&ck_wake, &ck_sleep);
            atomic_fetch_sub(&ck_sleepers, 1);
            pthread_mutex_unlock(&ck_sleep);
        }
        seen = atomic_load(&ck_signal);
        participated = index < (int)(seen & 0xff);
        if (participated) ck_run_tasks(seen >> 8);
    }
    return 0;
}

void ck_pool_run(int tasks, int threads, ck_pool_body body, void *context) {
    if (tasks <= 0) return;
    if (threads > tasks) threads = tasks;
    if (threads > CK_POOL_MAX) threads = CK_POOL_MAX;
    if (threads <= 1 || tasks > CK_POOL_MAX_TASKS || pthread_mutex_trylock(&ck_submit) != 0) {
        for (int task = 0; task < tasks; task++) body(context, task);
        return;
    }
    while (ck_workers < threads - 1) {
        pthread_t thread;
        pthread_attr_t attributes;
        pthread_attr_init(&attributes);
        pthread_attr_setdetachstate(&attributes, PTHREAD_CREATE_DETACHED);
        ck_start_signal[ck_workers + 1] = atomic_load(&ck_signal);
        const int created = pthread_create(&thread, &attributes, ck_worker, (void *)(ptrdiff_t)(ck_workers + 1));
        pthread_attr_destroy(&attributes);
        if (created != 0) break;
        ck_workers++;
    }
    const int helpers = threads - 1 < ck_workers ? threads - 1 : ck_workers;
    ck_job.body = body;
    ck_job.context = context;
    atomic_store(&ck_done, 0);
    const long long job = (atomic_load(&ck_signal) >> 8) + 1;
    atomic_store(&ck_next, ((job & 0xffffffffLL) << 32) | ((long long)tasks << 16));
    atomic_store(&ck_signal, (job << 8) | (long long)(helpers + 1));
    if (atomic_load(&ck_sleepers) > 0) {
        pthread_mutex_lock(&ck_sleep);
        pthread_cond_broadcast(&ck_wake);
        pthread_mutex_unlock(&ck_sleep);
    }
    ck_run_tasks(job);
    // Only tasks a helper claimed and is still running are waited for.
    while (atomic_load(&ck_done) < tasks) ck_pause();
    pthread_mutex_unlock(&ck_submit);
}
