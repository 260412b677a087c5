import ArgumentParser
import Foundation
import Models
import Tensor

/// Where the models and vocabulary live, shared by every command that runs the networks.
struct ModelOptions: ParsableArguments {
    @Option(name: .customLong("model-dir"),
            help: "Directory holding the three ailia model files (default: $ACTION_CLIP_MODELS, else ./Weights).")
    var modelDirectory: String?

    @Flag(help: "Never download: fail if a model file is missing.")
    var offline = false

    @Option(help: "CLIP BPE vocabulary (default: bpe_simple_vocab_16e6.txt.gz in the model directory).")
    var vocab: String?

    @Option(help: "Threads for the engine: GEMMs split across them and its own loops (default: all cores).")
    var threads: Int?

    @OptionGroup var precisionOption: PrecisionOption

    func validate() throws {
        if let threads, !(1...256).contains(threads) { throw ValidationError("--threads must be between 1 and 256") }
    }

    var resolvedModelDirectory: String {
        modelDirectory ?? ProcessInfo.processInfo.environment["ACTION_CLIP_MODELS"].flatMap { $0.isEmpty ? nil : $0 } ?? "Weights"
    }

    var resolvedVocabulary: String {
        vocab ?? (resolvedModelDirectory as NSString).appendingPathComponent("bpe_simple_vocab_16e6.txt.gz")
    }

    /// The thread count and precision this command asked for; before loading or running anything.
    func applyEngineSettings() {
        if let threads { Threading.threadCount = threads }
        precisionOption.apply()
    }

    func store() -> ModelStore {
        ModelStore(directory: resolvedModelDirectory, offline: offline, progress: ProgressBar.report)
    }

    /// The three model files, fetched if needed and verified.
    func resolvePaths() throws -> (image: String, text: String, fusion: String) {
        let store = store()
        let textName = store.contains(ActionCLIPNetworks.FileName.optimizedText)
            ? ActionCLIPNetworks.FileName.optimizedText : ActionCLIPNetworks.FileName.text
        return try userFacing {
            (image: try store.resolve(ActionCLIPNetworks.FileName.image),
             text: try store.resolve(textName),
             fusion: try store.resolve(ActionCLIPNetworks.FileName.fusion))
        }
    }

    /// Fetches (if needed), verifies and compiles the three networks. With `loadText` false the text
    /// network is loaded only when first needed, from `textSource` when given.
    func loadNetworks(paths: (image: String, text: String, fusion: String)? = nil, loadText: Bool = true,
                      textSource: (@Sendable () throws -> TextEncoder)? = nil) throws -> ActionCLIPNetworks {
        let paths = try paths ?? resolvePaths()
        let textPath = paths.text
        let networks = try userFacing {
            try ActionCLIPNetworks(imagePath: paths.image, textPath: paths.text, fusionPath: paths.fusion, loadText: loadText,
                                   onTextLoaded: { Self.warnIfStandIn(textPath, $0.fullProgram) }, textSource: textSource)
        }
        Self.warnIfStandIn(networks.imagePath, networks.image)
        Self.warnIfStandIn(networks.fusionPath, networks.fusion)
        return networks
    }

    /// Stand-in models (random weights, Reference/export_standins.py) carry a metadata marker.
    static func warnIfStandIn(_ path: String, _ program: GraphProgram) {
        if let note = program.model.metadata["action_clip_standin"] {
            Diagnostics.warn("\((path as NSString).lastPathComponent) is a stand-in model (\(note)): its weights are random, so the scores mean nothing")
        }
    }

    func loadTokenizer() throws -> CLIPTokenizer {
        try userFacing { try CLIPTokenizer(vocabularyPath: resolvedVocabulary) }
    }
}

struct ClassifyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "classify",
        abstract: "Classify videos against action labels (the default command).",
        discussion: """
        Samples 8 frames per video, encodes them with CLIP's ViT-B/32 and ActionCLIP's temporal \
        fusion, encodes 16 prompts per label with CLIP's text encoder, and prints the most likely \
        labels in the format of ailia-models' action_clip.py. Without --video the sample GIF \
        (action_recognition.gif) is used; without labels, ailia's 10 default labels.
        """
    )

    @OptionGroup var models: ModelOptions

    @Option(name: [.customShort("v"), .customLong("video")],
            help: ArgumentHelp("A GIF or video file, or a directory of them (repeatable).", valueName: "path"))
    var videos: [String] = []

    @Option(name: [.customShort("t"), .customLong("text")], help: ArgumentHelp("A label (repeatable).", valueName: "label"))
    var labels: [String] = []

    @Option(name: [.customLong("desc_file"), .customLong("desc-file")],
            help: ArgumentHelp("A file with one label per line (overrides --text).", valueName: "file"))
    var descriptionFile: String?

    @OptionGroup var frames: FrameOptions

    @Option(help: "How many labels to print per video (default: up to 5).")
    var top: Int?

    @Flag(help: "Print one JSON object instead of the ailia text block.")
    var json = false

    @Flag(name: .customLong("no-cache"),
          help: "Always run the text network; neither read nor write the text-feature cache ($XDG_CACHE_HOME/action-clip).")
    var noCache = false

    func validate() throws {
        if let top, top < 1 { throw ValidationError("--top must be at least 1") }
    }

    func run() throws {
        Diagnostics.startTimeline()
        models.applyEngineSettings()
        let labels = try resolvedLabels()
        let videos = try resolvedVideos()
        // Loading is one thread's work, and so are decoding and reading the vocabulary, so they
        // overlap: the videos are decoded on one extra thread; on another the vocabulary is read
        // and the labels looked up in the text-feature cache; on a miss a fourth loads the text
        // network and compiles its length-specialised programs. The image and fusion networks
        // load here meanwhile.
        let sampling = frames.resolvedSampling()
        let channelOrder = frames.channelOrder
        let vocabulary = models.resolvedVocabulary
        let decoding = BackgroundWork {
            defer { Diagnostics.stage("videos decoded (second thread)") }
            return try ZeroShotClassifier.prepare(videos: videos, sampling: sampling, channelOrder: channelOrder)
        }
        let paths = try models.resolvePaths()
        let textCache = noCache ? nil : models.textFeatureCache(textPath: paths.text)
        // The tokenizer is ready long before the text network: the image network starts as soon as
        // it and the videos are, while the text network (if the cache misses) goes on loading on
        // its own thread until the classifier first asks for it.
        let tokenization = BackgroundWork { () throws -> (tokenizer: CLIPTokenizer, tokens: Tensor?, cached: Tensor?) in
            let tokenizer = try CLIPTokenizer(vocabularyPath: vocabulary)
            // An over-long label is reported later, with its name, by the classifier.
            let tokens = try? ZeroShotClassifier.promptTokens(labels: labels, tokenizer: tokenizer)
            Diagnostics.stage("prompts tokenized (third thread)")
            guard let textCache, let tokens, let features = textCache.lookup(tokens) else { return (tokenizer, tokens, nil) }
            Diagnostics.stage("text features found in the cache (third thread)")
            return (tokenizer, tokens, features)
        }
        let textLoading = BackgroundWork { () throws -> TextEncoder? in
            let prepared = try tokenization.result()
            guard prepared.cached == nil else { return nil }
            let encoder = try ActionCLIPNetworks.loadTextEncoder(path: paths.text)
            Diagnostics.stage("text network loaded (fourth thread)")
            if let tokens = prepared.tokens {
                try encoder.prepare(tokens)
            }
            Diagnostics.stage("text programs compiled (fourth thread)")
            return encoder
        }
        let textPath = paths.text
        let networks = try models.loadNetworks(paths: paths, loadText: false, textSource: {
            try textLoading.result() ?? ActionCLIPNetworks.loadTextEncoder(path: textPath)
        })
        Diagnostics.stage("image and fusion networks loaded")
        let prepared = try userFacing { try decoding.result() }
        let tokenized = try userFacing { try tokenization.result() }
        Diagnostics.stage("videos and tokenizer ready")
        let prefetched = tokenized.cached.map { (labels: labels, features: $0) }
        let classifier = ZeroShotClassifier(networks: networks, tokenizer: tokenized.tokenizer, textCache: textCache,
                                            prefetchedText: prefetched)
        let report = try userFacing { try classifier.classify(prepared: prepared, labels: labels) }
        for (stage, milliseconds) in report.timings.dropFirst() {
            Diagnostics.stage(String(format: "%@ done (took %.1f ms)", stage, milliseconds))
        }
        for video in report.videos {
            for warning in video.warnings { Diagnostics.warn(warning) }
        }
        frames.reportDrawnSeed(report.videos.first?.seed)
        let count = min(top ?? 5, labels.count)
        if json {
            print(ResultFormat.json(report, top: count).rendered())
        } else {
            for video in report.videos { print(ResultFormat.ailiaBlock(video, labels: labels, top: count), terminator: "") }
        }
    }

    /// Labels from --desc_file (which wins), else --text, else ailia's defaults.
    func resolvedLabels() throws -> [String] {
        if let descriptionFile {
            guard let data = FileManager.default.contents(atPath: descriptionFile) else {
                throw CLIError("\(descriptionFile): cannot read the label file")
            }
            guard let text = String(data: data, encoding: .utf8) else {
                throw CLIError("\(descriptionFile): the label file is not UTF-8 text")
            }
            // Python's str.strip() on each line, empty lines dropped (pipeline.md §1).
            let lines = text.split(omittingEmptySubsequences: false, whereSeparator: { $0 == "\n" || $0 == "\r\n" })
                .map { $0.trimmingCharacters(in: .whitespacesAndNewlines) }.filter { !$0.isEmpty }
            guard !lines.isEmpty else { throw CLIError("\(descriptionFile): the label file has no labels") }
            return lines
        }
        if !labels.isEmpty { return labels }
        Diagnostics.note("no labels given, using the 10 defaults: \(PromptTemplates.defaultLabels.joined(separator: ", "))")
        return PromptTemplates.defaultLabels
    }

    /// Expands directories into their GIF and video files, in name order.
    func resolvedVideos() throws -> [String] {
        if videos.isEmpty { return [try SampleVideo.resolve(modelOptions: models)] }
        var result: [String] = []
        for path in videos {
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
                throw CLIError("\(path): no such file or directory")
            }
            if !isDirectory.boolValue { result.append(path); continue }
            let names = (try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []
            let media = names.filter { VideoFiles.isMediaFileName($0) }.sorted()
            guard !media.isEmpty else { throw CLIError("\(path): directory holds no GIF or video file") }
            result += media.map { (path as NSString).appendingPathComponent($0) }
        }
        return result
    }
}

enum VideoFiles {
    static let extensions: Set<String> = ["gif", "mp4", "m4v", "mov", "mkv", "webm", "avi", "mpg", "mpeg", "ogv", "flv", "wmv", "ts", "3gp"]

    static func isMediaFileName(_ name: String) -> Bool {
        !name.hasPrefix(".") && extensions.contains((name as NSString).pathExtension.lowercased())
    }
}

/// The sample clip used when no --video is given: ailia's `action_recognition.gif`, taken from the
/// model directory or fetched from OpenVINO's open_model_zoo (its sha256 is pinned).
enum SampleVideo {
    static let fileName = "action_recognition.gif"
    static let baseURL = "https://raw.githubusercontent.com/openvinotoolkit/open_model_zoo/master/demos/action_recognition_demo/python/"
    static let sha256 = "cd56344505fcdebe2b2454a1d117028560b8b853f459cefb8137331074ad7f2d"

    static func resolve(modelOptions: ModelOptions) throws -> String {
        let store = ModelStore(directory: modelOptions.resolvedModelDirectory, baseURL: baseURL,
                               offline: modelOptions.offline, progress: ProgressBar.report,
                               pinned: [fileName: sha256])
        return try userFacing { try store.resolve(fileName) }
    }
}

/// A value computed on another thread; `result()` waits for it and rethrows its error.
final class BackgroundWork<Value: Sendable>: @unchecked Sendable {
    private let done = DispatchSemaphore(value: 0)
    private var outcome: Result<Value, any Error>?

    init(_ body: @escaping @Sendable () throws -> Value) {
        let thread = Thread { [self] in
            outcome = Result { try body() }
            done.signal()
        }
        // Decoding large frames recurses little, but giflib and FFmpeg like a normal main-sized stack.
        thread.stackSize = 8 << 20
        thread.start()
    }

    /// Waits for the work (once; later calls return the same outcome).
    func result() throws -> Value {
        done.wait()
        done.signal()
        guard let outcome else { throw CLIError("background work ended without a result") }
        return try outcome.get()
    }
}
