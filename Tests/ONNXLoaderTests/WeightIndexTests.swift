import Foundation
import Testing
import Tensor
@testable import ONNXLoader

/// `WeightIndex` must never change what a model loads as: every test compares the indexed load with
/// protobuf-c parsing the whole file (`useWeightIndex: false`), tensor bytes included, or checks that
/// an unusual wire structure falls back to that path.
@Suite struct WeightIndexTests {
    /// Minimal protobuf encoder for hand-made models (field numbers from onnx.proto).
    struct Wire {
        var bytes: [UInt8] = []

        mutating func varint(_ value: UInt64) {
            var remaining = value
            while remaining >= 0x80 { bytes.append(UInt8(truncatingIfNeeded: remaining) | 0x80); remaining >>= 7 }
            bytes.append(UInt8(remaining))
        }
        mutating func int(_ field: UInt64, _ value: UInt64) { varint(field << 3); varint(value) }
        mutating func data(_ field: UInt64, _ payload: [UInt8]) { varint(field << 3 | 2); varint(UInt64(payload.count)); bytes += payload }
        mutating func text(_ field: UInt64, _ value: String) { data(field, Array(value.utf8)) }
    }

    /// A float32 [count] initializer named `name` with the given raw_data fields (several = repeated).
    static func tensor(_ name: String, count: Int, rawData: [[Float]]) -> [UInt8] {
        var wire = Wire()
        wire.int(1, UInt64(count))   // dims
        wire.int(2, 1)               // data_type FLOAT
        wire.text(8, name)
        for values in rawData { wire.data(9, values.withUnsafeBytes { Array($0) }) }
        return wire.bytes
    }

    /// A model whose graph outputs its initializers; `graphs` > 1 repeats the graph field.
    static func model(initializers: [[UInt8]], outputs: [String], graphName: String = "g", graphs: Int = 1) -> [UInt8] {
        var graph = Wire()
        graph.text(2, graphName)
        for initializer in initializers { graph.data(5, initializer) }
        for output in outputs {
            var info = Wire()
            info.text(1, output)
            graph.data(12, info.bytes)
        }
        var opset = Wire()
        opset.int(2, 13)
        var model = Wire()
        model.int(1, 8)             // ir_version
        model.data(8, opset.bytes)  // opset_import
        for _ in 0..<graphs { model.data(7, graph.bytes) }
        return model.bytes
    }

    static func load(_ bytes: [UInt8], index: Bool) -> Result<ONNXModel, ONNXLoadError> {
        bytes.withUnsafeBytes { buffer in
            Result { () throws(ONNXLoadError) -> ONNXModel in
                try ONNXLoader.load(bytes: buffer, baseDirectory: nil, useWeightIndex: index)
            }
        }
    }

    /// Same outcome both ways: the same error text, or the same initializers byte for byte.
    static func expectSameOutcome(_ indexed: Result<ONNXModel, ONNXLoadError>, _ direct: Result<ONNXModel, ONNXLoadError>,
                                  _ label: String, sourceLocation: SourceLocation = #_sourceLocation) {
        switch (indexed, direct) {
        case (.failure(let first), .failure(let second)):
            #expect(first.description == second.description, "\(label)", sourceLocation: sourceLocation)
        case (.success(let first), .success(let second)):
            #expect(first.graph.initializerNames == second.graph.initializerNames, "\(label)", sourceLocation: sourceLocation)
            #expect(first.graph.nodes.count == second.graph.nodes.count, "\(label)", sourceLocation: sourceLocation)
            for name in second.graph.initializerNames {
                guard let a = first.graph.initializers[name], let b = second.graph.initializers[name] else {
                    Issue.record("\(label): initializer \(name) missing", sourceLocation: sourceLocation); continue
                }
                #expect(a.dataType == b.dataType && a.shape == b.shape, "\(label): \(name)", sourceLocation: sourceLocation)
                let same = a.byteCount == b.byteCount && memcmp(a.storage.pointer, b.storage.pointer, a.byteCount) == 0
                #expect(same, "\(label): \(name) bytes differ", sourceLocation: sourceLocation)
            }
        default:
            Issue.record("\(label): indexed \(indexed), direct \(direct)", sourceLocation: sourceLocation)
        }
    }

    /// Every loader fixture, valid or broken, loads (or fails) the same way with and without the index.
    @Test func everyFixtureLoadsTheSameWithAndWithoutTheIndex() throws {
        let directory = URL(fileURLWithPath: fixture("valid.onnx")).deletingLastPathComponent().path
        let names = try FileManager.default.contentsOfDirectory(atPath: directory).filter { $0.hasSuffix(".onnx") }.sorted()
        #expect(names.count > 10)
        for name in names {
            let path = directory + "/" + name
            let indexed = Result { () throws(ONNXLoadError) -> ONNXModel in try ONNXLoader.load(contentsOf: path, useWeightIndex: true) }
            let direct = Result { () throws(ONNXLoadError) -> ONNXModel in try ONNXLoader.load(contentsOf: path, useWeightIndex: false) }
            Self.expectSameOutcome(indexed, direct, name)
        }
    }

    @Test func indexLeavesOutOnlyRawData() throws {
        let bytes = Self.model(initializers: [Self.tensor("a", count: 3, rawData: [[1, 2, 3]]),
                                              Self.tensor("b", count: 2, rawData: [[4, 5]])], outputs: ["a", "b"])
        let index = try #require(bytes.withUnsafeBytes { WeightIndex.build($0) })
        #expect(index.skeleton.count == bytes.count - 20 - 2 * 2)  // 5 floats and two 2-byte field headers
        #expect(index.rawData.count == 2)
        let ranges = index.rawData.compactMap { $0 }
        #expect(ranges.map(\.count) == [12, 8])
        let first = try #require(ranges.first)
        let values = bytes[first].withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
        #expect(values == [1, 2, 3])
        Self.expectSameOutcome(Self.load(bytes, index: true), Self.load(bytes, index: false), "two tensors")
    }

    /// protobuf keeps the last value of a repeated bytes field; the index must pick the same one.
    @Test func repeatedRawDataKeepsTheLastValue() throws {
        let bytes = Self.model(initializers: [Self.tensor("a", count: 2, rawData: [[1, 2], [7, 8]])], outputs: ["a"])
        let indexed = Self.load(bytes, index: true)
        Self.expectSameOutcome(indexed, Self.load(bytes, index: false), "repeated raw_data")
        #expect(try indexed.get().graph.initializers["a"]?.toArray(Float.self) == [7, 8])
    }

    /// A repeated message field is merged by protobuf; the index declines and protobuf-c does it.
    @Test func repeatedGraphFallsBackToProtobufC() throws {
        let bytes = Self.model(initializers: [Self.tensor("a", count: 1, rawData: [[3]])], outputs: ["a"], graphs: 2)
        #expect(bytes.withUnsafeBytes { WeightIndex.build($0) } == nil)
        Self.expectSameOutcome(Self.load(bytes, index: true), Self.load(bytes, index: false), "two graph fields")
    }

    /// Cut anywhere, a model loads or fails the same way through both paths, and never traps.
    @Test func everyTruncationBehavesLikeProtobufC() throws {
        let bytes = Self.model(initializers: [Self.tensor("a", count: 4, rawData: [[1, 2, 3, 4]]),
                                              Self.tensor("b", count: 1, rawData: [[5]])], outputs: ["a", "b"])
        for length in 1..<bytes.count {
            let cut = Array(bytes[..<length])
            Self.expectSameOutcome(Self.load(cut, index: true), Self.load(cut, index: false), "cut at \(length)")
        }
    }

    /// Seeded byte mutations of a valid model: same outcome through both paths.
    @Test func mutatedModelsBehaveLikeProtobufC() throws {
        let original = try [UInt8](Data(contentsOf: URL(fileURLWithPath: fixture("valid.onnx"))))
        var generator = SplitMix64(seed: 2024)
        for trial in 0..<400 {
            var bytes = original
            for _ in 0..<(1 + Int(generator.next() % 4)) {
                let position = Int(generator.next() % UInt64(bytes.count))
                bytes[position] = UInt8(truncatingIfNeeded: generator.next())
            }
            Self.expectSameOutcome(Self.load(bytes, index: true), Self.load(bytes, index: false), "mutation \(trial)")
        }
    }

    /// Aligned raw_data in a file is used where the mapping holds it; misaligned data is copied to
    /// the 64-byte aligned arena. The name's length moves the blob's offset, so both cases occur.
    @Test func alignedWeightsAreBorrowedFromTheMapping() throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        var owners: Set<String> = []
        for nameLength in 1...4 {
            let name = String(repeating: "w", count: nameLength)
            let values: [Float] = (0..<64).map { Float($0) * 0.5 }
            let bytes = Self.model(initializers: [Self.tensor(name, count: 64, rawData: [values])], outputs: [name])
            let path = directory.appendingPathComponent("m\(nameLength).onnx").path
            try Data(bytes).write(to: URL(fileURLWithPath: path))
            let model = try ONNXLoader.load(contentsOf: path, useWeightIndex: true)
            let tensor = try initializer(model, name)
            #expect(try tensor.toArray(Float.self) == values)
            let owner = try #require(keeper(tensor))
            owners.insert(owner is MappedFile ? "mapping" : owner is WeightArena ? "arena" : "other")
            #expect(Int(bitPattern: tensor.storage.pointer) % 4 == 0)
        }
        #expect(owners == ["mapping", "arena"])
    }
}
