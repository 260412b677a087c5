import Foundation
import Testing
import Tensor
@testable import Models

@Suite("Preprocessing: sampling, resize, normalisation")
struct PreprocessTests {
    // MARK: Sampling

    @Test("MT19937 init_genrand matches the reference generator")
    func mersenneTwister() {
        var generator = MersenneTwister(seed: 5489)
        #expect(generator.next() == 3_499_211_612)
        var zero = MersenneTwister(seed: 0)
        #expect(zero.next() == 2_357_136_044)
    }

    @Test("golden seeds on 50 frames")
    func goldenSampling() throws {
        #expect(FrameSampling.segmentBounds(frameCount: 50) == [0, 6, 12, 19, 25, 31, 38, 44, 50])
        #expect(try FrameSampling.random(seed: 0).select(frameCount: 50).indices == [4, 11, 12, 22, 28, 34, 39, 47])
        #expect(try FrameSampling.random(seed: 1).select(frameCount: 50).indices == [5, 9, 16, 19, 26, 34, 43, 44])
        #expect(try FrameSampling.random(seed: 42).select(frameCount: 50).indices == [3, 10, 18, 21, 29, 35, 39, 46])
        #expect(try FrameSampling.random(seed: 1024).select(frameCount: 50).indices == [3, 7, 13, 23, 30, 32, 39, 44])
        #expect(try FrameSampling.random(seed: 0).select(frameCount: 50).warning == nil)
    }

    @Test("numpy sampling cases: random (seeds x frame counts), centre, bounds")
    func samplingCases() throws {
        let root = try #require(try FrameFixtures.json("sampling.json") as? [String: Any])
        let random = try #require(root["random"] as? [[String: Any]])
        #expect(random.count > 200)
        for entry in random {
            let seed = try #require(entry["seed"] as? Int), count = try #require(entry["frame_count"] as? Int)
            let expected = try #require(entry["sample_ids"] as? [Int])
            #expect(FrameSampling.segmentBounds(frameCount: count) == entry["intervals"] as? [Int])
            let got = try FrameSampling.random(seed: UInt32(seed)).select(frameCount: count).indices
            #expect(got == expected, "seed \(seed), \(count) frames")
        }
        let center = try #require(root["center"] as? [[String: Any]])
        for entry in center {
            let count = try #require(entry["frame_count"] as? Int)
            #expect(try FrameSampling.center.select(frameCount: count).indices == entry["sample_ids"] as? [Int], "\(count)")
        }
        let bounds = try #require(root["short_bounds"] as? [[String: Any]])
        for entry in bounds {
            let count = try #require(entry["frame_count"] as? Int)
            #expect(FrameSampling.segmentBounds(frameCount: count) == entry["intervals"] as? [Int])
        }
        let sizes = try #require(root["resized_sizes"] as? [[String: Any]])
        for entry in sizes {
            let size = VideoPreprocessor.resizedSize(width: try #require(entry["width"] as? Int),
                                                     height: try #require(entry["height"] as? Int))
            #expect(size.width == entry["resized_width"] as? Int && size.height == entry["resized_height"] as? Int)
        }
    }

    @Test("short videos reuse frames with a warning; zero frames is an error")
    func shortVideos() throws {
        for count in 1..<8 {
            for sampling in [FrameSampling.random(seed: 3), .center] {
                let selection = try sampling.select(frameCount: count)
                #expect(selection.indices.count == 8)
                #expect(selection.indices.allSatisfy { (0..<count).contains($0) })
                #expect(selection.indices == selection.indices.sorted())
                #expect(selection.warning?.contains("only \(count) frames") == true)
            }
        }
        // 5 frames: bounds [0,1,1,2,2,3,4,4,5]; empty segments take the previous segment's last frame.
        #expect(try FrameSampling.random(seed: 0).select(frameCount: 5).indices == [0, 0, 1, 1, 2, 3, 3, 4])
        #expect(throws: FrameError.zeroFrames) { try FrameSampling.random(seed: 0).select(frameCount: 0) }
        #expect(throws: FrameError.zeroFrames) { try FrameSampling.center.select(frameCount: 0) }
        let a = FrameSampling.randomSeed(), b = FrameSampling.randomSeed(), c = FrameSampling.randomSeed()
        #expect(!(a == b && b == c))
    }

    // MARK: Resize

    private static func image(_ width: Int, _ height: Int, seed: UInt64) throws -> Frame {
        var generator = SplitMix64(seed: seed)
        return try Frame(width: width, height: height,
                         pixels: (0..<(width * height * 3)).map { _ in UInt8.random(in: 0...255, using: &generator) })
    }

    @Test("resize is bit-exact with OpenCV's generic INTER_CUBIC on the fixture images")
    func resizeMatchesOpenCV() throws {
        let cases = try #require(try FrameFixtures.json("resize.json") as? [[String: Any]])
        let blob = try FrameFixtures.bytes("resize.bin")
        #expect(cases.count >= 10)
        for entry in cases {
            let sourceHeight = try #require(entry["src_height"] as? Int), sourceWidth = try #require(entry["src_width"] as? Int)
            let height = try #require(entry["dst_height"] as? Int), width = try #require(entry["dst_width"] as? Int)
            let sourceOffset = try #require(entry["src_offset"] as? Int), destinationOffset = try #require(entry["dst_offset"] as? Int)
            let source = Array(blob[sourceOffset..<(sourceOffset + sourceWidth * sourceHeight * 3)])
            let expected = Array(blob[destinationOffset..<(destinationOffset + width * height * 3)])
            let reference = Reference.cubicResize(source, width: sourceWidth, height: sourceHeight, channels: 3,
                                                  toWidth: width, toHeight: height)
            let fast = CubicResize.resize(try Frame(width: sourceWidth, height: sourceHeight, pixels: source),
                                          width: width, height: height)
            let label = "\(sourceWidth)x\(sourceHeight) -> \(width)x\(height)"
            #expect(zip(reference, expected).filter { $0 != $1 }.count == 0, "reference \(label)")
            #expect(zip(fast, expected).filter { $0 != $1 }.count == 0, "fast \(label)")
        }
    }

    @Test("region resize equals the crop of the full reference resize (odd shapes, SIMD/tail boundary)")
    func regionMatchesReference() throws {
        let shapes: [(Int, Int, Int, Int)] = [(50, 77, 101, 37), (17, 9, 8, 40), (600, 339, 453, 256), (33, 65, 250, 258)]
        for (index, (width, height, toWidth, toHeight)) in shapes.enumerated() {
            let frame = try Self.image(width, height, seed: UInt64(index + 1))
            let full = Reference.cubicResize(frame.pixels, width: width, height: height, channels: 3,
                                             toWidth: toWidth, toHeight: toHeight)
            for region in [CubicResize.Region(x: 0, y: 0, width: toWidth, height: toHeight),
                           CubicResize.Region(x: toWidth / 3, y: toHeight / 4, width: toWidth / 2, height: toHeight / 2),
                           CubicResize.Region(x: toWidth - 5, y: toHeight - 3, width: 5, height: 3)] {
                let part = CubicResize.resize(frame, width: toWidth, height: toHeight, region: region)
                var expected: [UInt8] = []
                for row in region.y..<(region.y + region.height) {
                    let start = (row * toWidth + region.x) * 3
                    expected += full[start..<(start + region.width * 3)]
                }
                #expect(part == expected, "\(width)x\(height) -> \(toWidth)x\(toHeight) region \(region)")
            }
        }
    }

    // MARK: Normalisation and the whole pipeline

    @Test("normalisation follows ailia's float64 arithmetic; .rgb swaps channels")
    func normalisation() throws {
        let frame = try Self.image(300, 240, seed: 9)
        let preprocessor = VideoPreprocessor()
        let bgr = try preprocessor.prepare(frames: [frame, frame], channelOrder: .bgr)
        let rgb = try preprocessor.prepare(frames: [frame], channelOrder: .rgb)
        #expect(bgr.shape == [2, 3, 224, 224] && bgr.dataType == .float32)
        let crop = VideoPreprocessor.resizedCenterCrop(frame)
        let plane = 224 * 224
        for pixel in stride(from: 0, to: plane, by: 997) {
            for channel in 0..<3 {
                func expected(_ byte: UInt8, _ statistics: Int) -> Float {
                    Float((Double(Float(Double(byte) / 255.0)) - VideoPreprocessor.mean[statistics])
                          / VideoPreprocessor.standardDeviation[statistics])
                }
                #expect(bgr.floats[channel * plane + pixel] == expected(crop[pixel * 3 + channel], channel))
                #expect(bgr.floats[(3 + channel) * plane + pixel] == bgr.floats[channel * plane + pixel])
                #expect(rgb.floats[channel * plane + pixel] == expected(crop[pixel * 3 + 2 - channel], channel))
            }
        }
    }

    @Test("committed small GIF: frame ids, crops and input match OpenCV (checksums)")
    func smallClipMatchesOpenCV() throws {
        let cases = try #require(try FrameFixtures.json("crop_cases.json") as? [[String: Any]])
        let path = FrameFixtures.path("clip_small.gif")
        let preprocessor = VideoPreprocessor()
        for entry in cases {
            let sampling: FrameSampling = (entry["center"] as? Bool == true)
                ? .center : .random(seed: UInt32(try #require(entry["seed"] as? Int)))
            let order: ChannelOrder = entry["order"] as? String == "rgb" ? .rgb : .bgr
            let prepared = try preprocessor.prepare(path: path, sampling: sampling, channelOrder: order)
            #expect(prepared.frameCount == entry["frame_count"] as? Int)
            #expect(prepared.frameIndices == entry["frame_ids"] as? [Int])
            #expect(prepared.warnings.isEmpty)
            let frames = try VideoReader.open(path: path).frames(at: prepared.frameIndices)
            var cropHash = FNV1a64()
            for frame in frames { cropHash.add(VideoPreprocessor.resizedCenterCrop(frame)) }
            #expect(cropHash.hex == entry["crops_fnv1a64"] as? String, "crops \(sampling)")
            var inputHash = FNV1a64()
            for value in prepared.input.floats { withUnsafeBytes(of: value.bitPattern.littleEndian) { inputHash.add($0) } }
            #expect(inputHash.hex == entry["input_fnv1a64"] as? String, "input \(sampling)")
            let first = try #require(entry["input_first"] as? [Double])
            // Foundation's JSON number parsing is not correctly rounded on Linux; compare at float32 (the hash is exact).
            #expect(Array(prepared.input.floats[0..<4]) == first.map { Float($0) })
        }
    }
}
