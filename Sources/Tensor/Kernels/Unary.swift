#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Elementwise functions of one tensor. The output has the input's shape and element type.
public enum UnaryOperation: String, Sendable, CaseIterable {
    case sqrt, sigmoid, exp, erf, tanh, relu, neg

    /// Element types the operation accepts.
    public var supportedTypes: [DataType] {
        self == .neg ? [.float32, .int64] : [.float32]
    }
}

/// Applies `operation` to every element of `x` (float32; `neg` also int64, wrapping Int64.min).
///
/// Accuracy (float32): sqrt exact; exp ~1.5e-7 relative (flushes results below 3e-38 to 0);
/// sigmoid and tanh ~2e-7; erf ~2e-7 absolute. NaN inputs give NaN, including relu.
public func unary(_ operation: UnaryOperation, _ x: Tensor) throws(KernelError) -> Tensor {
    try kernelRequire(x, operation.supportedTypes, "\(operation) input")
    let output = try kernelOutput(x.dataType, x.shape)
    if x.dataType == .int64 {
        let source = x.int64s, destination = output.mutableInt64s
        for index in 0..<x.count { destination[index] = 0 &- source[index] }
        return output
    }
    guard let source = x.floats.baseAddress, let destination = output.mutableFloats.baseAddress else { return output }
    Threading.parallelFor(0..<x.count, minimumChunk: Threading.elementwiseChunk) { range in
        let input = source + range.lowerBound, result = destination + range.lowerBound
        let count = range.count
        switch operation {
        case .sqrt:
            for index in 0..<count { result[index] = input[index].squareRoot() }
        case .neg:
            for index in 0..<count { result[index] = -input[index] }
        case .relu:
            // `x < 0 ? 0 : x` keeps NaN (a plain max(x, 0) would turn it into 0).
            for index in 0..<count { result[index] = input[index] < 0 ? 0 : input[index] }
        case .exp:
            VectorMath.exp(input, result, count: count)
        case .sigmoid:
            VectorMath.sigmoid(input, result, count: count)
        case .tanh:
            VectorMath.tanh(input, result, count: count)
        case .erf:
            VectorMath.erf(input, result, count: count)
        }
    }
    return output
}

/// Logical not of a bool tensor.
public func logicalNot(_ x: Tensor) throws(KernelError) -> Tensor {
    try kernelRequire(x, [.bool], "Not input")
    let output = try kernelOutput(.bool, x.shape)
    let source = x.bools, destination = output.mutableBools
    for index in 0..<x.count { destination[index] = !source[index] }
    return output
}

extension ReferenceKernels {
    /// Per-element libm version of `unary` (float32 computed in Double).
    public static func unary(_ operation: UnaryOperation, _ values: [Float]) -> [Float] {
        values.map { value in
            let x = Double(value)
            switch operation {
            case .sqrt: return Float(x.squareRoot())
            case .sigmoid: return Float(1 / (1 + LibM.exp(-x)))
            case .exp: return Float(LibM.exp(x))
            case .erf: return Float(LibM.erf(x))
            case .tanh: return Float(LibM.tanh(x))
            case .relu: return value < 0 ? 0 : value
            case .neg: return -value
            }
        }
    }
}


/// Double-precision libm calls under names that members like `UnaryOperation.exp` cannot shadow.
enum LibM {
    @inline(__always) static func exp(_ x: Double) -> Double { CMathFunctions.exp(x) }
    @inline(__always) static func erf(_ x: Double) -> Double { CMathFunctions.erf(x) }
    @inline(__always) static func tanh(_ x: Double) -> Double { CMathFunctions.tanh(x) }
    @inline(__always) static func pow(_ x: Double, _ y: Double) -> Double { CMathFunctions.pow(x, y) }
}
