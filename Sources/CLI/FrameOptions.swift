import ArgumentParser
import Models

enum SamplingMode: String, ExpressibleByArgument, CaseIterable {
    case random, center
}

/// How frames are chosen and fed, shared by `classify` and `preprocess`.
struct FrameOptions: ParsableArguments {
    @Option(help: "Seed for numpy-exact random frame sampling (default: drawn and reported).")
    var seed: UInt32?

    @Option(help: "Frame sampling: random (ailia) or center (ActionCLIP's segment centres).")
    var sampling: SamplingMode = .random

    @Flag(help: "Feed frames in BGR order, as ailia's script does (default: RGB, as CLIP was trained).")
    var bgr = false

    func validate() throws {
        if seed != nil && sampling == .center { throw ValidationError("--seed applies to random sampling, not --sampling center") }
    }

    var channelOrder: ChannelOrder { bgr ? .bgr : .rgb }

    /// The sampling to use, with a seed drawn now when random sampling was asked without one.
    func resolvedSampling() -> FrameSampling {
        guard sampling == .random else { return .center }
        return .random(seed: seed ?? FrameSampling.randomSeed())
    }

    /// Tells the user which seed was drawn, so the run can be repeated.
    func reportDrawnSeed(_ used: UInt32?) {
        if let used, seed == nil { Diagnostics.note("frames sampled with seed \(used) (repeat with --seed \(used))") }
    }
}
