import Testing
import Synchronization
@testable import Tensor
import CBLAS

@Suite(.serialized) struct ThreadingTests {
    @Test func parallelForCoversRangeExactlyOnce() {
        let original = Threading.threadCount
        defer { Threading.threadCount = original }
        for threads in [1, 2, 3] {
            Threading.threadCount = threads
            #expect(Threading.threadCount == threads)
            let counts = UnsafeMutableBufferPointer<Int>.allocate(capacity: 1000)
            defer { counts.deallocate() }
            counts.initialize(repeating: 0)
            Threading.parallelFor(10..<1000, minimumChunk: 100) { range in
                for index in range { counts[index] += 1 }
            }
            #expect(counts[0..<10].allSatisfy { $0 == 0 })
            #expect(counts[10..<1000].allSatisfy { $0 == 1 })
        }
        Threading.threadCount = 0
        #expect(Threading.threadCount == 1)
    }
}

@Suite struct BLASSelectionTests {
    @Test func suggestsCoreTypeOnlyForGenericFallbacks() {
        let avx512: Set<String> = ["avx", "avx2", "fma", "avx512f", "avx512dq", "avx512bw", "avx512vl"]
        #expect(Threading.suggestedBLASCoreType(cpuFlags: avx512, coreName: "Prescott") == "SkylakeX")
        #expect(Threading.suggestedBLASCoreType(cpuFlags: ["avx", "avx2", "fma"], coreName: "Prescott") == "Haswell")
        #expect(Threading.suggestedBLASCoreType(cpuFlags: avx512, coreName: "Cooperlake") == nil)
        #expect(Threading.suggestedBLASCoreType(cpuFlags: ["sse2"], coreName: "Prescott") == nil)
        #expect(!Threading.blasConfiguration.isEmpty)
        print("OpenBLAS: \(Threading.blasConfiguration); suggested OPENBLAS_CORETYPE: \(Threading.suggestedBLASCoreType() ?? "none")")
    }
}

/// The thread policy: OpenBLAS runs single-threaded, with no worker of its own spinning beside ours.
@Suite struct OpenBLASThreadServerTests {
    @Test func theServerStaysStoppedAfterSingleThreadedModeAndAGEMM() throws {
        Threading.useSingleThreadedBLAS()
        let a = [Float](repeating: 1, count: 64 * 64), b = [Float](repeating: 2, count: 64 * 64)
        var c = [Float](repeating: 0, count: 64 * 64)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, 64, 64, 64, 1, a, 64, b, 64, 0, &c, 64)
        #expect(c[0] == 128)
        #expect(openblas_get_num_threads() == 1)
        // The pthreads build this project links (libopenblas0-pthread) has a thread server to ask about.
        #expect(Threading.blasThreadServerRunning == false)
    }
}
