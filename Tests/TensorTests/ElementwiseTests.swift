import Testing
@testable import Tensor

@Suite struct ElementwiseTests {
    @Test func broadcastShapeRules() throws {
        #expect(try broadcastShapes([], [3, 4]) == [3, 4])
        #expect(try broadcastShapes([2, 1, 4], [3, 1]) == [2, 3, 4])
        #expect(try broadcastShapes([1, 77, 77], [16, 77, 77]) == [16, 77, 77])
        #expect(try broadcastShapes([5, 0], [1]) == [5, 0])
        do {
            _ = try broadcastShapes([2, 3], [4, 3])
            Issue.record("expected a broadcast error")
        } catch {
            #expect(error.message.contains("[2, 3]") && error.message.contains("[4, 3]"))
        }
    }

    /// Fast float op vs the element-by-element reference for one pair of shapes.
    func checkFloat(_ operation: BinaryOperation, _ aShape: [Int], _ bShape: [Int], seed: UInt64 = 11,
                    positive: Bool = false) throws {
        var generator = SplitMix64(seed: seed)
        let low: Float = positive ? 0.1 : -2
        let a = try randomTensor(aShape, &generator, low, 2), b = try randomTensor(bShape, &generator, low, 2)
        let fast = try binary(operation, a, b)
        let reference = try ReferenceKernels.binary(operation, try a.toArray(Float.self), aShape, try b.toArray(Float.self), bShape)
        #expect(fast.shape == reference.shape, "\(operation) \(aShape) \(bShape)")
        #expect(maxMixedError(try fast.toArray(Float.self), reference.values) < 2e-6, "\(operation) \(aShape) \(bShape)")
    }

    @Test func floatOpsOverBroadcastCases() throws {
        let cases: [([Int], [Int])] = [
            ([1001], [1001]),                 // same shape, odd length
            ([70_001], [70_001]),             // large enough to run in parallel chunks
            ([3, 5, 7], []),                  // 0-d scalar on the right
            ([], [3, 5, 7]),                  // 0-d scalar on the left
            ([], []),                         // both 0-d
            ([50, 2, 768], [768]),            // 1-D bias
            ([16, 77, 77], [1, 77, 77]),      // attention-mask broadcast over the leading dim
            ([1, 77, 77], [16, 77, 77]),      // the same, mask first
            ([77, 2, 512], [77, 2, 1]),       // x - mean (LayerNorm)
            ([6, 1], [1, 5]),                 // outer product shape
            ([2, 1, 4, 1], [3, 1, 5]),        // mixed general case
            ([300, 300], [300, 1]),           // large, inner broadcast, parallel over rows
        ]
        for operation in BinaryOperation.allCases {
            for (aShape, bShape) in cases {
                try checkFloat(operation, aShape, bShape, positive: operation == .pow)
            }
        }
    }

    @Test func maskAddKeepsNegativeInfinity() throws {
        var generator = SplitMix64(seed: 5)
        let scores = try randomTensor([16, 77, 77], &generator)
        var mask = [Float](repeating: 0, count: 77 * 77)
        for row in 0..<77 { for column in (row + 1)..<77 { mask[row * 77 + column] = -.infinity } }
        let result = try binary(.add, scores, try Tensor(mask, shape: [1, 77, 77]))
        let values = result.floats
        let masked: Int = 5 * 77 * 77 + 3 * 77 + 4, visible: Int = 5 * 77 * 77 + 4 * 77 + 3
        #expect(values[masked] == -Float.infinity)
        #expect(values[visible] == scores.floats[visible])
        #expect(values.filter { $0 == -.infinity }.count == 16 * 2926)
    }

    @Test func powScalarExponentFastPaths() throws {
        var generator = SplitMix64(seed: 9)
        let base = try randomTensor([3, 333], &generator, 0.1, 3)
        for exponent: Float in [2, 0.5, 1, 3, 0, -1, -0.5, 1.7] {
            let fast = try binary(.pow, base, Tensor(scalar: exponent))
            let reference = try ReferenceKernels.binary(.pow, try base.toArray(Float.self), [3, 333], [exponent], [])
            #expect(maxMixedError(try fast.toArray(Float.self), reference.values) < 1e-6, "exponent \(exponent)")
        }
        let integerExponent = try binary(.pow, base, Tensor(scalar: Int64(2)))
        #expect(maxMixedError(try integerExponent.toArray(Float.self), base.floats.map { $0 * $0 }) < 1e-7)
    }

    @Test func int64DivisionTruncatesTowardZero() throws {
        let a = try Tensor([Int64(-7), 7, -7, 7, 12, 0, Int64.min], shape: [7])
        let b = try Tensor([Int64(2), -2, -2, 2, 12, 5, -1], shape: [7])
        let result = try binary(.div, a, b)
        #expect(try result.toArray(Int64.self) == [-3, -3, 3, 3, 1, 0, Int64.min])
        // Scalar divisor, as in head_dim = embed_dim // heads.
        let headDim = try binary(.div, Tensor(scalar: Int64(768)), Tensor(scalar: Int64(12)))
        #expect(headDim.shape == [] && headDim.int64s[0] == 64)
        let reference = try ReferenceKernels.binary(.div, [Int64(-9), 9, -1, 100], [4], [Int64(4), -4], [2, 1])
        let fast = try binary(.div, try Tensor([Int64(-9), 9, -1, 100], shape: [4]), try Tensor([Int64(4), -4], shape: [2, 1]))
        #expect(try fast.toArray(Int64.self) == reference.values)
    }

    @Test func int64DivisionByZeroThrows() throws {
        let a = try Tensor([Int64(1), 2, 3], shape: [3])
        let b = try Tensor([Int64(1), 0, 3], shape: [3])
        #expect(throws: KernelError.self) { try binary(.div, a, b) }
        #expect(throws: KernelError.self) { try binary(.div, a, Tensor(scalar: Int64(0))) }
    }

    @Test func int64ArithmeticWrapsAndBroadcasts() throws {
        let a = try Tensor([Int64.max, 5, -3], shape: [3])
        #expect(try binary(.add, a, Tensor(scalar: Int64(1))).toArray(Int64.self) == [Int64.min, 6, -2])
        #expect(try binary(.mul, a, Tensor(scalar: Int64(-1))).toArray(Int64.self) == [-Int64.max, -5, 3])
        #expect(try binary(.sub, Tensor(scalar: Int64(0)), a).toArray(Int64.self) == [-Int64.max, -5, 3])
        #expect(try binary(.max, a, Tensor(scalar: Int64(0))).toArray(Int64.self) == [Int64.max, 5, 0])
        #expect(try binary(.min, a, Tensor(scalar: Int64(0))).toArray(Int64.self) == [0, 0, -3])
        #expect(try binary(.pow, Tensor([Int64(3), -2], shape: [2]), Tensor(scalar: Int64(3))).toArray(Int64.self) == [27, -8])
        #expect(throws: KernelError.self) { try binary(.pow, a, Tensor(scalar: Int64(-1))) }
        let column = try Tensor([Int64(10), 20], shape: [2, 1]), row = try Tensor([Int64(1), 2, 3], shape: [3])
        #expect(try binary(.add, column, row).toArray(Int64.self) == [11, 12, 13, 21, 22, 23])
        #expect(throws: KernelError.self) { try binary(.add, a, Tensor(scalar: Float(1))) }
    }

    @Test func comparisons() throws {
        let a = try Tensor([Float(1), 2, .nan, 4], shape: [4])
        #expect(try compare(.equal, a, Tensor(scalar: Float(2))).toArray(Bool.self) == [false, true, false, false])
        #expect(try compare(.less, a, Tensor(scalar: Float(3))).toArray(Bool.self) == [true, true, false, false])
        #expect(try compare(.greater, a, Tensor(scalar: Float(1))).toArray(Bool.self) == [false, true, false, true])
        let ids = try Tensor([Int64(5), -1], shape: [2])
        #expect(try compare(.equal, ids, Tensor([Int64(-1), -1], shape: [2])).toArray(Bool.self) == [false, true])
        let flags = try Tensor([true, false], shape: [2, 1])
        #expect(try compare(.equal, flags, Tensor([true, false], shape: [2])).toArray(Bool.self) == [true, false, false, true])
        #expect(throws: KernelError.self) { try compare(.less, flags, flags) }
        #expect(throws: KernelError.self) { try compare(.equal, ids, a) }
    }

    @Test func whereBroadcastsThreeWays() throws {
        var generator = SplitMix64(seed: 21)
        let conditionValues = (0..<(4 * 1 * 6)).map { _ in generator.next() & 1 == 1 }
        let condition = try Tensor(conditionValues, shape: [4, 1, 6])
        let x = try randomTensor([3, 6], &generator), y = try randomTensor([1, 1], &generator)
        let fast = try select(condition, x, y)
        let reference = try ReferenceKernels.select(conditionValues, [4, 1, 6], try x.toArray(Float.self), [3, 6],
                                                    try y.toArray(Float.self), [1, 1])
        #expect(fast.shape == [4, 3, 6])
        #expect(try fast.toArray(Float.self) == reference.values)
        // The fusion model's shape program: Where(Equal(sz, -1), ones, sz) on int64 1-D.
        let sizes = try Tensor([Int64(2), -1], shape: [2])
        let mask = try compare(.equal, sizes, Tensor(scalar: Int64(-1)))
        let fixed = try select(mask, Tensor([Int64(1), 1], shape: [2]), sizes)
        #expect(try fixed.toArray(Int64.self) == [2, 1])
        let large = try select(Tensor(scalar: true), try randomTensor([300, 300], &generator), Tensor(scalar: Float(0)))
        #expect(large.shape == [300, 300])
        #expect(throws: KernelError.self) { try select(sizes, sizes, sizes) }
        #expect(throws: KernelError.self) { try select(mask, sizes, x) }
    }

    @Test func logicalNotFlipsBools() throws {
        let result = try logicalNot(Tensor([true, false, true], shape: [3]))
        #expect(try result.toArray(Bool.self) == [false, true, false])
        #expect(throws: KernelError.self) { try logicalNot(Tensor(scalar: Float(1))) }
    }
}
