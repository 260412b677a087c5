import Tensor

/// Seeded SplitMix64 generator: fast, reproducible test data (`Float.random` makes a syscall per value).
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    /// Uniform float in [low, high).
    mutating func float(_ low: Float = -1, _ high: Float = 1) -> Float {
        low + (high - low) * Float(next() >> 40) / Float(1 << 24)
    }
    mutating func floats(_ count: Int, _ low: Float = -1, _ high: Float = 1) -> [Float] {
        (0..<count).map { _ in float(low, high) }
    }
}

/// A float tensor of the given shape filled from `generator`.
func randomTensor(_ shape: [Int], _ generator: inout SplitMix64, _ low: Float = -1, _ high: Float = 1) throws -> Tensor {
    let count = shape.reduce(1, *)
    return try Tensor(generator.floats(count, low, high), shape: shape)
}

/// Largest |a - b| / max(1, |b|) over two arrays (mixed absolute/relative error); NaN positions must match.
func maxMixedError(_ a: [Float], _ b: [Float]) -> Float {
    precondition(a.count == b.count, "compared arrays differ in length: \(a.count) vs \(b.count)")
    var worst: Float = 0
    for index in a.indices {
        if a[index].isNaN || b[index].isNaN {
            if a[index].isNaN != b[index].isNaN { return .infinity }
            continue
        }
        if a[index] == b[index] { continue }
        worst = max(worst, abs(a[index] - b[index]) / max(1, abs(b[index])))
    }
    return worst
}
