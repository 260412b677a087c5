import Tensor

/// Token rows as a prefix tree, so that the text network computes each shared prefix once.
///
/// Why it is exact: with the causal mask, the state at a position depends only on the tokens up to
/// it, so rows that begin with the same tokens have the same states there. The 160 default
/// prompts (16 templates x 10 labels, each template's words before the label shared by ten rows)
/// need 1164 token positions, of which 482 are distinct prefixes. The tree's nodes are laid out as
/// one sequence, each node after its parent, and run as a single row: the positional embedding of
/// a node is that of its depth, and the attention mask lets a node see exactly its ancestors and
/// itself (`visibilityMask`), which are the positions its row would have seen. Each row's feature
/// is then read at its last node (its EOT). Keys that are not ancestors get weight exp(-inf) = 0,
/// and ancestors come in the same order as in the row, so only the GEMM blocking differs from
/// running the rows one by one.
public struct PromptPrefixTree: Sendable, Hashable {
    /// The token of each node; a node comes after its parent.
    public let tokens: [Int64]
    /// Each node's position in its rows (0 for the start token).
    public let depths: [Int]
    /// Each node's parent, -1 for a first token.
    public let parents: [Int]
    /// The token-matrix rows this tree holds, ascending.
    public let rows: [Int]
    /// For each of `rows`, the node of its last needed token.
    public let ends: [Int]

    /// Nodes in the tree (the length of the sequence it runs as).
    public var count: Int { tokens.count }

    /// Trees over the rows of `tokens` ([rows, width] int64), row r using its first `needed[r]`
    /// tokens, each tree with at most `maximumNodes` nodes (at least the longest need), rows kept
    /// in order.
    public static func build(tokens: Tensor, needed: [Int], maximumNodes: Int) -> [PromptPrefixTree] {
        guard tokens.rank == 2, tokens.dataType == .int64, needed.count == tokens.shape[0] else { return [] }
        let width = tokens.shape[1]
        let values = tokens.int64s
        let limit = max(maximumNodes, needed.max() ?? 1)
        var trees: [PromptPrefixTree] = []
        var builder = Builder()
        for row in 0..<needed.count {
            let length = min(max(needed[row], 1), width)
            let sequence = Array(values[(row * width)..<(row * width + length)])
            if builder.count + builder.newNodes(for: sequence) > limit, !builder.rows.isEmpty {
                trees.append(builder.tree)
                builder = Builder()
            }
            builder.add(row: row, sequence: sequence)
        }
        if !builder.rows.isEmpty { trees.append(builder.tree) }
        return trees
    }

    /// The additive attention mask, [count, count] row-major: 0 where the column's node is the
    /// row's node or one of its ancestors, -inf elsewhere.
    public func visibilityMask() -> [Float] {
        var mask = [Float](repeating: -.infinity, count: count * count)
        for node in 0..<count {
            var ancestor = node
            while ancestor >= 0 {
                mask[node * count + ancestor] = 0
                ancestor = parents[ancestor]
            }
        }
        return mask
    }

    private struct Builder {
        var tokens: [Int64] = [], depths: [Int] = [], parents: [Int] = [], rows: [Int] = [], ends: [Int] = []
        var children: [Int: [Int64: Int]] = [:]   // parent (-1 for the root) -> token -> node

        var count: Int { tokens.count }

        func newNodes(for sequence: [Int64]) -> Int {
            var node = -1
            for (position, token) in sequence.enumerated() {
                guard let next = children[node]?[token] else { return sequence.count - position }
                node = next
            }
            return 0
        }

        mutating func add(row: Int, sequence: [Int64]) {
            var node = -1
            for (position, token) in sequence.enumerated() {
                if let next = children[node]?[token] {
                    node = next
                    continue
                }
                let created = tokens.count
                tokens.append(token)
                depths.append(position)
                parents.append(node)
                children[node, default: [:]][token] = created
                node = created
            }
            rows.append(row)
            ends.append(node)
        }

        var tree: PromptPrefixTree {
            PromptPrefixTree(tokens: tokens, depths: depths, parents: parents, rows: rows, ends: ends)
        }
    }
}
