import ONNXLoader
import Tensor

// Shared plumbing for the math operators (Add ... ArgMax, Conv, MatMul, Gemm).

/// Runs a math kernel and turns its `KernelError` (or a tensor error) into an `OpError`; the
/// interpreter then adds the node's name.
@inline(__always)
func mathKernel<Result>(_ body: () throws(KernelError) -> Result) throws(OpError) -> Result {
    do { return try body() } catch { throw OpError(error.message) }
}

/// Elementwise binary ops share one implementation: pick the kernel, check inputs, broadcast.
enum BinaryElementwise {
    /// Opsets before 7 used `broadcast`/`axis` attributes instead of numpy broadcasting. Only the
    /// plain form (no `axis`) is accepted, which means the same thing under both rules for the
    /// shapes such graphs feed.
    static func checkLegacyBroadcast(_ node: ONNXNode, opset: Int) throws {
        if opset < 7, node.attributes["axis"] != nil {
            throw OpError("\(node.opType) with the legacy 'axis' broadcast attribute (opset \(opset) < 7) is not supported")
        }
    }

    /// `A <operation> B` for the two required inputs.
    static func run(_ operation: BinaryOperation, _ inputs: [Tensor?]) throws -> [Tensor] {
        let a = try inputs.required(0, "A"), b = try inputs.required(1, "B")
        return [try mathKernel { () throws(KernelError) in try binary(operation, a, b) }]
    }

    /// `A <comparison> B` giving bool.
    static func run(_ comparison: ComparisonOperation, _ inputs: [Tensor?]) throws -> [Tensor] {
        let a = try inputs.required(0, "A"), b = try inputs.required(1, "B")
        return [try mathKernel { () throws(KernelError) in try compare(comparison, a, b) }]
    }

    /// Variadic Min/Max: folds the inputs pairwise with broadcasting; one input is returned as is.
    static func runVariadic(_ operation: BinaryOperation, _ inputs: [Tensor?]) throws -> [Tensor] {
        var result = try inputs.required(0, "data_0")
        try result.require(.float32, .int64, role: "data_0")
        for index in 1..<max(inputs.count, 1) {
            let next = try inputs.required(index, "data_\(index)")
            let current = result
            result = try mathKernel { () throws(KernelError) in try binary(operation, current, next) }
        }
        return [result]
    }
}

/// Elementwise functions of one input share one implementation.
enum UnaryElementwise {
    static func run(_ operation: UnaryOperation, _ inputs: [Tensor?]) throws -> [Tensor] {
        let x = try inputs.required(0, "X")
        return [try mathKernel { () throws(KernelError) in try unary(operation, x) }]
    }
}

/// Axes and keepdims of ReduceMean / ReduceSum, from attributes or (newer opsets) the second input.
struct ReductionAxes: Sendable {
    let attributeAxes: [Int]?
    let keepDims: Bool
    let axesFromInput: Bool
    let noopWithEmptyAxes: Bool

    /// `inputOpset` is the first opset in which this op takes `axes` as an input (13 for ReduceSum,
    /// 18 for ReduceMean).
    init(node: ONNXNode, opset: Int, inputOpset: Int) throws {
        axesFromInput = opset >= inputOpset
        attributeAxes = axesFromInput ? nil : try node.ints("axes")?.map { Int($0) }
        keepDims = try node.int("keepdims", default: 1) != 0
        let noop = try node.int("noop_with_empty_axes", default: 0) ?? 0
        noopWithEmptyAxes = axesFromInput && noop != 0
    }

    /// Resolves the axes for this call: nil means "leave the input unchanged" (noop_with_empty_axes).
    func axes(_ inputs: [Tensor?], rank: Int) throws -> [Int]? {
        var axes = attributeAxes
        if axesFromInput, let given = inputs.optional(1) {
            axes = try given.integerValues(role: "axes")
        }
        guard let axes, !axes.isEmpty else {
            // Absent or empty axes reduce everything unless the op asked for a no-op.
            return noopWithEmptyAxes ? nil : Array(0..<rank)
        }
        return axes
    }
}
