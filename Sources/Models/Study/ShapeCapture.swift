import Foundation
import ONNXLoader
import Tensor

/// Element type and shape of one graph value.
public struct ValueShape: Sendable, Equatable, CustomStringConvertible {
    public var dataType: DataType
    public var shape: [Int]

    /// The element type and shape of one value seen during the capture run.
    public init(dataType: DataType, shape: [Int]) {
        self.dataType = dataType
        self.shape = shape
    }

    /// `[8,50,768]`.
    public var shapeText: String { "[" + shape.map(String.init).joined(separator: ",") + "]" }
    /// `float32[8,50,768]`.
    public var description: String { "\(dataType)\(shapeText)" }
    /// True for float16/32/64 values (the data path); false for integer and bool values (indices, shapes).
    public var isFloatingPoint: Bool { dataType == .float32 || dataType == .float16 || dataType == .float64 }
}

/// The type and shape of every value of a graph, found by running it once on zero inputs of
/// the declared input shapes (the batch is the declared one, so `image_clip` runs on 8 frames
/// and `text_clip` on one row of 77 tokens).
///
/// Running rather than inferring is exact for these exports: their shape programs (Shape →
/// Gather → Concat → Reshape) are evaluated by the same operators that run inference, and
/// data-dependent sizes (NonZero) come out right.
public struct ShapeCapture: Sendable {
    /// Every value by name: graph inputs, initializers and node outputs.
    public var values: [String: ValueShape]
    /// The inputs the graph was run on, in declaration order.
    public var feeds: [(name: String, shape: ValueShape)]

    /// Runs `program` once on zero inputs and records every value's type and shape.
    public static func capture(_ program: GraphProgram) throws -> ShapeCapture {
        let feeds = try sampleFeeds(for: program)
        var values: [String: ValueShape] = [:]
        for (name, tensor) in program.model.graph.initializers {
            values[name] = ValueShape(dataType: tensor.dataType, shape: tensor.shape)
        }
        for (name, tensor) in feeds { values[name] = ValueShape(dataType: tensor.dataType, shape: tensor.shape) }
        var recorded: [String: ValueShape] = [:]
        _ = try program.run(feeds) { event in
            for (position, name) in event.step.node.outputs.enumerated() where !name.isEmpty && position < event.outputs.count {
                recorded[name] = ValueShape(dataType: event.outputs[position].dataType, shape: event.outputs[position].shape)
            }
        }
        values.merge(recorded) { _, new in new }
        let ordered = program.inputs.compactMap { entry -> (name: String, shape: ValueShape)? in
            feeds[entry.info.name].map { (entry.info.name, ValueShape(dataType: $0.dataType, shape: $0.shape)) }
        }
        return ShapeCapture(values: values, feeds: ordered)
    }

    /// Zero tensors of each input's declared type and shape; a symbolic or unknown dimension is 1.
    public static func sampleFeeds(for program: GraphProgram) throws -> [String: Tensor] {
        var feeds: [String: Tensor] = [:]
        for (info, _) in program.inputs {
            guard let declared = info.shape else {
                throw StudyError.undeclaredInputShape(info.name)
            }
            let shape = declared.map { dimension -> Int in
                if case .fixed(let size) = dimension, size > 0 { return size }
                return 1
            }
            let dataType = info.elementType ?? .float32
            feeds[info.name] = try Tensor.zeros(dataType, shape: shape)
        }
        return feeds
    }

    /// `image float32[8,3,224,224]`, for labels that say where the shapes came from.
    public var feedDescription: String {
        feeds.map { "\($0.name) \($0.shape)" }.joined(separator: ", ")
    }

    /// The batch (first dimension) of the first input; 1 for a scalar input.
    public var batch: Int { feeds.first?.shape.shape.first ?? 1 }
}

/// Why a study view (diagram, outline, trace target) could not be made.
public enum StudyError: Error, CustomStringConvertible {
    case undeclaredInputShape(String)
    case unknownNode(String, suggestions: [String])

    public var description: String {
        switch self {
        case .undeclaredInputShape(let name):
            return "graph input '\(name)' declares no shape, so no sample input can be made for it"
        case .unknownNode(let name, let suggestions):
            let hint = suggestions.isEmpty ? "" : "; close names: " + suggestions.map { "'\($0)'" }.joined(separator: ", ")
            return "no node or node output is named '\(name)'\(hint)"
        }
    }
}
