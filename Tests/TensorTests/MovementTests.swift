import Foundation
import Testing
@testable import Tensor

/// Deterministic test data (SplitMix64).
struct MovementRandom {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    mutating func below(_ bound: Int) -> Int { Int(next() % UInt64(bound)) }
}

/// A tensor of random bytes: the movement kernels never look at values, so any bit pattern works.
func randomTensor(_ type: DataType, _ shape: [Int], _ random: inout MovementRandom) throws -> Tensor {
    let tensor = try Tensor.uninitialized(type, shape: shape)
    let bytes = tensor.storage.pointer.assumingMemoryBound(to: UInt8.self)
    for index in 0..<tensor.byteCount { bytes[index] = UInt8(truncatingIfNeeded: random.next()) }
    return tensor
}

func sameBytes(_ a: Tensor, _ b: Tensor) -> Bool {
    a.dataType == b.dataType && a.shape == b.shape && memcmp(a.storage.pointer, b.storage.pointer, a.byteCount) == 0
}

func allPermutations(_ n: Int) -> [[Int]] {
    if n == 0 { return [[]] }
    return allPermutations(n - 1).flatMap { smaller in (0...smaller.count).map { position in
        var permutation = smaller
        permutation.insert(n - 1, at: position)
        return permutation
    } }
}

@Suite struct MovementTests {
    static let elementTypes: [DataType] = [.float32, .int64, .uint8, .float16]

    // MARK: Transpose

    @Test func transposeAllRank3PermutationsMatchReference() throws {
        var random = MovementRandom(seed: 1)
        let shapes = [[5, 7, 9], [37, 12, 29], [1, 7, 9], [3, 1, 4], [50, 8, 1], [0, 3, 2]]
        for type in Self.elementTypes {
            for shape in shapes {
                let tensor = try randomTensor(type, shape, &random)
                for permutation in allPermutations(3) {
                    let fast = try Movement.transpose(tensor, permutation: permutation)
                    let reference = try ReferenceMovement.transpose(tensor, permutation: permutation)
                    #expect(sameBytes(fast, reference), "\(type) \(shape) perm \(permutation)")
                }
            }
        }
    }

    @Test func transposeRank4AndRank2MatchReference() throws {
        var random = MovementRandom(seed: 2)
        let tensor = try randomTensor(.float32, [3, 5, 4, 7], &random)
        for permutation in [[0, 2, 1, 3], [0, 2, 3, 1], [3, 2, 1, 0], [1, 0, 2, 3], [0, 1, 3, 2], [2, 0, 3, 1], [0, 1, 2, 3]] {
            let fast = try Movement.transpose(tensor, permutation: permutation)
            #expect(sameBytes(fast, try ReferenceMovement.transpose(tensor, permutation: permutation)), "perm \(permutation)")
        }
        for type in Self.elementTypes {
            let matrix = try randomTensor(type, [77, 513], &random)
            let fast = try Movement.transpose(matrix, permutation: [1, 0])
            #expect(fast.shape == [513, 77])
            #expect(sameBytes(fast, try ReferenceMovement.transpose(matrix, permutation: [1, 0])))
        }
        let scalar = Tensor(scalar: Float(3))
        #expect(try Movement.transpose(scalar, permutation: []).toArray(Float.self) == [3])
    }

    @Test func transposeValuesAndReduction() throws {
        let tensor = try Tensor((0..<6).map { Float($0) }, shape: [2, 3])
        #expect(try Movement.transpose(tensor, permutation: [1, 0]).toArray(Float.self) == [0, 3, 1, 4, 2, 5])
        #expect(Movement.reducePermutation(shape: [4, 5, 6], permutation: [1, 2, 0]) == ([4, 30], [1, 0]))
        #expect(Movement.reducePermutation(shape: [4, 5, 6], permutation: [2, 0, 1]) == ([20, 6], [1, 0]))
        #expect(Movement.reducePermutation(shape: [4, 1, 6], permutation: [1, 0, 2]) == ([24], [0]))
        #expect(Movement.reducePermutation(shape: [4, 5, 6], permutation: [1, 0, 2]) == ([4, 5, 6], [1, 0, 2]))
        #expect(throws: MovementError.self) { try Movement.transpose(tensor, permutation: [0, 0]) }
        #expect(throws: MovementError.self) { try Movement.transpose(tensor, permutation: [0, 1, 2]) }
        #expect(throws: MovementError.self) { try Movement.transpose(tensor, permutation: [0, 2]) }
    }

    // MARK: Concat and split

    @Test func concatMatchesReferenceOnEveryAxis() throws {
        var random = MovementRandom(seed: 3)
        for type in [DataType.float32, .int64, .bool] {
            for axis in 0..<3 {
                var shapes = [[3, 5, 7], [3, 5, 7], [3, 5, 7]]
                shapes[1][axis] = 2
                shapes[2][axis] = 0
                let tensors = try shapes.map { try randomTensor(type, $0, &random) }
                let fast = try Movement.concat(tensors, axis: axis)
                #expect(fast.shape[axis] == shapes[0][axis] + 2)
                #expect(sameBytes(fast, try ReferenceMovement.concat(tensors, axis: axis)), "\(type) axis \(axis)")
            }
        }
        let a = try Tensor([Int64(1), 2], shape: [2])
        let b = try Tensor([Int64(3)], shape: [1])
        #expect(try Movement.concat([a, b], axis: 0).toArray(Int64.self) == [1, 2, 3])
        #expect(throws: MovementError.self) { try Movement.concat([a, try Tensor([Float(1)], shape: [1])], axis: 0) }
        #expect(throws: MovementError.self) { try Movement.concat([a, try Tensor([Int64(1)], shape: [1, 1])], axis: 0) }
        let wide = try Tensor([Float](repeating: 0, count: 6), shape: [2, 3])
        let narrow = try Tensor([Float](repeating: 0, count: 6), shape: [3, 2])
        #expect(throws: MovementError.self) { try Movement.concat([wide, narrow], axis: 0) }
    }

    @Test func splitMatchesReferenceAndChecksSizes() throws {
        var random = MovementRandom(seed: 4)
        let tensor = try randomTensor(.float32, [4, 9, 2304], &random)
        for (axis, sizes) in [(2, [768, 768, 768]), (1, [2, 0, 7]), (0, [1, 3]), (2, [1, 2302, 1])] {
            let fast = try Movement.split(tensor, axis: axis, sizes: sizes)
            let reference = try ReferenceMovement.split(tensor, axis: axis, sizes: sizes)
            #expect(fast.count == sizes.count)
            for (piece, expected) in zip(fast, reference) { #expect(sameBytes(piece, expected), "axis \(axis) \(sizes)") }
        }
        #expect(throws: MovementError.self) { try Movement.split(tensor, axis: 1, sizes: [4, 4]) }
        #expect(throws: MovementError.self) { try Movement.split(tensor, axis: 1, sizes: [10, -1]) }
        #expect(throws: MovementError.self) { try Movement.split(tensor, axis: 3, sizes: [1]) }
    }

    // MARK: Slice

    @Test func sliceClampingOnAVector() throws {
        let vector = try Tensor((0..<10).map { Int64($0) }, shape: [10])
        let big = Int(Int64.max), small = Int(Int64.min)
        // Expected lists checked against ONNX Runtime's Slice (opset 13).
        let cases: [(Int, Int, Int, [Int64])] = [
            (2, 5, 1, [2, 3, 4]),
            (-3, big, 1, [7, 8, 9]),
            (0, -1, 2, [0, 2, 4, 6, 8]),
            (-100, 100, 3, [0, 3, 6, 9]),
            (big, small, -1, [9, 8, 7, 6, 5, 4, 3, 2, 1, 0]),
            (-1, small, -3, [9, 6, 3, 0]),
            (8, 2, -2, [8, 6, 4]),
            (5, 5, 1, []),
            (5, 2, 1, []),
            (2, 5, -1, []),
            (20, 30, 1, []),
            // ONNX clamps the start into [0, dim-1] for a negative step, so this takes element 0
            // (ONNX Runtime 1.23 agrees; Python's x[-20:-30:-1] would be empty).
            (-20, -30, -1, [0]),
            (-12, -30, -2, [0]),
            (20, 5, -1, [9, 8, 7, 6]),
        ]
        for (start, end, step, expected) in cases {
            let result = try Movement.slice(vector, starts: [start], ends: [end], axes: [0], steps: [step])
            #expect(try result.toArray(Int64.self) == expected, "slice \(start):\(end):\(step)")
            let reference = try ReferenceMovement.slice(vector, starts: [start], ends: [end], axes: [0], steps: [step])
            #expect(sameBytes(result, reference))
        }
        #expect(throws: MovementError.self) { try Movement.slice(vector, starts: [0], ends: [1], axes: [0], steps: [0]) }
        #expect(throws: MovementError.self) { try Movement.slice(vector, starts: [0], ends: [1], axes: [1]) }
        #expect(throws: MovementError.self) { try Movement.slice(vector, starts: [0, 0], ends: [1, 1], axes: [0, -1]) }
    }

    @Test func sliceRandomMultiAxisMatchesReference() throws {
        var random = MovementRandom(seed: 5)
        let shape = [5, 8, 13]
        let tensor = try randomTensor(.float32, shape, &random)
        for _ in 0..<200 {
            var starts: [Int] = [], ends: [Int] = [], axes: [Int] = [], steps: [Int] = []
            for axis in 0..<3 where random.below(3) != 0 {
                let dimension = shape[axis]
                starts.append(random.below(3 * dimension) - dimension - dimension / 2)
                ends.append(random.below(3 * dimension) - dimension - dimension / 2)
                var step = random.below(7) - 3
                if step == 0 { step = 1 }
                steps.append(step)
                axes.append(random.below(2) == 0 ? axis : axis - 3)
            }
            let fast = try Movement.slice(tensor, starts: starts, ends: ends, axes: axes, steps: steps)
            let reference = try ReferenceMovement.slice(tensor, starts: starts, ends: ends, axes: axes, steps: steps)
            #expect(sameBytes(fast, reference), "starts \(starts) ends \(ends) axes \(axes) steps \(steps)")
        }
    }

    // MARK: Gather

    @Test func gatherIndexRanksAndNegativeIndices() throws {
        let data = try Tensor((0..<12).map { Float($0) }, shape: [3, 4])
        let scalarIndex = try Movement.gather(data, indices: Tensor(scalar: Int64(-1)), axis: 0)
        #expect(scalarIndex.shape == [4])
        #expect(try scalarIndex.toArray(Float.self) == [8, 9, 10, 11])
        let column = try Movement.gather(data, indices: Tensor(scalar: Int64(0)), axis: 1)
        #expect(column.shape == [3])
        #expect(try column.toArray(Float.self) == [0, 4, 8])
        let vectorIndex = try Movement.gather(data, indices: try Tensor([Int32(2), -4], shape: [2]), axis: 1)
        #expect(vectorIndex.shape == [3, 2])
        #expect(try vectorIndex.toArray(Float.self) == [2, 0, 6, 4, 10, 8])
        let matrixIndex = try Movement.gather(data, indices: try Tensor([Int64(0), 2, 1, 0], shape: [2, 2]), axis: 0)
        #expect(matrixIndex.shape == [2, 2, 4])
        #expect(try matrixIndex.toArray(Float.self) == [0, 1, 2, 3, 8, 9, 10, 11, 4, 5, 6, 7, 0, 1, 2, 3])
    }

    @Test func gatherMatchesReferenceOnEveryAxis() throws {
        var random = MovementRandom(seed: 6)
        let shape = [4, 6, 5]
        for type in Self.elementTypes {
            let data = try randomTensor(type, shape, &random)
            for axis in -3..<3 {
                let dimension = shape[axis < 0 ? axis + 3 : axis]
                for indexShape in [[], [3], [2, 3], [7, 1, 2]] {
                    let count = indexShape.reduce(1, *)
                    let values = (0..<count).map { _ in Int64(random.below(2 * dimension) - dimension) }
                    let indices = try Tensor(values, shape: indexShape)
                    let fast = try Movement.gather(data, indices: indices, axis: axis)
                    let reference = try ReferenceMovement.gather(data, indices: indices, axis: axis)
                    #expect(sameBytes(fast, reference), "\(type) axis \(axis) index shape \(indexShape)")
                }
            }
        }
    }

    @Test func gatherOutOfRangeIndexIsAnError() throws {
        let data = try Tensor([Float](repeating: 1, count: 12), shape: [3, 4])
        #expect(throws: MovementError.indexOutOfRange(index: 4, axis: 1, dimension: 4)) {
            try Movement.gather(data, indices: try Tensor([Int64(0), 4], shape: [2]), axis: 1)
        }
        #expect(throws: MovementError.indexOutOfRange(index: -4, axis: 0, dimension: 3)) {
            try Movement.gather(data, indices: Tensor(scalar: Int64(-4)), axis: 0)
        }
        let message = MovementError.indexOutOfRange(index: 4, axis: 1, dimension: 4).description
        #expect(message.contains("4") && message.contains("size 4"))
        #expect(throws: MovementError.self) { try Movement.gather(data, indices: Tensor(scalar: Float(0)), axis: 0) }
        #expect(throws: MovementError.self) { try Movement.gather(data, indices: Tensor(scalar: Int64(0)), axis: 2) }
    }

    // MARK: Expand and tile

    @Test func expandMatchesReference() throws {
        var random = MovementRandom(seed: 7)
        let cases: [([Int], [Int])] = [
            ([1, 8], [5, 1]), ([3, 1], [2, 3, 7]), ([1], [4, 5]), ([], [2, 3]), ([2, 1, 3], [1, 4, 1]),
            ([5, 1, 1], [5, 3, 9]), ([1, 1, 7], [3, 5, 7]), ([4], [1]), ([2, 3], [0, 2, 3]), ([1, 1], [1, 1]),
        ]
        for type in Self.elementTypes {
            for (shape, target) in cases {
                let tensor = try randomTensor(type, shape, &random)
                let fast = try Movement.expand(tensor, to: target)
                let reference = try ReferenceMovement.expand(tensor, to: target)
                #expect(sameBytes(fast, reference), "\(type) \(shape) -> \(target)")
            }
        }
        let ids = try Tensor((0..<8).map { Int64($0) }, shape: [1, 8])
        let expanded = try Movement.expand(ids, to: [3, 1])
        #expect(expanded.shape == [3, 8])
        #expect(try expanded.toArray(Int64.self) == Array((0..<8).map { Int64($0) } + (0..<8).map { Int64($0) } + (0..<8).map { Int64($0) }))
        #expect(throws: MovementError.self) { try Movement.expand(ids, to: [3, 4]) }
        #expect(throws: MovementError.self) { try Movement.expand(ids, to: [-1, 8]) }
        #expect(throws: MovementError.self) { try Movement.expand(ids, to: [1 << 40, 1 << 30]) }
    }

    @Test func tileMatchesReference() throws {
        var random = MovementRandom(seed: 8)
        let cases: [([Int], [Int])] = [
            ([2, 3], [3, 2]), ([3], [5]), ([2, 1, 3], [1, 4, 2]), ([2, 3, 4], [1, 1, 1]), ([2, 3], [0, 2]),
            ([5, 7], [2, 1]), ([], []),
        ]
        for type in Self.elementTypes {
            for (shape, repeats) in cases {
                let tensor = try randomTensor(type, shape, &random)
                let fast = try Movement.tile(tensor, repeats: repeats)
                #expect(sameBytes(fast, try ReferenceMovement.tile(tensor, repeats: repeats)), "\(type) \(shape) x \(repeats)")
            }
        }
        let small = try Tensor([Int64(1), 2], shape: [2])
        #expect(try Movement.tile(small, repeats: [3]).toArray(Int64.self) == [1, 2, 1, 2, 1, 2])
        #expect(throws: MovementError.self) { try Movement.tile(small, repeats: [-1]) }
        #expect(throws: MovementError.self) { try Movement.tile(small, repeats: [1, 1]) }
        #expect(throws: MovementError.self) { try Movement.tile(small, repeats: [Int.max]) }
    }

    // MARK: Cast

    @Test func castMatrixOfSmallValues() throws {
        // 0...5 and 100 fit every type; bool sees them as != 0.
        let values: [Double] = [0, 1, 2, 5, 100, 3]
        func make(_ type: DataType) throws -> Tensor {
            let asFloat = try Tensor(values.map { Float($0) }, shape: [2, 3])
            return type == .float32 ? asFloat : try Movement.cast(asFloat, to: type)
        }
        func read(_ tensor: Tensor) throws -> [Double] {
            switch tensor.dataType {
            case .float32: return try tensor.toArray(Float.self).map { Double($0) }
            case .float64: return try tensor.toArray(Double.self)
            case .float16: return try tensor.toArray(Float16.self).map { Double($0) }
            case .int64: return try tensor.toArray(Int64.self).map { Double($0) }
            case .int32: return try tensor.toArray(Int32.self).map { Double($0) }
            case .int8: return try tensor.toArray(Int8.self).map { Double($0) }
            case .uint8: return try tensor.toArray(UInt8.self).map { Double($0) }
            case .bool: return try tensor.toArray(Bool.self).map { $0 ? 1 : 0 }
            }
        }
        for source in DataType.allCases {
            let input = try make(source)
            let sourceValues = try read(input)
            #expect(sourceValues == (source == .bool ? values.map { $0 != 0 ? 1 : 0 } : values), "\(source)")
            for destination in DataType.allCases {
                let output = try Movement.cast(input, to: destination)
                #expect(output.dataType == destination && output.shape == [2, 3])
                let expected = destination == .bool ? sourceValues.map { $0 != 0 ? 1 : 0 } : sourceValues
                #expect(try read(output) == expected, "\(source) -> \(destination)")
            }
        }
    }

    @Test func castFloatToIntegerTruncatesLikeNumpy() throws {
        // Expected values from numpy 2.4 `astype` on x86-64 (identical to ONNX Runtime's Cast).
        let floats = try Tensor([Float.nan, .infinity, -.infinity, 3e9, -3e9, 1e20, -1.7, 2.9, 300.5, -129.5, -0.5],
                                shape: [11])
        #expect(try Movement.cast(floats, to: .int64).toArray(Int64.self) ==
                [.min, .min, .min, 3_000_000_000, -3_000_000_000, .min, -1, 2, 300, -129, 0])
        #expect(try Movement.cast(floats, to: .int32).toArray(Int32.self) ==
                [.min, .min, .min, .min, .min, .min, -1, 2, 300, -129, 0])
        #expect(try Movement.cast(floats, to: .int8).toArray(Int8.self) == [0, 0, 0, 0, 0, 0, -1, 2, 44, 127, 0])
        #expect(try Movement.cast(floats, to: .uint8).toArray(UInt8.self) == [0, 0, 0, 0, 0, 0, 255, 2, 44, 127, 0])
        #expect(try Movement.cast(floats, to: .bool).toArray(Bool.self) ==
                [true, true, true, true, true, true, true, true, true, true, true])
        let zeros = try Tensor([Float(0), -0.0], shape: [2])
        #expect(try Movement.cast(zeros, to: .bool).toArray(Bool.self) == [false, false])
    }

    @Test func castIntegerWrapAndBool() throws {
        let wide = try Tensor([Int64(1) << 40 | 7, -1, 256, -129], shape: [4])
        #expect(try Movement.cast(wide, to: .int32).toArray(Int32.self) == [7, -1, 256, -129])
        #expect(try Movement.cast(wide, to: .uint8).toArray(UInt8.self) == [7, 255, 0, 127])
        #expect(try Movement.cast(wide, to: .bool).toArray(Bool.self) == [true, true, true, true])
        let flags = try Tensor([true, false, true], shape: [3])
        #expect(try Movement.cast(flags, to: .float32).toArray(Float.self) == [1, 0, 1])
        #expect(try Movement.cast(flags, to: .int64).toArray(Int64.self) == [1, 0, 1])
        let big = try Tensor([Int64.max, (1 << 53) + 1], shape: [2])
        #expect(try Movement.cast(big, to: .float64).toArray(Double.self) == [9.223372036854775807e18, 9007199254740992])
        let same = try Tensor([Float(1.5)], shape: [1])
        #expect(try Movement.cast(same, to: .float32).storage === same.storage)
    }

    @Test func castFloat16RoundTrip() throws {
        var random = MovementRandom(seed: 9)
        // Every float16 bit pattern that is finite survives float16 -> float32 -> float16.
        let patterns = (0..<4096).map { _ in UInt16(truncatingIfNeeded: random.next()) }
            .filter { $0 & 0x7C00 != 0x7C00 }
        let halves = try Tensor(patterns.map { Float16(bitPattern: $0) }, shape: [patterns.count])
        let widened = try Movement.cast(halves, to: .float32)
        let back = try Movement.cast(widened, to: .float16)
        #expect(try back.toArray(Float16.self).map(\.bitPattern) == patterns)
        // float32 -> float16 rounds to nearest even and overflows to inf.
        let singles = try Tensor([Float(1) / 3, 70000, -70000, 65504, 1 + 1.0 / 2048], shape: [5])
        let rounded = try Movement.cast(singles, to: .float16).toArray(Float16.self)
        #expect(rounded == [Float16(Float(1) / 3), .infinity, -.infinity, 65504, 1])
        #expect(try Movement.cast(try Tensor([Int64(-3), 2049], shape: [2]), to: .float16).toArray(Float16.self) == [-3, 2048])
        #expect(try Movement.cast(try Tensor([Float16(-2.75)], shape: [1]), to: .int64).toArray(Int64.self) == [-2])
    }

    // MARK: NonZero

    @Test func nonZeroMatchesReference() throws {
        var random = MovementRandom(seed: 10)
        for shape in [[7], [3, 5], [2, 3, 4], [0, 3], [1, 1, 1]] {
            let count = shape.reduce(1, *)
            let values = (0..<count).map { _ in random.below(3) == 0 ? Float(0) : Float(random.below(5)) }
            let tensor = try Tensor(values, shape: shape)
            let fast = try Movement.nonZero(tensor)
            #expect(sameBytes(fast, try ReferenceMovement.nonZero(tensor)), "shape \(shape)")
            let asInt = try Movement.cast(tensor, to: .int64)
            #expect(sameBytes(try Movement.nonZero(asInt), fast))
            let asBool = try Movement.cast(tensor, to: .bool)
            #expect(sameBytes(try Movement.nonZero(asBool), fast))
        }
        let matrix = try Tensor([Int64(0), 5, 0, 7, 0, 9], shape: [2, 3])
        let result = try Movement.nonZero(matrix)
        #expect(result.shape == [2, 3])
        #expect(try result.toArray(Int64.self) == [0, 1, 1, 1, 0, 2])
        let signed = try Tensor([Float(-0.0), .nan, 0], shape: [3])
        #expect(try Movement.nonZero(signed).toArray(Int64.self) == [1])
        #expect(try Movement.nonZero(Tensor(scalar: Int64(3))).shape == [1, 1])
        #expect(try Movement.nonZero(Tensor(scalar: Int64(0))).shape == [1, 0])
    }

    // MARK: Timing of the transposes the networks use (printed, compared with the reference)

    @Test func transposeTimingOnNetworkShapes() throws {
        var random = MovementRandom(seed: 11)
        let cases: [([Int], [Int])] = [([50, 96, 64], [1, 0, 2]), ([50, 96, 64], [1, 2, 0]), ([8, 768, 49], [0, 2, 1])]
        for (shape, permutation) in cases {
            let tensor = try randomTensor(.float32, shape, &random)
            var fast = try Movement.transpose(tensor, permutation: permutation)
            let start = DispatchTime.now().uptimeNanoseconds
            for _ in 0..<10 { fast = try Movement.transpose(tensor, permutation: permutation) }
            let fastTime = Double(DispatchTime.now().uptimeNanoseconds - start) / 10e3
            let referenceStart = DispatchTime.now().uptimeNanoseconds
            let reference = try ReferenceMovement.transpose(tensor, permutation: permutation)
            let referenceTime = Double(DispatchTime.now().uptimeNanoseconds - referenceStart) / 1e3
            #expect(sameBytes(fast, reference))
            print("transpose \(shape) perm \(permutation): fast \(fastTime) us, reference \(referenceTime) us")
        }
    }
}
