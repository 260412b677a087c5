import Foundation

/// One decoded video frame, 8 bits per channel.
///
/// Layout: row-major, `height` rows of `width` pixels, each pixel three interleaved bytes in
/// **B, G, R** order (OpenCV's `BGR24`, the order ailia's script receives from `cv2.VideoCapture`),
/// no row padding: `pixels[(y * width + x) * 3 + c]`, c = 0 blue, 1 green, 2 red.
public struct Frame: Sendable, Equatable {
    public let width: Int
    public let height: Int
    /// `width * height * 3` bytes, BGR interleaved, rows packed.
    public let pixels: [UInt8]

    /// Wraps packed BGR24 bytes; `pixels.count` must equal `width * height * 3`.
    public init(width: Int, height: Int, pixels: [UInt8]) throws(FrameError) {
        guard width > 0, height > 0, width * 3 * height == pixels.count else {
            throw .invalidLayout(width: width, height: height, byteCount: pixels.count)
        }
        self.width = width
        self.height = height
        self.pixels = pixels
    }
}

/// Errors from opening, decoding and sampling videos. Each description is one line naming the file.
public enum FrameError: Error, CustomStringConvertible, Equatable {
    case fileNotFound(path: String)
    case unreadable(path: String, reason: String)
    case emptyFile(path: String)
    case notAVideo(path: String, reason: String)
    case noVideoStream(path: String)
    case noFrames(path: String)
    case tooLarge(path: String, width: Int, height: Int, limit: String)
    case decodeFailed(path: String, reason: String)
    case indexOutOfRange(path: String, index: Int, frameCount: Int)
    case invalidLayout(width: Int, height: Int, byteCount: Int)
    case zeroFrames

    public var description: String {
        switch self {
        case .fileNotFound(let path): return "\(path): file not found"
        case .unreadable(let path, let reason): return "\(path): cannot read file (\(reason))"
        case .emptyFile(let path): return "\(path): file is empty"
        case .notAVideo(let path, let reason): return "\(path): not a readable video or GIF (\(reason))"
        case .noVideoStream(let path): return "\(path): contains no video stream"
        case .noFrames(let path): return "\(path): no decodable frame"
        case .tooLarge(let path, let width, let height, let limit):
            return "\(path): frame size \(width)x\(height) exceeds the limit (\(limit))"
        case .decodeFailed(let path, let reason): return "\(path): decoding failed (\(reason))"
        case .indexOutOfRange(let path, let index, let frameCount):
            return "\(path): frame index \(index) out of range (the video has \(frameCount) frames)"
        case .invalidLayout(let width, let height, let byteCount):
            return "frame of \(width)x\(height) cannot hold \(byteCount) BGR bytes"
        case .zeroFrames: return "the video has 0 frames; at least 1 is needed"
        }
    }
}

/// Size limits applied before any frame buffer is allocated. A file that declares more is corrupt
/// or hostile: 16384 per side matches common decoder limits, and 2^28 pixels (768 MiB of BGR) caps
/// the area of one frame.
public enum FrameLimits {
    public static let maximumSide = 16384
    public static let maximumPixels = 1 << 28

    static func check(width: Int, height: Int, path: String) throws(FrameError) {
        guard width > 0, height > 0, width <= maximumSide, height <= maximumSide,
              width * height <= maximumPixels else {
            throw .tooLarge(path: path, width: width, height: height,
                            limit: "\(maximumSide) per side, \(maximumPixels) pixels")
        }
    }
}

/// A decoded-on-demand sequence of frames.
///
/// `frameCount` is the number of frames a full decode produces (what OpenCV's `CAP_PROP_FRAME_COUNT`
/// reported on every clip checked, spec §3.1). `frames(at:)` returns the frames at the given
/// 0-based indices, in the order given (repeats allowed), decoding sequentially from the start
/// without seeking; only the requested frames are kept in memory.
public protocol FrameSource: AnyObject {
    /// Path the source was opened from (used in error messages).
    var path: String { get }
    /// Number of frames in the file (>= 1).
    var frameCount: Int { get }
    /// Non-fatal problems found while opening (e.g. a truncated GIF whose complete frames were kept).
    var warnings: [String] { get }
    /// Frames at `indices` (each in 0..<frameCount), in the order of `indices`.
    func frames(at indices: [Int]) throws -> [Frame]
}

/// Opens a video file with the right decoder.
public enum VideoReader {
    /// Opens `path`: files starting with `GIF87a`/`GIF89a` go to the giflib decoder (composited the way
    /// FFmpeg's GIF decoder does), everything else to FFmpeg (libavformat/libavcodec + swscale BGR24).
    /// Throws `FrameError` for a missing, empty or undecodable file.
    public static func open(path: String) throws -> any FrameSource {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw FrameError.fileNotFound(path: path)
        }
        guard !isDirectory.boolValue else { throw FrameError.unreadable(path: path, reason: "is a directory") }
        guard let handle = FileHandle(forReadingAtPath: path) else {
            throw FrameError.unreadable(path: path, reason: "permission denied or I/O error")
        }
        let magic = (try? handle.read(upToCount: 6)) ?? nil
        try? handle.close()
        guard let magic, !magic.isEmpty else { throw FrameError.emptyFile(path: path) }
        if magic.count == 6, let text = String(bytes: magic, encoding: .ascii), text == "GIF87a" || text == "GIF89a" {
            return try GIFFrameSource(path: path)
        }
        return try FFmpegFrameSource(path: path)
    }
}

extension FrameSource {
    func validate(_ indices: [Int]) throws(FrameError) {
        for index in indices where index < 0 || index >= frameCount {
            throw .indexOutOfRange(path: path, index: index, frameCount: frameCount)
        }
    }
}
