import Foundation
import Testing

/// The CLI's contract on bad input (issue 5, docs/ROBUSTNESS.md): exit 1 with one line on stderr naming the
/// file and the problem; usage errors exit 2; never a crash (a signal) and never a traceback.
@Suite struct BrokenInputCLITests {
    /// The `action-clip` binary built next to the test bundle (same build directory).
    static let binary: URL = {
        let runner = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
        var directory = runner.deletingLastPathComponent()
        // The runner may sit inside an .xctest bundle directory.
        while !FileManager.default.isExecutableFile(atPath: directory.appendingPathComponent("action-clip").path),
              directory.path != "/" {
            directory.deleteLastPathComponent()
        }
        return directory.appendingPathComponent("action-clip")
    }()

    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    struct Result { var status: Int32; var reason: Process.TerminationReason; var stderr: String }

    static func run(_ arguments: [String]) throws -> Result {
        let process = Process()
        process.executableURL = binary
        process.arguments = arguments
        let errorPipe = Pipe()
        process.standardError = errorPipe
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        let data = errorPipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return Result(status: process.terminationStatus, reason: process.terminationReason,
                      stderr: String(decoding: data, as: UTF8.self))
    }

    /// Expects exit 1 and exactly one stderr line that mentions every fragment.
    static func expectBadInput(_ arguments: [String], mentions fragments: [String]) throws {
        let result = try run(arguments)
        #expect(result.reason == .exit, "\(arguments) ended by a signal")
        #expect(result.status == 1, "\(arguments) exited \(result.status): \(result.stderr)")
        let lines = result.stderr.split(separator: "\n")
        #expect(lines.count == 1, "\(arguments): \(result.stderr)")
        for fragment in fragments { #expect(result.stderr.contains(fragment), "\(result.stderr) should mention \(fragment)") }
    }

    static func scratch() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("cli-broken-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    @Test func binaryIsBuilt() {
        #expect(FileManager.default.isExecutableFile(atPath: Self.binary.path), "\(Self.binary.path)")
    }

    @Test func brokenModelsExitOneNamingTheFile() throws {
        let fixtures = Self.repository.appendingPathComponent("Tests/ONNXLoaderTests/Fixtures")
        for name in ["broken_cycle.onnx", "broken_dangling.onnx", "broken_duplicate_output.onnx", "broken_huge_dims.onnx",
                     "broken_typed_count.onnx", "broken_external_escape.onnx"] {
            try Self.expectBadInput(["inspect", fixtures.appendingPathComponent(name).path], mentions: [name])
        }
        let directory = try Self.scratch()
        defer { try? FileManager.default.removeItem(at: directory) }
        let text = directory.appendingPathComponent("model.onnx")
        try Data("not a model\n".utf8).write(to: text)
        try Self.expectBadInput(["inspect", text.path], mentions: [text.path])
        let empty = directory.appendingPathComponent("empty.onnx")
        try Data().write(to: empty)
        try Self.expectBadInput(["inspect", empty.path], mentions: [empty.path])
        try Self.expectBadInput(["inspect", directory.appendingPathComponent("missing.onnx").path], mentions: ["missing.onnx"])
    }

    @Test func brokenNPYAndVideoExitOneNamingTheFile() throws {
        let directory = try Self.scratch()
        defer { try? FileManager.default.removeItem(at: directory) }
        let valid = Self.repository.appendingPathComponent("Tests/ONNXLoaderTests/Fixtures/valid.onnx").path
        let npy = directory.appendingPathComponent("x.npy")
        // A header claiming a 2^40-element array over 16 data bytes.
        var header = "{'descr': '<f4', 'fortran_order': False, 'shape': (1048576, 1048576), }"
        header += String(repeating: " ", count: 118 - header.utf8.count) + "\n"
        try Data([0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59, 1, 0, 118, 0] + Array(header.utf8) + [UInt8](repeating: 0, count: 16)).write(to: npy)
        try Self.expectBadInput(["run", valid, "--input", "x=\(npy.path)", "--output-dir", directory.path],
                                mentions: [npy.path])
        let video = directory.appendingPathComponent("clip.mp4")
        try Data("text pretending to be a video".utf8).write(to: video)
        try Self.expectBadInput(["preprocess", video.path, "--output", directory.appendingPathComponent("out.npy").path],
                                mentions: [video.path])
        #expect(!FileManager.default.fileExists(atPath: directory.appendingPathComponent("out.npy").path), "no output left behind")
        let vocabulary = directory.appendingPathComponent("vocab.txt.gz")
        try Data("not gzip".utf8).write(to: vocabulary)
        try Self.expectBadInput(["tokenize", "--vocab", vocabulary.path, "a dog"], mentions: [vocabulary.path])
    }

    @Test func usageErrorsExitTwo() throws {
        for arguments in [["inspect"], ["--no-such-option"], ["run", "model.onnx", "--input", "missing-equals-sign"]] {
            let result = try Self.run(arguments)
            #expect(result.reason == .exit && result.status == 2, "\(arguments): \(result.status) \(result.stderr)")
        }
    }
}
