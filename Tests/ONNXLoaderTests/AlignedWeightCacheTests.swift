import Foundation
import Testing
import Tensor
@testable import ONNXLoader

/// The aligned weight cache may only ever save time: whatever is in its directory, a model loads
/// with exactly the bytes of its own raw_data.
@Suite struct AlignedWeightCacheTests {
    typealias Wire = WeightIndexTests

    /// A model with four float tensors whose names (1 to 4 characters) put their raw_data at every
    /// offset modulo 4, so some are aligned in the file and some are not.
    static func writeModel(in directory: URL, seed: Float = 0) throws -> (path: String, values: [String: [Float]]) {
        var values: [String: [Float]] = [:]
        var tensors: [[UInt8]] = []
        for nameLength in 1...4 {
            let name = String(repeating: "t", count: nameLength)
            let data: [Float] = (0..<(300 + nameLength)).map { Float($0) * 0.25 + seed }
            values[name] = data
            tensors.append(Wire.tensor(name, count: data.count, rawData: [data]))
        }
        let bytes = Wire.model(initializers: tensors, outputs: values.keys.sorted())
        let path = directory.appendingPathComponent("model.onnx").path
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        return (path, values)
    }

    /// Initializer names in file order (as the direct protobuf-c parse lists them).
    static func initializerNames(_ bytes: [UInt8]) -> [String] {
        let model = bytes.withUnsafeBytes { try? ONNXLoader.load(bytes: $0, baseDirectory: nil, useWeightIndex: false) }
        return model?.graph.initializerNames ?? []
    }

    static func owners(_ model: ONNXModel, modelPath: String) -> [String: String] {
        var result: [String: String] = [:]
        for name in model.graph.initializerNames {
            guard let tensor = model.graph.initializers[name] else { continue }
            switch keeper(tensor) {
            case let file as MappedFile: result[name] = file.path == modelPath ? "model" : "cache"
            case is WeightArena: result[name] = "arena"
            default: result[name] = "other"
            }
        }
        return result
    }

    static func expectValues(_ model: ONNXModel, _ values: [String: [Float]], sourceLocation: SourceLocation = #_sourceLocation) {
        for (name, expected) in values {
            let actual = try? model.graph.initializers[name]?.toArray(Float.self)
            #expect(actual == expected, "\(name)", sourceLocation: sourceLocation)
        }
    }

    /// `original` emptied, truncated at the header, halfway and by one byte, and with one random
    /// byte changed in each of `flips` more copies.
    static func damagedCopies(of original: Data, seed: UInt64, flips: Int = 40) -> [Data] {
        var generator = SplitMix64(seed: seed)
        var damaged: [Data] = [Data(), original.prefix(20), original.prefix(original.count / 2), original.prefix(original.count - 1)]
        for _ in 0..<flips where !original.isEmpty {
            var copy = original
            let position = Int(generator.next() % UInt64(copy.count))
            copy[position] ^= UInt8(1 + generator.next() % 255)
            damaged.append(copy)
        }
        return damaged
    }

    func cacheFiles(_ directory: URL) -> [URL] {
        ((try? FileManager.default.contentsOfDirectory(at: directory, includingPropertiesForKeys: nil)) ?? [])
            .filter { $0.pathExtension == "weights" }
    }

    @Test func secondLoadMapsTheMisalignedWeightsFromTheCache() throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let cacheDirectory = directory.appendingPathComponent("cache")
        let settings = WeightCacheSettings(directory: cacheDirectory.path, minimumBytes: 0)
        let (path, values) = try Self.writeModel(in: directory)

        // Which blobs are aligned in the file decides where each tensor may live.
        let bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))
        let index = try #require(bytes.withUnsafeBytes { WeightIndex.build($0) })
        var aligned: [String: Bool] = [:]
        for (position, name) in Self.initializerNames(bytes).enumerated() {
            aligned[name] = (index.rawData[position]?.lowerBound ?? 1) % 4 == 0
        }
        #expect(aligned.values.contains(false))

        let first = try ONNXLoader.load(contentsOf: path, useWeightIndex: true, weightCache: settings)
        Self.expectValues(first, values)
        for (name, owner) in Self.owners(first, modelPath: path) {
            #expect(owner == (aligned[name] == true ? "model" : "arena"), "\(name)")
        }
        #expect(cacheFiles(cacheDirectory).count == 1)

        let second = try ONNXLoader.load(contentsOf: path, useWeightIndex: true, weightCache: settings)
        Self.expectValues(second, values)
        for (name, owner) in Self.owners(second, modelPath: path) {
            #expect(owner == (aligned[name] == true ? "model" : "cache"), "\(name)")
        }
        for name in second.graph.initializerNames {
            let tensor = try initializer(second, name)
            #expect(Int(bitPattern: tensor.storage.pointer) % 4 == 0)
        }
    }

    /// The writer flushes a new cache file and drops its pages from the page cache, so the next load
    /// reads it back in large folios (see `AlignedWeightCache.write`). Checked with mincore on a
    /// directory inside the package's build folder, which is on disk (a tmpfs keeps every page).
    @Test func aWrittenCacheFileLeavesThePageCache() throws {
        let buildFolder = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("../../.build/cache-test-\(UUID().uuidString)").standardized
        try FileManager.default.createDirectory(at: buildFolder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: buildFolder) }
        let settings = WeightCacheSettings(directory: buildFolder.appendingPathComponent("cache").path, minimumBytes: 0)
        let (path, values) = try Self.writeModel(in: buildFolder)
        Self.expectValues(try ONNXLoader.load(contentsOf: path, useWeightIndex: true, weightCache: settings), values)
        let cache = try #require(cacheFiles(buildFolder.appendingPathComponent("cache")).first)
        let descriptor = open(cache.path, O_RDONLY)
        #expect(descriptor >= 0)
        defer { close(descriptor) }
        var status = stat()
        #expect(fstat(descriptor, &status) == 0 && status.st_size > 0)
        let size = Int(status.st_size)
        let mapping = try #require(mmap(nil, size, PROT_READ, MAP_SHARED, descriptor, 0))
        #expect(mapping != UnsafeMutableRawPointer(bitPattern: -1))
        defer { munmap(mapping, size) }
        let pageSize = Int(sysconf(Int32(_SC_PAGESIZE)))
        var resident = [UInt8](repeating: 0, count: (size + pageSize - 1) / pageSize)
        #expect(mincore(mapping, size, &resident) == 0)
        #expect(resident.filter { $0 & 1 != 0 }.isEmpty, "\(resident.count) pages, resident: \(resident)")
    }

    /// A cache file whose bytes differ from the model (corrupted, or another model with the same
    /// structure) is not used for the tensors that differ, and is rewritten.
    @Test func differingCacheBytesAreNeverUsed() throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let cacheDirectory = directory.appendingPathComponent("cache")
        let settings = WeightCacheSettings(directory: cacheDirectory.path, minimumBytes: 0)
        _ = try Self.writeModel(in: directory, seed: 0)
        _ = try ONNXLoader.load(contentsOf: directory.appendingPathComponent("model.onnx").path, weightCache: settings)
        // Same structure, other weights: the cache key matches, the bytes do not.
        let (path, values) = try Self.writeModel(in: directory, seed: 1)
        let model = try ONNXLoader.load(contentsOf: path, useWeightIndex: true, weightCache: settings)
        Self.expectValues(model, values)
        #expect(!Self.owners(model, modelPath: path).values.contains("cache"))
        // Rewritten with the new bytes: the next load uses it.
        let again = try ONNXLoader.load(contentsOf: path, useWeightIndex: true, weightCache: settings)
        Self.expectValues(again, values)
        #expect(Self.owners(again, modelPath: path).values.contains("cache"))
    }

    /// Truncated, emptied or overwritten cache files are ignored; the model loads correctly.
    @Test func brokenCacheFilesAreIgnored() throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let cacheDirectory = directory.appendingPathComponent("cache")
        let settings = WeightCacheSettings(directory: cacheDirectory.path, minimumBytes: 0)
        let (path, values) = try Self.writeModel(in: directory)
        _ = try ONNXLoader.load(contentsOf: path, weightCache: settings)
        let file = try #require(cacheFiles(cacheDirectory).first)
        let damaged = Self.damagedCopies(of: try Data(contentsOf: file), seed: 99)
        for (number, data) in damaged.enumerated() {
            try data.write(to: file)
            let model = try ONNXLoader.load(contentsOf: path, useWeightIndex: true, weightCache: settings)
            Self.expectValues(model, values)
            #expect(Self.owners(model, modelPath: path).count == values.count, "case \(number)")
        }
    }

    /// Writing a cache file removes the files an older format version wrote (they can never be
    /// read again) and stamps left without their cache file, and nothing else: not current files,
    /// not foreign files, not other names.
    @Test func writingRemovesOutdatedCacheFilesOnly() throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let cacheDirectory = directory.appendingPathComponent("cache")
        try FileManager.default.createDirectory(at: cacheDirectory, withIntermediateDirectories: true)
        func header(version: UInt32) -> Data {
            var bytes = AlignedWeightCache.magic
            withUnsafeBytes(of: version.littleEndian) { bytes += $0 }
            return Data(bytes + [UInt8](repeating: 7, count: 100))
        }
        let files: [(name: String, data: Data, kept: Bool)] = [
            ("00000000000000a1.weights", header(version: 1), false),
            ("00000000000000a2.weights", header(version: AlignedWeightCache.version), true),
            ("00000000000000a3.weights", header(version: AlignedWeightCache.version + 1), true),
            ("00000000000000a4.weights", Data("not a cache file at all".utf8), true),
            ("00000000000000a5.weights", Data(AlignedWeightCache.magic.prefix(5)), true),
            ("notes.txt", header(version: 1), true),
            // Stamps go with their cache file: the outdated one's, and one whose file is missing.
            ("00000000000000a1.weights.stamp", Data(repeating: 1, count: 120), false),
            ("00000000000000a2.weights.stamp", Data(repeating: 2, count: 120), true),
            ("00000000000000ff.weights.stamp", Data(repeating: 3, count: 120), false),
            ("notes.stamp", Data(repeating: 4, count: 120), true),
        ]
        for file in files { try file.data.write(to: cacheDirectory.appendingPathComponent(file.name)) }
        let (path, values) = try Self.writeModel(in: directory)
        Self.expectValues(try ONNXLoader.load(contentsOf: path, weightCache: WeightCacheSettings(directory: cacheDirectory.path, minimumBytes: 0)),
                          values)
        for file in files {
            let exists = FileManager.default.fileExists(atPath: cacheDirectory.appendingPathComponent(file.name).path)
            #expect(exists == file.kept, "\(file.name)")
        }
        #expect(cacheFiles(cacheDirectory).count == 5, "four kept plus the new one")
    }

    /// Below the size threshold, or switched off, nothing is written.
    @Test func smallModelsAndDisabledCacheWriteNothing() throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let cacheDirectory = directory.appendingPathComponent("cache")
        let (path, values) = try Self.writeModel(in: directory)
        Self.expectValues(try ONNXLoader.load(contentsOf: path, weightCache: WeightCacheSettings(directory: cacheDirectory.path)), values)
        Self.expectValues(try ONNXLoader.load(contentsOf: path, weightCache: .disabled), values)
        #expect(cacheFiles(cacheDirectory).isEmpty)
    }

    @Test func settingsFollowTheEnvironment() {
        func settings(_ environment: [String: String]) -> WeightCacheSettings {
            WeightCacheSettings.from { environment[$0] }
        }
        #expect(settings(["XDG_CACHE_HOME": "/x", "HOME": "/h"]).directory == "/x/action-clip/weights")
        #expect(settings(["HOME": "/h"]).directory == "/h/.cache/action-clip/weights")
        #expect(settings(["XDG_CACHE_HOME": "relative", "HOME": "/h"]).directory == "/h/.cache/action-clip/weights")
        #expect(settings(["ACTION_CLIP_WEIGHT_CACHE": "0", "HOME": "/h"]) == .disabled)
        #expect(settings(["ACTION_CLIP_WEIGHT_CACHE": "/else", "HOME": "/h"]).directory == "/else")
        #expect(settings([:]) == .disabled)
    }
}
