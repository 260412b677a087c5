import Foundation
import Testing
import Tensor
@testable import Models

/// The on-disk text-feature cache: hits, misses, and files that must not be trusted.
@Suite struct TextFeatureCacheTests {
    final class Warnings: @unchecked Sendable {
        private let lock = NSLock()
        private var stored: [String] = []
        func append(_ message: String) { lock.lock(); stored.append(message); lock.unlock() }
        var all: [String] { lock.lock(); defer { lock.unlock() }; return stored }
    }

    static let modelA = String(repeating: "ab", count: 32)
    static let modelB = String(repeating: "cd", count: 32)

    static func scratchDirectory() -> String {
        FileManager.default.temporaryDirectory.appendingPathComponent("text-cache-test-\(UUID().uuidString)").path
    }

    static func tokens(_ seed: UInt64, rows: Int = 4) throws -> Tensor {
        var random = SplitMix64(seed: seed)
        var ids: [Int64] = []
        for _ in 0..<rows {
            var row = [Int64](repeating: 0, count: 77)
            row[0] = 49406
            for position in 1...6 { row[position] = Int64(random.next() % 49000) + 1 }
            row[7] = 49407
            ids += row
        }
        return try Tensor(ids, shape: [rows, 77])
    }

    static func features(rows: Int = 4, width: Int = 24, seed: UInt64 = 9) throws -> Tensor {
        var random = SplitMix64(seed: seed)
        return try Tensor(random.floats(rows * width), shape: [rows, width])
    }

    static func cache(_ directory: String, model: String = modelA, warnings: Warnings) throws -> TextFeatureCache {
        try TextFeatureCache(directory: directory, modelSHA256: model, warn: { warnings.append($0) })
    }

    @Test func storeThenHit() throws {
        let directory = Self.scratchDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let warnings = Warnings()
        let cache = try Self.cache(directory, warnings: warnings)
        let tokens = try Self.tokens(1)
        #expect(cache.lookup(tokens) == nil)
        var computed = 0
        let first = try cache.features(for: tokens) { _ in computed += 1; return try Self.features() }
        let second = try cache.features(for: tokens) { _ in computed += 1; return try Self.features(seed: 99) }
        #expect(!first.hit && second.hit)
        #expect(computed == 1)
        #expect(try second.features.toArray(Float.self) == (try Self.features().toArray(Float.self)))
        #expect(second.features.shape == [4, 24])
        #expect(warnings.all.isEmpty)
        // Atomic writes leave no temporary file behind.
        let names = try FileManager.default.contentsOfDirectory(atPath: directory)
        #expect(names.count == 1 && names[0].hasPrefix("text-abababababababab-") && names[0].hasSuffix(".features"))
    }

    @Test func modelOrTokenChangeIsAMiss() throws {
        let directory = Self.scratchDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let warnings = Warnings()
        let cache = try Self.cache(directory, warnings: warnings)
        let tokens = try Self.tokens(1)
        cache.store(try Self.features(), for: tokens)
        #expect(cache.lookup(tokens) != nil)
        #expect(try Self.cache(directory, model: Self.modelB, warnings: warnings).lookup(tokens) == nil)
        #expect(cache.lookup(try Self.tokens(2)) == nil)
        // One changed token id in one row.
        var ids = try tokens.toArray(Int64.self)
        ids[2 * 77 + 3] += 1
        #expect(cache.lookup(try Tensor(ids, shape: [4, 77])) == nil)
        #expect(warnings.all.isEmpty)
    }

    /// Copies the valid file for `tokens` over `path`, after `damage` edits its bytes.
    static func plant(_ damage: (inout [UInt8]) -> Void, from source: String, to path: String) throws {
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: source)))
        damage(&bytes)
        try Data(bytes).write(to: URL(fileURLWithPath: path))
    }

    @Test func untrustworthyFilesAreIgnoredAndRewritten() throws {
        let directory = Self.scratchDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let warnings = Warnings()
        let cache = try Self.cache(directory, warnings: warnings)
        let tokens = try Self.tokens(1)
        cache.store(try Self.features(), for: tokens)
        let path = cache.path(for: tokens)
        let good = try Data(contentsOf: URL(fileURLWithPath: path))
        let cases: [(String, (inout [UInt8]) -> Void)] = [
            ("checksum", { $0[$0.count - 100] ^= 0x10 }),        // a flipped feature bit
            ("checksum", { $0[60] ^= 0x01 }),                   // a flipped token bit
            ("truncated", { $0.removeLast($0.count - 40) }),
            ("bytes, expected", { $0.removeLast(7) }),
            ("bad magic", { $0 = Array(("{\"not\": \"a cache file\"}" + String(repeating: " ", count: 300)).utf8) }),
            ("bad magic", { $0[0] = UInt8(ascii: "X") }),
            ("version", { $0[8] = 2 }),
            ("another text model", { $0[20] ^= 0xff }),
            ("tokens, expected", { $0[44] = 3 }),
        ]
        for (expected, damage) in cases {
            try Self.plant(damage, from: path, to: path)
            let before = warnings.all.count
            #expect(cache.lookup(tokens) == nil, "\(expected)")
            #expect(warnings.all.count == before + 1)
            #expect(warnings.all.last?.contains(expected) == true, "\(expected): \(warnings.all.last ?? "")")
            // The next run recomputes and rewrites a valid file.
            let result = try cache.features(for: tokens) { _ in try Self.features() }
            #expect(!result.hit)
            #expect(try Data(contentsOf: URL(fileURLWithPath: path)) == good)
            #expect(cache.lookup(tokens) != nil)
        }
        // A file whose checksum is valid but whose tokens differ (a renamed file for other labels).
        let other = try Self.tokens(3)
        try FileManager.default.copyItem(atPath: path, toPath: cache.path(for: other))
        #expect(cache.lookup(other) == nil)
        #expect(warnings.all.last?.contains("tokens, expected") == true || warnings.all.last?.contains("token ids differ") == true)
    }

    @Test func sameShapeDifferentTokensInsideTheFileIsRejected() throws {
        let directory = Self.scratchDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let warnings = Warnings()
        let cache = try Self.cache(directory, warnings: warnings)
        let tokens = try Self.tokens(1), other = try Self.tokens(5)
        cache.store(try Self.features(), for: tokens)
        try FileManager.default.copyItem(atPath: cache.path(for: tokens), toPath: cache.path(for: other))
        #expect(cache.lookup(other) == nil)
        #expect(warnings.all.last?.contains("token ids differ") == true)
    }

    @Test func unwritableDirectoryOnlyWarns() throws {
        let directory = Self.scratchDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        // The cache directory path runs through a regular file, so it cannot be created.
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let blocker = (directory as NSString).appendingPathComponent("file")
        try Data("x".utf8).write(to: URL(fileURLWithPath: blocker))
        let warnings = Warnings()
        let cache = try Self.cache((blocker as NSString).appendingPathComponent("cache"), warnings: warnings)
        let result = try cache.features(for: try Self.tokens(1)) { _ in try Self.features() }
        #expect(!result.hit)
        #expect(warnings.all.count == 1 && warnings.all[0].contains("not written"))
    }

    /// Sets a file's modification time `secondsAgo` seconds in the past (the clock's granularity
    /// is too coarse to order stores made in one test by their own times).
    static func age(_ path: String, secondsAgo: Double) throws {
        try FileManager.default.setAttributes([.modificationDate: Date(timeIntervalSinceNow: -secondsAgo)], ofItemAtPath: path)
    }

    /// Beyond `maximumFiles`, a store deletes the least recently used files; a hit counts as a
    /// use; files with other names in the directory are neither counted nor deleted.
    @Test func storesEvictTheLeastRecentlyUsedFiles() throws {
        let directory = Self.scratchDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let warnings = Warnings()
        let cache = try TextFeatureCache(directory: directory, modelSHA256: Self.modelA, maximumFiles: 3, warn: { warnings.append($0) })
        let sets = try (1...4).map { try Self.tokens(UInt64($0)) }
        for (index, tokens) in sets.prefix(3).enumerated() {
            cache.store(try Self.features(seed: UInt64(index)), for: tokens)
            try Self.age(cache.path(for: tokens), secondsAgo: Double(300 - 100 * index))   // A oldest, then B, C
        }
        let foreign = ["notes.txt", "text-zz.features", "text-\(String(repeating: "0", count: 16))-short.features"]
        for name in foreign {
            #expect(FileManager.default.createFile(atPath: (directory as NSString).appendingPathComponent(name), contents: Data("x".utf8)))
            try Self.age((directory as NSString).appendingPathComponent(name), secondsAgo: 1000)
        }
        #expect(cache.lookup(sets[0]) != nil)   // A is used again: now the newest of the three
        cache.store(try Self.features(seed: 3), for: sets[3])
        #expect(cache.lookup(sets[1]) == nil, "B, the least recently used, is evicted")
        for index in [0, 2, 3] { #expect(cache.lookup(sets[index]) != nil, "set \(index) is kept") }
        let names = Set(try FileManager.default.contentsOfDirectory(atPath: directory))
        #expect(names.filter { $0.hasSuffix(".features") && TextFeatureCache.isFeatureFileName($0) }.count == 3)
        for name in foreign { #expect(names.contains(name), "\(name) is not the cache's to delete") }
        #expect(warnings.all.isEmpty, "\(warnings.all)")
    }

    /// `maximumBytes` bounds the files' total size the same way; the file just written stays
    /// even when it alone is over the bound.
    @Test func storesKeepTheByteBound() throws {
        let directory = Self.scratchDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let warnings = Warnings()
        let sets = try (1...4).map { try Self.tokens(UInt64($0)) }
        let features = try Self.features()
        let probe = try Self.cache(directory, warnings: warnings)
        probe.store(features, for: sets[0])
        let attributes = try FileManager.default.attributesOfItem(atPath: probe.path(for: sets[0]))
        let fileBytes = try #require((attributes[.size] as? NSNumber)?.intValue)
        try Self.age(probe.path(for: sets[0]), secondsAgo: 300)
        let cache = try TextFeatureCache(directory: directory, modelSHA256: Self.modelA, maximumBytes: 2 * fileBytes,
                                         warn: { warnings.append($0) })
        cache.store(features, for: sets[1])
        try Self.age(cache.path(for: sets[1]), secondsAgo: 200)
        #expect(cache.lookup(sets[0]) != nil, "two files fit")
        try Self.age(cache.path(for: sets[0]), secondsAgo: 300)
        cache.store(features, for: sets[2])
        #expect(cache.lookup(sets[0]) == nil, "the oldest goes")
        #expect(cache.lookup(sets[1]) != nil && cache.lookup(sets[2]) != nil)
        let tiny = try TextFeatureCache(directory: directory, modelSHA256: Self.modelA, maximumBytes: 1, warn: { warnings.append($0) })
        tiny.store(features, for: sets[3])
        #expect(tiny.lookup(sets[3]) != nil, "the file just written is kept")
        #expect(tiny.lookup(sets[1]) == nil && tiny.lookup(sets[2]) == nil)
        #expect(warnings.all.isEmpty, "\(warnings.all)")
    }

    @Test func featureFileNamesAreRecognisedExactly() throws {
        let cache = try TextFeatureCache(directory: "/tmp", modelSHA256: Self.modelA)
        let name = (cache.path(for: try Self.tokens(1)) as NSString).lastPathComponent
        #expect(TextFeatureCache.isFeatureFileName(name))
        #expect(!TextFeatureCache.isFeatureFileName(name.uppercased()))
        #expect(!TextFeatureCache.isFeatureFileName("." + name))
        #expect(!TextFeatureCache.isFeatureFileName(name + ".tmp"))
        #expect(!TextFeatureCache.isFeatureFileName(name.replacingOccurrences(of: "-", with: "_")))
        #expect(!TextFeatureCache.isFeatureFileName("text-\(String(repeating: "g", count: 16))-\(String(repeating: "0", count: 32)).features"))
    }

    @Test func directoryFollowsXDG() throws {
        #expect(TextFeatureCache.defaultDirectory(environment: ["XDG_CACHE_HOME": "/x/cache", "HOME": "/home/u"]) == "/x/cache/action-clip")
        // A relative XDG_CACHE_HOME is ignored, as the XDG spec requires.
        #expect(TextFeatureCache.defaultDirectory(environment: ["XDG_CACHE_HOME": "rel", "HOME": "/home/u"]) == "/home/u/.cache/action-clip")
        #expect(TextFeatureCache.defaultDirectory(environment: ["HOME": "/home/u"]) == "/home/u/.cache/action-clip")
        #expect(throws: TextFeatureCache.Failure.self) { try TextFeatureCache(directory: "/tmp", modelSHA256: "nothex") }
        #expect(throws: TextFeatureCache.Failure.self) { try TextFeatureCache(directory: "/tmp", modelSHA256: "abcd") }
    }
}
