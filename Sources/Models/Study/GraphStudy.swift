import Foundation
import ONNXLoader

/// A graph prepared for study: optionally rewritten, run once on zero inputs to capture every
/// value's shape, its topology and transformer blocks found. Backs `inspect --dot/--summary`.
public struct GraphStudy {
    public let model: ONNXModel
    /// The graph as studied: the file's, or the rewrite stage's output with `fused`.
    public let graph: ONNXGraph
    public let topology: GraphTopology
    public let structure: BlockStructure
    /// Rewrites applied and how many places each changed (empty unless `fused`).
    public let rewrites: [(name: String, count: Int)]
    /// Why shapes could not be captured (the views then show `?` for shapes); nil on success.
    public let captureError: String?

    /// Prepares `model`; with `fused`, the graph first goes through `RewritePipeline` with `options`.
    public init(model: ONNXModel, fused: Bool = false, options: RewriteOptions = .fromEnvironment()) throws {
        self.model = model
        var graph = model.graph
        var rewrites: [(name: String, count: Int)] = []
        if fused {
            let result = try RewritePipeline.rewrite(model, options: options)
            graph = result.graph
            rewrites = result.applied
        }
        var shapes: ShapeCapture?
        var captureError: String?
        do {
            shapes = try ShapeCapture.capture(try GraphProgram(model: model, graph: graph))
        } catch {
            captureError = String(describing: error)
        }
        self.graph = graph
        self.rewrites = rewrites
        self.captureError = captureError
        self.topology = try GraphTopology(graph: graph, shapes: shapes)
        self.structure = BlockStructure.detect(topology)
    }

    /// One line on where the shapes came from.
    public var shapeNote: String {
        if let captureError { return "shapes unknown (the sample run failed: \(captureError))" }
        return "shapes from one run on \(topology.shapes?.feedDescription ?? "?") (zeros)"
    }

    /// The graph as Graphviz DOT.
    public func dot(title: String, hideShapeOps: Bool = false) -> String {
        var caption = shapeNote + "; blocks: \(structure.blocks.count) (\(structure.method.rawValue))"
        if !rewrites.isEmpty {
            caption += "\nrewrites: " + rewrites.map { "\($0.name) x\($0.count)" }.joined(separator: ", ")
        }
        return GraphDiagram(hideShapeOps: hideShapeOps, caption: caption).render(topology, structure: structure, title: title)
    }

    /// The network outline with MAC counts (needs captured shapes).
    public var outline: NetworkOutline { NetworkOutline(topology: topology, structure: structure) }
}
