import Foundation
import ONNXLoader

/// One repeated transformer block found in a graph.
public struct TransformerBlock: Sendable, Equatable {
    /// 0-based, in execution order.
    public var index: Int
    /// Member node indices (into `graph.nodes`), in execution order. Constant nodes are not members.
    public var nodes: [Int]
    /// The residual `Add` nodes that close the block's sub-blocks (attention, then MLP); empty
    /// when the block was found by name scope.
    public var residualAdds: [Int]
    /// The value the block reads (the previous block's output) and the value it writes.
    public var inputValue: String
    public var outputValue: String
}

/// The transformer blocks of a graph, found from its structure.
///
/// The primary method needs no names (torch 1.8.1 wrote `Add_123`-style names): a *residual Add*
/// is an `Add(x, f(x))` whose second operand depends on the first through floating-point values
/// and through at least one weighted op (MatMul, Gemm, Conv, or any op reading a rank ≥ 2
/// initializer). Only innermost ones count, so the fusion graph's whole-transformer skip
/// connection is not taken for a block. A residual Add whose branch holds a Softmax (attention)
/// followed by one without (MLP) make one pre-LN block; any other residual Add is a block alone.
/// When no residual Add exists, nodes whose names share a `…/<word>.<n>/` scope
/// (`/transformer/resblocks/resblocks.3/attn/MatMul`) are grouped instead.
public struct BlockStructure: Sendable {
    /// How the blocks were found: by the residual Add chain, or by node-name scopes as a fallback.
    public enum Method: String, Sendable {
        case residualChain = "residual Add chain"
        case nameScope = "node-name scope"
        case none = "none found"
    }

    public var blocks: [TransformerBlock]
    public var method: Method
    /// Block index of each member node.
    public var blockOfNode: [Int: Int]

    /// Blocks in graph order and the method that found them.
    public init(blocks: [TransformerBlock], method: Method) {
        self.blocks = blocks
        self.method = method
        var map: [Int: Int] = [:]
        for block in blocks { for node in block.nodes { map[node] = block.index } }
        self.blockOfNode = map
    }

    /// Finds the blocks of `topology`'s graph (residual chain first, then name scopes).
    public static func detect(_ topology: GraphTopology) -> BlockStructure {
        let residual = residualBlocks(topology)
        if !residual.isEmpty { return BlockStructure(blocks: residual, method: .residualChain) }
        let scoped = scopeBlocks(topology)
        if !scoped.isEmpty { return BlockStructure(blocks: scoped, method: .nameScope) }
        return BlockStructure(blocks: [], method: .none)
    }

    struct Residual {
        let add: Int
        let skip: String
        let skipSource: Int
        let hasAttention: Bool
    }

    /// Innermost residual Adds in execution order.
    static func residualAdds(_ topology: GraphTopology) -> [Residual] {
        let nodes = topology.graph.nodes
        let heavy: [Int] = nodes.indices.filter { index in
            let node = nodes[index]
            if ["MatMul", "Gemm", "Conv"].contains(node.opType) { return true }
            return node.inputs.contains { (topology.graph.initializers[$0]?.rank ?? 0) >= 2 }
        }
        let attention: [Int] = nodes.indices.filter { nodes[$0].opType == "Softmax" || nodes[$0].opType.contains("Attention") }
        func isParameter(_ value: String) -> Bool { topology.isInitializer(value) || topology.isConstantOutput(value) }

        var candidates: [(add: Int, skip: String, skipSource: Int)] = []
        for index in topology.order where nodes[index].opType == "Add" && nodes[index].inputs.count == 2 {
            let operands = nodes[index].inputs
            for (skip, branch) in [(operands[0], operands[1]), (operands[1], operands[0])] {
                guard !skip.isEmpty, !branch.isEmpty, !isParameter(skip), !isParameter(branch),
                      let skipSource = topology.source(of: skip), let branchNode = topology.producer[branch],
                      topology.node(branchNode, dataDependsOn: skipSource) else { continue }
                let weighted = heavy.contains { candidate in
                    (candidate == branchNode || topology.node(branchNode, dataDependsOn: candidate))
                        && topology.node(candidate, dataDependsOn: skipSource)
                }
                if weighted {
                    candidates.append((index, skip, skipSource))
                    break
                }
            }
        }
        let innermost = candidates.filter { outer in
            !candidates.contains { inner in
                inner.add != outer.add && topology.node(outer.add, dataDependsOn: inner.add)
                    && topology.node(inner.add, dataDependsOn: outer.skipSource)
            }
        }
        return innermost.map { entry in
            let hasAttention = attention.contains { candidate in
                (candidate == entry.add || topology.node(entry.add, dataDependsOn: candidate))
                    && topology.node(candidate, dataDependsOn: entry.skipSource)
            }
            return Residual(add: entry.add, skip: entry.skip, skipSource: entry.skipSource, hasAttention: hasAttention)
        }
    }

    static func residualBlocks(_ topology: GraphTopology) -> [TransformerBlock] {
        let adds = residualAdds(topology)
        let nodes = topology.graph.nodes
        var groups: [[Residual]] = []
        var position = 0
        while position < adds.count {
            if adds[position].hasAttention, position + 1 < adds.count, !adds[position + 1].hasAttention,
               walkUp(adds[position + 1].skip, topology).value == nodes[adds[position].add].outputs.first {
                groups.append([adds[position], adds[position + 1]])
                position += 2
            } else {
                groups.append([adds[position]])
                position += 1
            }
        }
        var blocks: [TransformerBlock] = []
        var assigned = Set<Int>()
        for group in groups {
            guard let first = group.first, let last = group.last, let output = nodes[last.add].outputs.first else { continue }
            // The block starts at the value its first LayerNorm reads: walk up through the
            // no-op Casts the CLIP LayerNorm puts in front (they belong to the block).
            let (startValue, leadingCasts) = walkUp(first.skip, topology)
            guard let startSource = topology.source(of: startValue) else { continue }
            var members = Set(leadingCasts)
            for index in topology.order where !topology.isConstant[index] && !assigned.contains(index) {
                let beforeEnd = index == last.add || topology.node(last.add, dependsOn: index)
                if beforeEnd && topology.node(index, dependsOn: startSource) { members.insert(index) }
            }
            members.subtract(assigned)
            assigned.formUnion(members)
            let ordered = members.sorted { topology.position[$0] < topology.position[$1] }
            blocks.append(TransformerBlock(index: blocks.count, nodes: ordered, residualAdds: group.map(\.add),
                                           inputValue: startValue, outputValue: output))
        }
        return blocks
    }

    /// Follows `value` up through no-op Casts and Identities (the CLIP LayerNorm's `x.type(float32)`
    /// sits between a block's residual stream and its LayerNorm), returning the value reached
    /// and the nodes passed.
    static func walkUp(_ value: String, _ topology: GraphTopology) -> (value: String, nodes: [Int]) {
        var current = value
        var passed: [Int] = []
        while let producer = topology.producer[current], ["Cast", "Identity"].contains(topology.graph.nodes[producer].opType),
              let input = topology.graph.nodes[producer].inputs.first, !input.isEmpty, !passed.contains(producer) {
            passed.append(producer)
            current = input
        }
        return (current, passed)
    }

    /// Groups by the first `<word>.<n>` component of `/`-separated node names.
    static func scopeBlocks(_ topology: GraphTopology) -> [TransformerBlock] {
        let nodes = topology.graph.nodes
        var groups: [String: (family: String, members: [Int])] = [:]
        for index in topology.order where !topology.isConstant[index] {
            let components = nodes[index].name.split(separator: "/", omittingEmptySubsequences: false)
            for (place, component) in components.enumerated() {
                guard let dot = component.lastIndex(of: "."), component.index(after: dot) < component.endIndex,
                      component[component.index(after: dot)...].allSatisfy(\.isNumber),
                      !component[..<dot].isEmpty else { continue }
                let key = components[0...place].joined(separator: "/")
                let family = components[0..<place].joined(separator: "/") + "/" + component[..<dot]
                groups[key, default: (family, [])].members.append(index)
                break
            }
        }
        var familySizes: [String: Int] = [:]
        for (_, group) in groups { familySizes[group.family, default: 0] += 1 }
        guard let family = familySizes.filter({ $0.value >= 2 }).max(by: { $0.value < $1.value })?.key else { return [] }
        let chosen = groups.values.filter { $0.family == family }.map(\.members)
            .sorted { (topology.position[$0.first ?? 0]) < (topology.position[$1.first ?? 0]) }
        return chosen.enumerated().map { index, members in
            let outputs = members.compactMap { nodes[$0].outputs.first }
            let inputs = members.flatMap { nodes[$0].inputs }.filter { value in
                !value.isEmpty && !topology.isInitializer(value) && !topology.isConstantOutput(value)
                    && !(topology.producer[value].map { members.contains($0) } ?? false)
            }
            return TransformerBlock(index: index, nodes: members, residualAdds: [],
                                    inputValue: inputs.first ?? "", outputValue: outputs.last ?? "")
        }
    }
}
