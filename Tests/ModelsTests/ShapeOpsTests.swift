import Testing
import ONNXLoader
import Tensor
@testable import Models


/// Builds a node with `inputCount` inputs and `outputCount` outputs (names are irrelevant to operators).
private func makeNode(_ opType: String, inputs inputCount: Int = 1, outputs outputCount: Int = 1,
                      _ attributes: [String: Attribute] = [:]) -> ONNXNode {
    ONNXNode(name: "", opType: opType, domain: "", inputs: (0..<inputCount).map { "in\($0)" },
             outputs: (0..<outputCount).map { "out\($0)" }, attributes: attributes)
}

/// Builds the operator for a node without attributes at `opset` and runs it once.
private func run<Op: Operator>(_ type: Op.Type, opset: Int, outputs: Int = 1, _ inputs: [Tensor?]) throws -> [Tensor] {
    try run(type, opset: opset, [:], outputs: outputs, inputs)
}

/// Builds the operator for a node at `opset` and runs it once.
private func run<Op: Operator>(_ type: Op.Type, opset: Int, _ attributes: [String: Attribute],
                              outputs: Int = 1, _ inputs: [Tensor?]) throws -> [Tensor] {
    let op = try Op(node: makeNode(String(describing: type), inputs: inputs.count, outputs: outputs, attributes), opset: opset)
    return try op.run(inputs)
}

private func ints(_ values: [Int64]) throws -> Tensor { try Tensor(values, shape: [values.count]) }
private func floatRange(_ shape: [Int]) throws -> Tensor {
    let count = shape.reduce(1, *)
    return try Tensor((0..<count).map { Float($0) }, shape: shape)
}

@Suite struct ShapeOpsTests {
    // MARK: Constant, Identity, Shape, Cast

    @Test func constantAttributesPerOpset() throws {
        let stored = try ints([1, 2, 3])
        #expect(try run(ConstantOperator.self, opset: 10, ["value": .tensor(stored)], [])[0].storage === stored.storage)
        let single = try run(ConstantOperator.self, opset: 12, ["value_float": .float(2.5)], [])[0]
        #expect(try single.shape == [] && single.toArray(Float.self) == [2.5])
        let list = try run(ConstantOperator.self, opset: 13, ["value_ints": .ints([4, -1])], [])[0]
        #expect(try list.shape == [2] && list.toArray(Int64.self) == [4, -1])
        #expect(try run(ConstantOperator.self, opset: 13, ["value_int": .int(7)], [])[0].toArray(Int64.self) == [7])
        #expect(try run(ConstantOperator.self, opset: 13, ["value_floats": .floats([1, 2])], [])[0].shape == [2])
        #expect(throws: OpError.self) { try run(ConstantOperator.self, opset: 11, ["value_float": .float(1)], []) }
        #expect(throws: OpError.self) { try run(ConstantOperator.self, opset: 13, ["sparse_value": .unsupported(kind: "SPARSE_TENSOR")], []) }
        #expect(throws: OpError.self) { try run(ConstantOperator.self, opset: 13, [:], []) }
        #expect(throws: OpError.self) {
            try run(ConstantOperator.self, opset: 13, ["value_int": .int(1), "value_float": .float(1)], [])
        }
    }

    @Test func identityAndShape() throws {
        let input = try floatRange([2, 3, 4])
        #expect(try run(IdentityOperator.self, opset: 13, [input])[0].storage === input.storage)
        let shape = try run(ShapeOperator.self, opset: 10, [input])[0]
        #expect(try shape.dataType == .int64 && shape.shape == [3] && shape.toArray(Int64.self) == [2, 3, 4])
        #expect(try run(ShapeOperator.self, opset: 15, ["start": .int(-2)], [input])[0].toArray(Int64.self) == [3, 4])
        #expect(try run(ShapeOperator.self, opset: 15, ["start": .int(1), "end": .int(2)], [input])[0].toArray(Int64.self) == [3])
        #expect(try run(ShapeOperator.self, opset: 10, [Tensor(scalar: Float(1))])[0].shape == [0])
    }

    @Test func castCodes() throws {
        let values = try Tensor([Float(-1.7), 2.9, 0], shape: [3])
        #expect(try run(CastOperator.self, opset: 10, ["to": .int(7)], [values])[0].toArray(Int64.self) == [-1, 2, 0])
        #expect(try run(CastOperator.self, opset: 10, ["to": .int(9)], [values])[0].toArray(Bool.self) == [true, true, false])
        let sameType = try run(CastOperator.self, opset: 10, ["to": .int(1)], [values])[0]
        #expect(sameType.storage === values.storage)
        #expect(throws: OpError.self) { try run(CastOperator.self, opset: 10, ["to": .int(8)], [values]) }
        #expect(throws: OpError.self) { try run(CastOperator.self, opset: 10, ["to": .int(99)], [values]) }
        #expect(throws: OpError.self) { try run(CastOperator.self, opset: 10, [:], [values]) }
    }

    // MARK: Transpose, Reshape, Flatten

    @Test func transposeDefaultAndExplicitPermutation() throws {
        let input = try floatRange([2, 3, 4])
        let reversed = try run(TransposeOperator.self, opset: 10, [input])[0]
        #expect(reversed.shape == [4, 3, 2])
        #expect(try reversed.toArray(Float.self).prefix(4) == [0, 12, 4, 16])
        let swapped = try run(TransposeOperator.self, opset: 10, ["perm": .ints([1, 0, 2])], [input])[0]
        #expect(swapped.shape == [3, 2, 4])
        #expect(try swapped.toArray(Float.self).prefix(8) == [0, 1, 2, 3, 12, 13, 14, 15])
        let indices = try Tensor([Int64(0), 1, 2, 3, 4, 5], shape: [1, 6])
        #expect(try run(TransposeOperator.self, opset: 10, ["perm": .ints([1, 0])], [indices])[0].shape == [6, 1])
        #expect(throws: OpError.self) { try run(TransposeOperator.self, opset: 10, ["perm": .ints([0, 0, 1])], [input]) }
        #expect(throws: OpError.self) { try run(TransposeOperator.self, opset: 10, ["perm": .ints([1, 0])], [input]) }
    }

    @Test func reshapeZeroAndInferredDimensions() throws {
        let input = try floatRange([2, 3, 4])
        let result = try run(ReshapeOperator.self, opset: 10, [input, try ints([0, -1])])[0]
        #expect(result.shape == [2, 12])
        #expect(result.storage === input.storage)
        #expect(try run(ReshapeOperator.self, opset: 10, [input, try ints([-1, 0, 2])])[0].shape == [4, 3, 2])
        #expect(try run(ReshapeOperator.self, opset: 10, [input, try ints([24])])[0].shape == [24])
        #expect(throws: OpError.self) { try run(ReshapeOperator.self, opset: 10, [input, try ints([-1, -1])]) }
        #expect(throws: OpError.self) { try run(ReshapeOperator.self, opset: 10, [input, try ints([5, -1])]) }
        #expect(throws: OpError.self) { try run(ReshapeOperator.self, opset: 10, [input, try ints([2, 3, 5])]) }
        #expect(throws: OpError.self) { try run(ReshapeOperator.self, opset: 10, [input, try ints([0, 0, 0, 0])]) }
        #expect(throws: OpError.self) { try run(ReshapeOperator.self, opset: 10, [input, try ints([-2, 12])]) }
        #expect(throws: OpError.self) { try run(ReshapeOperator.self, opset: 10, [input, try ints([1 << 40, 1 << 40, 0])]) }
        // Opset 1-4 read the shape from an attribute; opset 14 allowzero makes 0 a real dimension.
        #expect(try run(ReshapeOperator.self, opset: 4, ["shape": .ints([6, -1])], [input])[0].shape == [6, 4])
        let empty = try Tensor([Float](), shape: [0, 3])
        #expect(try run(ReshapeOperator.self, opset: 14, ["allowzero": .int(1)], [empty, try ints([3, 0])])[0].shape == [3, 0])
    }

    @Test func flattenAxesAndOpsetRules() throws {
        let input = try floatRange([2, 3, 4])
        let result = try run(FlattenOperator.self, opset: 10, ["axis": .int(2)], [input])[0]
        #expect(result.shape == [6, 4] && result.storage === input.storage)
        #expect(try run(FlattenOperator.self, opset: 11, ["axis": .int(-1)], [input])[0].shape == [6, 4])
        #expect(try run(FlattenOperator.self, opset: 11, ["axis": .int(-3)], [input])[0].shape == [1, 24])
        #expect(try run(FlattenOperator.self, opset: 10, [input])[0].shape == [2, 12])
        #expect(try run(FlattenOperator.self, opset: 10, ["axis": .int(0)], [input])[0].shape == [1, 24])
        #expect(try run(FlattenOperator.self, opset: 10, ["axis": .int(3)], [input])[0].shape == [24, 1])
        // Negative axes are accepted before opset 11 too, as ONNX Runtime does (torch 1.8.1 writes them).
        #expect(try run(FlattenOperator.self, opset: 10, ["axis": .int(-1)], [input])[0].shape == [6, 4])
        #expect(throws: OpError.self) { try run(FlattenOperator.self, opset: 11, ["axis": .int(4)], [input]) }
    }

    // MARK: Squeeze, Unsqueeze

    @Test func squeezeAxesAttributeAndInput() throws {
        let input = try floatRange([1, 3, 1, 2])
        let byAttribute = try run(SqueezeOperator.self, opset: 10, ["axes": .ints([2])], [input])[0]
        #expect(byAttribute.shape == [1, 3, 2] && byAttribute.storage === input.storage)
        #expect(try run(SqueezeOperator.self, opset: 13, [input, try ints([0, -2])])[0].shape == [3, 2])
        #expect(try run(SqueezeOperator.self, opset: 11, ["axes": .ints([-4])], [input])[0].shape == [3, 1, 2])
        #expect(try run(SqueezeOperator.self, opset: 10, [input])[0].shape == [3, 2])
        #expect(try run(SqueezeOperator.self, opset: 13, [input, nil])[0].shape == [3, 2])
        #expect(throws: OpError.self) { try run(SqueezeOperator.self, opset: 10, ["axes": .ints([1])], [input]) }
        #expect(try run(SqueezeOperator.self, opset: 10, ["axes": .ints([-4])], [input])[0].shape == [3, 1, 2])
        #expect(throws: OpError.self) { try run(SqueezeOperator.self, opset: 13, [input, try ints([0, 0])]) }
        #expect(throws: OpError.self) { try run(SqueezeOperator.self, opset: 13, [input, try ints([4])]) }
    }

    @Test func unsqueezeAxesAttributeAndInput() throws {
        let scalar = Tensor(scalar: Int64(5))
        let byAttribute = try run(UnsqueezeOperator.self, opset: 10, ["axes": .ints([0])], [scalar])[0]
        #expect(byAttribute.shape == [1] && byAttribute.storage === scalar.storage)
        let input = try floatRange([3, 4])
        #expect(try run(UnsqueezeOperator.self, opset: 13, [input, try ints([0, 3])])[0].shape == [1, 3, 4, 1])
        #expect(try run(UnsqueezeOperator.self, opset: 11, ["axes": .ints([-1])], [input])[0].shape == [3, 4, 1])
        #expect(try run(UnsqueezeOperator.self, opset: 10, ["axes": .ints([1, 2])], [input])[0].shape == [3, 1, 1, 4])
        #expect(try run(UnsqueezeOperator.self, opset: 10, ["axes": .ints([-1])], [input])[0].shape == [3, 4, 1])
        #expect(throws: OpError.self) { try run(UnsqueezeOperator.self, opset: 10, [:], [input]) }
        #expect(throws: OpError.self) { try run(UnsqueezeOperator.self, opset: 13, [input]) }
        #expect(throws: OpError.self) { try run(UnsqueezeOperator.self, opset: 13, [input, try ints([4])]) }
        #expect(throws: OpError.self) { try run(UnsqueezeOperator.self, opset: 13, [input, try ints([1, 1])]) }
    }

    // MARK: Split, Concat, Slice

    @Test func splitSizesPerOpset() throws {
        let input = try floatRange([2, 9])
        let byAttribute = try run(SplitOperator.self, opset: 11, ["axis": .int(-1), "split": .ints([3, 3, 3])], outputs: 3, [input])
        #expect(byAttribute.map(\.shape) == [[2, 3], [2, 3], [2, 3]])
        #expect(try byAttribute[1].toArray(Float.self) == [3, 4, 5, 12, 13, 14])
        let byInput = try run(SplitOperator.self, opset: 13, ["axis": .int(1)], outputs: 2, [input, try ints([2, 7])])
        #expect(byInput.map(\.shape) == [[2, 2], [2, 7]])
        #expect(try byInput[0].toArray(Float.self) == [0, 1, 9, 10])
        let equal = try run(SplitOperator.self, opset: 10, outputs: 2, [input])
        #expect(equal.map(\.shape) == [[1, 9], [1, 9]])
        let chunks = try run(SplitOperator.self, opset: 18, ["axis": .int(1), "num_outputs": .int(2)], outputs: 2, [input])
        #expect(chunks.map(\.shape) == [[2, 5], [2, 4]])
        #expect(throws: OpError.self) {
            try run(SplitOperator.self, opset: 10, ["axis": .int(1), "split": .ints([3, 3, 4])], outputs: 3, [input])
        }
        #expect(throws: OpError.self) { try run(SplitOperator.self, opset: 13, ["axis": .int(1)], outputs: 2, [input, try ints([4, 4])]) }
        #expect(throws: OpError.self) { try run(SplitOperator.self, opset: 10, ["axis": .int(1)], outputs: 2, [input]) }
        // graphs.md: the q/k/v Split of a torch 1.8.1 export is axis=-1 at opset 10.
        let negative = try run(SplitOperator.self, opset: 10, ["axis": .int(-1), "split": .ints([3, 3, 3])], outputs: 3, [input])
        #expect(negative.map(\.shape) == [[2, 3], [2, 3], [2, 3]])
        #expect(throws: OpError.self) { try run(SplitOperator.self, opset: 10, ["axis": .int(-1)], outputs: 2, [input]) }
        #expect(throws: OpError.self) { try run(SplitOperator.self, opset: 13, ["axis": .int(1)], outputs: 2, [input, try ints([9])]) }
    }

    @Test func concatAxesAndMismatches() throws {
        let classToken = try floatRange([2, 1, 3])
        let patches = try floatRange([2, 4, 3])
        let joined = try run(ConcatOperator.self, opset: 10, ["axis": .int(1)], [classToken, patches])[0]
        #expect(joined.shape == [2, 5, 3])
        #expect(try joined.toArray(Float.self).prefix(6) == [0, 1, 2, 0, 1, 2])
        let shapes = try run(ConcatOperator.self, opset: 10, ["axis": .int(0)], [try ints([-1]), try ints([16, 64])])[0]
        #expect(try shapes.toArray(Int64.self) == [-1, 16, 64])
        #expect(try run(ConcatOperator.self, opset: 11, ["axis": .int(-2)], [classToken, patches])[0].shape == [2, 5, 3])
        #expect(try run(ConcatOperator.self, opset: 10, ["axis": .int(-2)], [classToken, patches])[0].shape == [2, 5, 3])
        #expect(throws: OpError.self) { try run(ConcatOperator.self, opset: 10, [:], [classToken, patches]) }
        #expect(throws: OpError.self) { try run(ConcatOperator.self, opset: 10, ["axis": .int(0)], [classToken, patches]) }
        #expect(throws: OpError.self) { try run(ConcatOperator.self, opset: 10, ["axis": .int(0)], [try ints([1]), try floatRange([1])]) }
        #expect(throws: OpError.self) { try run(ConcatOperator.self, opset: 10, ["axis": .int(0)], [try ints([1]), try floatRange([1, 1])]) }
    }

    @Test func sliceAttributesBeforeOpset10AndInputsFrom10() throws {
        let input = try floatRange([3, 10])
        let byAttributes = try run(SliceOperator.self, opset: 9,
                                   ["starts": .ints([1, -4]), "ends": .ints([Int64.max, 1000]), "axes": .ints([0, 1])], [input])[0]
        let byInputs = try run(SliceOperator.self, opset: 10,
                               [input, try ints([1, -4]), try ints([Int64.max, 1000]), try ints([0, 1])])[0]
        #expect(byAttributes.shape == [2, 4])
        #expect(try byAttributes.toArray(Float.self) == [16, 17, 18, 19, 26, 27, 28, 29])
        #expect(try byInputs.toArray(Float.self) == byAttributes.toArray(Float.self))
        let reversed = try run(SliceOperator.self, opset: 10,
                               [input, try ints([-1]), try ints([Int64.min]), try ints([1]), try ints([-3])])[0]
        #expect(reversed.shape == [3, 4])
        #expect(try reversed.toArray(Float.self).prefix(4) == [9, 6, 3, 0])
        let noAxes = try run(SliceOperator.self, opset: 10, [input, try ints([0, 2]), try ints([1, 4]), nil, nil])[0]
        #expect(try noAxes.toArray(Float.self) == [2, 3])
        #expect(throws: OpError.self) { try run(SliceOperator.self, opset: 9, ["starts": .ints([0])], [input]) }
        #expect(throws: OpError.self) {
            try run(SliceOperator.self, opset: 10, [input, try ints([0]), try ints([1]), try ints([0]), try ints([0])])
        }
    }

    // MARK: Gather, ConstantOfShape, NonZero, Expand, Tile, Range

    @Test func gatherIndexRanks() throws {
        let table = try floatRange([5, 3])
        let tokens = try Tensor([Int64(4), 0, -1, 2], shape: [2, 2])
        let embedded = try run(GatherOperator.self, opset: 10, [table, tokens])[0]
        #expect(embedded.shape == [2, 2, 3])
        #expect(try embedded.toArray(Float.self) == [12, 13, 14, 0, 1, 2, 12, 13, 14, 6, 7, 8])
        let activations = try floatRange([2, 4, 3])
        let first = try run(GatherOperator.self, opset: 10, ["axis": .int(1)], [activations, Tensor(scalar: Int64(0))])[0]
        #expect(try first.shape == [2, 3] && first.toArray(Float.self) == [0, 1, 2, 12, 13, 14])
        let shape = try ints([8, 50, 768])
        let dimension = try run(GatherOperator.self, opset: 10, [shape, try ints([2])])[0]
        #expect(try dimension.shape == [1] && dimension.toArray(Int64.self) == [768])
        #expect(throws: OpError.self) { try run(GatherOperator.self, opset: 10, [shape, Tensor(scalar: Int64(3))]) }
        #expect(throws: OpError.self) { try run(GatherOperator.self, opset: 10, ["axis": .int(3)], [activations, Tensor(scalar: Int64(0))]) }
    }

    @Test func constantOfShapeValuesAndLimits() throws {
        let zeros = try run(ConstantOfShapeOperator.self, opset: 10, [try ints([2, 1, 3])])[0]
        #expect(try zeros.dataType == .float32 && zeros.shape == [2, 1, 3] && zeros.toArray(Float.self) == [0, 0, 0, 0, 0, 0])
        let ones = try run(ConstantOfShapeOperator.self, opset: 10, ["value": .tensor(try ints([1]))], [try ints([5])])[0]
        #expect(try ones.toArray(Int64.self) == [1, 1, 1, 1, 1])
        let scalar = try run(ConstantOfShapeOperator.self, opset: 10, ["value": .tensor(try ints([9]))], [try ints([])])[0]
        #expect(try scalar.shape == [] && scalar.toArray(Int64.self) == [9])
        #expect(throws: OpError.self) { try run(ConstantOfShapeOperator.self, opset: 10, [try ints([2, -1])]) }
        #expect(throws: OpError.self) { try run(ConstantOfShapeOperator.self, opset: 10, [try ints([1 << 31, 1 << 31])]) }
        #expect(throws: OpError.self) { try run(ConstantOfShapeOperator.self, opset: 10, ["value": .tensor(try ints([1, 2]))], [try ints([2])]) }
    }

    @Test func nonZeroExpandTile() throws {
        let mask = try Tensor([Int64(0), 3, 0, 1], shape: [2, 2])
        let found = try run(NonZeroOperator.self, opset: 10, [mask])[0]
        #expect(try found.shape == [2, 2] && found.toArray(Int64.self) == [0, 1, 1, 1])
        let ids = try Tensor((0..<8).map { Int64($0) }, shape: [1, 8])
        let expanded = try run(ExpandOperator.self, opset: 10, [ids, try ints([3, 1])])[0]
        #expect(try expanded.shape == [3, 8] && Array(expanded.toArray(Int64.self).suffix(8)) == (0..<8).map { Int64($0) })
        #expect(throws: OpError.self) { try run(ExpandOperator.self, opset: 10, [ids, try ints([3, 4])]) }
        #expect(throws: OpError.self) { try run(ExpandOperator.self, opset: 10, [ids, try ints([1 << 40, 1 << 30])]) }
        let tiled = try run(TileOperator.self, opset: 10, [try ints([1, 2]), try ints([2])])[0]
        #expect(try tiled.toArray(Int64.self) == [1, 2, 1, 2])
        #expect(throws: OpError.self) { try run(TileOperator.self, opset: 10, [try ints([1, 2]), try ints([1 << 40])]) }
        #expect(throws: OpError.self) { try run(TileOperator.self, opset: 10, [try ints([1, 2]), try ints([2, 2])]) }
    }

    @Test func rangeCountsAndErrors() throws {
        let integers = try run(RangeOperator.self, opset: 11, [Tensor(scalar: Int64(1)), Tensor(scalar: Int64(10)), Tensor(scalar: Int64(3))])[0]
        #expect(try integers.toArray(Int64.self) == [1, 4, 7])
        let downward = try run(RangeOperator.self, opset: 11, [Tensor(scalar: Int64(5)), Tensor(scalar: Int64(-2)), Tensor(scalar: Int64(-2))])[0]
        #expect(try downward.toArray(Int64.self) == [5, 3, 1, -1])
        let empty = try run(RangeOperator.self, opset: 11, [Tensor(scalar: Int64(5)), Tensor(scalar: Int64(1)), Tensor(scalar: Int64(1))])[0]
        #expect(empty.shape == [0])
        let floats = try run(RangeOperator.self, opset: 11, [Tensor(scalar: Float(0)), Tensor(scalar: Float(1)), Tensor(scalar: Float(0.25))])[0]
        #expect(try floats.toArray(Float.self) == [0, 0.25, 0.5, 0.75])
        let backwards = try run(RangeOperator.self, opset: 11, [Tensor(scalar: Float(0)), Tensor(scalar: Float(-1e30)), Tensor(scalar: Float(1e-30))])[0]
        #expect(backwards.shape == [0])
        #expect(throws: OpError.self) {
            try run(RangeOperator.self, opset: 11, [Tensor(scalar: Int64(0)), Tensor(scalar: Int64(4)), Tensor(scalar: Int64(0))])
        }
        #expect(throws: OpError.self) {
            try run(RangeOperator.self, opset: 11, [Tensor(scalar: Int64(0)), Tensor(scalar: Int64.max), Tensor(scalar: Int64(1))])
        }
        #expect(throws: OpError.self) {
            try run(RangeOperator.self, opset: 11, [Tensor(scalar: Float(0)), Tensor(scalar: Float(1e30)), Tensor(scalar: Float(1))])
        }
        #expect(throws: OpError.self) {
            try run(RangeOperator.self, opset: 11, [Tensor(scalar: Int64(0)), Tensor(scalar: Float(4)), Tensor(scalar: Int64(1))])
        }
        #expect(throws: OpError.self) { try RangeOperator(node: makeNode("Range", inputs: 3), opset: 10) }
    }

    // MARK: Shape programs of graphs.md section 5.5, run op by op

    /// `arange(n)` at opset 10: Shape -> Gather(0-d) -> Cast(7) -> Unsqueeze([0]) ->
    /// ConstantOfShape(int64 1) -> NonZero -> Transpose([1,0]) -> Squeeze([1]) -> Cast(7).
    private func arange(ofAxis axis: Int64, of tensor: Tensor) throws -> Tensor {
        let opset = 10
        let shape = try run(ShapeOperator.self, opset: opset, [tensor])[0]
        let count = try run(GatherOperator.self, opset: opset, [shape, Tensor(scalar: axis)])[0]
        #expect(count.shape == [])
        let asInt = try run(CastOperator.self, opset: opset, ["to": .int(7)], [count])[0]
        let asVector = try run(UnsqueezeOperator.self, opset: opset, ["axes": .ints([0])], [asInt])[0]
        #expect(asVector.shape == [1])
        let ones = try run(ConstantOfShapeOperator.self, opset: opset, ["value": .tensor(try ints([1]))], [asVector])[0]
        let positions = try run(NonZeroOperator.self, opset: opset, [ones])[0]
        #expect(positions.shape == [1, Int(tensor.shape[Int(axis)])])
        let columns = try run(TransposeOperator.self, opset: opset, ["perm": .ints([1, 0])], [positions])[0]
        let squeezed = try run(SqueezeOperator.self, opset: opset, ["axes": .ints([1])], [columns])[0]
        return try run(CastOperator.self, opset: opset, ["to": .int(7)], [squeezed])[0]
    }

    @Test func arangeShapeProgram() throws {
        let text = try Tensor([Int64](repeating: 7, count: 4 * 77), shape: [4, 77])
        let result = try arange(ofAxis: 0, of: text)
        #expect(result.dataType == .int64 && result.shape == [4])
        #expect(try result.toArray(Int64.self) == [0, 1, 2, 3])
        let frames = try floatRange([2, 8, 5])
        #expect(try arange(ofAxis: 1, of: frames).toArray(Int64.self) == Array(0..<8))
    }

    /// The EOT gather `x[arange(N), text.argmax(-1)]` (graphs.md 5.5). ArgMax, Mul and Add belong
    /// to another operator set; they are computed inline here on the int64 vectors.
    @Test func endOfTextGatherShapeProgram() throws {
        let opset = 10
        let batch = 3, length = 6, width = 5
        var random = SplitMix64(seed: 42)
        // Token ids with the end-of-text token (the largest id) at a different place per row.
        let endPositions = [5, 2, 0]
        var tokens = [Int64]()
        for row in 0..<batch {
            for position in 0..<length {
                tokens.append(position == endPositions[row] ? 49407 : Int64(position <= endPositions[row] ? 300 + row : 0))
            }
        }
        let text = try Tensor(tokens, shape: [batch, length])
        let x = try Tensor((0..<(batch * length * width)).map { _ in random.unit() }, shape: [batch, length, width])

        // a = ArgMax(text, axis=-1, keepdims=0) (inline)
        let argMax = (0..<batch).map { row in Int64(tokens[(row * length)..<((row + 1) * length)].enumerated().max { $0.element < $1.element }?.offset ?? -1) }
        #expect(argMax == endPositions.map { Int64($0) })
        // idx = Add(a, Mul(arange, Gather(Shape(x), [1])))
        let range = try arange(ofAxis: 0, of: text)
        let xShape = try run(ShapeOperator.self, opset: opset, [x])[0]
        let lengthVector = try run(GatherOperator.self, opset: opset, [xShape, try ints([1])])[0]
        #expect(lengthVector.shape == [1])
        let stride = try lengthVector.toArray(Int64.self)[0]
        let index = try Tensor(zip(argMax, try range.toArray(Int64.self)).map { $0 + $1 * stride }, shape: [batch])
        // Gather(Flatten(x, axis=2), idx, axis=0)
        let flat = try run(FlattenOperator.self, opset: opset, ["axis": .int(2)], [x])[0]
        #expect(flat.shape == [batch * length, width])
        let picked = try run(GatherOperator.self, opset: opset, ["axis": .int(0)], [flat, index])[0]
        // Reshape(., Concat([-1], Gather(Shape(x), [2]))), then Reshape(., Concat(Shape(idx), Gather(Shape(x), [2])))
        let widthVector = try run(GatherOperator.self, opset: opset, [xShape, try ints([2])])[0]
        let firstShape = try run(ConcatOperator.self, opset: opset, ["axis": .int(0)], [try ints([-1]), widthVector])[0]
        let firstReshape = try run(ReshapeOperator.self, opset: opset, [picked, firstShape])[0]
        let indexShape = try run(ShapeOperator.self, opset: opset, [index])[0]
        let secondShape = try run(ConcatOperator.self, opset: opset, ["axis": .int(0)], [indexShape, widthVector])[0]
        let result = try run(ReshapeOperator.self, opset: opset, [firstReshape, secondShape])[0]
        #expect(result.shape == [batch, width])
        let values = try x.toArray(Float.self)
        var expected = [Float]()
        for row in 0..<batch {
            let base = (row * length + endPositions[row]) * width
            expected += values[base..<(base + width)]
        }
        #expect(try result.toArray(Float.self) == expected)
    }
}
