import Foundation
import Testing
import Tensor
@testable import ONNXLoader

/// A stamp may only ever let a load skip comparing the weight cache with the model when neither
/// file has been written since a load compared them and found them equal.
@Suite struct WeightCacheStampTests {
    typealias Cache = AlignedWeightCacheTests

    /// Settings whose stamps need no settling time, so a test can stamp files it just wrote.
    static func settings(_ directory: URL, settle: UInt64 = 0, trustsStamps: Bool = true) -> WeightCacheSettings {
        var settings = WeightCacheSettings(directory: directory.appendingPathComponent("cache").path, minimumBytes: 0,
                                           trustsStamps: trustsStamps)
        settings.settleSeconds = settle
        return settings
    }

    static func cachePath(_ directory: URL) throws -> String {
        let cacheDirectory = directory.appendingPathComponent("cache")
        let names = try FileManager.default.contentsOfDirectory(atPath: cacheDirectory.path).filter { $0.hasSuffix(".weights") }
        try #require(names.count == 1)
        return cacheDirectory.appendingPathComponent(names[0]).path
    }

    /// Whether the cache file beside the model would be trusted by a load now.
    static func trusted(modelPath: String, cachePath: String) throws -> Bool {
        let model = try MappedFile.map(modelPath, populate: false)
        let bytes = try #require(model.base.map { UnsafeRawBufferPointer(start: $0, count: model.size) })
        let index = try #require(WeightIndex.build(bytes))
        let key = try #require(UInt64(URL(fileURLWithPath: cachePath).deletingPathExtension().lastPathComponent, radix: 16))
        let cache = try #require(AlignedWeightCache.load(path: cachePath, key: key, ranges: index.rawData,
                                                         modelSize: model.size, model: model))
        return cache.trusted
    }

    static func stampExists(_ cachePath: String) -> Bool {
        FileManager.default.fileExists(atPath: WeightCacheStamp.path(cachePath: cachePath))
    }

    @Test func aStampVouchesOnlyWhileNeitherFileChanges() throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let settings = Self.settings(directory)
        let (path, values) = try Cache.writeModel(in: directory)
        // First load writes the cache, second compares it and writes the stamp, third trusts it.
        Cache.expectValues(try ONNXLoader.load(contentsOf: path, weightCache: settings), values)
        let cachePath = try Self.cachePath(directory)
        #expect(!Self.stampExists(cachePath))
        Cache.expectValues(try ONNXLoader.load(contentsOf: path, weightCache: settings), values)
        #expect(Self.stampExists(cachePath))
        #expect(try Self.trusted(modelPath: path, cachePath: cachePath))
        let trustedLoad = try ONNXLoader.load(contentsOf: path, weightCache: settings)
        Cache.expectValues(trustedLoad, values)
        #expect(Cache.owners(trustedLoad, modelPath: path).values.contains("cache"))

        // The model rewritten with other weights of the same structure (same cache key): the stamp
        // no longer matches, the bytes are compared, and the new weights are what loads. (The pause
        // stands in for the settling time these settings skip: a write must fall in a later tick
        // of the file system's clock than the stamped times.)
        usleep(50_000)
        let (_, newValues) = try Cache.writeModel(in: directory, seed: 1)
        #expect(try !Self.trusted(modelPath: path, cachePath: cachePath))
        Cache.expectValues(try ONNXLoader.load(contentsOf: path, weightCache: settings), newValues)
        Cache.expectValues(try ONNXLoader.load(contentsOf: path, weightCache: settings), newValues)

        // The cache file written over in place with one byte changed: compared again, not trusted.
        let newCachePath = try Self.cachePath(directory)
        Cache.expectValues(try ONNXLoader.load(contentsOf: path, weightCache: settings), newValues)
        #expect(try Self.trusted(modelPath: path, cachePath: newCachePath))
        usleep(50_000)
        var cacheBytes = try Data(contentsOf: URL(fileURLWithPath: newCachePath))
        cacheBytes[cacheBytes.count - 5] ^= 0x40
        let handle = try #require(FileHandle(forWritingAtPath: newCachePath))
        try handle.write(contentsOf: cacheBytes)
        try handle.close()
        #expect(try !Self.trusted(modelPath: path, cachePath: newCachePath))
        Cache.expectValues(try ONNXLoader.load(contentsOf: path, weightCache: settings), newValues)
    }

    /// Files whose times are not yet `settleSeconds` old get no stamp: a write in the same clock
    /// tick as the comparison could leave their identity unchanged.
    @Test func unsettledFilesGetNoStamp() throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let settings = Self.settings(directory, settle: 3600)
        let (path, values) = try Cache.writeModel(in: directory)
        for _ in 0..<3 { Cache.expectValues(try ONNXLoader.load(contentsOf: path, weightCache: settings), values) }
        #expect(!Self.stampExists(try Self.cachePath(directory)))
        #expect(FileIdentity(fields: [1, 2, 3, 100, 0, 100, 0]).isSettled(now: 102, seconds: 2))
        #expect(!FileIdentity(fields: [1, 2, 3, 100, 0, 101, 0]).isSettled(now: 102, seconds: 2))
        #expect(!FileIdentity(fields: [1, 2, 3, 103, 0, 100, 0]).isSettled(now: 102, seconds: 2))
    }

    /// `ACTION_CLIP_WEIGHT_CACHE=verify` neither writes nor follows stamps.
    @Test func verifyingSettingsIgnoreStamps() throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let (path, values) = try Cache.writeModel(in: directory)
        let verifying = Self.settings(directory, trustsStamps: false)
        for _ in 0..<2 { Cache.expectValues(try ONNXLoader.load(contentsOf: path, weightCache: verifying), values) }
        let cachePath = try Self.cachePath(directory)
        #expect(!Self.stampExists(cachePath))
        _ = try ONNXLoader.load(contentsOf: path, weightCache: Self.settings(directory))
        #expect(Self.stampExists(cachePath))
        Cache.expectValues(try ONNXLoader.load(contentsOf: path, weightCache: verifying), values)
        #expect(WeightCacheSettings.from { ["ACTION_CLIP_WEIGHT_CACHE": "verify", "HOME": "/h"][$0] }
            == WeightCacheSettings(directory: "/h/.cache/action-clip/weights", trustsStamps: false))
    }

    /// Damaged, truncated, lengthened or foreign stamps vouch for nothing.
    @Test func brokenStampsAreIgnored() throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let settings = Self.settings(directory)
        let (path, values) = try Cache.writeModel(in: directory)
        for _ in 0..<2 { _ = try ONNXLoader.load(contentsOf: path, weightCache: settings) }
        let cachePath = try Self.cachePath(directory)
        let stampPath = WeightCacheStamp.path(cachePath: cachePath)
        let original = try Data(contentsOf: URL(fileURLWithPath: stampPath))
        #expect(original.count == WeightCacheStamp.size)
        #expect(try Self.trusted(modelPath: path, cachePath: cachePath))
        var broken = Cache.damagedCopies(of: original, seed: 7, flips: 30)
        broken.append(original + Data([0]))
        for (number, data) in broken.enumerated() {
            try data.write(to: URL(fileURLWithPath: stampPath))
            #expect(try !Self.trusted(modelPath: path, cachePath: cachePath), "case \(number)")
        }
        // A stamp for another model file (its identity) does not vouch for this one.
        let other = directory.appendingPathComponent("other.onnx").path
        try FileManager.default.copyItem(atPath: path, toPath: other)
        try original.write(to: URL(fileURLWithPath: stampPath))
        #expect(try !Self.trusted(modelPath: other, cachePath: cachePath))
        #expect(try Self.trusted(modelPath: path, cachePath: cachePath))
        Cache.expectValues(try ONNXLoader.load(contentsOf: other, weightCache: settings), values)
    }
}
