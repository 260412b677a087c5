import Foundation
import Testing
import ONNXLoader
import Tensor
@testable import Models

@Suite struct ActivationArenaTests {
    static let tiny = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/tiny").path

    static func randomImage(frames: Int, seed: UInt64) throws -> Tensor {
        var generator = SplitMix64(seed: seed)
        return try Tensor(generator.floats(frames * 3 * 224 * 224), shape: [frames, 3, 224, 224])
    }

    static func bytes(_ tensor: Tensor) -> Data { Data(bytes: tensor.storage.pointer, count: tensor.byteCount) }

    @Test func replayedRunsUseTheArenaAndGiveIdenticalResults() throws {
        let model = try ONNXLoader.load(contentsOf: Self.tiny + "/vit-32-8f-image_clip.onnx")
        let program = try GraphProgram(model: model, options: .none)
        let reference = try GraphProgram(model: model, options: .none)
        let image = try Self.randomImage(frames: 2, seed: 5)
        let name = program.inputs[0].info.name
        let output = program.outputs[0].info.name

        let first = try #require(try program.run([name: image])[output])
        #expect(program.activationArena.lastRun.recorded || !ActivationArena.isEnabled)
        for _ in 0..<3 {
            let again = try #require(try program.run([name: image])[output])
            #expect(Self.bytes(again) == Self.bytes(first))
        }
        if ActivationArena.isEnabled {
            let statistics = program.activationArena.lastRun
            #expect(!statistics.recorded)
            #expect(statistics.servedFromArena > 50)
            #expect(statistics.arenaBytes > 0)
        }
        // A program that never reused memory gives the same bytes (heap path on its first run).
        let heapResult = try #require(try reference.run([name: image])[output])
        #expect(Self.bytes(heapResult) == Self.bytes(first))
    }

    @Test func differentShapesGetTheirOwnPlanAndHeldTensorsAreNeverOverwritten() throws {
        let model = try ONNXLoader.load(contentsOf: Self.tiny + "/vit-32-8f-image_clip.onnx")
        let program = try GraphProgram(model: model, options: .none)
        let name = program.inputs[0].info.name
        let output = program.outputs[0].info.name
        let small = try Self.randomImage(frames: 1, seed: 1)
        let large = try Self.randomImage(frames: 3, seed: 2)
        let smallResult = try #require(try program.run([name: small])[output])
        let largeResult = try #require(try program.run([name: large])[output])
        // Keep every intermediate of a replayed run alive: later runs must not write into them.
        var held: [Tensor] = []
        _ = try program.run([name: small]) { event in held.append(contentsOf: event.outputs) }
        let snapshot = held.map(Self.bytes)
        let again = try #require(try program.run([name: small])[output])
        #expect(Self.bytes(again) == Self.bytes(smallResult))
        #expect(held.map(Self.bytes) == snapshot)
        #expect(Self.bytes(try #require(try program.run([name: large])[output])) == Self.bytes(largeResult))
    }
}
