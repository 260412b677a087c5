/// How the 8 frames are chosen from a video of N frames (spec pipeline.md §3).
public enum FrameSampling: Sendable, Equatable {
    /// ailia's rule: one uniformly random frame per segment, drawn with numpy's legacy
    /// `np.random.seed(seed)` + `np.random.randint(lo, hi)`, reproduced bit-exactly.
    case random(seed: UInt32)
    /// ActionCLIP's own test rule (`_get_val_indices`): deterministic segment centres.
    case center

    /// Number of frames the network consumes.
    public static let segmentCount = 8

    /// A fresh seed from the system's entropy source, for runs where the user gave none
    /// (return value so it can be reported and the run reproduced).
    public static func randomSeed() -> UInt32 {
        var generator = SystemRandomNumberGenerator()
        return UInt32.random(in: 0...UInt32.max, using: &generator)
    }

    /// The result of sampling: the 8 indices and an optional warning for short videos.
    public struct Selection: Sendable, Equatable {
        public let indices: [Int]
        /// Set when the video has fewer than 8 frames and some frames are reused.
        public let warning: String?
    }

    /// Segment bounds `round_half_even(linspace(0, N, 9))`. numpy's linspace computes
    /// `i * (N / 8) + 0` and sets the last value to N; N/8 is exact in float64 (a power-of-two
    /// division) and so is `i * step`, so the half-way ties are the true ones.
    public static func segmentBounds(frameCount: Int) -> [Int] {
        let step = Double(frameCount) / Double(segmentCount)
        var bounds = (0..<segmentCount).map { Int((Double($0) * step).rounded(.toNearestOrEven)) }
        bounds.append(frameCount)
        return bounds
    }

    /// Picks 8 frame indices from `frameCount` frames.
    ///
    /// - `.random`: segment i draws `randint(bounds[i], bounds[i+1])` from one MT19937 stream seeded
    ///   once. When a segment is empty (bounds equal, only possible for N < 8, where ailia itself
    ///   crashes with ValueError) it takes frame `max(bounds[i] - 1, 0)`, the last frame of the
    ///   previous segment, consumes no random number, and `warning` says so.
    /// - `.center`: for N > 8, `Int(Double(i) * N / 8 + (N / 8 - 1) / 2)` (float64, truncated, as
    ///   ActionCLIP's `_get_val_indices`); for N <= 8, `i * N / 8` (integer), ActionCLIP's short-video branch.
    /// Throws `FrameError.zeroFrames` for N == 0.
    public func select(frameCount: Int) throws(FrameError) -> Selection {
        guard frameCount > 0 else { throw .zeroFrames }
        let count = Self.segmentCount
        var warning: String? = nil
        if frameCount < count {
            warning = "the video has only \(frameCount) frames (fewer than \(count)); some frames are used more than once"
        }
        switch self {
        case .center:
            if frameCount <= count {
                return Selection(indices: (0..<count).map { $0 * frameCount / count }, warning: warning)
            }
            let n = Double(frameCount)
            let offset = (n / Double(count) - 1) / 2.0
            let indices = (0..<count).map { Int(Double($0) * n / Double(count) + offset) }
            return Selection(indices: indices, warning: nil)
        case .random(let seed):
            var generator = MersenneTwister(seed: seed)
            let bounds = Self.segmentBounds(frameCount: frameCount)
            var indices: [Int] = []
            for segment in 0..<count {
                let low = bounds[segment], high = bounds[segment + 1]
                if high <= low {
                    indices.append(max(low - 1, 0))
                } else {
                    indices.append(generator.legacyRandomInteger(low: low, high: high))
                }
            }
            return Selection(indices: indices, warning: warning)
        }
    }
}

/// MT19937 exactly as numpy's legacy `RandomState` uses it.
public struct MersenneTwister: Sendable {
    private var state = [UInt32](repeating: 0, count: 624)
    private var position = 624

    /// `np.random.seed(seed)`: classic `init_genrand`.
    public init(seed: UInt32) {
        state[0] = seed
        for index in 1..<624 {
            let previous = state[index - 1]
            state[index] = 1_812_433_253 &* (previous ^ (previous >> 30)) &+ UInt32(index)
        }
        position = 624
    }

    /// Next raw 32-bit output (`genrand_int32`).
    public mutating func next() -> UInt32 {
        if position >= 624 { regenerate() }
        var value = state[position]
        position += 1
        value ^= value >> 11
        value ^= (value << 7) & 0x9D2C_5680
        value ^= (value << 15) & 0xEFC6_0000
        value ^= value >> 18
        return value
    }

    /// `RandomState.randint(low, high)` (high exclusive, `low < high`): range = high-low-1;
    /// 0 returns `low` without drawing; otherwise masked rejection (mask = smallest 2^k-1 >= range)
    /// on 32-bit draws, or on 64-bit draws (`hi32 << 32 | lo32`) when range >= 2^32, as numpy does.
    public mutating func legacyRandomInteger(low: Int, high: Int) -> Int {
        let range = UInt64(high - low - 1)
        if range == 0 { return low }
        var mask = range
        mask |= mask >> 1; mask |= mask >> 2; mask |= mask >> 4; mask |= mask >> 8; mask |= mask >> 16; mask |= mask >> 32
        while true {
            let draw = range <= 0xFFFF_FFFF ? UInt64(next()) : (UInt64(next()) << 32 | UInt64(next()))
            let value = draw & mask
            if value <= range { return low + Int(value) }
        }
    }

    private mutating func regenerate() {
        let upper: UInt32 = 0x8000_0000, lower: UInt32 = 0x7FFF_FFFF
        for index in 0..<624 {
            let y = (state[index] & upper) | (state[(index + 1) % 624] & lower)
            var value = state[(index + 397) % 624] ^ (y >> 1)
            if y & 1 != 0 { value ^= 0x9908_B0DF }
            state[index] = value
        }
        position = 0
    }
}
