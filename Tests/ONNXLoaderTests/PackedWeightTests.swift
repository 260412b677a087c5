import Foundation
import Testing
import Tensor
@testable import ONNXLoader

/// MatMul weights the loader stores as packed strips (`WeightPacking`): which ones, where, and
/// that they always hold exactly the model's values, from a fresh copy or from the weight cache.
/// Uses `PaddedWeightTests.model()`: "w" [16, 512] and "wwww" [8, 512] are read only by MatMul as
/// B (packed); "ww" is also read by an Add and "www" has 100 columns (neither packed).
@Suite struct PackedWeightTests {
    /// Names of the initializers stored packed, checking each one's geometry on the way.
    static func packedNames(_ model: ONNXModel, sourceLocation: SourceLocation = #_sourceLocation) -> Set<String> {
        var names = Set<String>()
        for (name, tensor) in model.graph.initializers {
            guard let packed = tensor.storage.packed else { continue }
            names.insert(name)
            #expect(tensor.floatPackedStrips() === packed, "\(name)", sourceLocation: sourceLocation)
            #expect(tensor.storage.padded == nil, "\(name)", sourceLocation: sourceLocation)
            #expect(!packed.hasContiguousCopy, "\(name)", sourceLocation: sourceLocation)
        }
        return names
    }

    /// Values as the packed GEMM reads them (strip by strip) and as every other reader does (contiguous).
    static func expectValues(_ model: ONNXModel, _ values: [String: [Float]], sourceLocation: SourceLocation = #_sourceLocation) {
        for (name, expected) in values {
            let tensor = model.graph.initializers[name]
            if let tensor, let packed = tensor.floatPackedStrips() {
                let k = packed.rows, n = packed.columns
                let viaStrips = (0..<k).flatMap { p in (0..<n).map { packed.base[((($0 / 32) * k) + p) * 32 + $0 % 32] } }
                #expect(viaStrips == expected, "\(name) read as strips", sourceLocation: sourceLocation)
            }
            #expect((try? tensor?.toArray(Float.self)) == expected, "\(name)", sourceLocation: sourceLocation)
        }
    }

    @Test func onlyMatMulOperandsOfWholeStripsArePacked() throws {
        let (bytes, values) = PaddedWeightTests.model()
        for (packing, padding) in [(true, true), (true, false), (false, false)] {
            let model = try bytes.withUnsafeBytes {
                try ONNXLoader.load(bytes: $0, baseDirectory: nil, padMatrixRows: padding, packMatrices: packing)
            }
            #expect(Self.packedNames(model) == (packing ? ["w", "wwww"] : []), "packing \(packing) padding \(padding)")
            Self.expectValues(model, values)
        }
        #expect(WeightPacking.fits(dataType: .float32, shape: [768, 2304]))
        #expect(WeightPacking.fits(dataType: .float32, shape: [1, 32]))
        #expect(!WeightPacking.fits(dataType: .float32, shape: [768, 100]))
        #expect(!WeightPacking.fits(dataType: .float32, shape: [2, 768, 64]))
        #expect(!WeightPacking.fits(dataType: .float64, shape: [64, 64]))
    }

    /// From a file: with a cache the weights are packed once, then mapped packed from the cache on
    /// every later load (nothing packed per load); packing off gets a file of its own.
    @Test func packedWeightsComeFromTheCacheAfterTheFirstLoad() throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let (_, values, path, settings) = try PaddedWeightTests.modelFile(in: directory)

        let first = try ONNXLoader.load(contentsOf: path, weightCache: settings, packMatrices: true)
        #expect(Self.packedNames(first) == ["w", "wwww"])
        #expect(AlignedWeightCacheTests.owners(first, modelPath: path)["w"] == "arena")
        Self.expectValues(first, values)

        let second = try ONNXLoader.load(contentsOf: path, weightCache: settings, packMatrices: true)
        #expect(Self.packedNames(second) == ["w", "wwww"])
        #expect(AlignedWeightCacheTests.owners(second, modelPath: path)["w"] == "cache")
        #expect(AlignedWeightCacheTests.owners(second, modelPath: path)["wwww"] == "cache")
        Self.expectValues(second, values)

        _ = try ONNXLoader.load(contentsOf: path, weightCache: settings, packMatrices: false)
        let unpacked = try ONNXLoader.load(contentsOf: path, weightCache: settings, packMatrices: false)
        #expect(Self.packedNames(unpacked).isEmpty)
        Self.expectValues(unpacked, values)
        let files = try FileManager.default.contentsOfDirectory(atPath: settings.directory ?? "").filter { $0.hasSuffix(".weights") }
        #expect(files.count == 2)
    }

    /// A cache file damaged anywhere (header, entry geometry, packed data) never changes a value:
    /// the loader compares every strip with the model and copies when one differs. (A packed
    /// entry's pitch field is 0, so a flipped bit there claims padded rows instead.)
    @Test func damagedPackedCacheFilesAreNeverTrusted() throws {
        try PaddedWeightTests.expectDamagedCacheFilesIgnored(seed: 2027) { path, settings in
            try ONNXLoader.load(contentsOf: path, weightCache: settings, packMatrices: true)
        } check: { model, values in
            Self.expectValues(model, values)
        }
    }
}
