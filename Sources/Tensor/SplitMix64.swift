/// A small, fast, seeded random number generator (SplitMix64) for test data and benchmarks.
///
/// `Float.random(in:)` with the default generator makes one `getrandom` system call per value,
/// which turned filling 30M floats into 13 s of system time; this generator is a few
/// instructions per value and reproducible from its seed.
public struct SplitMix64: RandomNumberGenerator, Sendable {
    public var state: UInt64

    /// Starts the sequence at `seed` (the same seed always gives the same sequence).
    public init(seed: UInt64) { state = seed }

    /// The next 64 pseudo-random bits.
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// Uniform in [0, 1), from the top 24 bits (exactly representable as Float).
    public mutating func unit() -> Float { Float(next() >> 40) / Float(1 << 24) }

    /// Uniform in [low, high).
    public mutating func float(_ low: Float = -1, _ high: Float = 1) -> Float { low + (high - low) * unit() }

    /// `count` values uniform in [low, high).
    public mutating func floats(_ count: Int, _ low: Float = -1, _ high: Float = 1) -> [Float] {
        (0..<count).map { _ in float(low, high) }
    }
}
