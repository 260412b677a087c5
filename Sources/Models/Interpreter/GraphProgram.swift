import Foundation
import ONNXLoader
import Tensor

/// A graph compiled for execution: nodes in a valid order, each with its operator built and
/// its inputs and outputs resolved to numbered value slots, plus a liveness table that says
/// when each intermediate value can be released.
///
/// Compiling does everything that can fail without data: opset check, the list of every
/// unsupported op (all at once, not the first one met mid-run), attribute parsing, ordering.
/// Running does only the work that depends on the inputs, so shape subgraphs are evaluated
/// on every call: a text graph declared [1,77] gives correct results for [160,77].
public final class GraphProgram: Sendable {
    /// Opsets the operator implementations cover. Ops whose semantics changed inside this
    /// range (Softmax, Split, Squeeze, Unsqueeze, ReduceSum, Slice) implement every variant.
    public static let supportedOpsets: ClosedRange<Int64> = 7...13

    /// One node ready to run.
    public struct Step: Sendable {
        public let node: ONNXNode
        public let kind: OpKind
        public let operation: any Operator
        /// Slot per node input; nil for an omitted optional input.
        public let inputSlots: [Int?]
        /// Slot per node output; nil for an output the node leaves unnamed.
        public let outputSlots: [Int?]
        /// Slots whose last reader is this step and that may be released after it.
        public let releaseAfter: [Int]
    }

    public let model: ONNXModel
    public let steps: [Step]
    /// Names of all value slots (graph inputs, initializers, node outputs).
    public let slotNames: [String]
    /// Graph inputs the caller must feed, with their slots and declarations.
    public let inputs: [(info: ValueInfo, slot: Int)]
    public let outputs: [(info: ValueInfo, slot: Int)]
    let initializerSlots: [(slot: Int, tensor: Tensor)]
    /// Activation memory reused across runs with the same input shapes.
    let activationArena = ActivationArena()
    /// The shape-only slice and its per-signature values, when shape caching is on.
    let shapeCache: ShapeCache?

    /// Compiles `model.graph` exactly as exported (no rewrites).
    public convenience init(model: ONNXModel) throws(GraphError) {
        try self.init(model: model, graph: model.graph)
    }

    /// Compiles `graph` (which may be a rewritten form of `model.graph`) for execution.
    /// With `shapeCaching`, nodes whose values depend only on the input shapes run once per
    /// distinct input-shape signature (see `ShapeCache`); without it every node runs every time.
    public init(model: ONNXModel, graph: ONNXGraph, shapeCaching: Bool = false) throws(GraphError) {
        let opset = model.defaultOpset
        guard Self.supportedOpsets.contains(opset) else {
            throw .unsupportedOpset(opset, supported: Self.supportedOpsets)
        }
        try Self.checkOperatorsSupported(graph.nodes)

        // Slots: graph inputs, then initializers, then node outputs in file order.
        var slotOf: [String: Int] = [:]
        var names: [String] = []
        func addSlot(_ name: String) -> Int {
            if let existing = slotOf[name] { return existing }
            slotOf[name] = names.count
            names.append(name)
            return names.count - 1
        }
        var inputList: [(info: ValueInfo, slot: Int)] = []
        for info in graph.inputs where graph.initializers[info.name] == nil {
            inputList.append((info, addSlot(info.name)))
        }
        var initializerList: [(slot: Int, tensor: Tensor)] = []
        for name in graph.initializerNames {
            if let tensor = graph.initializers[name] { initializerList.append((addSlot(name), tensor)) }
        }
        let available = Set(names)
        var producerOf: [String: Int] = [:]
        for (index, node) in graph.nodes.enumerated() {
            for output in node.outputs where !output.isEmpty {
                if producerOf[output] != nil || available.contains(output) {
                    throw .invalidNode(node: node.displayName, message: "output '\(output)' is produced twice")
                }
                producerOf[output] = index
            }
        }

        let order = try Self.topologicalOrder(graph.nodes, producerOf: producerOf, available: available)

        var built: [(node: ONNXNode, kind: OpKind, operation: any Operator, inputs: [Int?], outputs: [Int?])] = []
        built.reserveCapacity(order.count)
        for index in order {
            let node = graph.nodes[index]
            // checkOperatorsSupported has already rejected unknown op types.
            guard let kind = OpKind(node: node) else { continue }
            let operation: any Operator
            do {
                operation = try OperatorFactory.make(kind, node: node, opset: Int(opset))
            } catch {
                throw .invalidNode(node: node.displayName, message: String(describing: error))
            }
            var inputSlots: [Int?] = []
            for input in node.inputs {
                if input.isEmpty { inputSlots.append(nil); continue }
                guard let slot = slotOf[input] ?? (producerOf[input] != nil ? addSlot(input) : nil) else {
                    throw .danglingInput(node: node.displayName, value: input)
                }
                inputSlots.append(slot)
            }
            let outputSlots: [Int?] = node.outputs.map { $0.isEmpty ? nil : addSlot($0) }
            built.append((node, kind, operation, inputSlots, outputSlots))
        }

        var outputList: [(info: ValueInfo, slot: Int)] = []
        for info in graph.outputs {
            guard let slot = slotOf[info.name] else {
                throw .danglingInput(node: "graph output", value: info.name)
            }
            outputList.append((info, slot))
        }

        // Liveness: a slot is released after the last step that reads it, unless it is a graph
        // output or an initializer (initializers live as long as the program).
        var lastReader = [Int](repeating: -1, count: names.count)
        for (stepIndex, step) in built.enumerated() {
            for slot in step.inputs.compactMap({ $0 }) { lastReader[slot] = stepIndex }
        }
        var pinned = Set(outputList.map(\.slot))
        for (slot, _) in initializerList { pinned.insert(slot) }
        var releases = [[Int]](repeating: [], count: built.count)
        for slot in 0..<names.count where !pinned.contains(slot) && lastReader[slot] >= 0 {
            releases[lastReader[slot]].append(slot)
        }
        // Outputs nobody reads are released right after they are made.
        for (stepIndex, step) in built.enumerated() {
            for slot in step.outputs.compactMap({ $0 }) where lastReader[slot] < 0 && !pinned.contains(slot) {
                releases[stepIndex].append(slot)
            }
        }

        self.model = model
        self.steps = built.enumerated().map { index, entry in
            Step(node: entry.node, kind: entry.kind, operation: entry.operation,
                 inputSlots: entry.inputs, outputSlots: entry.outputs, releaseAfter: releases[index])
        }
        self.slotNames = names
        self.inputs = inputList
        self.outputs = outputList
        self.initializerSlots = initializerList
        self.shapeCache = shapeCaching
            ? ShapeCache.analyse(steps: steps, slotCount: names.count, initializerSlots: initializerList.map(\.slot),
                                 outputSlots: outputList.map(\.slot))
            : nil
    }

    /// Rejects the graph if any op type is missing, listing all of them.
    static func checkOperatorsSupported(_ nodes: [ONNXNode]) throws(GraphError) {
        var missing: [String: (domain: String, opType: String, count: Int)] = [:]
        var order: [String] = []
        for node in nodes {
            if OpKind(node: node) != nil { continue }
            let key = node.domain + "\u{0}" + node.opType
            if let entry = missing[key] {
                missing[key] = (entry.domain, entry.opType, entry.count + 1)
            } else {
                missing[key] = (node.domain, node.opType, 1)
                order.append(key)
            }
        }
        guard order.isEmpty else {
            throw .unsupportedOperators(order.compactMap { key in
                missing[key].map { (opType: $0.opType, domain: $0.domain, count: $0.count) }
            })
        }
    }

    /// Kahn's algorithm, taking ready nodes in file order so an already sorted file keeps its order.
    static func topologicalOrder(_ nodes: [ONNXNode], producerOf: [String: Int],
                                 available: Set<String>) throws(GraphError) -> [Int] {
        var pendingCount = [Int](repeating: 0, count: nodes.count)
        var consumers = [[Int]](repeating: [], count: nodes.count)
        for (index, node) in nodes.enumerated() {
            var producers = Set<Int>()
            for input in node.inputs where !input.isEmpty {
                if let producer = producerOf[input] {
                    producers.insert(producer)
                } else if !available.contains(input) {
                    throw .danglingInput(node: node.displayName, value: input)
                }
            }
            pendingCount[index] = producers.count
            for producer in producers { consumers[producer].append(index) }
        }
        // A min-heap would be O(n log n); a sorted insertion into a small ready list is enough
        // for graphs of a few thousand nodes and keeps the code plain.
        var ready = (0..<nodes.count).filter { pendingCount[$0] == 0 }.reversed().map { $0 }
        var order: [Int] = []
        order.reserveCapacity(nodes.count)
        while let next = ready.popLast() {
            order.append(next)
            for consumer in consumers[next] {
                pendingCount[consumer] -= 1
                if pendingCount[consumer] == 0 {
                    // `ready` is kept in descending order so popLast yields the lowest index.
                    let position = ready.firstIndex(where: { $0 < consumer }) ?? ready.count
                    ready.insert(consumer, at: position)
                }
            }
        }
        if order.count < nodes.count {
            let stuck = (0..<nodes.count).first { pendingCount[$0] > 0 } ?? 0
            throw .cycle(node: nodes[stuck].displayName)
        }
        return order
    }
}
