import Foundation
import Testing
@testable import Tensor

@Suite struct NPYTests {
    func temporaryPath(_ name: String) -> String {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("npy-tests-\(ProcessInfo.processInfo.processIdentifier)")
        try? FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        return directory.appendingPathComponent(name).path
    }

    @Test func roundTripsEverySupportedType() throws {
        let cases: [Tensor] = [
            try Tensor([Float(1.5), -2, 3, .infinity, -.infinity, 0], shape: [2, 3]),
            try Tensor([Double(1e300), -1], shape: [2]),
            try Tensor([Int64.min, 0, Int64.max], shape: [3, 1]),
            try Tensor([Int32(-7), 9], shape: [1, 2]),
            try Tensor([UInt8(0), 255], shape: [2]),
            try Tensor([Int8(-128), 127], shape: [2]),
            try Tensor([true, false, true], shape: [3]),
            Tensor(scalar: Float(42)),
            try Tensor([Float](), shape: [0, 4]),
        ]
        for (index, tensor) in cases.enumerated() {
            let path = temporaryPath("case\(index).npy")
            try NPY.write(tensor, to: path)
            let back = try NPY.read(path: path)
            #expect(back.shape == tensor.shape)
            #expect(back.dataType == tensor.dataType)
            #expect(Data(bytes: back.storage.pointer, count: back.byteCount) == Data(bytes: tensor.storage.pointer, count: tensor.byteCount))
        }
    }

    @Test func headerIsPaddedTo64Bytes() throws {
        let data = NPY.encode(try Tensor([Float(1)], shape: [1]))
        let headerLength = Int(data[8]) | Int(data[9]) << 8
        #expect((10 + headerLength) % 64 == 0)
        #expect(data.count == 10 + headerLength + 4)
    }

    @Test func rejectsMalformedFiles() throws {
        let valid = NPY.encode(try Tensor([Float](repeating: 0, count: 6), shape: [2, 3]))
        func failure(_ data: Data) -> String? {
            do { _ = try NPY.decode(data, path: "x.npy"); return nil } catch { return error.description }
        }
        #expect(failure(Data("hello".utf8))?.contains("magic") == true)
        #expect(failure(valid.prefix(valid.count - 1))?.contains("needs 24 data bytes") == true)
        #expect(failure(valid + Data([0]))?.contains("file has 25") == true)
        #expect(failure(valid.prefix(20)) != nil)
        func withHeader(_ header: String) -> Data {
            var bytes = Data([0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59, 1, 0])
            let padded = header + "\n"
            bytes.append(UInt8(padded.utf8.count & 0xFF)); bytes.append(UInt8(padded.utf8.count >> 8))
            bytes.append(contentsOf: Array(padded.utf8))
            return bytes + Data(count: 8)
        }
        #expect(failure(withHeader("{'descr': '>f4', 'fortran_order': False, 'shape': (2,), }"))?.contains("dtype '>f4'") == true)
        #expect(failure(withHeader("{'descr': '<c8', 'fortran_order': False, 'shape': (1,), }"))?.contains("dtype '<c8'") == true)
        #expect(failure(withHeader("{'descr': '<f4', 'fortran_order': True, 'shape': (2,), }"))?.contains("Fortran") == true)
        #expect(failure(withHeader("{'descr': '<f4', 'fortran_order': False, 'shape': (-2,), }"))?.contains("bad dimension") == true)
        // A shape whose element count overflows must be refused before any allocation.
        #expect(failure(withHeader("{'descr': '<f4', 'fortran_order': False, 'shape': (4294967296, 4294967296), }")) != nil)
        #expect(failure(withHeader("{'descr': '<f4', 'shape': (2,), }"))?.contains("fortran_order") == true)
    }

    @Test func missingFileIsAnError() {
        #expect(throws: NPY.Failure.self) { try NPY.read(path: "/nonexistent/file.npy") }
    }
}
