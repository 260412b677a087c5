import Foundation
import Testing
import Tensor
@testable import ONNXLoader

/// external.onnx + external.data (layout documented in Reference/make_loader_fixtures.py).
@Suite struct ExternalDataTests {
    @Test func valuesAndMappingReuse() throws {
        let model = try ONNXLoader.load(contentsOf: fixture("external.onnx"))
        let a = try initializer(model, "ext_a")
        #expect(a.shape == [2, 3])
        #expect(try a.toArray(Float.self) == [0, 1.5, 3, 4.5, 6, 7.5])
        let b = try initializer(model, "ext_b")
        #expect(try b.toArray(Int64.self) == [10, 20, 30])
        let u8 = try initializer(model, "ext_u8")
        #expect(try u8.toArray(UInt8.self) == [1, 2, 3])
        // Aligned tensors point into one shared mapping of the data file ("./external.data" is the same file).
        let keepers = [a, b, u8].map { keeper($0).map(ObjectIdentifier.init) }
        #expect(keepers.allSatisfy { $0 != nil }, "aligned external tensors should be mapped, not copied")
        #expect(Set(keepers).count == 1)
        #expect(b.storage.pointer - a.storage.pointer == 24)
    }

    @Test func misalignedAndBooleanDataIsCopied() throws {
        let model = try ONNXLoader.load(contentsOf: fixture("external.onnx"))
        let misaligned = try initializer(model, "ext_m")
        #expect(isAllocated(misaligned), "offset 51 is not 4-byte aligned; the float tensor must be copied")
        #expect(try misaligned.toArray(Float.self) == [-1, 0.25])
        // Byte 7 means true; Swift's Bool needs exactly 1, so the read-only mapping is copied and normalised.
        let flags = try initializer(model, "ext_bool")
        #expect(isAllocated(flags))
        #expect(try flags.toArray(Bool.self) == [false, true])
    }

    @Test func mappingOutlivesTheModelValue() throws {
        var tensor: Tensor?
        do {
            let model = try ONNXLoader.load(contentsOf: fixture("external.onnx"))
            tensor = model.graph.initializers["ext_a"]
        }
        #expect(try #require(tensor).toArray(Float.self) == [0, 1.5, 3, 4.5, 6, 7.5])
    }

    @Test func fromBytesNeedsABaseDirectory() throws {
        let data = try [UInt8](Data(contentsOf: URL(fileURLWithPath: fixture("external.onnx"))))
        do {
            _ = try loadBytes(data, baseDirectory: nil)
            Issue.record("loading external data without a base directory succeeded")
        } catch {
            guard case .externalData(let tensor, let problem) = error else {
                Issue.record("unexpected error \(error)")
                return
            }
            #expect(tensor == "initializer 'ext_a'")
            #expect(problem.contains("base directory"))
        }
        let directory = URL(fileURLWithPath: fixture("external.onnx")).deletingLastPathComponent().path
        let model = try loadBytes(data, baseDirectory: directory)
        #expect(try initializer(model, "ext_b").toArray(Int64.self) == [10, 20, 30])
    }

    @Test func offsetBeyondFile() {
        let error = loadError(fixture("broken_external_offset.onnx"))
        #expect(error == .externalData(tensor: "initializer 'far'",
                                       problem: "offset 1000 is beyond the end of 'external.data' (61 bytes)"))
        #expect(error?.description.contains("'far'") == true)
    }

    @Test func lengthBeyondFile() {
        let error = loadError(fixture("broken_external_length.onnx"))
        #expect(error == .externalData(tensor: "initializer 'long'",
                                       problem: "offset 48 + length 24 is beyond the end of 'external.data' (61 bytes)"))
    }

    @Test func locationEscapingTheDirectory() {
        let error = loadError(fixture("broken_external_escape.onnx"))
        #expect(error == .externalData(tensor: "initializer 'escape'",
                                       problem: "location '../x.data' leaves the model's directory"))
    }

    @Test func absoluteLocation() {
        let error = loadError(fixture("broken_external_absolute.onnx"))
        guard case .externalData(let tensor, let problem)? = error else {
            Issue.record("unexpected result \(String(describing: error))")
            return
        }
        #expect(tensor == "initializer 'absolute'")
        #expect(problem.contains("'/etc/passwd' is absolute"))
    }

    @Test func missingDataFile() {
        let error = loadError(fixture("broken_external_missing.onnx"))
        guard case .externalData(let tensor, let problem)? = error else {
            Issue.record("unexpected result \(String(describing: error))")
            return
        }
        #expect(tensor == "initializer 'nofile'")
        #expect(problem.hasSuffix("missing.data': no such file"))
    }
}
