import Foundation
import Tensor

/// The whole zero-shot job of ailia's `action_clip.py`: videos and labels in, per-label
/// probabilities out (pipeline.md §0).
///
/// Data flow for V videos and n labels:
/// frames → `VideoPreprocessor` [8, 3, 224, 224] per video → image network [8V, 512]
/// → reshape [V, 8, 512] → fusion [V, 512]; labels → 16 prompts each → tokenizer [16n, 77]
/// → text network [16n, 512]; then `ZeroShotScoring` → [V][n].
public final class ZeroShotClassifier: Sendable {
    /// Why classification failed; one line.
    public struct Failure: Error, CustomStringConvertible {
        public let description: String
    }

    /// The outcome for one video: which frames were used and one probability per label.
    public struct VideoResult: Sendable {
        public let path: String
        public let frameCount: Int
        public let frameIndices: [Int]
        /// The seed that chose the frames (nil for centre sampling).
        public let seed: UInt32?
        /// One probability per label, in label order; they sum to 1.
        public let scores: [Float]
        public let warnings: [String]
    }

    /// The results of one `classify` call, with the labels and stage timings.
    public struct Report: Sendable {
        public let labels: [String]
        public let videos: [VideoResult]
        /// Wall time per stage in milliseconds, in pipeline order.
        public let timings: [(stage: String, milliseconds: Double)]
        /// Whether the text features came from the `TextFeatureCache`.
        public var textFeaturesCached: Bool = false
    }

    public let networks: ActionCLIPNetworks
    public let tokenizer: CLIPTokenizer
    /// How many videos go through the image network together (8 frames each).
    public let videosPerBatch: Int
    /// Text features computed before are read from here (nil: always run the text network).
    public let textCache: TextFeatureCache?
    /// Features a caller already read from `textCache` for these labels' prompts (the CLI
    /// tokenizes and looks them up on its own thread while the image network loads, with this
    /// classifier's tokenizer), so they are neither tokenized nor read twice.
    let prefetchedText: (labels: [String], features: Tensor)?

    /// A classifier over compiled networks; `videosPerBatch` videos (8 frames each) share one
    /// image-graph call, and `textCache` (if any) serves text features computed before.
    /// `prefetchedText`: features already read from `textCache` for the prompts of these labels,
    /// tokenized by `tokenizer`; used, as a cache hit, when `classify` is asked for the same labels.
    public init(networks: ActionCLIPNetworks, tokenizer: CLIPTokenizer, videosPerBatch: Int = 4,
                textCache: TextFeatureCache? = nil, prefetchedText: (labels: [String], features: Tensor)? = nil) {
        self.networks = networks
        self.tokenizer = tokenizer
        self.videosPerBatch = max(1, videosPerBatch)
        self.textCache = textCache
        self.prefetchedText = textCache == nil ? nil : prefetchedText
    }

    /// Token ids of the 16 prompts of every label, rows template-major: [16n, 77] int64.
    /// An over-long prompt is reported with the label it came from.
    public func promptTokens(labels: [String]) throws -> Tensor {
        try Self.promptTokens(labels: labels, tokenizer: tokenizer)
    }

    /// `promptTokens(labels:)` for any tokenizer (no networks needed).
    public static func promptTokens(labels: [String], tokenizer: CLIPTokenizer) throws -> Tensor {
        guard !labels.isEmpty else { throw Failure(description: "no labels to classify against") }
        let prompts = PromptTemplates.prompts(for: labels)
        var ids: [Int64] = []
        ids.reserveCapacity(prompts.count * CLIPTokenizer.defaultContextLength)
        for (row, prompt) in prompts.enumerated() {
            do {
                ids += try tokenizer.tokenize(prompt)
            } catch {
                let label = labels[row % labels.count]
                throw Failure(description: "label '\(label)': \(error)")
            }
        }
        return try Tensor(ids, shape: [prompts.count, CLIPTokenizer.defaultContextLength])
    }

    /// Text features of all prompts of all labels: [16n, 512].
    public func textFeatures(labels: [String]) throws -> Tensor {
        try textFeaturesReportingCache(labels: labels).features
    }

    /// Text features, from the cache when it holds them, and whether they did.
    public func textFeaturesReportingCache(labels: [String]) throws -> (features: Tensor, cached: Bool) {
        if let prefetchedText, prefetchedText.labels == labels { return (prefetchedText.features, true) }
        let tokens = try promptTokens(labels: labels)
        guard let textCache else { return (try networks.encodeText(tokens), false) }
        let result = try textCache.features(for: tokens) { try networks.encodeText($0) }
        return (result.features, result.hit)
    }

    /// Decoded and preprocessed videos, ready for the networks, with the time that took.
    public struct PreparedVideos: Sendable {
        public let paths: [String]
        public let videos: [VideoPreprocessor.Prepared]
        /// The seed that chose the frames (nil for centre sampling).
        public let seed: UInt32?
        public let milliseconds: Double
    }

    /// Decodes each video and prepares its 8 frames. Each video is sampled with `sampling` from a
    /// fresh generator, so with a seed S its frames are those `np.random.seed(S)` + ailia's script
    /// would pick for that video alone. Needs no network, so callers can run it while the
    /// networks load.
    public static func prepare(videos: [String], sampling: FrameSampling, channelOrder: ChannelOrder) throws -> PreparedVideos {
        guard !videos.isEmpty else { throw Failure(description: "no video given") }
        let clock = ContinuousClock()
        let start = clock.now
        let preprocessor = VideoPreprocessor()
        let prepared = try videos.map { path in try preprocessor.prepare(path: path, sampling: sampling, channelOrder: channelOrder) }
        let seed: UInt32? = if case .random(let seed) = sampling { seed } else { nil }
        return PreparedVideos(paths: videos, videos: prepared, seed: seed, milliseconds: (clock.now - start).seconds * 1000)
    }

    /// Classifies each video against the labels (`prepare`, then `classify(prepared:labels:)`).
    public func classify(videos: [String], labels: [String], sampling: FrameSampling,
                         channelOrder: ChannelOrder) throws -> Report {
        try classify(prepared: Self.prepare(videos: videos, sampling: sampling, channelOrder: channelOrder), labels: labels)
    }

    /// Classifies prepared videos against the labels.
    public func classify(prepared: PreparedVideos, labels: [String]) throws -> Report {
        let clock = ContinuousClock()
        var timings: [(stage: String, milliseconds: Double)] = [("decode_and_preprocess", prepared.milliseconds)]
        func timed<T>(_ stage: String, _ body: () throws -> T) rethrows -> T {
            let start = clock.now
            defer { timings.append((stage, (clock.now - start).seconds * 1000)) }
            return try body()
        }

        let fused = try timed("image_and_fusion") { () throws -> [Tensor] in
            var results: [Tensor] = []
            var start = 0
            while start < prepared.videos.count {
                let batch = Array(prepared.videos[start..<min(start + videosPerBatch, prepared.videos.count)])
                let frames = try Movement.concat(batch.map(\.input), axis: 0)
                let features = try networks.encodeFrames(frames)
                let perVideo = try features.reshaped([batch.count, FrameSampling.segmentCount, features.count / (batch.count * FrameSampling.segmentCount)])
                results.append(try networks.fuse(perVideo))
                start += batch.count
            }
            return results
        }
        let videoFeatures = try Movement.concat(fused, axis: 0)
        let (text, textCached) = try timed("text") { try textFeaturesReportingCache(labels: labels) }
        let probabilities = try timed("scoring") {
            try ZeroShotScoring.probabilities(videoFeatures: videoFeatures, textFeatures: text,
                                              templateCount: PromptTemplates.templates.count, labelCount: labels.count)
        }
        let results = zip(prepared.videos, prepared.paths).enumerated().map { index, pair in
            VideoResult(path: pair.1, frameCount: pair.0.frameCount, frameIndices: pair.0.frameIndices,
                        seed: prepared.seed, scores: probabilities[index], warnings: pair.0.warnings)
        }
        var report = Report(labels: labels, videos: results, timings: timings)
        report.textFeaturesCached = textCached
        return report
    }
}
