import Foundation
import Tensor

/// Summary numbers of one tensor, as printed by `action-clip run --trace`: element count, the
/// minimum, maximum and mean of its finite elements, and how many elements are NaN or ±Inf.
///
/// Float tensors are reduced with SIMD; int64, int32 and bool tensors are widened to Double
/// (they never hold NaN or Inf). Other element types report only their count.
public struct TensorStatistics: Sendable, Equatable, CustomStringConvertible {
    public var count: Int
    /// Over finite elements only; nil when there are none.
    public var minimum: Double?
    public var maximum: Double?
    public var mean: Double?
    public var nanCount: Int
    public var infinityCount: Int

    /// Statistics as computed; minimum, maximum and mean are nil when no element is finite.
    public init(count: Int, minimum: Double?, maximum: Double?, mean: Double?, nanCount: Int, infinityCount: Int) {
        self.count = count
        self.minimum = minimum
        self.maximum = maximum
        self.mean = mean
        self.nanCount = nanCount
        self.infinityCount = infinityCount
    }

    /// Statistics of `tensor` (fast path for float32).
    public init(_ tensor: Tensor) {
        switch tensor.dataType {
        case .float32:
            self = Self.floats(tensor.floats)
        case .int64:
            self = Self.integers(tensor.int64s.lazy.map(Double.init))
        case .int32:
            self = Self.integers(tensor.elements(Int32.self).lazy.map(Double.init))
        case .bool:
            self = Self.integers(tensor.bools.lazy.map { $0 ? 1.0 : 0.0 })
        default:
            self = TensorStatistics(count: tensor.count, minimum: nil, maximum: nil, mean: nil, nanCount: 0, infinityCount: 0)
        }
    }

    /// One line: `min=… max=… mean=… nan=… inf=…` (finite statistics as `-` when there are none).
    public var description: String {
        func format(_ value: Double?) -> String { value.map { String(format: "%.6g", $0) } ?? "-" }
        return "min=\(format(minimum)) max=\(format(maximum)) mean=\(format(mean)) nan=\(nanCount) inf=\(infinityCount)"
    }

    static func integers<Values: Sequence>(_ values: Values) -> TensorStatistics where Values.Element == Double {
        var count = 0
        var low = Double.infinity
        var high = -Double.infinity
        var sum = 0.0
        for value in values {
            count += 1
            low = Swift.min(low, value)
            high = Swift.max(high, value)
            sum += value
        }
        return TensorStatistics(count: count, minimum: count > 0 ? low : nil, maximum: count > 0 ? high : nil,
                                mean: count > 0 ? sum / Double(count) : nil, nanCount: 0, infinityCount: 0)
    }

    /// SIMD16 pass with two accumulators each. Sums are kept in Float within blocks of 4096
    /// elements and carried in Double across blocks, so the mean of millions of elements keeps
    /// about seven significant digits without paying for Double lanes.
    static func floats(_ values: UnsafeBufferPointer<Float>) -> TensorStatistics {
        let count = values.count
        var low = Float.infinity
        var high = -Float.infinity
        var sum = 0.0
        var finiteCount = 0
        var nanCount = 0
        var nonFiniteCount = 0
        let blockLength = 4096
        var blockStart = 0
        while blockStart < count {
            let blockEnd = Swift.min(count, blockStart + blockLength)
            let block = UnsafeBufferPointer(rebasing: values[blockStart..<blockEnd])
            let partial = floatBlock(block)
            low = Swift.min(low, partial.low)
            high = Swift.max(high, partial.high)
            sum += Double(partial.sum)
            nanCount += partial.nanCount
            nonFiniteCount += partial.nonFiniteCount
            blockStart = blockEnd
        }
        finiteCount = count - nonFiniteCount
        return TensorStatistics(count: count, minimum: finiteCount > 0 ? Double(low) : nil,
                                maximum: finiteCount > 0 ? Double(high) : nil,
                                mean: finiteCount > 0 ? sum / Double(finiteCount) : nil,
                                nanCount: nanCount, infinityCount: nonFiniteCount - nanCount)
    }

    @inline(__always)
    static func floatBlock(_ block: UnsafeBufferPointer<Float>) -> (low: Float, high: Float, sum: Float, nanCount: Int, nonFiniteCount: Int) {
        typealias Vector = SIMD16<Float>
        var low0 = Vector(repeating: .infinity), low1 = low0
        var high0 = Vector(repeating: -.infinity), high1 = high0
        var sum0 = Vector(), sum1 = Vector()
        var nan0 = SIMD16<Int32>(), nan1 = SIMD16<Int32>()
        var bad0 = SIMD16<Int32>(), bad1 = SIMD16<Int32>()
        let one = SIMD16<Int32>(repeating: 1)
        let zero = SIMD16<Int32>()
        @inline(__always) func accumulate(_ value: Vector, _ low: inout Vector, _ high: inout Vector, _ sum: inout Vector,
                                          _ nan: inout SIMD16<Int32>, _ bad: inout SIMD16<Int32>) {
            // x - x is 0 for finite x and NaN for NaN and ±Inf, so one compare finds both kinds.
            let finite = (value - value) .== Vector()
            let isNaN = value .!= value
            low = pointwiseMin(low, value.replacing(with: .infinity, where: .!finite))
            high = pointwiseMax(high, value.replacing(with: -.infinity, where: .!finite))
            sum += value.replacing(with: 0, where: .!finite)
            nan &+= zero.replacing(with: one, where: isNaN)
            bad &+= zero.replacing(with: one, where: .!finite)
        }
        let base = block.baseAddress
        let count = block.count
        var index = 0
        if let base {
            while index + 32 <= count {
                let first = UnsafeRawPointer(base + index).loadUnaligned(as: Vector.self)
                let second = UnsafeRawPointer(base + index + 16).loadUnaligned(as: Vector.self)
                accumulate(first, &low0, &high0, &sum0, &nan0, &bad0)
                accumulate(second, &low1, &high1, &sum1, &nan1, &bad1)
                index += 32
            }
        }
        var low = pointwiseMin(low0, low1).min()
        var high = pointwiseMax(high0, high1).max()
        var sum = (sum0 + sum1).sum()
        var nanCount = Int((nan0 &+ nan1).wrappedSum())
        var nonFiniteCount = Int((bad0 &+ bad1).wrappedSum())
        while index < count {
            let value = block[index]
            if value.isNaN {
                nanCount += 1
                nonFiniteCount += 1
            } else if value.isInfinite {
                nonFiniteCount += 1
            } else {
                low = Swift.min(low, value)
                high = Swift.max(high, value)
                sum += value
            }
            index += 1
        }
        return (low, high, sum, nanCount, nonFiniteCount)
    }
}

extension Reference {
    /// Plain scalar statistics in Double, the reference for `TensorStatistics(_:)` on float32.
    public static func tensorStatistics(_ values: [Float]) -> TensorStatistics {
        var low = Double.infinity
        var high = -Double.infinity
        var sum = 0.0
        var finite = 0
        var nan = 0
        var infinite = 0
        for value in values {
            if value.isNaN { nan += 1; continue }
            if value.isInfinite { infinite += 1; continue }
            finite += 1
            low = min(low, Double(value))
            high = max(high, Double(value))
            sum += Double(value)
        }
        return TensorStatistics(count: values.count, minimum: finite > 0 ? low : nil, maximum: finite > 0 ? high : nil,
                                mean: finite > 0 ? sum / Double(finite) : nil, nanCount: nan, infinityCount: infinite)
    }
}
