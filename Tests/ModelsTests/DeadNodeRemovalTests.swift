import Foundation
import Testing
import ONNXLoader
import Tensor
@testable import Models

/// `GraphEditor.removeDeadNodes` (one walk back from the outputs) against the rule it implements,
/// written plainly: remove, round by round, every node none of whose outputs is read.
@Suite struct DeadNodeRemovalTests {
    static func reference(_ graph: ONNXGraph) -> [String] {
        let outputs = Set(graph.outputs.map(\.name))
        var nodes = graph.nodes
        while true {
            var read = outputs
            for node in nodes { for input in node.inputs where !input.isEmpty { read.insert(input) } }
            let kept = nodes.filter { node in node.outputs.contains { !$0.isEmpty && read.contains($0) } }
            if kept.count == nodes.count { break }
            nodes = kept
        }
        return nodes.map(\.name)
    }

    /// A random acyclic graph: each node reads up to three earlier values (graph inputs, node
    /// outputs or "" for an absent optional input) and writes one or two values (some ""); long
    /// unread chains are likely. Nodes appear in a random order (the walk must not rely on a
    /// topological one).
    static func randomGraph(seed: UInt64) -> ONNXGraph {
        var generator = SplitMix64(seed: seed)
        func below(_ bound: Int) -> Int { Int(generator.next() % UInt64(max(bound, 1))) }
        var values = ["x", "y"]
        var nodes: [ONNXNode] = []
        for index in 0..<(5 + below(60)) {
            // Mostly read the newest values, so chains form.
            let inputs = (0..<(1 + below(3))).map { _ -> String in
                if below(10) == 0 { return "" }
                return values[max(0, values.count - 1 - below(below(4) == 0 ? values.count : 3))]
            }
            var outputs = ["v\(index)"]
            if below(4) == 0 { outputs.append(below(2) == 0 ? "" : "w\(index)") }
            values += outputs.filter { !$0.isEmpty }
            nodes.append(ONNXNode(name: "n\(index)", opType: "Add", domain: "", inputs: inputs, outputs: outputs, attributes: [:]))
        }
        var order = Array(nodes.indices)
        for position in order.indices.reversed() { order.swapAt(position, below(position + 1)) }
        let outputNames = (0..<(1 + below(3))).map { _ in values[below(values.count)] }
        let info = { (name: String) in ValueInfo(name: name, elementTypeCode: 1, shape: nil) }
        return ONNXGraph(name: "random", inputs: [info("x"), info("y")], outputs: outputNames.map(info), valueInfo: [],
                         nodes: order.map { nodes[$0] }, initializers: [:], initializerNames: [])
    }

    @Test func keepsWhatTheRoundByRoundRuleKeeps() {
        var removedSome = 0
        for seed in 0..<400 {
            var graph = Self.randomGraph(seed: UInt64(seed))
            let expected = Self.reference(graph)
            let before = graph.nodes.count
            GraphEditor.removeDeadNodes(&graph)
            #expect(graph.nodes.map(\.name) == expected, "seed \(seed)")
            if expected.count < before { removedSome += 1 }
        }
        #expect(removedSome > 200, "the random graphs should mostly have dead nodes: \(removedSome)")
    }
}
