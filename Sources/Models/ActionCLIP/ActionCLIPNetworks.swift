import Foundation
import ONNXLoader
import Tensor

/// The three ailia ActionCLIP graphs, loaded and compiled.
///
/// Shapes (V videos, 8 frames each, R = 16 · labels text rows):
/// - image: `image` [8V, 3, 224, 224] float32 → `image_features` [8V, 512]
/// - fusion: `image_features` [V, 8, 512] → `fused_image_features` [V, 512]
/// - text: `text` [R, 77] int64 → `text_features` [R, 512]
/// Inputs and outputs are addressed by position, as the ailia script does, so the networks
/// work whatever the exporter named them.
public final class ActionCLIPNetworks: Sendable {
    /// File names as ailia publishes them.
    public enum FileName {
        public static let image = "vit-32-8f-image_clip.onnx"
        public static let text = "vit-32-8f-text_clip.onnx"
        /// The re-export with a dynamic batch axis (ailia-models PR #1700), preferred when present.
        public static let optimizedText = "vit-32-8f-text_clip.opt.onnx"
        public static let fusion = "vit-32-8f-fusion.onnx"
    }

    /// Why a network could not be loaded or run; one line naming the network and file.
    public struct Failure: Error, CustomStringConvertible {
        public let description: String
    }

    public let image: GraphProgram
    public let text: GraphProgram
    public let fusion: GraphProgram
    /// The text network with true-length encoding (`text` is its full 77-token program).
    public let textEncoder: TextEncoder
    /// Paths the networks were loaded from.
    public let imagePath: String
    public let textPath: String
    public let fusionPath: String

    /// Loads and compiles the three graphs from files.
    public init(imagePath: String, textPath: String, fusionPath: String) throws {
        func compile(_ path: String, role: String) throws -> GraphProgram {
            let model: ONNXModel
            do { model = try ONNXLoader.load(contentsOf: path) } catch {
                // Graph-level load errors (cycle, dangling input...) do not carry the path; add it.
                let text = "\(error)"
                throw Failure(description: text.contains(path) ? "\(role) model: \(text)" : "\(role) model \(path): \(text)")
            }
            let program: GraphProgram
            do { program = try GraphProgram(model: model, options: .fromEnvironment()) } catch {
                throw Failure(description: "\(role) model \(path): \(error)")
            }
            guard program.inputs.count == 1, program.outputs.count == 1 else {
                throw Failure(description: "\(role) model \(path) has \(program.inputs.count) inputs and \(program.outputs.count) outputs; expected one of each")
            }
            return program
        }
        self.image = try compile(imagePath, role: "image")
        do {
            self.textEncoder = try TextEncoder(model: try ONNXLoader.load(contentsOf: textPath))
        } catch {
            throw Failure(description: "text model \(textPath): \(error)")
        }
        self.text = textEncoder.fullProgram
        self.fusion = try compile(fusionPath, role: "fusion")
        self.imagePath = imagePath
        self.textPath = textPath
        self.fusionPath = fusionPath
    }

    /// Runs a one-input, one-output program.
    static func runSingle(_ program: GraphProgram, _ input: Tensor, role: String) throws -> Tensor {
        let name = program.inputs[0].info.name
        let outputs = try program.run([name: input])
        guard let output = outputs[program.outputs[0].info.name] else {
            throw Failure(description: "\(role) network produced no output")
        }
        return output
    }

    /// Frame features: [frames, 3, 224, 224] → [frames, 512].
    public func encodeFrames(_ frames: Tensor) throws -> Tensor {
        try Self.runSingle(image, frames, role: "image")
    }

    /// Temporal fusion: [videos, 8, 512] → [videos, 512].
    public func fuse(_ frameFeatures: Tensor) throws -> Tensor {
        try Self.runSingle(fusion, frameFeatures, role: "fusion")
    }

    /// Text features: [rows, 77] int64 → [rows, 512], each row at its true token length when the
    /// graph allows it (`TextEncoder`), in runs of at most `chunkRows` 77-token rows' worth of
    /// tokens so that activations stay bounded (the MLP hidden state is rows·length·2048 floats).
    public func encodeText(_ tokens: Tensor, chunkRows: Int = 256) throws -> Tensor {
        try textEncoder.encode(tokens, chunkRows: chunkRows)
    }
}
