/// Everything that can go wrong while loading an ONNX file. Each description is one line that
/// names the file, tensor, node or value concerned and says what is wrong with it.
public enum ONNXLoadError: Error, CustomStringConvertible, Equatable {
    // MARK: The file itself
    /// Nothing exists at the path.
    case fileNotFound(path: String)
    /// The path names a directory, not a model file.
    case isDirectory(path: String)
    /// The file exists but could not be opened, inspected or mapped (`reason` is the system's message).
    case unreadable(path: String, reason: String)
    /// The file has zero bytes.
    case emptyFile(path: String)
    /// protobuf-c rejected the bytes: not a protobuf message, or cut short.
    case notProtobuf(path: String)
    /// The bytes are a protobuf message but not a model: no graph in it.
    case missingGraph(path: String)

    // MARK: Model header
    /// The IR version is absent or outside `ONNXLoader.supportedIRVersions`.
    case unsupportedIRVersion(Int64, supported: ClosedRange<Int64>)
    /// No opset import for the default domain (`""` / `ai.onnx`).
    case missingDefaultOpset
    /// The default-domain opset is outside what this engine implements.
    case unsupportedOpset(Int64, supported: ClosedRange<Int64>)
    /// The default domain is imported twice with different versions.
    case conflictingOpsets(Int64, Int64)

    // MARK: Tensors (`tensor` reads like "initializer 'w'" or "node Conv_3 (Conv) attribute 'value'")
    /// A data type this engine cannot hold (string, bfloat16, complex, ...).
    case unsupportedDataType(tensor: String, typeName: String)
    /// Inconsistent dims or data: negative dim, too many elements, byte or value count mismatch.
    case invalidTensor(tensor: String, problem: String)
    /// A problem with the external data reference or its file.
    case externalData(tensor: String, problem: String)

    // MARK: Graph structure
    /// A graph input, output or value_info entry that is malformed (no name, negative dim).
    case invalidValueInfo(name: String, problem: String)
    /// A node or attribute that is malformed (empty op_type, unnamed or repeated attribute).
    case invalidNode(node: String, problem: String)
    /// A node reads a value that no graph input, initializer or node provides.
    case danglingInput(node: String, input: String)
    /// A value is defined twice (two producers, or a node output shadowing an input/initializer).
    case duplicateValue(name: String, first: String, second: String)
    /// The nodes do not form a DAG; `node` lies on a cycle.
    case cycle(node: String)
    /// A graph output that nothing provides.
    case unproducedOutput(name: String)

    public var description: String {
        switch self {
        case .fileNotFound(let path):
            return "\(path): no such file"
        case .isDirectory(let path):
            return "\(path): is a directory, not an ONNX model file"
        case .unreadable(let path, let reason):
            return "\(path): cannot read (\(reason))"
        case .emptyFile(let path):
            return "\(path): empty file, not an ONNX model"
        case .notProtobuf(let path):
            return "\(path): not an ONNX model (not a valid protobuf, or truncated)"
        case .missingGraph(let path):
            return "\(path): not an ONNX model (no graph in it)"
        case .unsupportedIRVersion(let version, let supported):
            return "ONNX IR version \(version) is not supported (supported: \(supported.lowerBound)...\(supported.upperBound))"
        case .missingDefaultOpset:
            return "model imports no opset for the default ONNX domain"
        case .unsupportedOpset(let version, let supported):
            return "default-domain opset \(version) is not supported (supported: \(supported.lowerBound)...\(supported.upperBound))"
        case .conflictingOpsets(let first, let second):
            return "default ONNX domain imported twice, as opset \(first) and \(second)"
        case .unsupportedDataType(let tensor, let typeName):
            return "\(tensor): data type \(typeName) is not supported"
        case .invalidTensor(let tensor, let problem):
            return "\(tensor): \(problem)"
        case .externalData(let tensor, let problem):
            return "\(tensor): external data: \(problem)"
        case .invalidValueInfo(let name, let problem):
            return "graph value '\(name)': \(problem)"
        case .invalidNode(let node, let problem):
            return "node \(node): \(problem)"
        case .danglingInput(let node, let input):
            return "node \(node): input '\(input)' is not a graph input, an initializer or any node's output"
        case .duplicateValue(let name, let first, let second):
            return "value '\(name)' is defined twice: by \(first) and by \(second)"
        case .cycle(let node):
            return "graph has a cycle through node \(node)"
        case .unproducedOutput(let name):
            return "graph output '\(name)' is not produced by any node, input or initializer"
        }
    }
}
