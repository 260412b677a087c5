// ONNX Constant: produces the tensor stored in the node.
// Opset 1, 9: attribute `value` (TENSOR) only.
// Opset 11: alternatively `sparse_value` (SPARSE_TENSOR), which this engine rejects.
// Opset 12, 13: alternatively exactly one of `value_float` (0-d float32), `value_floats` (1-D float32),
//   `value_int` (0-d int64), `value_ints` (1-D int64), `value_string(s)` (strings: rejected).
// Exactly one value attribute must be present. Dtypes: any tensor type the loader produces.
import ONNXLoader
import Tensor

/// ONNX Constant: returns its stored tensor on every run (shared, never copied).
public struct ConstantOperator: Operator {
    let value: Tensor

    public init(node: ONNXNode, opset: Int) throws {
        var values: [Tensor] = []
        func requireOpset12(_ name: String) throws(OpError) {
            guard opset >= 12 else { throw OpError("Constant attribute '\(name)' needs opset 12 or later (model has \(opset))") }
        }
        for name in node.attributes.keys.sorted() {
            switch name {
            case "value":
                if let tensor = try node.tensor(name) { values.append(tensor) }
            case "sparse_value":
                throw OpError("Constant with 'sparse_value' (a sparse tensor) is not supported")
            case "value_float":
                try requireOpset12(name)
                if let number = try node.float(name) { values.append(Tensor(scalar: number)) }
            case "value_floats":
                try requireOpset12(name)
                if let numbers = try node.floats(name) { values.append(try Tensor(numbers, shape: [numbers.count])) }
            case "value_int":
                try requireOpset12(name)
                if let number = try node.int(name) { values.append(Tensor(scalar: number)) }
            case "value_ints":
                try requireOpset12(name)
                if let numbers = try node.ints(name) { values.append(try Tensor(numbers, shape: [numbers.count])) }
            case "value_string", "value_strings":
                throw OpError("Constant with '\(name)' (string tensors) is not supported")
            default:
                continue
            }
        }
        guard values.count == 1, let value = values.first else {
            throw OpError("Constant needs exactly one value attribute, found \(values.count)")
        }
        self.value = value
    }

    public func run(_ inputs: [Tensor?]) throws -> [Tensor] { [value] }
}
