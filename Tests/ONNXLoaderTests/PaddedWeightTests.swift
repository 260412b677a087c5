import Foundation
import Testing
import Tensor
@testable import ONNXLoader

/// MatMul weights the loader stores with padded rows (`MatrixRowPadding`): which ones, where, and
/// that they always hold exactly the model's values, from a fresh copy or from the weight cache.
@Suite struct PaddedWeightTests {
    typealias Wire = WeightIndexTests.Wire

    /// Four weights whose names (1 to 4 characters) put their raw_data at every offset modulo 4:
    /// "w" [16, 512] read only by a MatMul as B (padded); "ww" [16, 512] also read by an Add (not
    /// padded); "www" [16, 100] (rows of 400 bytes: not padded); "wwww" [8, 512] (too few rows).
    static func model(seed: Float = 0) -> (bytes: [UInt8], values: [String: [Float]]) {
        let shapes: [(String, [Int])] = [("w", [16, 512]), ("ww", [16, 512]), ("www", [16, 100]), ("wwww", [8, 512])]
        var values: [String: [Float]] = [:]
        var graph = Wire()
        func node(_ op: String, _ inputs: [String], _ output: String) {
            var wire = Wire()
            for input in inputs { wire.text(1, input) }
            wire.text(2, output)
            wire.text(4, op)
            graph.data(1, wire.bytes)
        }
        node("MatMul", ["x16", "w"], "y1")
        node("MatMul", ["x16", "ww"], "y2")
        node("Add", ["ww", "ww"], "y3")
        node("MatMul", ["x16", "www"], "y4")
        node("MatMul", ["x8", "wwww"], "y5")
        for (number, (name, shape)) in shapes.enumerated() {
            let data: [Float] = (0..<(shape[0] * shape[1])).map { Float($0 % 977) * 0.125 + Float(number) + seed }
            values[name] = data
            graph.floatInitializer(name, shape: shape, data)
        }
        graph.namesAndValues(graph: "g", inputs: ["x16", "x8"], outputs: ["y1", "y2", "y3", "y4", "y5"])
        return (graph.model(irVersion: 8, opset: 13), values)
    }

    /// `model()` written to `directory`/model.onnx, with cache settings for `directory`/cache.
    static func modelFile(in directory: URL) throws -> (bytes: [UInt8], values: [String: [Float]], path: String,
                                                        settings: WeightCacheSettings) {
        let (bytes, values) = model()
        let path = directory.appendingPathComponent("model.onnx").path
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        return (bytes, values, path, WeightCacheSettings(directory: directory.appendingPathComponent("cache").path, minimumBytes: 0))
    }

    /// Names of the initializers stored padded, checking each padded one's geometry on the way.
    static func paddedNames(_ model: ONNXModel, sourceLocation: SourceLocation = #_sourceLocation) -> Set<String> {
        var names = Set<String>()
        for (name, tensor) in model.graph.initializers {
            guard let padded = tensor.storage.padded else { continue }
            names.insert(name)
            #expect(padded.rowLength == tensor.shape[1] && padded.rowPitch == tensor.shape[1] + MatrixRowPadding.extraElements,
                    "\(name)", sourceLocation: sourceLocation)
            #expect(!padded.hasContiguousCopy, "\(name)", sourceLocation: sourceLocation)
        }
        return names
    }

    static func expectValues(_ model: ONNXModel, _ values: [String: [Float]], sourceLocation: SourceLocation = #_sourceLocation) {
        for (name, expected) in values {
            let tensor = model.graph.initializers[name]
            // Through the pitch, as the GEMM kernels read it ...
            if let tensor, let rows = tensor.floatMatrixRows() {
                let n = tensor.shape[1]
                let viaPitch = (0..<tensor.shape[0]).flatMap { row in (0..<n).map { rows.base[row * rows.rowPitch + $0] } }
                #expect(viaPitch == expected, "\(name) read at its pitch", sourceLocation: sourceLocation)
            }
            // ... and contiguous, as every other reader does.
            #expect((try? tensor?.toArray(Float.self)) == expected, "\(name)", sourceLocation: sourceLocation)
        }
    }

    @Test func onlyMatMulOperandsWithAliasingRowsArePadded() throws {
        let (bytes, values) = Self.model()
        for padding in [true, false] {
            let model = try bytes.withUnsafeBytes { try ONNXLoader.load(bytes: $0, baseDirectory: nil, padMatrixRows: padding, packMatrices: false) }
            #expect(Self.paddedNames(model) == (padding ? ["w"] : []))
            Self.expectValues(model, values)
        }
    }

    @Test func rowPitchRule() {
        #expect(MatrixRowPadding.rowPitch(dataType: .float32, shape: [512, 2048]) == 2064)
        #expect(MatrixRowPadding.rowPitch(dataType: .float32, shape: [768, 3072]) == 3088)
        #expect(MatrixRowPadding.rowPitch(dataType: .float32, shape: [3072, 768]) == nil)   // 3 KB rows
        #expect(MatrixRowPadding.rowPitch(dataType: .float32, shape: [15, 512]) == nil)
        #expect(MatrixRowPadding.rowPitch(dataType: .float32, shape: [1, 16, 512]) == nil)
        #expect(MatrixRowPadding.rowPitch(dataType: .float64, shape: [64, 256]) == nil)
    }

    /// From a file: with a cache the padded weight is copied padded once, then mapped padded from
    /// the cache on every later load; without one it is padded only where it had to be copied.
    @Test func paddedWeightsComeFromTheCacheAfterTheFirstLoad() throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let (bytes, values, path, settings) = try Self.modelFile(in: directory)

        let first = try ONNXLoader.load(contentsOf: path, weightCache: settings, padMatrixRows: true, packMatrices: false)
        #expect(Self.paddedNames(first) == ["w"])
        #expect(AlignedWeightCacheTests.owners(first, modelPath: path)["w"] == "arena")
        Self.expectValues(first, values)

        let second = try ONNXLoader.load(contentsOf: path, weightCache: settings, padMatrixRows: true, packMatrices: false)
        #expect(Self.paddedNames(second) == ["w"])
        #expect(AlignedWeightCacheTests.owners(second, modelPath: path)["w"] == "cache")
        Self.expectValues(second, values)

        // Without padding the same directory gets a second file (the setting is part of the key),
        // and nothing comes out padded.
        _ = try ONNXLoader.load(contentsOf: path, weightCache: settings, padMatrixRows: false, packMatrices: false)
        let unpadded = try ONNXLoader.load(contentsOf: path, weightCache: settings, padMatrixRows: false, packMatrices: false)
        #expect(Self.paddedNames(unpadded).isEmpty)
        Self.expectValues(unpadded, values)
        let files = try FileManager.default.contentsOfDirectory(atPath: settings.directory ?? "").filter { $0.hasSuffix(".weights") }
        #expect(files.count == 2)

        // No cache: "w" is padded exactly when its raw_data is misaligned in the file (copied anyway).
        let index = try #require(bytes.withUnsafeBytes { WeightIndex.build($0) })
        let position = try #require(AlignedWeightCacheTests.initializerNames(bytes).firstIndex(of: "w"))
        let aligned = (index.rawData[position]?.lowerBound ?? 1) % 4 == 0
        let uncached = try ONNXLoader.load(contentsOf: path, weightCache: .disabled, padMatrixRows: true, packMatrices: false)
        #expect(Self.paddedNames(uncached) == (aligned ? [] : ["w"]))
        Self.expectValues(uncached, values)
    }

    /// A cache file damaged anywhere (header, entry geometry, padded rows, gaps) never changes a
    /// value: the loader checks every row against the model and copies when one differs.
    @Test func damagedPaddedCacheFilesAreNeverTrusted() throws {
        try Self.expectDamagedCacheFilesIgnored(seed: 2026) { path, settings in
            try ONNXLoader.load(contentsOf: path, weightCache: settings, padMatrixRows: true, packMatrices: false)
        } check: { model, values in
            Self.expectValues(model, values)
        }
    }

    /// Loads `model()` from a file once with `load` (writing its cache file), then overwrites the
    /// cache file with damaged copies (`AlignedWeightCacheTests.damagedCopies`, plus one bit of
    /// each entry's row length and pitch fields flipped) and loads again after each, calling
    /// `check` on every model: no damage may change a value.
    static func expectDamagedCacheFilesIgnored(seed: UInt64, load: (String, WeightCacheSettings) throws -> ONNXModel,
                                               check: (ONNXModel, [String: [Float]]) -> Void) throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let (_, values, path, settings) = try modelFile(in: directory)
        _ = try load(path, settings)
        let file = try #require(try FileManager.default.contentsOfDirectory(atPath: settings.directory ?? "")
            .first { $0.hasSuffix(".weights") }.map { URL(fileURLWithPath: (settings.directory ?? "") + "/" + $0) })
        let original = try Data(contentsOf: file)
        var damaged = AlignedWeightCacheTests.damagedCopies(of: original, seed: seed)
        // Each entry's row length and pitch fields (header 32 bytes, entries 48).
        for entry in 0..<4 {
            for field in [32, 40] {
                var copy = original
                copy[32 + entry * 48 + field] ^= 0x40
                damaged.append(copy)
            }
        }
        for (number, data) in damaged.enumerated() {
            try data.write(to: file)
            let model = try load(path, settings)
            check(model, values)
            #expect(model.graph.initializers.count == values.count, "case \(number)")
        }
    }
}
