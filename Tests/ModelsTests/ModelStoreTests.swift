import Foundation
import Testing
@testable import Models

/// Runs the downloader against `Tests/Support/http_test_server.py` on 127.0.0.1.
@Suite(.serialized) struct ModelStoreTests {
    final class Server {
        let process = Process()
        let input = Pipe()
        let port: Int
        let root: String

        init() throws {
            root = FileManager.default.temporaryDirectory.appendingPathComponent("store-server-\(UUID().uuidString)").path
            try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
            let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
                .appendingPathComponent("Support/http_test_server.py").path
            process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            process.arguments = ["python3", script, "--root", root]
            let pipe = Pipe()
            process.standardOutput = pipe
            process.standardInput = input
            try process.run()
            var line = Data()
            while let byte = try pipe.fileHandleForReading.read(upToCount: 1), !byte.isEmpty, byte != Data([0x0A]) {
                line.append(byte)
            }
            guard let port = Int(String(decoding: line, as: UTF8.self)) else {
                try? input.fileHandleForWriting.close()
                throw ModelStore.Failure(description: "test server did not report a port")
            }
            self.port = port
        }

        func url(_ mode: String) -> String { "http://127.0.0.1:\(port)/\(mode)/" }

        deinit {
            // The server exits when its standard input closes.
            try? input.fileHandleForWriting.close()
            process.waitUntilExit()
            try? FileManager.default.removeItem(atPath: root)
        }
    }

    static func temporaryDirectory() -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("store-\(UUID().uuidString)").path
        try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    /// Bytes that look like an ONNX file's start (field 1 varint) followed by noise.
    static let payload = Data([0x08, 0x05] + (0..<200_000).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ 3) })

    static func leftovers(in directory: String) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []).filter { $0.hasSuffix(".partial") }
    }

    @Test func downloadsRecordsAndReusesAFile() throws {
        let server = try Server()
        try Self.payload.write(to: URL(fileURLWithPath: server.root + "/model.onnx"))
        let directory = Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let store = ModelStore(directory: directory, baseURL: server.url("ok"))
        let path = try store.resolve("model.onnx")
        #expect(FileManager.default.contents(atPath: path) == Self.payload)
        let entry = try #require(try store.readManifest()["model.onnx"])
        #expect(entry.sha256 == SHA256.hex(Self.payload))
        #expect(entry.size == Int64(Self.payload.count))
        // Offline now works because the file is present and verifies.
        #expect(try ModelStore(directory: directory, offline: true).resolve("model.onnx") == path)
        #expect(Self.leftovers(in: directory).isEmpty)
    }

    @Test func interruptedTransferLeavesNothing() throws {
        let server = try Server()
        try Self.payload.write(to: URL(fileURLWithPath: server.root + "/model.onnx"))
        let directory = Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let store = ModelStore(directory: directory, baseURL: server.url("truncate"))
        #expect(throws: ModelStore.Failure.self) { try store.resolve("model.onnx") }
        #expect(!store.contains("model.onnx"))
        #expect(Self.leftovers(in: directory).isEmpty)
        // The next run recovers.
        let recovered = ModelStore(directory: directory, baseURL: server.url("ok"))
        #expect(FileManager.default.contents(atPath: try recovered.resolve("model.onnx")) == Self.payload)
    }

    @Test func wrongChecksumIsRefused() throws {
        let server = try Server()
        try Self.payload.write(to: URL(fileURLWithPath: server.root + "/model.onnx"))
        let directory = Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let store = ModelStore(directory: directory, baseURL: server.url("ok"))
        try store.updateManifest("model.onnx", .init(sha256: String(repeating: "0", count: 64), size: 1, url: nil))
        do {
            try store.resolve("model.onnx")
            Issue.record("expected a checksum failure")
        } catch {
            #expect(error.description.contains("is pinned"))
            #expect(error.description.contains(server.url("ok") + "model.onnx"))
        }
        #expect(!store.contains("model.onnx"))
        #expect(Self.leftovers(in: directory).isEmpty)
    }

    @Test func htmlInsteadOfAModelIsRefused() throws {
        let server = try Server()
        try Self.payload.write(to: URL(fileURLWithPath: server.root + "/model.onnx"))
        for mode in ["html", "markup", "missing"] {
            let directory = Self.temporaryDirectory()
            defer { try? FileManager.default.removeItem(atPath: directory) }
            let store = ModelStore(directory: directory, baseURL: server.url(mode))
            #expect(throws: ModelStore.Failure.self) { try store.resolve("model.onnx") }
            #expect(!store.contains("model.onnx"))
            #expect(Self.leftovers(in: directory).isEmpty)
        }
    }

    @Test func offlineNeverDownloads() {
        let directory = Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let store = ModelStore(directory: directory, baseURL: "http://127.0.0.1:9/", offline: true)
        do {
            try store.resolve("model.onnx")
            Issue.record("expected an error")
        } catch {
            #expect(error.description.contains("--offline"))
        }
    }

    @Test func tamperedFileFailsVerification() throws {
        let directory = Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let store = ModelStore(directory: directory, offline: true)
        let path = store.path(of: "model.onnx")
        try Self.payload.write(to: URL(fileURLWithPath: path))
        try store.verify("model.onnx")  // first sight: recorded
        var changed = Self.payload
        changed[100] ^= 0xFF
        try changed.write(to: URL(fileURLWithPath: path))
        #expect(throws: ModelStore.Failure.self) { try store.verify("model.onnx") }
    }

    @Test func corruptManifestIsAnError() throws {
        let directory = Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try Data("{not json".utf8).write(to: URL(fileURLWithPath: directory + "/manifest.json"))
        #expect(throws: ModelStore.Failure.self) { try ModelStore(directory: directory, offline: true).readManifest() }
    }
}
