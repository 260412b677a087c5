import ArgumentParser
import Foundation
import Models
import Tensor

struct PreprocessCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "preprocess",
        abstract: "Write the (8, 3, 224, 224) float32 image-network input of a video and print the frame ids.",
        discussion: "Exactly what classify feeds the image network: sampled frames, OpenCV-exact bicubic resize, centre crop, CLIP normalisation."
    )

    @Argument(help: "A GIF or video file.")
    var video: String

    @OptionGroup var frames: FrameOptions

    @Option(help: "Where to write the .npy file.")
    var output: String

    func run() throws {
        let frameSampling = frames.resolvedSampling()
        let prepared = try userFacing {
            try VideoPreprocessor().prepare(path: video, sampling: frameSampling, channelOrder: frames.channelOrder)
        }
        for warning in prepared.warnings { Diagnostics.warn(warning) }
        if case .random(let used) = frameSampling { frames.reportDrawnSeed(used) }
        try userFacing { try NPY.write(prepared.input, to: output) }
        print("frame_ids = \(prepared.frameIndices.map(String.init).joined(separator: " ")) (of \(prepared.frameCount) frames)")
    }
}
