import Testing
import CKernels
@testable import Tensor

/// Fast fused kernels (linear with epilogue, self-attention) against the Double references,
/// on odd shapes (rows 50, 77, 8; K 768; lengths not multiples of 16).
@Suite struct FusedKernelTests {
    @Test(arguments: [(50, 768, 40), (77, 37, 53), (8, 19, 3), (8, 512, 100), (16, 33, 64)])
    func linearMatchesReference(rows: Int, k: Int, n: Int) throws {
        var generator = SplitMix64(seed: UInt64(rows * 1000 + k))
        let x = try randomTensor([rows, k], &generator)
        let weight = try randomTensor([k, n], &generator, -0.2, 0.2)
        let bias = try randomTensor([n], &generator)
        let residual = try randomTensor([rows, n], &generator)
        for (useResidual, gelu) in [(false, false), (true, false), (false, true)] {
            let fast = try linear(x, weight: weight, bias: bias, residual: useResidual ? residual : nil,
                                  activation: gelu ? .quickGELU : .none)
            let expected = try ReferenceKernels.linear(x.toArray(Float.self), rows: rows, k: k, weight: weight.toArray(Float.self), n: n,
                                                   bias: bias.toArray(Float.self), residual: useResidual ? residual.toArray(Float.self) : nil,
                                                   quickGELU: gelu)
            #expect(fast.shape == [rows, n])
            #expect(try maxMixedError(fast.toArray(Float.self), expected) < 1e-5)
        }
    }

    @Test func linearKeepsLeadingDimsAndBroadcastsAResidual() throws {
        var generator = SplitMix64(seed: 7)
        let x = try randomTensor([5, 3, 17], &generator)
        let weight = try randomTensor([17, 9], &generator)
        let bias = try randomTensor([9], &generator)
        let residual = try randomTensor([9], &generator)   // broadcast like Add
        let fast = try linear(x, weight: weight, bias: bias, residual: residual)
        let plain = try binary(.add, residual, try binary(.add, try matmul(x, weight), bias))
        #expect(fast.shape == [5, 3, 9])
        #expect(try maxMixedError(fast.toArray(Float.self), plain.toArray(Float.self)) < 1e-5)
        #expect(throws: KernelError.self) { try linear(x, weight: try randomTensor([16, 9], &generator), bias: bias) }
        #expect(throws: KernelError.self) { try linear(x, weight: weight, bias: try randomTensor([8], &generator)) }
    }

    /// A random attention block: x [L, N, E], the packed and output projections, and a causal
    /// mask's values [L, L].
    static func attentionBlock(_ length: Int, _ batch: Int, _ embed: Int, _ generator: inout SplitMix64) throws
        -> (x: Tensor, inWeight: Tensor, inBias: Tensor, outWeight: Tensor, outBias: Tensor, mask: [Float]) {
        let x = try randomTensor([length, batch, embed], &generator)
        let inWeight = try randomTensor([embed, 3 * embed], &generator, -0.3, 0.3)
        let inBias = try randomTensor([3 * embed], &generator)
        let outWeight = try randomTensor([embed, embed], &generator, -0.3, 0.3)
        let outBias = try randomTensor([embed], &generator)
        var mask = [Float](repeating: 0, count: length * length)
        for row in 0..<length { for column in (row + 1)..<max(row + 1, length) { mask[row * length + column] = -.infinity } }
        return (x, inWeight, inBias, outWeight, outBias, mask)
    }

    // Head sizes 12, 16, 20, 32 and 64; the text (7, 77), fusion (8) and image (50) lengths.
    @Test(arguments: [(50, 2, 64, 4, false), (77, 1, 48, 3, true), (7, 3, 24, 2, true), (17, 2, 32, 1, false),
                      (64, 1, 128, 2, true), (65, 2, 40, 2, true), (8, 1, 64, 4, false), (4, 5, 64, 1, true)])
    func selfAttentionMatchesReference(length: Int, batch: Int, embed: Int, heads: Int, masked: Bool) throws {
        var generator = SplitMix64(seed: UInt64(length * 31 + embed))
        let (x, inWeight, inBias, outWeight, outBias, maskValues) = try Self.attentionBlock(length, batch, embed, &generator)
        let mask = masked ? try Tensor(maskValues, shape: [1, length, length]) : nil
        let scale = 1 / Float(embed / heads).squareRoot()
        let fast = try selfAttention(x, inWeight: inWeight, inBias: inBias, outWeight: outWeight, outBias: outBias,
                                     mask: mask, residual: nil, heads: heads, scale: scale)
        let expected = try ReferenceKernels.selfAttention(
            x.toArray(Float.self), length: length, batch: batch, embed: embed,
            inWeight: inWeight.toArray(Float.self), inBias: inBias.toArray(Float.self),
            outWeight: outWeight.toArray(Float.self), outBias: outBias.toArray(Float.self),
            mask: masked ? maskValues : nil, heads: heads, scale: scale)
        #expect(fast.shape == [length, batch, embed])
        #expect(try maxMixedError(fast.toArray(Float.self), expected) < 1e-4)
    }

    /// One query position (the `select-rows` rewrite's form) against that position of the full
    /// block and of the Double reference, with and without mask and residual, at every position
    /// of a short sequence and at the ends of the image length.
    @Test(arguments: [(50, 8, 64, 4, false), (7, 3, 24, 2, true), (8, 1, 64, 4, true), (1, 2, 16, 2, false)])
    func selfAttentionAtOneQueryPosition(length: Int, batch: Int, embed: Int, heads: Int, masked: Bool) throws {
        var generator = SplitMix64(seed: UInt64(length * 17 + embed))
        let (x, inWeight, inBias, outWeight, outBias, maskValues) = try Self.attentionBlock(length, batch, embed, &generator)
        let mask = masked ? try Tensor(maskValues, shape: [length, length]) : nil
        let residual = try randomTensor([length, batch, embed], &generator)
        let scale = 1 / Float(embed / heads).squareRoot()
        let full = try selfAttention(x, inWeight: inWeight, inBias: inBias, outWeight: outWeight, outBias: outBias,
                                     mask: mask, residual: residual, heads: heads, scale: scale).toArray(Float.self)
        let reference = try ReferenceKernels.selfAttention(
            x.toArray(Float.self), length: length, batch: batch, embed: embed,
            inWeight: inWeight.toArray(Float.self), inBias: inBias.toArray(Float.self),
            outWeight: outWeight.toArray(Float.self), outBias: outBias.toArray(Float.self),
            mask: masked ? maskValues : nil, heads: heads, scale: scale)
        let residualValues = try residual.toArray(Float.self)
        let positions = length <= 8 ? Array(0..<length) : [0, 1, length - 1]
        for position in positions {
            let rows = (position * batch * embed)..<((position + 1) * batch * embed)
            let residualRows = try Tensor(Array(residualValues[rows]), shape: [batch, embed])
            let one = try selfAttention(x, inWeight: inWeight, inBias: inBias, outWeight: outWeight, outBias: outBias,
                                        mask: mask, residual: residualRows, heads: heads, scale: scale, queryPosition: position)
            #expect(one.shape == [batch, embed])
            let values = try one.toArray(Float.self)
            #expect(maxMixedError(values, Array(full[rows])) < 1e-5)
            #expect(maxMixedError(values, zip(reference[rows], residualValues[rows]).map { $0 + $1 }) < 1e-4)
        }
        #expect(throws: KernelError.self) {
            try selfAttention(x, inWeight: inWeight, inBias: inBias, outWeight: outWeight, outBias: outBias,
                              mask: mask, residual: nil, heads: heads, scale: scale, queryPosition: length)
        }
    }

    /// The per-head kernel on each path (direct AVX2 when the CPU has it, direct portable C,
    /// sgemm) against a Double reference: query, key and value rows spaced out as in the packed
    /// projection, head sizes that are and are not multiples of 8, key counts around the copy
    /// threshold and one query row (the select-rows form).
    @Test(arguments: [(8, 8, 64, true), (1, 50, 64, false), (17, 17, 70, true), (5, 3, 12, false), (20, 20, 64, true),
                      (1, 1, 16, false), (3, 77, 64, true)])
    func attentionHeadsAgreeWithReference(rows: Int, keys: Int, headSize: Int, masked: Bool) throws {
        var generator = SplitMix64(seed: UInt64(rows * 131 + keys * 7 + headSize))
        let stride = 3 * headSize + 5   // rows apart, as the heads of a packed [L, N, 3E] projection
        let count = max(rows, keys) * stride
        let values = (0..<count).map { _ in generator.float(-1, 1) }
        var mask = [Float](repeating: 0, count: rows * keys)
        if masked {
            // Causal from the end: query i sees keys up to keys - rows + i (never none).
            for row in 0..<rows { for key in 0..<keys where key > keys - rows + row { mask[row * keys + key] = -.infinity } }
        }
        let scale: Float = 0.125
        // Double reference: q at offset 0, k at headSize, v at 2 * headSize of each row.
        var expected = [Float](repeating: 0, count: rows * headSize)
        for row in 0..<rows {
            var scores = (0..<keys).map { key -> Double in
                var total = 0.0
                for index in 0..<headSize { total += Double(values[row * stride + index]) * Double(values[key * stride + headSize + index]) }
                return Double(scale) * total + Double(mask[row * keys + key])
            }
            let maximum = scores.max() ?? 0
            scores = scores.map { LibM.exp($0 - maximum) }
            let sum = scores.reduce(0, +)
            for index in 0..<headSize {
                var total = 0.0
                for key in 0..<keys { total += scores[key] / sum * Double(values[key * stride + 2 * headSize + index]) }
                expected[row * headSize + index] = Float(total)
            }
        }
        var paths: [AttentionHeads.Path] = [.portable, .sgemm]
        if AttentionHeads.directPath == .avx2 { paths.append(.avx2) }
        for path in paths {
            var output = [Float](repeating: .nan, count: rows * headSize)
            var scratch = [Float](repeating: .nan, count: AttentionHeads.scratchCount(rows: rows, keys: keys, headSize: headSize))
            values.withUnsafeBufferPointer { source in
                mask.withUnsafeBufferPointer { maskBuffer in
                    output.withUnsafeMutableBufferPointer { out in
                        scratch.withUnsafeMutableBufferPointer { work in
                            guard let base = source.baseAddress, let destination = out.baseAddress,
                                  let workBase = work.baseAddress else { return }
                            AttentionHeads.group(path: path, rows: rows, keys: keys, headSize: headSize,
                                                 query: base, queryStride: stride, key: base + headSize, value: base + 2 * headSize,
                                                 keyStride: stride, scale: scale, mask: masked ? maskBuffer.baseAddress : nil,
                                                 scratch: workBase, output: destination, outputStride: headSize)
                        }
                    }
                }
            }
            #expect(maxMixedError(output, expected) < 1e-5, "path \(path)")
        }
    }

    @Test func selfAttentionRejectsBadShapes() throws {
        var generator = SplitMix64(seed: 3)
        let x = try randomTensor([5, 2, 8], &generator)
        let inWeight = try randomTensor([8, 24], &generator), inBias = try randomTensor([24], &generator)
        let outWeight = try randomTensor([8, 8], &generator), outBias = try randomTensor([8], &generator)
        #expect(throws: KernelError.self) {
            try selfAttention(x, inWeight: inWeight, inBias: inBias, outWeight: outWeight, outBias: outBias,
                              mask: nil, residual: nil, heads: 3, scale: 1)
        }
        #expect(throws: KernelError.self) {
            try selfAttention(x, inWeight: inWeight, inBias: inBias, outWeight: outWeight, outBias: outBias,
                              mask: try randomTensor([4, 4], &generator), residual: nil, heads: 2, scale: 1)
        }
    }

    /// The AVX2 QuickGELU (C) against the portable Swift SIMD version and the Double reference, on
    /// values across the whole range (both signs, both exp limits, tails of 1 to 7 lanes, NaN).
    @Test func quickGELUKernelsAgree() throws {
        var generator = SplitMix64(seed: 41)
        var values = generator.floats(1000, -12, 12) + generator.floats(37, -120, 120)
        values += [0, -0.0, 1e-30, -1e-30, 88, -88, 100, -100, .infinity, -.infinity, .nan, 3e38, -3e38]
        let expected = ReferenceKernels.quickGELU(values)
        let portable = applyKernel(values) { VectorMath.portableQuickGELU($0, $1, count: $2) }
        #expect(maxMixedError(portable, expected) < 1e-6)
        guard CPUFeatures.avx2 else { return }  // no AVX2 on this CPU: the portable kernel is the one in use
        for count in [values.count, 1, 7, 9, 16] {
            let fast = applyKernel(values, count: count) { ck_quick_gelu_avx2($0, $1, $2) }
            #expect(maxMixedError(fast, Array(expected.prefix(count))) < 1e-6, "count \(count)")
            #expect(maxMixedError(fast, Array(portable.prefix(count))) < 1e-6, "count \(count)")
        }
    }
}
