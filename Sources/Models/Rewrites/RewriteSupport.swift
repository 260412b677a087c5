import ONNXLoader
import Tensor

/// Read-only lookups over a graph that the rewrite rules match against: who produces and who
/// reads each value, and the value of constants (initializers and `Constant` nodes). Matching
/// is by structure and constant values only, never by names (torch versions name differently).
struct GraphIndex {
    let graph: ONNXGraph
    /// Node index producing each value.
    let producer: [String: Int]
    /// Node indices reading each value (a node reading a value twice appears twice).
    let consumers: [String: [Int]]
    let graphOutputs: Set<String>

    init(_ graph: ONNXGraph) {
        self.graph = graph
        var producer: [String: Int] = [:], consumers: [String: [Int]] = [:]
        for (index, node) in graph.nodes.enumerated() {
            for output in node.outputs where !output.isEmpty { producer[output] = index }
            for input in node.inputs where !input.isEmpty { consumers[input, default: []].append(index) }
        }
        self.producer = producer
        self.consumers = consumers
        graphOutputs = Set(graph.outputs.map(\.name))
    }

    /// The node producing `value`, if it has the op type `opType` (standard domain).
    func node(producing value: String, _ opType: String) -> (index: Int, node: ONNXNode)? {
        guard let index = producer[value] else { return nil }
        let node = graph.nodes[index]
        guard node.opType == opType, node.domain.isEmpty || node.domain == "ai.onnx" else { return nil }
        return (index, node)
    }

    /// Consumers of `value` with op type `opType`.
    func consumers(of value: String, _ opType: String) -> [(index: Int, node: ONNXNode)] {
        (consumers[value] ?? []).map { ($0, graph.nodes[$0]) }.filter {
            $0.node.opType == opType && ($0.node.domain.isEmpty || $0.node.domain == "ai.onnx")
        }
    }

    /// The only consumer of `value`, when there is exactly one and `value` is not a graph output.
    func soleConsumer(of value: String) -> (index: Int, node: ONNXNode)? {
        guard !graphOutputs.contains(value), let readers = consumers[value], readers.count == 1 else { return nil }
        return (readers[0], graph.nodes[readers[0]])
    }

    /// The value of a constant: an initializer or the `value` of a `Constant` node.
    func constant(_ value: String) -> Tensor? {
        if let tensor = graph.initializers[value] { return tensor }
        guard let (_, node) = node(producing: value, "Constant") else { return nil }
        return try? node.tensor("value")
    }

    /// A one-element float32 constant's value.
    func scalar(_ value: String) -> Float? {
        guard let tensor = constant(value), tensor.dataType == .float32, tensor.count == 1 else { return nil }
        return tensor.floats.first
    }

    /// A one-element int64 constant's value.
    func integerScalar(_ value: String) -> Int64? {
        guard let tensor = constant(value), tensor.dataType == .int64, tensor.count == 1 else { return nil }
        return tensor.int64s.first
    }

    /// For a binary node with operands (a, b): the operand that is not `value`, if `value` is one of them.
    static func otherOperand(of node: ONNXNode, than value: String) -> String? {
        guard node.inputs.count == 2 else { return nil }
        if node.inputs[0] == value { return node.inputs[1] }
        if node.inputs[1] == value { return node.inputs[0] }
        return nil
    }

    /// Whether a ReduceMean reduces only the last axis and keeps it (axes [-1], keepdims absent or 1).
    static func reducesLastAxisKeepingIt(_ node: ONNXNode) -> Bool {
        guard node.inputs.count == 1, (try? node.ints("axes")) == [-1] else { return false }
        return ((try? node.int("keepdims", default: 1)) ?? 0) == 1
    }

    /// Whether `node` is `Cast(to=FLOAT)`.
    static func isCastToFloat(_ node: ONNXNode) -> Bool {
        node.opType == "Cast" && (try? node.int("to")) == Int64(DataType.float32.rawValue)
    }
}

/// Collects the replacements of one rule and applies them at once: each match replaces its
/// anchor node (the one producing the pattern's final value) with a fused node producing the
/// same output, then nodes whose outputs nobody reads any more are removed. Pattern nodes whose
/// values are still read elsewhere therefore stay, which keeps every rewrite correct even when a
/// match shares values with the rest of the graph.
struct GraphEditor {
    private(set) var replacements: [Int: ONNXNode] = [:]

    /// Nodes that earlier matches already replaced; a later match must not use them as anchor.
    func isClaimed(_ index: Int) -> Bool { replacements[index] != nil }

    mutating func replace(_ index: Int, with node: ONNXNode) { replacements[index] = node }

    var count: Int { replacements.count }

    /// Applies the replacements and removes dead nodes; returns the number of replacements.
    func apply(to graph: inout ONNXGraph) -> Int {
        guard !replacements.isEmpty else { return 0 }
        for (index, node) in replacements { graph.nodes[index] = node }
        Self.removeDeadNodes(&graph)
        return replacements.count
    }

    /// Removes, until none is left, every node none of whose outputs is read by a node or is a graph output.
    ///
    /// The nodes kept are those a graph output depends on, found in one walk back from the outputs
    /// through each value's producer. (Removing unread nodes round by round took one pass over the
    /// whole graph per node of the longest dead chain: a replaced attention block is a chain of
    /// about 30, so loading the image model spent about 20 ms here.) For an acyclic graph, which
    /// the loader guarantees, the two keep the same nodes (`DeadNodeRemovalTests`); of a cycle no
    /// output depends on, the walk keeps nothing.
    static func removeDeadNodes(_ graph: inout ONNXGraph) {
        var producer: [String: Int] = [:]
        for (index, node) in graph.nodes.enumerated() {
            for output in node.outputs where !output.isEmpty { producer[output] = index }
        }
        var live = [Bool](repeating: false, count: graph.nodes.count)
        var pending = graph.outputs.compactMap { producer[$0.name] }
        while let index = pending.popLast() {
            guard !live[index] else { continue }
            live[index] = true
            for input in graph.nodes[index].inputs where !input.isEmpty {
                if let source = producer[input], !live[source] { pending.append(source) }
            }
        }
        graph.nodes = zip(graph.nodes, live).compactMap { node, isLive in isLive ? node : nil }
    }
}

/// Builds a node of the fused domain.
func fusedNode(_ kind: OpKind, name: String, inputs: [String], output: String, attributes: [String: Attribute] = [:]) -> ONNXNode {
    ONNXNode(name: name, opType: kind.rawValue, domain: OpKind.fusedDomain, inputs: inputs, outputs: [output], attributes: attributes)
}

extension RewriteOptions {
    /// Whether the switch named `name` (a rewrite or an interpreter pass such as "shapecache") is on.
    public func allows(name: String) -> Bool { enabled && !disabled.contains(name) }
}
