import Foundation
import Testing
import ONNXLoader
import Tensor
@testable import Models

/// Shared helpers: the tiny stand-ins, feeds, and comparison of a rewritten graph with the graph
/// as exported.
enum RewriteFixtures {
    static let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Fixtures/tiny")

    static func model(_ graph: String) throws -> ONNXModel {
        try ONNXLoader.load(contentsOf: directory.appendingPathComponent("vit-32-8f-\(graph).onnx").path)
    }

    /// Inputs for a tiny graph at `batch`: random floats, or CLIP-like token rows for text.
    static func feeds(_ graph: String, batch: Int, seed: UInt64 = 1) throws -> [String: Tensor] {
        var generator = SplitMix64(seed: seed)
        switch graph {
        case "image_clip": return ["image": try Tensor(generator.floats(batch * 3 * 224 * 224), shape: [batch, 3, 224, 224])]
        case "fusion": return ["image_features": try Tensor(generator.floats(batch * 8 * 64), shape: [batch, 8, 64])]
        default:
            var tokens = [Int64](repeating: 0, count: batch * 77)
            for row in 0..<batch {
                let length = 3 + row * 5
                tokens[row * 77] = 49406
                for position in 1..<length { tokens[row * 77 + position] = Int64(generator.next() % 49000) + 1 }
                tokens[row * 77 + length] = 49407
            }
            return ["text": try Tensor(tokens, shape: [batch, 77])]
        }
    }

    /// Largest |a - b| / max|b| over all outputs.
    static func relativeDifference(_ a: [String: Tensor], _ b: [String: Tensor]) throws -> Float {
        var worst: Float = 0
        for (name, expected) in b {
            guard let actual = a[name], actual.shape == expected.shape else { return .infinity }
            let x = try actual.toArray(Float.self), y = try expected.toArray(Float.self)
            let scale = y.map(abs).max() ?? 1
            for index in y.indices { worst = max(worst, abs(x[index] - y[index]) / max(scale, 1e-30)) }
        }
        return worst
    }

    /// Runs `graph` with only `rules` applied and as exported; returns (places rewritten, relative difference).
    static func compare(_ graph: String, rules: [any GraphRewrite], batch: Int = 2) throws -> (count: Int, difference: Float, program: GraphProgram) {
        let model = try model(graph)
        let (rewritten, applied) = try RewritePipeline.rewrite(model, options: RewriteOptions(), rules: rules)
        let fused = try GraphProgram(model: model, graph: rewritten)
        let plain = try GraphProgram(model: model)
        let feeds = try feeds(graph, batch: batch)
        let difference = try relativeDifference(try fused.run(feeds), try plain.run(feeds))
        return (applied.reduce(0) { $0 + $1.count }, difference, fused)
    }
}

@Suite struct RewriteEquivalenceTests {
    static let graphs = ["image_clip", "text_clip", "fusion"]

    // Expected matches in the tiny graphs (2 layers): LayerNorm image 2*2+2, text 2*2+1, fusion 2*2;
    // QuickGELU and attention one per layer; matmul-bias 2 per layer (MLP in and out).
    @Test(arguments: [("image_clip", 6), ("text_clip", 5), ("fusion", 4)])
    func layerNorm(graph: String, expected: Int) throws {
        let result = try RewriteFixtures.compare(graph, rules: [LayerNormRewrite()])
        #expect(result.count == expected)
        #expect(result.difference < 1e-5)
        #expect(!result.program.steps.contains { $0.kind == .pow || $0.kind == .sqrt })
    }

    @Test(arguments: graphs)
    func quickGELU(graph: String) throws {
        let result = try RewriteFixtures.compare(graph, rules: [QuickGELURewrite()])
        #expect(result.count == 2)
        #expect(result.difference < 1e-5)
        #expect(!result.program.steps.contains { $0.kind == .sigmoid })
    }

    @Test(arguments: graphs)
    func matMulBias(graph: String) throws {
        // With QuickGELU fused first, the first MLP layer absorbs it; the attention projections
        // also match when attention is not fused.
        let result = try RewriteFixtures.compare(graph, rules: [QuickGELURewrite(), MatMulBiasRewrite()])
        #expect(result.count == 2 + 2 * 4)
        #expect(result.difference < 1e-5)
        #expect(!result.program.steps.contains { $0.kind == .fusedQuickGELU })
    }

    @Test(arguments: graphs)
    func attention(graph: String) throws {
        let result = try RewriteFixtures.compare(graph, rules: [AttentionRewrite()])
        #expect(result.count == 2)
        #expect(result.difference < 1e-5)
        #expect(!result.program.steps.contains { $0.kind == .softmax || $0.kind == .split })
    }

    @Test(arguments: graphs)
    func everyRuleTogetherAtTwoBatchSizes(graph: String) throws {
        for batch in [1, 3] {
            let result = try RewriteFixtures.compare(graph, rules: RewritePipeline.standard, batch: batch)
            #expect(result.difference < 1e-5)
            // Only fused nodes, the stem and head remain: far fewer than the exported nodes.
            #expect(result.program.steps.count < 60)
        }
    }

    /// The image graph keeps token 0 of its last block: that block's MLP, LayerNorm, output
    /// projection and queries narrow to it (Transpose, Cast, 2 LayerNorms... counted below); the
    /// text (per-row EOT Gather) and fusion (mean over frames) graphs have no such Gather.
    @Test(arguments: [("image_clip", 6), ("text_clip", 0), ("fusion", 0)])
    func selectRows(graph: String, expected: Int) throws {
        for batch in [1, 3] {
            let model = try RewriteFixtures.model(graph)
            let (rewritten, applied) = try RewritePipeline.rewrite(model, options: RewriteOptions())
            let withoutSelection = try RewritePipeline.rewrite(model, options: RewriteOptions(disabled: ["select-rows"])).graph
            #expect(applied.last?.name == "select-rows")
            #expect(applied.last?.count == expected)
            let feeds = try RewriteFixtures.feeds(graph, batch: batch)
            let narrowed = try GraphProgram(model: model, graph: rewritten).run(feeds)
            let full = try GraphProgram(model: model, graph: withoutSelection).run(feeds)
            let plain = try GraphProgram(model: model).run(feeds)
            #expect(try RewriteFixtures.relativeDifference(narrowed, full) < 1e-5)
            #expect(try RewriteFixtures.relativeDifference(narrowed, plain) < 1e-5)
            if expected > 0 {
                #expect(rewritten.nodes.contains { $0.opType == "FusedAttention" && $0.attributes["query_position"] != nil })
            }
        }
    }

    @Test func switchesByNameAndAllOff() throws {
        let model = try RewriteFixtures.model("image_clip")
        let options = RewriteOptions.fromEnvironment(["ACTION_CLIP_DISABLE_REWRITES": "layernorm, Attention"])
        let applied = try RewritePipeline.rewrite(model, options: options).applied.map(\.name)
        #expect(applied == ["quickgelu", "matmul-bias", "select-rows"])
        let none = try RewritePipeline.rewrite(model, options: .fromEnvironment(["ACTION_CLIP_FUSE": "0"]))
        #expect(none.applied.isEmpty)
        #expect(none.graph.nodes.count == model.graph.nodes.count)
        #expect(RewritePipeline.standard.map(\.name) == ["attention", "layernorm", "quickgelu", "matmul-bias", "select-rows"])
    }

    @Test func fusedOpsAreRejectedOutsideTheirDomain() {
        let node = ONNXNode(name: "", opType: "FusedQuickGELU", domain: "", inputs: ["x"], outputs: ["y"], attributes: [:])
        #expect(OpKind(node: node) == nil)
        var inDomain = node
        inDomain.domain = OpKind.fusedDomain
        #expect(OpKind(node: inDomain) == .fusedQuickGELU)
        var standardInFusedDomain = node
        standardInFusedDomain.opType = "Relu"
        standardInFusedDomain.domain = OpKind.fusedDomain
        #expect(OpKind(node: standardInFusedDomain) == nil)
    }
}

/// Hand-built graphs for the variants the tiny fixtures do not contain.
@Suite struct RewriteHandBuiltTests {
    static func node(_ op: String, _ inputs: [String], _ outputs: [String], _ attributes: [String: Attribute] = [:]) -> ONNXNode {
        ONNXNode(name: "", opType: op, domain: "", inputs: inputs, outputs: outputs, attributes: attributes)
    }

    static func constant(_ name: String, _ value: Float) throws -> ONNXNode {
        node("Constant", [], [name], ["value": .tensor(try Tensor([value], shape: []))])
    }

    static func model(_ nodes: [ONNXNode], initializers: [String: Tensor]) -> ONNXModel {
        let graph = ONNXGraph(name: "test", inputs: [ValueInfo(name: "x", elementTypeCode: 1, shape: nil)],
                              outputs: [ValueInfo(name: "y", elementTypeCode: 1, shape: nil)], valueInfo: [], nodes: nodes,
                              initializers: initializers, initializerNames: initializers.keys.sorted())
        return ONNXModel(irVersion: 5, opsetImports: ["": 10], producerName: "test", producerVersion: "", graph: graph)
    }

    /// The CLIP LayerNorm with torch 1.13's extra Cast between Sub and Pow/Div, and the output Cast.
    @Test func layerNormWithTheTorch113Cast() throws {
        var generator = SplitMix64(seed: 5)
        let columns = 37
        let initializers = ["gamma": try Tensor(generator.floats(columns), shape: [columns]),
                            "beta": try Tensor(generator.floats(columns), shape: [columns])]
        let float = Attribute.int(1)
        let nodes = [
            Self.node("Cast", ["x"], ["c"], ["to": float]),
            Self.node("ReduceMean", ["c"], ["m"], ["axes": .ints([-1])]),
            Self.node("Sub", ["c", "m"], ["d0"]),
            Self.node("Cast", ["d0"], ["d"], ["to": float]),
            try Self.constant("two", 2), try Self.constant("eps", 9.999999747e-06),
            Self.node("Pow", ["d", "two"], ["p"]),
            Self.node("ReduceMean", ["p"], ["v"], ["axes": .ints([-1])]),
            Self.node("Add", ["v", "eps"], ["ve"]),
            Self.node("Sqrt", ["ve"], ["s"]),
            Self.node("Div", ["d", "s"], ["n"]),
            Self.node("Mul", ["n", "gamma"], ["g"]),
            Self.node("Add", ["g", "beta"], ["o"]),
            Self.node("Cast", ["o"], ["ln"], ["to": float]),
            Self.node("Add", ["c", "ln"], ["y"]),          // residual reads the input Cast
        ]
        let model = Self.model(nodes, initializers: initializers)
        var graph = model.graph
        #expect(try LayerNormRewrite().apply(to: &graph, model: model) == 1)
        #expect(graph.nodes.map(\.opType) == ["Cast", "FusedLayerNorm", "Add"])
        #expect(graph.nodes[1].attributes["epsilon"].map { if case .float(let value) = $0 { return value == 9.999999747e-06 } else { return false } } == true)
        let x = try Tensor(generator.floats(4 * columns, -3, 3), shape: [4, columns])
        let fused = try GraphProgram(model: model, graph: graph).run(["x": x])
        let plain = try GraphProgram(model: model).run(["x": x])
        #expect(try RewriteFixtures.relativeDifference(fused, plain) < 1e-5)
    }

    /// A factor other than 1.702, or a pattern whose intermediate is read elsewhere, stays correct.
    @Test func quickGELUNeedsTheExactConstantAndKeepsSharedValues() throws {
        let nodes = [
            try Self.constant("k", 1.7),
            Self.node("Mul", ["x", "k"], ["a"]), Self.node("Sigmoid", ["a"], ["s"]), Self.node("Mul", ["x", "s"], ["y"]),
        ]
        let model = Self.model(nodes, initializers: [:])
        var graph = model.graph
        #expect(try QuickGELURewrite().apply(to: &graph, model: model) == 0)

        let shared = [
            try Self.constant("k", 1.702),
            Self.node("Mul", ["k", "x"], ["a"]), Self.node("Sigmoid", ["a"], ["s"]), Self.node("Mul", ["s", "x"], ["g"]),
            Self.node("Add", ["g", "s"], ["y"]),           // the Sigmoid output is read again
        ]
        let sharedModel = Self.model(shared, initializers: [:])
        var sharedGraph = sharedModel.graph
        #expect(try QuickGELURewrite().apply(to: &sharedGraph, model: sharedModel) == 1)
        #expect(sharedGraph.nodes.contains { $0.opType == "Sigmoid" })
        var generator = SplitMix64(seed: 9)
        let x = try Tensor(generator.floats(50, -4, 4), shape: [50])
        let fused = try GraphProgram(model: sharedModel, graph: sharedGraph).run(["x": x])
        let plain = try GraphProgram(model: sharedModel).run(["x": x])
        #expect(try RewriteFixtures.relativeDifference(fused, plain) < 1e-6)
    }
}

@Suite struct ShapeCacheTests {
    /// Same outputs with the shape cache on and off, at two batch sizes, each run twice (the second
    /// run of a signature starts from cached values).
    @Test(arguments: ["image_clip", "text_clip", "fusion"])
    func sameOutputsWithAndWithoutCache(graph: String) throws {
        let model = try RewriteFixtures.model(graph)
        let cached = try GraphProgram(model: model, options: RewriteOptions())
        let uncached = try GraphProgram(model: model, options: RewriteOptions(disabled: ["shapecache"]))
        #expect(cached.shapeCache != nil)
        #expect(uncached.shapeCache == nil)
        let plain = try GraphProgram(model: model)
        for batch in [1, 2, 1, 2] {
            let feeds = try RewriteFixtures.feeds(graph, batch: batch, seed: UInt64(batch))
            let reference = try plain.run(feeds)
            #expect(try RewriteFixtures.relativeDifference(try cached.run(feeds), reference) < 1e-5)
            #expect(try RewriteFixtures.relativeDifference(try uncached.run(feeds), reference) < 1e-5)
        }
        // Without rewrites the image graph has 40 Shape nodes, all in the shape-only slice.
        let exported = try GraphProgram(model: model, options: RewriteOptions(disabled: Set(RewritePipeline.standard.map(\.name))))
        let slice = try #require(exported.shapeCache)
        let shapeSteps = exported.steps.indices.filter { exported.steps[$0].kind == .shape }
        #expect(!shapeSteps.isEmpty && shapeSteps.allSatisfy { slice.shapeOnlySteps[$0] })
        #expect(!exported.steps.indices.contains { exported.steps[$0].kind == .matMul && slice.shapeOnlySteps[$0] })
    }

    @Test func skipsShapeOnlyNodesOnAHit() throws {
        let model = try RewriteFixtures.model("fusion")
        let program = try GraphProgram(model: model, options: RewriteOptions(disabled: Set(RewritePipeline.standard.map(\.name))))
        let feeds = try RewriteFixtures.feeds("fusion", batch: 2)
        let first = try program.run(feeds)
        let second = try program.run(feeds)
        #expect(try RewriteFixtures.relativeDifference(second, first) == 0)
        let key = ShapeCache.signature(feeds, inputs: program.inputs)
        let stored = try #require(program.shapeCache?.lookup(key))
        #expect(!stored.isEmpty)
    }
}
