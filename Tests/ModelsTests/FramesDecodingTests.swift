import Foundation
import Testing
@testable import Models

@Suite("Frames: GIF and video decoding")
struct FramesDecodingTests {
    @Test("crafted GIFs composite bit-exactly like FFmpeg's GIF decoder")
    func gifCompositingMatchesFFmpeg() throws {
        let cases = try #require(try FrameFixtures.json("gifs.json") as? [[String: Any]])
        #expect(cases.count == 5)
        for entry in cases {
            let name = try #require(entry["name"] as? String)
            let width = try #require(entry["width"] as? Int), height = try #require(entry["height"] as? Int)
            let count = try #require(entry["frames"] as? Int)
            let expected = try FrameFixtures.bytes(name + ".bgr")
            let source = try VideoReader.open(path: FrameFixtures.path(name + ".gif"))
            #expect(source is GIFFrameSource)
            #expect(source.frameCount == count, "\(name)")
            let frames = try source.frames(at: Array(0..<count))
            let frameBytes = width * height * 3
            for (index, frame) in frames.enumerated() {
                #expect(frame.width == width && frame.height == height)
                let reference = Array(expected[(index * frameBytes)..<((index + 1) * frameBytes)])
                let differing = zip(frame.pixels, reference).filter { $0 != $1 }.count
                #expect(differing == 0, "\(name) frame \(index): \(differing) bytes differ")
            }
        }
    }

    @Test("a damaged LZW stream is drawn up to its last complete line, with one warning naming the frame")
    func damagedLZWFrames() throws {
        let source = try VideoReader.open(path: FrameFixtures.path("gif_lzw.gif"))
        #expect(source.warnings.isEmpty)
        // Frames 0 and 1 are intact: no warning.
        _ = try source.frames(at: [1])
        #expect(source.warnings.isEmpty)
        // The first damaged frame is named; later ones add nothing.
        _ = try source.frames(at: [5])
        #expect(source.warnings.count == 1)
        let warning = source.warnings.first ?? ""
        #expect(warning.contains("gif_lzw.gif") && warning.contains("frame 2") && warning.contains("ends after 75 of 600 pixels"),
                "\(warning)")
        // Decoding again does not repeat it.
        _ = try source.frames(at: [5])
        #expect(source.warnings.count == 1)
    }

    @Test("frames(at:) returns the requested order, repeats included, equal to a sequential decode")
    func selectionOrder() throws {
        let source = try VideoReader.open(path: FrameFixtures.path("gif_disposals.gif"))
        let all = try source.frames(at: Array(0..<source.frameCount))
        let picked = try source.frames(at: [7, 2, 2, 9, 0])
        #expect(picked == [all[7], all[2], all[2], all[9], all[0]])
        #expect(throws: FrameError.self) { try source.frames(at: [source.frameCount]) }
        #expect(throws: FrameError.self) { try source.frames(at: [-1]) }
    }

    @Test("H.264, VP9 and MJPEG fixtures decode to OpenCV's BGR24 frames exactly")
    func videosMatchOpenCV() throws {
        let cases = try #require(try FrameFixtures.json("videos.json") as? [[String: Any]])
        #expect(cases.count == 3)
        for entry in cases {
            let name = try #require(entry["name"] as? String)
            let expectedName = try #require(entry["expected"] as? String)
            let width = try #require(entry["width"] as? Int), height = try #require(entry["height"] as? Int)
            let count = try #require(entry["frames"] as? Int)
            let expected = try FrameFixtures.bytes(expectedName)
            let source = try VideoReader.open(path: FrameFixtures.path(name))
            #expect(source is FFmpegFrameSource)
            #expect(source.frameCount == count, "\(name)")
            let indices = [0, 5, count - 1, 3, 5]
            let frames = try source.frames(at: indices)
            let frameBytes = width * height * 3
            for (frame, index) in zip(frames, indices) {
                #expect(frame.width == width && frame.height == height)
                let reference = Array(expected[(index * frameBytes)..<((index + 1) * frameBytes)])
                let differing = zip(frame.pixels, reference).filter { $0 != $1 }.count
                #expect(differing == 0, "\(name) frame \(index): \(differing) bytes differ")
            }
        }
    }

    @Test("broken inputs throw one clear error naming the file, never crash")
    func brokenInputs() throws {
        let directory = try FrameFixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        func expectError(_ path: String, containing fragment: String) {
            do {
                let source = try VideoReader.open(path: path)
                _ = try source.frames(at: [0])
                Issue.record("\(path) opened without error")
            } catch {
                let text = "\(error)"
                #expect(text.contains(path), "message names the file: \(text)")
                #expect(text.contains(fragment), "\(text) should mention '\(fragment)'")
                #expect(!text.contains("\n"))
            }
        }
        expectError(directory.appendingPathComponent("missing.mp4").path, containing: "not found")

        let empty = directory.appendingPathComponent("empty.mp4")
        try Data().write(to: empty)
        expectError(empty.path, containing: "empty")

        let text = directory.appendingPathComponent("notes.mp4")
        try Data("this is not a video, just some text\n".utf8).write(to: text)
        expectError(text.path, containing: "not a readable video")

        // GIF header claiming a 65535x65535 canvas.
        let huge = directory.appendingPathComponent("huge.gif")
        var header: [UInt8] = Array("GIF89a".utf8) + [0xFF, 0xFF, 0xFF, 0xFF, 0x80, 0, 0] + [UInt8](repeating: 0, count: 6)
        header += [0x2C, 0, 0, 0, 0, 0xFF, 0xFF, 0xFF, 0xFF, 0, 2, 2, 0x44, 0x01, 0, 0x3B]
        try Data(header).write(to: huge)
        expectError(huge.path, containing: "exceeds the limit")

        // Truncated MP4 (moov atom at the end is lost).
        let mp4 = try FrameFixtures.bytes("video_h264.mp4")
        let truncatedMP4 = directory.appendingPathComponent("cut.mp4")
        try Data(mp4.prefix(mp4.count / 2)).write(to: truncatedMP4)
        expectError(truncatedMP4.path, containing: "not a readable video")

        // A GIF cut after its header and palette: no complete frame.
        let gif = try FrameFixtures.bytes("gif_disposals.gif")
        let headerOnly = directory.appendingPathComponent("header-only.gif")
        try Data(gif.prefix(13 + 48 + 10)).write(to: headerOnly)
        expectError(headerOnly.path, containing: "giflib")

        // A 2x2 GIF with neither a global nor a local colour map.
        let paletteless = directory.appendingPathComponent("no-palette.gif")
        let bytes: [UInt8] = Array("GIF89a".utf8) + [2, 0, 2, 0, 0x00, 0, 0]
            + [0x2C, 0, 0, 0, 0, 2, 0, 2, 0, 0x00] + [0x02, 0x03, 0x04, 0x80, 0x02, 0x00] + [0x3B]
        try Data(bytes).write(to: paletteless)
        expectError(paletteless.path, containing: "colour map")
    }

    @Test("a truncated GIF keeps its complete frames (bit-exact) and reports a warning")
    func truncatedGIFSalvage() throws {
        let directory = try FrameFixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let gif = try FrameFixtures.bytes("gif_disposals.gif")
        let path = directory.appendingPathComponent("cut.gif").path
        try Data(gif.prefix(gif.count * 6 / 10)).write(to: URL(fileURLWithPath: path))
        let source = try VideoReader.open(path: path)
        #expect(source.frameCount >= 1 && source.frameCount < 10)
        #expect(source.warnings.count == 1)
        #expect(source.warnings.first?.contains("truncated") == true)
        let full = try VideoReader.open(path: FrameFixtures.path("gif_disposals.gif"))
        let indices = Array(0..<source.frameCount)
        #expect(try source.frames(at: indices) == full.frames(at: indices))
    }

    @Test("a truncated AVI (header intact, index lost) decodes its leading frames exactly")
    func truncatedAVI() throws {
        let directory = try FrameFixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let avi = try FrameFixtures.bytes("video_mjpeg.avi")
        let path = directory.appendingPathComponent("cut.avi").path
        try Data(avi.prefix(avi.count / 2)).write(to: URL(fileURLWithPath: path))
        let source = try VideoReader.open(path: path)
        #expect(source.frameCount >= 1 && source.frameCount < 12)
        let expected = try FrameFixtures.bytes("video_mjpeg.bgr")
        let frameBytes = 70 * 46 * 3
        let first = try source.frames(at: [0])
        #expect(first.first?.pixels == Array(expected[0..<frameBytes]))
    }

    @Test("a fake GIF header and a directory fail clearly")
    func gifNamedNonsense() throws {
        let directory = try FrameFixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let fake = directory.appendingPathComponent("fake.gif")
        try Data("GIF89a but nothing else".utf8).write(to: fake)
        #expect(throws: FrameError.self) { _ = try VideoReader.open(path: fake.path) }
        #expect(throws: FrameError.self) { _ = try VideoReader.open(path: directory.path) }
        // A well-formed GIF (header, palette, trailer) without any image.
        let empty = directory.appendingPathComponent("empty.gif")
        try Data(Array("GIF89a".utf8) + [2, 0, 2, 0, 0x80, 0, 0, 0, 0, 0, 255, 255, 255, 0x3B]).write(to: empty)
        #expect(throws: FrameError.noFrames(path: empty.path)) { _ = try VideoReader.open(path: empty.path) }
    }
}
