/// Errors raised while creating or reshaping tensors. Each carries enough text to be
/// shown to a user as one line.
public enum TensorError: Error, CustomStringConvertible, Equatable {
    case negativeDimension([Int])
    case tooLarge(shape: [Int], limit: Int)
    case allocationFailed(bytes: Int)
    case storageTooSmall(needed: Int, available: Int)
    case countMismatch(shape: [Int], count: Int)
    case typeMismatch(expected: DataType, actual: DataType)

    public var description: String {
        switch self {
        case .negativeDimension(let shape):
            return "negative dimension in shape \(shape)"
        case .tooLarge(let shape, let limit):
            return "shape \(shape) has more than \(limit) elements (the engine's limit)"
        case .allocationFailed(let bytes):
            return "could not allocate \(bytes) bytes"
        case .storageTooSmall(let needed, let available):
            return "tensor needs \(needed) bytes but its storage holds \(available)"
        case .countMismatch(let shape, let count):
            return "shape \(shape) does not hold \(count) elements"
        case .typeMismatch(let expected, let actual):
            return "expected a \(expected) tensor, got \(actual)"
        }
    }
}

/// Shape arithmetic that never overflows silently.
public enum Shape {
    /// Largest element count of one tensor (2^34, i.e. 64 GiB of float32). A file that declares
    /// more is corrupt or hostile; the check happens before any allocation.
    public static let maximumElementCount = 1 << 34

    /// Product of the dimensions, checked for negative values and overflow.
    public static func elementCount(_ shape: [Int]) throws(TensorError) -> Int {
        var count = 1
        for dimension in shape {
            guard dimension >= 0 else { throw .negativeDimension(shape) }
            let (product, overflow) = count.multipliedReportingOverflow(by: dimension)
            guard !overflow, product <= maximumElementCount else {
                throw .tooLarge(shape: shape, limit: maximumElementCount)
            }
            count = product
        }
        return count
    }

    /// Row-major strides in elements.
    public static func strides(_ shape: [Int]) -> [Int] {
        var strides = [Int](repeating: 1, count: shape.count)
        var running = 1
        for axis in stride(from: shape.count - 1, through: 0, by: -1) {
            strides[axis] = running
            running *= shape[axis]
        }
        return strides
    }
}

/// A dense, row-major (C order) n-dimensional array.
///
/// Tensors are values over shared, reference-counted `TensorStorage`. They are never
/// strided views: every op that changes the element order writes a new contiguous tensor,
/// which keeps kernels simple and lets them hand whole buffers to BLAS. Reshapes share storage.
///
/// Mutation through the `mutable…` accessors is only allowed on a tensor the caller has just
/// created and not yet shared (kernels writing their own output).
public struct Tensor: @unchecked Sendable {
    public let dataType: DataType
    public let shape: [Int]
    public let storage: TensorStorage
    /// Number of elements (product of `shape`; 1 for a scalar).
    public let count: Int

    public var rank: Int { shape.count }
    public var byteCount: Int { count * dataType.byteSize }
    public var isScalar: Bool { shape.isEmpty }

    /// Wraps existing storage, checking that it is large enough.
    public init(dataType: DataType, shape: [Int], storage: TensorStorage) throws(TensorError) {
        let count = try Shape.elementCount(shape)
        let needed = count * dataType.byteSize
        guard storage.byteCount >= needed else {
            throw .storageTooSmall(needed: needed, available: storage.byteCount)
        }
        self.dataType = dataType
        self.shape = shape
        self.storage = storage
        self.count = count
    }

    /// A tensor with freshly allocated, uninitialised contents.
    public static func uninitialized(_ dataType: DataType, shape: [Int]) throws(TensorError) -> Tensor {
        let count = try Shape.elementCount(shape)
        let bytes = count * dataType.byteSize
        if let allocator = TensorAllocation.current, let storage = allocator.allocate(byteCount: bytes) {
            return try Tensor(dataType: dataType, shape: shape, storage: storage)
        }
        guard let storage = TensorStorage(allocating: bytes) else { throw .allocationFailed(bytes: bytes) }
        return try Tensor(dataType: dataType, shape: shape, storage: storage)
    }

    /// A tensor filled with zero bytes (0.0, 0, false).
    public static func zeros(_ dataType: DataType, shape: [Int]) throws(TensorError) -> Tensor {
        let tensor = try uninitialized(dataType, shape: shape)
        tensor.storage.pointer.initializeMemory(as: UInt8.self, repeating: 0, count: tensor.byteCount)
        return tensor
    }

    /// Copies a Swift array into a new tensor.
    public init<Element: TensorElement>(_ values: [Element], shape: [Int]) throws(TensorError) {
        let count = try Shape.elementCount(shape)
        guard count == values.count else { throw .countMismatch(shape: shape, count: values.count) }
        self = try Tensor.uninitialized(Element.dataType, shape: shape)
        let destination = storage.pointer.bindMemory(to: Element.self, capacity: count)
        values.withUnsafeBufferPointer { source in
            if let base = source.baseAddress { destination.update(from: base, count: count) }
        }
    }

    /// A 0-d tensor.
    public init<Element: TensorElement>(scalar: Element) {
        // A one-element allocation cannot exceed any limit; failure here means the process is out of memory.
        guard let tensor = try? Tensor([scalar], shape: []) else { fatalError("out of memory allocating a scalar") }
        self = tensor
    }

    /// The same storage seen with another shape holding the same number of elements.
    public func reshaped(_ newShape: [Int]) throws(TensorError) -> Tensor {
        let newCount = try Shape.elementCount(newShape)
        guard newCount == count else { throw .countMismatch(shape: newShape, count: count) }
        return try Tensor(dataType: dataType, shape: newShape, storage: storage)
    }

    // MARK: Typed access

    /// Read-only typed view. Traps if `Element` does not match `dataType`: callers check the
    /// data type (and throw) before reaching kernels, so a mismatch here is a programming error.
    @inline(__always)
    public func elements<Element: TensorElement>(_: Element.Type = Element.self) -> UnsafeBufferPointer<Element> {
        precondition(Element.dataType == dataType, "tensor is \(dataType), accessed as \(Element.dataType)")
        return UnsafeBufferPointer(start: storage.pointer.assumingMemoryBound(to: Element.self), count: count)
    }

    /// Writable typed view, for a tensor the caller created and has not shared yet.
    @inline(__always)
    public func mutableElements<Element: TensorElement>(_: Element.Type = Element.self) -> UnsafeMutableBufferPointer<Element> {
        precondition(Element.dataType == dataType, "tensor is \(dataType), accessed as \(Element.dataType)")
        return UnsafeMutableBufferPointer(start: storage.pointer.assumingMemoryBound(to: Element.self), count: count)
    }

    @inline(__always) public var floats: UnsafeBufferPointer<Float> { elements(Float.self) }
    @inline(__always) public var int64s: UnsafeBufferPointer<Int64> { elements(Int64.self) }
    @inline(__always) public var bools: UnsafeBufferPointer<Bool> { elements(Bool.self) }
    @inline(__always) public var mutableFloats: UnsafeMutableBufferPointer<Float> { mutableElements(Float.self) }
    @inline(__always) public var mutableInt64s: UnsafeMutableBufferPointer<Int64> { mutableElements(Int64.self) }
    @inline(__always) public var mutableBools: UnsafeMutableBufferPointer<Bool> { mutableElements(Bool.self) }

    /// A float32 tensor as matrix rows for a GEMM kernel: where the first row starts and how many
    /// elements apart rows start, each row being the last dimension. Storage of `PaddedRows` seen
    /// with that row length gives its pitch without a copy; everything else is contiguous (pitch =
    /// last dimension). Nil for an empty tensor or a rank-0 one.
    public func floatMatrixRows() -> (base: UnsafePointer<Float>, rowPitch: Int)? {
        precondition(dataType == .float32, "tensor is \(dataType), accessed as float32 rows")
        guard let rowLength = shape.last, count > 0 else { return nil }
        if let padded = storage.padded, padded.elementSize == MemoryLayout<Float>.size,
           padded.rowLength == rowLength, padded.rows * rowLength == count {
            return (padded.base.assumingMemoryBound(to: Float.self), padded.rowPitch)
        }
        return floats.baseAddress.map { ($0, rowLength) }
    }

    /// Copies the elements out into an array (for tests and small shape tensors).
    public func toArray<Element: TensorElement>(_: Element.Type = Element.self) throws(TensorError) -> [Element] {
        guard Element.dataType == dataType else { throw .typeMismatch(expected: Element.dataType, actual: dataType) }
        return Array(elements(Element.self))
    }

    /// Copies this tensor into fresh storage (used before handing a tensor to code that will mutate it).
    public func copy() throws(TensorError) -> Tensor {
        let result = try Tensor.uninitialized(dataType, shape: shape)
        result.storage.pointer.copyMemory(from: storage.pointer, byteCount: byteCount)
        return result
    }
}

/// Swift scalar types that map one-to-one onto a `DataType`.
public protocol TensorElement: Sendable {
    static var dataType: DataType { get }
}
extension Float: TensorElement { public static var dataType: DataType { .float32 } }
extension Double: TensorElement { public static var dataType: DataType { .float64 } }
extension Int64: TensorElement { public static var dataType: DataType { .int64 } }
extension Int32: TensorElement { public static var dataType: DataType { .int32 } }
extension UInt8: TensorElement { public static var dataType: DataType { .uint8 } }
extension Int8: TensorElement { public static var dataType: DataType { .int8 } }
extension Bool: TensorElement { public static var dataType: DataType { .bool } }
#if !((os(macOS) || targetEnvironment(macCatalyst)) && arch(x86_64))
extension Float16: TensorElement { public static var dataType: DataType { .float16 } }
#endif
