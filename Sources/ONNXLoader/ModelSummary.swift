import Tensor

/// Size and composition of a model, as printed by `action-clip inspect`.
public struct ModelSummary: Sendable {
    /// Number of nodes of each op type (domain-qualified for non-default domains, e.g. "com.microsoft.Gelu").
    public var opTypeCounts: [String: Int]
    public var nodeCount: Int
    public var initializerCount: Int
    /// Elements in all initializers (the model's parameters).
    public var parameterCount: Int
    /// Bytes held by all initializers.
    public var parameterBytes: Int
    /// Initializer bytes per element type.
    public var parameterBytesByType: [DataType: Int]
    /// Constant nodes and the bytes of their `value` tensors (folded constants such as masks).
    public var constantNodeCount: Int
    public var constantBytes: Int

    /// Op types with their counts, most frequent first (ties by name), for stable printing.
    public var opTypeHistogram: [(opType: String, count: Int)] {
        opTypeCounts.map { (opType: $0.key, count: $0.value) }
            .sorted { $0.count != $1.count ? $0.count > $1.count : $0.opType < $1.opType }
    }

    /// Computes the summary of `model`'s main graph.
    public init(model: ONNXModel) {
        let graph = model.graph
        var counts: [String: Int] = [:]
        var constants = 0
        var constantBytes = 0
        for node in graph.nodes {
            let key = node.domain.isEmpty ? node.opType : node.domain + "." + node.opType
            counts[key, default: 0] += 1
            if node.domain.isEmpty && node.opType == "Constant" {
                constants += 1
                if case .tensor(let value)? = node.attributes["value"] { constantBytes += value.byteCount }
            }
        }
        var parameters = 0
        var bytes = 0
        var byType: [DataType: Int] = [:]
        for tensor in graph.initializers.values {
            parameters += tensor.count
            bytes += tensor.byteCount
            byType[tensor.dataType, default: 0] += tensor.byteCount
        }
        self.opTypeCounts = counts
        self.nodeCount = graph.nodes.count
        self.initializerCount = graph.initializers.count
        self.parameterCount = parameters
        self.parameterBytes = bytes
        self.parameterBytesByType = byType
        self.constantNodeCount = constants
        self.constantBytes = constantBytes
    }
}

extension ONNXModel {
    /// Op histogram and parameter totals of this model.
    public var summary: ModelSummary { ModelSummary(model: self) }
}
