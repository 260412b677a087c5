import ArgumentParser
import Foundation
import Models
import Tensor

struct TokenizeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tokenize",
        abstract: "Print CLIP's 77 token ids for each text, as the text network receives them.",
        discussion: "Ids are start-of-text 49406, the BPE ids, end-of-text 49407, then zeros. A text longer than 77 tokens is an error."
    )

    @Argument(help: "Texts to tokenize.")
    var texts: [String]

    @Option(help: "CLIP BPE vocabulary (default: $ACTION_CLIP_MODELS or ./Weights, bpe_simple_vocab_16e6.txt.gz).")
    var vocab: String?

    @Flag(help: "Print a JSON array of {text, ids} objects.")
    var json = false

    func validate() throws {
        if texts.isEmpty { throw ValidationError("give at least one text") }
    }

    func run() throws {
        var options = try ModelOptions.parse([])
        options.vocab = vocab
        let tokenizer = try options.loadTokenizer()
        var results: [JSONValue] = []
        for text in texts {
            let ids = try userFacing { try tokenizer.tokenize(text) }
            if json {
                results.append(.object([("text", .string(text)), ("ids", .array(ids.map { .int(Int($0)) }))]))
            } else {
                print(ids.map(String.init).joined(separator: " "))
            }
        }
        if json { print(JSONValue.array(results).rendered()) }
    }
}

struct PreprocessCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "preprocess",
        abstract: "Write the (8, 3, 224, 224) float32 image-network input of a video and print the frame ids.",
        discussion: "Exactly what classify feeds the image network: sampled frames, OpenCV-exact bicubic resize, centre crop, CLIP normalisation."
    )

    @Argument(help: "A GIF or video file.")
    var video: String

    @Option(help: "Seed for numpy-exact random frame sampling (default: drawn and reported).")
    var seed: UInt32?

    @Option(help: "Frame sampling: random (ailia) or center (ActionCLIP's segment centres).")
    var sampling: SamplingMode = .random

    @Flag(help: "Keep OpenCV's BGR channel order, as ailia's script does (default: RGB).")
    var bgr = false

    @Option(help: "Where to write the .npy file.")
    var output: String

    func validate() throws {
        if seed != nil && sampling == .center { throw ValidationError("--seed applies to random sampling, not --sampling center") }
    }

    func run() throws {
        let drawn = sampling == .random ? (seed ?? FrameSampling.randomSeed()) : nil
        let frameSampling: FrameSampling = drawn.map { .random(seed: $0) } ?? .center
        let prepared = try userFacing {
            try VideoPreprocessor().prepare(path: video, sampling: frameSampling, channelOrder: bgr ? .bgr : .rgb)
        }
        for warning in prepared.warnings { Diagnostics.warn(warning) }
        if let drawn, seed == nil { Diagnostics.note("frames sampled with seed \(drawn) (repeat with --seed \(drawn))") }
        try userFacing { try NPY.write(prepared.input, to: output) }
        print("frame_ids = \(prepared.frameIndices.map(String.init).joined(separator: " ")) (of \(prepared.frameCount) frames)")
    }
}
