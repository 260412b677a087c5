import CFFmpeg
import Foundation

/// Video decoding with FFmpeg (libavformat + libavcodec), converted to BGR24 at the same size with
/// libswscale `SWS_BICUBIC`, the flags OpenCV's `cap_ffmpeg_impl.hpp` uses (spec §3.1: identical pixels
/// with Debian's FFmpeg 5.1).
///
/// Frame selection never seeks: `init` decodes the whole file once to count the frames that actually
/// decode (this count is `frameCount`); `frames(at:)` decodes again from the start and converts and
/// keeps only the requested indices. Two decodes cost time but keep memory bounded by the selected
/// frames, whatever the video length. A read error in the middle of the file (e.g. truncation) ends the
/// stream there, like OpenCV; packets the decoder rejects are skipped.
public final class FFmpegFrameSource: FrameSource {
    public let path: String
    public let frameCount: Int
    public let warnings: [String] = []

    /// Opens `path` and counts its decodable video frames. Throws `FrameError` with FFmpeg's error text.
    public init(path: String) throws {
        self.path = path
        try FFmpegFrameSource.loadLibraries(for: path)
        FFmpegFrameSource.quietLogging()
        let decoder = try FFmpegDecoder(path: path)
        var count = 0
        try decoder.decodeAll { _ in count += 1 }
        guard count > 0 else { throw FrameError.noFrames(path: path) }
        frameCount = count
    }

    /// Frames at `indices` (BGR24), in the order of `indices`.
    public func frames(at indices: [Int]) throws -> [Frame] {
        try validate(indices)
        guard let last = indices.max() else { return [] }
        var wanted: [Int: [Int]] = [:]
        for (position, index) in indices.enumerated() { wanted[index, default: []].append(position) }
        var output = [Frame?](repeating: nil, count: indices.count)
        let decoder = try FFmpegDecoder(path: path)
        var converter = BGRConverter(path: path)
        defer { converter.release() }
        var index = 0
        try decoder.decodeAll { frame in
            if let positions = wanted[index] {
                let converted = try converter.convert(frame)
                for position in positions { output[position] = converted }
            }
            index += 1
            return index <= last
        }
        let frames = output.compactMap { $0 }
        guard frames.count == indices.count else {
            throw FrameError.decodeFailed(path: path, reason: "the second decoding pass produced only \(index) frames")
        }
        return frames
    }

    /// FFmpeg is loaded on first use (see CFFmpeg/include/cffmpeg.h); a machine without its
    /// runtime libraries gets one line naming the missing library.
    static func loadLibraries(for path: String) throws {
        var reason = [CChar](repeating: 0, count: 512)
        guard cff_load(&reason, reason.count) != 0 else { return }
        let bytes = reason.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }
        throw FrameError.decodeFailed(path: path, reason: String(decoding: bytes, as: UTF8.self))
    }

    private static let setLogLevel: Void = { cff_av_log_set_level(AV_LOG_FATAL) }()

    /// FFmpeg logs to stderr by default; errors are reported through `FrameError` instead.
    static func quietLogging() { _ = setLogLevel }

    static func errorText(_ code: Int32) -> String {
        var buffer = [CChar](repeating: 0, count: 256)
        if cff_av_strerror(code, &buffer, buffer.count) < 0 { return "FFmpeg error \(code)" }
        let bytes = buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }
        return String(decoding: bytes, as: UTF8.self)
    }
}

/// One open demuxer + decoder; everything is freed in `deinit`, on every path.
final class FFmpegDecoder {
    private let path: String
    private var formatContext: UnsafeMutablePointer<AVFormatContext>?
    private var codecContext: UnsafeMutablePointer<AVCodecContext>?
    private var packet: UnsafeMutablePointer<AVPacket>?
    private var frame: UnsafeMutablePointer<AVFrame>?
    private let streamIndex: Int32

    init(path: String) throws {
        self.path = path
        var format: UnsafeMutablePointer<AVFormatContext>?
        let openResult = cff_avformat_open_input(&format, path, nil, nil)
        guard openResult >= 0, let format else {
            throw FrameError.notAVideo(path: path, reason: FFmpegFrameSource.errorText(openResult))
        }
        formatContext = format
        let infoResult = cff_avformat_find_stream_info(format, nil)
        guard infoResult >= 0 else {
            throw FrameError.notAVideo(path: path, reason: FFmpegFrameSource.errorText(infoResult))
        }
        var codec: UnsafePointer<AVCodec>?
        let best = cff_av_find_best_stream(format, AVMEDIA_TYPE_VIDEO, -1, -1, &codec, 0)
        guard best >= 0, let codec, let streams = format.pointee.streams, let stream = streams[Int(best)],
              let parameters = stream.pointee.codecpar else {
            if best == AVERROR_DECODER_NOT_FOUND_VALUE {
                throw FrameError.notAVideo(path: path, reason: "no decoder for its video stream")
            }
            throw FrameError.noVideoStream(path: path)
        }
        streamIndex = best
        try FrameLimits.check(width: Int(parameters.pointee.width) == 0 ? 1 : Int(parameters.pointee.width),
                              height: Int(parameters.pointee.height) == 0 ? 1 : Int(parameters.pointee.height), path: path)
        guard let context = cff_avcodec_alloc_context3(codec) else {
            throw FrameError.decodeFailed(path: path, reason: "cannot allocate a decoder context")
        }
        codecContext = context
        let parameterResult = cff_avcodec_parameters_to_context(context, parameters)
        guard parameterResult >= 0 else {
            throw FrameError.decodeFailed(path: path, reason: FFmpegFrameSource.errorText(parameterResult))
        }
        // One thread: the output does not depend on it, and the machine's cores are shared.
        context.pointee.thread_count = 1
        // The stream header's size is checked above, but a stream may change size mid-way (new SPS): make
        // the decoder itself refuse frames beyond the limit before it allocates them.
        context.pointee.max_pixels = Int64(FrameLimits.maximumPixels)
        let openCodecResult = cff_avcodec_open2(context, codec, nil)
        guard openCodecResult >= 0 else {
            throw FrameError.decodeFailed(path: path, reason: FFmpegFrameSource.errorText(openCodecResult))
        }
        guard let packet = cff_av_packet_alloc(), let frame = cff_av_frame_alloc() else {
            throw FrameError.decodeFailed(path: path, reason: "cannot allocate packet/frame")
        }
        self.packet = packet
        self.frame = frame
    }

    deinit {
        cff_av_frame_free(&frame)
        cff_av_packet_free(&packet)
        cff_avcodec_free_context(&codecContext)
        cff_avformat_close_input(&formatContext)
    }

    /// Decodes every frame in order, calling `visit` for each; `visit` returns false to stop early.
    func decodeAll(_ visit: (UnsafeMutablePointer<AVFrame>) throws -> Bool) throws {
        guard let formatContext, let codecContext, let packet, let frame else { return }
        let again = cffmpeg_averror_eagain()
        let endOfFile = cffmpeg_averror_eof()
        var draining = false
        while true {
            if !draining {
                let readResult = cff_av_read_frame(formatContext, packet)
                if readResult < 0 {
                    // End of file, or a read error (truncated file): flush what the decoder holds.
                    draining = true
                    _ = cff_avcodec_send_packet(codecContext, nil)
                } else {
                    defer { cff_av_packet_unref(packet) }
                    if packet.pointee.stream_index != streamIndex { continue }
                    // A rejected packet (corrupt data) is skipped, as OpenCV and the ffmpeg tool do.
                    _ = cff_avcodec_send_packet(codecContext, packet)
                }
            }
            while true {
                let receiveResult = cff_avcodec_receive_frame(codecContext, frame)
                if receiveResult == again { break }
                if receiveResult == endOfFile { return }
                if receiveResult < 0 {
                    if draining { return }
                    break
                }
                defer { cff_av_frame_unref(frame) }
                if try !visit(frame) { return }
            }
        }
    }

    /// Convenience for visitors that never stop early.
    func decodeAll(_ visit: (UnsafeMutablePointer<AVFrame>) throws -> Void) throws {
        try decodeAll { (frame: UnsafeMutablePointer<AVFrame>) throws -> Bool in
            try visit(frame)
            return true
        }
    }
}

/// Same-size conversion of decoded frames to packed BGR24 with `SWS_BICUBIC`.
struct BGRConverter {
    let path: String
    private var context: OpaquePointer?

    init(path: String) { self.path = path }

    mutating func release() {
        cff_sws_freeContext(context)
        context = nil
    }

    mutating func convert(_ frame: UnsafeMutablePointer<AVFrame>) throws -> Frame {
        let width = Int(frame.pointee.width)
        let height = Int(frame.pointee.height)
        try FrameLimits.check(width: width, height: height, path: path)
        context = cff_sws_getCachedContext(context, Int32(width), Int32(height), AVPixelFormat(rawValue: frame.pointee.format),
                                       Int32(width), Int32(height), AV_PIX_FMT_BGR24, SWS_BICUBIC, nil, nil, nil)
        guard let context else {
            throw FrameError.decodeFailed(path: path, reason: "swscale cannot convert pixel format \(frame.pointee.format) to BGR24")
        }
        let rowBytes = width * 3
        // Rows padded to 64 bytes so swscale's SIMD writers see aligned strides; copied out packed below.
        let stride = (rowBytes + 63) & ~63
        var scratch = [UInt8](repeating: 0, count: stride * height + 64)
        let scaledRows: Int32 = scratch.withUnsafeMutableBufferPointer { buffer in
            var destination: [UnsafeMutablePointer<UInt8>?] = [buffer.baseAddress, nil, nil, nil]
            var destinationStride: [Int32] = [Int32(stride), 0, 0, 0]
            return withUnsafePointer(to: &frame.pointee.data) { dataTuple in
                dataTuple.withMemoryRebound(to: UnsafeMutablePointer<UInt8>?.self, capacity: 8) { planes in
                    withUnsafePointer(to: &frame.pointee.linesize) { strideTuple in
                        strideTuple.withMemoryRebound(to: Int32.self, capacity: 8) { strides in
                            var sources = (0..<8).map { UnsafePointer<UInt8>(planes[$0]) }
                            return cff_sws_scale(context, &sources, strides, 0, Int32(height), &destination, &destinationStride)
                        }
                    }
                }
            }
        }
        guard scaledRows == Int32(height) else {
            throw FrameError.decodeFailed(path: path, reason: "swscale converted \(scaledRows) of \(height) rows")
        }
        var pixels = [UInt8](repeating: 0, count: rowBytes * height)
        pixels.withUnsafeMutableBufferPointer { output in
            scratch.withUnsafeBufferPointer { input in
                for row in 0..<height {
                    guard let target = output.baseAddress, let source = input.baseAddress else { return }
                    (target + row * rowBytes).update(from: source + row * stride, count: rowBytes)
                }
            }
        }
        return try Frame(width: width, height: height, pixels: pixels)
    }
}

/// `AVERROR_DECODER_NOT_FOUND` is a macro (FFERRTAG(0xF8,'D','E','C')), so spelled out here.
private let AVERROR_DECODER_NOT_FOUND_VALUE: Int32 = {
    let tag = UInt32(0xF8) | UInt32(UInt8(ascii: "D")) << 8 | UInt32(UInt8(ascii: "E")) << 16 | UInt32(UInt8(ascii: "C")) << 24
    return -Int32(bitPattern: tag)
}()
