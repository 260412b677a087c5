import Testing
import CKernels
@testable import Tensor

/// The packed-strip layout and the GEMM on it (both kernels, called explicitly) against the
/// Double reference: every tail of 1...7 rows after the 8-row tiles, k from 1 up, strip
/// sub-ranges, accumulate on and off; then `linear` and `matmul` on packed weights against the
/// same product on row-major weights, and the contiguous copy other readers get.
@Suite struct PackedGEMMTests {
    /// The vector kernels this machine can run (AVX-512, AVX2).
    static var fastPaths: [PackedGEMM.Path] {
        (ck_cpu_has_avx512f() != 0 ? [.avx512] : []) + (ck_cpu_has_avx2_fma() != 0 ? [.avx2] : [])
    }
    /// Those and the portable kernel, which runs anywhere.
    static var paths: [PackedGEMM.Path] { fastPaths + [.portable] }

    /// Row-major [k, n] into packed strips.
    static func pack(_ weight: [Float], k: Int, n: Int) -> [Float] {
        var packed = [Float](repeating: .nan, count: k * n)
        weight.withUnsafeBufferPointer { w in
            packed.withUnsafeMutableBufferPointer { p in
                guard let w = w.baseAddress, let p = p.baseAddress else { return }
                ck_pack_strips(k, n, w, n, p)
            }
        }
        return packed
    }

    /// The C kernel on strips [strip0, strip1), writing into `output` (row stride n) from that strip's column.
    static func run(_ path: PackedGEMM.Path, rows: Int, k: Int, n: Int, x: [Float], packed: [Float],
                    strips: Range<Int>, accumulate: Bool, into output: inout [Float]) {
        x.withUnsafeBufferPointer { a in
            packed.withUnsafeBufferPointer { w in
                output.withUnsafeMutableBufferPointer { c in
                    guard let a = a.baseAddress, let w = w.baseAddress, let c = c.baseAddress else { return }
                    let column = c + strips.lowerBound * PackedStrips.stripColumns
                    switch path {
                    case .avx512: ck_packed_gemm_avx512(rows, k, a, k, w, column, n, strips.lowerBound, strips.upperBound, accumulate ? 1 : 0)
                    case .avx2: ck_packed_gemm_avx2(rows, k, a, k, w, column, n, strips.lowerBound, strips.upperBound, accumulate ? 1 : 0)
                    case .portable: ck_packed_gemm_portable(rows, k, a, k, w, column, n, strips.lowerBound, strips.upperBound, accumulate ? 1 : 0)
                    case .bfloat16AVX512, .bfloat16Portable: Issue.record("bfloat16 paths are BFloat16GEMMTests'")
                    }
                }
            }
        }
    }

    /// (start +) x [rows, k] * weight [k, n], both row-major, summed in Double.
    static func reference(rows: Int, k: Int, n: Int, x: [Float], weight: [Float], start: [Float]?) -> [Float] {
        var expected = [Float](repeating: 0, count: rows * n)
        for row in 0..<rows {
            for column in 0..<n {
                var sum = start.map { Double($0[row * n + column]) } ?? 0
                for p in 0..<k { sum += Double(x[row * k + p]) * Double(weight[p * n + column]) }
                expected[row * n + column] = Float(sum)
            }
        }
        return expected
    }

    /// Layout: each packed float sits where the header says, and unpacking and the equality check invert packing.
    @Test func packingRoundTrips() {
        let k = 5, n = 96
        let weight = (0..<(k * n)).map { Float($0) }
        let packed = Self.pack(weight, k: k, n: n)
        for p in 0..<k {
            for j in 0..<n {
                #expect(packed[((j / 32) * k + p) * 32 + j % 32] == weight[p * n + j], "W[\(p), \(j)]")
            }
        }
        var unpacked = [Float](repeating: 0, count: k * n)
        packed.withUnsafeBufferPointer { p in
            unpacked.withUnsafeMutableBufferPointer { w in
                if let p = p.baseAddress, let w = w.baseAddress { ck_unpack_strips(k, n, p, w) }
            }
        }
        #expect(unpacked == weight)
        #expect(weight.withUnsafeBytes { w in packed.withUnsafeBytes { ck_packed_equal(k, n, w.baseAddress, $0.baseAddress) } } == 1)
        var changed = packed
        changed[k * n - 1] = changed[k * n - 1].nextUp  // one bit of the last strip's last row
        #expect(weight.withUnsafeBytes { w in changed.withUnsafeBytes { ck_packed_equal(k, n, w.baseAddress, $0.baseAddress) } } == 0)
    }

    /// The transposed layout (a patch embedding's weight [n, k] stored as strips of its [k, n]
    /// transpose): each value where the header says, unpacking and the bitwise comparison invert it.
    @Test func transposedPackingRoundTrips() {
        let k = 7, n = 64
        let weight = (0..<(k * n)).map { Float($0) - 100 }  // row-major [n, k]
        var packed = [Float](repeating: .nan, count: k * n)
        weight.withUnsafeBufferPointer { w in
            packed.withUnsafeMutableBufferPointer { p in
                if let w = w.baseAddress, let p = p.baseAddress { ck_pack_strips_transposed(k, n, w, p) }
            }
        }
        for j in 0..<n {
            for p in 0..<k { #expect(packed[((j / 32) * k + p) * 32 + j % 32] == weight[j * k + p], "W[\(j), \(p)]") }
        }
        var unpacked = [Float](repeating: 0, count: k * n)
        packed.withUnsafeBufferPointer { p in
            unpacked.withUnsafeMutableBufferPointer { w in
                if let p = p.baseAddress, let w = w.baseAddress { ck_unpack_strips_transposed(k, n, p, w) }
            }
        }
        #expect(unpacked == weight)
        #expect(weight.withUnsafeBytes { w in packed.withUnsafeBytes { ck_packed_equal_transposed(k, n, w.baseAddress, $0.baseAddress) } } == 1)
        for index in [0, k * n / 2, k * n - 1] {
            var changed = packed
            changed[index] = Float(bitPattern: changed[index].bitPattern ^ 1)  // one bit
            #expect(weight.withUnsafeBytes { w in changed.withUnsafeBytes { ck_packed_equal_transposed(k, n, w.baseAddress, $0.baseAddress) } } == 0)
        }
    }

    @Test(arguments: [(1, 1, 32), (2, 7, 64), (3, 64, 32), (4, 65, 96), (5, 31, 32), (6, 128, 64), (7, 97, 32),
                      (8, 512, 128), (9, 70, 64), (11, 19, 160), (12, 128, 32), (13, 45, 64), (15, 33, 96),
                      (16, 96, 64), (17, 257, 32), (23, 40, 64), (50, 300, 96),
                      // The AVX2 kernel's k blocks (768 rows): one full block, a block and a row, two and a tail.
                      (5, 768, 32), (10, 769, 64), (6, 1600, 32)])
    func kernelMatchesReference(rows: Int, k: Int, n: Int) {
        var generator = SplitMix64(seed: UInt64(rows * 7919 + k * 31 + n))
        let x = generator.floats(rows * k, -1, 1)
        let weight = generator.floats(k * n, -0.2, 0.2)
        let start = generator.floats(rows * n, -1, 1)
        let packed = Self.pack(weight, k: k, n: n)
        for path in Self.paths {
            for accumulate in [false, true] {
                var output = start
                Self.run(path, rows: rows, k: k, n: n, x: x, packed: packed, strips: 0..<(n / 32), accumulate: accumulate, into: &output)
                let expected = Self.reference(rows: rows, k: k, n: n, x: x, weight: weight, start: accumulate ? start : nil)
                let error = maxMixedError(output, expected)
                #expect(error < 1e-5, "path \(path) rows \(rows) k \(k) n \(n) accumulate \(accumulate): \(error)")
            }
        }
    }

    /// Any split of the strips (what threads take) gives the same bits as one call, and columns
    /// outside the strips given are never written; the threaded wrapper equals one call too.
    @Test(arguments: [(8, 200, 160), (13, 64, 96), (400, 96, 128), (11, 1000, 96)])
    func stripSplitsAreBitIdentical(rows: Int, k: Int, n: Int) throws {
        var generator = SplitMix64(seed: UInt64(99 + rows))
        let x = generator.floats(rows * k, -1, 1)
        let weight = generator.floats(k * n, -1, 1)
        let packed = Self.pack(weight, k: k, n: n)
        let strips = n / 32
        for path in Self.paths {
            var whole = [Float](repeating: 0, count: rows * n)
            Self.run(path, rows: rows, k: k, n: n, x: x, packed: packed, strips: 0..<strips, accumulate: false, into: &whole)
            for cut in 1..<strips {
                var split = [Float](repeating: .nan, count: rows * n)
                Self.run(path, rows: rows, k: k, n: n, x: x, packed: packed, strips: cut..<strips, accumulate: false, into: &split)
                // Only columns from the cut on were written so far.
                #expect((0..<rows).allSatisfy { row in (0..<(cut * 32)).allSatisfy { split[row * n + $0].isNaN } })
                Self.run(path, rows: rows, k: k, n: n, x: x, packed: packed, strips: 0..<cut, accumulate: false, into: &split)
                #expect(split == whole, "path \(path) cut at strip \(cut)")
            }
            var threaded = [Float](repeating: 0, count: rows * n)
            let tensor = try Tensor(weight, shape: [k, n]).packedStripsCopy()
            let strip = try #require(tensor.floatPackedStrips())
            x.withUnsafeBufferPointer { a in
                threaded.withUnsafeMutableBufferPointer { c in
                    guard let a = a.baseAddress, let c = c.baseAddress else { return }
                    PackedGEMM.multiply(rows: rows, a: a, lda: k, weights: strip, c: c, ldc: n, accumulate: false, path: path)
                }
            }
            #expect(threaded == whole, "path \(path) threaded")
        }
    }

    /// An A of more than 8 MB is walked in row blocks (PackedGEMM.c, A_LARGE_BYTES): 2100 rows of
    /// 1024 (8.6 MB) make blocks of 512 rows and a last one of 52 (with a 4-row tail). Each vector
    /// kernel agrees with the portable one, and with itself over any split of the strips.
    @Test func largeActivationsAreWalkedInRowBlocks() throws {
        let rows = 2100, k = 1024, n = 96
        var generator = SplitMix64(seed: 4242)
        let x = generator.floats(rows * k, -1, 1)
        let weight = generator.floats(k * n, -0.1, 0.1)
        let packed = Self.pack(weight, k: k, n: n)
        var plain = [Float](repeating: 0, count: rows * n)
        Self.run(.portable, rows: rows, k: k, n: n, x: x, packed: packed, strips: 0..<3, accumulate: false, into: &plain)
        for path in Self.fastPaths {
            var fast = [Float](repeating: 0, count: rows * n), split = fast
            Self.run(path, rows: rows, k: k, n: n, x: x, packed: packed, strips: 0..<3, accumulate: false, into: &fast)
            #expect(maxMixedError(fast, plain) < 1e-5, "path \(path)")
            Self.run(path, rows: rows, k: k, n: n, x: x, packed: packed, strips: 1..<3, accumulate: false, into: &split)
            Self.run(path, rows: rows, k: k, n: n, x: x, packed: packed, strips: 0..<1, accumulate: false, into: &split)
            #expect(split == fast, "path \(path)")
        }
    }

    /// Rows of A a multiple of 1024 floats apart go through a padded copy on the AVX2 path
    /// (`PackedGEMM.multiply`); the gaps between A's rows hold NaN, so reading past a row's k
    /// values, or the copy's pitch taken wrongly, would show. Every path agrees with the Double
    /// reference, with and without accumulate, and the copy made 6 rows at a time (13 rows: blocks
    /// of 6, 6 and 1) gives the same bits as one block.
    @Test(arguments: [(7, 1024, 1024), (13, 1024, 2048), (6, 2048, 2048), (5, 1024, 1024)])
    func activationRowsAtPageMultiplesAgree(rows: Int, k: Int, lda: Int) throws {
        var generator = SplitMix64(seed: UInt64(rows * 31 + k + lda))
        let values = generator.floats(rows * k, -1, 1)
        var x = [Float](repeating: .nan, count: rows * lda)
        for row in 0..<rows { for p in 0..<k { x[row * lda + p] = values[row * k + p] } }
        let n = 64
        let weight = generator.floats(k * n, -0.1, 0.1)
        let start = generator.floats(rows * n, -1, 1)
        let tensor = try Tensor(weight, shape: [k, n]).packedStripsCopy()
        let strips = try #require(tensor.floatPackedStrips())
        for path in Self.paths {
            for accumulate in [false, true] {
                var output = start
                // Through `multiply`, then through the row copy with blocks of 6 rows.
                var blocked = start
                x.withUnsafeBufferPointer { a in
                    guard let a = a.baseAddress else { return }
                    output.withUnsafeMutableBufferPointer { c in
                        guard let c = c.baseAddress else { return }
                        PackedGEMM.multiply(rows: rows, a: a, lda: lda, weights: strips, c: c, ldc: n,
                                            accumulate: accumulate, path: path)
                    }
                    blocked.withUnsafeMutableBufferPointer { c in
                        guard let c = c.baseAddress else { return }
                        PackedGEMM.multiplyCopyingRows(rows: rows, a: a, lda: lda, weights: strips, strips: 0..<strips.strips,
                                                       c: c, ldc: n, accumulate: accumulate, path: path,
                                                       blockBytes: 6 * (k + 16) * 4)
                    }
                }
                let expected = Self.reference(rows: rows, k: k, n: n, x: values, weight: weight, start: accumulate ? start : nil)
                #expect(maxMixedError(output, expected) < 1e-5, "path \(path) rows \(rows) k \(k) lda \(lda) accumulate \(accumulate)")
                #expect(blocked == output, "path \(path) rows \(rows): the copy's row blocks change the result")
            }
        }
    }

    /// `linear` (bias, residual, QuickGELU) and `matmul` on a packed weight agree with the same
    /// calls on the row-major weight, and never make the contiguous copy; a reader that does not
    /// know the layout still sees the row-major values.
    @Test(arguments: [1, 8, 12, 50, 403])
    func linearAndMatmulOnPackedWeights(rows: Int) throws {
        var generator = SplitMix64(seed: UInt64(rows + 5))
        let x = try randomTensor([rows, 96], &generator)
        let weight = try randomTensor([96, 64], &generator, -0.3, 0.3)
        let bias = try randomTensor([64], &generator)
        let residual = try randomTensor([rows, 64], &generator)
        let packed = try weight.packedStripsCopy()
        let strips = try #require(packed.floatPackedStrips())
        for (useBias, useResidual, activation) in [(false, false, LinearActivation.none), (true, false, .none),
                                                   (true, true, .none), (true, false, .quickGELU), (false, true, .quickGELU)] {
            let fast = try linear(x, weight: packed, bias: useBias ? bias : nil, residual: useResidual ? residual : nil,
                                  activation: activation)
            let plain = try linear(x, weight: weight, bias: useBias ? bias : nil, residual: useResidual ? residual : nil,
                                   activation: activation)
            #expect(try maxMixedError(fast.toArray(Float.self), plain.toArray(Float.self)) < 1e-5,
                    "rows \(rows) bias \(useBias) residual \(useResidual) \(activation)")
        }
        let product = try matmul(x, packed)
        let plain = try matmul(x, weight)
        #expect(product.shape == [rows, 64])
        #expect(try maxMixedError(product.toArray(Float.self), plain.toArray(Float.self)) < 1e-5)
        #expect(!strips.hasContiguousCopy)
        #expect(try packed.toArray(Float.self) == weight.toArray(Float.self))
        #expect(strips.hasContiguousCopy)
    }
}
