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
//  * Exception, the skinny-M products (SkinnyGEMM.swift, M = 2...12 rows, e.g. the fusion
//    transformer's 8 tokens): they replace sgemm and run on a small pool of pthreads of their own
//    (Sources/CKernels/WorkerPool.c), because waking a Dispatch worker for each 0.1-0.3 ms product
//    cost ~2 ms over the fusion graph. The pool uses `threadCount` threads too, and runs only
//    while such a product runs (its workers spin up to 0.1 ms afterwards, then sleep).
// `Threading.threadCount` sets all the limits at once so a user's `--threads 1` holds everywhere.

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
