import Tensor

/// Why a graph could not be prepared or run. Every case prints as one line that names the
/// node, value or op concerned.
public enum GraphError: Error, CustomStringConvertible {
    /// The default-domain opset is outside what the operator implementations cover.
    case unsupportedOpset(Int64, supported: ClosedRange<Int64>)
    /// Every op type the graph uses that this engine lacks, with how often it occurs.
    case unsupportedOperators([(opType: String, domain: String, count: Int)])
    /// A node's attributes or structure were rejected when the graph was compiled.
    case invalidNode(node: String, message: String)
    /// The graph's nodes cannot be ordered (a cycle runs through this node).
    case cycle(node: String)
    /// A node input refers to a value nothing produces.
    case danglingInput(node: String, value: String)
    case missingInput(String)
    case unknownInput(String, known: [String])
    case inputTypeMismatch(name: String, expected: String, actual: DataType)
    case inputShapeMismatch(name: String, declared: String, actual: [Int], reason: String)
    /// A node failed while running.
    case nodeFailed(node: String, message: String)
    /// An operator returned a different number of outputs than the node declares.
    case outputCountMismatch(node: String, expected: Int, actual: Int)
    /// Execution was stopped on request after this node (`--stop-after`).
    case stopped(after: String)

    public var description: String {
        switch self {
        case .unsupportedOpset(let version, let supported):
            return "model uses ai.onnx opset \(version); this engine supports opsets \(supported.lowerBound)...\(supported.upperBound)"
        case .unsupportedOperators(let list):
            let items = list.map { entry in
                let qualified = entry.domain.isEmpty || entry.domain == "ai.onnx" ? entry.opType : "\(entry.domain).\(entry.opType)"
                return "\(qualified) (\(entry.count)x)"
            }
            return "unsupported operators: " + items.joined(separator: ", ")
        case .invalidNode(let node, let message):
            return "node \(node): \(message)"
        case .cycle(let node):
            return "graph has a cycle through node \(node)"
        case .danglingInput(let node, let value):
            return "node \(node): input '\(value)' is not produced by any node, initializer or graph input"
        case .missingInput(let name):
            return "graph input '\(name)' was not given"
        case .unknownInput(let name, let known):
            return "'\(name)' is not an input of this graph (inputs: \(known.joined(separator: ", ")))"
        case .inputTypeMismatch(let name, let expected, let actual):
            return "input '\(name)' must be \(expected), got \(actual)"
        case .inputShapeMismatch(let name, let declared, let actual, let reason):
            return "input '\(name)' has shape \(actual), declared \(declared): \(reason)"
        case .nodeFailed(let node, let message):
            return "node \(node): \(message)"
        case .outputCountMismatch(let node, let expected, let actual):
            return "node \(node): produced \(actual) outputs, the node declares \(expected)"
        case .stopped(let node):
            return "stopped after node \(node)"
        }
    }
}
