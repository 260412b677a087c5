import Foundation
import ONNXLoader
import Tensor

/// A fixed-size set of small integers (node or source indices) as a bit array, for ancestor sets.
struct IndexSet64: Sendable, Equatable {
    private(set) var words: [UInt64]

    init(capacity: Int) { words = [UInt64](repeating: 0, count: (capacity + 63) / 64) }

    @inline(__always) func contains(_ index: Int) -> Bool {
        index >= 0 && index / 64 < words.count && words[index / 64] & (1 << UInt64(index % 64)) != 0
    }

    @inline(__always) mutating func insert(_ index: Int) {
        guard index >= 0 && index / 64 < words.count else { return }
        words[index / 64] |= 1 << UInt64(index % 64)
    }

    mutating func formUnion(_ other: IndexSet64) {
        for index in 0..<Swift.min(words.count, other.words.count) { words[index] |= other.words[index] }
    }
}

/// Producers, consumers, order and ancestry of a graph's nodes, with each value classified as
/// data (floating point) or integer (shape programs, indices, masks).
///
/// Ancestry is over *sources*: node `i` is source `i`, graph input `k` is source `nodes.count + k`.
public struct GraphTopology: Sendable {
    public let graph: ONNXGraph
    /// Node indices in a valid execution order (file order where the file is already sorted).
    public let order: [Int]
    /// Position of each node in `order`.
    public let position: [Int]
    /// The node that writes each value.
    public let producer: [String: Int]
    /// The nodes that read each value, in node-index order.
    public let consumers: [String: [Int]]
    /// Source index of each graph input.
    public let inputSource: [String: Int]
    /// True for `Constant` nodes (folded into their consumers in every view).
    public let isConstant: [Bool]
    /// True for nodes whose every output is an integer or bool value: the shape programs
    /// (Shape → Gather → Unsqueeze → Concat) and index arithmetic (arange, ArgMax).
    public let isIntegerNode: [Bool]
    /// Element type and shape of each value, when a run captured them.
    public let shapes: ShapeCapture?
    let ancestors: [IndexSet64]
    /// Ancestors reached only through floating-point values: a node whose only link to `x` is
    /// `Shape(x)` does not depend on `x` here.
    let dataAncestors: [IndexSet64]

    /// Indexes `graph`'s producers and consumers; `shapes` (if captured) labels values with their shapes.
    public init(graph: ONNXGraph, shapes: ShapeCapture?) throws {
        self.graph = graph
        self.shapes = shapes
        let nodes = graph.nodes
        var producer: [String: Int] = [:]
        var consumers: [String: [Int]] = [:]
        for (index, node) in nodes.enumerated() {
            for output in node.outputs where !output.isEmpty { producer[output] = index }
            for input in node.inputs where !input.isEmpty { consumers[input, default: []].append(index) }
        }
        var inputSource: [String: Int] = [:]
        for (offset, info) in graph.inputs.enumerated() { inputSource[info.name] = nodes.count + offset }
        let available = Set(graph.inputs.map(\.name)).union(graph.initializers.keys)
        let order = try GraphProgram.topologicalOrder(nodes, producerOf: producer, available: available)
        var position = [Int](repeating: 0, count: nodes.count)
        for (place, index) in order.enumerated() { position[index] = place }
        let isConstant = nodes.map { $0.opType == "Constant" && ($0.domain.isEmpty || $0.domain == "ai.onnx") }

        // Integer classification: from the captured types when there are any, else propagated
        // from Shape nodes and integer graph inputs through nodes whose inputs are all integer.
        var isInteger = [Bool](repeating: false, count: nodes.count)
        var integerValues = Set<String>()
        if let shapes {
            for (name, value) in shapes.values where !value.isFloatingPoint { integerValues.insert(name) }
            for index in order {
                let outputs = nodes[index].outputs.filter { !$0.isEmpty }
                isInteger[index] = !isConstant[index] && !outputs.isEmpty && outputs.allSatisfy { integerValues.contains($0) }
            }
        } else {
            for info in graph.inputs where info.elementType.map({ $0 != .float32 && $0 != .float16 && $0 != .float64 }) ?? false {
                integerValues.insert(info.name)
            }
            for (name, tensor) in graph.initializers where tensor.dataType != .float32 { integerValues.insert(name) }
            for index in order {
                let node = nodes[index]
                if isConstant[index] {
                    if case .tensor(let value)? = node.attributes["value"], value.dataType != .float32 {
                        node.outputs.forEach { integerValues.insert($0) }
                    }
                    continue
                }
                let inputs = node.inputs.filter { !$0.isEmpty }
                let integer = node.opType == "Shape" || node.opType == "ArgMax" || node.opType == "NonZero"
                    || (!inputs.isEmpty && inputs.allSatisfy { integerValues.contains($0) })
                if integer {
                    isInteger[index] = true
                    node.outputs.forEach { integerValues.insert($0) }
                }
            }
        }

        let sourceCount = nodes.count + graph.inputs.count
        var ancestors = [IndexSet64](repeating: IndexSet64(capacity: sourceCount), count: nodes.count)
        var dataAncestors = ancestors
        for index in order {
            var all = IndexSet64(capacity: sourceCount)
            var data = IndexSet64(capacity: sourceCount)
            for input in nodes[index].inputs where !input.isEmpty {
                let throughData = !integerValues.contains(input)
                if let source = producer[input] {
                    all.insert(source)
                    all.formUnion(ancestors[source])
                    if throughData && !isConstant[source] {
                        data.insert(source)
                        data.formUnion(dataAncestors[source])
                    }
                } else if let source = inputSource[input] {
                    all.insert(source)
                    if throughData { data.insert(source) }
                }
            }
            ancestors[index] = all
            dataAncestors[index] = data
        }

        self.order = order
        self.position = position
        self.producer = producer
        self.consumers = consumers
        self.inputSource = inputSource
        self.isConstant = isConstant
        self.isIntegerNode = isInteger
        self.ancestors = ancestors
        self.dataAncestors = dataAncestors
    }

    /// The source (node index or graph-input source index) that writes `value`, if any.
    public func source(of value: String) -> Int? { producer[value] ?? inputSource[value] }

    /// True if `node` depends on `source` (any path, including through shape programs).
    public func node(_ node: Int, dependsOn source: Int) -> Bool { ancestors[node].contains(source) }

    /// True if `node` depends on `source` through floating-point values.
    public func node(_ node: Int, dataDependsOn source: Int) -> Bool { dataAncestors[node].contains(source) }

    /// True if `value` is a weight: an initializer (folded into its consumer in every view).
    public func isInitializer(_ value: String) -> Bool { graph.initializers[value] != nil }

    /// True if `value` is the output of a Constant node.
    public func isConstantOutput(_ value: String) -> Bool { producer[value].map { isConstant[$0] } ?? false }

    /// The captured shape of `value`, if any.
    public func shape(of value: String) -> ValueShape? {
        if let captured = shapes?.values[value] { return captured }
        if let tensor = graph.initializers[value] { return ValueShape(dataType: tensor.dataType, shape: tensor.shape) }
        if let index = producer[value], isConstant[index], case .tensor(let tensor)? = graph.nodes[index].attributes["value"] {
            return ValueShape(dataType: tensor.dataType, shape: tensor.shape)
        }
        return nil
    }

    /// The constant tensor behind `value` (initializer or Constant node output), if it is one.
    public func constantTensor(_ value: String) -> Tensor? {
        if let tensor = graph.initializers[value] { return tensor }
        if let index = producer[value], isConstant[index], case .tensor(let tensor)? = graph.nodes[index].attributes["value"] {
            return tensor
        }
        return nil
    }
}
