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
    public let fusion: GraphProgram
    /// Paths the networks were loaded from (the text one when first needed, see `init`).
    public let imagePath: String
    public let textPath: String
    public let fusionPath: String

    /// The text network, loaded at most once (a 250 MB file: a run whose text features all come
    /// from the `TextFeatureCache` never reads it).
    private let lazyText: LazyTextEncoder

    /// The text network with true-length encoding; loads it on first use.
    public var textEncoder: TextEncoder {
        get throws { try lazyText.encoder() }
    }

    /// The text network's full 77-token program; loads it on first use.
    public var text: GraphProgram {
        get throws { try lazyText.encoder().fullProgram }
    }

    /// Loads and compiles the text network from a file, as the lazy loader does (for callers that
    /// start it early on another thread and pass it in as `textSource`).
    public static func loadTextEncoder(path: String) throws -> TextEncoder {
        try LazyTextEncoder.load(path: path)
    }

    /// Loads and compiles the three graphs from files. With `loadText` false the text graph is
    /// loaded when first needed; `onTextLoaded` is called once it is (for warnings about the file).
    /// `textSource`, if given, replaces loading from `textPath` (a caller that started loading the
    /// text network on another thread hands over the result this way).
    public init(imagePath: String, textPath: String, fusionPath: String, loadText: Bool = true,
                onTextLoaded: (@Sendable (TextEncoder) -> Void)? = nil,
                textSource: (@Sendable () throws -> TextEncoder)? = nil) throws {
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
        self.lazyText = LazyTextEncoder(path: textPath, onLoaded: onTextLoaded, source: textSource)
        if loadText { _ = try lazyText.encoder() }
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
        try lazyText.encoder().encode(tokens, chunkRows: chunkRows)
    }
}

/// Loads the text network once, on first request, from whichever thread asks first.
final class LazyTextEncoder: @unchecked Sendable {
    private let path: String
    private let onLoaded: (@Sendable (TextEncoder) -> Void)?
    private let source: (@Sendable () throws -> TextEncoder)?
    private let lock = NSLock()
    private var value: TextEncoder?

    init(path: String, onLoaded: (@Sendable (TextEncoder) -> Void)?, source: (@Sendable () throws -> TextEncoder)?) {
        self.path = path
        self.onLoaded = onLoaded
        self.source = source
    }

    /// The encoder from `path`, loaded and compiled.
    static func load(path: String) throws -> TextEncoder {
        do {
            return try TextEncoder(model: try ONNXLoader.load(contentsOf: path))
        } catch {
            let text = "\(error)"
            throw ActionCLIPNetworks.Failure(description: text.contains(path) ? "text model: \(text)" : "text model \(path): \(text)")
        }
    }

    /// The encoder; a failed load is reported to every caller and tried again by the next one.
    func encoder() throws -> TextEncoder {
        lock.lock()
        defer { lock.unlock() }
        if let value { return value }
        let encoder = try source?() ?? Self.load(path: path)
        value = encoder
        onLoaded?(encoder)
        return encoder
    }
}
