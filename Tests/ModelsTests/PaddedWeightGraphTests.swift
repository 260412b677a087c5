import Foundation
import Testing
import ONNXLoader
import Tensor
@testable import Models

/// The three tiny stand-ins with every MatMul weight stored as padded rows (`PaddedRows`, gaps
/// filled with NaN), run as exported and rewritten: the same outputs as with contiguous weights,
/// and no kernel ever asked for a contiguous copy, so every consumer of such a weight (MatMul,
/// FusedLinear, FusedAttention) reads it at its pitch. The tiny graphs' rows are too short for the
/// loader's own rule (`MatrixRowPadding.rowPitch`), so the test pads them itself.
@Suite struct PaddedWeightGraphTests {
    @Test(arguments: ["image_clip", "text_clip", "fusion"])
    func paddedWeightsGiveTheSameOutputsWithoutCopies(graph: String) throws {
        let model = try RewriteFixtures.model(graph)
        let operands = MatrixRowPadding.matrixOperands(nodes: model.graph.nodes, graphOutputs: model.graph.outputs.map(\.name),
                                                       initializers: Set(model.graph.initializers.keys))
        var paddedModel = model
        var count = 0
        for name in operands {
            guard let tensor = model.graph.initializers[name], tensor.dataType == .float32, tensor.rank == 2 else { continue }
            paddedModel.graph.initializers[name] = try tensor.paddedRowsCopy(rowPitch: tensor.shape[1] + 16)
            count += 1
        }
        // Every layer's attention projections and MLP, and the projection heads.
        #expect(count >= 8, "\(graph): \(count) padded weights")
        let feeds = try RewriteFixtures.feeds(graph, batch: 2)
        let expected = try GraphProgram(model: model).run(feeds)
        let (rewritten, _) = try RewritePipeline.rewrite(paddedModel, options: RewriteOptions(), rules: RewritePipeline.standard)
        for program in [try GraphProgram(model: paddedModel), try GraphProgram(model: paddedModel, graph: rewritten)] {
            let outputs = try program.run(feeds)
            #expect(try RewriteFixtures.relativeDifference(outputs, expected) < 1e-5, "\(graph)")
        }
        for name in operands {
            #expect(paddedModel.graph.initializers[name]?.storage.padded?.hasContiguousCopy != true, "\(graph): \(name) was copied")
        }
    }
}
