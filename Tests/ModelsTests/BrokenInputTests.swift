import Foundation
import Testing
@testable import Models

/// Broken and extreme videos/GIFs (issue 5): each is either a clear one-line error naming the file or a
/// correct result, within bounded time and memory. GIFs are generated here by `TinyGIFWriter`; the two
/// small videos in Fixtures/broken were made with the ffmpeg CLI:
///   video_1x1.mp4:        ffmpeg -f lavfi -i color=c=red:s=2x2:r=5:d=1 -vf scale=1:1 -c:v libx264 -pix_fmt yuv444p
///   resize_midstream.ts:  two H.264 MPEG-TS files (testsrc 32x24 and 48x16, 3 frames each) concatenated bytewise
struct BrokenInputTests {
    static let brokenDirectory = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("Fixtures/broken")

    /// Opens and decodes frame 0; returns the one-line error text (and checks it names the file).
    func errorText(_ path: String) -> String? {
        do {
            let source = try VideoReader.open(path: path)
            _ = try source.frames(at: [0, source.frameCount - 1])
            return nil
        } catch {
            let text = "\(error)"
            #expect(text.contains(path), "message names the file: \(text)")
            #expect(!text.contains("\n"), "one line: \(text)")
            return text
        }
    }

    @Test("a GIF frame claiming 65535x65535 pixels with 2 bytes of data is refused before giflib allocates it")
    func hugeFrameDescriptor() throws {
        let directory = try FrameFixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        var writer = TinyGIFWriter(width: 1, height: 1)
        writer.addFrame(colorIndex: 0, width: 0xFFFF, height: 0xFFFF)
        let path = directory.appendingPathComponent("huge-frame.gif").path
        try writer.data().write(to: URL(fileURLWithPath: path))
        let text = try #require(errorText(path))
        #expect(text.contains("65535x65535") && text.contains("bytes of image data"), "\(text)")
    }

    @Test("a 16000x16000 canvas (under the per-side limit) holding one 1x1 frame is refused, not allocated")
    func hugeCanvasWithoutData() throws {
        let directory = try FrameFixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        var writer = TinyGIFWriter(width: 16000, height: 16000)
        writer.addFrame(colorIndex: 1)
        let path = directory.appendingPathComponent("huge-canvas.gif").path
        try writer.data().write(to: URL(fileURLWithPath: path))
        let text = try #require(errorText(path))
        #expect(text.contains("16000x16000") && text.contains("exceeds the limit"), "\(text)")
    }

    @Test("a GIF with 10,000 1x1 frames decodes correctly in bounded time")
    func tenThousandFrames() throws {
        let directory = try FrameFixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        var writer = TinyGIFWriter(width: 1, height: 1)
        for index in 0..<10_000 { writer.addFrame(colorIndex: UInt8(index % 2)) }
        let path = directory.appendingPathComponent("many.gif").path
        try writer.data().write(to: URL(fileURLWithPath: path))
        let clock = ContinuousClock()
        let start = clock.now
        let source = try VideoReader.open(path: path)
        #expect(source.frameCount == 10_000)
        let frames = try source.frames(at: [0, 1, 9_998, 9_999, 5_001])
        // Palette: 0 = red, 1 = blue; frames are BGR.
        let red: [UInt8] = [0, 0, 255], blue: [UInt8] = [255, 0, 0]
        #expect(frames.map(\.pixels) == [red, blue, red, blue, blue])
        // Whole pipeline: 8 segments sampled from 10,000 frames.
        let prepared = try VideoPreprocessor().prepare(path: path, sampling: .center, channelOrder: .rgb)
        #expect(prepared.input.shape == [8, 3, 224, 224])
        #expect(clock.now - start < .seconds(60))
    }

    @Test("zero-byte, text-as-.mp4 and truncated MP4 files are one-line errors")
    func brokenVideoFiles() throws {
        let directory = try FrameFixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let empty = directory.appendingPathComponent("zero.mp4")
        try Data().write(to: empty)
        #expect(errorText(empty.path)?.contains("file is empty") == true)
        let text = directory.appendingPathComponent("readme.mp4")
        try Data(String(repeating: "plain text, not a video\n", count: 40).utf8).write(to: text)
        #expect(errorText(text.path)?.contains("not a readable video") == true)
        // Every cut of the H.264 MP4 is an error or a correct prefix, never a crash.
        let mp4 = try FrameFixtures.bytes("video_h264.mp4")
        let full = try VideoReader.open(path: FrameFixtures.path("video_h264.mp4"))
        let reference = try full.frames(at: Array(0..<full.frameCount))
        for fraction in [1, 10, 50, 90, 99] {
            let cut = directory.appendingPathComponent("cut\(fraction).mp4")
            try Data(mp4.prefix(mp4.count * fraction / 100)).write(to: cut)
            do {
                let source = try VideoReader.open(path: cut.path)
                let frames = try source.frames(at: Array(0..<source.frameCount))
                #expect(frames == Array(reference.prefix(frames.count)), "cut at \(fraction)%")
            } catch {
                #expect("\(error)".contains(cut.path))
            }
        }
    }

    @Test("a 1x1 video decodes to 1x1 frames and preprocesses")
    func onePixelVideo() throws {
        let path = Self.brokenDirectory.appendingPathComponent("video_1x1.mp4").path
        let source = try VideoReader.open(path: path)
        #expect(source.frameCount == 5)
        let frames = try source.frames(at: [0, 4])
        #expect(frames.allSatisfy { $0.width == 1 && $0.height == 1 })
        // libx264 yuv444p red: close to BGR (0, 0, 255).
        if let pixel = frames.first?.pixels {
            #expect(pixel[2] > 200 && pixel[0] < 40 && pixel[1] < 40, "\(pixel)")
        }
        let prepared = try VideoPreprocessor().prepare(path: path, sampling: .center, channelOrder: .rgb)
        #expect(prepared.input.shape == [8, 3, 224, 224])
    }

    @Test("a stream that changes resolution mid-way yields each frame at its own size, and preprocesses")
    func resolutionChangeMidStream() throws {
        let path = Self.brokenDirectory.appendingPathComponent("resize_midstream.ts").path
        let source = try VideoReader.open(path: path)
        #expect(source.frameCount == 6)
        let frames = try source.frames(at: Array(0..<source.frameCount))
        #expect(frames.map { [$0.width, $0.height] } == [[32, 24], [32, 24], [32, 24], [48, 16], [48, 16], [48, 16]])
        let prepared = try VideoPreprocessor().prepare(path: path, sampling: .center, channelOrder: .rgb)
        #expect(prepared.input.shape == [8, 3, 224, 224])
        let values = prepared.input.floats
        #expect(values.allSatisfy { $0.isFinite })
    }
}

/// A minimal GIF89a writer: a 2-colour global palette (0 = red, 1 = blue) and frames whose image data is a
/// single pixel (LZW: clear, index, end), whatever size the descriptor declares.
struct TinyGIFWriter {
    private var bytes: [UInt8]

    init(width: Int, height: Int) {
        bytes = Array("GIF89a".utf8) + Self.word(width) + Self.word(height) + [0x80, 0, 0]
        bytes += [255, 0, 0, 0, 0, 255]
    }

    mutating func addFrame(colorIndex: UInt8, width: Int = 1, height: Int = 1) {
        bytes += [0x2C] + Self.word(0) + Self.word(0) + Self.word(width) + Self.word(height) + [0]
        // Minimum code size 2: 3-bit codes clear (4), index, end (5), packed LSB first.
        let codes = 4 | Int(colorIndex) << 3 | 5 << 6
        bytes += [2, 2, UInt8(codes & 0xFF), UInt8(codes >> 8), 0]
    }

    func data() -> Data { Data(bytes + [0x3B]) }

    private static func word(_ value: Int) -> [UInt8] { [UInt8(value & 0xFF), UInt8(value >> 8 & 0xFF)] }
}

/// Regressions for the GIF prescan (issue 5).
struct RegressionGIFPrescanTests {
    @Test("a GIF cut inside a large last frame still salvages its complete frames")
    func truncatedLargeLastFrameIsSalvaged() throws {
        let directory = try FrameFixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        var writer = TinyGIFWriter(width: 1000, height: 1000)
        writer.addFrame(colorIndex: 0)
        writer.addFrame(colorIndex: 1)
        writer.addFrame(colorIndex: 0, width: 1000, height: 1000)
        let bytes = [UInt8](writer.data())
        // Cut inside the third frame's only data block (1 of its 2 bytes present): giflib allocates the
        // declared 1000x1000 raster, fails on the missing data, and the two complete frames are kept.
        let path = directory.appendingPathComponent("cut.gif").path
        try Data(bytes.prefix(bytes.count - 3)).write(to: URL(fileURLWithPath: path))
        let source = try VideoReader.open(path: path)
        #expect(source.frameCount == 2)
        #expect(source.warnings.first?.contains("truncated") == true)
        let frames = try source.frames(at: [source.frameCount - 1])
        #expect(frames.first?.width == 1000 && frames.first?.pixels.prefix(3) == [255, 0, 0])
    }

    @Test("a complete frame whose declared size its data cannot fill is refused with the frame number")
    func underfilledFrameIsRefused() throws {
        let directory = try FrameFixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        var writer = TinyGIFWriter(width: 1000, height: 1000)
        writer.addFrame(colorIndex: 0)
        writer.addFrame(colorIndex: 0, width: 1000, height: 1000)
        let path = directory.appendingPathComponent("underfilled.gif").path
        try writer.data().write(to: URL(fileURLWithPath: path))
        do {
            _ = try VideoReader.open(path: path)
            Issue.record("opened without error")
        } catch {
            #expect("\(error)".contains("frame 1 declares 1000x1000"), "\(error)")
        }
    }
}
