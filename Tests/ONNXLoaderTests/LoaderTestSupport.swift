import Foundation
import Testing
import Tensor
@testable import ONNXLoader

/// Path of a committed fixture written by Reference/make_loader_fixtures.py.
func fixture(_ name: String) -> String {
    URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("Fixtures").appendingPathComponent(name).path
}

/// The error loading `path` throws, or nil if it loads.
func loadError(_ path: String) -> ONNXLoadError? {
    do {
        _ = try ONNXLoader.load(contentsOf: path)
        return nil
    } catch {
        return error
    }
}

/// Loads `data` through the in-memory entry point.
func loadBytes(_ data: [UInt8], baseDirectory: String? = nil) throws(ONNXLoadError) -> ONNXModel {
    // withUnsafeBytes only rethrows untyped errors, so carry the typed one out in a Result.
    let result = data.withUnsafeBytes { buffer in
        Result { () throws(ONNXLoadError) -> ONNXModel in try ONNXLoader.load(bytes: buffer, baseDirectory: baseDirectory) }
    }
    return try result.get()
}

func initializer(_ model: ONNXModel, _ name: String, sourceLocation: SourceLocation = #_sourceLocation) throws -> Tensor {
    try #require(model.graph.initializers[name], "missing initializer \(name)", sourceLocation: sourceLocation)
}

/// Bit patterns of a float16 tensor (compared as bits so the test does not depend on Float16 arithmetic).
func halfBits(_ tensor: Tensor) -> [UInt16] {
    Array(UnsafeBufferPointer(start: tensor.storage.pointer.assumingMemoryBound(to: UInt16.self), count: tensor.count))
}

func isMalloced(_ tensor: Tensor) -> Bool {
    if case .malloced = tensor.storage.ownership { return true }
    return false
}

func isAllocated(_ tensor: Tensor) -> Bool {
    if case .allocated = tensor.storage.ownership { return true }
    return false
}

func keeper(_ tensor: Tensor) -> AnyObject? {
    if case .borrowed(let keeper) = tensor.storage.ownership { return keeper }
    return nil
}

/// A fresh temporary directory, removed by the caller.
func temporaryDirectory() throws -> URL {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("onnxloader-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url
}

extension WeightIndexTests.Wire {
    /// Appends a float32 initializer (GraphProto field 5) with its values as raw_data.
    mutating func floatInitializer(_ name: String, shape: [Int], _ values: [Float]) {
        var tensor = WeightIndexTests.Wire()
        for dimension in shape { tensor.int(1, UInt64(dimension)) }
        tensor.int(2, 1)  // FLOAT
        tensor.text(8, name)
        tensor.data(9, values.withUnsafeBytes { Array($0) })
        data(5, tensor.bytes)
    }

    /// Appends a graph's inputs (field 11) and outputs (field 12), by name only, and the graph's name.
    mutating func namesAndValues(graph name: String, inputs: [String], outputs: [String]) {
        text(2, name)
        for (field, names) in [(UInt64(11), inputs), (12, outputs)] {
            for value in names {
                var info = WeightIndexTests.Wire()
                info.text(1, value)
                data(field, info.bytes)
            }
        }
    }

    /// A ModelProto holding this GraphProto.
    func model(irVersion: UInt64, opset: UInt64) -> [UInt8] {
        var opsetImport = WeightIndexTests.Wire()
        opsetImport.int(2, opset)
        var model = WeightIndexTests.Wire()
        model.int(1, irVersion)
        model.data(8, opsetImport.bytes)
        model.data(7, bytes)
        return model.bytes
    }
}
