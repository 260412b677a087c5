import Testing
import Foundation
@testable import Tensor

@Suite struct GEMMTests {
    func check(_ aShape: [Int], _ bShape: [Int], expected: [Int], seed: UInt64 = 1) throws {
        var generator = SplitMix64(seed: seed)
        let a = try randomTensor(aShape, &generator), b = try randomTensor(bShape, &generator)
        let fast = try matmul(a, b), reference = try ReferenceKernels.matmul(a, b)
        #expect(fast.shape == expected)
        #expect(reference.shape == expected)
        // Float32 accumulation error grows with the inner dimension (about 1e-5 for K = 768 even in
        // numpy's sgemm), and differs between OpenBLAS kernel sets; the bound follows K.
        let inner = aShape.last ?? 1
        let tolerance = Swift.max(1e-6, 1e-7 * Float(inner))
        #expect(maxMixedError(try fast.toArray(Float.self), try reference.toArray(Float.self)) < tolerance)
    }

    @Test func matmul2Dx2D() throws { try check([50, 768], [768, 77], expected: [50, 77]) }
    @Test func matmul3Dx2DFoldsBatchIntoRows() throws { try check([7, 3, 64], [64, 9], expected: [7, 3, 9]) }
    @Test func matmul3Dx3DBatched() throws { try check([12, 50, 64], [12, 64, 50], expected: [12, 50, 50]) }
    @Test func matmulBroadcastBatch() throws {
        try check([2, 1, 5, 7], [3, 7, 4], expected: [2, 3, 5, 4])
        try check([5, 7], [3, 7, 4], expected: [3, 5, 4])
        try check([1, 5, 7], [1, 7, 4], expected: [1, 5, 4])
    }
    @Test func matmulOneDimensional() throws {
        try check([7], [7, 4], expected: [4])
        try check([3, 5, 7], [7], expected: [3, 5])
        try check([7], [7], expected: [])
        try check([7], [2, 7, 3], expected: [2, 3])
    }

    @Test func matmulRejectsMismatch() throws {
        let a = try Tensor.zeros(.float32, shape: [2, 3]), b = try Tensor.zeros(.float32, shape: [4, 5])
        #expect(throws: KernelError.self) { try matmul(a, b) }
        let batchA = try Tensor.zeros(.float32, shape: [2, 3, 4]), batchB = try Tensor.zeros(.float32, shape: [3, 4, 5])
        #expect(throws: KernelError.self) { try matmul(batchA, batchB) }
        let integer = try Tensor([Int64(1)], shape: [1, 1])
        #expect(throws: KernelError.self) { try matmul(integer, integer) }
    }

    @Test func matmulWithZeroInnerDimensionIsZero() throws {
        let a = try Tensor.zeros(.float32, shape: [3, 0]), b = try Tensor.zeros(.float32, shape: [0, 2])
        let result = try matmul(a, b)
        #expect(try result.toArray(Float.self) == [0, 0, 0, 0, 0, 0])
    }

    @Test func gemmTransposesAndBroadcastsC() throws {
        var generator = SplitMix64(seed: 7)
        let a = try randomTensor([77, 50], &generator) // transA: A is [K, M] = [77, 50]
        let b = try randomTensor([30, 77], &generator) // transB: B is [N, K]
        let c = try randomTensor([30], &generator)
        let result = try gemm(a, b, c, alpha: 0.5, beta: 2, transposeA: true, transposeB: true)
        #expect(result.shape == [50, 30])
        // Reference: alpha * A^T B^T + beta * c
        let x = try a.toArray(Float.self), y = try b.toArray(Float.self), bias = try c.toArray(Float.self)
        var expected = [Float](repeating: 0, count: 50 * 30)
        for row in 0..<50 {
            for column in 0..<30 {
                var total = 0.0
                for inner in 0..<77 { total += Double(x[inner * 50 + row]) * Double(y[column * 77 + inner]) }
                expected[row * 30 + column] = Float(0.5 * total + 2 * Double(bias[column]))
            }
        }
        #expect(maxMixedError(try result.toArray(Float.self), expected) < 1e-5)
        // C of shape [M, 1] broadcasts along columns; no C means beta is irrelevant.
        let columnC = try Tensor([Float](repeating: 1, count: 50), shape: [50, 1])
        let plain = try gemm(a, b, nil, transposeA: true, transposeB: true)
        let shifted = try gemm(a, b, columnC, transposeA: true, transposeB: true)
        #expect(maxMixedError(try shifted.toArray(Float.self), try plain.toArray(Float.self).map { $0 + 1 }) < 1e-6)
        let badC = try Tensor.zeros(.float32, shape: [7])
        #expect(throws: KernelError.self) { try gemm(a, b, badC, transposeA: true, transposeB: true) }
    }

    /// Measures sgemm throughput for the ViT Linear shape; one quick run (printed, not asserted).
    @Test func sgemmThroughput400x768x768() throws {
        var generator = SplitMix64(seed: 3)
        let a = try randomTensor([400, 768], &generator), b = try randomTensor([768, 768], &generator)
        _ = try matmul(a, b)
        let repetitions = 5
        let clock = ContinuousClock()
        var result = try matmul(a, b)
        let elapsed = try clock.measure {
            for _ in 0..<repetitions { result = try matmul(a, b) }
        }
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18
        let gflops = 2.0 * 400 * 768 * 768 * Double(repetitions) / seconds / 1e9
        print("sgemm 400x768x768: \(String(format: "%.2f", seconds / Double(repetitions) * 1000)) ms, \(String(format: "%.1f", gflops)) GFLOP/s (threads \(Threading.threadCount))")
        #expect(result.floats.allSatisfy { $0.isFinite })
        #expect(gflops > 0)
    }

    /// `BLAS.sgemm` cuts large products into column blocks (wide C) or row blocks (narrow C), one
    /// single-threaded sgemm per thread; every transpose combination and both cuts against a plain
    /// loop in Double, with alpha and beta.
    @Test(arguments: [(200, 150, 90), (300, 20, 400), (64, 700, 50), (33, 97, 701)])
    func splitProductsMatchThePlainLoop(m: Int, n: Int, k: Int) throws {
        var generator = SplitMix64(seed: UInt64(m * 7 + n * 3 + k))
        for (transposeA, transposeB) in [(false, false), (true, false), (false, true), (true, true)] {
            let a = generator.floats(m * k, -1, 1), b = generator.floats(k * n, -1, 1)
            var c = generator.floats(m * n, -1, 1)
            let initial = c
            let lda = transposeA ? m : k, ldb = transposeB ? k : n
            try a.withUnsafeBufferPointer { aBuffer in
                try b.withUnsafeBufferPointer { bBuffer in
                    try c.withUnsafeMutableBufferPointer { cBuffer in
                        guard let aBase = aBuffer.baseAddress, let bBase = bBuffer.baseAddress, let cBase = cBuffer.baseAddress else { return }
                        try BLAS.sgemm(transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k, alpha: 0.5,
                                       a: aBase, lda: lda, b: bBase, ldb: ldb, beta: 2, c: cBase, ldc: n)
                    }
                }
            }
            var expected = [Float](repeating: 0, count: m * n)
            for row in 0..<m {
                for column in 0..<n {
                    var total = 0.0
                    for inner in 0..<k {
                        let x = transposeA ? a[inner * m + row] : a[row * k + inner]
                        let y = transposeB ? b[column * k + inner] : b[inner * n + column]
                        total += Double(x) * Double(y)
                    }
                    expected[row * n + column] = Float(0.5 * total + 2 * Double(initial[row * n + column]))
                }
            }
            #expect(maxMixedError(c, expected) < Swift.max(1e-6, 1e-7 * Float(k)), "transA \(transposeA) transB \(transposeB)")
        }
    }

    /// The column blocks tile C in order, in multiples of 16 columns (but the last), with one
    /// large block per thread first when the product is wide enough.
    @Test(arguments: [1, 2, 3, 4])
    func columnBlocksTileTheColumns(threads: Int) {
        for columns in [1, 15, 16, 64, 100, 511, 512, 700, 768, 2304, 3072, 5000] {
            let blocks = BLAS.columnBlocks(columns: columns, threads: threads)
            #expect(blocks.first?.lowerBound == 0 && blocks.last?.upperBound == columns, "\(columns)")
            for (first, second) in zip(blocks, blocks.dropFirst()) {
                #expect(first.upperBound == second.lowerBound && first.count % BLAS.columnUnit == 0, "\(columns)")
            }
            if threads > 1, (columns + BLAS.columnUnit - 1) / BLAS.columnUnit >= 16 * threads {
                #expect(blocks.count == 3 * threads, "\(columns)")
                let large = blocks.prefix(threads).map(\.count), small = blocks.dropFirst(threads).map(\.count)
                #expect(Set(large).count == 1 && large.reduce(0, +) * 10 >= columns * 7, "\(columns): \(large)")
                #expect(small.allSatisfy { $0 <= large[0] / 2 }, "\(columns): \(small)")
            } else {
                #expect(blocks.count <= Swift.max(1, threads), "\(columns)")
            }
        }
    }

    /// A block's result does not depend on which thread takes it (OpenBLAS computes a block the
    /// same on any thread), so a split product is the same bit for bit on every run, however the
    /// threads' timing hands out the small blocks. (It is not the same as one call on one thread:
    /// OpenBLAS's blocking depends on the width of each call.)
    @Test func splitProductsAreTheSameOnEveryRun() throws {
        let (m, n, k) = (96, 1100, 300)
        var generator = SplitMix64(seed: 41)
        let a = generator.floats(m * k, -1, 1), b = generator.floats(k * n, -1, 1)
        // The thread count is passed, not set: tests run in parallel and others change the global.
        func product(threads: Int) throws -> [Float] {
            var c = [Float](repeating: 0, count: m * n)
            try a.withUnsafeBufferPointer { aBuffer in
                try b.withUnsafeBufferPointer { bBuffer in
                    try c.withUnsafeMutableBufferPointer { cBuffer in
                        guard let aBase = aBuffer.baseAddress, let bBase = bBuffer.baseAddress, let cBase = cBuffer.baseAddress else { return }
                        try BLAS.sgemm(transposeA: false, transposeB: false, m: m, n: n, k: k, alpha: 1, a: aBase, lda: k,
                                       b: bBase, ldb: n, beta: 0, c: cBase, ldc: n, threads: threads)
                    }
                }
            }
            return c
        }
        #expect(BLAS.columnBlocks(columns: n, threads: 2).count == 6)
        let single = try product(threads: 1)
        for threads in [2, 3] {
            let first = try product(threads: threads)
            #expect(maxMixedError(first, single) < 1e-5, "threads \(threads)")
            for _ in 0..<6 { #expect(try product(threads: threads) == first, "threads \(threads)") }
        }
    }
}
