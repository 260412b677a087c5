// Threading policy
// ----------------
// One owner for the cores: this engine's own threads. OpenBLAS always runs single-threaded
// (`useSingleThreadedBLAS`), and every parallel piece of work is split by us:
//  * GEMMs (`BLAS.sgemm`): a large product is cut into blocks of columns (one large block per
//    thread, then a few small ones for whichever thread is free first: `BLAS.columnBlocks`) or
//    `threadCount` blocks of rows, each a single-threaded sgemm on one thread of `Threading.parallelFor`. Measured on the Zen 3
//    build host, two single-threaded halves reach the same 170-180 GFLOP/s as OpenBLAS's own two
//    threads on the image and text shapes (158-173 GFLOP/s at M = 322, 123-127 at M = 40 where
//    OpenBLAS's threading gave 80).
//  * Why not OpenBLAS's threads: after each threaded call its idle workers spin on sched_yield for
//    about 0.1 s (2^28 TSC cycles). Anything run on two threads in that window, which in a graph
//    is the next node, got half a core: two single-threaded sgemm halves measured 88 GFLOP/s right
//    after an OpenBLAS 2-thread call and 170 without one; the fusion graph's skinny products took
//    4.9 to 18.5 ms medians depending on how soon they followed the image graph. The pthreads
//    build also starts its workers when the library loads, and they spin the same way for the
//    first 0.1 s of every process; a constructor in WorkerPool.c shuts them down at start.
//  * `Threading.parallelFor` serves the GEMM blocks and the non-GEMM kernels (elementwise,
//    softmax, LayerNorm, attention heads) alike, only when the work is large enough (about 64K
//    elements or 2M multiply-adds); below that one thread does it. The interpreter runs one node
//    at a time, so these never nest (and if they did, the pool runs a nested job on its caller).
//  * Its threads are a small pool of persistent pthreads (Sources/CKernels/WorkerPool.c), shared
//    with the skinny-M products (SkinnyGEMM.swift), not Dispatch's workers. After each job they
//    spin up to 0.1 ms, then sleep, so the next node of a graph finds them awake but an idle
//    engine uses no CPU. Dispatch parks its workers at once: waking one took a median 29 us, it
//    cost the fusion graph ~2 ms of its 4-6, and on this VM a parked vCPU is slow to come back
//    (an image run started 0.65 s after the previous one took 507-579 ms against 500-512 ms back
//    to back). `ACTION_CLIP_THREAD_POOL=dispatch` switches back for comparison.
// `Threading.threadCount` is the one limit, so a user's `--threads 1` holds everywhere.

import CBLAS
import CKernels
import Dispatch
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Thread limits for the kernels (see the policy at the top of this file).
public enum Threading {
    /// Number of threads our kernels may use (at least 1). Defaults to the number of online
    /// processors. OpenBLAS itself always gets one (see the policy above).
    public static var threadCount: Int {
        get { threadCountStore.value }
        set {
            let clamped = max(1, min(newValue, 1024))
            threadCountStore.value = clamped
            useSingleThreadedBLAS()
        }
    }

    /// Tells OpenBLAS to run every call on its caller's thread (done once, before the first GEMM).
    /// Its worker threads, started when the library loaded, are already stopped by a constructor
    /// in `Sources/CKernels/WorkerPool.c` (they would spin for 0.1 s at start); this call covers
    /// builds where that constructor does not run.
    public static func useSingleThreadedBLAS() {
        _ = singleThreadedBLAS
    }

    private static let singleThreadedBLAS: Void = {
        // Only when it is not single-threaded yet: OpenBLAS 0.3.21's openblas_set_num_threads restarts
        // a stopped thread server ("lazy re-init after fork"), and after the constructor has stopped it,
        // calling it again started a worker that spun on sched_yield for 0.1 s (`perf` of a warm job:
        // 6 % of all samples, about 80 ms of CPU beside the image network).
        if openblas_get_num_threads() != 1 { openblas_set_num_threads(1) }
    }()

    /// Whether OpenBLAS's thread server is running (nil when this OpenBLAS has none to ask about,
    /// e.g. an OpenMP or serial build). For tests of the policy above.
    public static var blasThreadServerRunning: Bool? {
        // dlopen(nil) is the program's global scope, which holds the OpenBLAS it links.
        guard let program = dlopen(nil, RTLD_NOW), let symbol = dlsym(program, "blas_server_avail") else { return nil }
        return symbol.assumingMemoryBound(to: Int32.self).pointee != 0
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
    ///
    /// The range is cut into up to `chunksPerThread` chunks per thread, which the threads claim
    /// one at a time, so a thread that starts late (see WorkerPool.c) leaves its share to the
    /// others. Callers whose chunks each redo shared work (a GEMM split repacks its shared
    /// operand per block) pass 1.
    public static func parallelFor(_ range: Range<Int>, minimumChunk: Int, chunksPerThread: Int = 4,
                                   body: (Range<Int>) -> Void) {
        let count = range.count
        guard count > 0 else { return }
        let chunkFloor = max(1, minimumChunk)
        let threads = threadCount
        let chunks = min(threads > 1 ? threads * max(1, chunksPerThread) : 1, count / chunkFloor)
        guard chunks > 1, threads > 1 else {
            body(range)
            return
        }
        let lower = range.lowerBound
        // Even split; the first `count % chunks` chunks take one extra index.
        @Sendable func chunkRange(_ chunk: Int) -> Range<Int> {
            let base = count / chunks, extra = count % chunks
            let start = lower + chunk * base + min(chunk, extra)
            return start..<(start + base + (chunk < extra ? 1 : 0))
        }
        // The pool and concurrentPerform want a shareable body, but kernel bodies capture raw
        // pointers to their inputs and output. That is safe under the contract above (disjoint
        // writes, reads of immutable inputs, all calls finished before we return), so the body is
        // passed through an unchecked box instead of forcing every kernel to wrap its pointers.
        withoutActuallyEscaping(body) { escapableBody in
            if usesDispatch {
                let box = UncheckedSendableBody(body: escapableBody)
                DispatchQueue.concurrentPerform(iterations: chunks) { chunk in box.body(chunkRange(chunk)) }
                return
            }
            var job = PoolJob(body: escapableBody, chunkRange: chunkRange)
            withUnsafeMutablePointer(to: &job) { pointer in
                ck_pool_run(Int32(chunks), Int32(threads), { context, part in
                    guard let job = context?.assumingMemoryBound(to: PoolJob.self).pointee else { return }
                    job.body(job.chunkRange(Int(part)))
                }, pointer)
            }
        }
    }

    /// `ACTION_CLIP_THREAD_POOL=dispatch` runs `parallelFor` on Dispatch's worker threads instead
    /// of the engine's pool (for A/B measurements; see the policy at the top of this file).
    static let usesDispatch: Bool = {
        guard let value = getenv("ACTION_CLIP_THREAD_POOL") else { return false }
        return String(cString: value) == "dispatch"
    }()
}

/// What a pool worker needs to run its chunk of a `parallelFor`.
private struct PoolJob {
    let body: (Range<Int>) -> Void
    let chunkRange: (Int) -> Range<Int>
}

// MARK: - OpenBLAS kernel selection

extension Threading {
    /// OpenBLAS's build configuration and the CPU kernel set it picked, e.g.
    /// "OpenBLAS 0.3.21 NO_LAPACKE DYNAMIC_ARCH ... Cooperlake MAX_THREADS=64".
    public static var blasConfiguration: String {
        openblas_get_config().map { String(cString: $0) } ?? "unknown"
    }

    /// The kernel set OpenBLAS chose at load time ("Prescott", "Haswell", "SkylakeX", ...).
    public static var blasCoreName: String {
        openblas_get_corename().map { String(cString: $0) } ?? "unknown"
    }

    /// A better `OPENBLAS_CORETYPE` value when OpenBLAS fell back to a generic kernel set on a CPU
    /// it did not recognise, or nil when its choice is fine.
    ///
    /// Measured on this project's build host: Debian's OpenBLAS 0.3.21 (DYNAMIC_ARCH) does not
    /// know Intel family 6 model 207 (a recent Xeon with AVX-512) and picks "Prescott" (SSE3),
    /// giving 34 instead of 205 GFLOP/s for a 400x768x768 sgemm. OpenBLAS reads the variable only
    /// when the library loads, so the caller (the CLI) has to set it and re-execute itself.
    public static func suggestedBLASCoreType(cpuFlags: Set<String>? = nil, coreName: String? = nil) -> String? {
        let current = (coreName ?? blasCoreName).lowercased()
        let generic: Set<String> = ["prescott", "core2", "penryn", "dunnington", "nehalem", "katmai", "coppermine",
                                    "northwood", "banias", "athlon", "opteron", "barcelona", "unknown"]
        guard generic.contains(current) else { return nil }
        let flags = cpuFlags ?? cpuInformationFlags()
        if ["avx512f", "avx512dq", "avx512bw", "avx512vl"].allSatisfy(flags.contains) { return "SkylakeX" }
        if ["avx2", "fma"].allSatisfy(flags.contains) { return "Haswell" }
        if flags.contains("avx") { return "SandyBridge" }
        return nil
    }

    /// CPU feature flags from /proc/cpuinfo (empty where that file does not exist).
    static func cpuInformationFlags() -> Set<String> {
        guard let file = fopen("/proc/cpuinfo", "r") else { return [] }
        defer { fclose(file) }
        var line: UnsafeMutablePointer<CChar>?
        var capacity = 0
        defer { free(line) }
        while getline(&line, &capacity, file) > 0 {
            guard let line else { break }
            let text = String(cString: line)
            if text.hasPrefix("flags") {
                let values = text.split(separator: ":", maxSplits: 1).last ?? ""
                return Set(values.split(whereSeparator: { $0 == " " || $0 == "\n" }).map(String.init))
            }
        }
        return []
    }
}

/// Carries a chunk body into `concurrentPerform` (see `Threading.parallelFor` for why this is safe).
private struct UncheckedSendableBody: @unchecked Sendable {
    let body: (Range<Int>) -> Void
}

/// A value behind a mutex, for the few process-wide settings (`Threading.threadCount`,
/// `PackedGEMM.precision`): a plain static var is not concurrency-safe.
final class LockedValue<Value: Sendable>: @unchecked Sendable {
    private var mutex = pthread_mutex_t()
    private var stored: Value

    init(_ value: Value) {
        pthread_mutex_init(&mutex, nil)
        stored = value
    }

    var value: Value {
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

/// `Threading.threadCount`'s storage: the online processors until a command sets it.
private let threadCountStore = LockedValue(max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))))
