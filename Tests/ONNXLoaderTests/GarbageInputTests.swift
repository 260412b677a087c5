import Foundation
import Testing
import Tensor
@testable import ONNXLoader

/// Files that are not models at all: every one must give an error, never a trap.
@Suite struct GarbageInputTests {
    @Test func missingFileAndDirectory() throws {
        let missing = fixture("does-not-exist.onnx")
        #expect(loadError(missing) == .fileNotFound(path: missing))
        let directory = URL(fileURLWithPath: fixture("valid.onnx")).deletingLastPathComponent().path
        #expect(loadError(directory) == .isDirectory(path: directory))
        #expect(loadError(directory)?.description.contains("is a directory") == true)
    }

    @Test func emptyAndTextFiles() throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let empty = directory.appendingPathComponent("empty.onnx")
        try Data().write(to: empty)
        #expect(loadError(empty.path) == .emptyFile(path: empty.path))
        #expect(throws: ONNXLoadError.emptyFile(path: "<memory>")) { _ = try loadBytes([]) }

        let text = directory.appendingPathComponent("notes.onnx")
        try Data("This is a text file, not a model.\nSecond line.\n".utf8).write(to: text)
        let error = loadError(text.path)
        let isNotAModel = error == .notProtobuf(path: text.path) || error == .missingGraph(path: text.path)
        #expect(isNotAModel, "got \(String(describing: error))")
        #expect(error?.description.hasPrefix(text.path + ": not an ONNX model") == true)
    }

    @Test func randomBytes() {
        var generator = SplitMix64(seed: 0x5EED)
        for length in [1, 2, 7, 64, 1000, 4096] {
            for _ in 0..<20 {
                let bytes = (0..<length).map { _ in UInt8.random(in: 0...255, using: &generator) }
                #expect(throws: ONNXLoadError.self, "random \(length) bytes loaded as a model") { _ = try loadBytes(bytes) }
            }
        }
    }

    /// Every proper prefix of fp16.onnx (whose last field is its only opset import) must fail:
    /// cuts inside a field are invalid protobuf, cuts at a field boundary lose the opset or graph.
    @Test func everyTruncationFails() throws {
        let data = try [UInt8](Data(contentsOf: URL(fileURLWithPath: fixture("fp16.onnx"))))
        #expect(try loadBytes(data).graph.initializers.count == 1)
        for length in 1..<data.count {
            #expect(throws: ONNXLoadError.self, "prefix of \(length) bytes loaded") { _ = try loadBytes(Array(data[..<length])) }
        }
    }

    /// Cutting valid.onnx inside its graph gives "not a valid protobuf, or truncated" for a file too.
    @Test func truncatedFileOnDisk() throws {
        let data = try Data(contentsOf: URL(fileURLWithPath: fixture("valid.onnx")))
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        for fraction in [0.1, 0.33, 0.5, 0.9] {
            let cut = directory.appendingPathComponent("cut.onnx")
            try data.prefix(Int(Double(data.count) * fraction)).write(to: cut)
            let error = loadError(cut.path)
            #expect(error == .notProtobuf(path: cut.path), "cut at \(fraction): \(String(describing: error))")
            #expect(error?.description == "\(cut.path): not an ONNX model (not a valid protobuf, or truncated)")
        }
    }
}

