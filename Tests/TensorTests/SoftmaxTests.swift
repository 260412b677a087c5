import Testing
import Foundation
import CKernels
@testable import Tensor

@Suite struct SoftmaxTests {
    @Test func rowsMatchReferenceForOddWidths() throws {
        var generator = SplitMix64(seed: 13)
        for (rows, columns) in [(12 * 50, 50), (77, 77), (8, 8), (3, 1000), (5, 1), (160, 513)] {
            let values = generator.floats(rows * columns, -8, 8)
            let result = try softmaxCoerced(Tensor(values, shape: [rows, columns]), axis: 1)
            #expect(maxMixedError(try result.toArray(Float.self), ReferenceKernels.softmaxRows(values, rows: rows, columns: columns)) < 1e-6)
        }
    }

    @Test func negativeInfinityMaskAndAllMaskedRow() throws {
        var generator = SplitMix64(seed: 17)
        var values = generator.floats(4 * 77, -3, 3)
        for row in 0..<3 { for column in (row + 1)..<77 { values[row * 77 + column] = -.infinity } }
        for column in 0..<77 { values[3 * 77 + column] = -.infinity }
        let result = try softmax(Tensor(values, shape: [4, 77]), axis: -1).toArray(Float.self)
        #expect(result[0] == 1 && result[1] == 0)
        #expect(abs(result[77] + result[78] - 1) < 1e-6 && result[79] == 0)
        #expect(maxMixedError(Array(result[0..<231]), Array(ReferenceKernels.softmaxRows(values, rows: 4, columns: 77)[0..<231])) < 1e-6)
        // A fully masked row is NaN, as in numpy/torch.
        #expect(result[(3 * 77)..<(4 * 77)].allSatisfy { $0.isNaN })
    }

    @Test func perAxisSoftmaxOnInnerAxis() throws {
        var generator = SplitMix64(seed: 19)
        let shape = [2, 3, 4]
        let values = generator.floats(24, -4, 4)
        let result = try softmax(Tensor(values, shape: shape), axis: 1).toArray(Float.self)
        for block in 0..<2 {
            for column in 0..<4 {
                let line = (0..<3).map { Double(values[block * 12 + $0 * 4 + column]) }
                let maximum = line.max() ?? 0
                let total = line.map { Foundation.exp($0 - maximum) }.reduce(0, +)
                for position in 0..<3 {
                    let expected = Foundation.exp(line[position] - maximum) / total
                    #expect(abs(Double(result[block * 12 + position * 4 + column]) - expected) < 1e-6)
                }
            }
        }
    }

    @Test func coercionBeforeOpset13DiffersFromPerAxis() throws {
        var generator = SplitMix64(seed: 23)
        let x = try randomTensor([2, 3, 4], &generator)
        let coerced = try softmaxCoerced(x, axis: 1).toArray(Float.self)
        let perAxis = try softmax(x, axis: 1).toArray(Float.self)
        // Coerced: each of the 2 rows of 12 sums to 1.
        #expect(abs(coerced[0..<12].reduce(0, +) - 1) < 1e-5)
        #expect(maxMixedError(coerced, ReferenceKernels.softmaxRows(try x.toArray(Float.self), rows: 2, columns: 12)) < 1e-6)
        #expect(maxMixedError(coerced, perAxis) > 1e-3)
        // On the last axis both agree.
        #expect(maxMixedError(try softmaxCoerced(x, axis: 2).toArray(Float.self), try softmax(x, axis: -1).toArray(Float.self)) < 1e-7)
        #expect(throws: KernelError.self) { try softmax(x, axis: 3) }
    }

    /// The AVX2 row kernel (C) against the portable Swift SIMD version and the Double reference,
    /// relative to each probability: widths with every tail length, masked (-inf) entries, large
    /// spreads; and rows with NaN, only -inf or +inf give NaN everywhere on both paths.
    @Test func rowKernelsAgree() throws {
        func relativeError(_ a: [Float], _ b: [Float]) -> Double {
            zip(a, b).map { abs(Double($0) - Double($1)) / max(Double(abs($1)), 1e-30) }.max() ?? 0
        }
        let portable: (UnsafePointer<Float>, UnsafeMutablePointer<Float>, Int) -> Void = { VectorMath.portableSoftmaxRow($0, $1, count: $2) }
        let fast: (UnsafePointer<Float>, UnsafeMutablePointer<Float>, Int) -> Void = { ck_softmax_row_avx2($0, $1, $2) }
        var generator = SplitMix64(seed: 31)
        for count in [1, 2, 7, 8, 9, 15, 16, 17, 50, 77, 482, 1000] {
            for spread: Float in [1, 8, 30] {
                var values = generator.floats(count, -spread, spread)
                if count > 4 { for index in stride(from: 1, to: count, by: 3) { values[index] = -.infinity } }
                let expected = ReferenceKernels.softmaxRows(values, rows: 1, columns: count)
                let slow = applyKernel(values, portable)
                // float32 rounds x - max (up to 60 here) before the exponential: a few 1e-6 relative.
                #expect(relativeError(slow, expected) < 1e-5, "portable, \(count) wide, spread \(spread)")
                guard CPUFeatures.avx2 else { continue }  // no AVX2 here: the portable kernel is the one in use
                let quick = applyKernel(values, fast)
                #expect(relativeError(quick, expected) < 1e-5, "AVX2, \(count) wide, spread \(spread)")
                // Same shift and argument on both paths: they differ only by FMA and summation order.
                #expect(relativeError(quick, slow) < 1e-6, "AVX2 against portable, \(count) wide, spread \(spread)")
                #expect(zip(quick, expected).allSatisfy { ($0 == 0) == ($1 == 0) }, "masked entries are exactly 0")
                let inPlace = values.withUnsafeBufferPointer { input -> [Float] in
                    var copy = Array(input)
                    copy.withUnsafeMutableBufferPointer { buffer in
                        if let base = buffer.baseAddress { ck_softmax_row_avx2(base, base, count) }
                    }
                    return copy
                }
                #expect(inPlace == quick, "in place equals out of place")
            }
        }
        for special: [Float] in [[1, .nan, 2, 3, 4, 5, 6, 7, 8, 9], [.nan], Array(repeating: -.infinity, count: 11),
                                 [0, 1, .infinity, 2, 3, 4, 5, 6, 7]] {
            #expect(applyKernel(special, portable).allSatisfy { $0.isNaN }, "portable \(special)")
            guard CPUFeatures.avx2 else { continue }
            #expect(applyKernel(special, fast).allSatisfy { $0.isNaN }, "AVX2 \(special)")
        }
    }

    /// Rough softmax speed on the attention shape [N*12, 50, 50] (printed).
    @Test func softmaxThroughput() throws {
        var generator = SplitMix64(seed: 29)
        let x = try randomTensor([96, 50, 50], &generator, -5, 5)
        _ = try softmax(x, axis: 2)
        let clock = ContinuousClock()
        let elapsed = try clock.measure { for _ in 0..<10 { _ = try softmax(x, axis: 2) } }
        let seconds = Double(elapsed.components.attoseconds) * 1e-18 + Double(elapsed.components.seconds)
        print("softmax [96,50,50]: \(String(format: "%.3f", seconds / 10 * 1000)) ms (\(String(format: "%.2f", seconds / 10 / Double(x.count) * 1e9)) ns/element)")
        #expect(seconds > 0)
    }
}
