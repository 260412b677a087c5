import Foundation
import Testing
import ONNXLoader
import Tensor
@testable import Models

/// True-length text encoding: the precondition checks and equality with the 77-token run.
@Suite struct TextLengthTests {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Fixtures/tiny")

    static func tinyTextModel() throws -> ONNXModel {
        try ONNXLoader.load(contentsOf: fixtures.appendingPathComponent("vit-32-8f-text_clip.onnx").path)
    }

    /// Rows shaped like real prompts: SOT, k ids, EOT, zeros; `counts` gives k per row.
    static func tokenRows(_ counts: [Int], seed: UInt64 = 5) throws -> Tensor {
        var random = SplitMix64(seed: seed)
        var ids: [Int64] = []
        for count in counts {
            var row = [Int64](repeating: 0, count: 77)
            row[0] = 49406
            for position in 1...count { row[position] = Int64(random.next() % 49405) + 1 }
            row[count + 1] = 49407
            ids += row
        }
        return try Tensor(ids, shape: [counts.count, 77])
    }

    static func maximumRelativeDifference(_ a: Tensor, _ b: Tensor) -> Double {
        let (first, second) = ((try? a.toArray(Float.self)) ?? [], (try? b.toArray(Float.self)) ?? [.nan])
        guard first.count == second.count else { return .infinity }
        var worst = 0.0
        let scale = max(1e-30, second.map { abs(Double($0)) }.max() ?? 0)
        for (x, y) in zip(first, second) { worst = max(worst, abs(Double(x) - Double(y)) / scale) }
        return worst
    }

    @Test func tinyGraphPassesEveryCheck() throws {
        let analysis = TextLengthSpecialization.analyze(try Self.tinyTextModel().graph)
        guard case .specializable(let specialization) = analysis else {
            Issue.record("expected the tiny emu181 text graph to be specializable: \(analysis)")
            return
        }
        #expect(specialization.maskCount == 2)
        #expect(specialization.embeddingWidth == 64)
        let cut = try specialization.graph(length: 12)
        #expect(cut.inputs[0].shape?.last == .fixed(12))
        #expect(cut.initializers.values.contains { $0.shape == [12, 64] })
        #expect(throws: TextLengthError.self) { try specialization.graph(length: 0) }
        #expect(throws: TextLengthError.self) { try specialization.graph(length: 78) }
    }

    @Test(arguments: [false, true])
    func trueLengthEqualsFullRunInOriginalOrder(prefixTrees: Bool) throws {
        let options = prefixTrees ? RewriteOptions() : RewriteOptions(disabled: [TextEncoder.prefixTreeSwitch])
        let encoder = try TextEncoder(model: try Self.tinyTextModel(), options: options)
        #expect(encoder.usesTrueLength)
        // Mixed lengths, out of order, including the longest possible row (EOT at 76).
        let tokens = try Self.tokenRows([9, 3, 40, 10, 75, 6, 9, 1, 20, 11])
        let fast = try encoder.encode(tokens)
        let full = try encoder.encodeFullLength(tokens)
        #expect(fast.shape == full.shape)
        #expect(Self.maximumRelativeDifference(fast, full) < 1e-5)
        // The plan covers every row exactly once, at a length no shorter than it needs.
        let needed = TextEncoder.neededLengths(tokens)
        let buckets = encoder.plan(tokens)
        #expect(buckets.flatMap(\.rows).sorted() == Array(0..<10))
        #expect(buckets.count <= encoder.maximumBuckets)
        for bucket in buckets { for row in bucket.rows { #expect(needed[row] <= bucket.length) } }
        // Small chunks split buckets into several runs; the result must not change.
        let chunked = try encoder.encode(tokens, chunkRows: 1)
        #expect(Self.maximumRelativeDifference(chunked, full) < 1e-5)
    }

    @Test func matchesOnnxRuntimeDump() throws {
        let dump = Self.fixtures.appendingPathComponent("dump-text")
        let tokens = try NPY.read(path: dump.appendingPathComponent("inputs/text.npy").path)
        let expected = try NPY.read(path: dump.appendingPathComponent("outputs/text_features.npy").path)
        let encoder = try TextEncoder(model: try Self.tinyTextModel(), options: RewriteOptions())
        let features = try encoder.encode(tokens)
        #expect(features.shape == expected.shape)
        #expect(Self.maximumRelativeDifference(features, expected) < 1e-5)
    }

    @Test func switchesTurnItOff() throws {
        let model = try Self.tinyTextModel()
        let off = try TextEncoder(model: model, options: RewriteOptions(disabled: ["textlength"]))
        #expect(!off.usesTrueLength)
        #expect(off.plan(try Self.tokenRows([3])).isEmpty)
        let none = try TextEncoder(model: model, options: .none)
        #expect(none.fallbackReason != nil)
    }

    // MARK: EOT at the last token (eot-position + select-rows)

    /// The query positions of the program's narrowed attention nodes (select-rows sets them).
    static func queryPositions(_ program: GraphProgram) -> [Int64] {
        program.steps.compactMap { step in
            guard step.node.opType == OpKind.fusedAttention.rawValue else { return nil }
            return try? step.node.int("query_position")
        }
    }

    @Test func runsEndingAtTheirLastTokenNarrowTheLastBlock() throws {
        // The length buckets (the path without prefix trees).
        let encoder = try TextEncoder(model: try Self.tinyTextModel(), options: RewriteOptions(disabled: [TextEncoder.prefixTreeSwitch]))
        #expect(encoder.usesEOTPosition)
        // Two lengths far apart: two runs, each of rows that all need exactly its length.
        let tokens = try Self.tokenRows([5, 30, 5, 30, 30, 5])
        let buckets = encoder.plan(tokens)
        #expect(buckets.map(\.length) == [7, 32])
        #expect(buckets.allSatisfy { $0.endsAtLastToken })
        for bucket in buckets {
            // The last of the tiny graph's two blocks computes the EOT position only.
            #expect(Self.queryPositions(try encoder.program(for: bucket)) == [Int64(bucket.length - 1)])
            #expect(Self.queryPositions(try encoder.program(length: bucket.length)).isEmpty)
        }
        let fast = try encoder.encode(tokens)
        let full = try encoder.encodeFullLength(tokens)
        #expect(Self.maximumRelativeDifference(fast, full) < 1e-5)
        // And against the graph exactly as exported (no rewrite at all).
        let exported = try TextEncoder(model: try Self.tinyTextModel(), options: .none).encodeFullLength(tokens)
        #expect(Self.maximumRelativeDifference(fast, exported) < 1e-5)
        // Every row at 77 tokens (EOT at 76): the full-length graph gets the rule too.
        let longest = try Self.tokenRows([75, 75])
        #expect(Self.queryPositions(try encoder.program(length: 77, eotAtLastToken: true)) == [76])
        #expect(Self.maximumRelativeDifference(try encoder.encode(longest), try encoder.encodeFullLength(longest)) < 1e-5)
    }

    @Test func mixedRunsAndTheSwitchKeepTheEOTGather() throws {
        let model = try Self.tinyTextModel()
        let encoder = try TextEncoder(model: model, options: RewriteOptions(disabled: [TextEncoder.prefixTreeSwitch]))
        // 8 and 9 tokens merge into one 9-token run, where the 8-token rows' EOT is not last.
        let tokens = try Self.tokenRows([6, 7, 6])
        let buckets = encoder.plan(tokens)
        #expect(buckets.count == 1)
        #expect(buckets.first?.endsAtLastToken == false)
        let bucket = try #require(buckets.first)
        #expect(Self.queryPositions(try encoder.program(for: bucket)).isEmpty)
        #expect(Self.maximumRelativeDifference(try encoder.encode(tokens), try encoder.encodeFullLength(tokens)) < 1e-5)
        let off = try TextEncoder(model: model, options: RewriteOptions(disabled: [EOTPositionRewrite.ruleName]))
        #expect(!off.usesEOTPosition)
        #expect(Self.queryPositions(try off.program(length: 9, eotAtLastToken: true)).isEmpty)
    }

    /// The tiny graph cut to `length`, with the standard fusions applied (the rule runs after them).
    static func fusedGraph(length: Int, edit: (inout ONNXGraph) throws -> Void = { _ in }) throws -> (ONNXGraph, ONNXModel) {
        var model = try tinyTextModel()
        guard case .specializable(let specialization) = TextLengthSpecialization.analyze(model.graph) else {
            throw TextLengthError("the tiny graph should be specializable")
        }
        model.graph = try specialization.graph(length: length)
        try edit(&model.graph)
        let rules = RewritePipeline.standard.filter { !($0 is SelectRowsRewrite) }
        return (try RewritePipeline.rewrite(model, options: RewriteOptions(), rules: rules).graph, model)
    }

    @Test func eotRuleReplacesOnlyTheDocumentedPattern() throws {
        let (graph, model) = try Self.fusedGraph(length: 9)
        var rewritten = graph
        #expect(try EOTPositionRewrite(position: 8).apply(to: &rewritten, model: model) == 1)
        // The ArgMax, the Flatten and the two Reshapes are gone; one Gather on axis 1 remains.
        for removed in ["ArgMax", "Flatten", "Reshape", "NonZero"] {
            #expect(!rewritten.nodes.contains { $0.opType == removed && $0.domain.isEmpty }, "\(removed) should be gone")
        }
        #expect(rewritten.nodes.contains { $0.opType == "Gather" && (try? $0.int("axis")) == 1 })
        #expect(try EOTPositionRewrite(position: -1).apply(to: &rewritten, model: model) == 0)

        // Another index formula: arange * L replaced by arange + L. Left alone.
        let (changedFormula, _) = try Self.fusedGraph(length: 9) { graph in
            let add = try #require(graph.nodes.firstIndex { node in
                node.opType == "Add" && graph.nodes.contains { $0.opType == "ArgMax" && node.inputs.contains($0.outputs[0]) }
            })
            let mul = try #require(graph.nodes.firstIndex { node in node.opType == "Mul" && graph.nodes[add].inputs.contains(node.outputs[0]) })
            graph.nodes[mul].opType = "Add"
        }
        var formula = changedFormula
        #expect(try EOTPositionRewrite(position: 8).apply(to: &formula, model: model) == 0)

        // ArgMax taking the last index on ties, or a Flatten on another axis: left alone.
        let (lastIndex, _) = try Self.fusedGraph(length: 9) { graph in
            let argMax = try #require(graph.nodes.firstIndex { $0.opType == "ArgMax" })
            graph.nodes[argMax].attributes["select_last_index"] = .int(1)
        }
        var tie = lastIndex
        #expect(try EOTPositionRewrite(position: 8).apply(to: &tie, model: model) == 0)
        let (otherAxis, _) = try Self.fusedGraph(length: 9) { graph in
            let flatten = try #require(graph.nodes.firstIndex { $0.opType == "Flatten" })
            graph.nodes[flatten].attributes["axis"] = .int(1)
        }
        var axis = otherAxis
        #expect(try EOTPositionRewrite(position: 8).apply(to: &axis, model: model) == 0)
    }

    // MARK: Prefix trees

    /// Rows like the real prompts: each template's words, then a label's words, then EOT.
    static func templatedRows(templates: [[Int64]], labels: [[Int64]]) throws -> Tensor {
        var ids: [Int64] = []
        for template in templates {
            for label in labels {
                var row = [Int64](repeating: 0, count: 77)
                let words = template + label
                row[0] = 49406
                for (position, word) in words.enumerated() { row[position + 1] = word }
                row[words.count + 1] = 49407
                ids += row
            }
        }
        return try Tensor(ids, shape: [templates.count * labels.count, 77])
    }

    @Test func prefixTreeSharesPrefixesAndKeepsRowOrder() throws {
        // Two templates x three labels, one label repeated: rows 0 and 2 are the same prompt.
        let tokens = try Self.templatedRows(templates: [[10, 11, 12], [20]], labels: [[5], [6, 7], [5]])
        let needed = TextEncoder.neededLengths(tokens)
        let trees = PromptPrefixTree.build(tokens: tokens, needed: needed, maximumNodes: 512)
        #expect(trees.count == 1)
        let tree = try #require(trees.first)
        // SOT, 10, 11, 12, then 5 EOT and 6 7 EOT; 20, then 5 EOT and 6 7 EOT: 1 + 3 + 2 + 3 + 1 + 2 + 3 nodes.
        #expect(tree.count == 15)
        #expect(tree.rows == Array(0..<6))
        #expect(tree.ends[0] == tree.ends[2])
        for node in 0..<tree.count {
            #expect(tree.parents[node] < node)
            #expect(tree.depths[node] == (tree.parents[node] < 0 ? 0 : tree.depths[tree.parents[node]] + 1))
        }
        for (index, row) in tree.rows.enumerated() { #expect(tree.depths[tree.ends[index]] == needed[row] - 1) }
        let mask = tree.visibilityMask()
        #expect(mask[0] == 0)
        #expect(mask[1] == -.infinity)   // the root does not see its child
        #expect(mask[tree.ends[0] * tree.count] == 0)   // every node sees the start token
        // A small node budget cuts the rows into several trees, in order.
        let cut = PromptPrefixTree.build(tokens: tokens, needed: needed, maximumNodes: 9)
        #expect(cut.count > 1)
        #expect(cut.flatMap(\.rows) == Array(0..<6))
        #expect(cut.allSatisfy { $0.count <= 9 })
    }

    @Test func prefixTreeEncodingEqualsFullRuns() throws {
        let model = try Self.tinyTextModel()
        let encoder = try TextEncoder(model: model, options: RewriteOptions())
        #expect(encoder.usesPrefixTree)
        var random = SplitMix64(seed: 11)
        func words(_ count: Int) -> [Int64] { (0..<count).map { _ in Int64(random.next() % 49000) + 1 } }
        let templates = [words(4), words(3), [], words(6)]
        let labels = [words(1), words(2), words(1), words(3), words(2), words(1), words(3), words(2), words(1), words(2)]
        let tokens = try Self.templatedRows(templates: templates, labels: labels)
        let trees = encoder.trees(tokens)
        #expect(trees.count == 1)
        #expect((trees.first?.count ?? 0) < TextEncoder.neededLengths(tokens).reduce(0, +))
        let fast = try encoder.encode(tokens)
        let full = try encoder.encodeFullLength(tokens)
        #expect(Self.maximumRelativeDifference(fast, full) < 1e-5)
        let exported = try TextEncoder(model: model, options: .none).encodeFullLength(tokens)
        #expect(Self.maximumRelativeDifference(fast, exported) < 1e-5)
        // Several trees (a small node budget) and the bucket path give the same features.
        let cut = try TextEncoder(model: model, options: RewriteOptions(), maximumTreeNodes: 77)
        #expect((2...TextEncoder.maximumTrees).contains(cut.trees(tokens).count))
        #expect(Self.maximumRelativeDifference(try cut.encode(tokens), full) < 1e-5)
        // More trees than maximumTrees: the length buckets instead.
        let many = try Self.templatedRows(templates: (0..<12).map { _ in words(5) }, labels: labels)
        #expect(cut.trees(many).isEmpty)
        #expect(Self.maximumRelativeDifference(try cut.encode(many), try cut.encodeFullLength(many)) < 1e-5)
        let buckets = try TextEncoder(model: model, options: RewriteOptions(disabled: [TextEncoder.prefixTreeSwitch]))
        #expect(!buckets.usesPrefixTree)
        #expect(buckets.trees(tokens).isEmpty)
        #expect(Self.maximumRelativeDifference(try buckets.encode(tokens), full) < 1e-5)
        // One row, and the longest row (77 tokens).
        let single = try Self.tokenRows([75])
        #expect(Self.maximumRelativeDifference(try encoder.encode(single), try encoder.encodeFullLength(single)) < 1e-5)
    }

    @Test func eotRuleTakesTreePositions() throws {
        let (graph, model) = try Self.fusedGraph(length: 9)
        var rewritten = graph
        #expect(try EOTPositionRewrite(positions: [8, 3, 8]).apply(to: &rewritten, model: model) == 1)
        #expect(rewritten.nodes.contains { $0.opType == "Gather" && (try? $0.int("axis")) == 0 && $0.name.hasPrefix("EOTPosition") })
        var empty = graph
        #expect(try EOTPositionRewrite(positions: []).apply(to: &empty, model: model) == 0)
        #expect(try EOTPositionRewrite(positions: [-1]).apply(to: &empty, model: model) == 0)
    }

    // MARK: Fallbacks

    static func reason(_ graph: ONNXGraph) -> String? {
        if case .fallback(let reason) = TextLengthSpecialization.analyze(graph) { return reason }
        return nil
    }

    static func maskNodeIndices(_ graph: ONNXGraph) -> [Int] {
        graph.nodes.indices.filter { index in
            guard graph.nodes[index].opType == "Constant", let value = try? graph.nodes[index].tensor("value") else { return false }
            return value.shape == [1, 77, 77]
        }
    }

    @Test func nonCausalMaskFallsBack() throws {
        var graph = try Self.tinyTextModel().graph
        let index = try #require(Self.maskNodeIndices(graph).last)
        let mask = try #require(try graph.nodes[index].tensor("value")).copy()
        mask.mutableFloats[5] = 0  // row 0 may now see position 5
        graph.nodes[index].attributes["value"] = .tensor(mask)
        let reason = try #require(Self.reason(graph))
        #expect(reason.contains("not exactly causal"))
        // A finite large negative is not -inf either: not exact, so not accepted.
        mask.mutableFloats[5] = -1e9
        graph.nodes[index].attributes["value"] = .tensor(mask)
        #expect(Self.reason(graph) != nil)
    }

    @Test func maskAsInitializerIsAccepted() throws {
        var graph = try Self.tinyTextModel().graph
        for index in Self.maskNodeIndices(graph).reversed() {
            let node = graph.nodes.remove(at: index)
            graph.initializers[node.outputs[0]] = try node.tensor("value")
            graph.initializerNames.append(node.outputs[0])
        }
        guard case .specializable(let specialization) = TextLengthSpecialization.analyze(graph) else {
            Issue.record("masks stored as initializers should be accepted")
            return
        }
        #expect(specialization.maskCount == 2)
        var model = try Self.tinyTextModel()
        model.graph = graph
        let encoder = try TextEncoder(model: model, options: RewriteOptions())
        let tokens = try Self.tokenRows([4, 12, 2])
        #expect(Self.maximumRelativeDifference(try encoder.encode(tokens), try encoder.encodeFullLength(tokens)) < 1e-5)
    }

    @Test func bakedLengthOrBatchFallsBack() throws {
        let base = try Self.tinyTextModel().graph
        // An integer constant holding 77, as the default exporter folds `x.shape[1]`.
        var folded = base
        folded.nodes.insert(ONNXNode(name: "folded", opType: "Constant", domain: "", inputs: [], outputs: ["seventy_seven"],
                                     attributes: ["value": .tensor(Tensor(scalar: Int64(77)))]), at: 0)
        #expect(Self.reason(folded)?.contains("holds 77") == true)
        // A sequence-sized constant that is neither the positional embedding nor a mask.
        var extra = base
        extra.initializers["bias77"] = try Tensor.zeros(.float32, shape: [77, 4])
        extra.initializerNames.append("bias77")
        #expect(Self.reason(extra)?.contains("dimension of 77") == true)
        // A Reshape with a constant shape holding the declared batch (1): [-1, 1, 64].
        var reshaped = base
        let reshapeIndex = try #require(reshaped.nodes.firstIndex { $0.opType == "Reshape" })
        reshaped.initializers["baked_shape"] = try Tensor([Int64(-1), 1, 64], shape: [3])
        reshaped.initializerNames.append("baked_shape")
        reshaped.nodes[reshapeIndex].inputs[1] = "baked_shape"
        #expect(Self.reason(reshaped)?.contains("declared batch") == true)
    }

    @Test func otherReadersOfTheTokensFallBack() throws {
        var graph = try Self.tinyTextModel().graph
        let input = graph.inputs[0].name
        graph.nodes.append(ONNXNode(name: "peek", opType: "Shape", domain: "", inputs: [input], outputs: ["peek_out"], attributes: [:]))
        #expect(Self.reason(graph)?.contains("peek") == true)
    }

    @Test func outputNotTakenAtEOTFallsBack() throws {
        // Rewire the EOT Gather's indices to a constant 0: the output no longer depends on ArgMax.
        var graph = try Self.tinyTextModel().graph
        graph.initializers["zero_index"] = try Tensor([Int64(0)], shape: [1])
        graph.initializerNames.append("zero_index")
        let flattenOutputs = Set(graph.nodes.filter { $0.opType == "Flatten" }.map { $0.outputs[0] })
        let eot = try #require(graph.nodes.firstIndex { $0.opType == "Gather" && flattenOutputs.contains($0.inputs[0]) })
        graph.nodes[eot].inputs[1] = "zero_index"
        #expect(Self.reason(graph)?.contains("EOT") == true)
    }

    // MARK: Planning

    @Test func planTradesPaddingAgainstRuns() {
        // One length: one run at that length.
        let single = TextEncoder.plan(neededLengths: [9, 9, 9], maximumBuckets: 6, runCostInTokens: 8)
        #expect(single == [TextEncoder.Bucket(length: 9, rows: [0, 1, 2], endsAtLastToken: true)])
        // Two far-apart lengths with many rows: two runs.
        let lengths = Array(repeating: 8, count: 50) + Array(repeating: 40, count: 50)
        let two = TextEncoder.plan(neededLengths: lengths, maximumBuckets: 6, runCostInTokens: 8)
        #expect(two.map(\.length) == [8, 40])
        // A run cost larger than the padding saved merges them.
        let merged = TextEncoder.plan(neededLengths: [8, 9], maximumBuckets: 6, runCostInTokens: 8)
        #expect(merged == [TextEncoder.Bucket(length: 9, rows: [0, 1], endsAtLastToken: false)])
        #expect(two.allSatisfy { $0.endsAtLastToken })
        // The bucket limit holds even when every length differs.
        let many = TextEncoder.plan(neededLengths: Array(1...77).map { $0 }.flatMap { Array(repeating: $0, count: 20) },
                                    maximumBuckets: 3, runCostInTokens: 0)
        #expect(many.count == 3)
        #expect(many.last?.length == 77)
        #expect(TextEncoder.plan(neededLengths: [], maximumBuckets: 3, runCostInTokens: 8).isEmpty)
        // Runs of one length are cheaper (eot-position): two 8-token rows beside ten 9-token rows
        // merge at equal prices (116 against 122 tokens) but not with the 6 % saving.
        let mixed = [8, 8] + Array(repeating: 9, count: 10)
        #expect(TextEncoder.plan(neededLengths: mixed, maximumBuckets: 6, runCostInTokens: 8).count == 1)
        let saving = TextEncoder.plan(neededLengths: mixed, maximumBuckets: 6, runCostInTokens: 8, lastTokenSavingPercent: 6)
        #expect(saving.map(\.length) == [8, 9])
        #expect(saving.allSatisfy { $0.endsAtLastToken })
        // A huge run cost does not overflow.
        #expect(TextEncoder.plan(neededLengths: mixed, maximumBuckets: 6, runCostInTokens: Int.max).count == 1)
    }

    @Test func neededLengthFollowsArgMaxFirstIndex() throws {
        var row = [Int64](repeating: 0, count: 77)
        row[0] = 49406; row[1] = 320; row[2] = 49407
        let zeros = [Int64](repeating: 0, count: 77)
        let tokens = try Tensor(row + zeros, shape: [2, 77])
        #expect(TextEncoder.neededLengths(tokens) == [3, 1])
    }
}
