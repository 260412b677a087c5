#ifndef CKERNELS_POOL_H
#define CKERNELS_POOL_H

#ifdef __cplusplus
extern "C" {
#endif

/// One task of a pool job: `body(context, task)` for task in [0, tasks).
typedef void (*ck_pool_body)(void *context, int task);

/// Runs body(context, task) for every task in [0, tasks) on up to `threads` threads: the caller
/// and persistent worker threads (started on first use, at most 63), each claiming the next task
/// until none are left, so any task may run on any of them. Returns when all have finished.
/// When another job is in progress, or `threads` <= 1, the caller runs every task itself.
/// See WorkerPool.c for why this is not Dispatch.
void ck_pool_run(int tasks, int threads, ck_pool_body body, void *context);

#ifdef __cplusplus
}
#endif

#endif
