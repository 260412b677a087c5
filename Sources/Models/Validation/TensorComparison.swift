import Tensor

/// How far a computed tensor is from a reference tensor.
///
/// `maxAbsolute` is max |a − b|. `maxRelative` is max |a − b| / max |b|: the error relative to the
/// tensor's own scale. An elementwise ratio would be dominated by entries that cancel to nearly zero
/// (LayerNorm's x − mean, attention logits near 0), where float32 summation order alone moves
/// the last bits; the scale-relative figure is what "agrees to 1e-5" means for a whole tensor.
/// Matching infinities (the causal mask's −inf) count as equal; a NaN matches only a NaN.
public struct TensorComparison: Sendable {
    public var shapeMatches: Bool
    public var dataTypeMatches: Bool
    public var maxAbsolute: Double
    public var maxRelative: Double
    /// max |b| over the finite reference elements: the scale `maxRelative` is relative to.
    public var referenceScale: Double
    /// Elements where one side is non-finite and the other differs (NaN vs number, +inf vs −inf...).
    public var nonFiniteMismatches: Int
    public var count: Int
    public var actualShape: [Int]
    public var expectedShape: [Int]

    /// Compares element by element. Integer and bool tensors compare exactly (as numbers).
    public init(actual: Tensor, expected: Tensor) {
        actualShape = actual.shape
        expectedShape = expected.shape
        shapeMatches = actual.shape == expected.shape
        dataTypeMatches = actual.dataType == expected.dataType
        maxAbsolute = 0
        maxRelative = 0
        referenceScale = 0
        nonFiniteMismatches = 0
        count = expected.count
        guard shapeMatches, let left = Self.asDoubles(actual), let right = Self.asDoubles(expected) else {
            if !shapeMatches { maxAbsolute = .infinity; maxRelative = .infinity }
            return
        }
        var scale = 0.0
        for index in 0..<right.count {
            let a = left[index]
            let b = right[index]
            if b.isFinite { scale = Swift.max(scale, Swift.abs(b)) }
            if a.isFinite && b.isFinite {
                maxAbsolute = Swift.max(maxAbsolute, Swift.abs(a - b))
            } else if !(a == b || (a.isNaN && b.isNaN)) {
                nonFiniteMismatches += 1
            }
        }
        referenceScale = scale
        maxRelative = scale > 0 ? maxAbsolute / scale : (maxAbsolute > 0 ? .infinity : 0)
    }

    /// Passes when shapes and element types agree, no non-finite mismatch exists and
    /// max|a − b| ≤ absoluteTolerance + relativeTolerance · max|b|.
    public func passes(relativeTolerance: Double, absoluteTolerance: Double) -> Bool {
        guard shapeMatches, dataTypeMatches, nonFiniteMismatches == 0 else { return false }
        return maxAbsolute <= absoluteTolerance + relativeTolerance * referenceScale
    }

    /// Widens any supported element type to Double for comparison.
    static func asDoubles(_ tensor: Tensor) -> [Double]? {
        switch tensor.dataType {
        case .float32: return tensor.floats.map(Double.init)
        case .float64: return Array(tensor.elements(Double.self))
        case .int64: return tensor.int64s.map(Double.init)
        case .int32: return tensor.elements(Int32.self).map(Double.init)
        case .uint8: return tensor.elements(UInt8.self).map(Double.init)
        case .int8: return tensor.elements(Int8.self).map(Double.init)
        case .bool: return tensor.bools.map { $0 ? 1 : 0 }
        case .float16:
            #if !((os(macOS) || targetEnvironment(macCatalyst)) && arch(x86_64))
            return tensor.elements(Float16.self).map(Double.init)
            #else
            return nil
            #endif
        }
    }
}
