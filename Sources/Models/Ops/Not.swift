import ONNXLoader
import Tensor

// Not (opset 1): Y = !X on bool tensors. No attributes, unchanged through opset 13.

/// ONNX Not on bool.
struct NotOperator: Operator {
    init(node: ONNXNode, opset: Int) throws {}

    func run(_ inputs: [Tensor?]) throws -> [Tensor] {
        let x = try inputs.required(0, "X")
        return [try mathKernel { () throws(KernelError) in try logicalNot(x) }]
    }
}
