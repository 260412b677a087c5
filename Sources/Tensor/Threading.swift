// Threading policy
// ----------------
// Two things in this engine can use several cores: OpenBLAS (inside every sgemm) and our own
// Swift loops (elementwise, softmax, reductions, layer norm). They must not oversubscribe the
// machine, so the rule is:
//  * GEMM parallelism belongs to OpenBLAS. MatMul, Gemm and Conv hand one large sgemm to OpenBLAS
//    and never wrap sgemm calls in `Threading.parallelFor`.
//  * `Threading.parallelFor` is used only by non-GEMM kernels, and only when the work is large
//    (about 64K elements or more); below that the dispatch cost outweighs the gain.
//  * The two never run at the same time because the interpreter executes one node at a time:
//    while a MatMul node runs, OpenBLAS owns the cores; while a Softmax node runs, our loops do.
// `Threading.threadCount` sets both limits at once so a user's `--threads 1` holds everywhere.

import CBLAS
import Dispatch
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Thread limits for the kernels (see the policy at the top of this file).
public enum Threading {
    /// Number of threads our kernels and OpenBLAS may use (at least 1). Defaults to the number of
    /// online processors. Setting it also calls `openblas_set_num_threads`.
    public static var threadCount: Int {
        get { ThreadCountStore.shared.value }
        set {
            let clamped = max(1, min(newValue, 1024))
            ThreadCountStore.shared.value = clamped
            openblas_set_num_threads(Int32(clamped))
        }
    }

    /// Default minimum elements per chunk for elementwise kernels: below this, one thread does it all.
    public static let elementwiseChunk = 1 << 16

    /// Calls `body` on disjoint sub-ranges that together cover `range`, concurrently when there are
    /// several threads and at least `2 * minimumChunk` indices; otherwise calls it once on `range`.
    ///
    /// `body` may run on several threads at the same time, each call with its own sub-range, and
    /// returns before `parallelFor` returns. It must only write memory that belongs to its own
    /// sub-range (e.g. the output rows it was given) and only read shared inputs; kernels pass raw
    /// buffer pointers to their own freshly allocated output, which satisfies this.
    public static func parallelFor(_ range: Range<Int>, minimumChunk: Int, body: (Range<Int>) -> Void) {
        let count = range.count
        guard count > 0 else { return }
        let chunkFloor = max(1, minimumChunk)
        let chunks = min(threadCount, count / chunkFloor)
        guard chunks > 1 else {
            body(range)
            return
        }
        let lower = range.lowerBound
        // concurrentPerform wants a @Sendable closure, but kernel bodies capture raw pointers to
        // their inputs and output. That is safe under the contract above (disjoint writes, reads of
        // immutable inputs, all calls finished before we return), so the body is passed through an
        // unchecked box instead of forcing every kernel to wrap its pointers.
        withoutActuallyEscaping(body) { escapableBody in
            let box = UncheckedSendableBody(body: escapableBody)
            DispatchQueue.concurrentPerform(iterations: chunks) { chunk in
                // Even split; the first `count % chunks` chunks take one extra index.
                let base = count / chunks
                let extra = count % chunks
                let start = lower + chunk * base + min(chunk, extra)
                let end = start + base + (chunk < extra ? 1 : 0)
                box.body(start..<end)
            }
        }
    }
}

/// Carries a chunk body into `concurrentPerform` (see `Threading.parallelFor` for why this is safe).
private struct UncheckedSendableBody: @unchecked Sendable {
    let body: (Range<Int>) -> Void
}

/// Lock-protected storage for `Threading.threadCount` (a plain static var is not concurrency-safe).
private final class ThreadCountStore: @unchecked Sendable {
    static let shared = ThreadCountStore()
    private var mutex = pthread_mutex_t()
    private var stored: Int

    private init() {
        pthread_mutex_init(&mutex, nil)
        stored = max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))))
    }

    var value: Int {
        get {
            pthread_mutex_lock(&mutex)
            defer { pthread_mutex_unlock(&mutex) }
            return stored
        }
        set {
            pthread_mutex_lock(&mutex)
            stored = newValue
            pthread_mutex_unlock(&mutex)
        }
    }
}
