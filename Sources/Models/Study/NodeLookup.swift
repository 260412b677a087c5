import Foundation
import ONNXLoader

/// Finds a step of a compiled program by node name or output name (for `run --stop-after`),
/// suggesting close names when there is no match.
public enum NodeLookup {
    /// Index into `program.steps` of the node named `name`, or of the node that writes the
    /// value `name`. Throws `StudyError.unknownNode` with up to five close names otherwise.
    public static func step(named name: String, in program: GraphProgram) throws -> Int {
        if let index = program.steps.firstIndex(where: { $0.node.name == name }) { return index }
        if let index = program.steps.firstIndex(where: { $0.node.outputs.contains(name) }) { return index }
        throw StudyError.unknownNode(name, suggestions: suggestions(for: name, in: program.steps.flatMap { [$0.node.name] + $0.node.outputs }))
    }

    /// Up to `limit` of `candidates` closest to `name`: those containing it whole first, then those
    /// containing the most of its words (`resblocks`, `1`, `softmax`), then by edit distance.
    public static func suggestions(for name: String, in candidates: [String], limit: Int = 5) -> [String] {
        let query = name.lowercased()
        let words = query.split { !$0.isLetter && !$0.isNumber }.map(String.init)
        let target = Array(query.utf8)
        var seen = Set<String>()
        var scored: [(name: String, contains: Bool, words: Int, distance: Int)] = []
        for candidate in candidates where !candidate.isEmpty && !seen.contains(candidate) {
            seen.insert(candidate)
            let lowered = candidate.lowercased()
            let matched = words.filter { lowered.contains($0) }.count
            // The last path component matters most: `zzSoftmax` should find `…/attn/Softmax`.
            let last = lowered.split(separator: "/").last.map(String.init) ?? lowered
            let distance = Swift.min(editDistance(target, Array(lowered.utf8)), editDistance(target, Array(last.utf8)))
            scored.append((candidate, lowered.contains(query), matched, distance))
        }
        scored.sort { left, right in
            if left.contains != right.contains { return left.contains }
            if left.words != right.words { return left.words > right.words }
            if left.distance != right.distance { return left.distance < right.distance }
            return left.name < right.name
        }
        return scored.prefix(limit).map(\.name)
    }

    /// Levenshtein distance over bytes, two rows.
    static func editDistance(_ left: [UInt8], _ right: [UInt8]) -> Int {
        if left.isEmpty { return right.count }
        if right.isEmpty { return left.count }
        var previous = Array(0...right.count)
        var current = [Int](repeating: 0, count: right.count + 1)
        for (row, leftByte) in left.enumerated() {
            current[0] = row + 1
            for (column, rightByte) in right.enumerated() {
                let substitution = previous[column] + (leftByte == rightByte ? 0 : 1)
                current[column + 1] = Swift.min(substitution, previous[column + 1] + 1, current[column] + 1)
            }
            swap(&previous, &current)
        }
        return previous[right.count]
    }
}
