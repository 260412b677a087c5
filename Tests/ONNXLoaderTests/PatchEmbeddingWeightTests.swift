import Foundation
import Testing
import Tensor
@testable import ONNXLoader

/// Patch-embedding Conv weights the loader stores as the packed strips of their transpose
/// (`WeightPacking.patchEmbeddingOperands`, `PackedStrips.transposed`): which ones, that they
/// hold exactly the model's values however they are read, and that the weight cache keeps them.
@Suite struct PatchEmbeddingWeightTests {
    typealias Wire = WeightIndexTests.Wire

    /// "patch" [32, 3, 4, 4] read by a Conv with strides = kernel (stored transposed and packed);
    /// "overlap" read with strides 2 (overlapping windows), "shared" also read by an Add, "narrow"
    /// [16, 3, 4, 4] (16 filters, not a whole strip) and "padded" by a Conv with pads: none packed.
    static func model() -> (bytes: [UInt8], values: [String: [Float]]) {
        let shapes: [(String, [Int])] = [("patch", [32, 3, 4, 4]), ("overlap", [32, 3, 4, 4]), ("shared", [32, 3, 4, 4]),
                                         ("narrow", [16, 3, 4, 4]), ("padded", [32, 3, 4, 4])]
        var values: [String: [Float]] = [:]
        var graph = Wire()
        func ints(_ name: String, _ values: [Int]) -> [UInt8] {
            var attribute = Wire()
            attribute.text(1, name)
            for value in values { attribute.int(8, UInt64(value)) }
            attribute.int(20, 7)  // INTS
            return attribute.bytes
        }
        func node(_ op: String, _ inputs: [String], _ output: String, _ attributes: [[UInt8]] = []) {
            var wire = Wire()
            for input in inputs { wire.text(1, input) }
            wire.text(2, output)
            wire.text(4, op)
            for attribute in attributes { wire.data(5, attribute) }
            graph.data(1, wire.bytes)
        }
        let patch = [ints("kernel_shape", [4, 4]), ints("strides", [4, 4])]
        node("Conv", ["x", "patch"], "y1", patch)
        node("Conv", ["x", "overlap"], "y2", [ints("kernel_shape", [4, 4]), ints("strides", [2, 2])])
        node("Conv", ["x", "shared"], "y3", patch)
        node("Add", ["shared", "shared"], "y4")
        node("Conv", ["x", "narrow"], "y5", patch)
        node("Conv", ["x", "padded"], "y6", patch + [ints("pads", [1, 1, 1, 1])])
        for (number, (name, shape)) in shapes.enumerated() {
            let data: [Float] = (0..<shape.reduce(1, *)).map { Float($0 % 977) * 0.125 - Float(number) }
            values[name] = data
            graph.floatInitializer(name, shape: shape, data)
        }
        graph.namesAndValues(graph: "g", inputs: ["x"], outputs: ["y1", "y2", "y3", "y4", "y5", "y6"])
        return (graph.model(irVersion: 5, opset: 10), values)
    }

    /// Names of the initializers stored as transposed strips; each one's geometry checked, and its
    /// values read strip by strip as the packed GEMM reads them (W^T[p, j] = W[j, p]).
    static func transposedNames(_ model: ONNXModel, _ values: [String: [Float]],
                                sourceLocation: SourceLocation = #_sourceLocation) -> Set<String> {
        var names = Set<String>()
        for (name, tensor) in model.graph.initializers {
            guard let packed = tensor.storage.packed else { continue }
            names.insert(name)
            #expect(packed.transposed && tensor.floatTransposedPackedStrips() === packed, "\(name)", sourceLocation: sourceLocation)
            #expect(tensor.floatPackedStrips() == nil, "\(name)", sourceLocation: sourceLocation)
            #expect(!packed.hasContiguousCopy, "\(name)", sourceLocation: sourceLocation)
            let (k, n) = (packed.rows, packed.columns)
            #expect(n == tensor.shape[0] && k * n == tensor.count, "\(name)", sourceLocation: sourceLocation)
            let expected = values[name] ?? []
            let viaStrips = (0..<n).flatMap { j in (0..<k).map { p in packed.base[((j / 32) * k + p) * 32 + j % 32] } }
            #expect(viaStrips == expected, "\(name) read as strips", sourceLocation: sourceLocation)
        }
        return names
    }

    static func expectValues(_ model: ONNXModel, _ values: [String: [Float]], sourceLocation: SourceLocation = #_sourceLocation) {
        for (name, expected) in values {
            #expect((try? model.graph.initializers[name]?.toArray(Float.self)) == expected, "\(name)", sourceLocation: sourceLocation)
        }
    }

    @Test func onlyPatchEmbeddingWeightsOfWholeStripsAreStoredTransposed() throws {
        let (bytes, values) = Self.model()
        for packing in [true, false] {
            let model = try bytes.withUnsafeBytes { try ONNXLoader.load(bytes: $0, baseDirectory: nil, packMatrices: packing) }
            #expect(Self.transposedNames(model, values) == (packing ? ["patch"] : []), "packing \(packing)")
            Self.expectValues(model, values)
        }
        #expect(WeightPacking.fitsTransposed(dataType: .float32, shape: [768, 3, 32, 32], strides: [32, 32]))
        #expect(!WeightPacking.fitsTransposed(dataType: .float32, shape: [768, 3, 32, 32], strides: [16, 16]))
        #expect(!WeightPacking.fitsTransposed(dataType: .float32, shape: [768, 3, 1, 1], strides: [1, 1]))
        #expect(!WeightPacking.fitsTransposed(dataType: .float32, shape: [100, 3, 32, 32], strides: [32, 32]))
        #expect(!WeightPacking.fitsTransposed(dataType: .float64, shape: [768, 3, 32, 32], strides: [32, 32]))
    }

    /// From a file: stored transposed in the cache on the first load, mapped from it afterwards;
    /// every value as the model has it.
    @Test func transposedWeightsComeFromTheCacheAfterTheFirstLoad() throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let (bytes, values) = Self.model()
        let path = directory.appendingPathComponent("model.onnx").path
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        let settings = WeightCacheSettings(directory: directory.appendingPathComponent("cache").path, minimumBytes: 0)
        let first = try ONNXLoader.load(contentsOf: path, weightCache: settings, packMatrices: true)
        #expect(Self.transposedNames(first, values) == ["patch"])
        #expect(AlignedWeightCacheTests.owners(first, modelPath: path)["patch"] == "arena")
        let second = try ONNXLoader.load(contentsOf: path, weightCache: settings, packMatrices: true)
        #expect(Self.transposedNames(second, values) == ["patch"])
        #expect(AlignedWeightCacheTests.owners(second, modelPath: path)["patch"] == "cache")
        Self.expectValues(second, values)

        // A damaged file (cut, bytes flipped anywhere, an entry's row length or pitch field changed)
        // never changes a value: every strip is compared with the model's rows before use.
        let file = try #require(try FileManager.default.contentsOfDirectory(atPath: settings.directory ?? "")
            .first { $0.hasSuffix(".weights") }.map { URL(fileURLWithPath: (settings.directory ?? "") + "/" + $0) })
        let original = try Data(contentsOf: file)
        var damaged = AlignedWeightCacheTests.damagedCopies(of: original, seed: 1212, flips: 60)
        for entry in 0..<values.count {
            for (field, flip) in [(32, UInt8(0x40)), (40, 0x01), (40, 0x02)] {
                var copy = original
                copy[32 + entry * 48 + field] ^= flip  // header 32 bytes, entries 48
                damaged.append(copy)
            }
        }
        for (number, data) in damaged.enumerated() {
            try data.write(to: file)
            let model = try ONNXLoader.load(contentsOf: path, weightCache: settings, packMatrices: true)
            #expect(Self.transposedNames(model, values) == ["patch"], "case \(number)")
            Self.expectValues(model, values)
        }
    }

    /// A cache entry's pitch field 1 marks the transposed strips, accepted only with rows that are
    /// whole strips and row lengths of whole floats.
    @Test func cacheEntriesOfTransposedStripsAreChecked() throws {
        let valid = try #require(AlignedWeightCache.Placement(length: 32 * 48 * 4, rowBytes: 48 * 4, pitchBytes: 1,
                                                              available: 1 << 20))
        #expect(valid.isPackedTransposed && !valid.isPacked && valid.rows == 32 && valid.span == 32 * 48 * 4)
        #expect(valid.storedPitch == 1)
        #expect(AlignedWeightCache.Placement(length: 16 * 48 * 4, rowBytes: 48 * 4, pitchBytes: 1, available: 1 << 20) == nil)
        #expect(AlignedWeightCache.Placement(length: 32 * 6, rowBytes: 6, pitchBytes: 1, available: 1 << 20) == nil)
        #expect(AlignedWeightCache.Placement(length: 32 * 48 * 4, rowBytes: 48 * 4, pitchBytes: 1, available: 100) == nil)
        // A one-byte contiguous entry keeps meaning what it meant.
        let single = try #require(AlignedWeightCache.Placement(length: 1, rowBytes: 1, pitchBytes: 1, available: 64))
        #expect(!single.isPackedTransposed && !single.isRelaid)
    }
}
