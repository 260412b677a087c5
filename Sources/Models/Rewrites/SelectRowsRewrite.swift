import ONNXLoader
import Tensor

/// `select-rows`: computes only the sequence position a graph keeps.
///
/// CLIP's image encoder runs every block on all 50 tokens, then keeps token 0:
/// `Gather(Transpose(x, [1, 0, 2]), 0, axis 1)`. Everything the last block computes for the other
/// 49 tokens (its MLP, its output projection, its queries) is thrown away: 4.3 of the 70.5 GFLOP
/// of 8 frames. This rule moves such a Gather of one constant index up through the nodes that
/// work row by row, so they run on the kept rows only:
/// - `Transpose`: the Gather moves to the permuted axis (a Transpose of the rest stays if needed);
/// - `Cast`, `FusedLayerNorm`, `FusedQuickGELU`, `FusedLinear` (with its residual): row-wise along
///   every axis but the last, so the Gather moves to their row inputs;
/// - `FusedAttention`, when the Gather is on its sequence axis 0: keys and values still need every
///   position, so the node keeps its full input and gets `query_position`; its residual is
///   gathered.
///
/// A value is narrowed only when every reader of it wants the same rows (the kept rows of its
/// readers), which is checked consumers-first in reverse graph order, so a value read elsewhere in
/// full (the attention input, a residual feeding a normal block) is computed whole and only a
/// Gather of it is added. Ranks must be known statically (from Transpose perms, FusedAttention's
/// [L, N, E], and the rank-preserving nodes in between) so that "not the last axis" and the
/// residual's shape are facts, not guesses; where they are not known the graph is left alone.
public struct SelectRowsRewrite: GraphRewrite {
    public let name = "select-rows"
    /// A rule with no options.
    public init() {}

    /// One request: position `index` of `value` along `axis`.
    private struct Selection: Hashable {
        let value: String
        let index: Int64
        let axis: Int

        /// The value holding the selected rows in the rewritten graph.
        var name: String { "\(value)::row\(index)@\(axis)" }
    }

    public func apply(to graph: inout ONNXGraph, model: ONNXModel) throws -> Int {
        let graphIndex = GraphIndex(graph)
        var ranks = StaticRanks(graph: graph, index: graphIndex)
        // Selections wanted, and which consumers (node index, input slot) want each. The original
        // Gathers are consumers too.
        var wanted: [Selection: [(node: Int, slot: Int)]] = [:]
        var roots: [Int: Selection] = [:]   // Gather node index -> the selection it makes
        for (nodeIndex, node) in graph.nodes.enumerated() where node.opType == "Gather" && node.domain.isEmpty {
            guard node.inputs.count == 2, node.outputs.count == 1,
                  let indexTensor = graphIndex.constant(node.inputs[1]), indexTensor.rank == 0,
                  indexTensor.dataType == .int64, let position = indexTensor.int64s.first, position >= 0,
                  let axis = try? node.int("axis", default: 0), axis >= 0,
                  let rank = ranks.rank(of: node.inputs[0]), Int(axis) < rank else { continue }
            let selection = Selection(value: node.inputs[0], index: position, axis: Int(axis))
            wanted[selection, default: []].append((nodeIndex, 0))
            roots[nodeIndex] = selection
        }
        guard !roots.isEmpty else { return 0 }

        // Decide consumers-first: a node is narrowed when its output's every reader wants the same
        // selection of it.
        var narrowed: [Int: Selection] = [:]          // node index -> selection of its output
        var narrowedInputs: [Int: [(slot: Int, selection: Selection)]] = [:]
        var pending = Set(wanted.keys)
        var materialized: [Selection] = []
        while let selection = pending.max(by: { (graphIndex.producer[$0.value] ?? -1) < (graphIndex.producer[$1.value] ?? -1) }) {
            pending.remove(selection)
            let readers = wanted[selection] ?? []
            let allReaders = graphIndex.consumers[selection.value] ?? []
            let everyReaderWantsIt = !graphIndex.graphOutputs.contains(selection.value)
                && allReaders.count == readers.count
                && wanted.keys.filter({ $0.value == selection.value }).count == 1
            guard everyReaderWantsIt, let producerIndex = graphIndex.producer[selection.value],
                  let inputs = rowInputs(of: graph.nodes[producerIndex], selection: selection, ranks: &ranks) else {
                materialized.append(selection)
                continue
            }
            narrowed[producerIndex] = selection
            for (slot, axis) in inputs {
                let inputSelection = Selection(value: graph.nodes[producerIndex].inputs[slot], index: selection.index, axis: axis)
                if wanted[inputSelection] == nil { pending.insert(inputSelection) }
                wanted[inputSelection, default: []].append((producerIndex, slot))
                narrowedInputs[producerIndex, default: []].append((slot, inputSelection))
            }
        }
        guard !narrowed.isEmpty else { return 0 }

        // Build: each selection gets a name; narrowed producers write it, the rest get a Gather.
        var nodes = graph.nodes
        var inserted: [(after: Int, node: ONNXNode)] = []
        var constants: [ONNXNode] = []
        var indexNames: [Int64: String] = [:]
        for selection in materialized {
            let indexName: String
            if let known = indexNames[selection.index] { indexName = known } else {
                indexName = "select-rows::index\(selection.index)"
                indexNames[selection.index] = indexName
                constants.append(ONNXNode(name: indexName, opType: "Constant", domain: "", inputs: [], outputs: [indexName],
                                          attributes: ["value": .tensor(try Tensor([selection.index], shape: []))]))
            }
            inserted.append((graphIndex.producer[selection.value] ?? -1, ONNXNode(
                name: "SelectRows(\(selection.value))", opType: "Gather", domain: "", inputs: [selection.value, indexName],
                outputs: [selection.name], attributes: ["axis": .int(Int64(selection.axis))])))
        }
        for (nodeIndex, selection) in narrowed {
            var node = nodes[nodeIndex]
            for (slot, input) in narrowedInputs[nodeIndex] ?? [] { node.inputs[slot] = input.name }
            nodes[nodeIndex] = narrowedNode(node, selection: selection)
        }
        for (rootIndex, selection) in roots {
            let root = nodes[rootIndex]
            nodes[rootIndex] = ONNXNode(name: root.name, opType: "Identity", domain: "", inputs: [selection.name],
                                        outputs: root.outputs, attributes: [:])
        }
        // Insert the Gathers right after their value's producer (graph inputs: at the start).
        var result = constants
        let byPosition = Dictionary(grouping: inserted, by: \.after)
        result += byPosition[-1]?.map(\.node) ?? []
        for (position, node) in nodes.enumerated() {
            result.append(node)
            result += byPosition[position]?.map(\.node) ?? []
        }
        graph.nodes = result
        GraphEditor.removeDeadNodes(&graph)
        return narrowed.count
    }

    /// For a node whose output is wanted only at `selection`: its inputs to narrow (input slot and
    /// the axis to select there), or nil when the node cannot be narrowed.
    private func rowInputs(of node: ONNXNode, selection: Selection, ranks: inout StaticRanks) -> [(slot: Int, axis: Int)]? {
        guard node.outputs.count == 1, let rank = ranks.rank(of: selection.value) else { return nil }
        func sameRank(_ slot: Int) -> Bool { slot < node.inputs.count && ranks.rank(of: node.inputs[slot]) == rank }
        let fused = node.domain == OpKind.fusedDomain
        switch (node.opType, fused) {
        case ("Transpose", false):
            guard let perm = try? node.ints("perm"), perm.count == rank, selection.axis < perm.count,
                  perm[selection.axis] >= 0, perm[selection.axis] < rank else { return nil }
            return [(0, Int(perm[selection.axis]))]
        case ("Cast", false):
            return sameRank(0) ? [(0, selection.axis)] : nil
        case (OpKind.fusedLayerNorm.rawValue, true), (OpKind.fusedQuickGELU.rawValue, true):
            return selection.axis < rank - 1 && sameRank(0) ? [(0, selection.axis)] : nil
        case (OpKind.fusedLinear.rawValue, true):
            guard selection.axis < rank - 1, sameRank(0) else { return nil }
            // The residual must have the output's full rank to be selected the same way.
            if node.inputs.count > 3, !node.inputs[3].isEmpty {
                return sameRank(3) ? [(0, selection.axis), (3, selection.axis)] : nil
            }
            return [(0, selection.axis)]
        case (OpKind.fusedAttention.rawValue, true):
            guard selection.axis == 0, rank == 3, node.attributes["query_position"] == nil, sameRank(0) else { return nil }
            if node.inputs.count > 6, !node.inputs[6].isEmpty {
                return sameRank(6) ? [(6, 0)] : nil
            }
            return []
        default:
            return nil
        }
    }

    /// `node` rewritten to produce only the selected rows, as `selection.name`.
    private func narrowedNode(_ node: ONNXNode, selection: Selection) -> ONNXNode {
        let output = selection.name
        var node = node
        node.outputs = [output]
        if node.opType == "Transpose", node.domain.isEmpty, let perm = try? node.ints("perm") {
            // The selected axis disappears; the others keep their order.
            let removed = perm[selection.axis]
            let rest = perm.enumerated().filter { $0.offset != selection.axis }.map { $0.element > removed ? $0.element - 1 : $0.element }
            if rest == Array(0..<Int64(rest.count)) {
                return ONNXNode(name: node.name, opType: "Identity", domain: "", inputs: [node.inputs[0]], outputs: [output], attributes: [:])
            }
            node.attributes["perm"] = .ints(rest)
        } else if node.opType == OpKind.fusedAttention.rawValue {
            node.attributes["query_position"] = .int(selection.index)
        }
        return node
    }
}

/// Ranks of values that are known without running the graph: constants, graph inputs with a
/// declared shape, Transpose (its perm), FusedAttention ([L, N, E], or [N, E] for one query
/// position) and the nodes that keep their first input's rank.
struct StaticRanks {
    let graph: ONNXGraph
    let index: GraphIndex
    private var known: [String: Int?] = [:]

    init(graph: ONNXGraph, index: GraphIndex) {
        self.graph = graph
        self.index = index
    }

    mutating func rank(of value: String) -> Int? {
        if let cached = known[value] { return cached }
        known[value] = .some(nil)   // a cycle (never in a valid graph) ends as unknown
        let result = compute(value)
        known[value] = result
        return result
    }

    private mutating func compute(_ value: String) -> Int? {
        if let constant = index.constant(value) { return constant.rank }
        if let input = graph.inputs.first(where: { $0.name == value }) { return input.shape?.count }
        guard let producer = index.producer[value] else { return nil }
        let node = graph.nodes[producer]
        let fused = node.domain == OpKind.fusedDomain
        switch (node.opType, fused) {
        case ("Transpose", false):
            guard let perm = try? node.ints("perm") else { return nil }
            return perm.count
        case ("Cast", false), ("Identity", false), (OpKind.fusedLayerNorm.rawValue, true), (OpKind.fusedQuickGELU.rawValue, true),
             (OpKind.fusedLinear.rawValue, true):
            return node.inputs.first.flatMap { rank(of: $0) }
        case (OpKind.fusedAttention.rawValue, true):
            return node.attributes["query_position"] == nil ? 3 : 2
        default:
            return nil
        }
    }
}
