/// Finds where each initializer's `raw_data` lies in a serialized `ModelProto`, and builds a copy
/// of the model without those bytes, so protobuf-c parses only the small rest.
///
/// Why: protobuf-c copies every `bytes` field into a fresh `malloc` block. For ActionCLIP that is
/// the whole 350 MB of the image model: the copy, and the page faults of the fresh memory, made up
/// most of the load time, and while the copy was being made the file's pages and the copy were
/// both resident (twice the model's size in RSS). With this index the weights are used where the
/// file mapping holds them, or copied once when their offset is not aligned for their element
/// type, and the mapped pages of such a copy are released at once.
///
/// Only the protobuf wire format is read here (ModelProto field 7 `graph`, GraphProto field 5
/// `initializer`, TensorProto field 9 `raw_data`); protobuf-c still parses and checks every other
/// field. Anything unexpected (a malformed varint, a length past the end, a deprecated group, the
/// `graph` field given twice, which protobuf would merge) makes `build` return nil, and the caller
/// parses the original bytes with protobuf-c, which then reports the problem or merges as protobuf
/// says. Every length read from the file is checked against the bytes that remain.
struct WeightIndex {
    /// The model without the initializers' raw_data fields (a valid serialized ModelProto).
    let skeleton: [UInt8]
    /// For initializer i (in wire order, as protobuf-c numbers them), the byte range of its
    /// raw_data in the original buffer, or nil when it has none.
    let rawData: [Range<Int>?]

    /// Protobuf field numbers used here (onnx.proto).
    private enum Field {
        static let modelGraph: UInt64 = 7
        static let graphInitializer: UInt64 = 5
        static let tensorRawData: UInt64 = 9
    }

    /// Wire types (protobuf encoding spec). 3 and 4 are the deprecated groups, which onnx.proto never uses.
    private enum WireType {
        static let varint: UInt64 = 0
        static let fixed64: UInt64 = 1
        static let lengthDelimited: UInt64 = 2
        static let fixed32: UInt64 = 5
    }

    /// One field as found on the wire: its number and type, where its tag starts, where its payload
    /// starts and where the field ends.
    private struct WireField {
        let number: UInt64
        let wireType: UInt64
        let start: Int
        let payloadStart: Int
        let end: Int
    }

    /// Indexes `bytes`; nil when the wire structure is not the plain one described above.
    /// Small models (no raw_data worth skipping) also return nil: the direct parse is as fast.
    static func build(_ bytes: UnsafeRawBufferPointer) -> WeightIndex? {
        guard bytes.count > 0 else { return nil }
        var reader = WireReader(bytes: bytes)
        var skeleton: [UInt8] = []
        var rawData: [Range<Int>?] = []
        var sawGraph = false
        var skipped = 0
        while !reader.atEnd {
            guard let field = reader.nextField(limit: bytes.count) else { return nil }
            guard field.number == Field.modelGraph, field.wireType == WireType.lengthDelimited else {
                skeleton.append(contentsOf: bytes[field.start..<field.end])
                continue
            }
            // Protobuf merges repeated occurrences of a message field; leave that to protobuf-c.
            guard !sawGraph else { return nil }
            sawGraph = true
            guard let graph = indexGraph(bytes, field.payloadStart..<field.end, rawData: &rawData, skipped: &skipped)
            else { return nil }
            appendTag(&skeleton, number: Field.modelGraph)
            appendVarint(&skeleton, UInt64(graph.count))
            skeleton.append(contentsOf: graph)
        }
        guard sawGraph, skipped > 0 else { return nil }
        return WeightIndex(skeleton: skeleton, rawData: rawData)
    }

    /// The graph's bytes with each initializer's raw_data left out; records the ranges.
    private static func indexGraph(_ bytes: UnsafeRawBufferPointer, _ range: Range<Int>,
                                   rawData: inout [Range<Int>?], skipped: inout Int) -> [UInt8]? {
        var reader = WireReader(bytes: bytes, position: range.lowerBound)
        var graph: [UInt8] = []
        while reader.position < range.upperBound {
            guard let field = reader.nextField(limit: range.upperBound) else { return nil }
            guard field.number == Field.graphInitializer, field.wireType == WireType.lengthDelimited else {
                graph.append(contentsOf: bytes[field.start..<field.end])
                continue
            }
            var tensorReader = WireReader(bytes: bytes, position: field.payloadStart)
            var tensor: [UInt8] = []
            var found: Range<Int>?
            while tensorReader.position < field.end {
                guard let inner = tensorReader.nextField(limit: field.end) else { return nil }
                if inner.number == Field.tensorRawData, inner.wireType == WireType.lengthDelimited {
                    // A bytes field given twice: the last one wins (protobuf's rule for scalars and bytes).
                    found = inner.payloadStart..<inner.end
                } else {
                    tensor.append(contentsOf: bytes[inner.start..<inner.end])
                }
            }
            if let found { skipped += found.count }
            rawData.append(found)
            appendTag(&graph, number: Field.graphInitializer)
            appendVarint(&graph, UInt64(tensor.count))
            graph.append(contentsOf: tensor)
        }
        return graph
    }

    private static func appendTag(_ output: inout [UInt8], number: UInt64) {
        appendVarint(&output, number << 3 | WireType.lengthDelimited)
    }

    private static func appendVarint(_ output: inout [UInt8], _ value: UInt64) {
        var remaining = value
        while remaining >= 0x80 {
            output.append(UInt8(truncatingIfNeeded: remaining) | 0x80)
            remaining >>= 7
        }
        output.append(UInt8(remaining))
    }

    /// A bounds-checked cursor over protobuf wire bytes.
    private struct WireReader {
        let bytes: UnsafeRawBufferPointer
        var position = 0

        var atEnd: Bool { position >= bytes.count }

        /// A varint of at most 10 bytes that ends before `limit`; nil otherwise.
        mutating func varint(limit: Int) -> UInt64? {
            var value: UInt64 = 0
            var shift: UInt64 = 0
            while position < limit, shift < 64 {
                let byte = bytes[position]
                position += 1
                value |= UInt64(byte & 0x7F) << shift
                if byte & 0x80 == 0 { return value }
                shift += 7
            }
            return nil
        }

        /// The next field, which must end at or before `limit`.
        mutating func nextField(limit: Int) -> WireField? {
            let start = position
            guard let key = varint(limit: limit) else { return nil }
            let number = key >> 3, wireType = key & 7
            guard number > 0 else { return nil }
            switch wireType {
            case WireType.varint:
                guard varint(limit: limit) != nil else { return nil }
                return WireField(number: number, wireType: wireType, start: start, payloadStart: start, end: position)
            case WireType.fixed64, WireType.fixed32:
                let size = wireType == WireType.fixed64 ? 8 : 4
                guard limit - position >= size else { return nil }
                position += size
                return WireField(number: number, wireType: wireType, start: start, payloadStart: position - size, end: position)
            case WireType.lengthDelimited:
                guard let length = varint(limit: limit), length <= UInt64(limit - position) else { return nil }
                let payloadStart = position
                position += Int(length)
                return WireField(number: number, wireType: wireType, start: start, payloadStart: payloadStart, end: position)
            default:
                return nil
            }
        }
    }
}
