import Tensor

/// Channel order of the network input.
public enum ChannelOrder: Sendable, Equatable {
    /// Channels R, G, B: R is normalised with mean[0]/std[0]. What CLIP was trained on; the CLI default.
    case rgb
    /// Channels B, G, R, normalised with mean/std in index order (B with the red statistics):
    /// exactly what ailia's script feeds (spec §4.4).
    case bgr
}

/// Everything from a video file to the (8, 3, 224, 224) float32 ImageCLIP input, reproducing ailia's
/// OpenCV pipeline (spec pipeline.md §3-§4): sample 8 frame indices, decode them (BGR), resize the
/// shorter side to 256 with OpenCV's INTER_CUBIC (generic path), center-crop 224, divide by 255
/// (float64 -> float32), normalise with CLIP's mean/std (float64 -> float32), channels first.
public struct VideoPreprocessor: Sendable {
    public static let cropSize = 224
    /// `224 * 256 // 224`.
    public static let scaleSize = 256
    /// CLIP statistics in index order (R, G, B for an RGB input).
    public static let mean: [Double] = [0.48145466, 0.4578275, 0.40821073]
    public static let standardDeviation: [Double] = [0.26862954, 0.26130258, 0.27577711]

    /// Result of `prepare`.
    public struct Prepared: Sendable {
        /// float32 tensor of shape [8, 3, 224, 224].
        public let input: Tensor
        /// The 0-based frame indices used, in segment order.
        public let frameIndices: [Int]
        /// Number of frames in the video.
        public let frameCount: Int
        /// Non-fatal notes for the user (short video, salvaged truncated GIF).
        public let warnings: [String]
    }

    /// Normalisation tables: `table[c][v]` = float32((float64(float32(v / 255.0)) - mean[c]) / std[c]).
    /// A byte has 256 values, so a lookup reproduces the float64 arithmetic exactly.
    private let tables: [[Float]]

    /// A preprocessor with the CLIP normalisation tables built.
    public init() {
        tables = (0..<3).map { channel in
            (0..<256).map { value in
                let scaled = Double(Float(Double(value) / 255.0))
                return Float((scaled - VideoPreprocessor.mean[channel]) / VideoPreprocessor.standardDeviation[channel])
            }
        }
    }

    /// Decodes `path`, samples 8 frames and returns the network input.
    /// Throws `FrameError` (file, decoding, zero frames) or `TensorError`.
    public func prepare(path: String, sampling: FrameSampling, channelOrder: ChannelOrder) throws -> Prepared {
        let source = try VideoReader.open(path: path)
        let selection = try sampling.select(frameCount: source.frameCount)
        let frames = try source.frames(at: selection.indices)
        let input = try prepare(frames: frames, channelOrder: channelOrder)
        return Prepared(input: input, frameIndices: selection.indices, frameCount: source.frameCount,
                        warnings: source.warnings + (selection.warning.map { ["\(path): \($0)"] } ?? []))
    }

    /// Resize + crop + normalise already decoded frames: [N, 3, 224, 224] float32 for N frames.
    public func prepare(frames: [Frame], channelOrder: ChannelOrder) throws -> Tensor {
        let size = Self.cropSize
        let plane = size * size
        let tensor = try Tensor.uninitialized(.float32, shape: [frames.count, 3, size, size])
        let output = tensor.mutableFloats
        for (frameIndex, frame) in frames.enumerated() {
            let crop = Self.resizedCenterCrop(frame)
            for outputChannel in 0..<3 {
                // BGR frames: for RGB output, channel 0 (R) reads byte 2.
                let sourceChannel = channelOrder == .bgr ? outputChannel : 2 - outputChannel
                let base = (frameIndex * 3 + outputChannel) * plane
                tables[outputChannel].withUnsafeBufferPointer { table in
                    crop.withUnsafeBufferPointer { bytes in
                        for pixel in 0..<plane {
                            output[base + pixel] = table[Int(bytes[pixel * 3 + sourceChannel])]
                        }
                    }
                }
            }
        }
        return tensor
    }

    /// Size after "shorter side -> 256": scale = 256 / min(H, W) in float64 (ties pick H), each side
    /// rounded half-to-even.
    public static func resizedSize(width: Int, height: Int) -> (width: Int, height: Int) {
        let scale = Double(scaleSize) / Double(min(height, width))
        return (Int((scale * Double(width)).rounded(.toNearestOrEven)),
                Int((scale * Double(height)).rounded(.toNearestOrEven)))
    }

    /// The 224x224 BGR crop ailia takes from `frame`: resize to `resizedSize`, offsets
    /// `(H'-224)//2`, `(W'-224)//2`. Only the cropped part of the resize is computed.
    public static func resizedCenterCrop(_ frame: Frame) -> [UInt8] {
        let target = resizedSize(width: frame.width, height: frame.height)
        let region = CubicResize.Region(x: (target.width - cropSize) / 2, y: (target.height - cropSize) / 2,
                                        width: cropSize, height: cropSize)
        return CubicResize.resize(frame, width: target.width, height: target.height, region: region)
    }
}
