import Tensor

/// A parsed ONNX `ModelProto`: Swift values only, no protobuf-c pointers survive loading.
public struct ONNXModel: Sendable {
    public var irVersion: Int64
    /// Operator set version per domain; the default ONNX domain is `""` (also spelled `ai.onnx`).
    public var opsetImports: [String: Int64]
    public var producerName: String
    public var producerVersion: String
    /// The model's `metadata_props` (free-form key/value pairs written by the exporter).
    public var metadata: [String: String]
    public var graph: ONNXGraph

    /// Wraps a graph with its versions and producer; used by the loader and by tests building models by hand.
    public init(irVersion: Int64, opsetImports: [String: Int64], producerName: String,
                producerVersion: String, metadata: [String: String] = [:], graph: ONNXGraph) {
        self.metadata = metadata
        self.irVersion = irVersion
        self.opsetImports = opsetImports
        self.producerName = producerName
        self.producerVersion = producerVersion
        self.graph = graph
    }

    /// Opset of the default (`ai.onnx`) domain, which decides the semantics of every standard op.
    public var defaultOpset: Int64 { opsetImports[""] ?? opsetImports["ai.onnx"] ?? 0 }
}

/// A graph: its interface, its nodes in file order, and its constant tensors.
public struct ONNXGraph: Sendable {
    public var name: String
    /// Inputs the caller must feed (initializers that are also listed as inputs are removed here
    /// and kept in `initializers`: they act as defaults, and this engine never overrides weights).
    public var inputs: [ValueInfo]
    public var outputs: [ValueInfo]
    public var valueInfo: [ValueInfo]
    public var nodes: [ONNXNode]
    /// Initializers by name, in one copy each (weights are not duplicated at load).
    public var initializers: [String: Tensor]
    /// Initializer names in file order (dictionaries have none).
    public var initializerNames: [String]

    /// A graph from its parts; `initializerNames` gives the file order of `initializers`.
    public init(name: String, inputs: [ValueInfo], outputs: [ValueInfo], valueInfo: [ValueInfo],
                nodes: [ONNXNode], initializers: [String: Tensor], initializerNames: [String]) {
        self.name = name
        self.inputs = inputs
        self.outputs = outputs
        self.valueInfo = valueInfo
        self.nodes = nodes
        self.initializers = initializers
        self.initializerNames = initializerNames
    }
}

/// Name, element type and (possibly symbolic) shape of a graph value.
public struct ValueInfo: Sendable, Equatable {
    /// One dimension of a declared shape: a number, a symbolic name (`batch`), or nothing.
    public enum Dimension: Sendable, Equatable, CustomStringConvertible {
        case fixed(Int)
        case symbolic(String)
        case unknown

        public var description: String {
            switch self {
            case .fixed(let value): return String(value)
            case .symbolic(let name): return name
            case .unknown: return "?"
            }
        }
    }

    public var name: String
    /// ONNX element type code (see `DataType.onnxName(code:)`); 0 when not a tensor or not given.
    public var elementTypeCode: Int32
    /// Nil when the file gives no shape at all (rank unknown).
    public var shape: [Dimension]?

    /// A value declaration; `shape` nil means the rank is unknown.
    public init(name: String, elementTypeCode: Int32, shape: [Dimension]?) {
        self.name = name
        self.elementTypeCode = elementTypeCode
        self.shape = shape
    }

    public var elementType: DataType? { DataType(rawValue: elementTypeCode) }
}

/// One node as written in the file. Attribute values are already decoded.
public struct ONNXNode: Sendable {
    public var name: String
    public var opType: String
    public var domain: String
    /// Input value names; an empty string marks an omitted optional input.
    public var inputs: [String]
    public var outputs: [String]
    public var attributes: [String: Attribute]

    /// A node from its parts (attributes already decoded).
    public init(name: String, opType: String, domain: String, inputs: [String], outputs: [String],
                attributes: [String: Attribute]) {
        self.name = name
        self.opType = opType
        self.domain = domain
        self.inputs = inputs
        self.outputs = outputs
        self.attributes = attributes
    }

    /// How the node is named in messages: its name if it has one, else its op type and first output.
    public var displayName: String {
        if !name.isEmpty { return "\(name) (\(opType))" }
        return "\(opType) -> \(outputs.first ?? "?")"
    }
}

/// An attribute value of any ONNX kind.
public enum Attribute: Sendable {
    case float(Float)
    case int(Int64)
    case string([UInt8])
    case tensor(Tensor)
    case floats([Float])
    case ints([Int64])
    case strings([[UInt8]])
    /// Kinds this engine parses but never evaluates (GRAPH, SPARSE_TENSOR, TYPE_PROTO and their lists).
    case unsupported(kind: String)

    /// The ONNX name of the attribute's kind, for error messages.
    public var kindName: String {
        switch self {
        case .float: return "FLOAT"
        case .int: return "INT"
        case .string: return "STRING"
        case .tensor: return "TENSOR"
        case .floats: return "FLOATS"
        case .ints: return "INTS"
        case .strings: return "STRINGS"
        case .unsupported(let kind): return kind
        }
    }
}

/// An attribute that is present but of the wrong kind or value.
public struct AttributeError: Error, CustomStringConvertible {
    public let node: String
    public let attribute: String
    public let problem: String
    public var description: String { "node \(node): attribute '\(attribute)' \(problem)" }
}

extension ONNXNode {
    /// Integer attribute, or `defaultValue` if absent; throws if present with another kind.
    public func int(_ name: String, default defaultValue: Int64? = nil) throws(AttributeError) -> Int64? {
        switch attributes[name] {
        case nil: return defaultValue
        case .int(let value)?: return value
        case let other?: throw AttributeError(node: displayName, attribute: name, problem: "is \(other.kindName), expected INT")
        }
    }

    /// Float attribute, or `defaultValue` if absent; throws if present with another kind.
    public func float(_ name: String, default defaultValue: Float? = nil) throws(AttributeError) -> Float? {
        switch attributes[name] {
        case nil: return defaultValue
        case .float(let value)?: return value
        case let other?: throw AttributeError(node: displayName, attribute: name, problem: "is \(other.kindName), expected FLOAT")
        }
    }

    /// Integer-list attribute, or `defaultValue` if absent; throws if present with another kind.
    public func ints(_ name: String, default defaultValue: [Int64]? = nil) throws(AttributeError) -> [Int64]? {
        switch attributes[name] {
        case nil: return defaultValue
        case .ints(let value)?: return value
        case let other?: throw AttributeError(node: displayName, attribute: name, problem: "is \(other.kindName), expected INTS")
        }
    }

    /// Float-list attribute, or `defaultValue` if absent; throws if present with another kind.
    public func floats(_ name: String, default defaultValue: [Float]? = nil) throws(AttributeError) -> [Float]? {
        switch attributes[name] {
        case nil: return defaultValue
        case .floats(let value)?: return value
        case let other?: throw AttributeError(node: displayName, attribute: name, problem: "is \(other.kindName), expected FLOATS")
        }
    }

    /// String attribute decoded as UTF-8, or `defaultValue` if absent; throws if present with another kind.
    public func string(_ name: String, default defaultValue: String? = nil) throws(AttributeError) -> String? {
        switch attributes[name] {
        case nil: return defaultValue
        case .string(let bytes)?: return String(decoding: bytes, as: UTF8.self)
        case let other?: throw AttributeError(node: displayName, attribute: name, problem: "is \(other.kindName), expected STRING")
        }
    }

    /// Tensor attribute (e.g. Constant's `value`), or nil if absent; throws if present with another kind.
    public func tensor(_ name: String) throws(AttributeError) -> Tensor? {
        switch attributes[name] {
        case nil: return nil
        case .tensor(let value)?: return value
        case let other?: throw AttributeError(node: displayName, attribute: name, problem: "is \(other.kindName), expected TENSOR")
        }
    }
}
