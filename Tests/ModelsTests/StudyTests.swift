import Foundation
import Testing
import ONNXLoader
import Tensor
@testable import Models

/// The study views on the tiny stand-ins (width 64, 2 blocks, 2 heads of 32, MLP 256, patch 32,
/// 50 image tokens, 77 text tokens, 8 frames). Expected MAC counts are worked out by hand below.
@Suite struct StudyOutlineTests {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Fixtures")

    static func study(_ graph: String, variant: String = "tiny") throws -> GraphStudy {
        let path = fixtures.appendingPathComponent(variant).appendingPathComponent("vit-32-8f-\(graph).onnx").path
        return try GraphStudy(model: try ONNXLoader.load(contentsOf: path))
    }

    // Per sample (frame / row / video), E = 64, MLP = 256, heads 2 x 32:
    //   block(L) = qkv L·E·3E + scores 2·L·L·32 + weighted sum 2·L·L·32 + out L·E·E + MLP 2·L·E·256
    //   image: conv 64·(3·32·32)·49 = 9,633,792; block(50) = 614,400 + 160,000 + 160,000 + 204,800
    //          + 1,638,400 = 2,777,600; proj 64·64 = 4,096 → 9,633,792 + 2·2,777,600 + 4,096 = 15,193,088
    //   text:  block(77) = 946,176 + 379,456 + 379,456 + 315,392 + 2,523,136 = 4,543,616;
    //          text_projection on the EOT row 4,096 → 2·4,543,616 + 4,096 = 9,091,328
    //   fusion: block(8) = 98,304 + 4,096 + 4,096 + 32,768 + 262,144 = 401,408 → 802,816
    static let expected: [(graph: String, batch: Int, perSample: Int, block: Int, stem: Int, head: Int)] = [
        ("image_clip", 8, 15_193_088, 2_777_600, 9_633_792, 4_096),
        ("text_clip", 1, 9_091_328, 4_543_616, 0, 4_096),
        ("fusion", 1, 802_816, 401_408, 0, 0),
    ]

    @Test(arguments: ["tiny", "tiny-default"])
    func countsMultiplyAccumulatesOfEveryGraph(variant: String) throws {
        for entry in Self.expected {
            let outline = try Self.study(entry.graph, variant: variant).outline
            #expect(outline.batch == entry.batch, "\(variant) \(entry.graph)")
            #expect(outline.multiplyAccumulatesPerSample == entry.perSample, "\(variant) \(entry.graph)")
            #expect(outline.totalMultiplyAccumulates == entry.perSample * entry.batch, "\(variant) \(entry.graph)")
            #expect(outline.embedding.multiplyAccumulates == entry.stem * entry.batch, "\(variant) \(entry.graph)")
            #expect(outline.head.multiplyAccumulates == entry.head * entry.batch, "\(variant) \(entry.graph)")
            #expect(outline.blocks.count == 2, "\(variant) \(entry.graph)")
            for block in outline.blocks {
                #expect(block.multiplyAccumulates == entry.block * entry.batch, "\(variant) \(entry.graph) block \(block.index)")
                #expect(block.width == 64 && block.heads == 2 && block.headDimension == 32 && block.mlpWidth == 256,
                        "\(variant) \(entry.graph) block \(block.index)")
                // ln_1, ln_2 (2 x 64 each), qkv 64x192 + 192, out 64x64 + 64, MLP 64x256 + 256 + 256x64 + 64.
                #expect(block.parameterCount == 256 + 12_288 + 192 + 4_096 + 64 + 16_384 + 256 + 16_384 + 64,
                        "\(variant) \(entry.graph) block \(block.index)")
            }
            #expect(outline.embedding.parameterCount + outline.blocks.reduce(0) { $0 + $1.parameterCount }
                    + outline.head.parameterCount == outline.totalParameters, "\(variant) \(entry.graph)")
        }
    }

    @Test func outlineNamesTheStemAndHeadOps() throws {
        let image = try Self.study("image_clip").outline
        #expect(image.embedding.items.map(\.operation) == ["Conv", "Add", "Concat", "Add", "LayerNorm"])
        #expect(image.head.items.map(\.operation) == ["Gather", "LayerNorm", "MatMul"])
        let text = try Self.study("text_clip").outline
        #expect(text.embedding.items.first?.detail.contains("W[49408,64]") == true)
        #expect(text.head.items.map(\.operation) == ["LayerNorm", "ArgMax", "Flatten", "Gather", "MatMul"])
        let fusion = try Self.study("fusion").outline
        #expect(fusion.head.items.map(\.operation) == ["ReduceMean"])
        let json = image.json.rendered()
        #expect(json.contains("\"macs_per_sample\": 15193088"))
        #expect(image.text.contains("15.19 MMACs"))
    }

    /// Structural detection must not need names (torch 1.8.1 wrote `Add_123`), and must agree with
    /// the name scopes (`resblocks.N`) where the file has them.
    @Test func findsBlocksWithoutNamesAndAgreesWithScopes() throws {
        for graph in ["image_clip", "text_clip", "fusion"] {
            let study = try Self.study(graph)
            let scoped = BlockStructure.scopeBlocks(study.topology)
            #expect(study.structure.method == .residualChain)
            #expect(scoped.count == 2, "\(graph)")
            for (structural, named) in zip(study.structure.blocks, scoped) {
                // Scopes put each block's ln_1 Cast in the block, as the residual chain does; the two
                // may differ only by shape-program nodes that the exporter named after a neighbour scope.
                let difference = Set(structural.nodes).symmetricDifference(named.nodes)
                #expect(difference.allSatisfy { study.topology.isIntegerNode[$0] }, "\(graph) block \(structural.index): \(difference.count) differ")
            }

            var anonymous = study.model
            for index in anonymous.graph.nodes.indices { anonymous.graph.nodes[index].name = "" }
            let unnamed = try GraphStudy(model: anonymous)
            #expect(unnamed.structure.blocks.map(\.nodes) == study.structure.blocks.map(\.nodes), "\(graph)")
            #expect(BlockStructure.scopeBlocks(unnamed.topology).isEmpty)
        }
    }

    @Test func capturesShapesFromTheDeclaredInput() throws {
        let text = try Self.study("text_clip")
        #expect(text.captureError == nil)
        #expect(text.topology.shapes?.feeds.first?.shape == ValueShape(dataType: .int64, shape: [1, 77]))
        #expect(text.topology.shape(of: "text_features")?.shape == [1, 64])
        let image = try Self.study("image_clip")
        #expect(image.topology.shapes?.batch == 8)
        #expect(image.topology.shape(of: "image_features")?.shape == [8, 64])
    }
}

@Suite struct StudyDiagramTests {
    @Test func foldsConstantsAndClustersBlocks() throws {
        for graph in ["image_clip", "text_clip", "fusion"] {
            let study = try StudyOutlineTests.study(graph)
            let nodes = study.graph.nodes
            let dot = study.dot(title: graph)
            let statements = dot.split(separator: "\n").filter { $0.trimmingCharacters(in: .whitespaces).range(of: #"^n\d+ \["#, options: .regularExpression) != nil }
            let constants = nodes.filter { $0.opType == "Constant" }.count
            #expect(statements.count == nodes.count - constants, "\(graph)")
            #expect(!dot.contains("label=\"Constant\\n"), "\(graph)")
            #expect(dot.contains("subgraph cluster_block_0") && dot.contains("subgraph cluster_block_1"), "\(graph)")
            #expect(!dot.contains("cluster_block_2"), "\(graph)")
            #expect(dot.contains("W[64,192]"), "\(graph): the qkv weight is folded into its MatMul")
            #expect(dot.filter { $0 == "{" }.count == dot.filter { $0 == "}" }.count)
            // Every edge joins drawn nodes.
            let declared = Set(statements.compactMap { $0.trimmingCharacters(in: .whitespaces).split(separator: " ").first.map(String.init) })
            for line in dot.split(separator: "\n") where line.contains(" -> ") {
                let parts = line.trimmingCharacters(in: .whitespaces).split(separator: " ")
                let target = parts[2].trimmingCharacters(in: CharacterSet(charactersIn: ";"))
                #expect(declared.contains(String(parts[0])) || parts[0].hasPrefix("in"), "\(graph): \(line)")
                #expect(declared.contains(target) || target.hasPrefix("out"), "\(graph): \(line)")
            }

            let hidden = study.dot(title: graph, hideShapeOps: true)
            #expect(!hidden.contains("label=\"Shape\\n"), "\(graph)")
            #expect(hidden.contains("label=\"Reshape\\n"), "\(graph)")
        }
    }

    @Test func labelsIntegerNodesGreyAndShowsSmallConstants() throws {
        let dot = try StudyOutlineTests.study("image_clip").dot(title: "image")
        let shapeLine = dot.split(separator: "\n").first { $0.contains("label=\"Shape\\n[3]\"") }
        #expect(shapeLine?.contains("fontcolor=\"#9a9a9a\"") == true)
        #expect(dot.contains("= 1e-05"), "the LayerNorm epsilon is shown on its Add")
        #expect(dot.contains("= 1.702"), "the QuickGELU constant is shown on its Mul")
    }
}

@Suite struct StudyStatisticsTests {
    @Test(arguments: [0, 1, 15, 16, 17, 31, 32, 33, 77, 4095, 4096, 4097, 10_001])
    func fastMatchesReference(length: Int) throws {
        var generator = SplitMix64(seed: UInt64(length) + 3)
        var values = (0..<length).map { _ in Float(Double(generator.next() % 20_000) / 1000 - 10) }
        if length > 3 {
            values[length / 3] = .nan
            values[length / 2] = .infinity
            values[length - 1] = -.infinity
        }
        let fast = TensorStatistics(try Tensor(values, shape: [length]))
        let reference = Reference.tensorStatistics(values)
        #expect(fast.count == reference.count)
        #expect(fast.nanCount == reference.nanCount)
        #expect(fast.infinityCount == reference.infinityCount)
        #expect(fast.minimum == reference.minimum)
        #expect(fast.maximum == reference.maximum)
        switch (fast.mean, reference.mean) {
        case (nil, nil): break
        case let (fastMean?, referenceMean?): #expect(abs(fastMean - referenceMean) <= 1e-5 * max(1, abs(referenceMean)))
        default: Issue.record("mean present in one result only")
        }
    }

    @Test func describesIntegerAndNonFiniteTensors() throws {
        let integers = TensorStatistics(try Tensor([Int64(3), -2, 7], shape: [3]))
        #expect(integers.description == "min=-2 max=7 mean=2.66667 nan=0 inf=0")
        let broken = TensorStatistics(try Tensor([Float.nan, .infinity], shape: [2]))
        #expect(broken.description == "min=- max=- mean=- nan=1 inf=1")
    }
}

@Suite struct StudyNodeLookupTests {
    @Test func findsNodesByNodeOrOutputNameAndSuggestsCloseNames() throws {
        let path = StudyOutlineTests.fixtures.appendingPathComponent("tiny/vit-32-8f-text_clip.onnx").path
        let program = try GraphProgram(model: try ONNXLoader.load(contentsOf: path))
        let softmax = "/transformer/resblocks/resblocks.1/attn/Softmax"
        let byName = try NodeLookup.step(named: softmax, in: program)
        #expect(program.steps[byName].node.opType == "Softmax")
        #expect(try NodeLookup.step(named: softmax + "_output_0", in: program) == byName)
        do {
            _ = try NodeLookup.step(named: "resblocks.1/Softmax", in: program)
            Issue.record("expected an unknown-node error")
        } catch let error as StudyError {
            #expect(error.description.contains("'\(softmax)'"))
        }
    }

    @Test func stopsRightAfterTheNodeWithItsOutputs() throws {
        let path = StudyOutlineTests.fixtures.appendingPathComponent("tiny/vit-32-8f-fusion.onnx").path
        let program = try GraphProgram(model: try ONNXLoader.load(contentsOf: path))
        let feeds = try ShapeCapture.sampleFeeds(for: program)
        let target = try NodeLookup.step(named: "/transformer/resblocks/resblocks.0/Add", in: program)
        var full: Tensor?
        _ = try program.run(feeds) { event in if event.stepIndex == target { full = event.outputs.first } }
        var seen: [Int] = []
        var stopped: Tensor?
        do {
            _ = try program.run(feeds) { event in
                seen.append(event.stepIndex)
                if event.stepIndex == target {
                    stopped = event.outputs.first
                    throw GraphError.stopped(after: event.step.node.displayName)
                }
            }
            Issue.record("expected the run to stop")
        } catch GraphError.stopped {
            #expect(seen.last == target)
        }
        #expect(try stopped?.toArray(Float.self) == full?.toArray(Float.self))
        #expect(stopped?.shape == [8, 1, 64])
    }
}
