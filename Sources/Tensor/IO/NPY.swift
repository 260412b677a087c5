import Foundation

/// Reading and writing NumPy `.npy` files (format versions 1.0, 2.0 and 3.0).
///
/// Only C-order, little-endian arrays of the types in `DataType` are accepted: `<f4 <f8 <f2
/// <i8 <i4 |u1 |i1 |b1`. Everything read from the file (header length, shape, data size) is
/// checked against the bytes actually present before memory is reserved.
public enum NPY {
    /// Why a `.npy` file could not be read or written; prints as one line naming the file.
    public enum Failure: Error, CustomStringConvertible {
        case cannotRead(path: String, reason: String)
        case cannotWrite(path: String, reason: String)
        case malformed(path: String, reason: String)
        case unsupported(path: String, reason: String)

        public var description: String {
            switch self {
            case .cannotRead(let path, let reason): return "\(path): cannot read: \(reason)"
            case .cannotWrite(let path, let reason): return "\(path): cannot write: \(reason)"
            case .malformed(let path, let reason): return "\(path): not a valid .npy file: \(reason)"
            case .unsupported(let path, let reason): return "\(path): unsupported .npy array: \(reason)"
            }
        }
    }

    /// Type descriptors in the order `DataType` needs them; `<` and `|` are the little-endian and
    /// not-applicable byte orders numpy writes on this platform.
    static let descriptors: [(descriptor: String, type: DataType)] = [
        ("<f4", .float32), ("<f8", .float64), ("<f2", .float16), ("<i8", .int64),
        ("<i4", .int32), ("|u1", .uint8), ("|i1", .int8), ("|b1", .bool),
    ]

    /// A header longer than this is not something numpy writes; refusing it bounds the parse.
    static let maximumHeaderLength = 1 << 16

    /// Reads a `.npy` file into a tensor.
    public static func read(path: String) throws(Failure) -> Tensor {
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: path), options: .mappedIfSafe)
        } catch {
            throw .cannotRead(path: path, reason: (error as NSError).localizedDescription)
        }
        return try decode(data, path: path)
    }

    /// Parses `.npy` bytes; `path` is only used in messages.
    public static func decode(_ data: Data, path: String) throws(Failure) -> Tensor {
        let magic: [UInt8] = [0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59]  // "\x93NUMPY"
        guard data.count >= 10, Array(data.prefix(6)) == magic else {
            throw .malformed(path: path, reason: "missing the \\x93NUMPY magic")
        }
        let major = data[data.startIndex + 6]
        let headerLength: Int
        let headerStart: Int
        switch major {
        case 1:
            headerLength = Int(data[data.startIndex + 8]) | Int(data[data.startIndex + 9]) << 8
            headerStart = 10
        case 2, 3:
            guard data.count >= 12 else { throw .malformed(path: path, reason: "truncated header") }
            headerLength = (0..<4).reduce(0) { $0 | Int(data[data.startIndex + 8 + $1]) << (8 * $1) }
            headerStart = 12
        default:
            throw .unsupported(path: path, reason: "format version \(major)")
        }
        guard headerLength <= maximumHeaderLength, headerStart + headerLength <= data.count else {
            throw .malformed(path: path, reason: "header length \(headerLength) exceeds the file")
        }
        let headerBytes = data.subdata(in: (data.startIndex + headerStart)..<(data.startIndex + headerStart + headerLength))
        let header = String(decoding: headerBytes, as: UTF8.self)
        let fields = try parseHeader(header, path: path)
        guard let entry = descriptors.first(where: { $0.descriptor == fields.descriptor }) else {
            throw .unsupported(path: path, reason: "dtype '\(fields.descriptor)' (supported: float32, float64, float16, int64, int32, uint8, int8, bool, little endian)")
        }
        guard !fields.fortranOrder else {
            throw .unsupported(path: path, reason: "Fortran order (save with np.ascontiguousarray)")
        }
        let count: Int
        do { count = try Shape.elementCount(fields.shape) } catch {
            throw .malformed(path: path, reason: error.description)
        }
        let dataStart = headerStart + headerLength
        let expectedBytes = count * entry.type.byteSize
        let available = data.count - dataStart
        guard available == expectedBytes else {
            throw .malformed(path: path, reason: "shape \(fields.shape) \(entry.type) needs \(expectedBytes) data bytes, file has \(available)")
        }
        let tensor: Tensor
        do { tensor = try Tensor.uninitialized(entry.type, shape: fields.shape) } catch {
            throw .cannotRead(path: path, reason: error.description)
        }
        data.withUnsafeBytes { raw in
            if let base = raw.baseAddress, expectedBytes > 0 {
                tensor.storage.pointer.copyMemory(from: base + dataStart, byteCount: expectedBytes)
            }
        }
        if entry.type == .bool {
            // numpy bools are bytes 0/1; any other byte would be an invalid Swift Bool.
            let bytes = tensor.storage.pointer.assumingMemoryBound(to: UInt8.self)
            for index in 0..<count where bytes[index] > 1 { bytes[index] = 1 }
        }
        return tensor
    }

    /// Parses the Python-literal header dictionary numpy writes:
    /// `{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }`.
    static func parseHeader(_ header: String, path: String) throws(Failure) -> (descriptor: String, fortranOrder: Bool, shape: [Int]) {
        func value(after key: String) -> Substring? {
            guard let keyRange = header.range(of: "'\(key)'") ?? header.range(of: "\"\(key)\"") else { return nil }
            let rest = header[keyRange.upperBound...].drop { $0 == " " }
            guard rest.first == ":" else { return nil }
            return rest.dropFirst().drop { $0 == " " }
        }
        guard let descriptorValue = value(after: "descr"), let quote = descriptorValue.first, quote == "'" || quote == "\"",
              let closing = descriptorValue.dropFirst().firstIndex(of: quote) else {
            throw .malformed(path: path, reason: "header has no 'descr'")
        }
        let descriptor = String(descriptorValue[descriptorValue.index(after: descriptorValue.startIndex)..<closing])
        guard let orderValue = value(after: "fortran_order") else {
            throw .malformed(path: path, reason: "header has no 'fortran_order'")
        }
        let fortranOrder = orderValue.hasPrefix("True")
        guard let shapeValue = value(after: "shape"), shapeValue.first == "(",
              let shapeEnd = shapeValue.firstIndex(of: ")") else {
            throw .malformed(path: path, reason: "header has no 'shape' tuple")
        }
        let inner = shapeValue[shapeValue.index(after: shapeValue.startIndex)..<shapeEnd]
        var shape: [Int] = []
        for part in inner.split(separator: ",") {
            let trimmed = part.trimmingCharacters(in: .whitespaces).replacingOccurrences(of: "L", with: "")
            if trimmed.isEmpty { continue }
            guard let dimension = Int(trimmed), dimension >= 0 else {
                throw .malformed(path: path, reason: "bad dimension '\(trimmed)' in shape")
            }
            shape.append(dimension)
        }
        guard shape.count <= 32 else { throw .malformed(path: path, reason: "rank \(shape.count) is above 32") }
        return (descriptor, fortranOrder, shape)
    }

    /// Serialises a tensor as `.npy` version 1.0 bytes.
    public static func encode(_ tensor: Tensor) -> Data {
        let descriptor = descriptors.first { $0.type == tensor.dataType }?.descriptor ?? "<f4"
        let shapeText: String
        switch tensor.rank {
        case 0: shapeText = "()"
        case 1: shapeText = "(\(tensor.shape[0]),)"
        default: shapeText = "(" + tensor.shape.map(String.init).joined(separator: ", ") + ")"
        }
        var header = "{'descr': '\(descriptor)', 'fortran_order': False, 'shape': \(shapeText), }"
        // Pad with spaces so that magic + length + header + newline is a multiple of 64 bytes,
        // as numpy does, keeping the data aligned for memory mapping.
        let unpadded = 10 + header.utf8.count + 1
        header += String(repeating: " ", count: (64 - unpadded % 64) % 64) + "\n"
        var data = Data([0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59, 1, 0])
        let length = UInt16(header.utf8.count)
        data.append(UInt8(length & 0xFF))
        data.append(UInt8(length >> 8))
        data.append(contentsOf: Array(header.utf8))
        data.append(Data(bytes: tensor.storage.pointer, count: tensor.byteCount))
        return data
    }

    /// Writes a tensor to `path` through a temporary file renamed into place, so a failure never
    /// leaves a half-written file under the final name.
    public static func write(_ tensor: Tensor, to path: String) throws(Failure) {
        do {
            try encode(tensor).write(to: URL(fileURLWithPath: path), options: .atomic)
        } catch {
            throw .cannotWrite(path: path, reason: (error as NSError).localizedDescription)
        }
    }
}
