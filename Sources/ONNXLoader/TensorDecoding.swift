#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import ONNXProto
import Tensor

/// State shared by everything decoded from one model file: where external data lives and the
/// data files mapped so far (each file is mapped once, however many tensors point into it).
final class LoadContext {
    /// How the model is named in messages (its path, or "<memory>").
    let sourceName: String
    /// Directory that external data locations are relative to; nil when loading from bytes without one.
    let baseDirectory: String?
    private var externalFiles: [String: MappedFile] = [:]
    /// Where the initializers' raw_data lies when the model was parsed through a `WeightIndex`.
    var mappedWeights: MappedWeights?
    /// Whether MatMul weights the loader writes anyway get padded rows (`MatrixRowPadding`).
    let padMatrixRows: Bool
    /// Whether MatMul weights the loader writes anyway are stored in packed strips (`WeightPacking`).
    let packMatrices: Bool

    init(sourceName: String, baseDirectory: String?, padMatrixRows: Bool = false, packMatrices: Bool = false) {
        self.sourceName = sourceName
        self.baseDirectory = baseDirectory
        self.padMatrixRows = padMatrixRows
        self.packMatrices = packMatrices
    }

    /// Converts a `TensorProto` into a `Tensor`, validating every size against what is really present.
    ///
    /// `raw_data` blocks are taken over from protobuf-c (the field is cleared, so `free_unpacked`
    /// leaves the block alone and the tensor storage frees it), so weights exist in one copy.
    /// `subject` names the tensor in errors, e.g. "initializer 'fc.weight'". `initializerIndex` is
    /// the tensor's position among the graph's initializers, whose raw_data `mappedWeights` may hold;
    /// `matrixOperand` says it is read only as a MatMul weight, so it may be packed or its rows padded;
    /// `patchStrides`, that it is read only as the weight of patch-embedding Convs with these strides,
    /// so it may be stored as the packed strips of its transpose (`WeightPacking`).
    func decodeTensor(_ proto: UnsafeMutablePointer<Onnx__TensorProto>, subject: String,
                      initializerIndex: Int? = nil, matrixOperand: Bool = false,
                      patchStrides: [Int]? = nil) throws(ONNXLoadError) -> Tensor {
        let typeCode = proto.pointee.data_type
        guard let dataType = DataType(rawValue: typeCode) else {
            throw .unsupportedDataType(tensor: subject, typeName: DataType.onnxName(code: typeCode))
        }
        var shape: [Int] = []
        for dimension in cArray(proto.pointee.dims, proto.pointee.n_dims) {
            guard dimension >= 0 else {
                let dims = cArray(proto.pointee.dims, proto.pointee.n_dims).map(String.init).joined(separator: ",")
                throw .invalidTensor(tensor: subject, problem: "negative dimension \(dimension) in shape [\(dims)]")
            }
            // Int is 64-bit on every supported platform, so an Int64 dimension always fits.
            shape.append(Int(dimension))
        }
        let count: Int
        do {
            count = try Shape.elementCount(shape)
        } catch {
            throw .invalidTensor(tensor: subject, problem: error.description)
        }
        // count <= 2^34 and byteSize <= 8, so this product cannot overflow.
        let byteCount = count * dataType.byteSize
        let layout = TensorLayout(subject: subject, dataType: dataType, shape: shape, count: count, byteCount: byteCount)

        if proto.pointee.has_data_location != 0,
           proto.pointee.data_location.rawValue == ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL.rawValue {
            return try decodeExternal(proto, layout)
        }
        if proto.pointee.has_raw_data != 0 {
            return try decodeRaw(proto, layout)
        }
        if let initializerIndex, let mappedWeights, let region = mappedWeights.region(initializerIndex) {
            let packed = matrixOperand && packMatrices && WeightPacking.fits(dataType: dataType, shape: shape)
            let rowPitch = matrixOperand && padMatrixRows && !packed ? MatrixRowPadding.rowPitch(dataType: dataType, shape: shape) : nil
            let transposed = !packed && packMatrices
                && patchStrides.map { WeightPacking.fitsTransposed(dataType: dataType, shape: shape, strides: $0) } == true
            return try mappedWeights.decode(region, index: initializerIndex, layout, rowPitch: rowPitch, packed: packed,
                                            packedTransposed: transposed)
        }
        return try decodeTyped(proto, layout)
    }

    // MARK: raw_data

    private func decodeRaw(_ proto: UnsafeMutablePointer<Onnx__TensorProto>, _ layout: TensorLayout) throws(ONNXLoadError) -> Tensor {
        let length = proto.pointee.raw_data.len
        guard length == layout.byteCount else {
            throw .invalidTensor(tensor: layout.subject, problem: "\(length) bytes of raw_data \(layout.describe) (expected \(layout.byteCount))")
        }
        guard layout.byteCount > 0, let data = proto.pointee.raw_data.data else {
            return try layout.zeros()
        }
        // glibc malloc returns 16-byte aligned blocks, which every element type and our SIMD
        // loads accept. Another allocator might not; then the one copy is an aligned one.
        guard Int(bitPattern: data) % 16 == 0 else {
            return try layout.copy(from: UnsafeRawPointer(data))
        }
        // Take the block over: with data NULL and len 0, free_unpacked will not free it.
        proto.pointee.raw_data.data = nil
        proto.pointee.raw_data.len = 0
        let storage = TensorStorage(pointer: UnsafeMutableRawPointer(data), byteCount: layout.byteCount, ownership: .malloced)
        if layout.dataType == .bool { normalizeBooleans(storage.pointer, count: layout.count) }
        return try layout.wrapping(storage)
    }

    // MARK: typed fields

    private func decodeTyped(_ proto: UnsafeMutablePointer<Onnx__TensorProto>, _ layout: TensorLayout) throws(ONNXLoadError) -> Tensor {
        let tensorProto = proto.pointee
        let typedCount = tensorProto.n_float_data + tensorProto.n_int32_data + tensorProto.n_int64_data
            + tensorProto.n_double_data + tensorProto.n_uint64_data + tensorProto.n_string_data
        if typedCount == 0 && layout.count > 0 {
            throw .invalidTensor(tensor: layout.subject, problem: "no data (no raw_data, typed values or external data) \(layout.describe)")
        }
        switch layout.dataType {
        case .float32:
            return try layout.copying(cArray(tensorProto.float_data, tensorProto.n_float_data), field: "float_data")
        case .float64:
            return try layout.copying(cArray(tensorProto.double_data, tensorProto.n_double_data), field: "double_data")
        case .int64:
            return try layout.copying(cArray(tensorProto.int64_data, tensorProto.n_int64_data), field: "int64_data")
        case .int32:
            return try layout.copying(cArray(tensorProto.int32_data, tensorProto.n_int32_data), field: "int32_data")
        // ONNX stores the narrow types widened to int32 (float16 as its 16 bit pattern).
        case .int8:
            return try layout.narrowing(cArray(tensorProto.int32_data, tensorProto.n_int32_data), to: Int8.self)
        case .uint8:
            return try layout.narrowing(cArray(tensorProto.int32_data, tensorProto.n_int32_data), to: UInt8.self)
        case .float16:
            return try layout.narrowing(cArray(tensorProto.int32_data, tensorProto.n_int32_data), to: UInt16.self)
        case .bool:
            let values = cArray(tensorProto.int32_data, tensorProto.n_int32_data)
            try layout.checkCount(values.count, field: "int32_data")
            return try layout.fill(UInt8.self) { buffer in
                for index in 0..<values.count { buffer[index] = values[index] != 0 ? 1 : 0 }
            }
        }
    }

    // MARK: external data

    private func decodeExternal(_ proto: UnsafeMutablePointer<Onnx__TensorProto>, _ layout: TensorLayout) throws(ONNXLoadError) -> Tensor {
        let subject = layout.subject
        var location: String?
        var offsetText: String?
        var lengthText: String?
        for entry in cArray(proto.pointee.external_data, proto.pointee.n_external_data) {
            guard let entry else { continue }
            let value = cString(entry.pointee.value)
            switch cString(entry.pointee.key) {
            case "location": location = value
            case "offset": offsetText = value
            case "length": lengthText = value
            default: break // checksum, basepath: not needed to read the bytes
            }
        }
        guard let location, !location.isEmpty else {
            throw .externalData(tensor: subject, problem: "no 'location' key")
        }
        let fileName = try checkedRelativePath(location, subject: subject)
        guard let baseDirectory else {
            throw .externalData(tensor: subject, problem: "location '\(location)' cannot be resolved: the model was loaded from memory without a base directory")
        }
        let path = baseDirectory.isEmpty ? fileName : baseDirectory + "/" + fileName
        let offset = try parseSize(offsetText, key: "offset", subject: subject) ?? 0

        let file: MappedFile
        if let cached = externalFiles[path] {
            file = cached
        } else {
            do {
                file = try MappedFile.map(path)
            } catch {
                let reason: String
                switch error {
                case .notFound: reason = "no such file"
                case .isDirectory: reason = "is a directory"
                case .system(let message): reason = message
                }
                throw .externalData(tensor: subject, problem: "cannot open '\(path)': \(reason)")
            }
            externalFiles[path] = file
        }
        guard offset <= file.size else {
            throw .externalData(tensor: subject, problem: "offset \(offset) is beyond the end of '\(location)' (\(file.size) bytes)")
        }
        // ONNX reads to the end of the file when no length is given.
        let length = try parseSize(lengthText, key: "length", subject: subject) ?? (file.size - offset)
        guard length <= file.size - offset else {
            throw .externalData(tensor: subject, problem: "offset \(offset) + length \(length) is beyond the end of '\(location)' (\(file.size) bytes)")
        }
        guard length == layout.byteCount else {
            throw .invalidTensor(tensor: subject, problem: "\(length) bytes of external data \(layout.describe) (expected \(layout.byteCount))")
        }
        guard layout.byteCount > 0, let base = file.base else {
            return try layout.zeros()
        }
        let start = base + offset
        // The mapping is read-only: booleans that are not 0/1 must be normalised in a copy,
        // and a misaligned start (small tensors packed back to back) is copied so typed loads are legal.
        let misaligned = Int(bitPattern: start) % layout.dataType.byteSize != 0
        if misaligned || (layout.dataType == .bool && !UnsafeRawBufferPointer(start: start, count: length).allSatisfy { $0 <= 1 }) {
            return try layout.copy(from: start)
        }
        let storage = TensorStorage(pointer: UnsafeMutableRawPointer(mutating: start), byteCount: length,
                                    ownership: .borrowed(keeper: file))
        return try layout.wrapping(storage)
    }

    /// Accepts only a path inside the model's directory: relative, without `..` components.
    private func checkedRelativePath(_ location: String, subject: String) throws(ONNXLoadError) -> String {
        let utf8 = Array(location.utf8)
        let hasDriveLetter = utf8.count >= 2 && utf8[1] == UInt8(ascii: ":")
        if location.hasPrefix("/") || location.hasPrefix("\\") || hasDriveLetter {
            throw .externalData(tensor: subject, problem: "location '\(location)' is absolute; it must be relative to the model's directory")
        }
        let components = location.split(whereSeparator: { $0 == "/" || $0 == "\\" })
        if components.contains(where: { $0 == ".." }) {
            throw .externalData(tensor: subject, problem: "location '\(location)' leaves the model's directory")
        }
        if location.utf8.contains(0) {
            throw .externalData(tensor: subject, problem: "location contains a NUL byte")
        }
        return components.filter { $0 != "." }.joined(separator: "/")
    }

    private func parseSize(_ text: String?, key: String, subject: String) throws(ONNXLoadError) -> Int? {
        guard let text else { return nil }
        guard !text.isEmpty, text.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }), let value = Int(text) else {
            throw .externalData(tensor: subject, problem: "\(key) '\(text)' is not a non-negative integer")
        }
        return value
    }
}

/// Initializer raw_data read where `WeightIndex` found it: in place in the file's mapping when it
/// is aligned for its element type, else from the `AlignedWeightCache` when that holds the same
/// bytes, else copied once into a `WeightArena` (and noted, so the cache can be written).
/// MatMul weights given a row pitch (`MatrixRowPadding`) are stored that way wherever they are
/// written: in the cache and in the arena.
final class MappedWeights {
    /// The whole serialized model (the file's mapping, or caller-owned memory).
    let bytes: UnsafeRawBufferPointer
    /// raw_data byte ranges in `bytes`, by initializer position.
    let ranges: [Range<Int>?]
    /// The file mapping that borrowed tensors keep alive; nil for models loaded from memory,
    /// whose bytes the caller may free after loading, so everything is copied.
    let mapping: MappedFile?
    /// Aligned copies of the misaligned initializers from an earlier load, if there is one.
    let cache: AlignedWeightCache?
    /// Whether a cache file will be written after loading (so padding an aligned weight now saves
    /// the copy on every later load).
    let cacheWritable: Bool
    /// Where copies go; nil if the reservation failed (then each copy is an ordinary allocation).
    /// Padding adds at most 1/32 to a matrix (64 bytes per row of at least 2 KB).
    private(set) lazy var arena: WeightArena? = {
        let contiguous = WeightArena.capacity(for: ranges.lazy.map { $0?.count ?? 0 })
        return WeightArena(capacity: contiguous + contiguous / 32)
    }()
    /// Initializers that had to be copied because no verified cache entry held them.
    private(set) var copied: [Int] = []
    /// How each initializer the cache should hold is laid out: the ones copied and the ones
    /// taken from the cache, by initializer position.
    private(set) var placements: [Int: AlignedWeightCache.Placement] = [:]

    init(bytes: UnsafeRawBufferPointer, ranges: [Range<Int>?], mapping: MappedFile?, cache: AlignedWeightCache? = nil,
         cacheWritable: Bool = false) {
        self.bytes = bytes
        self.ranges = ranges
        self.mapping = mapping
        self.cache = cache
        self.cacheWritable = cacheWritable
    }

    /// The raw_data of initializer `index`; nil when it has none.
    func region(_ index: Int) -> UnsafeRawBufferPointer? {
        guard index >= 0, index < ranges.count, let range = ranges[index] else { return nil }
        return UnsafeRawBufferPointer(rebasing: bytes[range])
    }

    /// `rowPitch` (elements, for a 2-D layout) asks for padded rows, `packed` for packed strips,
    /// `packedTransposed` for the packed strips of the transpose, where the bytes are written anyway.
    func decode(_ region: UnsafeRawBufferPointer, index: Int, _ layout: TensorLayout,
                rowPitch requestedPitch: Int? = nil, packed: Bool = false,
                packedTransposed: Bool = false) throws(ONNXLoadError) -> Tensor {
        guard region.count == layout.byteCount else {
            throw .invalidTensor(tensor: layout.subject, problem: "\(region.count) bytes of raw_data \(layout.describe) (expected \(layout.byteCount))")
        }
        guard layout.byteCount > 0, let start = region.baseAddress else { return try layout.zeros() }
        let placement = AlignedWeightCache.Placement(layout: layout, rowPitch: requestedPitch, packed: packed,
                                                     packedTransposed: packedTransposed)
        // Booleans are normalised to 0/1, which needs a writable copy; the mappings are read-only.
        if let mapping, layout.dataType != .bool {
            // An aligned weight is used in place unless padding or packing it now pays on every later load.
            if Int(bitPattern: start) % layout.dataType.byteSize == 0, !(placement.isRelaid && cacheWritable) {
                // With a trusted cache the model file was not populated as a whole (ONNXLoader.parse).
                if cache?.trusted == true { MappedFile.populate(region) }
                return try Self.borrow(start, layout, keeper: mapping)
            }
            if let cache, let cached = cache.verifiedRegion(index, placement: placement, equalTo: region),
               let cachedStart = cached.baseAddress {
                MemoryPages.release(region)
                placements[index] = placement
                return try Self.wrap(cachedStart, layout, placement, keeper: cache.mapping, fileBacked: true)
            }
        }
        let tensor: Tensor
        if let arena, let destination = arena.allocate(placement.span) {
            placement.copyRows(from: start, to: destination)
            if layout.dataType == .bool { normalizeBooleans(destination, count: layout.count) }
            tensor = try Self.wrap(destination, layout, placement, keeper: arena)
        } else {
            tensor = try layout.copy(from: start)
        }
        if mapping != nil {
            if layout.dataType != .bool {
                copied.append(index)
                placements[index] = placement
            }
            // A copied tensor is not resident twice: its source pages leave this process.
            MemoryPages.release(region)
        }
        return tensor
    }

    private static func borrow(_ start: UnsafeRawPointer, _ layout: TensorLayout, keeper: AnyObject & Sendable) throws(ONNXLoadError) -> Tensor {
        try layout.wrapping(TensorStorage(pointer: UnsafeMutableRawPointer(mutating: start), byteCount: layout.byteCount,
                                          ownership: .borrowed(keeper: keeper)))
    }

    /// A tensor over bytes laid out as `placement` says (contiguous, rows at a pitch, or packed strips).
    /// `fileBacked`: `start` lies in the weight cache's read-only private mapping (`PackedStrips.fileBacked`).
    private static func wrap(_ start: UnsafeRawPointer, _ layout: TensorLayout, _ placement: AlignedWeightCache.Placement,
                             keeper: AnyObject & Sendable, fileBacked: Bool = false) throws(ONNXLoadError) -> Tensor {
        let base = start.assumingMemoryBound(to: Float.self)
        switch placement.strips {
        case .matrix:
            let strips = PackedStrips(base: base, rows: placement.rows, columns: placement.columns, fileBacked: fileBacked)
            return try layout.wrapping(TensorStorage(packed: strips, keeper: keeper))
        case .transpose:
            // The strips hold the transpose: [K, M] for the tensor's [M, K] rows.
            let strips = PackedStrips(base: base, rows: placement.columns, columns: placement.rows, transposed: true,
                                      fileBacked: fileBacked)
            return try layout.wrapping(TensorStorage(packed: strips, keeper: keeper))
        case .none:
            break
        }
        guard placement.isPadded else { return try borrow(start, layout, keeper: keeper) }
        let rows = PaddedRows(base: start, rows: placement.rows, rowLength: placement.rowBytes / layout.dataType.byteSize,
                              rowPitch: placement.pitchBytes / layout.dataType.byteSize, elementSize: layout.dataType.byteSize)
        return try layout.wrapping(TensorStorage(padded: rows, keeper: keeper))
    }

}

/// What a tensor must look like, worked out from its dims and data type before any data is touched.
struct TensorLayout {
    let subject: String
    let dataType: DataType
    let shape: [Int]
    let count: Int
    let byteCount: Int

    /// "for shape [2,3] float32", used in every size message.
    var describe: String {
        "for shape [\(shape.map(String.init).joined(separator: ","))] \(dataType)"
    }

    func checkCount(_ actual: Int, field: String) throws(ONNXLoadError) {
        guard actual == count else {
            throw .invalidTensor(tensor: subject, problem: "\(actual) \(field) values \(describe) (expected \(count))")
        }
    }

    func checkRange(_ values: UnsafeBufferPointer<Int32>, _ range: ClosedRange<Int32>) throws(ONNXLoadError) {
        if let bad = values.first(where: { !range.contains($0) }) {
            throw .invalidTensor(tensor: subject, problem: "int32_data value \(bad) does not fit \(dataType)")
        }
    }

    func zeros() throws(ONNXLoadError) -> Tensor {
        do { return try Tensor.zeros(dataType, shape: shape) } catch { throw .invalidTensor(tensor: subject, problem: error.description) }
    }

    func uninitialized() throws(ONNXLoadError) -> Tensor {
        do { return try Tensor.uninitialized(dataType, shape: shape) } catch { throw .invalidTensor(tensor: subject, problem: error.description) }
    }

    func wrapping(_ storage: TensorStorage) throws(ONNXLoadError) -> Tensor {
        do {
            return try Tensor(dataType: dataType, shape: shape, storage: storage)
        } catch {
            throw .invalidTensor(tensor: subject, problem: error.description)
        }
    }

    /// A fresh tensor whose bytes are written by `body` through a buffer of `count` elements.
    /// A tensor holding `values` as they are, after checking their count (`field` names them in errors).
    func copying<Element>(_ values: UnsafeBufferPointer<Element>, field: String) throws(ONNXLoadError) -> Tensor {
        try checkCount(values.count, field: field)
        return try fill(Element.self) { _ = $0.initialize(from: values) }
    }

    /// A tensor of `Element` from int32_data values, each checked to fit `Element` (how ONNX stores
    /// int8, uint8 and float16 bit patterns).
    func narrowing<Element: FixedWidthInteger>(_ values: UnsafeBufferPointer<Int32>, to _: Element.Type) throws(ONNXLoadError) -> Tensor {
        try checkCount(values.count, field: "int32_data")
        try checkRange(values, Int32(Element.min)...Int32(Element.max))
        return try fill(Element.self) { buffer in
            for index in 0..<values.count { buffer[index] = Element(truncatingIfNeeded: values[index]) }
        }
    }

    func fill<Element>(_: Element.Type, _ body: (UnsafeMutableBufferPointer<Element>) -> Void) throws(ONNXLoadError) -> Tensor {
        let tensor = try uninitialized()
        let typed = tensor.storage.pointer.bindMemory(to: Element.self, capacity: count)
        body(UnsafeMutableBufferPointer(start: typed, count: count))
        return tensor
    }

    /// A fresh aligned tensor with `byteCount` bytes copied from `source`.
    func copy(from source: UnsafeRawPointer) throws(ONNXLoadError) -> Tensor {
        let tensor = try uninitialized()
        tensor.storage.pointer.copyMemory(from: source, byteCount: byteCount)
        if dataType == .bool { normalizeBooleans(tensor.storage.pointer, count: count) }
        return tensor
    }
}

/// Swift's Bool must be exactly 0 or 1 in memory; ONNX only says "nonzero is true".
@inline(__always)
func normalizeBooleans(_ pointer: UnsafeMutableRawPointer, count: Int) {
    let bytes = pointer.bindMemory(to: UInt8.self, capacity: count)
    for index in 0..<count where bytes[index] > 1 { bytes[index] = 1 }
}

/// NULL-safe conversion of a proto2 optional string (protobuf-c leaves absent ones NULL).
@inline(__always)
func cString(_ pointer: UnsafeMutablePointer<CChar>?) -> String {
    guard let pointer else { return "" }
    return String(cString: pointer)
}

/// A protobuf-c repeated field as a buffer; empty when the count is 0 or the pointer NULL.
@inline(__always)
func cArray<Element>(_ base: UnsafeMutablePointer<Element>?, _ count: Int) -> UnsafeBufferPointer<Element> {
    guard let base, count > 0 else { return UnsafeBufferPointer(start: nil, count: 0) }
    return UnsafeBufferPointer(start: base, count: count)
}
