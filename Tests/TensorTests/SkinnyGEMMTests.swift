import Testing
import CKernels
@testable import Tensor

/// The skinny-M kernel (both implementations, called explicitly) against the Double reference,
/// on shapes that exercise every row count 1...16, partial column strips (N not a multiple of
/// 8, 16 or 24), K not a multiple of the 32-row block, and the bias / residual / QuickGELU
/// epilogues of `linear`.
@Suite struct SkinnyGEMMTests {
    /// The paths this machine can run: the portable one always, AVX2 when the CPU has it.
    static var paths: [SkinnyGEMM.Path] { SkinnyGEMM.cpuHasAVX2FMA ? [.avx2, .portable] : [.portable] }

    /// `linear` as the engine runs it for small M, but with the kernel path chosen by the test.
    func skinnyLinear(_ x: [Float], rows: Int, k: Int, weight: [Float], n: Int, bias: [Float]?, residual: [Float]?,
                      quickGELU: Bool, path: SkinnyGEMM.Path) -> [Float] {
        var output = [Float](repeating: 0, count: rows * n)
        for row in 0..<rows {
            for column in 0..<n { output[row * n + column] = (bias?[column] ?? 0) + (quickGELU ? 0 : residual?[row * n + column] ?? 0) }
        }
        x.withUnsafeBufferPointer { a in
            weight.withUnsafeBufferPointer { w in
                output.withUnsafeMutableBufferPointer { c in
                    guard let a = a.baseAddress, let w = w.baseAddress, let c = c.baseAddress else { return }
                    SkinnyGEMM.accumulate(rows: rows, k: k, n: n, a: a, w: w, c: c, path: path)
                }
            }
        }
        if quickGELU {
            output.withUnsafeMutableBufferPointer { buffer in
                guard let base = buffer.baseAddress else { return }
                VectorMath.quickGELU(base, base, count: buffer.count)
            }
            if let residual { for index in output.indices { output[index] += residual[index] } }
        }
        return output
    }

    @Test(arguments: [(1, 7, 5), (2, 33, 17), (3, 64, 24), (4, 65, 23), (5, 31, 100), (6, 1, 9), (7, 97, 41),
                      (8, 512, 130), (8, 37, 8), (9, 70, 47), (11, 19, 200), (12, 128, 1), (13, 45, 63),
                      (15, 33, 129), (16, 96, 72), (16, 257, 250)])
    func kernelMatchesReference(rows: Int, k: Int, n: Int) throws {
        var generator = SplitMix64(seed: UInt64(rows * 7919 + k * 31 + n))
        let x = generator.floats(rows * k, -1, 1)
        let weight = generator.floats(k * n, -0.2, 0.2)
        let bias = generator.floats(n, -1, 1)
        let residual = generator.floats(rows * n, -1, 1)
        for path in Self.paths {
            for (useBias, useResidual, gelu) in [(false, false, false), (true, false, false), (true, true, false),
                                                 (true, false, true), (false, true, true)] {
                let fast = skinnyLinear(x, rows: rows, k: k, weight: weight, n: n, bias: useBias ? bias : nil,
                                        residual: useResidual ? residual : nil, quickGELU: gelu, path: path)
                let expected = ReferenceKernels.linear(x, rows: rows, k: k, weight: weight, n: n, bias: useBias ? bias : nil,
                                                       residual: useResidual ? residual : nil, quickGELU: gelu)
                let error = maxMixedError(fast, expected)
                #expect(error < 1e-5, "path \(path) rows \(rows) k \(k) n \(n) bias \(useBias) residual \(useResidual) gelu \(gelu): \(error)")
            }
        }
    }

    /// Weights that start at an odd float offset (not 32-byte aligned) and a column range that
    /// starts mid-strip, through the C entry points directly (AVX2: a sub-matrix of W through its
    /// row stride, k split in two slices and summed by the reduction): other columns stay put.
    @Test func unalignedWeightsAndPartialColumnRanges() throws {
        let rows = 5, k = 41, n = 37
        var generator = SplitMix64(seed: 99)
        let x = generator.floats(rows * k, -1, 1)
        let storage = generator.floats(k * n + 1, -1, 1)
        let weight = Array(storage[1...])
        let start = generator.floats(rows * n, -1, 1)
        for path in Self.paths {
            for (first, end) in [(0, n), (3, 29), (8, 9), (17, 37), (5, 5)] {
                var output = start
                storage.withUnsafeBufferPointer { w in
                    x.withUnsafeBufferPointer { a in
                        output.withUnsafeMutableBufferPointer { c in
                            guard let a = a.baseAddress, let w = w.baseAddress, let c = c.baseAddress else { return }
                            if path == .avx2 {
                                // Two slices of k summed by the reduction, as the threaded path does.
                                let stride = ck_skinny_partial_floats(rows, end - first)
                                let partials = UnsafeMutablePointer<Float>.allocate(capacity: 2 * stride)
                                defer { partials.deallocate() }
                                let split = 17
                                ck_skinny_partial_avx2(rows, split, a, k, w + 1 + first, n, end - first, partials)
                                ck_skinny_partial_avx2(rows, k - split, a + split, k, w + 1 + split * n + first, n, end - first,
                                                       partials + stride)
                                ck_skinny_reduce(rows, end - first, partials, 2, stride, c + first, n, 0, end - first)
                            } else {
                                ck_skinny_gemm_portable(rows, k, a, k, w + 1, n, c, n, first, end)
                            }
                        }
                    }
                }
                var expected = start
                for row in 0..<rows {
                    for column in first..<end {
                        var total = Double(start[row * n + column])
                        for inner in 0..<k { total += Double(x[row * k + inner]) * Double(weight[inner * n + column]) }
                        expected[row * n + column] = Float(total)
                    }
                }
                #expect(maxMixedError(output, expected) < 1e-5, "path \(path) columns \(first)..<\(end)")
            }
        }
    }

    /// The threaded AVX2 kernel gives the same bits on every call, whichever thread takes which
    /// slice of k: 2 threads (4 slices: at least 4 blocks of 16 rows each), 40 calls, each equal to
    /// the slices computed one by one and summed in slice order by the scalar reduction (so the
    /// AVX2 reduction, full 8-row panels 8 columns at a time, is checked against it bit for bit;
    /// 12 and 3 rows and the odd widths take its partial-panel and last-columns paths).
    @Test(arguments: [(8, 512, 300), (12, 256, 77), (3, 320, 40)])
    func threadedKernelIsDeterministic(rows: Int, k: Int, n: Int) throws {
        guard SkinnyGEMM.cpuHasAVX2FMA else { return }
        let parts: Int32 = 2
        let slice = ck_skinny_slice_rows(k, parts)
        var generator = SplitMix64(seed: UInt64(7 + rows))
        let x = generator.floats(rows * k, -1, 1)
        let weight = generator.floats(k * n, -1, 1)
        func threaded() -> [Float] {
            var output = [Float](repeating: 0, count: rows * n)
            x.withUnsafeBufferPointer { a in
                weight.withUnsafeBufferPointer { w in
                    output.withUnsafeMutableBufferPointer { c in
                        guard let a = a.baseAddress, let w = w.baseAddress, let c = c.baseAddress else { return }
                        let partials = UnsafeMutablePointer<Float>.allocate(capacity: ck_skinny_workspace_floats(rows, n, parts))
                        defer { partials.deallocate() }
                        ck_skinny_gemm_avx2(rows, k, a, k, w, n, n, c, n, parts, partials)
                    }
                }
            }
            return output
        }
        var expected = [Float](repeating: 0, count: rows * n)
        x.withUnsafeBufferPointer { a in
            weight.withUnsafeBufferPointer { w in
                expected.withUnsafeMutableBufferPointer { c in
                    guard let a = a.baseAddress, let w = w.baseAddress, let c = c.baseAddress else { return }
                    let stride = ck_skinny_partial_floats(rows, n), slices = (k + slice - 1) / slice
                    let partials = UnsafeMutablePointer<Float>.allocate(capacity: slices * stride)
                    defer { partials.deallocate() }
                    for index in 0..<slices {
                        ck_skinny_partial_avx2(rows, min(slice, k - index * slice), a + index * slice, k, w + index * slice * n, n, n,
                                               partials + index * stride)
                    }
                    ck_skinny_reduce(rows, n, partials, slices, stride, c, n, 0, n)
                }
            }
        }
        for call in 0..<40 {
            let output = threaded()
            #expect(output == expected, "call \(call)")
            if output != expected { break }
        }
    }

    /// `linear` and `matmul` route small M to the kernel and still agree with the reference
    /// (whatever ACTION_CLIP_SKINNY_GEMM says for this process).
    @Test(arguments: [1, 2, 8, 12, 13, 17])
    func linearAndMatmulAroundTheThreshold(rows: Int) throws {
        var generator = SplitMix64(seed: UInt64(rows))
        let x = try randomTensor([rows, 1, 67], &generator)
        let weight = try randomTensor([67, 45], &generator, -0.3, 0.3)
        let bias = try randomTensor([45], &generator)
        let fast = try linear(x, weight: weight, bias: bias, activation: .quickGELU)
        let expected = try ReferenceKernels.linear(x.toArray(Float.self), rows: rows, k: 67, weight: weight.toArray(Float.self),
                                               n: 45, bias: bias.toArray(Float.self), residual: nil, quickGELU: true)
        #expect(try maxMixedError(fast.toArray(Float.self), expected) < 1e-5)
        let product = try matmul(x, weight)
        let plain = try ReferenceKernels.matmul(x, weight)
        #expect(product.shape == [rows, 1, 45])
        #expect(try maxMixedError(product.toArray(Float.self), plain.toArray(Float.self)) < 1e-5)
    }
}
