import Foundation
import Testing
@testable import Models

/// Downloads under stress (issue 5): concurrent fetches of one file and a full disk. In every case the
/// final name holds either nothing or the whole verified file, no `.partial` file is left behind, and
/// the next run recovers. Uses the loopback server of `ModelStoreTests`.
@Suite(.serialized) struct BrokenInputDownloadTests {
    @Test("four concurrent fetches of the same file all succeed with the whole file; no partial file remains")
    func concurrentFetches() throws {
        let server = try ModelStoreTests.Server()
        try ModelStoreTests.payload.write(to: URL(fileURLWithPath: server.root + "/model.onnx"))
        let directory = ModelStoreTests.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        // Separate stores and separate lock descriptors: flock(2) locks belong to the open file
        // description, so threads here contend exactly as separate processes would.
        let results = ResultBox()
        let baseURL = server.url("ok")
        DispatchQueue.concurrentPerform(iterations: 4) { _ in
            let store = ModelStore(directory: directory, baseURL: baseURL)
            do { results.append(.success(try store.resolve("model.onnx"))) } catch {
                results.append(.failure("\(error)"))
            }
        }
        let outcomes = results.values
        #expect(outcomes.count == 4)
        for outcome in outcomes {
            if case .failure(let message) = outcome { Issue.record("a concurrent fetch failed: \(message)") }
        }
        let path = (directory as NSString).appendingPathComponent("model.onnx")
        #expect(FileManager.default.contents(atPath: path) == ModelStoreTests.payload)
        #expect(ModelStoreTests.leftovers(in: directory).isEmpty)
        #expect(try ModelStore(directory: directory).readManifest()["model.onnx"]?.sha256 == SHA256.hex(ModelStoreTests.payload))
    }

    @Test("a full disk fails cleanly, leaves no partial file, and the next run (with space) recovers")
    func fullDisk() throws {
        let server = try ModelStoreTests.Server()
        try ModelStoreTests.payload.write(to: URL(fileURLWithPath: server.root + "/model.onnx"))
        let directory = ModelStoreTests.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        // A 64 KiB tmpfs (the payload is 200 kB) needs root; elsewhere a read-only directory stands in
        // for "cannot write" (documented in docs/ROBUSTNESS.md).
        let mounted = Self.run("/bin/mount", ["-t", "tmpfs", "-o", "size=64k", "tmpfs", directory])
        defer { if mounted { _ = Self.run("/bin/umount", [directory]) } }
        if !mounted { try FileManager.default.setAttributes([.posixPermissions: 0o555], ofItemAtPath: directory) }
        let store = ModelStore(directory: directory, baseURL: server.url("ok"))
        do {
            try store.resolve("model.onnx")
            // Only possible when the fallback could not make the directory read-only (root without mount).
            #expect(!mounted, "a 200 kB download cannot fit in 64 KiB")
        } catch {
            let message = "\(error)"
            #expect(!message.contains("\n"))
            if mounted { #expect(message.contains("space"), "\(message)") }
            #expect(!store.contains("model.onnx"), "nothing under the final name")
        }
        #expect(ModelStoreTests.leftovers(in: directory).isEmpty)
        // Make room, then the next run recovers.
        if mounted {
            #expect(Self.run("/bin/mount", ["-o", "remount,size=4m", directory]))
        } else {
            try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: directory)
        }
        let path = try ModelStore(directory: directory, baseURL: server.url("ok")).resolve("model.onnx")
        #expect(FileManager.default.contents(atPath: path) == ModelStoreTests.payload)
    }

    static func run(_ executable: String, _ arguments: [String]) -> Bool {
        guard FileManager.default.isExecutableFile(atPath: executable) else { return false }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.standardError = FileHandle.nullDevice
        process.standardOutput = FileHandle.nullDevice
        do { try process.run() } catch { return false }
        process.waitUntilExit()
        return process.terminationStatus == 0
    }

    enum Outcome { case success(String), failure(String) }

    final class ResultBox: @unchecked Sendable {
        private let lock = NSLock()
        private var stored: [Outcome] = []
        func append(_ outcome: Outcome) { lock.lock(); stored.append(outcome); lock.unlock() }
        var values: [Outcome] { lock.lock(); defer { lock.unlock() }; return stored }
    }
}
