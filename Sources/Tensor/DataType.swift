/// Element types a tensor can hold.
///
/// Raw values are ONNX `TensorProto.DataType` codes, so a `Cast(to:)` attribute or an
/// initializer's `data_type` maps onto this enum directly. The engine computes in
/// `float32`, `int64` and `bool`; the other types exist so that files, `.npy` inputs
/// and `Cast` can carry them in and out.
public enum DataType: Int32, Sendable, CaseIterable, CustomStringConvertible {
    case float32 = 1
    case uint8 = 2
    case int8 = 3
    case int32 = 6
    case int64 = 7
    case bool = 9
    case float16 = 10
    case float64 = 11

    /// Bytes per element.
    public var byteSize: Int {
        switch self {
        case .uint8, .int8, .bool: return 1
        case .float16: return 2
        case .float32, .int32: return 4
        case .int64, .float64: return 8
        }
    }

    /// ONNX spelling, as in error messages and `inspect` output.
    public var description: String {
        switch self {
        case .float32: return "float32"
        case .uint8: return "uint8"
        case .int8: return "int8"
        case .int32: return "int32"
        case .int64: return "int64"
        case .bool: return "bool"
        case .float16: return "float16"
        case .float64: return "float64"
        }
    }

    /// Name of an ONNX data type code, including the ones this engine does not support.
    public static func onnxName(code: Int32) -> String {
        if let known = DataType(rawValue: code) { return known.description }
        let names: [Int32: String] = [
            0: "undefined", 4: "uint16", 5: "int16", 8: "string", 12: "uint32", 13: "uint64",
            14: "complex64", 15: "complex128", 16: "bfloat16", 17: "float8e4m3fn", 18: "float8e4m3fnuz",
            19: "float8e5m2", 20: "float8e5m2fnuz", 21: "uint4", 22: "int4", 23: "float4e2m1",
        ]
        return names[code] ?? "data type \(code)"
    }
}
