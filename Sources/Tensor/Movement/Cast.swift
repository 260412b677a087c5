/// How a source value is read for a cast: integers (and bool as 0/1) exactly as `Int64`,
/// floating values exactly as `Double`.
enum MovementCastKind { case integer, floating }

/// Element types `Movement.cast` converts between. Every conversion goes through `Int64` or
/// `Double`, both of which hold every source value exactly, so each cast rounds at most once.
protocol MovementCastElement: TensorElement {
    static var castKind: MovementCastKind { get }
    var integerValue: Int64 { get }
    var floatingValue: Double { get }
    init(castingInteger value: Int64)
    init(castingFloating value: Double)
}

/// float -> int64 as x86-64 `cvttsd2si` does (and so numpy's `astype` and ONNX Runtime on
/// x86-64): truncate toward zero; NaN, infinities and values outside the range give `Int64.min`.
@inline(__always)
fileprivate func truncatedInt64(_ value: Double) -> Int64 {
    guard value >= -9.223372036854775808e18, value < 9.223372036854775808e18 else { return Int64.min }
    return Int64(value)
}

/// float -> int32 likewise (`Int32.min` for NaN and out-of-range). The 8-bit types are reached
/// through this and then wrap, which is what numpy and ONNX Runtime produce on x86-64
/// (e.g. 300.5 -> uint8 44, -1.7 -> uint8 255, NaN -> 0).
@inline(__always)
fileprivate func truncatedInt32(_ value: Double) -> Int32 {
    guard value >= -2147483648.0, value < 2147483648.0 else { return Int32.min }
    return Int32(value)
}

extension Float: MovementCastElement {
    static var castKind: MovementCastKind { .floating }
    var integerValue: Int64 { 0 }
    var floatingValue: Double { Double(self) }
    init(castingInteger value: Int64) { self.init(value) }
    init(castingFloating value: Double) { self.init(value) }
}
extension Double: MovementCastElement {
    static var castKind: MovementCastKind { .floating }
    var integerValue: Int64 { 0 }
    var floatingValue: Double { self }
    init(castingInteger value: Int64) { self.init(value) }
    init(castingFloating value: Double) { self = value }
}
#if !((os(macOS) || targetEnvironment(macCatalyst)) && arch(x86_64))
extension Float16: MovementCastElement {
    static var castKind: MovementCastKind { .floating }
    var integerValue: Int64 { 0 }
    var floatingValue: Double { Double(self) }
    // Direct conversions round once (round-to-nearest-even); values beyond 65504 become inf.
    init(castingInteger value: Int64) { self.init(value) }
    init(castingFloating value: Double) { self.init(value) }
}
#endif
extension Int64: MovementCastElement {
    static var castKind: MovementCastKind { .integer }
    var integerValue: Int64 { self }
    var floatingValue: Double { 0 }
    init(castingInteger value: Int64) { self = value }
    init(castingFloating value: Double) { self = truncatedInt64(value) }
}
extension Int32: MovementCastElement {
    static var castKind: MovementCastKind { .integer }
    var integerValue: Int64 { Int64(self) }
    var floatingValue: Double { 0 }
    init(castingInteger value: Int64) { self.init(truncatingIfNeeded: value) }
    init(castingFloating value: Double) { self = truncatedInt32(value) }
}
extension Int8: MovementCastElement {
    static var castKind: MovementCastKind { .integer }
    var integerValue: Int64 { Int64(self) }
    var floatingValue: Double { 0 }
    init(castingInteger value: Int64) { self.init(truncatingIfNeeded: value) }
    init(castingFloating value: Double) { self.init(truncatingIfNeeded: truncatedInt32(value)) }
}
extension UInt8: MovementCastElement {
    static var castKind: MovementCastKind { .integer }
    var integerValue: Int64 { Int64(self) }
    var floatingValue: Double { 0 }
    init(castingInteger value: Int64) { self.init(truncatingIfNeeded: value) }
    init(castingFloating value: Double) { self.init(truncatingIfNeeded: truncatedInt32(value)) }
}
extension Bool: MovementCastElement {
    static var castKind: MovementCastKind { .integer }
    var integerValue: Int64 { self ? 1 : 0 }
    var floatingValue: Double { 0 }
    init(castingInteger value: Int64) { self = value != 0 }
    // NaN != 0, so NaN casts to true (as in numpy and C++).
    init(castingFloating value: Double) { self = value != 0 }
}

extension Movement {
    /// Converts every element to `type` (ONNX Cast), for every pair of `DataType` cases.
    ///
    /// Rules: integer -> integer wraps (two's complement, like C and numpy); float -> integer
    /// truncates toward zero, with NaN, +-inf and out-of-range values following x86-64 / numpy /
    /// ONNX Runtime (`Int64.min` for int64, `Int32.min` for int32, then wrapped for int8/uint8, so
    /// NaN -> 0 there); anything -> bool is `!= 0` (NaN -> true); bool -> number is 0/1; float
    /// narrowing rounds to nearest even (float16 overflows to inf). Casting to the same type
    /// returns the input itself (tensors are immutable, so sharing is safe).
    public static func cast(_ tensor: Tensor, to type: DataType) throws(MovementError) -> Tensor {
        if type == tensor.dataType { return tensor }
        let output = try movementTensorCall { () throws(TensorError) in try Tensor.uninitialized(type, shape: tensor.shape) }
        try castFrom(tensor, into: output)
        return output
    }

    private static func castFrom(_ tensor: Tensor, into output: Tensor) throws(MovementError) {
        switch tensor.dataType {
        case .float32: try castInto(tensor.elements(Float.self), output)
        case .float64: try castInto(tensor.elements(Double.self), output)
        case .int64: try castInto(tensor.elements(Int64.self), output)
        case .int32: try castInto(tensor.elements(Int32.self), output)
        case .int8: try castInto(tensor.elements(Int8.self), output)
        case .uint8: try castInto(tensor.elements(UInt8.self), output)
        case .bool: try castInto(tensor.elements(Bool.self), output)
        case .float16:
            #if !((os(macOS) || targetEnvironment(macCatalyst)) && arch(x86_64))
            try castInto(tensor.elements(Float16.self), output)
            #else
            throw .invalidArgument("float16 is not supported on this platform")
            #endif
        }
    }

    private static func castInto<Source: MovementCastElement>(_ source: UnsafeBufferPointer<Source>, _ output: Tensor) throws(MovementError) {
        switch output.dataType {
        case .float32: castLoop(source, output.mutableElements(Float.self))
        case .float64: castLoop(source, output.mutableElements(Double.self))
        case .int64: castLoop(source, output.mutableElements(Int64.self))
        case .int32: castLoop(source, output.mutableElements(Int32.self))
        case .int8: castLoop(source, output.mutableElements(Int8.self))
        case .uint8: castLoop(source, output.mutableElements(UInt8.self))
        case .bool: castLoop(source, output.mutableElements(Bool.self))
        case .float16:
            #if !((os(macOS) || targetEnvironment(macCatalyst)) && arch(x86_64))
            castLoop(source, output.mutableElements(Float16.self))
            #else
            throw .invalidArgument("float16 is not supported on this platform")
            #endif
        }
    }

    @inline(__always)
    private static func castLoop<Source: MovementCastElement, Destination: MovementCastElement>(
        _ source: UnsafeBufferPointer<Source>, _ destination: UnsafeMutableBufferPointer<Destination>
    ) {
        switch Source.castKind {
        case .integer:
            for index in source.indices { destination[index] = Destination(castingInteger: source[index].integerValue) }
        case .floating:
            for index in source.indices { destination[index] = Destination(castingFloating: source[index].floatingValue) }
        }
    }
}
