import Testing
@testable import Tensor

@Suite struct ReduceTests {
    func check(_ shape: [Int], axes: [Int], keepDims: Bool, expected: [Int]) throws {
        var generator = SplitMix64(seed: UInt64(shape.reduce(1, *) + axes.count))
        let x = try randomTensor(shape, &generator)
        for mean in [false, true] {
            let fast = mean ? try reduceMean(x, axes: axes, keepDims: keepDims) : try reduceSum(x, axes: axes, keepDims: keepDims)
            let reference = try ReferenceKernels.reduce(x, axes: axes, keepDims: keepDims, mean: mean)
            #expect(fast.shape == expected, "\(shape) axes \(axes)")
            #expect(maxMixedError(try fast.toArray(Float.self), try reference.toArray(Float.self)) < 1e-5, "\(shape) axes \(axes) mean \(mean)")
        }
    }

    @Test func lastAxis() throws {
        try check([77, 2, 512], axes: [-1], keepDims: true, expected: [77, 2, 1])
        try check([50, 768], axes: [1], keepDims: false, expected: [50])
        try check([3, 4, 5], axes: [1, 2], keepDims: false, expected: [3])
        try check([300, 301], axes: [-1], keepDims: true, expected: [300, 1])
    }

    @Test func nonLastAxes() throws {
        try check([2, 8, 512], axes: [1], keepDims: false, expected: [2, 512]) // fusion: mean over frames
        try check([5, 7, 9], axes: [0], keepDims: true, expected: [1, 7, 9])
        try check([5, 7, 9], axes: [0, 2], keepDims: false, expected: [7])
        try check([4, 1, 6, 3], axes: [1, 3], keepDims: true, expected: [4, 1, 6, 1])
        try check([4, 3, 2, 5], axes: [-3, 0], keepDims: false, expected: [2, 5])
    }

    @Test func allAxesAndNone() throws {
        try check([3, 5, 7], axes: [0, 1, 2], keepDims: false, expected: [])
        try check([3, 5, 7], axes: [0, 1, 2], keepDims: true, expected: [1, 1, 1])
        try check([3, 5], axes: [], keepDims: true, expected: [3, 5])
    }

    @Test func emptyReductionAndBadAxes() throws {
        let empty = try Tensor.zeros(.float32, shape: [3, 0])
        #expect(try reduceSum(empty, axes: [1], keepDims: false).toArray(Float.self) == [0, 0, 0])
        let emptyMean = try reduceMean(empty, axes: [1], keepDims: false).toArray(Float.self)
        #expect(emptyMean.count == 3 && emptyMean.allSatisfy { $0.isNaN })
        let x = try Tensor.zeros(.float32, shape: [2, 3])
        #expect(throws: KernelError.self) { try reduceMean(x, axes: [2], keepDims: true) }
        #expect(throws: KernelError.self) { try reduceMean(x, axes: [1, -1], keepDims: true) }
    }

    @Test func argMaxTiesNaNAndInt64() throws {
        let ties = try Tensor([Float(1), 3, 3, 2, 5, 5, 5, 0], shape: [2, 4])
        #expect(try argMax(ties, axis: -1, keepDims: false).toArray(Int64.self) == [1, 0])
        #expect(try argMax(ties, axis: 1, keepDims: true, selectLastIndex: true).toArray(Int64.self) == [2, 2])
        #expect(try argMax(ties, axis: 1, keepDims: true).shape == [2, 1])
        #expect(try argMax(ties, axis: 0, keepDims: false).toArray(Int64.self) == [1, 1, 1, 0])
        let withNaN = try Tensor([Float(1), .nan, 9, .nan], shape: [4])
        #expect(try argMax(withNaN, axis: 0, keepDims: false).toArray(Int64.self) == [1])
        // EOT lookup: int64 token ids, the largest id 49407 marks the end of text.
        let tokens = try Tensor([Int64(49406), 320, 1929, 49407, 0, 0], shape: [1, 6])
        let eot = try argMax(tokens, axis: -1, keepDims: false)
        #expect(eot.shape == [1] && eot.int64s[0] == 3)
        var generator = SplitMix64(seed: 8)
        let cube = try randomTensor([3, 5, 4], &generator)
        let middle = try argMax(cube, axis: 1, keepDims: false)
        let values = cube.floats
        for block in 0..<3 {
            for column in 0..<4 {
                let candidates = (0..<5).map { values[block * 20 + $0 * 4 + column] }
                let best = candidates.firstIndex(of: candidates.max() ?? 0) ?? -1
                #expect(middle.int64s[block * 4 + column] == Int64(best))
            }
        }
        #expect(throws: KernelError.self) { try argMax(ties, axis: 2, keepDims: false) }
    }
}
