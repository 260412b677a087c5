import Testing
import Synchronization
@testable import Tensor

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
