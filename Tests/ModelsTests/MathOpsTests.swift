import Testing
import Foundation
import ONNXLoader
@testable import Models
@testable import Tensor

/// Builds a node with the given op type and attributes (names of inputs/outputs do not matter here).
private func node(_ opType: String, inputs: Int = 2, _ attributes: [String: Attribute] = [:]) -> ONNXNode {
    ONNXNode(name: "test_\(opType)", opType: opType, domain: "", inputs: (0..<inputs).map { "in\($0)" },
             outputs: ["out"], attributes: attributes)
}

/// Runs an operator type without attributes on inputs and returns its single output.
private func run<Op: Operator>(_ type: Op.Type, _ opType: String, opset: Int = 10, _ inputs: [Tensor?]) throws -> Tensor {
    try run(type, opType, opset: opset, [:], inputs)
}

/// Runs an operator type on inputs and returns its single output.
private func run<Op: Operator>(_ type: Op.Type, _ opType: String, opset: Int = 10, _ attributes: [String: Attribute],
                               _ inputs: [Tensor?]) throws -> Tensor {
    let op = try Op(node: node(opType, inputs: inputs.count, attributes), opset: opset)
    let outputs = try op.run(inputs)
    #expect(outputs.count == 1)
    guard let output = outputs.first else { throw OpError("no output") }
    return output
}

private func floats(_ values: [Float], _ shape: [Int]) throws -> Tensor { try Tensor(values, shape: shape) }
private func ints(_ values: [Int64], _ shape: [Int]) throws -> Tensor { try Tensor(values, shape: shape) }

/// Deterministic test data (SplitMix64).
private func sequence(_ count: Int, seed: UInt64) -> [Float] {
    var state = seed
    return (0..<count).map { _ in
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return Float((z ^ (z >> 31)) >> 40) / Float(1 << 24) * 4 - 2
    }
}

@Suite struct MathOpsTests {
    @Test func softmaxCoercesTo2DBeforeOpset13() throws {
        let values = sequence(24, seed: 1)
        let x = try floats(values, [2, 3, 4])
        let legacy = try run(SoftmaxOperator.self, "Softmax", opset: 11, ["axis": .int(1)], [x]).toArray(Float.self)
        let modern = try run(SoftmaxOperator.self, "Softmax", opset: 13, ["axis": .int(1)], [x]).toArray(Float.self)
        // Opset 11: each block of 12 (dims 1 and 2 together) sums to 1.
        #expect(abs(legacy[0..<12].reduce(0, +) - 1) < 1e-5)
        #expect(abs(legacy[12..<24].reduce(0, +) - 1) < 1e-5)
        // Opset 13: along axis 1 only: entries 0, 4, 8 sum to 1.
        #expect(abs(modern[0] + modern[4] + modern[8] - 1) < 1e-5)
        #expect(zip(legacy, modern).contains { abs($0 - $1) > 1e-3 })
        // Defaults: axis 1 before 13 (= coerced over dims 1...), -1 from 13; the same on a 2-D input.
        let defaultLegacy = try run(SoftmaxOperator.self, "Softmax", opset: 10, [:], [x]).toArray(Float.self)
        #expect(defaultLegacy == legacy)
        let lastAxis = try run(SoftmaxOperator.self, "Softmax", opset: 13, [:], [x]).toArray(Float.self)
        let graphStyle = try run(SoftmaxOperator.self, "Softmax", opset: 10, ["axis": .int(2)], [x]).toArray(Float.self)
        #expect(zip(lastAxis, graphStyle).allSatisfy { abs($0 - $1) < 1e-6 })
    }

    @Test func argMaxTiesAndSelectLastIndex() throws {
        let x = try ints([1, 7, 7, 3, 9, 9], [2, 3])
        let first = try run(ArgMaxOperator.self, "ArgMax", ["axis": .int(-1), "keepdims": .int(0)], [x])
        #expect(first.shape == [2])
        #expect(try first.toArray(Int64.self) == [1, 1])
        let kept = try run(ArgMaxOperator.self, "ArgMax", [:], [x]) // axis 0, keepdims 1
        #expect(kept.shape == [1, 3])
        #expect(try kept.toArray(Int64.self) == [1, 1, 1])
        let last = try run(ArgMaxOperator.self, "ArgMax", opset: 12, ["axis": .int(1), "select_last_index": .int(1)], [x])
        #expect(try last.toArray(Int64.self) == [2, 2])
        // Before opset 12 the attribute does not exist; ties keep the first index.
        let legacy = try run(ArgMaxOperator.self, "ArgMax", opset: 11, ["axis": .int(1), "select_last_index": .int(1)], [x])
        #expect(try legacy.toArray(Int64.self) == [1, 1])
    }

    @Test func reduceMeanKeepdimsDefaultAndNegativeAxes() throws {
        let x = try floats((0..<24).map(Float.init), [2, 3, 4])
        let layerNormStyle = try run(ReduceMeanOperator.self, "ReduceMean", ["axes": .ints([-1])], [x])
        #expect(layerNormStyle.shape == [2, 3, 1])
        #expect(try layerNormStyle.toArray(Float.self) == [1.5, 5.5, 9.5, 13.5, 17.5, 21.5])
        let frames = try run(ReduceMeanOperator.self, "ReduceMean", ["axes": .ints([1]), "keepdims": .int(0)], [x])
        #expect(frames.shape == [2, 4])
        #expect(try frames.toArray(Float.self) == [4, 5, 6, 7, 16, 17, 18, 19])
        let all = try run(ReduceMeanOperator.self, "ReduceMean", [:], [x])
        #expect(all.shape == [1, 1, 1])
        #expect(try all.toArray(Float.self) == [11.5])
        #expect(throws: OpError.self) { try run(ReduceMeanOperator.self, "ReduceMean", ["axes": .ints([3])], [x]) }
    }

    @Test func reduceSumAxesInputFromOpset13() throws {
        let x = try floats((0..<6).map(Float.init), [2, 3])
        let attribute = try run(ReduceSumOperator.self, "ReduceSum", opset: 11, ["axes": .ints([0]), "keepdims": .int(0)], [x])
        #expect(try attribute.toArray(Float.self) == [3, 5, 7])
        let input = try run(ReduceSumOperator.self, "ReduceSum", opset: 13, [:], [x, try ints([-1], [1])])
        #expect(input.shape == [2, 1])
        #expect(try input.toArray(Float.self) == [3, 12])
        let everything = try run(ReduceSumOperator.self, "ReduceSum", opset: 13, ["keepdims": .int(0)], [x])
        #expect(everything.shape == [])
        #expect(try everything.toArray(Float.self) == [15])
        let noop = try run(ReduceSumOperator.self, "ReduceSum", opset: 13, ["noop_with_empty_axes": .int(1)], [x, try ints([], [0])])
        #expect(noop.shape == [2, 3])
        #expect(try noop.toArray(Float.self) == [0, 1, 2, 3, 4, 5])
    }

    @Test func gemmTransB() throws {
        let a = try floats([1, 2, 3, 4, 5, 6], [2, 3])
        let b = try floats([1, 0, 1, 0, 1, 0, 2, 2, 2, 1, 1, 1], [4, 3]) // [N=4, K=3], used transposed
        let c = try floats([10, 20, 30, 40], [4])
        let y = try run(GemmOperator.self, "Gemm", ["transB": .int(1), "alpha": .float(1), "beta": .float(0.5)], [a, b, c])
        #expect(y.shape == [2, 4])
        let expected: [Float] = [9, 12, 27, 26, 15, 15, 45, 35] // A B^T + 0.5 * C
        #expect(try y.toArray(Float.self) == expected)
        let noC = try run(GemmOperator.self, "Gemm", opset: 11, ["transB": .int(1)], [a, b])
        #expect(try noC.toArray(Float.self) == [4, 2, 12, 6, 10, 5, 30, 15])
        #expect(throws: OpError.self) { try run(GemmOperator.self, "Gemm", [:], [a, b]) }
    }

    @Test func divInt64TruncatesAndRejectsZero() throws {
        let quotient = try run(DivOperator.self, "Div", [try ints([-7, 7, 768], [3]), try ints([2, -2, 12], [3])])
        #expect(try quotient.toArray(Int64.self) == [-3, -3, 64])
        do {
            _ = try run(DivOperator.self, "Div", [try ints([1], [1]), Tensor(scalar: Int64(0))])
            Issue.record("int64 division by zero must throw")
        } catch let error as OpError {
            #expect(error.message.contains("division by zero"))
        }
        let floatQuotient = try run(DivOperator.self, "Div", [try floats([1, -1], [2]), Tensor(scalar: Float(0))])
        #expect(try floatQuotient.toArray(Float.self) == [.infinity, -.infinity])
    }

    @Test func arithmeticBroadcastsAndChecksTypes() throws {
        let x = try floats([1, 2, 3, 4, 5, 6], [2, 3])
        let bias = try floats([10, 20, 30], [3])
        #expect(try run(AddOperator.self, "Add", [x, bias]).toArray(Float.self) == [11, 22, 33, 14, 25, 36])
        #expect(try run(SubOperator.self, "Sub", [x, try floats([1, 4], [2, 1])]).toArray(Float.self) == [0, 1, 2, 0, 1, 2])
        #expect(try run(MulOperator.self, "Mul", [Tensor(scalar: Float(2)), x]).toArray(Float.self) == [2, 4, 6, 8, 10, 12])
        #expect(try run(PowOperator.self, "Pow", [x, Tensor(scalar: Float(2))]).toArray(Float.self) == [1, 4, 9, 16, 25, 36])
        #expect(try run(MulOperator.self, "Mul", [try ints([3], [1]), Tensor(scalar: Int64(12))]).toArray(Int64.self) == [36])
        do {
            _ = try run(AddOperator.self, "Add", [x, try ints([1], [1])])
            Issue.record("mixed types must throw")
        } catch let error as OpError {
            #expect(error.message.contains("float32") && error.message.contains("int64"))
        }
        #expect(throws: OpError.self) { try run(AddOperator.self, "Add", [x, try floats([1, 2], [2])]) }
        #expect(throws: OpError.self) { try run(AddOperator.self, "Add", [x, nil]) }
    }

    @Test func variadicMinMax() throws {
        let a = try floats([1, 5, 3], [3]), b = try floats([4, 2, 6], [3]), c = Tensor(scalar: Float(3.5))
        #expect(try run(MaxOperator.self, "Max", [a, b, c]).toArray(Float.self) == [4, 5, 6])
        #expect(try run(MinOperator.self, "Min", [a, b, c]).toArray(Float.self) == [1, 2, 3])
        #expect(try run(MaxOperator.self, "Max", [a]).toArray(Float.self) == [1, 5, 3])
    }

    @Test func comparisonsWhereAndNot() throws {
        // The fusion model's expand program: Where(Equal(sz, -1), ones, sz).
        let sizes = try ints([2, -1], [2])
        let isMinusOne = try run(EqualOperator.self, "Equal", [sizes, try ints([-1, -1], [2])])
        #expect(try isMinusOne.toArray(Bool.self) == [false, true])
        let fixed = try run(WhereOperator.self, "Where", [isMinusOne, try ints([1, 1], [2]), sizes])
        #expect(try fixed.toArray(Int64.self) == [2, 1])
        #expect(try run(NotOperator.self, "Not", [isMinusOne]).toArray(Bool.self) == [true, false])
        let x = try floats([1, 2, 3], [3])
        #expect(try run(LessOperator.self, "Less", [x, Tensor(scalar: Float(2))]).toArray(Bool.self) == [true, false, false])
        #expect(try run(GreaterOperator.self, "Greater", [x, Tensor(scalar: Float(2))]).toArray(Bool.self) == [false, false, true])
        #expect(throws: OpError.self) { try run(WhereOperator.self, "Where", [x, x, x]) }
    }

    @Test func unaryOps() throws {
        let x = try floats([-1, 0, 0.5, 4], [2, 2])
        let relu = try run(ReluOperator.self, "Relu", [x]).toArray(Float.self)
        #expect(relu == [0, 0, 0.5, 4])
        #expect(try run(NegOperator.self, "Neg", [x]).toArray(Float.self) == [1, 0, -0.5, -4])
        #expect(try run(NegOperator.self, "Neg", [try ints([5], [1])]).toArray(Int64.self) == [-5])
        let sqrt = try run(SqrtOperator.self, "Sqrt", [x]).toArray(Float.self)
        #expect(sqrt[0].isNaN && sqrt[1] == 0 && sqrt[3] == 2)
        let checks: [(any Operator.Type, String, (Double) -> Double)] = [
            (SigmoidOperator.self, "Sigmoid", { 1 / (1 + Foundation.exp(-$0)) }),
            (ExpOperator.self, "Exp", { Foundation.exp($0) }),
            (ErfOperator.self, "Erf", { Foundation.erf($0) }),
            (TanhOperator.self, "Tanh", { Foundation.tanh($0) }),
        ]
        for (type, name, function) in checks {
            let op = try type.init(node: node(name, inputs: 1), opset: 10)
            let output = try op.run([x])[0].toArray(Float.self)
            for (value, input) in zip(output, [-1.0, 0, 0.5, 4]) {
                #expect(abs(Double(value) - function(input)) <= 1e-6 * max(1, abs(function(input))), "\(name)(\(input))")
            }
        }
        #expect(throws: OpError.self) { try run(ExpOperator.self, "Exp", [try ints([1], [1])]) }
    }

    @Test func matMulAndConv() throws {
        let a = try floats(sequence(2 * 3 * 4, seed: 5), [2, 3, 4]), b = try floats(sequence(4 * 5, seed: 6), [4, 5])
        let product = try run(MatMulOperator.self, "MatMul", [a, b])
        #expect(product.shape == [2, 3, 5])
        let reference = try ReferenceKernels.matmul(a, b)
        #expect(zip(try product.toArray(Float.self), try reference.toArray(Float.self)).allSatisfy { abs($0 - $1) < 1e-5 })
        #expect(throws: OpError.self) { try run(MatMulOperator.self, "MatMul", [a, a]) }

        let image = try floats(sequence(1 * 2 * 7 * 7, seed: 7), [1, 2, 7, 7])
        let weight = try floats(sequence(3 * 2 * 3 * 3, seed: 8), [3, 2, 3, 3])
        let same = try run(ConvOperator.self, "Conv", ["auto_pad": .string(Array("SAME_UPPER".utf8)), "strides": .ints([2, 2])], [image, weight])
        #expect(same.shape == [1, 3, 4, 4])
        let explicit = try run(ConvOperator.self, "Conv", ["pads": .ints([1, 1, 1, 1]), "strides": .ints([2, 2]),
                                                           "kernel_shape": .ints([3, 3])], [image, weight])
        #expect(try explicit.toArray(Float.self) == (try same.toArray(Float.self)))
        let direct = try ReferenceKernels.conv2d(image, weight, bias: nil,
                                                 geometry: ConvolutionGeometry(pads: [1, 1, 1, 1], strides: [2, 2]))
        #expect(zip(try explicit.toArray(Float.self), try direct.toArray(Float.self)).allSatisfy { abs($0 - $1) < 1e-5 })
        #expect(throws: OpError.self) { try run(ConvOperator.self, "Conv", ["group": .int(2)], [image, try floats(sequence(3 * 1 * 3 * 3, seed: 9), [3, 1, 3, 3])]) }
    }
}
