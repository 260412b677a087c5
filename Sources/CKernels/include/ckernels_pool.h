#ifndef CKERNELS_POOL_H
#define CKERNELS_POOL_H

#ifdef __cplusplus
extern "C" {
#endif

/// One part of a pool job: `body(context, part)` for part in [0, parts).
typedef void (*ck_pool_body)(void *context, int part);

/// Runs body(context, 0) on the calling thread and parts 1..<parts on persistent worker threads
/// (started on first use, at most 63), and returns when all have finished. When another job is
/// in progress the caller runs every part itself. See WorkerPool.c for why this is not Dispatch.
void ck_pool_run(int parts, ck_pool_body body, void *context);

#ifdef __cplusplus
}
#endif

#endif
