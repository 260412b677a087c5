// ONNX Range (opset 11): inputs start, limit, delta are scalars of one type; output is 1-D with
// count = max(ceil((limit - start) / delta), 0) elements, element i = start + i * delta (float32 is
// accumulated by repeated addition, as ONNX Runtime does). delta = 0 is an error. Supported
// types: float32 and int64 (int32 and float64 are not implemented). The count is checked against
// the engine's element limit before allocating.
import ONNXLoader
import Tensor

/// ONNX Range.
public struct RangeOperator: Operator {
    public init(node: ONNXNode, opset: Int) throws {
        guard opset >= 11 else { throw OpError("Range needs opset 11 or later (model has \(opset))") }
    }

    public func run(_ inputs: [Tensor?]) throws -> [Tensor] {
        let start = try inputs.required(0, "start")
        let limit = try inputs.required(1, "limit")
        let delta = try inputs.required(2, "delta")
        for (tensor, role) in [(start, "start"), (limit, "limit"), (delta, "delta")] {
            try tensor.require(.float32, .int64, role: "Range \(role)")
            guard tensor.count == 1 else { throw OpError("Range \(role) must be a scalar, got shape \(tensor.shape)") }
            guard tensor.dataType == start.dataType else {
                throw OpError("Range \(role) is \(tensor.dataType) but start is \(start.dataType)")
            }
        }
        if start.dataType == .int64 {
            return [try Self.integerRange(start.int64s[0], limit.int64s[0], delta.int64s[0])]
        }
        return [try Self.floatRange(start.floats[0], limit.floats[0], delta.floats[0])]
    }

    static func integerRange(_ start: Int64, _ limit: Int64, _ delta: Int64) throws(OpError) -> Tensor {
        guard delta != 0 else { throw OpError("Range delta must not be 0") }
        let (difference, overflow) = limit.subtractingReportingOverflow(start)
        guard !overflow else { throw OpError("Range from \(start) to \(limit) overflows int64") }
        var count: Int64 = 0
        if difference != 0, (difference > 0) == (delta > 0) {
            // Same signs: the quotient is positive; round it up.
            count = difference / delta + (difference % delta != 0 ? 1 : 0)
        }
        _ = try tensorOp { () throws(TensorError) in try Shape.elementCount([Int(count)]) }
        let output = try tensorOp { () throws(TensorError) in try Tensor.uninitialized(.int64, shape: [Int(count)]) }
        let values = output.mutableInt64s
        var value = start
        for index in 0..<Int(count) {
            values[index] = value
            value = value &+ delta
        }
        return output
    }

    static func floatRange(_ start: Float, _ limit: Float, _ delta: Float) throws(OpError) -> Tensor {
        guard delta != 0 else { throw OpError("Range delta must not be 0") }
        let steps = (Double(limit - start) / Double(delta)).rounded(.up)
        guard !steps.isNaN, steps < Double(Shape.maximumElementCount) + 1 else {
            throw OpError("Range from \(start) to \(limit) by \(delta) has too many elements")
        }
        // Checked before converting: Int(-inf) or Int(-1e30) would trap.
        let count = steps > 0 ? Int(steps) : 0
        _ = try tensorOp { () throws(TensorError) in try Shape.elementCount([count]) }
        let output = try tensorOp { () throws(TensorError) in try Tensor.uninitialized(.float32, shape: [count]) }
        let values = output.mutableFloats
        var value = start
        for index in 0..<count {
            values[index] = value
            value += delta
        }
        return output
    }
}
