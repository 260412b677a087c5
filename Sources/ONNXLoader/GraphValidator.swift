/// Structural checks run at load time, so the interpreter can rely on a well-formed DAG.
///
/// Unknown op types are deliberately not rejected here: the interpreter lists every
/// unsupported op at once, which is a more useful message than failing on the first.
enum GraphValidator {
    static func validate(_ graph: ONNXGraph) throws(ONNXLoadError) {
        // Who defines each value: a description for messages, and the producing node if any.
        var definitions: [String: (description: String, node: Int?)] = [:]
        for input in graph.inputs {
            if let previous = definitions[input.name] {
                throw .duplicateValue(name: input.name, first: previous.description, second: "another graph input")
            }
            definitions[input.name] = ("a graph input", nil)
        }
        for name in graph.initializerNames where definitions[name] == nil {
            definitions[name] = ("an initializer", nil)
        }
        for (index, node) in graph.nodes.enumerated() {
            for output in node.outputs where !output.isEmpty {
                if let previous = definitions[output] {
                    throw .duplicateValue(name: output, first: previous.description, second: "node \(node.displayName)")
                }
                definitions[output] = ("node \(node.displayName)", index)
            }
        }

        // Edges producer -> consumer; counted per input occurrence so Kahn's in-degrees match.
        var consumers = [[Int]](repeating: [], count: graph.nodes.count)
        var pending = [Int](repeating: 0, count: graph.nodes.count)
        for (index, node) in graph.nodes.enumerated() {
            for input in node.inputs where !input.isEmpty {
                guard let definition = definitions[input] else {
                    throw .danglingInput(node: node.displayName, input: input)
                }
                if let producer = definition.node {
                    consumers[producer].append(index)
                    pending[index] += 1
                }
            }
        }
        var ready = pending.indices.filter { pending[$0] == 0 }
        var visited = 0
        while let index = ready.popLast() {
            visited += 1
            for consumer in consumers[index] {
                pending[consumer] -= 1
                if pending[consumer] == 0 { ready.append(consumer) }
            }
        }
        if visited < graph.nodes.count {
            throw .cycle(node: graph.nodes[nodeOnCycle(graph, definitions: definitions, pending: pending)].displayName)
        }

        for output in graph.outputs where definitions[output.name] == nil {
            throw .unproducedOutput(name: output.name)
        }
    }

    /// Every node left with pending inputs after Kahn's algorithm has a pending producer, so
    /// walking producers backwards must revisit a node within n steps: that node is on a cycle.
    private static func nodeOnCycle(_ graph: ONNXGraph, definitions: [String: (description: String, node: Int?)],
                                    pending: [Int]) -> Int {
        guard var current = pending.firstIndex(where: { $0 > 0 }) else { return 0 }
        var seen = Set<Int>()
        while seen.insert(current).inserted {
            let producers = graph.nodes[current].inputs.compactMap { definitions[$0]?.node }
            guard let next = producers.first(where: { pending[$0] > 0 }) else { return current }
            current = next
        }
        return current
    }
}
