import Foundation
import ONNXLoader
import Tensor

/// CLIP's text network with true-length encoding.
///
/// Token rows are `SOT, ids, EOT, 0...` padded to 77, and real prompts use 7–12 tokens. When the
/// loaded graph passes `TextLengthSpecialization.analyze`, rows are grouped by the length they
/// need (their ArgMax position + 1, the graph's own EOT rule), each group runs through a graph
/// specialized to its length, and the features are put back in row order. Otherwise every row
/// runs through the full 77-token graph. Both give the same features (≤ 1e-5 relative; only the
/// GEMM blocking differs).
///
/// With the rewrites on, rows are first laid out as prefix trees (`PromptPrefixTree`): one run
/// per tree computes every shared prefix once (482 of the default prompts' 1164 token positions).
/// The length buckets are the path when that is switched off or the graph's EOT gather does not
/// match `EOTPositionRewrite`.
///
/// Switches: `ACTION_CLIP_DISABLE_REWRITES=prefixtree` falls back to the length buckets,
/// `ACTION_CLIP_DISABLE_REWRITES=textlength` or `ACTION_CLIP_FUSE=0` (see `RewriteOptions`) force
/// the full-length path.
public final class TextEncoder: @unchecked Sendable {
    /// A text-encoding error, with the rows or lengths concerned in its message.
    public struct Failure: Error, CustomStringConvertible {
        public let description: String
    }

    /// Rows that run together at one token length.
    public struct Bucket: Sendable, Equatable {
        /// Tokens per row in this run (the longest need among `rows`).
        public let length: Int
        /// Row indices into the caller's token matrix, ascending.
        public let rows: [Int]
        /// Every row needs exactly `length` tokens: each has its EOT at position length - 1, so
        /// the run can use the program with `EOTPositionRewrite` (the last block at one position).
        public let endsAtLastToken: Bool

        public init(length: Int, rows: [Int], endsAtLastToken: Bool = false) {
            self.length = length
            self.rows = rows
            self.endsAtLastToken = endsAtLastToken
        }
    }

    public let model: ONNXModel
    /// The graph as exported (77 tokens), compiled with the same rewrites.
    public let fullProgram: GraphProgram
    /// Nil when the graph did not pass the checks or the switch is off; see `fallbackReason`.
    public let specialization: TextLengthSpecialization?
    /// Why the full-length path is used, nil when true-length encoding is active.
    public let fallbackReason: String?
    public let options: RewriteOptions
    /// Upper bound on the runs per call: each run has a fixed cost (one pass over ~1100 nodes).
    public let maximumBuckets: Int
    /// The fixed cost of one extra run, in token-rows of work (measured: one run of the full-size
    /// graph costs about as much as 8 more token positions across a bucket).
    public let runCostInTokens: Int

    /// The planner's price of one more run, in tokens; `ACTION_CLIP_TEXT_RUN_COST` overrides it.
    public static var defaultRunCost: Int {
        ProcessInfo.processInfo.environment["ACTION_CLIP_TEXT_RUN_COST"].flatMap { Int($0) }.map { max(0, $0) } ?? 8
    }

    private let lock = NSLock()
    /// Compiled prefix-tree programs (a handful: one label set per job, in practice).
    private var treePrograms: [PromptPrefixTree: GraphProgram] = [:]
    /// Why the prefix-tree path is not used, once it failed to match (nil while usable).
    private var treeFailure: String?

    /// Largest tree per run by default: its masks hold count² floats (1 MiB at 512) and its
    /// attention costs count² per head, so a large label set is cut into several trees.
    public static let defaultMaximumTreeNodes = 512
    /// Largest tree per run (at least 77, the longest row).
    public let maximumTreeNodes: Int
    /// Switch name of the prefix-tree path (`ACTION_CLIP_DISABLE_REWRITES=prefixtree`).
    public static let prefixTreeSwitch = "prefixtree"
    /// Compiled programs by token length and whether `EOTPositionRewrite` was added.
    private var programs: [ProgramKey: GraphProgram] = [:]

    private struct ProgramKey: Hashable {
        let length: Int
        let eotAtLastToken: Bool
    }

    /// Compiles the full graph and, when the checks pass, prepares the specialization.
    public init(model: ONNXModel, options: RewriteOptions = .fromEnvironment(),
                maximumBuckets: Int = 6, runCostInTokens: Int = TextEncoder.defaultRunCost,
                maximumTreeNodes: Int = TextEncoder.defaultMaximumTreeNodes) throws {
        self.model = model
        self.maximumTreeNodes = max(TextLengthSpecialization.contextLength, maximumTreeNodes)
        self.options = options
        self.maximumBuckets = max(1, maximumBuckets)
        self.runCostInTokens = max(0, runCostInTokens)
        self.fullProgram = try GraphProgram(model: model, options: options)
        let switchedOn = options.enabled && !options.disabled.contains(TextLengthSpecialization.rewriteName)
        if !switchedOn {
            specialization = nil
            fallbackReason = "true-length text encoding is switched off"
        } else {
            switch TextLengthSpecialization.analyze(model.graph) {
            case .specializable(let found):
                specialization = found
                fallbackReason = nil
            case .fallback(let reason):
                specialization = nil
                fallbackReason = reason
            }
        }
        guard fullProgram.inputs.count == 1, fullProgram.outputs.count == 1 else {
            throw Failure(description: "text model has \(fullProgram.inputs.count) inputs and \(fullProgram.outputs.count) outputs; expected one of each")
        }
    }

    /// Whether rows run at their true length.
    public var usesTrueLength: Bool { specialization != nil }

    /// Whether runs whose rows all end at their last token get the `eot-position` program.
    public var usesEOTPosition: Bool {
        specialization != nil && options.allows(name: EOTPositionRewrite.ruleName)
    }

    /// The compiled graph for `length` tokens (77: the full graph), compiled once per length.
    /// With `eotAtLastToken` (and the `eot-position` switch on) the graph also has
    /// `EOTPositionRewrite(position: length - 1)`: **only** for inputs whose every row has its
    /// EOT (largest id) at position `length - 1`, as a `Bucket` with `endsAtLastToken` promises.
    public func program(length: Int, eotAtLastToken: Bool = false) throws -> GraphProgram {
        let context = TextLengthSpecialization.contextLength
        let eot = eotAtLastToken && usesEOTPosition
        guard let specialization, length != context || eot else { return fullProgram }
        let key = ProgramKey(length: length, eotAtLastToken: eot)
        lock.lock()
        defer { lock.unlock() }
        if let cached = programs[key] { return cached }
        let clock = ContinuousClock()
        let start = clock.now
        var specialized = model
        specialized.graph = try specialization.graph(length: length)
        let program = try GraphProgram(model: specialized, options: options,
                                       rules: RewritePipeline.rules(eot: eot ? .position(length - 1) : nil))
        programs[key] = program
        Self.reportCompile("the \(length)-token program\(eot ? " (EOT at the last token)" : "")", since: start, clock)
        return program
    }

    /// With `ACTION_CLIP_TIMING`, one line on stderr per compiled text program.
    private static func reportCompile(_ what: String, since start: ContinuousClock.Instant, _ clock: ContinuousClock) {
        guard let profile = ExecutionProfile.current, profile.timing, profile.printsRuns else { return }
        let milliseconds = (clock.now - start).seconds * 1000
        FileHandle.standardError.write(Data("text: compiled \(what) in \(String(format: "%.1f", milliseconds)) ms\n".utf8))
    }

    /// The program for one bucket's runs.
    public func program(for bucket: Bucket) throws -> GraphProgram {
        try program(length: bucket.length, eotAtLastToken: bucket.endsAtLastToken)
    }

    /// Text features: [rows, 77] int64 → [rows, D]. True length when possible.
    /// At most `chunkRows` 77-token rows' worth of tokens run at once, to bound activations.
    public func encode(_ tokens: Tensor, chunkRows: Int = 256) throws -> Tensor {
        try checkTokens(tokens)
        let rows = tokens.shape[0]
        guard specialization != nil, tokens.shape[1] == TextLengthSpecialization.contextLength, rows > 0 else {
            return try encodeFullLength(tokens, chunkRows: chunkRows)
        }
        if let features = try encodeAsTrees(tokens) { return features }
        let buckets = plan(tokens)
        var pieces: [(rows: [Int], features: Tensor)] = []
        for bucket in buckets {
            let program = try program(for: bucket)
            let perRun = max(1, chunkRows * TextLengthSpecialization.contextLength / bucket.length)
            var start = 0
            while start < bucket.rows.count {
                let rowSet = Array(bucket.rows[start..<min(start + perRun, bucket.rows.count)])
                let input = try Self.gatherRows(tokens, rows: rowSet, length: bucket.length)
                pieces.append((rowSet, try Self.runSingle(program, input)))
                start += rowSet.count
            }
        }
        return try Self.scatter(pieces, rowCount: rows)
    }

    /// Whether `encode` lays rows out as prefix trees (switch on and the graph's EOT gather matched).
    public var usesPrefixTree: Bool {
        lock.lock()
        defer { lock.unlock() }
        return specialization != nil && treeFailure == nil && options.allows(name: Self.prefixTreeSwitch)
            && options.allows(name: EOTPositionRewrite.ruleName)
    }

    /// Most trees per call. Each tree is its own compiled program (its masks and positional rows
    /// are constants; about 20 ms to compile the default prompts' 482-node tree), so a label set
    /// needing more trees than this runs in length buckets, which need at most `maximumBuckets`.
    public static let maximumTrees = 4

    /// The trees `encode` runs for `tokens` (empty when it uses the length buckets).
    public func trees(_ tokens: Tensor) -> [PromptPrefixTree] {
        guard usesPrefixTree, tokens.rank == 2, tokens.dataType == .int64,
              tokens.shape[1] == TextLengthSpecialization.contextLength else { return [] }
        let trees = PromptPrefixTree.build(tokens: tokens, needed: Self.neededLengths(tokens), maximumNodes: maximumTreeNodes)
        return trees.count <= Self.maximumTrees ? trees : []
    }

    /// The compiled graph for one tree: `TextLengthSpecialization.graph(tree:)` with the features
    /// taken at the tree's end nodes. Throws `Failure` if the EOT gather does not match the rule.
    public func program(for tree: PromptPrefixTree) throws -> GraphProgram {
        guard let specialization else { throw Failure(description: "true-length text encoding is off") }
        lock.lock()
        defer { lock.unlock() }
        if let cached = treePrograms[tree] { return cached }
        let clock = ContinuousClock()
        let start = clock.now
        var specialized = model
        specialized.graph = try specialization.graph(tree: tree)
        let (graph, applied) = try RewritePipeline.rewrite(specialized, options: options,
                                                           rules: RewritePipeline.rules(eot: .positions(tree.ends)))
        guard applied.contains(where: { $0.name == EOTPositionRewrite.ruleName && $0.count == 1 }) else {
            let reason = "the text graph's EOT gather does not match the eot-position rule"
            treeFailure = reason
            throw Failure(description: reason)
        }
        let program = try GraphProgram(model: specialized, graph: graph, shapeCaching: options.allows(name: "shapecache"))
        // One call needs at most maximumTrees programs; older label sets' programs are dropped.
        if treePrograms.count >= Self.maximumTrees { treePrograms.removeAll() }
        treePrograms[tree] = program
        Self.reportCompile("the \(tree.count)-node prefix-tree program (\(tree.rows.count) rows)", since: start, clock)
        return program
    }

    /// Compiles what `encode(tokens)` will run (for a thread that prepares ahead).
    public func prepare(_ tokens: Tensor) throws {
        let trees = trees(tokens)
        if !trees.isEmpty {
            do {
                for tree in trees { _ = try program(for: tree) }
                return
            } catch is Failure {
                // The rule did not match: the buckets below are what encode will use.
            }
        }
        for bucket in plan(tokens) { _ = try program(for: bucket) }
    }

    /// The prefix-tree path, or nil when it is off, the rows need too many trees or the rule does
    /// not match this graph.
    private func encodeAsTrees(_ tokens: Tensor) throws -> Tensor? {
        let trees = trees(tokens)
        guard !trees.isEmpty else { return nil }
        var pieces: [(rows: [Int], features: Tensor)] = []
        for tree in trees {
            let program: GraphProgram
            do { program = try self.program(for: tree) } catch is Failure { return nil }
            let input = try Tensor(tree.tokens, shape: [1, tree.count])
            pieces.append((tree.rows, try Self.runSingle(program, input)))
        }
        return try Self.scatter(pieces, rowCount: tokens.shape[0])
    }

    /// Text features from the full 77-token graph, in chunks of at most `chunkRows` rows.
    public func encodeFullLength(_ tokens: Tensor, chunkRows: Int = 256) throws -> Tensor {
        try checkTokens(tokens)
        let rows = tokens.shape[0]
        if rows <= chunkRows { return try Self.runSingle(fullProgram, tokens) }
        var pieces: [Tensor] = []
        var start = 0
        while start < rows {
            let count = min(chunkRows, rows - start)
            pieces.append(try Self.runSingle(fullProgram, Self.gatherRows(tokens, rows: Array(start..<start + count), length: tokens.shape[1])))
            start += count
        }
        return try Movement.concat(pieces, axis: 0)
    }

    /// The runs `encode` makes for `tokens` (empty when the full-length path is used).
    public func plan(_ tokens: Tensor) -> [Bucket] {
        guard specialization != nil, tokens.rank == 2, tokens.dataType == .int64,
              tokens.shape[1] == TextLengthSpecialization.contextLength else { return [] }
        return Self.plan(neededLengths: Self.neededLengths(tokens), maximumBuckets: maximumBuckets,
                         runCostInTokens: runCostInTokens,
                         lastTokenSavingPercent: usesEOTPosition ? Self.lastTokenSavingPercent : 0)
    }

    /// Tokens each row needs: the first position of its largest id (the graph's ArgMax rule,
    /// which finds EOT = 49407, the largest id) plus one.
    public static func neededLengths(_ tokens: Tensor) -> [Int] {
        let width = tokens.shape[1]
        let values = tokens.int64s
        return (0..<tokens.shape[0]).map { row in
            var best = 0
            for column in 1..<max(1, width) where values[row * width + column] > values[row * width + best] {
                best = column
            }
            return best + 1
        }
    }

    /// How much cheaper a run is, in percent of its rows·length, when every row ends at the last
    /// token (the `eot-position` program). Measured on the full-size stand-in, the 160 default
    /// prompts: 5.0-5.3 % less text time with 946 of 1184 tokens in such runs, so about 6 %.
    public static let lastTokenSavingPercent = 6

    /// Groups rows by needed length so that the total work, Σ rows·length plus `runCostInTokens`
    /// per run, is smallest with at most `maximumBuckets` runs. Each run's length is the largest
    /// need in it; a run of one length costs `lastTokenSavingPercent` less (its rows all end at
    /// the last token). Exact dynamic programming over the distinct lengths (at most 77).
    public static func plan(neededLengths: [Int], maximumBuckets: Int, runCostInTokens: Int,
                            lastTokenSavingPercent: Int = 0) -> [Bucket] {
        guard !neededLengths.isEmpty else { return [] }
        let distinct = Array(Set(neededLengths)).sorted()
        var countOf: [Int: Int] = [:]
        for length in neededLengths { countOf[length, default: 0] += 1 }
        let counts = distinct.map { countOf[$0] ?? 0 }
        let n = distinct.count
        let limit = max(1, min(maximumBuckets, n))
        // prefix[i] = rows with the first i distinct lengths.
        var prefix = [0]
        for count in counts { prefix.append((prefix.last ?? 0) + count) }
        // best[k][i]: cheapest cover of the first i lengths with k runs; the last run ends at i-1.
        let infinity = Int.max / 4
        // Bounded so that an absurd ACTION_CLIP_TEXT_RUN_COST cannot overflow the sums.
        let runCost = min(max(0, runCostInTokens), 1 << 24) * 100
        var best = [[Int]](repeating: [Int](repeating: infinity, count: n + 1), count: limit + 1)
        var split = [[Int]](repeating: [Int](repeating: 0, count: n + 1), count: limit + 1)
        best[0][0] = 0
        for k in 1...limit {
            for i in k...n {
                for j in (k - 1)..<i where best[k - 1][j] < infinity {
                    // In hundredths of a token, so the saving stays an integer.
                    let saving = i - j == 1 ? min(100, max(0, lastTokenSavingPercent)) : 0
                    let cost = best[k - 1][j] + (prefix[i] - prefix[j]) * distinct[i - 1] * (100 - saving) + runCost
                    if cost < best[k][i] { best[k][i] = cost; split[k][i] = j }
                }
            }
        }
        var runs = 1
        for k in 1...limit where best[k][n] < best[runs][n] { runs = k }
        var boundaries: [(from: Int, to: Int)] = []
        var end = n
        var k = runs
        while k > 0 {
            let start = split[k][end]
            boundaries.append((start, end))
            end = start
            k -= 1
        }
        return boundaries.reversed().map { range in
            let lengths = Set(distinct[range.from..<range.to])
            let rows = neededLengths.indices.filter { lengths.contains(neededLengths[$0]) }
            return Bucket(length: distinct[range.to - 1], rows: rows, endsAtLastToken: lengths.count == 1)
        }
    }

    func checkTokens(_ tokens: Tensor) throws {
        guard tokens.rank == 2, tokens.dataType == .int64 else {
            throw Failure(description: "text tokens must be [rows, 77] int64, got \(tokens.dataType)\(tokens.shape)")
        }
    }

    /// Rows `rows` of `tokens`, first `length` columns: [rows.count, length].
    static func gatherRows(_ tokens: Tensor, rows: [Int], length: Int) throws -> Tensor {
        let width = tokens.shape[1]
        let result = try Tensor.uninitialized(.int64, shape: [rows.count, length])
        let source = tokens.int64s
        let destination = result.mutableInt64s
        for (index, row) in rows.enumerated() {
            for column in 0..<length { destination[index * length + column] = source[row * width + column] }
        }
        return result
    }

    /// Puts each run's feature rows back at their original row indices.
    static func scatter(_ pieces: [(rows: [Int], features: Tensor)], rowCount: Int) throws -> Tensor {
        guard let first = pieces.first?.features, first.rank == 2 else {
            throw Failure(description: "text network produced no rank-2 features")
        }
        let width = first.shape[1]
        let result = try Tensor.uninitialized(.float32, shape: [rowCount, width])
        let destination = result.mutableFloats
        var filled = 0
        for piece in pieces {
            guard piece.features.shape == [piece.rows.count, width], piece.features.dataType == .float32 else {
                throw Failure(description: "text network produced \(piece.features.dataType)\(piece.features.shape), expected [\(piece.rows.count), \(width)] float32")
            }
            let source = piece.features.floats
            for (index, row) in piece.rows.enumerated() {
                for column in 0..<width { destination[row * width + column] = source[index * width + column] }
            }
            filled += piece.rows.count
        }
        guard filled == rowCount else { throw Failure(description: "text runs covered \(filled) of \(rowCount) rows") }
        return result
    }

    static func runSingle(_ program: GraphProgram, _ input: Tensor) throws -> Tensor {
        let outputs = try program.run([program.inputs[0].info.name: input])
        guard let output = outputs[program.outputs[0].info.name] else {
            throw Failure(description: "text network produced no output")
        }
        return output
    }
}
